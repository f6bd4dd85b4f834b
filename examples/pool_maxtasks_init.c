/*
 * pool_maxtasks_init — Port of a Python seed program (issue 4): a pool whose workers are
 * set up by an initializer and replaced after max_tasks_per_child jobs; the pids change every 3
 * jobs and each new worker runs the initializer before its first job.
 *
 * Python (multiprocessing):
 *
 *     def init():
 *         global ready_in
 *         ready_in = os.getpid()               # e.g. open a connection, load a model
 *         print(f"initializer: pid {os.getpid()}")
 *
 *     def job(n):
 *         return os.getpid(), ready_in == os.getpid()
 *
 *     with Pool(2, initializer=init, maxtasksperchild=3) as pool:
 *         for n in range(9):
 *             print(n, pool.apply(job, (n,)))       # one after another
 *         results = pool.map(job, range(30))       # all at once
 *
 * The initializer is an ordinary job function run once in each new worker process. How many
 * times it ran is counted in shared memory (corio/shm.h), created before the pool so that the
 * workers inherit it: a global counter would be incremented in each worker's own copy.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <corio.h>

#define PER_CHILD 3
#define NSEQ      9
#define NMAP      30

static pid_t ready_in;           /* set by the initializer, in the worker's own memory */
static _Atomic long *init_count; /* in shared memory */

/* def init() */
static void init(corio_job *job)
{
  (void)job;
  ready_in = getpid();
  atomic_fetch_add(init_count, 1);
  printf("initializer: pid %ld\n", (long)getpid());
}

/* def job(n): the pid, and whether this process ran the initializer (in the low bit) */
static void job(corio_job *job)
{
  corio_job_return(job, (int64_t)getpid() << 1 | (ready_in == getpid()));
}

static pid_t pid_of(corio_future *f)
{
  return (pid_t)(corio_future_int(f) >> 1);
}

static int initialized(corio_future *f)
{
  return corio_future_error(f) == 0 && (corio_future_int(f) & 1);
}

static int cmp_pid(const void *a, const void *b)
{
  pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
  return (x > y) - (x < y);
}

int main(void)
{
  corio_process_pool_opts opts = {
      .max_workers = 2, .max_tasks_per_child = PER_CHILD, .initializer = init};
  corio_executor *pool = NULL;
  corio_shm *shm = NULL;
  corio_future *f, *out[NMAP];
  corio_bytes in[NMAP] = {{0}};
  pid_t pids[NMAP], prev = 0;
  long inits_before;
  int i, rc, changes = 0, nproc, most, run, all_init = 1, bad = 0;

  setvbuf(stdout, NULL, _IOLBF, 0); /* the workers' lines and ours, in the order printed */
  rc = corio_shm_new(&shm, 4096);
  if (rc == 0) {
    init_count = corio_shm_alloc(shm, sizeof(*init_count), 0);
    rc = corio_process_pool_new(&pool, &opts);
  }
  if (rc < 0) {
    fprintf(stderr, "pool_maxtasks_init: %s\n", corio_strerror(rc));
    corio_shm_free(shm);
    return 1;
  }

  /* One job after another: each worker runs exactly 3, then a new one takes over. */
  for (i = 0; i < NSEQ; i++) {
    f = corio_executor_submit(pool, job, NULL);
    if (!f || corio_future_wait(f, 10) < 0 || corio_future_error(f) != 0) {
      fprintf(stderr, "pool_maxtasks_init: job %d: %s\n", i,
              f ? corio_future_error_message(f) : "out of memory");
      corio_future_unref(f);
      bad = 1;
      break;
    }
    if (i > 0 && pid_of(f) != prev) changes++;
    prev = pid_of(f);
    printf("job %d: pid %ld, initializer ran in this process: %s\n", i, (long)prev,
           initialized(f) ? "yes" : "NO");
    corio_future_unref(f);
  }
  printf("sequential: %d jobs, the pid changed %d times, the initializer ran %ld times\n", i,
         changes, atomic_load(init_count));

  /* All at once: two workers at a time, each retired after 3 jobs. */
  inits_before = atomic_load(init_count);
  rc = bad ? -EINVAL : corio_executor_map(pool, job, in, NMAP, 1, out);
  if (rc == 0) rc = corio_futures_wait_all(out, NMAP, 20);
  if (rc == 0) {
    for (i = 0; i < NMAP; i++) {
      pids[i] = pid_of(out[i]);
      all_init &= initialized(out[i]);
      corio_future_unref(out[i]);
    }
    qsort(pids, NMAP, sizeof(pids[0]), cmp_pid);
    for (i = 0, nproc = 0, most = 0, run = 0; i < NMAP; i++) {
      run = (i > 0 && pids[i] == pids[i - 1]) ? run + 1 : 1;
      if (run == 1) nproc++;
      if (run > most) most = run;
    }
    printf("all at once: %d jobs ran in %d processes, at most %d jobs each; every job's process "
           "ran the initializer: %s\n",
           NMAP, nproc, most, all_init ? "yes" : "NO");
    /* A worker may be started for a job that another worker, freed meanwhile, takes first: the
     * initializer can run more often than there are pids among the results, never less. */
    printf("all at once: the initializer ran %s once per process that ran a job\n",
           atomic_load(init_count) - inits_before >= nproc ? "at least" : "LESS THAN");
  }
  corio_executor_free(pool);
  corio_shm_free(shm);
  if (rc < 0) fprintf(stderr, "pool_maxtasks_init: %s\n", corio_strerror(rc));
  return bad || rc < 0;
}
