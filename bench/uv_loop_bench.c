/* libuv side of the loop benchmarks (bench/run.sh runs every scenario; see bench/README.md).
 * Usage: uv_loop_bench <scenario> [N]
 * Prints: RESULT name=<scenario> impl=libuv value=<number> unit=<unit>
 *
 * The honest libuv equivalent of each corio scenario:
 * - call_soon: libuv has no call_soon. The cheapest "run this again on the next iteration" is a
 *   uv_idle_t, whose callback runs once per loop iteration (and keeps the poll timeout at 0). A
 *   uv_timer_t re-armed with timeout 0 is not equivalent (it costs a heap insert and removal per
 *   call, and an idle handle is what libuv programs use for deferred work). The callback counts
 *   and stops the handle after N calls.
 * - timers: one malloc'ed uv_timer_t per timer. libuv's timers have millisecond resolution, so
 *   the requested (i % 1000) us is rounded UP to 0 or 1 ms (rounding down would let a timer fire
 *   before its deadline). Early fires are judged against the requested deadline, measured with
 *   uv_hrtime (the precise clock; the loop's own uv_now may be a coarse clock).
 * - threadsafe: uv_async_send coalesces (N sends give far fewer callbacks) and carries no payload,
 *   so it is not call_soon_threadsafe. The comparable row uses the standard libuv pattern: a
 *   mutex-protected queue of malloc'ed (callback, arg) nodes plus uv_async_send, drained by the
 *   async callback. The raw uv_async_send rate is reported too (threadsafe_uv_async), together
 *   with how many callbacks those sends produced.
 * - threadsafe_rtt: the thread sends, the async callback posts a semaphore, the thread waits.
 * - task_resume_done and sleep0_pingpong: libuv has no tasks or futures; exit status 2. */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- call_soon: an idle handle counting its calls ---- */

static void idle_cb(uv_idle_t *h)
{
  if (++n >= N) uv_idle_stop(h);
}

/* ---- timers ---- */

struct tmr {
  uv_timer_t t;     /* first: the callback casts the handle back */
  uint64_t when_ns; /* the requested deadline, in uv_hrtime's clock */
};
static struct tmr *tms; /* file scope: still reachable at _exit (see main) */
static uint64_t last_now;
static long fired, early;

static void timer_cb(uv_timer_t *h)
{
  struct tmr *x = (struct tmr *)h;
  /* As in corio_loop_bench.c: a clock reading already past the deadline proves the fire late,
   * so the clock is read again only when the last reading does not. */
  if (last_now < x->when_ns) {
    last_now = uv_hrtime();
    if (last_now < x->when_ns) early++;
  }
  fired++;
}

/* ---- threadsafe: a mutex-protected call queue plus uv_async_send ---- */

struct call {
  struct call *next;
  void (*cb)(void *);
  void *arg;
};
static uv_async_t async;
static uv_mutex_t qlock;
static struct call *qhead, **qtail = &qhead;
static long async_callbacks;

static void count_call(void *arg)
{
  (void)arg;
  n++;
}

