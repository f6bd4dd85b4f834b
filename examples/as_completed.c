/*
 * as_completed — results in completion order, not submission order.
 *
 * Python:
 *     async def job(n, secs): await asyncio.sleep(secs); return n
 *     for fut in asyncio.as_completed([job(1, .3), job(2, .1), job(3, .4), job(4, .2)]):
 *         print("finished job", await fut)
 */
#include <stdio.h>
#include <corio.h>

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

#define NJOBS 5
struct main_task {
  corio_task task;
  corio_as_completed *it;
  int i;
};

static corio_step main_step(corio_task *t)
{
  static const double secs[NJOBS] = {0.3, 0.1, 0.5, 0.2, 0.4};
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[NJOBS];
  struct job *j;
  corio_future *done;
  int i;

  CORIO_BEGIN(t);
  for (i = 0; i < NJOBS; i++) {
    j = corio_task_new(t->loop, job_step, struct job, task);
    if (!j) CORIO_THROW(t, -ENOMEM);
    j->n = i + 1;
    j->secs = secs[i];
    printf("submitted job %d (%.1f s)\n", j->n, j->secs);
    futs[i] = corio_task_spawn(&j->task);
    corio_future_unref(&j->task.fut); /* futs[i] is our reference */
  }
  m->it = corio_as_completed_new(t->loop, futs, NJOBS);
  if (!m->it) CORIO_THROW(t, -ENOMEM);
  for (m->i = 0; m->i < NJOBS; m->i++) {
    CORIO_AWAIT_TRY(t, corio_as_completed_next(m->it));
    done = corio_future_ptr(corio_awaited(t));
    printf("finished job %lld\n", (long long)corio_future_int(done));
  }
  CORIO_FINALLY(t);
  corio_as_completed_free(m->it);
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "corio_loop_new: %s\n", corio_strerror(rc));
    return 1;
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  corio_task_start(&m->task);
  rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "error: %s\n", corio_strerror(rc));
  return corio_loop_close(loop) != 0 || rc < 0;
}
