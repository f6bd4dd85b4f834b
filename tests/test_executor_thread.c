/* Thread pool: jobs and results of every kind, waiting from threads and awaiting from tasks,
 * workers started on demand, their names and initializer, bad input, submit after shutdown. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <corio.h>
#include "test_executor_thread_tsan.h"

TestSuite(thread_pool, .timeout = 60);

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

static corio_executor *pool(unsigned max)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = max};
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  return ex;
}

/* ---- results ---- */

static void square(corio_job *job)
{
  int64_t x = (int64_t)(intptr_t)corio_job_arg(job);
  corio_job_return(job, x * x);
}

/* input bytes back, reversed */
static void reverse(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  uint8_t buf[64];
  size_t i;
  cr_assert_leq(in->len, sizeof(buf));
  for (i = 0; i < in->len; i++) buf[i] = in->data[in->len - 1 - i];
  corio_job_return_bytes(job, buf, in->len);
}

#define N 10000

Test(thread_pool, ten_thousand_jobs_every_result_checked)
{
  corio_executor *ex = pool(4);
  corio_future **f = calloc(N, sizeof(*f));
  char in[32];
  int i, len;
  for (i = 0; i < N; i++) {
    if (i % 2) {
      f[i] = corio_executor_submit(ex, square, (void *)(intptr_t)i);
    } else {
      len = snprintf(in, sizeof(in), "job-%d", i);
      f[i] = corio_executor_submit_bytes(ex, reverse, in, (size_t)len);
    }
    cr_assert_not_null(f[i]);
  }
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0);
    if (i % 2) {
      cr_assert_eq(corio_future_int(f[i]), (int64_t)i * i);
    } else {
      const corio_bytes *b = corio_future_bytes(f[i]);
      char want[32];
      int j;
      len = snprintf(in, sizeof(in), "job-%d", i);
      for (j = 0; j < len; j++) want[j] = in[len - 1 - j];
      cr_assert_not_null(b);
      cr_assert_eq(b->len, (size_t)len);
      cr_assert_eq(memcmp(b->data, want, (size_t)len), 0);
    }
    corio_future_unref(f[i]);
  }
  free(f);
  corio_executor_free(ex);
}

static _Atomic int dtor_calls;
static void count_dtor(void *p)
{
  atomic_fetch_add(&dtor_calls, 1);
  free(p);
}
static void make_ptr(corio_job *job)
{
  int *p = malloc(sizeof(*p));
  *p = 1234;
  corio_job_return_ptr(job, p, count_dtor);
}
static void make_error(corio_job *job)
{
  corio_job_return(job, 5); /* replaced by the failure */
  corio_job_fail(job, -EDOM, "value %d out of range", 42);
}
static void make_error_no_text(corio_job *job)
{
  corio_job_fail(job, -ENOSPC, NULL);
}
static void make_error_positive(corio_job *job)
{
  corio_job_fail(job, 3, "positive codes become EINVAL");
}
static void set_nothing(corio_job *job)
{
  (void)job;
}
static void replace_ptr(corio_job *job)
{
  int *p = malloc(sizeof(*p));
  corio_job_return_ptr(job, p, count_dtor); /* freed when replaced */
  corio_job_return_bytes(job, "xy", 2);
}
static void check_inputs(corio_job *job)
{
  /* submit: the pointer and empty bytes; submit_bytes: NULL and the bytes */
  const corio_bytes *in = corio_job_input(job);
  if (corio_job_arg(job))
    corio_job_return(job, in->len == 0 ? 1 : -1);
  else
    corio_job_return(job, (int64_t)in->len);
}

