/* Allocation through one replaceable allocator, so embedders can plug theirs and tests can
 * inject failures (every library allocation passes here). */
#include <stdlib.h>
#include "internal.h"

static void *libc_malloc(size_t n, void *ctx)
{
  (void)ctx;
  return malloc(n);
}
static void *libc_realloc(void *p, size_t n, void *ctx)
{
  (void)ctx;
  return realloc(p, n);
}
static void libc_free(void *p, void *ctx)
{
  (void)ctx;
  free(p);
}

static corio_allocator alloc = {libc_malloc, libc_realloc, libc_free, NULL};

void corio_set_allocator(const corio_allocator *a)
{
  if (a)
    alloc = *a;
  else
    alloc = (corio_allocator){libc_malloc, libc_realloc, libc_free, NULL};
}

void *corio__malloc(size_t n)
{
  return alloc.malloc(n ? n : 1, alloc.ctx);
}

void *corio__calloc(size_t n, size_t size)
{
  void *p;
  if (size && n > SIZE_MAX / size) return NULL;
  p = corio__malloc(n * size);
  if (p) memset(p, 0, n * size);
  return p;
}

void *corio__realloc(void *p, size_t n)
{
  return alloc.realloc(p, n ? n : 1, alloc.ctx);
}

void corio__free(void *p)
{
  if (p) alloc.free(p, alloc.ctx);
}
