/*
 * What both pools share: jobs and their results, submit/map/shutdown dispatch through the
 * vtable, and the blocking helpers for threads.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "executor_impl.h"
#include "loop_impl.h"

/* A job and its future share one allocation: submit costs one malloc (plus the input copy for
 * submit_bytes). The future outlives the job (the caller keeps it after the pool is done), so the
 * block is freed by the future's destroy hook, when its last reference goes; the job holds one of
 * those references until it is finished. The future's cancel hook asks the pool to take a pending
 * job out of its queue.
 *
 * A job whose future belongs to a loop (corio_run_in_executor) is completed on the loop's thread:
 * a worker that finishes it posts the whole job through the loop's MPSC inbox (job->done, one
 * post per job as a plain cross-thread completion would cost, and the inbox writes the eventfd
 * only when the loop sleeps), and the loop sets the value, runs the callbacks, releases the job
 * and drops its reference. So nothing of a loop's future (its destruction, the exception handler
 * for an error nobody read, the value's destructor) ever runs in a worker.
 *
 * The block is aligned to a cache line by hand (the allocator promises 16 bytes), so that the
 * future's lines are the submitter's alone and the job's lines are grouped by writer (see
 * struct corio_job). */
struct job_block {
  corio_future fut;
  void *raw; /* what the allocator returned */
  corio_job job;
};

#define BLOCK_ALIGN 64
enum { JOB_CANCELLED = 100 }; /* job->kind: complete as cancelled (executor.c only) */

/* A pool without a cancel hook cannot take a job back: the request is only recorded (a future
 * cancelled under the pool's feet would let the loop free the job while the pool holds it). */
static int job_cancel_op(corio_future *f)
{
  corio_job *job = &corio_container_of(f, struct job_block, fut)->job;
  atomic_store_explicit(&job->cancelled, 1, memory_order_release);
  if (job->deferred) { /* still the loop's (we are on its thread): see submit */
    job->deferred = false;
    corio__list_remove(&job->node);
    job->loop->executor_ndeferred--;
    corio__job_finish_cancelled(job);
    return 1;
  }
  if (job->ex && job->ex->vt->cancel) return job->ex->vt->cancel(job->ex, job);
  return 0;
}

static void job_destroy_op(corio_future *f)
{
  corio__free(corio_container_of(f, struct job_block, fut)->raw);
}

static const corio_future_ops job_future_ops = {job_cancel_op, job_destroy_op, "executor job"};

corio_job *corio__job_new(corio_loop *loop, corio_job_fn fn, void *arg, const void *data,
                          size_t len)
{
  void *raw = corio__malloc(sizeof(struct job_block) + BLOCK_ALIGN - 1);
  struct job_block *b;
  corio_job *job;
  if (!raw) return NULL;
  b = (struct job_block *)(((uintptr_t)raw + BLOCK_ALIGN - 1) & ~(uintptr_t)(BLOCK_ALIGN - 1));
  b->raw = raw;
  job = &b->job;
  memset(job, 0, sizeof(*job));
  if (data) {
    job->input = corio_bytes_alloc(len);
    if (!job->input.data && len) {
      corio__free(raw);
      return NULL;
    }
    if (len) memcpy(job->input.data, data, len);
  }
  corio_future_init(&b->fut, loop, &job_future_ops);
  job->fut = &b->fut;
  job->loop = loop;
  job->fn = fn;
  job->arg = arg;
  corio__list_init(&job->node);
  return job;
}

void corio__job_clear_result(corio_job *job)
{
  if (job->kind == CORIO__JOB_PTR && job->dtor && job->p) job->dtor(job->p);
  corio_bytes_free(&job->out);
  corio__free(job->errmsg);
  job->errmsg = NULL;
  job->kind = CORIO__JOB_NONE;
  job->i = 0;
  job->p = NULL;
  job->dtor = NULL;
  job->err = 0;
}

/* What a job owns besides its future, moved out of it before the future is completed (a
 * callback may drop the last other reference; the job's own is dropped last). */
