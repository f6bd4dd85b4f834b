/* Echo load generator: keeps N connections, each with one message in flight, and verifies every
 * echoed byte (a pattern from the connection id and the message number).
 *   echo_load <port> <conns> <msg_bytes> <seconds> <impl-label> <scenario-label>
 * Prints RESULT lines: requests/s, and the median round trip in us. Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd, id;
  uint64_t seq;
  size_t sent, got;
  double t0;
};

static size_t msg;
static uint8_t *tx, *rx;
static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void fill(uint8_t *b, struct conn *c)
{
  size_t i;
  for (i = 0; i < msg; i++) b[i] = (uint8_t)(c->id * 7 + c->seq * 13 + i);
}
static int cmpd(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  int port, nconn, ep, i, n, k;
  double secs, start, end, *lat = NULL;
  size_t nlat = 0, caplat = 1 << 20;
  long done = 0, bad = 0;
  struct conn *cs;
  struct epoll_event ev, evs[256];
  struct sockaddr_in a = {0};
  struct rlimit rl;
  if (argc < 7) return fprintf(stderr, "usage\n"), 2;
  port = atoi(argv[1]);
  nconn = atoi(argv[2]);
  msg = (size_t)atol(argv[3]);
  secs = atof(argv[4]);
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  tx = malloc(msg);
  rx = malloc(msg);
  lat = malloc(caplat * sizeof(double));
  cs = calloc((size_t)nconn, sizeof(*cs));
  ep = epoll_create1(0);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (i = 0; i < nconn; i++) {
    int one = 1;
    cs[i].id = i;
    cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cs[i].fd, (struct sockaddr *)&a, sizeof(a)) < 0) return perror("connect"), 1;
    setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
    ev.events = EPOLLIN;
    ev.data.ptr = &cs[i];
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  start = now();
  end = start + secs;
  for (i = 0; i < nconn; i++) { /* one message in flight per connection */
    fill(tx, &cs[i]);
    cs[i].t0 = now();
    if (write(cs[i].fd, tx, msg) != (ssize_t)msg) return perror("write"), 1;
  }
  while (now() < end) {
    n = epoll_wait(ep, evs, 256, 100);
    for (k = 0; k < n; k++) {
      struct conn *c = evs[k].data.ptr;
      ssize_t r = read(c->fd, rx + c->got, msg - c->got);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "connection %d closed\n", c->id);
        return 1;
      }
      c->got += (size_t)r;
      if (c->got < msg) continue;
      fill(tx, c);
      if (memcmp(tx, rx, msg)) bad++;
      if (nlat < caplat) lat[nlat++] = (now() - c->t0) * 1e6;
      done++;
      c->got = 0;
      c->seq++;
      fill(tx, c);
      c->t0 = now();
      if (write(c->fd, tx, msg) != (ssize_t)msg) return perror("write"), 1;
    }
  }
  secs = now() - start;
  qsort(lat, nlat, sizeof(double), cmpd);
  printf("RESULT name=%s impl=%s value=%.6g unit=req/s\n", argv[6], argv[5], done / secs);
  printf("RESULT name=%s_rtt impl=%s value=%.6g unit=us\n", argv[6], argv[5],
         nlat ? lat[nlat / 2] : 0.0);
  if (bad) fprintf(stderr, "echo_load: %ld corrupted echoes\n", bad);
  printf("# %s %s: %ld echoes, %ld bad\n", argv[5], argv[6], done, bad);
  return bad != 0;
}
