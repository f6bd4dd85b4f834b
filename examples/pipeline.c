/*
 * pipeline — a shell pipeline (`ls -1 DIR | sort -r | head -n 3`) run by the loop: each command
 * is a subprocess, and a task per link pumps one command's stdout into the next one's stdin.
 *
 *     pipeline ls -1 /tmp '|' sort -r '|' head -n 3
 *
 * Python (asyncio):
 *
 *     procs = [await asyncio.create_subprocess_exec(*cmd, stdin=PIPE if i else None, stdout=PIPE)
 *              for i, cmd in enumerate(commands)]
 *     async def pump(src, dst):
 *         while data := await src.read(65536):
 *             dst.write(data); await dst.drain()
 *         dst.close()
 *     await asyncio.gather(*(pump(a.stdout, b.stdin) for a, b in zip(procs, procs[1:])),
 *                          copy_to_stdout(procs[-1].stdout))
 *     codes = [await p.wait() for p in procs]
 *
 * The output of the last command goes to our stdout as it arrives; then one line per command
 * says how it ended and how many bytes it wrote. Our exit status is the last command's, as in a
 * shell (128 + signal if a signal killed it, 127 if it could not be started).
 *
 * Shell semantics worth keeping: when a command exits early (`yes | head -n 3`), the one
 * feeding it must stop too. A shell's pipe gives it SIGPIPE; corio's stdio are socketpairs, so
 * the pump shuts the upstream socket's read side: the producer's next write fails with EPIPE
 * and it dies of SIGPIPE (or, if it was blocked in that write, the write returns EPIPE without
 * the signal and e.g. GNU yes exits 1 with "Broken pipe": a socketpair, unlike a pipe, sends
 * no signal then). Closing the socket instead would give the producer ECONNRESET whenever
 * unread data was left in it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <corio.h>

#define MAX_STAGES 8

struct stage {
  char **argv;
  corio_process *p; /* NULL if it could not be started */
  int spawn_err;
  unsigned long long bytes; /* read from its stdout */
};

/* Pumps stage from's stdout into stage to's stdin (to == NULL: into our stdout). */
struct pump {
  corio_task task;
  struct stage *from, *to;
  corio_stream *src, *dst;
  int broken; /* the downstream command is gone */
};

static corio_step pump_step(corio_task *t)
{
  struct pump *u = corio_container_of(t, struct pump, task);
  const corio_bytes *b;
  CORIO_BEGIN(t);
  u->src = u->from->p ? corio_process_stdout(u->from->p) : NULL;
  u->dst = u->to && u->to->p ? corio_process_stdin(u->to->p) : NULL;
  if (u->to && !u->dst) u->broken = 1; /* the next command never started */
  while (u->src && !u->broken) {
    CORIO_AWAIT_TRY(t, corio_stream_read(u->src, 65536));
    b = corio_future_bytes(corio_awaited(t));
    if (b->len == 0) break; /* EOF: the command closed its stdout (it exited, usually) */
    u->from->bytes += b->len;
    if (!u->to) {
      fwrite(b->data, 1, b->len, stdout);
      continue;
    }
    /* write copies the bytes; drain waits while the next command is slow to read them */
    CORIO_AWAIT(t, corio_stream_write_all(u->dst, b->data, b->len));
    if (corio_future_error(corio_awaited(t)) < 0) u->broken = 1; /* EPIPE, ECONNRESET */
  }
  if (u->src && u->broken) {
    /* The reader is gone: close our read end of the writer's stdout pipe, so that its next
     * write fails with EPIPE (it dies of SIGPIPE, as in a shell). */
    CORIO_AWAIT(t, corio_stream_close(u->src));
  }
  CORIO_FINALLY(t);
  /* EOF for the next command (its process forgets the closed stream) */
  if (u->dst) CORIO_AWAIT(t, corio_stream_close(u->dst));
  CORIO_END(t);
}

struct main_task {
  corio_task task;
  struct stage *st;
  int n;
  struct pump *pumps[MAX_STAGES];
  corio_future *waits; /* gather of every started process's wait() */
  int status;          /* the last command's, shell style */
  int i;
};

