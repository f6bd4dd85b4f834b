/*
 * graceful_workers — Port of a Python seed program (issue 4): worker threads stopped
 * gracefully through an event: each finishes the item it is on and exits; the main thread
 * waits for them with a timeout.
 *
 * Python (threading):
 *
 *     stop = threading.Event()
 *
 *     def worker(n):
 *         items = 0
 *         while not stop.is_set():
 *             handle(item)                          # 30 ms; never cut short
 *             items += 1
 *             if stop.wait(0.01):                   # a pause that the stop ends at once
 *                 break
 *         print(f"worker {n}: stopped after {items} items")
 *
 *     threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
 *     for t in threads: t.start()
 *     time.sleep(0.215)                             # mid-item, most likely
 *     stop.set()
 *     for t in threads: t.join(timeout=2.0)
 *     print("all stopped" if not any(t.is_alive() for t in threads) else "some still running")
 *
 * Plain threads, so the event is made of a pthread mutex and condition variable (corio_event
 * is for tasks on one loop). The check and the "start" line happen under the event's lock, and
 * so does set() with its own line: no item can start after "stop event set" is printed.
 * join(timeout) is pthread_timedjoin_np against one deadline for all the threads.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NWORKERS 4

/* threading.Event for threads */
struct event {
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC */
  int set;
};

static struct event stop;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct timespec deadline(clockid_t clock, double in_s)
{
  struct timespec ts;
  clock_gettime(clock, &ts);
  ts.tv_sec += (time_t)in_s;
  ts.tv_nsec += (long)((in_s - (double)(time_t)in_s) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

static void event_init(struct event *e)
{
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC); /* a clock change cannot stretch a wait */
  pthread_cond_init(&e->cv, &a);
  pthread_condattr_destroy(&a);
  pthread_mutex_init(&e->mu, NULL);
  e->set = 0;
}

/* stop.wait(timeout): 1 if the event is set (at once or within the timeout), else 0 */
static int event_wait(struct event *e, double timeout_s)
{
  struct timespec until = deadline(CLOCK_MONOTONIC, timeout_s);
  int set;
  pthread_mutex_lock(&e->mu);
  while (!e->set && pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT) {
  }
  set = e->set;
  pthread_mutex_unlock(&e->mu);
  return set;
}

static void handle_item(void)
{
  struct timespec ts = {0, 30 * 1000000L};
  nanosleep(&ts, NULL);
}

/* def worker(n) */
static void *worker(void *arg)
{
  int n = (int)(intptr_t)arg, items = 0;
  for (;;) {
    pthread_mutex_lock(&stop.mu);
    if (stop.set) {
      pthread_mutex_unlock(&stop.mu);
      break;
    }
    printf("worker %d: item %d start\n", n, items + 1);
    pthread_mutex_unlock(&stop.mu);
    handle_item();
    items++;
    pthread_mutex_lock(&stop.mu);
    printf("worker %d: item %d done%s\n", n, items, stop.set ? " (the stop came while on it)" : "");
    pthread_mutex_unlock(&stop.mu);
    if (event_wait(&stop, 0.01)) break;
  }
  printf("worker %d: stopped after %d items\n", n, items);
  return NULL;
}

int main(void)
{
  pthread_t th[NWORKERS];
  struct timespec join_by, pause = {0, 215 * 1000000L};
  double t_stop;
  int i, rc, started = 0, joined = 0;

  setvbuf(stdout, NULL, _IOLBF, 0);
  event_init(&stop);
  for (i = 0; i < NWORKERS; i++) {
    rc = pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    if (rc) {
      fprintf(stderr, "graceful_workers: pthread_create: %s\n", strerror(rc));
      break;
    }
    started++;
  }
  nanosleep(&pause, NULL);

  pthread_mutex_lock(&stop.mu); /* stop.set() */
  stop.set = 1;
  printf("main: stop event set\n");
  pthread_cond_broadcast(&stop.cv);
  pthread_mutex_unlock(&stop.mu);
  t_stop = now_s();

  join_by = deadline(CLOCK_REALTIME, 2.0); /* pthread_timedjoin_np takes CLOCK_REALTIME */
  for (i = 0; i < started; i++) {
    rc = pthread_timedjoin_np(th[i], NULL, &join_by);
    if (rc == 0)
      joined++;
    else
      printf("main: worker %d still running at the deadline (%s)\n", i, strerror(rc));
  }
  printf("main: %d of %d workers stopped within the 2.0 s timeout, %.3f s after the stop\n", joined,
         NWORKERS, now_s() - t_stop);
  if (joined < started) return 1; /* exiting ends the threads still running */
  pthread_cond_destroy(&stop.cv);
  pthread_mutex_destroy(&stop.mu);
  return joined != NWORKERS;
}
