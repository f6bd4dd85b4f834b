/*
 * The thread pool: concurrent.futures.ThreadPoolExecutor for C.
 *
 * One mutex guards a FIFO of jobs (intrusive: the list link is in the job, so queueing allocates
 * nothing) and the worker counts; idle workers sleep on one condition variable. Who picks up a
 * new job, cheapest first: the worker polling the queue after its last job (see worker_main), a
 * worker that just finished a job and is about to look at the queue (nreturning), a sleeper not
 * yet signalled, else a new worker while fewer than max_workers exist (Python's rule: a busy
 * worker does not stop a new one from starting). Workers busy in a job get no signal: each
 * drains the queue before it sleeps, so a burst costs no wakeup per job. Signals are sent after
 * the lock is released. Workers live until shutdown.
 *
 * Rejected: a lock-free MPMC queue. Its win is the uncontended lock (tens of nanoseconds) while
 * a job's real costs are the wakeups and the completion; and cancelling a pending job (take it
 * out of the middle of the queue) and shutdown's accounting want the lock anyway.
 *
 * Completion is corio__job_finish() in the worker: a loop-less future wakes its waiters and runs
 * its callbacks there; a job of a loop's future is handed to the loop through its MPSC inbox,
 * which writes the eventfd only when the loop sleeps, so many completions cost one wakeup.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include "executor_impl.h"

/* How long one worker polls the queue before sleeping (see worker_main). */
#ifndef SPIN_NS
#define SPIN_NS 20000
#endif

/* job->qstate, under the pool's lock */
enum { Q_NEW = 0, Q_QUEUED, Q_TAKEN };

typedef struct thread_pool thread_pool;

struct worker {
  pthread_t th;
  thread_pool *pool;
  unsigned index;
};

struct thread_pool {
  corio_executor base;
  pthread_mutex_t mu;
  pthread_cond_t work;    /* idle workers sleep here */
  pthread_cond_t exited;  /* shutdown sleeps here until the last worker leaves */
  corio__list queue;      /* pending jobs, oldest first */
  _Atomic size_t nqueued; /* changed under the lock; read without it by the spinning worker */
  unsigned max_workers;
  unsigned nthreads; /* started; also the next worker's index */
  unsigned nalive;   /* started and not yet left worker_main */
  unsigned njoined;  /* workers[0..njoined) are joined */
  unsigned nwaiting; /* asleep on `work` */
  unsigned nwakes;   /* signals sent to sleepers and not yet consumed */
  /* Workers between the end of a job and retaking the lock: each will look at the queue before
   * it sleeps, so a submit may count on it instead of waking or starting another (nclaimed of
   * them are counted on already). Incremented without the lock, before the job's completion
   * wakes its waiter: a thread that submits again right after its wait returns sees the worker
   * as available, and a submit/wait ping-pong runs on one worker with no wakeup per job.
   * Relaxed is enough: the completion's release store of the future's state orders it. */
  _Atomic unsigned nreturning;
  unsigned nclaimed;
  bool spinning;   /* one worker polls the queue before it sleeps, see worker_main */
  int64_t spin_ns; /* how long: SPIN_NS, 0 on a single CPU (the spinner would only delay
                      the thread it waits for) */
  bool stopping;
  struct worker *workers; /* max_workers slots, so a worker's pointer to its slot is stable */
  void (*initializer)(void *arg);
  void *initarg;
  char prefix[16];
};

/* The pool whose worker this thread is: shutdown(wait) from a job of the pool would wait for
 * itself. */
static __thread thread_pool *current_pool;

static void *worker_main(void *arg);

/* ---- starting workers ---- */

/* With the lock held. Starting a thread under the lock costs its creation time (tens of us) at
 * most max_workers times in the pool's life, and keeps the counts and the index simple: the new
 * worker's first act is to take the lock. All signals are blocked in workers (the mask is
 * inherited from the creating thread, so there is no window): a process-directed signal must
 * reach the thread that expects it (a loop's signalfd needs it blocked everywhere), not a worker
 * whose default action would kill the process. */
