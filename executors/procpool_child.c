/*
 * The process pool's child processes: the fork server and the worker loop, plus the message I/O
 * both sides of the protocol share (procpool_impl.h describes the protocol).
 *
 * The fork server is forked by corio_process_pool_new before the pool starts its manager thread,
 * and it never starts a thread itself: every worker is a fork of a single-threaded process, so
 * no worker inherits a lock some other thread held at fork time (the hazard of forking a
 * multi-threaded parent, cpython gh-84559). Its whole state is a table of live workers; it
 * does not allocate through corio (glibc's fork makes malloc safe in the child, but the fork
 * server has no need for it beyond that table).
 *
 * Death reporting: the fork server is the workers' parent, so it alone can reap them. It blocks
 * SIGCHLD and reads a signalfd; on each wakeup it reaps with waitpid(WNOHANG) until none is left
 * (signals coalesce) and sends one EXIT message per worker with the raw wait status, which the
 * pool turns into the failed job's error text. Kill requests also go through the fork server:
 * it knows whether a worker is still its unreaped child, so a signal can never hit a recycled
 * pid.
 *
 * Shutdown: EOF on the control socket. Workers carry PR_SET_PDEATHSIG(SIGKILL): if the fork
 * server dies for any reason, its workers die with it; each worker also exits on EOF of its own
 * socket, so a parent that dies takes the whole tree down.
 */
/* The fork server and every worker begin as a fork of a process in which the library calls only
 * they make (prctl, signalfd, getdents64, ...) were never made: with lazy binding each first call
 * goes through the dynamic linker (symbol lookup, GOT write), in every new process, for several
 * page faults each. Measured on the 2-vCPU VM, that was about 1 ms of a new pool's first job
 * (5.7 ms -> 4.4 ms under LD_BIND_NOW=1). Without the PLT, calls from this file go through GOT
 * entries that the dynamic linker fills when it loads the library. GCC only (clang has no such
 * pragma; -fno-plt on the command line does the same). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-plt")
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "procpool_impl.h"

/* ---- message I/O ---- */

int corio__pp_send(int sock, const void *hdr, size_t hlen, const void *payload, size_t plen, int fd,
                   int flags)
{
  struct iovec iov[2];
  struct msghdr mh;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } cm;
  struct cmsghdr *c;
  ssize_t n;
  memset(&mh, 0, sizeof(mh));
  iov[0].iov_base = (void *)hdr;
  iov[0].iov_len = hlen;
  iov[1].iov_base = (void *)payload;
  iov[1].iov_len = plen;
  mh.msg_iov = iov;
  mh.msg_iovlen = plen ? 2 : 1;
  if (fd >= 0) {
    memset(&cm, 0, sizeof(cm));
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  do n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  return (size_t)n == hlen + plen ? 0 : -EPROTO; /* SEQPACKET: all or nothing */
}

ssize_t corio__pp_recv(int sock, void *hdr, size_t hlen, void *payload, size_t pcap, int *fd,
                       int flags)
{
  struct iovec iov[2];
  struct msghdr mh;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * 4)];
  } cm;
  struct cmsghdr *c;
  ssize_t n;
  size_t i, nfds;
  int fds[4];
  *fd = -1;
  memset(&mh, 0, sizeof(mh));
  iov[0].iov_base = hdr;
  iov[0].iov_len = hlen;
  iov[1].iov_base = payload;
  iov[1].iov_len = pcap;
  mh.msg_iov = iov;
  mh.msg_iovlen = pcap ? 2 : 1;
  mh.msg_control = cm.buf;
  mh.msg_controllen = sizeof(cm.buf);
  do n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  if (n == 0) return -ENODATA;
  /* Take every descriptor that came along before judging the message, so none leaks. */
  for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    if (nfds > 4) nfds = 4;
    memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
    for (i = 0; i < nfds; i++) {
      if (*fd < 0)
        *fd = fds[i];
      else
        close(fds[i]);
    }
  }
  if ((size_t)n < hlen || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
    return -EPROTO;
  }
  return n - (ssize_t)hlen;
}

