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
 *
 * What corio does itself instead of c-ares, and why (measured in bench/README.md): c-ares 1.18
 * re-reads the hosts file on every ares_getaddrinfo (open, fstat, 2 reads, close) and sorts
 * every answer by RFC 6724, probing the route of each address with a throwaway UDP socket
 * (socket, connect, getsockname, close) even when there is one address. On the VM we measure on,
 * those nine system calls were two thirds of a lookup's CPU time. So:
 *  - The hosts file is parsed once into a table sorted by name (and an index by address for
 *    getnameinfo), and re-read when its inode, size or mtime change, which is checked at most
 *    once a second (HOSTS_RECHECK_S), on the next lookup after that second; an edit is thus
 *    seen within a second, like nscd's. Names found there never reach c-ares. The channel is
 *    created with lookups "b" (DNS only), and corio applies the order c-ares would have used
 *    (its "lookups" as read from nsswitch.conf/host.conf/resolv.conf: "fb" here), including
 *    hosts-after-DNS ("bf") as a fallback on NXDOMAIN/NODATA.
 *  - Lookups pass ARES_AI_NOSORT; corio sorts an answer of two addresses or more itself
 *    (sort_answer: RFC 6724 rules 1, 2, 5, 6, 8, 9, 10 with the default policy table). A single
 *    address needs no order: glibc's getaddrinfo does not sort it either.
 *  - The service is turned into a port here (numeric first, /etc/services only for a name), so
 *    a numeric port, as corio_connect passes, no longer makes c-ares scan /etc/services.
 * One difference remains: c-ares applies $HOSTALIASES to a dotless name before reading the hosts
 * file; corio's table is searched with the name as given (DNS lookups still get the alias).
 */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "transport_impl.h"

/* c-ares 1.18's PATH_HOSTS on Unix: it reads $CARES_HOSTS only with ARES_AI_ENVHOSTS, which
 * corio never passes, and ares_gethostbyaddr (getnameinfo) always reads this path. */
#define HOSTS_PATH      "/etc/hosts"
#define HOSTS_RECHECK_S 1.0
#define HOSTS_MAX_BYTES (256u << 20) /* a larger file is ignored: offsets are 32-bit */

/* One (line, name) pair of the hosts file. */
struct hosts_rec {
  uint32_t name;  /* offset in strs of the name, ASCII lower-cased (c-ares uses strcasecmp) */
  uint32_t canon; /* offset in strs of the line's first name, as written (for getnameinfo) */
  uint32_t line;
  uint8_t family;
  uint8_t addr[16];
};

struct hosts {
  char *path; /* NULL: no hosts file */
  char *strs;
  struct hosts_rec *recs; /* sorted by (name, line) */
  uint32_t *by_addr;      /* indices into recs, sorted by (family, addr, line) */
  size_t n;
  dev_t dev; /* identity of the file the table was read from */
  ino_t ino;
  off_t size;
  struct timespec mtime;
  bool loaded;    /* the identity above is valid */
  bool racy;      /* read within 5 s of its mtime: a same-size rewrite may not show; re-read */
  double checked; /* loop time of the last check; < 0: never */
};

struct resolver {
  corio_loop *loop;
  ares_channel ch;
  corio_handle timer;
  int live;      /* lookups whose future still waits */
  int inflight;  /* c-ares queries not yet called back */
  char order[3]; /* 'f' (hosts) and 'b' (DNS) in c-ares' order, e.g. "fb" */
  struct hosts hosts;
};

