/* Process pool: how workers start. The first worker starts with the pool (before any submit);
 * a worker is usable before its fork is reported, so jobs sent to a worker whose fork then
 * fails must run elsewhere; pools started and freed in a row leave no descriptor or process. */
#include <stdatomic.h>
#include <stdlib.h>
#include "test_executor_process.h"

TestSuite(process_pool_start, .init = pp_test_setup, .timeout = 60);

static corio_shm *shm;
static _Atomic int *inits;

static void count_init(corio_job *job)
{
  (void)job;
  atomic_fetch_add(inits, 1);
}
static void quick(corio_job *job)
{
  corio_job_return(job, input_i64(job) + 1);
}
static void own_pid(corio_job *job)
{
  corio_job_return(job, getpid());
}

Test(process_pool_start, first_worker_starts_with_the_pool)
{
  corio_executor *ex;
  corio_future *f;
  int i;
  cr_assert_eq(corio_shm_new(&shm, 256), 0);
  inits = corio_shm_alloc(shm, sizeof(*inits), 0);
  ex = pool_new(3, 0, count_init, 0);
  for (i = 0; i < 2500 && atomic_load(inits) == 0; i++) usleep(2000);
  cr_assert_eq(atomic_load(inits), 1, "one worker, initialized, before any submit");
  f = submit_i64(ex, quick, 1);
  wait_done(f, 10);
  cr_assert_eq(corio_future_int(f), 2);
  cr_assert_eq(atomic_load(inits), 1, "the first job ran in the worker started with the pool");
  corio_future_unref(f);
  corio_executor_free(ex);
  corio_shm_free(shm);
  assert_no_children();
}

Test(process_pool_start, job_sent_to_a_worker_whose_fork_failed_runs_on_another)
{
  enum { N = 6 };
  int fds = count_fds(), i;
  corio_executor *ex;
  corio_future *f[N];
  corio_bytes in[N];
  int64_t v[N];
  corio__procpool_fail_forks = 1; /* the first fork fails (no worker starts with the pool) */
  ex = pool_new(2, 0, NULL, 0);
  corio__procpool_fail_forks = 0;
  /* One map queues and dispatches every job under one lock: job 0 goes to the worker whose
   * fork fails, job 1 starts a second worker, the rest queue behind them; the failure report
   * can only come after. (Separate submits would let the report slip in between job 0 and job
   * 1: with no worker left, job 0 then fails with EAGAIN, as transient_fork_failure_recovers
   * tests.) */
  for (i = 0; i < N; i++) {
    v[i] = i;
    in[i].data = (uint8_t *)&v[i];
    in[i].len = sizeof(v[i]);
  }
  cr_assert_eq(corio_executor_map(ex, own_pid, in, N, 1, f), 0);
  cr_assert_eq(corio_futures_wait_all(f, N, 20), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0, "job %d: %s", i, corio_future_error_message(f[i]));
    cr_assert_gt(corio_future_int(f[i]), 0);
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

Test(process_pool_start, pools_in_a_row_leave_nothing)
{
  int fds = count_fds(), i;
  corio_executor *ex;
  corio_future *f;
  for (i = 0; i < 20; i++) {
    ex = pool_new(2, 0, NULL, 0);
    if (i % 2) { /* half of them run a job, half are freed with the first worker still starting */
      f = submit_i64(ex, quick, i);
      wait_done(f, 10);
      cr_assert_eq(corio_future_int(f), i + 1);
      corio_future_unref(f);
    }
    corio_executor_free(ex);
    cr_assert_eq(count_fds(), fds, "pool %d", i);
    assert_no_children();
  }
}
