/*
 * game_server — "prime race", a multiplayer line-based game over TCP: one task per client,
 * shared game state, broadcasts, clean disconnects; optionally the CPU-heavy move checks in a
 * process pool.
 *
 * Players claim primes: `claim 1000000007` scores the number of digits (10) if the number is
 * prime and nobody claimed it first. Checking a claim is the expensive part (trial division, up
 * to about a second for an 18-digit prime). `say TEXT` chats with the others, `scores` shows
 * the board, `quit` leaves. Try it with `nc 127.0.0.1 PORT`.
 *
 * The classic Python seed forks a process per client (socketserver.ForkingTCPServer), which makes
 * shared state and broadcasts hard. The asyncio shape keeps one task per client on one thread,
 * so the state needs no lock, and sends only the heavy work to other processes:
 *
 *     async def player(reader, writer):
 *         name = (await reader.readline()).strip().decode()
 *         players[name] = writer; broadcast(f"* {name} joined", but=name)
 *         while line := await reader.readline():
 *             cmd, _, arg = line.decode().strip().partition(" ")
 *             if cmd == "claim":
 *                 factor = await loop.run_in_executor(pool, smallest_factor, int(arg))
 *                 ...settle the claim, broadcast it...
 *             writer.write(reply.encode()); await writer.drain()
 *         ...
 *     server = await asyncio.start_server(player, "127.0.0.1", 0)
 *
 * Without --pool the check runs inline, on the loop thread: while one claim is checked, every
 * other client waits (no chat is relayed). With --pool N it runs in a worker process
 * (corio_executor_submit_bytes), the client's task awaits the future, and the loop keeps serving
 * everybody else. Two players claiming the same prime at once are both checked; whichever check
 * finishes first takes it (the state changes only on the loop thread, so no lock is needed).
 *
 *     game_server [--port P] [--pool N]      stop it with SIGINT or SIGTERM
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

#define MAX_CLAIM  1000000000000000000ULL /* 10^18: a prime this size takes ~1 s to check */
#define LINE_LIMIT 1024                   /* a longer line disconnects the client */
#define NAME_MAX_  16
#define SLOW_LIMIT (256 * 1024) /* a client this far behind on broadcasts is dropped */

/* The expensive move check: the smallest factor of n (n itself when n is prime), by trial
 * division with the 6k +/- 1 wheel. Pure CPU, about sqrt(n)/3 divisions. */
static uint64_t smallest_factor(uint64_t n)
{
  uint64_t f;
  if (n % 2 == 0) return 2;
  if (n % 3 == 0) return 3;
  for (f = 5; f <= n / f; f += 6) {
    if (n % f == 0) return f;
    if (n % (f + 2) == 0) return f + 2;
  }
  return n;
}

/* The same, as a process pool job: input and result travel as bytes / an integer. */
static void factor_job(corio_job *job)
{
  const corio_bytes *in = corio_job_input(job);
  uint64_t n;
  if (in->len != sizeof(n)) {
    corio_job_fail(job, -EINVAL, "factor_job wants %zu bytes, got %zu", sizeof(n), in->len);
    return;
  }
  memcpy(&n, in->data, sizeof(n));
  corio_job_return(job, (int64_t)smallest_factor(n));
}

/* ---- the shared game state (touched only on the loop thread) ---- */

struct entry { /* the board: one per name ever seen; a returning name keeps its score */
  char name[NAME_MAX_ + 1];
  long score;
  int online;
};

struct claim {
  uint64_t n;
  int owner; /* board index */
};

struct player;

struct game {
  corio_loop *loop;
  corio_executor *pool; /* NULL: check claims inline */
  unsigned workers;
  corio_server *srv;
  struct player *players; /* every open connection, named or not */
  int nconn, nonline, served;
  long checked;
  struct entry *board;
  int nboard;
  struct claim *claims;
  int nclaims;
  int stopping;
  corio_event *stop, *idle; /* a signal arrived; the last connection is gone */
};

