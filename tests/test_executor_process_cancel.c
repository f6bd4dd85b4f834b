/* Process pool: cancel of pending and running jobs, a timeout on a running job from a task
 * (corio_wait_for), and shutdown with pending, running and hung jobs. */
#include <stdatomic.h>
#include <stdlib.h>
#include "test_executor_process.h"

TestSuite(process_pool_cancel, .init = pp_test_setup, .timeout = 60);

static void sleep_ms(corio_job *job)
{
  usleep((useconds_t)input_i64(job) * 1000);
  corio_job_return(job, input_i64(job));
}
static void quick(corio_job *job)
{
  corio_job_return(job, input_i64(job) + 1);
}

/* Shared flag: set by a job once it runs. */
static corio_shm *shm;
static _Atomic int *started;
static void make_shared(void)
{
  cr_assert_eq(corio_shm_new(&shm, 256), 0);
  started = corio_shm_alloc(shm, sizeof(*started), 0);
}
static void mark_and_hang(corio_job *job)
{
  atomic_fetch_add(started, 1);
  for (;;) pause();
  corio_job_return(job, 0);
}
static void mark_and_sleep_ms(corio_job *job)
{
  atomic_fetch_add(started, 1);
  sleep_ms(job);
}
/* Runs until the test sets *release (shared memory), then returns its input. */
static _Atomic int *release;
static void mark_and_wait_release(corio_job *job)
{
  atomic_fetch_add(started, 1);
  while (!atomic_load(release)) usleep(1000);
  corio_job_return(job, input_i64(job));
}
static void wait_started(int n)
{
  int i;
  for (i = 0; i < 2000 && atomic_load(started) < n; i++) usleep(2000);
  cr_assert_geq(atomic_load(started), n);
}

Test(process_pool_cancel, cancel_pending_job)
{
  corio_executor *ex;
  corio_future *busy, *pending, *after;
  make_shared(); /* before the pool: its workers inherit the mapping */
  release = corio_shm_alloc(shm, sizeof(*release), 0);
  ex = pool_new(1, 0, NULL, 0);
  /* busy holds the only worker until released: pending stays queued however slow we are (a
   * 300 ms job could end before the cancel on a loaded machine, and pending would be running) */
  busy = submit_i64(ex, mark_and_wait_release, 300);
  pending = submit_i64(ex, quick, 5);
  after = submit_i64(ex, quick, 6);
  cr_assert_eq(corio_future_cancel(pending), 1);
  cr_assert(corio_future_cancelled(pending), "a queued job is cancelled at once");
  cr_assert_eq(corio_future_error(pending), -ECANCELED);
  cr_assert_not(corio_future_done(busy));
  atomic_store(release, 1);
  wait_done(busy, 10);
  wait_done(after, 10);
  cr_assert_eq(corio_future_int(busy), 300);
  cr_assert_eq(corio_future_int(after), 7);
  cr_assert_eq(corio_future_cancel(busy), 0, "a finished job cannot be cancelled");
  cr_assert_eq(corio_future_cancel(pending), 0);
  corio_future_unref(busy);
  corio_future_unref(pending);
  corio_future_unref(after);
  corio_executor_free(ex);
  corio_shm_free(shm);
  assert_no_children();
}

