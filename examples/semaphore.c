/*
 * semaphore — an asyncio.Semaphore limiting 10 tasks to 3 at a time.
 *
 * Python:
 *     sem = asyncio.Semaphore(3)
 *     async def fetch(i):
 *         async with sem: running += 1; await asyncio.sleep(0.05); running -= 1
 */
#include <stdio.h>
#include <corio.h>

#define N     10
#define LIMIT 3
static int running, max_running;

struct fetch {
  corio_task task;
  corio_semaphore *sem;
  int id, holding;
};

static corio_step fetch_step(corio_task *t)
{
  struct fetch *f = corio_container_of(t, struct fetch, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_semaphore_acquire(f->sem));
  f->holding = 1;
  running++;
  if (running > max_running) max_running = running;
  printf("fetch %d running (%d at once)\n", f->id, running);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.05));
  CORIO_FINALLY(t);
  if (f->holding) {
    running--;
    corio_semaphore_release(f->sem);
  }
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  corio_semaphore *sem;
  struct fetch *f[N];
  corio_future *futs[N];
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  int i;
  CORIO_BEGIN(t);
  m->sem = corio_semaphore_new(t->loop, LIMIT);
  for (i = 0; i < N; i++) {
    m->f[i] = corio_task_new(t->loop, fetch_step, struct fetch, task);
    m->f[i]->sem = m->sem;
    m->f[i]->id = i;
    m->futs[i] = corio_task_spawn(&m->f[i]->task);
  }
  CORIO_AWAIT_TRY(t, corio_gather(m->futs, N, 0));
  printf("max concurrency observed: %d (limit %d)\n", max_running, LIMIT);
  CORIO_FINALLY(t);
  for (i = 0; i < N; i++)
    if (m->f[i]) corio_future_unref(&m->f[i]->task.fut);
  if (m->sem) corio_semaphore_free(m->sem);
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
