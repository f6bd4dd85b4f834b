/* Queue: FIFO, LIFO and priority order, maxsize, hand-off to getters, cancellation losing
 * nothing, task_done/join, shutdown, and a many-producer many-consumer stress run. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(queue, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

#define P(x) ((void *)(uintptr_t)(x))
#define V(p) ((uintptr_t)(p))

static uintptr_t get_now(corio_queue *q)
{
  void *item = NULL;
  cr_assert_eq(corio_queue_get_nowait(q, &item), 0);
  return V(item);
}

Test(queue, fifo_order_and_sizes)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 0);
  void *item;
  int i;
  cr_assert_not_null(q);
  cr_assert_eq(corio_queue_empty(q), 1);
  cr_assert_eq(corio_queue_full(q), 0);
  cr_assert_eq(corio_queue_get_nowait(q, &item), CORIO_E_QUEUE_EMPTY);
  /* Enough to wrap and grow the ring a few times while it is partly drained. */
  for (i = 1; i <= 10; i++) cr_assert_eq(corio_queue_put_nowait(q, P(i), 0), 0);
  for (i = 1; i <= 5; i++) cr_assert_eq(get_now(q), (uintptr_t)i);
  for (i = 11; i <= 100; i++) cr_assert_eq(corio_queue_put_nowait(q, P(i), 0), 0);
  cr_assert_eq(corio_queue_size(q), 95);
  cr_assert_eq(corio_queue_full(q), 0, "unbounded");
  for (i = 6; i <= 100; i++) cr_assert_eq(get_now(q), (uintptr_t)i);
  cr_assert_eq(corio_queue_empty(q), 1);
  cr_assert_eq(corio_queue_free(q), 0, "items need no task_done to free the queue");
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, lifo_order)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_LIFO, 0);
  int i;
  for (i = 1; i <= 40; i++) corio_queue_put_nowait(q, P(i), 0);
  for (i = 40; i > 30; i--) cr_assert_eq(get_now(q), (uintptr_t)i);
  corio_queue_put_nowait(q, P(99), 0);
  cr_assert_eq(get_now(q), 99);
  for (i = 30; i >= 1; i--) cr_assert_eq(get_now(q), (uintptr_t)i);
  cr_assert_eq(corio_queue_empty(q), 1);
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, priority_order_ties_fifo)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_PRIORITY, 0);
  static const int64_t prio[] = {5, 1, 5, -3, 1, INT64_MAX, INT64_MIN, 5, 0};
  /* expected by (priority, insertion index) */
  static const uintptr_t expect[] = {6, 3, 8, 1, 4, 0, 2, 7, 5};
  size_t i;
  for (i = 0; i < sizeof(prio) / sizeof(prio[0]); i++)
    cr_assert_eq(corio_queue_put_nowait(q, P(i), prio[i]), 0);
  cr_assert_eq(corio_queue_size(q), 9);
  for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
    cr_assert_eq(get_now(q), expect[i], "pop %zu", i);
  cr_assert_eq(corio_queue_empty(q), 1);
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Interleaved puts and gets with few priorities: every pop is the minimum (priority, sequence),
 * and slot ids are recycled without mixing items up. */