struct leftovers {
  corio_bytes input, out;
  char *errmsg;
  void *p;
  corio_dtor dtor;
  int64_t i;
  int kind, err;
};

static void take_leftovers(corio_job *job, struct leftovers *l)
{
  l->input = job->input;
  l->out = job->out;
  l->errmsg = job->errmsg;
  l->p = job->p;
  l->dtor = job->dtor;
  l->i = job->i;
  l->kind = job->kind;
  l->err = job->err;
  /* job->input is left as it is (nothing reads a finished job's input): its cache line is
   * shared with the worker that read it, and a write here would wait for the worker's copy to
   * be invalidated (the next atomic operation stalls on it). */
  memset(&job->out, 0, sizeof(job->out));
  job->errmsg = NULL;
  job->p = NULL;
  job->kind = CORIO__JOB_NONE;
}

static void release_leftovers(struct leftovers *l)
{
  if (l->kind == CORIO__JOB_PTR && l->dtor && l->p) l->dtor(l->p); /* not delivered */
  corio_bytes_free(&l->out);
  corio_bytes_free(&l->input);
  corio__free(l->errmsg);
}

/* Complete the future from the job's result in this thread, then release the job. */
static void complete_here(corio_job *job)
{
  corio_future *f = job->fut;
  struct leftovers l;
  take_leftovers(job, &l);
  switch (l.kind) {
  case CORIO__JOB_BYTES:
    if (corio_future_set_result_bytes(f, l.out) == 0) memset(&l.out, 0, sizeof(l.out));
    break;
  case CORIO__JOB_PTR:
    if (corio_future_set_result_ptr(f, l.p, l.dtor) == 0) l.p = NULL;
    break;
  case CORIO__JOB_ERR:
    corio_future_set_error_msg(f, l.err, l.errmsg);
    break;
  case JOB_CANCELLED:
    corio_future_set_cancelled(f);
    break;
  default:
    corio_future_set_result(f, l.i);
  }
  release_leftovers(&l);
  corio_future_unref(f);
}

/* On the loop's thread: the job stops counting in executor_jobs, then completes. */
static void handoff_run(struct corio__mpsc_node *node)
{
  corio_job *job = corio_container_of(node, corio_job, done);
  job->loop->executor_jobs--;
  complete_here(job);
}

/*
 * Outboxes: how a worker hands finished jobs to a loop. Posting each job through the inbox
 * would cost an atomic operation on the inbox's line per job and leave the loop a linked list
 * to walk, one cache miss after the other (each node was last written on the worker's CPU; the
 * walk was the largest cost of 1,000 jobs in flight). Instead a thread finishing a loop's job
 * appends it to its current outbox, an array posted to the loop as one inbox node, as long as
 * the loop has not taken the outbox yet: the post is paid once per outbox, not per job, and the
 * loop reads an array of job pointers, prefetching the jobs ahead of the one it completes.
 *
 * No completion waits for a batch: a job appended to an outbox whose node is in the inbox is
 * seen by the loop when it runs that node (which it does before it can sleep again), and once
 * the loop has closed an outbox, the next job goes into a new one, posted at once. The append
 * and the close race on one word, `n`: the worker writes the slot, then moves n from k to k+1
 * (release); the loop sets the CLOSED bit (acquire) and takes the slots below the count it
 * found. A worker that loses the race starts a new outbox.
 *
 * Ownership: the loop and the thread that fills the outbox each hold one of its two `refs`; the
 * loop drops its own after completing the jobs, the thread when it moves on to a new outbox
 * (or exits: a thread-specific destructor). The loop pointer is only compared, never followed,
 * once the outbox is closed: the loop may be gone.
 */
#define OUTBOX_CAP    60
#define OUTBOX_CLOSED 0x80000000u

