/* corio_as_completed: completion order, the end, waiting next() futures, cancellation, free. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(as_completed, .init = setup, .timeout = 10);

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
static corio_as_completed *iter_of(struct worker **w, int n)
{
  corio_future *futs[8];
  corio_as_completed *it;
  int i;
  for (i = 0; i < n; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
  it = corio_as_completed_new(loop, futs, (size_t)n);
  cr_assert_not_null(it);
  return it;
}
static void unref_workers(struct worker **w, int n)
{
  int i;
  for (i = 0; i < n; i++) {
    corio_future_error(&w[i]->task.fut);
    corio_future_unref(&w[i]->task.fut);
  }
}
/* The child a next() future was completed with. */
static corio_future *child_of(corio_future *next)
{
  cr_assert(corio_future_done(next));
  cr_assert_eq(corio_future_error(next), 0);
  return corio_future_ptr(next);
}

Test(as_completed, completion_order)
{
  struct worker *w[4] = {worker(0.04, 1, 0), worker(0.01, 2, 0), worker(0.03, 0, -EIO),
                         worker(0.02, 4, 0)};
  static const int expect[4] = {1, 3, 2, 0};
  corio_as_completed *it = iter_of(w, 4);
  corio_future *n;
  int i;
  for (i = 0; i < 4; i++) {
    n = corio_as_completed_next(it);
    cr_assert_not_null(n);
    run(n);
    cr_assert_eq(child_of(n), &w[expect[i]]->task.fut, "position %d", i);
    corio_future_unref(n);
  }
  /* a failed child is handed out like the others; its error is read from it */
  cr_assert_eq(corio_future_error(&w[2]->task.fut), -EIO);
  corio_as_completed_free(it);
  unref_workers(w, 4);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, next_after_all_is_queue_empty)
{
  struct worker *w[2] = {worker(0.001, 1, 0), worker(0.002, 2, 0)};
  corio_as_completed *it = iter_of(w, 2);
  corio_future *n;
  int i;
  for (i = 0; i < 2; i++) {
    n = corio_as_completed_next(it);
    run(n);
    corio_future_unref(n);
  }
  for (i = 0; i < 2; i++) { /* and it stays so */
    n = corio_as_completed_next(it);
    cr_assert(corio_future_done(n));
    cr_assert_eq(corio_future_error(n), CORIO_E_QUEUE_EMPTY);
    corio_future_unref(n);
  }
  corio_as_completed_free(it);
  unref_workers(w, 2);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, empty_set)
{
  corio_future *futs[1] = {NULL}, *n;
  corio_as_completed *it = corio_as_completed_new(loop, futs, 0);
  cr_assert_not_null(it);
  n = corio_as_completed_next(it);
  cr_assert_eq(corio_future_error(n), CORIO_E_QUEUE_EMPTY);
  corio_future_unref(n);
  corio_as_completed_free(it);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, next_before_anything_done_waits)
{
  struct worker *w[3] = {worker(0.3, 1, 0), worker(0.001, 2, 0), worker(0.15, 3, 0)};
  corio_as_completed *it = iter_of(w, 3);
  corio_future *n[3], *extra;
  int i;
  /* three next() futures asked for at once, before any child finished: served in order */
  for (i = 0; i < 3; i++) {
    n[i] = corio_as_completed_next(it);
    cr_assert_not(corio_future_done(n[i]));
  }
  extra = corio_as_completed_next(it); /* more than there are children */
  cr_assert_eq(corio_future_error(extra), CORIO_E_QUEUE_EMPTY);
  corio_future_unref(extra);
  run(n[0]);
  cr_assert_eq(child_of(n[0]), &w[1]->task.fut);
  cr_assert_not(corio_future_done(n[1]));
  run(n[2]);
  cr_assert_eq(child_of(n[1]), &w[2]->task.fut);
  cr_assert_eq(child_of(n[2]), &w[0]->task.fut);
  for (i = 0; i < 3; i++) corio_future_unref(n[i]);
  corio_as_completed_free(it);
  unref_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, already_done_children_are_handed_out_at_once)
{
  corio_future *futs[2], *n;
  corio_as_completed *it;
  futs[0] = corio_future_new(loop);
  futs[1] = corio_future_new(loop);
  corio_future_set_result(futs[1], 11);
  it = corio_as_completed_new(loop, futs, 2);
  n = corio_as_completed_next(it);
  run(n);
  cr_assert_eq(corio_future_int(child_of(n)), 11);
  corio_future_unref(n);
  n = corio_as_completed_next(it);
  cr_assert_not(corio_future_done(n));
  corio_future_set_result(futs[0], 10); /* futs[0] still lives: the iterator holds it */
  run(n);
  cr_assert_eq(corio_future_int(child_of(n)), 10);
  corio_future_unref(n);
  corio_as_completed_free(it);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, free_cancels_the_rest)
{
  struct worker *w[3] = {worker(0.001, 1, 0), worker(30, 2, 0), worker(30, 3, 0)};
  corio_as_completed *it = iter_of(w, 3);
  corio_future *n, *waiting;
  double t0 = corio_loop_time(loop);
  n = corio_as_completed_next(it);
  run(n);
  cr_assert_eq(child_of(n), &w[0]->task.fut);
  corio_future_unref(n);
  waiting = corio_as_completed_next(it);
  cr_assert_not(corio_future_done(waiting));
  corio_as_completed_free(it);
  cr_assert(corio_future_cancelled(waiting), "a pending next() is cancelled by the free");
  corio_future_unref(waiting);
  run(&w[1]->task.fut);
  run(&w[2]->task.fut);
  cr_assert(corio_future_cancelled(&w[1]->task.fut));
  cr_assert(corio_future_cancelled(&w[2]->task.fut));
  cr_assert_eq(w[1]->finally_runs + w[2]->finally_runs, 2);
  cr_assert_eq(corio_future_int(&w[0]->task.fut), 1, "a finished child is left as it was");
  unref_workers(w, 3);
  drain();
  cr_assert_lt(corio_loop_time(loop) - t0, 5);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, free_right_away)
{
  struct worker *w[2] = {worker(30, 1, 0), worker(30, 2, 0)};
  corio_as_completed *it = iter_of(w, 2);
  corio_as_completed_free(it);
  drain();
  cr_assert(corio_future_cancelled(&w[0]->task.fut));
  cr_assert(corio_future_cancelled(&w[1]->task.fut));
  unref_workers(w, 2);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A next() future cancelled while waiting (e.g. by a wait_for around it) loses nothing: the
 * child it would have got goes to the next next(). */
Test(as_completed, cancelled_next_loses_nothing)
{
  struct worker *w[1] = {worker(0.02, 5, 0)};
  corio_as_completed *it = iter_of(w, 1);
  corio_future *n = corio_as_completed_next(it);
  cr_assert_eq(corio_future_cancel(n), 1);
  corio_future_unref(n);
  n = corio_as_completed_next(it);
  cr_assert_neq(corio_future_error(n), CORIO_E_QUEUE_EMPTY,
                "the only child was never handed out: the iterator is not exhausted");
  run(n);
  cr_assert_eq(child_of(n), &w[0]->task.fut);
  corio_future_unref(n);
  n = corio_as_completed_next(it);
  cr_assert_eq(corio_future_error(n), CORIO_E_QUEUE_EMPTY);
  corio_future_unref(n);
  corio_as_completed_free(it);
  unref_workers(w, 1);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, next_wrapped_in_wait_for)
{
  struct worker *w[2] = {worker(0.05, 1, 0), worker(0.06, 2, 0)};
  corio_as_completed *it = iter_of(w, 2);
  corio_future *f;
  int got = 0;
  /* each next() waits at most 5 ms: several time out before the children finish */
  while (got < 2) {
    f = corio_wait_for(corio_as_completed_next(it), 0.005);
    run(f);
    if (corio_future_error(f) == 0)
      got++;
    else
      cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
    corio_future_unref(f);
  }
  f = corio_as_completed_next(it);
  cr_assert_eq(corio_future_error(f), CORIO_E_QUEUE_EMPTY);
  corio_future_unref(f);
  corio_as_completed_free(it);
  unref_workers(w, 2);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(as_completed, bad_arguments)
{
  corio_future *futs[2];
  cr_assert_null(corio_as_completed_new(loop, NULL, 2));
  futs[0] = corio_sleep(loop, 0);
  futs[1] = NULL;
  cr_assert_null(corio_as_completed_new(loop, futs, 2), "a NULL child");
  futs[0] = corio_sleep(loop, 0);
  cr_assert_null(corio_as_completed_new(NULL, futs, 1), "no loop");
  corio_as_completed_free(NULL);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A task consumes an iterator: for each finished child, in completion order, sum its value. */
struct consumer {
  corio_task task;
  corio_as_completed *it;
  int64_t order[4];
  int count, finally_runs;
};
static corio_step consumer_step(corio_task *t)
{
  struct consumer *c = corio_container_of(t, struct consumer, task);
  CORIO_BEGIN(t);
  for (;;) {
    CORIO_AWAIT(t, corio_as_completed_next(c->it));
    if (corio_future_error(corio_awaited(t)) == CORIO_E_QUEUE_EMPTY) break;
    c->order[c->count++] = corio_future_int(corio_future_ptr(corio_awaited(t)));
  }
  CORIO_RETURN(t, c->count);
  CORIO_FINALLY(t);
  c->finally_runs++;
  CORIO_END(t);
}
Test(as_completed, consumed_by_a_task)
{
  struct worker *w[3] = {worker(0.02, 1, 0), worker(0, 2, 0), worker(0.01, 3, 0)};
  struct consumer *c = corio_task_new(loop, consumer_step, struct consumer, task);
  c->it = iter_of(w, 3);
  cr_assert_eq(corio_task_start(&c->task), 0);
  run(&c->task.fut);
  cr_assert_eq(corio_future_int(&c->task.fut), 3);
  cr_assert_eq(c->order[0], 2);
  cr_assert_eq(c->order[1], 3);
  cr_assert_eq(c->order[2], 1);
  corio_as_completed_free(c->it);
  corio_future_unref(&c->task.fut);
  unref_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The consuming task is cancelled while it waits on next(): the child is not lost. */
Test(as_completed, consumer_cancelled_while_waiting)
{
  struct worker *w[1] = {worker(0.03, 7, 0)};
  struct consumer *c = corio_task_new(loop, consumer_step, struct consumer, task);
  corio_future *n;
  c->it = iter_of(w, 1);
  cr_assert_eq(corio_task_start(&c->task), 0);
  corio_loop_run_once(loop, 0);
  corio_task_cancel(&c->task);
  run(&c->task.fut);
  cr_assert(corio_future_cancelled(&c->task.fut));
  cr_assert_eq(c->finally_runs, 1);
  n = corio_as_completed_next(c->it);
  cr_assert_neq(corio_future_error(n), CORIO_E_QUEUE_EMPTY);
  run(n);
  cr_assert_eq(child_of(n), &w[0]->task.fut);
  corio_future_unref(n);
  corio_as_completed_free(c->it);
  corio_future_unref(&c->task.fut);
  unref_workers(w, 1);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
