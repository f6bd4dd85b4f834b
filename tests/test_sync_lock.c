/* Lock: uncontended use, FIFO hand-off, no barging, cancellation of waiters, misuse. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(lock, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

Test(lock, uncontended_acquire_release)
{
  corio_lock *l = corio_lock_new(loop);
  corio_future *f;
  cr_assert_not_null(l);
  cr_assert_eq(corio_lock_locked(l), 0);
  f = corio_lock_acquire(l);
  cr_assert(corio_future_done(f), "a free lock is acquired at once");
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_lock_locked(l), 1);
  cr_assert_eq(corio_lock_try_acquire(l), 0);
  cr_assert_eq(corio_lock_free(l), -EBUSY, "held");
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  cr_assert_eq(corio_lock_release(l), CORIO_E_NOT_LOCKED);
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  cr_assert_eq(corio_lock_release(l), 0);
  corio_future_unref(f);
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(lock, bad_input)
{
  corio_future *f = corio_lock_acquire(NULL);
  cr_assert_null(corio_lock_new(NULL));
  cr_assert_not_null(f);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  cr_assert_eq(corio_lock_free(NULL), -EINVAL);
  cr_assert_eq(corio_lock_release(NULL), -EINVAL);
  cr_assert_eq(corio_lock_try_acquire(NULL), -EINVAL);
  cr_assert_eq(corio_lock_locked(NULL), -EINVAL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Release hands the lock to the first waiter, in queue order; no one can barge in between. */
