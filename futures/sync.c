/*
 * asyncio's synchronisation primitives for the tasks of one loop: Lock, Event, Condition,
 * Semaphore, BoundedSemaphore, Barrier and Queue (FIFO, LIFO, priority).
 *
 * Every waiting call hands out a `struct waiter`: a future with a list node that links it into
 * its primitive's FIFO queue. The queue holds no reference to it. Its destroy hook unlinks it,
 * so a waiter that everybody dropped leaves the queue by itself; with a reference, an abandoned
 * waiter would still receive grants nobody uses (a lock handed to nobody is held forever).
 * Its cancel hook unlinks it too and completes it as cancelled at once: a cancelled waiter holds
 * nothing and loses nothing. A granted waiter is a completed future, which can no longer be
 * cancelled (corio_future_cancel() returns 0 and a task awaiting it receives the grant).
 *
 * Grants are handed over directly: release() gives the lock (a permit, an item) to the first
 * waiter whose future accepts the result, and the primitive never looks free in between. asyncio
 * instead wakes the waiter and lets it retry, which lets a task that runs in between barge in and
 * needs the "all waiters cancelled?" scan on every acquire. The cost of hand-off is a convoy: the
 * lock may belong to a task that has not run yet. For fairness that is the point.
 *
 * Invariants that make the fast paths one test each (they hold after every public call):
 *   lock:      waiters queued => locked
 *   semaphore: waiters queued => value == 0
 *   queue:     getters queued => empty, putters queued => full
 *
 * Nothing here is thread-safe: the primitives live on their loop's thread, as asyncio's do.
 */
#include <errno.h>
#include <limits.h>
#include "internal.h"

/* Condition waiters go through two stages: first in the condition's queue, then, once notified
 * (or cancelled), in the lock's queue to take the lock back. */
enum { COND_NOTIFY = 0, COND_REACQUIRE = 1 };

struct waiter {
  corio_future fut;        /* first: the waiter is the future handed out */
  corio__list node;        /* in a primitive's queue; self-linked when in none */
  void *owner;             /* the primitive (a condition: NULL once it stopped counting us) */
  void *item;              /* queue putter: the item to put */
  int64_t value;           /* queue putter: the priority; barrier: the arrival index */
  unsigned char stage;     /* condition: COND_* */
  unsigned char cancelled; /* condition: complete as cancelled once the lock is held again */
};

static struct waiter *waiter_of(corio_future *f)
{
  return corio_container_of(f, struct waiter, fut);
}

static struct waiter *waiter_new(corio_loop *loop, const corio_future_ops *ops, void *owner)
{
  struct waiter *w = corio__malloc(sizeof(*w));
  if (!w) return NULL;
  corio_future_init(&w->fut, loop, ops);
  corio__list_init(&w->node);
  w->owner = owner;
  w->item = NULL;
  w->value = 0;
  w->stage = COND_NOTIFY;
  w->cancelled = 0;
  return w;
}

static bool waiter_linked(const struct waiter *w)
{
  return !corio__list_empty(&w->node);
}

/* The first waiter of @p q, unlinked, or NULL. */
static struct waiter *waiters_pop(corio__list *q)
{
  struct waiter *w;
  if (corio__list_empty(q)) return NULL;
  w = corio_container_of(q->next, struct waiter, node);
  corio__list_remove(&w->node);
  return w;
}

/* Fail (or wake, err == 0) every waiter of @p q. */
static void waiters_complete_all(corio__list *q, int err)
{
  struct waiter *w;
  while ((w = waiters_pop(q))) {
    if (err < 0)
      corio_future_set_error(&w->fut, err);
    else
      corio_future_set_result(&w->fut, 0);
  }
}

/* The plain waiter (lock, event, semaphore, queue): leaving the queue is all there is to undo,
 * because nothing was granted to a pending waiter. */
static int waiter_cancel(corio_future *f)
{
  corio__list_remove(&waiter_of(f)->node);
  corio_future_set_cancelled(f);
  return 1;
}

static void waiter_destroy(corio_future *f)
{
  struct waiter *w = waiter_of(f);
  corio__list_remove(&w->node);
  corio__free(w);
}

