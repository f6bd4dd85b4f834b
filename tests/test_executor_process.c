/* Process pool basics: many jobs, every result kind, initializer, max_tasks_per_child, worker
 * index, shutdown refusing new jobs, a task awaiting a job, and no descriptor or process left
 * behind after free. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "test_executor_process.h"

TestSuite(process_pool, .init = pp_test_setup, .timeout = 60);

static void square(corio_job *job)
{
  int64_t v = input_i64(job);
  corio_job_return(job, v * v + 1);
}

Test(process_pool, ten_thousand_jobs_every_result_checked)
{
  enum { N = 10000 };
  int fds = count_fds();
  corio_executor *ex = pool_new(4, 0, NULL, 0);
  corio_future **f = calloc(N, sizeof(*f));
  int64_t i;
  for (i = 0; i < N; i++) f[i] = submit_i64(ex, square, i);
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0, "job %ld: %s", (long)i,
                 corio_future_error_message(f[i]));
    cr_assert_eq(corio_future_int(f[i]), i * i + 1, "job %ld", (long)i);
    corio_future_unref(f[i]);
  }
  free(f);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds, "descriptors leaked");
  assert_no_children();
}

/* corio_executor_map over the process pool: one future per input, in input order. */
Test(process_pool, map_in_order)
{
  enum { N = 500 };
  corio_executor *ex = pool_new(3, 0, NULL, 0);
  corio_bytes in[N];
  corio_future *out[N];
  int64_t v[N];
  int i;
  for (i = 0; i < N; i++) {
    v[i] = i * 7;
    in[i].data = (uint8_t *)&v[i];
    in[i].len = sizeof(v[i]);
  }
  cr_assert_eq(corio_executor_map(ex, square, in, N, 8, out), 0);
  cr_assert_eq(corio_futures_wait_all(out, N, 30), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_int(out[i]), v[i] * v[i] + 1, "input %d", i);
    corio_future_unref(out[i]);
  }
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- every kind of result ---- */

static const char global_text[] = "set before the pool started";

static void reverse(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  uint8_t *out = malloc(in->len + 1);
  size_t i;
  for (i = 0; i < in->len; i++) out[i] = in->data[in->len - 1 - i];
  corio_job_return_bytes(job, out, in->len);
  free(out);
}
static void fails(corio_job *job)
{
  corio_job_fail(job, -EDOM, "bad input %d in pid-independent text", 7);
}
static void returns_nothing(corio_job *job)
{
  (void)job;
}
static void tries_ptr(corio_job *job)
{
  corio_job_return(job, corio_job_return_ptr(job, job, NULL));
}
static void reads_global(corio_job *job)
{
  const char *s = corio_job_arg(job);
  corio_job_return_bytes(job, s, strlen(s));
}
static void arg_and_input(corio_job *job)
{
  /* submit (not submit_bytes): no input bytes; the pointer value arrives intact */
  const corio_bytes *in = corio_job_input(job);
  corio_job_return(job,
                   (in->data == NULL && in->len == 0) ? (int64_t)(intptr_t)corio_job_arg(job) : -1);
}
static void worker_index(corio_job *job)
{
  corio_job_return(job, corio_job_worker(job));
}
static void other_pid(corio_job *job)
{
  corio_job_return(job, getpid());
}

Test(process_pool, results_of_every_kind)
{
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  corio_future *f;
  const corio_bytes *b;
  int i;

  f = corio_executor_submit_bytes(ex, reverse, "abcdef", 6);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), 0);
  b = corio_future_bytes(f);
  cr_assert_not_null(b);
  cr_assert_eq(b->len, 6);
  cr_assert_eq(memcmp(b->data, "fedcba", 6), 0);
  corio_future_unref(f);

  f = corio_executor_submit_bytes(ex, reverse, NULL, 0);
  wait_done(f, 10);
  cr_assert_not_null(corio_future_bytes(f));
  cr_assert_eq(corio_future_bytes(f)->len, 0);
  corio_future_unref(f);

  f = corio_executor_submit(ex, fails, NULL);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), -EDOM);
  cr_assert_str_eq(corio_future_error_message(f), "bad input 7 in pid-independent text");
  corio_future_unref(f);

  f = corio_executor_submit(ex, returns_nothing, NULL);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_int(f), 0);
  corio_future_unref(f);

  f = corio_executor_submit(ex, tries_ptr, NULL);
  wait_done(f, 10);
  cr_assert_eq(corio_future_int(f), -ENOTSUP, "no pointer results out of a process");
  corio_future_unref(f);

  f = corio_executor_submit(ex, reads_global, (void *)global_text);
  wait_done(f, 10);
  b = corio_future_bytes(f);
  cr_assert_not_null(b);
  cr_assert_eq(b->len, strlen(global_text));
  cr_assert_eq(memcmp(b->data, global_text, b->len), 0);
  corio_future_unref(f);

  f = corio_executor_submit(ex, arg_and_input, (void *)(intptr_t)0x1234567);
  wait_done(f, 10);
  cr_assert_eq(corio_future_int(f), 0x1234567);
  corio_future_unref(f);

  f = corio_executor_submit(ex, other_pid, NULL);
  wait_done(f, 10);
  cr_assert_neq(corio_future_int(f), getpid(), "the job ran in another process");
  corio_future_unref(f);

  for (i = 0; i < 20; i++) {
    f = corio_executor_submit(ex, worker_index, NULL);
    wait_done(f, 10);
    cr_assert(corio_future_int(f) >= 0 && corio_future_int(f) < 2);
    corio_future_unref(f);
  }
  corio_executor_free(ex);
  assert_no_children();
}