Test(lock, handoff_in_fifo_order_without_barging)
{
  corio_lock *l = corio_lock_new(loop);
  corio_future *held = corio_lock_acquire(l), *w[4];
  int i;
  for (i = 0; i < 4; i++) {
    w[i] = corio_lock_acquire(l);
    cr_assert_not(corio_future_done(w[i]));
  }
  cr_assert_eq(corio_lock_free(l), -EBUSY);
  for (i = 0; i < 4; i++) {
    cr_assert_eq(corio_lock_release(l), 0);
    cr_assert(corio_future_done(w[i]), "waiter %d is next", i);
    cr_assert_eq(corio_future_error(w[i]), 0);
    if (i < 3) cr_assert_not(corio_future_done(w[i + 1]));
    cr_assert_eq(corio_lock_locked(l), 1, "owned by the waiter, never free in between");
    cr_assert_eq(corio_lock_try_acquire(l), 0, "no barging");
  }
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  for (i = 0; i < 4; i++) corio_future_unref(w[i]);
  corio_future_unref(held);
  drain();
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Fairness: a free lock with waiters cannot exist, but try_acquire never skips the queue. */
Test(lock, try_acquire_respects_queue)
{
  corio_lock *l = corio_lock_new(loop);
  corio_future *w;
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  w = corio_lock_acquire(l);
  cr_assert_eq(corio_lock_try_acquire(l), 0);
  corio_lock_release(l);
  cr_assert(corio_future_done(w));
  cr_assert_eq(corio_lock_try_acquire(l), 0);
  corio_lock_release(l);
  corio_future_unref(w);
  drain();
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(lock, cancelled_waiter_holds_nothing)
{
  corio_lock *l = corio_lock_new(loop);
  corio_future *held = corio_lock_acquire(l), *a = corio_lock_acquire(l),
               *b = corio_lock_acquire(l);
  cr_assert_eq(corio_future_cancel(a), 1);
  cr_assert(corio_future_cancelled(a));
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert(corio_future_done(b), "the lock skips the cancelled waiter");
  cr_assert_eq(corio_future_error(b), 0);
  cr_assert_eq(corio_future_cancel(b), 0, "granted: too late to cancel");
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  cr_assert_eq(corio_lock_free(l), 0);
  corio_future_unref(held);
  corio_future_unref(a);
  corio_future_unref(b);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A waiter nobody references any more leaves the queue (it would otherwise hold the lock for
 * nobody, forever). */
Test(lock, dropped_waiter_leaves_queue)
{
  corio_lock *l = corio_lock_new(loop);
  corio_future *held = corio_lock_acquire(l), *a = corio_lock_acquire(l);
  corio_future_unref(a);
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  corio_future_unref(held);
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A waiter completed behind the lock's back (misuse) refuses the grant: it goes to the next. */
Test(lock, refused_grant_goes_to_next)
{
  corio_lock *l = corio_lock_new(loop);
  corio_future *held = corio_lock_acquire(l), *a = corio_lock_acquire(l),
               *b = corio_lock_acquire(l);
  cr_assert_eq(corio_future_set_error(a, -EIO), 0);
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_future_error(a), -EIO);
  cr_assert(corio_future_done(b));
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  corio_future_unref(held);
  corio_future_unref(a);
  corio_future_unref(b);
  drain();
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- tasks ---- */

static int inside, max_inside, order[64], norder;

struct locker {
  corio_task task;
  corio_lock *lock;
  int id, iters, i, yields, y, held, got_lock;
};

static corio_step locker_step(corio_task *t)
{
  struct locker *k = corio_container_of(t, struct locker, task);
  CORIO_BEGIN(t);
  for (k->i = 0; k->i < k->iters; k->i++) {
    CORIO_AWAIT_TRY(t, corio_lock_acquire(k->lock));
    k->held = 1;
    k->got_lock++;
    if (norder < 64) order[norder++] = k->id;
    if (++inside > max_inside) max_inside = inside;
    for (k->y = 0; k->y < k->yields; k->y++) CORIO_YIELD(t);
    inside--;
    k->held = 0;
    corio_lock_release(k->lock);
  }
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  if (k->held) {
    inside--;
    cr_assert_eq(corio_lock_release(k->lock), 0);
  }
  CORIO_END(t);
}

static struct locker *locker_new(corio_lock *l, int id, int iters, int yields)
{
  struct locker *k = corio_task_new(loop, locker_step, struct locker, task);
  cr_assert_not_null(k);
  k->lock = l;
  k->id = id;
  k->iters = iters;
  k->yields = yields;
  cr_assert_eq(corio_task_start(&k->task), 0);
  return k;
}

Test(lock, tasks_get_lock_in_arrival_order)
{
  corio_lock *l = corio_lock_new(loop);
  struct locker *k[6];
  int i;
  inside = max_inside = norder = 0;
  for (i = 0; i < 6; i++) k[i] = locker_new(l, i, 2, 2);
  for (i = 0; i < 6; i++) cr_assert_eq(corio_loop_run_until_complete(loop, &k[i]->task.fut), 0);
  cr_assert_eq(max_inside, 1);
  cr_assert_eq(norder, 12);
  /* Each task queues again behind the others when it releases: strict round robin. */
  for (i = 0; i < 12; i++) cr_assert_eq(order[i], i % 6, "turn %d went to %d", i, order[i]);
  for (i = 0; i < 6; i++) corio_future_unref(&k[i]->task.fut);
  drain();
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void release_cb(void *arg)
{
  cr_assert_eq(corio_lock_release(arg), 0);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

/* A task cancelled while waiting never holds the lock; the next waiter gets it. */
Test(lock, cancel_waiting_task)
{
  corio_lock *l = corio_lock_new(loop);
  struct locker *a, *b;
  inside = max_inside = norder = 0;
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  a = locker_new(l, 0, 1, 0);
  b = locker_new(l, 1, 1, 0);
  corio_call_later(loop, 0.01, cancel_cb, &a->task, NULL);
  corio_call_later(loop, 0.02, release_cb, l, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, &b->task.fut), 0);
  cr_assert(corio_future_cancelled(&a->task.fut));
  cr_assert_eq(a->got_lock, 0);
  cr_assert_eq(b->got_lock, 1);
  cr_assert_eq(corio_future_error(&b->task.fut), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&b->task.fut);
  drain();
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void release_then_cancel_cb(void *arg)
{
  struct locker *k = arg;
  cr_assert_eq(corio_lock_release(k->lock), 0); /* hands the lock to k */
  corio_task_cancel(&k->task);
}

/* Granted, then cancelled in the same turn: the task still receives the lock (nothing lost), the
 * cancellation strikes at its next await, and its FINALLY releases the lock. */
Test(lock, cancel_after_grant_still_receives_lock)
{
  corio_lock *l = corio_lock_new(loop);
  struct locker *k;
  inside = max_inside = norder = 0;
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  k = locker_new(l, 0, 1, 1);
  corio_call_later(loop, 0.01, release_then_cancel_cb, k, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, &k->task.fut), 0);
  cr_assert(corio_future_cancelled(&k->task.fut));
  cr_assert_eq(k->got_lock, 1, "the grant was delivered despite the cancel");
  cr_assert_eq(corio_lock_locked(l), 0, "and released by FINALLY");
  corio_future_unref(&k->task.fut);
  drain();
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* wait_for() times out a waiting acquire: the waiter is removed and holds nothing. */
Test(lock, wait_for_timeout_on_acquire)
{
  corio_lock *l = corio_lock_new(loop);
  corio_future *f;
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  f = corio_wait_for(corio_lock_acquire(l), 0.01);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0);
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(lock, stress_mutual_exclusion)
{
  enum { N = 50, ITERS = 200 };
  corio_lock *l = corio_lock_new(loop);
  struct locker *k[N];
  int i, total = 0;
  inside = max_inside = norder = 0;
  for (i = 0; i < N; i++) k[i] = locker_new(l, i, ITERS, i % 3);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_loop_run_until_complete(loop, &k[i]->task.fut), 0);
    cr_assert_eq(corio_future_error(&k[i]->task.fut), 0);
    total += k[i]->got_lock;
    corio_future_unref(&k[i]->task.fut);
  }
  cr_assert_eq(max_inside, 1);
  cr_assert_eq(total, N * ITERS);
  drain();
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- allocation failure ---- */

static int allow = -1; /* allocations left before failing; -1: no limit */
static void *failing_malloc(size_t n, void *ctx)
{
  (void)ctx;
  if (allow == 0) return NULL;
  if (allow > 0) allow--;
  return malloc(n);
}
static void *failing_realloc(void *p, size_t n, void *ctx)
{
  (void)ctx;
  if (allow == 0) return NULL;
  if (allow > 0) allow--;
  return realloc(p, n);
}
static void plain_free(void *p, void *ctx)
{
  (void)ctx;
  free(p);
}

/* Out of memory, acquire returns NULL (an await turns it into -ENOMEM) and the lock is as it
 * was: neither taken nor queued for. */
Test(lock, out_of_memory_changes_nothing)
{
  corio_allocator a = {failing_malloc, failing_realloc, plain_free, NULL};
  corio_lock *l = corio_lock_new(loop);
  corio_condition *c = corio_condition_new(loop, l);
  corio_set_allocator(&a);
  allow = 0;
  cr_assert_null(corio_lock_acquire(l));
  cr_assert_eq(corio_lock_locked(l), 0);
  cr_assert_null(corio_lock_new(loop));
  cr_assert_null(corio_condition_new(loop, NULL));
  allow = 1; /* the condition, not its lock */
  cr_assert_null(corio_condition_new(loop, NULL));
  cr_assert_eq(allow, 0);
  cr_assert_eq(corio_lock_try_acquire(l), 1);
  cr_assert_null(corio_lock_acquire(l));
  cr_assert_null(corio_condition_wait(c));
  cr_assert_eq(corio_lock_locked(l), 1, "a failed wait does not release the lock");
  allow = -1;
  corio_set_allocator(NULL);
  cr_assert_eq(corio_lock_release(l), 0);
  cr_assert_eq(corio_lock_locked(l), 0, "nobody was queued");
  cr_assert_eq(corio_condition_free(c), 0);
  cr_assert_eq(corio_lock_free(l), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
