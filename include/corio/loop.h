/**
 * @file loop.h
 * The io_uring event loop: callbacks, timers, cross-thread calls, signals, foreign fds and
 * embedding in another loop. Everything here must be called from the thread that runs the loop,
 * except corio_call_soon_threadsafe().
 */
#ifndef CORIO_LOOP_H
#define CORIO_LOOP_H

#include <stdio.h>
#include "common.h"

/** Loop options; zero-initialise and set what you need. */
typedef struct corio_loop_opts {
  unsigned entries;       /**< SQ ring size (power of two); 0 = 256. */
  int debug;              /**< Debug mode (also enabled by CORIO_DEBUG=1 in the environment). */
  double slow_callback_s; /**< Debug: warn about callbacks slower than this; 0 = 0.1 s. */
  unsigned setup_flags;   /**< 0 = try SINGLE_ISSUER|DEFER_TASKRUN, then COOP_TASKRUN, then none. */
  int no_defer_taskrun;   /**< Skip DEFER_TASKRUN (set by embedders that poll corio_loop_fd()). */
  /** When completions come in bursts (two or more per wait), a blocking wait gathers a batch
   *  for up to this long before it returns (never past a timer; Linux 6.12+, else off):
   *  0 = 20 us, < 0 = never. Fewer system calls per event under load, at most this much added
   *  latency per burst; a lone request/response never waits. */
  int batch_wait_us;
} corio_loop_opts;

/** A cancellable reference to a scheduled callback. The value 0 is never a valid handle. */
typedef uint64_t corio_handle;

typedef void (*corio_cb)(void *arg);

/** What the exception handler is told. */
typedef struct corio_exception_ctx {
  const char *message;  /**< What happened. */
  int error;            /**< The error code, or 0. */
  corio_future *future; /**< The future concerned (borrowed), or NULL. */
} corio_exception_ctx;

typedef void (*corio_exception_handler)(corio_loop *loop, const corio_exception_ctx *ctx,
                                        void *arg);

/**
 * Create a loop. Fails with CORIO_E_URING_* when io_uring cannot be set up, naming the cause.
 * @return 0 or a negative error; *loop is set only on success.
 */
CORIO_EXTERN int corio_loop_new(corio_loop **loop, const corio_loop_opts *opts);
/**
 * Free a loop. Returns -EBUSY (and frees nothing) while callbacks, timers, ops, tasks, readers,
 * writers or signal handlers are alive, or -CORIO_E_LOOP_RUNNING-like errors when running.
 */
CORIO_EXTERN int corio_loop_close(corio_loop *loop);

/** Run until @p fut is done; returns 0, or CORIO_E_LOOP_STOPPED if corio_loop_stop() came first. */
CORIO_EXTERN int corio_loop_run_until_complete(corio_loop *loop, corio_future *fut);
/** Run until corio_loop_stop(). */
CORIO_EXTERN int corio_loop_run_forever(corio_loop *loop);
/**
 * Run one iteration without blocking longer than @p timeout_s (0 = poll, negative = no limit).
 * It blocks only if no callback was ready when it began (otherwise it made progress and
 * returns). Used to embed corio in another loop together with corio_loop_fd().
 * @return 1 if anything is still alive in the loop, 0 if it is idle, or a negative error.
 */
CORIO_EXTERN int corio_loop_run_once(corio_loop *loop, double timeout_s);
/** Stop run_forever/run_until_complete after the current iteration. */
CORIO_EXTERN void corio_loop_stop(corio_loop *loop);
/** Monotonic time in seconds, the clock every timer uses. */
CORIO_EXTERN double corio_loop_time(const corio_loop *loop);
/** Nonzero while inside a run call. */
CORIO_EXTERN int corio_loop_is_running(const corio_loop *loop);
/** Nonzero in debug mode. */
CORIO_EXTERN int corio_loop_get_debug(const corio_loop *loop);
/**
 * A file descriptor that becomes readable when the loop has completions to process, including
 * posts from other threads (call_soon_threadsafe, executor jobs) made while no run call is in
 * progress. Poll it from a host loop (epoll, GLib, libuv; create the loop with
 * no_defer_taskrun) and call corio_loop_run_once(loop, 0) when it fires or when
 * corio_loop_timeout() elapses; retry the host's wait on EINTR.
 */
CORIO_EXTERN int corio_loop_fd(const corio_loop *loop);
/** Seconds until the loop needs to run again: 0 if work is ready, -1 if it only waits on I/O. */
CORIO_EXTERN double corio_loop_timeout(corio_loop *loop);

/** Counters since the loop was created (cheap: plain increments on the loop thread). */
typedef struct corio_loop_stats {
  uint64_t iterations;    /**< loop iterations */
  uint64_t enters;        /**< io_uring_enter system calls made by the loop */
  uint64_t cqes;          /**< completions reaped */
  uint64_t callbacks;     /**< ready callbacks run */
  uint64_t wakeups;       /**< eventfd writes by other threads (posts to a sleeping loop) */
  uint64_t posts;         /**< cross-thread posts received */
  uint64_t batched_waits; /**< blocking waits that gathered a batch (see batch_wait_us) */
  uint64_t spins;         /**< waits for an executor completion polled instead of slept */
  uint64_t spin_hits;     /**< ... that saw the completion (or another) arrive */
} corio_loop_stats;
/** Copy the counters into @p out. */
CORIO_EXTERN void corio_loop_get_stats(const corio_loop *loop, corio_loop_stats *out);

