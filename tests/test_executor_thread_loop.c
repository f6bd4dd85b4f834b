/* Thread pool with a loop: corio_run_in_executor (explicit and default pool), completions batched
 * through the loop's inbox, close refused while jobs are in flight, tasks awaiting jobs. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <corio.h>
#include "test_executor_thread_tsan.h"

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(thread_pool_loop, .init = setup, .timeout = 30);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

static int count_threads(void)
{
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  cr_assert_not_null(d);
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static void square(corio_job *job)
{
  int64_t x = (int64_t)(intptr_t)corio_job_arg(job);
  corio_job_return(job, x * x);
}

Test(thread_pool_loop, default_pool_is_created_lazily_and_closed_with_the_loop)
{
  int before = count_threads();
  corio_future *f;
  cr_assert_eq(count_threads(), before);
  f = corio_run_in_executor(loop, NULL, square, (void *)7);
  cr_assert_not_null(f);
  cr_assert_eq(corio_future_loop(f), loop, "the future belongs to the loop");
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_int(f), 49);
  corio_future_unref(f);
  cr_assert_eq(count_threads(), before + 1);
  f = corio_run_in_executor(loop, NULL, square, (void *)8);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_int(f), 64);
  corio_future_unref(f);
  cr_assert_eq(count_threads(), before + 1, "same pool, same idle worker");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
  cr_assert_eq(count_threads(), before, "the default pool is joined at close");
}

/* Completions that arrive while the loop is busy wait in the inbox: no eventfd write each. */
#define NJOBS 1000
static int done_count;
static void count_done(corio_future *f, void *arg)
{
  (void)arg;
  if (corio_future_error(f) == 0) done_count++;
  if (done_count == NJOBS) corio_loop_stop(loop);
}
static void quick(corio_job *job)
{
  corio_job_return(job, 1);
}
static corio_executor *busy_ex;
static void busy_callback(void *arg)
{
  corio_future **f = arg;
  int i;
  for (i = 0; i < NJOBS; i++) {
    f[i] = corio_run_in_executor(loop, busy_ex, quick, NULL);
    corio_future_add_done_callback(f[i], count_done, NULL);
  }
  /* The loop is busy while the workers finish everything: shutdown(wait) returns once every
   * worker has run its last job and handed it over (a fixed sleep was not always enough for a
   * loaded machine, and completions arriving after it cost more posts and wakeups). */
  cr_assert_eq(corio_executor_shutdown(busy_ex, 1, 0, 60), 0);
}

