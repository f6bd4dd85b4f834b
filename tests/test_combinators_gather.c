/* corio_gather: order of results, errors, RETURN_EXCEPTIONS, CANCEL_ON_ERROR, cancellation, bad
 * children, and gathers awaited from tasks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(gather, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}
static void run(corio_future *f)
{
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
}

/* A task that sleeps `secs`, then returns `value` or fails with `err`. */
struct worker {
  corio_task task;
  double secs;
  int64_t value;
  int err;
  int body_runs, finally_runs, err_in_finally;
};
static corio_step worker_step(corio_task *t)
{
  struct worker *w = corio_container_of(t, struct worker, task);
  CORIO_BEGIN(t);
  w->body_runs++;
  CORIO_AWAIT_TRY(t, corio_sleep(t->loop, w->secs));
  if (w->err) CORIO_THROW(t, w->err);
  CORIO_RETURN(t, w->value);
  CORIO_FINALLY(t);
  w->finally_runs++;
  w->err_in_finally = corio_task_error(t);
  CORIO_END(t);
}
static struct worker *worker(double secs, int64_t value, int err)
{
  struct worker *w = corio_task_new(loop, worker_step, struct worker, task);
  cr_assert_not_null(w);
  w->secs = secs;
  w->value = value;
  w->err = err;
  cr_assert_eq(corio_task_start(&w->task), 0);
  return w;
}
static void refs_of(struct worker **w, corio_future **futs, int n)
{
  int i;
  for (i = 0; i < n; i++) futs[i] = corio_future_ref(&w[i]->task.fut);
}
static void unref_workers(struct worker **w, int n)
{
  int i;
  for (i = 0; i < n; i++) corio_future_unref(&w[i]->task.fut);
}

/* A plain future that counts its destruction: proves a combinator released what it consumed. */
struct tracked {
  corio_future fut;
  int *destroyed;
};
static void tracked_destroy(corio_future *f)
{
  struct tracked *t = corio_container_of(f, struct tracked, fut);
  (*t->destroyed)++;
  free(t);
}
static const corio_future_ops tracked_ops = {NULL, tracked_destroy, "tracked"};
static corio_future *tracked(corio_loop *l, int *destroyed)
{
  struct tracked *t = calloc(1, sizeof(*t));
  corio_future_init(&t->fut, l, &tracked_ops);
  t->destroyed = destroyed;
  return &t->fut;
}

