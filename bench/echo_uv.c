/* libuv echo server: uv_read_start + uv_write of the received buffer.  echo_uv <port> */
#include <stdlib.h>
#include <uv.h>

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} wreq;

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
  (void)h;
  b->base = malloc(sz);
  b->len = sz;
}
static void close_cb(uv_handle_t *h)
{
  free(h);
}
static void write_cb(uv_write_t *r, int status)
{
  wreq *w = (wreq *)r;
  (void)status;
  free(w->buf.base);
  free(w);
}
static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
  if (n > 0) {
    wreq *w = malloc(sizeof(*w));
    w->buf = uv_buf_init(b->base, (unsigned)n);
    uv_write(&w->req, s, &w->buf, 1, write_cb);
    return;
  }
  free(b->base);
  if (n < 0) uv_close((uv_handle_t *)s, close_cb);
}
static void on_conn(uv_stream_t *srv, int status)
{
  uv_tcp_t *c = malloc(sizeof(*c));
  (void)status;
  uv_tcp_init(srv->loop, c);
  if (uv_accept(srv, (uv_stream_t *)c) == 0) {
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, alloc_cb, read_cb);
  } else {
    uv_close((uv_handle_t *)c, close_cb);
  }
}
int main(int argc, char **argv)
{
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_t srv;
  struct sockaddr_in a;
  uv_tcp_init(loop, &srv);
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &a);
  uv_tcp_bind(&srv, (const struct sockaddr *)&a, 0);
  if (uv_listen((uv_stream_t *)&srv, 4096, on_conn)) return 1;
  return uv_run(loop, UV_RUN_DEFAULT);
}
