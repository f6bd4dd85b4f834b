/**
 * @file task.h
 * Stackless tasks. A task is a future whose value is computed by a step function that resumes
 * where it last suspended (switch + __LINE__). The user's frame struct embeds corio_task, and
 * everything that lives across an await is a frame field:
 *
 *     struct job { corio_task task; int fd; };
 *     static corio_step job_step(corio_task *t) {
 *       struct job *j = corio_container_of(t, struct job, task);
 *       CORIO_BEGIN(t);
 *       CORIO_AWAIT_TRY(t, corio_sleep(t->loop, 0.5));
 *       CORIO_RETURN(t, 42);
 *     CORIO_FINALLY(t);        // runs on success, error, cancellation and timeout
 *       ...cleanup, may CORIO_AWAIT (shielded from cancellation)...
 *     CORIO_END(t);
 *     }
 *
 * Rules, checked: the step returns only through the macros (corio_step is a struct, so a plain
 * `return 0;` does not compile); a task without CORIO_FINALLY does not compile; an await inside a
 * user `switch`, or a `break` out of the task body, aborts with the file and line. One await per
 * source line. Awaits CONSUME a reference to the future (pass corio_future_ref(f) to keep yours);
 * the awaited future stays readable through corio_awaited(t) until the next await.
 *
 * Cancellation (corio_task_cancel) is delivered as -ECANCELED at the current await (cancelling
 * the future or io_uring op being awaited) or at the next one that would suspend, and unwinds to
 * CORIO_FINALLY. A task cancelled before its first step never runs its body. If the awaited
 * future completed before the cancellation could take effect, its result is delivered (nothing
 * is lost) and the cancellation is raised at the next suspending await.
 */
#ifndef CORIO_TASK_H
#define CORIO_TASK_H

#include "future.h"

/** What a step returns. A struct so that a plain `return` cannot compile. */
typedef struct corio_step {
  int corio__code;
} corio_step;

typedef corio_step (*corio_task_step)(corio_task *t);

struct corio__list {
  struct corio__list *next, *prev;
};

/** Fields are private except loop; the struct is public so that tasks can be embedded. */
struct corio_task {
  corio_future fut; /* first: a task IS a future */
  corio_loop *loop; /**< The loop the task runs on (read-only). */
  corio_task_step step;
  int resume;       /* source line to resume at; 0 = start */
  int err;          /* error being unwound, 0 if none */
  unsigned flags;   /* CORIO__T_* */
  int cancel_err;   /* -ECANCELED, or -ETIMEDOUT for a timeout scope */
  const char *file; /* where it is suspended */
  int line;
  corio_future *awaiting; /* pending future (reference held) */
  corio_future *awaited;  /* last completed one (reference held) */
  int64_t ret_i;          /* CORIO_RETURN value */
  void *ret_p;
  corio_dtor ret_dtor;
  unsigned char ret_kind;
  corio_handle timeout;    /* timeout scope timer */
  void *frame;             /* heap tasks: the frame to free */
  struct corio__list live; /* the loop's live tasks (for dump/close) */
};

CORIO_EXTERN corio_task *corio__task_new(corio_loop *loop, corio_task_step step, size_t size,
                                         size_t offset);
/**
 * Allocate a zeroed frame of @p type on the heap, whose member @p member is the task. Returns a
 * `type *` (NULL on ENOMEM). Set its inputs, then corio_task_start(&frame->member). The frame is
 * freed when the task is done and the last reference (yours, from this call) is dropped.
 */
#define corio_task_new(loop, step, type, member)                                                   \
  ((type *)corio__task_frame(corio__task_new((loop), (step), sizeof(type), offsetof(type, member))))
static inline void *corio__task_frame(corio_task *t)
{
  return t ? t->frame : NULL;
}
/** Initialise a task in caller storage (its owner keeps the memory until the task is done and
 *  unreferenced). Holds one reference for the caller. */
CORIO_EXTERN int corio_task_init(corio_task *t, corio_loop *loop, corio_task_step step);
/** Schedule the first step. The loop holds a reference until the task is done (so the caller
 *  may drop theirs: the task cannot be freed under the loop). */
