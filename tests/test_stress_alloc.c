/* Fault injection: an allocator that fails the Nth allocation (or every one from the Nth on),
 * for every N a scenario makes. Each run must end with a clean error or success: never a
 * crash, a hang or a leak (the allocator counts the blocks still live at the end). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <corio.h>
#include "test_util.h"

/* The timeout only catches a hang: the many_tasks sweeps take 3 s in a plain build on a busy
 * 2-core machine and over 10 s under ASan there. */
TestSuite(stress_alloc, .timeout = 60);

static void arm(long fail_at, int persistent)
{
  A.count = 0;
  A.fail_at = fail_at;
  A.persistent = persistent;
  A.live = 0;
  A.failed = 0;
  corio_set_allocator(&test_alloc_counting);
}

/* Kids whose parent failed before gathering them fail unobserved: that is expected here. */
static void quiet(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)ctx;
  (void)arg;
}

static void drain(corio_loop *l)
{
  while (corio_loop_run_once(l, 0) > 0) {
  }
}

/* ---- scenario 1: a task awaiting a gather of sleeps ---- */

enum { NSLEEPS = 8 };
struct sleepers {
  corio_task task;
  int body_runs, finally_runs;
};
static corio_step sleepers_step(corio_task *t)
{
  struct sleepers *s = corio_container_of(t, struct sleepers, task);
  corio_future *futs[NSLEEPS];
  int i;
  CORIO_BEGIN(t);
  s->body_runs++;
  for (i = 0; i < NSLEEPS; i++) futs[i] = corio_sleep(t->loop, (i % 3) / 1000.0);
  CORIO_AWAIT_TRY(t, corio_gather(futs, NSLEEPS, 0));
  CORIO_RETURN(t, 42);
  CORIO_FINALLY(t);
  s->finally_runs++;
  CORIO_END(t);
}

/* Returns 0 if the scenario succeeded, -ENOMEM if it failed cleanly; asserts everything else. */
static int scenario_gather(long n)
{
  corio_loop *l;
  struct sleepers *s;
  int rc, err;
  rc = corio_loop_new(&l, NULL);
  if (rc < 0) {
    cr_assert_eq(rc, -ENOMEM, "N=%ld: corio_loop_new: %s", n, corio_strerror(rc));
    return rc;
  }
  corio_loop_set_exception_handler(l, quiet, NULL);
  s = corio_task_new(l, sleepers_step, struct sleepers, task);
  if (!s) {
    rc = -ENOMEM;
    goto out;
  }
  rc = corio_task_start(&s->task);
  if (rc < 0) {
    cr_assert_eq(rc, -ENOMEM, "N=%ld: corio_task_start: %s", n, corio_strerror(rc));
    corio_future_unref(&s->task.fut);
    goto out;
  }
  rc = corio_loop_run_until_complete(l, &s->task.fut);
  cr_assert_eq(rc, 0, "N=%ld: run_until_complete: %s", n, corio_strerror(rc));
  err = corio_future_error(&s->task.fut);
  if (err == 0)
    cr_assert_eq(corio_future_int(&s->task.fut), 42, "N=%ld", n);
  else
    cr_assert_eq(err, -ENOMEM, "N=%ld: the task failed with %s", n, corio_err_name(err));
  cr_assert_eq(s->body_runs, 1, "N=%ld", n);
  cr_assert_eq(s->finally_runs, 1, "N=%ld", n);
  corio_future_unref(&s->task.fut);
  rc = err;
out:
  drain(l);
  cr_assert_eq(corio_loop_close(l), 0, "N=%ld: the loop is not idle", n);
  return rc;
}

static void sweep(int (*scenario)(long), int persistent)
{
  long k, n;
  int ok = 0, failed = 0, rc;
  arm(0, 0);
  rc = scenario(0);
  cr_assert_eq(rc, 0, "the scenario must succeed without failures");
  cr_assert_eq(A.live, 0, "leak without any failure: %ld blocks", A.live);
  k = A.count;
  cr_assert_gt(k, 3);
  for (n = 1; n <= k + 2; n++) {
    /* CORIO_ALLOC_TRACE=1: name the N of a crash or a hang */
    if (getenv("CORIO_ALLOC_TRACE")) fprintf(stderr, "N=%ld%s\n", n, persistent ? "+" : "");
    arm(n, persistent);
    rc = scenario(n);
    corio_set_allocator(NULL);
    cr_assert_eq(A.live, 0, "N=%ld (%s): %ld blocks leaked", n, persistent ? "from N on" : "only N",
                 A.live);
    if (rc == 0)
      ok++;
    else
      failed++;
  }
  corio_set_allocator(NULL);
  cr_assert_gt(failed, 0, "no injected failure was reported");
  cr_log_info("%ld allocations, %d runs succeeded, %d failed cleanly", k, ok, failed);
}

