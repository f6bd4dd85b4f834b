/* Subprocesses: capture, stdin->stdout, exit codes, kill, exec failure, a child that does not
 * read its stdin, large output, no fd or zombie leaks. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(subprocess, .init = setup, .timeout = 30);

static int count_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

static void drain(void)
{
  int i;
  for (i = 0; i < 200 && corio_loop_run_once(loop, 0.01) > 0; i++) {
  }
}

static const corio_bytes *run_comm(corio_process *p, const char *input, corio_future **keep)
{
  corio_future *f = corio_process_communicate(p, input, input ? strlen(input) : 0);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  *keep = f;
  return corio_future_bytes(f);
}

static void finish(corio_process *p)
{
  drain();
  cr_assert_eq(corio_process_free(p), 0);
  drain();
}

Test(subprocess, capture_stdout)
{
  char *argv[] = {"echo", "hello", "world", NULL};
  corio_subprocess_opts o = {.stdout_mode = CORIO_STDIO_PIPE};
  corio_process *p;
  corio_future *f;
  const corio_bytes *b;
  int fds = count_fds();
  cr_assert_eq(corio_subprocess_exec(loop, argv, &o, &p), 0);
  cr_assert_gt(corio_process_pid(p), 0);
  b = run_comm(p, NULL, &f);
  cr_assert_eq(b->len, 12);
  cr_assert_eq(memcmp(b->data, "hello world\n", 12), 0);
  cr_assert_eq(corio_process_returncode(p), 0);
  corio_future_unref(f);
  finish(p);
  cr_assert_eq(count_fds(), fds, "no fd leak");
  cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "no zombie, nothing left to reap");
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(subprocess, stdin_to_stdout_through_sort)
{
  char *argv[] = {"sort", NULL};
  corio_subprocess_opts o = {.stdin_mode = CORIO_STDIO_PIPE, .stdout_mode = CORIO_STDIO_PIPE};
  corio_process *p;
  corio_future *f;
  const corio_bytes *b;
  cr_assert_eq(corio_subprocess_exec(loop, argv, &o, &p), 0);
  b = run_comm(p, "pear\napple\nfig\n", &f);
  cr_assert_eq(b->len, 15);
  cr_assert_eq(memcmp(b->data, "apple\nfig\npear\n", 15), 0);
  corio_future_unref(f);
  finish(p);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(subprocess, exit_code_and_kill)
{
  char *a1[] = {"sh", "-c", "exit 3", NULL}, *a2[] = {"sleep", "10", NULL};
  corio_process *p, *q;
  corio_future *w;
  cr_assert_eq(corio_subprocess_exec(loop, a1, NULL, &p), 0);
  w = corio_process_wait(p);
  cr_assert_eq(corio_loop_run_until_complete(loop, w), 0);
  cr_assert_eq(corio_future_int(w), 3);
  corio_future_unref(w);
  cr_assert_eq(corio_process_kill(p, SIGTERM), -ESRCH);
  finish(p);
  cr_assert_eq(corio_subprocess_exec(loop, a2, NULL, &q), 0);
  cr_assert_eq(corio_process_free(q), -EBUSY);
  cr_assert_eq(corio_loop_close(loop), -EBUSY, "a running child keeps the loop busy");
  cr_assert_eq(corio_process_kill(q, SIGKILL), 0);
  w = corio_process_wait(q);
  cr_assert_eq(corio_loop_run_until_complete(loop, w), 0);
  cr_assert_eq(corio_future_int(w), -SIGKILL);
  corio_future_unref(w);
  finish(q);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(subprocess, exec_failure_is_an_error)
{
  char *argv[] = {"/nonexistent/program", NULL};
  corio_process *p = NULL;
  int fds = count_fds();
  cr_assert_eq(corio_subprocess_exec(loop, argv, NULL, &p), -ENOENT);
  cr_assert_null(p);
  cr_assert_eq(count_fds(), fds);
  cr_assert_eq(corio_subprocess_exec(loop, NULL, NULL, &p), -EINVAL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(subprocess, child_exits_without_reading_stdin)
{
  char *argv[] = {"true", NULL};
  corio_subprocess_opts o = {.stdin_mode = CORIO_STDIO_PIPE};
  corio_process *p;
  corio_future *f;
  static char big[1 << 20];
  memset(big, 'x', sizeof(big) - 1);
  cr_assert_eq(corio_subprocess_exec(loop, argv, &o, &p), 0);
  f = corio_process_communicate(p, big, sizeof(big) - 1);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  cr_assert_eq(corio_process_returncode(p), 0);
  corio_future_unref(f);
  finish(p);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(subprocess, large_output)
{
  char *argv[] = {"head", "-c", "1000000", "/dev/zero", NULL};
  corio_subprocess_opts o = {.stdout_mode = CORIO_STDIO_PIPE, .stderr_mode = CORIO_STDIO_DEVNULL};
  corio_process *p;
  corio_future *f;
  const corio_bytes *b;
  size_t i, nonzero = 0;
  cr_assert_eq(corio_subprocess_exec(loop, argv, &o, &p), 0);
  /* bounded, with a diagnosis if it ever stalls: which await, loop state, the child's state */
  f = corio_wait_for(corio_process_communicate(p, NULL, 0), 20.0);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  if (corio_future_error(f) == -ETIMEDOUT) {
    corio_loop_stats st;
    corio_loop_get_stats(loop, &st);
    corio_loop_dump(loop, stderr);
    fprintf(stderr, "stall: returncode=%d iterations=%llu enters=%llu cqes=%llu\n",
            corio_process_returncode(p), (unsigned long long)st.iterations,
            (unsigned long long)st.enters, (unsigned long long)st.cqes);
    cr_assert_fail("communicate stalled (diagnosis above)");
  }
  cr_assert_eq(corio_future_error(f), 0, "%s", corio_future_error_message(f));
  b = corio_future_bytes(f);
  cr_assert_eq(b->len, 1000000);
  for (i = 0; i < b->len; i++) nonzero += b->data[i] != 0;
  cr_assert_eq(nonzero, 0);
  corio_future_unref(f);
  finish(p);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* subprocess.h lets the user close a piped stream early: the process must then forget it, not
 * close the freed stream again in communicate or corio_process_free (a use-after-free before). */
