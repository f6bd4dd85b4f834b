/*
 * Streams: asyncio's StreamReader/StreamWriter as futures for tasks, on top of the transports.
 *
 * A stream is shared by its user and its transport and freed when both are done with it (the
 * user called corio_stream_close and the transport reported connection_lost). One read waits at
 * a time; data stays in the stream's buffer until a read takes it, so a cancelled read loses
 * nothing. Reading is paused when more than twice the limit is buffered (read-side flow
 * control), writing waits in drain while the transport is above its high-water mark.
 */
#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include "transport_impl.h"

enum { RD_ANY = 1, RD_EXACT, RD_UNTIL, RD_LINE };

/* Results up to this size live in the request itself: one allocation per read, not two. */
#define READ_INLINE 256

struct read_req {
  corio_future fut;
  corio_stream *home; /* holds a reference on it until destroyed */
  corio_stream *s;    /* while pending */
  int kind;
  size_t n;
  uint8_t *sep;
  size_t seplen;
  uint8_t small[READ_INLINE]; /* not zeroed */
};

struct corio_stream {
  corio_loop *loop;
  corio_transport *tr; /* NULL once the connection is lost */
  corio__buf rbuf;
  size_t limit;
  bool eof, lost, user_closed, write_paused, read_paused;
  bool no_read, no_write; /* a pipe's write end / read end */
  int err;
  int refs; /* user + transport + each read request not yet destroyed */
  struct read_req *rd;
  struct read_req *spare; /* the last read request, kept for the next read (no malloc) */
  corio_future **drains;
  size_t ndrains, capdrains;
  corio_future *closed;
  corio_stream **owner_slot; /* cleared by the user's close (see corio__stream_set_owner_slot) */
};

struct stream_server {
  corio_stream_handler handler;
  void *user;
};

static void stream_release(corio_stream *s)
{
  if (--s->refs) return;
  corio__free(s->spare);
  corio__buf_free(&s->rbuf);
  corio__free(s->drains);
  corio__free(s);
}

/* ---- reads ---- */

static int read_cancel(corio_future *f)
{
  struct read_req *r = corio_container_of(f, struct read_req, fut);
  if (r->s && r->s->rd == r) {
    r->s->rd = NULL;
    r->s = NULL;
    corio_future_set_cancelled(f);
    corio_future_unref(f); /* the stream's reference */
    return 1;
  }
  return 0;
}

static void read_destroy(corio_future *f)
{
  struct read_req *r = corio_container_of(f, struct read_req, fut);
  corio_stream *home = r->home;
  corio__free(r->sep);
  r->sep = NULL;
  if (!home->spare && home->refs > 1)
    home->spare = r;
  else
    corio__free(r);
  stream_release(home);
}

static const corio_future_ops read_ops = {read_cancel, read_destroy, "stream read"};

static void maybe_resume_reading(corio_stream *s)
{
  if (s->read_paused && s->tr && s->rbuf.len < s->limit) {
    s->read_paused = false;
    corio_transport_resume_reading(s->tr);
  }
}

/* Complete the pending read with @p take bytes from @p src (or with @p err); the caller
 * consumes them from wherever they were. @return 0, or -ENOMEM (the read failed with it). */
static int read_finish_from(corio_stream *s, const uint8_t *src, size_t take, int err)
{
  struct read_req *r = s->rd;
  corio_bytes b;
  int rc = 0;
  s->rd = NULL;
  r->s = NULL;
  if (err) {
    corio_future_set_error(&r->fut, err);
  } else if (take <= READ_INLINE) {
    if (take) memcpy(r->small, src, take);
    corio__future_set_result_bytes_ref(&r->fut, r->small, take);
  } else {
    b = corio_bytes_alloc(take);
    if (!b.data) {
      corio_future_set_error(&r->fut, -ENOMEM);
      rc = -ENOMEM;
    } else {
      memcpy(b.data, src, take);
      corio_future_set_result_bytes(&r->fut, b);
    }
  }
  corio_future_unref(&r->fut);
  return rc;
}

