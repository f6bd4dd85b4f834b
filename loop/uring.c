/*
 * The io_uring backend: ring setup with graceful fallback, SQE allocation, and the one
 * submit-wait-reap step of each loop iteration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "loop_impl.h"

/* Tell apart the reasons io_uring_setup can fail, so the error names the cause. */
static int classify_setup_error(int rc)
{
  FILE *f;
  int disabled = 0;
  if (rc == -ENOSYS) return CORIO_E_URING_NOSYS;
  if (rc == -ENOMEM) return CORIO_E_URING_MEMLOCK;
  if (rc == -EPERM || rc == -EACCES) {
    f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
      if (fscanf(f, "%d", &disabled) != 1) disabled = 0;
      fclose(f);
    }
    return disabled == 2 ? CORIO_E_URING_DISABLED : CORIO_E_URING_DENIED;
  }
  return rc;
}

static int uring_init(corio_loop *loop, const corio_loop_opts *opts)
{
  unsigned entries = opts && opts->entries ? opts->entries : 256;
  unsigned tries[3], ntries = 0, i;
  int rc = -EINVAL;
  struct io_uring_params p;

  if (opts && opts->setup_flags) {
    tries[ntries++] = opts->setup_flags;
  } else {
    /* SINGLE_ISSUER|DEFER_TASKRUN: completions are posted only when we enter the kernel, in our
     * own thread: no IPIs, no task-work interrupts. TASKRUN_FLAG lets us see in sq_flags that
     * work is pending, so a busy loop knows when it must enter even with nothing to submit. */
    if (!(opts && opts->no_defer_taskrun))
      tries[ntries++] =
          IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    tries[ntries++] = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    tries[ntries++] = 0;
  }
  for (i = 0; i < ntries; i++) {
    memset(&p, 0, sizeof(p));
    p.flags = tries[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 8; /* multishot ops post many CQEs per SQE */
    rc = io_uring_queue_init_params(entries, &loop->ring, &p);
    if (rc == 0) {
      loop->ring_flags = p.flags;
      loop->ring_ok = true;
      return 0;
    }
    if (rc != -EINVAL) break; /* flags unknown to this kernel: try the next set */
  }
  return classify_setup_error(rc);
}

static void uring_close(corio_loop *loop)
{
  if (loop->ring_ok) io_uring_queue_exit(&loop->ring);
  loop->ring_ok = false;
}

static struct io_uring_sqe *uring_get_sqe(corio_loop *loop)
{
  struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);
  if (corio__unlikely(!sqe)) {
    /* SQ full: flush it (rare; only when one iteration queues more than the ring holds). */
    loop->stats.enters++;
    io_uring_submit(&loop->ring);
    sqe = io_uring_get_sqe(&loop->ring);
  }
  return sqe;
}

static int reap(corio_loop *loop)
{
  struct io_uring_cqe *cqe;
  unsigned head, n = 0;
  io_uring_for_each_cqe(&loop->ring, head, cqe)
  {
    corio__loop_dispatch(loop, cqe->user_data, cqe->res, cqe->flags);
    n++;
  }
  io_uring_cq_advance(&loop->ring, n);
  loop->stats.cqes += n;
  return (int)n;
}

static int uring_poll(corio_loop *loop, int64_t timeout_ns)
{
  struct io_uring *ring = &loop->ring;
  struct io_uring_cqe *cqe;
  struct __kernel_timespec ts;
  int rc;
  unsigned kflags;

  if (timeout_ns == 0) {
    kflags = IO_URING_READ_ONCE(*ring->sq.kflags);
    /* Nothing to submit and no deferred completions flagged: skip the syscall and just reap what
     * the CQ already holds. A busy loop of callbacks then costs no syscall at all. Every 1024th
     * such iteration enters anyway, as insurance against a kernel that does not flag work. */
    if (io_uring_sq_ready(ring) == 0 && !(kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) &&
        (++loop->idle_polls & 1023))
      return reap(loop);
    loop->stats.enters++;
    rc = io_uring_submit_and_get_events(ring);
  } else if (timeout_ns < 0) {
    loop->stats.enters++;
    rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, NULL, NULL);
  } else {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    loop->stats.enters++;
    rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
  }
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) return rc;
  return reap(loop);
}

static int uring_fd(const corio_loop *loop)
{
  return loop->ring.ring_fd;
}

const corio__backend_vt corio__uring_backend = {
    "io_uring", uring_init, uring_close, uring_get_sqe, uring_poll, uring_fd,
};