static const corio_future_ops lock_ops = {waiter_cancel, waiter_destroy, "lock acquire"};
static const corio_future_ops event_ops = {waiter_cancel, waiter_destroy, "event wait"};
static const corio_future_ops sem_ops = {waiter_cancel, waiter_destroy, "semaphore acquire"};
static const corio_future_ops get_ops = {waiter_cancel, waiter_destroy, "queue get"};
static const corio_future_ops put_ops = {waiter_cancel, waiter_destroy, "queue put"};
static const corio_future_ops join_ops = {waiter_cancel, waiter_destroy, "queue join"};

/* ---------------- Lock ---------------- */

struct corio_lock {
  corio_loop *loop;
  corio__list waiters; /* acquirers, and condition waiters taking the lock back */
  int locked;
};

static int cond_grant(struct waiter *w);
static const corio_future_ops cond_ops;

/* The lock is now @p w's: complete it. Fails (and the caller tries the next waiter) only if the
 * future was completed behind our back, the one way a queued waiter can refuse a grant. */
static int lock_grant(struct waiter *w)
{
  if (w->fut.ops == &cond_ops) return cond_grant(w);
  return corio_future_set_result(&w->fut, 0);
}

/* Hand the lock to the first waiter that accepts it, or free it. */
static void lock_handoff(corio_lock *l)
{
  struct waiter *w;
  while ((w = waiters_pop(&l->waiters)))
    if (lock_grant(w) == 0) return;
  l->locked = 0;
}

/* Queue @p w for the lock, or give it the lock now if it is free (no waiters, by invariant). */
static void lock_enqueue(corio_lock *l, struct waiter *w)
{
  if (l->locked) {
    corio__list_insert_tail(&l->waiters, &w->node);
    return;
  }
  l->locked = 1;
  if (lock_grant(w) < 0) l->locked = 0;
}

corio_lock *corio_lock_new(corio_loop *loop)
{
  corio_lock *l;
  if (!loop) return NULL;
  l = corio__malloc(sizeof(*l));
  if (!l) return NULL;
  l->loop = loop;
  corio__list_init(&l->waiters);
  l->locked = 0;
  return l;
}

int corio_lock_free(corio_lock *l)
{
  if (!l) return -EINVAL;
  if (l->locked || !corio__list_empty(&l->waiters)) return -EBUSY;
  corio__free(l);
  return 0;
}

corio_future *corio_lock_acquire(corio_lock *l)
{
  struct waiter *w;
  if (!l) return corio__future_failed(NULL, -EINVAL);
  /* Allocate before touching the lock, so that ENOMEM leaves it as it was. */
  w = waiter_new(l->loop, &lock_ops, l);
  if (!w) return NULL;
  lock_enqueue(l, w);
  return &w->fut;
}

int corio_lock_try_acquire(corio_lock *l)
{
  if (!l) return -EINVAL;
  if (l->locked) return 0;
  l->locked = 1;
  return 1;
}

int corio_lock_release(corio_lock *l)
{
  if (!l) return -EINVAL;
  if (!l->locked) return CORIO_E_NOT_LOCKED;
  lock_handoff(l);
  return 0;
}

int corio_lock_locked(const corio_lock *l)
{
  if (!l) return -EINVAL;
  return l->locked;
}

/* ---------------- Event ---------------- */

struct corio_event {
  corio_loop *loop;
  corio__list waiters;
  int set;
};

corio_event *corio_event_new(corio_loop *loop)
{
  corio_event *e;
  if (!loop) return NULL;
  e = corio__malloc(sizeof(*e));
  if (!e) return NULL;
  e->loop = loop;
  corio__list_init(&e->waiters);
  e->set = 0;
  return e;
}

int corio_event_free(corio_event *e)
{
  if (!e) return -EINVAL;
  if (!corio__list_empty(&e->waiters)) return -EBUSY;
  corio__free(e);
  return 0;
}

corio_future *corio_event_wait(corio_event *e)
{
  struct waiter *w;
  if (!e) return corio__future_failed(NULL, -EINVAL);
  w = waiter_new(e->loop, &event_ops, e);
  if (!w) return NULL;
  if (e->set)
    corio_future_set_result(&w->fut, 0);
  else
    corio__list_insert_tail(&e->waiters, &w->node);
  return &w->fut;
}

