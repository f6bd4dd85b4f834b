/* Streams for tasks: a task per connection on the server, readline / readexactly / readuntil /
 * read at EOF, limits, a cancelled read that loses nothing, drain, close. Loopback only. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(stream, .init = setup, .timeout = 30);

static void drain_loop(void)
{
  int i;
  for (i = 0; i < 100 && corio_loop_run_once(loop, 0.01) > 0; i++) {
  }
}

/* Server: a task per connection echoing lines back upper-cased until EOF. */
struct conn {
  corio_task task;
  corio_stream *s;
  uint8_t buf[1024];
  size_t n;
};
static int server_tasks_done;
static corio_step conn_step(corio_task *t)
{
  struct conn *c = corio_container_of(t, struct conn, task);
  const corio_bytes *line;
  size_t i;
  CORIO_BEGIN(t);
  for (;;) {
    CORIO_AWAIT_TRY(t, corio_stream_readline(c->s));
    line = corio_future_bytes(corio_awaited(t));
    if (line->len == 0) break; /* EOF */
    c->n = line->len < sizeof(c->buf) ? line->len : sizeof(c->buf);
    for (i = 0; i < c->n; i++)
      c->buf[i] = (uint8_t)(line->data[i] >= 'a' && line->data[i] <= 'z' ? line->data[i] - 32
                                                                         : line->data[i]);
    CORIO_AWAIT_TRY(t, corio_stream_write_all(c->s, c->buf, c->n));
  }
  CORIO_FINALLY(t);
  server_tasks_done++;
  CORIO_AWAIT(t, corio_stream_close(c->s));
  CORIO_END(t);
}
static void on_client(corio_stream *s, void *user)
{
  struct conn *c =
      corio_task_new(corio_transport_loop(corio_stream_transport(s)), conn_step, struct conn, task);
  (void)user;
  c->s = s;
  corio_task_start(&c->task);
  corio_future_unref(&c->task.fut); /* fire and forget: the loop owns it */
}

/* Client task. */
struct client {
  corio_task task;
  uint16_t port;
  corio_stream *s;
  int step_ok;
  corio_future *pending, *other;
};
static corio_step client_step(corio_task *t)
{
  struct client *c = corio_container_of(t, struct client, task);
  const corio_bytes *b;
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_open_connection(t->loop, "127.0.0.1", c->port));
  c->s = corio_future_ptr(corio_awaited(t));
  /* a read cancelled before any data arrives loses nothing; one read waits at a time */
  c->pending = corio_stream_readline(c->s);
  cr_assert_not(corio_future_done(c->pending));
  c->other = corio_stream_read(c->s, 10);
  cr_assert_eq(corio_future_error(c->other), CORIO_E_READ_PENDING);
  corio_future_unref(c->other);
  cr_assert_eq(corio_future_cancel(c->pending), 1);
  cr_assert(corio_future_cancelled(c->pending));
  corio_future_unref(c->pending);
  CORIO_AWAIT_TRY(t, corio_stream_write_all(c->s, "hello\nworld\nabc", 15));
  CORIO_AWAIT_TRY(t, corio_stream_readline(c->s));
  b = corio_future_bytes(corio_awaited(t));
  cr_assert_eq(b->len, 6);
  cr_assert_eq(memcmp(b->data, "HELLO\n", 6), 0);
  c->step_ok++;
  CORIO_AWAIT_TRY(t, corio_stream_readexactly(c->s, 3));
  b = corio_future_bytes(corio_awaited(t));
  cr_assert_eq(memcmp(b->data, "WOR", 3), 0);
  c->step_ok++;
  CORIO_AWAIT_TRY(t, corio_stream_readuntil(c->s, "\n", 1));
  b = corio_future_bytes(corio_awaited(t));
  cr_assert_eq(b->len, 3);
  cr_assert_eq(memcmp(b->data, "LD\n", 3), 0);
  c->step_ok++;
  /* the unterminated "abc" comes back after we half-close: readline gives what is left */
  CORIO_TRY(t, corio_stream_write(c->s, "\n", 1));
  CORIO_TRY(t, corio_stream_write_eof(c->s));
  CORIO_AWAIT_TRY(t, corio_stream_readline(c->s));
  b = corio_future_bytes(corio_awaited(t));
  cr_assert_eq(b->len, 4);
  cr_assert_eq(memcmp(b->data, "ABC\n", 4), 0);
  CORIO_AWAIT_TRY(t, corio_stream_read(c->s, 100));
  cr_assert_eq(corio_future_bytes(corio_awaited(t))->len, 0, "EOF reads empty");
  cr_assert(corio_stream_at_eof(c->s));
  CORIO_AWAIT(t, corio_stream_readexactly(c->s, 1));
  cr_assert_eq(corio_future_error(corio_awaited(t)), CORIO_E_INCOMPLETE_READ);
  c->step_ok++;
  CORIO_FINALLY(t);
  if (c->s) CORIO_AWAIT(t, corio_stream_close(c->s));
  CORIO_END(t);
}

