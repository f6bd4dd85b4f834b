/*
 * downloads — three 1-second "downloads" run concurrently with asyncio.gather: ~1 s, not 3.
 *
 * Python (asyncio):
 *
 *     async def download(name, size):
 *         print(f"start {name}")
 *         await asyncio.sleep(1.0)          # stands for the network transfer
 *         print(f"done  {name}")
 *         return size
 *
 *     async def main():
 *         sizes = await asyncio.gather(download("index.html", 5120),
 *                                      download("logo.png", 20480),
 *                                      download("data.json", 870))
 *
 *     asyncio.run(main())
 *
 * One thread, no busy waiting: while a download is suspended in its await, the loop runs the
 * others; all three timers expire together, after about one second.
 */
#include <errno.h>
#include <stdio.h>
#include <corio.h>

#define NFILES 3

static const struct file {
  const char *name;
  int64_t size;
} files[NFILES] = {{"index.html", 5120}, {"logo.png", 20480}, {"data.json", 870}};

static double t0; /* loop time at the start, for the timeline */

/* async def download(name, size) */
struct download {
  corio_task task; /* first: a task IS a future, its value is the downloaded size */
  const struct file *file;
};

static corio_step download_step(corio_task *t)
{
  struct download *d = corio_container_of(t, struct download, task);

  CORIO_BEGIN(t);
  printf("[%.2f s] start %s\n", corio_loop_time(t->loop) - t0, d->file->name);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 1.0)); /* the "transfer": suspends this task only */
  printf("[%.2f s] done  %-10s %6lld bytes\n", corio_loop_time(t->loop) - t0, d->file->name,
         (long long)d->file->size);
  CORIO_RETURN(t, d->file->size);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* async def main() */
struct main_task {
  corio_task task;
  struct download *d[NFILES];
  int64_t total;
  size_t i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[NFILES]; /* handed to corio_gather before any await: a local is fine */
  int64_t size;
  size_t i;

  CORIO_BEGIN(t);
  printf("Downloading %d files concurrently, 1 s each, with corio_gather:\n", NFILES);
  for (i = 0; i < NFILES; i++) {
    m->d[i] = corio_task_new(t->loop, download_step, struct download, task);
    if (!m->d[i]) CORIO_THROW(t, -ENOMEM);
    m->d[i]->file = &files[i];
  }
  for (i = 0; i < NFILES; i++) futs[i] = corio_task_spawn(&m->d[i]->task);
  CORIO_AWAIT_TRY(t, corio_gather(futs, NFILES, 0)); /* consumes the spawn references */

  /* gather keeps the argument order, whatever the completion order was. */
  printf("gather results, in argument order:");
  for (i = 0; i < NFILES; i++) {
    size = corio_future_int(corio_gather_child(corio_awaited(t), i));
    m->total += size;
    printf(" %s=%lld", files[i].name, (long long)size);
  }
  printf("\n");
  printf("Total: %lld bytes in %.2f s (one after the other, it would take %d s)\n",
         (long long)m->total, corio_loop_time(t->loop) - t0, NFILES);
  CORIO_FINALLY(t);
  /* Also on error: no download is left running (cancel is harmless on a finished task). */
  for (m->i = 0; m->i < NFILES; m->i++) {
    if (!m->d[m->i]) continue;
    corio_task_cancel(&m->d[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->d[m->i]->task.fut));
    corio_future_unref(&m->d[m->i]->task.fut);
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
    fprintf(stderr, "downloads: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  t0 = corio_loop_time(loop);
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "downloads: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "downloads: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0;
}
