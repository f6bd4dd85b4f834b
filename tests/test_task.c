/* Tasks: awaiting, unwinding to FINALLY, cancellation at every await kind, timeouts, misuse. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(task, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

/* A configurable task: awaits `what` then returns 7; counts its FINALLY runs. */
enum { W_SLEEP, W_FUTURE, W_CHILD, W_YIELD, W_FAILED_TRY, W_FAILED_PLAIN, W_THROW, W_TRY };
struct probe {
  corio_task task;
  int what;
  double delay;
  corio_future *fut;   /* W_FUTURE: awaited (ref kept by the test) */
  struct probe *child; /* W_CHILD */
  int finally_runs, body_runs, after_await, err_in_finally, catch_it;
};

static corio_step probe_step(corio_task *t)
{
  struct probe *p = corio_container_of(t, struct probe, task);
  CORIO_BEGIN(t);
  p->body_runs++;
  switch (p->what) { /* a user switch with no await inside is fine */
  case W_THROW:
    CORIO_THROW(t, -EPROTO);
    break;
  case W_TRY:
    CORIO_TRY(t, -ENOSPC);
    break;
  default:
    break;
  }
  if (p->what == W_SLEEP) CORIO_AWAIT_TRY(t, corio_sleep(t->loop, p->delay));
  if (p->what == W_FUTURE) CORIO_AWAIT_TRY(t, corio_future_ref(p->fut));
  if (p->what == W_CHILD) CORIO_AWAIT_TRY(t, corio_future_ref(&p->child->task.fut));
  if (p->what == W_YIELD) CORIO_YIELD(t);
  if (p->what == W_FAILED_TRY) CORIO_AWAIT_TRY(t, corio_future_ref(p->fut));
  if (p->what == W_FAILED_PLAIN) CORIO_AWAIT(t, corio_future_ref(p->fut));
  p->after_await++;
  CORIO_RETURN(t, 7);
  CORIO_FINALLY(t);
  p->finally_runs++;
  p->err_in_finally = corio_task_error(t);
  if (p->catch_it) corio_task_catch(t);
  CORIO_END(t);
}

static struct probe *probe_new(int what)
{
  struct probe *p = corio_task_new(loop, probe_step, struct probe, task);
  cr_assert_not_null(p);
  p->what = what;
  p->delay = 0.01;
  return p;
}

static void run(struct probe *p)
{
  cr_assert_eq(corio_loop_run_until_complete(loop, &p->task.fut), 0);
}

