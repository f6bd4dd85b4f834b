/* corio side of the loop benchmarks (bench/run.sh runs every scenario; see bench/README.md).
 * Prints: RESULT name=<scenario> impl=corio value=<number> unit=<unit> */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static long n, N;

static void result(const char *name, double value, const char *unit)
{
  printf("RESULT name=%s impl=corio value=%.6g unit=%s\n", name, value, unit);
}

/* call_soon chain: each callback schedules the next */
static void chain(void *a)
{
  (void)a;
  if (++n < N)
    corio_call_soon(loop, chain, NULL, NULL);
  else
    corio_loop_stop(loop);
}

/* resume: a task awaiting an already-done future N times */
struct resumer {
  corio_task task;
  long i;
  corio_future *f;
};
static corio_step resumer_step(corio_task *t)
{
  struct resumer *r = corio_container_of(t, struct resumer, task);
  CORIO_BEGIN(t);
  for (r->i = 0; r->i < N; r->i++) CORIO_AWAIT(t, corio_future_ref(r->f));
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* ping-pong: two tasks each awaiting sleep(0) N times, interleaving */
struct pinger {
  corio_task task;
  long i;
};
static corio_step pinger_step(corio_task *t)
{
  struct pinger *p = corio_container_of(t, struct pinger, task);
  CORIO_BEGIN(t);
  for (p->i = 0; p->i < N; p->i++) CORIO_AWAIT(t, corio_sleep(t->loop, 0));
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* timers */
struct tmr {
  double when;
};
static long fired, early;
static void timer_cb(void *a)
{
  struct tmr *x = a;
  if (corio_loop_time(loop) < x->when) early++;
  fired++;
}

/* threadsafe */
static void count_cb(void *a)
{
  (void)a;
  if (++n == N) corio_loop_stop(loop);
}
static void *poster(void *a)
{
  long i;
  (void)a;
  for (i = 0; i < N; i++) corio_call_soon_threadsafe(loop, count_cb, NULL);
  return NULL;
}
static sem_t pong;
static void ping_cb(void *a)
{
  (void)a;
  sem_post(&pong);
}
static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static volatile int rtt_done;
static void *rtt_thread(void *a)
{
  double *lat = a, t0;
  long i;
  for (i = 0; i < N; i++) {
    t0 = corio_loop_time(loop);
    corio_call_soon_threadsafe(loop, ping_cb, NULL);
    sem_wait(&pong);
    lat[i] = (corio_loop_time(loop) - t0) * 1e6;
  }
  rtt_done = 1;
  corio_call_soon_threadsafe(loop, (corio_cb)corio_loop_stop, loop);
  return NULL;
}

int main(int argc, char **argv)
{
  const char *what = argc > 1 ? argv[1] : "call_soon";
  double t0, t1;
  long i;
  int rc;
  N = argc > 2 ? atol(argv[2]) : 10000000;
  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "corio_loop_new: %s\n", corio_strerror(rc));
    return 1;
  }
  t0 = corio_loop_time(loop);
  if (!strcmp(what, "call_soon")) {
    corio_call_soon(loop, chain, NULL, NULL);
    corio_loop_run_forever(loop);
    result("call_soon", N / (corio_loop_time(loop) - t0), "ops/s");
  } else if (!strcmp(what, "resume_done")) {
    struct resumer *r = corio_task_new(loop, resumer_step, struct resumer, task);
    r->f = corio_future_new(loop);
    corio_future_set_result(r->f, 1);
    corio_task_start(&r->task);
    t0 = corio_loop_time(loop);
    corio_loop_run_until_complete(loop, &r->task.fut);
    result("resume_done", N / (corio_loop_time(loop) - t0), "ops/s");
    corio_future_unref(r->f);
    corio_future_unref(&r->task.fut);
  } else if (!strcmp(what, "sleep0_pingpong")) {
    struct pinger *a = corio_task_new(loop, pinger_step, struct pinger, task);
    struct pinger *b = corio_task_new(loop, pinger_step, struct pinger, task);
    corio_task_start(&a->task);
    corio_task_start(&b->task);
    corio_loop_run_until_complete(loop, &b->task.fut);
    corio_loop_run_until_complete(loop, &a->task.fut);
    result("sleep0_pingpong", 2.0 * N / (corio_loop_time(loop) - t0), "ops/s");
    corio_future_unref(&a->task.fut);
    corio_future_unref(&b->task.fut);
  } else if (!strcmp(what, "timers")) {
    struct tmr *tms = malloc(sizeof(*tms) * (size_t)N);
    for (i = 0; i < N; i++) {
      double d = (double)(i % 1000) * 1e-6;
      tms[i].when = corio_loop_time(loop) + d;
      corio_call_later(loop, d, timer_cb, &tms[i], NULL);
    }
    t1 = corio_loop_time(loop);
    while (fired < N) corio_loop_run_once(loop, -1);
    printf("# timers N=%ld arm=%.3fs fire=%.3fs early=%ld\n", N, t1 - t0,
           corio_loop_time(loop) - t1, early);
    result(N >= 10000000 ? "timers_10M" : "timers_1M", corio_loop_time(loop) - t0, "s");
    result(N >= 10000000 ? "timers_10M_early" : "timers_1M_early", (double)early, "count");
    free(tms);
  } else if (!strcmp(what, "threadsafe")) {
    pthread_t th;
    pthread_create(&th, NULL, poster, NULL);
    corio_loop_run_forever(loop);
    pthread_join(th, NULL);
    result("threadsafe", N / (corio_loop_time(loop) - t0), "ops/s");
  } else if (!strcmp(what, "threadsafe_rtt")) {
    pthread_t th;
    double *lat = malloc(sizeof(double) * (size_t)N);
    corio_handle keep;
    sem_init(&pong, 0, 0);
    corio_call_later(loop, 3600, (corio_cb)free, NULL, &keep); /* keep the loop alive */
    pthread_create(&th, NULL, rtt_thread, lat);
    corio_loop_run_forever(loop);
    pthread_join(th, NULL);
    corio_handle_cancel(loop, keep);
    qsort(lat, (size_t)N, sizeof(double), cmp_double);
    result("threadsafe_rtt_median", lat[N / 2], "us");
    free(lat);
  } else {
    fprintf(stderr, "unknown scenario %s\n", what);
    return 2;
  }
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  return corio_loop_close(loop) != 0;
}
