/**
 * @file sync.h
 * asyncio's synchronisation primitives for tasks of one loop: Lock, Event, Condition, Semaphore,
 * BoundedSemaphore, Barrier and Queue (FIFO, LIFO, priority). They are not thread-safe (use
 * them from the loop's thread). Waiting calls return futures to await; FIFO-fair.
 *
 * Cancellation-safe: cancelling a waiting future removes the waiter and it holds nothing; when a
 * wait has already been granted (lock handed over, item delivered) the future's result says so
 * and the grant is the waiter's (a task awaiting it receives it; see task.h on cancellation).
 */
#ifndef CORIO_SYNC_H
#define CORIO_SYNC_H

#include "future.h"

typedef struct corio_lock corio_lock;
typedef struct corio_event corio_event;
typedef struct corio_condition corio_condition;
typedef struct corio_semaphore corio_semaphore;
typedef struct corio_barrier corio_barrier;
typedef struct corio_queue corio_queue;

/* Lock */
CORIO_EXTERN corio_lock *corio_lock_new(corio_loop *loop);
/** -EBUSY if held or awaited. */
CORIO_EXTERN int corio_lock_free(corio_lock *l);
/** Done (value 0) once the lock is the caller's. */
CORIO_EXTERN corio_future *corio_lock_acquire(corio_lock *l);
/** 1 if acquired now, 0 if held. */
CORIO_EXTERN int corio_lock_try_acquire(corio_lock *l);
/** CORIO_E_NOT_LOCKED if not held. Hands the lock to the first waiter. */
CORIO_EXTERN int corio_lock_release(corio_lock *l);
CORIO_EXTERN int corio_lock_locked(const corio_lock *l);

/* Event */
CORIO_EXTERN corio_event *corio_event_new(corio_loop *loop);
CORIO_EXTERN int corio_event_free(corio_event *e);
/** Done (value 0) when the event is set (at once if already set). */
CORIO_EXTERN corio_future *corio_event_wait(corio_event *e);
/** Set and wake every waiter. */
CORIO_EXTERN void corio_event_set(corio_event *e);
CORIO_EXTERN void corio_event_clear(corio_event *e);
CORIO_EXTERN int corio_event_is_set(const corio_event *e);

/* Condition (bound to a lock; NULL creates one) */
CORIO_EXTERN corio_condition *corio_condition_new(corio_loop *loop, corio_lock *lock);
CORIO_EXTERN int corio_condition_free(corio_condition *c);
CORIO_EXTERN corio_lock *corio_condition_lock(corio_condition *c);
/**
 * The caller holds the lock: releases it, waits for a notify, re-acquires it. Done (value 0)
 * with the lock held again — also when cancelled or failed, as asyncio guarantees, so FINALLY
 * can always release. CORIO_E_NOT_LOCKED if the lock is not held.
 */
CORIO_EXTERN corio_future *corio_condition_wait(corio_condition *c);
/** Wake up to @p n waiters (lock must be held: CORIO_E_NOT_LOCKED). */
CORIO_EXTERN int corio_condition_notify(corio_condition *c, size_t n);
CORIO_EXTERN int corio_condition_notify_all(corio_condition *c);

/* Semaphore and BoundedSemaphore */
CORIO_EXTERN corio_semaphore *corio_semaphore_new(corio_loop *loop, unsigned value);
/** release() above @p value fails with -EOVERFLOW (asyncio's ValueError). */
CORIO_EXTERN corio_semaphore *corio_bounded_semaphore_new(corio_loop *loop, unsigned value);
CORIO_EXTERN int corio_semaphore_free(corio_semaphore *s);
CORIO_EXTERN corio_future *corio_semaphore_acquire(corio_semaphore *s);
CORIO_EXTERN int corio_semaphore_try_acquire(corio_semaphore *s);
CORIO_EXTERN int corio_semaphore_release(corio_semaphore *s);
CORIO_EXTERN unsigned corio_semaphore_value(const corio_semaphore *s);

/* Barrier */
CORIO_EXTERN corio_barrier *corio_barrier_new(corio_loop *loop, unsigned parties);
CORIO_EXTERN int corio_barrier_free(corio_barrier *b);
/** Done with this party's arrival index (0..parties-1) when all arrived; CORIO_E_BROKEN_BARRIER
 *  if reset/aborted. A cancelled waiter breaks the barrier (asyncio). */
CORIO_EXTERN corio_future *corio_barrier_wait(corio_barrier *b);
CORIO_EXTERN void corio_barrier_reset(corio_barrier *b);
CORIO_EXTERN void corio_barrier_abort(corio_barrier *b);
CORIO_EXTERN unsigned corio_barrier_n_waiting(const corio_barrier *b);
CORIO_EXTERN int corio_barrier_broken(const corio_barrier *b);

/* Queue */
enum corio_queue_kind { CORIO_QUEUE_FIFO = 0, CORIO_QUEUE_LIFO = 1, CORIO_QUEUE_PRIORITY = 2 };
/** @p maxsize 0 = unbounded. Priority queues pop the lowest priority first, FIFO among equals. */
CORIO_EXTERN corio_queue *corio_queue_new(corio_loop *loop, int kind, size_t maxsize);
/** -EBUSY while tasks wait on it. Remaining items are dropped (not freed: they are the user's). */
CORIO_EXTERN int corio_queue_free(corio_queue *q);
/** Done (value 0) once the item is in; CORIO_E_QUEUE_SHUTDOWN after shutdown. */
CORIO_EXTERN corio_future *corio_queue_put(corio_queue *q, void *item, int64_t priority);
/** 0, CORIO_E_QUEUE_FULL or CORIO_E_QUEUE_SHUTDOWN. */
CORIO_EXTERN int corio_queue_put_nowait(corio_queue *q, void *item, int64_t priority);
/** Done with the item as pointer value; CORIO_E_QUEUE_SHUTDOWN once shut down (and, unless
 *  immediate, drained). */
CORIO_EXTERN corio_future *corio_queue_get(corio_queue *q);
/** 0 and *item, CORIO_E_QUEUE_EMPTY or CORIO_E_QUEUE_SHUTDOWN. */
CORIO_EXTERN int corio_queue_get_nowait(corio_queue *q, void **item);
/** One item fetched earlier is processed. -EOVERFLOW if called more times than items put. */
CORIO_EXTERN int corio_queue_task_done(corio_queue *q);
/** Done when every item put has been task_done'd. */
CORIO_EXTERN corio_future *corio_queue_join(corio_queue *q);
/** Refuse new puts; waiting putters fail. @p immediate also drops the items and fails getters. */
CORIO_EXTERN void corio_queue_shutdown(corio_queue *q, int immediate);
CORIO_EXTERN size_t corio_queue_size(const corio_queue *q);
CORIO_EXTERN int corio_queue_empty(const corio_queue *q);
CORIO_EXTERN int corio_queue_full(const corio_queue *q);

#endif