Test(thread_pool, results_of_every_kind)
{
  corio_executor *ex = pool(2);
  corio_future *f;
  int *p;

  atomic_store(&dtor_calls, 0);
  f = corio_executor_submit(ex, make_ptr, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_error(f), 0);
  p = corio_future_ptr(f);
  cr_assert_not_null(p);
  cr_assert_eq(*p, 1234);
  corio_future_unref(f);
  /* the worker drops the job's reference just after completing: it may be the last one */
  for (int i = 0; i < 5000 && atomic_load(&dtor_calls) == 0; i++) usleep(1000);
  cr_assert_eq(atomic_load(&dtor_calls), 1, "the pointer is destroyed with the future");

  f = corio_executor_submit(ex, make_ptr, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  p = corio_future_steal_ptr(f);
  corio_future_unref(f);
  usleep(10000);
  cr_assert_eq(atomic_load(&dtor_calls), 1, "a stolen pointer is the caller's");
  free(p);

  f = corio_executor_submit(ex, make_error, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_error(f), -EDOM);
  cr_assert_str_eq(corio_future_error_message(f), "value 42 out of range");
  cr_assert_eq(corio_future_int(f), 0);
  corio_future_unref(f);

  f = corio_executor_submit(ex, make_error_no_text, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_error(f), -ENOSPC);
  cr_assert_str_eq(corio_future_error_message(f), corio_strerror(-ENOSPC));
  corio_future_unref(f);

  f = corio_executor_submit(ex, make_error_positive, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  cr_assert_str_eq(corio_future_error_message(f), "positive codes become EINVAL");
  corio_future_unref(f);

  f = corio_executor_submit(ex, set_nothing, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_int(f), 0);
  corio_future_unref(f);

  f = corio_executor_submit(ex, replace_ptr, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(atomic_load(&dtor_calls), 2, "replaced in the job: freed there");
  cr_assert_eq(corio_future_bytes(f)->len, 2);
  cr_assert_eq(memcmp(corio_future_bytes(f)->data, "xy", 2), 0);
  corio_future_unref(f);

  f = corio_executor_submit(ex, check_inputs, &dtor_calls);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_int(f), 1);
  corio_future_unref(f);
  f = corio_executor_submit_bytes(ex, check_inputs, "abc", 3);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_int(f), 3);
  corio_future_unref(f);
  f = corio_executor_submit_bytes(ex, check_inputs, NULL, 0);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_int(f), 0);
  corio_future_unref(f);

  corio_executor_free(ex);
}

Test(thread_pool, job_api_rejects_null)
{
  cr_assert_null(corio_job_arg(NULL));
  cr_assert_null(corio_job_input(NULL));
  cr_assert_eq(corio_job_return(NULL, 1), -EINVAL);
  cr_assert_eq(corio_job_return_bytes(NULL, "a", 1), -EINVAL);
  cr_assert_eq(corio_job_return_ptr(NULL, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_job_fail(NULL, -EIO, "x"), -EINVAL);
  cr_assert_eq(corio_job_cancelled(NULL), 0);
  cr_assert_eq(corio_job_worker(NULL), -1);
}

static void bytes_null(corio_job *job)
{
  corio_job_return(job, corio_job_return_bytes(job, NULL, 3));
}

Test(thread_pool, bad_input_is_a_clear_error)
{
  corio_executor *ex = pool(1);
  corio_future *f;
  cr_assert_eq(corio_thread_pool_new(NULL, NULL), -EINVAL);

  f = corio_executor_submit(NULL, square, NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  f = corio_executor_submit(ex, NULL, NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  f = corio_executor_submit_bytes(ex, reverse, NULL, 5);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_error(f), 0, "NULL data means no input");
  cr_assert_eq(corio_future_bytes(f)->len, 0);
  corio_future_unref(f);

  f = corio_executor_submit(ex, bytes_null, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_eq(corio_future_int(f), -EINVAL);
  corio_future_unref(f);

  cr_assert_eq(corio_executor_shutdown(NULL, 1, 0, -1), -EINVAL);
  corio_executor_free(NULL);
  corio_executor_free(ex);
}

Test(thread_pool, submit_after_shutdown_fails_closed)
{
  corio_executor *ex = pool(2);
  corio_future *f = corio_executor_submit(ex, square, (void *)3);
  corio_future *g;
  corio_bytes in = {(uint8_t *)"a", 1};
  corio_future *out[1];
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, -1), 0);
  cr_assert(corio_future_done(f), "shutdown(wait) ran the pending job");
  cr_assert_eq(corio_future_int(f), 9);
  g = corio_executor_submit(ex, square, (void *)3);
  cr_assert_not_null(g);
  cr_assert(corio_future_done(g));
  cr_assert_eq(corio_future_error(g), CORIO_E_CLOSED);
  cr_assert_not_null(corio_future_error_message(g));
  corio_future_unref(g);
  g = corio_executor_submit_bytes(ex, reverse, "ab", 2);
  cr_assert_eq(corio_future_error(g), CORIO_E_CLOSED);
  corio_future_unref(g);
  cr_assert_eq(corio_executor_map(ex, reverse, &in, 1, 1, out), CORIO_E_CLOSED);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 1, 0), 0, "idempotent");
  corio_future_unref(f);
  corio_executor_free(ex);
}