static void print_command(const struct stage *s)
{
  char **a;
  for (a = s->argv; *a; a++) printf("%s%s", a == s->argv ? "" : " ", *a);
}

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  corio_subprocess_opts o;
  corio_future *futs[MAX_STAGES];
  corio_future *child;
  struct stage *s;
  int i, k, rc;

  CORIO_BEGIN(t);
  for (i = 0; i < m->n; i++) {
    s = &m->st[i];
    memset(&o, 0, sizeof(o));
    o.stdin_mode = i ? CORIO_STDIO_PIPE : CORIO_STDIO_INHERIT; /* the first reads our stdin */
    o.stdout_mode = CORIO_STDIO_PIPE;
    s->spawn_err = corio_subprocess_exec(t->loop, s->argv, &o, &s->p);
    if (s->spawn_err < 0)
      fprintf(stderr, "pipeline: cannot run %s: %s\n", s->argv[0], corio_strerror(s->spawn_err));
  }
  for (i = 0; i < m->n; i++) {
    m->pumps[i] = corio_task_new(t->loop, pump_step, struct pump, task);
    if (!m->pumps[i]) CORIO_THROW(t, -ENOMEM);
    m->pumps[i]->from = &m->st[i];
    m->pumps[i]->to = i + 1 < m->n ? &m->st[i + 1] : NULL;
  }
  for (i = 0; i < m->n; i++) futs[i] = corio_task_spawn(&m->pumps[i]->task);
  CORIO_AWAIT_TRY(t, corio_gather(futs, (size_t)m->n, 0));
  fflush(stdout);

  /* every pump is done: the commands closed their stdout; now their exit status */
  for (i = k = 0; i < m->n; i++)
    if (m->st[i].p) futs[k++] = corio_process_wait(m->st[i].p);
  CORIO_AWAIT_TRY(t, corio_gather(futs, (size_t)k, 0));
  for (i = k = 0; i < m->n; i++) {
    s = &m->st[i];
    printf("[%d] ", i + 1);
    print_command(s);
    if (!s->p) {
      printf(": not started (%s), status 127\n", corio_strerror(s->spawn_err));
      m->status = 127;
      continue;
    }
    child = corio_gather_child(corio_awaited(t), (size_t)k++);
    rc = (int)corio_future_int(child);
    if (rc >= 0) {
      printf(": exit %d, wrote %llu bytes\n", rc, s->bytes);
      m->status = rc;
    } else {
      printf(": killed by SIG%s, wrote %llu bytes\n", sigabbrev_np(-rc) ? sigabbrev_np(-rc) : "?",
             s->bytes);
      m->status = 128 - rc;
    }
  }
  CORIO_FINALLY(t);
  for (m->i = 0; m->i < m->n; m->i++) { /* after an error: no pump left running */
    if (!m->pumps[m->i]) continue;
    corio_task_cancel(&m->pumps[m->i]->task);
    CORIO_AWAIT(t, corio_future_ref(&m->pumps[m->i]->task.fut));
    corio_future_unref(&m->pumps[m->i]->task.fut);
  }
  for (m->i = 0; m->i < m->n; m->i++) {
    if (!m->st[m->i].p) continue;
    if (corio_process_returncode(m->st[m->i].p) == CORIO_E_NOT_DONE) { /* after an error */
      corio_process_kill(m->st[m->i].p, SIGKILL);
      CORIO_AWAIT(t, corio_process_wait(m->st[m->i].p));
    }
    corio_process_free(m->st[m->i].p); /* closes what is left of its streams */
  }
  CORIO_END(t);
}

static int usage(void)
{
  fprintf(stderr, "usage: pipeline COMMAND [ARG...] ['|' COMMAND [ARG...]]...  (at most %d)\n",
          MAX_STAGES);
  return 2;
}

int main(int argc, char **argv)
{
  struct stage st[MAX_STAGES];
  struct main_task *m;
  corio_loop *loop;
  int i, n = 0, next = 1, rc, closed, status = 0;

  /* split argv at each "|" (the shell passes it quoted); the "|" becomes argv's NULL end */
  memset(st, 0, sizeof(st));
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "|") == 0) {
      if (next) return usage(); /* an empty command: "|" first, or "| |" */
      argv[i] = NULL;
      next = 1;
    } else if (next) {
      if (n == MAX_STAGES) return usage();
      st[n++].argv = &argv[i];
      next = 0;
    }
  }
  if (n == 0 || next) return usage(); /* nothing, or a trailing "|" */

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "pipeline: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? 0 : -ENOMEM;
  if (m) {
    m->st = st;
    m->n = n;
    rc = corio_task_start(&m->task);
  }
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (rc == 0) status = m->status;
  if (m) corio_future_unref(&m->task.fut);
  while (corio_loop_run_once(loop, 0.01) > 0) {
  }
  if (rc < 0) fprintf(stderr, "pipeline: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "pipeline: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0 ? 1 : status;
}