static void read_finish(corio_stream *s, size_t take, int err)
{
  if (read_finish_from(s, s->rbuf.data, take, err) == 0 && !err) corio__buf_consume(&s->rbuf, take);
  maybe_resume_reading(s);
}

static int end_error(const corio_stream *s)
{
  return s->err ? s->err : CORIO_E_INCOMPLETE_READ;
}

static void try_read(corio_stream *s)
{
  struct read_req *r = s->rd;
  const uint8_t *p;
  size_t len = s->rbuf.len, pos;
  if (!r) return;
  switch (r->kind) {
  case RD_ANY:
    if (len)
      read_finish(s, len < r->n ? len : r->n, 0);
    else if (s->eof)
      read_finish(s, 0, s->err);
    return;
  case RD_EXACT:
    if (len >= r->n)
      read_finish(s, r->n, 0);
    else if (s->eof)
      read_finish(s, 0, end_error(s));
    return;
  default:
    p = len >= r->seplen ? memmem(s->rbuf.data, len, r->sep, r->seplen) : NULL;
    if (p) {
      pos = (size_t)(p - s->rbuf.data) + r->seplen;
      read_finish(s, pos, pos > s->limit ? CORIO_E_LIMIT_OVERRUN : 0);
    } else if (len > s->limit) {
      read_finish(s, 0, CORIO_E_LIMIT_OVERRUN);
    } else if (s->eof) {
      if (r->kind == RD_LINE && !s->err)
        read_finish(s, len, 0);
      else
        read_finish(s, 0, end_error(s));
    }
  }
}

static corio_future *read_new(corio_stream *s, int kind, size_t n, const void *sep, size_t seplen)
{
  struct read_req *r;
  if (!s) return corio__future_failed(corio__loop_current(), -EINVAL);
  if (s->user_closed) return corio__future_failed(s->loop, CORIO_E_CLOSED);
  if (s->rd) return corio__future_failed(s->loop, CORIO_E_READ_PENDING);
  if (s->no_read) return corio__future_failed(s->loop, -EBADF); /* a pipe's write end */
  if (s->spare) {
    r = s->spare;
    s->spare = NULL;
  } else {
    r = corio__malloc(sizeof(*r));
    if (!r) return NULL;
  }
  memset(r, 0, offsetof(struct read_req, small));
  r->home = s;
  s->refs++;
  corio_future_init(&r->fut, s->loop, &read_ops);
  r->s = s;
  r->kind = kind;
  r->n = n;
  if (seplen) {
    r->sep = corio__malloc(seplen);
    if (!r->sep) {
      corio__free(r);
      stream_release(s);
      return NULL;
    }
    memcpy(r->sep, sep, seplen);
    r->seplen = seplen;
  }
  s->rd = r;
  corio_future_ref(&r->fut); /* the stream's, while pending */
  try_read(s);
  return &r->fut;
}

corio_future *corio_stream_read(corio_stream *s, size_t max)
{
  if (s && max == 0) return corio__future_failed(s->loop, -EINVAL);
  return read_new(s, RD_ANY, max, NULL, 0);
}

corio_future *corio_stream_readexactly(corio_stream *s, size_t n)
{
  return read_new(s, RD_EXACT, n, NULL, 0);
}

corio_future *corio_stream_readuntil(corio_stream *s, const void *sep, size_t seplen)
{
  if (s && (!sep || !seplen)) return corio__future_failed(s->loop, -EINVAL);
  return read_new(s, RD_UNTIL, 0, sep, seplen);
}

corio_future *corio_stream_readline(corio_stream *s)
{
  return read_new(s, RD_LINE, 0, "\n", 1);
}

int corio_stream_set_limit(corio_stream *s, size_t limit)
{
  if (!s || !limit) return -EINVAL;
  s->limit = limit;
  return 0;
}

