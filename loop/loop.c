/*
 * The event loop.
 *
 * One iteration, in this order:
 *   1. drain the cross-thread inbox, then run the callbacks that were ready when the iteration
 *      began (callbacks they schedule wait for the next turn, so a callback that reschedules
 *      itself cannot starve I/O);
 *   2. submit every queued SQE and wait in ONE io_uring_enter: io_uring_submit_and_wait_timeout
 *      with the nearest timer deadline (or forever), or io_uring_submit_and_get_events when
 *      callbacks are ready (timeout 0). With nothing to submit and nothing flagged by the kernel,
 *      the zero-timeout case makes no syscall at all;
 *   3. reap every CQE in one batch (io_uring_for_each_cqe + io_uring_cq_advance) and dispatch;
 *   4. move expired timers (deadline <= now, read after the wait) to the ready queue: a timer
 *      never fires early.
 *
 * Callbacks and timers are entries in one array addressed by index; handles are index plus
 * generation, so cancelling a handle that already ran is detected, not a dangling pointer. The
 * array and the free list make scheduling allocation-free in steady state.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "loop_impl.h"

#define NO_ENTRY UINT32_MAX

struct corio__watcher {
  corio_op op;
  int fd;
  short events;
  bool active, in_cb, internal;
  corio_fd_cb cb;
  void *arg;
};

static void wake_complete(corio_op *op, int res, unsigned flags);
static void sig_complete(corio_op *op, int res, unsigned flags);

/* ---------------- entries, ready queue, timers ---------------- */

static int ent_alloc(corio_loop *loop, uint32_t *out)
{
  uint32_t idx;
  if (loop->free_head != NO_ENTRY) {
    idx = loop->free_head;
    loop->free_head = loop->ents[idx].next_free;
  } else {
    if (loop->nents == loop->capents) {
      uint32_t ncap = loop->capents ? loop->capents * 2 : 256;
      corio__entry *ne;
      if (loop->capents >= UINT32_MAX / 2) return -ENOMEM;
      ne = corio__realloc(loop->ents, (size_t)ncap * sizeof(*ne));
      if (!ne) return -ENOMEM;
      loop->ents = ne;
      loop->capents = ncap;
    }
    idx = loop->nents++;
    loop->ents[idx].gen = 1;
  }
  *out = idx;
  return 0;
}

static void ent_release(corio_loop *loop, uint32_t idx)
{
  corio__entry *e = &loop->ents[idx];
  e->state = ENT_FREE;
  if (++e->gen == 0) e->gen = 1;
  e->next_free = loop->free_head;
  loop->free_head = idx;
}

static int rq_push(corio_loop *loop, uint32_t idx)
{
  if (corio__unlikely(loop->rq_len == loop->rq_cap)) {
    uint32_t ncap = loop->rq_cap ? loop->rq_cap * 2 : 256, wrapped;
    uint32_t *nq = corio__realloc(loop->rq, (size_t)ncap * sizeof(*nq));
    if (!nq) return -ENOMEM;
    /* the ring is full: its wrapped-around prefix [0, head) moves after the old end */
    wrapped = loop->rq_head;
    if (wrapped) memcpy(nq + loop->rq_cap, nq, (size_t)wrapped * sizeof(*nq));
    loop->rq = nq;
    loop->rq_cap = ncap;
  }
  loop->rq[(loop->rq_head + loop->rq_len) & (loop->rq_cap - 1)] = idx;
  loop->rq_len++;
  return 0;
}

static inline corio_handle make_handle(const corio_loop *loop, uint32_t idx)
{
  return ((uint64_t)loop->ents[idx].gen << 32) | (uint64_t)(idx + 1);
}

static int check_loop_thread(const corio_loop *loop)
{
  if (corio__unlikely(!corio__loop_on_thread(loop))) return CORIO_E_WRONG_THREAD;
  return 0;
}

int corio_call_soon(corio_loop *loop, corio_cb cb, void *arg, corio_handle *out)
{
  uint32_t idx;
  int rc;
  if (out) *out = 0;
  if (corio__unlikely(!loop || !cb)) return -EINVAL;
  rc = ent_alloc(loop, &idx);
  if (rc < 0) return rc;
  loop->ents[idx].cb = cb;
  loop->ents[idx].arg = arg;
  loop->ents[idx].state = ENT_READY;
  rc = rq_push(loop, idx);
  if (corio__unlikely(rc < 0)) {
    ent_release(loop, idx);
    return rc;
  }
  if (out) *out = make_handle(loop, idx);
  return 0;
}

int corio__loop_schedule(corio_loop *loop, corio_cb fn, void *arg)
{
  return corio_call_soon(loop, fn, arg, NULL);
}

static int call_at_ns(corio_loop *loop, int64_t when, corio_cb cb, void *arg, corio_handle *out)
{
  uint32_t idx;
  int rc;
  rc = ent_alloc(loop, &idx);
  if (rc < 0) return rc;
  loop->ents[idx].cb = cb;
  loop->ents[idx].arg = arg;
  loop->ents[idx].state = ENT_TIMER;
  rc = corio__heap_push(&loop->timers, when, loop->timer_seq++, idx);
  if (rc < 0) {
    ent_release(loop, idx);
    return rc;
  }
  loop->ntimers++;
  if (out) *out = make_handle(loop, idx);
  return 0;
}

