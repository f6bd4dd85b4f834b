/* Shared memory across process-pool workers (corio/shm.h): a counter under the process-shared
 * lock with the exact total, atomics, the robust mutex after its owner dies, the semaphore across
 * processes, a region attached by descriptor after the pool started, the allocator. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "test_executor_process.h"

TestSuite(process_pool_shm, .init = pp_test_setup, .timeout = 60);

struct counter {
  corio_shm_mutex lock;
  long value;      /* guarded by lock */
  _Atomic long at; /* lock-free */
};

static void bump(corio_job *job)
{
  struct counter *c = corio_job_arg(job);
  long v;
  int i, rc;
  for (i = 0; i < 10; i++) {
    rc = corio_shm_mutex_lock(&c->lock);
    if (rc != 0) {
      corio_job_fail(job, rc < 0 ? rc : -EOWNERDEAD, "lock: %d", rc);
      return;
    }
    v = c->value;
    if (i == 5) sched_yield(); /* widen the window a broken lock would lose updates in */
    c->value = v + 1;
    corio_shm_mutex_unlock(&c->lock);
    atomic_fetch_add(&c->at, 1);
  }
  corio_job_return(job, 0);
}

Test(process_pool_shm, counter_under_the_shared_lock_is_exact)
{
  enum { N = 2000 };
  int fds = count_fds(), i;
  corio_shm *shm;
  struct counter *c;
  corio_executor *ex;
  corio_future **f = calloc(N, sizeof(*f));
  cr_assert_eq(corio_shm_new(&shm, 4096), 0);
  c = corio_shm_alloc(shm, sizeof(*c), 64);
  cr_assert_not_null(c);
  cr_assert_eq(corio_shm_mutex_init(&c->lock), 0);
  ex = pool_new(4, 0, NULL, 0);
  for (i = 0; i < N; i++) f[i] = corio_executor_submit(ex, bump, c);
  /* the parent takes part too */
  for (i = 0; i < 1000; i++) {
    cr_assert_eq(corio_shm_mutex_lock(&c->lock), 0);
    c->value++;
    cr_assert_eq(corio_shm_mutex_unlock(&c->lock), 0);
  }
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0, "%s", corio_future_error_message(f[i]));
    corio_future_unref(f[i]);
  }
  free(f);
  cr_assert_eq(c->value, (long)N * 10 + 1000);
  cr_assert_eq(atomic_load(&c->at), (long)N * 10);
  corio_executor_free(ex);
  corio_shm_mutex_destroy(&c->lock);
  corio_shm_free(shm);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

/* A worker dies holding the lock: the next locker gets it, told so by the return value 1. */
static void lock_and_die(corio_job *job)
{
  struct counter *c = corio_job_arg(job);
  corio_shm_mutex_lock(&c->lock);
  c->value = 99;
  _exit(0);
}

Test(process_pool_shm, robust_mutex_survives_a_dead_owner)
{
  corio_shm *shm;
  struct counter *c;
  corio_executor *ex;
  corio_future *f;
  cr_assert_eq(corio_shm_new(&shm, 4096), 0);
  c = corio_shm_alloc(shm, sizeof(*c), 0);
  cr_assert_eq(corio_shm_mutex_init(&c->lock), 0);
  ex = pool_new(1, 0, NULL, 0);
  f = corio_executor_submit(ex, lock_and_die, c);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), CORIO_E_WORKER_DIED);
  corio_future_unref(f);
  cr_assert_eq(corio_shm_mutex_lock(&c->lock), 1, "owner died: acquired, flagged");
  cr_assert_eq(c->value, 99);
  cr_assert_eq(corio_shm_mutex_unlock(&c->lock), 0);
  cr_assert_eq(corio_shm_mutex_lock(&c->lock), 0, "consistent again");
  cr_assert_eq(corio_shm_mutex_unlock(&c->lock), 0);
  /* and it still works across processes */
  f = corio_executor_submit(ex, bump, c);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_eq(c->value, 109);
  corio_future_unref(f);
  corio_executor_free(ex);
  corio_shm_free(shm);
  assert_no_children();
}

Test(process_pool_shm, mutex_errors)
{
  corio_shm *shm;
  corio_shm_mutex *m;
  cr_assert_eq(corio_shm_new(&shm, 256), 0);
  m = corio_shm_alloc(shm, sizeof(*m), 0);
  cr_assert_eq(corio_shm_mutex_init(m), 0);
#ifndef CORIO_TEST_TSAN /* the misuse itself is what ThreadSanitizer reports */
  cr_assert_eq(corio_shm_mutex_unlock(m), CORIO_E_NOT_LOCKED);
#endif
  cr_assert_eq(corio_shm_mutex_lock(m), 0);
  cr_assert_eq(corio_shm_mutex_lock(m), -EDEADLK);
  cr_assert_eq(corio_shm_mutex_unlock(m), 0);
  cr_assert_eq(corio_shm_mutex_timedlock(m, 0), 0);
  cr_assert_eq(corio_shm_mutex_unlock(m), 0);
  corio_shm_mutex_destroy(m);
  corio_shm_free(shm);
}

/* ---- semaphore ---- */

struct sems {
  corio_shm_sem ready, go;
};