struct outbox {
  struct corio__mpsc_node node;
  corio_loop *loop;
  _Atomic uint32_t n; /* slots filled, | OUTBOX_CLOSED once the loop took them */
  _Atomic uint32_t refs;
  corio_job *jobs[OUTBOX_CAP];
};

static pthread_key_t outbox_key;
static pthread_once_t outbox_once = PTHREAD_ONCE_INIT;
static bool outbox_key_ok;
static __thread struct outbox *outbox_cur; /* the one this thread appends to */

static void outbox_release(struct outbox *ob)
{
  if (atomic_fetch_sub_explicit(&ob->refs, 1, memory_order_acq_rel) == 1) corio__free(ob);
}

static void outbox_thread_exit(void *arg)
{
  (void)arg;
  if (outbox_cur) outbox_release(outbox_cur);
  outbox_cur = NULL;
}

static void outbox_key_init(void)
{
  outbox_key_ok = pthread_key_create(&outbox_key, outbox_thread_exit) == 0;
}

/* Ask for a finished job's lines in exclusive state: the worker's (completing the job writes
 * it) and the submitter's, which the worker read: the block is freed once the future is done
 * and, the allocator being LIFO, soon reused by a submit, whose writes would otherwise each wait
 * for the worker's copy to be invalidated, one job after the other. */
static inline void prefetch_job(corio_job *job)
{
  corio__prefetch_write(&job->done);
  corio__prefetch_write(job);
}

/* On the loop's thread. */
static void outbox_run(struct corio__mpsc_node *node)
{
  struct outbox *ob = corio_container_of(node, struct outbox, node);
  corio_loop *loop = ob->loop;
  uint32_t n = atomic_fetch_or_explicit(&ob->n, OUTBOX_CLOSED, memory_order_acquire), i;
  corio_job *jobs[OUTBOX_CAP];
  /* Copied out first: the outbox may be freed by its thread once our reference is gone, and
   * completing a job runs no user code yet (callbacks are scheduled), but keep it simple. */
  memcpy(jobs, ob->jobs, n * sizeof(jobs[0]));
  outbox_release(ob);
  for (i = 0; i < n && i < 4; i++) prefetch_job(jobs[i]);
  for (i = 0; i < n; i++) {
    if (i + 4 < n) prefetch_job(jobs[i + 4]);
    loop->executor_jobs--;
    complete_here(jobs[i]);
  }
}

/* Off the loop's thread: append @p job to this thread's outbox for @p loop, or post a new one.
 * false: no memory for an outbox (the caller posts the job alone). */
static bool outbox_append(corio_loop *loop, corio_job *job)
{
  struct outbox *ob = outbox_cur;
  uint32_t k;
  if (ob && ob->loop == loop) {
    k = atomic_load_explicit(&ob->n, memory_order_relaxed);
    if (!(k & OUTBOX_CLOSED) && k < OUTBOX_CAP) {
      ob->jobs[k] = job;
      if (atomic_compare_exchange_strong_explicit(&ob->n, &k, k + 1, memory_order_release,
                                                  memory_order_relaxed))
        return true;
    }
  }
  pthread_once(&outbox_once, outbox_key_init);
  if (!outbox_key_ok) return false;
  ob = corio__malloc(sizeof(*ob));
  if (!ob) return false;
  ob->node.run = outbox_run;
  ob->loop = loop;
  ob->jobs[0] = job;
  atomic_init(&ob->n, 1);
  atomic_init(&ob->refs, 2);
  if (outbox_cur) {
    outbox_release(outbox_cur);
  } else {
    pthread_setspecific(outbox_key, (void *)1); /* only so that the destructor runs */
  }
  outbox_cur = ob;
  if (corio__loop_post(loop, &ob->node) < 0) /* not reached: the job keeps the loop open */
    fprintf(stderr, "corio: executor job completed after its loop closed\n");
  return true;
}

