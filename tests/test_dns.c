/* DNS through c-ares against a real dnsmasq on 127.0.0.1 (started and stopped by PID here), a
 * silent UDP server for timeouts, /etc/hosts, numeric hosts, per-lookup cancellation. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <corio.h>
#include "test_util.h"
#include "transport_impl.h"

static corio_loop *loop;
static pid_t dnsmasq_pid;
static int dns_port, silent_fd, silent_port;

static void start_dnsmasq(void)
{
  static const char *const records[] = {"--address=/corio.test/127.0.0.1",
                                        "--address=/v6.corio.test/::1",
                                        "--address=/nx.test/",
                                        "--address=/multi.corio.test/127.0.0.2",
                                        "--address=/multi.corio.test/127.0.0.3",
                                        "--address=/dual.corio.test/::1",
                                        "--address=/dual.corio.test/127.0.0.1",
                                        NULL};
  dnsmasq_pid = test_start_dnsmasq(&dns_port, records);
}

static void setup(void)
{
  corio_resolver_opts o = {0};
  char servers[64];
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  start_dnsmasq();
  silent_port = test_free_udp_port(&silent_fd); /* bound, never answers */
  if (dnsmasq_pid > 0) {
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", dns_port);
    o.servers = servers;
    o.timeout_s = 1;
    o.tries = 2;
    cr_assert_eq(corio_resolver_configure(loop, &o), 0);
  }
}
static void teardown(void)
{
  if (dnsmasq_pid > 0) {
    kill(dnsmasq_pid, SIGTERM);
    waitpid(dnsmasq_pid, NULL, 0);
  }
  close(silent_fd);
}
TestSuite(dns, .init = setup, .fini = teardown, .timeout = 30);

static void need_dnsmasq(void)
{
  if (dnsmasq_pid <= 0) cr_skip_test("dnsmasq (dnsmasq-base) not installed");
}

static void drain(void)
{
  while (corio_loop_run_once(loop, 0.01) > 0) {
  }
}

static const char *addr_str(const corio_addrinfo *a, char *buf, size_t n)
{
  if (a->family == AF_INET)
    return inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->addr)->sin_addr, buf, (socklen_t)n);
  return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->addr)->sin6_addr, buf,
                   (socklen_t)n);
}

static corio_future *lookup(const char *host, int family)
{
  struct addrinfo h = {0};
  corio_future *f;
  h.ai_family = family;
  f = corio_getaddrinfo(loop, host, "80", &h);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  return f;
}

Test(dns, resolves_through_dnsmasq)
{
  corio_future *f;
  const corio_addrinfo *a;
  char buf[64];
  need_dnsmasq();
  f = lookup("www.corio.test", AF_INET);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  a = corio_future_ptr(f);
  cr_assert_not_null(a);
  cr_assert_str_eq(addr_str(a, buf, sizeof(buf)), "127.0.0.1");
  cr_assert_eq(ntohs(((const struct sockaddr_in *)&a->addr)->sin_port), 80);
  corio_future_unref(f);
  f = lookup("v6.corio.test", AF_INET6);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_str_eq(addr_str(corio_future_ptr(f), buf, sizeof(buf)), "::1");
  corio_future_unref(f);
  f = lookup("multi.corio.test", AF_INET);
  a = corio_future_ptr(f);
  cr_assert_not_null(a);
  cr_assert_not_null(a->next, "two records");
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, nxdomain_is_a_clear_error)
{
  corio_future *f;
  need_dnsmasq();
  f = lookup("nope.nx.test", AF_INET);
  cr_assert_eq(corio_future_error(f), CORIO_E_DNS_NOTFOUND, "%s",
               corio_err_name(corio_future_error(f)));
  cr_assert_not_null(corio_future_error_message(f));
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, many_concurrent_lookups)
{
  enum { N = 200 };
  corio_future *fs[N], *g;
  char name[64];
  int i;
  need_dnsmasq();
  for (i = 0; i < N; i++) {
    snprintf(name, sizeof(name), "host%d.corio.test", i);
    fs[i] = corio_getaddrinfo(loop, name, NULL, NULL);
  }
  g = corio_gather(fs, N, 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, g), 0);
  cr_assert_eq(corio_future_error(g), 0);
  for (i = 0; i < N; i++) cr_assert_not_null(corio_future_ptr(corio_gather_child(g, (size_t)i)));
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void use_silent_server(double timeout)
{
  corio_resolver_opts o = {0};
  char servers[64];
  snprintf(servers, sizeof(servers), "127.0.0.1:%d", silent_port);
  o.servers = servers;
  o.timeout_s = timeout;
  o.tries = 1;
  cr_assert_eq(corio_resolver_configure(loop, &o), 0);
}