static int spawn(thread_pool *p)
{
  struct worker *w = &p->workers[p->nthreads];
  sigset_t all, old;
  int rc;
  w->pool = p;
  w->index = p->nthreads;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&w->th, NULL, worker_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) return -rc;
  p->nthreads++;
  p->nalive++;
  return 0;
}

/* With the lock held: @p n new queue entries. Nothing to do while a worker spins on the queue
 * (see worker_main).
 * Else count on returning workers first, then on a sleeping worker for each entry left while
 * there are sleepers not yet signalled (*signals: how many to wake once the lock is released),
 * then start workers for the rest, up to max_workers. Workers busy in a job get no signal: they
 * look at the queue before sleeping; but, as in Python, they do not stop a new worker from
 * starting. */
static int wake_or_spawn(thread_pool *p, size_t n, unsigned *signals)
{
  unsigned returning = atomic_load_explicit(&p->nreturning, memory_order_relaxed);
  int rc;
  *signals = 0;
  if (p->spinning) return 0; /* it takes the first entry and calls help for the rest */
  while (n && returning > p->nclaimed) {
    p->nclaimed++;
    n--;
  }
  while (n && p->nwaiting > p->nwakes) {
    p->nwakes++;
    ++*signals;
    n--;
  }
  while (n && p->nthreads < p->max_workers) {
    rc = spawn(p);
    if (rc < 0) return rc;
    n--;
  }
  return 0;
}

/* With the lock held: move every queued job to @p out. */
static void take_queue(thread_pool *p, corio__list *out)
{
  corio__list *n;
  corio__list_foreach(n, &p->queue) corio_container_of(n, corio_job, node)->qstate = Q_TAKEN;
  if (!corio__list_empty(&p->queue)) {
    out->next = p->queue.next;
    out->prev = p->queue.prev;
    out->next->prev = out;
    out->prev->next = out;
    corio__list_init(&p->queue);
  }
  atomic_store_explicit(&p->nqueued, 0, memory_order_relaxed);
}

static corio_job *list_pop(corio__list *l)
{
  corio__list *n = l->next;
  if (n == l) return NULL;
  corio__list_remove(n);
  return corio_container_of(n, corio_job, node);
}

/* Without the lock: complete every job of @p l with @p err (CANCELLED if err is 0). */
static void fail_list(corio__list *l, int err)
{
  corio_job *job;
  while ((job = list_pop(l))) {
    if (err)
      corio__job_finish_error(job, err, NULL);
    else
      corio__job_finish_cancelled(job);
  }
}

/* Starting a worker failed: if the pool has none at all, nobody would ever run the queue, so
 * its jobs fail with the error (EAGAIN: the thread limit). With workers alive, they catch up. */
static void spawn_failed(thread_pool *p, corio__list *out)
{
  corio__list_init(out);
  if (p->nthreads == 0) take_queue(p, out);
}

/* Queue the jobs of @p jobs (n jobs making @p entries queue entries), with the lock held on
 * entry and released on return. The signals go after the unlock: a worker woken while we still
 * hold the lock would only block again on it (two more futex calls per job, measured). Nothing is
 * lost by signalling late: the sleepers counted in nwaiting are already inside cond_wait, which
 * released the lock atomically. */
static int enqueue_unlock(thread_pool *p, corio__list *jobs, size_t n, size_t entries)
{
  corio__list dead;
  unsigned signals;
  int rc;
  if (p->stopping) {
    pthread_mutex_unlock(&p->mu);
    return CORIO_E_CLOSED;
  }
  /* splice the whole list at the tail */
  jobs->next->prev = p->queue.prev;
  p->queue.prev->next = jobs->next;
  jobs->prev->next = &p->queue;
  p->queue.prev = jobs->prev;
  corio__list_init(jobs);
  atomic_fetch_add_explicit(&p->nqueued, n, memory_order_relaxed);
  rc = wake_or_spawn(p, entries, &signals);
  if (rc < 0) {
    spawn_failed(p, &dead);
    pthread_mutex_unlock(&p->mu);
    fail_list(&dead, rc);
  } else {
    pthread_mutex_unlock(&p->mu);
  }
  while (signals--) pthread_cond_signal(&p->work);
  return 0;
}

