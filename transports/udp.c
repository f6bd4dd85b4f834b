/*
 * Datagram endpoints, UDP and Unix: one recvmsg in flight into the endpoint's own buffer (64 KiB
 * for UDP, 256 KiB for Unix datagrams, whose size only the socket buffer limits), re-armed after
 * each datagram (a datagram must land whole in one buffer, so the shared 4 KiB recv ring does not
 * fit), and sendmsg requests taken from a free list so steady-state sending allocates only when
 * a datagram is larger than any request seen before.
 *
 * The receive asks for MSG_TRUNC, so a datagram larger than the buffer reports its real length:
 * it is dropped and error_received(-EMSGSIZE) says so, rather than handing the protocol a
 * silently cut datagram.
 *
 * Unix datagram sockets are reliable and ordered, and a sender waits when the receiver's queue is
 * full (net.unix.max_dgram_qlen, 10 by default): io_uring then parks the sendmsg on a poll. With
 * several sends in flight, a later one could go out first once room appears, so a Unix endpoint
 * keeps one send in flight and queues the rest in order (asyncio's datagram transport also sends
 * from one ordered buffer). UDP promises no order and never waits, so its sends all go out at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "transport_impl.h"

#define DGRAM_MAX      65536
#define UNIX_DGRAM_MAX (256 * 1024)

struct sendreq {
  corio_op op;
  struct corio_datagram *d;
  struct sendreq *next_free; /* in the free list, or in the send queue (Unix) */
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
  size_t rsize; /* the receive buffer: larger datagrams are dropped (-EMSGSIZE) */
  struct sendreq *free_reqs;
  struct sendreq *q_head, *q_tail; /* Unix: sends waiting behind the one in flight */
  size_t sending, queued;
  struct sendreq *blocked; /* Unix: the send that found the receiver's queue full */
  corio_op wpoll_op;       /* ... waiting for POLLOUT (connected) */
  corio_handle retry;      /* ... or for a short timer (unconnected) */
  bool connected, closing, reported, ordered, aborting;
  int holds;
  uint16_t port;
  int family;
  char *path;     /* Unix: the socket file we bound (unlinked at close), else NULL */
  dev_t path_dev; /* ... and its identity, so that we never unlink somebody else's file */
  ino_t path_ino;
};

static void dg_maybe_finish(corio_datagram *d);

static void arm_recv(corio_datagram *d)
{
  struct io_uring_sqe *sqe;
  if (d->recv_op.inflight || d->closing) return;
  d->riov.iov_base = d->rbuf;
  d->riov.iov_len = d->rsize;
  memset(&d->rmsg, 0, sizeof(d->rmsg));
  d->rmsg.msg_name = &d->from;
  d->rmsg.msg_namelen = sizeof(d->from);
  d->rmsg.msg_iov = &d->riov;
  d->rmsg.msg_iovlen = 1;
  sqe = corio_op_sqe(d->loop, &d->recv_op);
  if (sqe) io_uring_prep_recvmsg(sqe, d->fd, &d->rmsg, MSG_TRUNC);
}

static void recv_done(corio_op *op, int res, unsigned flags)
{
  corio_datagram *d = corio_container_of(op, corio_datagram, recv_op);
  (void)flags;
  d->holds++;
  if (res > 0 && (size_t)res > d->rsize) {
    if (!d->closing && d->proto->error_received) d->proto->error_received(d, -EMSGSIZE);
  } else if (res >= 0 && !d->closing) {
    d->proto->datagram_received(d, d->rbuf, (size_t)res, (struct sockaddr *)&d->from,
                                d->rmsg.msg_namelen);
  } else if (res < 0 && res != -ECANCELED && !d->closing && d->proto->error_received) {
    d->proto->error_received(d, res);
  }
  d->holds--;
  if (!d->closing) arm_recv(d);
  dg_maybe_finish(d);
}

static int submit(corio_datagram *d, struct sendreq *r)
{
  struct io_uring_sqe *sqe = corio_op_sqe(d->loop, &r->op);
  if (!sqe) return -EBUSY;
  io_uring_prep_sendmsg(sqe, d->fd, &r->msg, d->ordered ? MSG_NOSIGNAL | MSG_DONTWAIT : 0);
  d->sending++;
  return 0;
}