void corio_event_set(corio_event *e)
{
  if (!e) return;
  e->set = 1;
  waiters_complete_all(&e->waiters, 0);
}

void corio_event_clear(corio_event *e)
{
  if (e) e->set = 0;
}

int corio_event_is_set(const corio_event *e)
{
  if (!e) return -EINVAL;
  return e->set;
}

/* ---------------- Condition ---------------- */

struct corio_condition {
  corio_loop *loop;
  corio_lock *lock;
  corio__list waiters; /* waiting for a notify (stage COND_NOTIFY) */
  /* Waiters in either stage: one taking the lock back is in the lock's queue, yet still points
   * at us (to pass a notification on), so we may not be freed under it. */
  size_t nwaiters;
  int own_lock;
};

/* Called with the lock now @p w's. */
static int cond_grant(struct waiter *w)
{
  corio_condition *c = w->owner;
  int rc = w->cancelled ? corio_future_set_cancelled(&w->fut) : corio_future_set_result(&w->fut, 0);
  if (rc == 0 && c) {
    c->nwaiters--;
    w->owner = NULL;
  }
  return rc;
}

/* Move up to @p n waiters to the lock's queue. */
static size_t cond_wake(corio_condition *c, size_t n)
{
  struct waiter *w;
  size_t k;
  for (k = 0; k < n && (w = waiters_pop(&c->waiters)); k++) {
    w->stage = COND_REACQUIRE;
    lock_enqueue(c->lock, w);
  }
  return k;
}

/*
 * asyncio guarantees that wait() returns with the lock held, also when cancelled, so that the
 * caller's cleanup can always release it. So cancellation does not complete the future: it sends
 * the waiter to take the lock back, and the future completes (as cancelled) once it holds it.
 */
static int cond_cancel(corio_future *f)
{
  struct waiter *w = waiter_of(f);
  corio_condition *c = w->owner;
  if (w->cancelled || !c) return 1; /* already on its way */
  w->cancelled = 1;
  if (w->stage == COND_NOTIFY) {
    corio__list_remove(&w->node);
    w->stage = COND_REACQUIRE;
    lock_enqueue(c->lock, w);
  } else {
    /* Notified, but not holding the lock yet: the notification would die with this waiter, so
     * pass it on, as asyncio does (a spurious wakeup is allowed, a lost one is not). */
    cond_wake(c, 1);
  }
  return 1;
}

static void cond_destroy(corio_future *f)
{
  struct waiter *w = waiter_of(f);
  corio_condition *c = w->owner;
  if (c) c->nwaiters--;
  corio__list_remove(&w->node);
  corio__free(w);
}

static const corio_future_ops cond_ops = {cond_cancel, cond_destroy, "condition wait"};

corio_condition *corio_condition_new(corio_loop *loop, corio_lock *lock)
{
  corio_condition *c;
  if (!loop || (lock && lock->loop != loop)) return NULL;
  c = corio__malloc(sizeof(*c));
  if (!c) return NULL;
  c->loop = loop;
  c->own_lock = lock == NULL;
  c->lock = lock ? lock : corio_lock_new(loop);
  if (!c->lock) {
    corio__free(c);
    return NULL;
  }
  corio__list_init(&c->waiters);
  c->nwaiters = 0;
  return c;
}

int corio_condition_free(corio_condition *c)
{
  if (!c) return -EINVAL;
  if (c->nwaiters || (c->own_lock && (c->lock->locked || !corio__list_empty(&c->lock->waiters))))
    return -EBUSY;
  if (c->own_lock) corio_lock_free(c->lock);
  corio__free(c);
  return 0;
}

corio_lock *corio_condition_lock(corio_condition *c)
{
  return c ? c->lock : NULL;
}

corio_future *corio_condition_wait(corio_condition *c)
{
  struct waiter *w;
  if (!c) return corio__future_failed(NULL, -EINVAL);
  if (!c->lock->locked) return corio__future_failed(c->loop, CORIO_E_NOT_LOCKED);
  w = waiter_new(c->loop, &cond_ops, c);
  if (!w) return NULL;
  corio__list_insert_tail(&c->waiters, &w->node);
  c->nwaiters++;
  lock_handoff(c->lock);
  return &w->fut;
}

