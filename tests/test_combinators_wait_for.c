/* corio_wait_for: success, timeout (inner cancelled), an inner that wins despite the cancel,
 * values moved through, no timeout, cancellation, and use from tasks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(wait_for, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}
static void run(corio_future *f)
{
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
}

/* Sleeps `secs`, returns `value`. With `catch_cancel` it swallows its cancellation in FINALLY
 * and returns `caught_value` instead (an inner that completes despite the cancel). */
struct worker {
  corio_task task;
  double secs;
  int64_t value, caught_value;
  int err, catch_cancel;
  int finally_runs, err_in_finally;
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
  w->err_in_finally = corio_task_error(t);
  if (w->catch_cancel && corio_task_error(t) == -ECANCELED) {
    corio_task_catch(t);
    CORIO_RETURN(t, w->caught_value);
  }
  CORIO_END(t);
}
static struct worker *worker(double secs, int64_t value)
{
  struct worker *w = corio_task_new(loop, worker_step, struct worker, task);
  cr_assert_not_null(w);
  w->secs = secs;
  w->value = value;
  cr_assert_eq(corio_task_start(&w->task), 0);
  return w;
}

struct tracked {
  corio_future fut;
  int *destroyed;
  int cancellable;
};
static int tracked_cancel(corio_future *f)
{
  struct tracked *t = corio_container_of(f, struct tracked, fut);
  if (!t->cancellable) return 0; /* like a running executor job */
  return corio_future_set_cancelled(f) == 0;
}
static void tracked_destroy(corio_future *f)
{
  struct tracked *t = corio_container_of(f, struct tracked, fut);
  (*t->destroyed)++;
  free(t);
}
static const corio_future_ops tracked_ops = {tracked_cancel, tracked_destroy, "tracked"};
static corio_future *tracked(corio_loop *l, int *destroyed, int cancellable)
{
  struct tracked *t = calloc(1, sizeof(*t));
  corio_future_init(&t->fut, l, &tracked_ops);
  t->destroyed = destroyed;
  t->cancellable = cancellable;
  return &t->fut;
}