int corio_stream_at_eof(const corio_stream *s)
{
  return s && s->eof && s->rbuf.len == 0;
}

/* ---- writes ---- */

static void drains_finish(corio_stream *s, int err)
{
  size_t i;
  for (i = 0; i < s->ndrains; i++) {
    if (err)
      corio_future_set_error(s->drains[i], err);
    else
      corio_future_set_result(s->drains[i], 0);
    corio_future_unref(s->drains[i]);
  }
  s->ndrains = 0;
}

int corio_stream_write(corio_stream *s, const void *data, size_t len)
{
  if (!s) return -EINVAL;
  if (s->user_closed) return CORIO_E_CLOSED;
  if (s->no_write) return -EBADF; /* a pipe's read end */
  if (!s->tr) return s->err ? s->err : -EPIPE;
  return corio_transport_write(s->tr, data, len);
}

corio_future *corio_stream_drain(corio_stream *s)
{
  corio_future *f;
  if (!s) return corio__future_failed(corio__loop_current(), -EINVAL);
  if (!s->tr) return corio__future_failed(s->loop, s->err ? s->err : -EPIPE);
  f = corio_future_new(s->loop);
  if (!f) return NULL;
  if (!s->write_paused) {
    corio_future_set_result(f, 0);
    return f;
  }
  if (s->ndrains == s->capdrains) {
    size_t ncap = s->capdrains ? s->capdrains * 2 : 4;
    corio_future **n = corio__realloc(s->drains, ncap * sizeof(*n));
    if (!n) {
      corio_future_set_error(f, -ENOMEM);
      return f;
    }
    s->drains = n;
    s->capdrains = ncap;
  }
  s->drains[s->ndrains++] = corio_future_ref(f);
  return f;
}

corio_future *corio_stream_write_all(corio_stream *s, const void *data, size_t len)
{
  int rc = corio_stream_write(s, data, len);
  if (rc < 0) return corio__future_failed(s ? s->loop : corio__loop_current(), rc);
  return corio_stream_drain(s);
}

int corio_stream_write_eof(corio_stream *s)
{
  if (!s) return -EINVAL;
  if (!s->tr) return -ENOTCONN;
  return corio_transport_write_eof(s->tr);
}

corio_future *corio_stream_close(corio_stream *s)
{
  corio_future *f;
  if (!s) return corio__future_failed(corio__loop_current(), -EINVAL);
  if (s->user_closed) return corio__future_failed(s->loop, CORIO_E_CLOSED);
  f = corio_future_new(s->loop);
  if (!f) return NULL;
  s->user_closed = true;
  if (s->owner_slot) *s->owner_slot = NULL; /* the owner must not close it a second time */
  s->owner_slot = NULL;
  if (s->rd) read_finish(s, 0, CORIO_E_CLOSED);
  if (s->tr) {
    s->closed = corio_future_ref(f);
    corio_transport_close(s->tr);
  } else {
    corio_future_set_result(f, 0);
  }
  stream_release(s); /* the user's reference */
  return f;
}

void corio__stream_set_owner_slot(corio_stream *s, corio_stream **slot)
{
  s->owner_slot = slot;
}

corio_transport *corio_stream_transport(corio_stream *s)
{
  return s ? s->tr : NULL;
}

/* ---- the protocol under a stream ---- */

static corio_stream *stream_new(corio_loop *loop)
{
  corio_stream *s = corio__calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->loop = loop;
  s->limit = 64 * 1024;
  s->refs = 2;
  return s;
}

/* Client side: the user pointer is the stream made by open_connection. */
static void sp_client_made(corio_transport *tr, void *user)
{
  corio_stream *s = user;
  s->tr = tr;
  corio_transport_set_context(tr, s);
}