Test(queue, priority_random_is_stable)
{
  enum { N = 3000 };
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_PRIORITY, 0);
  static int64_t pr[N];
  static char taken[N];
  uintptr_t got;
  int i, next = 0, j, best;
  srand(7);
  memset(taken, 0, sizeof(taken));
  while (next < N || corio_queue_size(q)) {
    if (next < N && (rand() % 3 != 0 || !corio_queue_size(q))) {
      pr[next] = rand() % 8;
      cr_assert_eq(corio_queue_put_nowait(q, P(next), pr[next]), 0);
      next++;
      continue;
    }
    got = get_now(q);
    best = -1;
    for (j = 0; j < next; j++)
      if (!taken[j] && (best < 0 || pr[j] < pr[best])) best = j;
    cr_assert(best >= 0);
    cr_assert_eq(got, (uintptr_t)best, "expected %d (prio %lld), got %lu", best,
                 (long long)pr[best], (unsigned long)got);
    if (got < N) taken[got] = 1;
  }
  for (i = 0; i < N; i++) cr_assert(taken[i]);
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, maxsize_blocks_puts_in_order)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 2);
  corio_future *a = corio_queue_put(q, P(1), 0), *b = corio_queue_put(q, P(2), 0);
  corio_future *c = corio_queue_put(q, P(3), 0), *d = corio_queue_put(q, P(4), 0);
  cr_assert(corio_future_done(a));
  cr_assert(corio_future_done(b));
  cr_assert_not(corio_future_done(c));
  cr_assert_not(corio_future_done(d));
  cr_assert_eq(corio_queue_full(q), 1);
  cr_assert_eq(corio_queue_put_nowait(q, P(9), 0), CORIO_E_QUEUE_FULL);
  cr_assert_eq(corio_queue_free(q), -EBUSY);
  cr_assert_eq(get_now(q), 1);
  cr_assert(corio_future_done(c), "room: the first blocked put went in");
  cr_assert_eq(corio_future_error(c), 0);
  cr_assert_not(corio_future_done(d));
  cr_assert_eq(corio_queue_size(q), 2);
  cr_assert_eq(get_now(q), 2);
  cr_assert(corio_future_done(d));
  cr_assert_eq(get_now(q), 3);
  cr_assert_eq(get_now(q), 4);
  cr_assert_eq(corio_queue_empty(q), 1);
  corio_future_unref(a);
  corio_future_unref(b);
  corio_future_unref(c);
  corio_future_unref(d);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, getters_are_served_in_order)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 0);
  corio_future *g1 = corio_queue_get(q), *g2 = corio_queue_get(q), *p;
  cr_assert_not(corio_future_done(g1));
  cr_assert_eq(corio_queue_free(q), -EBUSY);
  cr_assert_eq(corio_queue_put_nowait(q, P(10), 0), 0);
  cr_assert(corio_future_done(g1));
  cr_assert_eq(V(corio_future_ptr(g1)), 10);
  cr_assert_not(corio_future_done(g2));
  p = corio_queue_put(q, P(20), 0);
  cr_assert(corio_future_done(p));
  cr_assert_eq(V(corio_future_ptr(g2)), 20);
  cr_assert_eq(corio_queue_size(q), 0, "handed over, not stored");
  corio_future_unref(g1);
  corio_future_unref(g2);
  corio_future_unref(p);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A cancelled (or dropped, or timed-out) getter loses no item: the next getter receives it, or it
 * stays queued. */
Test(queue, cancelled_getter_loses_nothing)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 0);
  corio_future *g1 = corio_queue_get(q), *g2 = corio_queue_get(q), *g3 = corio_queue_get(q);
  corio_future *t;
  cr_assert_eq(corio_future_cancel(g1), 1);
  corio_future_unref(g2); /* dropped */
  cr_assert_eq(corio_queue_put_nowait(q, P(7), 0), 0);
  cr_assert(corio_future_cancelled(g1));
  cr_assert_null(corio_future_ptr(g1));
  cr_assert_eq(V(corio_future_ptr(g3)), 7);
  corio_future_unref(g1);
  corio_future_unref(g3);
  t = corio_wait_for(corio_queue_get(q), 0.01);
  cr_assert_eq(corio_loop_run_until_complete(loop, t), 0);
  cr_assert_eq(corio_future_error(t), -ETIMEDOUT);
  corio_future_unref(t);
  cr_assert_eq(corio_queue_put_nowait(q, P(8), 0), 0);
  cr_assert_eq(corio_queue_size(q), 1, "no getter left: the item stays");
  cr_assert_eq(get_now(q), 8);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A getter completed behind the queue's back refuses the item: it goes to the next getter. */
