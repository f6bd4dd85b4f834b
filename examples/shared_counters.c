/*
 * shared_counters — Port of a Python seed program (issue 4): multiprocessing's Value, Array,
 * Lock and Semaphore shared by worker processes that update them at the same time.
 *
 * Python (multiprocessing):
 *
 *     counter = Value("l", 0)                     # a shared long with its own lock
 *     totals = Array("d", 4)                      # shared doubles, one lock for the array
 *     unsafe = Value("l", 0, lock=False)          # no lock: updates may be lost
 *     gate = Semaphore(2)                         # at most 2 workers in the section
 *
 *     def work(k):
 *         for _ in range(50_000):
 *             with counter.get_lock():
 *                 counter.value += 1
 *         for _ in range(1_000_000):
 *             unsafe.value += 1
 *         with totals.get_lock():
 *             totals[k % 4] += k * 1.5
 *         with gate:
 *             time.sleep(0.02)
 *
 *     with Pool(4) as pool:
 *         pool.map(work, range(8))
 *
 * corio/shm.h gives the same: a shared memory region (a memfd mapped MAP_SHARED) created BEFORE
 * the pool, so that every worker, a fork, sees it at the same address; process-shared robust
 * mutexes and a semaphore placed in it; and C11 atomics, which need no lock at all. The pointer
 * to the shared struct is a global set before the pool starts: it means the same in every
 * worker, as the Values inherited by Python's forked workers do.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <corio.h>

#define NJOBS 8
#define N     50000
#define NFAST 1000000

struct shared {
  corio_shm_mutex counter_lock; /* Value("l") */
  long counter;
  corio_shm_mutex totals_lock; /* Array("d", 4) */
  double totals[4];
  volatile long unsafe;   /* Value("l", lock=False) */
  _Atomic long atomic;    /* no lock needed */
  corio_shm_sem gate;     /* Semaphore(2) */
  _Atomic int inside;     /* how many hold the gate now ... */
  _Atomic int max_inside; /* ... and at most */
};

static struct shared *shared; /* set before the pool starts */

/* 0, or the error. 1 would mean a process died holding the mutex; nothing here dies in the
 * middle of an update, so the data it guards is whole and the lock is simply ours. */
static int lock(corio_shm_mutex *m)
{
  int rc = corio_shm_mutex_lock(m);
  return rc < 0 ? rc : 0;
}

/* def work(k) */
static void work(corio_job *job)
{
  struct shared *s = shared;
  int k = (int)corio_job_input(job)->data[0], i, n, seen, rc;

  for (i = 0; i < N; i++) {
    if ((rc = lock(&s->counter_lock)) < 0) goto lock_failed;
    s->counter++;
    corio_shm_mutex_unlock(&s->counter_lock);
  }
  for (i = 0; i < NFAST; i++) s->unsafe++; /* read, add, write: others may write in between */
  for (i = 0; i < NFAST; i++) atomic_fetch_add_explicit(&s->atomic, 1, memory_order_relaxed);
  if ((rc = lock(&s->totals_lock)) < 0) goto lock_failed;
  s->totals[k % 4] += k * 1.5;
  corio_shm_mutex_unlock(&s->totals_lock);

  if (corio_shm_sem_wait(&s->gate, 10) < 0) {
    corio_job_fail(job, -ETIMEDOUT, "job %d: the gate stayed closed for 10 s", k);
    return;
  }
  n = atomic_fetch_add(&s->inside, 1) + 1;
  seen = atomic_load(&s->max_inside);
  while (n > seen && !atomic_compare_exchange_weak(&s->max_inside, &seen, n)) {
  }
  usleep(20000);
  atomic_fetch_sub(&s->inside, 1);
  corio_shm_sem_post(&s->gate);
  corio_job_return(job, k);
  return;
lock_failed:
  corio_job_fail(job, rc, "job %d: lock: %s", k, corio_strerror(rc));
}

int main(void)
{
  corio_process_pool_opts opts = {.max_workers = 4};
  corio_executor *pool = NULL;
  corio_shm *shm = NULL;
  struct shared *s = NULL;
  corio_future *out[NJOBS];
  corio_bytes in[NJOBS];
  uint8_t k[NJOBS];
  int i, rc, bad = 0;

  rc = corio_shm_new(&shm, 4096);
  if (rc == 0) {
    s = corio_shm_alloc(shm, sizeof(*s), 64);
    rc = s ? corio_shm_mutex_init(&s->counter_lock) : -ENOMEM;
  }
  if (rc == 0) rc = corio_shm_mutex_init(&s->totals_lock);
  if (rc == 0) rc = corio_shm_sem_init(&s->gate, 2);
  shared = s;
  if (rc == 0) rc = corio_process_pool_new(&pool, &opts); /* after the region: inherited */
  if (rc < 0) {
    fprintf(stderr, "shared_counters: %s\n", corio_strerror(rc));
    corio_shm_free(shm);
    return 1;
  }

  /* pool.map(work, range(8)): k travels as one input byte */
  for (i = 0; i < NJOBS; i++) {
    k[i] = (uint8_t)i;
    in[i] = (corio_bytes){&k[i], 1};
  }
  rc = corio_executor_map(pool, work, in, NJOBS, 1, out);
  if (rc == 0) {
    rc = corio_futures_wait_all(out, NJOBS, 20);
    for (i = 0; i < NJOBS; i++) {
      if (rc == 0 && corio_future_error(out[i]) != 0) {
        fprintf(stderr, "job %d: %s\n", i, corio_future_error_message(out[i]));
        bad = 1;
      }
      corio_future_unref(out[i]);
    }
  }
  corio_executor_free(pool);
  if (rc < 0) fprintf(stderr, "shared_counters: %s\n", corio_strerror(rc));

  printf("counter (locked): %ld of %d\n", s->counter, NJOBS * N);
  printf("atomic counter: %ld of %d\n", atomic_load(&s->atomic), NJOBS * NFAST);
  printf("unlocked counter: %ld of %d (%ld updates lost to races)\n", s->unsafe, NJOBS * NFAST,
         (long)NJOBS * NFAST - s->unsafe);
  printf("totals: [%.1f, %.1f, %.1f, %.1f]\n", s->totals[0], s->totals[1], s->totals[2],
         s->totals[3]);
  printf("semaphore(2): at most %d jobs inside at once, %d inside now, value back to %d\n",
         atomic_load(&s->max_inside), atomic_load(&s->inside), corio_shm_sem_value(&s->gate));
  corio_shm_sem_destroy(&s->gate);
  corio_shm_mutex_destroy(&s->counter_lock);
  corio_shm_mutex_destroy(&s->totals_lock);
  corio_shm_free(shm);
  return bad || rc < 0;
}
