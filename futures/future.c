/*
 * corio_future: states, values, refcounting, done callbacks and cross-thread completion.
 *
 * State machine: PENDING -> SETTING -> DONE | CANCELLED. The CAS from PENDING to SETTING is the
 * single point that decides who completes a future, from any thread, so a second set_result is
 * a clean CORIO_E_INVALID_STATE. A future bound to a loop finishes (final state, callbacks
 * scheduled) on the loop's thread: a completion from another thread fills in the value, then
 * hands the future to the loop through its MPSC inbox. Done callbacks run from the ready queue,
 * all of them from one ready entry, never inside set_result. Loop-less futures run their
 * callbacks in the completing thread (concurrent.futures semantics).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"

/* KIND_BYTES_REF: bytes that live in the future's own container (a stream read's inline buffer,
 * see corio__future_set_result_bytes_ref): read like KIND_BYTES, copied when taken, never freed
 * here. */
enum { KIND_INT = 0, KIND_PTR = 1, KIND_BYTES = 2, KIND_BYTES_REF = 3 };

static void spin_lock(corio_future *f)
{
  while (atomic_exchange_explicit(&f->lock, 1, memory_order_acquire))
    while (atomic_load_explicit(&f->lock, memory_order_relaxed)) __builtin_ia32_pause();
}
static void spin_unlock(corio_future *f)
{
  atomic_store_explicit(&f->lock, 0, memory_order_release);
}

void corio_future_init(corio_future *f, corio_loop *loop, const corio_future_ops *ops)
{
  memset(f, 0, sizeof(*f));
  f->ops = ops;
  f->loop = loop;
  atomic_init(&f->refs, 1);
}

corio_future *corio_future_new(corio_loop *loop)
{
  corio_future *f = corio__malloc(sizeof(*f));
  if (!f) return NULL;
  corio_future_init(f, loop, NULL);
  f->heap = 1;
  return f;
}

static void clear_value(corio_future *f)
{
  if (f->kind == KIND_PTR && f->v.ptr.dtor && f->v.ptr.p)
    f->v.ptr.dtor(f->v.ptr.p);
  else if (f->kind == KIND_BYTES)
    corio_bytes_free(&f->v.bytes);
  f->kind = KIND_INT;
  f->v.i = 0;
}

/* An unretrieved error reported for a future whose last reference died in another thread: the
 * handler runs on the loop's thread (as every loop callback does), without the future, which is
 * gone by then. */
struct lost_error {
  corio_loop *loop;
  int err;
  char msg[80];
};

static void report_lost_error(void *arg)
{
  struct lost_error *le = arg;
  corio_exception_ctx ctx = {le->msg, le->err, NULL};
  corio_loop_call_exception_handler(le->loop, &ctx);
  corio__free(le);
}

static void report_unretrieved(corio_future *f)
{
  const char *what =
      corio_task_of(f) ? "task error never retrieved" : "future error never retrieved";
  struct lost_error *le;
  if (corio__loop_on_thread(f->loop)) {
    corio_exception_ctx ctx = {what, f->err, f};
    corio_loop_call_exception_handler(f->loop, &ctx);
    return;
  }
  le = corio__malloc(sizeof(*le));
  if (le) {
    le->loop = f->loop;
    le->err = f->err;
    snprintf(le->msg, sizeof(le->msg), "%s (future released in another thread)", what);
    if (corio_call_soon_threadsafe(f->loop, report_lost_error, le) == 0) return;
    corio__free(le);
  }
  fprintf(stderr, "corio: %s: %s\n", what, corio_strerror(f->err));
}

void corio__future_destroy(corio_future *f)
{
  if (atomic_load_explicit(&f->state, memory_order_acquire) == CORIO_FUTURE_DONE && f->err < 0 &&
      !__atomic_load_n(&f->retrieved, __ATOMIC_RELAXED) && f->loop &&
      (corio__loop_debug(f->loop) || corio_task_of(f)))
    report_unretrieved(f);
  clear_value(f);
  corio__free(f->errmsg);
  corio__free(f->cbs);
  f->cbs = NULL;
  if (f->ops && f->ops->destroy)
    f->ops->destroy(f);
  else if (f->heap)
    corio__free(f);
}