Test(process_pool_cancel, cancel_running_job_kills_and_replaces_its_worker)
{
  int fds = count_fds();
  corio_executor *ex;
  corio_future *hung, *next;
  double t0;
  make_shared();
  ex = pool_new(1, 0, NULL, 0);
  hung = corio_executor_submit(ex, mark_and_hang, NULL);
  wait_started(1);
  t0 = now_s();
  cr_assert_eq(corio_future_cancel(hung), 1, "a running process job can be cancelled");
  wait_done(hung, 5);
  cr_assert_lt(now_s() - t0, 2.0);
  cr_assert(corio_future_cancelled(hung));
  next = submit_i64(ex, quick, 1);
  wait_done(next, 10);
  cr_assert_eq(corio_future_int(next), 2, "a new worker took over");
  corio_future_unref(hung);
  corio_future_unref(next);
  corio_executor_free(ex);
  corio_shm_free(shm);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

/* Cancel many running and queued jobs at once, racing with their completion. */
Test(process_pool_cancel, cancel_storm)
{
  enum { N = 300 };
  corio_executor *ex = pool_new(4, 0, NULL, 0);
  corio_future *f[N];
  int i, cancelled = 0, ok = 0;
  for (i = 0; i < N; i++) f[i] = submit_i64(ex, sleep_ms, i % 3);
  for (i = 0; i < N; i += 2) corio_future_cancel(f[i]);
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  for (i = 0; i < N; i++) {
    if (corio_future_cancelled(f[i])) {
      cancelled++;
      cr_assert_eq(i % 2, 0, "job %d was not cancelled", i);
    } else {
      cr_assert_eq(corio_future_error(f[i]), 0, "%d: %s", i, corio_future_error_message(f[i]));
      cr_assert_eq(corio_future_int(f[i]), i % 3);
      ok++;
    }
    corio_future_unref(f[i]);
  }
  cr_assert_eq(cancelled + ok, N);
  cr_assert_gt(cancelled, N / 4);
  f[0] = submit_i64(ex, quick, 1);
  wait_done(f[0], 10);
  cr_assert_eq(corio_future_int(f[0]), 2);
  corio_future_unref(f[0]);
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- a timeout on a running job, from a task ---- */

struct timeout_task {
  corio_task task;
  corio_executor *ex;
  corio_future *job;
  int err;
};

static corio_step timeout_step(corio_task *t)
{
  struct timeout_task *s = corio_container_of(t, struct timeout_task, task);
  CORIO_BEGIN(t);
  s->job = corio_executor_submit(s->ex, mark_and_hang, NULL);
  CORIO_AWAIT(t, corio_wait_for(corio_future_ref(s->job), 0.2));
  s->err = corio_future_error(corio_awaited(t));
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(process_pool_cancel, wait_for_times_out_a_running_job)
{
  corio_loop *loop;
  struct timeout_task *s;
  corio_future *f, *next;
  double t0 = now_s();
  make_shared();
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  s = corio_task_new(loop, timeout_step, struct timeout_task, task);
  s->ex = pool_new(1, 0, NULL, 0);
  f = corio_task_spawn(&s->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_lt(now_s() - t0, 3.0);
  cr_assert_eq(s->err, -ETIMEDOUT);
  cr_assert(corio_future_cancelled(s->job), "the job was cancelled: its worker killed");
  next = submit_i64(s->ex, quick, 9);
  wait_done(next, 10);
  cr_assert_eq(corio_future_int(next), 10);
  corio_future_unref(next);
  corio_future_unref(s->job);
  corio_executor_free(s->ex);
  corio_future_unref(f);
  corio_future_unref(&s->task.fut);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
  corio_shm_free(shm);
  assert_no_children();
}

/* ---- shutdown ---- */

Test(process_pool_cancel, shutdown_deadline_kills_hung_workers)
{
  int fds = count_fds(), rc, i;
  corio_executor *ex;
  corio_future *hung[2], *pending[3], *late;
  double t0;
  make_shared();
  ex = pool_new(2, 0, NULL, 0);
  for (i = 0; i < 2; i++) hung[i] = corio_executor_submit(ex, mark_and_hang, NULL);
  for (i = 0; i < 3; i++) pending[i] = submit_i64(ex, quick, i);
  wait_started(2);
  t0 = now_s();
  rc = corio_executor_shutdown(ex, 1, 0, 0.3);
  cr_assert_eq(rc, -ETIMEDOUT);
  cr_assert_lt(now_s() - t0, 3.0, "a hung worker must not hang shutdown (cpython gh-82448)");
  cr_assert_geq(now_s() - t0, 0.29);
  for (i = 0; i < 2; i++) {
    cr_assert(corio_future_done(hung[i]));
    cr_assert_eq(corio_future_error(hung[i]), -ETIMEDOUT);
    cr_assert_not_null(strstr(corio_future_error_message(hung[i]), "shutdown deadline"), "%s",
                       corio_future_error_message(hung[i]));
    corio_future_unref(hung[i]);
  }
  for (i = 0; i < 3; i++) {
    cr_assert(corio_future_done(pending[i]));
    cr_assert_eq(corio_future_error(pending[i]), -ETIMEDOUT);
    corio_future_unref(pending[i]);
  }
  assert_no_children(); /* everything reaped by shutdown itself */
  late = submit_i64(ex, quick, 1);
  cr_assert_eq(corio_future_error(late), CORIO_E_CLOSED);
  corio_future_unref(late);
  corio_executor_free(ex);
  corio_shm_free(shm);
  cr_assert_eq(count_fds(), fds);
}

Test(process_pool_cancel, shutdown_cancel_futures_lets_running_jobs_finish)
{
  corio_executor *ex;
  corio_future *running[2], *pending[10];
  int i;
  make_shared(); /* before the pool: its workers inherit the mapping */
  ex = pool_new(2, 0, NULL, 0);
  for (i = 0; i < 2; i++) running[i] = submit_i64(ex, mark_and_sleep_ms, 200);
  for (i = 0; i < 10; i++) pending[i] = submit_i64(ex, quick, i);
  wait_started(2); /* not a fixed sleep: a loaded machine may take longer to fork the workers */
  cr_assert_eq(corio_executor_shutdown(ex, 1, 1, 10), 0);
  for (i = 0; i < 2; i++) {
    cr_assert_eq(corio_future_error(running[i]), 0);
    cr_assert_eq(corio_future_int(running[i]), 200);
    corio_future_unref(running[i]);
  }
  for (i = 0; i < 10; i++) {
    cr_assert(corio_future_cancelled(pending[i]));
    corio_future_unref(pending[i]);
  }
  assert_no_children();
  corio_executor_free(ex);
  corio_shm_free(shm);
}

Test(process_pool_cancel, shutdown_without_wait_still_runs_pending_jobs)
{
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  corio_future *f[20];
  int i;
  for (i = 0; i < 20; i++) f[i] = submit_i64(ex, sleep_ms, 10);
  cr_assert_eq(corio_executor_shutdown(ex, 0, 0, -1), 0);
  cr_assert_eq(corio_futures_wait_all(f, 20, 10), 0);
  for (i = 0; i < 20; i++) {
    cr_assert_eq(corio_future_int(f[i]), 10);
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
  assert_no_children();
}

Test(process_pool_cancel, free_waits_for_running_jobs)
{
  corio_executor *ex = pool_new(1, 0, NULL, 0);
  corio_future *f = submit_i64(ex, sleep_ms, 100);
  corio_executor_free(ex);
  cr_assert(corio_future_done(f));
  cr_assert_eq(corio_future_int(f), 100);
  corio_future_unref(f);
  assert_no_children();
}

/* A zero timeout on an idle pool: the workers exit in order, nothing is killed, no timeout. */
Test(process_pool_cancel, timeout_zero_shutdown_of_idle_pool_is_clean)
{
  corio_executor *ex = pool_new(3, 0, NULL, 0);
  corio_future *f = submit_i64(ex, quick, 1);
  wait_done(f, 10);
  corio_future_unref(f);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, 0), 0, "nothing was running: not a timeout");
  assert_no_children();
  corio_executor_free(ex);
}
