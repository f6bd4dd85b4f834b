/* Helpers shared by the process pool tests (tests/test_executor_process*.c). */
#ifndef TEST_EXECUTOR_PROCESS_H
#define TEST_EXECUTOR_PROCESS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <corio.h>
#include "procpool_impl.h"
#include "test_executor_thread_tsan.h" /* Criterion's arena under ThreadSanitizer */

/* Criterion runs each test in its own process. Making it a subreaper means a worker that
 * outlived its fork server would become our child, so no_children() would see it. */
static inline void pp_test_setup(void)
{
  prctl(PR_SET_CHILD_SUBREAPER, 1);
}

static inline int count_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  cr_assert_not_null(d);
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

/* No child process at all, alive or zombie. */
static inline void assert_no_children(void)
{
  int st;
  pid_t r = waitpid(-1, &st, WNOHANG);
  cr_assert(r == -1 && errno == ECHILD, "a child process remains (waitpid: %d)", (int)r);
}

static inline corio_executor *pool_new(unsigned workers, unsigned max_tasks, corio_job_fn init,
                                       size_t threshold)
{
  corio_process_pool_opts o;
  corio_executor *ex = NULL;
  memset(&o, 0, sizeof(o));
  o.max_workers = workers;
  o.max_tasks_per_child = max_tasks;
  o.initializer = init;
  o.memfd_threshold = threshold;
  cr_assert_eq(corio_process_pool_new(&ex, &o), 0);
  cr_assert_not_null(ex);
  return ex;
}

static inline corio_future *submit_i64(corio_executor *ex, corio_job_fn fn, int64_t v)
{
  corio_future *f = corio_executor_submit_bytes(ex, fn, &v, sizeof(v));
  cr_assert_not_null(f);
  return f;
}

static inline int64_t input_i64(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  int64_t v = 0;
  if (in && in->len == sizeof(v)) memcpy(&v, in->data, sizeof(v));
  return v;
}

static inline void wait_done(corio_future *f, double timeout_s)
{
  cr_assert_eq(corio_future_wait(f, timeout_s), 0, "the future did not complete in %.1f s",
               timeout_s);
}

static inline double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