int corio_condition_notify(corio_condition *c, size_t n)
{
  size_t k;
  if (!c) return -EINVAL;
  if (!c->lock->locked) return CORIO_E_NOT_LOCKED;
  k = cond_wake(c, n);
  return k > INT_MAX ? INT_MAX : (int)k;
}

int corio_condition_notify_all(corio_condition *c)
{
  return corio_condition_notify(c, SIZE_MAX);
}

/* ---------------- Semaphore and BoundedSemaphore ---------------- */

struct corio_semaphore {
  corio_loop *loop;
  corio__list waiters;
  unsigned value;
  unsigned bound; /* bounded: release() may not raise value above it */
  int bounded;
};

static corio_semaphore *semaphore_new(corio_loop *loop, unsigned value, int bounded)
{
  corio_semaphore *s;
  if (!loop) return NULL;
  s = corio__malloc(sizeof(*s));
  if (!s) return NULL;
  s->loop = loop;
  corio__list_init(&s->waiters);
  s->value = value;
  s->bound = value;
  s->bounded = bounded;
  return s;
}

corio_semaphore *corio_semaphore_new(corio_loop *loop, unsigned value)
{
  return semaphore_new(loop, value, 0);
}

corio_semaphore *corio_bounded_semaphore_new(corio_loop *loop, unsigned value)
{
  return semaphore_new(loop, value, 1);
}

int corio_semaphore_free(corio_semaphore *s)
{
  if (!s) return -EINVAL;
  if (!corio__list_empty(&s->waiters)) return -EBUSY;
  corio__free(s);
  return 0;
}

corio_future *corio_semaphore_acquire(corio_semaphore *s)
{
  struct waiter *w;
  if (!s) return corio__future_failed(NULL, -EINVAL);
  w = waiter_new(s->loop, &sem_ops, s);
  if (!w) return NULL;
  if (s->value) {
    s->value--;
    corio_future_set_result(&w->fut, 0);
  } else {
    corio__list_insert_tail(&s->waiters, &w->node);
  }
  return &w->fut;
}

int corio_semaphore_try_acquire(corio_semaphore *s)
{
  if (!s) return -EINVAL;
  if (!s->value) return 0;
  s->value--;
  return 1;
}

int corio_semaphore_release(corio_semaphore *s)
{
  struct waiter *w;
  if (!s) return -EINVAL;
  if (s->bounded && s->value >= s->bound) return -EOVERFLOW;
  /* The permit goes straight to the first waiter: value stays 0 while anyone waits. */
  while ((w = waiters_pop(&s->waiters)))
    if (corio_future_set_result(&w->fut, 0) == 0) return 0;
  if (s->value == UINT_MAX) return -EOVERFLOW;
  s->value++;
  return 0;
}

unsigned corio_semaphore_value(const corio_semaphore *s)
{
  return s ? s->value : 0;
}

/* ---------------- Barrier ---------------- */

struct corio_barrier {
  corio_loop *loop;
  corio__list waiters; /* the parties of the current cycle that arrived, in arrival order */
  unsigned parties;
  unsigned count; /* arrived in the current cycle */
  int broken;
};

/* Fail the waiting parties and start over; broken: later waits fail until a reset. */
static void barrier_break(corio_barrier *b, int broken)
{
  b->broken = broken;
  b->count = 0;
  waiters_complete_all(&b->waiters, CORIO_E_BROKEN_BARRIER);
}

/* A party that leaves breaks the barrier (asyncio semantics): the others would otherwise wait for
 * an arrival that will not come, and the indices handed out would no longer be a permutation. */
static int barrier_cancel(corio_future *f)
{
  struct waiter *w = waiter_of(f);
  corio_barrier *b = w->owner;
  corio__list_remove(&w->node);
  corio_future_set_cancelled(f);
  barrier_break(b, 1);
  return 1;
}

static void barrier_destroy(corio_future *f)
{
  struct waiter *w = waiter_of(f);
  if (waiter_linked(w)) {
    corio__list_remove(&w->node);
    barrier_break(w->owner, 1);
  }
  corio__free(w);
}

static const corio_future_ops barrier_ops = {barrier_cancel, barrier_destroy, "barrier wait"};