/* ---- the worker ---- */

/* With the lock held: take the first queue entry, a job or a map chunk (consecutive jobs with the
 * same nonzero chunk id), into @p batch. */
static void take_entry(thread_pool *p, corio__list *batch)
{
  corio_job *job = list_pop(&p->queue), *next;
  uint32_t chunk = job->chunk;
  corio__list_init(batch);
  job->qstate = Q_TAKEN;
  corio__list_insert_tail(batch, &job->node);
  atomic_fetch_sub_explicit(&p->nqueued, 1, memory_order_relaxed);
  while (chunk && !corio__list_empty(&p->queue)) {
    next = corio_container_of(p->queue.next, corio_job, node);
    if (next->chunk != chunk) break;
    list_pop(&p->queue);
    next->qstate = Q_TAKEN;
    corio__list_insert_tail(batch, &next->node);
    atomic_fetch_sub_explicit(&p->nqueued, 1, memory_order_relaxed);
  }
}

static void set_name(thread_pool *p, unsigned index)
{
  char name[16], suffix[12];
  int slen = snprintf(suffix, sizeof(suffix), "_%u", index);
  /* 15 characters is the kernel's limit: the prefix gives way to the index */
  snprintf(name, sizeof(name), "%.*s%s", (int)(sizeof(name) - 1) - slen, p->prefix, suffix);
  pthread_setname_np(pthread_self(), name);
}

/* Wait without sleeping for a job to be queued, for at most SPIN_NS. Reads the count without the
 * lock; the caller takes the lock and looks for itself. */
static void spin_for_work(thread_pool *p)
{
  int64_t deadline = corio__now_ns() + p->spin_ns;
  unsigned i;
  for (i = 1;; i++) {
    if (atomic_load_explicit(&p->nqueued, memory_order_relaxed)) return;
    __builtin_ia32_pause();
    if (i % 64 == 0 && corio__now_ns() >= deadline) return;
  }
}

/* With the lock held: a worker counted in nreturning has looked at the queue. */
static void looked(thread_pool *p)
{
  atomic_fetch_sub_explicit(&p->nreturning, 1, memory_order_relaxed);
  if (p->nclaimed) p->nclaimed--;
}

/*
 * A worker: take a queue entry, run it without the lock, repeat; sleep when the queue is empty.
 *
 * Before sleeping after a job, one worker at a time polls the queue for SPIN_NS; meanwhile
 * submits signal nobody (the spinner takes the first entry and, finding more, wakes one sleeper
 * or starts a worker, who does the same: a chain). The reason is the cost of a sleep: a futex
 * wait, then a futex wake and a context switch paid by the submitter, several microseconds on a
 * VM. Without it a producer slower than the workers (each submit also allocates the job) wakes a
 * worker for nearly every job, and each woken worker finds one job and sleeps again (measured:
 * 1.5 context switches per job with 6 workers on 2 CPUs). With it, a stream of jobs keeps one
 * worker awake and the others asleep, and a submit/wait ping-pong never sleeps on the worker's
 * side. Measured on 2 CPUs (medians of 8 alternating runs, empty jobs, default workers): 1,000
 * jobs in flight through a loop 2.2 M/s with the spinner against 0.65 M/s without; idle-pool
 * round trip from a thread 4.9 us against 22 us. The cost is at most SPIN_NS of one CPU each
 * time the pool goes idle; a single spinner leaves the other CPUs to the producers. The count is
 * read relaxed: the spinner only decides when to take the lock, under which it looks again.
 */
