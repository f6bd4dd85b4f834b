/**
 * @file datagram.h
 * UDP (and Unix datagram) endpoints at the protocol level, asyncio's DatagramProtocol:
 * datagram_received with the sender's address, sendto, connected and unconnected sockets.
 */
#ifndef CORIO_DATAGRAM_H
#define CORIO_DATAGRAM_H

#include <sys/socket.h>
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
/** Send one datagram (copied). @p to NULL on a connected endpoint. */
CORIO_EXTERN int corio_datagram_sendto(corio_datagram *d, const void *data, size_t len,
                                       const struct sockaddr *to, socklen_t tolen);
/** The bound local port (host order). */
CORIO_EXTERN uint16_t corio_datagram_port(const corio_datagram *d);
CORIO_EXTERN void *corio_datagram_user(const corio_datagram *d);
/** Datagrams queued for sending and not yet sent. */
CORIO_EXTERN size_t corio_datagram_pending(const corio_datagram *d);
/** Close (after the queued sends); connection_lost(0) follows. */
CORIO_EXTERN void corio_datagram_close(corio_datagram *d);

#endif