Test(task, returns_value_and_runs_finally_once)
{
  struct probe *p = probe_new(W_SLEEP);
  corio_task_start(&p->task);
  run(p);
  cr_assert_eq(corio_future_int(&p->task.fut), 7);
  cr_assert_eq(p->finally_runs, 1);
  cr_assert_eq(p->err_in_finally, 0);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(task, await_try_error_unwinds)
{
  struct probe *p = probe_new(W_FAILED_TRY);
  p->fut = corio_future_new(loop);
  corio_future_set_error(p->fut, -ECONNRESET);
  corio_task_start(&p->task);
  run(p);
  cr_assert_eq(corio_future_error(&p->task.fut), -ECONNRESET);
  cr_assert_eq(p->after_await, 0);
  cr_assert_eq(p->finally_runs, 1);
  cr_assert_eq(p->err_in_finally, -ECONNRESET);
  corio_future_unref(p->fut);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(task, plain_await_error_does_not_unwind)
{
  struct probe *p = probe_new(W_FAILED_PLAIN);
  p->fut = corio_future_new(loop);
  corio_future_set_error(p->fut, -ECONNRESET);
  corio_task_start(&p->task);
  run(p);
  cr_assert_eq(corio_future_int(&p->task.fut), 7);
  cr_assert_eq(p->after_await, 1);
  corio_future_unref(p->fut);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(task, throw_try_and_catch)
{
  struct probe *a = probe_new(W_THROW), *b = probe_new(W_TRY), *c = probe_new(W_THROW);
  c->catch_it = 1;
  corio_task_start(&a->task);
  corio_task_start(&b->task);
  corio_task_start(&c->task);
  run(a);
  run(b);
  run(c);
  cr_assert_eq(corio_future_error(&a->task.fut), -EPROTO);
  cr_assert_eq(corio_future_error(&b->task.fut), -ENOSPC);
  cr_assert_eq(corio_future_error(&c->task.fut), 0); /* caught in FINALLY */
  cr_assert_eq(c->err_in_finally, -EPROTO);
  cr_assert_eq(a->finally_runs + b->finally_runs + c->finally_runs, 3);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&b->task.fut);
  corio_future_unref(&c->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

static void cancel_case(int what)
{
  struct probe *p = probe_new(what), *child = NULL;
  corio_handle h;
  if (what == W_SLEEP) p->delay = 5.0;
  if (what == W_FUTURE) p->fut = corio_future_new(loop);
  if (what == W_CHILD) {
    child = probe_new(W_SLEEP);
    child->delay = 5.0;
    p->child = child;
    corio_task_start(&child->task);
  }
  corio_task_start(&p->task);
  corio_call_later(loop, 0.02, cancel_cb, &p->task, &h);
  if (what == W_YIELD) corio_call_soon(loop, cancel_cb, &p->task, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, &p->task.fut), 0);
  corio_handle_cancel(loop, h); /* the yield case finishes first: the timer must not outlive it */
  cr_assert(corio_future_cancelled(&p->task.fut), "what=%d", what);
  cr_assert_eq(p->finally_runs, 1);
  cr_assert_eq(p->err_in_finally, -ECANCELED);
  cr_assert_eq(p->after_await, 0);
  if (what == W_FUTURE) {
    cr_assert(corio_future_cancelled(p->fut), "the awaited future is cancelled too");
    corio_future_unref(p->fut);
  }
  if (child) {
    drain();
    cr_assert(corio_future_cancelled(&child->task.fut), "the awaited child is cancelled too");
    cr_assert_eq(child->finally_runs, 1);
    corio_future_unref(&child->task.fut);
  }
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(task, cancel_while_sleeping)
{
  cancel_case(W_SLEEP);
}
Test(task, cancel_while_awaiting_future)
{
  cancel_case(W_FUTURE);
}
Test(task, cancel_while_awaiting_child_task)
{
  cancel_case(W_CHILD);
}
Test(task, cancel_while_yielding)
{
  cancel_case(W_YIELD);
}

Test(task, cancelled_before_start_never_runs)
{
  struct probe *p = probe_new(W_SLEEP);
  corio_task_start(&p->task);
  cr_assert_eq(corio_task_cancel(&p->task), 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, &p->task.fut), 0);
  cr_assert(corio_future_cancelled(&p->task.fut));
  cr_assert_eq(p->body_runs, 0);
  cr_assert_eq(p->finally_runs, 0);
  cr_assert_eq(corio_task_cancel(&p->task), 0); /* done already */
  cr_assert_eq(corio_task_start(&p->task), CORIO_E_INVALID_STATE);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The awaited future completes in the same turn as the cancel request: the result is delivered
 * (nothing is lost) and the cancellation is raised at the next await that would suspend. */
struct racer {
  corio_task task;
  corio_future *f;
  int64_t got;
  int finally_err;
};
static corio_step racer_step(corio_task *t)
{
  struct racer *r = corio_container_of(t, struct racer, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT(t, corio_future_ref(r->f));
  r->got = corio_future_int(corio_awaited(t));
  CORIO_AWAIT(t, corio_sleep(t->loop, 5));
  r->got = -1;
  CORIO_FINALLY(t);
  r->finally_err = corio_task_error(t);
  CORIO_END(t);
}
static void complete_then_cancel(void *arg)
{
  struct racer *r = arg;
  corio_future_set_result(r->f, 55);
  corio_task_cancel(&r->task);
}

Test(task, cancel_racing_completion_loses_nothing)
{
  struct racer *r = corio_task_new(loop, racer_step, struct racer, task);
  r->f = corio_future_new(loop);
  corio_task_start(&r->task);
  corio_call_later(loop, 0.01, complete_then_cancel, r, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, &r->task.fut), 0);
  cr_assert_eq(r->got, 55);
  cr_assert(corio_future_cancelled(&r->task.fut));
  cr_assert_eq(r->finally_err, -ECANCELED);
  corio_future_unref(r->f);
  corio_future_unref(&r->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Awaits inside FINALLY are shielded from cancellation. */
struct cleaner {
  corio_task task;
  double cleaned_after;
  int cleanup_err;
};
static corio_step cleaner_step(corio_task *t)
{
  struct cleaner *c = corio_container_of(t, struct cleaner, task);
  double t0;
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 5));
  CORIO_FINALLY(t);
  c->cleaned_after = corio_loop_time(t->loop);
  CORIO_AWAIT(t, corio_sleep(t->loop, 0.05));
  c->cleanup_err = corio_future_error(corio_awaited(t));
  t0 = c->cleaned_after;
  c->cleaned_after = corio_loop_time(t->loop) - t0;
  CORIO_END(t);
}

Test(task, finally_awaits_are_shielded)
{
  struct cleaner *c = corio_task_new(loop, cleaner_step, struct cleaner, task);
  corio_task_start(&c->task);
  corio_call_later(loop, 0.01, cancel_cb, &c->task, NULL);
  corio_call_later(loop, 0.03, cancel_cb, &c->task, NULL); /* again, while in FINALLY */
  cr_assert_eq(corio_loop_run_until_complete(loop, &c->task.fut), 0);
  cr_assert(corio_future_cancelled(&c->task.fut));
  cr_assert_eq(c->cleanup_err, 0);
  cr_assert_geq(c->cleaned_after, 0.05);
  corio_future_unref(&c->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Timeout scope: a block of awaits under one deadline. */
struct scoped {
  corio_task task;
  int steps;
};
static corio_step scoped_step(corio_task *t)
{
  struct scoped *s = corio_container_of(t, struct scoped, task);
  CORIO_BEGIN(t);
  CORIO_TRY(t, corio_task_timeout(t, 0.05));
  for (s->steps = 0; s->steps < 10; s->steps++) CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.02));
  corio_task_timeout_clear(t);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(task, timeout_scope)
{
  struct scoped *s = corio_task_new(loop, scoped_step, struct scoped, task);
  corio_task_start(&s->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, &s->task.fut), 0);
  cr_assert_eq(corio_future_error(&s->task.fut), -ETIMEDOUT);
  cr_assert(s->steps >= 1 && s->steps <= 3, "steps=%d", s->steps);
  corio_future_unref(&s->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(task, await_future_of_another_loop_is_an_error)
{
  corio_loop *other;
  struct probe *p = probe_new(W_FUTURE);
  cr_assert_eq(corio_loop_new(&other, NULL), 0);
  p->fut = corio_future_new(other);
  corio_task_start(&p->task);
  run(p);
  cr_assert_eq(corio_future_error(&p->task.fut), CORIO_E_WRONG_LOOP);
  corio_future_unref(p->fut);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(other), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Fire and forget: the loop owns a pending task; its unretrieved error is reported. */
static int exc_n;
static void exc_handler(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)arg;
  if (strstr(ctx->message, "task") && ctx->error == -EPROTO) exc_n++;
}

Test(task, fire_and_forget_owned_by_loop)
{
  struct probe *p = probe_new(W_THROW), *q = probe_new(W_SLEEP);
  corio_future *s;
  exc_n = 0;
  corio_loop_set_exception_handler(loop, exc_handler, NULL);
  corio_task_start(&p->task);
  corio_task_start(&q->task);
  corio_future_unref(&p->task.fut); /* the loop keeps both alive until done */
  corio_future_unref(&q->task.fut);
  s = corio_sleep(loop, 0.05);
  cr_assert_eq(corio_loop_run_until_complete(loop, s), 0);
  corio_future_unref(s);
  drain();
  cr_assert_eq(exc_n, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Child tasks embedded in the parent's frame (corio_task_init). */
struct parent {
  corio_task task;
  struct probe kids[3];
  int i;
  int64_t sum;
};
static corio_step parent_step(corio_task *t)
{
  struct parent *p = corio_container_of(t, struct parent, task);
  CORIO_BEGIN(t);
  for (p->i = 0; p->i < 3; p->i++) {
    corio_task_init(&p->kids[p->i].task, t->loop, probe_step);
    p->kids[p->i].what = W_SLEEP;
    p->kids[p->i].delay = 0.01;
    CORIO_TRY(t, corio_task_start(&p->kids[p->i].task));
  }
  for (p->i = 0; p->i < 3; p->i++) {
    CORIO_AWAIT_TRY(t, corio_future_ref(&p->kids[p->i].task.fut));
    p->sum += corio_future_int(corio_awaited(t));
  }
  CORIO_RETURN(t, p->sum);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(task, embedded_children)
{
  struct parent *p = corio_task_new(loop, parent_step, struct parent, task);
  int i;
  corio_task_start(&p->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, &p->task.fut), 0);
  cr_assert_eq(corio_future_int(&p->task.fut), 21);
  drain();
  for (i = 0; i < 3; i++) corio_future_unref(&p->kids[i].task.fut);
  corio_future_unref(&p->task.fut);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(task, dump_names_file_and_line)
{
  struct probe *p = probe_new(W_SLEEP);
  char buf[4096] = {0};
  FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
  p->delay = 5;
  corio_task_start(&p->task);
  cr_assert_geq(corio_loop_run_once(loop, 0), 0);
  corio_loop_dump(loop, f);
  fclose(f);
  cr_assert(strstr(buf, "test_task.c:") != NULL, "%s", buf);
  cr_assert(strstr(buf, "awaiting sleep") != NULL, "%s", buf);
  cr_assert_eq(corio_loop_close(loop), -EBUSY);
  corio_task_cancel(&p->task);
  run(p);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(task, bad_input)
{
  struct probe *p;
  cr_assert_null(corio__task_new(NULL, probe_step, sizeof(struct probe), 0));
  cr_assert_null(corio__task_new(loop, NULL, sizeof(struct probe), 0));
  cr_assert_null(corio__task_new(loop, probe_step, 4, 0));
  cr_assert_eq(corio_task_init(NULL, loop, probe_step), -EINVAL);
  cr_assert_eq(corio_task_start(NULL), -EINVAL);
  cr_assert_eq(corio_task_cancel(NULL), 0);
  p = probe_new(W_SLEEP);
  cr_assert_eq(corio_task_timeout(&p->task, -1), -EINVAL);
  cr_assert_eq(corio_task_start(&p->task), 0);
  cr_assert_eq(corio_task_start(&p->task), CORIO_E_INVALID_STATE);
  run(p);
  corio_future_unref(&p->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Misuse: an await inside a user switch aborts with file and line when resumed. */
struct misuse {
  corio_task task;
  int k;
};
static corio_step bad_switch_step(corio_task *t)
{
  struct misuse *m = corio_container_of(t, struct misuse, task);
  CORIO_BEGIN(t);
  switch (m->k) {
  case 0:
    CORIO_AWAIT(t, corio_sleep(t->loop, 0.001));
    break;
  }
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(task, await_inside_user_switch_aborts, .signal = SIGABRT)
{
  struct misuse *m = corio_task_new(loop, bad_switch_step, struct misuse, task);
  corio_task_start(&m->task);
  corio_loop_run_until_complete(loop, &m->task.fut);
}

static corio_step stray_break_step(corio_task *t)
{
  CORIO_BEGIN(t);
  CORIO_AWAIT(t, corio_sleep(t->loop, 0.001));
  break;
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(task, stray_break_aborts, .signal = SIGABRT)
{
  struct misuse *m = corio_task_new(loop, stray_break_step, struct misuse, task);
  corio_task_start(&m->task);
  corio_loop_run_until_complete(loop, &m->task.fut);
}

static int alive_reports;
static char alive_msg[256];
static void alive_handler(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)arg;
  if (strstr(ctx->message, "alive at close")) {
    alive_reports++;
    snprintf(alive_msg, sizeof(alive_msg), "%s", ctx->message);
  }
}

Test(task, debug_mode_reports_tasks_alive_at_close)
{
  corio_loop *dbg;
  corio_loop_opts o = {0};
  struct probe *p;
  o.debug = 1;
  cr_assert_eq(corio_loop_new(&dbg, &o), 0);
  corio_loop_set_exception_handler(dbg, alive_handler, NULL);
  p = corio_task_new(dbg, probe_step, struct probe, task);
  p->what = W_SLEEP;
  p->delay = 5;
  corio_task_start(&p->task);
  corio_loop_run_once(dbg, 0);
  cr_assert_eq(corio_loop_close(dbg), -EBUSY);
  cr_assert_eq(alive_reports, 1);
  cr_assert(strstr(alive_msg, "test_task.c:") != NULL, "%s", alive_msg);
  corio_task_cancel(&p->task);
  corio_loop_run_until_complete(dbg, &p->task.fut);
  corio_future_unref(&p->task.fut);
  while (corio_loop_run_once(dbg, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(dbg), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