Test(wait_for, success_before_the_timeout)
{
  struct worker *w = worker(0.005, 42);
  corio_future *f = corio_wait_for(corio_future_ref(&w->task.fut), 5.0);
  double t0 = corio_loop_time(loop);
  cr_assert_not_null(f);
  run(f);
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_int(f), 42);
  cr_assert_eq(w->finally_runs, 1);
  cr_assert_eq(w->err_in_finally, 0);
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  /* the 5 s timer went with the success: the loop is idle at once */
  drain();
  cr_assert_lt(corio_loop_time(loop) - t0, 2);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, errors_pass_through_with_their_message)
{
  corio_future *inner = corio_future_new(loop), *f;
  f = corio_wait_for(corio_future_ref(inner), 1);
  corio_future_set_error_msg(inner, -ECONNREFUSED, "nobody home at 127.0.0.1:9");
  run(f);
  cr_assert_eq(corio_future_error(f), -ECONNREFUSED);
  cr_assert_str_eq(corio_future_error_message(f), "nobody home at 127.0.0.1:9");
  corio_future_unref(f);
  corio_future_unref(inner);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, timeout_cancels_the_inner)
{
  struct worker *w = worker(30, 1);
  corio_future *f = corio_wait_for(corio_future_ref(&w->task.fut), 0.02);
  double t0 = corio_loop_time(loop);
  run(f);
  cr_assert_geq(corio_loop_time(loop) - t0, 0.02, "never times out early");
  cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
  cr_assert_not(corio_future_cancelled(f), "a timeout is an error, not a cancellation");
  cr_assert(corio_future_cancelled(&w->task.fut), "the inner was cancelled");
  cr_assert_eq(w->finally_runs, 1, "and its cancellation completed before the timeout error");
  cr_assert_eq(w->err_in_finally, -ECANCELED);
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, timeout_zero)
{
  corio_future *inner = corio_sleep(loop, 10), *f, *done;
  f = corio_wait_for(inner, 0);
  run(f);
  cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
  corio_future_unref(f);
  /* an inner already done wins even with a zero timeout */
  done = corio_future_new(loop);
  corio_future_set_result(done, 5);
  f = corio_wait_for(done, 0);
  run(f);
  cr_assert_eq(corio_future_int(f), 5);
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, inner_that_completes_despite_the_cancel_wins)
{
  struct worker *w = worker(30, 1);
  corio_future *f;
  w->catch_cancel = 1;
  w->caught_value = 99;
  f = corio_wait_for(corio_future_ref(&w->task.fut), 0.01);
  run(f);
  cr_assert_eq(corio_future_error(f), 0, "the inner's result wins over the timeout");
  cr_assert_eq(corio_future_int(f), 99);
  cr_assert_eq(corio_future_int(&w->task.fut), 99);
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* An inner that cannot be cancelled is abandoned at the timeout; finishing it later is safe. */
Test(wait_for, uncancellable_inner_is_abandoned)
{
  int destroyed = 0;
  corio_future *inner = tracked(loop, &destroyed, 0), *f;
  f = corio_wait_for(corio_future_ref(inner), 0.01);
  run(f);
  cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
  cr_assert_not(corio_future_done(inner));
  corio_future_unref(f);
  corio_future_set_result(inner, 3);
  corio_future_unref(inner);
  drain();
  cr_assert_eq(destroyed, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Cancelling a wait_for whose inner cannot be cancelled completes the wait_for at once and
 * drops its timer: nothing is left to keep the loop busy until the (long) timeout. */
Test(wait_for, cancel_with_an_uncancellable_inner_drops_the_timer)
{
  int destroyed = 0;
  corio_future *inner = tracked(loop, &destroyed, 0), *f;
  f = corio_wait_for(corio_future_ref(inner), 30);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(f), 1);
  cr_assert(corio_future_cancelled(f));
  cr_assert_not(corio_future_done(inner), "abandoned, not cancelled");
  cr_assert_eq(corio_loop_run_once(loop, 0), 0, "the 30 s timer still keeps the loop alive");
  corio_future_unref(f);
  corio_future_set_result(inner, 1);
  corio_future_unref(inner);
  drain();
  cr_assert_eq(destroyed, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void free_counted(void *p)
{
  (*(int *)p)++;
}

/* The caller gave its only reference: the pointer's ownership moves to the outer future, so
 * stealing it from there makes the caller its only owner (freed once, ASan checks). */
Test(wait_for, pointer_value_is_moved_through)
{
  corio_future *inner = corio_future_new(loop), *f;
  char *p = malloc(16);
  strcpy(p, "payload");
  cr_assert_eq(corio_future_set_result_ptr(inner, p, free), 0);
  f = corio_wait_for(inner, 1);
  run(f);
  cr_assert_eq(corio_future_ptr(f), p);
  cr_assert_eq(corio_future_steal_ptr(f), p);
  corio_future_unref(f); /* must not free p: it was stolen */
  cr_assert_str_eq(p, "payload");
  free(p);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Not stolen: the destructor runs exactly once, with the last of the two futures. */
Test(wait_for, pointer_destructor_runs_once)
{
  int freed = 0;
  corio_future *inner = corio_future_new(loop), *f;
  f = corio_wait_for(inner, 1);
  cr_assert_eq(corio_future_set_result_ptr(inner, &freed, free_counted), 0);
  run(f);
  cr_assert_eq(corio_future_ptr(f), &freed);
  corio_future_unref(f);
  cr_assert_eq(freed, 1);
  /* the caller kept a reference: the value is shared, the inner keeps the destructor */
  freed = 0;
  inner = corio_future_new(loop);
  f = corio_wait_for(corio_future_ref(inner), 1);
  corio_future_set_result_ptr(inner, &freed, free_counted);
  run(f);
  cr_assert_eq(corio_future_ptr(f), &freed);
  cr_assert_eq(corio_future_ptr(inner), &freed);
  corio_future_unref(f);
  cr_assert_eq(freed, 0, "still readable through the caller's inner");
  corio_future_unref(inner);
  cr_assert_eq(freed, 1);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, bytes_value_is_moved_through)
{
  corio_future *inner = corio_future_new(loop), *f;
  corio_bytes b = corio_bytes_alloc(5), out;
  const corio_bytes *got;
  memcpy(b.data, "hello", 5);
  f = corio_wait_for(inner, 1);
  cr_assert_eq(corio_future_set_result_bytes(inner, b), 0);
  run(f);
  got = corio_future_bytes(f);
  cr_assert_not_null(got);
  cr_assert_eq(got->len, 5);
  cr_assert_eq(memcmp(got->data, "hello", 5), 0);
  cr_assert_eq(got->data, b.data, "moved, not copied, when the inner was given away");
  out = corio_future_steal_bytes(f);
  cr_assert_eq(out.len, 5);
  corio_future_unref(f);
  cr_assert_eq(memcmp(out.data, "hello", 5), 0);
  corio_bytes_free(&out);
  /* shared inner: the outer gets its own copy */
  inner = corio_future_new(loop);
  b = corio_bytes_alloc(3);
  memcpy(b.data, "abc", 3);
  f = corio_wait_for(corio_future_ref(inner), 1);
  corio_future_set_result_bytes(inner, b);
  run(f);
  got = corio_future_bytes(f);
  cr_assert_eq(got->len, 3);
  cr_assert_eq(memcmp(got->data, "abc", 3), 0);
  out = corio_future_steal_bytes(f);
  corio_future_unref(f);
  cr_assert_eq(memcmp(corio_future_bytes(inner)->data, "abc", 3), 0);
  corio_future_unref(inner);
  corio_bytes_free(&out);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, negative_timeout_waits_forever)
{
  struct worker *w = worker(0.05, 8);
  corio_future *f = corio_wait_for(corio_future_ref(&w->task.fut), -1);
  run(f);
  cr_assert_eq(corio_future_int(f), 8);
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, bad_arguments)
{
  int destroyed = 0;
  corio_future *f = corio_wait_for(tracked(loop, &destroyed, 1), NAN);
  cr_assert_not_null(f);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  cr_assert_eq(destroyed, 1, "the inner was consumed");
  corio_future_unref(f);
  /* NULL inner (a constructor out of memory): NULL, which an await turns into -ENOMEM */
  cr_assert_null(corio_wait_for(NULL, 1));
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(wait_for, cancelling_it_cancels_the_inner)
{
  struct worker *w = worker(30, 1);
  corio_future *f = corio_wait_for(corio_future_ref(&w->task.fut), 10);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(f), 1);
  run(f);
  cr_assert(corio_future_cancelled(f));
  cr_assert(corio_future_cancelled(&w->task.fut));
  cr_assert_eq(w->finally_runs, 1);
  corio_future_unref(f);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A task with a wait_for around each step: success, then a timeout that unwinds to FINALLY. */
struct fetcher {
  corio_task task;
  int steps, finally_runs, err_in_finally;
  double t_timeout;
};
static corio_step fetcher_step(corio_task *t)
{
  struct fetcher *f = corio_container_of(t, struct fetcher, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_wait_for(corio_sleep(t->loop, 0.001), 1.0));
  f->steps++;
  CORIO_AWAIT_TRY(t, corio_wait_for(corio_sleep(t->loop, 30), f->t_timeout));
  f->steps++;
  CORIO_RETURN(t, f->steps);
  CORIO_FINALLY(t);
  f->finally_runs++;
  f->err_in_finally = corio_task_error(t);
  /* the cleanup may await too */
  CORIO_AWAIT(t, corio_wait_for(corio_sleep(t->loop, 0.001), 1.0));
  CORIO_END(t);
}
Test(wait_for, awaited_from_a_task)
{
  struct fetcher *f = corio_task_new(loop, fetcher_step, struct fetcher, task);
  double t0 = corio_loop_time(loop);
  f->t_timeout = 0.02;
  cr_assert_eq(corio_task_start(&f->task), 0);
  run(&f->task.fut);
  cr_assert_eq(corio_future_error(&f->task.fut), -ETIMEDOUT);
  cr_assert_eq(f->steps, 1);
  cr_assert_eq(f->finally_runs, 1);
  cr_assert_eq(f->err_in_finally, -ETIMEDOUT);
  corio_future_unref(&f->task.fut);
  drain(); /* the 30 s sleep was cancelled: this does not take 30 s */
  cr_assert_lt(corio_loop_time(loop) - t0, 5);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}
Test(wait_for, cancelling_the_awaiting_task)
{
  struct fetcher *f = corio_task_new(loop, fetcher_step, struct fetcher, task);
  f->t_timeout = 20;
  cr_assert_eq(corio_task_start(&f->task), 0);
  cr_assert_eq(corio_call_later(loop, 0.02, cancel_cb, &f->task, NULL), 0);
  run(&f->task.fut);
  cr_assert(corio_future_cancelled(&f->task.fut), "cancelled, not timed out");
  cr_assert_eq(f->err_in_finally, -ECANCELED);
  cr_assert_eq(f->finally_runs, 1);
  corio_future_unref(&f->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
