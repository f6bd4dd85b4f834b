/*
 * udp_ping — asyncio DatagramProtocol: a UDP "pong" server and a client pinging it, measuring
 * round trips.
 *
 * Python:
 *     class Pong(asyncio.DatagramProtocol):
 *         def datagram_received(self, data, addr): self.transport.sendto(data, addr)
 *     await loop.create_datagram_endpoint(Pong, local_addr=("127.0.0.1", 0))
 */
#include <stdio.h>
#include <string.h>
#include <corio.h>

#define PINGS 10

static void pong(corio_datagram *d, const uint8_t *p, size_t n, const struct sockaddr *from,
                 socklen_t fl)
{
  corio_datagram_sendto(d, p, n, from, fl);
}
static const corio_datagram_protocol pong_proto = {pong, NULL, NULL};

struct pinger {
  int seq, got;
  double sent_at, total_rtt;
  corio_loop *loop;
};

static void got_pong(corio_datagram *d, const uint8_t *p, size_t n, const struct sockaddr *from,
                     socklen_t fl)
{
  struct pinger *pg = corio_datagram_user(d);
  double rtt = corio_loop_time(pg->loop) - pg->sent_at;
  char msg[32];
  (void)from;
  (void)fl;
  snprintf(msg, sizeof(msg), "ping %d", pg->seq);
  if (n != strlen(msg) || memcmp(p, msg, n) != 0) return;
  printf("pong %d: %.1f us\n", pg->seq, rtt * 1e6);
  pg->got++;
  pg->total_rtt += rtt;
  if (++pg->seq < PINGS) {
    snprintf(msg, sizeof(msg), "ping %d", pg->seq);
    pg->sent_at = corio_loop_time(pg->loop);
    corio_datagram_sendto(d, msg, strlen(msg), NULL, 0);
  } else {
    corio_loop_stop(pg->loop);
  }
}
static const corio_datagram_protocol ping_proto = {got_pong, NULL, NULL};

int main(void)
{
  corio_loop *loop;
  corio_datagram *server, *client;
  struct pinger pg = {0};
  int rc = corio_loop_new(&loop, NULL);
  if (rc < 0) return fprintf(stderr, "corio_loop_new: %s\n", corio_strerror(rc)), 1;
  pg.loop = loop;
  rc = corio_datagram_open(loop, "127.0.0.1", 0, NULL, 0, &pong_proto, NULL, &server);
  if (rc == 0)
    rc = corio_datagram_open(loop, NULL, 0, "127.0.0.1", corio_datagram_port(server), &ping_proto,
                             &pg, &client);
  if (rc < 0) return fprintf(stderr, "open: %s\n", corio_strerror(rc)), 1;
  printf("pinging 127.0.0.1:%u\n", corio_datagram_port(server));
  pg.sent_at = corio_loop_time(loop);
  corio_datagram_sendto(client, "ping 0", 6, NULL, 0);
  corio_loop_run_forever(loop);
  printf("%d/%d pongs, mean round trip %.1f us\n", pg.got, PINGS,
         pg.got ? pg.total_rtt / pg.got * 1e6 : 0.0);
  corio_datagram_close(client);
  corio_datagram_close(server);
  while (corio_loop_run_once(loop, 0.01) > 0) {
  }
  return corio_loop_close(loop) != 0 || pg.got != PINGS;
}
