/* Completion queues (imap_unordered / as_completed for plain threads): futures in finishing
 * order, every one exactly once, timeouts, -ENOENT at the end, freeing with jobs still running;
 * on the thread pool and on a process pool's chunked map. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <corio.h>
#include "test_executor_thread_tsan.h"

TestSuite(completions, .timeout = 60);

static corio_executor *tpool(unsigned max)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts o = {.max_workers = max};
  cr_assert_eq(corio_thread_pool_new(&ex, &o), 0);
  return ex;
}

/* Job 0 is the slow one: it finishes only once the test has taken the other nine from the
 * queue (a real ordering, not a long sleep that a loaded machine may outlast), so a queue that
 * kept the submission order would never give the nine (next() times out). */
static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cv = PTHREAD_COND_INITIALIZER;
static int slow_may_finish;
static void sleep_then_return(corio_job *job)
{
  intptr_t v = (intptr_t)corio_job_arg(job);
  if (v == 0) {
    pthread_mutex_lock(&slow_mu);
    while (!slow_may_finish) pthread_cond_wait(&slow_cv, &slow_mu);
    pthread_mutex_unlock(&slow_mu);
  } else {
    usleep(1000);
  }
  corio_job_return(job, v);
}
static void let_slow_finish(void)
{
  pthread_mutex_lock(&slow_mu);
  slow_may_finish = 1;
  pthread_cond_broadcast(&slow_cv);
  pthread_mutex_unlock(&slow_mu);
}

Test(completions, thread_pool_finishing_order_each_once)
{
  corio_executor *ex = tpool(4);
  corio_completions *c;
  corio_future *f;
  int seen[10] = {0}, i, n = 0, last = -1;
  cr_assert_eq(corio_completions_new(&c), 0);
  for (i = 0; i < 10; i++)
    cr_assert_eq(
        corio_completions_add(c, corio_executor_submit(ex, sleep_then_return, (void *)(intptr_t)i)),
        0);
  cr_assert_eq(corio_completions_pending(c), 10);
  while (corio_completions_next(c, 10, &f) == 0) {
    int64_t v = corio_future_int(f);
    cr_assert(corio_future_done(f));
    cr_assert(v >= 0 && v < 10);
    cr_assert_eq(seen[v]++, 0, "job %lld twice", (long long)v);
    last = (int)v;
    n++;
    corio_future_unref(f);
    if (n == 9) let_slow_finish(); /* the nine quick ones came first: now the slow one */
  }
  if (n < 9) let_slow_finish(); /* a failed next(): let the pool be freed */
  cr_assert_eq(n, 10);
  cr_assert_eq(last, 0, "the slow job comes out last");
  cr_assert_eq(corio_completions_next(c, 1, &f), -ENOENT);
  cr_assert_null(f);
  corio_completions_free(c);
  corio_executor_free(ex);
}

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static void gated(corio_job *job)
{
  pthread_mutex_lock(&gate_mu);
  while (!gate_open) pthread_cond_wait(&gate_cv, &gate_mu);
  pthread_mutex_unlock(&gate_mu);
  corio_job_return(job, 42);
}
static void open_gate(void)
{
  pthread_mutex_lock(&gate_mu);
  gate_open = 1;
  pthread_cond_broadcast(&gate_cv);
  pthread_mutex_unlock(&gate_mu);
}

Test(completions, timeout_then_result_then_enoent)
{
  corio_executor *ex = tpool(2);
  corio_completions *c;
  corio_future *f = (corio_future *)1;
  gate_open = 0;
  cr_assert_eq(corio_completions_new(&c), 0);
  cr_assert_eq(corio_completions_next(c, 0, &f), -ENOENT);
  cr_assert_eq(corio_completions_add(c, corio_executor_submit(ex, gated, NULL)), 0);
  cr_assert_eq(corio_completions_next(c, 0, &f), -ETIMEDOUT);
  cr_assert_eq(corio_completions_next(c, 0.05, &f), -ETIMEDOUT);
  cr_assert_null(f);
  open_gate();
  cr_assert_eq(corio_completions_next(c, 10, &f), 0);
  cr_assert_eq(corio_future_int(f), 42);
  corio_future_unref(f);
  cr_assert_eq(corio_completions_next(c, 0, &f), -ENOENT);
  corio_completions_free(c);
  corio_executor_free(ex);
}

Test(completions, free_with_jobs_still_running_and_unread_results)
{
  corio_executor *ex = tpool(2);
  corio_completions *c;
  corio_future *mine, *done;
  gate_open = 0;
  cr_assert_eq(corio_completions_new(&c), 0);
  done = corio_executor_submit(ex, sleep_then_return, (void *)(intptr_t)5);
  cr_assert_eq(corio_future_wait(done, 10), 0);
  cr_assert_eq(corio_completions_add(c, done), 0); /* already finished: queued at once */
  mine = corio_executor_submit(ex, gated, NULL);
  cr_assert_eq(corio_completions_add(c, corio_future_ref(mine)), 0);
  cr_assert_eq(corio_completions_pending(c), 2);
  corio_completions_free(c); /* one unread result, one job running: nothing leaks (ASan) */
  open_gate();
  cr_assert_eq(corio_future_wait(mine, 10), 0);
  corio_future_unref(mine);
  corio_executor_free(ex);
}

Test(completions, bad_input)
{
  corio_completions *c;
  corio_future *f;
  cr_assert_eq(corio_completions_new(NULL), -EINVAL);
  cr_assert_eq(corio_completions_new(&c), 0);
  cr_assert_eq(corio_completions_add(c, NULL), -EINVAL);
  cr_assert_eq(corio_completions_add(NULL, corio_future_new(NULL)), -EINVAL); /* consumed */
  cr_assert_eq(corio_completions_next(NULL, 0, &f), -EINVAL);
  cr_assert_eq(corio_completions_next(c, 0, NULL), -EINVAL);
  corio_completions_free(c);
  corio_completions_free(NULL);
}

/* imap_unordered on a process pool: a chunked map whose futures come out as they finish. */
static void square_bytes(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  int64_t v;
  memcpy(&v, in->data, sizeof(v));
  corio_job_return(job, v * v);
}

Test(completions, process_pool_imap_unordered)
{
  enum { N = 200 };
  corio_executor *ex = NULL;
  corio_process_pool_opts o = {.max_workers = 2};
  corio_completions *c;
  corio_bytes in[N];
  corio_future *out[N], *f;
  int64_t vals[N], sum = 0, want = 0;
  int i, n = 0;
  cr_assert_eq(corio_process_pool_new(&ex, &o), 0);
  for (i = 0; i < N; i++) {
    vals[i] = i;
    in[i].data = (uint8_t *)&vals[i];
    in[i].len = sizeof(vals[i]);
    want += (int64_t)i * i;
  }
  cr_assert_eq(corio_executor_map(ex, square_bytes, in, N, 16, out), 0);
  cr_assert_eq(corio_completions_new(&c), 0);
  for (i = 0; i < N; i++) cr_assert_eq(corio_completions_add(c, out[i]), 0);
  while (corio_completions_next(c, 30, &f) == 0) {
    cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
    sum += corio_future_int(f);
    n++;
    corio_future_unref(f);
  }
  cr_assert_eq(n, N);
  cr_assert_eq(sum, want);
  corio_completions_free(c);
  corio_executor_free(ex);
}
