/* Stress: 100,000 timers with random deadlines, half of them cancelled; the others fire in
 * deadline order (ties in the order they were set) and never early. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(stress_timers, .init = setup, .timeout = 10);

struct tmr {
  double when;
  int idx, fired, cancelled;
};
struct state {
  struct tmr *t;
  int fired, early, out_of_order;
  struct tmr *last;
  corio_future *all_fired;
  int expected;
};
static struct state st;

/* corio_loop_time() is the same clock the timers use, read as double seconds; a deadline given
 * as double seconds is rounded up to the nanosecond. 1 ns of slack covers the double rounding
 * of those two conversions, nothing more. */
#define SLACK 1e-9

static void fire(void *arg)
{
  struct tmr *t = arg;
  t->fired++;
  if (t->cancelled) return; /* checked below: a cancelled timer must never run */
  if (corio_loop_time(loop) + SLACK < t->when) st.early++;
  if (st.last && (t->when < st.last->when || (t->when == st.last->when && t->idx < st.last->idx)))
    st.out_of_order++;
  st.last = t;
  if (++st.fired == st.expected) corio_future_set_result(st.all_fired, 0);
}

Test(stress_timers, hundred_thousand_timers_half_cancelled)
{
  enum { N = 100000 };
  corio_handle *h = calloc(N, sizeof(*h));
  unsigned seed = 99;
  double base;
  int i, live = 0;
  st.t = calloc(N, sizeof(*st.t));
  st.all_fired = corio_future_new(loop);
  base = corio_loop_time(loop) + 0.01;
  for (i = 0; i < N; i++) {
    /* 0-200 ms at a 10 us grain: many exact ties, which must run in insertion order */
    st.t[i].when = base + (rand_r(&seed) % 20000) * 1e-5;
    st.t[i].idx = i;
    cr_assert_eq(corio_call_at(loop, st.t[i].when, fire, &st.t[i], &h[i]), 0);
    cr_assert_neq(h[i], 0);
  }
  for (i = 0; i < N; i++) {
    if (rand_r(&seed) % 2) {
      st.t[i].cancelled = 1;
      cr_assert_eq(corio_handle_cancel(loop, h[i]), 0);
      cr_assert_eq(corio_handle_cancel(loop, h[i]), -ENOENT, "a second cancel is harmless");
    } else {
      live++;
    }
  }
  st.expected = live;
  cr_assert_eq(corio_loop_run_until_complete(loop, st.all_fired), 0);
  cr_assert_eq(st.fired, live);
  cr_assert_eq(st.early, 0, "%d timers fired early", st.early);
  cr_assert_eq(st.out_of_order, 0, "%d timers fired out of deadline order", st.out_of_order);
  for (i = 0; i < N; i++) {
    cr_assert_eq(st.t[i].fired, st.t[i].cancelled ? 0 : 1, "timer %d", i);
    /* it ran: its handle is stale now, cancelling it is a harmless -ENOENT */
    if (!st.t[i].cancelled) cr_assert_eq(corio_handle_cancel(loop, h[i]), -ENOENT);
  }
  corio_future_unref(st.all_fired);
  free(st.t);
  free(h);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The same with call_later and cancellations made while the timers are firing (a timer cancels
 * a later one): the heap's lazy deletion and compaction run under load. */
static corio_handle *later_h;
static int *later_state; /* 0 pending, 1 fired, 2 cancelled */
static int later_n, later_done;
static corio_future *later_all;
static void later_fire(void *arg)
{
  int i = (int)(intptr_t)arg, j;
  cr_assert_eq(later_state[i], 0, "timer %d ran after being cancelled or twice", i);
  later_state[i] = 1;
  later_done++;
  j = (int)(((unsigned)i * 2654435761u) % (unsigned)later_n);
  if (later_state[j] == 0 && corio_handle_cancel(loop, later_h[j]) == 0) {
    later_state[j] = 2;
    later_done++;
  }
  if (later_done == later_n) corio_future_set_result(later_all, 0);
}
Test(stress_timers, cancelling_while_firing)
{
  enum { N = 50000 };
  unsigned seed = 5;
  int i, fired = 0, cancelled = 0;
  later_n = N;
  later_h = calloc(N, sizeof(*later_h));
  later_state = calloc(N, sizeof(*later_state));
  later_all = corio_future_new(loop);
  for (i = 0; i < N; i++)
    cr_assert_eq(corio_call_later(loop, (rand_r(&seed) % 100) / 1000.0, later_fire,
                                  (void *)(intptr_t)i, &later_h[i]),
                 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, later_all), 0);
  for (i = 0; i < N; i++) {
    fired += later_state[i] == 1;
    cancelled += later_state[i] == 2;
  }
  cr_assert_eq(fired + cancelled, N);
  cr_assert_gt(cancelled, 0);
  corio_future_unref(later_all);
  free(later_h);
  free(later_state);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}