/* Every finished job ends here. A loop's job counts in loop->executor_jobs (corio_loop_close
 * refuses while it is nonzero) until it completes on the loop's thread: a worker hands it over
 * through an outbox (or, without memory for one, alone through the inbox) and the count drops
 * there, just before the future completes. Only the loop's thread touches the count, so
 * neither a submit nor a hand-over pays an atomic operation on it; and since close cannot
 * begin while the job counts, the post never finds the loop closing (corio__loop_post's
 * posters count covers its eventfd write). */
static void complete(corio_job *job)
{
  corio_loop *loop = job->loop;
  if (!loop) {
    complete_here(job);
  } else if (corio__loop_on_thread(loop)) {
    loop->executor_jobs--;
    complete_here(job);
  } else if (!outbox_append(loop, job)) {
    job->done.run = handoff_run;
    if (corio__loop_post(loop, &job->done) < 0) /* not reached: the job keeps the loop open */
      fprintf(stderr, "corio: executor job completed after its loop closed\n");
  }
}

void corio__job_finish(corio_job *job)
{
  complete(job);
}

void corio__job_finish_error(corio_job *job, int err, const char *msg)
{
  char *copy = NULL;
  size_t n;
  if (msg) { /* before the clear: msg may be the job's own text */
    n = strlen(msg) + 1;
    copy = corio__malloc(n); /* on ENOMEM the error stands without its text */
    if (copy) memcpy(copy, msg, n);
  }
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_ERR;
  job->err = err < 0 ? err : -EINVAL;
  job->errmsg = copy;
  complete(job);
}

void corio__job_finish_cancelled(corio_job *job)
{
  corio__job_clear_result(job);
  job->kind = JOB_CANCELLED;
  complete(job);
}

/* A job never submitted (map's ENOMEM path; loop-less). */
static void job_discard(corio_job *job)
{
  struct leftovers l;
  take_leftovers(job, &l);
  release_leftovers(&l);
  corio_future_unref(job->fut);
}

/* ---- inside a job ---- */

void *corio_job_arg(corio_job *job)
{
  return job ? job->arg : NULL;
}

const corio_bytes *corio_job_input(corio_job *job)
{
  return job ? &job->input : NULL;
}

int corio_job_return(corio_job *job, int64_t value)
{
  if (!job) return -EINVAL;
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_INT;
  job->i = value;
  return 0;
}

int corio_job_return_bytes(corio_job *job, const void *data, size_t len)
{
  corio_bytes b;
  if (!job || (!data && len)) return -EINVAL;
  b = corio_bytes_alloc(len);
  if (!b.data && len) return -ENOMEM;
  if (len) memcpy(b.data, data, len);
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_BYTES;
  job->out = b;
  return 0;
}

int corio_job_return_ptr(corio_job *job, void *p, corio_dtor dtor)
{
  if (!job) return -EINVAL;
  if (job->in_process) return -ENOTSUP;
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_PTR;
  job->p = p;
  job->dtor = dtor;
  return 0;
}

int corio_job_fail(corio_job *job, int err, const char *fmt, ...)
{
  va_list ap;
  char buf[1024];
  size_t n;
  if (!job) return -EINVAL;
  if (err >= 0) err = -EINVAL;
  corio__job_clear_result(job);
  job->kind = CORIO__JOB_ERR;
  job->err = err;
  if (fmt) {
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    n = strlen(buf) + 1;
    job->errmsg = corio__malloc(n);
    if (job->errmsg) memcpy(job->errmsg, buf, n);
  }
  return 0;
}

int corio_job_cancelled(const corio_job *job)
{
  return job && atomic_load_explicit(&((corio_job *)job)->cancelled, memory_order_acquire);
}

int corio_job_worker(const corio_job *job)
{
  return job ? job->worker : -1;
}

/* ---- dispatch ---- */

