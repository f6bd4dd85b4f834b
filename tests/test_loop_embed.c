/* Embedding: corio driven from a plain epoll loop through corio_loop_fd + corio_loop_run_once. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <corio.h>

struct sleeper {
  corio_task task;
  int i;
};
static corio_step sleeper_step(corio_task *t)
{
  struct sleeper *s = corio_container_of(t, struct sleeper, task);
  CORIO_BEGIN(t);
  for (s->i = 0; s->i < 5; s->i++) CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.01));
  CORIO_RETURN(t, s->i);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

static corio_loop *loop;
static int hits;
static void hit(void *arg)
{
  (void)arg;
  hits++;
}
static void *poster(void *arg)
{
  usleep(30000);
  corio_call_soon_threadsafe(loop, hit, NULL);
  return NULL;
}

static void driven_from_epoll(int no_defer)
{
  corio_loop_opts o = {0};
  struct epoll_event ev = {0}, out[4];
  struct sleeper *s;
  pthread_t th;
  int ep, n, iterations = 0;
  double tmo;
  o.no_defer_taskrun = no_defer;
  hits = 0;
  cr_assert_eq(corio_loop_new(&loop, &o), 0);
  ep = epoll_create1(EPOLL_CLOEXEC);
  ev.events = EPOLLIN;
  cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, corio_loop_fd(loop), &ev), 0);
  s = corio_task_new(loop, sleeper_step, struct sleeper, task);
  corio_task_start(&s->task);
  pthread_create(&th, NULL, poster, NULL);
  /* The host loop: sleep in epoll_wait for corio's fd or its next timer, then run once. */
  while (!corio_future_done(&s->task.fut) || hits == 0) {
    tmo = corio_loop_timeout(loop);
    n = epoll_wait(ep, out, 4, tmo < 0 ? 1000 : (int)(tmo * 1000) + 1);
    cr_assert_geq(n, 0);
    cr_assert_geq(corio_loop_run_once(loop, 0), 0);
    cr_assert_lt(++iterations, 1000, "the host loop spun");
  }
  pthread_join(th, NULL);
  cr_assert_eq(corio_future_int(&s->task.fut), 5);
  cr_assert_eq(hits, 1);
  corio_future_unref(&s->task.fut);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  close(ep);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Both ring setups: the ring fd must become readable when completions are pending. */
Test(embed, driven_from_epoll_defer_taskrun, .timeout = 10)
{
  driven_from_epoll(0);
}
Test(embed, driven_from_epoll_coop_taskrun, .timeout = 10)
{
  driven_from_epoll(1);
}

Test(embed, timeout_reports_ready_work, .timeout = 10)
{
  corio_handle h;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  cr_assert_eq(corio_loop_timeout(loop), 0); /* the wakeup read is queued, not yet submitted */
  cr_assert_geq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(corio_loop_timeout(loop), -1);
  corio_call_later(loop, 5.0, hit, NULL, &h);
  cr_assert_gt(corio_loop_timeout(loop), 4.0);
  corio_call_soon(loop, hit, NULL, NULL);
  cr_assert_eq(corio_loop_timeout(loop), 0);
  cr_assert_geq(corio_loop_run_once(loop, 0), 0);
  corio_handle_cancel(loop, h);
  cr_assert_eq(corio_loop_close(loop), 0);
}
