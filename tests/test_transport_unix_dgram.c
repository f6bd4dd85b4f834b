/* Unix datagram endpoints against a forked peer using plain sockets: a burst echoed back with
 * every byte and the order checked, sender addresses (path, abstract, unnamed), connected mode,
 * socket-file handling (unlink at close, stale files replaced, live ones and other files kept),
 * too-long paths, datagrams larger than the receive buffer, a peer that is gone. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <corio.h>

static corio_loop *loop;
static char dir[64];
static void setup(void)
{
  strcpy(dir, "/tmp/corio_udx_XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
}
static void teardown(void)
{
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}
TestSuite(udx, .init = setup, .fini = teardown, .timeout = 60);

static void drain(void)
{
  int i;
  for (i = 0; i < 200 && corio_loop_run_once(loop, 0.01) > 0; i++) {
  }
}

static void run_until(const int *v, int target)
{
  int iter = 0;
  while (*v < target) {
    cr_assert_geq(corio_loop_run_once(loop, 1.0), 0);
    cr_assert_lt(++iter, 100000, "stuck at %d of %d", *v, target);
  }
}

static uint8_t pat(uint32_t seq, size_t i)
{
  return (uint8_t)(seq * 7u + i * 13u + (i >> 8));
}

/* a datagram: 4 bytes of sequence number, then the pattern; its size varies with seq */
static size_t dsize(uint32_t seq)
{
  return 4 + (seq * 997u) % 6000u;
}

static void make_dgram(uint8_t *buf, uint32_t seq)
{
  size_t i, n = dsize(seq);
  memcpy(buf, &seq, 4);
  for (i = 4; i < n; i++) buf[i] = pat(seq, i);
}

static int bound_socket(const char *path)
{
  struct sockaddr_un un;
  socklen_t len;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(fd, 0);
  if (path) {
    cr_assert_eq(corio_unix_sockaddr(path, &un, &len), 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&un, len), 0, "bind %s: %s", path, strerror(errno));
  }
  return fd;
}

/* The peer: echoes @p n datagrams back to their sender, then exits 0 (1 on a read error). */
static pid_t echo_child(int fd, int n)
{
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    static uint8_t buf[1 << 18];
    struct sockaddr_un from;
    socklen_t fl;
    ssize_t r;
    int i;
    for (i = 0; i < n; i++) {
      fl = sizeof(from);
      r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
      if (r < 0) _exit(1);
      if (sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, fl) != r) _exit(2);
    }
    _exit(0);
  }
  close(fd);
  return pid;
}

