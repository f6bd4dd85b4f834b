/* Thread pool: map (ordered futures, chunks run as one worker round trip), wait_any as the
 * imap_unordered building block, wait_all with a timeout. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <corio.h>
#include "test_executor_thread_tsan.h"

TestSuite(thread_pool_map, .timeout = 30);

static corio_executor *pool(unsigned max)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = max};
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  return ex;
}

/* Returns the input parsed as a number, times 3, plus who ran it: worker * 1e9 + its count. */
static __thread int64_t jobs_here;
static void triple(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  char buf[32];
  int64_t v;
  memcpy(buf, in->data, in->len);
  buf[in->len] = 0;
  v = strtoll(buf, NULL, 10) * 3;
  jobs_here++;
  corio_job_return(job, v * 1000000000 * 100 + corio_job_worker(job) * 1000000000LL + jobs_here);
}

static corio_bytes *make_inputs(size_t n)
{
  corio_bytes *in = calloc(n, sizeof(*in));
  char buf[32];
  size_t i;
  for (i = 0; i < n; i++) {
    int len = snprintf(buf, sizeof(buf), "%zu", i);
    in[i].data = malloc((size_t)len);
    memcpy(in[i].data, buf, (size_t)len);
    in[i].len = (size_t)len;
  }
  return in;
}

static void free_inputs(corio_bytes *in, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) free(in[i].data);
  free(in);
}

static void check_map(size_t n, size_t chunksize, unsigned workers)
{
  corio_executor *ex = pool(workers);
  corio_bytes *in = make_inputs(n);
  corio_future **out = calloc(n, sizeof(*out));
  size_t i, eff = chunksize ? chunksize : 1;
  int64_t v, prev_worker = -1, prev_count = 0;
  cr_assert_eq(corio_executor_map(ex, triple, in, n, chunksize, out), 0);
  cr_assert_eq(corio_futures_wait_all(out, n, 20), 0);
  for (i = 0; i < n; i++) {
    int64_t worker, count;
    cr_assert_eq(corio_future_error(out[i]), 0);
    v = corio_future_int(out[i]);
    cr_assert_eq(v / 100000000000LL, (int64_t)i * 3, "out[%zu] in input order", i);
    worker = (v / 1000000000) % 100;
    count = v % 1000000000;
    cr_assert(worker >= 0 && worker < (int64_t)workers);
    if (i % eff != 0) {
      /* inside a chunk: the same worker, one job right after the other */
      cr_assert_eq(worker, prev_worker, "chunk of out[%zu] split between workers", i);
      cr_assert_eq(count, prev_count + 1);
    }
    prev_worker = worker;
    prev_count = count;
    corio_future_unref(out[i]);
  }
  free(out);
  free_inputs(in, n);
  corio_executor_free(ex);
}

Test(thread_pool_map, ordered_results_without_chunks)
{
  check_map(1000, 0, 4);
  check_map(1000, 1, 3);
}

Test(thread_pool_map, chunks_run_on_one_worker_in_order)
{
  check_map(1000, 7, 4);
  check_map(10000, 100, 4);
  check_map(50, 1000, 2); /* one chunk larger than the input */
}

Test(thread_pool_map, bad_input)
{
  corio_executor *ex = pool(1);
  corio_bytes in[2] = {{(uint8_t *)"1", 1}, {NULL, 3}};
  corio_future *out[2] = {NULL, NULL};
  cr_assert_eq(corio_executor_map(NULL, triple, in, 1, 1, out), -EINVAL);
  cr_assert_eq(corio_executor_map(ex, NULL, in, 1, 1, out), -EINVAL);
  cr_assert_eq(corio_executor_map(ex, triple, NULL, 1, 1, out), -EINVAL);
  cr_assert_eq(corio_executor_map(ex, triple, in, 1, 1, NULL), -EINVAL);
  cr_assert_eq(corio_executor_map(ex, triple, in, 2, 1, out), -EINVAL, "NULL data with a length");
  cr_assert_null(out[0], "nothing submitted");
  cr_assert_eq(corio_executor_map(ex, triple, NULL, 0, 1, NULL), 0, "nothing to do");
  corio_executor_free(ex);
}

