/*
 * Combinators: sleep, gather, wait, wait_for, shield, as_completed and task groups.
 *
 * Each combinator is a struct that embeds its outer future first; the outer future's refcount is
 * the struct's lifetime. Every pending child callback and timer holds one reference to it, so
 * the struct outlives whatever can still call into it, and ops->destroy frees it (and drops the
 * children it owns) with the last reference.
 */
#include <errno.h>
#include "internal.h"

static corio_loop *pick_loop(corio_future *const *futs, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (futs[i] && futs[i]->loop) return futs[i]->loop;
  return corio__loop_current();
}

static void unref_all(corio_future *const *futs, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) corio_future_unref(futs[i]);
}

/* ---------------- sleep ---------------- */

struct sleep_fut {
  corio_future fut;
  corio_handle h;
};

static int sleep_cancel(corio_future *f)
{
  struct sleep_fut *s = corio_container_of(f, struct sleep_fut, fut);
  if (corio_handle_cancel(f->loop, s->h) < 0) return 0;
  s->h = 0;
  corio_future_set_cancelled(f);
  corio_future_unref(f); /* the timer's reference */
  return 1;
}

static void sleep_destroy(corio_future *f)
{
  corio__free(corio_container_of(f, struct sleep_fut, fut));
}

static const corio_future_ops sleep_ops = {sleep_cancel, sleep_destroy, "sleep"};

static void sleep_fire(void *arg)
{
  struct sleep_fut *s = arg;
  s->h = 0;
  /* We run from the ready queue already: resume the awaiting task now, not one turn later. */
  corio__future_set_result_inline(&s->fut, 0);
  corio_future_unref(&s->fut);
}

corio_future *corio_sleep(corio_loop *loop, double delay_s)
{
  struct sleep_fut *s;
  int rc;
  if (!loop) loop = corio__loop_current();
  if (!loop) return corio__future_failed(NULL, -EINVAL);
  if (!(delay_s >= 0)) return corio__future_failed(loop, -EINVAL);
  s = corio__malloc(sizeof(*s));
  if (!s) return NULL;
  corio_future_init(&s->fut, loop, &sleep_ops);
  corio_future_ref(&s->fut); /* the timer's */
  /* sleep(0) is asyncio's "yield to the loop once": a ready entry, not a timer. */
  if (delay_s == 0)
    rc = corio_call_soon(loop, sleep_fire, s, &s->h);
  else
    rc = corio_call_later(loop, delay_s, sleep_fire, s, &s->h);
  if (rc < 0) {
    corio__free(s);
    return corio__future_failed(loop, rc);
  }
  return &s->fut;
}

/* ---------------- gather and wait ---------------- */

struct group {
  corio_future fut;
  size_t n, remaining, ndone;
  unsigned flags;
  int mode; /* 0 = gather, else a corio_wait_mode */
  bool cancelling;
  corio_handle timer;
  corio_future *children[];
};

static int gather_cancel(corio_future *f);
static int wait_cancel(corio_future *f);
static void group_destroy(corio_future *f)
{
  struct group *g = corio_container_of(f, struct group, fut);
  unref_all(g->children, g->n);
  corio__free(g);
}
static const corio_future_ops gather_ops = {gather_cancel, group_destroy, "gather"};
static const corio_future_ops wait_ops = {wait_cancel, group_destroy, "wait"};

static struct group *group_of(corio_future *f)
{
  if (!f || (f->ops != &gather_ops && f->ops != &wait_ops)) return NULL;
  return corio_container_of(f, struct group, fut);
}

corio_future *corio_gather_child(corio_future *f, size_t i)
{
  struct group *g = group_of(f);
  return g && i < g->n ? g->children[i] : NULL;
}

size_t corio_gather_size(corio_future *f)
{
  struct group *g = group_of(f);
  return g ? g->n : 0;
}

static int gather_cancel(corio_future *f)
{
  struct group *g = corio_container_of(f, struct group, fut);
  size_t i;
  g->cancelling = true;
  for (i = 0; i < g->n; i++) corio_future_cancel(g->children[i]);
  if (g->remaining == 0 && !corio_future_done(f)) corio_future_set_cancelled(f);
  return 1;
}

