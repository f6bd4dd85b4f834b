/*
 * Process pool, parent side: the queue, the worker table, submit / cancel / shutdown, and the
 * manager thread that reads results and worker deaths. procpool_impl.h describes the processes
 * and the protocol; procpool_child.c is the code that runs in them.
 *
 * Threads. Any thread may submit, cancel or shut down; one manager thread per pool polls the
 * control socket (fork server) and the worker sockets. Everything below is guarded by the pool
 * mutex except what only the manager touches: receiving, closing sockets and freeing worker
 * structs. Futures are always completed with the mutex released (their done callbacks may
 * submit again): locked code collects finished jobs on a local list, and finish_list() completes
 * them after unlocking.
 *
 * Dispatch. A job goes straight from the submitting thread to an idle worker (one sendmsg under
 * the mutex): on an idle pool the round trip is submit -> worker -> manager -> waiter, with no
 * hop through the manager on the way in and no eventfd write. The send cannot block: a worker is
 * sent a job only while idle, so its socket is empty, and inline payloads are capped below the
 * socket buffer. Without an idle worker the job waits in the FIFO queue; the manager hands it
 * out when a result or a new worker frees one. The first worker starts with the pool; the others
 * are forked on demand, one per queued job lacking a worker, up to max_workers (a worker's slot
 * is its index for corio_job_worker). A new worker is idle as soon as its socket exists, before
 * the fork is done (spawn_locked).
 *
 * Map chunks: jobs queued together by corio_executor_map with the same chunk id go to one worker
 * in one CHUNK message (send_chunk_locked); the worker keeps the list of the jobs sent to it,
 * the first being the one running, and each RESULT completes the first. Jobs sent but not yet
 * started when a worker dies are re-queued (settle_unstarted_locked).
 *
 * A worker's death is known twice: its socket hangs up, and the fork server reports the wait
 * status. Only the second one fails the job, so that the error can say what killed the worker;
 * the socket is drained first, so a result sent just before a (deliberate) exit is never lost.
 *
 * Cancellation (the executor's cancel hook, executor_impl.h): a queued job is taken out of the
 * queue and cancelled at once; a running job's worker is killed through the fork server and the
 * future ends cancelled when its death is reported, so by the time the future says cancelled the
 * job has stopped having effects. The worker is replaced on demand like any dead worker.
 *
 * Payloads, by size: up to inline_max (memfd_threshold, capped by the socket buffer) in the
 * message itself; up to CORIO__PP_WINDOW_MAX in the worker's window (a shared memfd mapped once
 * per worker and direction; the input is copied in under the mutex, since the window is the
 * chosen worker's); above that in a one-shot memfd that the submitting thread fills before
 * taking the mutex.
 *
 * Shutdown: closing stops new jobs; idle workers get their socket closed and exit; once every
 * worker's exit is reported, the manager closes the control socket (the fork server exits) and
 * reaps the fork server. At the deadline, busy workers are killed; if even that does not wind
 * the pool down, the fork server is killed, which kills every worker (PDEATHSIG).
 *
 * Limits: callbacks of the pool's futures run in the manager thread (as in concurrent.futures):
 * they may submit, cancel or even free the pool, but must not block waiting for the pool.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "procpool_impl.h"

/* The error of a job whose worker died under it; the text says how (signal or exit status). */
#define PP_E_WORKER_DIED CORIO_E_WORKER_DIED

#define PP_DEFAULT_THRESHOLD ((size_t)64 * 1024)
/* After the shutdown deadline the workers are killed; if the pool still has not wound down after
 * this long (a stopped fork server, say), the fork server itself is killed. */
#define PP_KILL_GRACE_NS ((int64_t)2 * 1000000000)

int corio__procpool_fail_forks;

enum { W_IDLE = 1, W_BUSY, W_STOPPING, W_RETIRED };
enum { KILL_NONE = 0, KILL_CANCEL, KILL_DEADLINE, KILL_PROTOCOL };
enum { J_QUEUED = 1, J_RUNNING, J_DONE };
#define J_KIND_CANCELLED 0x100 /* a finished job's kind: complete the future as cancelled */

typedef struct pp_worker {
  corio__list link; /* pool->dying while W_RETIRED */
  int state;
  int slot; /* index in pool->slots, -1 once retired */
  int sock; /* our end of the worker's socket, -1 before SPAWNED and after closing */
  int kill_reason;
  bool forked; /* the fork server reported the fork (SPAWNED): pid is known */
  pid_t pid;
  unsigned tasks;
  corio__list jobs;         /* W_BUSY: the jobs sent, in order (through job->node); the first
                               is the one running, the others wait in the worker (a chunk) */
  corio_job *cancel_job;    /* the job whose cancel killed the worker (KILL_CANCEL) */
  corio__pp_window win_in;  /* inputs we write (used under the pool mutex) */
  corio__pp_window win_out; /* results it writes (used by the manager only) */
} pp_worker;

typedef struct pp_pool {
  corio_executor base;
  corio__pp_config cfg;
  unsigned max_workers;
  pthread_mutex_t mu;
  pthread_cond_t cond; /* signalled when `finished` is set */
  corio__list queue;   /* pending jobs, through job->node */
  size_t nqueued;
  pp_worker **slots;
  unsigned nslots;    /* occupied slots */
  corio__list dying;  /* retired workers waiting for their exit report */
  corio__buf ctl_out; /* control messages the socket could not take yet (ctl_rec) */
  uint8_t *txbuf;     /* a CHUNK message being built (msg_max bytes, under the mutex) */
  int ctl, evfd;
  pid_t server;
  pthread_t manager;
  bool closing, finished, joined;
  bool free_on_exit;    /* freed by the manager thread itself (set in that thread) */
  int broken;           /* the fork server died: the error every job now fails with */
  char broken_msg[160]; /* and its text */
  /* manager-only */
  uint8_t *rxbuf;
  struct pollfd *pfd;
  pp_worker **pfd_worker;
} pp_pool;

static void close_fd(int fd)
{
  if (fd >= 0) close(fd);
}

/* ---- helpers ---- */

static pp_pool *pool_of(corio_executor *ex)
{
  return corio_container_of(ex, pp_pool, base);
}

/* A job's input memfd, kept in job->impl as fd + 1 so that the zeroed field means none. */
static int job_memfd(const corio_job *job)
{
  return (int)(intptr_t)job->impl - 1;
}

static void job_close_memfd(corio_job *job)
{
  close_fd(job_memfd(job));
  job->impl = NULL;
}

static void wake(pp_pool *p)
{
  uint64_t one = 1;
  ssize_t n = write(p->evfd, &one, sizeof(one));
  (void)n; /* EAGAIN: the counter is already nonzero, the manager will wake */
}