corio_barrier *corio_barrier_new(corio_loop *loop, unsigned parties)
{
  corio_barrier *b;
  if (!loop || parties == 0) return NULL;
  b = corio__malloc(sizeof(*b));
  if (!b) return NULL;
  b->loop = loop;
  corio__list_init(&b->waiters);
  b->parties = parties;
  b->count = 0;
  b->broken = 0;
  return b;
}

int corio_barrier_free(corio_barrier *b)
{
  if (!b) return -EINVAL;
  if (!corio__list_empty(&b->waiters)) return -EBUSY;
  corio__free(b);
  return 0;
}

corio_future *corio_barrier_wait(corio_barrier *b)
{
  struct waiter *w, *x;
  if (!b) return corio__future_failed(NULL, -EINVAL);
  w = waiter_new(b->loop, &barrier_ops, b);
  if (!w) return NULL;
  if (b->broken) {
    corio_future_set_error(&w->fut, CORIO_E_BROKEN_BARRIER);
    return &w->fut;
  }
  w->value = b->count;
  if (b->count + 1 < b->parties) {
    b->count++;
    corio__list_insert_tail(&b->waiters, &w->node);
    return &w->fut;
  }
  /* The last party: release the cycle. The barrier is ready for the next one at once (asyncio
   * makes new arrivals wait while the cycle drains; with no draining phase there is nothing to
   * wait for). */
  b->count = 0;
  while ((x = waiters_pop(&b->waiters))) corio_future_set_result(&x->fut, x->value);
  corio_future_set_result(&w->fut, w->value);
  return &w->fut;
}

void corio_barrier_reset(corio_barrier *b)
{
  if (b) barrier_break(b, 0);
}

void corio_barrier_abort(corio_barrier *b)
{
  if (b) barrier_break(b, 1);
}

unsigned corio_barrier_n_waiting(const corio_barrier *b)
{
  return b ? b->count : 0;
}

int corio_barrier_broken(const corio_barrier *b)
{
  if (!b) return -EINVAL;
  return b->broken;
}

/* ---------------- Queue ---------------- */

struct pq_node {
  int64_t priority;
  uint64_t seq;
  void *item;
};

struct corio_queue {
  corio_loop *loop;
  int kind;
  int shut;
  size_t maxsize;
  size_t unfinished; /* items put and not yet task_done'd */
  /* FIFO and LIFO: a ring of items (power-of-two capacity, reused: no allocation per item once
   * it has grown to the queue's high-water mark). FIFO pops at head, LIFO at the tail. */
  void **ring;
  size_t head, len, cap;
  /* PRIORITY: a binary min-heap of (priority, sequence, item); the sequence number makes equal
   * priorities FIFO. Not the toolkit's timer heap: its 32-bit sequence orders ties only within a
   * window of 2^31 inserts, which timers (they fire) never exceed, but an item of a priority
   * queue may wait forever while billions of more urgent ones pass; and its nodes carry an id,
   * not a pointer, so items would need a slot table beside it. */
  struct pq_node *pq;
  size_t pq_len, pq_cap;
  uint64_t seq;
  corio__list getters, putters, joiners;
};

static size_t q_size(const corio_queue *q)
{
  return q->kind == CORIO_QUEUE_PRIORITY ? q->pq_len : q->len;
}

static bool q_full(const corio_queue *q)
{
  return q->maxsize && q_size(q) >= q->maxsize;
}

static int ring_grow(corio_queue *q)
{
  size_t ncap = q->cap ? q->cap * 2 : 16, i;
  void **n;
  if (ncap > SIZE_MAX / sizeof(*n)) return -ENOMEM;
  n = corio__malloc(ncap * sizeof(*n));
  if (!n) return -ENOMEM;
  for (i = 0; i < q->len; i++) n[i] = q->ring[(q->head + i) & (q->cap - 1)];
  corio__free(q->ring);
  q->ring = n;
  q->head = 0;
  q->cap = ncap;
  return 0;
}

static bool pq_less(const struct pq_node *a, const struct pq_node *b)
{
  return a->priority < b->priority || (a->priority == b->priority && a->seq < b->seq);
}