static void gather_child_done(corio_future *child, void *arg)
{
  struct group *g = arg;
  int err;
  size_t i;
  g->remaining--;
  err = corio_future_error(child); /* marks it retrieved: the gather reports it */
  if (!corio_future_done(&g->fut)) {
    if (err < 0 && !(g->flags & CORIO_RETURN_EXCEPTIONS) && !g->cancelling) {
      corio_future_set_error(&g->fut, err);
      if (g->flags & CORIO_CANCEL_ON_ERROR)
        for (i = 0; i < g->n; i++) corio_future_cancel(g->children[i]);
    } else if (g->remaining == 0) {
      if (g->cancelling)
        corio_future_set_cancelled(&g->fut);
      else
        corio_future_set_result(&g->fut, 0);
    }
  }
  corio_future_unref(&g->fut);
}

static struct group *group_new(corio_future *const *futs, size_t n, const corio_future_ops *ops,
                               corio_loop **loopp, corio_future **failed)
{
  struct group *g;
  corio_loop *loop;
  size_t i;
  *failed = NULL;
  if (!futs && n) {
    *failed = corio__future_failed(corio__loop_current(), -EINVAL);
    return NULL;
  }
  loop = pick_loop(futs, n);
  for (i = 0; i < n; i++) {
    if (!futs[i] || !loop) {
      unref_all(futs, n);
      *failed = corio__future_failed(loop, futs[i] ? -EINVAL : -ENOMEM);
      return NULL;
    }
  }
  g = corio__calloc(1, sizeof(*g) + n * sizeof(corio_future *));
  if (!g) {
    unref_all(futs, n);
    return NULL;
  }
  corio_future_init(&g->fut, loop, ops);
  g->n = g->remaining = n;
  if (n) memcpy(g->children, futs, n * sizeof(corio_future *));
  *loopp = loop;
  return g;
}

corio_future *corio_gather(corio_future *const *futs, size_t n, unsigned flags)
{
  corio_future *failed;
  corio_loop *loop = NULL;
  struct group *g = group_new(futs, n, &gather_ops, &loop, &failed);
  size_t i;
  int rc;
  if (!g) return failed;
  g->flags = flags;
  if (n == 0) {
    corio_future_set_result(&g->fut, 0);
    return &g->fut;
  }
  for (i = 0; i < n; i++) {
    corio_future_ref(&g->fut);
    rc = corio__future_on_done(loop, g->children[i], gather_child_done, g);
    if (rc < 0) {
      /* A child of another loop, or no memory: it counts as failed at once. */
      g->remaining--;
      corio_future_unref(&g->fut);
      if (!corio_future_done(&g->fut)) corio_future_set_error(&g->fut, rc);
    }
  }
  return &g->fut;
}

/* Done with the count of finished children, or with @p err (< 0) when a child could not be
 * watched at all. */
static void wait_finish(struct group *g, int err)
{
  if (corio_future_done(&g->fut)) return;
  if (g->timer && corio_handle_cancel(g->fut.loop, g->timer) == 0) corio_future_unref(&g->fut);
  g->timer = 0;
  if (err < 0)
    corio_future_set_error(&g->fut, err);
  else
    corio_future_set_result(&g->fut, (int64_t)g->ndone);
}

static int wait_cancel(corio_future *f)
{
  struct group *g = corio_container_of(f, struct group, fut);
  if (g->timer && corio_handle_cancel(f->loop, g->timer) == 0) {
    g->timer = 0;
    corio_future_set_cancelled(f);
    corio_future_unref(f);
    return 1;
  }
  return corio_future_set_cancelled(f) == 0;
}

static void wait_child_done(corio_future *child, void *arg)
{
  struct group *g = arg;
  int err = corio_future_error(child);
  g->remaining--;
  g->ndone++;
  if (g->mode == CORIO_FIRST_COMPLETED || g->remaining == 0 ||
      (g->mode == CORIO_FIRST_EXCEPTION && err < 0 && err != -ECANCELED))
    wait_finish(g, 0);
  corio_future_unref(&g->fut);
}

static void wait_timeout(void *arg)
{
  struct group *g = arg;
  g->timer = 0;
  wait_finish(g, 0);
  corio_future_unref(&g->fut);
}