static void finish_list(corio__list *done)
{
  corio__list *n;
  corio_job *job;
  while (!corio__list_empty(done)) {
    n = done->next;
    corio__list_remove(n);
    job = corio_container_of(n, corio_job, node);
    if (job->kind == J_KIND_CANCELLED) {
      job->kind = CORIO__JOB_NONE;
      corio__job_finish_cancelled(job);
    } else {
      corio__job_finish(job);
    }
  }
}

static void job_done_locked(corio_job *job, corio__list *done)
{
  job->qstate = J_DONE;
  corio__list_insert_tail(done, &job->node);
}

static void job_cancelled_locked(corio_job *job, corio__list *done)
{
  corio__job_clear_result(job);
  job->kind = J_KIND_CANCELLED;
  job_done_locked(job, done);
}

static corio_job *queue_pop_locked(pp_pool *p)
{
  corio__list *n = p->queue.next;
  corio__list_remove(n);
  p->nqueued--;
  return corio_container_of(n, corio_job, node);
}

/* The job a busy worker runs (the first of those sent to it), or NULL. */
static corio_job *running_job(pp_worker *w)
{
  return corio__list_empty(&w->jobs) ? NULL : corio_container_of(w->jobs.next, corio_job, node);
}

/* Put the jobs of @p l back at the head of the queue, in their order: they never ran. */
static void requeue_locked(pp_pool *p, corio__list *l)
{
  corio__list *anchor = p->queue.next, *n;
  corio_job *job;
  while (!corio__list_empty(l)) {
    n = l->next;
    corio__list_remove(n);
    job = corio_container_of(n, corio_job, node);
    job->qstate = J_QUEUED;
    corio__list_insert_tail(anchor, n);
    p->nqueued++;
  }
}

/* Fail the jobs of @p l (none of them started) with @p err and @p msg. */
static void fail_list_locked(corio__list *l, corio__list *done, int err, const char *msg)
{
  corio_job *job;
  while (!corio__list_empty(l)) {
    job = corio_container_of(l->next, corio_job, node);
    corio__list_remove(&job->node);
    job_close_memfd(job);
    corio_job_fail(job, err, "%s", msg);
    job_done_locked(job, done);
  }
}

static void fail_queue_locked(pp_pool *p, corio__list *done, int err, const char *msg)
{
  corio_job *job;
  while (p->nqueued) {
    job = queue_pop_locked(p);
    job_close_memfd(job);
    corio_job_fail(job, err, "%s", msg);
    job_done_locked(job, done);
  }
}

/* A control message waiting in ctl_out, with the descriptor it carries (or -1). */
typedef struct ctl_rec {
  corio__pp_ctl_msg m;
  int fd;
  int pad;
} ctl_rec;

static void ctl_out_clear(pp_pool *p)
{
  size_t off;
  ctl_rec r;
  for (off = 0; off + sizeof(r) <= p->ctl_out.len; off += sizeof(r)) {
    memcpy(&r, p->ctl_out.data + off, sizeof(r));
    close_fd(r.fd);
  }
  corio__buf_free(&p->ctl_out);
}

/* Queue a control message, with @p fd attached (>= 0; it is ours from here and closed once
 * sent); never blocks (the fork server may itself be blocked sending to us, and only the
 * manager reads its messages). What the socket cannot take now is kept in ctl_out and flushed
 * by the manager on POLLOUT. */
static void ctl_send_locked(pp_pool *p, uint32_t type, int worker, pid_t pid, int value,
                            uint64_t token, int fd)
{
  ctl_rec r;
  int rc;
  if (p->ctl < 0) {
    close_fd(fd);
    return;
  }
  memset(&r, 0, sizeof(r));
  r.m.type = type;
  r.m.worker = worker;
  r.m.pid = pid;
  r.m.value = value;
  r.m.token = token;
  r.fd = fd;
  if (p->ctl_out.len == 0) {
    rc = corio__pp_send(p->ctl, &r.m, sizeof(r.m), NULL, 0, fd, MSG_DONTWAIT);
    if (rc != -EAGAIN) { /* sent, or the fork server is gone (the manager sees it) */
      close_fd(fd);
      return;
    }
  }
  if (corio__buf_append(&p->ctl_out, &r, sizeof(r)) < 0) {
    /* No memory to queue it: a blocking send is the only way not to lose it. */
    corio__pp_send(p->ctl, &r.m, sizeof(r.m), NULL, 0, fd, 0);
    close_fd(fd);
    return;
  }
  wake(p);
}

static void kill_worker_locked(pp_pool *p, pp_worker *w, int reason)
{
  if (w->kill_reason == KILL_NONE)
    ctl_send_locked(p, CORIO__PP_KILL, w->slot, w->pid, SIGKILL, (uint64_t)(uintptr_t)w, -1);
  /* A cancel overrides the deadline: the caller was promised a cancelled future. */
  if (w->kill_reason == KILL_NONE || reason == KILL_CANCEL) w->kill_reason = reason;
}

/* The worker leaves its slot (max_tasks_per_child reached, or the pool is closing): its socket
 * is closed, which makes it exit, and it waits on the dying list for its exit report. */
static void retire_locked(pp_pool *p, pp_worker *w)
{
  close_fd(w->sock);
  w->sock = -1;
  corio__pp_window_free(&w->win_in);
  corio__pp_window_free(&w->win_out);
  p->slots[w->slot] = NULL;
  p->nslots--;
  w->slot = -1;
  w->state = W_RETIRED;
  corio__list_insert_tail(&p->dying, &w->link);
}

/* Send @p job to @p w: input inline, in the worker's window (@p winfd: a new window to attach, or
 * -1), or in the job's own memfd. */
static int send_job(pp_pool *p, pp_worker *w, corio_job *job, int winfd)
{
  corio__pp_job_msg m;
  const void *payload = job->input.data;
  int fd = job_memfd(job);
  memset(&m, 0, sizeof(m));
  m.type = CORIO__PP_JOB;
  m.fn = (uint64_t)(uintptr_t)job->fn;
  m.arg = (uint64_t)(uintptr_t)job->arg;
  m.len = job->input.len;
  m.worker = w->slot;
  if (job->input.data) m.flags |= CORIO__PP_F_BYTES;
  if (fd >= 0) {
    m.flags |= CORIO__PP_F_MEMFD | CORIO__PP_F_BYTES;
    payload = NULL;
  } else if (m.len > p->cfg.inline_max) {
    memcpy(w->win_in.map, job->input.data, m.len);
    m.flags |= CORIO__PP_F_WINDOW;
    payload = NULL;
    fd = winfd;
  }
  return corio__pp_send(w->sock, &m, sizeof(m), payload, payload ? m.len : 0, fd, 0);
}

static size_t chunk_align(size_t off)
{
  return (off + CORIO__PP_CHUNK_ALIGN - 1) & ~(size_t)(CORIO__PP_CHUNK_ALIGN - 1);
}

