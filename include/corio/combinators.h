/**
 * @file combinators.h
 * asyncio's combinators for corio futures: sleep, gather, wait, wait_for, as_completed, shield
 * and task groups. Each returns a new future (NULL only on ENOMEM or bad arguments, which an
 * await turns into an error) and CONSUMES one reference to each future it is given.
 */
#ifndef CORIO_COMBINATORS_H
#define CORIO_COMBINATORS_H

#include "task.h"

/** A future done with value 0 after @p delay_s seconds (never earlier). sleep(0) yields once. */
CORIO_EXTERN corio_future *corio_sleep(corio_loop *loop, double delay_s);

/** gather flags */
#define CORIO_RETURN_EXCEPTIONS 0x1u /**< Children's errors do not fail the gather. */
#define CORIO_CANCEL_ON_ERROR   0x2u /**< First error cancels the siblings (asyncio gh-75633). */

/**
 * Wait for all @p n futures. Done with value 0 when all are done (with CORIO_RETURN_EXCEPTIONS),
 * or with the first child's error as soon as one fails. Read results in order with
 * corio_gather_child(). Cancelling the gather cancels every child. n may be 0.
 */
CORIO_EXTERN corio_future *corio_gather(corio_future *const *futs, size_t n, unsigned flags);
/** Child @p i of a gather or wait future (borrowed), or NULL. */
CORIO_EXTERN corio_future *corio_gather_child(corio_future *gather, size_t i);
/** Number of children of a gather or wait future. */
CORIO_EXTERN size_t corio_gather_size(corio_future *gather);

enum corio_wait_mode {
  CORIO_FIRST_COMPLETED = 1,
  CORIO_FIRST_EXCEPTION = 2,
  CORIO_ALL_COMPLETED = 3
};
/**
 * Wait until @p mode is met or @p timeout_s passes (< 0: no timeout). A child's error or the
 * timeout does not fail it: done with the number of finished children. It fails only when a
 * child cannot be watched at all (CORIO_E_WRONG_LOOP, -ENOMEM). Children are not cancelled;
 * inspect them with corio_gather_child() and corio_future_done().
 */
CORIO_EXTERN corio_future *corio_wait(corio_future *const *futs, size_t n, int mode,
                                      double timeout_s);
/**
 * @p fut's result, or -ETIMEDOUT after @p timeout_s, when @p fut is cancelled (and its
 * cancellation has completed). If fut finishes despite the cancel, its result wins.
 */
CORIO_EXTERN corio_future *corio_wait_for(corio_future *fut, double timeout_s);
/** A future that mirrors @p fut, but cancelling it does not cancel @p fut. */
CORIO_EXTERN corio_future *corio_shield(corio_future *fut);

typedef struct corio_as_completed corio_as_completed;
/** Iterate @p n futures in completion order. NULL on ENOMEM/EINVAL. */
CORIO_EXTERN corio_as_completed *corio_as_completed_new(corio_loop *loop, corio_future *const *futs,
                                                        size_t n);
/**
 * A future done with a pointer to the next finished child (borrowed from the iterator, valid
 * until it is freed), or with CORIO_E_QUEUE_EMPTY when all were returned.
 */
CORIO_EXTERN corio_future *corio_as_completed_next(corio_as_completed *it);
/** Children not yet done are cancelled. */
CORIO_EXTERN void corio_as_completed_free(corio_as_completed *it);

typedef struct corio_task_group corio_task_group;
/** A group of tasks: the first failure cancels the others (asyncio TaskGroup). */
CORIO_EXTERN corio_task_group *corio_task_group_new(corio_loop *loop);
/** Start @p t (if not started) in the group; the group takes a reference. */
CORIO_EXTERN int corio_task_group_spawn(corio_task_group *g, corio_task *t);
/** Done when every task is done: value 0, or the first error (-ECANCELED if cancelled). No
 *  spawning after it completes. */
CORIO_EXTERN corio_future *corio_task_group_wait(corio_task_group *g);
/** Cancel every task of the group. */
CORIO_EXTERN void corio_task_group_cancel(corio_task_group *g);
/** Free the group (its tasks must be done: -EBUSY otherwise). */
CORIO_EXTERN int corio_task_group_free(corio_task_group *g);

#endif