Test(queue, refused_item_goes_to_next_getter)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_PRIORITY, 0);
  corio_future *g1 = corio_queue_get(q), *g2 = corio_queue_get(q);
  cr_assert_eq(corio_future_set_error(g1, -EIO), 0);
  cr_assert_eq(corio_queue_put_nowait(q, P(5), 3), 0);
  cr_assert_eq(V(corio_future_ptr(g2)), 5);
  cr_assert_eq(corio_future_error(g1), -EIO);
  cr_assert_eq(corio_queue_size(q), 0);
  corio_future_unref(g1);
  corio_future_unref(g2);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, cancelled_putter_puts_nothing)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_LIFO, 1);
  corio_future *a = corio_queue_put(q, P(1), 0), *b = corio_queue_put(q, P(2), 0);
  corio_future *c = corio_queue_put(q, P(3), 0);
  cr_assert_not(corio_future_done(b));
  cr_assert_eq(corio_future_cancel(b), 1);
  cr_assert(corio_future_cancelled(b));
  cr_assert_eq(get_now(q), 1);
  cr_assert(corio_future_done(c));
  cr_assert_eq(get_now(q), 3);
  cr_assert_eq(corio_queue_empty(q), 1, "item 2 never went in");
  corio_future_unref(a);
  corio_future_unref(b);
  corio_future_unref(c);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, task_done_and_join)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 0);
  corio_future *j = corio_queue_join(q), *j2;
  cr_assert(corio_future_done(j), "nothing unfinished");
  corio_future_unref(j);
  cr_assert_eq(corio_queue_task_done(q), -EOVERFLOW);
  corio_queue_put_nowait(q, P(1), 0);
  corio_queue_put_nowait(q, P(2), 0);
  j = corio_queue_join(q);
  j2 = corio_queue_join(q);
  get_now(q);
  get_now(q);
  cr_assert_not(corio_future_done(j), "fetched is not processed");
  cr_assert_eq(corio_queue_task_done(q), 0);
  cr_assert_not(corio_future_done(j));
  cr_assert_eq(corio_queue_free(q), -EBUSY);
  cr_assert_eq(corio_queue_task_done(q), 0);
  cr_assert(corio_future_done(j));
  cr_assert(corio_future_done(j2));
  cr_assert_eq(corio_queue_task_done(q), -EOVERFLOW);
  corio_future_unref(j);
  corio_future_unref(j2);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Python 3.13: puts fail, gets drain the queue, then fail. */
