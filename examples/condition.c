/*
 * condition — asyncio.Condition with notify_all between producers and consumers.
 *
 * Python:
 *     cond = asyncio.Condition(); stock = []
 *     async def consumer(i):
 *         async with cond:
 *             await cond.wait_for(lambda: stock); item = stock.pop()
 *     async def producer():
 *         for batch in range(3):
 *             await asyncio.sleep(0.05)
 *             async with cond: stock.extend(...); cond.notify_all()
 */
#include <stdio.h>
#include <corio.h>

#define NCONS 6
#define BATCH 2
static int stock, taken, wakeups;

struct consumer {
  corio_task task;
  corio_condition *cond;
  int id, holding;
};

static corio_step consumer_step(corio_task *t)
{
  struct consumer *c = corio_container_of(t, struct consumer, task);
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_lock_acquire(corio_condition_lock(c->cond)));
  c->holding = 1;
  while (stock == 0) { /* wait_for(predicate) */
    CORIO_AWAIT_TRY(t, corio_condition_wait(c->cond));
    wakeups++;
  }
  stock--;
  taken++;
  printf("consumer %d took an item (%d left)\n", c->id, stock);
  CORIO_FINALLY(t);
  if (c->holding) corio_lock_release(corio_condition_lock(c->cond));
  CORIO_END(t);
}

struct producer {
  corio_task task;
  corio_condition *cond;
  int batch, holding;
};

static corio_step producer_step(corio_task *t)
{
  struct producer *p = corio_container_of(t, struct producer, task);
  CORIO_BEGIN(t);
  for (p->batch = 0; p->batch < NCONS / BATCH; p->batch++) {
    CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.05));
    CORIO_AWAIT_TRY(t, corio_lock_acquire(corio_condition_lock(p->cond)));
    p->holding = 1;
    stock += BATCH;
    printf("producer: batch %d, %d items in stock, notify_all\n", p->batch + 1, stock);
    corio_condition_notify_all(p->cond);
    corio_lock_release(corio_condition_lock(p->cond));
    p->holding = 0;
  }
  CORIO_FINALLY(t);
  if (p->holding) corio_lock_release(corio_condition_lock(p->cond));
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  corio_condition *cond;
  corio_task *all[NCONS + 1];
  corio_future *futs[NCONS + 1];
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  struct consumer *c;
  struct producer *p;
  int i;
  CORIO_BEGIN(t);
  m->cond = corio_condition_new(t->loop, NULL);
  for (i = 0; i < NCONS; i++) {
    c = corio_task_new(t->loop, consumer_step, struct consumer, task);
    c->cond = m->cond;
    c->id = i;
    m->all[i] = &c->task;
  }
  p = corio_task_new(t->loop, producer_step, struct producer, task);
  p->cond = m->cond;
  m->all[NCONS] = &p->task;
  for (i = 0; i <= NCONS; i++) m->futs[i] = corio_task_spawn(m->all[i]);
  CORIO_AWAIT_TRY(t, corio_gather(m->futs, NCONS + 1, 0));
  printf("taken %d items, %d left, %d wakeups\n", taken, stock, wakeups);
  CORIO_FINALLY(t);
  for (i = 0; i <= NCONS; i++)
    if (m->all[i]) corio_future_unref(&m->all[i]->fut);
  if (m->cond) corio_condition_free(m->cond);
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
