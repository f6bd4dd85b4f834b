/* Stress: 1,000 tasks cancelled at random points (before start, before the first step, inside
 * CORIO_YIELD, while sleeping, while awaiting a child task), each FINALLY counted exactly once. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(stress_cancel, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

/* Where a task is: set before each await, read by the canceller. */
enum phase { P_NEW, P_YIELD, P_SLEEP, P_CHILD, P_FINALLY, P_NPHASES };

struct kid {
  corio_task task;
  double secs;
  int body_runs, finally_runs;
};
static corio_step kid_step(corio_task *t)
{
  struct kid *k = corio_container_of(t, struct kid, task);
  CORIO_BEGIN(t);
  k->body_runs++;
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, k->secs));
  CORIO_RETURN(t, 1);
  CORIO_FINALLY(t);
  k->finally_runs++;
  CORIO_END(t);
}

struct victim {
  corio_task task;
  int id, yields, i;
  double sleep_s;
  struct kid *kid;
  enum phase phase, cancelled_in;
  int body_runs, finally_runs, err_in_finally, cancel_requested;
};
static corio_step victim_step(corio_task *t)
{
  struct victim *v = corio_container_of(t, struct victim, task);
  CORIO_BEGIN(t);
  v->body_runs++;
  v->phase = P_YIELD;
  for (v->i = 0; v->i < v->yields; v->i++) CORIO_YIELD(t);
  v->phase = P_SLEEP;
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, v->sleep_s));
  v->phase = P_CHILD;
  CORIO_AWAIT_TRY(t, corio_task_spawn(&v->kid->task));
  CORIO_RETURN(t, v->id);
  CORIO_FINALLY(t);
  v->phase = P_FINALLY;
  v->finally_runs++;
  v->err_in_finally = corio_task_error(t);
  CORIO_END(t);
}

static void cancel_now(struct victim *v)
{
  if (corio_future_done(&v->task.fut)) return;
  v->cancelled_in = v->phase;
  v->cancel_requested = 1;
  cr_assert_eq(corio_task_cancel(&v->task), 1);
}
static void cancel_cb(void *arg)
{
  cancel_now(arg);
}
/* Cancels after `left` more loop iterations: lands on a precise CORIO_YIELD. */
struct countdown {
  struct victim *v;
  int left;
};
static void countdown_cb(void *arg)
{
  struct countdown *c = arg;
  if (c->left-- > 0) {
    cr_assert_eq(corio_call_soon(loop, countdown_cb, c, NULL), 0);
    return;
  }
  cancel_now(c->v);
}