struct player {
  corio_task task;
  struct game *g;
  corio_stream *s;
  struct player *prev, *next;
  int entry; /* board index once named, else -1 */
  int quit;
  uint64_t n; /* the claim being checked */
  double started;
  char line[LINE_LIMIT + 1];
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

static const char *pname(const struct player *p)
{
  return p->entry >= 0 ? p->g->board[p->entry].name : "(unnamed)";
}

/* Queue a line for one client and return the drain future to await. */
static corio_future *reply(struct player *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static corio_future *reply(struct player *p, const char *fmt, ...)
{
  char buf[LINE_LIMIT + 128];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  return corio_stream_write_all(p->s, buf, (size_t)n); /* copies buf */
}

/* Send a line to every named player except @p from. Broadcasts are not drained one by one
 * (that would make everybody wait for the slowest reader); a reader so slow that its buffer
 * passes SLOW_LIMIT is disconnected instead of buffered without bound. */
static void broadcast(struct game *g, const struct player *from, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void broadcast(struct game *g, const struct player *from, const char *fmt, ...)
{
  char buf[LINE_LIMIT + 128];
  corio_transport *tr;
  struct player *p;
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  for (p = g->players; p; p = p->next) {
    if (p == from || p->entry < 0) continue;
    tr = corio_stream_transport(p->s);
    if (!tr) continue; /* connection lost: its task is on its way out */
    if (corio_transport_get_write_buffer_size(tr) > SLOW_LIMIT) {
      logf_("%s is too slow to keep up: disconnecting", pname(p));
      corio_transport_abort(tr);
      continue;
    }
    corio_stream_write(p->s, buf, (size_t)n); /* an error means lost: its own task notices */
  }
}

/* "name1 score1, name2 score2" sorted by score, then name. */
static void board_text(const struct game *g, char *buf, size_t cap)
{
  int *order = malloc(sizeof(int) * (size_t)(g->nboard ? g->nboard : 1));
  int i, j, k;
  size_t len = 0;
  buf[0] = '\0';
  if (!order) return;
  for (i = 0; i < g->nboard; i++) order[i] = i;
  for (i = 1; i < g->nboard; i++) { /* insertion sort: a handful of players */
    k = order[i];
    for (j = i - 1; j >= 0; j--) {
      const struct entry *a = &g->board[order[j]], *b = &g->board[k];
      if (a->score > b->score || (a->score == b->score && strcmp(a->name, b->name) <= 0)) break;
      order[j + 1] = order[j];
    }
    order[j + 1] = k;
  }
  for (i = 0; i < g->nboard && len < cap; i++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s %ld", i ? ", " : "",
                            g->board[order[i]].name, g->board[order[i]].score);
  free(order);
}

static int valid_name(const char *s)
{
  size_t i, n = strlen(s);
  if (n < 1 || n > NAME_MAX_) return 0;
  for (i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_') return 0;
  return 1;
}

/* Take the name: -1 invalid, -2 taken by an online player, else the board index. */
static int join(struct game *g, const char *name)
{
  struct entry *e;
  int i;
  if (!valid_name(name)) return -1;
  for (i = 0; i < g->nboard; i++) {
    if (strcmp(g->board[i].name, name) != 0) continue;
    if (g->board[i].online) return -2;
    g->board[i].online = 1;
    return i;
  }
  e = realloc(g->board, sizeof(*e) * (size_t)(g->nboard + 1));
  if (!e) return -ENOMEM;
  g->board = e;
  e = &g->board[g->nboard];
  memset(e, 0, sizeof(*e));
  strcpy(e->name, name);
  e->online = 1;
  return g->nboard++;
}

static const struct claim *find_claim(const struct game *g, uint64_t n)
{
  int i;
  for (i = 0; i < g->nclaims; i++)
    if (g->claims[i].n == n) return &g->claims[i];
  return NULL;
}

static int digits(uint64_t n)
{
  int d = 1;
  while (n >= 10) n /= 10, d++;
  return d;
}

/* Parse "claim N": 0 and p->n set, or -1. */
static int parse_claim(struct player *p, const char *arg)
{
  char *end;
  unsigned long long v;
  if (!isdigit((unsigned char)*arg)) return -1;
  errno = 0;
  v = strtoull(arg, &end, 10);
  if (errno || *end || v < 2 || v > MAX_CLAIM) return -1;
  p->n = v;
  return 0;
}

/* The check is done: update the shared state, tell everybody; returns the claimer's reply
 * (queued, the caller drains it). */
static corio_future *settle_claim(struct player *p, uint64_t factor)
{
  struct game *g = p->g;
  const struct claim *c = find_claim(g, p->n);
  struct entry *e = &g->board[p->entry];
  struct claim *nc;
  int pts = digits(p->n);
  double took = corio_loop_time(g->loop) - p->started;
  g->checked++;
  logf_("checked %llu for %s in %.3f s (%s): %s", (unsigned long long)p->n, e->name, took,
        g->pool ? "in a worker" : "on the loop thread",
        factor != p->n ? "not prime"
        : c            ? "prime, claimed meanwhile"
                       : "prime");
  if (factor != p->n)
    return reply(p, "%llu is not prime: %llu x %llu", (unsigned long long)p->n,
                 (unsigned long long)factor, (unsigned long long)(p->n / factor));
  if (c) /* somebody else's check of the same number finished first */
    return reply(p, "%llu was claimed by %s", (unsigned long long)p->n, g->board[c->owner].name);
  nc = realloc(g->claims, sizeof(*nc) * (size_t)(g->nclaims + 1));
  if (!nc) return reply(p, "error: out of memory");
  g->claims = nc;
  g->claims[g->nclaims].n = p->n;
  g->claims[g->nclaims].owner = p->entry;
  g->nclaims++;
  e->score += pts;
  logf_("%s claimed %llu: +%d, %s has %ld", e->name, (unsigned long long)p->n, pts, e->name,
        e->score);
  broadcast(g, p, "* %s claimed %llu: +%d points, %s has %ld", e->name, (unsigned long long)p->n,
            pts, e->name, e->score);
  return reply(p, "%llu is prime: +%d points, %s has %ld", (unsigned long long)p->n, pts, e->name,
               e->score);
}

/* Every command but claim: returns the reply future (NULL when there is nothing to say). */
static corio_future *command(struct player *p, const char *cmd, const char *arg)
{
  struct game *g = p->g;
  char buf[LINE_LIMIT];
  if (strcmp(cmd, "say") == 0) {
    if (*arg) broadcast(g, p, "<%s> %s", pname(p), arg);
    return NULL;
  }
  if (strcmp(cmd, "scores") == 0) {
    board_text(g, buf, sizeof(buf));
    return reply(p, "scores: %s", buf);
  }
  if (strcmp(cmd, "quit") == 0) {
    p->quit = 1;
    return reply(p, "bye %s: %ld points", pname(p), g->board[p->entry].score);
  }
  if (strcmp(cmd, "help") == 0) return reply(p, "commands: claim N, say TEXT, scores, quit");
  return reply(p, "error: unknown command '%.32s' (claim N, say TEXT, scores, quit)", cmd);
}

/* Copy a line out of the awaited bytes, without its "\n" / "\r\n". 0 at EOF. */
static int take_line(struct player *p, corio_future *f)
{
  const corio_bytes *b = corio_future_bytes(f);
  size_t n = b->len;
  if (n == 0) return 0;
  while (n && (b->data[n - 1] == '\n' || b->data[n - 1] == '\r')) n--;
  memcpy(p->line, b->data, n);
  p->line[n] = '\0';
  return 1;
}

static void players_remove(struct game *g, struct player *p)
{
  if (p->prev)
    p->prev->next = p->next;
  else
    g->players = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

/* The task serving one client. */
static corio_step player_step(corio_task *t)
{
  struct player *p = corio_container_of(t, struct player, task);
  struct game *g = p->g;
  corio_future *f;
  char *arg, list[LINE_LIMIT];
  struct player *q;
  size_t len;
  int err, idx;
  uint64_t factor;

  CORIO_BEGIN(t);
  corio_stream_set_limit(p->s, LINE_LIMIT);
  CORIO_AWAIT_TRY(t, reply(p, "welcome to prime race: claim primes, each scores its number of "
                              "digits. your name?"));
  while (p->entry < 0) {
    CORIO_AWAIT_TRY(t, corio_stream_readline(p->s));
    if (!take_line(p, corio_awaited(t))) break; /* left before giving a name */
    idx = join(g, p->line);
    if (idx == -ENOMEM) CORIO_THROW(t, -ENOMEM);
    if (idx < 0) {
      if (idx == -2)
        f = reply(p, "error: %s is taken, another name?", p->line);
      else
        f = reply(p, "error: a name is 1-16 letters, digits, - or _; another name?");
      CORIO_AWAIT_TRY(t, f);
      continue;
    }
    p->entry = idx;
    g->nonline++;
    g->served++;
    list[0] = '\0';
    len = 0;
    for (q = g->players; q; q = q->next)
      if (q->entry >= 0 && len < sizeof(list))
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", pname(q));
    logf_("%s joined (%d online)", pname(p), g->nonline);
    broadcast(g, p, "* %s joined", pname(p));
    CORIO_AWAIT_TRY(t, reply(p, "hello %s! online: %s. commands: claim N, say TEXT, scores, quit",
                             pname(p), list));
  }

  while (p->entry >= 0 && !p->quit) {
    CORIO_AWAIT_TRY(t, corio_stream_readline(p->s));
    if (!take_line(p, corio_awaited(t))) break; /* EOF: the client went away */
    arg = strchr(p->line, ' ');
    if (arg)
      *arg++ = '\0';
    else
      arg = p->line + strlen(p->line);
    if (strcmp(p->line, "claim") != 0) {
      f = command(p, p->line, arg);
      if (f) CORIO_AWAIT_TRY(t, f);
      continue;
    }
    if (parse_claim(p, arg) < 0) {
      CORIO_AWAIT_TRY(
          t, reply(p, "error: claim a whole number from 2 to %llu", (unsigned long long)MAX_CLAIM));
      continue;
    }
    if (find_claim(g, p->n)) { /* cheap, so refuse before the expensive check */
      CORIO_AWAIT_TRY(t, reply(p, "%llu was claimed by %s", (unsigned long long)p->n,
                               g->board[find_claim(g, p->n)->owner].name));
      continue;
    }
    p->started = corio_loop_time(t->loop);
    if (g->pool) {
      /* The worker computes; this task waits; the loop serves everybody else meanwhile. */
      CORIO_AWAIT(t, corio_executor_submit_bytes(g->pool, factor_job, &p->n, sizeof(p->n)));
      err = corio_future_error(corio_awaited(t));
      if (err < 0) {
        logf_("checking %llu for %s failed: %s", (unsigned long long)p->n, pname(p),
              corio_future_error_message(corio_awaited(t)));
        CORIO_AWAIT_TRY(t, reply(p, "error: could not check %llu: %s", (unsigned long long)p->n,
                                 corio_future_error_message(corio_awaited(t))));
        continue;
      }
      factor = (uint64_t)corio_future_int(corio_awaited(t));
    } else {
      factor = smallest_factor(p->n); /* blocks the loop thread, and so every client */
    }
    CORIO_AWAIT_TRY(t, settle_claim(p, factor));
  }

  CORIO_FINALLY(t);
  err = corio_task_catch(t); /* a client's error ends that client only */
  players_remove(g, p);
  if (p->entry >= 0) {
    g->board[p->entry].online = 0;
    g->nonline--;
    if (err)
      logf_("%s disconnected: %s (%d online)", pname(p), corio_strerror(err), g->nonline);
    else
      logf_("%s left with %ld points (%d online)", pname(p), g->board[p->entry].score, g->nonline);
    broadcast(g, p, "* %s left with %ld points", pname(p), g->board[p->entry].score);
  }
  CORIO_AWAIT(t, corio_stream_close(p->s)); /* flushes what was queued, then closes */
  if (--g->nconn == 0 && g->stopping) corio_event_set(g->idle);
  CORIO_END(t);
}

static void on_connection(corio_stream *s, void *arg)
{
  struct game *g = arg;
  struct player *p = corio_task_new(g->loop, player_step, struct player, task);
  if (!p) {
    corio_future_unref(corio_stream_close(s));
    return;
  }
  p->g = g;
  p->s = s;
  p->entry = -1;
  p->next = g->players;
  if (g->players) g->players->prev = p;
  g->players = p;
  g->nconn++;
  corio_task_start(&p->task);
  corio_future_unref(&p->task.fut); /* the loop keeps it until it is done */
}

static void on_signal(corio_loop *loop, int signo, void *arg)
{
  struct game *g = arg;
  (void)loop;
  logf_("received %s", signo == SIGINT ? "SIGINT" : "SIGTERM");
  corio_event_set(g->stop);
}

struct main_task {
  corio_task task;
  struct game *g;
  uint16_t port;
  int handlers;
};

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  struct game *g = m->g;
  char buf[LINE_LIMIT];

  CORIO_BEGIN(t);
  g->stop = corio_event_new(t->loop);
  g->idle = corio_event_new(t->loop);
  if (!g->stop || !g->idle) CORIO_THROW(t, -ENOMEM);
  CORIO_TRY(t, corio_add_signal_handler(t->loop, SIGTERM, on_signal, g));
  m->handlers++;
  CORIO_TRY(t, corio_add_signal_handler(t->loop, SIGINT, on_signal, g));
  m->handlers++;
  CORIO_TRY(t, corio_start_server(t->loop, "127.0.0.1", m->port, on_connection, g, NULL, &g->srv));
  if (g->pool)
    logf_("prime race on 127.0.0.1:%u, claims checked in a process pool of %u workers",
          corio_server_port(g->srv), g->workers);
  else
    logf_("prime race on 127.0.0.1:%u, claims checked inline on the loop thread",
          corio_server_port(g->srv));

  CORIO_AWAIT_TRY(t, corio_event_wait(g->stop));
  g->stopping = 1;
  logf_("stopping: %d connections open", g->nconn);
  broadcast(g, NULL, "* the server is stopping");
  /* Close the listener and every connection (after flushing): each player's task then reads
   * EOF, runs its FINALLY and goes. */
  CORIO_AWAIT_TRY(t, corio_server_close(g->srv, 1));
  g->srv = NULL;
  if (g->nconn > 0) CORIO_AWAIT_TRY(t, corio_event_wait(g->idle));
  board_text(g, buf, sizeof(buf));
  logf_("final scores: %s", g->nboard ? buf : "(nobody played)");
  logf_("stopped: %d players served, %ld claims checked", g->served, g->checked);
  CORIO_FINALLY(t);
  if (g->srv) { /* after an error: still close every connection and wait for its task */
    g->stopping = 1;
    CORIO_AWAIT(t, corio_server_close(g->srv, 1));
    if (g->nconn > 0) CORIO_AWAIT(t, corio_event_wait(g->idle));
  }
  if (m->handlers > 1) corio_remove_signal_handler(t->loop, SIGINT);
  if (m->handlers > 0) corio_remove_signal_handler(t->loop, SIGTERM);
  CORIO_END(t);
}

static int usage(void)
{
  fprintf(stderr, "usage: game_server [--port P] [--pool WORKERS]\n");
  return 2;
}

int main(int argc, char **argv)
{
  struct game g;
  struct main_task *m;
  corio_process_pool_opts po;
  corio_loop *loop = NULL;
  long port = 0, workers = 0;
  char *end;
  int i, rc, closed;

  memset(&g, 0, sizeof(g));
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      port = strtol(argv[++i], &end, 10);
      if (*end || port < 0 || port > 65535) return usage();
    } else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc) {
      workers = strtol(argv[++i], &end, 10);
      if (*end || workers < 1 || workers > 64) return usage();
    } else {
      return usage();
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* a supervisor reading our log sees each line at once */

  /* The pool first: its fork server is then a fork of a single-threaded process, and workers
   * inherit no blocked signals (the loop's signal handlers block SIGINT/SIGTERM). */
  if (workers) {
    memset(&po, 0, sizeof(po));
    po.max_workers = (unsigned)workers;
    rc = corio_process_pool_new(&g.pool, &po);
    if (rc < 0) {
      fprintf(stderr, "game_server: cannot start the process pool: %s\n", corio_strerror(rc));
      return 1;
    }
    g.workers = (unsigned)workers;
  }
  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "game_server: cannot create the loop: %s\n", corio_strerror(rc));
    if (g.pool) corio_executor_free(g.pool);
    return 1;
  }
  g.loop = loop;
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? 0 : -ENOMEM;
  if (m) {
    m->g = &g;
    m->port = (uint16_t)port;
    rc = corio_task_start(&m->task);
  }
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (m) corio_future_unref(&m->task.fut);
  if (rc < 0) fprintf(stderr, "game_server: %s\n", corio_strerror(rc));
  if (g.stop) corio_event_free(g.stop);
  if (g.idle) corio_event_free(g.idle);
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "game_server: corio_loop_close: %s\n", corio_strerror(closed));
  if (g.pool) corio_executor_free(g.pool);
  free(g.board);
  free(g.claims);
  return rc < 0 || closed != 0;
}
