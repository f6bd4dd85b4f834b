/* Loop: call_soon_threadsafe from several threads, wakeups, futures completed from threads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(loop_threads, .init = setup, .timeout = 20);

#define NTHREADS   4
#define PER_THREAD 20000

static long counts[NTHREADS];
static long total;
static pthread_t loop_thread;
static int wrong_thread;

static void count_cb(void *arg)
{
  long *c = arg;
  if (!pthread_equal(pthread_self(), loop_thread)) wrong_thread = 1;
  ++*c;
  if (++total == (long)NTHREADS * PER_THREAD) corio_loop_stop(loop);
}

static void *producer(void *arg)
{
  long *c = arg;
  int i;
  for (i = 0; i < PER_THREAD; i++)
    while (corio_call_soon_threadsafe(loop, count_cb, c) == -ENOMEM) usleep(100);
  return NULL;
}

Test(loop_threads, threadsafe_calls_from_many_threads)
{
  pthread_t th[NTHREADS];
  int i;
  loop_thread = pthread_self();
  for (i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, producer, &counts[i]);
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  for (i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  /* anything posted after stop is still delivered */
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(total, (long)NTHREADS * PER_THREAD);
  for (i = 0; i < NTHREADS; i++) cr_assert_eq(counts[i], PER_THREAD);
  cr_assert_eq(wrong_thread, 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A thread posts while the loop sleeps with nothing else to do: the eventfd wakes it. */
static void *late_poster(void *arg)
{
  long *c = arg;
  usleep(50000);
  corio_call_soon_threadsafe(loop, count_cb, c);
  return NULL;
}
static void stop_now(void *arg)
{
  (void)arg;
  corio_loop_stop(loop);
}
static void stop_after(void *arg)
{
  ++*(long *)arg;
  corio_loop_stop(loop);
}

Test(loop_threads, wakes_a_sleeping_loop)
{
  pthread_t th;
  long c = 0;
  (void)stop_now;
  pthread_create(&th, NULL, late_poster, &c);
  /* The loop has nothing alive: it sleeps in io_uring_enter until the post arrives. */
  total = (long)NTHREADS * PER_THREAD - 1; /* the post's count_cb stops the loop */
  loop_thread = pthread_self();
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  pthread_join(th, NULL);
  cr_assert_eq(c, 1);
  (void)stop_after;
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* set_result from another thread: the done callback runs on the loop thread. */
static void on_done(corio_future *f, void *arg)
{
  int *seen = arg;
  seen[0] = pthread_equal(pthread_self(), loop_thread);
  seen[1] = (int)corio_future_int(f);
}
static void *completer(void *arg)
{
  usleep(20000);
  corio_future_set_result(arg, 99);
  /* a second completion from the thread is refused cleanly */
  if (corio_future_set_result(arg, 1) != CORIO_E_INVALID_STATE) abort();
  return NULL;
}

Test(loop_threads, future_completed_from_another_thread)
{
  pthread_t th;
  int seen[2] = {0, 0};
  corio_future *f = corio_future_new(loop);
  loop_thread = pthread_self();
  corio_future_add_done_callback(f, on_done, seen);
  pthread_create(&th, NULL, completer, f);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  pthread_join(th, NULL);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(seen[0], 1);
  cr_assert_eq(seen[1], 99);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A loop-less future: any thread can wait on it; callbacks run in the completing thread. */
static void *waiter(void *arg)
{
  corio_future *f = arg;
  long rc = corio_future_wait(f, 5.0);
  return (void *)rc;
}

Test(loop_threads, loopless_future_wait)
{
  pthread_t th[3];
  void *rc;
  int i;
  corio_future *f = corio_future_new(NULL);
  cr_assert_eq(corio_future_wait(f, 0.01), -ETIMEDOUT);
  for (i = 0; i < 3; i++) pthread_create(&th[i], NULL, waiter, f);
  usleep(20000);
  cr_assert_eq(corio_future_set_result(f, 5), 0);
  for (i = 0; i < 3; i++) {
    pthread_join(th[i], &rc);
    cr_assert_eq((long)rc, 0);
  }
  cr_assert_eq(corio_future_int(f), 5);
  cr_assert_eq(corio_future_wait(f, -1), 0);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(loop_threads, wait_on_loop_future_from_loop_thread_is_refused)
{
  corio_future *f = corio_future_new(loop);
  cr_assert_eq(corio_future_wait(f, 0.1), CORIO_E_WRONG_THREAD);
  corio_future_set_result(f, 1);
  cr_assert_eq(corio_future_wait(f, 0.1), 0); /* done: fine from any thread */
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A task awaiting a loop-less future completed by a thread resumes on its loop. */
struct awaiter {
  corio_task task;
  corio_future *f;
  int on_loop;
};
static corio_step awaiter_step(corio_task *t)
{
  struct awaiter *a = corio_container_of(t, struct awaiter, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_future_ref(a->f));
  a->on_loop = pthread_equal(pthread_self(), loop_thread);
  CORIO_RETURN(t, corio_future_int(corio_awaited(t)));
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(loop_threads, task_awaits_loopless_future)
{
  pthread_t th;
  struct awaiter *a = corio_task_new(loop, awaiter_step, struct awaiter, task);
  loop_thread = pthread_self();
  a->f = corio_future_new(NULL);
  corio_task_start(&a->task);
  pthread_create(&th, NULL, completer, a->f);
  cr_assert_eq(corio_loop_run_until_complete(loop, &a->task.fut), 0);
  pthread_join(th, NULL);
  cr_assert_eq(corio_future_int(&a->task.fut), 99);
  cr_assert_eq(a->on_loop, 1);
  corio_future_unref(a->f);
  corio_future_unref(&a->task.fut);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Posts made while the loop is busy (not sleeping) cost no eventfd write: a burst of posts wakes
 * a sleeping loop once, not once per message. */
static void *burst(void *arg)
{
  long *c = arg;
  int i;
  for (i = 0; i < 10000; i++) corio_call_soon_threadsafe(loop, count_cb, c);
  return NULL;
}
static void busy_spin(void *arg)
{
  /* keep the loop busy (never sleeping) while the burst is posted */
  if (!atomic_load((_Atomic int *)arg)) corio_call_soon(loop, busy_spin, arg, NULL);
}

Test(loop_threads, burst_costs_few_wakeups)
{
  pthread_t th;
  long c = 0;
  _Atomic int stop = 0;
  corio_loop_stats st;
  loop_thread = pthread_self();
  total = 0;
  corio_call_soon(loop, busy_spin, &stop, NULL);
  pthread_create(&th, NULL, burst, &c);
  pthread_join(th, NULL);
  atomic_store(&stop, 1);
  while (c < 10000) corio_loop_run_once(loop, 1.0);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  corio_loop_get_stats(loop, &st);
  cr_assert_eq(st.posts, 10000);
  cr_assert_leq(st.wakeups, 2, "wakeups=%llu for 10000 posts to a busy loop",
                (unsigned long long)st.wakeups);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* run_until_complete on a loop-less future returns only once the completing thread's wakeup has
 * landed: an immediate close must succeed (not -EBUSY for a post still on its way, nor free the
 * loop under the poster: ASan would see that). Many rounds, the completion racing the loop. */
static void *complete_now(void *arg)
{
  if (corio_future_set_result(arg, 7) != 0) abort();
  return NULL;
}

Test(loop_threads, run_until_complete_loopless_then_close)
{
  int round;
  cr_assert_eq(corio_loop_close(loop), 0);
  for (round = 0; round < 300; round++) {
    corio_loop *l;
    pthread_t th;
    corio_future *f = corio_future_new(NULL);
    cr_assert_eq(corio_loop_new(&l, NULL), 0);
    pthread_create(&th, NULL, complete_now, f);
    cr_assert_eq(corio_loop_run_until_complete(l, f), 0);
    cr_assert_eq(corio_future_int(f), 7);
    cr_assert_eq(corio_loop_close(l), 0, "round %d: close refused", round);
    pthread_join(th, NULL);
    corio_future_unref(f);
  }
}

/* A thread's call_soon_threadsafe may still be inside the post (its eventfd write) when the loop
 * has run the callback; closing right then waits it out instead of freeing the loop under it. */
static void flag_cb(void *arg)
{
  *(int *)arg = 1;
}
struct post_arg {
  corio_loop *l;
  int *flag;
};
static void *post_once(void *arg)
{
  struct post_arg *pa = arg;
  if (corio_call_soon_threadsafe(pa->l, flag_cb, pa->flag) != 0) abort();
  return NULL;
}

Test(loop_threads, close_right_after_a_threadsafe_call_ran)
{
  int round;
  cr_assert_eq(corio_loop_close(loop), 0);
  for (round = 0; round < 300; round++) {
    corio_loop *l;
    pthread_t th;
    int flag = 0;
    struct post_arg pa;
    cr_assert_eq(corio_loop_new(&l, NULL), 0);
    pa.l = l;
    pa.flag = &flag;
    pthread_create(&th, NULL, post_once, &pa);
    while (!flag) cr_assert_geq(corio_loop_run_once(l, 1.0), 0);
    cr_assert_eq(corio_loop_close(l), 0, "round %d", round);
    pthread_join(th, NULL);
  }
}

/* A loop future failing with nobody retrieving the error, whose last reference dies in another
 * thread: the loop's exception handler still runs on the loop's thread. */
static pthread_t handler_thread;
static int handler_calls, handler_err;
static void record_handler(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)arg;
  handler_thread = pthread_self();
  handler_calls++;
  handler_err = ctx->error;
}
static void *drop_ref(void *arg)
{
  corio_future_unref(arg);
  return NULL;
}

Test(loop_threads, unretrieved_error_released_in_another_thread)
{
  pthread_t th;
  corio_future *f;
  corio_loop_opts o = {.debug = 1};
  cr_assert_eq(corio_loop_close(loop), 0);
  cr_assert_eq(corio_loop_new(&loop, &o), 0);
  f = corio_future_new(loop);
  corio_loop_set_exception_handler(loop, record_handler, NULL);
  loop_thread = pthread_self();
  cr_assert_eq(corio_future_set_error(f, -EIO), 0);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  pthread_create(&th, NULL, drop_ref, f);
  pthread_join(th, NULL);
  while (handler_calls == 0) cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
  cr_assert_eq(handler_calls, 1);
  cr_assert_eq(handler_err, -EIO);
  cr_assert(pthread_equal(handler_thread, loop_thread), "handler ran in the releasing thread");
  cr_assert_eq(corio_loop_close(loop), 0);
}