/* Submits from several threads at once, each waiting on its own futures. */
#define SUBMITTERS    4
#define PER_SUBMITTER 1500
static corio_executor *shared_ex;
static void *submitter(void *arg)
{
  int64_t base = (int64_t)(intptr_t)arg * PER_SUBMITTER, i;
  corio_future **f = calloc(PER_SUBMITTER, sizeof(*f));
  intptr_t bad = 0;
  for (i = 0; i < PER_SUBMITTER; i++)
    f[i] = corio_executor_submit_bytes(shared_ex, square, &(int64_t){base + i}, sizeof(int64_t));
  if (corio_futures_wait_all(f, PER_SUBMITTER, 30) < 0) bad++;
  for (i = 0; i < PER_SUBMITTER; i++) {
    if (corio_future_error(f[i]) != 0 || corio_future_int(f[i]) != (base + i) * (base + i) + 1)
      bad++;
    corio_future_unref(f[i]);
  }
  free(f);
  return (void *)bad;
}

Test(process_pool, submits_from_many_threads)
{
  pthread_t th[SUBMITTERS];
  void *bad;
  intptr_t i;
  shared_ex = pool_new(3, 0, NULL, 0);
  for (i = 0; i < SUBMITTERS; i++) pthread_create(&th[i], NULL, submitter, (void *)i);
  for (i = 0; i < SUBMITTERS; i++) {
    pthread_join(th[i], &bad);
    cr_assert_null(bad, "thread %ld saw %ld wrong results", (long)i, (long)(intptr_t)bad);
  }
  corio_executor_free(shared_ex);
  assert_no_children();
}

/* ---- initializer ---- */

static pid_t initialized_in;
static void init_worker(corio_job *job)
{
  cr_assert(corio_job_worker(job) >= 0); /* harmless in a worker: just a value check */
  initialized_in = getpid();
}
static void was_initialized(corio_job *job)
{
  corio_job_return(job, initialized_in == getpid());
}
static void init_fails(corio_job *job)
{
  corio_job_fail(job, -EACCES, "no access to %s", "the database");
}

Test(process_pool, initializer_runs_in_each_worker)
{
  enum { N = 200 };
  corio_executor *ex = pool_new(3, 7, init_worker, 0);
  corio_future *f[N];
  int i;
  for (i = 0; i < N; i++) f[i] = corio_executor_submit(ex, was_initialized, NULL);
  cr_assert_eq(corio_futures_wait_all(f, N, 20), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0);
    cr_assert_eq(corio_future_int(f[i]), 1, "job %d ran in a worker not initialized", i);
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
  assert_no_children();
}

Test(process_pool, failing_initializer_fails_the_jobs_with_its_text)
{
  corio_executor *ex = pool_new(2, 0, init_fails, 0);
  corio_future *f = corio_executor_submit(ex, square, NULL);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), -EACCES);
  cr_assert_not_null(strstr(corio_future_error_message(f), "initializer"));
  cr_assert_not_null(strstr(corio_future_error_message(f), "no access to the database"));
  corio_future_unref(f);
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- max_tasks_per_child ---- */

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void count_pids(corio_future **f, int n, unsigned per_child)
{
  int64_t *pids = calloc((size_t)n, sizeof(*pids));
  int i, run = 1;
  for (i = 0; i < n; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0, "job %d: %s", i, corio_future_error_message(f[i]));
    pids[i] = corio_future_int(f[i]);
    cr_assert_gt(pids[i], 0);
  }
  qsort(pids, (size_t)n, sizeof(*pids), cmp_i64);
  for (i = 1; i < n; i++) {
    run = pids[i] == pids[i - 1] ? run + 1 : 1;
    cr_assert_leq(run, (int)per_child, "pid %ld ran %d jobs", (long)pids[i], run);
  }
  free(pids);
}

