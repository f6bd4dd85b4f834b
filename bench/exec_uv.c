/* libuv side of the executor benchmarks (bench/exec_run.sh; see bench/README.md).
 * Usage: exec_uv <tp_rtt|tp_tput> [N]
 *   tp_rtt   uv_queue_work round trip of an empty job on an idle pool: the after_work callback
 *            queues the next one; median of N
 *   tp_tput  1,000 empty jobs in flight: each after_work callback queues one more until N done
 * libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise (the run keeps the
 * default, as corio's and Python's pools keep theirs). The requests are preallocated and reused:
 * no malloc per job on libuv's side, the cheapest way to use it.
 * Prints: RESULT name=<scenario> impl=libuv value=<number> unit=<us|ops/s>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define IN_FLIGHT 1000

static uv_loop_t *loop;
static long n, N, started, completed;
static double *lat;
static uint64_t t_submit;
static uv_work_t reqs[IN_FLIGHT];

static void result(const char *name, double value, const char *unit)
{
  printf("RESULT name=%s impl=libuv value=%.6g unit=%s\n", name, value, unit);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what, int rc)
{
  fprintf(stderr, "exec_uv: %s: %s\n", what, uv_strerror(rc));
  exit(1);
}

static void empty_work(uv_work_t *req)
{
  (void)req;
}

static void rtt_after(uv_work_t *req, int status);

static void rtt_submit(void)
{
  int rc;
  t_submit = uv_hrtime();
  rc = uv_queue_work(loop, &reqs[0], empty_work, rtt_after);
  if (rc < 0) die("uv_queue_work", rc);
}

static void rtt_after(uv_work_t *req, int status)
{
  (void)req;
  if (status < 0) die("after_work", status);
  lat[n++] = (double)(uv_hrtime() - t_submit) * 1e-9;
  if (n < N) rtt_submit();
}

static void tput_after(uv_work_t *req, int status)
{
  int rc;
  if (status < 0) die("after_work", status);
  completed++;
  if (started < N) {
    started++;
    rc = uv_queue_work(loop, req, empty_work, tput_after);
    if (rc < 0) die("uv_queue_work", rc);
  }
}

static void tput_run(long count)
{
  long i;
  int rc;
  N = count;
  started = completed = 0;
  for (i = 0; i < IN_FLIGHT && i < N; i++) {
    started++;
    rc = uv_queue_work(loop, &reqs[i], empty_work, tput_after);
    if (rc < 0) die("uv_queue_work", rc);
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (completed != N) die("incomplete", UV_EINVAL);
}

int main(int argc, char **argv)
{
  const char *sc = argc > 1 ? argv[1] : "";
  uint64_t t0;
  double s;
  long want;
  N = argc > 2 ? atol(argv[2]) : 0;
  if (N <= 0) N = !strcmp(sc, "tp_tput") ? 200000 : 2000;
  want = N;
  lat = calloc((size_t)N, sizeof(*lat));
  loop = uv_default_loop();
  if (!strcmp(sc, "tp_rtt")) {
    N = 100; /* warm up: threads started */
    rtt_submit();
    uv_run(loop, UV_RUN_DEFAULT);
    N = want;
    n = 0;
    rtt_submit();
    uv_run(loop, UV_RUN_DEFAULT);
    qsort(lat, (size_t)N, sizeof(*lat), cmp_double);
    printf("# tp_rtt N=%ld p10=%.2f p50=%.2f p90=%.2f us\n", N, lat[N / 10] * 1e6, lat[N / 2] * 1e6,
           lat[N * 9 / 10] * 1e6);
    result("tp_rtt", lat[N / 2] * 1e6, "us");
  } else if (!strcmp(sc, "tp_tput")) {
    tput_run(5000);
    t0 = uv_hrtime();
    tput_run(want);
    s = (double)(uv_hrtime() - t0) * 1e-9;
    printf("# tp_tput N=%ld in_flight=%d %.3f s\n", N, IN_FLIGHT, s);
    result("tp_tput", (double)N / s, "ops/s");
  } else {
    fprintf(stderr, "usage: exec_uv tp_rtt|tp_tput [N]\n");
    return 2;
  }
  uv_loop_close(loop);
  free(lat);
  return 0;
}
