/*
 * semaphore — an asyncio.Semaphore letting at most 3 of 10 tasks run at the same time.
 *
 * Python (asyncio):
 *
 *     sem = asyncio.Semaphore(3)
 *     running = max_running = 0
 *
 *     async def fetch(i):
 *         global running, max_running
 *         async with sem:                       # waits while 3 others hold it
 *             running += 1
 *             max_running = max(max_running, running)
 *             print(f"fetch {i} start ({running} running)")
 *             await asyncio.sleep(0.05)
 *             running -= 1
 *             print(f"fetch {i} done")
 *
 *     async def main():
 *         await asyncio.gather(*(fetch(i) for i in range(10)))
 *         print(f"max concurrency observed: {max_running}")
 *
 * The release is in FINALLY: a failed or cancelled fetch gives its slot back too.
 */
#include <errno.h>
#include <stdio.h>
#include <corio.h>

#define N     10
#define LIMIT 3

static int running, max_running;

/* async def fetch(i) */
struct fetch {
  corio_task task;
  corio_semaphore *sem;
  int id;
  int holding; /* a slot is ours: FINALLY gives it back */
};

static corio_step fetch_step(corio_task *t)
{
  struct fetch *f = corio_container_of(t, struct fetch, task);

  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_semaphore_acquire(f->sem));
  f->holding = 1;
  running++;
  if (running > max_running) max_running = running;
  printf("fetch %d start (%d running)\n", f->id, running);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.05)); /* the work */
  printf("fetch %d done\n", f->id);
  CORIO_FINALLY(t);
  if (f->holding) {
    running--;
    corio_semaphore_release(f->sem);
  }
  CORIO_END(t);
}

/* async def main() */
struct main_task {
  corio_task task;
  corio_semaphore *sem;
  struct fetch *f[N];
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[N];
  int i;

  CORIO_BEGIN(t);
  m->sem = corio_semaphore_new(t->loop, LIMIT);
  if (!m->sem) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < N; i++) {
    m->f[i] = corio_task_new(t->loop, fetch_step, struct fetch, task);
    if (!m->f[i]) CORIO_THROW(t, -ENOMEM);
    m->f[i]->sem = m->sem;
    m->f[i]->id = i;
  }
  for (i = 0; i < N; i++) futs[i] = corio_task_spawn(&m->f[i]->task);
  CORIO_AWAIT_TRY(t, corio_gather(futs, N, 0));
  printf("max concurrency observed: %d (limit %d), %d running now\n", max_running, LIMIT, running);
  CORIO_FINALLY(t);
  /* After an error, cancel and wait for the fetches still running before freeing the
   * semaphore. On the normal path they are done and this only drops our references. */
  for (m->i = 0; m->i < N; m->i++) {
    if (!m->f[m->i]) continue;
    corio_task_cancel(&m->f[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->f[m->i]->task.fut));
    corio_future_unref(&m->f[m->i]->task.fut);
  }
  if (m->sem) CORIO_TRY(t, corio_semaphore_free(m->sem));
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "semaphore: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "semaphore: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "semaphore: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0;
}