static corio_future *submit(corio_executor *ex, corio_loop *loop, corio_job_fn fn, void *arg,
                            const void *data, size_t len)
{
  corio_job *job;
  corio_future *f;
  int rc;
  if (!ex || !fn || (!data && len)) return corio__future_failed(loop, -EINVAL);
  if (atomic_load_explicit(&ex->closed, memory_order_acquire))
    return corio__future_failed(loop, CORIO_E_CLOSED);
  job = corio__job_new(loop, fn, arg, data, len);
  if (!job) return NULL;
  job->ex = ex;
  f = corio_future_ref(job->fut);
  if (loop) loop->executor_jobs++; /* on the loop's thread: run_in_executor checked */
  if (loop && ex == loop->default_executor && ex->vt->submit_list) {
    /* The loop's own pool: the job waits for the end of the current callback pass (see
     * executor_deferred in loop_impl.h; flush_deferred below). Only this pool, whose life the
     * loop controls: a user's pool may be shut down or freed by another thread meanwhile. */
    job->deferred = true;
    corio__list_insert_tail(&loop->executor_deferred, &job->node);
    loop->executor_ndeferred++;
    return f;
  }
  rc = ex->vt->submit(ex, job);
  if (rc < 0) corio__job_finish_error(job, rc, NULL);
  return f;
}

corio_future *corio_executor_submit(corio_executor *ex, corio_job_fn fn, void *arg)
{
  return submit(ex, NULL, fn, arg, NULL, 0);
}

corio_future *corio_executor_submit_bytes(corio_executor *ex, corio_job_fn fn, const void *data,
                                          size_t len)
{
  return submit(ex, NULL, fn, NULL, data ? data : "", data ? len : 0);
}

static void default_executor_free(void *ex)
{
  corio_executor_free(ex);
}

/* The loop's thread, about to sleep with jobs in flight: is a worker of its default pool awake
 * on another CPU (then the next completion may be a few microseconds away, and waiting for it
 * without sleeping saves the loop's wakeup; on the loop's own CPU it would only wait for us)? */
static bool default_pool_awake(corio_loop *loop)
{
  int cpu = corio__thread_pool_spin_cpu(loop->default_executor);
  return cpu >= 0 && cpu != sched_getcpu();
}

/* The loop's thread: hand the deferred jobs to the default pool in one submit_list (which, on
 * failure, completes them all with the error). */
static void flush_deferred(corio_loop *loop)
{
  corio_executor *ex = loop->default_executor;
  corio__list jobs, *n;
  size_t count = loop->executor_ndeferred;
  corio__list_foreach(n, &loop->executor_deferred) corio_container_of(n, corio_job, node)
      ->deferred = false;
  corio__list_move_all(&jobs, &loop->executor_deferred);
  loop->executor_ndeferred = 0;
  ex->vt->submit_list(ex, &jobs, count);
}

corio_future *corio_run_in_executor(corio_loop *loop, corio_executor *ex, corio_job_fn fn,
                                    void *arg)
{
  corio_executor *dflt;
  int rc;
  if (!loop) return corio__future_failed(NULL, -EINVAL);
  /* A loop's futures, and its default pool (created here without a lock), are its thread's. The
   * error goes on a loop-less future: posting it to the loop from here would be the misuse. */
  if (!corio__loop_on_thread(loop)) return corio__future_failed(NULL, CORIO_E_WRONG_THREAD);
  if (!fn) return corio__future_failed(loop, -EINVAL);
  if (!ex) {
    if (!loop->default_executor) {
      rc = corio_thread_pool_new(&dflt, NULL);
      if (rc == -ENOMEM) return NULL;
      if (rc < 0) return corio__future_failed(loop, rc);
      loop->default_executor = dflt;
      loop->default_executor_free = default_executor_free;
      loop->executor_flush = flush_deferred;
      loop->executor_spin_ok = default_pool_awake;
    }
    ex = loop->default_executor;
  }
  return submit(ex, loop, fn, arg, NULL, 0);
}

/* Chunk ids only need to differ between neighbours in a queue; a process-wide counter makes two
 * maps queued back to back distinct (0 means "no chunk"). */
static uint32_t next_chunk_id(void)
{
  static _Atomic uint32_t seq;
  uint32_t id;
  do id = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) + 1;
  while (id == 0);
  return id;
}

