/*
 * Connecting by host name: resolve, then happy eyeballs (RFC 8305).
 *
 * Addresses are interleaved by family, starting with the family of the resolver's first address
 * (RFC 8305 section 4: the resolver sorted them by RFC 6724, so that family is the preferred
 * one), then the other, then the first again, ... (the resolver's order within a family). An
 * attempt starts at once, and the next one every `delay` seconds, or as soon as the running ones
 * have all failed. The first attempt that connects wins: only its transport is started
 * (connection_made on the user's protocol); every other attempt is cancelled, and one that connects
 * anyway is discarded without any callback.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include "transport_impl.h"

#define MAX_ATTEMPTS 16

struct he {
  corio_future fut; /* outer: the winning transport */
  corio_loop *loop;
  const corio_protocol *proto;
  void *user;
  double delay;
  corio_future *dns;
  const corio_addrinfo *order[MAX_ATTEMPTS];
  int naddrs, next;
  corio_future *att[MAX_ATTEMPTS];
  int running, last_err;
  corio_handle timer;
  bool finished;
};

static void he_start_next(struct he *h);

size_t corio__he_order(const corio_addrinfo *list, const corio_addrinfo **out, size_t max)
{
  const corio_addrinfo *a, *fam[2][MAX_ATTEMPTS];
  size_t n[2] = {0, 0}, k[2] = {0, 0}, len = 0, f;
  int first = 0; /* the family of the first usable address: fam[0] */
  for (a = list; a; a = a->next) {
    if (a->family != AF_INET6 && a->family != AF_INET) continue;
    if (!first) first = a->family;
    f = a->family == first ? 0 : 1;
    if (n[f] < MAX_ATTEMPTS) fam[f][n[f]++] = a;
  }
  while ((k[0] < n[0] || k[1] < n[1]) && len < max) /* interleave, the first family first */
    for (f = 0; f < 2 && len < max; f++)
      if (k[f] < n[f]) out[len++] = fam[f][k[f]++];
  return len;
}

static void he_finish(struct he *h, corio_transport *winner, int err)
{
  int i;
  h->finished = true;
  if (h->timer) {
    if (corio_handle_cancel(h->loop, h->timer) == 0) corio_future_unref(&h->fut);
    h->timer = 0;
  }
  for (i = 0; i < h->next; i++)
    if (h->att[i] && !corio_future_done(h->att[i])) corio_future_cancel(h->att[i]);
  if (winner) {
    if (corio_future_set_result_ptr(&h->fut, winner, NULL) == 0)
      corio__transport_start(winner, h->user);
    else
      corio__transport_discard(winner); /* the outer was cancelled meanwhile */
  } else if (!corio_future_done(&h->fut)) {
    if (err == -ECANCELED)
      corio_future_set_cancelled(&h->fut);
    else
      corio_future_set_error(&h->fut, err);
  }
}

static void he_attempt_done(corio_future *f, void *arg)
{
  struct he *h = arg;
  int err = corio_future_error(f);
  h->running--;
  if (err == 0) {
    if (h->finished)
      corio__transport_discard(corio_future_ptr(f)); /* a late loser */
    else
      he_finish(h, corio_future_ptr(f), 0);
  } else if (!h->finished) {
    if (err != -ECANCELED) h->last_err = err;
    if (h->next < h->naddrs) {
      he_start_next(h); /* a failure starts the next attempt at once */
    } else if (h->running == 0) {
      he_finish(h, NULL, h->last_err ? h->last_err : -ECONNREFUSED);
    }
  }
  corio_future_unref(&h->fut); /* the attempt's reference */
}

static void he_timer(void *arg)
{
  struct he *h = arg;
  h->timer = 0;
  if (!h->finished && h->next < h->naddrs) he_start_next(h);
  corio_future_unref(&h->fut); /* the timer's reference */
}

static void he_start_next(struct he *h)
{
  const corio_addrinfo *a = h->order[h->next];
  corio_future *f = corio__connect_addr(h->loop, &a->addr, a->addrlen, h->proto, h->user, true);
  int i = h->next++;
  if (!f) {
    h->last_err = -ENOMEM;
    if (h->running == 0 && h->next >= h->naddrs) he_finish(h, NULL, -ENOMEM);
    return;
  }
  h->att[i] = f;
  h->running++;
  corio_future_ref(&h->fut);
  corio_future_add_done_callback(f, he_attempt_done, h);
  if (h->next < h->naddrs && h->delay >= 0) {
    if (h->timer && corio_handle_cancel(h->loop, h->timer) == 0) corio_future_unref(&h->fut);
    h->timer = 0;
    corio_future_ref(&h->fut);
    if (corio_call_later(h->loop, h->delay, he_timer, h, &h->timer) < 0)
      corio_future_unref(&h->fut);
  }
}

static void he_resolved(corio_future *dns, void *arg)
{
  struct he *h = arg;
  int err = corio_future_error(dns);
  if (h->finished) goto done;
  if (err) {
    corio_future_set_error_msg(&h->fut, err, corio_future_error_message(dns));
    h->finished = true;
    goto done;
  }
  h->naddrs = (int)corio__he_order(corio_future_ptr(dns), h->order, MAX_ATTEMPTS);
  if (!h->naddrs) {
    corio_future_set_error(&h->fut, CORIO_E_DNS_NODATA);
    h->finished = true;
    goto done;
  }
  he_start_next(h);
done:
  corio_future_unref(&h->fut); /* the lookup's reference */
}

static int he_cancel(corio_future *f)
{
  struct he *h = corio_container_of(f, struct he, fut);
  if (h->finished) return 0;
  corio_future_cancel(h->dns);
  he_finish(h, NULL, -ECANCELED);
  return 1;
}

static void he_destroy(corio_future *f)
{
  struct he *h = corio_container_of(f, struct he, fut);
  int i;
  for (i = 0; i < h->next; i++) corio_future_unref(h->att[i]);
  corio_future_unref(h->dns); /* owns the address list */
  corio__free(h);
}

static const corio_future_ops he_ops = {he_cancel, he_destroy, "connect"};

corio_future *corio_connect(corio_loop *loop, const char *host, uint16_t port,
                            const corio_protocol *proto, void *user, const corio_connect_opts *opts)
{
  struct he *h;
  struct addrinfo hints;
  char svc[8];
  if (!loop || !host || !proto || !proto->data_received) return corio__future_failed(loop, -EINVAL);
  h = corio__calloc(1, sizeof(*h));
  if (!h) return NULL;
  corio_future_init(&h->fut, loop, &he_ops);
  h->loop = loop;
  h->proto = proto;
  h->user = user;
  h->delay = opts && opts->happy_eyeballs_delay != 0 ? opts->happy_eyeballs_delay : 0.25;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = opts ? opts->family : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(svc, sizeof(svc), "%u", (unsigned)port);
  h->dns = corio_getaddrinfo(loop, host, svc, &hints);
  if (!h->dns) {
    corio__free(h);
    return NULL;
  }
  corio_future_ref(&h->fut); /* the lookup's */
  corio_future_add_done_callback(h->dns, he_resolved, h);
  return &h->fut;
}
