/*
 * threadpool_as_completed — Port of a Python seed program (issue 4): jobs on a
 * thread pool, their results taken in the order they finish, not the order they were submitted.
 *
 * Python (concurrent.futures):
 *
 *     def fetch(k):
 *         time.sleep(DELAYS[k])                 # 0.25, 0.05, 0.20, 0.10, 0.15
 *         return k * k
 *
 *     with ThreadPoolExecutor(max_workers=5) as ex:
 *         futs = {ex.submit(fetch, k): k for k in range(5)}
 *         for f in as_completed(futs):
 *             print(f"job {futs[f]} done: {f.result()}")
 *
 * Twice here: from a plain thread (the main one), with corio_futures_wait_any() on the futures
 * still pending; and from a task on a loop, which awaits corio_as_completed_next() over futures
 * of corio_run_in_executor() (they belong to the loop, so the task is resumed on the loop's
 * thread while the jobs run on the pool's). Both take the jobs as 1, 3, 4, 2, 0.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <corio.h>

#define NJOBS 5

static const double delays[NJOBS] = {0.25, 0.05, 0.20, 0.10, 0.15};

/* def fetch(k) */
static void fetch(corio_job *job)
{
  int k = (int)(intptr_t)corio_job_arg(job);
  struct timespec ts = {0, (long)(delays[k] * 1e9)};
  nanosleep(&ts, NULL);
  corio_job_return(job, k * k);
}

/* ---- from a plain thread ---- */
static int from_thread(corio_executor *ex)
{
  corio_future *futs[NJOBS], *pending[NJOBS];
  int key[NJOBS]; /* pending[i] is job key[i]: the dict of the Python version */
  int k, n = 0, i, rc = 0;

  for (k = 0; k < NJOBS; k++) {
    futs[k] = corio_executor_submit(ex, fetch, (void *)(intptr_t)k);
    if (!futs[k]) {
      rc = -ENOMEM;
      break;
    }
    pending[n] = futs[k];
    key[n++] = k;
  }
  while (rc == 0 && n > 0) {
    i = corio_futures_wait_any(pending, (size_t)n, 10.0);
    if (i < 0) {
      rc = i;
      break;
    }
    if (corio_future_error(pending[i]) == 0)
      printf("thread: job %d done: %lld\n", key[i], (long long)corio_future_int(pending[i]));
    else
      printf("thread: job %d failed: %s\n", key[i], corio_future_error_message(pending[i]));
    pending[i] = pending[--n]; /* take it out of the pending set */
    key[i] = key[n];
  }
  corio_futures_wait_all(futs, (size_t)k, -1); /* after an error, before dropping them */
  while (k-- > 0) corio_future_unref(futs[k]);
  return rc;
}

/* ---- from a task ---- */
struct main_task {
  corio_task task;
  corio_executor *ex;
  corio_as_completed *it;
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[NJOBS], *done;
  int k;

  CORIO_BEGIN(t);
  for (k = 0; k < NJOBS; k++) {
    futs[k] = corio_run_in_executor(t->loop, m->ex, fetch, (void *)(intptr_t)k);
    if (!futs[k]) {
      while (k-- > 0) corio_future_unref(futs[k]);
      CORIO_THROW(t, -ENOMEM);
    }
  }
  m->it = corio_as_completed_new(t->loop, futs, NJOBS); /* takes our references */
  if (!m->it) CORIO_THROW(t, -ENOMEM);
  for (m->i = 0; m->i < NJOBS; m->i++) {
    CORIO_AWAIT_TRY(t, corio_as_completed_next(m->it));
    done = corio_future_ptr(corio_awaited(t)); /* the job that finished (borrowed) */
    CORIO_TRY(t, corio_future_error(done));
    /* k*k identifies the job: 0, 1, 4, 9, 16 */
    printf("task: job with result %lld done\n", (long long)corio_future_int(done));
  }
  CORIO_FINALLY(t);
  corio_as_completed_free(m->it); /* on an error, cancels the jobs not yet taken */
  CORIO_END(t);
}

static int from_task(corio_executor *ex)
{
  corio_loop *loop;
  struct main_task *m;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) return rc;
  m = corio_task_new(loop, main_step, struct main_task, task);
  if (m) m->ex = ex;
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  closed = corio_loop_close(loop);
  return rc < 0 ? rc : closed;
}

int main(void)
{
  corio_thread_pool_opts opts = {.max_workers = NJOBS};
  corio_executor *ex;
  int rc;

  rc = corio_thread_pool_new(&ex, &opts);
  if (rc < 0) {
    fprintf(stderr, "threadpool_as_completed: cannot create the pool: %s\n", corio_strerror(rc));
    return 1;
  }
  rc = from_thread(ex);
  if (rc == 0) rc = from_task(ex);
  corio_executor_free(ex);
  if (rc < 0) fprintf(stderr, "threadpool_as_completed: %s\n", corio_strerror(rc));
  return rc < 0;
}
