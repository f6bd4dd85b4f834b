/* Futures: values, states, callbacks from the ready queue, refcounts, errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

static corio_loop *loop;
static void setup(void)
{
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
TestSuite(future, .init = setup, .timeout = 10);

static void drain(void)
{
  while (corio_loop_run_once(loop, 0) > 0) {
  }
}

Test(future, int_value_and_double_set)
{
  corio_future *f = corio_future_new(loop);
  cr_assert_not(corio_future_done(f));
  cr_assert_eq(corio_future_error(f), CORIO_E_NOT_DONE);
  cr_assert_eq(corio_future_set_result(f, 42), 0);
  cr_assert(corio_future_done(f));
  cr_assert_eq(corio_future_set_result(f, 1), CORIO_E_INVALID_STATE);
  cr_assert_eq(corio_future_set_error(f, -EIO), CORIO_E_INVALID_STATE);
  cr_assert_eq(corio_future_set_cancelled(f), CORIO_E_INVALID_STATE);
  cr_assert_eq(corio_future_cancel(f), 0);
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_int(f), 42);
  cr_assert_null(corio_future_ptr(f));
  cr_assert_null(corio_future_bytes(f));
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static int dtor_calls;
static void dtor(void *p)
{
  dtor_calls++;
  free(p);
}

Test(future, pointer_value_destructor)
{
  corio_future *f = corio_future_new(loop), *g = corio_future_new(loop);
  void *p;
  dtor_calls = 0;
  cr_assert_eq(corio_future_set_result_ptr(f, malloc(16), dtor), 0);
  cr_assert_not_null(corio_future_ptr(f));
  corio_future_unref(f);
  cr_assert_eq(dtor_calls, 1);
  corio_future_set_result_ptr(g, malloc(16), dtor);
  p = corio_future_steal_ptr(g);
  corio_future_unref(g);
  cr_assert_eq(dtor_calls, 1); /* stolen: the future no longer owns it */
  free(p);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(future, bytes_value)
{
  corio_future *f = corio_future_new(loop);
  corio_bytes b = corio_bytes_alloc(5), out;
  memcpy(b.data, "hello", 5);
  cr_assert_eq(corio_future_set_result_bytes(f, b), 0);
  cr_assert_eq(corio_future_bytes(f)->len, 5);
  cr_assert_eq(memcmp(corio_future_bytes(f)->data, "hello", 5), 0);
  out = corio_future_steal_bytes(f);
  cr_assert_eq(out.len, 5);
  cr_assert_null(corio_future_bytes(f) ? corio_future_bytes(f)->data : NULL);
  corio_bytes_free(&out);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(future, error_and_cancel)
{
  corio_future *f = corio_future_new(loop), *g = corio_future_new(loop);
  cr_assert_eq(corio_future_set_error(f, 5), -EINVAL); /* errors are negative */
  cr_assert_eq(corio_future_set_error(f, -EIO), 0);
  cr_assert_eq(corio_future_error(f), -EIO);
  cr_assert_eq(corio_future_int(f), 0);
  cr_assert_eq(corio_future_cancel(g), 1);
  cr_assert(corio_future_cancelled(g));
  cr_assert_eq(corio_future_error(g), -ECANCELED);
  corio_future_unref(f);
  corio_future_unref(g);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static int order[8], norder;
static void cb_rec(corio_future *f, void *arg)
{
  (void)f;
  order[norder++] = (int)(intptr_t)arg;
}

Test(future, callbacks_run_from_ready_queue_in_order)
{
  corio_future *f = corio_future_new(loop);
  norder = 0;
  corio_future_add_done_callback(f, cb_rec, (void *)1);
  corio_future_add_done_callback(f, cb_rec, (void *)2);
  corio_future_add_done_callback(f, cb_rec, (void *)3);
  corio_future_add_done_callback(f, cb_rec, (void *)4);
  cr_assert_eq(corio_future_remove_done_callback(f, cb_rec, (void *)3), 0);
  cr_assert_eq(corio_future_remove_done_callback(f, cb_rec, (void *)3), -ENOENT);
  corio_future_set_result(f, 1);
  cr_assert_eq(norder, 0, "callbacks must not run inside set_result");
  drain();
  cr_assert_eq(norder, 3);
  cr_assert_eq(order[0], 1);
  cr_assert_eq(order[1], 2);
  cr_assert_eq(order[2], 4);
  /* added after done: still from the ready queue */
  corio_future_add_done_callback(f, cb_rec, (void *)5);
  cr_assert_eq(norder, 3);
  drain();
  cr_assert_eq(norder, 4);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static void cb_unref(corio_future *f, void *arg)
{
  (void)arg;
  corio_future_unref(f); /* dropping the last reference inside a callback is safe */
}

Test(future, last_unref_inside_callback)
{
  corio_future *f = corio_future_new(loop);
  corio_future_add_done_callback(f, cb_unref, NULL);
  corio_future_set_result(f, 1);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(future, loopless_callbacks_run_in_completing_thread)
{
  corio_future *f = corio_future_new(NULL);
  norder = 0;
  corio_future_add_done_callback(f, cb_rec, (void *)7);
  corio_future_set_result(f, 1);
  cr_assert_eq(norder, 1);
  corio_future_add_done_callback(f, cb_rec, (void *)8); /* done: runs at once */
  cr_assert_eq(norder, 2);
  cr_assert_eq(order[1], 8);
  corio_future_unref(f);
  cr_assert_eq(corio_loop_close(loop), 0);
}

static int exc_n, exc_err;
static void exc_handler(corio_loop *l, const corio_exception_ctx *ctx, void *arg)
{
  (void)l;
  (void)arg;
  exc_n++;
  exc_err = ctx->error;
}

Test(future, unretrieved_error_reported_in_debug_mode)
{
  corio_loop *dbg;
  corio_loop_opts o = {0};
  corio_future *f, *g;
  o.debug = 1;
  cr_assert_eq(corio_loop_new(&dbg, &o), 0);
  corio_loop_set_exception_handler(dbg, exc_handler, NULL);
  exc_n = 0;
  f = corio_future_new(dbg);
  corio_future_set_error(f, -EPIPE);
  corio_future_unref(f);
  cr_assert_eq(exc_n, 1);
  cr_assert_eq(exc_err, -EPIPE);
  g = corio_future_new(dbg);
  corio_future_set_error(g, -EPIPE);
  cr_assert_eq(corio_future_error(g), -EPIPE);
  corio_future_unref(g); /* retrieved: silent */
  cr_assert_eq(exc_n, 1);
  cr_assert_eq(corio_loop_close(dbg), 0);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(future, bad_input)
{
  cr_assert_eq(corio_future_set_result(NULL, 1), -EINVAL);
  cr_assert_eq(corio_future_error(NULL), -EINVAL);
  cr_assert_eq(corio_future_add_done_callback(NULL, cb_rec, NULL), -EINVAL);
  cr_assert_eq(corio_future_cancel(NULL), 0);
  cr_assert_eq(corio_future_wait(NULL, 1), -EINVAL);
  corio_future_unref(NULL);
  cr_assert_null(corio_future_ref(NULL));
  cr_assert_eq(corio_loop_close(loop), 0);
}

static int fail_after = -1;
static void *failing_malloc(size_t n, void *ctx)
{
  (void)ctx;
  if (fail_after == 0) return NULL;
  if (fail_after > 0) fail_after--;
  return malloc(n);
}
static void *failing_realloc(void *p, size_t n, void *ctx)
{
  (void)ctx;
  if (fail_after == 0) return NULL;
  if (fail_after > 0) fail_after--;
  return realloc(p, n);
}
static void plain_free(void *p, void *ctx)
{
  (void)ctx;
  free(p);
}

Test(future, allocation_failure_is_an_error)
{
  corio_allocator a = {failing_malloc, failing_realloc, plain_free, NULL};
  corio_loop *l2;
  corio_set_allocator(&a);
  fail_after = 0;
  cr_assert_null(corio_future_new(loop));
  cr_assert_eq(corio_loop_new(&l2, NULL), -ENOMEM);
  cr_assert_eq(corio_call_soon_threadsafe(loop, NULL, NULL), -EINVAL);
  cr_assert_eq(corio_call_soon_threadsafe(loop, (corio_cb)free, NULL), -ENOMEM);
  corio_set_allocator(NULL);
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(future, error_with_message)
{
  corio_future *f = corio_future_new(loop), *g = corio_future_new(loop),
               *h = corio_future_new(loop);
  cr_assert_null(corio_future_error_message(f));
  cr_assert_eq(corio_future_set_error_msg(f, -EIO, "disk on fire"), 0);
  cr_assert_str_eq(corio_future_error_message(f), "disk on fire");
  cr_assert_eq(corio_future_error(f), -EIO);
  corio_future_set_error(g, -ENOENT);
  cr_assert_str_eq(corio_future_error_message(g), "No such file or directory");
  corio_future_set_result(h, 1);
  cr_assert_null(corio_future_error_message(h));
  corio_future_unref(f);
  corio_future_unref(g);
  corio_future_unref(h);
  cr_assert_eq(corio_loop_close(loop), 0);
}