int corio_call_later(corio_loop *loop, double delay_s, corio_cb cb, void *arg, corio_handle *out)
{
  if (out) *out = 0;
  if (!loop || !cb || !(delay_s >= 0)) return -EINVAL; /* negative or NaN */
  return call_at_ns(loop, corio__now_ns() + corio__seconds_to_ns(delay_s), cb, arg, out);
}

int corio_call_at(corio_loop *loop, double when_s, corio_cb cb, void *arg, corio_handle *out)
{
  int64_t when;
  if (out) *out = 0;
  if (!loop || !cb || !(when_s == when_s)) return -EINVAL;
  when = when_s <= 0 ? 0 : corio__seconds_to_ns(when_s);
  return call_at_ns(loop, when, cb, arg, out);
}

static bool keep_live_timer(void *ctx, uint32_t id)
{
  corio_loop *loop = ctx;
  if (loop->ents[id].state == ENT_TIMER) return true;
  ent_release(loop, id);
  return false;
}

static void compact_timers(corio_loop *loop)
{
  corio__heap_filter(&loop->timers, keep_live_timer, loop);
  loop->ndead = 0;
}

/* The earliest live timer, dropping cancelled ones from the top. */
static const corio__heap_node *timers_top(corio_loop *loop)
{
  const corio__heap_node *top;
  while ((top = corio__heap_top(&loop->timers)) && loop->ents[top->id].state != ENT_TIMER) {
    ent_release(loop, corio__heap_pop(&loop->timers));
    loop->ndead--;
  }
  return top;
}

int corio_handle_cancel(corio_loop *loop, corio_handle h)
{
  uint32_t idx, gen;
  corio__entry *e;
  if (!loop || h == 0) return -ENOENT;
  idx = (uint32_t)(h & 0xffffffffu) - 1;
  gen = (uint32_t)(h >> 32);
  if (idx >= loop->nents) return -ENOENT;
  e = &loop->ents[idx];
  if (e->gen != gen) return -ENOENT;
  if (e->state == ENT_TIMER) {
    /* Lazy removal: the heap node stays until popped (the slot is not reused before, so the
     * node cannot name a newer entry). Compact when the dead outnumber the living. */
    e->state = ENT_CANCELLED;
    loop->ntimers--;
    loop->ndead++;
    if (loop->ndead > 1024 && loop->ndead > loop->timers.n / 2) compact_timers(loop);
    return 0;
  }
  if (e->state == ENT_READY) {
    e->state = ENT_CANCELLED; /* freed when the ready queue reaches it */
    return 0;
  }
  return -ENOENT;
}

static void run_entry(corio_loop *loop, uint32_t idx)
{
  corio__entry *e = &loop->ents[idx];
  corio_cb cb = e->cb;
  void *arg = e->arg;
  bool live = e->state == ENT_READY;
  int64_t t0 = 0;
  /* Release first: the callback may reschedule (reusing the slot) or cancel its own handle,
   * which then harmlessly reports -ENOENT. */
  ent_release(loop, idx);
  if (!live) return;
  if (corio__unlikely(loop->debug)) t0 = corio__now_ns();
  cb(arg);
  if (corio__unlikely(loop->debug) && corio__now_ns() - t0 > loop->slow_ns) {
    char msg[128];
    corio_exception_ctx ctx = {msg, 0, NULL};
    snprintf(msg, sizeof(msg), "slow callback %p took %.3f s", (void *)(uintptr_t)cb,
             (double)(corio__now_ns() - t0) / 1e9);
    corio_loop_call_exception_handler(loop, &ctx);
  }
}

/* ---------------- cross-thread inbox ---------------- */

struct ts_call {
  struct corio__mpsc_node node;
  corio_cb cb;
  void *arg;
};

static void ts_call_run(struct corio__mpsc_node *node)
{
  struct ts_call *c = corio_container_of(node, struct ts_call, node);
  corio_cb cb = c->cb;
  void *arg = c->arg;
  corio__free(c);
  cb(arg);
}

