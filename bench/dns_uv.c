/* DNS lookups/s with libuv's uv_getaddrinfo (glibc getaddrinfo in libuv's thread pool), the
 * peer of dns_corio.c in bench/dns_run.sh.
 *   dns_uv <lookups> <in-flight> <name-prefix> <expected IPv4>
 * glibc reads /etc/resolv.conf: dns_run.sh runs this in a private mount namespace where it names
 * the benchmark's dnsmasq. Same names, hints, concurrency and checks as dns_corio; the thread
 * pool has UV_THREADPOOL_SIZE threads (libuv's default: 4). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

static uv_loop_t *loop;
static long total, started, finished, failed, wrong;
static const char *prefix;
static struct in_addr want;
static struct addrinfo hints;

static void on_done(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

/* User + system CPU seconds of the whole process, the pool threads included. */
static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void start_one(uv_getaddrinfo_t *req)
{
  char name[256];
  int rc;
  snprintf(name, sizeof(name), "%s%ld.bench.test", prefix, started++);
  rc = uv_getaddrinfo(loop, req, on_done, name, NULL, &hints);
  if (rc < 0) {
    fprintf(stderr, "dns_uv: uv_getaddrinfo: %s\n", uv_strerror(rc));
    exit(1);
  }
}

static void on_done(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  if (status < 0) {
    if (failed++ < 5) fprintf(stderr, "dns_uv: lookup failed: %s\n", uv_strerror(status));
  } else if (!res || res->ai_family != AF_INET ||
             ((const struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr != want.s_addr) {
    wrong++;
  }
  uv_freeaddrinfo(res);
  finished++;
  if (started < total) start_one(req); /* the request is free again once its callback runs */
}

int main(int argc, char **argv)
{
  uv_getaddrinfo_t *reqs;
  long conc, i;
  uint64_t t0, t1;
  double c0, c1;
  const char *pool = getenv("UV_THREADPOOL_SIZE");
  if (argc != 5 || inet_pton(AF_INET, argv[4], &want) != 1) {
    fprintf(stderr, "usage: dns_uv <lookups> <in-flight> <prefix> <ipv4>\n");
    return 2;
  }
  total = atol(argv[1]);
  conc = atol(argv[2]);
  prefix = argv[3];
  if (total <= 0 || conc <= 0) return 2;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  loop = uv_default_loop();
  reqs = calloc((size_t)conc, sizeof(*reqs));
  if (!reqs) return 1;
  c0 = cpu_s();
  t0 = uv_hrtime();
  for (i = 0; i < conc && i < total; i++) start_one(&reqs[i]);
  uv_run(loop, UV_RUN_DEFAULT);
  t1 = uv_hrtime();
  c1 = cpu_s();
  printf("# libuv: %ld lookups, %ld in flight, %.3f s, %ld failed, %ld wrong answers; "
         "thread pool %s, %.2f us CPU per lookup\n",
         finished, conc, (double)(t1 - t0) / 1e9, failed, wrong, pool ? pool : "4 (default)",
         (c1 - c0) * 1e6 / (double)total);
  if (!failed && !wrong) {
    printf("RESULT name=dns_lookups impl=libuv value=%.1f unit=ops/s\n",
           (double)total / ((double)(t1 - t0) / 1e9));
    printf("RESULT name=dns_cpu impl=libuv value=%.3f unit=us/lookup\n",
           (c1 - c0) * 1e6 / (double)total);
  }
  free(reqs);
  uv_loop_close(loop);
  return failed || wrong;
}
