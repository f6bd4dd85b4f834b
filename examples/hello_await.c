/*
 * hello_await — a coroutine awaiting another coroutine, run to completion from main().
 *
 * Python (asyncio):
 *
 *     async def compute(x, y):
 *         print(f"compute {x} + {y} ...")
 *         await asyncio.sleep(0.1)
 *         return x + y
 *
 *     async def print_sum(x, y):
 *         result = await compute(x, y)
 *         print(f"{x} + {y} = {result}")
 *         return result
 *
 *     print("print_sum returned", asyncio.run(print_sum(1, 2)))
 *
 * A corio coroutine is a task: a frame struct that embeds corio_task (first), and a step
 * function that resumes where it last awaited. Everything that must survive an await lives in
 * the frame. Awaiting a child task is Python's `await asyncio.create_task(compute(x, y))`.
 */
#include <errno.h>
#include <stdio.h>
#include <corio.h>

/* async def compute(x, y) */
struct compute {
  corio_task task; /* first: a task IS a future; its value is what the task returns */
  int x, y;        /* inputs, set before the task starts */
};

static corio_step compute_step(corio_task *t)
{
  struct compute *c = corio_container_of(t, struct compute, task);

  CORIO_BEGIN(t);
  printf("compute %d + %d ...\n", c->x, c->y);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.1)); /* suspends; the loop is free meanwhile */
  CORIO_RETURN(t, c->x + c->y);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* async def print_sum(x, y) */
struct print_sum {
  corio_task task;
  int x, y;
  double t0;
  struct compute *child; /* used after an await, so a frame field (not a local) */
};

static corio_step print_sum_step(corio_task *t)
{
  struct print_sum *p = corio_container_of(t, struct print_sum, task);
  int64_t result;

  CORIO_BEGIN(t);
  p->t0 = corio_loop_time(t->loop);
  p->child = corio_task_new(t->loop, compute_step, struct compute, task);
  if (!p->child) CORIO_THROW(t, -ENOMEM);
  p->child->x = p->x;
  p->child->y = p->y;
  /* spawn starts the child and returns a new reference to its future; the await consumes it
   * (a NULL from a failed spawn becomes an error that unwinds to FINALLY). */
  CORIO_AWAIT_TRY(t, corio_task_spawn(&p->child->task));
  result = corio_future_int(corio_awaited(t));
  printf("%d + %d = %lld (after %.2f s)\n", p->x, p->y, (long long)result,
         corio_loop_time(t->loop) - p->t0);
  CORIO_RETURN(t, result);
  CORIO_FINALLY(t);
  /* Runs on success, error and cancellation alike: drop the reference corio_task_new gave us. */
  if (p->child) corio_future_unref(&p->child->task.fut);
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct print_sum *p;
  int rc, closed;

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "hello_await: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  p = corio_task_new(loop, print_sum_step, struct print_sum, task);
  rc = p ? 0 : -ENOMEM;
  if (rc == 0) {
    p->x = 1;
    p->y = 2;
    rc = corio_task_start(&p->task);
  }
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &p->task.fut); /* asyncio.run() */
  if (rc == 0) rc = corio_future_error(&p->task.fut);
  if (rc == 0) printf("print_sum returned %lld\n", (long long)corio_future_int(&p->task.fut));
  if (p) corio_future_unref(&p->task.fut);
  if (rc < 0) fprintf(stderr, "hello_await: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop); /* 0 only if nothing is left alive in the loop */
  if (closed != 0) fprintf(stderr, "hello_await: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0;
}
