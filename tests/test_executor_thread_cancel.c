/* Thread pool: cancelling pending jobs, cooperative cancel of running ones, shutdown with pending,
 * running and hung jobs and a timeout, and no thread or fd left behind. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <corio.h>
#include "test_executor_thread_tsan.h"

TestSuite(thread_pool_cancel, .timeout = 30);

static int count_dir(const char *path)
{
  DIR *d = opendir(path);
  struct dirent *e;
  int n = 0;
  cr_assert_not_null(d);
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static corio_executor *pool(unsigned max)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = max};
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  return ex;
}

/* A job that blocks until the test opens the gate. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int gate_open, running;
static _Atomic int ran;

static void held(corio_job *job)
{
  pthread_mutex_lock(&mu);
  running++;
  pthread_cond_broadcast(&cv);
  while (!gate_open) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  atomic_fetch_add(&ran, 1);
  corio_job_return(job, corio_job_cancelled(job) ? 100 : 1);
}

static void wait_running(int n)
{
  pthread_mutex_lock(&mu);
  while (running < n) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
}

static void open_gate(void)
{
  pthread_mutex_lock(&mu);
  gate_open = 1;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void counted(corio_job *job)
{
  atomic_fetch_add(&ran, 1);
  corio_job_return(job, (int64_t)(intptr_t)corio_job_arg(job));
}

Test(thread_pool_cancel, cancel_pending_jobs)
{
  corio_executor *ex = pool(1);
  corio_future *first, *f[10];
  int i;
  first = corio_executor_submit(ex, held, NULL);
  wait_running(1);
  for (i = 0; i < 10; i++) f[i] = corio_executor_submit(ex, counted, (void *)(intptr_t)i);
  for (i = 1; i < 10; i += 2) {
    cr_assert_eq(corio_future_cancel(f[i]), 1);
    cr_assert(corio_future_cancelled(f[i]), "cancelled at once");
    cr_assert_eq(corio_future_error(f[i]), -ECANCELED);
    cr_assert_eq(corio_future_cancel(f[i]), 0, "already cancelled");
  }
  cr_assert_eq(corio_future_cancel(first), 0, "a running job cannot be cancelled");
  cr_assert_not(corio_future_done(first));
  open_gate();
  cr_assert_eq(corio_futures_wait_all(f, 10, 10), 0);
  cr_assert_eq(corio_future_wait(first, 10), 0);
  cr_assert_eq(corio_future_int(first), 100, "the job saw the cancellation request");
  cr_assert_not(corio_future_cancelled(first));
  for (i = 0; i < 10; i += 2) cr_assert_eq(corio_future_int(f[i]), i);
  cr_assert_eq(atomic_load(&ran), 1 + 5, "cancelled jobs never ran");
  for (i = 0; i < 10; i++) corio_future_unref(f[i]);
  corio_future_unref(first);
  corio_executor_free(ex);
}

/* A long job that polls corio_job_cancelled() and stops early. */
static _Atomic int started;
static void cooperative(corio_job *job)
{
  int i;
  atomic_store(&started, 1);
  for (i = 0; i < 10000; i++) {
    if (corio_job_cancelled(job)) {
      corio_job_fail(job, -ECANCELED, "stopped at step %d", i);
      return;
    }
    usleep(1000);
  }
  corio_job_return(job, 1);
}

Test(thread_pool_cancel, cooperative_cancel_of_a_running_job)
{
  corio_executor *ex = pool(2);
  corio_future *f = corio_executor_submit(ex, cooperative, NULL);
  while (!atomic_load(&started)) usleep(100);
  cr_assert_eq(corio_future_cancel(f), 0, "running: not cancelled, only told");
  cr_assert_eq(corio_future_wait(f, 5), 0);
  cr_assert_not(corio_future_cancelled(f));
  cr_assert_eq(corio_future_error(f), -ECANCELED);
  cr_assert_eq(strncmp(corio_future_error_message(f), "stopped at step ", 16), 0);
  corio_future_unref(f);
  corio_executor_free(ex);
}

/* A task awaiting a job: cancelling the task tells a running job (which stops) and removes a
 * pending one from the queue. */