/* 1,000 forks: about 30 s under ThreadSanitizer on a busy 2-core machine, more when it is
 * overloaded. The deadlines only catch a deadlock, which never ends. (A suite of its own: a
 * test's own .timeout makes Criterion leak a block, which fails the ASan run.) */
TestSuite(process_pool_forks, .init = pp_test_setup, .timeout = 170);
Test(process_pool_forks, max_tasks_per_child_1_over_1000_jobs)
{
  enum { N = 1000 };
  int fds = count_fds();
  corio_executor *ex = pool_new(2, 1, NULL, 0);
  corio_future **f = calloc(N, sizeof(*f));
  int i;
  for (i = 0; i < N; i++) {
    f[i] = corio_executor_submit(ex, other_pid, NULL);
    cr_assert_not_null(f[i]);
  }
  cr_assert_eq(corio_futures_wait_all(f, N, 150), 0, "no deadlock (cpython gh-115634)");
  count_pids(f, N, 1);
  for (i = 0; i < N; i++) corio_future_unref(f[i]);
  free(f);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

Test(process_pool, max_tasks_per_child_3)
{
  enum { N = 300 };
  corio_executor *ex = pool_new(3, 3, NULL, 0);
  corio_future *f[N];
  int i;
  for (i = 0; i < N; i++) f[i] = corio_executor_submit(ex, other_pid, NULL);
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  count_pids(f, N, 3);
  for (i = 0; i < N; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- shutdown and lifetime ---- */

Test(process_pool, submit_after_shutdown_fails_clearly)
{
  corio_executor *ex = pool_new(1, 0, NULL, 0);
  corio_future *f;
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, -1), 0);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, -1), 0, "idempotent");
  f = corio_executor_submit(ex, square, NULL);
  cr_assert_not_null(f);
  cr_assert(corio_future_done(f));
  cr_assert_eq(corio_future_error(f), CORIO_E_CLOSED);
  corio_future_unref(f);
  assert_no_children();
  corio_executor_free(ex);
}

Test(process_pool, pool_without_jobs_and_repeated_pools_leave_nothing)
{
  int fds = count_fds(), i, j;
  corio_executor *ex;
  corio_future *f;
  for (i = 0; i < 5; i++) {
    ex = pool_new(i % 3, i % 2, i == 3 ? init_worker : NULL, 0);
    for (j = 0; j < i * 10; j++) {
      f = submit_i64(ex, square, j);
      wait_done(f, 10);
      cr_assert_eq(corio_future_int(f), (int64_t)j * j + 1);
      corio_future_unref(f);
    }
    corio_executor_free(ex);
    cr_assert_eq(count_fds(), fds, "round %d leaked descriptors", i);
    assert_no_children();
  }
}

/* Two pools at once: the second's fork server must not hold the first one's sockets (fork
 * copies every descriptor), or the first pool's workers would never see EOF and free would hang. */
