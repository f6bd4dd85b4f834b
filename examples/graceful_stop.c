/*
 * graceful_stop — a server-like program that stops cleanly on SIGINT or SIGTERM.
 *
 * Python (asyncio):
 *
 *     async def ticker(stop):
 *         n = 0
 *         while not stop.is_set():
 *             try:
 *                 await asyncio.wait_for(stop.wait(), 0.1)   # wakes at once on stop
 *             except TimeoutError:
 *                 n += 1
 *                 print(f"tick {n}")
 *
 *     async def worker(i, stop):
 *         handled = 0
 *         try:
 *             while not stop.is_set():
 *                 await asyncio.sleep(0.03)       # one request; the one in flight completes
 *                 handled += 1
 *         finally:
 *             await asyncio.sleep(0.02)           # flush state: cleanup may await too
 *             print(f"worker {i}: handled {handled} requests, cleaned up")
 *
 *     async def main():
 *         stop = asyncio.Event()
 *         loop = asyncio.get_running_loop()
 *         for sig in (signal.SIGTERM, signal.SIGINT):
 *             loop.add_signal_handler(sig, stop.set)
 *         tasks = [asyncio.create_task(ticker(stop))]
 *         tasks += [asyncio.create_task(worker(i, stop)) for i in range(3)]
 *         print("serving")
 *         await stop.wait()
 *         await asyncio.gather(*tasks)
 *
 *     asyncio.run(main())
 *     print("stopped cleanly")
 *
 * Nothing is killed: the signal only sets the event; each task notices it, leaves its loop and
 * runs its FINALLY; main() then finds the loop idle and exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <corio.h>

#define NWORKERS 3

static int cleaned_up;

/* async def ticker(stop) */
struct ticker {
  corio_task task;
  corio_event *stop;
  int ticks;
};

static corio_step ticker_step(corio_task *t)
{
  struct ticker *k = corio_container_of(t, struct ticker, task);
  int err;

  CORIO_BEGIN(t);
  while (!corio_event_is_set(k->stop)) {
    /* Wait for the stop event, but at most 0.1 s: a timeout is the next tick. */
    CORIO_AWAIT(t, corio_wait_for(corio_event_wait(k->stop), 0.1));
    err = corio_future_error(corio_awaited(t));
    if (err == -ETIMEDOUT)
      printf("tick %d\n", ++k->ticks);
    else if (err < 0)
      CORIO_THROW(t, err);
  }
  CORIO_FINALLY(t);
  printf("ticker: stopped after %d ticks\n", k->ticks);
  CORIO_END(t);
}

/* async def worker(i, stop) */
struct worker {
  corio_task task;
  corio_event *stop;
  int id, handled;
};

static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);

  CORIO_BEGIN(t);
  while (!corio_event_is_set(w->stop)) {
    CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.03)); /* handle one request */
    w->handled++;
  }
  CORIO_FINALLY(t);
  /* Reached on the way out, whatever the reason. Awaits here are shielded from cancellation,
   * so the flush completes even if the task is being cancelled. */
  CORIO_AWAIT(t, corio_sleep(t->loop, 0.02)); /* flush state */
  cleaned_up++;
  printf("worker %d: handled %d requests, cleaned up\n", w->id, w->handled);
  CORIO_END(t);
}

/* loop.add_signal_handler(sig, stop.set): runs on the loop, like any callback. */
static void on_signal(corio_loop *loop, int signo, void *arg)
{
  corio_event *stop = arg;
  (void)loop;
  printf("received %s: setting the stop event\n", signo == SIGINT ? "SIGINT" : "SIGTERM");
  corio_event_set(stop);
}

/* async def main() */
struct main_task {
  corio_task task;
  corio_event *stop;
  int handlers;                  /* signal handlers installed (SIGTERM, then SIGINT) */
  corio_task *all[1 + NWORKERS]; /* the ticker, then the workers */
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[1 + NWORKERS];
  struct ticker *k;
  struct worker *w;
  int i;

  CORIO_BEGIN(t);
  m->stop = corio_event_new(t->loop);
  if (!m->stop) CORIO_THROW(t, -ENOMEM);
  CORIO_TRY(t, corio_add_signal_handler(t->loop, SIGTERM, on_signal, m->stop));
  m->handlers++;
  CORIO_TRY(t, corio_add_signal_handler(t->loop, SIGINT, on_signal, m->stop));
  m->handlers++;

  k = corio_task_new(t->loop, ticker_step, struct ticker, task);
  if (!k) CORIO_THROW(t, -ENOMEM);
  k->stop = m->stop;
  m->all[0] = &k->task;
  for (i = 0; i < NWORKERS; i++) {
    w = corio_task_new(t->loop, worker_step, struct worker, task);
    if (!w) CORIO_THROW(t, -ENOMEM);
    w->stop = m->stop;
    w->id = i;
    m->all[1 + i] = &w->task;
  }
  for (i = 0; i < 1 + NWORKERS; i++) CORIO_TRY(t, corio_task_start(m->all[i]));
  printf("serving (pid %d): send SIGTERM or SIGINT to stop\n", (int)getpid());

  CORIO_AWAIT_TRY(t, corio_event_wait(m->stop));
  printf("stopping: waiting for the ticker and %d workers to finish\n", NWORKERS);
  for (i = 0; i < 1 + NWORKERS; i++) futs[i] = corio_future_ref(&m->all[i]->fut);
  CORIO_AWAIT_TRY(t, corio_gather(futs, 1 + NWORKERS, 0));
  CORIO_FINALLY(t);
  /* After an error, cancel and wait for the tasks still running (they use the event). On the
   * normal path they are done and this only drops our references. */
  for (m->i = 0; m->i < 1 + NWORKERS; m->i++) {
    if (!m->all[m->i]) continue;
    corio_task_cancel(m->all[m->i]);
    CORIO_AWAIT(t, corio_future_ref(&m->all[m->i]->fut));
    corio_future_unref(&m->all[m->i]->fut);
  }
  if (m->handlers > 1) corio_remove_signal_handler(t->loop, SIGINT);
  if (m->handlers > 0) corio_remove_signal_handler(t->loop, SIGTERM);
  if (m->stop) CORIO_TRY(t, corio_event_free(m->stop));
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc, closed;

  /* Line-buffered even into a file or pipe, so that a supervisor sees "serving" at once. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "graceful_stop: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "graceful_stop: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) {
    fprintf(stderr, "graceful_stop: corio_loop_close: %s\n", corio_strerror(closed));
    return 1;
  }
  if (rc < 0) return 1;
  printf("stopped cleanly (%d/%d workers cleaned up)\n", cleaned_up, NWORKERS);
  return 0;
}
