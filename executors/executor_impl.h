/* Executors' private interface: the vtable both pools implement and the job they run. */
#ifndef CORIO_EXECUTOR_IMPL_H
#define CORIO_EXECUTOR_IMPL_H

#include <stddef.h>
#include "internal.h"

typedef struct corio_executor_vt {
  const char *name;
  /* Queue a job. The executor owns @p job from here (frees it after completing job->fut). */
  int (*submit)(corio_executor *ex, corio_job *job);
  int (*shutdown)(corio_executor *ex, int wait, int cancel_futures, double timeout_s);
  void (*destroy)(corio_executor *ex);
  /* Optional. Cancel @p job (corio_future_cancel on its future, any thread): a job still queued
   * is taken out and completed with corio__job_finish_cancelled (return 1). A running job
   * depends on the pool: the thread pool leaves it alone (return 0; job->cancelled is already
   * set for corio_job_cancelled, cooperative); the process pool stops it by killing its worker
   * through the fork server and completes the future as cancelled once the death is reported
   * (return 1; the worker is replaced on demand). NULL: jobs cannot be taken back (cancel
   * returns 0; the job still sees corio_job_cancelled). Only the corio__job_finish* functions
   * may complete a job's future. */
  int (*cancel)(corio_executor *ex, corio_job *job);
  /* Optional. Queue the @p n jobs linked through job->node on @p jobs (the list is the pool's
   * from here, even on error: a negative return means the pool has completed them all with that
   * error). Consecutive jobs with the same nonzero job->chunk form one queue entry, run by one
   * worker in one round trip. NULL: corio_executor_map calls submit once per job. */
  int (*submit_list)(corio_executor *ex, corio__list *jobs, size_t n);
} corio_executor_vt;

struct corio_executor {
  const corio_executor_vt *vt;
  _Atomic int closed;
};

enum { CORIO__JOB_NONE = 0, CORIO__JOB_INT, CORIO__JOB_BYTES, CORIO__JOB_PTR, CORIO__JOB_ERR };

/* Laid out by who writes what, one group per cache line (a job_block is 64-byte aligned, see
 * executor.c): a line written by the loop's thread and then by a worker moves between their
 * caches, and each move costs the thread that waits for it about a cache miss. Measured with
 * 1,000 empty jobs in flight through a loop (bench/exec_corio tp_tput), the future's state
 * update, the memset of a recycled block and the inbox walk were each a miss per job while
 * future and job fields shared lines. */
struct corio_job {
  /* Set by the submitter, read by the worker. */
  corio_loop *loop;   /* the future's loop (NULL: loop-less), so that a worker never reads the
                         future's lines, which stay with the loop's thread */
  corio_executor *ex; /* the pool it was submitted to (set before vt->submit) */
  corio_job_fn fn;
  void *arg;
  corio_bytes input;
  uint32_t chunk;        /* nonzero: map chunk id (see submit_list) */
  _Atomic int cancelled; /* cancel was asked (any thread); corio_job_cancelled */
  bool in_process;       /* running in a worker process: no pointer results */
  bool deferred;         /* submitted to the loop's default pool and not yet handed over: the loop's
                            (its thread's field, see executor.c flush_deferred) */
  uint32_t seg_len;      /* thread pool: on the first job of a pushed run of jobs, its length */
  /* The pool's and the worker's: queueing, running, an integer result, the hand-over to the
   * loop. With an integer result, the loop's thread reads only this line at completion. */
  _Alignas(64) struct corio__mpsc_node done; /* hand-over to the loop (executor.c) */
  corio__list node;                          /* queue link, the pool's while it holds the job */
  corio_job *inext;                          /* thread pool: link in the lock-free incoming stack */
  int qstate; /* the pool's own bookkeeping (thread pool: queued / taken) */
  int worker;
  /* the result, set by the corio_job_return functions or corio_job_fail */
  int kind;
  int err;
  int64_t i;
  /* The rest of the result (a worker writes it only for such results) and the future. */
  _Alignas(64) corio_future *fut; /* completed by the pool (reference held by the job);
                                     embedded in the same allocation as the job, see executor.c */
  void *p;
  corio_dtor dtor;
  corio_bytes out;
  char *errmsg;
  void *impl;          /* the pool's own per-job data */
  corio_job *seg_last; /* thread pool: on the first job of a pushed run of jobs, its last */
};

/* Three lines, one per writer (the loop's thread reads only the second at an integer result):
 * a field added to a full line moves the next line's fields and adds a line to every job. */
_Static_assert(offsetof(struct corio_job, done) == 64, "the submitter's line is full");
_Static_assert(offsetof(struct corio_job, fut) == 128, "the pool's line is full");
_Static_assert(sizeof(struct corio_job) == 192, "a job is three cache lines");

/** The CPU of the thread pool worker polling for work before it sleeps, or -1 (a hint). */
int corio__thread_pool_spin_cpu(corio_executor *ex);

/** A new job for @p fn (future on @p loop, or loop-less); copies @p data. NULL on ENOMEM. */
corio_job *corio__job_new(corio_loop *loop, corio_job_fn fn, void *arg, const void *data,
                          size_t len);
/** Complete job->fut from the job's result (any thread) and free the job. The job must not be
 *  touched afterwards (nor by the other finish functions). */
void corio__job_finish(corio_job *job);
/** Fail job->fut with @p err and @p msg (NULL = none) and free the job. */
void corio__job_finish_error(corio_job *job, int err, const char *msg);
/** Complete job->fut as cancelled and free the job (a pending job taken out of the queue). */
void corio__job_finish_cancelled(corio_job *job);
/** Reset the result fields (a worker runs a job again after a crash, etc.). */
void corio__job_clear_result(corio_job *job);

#endif