int corio__loop_post(corio_loop *loop, struct corio__mpsc_node *node)
{
  /* Count ourselves in before looking at closing (both seq_cst, Dekker with corio_loop_close):
   * either close sees us and waits until we are out, or we see it closing and touch nothing. A
   * poster can otherwise still be between its push and its eventfd write when the loop has
   * already run the node, returned, and been closed and freed by its owner. */
  atomic_fetch_add_explicit(&loop->posters, 1, memory_order_seq_cst);
  if (atomic_load_explicit(&loop->closing, memory_order_seq_cst)) {
    atomic_fetch_sub_explicit(&loop->posters, 1, memory_order_release);
    return CORIO_E_CLOSED;
  }
  corio__mpsc_push(&loop->inbox, node);
  /* Dekker pairing with the loop (both seq_cst): either we see sleeping == 1 and write the
   * eventfd, or the loop sees the pushed node before it blocks. Only the poster that flips
   * sleeping from 1 to 0 writes, so a burst of posts costs one wakeup. */
  /* A seq_cst load first: while the loop is awake the flag's cache line stays shared instead of
   * bouncing between cores with an RMW per post. */
  if (atomic_load_explicit(&loop->sleeping, memory_order_seq_cst) &&
      atomic_exchange_explicit(&loop->sleeping, 0, memory_order_seq_cst)) {
    uint64_t one = 1;
    ssize_t w;
    atomic_fetch_add_explicit(&loop->wakeups, 1, memory_order_relaxed);
    w = write(loop->efd, &one, sizeof(one));
    (void)w; /* EAGAIN means the counter is already nonzero: the loop will wake anyway */
  }
  atomic_fetch_sub_explicit(&loop->posters, 1, memory_order_release);
  return 0;
}

int corio_call_soon_threadsafe(corio_loop *loop, corio_cb cb, void *arg)
{
  struct ts_call *c;
  int rc;
  if (!loop || !cb) return -EINVAL;
  c = corio__malloc(sizeof(*c));
  if (!c) return -ENOMEM;
  c->node.run = ts_call_run;
  c->cb = cb;
  c->arg = arg;
  rc = corio__loop_post(loop, &c->node);
  if (rc < 0) corio__free(c);
  return rc;
}

/* @return how many nodes ran */
static size_t drain_inbox(corio_loop *loop)
{
  struct corio__mpsc_node *n, *next;
  size_t cnt = 0;
  if (corio__mpsc_empty(&loop->inbox)) return 0;
  n = corio__mpsc_take_all(&loop->inbox);
  while (n) {
    next = atomic_load_explicit(&n->next, memory_order_relaxed);
    loop->inbox_rest = next;
    n->run(n);
    n = next;
    cnt++;
  }
  loop->stats.posts += cnt;
  return cnt;
}

static void arm_wake(corio_loop *loop)
{
  struct io_uring_sqe *sqe = corio_op_sqe(loop, &loop->wake_op);
  if (sqe) io_uring_prep_read(sqe, loop->efd, &loop->wake_buf, sizeof(loop->wake_buf), 0);
}

static void wake_complete(corio_op *op, int res, unsigned flags)
{
  corio_loop *loop = op->loop;
  (void)res;
  (void)flags;
  if (!atomic_load(&loop->closing)) arm_wake(loop);
}

/* ---------------- ops ---------------- */

struct io_uring_sqe *corio_op_sqe(corio_loop *loop, corio_op *op)
{
  struct io_uring_sqe *sqe = loop->be->get_sqe(loop);
  if (corio__unlikely(!sqe)) return NULL;
  op->loop = loop;
  op->inflight++;
  if (!(op->flags & CORIO__OP_INTERNAL)) loop->ops_inflight++;
  io_uring_sqe_set_data(sqe, op);
  return sqe;
}

int corio_op_cancel(corio_loop *loop, corio_op *op)
{
  struct io_uring_sqe *sqe;
  if (!op->inflight) return -ENOENT;
  sqe = loop->be->get_sqe(loop);
  if (!sqe) return -EBUSY;
  io_uring_prep_cancel(sqe, op, 0);
  io_uring_sqe_set_data64(sqe, 0); /* user_data 0: a CQE nobody waits for */
  return 0;
}

void corio__loop_dispatch(corio_loop *loop, uint64_t user_data, int res, unsigned flags)
{
  corio_op *op = (corio_op *)(uintptr_t)user_data;
  if (!op) return;
  if (!(flags & IORING_CQE_F_MORE)) {
    op->inflight--;
    if (!(op->flags & CORIO__OP_INTERNAL)) loop->ops_inflight--;
  }
  op->complete(op, res, flags);
}

/* ---------------- lifecycle ---------------- */

bool corio__loop_on_thread(const corio_loop *loop)
{
  return pthread_equal(loop->thread, pthread_self());
}

void corio__loop_alive_add(corio_loop *loop, int delta)
{
  loop->alive = (size_t)((ptrdiff_t)loop->alive + delta);
}

void corio__loop_task_link(corio_loop *loop, corio__list *node)
{
  corio__list_insert_tail(&loop->tasks, node);
}

int corio__loop_debug(const corio_loop *loop)
{
  return loop->debug;
}

int corio_loop_new(corio_loop **out, const corio_loop_opts *opts)
{
  return corio__loop_new_backend(out, opts, &corio__uring_backend);
}

