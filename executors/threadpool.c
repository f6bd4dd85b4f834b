/*
 * The thread pool: concurrent.futures.ThreadPoolExecutor for C.
 *
 * Submitting takes no lock. A job is pushed on a lock-free stack (`incoming`, one CAS); the
 * workers, under the pool mutex, move the whole stack at once (one exchange, reversed into FIFO
 * order) to the tail of the queue they take from. The mutex is thus shared only by workers,
 * cancel and shutdown, never by the submitting thread: a loop submitting a thousand jobs per
 * iteration no longer waits for a worker preempted while it holds the lock (on 2 CPUs with six
 * workers that convoy made 1,000 jobs in flight 8x slower than a single worker: 0.5 M/s against
 * 4.2 M/s). The rejected alternative, a lock-free MPMC queue for the workers too, cannot take a
 * pending job out of its middle (cancel), and shutdown's accounting wants the lock anyway.
 *
 * Who picks up a new job. `nlooking` counts the workers certain to look at the queue soon: a
 * worker finishing its last job, the spinner (see worker_main), a worker just woken or started.
 * A submitter that sees one (the common case in a stream of jobs) is done: no lock, no syscall.
 * Only when none is looking does it take the mutex, to wake a sleeper or, with none asleep,
 * start a worker while fewer than max_workers exist (Python's rule: a busy worker does not stop
 * a new one from starting). Workers busy in a job are not counted and get no signal: each looks
 * at the queue before sleeping. A worker that takes an entry and sees more work with nobody
 * looking wakes (or starts) one more, who does the same: help for a burst ramps up one wakeup
 * at a time, paid by the workers. With no sleeper left, it also starts at once a worker for
 * every queued job beyond those looking (spawn_for_queue). Workers live until shutdown.
 *
 * No lost job: the submitter pushes, then reads nlooking; a worker stops looking (decrements)
 * and then, before sleeping, checks `incoming`, all seq_cst. So either the worker sees the job,
 * or the submitter sees nlooking at 0 and takes the mutex, which the worker holds from its last
 * check until cond_wait releases it atomically, so the signal finds it waiting.
 *
 * Completion is corio__job_finish() in the worker: a loop-less future wakes its waiters and runs
 * its callbacks there; a job of a loop's future is handed to the loop through its MPSC inbox,
 * which writes the eventfd only when the loop sleeps, so many completions cost one wakeup.
 */
#include <assert.h>
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

/* job->qstate, under the pool's lock (Q_QUEUED is set by the submitter before the push: a job
 * on the incoming stack counts as queued, and whoever looks at it under the lock drains the
 * stack first) */
enum { Q_NEW = 0, Q_QUEUED, Q_TAKEN };

typedef struct thread_pool thread_pool;

struct worker {
  pthread_t th;
  thread_pool *pool;
  unsigned index;
};