Test(stress_cancel, thousand_tasks_cancelled_at_random_points)
{
  enum { N = 1000 };
  struct victim **v = calloc(N, sizeof(*v));
  struct countdown *cd = calloc(N, sizeof(*cd));
  corio_future **futs = calloc(N, sizeof(*futs)), *g;
  int before_start = 0, before_step = 0, never = 0, in_phase[P_NPHASES] = {0};
  unsigned seed = 4242;
  int i, how;
  for (i = 0; i < N; i++) {
    v[i] = corio_task_new(loop, victim_step, struct victim, task);
    cr_assert_not_null(v[i]);
    v[i]->id = i;
    v[i]->yields = rand_r(&seed) % 8;
    v[i]->sleep_s = (rand_r(&seed) % 11) / 1000.0;
    v[i]->kid = corio_task_new(loop, kid_step, struct kid, task);
    v[i]->kid->secs = (rand_r(&seed) % 11) / 1000.0;
    v[i]->cancelled_in = P_NPHASES;
    how = rand_r(&seed) % 10;
    if (how == 0) { /* before start: start then refuses, the body never runs */
      v[i]->cancelled_in = P_NEW;
      cr_assert_eq(corio_task_cancel(&v[i]->task), 1);
      cr_assert_eq(corio_task_start(&v[i]->task), CORIO_E_INVALID_STATE);
      before_start++;
      futs[i] = corio_future_ref(&v[i]->task.fut);
      continue;
    }
    futs[i] = corio_task_spawn(&v[i]->task);
    cr_assert_not_null(futs[i]);
    if (how == 1) { /* started, cancelled before its first step */
      cancel_now(v[i]);
      before_step++;
    } else if (how <= 4) { /* after a few iterations: mostly inside a CORIO_YIELD */
      cd[i].v = v[i];
      cd[i].left = rand_r(&seed) % 8;
      cr_assert_eq(corio_call_soon(loop, countdown_cb, &cd[i], NULL), 0);
    } else if (how <= 8) { /* at a random time: sleeping or awaiting the child */
      cr_assert_eq(corio_call_later(loop, (rand_r(&seed) % 25) / 1000.0, cancel_cb, v[i], NULL), 0);
    } else {
      never++;
    }
  }
  g = corio_gather(futs, N, CORIO_RETURN_EXCEPTIONS);
  cr_assert_eq(corio_loop_run_until_complete(loop, g), 0);
  cr_assert_eq(corio_future_error(g), 0);
  drain(); /* the cancellers that came too late have run */
  for (i = 0; i < N; i++) {
    struct victim *x = v[i];
    cr_assert(corio_future_done(&x->task.fut));
    cr_assert_eq(x->finally_runs, x->body_runs, "task %d: FINALLY once iff the body ran", i);
    cr_assert_leq(x->body_runs, 1);
    cr_assert_leq(x->kid->finally_runs, 1);
    cr_assert_eq(x->kid->finally_runs, x->kid->body_runs, "kid %d", i);
    if (x->cancelled_in != P_NPHASES) in_phase[x->cancelled_in]++;
    if (!x->cancel_requested && x->cancelled_in != P_NEW) {
      cr_assert_eq(corio_future_int(&x->task.fut), i, "task %d not cancelled: its value", i);
      cr_assert_eq(x->err_in_finally, 0);
      continue;
    }
    if (x->cancelled_in == P_CHILD && !corio_future_cancelled(&x->task.fut)) {
      /* The child had finished, its wakeup not yet run: task.h delivers the result and would
       * raise the cancellation at the next suspending await, and there is none. */
      cr_assert_eq(corio_future_int(&x->kid->task.fut), 1, "task %d", i);
      cr_assert_eq(corio_future_int(&x->task.fut), i, "task %d", i);
      continue;
    }
    /* every other cancellation requested while pending took effect */
    cr_assert(corio_future_cancelled(&x->task.fut), "task %d (phase %d)", i, x->cancelled_in);
    if (x->cancelled_in == P_NEW) {
      cr_assert_eq(x->body_runs, 0, "task %d: cancelled before its first step, never ran", i);
      continue;
    }
    cr_assert_eq(x->err_in_finally, -ECANCELED);
    if (x->cancelled_in == P_CHILD)
      cr_assert(corio_future_cancelled(&x->kid->task.fut), "the awaited child was cancelled");
    if (x->cancelled_in < P_CHILD) cr_assert_eq(x->kid->body_runs, 0, "never spawned");
  }
  cr_assert_gt(before_start, 0);
  cr_assert_gt(before_step, 0);
  cr_assert_gt(never, 0);
  cr_assert_gt(in_phase[P_YIELD], 0, "no cancellation landed in a CORIO_YIELD");
  cr_assert_gt(in_phase[P_SLEEP], 0, "no cancellation landed in a sleep");
  cr_assert_gt(in_phase[P_CHILD], 0, "no cancellation landed while awaiting a child");
  corio_future_unref(g);
  for (i = 0; i < N; i++) {
    corio_future_error(&v[i]->kid->task.fut);
    corio_future_unref(&v[i]->kid->task.fut);
    corio_future_unref(&v[i]->task.fut);
  }
  free(v);
  free(cd);
  free(futs);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
