/* DNS lookups/s with corio_getaddrinfo (c-ares on the loop), the peer of dns_uv.c in
 * bench/dns_run.sh.
 *   dns_corio <server ip:port> <lookups> <in-flight> <name-prefix> <expected IPv4>
 * Resolves "<prefix><i>.bench.test" for i in [0, lookups) with AF_INET, keeping <in-flight>
 * lookups pending: each completion starts the next. Every answer must be the expected address
 * (the one the benchmark's dnsmasq gives), otherwise the run fails. Prints a RESULT line
 * (lookups/s from the first start to the last completion), the process's CPU time (user + system,
 * getrusage) per lookup and the loop's counters; exits 1 on any failed lookup or if
 * corio_loop_close does not succeed. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <corio.h>

static corio_loop *loop;
static long total, started, finished, failed, wrong;
static const char *prefix;
static struct in_addr want;
static struct addrinfo hints;

/* User + system CPU seconds of the whole process (all threads). */
static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_done(corio_future *f, void *arg);

static void start_one(void)
{
  char name[256];
  corio_future *f;
  snprintf(name, sizeof(name), "%s%ld.bench.test", prefix, started++);
  f = corio_getaddrinfo(loop, name, NULL, &hints);
  if (!f || corio_future_add_done_callback(f, on_done, NULL) < 0) {
    fprintf(stderr, "dns_corio: cannot start a lookup\n");
    exit(1);
  }
}

static void on_done(corio_future *f, void *arg)
{
  const corio_addrinfo *a;
  int err = corio_future_error(f);
  (void)arg;
  if (err) {
    if (failed++ < 5)
      fprintf(stderr, "dns_corio: lookup failed: %s\n", corio_future_error_message(f));
  } else {
    a = corio_future_ptr(f);
    if (a->family != AF_INET ||
        ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr != want.s_addr)
      wrong++;
  }
  corio_future_unref(f);
  finished++;
  if (started < total) start_one();
  if (finished == total) corio_loop_stop(loop);
}

int main(int argc, char **argv)
{
  corio_resolver_opts ro = {0};
  corio_loop_stats st;
  long conc, i;
  double t0, t1, c0, c1;
  int rc;
  if (argc != 6 || inet_pton(AF_INET, argv[5], &want) != 1) {
    fprintf(stderr, "usage: dns_corio <server ip:port> <lookups> <in-flight> <prefix> <ipv4>\n");
    return 2;
  }
  total = atol(argv[2]);
  conc = atol(argv[3]);
  prefix = argv[4];
  if (total <= 0 || conc <= 0) return 2;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) return fprintf(stderr, "dns_corio: loop: %s\n", corio_strerror(rc)), 1;
  /* Only the benchmark's dnsmasq: never the machine's resolver. */
  ro.servers = argv[1];
  ro.timeout_s = 2;
  ro.tries = 2;
  rc = corio_resolver_configure(loop, &ro);
  if (rc < 0) {
    fprintf(stderr, "dns_corio: resolver %s: %s\n", argv[1], corio_strerror(rc));
    corio_loop_close(loop);
    return 1;
  }
  c0 = cpu_s();
  t0 = now();
  for (i = 0; i < conc && i < total; i++) start_one();
  corio_loop_run_forever(loop);
  t1 = now();
  c1 = cpu_s();
  corio_loop_get_stats(loop, &st);
  printf("# corio: %ld lookups, %ld in flight, %.3f s, %ld failed, %ld wrong answers; "
         "%.2f io_uring_enter and %.2f iterations per lookup, %.2f us CPU per lookup\n",
         finished, conc, t1 - t0, failed, wrong, (double)st.enters / (double)total,
         (double)st.iterations / (double)total, (c1 - c0) * 1e6 / (double)total);
  if (!failed && !wrong) {
    printf("RESULT name=dns_lookups impl=corio value=%.1f unit=ops/s\n", (double)total / (t1 - t0));
    printf("RESULT name=dns_cpu impl=corio value=%.3f unit=us/lookup\n",
           (c1 - c0) * 1e6 / (double)total);
  }
  rc = corio_loop_close(loop);
  if (rc < 0) fprintf(stderr, "dns_corio: loop_close: %s\n", corio_strerror(rc));
  return failed || wrong || rc < 0;
}