Test(stress_alloc, gather_of_sleeps_fail_one)
{
  sweep(scenario_gather, 0);
}

Test(stress_alloc, gather_of_sleeps_fail_from_n_on)
{
  sweep(scenario_gather, 1);
}

/* ---- scenario 2: wait_for, shield, as_completed, a task group and wait in one task ---- */

struct kid {
  corio_task task;
};
static corio_step kid_step(corio_task *t)
{
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.001));
  CORIO_RETURN(t, 1);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

struct sink {
  corio_task task;
  corio_as_completed *it;
  corio_task_group *g;
  struct kid *kids[2];
  int i, finally_runs;
};
static corio_step sink_step(corio_task *t)
{
  struct sink *s = corio_container_of(t, struct sink, task);
  corio_future *futs[2];
  int err;
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_wait_for(corio_sleep(t->loop, 0.001), 1.0));
  CORIO_AWAIT(t, corio_wait_for(corio_sleep(t->loop, 0.2), 0.001));
  err = corio_future_error(corio_awaited(t));
  if (err != -ETIMEDOUT) CORIO_THROW(t, err < 0 ? err : -EPROTO);
  CORIO_AWAIT_TRY(t, corio_shield(corio_sleep(t->loop, 0)));
  futs[0] = corio_sleep(t->loop, 0.002);
  futs[1] = corio_sleep(t->loop, 0);
  s->it = corio_as_completed_new(t->loop, futs, 2);
  if (!s->it) CORIO_THROW(t, -ENOMEM);
  for (s->i = 0; s->i < 2; s->i++) {
    CORIO_AWAIT_TRY(t, corio_as_completed_next(s->it));
    CORIO_TRY(t, corio_future_error(corio_future_ptr(corio_awaited(t))));
  }
  s->g = corio_task_group_new(t->loop);
  if (!s->g) CORIO_THROW(t, -ENOMEM);
  for (s->i = 0; s->i < 2; s->i++) {
    s->kids[s->i] = corio_task_new(t->loop, kid_step, struct kid, task);
    if (!s->kids[s->i]) CORIO_THROW(t, -ENOMEM);
    CORIO_TRY(t, corio_task_group_spawn(s->g, &s->kids[s->i]->task));
  }
  CORIO_AWAIT_TRY(t, corio_task_group_wait(s->g));
  futs[0] = corio_sleep(t->loop, 0.001);
  futs[1] = corio_sleep(t->loop, 0);
  CORIO_AWAIT_TRY(t, corio_wait(futs, 2, CORIO_ALL_COMPLETED, 1.0));
  if (corio_future_int(corio_awaited(t)) != 2) CORIO_THROW(t, -EPROTO);
  CORIO_TRY(t, corio_future_error(corio_gather_child(corio_awaited(t), 0)));
  CORIO_TRY(t, corio_future_error(corio_gather_child(corio_awaited(t), 1)));
  CORIO_RETURN(t, 42);
  CORIO_FINALLY(t);
  s->finally_runs++;
  if (s->it) corio_as_completed_free(s->it);
  if (s->g) {
    corio_task_group_cancel(s->g);
    /* The kids finish on their own (1 ms sleeps, or cancelled). A yield that cannot be
     * scheduled does not suspend; with one failed allocation the next one succeeds. */
    while (corio_task_group_free(s->g) == -EBUSY) CORIO_YIELD(t);
  }
  for (s->i = 0; s->i < 2; s->i++)
    if (s->kids[s->i]) corio_future_unref(&s->kids[s->i]->task.fut);
  CORIO_END(t);
}