Test(dns, timeout_against_a_silent_server)
{
  corio_future *f;
  double t0;
  use_silent_server(0.2);
  t0 = corio_loop_time(loop);
  f = lookup("www.example.test", AF_INET);
  cr_assert_eq(corio_future_error(f), CORIO_E_DNS_TIMEOUT, "%s",
               corio_err_name(corio_future_error(f)));
  cr_assert_geq(corio_loop_time(loop) - t0, 0.19);
  cr_assert_lt(corio_loop_time(loop) - t0, 5.0);
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, cancel_one_lookup_leaves_the_other)
{
  corio_future *a, *b;
  use_silent_server(0.3);
  a = corio_getaddrinfo(loop, "a.example.test", NULL, NULL);
  b = corio_getaddrinfo(loop, "b.example.test", NULL, NULL);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_future_cancel(a), 1);
  cr_assert(corio_future_cancelled(a), "cancelled at once");
  cr_assert_eq(corio_loop_run_until_complete(loop, b), 0);
  cr_assert_eq(corio_future_error(b), CORIO_E_DNS_TIMEOUT, "the other lookup is unaffected");
  corio_future_unref(a);
  corio_future_unref(b);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, cancelled_lookup_does_not_keep_loop_alive)
{
  corio_future *a;
  use_silent_server(5);
  a = corio_getaddrinfo(loop, "slow.example.test", NULL, NULL);
  corio_loop_run_once(loop, 0);
  cr_assert_eq(corio_loop_close(loop), -EBUSY);
  corio_future_cancel(a);
  corio_future_unref(a);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, etc_hosts_and_numeric)
{
  corio_future *f;
  char buf[64];
  use_silent_server(0.2); /* proves no server is asked */
  f = lookup("localhost", AF_INET);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_str_eq(addr_str(corio_future_ptr(f), buf, sizeof(buf)), "127.0.0.1");
  corio_future_unref(f);
  f = lookup("192.0.2.7", AF_INET); /* numeric: answered without asking the (silent) server */
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_str_eq(addr_str(corio_future_ptr(f), buf, sizeof(buf)), "192.0.2.7");
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, getnameinfo_numeric)
{
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080)};
  corio_future *f;
  const corio_bytes *b;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  f = corio_getnameinfo(loop, (struct sockaddr *)&a, sizeof(a), NI_NUMERICHOST | NI_NUMERICSERV);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  b = corio_future_bytes(f);
  cr_assert_str_eq((const char *)b->data, "127.0.0.1");
  cr_assert_str_eq((const char *)b->data + strlen((const char *)b->data) + 1, "8080");
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, bad_input)
{
  corio_future *f = corio_getaddrinfo(loop, NULL, NULL, NULL);
  corio_resolver_opts o = {.servers = "not a server list"};
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  f = corio_getnameinfo(loop, NULL, 0, 0);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  cr_assert_eq(corio_resolver_configure(loop, &o), -EINVAL);
  cr_assert_eq(corio_resolver_configure(NULL, NULL), -EINVAL);
  cr_assert_str_eq(corio_err_name(corio_dns_error(4)), "CORIO_E_DNS_NOTFOUND");
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- connecting by name ---- */
static int made, lost;
static void he_made(corio_transport *tr, void *user)
{
  (void)tr;
  (void)user;
  made++;
}
static void he_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  (void)tr;
  (void)d;
  (void)n;
}
static void he_lost(corio_transport *tr, int err)
{
  (void)tr;
  (void)err;
  lost++;
}
static const corio_protocol he_proto = {he_made, he_data, NULL, he_lost, NULL, NULL};

