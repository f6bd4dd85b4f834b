/* corio_wait: FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED, timeouts, bad arguments. */
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
TestSuite(wait, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}
static void run(corio_future *f)
{
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
}

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
  cr_assert_not_null(w);
  w->secs = secs;
  w->value = value;
  w->err = err;
  cr_assert_eq(corio_task_start(&w->task), 0);
  return w;
}
static void refs_of(struct worker **w, corio_future **futs, int n)
{
  int i;
  for (i = 0; i < n; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
}
static void finish_workers(struct worker **w, int n)
{
  int i;
  for (i = 0; i < n; i++) {
    run(&w[i]->task.fut);
    corio_future_error(&w[i]->task.fut);
    corio_future_unref(&w[i]->task.fut);
  }
}

struct tracked {
  corio_future fut;
  int *destroyed;
};
static void tracked_destroy(corio_future *f)
{
  struct tracked *t = corio_container_of(f, struct tracked, fut);
  (*t->destroyed)++;
  free(t);
}
static const corio_future_ops tracked_ops = {NULL, tracked_destroy, "tracked"};
static corio_future *tracked(corio_loop *l, int *destroyed)
{
  struct tracked *t = calloc(1, sizeof(*t));
  corio_future_init(&t->fut, l, &tracked_ops);
  t->destroyed = destroyed;
  return &t->fut;
}

Test(wait, first_completed)
{
  /* wide gaps: a loaded machine may stall the loop, the assertions must not depend on it */
  struct worker *w[3] = {worker(0.3, 1, 0), worker(0.001, 2, 0), worker(0.3, 3, 0)};
  corio_future *futs[3], *g;
  refs_of(w, futs, 3);
  g = corio_wait(futs, 3, CORIO_FIRST_COMPLETED, -1);
  cr_assert_not(corio_future_done(g));
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_future_int(g), 1, "one child finished");
  cr_assert_eq(corio_gather_size(g), 3);
  cr_assert(corio_future_done(corio_gather_child(g, 1)));
  cr_assert_not(corio_future_done(corio_gather_child(g, 0)), "the others are left running");
  cr_assert_not(corio_future_done(corio_gather_child(g, 2)));
  corio_future_unref(g);
  run(&w[0]->task.fut);
  cr_assert_eq(corio_future_int(&w[0]->task.fut), 1, "not cancelled by the wait");
  finish_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, first_completed_counts_an_error_too)
{
  struct worker *w[2] = {worker(0.001, 0, -EIO), worker(5, 2, 0)};
  corio_future *futs[2], *g;
  refs_of(w, futs, 2);
  g = corio_wait(futs, 2, CORIO_FIRST_COMPLETED, -1);
  run(g);
  cr_assert_eq(corio_future_error(g), 0, "wait never fails because of a child");
  cr_assert_eq(corio_future_int(g), 1);
  cr_assert_eq(corio_future_error(corio_gather_child(g, 0)), -EIO);
  corio_future_unref(g);
  corio_task_cancel(&w[1]->task);
  finish_workers(w, 2);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, first_exception_returns_on_the_first_error)
{
  struct worker *w[4] = {worker(0.001, 1, 0), worker(0.01, 0, -EIO), worker(5, 3, 0),
                         worker(5, 4, 0)};
  corio_future *futs[4], *g;
  refs_of(w, futs, 4);
  g = corio_wait(futs, 4, CORIO_FIRST_EXCEPTION, -1);
  corio_loop_run_once(loop, 0);
  corio_task_cancel(&w[3]->task); /* a cancellation is not an exception */
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_future_int(g), 3, "w0 done, w3 cancelled, w1 failed");
  cr_assert_eq(corio_future_error(corio_gather_child(g, 1)), -EIO);
  cr_assert(corio_future_cancelled(corio_gather_child(g, 3)));
  cr_assert_not(corio_future_done(corio_gather_child(g, 2)), "untouched");
  corio_future_unref(g);
  corio_task_cancel(&w[2]->task);
  finish_workers(w, 4);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, first_exception_without_errors_waits_for_all)
{
  struct worker *w[3] = {worker(0.001, 1, 0), worker(0.02, 2, 0), worker(0.01, 3, 0)};
  corio_future *futs[3], *g;
  int i;
  refs_of(w, futs, 3);
  g = corio_wait(futs, 3, CORIO_FIRST_EXCEPTION, -1);
  run(g);
  cr_assert_eq(corio_future_int(g), 3);
  for (i = 0; i < 3; i++) cr_assert(corio_future_done(corio_gather_child(g, (size_t)i)));
  corio_future_unref(g);
  finish_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, all_completed_with_errors)
{
  struct worker *w[3] = {worker(0.01, 1, 0), worker(0.001, 0, -EIO), worker(0.02, 3, 0)};
  corio_future *futs[3], *g;
  int i;
  refs_of(w, futs, 3);
  g = corio_wait(futs, 3, CORIO_ALL_COMPLETED, 5);
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_future_int(g), 3);
  for (i = 0; i < 3; i++) cr_assert(corio_future_done(&w[i]->task.fut));
  cr_assert_eq(corio_future_error(corio_gather_child(g, 1)), -EIO);
  corio_future_unref(g);
  finish_workers(w, 3);
  /* The 5 s timer was removed when the wait finished: the loop is idle now. */
  cr_assert_eq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, timeout_leaves_pending_children_untouched)
{
  struct worker *w[3] = {worker(0.001, 1, 0), worker(0.3, 2, 0), worker(0.3, 3, 0)};
  corio_future *futs[3], *g;
  double t0 = corio_loop_time(loop);
  refs_of(w, futs, 3);
  g = corio_wait(futs, 3, CORIO_ALL_COMPLETED, 0.03);
  run(g);
  cr_assert_geq(corio_loop_time(loop) - t0, 0.03, "the timeout never fires early");
  cr_assert_eq(corio_future_error(g), 0, "a timeout is not an error");
  cr_assert_eq(corio_future_int(g), 1);
  cr_assert_not(corio_future_done(&w[1]->task.fut));
  cr_assert_not(corio_future_done(&w[2]->task.fut));
  corio_future_unref(g);
  run(&w[1]->task.fut);
  run(&w[2]->task.fut);
  cr_assert_eq(corio_future_int(&w[1]->task.fut), 2, "ran to the end, not cancelled");
  cr_assert_eq(corio_future_int(&w[2]->task.fut), 3);
  finish_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, timeout_zero_polls)
{
  corio_future *futs[2], *g, *pending = corio_future_new(loop);
  futs[0] = corio_future_new(loop);
  corio_future_set_result(futs[0], 1);
  futs[1] = corio_future_ref(pending);
  g = corio_wait(futs, 2, CORIO_ALL_COMPLETED, 0);
  run(g);
  cr_assert_eq(corio_future_int(g), 1);
  cr_assert_not(corio_future_done(pending));
  corio_future_unref(g);
  corio_future_set_result(pending, 2); /* lets the wait's callback go */
  corio_future_unref(pending);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, bad_arguments_fail_with_einval_and_consume)
{
  static const int bad_modes[] = {0, 4, 99, -1};
  int destroyed = 0;
  size_t i;
  corio_future *futs[2], *g;
  g = corio_wait(NULL, 0, CORIO_ALL_COMPLETED, -1);
  cr_assert_not_null(g);
  cr_assert_eq(corio_future_error(g), -EINVAL);
  corio_future_unref(g);
  futs[0] = NULL;
  g = corio_wait(futs, 0, CORIO_FIRST_COMPLETED, 1);
  cr_assert_eq(corio_future_error(g), -EINVAL);
  corio_future_unref(g);
  for (i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
    /* Plain futures whose only reference is the one given: a bad call must free them (and not
     * touch them afterwards). */
    futs[0] = tracked(loop, &destroyed);
    futs[1] = tracked(loop, &destroyed);
    g = corio_wait(futs, 2, bad_modes[i], -1);
    cr_assert_not_null(g);
    cr_assert_eq(corio_future_error(g), -EINVAL, "mode %d", bad_modes[i]);
    corio_future_unref(g);
  }
  futs[0] = tracked(loop, &destroyed);
  g = corio_wait(futs, 1, CORIO_ALL_COMPLETED, NAN);
  cr_assert_eq(corio_future_error(g), -EINVAL);
  corio_future_unref(g);
  cr_assert_eq(destroyed, 9);
  futs[0] = tracked(loop, &destroyed);
  futs[1] = NULL;
  g = corio_wait(futs, 2, CORIO_ALL_COMPLETED, -1);
  cr_assert_eq(corio_future_error(g), -ENOMEM);
  corio_future_unref(g);
  cr_assert_eq(destroyed, 10);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A child that cannot be watched (another loop's) is a usage error, as for gather: the wait
 * fails with it rather than report a completion that did not happen. */
Test(wait, child_of_another_loop_fails_with_wrong_loop)
{
  corio_loop *other;
  int destroyed = 0;
  corio_future *futs[2], *g;
  cr_assert_eq(corio_loop_new(&other, NULL), 0);
  futs[0] = corio_sleep(loop, 0.005);
  futs[1] = tracked(other, &destroyed);
  g = corio_wait(futs, 2, CORIO_ALL_COMPLETED, 10);
  run(g);
  cr_assert_eq(corio_future_error(g), CORIO_E_WRONG_LOOP);
  corio_future_unref(g);
  drain(); /* the 10 s timer went with the failure */
  cr_assert_eq(destroyed, 1);
  cr_assert_eq(corio_loop_close(other), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait, cancelling_the_wait_leaves_children_alone)
{
  struct worker *w[2] = {worker(0.02, 1, 0), worker(0.03, 2, 0)};
  corio_future *futs[2], *g;
  refs_of(w, futs, 2);
  g = corio_wait(futs, 2, CORIO_ALL_COMPLETED, 10);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(g), 1);
  cr_assert(corio_future_cancelled(g));
  corio_future_unref(g);
  finish_workers(w, 2);
  /* both finished normally, and the 10 s timer is gone */
  cr_assert_eq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A task waits for the first of several workers, then for the rest. */
struct waiter {
  corio_task task;
  struct worker *w[3];
  int64_t first, ndone;
  int finally_runs;
};
static corio_step waiter_step(corio_task *t)
{
  struct waiter *p = corio_container_of(t, struct waiter, task);
  corio_future *futs[3];
  size_t i;
  CORIO_BEGIN(t);
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(&p->w[i]->task.fut);
  CORIO_AWAIT_TRY(t, corio_wait(futs, 3, CORIO_FIRST_COMPLETED, -1));
  for (i = 0; i < 3; i++)
    if (corio_future_done(corio_gather_child(corio_awaited(t), i))) {
      p->first = corio_future_int(corio_gather_child(corio_awaited(t), i));
      break;
    }
  for (i = 0; i < 3; i++) futs[i] = corio_future_ref(&p->w[i]->task.fut);
  CORIO_AWAIT_TRY(t, corio_wait(futs, 3, CORIO_ALL_COMPLETED, 5));
  p->ndone = corio_future_int(corio_awaited(t));
  CORIO_RETURN(t, p->ndone);
  CORIO_FINALLY(t);
  p->finally_runs++;
  CORIO_END(t);
}
Test(wait, awaited_from_a_task)
{
  struct waiter *p = corio_task_new(loop, waiter_step, struct waiter, task);
  int i;
  p->w[0] = worker(0.3, 1, 0);
  p->w[1] = worker(0.001, 2, 0);
  p->w[2] = worker(0.2, 3, 0);
  cr_assert_eq(corio_task_start(&p->task), 0);
  run(&p->task.fut);
  cr_assert_eq(corio_future_int(&p->task.fut), 3);
  cr_assert_eq(p->first, 2);
  cr_assert_eq(p->finally_runs, 1);
  for (i = 0; i < 3; i++) corio_future_unref(&p->w[i]->task.fut);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A task cancelled while awaiting a wait: the wait is cancelled, its children are not. */
Test(wait, cancelling_the_awaiting_task)
{
  struct waiter *p = corio_task_new(loop, waiter_step, struct waiter, task);
  int i;
  for (i = 0; i < 3; i++) p->w[i] = worker(0.3, i, 0);
  cr_assert_eq(corio_task_start(&p->task), 0);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_task_cancel(&p->task), 1);
  run(&p->task.fut);
  cr_assert(corio_future_cancelled(&p->task.fut));
  cr_assert_eq(p->finally_runs, 1);
  for (i = 0; i < 3; i++) cr_assert_not(corio_future_done(&p->w[i]->task.fut));
  finish_workers(p->w, 3);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