static int scenario_sink(long n)
{
  corio_loop *l;
  struct sink *s;
  int rc, err;
  rc = corio_loop_new(&l, NULL);
  if (rc < 0) {
    cr_assert_eq(rc, -ENOMEM, "N=%ld: corio_loop_new: %s", n, corio_strerror(rc));
    return rc;
  }
  corio_loop_set_exception_handler(l, quiet, NULL);
  s = corio_task_new(l, sink_step, struct sink, task);
  if (!s) {
    rc = -ENOMEM;
    goto out;
  }
  rc = corio_task_start(&s->task);
  if (rc < 0) {
    corio_future_unref(&s->task.fut);
    goto out;
  }
  rc = corio_loop_run_until_complete(l, &s->task.fut);
  cr_assert_eq(rc, 0, "N=%ld: run_until_complete: %s", n, corio_strerror(rc));
  err = corio_future_error(&s->task.fut);
  if (err == 0)
    cr_assert_eq(corio_future_int(&s->task.fut), 42, "N=%ld", n);
  else
    cr_assert(err == -ENOMEM, "N=%ld: the task failed with %s", n, corio_err_name(err));
  cr_assert_eq(s->finally_runs, 1, "N=%ld", n);
  corio_future_unref(&s->task.fut);
  rc = err;
out:
  drain(l);
  cr_assert_eq(corio_loop_close(l), 0, "N=%ld: the loop is not idle", n);
  return rc;
}

Test(stress_alloc, combinators_in_a_task_fail_one)
{
  sweep(scenario_sink, 0);
}

/* ---- scenario 3: 200 child tasks gathered, so that the loop's arrays grow (entries, ready
 * queue, timer heap) and a future collects many done callbacks: the realloc paths fail too.
 * Then 300 timers that expire in one iteration and 300 futures completed in one go: the ready
 * queue and the entry array grow while callbacks are being dispatched, where a failure takes
 * the loop's fallbacks (run the timer or the done callbacks at once rather than lose them). ---- */

enum { NKIDS = 200, NMANY = 300 };
struct brood {
  corio_task task;
  struct kid2 *kids[NKIDS];
  corio_future *signal; /* collects NKIDS done callbacks */
  corio_future *many[NMANY];
  int counted, finally_runs;
};
struct kid2 {
  corio_task task;
  int id;
};
static corio_step kid2_step(corio_task *t)
{
  struct kid2 *k = corio_container_of(t, struct kid2, task);
  CORIO_BEGIN(t);
  /* mostly sleep(0) (a ready entry), a few real timers: keeps each run short */
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, k->id % 50 == 0 ? 0.0001 : 0));
  CORIO_RETURN(t, k->id);
  CORIO_FINALLY(t);
  CORIO_END(t);
}
static void noop_cb(corio_future *f, void *arg)
{
  (void)f;
  (void)arg;
}
static void count_cb(corio_future *f, void *arg)
{
  struct brood *b = arg;
  (void)f;
  b->counted++;
}
static corio_step brood_step(corio_task *t)
{
  struct brood *b = corio_container_of(t, struct brood, task);
  corio_future *futs[NMANY];
  int i;
  CORIO_BEGIN(t);
  b->signal = corio_future_new(t->loop);
  if (!b->signal) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < NKIDS; i++) CORIO_TRY(t, corio_future_add_done_callback(b->signal, noop_cb, b));
  for (i = 0; i < NKIDS; i++) {
    b->kids[i] = corio_task_new(t->loop, kid2_step, struct kid2, task);
    if (b->kids[i]) b->kids[i]->id = i;
    futs[i] = b->kids[i] ? corio_task_spawn(&b->kids[i]->task) : NULL;
  }
  CORIO_AWAIT_TRY(t, corio_gather(futs, NKIDS, 0));
  for (i = 0; i < NKIDS; i++)
    if (corio_future_int(corio_gather_child(corio_awaited(t), (size_t)i)) != i)
      CORIO_THROW(t, -EPROTO);
  for (i = 0; i < NMANY; i++) futs[i] = corio_sleep(t->loop, 0.0001);
  CORIO_AWAIT_TRY(t, corio_gather(futs, NMANY, 0));
  for (i = 0; i < NMANY; i++) {
    b->many[i] = corio_future_new(t->loop);
    if (!b->many[i]) CORIO_THROW(t, -ENOMEM);
    CORIO_TRY(t, corio_future_add_done_callback(b->many[i], count_cb, b));
  }
  for (i = 0; i < NMANY; i++) corio_future_set_result(b->many[i], i);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0)); /* queued after the callbacks */
  if (b->counted != NMANY) CORIO_THROW(t, -EPROTO);
  CORIO_RETURN(t, 42);
  CORIO_FINALLY(t);
  b->finally_runs++;
  for (i = 0; i < NMANY; i++) {
    if (!b->many[i]) break;
    /* a callback still queued (the task unwound before it ran) must not outlive the frame */
    corio_future_remove_done_callback(b->many[i], count_cb, b);
    corio_future_unref(b->many[i]);
  }
  if (b->signal) {
    corio_future_set_result(b->signal, 0); /* runs (or drops) the callbacks */
    corio_future_unref(b->signal);
  }
  for (i = 0; i < NKIDS; i++)
    if (b->kids[i]) corio_future_unref(&b->kids[i]->task.fut);
  CORIO_END(t);
}

