/*
 * echo — asyncio streams: an echo server and concurrent clients in one program.
 *
 * Python:
 *     async def handle(reader, writer):
 *         while line := await reader.readline(): writer.write(line); await writer.drain()
 *         writer.close(); await writer.wait_closed()
 *     server = await asyncio.start_server(handle, "127.0.0.1", 0)
 *     async def client(i):
 *         r, w = await asyncio.open_connection("127.0.0.1", port)
 *         for n in range(100): w.write(f"{i} {n}\n".encode()); assert await r.readline() == ...
 *     await asyncio.gather(*(client(i) for i in range(50)))
 */
#include <stdio.h>
#include <string.h>
#include <corio.h>

#define NCLIENTS 50
#define NLINES   100

struct handler {
  corio_task task;
  corio_stream *s;
};

static corio_step handler_step(corio_task *t)
{
  struct handler *h = corio_container_of(t, struct handler, task);
  const corio_bytes *line;
  CORIO_BEGIN(t);
  for (;;) {
    CORIO_AWAIT_TRY(t, corio_stream_readline(h->s));
    line = corio_future_bytes(corio_awaited(t));
    if (line->len == 0) break; /* the client closed */
    CORIO_AWAIT_TRY(t, corio_stream_write_all(h->s, line->data, line->len));
  }
  CORIO_FINALLY(t);
  CORIO_AWAIT(t, corio_stream_close(h->s));
  CORIO_END(t);
}

static void on_connection(corio_stream *s, void *loop)
{
  struct handler *h = corio_task_new(loop, handler_step, struct handler, task);
  h->s = s;
  corio_task_start(&h->task);
  corio_future_unref(&h->task.fut); /* the loop owns it until it is done */
}

struct client {
  corio_task task;
  uint16_t port;
  int id, n, ok;
  corio_stream *s;
  char line[64];
  size_t len;
};

static corio_step client_step(corio_task *t)
{
  struct client *c = corio_container_of(t, struct client, task);
  const corio_bytes *b;
  CORIO_BEGIN(t);
  CORIO_AWAIT_TRY(t, corio_open_connection(t->loop, "127.0.0.1", c->port));
  c->s = corio_future_ptr(corio_awaited(t));
  for (c->n = 0; c->n < NLINES; c->n++) {
    c->len = (size_t)snprintf(c->line, sizeof(c->line), "client %d line %d\n", c->id, c->n);
    CORIO_AWAIT_TRY(t, corio_stream_write_all(c->s, c->line, c->len));
    CORIO_AWAIT_TRY(t, corio_stream_readline(c->s));
    b = corio_future_bytes(corio_awaited(t));
    if (b->len == c->len && memcmp(b->data, c->line, c->len) == 0) c->ok++;
  }
  CORIO_FINALLY(t);
  if (c->s) CORIO_AWAIT(t, corio_stream_close(c->s));
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  corio_server *srv;
  struct client *c[NCLIENTS];
  corio_future *futs[NCLIENTS];
  int total;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  int i;
  CORIO_BEGIN(t);
  CORIO_TRY(t, corio_start_server(t->loop, "127.0.0.1", 0, on_connection, t->loop, NULL, &m->srv));
  printf("echo server on 127.0.0.1:%u\n", corio_server_port(m->srv));
  for (i = 0; i < NCLIENTS; i++) {
    m->c[i] = corio_task_new(t->loop, client_step, struct client, task);
    m->c[i]->port = corio_server_port(m->srv);
    m->c[i]->id = i;
    m->futs[i] = corio_task_spawn(&m->c[i]->task);
  }
  CORIO_AWAIT_TRY(t, corio_gather(m->futs, NCLIENTS, 0));
  for (i = 0; i < NCLIENTS; i++) m->total += m->c[i]->ok;
  printf("%d clients x %d lines: %d echoed back intact\n", NCLIENTS, NLINES, m->total);
  CORIO_FINALLY(t);
  for (i = 0; i < NCLIENTS; i++)
    if (m->c[i]) corio_future_unref(&m->c[i]->task.fut);
  if (m->srv) CORIO_AWAIT(t, corio_server_close(m->srv, 1));
  CORIO_END(t);
}

int main(void)
{
  corio_loop *loop;
  struct main_task *m;
  int rc = corio_loop_new(&loop, NULL);
  if (rc < 0) return fprintf(stderr, "corio_loop_new: %s\n", corio_strerror(rc)), 1;
  m = corio_task_new(loop, main_step, struct main_task, task);
  corio_task_start(&m->task);
  rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  corio_future_unref(&m->task.fut);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  if (rc < 0) fprintf(stderr, "error: %s\n", corio_strerror(rc));
  return corio_loop_close(loop) != 0 || rc < 0;
}