static void *worker_main(void *arg)
{
  struct worker *w = arg;
  thread_pool *p = w->pool;
  corio__list batch;
  corio_job *job;
  bool ran = false, wake;

  current_pool = p;
  set_name(p, w->index);
  if (p->initializer) p->initializer(p->initarg);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    if (ran && p->spin_ns && corio__list_empty(&p->queue) && !p->stopping && !p->spinning) {
      p->spinning = true;
      atomic_fetch_add_explicit(&p->nreturning, 1, memory_order_relaxed);
      pthread_mutex_unlock(&p->mu);
      spin_for_work(p);
      pthread_mutex_lock(&p->mu);
      p->spinning = false;
      looked(p);
    }
    ran = false;
    while (corio__list_empty(&p->queue)) {
      if (p->stopping) goto out;
      p->nwaiting++;
      pthread_cond_wait(&p->work, &p->mu);
      p->nwaiting--;
      if (p->nwakes) p->nwakes--; /* a spurious wakeup may consume another's: harmless */
    }
    take_entry(p, &batch);
    /* More work left and nobody on the lookout: wake one more sleeper (or start a worker), who
     * will do the same. Help for a burst ramps up one wakeup at a time, paid by the workers. */
    wake = false;
    if (!corio__list_empty(&p->queue) && !p->spinning) {
      if (p->nwaiting > p->nwakes) {
        p->nwakes++;
        wake = true;
      } else if (p->nthreads < p->max_workers) {
        spawn(p); /* on failure the workers alive carry on */
      }
    }
    pthread_mutex_unlock(&p->mu);
    if (wake) pthread_cond_signal(&p->work);
    while ((job = list_pop(&batch))) {
      job->worker = (int)w->index;
      job->fn(job);
      if (corio__list_empty(&batch))
        atomic_fetch_add_explicit(&p->nreturning, 1, memory_order_relaxed);
      corio__job_finish(job); /* frees the job */
    }
    ran = true;
    pthread_mutex_lock(&p->mu);
    looked(p);
  }
out:
  if (--p->nalive == 0) pthread_cond_broadcast(&p->exited);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* ---- vtable ---- */

static int tp_submit(corio_executor *ex, corio_job *job)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  corio__list one;
  corio__list_init(&one);
  job->qstate = Q_QUEUED;
  corio__list_insert_tail(&one, &job->node);
  pthread_mutex_lock(&p->mu);
  if (enqueue_unlock(p, &one, 1, 1) < 0) {
    corio__list_remove(&job->node); /* the caller fails it */
    return CORIO_E_CLOSED;
  }
  return 0;
}

static int tp_submit_list(corio_executor *ex, corio__list *jobs, size_t n)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  corio__list *node;
  corio_job *job;
  uint32_t prev = 0;
  size_t entries = 0;
  if (corio__list_empty(jobs)) return 0;
  corio__list_foreach(node, jobs)
  {
    job = corio_container_of(node, corio_job, node);
    if (!job->chunk || job->chunk != prev) entries++;
    prev = job->chunk;
    job->qstate = Q_QUEUED;
  }
  pthread_mutex_lock(&p->mu);
  if (enqueue_unlock(p, jobs, n, entries) < 0) {
    fail_list(jobs, CORIO_E_CLOSED);
    return CORIO_E_CLOSED;
  }
  return 0;
}

static int tp_cancel(corio_executor *ex, corio_job *job)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  pthread_mutex_lock(&p->mu);
  if (job->qstate != Q_QUEUED) {
    pthread_mutex_unlock(&p->mu);
    return 0; /* running (job->cancelled tells it), or finished */
  }
  corio__list_remove(&job->node);
  job->qstate = Q_TAKEN;
  atomic_fetch_sub_explicit(&p->nqueued, 1, memory_order_relaxed);
  pthread_mutex_unlock(&p->mu);
  corio__job_finish_cancelled(job);
  return 1;
}

/* With the lock held, once no worker is alive: reap the threads (they have left worker_main, so
 * pthread_join returns at once) so that none outlives the pool. */
static void join_exited(thread_pool *p)
{
  while (p->njoined < p->nthreads) pthread_join(p->workers[p->njoined++].th, NULL);
}

