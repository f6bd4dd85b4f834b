/* corio HTTP/1.1 "hello" server at the protocol level (include/corio/transport.h), the peer of
 * nginx's `return 200 "hello"` in bench/http_run.sh.   http_corio <port|0>
 *
 * Requests are parsed incrementally from data_received: complete requests are parsed in place
 * from the receive buffer (no copy); only a request cut by a segment boundary is copied into the
 * connection's 8 KiB header buffer until its empty line arrives. Every request completed by one
 * data_received call is answered by one corio_transport_write (pipelined requests cost one send),
 * in order. Keep-alive is HTTP/1.1's default; "Connection: close" (or HTTP/1.0 without
 * "Connection: keep-alive") is answered and then the connection is closed, ignoring any bytes
 * pipelined after it. Request bodies (Content-Length) are read and discarded before the answer.
 * Errors get a status and close the connection: 400 (malformed), 413 (body over 1 GiB),
 * 431 (head over 8 KiB), 501 (Transfer-Encoding: no chunked bodies here), 505 (not HTTP/1.x).
 *
 * Prints "PORT <n>" on stdout once listening. On SIGTERM or SIGINT it closes the server and
 * every connection, prints its counters (RESULT lines) and exits 0 only if corio_loop_close
 * succeeds (nothing leaked on the loop). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <corio.h>

#define HEAD_MAX 8192
#define BODY_MAX (1ull << 30)

struct conn {
  corio_transport *tr;
  size_t len;            /* bytes of an unfinished request head in buf */
  size_t start;          /* where the request line begins in buf (after empty lines) */
  size_t scan;           /* where the search for the empty line resumes in buf */
  uint64_t body_left;    /* request body bytes still to discard */
  unsigned char closing; /* answered "close" or an error: ignore further input */
  unsigned char pending; /* an answer waits for the end of the body */
  unsigned char pend_head, pend_keep;
  char buf[HEAD_MAX];
};

/* A parsed request head: only what the answer depends on. */
struct req {
  int head;      /* HEAD: no body in the answer */
  int keep;      /* keep the connection open afterwards */
  uint64_t clen; /* request body length */
};

/* The answer batch of one data_received call: flushed with one write, or when full. */
struct out {
  corio_transport *tr;
  size_t len;
  char b[16384];
};

static unsigned long long requests, batches;
static corio_server *server;
static char date_hdr[64]; /* "Date: Tue, 01 Dec 2025 06:30:52 GMT\r\n", refreshed each second */
static time_t date_at;