int corio__loop_new_backend(corio_loop **out, const corio_loop_opts *opts,
                            const corio__backend_vt *be)
{
  corio_loop *loop;
  const char *env;
  int rc;
  if (!out) return -EINVAL;
  *out = NULL;
  loop = corio__calloc(1, sizeof(*loop));
  if (!loop) return -ENOMEM;
  loop->be = be;
  loop->free_head = NO_ENTRY;
  loop->efd = -1;
  loop->sigfd = -1;
  loop->thread = pthread_self();
  corio__heap_init(&loop->timers);
  corio__list_init(&loop->tasks);
  corio__list_init(&loop->executor_deferred);
  atomic_store(&loop->sleeping, 1); /* not running: see leave_run */
  sigemptyset(&loop->sigmask);
  sigemptyset(&loop->sig_blocked_by_us);
  env = getenv("CORIO_DEBUG");
  loop->debug = (opts && opts->debug) || (env && env[0] && strcmp(env, "0") != 0);
  loop->slow_ns =
      corio__seconds_to_ns(opts && opts->slow_callback_s > 0 ? opts->slow_callback_s : 0.1);
  rc = loop->be->init(loop, opts);
  if (rc < 0) {
    if (loop->debug) fprintf(stderr, "corio: cannot set up io_uring: %s\n", corio_strerror(rc));
    goto fail;
  }
  loop->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop->efd < 0) {
    rc = -errno;
    goto fail;
  }
  loop->wake_op.complete = wake_complete;
  loop->wake_op.flags = CORIO__OP_INTERNAL;
  loop->sig_op.complete = sig_complete;
  loop->sig_op.flags = CORIO__OP_INTERNAL;
  arm_wake(loop);
  *out = loop;
  return 0;
fail:
  loop->be->close(loop);
  if (loop->efd >= 0) close(loop->efd);
  corio__free(loop);
  return rc;
}

static size_t live_entries(const corio_loop *loop)
{
  size_t n = loop->ntimers;
  uint32_t i;
  for (i = 0; i < loop->rq_len; i++)
    if (loop->ents[loop->rq[(loop->rq_head + i) & (loop->rq_cap - 1)]].state == ENT_READY) n++;
  return n;
}

static bool loop_alive(const corio_loop *loop)
{
  return loop->alive || loop->ops_inflight || loop->nwatchers || loop->nsig ||
         !corio__mpsc_empty((corio__mpsc *)&loop->inbox) || loop->inbox_rest ||
         loop->executor_jobs || live_entries(loop);
}

int corio_loop_close(corio_loop *loop)
{
  corio__list *n;
  size_t i;
  if (!loop) return -EINVAL;
  if (loop->running) return CORIO_E_LOOP_RUNNING;
  if (loop_alive(loop)) {
    if (loop->debug) {
      corio__list_foreach(n, &loop->tasks)
      {
        corio_task *t = corio_container_of(n, corio_task, live);
        char msg[256];
        corio_exception_ctx ctx = {msg, -EBUSY, &t->fut};
        snprintf(msg, sizeof(msg), "task %p still alive at close (suspended at %s:%d)", (void *)t,
                 t->file ? t->file : "?", t->line);
        corio_loop_call_exception_handler(loop, &ctx);
      }
    }
    return -EBUSY;
  }
  /* Wait out the threads inside corio__loop_post (a few instructions and an eventfd write: a
   * worker whose hand-over already ran here may still be in it, and is waited for, not
   * refused), refuse new posts, wait out the ones that raced with that, and look
   * again: what one of them pushed keeps the loop alive, and then the close is called off. */
  while (atomic_load_explicit(&loop->posters, memory_order_acquire)) sched_yield();
  atomic_store_explicit(&loop->closing, 1, memory_order_seq_cst);
  while (atomic_load_explicit(&loop->posters, memory_order_acquire)) sched_yield();
  if (loop_alive(loop)) {
    atomic_store_explicit(&loop->closing, 0, memory_order_seq_cst);
    return -EBUSY;
  }
  if (loop->default_executor_free) loop->default_executor_free(loop->default_executor);
  if (loop->resolver_free) loop->resolver_free(loop->resolver); /* needs the ring: first */
  loop->be->close(loop); /* cancels and reaps the internal ops (wakeup, signal poll) */
  if (loop->bufring_free) loop->bufring_free(loop->bufring);
  for (i = 0; i < loop->watch_cap; i++) { /* internal watchers left: their ops died with the ring */
    corio__free(loop->readers[i]);
    corio__free(loop->writers[i]);
  }
  if (loop->efd >= 0) close(loop->efd);
  if (loop->sigfd >= 0) close(loop->sigfd);
  corio__heap_free(&loop->timers);
  corio__free(loop->ents);
  corio__free(loop->rq);
  corio__free(loop->readers);
  corio__free(loop->writers);
  corio__free(loop);
  return 0;
}

/* ---------------- running ---------------- */

/* @p once: a single iteration for corio_loop_run_once(): if it ran callbacks it does not block
 * (it made progress; the caller decides when to come back). */
