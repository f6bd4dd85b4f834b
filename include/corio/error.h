/**
 * @file error.h
 * Error codes. Every corio call returns >= 0 on success or a negative code: either a negative
 * errno (-EINVAL, -ENOMEM, -ECANCELED, -ETIMEDOUT, ...) or one of corio's own codes, all below
 * -4096 so that they can never collide with an errno value.
 */
#ifndef CORIO_ERROR_H
#define CORIO_ERROR_H

#include <errno.h>
#include "common.h"

/* X(name, value, message). One table: the enum, corio_strerror and corio_err_name come from it. */
#define CORIO_ERRORS(X)                                                                            \
  X(INVALID_STATE, -4097, "operation not valid in the object's current state")                     \
  X(WRONG_LOOP, -4098, "the future belongs to another event loop")                                 \
  X(WRONG_THREAD, -4099, "called from a thread that is not running the loop")                      \
  X(LOOP_RUNNING, -4100, "the loop is already running")                                            \
  X(LOOP_STOPPED, -4101, "the loop stopped before the future completed")                           \
  X(BROKEN_BARRIER, -4102, "the barrier is broken (reset or aborted)")                             \
  X(QUEUE_EMPTY, -4103, "the queue is empty")                                                      \
  X(QUEUE_FULL, -4104, "the queue is full")                                                        \
  X(QUEUE_SHUTDOWN, -4105, "the queue was shut down")                                              \
  X(NOT_LOCKED, -4106, "release of a lock or semaphore that is not held")                          \
  X(URING_DISABLED, -4107,                                                                         \
    "io_uring is disabled by the administrator (sysctl kernel.io_uring_disabled); set it to 0")    \
  X(URING_DENIED, -4108,                                                                           \
    "io_uring is denied to this process (seccomp filter, container policy or "                     \
    "kernel.io_uring_disabled=1 without the io_uring group); run outside the sandbox or allow "    \
    "io_uring_setup")                                                                              \
  X(URING_NOSYS, -4109,                                                                            \
    "the kernel has no io_uring (Linux >= 5.19 built with CONFIG_IO_URING needed)")                \
  X(URING_MEMLOCK, -4110,                                                                          \
    "io_uring could not lock ring memory (RLIMIT_MEMLOCK too low); raise `ulimit -l` or use a "    \
    "kernel >= 5.12 that charges rings to memcg")                                                  \
  X(NOT_DONE, -4111, "the future is not done yet")                                                 \
  X(CLOSED, -4112, "the object was closed")                                                        \
  X(INCOMPLETE_READ, -4113, "end of stream before the expected number of bytes")                   \
  X(LIMIT_OVERRUN, -4114, "the separator was not found within the stream's buffer limit")          \
  X(READ_PENDING, -4115, "another read is already waiting on this stream")                         \
  X(DNS_NOTFOUND, -4116, "DNS: no such host (NXDOMAIN)")                                           \
  X(DNS_NODATA, -4117, "DNS: the name exists but has no address of the requested family")          \
  X(DNS_SERVFAIL, -4118, "DNS: the server failed to answer (SERVFAIL)")                            \
  X(DNS_REFUSED, -4119, "DNS: the server refused the query")                                       \
  X(DNS_TIMEOUT, -4120, "DNS: no answer from any server within the timeout")                       \
  X(DNS_CONNREFUSED, -4121, "DNS: no server reachable, or every one refused the query")            \
  X(DNS_BADNAME, -4122, "DNS: malformed host name")                                                \
  X(DNS_BADRESP, -4123, "DNS: malformed reply from the server")                                    \
  X(DNS_NONAME, -4124, "DNS: unknown host or service name")                                        \
  X(DNS_FAILURE, -4125, "DNS: lookup failed")                                                      \
  X(WORKER_DIED, -4126, "the worker process running the job died")

enum corio_error {
#define CORIO__ERR_ENUM(name, value, msg) CORIO_E_##name = (value),
  CORIO_ERRORS(CORIO__ERR_ENUM)
#undef CORIO__ERR_ENUM
};

/** A readable message for @p err (a negative errno or a corio code). Never NULL, thread-safe. */
CORIO_EXTERN const char *corio_strerror(int err);
/** The symbolic name of @p err ("ECANCELED", "CORIO_E_QUEUE_FULL"). Never NULL, thread-safe. */
CORIO_EXTERN const char *corio_err_name(int err);

#endif