struct awaiter {
  corio_task task;
  corio_executor *ex;
  corio_job_fn fn;
  int finally_err;
};

static corio_step awaiter_step(corio_task *t)
{
  struct awaiter *a = corio_container_of(t, struct awaiter, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_executor_submit(a->ex, a->fn, NULL));
  CORIO_RETURN(t, 1);
  CORIO_FINALLY(t);
  a->finally_err = corio_task_error(t);
  CORIO_END(t);
}

/* b first: its job waits behind a's on the single worker only while a's job runs, and a's job
 * stops when told. (Cancelling a first let the worker, on a loaded machine, finish a's job and
 * run b's before the loop thread got to b's cancel.) */
static void cancel_both(void *arg)
{
  corio_task **t = arg;
  corio_task_cancel(t[1]);
  corio_task_cancel(t[0]);
}

Test(thread_pool_cancel, cancelling_an_awaiting_task)
{
  corio_loop *loop;
  corio_executor *ex = pool(1);
  struct awaiter *a, *b;
  corio_future *fa, *fb;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  a = corio_task_new(loop, awaiter_step, struct awaiter, task);
  a->ex = ex;
  a->fn = cooperative; /* runs: told to stop */
  b = corio_task_new(loop, awaiter_step, struct awaiter, task);
  b->ex = ex;
  b->fn = counted; /* queued behind a on the single worker: removed */
  fa = corio_task_spawn(&a->task);
  fb = corio_task_spawn(&b->task);
  corio_task *both[2] = {&a->task, &b->task};
  corio_call_later(loop, 0.05, cancel_both, both, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, fa), 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, fb), 0);
  cr_assert(corio_future_cancelled(fa) || corio_future_error(fa) == -ECANCELED);
  cr_assert_eq(a->finally_err, -ECANCELED);
  cr_assert_eq(b->finally_err, -ECANCELED);
  corio_future_unref(fa);
  corio_future_unref(fb);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&b->task.fut);
  corio_executor_free(ex); /* returns: the running job stopped when told */
  cr_assert_eq(atomic_load(&ran), 0, "the queued job never ran");
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(thread_pool_cancel, shutdown_cancel_futures_cancels_pending_only)
{
  corio_executor *ex = pool(2);
  corio_future *run[2], *pend[6];
  int i;
  for (i = 0; i < 2; i++) run[i] = corio_executor_submit(ex, held, NULL);
  wait_running(2);
  for (i = 0; i < 6; i++) pend[i] = corio_executor_submit(ex, counted, (void *)(intptr_t)i);
  cr_assert_eq(corio_executor_shutdown(ex, 0, 1, -1), 0);
  for (i = 0; i < 6; i++) cr_assert(corio_future_cancelled(pend[i]));
  for (i = 0; i < 2; i++) cr_assert_not(corio_future_done(run[i]));
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, 0.05), -ETIMEDOUT, "still running");
  open_gate();
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, 5), 0);
  for (i = 0; i < 2; i++) cr_assert_eq(corio_future_int(run[i]), 1);
  cr_assert_eq(atomic_load(&ran), 2);
  for (i = 0; i < 2; i++) corio_future_unref(run[i]);
  for (i = 0; i < 6; i++) corio_future_unref(pend[i]);
  corio_executor_free(ex);
}

Test(thread_pool_cancel, shutdown_wait_runs_pending_jobs)
{
  corio_executor *ex = pool(2);
  corio_future *f[50];
  int i;
  for (i = 0; i < 50; i++) f[i] = corio_executor_submit(ex, counted, (void *)(intptr_t)i);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, -1), 0);
  for (i = 0; i < 50; i++) {
    cr_assert(corio_future_done(f[i]));
    cr_assert_eq(corio_future_int(f[i]), i);
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
}

/* A hung job: blocked reading a pipe nobody writes (until the test does). */
static int hang_fds[2];
static void hung(corio_job *job)
{
  char c;
  atomic_fetch_add(&started, 1);
  corio_job_return(job, read(hang_fds[0], &c, 1));
}