int corio_executor_map(corio_executor *ex, corio_job_fn fn, const corio_bytes *inputs, size_t n,
                       size_t chunksize, corio_future **out)
{
  corio__list jobs, *node;
  corio_job *job;
  uint32_t chunk = 0;
  size_t i;
  int rc;
  if (!ex || !fn || (n && (!inputs || !out))) return -EINVAL;
  for (i = 0; i < n; i++)
    if (!inputs[i].data && inputs[i].len) return -EINVAL;
  if (atomic_load_explicit(&ex->closed, memory_order_acquire)) return CORIO_E_CLOSED;
  if (n == 0) return 0;
  if (chunksize == 0) chunksize = 1;
  corio__list_init(&jobs);
  /* Everything is allocated before anything is queued, so that ENOMEM submits nothing. */
  for (i = 0; i < n; i++) {
    job = corio__job_new(NULL, fn, NULL, inputs[i].data ? (const void *)inputs[i].data : "",
                         inputs[i].len);
    if (!job) goto nomem;
    job->ex = ex;
    if (chunksize > 1) {
      if (i % chunksize == 0) chunk = next_chunk_id();
      job->chunk = chunk;
    }
    corio__list_insert_tail(&jobs, &job->node);
    out[i] = corio_future_ref(job->fut);
  }
  if (ex->vt->submit_list) {
    rc = ex->vt->submit_list(ex, &jobs, n);
    if (rc < 0) {
      for (i = 0; i < n; i++) {
        corio_future_unref(out[i]);
        out[i] = NULL;
      }
    }
    return rc < 0 ? rc : 0;
  }
  while (!corio__list_empty(&jobs)) {
    node = jobs.next;
    corio__list_remove(node);
    job = corio_container_of(node, corio_job, node);
    rc = ex->vt->submit(ex, job);
    if (rc < 0) corio__job_finish_error(job, rc, NULL);
  }
  return 0;
nomem:
  while (!corio__list_empty(&jobs)) {
    node = jobs.next;
    corio__list_remove(node);
    job_discard(corio_container_of(node, corio_job, node));
  }
  while (i-- > 0) {
    corio_future_unref(out[i]);
    out[i] = NULL;
  }
  return -ENOMEM;
}

/* ---- argument tuples ---- */

#define ARGS_HDR 8 /* uint32 nargs, uint32 0 */

int corio_args_pack(const corio_bytes *args, size_t nargs, corio_bytes *out)
{
  size_t total, i, off;
  uint32_t hdr[2];
  uint64_t len;
  if (!out || (nargs && !args) || nargs > UINT32_MAX / 8) return -EINVAL;
  total = ARGS_HDR + nargs * 8;
  for (i = 0; i < nargs; i++) {
    if (!args[i].data && args[i].len) return -EINVAL;
    if (args[i].len > SIZE_MAX - total) return -EINVAL;
    total += args[i].len;
  }
  *out = corio_bytes_alloc(total);
  if (!out->data) return -ENOMEM;
  hdr[0] = (uint32_t)nargs;
  hdr[1] = 0;
  memcpy(out->data, hdr, sizeof(hdr));
  off = ARGS_HDR + nargs * 8;
  for (i = 0; i < nargs; i++) {
    len = args[i].len;
    memcpy((uint8_t *)out->data + ARGS_HDR + i * 8, &len, 8);
    if (args[i].len) memcpy((uint8_t *)out->data + off, args[i].data, args[i].len);
    off += args[i].len;
  }
  return 0;
}

