/* Process pool payloads: inline below the memfd threshold, memfd above it, byte-exact both ways
 * at every size around the threshold, 1 MiB and 64 MiB. */
#include <stdlib.h>
#include "test_executor_process.h"

TestSuite(process_pool_payload, .init = pp_test_setup, .timeout = 60);

/* The result is the input with every byte transformed, so an echo bug cannot pass. */
static void transform(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  uint8_t *out = malloc(in->len ? in->len : 1);
  size_t i;
  if (!out) {
    corio_job_fail(job, -ENOMEM, "no memory for %zu bytes", in->len);
    return;
  }
  for (i = 0; i < in->len; i++) out[i] = (uint8_t)(in->data[i] ^ 0x5a) + 1;
  if (corio_job_return_bytes(job, out, in->len) < 0) corio_job_fail(job, -ENOMEM, "no memory");
  free(out);
}

static uint8_t *pattern(size_t len, uint32_t seed)
{
  uint8_t *p = malloc(len ? len : 1);
  size_t i;
  uint32_t x = seed * 2654435761u + 1;
  cr_assert_not_null(p);
  for (i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (uint8_t)x;
  }
  return p;
}

static void round_trip(corio_executor *ex, size_t len, uint32_t seed)
{
  uint8_t *in = pattern(len, seed);
  corio_future *f = corio_executor_submit_bytes(ex, transform, in, len);
  const corio_bytes *b;
  size_t i;
  cr_assert_not_null(f);
  wait_done(f, 150); /* the suite's timeout ends the small ones sooner */
  cr_assert_eq(corio_future_error(f), 0, "%zu bytes: %s", len, corio_future_error_message(f));
  b = corio_future_bytes(f);
  cr_assert_not_null(b);
  cr_assert_eq(b->len, len);
  for (i = 0; i < len; i++)
    if (b->data[i] != (uint8_t)((in[i] ^ 0x5a) + 1))
      cr_assert_fail("%zu bytes: byte %zu differs", len, i);
  corio_future_unref(f);
  free(in);
}

Test(process_pool_payload, sizes_around_the_threshold)
{
  static const size_t sizes[] = {0, 1, 2, 100, 4095, 4096, 4097, 8191, 8192, 65536, 300000};
  int fds = count_fds();
  corio_executor *ex = pool_new(2, 0, NULL, 4096);
  size_t i;
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) round_trip(ex, sizes[i], (uint32_t)i);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds, "memfds leaked");
  assert_no_children();
}

Test(process_pool_payload, one_mib_both_ways)
{
  int fds = count_fds(), i;
  corio_executor *ex = pool_new(2, 0, NULL, 0);
  for (i = 0; i < 8; i++) round_trip(ex, (size_t)1 << 20, (uint32_t)i);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

/* 64 MiB each way, every byte transformed and checked: over 60 s under ThreadSanitizer on an
 * overloaded 2-core machine. The deadline only catches a hang. (A suite of its own: a test's own
 * .timeout makes Criterion leak a block, which fails the ASan run.) */
TestSuite(process_pool_payload_big, .init = pp_test_setup, .timeout = 170);
Test(process_pool_payload_big, sixty_four_mib_both_ways)
{
  int fds = count_fds();
  corio_executor *ex = pool_new(1, 0, NULL, 0);
  round_trip(ex, (size_t)64 << 20, 7);
  corio_executor_free(ex);
  cr_assert_eq(count_fds(), fds);
  assert_no_children();
}

/* Big payloads on several jobs in flight at once, mixed with small ones. */
Test(process_pool_payload, mixed_sizes_in_flight)
{
  enum { N = 40 };
  corio_executor *ex = pool_new(3, 0, NULL, 0);
  corio_future *f[N];
  uint8_t *in[N];
  size_t len[N], j;
  int i;
  for (i = 0; i < N; i++) {
    len[i] = (i % 4 == 0) ? ((size_t)300 << 10) + (size_t)i : (size_t)(i * 37);
    in[i] = pattern(len[i], (uint32_t)i + 100);
    f[i] = corio_executor_submit_bytes(ex, transform, in[i], len[i]);
  }
  cr_assert_eq(corio_futures_wait_all(f, N, 30), 0);
  for (i = 0; i < N; i++) {
    const corio_bytes *b = corio_future_bytes(f[i]);
    cr_assert_not_null(b, "%d: %s", i, corio_future_error_message(f[i]));
    cr_assert_eq(b->len, len[i]);
    for (j = 0; j < len[i]; j++)
      if (b->data[j] != (uint8_t)((in[i][j] ^ 0x5a) + 1)) cr_assert_fail("job %d byte %zu", i, j);
    corio_future_unref(f[i]);
    free(in[i]);
  }
  corio_executor_free(ex);
  assert_no_children();
}

/* A threshold above what one socket message can carry is capped, not an error. */
Test(process_pool_payload, huge_threshold_is_capped)
{
  corio_executor *ex = pool_new(1, 0, NULL, (size_t)16 << 20);
  round_trip(ex, (size_t)1 << 20, 3);
  round_trip(ex, 150000, 4);
  corio_executor_free(ex);
  assert_no_children();
}

/* A long error text comes back whole (corio_job_fail caps it at 1023 bytes). */
static void long_error(corio_job *job)
{
  char text[1100];
  memset(text, 'e', sizeof(text) - 1);
  text[sizeof(text) - 1] = 0;
  corio_job_fail(job, -EIO, "%s", text);
}

Test(process_pool_payload, long_error_text)
{
  corio_executor *ex = pool_new(1, 0, NULL, 0);
  corio_future *f = corio_executor_submit(ex, long_error, NULL);
  wait_done(f, 10);
  cr_assert_eq(corio_future_error(f), -EIO);
  cr_assert_eq(strlen(corio_future_error_message(f)), 1023);
  corio_future_unref(f);
  corio_executor_free(ex);
}