struct dns_req {
  corio_future fut;
  struct resolver *r;
  bool detached;       /* cancelled: nobody waits for the answer */
  bool hosts_fallback; /* order "bf": ask the hosts file when DNS says there is no such name */
  bool namereqd;       /* getnameinfo: the caller passed NI_NAMEREQD */
  int family, socktype, protocol, ni_flags;
  uint16_t port;
  socklen_t salen;
  struct sockaddr_storage sa; /* getnameinfo's address */
  char name[];                /* getaddrinfo's host */
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

/* ---- the hosts file ---- */

/* c-ares' ISSPACE: the C locale's isspace. */
static bool hspace(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static char lower(char c)
{
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void hosts_clear(struct hosts *h)
{
  corio__free(h->strs);
  corio__free(h->recs);
  corio__free(h->by_addr);
  h->strs = NULL;
  h->recs = NULL;
  h->by_addr = NULL;
  h->n = 0;
  h->loaded = false;
}

static int rec_by_name(const void *pa, const void *pb, void *strs)
{
  const struct hosts_rec *a = pa, *b = pb;
  int c = strcmp((const char *)strs + a->name, (const char *)strs + b->name);
  if (c) return c;
  return a->line < b->line ? -1 : a->line > b->line;
}

static int rec_by_addr(const void *pa, const void *pb, void *recs)
{
  const struct hosts_rec *a = (const struct hosts_rec *)recs + *(const uint32_t *)pa;
  const struct hosts_rec *b = (const struct hosts_rec *)recs + *(const uint32_t *)pb;
  int c;
  if (a->family != b->family) return a->family < b->family ? -1 : 1;
  c = memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16);
  if (c) return c;
  return a->line < b->line ? -1 : a->line > b->line;
}

/* Parse @p text (NUL-terminated, modified) into h's table. Lines like c-ares reads them: a '#'
 * starts a comment; an address (IPv4 or IPv6, inet_pton's syntax) and at least one name, the
 * first being the canonical name and the rest aliases; lines whose address does not parse are
 * skipped. Returns 0 or -ENOMEM. */
static int hosts_parse(struct hosts *h, char *text, size_t len)
{
  struct hosts_rec *recs = NULL, *grown;
  uint32_t *by_addr = NULL;
  char *strs, *p, *eol, *tok, addrbuf[INET6_ADDRSTRLEN + 1];
  size_t n = 0, cap = 0, used = 0, tl, i;
  uint32_t line = 0, canon;
  uint8_t addr[16];
  int family;
  /* Every name is stored at most twice (lower-cased, and as written if canonical), each with a
   * NUL: 2 * len + 2 bounds it. */
  strs = corio__malloc(2 * len + 2);
  if (!strs) return -ENOMEM;
  for (p = text; *p; p = eol) {
    line++;
    for (eol = p; *eol && *eol != '\n'; eol++) {
    }
    if (*eol) *eol++ = 0;
    tok = strchr(p, '#');
    if (tok) *tok = 0;
    while (hspace(*p)) p++;
    for (tok = p; *p && !hspace(*p); p++) {
    }
    tl = (size_t)(p - tok);
    if (!tl || tl >= sizeof(addrbuf)) continue;
    memcpy(addrbuf, tok, tl);
    addrbuf[tl] = 0;
    if (inet_pton(AF_INET, addrbuf, addr) == 1)
      family = AF_INET;
    else if (inet_pton(AF_INET6, addrbuf, addr) == 1)
      family = AF_INET6;
    else
      continue;
    canon = UINT32_MAX;
    for (;;) {
      while (hspace(*p)) p++;
      if (!*p) break;
      for (tok = p; *p && !hspace(*p); p++) {
      }
      tl = (size_t)(p - tok);
      if (canon == UINT32_MAX) { /* the canonical name, as written */
        canon = (uint32_t)used;
        memcpy(strs + used, tok, tl);
        strs[used + tl] = 0;
        used += tl + 1;
      }
      if (n == cap) {
        cap = cap ? 2 * cap : 64;
        grown = corio__realloc(recs, cap * sizeof(*recs));
        if (!grown) goto nomem;
        recs = grown;
      }
      recs[n].name = (uint32_t)used;
      recs[n].canon = canon;
      recs[n].line = line;
      recs[n].family = (uint8_t)family;
      memcpy(recs[n].addr, addr, sizeof(addr));
      n++;
      for (i = 0; i < tl; i++) strs[used + i] = lower(tok[i]);
      strs[used + tl] = 0;
      used += tl + 1;
    }
  }
  if (n) {
    by_addr = corio__malloc(n * sizeof(*by_addr));
    if (!by_addr) goto nomem;
    for (i = 0; i < n; i++) by_addr[i] = (uint32_t)i;
    qsort_r(recs, n, sizeof(*recs), rec_by_name, strs);
    qsort_r(by_addr, n, sizeof(*by_addr), rec_by_addr, recs);
  }
  hosts_clear(h);
  h->strs = strs;
  h->recs = recs;
  h->by_addr = by_addr;
  h->n = n;
  return 0;
nomem:
  corio__free(strs);
  corio__free(recs);
  return -ENOMEM;
}

/* Read the file into the table. An unreadable or missing file is an empty one, as for c-ares
 * (and it is tried again at the next check). Returns 0, or -ENOMEM (the table is then empty). */
static int hosts_load(struct hosts *h)
{
  struct stat st;
  struct timespec now;
  char *text = NULL, *grown;
  size_t len = 0, cap;
  ssize_t got;
  int rc = 0, fd = open(h->path, O_RDONLY | O_CLOEXEC);
  hosts_clear(h);
  if (fd < 0) return 0;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > HOSTS_MAX_BYTES) goto done;
  cap = (size_t)st.st_size + 1;
  text = corio__malloc(cap + 1);
  if (!text) {
    rc = -ENOMEM;
    goto done;
  }
  for (;;) { /* read to EOF: the file may grow while it is read */
    if (len == cap) {
      if (cap >= HOSTS_MAX_BYTES) goto done;
      cap *= 2;
      grown = corio__realloc(text, cap + 1);
      if (!grown) {
        rc = -ENOMEM;
        goto done;
      }
      text = grown;
    }
    got = read(fd, text + len, cap - len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) goto done;
    if (got == 0) break;
    len += (size_t)got;
  }
  text[len] = 0;
  rc = hosts_parse(h, text, len);
  if (rc < 0) goto done;
  h->dev = st.st_dev;
  h->ino = st.st_ino;
  h->size = st.st_size;
  h->mtime = st.st_mtim;
  h->loaded = true;
  /* A rewrite within the file system's timestamp granularity of our read (up to 2 s: FAT), with
   * the same size and inode, would look unchanged: when we read a file modified less than 5 s
   * before (a margin over the granularity for a slow reader), re-read it at every check (at
   * most once a second) rather than trust the identity. */
  clock_gettime(CLOCK_REALTIME, &now);
  h->racy =
      (double)(now.tv_sec - st.st_mtim.tv_sec) + (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9 <
      5.0;
done:
  corio__free(text);
  close(fd);
  return rc;
}

/* Make the table current: at most one stat(2) per HOSTS_RECHECK_S. Returns 0 or -ENOMEM (then
 * the next lookup tries again: names must not silently go to DNS because memory was short). */
static int hosts_refresh(struct hosts *h, corio_loop *loop)
{
  struct stat st;
  double now;
  int rc;
  if (!h->path) return 0;
  now = corio_loop_time(loop);
  if (h->checked >= 0 && now - h->checked < HOSTS_RECHECK_S) return 0;
  h->checked = now;
  if (stat(h->path, &st) != 0) {
    hosts_clear(h);
    return 0;
  }
  if (h->loaded && !h->racy && st.st_dev == h->dev && st.st_ino == h->ino &&
      st.st_size == h->size && st.st_mtim.tv_sec == h->mtime.tv_sec &&
      st.st_mtim.tv_nsec == h->mtime.tv_nsec)
    return 0;
  rc = hosts_load(h);
  if (rc < 0) h->checked = -1;
  return rc;
}

static void hosts_set_path(struct hosts *h, const char *path, int *err)
{
  char *copy = NULL;
  if (path && *path) {
    copy = corio__malloc(strlen(path) + 1);
    if (!copy) {
      *err = -ENOMEM;
      return;
    }
    strcpy(copy, path);
  }
  hosts_clear(h);
  corio__free(h->path);
  h->path = copy;
  h->checked = -1;
}

/* ---- answers ---- */

static void free_list(void *p)
{
  corio_addrinfo *a = p, *next;
  for (; a; a = next) {
    next = a->next;
    corio__free(a);
  }
}

/* Append an address to a list; false on ENOMEM. */
static bool ai_append(corio_addrinfo ***tail, int family, const void *addr, uint16_t port,
                      int socktype, int protocol)
{
  corio_addrinfo *a = corio__calloc(1, sizeof(*a));
  struct sockaddr_in *a4;
  struct sockaddr_in6 *a6;
  if (!a) return false;
  a->family = family;
  a->socktype = socktype;
  a->protocol = protocol;
  if (family == AF_INET) {
    a4 = (struct sockaddr_in *)&a->addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    memcpy(&a4->sin_addr, addr, 4);
    a->addrlen = sizeof(*a4);
  } else {
    a6 = (struct sockaddr_in6 *)&a->addr;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    memcpy(&a6->sin6_addr, addr, 16);
    a->addrlen = sizeof(*a6);
  }
  **tail = a;
  *tail = &a->next;
  return true;
}

/* RFC 6724 section 2.1's default policy table, as (precedence, label). */
static void policy(const struct in6_addr *a, int *prec, int *label)
{
  static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const uint8_t *b = a->s6_addr;
  if (IN6_IS_ADDR_LOOPBACK(a)) {
    *prec = 50, *label = 0;
  } else if (!memcmp(b, v4mapped, 12)) {
    *prec = 35, *label = 4;
  } else if (!memcmp(b, v4mapped, 10) && !b[10] && !b[11]) { /* ::/96, IPv4-compatible */
    *prec = 1, *label = 3;
  } else if (b[0] == 0x20 && b[1] == 0x01 && !b[2] && !b[3]) { /* 2001::/32, Teredo */
    *prec = 5, *label = 5;
  } else if (b[0] == 0x20 && b[1] == 0x02) { /* 2002::/16, 6to4 */
    *prec = 30, *label = 2;
  } else if (b[0] == 0x3f && b[1] == 0xfe) { /* 3ffe::/16, 6bone */
    *prec = 1, *label = 12;
  } else if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) { /* fec0::/10, site-local */
    *prec = 1, *label = 11;
  } else if ((b[0] & 0xfe) == 0xfc) { /* fc00::/7, ULA */
    *prec = 3, *label = 13;
  } else {
    *prec = 40, *label = 1;
  }
}

/* RFC 6724 section 3.1 scopes (RFC 4007 values; IPv4 as in section 3.2). */
static int scope_of(const struct in6_addr *a)
{
  const uint8_t *b = a->s6_addr;
  if (IN6_IS_ADDR_MULTICAST(a)) return b[1] & 0x0f;
  if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a)) return 2;
  if (IN6_IS_ADDR_SITELOCAL(a)) return 5;
  if (IN6_IS_ADDR_V4MAPPED(a)) {
    if (b[12] == 127 || (b[12] == 169 && b[13] == 254)) return 2;
    return 14;
  }
  return 14;
}

