/**
 * @file dns.h
 * Asynchronous DNS through c-ares, driven by the loop: the resolver's sockets are watched on the
 * ring and its timeouts are loop timers, so lookups never wait behind executor jobs (unlike
 * asyncio's getaddrinfo, cpython gh-112169). /etc/hosts is honoured, in the order the system
 * configures (nsswitch.conf "hosts: files dns"): it is read once and re-read when it changes
 * (checked at most once a second), and names found there, numeric hosts and "localhost" resolve
 * at once without a query. Answers of two addresses or more are in RFC 6724 order (reachable
 * addresses first, IPv6 before IPv4 when both work). Cancelling a lookup's future cancels that
 * lookup only.
 */
#ifndef CORIO_DNS_H
#define CORIO_DNS_H

#include <netdb.h>
#include <sys/socket.h>
#include "future.h"

/** One resolved address (a list, in the resolver's order). */
typedef struct corio_addrinfo {
  struct corio_addrinfo *next;
  int family, socktype, protocol;
  socklen_t addrlen;
  struct sockaddr_storage addr;
} corio_addrinfo;

/** Resolver options for a loop; zero-initialise. */
typedef struct corio_resolver_opts {
  const char *servers;    /**< "127.0.0.1:5353,[::1]:53" (NULL: /etc/resolv.conf) */
  double timeout_s;       /**< first try's timeout (0: c-ares' default, 2 s) */
  int tries;              /**< attempts per server (0: default, 3) */
  const char *hosts_file; /**< hosts file to honour (NULL: /etc/hosts; "": none) */
} corio_resolver_opts;

/** (Re)configure the loop's resolver. Fails with -EBUSY while lookups are pending. */
CORIO_EXTERN int corio_resolver_configure(corio_loop *loop, const corio_resolver_opts *opts);

/**
 * Resolve @p host (and @p service, may be NULL) like getaddrinfo(3); @p hints may be NULL
 * (any family, SOCK_STREAM). A NULL @p host is the loopback address (the wildcard with
 * AI_PASSIVE), IPv6 first. Done with a `const corio_addrinfo *` list as pointer value (freed
 * with the future), or an error: CORIO_E_DNS_NOTFOUND, CORIO_E_DNS_TIMEOUT, ... with the
 * resolver's text in corio_future_error_message(); -EAFNOSUPPORT for a family other than
 * AF_UNSPEC, AF_INET, AF_INET6. Address literals, hosts-file names and "localhost" come back
 * already done. Of the hints' flags, AI_PASSIVE, AI_NUMERICHOST and AI_NUMERICSERV are honoured.
 */
CORIO_EXTERN corio_future *corio_getaddrinfo(corio_loop *loop, const char *host,
                                             const char *service, const struct addrinfo *hints);

/** Reverse lookup: done with bytes "host\0service\0" (both NUL-terminated), like getnameinfo.
 *  An address in the hosts file gets the canonical name of its first line, without a query. */
CORIO_EXTERN corio_future *corio_getnameinfo(corio_loop *loop, const struct sockaddr *sa,
                                             socklen_t salen, int flags);

/** Map a c-ares status to a corio error code. */
CORIO_EXTERN int corio_dns_error(int ares_status);

#endif