static int pq_push(corio_queue *q, void *item, int64_t priority)
{
  struct pq_node x = {priority, q->seq, item}, *n;
  size_t i, parent, ncap;
  if (q->pq_len == q->pq_cap) {
    ncap = q->pq_cap ? q->pq_cap * 2 : 16;
    if (ncap > SIZE_MAX / sizeof(*n)) return -ENOMEM;
    n = corio__realloc(q->pq, ncap * sizeof(*n));
    if (!n) return -ENOMEM;
    q->pq = n;
    q->pq_cap = ncap;
  }
  q->seq++;
  for (i = q->pq_len++; i > 0; i = parent) {
    parent = (i - 1) / 2;
    if (!pq_less(&x, &q->pq[parent])) break;
    q->pq[i] = q->pq[parent];
  }
  q->pq[i] = x;
  return 0;
}

static void pq_pop(corio_queue *q)
{
  struct pq_node x;
  size_t i = 0, c, n = --q->pq_len;
  if (n == 0) return;
  x = q->pq[n];
  for (;;) {
    c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && pq_less(&q->pq[c + 1], &q->pq[c])) c++;
    if (!pq_less(&q->pq[c], &x)) break;
    q->pq[i] = q->pq[c];
    i = c;
  }
  q->pq[i] = x;
}

/* Store an item (the caller checked it is not full). 0 or -ENOMEM, the queue unchanged. */
static int q_store(corio_queue *q, void *item, int64_t priority)
{
  int rc;
  if (q->kind == CORIO_QUEUE_PRIORITY) {
    if ((rc = pq_push(q, item, priority)) < 0) return rc;
  } else {
    if (q->len == q->cap && (rc = ring_grow(q)) < 0) return rc;
    q->ring[(q->head + q->len) & (q->cap - 1)] = item;
    q->len++;
  }
  q->unfinished++;
  return 0;
}

/* The item the next get returns (the queue is not empty). */
static void *q_peek(const corio_queue *q)
{
  switch (q->kind) {
  case CORIO_QUEUE_PRIORITY:
    return q->pq[0].item;
  case CORIO_QUEUE_LIFO:
    return q->ring[(q->head + q->len - 1) & (q->cap - 1)];
  default:
    return q->ring[q->head];
  }
}

/* Remove the item q_peek() returns. */
static void q_drop(corio_queue *q)
{
  switch (q->kind) {
  case CORIO_QUEUE_PRIORITY:
    pq_pop(q);
    break;
  case CORIO_QUEUE_LIFO:
    q->len--;
    break;
  default:
    q->head = (q->head + 1) & (q->cap - 1);
    q->len--;
  }
}

static void *q_take(corio_queue *q)
{
  void *item = q_peek(q);
  q_drop(q);
  return item;
}

/*
 * Restore the queue's invariants after a change: items go to waiting getters, room to waiting
 * putters. An item leaves the queue only once a getter's future has accepted it, so an item is
 * never lost to a getter that cannot take it. Each pass consumes waiters, so this ends.
 */
static void queue_pump(corio_queue *q)
{
  struct waiter *w;
  bool progress = true;
  int rc;
  while (progress) {
    progress = false;
    while (q_size(q) && (w = waiters_pop(&q->getters))) {
      if (corio_future_set_result_ptr(&w->fut, q_peek(q), NULL) == 0) {
        q_drop(q);
        progress = true;
      }
    }
    while (!q_full(q) && (w = waiters_pop(&q->putters))) {
      if (corio_future_done(&w->fut)) continue; /* completed behind our back: put nothing */
      rc = q_store(q, w->item, w->value);
      if (rc < 0) {
        corio_future_set_error(&w->fut, rc);
      } else {
        corio_future_set_result(&w->fut, 0);
        progress = true;
      }
    }
  }
}

static void queue_wake_joiners(corio_queue *q)
{
  if (q->unfinished == 0) waiters_complete_all(&q->joiners, 0);
}

corio_queue *corio_queue_new(corio_loop *loop, int kind, size_t maxsize)
{
  corio_queue *q;
  if (!loop || kind < CORIO_QUEUE_FIFO || kind > CORIO_QUEUE_PRIORITY) return NULL;
  q = corio__calloc(1, sizeof(*q));
  if (!q) return NULL;
  q->loop = loop;
  q->kind = kind;
  q->maxsize = maxsize;
  corio__list_init(&q->getters);
  corio__list_init(&q->putters);
  corio__list_init(&q->joiners);
  return q;
}