/*
 * The loop is about to sleep while jobs of its default pool are in flight and one of the pool's
 * workers is awake on another CPU: poll the inbox (and the completion queue) for up to
 * LOOP_SPIN_NS instead. A short job's completion then costs no wakeup of the loop (on this VM
 * the wakeup from io_uring_enter is most of an idle round trip: 6-13 us against ~2 us). The
 * spin is adaptive, as glibc's adaptive mutexes are: after 3 polls in a row that ended without
 * a completion (long jobs), the loop sleeps at once, and tries again every 256 sleeps. A worker
 * on the loop's own CPU cannot finish while we poll, hence the CPU test (executor.c).
 */
#define LOOP_SPIN_NS 10000
static bool spin_for_completion(corio_loop *loop)
{
  int64_t deadline;
  unsigned i;
  if (loop->spin_misses >= 3) {
    if (++loop->spin_skips < 256) return false;
    loop->spin_skips = 0;
    loop->spin_misses = 2;
  }
  if (!loop->executor_spin_ok(loop)) return false;
  loop->stats.spins++;
  deadline = corio__now_ns() + LOOP_SPIN_NS;
  for (i = 1;; i++) {
    if (!corio__mpsc_empty(&loop->inbox) || (loop->ring_ok && io_uring_cq_ready(&loop->ring))) {
      loop->spin_misses = 0;
      loop->stats.spin_hits++;
      return true;
    }
    __builtin_ia32_pause();
    if (i % 64 == 0 && corio__now_ns() >= deadline) break;
  }
  loop->spin_misses++;
  return false;
}

static int iterate(corio_loop *loop, int64_t max_wait_ns, bool once)
{
  uint32_t n, ran;
  size_t posted;
  int64_t timeout, now;
  const corio__heap_node *top;
  int rc;

  /* 1. inbox, then the callbacks ready at the start of this iteration */
  /* a posted node that ran is progress too: run_once must not then block */
  if (loop->executor_ndeferred) loop->executor_flush(loop);
  posted = drain_inbox(loop);
  ran = loop->rq_len;
  loop->stats.iterations++;
  loop->stats.callbacks += ran;
  for (n = loop->rq_len; n > 0; n--) {
    uint32_t idx = loop->rq[loop->rq_head];
    loop->rq_head = (loop->rq_head + 1) & (loop->rq_cap - 1);
    loop->rq_len--;
    run_entry(loop, idx);
  }
  if (loop->executor_ndeferred) loop->executor_flush(loop);

  /* 2+3. one submit-and-wait, then reap the batch */
  if (loop->rq_len || loop->stopping || (once && (ran || posted))) {
    timeout = 0;
  } else {
    timeout = max_wait_ns;
    top = timers_top(loop);
    if (top) {
      int64_t d = top->key - corio__now_ns();
      if (d < 0) d = 0;
      if (timeout < 0 || d < timeout) timeout = d;
    }
  }
  if (timeout != 0 && loop->executor_jobs && loop->executor_spin_ok && spin_for_completion(loop))
    timeout = 0;
  if (timeout != 0) {
    atomic_store_explicit(&loop->sleeping, 1, memory_order_seq_cst);
    if (!corio__mpsc_empty(&loop->inbox)) timeout = 0;
  }
  rc = loop->be->poll(loop, timeout);
  if (timeout != 0) atomic_store_explicit(&loop->sleeping, 0, memory_order_seq_cst);
  if (rc < 0) return rc;

  /* 4. expired timers join the ready queue (for the next iteration) */
  if (loop->timers.n) {
    now = corio__now_ns();
    while ((top = corio__heap_top(&loop->timers)) && top->key <= now) {
      uint32_t idx = corio__heap_pop(&loop->timers);
      if (loop->ents[idx].state != ENT_TIMER) { /* cancelled */
        ent_release(loop, idx);
        loop->ndead--;
        continue;
      }
      loop->ntimers--;
      loop->ents[idx].state = ENT_READY;
      if (rq_push(loop, idx) < 0) {
        /* Out of memory for the queue: run it now rather than lose it. */
        run_entry(loop, idx);
      }
    }
  }
  return 0;
}

static __thread corio_loop *current_loop;

corio_loop *corio__loop_current(void)
{
  return current_loop;
}

static int enter_run(corio_loop *loop)
{
  if (!loop) return -EINVAL;
  if (loop->running) return CORIO_E_LOOP_RUNNING;
  if (!corio__loop_on_thread(loop)) return CORIO_E_WRONG_THREAD;
  if (current_loop) return CORIO_E_LOOP_RUNNING; /* another loop runs in this thread */
  loop->running = true;
  current_loop = loop;
  atomic_store_explicit(&loop->sleeping, 0, memory_order_seq_cst);
  return 0;
}

/* Outside a run call nobody looks at the inbox: the loop counts as sleeping, so that a post
 * from another thread writes the eventfd and makes corio_loop_fd() readable for a host loop
 * (which checks corio_loop_timeout(), and thus the inbox, after this store: the Dekker pairing
 * of corio__loop_post). Inside, iterate() sets and clears it around its blocking wait. */
static void leave_run(corio_loop *loop)
{
  loop->stopping = false;
  loop->running = false;
  current_loop = NULL;
  atomic_store_explicit(&loop->sleeping, 1, memory_order_seq_cst);
}