/* Whether @p job can travel inside a CHUNK message: its input inline, and the same function and
 * argument as the chunk's first job (map's jobs always are). */
static bool chunkable(const pp_pool *p, const corio_job *job, const corio_job *first)
{
  return job->chunk && job->chunk == first->chunk && job->fn == first->fn &&
         job->arg == first->arg && job_memfd(job) < 0 && job->input.len <= p->cfg.inline_max;
}

/* With @p first just popped from the queue for idle worker @p w: if the jobs after it in the
 * queue belong to the same map chunk, send them all in one CHUNK message and return 1 (0: send
 * @p first alone, as a JOB). The chunk is cut where it would exceed what one message holds
 * (msg_max), at a job whose input is not inline (it travels alone, through the window or its
 * memfd, and the rest of the chunk follows as another message, maybe to another worker), and at
 * the worker's max_tasks_per_child: the limit counts jobs, so a worker is never sent a job it
 * would not live to run. The queue is FIFO and a chunk's jobs are queued back to back, so they
 * are still adjacent here (a cancel may have taken some out, which only shortens the chunk). */
static int send_chunk_locked(pp_pool *p, pp_worker *w, corio_job *first)
{
  corio__pp_job_msg m;
  corio__list batch, *n;
  corio_job *job;
  size_t count = 1, k, size, data, quota = SIZE_MAX;
  uint64_t len;
  int rc;
  if (!first->chunk || !chunkable(p, first, first)) return 0;
  if (p->cfg.max_tasks_per_child) quota = p->cfg.max_tasks_per_child - w->tasks;
  /* Count the jobs that fit: lengths table, then each input at an aligned offset. */
  data = first->input.len;
  for (n = p->queue.next; n != &p->queue && count < quota; n = n->next) {
    job = corio_container_of(n, corio_job, node);
    if (!chunkable(p, job, first)) break;
    size = chunk_align(data) + job->input.len;
    if (chunk_align((count + 1) * sizeof(uint64_t)) + size > p->cfg.msg_max) break;
    data = size;
    count++;
  }
  if (count < 2) return 0;
  if (!p->txbuf && !(p->txbuf = corio__malloc(p->cfg.msg_max))) return 0;
  corio__list_init(&batch);
  corio__list_insert_tail(&batch, &first->node);
  for (k = 1; k < count; k++) corio__list_insert_tail(&batch, &queue_pop_locked(p)->node);
  size = chunk_align(count * sizeof(uint64_t));
  k = 0;
  corio__list_foreach(n, &batch)
  {
    job = corio_container_of(n, corio_job, node);
    len = job->input.len;
    memcpy(p->txbuf + k++ * sizeof(uint64_t), &len, sizeof(len));
    if (k > 1) size = chunk_align(size);
    if (len) memcpy(p->txbuf + size, job->input.data, (size_t)len);
    size += (size_t)len;
  }
  memset(&m, 0, sizeof(m));
  m.type = CORIO__PP_CHUNK;
  m.flags = CORIO__PP_F_BYTES;
  m.fn = (uint64_t)(uintptr_t)first->fn;
  m.arg = (uint64_t)(uintptr_t)first->arg;
  m.len = count;
  m.worker = w->slot;
  rc = corio__pp_send(w->sock, &m, sizeof(m), p->txbuf, size, -1, 0);
  if (rc < 0) {
    /* As for a single job (dispatch_locked): the chunk goes back first in line. */
    requeue_locked(p, &batch);
    kill_worker_locked(p, w, KILL_PROTOCOL);
    w->state = W_STOPPING;
    return 1;
  }
  while (!corio__list_empty(&batch)) {
    job = corio_container_of(batch.next, corio_job, node);
    corio__list_remove(&job->node);
    job->qstate = J_RUNNING;
    job->worker = w->slot;
    corio__list_insert_tail(&w->jobs, &job->node);
  }
  w->state = W_BUSY;
  return 1;
}

/*
 * Start a worker in a free slot: make its socket pair here and send the worker's end to the
 * fork server with SPAWN. The worker is idle at once, before it even exists: a job sent now
 * waits in its socket until the fork is done and the worker reads it. This takes the manager
 * off the path of a new worker's first job (before, the job waited for the SPAWNED report to
 * reach the manager, which then sent it: two more process wakeups, on a loaded machine the
 * larger part of a new pool's first job). If the fork fails, SPAWN_FAILED gives back the jobs
 * sent meanwhile (they never ran). 0, or -errno with nothing started.
 */
/* A new idle worker in a free slot, with its socket pair; *child gets the worker's end. */
static pp_worker *new_worker_locked(pp_pool *p, int *child, int *err)
{
  pp_worker *w;
  unsigned i;
  int sv[2];
  for (i = 0; p->slots[i]; i++) {
  }
  w = corio__calloc(1, sizeof(*w));
  if (!w) {
    *err = -ENOMEM;
    return NULL;
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    *err = -errno;
    corio__free(w);
    return NULL;
  }
  corio__list_init(&w->link);
  corio__list_init(&w->jobs);
  w->state = W_IDLE;
  w->slot = (int)i;
  w->sock = sv[0];
  p->slots[i] = w;
  p->nslots++;
  *child = sv[1];
  return w;
}

static int spawn_locked(pp_pool *p)
{
  pp_worker *w;
  int child = -1, err = 0;
  w = new_worker_locked(p, &child, &err);
  if (!w) return err;
  ctl_send_locked(p, CORIO__PP_SPAWN, w->slot, 0, 0, (uint64_t)(uintptr_t)w, child);
  wake(p); /* the manager polls the new socket from now */
  return 0;
}

/* Hand queued jobs to idle workers, starting workers (up to max_workers, if @p may_spawn)
 * while none is idle. */
static void dispatch_ex_locked(pp_pool *p, corio__list *done, bool may_spawn)
{
  char msg[96];
  pp_worker *w;
  corio_job *job;
  unsigned i = 0;
  int winfd, rc;
  while (p->nqueued) {
    for (; i < p->max_workers; i++)
      if (p->slots[i] && p->slots[i]->state == W_IDLE) break;
    if (i == p->max_workers) {
      if (!may_spawn || p->nslots >= p->max_workers || p->broken) break;
      rc = spawn_locked(p);
      if (rc < 0) {
        if (p->nslots == 0) { /* nobody would ever run the queue */
          snprintf(msg, sizeof(msg), "cannot start a worker process: %s", strerror(-rc));
          fail_queue_locked(p, done, rc, msg);
        }
        break;
      }
      i = 0;
      continue;
    }
    w = p->slots[i];
    job = queue_pop_locked(p);
    if (send_chunk_locked(p, w, job)) continue;
    winfd = -1;
    if (job_memfd(job) < 0 && job->input.len > p->cfg.inline_max &&
        job->input.len > w->win_in.cap) {
      winfd = corio__pp_window_grow(&w->win_in, job->input.len);
      if (winfd < 0) {
        corio_job_fail(job, winfd, "cannot create a shared window for the job's input: %s",
                       strerror(-winfd));
        job_done_locked(job, done);
        continue;
      }
    }
    rc = send_job(p, w, job, winfd);
    close_fd(winfd);
    if (rc < 0) {
      /* The worker died while idle (its exit report is on the way), or its socket is unusable
       * (then the kill makes sure an exit report comes): the job goes back first in line. */
      corio__list_insert_tail(p->queue.next, &job->node);
      p->nqueued++;
      kill_worker_locked(p, w, KILL_PROTOCOL);
      w->state = W_STOPPING;
      continue;
    }
    job_close_memfd(job); /* the worker has its own reference now */
    job->qstate = J_RUNNING;
    job->worker = w->slot;
    corio__list_insert_tail(&w->jobs, &job->node);
    w->state = W_BUSY;
  }
}