int corio_queue_free(corio_queue *q)
{
  if (!q) return -EINVAL;
  if (!corio__list_empty(&q->getters) || !corio__list_empty(&q->putters) ||
      !corio__list_empty(&q->joiners))
    return -EBUSY;
  corio__free(q->ring);
  corio__free(q->pq);
  corio__free(q);
  return 0;
}

corio_future *corio_queue_put(corio_queue *q, void *item, int64_t priority)
{
  struct waiter *w;
  int rc;
  if (!q) return corio__future_failed(NULL, -EINVAL);
  w = waiter_new(q->loop, &put_ops, q);
  if (!w) return NULL;
  if (q->shut) {
    corio_future_set_error(&w->fut, CORIO_E_QUEUE_SHUTDOWN);
  } else if (!q_full(q)) { /* not full: no putter waits, by invariant */
    rc = q_store(q, item, priority);
    if (rc < 0)
      corio_future_set_error(&w->fut, rc);
    else
      corio_future_set_result(&w->fut, 0);
    queue_pump(q);
  } else {
    w->item = item;
    w->value = priority;
    corio__list_insert_tail(&q->putters, &w->node);
  }
  return &w->fut;
}

int corio_queue_put_nowait(corio_queue *q, void *item, int64_t priority)
{
  int rc;
  if (!q) return -EINVAL;
  if (q->shut) return CORIO_E_QUEUE_SHUTDOWN;
  if (q_full(q)) return CORIO_E_QUEUE_FULL;
  rc = q_store(q, item, priority);
  if (rc < 0) return rc;
  queue_pump(q);
  return 0;
}

corio_future *corio_queue_get(corio_queue *q)
{
  struct waiter *w;
  if (!q) return corio__future_failed(NULL, -EINVAL);
  w = waiter_new(q->loop, &get_ops, q);
  if (!w) return NULL;
  if (q_size(q)) { /* items: no getter waits, by invariant */
    corio_future_set_result_ptr(&w->fut, q_take(q), NULL);
    queue_pump(q);
  } else if (q->shut) {
    corio_future_set_error(&w->fut, CORIO_E_QUEUE_SHUTDOWN);
  } else {
    corio__list_insert_tail(&q->getters, &w->node);
  }
  return &w->fut;
}

int corio_queue_get_nowait(corio_queue *q, void **item)
{
  if (!q || !item) return -EINVAL;
  if (!q_size(q)) return q->shut ? CORIO_E_QUEUE_SHUTDOWN : CORIO_E_QUEUE_EMPTY;
  *item = q_take(q);
  queue_pump(q);
  return 0;
}

int corio_queue_task_done(corio_queue *q)
{
  if (!q) return -EINVAL;
  if (q->unfinished == 0) return -EOVERFLOW;
  q->unfinished--;
  queue_wake_joiners(q);
  return 0;
}

corio_future *corio_queue_join(corio_queue *q)
{
  struct waiter *w;
  if (!q) return corio__future_failed(NULL, -EINVAL);
  w = waiter_new(q->loop, &join_ops, q);
  if (!w) return NULL;
  if (q->unfinished == 0)
    corio_future_set_result(&w->fut, 0);
  else
    corio__list_insert_tail(&q->joiners, &w->node);
  return &w->fut;
}

void corio_queue_shutdown(corio_queue *q, int immediate)
{
  if (!q) return;
  q->shut = 1;
  if (immediate) {
    /* As Python 3.13: each dropped item counts as done, so join() is not left hanging. */
    while (q_size(q)) {
      q_drop(q);
      if (q->unfinished) q->unfinished--;
    }
    queue_wake_joiners(q);
  }
  waiters_complete_all(&q->putters, CORIO_E_QUEUE_SHUTDOWN);
  /* Getters wait only on an empty queue, and an empty shut-down queue fails every get. */
  waiters_complete_all(&q->getters, CORIO_E_QUEUE_SHUTDOWN);
}

size_t corio_queue_size(const corio_queue *q)
{
  return q ? q_size(q) : 0;
}

int corio_queue_empty(const corio_queue *q)
{
  if (!q) return -EINVAL;
  return q_size(q) == 0;
}

int corio_queue_full(const corio_queue *q)
{
  if (!q) return -EINVAL;
  return q_full(q);
}
