/*
 * Stream transports (TCP over IPv4/IPv6, Unix stream sockets, and the two ends of a pipe) at the
 * protocol level.
 *
 * Receiving: one multishot recv per connection, selecting buffers from the loop's provided-buffer
 * ring; each buffer goes back to the ring as soon as data_received returns, so an idle
 * connection holds no buffer at all (the kernel picks one only when data arrives).
 * Sending: write() copies into the connection's write buffer; one send is in flight at a time
 * from a second buffer, and the two are swapped when the in-flight one drains, so steady-state
 * sending allocates nothing. Every SQE joins the loop's next io_uring_enter.
 * Pipes (a pipe, a FIFO, a character device: transports/pipe.c opens them) use the same
 * transport with another kind: a read end reads with one multishot read (IORING_OP_READ_MULTISHOT,
 * Linux 6.7) from the same buffer ring, falling back to one-shot reads where that is missing or
 * the file cannot be polled; a write end writes with IORING_OP_WRITE and RWF_NOSIGNAL (see
 * corio__pipe_write_flags) and watches for its reader going away with a poll for POLLERR, as
 * asyncio's write-pipe transport does with a reader callback on the write end.
 * Lifetime: a transport is freed only after close/abort/error, once its recv and send ops have
 * posted their final CQEs (DESIGN §7: op memory belongs to the loop until then), and never
 * while one of its callbacks is running.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "transport_impl.h"

/* ---------------- the loop's provided-buffer ring ---------------- */

#define BR_BGID    1
#define BR_ENTRIES 1024u /* power of two */
#define BR_SIZE    4096u /* at most one page per recv completion */

struct bufring {
  struct io_uring_buf_ring *br;
  uint8_t *bufs;
  size_t ring_len, bufs_len;
  unsigned mask;
};

static void bufring_free(void *p)
{
  struct bufring *b = p;
  if (!b) return;
  if (b->br) munmap(b->br, b->ring_len);
  if (b->bufs) munmap(b->bufs, b->bufs_len);
  corio__free(b);
}

