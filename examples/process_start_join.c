/*
 * process_start_join — Port of a Python seed program (issue 4): start worker processes,
 * join them, read their exit codes; one exits with status 3, one is terminated while running.
 *
 * Python (multiprocessing):
 *
 *     def worker(n):
 *         print(f"worker {n}: pid {os.getpid()}, parent {os.getppid()}")
 *         if n == 3:
 *             sys.exit(3)
 *         if n == 4:
 *             time.sleep(30)               # terminated long before
 *         return n * 10
 *
 *     procs = [Process(target=worker, args=(n,)) for n in range(5)]
 *     for p in procs: p.start()
 *     procs[4].terminate()
 *     for p in procs: p.join(); print(p.name, p.exitcode)
 *
 * corio has no Process object: a job submitted to a process pool with max_tasks_per_child = 1
 * is one (each job gets a fresh worker process, which exits after it). start is submit, join is
 * corio_future_wait, terminate is corio_future_cancel (a running job's worker is killed). The
 * workers are forked by the pool's fork server, so their parent pid is the fork server's, not
 * ours. A job that exits or dies fails its future with CORIO_E_WORKER_DIED and a text saying how.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <corio.h>

#define NPROCS 5

static _Atomic int *sleeper_started; /* in shared memory: set by job 4 once it runs */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* def worker(n) */
static void worker(corio_job *job)
{
  int n = (int)(intptr_t)corio_job_arg(job);
  int i;
  printf("worker %d: pid %ld, parent %ld\n", n, (long)getpid(), (long)getppid());
  if (n == 3) {
    _exit(3); /* sys.exit(3); _exit skips stdio, but the line was already written */
  }
  if (n == 4) {
    atomic_store(sleeper_started, 1);
    for (i = 0; i < 300; i++) usleep(100000); /* 30 s, unless terminated */
  }
  corio_job_return(job, n * 10);
}

int main(void)
{
  corio_process_pool_opts opts = {.max_workers = NPROCS, .max_tasks_per_child = 1};
  corio_executor *ex = NULL;
  corio_future *p[NPROCS] = {0};
  corio_shm *shm = NULL;
  double t0;
  int n, rc, bad = 0;

  /* Line-buffered output, here and in the workers (they inherit it): lines appear in the order
   * they were printed, and a worker killed mid-job has already written its line. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* Shared memory first, then the pool: the workers inherit the mapping. */
  rc = corio_shm_new(&shm, 4096);
  if (rc == 0) {
    sleeper_started = corio_shm_alloc(shm, sizeof(*sleeper_started), 0);
    rc = corio_process_pool_new(&ex, &opts);
  }
  if (rc < 0) {
    fprintf(stderr, "process_start_join: %s\n", corio_strerror(rc));
    corio_shm_free(shm);
    return 1;
  }
  printf("parent: pid %ld\n", (long)getpid());
  for (n = 0; n < NPROCS; n++) { /* p.start() */
    p[n] = corio_executor_submit(ex, worker, (void *)(intptr_t)n);
    if (!p[n]) goto oom;
  }

  /* procs[4].terminate(), once it runs */
  t0 = now_s();
  while (!atomic_load(sleeper_started) && now_s() - t0 < 10) usleep(1000);
  printf("terminate worker 4: %s\n",
         corio_future_cancel(p[4]) == 1 ? "requested" : "it had already finished");

  for (n = 0; n < NPROCS; n++) { /* p.join(); p.exitcode */
    if (corio_future_wait(p[n], 10) < 0) {
      printf("worker %d: still running after 10 s\n", n);
      bad = 1;
      continue;
    }
    rc = corio_future_error(p[n]);
    if (rc == 0)
      printf("worker %d: exit code 0, result %lld\n", n, (long long)corio_future_int(p[n]));
    else if (corio_future_cancelled(p[n]))
      printf("worker %d: terminated (cancelled after %.2f s)\n", n, now_s() - t0);
    else
      printf("worker %d: failed, %s: %s\n", n, corio_err_name(rc),
             corio_future_error_message(p[n]));
  }
  goto done;
oom:
  fprintf(stderr, "process_start_join: %s\n", corio_strerror(-ENOMEM));
  bad = 1;
done:
  for (n = 0; n < NPROCS; n++) corio_future_unref(p[n]);
  corio_executor_free(ex);
  corio_shm_free(shm);
  return bad;
}