int corio__pp_memfd_from(const void *data, size_t len)
{
  const uint8_t *p = data;
  size_t done = 0;
  ssize_t n;
  int fd = memfd_create("corio-procpool", MFD_CLOEXEC), err;
  if (fd < 0) return -errno;
  /* Sizing first lets tmpfs allocate once; the writes then only copy. */
  if (ftruncate(fd, (off_t)len) < 0) goto fail;
  while (done < len) {
    n = pwrite(fd, p + done, len - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) goto fail;
    done += (size_t)n;
  }
  return fd;
fail:
  err = errno ? errno : EIO;
  close(fd);
  return -err;
}

int corio__pp_read_all(int fd, void *dst, size_t len)
{
  uint8_t *p = dst;
  size_t done = 0;
  ssize_t n;
  while (done < len) {
    n = pread(fd, p + done, len - done, (off_t)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) return -EPROTO;
    done += (size_t)n;
  }
  return 0;
}

void corio__pp_window_free(corio__pp_window *w)
{
  if (w->map) munmap(w->map, w->cap);
  w->map = NULL;
  w->cap = 0;
}

int corio__pp_window_grow(corio__pp_window *w, size_t len)
{
  size_t cap = (size_t)256 << 10;
  void *map;
  int fd, err;
  while (cap < len) cap *= 2;
  if (cap > CORIO__PP_WINDOW_MAX) cap = CORIO__PP_WINDOW_MAX;
  if (len > cap) return -EINVAL;
  fd = memfd_create("corio-window", MFD_CLOEXEC);
  if (fd < 0) return -errno;
  if (ftruncate(fd, (off_t)cap) < 0) goto fail;
  map = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) goto fail;
  /* Not inherited by later forks (another pool's fork server): a shared mapping there would
   * keep the window's pages alive after this pool let them go. */
  madvise(map, cap, MADV_DONTFORK);
  corio__pp_window_free(w);
  w->map = map;
  w->cap = cap;
  return fd;
fail:
  err = errno;
  close(fd);
  return -err;
}

int corio__pp_window_map(corio__pp_window *w, int fd)
{
  struct stat st;
  void *map;
  int err;
  corio__pp_window_free(w);
  if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > CORIO__PP_WINDOW_MAX) {
    close(fd);
    return -EPROTO;
  }
  /* MAP_POPULATE: the pages the sender wrote are mapped now, not faulted in one by one. */
  map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  err = errno;
  close(fd);
  if (map == MAP_FAILED) return -err;
  madvise(map, (size_t)st.st_size, MADV_DONTFORK);
  w->map = map;
  w->cap = (size_t)st.st_size;
  return 0;
}

/* ---- the worker ---- */

/* Send the job's result. Everything the parent needs is in one message, so a worker that dies
 * right after sending (max_tasks_per_child) loses nothing. */
