/* corio echo servers. echo_corio <port> [protocol|stream]
 * protocol: data_received -> transport_write (the callback level);
 * stream: a task per connection doing read -> write (the task level).
 * On SIGTERM it prints its loop statistics (io_uring_enter calls per echo) and exits. */
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

static long echoes;

static void echo_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  echoes++;
  corio_transport_write(tr, d, n);
}
static const corio_protocol echo_proto = {NULL, echo_data, NULL, NULL, NULL, NULL};

struct conn {
  corio_task task;
  corio_stream *s;
};
static corio_step conn_step(corio_task *t)
{
  struct conn *c = corio_container_of(t, struct conn, task);
  const corio_bytes *b;
  CORIO_BEGIN(t);
  for (;;) {
    CORIO_AWAIT_TRY(t, corio_stream_read(c->s, 65536));
    b = corio_future_bytes(corio_awaited(t));
    if (!b->len) break;
    echoes++;
    CORIO_TRY(t, corio_stream_write(c->s, b->data, b->len));
  }
  CORIO_FINALLY(t);
  /* a client that resets its connection (the load client does at the end) is a normal end */
  if (corio_task_error(t) == -ECONNRESET || corio_task_error(t) == -EPIPE) corio_task_catch(t);
  CORIO_AWAIT(t, corio_stream_close(c->s));
  CORIO_END(t);
}
static void on_client(corio_stream *s, void *user)
{
  struct conn *c = corio_task_new(user, conn_step, struct conn, task);
  c->s = s;
  corio_task_start(&c->task);
  corio_future_unref(&c->task.fut);
}

static void on_term(corio_loop *loop, int signo, void *arg)
{
  corio_loop_stats st;
  (void)signo;
  (void)arg;
  corio_loop_get_stats(loop, &st);
  printf("# corio server: %ld echoes, %llu io_uring_enter (%.3f per echo), %llu iterations\n",
         echoes, (unsigned long long)st.enters, echoes ? (double)st.enters / echoes : 0.0,
         (unsigned long long)st.iterations);
  printf("RESULT name=enters_per_echo impl=corio value=%.4f unit=count\n",
         echoes ? (double)st.enters / echoes : 0.0);
  fflush(stdout);
  exit(0);
}

int main(int argc, char **argv)
{
  corio_loop *loop;
  corio_server *srv;
  corio_loop_opts lopts = {0};
  int rc;
  /* CORIO_BATCH_US: the loop's batch_wait_us (A/B runs of the batched wait; -1 = off) */
  if (getenv("CORIO_BATCH_US")) lopts.batch_wait_us = atoi(getenv("CORIO_BATCH_US"));
  if (corio_loop_new(&loop, &lopts) < 0) return 1;
  corio_add_signal_handler(loop, SIGTERM, on_term, NULL);
  if (argc > 2 && !strcmp(argv[2], "stream"))
    rc =
        corio_start_server(loop, "127.0.0.1", (uint16_t)atoi(argv[1]), on_client, loop, NULL, &srv);
  else
    rc = corio_server_listen_tcp(loop, "127.0.0.1", (uint16_t)atoi(argv[1]), &echo_proto, NULL,
                                 NULL, &srv);
  if (rc < 0) return fprintf(stderr, "listen: %s\n", corio_strerror(rc)), 1;
  return corio_loop_run_forever(loop);
}
