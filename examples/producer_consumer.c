/*
 * producer_consumer — asyncio.Queue: 12 producers, 10 consumers, task_done/join, then cancel.
 *
 * Python (asyncio):
 *
 *     async def producer(q, pid):
 *         for i in range(50):
 *             await q.put(pid * 1000 + i + 1)      # waits while the queue is full
 *
 *     async def consumer(q):
 *         while True:
 *             item = await q.get()
 *             await asyncio.sleep(0.001)           # "work"
 *             q.task_done()
 *
 *     async def main():
 *         q = asyncio.Queue(maxsize=20)
 *         consumers = [asyncio.create_task(consumer(q)) for _ in range(10)]
 *         producers = [asyncio.create_task(producer(q, p)) for p in range(12)]
 *         await asyncio.gather(*producers)
 *         await q.join()                           # every item got its task_done()
 *         for c in consumers:
 *             c.cancel()                           # they loop forever: stop them
 *         await asyncio.gather(*consumers, return_exceptions=True)
 *
 * The sum of the items taken must equal the sum of the items put (checked at the end).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <corio.h>

#define NPROD        12
#define NCONS        10
#define PER_PRODUCER 50
#define MAXSIZE      20

/* Totals, shared by every task: the loop runs one task at a time, so no locking is needed. */
static long long produced_sum, consumed_sum;
static long consumed_count;
static size_t max_qsize;
static int consumers_cancelled;

/* async def producer(q, pid) */
struct producer {
  corio_task task;
  corio_queue *q;
  int id, i;
  intptr_t item; /* used after the await: a frame field */
};

static corio_step producer_step(corio_task *t)
{
  struct producer *p = corio_container_of(t, struct producer, task);

  CORIO_BEGIN(t);
  for (p->i = 0; p->i < PER_PRODUCER; p->i++) {
    p->item = p->id * 1000 + p->i + 1;
    CORIO_AWAIT_TRY(t, corio_queue_put(p->q, (void *)p->item, 0));
    produced_sum += p->item; /* counted once it is in the queue */
    if (corio_queue_size(p->q) > max_qsize) max_qsize = corio_queue_size(p->q);
  }
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* async def consumer(q) */
struct consumer {
  corio_task task;
  corio_queue *q;
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
  /* The cancellation arrives as -ECANCELED at the await the consumer is suspended in (a get
   * on the empty queue) and unwinds to here. */
  if (corio_task_error(t) == -ECANCELED) consumers_cancelled++;
  CORIO_END(t);
}

/* async def main() */
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
  corio_future *futs[NPROD > NCONS ? NPROD : NCONS];
  int i;

  CORIO_BEGIN(t);
  m->q = corio_queue_new(t->loop, CORIO_QUEUE_FIFO, MAXSIZE);
  if (!m->q) CORIO_THROW(t, -ENOMEM);
  for (i = 0; i < NCONS; i++) {
    m->c[i] = corio_task_new(t->loop, consumer_step, struct consumer, task);
    if (!m->c[i]) CORIO_THROW(t, -ENOMEM);
    m->c[i]->q = m->q;
    CORIO_TRY(t, corio_task_start(&m->c[i]->task));
  }
  for (i = 0; i < NPROD; i++) {
    m->p[i] = corio_task_new(t->loop, producer_step, struct producer, task);
    if (!m->p[i]) CORIO_THROW(t, -ENOMEM);
    m->p[i]->q = m->q;
    m->p[i]->id = i;
  }
  for (i = 0; i < NPROD; i++) futs[i] = corio_task_spawn(&m->p[i]->task);
  CORIO_AWAIT_TRY(t, corio_gather(futs, NPROD, 0));
  printf("producers done: %d items put by %d producers\n", NPROD * PER_PRODUCER, NPROD);

  CORIO_AWAIT_TRY(t, corio_queue_join(m->q));
  printf("queue joined: every item got its task_done (%zu left in the queue)\n",
         corio_queue_size(m->q));

  for (i = 0; i < NCONS; i++) corio_task_cancel(&m->c[i]->task);
  for (i = 0; i < NCONS; i++) futs[i] = corio_future_ref(&m->c[i]->task.fut);
  CORIO_AWAIT_TRY(t, corio_gather(futs, NCONS, CORIO_RETURN_EXCEPTIONS));
  for (m->i = 0; m->i < NCONS; m->i++)
    printf("consumer %d handled %ld items\n", m->i, m->c[m->i]->handled);
  CORIO_FINALLY(t);
  /* After an error above, some tasks may still be running: cancel them and wait for them, so
   * that none touches the queue after it is freed and the loop is idle at close. On the normal
   * path they are all done, and this only drops our references. */
  for (m->i = 0; m->i < NPROD; m->i++) {
    if (!m->p[m->i]) continue;
    corio_task_cancel(&m->p[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->p[m->i]->task.fut));
    corio_future_unref(&m->p[m->i]->task.fut);
  }
  for (m->i = 0; m->i < NCONS; m->i++) {
    if (!m->c[m->i]) continue;
    corio_task_cancel(&m->c[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->c[m->i]->task.fut));
    corio_future_unref(&m->c[m->i]->task.fut);
  }
  /* A free that fails (-EBUSY: still in use) fails the task: in FINALLY, CORIO_TRY records
   * the error and the cleanup goes on. */
  if (m->q) CORIO_TRY(t, corio_queue_free(m->q));
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  long long expected;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "producer_consumer: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? corio_task_start(&m->task) : -ENOMEM;
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);

  /* sum over p < 12, i < 50 of (1000 p + i + 1) */
  expected = 1000LL * PER_PRODUCER * (NPROD * (NPROD - 1) / 2) +
             (long long)NPROD * PER_PRODUCER * (PER_PRODUCER + 1) / 2;
  printf("consumed %ld items, sum %lld; produced sum %lld; expected %lld: %s\n", consumed_count,
         consumed_sum, produced_sum, expected,
         consumed_sum == produced_sum && consumed_sum == expected ? "ok" : "MISMATCH");
  printf("largest queue size seen: %zu (maxsize %d)\n", max_qsize, MAXSIZE);
  printf("consumers cancelled: %d\n", consumers_cancelled);

  if (rc < 0) fprintf(stderr, "producer_consumer: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0)
    fprintf(stderr, "producer_consumer: corio_loop_close: %s\n", corio_strerror(closed));
  if (rc == 0 && (consumed_sum != expected || produced_sum != expected)) {
    fprintf(stderr, "producer_consumer: items were lost or duplicated\n");
    rc = -EPROTO;
  }
  return rc < 0 || closed != 0;
}
