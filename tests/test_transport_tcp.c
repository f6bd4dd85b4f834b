/* Stream transports at the protocol level: echo over TCP (v4, v6) and Unix sockets, refused
 * connects, half-close, abort, flow control, many connections. Loopback only. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <liburing.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(tcp, .init = setup, .timeout = 30);

static void drain(void)
{
  int i;
  for (i = 0; i < 100 && corio_loop_run_once(loop, 0.01) > 0; i++) {
  }
}

/* ---- echo server protocol ---- */
static int srv_made, srv_lost, srv_eof;
static void echo_made(corio_transport *tr, void *user)
{
  (void)tr;
  (void)user;
  srv_made++;
}
static void echo_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  cr_assert_eq(corio_transport_write(tr, d, n), 0);
}
static int echo_eof(corio_transport *tr)
{
  (void)tr;
  srv_eof++;
  return 0; /* close */
}
static void echo_lost(corio_transport *tr, int err)
{
  (void)tr;
  (void)err;
  srv_lost++;
}
static const corio_protocol echo_proto = {echo_made, echo_data, echo_eof, echo_lost, NULL, NULL};

/* ---- client protocol: sends `total` patterned bytes, checks the echo, then closes ---- */
struct client {
  size_t total, got;
  int bad, done, lost, lost_err;
};
static uint8_t pattern(size_t i, struct client *c)
{
  return (uint8_t)((i * 131 + (uintptr_t)c / 64) & 0xff);
}
static void cli_made(corio_transport *tr, void *user)
{
  struct client *c = user;
  uint8_t buf[1000];
  size_t off = 0, i, n;
  corio_transport_set_context(tr, c);
  while (off < c->total) {
    n = c->total - off < sizeof(buf) ? c->total - off : sizeof(buf);
    for (i = 0; i < n; i++) buf[i] = pattern(off + i, c);
    cr_assert_eq(corio_transport_write(tr, buf, n), 0);
    off += n;
  }
}
static void cli_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  struct client *c = corio_transport_get_context(tr);
  size_t i;
  for (i = 0; i < n; i++)
    if (d[i] != pattern(c->got + i, c)) c->bad++;
  c->got += n;
  if (c->got == c->total) {
    c->done = 1;
    corio_transport_close(tr);
  }
}
static void cli_lost(corio_transport *tr, int err)
{
  struct client *c = corio_transport_get_context(tr);
  c->lost++;
  c->lost_err = err;
}
static const corio_protocol cli_proto = {cli_made, cli_data, NULL, cli_lost, NULL, NULL};

static void run_clients(struct client *cs, size_t n)
{
  size_t i, done;
  int iter = 0;
  for (;;) {
    done = 0;
    for (i = 0; i < n; i++) done += cs[i].lost;
    if (done == n) break;
    cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
    cr_assert_lt(++iter, 1000000);
  }
  for (i = 0; i < n; i++) {
    cr_assert_eq(cs[i].got, cs[i].total, "client %zu got %zu of %zu", i, cs[i].got, cs[i].total);
    cr_assert_eq(cs[i].bad, 0);
    cr_assert_eq(cs[i].lost_err, 0);
  }
}

static void close_server(corio_server *srv)
{
  corio_future *f = corio_server_close(srv, 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0);
  corio_future_unref(f);
  drain();
}