static int send_result(int sock, corio_job *job, size_t inline_max, corio__pp_window *win,
                       bool use_window)
{
  corio__pp_result_msg m;
  const void *payload = NULL;
  int fd = -1, rc;
  memset(&m, 0, sizeof(m));
  m.type = CORIO__PP_RESULT;
  switch (job->kind) {
  case CORIO__JOB_BYTES:
    m.kind = CORIO__JOB_BYTES;
    m.len = job->out.len;
    payload = job->out.data;
    break;
  case CORIO__JOB_ERR:
    m.kind = CORIO__JOB_ERR;
    m.err = job->err;
    if (job->errmsg) {
      m.len = strlen(job->errmsg);
      if (m.len > inline_max) m.len = inline_max;
      payload = job->errmsg;
    }
    break;
  default: /* INT, or nothing set (0); PTR cannot happen: in_process refuses it */
    m.kind = CORIO__JOB_INT;
    m.i = job->i;
  }
  if (use_window && m.len > inline_max && m.len <= CORIO__PP_WINDOW_MAX &&
      (win->cap >= m.len || (fd = corio__pp_window_grow(win, m.len)) >= 0)) {
    memcpy(win->map, payload, m.len);
    m.flags |= CORIO__PP_F_WINDOW;
    payload = NULL;
  } else if (m.len > inline_max) {
    fd = corio__pp_memfd_from(payload, m.len);
    if (fd < 0) {
      memset(&m, 0, sizeof(m));
      m.type = CORIO__PP_RESULT;
      m.kind = CORIO__JOB_ERR;
      m.err = fd;
      payload = "worker: cannot create a memfd for the result";
      m.len = strlen(payload);
      fd = -1;
    } else {
      m.flags |= CORIO__PP_F_MEMFD;
      payload = NULL;
    }
  }
  rc = corio__pp_send(sock, &m, sizeof(m), payload, payload ? m.len : 0, fd, 0);
  if (fd >= 0) close(fd);
  return rc;
}

static void worker_fail(corio_job *job, int err, const char *what, const char *why)
{
  corio_job_fail(job, err, "%s%s%s", what, why ? ": " : "", why ? why : "");
}

/* What a worker keeps between jobs. */
struct wstate {
  int sock;
  const corio__pp_config *cfg;
  corio__pp_window win_in, win_out;
  int init_err;
  char *init_msg;
  unsigned done; /* jobs run, for max_tasks_per_child */
};

static void job_setup(corio_job *job, const corio__pp_job_msg *m)
{
  memset(job, 0, sizeof(*job));
  corio__list_init(&job->node);
  job->in_process = true;
  job->worker = m->worker;
  job->fn = (corio_job_fn)(uintptr_t)m->fn;
  job->arg = (void *)(uintptr_t)m->arg;
}

static void job_run(struct wstate *ws, corio_job *job)
{
  if (ws->init_err)
    worker_fail(job, ws->init_err, "the worker's initializer failed", ws->init_msg);
  else
    job->fn(job);
}

/* Send the job's result and count the job. @p use_window: the result may go through the output
 * window, which is safe only when no other result of ours can be unread by the pool (the last
 * job of what the pool sent): a later result would overwrite the window under its reader. */
static void job_reply(struct wstate *ws, corio_job *job, bool use_window)
{
  int rc;
  /* Output the job printed must not wait in a stdio buffer that _exit would drop. */
  fflush(NULL);
  job->input.data = NULL;
  rc = send_result(ws->sock, job, ws->cfg->inline_max, &ws->win_out, use_window);
  corio__job_clear_result(job);
  if (rc < 0) _exit(0); /* the pool is gone */
  if (ws->cfg->max_tasks_per_child && ++ws->done >= ws->cfg->max_tasks_per_child) _exit(0);
}

static size_t chunk_align(size_t off)
{
  return (off + CORIO__PP_CHUNK_ALIGN - 1) & ~(size_t)(CORIO__PP_CHUNK_ALIGN - 1);
}

/* A CHUNK: check the whole layout first (a malformed message runs nothing), then run the jobs in
 * order, each result sent as soon as the job returns. The inputs are read in place in @p buf,
 * which stays untouched until the next receive. */
static void run_chunk(struct wstate *ws, const corio__pp_job_msg *m, uint8_t *buf, size_t n)
{
  corio_job job;
  uint64_t count = m->len, i, len;
  size_t off;
  if (count < 1 || count > n / sizeof(uint64_t)) _exit(125);
  off = chunk_align((size_t)count * sizeof(uint64_t));
  for (i = 0; i < count; i++) {
    memcpy(&len, buf + i * sizeof(uint64_t), sizeof(len));
    if (i) off = chunk_align(off);
    if (off > n || len > n - off) _exit(125);
    off += (size_t)len;
  }
  off = chunk_align((size_t)count * sizeof(uint64_t));
  for (i = 0; i < count; i++) {
    memcpy(&len, buf + i * sizeof(uint64_t), sizeof(len));
    if (i) off = chunk_align(off);
    job_setup(&job, m);
    job.input.data = buf + off;
    job.input.len = (size_t)len;
    off += (size_t)len;
    job_run(ws, &job);
    job_reply(ws, &job, i + 1 == count);
  }
}