Test(subprocess, user_closes_stdin_then_communicate_and_free)
{
  char *argv[] = {"cat", NULL};
  corio_subprocess_opts o = {.stdin_mode = CORIO_STDIO_PIPE, .stdout_mode = CORIO_STDIO_PIPE};
  corio_process *p;
  corio_future *f;
  const corio_bytes *b;
  cr_assert_eq(corio_subprocess_exec(loop, argv, &o, &p), 0);
  cr_assert_eq(corio_stream_write(corio_process_stdin(p), "abc\n", 4), 0);
  f = corio_stream_close(corio_process_stdin(p)); /* flushes, then EOF for cat */
  cr_assert_null(corio_process_stdin(p), "the process forgot the closed stream");
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  corio_future_unref(f);
  b = run_comm(p, NULL, &f);
  cr_assert_eq(b->len, 4);
  cr_assert_eq(memcmp(b->data, "abc\n", 4), 0);
  cr_assert_eq(corio_process_returncode(p), 0);
  corio_future_unref(f);
  finish(p);
  cr_assert_eq(corio_loop_close(loop), 0);
}
/* Closing stdout early: the child dies of SIGPIPE at its next write, as in a shell pipe, even
 * when this process ignores SIGPIPE (the child gets the default action back). The child writes
 * only once told to through stdin, after the close: closing a socketpair with unread data would
 * give it ECONNRESET instead of EPIPE. */
Test(subprocess, user_closes_stdout_child_gets_sigpipe)
{
  char *argv[] = {"sh", "-c", "echo one; read go; echo two; exit 7", NULL};
  corio_subprocess_opts o = {.stdin_mode = CORIO_STDIO_PIPE, .stdout_mode = CORIO_STDIO_PIPE};
  corio_process *p;
  corio_future *f;
  signal(SIGPIPE, SIG_IGN); /* as servers do */
  cr_assert_eq(corio_subprocess_exec(loop, argv, &o, &p), 0);
  f = corio_stream_readline(corio_process_stdout(p));
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_bytes(f)->len, 4);
  corio_future_unref(f);
  f = corio_stream_close(corio_process_stdout(p));
  cr_assert_null(corio_process_stdout(p));
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0); /* the socket is closed now */
  corio_future_unref(f);
  f = corio_stream_write_all(corio_process_stdin(p), "go\n", 3);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  corio_future_unref(f);
  f = corio_wait_for(corio_process_wait(p), 10.0);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_int(f), -SIGPIPE, "exit %lld", (long long)corio_future_int(f));
  corio_future_unref(f);
  finish(p);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void ignore_signal(corio_loop *l, int signo, void *arg)
{
  (void)l;
  (void)signo;
  (void)arg;
}

/* The loop's signal handler blocks SIGTERM in this process (signalfd); the child must not
 * inherit that mask, or SIGTERM would never stop it. */
Test(subprocess, child_does_not_inherit_the_loops_blocked_signals)
{
  char *argv[] = {"sleep", "10", NULL};
  corio_process *p;
  corio_future *f;
  cr_assert_eq(corio_add_signal_handler(loop, SIGTERM, ignore_signal, NULL), 0);
  cr_assert_eq(corio_subprocess_exec(loop, argv, NULL, &p), 0);
  cr_assert_eq(corio_process_kill(p, SIGTERM), 0);
  f = corio_wait_for(corio_process_wait(p), 5.0);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  cr_assert_eq(corio_future_error(f), 0, "SIGTERM did not stop the child: %s",
               corio_future_error_message(f));
  cr_assert_eq(corio_future_int(f), -SIGTERM);
  corio_future_unref(f);
  finish(p);
  cr_assert_eq(corio_remove_signal_handler(loop, SIGTERM), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}
