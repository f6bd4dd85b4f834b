/**
 * @file future.h
 * corio_future: THE result type. Loop ops, tasks, combinators, executor jobs and DNS lookups all
 * complete one. A future is pending, then done (with a value or an error) or cancelled.
 *
 * Ownership: a new future has one reference, owned by whoever created or received it. Every
 * function that takes a future to wait on (CORIO_AWAIT, corio_gather, corio_wait, corio_wait_for,
 * corio_shield, corio_as_completed_new, corio_loop_run_until_complete excepted) CONSUMES one
 * reference: pass corio_future_ref(f) to keep yours.
 *
 * Threads: a future bound to a loop is used on that loop's thread, but may be completed from any
 * thread (the completion is handed to the loop through its inbox). A future with no loop
 * (corio_future_new(NULL)) is fully thread-safe; its done callbacks run in the completing thread.
 */
#ifndef CORIO_FUTURE_H
#define CORIO_FUTURE_H

#include <stdatomic.h>
#include "common.h"
#include "loop.h"

typedef enum corio_future_state {
  CORIO_FUTURE_PENDING = 0,
  CORIO_FUTURE_SETTING = 1, /* internal: a result is being handed to the loop */
  CORIO_FUTURE_DONE = 2,
  CORIO_FUTURE_CANCELLED = 3,
} corio_future_state;

/** Owned bytes: the value kind used by reads, executors and DNS. */
typedef struct corio_bytes {
  uint8_t *data;
  size_t len;
} corio_bytes;

typedef void (*corio_future_cb)(corio_future *fut, void *arg);
typedef void (*corio_dtor)(void *p);

/** Hooks of a future's owner (a task, an op, a combinator). All optional. */
typedef struct corio_future_ops {
  /** Request cancellation. Returns 1 if the request was taken (the future will complete,
   *  now or later), 0 if it cannot be cancelled. NULL: the future is cancelled at once. */
  int (*cancel)(corio_future *fut);
  /** Called once when the last reference goes, before the memory is freed. */
  void (*destroy)(corio_future *fut);
  /** Describes what the future is (for corio_loop_dump). */
  const char *name;
} corio_future_ops;

struct corio__mpsc_node {
  struct corio__mpsc_node *_Atomic next;
  void (*run)(struct corio__mpsc_node *node); /* called on the loop thread */
};

struct corio__fcb {
  corio_future_cb cb;
  void *arg;
};

/** Fields are private; the struct is public so that futures can be embedded. */
struct corio_future {
  const corio_future_ops *ops;
  corio_loop *loop;
  _Atomic int state;
  _Atomic int refs;
  int err;            /* negative code, 0 when the value is valid */
  char *errmsg;       /* optional text of the error (owned) */
  unsigned char kind; /* 0 none/int, 1 ptr, 2 bytes */
  unsigned char retrieved;
  unsigned char heap;            /* freed with corio__free on the last unref */
  unsigned char final_state;     /* DONE or CANCELLED while SETTING */
  unsigned char cbs_scheduled;   /* a ready-queue entry will run the callbacks */
  _Atomic unsigned char waiters; /* a thread sleeps in corio_future_wait */
  union {
    int64_t i;
    struct {
      void *p;
      corio_dtor dtor;
    } ptr;
    corio_bytes bytes;
  } v;
  struct corio__fcb cb0;  /* first done callback, inline: most futures have exactly one */
  struct corio__fcb *cbs; /* the others */
  uint32_t ncbs, capcbs;
  _Atomic int lock;              /* spinlock, only for loop-less futures */
  struct corio__mpsc_node inbox; /* hand-off to the loop when completed from another thread */
};

/** A new pending future on @p loop (NULL: a loop-less, thread-safe future). NULL on ENOMEM. */
CORIO_EXTERN corio_future *corio_future_new(corio_loop *loop);
/** Initialise a future embedded in caller storage (freed by ops->destroy, not by corio). */
CORIO_EXTERN void corio_future_init(corio_future *fut, corio_loop *loop,
                                    const corio_future_ops *ops);
/** Destroy a future whose last reference was dropped (called by corio_future_unref). */
CORIO_EXTERN void corio__future_destroy(corio_future *fut);
/** Take a reference (NULL-safe). Inline: it is on every await's path. */
static inline corio_future *corio_future_ref(corio_future *fut)
{
  if (fut) atomic_fetch_add_explicit(&fut->refs, 1, memory_order_relaxed);
  return fut;
}
/** Drop a reference; the last one destroys the future (NULL-safe). */
static inline void corio_future_unref(corio_future *fut)
{
  if (fut && atomic_fetch_sub_explicit(&fut->refs, 1, memory_order_acq_rel) == 1)
    corio__future_destroy(fut);
}