static int listen_on(int family, const char *addr, int port, int backlog)
{
  struct sockaddr_storage ss = {0};
  socklen_t len;
  int fd = socket(family, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    inet_pton(AF_INET6, addr, &a->sin6_addr);
    len = sizeof(*a);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, addr, &a->sin_addr);
    len = sizeof(*a);
  }
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}
static int port_of(int fd)
{
  struct sockaddr_storage ss;
  socklen_t l = sizeof(ss);
  getsockname(fd, (struct sockaddr *)&ss, &l);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

Test(dns, connect_by_name)
{
  corio_future *f;
  int ls;
  need_dnsmasq();
  made = lost = 0;
  ls = listen_on(AF_INET, "127.0.0.1", 0, 16);
  f = corio_connect(loop, "www.corio.test", (uint16_t)port_of(ls), &he_proto, NULL, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_eq(made, 1);
  corio_transport_close(corio_future_ptr(f));
  corio_future_unref(f);
  f = corio_connect(loop, "nope.nx.test", 80, &he_proto, NULL, NULL);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), CORIO_E_DNS_NOTFOUND);
  corio_future_unref(f);
  drain();
  cr_assert_eq(lost, 1);
  close(ls);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, happy_eyeballs_falls_back_from_a_stalled_address)
{
  corio_future *f;
  corio_connect_opts o = {.happy_eyeballs_delay = 0.1};
  int v4, v6, filler, port;
  double t0;
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
  need_dnsmasq();
  made = lost = 0;
  v4 = listen_on(AF_INET, "127.0.0.1", 0, 16);
  port = port_of(v4);
  v6 = listen_on(AF_INET6, "::1", port, 0); /* backlog 0, never accepted: connects stall */
  if (v6 < 0) cr_skip_test("no IPv6 loopback");
  /* fill the backlog so the next SYN is dropped */
  filler = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  a6.sin6_port = htons((uint16_t)port);
  inet_pton(AF_INET6, "::1", &a6.sin6_addr);
  connect(filler, (struct sockaddr *)&a6, sizeof(a6));
  usleep(50000);
  t0 = corio_loop_time(loop);
  f = corio_connect(loop, "dual.corio.test", (uint16_t)port, &he_proto, NULL, &o);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_eq(((struct sockaddr *)&a6)->sa_family, AF_INET6);
  cr_assert_geq(corio_loop_time(loop) - t0, 0.09, "the IPv4 attempt waited for the delay");
  cr_assert_lt(corio_loop_time(loop) - t0, 2.0, "and did not wait for the stalled IPv6 one");
  cr_assert_eq(made, 1, "only the winner is started");
  corio_transport_close(corio_future_ptr(f));
  corio_future_unref(f);
  drain();
  cr_assert_eq(made, 1);
  cr_assert_eq(lost, 1);
  close(filler);
  close(v6);
  close(v4);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns, connect_cancelled_by_wait_for_timeout)
{
  corio_future *f;
  int v6, filler, port;
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
  need_dnsmasq();
  v6 = listen_on(AF_INET6, "::1", 0, 0);
  if (v6 < 0) cr_skip_test("no IPv6 loopback");
  port = port_of(v6);
  filler = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  a6.sin6_port = htons((uint16_t)port);
  inet_pton(AF_INET6, "::1", &a6.sin6_addr);
  connect(filler, (struct sockaddr *)&a6, sizeof(a6));
  usleep(50000);
  f = corio_wait_for(corio_connect(loop, "v6.corio.test", (uint16_t)port, &he_proto, NULL, NULL),
                     0.2);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), -ETIMEDOUT);
  corio_future_unref(f);
  drain();
  close(filler);
  close(v6);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Address literals never reach c-ares (1.18 would send them to the system resolver as names,
 * off loopback): with the default configuration they complete at once. */