/* ---- waiting from threads ---- */

struct waiter_arg {
  corio_executor *ex;
  corio_future *shared;
  int base, errors;
};

static void *waiter_thread(void *arg)
{
  struct waiter_arg *w = arg;
  int i;
  for (i = 0; i < 200; i++) {
    corio_future *f = corio_executor_submit(w->ex, square, (void *)(intptr_t)(w->base + i));
    if (corio_future_wait(f, 10) != 0 ||
        corio_future_int(f) != (int64_t)(w->base + i) * (w->base + i))
      w->errors++;
    corio_future_unref(f);
  }
  if (corio_future_wait(w->shared, 10) != 0 || corio_future_int(w->shared) != 49) w->errors++;
  return NULL;
}

static int gate[2];
static void wait_gate(corio_job *job)
{
  char c;
  cr_assert_eq(read(gate[0], &c, 1), 1);
  corio_job_return(job, 49);
}

Test(thread_pool, wait_from_plain_threads)
{
  corio_executor *ex = pool(3);
  pthread_t th[4];
  struct waiter_arg w[4];
  corio_future *shared;
  int i;
  cr_assert_eq(pipe(gate), 0);
  shared = corio_executor_submit(ex, wait_gate, NULL);
  for (i = 0; i < 4; i++) {
    w[i] = (struct waiter_arg){ex, shared, i * 1000, 0};
    pthread_create(&th[i], NULL, waiter_thread, &w[i]);
  }
  usleep(20000);
  cr_assert_eq(corio_future_wait(shared, 0.01), -ETIMEDOUT);
  cr_assert_eq(write(gate[1], "x", 1), 1);
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(w[i].errors, 0);
  }
  corio_future_unref(shared);
  corio_executor_free(ex);
  close(gate[0]);
  close(gate[1]);
}

/* ---- awaiting from tasks ---- */

struct chain {
  corio_task task;
  corio_executor *ex;
  int i;
  int64_t sum;
};

static corio_step chain_step(corio_task *t)
{
  struct chain *c = corio_container_of(t, struct chain, task);
  CORIO_BEGIN(t);
  for (c->i = 1; c->i <= 50; c->i++) {
    CORIO_AWAIT_TRY(t, corio_executor_submit(c->ex, square, (void *)(intptr_t)c->i));
    c->sum += corio_future_int(corio_awaited(t));
  }
  CORIO_AWAIT(t, corio_executor_submit(c->ex, make_error, NULL));
  if (corio_future_error(corio_awaited(t)) != -EDOM) CORIO_THROW(t, -EPROTO);
  CORIO_AWAIT_TRY(t, corio_executor_submit(c->ex, make_error, NULL));
  CORIO_RETURN(t, -1); /* not reached: the failure unwinds */
  CORIO_FINALLY(t);
  if (corio_task_error(t) == -EDOM) {
    corio_task_catch(t);
    CORIO_RETURN(t, c->sum);
  }
  CORIO_END(t);
}

Test(thread_pool, await_from_a_task)
{
  corio_loop *loop;
  corio_executor *ex = pool(2);
  struct chain *c;
  corio_future *f;
  int64_t want = 0;
  int i;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  c = corio_task_new(loop, chain_step, struct chain, task);
  c->ex = ex;
  f = corio_task_spawn(&c->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  for (i = 1; i <= 50; i++) want += (int64_t)i * i;
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_int(f), want);
  corio_future_unref(f);
  corio_future_unref(&c->task.fut);

  /* run_until_complete on a loop-less job future */
  f = corio_executor_submit(ex, square, (void *)12);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_int(f), 144);
  corio_future_unref(f);
  /* run_until_complete's callback on a loop-less future posts a wakeup to the loop from the
   * worker, possibly after the loop saw the future done: once the pool is joined that post is in
   * the inbox, and one more iteration takes it (see the report on loop.c). */
  corio_executor_free(ex);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- workers on demand, names, initializer ---- */

static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
static int hold_open, hold_in;

static void hold(corio_job *job)
{
  pthread_mutex_lock(&hold_mu);
  hold_in++;
  pthread_cond_broadcast(&hold_cv);
  while (!hold_open) pthread_cond_wait(&hold_cv, &hold_mu);
  pthread_mutex_unlock(&hold_mu);
  corio_job_return(job, corio_job_worker(job));
}