static void echo_roundtrip(const char *host)
{
  corio_server *srv;
  struct client c = {.total = 1 << 20};
  corio_future *cf;
  srv_made = srv_lost = 0;
  cr_assert_eq(corio_server_listen_tcp(loop, host, 0, &echo_proto, NULL, NULL, &srv), 0);
  cr_assert_gt(corio_server_port(srv), 0);
  cf = corio_connect_tcp(loop, host, corio_server_port(srv), &cli_proto, &c);
  cr_assert_eq(corio_loop_run_until_complete(loop, cf), 0);
  cr_assert_eq(corio_future_error(cf), 0);
  cr_assert_not_null(corio_future_ptr(cf));
  corio_future_unref(cf);
  run_clients(&c, 1);
  cr_assert_eq(c.done, 1);
  close_server(srv);
  cr_assert_eq(srv_made, 1);
  cr_assert_eq(srv_lost, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(tcp, echo_1mib_ipv4)
{
  echo_roundtrip("127.0.0.1");
}

Test(tcp, echo_1mib_ipv6)
{
  int s = socket(AF_INET6, SOCK_STREAM, 0);
  if (s < 0) cr_skip_test("no IPv6");
  close(s);
  echo_roundtrip("::1");
}

Test(tcp, echo_unix)
{
  corio_server *srv;
  struct client c = {.total = 100000};
  corio_future *cf;
  char path[64];
  snprintf(path, sizeof(path), "/tmp/corio-test-%d.sock", (int)getpid());
  cr_assert_eq(corio_server_listen_unix(loop, path, &echo_proto, NULL, NULL, &srv), 0);
  cf = corio_connect_unix(loop, path, &cli_proto, &c);
  cr_assert_eq(corio_loop_run_until_complete(loop, cf), 0);
  cr_assert_eq(corio_future_error(cf), 0);
  corio_future_unref(cf);
  run_clients(&c, 1);
  close_server(srv);
  unlink(path);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Does this kernel do batched waits (min-wait, Linux 6.12+)? Asked of a ring of our own. */
static int kernel_batches(void)
{
  struct io_uring ring;
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  if (io_uring_queue_init_params(4, &ring, &p) < 0) return 0;
  io_uring_queue_exit(&ring);
  return !!(p.features & (1U << 15)); /* IORING_FEAT_MIN_TIMEOUT */
}

/* Many connections talking at once: completions come in bursts, and the loop's blocking waits
 * gather them in batches (Linux 6.12+); with batch_wait_us < 0 they never do. Every byte is
 * checked either way. */
static void echo_many_batched(int batch_wait_us, size_t n)
{
  corio_loop_opts o = {.batch_wait_us = batch_wait_us};
  corio_server *srv;
  struct client *cs = calloc(n, sizeof(*cs));
  corio_loop_stats st;
  size_t i;
  cr_assert_eq(corio_loop_close(loop), 0);
  cr_assert_eq(corio_loop_new(&loop, &o), 0);
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &echo_proto, NULL, NULL, &srv), 0);
  for (i = 0; i < n; i++) {
    corio_future *f;
    cs[i].total = 20000 + i * 10;
    f = corio_connect_tcp(loop, "127.0.0.1", corio_server_port(srv), &cli_proto, &cs[i]);
    cr_assert_not_null(f);
    corio_future_unref(f);
  }
  run_clients(cs, n);
  close_server(srv);
  free(cs);
  corio_loop_get_stats(loop, &st);
  if (batch_wait_us < 0 || !kernel_batches())
    cr_assert_eq(st.batched_waits, 0);
  else
    cr_assert_gt(st.batched_waits, 0, "no batched wait in %llu enters",
                 (unsigned long long)st.enters);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(tcp, bursts_are_gathered_in_batched_waits)
{
  echo_many_batched(0, 200);
}

Test(tcp, batched_waits_can_be_turned_off)
{
  echo_many_batched(-1, 200);
}

Test(tcp, many_connections)
{
  enum { N = 1000 };
  struct rlimit rl;
  corio_server *srv;
  struct client *cs = calloc(N, sizeof(*cs));
  size_t i;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * N + 100) cr_skip_test("RLIMIT_NOFILE too low");
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &echo_proto, NULL, NULL, &srv), 0);
  for (i = 0; i < N; i++) {
    corio_future *f;
    cs[i].total = 1000 + i;
    f = corio_connect_tcp(loop, "127.0.0.1", corio_server_port(srv), &cli_proto, &cs[i]);
    cr_assert_not_null(f);
    corio_future_unref(f); /* the connect goes on without us */
  }
  run_clients(cs, N);
  close_server(srv);
  free(cs);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(tcp, connection_refused)
{
  corio_server *srv;
  corio_future *cf;
  uint16_t port;
  struct client c = {0};
  /* a port that was just free */
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &echo_proto, NULL, NULL, &srv), 0);
  port = corio_server_port(srv);
  close_server(srv);
  cf = corio_connect_tcp(loop, "127.0.0.1", port, &cli_proto, &c);
  cr_assert_eq(corio_loop_run_until_complete(loop, cf), 0);
  cr_assert_eq(corio_future_error(cf), -ECONNREFUSED);
  corio_future_unref(cf);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(tcp, bad_input)
{
  corio_server *srv;
  corio_future *f;
  cr_assert_eq(corio_server_listen_tcp(loop, "not-an-ip", 0, &echo_proto, NULL, NULL, &srv),
               -EINVAL);
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, NULL, NULL, NULL, &srv), -EINVAL);
  cr_assert_eq(corio_server_listen_unix(loop, "", &echo_proto, NULL, NULL, &srv), -EINVAL);
  f = corio_connect_tcp(loop, "example.invalid", 80, &cli_proto, NULL);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  cr_assert_eq(corio_transport_write(NULL, "x", 1), -EINVAL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A raw peer that connects, sends, half-closes and reads the echo: eof_received on the server
 * side may keep the transport open for writing. */
static int halfclose_eof(corio_transport *tr)
{
  srv_eof++;
  corio_transport_write(tr, "bye", 3);
  corio_transport_close(tr);
  return 1;
}
static const corio_protocol halfclose_proto = {echo_made, echo_data, halfclose_eof,
                                               echo_lost, NULL,      NULL};

static int raw_connect(uint16_t port)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  int s = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
  return s;
}