/* Cancelling one job of a chunk still queued takes only that job out. */
static int gate[2];
static _Atomic int gated_started;
static void gated(corio_job *job)
{
  char c;
  atomic_store(&gated_started, 1);
  corio_job_return(job, read(gate[0], &c, 1));
}

Test(thread_pool_map, cancel_one_job_of_a_pending_chunk)
{
  corio_executor *ex = pool(1);
  corio_bytes *in = make_inputs(10);
  corio_future *out[10], *blocker;
  int i;
  cr_assert_eq(pipe(gate), 0);
  blocker = corio_executor_submit(ex, gated, NULL);
  while (!atomic_load(&gated_started)) usleep(100);
  cr_assert_eq(corio_executor_map(ex, triple, in, 10, 5, out), 0);
  cr_assert_eq(corio_future_cancel(out[2]), 1);
  cr_assert_eq(corio_future_cancel(out[5]), 1, "first of the second chunk");
  cr_assert_eq(write(gate[1], "x", 1), 1);
  cr_assert_eq(corio_futures_wait_all(out, 10, 5), 0);
  for (i = 0; i < 10; i++) {
    if (i == 2 || i == 5) {
      cr_assert(corio_future_cancelled(out[i]));
    } else {
      cr_assert_eq(corio_future_int(out[i]) / 100000000000LL, i * 3);
    }
    corio_future_unref(out[i]);
  }
  corio_future_unref(blocker);
  free_inputs(in, 10);
  corio_executor_free(ex);
  close(gate[0]);
  close(gate[1]);
}

/* ---- wait_any ---- */

/* Job k runs until the test releases it (a byte in pipe k): which job finishes first is the
 * test's choice, not a race between sleeps that a loaded machine may reorder. */
#define NHELD 4
static int held_fd[NHELD][2];
static void held_open(void)
{
  int k;
  for (k = 0; k < NHELD; k++) cr_assert_eq(pipe(held_fd[k]), 0);
}
static void held(corio_job *job)
{
  int k = (int)(intptr_t)corio_job_arg(job);
  char c;
  corio_job_return(job, read(held_fd[k][0], &c, 1) == 1 ? k : -1);
}
static void release(int k)
{
  cr_assert_eq(write(held_fd[k][1], "x", 1), 1);
}
static void held_close(void)
{
  int k;
  for (k = 0; k < NHELD; k++) {
    close(held_fd[k][0]);
    close(held_fd[k][1]);
  }
}