Test(thread_pool_cancel, shutdown_with_pending_running_and_hung_jobs_and_a_timeout)
{
  corio_executor *ex = pool(2);
  corio_future *h, *r, *p[4];
  double t0, took;
  int i;
  cr_assert_eq(pipe(hang_fds), 0);
  h = corio_executor_submit(ex, hung, NULL);
  r = corio_executor_submit(ex, held, NULL);
  wait_running(1);
  while (atomic_load(&started) < 1) usleep(100);
  for (i = 0; i < 4; i++) p[i] = corio_executor_submit(ex, counted, (void *)(intptr_t)i);

  t0 = now_ms();
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, 0.1), -ETIMEDOUT);
  took = now_ms() - t0;
  cr_assert(took >= 90 && took < 2000, "shutdown waited %.0f ms", took);
  /* refused from now on, the pending ones are still queued */
  for (i = 0; i < 4; i++) cr_assert_not(corio_future_done(p[i]));
  {
    corio_future *late = corio_executor_submit(ex, counted, NULL);
    cr_assert_eq(corio_future_error(late), CORIO_E_CLOSED);
    corio_future_unref(late);
  }
  open_gate(); /* the running job ends; the pending ones run on its worker */
  cr_assert_eq(corio_futures_wait_all(p, 4, 5), 0);
  for (i = 0; i < 4; i++) cr_assert_eq(corio_future_int(p[i]), i);
  cr_assert_eq(corio_future_int(r), 1);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 1, 0.05), -ETIMEDOUT, "still hung");
  cr_assert_not(corio_future_done(h));
  cr_assert_eq(write(hang_fds[1], "x", 1), 1);
  corio_executor_free(ex); /* waits again, without limit: returns now */
  cr_assert(corio_future_done(h));
  cr_assert_eq(corio_future_int(h), 1);
  corio_future_unref(h);
  corio_future_unref(r);
  for (i = 0; i < 4; i++) corio_future_unref(p[i]);
  close(hang_fds[0]);
  close(hang_fds[1]);
}

static corio_executor *self_ex;
static void shutdown_self(corio_job *job)
{
  corio_job_return(job, corio_executor_shutdown(self_ex, 1, 0, 1));
}

Test(thread_pool_cancel, shutdown_wait_from_own_job_is_refused)
{
  corio_future *f;
  self_ex = pool(2);
  f = corio_executor_submit(self_ex, shutdown_self, NULL);
  cr_assert_eq(corio_future_wait(f, 5), 0);
  cr_assert_eq(corio_future_int(f), -EDEADLK);
  corio_future_unref(f);
  f = corio_executor_submit(self_ex, counted, NULL);
  cr_assert_eq(corio_future_error(f), CORIO_E_CLOSED, "the shutdown itself happened");
  corio_future_unref(f);
  corio_executor_free(self_ex);
}

static void nothing(corio_job *job)
{
  (void)job;
}

Test(thread_pool_cancel, no_thread_or_fd_left_after_free)
{
  int threads = count_dir("/proc/self/task"), fds = count_dir("/proc/self/fd");
  corio_executor *ex;
  corio_future *f[200];
  corio_loop *loop;
  int i, round;
  for (round = 0; round < 3; round++) {
    ex = pool(8);
    for (i = 0; i < 200; i++) f[i] = corio_executor_submit(ex, nothing, NULL);
    cr_assert_eq(corio_futures_wait_all(f, 200, 10), 0);
    for (i = 0; i < 200; i++) corio_future_unref(f[i]);
    if (round == 1) cr_assert_eq(corio_executor_shutdown(ex, 0, 0, -1), 0, "no wait: free joins");
    corio_executor_free(ex);
    cr_assert_eq(count_dir("/proc/self/task"), threads);
    cr_assert_eq(count_dir("/proc/self/fd"), fds);
  }
  /* and the loop's default pool */
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  for (i = 0; i < 20; i++) f[i] = corio_run_in_executor(loop, NULL, nothing, NULL);
  for (i = 0; i < 20; i++) cr_assert_eq(corio_loop_run_until_complete(loop, f[i]), 0);
  for (i = 0; i < 20; i++) corio_future_unref(f[i]);
  cr_assert_gt(count_dir("/proc/self/task"), threads);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
  cr_assert_eq(count_dir("/proc/self/task"), threads);
  cr_assert_eq(count_dir("/proc/self/fd"), fds);
}