/** Install the handler for errors nobody retrieved; NULL restores the default (stderr). */
CORIO_EXTERN void corio_loop_set_exception_handler(corio_loop *loop, corio_exception_handler fn,
                                                   void *arg);
/** Call the exception handler (used by the library; available to users). */
CORIO_EXTERN void corio_loop_call_exception_handler(corio_loop *loop,
                                                    const corio_exception_ctx *ctx);
/** Print every live task with the file:line it is suspended at and what it awaits. */
CORIO_EXTERN void corio_loop_dump(corio_loop *loop, FILE *out);

/**
 * Schedule @p cb(arg) for the next iteration (FIFO). @p out (may be NULL) gets a handle.
 * @return 0, -EINVAL or -ENOMEM.
 */
CORIO_EXTERN int corio_call_soon(corio_loop *loop, corio_cb cb, void *arg, corio_handle *out);
/** Schedule @p cb after @p delay_s seconds (>= 0; never earlier). Ties run in insertion order. */
CORIO_EXTERN int corio_call_later(corio_loop *loop, double delay_s, corio_cb cb, void *arg,
                                  corio_handle *out);
/** Schedule @p cb at loop time @p when_s (see corio_loop_time()). */
CORIO_EXTERN int corio_call_at(corio_loop *loop, double when_s, corio_cb cb, void *arg,
                               corio_handle *out);
/**
 * Cancel a handle. @return 0 if the callback was cancelled, -ENOENT if it already ran, was
 * cancelled before, or the handle is 0/unknown (harmless: handles are generation-checked).
 */
CORIO_EXTERN int corio_handle_cancel(corio_loop *loop, corio_handle h);
/**
 * Schedule @p cb(arg) on the loop from any thread. Wakes the loop only if it is asleep: many
 * calls made while it runs cost one wakeup. No handle (see README, design): cancel through the
 * callback's own state.
 * @return 0, -EINVAL, -ENOMEM, or CORIO_E_CLOSED once the loop is closing.
 */
CORIO_EXTERN int corio_call_soon_threadsafe(corio_loop *loop, corio_cb cb, void *arg);

typedef void (*corio_signal_cb)(corio_loop *loop, int signo, void *arg);
/** Call @p cb on the loop each time @p signo arrives (signalfd; the signal is blocked). */
CORIO_EXTERN int corio_add_signal_handler(corio_loop *loop, int signo, corio_signal_cb cb,
                                          void *arg);
/** Remove it and restore the signal mask. @return 0 or -ENOENT. */
CORIO_EXTERN int corio_remove_signal_handler(corio_loop *loop, int signo);

typedef void (*corio_fd_cb)(corio_loop *loop, int fd, void *arg);
/** Call @p cb whenever @p fd is readable (multishot poll). One reader per fd. */
CORIO_EXTERN int corio_add_reader(corio_loop *loop, int fd, corio_fd_cb cb, void *arg);
/** @return 0 or -ENOENT. */
CORIO_EXTERN int corio_remove_reader(corio_loop *loop, int fd);
/** Call @p cb whenever @p fd is writable (multishot poll). One writer per fd. */
CORIO_EXTERN int corio_add_writer(corio_loop *loop, int fd, corio_fd_cb cb, void *arg);
/** @return 0 or -ENOENT. */
CORIO_EXTERN int corio_remove_writer(corio_loop *loop, int fd);

/* ---- io_uring ops: for transports and advanced users ---- */

struct io_uring_sqe;
typedef struct corio_op corio_op;
/** Completion of an op: @p res is the CQE result, @p flags its flags (IORING_CQE_F_MORE, ...). */
typedef void (*corio_op_complete)(corio_op *op, int res, unsigned flags);
/** One SQE's worth of work, embedded in its owner. Its memory belongs to the loop until its last
 *  CQE (one without IORING_CQE_F_MORE) was delivered, cancelled or not. */
struct corio_op {
  corio_op_complete complete; /**< Set by the owner before the first corio_op_sqe(). */
  corio_loop *loop;
  uint32_t inflight; /**< SQEs submitted and not yet finally completed. */
  uint32_t flags;    /**< Private. */
};

/** Get an SQE for @p op (user_data set; loop-alive count kept). NULL only on -ENOMEM-like states.
 */
CORIO_EXTERN struct io_uring_sqe *corio_op_sqe(corio_loop *loop, corio_op *op);
/** Ask the kernel to cancel @p op (an ASYNC_CANCEL SQE). @return 0 or -ENOENT if not in flight. */
CORIO_EXTERN int corio_op_cancel(corio_loop *loop, corio_op *op);

#endif
