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
    /* EINTR: with COOP_TASKRUN, a completion's task work interrupts the host's sleep */
    cr_assert(n >= 0 || errno == EINTR, "epoll_wait: %d", errno);
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

/* A job for the loop's default pool submitted by the host's own code (outside any corio call)
 * waits for the loop's next pass to be handed to the pool (executor.c): corio_loop_timeout must
 * say 0, or a host following the contract would sleep on corio's fd while nothing can wake it. */
static void square_job(corio_job *job)
{
  int64_t x = (int64_t)(intptr_t)corio_job_arg(job);
  corio_job_return(job, x * x);
}

Test(embed, default_pool_job_submitted_by_the_host, .timeout = 10)
{
  struct epoll_event ev = {0}, out[4];
  corio_future *f;
  int ep, n, iterations = 0;
  double tmo;
  corio_loop_opts o = {.no_defer_taskrun = 1}; /* as loop.h asks of embedders */
  cr_assert_eq(corio_loop_new(&loop, &o), 0);
  ep = epoll_create1(EPOLL_CLOEXEC);
  ev.events = EPOLLIN;
  cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, corio_loop_fd(loop), &ev), 0);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_timeout(loop), -1, "idle");
  f = corio_run_in_executor(loop, NULL, square_job, (void *)6);
  cr_assert_not_null(f);
  cr_assert_eq(corio_loop_timeout(loop), 0, "the job waits for the loop's pass");
  while (!corio_future_done(f)) {
    tmo = corio_loop_timeout(loop);
    /* the completion, posted from a worker, must wake the host: an epoll_wait that times out
     * (-1 from corio_loop_timeout means "only I/O": wait for the fd) fails the test */
    n = epoll_wait(ep, out, 4, tmo < 0 ? 5000 : (int)(tmo * 1000) + 1);
    cr_assert(tmo >= 0 || n != 0, "the completion did not make corio's fd readable");
    /* EINTR: with COOP_TASKRUN, a completion's task work interrupts the host's sleep */
    cr_assert(n >= 0 || errno == EINTR, "epoll_wait: %d", errno);
    cr_assert_geq(corio_loop_run_once(loop, 0), 0);
    cr_assert_lt(++iterations, 1000, "the host loop spun");
  }
  cr_assert_eq(corio_future_int(f), 36);
  corio_future_unref(f);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  close(ep);
  cr_assert_eq(corio_loop_close(loop), 0);
}