static void worker_main(int sock, int index, const corio__pp_config *cfg) __attribute__((noreturn));
static void worker_main(int sock, int index, const corio__pp_config *cfg)
{
  struct wstate ws;
  corio__pp_job_msg m;
  corio_job job;
  size_t cap = cfg->msg_max > cfg->inline_max ? cfg->msg_max : cfg->inline_max;
  uint8_t *buf = malloc(cap ? cap : 1);
  void *map;
  int fd;
  ssize_t n;

  if (!buf) _exit(126);
  memset(&ws, 0, sizeof(ws));
  ws.sock = sock;
  ws.cfg = cfg;
  if (cfg->initializer) {
    memset(&job, 0, sizeof(job));
    job.in_process = true;
    job.worker = index;
    corio__list_init(&job.node);
    cfg->initializer(&job);
    if (job.kind == CORIO__JOB_ERR) {
      ws.init_err = job.err;
      ws.init_msg = job.errmsg ? strdup(job.errmsg) : NULL;
    }
    corio__job_clear_result(&job);
    fflush(NULL);
  }
  for (;;) {
    n = corio__pp_recv(sock, &m, sizeof(m), buf, cap, &fd, 0);
    if (n == -ENODATA) _exit(0); /* the pool closed our socket: orderly exit */
    if (n < 0) _exit(125);
    if (m.type == CORIO__PP_CHUNK) {
      if (fd >= 0) _exit(125);
      run_chunk(&ws, &m, buf, (size_t)n);
      continue;
    }
    if (m.type != CORIO__PP_JOB) _exit(125);
    job_setup(&job, &m);
    map = NULL;
    if (m.flags & CORIO__PP_F_WINDOW) {
      if (fd >= 0 && corio__pp_window_map(&ws.win_in, fd) < 0) _exit(125);
      if (m.len > ws.win_in.cap) _exit(125);
      job.input.data = ws.win_in.map;
    } else if (m.flags & CORIO__PP_F_MEMFD) {
      if (fd < 0) _exit(125);
      /* The input is only read: map it instead of copying it. MAP_POPULATE maps every page in
       * one call instead of one fault per 4 KiB page as the job reads; MAP_PRIVATE so that a
       * job writing through a cast pointer cannot corrupt it. */
      map = m.len ? mmap(NULL, m.len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : NULL;
      close(fd);
      if (map == MAP_FAILED) {
        int err = errno;
        map = NULL;
        worker_fail(&job, -err, "worker: cannot map the job's input", strerror(err));
        job.input.len = m.len;
        job_reply(&ws, &job, true);
        continue;
      }
      job.input.data = map;
    } else {
      if (fd >= 0) close(fd);
      if ((uint64_t)n != m.len) _exit(125);
      if (m.flags & CORIO__PP_F_BYTES) job.input.data = buf;
    }
    job.input.len = m.len;
    job_run(&ws, &job);
    if (map) munmap(map, m.len);
    job_reply(&ws, &job, true);
  }
}

/* ---- the fork server ---- */

struct child {
  pid_t pid;
  uint64_t token; /* the pool's id of the worker */
};

struct server {
  int ctl, sfd; /* sfd: -1 until set up */
  const corio__pp_config *cfg;
  int fail_forks;
  bool scanned;       /* close_cloexec_fds has run (else each worker runs it) */
  struct child *kids; /* live (unreaped) workers: kids0, or allocated past its size */
  struct child kids0[16];
  size_t nkids, capkids;
  sigset_t oldmask;
  struct sigaction oldint;
};

static void close_cloexec_fds(int keep);

static void server_reply(struct server *s, corio__pp_ctl_msg *m, int fd)
{
  /* Blocking: the pool's manager always comes back to read; the parent never blocks on us. */
  if (corio__pp_send(s->ctl, m, sizeof(*m), NULL, 0, fd, 0) < 0 && errno != EINTR) {
    /* The parent is gone; EOF on the next read ends the loop. */
  }
}

/* Fork a worker on @p sock, the worker's end of the socket pair the pool made (SPAWN carries
 * it); closed here in every case. */
static void server_spawn(struct server *s, const corio__pp_ctl_msg *req, int sock)
{
  corio__pp_ctl_msg m;
  int err;
  pid_t pid, me = getpid();
  memset(&m, 0, sizeof(m));
  m.worker = req->worker;
  m.token = req->token;
  if (sock < 0) {
    err = EBADF;
    goto failed;
  }
  if (s->fail_forks) {
    if (s->fail_forks > 0) s->fail_forks--;
    err = EAGAIN;
    goto failed;
  }
  if (s->nkids == s->capkids) {
    /* Past the table in the struct only: no allocation (and no page touched) before the first
     * worker's fork. */
    size_t ncap = s->capkids * 2;
    struct child *n = malloc(ncap * sizeof(*n));
    if (!n) {
      err = ENOMEM;
      goto failed;
    }
    memcpy(n, s->kids, s->nkids * sizeof(*n));
    if (s->kids != s->kids0) free(s->kids);
    s->kids = n;
    s->capkids = ncap;
  }
  pid = fork();
  if (pid < 0) {
    err = errno;
    goto failed;
  }
  if (pid == 0) {
    /* Die with the fork server; the check after prctl closes the race with its death. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != me) _exit(0);
    if (s->scanned) {
      close(s->ctl);
      if (s->sfd >= 0) close(s->sfd);
    } else {
      close_cloexec_fds(sock); /* the control socket among them */
    }
    if (s->kids != s->kids0) free(s->kids);
    sigaction(SIGINT, &s->oldint, NULL);
    sigprocmask(SIG_SETMASK, &s->oldmask, NULL);
    worker_main(sock, req->worker, s->cfg);
  }
  close(sock);
  s->kids[s->nkids].pid = pid;
  s->kids[s->nkids++].token = req->token;
  m.type = CORIO__PP_SPAWNED;
  m.pid = pid;
  server_reply(s, &m, -1);
  return;
failed:
  /* Closing the worker's end first: the pool sees its socket hang up, then the report. */
  if (sock >= 0) close(sock);
  m.type = CORIO__PP_SPAWN_FAILED;
  m.value = err;
  server_reply(s, &m, -1);
}