static void queue_async_cb(uv_async_t *h)
{
  struct call *c, *next;
  async_callbacks++;
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

static void *queue_poster(void *a)
{
  long i;
  struct call *c;
  (void)a;
  for (i = 0; i < N; i++) {
    c = malloc(sizeof(*c));
    if (!c) abort();
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

/* ---- threadsafe_uv_async: raw sends, no payload; counts callbacks AND sends ---- */

static atomic_int raw_done;

static void raw_async_cb(uv_async_t *h)
{
  async_callbacks++;
  if (atomic_load_explicit(&raw_done, memory_order_acquire)) uv_close((uv_handle_t *)h, NULL);
}

static void *raw_poster(void *a)
{
  long i;
  (void)a;
  for (i = 0; i < N; i++) uv_async_send(&async);
  /* The final send after the flag is set guarantees one more callback that sees it. */
  atomic_store_explicit(&raw_done, 1, memory_order_release);
  uv_async_send(&async);
  return NULL;
}

/* ---- threadsafe_rtt ---- */

static sem_t pong;
static atomic_int rtt_stop;

static void rtt_cb(uv_async_t *h)
{
  if (atomic_load_explicit(&rtt_stop, memory_order_acquire))
    uv_close((uv_handle_t *)h, NULL);
  else
    sem_post(&pong);
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
  atomic_store_explicit(&rtt_stop, 1, memory_order_release);
  uv_async_send(&async);
  return NULL;
}

int main(int argc, char **argv)
{
  const char *what = argc > 1 ? argv[1] : "call_soon";
  double t0, t1;
  long i;
  pthread_t th;
  char name[64];

  N = argc > 2 ? atol(argv[2]) : 10000000;
  if (N <= 0) {
    fprintf(stderr, "N must be > 0\n");
    return 2;
  }
  loop = uv_default_loop();
  printf("# libuv %s\n", uv_version_string());
  t0 = now();
  if (!strcmp(what, "call_soon")) {
    uv_idle_t idle;
    uv_idle_init(loop, &idle);
    uv_idle_start(&idle, idle_cb);
    t0 = now();
    uv_run(loop, UV_RUN_DEFAULT);
    result("call_soon", N / (now() - t0), "ops/s");
    uv_close((uv_handle_t *)&idle, NULL);
  } else if (!strcmp(what, "timers")) {
    tms = malloc(sizeof(*tms) * (size_t)N);
    if (!tms) return 1;
    for (i = 0; i < N; i++) {
      uint64_t us = (uint64_t)(i % 1000), ms = (us + 999) / 1000;
      uv_update_time(loop); /* the deadline counts from now, as corio's does */
      uv_timer_init(loop, &tms[i].t);
      tms[i].when_ns = uv_hrtime() + us * 1000;
      uv_timer_start(&tms[i].t, timer_cb, ms, 0);
    }
    t1 = now();
    uv_run(loop, UV_RUN_DEFAULT);
    printf("# timers N=%ld arm=%.3fs fire=%.3fs fired=%ld early=%ld\n", N, t1 - t0, now() - t1,
           fired, early);
    if (fired != N) {
      fprintf(stderr, "timers: %ld of %ld fired\n", fired, N);
      return 1;
    }
    snprintf(name, sizeof(name), N % 1000000 ? "timers_%ld" : "timers_%ldM",
             N % 1000000 ? N : N / 1000000);
    result(name, now() - t0, "s");
    strcat(name, "_early");
    result(name, (double)early, "count");
    /* The N timer handles stay registered with the loop until closed, and closing 10M handles
     * costs another second of the time budget; the process ends here instead. */
    fflush(stdout);
    _exit(0);
  } else if (!strcmp(what, "threadsafe")) {
    uv_mutex_init(&qlock);
    uv_async_init(loop, &async, queue_async_cb);
    pthread_create(&th, NULL, queue_poster, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    result("threadsafe", N / (now() - t0), "ops/s");
    printf("# threadsafe N=%ld calls run=%ld async callbacks=%ld\n", N, n, async_callbacks);
    uv_mutex_destroy(&qlock);
  } else if (!strcmp(what, "threadsafe_uv_async")) {
    uv_async_init(loop, &async, raw_async_cb);
    pthread_create(&th, NULL, raw_poster, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    result("threadsafe_uv_async", N / (now() - t0), "ops/s");
    result("threadsafe_uv_async_callbacks", (double)async_callbacks, "count");
    printf("# uv_async_send: %ld sends gave %ld callbacks (coalesced)\n", N + 1, async_callbacks);
  } else if (!strcmp(what, "threadsafe_rtt")) {
    double *lat = malloc(sizeof(double) * (size_t)N);
    if (!lat) return 1;
    sem_init(&pong, 0, 0);
    uv_async_init(loop, &async, rtt_cb);
    pthread_create(&th, NULL, rtt_thread, lat);
    uv_run(loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    qsort(lat, (size_t)N, sizeof(double), cmp_double);
    result("threadsafe_rtt_median", lat[N / 2], "us");
    printf("# threadsafe_rtt N=%ld p10=%.1fus p90=%.1fus\n", N, lat[N / 10], lat[N * 9 / 10]);
    free(lat);
    sem_destroy(&pong);
  } else {
    fprintf(stderr, "uv_loop_bench: no libuv equivalent for scenario %s\n", what);
    return 2;
  }
  uv_run(loop, UV_RUN_DEFAULT); /* let close callbacks run */
  return uv_loop_close(loop) != 0;
}