static int raw_connect_rcvbuf(uint16_t port, int rcvbuf)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  int s = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
  cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
  return s;
}

Test(tcp, half_close)
{
  corio_server *srv;
  char buf[64];
  ssize_t n, got = 0;
  int s;
  struct pollfd p;
  srv_eof = srv_lost = 0;
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &halfclose_proto, NULL, NULL, &srv),
               0);
  s = raw_connect(corio_server_port(srv));
  cr_assert_eq(write(s, "hello", 5), 5);
  shutdown(s, SHUT_WR);
  for (;;) {
    corio_loop_run_once(loop, 0.01);
    p.fd = s;
    p.events = POLLIN;
    if (poll(&p, 1, 0) == 1) {
      n = read(s, buf + got, sizeof(buf) - (size_t)got);
      if (n <= 0) break;
      got += n;
    }
  }
  cr_assert_eq(got, 8);
  cr_assert_eq(memcmp(buf, "hellobye", 8), 0);
  cr_assert_eq(srv_eof, 1);
  close(s);
  close_server(srv);
  cr_assert_eq(srv_lost, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Flow control: a peer that does not read makes the server pause; reading resumes it. */
static int paused, resumed;
static corio_transport *flood_tr;
static void flood_made(corio_transport *tr, void *user)
{
  static uint8_t chunk[65536];
  int i;
  int small = 64 * 1024;
  (void)user;
  flood_tr = tr;
  /* Small kernel buffers on both sides, so 4 MiB can never all leave the transport's buffer
   * while the peer does not read (loopback autotuning would otherwise take megabytes). */
  setsockopt(corio_transport_fd(tr), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  corio_transport_set_write_buffer_limits(tr, 256 * 1024, 64 * 1024);
  for (i = 0; i < 64; i++) corio_transport_write(tr, chunk, sizeof(chunk)); /* 4 MiB */
}
static void flood_pause(corio_transport *tr)
{
  (void)tr;
  paused++;
}
static void flood_resume(corio_transport *tr)
{
  (void)tr;
  resumed++;
  corio_transport_close(tr);
}
static const corio_protocol flood_proto = {flood_made, echo_data,   NULL,
                                           echo_lost,  flood_pause, flood_resume};

Test(tcp, flow_control_pause_resume)
{
  corio_server *srv;
  char buf[65536];
  size_t total = 0;
  ssize_t n;
  int s, i;
  paused = resumed = srv_lost = 0;
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &flood_proto, NULL, NULL, &srv), 0);
  s = raw_connect_rcvbuf(corio_server_port(srv), 64 * 1024);
  for (i = 0; i < 20; i++) corio_loop_run_once(loop, 0.01);
  cr_assert_eq(paused, 1);
  cr_assert_eq(resumed, 0);
  cr_assert_gt(corio_transport_get_write_buffer_size(flood_tr), 256 * 1024);
  while (total < 64u * 65536) {
    corio_loop_run_once(loop, 0);
    n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) total += (size_t)n;
    if (n == 0) break;
  }
  cr_assert_eq(total, 64u * 65536, "every byte arrives");
  cr_assert_eq(resumed, 1);
  close(s);
  close_server(srv);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Abort drops unsent data and reports -ECONNABORTED; a peer reset reports an error. */
static int abort_err;
static void abort_made(corio_transport *tr, void *user)
{
  (void)user;
  corio_transport_write(tr, "x", 1);
  corio_transport_abort(tr);
  cr_assert_eq(corio_transport_write(tr, "y", 1), -ENOTCONN);
}
static void abort_lost(corio_transport *tr, int err)
{
  (void)tr;
  abort_err = err;
  srv_lost++;
}
static const corio_protocol abort_proto = {abort_made, echo_data, NULL, abort_lost, NULL, NULL};

Test(tcp, abort)
{
  corio_server *srv;
  int s, i;
  srv_lost = 0;
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &abort_proto, NULL, NULL, &srv), 0);
  s = raw_connect(corio_server_port(srv));
  for (i = 0; i < 50 && !srv_lost; i++) corio_loop_run_once(loop, 0.01);
  cr_assert_eq(srv_lost, 1);
  cr_assert_eq(abort_err, -ECONNABORTED);
  close(s);
  close_server(srv);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static int reset_err;
