/*
 * handmade_pool — Port of a Python seed program (issue 4): a thread pool written by hand
 * (threads, a queue, a condition variable; apply_async with a callback, close, terminate, join)
 * next to the same work done with corio's thread pool executor.
 *
 * Python (the hand-made pool, shortened):
 *
 *     class Pool:
 *         def __init__(self, n):
 *             self.q, self.cv, self.closed, self.dropped = deque(), threading.Condition(), False, 0
 *             self.threads = [threading.Thread(target=self._work) for _ in range(n)]
 *         def apply_async(self, fn, arg, callback): ...   # append, cv.notify()
 *         def close(self): ...       # no new work; the workers finish the queue and exit
 *         def terminate(self): ...   # drop the queue; the workers exit after their current item
 *         def join(self): ...
 *
 *     pool = Pool(4)
 *     for n in range(20): pool.apply_async(square, n, callback=collect)
 *     pool.close(); pool.join()
 *
 * and with concurrent.futures: ex.submit(square, n).add_done_callback(collect);
 * ex.shutdown(wait=True) for close + join; ex.shutdown(cancel_futures=True) for terminate.
 *
 * Like Python's threads, neither pool can stop a job that is running: "terminate" drops the
 * jobs still queued and lets the running ones finish (the gate below holds the first two jobs
 * running, so exactly two run and the rest are dropped, every time).
 *
 * Plain threads, so plain pthread locks: corio's sync primitives are for tasks on a loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

#define NJOBS    20
#define NWORKERS 4
#define NGATED   10

/* ---- results, collected by the callbacks of both pools ---- */
struct results {
  pthread_mutex_t mu;
  long value[NJOBS];
  int callbacks, ran, dropped;
};

static struct results res = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void results_reset(void)
{
  pthread_mutex_lock(&res.mu);
  memset(res.value, 0, sizeof(res.value));
  res.callbacks = res.ran = res.dropped = 0;
  pthread_mutex_unlock(&res.mu);
}

static void collect(int n, long value)
{
  pthread_mutex_lock(&res.mu);
  res.value[n] = value;
  res.callbacks++;
  pthread_mutex_unlock(&res.mu);
}

static long results_sum(void)
{
  long s = 0;
  int i;
  for (i = 0; i < NJOBS; i++) s += res.value[i];
  return s;
}

/* ---- the gate: holds gated jobs running until the pool was terminated ---- */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_started, gate_open;

static void gate_pass(void)
{
  pthread_mutex_lock(&gate_mu);
  gate_started++;
  pthread_cond_broadcast(&gate_cv);
  while (!gate_open) pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
}

static void gate_wait_started(int n)
{
  pthread_mutex_lock(&gate_mu);
  while (gate_started < n) pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
}

static void gate_set(int open)
{
  pthread_mutex_lock(&gate_mu);
  gate_open = open;
  gate_started = 0;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

/* The work: def square(n) */
static long square(int n)
{
  return (long)n * n;
}

/* ===================== the hand-made pool ===================== */
typedef long (*hp_fn)(int arg);
typedef void (*hp_callback)(int arg, long result);

struct hp_item {
  struct hp_item *next;
  hp_fn fn;
  int arg;
  hp_callback callback;
};

struct hp_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* "the queue changed or the pool is closing" */
  struct hp_item *head, *tail;
  int closed, terminated, dropped;
  int nthreads;
  pthread_t th[NWORKERS];
};

static void *hp_worker(void *arg)
{
  struct hp_pool *p = arg;
  struct hp_item *it;
  long value;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->head && !p->closed) pthread_cond_wait(&p->cv, &p->mu);
    it = p->terminated ? NULL : p->head;
    if (!it) { /* closed and drained, or terminated */
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    p->head = it->next;
    if (!p->head) p->tail = NULL;
    pthread_mutex_unlock(&p->mu);
    value = it->fn(it->arg);
    if (it->callback) it->callback(it->arg, value); /* in the worker, as Python's Pool */
    free(it);
  }
}

static int hp_init(struct hp_pool *p, int n)
{
  int rc;
  memset(p, 0, sizeof(*p));
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  for (p->nthreads = 0; p->nthreads < n; p->nthreads++) {
    rc = pthread_create(&p->th[p->nthreads], NULL, hp_worker, p);
    if (rc) return -rc;
  }
  return 0;
}

static int hp_apply_async(struct hp_pool *p, hp_fn fn, int arg, hp_callback callback)
{
  struct hp_item *it = malloc(sizeof(*it));
  if (!it) return -ENOMEM;
  it->next = NULL;
  it->fn = fn;
  it->arg = arg;
  it->callback = callback;
  pthread_mutex_lock(&p->mu);
  if (p->closed) {
    pthread_mutex_unlock(&p->mu);
    free(it);
    return CORIO_E_CLOSED;
  }
  if (p->tail)
    p->tail->next = it;
  else
    p->head = it;
  p->tail = it;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return 0;
}