static int scenario_brood(long n)
{
  corio_loop *l;
  struct brood *b;
  int rc, err;
  rc = corio_loop_new(&l, NULL);
  if (rc < 0) {
    cr_assert_eq(rc, -ENOMEM, "N=%ld: corio_loop_new: %s", n, corio_strerror(rc));
    return rc;
  }
  corio_loop_set_exception_handler(l, quiet, NULL);
  b = corio_task_new(l, brood_step, struct brood, task);
  if (!b) {
    rc = -ENOMEM;
    goto out;
  }
  rc = corio_task_start(&b->task);
  if (rc < 0) {
    corio_future_unref(&b->task.fut);
    goto out;
  }
  rc = corio_loop_run_until_complete(l, &b->task.fut);
  cr_assert_eq(rc, 0, "N=%ld: run_until_complete: %s", n, corio_strerror(rc));
  err = corio_future_error(&b->task.fut);
  if (err == 0)
    cr_assert_eq(corio_future_int(&b->task.fut), 42, "N=%ld", n);
  else
    cr_assert_eq(err, -ENOMEM, "N=%ld: the task failed with %s", n, corio_err_name(err));
  cr_assert_eq(b->finally_runs, 1, "N=%ld", n);
  corio_future_unref(&b->task.fut);
  rc = err;
out:
  drain(l);
  cr_assert_eq(corio_loop_close(l), 0, "N=%ld: the loop is not idle", n);
  return rc;
}

Test(stress_alloc, many_tasks_fail_one)
{
  sweep(scenario_brood, 0);
}

Test(stress_alloc, many_tasks_fail_from_n_on)
{
  sweep(scenario_brood, 1);
}

/* ---- targeted: a wait_for whose timeout timer cannot be set ---- */

static void noop(void *arg)
{
  (void)arg;
}
/* The wrap is allocation 1; allocation 2, when there is one, belongs to the timer (the timer
 * heap or the entry array growing). Each round adds timers, so the heap grows every so often
 * and some rounds hit that failure: the wait_for must then fail with -ENOMEM, cleanly (not end
 * up "cancelled" because the inner was cancelled to unwind it). */
Test(stress_alloc, wait_for_whose_timer_cannot_be_set)
{
  enum { ROUNDS = 300 };
  corio_loop *l;
  corio_handle h[ROUNDS];
  corio_future *f;
  int k, hits = 0, timer_failed;
  cr_assert_eq(corio_loop_new(&l, NULL), 0);
  for (k = 0; k < ROUNDS; k++) {
    f = corio_sleep(l, 10);
    arm(2, 0);
    f = corio_wait_for(f, 1.0);
    timer_failed = A.failed > 0;
    corio_set_allocator(NULL);
    cr_assert_not_null(f);
    if (timer_failed) {
      hits++;
      while (!corio_future_done(f)) corio_loop_run_once(l, 0);
      cr_assert_not(corio_future_cancelled(f), "round %d: cancelled instead of failed", k);
      cr_assert_eq(corio_future_error(f), -ENOMEM, "round %d", k);
    } else {
      cr_assert_eq(corio_future_cancel(f), 1);
    }
    corio_future_unref(f);
    cr_assert_eq(corio_call_later(l, 10, noop, NULL, &h[k]), 0);
  }
  cr_assert_gt(hits, 0, "no round made the timer fail");
  for (k = 0; k < ROUNDS; k++) corio_handle_cancel(l, h[k]);
  drain(l);
  cr_assert_eq(corio_loop_close(l), 0);
}
