/* corio_sleep: never early, bad delays, sleep(0) as a yield, cancellation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(sleep, .init = setup, .timeout = 10);

/* Run until every queued callback and timer has run (the loop is idle). */
static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}
static void run(corio_future *f)
{
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
}

Test(sleep, never_fires_early)
{
  static const double delays[] = {0.001, 0.005, 0.02, 0.04};
  corio_future *s;
  double t0;
  size_t i;
  for (i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
    t0 = corio_loop_time(loop);
    s = corio_sleep(loop, delays[i]);
    cr_assert_not_null(s);
    cr_assert_not(corio_future_done(s));
    run(s);
    cr_assert_geq(corio_loop_time(loop) - t0, delays[i], "sleep(%g) woke after %g s", delays[i],
                  corio_loop_time(loop) - t0);
    cr_assert_eq(corio_future_error(s), 0);
    cr_assert_eq(corio_future_int(s), 0);
    corio_future_unref(s);
  }
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Sleeps started together complete in deadline order, each not before its deadline. */
struct stamp {
  double deadline;
  int *order, *next;
  int late_ok;
};
static void stamp_cb(corio_future *f, void *arg)
{
  struct stamp *s = arg;
  (void)f;
  s->late_ok = corio_loop_time(loop) >= s->deadline;
  *s->order = (*s->next)++;
}
Test(sleep, many_sleeps_fire_in_deadline_order)
{
  enum { N = 6 };
  static const double delays[N] = {0.03, 0.005, 0.02, 0, 0.01, 0.025};
  static const int expect[N] = {5, 1, 3, 0, 2, 4};
  corio_future *s[N], *all;
  struct stamp st[N];
  int order[N], next = 0, i;
  double t0 = corio_loop_time(loop);
  for (i = 0; i < N; i++) {
    s[i] = corio_sleep(loop, delays[i]);
    st[i] = (struct stamp){t0 + delays[i], &order[i], &next, 0};
    cr_assert_eq(corio_future_add_done_callback(s[i], stamp_cb, &st[i]), 0);
  }
  for (i = 0; i < N; i++) corio_future_ref(s[i]);
  all = corio_gather(s, N, 0);
  run(all);
  drain();
  for (i = 0; i < N; i++) {
    cr_assert_eq(order[i], expect[i], "sleep %d completed %d-th", i, order[i]);
    cr_assert(st[i].late_ok, "sleep %d fired early", i);
    corio_future_unref(s[i]);
  }
  corio_future_unref(all);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(sleep, bad_delay_fails_with_einval)
{
  static const double bad[] = {-1, -1e-9, -INFINITY, NAN};
  corio_future *s;
  size_t i;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    s = corio_sleep(loop, bad[i]);
    cr_assert_not_null(s);
    cr_assert(corio_future_done(s), "sleep(%g) must fail at once", bad[i]);
    cr_assert_not(corio_future_cancelled(s));
    cr_assert_eq(corio_future_error(s), -EINVAL, "sleep(%g)", bad[i]);
    corio_future_unref(s);
  }
  /* No loop given and none running: still a failed future, never a crash. */
  s = corio_sleep(NULL, 0.1);
  cr_assert_not_null(s);
  cr_assert_eq(corio_future_error(s), -EINVAL);
  corio_future_unref(s);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* sleep(0): not done at once, done after one turn of the loop, and other ready work runs first. */
static void mark(void *arg)
{
  (*(int *)arg)++;
}
Test(sleep, sleep_zero_yields_once)
{
  int ran = 0;
  corio_future *s;
  cr_assert_eq(corio_call_soon(loop, mark, &ran, NULL), 0);
  s = corio_sleep(loop, 0);
  cr_assert_not(corio_future_done(s), "sleep(0) is a yield, not a no-op");
  cr_assert_geq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(ran, 1, "the callback queued before the sleep ran first");
  cr_assert(corio_future_done(s), "done after one iteration");
  cr_assert_eq(corio_future_error(s), 0);
  corio_future_unref(s);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Two tasks that sleep(0) in a loop interleave step by step, as asyncio's sleep(0) does. */
struct pinger {
  corio_task task;
  char name;
  int i;
  char *log;
  int *len;
};
static corio_step pinger_step(corio_task *t)
{
  struct pinger *p = corio_container_of(t, struct pinger, task);
  CORIO_BEGIN(t);
  for (p->i = 0; p->i < 4; p->i++) {
    p->log[(*p->len)++] = p->name;
    CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0));
  }
  CORIO_RETURN(t, p->i);
  CORIO_FINALLY(t);
  CORIO_END(t);
}
Test(sleep, sleep_zero_interleaves_tasks)
{
  char log[16] = {0};
  int len = 0, i;
  struct pinger *p[2];
  corio_future *futs[2], *g;
  for (i = 0; i < 2; i++) {
    p[i] = corio_task_new(loop, pinger_step, struct pinger, task);
    cr_assert_not_null(p[i]);
    p[i]->name = (char)('A' + i);
    p[i]->log = log;
    p[i]->len = &len;
    futs[i] = corio_task_spawn(&p[i]->task);
  }
  g = corio_gather(futs, 2, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_str_eq(log, "ABABABAB");
  corio_future_unref(g);
  for (i = 0; i < 2; i++) corio_future_unref(&p[i]->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(sleep, cancel_pending_sleep)
{
  corio_future *s = corio_sleep(loop, 30), *z;
  double t0 = corio_loop_time(loop);
  cr_assert_eq(corio_future_cancel(s), 1);
  cr_assert(corio_future_cancelled(s));
  cr_assert_eq(corio_future_error(s), -ECANCELED);
  cr_assert_eq(corio_future_cancel(s), 0, "a second cancel is a no-op");
  /* sleep(0) cancelled before its turn */
  z = corio_sleep(loop, 0);
  cr_assert_eq(corio_future_cancel(z), 1);
  cr_assert(corio_future_cancelled(z));
  corio_future_unref(z);
  corio_future_unref(s);
  drain();
  /* The timer is gone: the loop is idle at once, not in 30 s. */
  cr_assert_lt(corio_loop_time(loop) - t0, 5);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(sleep, cancel_after_it_fired_keeps_the_result)
{
  corio_future *s = corio_sleep(loop, 0.001);
  run(s);
  cr_assert_eq(corio_future_cancel(s), 0);
  cr_assert_not(corio_future_cancelled(s));
  cr_assert_eq(corio_future_error(s), 0);
  corio_future_unref(s);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A task sleeping for a long time is cancelled: the sleep's timer goes, FINALLY runs once. */
struct sleeper {
  corio_task task;
  double secs, before, after;
  int finally_runs, err_in_finally, woke;
};
static corio_step sleeper_step(corio_task *t)
{
  struct sleeper *s = corio_container_of(t, struct sleeper, task);
  CORIO_BEGIN(t);
  s->before = corio_loop_time(t->loop);
  /* NULL loop: the sleep picks the running loop. */
  CORIO_AWAIT_TRY(t, corio_sleep(NULL, s->secs));
  s->after = corio_loop_time(t->loop);
  s->woke = 1;
  CORIO_RETURN(t, 1);
  CORIO_FINALLY(t);
  s->finally_runs++;
  s->err_in_finally = corio_task_error(t);
  CORIO_END(t);
}
static void cancel_task_cb(void *arg)
{
  corio_task_cancel(arg);
}
Test(sleep, task_sleep_and_cancel)
{
  struct sleeper *s = corio_task_new(loop, sleeper_step, struct sleeper, task);
  s->secs = 0.01;
  cr_assert_eq(corio_task_start(&s->task), 0);
  run(&s->task.fut);
  cr_assert_eq(corio_future_int(&s->task.fut), 1);
  cr_assert_geq(s->after - s->before, 0.01);
  cr_assert_eq(s->finally_runs, 1);
  corio_future_unref(&s->task.fut);

  s = corio_task_new(loop, sleeper_step, struct sleeper, task);
  s->secs = 30;
  cr_assert_eq(corio_task_start(&s->task), 0);
  cr_assert_eq(corio_call_later(loop, 0.01, cancel_task_cb, &s->task, NULL), 0);
  run(&s->task.fut);
  cr_assert(corio_future_cancelled(&s->task.fut));
  cr_assert_eq(s->woke, 0);
  cr_assert_eq(s->finally_runs, 1);
  cr_assert_eq(s->err_in_finally, -ECANCELED);
  corio_future_unref(&s->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