static void as_v6(const struct sockaddr_storage *ss, struct in6_addr *out)
{
  const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
  if (ss->ss_family == AF_INET6) {
    *out = ((const struct sockaddr_in6 *)ss)->sin6_addr;
  } else {
    memset(out, 0, sizeof(*out));
    out->s6_addr[10] = out->s6_addr[11] = 0xff;
    memcpy(&out->s6_addr[12], &s4->sin_addr, 4);
  }
}

struct sort_ent {
  corio_addrinfo *ai;
  struct in6_addr dst, src;
  int index, usable, prec, label, scope, src_label, src_scope;
};

static int common_prefix(const struct in6_addr *a, const struct in6_addr *b)
{
  int i, n = 0;
  uint8_t x;
  for (i = 0; i < 16; i++) {
    x = a->s6_addr[i] ^ b->s6_addr[i];
    if (x) {
      while (!(x & 0x80)) {
        x = (uint8_t)(x << 1);
        n++;
      }
      return n;
    }
    n += 8;
  }
  return n;
}

static int rfc6724_cmp(const void *pa, const void *pb)
{
  const struct sort_ent *a = pa, *b = pb;
  int ma, mb, pa9, pb9;
  if (a->usable != b->usable) return b->usable - a->usable; /* rule 1: avoid unusable */
  if (a->usable) {
    ma = a->scope == a->src_scope, mb = b->scope == b->src_scope; /* rule 2: matching scope */
    if (ma != mb) return mb - ma;
    ma = a->label == a->src_label, mb = b->label == b->src_label; /* rule 5: matching label */
    if (ma != mb) return mb - ma;
  }
  if (a->prec != b->prec) return b->prec - a->prec;     /* rule 6: higher precedence */
  if (a->scope != b->scope) return a->scope - b->scope; /* rule 8: smaller scope */
  /* rule 9: longest matching prefix, between IPv6 addresses only (as glibc and c-ares: for
   * IPv4 the common prefix says little about distance) */
  if (a->usable && b->usable && a->ai->family == AF_INET6 && b->ai->family == AF_INET6) {
    pa9 = common_prefix(&a->dst, &a->src), pb9 = common_prefix(&b->dst, &b->src);
    if (pa9 != pb9) return pb9 - pa9;
  }
  return a->index - b->index; /* rule 10: otherwise keep the order */
}