/* Unix: the next queued datagram, once the one in flight is done. */
static void submit_next(corio_datagram *d)
{
  struct sendreq *r;
  while (d->q_head && !d->sending) {
    r = d->q_head;
    d->q_head = r->next_free;
    if (!d->q_head) d->q_tail = NULL;
    d->queued--;
    if (submit(d, r) < 0) { /* no SQE: the datagram is lost, say so */
      r->next_free = d->free_reqs;
      d->free_reqs = r;
      if (d->proto->error_received && !d->closing) {
        d->holds++;
        d->proto->error_received(d, -EBUSY);
        d->holds--;
      }
    }
  }
}

static void resend_blocked(corio_datagram *d)
{
  struct sendreq *r = d->blocked;
  d->blocked = NULL;
  d->sending--; /* the blocked send counted as in flight while it waited */
  if (submit(d, r) < 0) {
    r->next_free = d->free_reqs;
    d->free_reqs = r;
    if (d->proto->error_received && !d->closing) {
      d->holds++;
      d->proto->error_received(d, -EBUSY);
      d->holds--;
    }
    submit_next(d);
  }
  dg_maybe_finish(d);
}

/* corio_datagram_abort: the blocked send is dropped instead of sent again. */
static void drop_blocked(corio_datagram *d)
{
  struct sendreq *r = d->blocked;
  d->blocked = NULL;
  d->sending--;
  r->next_free = d->free_reqs;
  d->free_reqs = r;
  dg_maybe_finish(d);
}

static void wpoll_done(corio_op *op, int res, unsigned flags)
{
  corio_datagram *d = corio_container_of(op, corio_datagram, wpoll_op);
  (void)res;
  (void)flags;
  if (d->aborting)
    drop_blocked(d);
  else
    resend_blocked(d); /* an error shows in the send itself */
}

static void retry_timer(void *arg)
{
  corio_datagram *d = arg;
  d->retry = 0;
  resend_blocked(d);
}

/*
 * A Unix send that found the receiver's queue full. The send went out with MSG_DONTWAIT, so
 * -EAGAIN comes back here instead of io_uring parking the request on a poll and retrying it
 * itself: on Linux 6.18 that retry sends an empty datagram, because unix_dgram_sendmsg copies
 * the payload out of the iterator before it finds the queue full, and the retry reuses the
 * consumed iterator (seen as 0-byte datagrams at the peer). Here the datagram is sent again from
 * our intact buffer with a fresh SQE. A connected socket polls POLLOUT, which accounts for the
 * peer's queue; an unconnected one has no peer for poll to watch, so it retries after 1 ms.
 */
static bool block_send(corio_datagram *d, struct sendreq *r)
{
  struct io_uring_sqe *sqe;
  d->blocked = r;
  d->sending++;
  if (d->connected) {
    d->wpoll_op.complete = wpoll_done;
    sqe = corio_op_sqe(d->loop, &d->wpoll_op);
    if (sqe) {
      io_uring_prep_poll_add(sqe, d->fd, POLLOUT);
      return true;
    }
  }
  if (corio_call_later(d->loop, 0.001, retry_timer, d, &d->retry) == 0) return true;
  d->blocked = NULL;
  d->sending--;
  return false;
}

static void send_done(corio_op *op, int res, unsigned flags)
{
  struct sendreq *r = corio_container_of(op, struct sendreq, op);
  corio_datagram *d = r->d;
  (void)flags;
  d->sending--;
  if (res == -EAGAIN && d->ordered && !d->aborting && block_send(d, r)) return;
  r->next_free = d->free_reqs;
  d->free_reqs = r;
  submit_next(d);
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
  if (!d || (!data && len)) return -EINVAL;
  if (len > (d->family == AF_UNIX ? SIZE_MAX / 2 : (size_t)DGRAM_MAX)) return -EMSGSIZE;
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
  if (d->ordered && (d->sending || d->q_head)) {
    r->next_free = NULL;
    if (d->q_tail)
      d->q_tail->next_free = r;
    else
      d->q_head = r;
    d->q_tail = r;
    d->queued++;
    return 0;
  }
  if (submit(d, r) < 0) {
    r->next_free = d->free_reqs;
    d->free_reqs = r;
    return -EBUSY;
  }
  return 0;
}