static void hold_reset(void)
{
  pthread_mutex_lock(&hold_mu);
  hold_open = 0;
  hold_in = 0;
  pthread_mutex_unlock(&hold_mu);
}

static void hold_wait_in(int n)
{
  pthread_mutex_lock(&hold_mu);
  while (hold_in < n) pthread_cond_wait(&hold_cv, &hold_mu);
  pthread_mutex_unlock(&hold_mu);
}

static void hold_release(void)
{
  pthread_mutex_lock(&hold_mu);
  hold_open = 1;
  pthread_cond_broadcast(&hold_cv);
  pthread_mutex_unlock(&hold_mu);
}

Test(thread_pool, workers_start_on_demand_and_are_reused)
{
  int before = count_threads();
  corio_executor *ex = pool(3);
  corio_future *f[10];
  int i, seen[3] = {0};
  cr_assert_eq(count_threads(), before, "no worker before the first job");

  for (i = 0; i < 100; i++) { /* one at a time: one worker does them all */
    f[0] = corio_executor_submit(ex, square, (void *)(intptr_t)i);
    cr_assert_eq(corio_future_wait(f[0], 10), 0);
    corio_future_unref(f[0]);
  }
  cr_assert_eq(count_threads(), before + 1, "an idle worker is reused");

  hold_reset();
  for (i = 0; i < 10; i++) f[i] = corio_executor_submit(ex, hold, NULL);
  hold_wait_in(3);
  cr_assert_eq(count_threads(), before + 3, "never more than max_workers");
  usleep(20000);
  cr_assert_eq(hold_in, 3);
  hold_release();
  cr_assert_eq(corio_futures_wait_all(f, 10, 10), 0);
  for (i = 0; i < 10; i++) {
    int64_t w = corio_future_int(f[i]);
    cr_assert(w >= 0 && w < 3, "worker index %lld", (long long)w);
    seen[w] = 1;
    corio_future_unref(f[i]);
  }
  cr_assert(seen[0] && seen[1] && seen[2]);
  corio_executor_free(ex);
  cr_assert_eq(count_threads(), before, "workers are joined by free");
}

/* Python's rule: a queued job that no worker is coming for gets a worker of its own (up to
 * max_workers), even when workers are slow to start. Each worker's initializer sleeps 100 ms and
 * each job 1 s: had every new worker started the next one only once it took its own job (a chain
 * of 20 x 100 ms), the first workers would be done with their jobs and take queued ones before
 * the last workers exist. With the pool starting what its queue needs at once, the 20 jobs run
 * on 20 threads at the same time. */
static void slow_start(void *arg)
{
  (void)arg;
  usleep(100000);
}
static _Atomic int overlap_running, overlap_max;
static void one_second(corio_job *job)
{
  int now = atomic_fetch_add(&overlap_running, 1) + 1, max = atomic_load(&overlap_max);
  while (now > max && !atomic_compare_exchange_weak(&overlap_max, &max, now)) {
  }
  usleep(1000000);
  atomic_fetch_sub(&overlap_running, 1);
  corio_job_return(job, corio_job_worker(job));
}

Test(thread_pool, slow_starting_workers_each_get_a_queued_job)
{
  enum { J = 20 };
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = J, .initializer = slow_start};
  corio_future *f[J];
  bool seen[J] = {false};
  int i, before = count_threads();
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  for (i = 0; i < J; i++) f[i] = corio_executor_submit(ex, one_second, NULL);
  cr_assert_eq(corio_futures_wait_all(f, J, 30), 0);
  for (i = 0; i < J; i++) {
    int64_t w = corio_future_int(f[i]);
    cr_assert(w >= 0 && w < J, "worker index %lld", (long long)w);
    cr_assert_not(seen[w], "worker %lld ran two jobs while others could start", (long long)w);
    seen[w] = true;
    corio_future_unref(f[i]);
  }
  cr_assert_eq(atomic_load(&overlap_max), J, "all jobs ran at once");
  cr_assert_eq(count_threads(), before + J);
  corio_executor_free(ex);
}

/* Jobs queued while a worker polls the queue after its last job still get helpers: a job that
 * blocks never holds up the ones behind it while fewer than max_workers run. */