/* By token, not pid: a worker already reaped is no longer in the table, so a recycled pid can
 * never receive the signal. */
static void server_kill(struct server *s, uint64_t token, int sig)
{
  size_t i;
  for (i = 0; i < s->nkids; i++)
    if (s->kids[i].token == token) {
      kill(s->kids[i].pid, sig);
      return;
    }
}

static void server_reap(struct server *s)
{
  struct signalfd_siginfo si;
  corio__pp_ctl_msg m;
  size_t i;
  int status;
  pid_t pid;
  while (read(s->sfd, &si, sizeof(si)) > 0) {
  }
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (i = 0; i < s->nkids; i++)
      if (s->kids[i].pid == pid) {
        s->kids[i] = s->kids[--s->nkids];
        break;
      }
    memset(&m, 0, sizeof(m));
    m.type = CORIO__PP_EXIT;
    m.pid = pid;
    m.value = status;
    server_reply(s, &m, -1);
  }
}

/* Close every close-on-exec descriptor but @p keep. fork() copies all descriptors, and what the
 * program marked close-on-exec is what it did not mean any child to have: every descriptor
 * corio makes (io_uring rings, whose pending operations hold files open; listening sockets;
 * other pools' control and worker sockets, which would keep those pools' fork servers and
 * workers from ever seeing EOF). Descriptors without the flag (stdio, what the program opened
 * to share) are inherited, as with a plain fork. /proc/self/fd is read with getdents64 into a
 * stack buffer: no allocation, and no scan up to RLIMIT_NOFILE. */