static void dispatch_locked(pp_pool *p, corio__list *done)
{
  dispatch_ex_locked(p, done, true);
}

/* ---- vtable ---- */

/* A payload too big for the window goes into a memfd of its own. Built by the submitting thread,
 * so that no big copy happens under the mutex (a window copy, up to CORIO__PP_WINDOW_MAX, does:
 * it needs the worker chosen). Returns 0, or the error the job must fail with. */
static int prepare_input(pp_pool *p, corio_job *job)
{
  size_t len = job->input.len;
  int fd;
  if (len <= p->cfg.inline_max || len <= CORIO__PP_WINDOW_MAX) return 0;
  fd = corio__pp_memfd_from(job->input.data, len);
  if (fd < 0) return fd;
  job->impl = (void *)(intptr_t)(fd + 1);
  corio_bytes_free(&job->input); /* the memfd has it; keep only the length */
  job->input.len = len;
  return 0;
}

static int pp_submit(corio_executor *ex, corio_job *job)
{
  pp_pool *p = pool_of(ex);
  corio__list done;
  int err = prepare_input(p, job);
  if (err < 0) {
    corio__job_finish_error(job, err, "cannot create a memfd for the job's input");
    return 0;
  }
  corio__list_init(&done);
  pthread_mutex_lock(&p->mu);
  if (p->closing || p->broken) {
    err = p->broken ? p->broken : CORIO_E_CLOSED;
    pthread_mutex_unlock(&p->mu);
    job_close_memfd(job);
    corio__job_finish_error(
        job, err, err == CORIO_E_CLOSED ? "the process pool is shut down" : p->broken_msg);
    return 0;
  }
  job->qstate = J_QUEUED;
  corio__list_insert_tail(&p->queue, &job->node);
  p->nqueued++;
  dispatch_locked(p, &done);
  pthread_mutex_unlock(&p->mu);
  finish_list(&done);
  return 0;
}

/* map: the jobs arrive as one list and are queued under one lock, so a chunk's jobs are adjacent
 * in the queue (send_chunk_locked relies on it) and the workers see them all at once. */
static int pp_submit_list(corio_executor *ex, corio__list *jobs, size_t n)
{
  pp_pool *p = pool_of(ex);
  corio__list done, *node;
  corio_job *job;
  int err;
  (void)n;
  corio__list_init(&done);
  for (node = jobs->next; node != jobs;) {
    job = corio_container_of(node, corio_job, node);
    node = node->next;
    err = prepare_input(p, job);
    if (err < 0) {
      corio__list_remove(&job->node);
      corio_job_fail(job, err, "cannot create a memfd for the job's input");
      corio__list_insert_tail(&done, &job->node);
    }
  }
  pthread_mutex_lock(&p->mu);
  if (p->closing || p->broken) {
    err = p->broken ? p->broken : CORIO_E_CLOSED;
    fail_list_locked(jobs, &done, err,
                     err == CORIO_E_CLOSED ? "the process pool is shut down" : p->broken_msg);
  } else {
    while (!corio__list_empty(jobs)) {
      node = jobs->next;
      corio__list_remove(node);
      corio_container_of(node, corio_job, node)->qstate = J_QUEUED;
      corio__list_insert_tail(&p->queue, node);
      p->nqueued++;
    }
    dispatch_locked(p, &done);
  }
  pthread_mutex_unlock(&p->mu);
  finish_list(&done);
  return 0;
}

/* A queued job is taken out and cancelled. A running job's worker is killed (the future ends
 * cancelled when the death is reported). A job sent in a chunk and waiting in the worker behind
 * the running one is left alone and 0 returned, as the thread pool does for a job of a chunk a
 * worker has taken: killing the worker would also kill the job running before it. */