CORIO_EXTERN int corio_task_start(corio_task *t);
/** Convenience: corio_task_start(t) then return &t->fut (a new reference, the caller's). */
CORIO_EXTERN corio_future *corio_task_spawn(corio_task *t);
/** Request cancellation (see the file comment). @return 1 if requested, 0 if already done. */
CORIO_EXTERN int corio_task_cancel(corio_task *t);
/** The task of a future that is a task, else NULL. */
CORIO_EXTERN corio_task *corio_task_of(corio_future *fut);
/**
 * Timeout scope: from now, the task's awaits fail with -ETIMEDOUT (unwinding to CORIO_FINALLY)
 * once @p delay_s has passed, until corio_task_timeout_clear(). Re-arming replaces the deadline.
 */
CORIO_EXTERN int corio_task_timeout(corio_task *t, double delay_s);
CORIO_EXTERN void corio_task_timeout_clear(corio_task *t);

/** The future the last await completed with (borrowed; valid until the next await). */
static inline corio_future *corio_awaited(corio_task *t)
{
  return t->awaited;
}
/** In CORIO_FINALLY: the error being unwound (0 on normal completion). */
static inline int corio_task_error(const corio_task *t)
{
  return t->err;
}
/** In CORIO_FINALLY: handle the error being unwound (the task then completes normally). Returns
 *  the error. */
static inline int corio_task_catch(corio_task *t)
{
  int e = t->err;
  t->err = 0;
  return e;
}

/* ---- internals used by the macros ---- */
#define CORIO__T_STARTED 0x1u
#define CORIO__T_CANCEL  0x2u   /* cancellation requested */
#define CORIO__T_FINALLY 0x4u   /* inside CORIO_FINALLY */
#define CORIO__T_RUNNING 0x8u   /* inside the step function */
#define CORIO__T_YIELD   0x10u  /* suspended in CORIO_YIELD */
#define CORIO__T_UNWIND  0x100u /* the next resumed() check unwinds */
CORIO_EXTERN int corio__task_await(corio_task *t, corio_future *fut, const char *file, int line);
CORIO_EXTERN int corio__task_resumed(corio_task *t, int try_);
CORIO_EXTERN int corio__task_yield(corio_task *t, const char *file, int line);
CORIO_EXTERN int corio__task_throw(corio_task *t, int err);
CORIO_EXTERN void corio__task_enter_finally(corio_task *t);
CORIO_EXTERN corio_step corio__task_finish(corio_task *t);
CORIO_EXTERN corio_step corio__task_bad_resume(corio_task *t, const char *file, int line);
CORIO_EXTERN corio_step corio__task_fell_out(corio_task *t, const char *file, int line);
/* Inline fast paths of the await macros: awaiting a future that is already done (the common
 * case for cached results, locks taken at once, data already buffered) costs no call. */
static inline int corio__task_await_fast(corio_task *t, corio_future *f, const char *file, int line)
{
  corio_future *old;
  if (f && (!f->loop || f->loop == t->loop) &&
      atomic_load_explicit(&f->state, memory_order_acquire) >= CORIO_FUTURE_DONE) {
    old = t->awaited;
    t->awaited = f;
    __atomic_store_n(&f->retrieved, 1, __ATOMIC_RELAXED);
    t->file = file;
    t->line = line;
    corio_future_unref(old);
    return 0;
  }
  return corio__task_await(t, f, file, line);
}
static inline int corio__task_resumed_fast(corio_task *t, int try_)
{
  corio_future *f = t->awaited;
  if (!(t->flags & (CORIO__T_UNWIND | CORIO__T_FINALLY | CORIO__T_CANCEL)) &&
      (!try_ || (f && f->err == 0 &&
                 atomic_load_explicit(&f->state, memory_order_relaxed) == CORIO_FUTURE_DONE)))
    return 0;
  return corio__task_resumed(t, try_);
}
static inline corio_step corio__task_suspend(void)
{
  corio_step s = {1};
  return s;
}
static inline int corio__task_in_finally(const corio_task *t)
{
  return (t->flags & CORIO__T_FINALLY) != 0;
}
static inline void corio__task_ret_int(corio_task *t, int64_t v)
{
  t->ret_kind = 0;
  t->ret_i = v;
}
static inline void corio__task_ret_bytes(corio_task *t, corio_bytes b)
{
  t->ret_kind = 2;
  t->ret_p = b.data;
  t->ret_i = (int64_t)b.len;
}
static inline void corio__task_ret_ptr(corio_task *t, void *p, corio_dtor d)
{
  t->ret_kind = 1;
  t->ret_p = p;
  t->ret_dtor = d;
}