static void close_cloexec_fds(int keep)
{
  char buf[4096];
  struct dirent64 *d;
  long n, off;
  int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd, fl;
  if (dir < 0) return;
  while ((n = getdents64(dir, buf, sizeof(buf))) > 0)
    for (off = 0; off < n; off += d->d_reclen) {
      d = (struct dirent64 *)(buf + off);
      if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
      fd = atoi(d->d_name);
      if (fd == dir || fd == keep) continue;
      fl = fcntl(fd, F_GETFD);
      if (fl >= 0 && (fl & FD_CLOEXEC)) close(fd);
    }
  close(dir);
}

void corio__pp_fork_server(int ctl, const corio__pp_config *cfg)
{
  struct server s;
  struct sigaction sa;
  struct pollfd pfd[2];
  corio__pp_ctl_msg m;
  sigset_t chld;
  int fd;
  ssize_t n;

  memset(&s, 0, sizeof(s));
  s.ctl = ctl;
  s.sfd = -1;
  s.cfg = cfg;
  s.fail_forks = cfg->fail_forks;
  s.kids = s.kids0;
  s.capkids = sizeof(s.kids0) / sizeof(s.kids0[0]);
  /* A SIGCHLD set to SIG_IGN by the program would make the kernel reap workers itself and rob
   * us of their exit status; the default disposition plus a blocked signal feeds the signalfd
   * (which also reports a SIGCHLD that arrived before it existed: it stays pending). */
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigaction(SIGCHLD, &sa, NULL);
  sigaction(SIGINT, NULL, &s.oldint);
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &s.oldmask);
  /* The pool's first worker is forked before anything else, so that a new pool's first job
   * does not also wait for the rest of this setup: on a VM where a page fault costs tens of
   * microseconds, the descriptor scan and the setup below are a good part of a millisecond.
   * That worker then closes the close-on-exec descriptors itself. */
  if (cfg->first_sock >= 0) {
    memset(&m, 0, sizeof(m));
    m.type = CORIO__PP_SPAWN;
    m.worker = 0;
    m.token = cfg->first_token;
    server_spawn(&s, &m, cfg->first_sock);
  }
  close_cloexec_fds(ctl);
  s.scanned = true;
  /* Ctrl-C reaches the whole process group: the parent decides what it means (it may shut the
   * pool down), not the fork server. Workers get the program's own SIGINT disposition back. */
  sa.sa_handler = SIG_IGN;
  sigaction(SIGINT, &sa, NULL);
  s.sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (s.sfd < 0) _exit(124);

  for (;;) {
    pfd[0].fd = ctl;
    pfd[0].events = POLLIN;
    pfd[1].fd = s.sfd;
    pfd[1].events = POLLIN;
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[1].revents) server_reap(&s);
    if (!pfd[0].revents) continue;
    n = corio__pp_recv(ctl, &m, sizeof(m), NULL, 0, &fd, MSG_DONTWAIT);
    if (n == -EAGAIN) continue;
    if (n < 0) break; /* EOF (the pool is done, or died) or a broken socket */
    if (m.type == CORIO__PP_SPAWN) {
      server_spawn(&s, &m, fd);
      continue;
    }
    if (fd >= 0) close(fd);
    if (m.type == CORIO__PP_KILL) server_kill(&s, m.token, m.value);
  }
  /* Workers still alive die with us (PR_SET_PDEATHSIG). */
  _exit(0);
}