Test(stream, task_per_connection_line_protocol)
{
  corio_server *srv;
  struct client *c;
  corio_future *f;
  server_tasks_done = 0;
  cr_assert_eq(corio_start_server(loop, "127.0.0.1", 0, on_client, NULL, NULL, &srv), 0);
  c = corio_task_new(loop, client_step, struct client, task);
  c->port = corio_server_port(srv);
  corio_task_start(&c->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, &c->task.fut), 0);
  cr_assert_eq(corio_future_error(&c->task.fut), 0, "%s",
               corio_strerror(corio_future_error(&c->task.fut)));
  cr_assert_eq(c->step_ok, 4);
  corio_future_unref(&c->task.fut);
  drain_loop();
  cr_assert_eq(server_tasks_done, 1);
  f = corio_server_close(srv, 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  corio_future_unref(f);
  drain_loop();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* readuntil beyond the limit: CORIO_E_LIMIT_OVERRUN, and the data is still there. */
struct limiter {
  corio_task task;
  uint16_t port;
  corio_stream *s;
  int overrun;
};
static corio_step limiter_step(corio_task *t)
{
  struct limiter *l = corio_container_of(t, struct limiter, task);
  static char big[300];
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_open_connection(t->loop, "127.0.0.1", l->port));
  l->s = corio_future_ptr(corio_awaited(t));
  corio_stream_set_limit(l->s, 100);
  memset(big, 'x', sizeof(big));
  big[sizeof(big) - 1] = '\n';
  CORIO_AWAIT_TRY(t, corio_stream_write_all(l->s, big, sizeof(big)));
  CORIO_AWAIT(t, corio_stream_readline(l->s));
  l->overrun = corio_future_error(corio_awaited(t));
  CORIO_AWAIT_TRY(t, corio_stream_readexactly(l->s, 300));
  cr_assert_eq(corio_future_bytes(corio_awaited(t))->data[299], '\n');
  CORIO_FINALLY(t);
  if (l->s) CORIO_AWAIT(t, corio_stream_close(l->s));
  CORIO_END(t);
}

Test(stream, readline_limit_overrun_keeps_data)
{
  corio_server *srv;
  struct limiter *l;
  corio_future *f;
  cr_assert_eq(corio_start_server(loop, "127.0.0.1", 0, on_client, NULL, NULL, &srv), 0);
  l = corio_task_new(loop, limiter_step, struct limiter, task);
  l->port = corio_server_port(srv);
  corio_task_start(&l->task);
  cr_assert_eq(corio_loop_run_until_complete(loop, &l->task.fut), 0);
  cr_assert_eq(corio_future_error(&l->task.fut), 0);
  cr_assert_eq(l->overrun, CORIO_E_LIMIT_OVERRUN);
  corio_future_unref(&l->task.fut);
  f = corio_server_close(srv, 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  corio_future_unref(f);
  drain_loop();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(stream, open_connection_refused_and_bad_input)
{
  corio_server *srv;
  uint16_t port;
  corio_future *f;
  cr_assert_eq(corio_start_server(loop, "127.0.0.1", 0, on_client, NULL, NULL, &srv), 0);
  port = corio_server_port(srv);
  f = corio_server_close(srv, 1);
  corio_loop_run_until_complete(loop, f);
  corio_future_unref(f);
  f = corio_open_connection(loop, "127.0.0.1", port);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), -ECONNREFUSED);
  corio_future_unref(f);
  cr_assert_eq(corio_start_server(loop, "127.0.0.1", 0, NULL, NULL, NULL, &srv), -EINVAL);
  cr_assert_eq(corio_stream_write(NULL, "x", 1), -EINVAL);
  f = corio_stream_read(NULL, 1);
  cr_assert_eq(corio_future_error(f), -EINVAL);
  corio_future_unref(f);
  drain_loop();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A connect cancelled by wait_for's timeout (a routable-but-silent address is not available on
 * loopback, so cancel at once instead). */
