/*
 * graceful_stop — a server-like program that stops cleanly on SIGINT/SIGTERM through an Event.
 *
 * Python:
 *     stop = asyncio.Event()
 *     loop.add_signal_handler(signal.SIGTERM, stop.set)
 *     workers = [create_task(worker(i, stop)) for i in range(3)]
 *     await stop.wait(); print("stopping"); await gather(*workers)
 *
 * Each worker ticks until the event is set, then finishes its cleanup in FINALLY.
 */
#include <signal.h>
#include <stdio.h>
#include <corio.h>

#define NWORKERS 3
static int cleaned;

struct worker {
  corio_task task;
  corio_event *stop;
  int id, ticks;
};

static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);
  CORIO_BEGIN(t);
  while (!corio_event_is_set(w->stop)) {
    /* wait for either the next tick or the stop event */
    CORIO_AWAIT(t, corio_wait_for(corio_event_wait(w->stop), 0.05));
    if (corio_future_error(corio_awaited(t)) == -ETIMEDOUT) w->ticks++;
  }
  CORIO_FINALLY(t);
  printf("worker %d: stopping after %s%d ticks, cleaning up\n", w->id, w->ticks ? "" : "only ",
         w->ticks);
  CORIO_AWAIT(t, corio_sleep(t->loop, 0.01)); /* e.g. flush state */
  cleaned++;
  CORIO_END(t);
}

static void on_signal(corio_loop *loop, int signo, void *arg)
{
  (void)loop;
  printf("got %s, stopping\n", signo == SIGINT ? "SIGINT" : "SIGTERM");
  fflush(stdout);
  corio_event_set(arg);
}

struct main_task {
  corio_task task;
  corio_event *stop;
  struct worker *w[NWORKERS];
  corio_future *futs[NWORKERS];
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  int i;
  CORIO_BEGIN(t);
  m->stop = corio_event_new(t->loop);
  CORIO_TRY(t, corio_add_signal_handler(t->loop, SIGTERM, on_signal, m->stop));
  CORIO_TRY(t, corio_add_signal_handler(t->loop, SIGINT, on_signal, m->stop));
  for (i = 0; i < NWORKERS; i++) {
    m->w[i] = corio_task_new(t->loop, worker_step, struct worker, task);
    m->w[i]->stop = m->stop;
    m->w[i]->id = i;
    m->futs[i] = corio_task_spawn(&m->w[i]->task);
  }
  printf("serving; send SIGTERM or SIGINT to stop\n");
  fflush(stdout);
  CORIO_AWAIT_TRY(t, corio_gather(m->futs, NWORKERS, 0));
  CORIO_FINALLY(t);
  corio_remove_signal_handler(t->loop, SIGTERM);
  corio_remove_signal_handler(t->loop, SIGINT);
  for (i = 0; i < NWORKERS; i++)
    if (m->w[i]) corio_future_unref(&m->w[i]->task.fut);
  if (m->stop) corio_event_free(m->stop);
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
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  if (rc < 0) {
    fprintf(stderr, "error: %s\n", corio_strerror(rc));
    return 1;
  }
  if (corio_loop_close(loop) != 0) return fprintf(stderr, "loop not idle\n"), 1;
  printf("stopped cleanly (%d/%d workers cleaned up)\n", cleaned, NWORKERS);
  return 0;
}