/* Order a list of two addresses or more like RFC 6724 (rules 3, 4 and 7 need information the
 * kernel does not give a socket, so they are skipped, as c-ares and glibc do). The source
 * address each destination would use comes from connecting a UDP socket to it (no packet is
 * sent), a new socket for each address: re-connecting one socket keeps the source address the
 * first connect chose (Linux sets it once; seen here: 127.0.0.1 got 192.0.2.2 after a global
 * address), and a connect(AF_UNSPEC) reset between the two is not portable enough to save one
 * system call per address. An address no socket can connect to is unusable and goes last.
 * Returns false on ENOMEM (the list is then unchanged). */
static bool sort_answer(corio_addrinfo **head)
{
  struct sort_ent stack[8], *e;
  corio_addrinfo *a, **tail;
  struct sockaddr_storage dst, src;
  socklen_t sl;
  int fd, n = 0, i, src_prec;
  for (a = *head; a; a = a->next) n++;
  if (n < 2) return true;
  e = n <= 8 ? stack : corio__malloc((size_t)n * sizeof(*e));
  if (!e) return false;
  for (a = *head, i = 0; a; a = a->next, i++) {
    memset(&e[i], 0, sizeof(e[i]));
    e[i].ai = a;
    e[i].index = i;
    memcpy(&dst, &a->addr, a->addrlen);
    as_v6(&dst, &e[i].dst);
    policy(&e[i].dst, &e[i].prec, &e[i].label);
    e[i].scope = scope_of(&e[i].dst);
    fd = socket(a->family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) continue;
    /* port 0 cannot be connected to on every kernel: any other will do, nothing is sent */
    if (a->family == AF_INET6)
      ((struct sockaddr_in6 *)&dst)->sin6_port = htons(9);
    else
      ((struct sockaddr_in *)&dst)->sin_port = htons(9);
    sl = sizeof(src);
    e[i].usable = connect(fd, (struct sockaddr *)&dst, a->addrlen) == 0 &&
                  getsockname(fd, (struct sockaddr *)&src, &sl) == 0;
    close(fd);
    if (!e[i].usable) continue;
    as_v6(&src, &e[i].src);
    policy(&e[i].src, &src_prec, &e[i].src_label);
    e[i].src_scope = scope_of(&e[i].src);
  }
  qsort(e, (size_t)n, sizeof(*e), rfc6724_cmp);
  tail = head;
  for (i = 0; i < n; i++) {
    *tail = e[i].ai;
    tail = &e[i].ai->next;
  }
  *tail = NULL;
  if (e != stack) corio__free(e);
  return true;
}

/* The port of @p service like getaddrinfo: none is 0, a number is itself, a name comes from
 * /etc/services (a local file; "udp" for SOCK_DGRAM, else "tcp"). -1 if unknown. */
static int service_port(const char *service, int socktype, int flags)
{
  struct servent se, *sp = NULL;
  char sbuf[1024], *end;
  long port;
  if (!service || !*service) return 0;
  port = strtol(service, &end, 10);
  if (!*end && port >= 0 && port <= 65535) return (int)port;
  if (flags & AI_NUMERICSERV) return -1;
  getservbyname_r(service, socktype == SOCK_DGRAM ? "udp" : "tcp", &se, sbuf, sizeof(sbuf), &sp);
  return sp ? ntohs((uint16_t)sp->s_port) : -1;
}

static bool is_localhost(const char *name)
{
  return !strcasecmp(name, "localhost") || !strcasecmp(name, "localhost.");
}

/* c-ares refuses .onion names (RFC 7686) before any lookup, hosts file included. */
static bool is_onion(const char *name)
{
  size_t n = strlen(name);
  if (n && name[n - 1] == '.') n--;
  return n >= 6 && !strncasecmp(name + n - 6, ".onion", 6);
}