static struct bufring *bufring_get(corio_loop *loop)
{
  struct bufring *b = loop->bufring;
  struct io_uring_buf_reg reg;
  unsigned i;
  int rc;
  if (b) return b;
  b = corio__calloc(1, sizeof(*b));
  if (!b) return NULL;
  b->ring_len = BR_ENTRIES * sizeof(struct io_uring_buf);
  b->bufs_len = (size_t)BR_ENTRIES * BR_SIZE;
  b->br = mmap(NULL, b->ring_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  b->bufs = mmap(NULL, b->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (b->br == MAP_FAILED || b->bufs == MAP_FAILED) {
    if (b->br == MAP_FAILED) b->br = NULL;
    if (b->bufs == MAP_FAILED) b->bufs = NULL;
    bufring_free(b);
    return NULL;
  }
  io_uring_buf_ring_init(b->br);
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)b->br;
  reg.ring_entries = BR_ENTRIES;
  reg.bgid = BR_BGID;
  rc = io_uring_register_buf_ring(&loop->ring, &reg, 0);
  if (rc < 0) {
    bufring_free(b);
    return NULL;
  }
  b->mask = (unsigned)io_uring_buf_ring_mask(BR_ENTRIES);
  for (i = 0; i < BR_ENTRIES; i++)
    io_uring_buf_ring_add(b->br, b->bufs + (size_t)i * BR_SIZE, BR_SIZE, (unsigned short)i,
                          (int)b->mask, (int)i);
  io_uring_buf_ring_advance(b->br, BR_ENTRIES);
  loop->bufring = b;
  loop->bufring_free = bufring_free;
  return b;
}

static void bufring_recycle(struct bufring *b, unsigned bid)
{
  io_uring_buf_ring_add(b->br, b->bufs + (size_t)bid * BR_SIZE, BR_SIZE, (unsigned short)bid,
                        (int)b->mask, 0);
  io_uring_buf_ring_advance(b->br, 1);
}

/* ---------------- transports ---------------- */

enum {
  TR_READING = 0x1,       /* recv should be armed */
  TR_CLOSING = 0x2,       /* close(): flush, then close */
  TR_LOST = 0x4,          /* error or abort: close now */
  TR_EOF_REQ = 0x8,       /* write_eof() asked */
  TR_EOF_DONE = 0x10,     /* shutdown(SHUT_WR) done */
  TR_PAUSED_W = 0x20,     /* pause_writing() was called */
  TR_PAUSED_R = 0x40,     /* pause_reading() */
  TR_REPORTED = 0x80,     /* connection_lost() called */
  TR_MADE = 0x100,        /* connection_made() called */
  TR_EOF_PENDING = 0x200, /* EOF seen while paused: reported after the stashed data */
  TR_ONESHOT = 0x400,     /* pipe read end: no multishot read here, one read per completion */
  TR_RPOLL = 0x800,       /* recv_op is a poll (a read got -EAGAIN, or a write end's watch) */
  TR_WPOLL = 0x1000,      /* send_op is a poll (a write got -EAGAIN) */
};

#ifndef IORING_OP_READ_MULTISHOT
#define IORING_OP_READ_MULTISHOT 49 /* Linux 6.7; liburing 2.3's header predates it */
#endif

struct corio_transport {
  corio_loop *loop;
  int fd;
  int kind; /* enum corio__tr_kind */
  unsigned flags;
  int lost_err;
  int holds; /* callbacks running or scheduled: no free while > 0 */
  const corio_protocol *proto;
  void *ctx;
  corio_server *srv;
  corio__list node; /* in srv->conns */
  corio_op recv_op, send_op;
  corio__buf wbuf, sbuf, rstash;
  size_t soff;
  size_t high, low;
  struct bufring *br;
};

struct corio_server {
  corio_loop *loop;
  int fd;
  corio_op accept_op;
  const corio_protocol *proto;
  void *user;
  corio__list conns;
  size_t nconns;
  bool closing, close_conns, nodelay, emfile_logged;
  corio_handle retry;
  corio_future *closed;
  uint16_t port;
  void (*user_free)(void *user);
};

void corio__server_set_user_free(corio_server *srv, void (*fn)(void *user))
{
  srv->user_free = fn;
}

static void arm_recv(corio_transport *tr);
static void maybe_finish(corio_transport *tr);
static void server_maybe_finish(corio_server *srv);

static size_t buffered(const corio_transport *tr)
{
  return tr->wbuf.len + (tr->sbuf.len - tr->soff);
}

static void fatal(corio_transport *tr, int err)
{
  if (tr->flags & TR_LOST) return;
  tr->flags |= TR_LOST;
  tr->flags &= ~TR_READING;
  tr->lost_err = err;
  if (tr->recv_op.inflight) corio_op_cancel(tr->loop, &tr->recv_op);
  if (tr->send_op.inflight) corio_op_cancel(tr->loop, &tr->send_op);
}

static void flush(corio_transport *tr)
{
  struct io_uring_sqe *sqe;
  corio__buf tmp;
  if (tr->send_op.inflight || (tr->flags & TR_LOST) || tr->fd < 0) return;
  if (tr->soff == tr->sbuf.len) {
    tr->sbuf.len = 0;
    tr->soff = 0;
    if (tr->wbuf.len == 0) {
      if ((tr->flags & (TR_EOF_REQ | TR_EOF_DONE)) == TR_EOF_REQ) {
        tr->flags |= TR_EOF_DONE;
        if (tr->kind == CORIO__TR_SOCKET) {
          shutdown(tr->fd, SHUT_WR); /* rare: a plain syscall */
        } else {
          /* a pipe has no half-close: its EOF is closing the write end (asyncio's write_eof) */
          tr->flags |= TR_CLOSING;
          tr->flags &= ~TR_READING;
          if (tr->recv_op.inflight) corio_op_cancel(tr->loop, &tr->recv_op);
        }
      }
      return;
    }
    tmp = tr->sbuf; /* swap: the drained buffer becomes the next write buffer */
    tr->sbuf = tr->wbuf;
    tr->wbuf = tmp;
  }
  sqe = corio_op_sqe(tr->loop, &tr->send_op);
  if (!sqe) {
    fatal(tr, -ENOMEM);
    return;
  }
  if (tr->kind == CORIO__TR_SOCKET) {
    io_uring_prep_send(sqe, tr->fd, tr->sbuf.data + tr->soff, tr->sbuf.len - tr->soff,
                       MSG_NOSIGNAL);
  } else {
    /* offset -1: the file position, which a pipe ignores and a tty needs */
    io_uring_prep_write(
        sqe, tr->fd, tr->sbuf.data + tr->soff,
        (unsigned)(tr->sbuf.len - tr->soff > 1u << 30 ? 1u << 30 : tr->sbuf.len - tr->soff),
        (uint64_t)-1);
    corio__pipe_write_prep(sqe);
  }
}

/* A write end's poll: POLLOUT after a write's -EAGAIN (a non-blocking fd on an older kernel), or
 * the idle watch, which only POLLERR (no reader left) completes. */
static void wpoll_done(corio_op *op, int res, unsigned flags);
static void recv_done(corio_op *op, int res, unsigned flags);
static void rpoll_done(corio_op *op, int res, unsigned flags);

static void arm_poll(corio_transport *tr, corio_op *op, unsigned events)
{
  struct io_uring_sqe *sqe;
  if (op->inflight) return;
  if (op == &tr->send_op) {
    tr->flags |= TR_WPOLL;
    op->complete = wpoll_done;
  } else {
    tr->flags |= TR_RPOLL;
    op->complete = rpoll_done;
  }
  sqe = corio_op_sqe(tr->loop, op);
  if (!sqe) {
    fatal(tr, -ENOMEM);
    return;
  }
  io_uring_prep_poll_add(sqe, tr->fd, events);
}

static void send_done(corio_op *op, int res, unsigned flags)
{
  corio_transport *tr = corio_container_of(op, corio_transport, send_op);
  (void)flags;
  tr->holds++; /* callbacks below may close it: free only at the end */
  if (res == -EAGAIN && !(tr->flags & TR_LOST)) {
    arm_poll(tr, &tr->send_op, POLLOUT); /* the write again once the poll says so */
  } else if (res < 0) {
    if (res != -ECANCELED || !(tr->flags & TR_LOST)) fatal(tr, res == -ECANCELED ? -EPIPE : res);
  } else {
    tr->soff += (size_t)res;
    if ((tr->flags & TR_PAUSED_W) && buffered(tr) <= tr->low) {
      tr->flags &= ~TR_PAUSED_W;
      if (tr->proto->resume_writing && !(tr->flags & TR_LOST)) {
        tr->holds++;
        tr->proto->resume_writing(tr);
        tr->holds--;
      }
    }
    flush(tr);
  }
  tr->holds--;
  maybe_finish(tr);
}

static void wpoll_done(corio_op *op, int res, unsigned flags)
{
  corio_transport *tr = corio_container_of(op, corio_transport, send_op);
  (void)flags;
  tr->send_op.complete = send_done;
  tr->flags &= ~TR_WPOLL;
  tr->holds++;
  if (res < 0 && res != -ECANCELED)
    fatal(tr, res);
  else if (res >= 0)
    flush(tr); /* writable, or POLLERR: the write itself then reports -EPIPE */
  tr->holds--;
  maybe_finish(tr);
}

static void rpoll_done(corio_op *op, int res, unsigned flags)
{
  corio_transport *tr = corio_container_of(op, corio_transport, recv_op);
  (void)flags;
  tr->recv_op.complete = recv_done;
  tr->flags &= ~TR_RPOLL;
  tr->holds++;
  if (res < 0 && res != -ECANCELED) {
    fatal(tr, res);
  } else if (res > 0 && tr->kind == CORIO__TR_PIPE_W) {
    /* The reader went away. asyncio: with bytes still buffered it is a broken pipe, without it
     * a plain close. A write queued after this fails with -EPIPE either way. */
    if (buffered(tr))
      fatal(tr, -EPIPE);
    else
      corio_transport_close(tr);
  } else if ((tr->flags & TR_READING) && !(tr->flags & (TR_LOST | TR_CLOSING | TR_PAUSED_R)) &&
             !tr->rstash.len) {
    arm_recv(tr);
  }
  tr->holds--;
  maybe_finish(tr);
}

static void deliver(corio_transport *tr, const uint8_t *data, size_t len)
{
  if (tr->flags & (TR_LOST | TR_CLOSING)) return;
  /* while paused, and until the stash is delivered, keep order: append behind the stash */
  if ((tr->flags & TR_PAUSED_R) || tr->rstash.len) {
    if (corio__buf_append(&tr->rstash, data, len) < 0) fatal(tr, -ENOMEM);
    return;
  }
  tr->holds++;
  tr->proto->data_received(tr, data, len);
  tr->holds--;
}

static void on_eof(corio_transport *tr)
{
  int keep = 0;
  tr->flags &= ~TR_READING;
  if (tr->flags & (TR_LOST | TR_CLOSING)) return;
  if (tr->proto->eof_received) {
    tr->holds++;
    keep = tr->proto->eof_received(tr);
    tr->holds--;
  }
  if (!keep) corio_transport_close(tr);
}

static void rearm_later(void *arg)
{
  corio_transport *tr = arg;
  tr->holds--;
  if ((tr->flags & TR_READING) && !(tr->flags & (TR_LOST | TR_CLOSING | TR_PAUSED_R)) &&
      !tr->rstash.len)
    arm_recv(tr);
  maybe_finish(tr);
}

static void recv_done(corio_op *op, int res, unsigned flags)
{
  corio_transport *tr = corio_container_of(op, corio_transport, recv_op);
  bool again = true;
  tr->holds++; /* callbacks below may close it: free only at the end */
  if (res > 0) {
    if (flags & IORING_CQE_F_BUFFER) {
      unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
      deliver(tr, tr->br->bufs + (size_t)bid * BR_SIZE, (size_t)res);
      bufring_recycle(tr->br, bid);
    }
  } else if (res == 0) {
    /* EOF must not overtake data stashed while reading is paused */
    if ((tr->flags & TR_PAUSED_R) || tr->rstash.len)
      tr->flags |= TR_EOF_PENDING;
    else
      on_eof(tr);
    tr->flags &= ~TR_READING;
    again = false;
  } else if (res == -EAGAIN && tr->kind == CORIO__TR_PIPE_R) {
    /* an O_NONBLOCK fd on a kernel that hands -EAGAIN back: wait for POLLIN, then read again */
    if (!(flags & IORING_CQE_F_MORE) && (tr->flags & TR_READING) &&
        !(tr->flags & (TR_LOST | TR_CLOSING | TR_PAUSED_R)))
      arm_poll(tr, &tr->recv_op, POLLIN);
    again = false;
  } else if ((res == -EINVAL || res == -EBADFD || res == -EOPNOTSUPP) &&
             tr->kind == CORIO__TR_PIPE_R && !(tr->flags & TR_ONESHOT)) {
    /* no multishot read on this kernel (< 6.7) or for this file (not pollable: /dev/null...):
     * one read per completion from now on */
    tr->flags |= TR_ONESHOT;
  } else if (res == -ENOBUFS) {
    /* Every ring buffer is in use within this batch: re-arm once they are back. */
    if (!(flags & IORING_CQE_F_MORE) && (tr->flags & TR_READING)) {
      tr->holds++;
      if (corio_call_soon(tr->loop, rearm_later, tr, NULL) < 0) {
        tr->holds--;
        fatal(tr, -ENOMEM);
      }
    }
    again = false;
  } else if (res != -ECANCELED) {
    fatal(tr, res);
    again = false;
  }
  /* -ECANCELED (pause_reading, or a resume that came before this CQE): re-arm below if the
   * transport is reading again by now. */
  if (!(flags & IORING_CQE_F_MORE) && again && (tr->flags & TR_READING) &&
      !(tr->flags & (TR_LOST | TR_CLOSING | TR_PAUSED_R)) && !tr->rstash.len)
    arm_recv(tr);
  tr->holds--;
  maybe_finish(tr);
}

static void arm_recv(corio_transport *tr)
{
  struct io_uring_sqe *sqe;
  if (tr->recv_op.inflight) return;
  if (tr->kind == CORIO__TR_PIPE_W) {
    arm_poll(tr, &tr->recv_op, 0); /* POLLERR is always reported: the reader is gone */
    return;
  }
  sqe = corio_op_sqe(tr->loop, &tr->recv_op);
  if (!sqe) {
    fatal(tr, -ENOMEM);
    return;
  }
  if (tr->kind == CORIO__TR_SOCKET)
    io_uring_prep_recv_multishot(sqe, tr->fd, NULL, 0, 0);
  else if (tr->flags & TR_ONESHOT)
    io_uring_prep_read(sqe, tr->fd, NULL, BR_SIZE, (uint64_t)-1);
  else
    io_uring_prep_rw(IORING_OP_READ_MULTISHOT, sqe, tr->fd, NULL, 0, (uint64_t)-1);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BR_BGID;
}

static void tr_free(corio_transport *tr)
{
  if (tr->srv) {
    corio__list_remove(&tr->node);
    tr->srv->nconns--;
    server_maybe_finish(tr->srv);
  }
  corio__buf_free(&tr->wbuf);
  corio__buf_free(&tr->sbuf);
  corio__buf_free(&tr->rstash);
  corio__free(tr);
}

static void maybe_finish(corio_transport *tr)
{
  if (tr->holds) return;
  if (!(tr->flags & (TR_LOST | TR_CLOSING))) return;
  if (!(tr->flags & TR_LOST) && buffered(tr)) return; /* closing: still flushing */
  if (tr->recv_op.inflight) {
    corio_op_cancel(tr->loop, &tr->recv_op);
    return;
  }
  if (tr->send_op.inflight) return;
  if (tr->fd >= 0) {
    close(tr->fd);
    tr->fd = -1;
  }
  if ((tr->flags & TR_MADE) && !(tr->flags & TR_REPORTED) && tr->proto->connection_lost) {
    tr->flags |= TR_REPORTED;
    tr->holds++;
    tr->proto->connection_lost(tr, tr->lost_err);
    tr->holds--;
  }
  tr_free(tr);
}

static corio_transport *tr_new(corio_loop *loop, int fd, const corio_protocol *proto)
{
  corio_transport *tr;
  struct bufring *br = bufring_get(loop);
  if (!br) return NULL;
  tr = corio__calloc(1, sizeof(*tr));
  if (!tr) return NULL;
  tr->loop = loop;
  tr->fd = fd;
  tr->kind = CORIO__TR_SOCKET;
  tr->proto = proto;
  tr->br = br;
  tr->high = 64 * 1024;
  tr->low = 16 * 1024;
  tr->recv_op.complete = recv_done;
  tr->send_op.complete = send_done;
  corio__list_init(&tr->node);
  return tr;
}

/* connection_made, then start reading (unless the callback closed it). */
static void tr_start(corio_transport *tr, void *user)
{
  tr->flags |= TR_MADE | TR_READING;
  if (tr->proto->connection_made) {
    tr->holds++;
    tr->proto->connection_made(tr, user);
    tr->holds--;
  }
  if ((tr->flags & TR_READING) && !(tr->flags & (TR_LOST | TR_CLOSING))) arm_recv(tr);
  maybe_finish(tr);
}

int corio_transport_write(corio_transport *tr, const void *data, size_t len)
{
  int rc;
  if (!tr || (!data && len)) return -EINVAL;
  if (tr->kind == CORIO__TR_PIPE_R) return -EBADF; /* a pipe's read end */
  if (tr->flags & TR_LOST) return -ENOTCONN;
  if (tr->flags & (TR_CLOSING | TR_EOF_REQ)) return -EPIPE;
  if (!len) return 0;
  rc = corio__buf_append(&tr->wbuf, data, len);
  if (rc < 0) return rc;
  flush(tr);
  if (!(tr->flags & TR_PAUSED_W) && buffered(tr) > tr->high) {
    tr->flags |= TR_PAUSED_W;
    if (tr->proto->pause_writing) {
      tr->holds++;
      tr->proto->pause_writing(tr);
      tr->holds--;
    }
  }
  return 0;
}

int corio_transport_write_eof(corio_transport *tr)
{
  if (!tr) return -EINVAL;
  if (tr->kind == CORIO__TR_PIPE_R) return -EBADF;
  if (tr->flags & TR_LOST) return -ENOTCONN;
  tr->flags |= TR_EOF_REQ;
  flush(tr);
  maybe_finish(tr); /* a pipe's write end closes once flushed, as corio_transport_close */
  return 0;
}

void corio_transport_close(corio_transport *tr)
{
  if (!tr || (tr->flags & (TR_CLOSING | TR_LOST))) return;
  tr->flags |= TR_CLOSING;
  tr->flags &= ~TR_READING;
  if (tr->recv_op.inflight) corio_op_cancel(tr->loop, &tr->recv_op);
  flush(tr);
  maybe_finish(tr);
}

void corio_transport_abort(corio_transport *tr)
{
  if (!tr) return;
  fatal(tr, -ECONNABORTED);
  tr->wbuf.len = 0;
  maybe_finish(tr);
}

/* Deliver what arrived while reading was paused, then (and only then) read on: new data must
 * not overtake the stash, nor EOF. */
static void deliver_stash(void *arg)
{
  corio_transport *tr = arg;
  corio__buf stash;
  /* the scheduling's hold is kept to the end: on_eof may close the transport, and only the
   * maybe_finish below may free it */
  if (!(tr->flags & TR_PAUSED_R) && !(tr->flags & (TR_LOST | TR_CLOSING))) {
    if (tr->rstash.len) {
      stash = tr->rstash;
      memset(&tr->rstash, 0, sizeof(tr->rstash));
      tr->proto->data_received(tr, stash.data, stash.len);
      corio__buf_free(&stash);
    }
    if (!(tr->flags & TR_PAUSED_R) && !tr->rstash.len) {
      if (tr->flags & TR_EOF_PENDING) {
        tr->flags &= ~TR_EOF_PENDING;
        on_eof(tr);
      } else if ((tr->flags & TR_READING) && !(tr->flags & (TR_LOST | TR_CLOSING))) {
        arm_recv(tr);
      }
    }
  }
  tr->holds--;
  maybe_finish(tr);
}

void corio_transport_pause_reading(corio_transport *tr)
{
  if (!tr || (tr->flags & TR_PAUSED_R) || tr->kind == CORIO__TR_PIPE_W) return;
  tr->flags |= TR_PAUSED_R;
  if (tr->recv_op.inflight) corio_op_cancel(tr->loop, &tr->recv_op);
}

void corio_transport_resume_reading(corio_transport *tr)
{
  if (!tr || !(tr->flags & TR_PAUSED_R) || tr->kind == CORIO__TR_PIPE_W) return;
  tr->flags &= ~TR_PAUSED_R;
  if (tr->rstash.len || (tr->flags & TR_EOF_PENDING)) {
    /* deliver the stash from the ready queue (not inside the caller), then re-arm */
    tr->holds++;
    if (corio_call_soon(tr->loop, deliver_stash, tr, NULL) < 0) {
      tr->holds--;
      fatal(tr, -ENOMEM);
    }
    return;
  }
  if ((tr->flags & TR_READING) && !(tr->flags & (TR_LOST | TR_CLOSING))) arm_recv(tr);
}

size_t corio_transport_get_write_buffer_size(const corio_transport *tr)
{
  return tr ? buffered(tr) : 0;
}

int corio_transport_set_write_buffer_limits(corio_transport *tr, size_t high, size_t low)
{
  if (!tr || low > high) return -EINVAL;
  tr->high = high;
  tr->low = low;
  return 0;
}

void corio_transport_set_context(corio_transport *tr, void *ctx)
{
  if (tr) tr->ctx = ctx;
}

void *corio_transport_get_context(const corio_transport *tr)
{
  return tr ? tr->ctx : NULL;
}

int corio_transport_fd(const corio_transport *tr)
{
  return tr ? tr->fd : -EINVAL;
}

corio_loop *corio_transport_loop(const corio_transport *tr)
{
  return tr ? tr->loop : NULL;
}

/* ---------------- addresses ---------------- */

static int parse_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  memset(ss, 0, sizeof(*ss));
  if (!host) host = "::";
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(port);
    *len = sizeof(*in4);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    *len = sizeof(*in6);
    return 0;
  }
  return -EINVAL; /* not numeric: resolve it first (corio_getaddrinfo, later) */
}

