/* Process pool: corio_executor_map with chunksize > 1 sends a chunk of jobs in one message; the
 * worker runs them in order and streams one result per job. A crash in a chunk fails the job
 * that ran and re-queues the jobs behind it; cancel, shutdown deadlines, max_tasks_per_child,
 * big payloads and a failing initializer keep their meaning inside chunks. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include "test_executor_process.h"

TestSuite(process_pool_map, .init = pp_test_setup, .timeout = 60);

/* One job function, steered by its 8-byte input: op * OP + value. */
#define OP 1000000
enum { OP_RETURN = 0, OP_SEGV, OP_HANG };

static corio_shm *shm;
static _Atomic int *started, *release;
static void make_shared(void)
{
  cr_assert_eq(corio_shm_new(&shm, 256), 0);
  started = corio_shm_alloc(shm, sizeof(*started), 0);
  release = corio_shm_alloc(shm, sizeof(*release), 0);
}
static void wait_started(int n)
{
  int i;
  for (i = 0; i < 2500 && atomic_load(started) < n; i++) usleep(2000);
  cr_assert_geq(atomic_load(started), n);
}

/* Result: pid * OP + value + 1, so that a test sees both what and where a job ran. */
static void steer(corio_job *job)
{
  struct rlimit no_core = {0, 0};
  int64_t v = input_i64(job);
  switch (v / OP) {
  case OP_SEGV:
    /* Under ASan, its own SIGSEGV handler would report and exit(1): die of the signal. */
    signal(SIGSEGV, SIG_DFL);
    setrlimit(RLIMIT_CORE, &no_core);
    raise(SIGSEGV);
    break;
  case OP_HANG:
    atomic_fetch_add(started, 1);
    while (!atomic_load(release)) usleep(1000);
    break;
  }
  corio_job_return(job, (int64_t)getpid() * OP + v % OP + 1);
}
static int64_t res_pid(corio_future *f)
{
  return corio_future_int(f) / OP;
}
static int64_t res_val(corio_future *f)
{
  return corio_future_int(f) % OP - 1;
}

/* map over values[0..n) */
static void map_values(corio_executor *ex, const int64_t *values, size_t n, size_t chunk,
                       corio_future **out)
{
  corio_bytes *in = calloc(n, sizeof(*in));
  size_t i;
  for (i = 0; i < n; i++) {
    in[i].data = (uint8_t *)&values[i];
    in[i].len = sizeof(values[i]);
  }
  cr_assert_eq(corio_executor_map(ex, steer, in, n, chunk, out), 0);
  free(in);
}

static void assert_ok(corio_future *f, int64_t value, size_t i)
{
  cr_assert_eq(corio_future_error(f), 0, "job %zu: %s", i, corio_future_error_message(f));
  cr_assert_eq(res_val(f), value, "job %zu", i);
}