/* run_until_complete on a loop-less future (an executor job): it completes in another thread,
 * whose done callback posts this node; the loop runs until the node has run. Waiting for the
 * future's state alone would let the caller return (and close the loop) while that thread is
 * still posting. The node lives on run_until_complete's stack: once pushed, a poster never
 * touches it again. */
struct foreign_wait {
  struct corio__mpsc_node node;
  corio_loop *loop;
  bool ran;
};

static void foreign_ran(struct corio__mpsc_node *node)
{
  struct foreign_wait *w = corio_container_of(node, struct foreign_wait, node);
  w->ran = true;
  w->loop->stopping = true; /* this iteration must not go on to block */
}

static void foreign_done(corio_future *f, void *arg)
{
  struct foreign_wait *w = arg;
  (void)f;
  w->node.run = foreign_ran;
  /* Cannot fail: the loop is running, so nobody is closing it. */
  if (corio__loop_post(w->loop, &w->node) < 0) abort();
}

static void stop_when_done(corio_future *f, void *arg)
{
  corio_loop *loop = arg;
  (void)f;
  loop->stopping = true;
}

int corio_loop_run_until_complete(corio_loop *loop, corio_future *fut)
{
  int rc;
  struct foreign_wait w = {.loop = loop};
  if (!loop || !fut) return -EINVAL;
  if (fut->loop && fut->loop != loop) return CORIO_E_WRONG_LOOP;
  rc = enter_run(loop);
  if (rc < 0) return rc;
  /* As asyncio does: the future's done callback stops the loop, so the iteration that completes
   * it does not go on to block. */
  if (corio_future_done(fut)) {
    /* nothing to run */
  } else if (fut->loop) {
    rc = corio_future_add_done_callback(fut, stop_when_done, loop);
    /* until the callback itself has run (then nothing of ours is left in the ready queue) */
    while (rc >= 0 && !loop->stopping) rc = iterate(loop, -1, false);
    if (!corio_future_done(fut)) corio_future_remove_done_callback(fut, stop_when_done, loop);
  } else {
    rc = corio_future_add_done_callback(fut, foreign_done, &w);
    while (rc >= 0 && !loop->stopping && !w.ran) rc = iterate(loop, -1, false);
    /* Stopped early (or failed): take the callback back; if the completing thread has already
     * taken it, its post is on the way and must land before w goes out of scope. */
    if (!w.ran && corio_future_remove_done_callback(fut, foreign_done, &w) < 0) {
      while (!w.ran) {
        int r = iterate(loop, -1, false);
        if (r < 0 && r != -EINTR) sched_yield();
      }
    }
  }
  if (rc >= 0 && !corio_future_done(fut)) rc = CORIO_E_LOOP_STOPPED;
  leave_run(loop);
  return rc < 0 ? rc : 0;
}

int corio_loop_run_forever(corio_loop *loop)
{
  int rc = enter_run(loop);
  if (rc < 0) return rc;
  while (!loop->stopping) {
    rc = iterate(loop, -1, false);
    if (rc < 0) break;
  }
  leave_run(loop);
  return rc < 0 ? rc : 0;
}

int corio_loop_run_once(corio_loop *loop, double timeout_s)
{
  int rc = enter_run(loop);
  if (rc < 0) return rc;
  rc = iterate(loop, timeout_s < 0 ? -1 : corio__seconds_to_ns(timeout_s), true);
  leave_run(loop);
  if (rc < 0) return rc;
  return loop_alive(loop) ? 1 : 0;
}

void corio_loop_get_stats(const corio_loop *loop, corio_loop_stats *out)
{
  if (!loop || !out) return;
  *out = loop->stats;
  out->wakeups = atomic_load_explicit(&((corio_loop *)loop)->wakeups, memory_order_relaxed);
}

void corio_loop_stop(corio_loop *loop)
{
  if (loop) loop->stopping = true;
}

double corio_loop_time(const corio_loop *loop)
{
  (void)loop;
  return (double)corio__now_ns() / 1e9;
}

int corio_loop_is_running(const corio_loop *loop)
{
  return loop && loop->running;
}

int corio_loop_get_debug(const corio_loop *loop)
{
  return loop && loop->debug;
}

int corio_loop_fd(const corio_loop *loop)
{
  return loop ? loop->be->fd(loop) : -EINVAL;
}

double corio_loop_timeout(corio_loop *loop)
{
  const corio__heap_node *top;
  int64_t d;
  if (!loop) return -1;
  if (loop->rq_len || !corio__mpsc_empty(&loop->inbox)) return 0;
  /* Queued SQEs must reach the kernel, and jobs for the default pool the pool, before the host
   * sleeps on our fd (a host callback may have made either). */
  if (io_uring_sq_ready(&loop->ring) || loop->executor_ndeferred) return 0;
  top = timers_top(loop);
  if (!top) return -1;
  d = top->key - corio__now_ns();
  return d <= 0 ? 0 : (double)d / 1e9;
}

/* ---------------- exception handler and dump ---------------- */

