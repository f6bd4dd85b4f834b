/* corio side of the loop benchmarks (bench/run.sh runs every scenario; see bench/README.md).
 * Usage: corio_loop_bench <scenario> [N]
 *   call_soon          a callback that re-schedules itself with corio_call_soon N times
 *   task_resume_done   a task awaiting an already-done future N times (alias: resume_done)
 *   sleep0_pingpong    two tasks each awaiting corio_sleep(loop, 0) N times (2N resumes)
 *   timers             N corio_call_later timers, delays (i % 1000) us; arm + fire, early fires
 *   timers_interleaved N timers armed 1000 per iteration while the loop runs; early fires only
 *   threadsafe         another thread posts N corio_call_soon_threadsafe calls
 *   threadsafe_rtt     N round trips thread -> loop -> thread (semaphore); median latency
 * Prints: RESULT name=<scenario> impl=corio value=<number> unit=<ops/s|s|us|count>, plus comment
 * lines (#) with the loop's counters. Exit status 0 only if the scenario ran fully and the loop
 * closed cleanly (corio_loop_close() == 0). */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
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

static void print_stats(const char *what)
{
  corio_loop_stats st;
  corio_loop_get_stats(loop, &st);
  printf("# %s N=%ld iterations=%llu io_uring_enter=%llu callbacks=%llu posts=%llu "
         "wakeups=%llu\n",
         what, N, (unsigned long long)st.iterations, (unsigned long long)st.enters,
         (unsigned long long)st.callbacks, (unsigned long long)st.posts,
         (unsigned long long)st.wakeups);
}

