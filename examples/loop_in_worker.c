/*
 * loop_in_worker — Port of a Python seed program (issue 4): each process-pool worker runs an
 * event loop of its own, with tasks gathered concurrently, and returns the result to the parent.
 *
 * Python (multiprocessing + asyncio):
 *
 *     async def fetch(k, j):
 *         await asyncio.sleep(0.04 + 0.01 * j)         # 0.04 ... 0.08 s
 *         return k * 100 + j
 *
 *     async def main(k):
 *         return await asyncio.gather(*(fetch(k, j) for j in range(5)))
 *
 *     def job(k):
 *         t0 = time.monotonic()
 *         results = asyncio.run(main(k))             # a loop per job, in the worker
 *         return os.getpid(), results, time.monotonic() - t0
 *
 *     with ProcessPoolExecutor(2) as pool:
 *         for pid, results, took in pool.map(job, range(4)):
 *             print(pid, results, took)
 *
 * The worker is a fork of the fork server, which holds no loop and no ring (corio's descriptors
 * are close-on-exec and closed there), so each job makes a fresh loop with corio_loop_new and
 * closes it before returning, as asyncio.run does. The sleeps overlap: the gather takes about the
 * longest one (0.08 s), not their sum (0.30 s).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <corio.h>

#define NJOBS  4
#define NFETCH 5

/* async def fetch(k, j) */
struct fetch {
  corio_task task;
  int k, j;
};

static corio_step fetch_step(corio_task *t)
{
  struct fetch *f = corio_container_of(t, struct fetch, task);

  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.04 + 0.01 * f->j));
  CORIO_RETURN(t, f->k * 100 + f->j);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* async def main(k) */
struct main_task {
  corio_task task;
  int k;
  struct fetch *f[NFETCH];
  int64_t results[NFETCH];
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[NFETCH], *g;
  int i;

  CORIO_BEGIN(t);
  for (i = 0; i < NFETCH; i++) {
    m->f[i] = corio_task_new(t->loop, fetch_step, struct fetch, task);
    if (!m->f[i]) CORIO_THROW(t, -ENOMEM);
    m->f[i]->k = m->k;
    m->f[i]->j = i;
  }
  for (i = 0; i < NFETCH; i++) futs[i] = corio_task_spawn(&m->f[i]->task);
  CORIO_AWAIT_TRY(t, corio_gather(futs, NFETCH, 0));
  g = corio_awaited(t);
  for (i = 0; i < NFETCH; i++) m->results[i] = corio_future_int(corio_gather_child(g, (size_t)i));
  CORIO_FINALLY(t);
  for (m->i = 0; m->i < NFETCH; m->i++) { /* after an error: stop the fetches still running */
    if (!m->f[m->i]) continue;
    corio_task_cancel(&m->f[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->f[m->i]->task.fut));
    corio_future_unref(&m->f[m->i]->task.fut);
  }
  CORIO_END(t);
}

/* What a job sends back, as bytes. */
struct reply {
  int64_t pid;
  int64_t results[NFETCH];
  double took;
};

/* def job(k): asyncio.run(main(k)) in the worker */
static void job(corio_job *job)
{
  struct reply r;
  corio_loop *loop;
  struct main_task *m;
  double t0;
  int rc, closed;

  memset(&r, 0, sizeof(r));
  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    corio_job_fail(job, rc, "cannot create a loop in the worker: %s", corio_strerror(rc));
    return;
  }
  t0 = corio_loop_time(loop);
  m = corio_task_new(loop, main_step, struct main_task, task);
  if (m) memcpy(&m->k, corio_job_input(job)->data, sizeof(m->k));
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  r.took = corio_loop_time(loop) - t0;
  if (rc == 0) memcpy(r.results, m->results, sizeof(r.results));
  if (m) corio_future_unref(&m->task.fut);
  closed = corio_loop_close(loop);
  if (rc == 0 && closed != 0) rc = closed;
  if (rc < 0) {
    corio_job_fail(job, rc, "the worker's loop failed: %s", corio_strerror(rc));
    return;
  }
  r.pid = getpid();
  corio_job_return_bytes(job, &r, sizeof(r));
}

int main(void)
{
  corio_process_pool_opts opts = {.max_workers = 2};
  corio_executor *pool;
  corio_future *out[NJOBS];
  corio_bytes in[NJOBS];
  int k[NJOBS], i, rc, bad = 0;
  struct reply r;

  rc = corio_process_pool_new(&pool, &opts);
  if (rc < 0) {
    fprintf(stderr, "loop_in_worker: cannot create the pool: %s\n", corio_strerror(rc));
    return 1;
  }
  printf("parent: pid %ld\n", (long)getpid());
  for (i = 0; i < NJOBS; i++) {
    k[i] = i;
    in[i] = (corio_bytes){(uint8_t *)&k[i], sizeof(k[i])};
  }
  rc = corio_executor_map(pool, job, in, NJOBS, 1, out); /* pool.map(job, range(4)) */
  for (i = 0; rc == 0 && i < NJOBS; i++) {
    if (corio_future_wait(out[i], 10) < 0 || corio_future_error(out[i]) != 0 ||
        corio_future_bytes(out[i])->len != sizeof(r)) {
      printf("job %d: %s\n", i,
             corio_future_done(out[i]) ? corio_future_error_message(out[i]) : "timed out");
      bad = 1;
    } else {
      memcpy(&r, corio_future_bytes(out[i])->data, sizeof(r));
      printf("job %d: pid %lld, results [%lld, %lld, %lld, %lld, %lld], "
             "%d sleeps of 0.30 s in all took %.3f s\n",
             i, (long long)r.pid, (long long)r.results[0], (long long)r.results[1],
             (long long)r.results[2], (long long)r.results[3], (long long)r.results[4], NFETCH,
             r.took);
    }
  }
  if (rc == 0)
    for (i = 0; i < NJOBS; i++) corio_future_unref(out[i]);
  corio_executor_free(pool);
  if (rc < 0) fprintf(stderr, "loop_in_worker: %s\n", corio_strerror(rc));
  return bad || rc < 0;
}
