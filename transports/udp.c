/*
 * Datagram endpoints: one recvmsg in flight into the endpoint's own 64 KiB buffer, re-armed after
 * each datagram (a datagram must land whole in one buffer, so the shared 4 KiB recv ring does not
 * fit), and sendmsg requests taken from a free list so steady-state sending allocates only when
 * a datagram is larger than any request seen before.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <unistd.h>
#include "transport_impl.h"

#define DGRAM_MAX 65536

struct sendreq {
  corio_op op;
  struct corio_datagram *d;
  struct sendreq *next_free;
  struct msghdr msg;
  struct iovec iov;
  struct sockaddr_storage to;
  size_t cap;
  uint8_t *data;
};

struct corio_datagram {
  corio_loop *loop;
  int fd;
  const corio_datagram_protocol *proto;
  void *user;
  corio_op recv_op;
  struct msghdr rmsg;
  struct iovec riov;
  struct sockaddr_storage from;
  uint8_t *rbuf;
  struct sendreq *free_reqs;
  size_t sending;
  bool connected, closing, reported;
  int holds;
  uint16_t port;
};

static void dg_maybe_finish(corio_datagram *d);

static void arm_recv(corio_datagram *d)
{
  struct io_uring_sqe *sqe;
  if (d->recv_op.inflight || d->closing) return;
  d->riov.iov_base = d->rbuf;
  d->riov.iov_len = DGRAM_MAX;
  memset(&d->rmsg, 0, sizeof(d->rmsg));
  d->rmsg.msg_name = &d->from;
  d->rmsg.msg_namelen = sizeof(d->from);
  d->rmsg.msg_iov = &d->riov;
  d->rmsg.msg_iovlen = 1;
  sqe = corio_op_sqe(d->loop, &d->recv_op);
  if (sqe) io_uring_prep_recvmsg(sqe, d->fd, &d->rmsg, 0);
}

static void recv_done(corio_op *op, int res, unsigned flags)
{
  corio_datagram *d = corio_container_of(op, corio_datagram, recv_op);
  (void)flags;
  d->holds++;
  if (res >= 0 && !d->closing) {
    d->proto->datagram_received(d, d->rbuf, (size_t)res, (struct sockaddr *)&d->from,
                                d->rmsg.msg_namelen);
  } else if (res < 0 && res != -ECANCELED && !d->closing && d->proto->error_received) {
    d->proto->error_received(d, res);
  }
  d->holds--;
  if (!d->closing) arm_recv(d);
  dg_maybe_finish(d);
}

static void send_done(corio_op *op, int res, unsigned flags)
{
  struct sendreq *r = corio_container_of(op, struct sendreq, op);
  corio_datagram *d = r->d;
  (void)flags;
  d->sending--;
  r->next_free = d->free_reqs;
  d->free_reqs = r;
  if (res < 0 && res != -ECANCELED && d->proto->error_received && !d->closing) {
    d->holds++;
    d->proto->error_received(d, res);
    d->holds--;
  }
  dg_maybe_finish(d);
}

int corio_datagram_sendto(corio_datagram *d, const void *data, size_t len,
                          const struct sockaddr *to, socklen_t tolen)
{
  struct sendreq *r;
  struct io_uring_sqe *sqe;
  if (!d || (!data && len) || len > DGRAM_MAX) return -EINVAL;
  if (d->closing) return -EPIPE;
  if (!to && !d->connected) return -EDESTADDRREQ;
  if (to && (tolen == 0 || tolen > sizeof(struct sockaddr_storage))) return -EINVAL;
  r = d->free_reqs;
  if (r && r->cap >= len) {
    d->free_reqs = r->next_free;
  } else {
    /* none free, or too small: a new one (old small ones stay for small datagrams) */
    r = corio__calloc(1, sizeof(*r) + (len ? len : 1));
    if (!r) return -ENOMEM;
    r->cap = len ? len : 1;
    r->data = (uint8_t *)(r + 1);
    r->d = d;
    r->op.complete = send_done;
  }
  if (len) memcpy(r->data, data, len);
  r->iov.iov_base = r->data;
  r->iov.iov_len = len;
  memset(&r->msg, 0, sizeof(r->msg));
  r->msg.msg_iov = &r->iov;
  r->msg.msg_iovlen = 1;
  if (to) {
    memcpy(&r->to, to, tolen);
    r->msg.msg_name = &r->to;
    r->msg.msg_namelen = tolen;
  }
  sqe = corio_op_sqe(d->loop, &r->op);
  if (!sqe) {
    r->next_free = d->free_reqs;
    d->free_reqs = r;
    return -EBUSY;
  }
  io_uring_prep_sendmsg(sqe, d->fd, &r->msg, 0);
  d->sending++;
  return 0;
}

