/* Loop: signal handlers (signalfd) and add_reader/add_writer (poll on the ring). */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <unistd.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(signals_fds, .init = setup, .timeout = 10);

static int got[65];
static void on_signal(corio_loop *l, int signo, void *arg)
{
  (void)arg;
  got[signo]++;
  if (got[SIGUSR1] && got[SIGUSR2]) corio_loop_stop(l);
}
static void send_signals(void *arg)
{
  (void)arg;
  kill(getpid(), SIGUSR1);
  kill(getpid(), SIGUSR2);
}

Test(signals_fds, signal_handlers)
{
  cr_assert_eq(corio_add_signal_handler(loop, SIGUSR1, on_signal, NULL), 0);
  cr_assert_eq(corio_add_signal_handler(loop, SIGUSR2, on_signal, NULL), 0);
  corio_call_soon(loop, send_signals, NULL, NULL);
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  cr_assert_eq(got[SIGUSR1], 1);
  cr_assert_eq(got[SIGUSR2], 1);
  cr_assert_eq(corio_loop_close(loop), -EBUSY); /* handlers keep it alive */
  cr_assert_eq(corio_remove_signal_handler(loop, SIGUSR1), 0);
  cr_assert_eq(corio_remove_signal_handler(loop, SIGUSR1), -ENOENT);
  cr_assert_eq(corio_remove_signal_handler(loop, SIGUSR2), 0);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(signals_fds, signal_bad_input)
{
  cr_assert_eq(corio_add_signal_handler(loop, SIGKILL, on_signal, NULL), -EINVAL);
  cr_assert_eq(corio_add_signal_handler(loop, 0, on_signal, NULL), -EINVAL);
  cr_assert_eq(corio_add_signal_handler(loop, 1000, on_signal, NULL), -EINVAL);
  cr_assert_eq(corio_add_signal_handler(loop, SIGUSR1, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_remove_signal_handler(loop, SIGUSR1), -ENOENT);
  cr_assert_eq(corio_loop_close(loop), 0);
}

struct rd {
  int fd, calls, bytes;
};
static void on_readable(corio_loop *l, int fd, void *arg)
{
  struct rd *r = arg;
  char c;
  r->calls++;
  /* read ONE byte per call: level-triggered semantics must call us again for the rest */
  if (read(fd, &c, 1) == 1) r->bytes++;
  if (r->bytes == 3) {
    corio_remove_reader(l, fd);
    corio_loop_stop(l);
  }
}

Test(signals_fds, reader_is_level_triggered)
{
  int p[2];
  struct rd r = {0};
  cr_assert_eq(pipe(p), 0);
  r.fd = p[0];
  cr_assert_eq(corio_add_reader(loop, p[0], on_readable, &r), 0);
  cr_assert_eq(write(p[1], "abc", 3), 3);
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  cr_assert_eq(r.bytes, 3);
  cr_assert_eq(r.calls, 3);
  cr_assert_eq(corio_remove_reader(loop, p[0]), -ENOENT);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  close(p[0]);
  close(p[1]);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void on_writable(corio_loop *l, int fd, void *arg)
{
  ++*(int *)arg;
  corio_remove_writer(l, fd);
  corio_loop_stop(l);
}

Test(signals_fds, writer_and_removal_while_armed)
{
  int p[2], w = 0;
  struct rd r = {0};
  cr_assert_eq(pipe(p), 0);
  cr_assert_eq(corio_add_writer(loop, p[1], on_writable, &w), 0);
  cr_assert_eq(corio_add_reader(loop, p[0], on_readable, &r), 0);
  cr_assert_eq(corio_loop_run_forever(loop), 0);
  cr_assert_eq(w, 1);
  cr_assert_eq(corio_loop_close(loop), -EBUSY); /* the reader is still armed */
  cr_assert_eq(corio_remove_reader(loop, p[0]), 0);
  while (corio_loop_run_once(loop, 0) > 0) {
  }
  cr_assert_eq(r.calls, 0);
  close(p[0]);
  close(p[1]);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(signals_fds, watcher_bad_input)
{
  cr_assert_eq(corio_add_reader(loop, -1, (corio_fd_cb)on_writable, NULL), -EINVAL);
  cr_assert_eq(corio_add_reader(loop, 0, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_remove_writer(loop, 12345), -ENOENT);
  cr_assert_eq(corio_loop_close(loop), 0);
}