void corio_loop_set_exception_handler(corio_loop *loop, corio_exception_handler fn, void *arg)
{
  if (!loop) return;
  loop->exc_fn = fn;
  loop->exc_arg = arg;
}

void corio_loop_call_exception_handler(corio_loop *loop, const corio_exception_ctx *ctx)
{
  if (!loop || !ctx) return;
  if (loop->exc_fn) {
    loop->exc_fn(loop, ctx, loop->exc_arg);
    return;
  }
  if (ctx->error)
    fprintf(stderr, "corio: %s: %s (%s)\n", ctx->message, corio_strerror(ctx->error),
            corio_err_name(ctx->error));
  else
    fprintf(stderr, "corio: %s\n", ctx->message);
}

void corio_loop_dump(corio_loop *loop, FILE *out)
{
  corio__list *n;
  size_t count = 0;
  if (!loop || !out) return;
  corio__list_foreach(n, &loop->tasks) count++;
  fprintf(out, "corio loop %p: %zu task(s), %zu timer(s), %u ready, %zu op(s) in flight\n",
          (void *)loop, count, loop->ntimers, loop->rq_len, loop->ops_inflight);
  corio__list_foreach(n, &loop->tasks)
  {
    corio_task *t = corio_container_of(n, corio_task, live);
    const char *what = "nothing";
    if (t->awaiting)
      what = t->awaiting->ops && t->awaiting->ops->name ? t->awaiting->ops->name : "future";
    else if (t->flags & CORIO__T_YIELD)
      what = "yield";
    if (!(t->flags & CORIO__T_STARTED) || !t->file)
      fprintf(out, "  task %p: not started yet\n", (void *)t);
    else
      fprintf(out, "  task %p: suspended at %s:%d awaiting %s%s%s\n", (void *)t, t->file, t->line,
              what, (t->flags & CORIO__T_CANCEL) ? " (cancelling)" : "",
              (t->flags & CORIO__T_FINALLY) ? " (in finally)" : "");
  }
}

/* ---------------- signals ---------------- */

static void arm_sig(corio_loop *loop)
{
  struct io_uring_sqe *sqe;
  if (loop->sig_op.inflight) return;
  sqe = corio_op_sqe(loop, &loop->sig_op);
  if (sqe) io_uring_prep_poll_add(sqe, loop->sigfd, POLLIN);
}

static void sig_complete(corio_op *op, int res, unsigned flags)
{
  corio_loop *loop = op->loop;
  struct signalfd_siginfo si;
  (void)flags;
  (void)res;
  /* A readiness poll, then plain reads until EAGAIN: signals are rare, the read syscall is
   * cheaper to reason about than an io_uring read on a signalfd (which io_uring would punt to
   * a blocking worker thread). */
  while (loop->sigfd >= 0 && read(loop->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    int s = (int)si.ssi_signo;
    if (s > 0 && s < _NSIG && loop->sigh[s].cb) loop->sigh[s].cb(loop, s, loop->sigh[s].arg);
  }
  if (loop->nsig > 0 && !atomic_load(&loop->closing)) arm_sig(loop);
}

int corio_add_signal_handler(corio_loop *loop, int signo, corio_signal_cb cb, void *arg)
{
  sigset_t one, old;
  int fd, rc;
  if (!loop || !cb || signo <= 0 || signo >= _NSIG || signo == SIGKILL || signo == SIGSTOP)
    return -EINVAL;
  rc = check_loop_thread(loop);
  if (rc < 0) return rc;
  if (!loop->sigh[signo].cb) {
    sigemptyset(&one);
    sigaddset(&one, signo);
    rc = pthread_sigmask(SIG_BLOCK, &one, &old);
    if (rc) return -rc;
    if (!sigismember(&old, signo)) sigaddset(&loop->sig_blocked_by_us, signo);
    sigaddset(&loop->sigmask, signo);
    fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
      rc = -errno;
      sigdelset(&loop->sigmask, signo);
      if (sigismember(&loop->sig_blocked_by_us, signo)) {
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        sigdelset(&loop->sig_blocked_by_us, signo);
      }
      return rc;
    }
    loop->sigfd = fd;
    loop->nsig++;
  }
  loop->sigh[signo].cb = cb;
  loop->sigh[signo].arg = arg;
  arm_sig(loop);
  return 0;
}

int corio_remove_signal_handler(corio_loop *loop, int signo)
{
  sigset_t one;
  if (!loop || signo <= 0 || signo >= _NSIG) return -EINVAL;
  if (!loop->sigh[signo].cb) return -ENOENT;
  loop->sigh[signo].cb = NULL;
  loop->sigh[signo].arg = NULL;
  loop->nsig--;
  sigdelset(&loop->sigmask, signo);
  if (loop->sigfd >= 0) signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sigismember(&loop->sig_blocked_by_us, signo)) {
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    sigdelset(&loop->sig_blocked_by_us, signo);
  }
  if (loop->nsig == 0 && loop->sig_op.inflight) corio_op_cancel(loop, &loop->sig_op);
  return 0;
}