Test(process_pool, two_pools_freed_in_either_order)
{
  int fds = count_fds();
  corio_executor *a = pool_new(2, 0, NULL, 0), *b;
  corio_future *fa, *fb;
  fa = submit_i64(a, square, 3);
  wait_done(fa, 10);
  b = pool_new(2, 0, NULL, 0);
  fb = submit_i64(b, square, 4);
  wait_done(fb, 10);
  cr_assert_eq(corio_future_int(fa), 10);
  cr_assert_eq(corio_future_int(fb), 17);
  corio_future_unref(fa);
  corio_future_unref(fb);
  corio_executor_free(a);
  fb = submit_i64(b, square, 5);
  wait_done(fb, 10);
  cr_assert_eq(corio_future_int(fb), 26);
  corio_future_unref(fb);
  corio_executor_free(b);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

/* Done callbacks of loop-less futures run in the pool's manager thread; they may submit. */
static corio_executor *chain_ex;
static atomic_int chain_left;
static corio_future *chain_last;
static void chain_cb(corio_future *f, void *arg)
{
  (void)arg;
  if (corio_future_error(f) != 0) return;
  if (atomic_fetch_sub(&chain_left, 1) > 1) {
    corio_future *n = submit_i64(chain_ex, square, corio_future_int(f) % 1000);
    corio_future_add_done_callback(n, chain_cb, NULL);
    corio_future_unref(n);
  } else {
    chain_last = corio_future_ref(f);
  }
}

Test(process_pool, callbacks_may_submit)
{
  corio_future *f;
  int i;
  chain_ex = pool_new(2, 0, NULL, 0);
  atomic_store(&chain_left, 50);
  f = submit_i64(chain_ex, square, 2);
  corio_future_add_done_callback(f, chain_cb, NULL);
  corio_future_unref(f);
  for (i = 0; i < 1000 && atomic_load(&chain_left) > 0; i++) usleep(10000);
  cr_assert_eq(atomic_load(&chain_left), 0);
  corio_executor_free(chain_ex);
  cr_assert_not_null(chain_last);
  corio_future_unref(chain_last);
  assert_no_children();
}

/* Freed from a done callback (the manager thread): the pool winds down and frees itself. */
static void sleepy(corio_job *job)
{
  usleep(100000);
  corio_job_return(job, 5);
}
static void free_in_callback(corio_future *f, void *arg)
{
  (void)f;
  corio_executor_free(arg);
}

Test(process_pool, free_from_a_done_callback)
{
  int fds = count_fds(), i, st = 0;
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  corio_future *f = corio_executor_submit(ex, sleepy, NULL);
  pid_t r = 0;
  corio_future_add_done_callback(f, free_in_callback, ex);
  wait_done(f, 10);
  cr_assert_eq(corio_future_int(f), 5);
  corio_future_unref(f);
  for (i = 0; i < 500; i++) {
    r = waitpid(-1, &st, WNOHANG);
    if (r < 0 && count_fds() == fds) break;
    usleep(10000);
  }
  cr_assert(r < 0 && errno == ECHILD, "the pool did not wind down");
  cr_assert_eq(count_fds(), fds);
}

/* corio_run_in_executor with a process pool: the futures belong to the loop. */
static int loop_done;
static void on_loop_done(corio_future *f, void *arg)
{
  (void)arg;
  if (corio_future_error(f) == 0 && corio_future_int(f) == 17) loop_done++;
  if (loop_done == 3) corio_loop_stop(corio_future_loop(f));
}

Test(process_pool, run_in_executor_on_a_loop)
{
  corio_loop *loop;
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  corio_future *f[4];
  int i;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  for (i = 0; i < 3; i++) {
    f[i] = corio_run_in_executor(loop, ex, arg_and_input, (void *)17);
    cr_assert_eq(corio_future_loop(f[i]), loop);
    corio_future_add_done_callback(f[i], on_loop_done, NULL);
  }
  f[3] = corio_run_in_executor(loop, ex, sleepy, NULL);
  cr_assert_eq(corio_future_cancel(f[3]), 1, "queued or running: cancellable either way");
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  cr_assert_eq(loop_done, 3);
  cr_assert_eq(corio_loop_run_until_complete(loop, f[3]), 0);
  cr_assert(corio_future_cancelled(f[3]));
  for (i = 0; i < 4; i++) corio_future_unref(f[i]);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- a task awaiting process jobs ---- */

struct sum_task {
  corio_task task;
  corio_executor *ex;
  int i;
  int64_t sum;
};

static corio_step sum_step(corio_task *t)
{
  struct sum_task *s = corio_container_of(t, struct sum_task, task);
  CORIO_BEGIN(t);
  for (s->i = 1; s->i <= 20; s->i++) {
    CORIO_AWAIT_TRY(t, submit_i64(s->ex, square, s->i));
    s->sum += corio_future_int(corio_awaited(t));
  }
  CORIO_RETURN(t, s->sum);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(process_pool, task_awaits_jobs)
{
  corio_loop *loop;
  struct sum_task *s;
  corio_future *f;
  int64_t expect = 0;
  int i;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  s = corio_task_new(loop, sum_step, struct sum_task, task);
  cr_assert_not_null(s);
  s->ex = pool_new(2, 0, NULL, 0);
  f = corio_task_spawn(&s->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  for (i = 1; i <= 20; i++) expect += (int64_t)i * i + 1;
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_int(f), expect);
  corio_executor_free(s->ex);
  corio_future_unref(f);
  corio_future_unref(&s->task.fut);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
  assert_no_children();
}