corio_future *corio_wait(corio_future *const *futs, size_t n, int mode, double timeout_s)
{
  corio_future *failed;
  corio_loop *loop = NULL;
  struct group *g;
  size_t i;
  int rc;
  if (n == 0 ||
      (mode != CORIO_FIRST_COMPLETED && mode != CORIO_FIRST_EXCEPTION &&
       mode != CORIO_ALL_COMPLETED) ||
      timeout_s != timeout_s) {
    /* Pick the loop before dropping the children: the references given may be their last. */
    loop = pick_loop(futs, futs ? n : 0);
    if (futs) unref_all(futs, n);
    return corio__future_failed(loop, -EINVAL);
  }
  g = group_new(futs, n, &wait_ops, &loop, &failed);
  if (!g) return failed;
  g->mode = mode;
  if (timeout_s >= 0) {
    corio_future_ref(&g->fut);
    rc = corio_call_later(loop, timeout_s, wait_timeout, g, &g->timer);
    if (rc < 0) {
      corio_future_unref(&g->fut);
      corio_future_set_error(&g->fut, rc);
      return &g->fut;
    }
  }
  for (i = 0; i < n; i++) {
    corio_future_ref(&g->fut);
    rc = corio__future_on_done(loop, g->children[i], wait_child_done, g);
    if (rc < 0) {
      /* A child of another loop, or no memory: fail as gather does. Finishing with a count
       * (as before) reported a completion that had not happened: FIRST_COMPLETED returned with
       * no child done. */
      corio_future_unref(&g->fut);
      g->remaining--;
      wait_finish(g, rc);
    }
  }
  return &g->fut;
}

/* ---------------- wait_for and shield ---------------- */

struct wrap {
  corio_future fut;
  corio_future *inner;
  corio_handle timer;
  bool timed_out;
};

static void wrap_destroy(corio_future *f)
{
  struct wrap *w = corio_container_of(f, struct wrap, fut);
  corio_future_unref(w->inner);
  corio__free(w);
}

/* True when nobody but the wrap holds @p inner, so its pointer or bytes value can be moved
 * instead of shared or copied. Called only from the wrap's done callback, and whoever runs done
 * callbacks holds one reference of its own for the time of the call (run_callbacks_entry, the
 * inline path of sleep, the hop of a loop-less future): so the wrap's reference plus that one.
 * Comparing with 1 (as before) never matched, so a value was never moved: the outer got the
 * pointer without its destructor while the inner kept it, and corio_future_steal_ptr() on the
 * outer (the documented way to take a value out) led to a double free. */
static bool inner_exclusive(corio_future *inner)
{
  return atomic_load(&inner->refs) <= 2;
}

static int wait_for_cancel(corio_future *f)
{
  struct wrap *w = corio_container_of(f, struct wrap, fut);
  int rc;
  if (corio_future_cancel(w->inner)) return 1; /* completes when the inner does */
  if (!corio_future_done(w->inner)) {
    /* An inner that cannot be cancelled is abandoned: we are done now, and so is the timer,
     * which would otherwise keep the loop alive until the timeout for nothing. */
    rc = corio_future_set_cancelled(f);
    if (w->timer && corio_handle_cancel(f->loop, w->timer) == 0) corio_future_unref(f);
    w->timer = 0;
    return rc == 0;
  }
  return 1;
}
static const corio_future_ops wait_for_ops = {wait_for_cancel, wrap_destroy, "wait_for"};

static void wait_for_inner_done(corio_future *inner, void *arg)
{
  struct wrap *w = arg;
  if (w->timer && corio_handle_cancel(w->fut.loop, w->timer) == 0) corio_future_unref(&w->fut);
  w->timer = 0;
  if (!corio_future_done(&w->fut)) {
    if (corio_future_cancelled(inner) && w->timed_out)
      corio_future_set_error(&w->fut, -ETIMEDOUT);
    else
      corio__future_transfer(&w->fut, inner, inner_exclusive(inner));
  }
  corio_future_unref(&w->fut);
}

