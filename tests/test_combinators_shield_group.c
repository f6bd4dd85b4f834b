/* corio_shield and task groups. */
#include <criterion/criterion.h>
#include <errno.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(shield_group, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}
static void run(corio_future *f)
{
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
}

struct worker {
  corio_task task;
  double secs;
  int64_t value;
  int err;
  int body_runs, finally_runs, err_in_finally;
};
static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);
  CORIO_BEGIN(t);
  w->body_runs++;
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, w->secs));
  if (w->err) CORIO_THROW(t, w->err);
  CORIO_RETURN(t, w->value);
  CORIO_FINALLY(t);
  w->finally_runs++;
  w->err_in_finally = corio_task_error(t);
  CORIO_END(t);
}
/* A worker, not started (a task group starts it). */
static struct worker *worker_new(double secs, int64_t value, int err)
{
  struct worker *w = corio_task_new(loop, worker_step, struct worker, task);
  cr_assert_not_null(w);
  w->secs = secs;
  w->value = value;
  w->err = err;
  return w;
}
static struct worker *worker(double secs, int64_t value, int err)
{
  struct worker *w = worker_new(secs, value, err);
  cr_assert_eq(corio_task_start(&w->task), 0);
  return w;
}
static void unref_workers(struct worker **w, int n)
{
  int i;
  for (i = 0; i < n; i++) {
    corio_future_error(&w[i]->task.fut);
    corio_future_unref(&w[i]->task.fut);
  }
}

/* ---------------- shield ---------------- */

Test(shield_group, cancelling_the_outer_leaves_the_inner_running)
{
  struct worker *w = worker(0.03, 5, 0);
  corio_future *s = corio_shield(corio_future_ref(&w->task.fut));
  cr_assert_not_null(s);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(s), 1);
  cr_assert(corio_future_cancelled(s));
  cr_assert_not(corio_future_done(&w->task.fut));
  run(&w->task.fut);
  cr_assert_eq(corio_future_int(&w->task.fut), 5, "the inner finished untouched");
  cr_assert_eq(w->err_in_finally, 0);
  drain();
  cr_assert(corio_future_cancelled(s), "the outer stays cancelled");
  corio_future_unref(s);
  corio_future_unref(&w->task.fut);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The shield is dropped by its owner right after the cancel: the inner still completes. */
