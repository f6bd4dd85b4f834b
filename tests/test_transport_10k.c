/* 10,000 concurrent TCP connections through a corio echo server, every byte checked. The clients
 * are a second process (forked before any loop exists, with a corio loop of its own), so each side
 * needs ~10k fds; the test raises RLIMIT_NOFILE (root may raise the hard limit too). All the
 * connections are open at once: no client sends before every client is connected, and the server
 * records its peak of simultaneous connections. Loopback only. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <corio.h>

enum { N = 10000, MAX_CONNECTING = 256 };

static int raise_nofile(rlim_t want)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
  if (rl.rlim_cur >= want) return 0;
  if (rl.rlim_max < want) {
    struct rlimit up = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) return 0; /* root (CAP_SYS_RESOURCE) */
  }
  rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
  return rl.rlim_cur >= want ? 0 : -EMFILE;
}

/* ---------------- the client process ---------------- */
struct cli {
  corio_transport *tr;
  size_t total, got;
  int bad, lost, lost_err;
};
static struct cli *clis;
static corio_loop *cloop;
static size_t connected, started, finished, failed_connects, echoed;
static size_t progress(void)
{
  return connected + finished + failed_connects + echoed;
}
static uint16_t port;

static uint8_t pattern(size_t conn, size_t i)
{
  return (uint8_t)((i * 131 + conn * 7 + (i >> 8)) & 0xff);
}

static void send_all(struct cli *c)
{
  uint8_t buf[4096];
  size_t idx = (size_t)(c - clis), off = 0, i, n;
  while (off < c->total) {
    n = c->total - off < sizeof(buf) ? c->total - off : sizeof(buf);
    for (i = 0; i < n; i++) buf[i] = pattern(idx, off + i);
    if (corio_transport_write(c->tr, buf, n) < 0) c->bad++;
    off += n;
  }
}

static void cli_made(corio_transport *tr, void *user)
{
  struct cli *c = user;
  size_t i;
  c->tr = tr;
  corio_transport_set_context(tr, c);
  if (++connected == N) /* everybody is connected: now all of them talk at once */
    for (i = 0; i < N; i++) send_all(&clis[i]);
}
static void cli_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  struct cli *c = corio_transport_get_context(tr);
  size_t i, idx = (size_t)(c - clis);
  for (i = 0; i < n; i++)
    if (d[i] != pattern(idx, c->got + i)) c->bad++;
  c->got += n;
  echoed += n;
  if (c->got >= c->total) corio_transport_close(tr);
}
static void cli_lost(corio_transport *tr, int err)
{
  struct cli *c = corio_transport_get_context(tr);
  c->lost = 1;
  c->lost_err = err;
  finished++;
}
static const corio_protocol cli_proto = {cli_made, cli_data, NULL, cli_lost, NULL, NULL};

static void connect_more(void);
static void connect_done(corio_future *f, void *arg)
{
  (void)arg;
  if (corio_future_error(f) < 0) {
    failed_connects++;
    fprintf(stderr, "client: connect failed: %s\n", corio_future_error_message(f));
  }
  corio_future_unref(f);
  connect_more();
}
/* At most MAX_CONNECTING handshakes at a time, so the listen backlog never overflows (an
 * overflow costs a 1 s SYN retransmit, not an error); established ones stay open. */
static void connect_more(void)
{
  while (started < N && started - connected - failed_connects < MAX_CONNECTING) {
    struct cli *c = &clis[started];
    corio_future *f;
    c->total = 1000 + (started * 37) % 3000;
    started++;
    f = corio_connect_tcp(cloop, "127.0.0.1", port, &cli_proto, c);
    if (!f || corio_future_add_done_callback(f, connect_done, NULL) < 0) {
      fprintf(stderr, "client: cannot start a connect\n");
      exit(3);
    }
  }
}

static int client_main(void)
{
  size_t i, bad = 0, short_ = 0, errs = 0, last;
  double t_last;
  clis = calloc(N, sizeof(*clis));
  if (!clis || corio_loop_new(&cloop, NULL) < 0) return 2;
  connect_more();
  /* No progress (a connection, a byte, a close) for 20 s means a byte was lost: say so rather
   * than wait for the test's timeout. */
  last = progress();
  t_last = corio_loop_time(cloop);
  while (finished + failed_connects < N) {
    if (corio_loop_run_once(cloop, 1.0) < 0) return 4;
    if (progress() != last) {
      last = progress();
      t_last = corio_loop_time(cloop);
    } else if (corio_loop_time(cloop) - t_last > 20.0) {
      fprintf(stderr, "client: stuck: %zu connected, %zu finished, %zu bytes echoed\n", connected,
              finished, echoed);
      return 5;
    }
  }
  for (i = 0; i < N; i++) {
    bad += clis[i].bad != 0;
    short_ += clis[i].got != clis[i].total;
    errs += clis[i].lost_err != 0;
  }
  printf("client: %zu connected, %zu failed connects, %zu with bad bytes, %zu short, %zu errors\n",
         connected, failed_connects, bad, short_, errs);
  free(clis);
  while (corio_loop_run_once(cloop, 0) > 0) {
  }
  if (corio_loop_close(cloop) < 0) return 6;
  return (connected == N && !failed_connects && !bad && !short_ && !errs) ? 0 : 1;
}

/* ---------------- the server (this process) ---------------- */
static size_t srv_open, srv_peak, srv_made_n, srv_lost_n;
static void srv_made(corio_transport *tr, void *user)
{
  (void)tr;
  (void)user;
  srv_made_n++;
  if (++srv_open > srv_peak) srv_peak = srv_open;
}
static void srv_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  cr_assert_eq(corio_transport_write(tr, d, n), 0);
}
static void srv_lost(corio_transport *tr, int err)
{
  (void)tr;
  cr_assert_eq(err, 0, "server side lost a connection: %s", corio_strerror(err));
  srv_open--;
  srv_lost_n++;
}
static const corio_protocol srv_proto = {srv_made, srv_data, NULL, srv_lost, NULL, NULL};

Test(tcp10k, ten_thousand_concurrent_echo_connections, .timeout = 240)
{
  corio_loop *loop;
  corio_server *srv;
  corio_future *f;
  pid_t pid;
  int st = 0, iter = 0;
  if (raise_nofile(N + 512) < 0) cr_skip_test("cannot raise RLIMIT_NOFILE to %d", N + 512);
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  cr_assert_eq(corio_server_listen_tcp(loop, "127.0.0.1", 0, &srv_proto, NULL, NULL, &srv), 0);
  port = corio_server_port(srv);
  fflush(NULL);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    /* The child must not touch the parent's ring: it only closes its inherited fd at exit. */
    _exit(client_main());
  }
  while (waitpid(pid, &st, WNOHANG) == 0) {
    cr_assert_geq(corio_loop_run_once(loop, 0.05), 0);
    if (++iter > 4000000) {
      kill(pid, SIGKILL);
      cr_assert_fail("client process stuck");
    }
  }
  /* the server sees the last closes after the client exited */
  while (srv_lost_n < srv_made_n && ++iter < 4000000) corio_loop_run_once(loop, 0.05);
  cr_assert(WIFEXITED(st), "client died: status %d", st);
  cr_assert_eq(WEXITSTATUS(st), 0, "client failed (status %d)", WEXITSTATUS(st));
  cr_assert_eq(srv_made_n, N);
  cr_assert_eq(srv_lost_n, N);
  cr_assert_eq(srv_peak, N, "peak of simultaneous connections %zu", srv_peak);
  f = corio_server_close(srv, 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  corio_future_unref(f);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}