static int child_status(pid_t pid)
{
  int st;
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct ep {
  int got, bad, misordered, errors, last_err, lost;
  uint32_t next_seq;
  char from[128];
  size_t last_len;
};

static void ep_recv(corio_datagram *d, const uint8_t *p, size_t n, const struct sockaddr *from,
                    socklen_t fl)
{
  struct ep *e = corio_datagram_user(d);
  uint32_t seq;
  size_t i;
  cr_assert_geq(corio_unix_sockaddr_path(from, fl, e->from, sizeof(e->from)), 0);
  e->last_len = n;
  if (n < 4) {
    fprintf(stderr, "short %zu\n", n);
    e->bad++;
    e->got++;
    return;
  }
  memcpy(&seq, p, 4);
  if (seq != e->next_seq) e->misordered++;
  e->next_seq = seq + 1;
  if (n != dsize(seq) && n < 100000) {
    fprintf(stderr, "seq %u n %zu want %zu\n", seq, n, dsize(seq));
    e->bad++;
  }
  for (i = 4; i < n; i++)
    if (p[i] != pat(seq, i)) {
      fprintf(stderr, "seq %u n %zu i %zu got %u want %u\n", seq, n, i, p[i], pat(seq, i));
      e->bad++;
      break;
    }
  e->got++;
}
static void ep_error(corio_datagram *d, int err)
{
  struct ep *e = corio_datagram_user(d);
  e->errors++;
  e->last_err = err;
}
static void ep_lost(corio_datagram *d, int err)
{
  struct ep *e = corio_datagram_user(d);
  cr_assert_eq(err, 0);
  e->lost++;
}
static const corio_datagram_protocol ep_proto = {ep_recv, ep_error, ep_lost};

static void close_ep(corio_datagram *d, struct ep *e)
{
  corio_datagram_close(d);
  run_until(&e->lost, 1);
}

/* 3000 datagrams sent at once (far above the receiver's queue of 10): all echoed, in order,
 * every byte right, and the sender's path comes with each. */
Test(udx, burst_echo_every_byte_in_order)
{
  char me[96], peer[96];
  struct ep e = {0};
  corio_datagram *d;
  static uint8_t buf[8192];
  uint32_t seq;
  pid_t pid;
  const int n = 3000;
  snprintf(me, sizeof(me), "%s/me", dir);
  snprintf(peer, sizeof(peer), "%s/peer", dir);
  pid = echo_child(bound_socket(peer), n);
  cr_assert_eq(corio_datagram_open_unix(loop, me, NULL, &ep_proto, &e, &d), 0);
  cr_assert_eq(corio_datagram_port(d), 0);
  for (seq = 0; seq < (uint32_t)n; seq++) {
    make_dgram(buf, seq);
    cr_assert_eq(corio_datagram_sendto_path(d, buf, dsize(seq), peer), 0);
  }
  cr_assert_gt(corio_datagram_pending(d), 0);
  run_until(&e.got, n);
  cr_assert_eq(e.bad, 0);
  cr_assert_eq(e.misordered, 0);
  cr_assert_eq(e.errors, 0, "error %d", e.last_err);
  cr_assert_str_eq(e.from, peer);
  cr_assert_eq(corio_datagram_pending(d), 0);
  cr_assert_eq(child_status(pid), 0);
  close_ep(d, &e);
  cr_assert_eq(access(me, F_OK), -1, "our socket file is unlinked at close");
  cr_assert_eq(access(peer, F_OK), 0, "the peer's is not ours to remove");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Connected mode from an autobound endpoint: sends need no address, replies find us. */
Test(udx, connected_autobind)
{
  char peer[96];
  struct ep e = {0};
  corio_datagram *d;
  static uint8_t buf[8192];
  uint32_t seq;
  pid_t pid;
  snprintf(peer, sizeof(peer), "%s/peer", dir);
  pid = echo_child(bound_socket(peer), 100);
  cr_assert_eq(corio_datagram_open_unix(loop, NULL, peer, &ep_proto, &e, &d), 0);
  for (seq = 0; seq < 100; seq++) {
    make_dgram(buf, seq);
    cr_assert_eq(corio_datagram_sendto(d, buf, dsize(seq), NULL, 0), 0);
  }
  run_until(&e.got, 100);
  cr_assert_eq(e.bad, 0);
  cr_assert_eq(e.misordered, 0);
  cr_assert_str_eq(e.from, peer);
  cr_assert_eq(child_status(pid), 0);
  close_ep(d, &e);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* An abstract name; the peer sends from an unbound socket (no address: "") and from an abstract
 * one ("@..."). */
Test(udx, abstract_namespace_and_sender_addresses)
{
  char name[64], buf[8192];
  struct ep e = {0};
  corio_datagram *d, *d2;
  struct sockaddr_un un;
  socklen_t len;
  int unnamed, named;
  snprintf(name, sizeof(name), "@corio-test-%d", (int)getpid());
  cr_assert_eq(corio_datagram_open_unix(loop, name, NULL, &ep_proto, &e, &d), 0);
  cr_assert_eq(corio_unix_sockaddr(name, &un, &len), 0);
  cr_assert_eq(len, offsetof(struct sockaddr_un, sun_path) + strlen(name), "no NUL counted");
  unnamed = bound_socket(NULL);
  make_dgram((uint8_t *)buf, 0);
  cr_assert_eq(sendto(unnamed, buf, dsize(0), 0, (struct sockaddr *)&un, len), (ssize_t)dsize(0));
  run_until(&e.got, 1);
  cr_assert_str_eq(e.from, "", "an unbound sender has no address");
  named = bound_socket("@corio-test-sender");
  make_dgram((uint8_t *)buf, 1);
  cr_assert_eq(sendto(named, buf, dsize(1), 0, (struct sockaddr *)&un, len), (ssize_t)dsize(1));
  run_until(&e.got, 2);
  cr_assert_str_eq(e.from, "@corio-test-sender");
  cr_assert_eq(e.bad, 0);
  /* the name is taken while we hold it */
  cr_assert_eq(corio_datagram_open_unix(loop, name, NULL, &ep_proto, &e, &d2), -EADDRINUSE);
  close(unnamed);
  close(named);
  close_ep(d, &e);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A stale socket file is replaced; a live socket and a regular file are not. */
Test(udx, socket_files)
{
  char path[96];
  struct ep e = {0}, e2 = {0};
  corio_datagram *d, *d2;
  int fd, live;
  struct stat st;
  snprintf(path, sizeof(path), "%s/s", dir);
  fd = bound_socket(path);
  close(fd); /* stale: the file stays, nobody behind it */
  cr_assert_eq(access(path, F_OK), 0);
  cr_assert_eq(corio_datagram_open_unix(loop, path, NULL, &ep_proto, &e, &d), 0);
  /* a second endpoint on the same live path: refused, and the first one's file stays */
  cr_assert_eq(corio_datagram_open_unix(loop, path, NULL, &ep_proto, &e2, &d2), -EADDRINUSE);
  cr_assert_eq(stat(path, &st), 0);
  cr_assert(S_ISSOCK(st.st_mode));
  /* someone replaces our file: we do not unlink theirs at close */
  cr_assert_eq(unlink(path), 0);
  live = bound_socket(path);
  close_ep(d, &e);
  cr_assert_eq(access(path, F_OK), 0, "the file is not ours any more: kept");
  close(live);
  unlink(path);
  /* a regular file is never removed */
  fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  cr_assert_geq(fd, 0);
  close(fd);
  cr_assert_eq(corio_datagram_open_unix(loop, path, NULL, &ep_proto, &e2, &d2), -EADDRINUSE);
  cr_assert_eq(stat(path, &st), 0);
  cr_assert(S_ISREG(st.st_mode));
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(udx, bad_input_and_long_paths)
{
  char longp[200], abs107[120], buf[8];
  struct sockaddr_un un;
  socklen_t len;
  struct ep e = {0};
  corio_datagram *d = (corio_datagram *)1, *u;
  memset(longp, 'a', sizeof(longp));
  longp[0] = '/';
  longp[108] = '\0'; /* 108 bytes + NUL: one too many for sun_path */
  cr_assert_eq(corio_unix_sockaddr(longp, &un, &len), -ENAMETOOLONG);
  cr_assert_str_eq(corio_strerror(-ENAMETOOLONG), "File name too long");
  longp[107] = '\0';
  cr_assert_eq(corio_unix_sockaddr(longp, &un, &len), 0, "107 bytes fit");
  longp[107] = longp[108] = 'a';
  longp[150] = '\0';
  cr_assert_eq(corio_datagram_open_unix(loop, longp, NULL, &ep_proto, &e, &d), -ENAMETOOLONG);
  cr_assert_null(d);
  cr_assert_eq(corio_datagram_open_unix(loop, NULL, longp, &ep_proto, &e, &d), -ENAMETOOLONG);
  memset(abs107, 'b', sizeof(abs107));
  abs107[0] = '@';
  abs107[108] = '\0'; /* '@' + 107 bytes: fits exactly (no NUL needed) */
  cr_assert_eq(corio_unix_sockaddr(abs107, &un, &len), 0);
  cr_assert_eq(len, sizeof(struct sockaddr_un));
  abs107[108] = 'b';
  abs107[109] = '\0';
  cr_assert_eq(corio_unix_sockaddr(abs107, &un, &len), -ENAMETOOLONG);
  cr_assert_eq(corio_unix_sockaddr("", &un, &len), -EINVAL);
  cr_assert_eq(corio_unix_sockaddr("@", &un, &len), -EINVAL);
  cr_assert_eq(corio_datagram_open_unix(loop, "", NULL, &ep_proto, &e, &d), -EINVAL);
  cr_assert_eq(corio_datagram_open_unix(loop, NULL, NULL, NULL, &e, &d), -EINVAL);
  cr_assert_eq(corio_datagram_open_unix(NULL, NULL, NULL, &ep_proto, &e, &d), -EINVAL);
  cr_assert_eq(corio_datagram_open_unix(loop, NULL, "/nonexistent/corio", &ep_proto, &e, &d),
               -ENOENT);
  /* an unconnected endpoint needs an address; a UDP endpoint takes no path */
  cr_assert_eq(corio_datagram_open_unix(loop, NULL, NULL, &ep_proto, &e, &d), 0);
  cr_assert_eq(corio_datagram_sendto(d, "x", 1, NULL, 0), -EDESTADDRREQ);
  cr_assert_eq(corio_datagram_sendto_path(d, "x", 1, longp), -ENAMETOOLONG);
  cr_assert_eq(corio_datagram_sendto_path(d, "x", 1, NULL), -EINVAL);
  cr_assert_eq(corio_unix_sockaddr_path(NULL, 0, buf, sizeof(buf)), 0, "no address: unnamed");
  cr_assert_str_eq(buf, "");
  {
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    cr_assert_eq(corio_unix_sockaddr_path((struct sockaddr *)&in4, sizeof(in4), buf, sizeof(buf)),
                 -EINVAL);
  }
  cr_assert_eq(corio_unix_sockaddr("/tmp/abcdefgh", &un, &len), 0);
  cr_assert_eq(corio_unix_sockaddr_path((struct sockaddr *)&un, len, buf, sizeof(buf)), -ENOSPC);
  cr_assert_eq(corio_datagram_open(loop, "127.0.0.1", 0, NULL, 0, &ep_proto, &e, &u), 0);
  cr_assert_eq(corio_datagram_sendto_path(u, "x", 1, "/tmp/x"), -EAFNOSUPPORT);
  cr_assert_eq(corio_datagram_sendto(u, longp, 70000, NULL, 0), -EMSGSIZE);
  corio_datagram_close(u);
  close_ep(d, &e);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A 200 KiB datagram arrives whole; one larger than the 256 KiB receive buffer is dropped and
 * reported (-EMSGSIZE), and the next one still arrives. */
Test(udx, big_datagrams)
{
  char me[96];
  struct ep e = {0};
  corio_datagram *d;
  pid_t pid;
  int fd;
  snprintf(me, sizeof(me), "%s/me", dir);
  cr_assert_eq(corio_datagram_open_unix(loop, me, NULL, &ep_proto, &e, &d), 0);
  fd = bound_socket(NULL);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    static uint8_t buf[300 * 1024];
    struct sockaddr_un un;
    socklen_t len;
    int sz = 1 << 20;
    size_t i;
    uint32_t seq;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0) _exit(3);
    if (corio_unix_sockaddr(me, &un, &len) < 0) _exit(4);
    for (seq = 0; seq < 3; seq++) {
      size_t n = seq == 1 ? sizeof(buf) : 200 * 1024;
      memcpy(buf, &seq, 4);
      for (i = 4; i < n; i++) buf[i] = pat(seq, i);
      if (sendto(fd, buf, n, 0, (struct sockaddr *)&un, len) != (ssize_t)n) _exit(5);
    }
    _exit(0);
  }
  close(fd);
  run_until(&e.got, 2);
  cr_assert_eq(child_status(pid), 0, "child could send (SO_SNDBUFFORCE needs CAP_NET_ADMIN)");
  cr_assert_eq(e.errors, 1);
  cr_assert_eq(e.last_err, -EMSGSIZE);
  cr_assert_eq(e.bad, 0);
  cr_assert_eq(e.last_len, 200 * 1024);
  cr_assert_eq(e.misordered, 1, "seq 1 was dropped, seq 2 followed seq 0");
  close_ep(d, &e);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* The connected peer goes away: the next send is reported, the endpoint stays usable. */
Test(udx, peer_gone)
{
  char peer[96];
  struct ep e = {0};
  corio_datagram *d;
  int fd;
  snprintf(peer, sizeof(peer), "%s/peer", dir);
  fd = bound_socket(peer);
  cr_assert_eq(corio_datagram_open_unix(loop, NULL, peer, &ep_proto, &e, &d), 0);
  close(fd);
  cr_assert_eq(corio_datagram_sendto(d, "ping", 4, NULL, 0), 0);
  run_until(&e.errors, 1);
  cr_assert_eq(e.last_err, -ECONNREFUSED);
  close_ep(d, &e);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* A peer that never reads: its queue fills, our sends wait for room, and a plain close waits
 * with them. corio_datagram_abort drops them and closes now, connected (the wait is a poll for
 * room) and not (a retry timer). */
Test(udx, abort_drops_sends_a_stalled_peer_holds)
{
  char peer[96], me[96];
  static uint8_t buf[8192];
  struct ep e = {0};
  corio_datagram *d;
  int connected, i, peer_fd;
  for (connected = 0; connected < 2; connected++) {
    snprintf(peer, sizeof(peer), "%s/stalled%d", dir, connected);
    snprintf(me, sizeof(me), "%s/me%d", dir, connected);
    peer_fd = bound_socket(peer); /* never read */
    memset(&e, 0, sizeof(e));
    cr_assert_eq(corio_datagram_open_unix(loop, me, connected ? peer : NULL, &ep_proto, &e, &d), 0);
    for (i = 0; i < 2000; i++) {
      make_dgram(buf, (uint32_t)i);
      cr_assert_eq(connected ? corio_datagram_sendto(d, buf, 1000, NULL, 0)
                             : corio_datagram_sendto_path(d, buf, 1000, peer),
                   0);
    }
    for (i = 0; i < 5; i++) corio_loop_run_once(loop, 0.02);
    cr_assert_gt(corio_datagram_pending(d), 0, "the peer's queue is full");
    corio_datagram_close(d);
    for (i = 0; i < 5; i++) corio_loop_run_once(loop, 0.02);
    cr_assert_eq(e.lost, 0, "a plain close waits for the queued sends");
    corio_datagram_abort(d);
    run_until(&e.lost, 1);
    cr_assert_eq(access(me, F_OK), -1, "our socket file is gone");
    close(peer_fd);
  }
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}
