/*
 * resolve — look host names up concurrently (c-ares through the loop) and print each one's
 * addresses or why it failed, then the total time: about the slowest lookup's, not the sum.
 *
 *     resolve [--server ADDR[:PORT]] [--timeout S] [-4|-6] NAME...
 *
 * Python (asyncio):
 *
 *     async def lookup(name):
 *         return await asyncio.wait_for(loop.getaddrinfo(name, None, type=SOCK_STREAM), timeout)
 *     results = await asyncio.gather(*(lookup(n) for n in names), return_exceptions=True)
 *
 * --server ADDR[:PORT] asks that DNS server only (e.g. 127.0.0.1:5353, [::1]:53; a comma list
 * works too) instead of the ones in /etc/resolv.conf; /etc/hosts is still read first, as
 * getaddrinfo does. --timeout S (default 5) gives up on a name after S seconds: corio_wait_for
 * cancels that lookup only. Exit status: 0 if every name resolved, 1 if one did not, 2 for a bad
 * command line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <corio.h>

struct main_task {
  corio_task task;
  char **names;
  int n, family;
  double timeout;
  double t0;
  int failed;
};

/* "a, b, c": each address once (the resolver may list one per socket type or record). */
static void print_addresses(const corio_addrinfo *list)
{
  const corio_addrinfo *a, *b;
  char buf[INET6_ADDRSTRLEN];
  const void *p;
  int first = 1;
  for (a = list; a; a = a->next) {
    for (b = list; b != a; b = b->next) /* printed already? */
      if (b->family == a->family && b->addrlen == a->addrlen &&
          memcmp(&b->addr, &a->addr, a->addrlen) == 0)
        break;
    if (b != a) continue;
    if (a->family == AF_INET)
      p = &((const struct sockaddr_in *)&a->addr)->sin_addr;
    else if (a->family == AF_INET6)
      p = &((const struct sockaddr_in6 *)&a->addr)->sin6_addr;
    else
      continue;
    if (!inet_ntop(a->family, p, buf, sizeof(buf))) continue;
    printf("%s%s", first ? "" : ", ", buf);
    first = 0;
  }
}

static corio_step main_step(corio_task *t)
{
  struct main_task *m = corio_container_of(t, struct main_task, task);
  struct addrinfo hints;
  corio_future **futs;
  corio_future *f;
  int i, err;

  CORIO_BEGIN(t);
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = m->family;
  hints.ai_socktype = SOCK_STREAM; /* one entry per address, not one per socket type */
  futs = calloc((size_t)m->n, sizeof(*futs));
  if (!futs) CORIO_THROW(t, -ENOMEM);
  /* every lookup starts now; each is cancelled if it takes longer than the timeout */
  for (i = 0; i < m->n; i++)
    futs[i] = corio_wait_for(corio_getaddrinfo(t->loop, m->names[i], NULL, &hints), m->timeout);
  f = corio_gather(futs, (size_t)m->n, CORIO_RETURN_EXCEPTIONS); /* consumes the futures */
  free(futs);
  CORIO_AWAIT_TRY(t, f);

  for (i = 0; i < m->n; i++) { /* in argument order, whatever order they finished in */
    f = corio_gather_child(corio_awaited(t), (size_t)i);
    err = corio_future_error(f);
    printf("%s: ", m->names[i]);
    if (err == 0) {
      print_addresses(corio_future_ptr(f));
    } else {
      m->failed++;
      if (err == -ETIMEDOUT)
        printf("error: no answer within %g s (timed out)", m->timeout);
      else if (strcmp(corio_future_error_message(f), corio_strerror(err)) != 0)
        printf("error: %s (%s: %s)", corio_strerror(err), corio_err_name(err),
               corio_future_error_message(f)); /* the resolver's own words too */
      else
        printf("error: %s (%s)", corio_strerror(err), corio_err_name(err));
    }
    printf("\n");
  }
  printf("%d names in %.3f s: %d resolved, %d failed\n", m->n, corio_loop_time(t->loop) - m->t0,
         m->n - m->failed, m->failed);
  CORIO_FINALLY(t);
  CORIO_END(t);
}

static int usage(const char *why)
{
  if (why) fprintf(stderr, "resolve: %s\n", why);
  fprintf(stderr, "usage: resolve [--server ADDR[:PORT]] [--timeout S] [-4|-6] NAME...\n");
  return 2;
}

int main(int argc, char **argv)
{
  corio_resolver_opts ro;
  struct main_task *m;
  corio_loop *loop;
  const char *server = NULL;
  double timeout = 5.0;
  int family = AF_UNSPEC, i, rc, closed, failed = 0;
  char *end;

  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
      server = argv[++i];
      if (!*server) return usage("--server needs an address, e.g. 127.0.0.1:53");
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
      timeout = strtod(argv[++i], &end);
      if (*end || !(timeout > 0) || !isfinite(timeout))
        return usage("--timeout needs a number of seconds > 0");
    } else if (strcmp(argv[i], "-4") == 0) {
      family = AF_INET;
    } else if (strcmp(argv[i], "-6") == 0) {
      family = AF_INET6;
    } else if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    } else {
      return usage(NULL);
    }
  }
  if (i == argc) return usage("no name to look up");

  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) {
    fprintf(stderr, "resolve: cannot create the loop: %s\n", corio_strerror(rc));
    return 1;
  }
  if (server) {
    /* Only this server: the system's resolvers are not asked at all. */
    memset(&ro, 0, sizeof(ro));
    ro.servers = server;
    rc = corio_resolver_configure(loop, &ro);
    if (rc < 0) {
      fprintf(stderr, "resolve: bad --server '%s' (%s): want ADDR[:PORT], e.g. 127.0.0.1:53\n",
              server, corio_strerror(rc));
      corio_loop_close(loop);
      return 2;
    }
  }
  m = corio_task_new(loop, main_step, struct main_task, task);
  rc = m ? 0 : -ENOMEM;
  if (m) {
    m->names = argv + i;
    m->n = argc - i;
    m->family = family;
    m->timeout = timeout;
    m->t0 = corio_loop_time(loop);
    rc = corio_task_start(&m->task);
  }
  if (rc == 0) rc = corio_loop_run_until_complete(loop, &m->task.fut);
  if (rc == 0) rc = corio_future_error(&m->task.fut);
  if (rc == 0) failed = m->failed;
  if (m) corio_future_unref(&m->task.fut);
  while (corio_loop_run_once(loop, 0.01) > 0) {
  }
  if (rc < 0) fprintf(stderr, "resolve: %s\n", corio_strerror(rc));
  closed = corio_loop_close(loop);
  if (closed != 0) fprintf(stderr, "resolve: corio_loop_close: %s\n", corio_strerror(closed));
  return rc < 0 || closed != 0 || failed > 0;
}