static void dg_free(corio_datagram *d)
{
  struct sendreq *r, *next;
  for (r = d->free_reqs; r; r = next) {
    next = r->next_free;
    corio__free(r);
  }
  corio__free(d->rbuf);
  corio__free(d);
}

static void dg_maybe_finish(corio_datagram *d)
{
  if (!d->closing || d->holds || d->sending) return;
  if (d->recv_op.inflight) {
    corio_op_cancel(d->loop, &d->recv_op);
    return;
  }
  if (d->fd >= 0) {
    close(d->fd);
    d->fd = -1;
  }
  if (!d->reported) {
    d->reported = true;
    if (d->proto->connection_lost) {
      d->holds++;
      d->proto->connection_lost(d, 0);
      d->holds--;
    }
  }
  dg_free(d);
}

void corio_datagram_close(corio_datagram *d)
{
  if (!d || d->closing) return;
  d->closing = true;
  dg_maybe_finish(d);
}

static int parse(const char *host, uint16_t port, int family_hint, struct sockaddr_storage *ss,
                 socklen_t *len)
{
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof(*ss));
  if (!host) host = family_hint == AF_INET6 ? "::" : "0.0.0.0";
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof(*a4);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof(*a6);
    return 0;
  }
  return -EINVAL;
}

int corio_datagram_open(corio_loop *loop, const char *local_host, uint16_t local_port,
                        const char *remote_host, uint16_t remote_port,
                        const corio_datagram_protocol *proto, void *user, corio_datagram **out)
{
  struct sockaddr_storage local, remote;
  socklen_t llen, rlen = 0;
  corio_datagram *d;
  int rc, family;
  if (!loop || !proto || !proto->datagram_received || !out) return -EINVAL;
  *out = NULL;
  if (remote_host && (rc = parse(remote_host, remote_port, 0, &remote, &rlen)) < 0) return rc;
  family = remote_host ? remote.ss_family : 0;
  rc = parse(local_host, local_port, family, &local, &llen);
  if (rc < 0) return rc;
  if (remote_host && local.ss_family != remote.ss_family) return -EAFNOSUPPORT;
  d = corio__calloc(1, sizeof(*d));
  if (!d) return -ENOMEM;
  d->rbuf = corio__malloc(DGRAM_MAX);
  if (!d->rbuf) {
    corio__free(d);
    return -ENOMEM;
  }
  d->loop = loop;
  d->proto = proto;
  d->user = user;
  d->recv_op.complete = recv_done;
  d->fd = socket(local.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (d->fd < 0) {
    rc = -errno;
    goto fail;
  }
  if (bind(d->fd, (struct sockaddr *)&local, llen) < 0 ||
      (remote_host && connect(d->fd, (struct sockaddr *)&remote, rlen) < 0)) {
    rc = -errno;
    goto fail;
  }
  d->connected = remote_host != NULL;
  llen = sizeof(local);
  getsockname(d->fd, (struct sockaddr *)&local, &llen);
  d->port = ntohs(local.ss_family == AF_INET ? ((struct sockaddr_in *)&local)->sin_port
                                             : ((struct sockaddr_in6 *)&local)->sin6_port);
  arm_recv(d);
  *out = d;
  return 0;
fail:
  if (d->fd >= 0) close(d->fd);
  corio__free(d->rbuf);
  corio__free(d);
  return rc;
}

uint16_t corio_datagram_port(const corio_datagram *d)
{
  return d ? d->port : 0;
}

void *corio_datagram_user(const corio_datagram *d)
{
  return d ? d->user : NULL;
}

size_t corio_datagram_pending(const corio_datagram *d)
{
  return d ? d->sending : 0;
}
