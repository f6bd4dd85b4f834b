/* Loop ops: raw SQEs through corio_op, cancellation of an op in flight, the backend seam driven
 * by a deterministic fake, and a clear error when io_uring is denied. */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "loop_impl.h"

struct myop {
  corio_op op;
  int res, calls;
  unsigned flags;
};
static void myop_done(corio_op *op, int res, unsigned flags)
{
  struct myop *m = corio_container_of(op, struct myop, op);
  m->res = res;
  m->flags = flags;
  m->calls++;
}

static void drain(corio_loop *loop)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

Test(ops, nop_completes, .timeout = 10)
{
  corio_loop *loop;
  struct myop m = {.op.complete = myop_done, .res = -1};
  struct io_uring_sqe *sqe;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  sqe = corio_op_sqe(loop, &m.op);
  cr_assert_not_null(sqe);
  io_uring_prep_nop(sqe);
  cr_assert_eq(corio_loop_close(loop), -EBUSY); /* an op in flight keeps the loop alive */
  while (!m.calls) corio_loop_run_once(loop, 1.0);
  cr_assert_eq(m.res, 0);
  cr_assert_eq(m.op.inflight, 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(ops, cancel_pending_read, .timeout = 10)
{
  corio_loop *loop;
  struct myop m = {.op.complete = myop_done};
  char buf[8];
  int p[2];
  struct io_uring_sqe *sqe;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  cr_assert_eq(pipe(p), 0);
  sqe = corio_op_sqe(loop, &m.op);
  io_uring_prep_read(sqe, p[0], buf, sizeof(buf), 0);
  cr_assert_eq(corio_loop_run_once(loop, 0.01), 1);
  cr_assert_eq(m.calls, 0);
  cr_assert_eq(corio_op_cancel(loop, &m.op), 0);
  while (!m.calls) corio_loop_run_once(loop, 1.0);
  cr_assert_eq(m.res, -ECANCELED);
  cr_assert_eq(corio_op_cancel(loop, &m.op), -ENOENT); /* not in flight any more */
  drain(loop);
  close(p[0]);
  close(p[1]);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A fake backend: SQEs come from an array; poll completes every queued NOP with its
 * sqe->len as the result, in submission order, and keeps other ops pending (the loop's own
 * wakeup read). Fully deterministic: no kernel involved. */
static struct io_uring_sqe fake_sqes[64];
static int fake_n, fake_polls;
static int fake_init(corio_loop *loop, const corio_loop_opts *o)
{
  (void)loop;
  (void)o;
  fake_n = 0;
  return 0;
}
static void fake_close(corio_loop *loop)
{
  (void)loop;
}
static struct io_uring_sqe *fake_get_sqe(corio_loop *loop)
{
  (void)loop;
  if (fake_n == 64) return NULL;
  memset(&fake_sqes[fake_n], 0, sizeof(fake_sqes[0]));
  return &fake_sqes[fake_n++];
}
static int fake_poll(corio_loop *loop, int64_t timeout_ns)
{
  int i, j = 0, done = 0;
  (void)timeout_ns;
  fake_polls++;
  for (i = 0; i < fake_n; i++) {
    if (fake_sqes[i].opcode == IORING_OP_NOP) {
      corio__loop_dispatch(loop, fake_sqes[i].user_data, (int)fake_sqes[i].len, 0);
      done++;
    } else {
      fake_sqes[j++] = fake_sqes[i];
    }
  }
  fake_n = j;
  return done;
}
static int fake_fd(const corio_loop *loop)
{
  (void)loop;
  return -1;
}
static const corio__backend_vt fake_backend = {"fake",       fake_init, fake_close,
                                               fake_get_sqe, fake_poll, fake_fd};

static int seen[8], nseen;
static void rec_done(corio_op *op, int res, unsigned flags)
{
  (void)op;
  (void)flags;
  seen[nseen++] = res;
}

Test(ops, fake_backend_is_deterministic, .timeout = 10)
{
  corio_loop *loop;
  corio_op ops[3] = {{.complete = rec_done}, {.complete = rec_done}, {.complete = rec_done}};
  int i;
  struct io_uring_sqe *sqe;
  cr_assert_eq(corio__loop_new_backend(&loop, NULL, &fake_backend), 0);
  cr_assert_eq(fake_n, 1); /* the wakeup read */
  for (i = 0; i < 3; i++) {
    sqe = corio_op_sqe(loop, &ops[i]);
    io_uring_prep_nop(sqe);
    sqe->len = 10 + i;
  }
  cr_assert_eq(corio_loop_run_once(loop, 0), 0);
  cr_assert_eq(nseen, 3);
  for (i = 0; i < 3; i++) cr_assert_eq(seen[i], 10 + i);
  cr_assert_eq(fake_polls, 1);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* io_uring_setup denied by a seccomp filter (as in many container runtimes): corio_loop_new
 * fails with a code whose message says what to do. */
static void deny_io_uring(int err)
{
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};
  cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
  cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
}

Test(ops, io_uring_denied_by_seccomp, .timeout = 10)
{
  corio_loop *loop = (corio_loop *)0x1;
  deny_io_uring(EPERM);
  cr_assert_eq(corio_loop_new(&loop, NULL), CORIO_E_URING_DENIED);
  cr_assert_eq(loop, NULL);
  cr_assert(strstr(corio_strerror(CORIO_E_URING_DENIED), "seccomp") != NULL);
}

Test(ops, io_uring_missing, .timeout = 10)
{
  corio_loop *loop;
  deny_io_uring(ENOSYS);
  cr_assert_eq(corio_loop_new(&loop, NULL), CORIO_E_URING_NOSYS);
}

Test(ops, io_uring_memlock, .timeout = 10)
{
  corio_loop *loop;
  deny_io_uring(ENOMEM);
  cr_assert_eq(corio_loop_new(&loop, NULL), CORIO_E_URING_MEMLOCK);
  cr_assert(strstr(corio_strerror(CORIO_E_URING_MEMLOCK), "ulimit -l") != NULL);
}

/* The loop's poll before sleeping with executor jobs in flight (loop.c: spin_for_completion),
 * driven from here: executor_jobs and the hook are set by hand, as the executors would. Polls
 * that see nothing arrive stop after 3 in a row; then one poll in 256 sleeps tries again; a
 * poll that sees a post counts a hit and starts the count over. */
static int spin_asks;
static bool spin_post;
static void nothing(void *arg)
{
  (void)arg;
}
static bool spin_ok(corio_loop *loop)
{
  spin_asks++;
  if (spin_post) cr_assert_eq(corio_call_soon_threadsafe(loop, nothing, NULL), 0);
  return true;
}

Test(ops, polling_for_executor_completions_adapts, .timeout = 10)
{
  corio_loop *loop;
  corio_loop_stats s;
  int i;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  loop->executor_jobs = 1;
  loop->executor_spin_ok = spin_ok;
  for (i = 0; i < 10; i++) corio_loop_run_once(loop, 0.0005);
  corio_loop_get_stats(loop, &s);
  cr_assert_eq(s.spins, 3, "3 polls, then sleeps at once");
  cr_assert_eq(s.spin_hits, 0);
  for (i = 0; i < 260; i++) corio_loop_run_once(loop, 0.0001);
  corio_loop_get_stats(loop, &s);
  cr_assert_eq(s.spins, 4, "one retry after 256 sleeps");
  cr_assert_eq(spin_asks, 4);
  /* the next poll sees a post: a hit, and polling goes on */
  for (i = 0; i < 300 && s.spins == 4; i++) {
    spin_post = true;
    corio_loop_run_once(loop, 0.0001);
    corio_loop_get_stats(loop, &s);
  }
  cr_assert_eq(s.spins, 5);
  cr_assert_eq(s.spin_hits, 1);
  spin_post = false;
  for (i = 0; i < 10; i++) corio_loop_run_once(loop, 0.0001);
  corio_loop_get_stats(loop, &s);
  cr_assert_eq(s.spins, 8, "after a hit, 3 more misses before it stops");
  loop->executor_jobs = 0;
  drain(loop);
  cr_assert_eq(corio_loop_close(loop), 0);
}
