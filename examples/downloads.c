/*
 * downloads — asyncio.gather of three coroutines that each "download" for 1 s.
 *
 * Python:
 *     async def download(name, secs):
 *         print(f"start {name}"); await asyncio.sleep(secs); print(f"done {name}")
 *         return len(name) * 100
 *     results = await asyncio.gather(download("a.txt", 1), download("b.txt", 1), ...)
 *
 * The three sleeps overlap on one thread: the whole run takes about 1 s, not 3.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <corio.h>

struct download {
  corio_task task; /* first: a task IS a future */
  const char *name;
  double secs;
};

static corio_step download_step(corio_task *t)
{
  struct download *d = corio_container_of(t, struct download, task);

  CORIO_BEGIN(t);
  printf("  start %-10s (%.1f s)\n", d->name, d->secs);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, d->secs)); /* stands for the network transfer */
  printf("  done  %-10s\n", d->name);
  CORIO_RETURN(t, 100 * (int64_t)strlen(d->name));
  CORIO_FINALLY(t);
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  struct download *d[3];
  double t0;
  size_t i;
};

static corio_step main_step(corio_task *t)
{
  static const char *names[3] = {"index.html", "logo.png", "data.json"};
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[3];
  corio_future *g;

  CORIO_BEGIN(t);
  m->t0 = corio_loop_time(t->loop);
  printf("downloading 3 files concurrently with corio_gather...\n");
  for (m->i = 0; m->i < 3; m->i++) {
    m->d[m->i] = corio_task_new(t->loop, download_step, struct download, task);
    if (!m->d[m->i]) CORIO_THROW(t, -ENOMEM);
    m->d[m->i]->name = names[m->i];
    m->d[m->i]->secs = 1.0;
  }
  for (m->i = 0; m->i < 3; m->i++) futs[m->i] = corio_task_spawn(&m->d[m->i]->task);
  g = corio_gather(futs, 3, 0); /* consumes the three references */
  CORIO_AWAIT_TRY(t, g);
  for (m->i = 0; m->i < 3; m->i++)
    printf("result %s = %lld bytes\n", names[m->i],
           (long long)corio_future_int(corio_gather_child(corio_awaited(t), m->i)));
  printf("total: %.2f s for 3 x 1 s of downloads\n", corio_loop_time(t->loop) - m->t0);
  CORIO_FINALLY(t);
  for (m->i = 0; m->i < 3; m->i++)
    if (m->d[m->i]) corio_future_unref(&m->d[m->i]->task.fut);
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
  if (!m || corio_task_start(&m->task) < 0) return 1;
  rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "error: %s\n", corio_strerror(rc));
  if (corio_loop_close(loop) != 0) {
    fprintf(stderr, "loop not idle at close\n");
    return 1;
  }
  return rc < 0;
}