Test(shield_group, inner_outlives_a_dropped_shield)
{
  struct worker *w = worker(0.01, 9, 0);
  corio_future *s = corio_shield(corio_future_ref(&w->task.fut));
  corio_future_cancel(s);
  corio_future_unref(s);
  run(&w->task.fut);
  cr_assert_eq(corio_future_int(&w->task.fut), 9);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, mirrors_value_and_error)
{
  struct worker *w = worker(0.001, 6, 0), *e = worker(0.001, 0, -EROFS);
  corio_future *s = corio_shield(corio_future_ref(&w->task.fut));
  corio_future *se = corio_shield(corio_future_ref(&e->task.fut));
  corio_future *done = corio_future_new(loop), *sd;
  run(s);
  run(se);
  cr_assert_eq(corio_future_int(s), 6);
  cr_assert_eq(corio_future_error(se), -EROFS);
  corio_future_set_result(done, 4);
  sd = corio_shield(done);
  run(sd);
  cr_assert_eq(corio_future_int(sd), 4);
  corio_future_unref(s);
  corio_future_unref(se);
  corio_future_unref(sd);
  corio_future_unref(&w->task.fut);
  corio_future_error(&e->task.fut);
  corio_future_unref(&e->task.fut);
  cr_assert_null(corio_shield(NULL));
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A task awaiting a shielded child is cancelled: the task unwinds, the child goes on. */
struct guard {
  corio_task task;
  struct worker *child;
  int finally_runs, err_in_finally;
};
static corio_step guard_step(corio_task *t)
{
  struct guard *g = corio_container_of(t, struct guard, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_shield(corio_future_ref(&g->child->task.fut)));
  CORIO_RETURN(t, corio_future_int(corio_awaited(t)));
  CORIO_FINALLY(t);
  g->finally_runs++;
  g->err_in_finally = corio_task_error(t);
  CORIO_END(t);
}
Test(shield_group, task_awaiting_a_shield_is_cancelled)
{
  struct guard *g = corio_task_new(loop, guard_step, struct guard, task);
  g->child = worker(0.03, 77, 0);
  cr_assert_eq(corio_task_start(&g->task), 0);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_task_cancel(&g->task), 1);
  run(&g->task.fut);
  cr_assert(corio_future_cancelled(&g->task.fut));
  cr_assert_eq(g->finally_runs, 1);
  cr_assert_eq(g->err_in_finally, -ECANCELED);
  cr_assert_not(corio_future_done(&g->child->task.fut));
  run(&g->child->task.fut);
  cr_assert_eq(corio_future_int(&g->child->task.fut), 77);
  corio_future_unref(&g->child->task.fut);
  corio_future_unref(&g->task.fut);
  /* and not cancelled, the task gets the value */
  g = corio_task_new(loop, guard_step, struct guard, task);
  g->child = worker(0.001, 78, 0);
  cr_assert_eq(corio_task_start(&g->task), 0);
  run(&g->task.fut);
  cr_assert_eq(corio_future_int(&g->task.fut), 78);
  corio_future_unref(&g->child->task.fut);
  corio_future_unref(&g->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---------------- task groups ---------------- */

Test(shield_group, group_all_succeed)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *w[3] = {worker_new(0.01, 1, 0), worker_new(0.001, 2, 0), worker(0.005, 3, 0)};
  corio_future *wf;
  int i;
  cr_assert_not_null(g);
  for (i = 0; i < 3; i++) cr_assert_eq(corio_task_group_spawn(g, &w[i]->task), 0);
  wf = corio_task_group_wait(g);
  cr_assert_not_null(wf);
  run(wf);
  cr_assert_eq(corio_future_error(wf), 0);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(corio_future_int(&w[i]->task.fut), i + 1);
    cr_assert_eq(w[i]->finally_runs, 1);
  }
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  unref_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, group_first_failure_cancels_siblings)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *w[4] = {worker_new(30, 1, 0), worker_new(0.001, 0, -EBADMSG),
                         worker_new(0.3, 0, -EPROTO), worker_new(30, 4, 0)};
  corio_future *wf;
  double t0 = corio_loop_time(loop);
  int i;
  for (i = 0; i < 4; i++) cr_assert_eq(corio_task_group_spawn(g, &w[i]->task), 0);
  wf = corio_task_group_wait(g);
  run(wf);
  cr_assert_eq(corio_future_error(wf), -EBADMSG, "the first failure, not the cancellations");
  cr_assert_lt(corio_loop_time(loop) - t0, 5);
  cr_assert(corio_future_cancelled(&w[0]->task.fut));
  cr_assert(corio_future_cancelled(&w[2]->task.fut), "cancelled before it could fail");
  cr_assert(corio_future_cancelled(&w[3]->task.fut));
  for (i = 0; i < 4; i++) cr_assert_eq(w[i]->finally_runs, 1);
  cr_assert_eq(w[0]->err_in_finally, -ECANCELED);
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  unref_workers(w, 4);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A failure before anyone waits also cancels the siblings; the wait reports it later. */
Test(shield_group, group_failure_before_the_wait)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *w[2] = {worker_new(30, 1, 0), worker_new(0.001, 0, -ENOLINK)};
  corio_future *wf;
  int i;
  for (i = 0; i < 2; i++) cr_assert_eq(corio_task_group_spawn(g, &w[i]->task), 0);
  run(&w[0]->task.fut);
  cr_assert(corio_future_cancelled(&w[0]->task.fut));
  wf = corio_task_group_wait(g);
  run(wf);
  cr_assert_eq(corio_future_error(wf), -ENOLINK);
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  unref_workers(w, 2);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, cancelling_the_wait_cancels_all)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *w[3] = {worker_new(30, 1, 0), worker_new(30, 2, 0), worker_new(30, 3, 0)};
  corio_future *wf;
  int i;
  for (i = 0; i < 3; i++) cr_assert_eq(corio_task_group_spawn(g, &w[i]->task), 0);
  wf = corio_task_group_wait(g);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(wf), 1);
  run(wf);
  cr_assert(corio_future_cancelled(wf));
  cr_assert_eq(corio_future_error(wf), -ECANCELED);
  for (i = 0; i < 3; i++) {
    cr_assert(corio_future_cancelled(&w[i]->task.fut));
    cr_assert_eq(w[i]->finally_runs, 1);
  }
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  unref_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, group_cancel)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *w[2] = {worker_new(30, 1, 0), worker_new(30, 2, 0)};
  corio_future *wf;
  int i;
  for (i = 0; i < 2; i++) cr_assert_eq(corio_task_group_spawn(g, &w[i]->task), 0);
  corio_loop_run_once(loop, 0);
  corio_task_group_cancel(g);
  wf = corio_task_group_wait(g);
  run(wf);
  cr_assert_eq(corio_future_error(wf), -ECANCELED);
  for (i = 0; i < 2; i++) cr_assert(corio_future_cancelled(&w[i]->task.fut));
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  unref_workers(w, 2);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, spawn_after_completion_is_invalid_state)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *a = worker_new(0.001, 1, 0), *late = worker_new(0.001, 2, 0);
  corio_future *wf;
  cr_assert_eq(corio_task_group_spawn(g, &a->task), 0);
  wf = corio_task_group_wait(g);
  run(wf);
  cr_assert_eq(corio_future_error(wf), 0);
  cr_assert_eq(corio_task_group_spawn(g, &late->task), CORIO_E_INVALID_STATE);
  cr_assert_not(corio_future_done(&late->task.fut), "the rejected task was not touched");
  cr_assert_eq(late->body_runs, 0);
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&late->task.fut); /* never started: just freed */
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, wait_on_an_empty_group)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *late = worker_new(0.001, 2, 0);
  corio_future *wf = corio_task_group_wait(g), *again;
  run(wf);
  cr_assert_eq(corio_future_error(wf), 0);
  again = corio_task_group_wait(g);
  cr_assert_eq(again, wf, "one wait future per group");
  corio_future_unref(again);
  cr_assert_eq(corio_task_group_spawn(g, &late->task), CORIO_E_INVALID_STATE);
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  corio_future_unref(&late->task.fut);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, free_while_pending_is_ebusy)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *a = worker_new(0.01, 1, 0);
  cr_assert_eq(corio_task_group_spawn(g, &a->task), 0);
  cr_assert_eq(corio_task_group_free(g), -EBUSY);
  run(&a->task.fut);
  drain(); /* the group's done callback has run */
  cr_assert_eq(corio_task_group_free(g), 0, "no wait needed to free a finished group");
  corio_future_unref(&a->task.fut);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, spawn_errors)
{
  corio_loop *other;
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *foreign;
  corio_future *wf;
  cr_assert_null(corio_task_group_new(NULL));
  cr_assert_eq(corio_task_group_spawn(NULL, NULL), -EINVAL);
  cr_assert_eq(corio_task_group_spawn(g, NULL), -EINVAL);
  cr_assert_eq(corio_task_group_free(NULL), -EINVAL);
  cr_assert_eq(corio_loop_new(&other, NULL), 0);
  foreign = corio_task_new(other, worker_step, struct worker, task);
  cr_assert_eq(corio_task_group_spawn(g, &foreign->task), CORIO_E_WRONG_LOOP);
  corio_future_unref(&foreign->task.fut);
  wf = corio_task_group_wait(g);
  run(wf);
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  cr_assert_eq(corio_loop_close(other), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Spawning into a group that is already failing: the new task is cancelled before it runs. */
Test(shield_group, spawn_into_a_failing_group)
{
  corio_task_group *g = corio_task_group_new(loop);
  struct worker *a = worker_new(30, 1, 0), *b = worker_new(0.001, 0, -EIO),
                *c = worker_new(30, 3, 0);
  corio_future *wf;
  cr_assert_eq(corio_task_group_spawn(g, &a->task), 0);
  cr_assert_eq(corio_task_group_spawn(g, &b->task), 0);
  run(&b->task.fut);
  drain(); /* the group has seen the failure */
  cr_assert_eq(corio_task_group_spawn(g, &c->task), 0);
  wf = corio_task_group_wait(g);
  run(wf);
  cr_assert_eq(corio_future_error(wf), -EIO);
  cr_assert(corio_future_cancelled(&c->task.fut));
  cr_assert_eq(c->body_runs, 0);
  corio_future_unref(wf);
  cr_assert_eq(corio_task_group_free(g), 0);
  corio_future_unref(&a->task.fut);
  corio_future_unref(&b->task.fut);
  corio_future_unref(&c->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A supervisor task runs a group: spawns workers from its body, awaits the group. */
struct supervisor {
  corio_task task;
  corio_task_group *g;
  struct worker *w[3];
  int fail, finally_runs, err_in_finally;
};
static corio_step supervisor_step(corio_task *t)
{
  struct supervisor *s = corio_container_of(t, struct supervisor, task);
  int i;
  CORIO_BEGIN(t);
  s->g = corio_task_group_new(t->loop);
  if (!s->g) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < 3; i++) {
    if (s->fail)
      s->w[i] = worker_new(i == 1 ? 0.001 : 0.5, i, i == 1 ? s->fail : 0);
    else
      s->w[i] = worker_new(0.01 * (i + 1), i, 0);
    CORIO_TRY(t, corio_task_group_spawn(s->g, &s->w[i]->task));
  }
  CORIO_AWAIT_TRY(t, corio_task_group_wait(s->g));
  CORIO_RETURN(t, 3);
  CORIO_FINALLY(t);
  s->finally_runs++;
  s->err_in_finally = corio_task_error(t);
  /* asyncio's TaskGroup __aexit__: make sure every child is done before leaving */
  if (s->g) {
    corio_task_group_cancel(s->g);
    CORIO_AWAIT(t, corio_task_group_wait(s->g));
    corio_task_group_free(s->g);
  }
  CORIO_END(t);
}
static void supervisor_free(struct supervisor *s)
{
  int i;
  for (i = 0; i < 3; i++) {
    corio_future_error(&s->w[i]->task.fut);
    corio_future_unref(&s->w[i]->task.fut);
  }
  corio_future_unref(&s->task.fut);
}
Test(shield_group, group_run_by_a_task)
{
  struct supervisor *s = corio_task_new(loop, supervisor_step, struct supervisor, task);
  int i;
  cr_assert_eq(corio_task_start(&s->task), 0);
  run(&s->task.fut);
  cr_assert_eq(corio_future_int(&s->task.fut), 3);
  for (i = 0; i < 3; i++) cr_assert_eq(corio_future_int(&s->w[i]->task.fut), i);
  supervisor_free(s);
  s = corio_task_new(loop, supervisor_step, struct supervisor, task);
  s->fail = -ENOTCONN;
  cr_assert_eq(corio_task_start(&s->task), 0);
  run(&s->task.fut);
  cr_assert_eq(corio_future_error(&s->task.fut), -ENOTCONN);
  cr_assert_eq(s->err_in_finally, -ENOTCONN);
  cr_assert(corio_future_cancelled(&s->w[0]->task.fut));
  cr_assert(corio_future_cancelled(&s->w[2]->task.fut));
  supervisor_free(s);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(shield_group, cancelling_the_supervisor_cancels_the_group)
{
  struct supervisor *s = corio_task_new(loop, supervisor_step, struct supervisor, task);
  int i;
  cr_assert_eq(corio_task_start(&s->task), 0);
  corio_loop_run_once(loop, 0); /* the supervisor spawns the workers */
  corio_loop_run_once(loop, 0); /* the workers are asleep */
  cr_assert_eq(corio_task_cancel(&s->task), 1);
  run(&s->task.fut);
  cr_assert(corio_future_cancelled(&s->task.fut));
  cr_assert_eq(s->finally_runs, 1);
  for (i = 0; i < 3; i++) {
    cr_assert(corio_future_cancelled(&s->w[i]->task.fut));
    cr_assert_eq(s->w[i]->finally_runs, 1);
  }
  supervisor_free(s);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
