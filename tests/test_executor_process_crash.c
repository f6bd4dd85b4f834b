/* Process pool: workers that die (SIGKILL from inside and outside, SIGSEGV, _exit) fail only the
 * job they ran, with an error naming the signal or status, and are replaced; fork failures give
 * errors, not hangs; a dead fork server breaks the pool cleanly. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include "test_executor_process.h"

TestSuite(process_pool_crash, .init = pp_test_setup, .timeout = 60);

static void maybe_die(corio_job *job)
{
  int64_t v = input_i64(job);
  if (v % 50 == 7) raise(SIGKILL);
  corio_job_return(job, v * 3);
}

Test(process_pool_crash, sigkill_mid_job_fails_only_that_job)
{
  enum { N = 400 };
  int fds = count_fds(), died = 0;
  corio_executor *ex = pool_new(3, 0, NULL, 0);
  corio_future *f[N];
  const char *msg;
  int64_t i;
  for (i = 0; i < N; i++) f[i] = submit_i64(ex, maybe_die, i);
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0, "no hang (cpython gh-66587)");
  for (i = 0; i < N; i++) {
    if (i % 50 == 7) {
      cr_assert_eq(corio_future_error(f[i]), CORIO_E_WORKER_DIED, "job %ld", (long)i);
      msg = corio_future_error_message(f[i]);
      cr_assert_not_null(strstr(msg, "killed by signal 9"), "text: %s", msg);
      cr_assert_not_null(strstr(msg, "SIGKILL"), "text: %s", msg);
      died++;
    } else {
      cr_assert_eq(corio_future_error(f[i]), 0, "job %ld: %s", (long)i,
                   corio_future_error_message(f[i]));
      cr_assert_eq(corio_future_int(f[i]), i * 3);
    }
    corio_future_unref(f[i]);
  }
  cr_assert_eq(died, N / 50);
  /* the pool lives on (Python's BrokenProcessPool is what we do not do) */
  f[0] = submit_i64(ex, maybe_die, 1);
  wait_done(f[0], 10);
  cr_assert_eq(corio_future_int(f[0]), 3);
  corio_future_unref(f[0]);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

/* Killed from outside while it runs: the job publishes its pid in shared memory and sleeps. */
static _Atomic int *shared_pid;
static void publish_and_sleep(corio_job *job)
{
  atomic_store(shared_pid, getpid());
  sleep(30);
  corio_job_return(job, 1);
}
static void quick(corio_job *job)
{
  corio_job_return(job, input_i64(job) + 1);
}

Test(process_pool_crash, worker_killed_from_outside)
{
  corio_shm *shm;
  corio_executor *ex;
  corio_future *victim, *others[50];
  pid_t pid;
  int i;
  cr_assert_eq(corio_shm_new(&shm, 64), 0);
  shared_pid = corio_shm_alloc(shm, sizeof(*shared_pid), 0);
  ex = pool_new(2, 0, NULL, 0);
  victim = corio_executor_submit(ex, publish_and_sleep, NULL);
  for (i = 0; i < 1000 && !(pid = atomic_load(shared_pid)); i++) usleep(5000);
  cr_assert_gt(pid, 0);
  for (i = 0; i < 50; i++) others[i] = submit_i64(ex, quick, i);
  cr_assert_eq(kill(pid, SIGKILL), 0);
  wait_done(victim, 10);
  cr_assert_eq(corio_future_error(victim), CORIO_E_WORKER_DIED);
  cr_assert_not_null(strstr(corio_future_error_message(victim), "signal 9"));
  cr_assert_eq(corio_futures_wait_all(others, 50, 10), 0);
  for (i = 0; i < 50; i++) {
    cr_assert_eq(corio_future_int(others[i]), i + 1);
    corio_future_unref(others[i]);
  }
  corio_future_unref(victim);
  corio_executor_free(ex);
  corio_shm_free(shm);
  assert_no_children();
}

static volatile int *volatile null_page = (volatile int *)0;
static void segfault(corio_job *job)
{
  struct rlimit no_core = {0, 0};
  (void)job;
  /* Under ASan, its own SIGSEGV handler would report and exit(1): die of the signal instead. */
  signal(SIGSEGV, SIG_DFL);
  setrlimit(RLIMIT_CORE, &no_core);
  null_page[2] = 1;
}
static void exit3(corio_job *job)
{
  (void)job;
  _exit(3);
}
static void calls_abort(corio_job *job)
{
  struct rlimit no_core = {0, 0};
  (void)job;
  signal(SIGABRT, SIG_DFL);
  setrlimit(RLIMIT_CORE, &no_core);
  abort();
}

Test(process_pool_crash, segfault_exit_and_abort_are_named)
{
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  corio_future *seg = corio_executor_submit(ex, segfault, NULL);
  corio_future *ex3 = corio_executor_submit(ex, exit3, NULL);
  corio_future *ab = corio_executor_submit(ex, calls_abort, NULL);
  corio_future *ok = submit_i64(ex, quick, 41);
  const char *msg;
  wait_done(seg, 10);
  wait_done(ex3, 10);
  wait_done(ab, 10);
  wait_done(ok, 10);
  cr_assert_eq(corio_future_error(seg), CORIO_E_WORKER_DIED);
  msg = corio_future_error_message(seg);
  cr_assert_not_null(strstr(msg, "killed by signal 11 (SIGSEGV: Segmentation fault)"), "%s", msg);
  cr_assert_eq(corio_future_error(ex3), CORIO_E_WORKER_DIED);
  msg = corio_future_error_message(ex3);
  cr_assert_not_null(strstr(msg, "exited with status 3"), "%s", msg);
  msg = corio_future_error_message(ab);
  cr_assert_not_null(strstr(msg, "SIGABRT"), "%s", msg);
  cr_assert_eq(corio_future_int(ok), 42);
  corio_future_unref(seg);
  corio_future_unref(ex3);
  corio_future_unref(ab);
  corio_future_unref(ok);
  corio_executor_free(ex);
  assert_no_children();
}