Test(thread_pool, a_blocked_job_does_not_hold_up_the_next)
{
  corio_executor *ex = pool(2);
  corio_future *warm, *blocked, *quick;
  int round;
  for (round = 0; round < 20; round++) {
    warm = corio_executor_submit(ex, square, (void *)1);
    cr_assert_eq(corio_future_wait(warm, 10), 0);
    corio_future_unref(warm);
    hold_reset();
    blocked = corio_executor_submit(ex, hold, NULL); /* while the worker still polls */
    quick = corio_executor_submit(ex, square, (void *)5);
    cr_assert_eq(corio_future_wait(quick, 10), 0, "round %d", round);
    cr_assert_eq(corio_future_int(quick), 25);
    cr_assert_not(corio_future_done(blocked));
    hold_release();
    cr_assert_eq(corio_future_wait(blocked, 10), 0);
    corio_future_unref(blocked);
    corio_future_unref(quick);
  }
  corio_executor_free(ex);
}

Test(thread_pool, default_max_workers_is_cpus_plus_four_at_most_32)
{
  corio_executor *ex = NULL;
  int before = count_threads(), i, n;
  cpu_set_t set;
  int cpus, want;
  corio_future *f[40];
  cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
  cpus = CPU_COUNT(&set);
  want = cpus + 4 < 32 ? cpus + 4 : 32;
  cr_assert_eq(corio_thread_pool_new(&ex, NULL), 0);
  hold_reset();
  for (i = 0; i < 40; i++) f[i] = corio_executor_submit(ex, hold, NULL);
  hold_wait_in(want);
  usleep(20000);
  n = count_threads() - before;
  cr_assert_eq(n, want, "%d workers, want %d", n, want);
  hold_release();
  cr_assert_eq(corio_futures_wait_all(f, 40, 10), 0);
  for (i = 0; i < 40; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
}

static void my_name(corio_job *job)
{
  char name[32] = "";
  pthread_getname_np(pthread_self(), name, sizeof(name));
  corio_job_return_bytes(job, name, strlen(name) + 1);
}

Test(thread_pool, threads_are_named_prefix_index)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = 2, .thread_name_prefix = "crunch"};
  corio_future *f;
  char want[32];
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  f = corio_executor_submit(ex, my_name, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_str_eq((char *)corio_future_bytes(f)->data, "crunch_0");
  corio_future_unref(f);
  corio_executor_free(ex);

  /* the kernel keeps 15 characters: a long prefix gives way to the index */
  o.thread_name_prefix = "a_very_long_thread_prefix";
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  f = corio_executor_submit(ex, my_name, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  cr_assert_str_eq((char *)corio_future_bytes(f)->data, "a_very_long_t_0");
  corio_future_unref(f);
  corio_executor_free(ex);

  cr_assert_eq(corio_thread_pool_new(&ex, NULL), 0);
  f = corio_executor_submit(ex, my_name, NULL);
  cr_assert_eq(corio_future_wait(f, 10), 0);
  snprintf(want, sizeof(want), "corio_0");
  cr_assert_str_eq((char *)corio_future_bytes(f)->data, want, "default prefix");
  corio_future_unref(f);
  corio_executor_free(ex);
}

static _Atomic int init_calls;
static __thread int initialised_here;
static void init_worker(void *arg)
{
  cr_assert_eq(arg, &init_calls);
  atomic_fetch_add(&init_calls, 1);
  initialised_here = 1;
}
static void was_initialised(corio_job *job)
{
  hold(job);
  corio_job_return(job, initialised_here);
}

Test(thread_pool, initializer_runs_once_per_worker)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = 3, .initializer = init_worker, .initarg = &init_calls};
  corio_future *f[12];
  int i;
  atomic_store(&init_calls, 0);
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  cr_assert_eq(atomic_load(&init_calls), 0);
  hold_reset();
  for (i = 0; i < 12; i++) f[i] = corio_executor_submit(ex, was_initialised, NULL);
  hold_wait_in(3);
  hold_release();
  cr_assert_eq(corio_futures_wait_all(f, 12, 10), 0);
  for (i = 0; i < 12; i++) {
    cr_assert_eq(corio_future_int(f[i]), 1);
    corio_future_unref(f[i]);
  }
  cr_assert_eq(atomic_load(&init_calls), 3);
  corio_executor_free(ex);
  cr_assert_eq(atomic_load(&init_calls), 3);
}

/* ---- submit from many threads ---- */

