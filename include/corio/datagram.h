/**
 * @file datagram.h
 * UDP and Unix datagram endpoints at the protocol level, asyncio's DatagramProtocol:
 * datagram_received with the sender's address, sendto, connected and unconnected sockets.
 */
#ifndef CORIO_DATAGRAM_H
#define CORIO_DATAGRAM_H

#include <sys/socket.h>
#include <sys/un.h>
#include "future.h"

typedef struct corio_datagram corio_datagram;

typedef struct corio_datagram_protocol {
  /** A datagram arrived (bytes valid during the call only). */
  void (*datagram_received)(corio_datagram *d, const uint8_t *data, size_t len,
                            const struct sockaddr *from, socklen_t fromlen);
  /** A send or receive failed (ICMP port unreachable: -ECONNREFUSED...). The endpoint stays. */
  void (*error_received)(corio_datagram *d, int err);
  /** Closed: the last callback, the endpoint is freed after it. */
  void (*connection_lost)(corio_datagram *d, int err);
} corio_datagram_protocol;

/**
 * Open a UDP endpoint bound to numeric @p local_host (NULL: 0.0.0.0, or :: if remote is IPv6)
 * and @p local_port (0: any), optionally connected to @p remote_host:@p remote_port (NULL: not
 * connected; then every send names its destination).
 */
CORIO_EXTERN int corio_datagram_open(corio_loop *loop, const char *local_host, uint16_t local_port,
                                     const char *remote_host, uint16_t remote_port,
                                     const corio_datagram_protocol *proto, void *user,
                                     corio_datagram **out);
/**
 * Open a Unix datagram endpoint (AF_UNIX, SOCK_DGRAM): datagrams are reliable and kept in order,
 * and carry the sender's address (a path, an abstract name, or none: see
 * corio_unix_sockaddr_path).
 *
 * @p local_path: the path to bind ("@name": Linux's abstract namespace, no file), or NULL to let
 * the kernel pick a unique abstract name (autobind), so that peers can still answer. @p
 * remote_path: connect to it (then send with @p to NULL, and only its datagrams are received), or
 * NULL.
 *
 * Socket files: corio unlinks the file it bound when the endpoint closes, if the file is still
 * the one it created (asyncio leaves that to the program). At open, a socket file left behind by
 * an endpoint that is gone (a connect to it is refused) is replaced; a live socket or a file that
 * is not a socket is not (-EADDRINUSE). Abstract names need no cleanup.
 *
 * Sizes: a datagram is received whole into a 256 KiB buffer; a larger one is dropped and reported
 * as error_received(-EMSGSIZE). The largest datagram the kernel sends is bounded by SO_SNDBUF
 * (about 208 KiB by default): a larger send reports -EMSGSIZE through error_received. When the
 * receiver's queue is full (net.unix.max_dgram_qlen) sends wait in order, one in flight; close
 * waits for them (corio_datagram_pending counts them).
 *
 * @return 0, -ENAMETOOLONG (a path of 108 bytes or more: sun_path holds 107 and a NUL; an abstract
 *         name of more than 107 bytes after the '@'), -EINVAL (empty path or name, NULL proto or
 *         datagram_received), -EADDRINUSE, -ENOENT / -ECONNREFUSED (remote path missing or not
 *         listening), -EACCES, -ENOMEM.
 */
CORIO_EXTERN int corio_datagram_open_unix(corio_loop *loop, const char *local_path,
                                          const char *remote_path,
                                          const corio_datagram_protocol *proto, void *user,
                                          corio_datagram **out);
/** Send one datagram (copied) to the Unix socket at @p path ("@name": abstract). -EAFNOSUPPORT
 *  on a UDP endpoint, -ENAMETOOLONG / -EINVAL for a bad path. */
CORIO_EXTERN int corio_datagram_sendto_path(corio_datagram *d, const void *data, size_t len,
                                            const char *path);
/** Fill @p un from @p path ("@name": abstract namespace) for sendto or bind. -ENAMETOOLONG when
 *  it does not fit sun_path, -EINVAL if empty. */
CORIO_EXTERN int corio_unix_sockaddr(const char *path, struct sockaddr_un *un, socklen_t *len);
/** The text of a Unix address (as datagram_received's @p from): the path, "@name" for an abstract
 *  name, "" for an unnamed (unbound) sender. @return its length, -ENOSPC if @p size is too small,
 *  -EINVAL if not AF_UNIX. */
CORIO_EXTERN int corio_unix_sockaddr_path(const struct sockaddr *sa, socklen_t salen, char *buf,
                                          size_t size);
/** Send one datagram (copied). @p to NULL on a connected endpoint. -EMSGSIZE above 65536 bytes on
 *  UDP; later failures (-ECONNREFUSED, -EMSGSIZE from the kernel...) go to error_received. */
CORIO_EXTERN int corio_datagram_sendto(corio_datagram *d, const void *data, size_t len,
                                       const struct sockaddr *to, socklen_t tolen);
/** The bound local port (host order); 0 for a Unix endpoint. */
CORIO_EXTERN uint16_t corio_datagram_port(const corio_datagram *d);
CORIO_EXTERN void *corio_datagram_user(const corio_datagram *d);
/** Datagrams queued for sending and not yet sent. */
CORIO_EXTERN size_t corio_datagram_pending(const corio_datagram *d);
/** Close (after the queued sends); connection_lost(0) follows. */
CORIO_EXTERN void corio_datagram_close(corio_datagram *d);
/** Close now, dropping the sends still queued (a Unix peer that stopped reading would keep a
 *  plain close waiting forever); connection_lost(0) follows. Also after corio_datagram_close. */
CORIO_EXTERN void corio_datagram_abort(corio_datagram *d);

#endif
