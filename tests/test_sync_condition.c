/* Condition: wait releases and re-acquires the lock, notify order, cancellation re-holds the
 * lock, notifications are passed on, misuse. */
#include <criterion/criterion.h>
#include <errno.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(condition, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

Test(condition, requires_the_lock)
{
  corio_condition *c = corio_condition_new(loop, NULL);
  corio_future *f;
  cr_assert_not_null(c);
  cr_assert_not_null(corio_condition_lock(c));
  f = corio_condition_wait(c);
  cr_assert_eq(corio_future_error(f), CORIO_E_NOT_LOCKED);
  corio_future_unref(f);
  cr_assert_eq(corio_condition_notify(c, 1), CORIO_E_NOT_LOCKED);
  cr_assert_eq(corio_condition_notify_all(c), CORIO_E_NOT_LOCKED);
  cr_assert_eq(corio_lock_try_acquire(corio_condition_lock(c)), 1);
  cr_assert_eq(corio_condition_notify(c, 1), 0, "nobody to wake");
  cr_assert_eq(corio_condition_free(c), -EBUSY, "its own lock is held");
  cr_assert_eq(corio_lock_release(corio_condition_lock(c)), 0);
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(condition, bad_input)
{
  corio_future *f = corio_condition_wait(NULL);
  corio_loop *other;
  corio_lock *l;
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  cr_assert_null(corio_condition_new(NULL, NULL));
  cr_assert_null(corio_condition_lock(NULL));
  cr_assert_eq(corio_condition_notify(NULL, 1), -EINVAL);
  cr_assert_eq(corio_condition_notify_all(NULL), -EINVAL);
  cr_assert_eq(corio_condition_free(NULL), -EINVAL);
  cr_assert_eq(corio_loop_new(&other, NULL), 0);
  l = corio_lock_new(other);
  cr_assert_null(corio_condition_new(loop, l), "a lock of another loop");
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(other), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The whole protocol, step by step, with futures. */
Test(condition, wait_releases_and_reacquires)
{
  corio_lock *l = corio_lock_new(loop);
  corio_condition *c = corio_condition_new(loop, l);
  corio_future *a, *b, *h;
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  a = corio_condition_wait(c);
  cr_assert_eq(corio_lock_locked(l), 0, "wait released the lock");
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  b = corio_condition_wait(c);
  cr_assert_eq(corio_condition_free(c), -EBUSY);
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  cr_assert_eq(corio_condition_notify(c, 1), 1);
  cr_assert_not(corio_future_done(a), "notified, but the lock is still ours");
  /* Another acquirer queued after the notify comes after the notified waiter. */
  h = corio_lock_acquire(l);
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert(corio_future_done(a));
  cr_assert_eq(corio_future_error(a), 0);
  cr_assert_eq(corio_lock_locked(l), 1, "a holds the lock again");
  cr_assert_not(corio_future_done(b), "not notified");
  cr_assert_not(corio_future_done(h));
  cr_assert_eq(corio_lock_release(l), 0); /* a is done with it: h's turn */
  cr_assert(corio_future_done(h));
  cr_assert_eq(corio_condition_notify_all(c), 1);
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert(corio_future_done(b));
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  corio_future_unref(a);
  corio_future_unref(b);
  corio_future_unref(h);
  drain();
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Cancelled while waiting for a notify, with the lock held by someone else: the future completes
 * (cancelled) only once the lock is the waiter's again. */
Test(condition, cancel_reacquires_before_completing)
{
  corio_condition *c = corio_condition_new(loop, NULL);
  corio_lock *l = corio_condition_lock(c);
  corio_future *a;
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  a = corio_condition_wait(c);
  cr_assert_eq(corio_lock_try_acquire(l), 1); /* someone else holds it now */
  cr_assert_eq(corio_future_cancel(a), 1);
  cr_assert_not(corio_future_done(a), "must re-acquire the lock first");
  cr_assert_eq(corio_future_cancel(a), 1, "a second cancel is harmless");
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert(corio_future_cancelled(a));
  cr_assert_eq(corio_lock_locked(l), 1, "held by the cancelled waiter");
  cr_assert_eq(corio_lock_release(l), 0);
  corio_future_unref(a);
  drain();
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(condition, cancel_with_free_lock_completes_at_once)
{
  corio_condition *c = corio_condition_new(loop, NULL);
  corio_lock *l = corio_condition_lock(c);
  corio_future *a;
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  a = corio_condition_wait(c);
  cr_assert_eq(corio_lock_locked(l), 0);
  cr_assert_eq(corio_future_cancel(a), 1);
  cr_assert(corio_future_cancelled(a));
  cr_assert_eq(corio_lock_locked(l), 1);
  cr_assert_eq(corio_lock_release(l), 0);
  corio_future_unref(a);
  drain();
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Cancelled after being notified: its notification goes to the next waiter (asyncio). */
Test(condition, cancel_after_notify_passes_notification_on)
{
  corio_condition *c = corio_condition_new(loop, NULL);
  corio_lock *l = corio_condition_lock(c);
  corio_future *a, *b;
  corio_lock_try_acquire(l);
  a = corio_condition_wait(c);
  corio_lock_try_acquire(l);
  b = corio_condition_wait(c);
  corio_lock_try_acquire(l);
  cr_assert_eq(corio_condition_notify(c, 1), 1);
  cr_assert_eq(corio_future_cancel(a), 1);
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert(corio_future_cancelled(a));
  cr_assert_not(corio_future_done(b));
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert(corio_future_done(b), "b got a's notification");
  cr_assert_eq(corio_future_error(b), 0);
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  corio_future_unref(a);
  corio_future_unref(b);
  drain();
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(condition, dropped_waiter_releases_condition)
{
  corio_condition *c = corio_condition_new(loop, NULL);
  corio_lock *l = corio_condition_lock(c);
  corio_lock_try_acquire(l);
  corio_future_unref(corio_condition_wait(c));
  cr_assert_eq(corio_lock_locked(l), 0);
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- tasks ---- */

static int items, consumed, inside, max_inside, order[32], norder;

struct consumer {
  corio_task task;
  corio_condition *c;
  int id, held, got, release_rc;
};

/* The classic loop: while no item, wait; take one. FINALLY can always release: wait() re-holds
 * the lock also when cancelled. */
static corio_step consumer_step(corio_task *t)
{
  struct consumer *k = corio_container_of(t, struct consumer, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_lock_acquire(corio_condition_lock(k->c)));
  k->held = 1;
  if (++inside > max_inside) max_inside = inside;
  while (items == 0) {
    inside--;
    CORIO_AWAIT_TRY(t, corio_condition_wait(k->c));
    if (++inside > max_inside) max_inside = inside;
  }
  items--;
  k->got = 1;
  consumed++;
  if (norder < 32) order[norder++] = k->id;
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  if (k->held) {
    inside--;
    k->release_rc = corio_lock_release(corio_condition_lock(k->c));
  }
  CORIO_END(t);
}

static struct consumer *consumer_new(corio_condition *c, int id)
{
  struct consumer *k = corio_task_new(loop, consumer_step, struct consumer, task);
  cr_assert_not_null(k);
  k->c = c;
  k->id = id;
  k->release_rc = 1;
  cr_assert_eq(corio_task_start(&k->task), 0);
  return k;
}

struct producer {
  corio_task task;
  corio_condition *c;
  int rounds, per_round, i, all;
};

static corio_step producer_step(corio_task *t)
{
  struct producer *p = corio_container_of(t, struct producer, task);
  CORIO_BEGIN(t);
  for (p->i = 0; p->i < p->rounds; p->i++) {
    CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.001));
    CORIO_AWAIT_TRY(t, corio_lock_acquire(corio_condition_lock(p->c)));
    if (++inside > max_inside) max_inside = inside;
    items += p->per_round;
    if (p->all)
      corio_condition_notify_all(p->c);
    else
      corio_condition_notify(p->c, (size_t)p->per_round);
    inside--;
    corio_lock_release(corio_condition_lock(p->c));
  }
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

static struct producer *producer_new(corio_condition *c, int rounds, int per_round, int all)
{
  struct producer *p = corio_task_new(loop, producer_step, struct producer, task);
  cr_assert_not_null(p);
  p->c = c;
  p->rounds = rounds;
  p->per_round = per_round;
  p->all = all;
  cr_assert_eq(corio_task_start(&p->task), 0);
  return p;
}

static void reset_counters(void)
{
  items = consumed = norder = max_inside = inside = 0;
}

/* Consumers hold the lock one at a time (inside counts the holders) and are served in FIFO
 * order. */
static void run_consumers(int all)
{
  enum { N = 6 };
  corio_condition *c = corio_condition_new(loop, NULL);
  struct consumer *k[N];
  struct producer *p;
  int i;
  reset_counters();
  for (i = 0; i < N; i++) k[i] = consumer_new(c, i);
  p = producer_new(c, 3, 2, all);
  cr_assert_eq(corio_loop_run_until_complete(loop, &p->task.fut), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_loop_run_until_complete(loop, &k[i]->task.fut), 0);
    cr_assert_eq(corio_future_error(&k[i]->task.fut), 0);
    cr_assert_eq(k[i]->release_rc, 0);
    corio_future_unref(&k[i]->task.fut);
  }
  cr_assert_eq(consumed, N);
  cr_assert_eq(max_inside, 1, "one holder of the lock at a time");
  for (i = 0; i < N; i++) cr_assert_eq(order[i], i, "served in FIFO order");
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_condition_free(c), 0);
}

Test(condition, notify_n_wakes_fifo)
{
  run_consumers(0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(condition, notify_all_wakes_everyone)
{
  run_consumers(1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

struct holder {
  corio_task task;
  corio_lock *l;
  double hold_s;
};

static corio_step holder_step(corio_task *t)
{
  struct holder *h = corio_container_of(t, struct holder, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_lock_acquire(h->l));
  CORIO_AWAIT(t, corio_sleep(t->loop, h->hold_s));
  corio_lock_release(h->l);
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* A task cancelled in wait() unwinds only once it holds the lock again, so its FINALLY's
 * release succeeds; and it re-takes the lock only after the task that held it let go. */
Test(condition, cancelled_task_holds_lock_in_finally)
{
  corio_condition *c = corio_condition_new(loop, NULL);
  struct consumer *k;
  struct holder *h;
  reset_counters();
  k = consumer_new(c, 0);
  corio_loop_run_once(loop, 0); /* k acquires and waits */
  corio_loop_run_once(loop, 0);
  h = corio_task_new(loop, holder_step, struct holder, task);
  h->l = corio_condition_lock(c);
  h->hold_s = 0.03;
  corio_task_start(&h->task);
  corio_call_later(loop, 0.01, cancel_cb, &k->task, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, &k->task.fut), 0);
  cr_assert(corio_future_cancelled(&k->task.fut));
  cr_assert(corio_future_done(&h->task.fut), "k got the lock back only after h released it");
  cr_assert_eq(k->release_rc, 0, "FINALLY held the lock");
  cr_assert_eq(corio_lock_locked(corio_condition_lock(c)), 0);
  corio_future_unref(&k->task.fut);
  corio_future_unref(&h->task.fut);
  drain();
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

struct timed {
  corio_task task;
  corio_condition *c;
  int held, wait_err, release_rc;
};

static corio_step timed_step(corio_task *t)
{
  struct timed *w = corio_container_of(t, struct timed, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_lock_acquire(corio_condition_lock(w->c)));
  w->held = 1;
  CORIO_AWAIT(t, corio_wait_for(corio_condition_wait(w->c), 0.01));
  w->wait_err = corio_future_error(corio_awaited(t));
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  if (w->held) w->release_rc = corio_lock_release(corio_condition_lock(w->c));
  CORIO_END(t);
}

/* wait_for() on a condition wait: the timeout cancels the wait, which completes once the lock is
 * held again, and wait_for reports -ETIMEDOUT with the lock held. */
Test(condition, wait_for_timeout_keeps_lock)
{
  corio_condition *c = corio_condition_new(loop, NULL);
  struct timed *w = corio_task_new(loop, timed_step, struct timed, task);
  w->c = c;
  w->release_rc = 1;
  corio_task_start(&w->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, &w->task.fut), 0);
  cr_assert_eq(corio_future_error(&w->task.fut), 0);
  cr_assert_eq(w->wait_err, -ETIMEDOUT);
  cr_assert_eq(w->release_rc, 0);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