static void die(const char *what, int rc)
{
  fprintf(stderr, "corio_loop_bench: %s: %s\n", what, corio_strerror(rc));
  exit(1);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void stop_cb(void *arg)
{
  corio_loop_stop(arg);
}

/* ---- call_soon: each callback schedules the next ---- */

static void chain(void *a)
{
  int rc;
  (void)a;
  if (++n < N) {
    rc = corio_call_soon(loop, chain, NULL, NULL);
    if (rc < 0) die("corio_call_soon", rc);
  } else {
    corio_loop_stop(loop);
  }
}

/* ---- task_resume_done: a task awaiting an already-done future N times ---- */

struct resumer {
  corio_task task;
  long i;
  corio_future *f; /* done before the task starts; each await consumes the ref it is given */
};

static corio_step resumer_step(corio_task *t)
{
  struct resumer *r = corio_container_of(t, struct resumer, task);
  CORIO_BEGIN(t);
  for (r->i = 0; r->i < N; r->i++) CORIO_AWAIT(t, corio_future_ref(r->f));
  CORIO_RETURN(t, r->i);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* ---- sleep0_pingpong: two tasks each awaiting sleep(0) N times, interleaving ---- */

struct pinger {
  corio_task task;
  long i;
};

static corio_step pinger_step(corio_task *t)
{
  struct pinger *p = corio_container_of(t, struct pinger, task);
  CORIO_BEGIN(t);
  for (p->i = 0; p->i < N; p->i++) CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0));
  CORIO_RETURN(t, p->i);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

/* ---- timers ---- */

static double *when; /* when[i]: timer i's deadline in corio_loop_time()'s clock */
static double last_now = -1;
static long fired, early;

static void timer_cb(void *a)
{
  double w = *(const double *)a;
  /* The deadline was read just before corio_call_later read the clock, so it is never later
   * than the loop's own deadline: a fire counted early here is really early. The clock is
   * monotonic, so a reading already past the deadline proves the fire late without a new
   * reading: the check costs one clock read per batch of fires, not one per timer (27 ns here,
   * which would add 0.3 s to 10M timers). */
  if (last_now < w) {
    last_now = corio_loop_time(loop);
    if (last_now < w) early++;
  }
  fired++;
}

/* ---- timers_interleaved: arming while the loop runs, so that deadlines are still ahead ----
 * In `timers` the arming of N timers takes longer than their 1 ms window, so nearly all are due
 * before the loop first looks at them and only the last ~1 ms of them can expose an early fire.
 * Here a callback arms 1000 timers per loop iteration (delays 0..1999 us) and re-schedules
 * itself until N are armed: timers fire while others are being armed, close to their deadlines. */

#define BATCH 1000

static void arm_batch(void *a)
{
  static long armed;
  long k;
  int rc;
  (void)a;
  for (k = 0; k < BATCH && armed < N; k++, armed++) {
    double d = (double)((armed * 7919) % 2000) * 1e-6; /* a scattered order of deadlines */
    when[armed] = corio_loop_time(loop) + d;
    rc = corio_call_later(loop, d, timer_cb, &when[armed], NULL);
    if (rc < 0) die("corio_call_later", rc);
  }
  if (armed < N) {
    rc = corio_call_soon(loop, arm_batch, NULL, NULL);
    if (rc < 0) die("corio_call_soon", rc);
  }
}

static void stop_when_fired(void *a)
{
  int rc;
  if (fired == N) {
    corio_loop_stop(loop);
  } else {
    rc = corio_call_later(loop, 1e-4, stop_when_fired, a, NULL);
    if (rc < 0) die("corio_call_later", rc);
  }
}

/* ---- threadsafe: another thread posts N calls ---- */

static atomic_long post_failures;

static void count_cb(void *a)
{
  (void)a;
  if (++n == N) corio_loop_stop(loop);
}

static void *poster(void *a)
{
  long i;
  (void)a;
  for (i = 0; i < N; i++)
    if (corio_call_soon_threadsafe(loop, count_cb, NULL) < 0)
      atomic_fetch_add_explicit(&post_failures, 1, memory_order_relaxed);
  return NULL;
}

/* ---- threadsafe_rtt: post, the loop posts a semaphore back, wait ---- */

static sem_t pong;

static void ping_cb(void *a)
{
  (void)a;
  sem_post(&pong);
}

static void *rtt_thread(void *a)
{
  double *lat = a, t0;
  long i;
  for (i = 0; i < N; i++) {
    t0 = corio_loop_time(loop); /* the monotonic clock; callable from any thread */
    if (corio_call_soon_threadsafe(loop, ping_cb, NULL) < 0) abort();
    sem_wait(&pong);
    lat[i] = (corio_loop_time(loop) - t0) * 1e6;
  }
  if (corio_call_soon_threadsafe(loop, stop_cb, loop) < 0) abort();
  return NULL;
}

int main(int argc, char **argv)
{
  const char *what = argc > 1 ? argv[1] : "call_soon";
  double t0, t1;
  long i;
  int rc, ok = 1;
  char name[64];
  pthread_t th;

  N = argc > 2 ? atol(argv[2]) : 10000000;
  if (N <= 0) {
    fprintf(stderr, "N must be > 0\n");
    return 2;
  }
  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) die("corio_loop_new", rc);
  t0 = corio_loop_time(loop);
  if (!strcmp(what, "call_soon")) {
    rc = corio_call_soon(loop, chain, NULL, NULL);
    if (rc < 0) die("corio_call_soon", rc);
    rc = corio_loop_run_forever(loop);
    if (rc < 0) die("corio_loop_run_forever", rc);
    result("call_soon", N / (corio_loop_time(loop) - t0), "ops/s");
    ok = n == N;
  } else if (!strcmp(what, "task_resume_done") || !strcmp(what, "resume_done")) {
    struct resumer *r = corio_task_new(loop, resumer_step, struct resumer, task);
    if (!r) die("corio_task_new", -ENOMEM);
    r->f = corio_future_new(loop);
    if (!r->f) die("corio_future_new", -ENOMEM);
    corio_future_set_result(r->f, 1);
    corio_task_start(&r->task);
    t0 = corio_loop_time(loop);
    rc = corio_loop_run_until_complete(loop, &r->task.fut);
    if (rc < 0) die("corio_loop_run_until_complete", rc);
    result("task_resume_done", N / (corio_loop_time(loop) - t0), "ops/s");
    ok = corio_future_error(&r->task.fut) == 0 && corio_future_int(&r->task.fut) == N;
    corio_future_unref(r->f);
    corio_future_unref(&r->task.fut);
  } else if (!strcmp(what, "sleep0_pingpong")) {
    struct pinger *a = corio_task_new(loop, pinger_step, struct pinger, task);
    struct pinger *b = corio_task_new(loop, pinger_step, struct pinger, task);
    if (!a || !b) die("corio_task_new", -ENOMEM);
    corio_task_start(&a->task);
    corio_task_start(&b->task);
    rc = corio_loop_run_until_complete(loop, &b->task.fut);
    if (rc >= 0) rc = corio_loop_run_until_complete(loop, &a->task.fut);
    if (rc < 0) die("corio_loop_run_until_complete", rc);
    result("sleep0_pingpong", 2.0 * N / (corio_loop_time(loop) - t0), "ops/s");
    ok = corio_future_int(&a->task.fut) == N && corio_future_int(&b->task.fut) == N;
    corio_future_unref(&a->task.fut);
    corio_future_unref(&b->task.fut);
  } else if (!strcmp(what, "timers")) {
    when = malloc(sizeof(*when) * (size_t)N);
    if (!when) die("malloc", -ENOMEM);
    for (i = 0; i < N; i++) {
      double d = (double)(i % 1000) * 1e-6;
      when[i] = corio_loop_time(loop) + d;
      rc = corio_call_later(loop, d, timer_cb, &when[i], NULL);
      if (rc < 0) die("corio_call_later", rc);
    }
    t1 = corio_loop_time(loop);
    while (fired < N) {
      rc = corio_loop_run_once(loop, -1);
      if (rc < 0) die("corio_loop_run_once", rc);
    }
    printf("# timers N=%ld arm=%.3fs fire=%.3fs fired=%ld early=%ld\n", N, t1 - t0,
           corio_loop_time(loop) - t1, fired, early);
    snprintf(name, sizeof(name), N % 1000000 ? "timers_%ld" : "timers_%ldM",
             N % 1000000 ? N : N / 1000000);
    result(name, corio_loop_time(loop) - t0, "s");
    strcat(name, "_early");
    result(name, (double)early, "count");
    free(when);
  } else if (!strcmp(what, "timers_interleaved")) {
    when = malloc(sizeof(*when) * (size_t)N);
    if (!when) die("malloc", -ENOMEM);
    rc = corio_call_soon(loop, arm_batch, NULL, NULL);
    if (rc >= 0) rc = corio_call_later(loop, 1e-4, stop_when_fired, NULL, NULL);
    if (rc < 0) die("corio_call_soon", rc);
    rc = corio_loop_run_forever(loop);
    if (rc < 0) die("corio_loop_run_forever", rc);
    printf("# timers_interleaved N=%ld fired=%ld early=%ld in %.3fs\n", N, fired, early,
           corio_loop_time(loop) - t0);
    result("timers_interleaved_early", (double)early, "count");
    ok = fired == N;
    free(when);
  } else if (!strcmp(what, "threadsafe")) {
    pthread_create(&th, NULL, poster, NULL);
    rc = corio_loop_run_forever(loop);
    if (rc < 0) die("corio_loop_run_forever", rc);
    pthread_join(th, NULL);
    result("threadsafe", N / (corio_loop_time(loop) - t0), "ops/s");
    ok = n == N && atomic_load(&post_failures) == 0;
  } else if (!strcmp(what, "threadsafe_rtt")) {
    double *lat = malloc(sizeof(double) * (size_t)N);
    if (!lat) die("malloc", -ENOMEM);
    sem_init(&pong, 0, 0);
    pthread_create(&th, NULL, rtt_thread, lat);
    rc = corio_loop_run_forever(loop); /* nothing is alive: it sleeps until a post arrives */
    if (rc < 0) die("corio_loop_run_forever", rc);
    pthread_join(th, NULL);
    qsort(lat, (size_t)N, sizeof(double), cmp_double);
    result("threadsafe_rtt_median", lat[N / 2], "us");
    printf("# threadsafe_rtt N=%ld p10=%.1fus p90=%.1fus\n", N, lat[N / 10], lat[N * 9 / 10]);
    free(lat);
    sem_destroy(&pong);
  } else {
    fprintf(stderr, "corio_loop_bench: unknown scenario %s\n", what);
    return 2;
  }
  print_stats(what);
  if (!ok) fprintf(stderr, "corio_loop_bench: %s did not run to the end\n", what);
  while ((rc = corio_loop_run_once(loop, 0)) > 0) {
  }
  if (rc < 0) die("corio_loop_run_once", rc);
  rc = corio_loop_close(loop);
  if (rc < 0) fprintf(stderr, "corio_loop_bench: corio_loop_close: %s\n", corio_strerror(rc));
  return !ok || rc < 0;
}
