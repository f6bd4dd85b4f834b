/* Thread pool, short jobs: a worker running a job that has lately been short stays counted as
 * looking at the queue, so nobody is woken for what is queued behind it; the watcher must take
 * over when such a job blocks. Jobs that wait for a job queued behind them, a stream of empty
 * jobs from a loop with now and then a blocking one, and shutdown in the middle of a stream. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <corio.h>
#include "test_executor_thread_tsan.h"

TestSuite(thread_pool_short, .timeout = 60);

static corio_executor *pool(unsigned max)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = max};
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  return ex;
}

static void empty(corio_job *job)
{
  (void)job;
}

/* Many empty jobs in flight at once: every worker starts, and the pool learns that jobs are
 * short. */
static void burst(corio_executor *ex, int n)
{
  corio_future **f = calloc((size_t)n, sizeof(*f));
  int i;
  cr_assert_not_null(f);
  for (i = 0; i < n; i++) cr_assert_not_null(f[i] = corio_executor_submit(ex, empty, NULL));
  cr_assert_eq(corio_futures_wait_all(f, (size_t)n, 10), 0);
  for (i = 0; i < n; i++) corio_future_unref(f[i]);
  free(f);
}

/* A waits (up to 20 s, polling) for B, which is submitted right after it. */
static _Atomic int b_ran;

static void wait_for_b(corio_job *job)
{
  int i;
  for (i = 0; i < 200000 && !atomic_load(&b_ran); i++) usleep(100);
  corio_job_return(job, atomic_load(&b_ran));
}

static void set_b(corio_job *job)
{
  atomic_store(&b_ran, 1);
  corio_job_return(job, 7);
}

Test(thread_pool_short, a_short_job_that_blocks_does_not_hold_up_the_queue)
{
  corio_executor *ex = pool(2);
  corio_future *a, *b;
  int round;
  for (round = 0; round < 10; round++) {
    burst(ex, 3000); /* short again (the average forgets A's long run) */
    atomic_store(&b_ran, 0);
    a = corio_executor_submit(ex, wait_for_b, NULL);
    b = corio_executor_submit(ex, set_b, NULL);
    cr_assert_eq(corio_future_wait(b, 10), 0, "round %d: B ran although A blocks", round);
    cr_assert_eq(corio_future_int(b), 7);
    cr_assert_eq(corio_future_wait(a, 10), 0);
    cr_assert_eq(corio_future_int(a), 1, "round %d: A saw B", round);
    corio_future_unref(a);
    corio_future_unref(b);
  }
  corio_executor_free(ex);
}

/* From a loop: N jobs, IN_FLIGHT at a time, each completion submitting the next; every 500th job
 * sleeps 2 ms (a short job turned long). Every job completes once, with its own value. */
#ifdef CORIO_TEST_TSAN
#define N 20000
#else
#define N 200000
#endif
#define IN_FLIGHT 500

static corio_loop *loop;
static corio_executor *lpool;
static long submitted, completed, bad;

static void maybe_sleep(corio_job *job)
{
  intptr_t k = (intptr_t)corio_job_arg(job);
  if (k % 500 == 499) usleep(2000);
  corio_job_return(job, k);
}

static void done(corio_future *f, void *arg);

static void submit_one(void)
{
  corio_future *f = corio_run_in_executor(loop, lpool, maybe_sleep, (void *)(intptr_t)submitted);
  cr_assert_not_null(f);
  cr_assert_eq(corio_future_add_done_callback(f, done, (void *)(intptr_t)submitted), 0);
  submitted++;
  corio_future_unref(f);
}

static void done(corio_future *f, void *arg)
{
  if (corio_future_error(f) != 0 || corio_future_int(f) != (intptr_t)arg) bad++;
  if (++completed == N)
    corio_loop_stop(loop);
  else if (submitted < N)
    submit_one();
}

Test(thread_pool_short, a_stream_from_a_loop_with_some_long_jobs)
{
  int i;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  lpool = pool(4);
  for (i = 0; i < IN_FLIGHT; i++) submit_one();
  corio_loop_run_forever(loop);
  cr_assert_eq(completed, N);
  cr_assert_eq(bad, 0);
  corio_executor_free(lpool);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Shutdown while a stream of short jobs runs (the watcher is up): the pending jobs still run
 * (wait, no cancel), or are all cancelled (cancel_futures); nothing hangs. */
static _Atomic long ran;

static void counted(corio_job *job)
{
  atomic_fetch_add(&ran, 1);
  corio_job_return(job, 1);
}

Test(thread_pool_short, shutdown_in_the_middle_of_a_stream)
{
  enum { M = 4000 };
  static corio_future *f[M];
  corio_executor *ex;
  int i, cancel, ok, cancelled;
  for (cancel = 0; cancel < 2; cancel++) {
    ex = pool(3);
    burst(ex, 3000);
    atomic_store(&ran, 0);
    for (i = 0; i < M; i++) f[i] = corio_executor_submit(ex, counted, NULL);
    cr_assert_eq(corio_executor_shutdown(ex, 1, cancel, 10), 0);
    ok = cancelled = 0;
    for (i = 0; i < M; i++) {
      cr_assert(corio_future_done(f[i]));
      if (corio_future_cancelled(f[i]))
        cancelled++;
      else if (corio_future_int(f[i]) == 1)
        ok++;
      corio_future_unref(f[i]);
    }
    cr_assert_eq(ok + cancelled, M);
    cr_assert_eq(ok, atomic_load(&ran));
    if (!cancel) cr_assert_eq(cancelled, 0);
    corio_executor_free(ex);
  }
}
