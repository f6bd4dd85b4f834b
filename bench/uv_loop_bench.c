/* libuv side of the loop benchmarks. libuv has no call_soon; the cheapest "run this on the next
 * iteration" is a uv_idle_t, which is what a libuv program uses for that (each iteration also
 * polls with a zero timeout). Timers are uv_timer_t, one per timer, with millisecond timeouts
 * (libuv's resolution): (i % 1000) us rounds to 0 or 1 ms. Cross-thread calls: see poster().
 * Prints: RESULT name=<scenario> impl=libuv value=<number> unit=<unit> */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static uv_loop_t *loop;
static long n, N;

static void result(const char *name, double value, const char *unit)
{
  printf("RESULT name=%s impl=libuv value=%.6g unit=%s\n", name, value, unit);
}
static double now(void)
{
  return (double)uv_hrtime() / 1e9;
}

static void idle_cb(uv_idle_t *h)
{
  if (++n >= N) uv_idle_stop(h);
}

struct tmr {
  uv_timer_t t;
  uint64_t when_ns;
};
static long fired, early;
static void timer_cb(uv_timer_t *h)
{
  struct tmr *x = (struct tmr *)h;
  if (uv_hrtime() < x->when_ns) early++;
  fired++;
}

/* uv_async_send coalesces and carries no payload, so delivering N calls from a thread takes the
 * standard libuv pattern: a mutex-protected queue of (callback, arg) nodes plus uv_async_send;
 * the async callback drains the queue and runs each call, as call_soon_threadsafe does. */
struct call {
  struct call *next;
  void (*cb)(void *);
  void *arg;
};
static uv_async_t async;
static uv_mutex_t qlock;
static struct call *qhead, **qtail = &qhead;
static void count_call(void *arg)
{
  (void)arg;
  n++;
}
static void async_cb(uv_async_t *h)
{
  struct call *c, *next;
  uv_mutex_lock(&qlock);
  c = qhead;
  qhead = NULL;
  qtail = &qhead;
  uv_mutex_unlock(&qlock);
  for (; c; c = next) {
    next = c->next;
    c->cb(c->arg);
    free(c);
  }
  if (n >= N) uv_close((uv_handle_t *)h, NULL);
}
static void *poster(void *a)
{
  long i;
  struct call *c;
  (void)a;
  for (i = 0; i < N; i++) {
    c = malloc(sizeof(*c));
    c->next = NULL;
    c->cb = count_call;
    c->arg = NULL;
    uv_mutex_lock(&qlock);
    *qtail = c;
    qtail = &c->next;
    uv_mutex_unlock(&qlock);
    uv_async_send(&async);
  }
  return NULL;
}

static sem_t pong;
static volatile int rtt_stop;
static void rtt_cb(uv_async_t *h)
{
  if (rtt_stop)
    uv_close((uv_handle_t *)h, NULL);
  else
    sem_post(&pong);
}
static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static void *rtt_thread(void *a)
{
  double *lat = a, t0;
  long i;
  for (i = 0; i < N; i++) {
    t0 = now();
    uv_async_send(&async);
    sem_wait(&pong);
    lat[i] = (now() - t0) * 1e6;
  }
  rtt_stop = 1;
  uv_async_send(&async);
  return NULL;
}

int main(int argc, char **argv)
{
  const char *what = argc > 1 ? argv[1] : "call_soon";
  double t0, t1;
  long i;
  N = argc > 2 ? atol(argv[2]) : 10000000;
  loop = uv_default_loop();
  t0 = now();
  if (!strcmp(what, "call_soon")) {
    uv_idle_t idle;
    uv_idle_init(loop, &idle);
    uv_idle_start(&idle, idle_cb);
    uv_run(loop, UV_RUN_DEFAULT);
    result("call_soon", N / (now() - t0), "ops/s");
  } else if (!strcmp(what, "timers")) {
    struct tmr *tms = malloc(sizeof(*tms) * (size_t)N);
    for (i = 0; i < N; i++) {
      uint64_t us = (uint64_t)(i % 1000), ms = (us + 999) / 1000;
      uv_update_time(loop); /* the deadline counts from now, as corio's does */
      uv_timer_init(loop, &tms[i].t);
      tms[i].when_ns = uv_hrtime() + us * 1000;
      uv_timer_start(&tms[i].t, timer_cb, ms, 0);
    }
    t1 = now();
    uv_run(loop, UV_RUN_DEFAULT);
    printf("# timers N=%ld arm=%.3fs fire=%.3fs early=%ld\n", N, t1 - t0, now() - t1, early);
    result(N >= 10000000 ? "timers_10M" : "timers_1M", now() - t0, "s");
    result(N >= 10000000 ? "timers_10M_early" : "timers_1M_early", (double)early, "count");
    free(tms);
  } else if (!strcmp(what, "threadsafe")) {
    pthread_t th;
    uv_mutex_init(&qlock);
    uv_async_init(loop, &async, async_cb);
    pthread_create(&th, NULL, poster, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    result("threadsafe", N / (now() - t0), "ops/s");
  } else if (!strcmp(what, "threadsafe_rtt")) {
    pthread_t th;
    double *lat = malloc(sizeof(double) * (size_t)N);
    sem_init(&pong, 0, 0);
    uv_async_init(loop, &async, rtt_cb);
    pthread_create(&th, NULL, rtt_thread, lat);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    qsort(lat, (size_t)N, sizeof(double), cmp_double);
    result("threadsafe_rtt_median", lat[N / 2], "us");
    free(lat);
  } else {
    return 2; /* no libuv equivalent */
  }
  return 0;
}
