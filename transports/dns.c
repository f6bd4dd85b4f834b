/*
 * DNS through c-ares 1.18, driven by the loop.
 *
 * One c-ares channel per loop, created on first use. ARES_OPT_SOCK_STATE_CB tells us which
 * sockets c-ares wants watched: they become the loop's internal readers/writers (a poll on the
 * ring each), and their callbacks call ares_process_fd; after every call into c-ares the loop
 * timer is re-armed from ares_timeout, and its expiry calls ares_process_fd with no fd so c-ares
 * can retry or time out. No thread is involved.
 *
 * Cancelling one lookup: c-ares 1.18 can only cancel a whole channel (ares_cancel). A cancelled
 * lookup's future completes as cancelled at once and its c-ares query runs on unobserved (its
 * callback then only drops its reference); other lookups are untouched. When no observed lookup
 * is left, the channel is cancelled as a whole, which is then harmless, so that abandoned
 * queries do not hold sockets open. Pending observed lookups keep the loop alive; cancelled
 * ones do not.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdlib.h>
#include <poll.h>
#include <pthread.h>
#include "transport_impl.h"

struct resolver {
  corio_loop *loop;
  ares_channel ch;
  corio_handle timer;
  int live;     /* lookups whose future still waits */
  int inflight; /* c-ares queries not yet called back */
};

struct dns_req {
  corio_future fut;
  struct resolver *r;
  bool detached; /* cancelled: nobody waits for the answer */
};

