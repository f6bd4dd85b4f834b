/* Stress: corio_call_soon_threadsafe from 4 threads x 50,000 calls, every call run exactly once
 * on the loop thread, in order per thread. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(stress_threadsafe, .init = setup, .timeout = 10);

enum { THREADS = 4, CALLS = 50000 };

struct producer {
  pthread_t th;
  int id, failures;
  long next_expected, ran, out_of_order;
};
struct call {
  struct producer *p;
  long seq;
};
static struct producer producers[THREADS];
static struct call *calls[THREADS];
static long total;
static corio_future *all_ran;
static pthread_t loop_thread;
static int wrong_thread;

static void on_loop(void *arg)
{
  struct call *c = arg;
  if (!pthread_equal(pthread_self(), loop_thread)) wrong_thread++;
  if (c->seq != c->p->next_expected) c->p->out_of_order++;
  c->p->next_expected = c->seq + 1;
  c->p->ran++;
  if (++total == (long)THREADS * CALLS) corio_future_set_result(all_ran, 0);
}

static void *produce(void *arg)
{
  struct producer *p = arg;
  long i;
  for (i = 0; i < CALLS; i++) {
    calls[p->id][i].p = p;
    calls[p->id][i].seq = i;
    if (corio_call_soon_threadsafe(loop, on_loop, &calls[p->id][i]) != 0) p->failures++;
  }
  return NULL;
}

Test(stress_threadsafe, four_threads_fifty_thousand_calls_each)
{
  int i;
  loop_thread = pthread_self();
  all_ran = corio_future_new(loop);
  for (i = 0; i < THREADS; i++) {
    calls[i] = calloc(CALLS, sizeof(struct call));
    producers[i].id = i;
    cr_assert_eq(pthread_create(&producers[i].th, NULL, produce, &producers[i]), 0);
  }
  cr_assert_eq(corio_loop_run_until_complete(loop, all_ran), 0);
  for (i = 0; i < THREADS; i++) pthread_join(producers[i].th, NULL);
  cr_assert_eq(total, (long)THREADS * CALLS);
  cr_assert_eq(wrong_thread, 0);
  for (i = 0; i < THREADS; i++) {
    cr_assert_eq(producers[i].failures, 0);
    cr_assert_eq(producers[i].ran, CALLS, "thread %d", i);
    cr_assert_eq(producers[i].out_of_order, 0, "thread %d: FIFO per producer", i);
    free(calls[i]);
  }
  corio_future_unref(all_ran);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The same while the loop sleeps between bursts: wakeups must never be lost. Each thread posts
 * in small bursts with pauses, so the loop keeps going to sleep in io_uring_enter. */
static void *produce_bursts(void *arg)
{
  struct producer *p = arg;
  struct timespec ts = {0, 200 * 1000};
  long i;
  for (i = 0; i < CALLS / 10; i++) {
    calls[p->id][i].p = p;
    calls[p->id][i].seq = i;
    if (corio_call_soon_threadsafe(loop, on_loop, &calls[p->id][i]) != 0) p->failures++;
    if (i % 100 == 99) nanosleep(&ts, NULL);
  }
  return NULL;
}
static void on_loop_burst(void *arg)
{
  (void)arg;
}
Test(stress_threadsafe, bursts_against_a_sleeping_loop)
{
  int i;
  loop_thread = pthread_self();
  all_ran = corio_future_new(loop);
  total = (long)THREADS * CALLS - (long)THREADS * (CALLS / 10); /* counts up to the target */
  for (i = 0; i < THREADS; i++) {
    calls[i] = calloc(CALLS, sizeof(struct call));
    producers[i].id = i;
    cr_assert_eq(pthread_create(&producers[i].th, NULL, produce_bursts, &producers[i]), 0);
  }
  cr_assert_eq(corio_call_soon(loop, on_loop_burst, NULL, NULL), 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, all_ran), 0);
  for (i = 0; i < THREADS; i++) {
    pthread_join(producers[i].th, NULL);
    cr_assert_eq(producers[i].failures, 0);
    cr_assert_eq(producers[i].ran, CALLS / 10);
    cr_assert_eq(producers[i].out_of_order, 0);
    free(calls[i]);
  }
  corio_future_unref(all_ran);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}