struct thread_pool {
  corio_executor base;
  /* What submitters touch, apart from what workers lock (padding, not _Alignas: the pool comes
   * from corio__malloc, which promises 16-byte alignment only). */
  char pad0[64];
  corio_job *_Atomic incoming; /* pushed jobs, newest first (job->inext) */
  _Atomic unsigned nlooking;   /* workers that will look at the queue soon */
  _Atomic bool stopping;       /* set under the lock; read by submitters */
  _Atomic unsigned nthreads;   /* started (under the lock); the next index */
  _Atomic int spin_cpu; /* the CPU of the worker that polls before sleeping (see worker_main),
                           -1 once it went to sleep: read by a loop deciding whether to wait
                           for a completion without sleeping (corio__thread_pool_spin_cpu) */
  char pad1[64];
  pthread_mutex_t mu;
  pthread_cond_t work;   /* idle workers sleep here */
  pthread_cond_t exited; /* shutdown sleeps here until the last worker leaves */
  corio__list queue;     /* pending jobs, oldest first */
  size_t nqueued;        /* how many (drained from `incoming`, not yet taken) */
  unsigned max_workers;
  unsigned nalive;        /* started and not yet left worker_main */
  unsigned njoined;       /* workers[0..njoined) are joined */
  unsigned nwaiting;      /* asleep on `work` */
  unsigned nwakes;        /* signals sent to sleepers and not yet consumed */
  bool spinning;          /* one worker polls `incoming` before it sleeps, see worker_main */
  int64_t spin_ns;        /* how long: SPIN_NS, 0 on a single CPU (the spinner would only delay
                             the thread it waits for) */
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
 * worker's first act is to take the lock. It counts as looking until its first look. All
 * signals are blocked in workers (the mask is inherited from the creating thread, so there is no
 * window): a process-directed signal must reach the thread that expects it (a loop's signalfd
 * needs it blocked everywhere), not a worker whose default action would kill the process. */
static int spawn(thread_pool *p)
{
  unsigned idx = atomic_load_explicit(&p->nthreads, memory_order_relaxed);
  struct worker *w = &p->workers[idx];
  sigset_t all, old;
  int rc;
  w->pool = p;
  w->index = idx;
  atomic_fetch_add_explicit(&p->nlooking, 1, memory_order_seq_cst);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = pthread_create(&w->th, NULL, worker_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    atomic_fetch_sub_explicit(&p->nlooking, 1, memory_order_seq_cst);
    return -rc;
  }
  atomic_store_explicit(&p->nthreads, idx + 1, memory_order_relaxed);
  p->nalive++;
  return 0;
}

/* With the lock held: move the incoming stack to the queue's tail, oldest first. The stack holds
 * runs of jobs (one per push: a submit, or a whole submit_list), each already linked through
 * job->node by its submitter and marked queued, and linked to the next older run through its
 * first job's inext. So a drain touches two jobs per run, not every job: a loop's pass hands
 * over hundreds of jobs at once, and walking them here, one cache miss after the other under
 * the lock, was the workers' largest cost with 1,000 in flight. The acquire exchange pairs with
 * the submitters' release push: the jobs' fields are visible from here. */
static void drain_incoming(thread_pool *p)
{
  corio_job *j = atomic_exchange_explicit(&p->incoming, NULL, memory_order_seq_cst), *rev = NULL,
            *next, *last;
  while (j) { /* reverse the runs: the stack is newest first */
    next = j->inext;
    j->inext = rev;
    rev = j;
    j = next;
  }
  for (; rev; rev = rev->inext) { /* splice each run [rev .. rev->seg_last] at the tail */
    last = rev->seg_last;
    p->nqueued += rev->seg_len;
    rev->node.prev = p->queue.prev;
    p->queue.prev->next = &rev->node;
    last->node.next = &p->queue;
    p->queue.prev = &last->node;
  }
}

/* With the lock held: move every queued job to @p out. */
static void take_queue(thread_pool *p, corio__list *out)
{
  corio__list *n;
  drain_incoming(p);
  corio__list_foreach(n, &p->queue) corio_container_of(n, corio_job, node)->qstate = Q_TAKEN;
  if (!corio__list_empty(&p->queue)) {
    out->next = p->queue.next;
    out->prev = p->queue.prev;
    out->next->prev = out;
    out->prev->next = out;
    corio__list_init(&p->queue);
  }
  p->nqueued = 0;
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

/* With the lock held and nobody looking at the queue: wake a sleeper not yet signalled (it is
 * counted as looking from now; *signal: send the signal once the lock is released), else start
 * a worker while fewer than max_workers exist. If starting one fails while the pool has none at
 * all, nobody would ever run the queue: its jobs move to @p dead, to fail with the error
 * (EAGAIN: the thread limit). With workers alive, they catch up. */
static int wake_or_spawn(thread_pool *p, bool *signal, corio__list *dead)
{
  int rc = 0;
  if (p->nwaiting > p->nwakes) {
    p->nwakes++;
    atomic_fetch_add_explicit(&p->nlooking, 1, memory_order_seq_cst);
    *signal = true;
  } else if (atomic_load_explicit(&p->nthreads, memory_order_relaxed) < p->max_workers) {
    rc = spawn(p);
    if (rc < 0 && atomic_load_explicit(&p->nthreads, memory_order_relaxed) == 0)
      take_queue(p, dead);
  }
  return rc;
}

/* With the lock held, by a worker that just took an entry: Python's rule, a queued job that no
 * worker is coming for gets a worker of its own, started here at once rather than one by one
 * (each new worker starting the next when it takes its own job: on a loaded machine every step
 * of that chain waits for the scheduler, and the first workers, done with their jobs, took the
 * later ones while max_workers allowed a thread each: blocking jobs waited behind each other).
 * Only while no sleeper is left to wake (sleepers are woken one at a time, as above, by whoever
 * takes an entry with work left and nobody looking), and up to max_workers: starting a thread
 * happens at most max_workers times in the pool's life. Jobs still on the incoming stack are not
 * counted: whoever drains them does the same. */
static void spawn_for_queue(thread_pool *p)
{
  while (p->nwaiting <= p->nwakes &&
         atomic_load_explicit(&p->nthreads, memory_order_relaxed) < p->max_workers &&
         p->nqueued > atomic_load_explicit(&p->nlooking, memory_order_seq_cst))
    if (spawn(p) < 0) break; /* the workers alive carry on */
}

/* Push the run @p first .. @p last (linked through node, in queue order, each marked Q_QUEUED;
 * see drain_incoming) and see that someone runs it. */
static int push(thread_pool *p, corio_job *first, corio_job *last, size_t n)
{
  corio_job *head = atomic_load_explicit(&p->incoming, memory_order_relaxed);
  corio__list dead;
  bool signal = false;
  int rc;
  first->seg_last = last;
  first->seg_len = (uint32_t)n;
  do first->inext = head;
  while (!atomic_compare_exchange_weak_explicit(&p->incoming, &head, first, memory_order_seq_cst,
                                                memory_order_relaxed));
  /* seq_cst against the worker that stops looking and then checks `incoming` (see the top). */
  if (atomic_load_explicit(&p->nlooking, memory_order_seq_cst) &&
      !atomic_load_explicit(&p->stopping, memory_order_seq_cst))
    return 0;
  corio__list_init(&dead);
  pthread_mutex_lock(&p->mu);
  if (atomic_load_explicit(&p->stopping, memory_order_relaxed)) {
    /* Shutdown began: the workers alive drain the queue before they leave; with none left, the
     * jobs are ours to fail. */
    if (p->nalive == 0) take_queue(p, &dead);
    rc = CORIO_E_CLOSED;
  } else {
    rc = wake_or_spawn(p, &signal, &dead);
  }
  pthread_mutex_unlock(&p->mu);
  /* After the unlock: a worker woken while we still hold the lock would only block again on it
   * (two more futex calls per wakeup, measured). The sleeper counted in nwaiting is already
   * inside cond_wait, which released the lock atomically: nothing is lost by signalling late. */
  if (signal) pthread_cond_signal(&p->work);
  if (rc < 0) fail_list(&dead, rc);
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
  assert(p->nqueued > 0);
  p->nqueued--;
  while (chunk && !corio__list_empty(&p->queue)) {
    next = corio_container_of(p->queue.next, corio_job, node);
    if (next->chunk != chunk) break;
    list_pop(&p->queue);
    p->nqueued--;
    next->qstate = Q_TAKEN;
    corio__list_insert_tail(batch, &next->node);
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

/* Wait without sleeping for a job to be pushed, for at most spin_ns. Reads the stack head
 * without the lock; the caller takes the lock and looks for itself. */
static void spin_for_work(thread_pool *p)
{
  int64_t deadline = corio__now_ns() + p->spin_ns;
  unsigned i;
  for (i = 1;; i++) {
    if (atomic_load_explicit(&p->incoming, memory_order_relaxed)) return;
    __builtin_ia32_pause();
    if (i % 64 == 0 && corio__now_ns() >= deadline) return;
  }
}

static bool work_left(thread_pool *p)
{
  return !corio__list_empty(&p->queue) ||
         atomic_load_explicit(&p->incoming, memory_order_seq_cst) != NULL;
}

/*
 * A worker: take a queue entry, run it without the lock, repeat; sleep when there is no work.
 * The worker counts in nlooking from the moment it finishes its last job (before completing it:
 * a thread that submits again right after its wait returns sees the worker as coming, and a
 * submit/wait ping-pong runs on one worker with no wakeup per job) until it has taken an entry
 * or decided to sleep.
 *
 * Before sleeping after a job, one worker at a time polls `incoming` for SPIN_NS, still counted
 * as looking, so submits signal nobody meanwhile. The reason is the cost of a sleep: a futex
 * wait, then a futex wake and a context switch paid by the submitter, several microseconds on a
 * VM. Without it a producer slower than the workers wakes a worker for nearly every job, and
 * each woken worker finds one job and sleeps again (measured: 1.5 context switches per job with
 * 6 workers on 2 CPUs). With it, a stream of jobs keeps one worker awake and the others asleep,
 * and a submit/wait ping-pong never sleeps on the worker's side. Measured on 2 CPUs before the
 * lock-free submit (medians of 8 alternating runs, empty jobs, default workers): 1,000 jobs in
 * flight through a loop 2.2 M/s with the spinner against 0.65 M/s without; idle-pool round trip
 * from a thread 4.9 us against 22 us. The cost is at most SPIN_NS of one CPU each time the pool
 * goes idle; a single spinner leaves the other CPUs to the producers.
 */
static void *worker_main(void *arg)
{
  struct worker *w = arg;
  thread_pool *p = w->pool;
  corio__list batch, dead;
  corio_job *job;
  bool ran = false, signal, woken;

  current_pool = p;
  set_name(p, w->index);
  if (p->initializer) p->initializer(p->initarg);
  corio__list_init(&dead);
  pthread_mutex_lock(&p->mu);
  for (;;) {
    /* Here the worker counts in nlooking. */
    drain_incoming(p);
    if (corio__list_empty(&p->queue) && ran && p->spin_ns && !p->spinning &&
        !atomic_load_explicit(&p->stopping, memory_order_relaxed)) {
      p->spinning = true;
      pthread_mutex_unlock(&p->mu);
      atomic_store_explicit(&p->spin_cpu, sched_getcpu(), memory_order_relaxed);
      spin_for_work(p);
      pthread_mutex_lock(&p->mu);
      p->spinning = false;
      drain_incoming(p);
      if (corio__list_empty(&p->queue))
        atomic_store_explicit(&p->spin_cpu, -1, memory_order_relaxed);
    }
    ran = false;
    if (corio__list_empty(&p->queue)) {
      /* Stop looking, then check once more (the other half of the submitters' Dekker pairing);
       * the lock is held from here into cond_wait. */
      atomic_fetch_sub_explicit(&p->nlooking, 1, memory_order_seq_cst);
      woken = false;
      while (!work_left(p)) {
        if (atomic_load_explicit(&p->stopping, memory_order_relaxed)) goto out;
        p->nwaiting++;
        pthread_cond_wait(&p->work, &p->mu);
        p->nwaiting--;
        if (p->nwakes) { /* counted as looking by the waker (a spurious wakeup may take another
                            sleeper's signal: harmless, that one stays counted as asleep) */
          p->nwakes--;
          woken = true;
          break;
        }
      }
      if (!woken) atomic_fetch_add_explicit(&p->nlooking, 1, memory_order_seq_cst);
      continue;
    }
    take_entry(p, &batch);
    atomic_fetch_sub_explicit(&p->nlooking, 1, memory_order_seq_cst);
    /* More work left and nobody else looking: wake (or start) one more, who does the same.
     * `incoming` too, after our decrement (seq_cst): a job pushed since our drain by a
     * submitter who still saw us looking is ours to hand on, else it would wait behind the job
     * we are about to run (the Dekker pairing of the top comment, on this path as well). */
    signal = false;
    if (work_left(p) && !atomic_load_explicit(&p->nlooking, memory_order_seq_cst))
      wake_or_spawn(p, &signal, &dead); /* on failure the workers alive (we) carry on: dead
                                           stays empty while nthreads > 0 */
    spawn_for_queue(p);
    pthread_mutex_unlock(&p->mu);
    if (signal) pthread_cond_signal(&p->work);
    while ((job = list_pop(&batch))) {
      job->worker = (int)w->index;
      job->fn(job);
      if (corio__list_empty(&batch))
        atomic_fetch_add_explicit(&p->nlooking, 1, memory_order_seq_cst);
      corio__job_finish(job); /* frees the job */
    }
    ran = true;
    pthread_mutex_lock(&p->mu);
  }
out:
  if (--p->nalive == 0) pthread_cond_broadcast(&p->exited);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int corio__thread_pool_spin_cpu(corio_executor *ex)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  return atomic_load_explicit(&p->spin_cpu, memory_order_relaxed);
}

/* ---- vtable ---- */

static int tp_submit(corio_executor *ex, corio_job *job)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  job->qstate = Q_QUEUED;
  return push(p, job, job, 1);
}

static int tp_submit_list(corio_executor *ex, corio__list *jobs, size_t n)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  corio__list *node, *first, *last;
  if (corio__list_empty(jobs)) return 0;
  first = jobs->next;
  last = jobs->prev;
  corio__list_foreach(node, jobs) corio_container_of(node, corio_job, node)->qstate = Q_QUEUED;
  /* the list's links are the run's; its ends are overwritten by the splice */
  corio__list_init(jobs);
  return push(p, corio_container_of(first, corio_job, node),
              corio_container_of(last, corio_job, node), n);
}

static int tp_cancel(corio_executor *ex, corio_job *job)
{
  thread_pool *p = corio_container_of(ex, thread_pool, base);
  pthread_mutex_lock(&p->mu);
  drain_incoming(p); /* the job may still be on the stack */
  if (job->qstate != Q_QUEUED) {
    pthread_mutex_unlock(&p->mu);
    return 0; /* running (job->cancelled tells it), or finished */
  }
  corio__list_remove(&job->node);
  p->nqueued--;
  job->qstate = Q_TAKEN;
  pthread_mutex_unlock(&p->mu);
  corio__job_finish_cancelled(job);
  return 1;
}

/* With the lock held, once no worker is alive: reap the threads (they have left worker_main, so
 * pthread_join returns at once) so that none outlives the pool. */
static void join_exited(thread_pool *p)
{
  while (p->njoined < atomic_load_explicit(&p->nthreads, memory_order_relaxed))
    pthread_join(p->workers[p->njoined++].th, NULL);
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
  atomic_store_explicit(&p->stopping, true, memory_order_seq_cst);
  if (cancel_futures) take_queue(p, &dead);
  /* Sleepers wake without a wake token (nwakes): they see `stopping` and leave. */
  if (p->nwaiting) pthread_cond_broadcast(&p->work);
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
  if (!p->nalive) {
    join_exited(p);
    /* Pushed while the last workers left: nobody runs them any more (push fails its own, this
     * catches a job whose submitter saw a worker still looking). */
    take_queue(p, &dead);
  }
  pthread_mutex_unlock(&p->mu);
  fail_list(&dead, CORIO_E_CLOSED);
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
  atomic_init(&p->incoming, NULL);
  atomic_init(&p->spin_cpu, -1);
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