static void handshake(corio_job *job)
{
  struct sems *s = corio_job_arg(job);
  corio_shm_sem_post(&s->ready);
  corio_job_return(job, corio_shm_sem_wait(&s->go, 10));
}

Test(process_pool_shm, semaphore_across_processes)
{
  enum { N = 4 };
  corio_shm *shm;
  struct sems *s;
  corio_executor *ex;
  corio_future *f[N];
  double t0;
  int i;
  cr_assert_eq(corio_shm_new(&shm, 4096), 0);
  s = corio_shm_alloc(shm, sizeof(*s), 0);
  cr_assert_eq(corio_shm_sem_init(&s->ready, 0), 0);
  cr_assert_eq(corio_shm_sem_init(&s->go, 0), 0);
  t0 = now_s();
  cr_assert_eq(corio_shm_sem_wait(&s->ready, 0.05), -ETIMEDOUT);
  cr_assert_geq(now_s() - t0, 0.049);
  cr_assert_eq(corio_shm_sem_wait(&s->ready, 0), -EAGAIN);
  ex = pool_new(N, 0, NULL, 0);
  for (i = 0; i < N; i++) f[i] = corio_executor_submit(ex, handshake, s);
  for (i = 0; i < N; i++) cr_assert_eq(corio_shm_sem_wait(&s->ready, 10), 0);
  cr_assert_eq(corio_shm_sem_value(&s->ready), 0);
  for (i = 0; i < N; i++) cr_assert_eq(corio_shm_sem_post(&s->go), 0);
  cr_assert_eq(corio_futures_wait_all(f, N, 10), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_int(f[i]), 0);
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
  corio_shm_sem_destroy(&s->ready);
  corio_shm_sem_destroy(&s->go);
  corio_shm_free(shm);
  assert_no_children();
}

/* ---- a region made after the pool started, passed by descriptor ---- */

struct attach_req {
  int32_t pid, fd;
  uint64_t offset;
};

static void attach_and_write(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  struct attach_req r;
  corio_shm *shm;
  char *p;
  int rc;
  memcpy(&r, in->data, sizeof(r));
  rc = corio_shm_attach(&shm, r.pid, r.fd);
  if (rc < 0) {
    corio_job_fail(job, rc, "attach: %s", strerror(-rc));
    return;
  }
  p = corio_shm_ptr(shm, r.offset);
  strcpy(p, "written by a worker");
  /* the worker's allocations come out of the same space */
  corio_job_return(job, (int64_t)corio_shm_offset(shm, corio_shm_alloc(shm, 8, 8)));
  corio_shm_free(shm);
}

Test(process_pool_shm, region_attached_by_descriptor)
{
  corio_executor *ex = pool_new(1, 0, NULL, 0);
  corio_shm *shm;
  struct attach_req r;
  corio_future *f;
  char *text;
  cr_assert_eq(corio_shm_new(&shm, 1 << 16), 0);
  text = corio_shm_alloc(shm, 64, 0);
  r.pid = getpid();
  r.fd = corio_shm_fd(shm);
  r.offset = corio_shm_offset(shm, text);
  f = corio_executor_submit_bytes(ex, attach_and_write, &r, sizeof(r));
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_str_eq(text, "written by a worker");
  cr_assert_eq(corio_future_int(f), 64, "allocated after the parent's 64 bytes");
  corio_future_unref(f);
  corio_executor_free(ex);
  corio_shm_free(shm);
  assert_no_children();
}

Test(process_pool_shm, allocator)
{
  corio_shm *shm, *bad;
  uint8_t *a, *b, *c;
  int fd;
  cr_assert_eq(corio_shm_new(&shm, 0), -EINVAL);
  cr_assert_eq(corio_shm_new(&shm, 1000), 0);
  cr_assert_eq(corio_shm_size(shm), 1000);
  cr_assert_eq((uintptr_t)corio_shm_data(shm) % 64, 0);
  a = corio_shm_alloc(shm, 3, 1);
  b = corio_shm_alloc(shm, 8, 0);
  c = corio_shm_alloc(shm, 100, 256);
  cr_assert_eq(a, corio_shm_data(shm));
  cr_assert_eq((uintptr_t)b % 16, 0);
  cr_assert_eq((uintptr_t)c % 256, 0);
  cr_assert_eq(b[0] | b[7] | c[99], 0, "zero-filled");
  cr_assert_null(corio_shm_alloc(shm, 1000, 0), "full");
  cr_assert_null(corio_shm_alloc(shm, 8, 3), "alignment must be a power of two");
  cr_assert_not_null(corio_shm_alloc(shm, 1000 - corio_shm_offset(shm, c) - 100, 1));
  cr_assert_null(corio_shm_alloc(shm, 1, 1), "exactly full");
  cr_assert_eq(corio_shm_ptr(shm, corio_shm_offset(shm, c)), c);
  cr_assert_null(corio_shm_ptr(shm, 1000));
  /* attach refuses what is not a corio region */
  fd = memfd_create("not-corio", MFD_CLOEXEC);
  cr_assert_eq(ftruncate(fd, 4096), 0);
  cr_assert_eq(corio_shm_attach(&bad, getpid(), fd), -EINVAL);
  close(fd);
  cr_assert_eq(corio_shm_attach(&bad, getpid(), 987), -ENOENT);
  corio_shm_free(shm);
}
