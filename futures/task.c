/*
 * Stackless tasks: the machinery behind the CORIO_* macros of task.h.
 *
 * A started task holds one reference for the loop until it is done, so a pending task can never
 * be freed under the loop (asyncio gh-88831). Awaiting a pending future registers one done
 * callback (task_wakeup); the future's callbacks run from the ready queue, so a completion costs
 * one ready entry and resumes the task directly from it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "internal.h"

static int task_cancel_op(corio_future *f);
static void task_destroy(corio_future *f);
static const corio_future_ops task_ops = {task_cancel_op, task_destroy, "task"};

corio_task *corio_task_of(corio_future *f)
{
  return f && f->ops == &task_ops ? corio_container_of(f, corio_task, fut) : NULL;
}

static void task_destroy(corio_future *f)
{
  corio_task *t = corio_container_of(f, corio_task, fut);
  if (t->frame) corio__free(t->frame);
}

static void init_common(corio_task *t, corio_loop *loop, corio_task_step step)
{
  corio_future_init(&t->fut, loop, &task_ops);
  t->loop = loop;
  t->step = step;
  t->cancel_err = -ECANCELED;
  corio__list_init(&t->live);
}

corio_task *corio__task_new(corio_loop *loop, corio_task_step step, size_t size, size_t offset)
{
  char *frame;
  corio_task *t;
  if (!loop || !step || size < offset + sizeof(corio_task)) return NULL;
  frame = corio__calloc(1, size);
  if (!frame) return NULL;
  t = (corio_task *)(void *)(frame + offset);
  init_common(t, loop, step);
  t->frame = frame;
  return t;
}

int corio_task_init(corio_task *t, corio_loop *loop, corio_task_step step)
{
  if (!t || !loop || !step) return -EINVAL;
  memset(t, 0, sizeof(*t));
  init_common(t, loop, step);
  return 0;
}

static void task_release(corio_task *t)
{
  corio__list_remove(&t->live);
  corio__loop_alive_add(t->loop, -1);
  corio_future_unref(&t->fut);
}

static void run_step(corio_task *t)
{
  corio_step s;
  t->flags |= CORIO__T_RUNNING;
  s = t->step(t);
  t->flags &= ~CORIO__T_RUNNING;
  if (s.corio__code == 0) task_release(t);
}

static void task_first_step(void *arg)
{
  corio_task *t = arg;
  if (corio_future_done(&t->fut)) {
    task_release(t);
    return;
  }
  if (t->flags & CORIO__T_CANCEL) { /* cancelled before it ran: the body never runs */
    corio_task_timeout_clear(t);
    if (t->cancel_err == -ECANCELED)
      corio_future_set_cancelled(&t->fut);
    else
      corio_future_set_error(&t->fut, t->cancel_err);
    task_release(t);
    return;
  }
  run_step(t);
}

int corio_task_start(corio_task *t)
{
  int rc;
  if (!t || !t->loop || !t->step) return -EINVAL;
  if ((t->flags & CORIO__T_STARTED) || corio_future_done(&t->fut)) return CORIO_E_INVALID_STATE;
  if (!corio__loop_on_thread(t->loop)) return CORIO_E_WRONG_THREAD;
  corio_future_ref(&t->fut); /* the loop's reference, dropped when the task is done */
  rc = corio__loop_schedule(t->loop, task_first_step, t);
  if (rc < 0) {
    corio_future_unref(&t->fut);
    return rc;
  }
  t->flags |= CORIO__T_STARTED;
  corio__loop_task_link(t->loop, &t->live);
  corio__loop_alive_add(t->loop, 1);
  return 0;
}

corio_future *corio_task_spawn(corio_task *t)
{
  if (corio_task_start(t) < 0) return NULL;
  return corio_future_ref(&t->fut);
}

/* ---- awaiting ---- */

static void task_wakeup(corio_future *f, void *arg)
{
  corio_task *t = arg;
  (void)f;
  t->awaited = t->awaiting; /* the reference taken by the await moves over */
  t->awaiting = NULL;
  corio__future_mark_retrieved(t->awaited);
  run_step(t);
}