Test(thread_pool_loop, many_completions_while_busy_cost_few_wakeups)
{
  corio_thread_pool_opts o = {.max_workers = 4};
  corio_future **f = calloc(NJOBS, sizeof(*f));
  corio_loop_stats s0, s1;
  int i;
  cr_assert_eq(corio_thread_pool_new(&busy_ex, &o), 0);
  corio_loop_get_stats(loop, &s0);
  corio_call_soon(loop, busy_callback, f, NULL);
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  corio_loop_get_stats(loop, &s1);
  cr_assert_eq(done_count, NJOBS);
  /* Completions travel in outboxes of up to 60 jobs (executor.c), one inbox post each: the
   * loop is busy throughout, so every outbox fills before it is taken, but for the last one
   * of each worker. */
  cr_assert_leq(s1.posts - s0.posts, NJOBS / 60 + 4 + 2, "%llu posts for %d completions",
                (unsigned long long)(s1.posts - s0.posts), NJOBS);
  cr_assert_geq(s1.posts - s0.posts, (NJOBS + 59) / 60);
  cr_assert_leq(s1.wakeups - s0.wakeups, 3, "%llu wakeups for %d completions",
                (unsigned long long)(s1.wakeups - s0.wakeups), NJOBS);
  cr_assert_leq(s1.iterations - s0.iterations, 10, "%llu iterations",
                (unsigned long long)(s1.iterations - s0.iterations));
  for (i = 0; i < NJOBS; i++) corio_future_unref(f[i]);
  free(f);
  corio_executor_free(busy_ex);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A job blocked until released: the loop cannot close while it is in flight. */
static int gate[2];
static _Atomic int gated_started;
static void gated(corio_job *job)
{
  char c;
  atomic_store(&gated_started, 1);
  corio_job_return(job, read(gate[0], &c, 1));
}

Test(thread_pool_loop, close_is_busy_while_jobs_are_in_flight)
{
  corio_future *f;
  corio_executor *ex;
  corio_thread_pool_opts o = {.max_workers = 1};
  cr_assert_eq(pipe(gate), 0);
  f = corio_run_in_executor(loop, NULL, gated, NULL);
  corio_future_unref(f); /* dropped: the job still runs and still keeps the loop */
  cr_assert_eq(corio_loop_close(loop), -EBUSY);
  cr_assert_eq(corio_loop_run_once(loop, 0), 1, "alive");
  cr_assert_eq(write(gate[1], "x", 1), 1);
  while (corio_loop_run_once(loop, 0.01) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);

  /* same with an explicit pool */
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  f = corio_run_in_executor(loop, ex, gated, NULL);
  cr_assert_eq(corio_loop_close(loop), -EBUSY);
  cr_assert_eq(write(gate[1], "y", 1), 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_int(f), 1);
  corio_future_unref(f);
  /* The loop may close while the pool lives on: the worker that posted the completion dropped
   * the loop's count of jobs in flight only after its last touch of the loop. */
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
  corio_executor_free(ex);
  close(gate[0]);
  close(gate[1]);
}

static void *from_other_thread(void *arg)
{
  return corio_run_in_executor(arg, NULL, square, (void *)2);
}

Test(thread_pool_loop, run_in_executor_errors)
{
  corio_future *f;
  corio_executor *ex;
  pthread_t th;
  void *ret;
  f = corio_run_in_executor(NULL, NULL, square, NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  f = corio_run_in_executor(loop, NULL, NULL, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  pthread_create(&th, NULL, from_other_thread, loop);
  pthread_join(th, &ret);
  f = ret;
  cr_assert_eq(corio_future_error(f), CORIO_E_WRONG_THREAD);
  cr_assert_null(corio_future_loop(f));
  corio_future_unref(f);

  cr_assert_eq(corio_thread_pool_new(&ex, NULL), 0);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, -1), 0);
  f = corio_run_in_executor(loop, ex, square, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), CORIO_E_CLOSED);
  corio_future_unref(f);
  corio_executor_free(ex);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Tasks awaiting loop jobs: results, and cancellation of a pending one removes it. */
struct sq_task {
  corio_task task;
  int64_t x;
};

static corio_step sq_step(corio_task *t)
{
  struct sq_task *s = corio_container_of(t, struct sq_task, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_run_in_executor(t->loop, NULL, square, (void *)(intptr_t)s->x));
  CORIO_AWAIT_TRY(
      t, corio_run_in_executor(t->loop, NULL, square, (void *)corio_future_int(corio_awaited(t))));
  CORIO_RETURN(t, corio_future_int(corio_awaited(t)));
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(thread_pool_loop, tasks_await_jobs_gathered)
{
  corio_future *tasks[20], *all;
  struct sq_task *s;
  int i;
  for (i = 0; i < 20; i++) {
    s = corio_task_new(loop, sq_step, struct sq_task, task);
    s->x = i;
    tasks[i] = corio_task_spawn(&s->task);
    corio_future_unref(&s->task.fut);
  }
  all = corio_gather(tasks, 20, 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, all), 0);
  cr_assert_eq(corio_future_error(all), 0);
  cr_assert_eq(corio_gather_size(all), 20);
  for (i = 0; i < 20; i++) {
    int64_t x2 = (int64_t)i * i;
    cr_assert_eq(corio_future_int(corio_gather_child(all, (size_t)i)), x2 * x2);
  }
  corio_future_unref(all);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

static _Atomic int ran;
static void counted(corio_job *job)
{
  atomic_fetch_add(&ran, 1);
  corio_job_return(job, 1);
}

Test(thread_pool_loop, cancel_a_pending_loop_job)
{
  corio_executor *ex;
  corio_thread_pool_opts o = {.max_workers = 1};
  corio_future *blocker, *f;
  cr_assert_eq(pipe(gate), 0);
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  blocker = corio_run_in_executor(loop, ex, gated, NULL);
  f = corio_run_in_executor(loop, ex, counted, NULL);
  while (!atomic_load(&gated_started)) usleep(100);
  cr_assert_eq(corio_future_cancel(f), 1);
  cr_assert(corio_future_cancelled(f));
  cr_assert_eq(corio_future_cancel(blocker), 0, "running");
  cr_assert_eq(write(gate[1], "x", 1), 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, blocker), 0);
  cr_assert_eq(corio_future_int(blocker), 1);
  corio_future_unref(blocker);
  corio_future_unref(f);
  corio_executor_free(ex);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
  cr_assert_eq(atomic_load(&ran), 0);
  close(gate[0]);
  close(gate[1]);
}

/* A plain thread waits on loop futures while the loop runs (futex_waitv path of wait_any). */
struct any_arg {
  corio_future **f;
  int n, order[4], errors;
};

/* Job i returns label[i] once released (a byte in pipe i). The waiter releases them one at a
 * time, the next once it has seen the last: the order of completion is the test's, not a race
 * between sleeps that a loaded machine may reorder. */
static const int label[4] = {300, 20, 150, 450};
static const int release_order[4] = {1, 2, 0, 3};
static int held_fd[4][2];
static void held(corio_job *job)
{
  int i = (int)(intptr_t)corio_job_arg(job);
  char c;
  corio_job_return(job, read(held_fd[i][0], &c, 1) == 1 ? label[i] : -1);
}
static int release(int i)
{
  return write(held_fd[i][1], "x", 1) == 1 ? 0 : 1;
}

static void *any_waiter(void *arg)
{
  struct any_arg *a = arg;
  corio_future *left[4];
  int n = a->n, k = 0, i, idx;
  for (i = 0; i < n; i++) left[i] = a->f[i];
  a->errors += release(release_order[0]);
  while (n > 0) {
    idx = corio_futures_wait_any(left, (size_t)n, 10);
    if (idx < 0) {
      a->errors++;
      break;
    }
    a->order[k++] = (int)corio_future_int(left[idx]);
    left[idx] = left[--n];
    if (k < a->n) a->errors += release(release_order[k]);
  }
  for (; k < a->n; k++) release(release_order[k]); /* after an error: let the gather end */
  return NULL;
}

Test(thread_pool_loop, wait_any_on_loop_futures_from_a_thread)
{
  corio_future *f[4], *all;
  struct any_arg a = {f, 4, {0}, 0};
  pthread_t th;
  corio_executor *ex;
  corio_thread_pool_opts o = {.max_workers = 4};
  int i;
  for (i = 0; i < 4; i++) cr_assert_eq(pipe(held_fd[i]), 0);
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  for (i = 0; i < 4; i++) f[i] = corio_run_in_executor(loop, ex, held, (void *)(intptr_t)i);
  cr_assert_eq(corio_futures_wait_any(f, 4, 1), CORIO_E_WRONG_THREAD, "the loop's own thread");
  pthread_create(&th, NULL, any_waiter, &a);
  for (i = 0; i < 4; i++) corio_future_ref(f[i]);
  all = corio_gather(f, 4, 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, all), 0);
  pthread_join(th, NULL);
  cr_assert_eq(a.errors, 0);
  cr_assert_eq(a.order[0], 20);
  cr_assert_eq(a.order[1], 150);
  cr_assert_eq(a.order[2], 300);
  cr_assert_eq(a.order[3], 450);
  corio_future_unref(all);
  for (i = 0; i < 4; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
  for (i = 0; i < 4; i++) {
    close(held_fd[i][0]);
    close(held_fd[i][1]);
  }
}

/* A loop's job future is completed, and destroyed, on the loop's thread: its value's destructor
 * and the exception handler for an error nobody read run there, even when nobody holds it. */
static pthread_t loop_thread;
static _Atomic int dtor_on_loop, dtor_elsewhere, handler_on_loop, handler_elsewhere;
static void where_dtor(void *p)
{
  free(p);
  atomic_fetch_add(pthread_equal(pthread_self(), loop_thread) ? &dtor_on_loop : &dtor_elsewhere, 1);
}
static void give_ptr(corio_job *job)
{
  corio_job_return_ptr(job, malloc(16), where_dtor);
}
static void give_error(corio_job *job)
{
  corio_job_fail(job, -EIO, "disk on fire");
}
static void handler(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)arg;
  if (ctx->error == -EIO)
    atomic_fetch_add(
        pthread_equal(pthread_self(), loop_thread) ? &handler_on_loop : &handler_elsewhere, 1);
}

