/* Event: set wakes every waiter, wait on a set event is done at once, clear, cancellation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(event, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

Test(event, set_clear_and_immediate_wait)
{
  corio_event *e = corio_event_new(loop);
  corio_future *f, *g;
  cr_assert_not_null(e);
  cr_assert_eq(corio_event_is_set(e), 0);
  f = corio_event_wait(e);
  cr_assert_not(corio_future_done(f));
  corio_event_set(e);
  cr_assert_eq(corio_event_is_set(e), 1);
  cr_assert(corio_future_done(f));
  cr_assert_eq(corio_future_error(f), 0);
  g = corio_event_wait(e);
  cr_assert(corio_future_done(g), "already set: done at once");
  corio_future_unref(g);
  corio_event_clear(e);
  cr_assert_eq(corio_event_is_set(e), 0);
  g = corio_event_wait(e);
  cr_assert_not(corio_future_done(g), "cleared: waits again");
  cr_assert_eq(corio_event_free(e), -EBUSY);
  corio_event_set(e);
  cr_assert(corio_future_done(g));
  corio_future_unref(f);
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_event_free(e), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(event, bad_input)
{
  corio_future *f = corio_event_wait(NULL);
  cr_assert_null(corio_event_new(NULL));
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  corio_event_set(NULL);
  corio_event_clear(NULL);
  cr_assert_eq(corio_event_is_set(NULL), -EINVAL);
  cr_assert_eq(corio_event_free(NULL), -EINVAL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(event, cancelled_waiter_is_removed)
{
  corio_event *e = corio_event_new(loop);
  corio_future *a = corio_event_wait(e), *b = corio_event_wait(e);
  cr_assert_eq(corio_future_cancel(a), 1);
  cr_assert(corio_future_cancelled(a));
  corio_future_unref(a);
  corio_future_unref(b); /* dropped without cancel: leaves the event too */
  cr_assert_eq(corio_event_free(e), 0, "no waiter left");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- tasks ---- */

static int woken;

struct waiter_task {
  corio_task task;
  corio_event *e;
  int woke;
};

static corio_step waiter_step(corio_task *t)
{
  struct waiter_task *w = corio_container_of(t, struct waiter_task, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_event_wait(w->e));
  w->woke = ++woken;
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

static struct waiter_task *waiter_new(corio_event *e)
{
  struct waiter_task *w = corio_task_new(loop, waiter_step, struct waiter_task, task);
  cr_assert_not_null(w);
  w->e = e;
  cr_assert_eq(corio_task_start(&w->task), 0);
  return w;
}

static void set_cb(void *arg)
{
  corio_event_set(arg);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

Test(event, set_wakes_every_task_in_order)
{
  enum { N = 8 };
  corio_event *e = corio_event_new(loop);
  struct waiter_task *w[N];
  int i;
  woken = 0;
  for (i = 0; i < N; i++) w[i] = waiter_new(e);
  corio_call_later(loop, 0.01, cancel_cb, &w[3]->task, NULL);
  corio_call_later(loop, 0.02, set_cb, e, NULL);
  for (i = 0; i < N; i++) cr_assert_eq(corio_loop_run_until_complete(loop, &w[i]->task.fut), 0);
  cr_assert_eq(woken, N - 1);
  cr_assert(corio_future_cancelled(&w[3]->task.fut));
  cr_assert_eq(w[3]->woke, 0);
  for (i = 0; i < N; i++) {
    if (i != 3) cr_assert_eq(w[i]->woke, i < 3 ? i + 1 : i, "FIFO wakeup order");
    corio_future_unref(&w[i]->task.fut);
  }
  drain();
  cr_assert_eq(corio_event_free(e), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(event, wait_for_timeout_removes_waiter)
{
  corio_event *e = corio_event_new(loop);
  corio_future *f = corio_wait_for(corio_event_wait(e), 0.01);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_event_free(e), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Set then clear before the waiters run: they were woken by the set and still complete. */
Test(event, set_then_clear_still_wakes)
{
  corio_event *e = corio_event_new(loop);
  struct waiter_task *w = waiter_new(e);
  woken = 0;
  corio_loop_run_once(loop, 0); /* the task runs and waits */
  cr_assert_not(corio_future_done(&w->task.fut));
  corio_event_set(e);
  corio_event_clear(e);
  cr_assert_eq(corio_loop_run_until_complete(loop, &w->task.fut), 0);
  cr_assert_eq(w->woke, 1);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_event_free(e), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