/* Server side: the user pointer is the server's handler; each connection gets a new stream. */
static void sp_server_made(corio_transport *tr, void *user)
{
  struct stream_server *ss = user;
  corio_stream *s = stream_new(corio_transport_loop(tr));
  if (!s) {
    corio_transport_abort(tr); /* no connection_lost without a context: see sp_lost */
    return;
  }
  s->tr = tr;
  corio_transport_set_context(tr, s);
  ss->handler(s, ss->user);
}

static void sp_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  corio_stream *s = corio_transport_get_context(tr);
  size_t take;
  /* The common case of a task waiting in read() on an empty buffer: serve it straight from the
   * transport's buffer, and keep only the rest. */
  if (s->rd && s->rd->kind == RD_ANY && s->rbuf.len == 0 && n) {
    take = n < s->rd->n ? n : s->rd->n;
    if (read_finish_from(s, d, take, 0) == 0) {
      d += take;
      n -= take;
    }
    if (!n) return;
  }
  if (corio__buf_append(&s->rbuf, d, n) < 0) {
    corio_transport_abort(tr);
    return;
  }
  if (!s->read_paused && s->rbuf.len > 2 * s->limit) {
    s->read_paused = true;
    corio_transport_pause_reading(tr);
  }
  try_read(s);
}

static int sp_eof(corio_transport *tr)
{
  corio_stream *s = corio_transport_get_context(tr);
  s->eof = true;
  try_read(s);
  return 1; /* keep the write side open: the task decides when to close */
}

static void sp_lost(corio_transport *tr, int err)
{
  corio_stream *s = corio_transport_get_context(tr);
  if (!s) return; /* aborted in connection_made for lack of memory */
  s->tr = NULL;
  s->lost = true;
  s->eof = true;
  s->err = err == -ECONNABORTED && s->user_closed ? 0 : err;
  try_read(s);
  drains_finish(s, s->err ? s->err : -EPIPE);
  if (s->closed) {
    corio_future_set_result(s->closed, 0);
    corio_future_unref(s->closed);
    s->closed = NULL;
  }
  stream_release(s); /* the transport's reference */
}

static void sp_pause(corio_transport *tr)
{
  corio_stream *s = corio_transport_get_context(tr);
  s->write_paused = true;
}

static void sp_resume(corio_transport *tr)
{
  corio_stream *s = corio_transport_get_context(tr);
  s->write_paused = false;
  drains_finish(s, 0);
}

static const corio_protocol client_proto = {sp_client_made, sp_data,  sp_eof,
                                            sp_lost,        sp_pause, sp_resume};
static const corio_protocol server_proto = {sp_server_made, sp_data,  sp_eof,
                                            sp_lost,        sp_pause, sp_resume};

corio_stream *corio__stream_adopt(corio_loop *loop, int fd)
{
  corio_stream *s = stream_new(loop);
  if (!s || !corio__transport_adopt(loop, fd, &client_proto, s)) {
    corio__free(s);
    close(fd);
    return NULL;
  }
  return s;
}

corio_stream *corio__stream_adopt_kind(corio_loop *loop, int fd, int kind)
{
  corio_stream *s = stream_new(loop);
  if (!s) return NULL;
  s->no_read = (kind & ~CORIO__TR_ONESHOT) == CORIO__TR_PIPE_W;
  s->no_write = (kind & ~CORIO__TR_ONESHOT) == CORIO__TR_PIPE_R;
  if (!corio__transport_adopt_kind(loop, fd, kind, &client_proto, s)) {
    corio__free(s);
    return NULL;
  }
  return s;
}

/* ---- connecting and serving ---- */

struct open_req {
  corio_future fut;
  corio_future *inner;
  corio_stream *s;
};

static int open_cancel(corio_future *f)
{
  struct open_req *o = corio_container_of(f, struct open_req, fut);
  return corio_future_cancel(o->inner);
}

static void open_destroy(corio_future *f)
{
  struct open_req *o = corio_container_of(f, struct open_req, fut);
  corio_future_unref(o->inner);
  corio__free(o);
}

