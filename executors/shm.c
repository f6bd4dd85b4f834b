/*
 * Shared memory regions (memfd + MAP_SHARED) with a bump allocator, and the process-shared
 * mutex and semaphore that live in them (include/corio/shm.h).
 *
 * Layout: a 64-byte header at offset 0 (magic, usable size, allocation cursor), the usable bytes
 * after it. The cursor lives in the region, not in the process-local corio_shm, so that every
 * process mapping the region allocates from the same space; it only grows (a CAS loop, since the
 * alignment padding depends on the value read).
 *
 * The mutex is glibc's pthread mutex with PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST, and the
 * semaphore sem_init(pshared = 1): both are futex words in the shared pages, which the kernel
 * keys by (inode, offset) when the futex is not private, so any mapping address works. The
 * mutex is robust because killing workers is a feature of the process pool (cancel, timeouts):
 * a plain mutex held by a killed worker would hang every other process forever. The kernel
 * walks a dying thread's robust list and marks its mutexes owner-dead; glibc registers that list
 * again in a forked child, so workers are covered. A hand-made futex lock was rejected: it would
 * have to re-implement exactly that list.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "internal.h"
#include "corio/shm.h"

#define SHM_MAGIC UINT64_C(0x636f72696f73686d) /* "corioshm" */
#define SHM_HDR   64

struct shm_hdr {
  uint64_t magic;
  uint64_t size;           /* usable bytes after the header */
  _Atomic uint64_t cursor; /* offset of the first unallocated usable byte */
};

struct corio_shm {
  int fd;
  uint8_t *base; /* the mapping (header first) */
  size_t maplen;
};

static struct shm_hdr *hdr_of(const corio_shm *shm)
{
  return (struct shm_hdr *)(void *)shm->base;
}

static int map_region(corio_shm **out, int fd, size_t maplen)
{
  corio_shm *shm = corio__malloc(sizeof(*shm));
  void *base;
  if (!shm) return -ENOMEM;
  base = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int err = -errno;
    corio__free(shm);
    return err;
  }
  shm->fd = fd;
  shm->base = base;
  shm->maplen = maplen;
  *out = shm;
  return 0;
}

int corio_shm_new(corio_shm **out, size_t size)
{
  struct shm_hdr *h;
  size_t maplen;
  int fd, rc;
  if (!out) return -EINVAL;
  *out = NULL;
  if (size == 0 || size > (size_t)PTRDIFF_MAX - SHM_HDR - 4096) return -EINVAL;
  maplen = SHM_HDR + size;
  fd = memfd_create("corio-shm", MFD_CLOEXEC);
  if (fd < 0) return -errno;
  if (ftruncate(fd, (off_t)maplen) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  rc = map_region(out, fd, maplen);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  h = hdr_of(*out);
  h->magic = SHM_MAGIC;
  h->size = size;
  atomic_init(&h->cursor, 0);
  return 0;
}

int corio_shm_attach(corio_shm **out, pid_t pid, int fd)
{
  char path[64];
  struct stat st;
  struct shm_hdr *h;
  int nfd, rc;
  if (!out || pid <= 0 || fd < 0) return -EINVAL;
  *out = NULL;
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
  nfd = open(path, O_RDWR | O_CLOEXEC);
  if (nfd < 0) return -errno;
  if (fstat(nfd, &st) < 0) {
    rc = -errno;
    goto fail;
  }
  rc = -EINVAL;
  if (!S_ISREG(st.st_mode) || st.st_size <= SHM_HDR) goto fail;
  rc = map_region(out, nfd, (size_t)st.st_size);
  if (rc < 0) goto fail;
  h = hdr_of(*out);
  if (h->magic != SHM_MAGIC || h->size != (uint64_t)st.st_size - SHM_HDR) {
    corio_shm_free(*out);
    *out = NULL;
    return -EINVAL;
  }
  return 0;
fail:
  close(nfd);
  return rc;
}

void corio_shm_free(corio_shm *shm)
{
  if (!shm) return;
  munmap(shm->base, shm->maplen);
  close(shm->fd);
  corio__free(shm);
}

void *corio_shm_data(const corio_shm *shm)
{
  return shm ? shm->base + SHM_HDR : NULL;
}

size_t corio_shm_size(const corio_shm *shm)
{
  return shm ? (size_t)hdr_of(shm)->size : 0;
}

int corio_shm_fd(const corio_shm *shm)
{
  return shm ? shm->fd : -EINVAL;
}

void *corio_shm_alloc(corio_shm *shm, size_t size, size_t align)
{
  struct shm_hdr *h;
  uint64_t cur, start, end;
  if (!shm) return NULL;
  if (align == 0) align = 16;
  if ((align & (align - 1)) || align > 4096) return NULL;
  h = hdr_of(shm);
  cur = atomic_load_explicit(&h->cursor, memory_order_relaxed);
  do {
    /* Aligned as an offset from the mapping's start, which is page aligned in every process:
     * the block is aligned at whatever address a process maps the region (up to 4096). */
    start = ((SHM_HDR + cur + align - 1) & ~(uint64_t)(align - 1)) - SHM_HDR;
    if (start < cur || size > h->size || start > h->size - size) return NULL;
    end = start + size;
  } while (!atomic_compare_exchange_weak_explicit(&h->cursor, &cur, end, memory_order_relaxed,
                                                  memory_order_relaxed));
  /* Fresh memfd pages are zero; only a region shared by attach could hold old bytes, and the
   * cursor never goes back, so the block is still zero. No memset: it would touch pages. */
  return shm->base + SHM_HDR + start;
}

size_t corio_shm_offset(const corio_shm *shm, const void *p)
{
  return (size_t)((const uint8_t *)p - (shm->base + SHM_HDR));
}

void *corio_shm_ptr(const corio_shm *shm, size_t offset)
{
  return offset < corio_shm_size(shm) ? shm->base + SHM_HDR + offset : NULL;
}

/* ---- mutex ---- */

int corio_shm_mutex_init(corio_shm_mutex *m)
{
  pthread_mutexattr_t a;
  int rc;
  if (!m) return -EINVAL;
  rc = pthread_mutexattr_init(&a);
  if (rc) return -rc;
  rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (!rc) rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  /* Error checking: unlock by a non-owner is refused instead of corrupting the lock. */
  if (!rc) rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  if (!rc) rc = pthread_mutex_init(&m->m, &a);
  pthread_mutexattr_destroy(&a);
  return -rc;
}

/* A lock taken from a dead owner is made consistent at once and reported as 1: recovery is the
 * caller's decision, and leaving the mutex inconsistent would make it unusable after unlock. */
static int lock_result(corio_shm_mutex *m, int rc)
{
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&m->m);
    return 1;
  }
  return -rc;
}

