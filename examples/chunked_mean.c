/*
 * chunked_mean — Port of a Python seed program (issue 4): the mean of a large array computed by
 * a process pool over chunks (map with chunksize > 1), checked against the serial result.
 *
 * Python (multiprocessing):
 *
 *     def chunk_sum(chunk):                        # chunk: an array of doubles
 *         return sum(chunk), len(chunk)
 *
 *     data = array("d", (gen(i) for i in range(4 * 1024 * 1024)))
 *     chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)]
 *     with Pool(4) as pool:
 *         parts = pool.map(chunk_sum, chunks, chunksize=4)
 *     mean = sum(s for s, n in parts) / sum(n for s, n in parts)
 *     print(mean, statistics.fmean(data))
 *
 * Each chunk goes to a worker as bytes (512 KiB: through the worker's shared window, one copy)
 * and comes back as 16 bytes, a partial sum and a count; chunksize 4 sends four chunks per round
 * trip. The partial sums add up in another order than the serial loop, so the two means may
 * differ in the last bits: they must agree within 1e-9, relatively.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <corio.h>

#define NVALUES   (4u * 1024 * 1024)
#define CHUNK     65536u
#define NCHUNKS   (NVALUES / CHUNK)
#define CHUNKSIZE 4

struct partial {
  double sum;
  int64_t n;
};

/* A deterministic, uneven series in [0, 10): a multiplicative hash of the index. */
static double gen(uint32_t i)
{
  uint32_t h = i * 2654435761u;
  h ^= h >> 15;
  return (double)(h % 1000003u) / 100000.3;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* def chunk_sum(chunk) */
static void chunk_sum(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  struct partial p = {0, (int64_t)(in->len / sizeof(double))};
  double v;
  int64_t i;
  for (i = 0; i < p.n; i++) {
    memcpy(&v, in->data + i * sizeof(double), sizeof(v)); /* the input may be unaligned */
    p.sum += v;
  }
  corio_job_return_bytes(job, &p, sizeof(p));
}

int main(void)
{
  corio_process_pool_opts opts = {.max_workers = 4};
  corio_executor *pool;
  corio_future **out = NULL;
  corio_bytes *chunks = NULL;
  double *data = NULL, serial = 0, total = 0, mean_pool, mean_serial, rel, t0, t_pool, t_serial;
  struct partial p;
  int64_t count = 0;
  uint32_t i;
  int rc, mapped = 0;

  /* The pool first: the workers need not inherit the 32 MiB. */
  rc = corio_process_pool_new(&pool, &opts);
  if (rc < 0) {
    fprintf(stderr, "chunked_mean: cannot create the pool: %s\n", corio_strerror(rc));
    return 1;
  }
  data = malloc(NVALUES * sizeof(*data));
  chunks = calloc(NCHUNKS, sizeof(*chunks));
  out = calloc(NCHUNKS, sizeof(*out));
  if (!data || !chunks || !out) {
    rc = -ENOMEM;
    goto done;
  }
  for (i = 0; i < NVALUES; i++) data[i] = gen(i);
  for (i = 0; i < NCHUNKS; i++)
    chunks[i] = (corio_bytes){(uint8_t *)(data + (size_t)i * CHUNK), CHUNK * sizeof(double)};
  printf("data: %u doubles (%u MiB) in %u chunks of %u, map chunksize %d\n", NVALUES,
         (unsigned)(NVALUES * sizeof(double) >> 20), NCHUNKS, CHUNK, CHUNKSIZE);

  t0 = now_s();
  rc = corio_executor_map(pool, chunk_sum, chunks, NCHUNKS, CHUNKSIZE, out);
  mapped = rc == 0;
  if (rc == 0) rc = corio_futures_wait_all(out, NCHUNKS, 30);
  for (i = 0; rc == 0 && i < NCHUNKS; i++) {
    rc = corio_future_error(out[i]);
    if (rc < 0 || corio_future_bytes(out[i])->len != sizeof(p)) {
      fprintf(stderr, "chunk %u: %s\n", i, rc < 0 ? corio_future_error_message(out[i]) : "?");
      rc = rc < 0 ? rc : -EPROTO;
      break;
    }
    memcpy(&p, corio_future_bytes(out[i])->data, sizeof(p));
    total += p.sum;
    count += p.n;
  }
  t_pool = now_s() - t0;
  if (rc < 0) goto done;

  t0 = now_s();
  for (i = 0; i < NVALUES; i++) serial += data[i];
  t_serial = now_s() - t0;

  mean_pool = total / (double)count;
  mean_serial = serial / NVALUES;
  rel = mean_pool > mean_serial ? mean_pool - mean_serial : mean_serial - mean_pool;
  rel /= mean_serial;
  printf("mean over %lld values (process pool): %.15f\n", (long long)count, mean_pool);
  printf("mean over %u values (serial):       %.15f\n", NVALUES, mean_serial);
  printf("relative difference %.1e: %s\n", rel, rel <= 1e-9 ? "match" : "MISMATCH");
  /* A sum is too little work per byte to gain from processes: the time goes into copying the
   * chunks to the workers. The pool pays off when each chunk needs real computation. */
  printf("time: pool %.3f s (copying included), serial %.3f s\n", t_pool, t_serial);
  if (rel > 1e-9) rc = -EDOM;
done:
  for (i = 0; mapped && i < NCHUNKS; i++) corio_future_unref(out[i]);
  corio_executor_free(pool);
  free(out);
  free(chunks);
  free(data);
  if (rc < 0) fprintf(stderr, "chunked_mean: %s\n", corio_strerror(rc));
  return rc < 0;
}