static void wait_for_timeout(void *arg)
{
  struct wrap *w = arg;
  w->timer = 0;
  if (!corio_future_done(&w->fut)) {
    w->timed_out = true;
    /* An inner that cannot be cancelled (a running executor job) is abandoned. */
    if (!corio_future_cancel(w->inner) && !corio_future_done(w->inner))
      corio_future_set_error(&w->fut, -ETIMEDOUT);
  }
  corio_future_unref(&w->fut);
}

static struct wrap *wrap_new(corio_future *inner, const corio_future_ops *ops,
                             corio_future **failed)
{
  corio_loop *loop;
  struct wrap *w;
  *failed = NULL;
  if (!inner) return NULL;
  loop = inner->loop ? inner->loop : corio__loop_current();
  if (!loop) {
    corio_future_unref(inner);
    *failed = corio__future_failed(NULL, -EINVAL);
    return NULL;
  }
  w = corio__calloc(1, sizeof(*w));
  if (!w) {
    corio_future_unref(inner);
    return NULL;
  }
  corio_future_init(&w->fut, loop, ops);
  w->inner = inner;
  return w;
}

corio_future *corio_wait_for(corio_future *inner, double timeout_s)
{
  corio_future *failed;
  struct wrap *w;
  int rc;
  if (inner && timeout_s != timeout_s) {
    corio_loop *l = inner->loop;
    corio_future_unref(inner);
    return corio__future_failed(l ? l : corio__loop_current(), -EINVAL);
  }
  w = wrap_new(inner, &wait_for_ops, &failed);
  if (!w) return failed;
  corio_future_ref(&w->fut);
  rc = corio__future_on_done(w->fut.loop, inner, wait_for_inner_done, w);
  if (rc < 0) {
    corio_future_unref(&w->fut);
    corio_future_set_error(&w->fut, rc);
    return &w->fut;
  }
  if (timeout_s >= 0 && !corio_future_done(inner)) {
    corio_future_ref(&w->fut);
    rc = corio_call_later(w->fut.loop, timeout_s, wait_for_timeout, w, &w->timer);
    if (rc < 0) {
      /* No timer, no timeout: fail with the reason first, then stop the inner. Cancelling it
       * alone made the outer end "cancelled" (the inner's cancellation mirrored), which a task
       * awaiting it cannot tell from a real cancellation. */
      corio_future_unref(&w->fut);
      corio_future_set_error(&w->fut, rc);
      corio_future_cancel(inner);
    }
  }
  return &w->fut;
}

static int shield_cancel(corio_future *f)
{
  return corio_future_set_cancelled(f) == 0; /* the inner future goes on */
}
static const corio_future_ops shield_ops = {shield_cancel, wrap_destroy, "shield"};

static void shield_inner_done(corio_future *inner, void *arg)
{
  struct wrap *w = arg;
  if (!corio_future_done(&w->fut)) corio__future_transfer(&w->fut, inner, inner_exclusive(inner));
  corio_future_unref(&w->fut);
}

corio_future *corio_shield(corio_future *inner)
{
  corio_future *failed;
  struct wrap *w = wrap_new(inner, &shield_ops, &failed);
  int rc;
  if (!w) return failed;
  corio_future_ref(&w->fut);
  rc = corio__future_on_done(w->fut.loop, inner, shield_inner_done, w);
  if (rc < 0) {
    corio_future_unref(&w->fut);
    corio_future_set_error(&w->fut, rc);
  }
  return &w->fut;
}

/* ---------------- as_completed ---------------- */

struct corio_as_completed {
  corio_loop *loop;
  size_t n, refs, returned;
  bool freed;
  corio_future **children;
  corio_future **doneq; /* finished, not yet handed out (ring of n) */
  size_t dq_head, dq_len;
  corio_future **waiters; /* next() futures not yet served (ring of n) */
  size_t w_head, w_len;
};

static void ac_release(corio_as_completed *it)
{
  if (--it->refs) return;
  unref_all(it->children, it->n);
  corio__free(it->children);
  corio__free(it->doneq);
  corio__free(it->waiters);
  corio__free(it);
}

static void ac_serve(corio_as_completed *it)
{
  while (it->w_len && it->dq_len) {
    corio_future *w = it->waiters[it->w_head];
    corio_future *c = it->doneq[it->dq_head];
    it->w_head = (it->w_head + 1) % it->n;
    it->w_len--;
    if (corio_future_set_result_ptr(w, c, NULL) == 0) { /* else w was cancelled: c stays */
      it->dq_head = (it->dq_head + 1) % it->n;
      it->dq_len--;
      it->returned++;
    }
    corio_future_unref(w);
  }
}