Test(process_pool_map, each_chunk_runs_whole_in_one_worker_in_order)
{
  enum { N = 1000, CHUNK = 64 };
  int fds = count_fds();
  corio_executor *ex = pool_new(3, 0, NULL, 0);
  int64_t v[N];
  corio_future *f[N];
  size_t i;
  for (i = 0; i < N; i++) v[i] = (int64_t)i * 3;
  map_values(ex, v, N, CHUNK, f);
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  for (i = 0; i < N; i++) {
    assert_ok(f[i], v[i], i);
    /* one message per chunk: every job of a chunk ran in the worker that got the chunk */
    if (i % CHUNK) cr_assert_eq(res_pid(f[i]), res_pid(f[i - 1]), "job %zu left its chunk", i);
  }
  for (i = 0; i < N; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

Test(process_pool_map, results_stream_back_as_the_jobs_of_a_chunk_finish)
{
  corio_executor *ex;
  int64_t v[3] = {1, OP_HANG * OP + 2, 3};
  corio_future *f[3];
  int64_t pid0;
  int i;
  make_shared();
  ex = pool_new(1, 0, NULL, 0);
  map_values(ex, v, 3, 3, f);
  wait_started(1);
  wait_done(f[0], 10); /* done while the next job of its chunk still runs */
  assert_ok(f[0], 1, 0);
  cr_assert(!corio_future_done(f[1]) && !corio_future_done(f[2]));
  atomic_store(release, 1);
  cr_assert_eq(corio_futures_wait_all(f, 3, 10), 0);
  pid0 = res_pid(f[0]);
  for (i = 0; i < 3; i++) {
    assert_ok(f[i], v[i] % OP, (size_t)i);
    cr_assert_eq(res_pid(f[i]), pid0, "job %d ran in another worker", i);
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
  corio_shm_free(shm);
  assert_no_children();
}

Test(process_pool_map, crash_mid_chunk_fails_that_job_and_requeues_the_rest)
{
  enum { N = 8 };
  int fds = count_fds();
  corio_executor *ex = pool_new(1, 0, NULL, 0);
  int64_t v[N];
  corio_future *f[N], *after;
  const char *msg;
  size_t i;
  for (i = 0; i < N; i++) v[i] = (i == 3 ? OP_SEGV * OP : 0) + (int64_t)i;
  map_values(ex, v, N, N, f);
  cr_assert_eq(corio_futures_wait_all(f, N, 20), 0);
  cr_assert_eq(corio_future_error(f[3]), CORIO_E_WORKER_DIED);
  msg = corio_future_error_message(f[3]);
  cr_assert_not_null(strstr(msg, "killed by signal 11"), "%s", msg);
  cr_assert_not_null(strstr(msg, "SIGSEGV"), "%s", msg);
  for (i = 0; i < N; i++)
    if (i != 3) assert_ok(f[i], (int64_t)i, i);
  cr_assert_eq(res_pid(f[1]), res_pid(f[0]));
  cr_assert_eq(res_pid(f[2]), res_pid(f[0]));
  /* the jobs behind the crash never ran in the dead worker: a new one ran them, as a chunk */
  cr_assert_neq(res_pid(f[4]), res_pid(f[0]));
  for (i = 5; i < N; i++) cr_assert_eq(res_pid(f[i]), res_pid(f[4]));
  after = submit_i64(ex, steer, 41);
  wait_done(after, 10);
  cr_assert_eq(res_val(after), 41);
  corio_future_unref(after);
  for (i = 0; i < N; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

Test(process_pool_map, many_crashes_across_chunks_and_workers)
{
  enum { N = 600 };
  int fds = count_fds(), died = 0;
  corio_executor *ex = pool_new(3, 0, NULL, 0);
  int64_t *v = calloc(N, sizeof(*v));
  corio_future **f = calloc(N, sizeof(*f));
  size_t i;
  for (i = 0; i < N; i++) v[i] = (i % 37 == 5 ? OP_SEGV * OP : 0) + (int64_t)i;
  map_values(ex, v, N, 16, f);
  cr_assert_eq(corio_futures_wait_all(f, N, 40), 0);
  for (i = 0; i < N; i++) {
    if (i % 37 == 5) {
      cr_assert_eq(corio_future_error(f[i]), CORIO_E_WORKER_DIED, "job %zu", i);
      died++;
    } else {
      assert_ok(f[i], (int64_t)i, i);
    }
    corio_future_unref(f[i]);
  }
  cr_assert_eq(died, (N - 5 + 36) / 37);
  free(v);
  free(f);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

Test(process_pool_map, cancel_inside_and_outside_a_sent_chunk)
{
  int64_t v[8] = {OP_HANG * OP, 1, 2, 3, 4, 5, 6, 7};
  corio_future *f[8];
  corio_executor *ex;
  int i;
  make_shared();
  ex = pool_new(1, 0, NULL, 0);
  map_values(ex, v, 8, 4, f); /* chunk 0..3 goes to the worker, chunk 4..7 waits in the queue */
  wait_started(1);
  cr_assert_eq(corio_future_cancel(f[2]), 0,
               "a job waiting in the worker behind the running one cannot be taken back");
  cr_assert_eq(corio_future_cancel(f[5]), 1, "a queued job of a chunk is taken out");
  cr_assert(corio_future_cancelled(f[5]));
  cr_assert_eq(corio_future_cancel(f[0]), 1, "the running job of a chunk can be cancelled");
  cr_assert_eq(corio_futures_wait_all(f, 8, 20), 0);
  cr_assert(corio_future_cancelled(f[0]));
  for (i = 1; i < 8; i++)
    if (i != 5) assert_ok(f[i], i, (size_t)i); /* re-queued behind the killed worker, then run */
  cr_assert_eq(res_pid(f[2]), res_pid(f[1]));
  for (i = 0; i < 8; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  corio_shm_free(shm);
  assert_no_children();
}

/* corio_wait_for on a running job of a chunk, from a task: the timeout kills its worker. */
struct timeout_task {
  corio_task task;
  corio_executor *ex;
  corio_future *f[3];
  int err;
};

static corio_step timeout_step(corio_task *t)
{
  struct timeout_task *s = corio_container_of(t, struct timeout_task, task);
  int64_t v[3] = {OP_HANG * OP, 1, 2};
  CORIO_BEGIN(t);
  map_values(s->ex, v, 3, 3, s->f);
  CORIO_AWAIT(t, corio_wait_for(corio_future_ref(s->f[0]), 0.2));
  s->err = corio_future_error(corio_awaited(t));
  CORIO_RETURN(t, 0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

Test(process_pool_map, wait_for_times_out_a_running_job_of_a_chunk)
{
  corio_loop *loop;
  struct timeout_task *s;
  corio_future *f;
  int i;
  make_shared();
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  s = corio_task_new(loop, timeout_step, struct timeout_task, task);
  s->ex = pool_new(1, 0, NULL, 0);
  f = corio_task_spawn(&s->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(s->err, -ETIMEDOUT);
  cr_assert_eq(corio_futures_wait_all(s->f, 3, 20), 0);
  cr_assert(corio_future_cancelled(s->f[0]), "the job was cancelled: its worker killed");
  for (i = 1; i < 3; i++) assert_ok(s->f[i], i, (size_t)i);
  for (i = 0; i < 3; i++) corio_future_unref(s->f[i]);
  corio_executor_free(s->ex);
  corio_future_unref(f);
  corio_future_unref(&s->task.fut);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
  corio_shm_free(shm);
  assert_no_children();
}

Test(process_pool_map, max_tasks_per_child_counts_jobs_not_chunks)
{
  enum { N = 300, PER_CHILD = 5 };
  corio_executor *ex = pool_new(2, PER_CHILD, NULL, 0);
  int64_t v[N], pids[N];
  corio_future *f[N];
  size_t i;
  int run = 1;
  for (i = 0; i < N; i++) v[i] = (int64_t)i;
  map_values(ex, v, N, 16, f);
  cr_assert_eq(corio_futures_wait_all(f, N, 40), 0, "no deadlock (cpython gh-115634)");
  for (i = 0; i < N; i++) {
    assert_ok(f[i], v[i], i);
    pids[i] = res_pid(f[i]);
    corio_future_unref(f[i]);
  }
  /* results are in input order: a worker's jobs are consecutive within a chunk */
  for (i = 1; i < N; i++) {
    run = pids[i] == pids[i - 1] ? run + 1 : 1;
    cr_assert_leq(run, PER_CHILD, "pid %ld ran %d jobs", (long)pids[i], run);
  }
  corio_executor_free(ex);
  assert_no_children();
}

/* ---- payloads above memfd_threshold inside chunks ---- */

/* Input: bytes; result: the input reversed, or, for an 8-byte input, that many KiB of a pattern
 * (big results from jobs that are not the last of their chunk). */
static void reverse_or_grow(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  size_t i, n;
  uint8_t *out;
  if (in->len == 8) {
    n = (size_t)input_i64(job) << 10;
    out = malloc(n ? n : 1);
    for (i = 0; i < n; i++) out[i] = (uint8_t)(i * 13 + 1);
  } else {
    n = in->len;
    out = malloc(n ? n : 1);
    for (i = 0; i < n; i++) out[i] = in->data[n - 1 - i];
  }
  corio_job_return_bytes(job, out, n);
  free(out);
}

Test(process_pool_map, big_inputs_and_results_inside_chunks)
{
  /* threshold 1 KiB: 2000 and 300 KiB go through the window, 5 MiB through a memfd; 8-byte
   * inputs ask for results of 0, 2, 300 and 5120 KiB */
  static const size_t sizes[] = {8, 2000, 8, 300 << 10, 8, 0, 5 << 20, 8, 100, 8, 1024, 1025};
  static const int64_t grow[] = {0, 2, 300, 5120};
  enum { N = 36 };
  int fds = count_fds();
  corio_executor *ex = pool_new(2, 0, NULL, 1024);
  corio_bytes in[N];
  corio_future *f[N];
  const corio_bytes *out;
  size_t i, j, g = 0, n;
  for (i = 0; i < N; i++) {
    n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
    in[i] = corio_bytes_alloc(n);
    if (n == 8)
      memcpy(in[i].data, &grow[g++ % 4], 8);
    else
      for (j = 0; j < n; j++) in[i].data[j] = (uint8_t)(j * 7 + i);
  }
  cr_assert_eq(corio_executor_map(ex, reverse_or_grow, in, N, 4, f), 0);
  cr_assert_eq(corio_futures_wait_all(f, N, 40), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0, "job %zu: %s", i, corio_future_error_message(f[i]));
    out = corio_future_bytes(f[i]);
    if (in[i].len == 8) {
      int64_t k;
      memcpy(&k, in[i].data, 8);
      cr_assert_eq(out->len, (size_t)k << 10, "job %zu", i);
      for (j = 0; j < out->len; j++)
        if (out->data[j] != (uint8_t)(j * 13 + 1)) cr_assert_fail("job %zu byte %zu", i, j);
    } else {
      cr_assert_eq(out->len, in[i].len, "job %zu", i);
      for (j = 0; j < out->len; j++)
        if (out->data[j] != in[i].data[in[i].len - 1 - j]) cr_assert_fail("job %zu byte %zu", i, j);
    }
    corio_future_unref(f[i]);
    corio_bytes_free(&in[i]);
  }
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

Test(process_pool_map, shutdown_deadline_fails_the_unstarted_rest_of_a_chunk)
{
  int64_t v[3] = {OP_HANG * OP, 1, 2};
  corio_future *f[3];
  corio_executor *ex;
  int i;
  make_shared();
  ex = pool_new(1, 0, NULL, 0);
  map_values(ex, v, 3, 3, f);
  wait_started(1);
  cr_assert_eq(corio_executor_shutdown(ex, 1, 0, 0.3), -ETIMEDOUT);
  for (i = 0; i < 3; i++) {
    cr_assert(corio_future_done(f[i]));
    cr_assert_eq(corio_future_error(f[i]), -ETIMEDOUT, "job %d", i);
  }
  cr_assert_not_null(strstr(corio_future_error_message(f[0]), "still running"), "%s",
                     corio_future_error_message(f[0]));
  cr_assert_not_null(strstr(corio_future_error_message(f[1]), "before the job started"), "%s",
                     corio_future_error_message(f[1]));
  assert_no_children();
  for (i = 0; i < 3; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  corio_shm_free(shm);
}

static void init_fails(corio_job *job)
{
  corio_job_fail(job, -EACCES, "no access to %s", "the database");
}

Test(process_pool_map, failing_initializer_fails_every_job_of_a_chunk)
{
  int64_t v[5] = {0, 1, 2, 3, 4};
  corio_future *f[5];
  corio_executor *ex = pool_new(1, 0, init_fails, 0);
  int i;
  map_values(ex, v, 5, 5, f);
  cr_assert_eq(corio_futures_wait_all(f, 5, 20), 0);
  for (i = 0; i < 5; i++) {
    cr_assert_eq(corio_future_error(f[i]), -EACCES);
    cr_assert_not_null(strstr(corio_future_error_message(f[i]), "no access to the database"));
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex);
  assert_no_children();
}

Test(process_pool_map, chunk_bigger_than_one_message_is_cut)
{
  /* 16 inputs of 60 KiB, all inline (under the 64 KiB default threshold), in one chunk: one
   * socket message holds about 200 KiB, so the chunk travels as several messages */
  enum { N = 16, LEN = 60 << 10 };
  int fds = count_fds();
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  corio_bytes in[N];
  corio_future *f[N];
  const corio_bytes *out;
  size_t i, j;
  for (i = 0; i < N; i++) {
    in[i] = corio_bytes_alloc(LEN);
    for (j = 0; j < LEN; j++) in[i].data[j] = (uint8_t)(j * 31 + i);
  }
  cr_assert_eq(corio_executor_map(ex, reverse_or_grow, in, N, N, f), 0);
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  for (i = 0; i < N; i++) {
    cr_assert_eq(corio_future_error(f[i]), 0, "job %zu: %s", i, corio_future_error_message(f[i]));
    out = corio_future_bytes(f[i]);
    cr_assert_eq(out->len, (size_t)LEN);
    for (j = 0; j < LEN; j++)
      if (out->data[j] != in[i].data[LEN - 1 - j]) cr_assert_fail("job %zu byte %zu", i, j);
    corio_future_unref(f[i]);
    corio_bytes_free(&in[i]);
  }
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}