/* Check the packed layout of @p in; @return nargs or -EPROTO. */
static int args_check(const corio_bytes *in)
{
  uint32_t hdr[2];
  uint64_t len, total;
  size_t i;
  if (!in->data || in->len < ARGS_HDR) return -EPROTO;
  memcpy(hdr, in->data, sizeof(hdr));
  if (hdr[1] != 0 || hdr[0] > (in->len - ARGS_HDR) / 8) return -EPROTO;
  total = ARGS_HDR + (uint64_t)hdr[0] * 8;
  for (i = 0; i < hdr[0]; i++) {
    memcpy(&len, (const uint8_t *)in->data + ARGS_HDR + i * 8, 8);
    if (len > in->len - total) return -EPROTO;
    total += len;
  }
  return total == in->len && hdr[0] <= INT32_MAX ? (int)hdr[0] : -EPROTO;
}

int corio_job_nargs(corio_job *job)
{
  return job ? args_check(&job->input) : -EINVAL;
}

int corio_job_argn(corio_job *job, size_t k, corio_bytes *out)
{
  uint64_t len, off;
  size_t i;
  int n;
  if (!job || !out) return -EINVAL;
  n = args_check(&job->input);
  if (n < 0) return n;
  if (k >= (size_t)n) return -ERANGE;
  off = ARGS_HDR + (uint64_t)n * 8;
  for (i = 0; i < k; i++) {
    memcpy(&len, (const uint8_t *)job->input.data + ARGS_HDR + i * 8, 8);
    off += len;
  }
  memcpy(&len, (const uint8_t *)job->input.data + ARGS_HDR + k * 8, 8);
  out->data = (uint8_t *)job->input.data + off;
  out->len = (size_t)len;
  return 0;
}

int corio_executor_starmap(corio_executor *ex, corio_job_fn fn, const corio_bytes *args,
                           size_t nargs, size_t n, size_t chunksize, corio_future **out)
{
  corio_bytes *packed;
  size_t i;
  int rc = 0;
  if (!ex || !fn || (n && (!out || (nargs && !args)))) return -EINVAL;
  if (n == 0) return corio_executor_map(ex, fn, NULL, 0, chunksize, out);
  packed = corio__calloc(n, sizeof(*packed));
  if (!packed) return -ENOMEM;
  for (i = 0; i < n && rc == 0; i++) rc = corio_args_pack(args + i * nargs, nargs, &packed[i]);
  /* map copies each input: the packed tuples are ours to free either way */
  if (rc == 0) rc = corio_executor_map(ex, fn, packed, n, chunksize, out);
  for (i = 0; i < n; i++) corio_bytes_free(&packed[i]);
  corio__free(packed);
  return rc;
}

int corio_executor_shutdown(corio_executor *ex, int wait, int cancel_futures, double timeout_s)
{
  if (!ex) return -EINVAL;
  atomic_store_explicit(&ex->closed, 1, memory_order_release);
  return ex->vt->shutdown(ex, wait, cancel_futures, timeout_s);
}

void corio_executor_free(corio_executor *ex)
{
  if (!ex) return;
  corio_executor_shutdown(ex, 1, 0, -1);
  ex->vt->destroy(ex);
}

/* ---- blocking helpers for threads ---- */

static double time_left(int64_t deadline)
{
  int64_t left = deadline - corio__now_ns();
  return left > 0 ? (double)left / 1e9 : 0;
}

int corio_futures_wait_all(corio_future *const *futs, size_t n, double timeout_s)
{
  int64_t deadline = timeout_s >= 0 ? corio__now_ns() + corio__seconds_to_ns(timeout_s) : 0;
  size_t i;
  int rc;
  if (!futs && n) return -EINVAL;
  for (i = 0; i < n; i++) {
    rc = corio_future_wait(futs[i], timeout_s >= 0 ? time_left(deadline) : -1);
    if (rc < 0) return rc;
  }
  return 0;
}

static int first_done(corio_future *const *futs, size_t n)
{
  size_t i;
  for (i = 0; i < n; i++)
    if (corio_future_done(futs[i])) return (int)i;
  return -1;
}

/* wait_any over loop-less futures: one temporary loop-less future that the first done callback
 * completes, and one sleep on it. Every registered callback holds a reference to the waiter,
 * dropped by the callback itself or by us when we take it back: a callback that already left its
 * future's list may still be running in the completing thread after we return, so the waiter
 * cannot live on our stack. Cost: n callback adds and removes, no polling. The rejected
 * alternative, futex_waitv on the futures' state words, caps n at 128. */