static const corio_future_ops open_ops = {open_cancel, open_destroy, "open_connection"};

static void open_done(corio_future *inner, void *arg)
{
  struct open_req *o = arg;
  int err = corio_future_error(inner);
  if (err || corio_future_cancelled(inner)) {
    corio__free(o->s); /* never attached to a transport */
    o->s = NULL;
    if (corio_future_cancelled(inner))
      corio_future_set_cancelled(&o->fut);
    else
      corio_future_set_error(&o->fut, err);
  } else if (corio_future_set_result_ptr(&o->fut, o->s, NULL) < 0) {
    /* cancelled while the connect succeeded: nobody will own the stream, close it */
    corio_future_unref(corio_stream_close(o->s));
  }
  corio_future_unref(&o->fut);
}

static corio_future *open_with(corio_loop *loop,
                               corio_future *(*connect)(corio_loop *, const char *, uint16_t,
                                                        const corio_protocol *, void *),
                               const char *where, uint16_t port, bool is_unix)
{
  struct open_req *o;
  corio_stream *s;
  if (!loop) return corio__future_failed(NULL, -EINVAL);
  s = stream_new(loop);
  o = corio__calloc(1, sizeof(*o));
  if (!s || !o) {
    corio__free(s);
    corio__free(o);
    return NULL;
  }
  corio_future_init(&o->fut, loop, &open_ops);
  o->s = s;
  if (is_unix)
    o->inner = corio_connect_unix(loop, where, &client_proto, s);
  else
    o->inner = connect(loop, where, port, &client_proto, s);
  if (!o->inner) {
    corio__free(s);
    corio__free(o);
    return NULL;
  }
  corio_future_ref(&o->fut);
  if (corio_future_add_done_callback(o->inner, open_done, o) < 0) {
    corio_future_unref(&o->fut);
    corio_future_cancel(o->inner);
    corio_future_set_error(&o->fut, -ENOMEM);
  }
  return &o->fut;
}

/* Host names and addresses alike go through corio_connect (resolver + happy eyeballs). */
static corio_future *connect_by_name(corio_loop *loop, const char *host, uint16_t port,
                                     const corio_protocol *proto, void *user)
{
  return corio_connect(loop, host, port, proto, user, NULL);
}

corio_future *corio_open_connection(corio_loop *loop, const char *host, uint16_t port)
{
  return open_with(loop, connect_by_name, host, port, false);
}

corio_future *corio_open_unix_connection(corio_loop *loop, const char *path)
{
  return open_with(loop, NULL, path, 0, true);
}

static int serve(corio_loop *loop, const char *where, uint16_t port, bool is_unix,
                 corio_stream_handler handler, void *user, const corio_server_opts *opts,
                 corio_server **out)
{
  struct stream_server *ss;
  int rc;
  if (!loop || !handler || !out) return -EINVAL;
  ss = corio__malloc(sizeof(*ss));
  if (!ss) return -ENOMEM;
  ss->handler = handler;
  ss->user = user;
  rc = is_unix ? corio_server_listen_unix(loop, where, &server_proto, ss, opts, out)
               : corio_server_listen_tcp(loop, where, port, &server_proto, ss, opts, out);
  if (rc < 0) {
    corio__free(ss);
    return rc;
  }
  corio__server_set_user_free(*out, corio__free);
  return 0;
}

int corio_start_server(corio_loop *loop, const char *host, uint16_t port,
                       corio_stream_handler handler, void *user, const corio_server_opts *opts,
                       corio_server **out)
{
  return serve(loop, host, port, false, handler, user, opts, out);
}

int corio_start_unix_server(corio_loop *loop, const char *path, corio_stream_handler handler,
                            void *user, const corio_server_opts *opts, corio_server **out)
{
  return serve(loop, path, 0, true, handler, user, opts, out);
}
