/*
 * Pipes as transports and streams (asyncio's connect_read_pipe / connect_write_pipe): an existing
 * pipe, FIFO, socket or character device fd, read or written with the stream transport of tcp.c
 * (kinds CORIO__TR_PIPE_R / CORIO__TR_PIPE_W), and corio_pipe_open, a pipe(2) as two streams.
 *
 * Non-blocking setup: none is needed and none is done. asyncio makes the fd O_NONBLOCK because it
 * waits for readiness and then calls read(); io_uring does the waiting itself (it tries the read,
 * and arms an internal poll when the pipe is empty or full), so the fd's flags are left as they
 * are: changing them would also change them for every other process sharing the open file (a
 * shell's stdin). An fd that already is O_NONBLOCK works too: where a kernel hands -EAGAIN back,
 * the transport polls and retries (tcp.c).
 *
 * SIGPIPE: write(2) to a pipe with no reader raises SIGPIPE in the writing thread, and an
 * io_uring write issued inline is written by the thread that called io_uring_enter, the loop's:
 * without care the default action kills the program (checked: exit 141). Sockets have
 * MSG_NOSIGNAL; for pipes Linux 6.18 added RWF_NOSIGNAL, which io_uring writes accept in rw_flags,
 * and corio uses it wherever the kernel has it (probed once per process with a pwritev2 to a pipe
 * whose reader is closed: -EPIPE means supported, -EOPNOTSUPP not, and neither raises a signal).
 * On older kernels the write is forced to io_uring's worker threads (IOSQE_ASYNC), which block
 * every signal, so their SIGPIPE is discarded; a write the kernel has to retry after waiting for
 * room may still run on the loop's thread there, so on kernels before 6.18 a program that writes
 * to pipes whose readers may vanish should ignore SIGPIPE itself. corio never changes signal
 * dispositions or masks (the rejected alternative: block SIGPIPE around every io_uring_enter,
 * two more syscalls per iteration, and a policy that belongs to the program).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>
#include "transport_impl.h"

#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100 /* Linux 6.18 (include/uapi/linux/fs.h) */
#endif

static _Atomic int nosignal_state; /* 0: not probed yet, 1: RWF_NOSIGNAL works, -1: it does not */

static bool have_rwf_nosignal(void)
{
  int st = atomic_load_explicit(&nosignal_state, memory_order_relaxed);
  int p[2];
  char c = 0;
  struct iovec v = {&c, 1};
  if (st) return st > 0;
  st = -1;
  if (pipe2(p, O_CLOEXEC) == 0) {
    close(p[0]);
    if (pwritev2(p[1], &v, 1, -1, RWF_NOSIGNAL) < 0 && errno == EPIPE) st = 1;
    close(p[1]);
  }
  /* threads that race here compute the same answer */
  atomic_store_explicit(&nosignal_state, st, memory_order_relaxed);
  return st > 0;
}

void corio__pipe_write_prep(struct io_uring_sqe *sqe)
{
  if (have_rwf_nosignal())
    sqe->rw_flags = RWF_NOSIGNAL;
  else
    sqe->flags |= IOSQE_ASYNC;
}

/* A stream-like fd open for the direction asked: not a regular file or directory, whose reads
 * never block and whose "EOF" is only the current end. Returns the kind to use: multishot reads
 * only where they were seen to work, on anonymous pipes (pipefs) and sockets. On a named FIFO
 * (Linux 6.18) a multishot read delivers every byte but never the EOF once the writer closed,
 * while one-shot reads do (tried with a bare liburing program, no corio involved); character
 * devices such as /dev/null cannot be polled, which multishot needs. */
static int check_fd(int fd, int kind)
{
  struct stat st;
  struct statfs sfs;
  int fl;
  if (fd < 0) return -EBADF;
  if (fstat(fd, &st) < 0) return -errno;
  if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) && !S_ISCHR(st.st_mode)) return -EINVAL;
  fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  fl &= O_ACCMODE;
  if (kind == CORIO__TR_PIPE_W ? fl == O_RDONLY : fl == O_WRONLY) return -EBADF;
  (void)have_rwf_nosignal(); /* probe now, not in the middle of a flush */
  if (S_ISCHR(st.st_mode) ||
      (S_ISFIFO(st.st_mode) && (fstatfs(fd, &sfs) < 0 || sfs.f_type != PIPEFS_MAGIC)))
    kind |= CORIO__TR_ONESHOT;
  return kind;
}

static int connect_pipe(corio_loop *loop, int fd, int kind, const corio_protocol *proto, void *user,
                        corio_transport **out)
{
  corio_transport *tr;
  int rc;
  if (!out) return -EINVAL;
  *out = NULL;
  if (!loop || !proto || (kind == CORIO__TR_PIPE_R && !proto->data_received)) return -EINVAL;
  rc = check_fd(fd, kind);
  if (rc < 0) return rc;
  tr = corio__transport_adopt_kind(loop, fd, rc, proto, user);
  if (!tr) return -ENOMEM;
  *out = tr;
  return 0;
}

int corio_connect_read_pipe(corio_loop *loop, int fd, const corio_protocol *proto, void *user,
                            corio_transport **out)
{
  return connect_pipe(loop, fd, CORIO__TR_PIPE_R, proto, user, out);
}

int corio_connect_write_pipe(corio_loop *loop, int fd, const corio_protocol *proto, void *user,
                             corio_transport **out)
{
  return connect_pipe(loop, fd, CORIO__TR_PIPE_W, proto, user, out);
}

static int open_pipe(corio_loop *loop, int fd, int kind, corio_stream **out)
{
  corio_stream *s;
  int rc;
  if (!out) return -EINVAL;
  *out = NULL;
  if (!loop) return -EINVAL;
  rc = check_fd(fd, kind);
  if (rc < 0) return rc;
  s = corio__stream_adopt_kind(loop, fd, rc);
  if (!s) return -ENOMEM;
  *out = s;
  return 0;
}

int corio_open_read_pipe(corio_loop *loop, int fd, corio_stream **out)
{
  return open_pipe(loop, fd, CORIO__TR_PIPE_R, out);
}

int corio_open_write_pipe(corio_loop *loop, int fd, corio_stream **out)
{
  return open_pipe(loop, fd, CORIO__TR_PIPE_W, out);
}

int corio_pipe_open(corio_loop *loop, corio_stream **reader, corio_stream **writer)
{
  int p[2], rc;
  if (!reader || !writer) return -EINVAL;
  *reader = *writer = NULL;
  if (!loop) return -EINVAL;
  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  rc = corio_open_read_pipe(loop, p[0], reader);
  if (rc < 0) {
    close(p[0]);
    close(p[1]);
    return rc;
  }
  rc = corio_open_write_pipe(loop, p[1], writer);
  if (rc < 0) {
    close(p[1]);
    corio_future_unref(corio_stream_close(*reader)); /* closes p[0] */
    *reader = NULL;
  }
  return rc;
}