static void refresh_date(void)
{
  time_t now = time(NULL);
  struct tm tm;
  if (now == date_at) return;
  date_at = now;
  gmtime_r(&now, &tm);
  strftime(date_hdr, sizeof(date_hdr), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

static void out_flush(struct out *o)
{
  if (o->len) corio_transport_write(o->tr, o->b, o->len);
  o->len = 0;
}

static void out_put(struct out *o, const char *s, size_t n)
{
  if (o->len + n > sizeof(o->b)) out_flush(o);
  memcpy(o->b + o->len, s, n);
  o->len += n;
}

#define PUT(o, lit) out_put(o, lit, sizeof(lit) - 1)

static void answer(struct out *o, int head, int keep)
{
  static const char ok[] = "HTTP/1.1 200 OK\r\nServer: corio\r\n";
  static const char tail_keep[] = "Content-Type: text/plain\r\nContent-Length: 5\r\n"
                                  "Connection: keep-alive\r\n\r\n";
  static const char tail_close[] = "Content-Type: text/plain\r\nContent-Length: 5\r\n"
                                   "Connection: close\r\n\r\n";
  requests++;
  PUT(o, ok);
  out_put(o, date_hdr, strlen(date_hdr));
  if (keep)
    PUT(o, tail_keep);
  else
    PUT(o, tail_close);
  if (!head) PUT(o, "hello");
}

static void answer_error(struct out *o, int status)
{
  const char *reason;
  char line[256];
  int n;
  switch (status) {
  case 413:
    reason = "Content Too Large";
    break;
  case 431:
    reason = "Request Header Fields Too Large";
    break;
  case 501:
    reason = "Not Implemented";
    break;
  case 505:
    reason = "HTTP Version Not Supported";
    break;
  default:
    reason = "Bad Request";
    break;
  }
  n = snprintf(line, sizeof(line),
               "HTTP/1.1 %d %s\r\nServer: corio\r\n%sContent-Length: 0\r\n"
               "Connection: close\r\n\r\n",
               status, reason, date_hdr);
  out_put(o, line, (size_t)n);
}

/* The end of a request head starting at p[*start]: the offset just past its empty line, or 0
 * while incomplete. Empty lines before the request line are skipped (RFC 9112 2.2: *start moves
 * past them). Lines end in CRLF or a bare LF. *scan (>= *start) is the first unfinished line:
 * the search resumes there, so finished lines are not searched again as more bytes arrive (only
 * the unfinished one is, which the 8 KiB head limit bounds). */
static size_t head_end(const char *p, size_t n, size_t *start, size_t *scan)
{
  size_t i = *scan;
  const char *nl;
  while (i < n && (nl = memchr(p + i, '\n', n - i)) != NULL) {
    size_t ll = (size_t)(nl - (p + i)), next = (size_t)(nl - p) + 1;
    if (ll == 0 || (ll == 1 && p[i] == '\r')) {
      if (i != *start) return next; /* the empty line ending the head */
      *start = next;                /* an empty line before the request line */
    }
    i = next;
  }
  *scan = i;
  return 0;
}

static int is_tchar(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Does the comma-separated list v (length n) contain token tok (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
  size_t tl = strlen(tok), i = 0, s, e;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    s = i;
    while (i < n && v[i] != ',') i++;
    e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    if (e - s == tl && strncasecmp(v + s, tok, tl) == 0) return 1;
  }
  return 0;
}

/* Parse a complete head p[0..n) (it ends with its empty line). 0 or an HTTP error status. */
static int parse_head(const char *p, size_t n, struct req *r)
{
  const char *end = p + n, *eol, *sp, *colon, *v, *ve;
  int minor, close_tok = 0, keep_tok = 0, have_clen = 0;
  uint64_t clen = 0, d;
  size_t ll;

  memset(r, 0, sizeof(*r));
  /* Request line: method SP target SP HTTP/1.x */
  eol = memchr(p, '\n', n);
  ll = (size_t)(eol - p);
  if (ll && p[ll - 1] == '\r') ll--;
  sp = memchr(p, ' ', ll);
  if (!sp || sp == p) return 400;
  for (v = p; v < sp; v++)
    if (!is_tchar((unsigned char)*v)) return 400;
  r->head = (sp - p == 4 && memcmp(p, "HEAD", 4) == 0);
  v = sp + 1;
  sp = memchr(v, ' ', ll - (size_t)(v - p));
  if (!sp || sp == v) return 400;
  for (; v < sp; v++)
    if ((unsigned char)*v <= ' ' || *v == 0x7f) return 400;
  v = sp + 1;
  if ((size_t)(p + ll - v) != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' ||
      v[5] > '9' || v[7] < '0' || v[7] > '9')
    return 400;
  if (v[5] != '1') return 505;
  minor = v[7] - '0';

  /* Header fields up to the empty line. */
  for (p = eol + 1; p < end; p = eol + 1) {
    eol = memchr(p, '\n', (size_t)(end - p));
    ll = (size_t)(eol - p);
    if (ll && p[ll - 1] == '\r') ll--;
    if (ll == 0) break;
    if (*p == ' ' || *p == '\t') return 400; /* obsolete line folding */
    colon = memchr(p, ':', ll);
    if (!colon || colon == p) return 400;
    for (v = p; v < colon; v++)
      if (!is_tchar((unsigned char)*v)) return 400; /* includes space before the colon */
    v = colon + 1;
    ve = p + ll;
    while (v < ve && (*v == ' ' || *v == '\t')) v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    if (colon - p == 10 && strncasecmp(p, "Connection", 10) == 0) {
      close_tok |= has_token(v, (size_t)(ve - v), "close");
      keep_tok |= has_token(v, (size_t)(ve - v), "keep-alive");
    } else if (colon - p == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
      if (v == ve) return 400;
      for (d = 0; v < ve; v++) {
        if (*v < '0' || *v > '9') return 400;
        if (d > BODY_MAX) return 413;
        d = d * 10 + (uint64_t)(*v - '0');
      }
      if (have_clen && d != clen) return 400; /* conflicting lengths: request smuggling */
      have_clen = 1;
      clen = d;
    } else if (colon - p == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
      return 501;
    }
  }
  if (clen > BODY_MAX) return 413;
  r->clen = clen;
  r->keep = !close_tok && (minor >= 1 || keep_tok);
  return 0;
}

/* A request head is complete: answer it (now, or after its body) or fail the connection. */
static void on_request(struct conn *c, struct out *o, const char *p, size_t n)
{
  struct req r;
  int st = parse_head(p, n, &r);
  if (st) {
    answer_error(o, st);
    c->closing = 1;
    return;
  }
  if (r.clen) {
    c->body_left = r.clen;
    c->pending = 1;
    c->pend_head = (unsigned char)r.head;
    c->pend_keep = (unsigned char)r.keep;
    return;
  }
  answer(o, r.head, r.keep);
  if (!r.keep) c->closing = 1;
}

static void on_data(corio_transport *tr, const uint8_t *data, size_t n)
{
  struct conn *c = corio_transport_get_context(tr);
  const char *d = (const char *)data;
  struct out o;
  size_t start, scan, end, take;

  if (c->closing) return;
  o.tr = tr;
  o.len = 0;
  refresh_date();
  batches++;
  while (n > 0 && !c->closing) {
    if (c->body_left) { /* discard the body, then give the answer it held back */
      take = n < c->body_left ? n : (size_t)c->body_left;
      d += take;
      n -= take;
      c->body_left -= take;
      if (!c->body_left && c->pending) {
        c->pending = 0;
        answer(&o, c->pend_head, c->pend_keep);
        if (!c->pend_keep) c->closing = 1;
      }
    } else if (c->len == 0) { /* at a request boundary: parse in place */
      start = scan = 0;
      end = head_end(d, n < HEAD_MAX ? n : HEAD_MAX, &start, &scan);
      if (end) {
        on_request(c, &o, d + start, end - start);
        d += end;
        n -= end;
      } else if (start == n) { /* only empty lines */
        n = 0;
      } else if (n - start >= HEAD_MAX) {
        answer_error(&o, 431);
        c->closing = 1;
      } else { /* an unfinished head: keep it */
        memcpy(c->buf, d + start, n - start);
        c->len = n - start;
        c->start = 0;
        c->scan = scan - start;
        n = 0;
      }
    } else { /* continue the unfinished head in buf */
      take = HEAD_MAX - c->len < n ? HEAD_MAX - c->len : n;
      memcpy(c->buf + c->len, d, take);
      start = c->start;
      scan = c->scan;
      end = head_end(c->buf, c->len + take, &start, &scan);
      if (end) {
        take = end - c->len; /* the input bytes that finished it */
        on_request(c, &o, c->buf + start, end - start);
        c->len = c->scan = c->start = 0;
      } else if (c->len + take == HEAD_MAX) {
        answer_error(&o, 431);
        c->closing = 1;
      } else {
        c->len += take;
        c->start = start;
        c->scan = scan;
      }
      d += take;
      n -= take;
    }
  }
  out_flush(&o);
  if (c->closing) corio_transport_close(tr); /* after flushing what was written */
}

static void on_made(corio_transport *tr, void *user)
{
  struct conn *c = malloc(sizeof(*c));
  (void)user;
  if (!c) {
    corio_transport_abort(tr);
    return;
  }
  c->tr = tr;
  c->len = c->start = c->scan = 0;
  c->body_left = 0;
  c->closing = c->pending = 0;
  corio_transport_set_context(tr, c);
}

static void on_lost(corio_transport *tr, int err)
{
  (void)err;
  free(corio_transport_get_context(tr));
}

/* A client that does not read its answers must not grow our write buffer without bound. */
static void on_pause(corio_transport *tr)
{
  corio_transport_pause_reading(tr);
}
static void on_resume(corio_transport *tr)
{
  corio_transport_resume_reading(tr);
}

static const corio_protocol http_proto = {on_made, on_data, NULL, on_lost, on_pause, on_resume};

static void on_closed(corio_future *f, void *arg)
{
  (void)f;
  corio_loop_stop(arg);
}

static void on_signal(corio_loop *loop, int signo, void *arg)
{
  corio_future *f;
  (void)signo;
  (void)arg;
  if (!server) return;
  f = corio_server_close(server, 1);
  server = NULL;
  corio_future_add_done_callback(f, on_closed, loop);
  corio_future_unref(f);
}

int main(int argc, char **argv)
{
  corio_loop *loop;
  corio_loop_stats st;
  int rc;
  if (argc != 2) {
    fprintf(stderr, "usage: http_corio <port|0>\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  rc = corio_loop_new(&loop, NULL);
  if (rc < 0) return fprintf(stderr, "http_corio: loop: %s\n", corio_strerror(rc)), 1;
  corio_add_signal_handler(loop, SIGTERM, on_signal, NULL);
  corio_add_signal_handler(loop, SIGINT, on_signal, NULL);
  rc = corio_server_listen_tcp(loop, "127.0.0.1", (uint16_t)atoi(argv[1]), &http_proto, NULL, NULL,
                               &server);
  if (rc < 0) {
    fprintf(stderr, "http_corio: listen on 127.0.0.1:%s: %s\n", argv[1], corio_strerror(rc));
    corio_remove_signal_handler(loop, SIGTERM);
    corio_remove_signal_handler(loop, SIGINT);
    corio_loop_close(loop);
    return 1;
  }
  printf("PORT %u\n", corio_server_port(server));
  fflush(stdout);
  corio_loop_run_forever(loop);
  corio_loop_get_stats(loop, &st);
  printf("# http_corio: %llu requests in %llu reads, %llu io_uring_enter (%.3f per request)\n",
         requests, batches, (unsigned long long)st.enters,
         requests ? (double)st.enters / (double)requests : 0.0);
  printf("RESULT name=http_enters_per_request impl=corio value=%.4f unit=count\n",
         requests ? (double)st.enters / (double)requests : 0.0);
  corio_remove_signal_handler(loop, SIGTERM);
  corio_remove_signal_handler(loop, SIGINT);
  rc = corio_loop_close(loop);
  if (rc < 0) fprintf(stderr, "http_corio: loop_close: %s\n", corio_strerror(rc));
  return rc < 0;
}
