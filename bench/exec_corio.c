/* corio side of the executor benchmarks (bench/exec_run.sh runs them all; see bench/README.md).
 * Usage: exec_corio <scenario> [N]
 *   tp_rtt          thread pool round trip of an empty job on an idle pool, from a loop: a done
 *                   callback submits the next job with corio_run_in_executor (default pool);
 *                   median of N round trips
 *   tp_rtt_thread   the same from a plain thread: corio_executor_submit + corio_future_wait
 *   tp_tput         thread pool throughput, 1,000 empty jobs in flight from a loop: each done
 *                   callback submits one more until N jobs completed
 *   tp_tput_thread  the same without a loop (loop-less futures: the callbacks run in workers)
 *   pp_rtt64        process pool round trip of a job echoing 64 input bytes (submit_bytes +
 *                   corio_future_wait), median of N
 *   pp_1m           process pool, 1 MiB argument, 1 MiB result (the job echoes it), median of N
 *   pp_start        a new pool and its first job (corio_process_pool_new + submit + wait), median
 *                   of N pools (each freed, untimed, before the next)
 *   pp_map1         process pool, corio_executor_map of N small jobs (8-byte input, integer
 *                   result) with chunksize 1, all awaited from a thread; jobs per second
 *   pp_map64        the same with chunksize 64 (one message per 64 jobs each way in)
 * Prints: RESULT name=<scenario> impl=corio value=<number> unit=<us|ops/s|ms>, and comment
 * lines (#) with p10/p90. Exit status 0 only if every job succeeded and the loop (if any) closed
 * cleanly. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <corio.h>

#define IN_FLIGHT 1000

static corio_loop *loop;
static corio_executor *pool;
static long n, N, started, completed;
static double *lat, t_submit;

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void result(const char *name, double value, const char *unit)
{
  printf("RESULT name=%s impl=corio value=%.6g unit=%s\n", name, value, unit);
}

static void die(const char *what, int rc)
{
  fprintf(stderr, "exec_corio: %s: %s\n", what, corio_strerror(rc));
  exit(1);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median of lat[0..N) in @p scale units; p10 and p90 as a comment. */
static void report_lat(const char *name, double scale, const char *unit)
{
  qsort(lat, (size_t)N, sizeof(*lat), cmp_double);
  printf("# %s N=%ld p10=%.2f p50=%.2f p90=%.2f %s\n", name, N, lat[N / 10] * scale,
         lat[N / 2] * scale, lat[N * 9 / 10] * scale, unit);
  result(name, lat[N / 2] * scale, unit);
}

static void empty_job(corio_job *job)
{
  (void)job;
}

static void echo_job(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  corio_job_return_bytes(job, in->data, in->len);
}

static void check(corio_future *f)
{
  int rc = corio_future_error(f);
  if (rc < 0) die("job", rc);
}

/* ---- thread pool from a loop ---- */

static void rtt_done(corio_future *f, void *arg);

static void rtt_submit(void)
{
  corio_future *f;
  t_submit = now();
  f = corio_run_in_executor(loop, NULL, empty_job, NULL);
  if (!f) die("corio_run_in_executor", -12);
  corio_future_add_done_callback(f, rtt_done, NULL);
  corio_future_unref(f); /* the callback's own reference keeps it alive until it ran */
}

static void rtt_done(corio_future *f, void *arg)
{
  (void)arg;
  check(f);
  lat[n++] = now() - t_submit;
  if (n < N)
    rtt_submit();
  else
    corio_loop_stop(loop);
}

static void tput_done(corio_future *f, void *arg);

static void tput_submit(void)
{
  corio_future *f = corio_run_in_executor(loop, NULL, empty_job, NULL);
  if (!f) die("corio_run_in_executor", -12);
  started++;
  corio_future_add_done_callback(f, tput_done, NULL);
  corio_future_unref(f);
}

static void tput_done(corio_future *f, void *arg)
{
  (void)arg;
  check(f);
  if (++completed == N)
    corio_loop_stop(loop);
  else if (started < N)
    tput_submit();
}

static void print_stats(const char *what)
{
  corio_loop_stats st;
  corio_loop_get_stats(loop, &st);
  printf("# %s iterations=%llu io_uring_enter=%llu posts=%llu wakeups=%llu\n", what,
         (unsigned long long)st.iterations, (unsigned long long)st.enters,
         (unsigned long long)st.posts, (unsigned long long)st.wakeups);
}

