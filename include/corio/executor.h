/**
 * @file executor.h
 * Executors (concurrent.futures for C): a thread pool and a process pool behind one interface.
 * Every submit returns a corio_future that a plain thread can corio_future_wait() on and a task
 * can CORIO_AWAIT — the same executor works with or without a loop.
 *
 * A job is a plain C function of the program, `void fn(corio_job *job)`. It reads its input with
 * corio_job_arg() (the pointer given to submit) or corio_job_input() (bytes given to
 * submit_bytes, copied), and sets its result with one corio_job_return*() or corio_job_fail()
 * call (a job that sets nothing returns 0). In a process pool the function runs in a worker
 * process forked from the pool's fork server: pointers mean something there only for memory that
 * existed when the pool started (globals) or shared memory; use bytes for data.
 */
#ifndef CORIO_EXECUTOR_H
#define CORIO_EXECUTOR_H

#include "future.h"

typedef struct corio_executor corio_executor;
typedef struct corio_job corio_job;
typedef void (*corio_job_fn)(corio_job *job);

/* ---- inside a job ---- */
/** The pointer given to corio_executor_submit (NULL for submit_bytes). */
CORIO_EXTERN void *corio_job_arg(corio_job *job);
/** The bytes given to corio_executor_submit_bytes (empty for submit). */
CORIO_EXTERN const corio_bytes *corio_job_input(corio_job *job);
/** Result: an integer. */
CORIO_EXTERN int corio_job_return(corio_job *job, int64_t value);
/** Result: bytes (copied). */
CORIO_EXTERN int corio_job_return_bytes(corio_job *job, const void *data, size_t len);
/** Result: a pointer freed by @p dtor with the future. Thread pool only (-ENOTSUP in a process). */
CORIO_EXTERN int corio_job_return_ptr(corio_job *job, void *p, corio_dtor dtor);
/** Result: error @p err (< 0) with a printf-style message (the future's error text). */
CORIO_EXTERN int corio_job_fail(corio_job *job, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Nonzero once cancellation of this running job was requested (thread pool: cooperative). */
CORIO_EXTERN int corio_job_cancelled(const corio_job *job);
/** Index of the worker running the job (0..max_workers-1). */
CORIO_EXTERN int corio_job_worker(const corio_job *job);

/* ---- thread pool ---- */
typedef struct corio_thread_pool_opts {
  unsigned max_workers;           /**< 0 = min(32, CPUs + 4), as Python. */
  const char *thread_name_prefix; /**< Threads are named "<prefix>_<n>" (default "corio"). */
  void (*initializer)(void *arg); /**< Run once in each new worker thread. */
  void *initarg;
} corio_thread_pool_opts;
/** Workers start on demand, up to max_workers: a queued job that no idle worker is coming for
 *  gets a new worker (Python's rule); idle workers are reused, and live until shutdown. */
CORIO_EXTERN int corio_thread_pool_new(corio_executor **ex, const corio_thread_pool_opts *opts);

/* ---- process pool ---- */
typedef struct corio_process_pool_opts {
  unsigned max_workers;         /**< 0 = number of CPUs. */
  unsigned max_tasks_per_child; /**< 0 = unlimited; else a worker is replaced after this many. */
  corio_job_fn initializer;     /**< Run once in each new worker process (its result is ignored;
                                     a failure is reported on the jobs that worker would run). */
  size_t memfd_threshold;       /**< Payloads above this go through a memfd (0 = 64 KiB). */
} corio_process_pool_opts;
/** Starts the fork server now, so later forks never copy a multi-threaded parent. */
CORIO_EXTERN int corio_process_pool_new(corio_executor **ex, const corio_process_pool_opts *opts);

/* ---- both ---- */
/** Run fn in the pool. The future has no loop (any thread may wait on it; a task may await it).
 *  NULL only on ENOMEM; after shutdown the future fails with CORIO_E_CLOSED. */
CORIO_EXTERN corio_future *corio_executor_submit(corio_executor *ex, corio_job_fn fn, void *arg);
/** Same with input bytes (copied), the natural form for a process pool. */
CORIO_EXTERN corio_future *corio_executor_submit_bytes(corio_executor *ex, corio_job_fn fn,
                                                       const void *data, size_t len);
/** submit, but the future belongs to @p loop (its callbacks run there); call it on the loop's
 *  thread. @p ex NULL: the loop's default thread pool, created on first use and shut down with
 *  the loop; its jobs are handed to it together at the end of the current pass of callbacks (one
 *  push for the pass: a callback that submits and then stays busy delays its job's start). */
CORIO_EXTERN corio_future *corio_run_in_executor(corio_loop *loop, corio_executor *ex,
                                                 corio_job_fn fn, void *arg);
/**
 * Map @p fn over @p n byte inputs in chunks of @p chunksize jobs per worker round trip (0 = 1).
 * Fills out[0..n-1] with one future per input, in input order (gather them in a task, or wait on
 * them in order from a thread: Python's map). @return 0 or a negative error (nothing submitted).
 */
CORIO_EXTERN int corio_executor_map(corio_executor *ex, corio_job_fn fn, const corio_bytes *inputs,
                                    size_t n, size_t chunksize, corio_future **out);
/*
 * Argument tuples (Python's starmap). A tuple of byte strings travels as ONE byte input, packed
 * as: uint32 nargs, uint32 0, then nargs uint64 lengths, then the arguments' bytes back to back
 * (native byte order: the pool runs on the same machine). corio_args_pack builds it (for
 * submit_bytes); inside the job, corio_job_nargs and corio_job_argn read it back, checking the
 * layout against the input's length.
 */
/** Pack @p nargs byte strings into @p out (free it with corio_bytes_free). 0, -EINVAL, -ENOMEM. */
CORIO_EXTERN int corio_args_pack(const corio_bytes *args, size_t nargs, corio_bytes *out);
/** Inside a job: how many packed arguments its input holds, or -EPROTO if it is not a tuple. */
CORIO_EXTERN int corio_job_nargs(corio_job *job);
/** Inside a job: argument @p k of its packed input as a view (valid while the job runs).
 *  0, -EPROTO (not a tuple) or -ERANGE (no such argument). */
CORIO_EXTERN int corio_job_argn(corio_job *job, size_t k, corio_bytes *out);
/**
 * starmap: corio_executor_map over @p n tuples of @p nargs arguments each; tuple i is
 * args[i * nargs] .. args[i * nargs + nargs - 1], packed as above (the job reads it with
 * corio_job_argn). Same chunks, order and errors as corio_executor_map.
 */
CORIO_EXTERN int corio_executor_starmap(corio_executor *ex, corio_job_fn fn,
                                        const corio_bytes *args, size_t nargs, size_t n,
                                        size_t chunksize, corio_future **out);
/** Wait (any thread) for the futures in order, each within what is left of @p timeout_s
 *  (< 0: forever). @return 0, or -ETIMEDOUT (the rest are left running). */
CORIO_EXTERN int corio_futures_wait_all(corio_future *const *futs, size_t n, double timeout_s);
/** Index of a finished future among @p futs (waiting up to @p timeout_s): the building block of
 *  imap_unordered for threads. -ETIMEDOUT, or -ENOENT if @p n is 0. */
CORIO_EXTERN int corio_futures_wait_any(corio_future *const *futs, size_t n, double timeout_s);

/**
 * A completion queue: futures come out in the order they finish, to any thread. With map() it is
 * Pool.imap_unordered; with submits, concurrent.futures.as_completed for plain threads. O(1) per
 * future (corio_futures_wait_any is O(n) per call).
 */
typedef struct corio_completions corio_completions;
CORIO_EXTERN int corio_completions_new(corio_completions **out);
/** Add @p f (consumes a reference). A loop's future must be added from its loop's thread
 *  (CORIO_E_WRONG_THREAD otherwise); executor futures from anywhere. 0, -EINVAL, -ENOMEM. */
CORIO_EXTERN int corio_completions_add(corio_completions *c, corio_future *f);
/** The next finished future (*@p out, a reference for the caller), waiting up to @p timeout_s
 *  (< 0: forever, 0: do not wait). 0, -ETIMEDOUT, or -ENOENT when nothing is left. */
CORIO_EXTERN int corio_completions_next(corio_completions *c, double timeout_s, corio_future **out);
/** Futures added and not yet taken (finished or not). */
CORIO_EXTERN size_t corio_completions_pending(corio_completions *c);
/** Free: futures not taken are released (those still running when they finish). */
CORIO_EXTERN void corio_completions_free(corio_completions *c);

/**
 * Shut down: refuse new jobs; @p cancel_futures cancels the pending (not yet running) ones;
 * @p wait blocks until running jobs finish, at most @p timeout_s (< 0: no limit; a process pool
 * kills workers still busy at the deadline). Idempotent. @return 0 or -ETIMEDOUT.
 */
CORIO_EXTERN int corio_executor_shutdown(corio_executor *ex, int wait, int cancel_futures,
                                         double timeout_s);
/** Shut down (wait, no timeout) and free. */
CORIO_EXTERN void corio_executor_free(corio_executor *ex);

#endif