/* ---------------- servers ---------------- */

static void arm_accept(corio_server *srv)
{
  struct io_uring_sqe *sqe;
  if (srv->accept_op.inflight || srv->closing) return;
  sqe = corio_op_sqe(srv->loop, &srv->accept_op);
  if (sqe) io_uring_prep_multishot_accept(sqe, srv->fd, NULL, NULL, SOCK_CLOEXEC);
}

static void accept_retry(void *arg)
{
  corio_server *srv = arg;
  srv->retry = 0;
  arm_accept(srv);
  server_maybe_finish(srv);
}

static void accept_conn(corio_server *srv, int fd)
{
  corio_transport *tr;
  int one = 1;
  tr = tr_new(srv->loop, fd, srv->proto);
  if (!tr) {
    close(fd); /* out of memory: refuse this connection, keep serving */
    return;
  }
  if (srv->nodelay) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  tr->srv = srv;
  corio__list_insert_tail(&srv->conns, &tr->node);
  srv->nconns++;
  tr_start(tr, srv->user);
}

static void accept_done(corio_op *op, int res, unsigned flags)
{
  corio_server *srv = corio_container_of(op, corio_server, accept_op);
  bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (res >= 0) {
    if (srv->closing)
      close(res);
    else
      accept_conn(srv, res);
    srv->emfile_logged = false;
  } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    /* Out of descriptors: keep the listener, log once, try again shortly (the pending
     * connections wait in the backlog until fds free up). */
    if (!srv->emfile_logged) {
      corio_exception_ctx ctx = {"accept failed, retrying every 100 ms", res, NULL};
      srv->emfile_logged = true;
      corio_loop_call_exception_handler(srv->loop, &ctx);
    }
    if (!more && !srv->closing && !srv->retry)
      corio_call_later(srv->loop, 0.1, accept_retry, srv, &srv->retry);
    server_maybe_finish(srv);
    return;
  }
  if (!more && !srv->closing && !srv->retry) arm_accept(srv);
  server_maybe_finish(srv);
}