/* ---- done callbacks ---- */

static int cb_push(corio_future *f, corio_future_cb cb, void *arg)
{
  if (!f->cb0.cb) {
    f->cb0.cb = cb;
    f->cb0.arg = arg;
    return 0;
  }
  if (f->ncbs == f->capcbs) {
    uint32_t ncap = f->capcbs ? f->capcbs * 2 : 4;
    struct corio__fcb *n = corio__realloc(f->cbs, ncap * sizeof(*n));
    if (!n) return -ENOMEM;
    f->cbs = n;
    f->capcbs = ncap;
  }
  f->cbs[f->ncbs].cb = cb;
  f->cbs[f->ncbs].arg = arg;
  f->ncbs++;
  return 0;
}

static void cb_pop_front(corio_future *f)
{
  if (f->ncbs) {
    f->cb0 = f->cbs[0];
    memmove(f->cbs, f->cbs + 1, (f->ncbs - 1) * sizeof(*f->cbs));
    f->ncbs--;
  } else {
    f->cb0.cb = NULL;
    f->cb0.arg = NULL;
  }
}

/* One at a time from the front, so a callback may remove a later one. */
static void run_callbacks(corio_future *f)
{
  while (f->cb0.cb) {
    struct corio__fcb c = f->cb0;
    cb_pop_front(f);
    c.cb(f, c.arg);
  }
}

static void run_callbacks_entry(void *arg)
{
  corio_future *f = arg;
  f->cbs_scheduled = 0;
  run_callbacks(f);
  corio_future_unref(f);
}

static void schedule_callbacks(corio_future *f)
{
  if (f->cbs_scheduled || !f->cb0.cb) return;
  corio_future_ref(f);
  f->cbs_scheduled = 1;
  if (corio__loop_schedule(f->loop, run_callbacks_entry, f) < 0) {
    /* No memory for a ready entry: running them now beats losing a wakeup. */
    run_callbacks_entry(f);
  }
}