Test(queue, shutdown_drains_then_fails)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 2);
  corio_future *p1, *p2, *blocked, *g, *j;
  void *item;
  p1 = corio_queue_put(q, P(1), 0);
  p2 = corio_queue_put(q, P(2), 0);
  blocked = corio_queue_put(q, P(3), 0);
  j = corio_queue_join(q);
  corio_queue_shutdown(q, 0);
  cr_assert_eq(corio_future_error(blocked), CORIO_E_QUEUE_SHUTDOWN);
  cr_assert_eq(corio_queue_put_nowait(q, P(4), 0), CORIO_E_QUEUE_SHUTDOWN);
  corio_future_unref(blocked);
  blocked = corio_queue_put(q, P(5), 0);
  cr_assert_eq(corio_future_error(blocked), CORIO_E_QUEUE_SHUTDOWN);
  cr_assert_eq(corio_queue_size(q), 2);
  g = corio_queue_get(q);
  cr_assert_eq(V(corio_future_ptr(g)), 1, "still drains");
  cr_assert_eq(get_now(q), 2);
  cr_assert_eq(corio_queue_get_nowait(q, &item), CORIO_E_QUEUE_SHUTDOWN);
  corio_future_unref(g);
  g = corio_queue_get(q);
  cr_assert_eq(corio_future_error(g), CORIO_E_QUEUE_SHUTDOWN);
  cr_assert_not(corio_future_done(j), "not processed yet");
  corio_queue_task_done(q);
  corio_queue_task_done(q);
  cr_assert(corio_future_done(j));
  corio_future_unref(p1);
  corio_future_unref(p2);
  corio_future_unref(blocked);
  corio_future_unref(g);
  corio_future_unref(j);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, shutdown_fails_waiting_getters)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_PRIORITY, 0);
  corio_future *g1 = corio_queue_get(q), *g2 = corio_queue_get(q);
  corio_queue_shutdown(q, 0);
  cr_assert_eq(corio_future_error(g1), CORIO_E_QUEUE_SHUTDOWN);
  cr_assert_eq(corio_future_error(g2), CORIO_E_QUEUE_SHUTDOWN);
  corio_future_unref(g1);
  corio_future_unref(g2);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, shutdown_immediate_drops_items_and_releases_join)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_PRIORITY, 3);
  corio_future *blocked, *j, *g;
  void *item;
  int i;
  for (i = 0; i < 3; i++) corio_queue_put_nowait(q, P(i), i);
  blocked = corio_queue_put(q, P(9), 0);
  j = corio_queue_join(q);
  get_now(q); /* fetched but not task_done'd: join waits for it */
  cr_assert(corio_future_done(blocked), "room was made");
  corio_future_unref(blocked);
  blocked = corio_queue_put(q, P(10), 0);
  corio_queue_shutdown(q, 1);
  cr_assert_eq(corio_queue_size(q), 0);
  cr_assert_eq(corio_future_error(blocked), CORIO_E_QUEUE_SHUTDOWN);
  cr_assert_not(corio_future_done(j), "one fetched item is still unfinished");
  cr_assert_eq(corio_queue_task_done(q), 0);
  cr_assert(corio_future_done(j));
  cr_assert_eq(corio_queue_task_done(q), -EOVERFLOW);
  cr_assert_eq(corio_queue_get_nowait(q, &item), CORIO_E_QUEUE_SHUTDOWN);
  g = corio_queue_get(q);
  cr_assert_eq(corio_future_error(g), CORIO_E_QUEUE_SHUTDOWN);
  corio_future_unref(blocked);
  corio_future_unref(j);
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, shutdown_immediate_fails_getters_and_join_on_empty)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 0);
  corio_future *g = corio_queue_get(q), *j;
  corio_queue_put_nowait(q, P(1), 0); /* to g, unfinished */
  cr_assert_eq(V(corio_future_ptr(g)), 1);
  corio_future_unref(g);
  g = corio_queue_get(q);
  corio_queue_put_nowait(q, P(2), 0); /* to g too: 2 unfinished */
  corio_future_unref(g);
  g = corio_queue_get(q);
  j = corio_queue_join(q);
  corio_queue_shutdown(q, 1);
  cr_assert_eq(corio_future_error(g), CORIO_E_QUEUE_SHUTDOWN);
  cr_assert_not(corio_future_done(j), "fetched items are not dropped");
  corio_queue_task_done(q);
  corio_queue_task_done(q);
  cr_assert(corio_future_done(j));
  corio_future_unref(g);
  corio_future_unref(j);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, bad_input)
{
  corio_future *f;
  void *item;
  cr_assert_null(corio_queue_new(NULL, CORIO_QUEUE_FIFO, 0));
  cr_assert_null(corio_queue_new(loop, 3, 0));
  cr_assert_null(corio_queue_new(loop, -1, 0));
  f = corio_queue_put(NULL, NULL, 0);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  f = corio_queue_get(NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  f = corio_queue_join(NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  cr_assert_eq(corio_queue_put_nowait(NULL, NULL, 0), -EINVAL);
  cr_assert_eq(corio_queue_get_nowait(NULL, &item), -EINVAL);
  cr_assert_eq(corio_queue_task_done(NULL), -EINVAL);
  cr_assert_eq(corio_queue_free(NULL), -EINVAL);
  cr_assert_eq(corio_queue_size(NULL), 0);
  cr_assert_eq(corio_queue_empty(NULL), -EINVAL);
  cr_assert_eq(corio_queue_full(NULL), -EINVAL);
  corio_queue_shutdown(NULL, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, get_nowait_null_out)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 0);
  corio_queue_put_nowait(q, P(1), 0);
  cr_assert_eq(corio_queue_get_nowait(q, NULL), -EINVAL);
  cr_assert_eq(corio_queue_size(q), 1, "nothing taken");
  cr_assert_eq(get_now(q), 1);
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- tasks ---- */

struct consumer {
  corio_task task;
  corio_queue *q;
  uint64_t sum, count;
  int end_err;
  unsigned char *seen;
};

static int blocked_puts, awaited_gets;

/* Get until the queue is shut down; get_nowait first, await only when empty. */
static corio_step consumer_step(corio_task *t)
{
  struct consumer *c = corio_container_of(t, struct consumer, task);
  void *item;
  int rc;
  CORIO_BEGIN(t);
  for (;;) {
    rc = corio_queue_get_nowait(c->q, &item);
    if (rc == CORIO_E_QUEUE_EMPTY) {
      awaited_gets++;
      CORIO_AWAIT(t, corio_queue_get(c->q));
      rc = corio_future_error(corio_awaited(t));
      item = corio_future_ptr(corio_awaited(t));
    }
    if (rc < 0) {
      c->end_err = rc;
      break;
    }
    c->sum += V(item);
    c->count++;
    if (c->seen) {
      cr_assert_eq(c->seen[V(item)], 0, "item %lu delivered twice", (unsigned long)V(item));
      c->seen[V(item)] = 1;
    }
    corio_queue_task_done(c->q);
    CORIO_YIELD(t);
  }
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

struct producer {
  corio_task task;
  corio_queue *q;
  uintptr_t from, to, next;
  int y;
};

static corio_step producer_step(corio_task *t)
{
  struct producer *p = corio_container_of(t, struct producer, task);
  int rc;
  CORIO_BEGIN(t);
  for (p->next = p->from; p->next < p->to; p->next++) {
    rc = corio_queue_put_nowait(p->q, P(p->next), 0);
    if (rc == CORIO_E_QUEUE_FULL) {
      blocked_puts++;
      CORIO_AWAIT_TRY(t, corio_queue_put(p->q, P(p->next), 0));
    } else {
      CORIO_TRY(t, rc);
    }
    /* Fast in the first half (the queue fills up), slow in the second (it runs dry). */
    if (p->next - p->from < (p->to - p->from) / 2) {
      if (p->next % 50 == 0) CORIO_YIELD(t);
    } else {
      for (p->y = 0; p->y < 2; p->y++) CORIO_YIELD(t);
    }
  }
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

static struct consumer *consumer_new(corio_queue *q, unsigned char *seen)
{
  struct consumer *c = corio_task_new(loop, consumer_step, struct consumer, task);
  cr_assert_not_null(c);
  c->q = q;
  c->seen = seen;
  cr_assert_eq(corio_task_start(&c->task), 0);
  return c;
}

static struct producer *producer_new(corio_queue *q, uintptr_t from, uintptr_t to)
{
  struct producer *p = corio_task_new(loop, producer_step, struct producer, task);
  cr_assert_not_null(p);
  p->q = q;
  p->from = from;
  p->to = to;
  cr_assert_eq(corio_task_start(&p->task), 0);
  return p;
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

static void put_cb(void *arg)
{
  cr_assert_eq(corio_queue_put_nowait(arg, P(42), 0), 0);
}

/* A consumer task cancelled while waiting in get: the item put afterwards goes to the other. */
Test(queue, cancelled_consumer_task_loses_nothing)
{
  corio_queue *q = corio_queue_new(loop, CORIO_QUEUE_FIFO, 0);
  struct consumer *a = consumer_new(q, NULL), *b = consumer_new(q, NULL);
  corio_call_later(loop, 0.01, cancel_cb, &a->task, NULL);
  corio_call_later(loop, 0.02, put_cb, q, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, &a->task.fut), 0);
  cr_assert(corio_future_cancelled(&a->task.fut));
  cr_assert_eq(a->count, 0);
  while (b->count == 0) corio_loop_run_once(loop, -1); /* until the put */
  corio_queue_shutdown(q, 0); /* b waits again after the item: this ends it */
  cr_assert_eq(corio_loop_run_until_complete(loop, &b->task.fut), 0);
  cr_assert_eq(b->count, 1);
  cr_assert_eq(b->sum, 42);
  cr_assert_eq(b->end_err, CORIO_E_QUEUE_SHUTDOWN);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&b->task.fut);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void stress(int kind)
{
  enum { NP = 12, NC = 10, N = 100000, MAXSIZE = 64 };
  corio_queue *q = corio_queue_new(loop, kind, MAXSIZE);
  struct producer *p[NP];
  struct consumer *c[NC];
  unsigned char *seen = calloc(N, 1);
  corio_future *j;
  uint64_t sum = 0, count = 0;
  int i;
  cr_assert_not_null(q);
  blocked_puts = awaited_gets = 0;
  for (i = 0; i < NC; i++) c[i] = consumer_new(q, seen);
  for (i = 0; i < NP; i++)
    p[i] = producer_new(q, (uintptr_t)N * i / NP, (uintptr_t)N * (i + 1) / NP);
  for (i = 0; i < NP; i++) {
    cr_assert_eq(corio_loop_run_until_complete(loop, &p[i]->task.fut), 0);
    cr_assert_eq(corio_future_error(&p[i]->task.fut), 0);
    corio_future_unref(&p[i]->task.fut);
  }
  j = corio_queue_join(q);
  cr_assert_eq(corio_loop_run_until_complete(loop, j), 0);
  cr_assert_eq(corio_future_error(j), 0);
  corio_future_unref(j);
  cr_assert_eq(corio_queue_size(q), 0);
  corio_queue_shutdown(q, 0);
  for (i = 0; i < NC; i++) {
    cr_assert_eq(corio_loop_run_until_complete(loop, &c[i]->task.fut), 0);
    cr_assert_eq(c[i]->end_err, CORIO_E_QUEUE_SHUTDOWN);
    cr_assert_gt(c[i]->count, 0, "consumer %d starved", i);
    sum += c[i]->sum;
    count += c[i]->count;
    corio_future_unref(&c[i]->task.fut);
  }
  cr_assert_eq(count, N);
  cr_assert_gt(blocked_puts, 0, "the queue never filled up");
  cr_assert_gt(awaited_gets, 10 * NC, "the queue never ran dry");
  cr_assert_eq(sum, (uint64_t)N * (N - 1) / 2);
  for (i = 0; i < N; i++) cr_assert(seen[i]);
  free(seen);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
}

Test(queue, stress_fifo_bounded)
{
  stress(CORIO_QUEUE_FIFO);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, stress_lifo_bounded)
{
  stress(CORIO_QUEUE_LIFO);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, stress_priority_bounded)
{
  stress(CORIO_QUEUE_PRIORITY);
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

/* A put that cannot grow the storage fails with -ENOMEM and leaves the queue as it was (nothing
 * stored, nothing counted as unfinished). */
static void oom_case(int kind)
{
  corio_allocator a = {failing_malloc, failing_realloc, plain_free, NULL};
  corio_queue *q = corio_queue_new(loop, kind, 0);
  corio_future *f, *j;
  int i, n = 0;
  corio_set_allocator(&a);
  allow = 1; /* the first storage */
  while (corio_queue_put_nowait(q, P(n + 1), 0) == 0) n++;
  cr_assert_gt(n, 1);
  cr_assert_eq(corio_queue_put_nowait(q, P(99), 0), -ENOMEM);
  cr_assert_eq(corio_queue_size(q), (size_t)n);
  cr_assert_null(corio_queue_get(q), "no memory for the future");
  cr_assert_null(corio_queue_join(q));
  allow = 1; /* the put's future, not the storage */
  f = corio_queue_put(q, P(99), 0);
  cr_assert_eq(corio_future_error(f), -ENOMEM);
  corio_future_unref(f);
  cr_assert_eq(corio_queue_size(q), (size_t)n);
  allow = -1;
  corio_set_allocator(NULL);
  for (i = 0; i < n; i++) {
    get_now(q);
    cr_assert_eq(corio_queue_task_done(q), 0);
  }
  cr_assert_eq(corio_queue_task_done(q), -EOVERFLOW, "the failed puts were not counted");
  j = corio_queue_join(q);
  cr_assert(corio_future_done(j));
  corio_future_unref(j);
  drain();
  cr_assert_eq(corio_queue_free(q), 0);
}

Test(queue, out_of_memory_fifo)
{
  oom_case(CORIO_QUEUE_FIFO);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(queue, out_of_memory_priority)
{
  oom_case(CORIO_QUEUE_PRIORITY);
  cr_assert_eq(corio_loop_close(loop), 0);
}
