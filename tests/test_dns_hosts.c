/* The resolver's own hosts-file table and answer ordering, against a real dnsmasq on 127.0.0.1
 * (started and stopped by PID here) and temporary hosts files named with
 * corio_resolver_opts.hosts_file: names found in the file are answered without a query, names
 * absent go to dnsmasq, an edit of the file is seen within the recheck second, answers of
 * several addresses come in RFC 6724 order, and getnameinfo reads the same table. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <corio.h>
#include "test_util.h"
#include <corio/future.h>

static corio_loop *loop;
static pid_t dnsmasq_pid;
static int dns_port, silent_fd, silent_port;
static char hosts_path[64];

static void start_dnsmasq(void)
{
  static const char *const records[] = {"--address=/corio.test/127.0.0.1",
                                        "--address=/dual.corio.test/::1",
                                        "--address=/dual.corio.test/127.0.0.1", NULL};
  dnsmasq_pid = test_start_dnsmasq(&dns_port, records);
}

static void write_hosts(const char *text)
{
  FILE *f = fopen(hosts_path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  cr_assert_eq(fclose(f), 0);
}

/* Point the resolver at dnsmasq (or the silent server) and at @p hosts ("" none, NULL system). */
static void configure(bool silent, const char *hosts)
{
  corio_resolver_opts o = {0};
  char servers[64];
  snprintf(servers, sizeof(servers), "127.0.0.1:%d", silent ? silent_port : dns_port);
  o.servers = servers;
  o.timeout_s = silent ? 0.2 : 1;
  o.tries = silent ? 1 : 2;
  o.hosts_file = hosts;
  cr_assert_eq(corio_resolver_configure(loop, &o), 0);
}

static void setup(void)
{
  int fd;
  cr_assert_eq(corio_loop_new(&loop, NULL), 0);
  start_dnsmasq();
  silent_port = test_free_udp_port(&silent_fd); /* bound, never answers */
  snprintf(hosts_path, sizeof(hosts_path), "/tmp/corio-hosts.XXXXXX");
  fd = mkstemp(hosts_path);
  cr_assert_geq(fd, 0);
  close(fd);
}

static void teardown(void)
{
  if (dnsmasq_pid > 0) {
    kill(dnsmasq_pid, SIGTERM);
    waitpid(dnsmasq_pid, NULL, 0);
  }
  close(silent_fd);
  unlink(hosts_path);
}
TestSuite(dns_hosts, .init = setup, .fini = teardown, .timeout = 30);

static void need_dnsmasq(void)
{
  if (dnsmasq_pid <= 0) cr_skip_test("dnsmasq (dnsmasq-base) not installed");
}

static void drain_loop(corio_loop *l)
{
  while (corio_loop_run_once(l, 0.01) > 0) {
  }
}

static void drain(void)
{
  drain_loop(loop);
}

static const char *addr_str(const corio_addrinfo *a, char *buf, size_t n)
{
  if (a->family == AF_INET)
    return inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->addr)->sin_addr, buf, (socklen_t)n);
  return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->addr)->sin6_addr, buf,
                   (socklen_t)n);
}

static int port_of(const corio_addrinfo *a)
{
  return a->family == AF_INET ? ntohs(((const struct sockaddr_in *)&a->addr)->sin_port)
                              : ntohs(((const struct sockaddr_in6 *)&a->addr)->sin6_port);
}

/* The addresses of an answer, "a,b,c", or the error's name. */
static const char *answer(const char *host, const char *service, int family, char *buf, size_t n)
{
  struct addrinfo h = {0};
  const corio_addrinfo *a;
  corio_future *f;
  char one[64];
  size_t used = 0;
  h.ai_family = family;
  f = corio_getaddrinfo(loop, host, service, &h);
  cr_assert_not_null(f);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  buf[0] = 0;
  if (corio_future_error(f)) {
    snprintf(buf, n, "%s", corio_err_name(corio_future_error(f)));
  } else {
    for (a = corio_future_ptr(f); a; a = a->next)
      used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "," : "",
                               addr_str(a, one, sizeof(one)));
  }
  corio_future_unref(f);
  return buf;
}

