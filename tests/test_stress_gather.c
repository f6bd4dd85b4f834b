/* Stress: 10,000 tasks, each sleeping a random 0-20 ms, gathered; and a gather of 1,000
 * wait_for(sleep) of which half time out. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(stress_gather, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

struct napper {
  corio_task task;
  double secs, start, woke;
  int id, finally_runs;
};
static corio_step napper_step(corio_task *t)
{
  struct napper *n = corio_container_of(t, struct napper, task);
  CORIO_BEGIN(t);
  n->start = corio_loop_time(t->loop);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, n->secs));
  n->woke = corio_loop_time(t->loop);
  CORIO_RETURN(t, n->id);
  CORIO_FINALLY(t);
  n->finally_runs++;
  CORIO_END(t);
}

Test(stress_gather, ten_thousand_sleeping_tasks)
{
  enum { N = 10000 };
  struct napper **n = calloc(N, sizeof(*n));
  corio_future **futs = calloc(N, sizeof(*futs)), *g;
  unsigned seed = 12345;
  int i;
  for (i = 0; i < N; i++) {
    n[i] = corio_task_new(loop, napper_step, struct napper, task);
    cr_assert_not_null(n[i]);
    n[i]->id = i;
    n[i]->secs = (double)(rand_r(&seed) % 21) / 1000.0; /* 0..20 ms */
    futs[i] = corio_task_spawn(&n[i]->task);
    cr_assert_not_null(futs[i]);
  }
  g = corio_gather(futs, N, 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, g), 0);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_gather_size(g), N);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_int(corio_gather_child(g, (size_t)i)), i, "result %d in order", i);
    cr_assert_geq(n[i]->woke - n[i]->start, n[i]->secs, "task %d woke early", i);
    cr_assert_eq(n[i]->finally_runs, 1);
  }
  corio_future_unref(g);
  for (i = 0; i < N; i++) corio_future_unref(&n[i]->task.fut);
  free(n);
  free(futs);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* 1,000 wait_for(sleep): even ones sleep 0-20 ms under a 5 s timeout, odd ones sleep 10 s
 * under a 1-30 ms timeout. */
Test(stress_gather, gather_of_wait_for_half_timing_out)
{
  enum { N = 1000 };
  corio_future **futs = calloc(N, sizeof(*futs)), *g;
  unsigned seed = 777;
  double t0 = corio_loop_time(loop);
  int i, ok = 0, timed_out = 0;
  for (i = 0; i < N; i++) {
    if (i % 2 == 0)
      futs[i] = corio_wait_for(corio_sleep(loop, (rand_r(&seed) % 21) / 1000.0), 5.0);
    else
      futs[i] = corio_wait_for(corio_sleep(loop, 10.0), (1 + rand_r(&seed) % 30) / 1000.0);
    cr_assert_not_null(futs[i]);
  }
  g = corio_gather(futs, N, CORIO_RETURN_EXCEPTIONS);
  cr_assert_eq(corio_loop_run_until_complete(loop, g), 0);
  cr_assert_eq(corio_future_error(g), 0);
  for (i = 0; i < N; i++) {
    int err = corio_future_error(corio_gather_child(g, (size_t)i));
    if (i % 2 == 0) {
      cr_assert_eq(err, 0, "child %d", i);
      ok++;
    } else {
      cr_assert_eq(err, -ETIMEDOUT, "child %d", i);
      timed_out++;
    }
  }
  cr_assert_eq(ok, N / 2);
  cr_assert_eq(timed_out, N / 2);
  corio_future_unref(g);
  free(futs);
  drain(); /* every 10 s sleep was cancelled: the loop is idle long before */
  cr_assert_lt(corio_loop_time(loop) - t0, 5);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Same, without RETURN_EXCEPTIONS and with CANCEL_ON_ERROR: the first timeout fails the gather
 * and cancels every other wait_for, which cancel their sleeps. */
Test(stress_gather, first_timeout_cancels_the_rest)
{
  enum { N = 1000 };
  corio_future **futs = calloc(N, sizeof(*futs)), *g;
  double t0 = corio_loop_time(loop);
  int i, cancelled = 0;
  for (i = 0; i < N; i++)
    futs[i] = corio_wait_for(corio_sleep(loop, 10.0), i == N / 2 ? 0.005 : 5.0);
  g = corio_gather(futs, N, CORIO_CANCEL_ON_ERROR);
  cr_assert_eq(corio_loop_run_until_complete(loop, g), 0);
  cr_assert_eq(corio_future_error(g), -ETIMEDOUT);
  drain();
  for (i = 0; i < N; i++)
    if (corio_future_cancelled(corio_gather_child(g, (size_t)i))) cancelled++;
  cr_assert_eq(cancelled, N - 1);
  corio_future_unref(g);
  free(futs);
  cr_assert_lt(corio_loop_time(loop) - t0, 3);
  cr_assert_eq(corio_loop_close(loop), 0);
}
