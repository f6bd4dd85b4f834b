/* Barrier: arrival indices, cycles, reset, abort, and a cancelled party breaking it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(barrier, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

Test(barrier, indices_and_release)
{
  corio_barrier *b = corio_barrier_new(loop, 3);
  corio_future *f[3];
  int i;
  cr_assert_not_null(b);
  for (i = 0; i < 2; i++) {
    f[i] = corio_barrier_wait(b);
    cr_assert_not(corio_future_done(f[i]));
    cr_assert_eq(corio_barrier_n_waiting(b), (unsigned)i + 1);
  }
  cr_assert_eq(corio_barrier_free(b), -EBUSY);
  f[2] = corio_barrier_wait(b);
  for (i = 0; i < 3; i++) {
    cr_assert(corio_future_done(f[i]));
    cr_assert_eq(corio_future_error(f[i]), 0);
    cr_assert_eq(corio_future_int(f[i]), i, "arrival index");
    corio_future_unref(f[i]);
  }
  cr_assert_eq(corio_barrier_n_waiting(b), 0);
  cr_assert_eq(corio_barrier_broken(b), 0);
  drain();
  cr_assert_eq(corio_barrier_free(b), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(barrier, single_party_never_waits)
{
  corio_barrier *b = corio_barrier_new(loop, 1);
  corio_future *f = corio_barrier_wait(b);
  cr_assert(corio_future_done(f));
  cr_assert_eq(corio_future_int(f), 0);
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_barrier_free(b), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(barrier, bad_input)
{
  corio_future *f = corio_barrier_wait(NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  cr_assert_null(corio_barrier_new(loop, 0));
  cr_assert_null(corio_barrier_new(NULL, 2));
  cr_assert_eq(corio_barrier_free(NULL), -EINVAL);
  cr_assert_eq(corio_barrier_broken(NULL), -EINVAL);
  cr_assert_eq(corio_barrier_n_waiting(NULL), 0);
  corio_barrier_reset(NULL);
  corio_barrier_abort(NULL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(barrier, abort_breaks_until_reset)
{
  corio_barrier *b = corio_barrier_new(loop, 3);
  corio_future *a = corio_barrier_wait(b), *c;
  corio_barrier_abort(b);
  cr_assert_eq(corio_future_error(a), CORIO_E_BROKEN_BARRIER);
  cr_assert_eq(corio_barrier_broken(b), 1);
  cr_assert_eq(corio_barrier_n_waiting(b), 0);
  c = corio_barrier_wait(b);
  cr_assert_eq(corio_future_error(c), CORIO_E_BROKEN_BARRIER, "broken: fails at once");
  corio_future_unref(a);
  corio_future_unref(c);
  corio_barrier_reset(b);
  cr_assert_eq(corio_barrier_broken(b), 0);
  a = corio_barrier_wait(b);
  cr_assert_not(corio_future_done(a), "usable again after reset");
  corio_future_unref(a); /* a party that leaves breaks the barrier */
  cr_assert_eq(corio_barrier_broken(b), 1);
  drain();
  cr_assert_eq(corio_barrier_free(b), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(barrier, reset_breaks_waiters_but_stays_usable)
{
  corio_barrier *b = corio_barrier_new(loop, 2);
  corio_future *a = corio_barrier_wait(b), *c, *d;
  corio_barrier_reset(b);
  cr_assert_eq(corio_future_error(a), CORIO_E_BROKEN_BARRIER);
  cr_assert_eq(corio_barrier_broken(b), 0);
  c = corio_barrier_wait(b);
  d = corio_barrier_wait(b);
  cr_assert_eq(corio_future_int(c), 0);
  cr_assert_eq(corio_future_int(d), 1);
  cr_assert_eq(corio_future_error(d), 0);
  corio_future_unref(a);
  corio_future_unref(c);
  corio_future_unref(d);
  drain();
  cr_assert_eq(corio_barrier_free(b), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(barrier, cancelled_waiter_breaks_barrier)
{
  corio_barrier *b = corio_barrier_new(loop, 3);
  corio_future *a = corio_barrier_wait(b), *c = corio_barrier_wait(b);
  cr_assert_eq(corio_future_cancel(c), 1);
  cr_assert(corio_future_cancelled(c));
  cr_assert_eq(corio_future_error(a), CORIO_E_BROKEN_BARRIER);
  cr_assert_eq(corio_barrier_broken(b), 1);
  cr_assert_eq(corio_barrier_n_waiting(b), 0);
  corio_future_unref(a);
  corio_future_unref(c);
  drain();
  cr_assert_eq(corio_barrier_free(b), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- tasks ---- */

enum { PARTIES = 4, ROUNDS = 5 };
static int arrived[ROUNDS], index_seen[ROUNDS][PARTIES], broken_seen;

struct party {
  corio_task task;
  corio_barrier *b;
  int id, round, y, err;
};

static corio_step party_step(corio_task *t)
{
  struct party *p = corio_container_of(t, struct party, task);
  int64_t idx;
  CORIO_BEGIN(t);
  for (p->round = 0; p->round < ROUNDS; p->round++) {
    /* Arrive at different times in every round. */
    for (p->y = 0; p->y < (p->id + p->round) % PARTIES; p->y++) CORIO_YIELD(t);
    arrived[p->round]++;
    CORIO_AWAIT_TRY(t, corio_barrier_wait(p->b));
    /* Nobody leaves a round before everybody arrived at it. */
    cr_assert_eq(arrived[p->round], PARTIES);
    idx = corio_future_int(corio_awaited(t));
    cr_assert(idx >= 0 && idx < PARTIES);
    index_seen[p->round][idx]++;
  }
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  p->err = corio_task_error(t);
  if (p->err == CORIO_E_BROKEN_BARRIER) broken_seen++;
  CORIO_END(t);
}

static struct party *party_new(corio_barrier *b, int id)
{
  struct party *p = corio_task_new(loop, party_step, struct party, task);
  cr_assert_not_null(p);
  p->b = b;
  p->id = id;
  cr_assert_eq(corio_task_start(&p->task), 0);
  return p;
}

Test(barrier, cycles)
{
  corio_barrier *b = corio_barrier_new(loop, PARTIES);
  struct party *p[PARTIES];
  int i, r;
  memset(arrived, 0, sizeof(arrived));
  memset(index_seen, 0, sizeof(index_seen));
  for (i = 0; i < PARTIES; i++) p[i] = party_new(b, i);
  for (i = 0; i < PARTIES; i++) {
    cr_assert_eq(corio_loop_run_until_complete(loop, &p[i]->task.fut), 0);
    cr_assert_eq(corio_future_error(&p[i]->task.fut), 0);
    corio_future_unref(&p[i]->task.fut);
  }
  for (r = 0; r < ROUNDS; r++)
    for (i = 0; i < PARTIES; i++)
      cr_assert_eq(index_seen[r][i], 1, "round %d: index %d handed out once", r, i);
  drain();
  cr_assert_eq(corio_barrier_free(b), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void cancel_cb(void *arg)
{
  corio_task_cancel(arg);
}

/* One party is cancelled while waiting: the others fail with CORIO_E_BROKEN_BARRIER. */
Test(barrier, cancelled_task_breaks_the_others)
{
  corio_barrier *b = corio_barrier_new(loop, PARTIES + 1); /* one party never comes */
  struct party *p[PARTIES];
  int i;
  memset(arrived, 0, sizeof(arrived));
  broken_seen = 0;
  for (i = 0; i < PARTIES; i++) p[i] = party_new(b, i);
  corio_call_later(loop, 0.01, cancel_cb, &p[2]->task, NULL);
  for (i = 0; i < PARTIES; i++)
    cr_assert_eq(corio_loop_run_until_complete(loop, &p[i]->task.fut), 0);
  cr_assert(corio_future_cancelled(&p[2]->task.fut));
  for (i = 0; i < PARTIES; i++) {
    if (i != 2) cr_assert_eq(corio_future_error(&p[i]->task.fut), CORIO_E_BROKEN_BARRIER);
    corio_future_unref(&p[i]->task.fut);
  }
  cr_assert_eq(broken_seen, PARTIES - 1);
  cr_assert_eq(corio_barrier_broken(b), 1);
  drain();
  cr_assert_eq(corio_barrier_free(b), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