/** Complete with an integer value. @return 0, or CORIO_E_INVALID_STATE if already done. */
CORIO_EXTERN int corio_future_set_result(corio_future *fut, int64_t value);
/** Complete with a pointer; @p dtor (may be NULL) frees it with the future. */
CORIO_EXTERN int corio_future_set_result_ptr(corio_future *fut, void *p, corio_dtor dtor);
/** Complete with owned bytes (taken over: freed with corio's allocator, see corio_bytes_free). */
CORIO_EXTERN int corio_future_set_result_bytes(corio_future *fut, corio_bytes bytes);
/** Complete with an error (< 0). -ECANCELED is an error, not a cancellation. */
CORIO_EXTERN int corio_future_set_error(corio_future *fut, int err);
/** Complete with an error and a text saying what happened (copied; NULL = none). */
CORIO_EXTERN int corio_future_set_error_msg(corio_future *fut, int err, const char *msg);
/** The error's text: the one given to set_error_msg, else corio_strerror(err). NULL if the
 *  future has no error. Valid while the future lives. */
CORIO_EXTERN const char *corio_future_error_message(corio_future *fut);
/**
 * Request cancellation. @return 1 if the future is (or will be) cancelled, 0 if it was done.
 */
CORIO_EXTERN int corio_future_cancel(corio_future *fut);
/** Mark cancelled now (for owners implementing ops->cancel). Same returns as set_result. */
CORIO_EXTERN int corio_future_set_cancelled(corio_future *fut);

CORIO_EXTERN int corio_future_done(const corio_future *fut); /**< done or cancelled */
CORIO_EXTERN int corio_future_cancelled(const corio_future *fut);
/** 0 if it has a value, the error if failed, -ECANCELED if cancelled, CORIO_E_NOT_DONE if pending.
 *  Marks the error as retrieved. */
CORIO_EXTERN int corio_future_error(corio_future *fut);
CORIO_EXTERN int64_t corio_future_int(const corio_future *fut); /**< 0 unless int value */
CORIO_EXTERN void *corio_future_ptr(const corio_future *fut);   /**< NULL unless ptr value */
CORIO_EXTERN const corio_bytes *
corio_future_bytes(const corio_future *fut); /**< NULL unless bytes */
/** Take the pointer value out (the future will no longer destroy it). */
CORIO_EXTERN void *corio_future_steal_ptr(corio_future *fut);
/** Take the bytes out (caller frees them with corio_bytes_free). */
CORIO_EXTERN corio_bytes corio_future_steal_bytes(corio_future *fut);
CORIO_EXTERN corio_loop *corio_future_loop(const corio_future *fut);

/** Add a done callback; it runs from the loop's ready queue (never inside set_result). A
 *  loop-less future runs it in the completing thread (or at once if already done). */
CORIO_EXTERN int corio_future_add_done_callback(corio_future *fut, corio_future_cb cb, void *arg);
/** Remove the first callback matching (cb, arg). @return 0 or -ENOENT. */
CORIO_EXTERN int corio_future_remove_done_callback(corio_future *fut, corio_future_cb cb,
                                                   void *arg);
/**
 * Block the calling thread until @p fut is done or @p timeout_s passes (< 0: forever).
 * Not from the thread running the future's loop (CORIO_E_WRONG_THREAD: it would deadlock).
 * @return 0 when done, -ETIMEDOUT.
 */
CORIO_EXTERN int corio_future_wait(corio_future *fut, double timeout_s);

/** Allocate @p len bytes for a bytes value. */
CORIO_EXTERN corio_bytes corio_bytes_alloc(size_t len);
CORIO_EXTERN void corio_bytes_free(corio_bytes *b);

/* Allocator (all library allocation goes through it; tests inject failures). */
typedef struct corio_allocator {
  void *(*malloc)(size_t n, void *ctx);
  void *(*realloc)(void *p, size_t n, void *ctx);
  void (*free)(void *p, void *ctx);
  void *ctx;
} corio_allocator;
/** Replace the allocator (before any corio object exists). NULL restores libc's. */
CORIO_EXTERN void corio_set_allocator(const corio_allocator *a);

#endif