Test(thread_pool_map, wait_any_returns_the_first_finished)
{
  corio_executor *ex = pool(4);
  corio_future *f[4];
  int i;
  held_open();
  for (i = 0; i < 4; i++) f[i] = corio_executor_submit(ex, held, (void *)(intptr_t)i);
  cr_assert_eq(corio_futures_wait_any(f, 4, 0), -ETIMEDOUT, "none done yet");
  cr_assert_eq(corio_futures_wait_any(f, 4, 0.005), -ETIMEDOUT);
  release(1);
  cr_assert_eq(corio_futures_wait_any(f, 4, 10), 1);
  cr_assert_eq(corio_futures_wait_any(f, 4, 10), 1, "done futures are found at once");
  cr_assert_eq(corio_futures_wait_any(f, 4, -1), 1);
  cr_assert_eq(corio_futures_wait_any(f, 1, 0.005), -ETIMEDOUT, "job 0 still runs");
  release(2);
  release(0);
  release(3);
  cr_assert_eq(corio_futures_wait_any(f, 1, -1), 0);
  cr_assert_eq(corio_futures_wait_all(f, 4, 10), 0);
  cr_assert_eq(corio_futures_wait_any(f, 4, 10), 0, "the lowest index of the done ones");
  for (i = 0; i < 4; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  held_close();
}

Test(thread_pool_map, wait_any_bad_input)
{
  corio_future *f[2] = {NULL, NULL};
  cr_assert_eq(corio_futures_wait_any(f, 0, 1), -ENOENT);
  cr_assert_eq(corio_futures_wait_any(NULL, 2, 1), -EINVAL);
  cr_assert_eq(corio_futures_wait_any(f, 2, 1), -EINVAL);
  cr_assert_eq(corio_futures_wait_all(NULL, 2, 1), -EINVAL);
  cr_assert_eq(corio_futures_wait_all(NULL, 0, 1), 0);
}

/* imap_unordered: results as they finish, from futures of a map. */
static void jitter(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  int v = in->data[0];
  usleep((useconds_t)((v * 7919) % 13) * 300);
  corio_job_return(job, v);
}

Test(thread_pool_map, imap_unordered_with_wait_any)
{
  enum { M = 200 };
  corio_executor *ex = pool(4);
  corio_bytes in[M];
  uint8_t vals[M];
  corio_future *out[M], *left[M];
  int seen[M] = {0}, n = M, i, idx, got = 0;
  for (i = 0; i < M; i++) {
    vals[i] = (uint8_t)i;
    in[i].data = &vals[i];
    in[i].len = 1;
  }
  cr_assert_eq(corio_executor_map(ex, jitter, in, M, 3, out), 0);
  memcpy(left, out, sizeof(out));
  while (n > 0) {
    idx = corio_futures_wait_any(left, (size_t)n, 10);
    cr_assert_geq(idx, 0);
    seen[corio_future_int(left[idx])]++;
    got++;
    left[idx] = left[--n];
  }
  cr_assert_eq(got, M);
  for (i = 0; i < M; i++) {
    cr_assert_eq(seen[i], 1);
    corio_future_unref(out[i]);
  }
  corio_executor_free(ex);
}

/* wait_any from several threads on the same futures. */
struct shared_wait {
  corio_future **f;
  int result;
};
static void *wait_any_thread(void *arg)
{
  struct shared_wait *w = arg;
  w->result = corio_futures_wait_any(w->f, 3, 10);
  return NULL;
}

Test(thread_pool_map, wait_any_from_several_threads)
{
  corio_executor *ex = pool(3);
  corio_future *f[3];
  struct shared_wait w[4];
  pthread_t th[4];
  int i;
  held_open();
  for (i = 0; i < 3; i++) f[i] = corio_executor_submit(ex, held, (void *)(intptr_t)i);
  for (i = 0; i < 4; i++) {
    w[i].f = f;
    pthread_create(&th[i], NULL, wait_any_thread, &w[i]);
  }
  usleep(20000); /* most likely all four are asleep in wait_any now (they may also come later) */
  release(1);
  for (i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    cr_assert_eq(w[i].result, 1);
  }
  release(0);
  release(2);
  cr_assert_eq(corio_futures_wait_all(f, 3, -1), 0);
  for (i = 0; i < 3; i++) corio_future_unref(f[i]);
  corio_executor_free(ex);
  held_close();
}

Test(thread_pool_map, wait_all_timeout)
{
  corio_executor *ex = pool(2);
  corio_future *f[2];
  held_open();
  f[0] = corio_executor_submit(ex, held, (void *)0);
  f[1] = corio_executor_submit(ex, held, (void *)1);
  cr_assert_eq(corio_futures_wait_all(f, 2, 0.05), -ETIMEDOUT, "none done");
  release(0);
  cr_assert_eq(corio_futures_wait_all(f, 1, 10), 0);
  cr_assert_eq(corio_futures_wait_all(f, 2, 0.05), -ETIMEDOUT, "one done, one still running");
  cr_assert(corio_future_done(f[0]));
  cr_assert_not(corio_future_done(f[1]));
  release(1);
  cr_assert_eq(corio_futures_wait_all(f, 2, -1), 0);
  corio_future_unref(f[0]);
  corio_future_unref(f[1]);
  corio_executor_free(ex);
  held_close();
}