/* The hosts file's addresses for @p name, of @p family (AF_UNSPEC: both), in file order; like
 * c-ares, one address per matching line. Also the loopback addresses for "localhost" when the
 * file has none (RFC 6761 6.3, as c-ares 1.18 does). 1 found (*out set), 0 not, <0 ENOMEM. */
static int hosts_lookup(struct resolver *r, const char *name, int family, uint16_t port,
                        int socktype, int protocol, bool use_file, corio_addrinfo **out)
{
  static const uint8_t lo6[16] = {[15] = 1}, lo4[4] = {127, 0, 0, 1};
  struct hosts *h = &r->hosts;
  corio_addrinfo *head = NULL, **tail = &head;
  const struct hosts_rec *rec;
  char key[NI_MAXHOST];
  size_t len = strlen(name), lo = 0, hi, mid, i;
  uint32_t last_line = 0;
  if (use_file && h->path && len < sizeof(key)) {
    if (hosts_refresh(h, r->loop) < 0) return -ENOMEM;
    for (i = 0; i <= len; i++) key[i] = lower(name[i]);
    hi = h->n;
    while (lo < hi) { /* first record whose name is >= key */
      mid = lo + (hi - lo) / 2;
      if (strcmp(h->strs + h->recs[mid].name, key) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (i = lo; i < h->n && !strcmp(h->strs + h->recs[i].name, key); i++) {
      rec = &h->recs[i];
      if (rec->line == last_line) continue; /* a name twice on one line */
      last_line = rec->line;
      if (family != AF_UNSPEC && family != rec->family) continue;
      if (!ai_append(&tail, rec->family, rec->addr, port, socktype, protocol)) goto nomem;
    }
  }
  if (!head && is_localhost(name)) {
    if ((family == AF_UNSPEC || family == AF_INET6) &&
        !ai_append(&tail, AF_INET6, lo6, port, socktype, protocol))
      goto nomem;
    if ((family == AF_UNSPEC || family == AF_INET) &&
        !ai_append(&tail, AF_INET, lo4, port, socktype, protocol))
      goto nomem;
  }
  if (!head) return 0;
  if (!sort_answer(&head)) goto nomem;
  *out = head;
  return 1;
nomem:
  free_list(head);
  return -ENOMEM;
}

/* The canonical name of the first hosts line with @p sa's address, or NULL (*err: -ENOMEM). */
static const char *hosts_reverse(struct resolver *r, const struct sockaddr *sa, int *err)
{
  struct hosts *h = &r->hosts;
  const struct hosts_rec *rec;
  const uint8_t *addr;
  size_t lo = 0, hi, mid, alen;
  int family = sa->sa_family, c;
  if (!h->path) return NULL;
  *err = hosts_refresh(h, r->loop);
  if (*err < 0) return NULL;
  if (family == AF_INET) {
    addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    alen = 4;
  } else {
    addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    alen = 16;
  }
  hi = h->n;
  while (lo < hi) {
    mid = lo + (hi - lo) / 2;
    rec = &h->recs[h->by_addr[mid]];
    c = rec->family != family ? (rec->family < family ? -1 : 1) : memcmp(rec->addr, addr, alen);
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == h->n) return NULL;
  rec = &h->recs[h->by_addr[lo]];
  if (rec->family != family || memcmp(rec->addr, addr, alen)) return NULL;
  return h->strs + rec->canon;
}

/* ---- the channel ---- */

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
  hosts_clear(&r->hosts);
  corio__free(r->hosts.path);
  r->loop->resolver = NULL;
  r->loop->resolver_free = NULL;
  corio__free(r);
}

/* Create a channel with the caller's options in *ch, and the order in which c-ares would have
 * consulted the hosts file and DNS in @p order ("fb", "bf", "b" or "f"). The channel itself is
 * given lookups "b": corio consults the hosts file. c-ares 1.18 cannot change lookups after
 * init, so when the configured order is not already "b" the channel is created twice (once to
 * learn the order, from the files c-ares reads); this happens only at configuration time. */
static int channel_new(struct resolver *r, const corio_resolver_opts *o, ares_channel *ch,
                       char order[3])
{
  static char dns_only[] = "b";
  struct ares_options opts, saved;
  const char *l;
  int mask = ARES_OPT_SOCK_STATE_CB, smask = 0, rc, n = 0;
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
  rc = ares_init_options(ch, &opts, mask);
  if (rc != ARES_SUCCESS) return rc == ARES_ENOMEM ? -ENOMEM : CORIO_E_DNS_FAILURE;
  memset(&saved, 0, sizeof(saved));
  rc = ares_save_options(*ch, &saved, &smask);
  if (rc != ARES_SUCCESS) {
    ares_destroy(*ch);
    return rc == ARES_ENOMEM ? -ENOMEM : CORIO_E_DNS_FAILURE;
  }
  /* c-ares' own default is "fb"; it ignores letters other than 'b' and 'f' on Unix */
  for (l = saved.lookups && *saved.lookups ? saved.lookups : "fb"; *l && n < 2; l++)
    if ((*l == 'b' || *l == 'f') && (!n || order[0] != *l)) order[n++] = *l;
  order[n] = 0;
  ares_destroy_options(&saved);
  if (strcmp(order, "b") != 0) {
    ares_destroy(*ch);
    opts.lookups = dns_only;
    rc = ares_init_options(ch, &opts, mask | ARES_OPT_LOOKUPS);
    if (rc != ARES_SUCCESS) return rc == ARES_ENOMEM ? -ENOMEM : CORIO_E_DNS_FAILURE;
  }
  if (o && o->servers) {
    rc = ares_set_servers_ports_csv(*ch, o->servers);
    if (rc != ARES_SUCCESS) {
      ares_destroy(*ch);
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
  hosts_set_path(&r->hosts, HOSTS_PATH, err);
  if (*err == 0) *err = channel_new(r, NULL, &r->ch, r->order);
  if (*err < 0) {
    corio__free(r->hosts.path);
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
  ares_channel ch;
  char order[3];
  int err = 0;
  if (!loop) return -EINVAL;
  r = resolver_get(loop, &err);
  if (!r) return err;
  if (r->live) return -EBUSY;
  if (r->inflight) ares_cancel(r->ch); /* only abandoned queries are left */
  err = channel_new(r, opts, &ch, order);
  if (err < 0) return err;
  hosts_set_path(&r->hosts, opts && opts->hosts_file ? opts->hosts_file : HOSTS_PATH, &err);
  if (err < 0) {
    ares_destroy(ch);
    return err;
  }
  ares_destroy(r->ch);
  r->ch = ch;
  memcpy(r->order, order, sizeof(order));
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

static struct dns_req *req_new(struct resolver *r, const char *name)
{
  size_t nl = name ? strlen(name) + 1 : 0;
  struct dns_req *q = corio__calloc(1, sizeof(*q) + nl);
  if (!q) return NULL;
  corio_future_init(&q->fut, r->loop, &req_ops);
  q->r = r;
  if (nl) memcpy(q->name, name, nl);
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

static void gai_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
  struct dns_req *q = arg;
  struct ares_addrinfo_node *n;
  corio_addrinfo *head = NULL, **tail = &head;
  int found;
  (void)timeouts;
  if (!req_finish(q)) goto done;
  if (status != ARES_SUCCESS) {
    if (q->hosts_fallback && (status == ARES_ENOTFOUND || status == ARES_ENODATA)) {
      found =
          hosts_lookup(q->r, q->name, q->family, q->port, q->socktype, q->protocol, true, &head);
      if (found < 0) {
        corio_future_set_error(&q->fut, -ENOMEM);
        goto done;
      }
      if (found) {
        corio_future_set_result_ptr(&q->fut, head, free_list);
        goto done;
      }
    }
    corio_future_set_error_msg(&q->fut, corio_dns_error(status), ares_strerror(status));
    goto done;
  }
  for (n = res ? res->nodes : NULL; n; n = n->ai_next) {
    if (n->ai_family == AF_INET && n->ai_addrlen >= sizeof(struct sockaddr_in)) {
      if (!ai_append(&tail, AF_INET, &((struct sockaddr_in *)n->ai_addr)->sin_addr, q->port,
                     q->socktype, q->protocol))
        goto nomem;
    } else if (n->ai_family == AF_INET6 && n->ai_addrlen >= sizeof(struct sockaddr_in6)) {
      if (!ai_append(&tail, AF_INET6, &((struct sockaddr_in6 *)n->ai_addr)->sin6_addr, q->port,
                     q->socktype, q->protocol))
        goto nomem;
    }
  }
  if (!head) {
    corio_future_set_error(&q->fut, CORIO_E_DNS_NODATA);
    goto done;
  }
  if (!sort_answer(&head)) goto nomem;
  corio_future_set_result_ptr(&q->fut, head, free_list);
  goto done;
nomem:
  free_list(head);
  corio_future_set_error(&q->fut, -ENOMEM);
done:
  if (res) ares_freeaddrinfo(res);
  corio_future_unref(&q->fut);
}

static corio_future *done_list(corio_loop *loop, corio_addrinfo *head)
{
  corio_future *f = corio_future_new(loop);
  if (!f) {
    free_list(head);
    return NULL;
  }
  corio_future_set_result_ptr(f, head, free_list);
  return f;
}

/* Numeric hosts never reach c-ares: 1.18's ares_getaddrinfo sends a DNS query for an address
 * literal when the family is AF_UNSPEC (seen here: "127.0.0.1" went to the system resolver as a
 * name, off loopback, and stalled until its timeout). A NULL host is the loopback address, or
 * the wildcard with AI_PASSIVE, like getaddrinfo(3). Returns NULL when @p host is a name, and
 * sets *nomem on ENOMEM. */
static corio_future *numeric_lookup(corio_loop *loop, const char *host, int family, int port,
                                    int socktype, int protocol, int flags, bool *nomem)
{
  static const uint8_t any[16], lo6[16] = {[15] = 1}, lo4[4] = {127, 0, 0, 1};
  corio_addrinfo *head = NULL, **tail = &head;
  uint8_t addr[16];
  bool v4 = false, v6 = false, ok = true;
  if (host) {
    v4 = inet_pton(AF_INET, host, addr) == 1;
    v6 = !v4 && inet_pton(AF_INET6, host, addr) == 1;
    if (!v4 && !v6) return NULL;
    if ((v4 && family == AF_INET6) || (v6 && family == AF_INET))
      return corio__future_failed(loop, CORIO_E_DNS_NODATA);
    if (port < 0) return corio__future_failed(loop, CORIO_E_DNS_NONAME);
    ok = ai_append(&tail, v4 ? AF_INET : AF_INET6, addr, (uint16_t)port, socktype, protocol);
  } else {
    if (port < 0) return corio__future_failed(loop, CORIO_E_DNS_NONAME);
    if (family != AF_INET)
      ok = ai_append(&tail, AF_INET6, flags & AI_PASSIVE ? any : lo6, (uint16_t)port, socktype,
                     protocol);
    if (ok && family != AF_INET6)
      ok = ai_append(&tail, AF_INET, flags & AI_PASSIVE ? any : lo4, (uint16_t)port, socktype,
                     protocol);
  }
  if (!ok) {
    free_list(head);
    *nomem = true;
    return NULL;
  }
  return done_list(loop, head);
}

corio_future *corio_getaddrinfo(corio_loop *loop, const char *host, const char *service,
                                const struct addrinfo *hints)
{
  struct resolver *r;
  struct dns_req *q;
  struct ares_addrinfo_hints h;
  corio_addrinfo *list = NULL;
  corio_future *nf;
  const char *o;
  bool nomem = false;
  int err = 0, found, port;
  int family = hints ? hints->ai_family : AF_UNSPEC;
  int socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
  int protocol = hints ? hints->ai_protocol : 0;
  int flags = hints ? hints->ai_flags : 0;
  if (!loop || (!host && !service)) return corio__future_failed(loop, -EINVAL);
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
    return corio__future_failed(loop, -EAFNOSUPPORT);
  port = service_port(service, socktype, flags);
  nf = numeric_lookup(loop, host, family, port, socktype, protocol, flags, &nomem);
  if (nf || nomem) return nf;
  if (flags & AI_NUMERICHOST) return corio__future_failed(loop, CORIO_E_DNS_NONAME);
  if (port < 0) return corio__future_failed(loop, CORIO_E_DNS_NONAME);
  if (is_onion(host)) return corio__future_failed(loop, CORIO_E_DNS_NOTFOUND);
  r = resolver_get(loop, &err);
  if (!r) return corio__future_failed(loop, err);
  /* "localhost" never goes to DNS (RFC 6761 6.3): from the hosts file if it is there and the
   * order reads it, else the loopback addresses. */
  if (is_localhost(host)) {
    found = hosts_lookup(r, host, family, (uint16_t)port, socktype, protocol,
                         strchr(r->order, 'f') != NULL, &list);
    return found < 0 ? corio__future_failed(loop, found) : done_list(loop, list);
  }
  for (o = r->order; *o; o++) {
    if (*o == 'f') {
      found = hosts_lookup(r, host, family, (uint16_t)port, socktype, protocol, true, &list);
      if (found < 0) return corio__future_failed(loop, found); /* NULL if even that fails */
      if (found) return done_list(loop, list);
      continue;
    }
    q = req_new(r, host);
    if (!q) return NULL;
    q->hosts_fallback = o[1] == 'f';
    q->family = family;
    q->socktype = socktype;
    q->protocol = protocol;
    q->port = (uint16_t)port;
    memset(&h, 0, sizeof(h));
    h.ai_family = family;
    h.ai_socktype = socktype;
    h.ai_protocol = protocol;
    h.ai_flags = ARES_AI_NOSORT; /* sorted by gai_cb, only when there is something to sort */
    ares_getaddrinfo(r->ch, host, NULL, &h, gai_cb, q);
    rearm_timer(r);
    return &q->fut;
  }
  return corio__future_failed(loop, CORIO_E_DNS_NOTFOUND); /* order "f", and not in the file */
}

/* ---- reverse lookups ---- */

/* getnameinfo's service text, like c-ares' lookup_service: "" for port 0, else the
 * /etc/services name (unless NI_NUMERICSERV), else the number. */
static void format_service(const struct sockaddr *sa, int flags, char *buf, size_t n)
{
  struct servent se, *sp = NULL;
  char sbuf[1024];
  uint16_t port = sa->sa_family == AF_INET ? ((const struct sockaddr_in *)sa)->sin_port
                                           : ((const struct sockaddr_in6 *)sa)->sin6_port;
  buf[0] = 0;
  if (!port) return;
  if (!(flags & NI_NUMERICSERV))
    getservbyport_r(port, flags & NI_DGRAM ? "udp" : "tcp", &se, sbuf, sizeof(sbuf), &sp);
  if (sp && sp->s_name && strlen(sp->s_name) < n)
    snprintf(buf, n, "%s", sp->s_name);
  else
    snprintf(buf, n, "%u", (unsigned)ntohs(port));
}

/* The address as text, with "%scope" for a scoped IPv6 address, as c-ares' append_scopeid. */
static void format_numeric(const struct sockaddr *sa, int flags, char *buf, size_t n)
{
  const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
  char ifname[IF_NAMESIZE];
  size_t l;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)n);
    return;
  }
  inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)n);
  if (!s6->sin6_scope_id) return;
  l = strlen(buf);
  if ((IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&s6->sin6_addr)) &&
      if_indextoname(s6->sin6_scope_id, ifname))
    snprintf(buf + l, n - l, "%%%s", ifname);
  else
    snprintf(buf + l, n - l, "%%%lu", (unsigned long)s6->sin6_scope_id);
}

