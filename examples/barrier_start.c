/*
 * barrier_start — Port of a Python seed program (issue 4): a barrier fixes the start of the
 * workers: each prepares for a different time and says "ready"; none goes before all are ready.
 *
 * Python (threading):
 *
 *     barrier = threading.Barrier(5)
 *
 *     def worker(n):
 *         time.sleep(PREP[n])                       # 0.03, 0.09, 0.00, 0.06, 0.12
 *         print(f"worker {n} ready")
 *         if barrier.wait() == 0:                   # one thread gets index 0
 *             print("all 5 ready")
 *         print(f"worker {n} go")
 *
 * Plain threads, so a pthread_barrier_t (corio_barrier is for tasks on one loop: see
 * examples/barrier.c). pthread_barrier_wait returns PTHREAD_BARRIER_SERIAL_THREAD in exactly
 * one thread, like the index 0 of Barrier.wait. Neither has Barrier's `action` run before the
 * others are released, so the "all ready" line may come after another worker's "go".
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NWORKERS 5

static const double prep[NWORKERS] = {0.03, 0.09, 0.00, 0.06, 0.12}; /* ready as 2 0 3 1 4 */
static pthread_barrier_t barrier;
static double t0;
static struct timespec start; /* CLOCK_MONOTONIC at t0 */
static double went[NWORKERS];

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* def worker(n) */
static void *worker(void *arg)
{
  int n = (int)(intptr_t)arg, rc;
  struct timespec until = start;

  /* Sleep until start + prep[n], not for prep[n]: a thread that began late is not late twice. */
  until.tv_nsec += (long)(prep[n] * 1e9);
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
  }
  printf("worker %d ready at %.2f s\n", n, now_s() - t0);
  rc = pthread_barrier_wait(&barrier);
  went[n] = now_s() - t0;
  if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
    printf("all %d ready (said by worker %d)\n", NWORKERS, n);
  printf("worker %d go\n", n);
  return NULL;
}

int main(void)
{
  pthread_t th[NWORKERS];
  double first, last;
  int i, rc;

  /* A line per printf, as they happen, even into a pipe: the check reads the order. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  rc = pthread_barrier_init(&barrier, NULL, NWORKERS);
  if (rc) {
    fprintf(stderr, "barrier_start: pthread_barrier_init: %s\n", strerror(rc));
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &start);
  t0 = (double)start.tv_sec + (double)start.tv_nsec / 1e9;
  for (i = 0; i < NWORKERS; i++) {
    rc = pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    if (rc) { /* the others would wait at the barrier forever */
      fprintf(stderr, "barrier_start: pthread_create: %s\n", strerror(rc));
      return 1;
    }
  }
  for (i = 0; i < NWORKERS; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  first = last = went[0];
  for (i = 1; i < NWORKERS; i++) {
    if (went[i] < first) first = went[i];
    if (went[i] > last) last = went[i];
  }
  printf("all %d went between %.3f and %.3f s, after the slowest was ready (%.2f s)\n", NWORKERS,
         first, last, prep[4]);
  return 0;
}