static void *submitter(void *arg)
{
  corio_executor *ex = arg;
  corio_future *f[500];
  intptr_t i, bad = 0;
  for (i = 0; i < 500; i++) f[i] = corio_executor_submit(ex, square, (void *)i);
  if (corio_futures_wait_all(f, 500, 20) != 0) bad++;
  for (i = 0; i < 500; i++) {
    if (corio_future_int(f[i]) != (int64_t)i * i) bad++;
    corio_future_unref(f[i]);
  }
  return (void *)bad;
}

Test(thread_pool, submit_from_many_threads)
{
  corio_executor *ex = pool(4);
  pthread_t th[6];
  void *bad;
  int i;
  for (i = 0; i < 6; i++) pthread_create(&th[i], NULL, submitter, ex);
  for (i = 0; i < 6; i++) {
    pthread_join(th[i], &bad);
    cr_assert_eq(bad, NULL);
  }
  corio_executor_free(ex);
}

/* callbacks of a loop-less job future run in the worker; one may submit more work */
static _Atomic int chained;
static corio_executor *chain_ex;
static void identity(corio_job *job)
{
  corio_job_return(job, (int64_t)(intptr_t)corio_job_arg(job));
}
static void then_submit(corio_future *f, void *arg)
{
  corio_future *next;
  (void)arg;
  if (corio_future_error(f) == 0 && corio_future_int(f) < 5) {
    next = corio_executor_submit(chain_ex, identity, (void *)(intptr_t)(corio_future_int(f) + 1));
    corio_future_add_done_callback(next, then_submit, NULL);
    corio_future_unref(next);
  }
  atomic_fetch_add(&chained, 1);
}

Test(thread_pool, done_callback_submits_more)
{
  corio_future *f;
  int i;
  chain_ex = pool(2);
  atomic_store(&chained, 0);
  f = corio_executor_submit(chain_ex, identity, (void *)0);
  corio_future_add_done_callback(f, then_submit, NULL);
  corio_future_unref(f);
  for (i = 0; i < 5000 && atomic_load(&chained) < 6; i++) usleep(1000);
  cr_assert_eq(atomic_load(&chained), 6);
  corio_executor_free(chain_ex);
}

/* ---- out of memory, fire and forget ---- */

static _Atomic long allow;
static void *tight_malloc(size_t n, void *ctx)
{
  (void)ctx;
  return atomic_fetch_sub(&allow, 1) > 0 ? malloc(n) : NULL;
}
static void *tight_realloc(void *p, size_t n, void *ctx)
{
  (void)ctx;
  return atomic_fetch_sub(&allow, 1) > 0 ? realloc(p, n) : NULL;
}
static void plain_free(void *p, void *ctx)
{
  (void)ctx;
  free(p);
}

Test(thread_pool, out_of_memory_submits_nothing)
{
  corio_allocator a = {tight_malloc, tight_realloc, plain_free, NULL};
  corio_executor *ex;
  corio_bytes in[10];
  corio_future *out[10];
  int i, k;
  for (i = 0; i < 10; i++) {
    in[i].data = (uint8_t *)"abc";
    in[i].len = 3;
    out[i] = NULL;
  }
  /* The allocator changes only while no worker exists (a worker reads it when it frees). */
  atomic_store(&allow, 1000);
  corio_set_allocator(&a);
  ex = pool(2);
  for (k = 0; k < 20; k++) { /* fail at every allocation of the map in turn */
    atomic_store(&allow, k);
    cr_assert_eq(corio_executor_map(ex, reverse, in, 10, 3, out), -ENOMEM, "k=%d", k);
    for (i = 0; i < 10; i++) cr_assert_null(out[i]);
  }
  atomic_store(&allow, 0);
  cr_assert_null(corio_executor_submit(ex, square, (void *)2));
  cr_assert_null(corio_executor_submit_bytes(ex, reverse, "ab", 2));
  atomic_store(&allow, 1); /* the job, not its input copy */
  cr_assert_null(corio_executor_submit_bytes(ex, reverse, "ab", 2));
  corio_set_allocator(NULL);
  cr_assert_eq(corio_executor_map(ex, reverse, in, 10, 3, out), 0);
  cr_assert_eq(corio_futures_wait_all(out, 10, 10), 0);
  for (i = 0; i < 10; i++) {
    cr_assert_eq(corio_future_bytes(out[i])->len, 3);
    corio_future_unref(out[i]);
  }
  corio_executor_free(ex);
}