static void futex_wake_all(corio_future *f)
{
  if (atomic_load_explicit(&f->waiters, memory_order_seq_cst))
    syscall(SYS_futex, (int *)&f->state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void finish_on_loop(corio_future *f)
{
  atomic_store_explicit(&f->state, f->final_state, memory_order_seq_cst);
  futex_wake_all(f);
  schedule_callbacks(f);
}

static void inbox_run(struct corio__mpsc_node *node)
{
  corio_future *f = corio_container_of(node, corio_future, inbox);
  finish_on_loop(f);
  corio_future_unref(f);
}

static void finish_loopless(corio_future *f)
{
  struct corio__fcb c0, *cbs;
  uint32_t n, i;
  spin_lock(f);
  atomic_store_explicit(&f->state, f->final_state, memory_order_seq_cst);
  /* Take the callbacks under the lock; once the state is final, add_done_callback runs new ones
   * at once instead of queueing them. */
  c0 = f->cb0;
  cbs = f->cbs;
  n = f->ncbs;
  f->cb0.cb = NULL;
  f->cbs = NULL;
  f->ncbs = f->capcbs = 0;
  spin_unlock(f);
  futex_wake_all(f);
  corio_future_ref(f); /* a callback may drop the last outside reference */
  if (c0.cb) c0.cb(f, c0.arg);
  for (i = 0; i < n; i++) cbs[i].cb(f, cbs[i].arg);
  corio__free(cbs);
  corio_future_unref(f);
}

static int begin_set(corio_future *f)
{
  int expected = CORIO_FUTURE_PENDING;
  if (!f) return -EINVAL;
  if (!atomic_compare_exchange_strong_explicit(&f->state, &expected, CORIO_FUTURE_SETTING,
                                               memory_order_acq_rel, memory_order_acquire))
    return CORIO_E_INVALID_STATE;
  return 0;
}

static void end_set(corio_future *f, int final_state)
{
  f->final_state = (unsigned char)final_state;
  if (!f->loop) {
    finish_loopless(f);
  } else if (corio__loop_on_thread(f->loop)) {
    finish_on_loop(f);
  } else {
    corio_future_ref(f);
    f->inbox.run = inbox_run;
    if (corio__loop_post(f->loop, &f->inbox) < 0) {
      /* The loop is closing: the value is kept, no callback can run any more. */
      atomic_store_explicit(&f->state, final_state, memory_order_seq_cst);
      futex_wake_all(f);
      corio_future_unref(f);
    }
  }
}

int corio_future_set_result(corio_future *f, int64_t value)
{
  int rc = begin_set(f);
  if (rc < 0) return rc;
  f->kind = KIND_INT;
  f->v.i = value;
  f->err = 0;
  end_set(f, CORIO_FUTURE_DONE);
  return 0;
}

int corio_future_set_result_ptr(corio_future *f, void *p, corio_dtor dtor)
{
  int rc = begin_set(f);
  if (rc < 0) return rc;
  f->kind = KIND_PTR;
  f->v.ptr.p = p;
  f->v.ptr.dtor = dtor;
  f->err = 0;
  end_set(f, CORIO_FUTURE_DONE);
  return 0;
}

int corio_future_set_result_bytes(corio_future *f, corio_bytes bytes)
{
  int rc = begin_set(f);
  if (rc < 0) return rc;
  f->kind = KIND_BYTES;
  f->v.bytes = bytes;
  f->err = 0;
  end_set(f, CORIO_FUTURE_DONE);
  return 0;
}

int corio__future_set_result_bytes_ref(corio_future *f, const uint8_t *data, size_t len)
{
  int rc = begin_set(f);
  if (rc < 0) return rc;
  f->kind = KIND_BYTES_REF;
  f->v.bytes.data = (uint8_t *)data;
  f->v.bytes.len = len;
  f->err = 0;
  end_set(f, CORIO_FUTURE_DONE);
  return 0;
}

int corio_future_set_error(corio_future *f, int err)
{
  int rc;
  if (err >= 0) return -EINVAL;
  rc = begin_set(f);
  if (rc < 0) return rc;
  f->err = err;
  end_set(f, CORIO_FUTURE_DONE);
  return 0;
}

int corio_future_set_error_msg(corio_future *f, int err, const char *msg)
{
  int rc;
  size_t n;
  if (err >= 0) return -EINVAL;
  rc = begin_set(f);
  if (rc < 0) return rc;
  f->err = err;
  if (msg) {
    n = strlen(msg) + 1;
    f->errmsg = corio__malloc(n); /* on ENOMEM the error stands without its text */
    if (f->errmsg) memcpy(f->errmsg, msg, n);
  }
  end_set(f, CORIO_FUTURE_DONE);
  return 0;
}

const char *corio_future_error_message(corio_future *f)
{
  int err = corio_future_error(f);
  if (err == CORIO_E_NOT_DONE || err >= 0) return NULL;
  return f->errmsg ? f->errmsg : corio_strerror(err);
}

int corio_future_set_cancelled(corio_future *f)
{
  int rc = begin_set(f);
  if (rc < 0) return rc;
  f->err = -ECANCELED;
  end_set(f, CORIO_FUTURE_CANCELLED);
  return 0;
}

int corio_future_cancel(corio_future *f)
{
  if (!f) return 0;
  if (atomic_load_explicit(&f->state, memory_order_acquire) != CORIO_FUTURE_PENDING) return 0;
  if (f->ops && f->ops->cancel) return f->ops->cancel(f);
  return corio_future_set_cancelled(f) == 0;
}

/* ---- accessors ---- */

int corio_future_done(const corio_future *f)
{
  return f && atomic_load_explicit(&((corio_future *)f)->state, memory_order_acquire) >=
                  CORIO_FUTURE_DONE;
}

int corio_future_cancelled(const corio_future *f)
{
  return f && atomic_load_explicit(&((corio_future *)f)->state, memory_order_acquire) ==
                  CORIO_FUTURE_CANCELLED;
}

int corio_future_error(corio_future *f)
{
  int st;
  if (!f) return -EINVAL;
  st = atomic_load_explicit(&f->state, memory_order_acquire);
  if (st < CORIO_FUTURE_DONE) return CORIO_E_NOT_DONE;
  __atomic_store_n(&f->retrieved, 1, __ATOMIC_RELAXED); /* any thread may ask */
  if (st == CORIO_FUTURE_CANCELLED) return -ECANCELED;
  return f->err;
}

void corio__future_mark_retrieved(corio_future *f)
{
  __atomic_store_n(&f->retrieved, 1, __ATOMIC_RELAXED);
}

int64_t corio_future_int(const corio_future *f)
{
  return corio_future_done(f) && f->err == 0 && f->kind == KIND_INT ? f->v.i : 0;
}

void *corio_future_ptr(const corio_future *f)
{
  return corio_future_done(f) && f->err == 0 && f->kind == KIND_PTR ? f->v.ptr.p : NULL;
}

const corio_bytes *corio_future_bytes(const corio_future *f)
{
  return corio_future_done(f) && f->err == 0 && (f->kind == KIND_BYTES || f->kind == KIND_BYTES_REF)
             ? &f->v.bytes
             : NULL;
}

void *corio_future_steal_ptr(corio_future *f)
{
  void *p = corio_future_ptr(f);
  if (p) f->v.ptr.dtor = NULL;
  return p;
}

corio_bytes corio_future_steal_bytes(corio_future *f)
{
  corio_bytes b = {NULL, 0};
  if (corio_future_bytes(f) && f->kind == KIND_BYTES_REF) {
    /* not ours to hand over: a copy (empty on ENOMEM) */
    b = corio_bytes_alloc(f->v.bytes.len);
    if (b.data && f->v.bytes.len) memcpy(b.data, f->v.bytes.data, f->v.bytes.len);
    f->v.bytes.data = NULL;
    f->v.bytes.len = 0;
  } else if (corio_future_bytes(f)) {
    b = f->v.bytes;
    f->v.bytes.data = NULL;
    f->v.bytes.len = 0;
  }
  return b;
}

corio_loop *corio_future_loop(const corio_future *f)
{
  return f ? f->loop : NULL;
}

int corio_future_add_done_callback(corio_future *f, corio_future_cb cb, void *arg)
{
  int rc, st;
  if (!f || !cb) return -EINVAL;
  if (!f->loop) {
    spin_lock(f);
    st = atomic_load_explicit(&f->state, memory_order_acquire);
    if (st < CORIO_FUTURE_DONE) {
      rc = cb_push(f, cb, arg);
      spin_unlock(f);
      return rc;
    }
    spin_unlock(f);
    cb(f, arg);
    return 0;
  }
  if (!corio__loop_on_thread(f->loop)) return CORIO_E_WRONG_THREAD;
  rc = cb_push(f, cb, arg);
  if (rc < 0) return rc;
  if (atomic_load_explicit(&f->state, memory_order_acquire) >= CORIO_FUTURE_DONE)
    schedule_callbacks(f);
  return 0;
}

int corio_future_remove_done_callback(corio_future *f, corio_future_cb cb, void *arg)
{
  uint32_t i;
  int rc = -ENOENT;
  if (!f) return -EINVAL;
  if (!f->loop) spin_lock(f);
  if (f->cb0.cb == cb && f->cb0.arg == arg) {
    cb_pop_front(f);
    rc = 0;
  } else {
    for (i = 0; i < f->ncbs; i++) {
      if (f->cbs[i].cb == cb && f->cbs[i].arg == arg) {
        memmove(f->cbs + i, f->cbs + i + 1, (f->ncbs - i - 1) * sizeof(*f->cbs));
        f->ncbs--;
        rc = 0;
        break;
      }
    }
  }
  if (!f->loop) spin_unlock(f);
  return rc;
}

int corio_future_wait(corio_future *f, double timeout_s)
{
  int64_t deadline = 0, left;
  struct timespec ts;
  int st;
  if (!f) return -EINVAL;
  if (f->loop && corio__loop_on_thread(f->loop) && !corio_future_done(f))
    return CORIO_E_WRONG_THREAD;
  if (timeout_s >= 0) deadline = corio__now_ns() + corio__seconds_to_ns(timeout_s);
  for (;;) {
    atomic_store_explicit(&f->waiters, 1, memory_order_seq_cst);
    st = atomic_load_explicit(&f->state, memory_order_seq_cst);
    if (st >= CORIO_FUTURE_DONE) return 0;
    if (timeout_s >= 0) {
      left = deadline - corio__now_ns();
      if (left <= 0) return -ETIMEDOUT;
      ts.tv_sec = left / 1000000000;
      ts.tv_nsec = left % 1000000000;
    }
    syscall(SYS_futex, (int *)&f->state, FUTEX_WAIT_PRIVATE, st, timeout_s >= 0 ? &ts : NULL, NULL,
            0);
  }
}

corio_bytes corio_bytes_alloc(size_t len)
{
  corio_bytes b;
  b.data = corio__malloc(len);
  b.len = b.data ? len : 0;
  return b;
}

void corio_bytes_free(corio_bytes *b)
{
  if (!b) return;
  corio__free(b->data);
  b->data = NULL;
  b->len = 0;
}

/* ---- internal helpers for combinators ---- */

int corio__future_transfer(corio_future *dst, corio_future *src, bool src_exclusive)
{
  int err = corio_future_error(src);
  corio_bytes copy;
  if (corio_future_cancelled(src)) return corio_future_set_cancelled(dst);
  if (err < 0) return corio_future_set_error_msg(dst, err, src->errmsg);
  switch (src->kind) {
  case KIND_PTR:
    if (src_exclusive) {
      corio_dtor d = src->v.ptr.dtor;
      return corio_future_set_result_ptr(dst, corio_future_steal_ptr(src), d);
    }
    return corio_future_set_result_ptr(dst, src->v.ptr.p, NULL);
  case KIND_BYTES:
  case KIND_BYTES_REF:
    if (src_exclusive && src->kind == KIND_BYTES)
      return corio_future_set_result_bytes(dst, corio_future_steal_bytes(src));
    copy = corio_bytes_alloc(src->v.bytes.len);
    if (!copy.data && src->v.bytes.len) return corio_future_set_error(dst, -ENOMEM);
    if (src->v.bytes.len) memcpy(copy.data, src->v.bytes.data, src->v.bytes.len);
    return corio_future_set_result_bytes(dst, copy);
  default:
    return corio_future_set_result(dst, src->v.i);
  }
}

struct hop {
  corio_loop *loop;
  corio_future *f;
  corio_future_cb cb;
  void *arg;
};

static void hop_run(void *arg)
{
  struct hop *h = arg;
  h->cb(h->f, h->arg);
  corio_future_unref(h->f);
  corio__free(h);
}

static void hop_post(corio_future *f, void *arg)
{
  struct hop *h = arg;
  (void)f;
  if (corio_call_soon_threadsafe(h->loop, hop_run, h) < 0) {
    corio_future_unref(h->f);
    corio__free(h);
  }
}

int corio__future_on_done(corio_loop *loop, corio_future *f, corio_future_cb cb, void *arg)
{
  struct hop *h;
  int rc;
  if (f->loop == loop) return corio_future_add_done_callback(f, cb, arg);
  if (f->loop) return CORIO_E_WRONG_LOOP;
  h = corio__malloc(sizeof(*h));
  if (!h) return -ENOMEM;
  h->loop = loop;
  h->f = corio_future_ref(f);
  h->cb = cb;
  h->arg = arg;
  rc = corio_future_add_done_callback(f, hop_post, h);
  if (rc < 0) {
    corio_future_unref(f);
    corio__free(h);
  }
  return rc;
}

corio_future *corio__future_failed(corio_loop *loop, int err)
{
  corio_future *f = corio_future_new(loop);
  if (f) corio_future_set_error(f, err);
  return f;
}

int corio__future_set_result_inline(corio_future *f, int64_t value)
{
  int rc = begin_set(f);
  if (rc < 0) return rc;
  f->kind = KIND_INT;
  f->v.i = value;
  f->err = 0;
  f->final_state = CORIO_FUTURE_DONE;
  atomic_store_explicit(&f->state, CORIO_FUTURE_DONE, memory_order_seq_cst);
  futex_wake_all(f);
  corio_future_ref(f);
  run_callbacks(f);
  corio_future_unref(f);
  return 0;
}
