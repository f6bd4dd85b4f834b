/*
 * hello_await — a coroutine awaiting another, run with run_until_complete.
 *
 * Python:
 *     async def compute(x, y):
 *         print(f"compute {x} + {y} ..."); await asyncio.sleep(0.1); return x + y
 *     async def print_sum(x, y):
 *         result = await compute(x, y); print(f"{x} + {y} = {result}")
 *     asyncio.run(print_sum(1, 2))
 */
#include <stdio.h>
#include <corio.h>

struct compute {
  corio_task task;
  int x, y;
};

static corio_step compute_step(corio_task *t)
{
  struct compute *c = corio_container_of(t, struct compute, task);
  CORIO_BEGIN(t);
  printf("compute %d + %d ...\n", c->x, c->y);
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.1));
  CORIO_RETURN(t, c->x + c->y);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

struct print_sum {
  corio_task task;
  int x, y;
  struct compute *child;
};

static corio_step print_sum_step(corio_task *t)
{
  struct print_sum *p = corio_container_of(t, struct print_sum, task);
  CORIO_BEGIN(t);
  p->child = corio_task_new(t->loop, compute_step, struct compute, task);
  if (!p->child) CORIO_THROW(t, -ENOMEM);
  p->child->x = p->x;
  p->child->y = p->y;
  CORIO_AWAIT_TRY(t, corio_task_spawn(&p->child->task)); /* await the child coroutine */
  printf("%d + %d = %lld\n", p->x, p->y, (long long)corio_future_int(corio_awaited(t)));
  CORIO_FINALLY(t);
  if (p->child) corio_future_unref(&p->child->task.fut);
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct print_sum *p;
  int rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "corio_loop_new: %s\n", corio_strerror(rc));
    return 1;
  }
  p = corio_task_new(loop, print_sum_step, struct print_sum, task);
  p->x = 1;
  p->y = 2;
  corio_task_start(&p->task);
  rc = corio_loop_run_until_complete(loop, &p->task.fut);
  if (rc == 0) rc = corio_future_error(&p->task.fut);
  corio_future_unref(&p->task.fut);
  if (rc < 0) fprintf(stderr, "error: %s\n", corio_strerror(rc));
  return corio_loop_close(loop) != 0 || rc < 0;
}
