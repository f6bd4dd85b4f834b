/*
 * barrier — an asyncio.Barrier fixing the start order: every worker gets ready (at its own
 * pace), and none starts before all are ready.
 *
 * Python:
 *     barrier = asyncio.Barrier(5)
 *     async def worker(i):
 *         await asyncio.sleep(random()); print(f"worker {i} ready")
 *         await barrier.wait(); print(f"worker {i} go")
 */
#include <stdio.h>
#include <corio.h>

#define N 5

struct worker {
  corio_task task;
  corio_barrier *b;
  int id;
};

static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.01 * ((w->id * 7) % N)));
  printf("worker %d ready\n", w->id);
  CORIO_AWAIT_TRY(t, corio_barrier_wait(w->b));
  printf("worker %d go (arrival %lld)\n", w->id, (long long)corio_future_int(corio_awaited(t)));
  CORIO_FINALLY(t);
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  corio_barrier *b;
  struct worker *w[N];
  corio_future *futs[N];
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  int i;
  CORIO_BEGIN(t);
  m->b = corio_barrier_new(t->loop, N);
  for (i = 0; i < N; i++) {
    m->w[i] = corio_task_new(t->loop, worker_step, struct worker, task);
    m->w[i]->b = m->b;
    m->w[i]->id = i;
    m->futs[i] = corio_task_spawn(&m->w[i]->task);
  }
  CORIO_AWAIT_TRY(t, corio_gather(m->futs, N, 0));
  printf("all %d workers passed the barrier\n", N);
  CORIO_FINALLY(t);
  for (i = 0; i < N; i++)
    if (m->w[i]) corio_future_unref(&m->w[i]->task.fut);
  if (m->b) corio_barrier_free(m->b);
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc = corio_loop_new(&loop, NULL);
  if (rc < 0) return fprintf(stderr, "corio_loop_new: %s\n", corio_strerror(rc)), 1;
  m = corio_task_new(loop, main_step, struct main_task, task);
  corio_task_start(&m->task);
  rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "error: %s\n", corio_strerror(rc));
  return corio_loop_close(loop) != 0 || rc < 0;
}
