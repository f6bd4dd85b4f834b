/*
 * Subprocesses: posix_spawn + pipes for stdio + a pidfd watched on the ring.
 *
 * The pidfd becomes readable when the child exits; waitid(P_PIDFD) then reaps exactly that child,
 * so corio never touches SIGCHLD or other children (libuv#154), and a signal sent through the
 * pidfd can never hit a recycled pid.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "transport_impl.h"

extern char **environ;

struct corio_process {
  corio_loop *loop;
  pid_t pid;
  int pidfd;
  int returncode;
  bool exited;
  corio_stream *io[3];
  corio_future *waiters; /* one shared future: every wait() gets a reference */
};

static void on_exit_ready(corio_loop *loop, int fd, void *arg)
{
  corio_process *p = arg;
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  if (waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) return;
  corio__loop_unwatch(loop, fd, POLLIN);
  close(p->pidfd);
  p->pidfd = -1;
  p->exited = true;
  p->returncode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
  corio__loop_alive_add(loop, -1);
  if (p->waiters) corio_future_set_result(p->waiters, p->returncode);
}

static int stdio_pair(int mode, int *parent, int *child, int target)
{
  int sv[2];
  *parent = *child = -1;
  if (mode == CORIO_STDIO_PIPE) {
    /* A real pipe, as a shell gives: a child writing to a reader that is gone gets SIGPIPE. */
    if (pipe2(sv, O_CLOEXEC) < 0) return -errno;
    *parent = target == 0 ? sv[1] : sv[0];
    *child = target == 0 ? sv[0] : sv[1];
  } else if (mode == CORIO_STDIO_DEVNULL) {
    *child = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (*child < 0) return -errno;
  }
  return 0;
}

int corio_subprocess_exec(corio_loop *loop, char *const argv[], const corio_subprocess_opts *opts,
                          corio_process **out)
{
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, dfl;
  int parent[3] = {-1, -1, -1}, child[3] = {-1, -1, -1}, modes[3] = {0, 0, 0};
  corio_process *p = NULL;
  pid_t pid;
  int rc, i;
  if (!loop || !argv || !argv[0] || !out) return -EINVAL;
  *out = NULL;
  if (opts) {
    modes[0] = opts->stdin_mode;
    modes[1] = opts->stdout_mode;
    modes[2] = opts->stderr_mode;
  }
  for (i = 0; i < 3; i++)
    if (modes[i] < CORIO_STDIO_INHERIT || modes[i] > CORIO_STDIO_DEVNULL) return -EINVAL;
  p = corio__calloc(1, sizeof(*p));
  if (!p) return -ENOMEM;
  p->loop = loop;
  p->pidfd = -1;
  posix_spawn_file_actions_init(&fa);
  /* The child starts with no signal blocked: the loop's signal handlers block their signals
   * (signalfd), and a child inheriting that mask could not be stopped by SIGTERM or Ctrl-C. And
   * SIGPIPE / SIGXFSZ go back to their default action, as Python's restore_signals does: a
   * program ignores them for its own I/O, but `producer | head` needs producer to die of
   * SIGPIPE. Other ignored signals stay ignored (nohup keeps working). */
  posix_spawnattr_init(&attr);
  sigemptyset(&none);
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGPIPE);
  sigaddset(&dfl, SIGXFSZ);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  for (i = 0; i < 3; i++) {
    rc = stdio_pair(modes[i], &parent[i], &child[i], i);
    if (rc < 0) goto fail;
    if (child[i] >= 0) posix_spawn_file_actions_adddup2(&fa, child[i], i); /* dup2 drops CLOEXEC */
  }
  rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, opts && opts->envp ? opts->envp : environ);
  if (rc) {
    rc = -rc;
    goto fail;
  }
  p->pid = pid;
  p->pidfd = pidfd_open(pid, 0);
  if (p->pidfd < 0) { /* kernel < 5.3: cannot wait without SIGCHLD; refuse cleanly */
    rc = -errno;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    goto fail;
  }
  for (i = 0; i < 3; i++) {
    if (child[i] >= 0) close(child[i]);
    child[i] = -1;
    if (parent[i] >= 0) {
      p->io[i] =
          corio__stream_adopt_kind(loop, parent[i], i == 0 ? CORIO__TR_PIPE_W : CORIO__TR_PIPE_R);
      if (!p->io[i]) close(parent[i]); /* ENOMEM: that stream is simply absent */
      parent[i] = -1;
      /* The user may close a stream (stdin, for EOF): p->io[i] then goes NULL, so that
       * communicate and corio_process_free do not close (and touch) the freed stream again. */
      if (p->io[i]) corio__stream_set_owner_slot(p->io[i], &p->io[i]);
    }
  }
  rc = corio__loop_watch(loop, p->pidfd, POLLIN, on_exit_ready, p, true);
  if (rc < 0) {
    kill(pid, SIGKILL);
    goto fail_running;
  }
  corio__loop_alive_add(loop, 1); /* a running child keeps the loop busy */
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  *out = p;
  return 0;