Test(thread_pool, fire_and_forget)
{
  corio_executor *ex = pool(3);
  int i;
  atomic_store(&dtor_calls, 0);
  for (i = 0; i < 1000; i++) {
    corio_future_unref(corio_executor_submit(ex, i % 3 ? square : make_ptr, (void *)(intptr_t)i));
    corio_future_unref(corio_executor_submit(ex, make_error, NULL));
  }
  corio_executor_free(ex); /* runs them all; nothing leaks (ASan) */
  cr_assert_eq(atomic_load(&dtor_calls), 334);
}

/* FIFO: a one-worker pool runs jobs in submission order, across single submits and maps (which
 * push a whole run of jobs at once) from one thread, and in each thread's own order when three
 * threads submit at the same time; the worker is held at first, so that runs pile up on the
 * incoming stack and are spliced into the queue together. */
#define FIFO_N 3000
static _Atomic int fifo_log[4 * FIFO_N], fifo_pos;
static int fifo_gate[2];
static void fifo_hold(corio_job *job)
{
  char c;
  corio_job_return(job, read(fifo_gate[0], &c, 1));
}
static void fifo_note(corio_job *job)
{
  int at = atomic_fetch_add(&fifo_pos, 1);
  fifo_log[at] = (int)(intptr_t)corio_job_arg(job);
}
static void fifo_note_bytes(corio_job *job)
{
  int v;
  memcpy(&v, corio_job_input(job)->data, sizeof(v));
  fifo_log[atomic_fetch_add(&fifo_pos, 1)] = v;
}
static corio_executor *fifo_ex;
static void *fifo_submitter(void *arg)
{
  int base = (int)(intptr_t)arg, i;
  for (i = 0; i < FIFO_N; i++)
    corio_future_unref(corio_executor_submit(fifo_ex, fifo_note, (void *)(intptr_t)(base + i)));
  return NULL;
}

Test(thread_pool, jobs_run_in_submission_order)
{
  corio_future *hold, *out[100];
  corio_bytes in[100];
  int vals[100], i, k, last[3] = {-1, -1, -1};
  pthread_t th[3];
  cr_assert_eq(pipe(fifo_gate), 0);
  fifo_ex = pool(1);
  /* one thread: submit, map, submit, map, ... */
  hold = corio_executor_submit(fifo_ex, fifo_hold, NULL);
  for (k = 0, i = 0; k < 10; k++) {
    int j;
    corio_future_unref(corio_executor_submit(fifo_ex, fifo_note, (void *)(intptr_t)i++));
    for (j = 0; j < 100; j++) {
      vals[j] = i++;
      in[j] = (corio_bytes){(uint8_t *)&vals[j], sizeof(int)};
    }
    cr_assert_eq(corio_executor_map(fifo_ex, fifo_note_bytes, in, 100, k % 2 ? 7 : 1, out), 0);
    for (j = 0; j < 100; j++) corio_future_unref(out[j]);
  }
  cr_assert_eq(write(fifo_gate[1], "x", 1), 1);
  corio_future_unref(hold);
  cr_assert_eq(corio_executor_shutdown(fifo_ex, 1, 0, -1), 0);
  cr_assert_eq(atomic_load(&fifo_pos), i);
  for (k = 0; k < i; k++) cr_assert_eq(fifo_log[k], k, "position %d ran job %d", k, fifo_log[k]);
  corio_executor_free(fifo_ex);

  /* three threads at once: each one's jobs in its own order */
  atomic_store(&fifo_pos, 0);
  fifo_ex = pool(1);
  hold = corio_executor_submit(fifo_ex, fifo_hold, NULL);
  for (k = 0; k < 3; k++)
    cr_assert_eq(pthread_create(&th[k], NULL, fifo_submitter, (void *)(intptr_t)(k * FIFO_N)), 0);
  for (k = 0; k < 3; k++) pthread_join(th[k], NULL);
  cr_assert_eq(write(fifo_gate[1], "x", 1), 1);
  corio_future_unref(hold);
  cr_assert_eq(corio_executor_shutdown(fifo_ex, 1, 0, -1), 0);
  cr_assert_eq(atomic_load(&fifo_pos), 3 * FIFO_N);
  for (k = 0; k < 3 * FIFO_N; k++) {
    int v = fifo_log[k], t = v / FIFO_N;
    cr_assert_gt(v, last[t], "thread %d: job %d ran after %d", t, v, last[t]);
    last[t] = v;
  }
  corio_executor_free(fifo_ex);
  close(fifo_gate[0]);
  close(fifo_gate[1]);
}
