/* starmap and packed argument tuples, on both pools: corio_args_pack, corio_job_nargs,
 * corio_job_argn, corio_executor_starmap (ordered results, chunks), and malformed tuples. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>
#include "test_executor_thread_tsan.h"

TestSuite(starmap, .timeout = 60);

/* Joins its arguments with '|' ("a|b|c"); an input that is not a tuple fails with the error. */
static void join_args(corio_job *job)
{
  char out[256];
  size_t len = 0;
  corio_bytes a;
  int n = corio_job_nargs(job), k, rc;
  if (n < 0) {
    corio_job_fail(job, n, "not a tuple");
    return;
  }
  for (k = 0; k < n; k++) {
    rc = corio_job_argn(job, (size_t)k, &a);
    if (rc < 0 || len + a.len + 1 > sizeof(out)) {
      corio_job_fail(job, rc < 0 ? rc : -E2BIG, "argn %d", k);
      return;
    }
    if (k) out[len++] = '|';
    memcpy(out + len, a.data, a.len);
    len += a.len;
  }
  /* one past the last argument is refused */
  if (corio_job_argn(job, (size_t)n, &a) != -ERANGE) {
    corio_job_fail(job, -EINVAL, "argn past the end accepted");
    return;
  }
  corio_job_return_bytes(job, out, len);
}

static corio_executor *new_pool(int process)
{
  corio_executor *ex = NULL;
  corio_thread_pool_opts t = {.max_workers = 3};
  corio_process_pool_opts p = {.max_workers = 2};
  cr_assert_eq(process ? corio_process_pool_new(&ex, &p) : corio_thread_pool_new(&ex, &t), 0);
  return ex;
}

static void check_starmap(int process, size_t n, size_t chunksize)
{
  corio_executor *ex = new_pool(process);
  corio_bytes *args = calloc(n * 3, sizeof(*args));
  corio_future **out = calloc(n, sizeof(*out));
  char(*num)[24] = calloc(n, sizeof(*num)), want[64];
  const corio_bytes *r;
  size_t i;
  for (i = 0; i < n; i++) {
    snprintf(num[i], sizeof(num[i]), "%zu", i);
    args[i * 3].data = (uint8_t *)num[i];
    args[i * 3].len = strlen(num[i]);
    args[i * 3 + 1].data = NULL; /* an empty argument in the middle */
    args[i * 3 + 1].len = 0;
    args[i * 3 + 2].data = (uint8_t *)"tail";
    args[i * 3 + 2].len = 4;
  }
  cr_assert_eq(corio_executor_starmap(ex, join_args, args, 3, n, chunksize, out), 0);
  cr_assert_eq(corio_futures_wait_all(out, n, 30), 0);
  for (i = 0; i < n; i++) {
    cr_assert_eq(corio_future_error(out[i]), 0, "job %zu: %s", i,
                 corio_future_error_message(out[i]));
    r = corio_future_bytes(out[i]);
    snprintf(want, sizeof(want), "%zu||tail", i);
    cr_assert_not_null(r);
    cr_assert_eq(r->len, strlen(want), "job %zu", i);
    cr_assert_eq(memcmp(r->data, want, r->len), 0, "job %zu: %.*s", i, (int)r->len, r->data);
    corio_future_unref(out[i]);
  }
  corio_executor_free(ex);
  free(args);
  free(out);
  free(num);
}

Test(starmap, thread_pool_in_order)
{
  check_starmap(0, 200, 1);
}

Test(starmap, thread_pool_chunks)
{
  check_starmap(0, 203, 8);
}

Test(starmap, process_pool_in_order)
{
  check_starmap(1, 200, 1);
}

Test(starmap, process_pool_chunks)
{
  check_starmap(1, 203, 8);
}

static void check_pack_and_bad_tuples(int process)
{
  corio_executor *ex = new_pool(process);
  corio_bytes args[2] = {{(uint8_t *)"x", 1}, {(uint8_t *)"yz", 2}}, packed, bad = {NULL, 1};
  corio_future *f;
  uint8_t junk[16];
  cr_assert_eq(corio_args_pack(args, 2, &packed), 0);
  cr_assert_eq(packed.len, 8 + 2 * 8 + 3);
  f = corio_executor_submit_bytes(ex, join_args, packed.data, packed.len);
  cr_assert_eq(corio_future_wait(f, 30), 0);
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_bytes(f)->len, 4);
  cr_assert_eq(memcmp(corio_future_bytes(f)->data, "x|yz", 4), 0);
  corio_future_unref(f);

  /* truncated tuple: a length runs past the end */
  f = corio_executor_submit_bytes(ex, join_args, packed.data, packed.len - 1);
  cr_assert_eq(corio_future_wait(f, 30), 0);
  cr_assert_eq(corio_future_error(f), -EPROTO);
  corio_future_unref(f);
  /* not a tuple at all: garbage, an empty input, a pointer job */
  memset(junk, 0xff, sizeof(junk));
  f = corio_executor_submit_bytes(ex, join_args, junk, sizeof(junk));
  cr_assert_eq(corio_future_wait(f, 30), 0);
  cr_assert_eq(corio_future_error(f), -EPROTO);
  corio_future_unref(f);
  f = corio_executor_submit_bytes(ex, join_args, "", 0);
  cr_assert_eq(corio_future_wait(f, 30), 0);
  cr_assert_eq(corio_future_error(f), -EPROTO);
  corio_future_unref(f);
  if (!process) {
    f = corio_executor_submit(ex, join_args, NULL);
    cr_assert_eq(corio_future_wait(f, 30), 0);
    cr_assert_eq(corio_future_error(f), -EPROTO);
    corio_future_unref(f);
  }
  corio_bytes_free(&packed);

  /* zero arguments is a valid tuple */
  cr_assert_eq(corio_args_pack(NULL, 0, &packed), 0);
  f = corio_executor_submit_bytes(ex, join_args, packed.data, packed.len);
  cr_assert_eq(corio_future_wait(f, 30), 0);
  cr_assert_eq(corio_future_error(f), 0);
  cr_assert_eq(corio_future_bytes(f)->len, 0);
  corio_future_unref(f);
  corio_bytes_free(&packed);

  /* bad calls */
  cr_assert_eq(corio_args_pack(&bad, 1, &packed), -EINVAL);
  cr_assert_eq(corio_args_pack(args, 2, NULL), -EINVAL);
  cr_assert_eq(corio_args_pack(NULL, 2, &packed), -EINVAL);
  cr_assert_eq(corio_executor_starmap(ex, join_args, NULL, 2, 1, 1, &f), -EINVAL);
  cr_assert_eq(corio_executor_starmap(ex, NULL, args, 2, 1, 1, &f), -EINVAL);
  cr_assert_eq(corio_executor_starmap(NULL, join_args, args, 2, 1, 1, &f), -EINVAL);
  cr_assert_eq(corio_executor_starmap(ex, join_args, &bad, 1, 1, 1, &f), -EINVAL);
  cr_assert_eq(corio_executor_starmap(ex, join_args, args, 2, 0, 1, NULL), 0);
  cr_assert_eq(corio_job_nargs(NULL), -EINVAL);
  cr_assert_eq(corio_job_argn(NULL, 0, &packed), -EINVAL);
  corio_executor_free(ex);
}

Test(starmap, thread_pool_pack_and_bad_tuples)
{
  check_pack_and_bad_tuples(0);
}

Test(starmap, process_pool_pack_and_bad_tuples)
{
  check_pack_and_bad_tuples(1);
}
