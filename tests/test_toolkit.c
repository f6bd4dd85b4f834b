/* The internal toolkit: 4-ary heap (order, ties, filter), MPSC stack, byte buffer, and the
 * loop's timer/ready structures under load (cancel half of 200k timers; ready ring growth while
 * wrapped around). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include "internal.h"

TestSuite(toolkit, .timeout = 30);

Test(toolkit, heap_pops_in_key_then_insertion_order)
{
  corio__heap h;
  uint32_t i, id, n = 200000;
  int64_t prev_key = INT64_MIN;
  uint32_t prev_seq = 0;
  int64_t *keys = malloc(n * sizeof(*keys));
  corio__heap_init(&h);
  srand(7);
  for (i = 0; i < n; i++) {
    keys[i] = rand() % 1000; /* many ties */
    cr_assert_eq(corio__heap_push(&h, keys[i], i, i), 0);
  }
  for (i = 0; i < n; i++) {
    id = corio__heap_pop(&h);
    cr_assert_geq(keys[id], prev_key);
    if (keys[id] == prev_key) cr_assert_gt(id, prev_seq, "ties in insertion order");
    prev_key = keys[id];
    prev_seq = id;
  }
  cr_assert_null(corio__heap_top(&h));
  corio__heap_free(&h);
  free(keys);
}

static bool keep_even(void *ctx, uint32_t id)
{
  (void)ctx;
  return id % 2 == 0;
}

Test(toolkit, heap_filter_keeps_order)
{
  corio__heap h;
  uint32_t i, id, last = 0;
  corio__heap_init(&h);
  for (i = 0; i < 10000; i++) corio__heap_push(&h, (int64_t)(10000 - i), i, i);
  corio__heap_filter(&h, keep_even, NULL);
  cr_assert_eq(h.n, 5000);
  for (i = 0; i < 5000; i++) {
    id = corio__heap_pop(&h);
    cr_assert_eq(id % 2, 0);
    if (i) cr_assert_lt(id, last, "descending ids = ascending keys");
    last = id;
  }
  corio__heap_free(&h);
}

Test(toolkit, heap_nodes_children_share_a_cache_line)
{
  corio__heap h;
  uint32_t i;
  corio__heap_init(&h);
  for (i = 0; i < 100000; i++) corio__heap_push(&h, i, i, i);
  cr_assert_eq(((uintptr_t)&h.nodes[1]) % 64, 0);
  corio__heap_free(&h);
}

#define PRODUCERS 4
#define PER       50000
struct node {
  struct corio__mpsc_node n;
  int producer, seq;
};
static corio__mpsc q;
static void *produce(void *arg)
{
  int p = (int)(intptr_t)arg, i;
  for (i = 0; i < PER; i++) {
    struct node *x = malloc(sizeof(*x));
    x->producer = p;
    x->seq = i;
    corio__mpsc_push(&q, &x->n);
  }
  return NULL;
}

Test(toolkit, mpsc_fifo_per_producer)
{
  pthread_t th[PRODUCERS];
  int next[PRODUCERS] = {0}, got = 0, i;
  struct corio__mpsc_node *n, *nx;
  for (i = 0; i < PRODUCERS; i++) pthread_create(&th[i], NULL, produce, (void *)(intptr_t)i);
  while (got < PRODUCERS * PER) {
    for (n = corio__mpsc_take_all(&q); n; n = nx) {
      struct node *x = (struct node *)n;
      nx = atomic_load(&n->next);
      cr_assert_eq(x->seq, next[x->producer], "FIFO per producer");
      next[x->producer]++;
      got++;
      free(x);
    }
  }
  for (i = 0; i < PRODUCERS; i++) pthread_join(th[i], NULL);
  cr_assert(corio__mpsc_empty(&q));
}

Test(toolkit, buf)
{
  corio__buf b = {0};
  cr_assert_eq(corio__buf_append(&b, "hello ", 6), 0);
  cr_assert_eq(corio__buf_append(&b, "world", 5), 0);
  cr_assert_eq(b.len, 11);
  corio__buf_consume(&b, 6);
  cr_assert_eq(memcmp(b.data, "world", 5), 0);
  corio__buf_consume(&b, 100);
  cr_assert_eq(b.len, 0);
  cr_assert_eq(corio__buf_reserve(&b, SIZE_MAX), -ENOMEM);
  corio__buf_free(&b);
}

/* Loop-level: cancel half of 200k timers (compaction kicks in), the rest fire in order. */
static corio_loop *loop;
static int64_t last_when;
static int fired, out_of_order;
struct tmr {
  int64_t when;
  corio_handle h;
};
static void tcb(void *arg)
{
  struct tmr *t = arg;
  if (t->when < last_when) out_of_order++;
  last_when = t->when;
  fired++;
}

Test(toolkit, timers_cancel_half_and_compact)
{
  enum { N = 200000 };
  struct tmr *ts = calloc(N, sizeof(*ts));
  int i, cancelled = 0;
  double base;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  base = corio_loop_time(loop);
  srand(3);
  for (i = 0; i < N; i++) {
    double d = (rand() % 50000) * 1e-6;
    ts[i].when = (int64_t)((base + d) * 1e9);
    cr_assert_eq(corio_call_at(loop, base + d, tcb, &ts[i], &ts[i].h), 0);
  }
  for (i = 0; i < N; i += 2) cancelled += corio_handle_cancel(loop, ts[i].h) == 0;
  cr_assert_eq(cancelled, N / 2);
  while (fired < N / 2) cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
  cr_assert_eq(out_of_order, 0);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(fired, N / 2);
  cr_assert_eq(corio_loop_close(loop), 0);
  free(ts);
}

/* The ready ring grows while wrapped around: order must survive. */
static int seen_order[5000], nseen;
static void rec(void *arg)
{
  seen_order[nseen++] = (int)(intptr_t)arg;
}
static void push_many(void *arg)
{
  int i;
  (void)arg;
  for (i = 0; i < 4000; i++) corio_call_soon(loop, rec, (void *)(intptr_t)i, NULL);
}

Test(toolkit, ready_ring_grows_while_wrapped)
{
  int i;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  for (i = 0; i < 200; i++) corio_call_soon(loop, rec, (void *)(intptr_t)-1, NULL);
  corio_loop_run_once(loop, 0); /* head moves to 200 */
  nseen = 0;
  corio_call_soon(loop, push_many, NULL, NULL);
  corio_loop_run_once(loop, 0);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(nseen, 4000);
  for (i = 0; i < 4000; i++) cr_assert_eq(seen_order[i], i);
  cr_assert_eq(corio_loop_close(loop), 0);
}
