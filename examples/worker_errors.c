/*
 * worker_errors — Port of a Python seed program (issue 4): errors and log lines from workers,
 * seen by the parent: a job that fails with a message, in a thread pool and in a process pool,
 * and worker processes that crash (abort, segmentation fault). The pool keeps working.
 *
 * Python (concurrent.futures + logging):
 *
 *     def parse(rec):
 *         log.info("parsing %r", rec)               # multiprocessing.log_to_stderr()
 *         if not rec.isdigit():
 *             raise ValueError(f"bad record {rec!r}: not a number")
 *         return int(rec)
 *
 *     with ThreadPoolExecutor(2) as tp:
 *         try: tp.submit(parse, "4x2").result()
 *         except ValueError as e: print("thread pool:", e)
 *     with ProcessPoolExecutor(2) as pp:
 *         pp.submit(parse, "x").result()            # ValueError, pickled back to the parent
 *         pp.submit(os.abort).result()              # BrokenProcessPool: the whole pool is lost
 *
 * In corio a job fails with corio_job_fail(job, -errno, "text"): the future's error is the code,
 * corio_future_error_message() the text, whether the job ran in a thread or in a process. A
 * worker process that dies fails only the job it was running, with CORIO_E_WORKER_DIED and a
 * text naming the signal or exit status; a new worker takes over (Python would break the pool).
 * Log lines go to stderr, prefixed with the worker's pid and index like log_to_stderr's.
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <corio.h>

static void log_info(corio_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_info(corio_job *job, const char *fmt, ...)
{
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "[INFO/pid %ld worker %d] %s\n", (long)getpid(), corio_job_worker(job), line);
}

/* def parse(rec): the record arrives as bytes (not NUL-terminated) */
static void parse(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  int64_t v = 0;
  size_t i;
  log_info(job, "parsing '%.*s'", (int)in->len, (const char *)in->data);
  for (i = 0; i < in->len; i++) {
    if (!isdigit(in->data[i])) {
      corio_job_fail(job, -EINVAL, "bad record '%.*s': not a number", (int)in->len,
                     (const char *)in->data);
      return;
    }
    v = v * 10 + (in->data[i] - '0');
  }
  corio_job_return(job, v);
}

/* A crash leaves no core file behind. */
static void no_core(void)
{
  struct rlimit zero = {0, 0};
  setrlimit(RLIMIT_CORE, &zero);
}

static void calls_abort(corio_job *job)
{
  log_info(job, "about to abort()");
  no_core();
  abort();
}

static void bad_write(corio_job *job)
{
  volatile char *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  log_info(job, "about to write to a read-protected page");
  no_core();
  /* A sanitizer build catches SIGSEGV to print a report; die of the signal, as plain builds do. */
  signal(SIGSEGV, SIG_DFL);
  if (page != MAP_FAILED) page[0] = 1;
  corio_job_fail(job, -ENOMEM, "mmap failed: nothing to crash on");
}

/* Wait and print what became of a job: "what: value" or "what: ERRNAME: text". */
static int report(const char *what, corio_future *f)
{
  int rc = f ? corio_future_wait(f, 10) : -ENOMEM;
  if (rc == 0) rc = corio_future_error(f);
  if (rc == 0)
    printf("%s: ok, %lld\n", what, (long long)corio_future_int(f));
  else if (rc == -ETIMEDOUT && !corio_future_done(f))
    printf("%s: still running after 10 s\n", what);
  else
    printf("%s: %s: %s\n", what, corio_err_name(rc), f ? corio_future_error_message(f) : "");
  corio_future_unref(f);
  return rc;
}

int main(void)
{
  corio_thread_pool_opts topts = {.max_workers = 2};
  corio_process_pool_opts popts = {.max_workers = 2};
  corio_executor *tp = NULL, *pp = NULL;
  static const char *const records[] = {"17", "2024", "5"};
  int rc, i, ok = 0, bad = 0;

  setvbuf(stdout, NULL, _IOLBF, 0); /* workers inherit it: log and results in order */
  setvbuf(stderr, NULL, _IOLBF, 0);
  rc = corio_process_pool_new(&pp, &popts); /* before any thread of ours */
  if (rc == 0) rc = corio_thread_pool_new(&tp, &topts);
  if (rc < 0) {
    fprintf(stderr, "worker_errors: cannot create the pools: %s\n", corio_strerror(rc));
    if (pp) corio_executor_free(pp);
    return 1;
  }

  bad |= report("thread pool, parse '42'", corio_executor_submit_bytes(tp, parse, "42", 2)) != 0;
  bad |= report("thread pool, parse '4x2'", corio_executor_submit_bytes(tp, parse, "4x2", 3)) !=
         -EINVAL;
  bad |=
      report("process pool, parse 'x'", corio_executor_submit_bytes(pp, parse, "x", 1)) != -EINVAL;
  bad |= report("process pool, abort", corio_executor_submit(pp, calls_abort, NULL)) !=
         CORIO_E_WORKER_DIED;
  bad |= report("process pool, bad write", corio_executor_submit(pp, bad_write, NULL)) !=
         CORIO_E_WORKER_DIED;

  /* The process pool lost two workers and replaced them. */
  for (i = 0; i < 3; i++) {
    rc = report("process pool, after the crashes",
                corio_executor_submit_bytes(pp, parse, records[i], strlen(records[i])));
    ok += rc == 0;
  }
  printf("the process pool still works: %d of 3 jobs succeeded\n", ok);
  bad |= ok != 3;
  corio_executor_free(tp);
  corio_executor_free(pp);
  return bad;
}