static pthread_once_t ares_once = PTHREAD_ONCE_INIT;
static int ares_init_rc;
static void ares_global_init(void)
{
  ares_init_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

int corio_dns_error(int st)
{
  switch (st) {
  case ARES_SUCCESS:
    return 0;
  case ARES_ENOTFOUND:
    return CORIO_E_DNS_NOTFOUND;
  case ARES_ENODATA:
    return CORIO_E_DNS_NODATA;
  case ARES_ESERVFAIL:
    return CORIO_E_DNS_SERVFAIL;
  case ARES_EREFUSED:
    return CORIO_E_DNS_REFUSED;
  case ARES_ETIMEOUT:
    return CORIO_E_DNS_TIMEOUT;
  case ARES_ECONNREFUSED:
    return CORIO_E_DNS_CONNREFUSED;
  case ARES_EBADNAME:
  case ARES_EBADSTR:
    return CORIO_E_DNS_BADNAME;
  case ARES_EBADRESP:
  case ARES_EFORMERR:
    return CORIO_E_DNS_BADRESP;
  case ARES_ENONAME:
  case ARES_ESERVICE:
    return CORIO_E_DNS_NONAME;
  case ARES_ENOMEM:
    return -ENOMEM;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION:
    return -ECANCELED;
  case ARES_EBADFAMILY:
  case ARES_EBADFLAGS:
  case ARES_EBADHINTS:
  case ARES_EBADQUERY:
    return -EINVAL;
  default:
    return CORIO_E_DNS_FAILURE;
  }
}

static void rearm_timer(struct resolver *r);

static void process(struct resolver *r, ares_socket_t rfd, ares_socket_t wfd)
{
  ares_process_fd(r->ch, rfd, wfd);
  rearm_timer(r);
}

static void on_timer(void *arg)
{
  struct resolver *r = arg;
  r->timer = 0;
  process(r, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static void rearm_timer(struct resolver *r)
{
  struct timeval tv, *t;
  if (r->timer) {
    corio_handle_cancel(r->loop, r->timer);
    r->timer = 0;
  }
  if (!r->inflight) return;
  t = ares_timeout(r->ch, NULL, &tv);
  if (t)
    corio_call_later(r->loop, (double)t->tv_sec + (double)t->tv_usec / 1e6, on_timer, r, &r->timer);
}

static void on_readable(corio_loop *loop, int fd, void *arg)
{
  (void)loop;
  process(arg, fd, ARES_SOCKET_BAD);
}

static void on_writable(corio_loop *loop, int fd, void *arg)
{
  (void)loop;
  process(arg, ARES_SOCKET_BAD, fd);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
  struct resolver *r = data;
  if (readable)
    corio__loop_watch(r->loop, fd, POLLIN, on_readable, r, true);
  else
    corio__loop_unwatch(r->loop, fd, POLLIN);
  if (writable)
    corio__loop_watch(r->loop, fd, POLLOUT, on_writable, r, true);
  else
    corio__loop_unwatch(r->loop, fd, POLLOUT);
}

static void resolver_free(void *p)
{
  struct resolver *r = p;
  if (!r) return;
  if (r->timer) corio_handle_cancel(r->loop, r->timer);
  ares_destroy(r->ch); /* calls back what is left with ARES_EDESTRUCTION */
  r->loop->resolver = NULL;
  r->loop->resolver_free = NULL;
  corio__free(r);
}

static int channel_new(struct resolver *r, const corio_resolver_opts *o)
{
  struct ares_options opts;
  int mask = ARES_OPT_SOCK_STATE_CB, rc;
  memset(&opts, 0, sizeof(opts));
  opts.sock_state_cb = sock_state_cb;
  opts.sock_state_cb_data = r;
  if (o && o->timeout_s > 0) {
    opts.timeout = (int)ceil(o->timeout_s * 1000);
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (o && o->tries > 0) {
    opts.tries = o->tries;
    mask |= ARES_OPT_TRIES;
  }
  rc = ares_init_options(&r->ch, &opts, mask);
  if (rc != ARES_SUCCESS) return rc == ARES_ENOMEM ? -ENOMEM : CORIO_E_DNS_FAILURE;
  if (o && o->servers) {
    rc = ares_set_servers_ports_csv(r->ch, o->servers);
    if (rc != ARES_SUCCESS) {
      ares_destroy(r->ch);
      return -EINVAL;
    }
  }
  return 0;
}

static struct resolver *resolver_get(corio_loop *loop, int *err)
{
  struct resolver *r = loop->resolver;
  if (r) return r;
  pthread_once(&ares_once, ares_global_init);
  if (ares_init_rc != ARES_SUCCESS) {
    *err = CORIO_E_DNS_FAILURE;
    return NULL;
  }
  r = corio__calloc(1, sizeof(*r));
  if (!r) {
    *err = -ENOMEM;
    return NULL;
  }
  r->loop = loop;
  *err = channel_new(r, NULL);
  if (*err < 0) {
    corio__free(r);
    return NULL;
  }
  loop->resolver = r;
  loop->resolver_free = resolver_free;
  return r;
}

int corio_resolver_configure(corio_loop *loop, const corio_resolver_opts *opts)
{
  struct resolver *r;
  ares_channel old;
  int err = 0;
  if (!loop) return -EINVAL;
  r = resolver_get(loop, &err);
  if (!r) return err;
  if (r->live) return -EBUSY;
  if (r->inflight) ares_cancel(r->ch); /* only abandoned queries are left */
  old = r->ch;
  err = channel_new(r, opts);
  if (err < 0) {
    r->ch = old;
    return err;
  }
  ares_destroy(old);
  return 0;
}

/* ---- requests ---- */

static int req_cancel(corio_future *f)
{
  struct dns_req *q = corio_container_of(f, struct dns_req, fut);
  struct resolver *r = q->r;
  if (q->detached) return 0;
  q->detached = true;
  r->live--;
  corio__loop_alive_add(r->loop, -1);
  corio_future_set_cancelled(f);
  /* Nobody else waits: cancelling the whole channel is now harmless and frees its sockets. */
  if (r->live == 0 && r->inflight) {
    ares_cancel(r->ch);
    rearm_timer(r);
  }
  return 1;
}

static void req_destroy(corio_future *f)
{
  corio__free(corio_container_of(f, struct dns_req, fut));
}

static const corio_future_ops req_ops = {req_cancel, req_destroy, "dns lookup"};

static struct dns_req *req_new(struct resolver *r)
{
  struct dns_req *q = corio__calloc(1, sizeof(*q));
  if (!q) return NULL;
  corio_future_init(&q->fut, r->loop, &req_ops);
  q->r = r;
  /* the initial reference is the caller's; this one is c-ares', dropped in the callback */
  corio_future_ref(&q->fut);
  r->live++;
  r->inflight++;
  corio__loop_alive_add(r->loop, 1);
  return q;
}

/* Called by c-ares (possibly synchronously from ares_getaddrinfo). */
static bool req_finish(struct dns_req *q)
{
  struct resolver *r = q->r;
  r->inflight--;
  if (q->detached) return false;
  q->detached = true;
  r->live--;
  corio__loop_alive_add(r->loop, -1);
  return true;
}

static void free_list(void *p)
{
  corio_addrinfo *a = p, *next;
  for (; a; a = next) {
    next = a->next;
    corio__free(a);
  }
}

static void gai_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
  struct dns_req *q = arg;
  struct ares_addrinfo_node *n;
  corio_addrinfo *head = NULL, **tail = &head, *a;
  (void)timeouts;
  if (req_finish(q)) {
    if (status != ARES_SUCCESS) {
      corio_future_set_error_msg(&q->fut, corio_dns_error(status), ares_strerror(status));
    } else {
      for (n = res ? res->nodes : NULL; n; n = n->ai_next) {
        if (n->ai_addrlen > sizeof(a->addr)) continue;
        a = corio__calloc(1, sizeof(*a));
        if (!a) {
          free_list(head);
          head = NULL;
          status = ARES_ENOMEM;
          break;
        }
        a->family = n->ai_family;
        a->socktype = n->ai_socktype;
        a->protocol = n->ai_protocol;
        a->addrlen = (socklen_t)n->ai_addrlen;
        memcpy(&a->addr, n->ai_addr, n->ai_addrlen);
        *tail = a;
        tail = &a->next;
      }
      if (status == ARES_ENOMEM)
        corio_future_set_error(&q->fut, -ENOMEM);
      else if (!head)
        corio_future_set_error(&q->fut, CORIO_E_DNS_NODATA);
      else
        corio_future_set_result_ptr(&q->fut, head, free_list);
    }
  }
  if (res) ares_freeaddrinfo(res);
  corio_future_unref(&q->fut);
}

/* Numeric hosts never reach c-ares: 1.18's ares_getaddrinfo sends a DNS query for an address
 * literal when the family is AF_UNSPEC (seen here: "127.0.0.1" went to the system resolver as a
 * name, off loopback, and stalled until its timeout). Returns NULL when @p host is not numeric. */
static corio_future *numeric_lookup(corio_loop *loop, const char *host, const char *service,
                                    const struct addrinfo *hints)
{
  corio_addrinfo *a;
  corio_future *f;
  struct sockaddr_in *a4;
  struct sockaddr_in6 *a6;
  struct servent se, *sp = NULL;
  char sbuf[1024], *end;
  long port = 0;
  int family = hints ? hints->ai_family : AF_UNSPEC;
  int socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
  struct in6_addr addr6;
  struct in_addr addr4;
  bool v4 = host && inet_pton(AF_INET, host, &addr4) == 1;
  bool v6 = !v4 && host && inet_pton(AF_INET6, host, &addr6) == 1;
  if (!v4 && !v6) return NULL;
  f = corio_future_new(loop);
  if (!f) return NULL;
  if ((v4 && family == AF_INET6) || (v6 && family == AF_INET)) {
    corio_future_set_error(f, CORIO_E_DNS_NODATA);
    return f;
  }
  if (service && *service) {
    port = strtol(service, &end, 10);
    if (*end || port < 0 || port > 65535) {
      getservbyname_r(service, socktype == SOCK_DGRAM ? "udp" : "tcp", &se, sbuf, sizeof(sbuf),
                      &sp); /* /etc/services: a local file, no network */
      if (!sp) {
        corio_future_set_error(f, CORIO_E_DNS_NONAME);
        return f;
      }
      port = ntohs((uint16_t)sp->s_port);
    }
  }
  a = corio__calloc(1, sizeof(*a));
  if (!a) {
    corio_future_set_error(f, -ENOMEM);
    return f;
  }
  a->socktype = socktype;
  a->protocol = hints ? hints->ai_protocol : 0;
  if (v4) {
    a4 = (struct sockaddr_in *)&a->addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    a4->sin_addr = addr4;
    a->family = AF_INET;
    a->addrlen = sizeof(*a4);
  } else {
    a6 = (struct sockaddr_in6 *)&a->addr;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    a6->sin6_addr = addr6;
    a->family = AF_INET6;
    a->addrlen = sizeof(*a6);
  }
  corio_future_set_result_ptr(f, a, free_list);
  return f;
}

corio_future *corio_getaddrinfo(corio_loop *loop, const char *host, const char *service,
                                const struct addrinfo *hints)
{
  struct resolver *r;
  struct dns_req *q;
  struct ares_addrinfo_hints h;
  corio_future *nf;
  int err = 0;
  if (!loop || (!host && !service)) return corio__future_failed(loop, -EINVAL);
  nf = numeric_lookup(loop, host, service, hints);
  if (nf) return nf;
  if (hints && (hints->ai_flags & AI_NUMERICHOST))
    return corio__future_failed(loop, CORIO_E_DNS_NONAME);
  r = resolver_get(loop, &err);
  if (!r) return corio__future_failed(loop, err);
  q = req_new(r);
  if (!q) return NULL;
  memset(&h, 0, sizeof(h));
  h.ai_family = hints ? hints->ai_family : AF_UNSPEC;
  h.ai_socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
  h.ai_protocol = hints ? hints->ai_protocol : 0;
  h.ai_flags = hints ? hints->ai_flags : 0;
  ares_getaddrinfo(r->ch, host, service, &h, gai_cb, q);
  rearm_timer(r);
  return &q->fut;
}

static void gni_cb(void *arg, int status, int timeouts, char *node, char *service)
{
  struct dns_req *q = arg;
  corio_bytes b;
  size_t hl, sl;
  (void)timeouts;
  if (req_finish(q)) {
    if (status != ARES_SUCCESS) {
      corio_future_set_error_msg(&q->fut, corio_dns_error(status), ares_strerror(status));
    } else {
      hl = node ? strlen(node) : 0;
      sl = service ? strlen(service) : 0;
      b = corio_bytes_alloc(hl + sl + 2);
      if (!b.data) {
        corio_future_set_error(&q->fut, -ENOMEM);
      } else {
        if (hl) memcpy(b.data, node, hl);
        b.data[hl] = 0;
        if (sl) memcpy(b.data + hl + 1, service, sl);
        b.data[hl + 1 + sl] = 0;
        corio_future_set_result_bytes(&q->fut, b);
      }
    }
  }
  corio_future_unref(&q->fut);
}

/* getnameinfo(3)'s NI_* flags to c-ares' own ARES_NI_* (which also need LOOKUP* to act). */
static int ni_flags(int f)
{
  int a = ARES_NI_LOOKUPHOST | ARES_NI_LOOKUPSERVICE;
  if (f & NI_NUMERICHOST) a |= ARES_NI_NUMERICHOST;
  if (f & NI_NUMERICSERV) a |= ARES_NI_NUMERICSERV;
  if (f & NI_NAMEREQD) a |= ARES_NI_NAMEREQD;
  if (f & NI_NOFQDN) a |= ARES_NI_NOFQDN;
  if (f & NI_DGRAM) a |= ARES_NI_DGRAM;
  return a;
}

corio_future *corio_getnameinfo(corio_loop *loop, const struct sockaddr *sa, socklen_t salen,
                                int flags)
{
  struct resolver *r;
  struct dns_req *q;
  int err = 0;
  if (!loop || !sa) return corio__future_failed(loop, -EINVAL);
  r = resolver_get(loop, &err);
  if (!r) return corio__future_failed(loop, err);
  q = req_new(r);
  if (!q) return NULL;
  ares_getnameinfo(r->ch, sa, (ares_socklen_t)salen, ni_flags(flags), gni_cb, q);
  rearm_timer(r);
  return &q->fut;
}