/* A loop-less future (an executor job) completes in another thread: hop to the task's loop. */
static void foreign_resume(void *arg)
{
  corio_task *t = arg;
  if (t->awaiting) task_wakeup(t->awaiting, t);
}
static void foreign_wakeup(corio_future *f, void *arg)
{
  corio_task *t = arg;
  (void)f;
  if (corio_call_soon_threadsafe(t->loop, foreign_resume, t) < 0)
    fprintf(stderr, "corio: cannot resume task %p: its loop is closing\n", (void *)t);
}

static void drop_awaited(corio_task *t)
{
  if (t->awaited) {
    corio_future_unref(t->awaited);
    t->awaited = NULL;
  }
}

static int unwind_now(corio_task *t, int err)
{
  if (!t->err) t->err = err;
  t->flags |= CORIO__T_UNWIND;
  return 0;
}

int corio__task_await(corio_task *t, corio_future *f, const char *file, int line)
{
  int rc;
  drop_awaited(t);
  t->file = file;
  t->line = line;
  if (corio__unlikely(!f)) return unwind_now(t, -ENOMEM);
  if (corio__unlikely(f->loop && f->loop != t->loop)) {
    corio_future_unref(f);
    return unwind_now(t, CORIO_E_WRONG_LOOP);
  }
  if (corio_future_done(f)) {
    t->awaited = f;
    corio__future_mark_retrieved(f);
    return 0;
  }
  if ((t->flags & CORIO__T_CANCEL) && !(t->flags & CORIO__T_FINALLY)) {
    /* A cancellation is pending: deliver it here, cancelling what we would have waited on. */
    corio_future_cancel(f);
    corio_future_unref(f);
    return unwind_now(t, t->cancel_err);
  }
  rc = corio_future_add_done_callback(f, f->loop ? task_wakeup : foreign_wakeup, t);
  if (corio__unlikely(rc < 0)) {
    corio_future_unref(f);
    return unwind_now(t, rc);
  }
  t->awaiting = f;
  return 1;
}

int corio__task_resumed(corio_task *t, int try_)
{
  corio_future *f = t->awaited;
  int e;
  if (t->flags & CORIO__T_UNWIND) {
    t->flags &= ~CORIO__T_UNWIND;
    return !(t->flags & CORIO__T_FINALLY);
  }
  if (t->flags & CORIO__T_FINALLY) return 0;
  if (f && corio_future_cancelled(f) && (t->flags & CORIO__T_CANCEL)) {
    t->err = t->cancel_err;
    return 1;
  }
  if (try_ && f) {
    e = corio_future_error(f);
    if (e < 0) {
      t->err = e;
      return 1;
    }
  }
  return 0;
}

static void yield_resume(void *arg)
{
  corio_task *t = arg;
  t->flags &= ~CORIO__T_YIELD;
  if ((t->flags & CORIO__T_CANCEL) && !(t->flags & CORIO__T_FINALLY)) unwind_now(t, t->cancel_err);
  run_step(t);
}

int corio__task_yield(corio_task *t, const char *file, int line)
{
  int rc;
  drop_awaited(t);
  t->file = file;
  t->line = line;
  if ((t->flags & CORIO__T_CANCEL) && !(t->flags & CORIO__T_FINALLY))
    return unwind_now(t, t->cancel_err);
  rc = corio__loop_schedule(t->loop, yield_resume, t);
  if (rc < 0) return unwind_now(t, rc);
  t->flags |= CORIO__T_YIELD;
  return 1;
}

int corio__task_throw(corio_task *t, int err)
{
  if (err >= 0) err = -EINVAL;
  if (t->flags & CORIO__T_FINALLY) {
    if (!t->err) t->err = err;
    return 0;
  }
  t->err = err;
  return 1;
}

void corio__task_enter_finally(corio_task *t)
{
  t->flags |= CORIO__T_FINALLY;
  corio_task_timeout_clear(t);
}

