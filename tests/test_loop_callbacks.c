/* Loop: call_soon / call_later / call_at ordering, handles, run modes, bad input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(loop_callbacks, .init = setup, .timeout = 10);

struct rec {
  int order[64];
  int n;
};
struct item {
  struct rec *r;
  int id;
  double when;
  double fired_at;
};
static void record(void *arg)
{
  struct item *it = arg;
  it->fired_at = corio_loop_time(loop);
  it->r->order[it->r->n++] = it->id;
}
static void stop_cb(void *arg)
{
  corio_loop_stop(arg);
}

Test(loop_callbacks, call_soon_is_fifo)
{
  struct rec r = {0};
  struct item its[10];
  int i;
  for (i = 0; i < 10; i++) {
    its[i] = (struct item){&r, i, 0, 0};
    cr_assert_eq(corio_call_soon(loop, record, &its[i], NULL), 0);
  }
  cr_assert_eq(corio_call_soon(loop, stop_cb, loop, NULL), 0);
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  cr_assert_eq(r.n, 10);
  for (i = 0; i < 10; i++) cr_assert_eq(r.order[i], i);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Callbacks scheduled by a callback run in the next iteration, after those already ready. */
static int chain_log[8], chain_n;
static void chain_b(void *arg)
{
  chain_log[chain_n++] = (int)(intptr_t)arg;
}
static void chain_a(void *arg)
{
  chain_log[chain_n++] = 1;
  corio_call_soon(loop, chain_b, (void *)3, NULL);
}
Test(loop_callbacks, scheduled_from_callback_runs_next_turn)
{
  chain_n = 0;
  corio_call_soon(loop, chain_a, NULL, NULL);
  corio_call_soon(loop, chain_b, (void *)2, NULL);
  cr_assert_geq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(chain_n, 2);
  cr_assert_eq(chain_log[0], 1);
  cr_assert_eq(chain_log[1], 2);
  cr_assert_geq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(chain_n, 3);
  cr_assert_eq(chain_log[2], 3);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, handle_cancel_before_and_after_run)
{
  struct rec r = {0};
  struct item a = {&r, 1, 0, 0}, b = {&r, 2, 0, 0};
  corio_handle ha, hb;
  cr_assert_eq(corio_call_soon(loop, record, &a, &ha), 0);
  cr_assert_eq(corio_call_soon(loop, record, &b, &hb), 0);
  cr_assert_neq(ha, 0);
  cr_assert_eq(corio_handle_cancel(loop, ha), 0);
  cr_assert_eq(corio_handle_cancel(loop, ha), -ENOENT); /* twice: harmless */
  cr_assert_eq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(r.n, 1);
  cr_assert_eq(r.order[0], 2);
  cr_assert_eq(corio_handle_cancel(loop, hb), -ENOENT); /* already ran */
  /* The slot is reused by a new callback: the old handle must not cancel it. */
  cr_assert_eq(corio_call_soon(loop, record, &a, NULL), 0);
  cr_assert_eq(corio_handle_cancel(loop, hb), -ENOENT);
  cr_assert_eq(corio_handle_cancel(loop, ha), -ENOENT);
  cr_assert_eq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(r.n, 2);
  cr_assert_eq(corio_handle_cancel(loop, 0), -ENOENT);
  cr_assert_eq(corio_handle_cancel(loop, 0xdeadbeef00001234ull), -ENOENT);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, timers_by_deadline_then_insertion_never_early)
{
  struct rec r = {0};
  struct item its[6];
  double delays[6] = {0.03, 0.01, 0.02, 0.01, 0.0, 0.02};
  int expect[6] = {4, 1, 3, 2, 5, 0};
  double now = corio_loop_time(loop);
  int i;
  for (i = 0; i < 6; i++) {
    its[i] = (struct item){&r, i, now + delays[i], 0};
    cr_assert_eq(corio_call_at(loop, now + delays[i], record, &its[i], NULL), 0);
  }
  while (r.n < 6) cr_assert_geq(corio_loop_run_once(loop, -1), 0);
  for (i = 0; i < 6; i++) {
    cr_assert_eq(r.order[i], expect[i], "position %d: got %d", i, r.order[i]);
    cr_assert_geq(its[i].fired_at, its[i].when, "timer %d fired early", i);
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, call_later_waits_at_least_delay)
{
  struct rec r = {0};
  struct item it = {&r, 7, 0, 0};
  double t0 = corio_loop_time(loop);
  it.when = t0 + 0.05;
  cr_assert_eq(corio_call_later(loop, 0.05, record, &it, NULL), 0);
  while (r.n < 1) cr_assert_geq(corio_loop_run_once(loop, -1), 0);
  cr_assert_geq(it.fired_at, it.when);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, cancel_timer)
{
  struct rec r = {0};
  struct item a = {&r, 1, 0, 0}, b = {&r, 2, 0, 0};
  corio_handle h;
  cr_assert_eq(corio_call_later(loop, 0.01, record, &a, &h), 0);
  cr_assert_eq(corio_call_later(loop, 0.02, record, &b, NULL), 0);
  cr_assert_eq(corio_handle_cancel(loop, h), 0);
  while (r.n < 1) cr_assert_geq(corio_loop_run_once(loop, -1), 0);
  cr_assert_eq(r.order[0], 2);
  cr_assert_eq(corio_handle_cancel(loop, h), -ENOENT);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void noop(void *arg)
{
  (void)arg;
}

Test(loop_callbacks, bad_input)
{
  corio_handle h = 42;
  cr_assert_eq(corio_call_soon(NULL, noop, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_call_soon(loop, NULL, NULL, &h), -EINVAL);
  cr_assert_eq(h, 0);
  cr_assert_eq(corio_call_later(loop, -1.0, noop, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_call_later(loop, NAN, noop, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_call_at(loop, NAN, noop, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_call_soon_threadsafe(NULL, noop, NULL), -EINVAL);
  cr_assert_eq(corio_loop_new(NULL, NULL), -EINVAL);
  cr_assert_eq(corio_loop_close(NULL), -EINVAL);
  cr_assert_eq(corio_loop_run_until_complete(loop, NULL), -EINVAL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, close_while_busy)
{
  corio_handle h;
  cr_assert_eq(corio_call_later(loop, 10, noop, NULL, &h), 0);
  cr_assert_eq(corio_loop_close(loop), -EBUSY);
  cr_assert_eq(corio_handle_cancel(loop, h), 0);
  cr_assert_eq(corio_call_soon(loop, noop, NULL, &h), 0);
  cr_assert_eq(corio_loop_close(loop), -EBUSY);
  cr_assert_eq(corio_handle_cancel(loop, h), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void check_running(void *arg)
{
  int *seen = arg;
  *seen = corio_loop_is_running(loop);
  /* re-entering the loop from a callback is refused */
  seen[1] = corio_loop_run_once(loop, 0);
  corio_loop_stop(loop);
}

Test(loop_callbacks, run_forever_stop_is_running)
{
  int seen[2] = {0, 0};
  cr_assert_eq(corio_loop_is_running(loop), 0);
  corio_call_soon(loop, check_running, seen, NULL);
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  cr_assert_eq(seen[0], 1);
  cr_assert_eq(seen[1], CORIO_E_LOOP_RUNNING);
  cr_assert_eq(corio_loop_is_running(loop), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, run_until_complete_stopped_early)
{
  corio_future *f = corio_future_new(loop);
  corio_call_soon(loop, stop_cb, loop, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), CORIO_E_LOOP_STOPPED);
  corio_future_set_result(f, 1);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, future_of_another_loop)
{
  corio_loop *other;
  corio_future *f;
  cr_assert_eq(corio_loop_new(&other, NULL), 0);
  f = corio_future_new(other);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), CORIO_E_WRONG_LOOP);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(other), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_callbacks, errors_have_names_and_messages)
{
  cr_assert_str_eq(corio_err_name(-ECANCELED), "ECANCELED");
  cr_assert_str_eq(corio_err_name(CORIO_E_QUEUE_FULL), "CORIO_E_QUEUE_FULL");
  cr_assert_str_eq(corio_strerror(CORIO_E_QUEUE_FULL), "the queue is full");
  cr_assert(strstr(corio_strerror(CORIO_E_URING_DISABLED), "io_uring_disabled") != NULL);
  cr_assert_str_eq(corio_strerror(-ETIMEDOUT), "Connection timed out");
  cr_assert_str_eq(corio_err_name(-99999), "UNKNOWN");
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void exc_count(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)ctx;
  ++*(int *)arg;
}
static void slow_cb(void *arg)
{
  (void)arg;
  struct timespec ts = {0, 30 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

Test(loop_callbacks, debug_mode_reports_slow_callbacks)
{
  corio_loop *dbg;
  corio_loop_opts o = {0};
  int n = 0;
  o.debug = 1;
  o.slow_callback_s = 0.01;
  cr_assert_eq(corio_loop_new(&dbg, &o), 0);
  cr_assert(corio_loop_get_debug(dbg));
  corio_loop_set_exception_handler(dbg, exc_count, &n);
  corio_call_soon(dbg, slow_cb, NULL, NULL);
  corio_call_soon(dbg, noop, NULL, NULL);
  cr_assert_geq(corio_loop_run_once(dbg, 0), 0);
  cr_assert_eq(n, 1);
  cr_assert_eq(corio_loop_close(dbg), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
