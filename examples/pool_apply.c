/*
 * pool_apply — Port of a Python seed program (issue 4): the multiprocessing.Pool calls on a
 * process pool: apply, apply_async with a callback, map (chunked), imap and starmap.
 *
 * Python (multiprocessing):
 *
 *     def square(x): return x * x
 *     def slow_square(x): time.sleep((5 - x) * 0.02); return x * x
 *     def power(base, exp): return base ** exp
 *
 *     with Pool(4) as pool:
 *         print("apply:", pool.apply(square, (10,)))
 *         pool.apply_async(square, (7,), callback=lambda r: print("callback:", r)).wait()
 *         print("map:", pool.map(square, range(10), chunksize=3))
 *         for r in pool.imap(slow_square, range(6)):     # in order, each as soon as it is ready
 *             print("imap:", r)
 *         print("starmap:", pool.starmap(power, [(2, 10), (3, 4), (10, 3), (7, 0)]))
 *
 * Arguments and results cross the process boundary as bytes: an int64 for square, a packed
 * struct for starmap's argument tuples. apply is submit + wait; apply_async is submit + a done
 * callback (it runs in the pool's manager thread, so it hands the value over under a lock);
 * map and imap are corio_executor_map, whose futures come back in input order: map waits for
 * them all, imap takes each as soon as it is done.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <corio.h>

static int64_t input_i64(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  int64_t v = 0;
  if (in->len == sizeof(v)) memcpy(&v, in->data, sizeof(v));
  return v;
}

/* def square(x) */
static void square(corio_job *job)
{
  int64_t x = input_i64(job);
  corio_job_return(job, x * x);
}

/* def slow_square(x): the later inputs finish first */
static void slow_square(corio_job *job)
{
  int64_t x = input_i64(job);
  usleep((useconds_t)(5 - x) * 20000);
  corio_job_return(job, x * x);
}

/* def power(base, exp): its argument tuple, packed */
struct power_args {
  int64_t base, exp;
};

static void power(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  struct power_args a;
  int64_t r = 1;
  if (in->len != sizeof(a)) {
    corio_job_fail(job, -EINVAL, "power: expected %zu bytes of arguments, got %zu", sizeof(a),
                   in->len);
    return;
  }
  memcpy(&a, in->data, sizeof(a));
  while (a.exp-- > 0) r *= a.base;
  corio_job_return(job, r);
}

/* apply_async's callback and the main thread's wait for it */
static pthread_mutex_t cb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cb_cv = PTHREAD_COND_INITIALIZER;
static int cb_called;
static int64_t cb_value;

static void on_result(corio_future *f, void *arg)
{
  (void)arg;
  pthread_mutex_lock(&cb_mu);
  cb_value = corio_future_error(f) == 0 ? corio_future_int(f) : -1;
  cb_called = 1;
  pthread_cond_signal(&cb_cv);
  pthread_mutex_unlock(&cb_mu);
}

/* pool.map / pool.starmap: map, wait for all, print "name: [a, b, ...]". 0, or an error. */
static int map_and_print(corio_executor *pool, const char *name, corio_job_fn fn,
                         const corio_bytes *in, size_t n, size_t chunksize)
{
  corio_future *out[16];
  size_t i;
  int rc = n <= 16 ? corio_executor_map(pool, fn, in, n, chunksize, out) : -EINVAL;
  if (rc < 0) return rc; /* nothing was submitted */
  rc = corio_futures_wait_all(out, n, 10);
  for (i = 0; rc == 0 && i < n; i++) rc = corio_future_error(out[i]);
  if (rc == 0) {
    printf("%s: [", name);
    for (i = 0; i < n; i++) printf("%s%lld", i ? ", " : "", (long long)corio_future_int(out[i]));
    printf("]\n");
  } else {
    printf("%s: %s\n", name, i ? corio_future_error_message(out[i - 1]) : corio_strerror(rc));
  }
  for (i = 0; i < n; i++) corio_future_unref(out[i]); /* a job still running keeps its own */
  return rc;
}

int main(void)
{
  corio_process_pool_opts opts = {.max_workers = 4};
  corio_executor *pool;
  corio_future *f, *out[6];
  corio_bytes in[10];
  int64_t x[10];
  struct power_args args[4] = {{2, 10}, {3, 4}, {10, 3}, {7, 0}};
  int i, rc, bad = 0;

  rc = corio_process_pool_new(&pool, &opts);
  if (rc < 0) {
    fprintf(stderr, "pool_apply: cannot create the pool: %s\n", corio_strerror(rc));
    return 1;
  }
  for (i = 0; i < 10; i++) {
    x[i] = i;
    in[i] = (corio_bytes){(uint8_t *)&x[i], sizeof(x[i])};
  }

  /* pool.apply(square, (10,)): submit and wait */
  f = corio_executor_submit_bytes(pool, square, &(int64_t){10}, sizeof(int64_t));
  if (!f || corio_future_wait(f, 10) < 0 || corio_future_error(f) != 0) bad = 1;
  printf("apply: %lld\n", f ? (long long)corio_future_int(f) : -1LL);
  corio_future_unref(f);

  /* pool.apply_async(square, (7,), callback=...) */
  f = corio_executor_submit_bytes(pool, square, &(int64_t){7}, sizeof(int64_t));
  if (!f || corio_future_add_done_callback(f, on_result, NULL) < 0) bad = 1;
  corio_future_unref(f); /* the callback still runs: the pool holds the job's reference */
  pthread_mutex_lock(&cb_mu);
  while (!bad && !cb_called) pthread_cond_wait(&cb_cv, &cb_mu);
  printf("apply_async: callback got %lld\n", (long long)cb_value);
  pthread_mutex_unlock(&cb_mu);

  /* pool.map(square, range(10), chunksize=3): 4 round trips to the workers instead of 10 */
  rc = map_and_print(pool, "map", square, in, 10, 3);

  /* pool.imap(slow_square, range(6)): in input order, each taken as soon as it is done */
  if (rc == 0 && (rc = corio_executor_map(pool, slow_square, in, 6, 1, out)) == 0) {
    for (i = 0; i < 6; i++) {
      if (rc == 0 && (rc = corio_future_wait(out[i], 10)) == 0 &&
          (rc = corio_future_error(out[i])) == 0)
        printf("imap: %lld\n", (long long)corio_future_int(out[i]));
      corio_future_unref(out[i]); /* all of them, also after an error */
    }
  }

  /* pool.starmap(power, [(2, 10), (3, 4), (10, 3), (7, 0)]) */
  for (i = 0; i < 4; i++) in[i] = (corio_bytes){(uint8_t *)&args[i], sizeof(args[i])};
  if (rc == 0) rc = map_and_print(pool, "starmap", power, in, 4, 2);

  /* a malformed argument tuple: a clear error, and the pool goes on */
  if (rc == 0) {
    f = corio_executor_submit_bytes(pool, power, "xyz", 3);
    if (f && corio_future_wait(f, 10) == 0)
      printf("bad tuple: %s: %s\n", corio_err_name(corio_future_error(f)),
             corio_future_error_message(f));
    corio_future_unref(f);
  }

  corio_executor_free(pool);
  if (rc < 0) fprintf(stderr, "pool_apply: %s\n", corio_strerror(rc));
  return bad || rc < 0;
}