int corio_datagram_sendto_path(corio_datagram *d, const void *data, size_t len, const char *path)
{
  struct sockaddr_un un;
  socklen_t ulen;
  int rc;
  if (!d) return -EINVAL;
  if (d->family != AF_UNIX) return -EAFNOSUPPORT;
  rc = corio_unix_sockaddr(path, &un, &ulen);
  if (rc < 0) return rc;
  return corio_datagram_sendto(d, data, len, (struct sockaddr *)&un, ulen);
}

static void dg_free(corio_datagram *d)
{
  struct sendreq *r, *next;
  for (r = d->free_reqs; r; r = next) {
    next = r->next_free;
    corio__free(r);
  }
  corio__free(d->rbuf);
  corio__free(d->path);
  corio__free(d);
}

/* Unlink the socket file we bound, if it still is ours (not replaced by another endpoint). */
static void unlink_ours(corio_datagram *d)
{
  struct stat st;
  if (!d->path) return;
  if (stat(d->path, &st) == 0 && st.st_dev == d->path_dev && st.st_ino == d->path_ino)
    unlink(d->path);
}

static void dg_maybe_finish(corio_datagram *d)
{
  if (!d->closing || d->holds || d->sending || d->q_head) return;
  if (d->recv_op.inflight) {
    corio_op_cancel(d->loop, &d->recv_op);
    return;
  }
  if (d->fd >= 0) {
    unlink_ours(d);
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

/* Close without waiting for the queued sends (asyncio's abort): a Unix peer that stopped reading
 * would hold a plain close forever. Sends already handed to the kernel finish (MSG_DONTWAIT: at
 * once); the queue and a send waiting for room are dropped. */
void corio_datagram_abort(corio_datagram *d)
{
  struct sendreq *r;
  if (!d || d->aborting) return;
  d->aborting = true;
  d->closing = true;
  while ((r = d->q_head)) {
    d->q_head = r->next_free;
    r->next_free = d->free_reqs;
    d->free_reqs = r;
  }
  d->q_tail = NULL;
  d->queued = 0;
  if (d->blocked) {
    if (d->retry) {
      corio_handle_cancel(d->loop, d->retry);
      d->retry = 0;
      d->holds++; /* drop_blocked must not free d before the finish below */
      drop_blocked(d);
      d->holds--;
    } else if (d->wpoll_op.inflight) {
      corio_op_cancel(d->loop, &d->wpoll_op); /* wpoll_done drops it */
    }
  }
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
  d->rsize = DGRAM_MAX;
  d->rbuf = corio__malloc(d->rsize);
  if (!d->rbuf) {
    corio__free(d);
    return -ENOMEM;
  }
  d->loop = loop;
  d->proto = proto;
  d->user = user;
  d->recv_op.complete = recv_done;
  d->family = local.ss_family;
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
  return d ? d->sending + d->queued : 0;
}

/* ---------------- Unix datagram sockets ---------------- */

int corio_unix_sockaddr(const char *path, struct sockaddr_un *un, socklen_t *len)
{
  size_t n;
  bool abstract;
  if (!path || !un || !len) return -EINVAL;
  abstract = path[0] == '@';
  n = strlen(path); /* for "@name": the NUL that replaces '@' plus the name */
  if (n == 0 || (abstract && n == 1)) return -EINVAL;
  /* a path needs its terminating NUL in sun_path; an abstract name does not (its length is the
   * address length) */
  if (abstract ? n > sizeof(un->sun_path) : n >= sizeof(un->sun_path)) return -ENAMETOOLONG;
  memset(un, 0, sizeof(*un));
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, n);
  if (abstract) {
    un->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  }
  return 0;
}

int corio_unix_sockaddr_path(const struct sockaddr *sa, socklen_t salen, char *buf, size_t size)
{
  const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
  size_t off = offsetof(struct sockaddr_un, sun_path), n;
  if (!buf || !size || salen > sizeof(*un) || (salen && !sa) ||
      (salen >= sizeof(sa_family_t) && sa->sa_family != AF_UNIX))
    return -EINVAL;
  if (salen <= off) { /* unnamed: an unbound sender (the kernel gives no address at all) */
    buf[0] = '\0';
    return 0;
  }
  n = salen - off;
  if (un->sun_path[0] == '\0') { /* abstract: '@' + the name's n - 1 bytes (may hold NULs) */
    if (n + 1 > size) return -ENOSPC;
    buf[0] = '@';
    memcpy(buf + 1, un->sun_path + 1, n - 1);
    buf[n] = '\0';
    return (int)n;
  }
  n = strnlen(un->sun_path, n);
  if (n + 1 > size) return -ENOSPC;
  memcpy(buf, un->sun_path, n);
  buf[n] = '\0';
  return (int)n;
}

/* Bind @p fd to @p un. A socket file left behind by an endpoint that is gone (connecting to it is
 * refused) is replaced; a live socket, or a file that is not a socket, is not (-EADDRINUSE). */
int corio__unix_bind(int fd, int type, const char *path, const struct sockaddr_un *un,
                     socklen_t len)
{
  struct stat st;
  int probe, rc;
  if (bind(fd, (const struct sockaddr *)un, len) == 0) return 0;
  rc = -errno;
  if (rc != -EADDRINUSE || path[0] == '@') return rc;
  if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) return rc;
  probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe < 0) return rc;
  if (connect(probe, (const struct sockaddr *)un, len) == 0 || errno != ECONNREFUSED) {
    close(probe);
    return rc; /* somebody is there */
  }
  close(probe);
  unlink(path);
  return bind(fd, (const struct sockaddr *)un, len) == 0 ? 0 : -errno;
}