static void ac_child_done(corio_future *child, void *arg)
{
  corio_as_completed *it = arg;
  if (!it->freed) {
    it->doneq[(it->dq_head + it->dq_len) % it->n] = child;
    it->dq_len++;
    ac_serve(it);
  }
  ac_release(it);
}

corio_as_completed *corio_as_completed_new(corio_loop *loop, corio_future *const *futs, size_t n)
{
  corio_as_completed *it;
  size_t i;
  if ((!futs && n) || !loop) {
    if (futs) unref_all(futs, n);
    return NULL;
  }
  for (i = 0; i < n; i++)
    if (!futs[i]) {
      unref_all(futs, n);
      return NULL;
    }
  it = corio__calloc(1, sizeof(*it));
  if (!it) goto oom;
  it->loop = loop;
  it->n = n;
  it->refs = 1;
  it->children = corio__calloc(n ? n : 1, sizeof(corio_future *));
  it->doneq = corio__calloc(n ? n : 1, sizeof(corio_future *));
  it->waiters = corio__calloc(n ? n : 1, sizeof(corio_future *));
  if (!it->children || !it->doneq || !it->waiters) goto oom;
  if (n) memcpy(it->children, futs, n * sizeof(corio_future *));
  for (i = 0; i < n; i++) {
    it->refs++;
    if (corio__future_on_done(loop, futs[i], ac_child_done, it) < 0) {
      /* cannot watch it: hand it out as finished (its state tells the caller) */
      it->refs--;
      it->doneq[(it->dq_head + it->dq_len) % n] = futs[i];
      it->dq_len++;
    }
  }
  return it;
oom:
  if (it) {
    corio__free(it->children);
    corio__free(it->doneq);
    corio__free(it->waiters);
    corio__free(it);
  }
  unref_all(futs, n);
  return NULL;
}

/* Forget the next() futures their owner cancelled while they waited (a wait_for around a
 * next(), a cancelled task awaiting one). ac_serve skips them too, but only when a child
 * finishes; until then they would still count as claims on the children not yet returned, and
 * a next() asked for in between could answer QUEUE_EMPTY while children remain. O(waiters),
 * so only run when that answer is about to be given. */
static void ac_drop_cancelled(corio_as_completed *it)
{
  size_t i, k = 0, len = it->w_len;
  corio_future *w;
  for (i = 0; i < len; i++) {
    w = it->waiters[(it->w_head + i) % it->n];
    if (corio_future_done(w))
      corio_future_unref(w);
    else
      it->waiters[(it->w_head + k++) % it->n] = w; /* k <= i: compacts in place, order kept */
  }
  it->w_len = k;
}

corio_future *corio_as_completed_next(corio_as_completed *it)
{
  corio_future *w;
  if (!it || it->freed) return corio__future_failed(it ? it->loop : corio__loop_current(), -EINVAL);
  if (it->dq_len && !it->w_len) {
    w = corio_future_new(it->loop);
    if (!w) return NULL;
    corio_future_set_result_ptr(w, it->doneq[it->dq_head], NULL);
    it->dq_head = (it->dq_head + 1) % it->n;
    it->dq_len--;
    it->returned++;
    return w;
  }
  if (it->returned + it->w_len >= it->n) ac_drop_cancelled(it);
  if (it->returned + it->w_len >= it->n) return corio__future_failed(it->loop, CORIO_E_QUEUE_EMPTY);
  w = corio_future_new(it->loop);
  if (!w) return NULL;
  it->waiters[(it->w_head + it->w_len) % it->n] = corio_future_ref(w);
  it->w_len++;
  return w;
}

void corio_as_completed_free(corio_as_completed *it)
{
  size_t i;
  if (!it || it->freed) return;
  it->freed = true;
  while (it->w_len) {
    corio_future *w = it->waiters[it->w_head];
    it->w_head = (it->w_head + 1) % it->n;
    it->w_len--;
    corio_future_cancel(w);
    corio_future_unref(w);
  }
  for (i = 0; i < it->n; i++) corio_future_cancel(it->children[i]);
  ac_release(it);
}