/* Every other job crashes its worker, with max_tasks_per_child also replacing workers: a churn
 * of deaths and replacements, results all correct. */
static void crash_on_odd(corio_job *job)
{
  int64_t v = input_i64(job);
  if (v & 1) _exit(9);
  corio_job_return(job, v / 2);
}

Test(process_pool_crash, churn_of_crashes_and_retirements)
{
  enum { N = 600 };
  corio_executor *ex = pool_new(4, 2, NULL, 0);
  corio_future *f[N];
  int64_t i;
  for (i = 0; i < N; i++) f[i] = submit_i64(ex, crash_on_odd, i);
  cr_assert_eq(corio_futures_wait_all(f, N, 40), 0);
  for (i = 0; i < N; i++) {
    if (i & 1) {
      cr_assert_eq(corio_future_error(f[i]), CORIO_E_WORKER_DIED);
      cr_assert_not_null(strstr(corio_future_error_message(f[i]), "status 9"));
    } else {
      cr_assert_eq(corio_future_error(f[i]), 0, "%ld: %s", (long)i,
                   corio_future_error_message(f[i]));
      cr_assert_eq(corio_future_int(f[i]), i / 2);
    }
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
  assert_no_children();
}

/* An initializer that kills its worker: each start fails the job that was waiting for it, and
 * the pool neither loops on restarts nor hangs. */
static void init_dies(corio_job *job)
{
  (void)job;
  _exit(7);
}

Test(process_pool_crash, initializer_that_dies)
{
  enum { N = 5 };
  corio_executor *ex = pool_new(2, 0, init_dies, 0);
  corio_future *f[N];
  int i;
  for (i = 0; i < N; i++) f[i] = submit_i64(ex, quick, i);
  cr_assert_eq(corio_futures_wait_all(f, N, 20), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), CORIO_E_WORKER_DIED);
    cr_assert_not_null(strstr(corio_future_error_message(f[i]), "exited with status 7"));
    corio_future_unref(f[i]);
  }
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, 5), 0);
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- fork failures (injected in the fork server, as RLIMIT_NPROC would) ---- */

Test(process_pool_crash, fork_always_failing_fails_jobs_not_hangs)
{
  enum { N = 20 };
  int fds = count_fds();
  corio_executor *ex;
  corio_future *f[N];
  const char *msg;
  int i;
  corio__procpool_fail_forks = -1;
  ex = pool_new(3, 0, NULL, 0);
  corio__procpool_fail_forks = 0;
  for (i = 0; i < N; i++) f[i] = submit_i64(ex, quick, i);
  cr_assert_eq(corio_futures_wait_all(f, N, 10), 0, "fork failure must not hang");
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), -EAGAIN);
    msg = corio_future_error_message(f[i]);
    cr_assert_not_null(strstr(msg, "cannot start a worker process: fork failed"), "%s", msg);
    corio_future_unref(f[i]);
  }
  /* still failing, still no hang */
  f[0] = submit_i64(ex, quick, 1);
  wait_done(f[0], 10);
  cr_assert_eq(corio_future_error(f[0]), -EAGAIN);
  corio_future_unref(f[0]);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, 5), 0);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

Test(process_pool_crash, transient_fork_failure_recovers)
{
  corio_executor *ex;
  corio_future *f;
  corio__procpool_fail_forks = 1;
  ex = pool_new(1, 0, NULL, 0);
  corio__procpool_fail_forks = 0;
  f = submit_i64(ex, quick, 1);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), -EAGAIN);
  corio_future_unref(f);
  f = submit_i64(ex, quick, 2);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_eq(corio_future_int(f), 3);
  corio_future_unref(f);
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- the fork server dies ---- */

static void sleeper(corio_job *job)
{
  sleep(30);
  corio_job_return(job, 0);
}

Test(process_pool_crash, fork_server_death_breaks_the_pool_cleanly)
{
  int fds = count_fds(), st;
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  corio_future *run, *later;
  pid_t server = corio__process_pool_server_pid(ex), r;
  double t0;
  cr_assert_gt(server, 0);
  run = corio_executor_submit(ex, sleeper, NULL);
  usleep(100000);
  cr_assert_eq(kill(server, SIGKILL), 0);
  wait_done(run, 10);
  cr_assert_eq(corio_future_error(run), CORIO_E_WORKER_DIED);
  cr_assert_not_null(strstr(corio_future_error_message(run), "fork server died"), "%s",
                     corio_future_error_message(run));
  later = submit_i64(ex, quick, 1);
  wait_done(later, 10);
  cr_assert_eq(corio_future_error(later), CORIO_E_WORKER_DIED);
  cr_assert_not_null(strstr(corio_future_error_message(later), "fork server died"));
  corio_future_unref(run);
  corio_future_unref(later);
  t0 = now_s();
  corio_executor_free(ex);
  cr_assert_lt(now_s() - t0, 5.0);
  cr_assert_eq(count_fds(), fds);
  /* The orphaned worker was reparented to us (a subreaper) and killed by PDEATHSIG. */
  while ((r = waitpid(-1, &st, 0)) > 0) cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  assert_no_children();
}