static void any_done(corio_future *f, void *arg)
{
  corio_future *w = arg;
  (void)f;
  corio_future_set_result(w, 0);
  corio_future_unref(w);
}

static int wait_any_loopless(corio_future *const *futs, size_t n, double timeout_s)
{
  corio_future *w = corio_future_new(NULL);
  size_t i, added;
  int rc = 0, idx;
  if (!w) return -ENOMEM;
  for (added = 0; added < n; added++) {
    corio_future_ref(w);
    rc = corio_future_add_done_callback(futs[added], any_done, w);
    if (rc < 0) {
      corio_future_unref(w);
      break;
    }
    if (corio_future_done(w)) {
      added++; /* done already: it ran at once (and dropped its reference) */
      break;
    }
  }
  if (rc == 0) rc = corio_future_wait(w, timeout_s);
  for (i = 0; i < added; i++)
    if (corio_future_remove_done_callback(futs[i], any_done, w) == 0) corio_future_unref(w);
  corio_future_unref(w);
  idx = first_done(futs, n);
  if (idx >= 0) return idx;
  return rc < 0 ? rc : -ETIMEDOUT;
}

/* Futures bound to a loop take done callbacks only on the loop's thread, so a foreign thread
 * sleeps on their state words at once with futex_waitv (Linux 5.16), with the same protocol as
 * corio_future_wait: announce a waiter, re-read the state, sleep only on the value seen. */
static int wait_any_futex(corio_future *const *futs, size_t n, double timeout_s)
{
  struct futex_waitv v[FUTEX_WAITV_MAX];
  struct timespec ts;
  int64_t deadline = 0;
  size_t i;
  int st;
  long rc;
  if (n > FUTEX_WAITV_MAX) return -E2BIG;
  if (timeout_s >= 0) deadline = corio__now_ns() + corio__seconds_to_ns(timeout_s);
  memset(v, 0, sizeof(v));
  for (;;) {
    for (i = 0; i < n; i++) atomic_store_explicit(&futs[i]->waiters, 1, memory_order_seq_cst);
    for (i = 0; i < n; i++) {
      st = atomic_load_explicit(&futs[i]->state, memory_order_seq_cst);
      if (st >= CORIO_FUTURE_DONE) return (int)i;
      v[i].val = (uint64_t)st;
      v[i].uaddr = (uintptr_t)&futs[i]->state;
      v[i].flags = FUTEX_32 | FUTEX_PRIVATE_FLAG;
    }
    if (timeout_s >= 0) {
      if (deadline <= corio__now_ns()) return -ETIMEDOUT;
      ts.tv_sec = deadline / 1000000000;
      ts.tv_nsec = deadline % 1000000000;
    }
    rc = syscall(SYS_futex_waitv, v, (unsigned)n, 0, timeout_s >= 0 ? &ts : NULL, CLOCK_MONOTONIC);
    if (rc < 0 && errno == ENOSYS) return -ENOSYS;
  }
}

int corio_futures_wait_any(corio_future *const *futs, size_t n, double timeout_s)
{
  size_t i;
  int idx;
  bool bound = false;
  if (n == 0) return -ENOENT;
  if (!futs) return -EINVAL;
  for (i = 0; i < n; i++) {
    if (!futs[i]) return -EINVAL;
    if (futs[i]->loop && !corio_future_done(futs[i])) {
      if (corio__loop_on_thread(futs[i]->loop)) return CORIO_E_WRONG_THREAD;
      bound = true;
    }
  }
  idx = first_done(futs, n);
  if (idx >= 0) return idx;
  if (timeout_s == 0) return -ETIMEDOUT;
  return bound ? wait_any_futex(futs, n, timeout_s) : wait_any_loopless(futs, n, timeout_s);
}