/** Start of the step body. */
#define CORIO_BEGIN(t)                                                                             \
  switch ((t)->resume) {                                                                           \
  case 0:                                                                                          \
    if (0) goto corio__finally; /* no CORIO_FINALLY: "label used but not defined" */               \
    if (0) goto corio__end;

/** Await @p fut (consumed); continues at once if it is done. Errors of fut do not unwind (read
 *  them with corio_future_error(corio_awaited(t))); cancellation of the task does. */
#define CORIO_AWAIT(t, fut) CORIO__AWAIT(t, fut, 0)
/** Await @p fut (consumed); its error (or cancellation) unwinds to CORIO_FINALLY. */
#define CORIO_AWAIT_TRY(t, fut) CORIO__AWAIT(t, fut, 1)
#define CORIO__AWAIT(t, fut, try_)                                                                 \
  do {                                                                                             \
    if (corio__task_await_fast((t), (fut), __FILE__, __LINE__)) {                                  \
      (t)->resume = __LINE__;                                                                      \
      return corio__task_suspend();                                                                \
    case __LINE__:;                                                                                \
    }                                                                                              \
    if (corio__task_resumed_fast((t), (try_))) goto corio__finally;                                \
  } while (0)

/** Let other callbacks and tasks run, resume on the next iteration. */
#define CORIO_YIELD(t)                                                                             \
  do {                                                                                             \
    if (corio__task_yield((t), __FILE__, __LINE__)) {                                              \
      (t)->resume = __LINE__;                                                                      \
      return corio__task_suspend();                                                                \
    case __LINE__:;                                                                                \
    }                                                                                              \
    if (corio__task_resumed((t), 0)) goto corio__finally;                                          \
  } while (0)

/** Unwind to CORIO_FINALLY with error @p err (< 0). Inside FINALLY it records the error (if none
 *  is being unwound yet) and the cleanup goes on. */
#define CORIO_THROW(t, err)                                                                        \
  do {                                                                                             \
    if (corio__task_throw((t), (err))) goto corio__finally;                                        \
  } while (0)

/** Evaluate @p expr (an int); a negative result unwinds like CORIO_THROW. */
#define CORIO_TRY(t, expr)                                                                         \
  do {                                                                                             \
    int corio__rc = (expr);                                                                        \
    if (corio__rc < 0) CORIO_THROW(t, corio__rc);                                                  \
  } while (0)

/** Complete with an integer value (after running CORIO_FINALLY). */
#define CORIO_RETURN(t, value)                                                                     \
  do {                                                                                             \
    corio__task_ret_int((t), (int64_t)(value));                                                    \
    if (corio__task_in_finally(t)) goto corio__end;                                                \
    goto corio__finally;                                                                           \
  } while (0)

/** Complete with a pointer value freed by @p dtor (may be NULL) with the future. */
#define CORIO_RETURN_PTR(t, p, dtor)                                                               \
  do {                                                                                             \
    corio__task_ret_ptr((t), (p), (dtor));                                                         \
    if (corio__task_in_finally(t)) goto corio__end;                                                \
    goto corio__finally;                                                                           \
  } while (0)

/** Complete with owned bytes (corio_bytes_alloc'd; freed with the future, or at once if the task
 *  fails after all). */
#define CORIO_RETURN_BYTES(t, b)                                                                   \
  do {                                                                                             \
    corio__task_ret_bytes((t), (b));                                                               \
    if (corio__task_in_finally(t)) goto corio__end;                                                \
    goto corio__finally;                                                                           \
  } while (0)

/** Cleanup section: reached on success, error, cancellation and timeout. */
#define CORIO_FINALLY(t)                                                                           \
  corio__finally:                                                                                  \
  corio__task_enter_finally(t);

/** End of the step body. */
#define CORIO_END(t)                                                                               \
  corio__end:                                                                                      \
  return corio__task_finish(t);                                                                    \
  default:                                                                                         \
    return corio__task_bad_resume((t), __FILE__, __LINE__);                                        \
    }                                                                                              \
    return corio__task_fell_out((t), __FILE__, __LINE__)

#endif