static void hp_close(struct hp_pool *p)
{
  pthread_mutex_lock(&p->mu);
  p->closed = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void hp_terminate(struct hp_pool *p)
{
  struct hp_item *it;
  pthread_mutex_lock(&p->mu);
  p->closed = p->terminated = 1;
  while ((it = p->head)) {
    p->head = it->next;
    p->dropped++;
    free(it);
  }
  p->tail = NULL;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

static void hp_join(struct hp_pool *p)
{
  int i;
  for (i = 0; i < p->nthreads; i++) pthread_join(p->th[i], NULL);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
}

/* The gated job and its callback, for the hand-made pool. */
static long hp_gated(int n)
{
  (void)n;
  gate_pass();
  return 1;
}

static void count_ran(int n, long result)
{
  (void)n;
  pthread_mutex_lock(&res.mu);
  res.ran += (int)result;
  pthread_mutex_unlock(&res.mu);
}

static int handmade(long *values)
{
  struct hp_pool p;
  int i, rc;

  results_reset();
  rc = hp_init(&p, NWORKERS);
  for (i = 0; rc == 0 && i < NJOBS; i++) rc = hp_apply_async(&p, square, i, collect);
  hp_close(&p);
  hp_join(&p);
  if (rc < 0) return rc;
  printf("hand-made pool, close + join: %d callbacks, sum of squares %ld\n", res.callbacks,
         results_sum());
  memcpy(values, res.value, sizeof(res.value));

  /* terminate: two workers held in their first job, eight more jobs queued behind them */
  results_reset();
  gate_set(0);
  rc = hp_init(&p, 2);
  for (i = 0; rc == 0 && i < NGATED; i++) rc = hp_apply_async(&p, hp_gated, i, count_ran);
  if (rc == 0) gate_wait_started(2);
  hp_terminate(&p);
  gate_set(1);
  hp_join(&p);
  if (rc < 0) return rc;
  printf("hand-made pool, terminate: %d ran, %d dropped\n", res.ran, p.dropped);
  return 0;
}

/* ===================== the same with corio's thread pool ===================== */
static void square_job(corio_job *job)
{
  corio_job_return(job, square((int)(intptr_t)corio_job_arg(job)));
}

static void gated_job(corio_job *job)
{
  gate_pass();
  corio_job_return(job, 1);
}

/* Done callbacks of a pool's future run in the worker that finished it, or in the thread that
 * cancelled it: they take the results lock, as the hand-made callbacks do. */
static void on_square_done(corio_future *f, void *arg)
{
  if (corio_future_error(f) == 0) collect((int)(intptr_t)arg, (long)corio_future_int(f));
}

static void on_gated_done(corio_future *f, void *arg)
{
  (void)arg;
  pthread_mutex_lock(&res.mu);
  if (corio_future_cancelled(f))
    res.dropped++;
  else if (corio_future_error(f) == 0)
    res.ran++;
  pthread_mutex_unlock(&res.mu);
}

static int submit_with_callback(corio_executor *ex, corio_job_fn fn, int n, corio_future_cb cb)
{
  corio_future *f = corio_executor_submit(ex, fn, (void *)(intptr_t)n);
  int rc;
  if (!f) return -ENOMEM;
  rc = corio_future_add_done_callback(f, cb, (void *)(intptr_t)n);
  corio_future_unref(f); /* fire and forget: the callback reports */
  return rc;
}

static int with_corio(long *values)
{
  corio_thread_pool_opts opts = {.max_workers = NWORKERS};
  corio_executor *ex;
  int i, rc;

  results_reset();
  rc = corio_thread_pool_new(&ex, &opts);
  if (rc < 0) return rc;
  for (i = 0; rc == 0 && i < NJOBS; i++)
    rc = submit_with_callback(ex, square_job, i, on_square_done);
  corio_executor_shutdown(ex, 1, 0, -1); /* shutdown(wait=True): close + join */
  corio_executor_free(ex);
  if (rc < 0) return rc;
  printf("corio pool, shutdown(wait): %d callbacks, sum of squares %ld\n", res.callbacks,
         results_sum());
  memcpy(values, res.value, sizeof(res.value));

  results_reset();
  gate_set(0);
  opts.max_workers = 2;
  rc = corio_thread_pool_new(&ex, &opts);
  if (rc < 0) return rc;
  for (i = 0; rc == 0 && i < NGATED; i++)
    rc = submit_with_callback(ex, gated_job, i, on_gated_done);
  if (rc == 0) gate_wait_started(2);
  corio_executor_shutdown(ex, 0, 1, 0); /* shutdown(cancel_futures=True): "terminate" */
  gate_set(1);
  corio_executor_free(ex); /* waits for the two running jobs */
  if (rc < 0) return rc;
  printf("corio pool, shutdown(cancel_futures): %d ran, %d cancelled\n", res.ran, res.dropped);
  return 0;
}

int main(void)
{
  long expect = 0, hand[NJOBS] = {0}, pool[NJOBS] = {0};
  int i, rc, same = 1;

  rc = handmade(hand);
  if (rc == 0) rc = with_corio(pool);
  if (rc < 0) {
    fprintf(stderr, "handmade_pool: %s\n", corio_strerror(rc));
    return 1;
  }
  for (i = 0; i < NJOBS; i++) {
    expect += square(i);
    if (hand[i] != square(i) || pool[i] != square(i)) same = 0;
  }
  printf("expected sum of squares %ld; both pools gave n*n for every n: %s\n", expect,
         same ? "yes" : "NO");
  return !same;
}
