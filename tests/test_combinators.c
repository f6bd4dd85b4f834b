/* Combinators: sleep, gather, wait, wait_for, shield, as_completed, task groups. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(comb, .init = setup, .timeout = 20);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}
static void run(corio_future *f)
{
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
}

/* A task that sleeps `secs`, then returns `value` or fails with `err`. */
struct worker {
  corio_task task;
  double secs;
  int64_t value;
  int err;
  int finally_runs;
};
static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, w->secs));
  if (w->err) CORIO_THROW(t, w->err);
  CORIO_RETURN(t, w->value);
  CORIO_FINALLY(t);
  w->finally_runs++;
  CORIO_END(t);
}
static struct worker *worker(double secs, int64_t value, int err)
{
  struct worker *w = corio_task_new(loop, worker_step, struct worker, task);
  w->secs = secs;
  w->value = value;
  w->err = err;
  corio_task_start(&w->task);
  return w;
}

Test(comb, sleep_never_early_and_bad_delay)
{
  double t0 = corio_loop_time(loop);
  corio_future *s = corio_sleep(loop, 0.03), *bad = corio_sleep(loop, -1),
               *nan_ = corio_sleep(loop, NAN);
  run(s);
  cr_assert_geq(corio_loop_time(loop) - t0, 0.03);
  cr_assert_eq(corio_future_error(bad), -EINVAL);
  cr_assert_eq(corio_future_error(nan_), -EINVAL);
  corio_future_unref(s);
  corio_future_unref(bad);
  corio_future_unref(nan_);
  s = corio_sleep(loop, 10);
  cr_assert_eq(corio_future_cancel(s), 1);
  cr_assert(corio_future_cancelled(s));
  corio_future_unref(s);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, gather_results_in_order)
{
  struct worker *w[3] = {worker(0.03, 1, 0), worker(0.01, 2, 0), worker(0.02, 3, 0)};
  corio_future *futs[3], *g;
  int i;
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  g = corio_gather(futs, 3, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_gather_size(g), 3);
  for (i = 0; i < 3; i++) cr_assert_eq(corio_future_int(corio_gather_child(g, (size_t)i)), i + 1);
  cr_assert_null(corio_gather_child(g, 3));
  corio_future_unref(g);
  for (i = 0; i < 3; i++) corio_future_unref(&w[i]->task.fut);
  g = corio_gather(NULL, 0, 0); /* empty: done at once */
  cr_assert_eq(corio_future_error(g), 0);
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, gather_first_error_and_return_exceptions)
{
  struct worker *w[3] = {worker(0.05, 1, 0), worker(0.01, 0, -EIO), worker(0.02, 3, 0)};
  corio_future *futs[3], *g;
  int i;
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  g = corio_gather(futs, 3, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), -EIO);
  cr_assert_not(corio_future_done(&w[0]->task.fut), "siblings keep running without the flag");
  run(&w[0]->task.fut);
  corio_future_unref(g);
  for (i = 0; i < 3; i++) corio_future_unref(&w[i]->task.fut);
  /* RETURN_EXCEPTIONS: the gather succeeds, errors are in the children */
  w[0] = worker(0.01, 1, 0);
  w[1] = worker(0.01, 0, -EPIPE);
  for (i = 0; i < 2; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  g = corio_gather(futs, 2, CORIO_RETURN_EXCEPTIONS);
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_future_error(corio_gather_child(g, 1)), -EPIPE);
  corio_future_unref(g);
  for (i = 0; i < 2; i++) corio_future_unref(&w[i]->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, gather_cancel_on_error_cancels_siblings)
{
  struct worker *w[3] = {worker(5, 1, 0), worker(0.01, 0, -EIO), worker(5, 3, 0)};
  corio_future *futs[3], *g;
  int i;
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  g = corio_gather(futs, 3, CORIO_CANCEL_ON_ERROR);
  run(g);
  cr_assert_eq(corio_future_error(g), -EIO);
  drain();
  cr_assert(corio_future_cancelled(&w[0]->task.fut));
  cr_assert(corio_future_cancelled(&w[2]->task.fut));
  cr_assert_eq(w[0]->finally_runs + w[2]->finally_runs, 2);
  corio_future_unref(g);
  for (i = 0; i < 3; i++) corio_future_unref(&w[i]->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, cancelling_gather_cancels_children)
{
  struct worker *w[2] = {worker(5, 1, 0), worker(5, 2, 0)};
  corio_future *futs[2], *g;
  int i;
  for (i = 0; i < 2; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  g = corio_gather(futs, 2, 0);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(g), 1);
  run(g);
  cr_assert(corio_future_cancelled(g));
  for (i = 0; i < 2; i++) {
    cr_assert(corio_future_cancelled(&w[i]->task.fut));
    corio_future_unref(&w[i]->task.fut);
  }
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, gather_bad_children)
{
  corio_loop *other;
  corio_future *futs[2], *g;
  cr_assert_eq(corio_loop_new(&other, NULL), 0);
  futs[0] = corio_sleep(loop, 0);
  futs[1] = NULL;
  g = corio_gather(futs, 2, 0); /* a NULL child (failed constructor) */
  cr_assert_eq(corio_future_error(g), -ENOMEM);
  corio_future_unref(g);
  futs[0] = corio_sleep(loop, 0.01);
  futs[1] = corio_future_new(other);
  g = corio_gather(futs, 2, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), CORIO_E_WRONG_LOOP);
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(other), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, wait_modes_and_timeout)
{
  /* child 1 fails when the test says, not 20 ms after child 0 finishes: a loop that stalls
   * longer (a loaded machine) would see both timers expire in one iteration */
  struct worker *w[3] = {worker(0.01, 1, 0), NULL, worker(5, 3, 0)};
  corio_future *f1 = corio_future_new(loop);
  corio_future *c[3] = {&w[0]->task.fut, f1, &w[2]->task.fut}, *futs[3], *g;
  int i;
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(c[i]);
  g = corio_wait(futs, 3, CORIO_FIRST_COMPLETED, -1);
  run(g);
  cr_assert_eq(corio_future_int(g), 1);
  cr_assert(corio_future_done(corio_gather_child(g, 0)));
  cr_assert_not(corio_future_done(corio_gather_child(g, 1)));
  corio_future_unref(g);
  cr_assert_eq(corio_future_set_error(f1, -EIO), 0);
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(c[i]);
  g = corio_wait(futs, 3, CORIO_FIRST_EXCEPTION, -1);
  run(g);
  cr_assert_eq(corio_future_error(g), 0, "wait never fails because of a child");
  cr_assert_eq(corio_future_error(corio_gather_child(g, 1)), -EIO);
  cr_assert_not(corio_future_done(corio_gather_child(g, 2)));
  corio_future_unref(g);
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(c[i]);
  g = corio_wait(futs, 3, CORIO_ALL_COMPLETED, 0.05); /* times out: w[2] sleeps 5 s */
  run(g);
  cr_assert_eq(corio_future_int(g), 2);
  cr_assert_not(corio_future_done(&w[2]->task.fut), "wait does not cancel on timeout");
  corio_future_unref(g);
  corio_task_cancel(&w[2]->task);
  run(&w[2]->task.fut);
  for (i = 0; i < 3; i++) corio_future_unref(c[i]);
  g = corio_wait(NULL, 0, CORIO_ALL_COMPLETED, -1);
  cr_assert_eq(corio_future_error(g), -EINVAL);
  corio_future_unref(g);
  futs[0] = corio_sleep(loop, 0);
  g = corio_wait(futs, 1, 99, -1);
  cr_assert_eq(corio_future_error(g), -EINVAL);
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, wait_for_success_timeout_and_values)
{
  struct worker *w = worker(0.01, 42, 0);
  corio_future *f, *inner;
  char *p;
  f = corio_wait_for(corio_future_ref(&w->task.fut), 1.0);
  run(f);
  cr_assert_eq(corio_future_int(f), 42);
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  w = worker(5, 1, 0);
  f = corio_wait_for(corio_future_ref(&w->task.fut), 0.02);
  run(f);
  cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
  drain();
  cr_assert(corio_future_cancelled(&w->task.fut), "the inner is cancelled on timeout");
  cr_assert_eq(w->finally_runs, 1);
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  /* a pointer value moves through */
  inner = corio_future_new(loop);
  p = malloc(8);
  corio_future_set_result_ptr(inner, p, free);
  f = corio_wait_for(inner, 1);
  run(f);
  cr_assert_eq(corio_future_ptr(f), p);
  corio_future_unref(f); /* frees p exactly once (ASan checks) */
  /* no timeout */
  inner = corio_sleep(loop, 0.01);
  f = corio_wait_for(inner, -1);
  run(f);
  cr_assert_eq(corio_future_error(f), 0);
  corio_future_unref(f);
  /* cancelling the wait_for cancels the inner */
  w = worker(5, 1, 0);
  f = corio_wait_for(corio_future_ref(&w->task.fut), 10);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(f), 1);
  run(f);
  cr_assert(corio_future_cancelled(f));
  cr_assert(corio_future_cancelled(&w->task.fut));
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The inner completes in the same turn as the timeout: its result wins (nothing is lost). */
static void complete_it(void *arg)
{
  corio_future_set_result(arg, 7);
}
Test(comb, wait_for_inner_result_wins_race)
{
  corio_future *inner = corio_future_new(loop), *f;
  f = corio_wait_for(corio_future_ref(inner), 0.02);
  corio_call_later(loop, 0.02, complete_it, inner, NULL);
  run(f);
  cr_assert(corio_future_error(f) == -ETIMEDOUT || corio_future_int(f) == 7);
  corio_future_unref(f);
  drain();
  corio_future_unref(inner);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, shield_protects_inner)
{
  struct worker *w = worker(0.03, 5, 0);
  corio_future *s = corio_shield(corio_future_ref(&w->task.fut));
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(s), 1);
  cr_assert(corio_future_cancelled(s));
  run(&w->task.fut);
  cr_assert_eq(corio_future_int(&w->task.fut), 5, "the inner finished untouched");
  corio_future_unref(s);
  corio_future_unref(&w->task.fut);
  w = worker(0.01, 6, 0);
  s = corio_shield(corio_future_ref(&w->task.fut));
  run(s);
  cr_assert_eq(corio_future_int(s), 6);
  corio_future_unref(s);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, as_completed_order_and_end)
{
  struct worker *w[3] = {worker(0.03, 1, 0), worker(0.01, 2, 0), worker(0.02, 3, 0)};
  corio_future *futs[3], *n;
  corio_as_completed *it;
  int i, order[3];
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  it = corio_as_completed_new(loop, futs, 3);
  for (i = 0; i < 3; i++) {
    n = corio_as_completed_next(it);
    if (i == 0) cr_assert_not(corio_future_done(n), "waits for the first to finish");
    run(n);
    order[i] = (int)corio_future_int(corio_future_ptr(n));
    corio_future_unref(n);
  }
  cr_assert_eq(order[0], 2);
  cr_assert_eq(order[1], 3);
  cr_assert_eq(order[2], 1);
  n = corio_as_completed_next(it);
  cr_assert_eq(corio_future_error(n), CORIO_E_QUEUE_EMPTY);
  corio_future_unref(n);
  corio_as_completed_free(it);
  for (i = 0; i < 3; i++) corio_future_unref(&w[i]->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, as_completed_free_cancels_rest)
{
  struct worker *w[2] = {worker(0.01, 1, 0), worker(5, 2, 0)};
  corio_future *futs[2], *n;
  corio_as_completed *it;
  int i;
  for (i = 0; i < 2; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  it = corio_as_completed_new(loop, futs, 2);
  n = corio_as_completed_next(it);
  run(n);
  corio_future_unref(n);
  corio_as_completed_free(it);
  run(&w[1]->task.fut);
  cr_assert(corio_future_cancelled(&w[1]->task.fut));
  for (i = 0; i < 2; i++) corio_future_unref(&w[i]->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(comb, task_group_success_failure_cancel)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *a = worker(0.01, 1, 0), *b = worker(0.02, 2, 0), *c;
  corio_future *wf;
  cr_assert_eq(corio_task_group_spawn(g, &a->task), 0);
  cr_assert_eq(corio_task_group_spawn(g, &b->task), 0);
  wf = corio_task_group_wait(g);
  cr_assert_eq(corio_task_group_free(g), -EBUSY);
  run(wf);
  cr_assert_eq(corio_future_error(wf), 0);
  corio_future_unref(wf);
  c = worker(0.01, 0, 0);
  cr_assert_eq(corio_task_group_spawn(g, &c->task), CORIO_E_INVALID_STATE, "closed after wait");
  corio_task_cancel(&c->task);
  run(&c->task.fut);
  cr_assert_eq(corio_task_group_free(g), 0);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&b->task.fut);
  corio_future_unref(&c->task.fut);
  /* first failure cancels the siblings */
  g = corio_task_group_new(loop);
  a = worker(5, 1, 0);
  b = worker(0.01, 0, -EBADMSG);
  corio_task_group_spawn(g, &a->task);
  corio_task_group_spawn(g, &b->task);
  wf = corio_task_group_wait(g);
  run(wf);
  cr_assert_eq(corio_future_error(wf), -EBADMSG);
  cr_assert(corio_future_cancelled(&a->task.fut));
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&b->task.fut);
  /* cancelling the wait cancels everyone */
  g = corio_task_group_new(loop);
  a = worker(5, 1, 0);
  corio_task_group_spawn(g, &a->task);
  wf = corio_task_group_wait(g);
  corio_loop_run_once(loop, 0);
  corio_future_cancel(wf);
  run(wf);
  cr_assert(corio_future_cancelled(wf));
  cr_assert(corio_future_cancelled(&a->task.fut));
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  corio_future_unref(&a->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

/* Stress: 10,000 tasks with random sleeps gathered; 1,000 cancelled at random points. */
/* its own suite: overriding a suite's timeout per test makes Criterion leak in its runner */
TestSuite(comb_stress, .init = setup, .timeout = 60);
Test(comb_stress, gather_and_random_cancels)
{
  enum { N = 10000, C = 1000 };
  corio_future **futs = calloc(N, sizeof(*futs)), *g;
  struct worker **w = calloc(N, sizeof(*w));
  int i, finals = 0, cancelled = 0;
  srand(42);
  for (i = 0; i < N; i++) {
    w[i] = worker((rand() % 20) / 1000.0, i, 0);
    futs[i] = corio_future_ref(&w[i]->task.fut);
  }
  for (i = 0; i < C; i++)
    corio_call_later(loop, (rand() % 25) / 1000.0, cancel_cb, &w[rand() % N]->task, NULL);
  g = corio_gather(futs, N, CORIO_RETURN_EXCEPTIONS);
  run(g);
  drain();
  for (i = 0; i < N; i++) {
    /* FINALLY runs exactly once, except for a task cancelled before its first step (never ran) */
    cr_assert_leq(w[i]->finally_runs, 1);
    if (corio_future_cancelled(&w[i]->task.fut))
      cancelled++;
    else
      cr_assert_eq(w[i]->finally_runs, 1);
    if (!corio_future_cancelled(&w[i]->task.fut))
      cr_assert_eq(corio_future_int(&w[i]->task.fut), i);
    finals += w[i]->finally_runs;
    corio_future_unref(&w[i]->task.fut);
  }
  cr_assert_gt(cancelled, 0);
  cr_assert_geq(finals, N - cancelled);
  corio_future_unref(g);
  free(futs);
  free(w);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
