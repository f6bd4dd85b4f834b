/* Pipes as transports and streams (asyncio's connect_read_pipe / connect_write_pipe, and
 * corio_pipe_open): 16 MiB with every byte checked, EOF when the writer closes, -EPIPE (never a
 * SIGPIPE death) when the reader is gone, a slow reader forcing pause_writing/resume_writing,
 * forked children on the other end, FIFOs, O_NONBLOCK fds, character devices, bad input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  /* the default disposition: a SIGPIPE would kill the test, which must not happen */
  signal(SIGPIPE, SIG_DFL);
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(pipe, .init = setup, .timeout = 60);

static void drain(void)
{
  int i;
  for (i = 0; i < 100 && corio_loop_run_once(loop, 0.01) > 0; i++) {
  }
}

/* Not periodic at any power of two below 2^24: a lost, doubled or reordered chunk shows. */
static uint8_t pat(size_t i)
{
  return (uint8_t)((i ^ (i >> 8) ^ (i >> 16)) * 31u + (i >> 11));
}

static void fill(uint8_t *buf, size_t off, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++) buf[i] = pat(off + i);
}

static int child_status(pid_t pid)
{
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ------------------------------------------------------------------------------------------ */
/* Protocol level: a write transport and a read transport on the two ends of one pipe.         */

struct rd {
  size_t got, bad;
  int eof, lost, lost_err, made;
  bool slow;  /* pause reading after each chunk, resume from a timer */
  int pauses; /* pause_reading calls */
  corio_handle resume;
  corio_transport *tr;
};
struct wr {
  size_t total, sent;
  int paused, resumed, lost, lost_err;
  corio_transport *tr;
};

static void wr_pump(struct wr *w)
{
  uint8_t buf[32768];
  size_t n;
  /* write until the transport says stop (pause_writing), as a protocol should */
  while (w->sent < w->total && w->paused == w->resumed) {
    n = w->total - w->sent < sizeof(buf) ? w->total - w->sent : sizeof(buf);
    fill(buf, w->sent, n);
    cr_assert_eq(corio_transport_write(w->tr, buf, n), 0);
    w->sent += n;
  }
  if (w->sent == w->total && w->paused == w->resumed) corio_transport_close(w->tr);
}
static void wr_made(corio_transport *tr, void *user)
{
  struct wr *w = user;
  w->tr = tr;
  corio_transport_set_context(tr, w);
  wr_pump(w);
}
static void wr_made_nowrite(corio_transport *tr, void *user)
{
  struct wr *w = user;
  w->tr = tr;
  corio_transport_set_context(tr, w);
}
static void wr_pause(corio_transport *tr)
{
  struct wr *w = corio_transport_get_context(tr);
  w->paused++;
}
static void wr_resume(corio_transport *tr)
{
  struct wr *w = corio_transport_get_context(tr);
  w->resumed++;
  wr_pump(w);
}
static void wr_lost(corio_transport *tr, int err)
{
  struct wr *w = corio_transport_get_context(tr);
  w->lost++;
  w->lost_err = err;
}

static void rd_made(corio_transport *tr, void *user)
{
  struct rd *r = user;
  r->tr = tr;
  r->made++;
  corio_transport_set_context(tr, r);
}
static void rd_resume_cb(void *arg)
{
  struct rd *r = arg;
  r->resume = 0;
  corio_transport_resume_reading(r->tr);
}
static void rd_data(corio_transport *tr, const uint8_t *d, size_t n)
{
  struct rd *r = corio_transport_get_context(tr);
  size_t i;
  for (i = 0; i < n; i++)
    if (d[i] != pat(r->got + i)) r->bad++;
  r->got += n;
  if (r->slow && r->pauses < 200) {
    r->pauses++;
    corio_transport_pause_reading(tr);
    cr_assert_eq(corio_call_later(corio_transport_loop(tr), 0.001, rd_resume_cb, r, &r->resume), 0);
  }
}
static int rd_eof(corio_transport *tr)
{
  struct rd *r = corio_transport_get_context(tr);
  r->eof++;
  return 0; /* close */
}
static void rd_lost(corio_transport *tr, int err)
{
  struct rd *r = corio_transport_get_context(tr);
  r->lost++;
  r->lost_err = err;
  if (r->resume) corio_handle_cancel(corio_transport_loop(tr), r->resume);
  r->resume = 0;
}

static const corio_protocol rd_proto = {rd_made, rd_data, rd_eof, rd_lost, NULL, NULL};
static const corio_protocol wr_proto = {wr_made, NULL, NULL, wr_lost, wr_pause, wr_resume};

static void run_until(int *a, int *b)
{
  int iter = 0;
  while (!*a || !*b) {
    cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
    cr_assert_lt(++iter, 2000000);
  }
}

static void transfer(size_t total, bool slow, bool nonblock)
{
  int p[2];
  struct rd r = {.slow = slow};
  struct wr w = {.total = total};
  corio_transport *rt, *wt;
  cr_assert_eq(pipe2(p, O_CLOEXEC | (nonblock ? O_NONBLOCK : 0)), 0);
  cr_assert_eq(corio_connect_read_pipe(loop, p[0], &rd_proto, &r, &rt), 0);
  cr_assert_eq(r.made, 1, "connection_made ran inside the call");
  cr_assert_eq(corio_connect_write_pipe(loop, p[1], &wr_proto, &w, &wt), 0);
  cr_assert_eq(rt, r.tr);
  cr_assert_eq(wt, w.tr);
  run_until(&r.lost, &w.lost);
  cr_assert_eq(r.got, total, "got %zu of %zu", r.got, total);
  cr_assert_eq(r.bad, 0, "%zu bytes differ", r.bad);
  cr_assert_eq(r.eof, 1, "EOF once the writer closed");
  cr_assert_eq(r.lost_err, 0);
  cr_assert_eq(w.lost_err, 0);
  cr_assert_eq(w.sent, total);
  cr_assert_gt(w.paused, 0, "the writer was paused (its buffer went above the high-water mark)");
  cr_assert_eq(w.paused, w.resumed);
  if (slow) cr_assert_geq(r.pauses, 50, "pauses %d", r.pauses);
  if (slow) cr_assert_geq(w.paused, 2, "writer paused %d", w.paused);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(pipe, transport_16mib_every_byte_then_eof)
{
  transfer(16u << 20, false, false);
}

Test(pipe, transport_slow_reader_pauses_writer)
{
  transfer(4u << 20, true, false);
}

Test(pipe, transport_nonblocking_fds)
{
  transfer(4u << 20, false, true);
}

/* The reader goes away while bytes are buffered: -EPIPE, not a SIGPIPE death. */
Test(pipe, transport_reader_gone_with_data_is_epipe)
{
  int p[2], i;
  static uint8_t big[1 << 20];
  struct wr w = {0};
  static const corio_protocol proto = {wr_made_nowrite, NULL, NULL, wr_lost, wr_pause, wr_resume};
  corio_transport *wt;
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  cr_assert_eq(corio_connect_write_pipe(loop, p[1], &proto, &w, &wt), 0);
  cr_assert_eq(corio_transport_write(wt, big, sizeof(big)), 0);
  cr_assert_eq(w.paused, 1);
  for (i = 0; i < 5; i++) corio_loop_run_once(loop, 0.01);
  cr_assert_gt(corio_transport_get_write_buffer_size(wt), 0, "the pipe is full");
  close(p[0]);
  while (!w.lost) cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
  cr_assert_eq(w.lost_err, -EPIPE);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The reader goes away while idle: noticed without a write (asyncio: a plain close). */
Test(pipe, transport_reader_gone_idle_is_noticed)
{
  int p[2];
  struct wr w = {0};
  static const corio_protocol proto = {wr_made_nowrite, NULL, NULL, wr_lost, NULL, NULL};
  corio_transport *wt;
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  cr_assert_eq(corio_connect_write_pipe(loop, p[1], &proto, &w, &wt), 0);
  corio_loop_run_once(loop, 0.01);
  cr_assert_eq(w.lost, 0);
  close(p[0]);
  while (!w.lost) cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
  cr_assert_eq(w.lost_err, 0);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* write_eof on a write pipe closes it once flushed; the reader sees EOF after every byte. */
static void eofw_made(corio_transport *tr, void *user)
{
  struct wr *w = user;
  uint8_t buf[100000];
  w->tr = tr;
  corio_transport_set_context(tr, w);
  fill(buf, 0, sizeof(buf));
  cr_assert_eq(corio_transport_write(tr, buf, sizeof(buf)), 0);
  cr_assert_eq(corio_transport_write_eof(tr), 0);
  cr_assert_eq(corio_transport_write(tr, "x", 1), -EPIPE);
  w->sent = sizeof(buf);
}
Test(pipe, transport_write_eof_closes_after_flush)
{
  int p[2];
  struct rd r = {0};
  struct wr w = {0};
  static const corio_protocol proto = {eofw_made, NULL, NULL, wr_lost, NULL, NULL};
  corio_transport *rt, *wt;
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  cr_assert_eq(corio_connect_read_pipe(loop, p[0], &rd_proto, &r, &rt), 0);
  cr_assert_eq(corio_connect_write_pipe(loop, p[1], &proto, &w, &wt), 0);
  run_until(&r.lost, &w.lost);
  cr_assert_eq(r.got, 100000);
  cr_assert_eq(r.bad, 0);
  cr_assert_eq(r.eof, 1);
  cr_assert_eq(w.lost_err, 0);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(pipe, bad_input)
{
  int p[2], fd;
  corio_transport *tr = (corio_transport *)1;
  corio_stream *s = (corio_stream *)1, *s2;
  char path[] = "/tmp/corio_pipe_regular_XXXXXX";
  struct rd r = {0};
  corio_future *f;
  cr_assert_eq(corio_connect_read_pipe(loop, -1, &rd_proto, &r, &tr), -EBADF);
  cr_assert_null(tr);
  cr_assert_eq(corio_connect_read_pipe(loop, 0, NULL, &r, &tr), -EINVAL);
  cr_assert_eq(corio_connect_read_pipe(NULL, 0, &rd_proto, &r, &tr), -EINVAL);
  cr_assert_eq(corio_open_read_pipe(loop, -1, &s), -EBADF);
  cr_assert_null(s);
  cr_assert_eq(corio_pipe_open(loop, NULL, &s), -EINVAL);
  fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  unlink(path);
  cr_assert_eq(corio_connect_read_pipe(loop, fd, &rd_proto, &r, &tr), -EINVAL, "a regular file");
  cr_assert_eq(corio_open_write_pipe(loop, fd, &s), -EINVAL);
  cr_assert_geq(fcntl(fd, F_GETFD), 0, "left open for the caller on failure");
  close(fd);
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  cr_assert_eq(corio_open_read_pipe(loop, p[1], &s), -EBADF, "the write end is not readable");
  cr_assert_eq(corio_open_write_pipe(loop, p[0], &s), -EBADF, "the read end is not writable");
  /* the wrong direction on a stream fails clearly */
  cr_assert_eq(corio_open_read_pipe(loop, p[0], &s), 0);
  cr_assert_eq(corio_open_write_pipe(loop, p[1], &s2), 0);
  cr_assert_eq(corio_stream_write(s, "x", 1), -EBADF);
  cr_assert_eq(corio_stream_write_eof(s), -EBADF);
  f = corio_stream_read(s2, 10);
  cr_assert_eq(corio_future_error(f), -EBADF);
  corio_future_unref(f);
  corio_future_unref(corio_stream_close(s));
  corio_future_unref(corio_stream_close(s2));
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A character device that cannot be polled (/dev/null): the one-shot read fallback. */
Test(pipe, char_device_dev_null)
{
  struct rd r = {0};
  corio_transport *rt;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cr_assert_geq(fd, 0);
  cr_assert_eq(corio_connect_read_pipe(loop, fd, &rd_proto, &r, &rt), 0);
  while (!r.lost) cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
  cr_assert_eq(r.eof, 1);
  cr_assert_eq(r.got, 0);
  cr_assert_eq(r.lost_err, 0);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Stream level.                                                                               */

struct pump {
  corio_task task;
  corio_stream *s;
  size_t total, off, chunk;
  uint8_t buf[65536];
  int err;
};

static corio_step writer_step(corio_task *t)
{
  struct pump *p = corio_container_of(t, struct pump, task);
  CORIO_BEGIN(t);
  while (p->off < p->total) {
    p->chunk = p->total - p->off < sizeof(p->buf) ? p->total - p->off : sizeof(p->buf);
    fill(p->buf, p->off, p->chunk);
    CORIO_AWAIT_TRY(t, corio_stream_write_all(p->s, p->buf, p->chunk));
    p->off += p->chunk;
  }
  CORIO_FINALLY(t);
  p->err = corio_task_error(t);
  if (p->s) CORIO_AWAIT(t, corio_stream_close(p->s)); /* EOF for the reader */
  p->s = NULL;
  CORIO_END(t);
}

static corio_step reader_step(corio_task *t)
{
  struct pump *p = corio_container_of(t, struct pump, task);
  const corio_bytes *b;
  size_t i;
  CORIO_BEGIN(t);
  for (;;) {
    CORIO_AWAIT_TRY(t, corio_stream_read(p->s, 100000));
    b = corio_future_bytes(corio_awaited(t));
    if (!b->len) break; /* EOF */
    for (i = 0; i < b->len; i++)
      if (b->data[i] != pat(p->off + i)) CORIO_THROW(t, -EILSEQ);
    p->off += b->len;
  }
  CORIO_FINALLY(t);
  p->err = corio_task_error(t);
  if (p->s) CORIO_AWAIT(t, corio_stream_close(p->s));
  p->s = NULL;
  CORIO_END(t);
}

static int run_task(corio_task *t)
{
  corio_future *f = corio_future_ref(&t->fut);
  int err;
  cr_assert_eq(corio_task_start(t), 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  err = corio_future_error(f);
  corio_future_unref(f);
  return err;
}

Test(pipe, pipe_open_streams_16mib_every_byte_then_eof)
{
  struct pump *w, *r;
  corio_future *fs[2], *g;
  cr_assert_eq(corio_pipe_open(loop, NULL, NULL), -EINVAL);
  w = corio_task_new(loop, writer_step, struct pump, task);
  r = corio_task_new(loop, reader_step, struct pump, task);
  cr_assert_eq(corio_pipe_open(loop, &r->s, &w->s), 0);
  w->total = 16u << 20;
  cr_assert_eq(corio_task_start(&w->task), 0);
  cr_assert_eq(corio_task_start(&r->task), 0);
  fs[0] = corio_future_ref(&w->task.fut);
  fs[1] = corio_future_ref(&r->task.fut);
  g = corio_gather(fs, 2, CORIO_RETURN_EXCEPTIONS);
  cr_assert_eq(corio_loop_run_until_complete(loop, g), 0);
  corio_future_unref(g);
  cr_assert_eq(w->err, 0, "%s", corio_strerror(w->err));
  cr_assert_eq(r->err, 0, "%s", corio_strerror(r->err));
  cr_assert_eq(r->off, 16u << 20, "every byte, then EOF");
  corio_future_unref(&w->task.fut);
  corio_future_unref(&r->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Closing the reader: the writer's next write or drain fails with -EPIPE, and we are alive. */
Test(pipe, stream_reader_closed_write_is_epipe)
{
  corio_stream *rs, *ws;
  struct pump *w;
  cr_assert_eq(corio_pipe_open(loop, &rs, &ws), 0);
  corio_future_unref(corio_stream_close(rs));
  drain();
  w = corio_task_new(loop, writer_step, struct pump, task);
  w->s = ws;
  w->total = 1u << 20;
  cr_assert_eq(run_task(&w->task), -EPIPE);
  cr_assert_eq(w->err, -EPIPE);
  corio_future_unref(&w->task.fut);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The same while the writer is blocked on a full pipe (a reader that reads, then leaves). */
Test(pipe, stream_reader_closed_mid_transfer)
{
  corio_stream *ws;
  struct pump *w;
  int p[2];
  pid_t pid;
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) { /* reads 1 MiB, checks it, leaves */
    static uint8_t buf[1 << 20];
    size_t got = 0, i;
    ssize_t n;
    close(p[1]);
    while (got < sizeof(buf) && (n = read(p[0], buf + got, sizeof(buf) - got)) > 0)
      got += (size_t)n;
    for (i = 0; i < got; i++)
      if (buf[i] != pat(i)) _exit(2);
    _exit(got == sizeof(buf) ? 0 : 3);
  }
  close(p[0]);
  cr_assert_eq(corio_open_write_pipe(loop, p[1], &ws), 0);
  w = corio_task_new(loop, writer_step, struct pump, task);
  w->s = ws;
  w->total = 64u << 20;
  cr_assert_eq(run_task(&w->task), -EPIPE);
  cr_assert_geq(w->off, 1u << 20);
  cr_assert_lt(w->off, 64u << 20);
  corio_future_unref(&w->task.fut);
  cr_assert_eq(child_status(pid), 0, "the child read 1 MiB of correct bytes");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A forked child writes lines and a large block into a pipe; we read them with readline and
 * readexactly, then EOF when it exits. */
struct lines {
  corio_task task;
  corio_stream *s;
  int n;
  size_t off;
};
static corio_step lines_step(corio_task *t)
{
  struct lines *l = corio_container_of(t, struct lines, task);
  const corio_bytes *b;
  char want[64];
  size_t i;
  CORIO_BEGIN(t);
  for (l->n = 0; l->n < 1000; l->n++) {
    CORIO_AWAIT_TRY(t, corio_stream_readline(l->s));
    b = corio_future_bytes(corio_awaited(t));
    snprintf(want, sizeof(want), "line %d\n", l->n);
    cr_assert_eq(b->len, strlen(want));
    cr_assert_eq(memcmp(b->data, want, b->len), 0);
  }
  for (l->off = 0; l->off < (8u << 20); l->off += 65536) {
    CORIO_AWAIT_TRY(t, corio_stream_readexactly(l->s, 65536));
    b = corio_future_bytes(corio_awaited(t));
    for (i = 0; i < b->len; i++)
      if (b->data[i] != pat(l->off + i)) CORIO_THROW(t, -EILSEQ);
  }
  CORIO_AWAIT_TRY(t, corio_stream_readline(l->s));
  cr_assert_eq(corio_future_bytes(corio_awaited(t))->len, 0, "EOF: the child exited");
  cr_assert(corio_stream_at_eof(l->s));
  CORIO_FINALLY(t);
  CORIO_AWAIT(t, corio_stream_close(l->s));
  CORIO_END(t);
}

static void child_writes(int fd)
{
  static uint8_t buf[1 << 20];
  char line[64];
  size_t off, m, w;
  ssize_t n;
  int i, len;
  for (i = 0; i < 1000; i++) {
    len = snprintf(line, sizeof(line), "line %d\n", i);
    if (write(fd, line, (size_t)len) != len) _exit(2);
  }
  for (off = 0; off < (8u << 20); off += sizeof(buf)) {
    fill(buf, off, sizeof(buf));
    for (w = 0; w < sizeof(buf); w += (size_t)n) {
      m = sizeof(buf) - w;
      n = write(fd, buf + w, m);
      if (n <= 0) _exit(3);
    }
  }
  _exit(0);
}

Test(pipe, forked_writer_readline_readexactly_eof)
{
  int p[2];
  pid_t pid;
  struct lines *l;
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(p[0]);
    child_writes(p[1]);
  }
  close(p[1]);
  l = corio_task_new(loop, lines_step, struct lines, task);
  cr_assert_eq(corio_open_read_pipe(loop, p[0], &l->s), 0);
  cr_assert_eq(run_task(&l->task), 0);
  corio_future_unref(&l->task.fut);
  cr_assert_eq(child_status(pid), 0);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A FIFO in the file system, opened by a forked writer: the same as a pipe. */
Test(pipe, fifo_forked_writer)
{
  char dir[] = "/tmp/corio_fifo_XXXXXX", path[64];
  pid_t pid;
  int fd;
  struct lines *l;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/fifo", dir);
  cr_assert_eq(mkfifo(path, 0600), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    fd = open(path, O_WRONLY);
    if (fd < 0) _exit(4);
    child_writes(fd);
  }
  fd = open(path, O_RDONLY | O_CLOEXEC); /* waits for the writer to open its end */
  cr_assert_geq(fd, 0);
  unlink(path);
  rmdir(dir);
  l = corio_task_new(loop, lines_step, struct lines, task);
  cr_assert_eq(corio_open_read_pipe(loop, fd, &l->s), 0);
  cr_assert_eq(run_task(&l->task), 0);
  corio_future_unref(&l->task.fut);
  cr_assert_eq(child_status(pid), 0);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A forked child reads what we write (its stdin, as a subprocess would) and checks every byte. */
Test(pipe, forked_reader_checks_every_byte)
{
  int p[2];
  pid_t pid;
  struct pump *w;
  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    static uint8_t buf[65536];
    size_t got = 0, i;
    ssize_t n;
    close(p[1]);
    while ((n = read(p[0], buf, sizeof(buf))) > 0) {
      for (i = 0; i < (size_t)n; i++)
        if (buf[i] != pat(got + i)) _exit(2);
      got += (size_t)n;
    }
    _exit(n == 0 && got == (16u << 20) ? 0 : 3);
  }
  close(p[0]);
  w = corio_task_new(loop, writer_step, struct pump, task);
  cr_assert_eq(corio_open_write_pipe(loop, p[1], &w->s), 0);
  w->total = 16u << 20;
  cr_assert_eq(run_task(&w->task), 0);
  corio_future_unref(&w->task.fut);
  cr_assert_eq(child_status(pid), 0, "the child saw 16 MiB of correct bytes, then EOF");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