static void server_maybe_finish(corio_server *srv)
{
  if (!srv->closing || srv->accept_op.inflight || srv->retry) return;
  if (srv->close_conns && srv->nconns) return;
  if (srv->fd >= 0) {
    close(srv->fd);
    srv->fd = -1;
  }
  if (srv->nconns) return; /* they detach from us as they go; see below */
  if (srv->closed) {
    corio_future_set_result(srv->closed, 0);
    corio_future_unref(srv->closed);
    srv->closed = NULL;
  }
  if (srv->user_free) srv->user_free(srv->user);
  corio__free(srv);
}

static int server_new(corio_loop *loop, int fd, const corio_protocol *proto, void *user,
                      bool nodelay, corio_server **out)
{
  corio_server *srv = corio__calloc(1, sizeof(*srv));
  if (!srv) return -ENOMEM;
  srv->loop = loop;
  srv->fd = fd;
  srv->proto = proto;
  srv->user = user;
  srv->nodelay = nodelay;
  srv->accept_op.complete = accept_done;
  corio__list_init(&srv->conns);
  if (!bufring_get(loop)) {
    corio__free(srv);
    return -ENOMEM;
  }
  arm_accept(srv);
  *out = srv;
  return 0;
}

static bool proto_ok(const corio_protocol *p)
{
  return p && p->data_received;
}

