/*
 * The io_uring backend: ring setup with graceful fallback, SQE allocation, and the one
 * submit-wait-reap step of each loop iteration.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "loop_impl.h"

/* Linux 6.12's batch wait (liburing 2.8's io_uring_submit_and_wait_min_timeout); Debian 12 ships
 * liburing 2.3, whose headers name the field `pad`: same layout. */
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
struct corio__getevents_arg {
  uint64_t sigmask;
  uint32_t sigmask_sz;
  uint32_t min_wait_usec;
  uint64_t ts;
};
/* Most completions one batched wait asks for beyond what it submits. */
#define BATCH_MAX 64

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
      /* Batched waits need the kernel's min-wait (6.12+); opts->batch_wait_us < 0 turns them off.
       */
      loop->batch_us = 0;
      if ((p.features & IORING_FEAT_MIN_TIMEOUT) && (p.features & IORING_FEAT_EXT_ARG) &&
          !(opts && opts->batch_wait_us < 0))
        loop->batch_us = opts && opts->batch_wait_us > 0 ? (unsigned)opts->batch_wait_us : 20;
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

/* Publish the SQEs prepared since the last enter (liburing keeps them private until then) and
 * return how many the kernel has yet to consume: what liburing's submit does before it enters. */
static unsigned flush_sq(struct io_uring *ring)
{
  struct io_uring_sq *sq = &ring->sq;
  unsigned tail = sq->sqe_tail;
  if (sq->sqe_head != tail) {
    sq->sqe_head = tail;
    io_uring_smp_store_release(sq->ktail, tail);
  }
  return tail - IO_URING_READ_ONCE(*sq->khead);
}

/*
 * A batched wait: submit, then sleep until @p want completions are there, but once batch_us has
 * passed return as soon as there is one (so a batch never costs more than batch_us of latency,
 * and a lone completion after that is never held back); never past @p timeout_ns (< 0: none).
 * With DEFER_TASKRUN the kernel does not even wake us before @p want completions are ready.
 */
static int enter_batch(corio_loop *loop, unsigned submit, unsigned want, int64_t timeout_ns)
{
  struct __kernel_timespec ts;
  struct corio__getevents_arg arg;
  long rc;
  memset(&arg, 0, sizeof(arg));
  arg.sigmask_sz = _NSIG / 8;
  arg.min_wait_usec = loop->batch_us;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    arg.ts = (uint64_t)(uintptr_t)&ts;
  }
  rc = syscall(__NR_io_uring_enter, loop->ring.ring_fd, submit, want,
               IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
  return rc < 0 ? -errno : (int)rc;
}

static int uring_poll(corio_loop *loop, int64_t timeout_ns)
{
  struct io_uring *ring = &loop->ring;
  struct io_uring_cqe *cqe;
  struct __kernel_timespec ts;
  int rc, n;
  unsigned kflags, submit;

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
  } else {
    /*
     * Blocking. When the last blocking wait brought two or more new completions (beyond the ones
     * of what it submitted, e.g. sends that complete at once), more are likely on their way:
     * wait for twice as many (the batch grows while they keep coming, and falls back to what
     * came when the window closes first). One enter then serves many completions instead of
     * one or two; a lone request/response never waits (its batch is one).
     */
    submit = io_uring_sq_ready(ring);
    loop->stats.enters++;
    if (loop->batch_us && loop->batch_new >= 2) {
      unsigned more = loop->batch_new * 2 > BATCH_MAX ? BATCH_MAX : loop->batch_new * 2;
      submit = flush_sq(ring);
      rc = enter_batch(loop, submit, submit + more, timeout_ns);
      loop->stats.batched_waits++;
    } else if (timeout_ns < 0) {
      rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, NULL, NULL);
    } else {
      ts.tv_sec = timeout_ns / 1000000000;
      ts.tv_nsec = timeout_ns % 1000000000;
      rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) return rc;
    n = reap(loop);
    loop->batch_new = (unsigned)n > submit ? (unsigned)n - submit : 0;
    return n;
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