/* ---------------- task groups ---------------- */

struct tg_wait {
  corio_future fut;
  corio_task_group *g;
};

struct corio_task_group {
  corio_loop *loop;
  corio_task **tasks;
  size_t n, cap, pending;
  int first_err;
  bool cancelling, closed;
  struct tg_wait *waiter;
};

static void tg_cancel_all(corio_task_group *g)
{
  size_t i;
  for (i = 0; i < g->n; i++) corio_task_cancel(g->tasks[i]);
}

static void tg_finish(corio_task_group *g)
{
  if (!g->waiter || g->pending || corio_future_done(&g->waiter->fut)) return;
  g->closed = true;
  if (g->first_err)
    corio_future_set_error(&g->waiter->fut, g->first_err);
  else if (g->cancelling)
    corio_future_set_cancelled(&g->waiter->fut);
  else
    corio_future_set_result(&g->waiter->fut, 0);
}

static int tg_wait_cancel(corio_future *f)
{
  struct tg_wait *w = corio_container_of(f, struct tg_wait, fut);
  w->g->cancelling = true;
  tg_cancel_all(w->g);
  tg_finish(w->g);
  return 1;
}

static void tg_wait_destroy(corio_future *f)
{
  corio__free(corio_container_of(f, struct tg_wait, fut));
}
static const corio_future_ops tg_wait_ops = {tg_wait_cancel, tg_wait_destroy, "task_group"};

static void tg_child_done(corio_future *f, void *arg)
{
  corio_task_group *g = arg;
  int err = corio_future_error(f);
  g->pending--;
  if (err < 0 && err != -ECANCELED && !g->first_err) {
    g->first_err = err;
    tg_cancel_all(g);
  }
  tg_finish(g);
}

corio_task_group *corio_task_group_new(corio_loop *loop)
{
  corio_task_group *g;
  if (!loop) return NULL;
  g = corio__calloc(1, sizeof(*g));
  if (g) g->loop = loop;
  return g;
}

int corio_task_group_spawn(corio_task_group *g, corio_task *t)
{
  int rc;
  if (!g || !t) return -EINVAL;
  if (g->closed) return CORIO_E_INVALID_STATE;
  if (t->loop != g->loop) return CORIO_E_WRONG_LOOP;
  if (g->n == g->cap) {
    size_t ncap = g->cap ? g->cap * 2 : 8;
    corio_task **nt = corio__realloc(g->tasks, ncap * sizeof(*nt));
    if (!nt) return -ENOMEM;
    g->tasks = nt;
    g->cap = ncap;
  }
  if (!(t->flags & CORIO__T_STARTED)) {
    rc = corio_task_start(t);
    if (rc < 0) return rc;
  }
  rc = corio_future_add_done_callback(&t->fut, tg_child_done, g);
  if (rc < 0) return rc;
  g->tasks[g->n++] = t;
  corio_future_ref(&t->fut);
  g->pending++;
  if (g->first_err || g->cancelling) corio_task_cancel(t);
  return 0;
}

corio_future *corio_task_group_wait(corio_task_group *g)
{
  struct tg_wait *w;
  if (!g) return corio__future_failed(corio__loop_current(), -EINVAL);
  if (!g->waiter) {
    w = corio__calloc(1, sizeof(*w));
    if (!w) return NULL;
    corio_future_init(&w->fut, g->loop, &tg_wait_ops);
    w->g = g;
    g->waiter = w;
    tg_finish(g);
  }
  return corio_future_ref(&g->waiter->fut);
}

void corio_task_group_cancel(corio_task_group *g)
{
  if (!g) return;
  g->cancelling = true;
  tg_cancel_all(g);
}

int corio_task_group_free(corio_task_group *g)
{
  size_t i;
  if (!g) return -EINVAL;
  if (g->pending) return -EBUSY;
  for (i = 0; i < g->n; i++) corio_future_unref(&g->tasks[i]->fut);
  if (g->waiter) {
    g->waiter->g = NULL;
    corio_future_unref(&g->waiter->fut);
  }
  corio__free(g->tasks);
  corio__free(g);
  return 0;
}