Test(stream, cancel_open_connection)
{
  corio_server *srv;
  corio_future *f, *c;
  cr_assert_eq(corio_start_server(loop, "127.0.0.1", 0, on_client, NULL, NULL, &srv), 0);
  f = corio_open_connection(loop, "127.0.0.1", corio_server_port(srv));
  cr_assert_eq(corio_future_cancel(f), 1);
  corio_loop_run_until_complete(loop, f);
  /* On loopback the connect may complete before the cancel reaches it: then we own a stream. */
  cr_assert(corio_future_cancelled(f) || corio_future_error(f) == 0);
  if (!corio_future_cancelled(f)) {
    c = corio_stream_close(corio_future_ptr(f));
    corio_loop_run_until_complete(loop, c);
    corio_future_unref(c);
  }
  corio_future_unref(f);
  drain_loop();
  c = corio_server_close(srv, 1);
  corio_loop_run_until_complete(loop, c);
  corio_future_unref(c);
  drain_loop();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Read results of every size class (inline in the request up to 256 bytes, allocated above),
 * byte-exact; results stay valid while their futures live, even as later reads reuse a spare
 * request; stealing an inline result gives an owned copy. */
static uint8_t pat(size_t i)
{
  return (uint8_t)(i * 31 + (i >> 7));
}

Test(stream, read_results_of_every_size_stay_valid)
{
  static const size_t sizes[] = {1, 255, 256, 257, 4096, 70000};
  corio_stream *rd, *wr;
  corio_future *held[64];
  size_t nheld = 0, si, i, off = 0;
  cr_assert_eq(corio_pipe_open(loop, &rd, &wr), 0);
  for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
    size_t want = sizes[si], got = 0;
    uint8_t *buf = malloc(want);
    for (i = 0; i < want; i++) buf[i] = pat(off + i);
    cr_assert_eq(corio_stream_write(wr, buf, want), 0);
    free(buf);
    while (got < want) {
      corio_future *f = corio_stream_read(rd, want - got);
      const corio_bytes *b;
      cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
      b = corio_future_bytes(f);
      cr_assert_not_null(b, "read failed: %s", corio_strerror(corio_future_error(f)));
      cr_assert_gt(b->len, 0);
      for (i = 0; i < b->len; i++)
        cr_assert_eq(b->data[i], pat(off + got + i), "size %zu byte %zu", want, got + i);
      if (nheld < 64)
        held[nheld++] = f; /* kept: checked again below */
      else
        corio_future_unref(f);
      got += b->len;
    }
    off += want;
  }
  /* every held result still reads right */
  off = 0;
  for (i = 0; i < nheld; i++) {
    const corio_bytes *b = corio_future_bytes(held[i]);
    size_t j;
    for (j = 0; j < b->len; j++) cr_assert_eq(b->data[j], pat(off + j));
    off += b->len;
  }
  /* steal an inline result: an owned copy that outlives the future */
  {
    corio_bytes owned = corio_future_steal_bytes(held[0]);
    cr_assert_eq(owned.len, 1);
    cr_assert_eq(owned.data[0], pat(0));
    corio_future_unref(held[0]);
    cr_assert_eq(owned.data[0], pat(0));
    corio_bytes_free(&owned);
  }
  for (i = 1; i < nheld; i++) corio_future_unref(held[i]);
  corio_future_unref(corio_stream_close(wr));
  corio_future_unref(corio_stream_close(rd));
  drain_loop();
  cr_assert_eq(corio_loop_close(loop), 0);
}