int corio_datagram_open_unix(corio_loop *loop, const char *local_path, const char *remote_path,
                             const corio_datagram_protocol *proto, void *user, corio_datagram **out)
{
  struct sockaddr_un local, remote;
  socklen_t llen = 0, rlen = 0;
  struct stat st;
  corio_datagram *d;
  int rc;
  if (!loop || !proto || !proto->datagram_received || !out) return -EINVAL;
  *out = NULL;
  if (local_path && (rc = corio_unix_sockaddr(local_path, &local, &llen)) < 0) return rc;
  if (remote_path && (rc = corio_unix_sockaddr(remote_path, &remote, &rlen)) < 0) return rc;
  d = corio__calloc(1, sizeof(*d));
  if (!d) return -ENOMEM;
  d->fd = -1;
  d->rsize = UNIX_DGRAM_MAX;
  d->rbuf = corio__malloc(d->rsize);
  if (!d->rbuf) {
    rc = -ENOMEM;
    goto fail;
  }
  d->loop = loop;
  d->proto = proto;
  d->user = user;
  d->family = AF_UNIX;
  d->ordered = true;
  d->recv_op.complete = recv_done;
  d->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (d->fd < 0) {
    rc = -errno;
    goto fail;
  }
  if (local_path) {
    rc = corio__unix_bind(d->fd, SOCK_DGRAM, local_path, &local, llen);
    if (rc < 0) goto fail;
    if (local_path[0] != '@') {
      d->path = corio__malloc(strlen(local_path) + 1);
      if (d->path) memcpy(d->path, local_path, strlen(local_path) + 1);
      if (!d->path || stat(local_path, &st) < 0) {
        rc = d->path ? -errno : -ENOMEM;
        unlink(local_path);
        goto fail;
      }
      d->path_dev = st.st_dev;
      d->path_ino = st.st_ino;
    }
  } else {
    /* autobind: the kernel picks a unique abstract name, so that peers can answer */
    local.sun_family = AF_UNIX;
    if (bind(d->fd, (struct sockaddr *)&local, sizeof(sa_family_t)) < 0) {
      rc = -errno;
      goto fail;
    }
  }
  if (remote_path && connect(d->fd, (struct sockaddr *)&remote, rlen) < 0) {
    rc = -errno;
    unlink_ours(d);
    goto fail;
  }
  d->connected = remote_path != NULL;
  arm_recv(d);
  *out = d;
  return 0;
fail:
  if (d->fd >= 0) close(d->fd);
  corio__free(d->path);
  corio__free(d->rbuf);
  corio__free(d);
  return rc;
}