Test(dns, numeric_hosts_never_reach_the_resolver)
{
  corio_loop *l2;
  corio_future *f;
  struct addrinfo h = {.ai_family = AF_INET6};
  char buf[64];
  cr_assert_eq(corio_loop_new(&l2, NULL), 0);
  f = corio_getaddrinfo(l2, "127.0.0.1", "http", NULL);
  cr_assert(corio_future_done(f), "done at once");
  cr_assert_str_eq(addr_str(corio_future_ptr(f), buf, sizeof(buf)), "127.0.0.1");
  cr_assert_eq(
      ntohs(((const struct sockaddr_in *)&((const corio_addrinfo *)corio_future_ptr(f))->addr)
                ->sin_port),
      80);
  corio_future_unref(f);
  f = corio_getaddrinfo(l2, "::1", "8080", NULL);
  cr_assert(corio_future_done(f));
  cr_assert_str_eq(addr_str(corio_future_ptr(f), buf, sizeof(buf)), "::1");
  corio_future_unref(f);
  f = corio_getaddrinfo(l2, "127.0.0.1", NULL, &h); /* family mismatch */
  cr_assert_eq(corio_future_error(f), CORIO_E_DNS_NODATA);
  corio_future_unref(f);
  f = corio_getaddrinfo(l2, "127.0.0.1", "no-such-service", NULL);
  cr_assert_eq(corio_future_error(f), CORIO_E_DNS_NONAME);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(l2), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Happy eyeballs' order (RFC 8305 section 4): families interleaved, starting with the family the
 * resolver sorted first, each family in the resolver's order; other families skipped. */
Test(dns, happy_eyeballs_order_starts_with_the_first_family)
{
  corio_addrinfo ai[7];
  const corio_addrinfo *out[16];
  int fams[7] = {AF_INET, AF_INET, AF_INET6, AF_UNIX, AF_INET, AF_INET6, AF_INET6};
  int want[6] = {0, 2, 1, 5, 4, 6}; /* v4 v6 v4 v6 v4 v6 */
  size_t i, n;
  memset(ai, 0, sizeof(ai));
  for (i = 0; i < 7; i++) {
    ai[i].family = fams[i];
    ai[i].next = i + 1 < 7 ? &ai[i + 1] : NULL;
  }
  n = corio__he_order(ai, out, 16);
  cr_assert_eq(n, 6);
  for (i = 0; i < n; i++) cr_assert_eq(out[i], &ai[want[i]], "attempt %zu", i);
  /* IPv6 first when the resolver put it first */
  n = corio__he_order(&ai[2], out, 16);
  cr_assert_eq(n, 4);
  cr_assert_eq(out[0], &ai[2]);
  cr_assert_eq(out[1], &ai[4]);
  cr_assert_eq(out[2], &ai[5]);
  cr_assert_eq(out[3], &ai[6]);
  /* the cap, one family only, nothing usable */
  cr_assert_eq(corio__he_order(ai, out, 3), 3);
  cr_assert_eq(out[2], &ai[1]);
  cr_assert_eq(corio__he_order(&ai[5], out, 16), 2);
  cr_assert_eq(corio__he_order(&ai[3], out, 1), 1);
  cr_assert_eq(out[0], &ai[4]);
  ai[3].next = NULL;
  cr_assert_eq(corio__he_order(&ai[3], out, 16), 0);
}

/* A server that answers REFUSED (dnsmasq has no upstream for this name): a clear error whose
 * text says so. c-ares moves on to the next server and, when every one refused, reports the
 * same status as when none could be reached: the text covers both. */
Test(dns, refused_is_a_clear_error)
{
  corio_future *f;
  const char *msg;
  need_dnsmasq();
  f = lookup("outside.corio-nowhere.", AF_INET);
  cr_assert(corio_future_error(f) == CORIO_E_DNS_CONNREFUSED ||
                corio_future_error(f) == CORIO_E_DNS_REFUSED,
            "%s", corio_err_name(corio_future_error(f)));
  msg = corio_strerror(corio_future_error(f));
  cr_assert(strstr(msg, "refused"), "%s", msg);
  corio_future_unref(f);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