/* ---------------- readers and writers ---------------- */
/* One-shot POLL_ADD re-armed after each callback, not multishot: a fresh poll checks the
 * current readiness, which gives asyncio's level-triggered add_reader semantics (a callback
 * that leaves data unread is called again). The re-arm is one more SQE in the next batched
 * submit, not a syscall. */

static void watch_arm(corio_loop *loop, corio__watcher *w)
{
  struct io_uring_sqe *sqe = corio_op_sqe(loop, &w->op);
  if (sqe) io_uring_prep_poll_add(sqe, w->fd, (unsigned)w->events);
}

static void watch_complete(corio_op *op, int res, unsigned flags)
{
  corio__watcher *w = corio_container_of(op, corio__watcher, op);
  corio_loop *loop = op->loop;
  (void)flags;
  if (!w->active) {
    corio__free(w);
    return;
  }
  if (res >= 0 || res == -ECANCELED) {
    if (res >= 0) {
      w->in_cb = true;
      w->cb(loop, w->fd, w->arg);
      w->in_cb = false;
    }
    if (!w->active) {
      corio__free(w);
      return;
    }
    watch_arm(loop, w);
    return;
  }
  /* A poll error (EBADF: fd closed under us): report through the callback once, stay armed
   * only if the user does not remove the watcher. */
  w->in_cb = true;
  w->cb(loop, w->fd, w->arg);
  w->in_cb = false;
  if (!w->active)
    corio__free(w);
  else
    watch_arm(loop, w);
}

static int watch_add(corio_loop *loop, int fd, short events, corio_fd_cb cb, void *arg,
                     bool internal)
{
  corio__watcher ***tab = events == POLLIN ? &loop->readers : &loop->writers;
  corio__watcher *w;
  int rc;
  if (!loop || fd < 0 || !cb) return -EINVAL;
  rc = check_loop_thread(loop);
  if (rc < 0) return rc;
  if ((size_t)fd >= loop->watch_cap) {
    size_t ncap = loop->watch_cap ? loop->watch_cap : 64;
    corio__watcher **r, **wr;
    while (ncap <= (size_t)fd) ncap *= 2;
    r = corio__realloc(loop->readers, ncap * sizeof(*r));
    if (!r) return -ENOMEM;
    loop->readers = r;
    wr = corio__realloc(loop->writers, ncap * sizeof(*wr));
    if (!wr) return -ENOMEM;
    loop->writers = wr;
    memset(r + loop->watch_cap, 0, (ncap - loop->watch_cap) * sizeof(*r));
    memset(wr + loop->watch_cap, 0, (ncap - loop->watch_cap) * sizeof(*wr));
    loop->watch_cap = ncap;
  }
  w = (*tab)[fd];
  if (w) { /* asyncio replaces the callback */
    w->cb = cb;
    w->arg = arg;
    return 0;
  }
  w = corio__calloc(1, sizeof(*w));
  if (!w) return -ENOMEM;
  w->op.complete = watch_complete;
  w->fd = fd;
  w->events = events;
  w->active = true;
  w->internal = internal;
  if (internal) w->op.flags = CORIO__OP_INTERNAL;
  w->cb = cb;
  w->arg = arg;
  (*tab)[fd] = w;
  if (!internal) loop->nwatchers++;
  watch_arm(loop, w);
  return 0;
}

static int watch_remove(corio_loop *loop, int fd, short events)
{
  corio__watcher **tab, *w;
  if (!loop || fd < 0) return -EINVAL;
  tab = events == POLLIN ? loop->readers : loop->writers;
  if ((size_t)fd >= loop->watch_cap || !tab[fd]) return -ENOENT;
  w = tab[fd];
  tab[fd] = NULL;
  if (!w->internal) loop->nwatchers--;
  w->active = false;
  if (w->op.inflight)
    corio_op_cancel(loop, &w->op); /* freed by its final CQE */
  else if (!w->in_cb)
    corio__free(w);
  return 0;
}

int corio__loop_watch(corio_loop *loop, int fd, short events, corio_fd_cb cb, void *arg,
                      bool internal)
{
  return watch_add(loop, fd, events == POLLOUT ? POLLOUT : POLLIN, cb, arg, internal);
}

int corio__loop_unwatch(corio_loop *loop, int fd, short events)
{
  return watch_remove(loop, fd, events == POLLOUT ? POLLOUT : POLLIN);
}

int corio_add_reader(corio_loop *loop, int fd, corio_fd_cb cb, void *arg)
{
  return watch_add(loop, fd, POLLIN, cb, arg, false);
}
int corio_remove_reader(corio_loop *loop, int fd)
{
  return watch_remove(loop, fd, POLLIN);
}
int corio_add_writer(corio_loop *loop, int fd, corio_fd_cb cb, void *arg)
{
  return watch_add(loop, fd, POLLOUT, cb, arg, false);
}
int corio_remove_writer(corio_loop *loop, int fd)
{
  return watch_remove(loop, fd, POLLOUT);
}
