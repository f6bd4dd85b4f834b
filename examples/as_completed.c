/*
 * as_completed — take results in the order the tasks finish, not the order they were started.
 *
 * Python (asyncio):
 *
 *     async def job(n, secs):
 *         await asyncio.sleep(secs)
 *         return n
 *
 *     async def main():
 *         jobs = [asyncio.create_task(job(n, secs))
 *                 for n, secs in [(1, .3), (2, .1), (3, .5), (4, .2), (5, .4)]]
 *         for next_done in asyncio.as_completed(jobs):
 *             n = await next_done
 *             print(f"job {n} finished")
 *
 *     asyncio.run(main())
 *
 * corio_as_completed_next() returns a future of the next child to finish; awaiting it yields
 * that child (done), whose own result or error is then read like any future's.
 */
#include <errno.h>
#include <stdio.h>
#include <corio.h>

#define NJOBS 5

/* Launched in this order; the sleeps are shuffled, so they finish as 2, 4, 1, 5, 3. */
static const double secs[NJOBS] = {0.3, 0.1, 0.5, 0.2, 0.4};
static double t0;

/* async def job(n, secs) */
struct job {
  corio_task task;
  int n;
  double secs;
};

static corio_step job_step(corio_task *t)
{
  struct job *j = corio_container_of(t, struct job, task);

  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, j->secs));
  CORIO_RETURN(t, j->n);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* async def main() */
struct main_task {
  corio_task task;
  struct job *job[NJOBS]; /* our references, dropped in FINALLY */
  corio_as_completed *it;
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[NJOBS];
  corio_future *done;
  int i;

  CORIO_BEGIN(t);
  for (i = 0; i < NJOBS; i++) {
    m->job[i] = corio_task_new(t->loop, job_step, struct job, task);
    if (!m->job[i]) CORIO_THROW(t, -ENOMEM);
    m->job[i]->n = i + 1;
    m->job[i]->secs = secs[i];
  }
  for (i = 0; i < NJOBS; i++) {
    printf("launch job %d (sleeps %.1f s)\n", m->job[i]->n, m->job[i]->secs);
    futs[i] = corio_task_spawn(&m->job[i]->task);
  }
  m->it = corio_as_completed_new(t->loop, futs, NJOBS); /* consumes the spawn references */
  if (!m->it) CORIO_THROW(t, -ENOMEM);
  for (m->i = 0; m->i < NJOBS; m->i++) {
    CORIO_AWAIT_TRY(t, corio_as_completed_next(m->it));
    done = corio_future_ptr(corio_awaited(t)); /* the child that finished (borrowed) */
    CORIO_TRY(t, corio_future_error(done));    /* `await next_done` raises the child's error */
    printf("job %lld finished at %.2f s\n", (long long)corio_future_int(done),
           corio_loop_time(t->loop) - t0);
  }
  CORIO_FINALLY(t);
  corio_as_completed_free(m->it); /* cancels the children not yet returned (on error) */
  for (m->i = 0; m->i < NJOBS; m->i++) {
    if (!m->job[m->i]) continue;
    corio_task_cancel(&m->job[m->i]->task); /* harmless on a finished task */
    CORIO_AWAIT(t, corio_future_ref(&m->job[m->i]->task.fut));
    corio_future_unref(&m->job[m->i]->task.fut);
  }
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "as_completed: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  t0 = corio_loop_time(loop);
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "as_completed: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "as_completed: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0;
}