static int pp_cancel(corio_executor *ex, corio_job *job)
{
  pp_pool *p = pool_of(ex);
  pp_worker *w;
  int rc = 0;
  pthread_mutex_lock(&p->mu);
  if (job->qstate == J_QUEUED) {
    corio__list_remove(&job->node);
    p->nqueued--;
    job->qstate = J_DONE;
    pthread_mutex_unlock(&p->mu);
    job_close_memfd(job);
    corio__job_finish_cancelled(job);
    return 1;
  }
  if (job->qstate == J_RUNNING) {
    w = p->slots[job->worker];
    if (w && running_job(w) == job) {
      kill_worker_locked(p, w, KILL_CANCEL);
      w->cancel_job = job;
      rc = 1;
    }
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* At the shutdown deadline: kill the busy workers, fail the jobs that never started. Returns
 * whether any job was affected. */
static bool deadline_locked(pp_pool *p, corio__list *done)
{
  bool hit = p->nqueued > 0;
  unsigned i;
  fail_queue_locked(p, done, -ETIMEDOUT,
                    "the process pool's shutdown deadline passed before the job started");
  for (i = 0; i < p->max_workers; i++)
    if (p->slots[i] && p->slots[i]->state == W_BUSY) {
      kill_worker_locked(p, p->slots[i], KILL_DEADLINE);
      hit = true;
    }
  return hit;
}

static void cond_wait_until(pp_pool *p, int64_t deadline)
{
  struct timespec ts;
  ts.tv_sec = deadline / 1000000000;
  ts.tv_nsec = deadline % 1000000000;
  pthread_cond_timedwait(&p->cond, &p->mu, &ts);
}

static int pp_shutdown(corio_executor *ex, int wait, int cancel_futures, double timeout_s)
{
  pp_pool *p = pool_of(ex);
  corio__list done;
  int64_t deadline = 0;
  int rc = 0, stage = 0; /* 0: before the deadline, 1: workers killed, 2: fork server killed */
  corio__list_init(&done);
  pthread_mutex_lock(&p->mu);
  p->closing = true;
  if (cancel_futures)
    while (p->nqueued) {
      corio_job *job = queue_pop_locked(p);
      job_close_memfd(job);
      job_cancelled_locked(job, &done);
    }
  pthread_mutex_unlock(&p->mu);
  wake(p);
  finish_list(&done);
  /* A done callback runs in the manager thread: waiting there for the manager would deadlock. */
  if (!wait || pthread_equal(pthread_self(), p->manager)) return 0;
  if (timeout_s >= 0) deadline = corio__now_ns() + corio__seconds_to_ns(timeout_s);
  pthread_mutex_lock(&p->mu);
  while (!p->finished) {
    if (timeout_s < 0) {
      pthread_cond_wait(&p->cond, &p->mu);
      continue;
    }
    if (corio__now_ns() < deadline) {
      cond_wait_until(p, deadline);
      continue;
    }
    if (stage == 0) {
      if (deadline_locked(p, &done)) rc = -ETIMEDOUT;
      pthread_mutex_unlock(&p->mu);
      finish_list(&done);
      pthread_mutex_lock(&p->mu);
      deadline = corio__now_ns() + PP_KILL_GRACE_NS;
    } else if (stage == 1 && p->server > 0) {
      /* The fork server does not answer; killing it kills every worker (PDEATHSIG), and the
       * manager then fails what is left. The pid is still ours: only the manager reaps it. */
      kill(p->server, SIGKILL);
      timeout_s = -1;
    } else {
      timeout_s = -1;
    }
    stage++;
  }
  if (!p->joined) {
    p->joined = true;
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->manager, NULL);
    return rc;
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

static void pool_free(pp_pool *p)
{
  close_fd(p->evfd);
  ctl_out_clear(p);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cond);
  corio__free(p->slots);
  corio__free(p->rxbuf);
  corio__free(p->txbuf);
  corio__free(p->pfd);
  corio__free(p->pfd_worker);
  corio__free(p);
}

static void pp_destroy(corio_executor *ex)
{
  pp_pool *p = pool_of(ex);
  if (!p->joined && pthread_equal(pthread_self(), p->manager)) {
    /* Freed from a done callback, which runs in the manager thread: it cannot join itself, so
     * it frees the pool when it has wound down (shutdown, already requested, gets it there). */
    p->joined = true;
    p->free_on_exit = true;
    pthread_detach(p->manager);
    return;
  }
  if (!p->joined) {
    p->joined = true;
    pthread_join(p->manager, NULL);
  }
  pool_free(p);
}

static const corio_executor_vt pp_vt = {
    .name = "process pool",
    .submit = pp_submit,
    .shutdown = pp_shutdown,
    .destroy = pp_destroy,
    .cancel = pp_cancel,
    .submit_list = pp_submit_list,
};

/* ---- manager: results ---- */

struct result {
  int kind, err;
  int64_t i;
  corio_bytes bytes;
  char *text;
};

/* Decode a RESULT message (the payload is in p->rxbuf or the memfd @p fd). */
static int parse_result(pp_pool *p, pp_worker *w, const corio__pp_result_msg *m, size_t n, int *fdp,
                        struct result *r)
{
  const uint8_t *src = p->rxbuf;
  int rc = 0, fd = *fdp;
  memset(r, 0, sizeof(*r));
  if (m->type != CORIO__PP_RESULT) return -EPROTO;
  if (m->flags & CORIO__PP_F_WINDOW) {
    if (m->kind != CORIO__JOB_BYTES || n != 0) return -EPROTO;
    if (fd >= 0) {
      *fdp = -1; /* taken by window_map */
      rc = corio__pp_window_map(&w->win_out, fd);
      fd = -1;
      if (rc < 0) return rc;
    }
    if (m->len > w->win_out.cap) return -EPROTO;
    src = w->win_out.map;
  } else if (m->flags & CORIO__PP_F_MEMFD) {
    if (fd < 0) return -EPROTO;
  } else if (m->len != n) {
    return -EPROTO;
  }
  r->kind = m->kind;
  switch (m->kind) {
  case CORIO__JOB_INT:
    r->i = m->i;
    return 0;
  case CORIO__JOB_BYTES:
    if (m->len > PTRDIFF_MAX) return -EPROTO;
    r->bytes = corio_bytes_alloc(m->len);
    if (!r->bytes.data && m->len) {
      rc = -ENOMEM;
      break;
    }
    if (fd >= 0)
      rc = corio__pp_read_all(fd, r->bytes.data, m->len);
    else if (m->len)
      memcpy(r->bytes.data, src, m->len);
    if (rc < 0) corio_bytes_free(&r->bytes);
    break;
  case CORIO__JOB_ERR:
    r->err = m->err < 0 ? m->err : -EINVAL;
    if (fd >= 0) return -EPROTO;
    r->text = corio__malloc(m->len + 1);
    if (r->text) {
      memcpy(r->text, p->rxbuf, m->len);
      r->text[m->len] = 0;
    }
    return 0;
  default:
    return -EPROTO;
  }
  if (rc < 0) {
    /* The job ran, but its result cannot be delivered: say so instead. */
    r->kind = CORIO__JOB_ERR;
    r->err = rc;
    r->text = NULL;
    rc = 0;
  }
  return rc;
}

static void apply_result(corio_job *job, struct result *r)
{
  corio__job_clear_result(job);
  job->kind = r->kind;
  job->i = r->i;
  job->err = r->err;
  job->out = r->bytes;
  job->errmsg = r->text;
  r->bytes.data = NULL;
  r->bytes.len = 0;
  r->text = NULL;
}

static void on_result(pp_pool *p, pp_worker *w, struct result *r, corio__list *done)
{
  corio_job *job;
  pthread_mutex_lock(&p->mu);
  job = running_job(w);
  if (!job || w->state != W_BUSY) {
    /* A result nobody asked for: the worker is not following the protocol. */
    kill_worker_locked(p, w, KILL_PROTOCOL);
    w->state = W_STOPPING;
    pthread_mutex_unlock(&p->mu);
    corio_bytes_free(&r->bytes);
    corio__free(r->text);
    return;
  }
  corio__list_remove(&job->node);
  w->tasks++;
  if (job == w->cancel_job) {
    /* It finished while its worker was being killed: the caller was promised a cancel. */
    w->cancel_job = NULL;
    job_cancelled_locked(job, done);
  } else {
    apply_result(job, r);
    job_done_locked(job, done);
  }
  if (!corio__list_empty(&w->jobs)) {
    /* The rest of a chunk: the worker stays busy, its next result is on the way. */
  } else if (w->kill_reason != KILL_NONE)
    w->state = W_STOPPING; /* being killed: never reused */
  else if (p->cfg.max_tasks_per_child && w->tasks >= p->cfg.max_tasks_per_child)
    retire_locked(p, w); /* it exits by itself; a replacement may start at once */
  else
    w->state = W_IDLE;
  dispatch_locked(p, done);
  pthread_mutex_unlock(&p->mu);
  corio_bytes_free(&r->bytes);
  corio__free(r->text);
}

/* Read what the worker sent (results, or EOF). Runs until the socket would block. */
static void on_worker_readable(pp_pool *p, pp_worker *w, corio__list *done)
{
  corio__pp_result_msg m;
  struct result r;
  ssize_t n;
  int fd;
  while (w->sock >= 0) {
    n = corio__pp_recv(w->sock, &m, sizeof(m), p->rxbuf, p->cfg.inline_max, &fd, MSG_DONTWAIT);
    if (n == -EAGAIN) return;
    if (n < 0 && n != -EPROTO) {
      /* EOF or a reset: the worker is gone; its exit report will settle its job. */
      pthread_mutex_lock(&p->mu);
      close_fd(w->sock);
      w->sock = -1;
      if (w->state == W_IDLE) w->state = W_STOPPING;
      pthread_mutex_unlock(&p->mu);
      return;
    }
    if (n < 0 || parse_result(p, w, &m, (size_t)n, &fd, &r) < 0) {
      if (fd >= 0) close(fd);
      pthread_mutex_lock(&p->mu);
      kill_worker_locked(p, w, KILL_PROTOCOL);
      pthread_mutex_unlock(&p->mu);
      return;
    }
    if (fd >= 0) close(fd);
    on_result(p, w, &r, done);
  }
}

/* ---- manager: the fork server's reports ---- */

static pp_worker *find_worker_locked(pp_pool *p, pid_t pid)
{
  corio__list *n;
  pp_worker *w;
  unsigned i;
  for (i = 0; i < p->max_workers; i++)
    if (p->slots[i] && p->slots[i]->forked && p->slots[i]->pid == pid) return p->slots[i];
  corio__list_foreach(n, &p->dying)
  {
    w = corio_container_of(n, pp_worker, link);
    if (w->forked && w->pid == pid) return w;
  }
  return NULL;
}

static void describe_death(corio_job *job, const pp_worker *w, int status)
{
  int sig;
  if (WIFSIGNALED(status)) {
    sig = WTERMSIG(status);
    corio_job_fail(job, PP_E_WORKER_DIED, "worker %d killed by signal %d (SIG%s: %s)%s",
                   (int)w->pid, sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                   sigdescr_np(sig) ? sigdescr_np(sig) : "unknown signal",
                   WCOREDUMP(status) ? ", core dumped" : "");
  } else if (WIFEXITED(status)) {
    corio_job_fail(job, PP_E_WORKER_DIED, "worker %d exited with status %d while running the job",
                   (int)w->pid, WEXITSTATUS(status));
  } else {
    corio_job_fail(job, PP_E_WORKER_DIED, "worker %d was lost (wait status 0x%x)", (int)w->pid,
                   (unsigned)status);
  }
}

/* The jobs sent to a worker that is gone and that never started there (the rest of a chunk
 * behind the job that was running, or everything sent to a worker whose fork failed). They did
 * not cause the death, so they run again elsewhere, first in line; unless no worker can ever run
 * them (the fork server died) or shutdown's deadline has passed (then they fail as the queue
 * did). A job whose cancel was asked for (it was the running one) ends cancelled. */
static void settle_unstarted_locked(pp_pool *p, pp_worker *w, corio__list *done)
{
  if (w->cancel_job) {
    corio__list_remove(&w->cancel_job->node);
    job_cancelled_locked(w->cancel_job, done);
    w->cancel_job = NULL;
  }
  if (p->broken)
    fail_list_locked(&w->jobs, done, PP_E_WORKER_DIED, p->broken_msg);
  else if (w->kill_reason == KILL_DEADLINE)
    fail_list_locked(&w->jobs, done, -ETIMEDOUT,
                     "the process pool's shutdown deadline passed before the job started");
  else
    requeue_locked(p, &w->jobs);
}

/* A worker is gone (@p status < 0: unknown, the fork server died): settle its job, free it. */
static void worker_gone_locked(pp_pool *p, pp_worker *w, int status, corio__list *done)
{
  corio_job *job = running_job(w);
  close_fd(w->sock);
  w->sock = -1;
  corio__pp_window_free(&w->win_in);
  corio__pp_window_free(&w->win_out);
  if (job) {
    corio__list_remove(&job->node);
    if (job == w->cancel_job) {
      w->cancel_job = NULL;
      job_cancelled_locked(job, done);
    } else if (w->kill_reason == KILL_CANCEL) {
      /* The job cancelled finished just before the kill, and this next one of its chunk had
       * started: it stopped halfway, through no fault of its own. */
      corio_job_fail(job, PP_E_WORKER_DIED,
                     "worker %d killed to cancel the job before this one in its chunk",
                     (int)w->pid);
      job_done_locked(job, done);
    } else {
      if (w->kill_reason == KILL_DEADLINE)
        corio_job_fail(job, -ETIMEDOUT,
                       "worker %d killed: the job was still running at the process pool's "
                       "shutdown deadline",
                       (int)w->pid);
      else if (w->kill_reason == KILL_PROTOCOL)
        corio_job_fail(job, -EPROTO, "worker %d killed: it broke the pool's protocol", (int)w->pid);
      else if (status < 0)
        corio_job_fail(job, PP_E_WORKER_DIED, "worker %d lost: %s", (int)w->pid, p->broken_msg);
      else
        describe_death(job, w, status);
      job_done_locked(job, done);
    }
  }
  settle_unstarted_locked(p, w, done);
  if (w->slot >= 0) {
    p->slots[w->slot] = NULL;
    p->nslots--;
  } else {
    corio__list_remove(&w->link);
  }
  corio__free(w);
}

static void on_exit_report(pp_pool *p, pid_t pid, int status, corio__list *done)
{
  pp_worker *w;
  pthread_mutex_lock(&p->mu);
  w = find_worker_locked(p, pid);
  pthread_mutex_unlock(&p->mu);
  if (!w) return;
  /* Everything the worker sent is in its socket by now: take a last result first. */
  on_worker_readable(p, w, done);
  pthread_mutex_lock(&p->mu);
  worker_gone_locked(p, w, status, done);
  dispatch_locked(p, done);
  pthread_mutex_unlock(&p->mu);
}

/* The worker not yet reported forked whose token is @p token: in its slot, or already retired
 * (its results may arrive before the SPAWNED report: they come through another socket). */
static pp_worker *find_unforked_locked(pp_pool *p, uint64_t token, int slot)
{
  corio__list *n;
  pp_worker *w;
  if (slot >= 0 && (unsigned)slot < p->max_workers) {
    w = p->slots[slot];
    if (w && !w->forked && (uint64_t)(uintptr_t)w == token) return w;
  }
  corio__list_foreach(n, &p->dying)
  {
    w = corio_container_of(n, pp_worker, link);
    if (!w->forked && (uint64_t)(uintptr_t)w == token) return w;
  }
  return NULL;
}

static void on_spawned(pp_pool *p, const corio__pp_ctl_msg *m)
{
  pp_worker *w;
  pthread_mutex_lock(&p->mu);
  w = find_unforked_locked(p, m->token, m->worker);
  if (w) {
    w->pid = m->pid;
    w->forked = true;
  }
  pthread_mutex_unlock(&p->mu);
}

static void on_spawn_failed(pp_pool *p, const corio__pp_ctl_msg *m, corio__list *done)
{
  char msg[160];
  pp_worker *w;
  pthread_mutex_lock(&p->mu);
  w = find_unforked_locked(p, m->token, m->worker);
  if (w) {
    /* The jobs sent to it never ran: they go back first in line (or end as their cancel or the
     * shutdown deadline says). */
    close_fd(w->sock);
    w->sock = -1;
    corio__pp_window_free(&w->win_in);
    corio__pp_window_free(&w->win_out);
    settle_unstarted_locked(p, w, done);
    if (w->slot >= 0) {
      p->slots[w->slot] = NULL;
      p->nslots--;
    } else {
      corio__list_remove(&w->link);
    }
    corio__free(w);
  }
  /* With no worker left to run them, the queued jobs would wait forever: fail them. A later
   * submit tries to start a worker again. */
  if (p->nslots == 0 && p->nqueued) {
    snprintf(msg, sizeof(msg), "cannot start a worker process: fork failed: %s",
             strerror(m->value));
    fail_queue_locked(p, done, m->value > 0 ? -m->value : -EAGAIN, msg);
  }
  /* Jobs given back go to an idle worker if there is one; no new fork from here: while forks
   * fail, that would fork again at every report. The next submit or result tries again. */
  dispatch_ex_locked(p, done, false);
  pthread_mutex_unlock(&p->mu);
}

/* The control socket hung up: the fork server died. Every worker dies with it (PDEATHSIG). */
static void on_server_death(pp_pool *p, corio__list *done)
{
  corio__list *n;
  int status = 0;
  pid_t r;
  do r = waitpid(p->server, &status, 0);
  while (r < 0 && errno == EINTR);
  pthread_mutex_lock(&p->mu);
  p->server = -1;
  close_fd(p->ctl);
  p->ctl = -1;
  ctl_out_clear(p);
  p->broken = PP_E_WORKER_DIED;
  if (r > 0 && WIFSIGNALED(status))
    snprintf(p->broken_msg, sizeof(p->broken_msg),
             "the process pool's fork server died (signal %d, SIG%s)", WTERMSIG(status),
             sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
  else
    snprintf(p->broken_msg, sizeof(p->broken_msg), "the process pool's fork server died");
  fail_queue_locked(p, done, PP_E_WORKER_DIED, p->broken_msg);
  /* Workers in their slots are settled by the manager once their sockets hang up. */
  while (!corio__list_empty(&p->dying)) {
    n = p->dying.next;
    worker_gone_locked(p, corio_container_of(n, pp_worker, link), -1, done);
  }
  pthread_mutex_unlock(&p->mu);
}

static void on_ctl_readable(pp_pool *p, corio__list *done)
{
  corio__pp_ctl_msg m;
  ssize_t n;
  int fd;
  for (;;) {
    n = corio__pp_recv(p->ctl, &m, sizeof(m), NULL, 0, &fd, MSG_DONTWAIT);
    if (n == -EAGAIN) return;
    if (n < 0 && n != -EPROTO) {
      on_server_death(p, done);
      return;
    }
    if (n < 0) continue;
    switch (m.type) {
    case CORIO__PP_SPAWNED:
      close_fd(fd);
      on_spawned(p, &m);
      break;
    case CORIO__PP_SPAWN_FAILED:
      close_fd(fd);
      on_spawn_failed(p, &m, done);
      break;
    case CORIO__PP_EXIT:
      close_fd(fd);
      on_exit_report(p, m.pid, m.value, done);
      break;
    default:
      close_fd(fd);
    }
  }
}

static void flush_ctl(pp_pool *p)
{
  int rc;
  pthread_mutex_lock(&p->mu);
  ctl_rec r;
  while (p->ctl >= 0 && p->ctl_out.len >= sizeof(r)) {
    memcpy(&r, p->ctl_out.data, sizeof(r));
    rc = corio__pp_send(p->ctl, &r.m, sizeof(r.m), NULL, 0, r.fd, MSG_DONTWAIT);
    if (rc == -EAGAIN) break;
    close_fd(r.fd);
    corio__buf_consume(&p->ctl_out, sizeof(r));
  }
  pthread_mutex_unlock(&p->mu);
}

/* ---- manager: the loop ---- */

/* Under the mutex: retire idle workers once the pool is closing and nothing is queued, and tell
 * whether everything is over. */
static bool wind_down_locked(pp_pool *p)
{
  unsigned i;
  if (!p->closing || p->nqueued) return false;
  for (i = 0; i < p->max_workers; i++)
    if (p->slots[i] && p->slots[i]->state == W_IDLE) retire_locked(p, p->slots[i]);
  return p->nslots == 0 && corio__list_empty(&p->dying);
}

static void *manager_main(void *arg)
{
  pp_pool *p = arg;
  corio__list done;
  struct pollfd *pfd = p->pfd;
  uint64_t cnt;
  unsigned i;
  size_t nfd, k;
  pid_t server;
  int status;
  bool over;

  /* Named by itself: one prctl, where naming it from the creating thread writes
   * /proc/self/task/<tid>/comm (three system calls on a new pool's path). */
  pthread_setname_np(pthread_self(), "corio-procpool");
  corio__list_init(&done);
  for (;;) {
    pthread_mutex_lock(&p->mu);
    if (p->broken) /* lost workers have no exit report: settle them when their socket closes */
      for (i = 0; i < p->max_workers; i++)
        if (p->slots[i] && p->slots[i]->sock < 0) worker_gone_locked(p, p->slots[i], -1, &done);
    over = wind_down_locked(p);
    nfd = 0;
    pfd[nfd].fd = p->evfd;
    pfd[nfd].events = POLLIN;
    p->pfd_worker[nfd++] = NULL;
    if (p->ctl >= 0) {
      pfd[nfd].fd = p->ctl;
      pfd[nfd].events = POLLIN | (p->ctl_out.len ? POLLOUT : 0);
      p->pfd_worker[nfd++] = NULL;
    }
    for (i = 0; i < p->max_workers; i++)
      if (p->slots[i] && p->slots[i]->sock >= 0) {
        pfd[nfd].fd = p->slots[i]->sock;
        pfd[nfd].events = POLLIN;
        p->pfd_worker[nfd++] = p->slots[i];
      }
    pthread_mutex_unlock(&p->mu);
    finish_list(&done);
    if (over) break;
    if (poll(pfd, nfd, -1) < 0) continue; /* EINTR */
    if (pfd[0].revents) {
      ssize_t r = read(p->evfd, &cnt, sizeof(cnt));
      (void)r;
    }
    /* Worker sockets before the control socket: an exit report frees a worker struct that a
     * later entry of this array would still point to. */
    for (k = 1; k < nfd; k++)
      if (p->pfd_worker[k] && pfd[k].revents) on_worker_readable(p, p->pfd_worker[k], &done);
    finish_list(&done);
    if (nfd > 1 && !p->pfd_worker[1] && pfd[1].fd == p->ctl) {
      if (pfd[1].revents & POLLOUT) flush_ctl(p);
      if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) on_ctl_readable(p, &done);
      finish_list(&done);
    }
  }
  /* Every worker is reaped: close the control socket, and the fork server exits. */
  pthread_mutex_lock(&p->mu);
  server = p->server;
  p->server = -1;
  close_fd(p->ctl);
  p->ctl = -1;
  pthread_mutex_unlock(&p->mu);
  if (server > 0)
    while (waitpid(server, &status, 0) < 0 && errno == EINTR) {
    }
  pthread_mutex_lock(&p->mu);
  p->finished = true;
  pthread_cond_broadcast(&p->cond);
  pthread_mutex_unlock(&p->mu);
  if (p->free_on_exit) pool_free(p);
  return NULL;
}

/* ---- creation ---- */

static unsigned cpu_count(void)
{
  cpu_set_t set;
  long n;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
    return (unsigned)CPU_COUNT(&set);
  n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1;
}

/* The largest payload that one SEQPACKET message can carry: the kernel refuses a datagram
 * bigger than the socket's send buffer (less 32 bytes), whatever memfd_threshold says. */
static size_t inline_limit(int sock)
{
  int sndbuf = 0;
  socklen_t sl = sizeof(sndbuf);
  if (getsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl) < 0 || sndbuf < 8192) return 4096;
  return (size_t)sndbuf - 32 - 256; /* header and slack */
}

int corio_process_pool_new(corio_executor **out, const corio_process_pool_opts *opts)
{
  corio_process_pool_opts o;
  pp_worker *w0 = NULL;
  pthread_condattr_t ca;
  sigset_t all, old;
  pp_pool *p;
  int sv[2] = {-1, -1}, rc;
  bool main_thread;
  pid_t parent = getpid(), pid;

  if (!out) return -EINVAL;
  *out = NULL;
  memset(&o, 0, sizeof(o));
  if (opts) o = *opts;
  if (o.max_workers == 0) o.max_workers = cpu_count();
  if (o.max_workers > 4096) return -EINVAL;
  p = corio__calloc(1, sizeof(*p));
  if (!p) return -ENOMEM;
  p->base.vt = &pp_vt;
  p->max_workers = o.max_workers;
  p->cfg.initializer = o.initializer;
  p->cfg.max_tasks_per_child = o.max_tasks_per_child;
  p->cfg.inline_max = o.memfd_threshold ? o.memfd_threshold : PP_DEFAULT_THRESHOLD;
  p->cfg.fail_forks = corio__procpool_fail_forks;
  p->ctl = p->evfd = -1;
  p->server = -1;
  corio__list_init(&p->queue);
  corio__list_init(&p->dying);
  p->slots = corio__calloc(o.max_workers, sizeof(*p->slots));
  p->pfd = corio__calloc(o.max_workers + 2, sizeof(*p->pfd));
  p->pfd_worker = corio__calloc(o.max_workers + 2, sizeof(*p->pfd_worker));
  if (!p->slots || !p->pfd || !p->pfd_worker) {
    rc = -ENOMEM;
    goto fail;
  }
  p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->evfd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    rc = -errno;
    goto fail;
  }
  p->cfg.msg_max = inline_limit(sv[0]);
  if (p->cfg.inline_max > p->cfg.msg_max) p->cfg.inline_max = p->cfg.msg_max;
  p->rxbuf = corio__malloc(p->cfg.inline_max);
  if (!p->rxbuf) {
    rc = -ENOMEM;
    goto fail;
  }
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&p->mu, NULL);

  /* The first worker starts with the pool, so that the first job does not wait for two forks
   * in a row: the fork server forks it first thing (before its own setup), on a socket made
   * here, and the job can be sent into that socket at once. An idle worker costs a process
   * and nothing else. Not when the test hook fails forks: those tests count from the first
   * submit. If it cannot be made, the first submit starts a worker as usual. */
  p->cfg.first_sock = -1;
  if (!p->cfg.fail_forks) {
    w0 = new_worker_locked(p, &p->cfg.first_sock, &rc);
    if (w0) p->cfg.first_token = (uint64_t)(uintptr_t)w0;
  }
  /* Unwritten stdio output would be written again by every child that calls exit(). */
  fflush(stdout);
  fflush(stderr);
  /* PR_SET_PDEATHSIG fires when the forking THREAD ends, not the process: only safe to ask for
   * when the pool is made by the main thread. Otherwise EOF on the control socket alone ends
   * the fork server (which it does in every case when the process dies). */
  main_thread = gettid() == parent;
  pid = fork();
  if (pid == 0) {
    if (main_thread) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
    }
    corio__pp_fork_server(sv[1], &p->cfg); /* closes every other close-on-exec descriptor */
  }
  rc = -errno;
  close(sv[1]);
  sv[1] = -1;
  close_fd(p->cfg.first_sock); /* the fork server has it */
  p->cfg.first_sock = -1;
  if (pid < 0) goto fail_sync;
  p->server = pid;
  p->ctl = sv[0];
  sv[0] = -1;

  /* The manager must not take the program's signals (a loop's signalfd relies on them being
   * blocked in every thread). */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  rc = -pthread_create(&p->manager, NULL, manager_main, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc < 0) {
    close_fd(p->ctl); /* the fork server sees EOF and exits */
    p->ctl = -1;
    while (waitpid(p->server, NULL, 0) < 0 && errno == EINTR) {
    }
    goto fail_sync;
  }
  *out = &p->base;
  return 0;

fail_sync:
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cond);
  if (w0) {
    close_fd(w0->sock);
    corio__free(w0);
  }
fail:
  if (sv[0] >= 0) close(sv[0]);
  if (sv[1] >= 0) close(sv[1]);
  if (p->evfd >= 0) close_fd(p->evfd);
  corio__free(p->rxbuf);
  corio__free(p->slots);
  corio__free(p->pfd);
  corio__free(p->pfd_worker);
  corio__free(p);
  return rc;
}

pid_t corio__process_pool_server_pid(corio_executor *ex)
{
  pp_pool *p;
  pid_t pid;
  if (!ex || ex->vt != &pp_vt) return -1;
  p = pool_of(ex);
  pthread_mutex_lock(&p->mu);
  pid = p->server;
  pthread_mutex_unlock(&p->mu);
  return pid;
}
