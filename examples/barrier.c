/*
 * barrier — an asyncio.Barrier fixing the start order: each worker gets ready at its own pace,
 * and none goes before all are ready.
 *
 * Python (asyncio):
 *
 *     async def worker(i, barrier):
 *         await asyncio.sleep(prep_time[i])     # gets ready at its own pace
 *         print(f"worker {i} ready")
 *         arrival = await barrier.wait()        # 0 for the first to arrive, 4 for the last
 *         print(f"worker {i} go (arrival {arrival})")
 *
 *     async def main():
 *         barrier = asyncio.Barrier(5)
 *         await asyncio.gather(*(worker(i, barrier) for i in range(5)))
 *
 *     asyncio.run(main())
 */
#include <errno.h>
#include <stdio.h>
#include <corio.h>

#define N 5

/* Preparation times: the workers get ready in the order 0, 3, 1, 4, 2. */
static const double prep_time[N] = {0.00, 0.02, 0.04, 0.01, 0.03};

/* async def worker(i, barrier) */
struct worker {
  corio_task task;
  corio_barrier *barrier;
  int id;
};

static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);

  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, prep_time[w->id]));
  printf("worker %d ready\n", w->id);
  CORIO_AWAIT_TRY(t, corio_barrier_wait(w->barrier)); /* fails if the barrier breaks */
  printf("worker %d go (arrival %lld)\n", w->id, (long long)corio_future_int(corio_awaited(t)));
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* async def main() */
struct main_task {
  corio_task task;
  corio_barrier *barrier;
  struct worker *w[N];
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[N];
  int i;

  CORIO_BEGIN(t);
  m->barrier = corio_barrier_new(t->loop, N);
  if (!m->barrier) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < N; i++) {
    m->w[i] = corio_task_new(t->loop, worker_step, struct worker, task);
    if (!m->w[i]) CORIO_THROW(t, -ENOMEM);
    m->w[i]->barrier = m->barrier;
    m->w[i]->id = i;
  }
  for (i = 0; i < N; i++) futs[i] = corio_task_spawn(&m->w[i]->task);
  CORIO_AWAIT_TRY(t, corio_gather(futs, N, 0));
  printf("all %d workers passed the barrier\n", N);
  CORIO_FINALLY(t);
  /* After an error, cancel and wait for the workers still running before freeing the barrier.
   * On the normal path they are done and this only drops our references. */
  for (m->i = 0; m->i < N; m->i++) {
    if (!m->w[m->i]) continue;
    corio_task_cancel(&m->w[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->w[m->i]->task.fut));
    corio_future_unref(&m->w[m->i]->task.fut);
  }
  if (m->barrier) CORIO_TRY(t, corio_barrier_free(m->barrier));
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "barrier: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "barrier: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "barrier: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0;
}