corio_step corio__task_finish(corio_task *t)
{
  corio_step s = {0};
  drop_awaited(t);
  corio_task_timeout_clear(t);
  if (t->err) {
    /* a value returned before the error is dropped */
    if (t->ret_kind == 1 && t->ret_dtor && t->ret_p) t->ret_dtor(t->ret_p);
    if (t->ret_kind == 2) corio__free(t->ret_p);
    if (t->err == -ECANCELED && (t->flags & CORIO__T_CANCEL))
      corio_future_set_cancelled(&t->fut);
    else
      corio_future_set_error(&t->fut, t->err);
  } else if (t->ret_kind == 2) {
    corio_bytes b = {t->ret_p, (size_t)t->ret_i};
    corio_future_set_result_bytes(&t->fut, b);
  } else if (t->ret_kind == 1) {
    corio_future_set_result_ptr(&t->fut, t->ret_p, t->ret_dtor);
  } else {
    corio_future_set_result(&t->fut, t->ret_i);
  }
  return s;
}

corio_step corio__task_bad_resume(corio_task *t, const char *file, int line)
{
  fprintf(stderr,
          "corio: task %p resumed at %s:%d, but that await is not a case of the task's switch: "
          "an await inside a user `switch` statement? (task step ends at %s:%d)\n",
          (void *)t, t->file ? t->file : "?", t->resume, file, line);
  abort();
}

corio_step corio__task_fell_out(corio_task *t, const char *file, int line)
{
  fprintf(stderr,
          "corio: control left the body of task %p without CORIO_RETURN/CORIO_END (a stray "
          "`break` out of the body?), step ending at %s:%d, last await at %s:%d\n",
          (void *)t, file, line, t->file ? t->file : "?", t->line);
  abort();
}

/* ---- cancellation ---- */

static void cancel_resume(void *arg)
{
  corio_task *t = arg;
  run_step(t);
}

static int task_cancel_op(corio_future *f)
{
  corio_task *t = corio_container_of(f, corio_task, fut);
  corio_future *w;
  if (corio_future_done(f)) return 0;
  if (!(t->flags & CORIO__T_STARTED)) return corio_future_set_cancelled(f) == 0;
  if (t->flags & CORIO__T_CANCEL) return 1;
  t->flags |= CORIO__T_CANCEL;
  if ((t->flags & (CORIO__T_FINALLY | CORIO__T_RUNNING)) || !t->awaiting) return 1;
  w = t->awaiting;
  if (corio_future_cancel(w)) return 1; /* the wakeup will see it cancelled */
  if (corio_future_done(w)) return 1;   /* its result is on the way: delivered, then cancel */
  /* The awaited future cannot be cancelled (a running executor job): stop waiting for it, as
   * asyncio does for a wrapped concurrent future, and unwind on the next iteration. */
  if (corio_future_remove_done_callback(w, w->loop ? task_wakeup : foreign_wakeup, t) < 0)
    return 1; /* its callback is already running: the wakeup comes */
  t->awaiting = NULL;
  corio_future_unref(w);
  unwind_now(t, t->cancel_err);
  if (corio__loop_schedule(t->loop, cancel_resume, t) < 0) {
    fprintf(stderr, "corio: out of memory cancelling task %p\n", (void *)t);
    abort(); /* the task would be lost forever; there is no safe way on */
  }
  return 1;
}

int corio_task_cancel(corio_task *t)
{
  return t ? corio_future_cancel(&t->fut) : 0;
}

/* ---- timeout scopes ---- */

static void timeout_fire(void *arg)
{
  corio_task *t = arg;
  t->timeout = 0;
  if (corio_future_done(&t->fut) || (t->flags & CORIO__T_FINALLY)) return;
  t->cancel_err = -ETIMEDOUT;
  task_cancel_op(&t->fut);
}

int corio_task_timeout(corio_task *t, double delay_s)
{
  if (!t || !(delay_s >= 0)) return -EINVAL;
  corio_task_timeout_clear(t);
  return corio_call_later(t->loop, delay_s, timeout_fire, t, &t->timeout);
}

void corio_task_timeout_clear(corio_task *t)
{
  if (t && t->timeout) {
    corio_handle_cancel(t->loop, t->timeout);
    t->timeout = 0;
  }
}
