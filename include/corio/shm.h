/**
 * @file shm.h
 * Shared memory across processes: what Python's multiprocessing Value, Array, Lock and Semaphore
 * give, for process-pool workers. A region is a memfd mapped MAP_SHARED; a bump allocator carves
 * objects out of it; a process-shared mutex and semaphore live inside it.
 *
 * With a process pool, create the region and the objects in it BEFORE corio_process_pool_new:
 * the workers are forks, so they see the same mapping at the same address, and a pointer into
 * the region can be passed as a job's argument (corio_executor_submit(ex, fn, counter)).
 *
 * @code
 *   corio_shm *shm;
 *   corio_shm_new(&shm, 4096);
 *   struct counter { corio_shm_mutex lock; long value; } *c = corio_shm_alloc(shm, sizeof(*c), 0);
 *   corio_shm_mutex_init(&c->lock);
 *   corio_process_pool_new(&pool, NULL);               // workers inherit the mapping
 *   ...  in a job:  corio_shm_mutex_lock(&c->lock); c->value++; corio_shm_mutex_unlock(&c->lock);
 *   corio_executor_free(pool);
 *   corio_shm_free(shm);
 * @endcode
 *
 * A region made after the pool started reaches workers by its descriptor: put getpid() and
 * corio_shm_fd() in the job's bytes and call corio_shm_attach() in the worker. It is mapped at
 * another address there: exchange offsets (corio_shm_offset / corio_shm_ptr), not pointers.
 *
 * Rules: a region inherited through fork belongs to the process that created it; a worker uses
 * it but never frees it (its descriptor is not open in the worker). Objects inside a region hold
 * no pointers of their own, so they work at any address. Plain C11 atomics on region memory
 * (atomic_fetch_add on an _Atomic long) are also process-shared and need no lock.
 *
 * The mutex is robust: if a process dies holding it (a worker killed by a cancel, a crash), the
 * next locker gets it with the return value 1 instead of waiting forever, and decides whether
 * the data it guards is usable. The semaphore has no owner, so a count taken by a process that
 * dies is not given back.
 */
#ifndef CORIO_SHM_H
#define CORIO_SHM_H

#include <pthread.h>
#include <semaphore.h>
#include <sys/types.h>
#include "common.h"

typedef struct corio_shm corio_shm;

/** A new zero-filled region of @p size usable bytes (memfd, close-on-exec, MAP_SHARED).
 *  @return 0, -EINVAL (size 0), -ENOMEM, or the memfd/mmap error. */
CORIO_EXTERN int corio_shm_new(corio_shm **shm, size_t size);
/** Map the region that process @p pid holds as descriptor @p fd (through /proc/pid/fd; same
 *  user). @return 0, -EINVAL if it is not a corio region, or the open/mmap error. */
CORIO_EXTERN int corio_shm_attach(corio_shm **shm, pid_t pid, int fd);
/** Unmap and close (in the process that created or attached the region). NULL-safe. */
CORIO_EXTERN void corio_shm_free(corio_shm *shm);
/** The first usable byte (aligned to 64) and the usable size. */
CORIO_EXTERN void *corio_shm_data(const corio_shm *shm);
CORIO_EXTERN size_t corio_shm_size(const corio_shm *shm);
/** The region's memfd, for corio_shm_attach in another process. */
CORIO_EXTERN int corio_shm_fd(const corio_shm *shm);
/**
 * Carve @p size zeroed bytes aligned to @p align (0 = 16; a power of two up to 4096) out of the
 * region. Any process mapping the region may allocate (the cursor is an atomic inside the region);
 * nothing is ever given back but by freeing the region. @return NULL when the region is full.
 */
CORIO_EXTERN void *corio_shm_alloc(corio_shm *shm, size_t size, size_t align);
/** Offset of @p p from corio_shm_data(), and back: how to name an object across mappings. */
CORIO_EXTERN size_t corio_shm_offset(const corio_shm *shm, const void *p);
CORIO_EXTERN void *corio_shm_ptr(const corio_shm *shm, size_t offset);

/** A process-shared, robust mutex; place it in a region. */
typedef struct corio_shm_mutex {
  pthread_mutex_t m;
} corio_shm_mutex;

/** Initialise (once, by one process, before others use it). @return 0 or -errno. */
CORIO_EXTERN int corio_shm_mutex_init(corio_shm_mutex *m);
/** Lock. @return 0; 1 if the previous owner died holding it (you own it now, and the data it
 *  guards may be half-updated); or -errno (-EDEADLK if this thread already holds it). */
CORIO_EXTERN int corio_shm_mutex_lock(corio_shm_mutex *m);
/** Lock within @p timeout_s seconds (< 0: forever; 0: try once). Returns as lock, or
 *  -ETIMEDOUT (-EBUSY when @p timeout_s is 0). */
CORIO_EXTERN int corio_shm_mutex_timedlock(corio_shm_mutex *m, double timeout_s);
/** Unlock. @return 0, or CORIO_E_NOT_LOCKED if the caller does not hold it. */
CORIO_EXTERN int corio_shm_mutex_unlock(corio_shm_mutex *m);
/** Destroy (when no process uses it any more). */
CORIO_EXTERN void corio_shm_mutex_destroy(corio_shm_mutex *m);

/** A process-shared counting semaphore; place it in a region. */
typedef struct corio_shm_sem {
  sem_t s;
} corio_shm_sem;

/** Initialise with @p value. @return 0 or -errno (-EINVAL above SEM_VALUE_MAX). */
CORIO_EXTERN int corio_shm_sem_init(corio_shm_sem *s, unsigned value);
/** Take one, waiting up to @p timeout_s (< 0: forever; 0: try once). @return 0, -ETIMEDOUT
 *  (-EAGAIN when @p timeout_s is 0). */
CORIO_EXTERN int corio_shm_sem_wait(corio_shm_sem *s, double timeout_s);
/** Give one back. @return 0 or -EOVERFLOW. */
CORIO_EXTERN int corio_shm_sem_post(corio_shm_sem *s);
/** The current count (a snapshot). */
CORIO_EXTERN int corio_shm_sem_value(corio_shm_sem *s);
/** Destroy (when no process uses it any more). */
CORIO_EXTERN void corio_shm_sem_destroy(corio_shm_sem *s);

#endif