int corio_shm_mutex_lock(corio_shm_mutex *m)
{
  if (!m) return -EINVAL;
  return lock_result(m, pthread_mutex_lock(&m->m));
}

int corio_shm_mutex_timedlock(corio_shm_mutex *m, double timeout_s)
{
  struct timespec ts;
  int64_t deadline;
  if (!m) return -EINVAL;
  if (timeout_s < 0) return corio_shm_mutex_lock(m);
  if (timeout_s == 0) return lock_result(m, pthread_mutex_trylock(&m->m));
  deadline = corio__now_ns() + corio__seconds_to_ns(timeout_s);
  ts.tv_sec = deadline / 1000000000;
  ts.tv_nsec = deadline % 1000000000;
  return lock_result(m, pthread_mutex_clocklock(&m->m, CLOCK_MONOTONIC, &ts));
}

int corio_shm_mutex_unlock(corio_shm_mutex *m)
{
  int rc;
  if (!m) return -EINVAL;
  rc = pthread_mutex_unlock(&m->m);
  return rc == EPERM ? CORIO_E_NOT_LOCKED : -rc;
}

void corio_shm_mutex_destroy(corio_shm_mutex *m)
{
  if (m) pthread_mutex_destroy(&m->m);
}

/* ---- semaphore ---- */

int corio_shm_sem_init(corio_shm_sem *s, unsigned value)
{
  if (!s) return -EINVAL;
  return sem_init(&s->s, 1, value) < 0 ? -errno : 0;
}

int corio_shm_sem_wait(corio_shm_sem *s, double timeout_s)
{
  struct timespec ts;
  int64_t deadline;
  int rc;
  if (!s) return -EINVAL;
  if (timeout_s == 0) return sem_trywait(&s->s) < 0 ? -errno : 0;
  if (timeout_s > 0) {
    deadline = corio__now_ns() + corio__seconds_to_ns(timeout_s);
    ts.tv_sec = deadline / 1000000000;
    ts.tv_nsec = deadline % 1000000000;
  }
  do rc = timeout_s < 0 ? sem_wait(&s->s) : sem_clockwait(&s->s, CLOCK_MONOTONIC, &ts);
  while (rc < 0 && errno == EINTR);
  return rc < 0 ? -errno : 0;
}

int corio_shm_sem_post(corio_shm_sem *s)
{
  if (!s) return -EINVAL;
  return sem_post(&s->s) < 0 ? -errno : 0;
}

int corio_shm_sem_value(corio_shm_sem *s)
{
  int v = 0;
  if (!s) return -EINVAL;
  sem_getvalue(&s->s, &v);
  return v;
}

void corio_shm_sem_destroy(corio_shm_sem *s)
{
  if (s) sem_destroy(&s->s);
}
