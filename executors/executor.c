/*
 * What both pools share: jobs and their results, submit/map/shutdown dispatch through the
 * vtable, and the blocking helpers for threads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include "executor_impl.h"

corio_job *corio__job_new(corio_loop *loop, corio_job_fn fn, void *arg, const void *data,
                          size_t len)
{
  corio_job *job = corio__calloc(1, sizeof(*job));
  if (!job) return NULL;
  job->fut = corio_future_new(loop);
  if (!job->fut) goto fail;
  job->fn = fn;
  job->arg = arg;
  if (data) {
    job->input = corio_bytes_alloc(len);
    if (!job->input.data && len) goto fail;
    if (len) memcpy(job->input.data, data, len);
  }
  return job;
fail:
  corio_future_unref(job->fut);
  corio__free(job);
  return NULL;
}

void corio__job_clear_result(corio_job *job)
{
  if (job->kind == CORIO__JOB_PTR && job->dtor && job->p) job->dtor(job->p);
  corio_bytes_free(&job->out);
  corio__free(job->errmsg);
  job->errmsg = NULL;
  job->kind = CORIO__JOB_NONE;
  job->i = 0;
  job->p = NULL;
  job->dtor = NULL;
  job->err = 0;
}

static void job_free(corio_job *job)
{
  corio__job_clear_result(job);
  corio_bytes_free(&job->input);
  corio_future_unref(job->fut);
  corio__free(job);
}

void corio__job_finish(corio_job *job)
{
  corio_future *f = job->fut;
  switch (job->kind) {
  case CORIO__JOB_BYTES:
    corio_future_set_result_bytes(f, job->out);
    job->out.data = NULL;
    job->out.len = 0;
    break;
  case CORIO__JOB_PTR:
    if (corio_future_set_result_ptr(f, job->p, job->dtor) == 0) job->p = NULL;
    break;
  case CORIO__JOB_ERR:
    corio_future_set_error_msg(f, job->err, job->errmsg);
    break;
  default:
    corio_future_set_result(f, job->i);
  }
  job_free(job);
}

void corio__job_finish_error(corio_job *job, int err, const char *msg)
{
  corio_future_set_error_msg(job->fut, err, msg);
  job_free(job);
}

/* ---- inside a job ---- */

void *corio_job_arg(corio_job *job)
{
  return job ? job->arg : NULL;
}

const corio_bytes *corio_job_input(corio_job *job)
{
  return job ? &job->input : NULL;
}

int corio_job_return(corio_job *job, int64_t value)
{
  if (!job) return -EINVAL;
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_INT;
  job->i = value;
  return 0;
}

int corio_job_return_bytes(corio_job *job, const void *data, size_t len)
{
  corio_bytes b;
  if (!job || (!data && len)) return -EINVAL;
  b = corio_bytes_alloc(len);
  if (!b.data && len) return -ENOMEM;
  if (len) memcpy(b.data, data, len);
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_BYTES;
  job->out = b;
  return 0;
}

int corio_job_return_ptr(corio_job *job, void *p, corio_dtor dtor)
{
  if (!job) return -EINVAL;
  if (job->in_process) return -ENOTSUP;
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_PTR;
  job->p = p;
  job->dtor = dtor;
  return 0;
}

int corio_job_fail(corio_job *job, int err, const char *fmt, ...)
{
  va_list ap;
  char buf[1024];
  size_t n;
  if (!job) return -EINVAL;
  if (err >= 0) err = -EINVAL;
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_ERR;
  job->err = err;
  if (fmt) {
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    n = strlen(buf) + 1;
    job->errmsg = corio__malloc(n);
    if (job->errmsg) memcpy(job->errmsg, buf, n);
  }
  return 0;
}

int corio_job_cancelled(const corio_job *job)
{
  return job && atomic_load_explicit(&((corio_job *)job)->cancelled, memory_order_acquire);
}

int corio_job_worker(const corio_job *job)
{
  return job ? job->worker : -1;
}

/* ---- dispatch ---- */

static corio_future *submit(corio_executor *ex, corio_loop *loop, corio_job_fn fn, void *arg,
                            const void *data, size_t len)
{
  corio_job *job;
  corio_future *f;
  int rc;
  if (!ex || !fn || (!data && len)) return corio__future_failed(loop, -EINVAL);
  if (atomic_load_explicit(&ex->closed, memory_order_acquire))
    return corio__future_failed(loop, CORIO_E_CLOSED);
  job = corio__job_new(loop, fn, arg, data, len);
  if (!job) return NULL;
  f = corio_future_ref(job->fut);
  rc = ex->vt->submit(ex, job);
  if (rc < 0) corio__job_finish_error(job, rc, NULL);
  return f;
}

corio_future *corio_executor_submit(corio_executor *ex, corio_job_fn fn, void *arg)
{
  return submit(ex, NULL, fn, arg, NULL, 0);
}

corio_future *corio_executor_submit_bytes(corio_executor *ex, corio_job_fn fn, const void *data,
                                          size_t len)
{
  return submit(ex, NULL, fn, NULL, data ? data : "", data ? len : 0);
}

int corio_executor_shutdown(corio_executor *ex, int wait, int cancel_futures, double timeout_s)
{
  if (!ex) return -EINVAL;
  atomic_store_explicit(&ex->closed, 1, memory_order_release);
  return ex->vt->shutdown(ex, wait, cancel_futures, timeout_s);
}

void corio_executor_free(corio_executor *ex)
{
  if (!ex) return;
  corio_executor_shutdown(ex, 1, 0, -1);
  ex->vt->destroy(ex);
}

int corio_futures_wait_all(corio_future *const *futs, size_t n, double timeout_s)
{
  int64_t deadline = timeout_s >= 0 ? corio__now_ns() + corio__seconds_to_ns(timeout_s) : 0;
  size_t i;
  int rc;
  if (!futs && n) return -EINVAL;
  for (i = 0; i < n; i++) {
    double left = -1;
    if (timeout_s >= 0) {
      left = (double)(deadline - corio__now_ns()) / 1e9;
      if (left < 0) left = 0;
    }
    rc = corio_future_wait(futs[i], left);
    if (rc < 0) return rc;
  }
  return 0;
}