fail_running:
  waitpid(pid, NULL, 0);
  close(p->pidfd);
  for (i = 0; i < 3; i++)
    if (p->io[i]) corio_future_unref(corio_stream_close(p->io[i]));
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  corio__free(p);
  return rc;
fail:
  for (i = 0; i < 3; i++) {
    if (parent[i] >= 0) close(parent[i]);
    if (child[i] >= 0) close(child[i]);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  corio__free(p);
  return rc;
}

pid_t corio_process_pid(const corio_process *p)
{
  return p ? p->pid : -1;
}

corio_stream *corio_process_stdin(corio_process *p)
{
  return p ? p->io[0] : NULL;
}
corio_stream *corio_process_stdout(corio_process *p)
{
  return p ? p->io[1] : NULL;
}
corio_stream *corio_process_stderr(corio_process *p)
{
  return p ? p->io[2] : NULL;
}

corio_future *corio_process_wait(corio_process *p)
{
  if (!p) return corio__future_failed(corio__loop_current(), -EINVAL);
  if (!p->waiters) {
    p->waiters = corio_future_new(p->loop);
    if (!p->waiters) return NULL;
    if (p->exited) corio_future_set_result(p->waiters, p->returncode);
  }
  return corio_future_ref(p->waiters);
}

int corio_process_kill(corio_process *p, int sig)
{
  if (!p) return -EINVAL;
  if (p->exited) return -ESRCH;
  return pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int corio_process_returncode(const corio_process *p)
{
  if (!p) return -EINVAL;
  return p->exited ? p->returncode : CORIO_E_NOT_DONE;
}

/* communicate: a task that writes, closes stdin, reads stdout to EOF and waits. */
struct comm {
  corio_task task;
  corio_process *p;
  corio_bytes input;
  corio__buf out;
};

static corio_step comm_step(corio_task *t)
{
  struct comm *c = corio_container_of(t, struct comm, task);
  const corio_bytes *b;
  corio_bytes res;
  CORIO_BEGIN(t);
  if (c->p->io[0]) {
    if (c->input.len)
      CORIO_AWAIT(t, corio_stream_write_all(c->p->io[0], c->input.data, c->input.len));
    /* a write error (EPIPE: the child did not read) is not the caller's problem */
    CORIO_AWAIT(t, corio_stream_close(c->p->io[0])); /* sets io[0] to NULL */
  }
  while (c->p->io[1]) {
    CORIO_AWAIT_TRY(t, corio_stream_read(c->p->io[1], 65536));
    b = corio_future_bytes(corio_awaited(t));
    if (!b->len) break;
    CORIO_TRY(t, corio__buf_append(&c->out, b->data, b->len));
  }
  CORIO_AWAIT_TRY(t, corio_process_wait(c->p));
  res.data = c->out.data; /* corio__buf memory comes from corio__malloc, as bytes do */
  res.len = c->out.len;
  if (!res.data) res = corio_bytes_alloc(0);
  memset(&c->out, 0, sizeof(c->out));
  CORIO_RETURN_BYTES(t, res);
  CORIO_FINALLY(t);
  corio__buf_free(&c->out);
  corio_bytes_free(&c->input);
  CORIO_END(t);
}

corio_future *corio_process_communicate(corio_process *p, const void *input, size_t len)
{
  struct comm *c;
  if (!p || (!input && len))
    return corio__future_failed(p ? p->loop : corio__loop_current(), -EINVAL);
  c = corio_task_new(p->loop, comm_step, struct comm, task);
  if (!c) return NULL;
  c->p = p;
  if (len) {
    c->input = corio_bytes_alloc(len);
    if (!c->input.data) {
      corio_future_unref(&c->task.fut);
      return NULL;
    }
    memcpy(c->input.data, input, len);
  }
  if (corio_task_start(&c->task) < 0) {
    corio_future_unref(&c->task.fut);
    return corio__future_failed(p->loop, -ENOMEM);
  }
  return &c->task.fut;
}

int corio_process_free(corio_process *p)
{
  int i;
  if (!p) return -EINVAL;
  if (!p->exited) return -EBUSY;
  for (i = 0; i < 3; i++)
    if (p->io[i]) corio_future_unref(corio_stream_close(p->io[i])); /* closes; freed when done */
  corio_future_unref(p->waiters);
  corio__free(p);
  return 0;
}
