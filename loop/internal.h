/*
 * Internal toolkit shared by every layer: allocation, intrusive list, 4-ary heap, MPSC stack,
 * growable byte buffer, and the loop's private interface. Never installed.
 */
#ifndef CORIO_INTERNAL_H
#define CORIO_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include "corio.h"

#if defined(__GNUC__)
#define corio__likely(x)   __builtin_expect(!!(x), 1)
#define corio__unlikely(x) __builtin_expect(!!(x), 0)
#else
#define corio__likely(x)   (x)
#define corio__unlikely(x) (x)
#endif

/* ---- allocation (replaceable; tests inject failures) ---- */
void *corio__malloc(size_t n);
void *corio__calloc(size_t n, size_t size);
void *corio__realloc(void *p, size_t n);
void corio__free(void *p);

/* ---- intrusive circular doubly linked list (struct corio__list is in task.h) ---- */
typedef struct corio__list corio__list;
static inline void corio__list_init(corio__list *h)
{
  h->next = h->prev = h;
}
static inline bool corio__list_empty(const corio__list *h)
{
  return h->next == h;
}
static inline void corio__list_insert_tail(corio__list *h, corio__list *n)
{
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void corio__list_remove(corio__list *n)
{
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->next = n->prev = n;
}
/* Move every node of @p src to the (empty) list @p dst, in order; @p src ends empty. */
static inline void corio__list_move_all(corio__list *dst, corio__list *src)
{
  if (corio__list_empty(src)) {
    corio__list_init(dst);
    return;
  }
  dst->next = src->next;
  dst->prev = src->prev;
  dst->next->prev = dst;
  dst->prev->next = dst;
  corio__list_init(src);
}
#define corio__list_foreach(pos, head)                                                             \
  for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

/* ---- 4-ary min-heap keyed by (key, seq) ---- *
 * Nodes are 16 bytes and carry the key inline, and the array is placed so that the four
 * children of a node (indices 4i+1..4i+4) share one 64-byte cache line: sifting down costs one
 * cache miss per level, which is what decides the cost at 10M timers. There is no position
 * index: removal is lazy (the owner marks its entry dead and skips it when popped), which spares
 * a random write per level on every sift. seq breaks ties in insertion order; it is compared
 * with wrap-around (serial-number arithmetic), exact while the live nodes span < 2^31 inserts. */
typedef struct corio__heap_node {
  int64_t key;
  uint32_t seq;
  uint32_t id;
} corio__heap_node;

typedef struct corio__heap {
  corio__heap_node *nodes; /* cache-line placed inside mem */
  void *mem;
  size_t n, cap;
} corio__heap;

void corio__heap_init(corio__heap *h);
void corio__heap_free(corio__heap *h);
int corio__heap_push(corio__heap *h, int64_t key, uint32_t seq, uint32_t id);
static inline const corio__heap_node *corio__heap_top(const corio__heap *h)
{
  return h->n ? &h->nodes[0] : NULL;
}
/** Remove the minimum and return its id (heap must not be empty). */
uint32_t corio__heap_pop(corio__heap *h);
/** Keep only the nodes for which keep(ctx, id) is true (O(n) rebuild). */
void corio__heap_filter(corio__heap *h, bool (*keep)(void *ctx, uint32_t id), void *ctx);

/* Ask for the cache line of @p p in exclusive state, to be written soon. GCC emits PREFETCHW for
 * __builtin_prefetch(p, 1) only when told the CPU has it (-mprfchw), else a read prefetch; every
 * x86-64 CPU decodes it (as a no-op before Intel Broadwell), so it is spelled out here. */
static inline void corio__prefetch_write(const void *p)
{
#if defined(__x86_64__)
  __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

/* ---- MPSC stack: producers push with CAS, the single consumer takes everything at once ---- *
 * Taking the whole list with one exchange avoids ABA entirely; reversing it restores FIFO order
 * per producer. Nodes are struct corio__mpsc_node (future.h). */
typedef struct corio__mpsc {
  struct corio__mpsc_node *_Atomic head;
} corio__mpsc;
static inline void corio__mpsc_push(corio__mpsc *q, struct corio__mpsc_node *n)
{
  struct corio__mpsc_node *old = atomic_load_explicit(&q->head, memory_order_relaxed);
  do {
    atomic_store_explicit(&n->next, old, memory_order_relaxed);
    /* release: the node's contents are visible to the consumer that acquires the head */
  } while (!atomic_compare_exchange_weak_explicit(&q->head, &old, n, memory_order_seq_cst,
                                                  memory_order_relaxed));
}
/** All pushed nodes, oldest first, or NULL. */
struct corio__mpsc_node *corio__mpsc_take_all(corio__mpsc *q);
static inline bool corio__mpsc_empty(corio__mpsc *q)
{
  return atomic_load_explicit(&q->head, memory_order_acquire) == NULL;
}

/* ---- growable byte buffer ---- */
typedef struct corio__buf {
  uint8_t *data;
  size_t len, cap;
} corio__buf;
int corio__buf_reserve(corio__buf *b, size_t extra);
int corio__buf_append(corio__buf *b, const void *p, size_t n);
void corio__buf_consume(corio__buf *b, size_t n);
void corio__buf_free(corio__buf *b);

/* ---- time ---- */
static inline int64_t corio__now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
int64_t corio__seconds_to_ns(double s); /* saturating, rounds up */

/* ---- loop private interface ---- */
/** True when the caller is the thread running (or owning) @p loop. */
bool corio__loop_on_thread(const corio_loop *loop);
/** Hand a node to the loop from any thread (runs node->run on the loop thread). */
int corio__loop_post(corio_loop *loop, struct corio__mpsc_node *node);
/** Count of alive objects (tasks, handles) that keep corio_loop_close() from succeeding. */
void corio__loop_alive_add(corio_loop *loop, int delta);
void corio__loop_task_link(corio_loop *loop, corio__list *node);
void corio__loop_debug_slow(corio_loop *loop);
int corio__loop_debug(const corio_loop *loop);
/** Allocate a ready-queue slot that calls fn(arg) in this iteration's successor (no handle). */
int corio__loop_schedule(corio_loop *loop, corio_cb fn, void *arg);

/** The loop running in this thread, or NULL. */
corio_loop *corio__loop_current(void);

/* future internals used by tasks and combinators */
void corio__future_mark_retrieved(corio_future *f);
/** Complete @p dst like @p src (value, error or cancellation). Pointer and bytes values are moved
 *  when @p src_exclusive (the caller holds the only reference), else a pointer is shared without
 *  its destructor and bytes are copied. Returns set_result's code. */
int corio__future_transfer(corio_future *dst, corio_future *src, bool src_exclusive);
/* Complete with bytes the future does not own (they live as long as the future: e.g. in the
 * struct that embeds it); corio_future_steal_bytes copies them. */
int corio__future_set_result_bytes_ref(corio_future *f, const uint8_t *data, size_t len);
/** Call cb(f, arg) on @p loop's thread once @p f is done, also for a loop-less @p f (whose
 *  callbacks run in foreign threads: the call hops through the loop's inbox). */
int corio__future_on_done(corio_loop *loop, corio_future *f, corio_future_cb cb, void *arg);
/** set_result, then run the done callbacks right away: only for code that itself runs from the
 *  ready queue on the loop thread (timers, sleep), where it saves one hop through the queue. */
int corio__future_set_result_inline(corio_future *f, int64_t value);
/** A future on @p loop already failed with @p err (NULL only on ENOMEM). */
corio_future *corio__future_failed(corio_loop *loop, int err);

#endif
