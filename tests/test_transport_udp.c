/* Datagram endpoints over UDP on loopback: echo, a windowed burst with every datagram checked,
 * ICMP errors, IPv6, bad input. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(udp, .init = setup, .timeout = 30);

static void drain(void)
{
  int i;
  for (i = 0; i < 200 && corio_loop_run_once(loop, 0.01) > 0; i++) {
  }
}

/* server: echoes every datagram back to its sender */
static int srv_lost;
static void srv_recv(corio_datagram *d, const uint8_t *p, size_t n, const struct sockaddr *from,
                     socklen_t fl)
{
  cr_assert_eq(corio_datagram_sendto(d, p, n, from, fl), 0);
}
static void srv_closed(corio_datagram *d, int err)
{
  (void)d;
  (void)err;
  srv_lost++;
}
static const corio_datagram_protocol echo = {srv_recv, NULL, srv_closed};

/* client: counts echoes, checks their content (sequence number + pattern) */
struct cli {
  int got, bad, errors, last_err, lost;
  int expect_seq;
};
static void cli_recv(corio_datagram *d, const uint8_t *p, size_t n, const struct sockaddr *from,
                     socklen_t fl)
{
  struct cli *c = corio_datagram_user(d);
  int seq;
  size_t i;
  (void)from;
  (void)fl;
  if (n < sizeof(int)) {
    c->bad++;
    return;
  }
  memcpy(&seq, p, sizeof(seq));
  for (i = sizeof(int); i < n; i++)
    if (p[i] != (uint8_t)(seq + i)) c->bad++;
  c->got++;
}
static void cli_err(corio_datagram *d, int err)
{
  struct cli *c = corio_datagram_user(d);
  c->errors++;
  c->last_err = err;
}
static void cli_closed(corio_datagram *d, int err)
{
  struct cli *c = corio_datagram_user(d);
  (void)err;
  c->lost++;
}
static const corio_datagram_protocol cli_proto = {cli_recv, cli_err, cli_closed};

static void send_seq(corio_datagram *d, int seq, size_t n)
{
  uint8_t buf[2048];
  size_t i;
  memcpy(buf, &seq, sizeof(seq));
  for (i = sizeof(int); i < n; i++) buf[i] = (uint8_t)(seq + i);
  cr_assert_eq(corio_datagram_sendto(d, buf, n, NULL, 0), 0);
}

static void pingpong(const char *addr)
{
  corio_datagram *srv, *cli;
  struct cli c = {0};
  int i;
  srv_lost = 0;
  cr_assert_eq(corio_datagram_open(loop, addr, 0, NULL, 0, &echo, NULL, &srv), 0);
  cr_assert_eq(
      corio_datagram_open(loop, NULL, 0, addr, corio_datagram_port(srv), &cli_proto, &c, &cli), 0);
  for (i = 0; i < 100; i++) send_seq(cli, i, 64 + (size_t)i);
  for (i = 0; i < 500 && c.got < 100; i++) corio_loop_run_once(loop, 0.01);
  cr_assert_eq(c.got, 100);
  cr_assert_eq(c.bad, 0);
  corio_datagram_close(cli);
  corio_datagram_close(srv);
  drain();
  cr_assert_eq(c.lost, 1);
  cr_assert_eq(srv_lost, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(udp, echo_ipv4)
{
  pingpong("127.0.0.1");
}

Test(udp, echo_ipv6)
{
  corio_datagram *probe;
  if (corio_datagram_open(loop, "::1", 0, NULL, 0, &echo, NULL, &probe) < 0)
    cr_skip_test("no IPv6 loopback");
  corio_datagram_close(probe);
  drain();
  pingpong("::1");
}

/* 10,000 datagrams, at most 100 in flight (UDP may drop past the socket buffer by design):
 * every one comes back intact. */
Test(udp, windowed_burst_every_datagram_checked)
{
  corio_datagram *srv, *cli;
  struct cli c = {0};
  int sent = 0, spins = 0;
  cr_assert_eq(corio_datagram_open(loop, "127.0.0.1", 0, NULL, 0, &echo, NULL, &srv), 0);
  cr_assert_eq(corio_datagram_open(loop, NULL, 0, "127.0.0.1", corio_datagram_port(srv), &cli_proto,
                                   &c, &cli),
               0);
  while (c.got < 10000) {
    while (sent < 10000 && sent - c.got < 100) send_seq(cli, sent++, 512);
    corio_loop_run_once(loop, 0.1);
    cr_assert_lt(++spins, 200000);
  }
  cr_assert_eq(c.bad, 0);
  corio_datagram_close(cli);
  corio_datagram_close(srv);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(udp, icmp_port_unreachable_reported)
{
  corio_datagram *probe, *cli;
  struct cli c = {0};
  uint16_t port;
  int i;
  /* a port that was just free */
  cr_assert_eq(corio_datagram_open(loop, "127.0.0.1", 0, NULL, 0, &echo, NULL, &probe), 0);
  port = corio_datagram_port(probe);
  corio_datagram_close(probe);
  drain();
  cr_assert_eq(corio_datagram_open(loop, NULL, 0, "127.0.0.1", port, &cli_proto, &c, &cli), 0);
  send_seq(cli, 1, 32);
  for (i = 0; i < 100 && !c.errors; i++) corio_loop_run_once(loop, 0.01);
  cr_assert_geq(c.errors, 1);
  cr_assert_eq(c.last_err, -ECONNREFUSED);
  send_seq(cli, 2, 32); /* the endpoint stays usable */
  corio_datagram_close(cli);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(udp, bad_input)
{
  corio_datagram *d;
  struct sockaddr_in to = {.sin_family = AF_INET};
  cr_assert_eq(corio_datagram_open(loop, "bogus", 0, NULL, 0, &echo, NULL, &d), -EINVAL);
  cr_assert_eq(corio_datagram_open(loop, NULL, 0, NULL, 0, NULL, NULL, &d), -EINVAL);
  cr_assert_eq(corio_datagram_open(loop, "127.0.0.1", 0, "::1", 9, &echo, NULL, &d), -EAFNOSUPPORT);
  cr_assert_eq(corio_datagram_open(loop, "127.0.0.1", 0, NULL, 0, &echo, NULL, &d), 0);
  cr_assert_eq(corio_datagram_sendto(d, "x", 1, NULL, 0), -EDESTADDRREQ);
  cr_assert_eq(corio_datagram_sendto(d, "x", 1, (struct sockaddr *)&to, 0), -EINVAL);
  cr_assert_eq(corio_datagram_sendto(d, NULL, 5, NULL, 0), -EINVAL);
  corio_datagram_close(d);
  cr_assert_eq(corio_datagram_sendto(NULL, "x", 1, NULL, 0), -EINVAL);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
