/*
 * event_gate — an asyncio.Event releasing 10 waiting tasks at once.
 *
 * Python (asyncio):
 *
 *     async def runner(i, gate):
 *         print(f"runner {i} waiting")
 *         await gate.wait()
 *         print(f"runner {i} released")
 *
 *     async def main():
 *         gate = asyncio.Event()
 *         runners = [asyncio.create_task(runner(i, gate)) for i in range(10)]
 *         await asyncio.sleep(0.1)
 *         print("opening the gate")
 *         gate.set()                      # wakes every waiter
 *         await asyncio.gather(*runners)
 *
 *     asyncio.run(main())
 */
#include <errno.h>
#include <stdio.h>
#include <corio.h>

#define N 10

static int waiting, released;
static double t0;

/* async def runner(i, gate) */
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
  waiting++;
  CORIO_AWAIT_TRY(t, corio_event_wait(r->gate));
  waiting--;
  released++;
  printf("runner %d released at %.2f s\n", r->id, corio_loop_time(t->loop) - t0);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* async def main() */
struct main_task {
  corio_task task;
  corio_event *gate;
  struct runner *r[N];
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[N];
  int i;

  CORIO_BEGIN(t);
  m->gate = corio_event_new(t->loop);
  if (!m->gate) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < N; i++) {
    m->r[i] = corio_task_new(t->loop, runner_step, struct runner, task);
    if (!m->r[i]) CORIO_THROW(t, -ENOMEM);
    m->r[i]->gate = m->gate;
    m->r[i]->id = i;
    CORIO_TRY(t, corio_task_start(&m->r[i]->task));
  }
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.1));
  printf("opening the gate: %d waiting, %d released so far\n", waiting, released);
  corio_event_set(m->gate);
  for (i = 0; i < N; i++) futs[i] = corio_future_ref(&m->r[i]->task.fut);
  CORIO_AWAIT_TRY(t, corio_gather(futs, N, 0));
  printf("all %d runners released, %d still waiting\n", released, waiting);
  CORIO_FINALLY(t);
  /* After an error, runners may still wait on the gate: cancel them and wait for them before
   * freeing it. On the normal path they are done and this only drops our references. */
  for (m->i = 0; m->i < N; m->i++) {
    if (!m->r[m->i]) continue;
    corio_task_cancel(&m->r[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->r[m->i]->task.fut));
    corio_future_unref(&m->r[m->i]->task.fut);
  }
  /* A free that fails (-EBUSY: still in use) fails the task: in FINALLY, CORIO_TRY records
   * the error and the cleanup goes on. */
  if (m->gate) CORIO_TRY(t, corio_event_free(m->gate));
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "event_gate: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  t0 = corio_loop_time(loop);
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "event_gate: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "event_gate: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0;
}
