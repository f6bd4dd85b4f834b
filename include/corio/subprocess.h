/**
 * @file subprocess.h
 * Subprocesses (asyncio.create_subprocess_exec): stdin/stdout/stderr as corio streams, the exit
 * awaited through a pidfd polled on the ring — corio never installs a SIGCHLD handler or reaps
 * children it did not start (libuv#154). Started with posix_spawn (vfork-based: safe in a
 * threaded program, exec failures reported to the caller). The child starts with no signal
 * blocked (the loop's signal handlers block theirs in the parent) and with SIGPIPE and SIGXFSZ at
 * their default action, like Python's restore_signals.
 */
#ifndef CORIO_SUBPROCESS_H
#define CORIO_SUBPROCESS_H

#include <sys/types.h>
#include "stream.h"

enum corio_stdio { CORIO_STDIO_INHERIT = 0, CORIO_STDIO_PIPE = 1, CORIO_STDIO_DEVNULL = 2 };

/** Options; zero-initialise (all three inherit). */
typedef struct corio_subprocess_opts {
  int stdin_mode, stdout_mode, stderr_mode; /**< enum corio_stdio */
  char *const *envp;                        /**< NULL: the parent's environment */
} corio_subprocess_opts;

typedef struct corio_process corio_process;

/**
 * Start argv[0] (searched in PATH) with @p argv. Piped streams are socketpairs (as libuv's
 * UV_CREATE_PIPE): read/write them with the stream API. -ENOENT / -EACCES if it cannot run.
 */
CORIO_EXTERN int corio_subprocess_exec(corio_loop *loop, char *const argv[],
                                       const corio_subprocess_opts *opts, corio_process **out);
CORIO_EXTERN pid_t corio_process_pid(const corio_process *p);
/** The piped streams (NULL when not piped, or once closed). The process owns them and closes
 *  them in corio_process_free; you may close one earlier with corio_stream_close (stdin, to send
 *  EOF; or stdout, to stop reading: the child then gets EPIPE), after which this returns NULL. */
CORIO_EXTERN corio_stream *corio_process_stdin(corio_process *p);
CORIO_EXTERN corio_stream *corio_process_stdout(corio_process *p);
CORIO_EXTERN corio_stream *corio_process_stderr(corio_process *p);
/** Done with the return code: the exit status, or -signal if a signal killed it (asyncio). */
CORIO_EXTERN corio_future *corio_process_wait(corio_process *p);
/** Send @p sig (pidfd_send_signal: never a recycled pid). -ESRCH once it has exited. */
CORIO_EXTERN int corio_process_kill(corio_process *p, int sig);
/**
 * Write @p input (may be NULL) to stdin and close it, read stdout (if piped) to EOF and wait:
 * done with stdout's bytes (empty if not piped) once the process exited; its return code is then
 * in corio_process_returncode(). A child that exits without reading its stdin is fine (the
 * unread input is dropped, no SIGPIPE).
 */
CORIO_EXTERN corio_future *corio_process_communicate(corio_process *p, const void *input,
                                                     size_t len);
/** The return code once the process exited, CORIO_E_NOT_DONE before. */
CORIO_EXTERN int corio_process_returncode(const corio_process *p);
/** Free the process object: -EBUSY until it has exited and its streams are closed. */
CORIO_EXTERN int corio_process_free(corio_process *p);

#endif
