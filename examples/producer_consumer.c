/*
 * producer_consumer — asyncio.Queue with 12 producers and 10 consumers, task_done/join.
 *
 * Python:
 *     q = asyncio.Queue(maxsize=20)
 *     producers = [create_task(produce(q, i)) for i in range(12)]   # each puts 50 items
 *     consumers = [create_task(consume(q, i)) for i in range(10)]   # get, work, task_done
 *     await gather(*producers); await q.join()
 *     for c in consumers: c.cancel()
 */
#include <stdint.h>
#include <stdio.h>
#include <corio.h>

#define NPROD        12
#define NCONS        10
#define PER_PRODUCER 50

static long produced_sum, consumed_sum, consumed_count;
static int consumers_cancelled;

struct producer {
  corio_task task;
  corio_queue *q;
  int id, i;
};

static corio_step producer_step(corio_task *t)
{
  struct producer *p = corio_container_of(t, struct producer, task);
  intptr_t item;
  CORIO_BEGIN(t);
  for (p->i = 0; p->i < PER_PRODUCER; p->i++) {
    item = p->id * 1000 + p->i + 1;
    produced_sum += item;
    CORIO_AWAIT_TRY(t, corio_queue_put(p->q, (void *)item, 0)); /* waits while the queue is full */
  }
  CORIO_FINALLY(t);
  CORIO_END(t);
}

struct consumer {
  corio_task task;
  corio_queue *q;
  int id;
  long handled;
};

static corio_step consumer_step(corio_task *t)
{
  struct consumer *c = corio_container_of(t, struct consumer, task);
  CORIO_BEGIN(t);
  for (;;) {
    CORIO_AWAIT_TRY(t, corio_queue_get(c->q));
    consumed_sum += (intptr_t)corio_future_ptr(corio_awaited(t));
    consumed_count++;
    c->handled++;
    CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.001)); /* "work" */
    corio_queue_task_done(c->q);
  }
  CORIO_FINALLY(t);
  if (corio_task_error(t) == -ECANCELED) consumers_cancelled++;
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  corio_queue *q;
  struct producer *p[NPROD];
  struct consumer *c[NCONS];
  int i;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_future *futs[NPROD];
  int i;
  CORIO_BEGIN(t);
  m->q = corio_queue_new(t->loop, CORIO_QUEUE_FIFO, 20);
  if (!m->q) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < NCONS; i++) {
    m->c[i] = corio_task_new(t->loop, consumer_step, struct consumer, task);
    m->c[i]->q = m->q;
    m->c[i]->id = i;
    corio_task_start(&m->c[i]->task);
  }
  for (i = 0; i < NPROD; i++) {
    m->p[i] = corio_task_new(t->loop, producer_step, struct producer, task);
    m->p[i]->q = m->q;
    m->p[i]->id = i;
    futs[i] = corio_task_spawn(&m->p[i]->task);
  }
  CORIO_AWAIT_TRY(t, corio_gather(futs, NPROD, 0));
  printf("producers done: %d items\n", NPROD * PER_PRODUCER);
  CORIO_AWAIT_TRY(t, corio_queue_join(m->q));
  printf("queue joined: every item processed\n");
  for (m->i = 0; m->i < NCONS; m->i++) corio_task_cancel(&m->c[m->i]->task);
  for (m->i = 0; m->i < NCONS; m->i++) {
    CORIO_AWAIT(t, corio_future_ref(&m->c[m->i]->task.fut));
    printf("consumer %d handled %ld items\n", m->i, m->c[m->i]->handled);
  }
  CORIO_FINALLY(t);
  for (m->i = 0; m->i < NPROD; m->i++)
    if (m->p[m->i]) corio_future_unref(&m->p[m->i]->task.fut);
  for (m->i = 0; m->i < NCONS; m->i++)
    if (m->c[m->i]) corio_future_unref(&m->c[m->i]->task.fut);
  if (m->q) corio_queue_free(m->q);
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
  corio_task_start(&m->task);
  rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  corio_future_unref(&m->task.fut);
  printf("consumed %ld items, sum %ld (produced sum %ld): %s\n", consumed_count, consumed_sum,
         produced_sum, consumed_sum == produced_sum ? "ok" : "MISMATCH");
  printf("consumers cancelled: %d\n", consumers_cancelled);
  if (rc < 0) fprintf(stderr, "error: %s\n", corio_strerror(rc));
  return corio_loop_close(loop) != 0 || rc < 0 || consumed_sum != produced_sum;
}
