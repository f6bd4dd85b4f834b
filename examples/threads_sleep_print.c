/*
 * threads_sleep_print — Port of a Python seed program (issue 4): twenty workers of a
 * thread pool (max_workers=20) each sleep a little and print; they sleep at the same time, so
 * the whole run takes about the longest sleep, not the sum of them.
 *
 * Python (concurrent.futures):
 *
 *     def worker(n):
 *         time.sleep(0.10 + (n % 5) * 0.02)
 *         print(f"worker {n} on {threading.current_thread().name} slept ...")
 *
 *     with ThreadPoolExecutor(max_workers=20, thread_name_prefix="sleeper") as ex:
 *         for n in range(20):
 *             ex.submit(worker, n)
 *     print(f"elapsed {time.monotonic() - t0:.2f} s")
 *
 * No loop is needed: corio_executor_submit() returns a loop-less future that the main thread
 * waits on (corio_futures_wait_all), like leaving the `with` block. Each job sleeps with plain
 * nanosleep: it blocks its own worker thread, which is what a thread pool is for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <corio.h>

#define NWORKERS 20

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double sleep_of(int n)
{
  return 0.10 + (n % 5) * 0.02;
}

/* def worker(n) */
static void worker(corio_job *job)
{
  int n = (int)(intptr_t)corio_job_arg(job);
  double secs = sleep_of(n);
  struct timespec ts = {0, (long)(secs * 1e9)};
  char name[16] = "?";

  nanosleep(&ts, NULL);
  pthread_getname_np(pthread_self(), name, sizeof(name));
  /* One printf is one locked stdio call: lines of different threads never interleave. */
  printf("worker %d on thread %s slept %.2f s\n", n, name, secs);
  corio_job_return(job, n);
}

int main(void)
{
  corio_thread_pool_opts opts = {.max_workers = NWORKERS, .thread_name_prefix = "sleeper"};
  corio_executor *ex;
  corio_future *f[NWORKERS] = {0};
  double t0, elapsed, serial = 0;
  int i, rc, bad = 0;

  rc = corio_thread_pool_new(&ex, &opts);
  if (rc < 0) {
    fprintf(stderr, "threads_sleep_print: cannot create the pool: %s\n", corio_strerror(rc));
    return 1;
  }
  t0 = now_s();
  for (i = 0; i < NWORKERS; i++) {
    f[i] = corio_executor_submit(ex, worker, (void *)(intptr_t)i);
    if (!f[i]) {
      fprintf(stderr, "threads_sleep_print: submit: %s\n", corio_strerror(-ENOMEM));
      bad = 1;
      break;
    }
    serial += sleep_of(i);
  }
  rc = corio_futures_wait_all(f, (size_t)i, 10.0);
  elapsed = now_s() - t0;
  if (rc < 0) {
    fprintf(stderr, "threads_sleep_print: waiting: %s\n", corio_strerror(rc));
    bad = 1;
  }
  for (i = 0; i < NWORKERS && f[i]; i++) {
    if (corio_future_error(f[i]) != 0 || corio_future_int(f[i]) != i) bad = 1;
    corio_future_unref(f[i]);
  }
  corio_executor_free(ex); /* shutdown(wait) + free: the end of the `with` block */
  printf("%d workers: sleeps add up to %.2f s, elapsed %.2f s\n", NWORKERS, serial, elapsed);
  return bad;
}
