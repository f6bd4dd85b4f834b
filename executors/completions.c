/*
 * A completion queue: futures come out in the order they finish, to any thread (Python's
 * Pool.imap_unordered / concurrent.futures.as_completed for threads without a loop).
 *
 * Each added future gets a done callback that appends it to the queue under a mutex and signals
 * a condition variable; corio_completions_next() takes the oldest. The queue is reference
 * counted (the user, and each callback not yet run) so that freeing it while futures are still
 * pending is safe: their callbacks then only drop their references.
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include "executor_impl.h"

struct corio_completions {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  corio_future **done; /* finished, not yet taken: a ring */
  size_t head, len, cap;
  size_t pending; /* added, not yet finished */
  size_t refs;    /* the user (until free) + one per pending callback */
  bool freed;
};

static void release(corio_completions *c)
{
  size_t i;
  if (--c->refs) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  pthread_mutex_unlock(&c->mu);
  for (i = 0; i < c->len; i++) corio_future_unref(c->done[(c->head + i) % c->cap]);
  corio__free(c->done);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  corio__free(c);
}

int corio_completions_new(corio_completions **out)
{
  corio_completions *c;
  if (!out) return -EINVAL;
  c = corio__calloc(1, sizeof(*c));
  if (!c) return -ENOMEM;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  c->refs = 1;
  *out = c;
  return 0;
}

static void on_done(corio_future *f, void *arg)
{
  corio_completions *c = arg;
  pthread_mutex_lock(&c->mu);
  c->pending--;
  if (c->freed) {
    corio_future_unref(f);
  } else {
    /* room was reserved by add: never fails here */
    c->done[(c->head + c->len) % c->cap] = f;
    c->len++;
    pthread_cond_broadcast(&c->cv);
  }
  release(c); /* unlocks */
}

int corio_completions_add(corio_completions *c, corio_future *f)
{
  int rc;
  if (!c || !f) {
    if (f) corio_future_unref(f);
    return -EINVAL;
  }
  pthread_mutex_lock(&c->mu);
  if (c->len + c->pending == c->cap) { /* reserve a slot for every future in flight */
    size_t ncap = c->cap ? c->cap * 2 : 16, i;
    corio_future **n = corio__malloc(ncap * sizeof(*n));
    if (!n) {
      pthread_mutex_unlock(&c->mu);
      corio_future_unref(f);
      return -ENOMEM;
    }
    for (i = 0; i < c->len; i++) n[i] = c->done[(c->head + i) % c->cap];
    corio__free(c->done);
    c->done = n;
    c->head = 0;
    c->cap = ncap;
  }
  c->pending++;
  c->refs++;
  pthread_mutex_unlock(&c->mu);
  /* May run on_done at once (a finished future), in this thread. */
  rc = corio_future_add_done_callback(f, on_done, c);
  if (rc < 0) {
    pthread_mutex_lock(&c->mu);
    c->pending--;
    c->refs--; /* the user's reference is still held: never the last */
    pthread_mutex_unlock(&c->mu);
    corio_future_unref(f);
    return rc;
  }
  return 0;
}

size_t corio_completions_pending(corio_completions *c)
{
  size_t n;
  if (!c) return 0;
  pthread_mutex_lock(&c->mu);
  n = c->len + c->pending;
  pthread_mutex_unlock(&c->mu);
  return n;
}

int corio_completions_next(corio_completions *c, double timeout_s, corio_future **out)
{
  struct timespec ts;
  int rc = 0;
  if (!c || !out) return -EINVAL;
  *out = NULL;
  if (timeout_s > 0) {
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)timeout_s;
    ts.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&c->mu);
  while (!c->len) {
    if (!c->pending) {
      rc = -ENOENT;
      break;
    }
    if (timeout_s == 0) {
      rc = -ETIMEDOUT;
      break;
    }
    if (timeout_s < 0) {
      pthread_cond_wait(&c->cv, &c->mu);
    } else if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT && !c->len) {
      rc = -ETIMEDOUT;
      break;
    }
  }
  if (c->len) {
    *out = c->done[c->head];
    c->head = (c->head + 1) % c->cap;
    c->len--;
    rc = 0;
  }
  pthread_mutex_unlock(&c->mu);
  return rc;
}

void corio_completions_free(corio_completions *c)
{
  if (!c) return;
  pthread_mutex_lock(&c->mu);
  c->freed = true;
  release(c); /* unlocks; the futures still pending drop theirs as they finish */
}