static void reset_lost(corio_transport *tr, int err)
{
  (void)tr;
  reset_err = err;
  srv_lost++;
}
static const corio_protocol reset_proto = {NULL, echo_data, NULL, reset_lost, NULL, NULL};

Test(tcp, peer_reset)
{
  corio_server *srv;
  struct linger lg = {1, 0};
  int s, i;
  srv_lost = 0;
  reset_err = 0;
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &reset_proto, NULL, NULL, &srv), 0);
  s = raw_connect(corio_server_port(srv));
  for (i = 0; i < 5; i++) corio_loop_run_once(loop, 0.01);
  setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  close(s); /* RST */
  for (i = 0; i < 100 && !srv_lost; i++) corio_loop_run_once(loop, 0.01);
  cr_assert_eq(srv_lost, 1);
  cr_assert(reset_err == -ECONNRESET || reset_err == 0, "err=%d", reset_err);
  close_server(srv);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* EMFILE on accept: the server keeps serving once descriptors are free again. */
static int emfile_logged;
static void exc(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)arg;
  if (ctx->error == -EMFILE) emfile_logged++;
}

Test(tcp, accept_survives_emfile)
{
  corio_server *srv;
  struct rlimit rl;
  int fill[4096], nfill = 0, s1, s2, i, fd;
  struct client c = {.total = 1000};
  corio_future *cf;
  srv_made = 0;
  corio_loop_set_exception_handler(loop, exc, NULL);
  /* io_uring reads RLIMIT_NOFILE when the accept is prepared: lower it before listening. */
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = 256;
  setrlimit(RLIMIT_NOFILE, &rl);
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &echo_proto, NULL, NULL, &srv), 0);
  corio_loop_run_once(loop, 0);
  s1 = raw_connect(corio_server_port(srv));
  while (nfill < 4096 && (fd = open("/dev/null", O_RDONLY)) >= 0) fill[nfill++] = fd; /* exhaust */
  s2 = -1;
  for (i = 0; i < 30; i++) corio_loop_run_once(loop, 0.01);
  cr_assert_geq(emfile_logged, 1);
  cr_assert_eq(emfile_logged, 1, "logged once");
  for (i = 0; i < nfill; i++) close(fill[i]);
  for (i = 0; i < 50 && srv_made < 1; i++) corio_loop_run_once(loop, 0.02);
  cr_assert_eq(srv_made, 1, "the pending connection is accepted once fds are free");
  cf = corio_connect_tcp(loop, "127.0.0.1", corio_server_port(srv), &cli_proto, &c);
  corio_future_unref(cf);
  run_clients(&c, 1);
  close(s1);
  (void)s2;
  close_server(srv);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Unix stream servers: a regular file at the path is never removed, a live server's socket is
 * not taken over, a stale socket file is replaced; abstract names ("@name") work. */
Test(tcp, unix_server_path_rules_and_abstract_names)
{
  corio_server *srv, *srv2;
  struct client c = {.total = 5000};
  corio_future *cf;
  char path[64], abs_name[64];
  FILE *f;
  int fd;
  struct sockaddr_un un;
  socklen_t len;
  snprintf(path, sizeof(path), "/tmp/corio-test-rules-%d.sock", (int)getpid());
  /* a regular file: refused, and still there */
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("precious", f);
  fclose(f);
  cr_assert_eq(corio_server_listen_unix(loop, path, &echo_proto, NULL, NULL, &srv), -EADDRINUSE);
  cr_assert_eq(access(path, F_OK), 0, "a regular file was removed");
  unlink(path);
  /* a stale socket file (bound, then its socket closed): replaced */
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  cr_assert_eq(corio_unix_sockaddr(path, &un, &len), 0);
  cr_assert_eq(bind(fd, (struct sockaddr *)&un, len), 0);
  close(fd);
  cr_assert_eq(corio_server_listen_unix(loop, path, &echo_proto, NULL, NULL, &srv), 0);
  /* a live server: not taken over */
  cr_assert_eq(corio_server_listen_unix(loop, path, &echo_proto, NULL, NULL, &srv2), -EADDRINUSE);
  close_server(srv);
  unlink(path);
  /* abstract namespace */
  snprintf(abs_name, sizeof(abs_name), "@corio-test-abstract-%d", (int)getpid());
  cr_assert_eq(corio_server_listen_unix(loop, abs_name, &echo_proto, NULL, NULL, &srv), 0);
  cf = corio_connect_unix(loop, abs_name, &cli_proto, &c);
  cr_assert_eq(corio_loop_run_until_complete(loop, cf), 0);
  cr_assert_eq(corio_future_error(cf), 0);
  corio_future_unref(cf);
  run_clients(&c, 1);
  close_server(srv);
  cr_assert_eq(corio_loop_close(loop), 0);
}
