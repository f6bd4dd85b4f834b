/*
 * condition — asyncio.Condition: producers notify_all, consumers wait for a predicate.
 *
 * Python (asyncio):
 *
 *     cond = asyncio.Condition()
 *     stock = 0
 *
 *     async def consumer(i):
 *         async with cond:
 *             await cond.wait_for(lambda: stock > 0)   # re-checked after every wakeup
 *             stock -= 1
 *
 *     async def producer(name, period, n):
 *         for _ in range(n):
 *             await asyncio.sleep(period)
 *             async with cond:
 *                 stock += 1
 *                 cond.notify_all()             # every consumer waiting now
 *
 *     async def main():
 *         await asyncio.gather(*(consumer(i) for i in range(6)),
 *                              producer("A", 0.03, 3), producer("B", 0.05, 3))
 *
 * notify_all wakes every waiter, but only one finds an item: the others see the predicate
 * still false and wait again. That loop is what cond.wait_for() does. The lock is FIFO-fair:
 * the consumers woken by one notify_all queue for it before the next producer does, so each
 * item is settled before the next one arrives.
 */
#include <errno.h>
#include <stdio.h>
#include <corio.h>

#define NCONS        6
#define NPROD        2
#define PER_PRODUCER 3

/* Shared state, guarded by the condition's lock (the "stock" of the Python version). */
static int stock, taken, waiters;

/* async def consumer(i) */
struct consumer {
  corio_task task;
  corio_condition *cond;
  int id, wakeups;
  int holding; /* the lock is ours: FINALLY must release it */
};

static corio_step consumer_step(corio_task *t)
{
  struct consumer *c = corio_container_of(t, struct consumer, task);

  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_lock_acquire(corio_condition_lock(c->cond))); /* async with cond: */
  c->holding = 1;
  while (stock == 0) { /* cond.wait_for(lambda: stock > 0) */
    waiters++;
    /* Releases the lock while waiting and holds it again when done, even on error or
     * cancellation: `holding` stays true. */
    CORIO_AWAIT_TRY(t, corio_condition_wait(c->cond));
    waiters--;
    c->wakeups++;
  }
  stock--;
  taken++;
  printf("consumer %d took an item after %d wakeup%s, stock %d\n", c->id, c->wakeups,
         c->wakeups == 1 ? "" : "s", stock);
  CORIO_FINALLY(t);
  if (c->holding) corio_lock_release(corio_condition_lock(c->cond));
  CORIO_END(t);
}

/* async def producer(name, period, n) */
struct producer {
  corio_task task;
  corio_condition *cond;
  const char *name;
  double period;
  int i, holding;
};

static corio_step producer_step(corio_task *t)
{
  struct producer *p = corio_container_of(t, struct producer, task);
  int woken;

  CORIO_BEGIN(t);
  for (p->i = 0; p->i < PER_PRODUCER; p->i++) {
    CORIO_AWAIT_TRY(t, corio_sleep(t->loop, p->period));
    CORIO_AWAIT_TRY(t, corio_lock_acquire(corio_condition_lock(p->cond)));
    p->holding = 1;
    stock++;
    woken = corio_condition_notify_all(p->cond); /* how many waiters it woke, or an error */
    if (woken < 0) CORIO_THROW(t, woken);
    printf("producer %s: stock %d, notify_all woke %d waiter%s\n", p->name, stock, woken,
           woken == 1 ? "" : "s");
    p->holding = 0;
    CORIO_TRY(t, corio_lock_release(corio_condition_lock(p->cond)));
  }
  CORIO_FINALLY(t);
  if (p->holding) corio_lock_release(corio_condition_lock(p->cond));
  CORIO_END(t);
}

/* async def main() */
struct main_task {
  corio_task task;
  corio_condition *cond;
  corio_task *all[NCONS + NPROD]; /* consumers, then producers */
  int i;
};

static corio_step main_step(corio_task *t)
{
  static const char *names[NPROD] = {"A", "B"};
  static const double periods[NPROD] = {0.03, 0.05};
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[NCONS + NPROD];
  struct consumer *c;
  struct producer *p;
  int i;

  CORIO_BEGIN(t);
  m->cond = corio_condition_new(t->loop, NULL); /* NULL: the condition makes its own lock */
  if (!m->cond) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < NCONS; i++) {
    c = corio_task_new(t->loop, consumer_step, struct consumer, task);
    if (!c) CORIO_THROW(t, -ENOMEM);
    c->cond = m->cond;
    c->id = i;
    m->all[i] = &c->task;
  }
  for (i = 0; i < NPROD; i++) {
    p = corio_task_new(t->loop, producer_step, struct producer, task);
    if (!p) CORIO_THROW(t, -ENOMEM);
    p->cond = m->cond;
    p->name = names[i];
    p->period = periods[i];
    m->all[NCONS + i] = &p->task;
  }
  for (i = 0; i < NCONS + NPROD; i++) futs[i] = corio_task_spawn(m->all[i]);
  CORIO_AWAIT_TRY(t, corio_gather(futs, NCONS + NPROD, 0));
  printf("taken %d items, %d left in stock, %d consumers still waiting\n", taken, stock, waiters);
  CORIO_FINALLY(t);
  /* After an error, cancel and wait for the tasks still running before freeing the condition.
   * On the normal path they are done and this only drops our references. */
  for (m->i = 0; m->i < NCONS + NPROD; m->i++) {
    if (!m->all[m->i]) continue;
    corio_task_cancel(m->all[m->i]);
    CORIO_AWAIT(t, corio_future_ref(&m->all[m->i]->fut));
    corio_future_unref(&m->all[m->i]->fut);
  }
  if (m->cond) CORIO_TRY(t, corio_condition_free(m->cond));
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "condition: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "condition: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "condition: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0;
}