Test(gather, results_in_order_not_completion_order)
{
  struct worker *w[4] = {worker(0.03, 10, 0), worker(0.01, 20, 0), worker(0, 30, 0),
                         worker(0.02, 40, 0)};
  corio_future *futs[4], *g;
  int i;
  refs_of(w, futs, 4);
  g = corio_gather(futs, 4, 0);
  cr_assert_not_null(g);
  cr_assert_not(corio_future_done(g));
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_future_int(g), 0);
  cr_assert_eq(corio_gather_size(g), 4);
  for (i = 0; i < 4; i++) {
    cr_assert_eq(corio_gather_child(g, (size_t)i), &w[i]->task.fut, "children kept in order");
    cr_assert_eq(corio_future_int(corio_gather_child(g, (size_t)i)), (i + 1) * 10);
  }
  cr_assert_null(corio_gather_child(g, 4));
  corio_future_unref(g);
  unref_workers(w, 4);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, empty_gather_is_done_at_once)
{
  corio_future *dummy[1] = {NULL};
  corio_future *g = corio_gather(dummy, 0, 0);
  cr_assert_not_null(g);
  cr_assert(corio_future_done(g));
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_gather_size(g), 0);
  cr_assert_null(corio_gather_child(g, 0));
  corio_future_unref(g);
  g = corio_gather(NULL, 0, CORIO_RETURN_EXCEPTIONS);
  cr_assert(corio_future_done(g));
  cr_assert_eq(corio_future_error(g), 0);
  corio_future_unref(g);
  /* NULL array with n > 0: bad arguments, a failed future. */
  g = corio_gather(NULL, 3, 0);
  cr_assert_not_null(g);
  cr_assert_eq(corio_future_error(g), -EINVAL);
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, not_a_gather)
{
  corio_future *f = corio_future_new(loop);
  cr_assert_null(corio_gather_child(f, 0));
  cr_assert_eq(corio_gather_size(f), 0);
  cr_assert_null(corio_gather_child(NULL, 0));
  cr_assert_eq(corio_gather_size(NULL), 0);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, children_already_done)
{
  corio_future *futs[3], *g;
  int i;
  for (i = 0; i < 3; i++) {
    futs[i] = corio_future_new(loop);
    corio_future_set_result(futs[i], i + 100);
  }
  g = corio_gather(futs, 3, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  for (i = 0; i < 3; i++) cr_assert_eq(corio_future_int(corio_gather_child(g, (size_t)i)), i + 100);
  corio_future_unref(g);
  /* an already failed child fails it */
  futs[0] = corio_future_new(loop);
  futs[1] = corio_future_new(loop);
  corio_future_set_result(futs[0], 1);
  corio_future_set_error(futs[1], -ENOENT);
  g = corio_gather(futs, 2, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), -ENOENT);
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, first_error_fails_and_siblings_keep_running)
{
  /* wide gaps: a loaded machine may stall the loop, the assertions must not depend on it */
  struct worker *w[3] = {worker(0.5, 1, 0), worker(0.001, 0, -EIO), worker(0.3, 0, -EPIPE)};
  corio_future *futs[3], *g;
  refs_of(w, futs, 3);
  g = corio_gather(futs, 3, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), -EIO, "the first error, not a later one");
  cr_assert_not(corio_future_done(&w[0]->task.fut), "no CANCEL_ON_ERROR: siblings run on");
  cr_assert_not(corio_future_done(&w[2]->task.fut));
  run(&w[0]->task.fut);
  run(&w[2]->task.fut);
  cr_assert_eq(corio_future_int(&w[0]->task.fut), 1, "the sibling finished normally");
  cr_assert_eq(corio_future_error(&w[2]->task.fut), -EPIPE);
  cr_assert_eq(w[0]->finally_runs, 1);
  cr_assert_eq(w[0]->err_in_finally, 0);
  corio_future_unref(g);
  unref_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, return_exceptions_collects_errors)
{
  struct worker *w[4] = {worker(0.01, 1, 0), worker(0.005, 0, -EPIPE), worker(0.02, 3, 0),
                         worker(5, 4, 0)};
  corio_future *futs[4], *g;
  refs_of(w, futs, 4);
  g = corio_gather(futs, 4, CORIO_RETURN_EXCEPTIONS);
  corio_loop_run_once(loop, 0);
  corio_task_cancel(&w[3]->task); /* a cancelled child is one more collected outcome */
  run(g);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_future_int(corio_gather_child(g, 0)), 1);
  cr_assert_eq(corio_future_error(corio_gather_child(g, 1)), -EPIPE);
  cr_assert_eq(corio_future_int(corio_gather_child(g, 2)), 3);
  cr_assert(corio_future_cancelled(corio_gather_child(g, 3)));
  corio_future_unref(g);
  unref_workers(w, 4);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, cancelled_child_fails_plain_gather)
{
  struct worker *w[2] = {worker(5, 1, 0), worker(0.01, 2, 0)};
  corio_future *futs[2], *g;
  refs_of(w, futs, 2);
  g = corio_gather(futs, 2, 0);
  corio_loop_run_once(loop, 0);
  corio_task_cancel(&w[0]->task);
  run(g);
  cr_assert_eq(corio_future_error(g), -ECANCELED);
  run(&w[1]->task.fut);
  cr_assert_eq(corio_future_int(&w[1]->task.fut), 2, "the other child was not cancelled");
  corio_future_unref(g);
  unref_workers(w, 2);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* asyncio gh-75633: with CANCEL_ON_ERROR the first failure cancels the siblings. */
Test(gather, cancel_on_error_cancels_siblings)
{
  struct worker *w[4] = {worker(5, 1, 0), worker(0.01, 0, -EIO), worker(5, 3, 0),
                         worker(0.001, 4, 0)};
  corio_future *futs[4], *g;
  double t0 = corio_loop_time(loop);
  refs_of(w, futs, 4);
  g = corio_gather(futs, 4, CORIO_CANCEL_ON_ERROR);
  run(g);
  cr_assert_eq(corio_future_error(g), -EIO);
  cr_assert_not(corio_future_cancelled(g));
  drain();
  cr_assert_lt(corio_loop_time(loop) - t0, 2, "the 5 s siblings did not run to the end");
  cr_assert(corio_future_cancelled(&w[0]->task.fut));
  cr_assert(corio_future_cancelled(&w[2]->task.fut));
  cr_assert_eq(corio_future_int(&w[3]->task.fut), 4, "a child done before the error keeps it");
  cr_assert_eq(w[0]->finally_runs, 1);
  cr_assert_eq(w[2]->finally_runs, 1);
  cr_assert_eq(w[0]->err_in_finally, -ECANCELED);
  corio_future_unref(g);
  unref_workers(w, 4);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, cancelling_gather_cancels_children)
{
  struct worker *w[3] = {worker(5, 1, 0), worker(5, 2, 0), worker(5, 3, 0)};
  corio_future *futs[3], *g;
  int i;
  refs_of(w, futs, 3);
  g = corio_gather(futs, 3, CORIO_RETURN_EXCEPTIONS);
  corio_loop_run_once(loop, 0); /* the workers are asleep now */
  cr_assert_eq(corio_future_cancel(g), 1);
  run(g);
  cr_assert(corio_future_cancelled(g));
  cr_assert_eq(corio_future_error(g), -ECANCELED);
  for (i = 0; i < 3; i++) {
    cr_assert(corio_future_cancelled(&w[i]->task.fut));
    cr_assert_eq(w[i]->finally_runs, 1);
  }
  corio_future_unref(g);
  unref_workers(w, 3);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, cancel_before_children_started)
{
  struct worker *w[2] = {worker(5, 1, 0), worker(5, 2, 0)};
  corio_future *futs[2], *g;
  refs_of(w, futs, 2);
  g = corio_gather(futs, 2, 0);
  cr_assert_eq(corio_future_cancel(g), 1); /* before the first iteration */
  run(g);
  cr_assert(corio_future_cancelled(g));
  cr_assert_eq(w[0]->body_runs + w[1]->body_runs, 0, "a task cancelled before it ran never runs");
  corio_future_unref(g);
  unref_workers(w, 2);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, null_child_fails_with_enomem_and_releases_the_others)
{
  int destroyed = 0;
  corio_future *futs[3], *g;
  futs[0] = tracked(loop, &destroyed);
  futs[1] = NULL; /* a constructor that ran out of memory */
  futs[2] = tracked(loop, &destroyed);
  g = corio_gather(futs, 3, 0);
  cr_assert_not_null(g);
  cr_assert(corio_future_done(g));
  cr_assert_eq(corio_future_error(g), -ENOMEM);
  cr_assert_eq(destroyed, 2, "the other children were consumed");
  corio_future_unref(g);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, child_of_another_loop_fails_with_wrong_loop)
{
  corio_loop *other;
  int destroyed = 0;
  corio_future *futs[2], *g;
  cr_assert_eq(corio_loop_new(&other, NULL), 0);
  futs[0] = corio_sleep(loop, 0.005);
  futs[1] = tracked(other, &destroyed);
  g = corio_gather(futs, 2, 0);
  run(g);
  cr_assert_eq(corio_future_error(g), CORIO_E_WRONG_LOOP);
  corio_future_unref(g);
  drain();
  cr_assert_eq(destroyed, 1, "the foreign child was released");
  cr_assert_eq(corio_loop_close(other), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Loop-less children completed by another thread hop onto the gather's loop. */
static void *complete_later(void *arg)
{
  corio_future **f = arg;
  struct timespec ts = {0, 5 * 1000 * 1000};
  nanosleep(&ts, NULL);
  corio_future_set_result(f[0], 7);
  corio_future_set_error(f[1], -EXDEV);
  return NULL;
}
Test(gather, loopless_children_from_a_thread)
{
  corio_future *ext[2] = {corio_future_new(NULL), corio_future_new(NULL)};
  corio_future *futs[3], *g;
  pthread_t th;
  futs[0] = corio_sleep(loop, 0.001); /* gives the gather its loop */
  futs[1] = corio_future_ref(ext[0]);
  futs[2] = corio_future_ref(ext[1]);
  g = corio_gather(futs, 3, CORIO_RETURN_EXCEPTIONS);
  cr_assert_eq(corio_future_loop(g), loop);
  cr_assert_eq(pthread_create(&th, NULL, complete_later, ext), 0);
  run(g);
  pthread_join(th, NULL);
  cr_assert_eq(corio_future_error(g), 0);
  cr_assert_eq(corio_future_int(corio_gather_child(g, 1)), 7);
  cr_assert_eq(corio_future_error(corio_gather_child(g, 2)), -EXDEV);
  corio_future_unref(g);
  corio_future_unref(ext[0]);
  corio_future_unref(ext[1]);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A parent task spawns children, awaits their gather and sums the results. */
struct parent {
  corio_task task;
  int n;
  unsigned flags;
  struct worker *kids[4];
  int64_t sum;
  int finally_runs, err_in_finally;
};
static corio_step parent_step(corio_task *t)
{
  struct parent *p = corio_container_of(t, struct parent, task);
  corio_future *futs[4];
  int i;
  CORIO_BEGIN(t);
  for (i = 0; i < p->n; i++) futs[i] = corio_future_ref(&p->kids[i]->task.fut);
  CORIO_AWAIT_TRY(t, corio_gather(futs, (size_t)p->n, p->flags));
  for (i = 0; i < p->n; i++)
    p->sum += corio_future_int(corio_gather_child(corio_awaited(t), (size_t)i));
  CORIO_RETURN(t, p->sum);
  CORIO_FINALLY(t);
  p->finally_runs++;
  p->err_in_finally = corio_task_error(t);
  CORIO_END(t);
}
static struct parent *parent(int n, const double *secs, const int *errs, unsigned flags)
{
  struct parent *p = corio_task_new(loop, parent_step, struct parent, task);
  int i;
  p->n = n;
  p->flags = flags;
  for (i = 0; i < n; i++) p->kids[i] = worker(secs[i], i + 1, errs ? errs[i] : 0);
  cr_assert_eq(corio_task_start(&p->task), 0);
  return p;
}
static void parent_free(struct parent *p)
{
  int i;
  for (i = 0; i < p->n; i++) corio_future_unref(&p->kids[i]->task.fut);
  corio_future_unref(&p->task.fut);
}

Test(gather, awaited_from_a_task)
{
  static const double secs[3] = {0.01, 0, 0.005};
  static const int errs[3] = {0, -EACCES, 0};
  struct parent *p = parent(3, secs, NULL, 0);
  run(&p->task.fut);
  cr_assert_eq(corio_future_int(&p->task.fut), 6);
  cr_assert_eq(p->finally_runs, 1);
  parent_free(p);
  /* AWAIT_TRY unwinds with the gather's error */
  p = parent(3, secs, errs, 0);
  run(&p->task.fut);
  cr_assert_eq(corio_future_error(&p->task.fut), -EACCES);
  cr_assert_eq(p->err_in_finally, -EACCES);
  cr_assert_eq(p->sum, 0);
  run(&p->kids[0]->task.fut);
  parent_free(p);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(gather, cancelling_the_awaiting_task_cancels_the_children)
{
  static const double secs[3] = {5, 5, 0.001};
  struct parent *p = parent(3, secs, NULL, 0);
  int i;
  run(&p->kids[2]->task.fut); /* the parent awaits the gather, kid 2 is done */
  cr_assert_eq(corio_task_cancel(&p->task), 1);
  run(&p->task.fut);
  cr_assert(corio_future_cancelled(&p->task.fut));
  cr_assert_eq(p->finally_runs, 1);
  cr_assert_eq(p->err_in_finally, -ECANCELED);
  for (i = 0; i < 2; i++) {
    cr_assert(corio_future_cancelled(&p->kids[i]->task.fut));
    cr_assert_eq(p->kids[i]->finally_runs, 1);
  }
  cr_assert_eq(corio_future_int(&p->kids[2]->task.fut), 3);
  parent_free(p);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
