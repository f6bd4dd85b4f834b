/* The loop's private struct, shared by loop.c and the backends. */
#ifndef CORIO_LOOP_IMPL_H
#define CORIO_LOOP_IMPL_H

#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include "internal.h"

/* Internal op flag: the op does not keep the loop alive (wakeup, signal poll). */
#define CORIO__OP_INTERNAL 0x1u

/* A scheduled callback: in the ready queue or the timer heap. Addressed by index (handles are
 * index + generation), so the array may grow with realloc. */
enum { ENT_FREE = 0, ENT_READY, ENT_TIMER, ENT_CANCELLED };
typedef struct corio__entry {
  corio_cb cb;
  union {
    void *arg;          /* while scheduled */
    uint32_t next_free; /* while free: 24 bytes an entry, which matters at 10M timers */
  };
  uint32_t gen;
  uint32_t state;
} corio__entry;

/* The backend seam (STYLE: backends): the io_uring code sits behind this const vtable so that a
 * test can drive the layers above with a deterministic fake. */
typedef struct corio__backend_vt {
  const char *name;
  int (*init)(corio_loop *loop, const corio_loop_opts *opts);
  void (*close)(corio_loop *loop);
  struct io_uring_sqe *(*get_sqe)(corio_loop *loop);
  /* Submit what is queued, wait up to timeout_ns (-1: forever, 0: do not block), dispatch every
   * completion in one batch. Returns the number dispatched or a negative error. */
  int (*poll)(corio_loop *loop, int64_t timeout_ns);
  int (*fd)(const corio_loop *loop);
} corio__backend_vt;

extern const corio__backend_vt corio__uring_backend;

typedef struct corio__watcher corio__watcher;

struct corio_loop {
  const corio__backend_vt *be;
  struct io_uring ring;
  unsigned ring_flags;
  bool ring_ok;
  unsigned idle_polls; /* zero-timeout iterations that skipped io_uring_enter */
  unsigned batch_us;   /* batched waits' window (0: off or unsupported), see uring_poll */
  unsigned batch_new;  /* completions the last blocking wait brought beyond its submissions */

  /* scheduled callbacks */
  corio__entry *ents;
  uint32_t nents, capents, free_head;
  uint32_t *rq; /* ready queue: ring buffer of entry indices */
  uint32_t rq_cap, rq_head, rq_len;
  size_t ntimers; /* live timers (the heap may also hold cancelled ones: ndead) */
  size_t ndead;
  corio__heap timers;
  uint32_t timer_seq;

  /* Cross-thread inbox and wakeup. What a poster touches (see corio__loop_post) shares one
   * cache line and nothing else the loop writes often does: a post is then a few operations on
   * a line it holds, instead of a transfer per field (padding, not _Alignas: the loop comes from
   * corio__malloc, which promises 16-byte alignment only). */
  char pad_inbox0[64];
  corio__mpsc inbox;
  _Atomic int sleeping;
  _Atomic int closing;
  /* threads inside corio__loop_post (close waits them out before it frees anything) */
  _Atomic size_t posters;
  int efd;
  char pad_inbox1[64];
  /* the rest of the nodes drain_inbox took and has not run yet: they keep the loop alive */
  struct corio__mpsc_node *inbox_rest;
  corio_op wake_op;
  uint64_t wake_buf;

  corio_loop_stats stats;
  _Atomic uint64_t wakeups;

  pthread_t thread;
  bool running, stopping;
  bool debug;
  int64_t slow_ns;

  size_t alive; /* tasks and other objects that keep the loop busy */
  size_t ops_inflight;
  corio__list tasks;

  corio_exception_handler exc_fn;
  void *exc_arg;

  /* signals */
  int sigfd;
  sigset_t sigmask, sig_blocked_by_us;
  corio_op sig_op;
  struct {
    corio_signal_cb cb;
    void *arg;
  } sigh[_NSIG];
  int nsig;

  /* the DNS resolver (transports/dns.c), created on first use, freed before the ring at close */
  void *resolver;
  void (*resolver_free)(void *resolver);

  /* corio_run_in_executor (executors/executor.c): its default thread pool, created on first
   * use and freed at close; its jobs not yet completed on the loop's thread, which keep the loop
   * alive (close: -EBUSY). Only the loop's thread counts them: submits come from it, and a
   * job finished in a worker is counted off when its hand-over runs (executors/executor.c). */
  void *default_executor;
  void (*default_executor_free)(void *ex);
  size_t executor_jobs;
  /* Jobs for the default pool submitted on the loop's thread and not yet handed to it: the loop
   * hands them over in one push (executor_flush) before it runs the inbox and again after the
   * ready callbacks, so a pass that submits a thousand jobs publishes them with one atomic
   * operation and lets their cache lines travel in parallel. */
  corio__list executor_deferred;
  size_t executor_ndeferred;
  void (*executor_flush)(corio_loop *loop);
  /* before sleeping with executor jobs in flight: may the loop poll its inbox for a while
   * (iterate: spin_for_completion)? Set with the default pool; misses since the last success */
  bool (*executor_spin_ok)(corio_loop *loop);
  unsigned spin_misses, spin_skips;

  /* transports' provided-buffer ring, created on first use, freed after the ring at close */
  void *bufring;
  void (*bufring_free)(void *bufring);

  /* readers / writers, indexed by fd */
  corio__watcher **readers, **writers;
  size_t watch_cap, nwatchers;
};

void corio__loop_dispatch(corio_loop *loop, uint64_t user_data, int res, unsigned flags);
/** add_reader/add_writer for the library's own fds (c-ares sockets): such watchers do not keep
 *  the loop alive, and corio_loop_close frees any that remain. */
int corio__loop_watch(corio_loop *loop, int fd, short events, corio_fd_cb cb, void *arg,
                      bool internal);
int corio__loop_unwatch(corio_loop *loop, int fd, short events);
/** corio_loop_new with another backend (tests drive the loop with a deterministic fake). */
int corio__loop_new_backend(corio_loop **out, const corio_loop_opts *opts,
                            const corio__backend_vt *be);

#endif