static int tp_shutdown(corio_executor *ex, int wait, int cancel_futures, double timeout_s)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  corio__list dead;
  struct timespec ts;
  int64_t deadline;
  int rc = 0;

  corio__list_init(&dead);
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  if (cancel_futures) take_queue(p, &dead);
  if (p->nwaiting) {
    p->nwakes = p->nwaiting;
    pthread_cond_broadcast(&p->work);
  }
  pthread_mutex_unlock(&p->mu);
  /* Outside the lock: completing a future runs its (loop-less) callbacks here. */
  fail_list(&dead, 0);
  if (!wait) return 0;
  if (current_pool == p) return -EDEADLK; /* a job of this pool would wait for itself */

  pthread_mutex_lock(&p->mu);
  if (timeout_s >= 0) {
    deadline = corio__now_ns() + corio__seconds_to_ns(timeout_s);
    ts.tv_sec = deadline / 1000000000;
    ts.tv_nsec = deadline % 1000000000;
  }
  while (p->nalive) {
    if (timeout_s < 0) {
      pthread_cond_wait(&p->exited, &p->mu);
    } else if (pthread_cond_timedwait(&p->exited, &p->mu, &ts) == ETIMEDOUT && p->nalive) {
      rc = -ETIMEDOUT; /* still valid: a later shutdown or free waits again */
      break;
    }
  }
  if (!p->nalive) join_exited(p);
  pthread_mutex_unlock(&p->mu);
  return rc;
}

static void tp_destroy(corio_executor *ex)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  if (current_pool == p) {
    /* Freeing the pool under its own running worker would be a use after free: leak it. */
    fprintf(stderr, "corio: corio_executor_free called from a job of the same pool (leaked)\n");
    return;
  }
  pthread_mutex_lock(&p->mu);
  join_exited(p); /* corio_executor_free waited for nalive == 0 */
  pthread_mutex_unlock(&p->mu);
  pthread_cond_destroy(&p->work);
  pthread_cond_destroy(&p->exited);
  pthread_mutex_destroy(&p->mu);
  corio__free(p->workers);
  corio__free(p);
}

static const corio_executor_vt thread_pool_vt = {
    .name = "thread pool",
    .submit = tp_submit,
    .shutdown = tp_shutdown,
    .destroy = tp_destroy,
    .cancel = tp_cancel,
    .submit_list = tp_submit_list,
};

/* ---- creation ---- */

static long cpus(void)
{
  cpu_set_t set;
  long n = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? n : 1;
}

int corio_thread_pool_new(corio_executor **out, const corio_thread_pool_opts *opts)
{
  static const corio_thread_pool_opts defaults;
  thread_pool *p;
  pthread_condattr_t ca;
  pthread_mutexattr_t ma;
  long ncpu;
  const char *prefix;
  int rc;
  if (!out) return -EINVAL;
  if (!opts) opts = &defaults;
  p = corio__calloc(1, sizeof(*p));
  if (!p) return -ENOMEM;
  p->base.vt = &thread_pool_vt;
  atomic_init(&p->base.closed, 0);
  ncpu = cpus();
  p->max_workers = opts->max_workers ? opts->max_workers : ncpu + 4 < 32 ? (unsigned)ncpu + 4 : 32;
  p->spin_ns = ncpu > 1 ? SPIN_NS : 0;
  p->initializer = opts->initializer;
  p->initarg = opts->initarg;
  prefix = opts->thread_name_prefix ? opts->thread_name_prefix : "corio";
  snprintf(p->prefix, sizeof(p->prefix), "%s", prefix);
  corio__list_init(&p->queue);
  p->workers = corio__calloc(p->max_workers, sizeof(*p->workers));
  if (!p->workers) {
    corio__free(p);
    return -ENOMEM;
  }
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
  rc = -pthread_mutex_init(&p->mu, &ma);
  pthread_mutexattr_destroy(&ma);
  if (rc < 0) goto fail_mu;
  rc = -pthread_cond_init(&p->work, NULL);
  if (rc < 0) goto fail_work;
  /* shutdown's timeout is measured on the monotonic clock, like every corio timeout */
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  rc = -pthread_cond_init(&p->exited, &ca);
  pthread_condattr_destroy(&ca);
  if (rc < 0) goto fail_exited;
  *out = &p->base;
  return 0;
fail_exited:
  pthread_cond_destroy(&p->work);
fail_work:
  pthread_mutex_destroy(&p->mu);
fail_mu:
  corio__free(p->workers);
  corio__free(p);
  return rc;
}
