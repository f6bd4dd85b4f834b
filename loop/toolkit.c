/* The internal toolkit: 4-ary heap, MPSC stack, byte buffer, time conversion. */
#include <errno.h>
#include <math.h>
#include "internal.h"

/* ---------------- 4-ary heap ---------------- */

void corio__heap_init(corio__heap *h)
{
  memset(h, 0, sizeof(*h));
}

void corio__heap_free(corio__heap *h)
{
  corio__free(h->mem);
  memset(h, 0, sizeof(*h));
}

static inline bool node_less(const corio__heap_node *a, const corio__heap_node *b)
{
  return a->key < b->key || (a->key == b->key && (int32_t)(a->seq - b->seq) < 0);
}

static void sift_up(corio__heap *h, size_t i)
{
  corio__heap_node x = h->nodes[i];
  while (i > 0) {
    size_t parent = (i - 1) / 4;
    if (!node_less(&x, &h->nodes[parent])) break;
    h->nodes[i] = h->nodes[parent];
    i = parent;
  }
  h->nodes[i] = x;
}

static void sift_down(corio__heap *h, size_t i)
{
  corio__heap_node x = h->nodes[i];
  size_t n = h->n;
  for (;;) {
    size_t c = 4 * i + 1, best, k, end;
    if (c >= n) break;
    best = c;
    end = c + 4 < n ? c + 4 : n;
    for (k = c + 1; k < end; k++)
      if (node_less(&h->nodes[k], &h->nodes[best])) best = k;
    if (!node_less(&h->nodes[best], &x)) break;
    h->nodes[i] = h->nodes[best];
    i = best;
  }
  h->nodes[i] = x;
}

/* Place the array so that node 1 starts a cache line: then 4i+1 (the first child of i) is at
 * byte 64*i + 64 of that base, and the four children fill exactly one line. */
static int heap_grow(corio__heap *h)
{
  size_t ncap = h->cap ? h->cap * 2 : 64, old_off = 0, new_off;
  char *mem, *base;
  if (h->mem) old_off = (size_t)((char *)h->nodes - (char *)h->mem);
  /* realloc, not malloc + copy: glibc moves large blocks with mremap (no copy), and a moved
   * block keeps its offset within the page, so the cache-line placement usually survives. */
  mem = corio__realloc(h->mem, ncap * sizeof(corio__heap_node) + 128);
  if (!mem) return -ENOMEM;
  base = (char *)(((uintptr_t)mem + 63) & ~(uintptr_t)63) + 64 - sizeof(corio__heap_node);
  new_off = (size_t)(base - mem);
  if (h->mem && new_off != old_off && h->n)
    memmove(base, mem + old_off, h->n * sizeof(corio__heap_node));
  h->mem = mem;
  h->nodes = (corio__heap_node *)(void *)base;
  h->cap = ncap;
  return 0;
}

int corio__heap_push(corio__heap *h, int64_t key, uint32_t seq, uint32_t id)
{
  if (h->n == h->cap && heap_grow(h) < 0) return -ENOMEM;
  h->nodes[h->n] = (corio__heap_node){key, seq, id};
  sift_up(h, h->n++);
  return 0;
}

/* Bottom-up pop (Floyd): walk the hole from the root down to a leaf along the smallest
 * children, without comparing against the element that will fill it (it came from the bottom
 * and almost always belongs there), then sift that element up from the leaf. One compare fewer
 * per level than a plain sift-down; the cache lines touched are the same. */
uint32_t corio__heap_pop(corio__heap *h)
{
  uint32_t id = h->nodes[0].id;
  size_t i = 0, n = --h->n, c, best, k, end;
  if (!n) return id;
  for (;;) {
    c = 4 * i + 1;
    if (c >= n) break;
    best = c;
    end = c + 4 < n ? c + 4 : n;
    for (k = c + 1; k < end; k++)
      if (node_less(&h->nodes[k], &h->nodes[best])) best = k;
    h->nodes[i] = h->nodes[best];
    i = best;
  }
  h->nodes[i] = h->nodes[n];
  sift_up(h, i);
  return id;
}

void corio__heap_filter(corio__heap *h, bool (*keep)(void *ctx, uint32_t id), void *ctx)
{
  size_t i, j = 0;
  for (i = 0; i < h->n; i++)
    if (keep(ctx, h->nodes[i].id)) h->nodes[j++] = h->nodes[i];
  h->n = j;
  for (i = h->n / 4 + 1; i-- > 0;)
    if (i < h->n) sift_down(h, i);
}

/* ---------------- MPSC ---------------- */

struct corio__mpsc_node *corio__mpsc_take_all(corio__mpsc *q)
{
  struct corio__mpsc_node *n, *prev = NULL, *next;
  /* acquire pairs with the producers' seq_cst CAS: their node writes are visible */
  n = atomic_exchange_explicit(&q->head, NULL, memory_order_acquire);
  while (n) { /* reverse: the stack is newest-first */
    /* Each node was last written by its producer's CPU and is about to be written here: ask for
     * the line in exclusive state at once, instead of a read and then an upgrade (two transfers
     * per node, measured as the largest cost of 1,000 executor completions per iteration). */
    corio__prefetch_write(n);
    next = atomic_load_explicit(&n->next, memory_order_relaxed);
    atomic_store_explicit(&n->next, prev, memory_order_relaxed);
    prev = n;
    n = next;
  }
  return prev;
}

/* ---------------- byte buffer ---------------- */

int corio__buf_reserve(corio__buf *b, size_t extra)
{
  size_t need, ncap;
  uint8_t *nd;
  /* no object may exceed PTRDIFF_MAX: refuse before asking the allocator for the impossible */
  if (extra > (size_t)PTRDIFF_MAX - b->len) return -ENOMEM;
  need = b->len + extra;
  if (need <= b->cap) return 0;
  ncap = b->cap ? b->cap : 256;
  while (ncap < need) ncap = ncap > (size_t)PTRDIFF_MAX / 2 ? need : ncap * 2;
  nd = corio__realloc(b->data, ncap);
  if (!nd) return -ENOMEM;
  b->data = nd;
  b->cap = ncap;
  return 0;
}

int corio__buf_append(corio__buf *b, const void *p, size_t n)
{
  int rc = corio__buf_reserve(b, n);
  if (rc < 0) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

void corio__buf_consume(corio__buf *b, size_t n)
{
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void corio__buf_free(corio__buf *b)
{
  corio__free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---------------- time ---------------- */

int64_t corio__seconds_to_ns(double s)
{
  double ns;
  if (!(s > 0)) return 0; /* also NaN */
  ns = ceil(s * 1e9);
  if (ns >= 9.2e18) return INT64_MAX / 2;
  return (int64_t)ns;
}
