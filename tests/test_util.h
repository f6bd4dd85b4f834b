/* Fixtures shared by the test programs: a free loopback UDP port, a real dnsmasq on it, and an
 * allocator that fails on request and counts live blocks. Header-only (each test program is
 * one translation unit). */
#ifndef CORIO_TEST_UTIL_H
#define CORIO_TEST_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <corio.h>

/* A loopback UDP port free right now; @p keep_fd (may be NULL) keeps the socket bound (a server
 * that never answers). */
static inline int test_free_udp_port(int *keep_fd)
{
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t l = sizeof(a);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&a, sizeof(a));
  getsockname(fd, (struct sockaddr *)&a, &l);
  if (keep_fd)
    *keep_fd = fd;
  else
    close(fd);
  return ntohs(a.sin_port);
}

/* 1 once the DNS server on 127.0.0.1:@p port answers a query (any answer: it is listening); -1
 * if process @p pid exited first (reaped here); 0 if nothing answered within 10 s. */
static inline int test_dns_server_answers(int port, pid_t pid)
{
  /* id 0x7e57, RD, one question: probe.invalid IN A */
  static const unsigned char q[] = {0x7e, 0x57, 1,   0,   0,   1,   0,   0, 0,   0,   0,
                                    0,    5,    'p', 'r', 'o', 'b', 'e', 7, 'i', 'n', 'v',
                                    'a',  'l',  'i', 'd', 0,   0,   1,   0, 1};
  struct sockaddr_in a = {.sin_family = AF_INET};
  struct timeval tv = {0, 100000};
  unsigned char r[512];
  int fd, i, status, rc = 0;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 0;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
    close(fd);
    return 0;
  }
  for (i = 0; i < 100 && !rc; i++) { /* up to 100 ms a try */
    if (waitpid(pid, &status, WNOHANG) != 0) {
      rc = -1; /* it exited: it could not bind */
      break;
    }
    /* not bound yet: ECONNREFUSED at once (an ICMP error), or no answer; then try again */
    if (send(fd, q, sizeof(q), 0) == (ssize_t)sizeof(q) && recv(fd, r, sizeof(r), 0) >= 2 &&
        r[0] == q[0] && r[1] == q[1])
      rc = 1;
    else
      usleep(20000);
  }
  close(fd);
  return rc;
}

/* Start dnsmasq on 127.0.0.1 (no upstream, no hosts file) answering the given --address=
 * @p records (NULL-terminated). Returns its pid (stop it with kill + waitpid) and its port in
 * *@p port once it answers queries, or 0 if dnsmasq is not installed or would not start. The
 * port is probed free for UDP only and tests run in parallel: retried if dnsmasq cannot bind
 * (it exits). Not a fixed wait: a loaded machine may take longer than any to start it. */
static inline pid_t test_start_dnsmasq(int *port, const char *const *records)
{
  const char *argv[48];
  char portarg[32];
  int attempt, n, i;
  pid_t pid;
  if (access("/usr/sbin/dnsmasq", X_OK) != 0) return 0;
  for (attempt = 0; attempt < 10; attempt++) {
    *port = test_free_udp_port(NULL);
    snprintf(portarg, sizeof(portarg), "--port=%d", *port);
    n = 0;
    argv[n++] = "dnsmasq";
    argv[n++] = "--keep-in-foreground";
    argv[n++] = "--no-resolv";
    argv[n++] = "--no-hosts";
    argv[n++] = "--no-poll";
    argv[n++] = "--conf-file=/dev/null";
    argv[n++] = "--listen-address=127.0.0.1";
    argv[n++] = "--bind-interfaces";
    argv[n++] = portarg;
    argv[n++] = "--pid-file=";
    for (i = 0; records && records[i] && n < 47; i++) argv[n++] = records[i];
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
      execv("/usr/sbin/dnsmasq", (char *const *)argv);
      _exit(127);
    }
    if (pid < 0) return 0;
    switch (test_dns_server_answers(*port, pid)) {
    case 1:
      return pid;
    case 0: /* alive but silent: stop it, try another port */
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      break;
    default:
      break; /* exited (and reaped) */
    }
  }
  return 0;
}

/* The failing, counting allocator: install with corio_set_allocator(&test_alloc_counting). With
 * fail_at N, the Nth allocation fails (and every one after it when persistent). */
static struct {
  long count;   /* allocations asked for so far */
  long fail_at; /* 0: none fails */
  int persistent;
  long live, failed;
} A;

static inline int test_should_fail(void)
{
  A.count++;
  if (!A.fail_at || A.count < A.fail_at) return 0;
  if (A.count > A.fail_at && !A.persistent) return 0;
  A.failed++;
  return 1;
}
static inline void *test_t_malloc(size_t n, void *ctx)
{
  void *p;
  (void)ctx;
  if (test_should_fail()) return NULL;
  p = malloc(n);
  if (p) A.live++;
  return p;
}
static inline void *test_t_realloc(void *p, size_t n, void *ctx)
{
  void *q;
  (void)ctx;
  if (test_should_fail()) return NULL;
  q = realloc(p, n);
  if (q && !p) A.live++;
  return q;
}
static inline void test_t_free(void *p, void *ctx)
{
  (void)ctx;
  if (p) A.live--;
  free(p);
}
static const corio_allocator test_alloc_counting = {test_t_malloc, test_t_realloc, test_t_free,
                                                    NULL};

#endif