/* Whether this host can use IPv6 loopback (a UDP socket can connect to ::1). */
static bool have_ipv6_loopback(void)
{
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  bool ok;
  if (fd < 0) return false;
  a.sin6_addr = in6addr_loopback;
  ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

Test(dns_hosts, names_in_the_file_are_answered_without_a_query)
{
  char buf[256];
  corio_future *f;
  const corio_addrinfo *a;
  struct addrinfo h = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
  write_hosts("# a comment line\n"
              "127.0.0.5   alpha alpha-alias   # trailing comment\n"
              "\n"
              "   \t198.51.100.7\tSpaced\tSpacedAlias  \n"
              "not-an-address bogus\n"
              "10.1.2.3\n"
              "::5 alpha6\n"
              "127.0.0.6 twice twice\n"
              "#127.0.0.9 commented\n");
  configure(true, hosts_path); /* a silent server: any query would time out */
  cr_assert_str_eq(answer("alpha", "80", AF_INET, buf, sizeof(buf)), "127.0.0.5");
  cr_assert_str_eq(answer("ALPHA-Alias", NULL, AF_UNSPEC, buf, sizeof(buf)), "127.0.0.5",
                   "names match case-insensitively, aliases too");
  cr_assert_str_eq(answer("spacedalias", NULL, AF_INET, buf, sizeof(buf)), "198.51.100.7");
  cr_assert_str_eq(answer("spaced", NULL, AF_UNSPEC, buf, sizeof(buf)), "198.51.100.7");
  cr_assert_str_eq(answer("alpha6", NULL, AF_INET6, buf, sizeof(buf)), "::5");
  cr_assert_str_eq(answer("alpha6", NULL, AF_UNSPEC, buf, sizeof(buf)), "::5");
  cr_assert_str_eq(answer("twice", NULL, AF_UNSPEC, buf, sizeof(buf)), "127.0.0.6",
                   "a name twice on a line is one address");
  /* not in the file (a comment, a bad address, the wrong family): asked of the silent server */
  cr_assert_str_eq(answer("commented", NULL, AF_INET, buf, sizeof(buf)), "CORIO_E_DNS_TIMEOUT");
  cr_assert_str_eq(answer("bogus", NULL, AF_INET, buf, sizeof(buf)), "CORIO_E_DNS_TIMEOUT");
  cr_assert_str_eq(answer("alpha6", NULL, AF_INET, buf, sizeof(buf)), "CORIO_E_DNS_TIMEOUT");
  cr_assert_str_eq(answer("alpha.onion", NULL, AF_INET, buf, sizeof(buf)), "CORIO_E_DNS_NOTFOUND");
  /* the service, socket type and protocol are the caller's */
  f = corio_getaddrinfo(loop, "alpha", "domain", &h);
  cr_assert(corio_future_done(f), "answered at once");
  a = corio_future_ptr(f);
  cr_assert_not_null(a);
  cr_assert_eq(port_of(a), 53);
  cr_assert_eq(a->socktype, SOCK_DGRAM);
  cr_assert_null(a->next);
  corio_future_unref(f);
  cr_assert_str_eq(answer("alpha", "no-such-service", AF_INET, buf, sizeof(buf)),
                   "CORIO_E_DNS_NONAME");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns_hosts, names_absent_from_the_file_go_to_dnsmasq)
{
  char buf[256];
  need_dnsmasq();
  write_hosts("127.0.0.77 override.corio.test\n");
  configure(false, hosts_path);
  cr_assert_str_eq(answer("www.corio.test", "80", AF_INET, buf, sizeof(buf)), "127.0.0.1");
  cr_assert_str_eq(answer("override.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.77",
                   "the hosts file comes first (nsswitch: files dns)");
  /* no hosts file at all: the same name is dnsmasq's */
  configure(false, "");
  cr_assert_str_eq(answer("override.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.1");
  cr_assert_str_eq(answer("localhost", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.1",
                   "localhost never goes to DNS");
  /* a hosts file that does not exist is an empty one */
  configure(false, "/nonexistent/corio-hosts");
  cr_assert_str_eq(answer("override.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.1");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns_hosts, an_edited_file_is_read_again)
{
  char buf[256];
  struct stat st;
  struct timespec times[2];
  need_dnsmasq();
  write_hosts("127.0.0.5 chg.corio.test\n");
  configure(false, hosts_path);
  cr_assert_str_eq(answer("chg.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.5");
  /* rewritten in place, same size and inode: only the mtime (or nothing, on a coarse clock)
   * tells; the table is rechecked at most once a second */
  write_hosts("127.0.0.6 chg.corio.test\n");
  usleep(1100000);
  cr_assert_str_eq(answer("chg.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.6");
  /* a new name appended */
  write_hosts("127.0.0.6 chg.corio.test\n127.0.0.8 new.corio.test\n");
  usleep(1100000);
  cr_assert_str_eq(answer("new.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.8");
  /* removed: the names go to dnsmasq again */
  cr_assert_eq(unlink(hosts_path), 0);
  usleep(1100000);
  cr_assert_str_eq(answer("chg.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.1");
  /* and back */
  write_hosts("127.0.0.9 chg.corio.test\n");
  usleep(1100000);
  cr_assert_str_eq(answer("chg.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.9");
  /* rewritten with the same size, inode and mtime, as on a file system whose timestamps are
   * coarser than the time between two writes: a file read within 5 s of its mtime is read again */
  cr_assert_eq(stat(hosts_path, &st), 0);
  write_hosts("127.0.0.4 chg.corio.test\n");
  times[0] = st.st_atim;
  times[1] = st.st_mtim;
  cr_assert_eq(utimensat(AT_FDCWD, hosts_path, times, 0), 0);
  usleep(1100000);
  cr_assert_str_eq(answer("chg.corio.test", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.4");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns_hosts, several_addresses_come_in_rfc6724_order)
{
  char buf[256];
  bool v6 = have_ipv6_loopback();
  write_hosts("198.51.100.7 multi\n"
              "127.0.0.1 multi\n"
              "127.0.0.2 multi\n"
              "127.0.0.1 dual\n"
              "::1 dual\n");
  configure(true, hosts_path);
  /* rule 8 (smaller scope: IPv4 loopback is link-local) puts the loopback addresses first,
   * rule 10 keeps them in file order */
  cr_assert_str_eq(answer("multi", NULL, AF_INET, buf, sizeof(buf)),
                   "127.0.0.1,127.0.0.2,198.51.100.7");
  /* rule 6: ::1 (precedence 50) before IPv4 (35), if this host can use it (else rule 1) */
  cr_assert_str_eq(answer("dual", NULL, AF_UNSPEC, buf, sizeof(buf)),
                   v6 ? "::1,127.0.0.1" : "127.0.0.1,::1");
  cr_assert_str_eq(answer("dual", NULL, AF_INET, buf, sizeof(buf)), "127.0.0.1");
  cr_assert_str_eq(answer("localhost", NULL, AF_UNSPEC, buf, sizeof(buf)),
                   v6 ? "::1,127.0.0.1" : "127.0.0.1,::1", "localhost's default addresses");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns_hosts, dns_answers_of_several_addresses_are_ordered)
{
  char buf[256];
  bool v6 = have_ipv6_loopback();
  int i;
  need_dnsmasq();
  configure(false, "");
  /* dnsmasq answers A and AAAA separately; whichever comes first, ::1 leads when usable */
  for (i = 0; i < 5; i++)
    cr_assert_str_eq(answer("dual.corio.test", NULL, AF_UNSPEC, buf, sizeof(buf)),
                     v6 ? "::1,127.0.0.1" : "127.0.0.1,::1");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

static const char *nameinfo(const char *ip, int port, int flags, char *buf, size_t n)
{
  struct sockaddr_storage ss = {0};
  struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
  socklen_t len;
  corio_future *f;
  const char *b;
  if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    len = sizeof(*s4);
  } else {
    cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    len = sizeof(*s6);
  }
  f = corio_getnameinfo(loop, (struct sockaddr *)&ss, len, flags);
  cr_assert_not_null(f);
  cr_assert_eq(corio_loop_run_until_complete(loop, f), 0);
  if (corio_future_error(f)) {
    snprintf(buf, n, "%s", corio_err_name(corio_future_error(f)));
  } else {
    b = (const char *)corio_future_bytes(f)->data;
    snprintf(buf, n, "%s/%s", b, b + strlen(b) + 1);
  }
  corio_future_unref(f);
  return buf;
}

Test(dns_hosts, getnameinfo_reads_the_file)
{
  char buf[256];
  need_dnsmasq();
  write_hosts("127.0.0.5 first.example alias5\n"
              "127.0.0.5 second.example\n"
              "::5 six.example\n");
  configure(false, hosts_path);
  cr_assert_str_eq(nameinfo("127.0.0.5", 80, 0, buf, sizeof(buf)), "first.example/http",
                   "the first line's canonical name");
  cr_assert_str_eq(nameinfo("127.0.0.5", 80, NI_NUMERICSERV, buf, sizeof(buf)), "first.example/80");
  cr_assert_str_eq(nameinfo("::5", 53, NI_DGRAM, buf, sizeof(buf)), "six.example/domain");
  cr_assert_str_eq(nameinfo("127.0.0.5", 0, 0, buf, sizeof(buf)), "first.example/");
  cr_assert_str_eq(nameinfo("127.0.0.5", 80, NI_NUMERICHOST, buf, sizeof(buf)), "127.0.0.5/http");
  /* not in the file: a PTR query to dnsmasq, which has no name for it */
  cr_assert_str_eq(nameinfo("127.0.0.99", 80, 0, buf, sizeof(buf)), "127.0.0.99/http");
  cr_assert_neq(
      strcmp(nameinfo("127.0.0.99", 80, NI_NAMEREQD, buf, sizeof(buf)), "127.0.0.99/http"), 0,
      "NI_NAMEREQD: an error, not the number");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns_hosts, a_large_file)
{
  enum { N = 20000 };
  FILE *f;
  char buf[256], name[64], want[64];
  int i;
  f = fopen(hosts_path, "w");
  cr_assert_not_null(f);
  for (i = 0; i < N; i++)
    fprintf(f, "10.%d.%d.%d h%d.big.test H%d-ALIAS.big.test\n", i >> 16, (i >> 8) & 255, i & 255, i,
            i);
  cr_assert_eq(fclose(f), 0);
  configure(true, hosts_path);
  for (i = 0; i < N; i += 997) {
    snprintf(name, sizeof(name), "h%d-alias.BIG.test", i);
    snprintf(want, sizeof(want), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
    cr_assert_str_eq(answer(name, NULL, AF_INET, buf, sizeof(buf)), want);
    snprintf(name, sizeof(name), "h%d.big.test", i);
    cr_assert_str_eq(nameinfo(want, 0, 0, buf, sizeof(buf)), strcat(name, "/"));
  }
  cr_assert_str_eq(answer("h20000.big.test", NULL, AF_INET, buf, sizeof(buf)),
                   "CORIO_E_DNS_TIMEOUT", "past the last name: asked of the (silent) server");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

Test(dns_hosts, null_host_and_bad_family)
{
  char buf[256];
  struct addrinfo h = {.ai_flags = AI_PASSIVE};
  corio_future *f;
  const corio_addrinfo *a;
  cr_assert_str_eq(answer(NULL, "8080", AF_UNSPEC, buf, sizeof(buf)), "::1,127.0.0.1");
  cr_assert_str_eq(answer(NULL, "8080", AF_INET, buf, sizeof(buf)), "127.0.0.1");
  f = corio_getaddrinfo(loop, NULL, "http", &h);
  a = corio_future_ptr(f);
  cr_assert_not_null(a);
  cr_assert_str_eq(addr_str(a, buf, sizeof(buf)), "::");
  cr_assert_eq(port_of(a), 80);
  cr_assert_str_eq(addr_str(a->next, buf, sizeof(buf)), "0.0.0.0");
  corio_future_unref(f);
  cr_assert_str_eq(answer("alpha", NULL, AF_UNIX, buf, sizeof(buf)), "EAFNOSUPPORT");
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* Without hosts_file the table is /etc/hosts, the file c-ares reads: a name from it (other than
 * localhost, which has its own default) resolves without a query. */
Test(dns_hosts, the_system_hosts_file_is_the_default)
{
  char line[512], name[256], addr[64], want[64], buf[256];
  unsigned char bin[16];
  FILE *f = fopen("/etc/hosts", "r");
  bool found = false;
  if (!f) cr_skip_test("no /etc/hosts");
  while (!found && fgets(line, sizeof(line), f)) {
    if (strchr(line, '#')) *strchr(line, '#') = 0;
    if (sscanf(line, "%63s %255s", addr, name) != 2) continue;
    if (inet_pton(AF_INET, addr, bin) != 1 || !strcasecmp(name, "localhost")) continue;
    snprintf(want, sizeof(want), "%s", addr);
    found = true;
  }
  fclose(f);
  if (!found) cr_skip_test("/etc/hosts names no IPv4 host but localhost");
  configure(true, NULL); /* the silent server: a query would time out */
  answer(name, NULL, AF_INET, buf, sizeof(buf));
  cr_assert_eq(strncmp(buf, want, strlen(want)), 0, "%s: %s, want %s first", name, buf, want);
  drain();
  cr_assert_eq(corio_loop_close(loop), 0);
}

/* ---- allocation failures: every allocation of a hosts-file lookup made to fail in turn ---- */

/* 0 if everything succeeded, -ENOMEM if something failed cleanly; asserts anything else. */
static int scenario_hosts(long n)
{
  corio_resolver_opts o = {0};
  struct addrinfo h = {.ai_family = AF_UNSPEC};
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(80)};
  const char *names[] = {"multi", "alpha", "localhost"};
  corio_loop *l;
  corio_future *f;
  char servers[64], buf[64];
  int rc, err, result = 0;
  size_t i;
  rc = corio_loop_new(&l, NULL);
  if (rc < 0) {
    cr_assert_eq(rc, -ENOMEM, "N=%ld: corio_loop_new: %s", n, corio_strerror(rc));
    return rc;
  }
  snprintf(servers, sizeof(servers), "127.0.0.1:%d", silent_port);
  o.servers = servers;
  o.timeout_s = 0.2;
  o.tries = 1;
  o.hosts_file = hosts_path;
  rc = corio_resolver_configure(l, &o);
  if (rc < 0) {
    cr_assert_eq(rc, -ENOMEM, "N=%ld: configure: %s", n, corio_strerror(rc));
    result = rc;
    goto out;
  }
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    f = corio_getaddrinfo(l, names[i], "80", &h);
    if (!f) {
      result = -ENOMEM;
      continue;
    }
    cr_assert(corio_future_done(f), "N=%ld: %s answered at once", n, names[i]);
    err = corio_future_error(f);
    if (err) {
      cr_assert_eq(err, -ENOMEM, "N=%ld: %s: %s", n, names[i], corio_err_name(err));
      result = err;
    } else {
      cr_assert_not_null(corio_future_ptr(f));
      if (i == 0)
        cr_assert_str_eq(addr_str(corio_future_ptr(f), buf, sizeof(buf)), "::1", "N=%ld", n);
    }
    corio_future_unref(f);
  }
  sa.sin_addr.s_addr = htonl(0x7f000005);
  f = corio_getnameinfo(l, (struct sockaddr *)&sa, sizeof(sa), 0);
  if (!f) {
    result = -ENOMEM;
  } else {
    cr_assert(corio_future_done(f), "N=%ld: getnameinfo answered at once", n);
    err = corio_future_error(f);
    if (err) {
      cr_assert_eq(err, -ENOMEM, "N=%ld: getnameinfo: %s", n, corio_err_name(err));
      result = err;
    } else {
      cr_assert_str_eq((const char *)corio_future_bytes(f)->data, "alpha", "N=%ld", n);
    }
    corio_future_unref(f);
  }
out:
  drain_loop(l);
  cr_assert_eq(corio_loop_close(l), 0, "N=%ld: the loop is not idle", n);
  return result;
}

Test(dns_hosts, allocation_failures_are_clean_errors)
{
  long k, nfail;
  int rc, failed = 0;
  if (!have_ipv6_loopback()) cr_skip_test("no IPv6 loopback: the expected order differs");
  write_hosts("127.0.0.5 alpha\n198.51.100.7 multi\n127.0.0.1 multi\n::1 multi\n");
  A.count = A.fail_at = A.live = A.failed = 0;
  corio_set_allocator(&test_alloc_counting);
  rc = scenario_hosts(0);
  corio_set_allocator(NULL);
  cr_assert_eq(rc, 0, "the scenario must succeed without failures");
  cr_assert_eq(A.live, 0, "leak without any failure: %ld blocks", A.live);
  k = A.count;
  for (nfail = 1; nfail <= k + 2; nfail++) {
    A.count = A.live = A.failed = 0;
    A.fail_at = nfail;
    corio_set_allocator(&test_alloc_counting);
    rc = scenario_hosts(nfail);
    corio_set_allocator(NULL);
    cr_assert_eq(A.live, 0, "N=%ld: %ld blocks leaked", nfail, A.live);
    if (rc) failed++;
  }
  cr_assert_gt(failed, 0, "no injected failure was reported");
  cr_assert_eq(corio_loop_close(loop), 0);
}