int corio_server_listen_tcp(corio_loop *loop, const char *host, uint16_t port,
                            const corio_protocol *proto, void *user, const corio_server_opts *opts,
                            corio_server **out)
{
  struct sockaddr_storage ss;
  socklen_t len;
  int fd = -1, rc, one = 1, zero = 0;
  int backlog = opts && opts->backlog > 0 ? opts->backlog : 4096;
  if (!loop || !out || !proto_ok(proto)) return -EINVAL;
  *out = NULL;
  rc = parse_addr(host, port, &ss, &len);
  if (rc < 0) return rc;
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 && !host && errno == EAFNOSUPPORT) { /* no IPv6: all IPv4 addresses */
    parse_addr("0.0.0.0", port, &ss, &len);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return -errno;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (opts && opts->reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (ss.ss_family == AF_INET6 && !host)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  len = sizeof(ss);
  getsockname(fd, (struct sockaddr *)&ss, &len);
  rc = server_new(loop, fd, proto, user, !(opts && opts->no_nodelay), out);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  (*out)->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                               : ((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

int corio_server_listen_unix(corio_loop *loop, const char *path, const corio_protocol *proto,
                             void *user, const corio_server_opts *opts, corio_server **out)
{
  struct sockaddr_un un;
  socklen_t len;
  int fd, rc;
  int backlog = opts && opts->backlog > 0 ? opts->backlog : 4096;
  if (!loop || !out || !proto_ok(proto)) return -EINVAL;
  *out = NULL;
  rc = corio_unix_sockaddr(path, &un, &len);
  if (rc < 0) return rc;
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  /* a stale socket file is replaced, never a live socket or another kind of file */
  rc = corio__unix_bind(fd, SOCK_STREAM, path, &un, len);
  if (rc < 0 || listen(fd, backlog) < 0) {
    rc = rc < 0 ? rc : -errno;
    close(fd);
    return rc;
  }
  rc = server_new(loop, fd, proto, user, false, out);
  if (rc < 0) close(fd);
  return rc;
}

uint16_t corio_server_port(const corio_server *srv)
{
  return srv ? srv->port : 0;
}

size_t corio_server_connections(const corio_server *srv)
{
  return srv ? srv->nconns : 0;
}

corio_future *corio_server_close(corio_server *srv, int close_connections)
{
  corio__list *n, *next;
  corio_future *f;
  if (!srv) return corio__future_failed(corio__loop_current(), -EINVAL);
  if (srv->closing) return corio__future_failed(srv->loop, CORIO_E_CLOSED);
  f = corio_future_new(srv->loop);
  if (!f) return NULL;
  srv->closed = corio_future_ref(f);
  srv->closing = true;
  srv->close_conns = close_connections != 0;
  if (srv->retry) {
    corio_handle_cancel(srv->loop, srv->retry);
    srv->retry = 0;
  }
  if (srv->accept_op.inflight) corio_op_cancel(srv->loop, &srv->accept_op);
  if (close_connections) {
    for (n = srv->conns.next; n != &srv->conns; n = next) {
      next = n->next;
      corio_transport_close(corio_container_of(n, corio_transport, node));
    }
  } else {
    /* Connections outlive the server (asyncio): detach them. */
    for (n = srv->conns.next; n != &srv->conns; n = next) {
      corio_transport *tr = corio_container_of(n, corio_transport, node);
      next = n->next;
      corio__list_remove(&tr->node);
      tr->srv = NULL;
    }
    srv->nconns = 0;
  }
  server_maybe_finish(srv);
  return f;
}

/* ---------------- connecting ---------------- */

struct connect_req {
  corio_future fut;
  corio_op op;
  corio_transport *tr;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  void *user;
  bool cancelled;
  bool defer; /* happy eyeballs: the winner is started by the caller, losers are discarded */
};

static int connect_cancel(corio_future *f)
{
  struct connect_req *c = corio_container_of(f, struct connect_req, fut);
  if (!c->op.inflight) return 0;
  c->cancelled = true;
  corio_op_cancel(c->fut.loop, &c->op);
  return 1;
}

static void connect_destroy(corio_future *f)
{
  corio__free(corio_container_of(f, struct connect_req, fut));
}

static const corio_future_ops connect_ops = {connect_cancel, connect_destroy, "connect"};

static void connect_done(corio_op *op, int res, unsigned flags)
{
  struct connect_req *c = corio_container_of(op, struct connect_req, op);
  corio_transport *tr = c->tr;
  int one = 1;
  (void)flags;
  if (res < 0) {
    close(tr->fd);
    tr_free(tr);
    if (c->cancelled && res == -ECANCELED)
      corio_future_set_cancelled(&c->fut);
    else
      corio_future_set_error(&c->fut, res);
  } else {
    if (c->addr.ss_family != AF_UNIX)
      setsockopt(tr->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    corio_future_set_result_ptr(&c->fut, tr, NULL);
    if (!c->defer) tr_start(tr, c->user);
  }
  corio_future_unref(&c->fut); /* the op's reference */
}

void corio__transport_start(corio_transport *tr, void *user)
{
  tr_start(tr, user);
}

corio_transport *corio__transport_adopt(corio_loop *loop, int fd, const corio_protocol *proto,
                                        void *user)
{
  return corio__transport_adopt_kind(loop, fd, CORIO__TR_SOCKET, proto, user);
}

corio_transport *corio__transport_adopt_kind(corio_loop *loop, int fd, int kind,
                                             const corio_protocol *proto, void *user)
{
  corio_transport *tr = tr_new(loop, fd, proto);
  if (!tr) return NULL;
  tr->kind = kind & ~CORIO__TR_ONESHOT;
  if (kind & CORIO__TR_ONESHOT) tr->flags |= TR_ONESHOT;
  /* Started from the ready queue's next turn's point of view: the caller gets the pointer back
   * even if connection_made closes the transport, which is freed only after rearm_later runs. */
  tr->holds++;
  if (corio_call_soon(loop, rearm_later, tr, NULL) < 0) {
    tr_free(tr);
    return NULL;
  }
  tr_start(tr, user);
  return tr;
}

int corio__transport_kind(const corio_transport *tr)
{
  return tr->kind;
}

void corio__transport_discard(corio_transport *tr)
{
  close(tr->fd);
  tr_free(tr);
}

corio_future *corio__connect_addr(corio_loop *loop, const struct sockaddr_storage *ss,
                                  socklen_t len, const corio_protocol *proto, void *user,
                                  bool defer)
{
  struct connect_req *c;
  struct io_uring_sqe *sqe;
  int fd;
  fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return corio__future_failed(loop, -errno);
  c = corio__calloc(1, sizeof(*c));
  if (!c) {
    close(fd);
    return NULL;
  }
  corio_future_init(&c->fut, loop, &connect_ops);
  c->tr = tr_new(loop, fd, proto);
  if (!c->tr) {
    close(fd);
    corio__free(c);
    return corio__future_failed(loop, -ENOMEM);
  }
  c->addr = *ss;
  c->addrlen = len;
  c->user = user;
  c->defer = defer;
  c->op.complete = connect_done;
  sqe = corio_op_sqe(loop, &c->op);
  if (!sqe) {
    close(fd);
    tr_free(c->tr);
    corio_future_set_error(&c->fut, -EBUSY);
    return &c->fut;
  }
  io_uring_prep_connect(sqe, fd, (struct sockaddr *)&c->addr, c->addrlen);
  corio_future_ref(&c->fut); /* held by the op */
  return &c->fut;
}

corio_future *corio_connect_tcp(corio_loop *loop, const char *host, uint16_t port,
                                const corio_protocol *proto, void *user)
{
  struct sockaddr_storage ss;
  socklen_t len;
  int rc;
  if (!loop || !host || !proto_ok(proto)) return corio__future_failed(loop, -EINVAL);
  rc = parse_addr(host, port, &ss, &len);
  if (rc < 0) return corio__future_failed(loop, rc);
  return corio__connect_addr(loop, &ss, len, proto, user, false);
}

corio_future *corio_connect_unix(corio_loop *loop, const char *path, const corio_protocol *proto,
                                 void *user)
{
  struct sockaddr_storage ss;
  socklen_t len;
  int rc;
  if (!loop || !proto_ok(proto)) return corio__future_failed(loop, -EINVAL);
  rc = corio_unix_sockaddr(path, (struct sockaddr_un *)&ss, &len);
  if (rc < 0) return corio__future_failed(loop, rc);
  return corio__connect_addr(loop, &ss, len, proto, user, false);
}