/* Complete @p f with "host\0service\0". */
static void set_nameinfo(corio_future *f, const char *node, const char *service)
{
  size_t hl = node ? strlen(node) : 0, sl = service ? strlen(service) : 0;
  corio_bytes b = corio_bytes_alloc(hl + sl + 2);
  if (!b.data) {
    corio_future_set_error(f, -ENOMEM);
    return;
  }
  if (hl) memcpy(b.data, node, hl);
  b.data[hl] = 0;
  if (sl) memcpy(b.data + hl + 1, service, sl);
  b.data[hl + 1 + sl] = 0;
  corio_future_set_result_bytes(f, b);
}

/* A name from the hosts file, with NI_NOFQDN applied as c-ares does (the local domain, taken
 * from gethostname, is cut from the end). */
static void set_hosts_nameinfo(corio_future *f, const char *canon, const struct sockaddr *sa,
                               int flags)
{
  char name[NI_MAXHOST], me[256], serv[NI_MAXSERV];
  const char *domain;
  size_t nl, dl;
  snprintf(name, sizeof(name), "%s", canon);
  if ((flags & NI_NOFQDN) && gethostname(me, sizeof(me)) == 0) {
    me[sizeof(me) - 1] = 0;
    domain = strchr(me, '.');
    nl = strlen(name);
    dl = domain ? strlen(domain) : 0;
    if (dl && nl >= dl && !strcasecmp(name + nl - dl, domain)) name[nl - dl] = 0;
  }
  format_service(sa, flags, serv, sizeof(serv));
  set_nameinfo(f, name, serv);
}