/* CPU time of the calling thread (the loop's), in seconds */
static double thread_cpu(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void with_loop(const char *name)
{
  double t0, c0;
  long i;
  int rc = corio_loop_new(&loop, NULL);
  if (rc < 0) die("corio_loop_new", rc);
  /* warm up: the default pool is created and its workers started */
  if (!strcmp(name, "tp_rtt")) {
    long want = N;
    N = 100;
    rtt_submit();
    corio_loop_run_forever(loop);
    N = want;
    n = 0;
    rtt_submit();
    corio_loop_run_forever(loop);
    print_stats(name);
    report_lat(name, 1e6, "us");
  } else {
    long want = N;
    N = 5000;
    for (i = 0; i < IN_FLIGHT; i++) tput_submit();
    corio_loop_run_forever(loop);
    N = want;
    started = completed = 0;
    t0 = now();
    c0 = thread_cpu();
    for (i = 0; i < IN_FLIGHT && i < N; i++) tput_submit();
    corio_loop_run_forever(loop);
    c0 = thread_cpu() - c0;
    t0 = now() - t0;
    print_stats(name);
    printf("# %s N=%ld in_flight=%d %.3f s, loop thread busy %.0f%%, %.3f us CPU per job\n", name,
           N, IN_FLIGHT, t0, 100 * c0 / t0, c0 * 1e6 / (double)N);
    result(name, (double)N / t0, "ops/s");
  }
  rc = corio_loop_close(loop);
  if (rc < 0) die("corio_loop_close", rc);
}

/* ---- thread pool from a thread (loop-less futures) ---- */

static _Atomic long t_started, t_completed, t_exited;
static corio_future *t_all;

static void tt_done(corio_future *f, void *arg);

/* A callback added to a future that is already done runs at once, in tt_submit: it must not
 * submit again from there (the recursion could go N deep), so it leaves a debt that the outer
 * tt_submit pays in a loop. */
static __thread int depth;
static __thread long owed;

static void tt_submit(void)
{
  corio_future *f;
  do {
    f = corio_executor_submit(pool, empty_job, NULL);
    if (!f) die("corio_executor_submit", -12);
    depth++;
    corio_future_add_done_callback(f, tt_done, NULL);
    depth--;
    corio_future_unref(f);
  } while (!depth && owed > 0 && owed--);
}

static void tt_done(corio_future *f, void *arg)
{
  long c;
  (void)arg;
  check(f);
  c = atomic_fetch_add(&t_completed, 1) + 1;
  if (c == N)
    corio_future_set_result(t_all, 0);
  else if (atomic_fetch_add(&t_started, 1) < N) {
    if (depth)
      owed++;
    else
      tt_submit();
  }
  atomic_fetch_add(&t_exited, 1); /* last: the next round may reset everything */
}

static void thread_pool(const char *name)
{
  corio_future *f;
  double t0;
  long i, k;
  int rc = corio_thread_pool_new(&pool, NULL);
  if (rc < 0) die("corio_thread_pool_new", rc);
  if (!strcmp(name, "tp_rtt_thread")) {
    for (k = -100; k < N; k++) {
      t0 = now();
      f = corio_executor_submit(pool, empty_job, NULL);
      if (!f) die("corio_executor_submit", -12);
      corio_future_wait(f, -1);
      if (k >= 0) lat[k] = now() - t0;
      check(f);
      corio_future_unref(f);
    }
    report_lat(name, 1e6, "us");
  } else {
    long want = N;
    for (k = 0; k < 2; k++) {
      N = k ? want : 5000;
      atomic_store(&t_completed, 0);
      atomic_store(&t_exited, 0);
      atomic_store(&t_started, IN_FLIGHT < N ? IN_FLIGHT : N);
      t_all = corio_future_new(NULL);
      t0 = now();
      for (i = 0; i < IN_FLIGHT && i < N; i++) tt_submit();
      corio_future_wait(t_all, -1);
      t0 = now() - t0;
      while (atomic_load(&t_exited) < N) sched_yield(); /* every callback has returned */
      corio_future_unref(t_all);
    }
    printf("# %s N=%ld in_flight=%d %.3f s\n", name, N, IN_FLIGHT, t0);
    result(name, (double)N / t0, "ops/s");
  }
  corio_executor_free(pool);
}

/* ---- process pool ---- */

static void plus_one(corio_job *job)
{
  int64_t v = 0;
  const corio_bytes *in = corio_job_input(job);
  if (in->len == sizeof(v)) memcpy(&v, in->data, sizeof(v));
  corio_job_return(job, v + 1);
}

/* map of N 8-byte jobs; the pool's workers are started (and warmed by a first map) untimed. */
static void process_map(const char *name)
{
  size_t chunk = !strcmp(name, "pp_map64") ? 64 : 1;
  corio_bytes *in = calloc((size_t)N, sizeof(*in));
  corio_future **out = calloc((size_t)N, sizeof(*out));
  int64_t *v = calloc((size_t)N, sizeof(*v));
  double t0 = 0;
  long i, k, len;
  int rc;
  if (!in || !out || !v) die("calloc", -12);
  for (i = 0; i < N; i++) {
    v[i] = i;
    in[i].data = (uint8_t *)&v[i];
    in[i].len = sizeof(v[i]);
  }
  rc = corio_process_pool_new(&pool, NULL);
  if (rc < 0) die("corio_process_pool_new", rc);
  for (k = 0; k < 2; k++) {
    len = k ? N : (N < 1000 ? N : 1000);
    t0 = now();
    rc = corio_executor_map(pool, plus_one, in, (size_t)len, chunk, out);
    if (rc < 0) die("corio_executor_map", rc);
    rc = corio_futures_wait_all(out, (size_t)len, -1);
    if (rc < 0) die("corio_futures_wait_all", rc);
    t0 = now() - t0;
    for (i = 0; i < len; i++) {
      check(out[i]);
      if (corio_future_int(out[i]) != i + 1) die("map result mismatch", -5);
      corio_future_unref(out[i]);
    }
  }
  corio_executor_free(pool);
  printf("# %s N=%ld chunksize=%zu %.3f s\n", name, N, chunk, t0);
  result(name, (double)N / t0, "ops/s");
  free(in);
  free(out);
  free(v);
}

static void process_pool(const char *name)
{
  corio_future *f;
  size_t len = !strcmp(name, "pp_1m") ? (size_t)1 << 20 : 64;
  unsigned char *buf = malloc(len);
  double t0;
  long k;
  int rc;
  size_t j;
  for (j = 0; j < len; j++) buf[j] = (unsigned char)(j * 7);
  if (!strcmp(name, "pp_start")) {
    for (k = -2; k < N; k++) {
      t0 = now();
      rc = corio_process_pool_new(&pool, NULL);
      if (rc < 0) die("corio_process_pool_new", rc);
      f = corio_executor_submit_bytes(pool, echo_job, buf, len);
      if (!f) die("submit", -12);
      corio_future_wait(f, -1);
      if (k >= 0) lat[k] = now() - t0;
      check(f);
      corio_future_unref(f);
      corio_executor_free(pool);
    }
    report_lat(name, 1e3, "ms");
    free(buf);
    return;
  }
  rc = corio_process_pool_new(&pool, NULL);
  if (rc < 0) die("corio_process_pool_new", rc);
  for (k = -20; k < N; k++) {
    t0 = now();
    f = corio_executor_submit_bytes(pool, echo_job, buf, len);
    if (!f) die("submit", -12);
    corio_future_wait(f, -1);
    if (k >= 0) lat[k] = now() - t0;
    check(f);
    if (corio_future_bytes(f)->len != len || memcmp(corio_future_bytes(f)->data, buf, len))
      die("echo mismatch", -5);
    corio_future_unref(f);
  }
  corio_executor_free(pool);
  free(buf);
  if (!strcmp(name, "pp_1m"))
    report_lat(name, 1e3, "ms");
  else
    report_lat(name, 1e6, "us");
}

int main(int argc, char **argv)
{
  const char *sc = argc > 1 ? argv[1] : "";
  N = argc > 2 ? atol(argv[2]) : 0;
  if (N <= 0)
    N = !strncmp(sc, "tp_tput", 7)  ? 200000
        : !strcmp(sc, "pp_start")   ? 30
        : !strncmp(sc, "pp_map", 6) ? 10000
                                    : 2000;
  lat = calloc((size_t)N, sizeof(*lat));
  if (!lat) die("calloc", -12);
  if (!strcmp(sc, "tp_rtt") || !strcmp(sc, "tp_tput"))
    with_loop(sc);
  else if (!strcmp(sc, "tp_rtt_thread") || !strcmp(sc, "tp_tput_thread"))
    thread_pool(sc);
  else if (!strcmp(sc, "pp_rtt64") || !strcmp(sc, "pp_1m") || !strcmp(sc, "pp_start"))
    process_pool(sc);
  else if (!strcmp(sc, "pp_map1") || !strcmp(sc, "pp_map64"))
    process_map(sc);
  else {
    fprintf(stderr, "usage: exec_corio tp_rtt|tp_rtt_thread|tp_tput|tp_tput_thread|pp_rtt64|"
                    "pp_1m|pp_start|pp_map1|pp_map64 [N]\n");
    return 2;
  }
  free(lat);
  return 0;
}