Test(thread_pool_loop, loop_futures_finish_on_the_loop_thread)
{
  corio_loop_opts o = {.debug = 1};
  corio_future *f;
  int i;
  cr_assert_eq(corio_loop_close(loop), 0);
  cr_assert_eq(corio_loop_new(&loop, &o), 0);
  corio_loop_set_exception_handler(loop, handler, NULL);
  loop_thread = pthread_self();
  for (i = 0; i < 200; i++) {
    corio_future_unref(corio_run_in_executor(loop, NULL, i % 2 ? give_ptr : give_error, NULL));
  }
  while (atomic_load(&dtor_on_loop) + atomic_load(&dtor_elsewhere) < 100 ||
         atomic_load(&handler_on_loop) + atomic_load(&handler_elsewhere) < 100)
    cr_assert_geq(corio_loop_run_once(loop, 0.01), 0);
  cr_assert_eq(atomic_load(&dtor_on_loop), 100);
  cr_assert_eq(atomic_load(&handler_on_loop), 100);
  cr_assert_eq(atomic_load(&dtor_elsewhere), 0);
  cr_assert_eq(atomic_load(&handler_elsewhere), 0);

  /* held by the caller: read on the loop, dropped there */
  f = corio_run_in_executor(loop, NULL, give_ptr, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_not_null(corio_future_ptr(f));
  corio_future_unref(f);
  cr_assert_eq(atomic_load(&dtor_on_loop), 101);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Jobs for the default pool submitted on the loop's thread wait for the end of the current
 * callback pass and are handed over together (executor.c: flush_deferred). Until then they are
 * pending like any queued job: cancel takes them back, close refuses, running the loop starts
 * them; and none is lost or run twice. */
Test(thread_pool_loop, default_pool_jobs_submitted_before_the_loop_runs)
{
  corio_future *f[100], *c;
  int i;
  atomic_store(&ran, 0);
  for (i = 0; i < 100; i++) {
    f[i] = corio_run_in_executor(loop, NULL, square, (void *)(intptr_t)i);
    cr_assert_not_null(f[i]);
  }
  c = corio_run_in_executor(loop, NULL, counted, NULL);
  cr_assert_eq(corio_loop_close(loop), -EBUSY, "submitted jobs keep the loop open");
  cr_assert_eq(corio_future_cancel(c), 1, "not yet handed to the pool: cancelled at once");
  cr_assert(corio_future_cancelled(c));
  cr_assert_eq(corio_future_cancel(c), 0, "already cancelled");
  corio_future_unref(c);
  for (i = 0; i < 100; i++) {
    cr_assert_eq(corio_loop_run_until_complete(loop, f[i]), 0);
    cr_assert_eq(corio_future_int(f[i]), (int64_t)i * i);
    corio_future_unref(f[i]);
  }
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
  cr_assert_eq(atomic_load(&ran), 0, "the cancelled job never ran");
}

/* A done callback that submits the next job (a chain), next to one that submits two: every job
 * of every pass is handed over, the counts add up, and the loop closes. */
static long chain_left, chain_done;
static void chain_cb(corio_future *f, void *arg)
{
  long fan = (long)(intptr_t)arg, k;
  cr_assert_eq(corio_future_error(f), 0);
  chain_done++;
  for (k = 0; k < fan && chain_left > 0; k++, chain_left--) {
    corio_future *n = corio_run_in_executor(loop, NULL, square, (void *)(intptr_t)3);
    cr_assert_not_null(n);
    cr_assert_eq(corio_future_add_done_callback(n, chain_cb, arg), 0);
    corio_future_unref(n);
  }
}

Test(thread_pool_loop, done_callbacks_submitting_more_jobs)
{
  long fan;
  for (fan = 1; fan <= 2; fan++) {
    corio_future *f = corio_run_in_executor(loop, NULL, square, (void *)(intptr_t)2);
    chain_left = 5000;
    chain_done = 0;
    cr_assert_eq(corio_future_add_done_callback(f, chain_cb, (void *)(intptr_t)fan), 0);
    corio_future_unref(f);
    while (corio_loop_run_once(loop, 1) > 0) {
    }
    cr_assert_eq(chain_left, 0);
    cr_assert_eq(chain_done, 5001, "fan %ld", fan);
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Two loops in two threads share one pool: a worker's outbox (executor.c) belongs to one loop,
 * and a worker alternating between the loops' jobs starts a new one at each switch. Every
 * result reaches its own loop, both loops close, and nothing leaks (ASan) or races (TSan). */
#define SHARED_JOBS 3000
static corio_executor *shared_ex;
static void *sharing_loop(void *arg)
{
  corio_loop *l;
  corio_future **f = calloc(SHARED_JOBS, sizeof(*f));
  intptr_t bad = 0, i;
  (void)arg;
  if (!f || corio_loop_new(&l, NULL) < 0) return (void *)1;
  for (i = 0; i < SHARED_JOBS; i++) {
    f[i] = corio_run_in_executor(l, shared_ex, square, (void *)i);
    if (!f[i]) return (void *)1;
    if (i % 97 == 0) corio_loop_run_once(l, 0); /* let completions arrive while submitting */
  }
  for (i = 0; i < SHARED_JOBS; i++) {
    if (corio_loop_run_until_complete(l, f[i]) < 0 || corio_future_int(f[i]) != i * i) bad++;
    corio_future_unref(f[i]);
  }
  while (corio_loop_run_once(l, 0) > 0) {
  }
  if (corio_loop_close(l) < 0) bad++;
  free(f);
  return (void *)bad;
}

Test(thread_pool_loop, two_loops_share_a_pool)
{
  corio_thread_pool_opts o = {.max_workers = 2};
  pthread_t th[2];
  void *rv;
  int i, round;
  for (round = 0; round < 3; round++) {
    cr_assert_eq(corio_thread_pool_new(&shared_ex, &o), 0);
    for (i = 0; i < 2; i++) cr_assert_eq(pthread_create(&th[i], NULL, sharing_loop, NULL), 0);
    for (i = 0; i < 2; i++) {
      cr_assert_eq(pthread_join(th[i], &rv), 0);
      cr_assert_null(rv, "loop %d: %ld bad results", i, (long)(intptr_t)rv);
    }
    corio_executor_free(shared_ex);
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Waiting for a default-pool job, the loop may poll its inbox for a few microseconds instead of
 * sleeping (loop.c: spin_for_completion; its policy is tested in test_loop_ops.c). Whether it
 * polls depends on where the scheduler put the threads: either way, round trips of empty jobs
 * and of jobs that keep a CPU busy for 2 ms (every poll misses) all complete with their
 * results, and a poll never counts a hit it did not see. */
static void busy_2ms(corio_job *job) /* on the CPU, so that the loop runs on the other one */
{
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do clock_gettime(CLOCK_MONOTONIC, &t);
  while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 2000000L);
  corio_job_return(job, 1);
}

Test(thread_pool_loop, round_trips_with_polling_for_completions)
{
  corio_loop_stats s;
  corio_future *f;
  int i;
  for (i = 0; i < 400; i++) {
    bool slow = i % 40 >= 30; /* 30 empty jobs, then 10 of 2 ms */
    f = corio_run_in_executor(loop, NULL, slow ? busy_2ms : square, (void *)(intptr_t)i);
    cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
    cr_assert_eq(corio_future_int(f), slow ? 1 : (int64_t)i * i);
    corio_future_unref(f);
  }
  corio_loop_get_stats(loop, &s);
  cr_assert_leq(s.spin_hits, s.spins);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
