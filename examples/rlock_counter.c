/*
 * rlock_counter — Port of a Python seed program (issue 4): a counter guarded by a recursive
 * lock, whose methods call each other while holding it, updated by several threads; and why a
 * plain lock cannot be taken twice by its owner.
 *
 * Python (threading):
 *
 *     class Counter:
 *         def __init__(self):
 *             self.lock = threading.RLock()
 *             self.value = 0
 *         def incr(self):
 *             with self.lock:
 *                 self.value += 1
 *         def incr_twice(self):
 *             with self.lock:          # held ...
 *                 self.incr()          # ... and taken again inside: fine for an RLock
 *                 self.incr()
 *
 *     threads = [threading.Thread(target=lambda: [c.incr_twice() for _ in range(N)])
 *                for _ in range(4)]
 *
 *     lock = threading.Lock(); lock.acquire()
 *     lock.acquire(blocking=False)     # False: a second acquire would block forever
 *
 * These are plain threads, so the locks are pthread mutexes: corio's lock (corio/sync.h) is for
 * tasks on one loop, not for threads. An RLock is a PTHREAD_MUTEX_RECURSIVE mutex. The plain
 * lock is shown without hanging: trylock answers EBUSY, and an error-checking mutex turns the
 * self-deadlock into EDEADLK.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <corio.h>

#define NTHREADS 4
#define ROUNDS   25000

/* class Counter */
struct counter {
  pthread_mutex_t lock; /* recursive */
  long value;
  int max_depth; /* how deep the owner has held it (written under the lock) */
  int depth;
};

static void counter_incr(struct counter *c)
{
  pthread_mutex_lock(&c->lock);
  c->depth++;
  if (c->depth > c->max_depth) c->max_depth = c->depth;
  c->value++;
  c->depth--;
  pthread_mutex_unlock(&c->lock);
}

static void counter_incr_twice(struct counter *c)
{
  pthread_mutex_lock(&c->lock);
  c->depth++;
  counter_incr(c); /* re-enters the lock this thread already holds */
  counter_incr(c);
  c->depth--;
  pthread_mutex_unlock(&c->lock);
}

static void *incrementer(void *arg)
{
  struct counter *c = arg;
  int i;
  for (i = 0; i < ROUNDS; i++) counter_incr_twice(c);
  return NULL;
}

static void *try_from_other_thread(void *arg)
{
  return (void *)(intptr_t)pthread_mutex_trylock(arg);
}

static const char *errname(int e)
{
  return e == 0 ? "0 (acquired)" : corio_err_name(-e);
}

int main(void)
{
  pthread_mutexattr_t attr;
  pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER, checked;
  struct counter c;
  pthread_t th[NTHREADS];
  void *other;
  int i, rc, bad = 0;

  /* 1. A plain lock, held, asked again by its owner. */
  pthread_mutex_lock(&plain);
  rc = pthread_mutex_trylock(&plain);
  printf("plain lock: trylock by its owner -> %s (a blocking acquire would hang)\n", errname(rc));
  bad |= rc != EBUSY;
  pthread_mutex_unlock(&plain);

  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&checked, &attr);
  pthread_mutex_lock(&checked);
  rc = pthread_mutex_lock(&checked);
  printf("error-checking lock: lock by its owner -> %s (the deadlock, reported)\n", errname(rc));
  bad |= rc != EDEADLK;
  pthread_mutex_unlock(&checked);
  pthread_mutex_destroy(&checked);

  /* 2. The recursive lock: its owner takes it again; another thread still cannot. */
  memset(&c, 0, sizeof(c));
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&c.lock, &attr);
  pthread_mutexattr_destroy(&attr);
  pthread_mutex_lock(&c.lock);
  rc = pthread_mutex_lock(&c.lock);
  printf("recursive lock: lock by its owner -> %s\n", errname(rc));
  bad |= rc != 0;
  pthread_create(&th[0], NULL, try_from_other_thread, &c.lock);
  pthread_join(th[0], &other);
  printf("recursive lock: trylock by another thread -> %s\n", errname((int)(intptr_t)other));
  bad |= (intptr_t)other != EBUSY;
  pthread_mutex_unlock(&c.lock);
  pthread_mutex_unlock(&c.lock); /* released as many times as taken */
  rc = pthread_mutex_unlock(&c.lock);
  printf("recursive lock: one unlock too many -> %s\n", errname(rc));
  bad |= rc != EPERM;

  /* 3. The counter, from NTHREADS threads. */
  for (i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, incrementer, &c);
  for (i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  printf("counter: %ld (expected %d threads x %d rounds x 2 = %d), lock held %d deep at most\n",
         c.value, NTHREADS, ROUNDS, NTHREADS * ROUNDS * 2, c.max_depth);
  bad |= c.value != (long)NTHREADS * ROUNDS * 2 || c.max_depth != 2;
  pthread_mutex_destroy(&c.lock);
  return bad;
}
