/* Semaphore and BoundedSemaphore: counting, FIFO hand-off of permits, cancellation, bounds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(semaphore, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

Test(semaphore, counts_permits)
{
  corio_semaphore *s = corio_semaphore_new(loop, 2);
  corio_future *a = corio_semaphore_acquire(s), *b = corio_semaphore_acquire(s), *c;
  cr_assert(corio_future_done(a));
  cr_assert(corio_future_done(b));
  cr_assert_eq(corio_semaphore_value(s), 0);
  cr_assert_eq(corio_semaphore_try_acquire(s), 0);
  c = corio_semaphore_acquire(s);
  cr_assert_not(corio_future_done(c));
  cr_assert_eq(corio_semaphore_free(s), -EBUSY);
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert(corio_future_done(c), "the permit went straight to the waiter");
  cr_assert_eq(corio_semaphore_value(s), 0);
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert_eq(corio_semaphore_value(s), 2);
  cr_assert_eq(corio_semaphore_release(s), 0, "unbounded: may exceed the initial value");
  cr_assert_eq(corio_semaphore_value(s), 3);
  cr_assert_eq(corio_semaphore_try_acquire(s), 1);
  cr_assert_eq(corio_semaphore_value(s), 2);
  corio_future_unref(a);
  corio_future_unref(b);
  corio_future_unref(c);
  drain();
  cr_assert_eq(corio_semaphore_free(s), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(semaphore, zero_initial_value)
{
  corio_semaphore *s = corio_semaphore_new(loop, 0);
  corio_future *a = corio_semaphore_acquire(s);
  cr_assert_not(corio_future_done(a));
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert(corio_future_done(a));
  corio_future_unref(a);
  drain();
  cr_assert_eq(corio_semaphore_free(s), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(semaphore, bounded_release_overflow)
{
  corio_semaphore *s = corio_bounded_semaphore_new(loop, 2);
  corio_future *a;
  cr_assert_eq(corio_semaphore_release(s), -EOVERFLOW);
  cr_assert_eq(corio_semaphore_value(s), 2);
  cr_assert_eq(corio_semaphore_try_acquire(s), 1);
  a = corio_semaphore_acquire(s);
  cr_assert(corio_future_done(a));
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert_eq(corio_semaphore_release(s), -EOVERFLOW);
  cr_assert_eq(corio_semaphore_value(s), 2);
  corio_future_unref(a);
  drain();
  cr_assert_eq(corio_semaphore_free(s), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(semaphore, unbounded_release_overflow_at_uint_max)
{
  corio_semaphore *s = corio_semaphore_new(loop, UINT_MAX);
  cr_assert_eq(corio_semaphore_release(s), -EOVERFLOW);
  cr_assert_eq(corio_semaphore_value(s), UINT_MAX);
  cr_assert_eq(corio_semaphore_free(s), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(semaphore, bad_input)
{
  corio_future *f = corio_semaphore_acquire(NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  cr_assert_null(corio_semaphore_new(NULL, 1));
  cr_assert_null(corio_bounded_semaphore_new(NULL, 1));
  cr_assert_eq(corio_semaphore_release(NULL), -EINVAL);
  cr_assert_eq(corio_semaphore_try_acquire(NULL), -EINVAL);
  cr_assert_eq(corio_semaphore_value(NULL), 0);
  cr_assert_eq(corio_semaphore_free(NULL), -EINVAL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(semaphore, fifo_and_cancelled_waiter_loses_nothing)
{
  corio_semaphore *s = corio_semaphore_new(loop, 0);
  corio_future *w[4];
  int i;
  for (i = 0; i < 4; i++) w[i] = corio_semaphore_acquire(s);
  cr_assert_eq(corio_future_cancel(w[1]), 1);
  cr_assert(corio_future_cancelled(w[1]));
  corio_future_unref(w[2]); /* dropped: leaves the queue as well */
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert(corio_future_done(w[0]));
  cr_assert_not(corio_future_done(w[3]));
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert(corio_future_done(w[3]), "the permit skipped the cancelled and dropped waiters");
  cr_assert_eq(corio_future_error(w[3]), 0);
  cr_assert_eq(corio_semaphore_value(s), 0);
  cr_assert_eq(corio_semaphore_release(s), 0);
  cr_assert_eq(corio_semaphore_value(s), 1, "no permit was lost to a cancelled waiter");
  corio_future_unref(w[0]);
  corio_future_unref(w[1]);
  corio_future_unref(w[3]);
  drain();
  cr_assert_eq(corio_semaphore_free(s), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- tasks ---- */

static int inside, max_inside, done_count;

struct worker {
  corio_task task;
  corio_semaphore *s;
  int held, i;
};

static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_semaphore_acquire(w->s));
  w->held = 1;
  if (++inside > max_inside) max_inside = inside;
  for (w->i = 0; w->i < 3; w->i++) CORIO_YIELD(t);
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  if (w->held) {
    inside--;
    done_count++;
    corio_semaphore_release(w->s);
  }
  CORIO_END(t);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

Test(semaphore, limits_concurrency_and_cancel)
{
  enum { N = 20 };
  corio_semaphore *s = corio_bounded_semaphore_new(loop, 3);
  struct worker *w[N];
  int i;
  inside = max_inside = done_count = 0;
  for (i = 0; i < N; i++) {
    w[i] = corio_task_new(loop, worker_step, struct worker, task);
    w[i]->s = s;
    corio_task_start(&w[i]->task);
  }
  corio_call_soon(loop, cancel_cb, &w[N - 1]->task, NULL); /* waiting, at the end of the queue */
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_loop_run_until_complete(loop, &w[i]->task.fut), 0);
    if (i < N - 1)
      cr_assert_eq(corio_future_error(&w[i]->task.fut), 0);
    else
      cr_assert(corio_future_cancelled(&w[i]->task.fut));
    corio_future_unref(&w[i]->task.fut);
  }
  cr_assert_eq(max_inside, 3);
  cr_assert_eq(done_count, N - 1);
  cr_assert_eq(corio_semaphore_value(s), 3);
  drain();
  cr_assert_eq(corio_semaphore_free(s), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
