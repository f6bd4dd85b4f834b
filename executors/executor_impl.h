/* Executors' private interface: the vtable both pools implement and the job they run. */
#ifndef CORIO_EXECUTOR_IMPL_H
#define CORIO_EXECUTOR_IMPL_H

#include "internal.h"

typedef struct corio_executor_vt {
  const char *name;
  /* Queue a job. The executor owns @p job from here (frees it after completing job->fut). */
  int (*submit)(corio_executor *ex, corio_job *job);
  int (*shutdown)(corio_executor *ex, int wait, int cancel_futures, double timeout_s);
  void (*destroy)(corio_executor *ex);
} corio_executor_vt;

struct corio_executor {
  const corio_executor_vt *vt;
  _Atomic int closed;
};

enum { CORIO__JOB_NONE = 0, CORIO__JOB_INT, CORIO__JOB_BYTES, CORIO__JOB_PTR, CORIO__JOB_ERR };

struct corio_job {
  corio_future *fut; /* completed by the pool (reference held by the job) */
  corio_job_fn fn;
  void *arg;
  corio_bytes input;
  int worker;
  int in_process; /* running in a worker process: no pointer results */
  _Atomic int cancelled;
  /* the result, set by the corio_job_return functions or corio_job_fail */
  int kind;
  int64_t i;
  void *p;
  corio_dtor dtor;
  corio_bytes out;
  int err;
  char *errmsg;
  void *impl; /* the pool's own per-job data */
};

/** A new job for @p fn (future on @p loop, or loop-less); copies @p data. NULL on ENOMEM. */
corio_job *corio__job_new(corio_loop *loop, corio_job_fn fn, void *arg, const void *data,
                          size_t len);
/** Complete job->fut from the job's result (any thread) and free the job. */
void corio__job_finish(corio_job *job);
/** Fail job->fut with @p err and @p msg (NULL = none) and free the job. */
void corio__job_finish_error(corio_job *job, int err, const char *msg);
/** Reset the result fields (a worker runs a job again after a crash, etc.). */
void corio__job_clear_result(corio_job *job);

#endif
