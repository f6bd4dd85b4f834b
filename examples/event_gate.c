/*
 * event_gate — an asyncio.Event releasing 10 waiters at once.
 *
 * Python:
 *     gate = asyncio.Event()
 *     async def runner(i): await gate.wait(); print(f"runner {i} released")
 *     tasks = [create_task(runner(i)) for i in range(10)]
 *     await asyncio.sleep(0.1); print("opening the gate"); gate.set()
 */
#include <stdio.h>
#include <corio.h>

#define N 10
static int released;

struct runner {
  corio_task task;
  corio_event *gate;
  int id;
};

static corio_step runner_step(corio_task *t)
{
  struct runner *r = corio_container_of(t, struct runner, task);
  CORIO_BEGIN(t);
  printf("runner %d waiting\n", r->id);
  CORIO_AWAIT_TRY(t, corio_event_wait(r->gate));
  released++;
  printf("runner %d released\n", r->id);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  corio_event *gate;
  struct runner *r[N];
  corio_future *futs[N]; /* survives the awaits below: a frame field, not a local */
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  int i;
  CORIO_BEGIN(t);
  m->gate = corio_event_new(t->loop);
  for (i = 0; i < N; i++) {
    m->r[i] = corio_task_new(t->loop, runner_step, struct runner, task);
    m->r[i]->gate = m->gate;
    m->r[i]->id = i;
    m->futs[i] = corio_task_spawn(&m->r[i]->task);
  }
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.1));
  printf("opening the gate (%d released so far)\n", released);
  corio_event_set(m->gate);
  CORIO_AWAIT_TRY(t, corio_gather(m->futs, N, 0));
  printf("all %d runners released\n", released);
  CORIO_FINALLY(t);
  for (i = 0; i < N; i++)
    if (m->r[i]) corio_future_unref(&m->r[i]->task.fut);
  if (m->gate) corio_event_free(m->gate);
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