static void gni_cb(void *arg, int status, int timeouts, char *node, char *service)
{
  struct dns_req *q = arg;
  const struct sockaddr *sa = (const struct sockaddr *)&q->sa;
  const char *canon;
  char num[NI_MAXHOST], serv[NI_MAXSERV];
  int err = 0;
  (void)timeouts;
  if (!req_finish(q)) goto done;
  if (q->hosts_fallback && status == ARES_ENOTFOUND) { /* order "bf": DNS had no PTR */
    canon = hosts_reverse(q->r, sa, &err);
    if (err < 0) {
      corio_future_set_error(&q->fut, err);
      goto done;
    }
    if (canon) {
      set_hosts_nameinfo(&q->fut, canon, sa, q->ni_flags);
      goto done;
    }
    if (!q->namereqd) { /* what c-ares gives when no name is found and none is required */
      format_numeric(sa, q->ni_flags, num, sizeof(num));
      format_service(sa, q->ni_flags, serv, sizeof(serv));
      set_nameinfo(&q->fut, num, serv);
      goto done;
    }
  }
  if (status != ARES_SUCCESS)
    corio_future_set_error_msg(&q->fut, corio_dns_error(status), ares_strerror(status));
  else
    set_nameinfo(&q->fut, node, service);
done:
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
  corio_future *f;
  const char *canon, *o;
  char num[NI_MAXHOST], serv[NI_MAXSERV];
  int err = 0, aflags = ni_flags(flags);
  /* the exact sizes c-ares accepts; anything else it rejects, and so do we */
  bool inet = sa && ((sa->sa_family == AF_INET && salen == sizeof(struct sockaddr_in)) ||
                     (sa->sa_family == AF_INET6 && salen == sizeof(struct sockaddr_in6)));
  bool fallback = false;
  if (!loop || !sa) return corio__future_failed(loop, -EINVAL);
  r = resolver_get(loop, &err);
  if (!r) return corio__future_failed(loop, err);
  if (inet && !(flags & NI_NUMERICHOST)) {
    for (o = r->order; *o; o++) {
      if (*o == 'f') {
        canon = hosts_reverse(r, sa, &err);
        if (err < 0) return corio__future_failed(loop, err);
        if (!canon) continue;
        f = corio_future_new(loop);
        if (f) set_hosts_nameinfo(f, canon, sa, flags);
        return f;
      }
      fallback = o[1] == 'f';
      break;
    }
    if (!*o) { /* order "f" and no name in the file: never ask DNS */
      if (flags & NI_NAMEREQD) return corio__future_failed(loop, CORIO_E_DNS_NOTFOUND);
      f = corio_future_new(loop);
      if (!f) return NULL;
      format_numeric(sa, flags, num, sizeof(num));
      format_service(sa, flags, serv, sizeof(serv));
      set_nameinfo(f, num, serv);
      return f;
    }
  }
  q = req_new(r, NULL);
  if (!q) return NULL;
  if (fallback) {
    /* ask c-ares to fail rather than fall back to the number, so that the hosts file is read
     * before that */
    q->hosts_fallback = true;
    q->namereqd = (flags & NI_NAMEREQD) != 0;
    q->ni_flags = flags;
    q->salen = salen;
    memcpy(&q->sa, sa, salen);
    aflags |= ARES_NI_NAMEREQD;
  }
  ares_getnameinfo(r->ch, sa, (ares_socklen_t)salen, aflags, gni_cb, q);
  rearm_timer(r);
  return &q->fut;
}
