/* Transports' private interface. */
#ifndef CORIO_TRANSPORT_IMPL_H
#define CORIO_TRANSPORT_IMPL_H

#include <sys/socket.h>
#include "loop_impl.h"

/** Free @p fn(user) when the server is freed (the stream layer's per-server state). */
void corio__server_set_user_free(corio_server *srv, void (*fn)(void *user));

/** Connect to one address; with @p defer the transport is not started on success (no
 *  connection_made): the caller starts it or discards it. */
/** Happy eyeballs' attempt order (RFC 8305): @p list's IPv6 and IPv4 addresses interleaved by
 *  family, the first address's family first, each family in list order; at most @p max. */
size_t corio__he_order(const corio_addrinfo *list, const corio_addrinfo **out, size_t max);
corio_future *corio__connect_addr(corio_loop *loop, const struct sockaddr_storage *ss,
                                  socklen_t len, const corio_protocol *proto, void *user,
                                  bool defer);
/** connection_made + start reading, for a deferred connect's winner. */
void corio__transport_start(corio_transport *tr, void *user);
/** Wrap a connected stream socket (a subprocess's socketpair end) and start it. */
corio_transport *corio__transport_adopt(corio_loop *loop, int fd, const corio_protocol *proto,
                                        void *user);
/** What a transport's fd is: its ops differ (recv/send on a socket, read/write on a pipe). */
enum corio__tr_kind {
  CORIO__TR_SOCKET = 0, /* a connected stream socket: both directions */
  CORIO__TR_PIPE_R,     /* the read end of a pipe (a FIFO, a character device): reads only */
  CORIO__TR_PIPE_W,     /* the write end: writes only, and a watch for the reader going away */
};
/** Or'ed into a kind: read with one-shot reads, never IORING_OP_READ_MULTISHOT (pipe.c says
 *  for which files). */
#define CORIO__TR_ONESHOT 0x100
/** corio__transport_adopt for any kind. The transport is not freed before the next turn of the
 *  loop, even if connection_made closes it, so the caller may use the pointer returned. */
corio_transport *corio__transport_adopt_kind(corio_loop *loop, int fd, int kind,
                                             const corio_protocol *proto, void *user);
int corio__transport_kind(const corio_transport *tr);
/** Set a pipe write's flags: RWF_NOSIGNAL where the kernel has it (Linux 6.18), else IOSQE_ASYNC
 *  (pipe.c explains why). */
void corio__pipe_write_prep(struct io_uring_sqe *sqe);
/** A stream over a pipe end we own (kind CORIO__TR_PIPE_R or _W). NULL on ENOMEM (the fd is then
 *  left open). */
corio_stream *corio__stream_adopt_kind(corio_loop *loop, int fd, int kind);
/** A stream over a connected socket we already own (NULL on ENOMEM; the fd is then closed). */
corio_stream *corio__stream_adopt(corio_loop *loop, int fd);
/** Make corio_stream_close() set *@p slot to NULL: the owner's pointer to the stream (a
 *  process's stdin/stdout/stderr) never outlives the user's close. */
void corio__stream_set_owner_slot(corio_stream *s, corio_stream **slot);
/** Close and free a deferred connect's transport that was never started. */
void corio__transport_discard(corio_transport *tr);

/* Bind a Unix socket of @p type to @p un (from corio_unix_sockaddr): a socket file left behind
 * by an endpoint that is gone (a connect to it is refused) is replaced; a live socket, or a file
 * that is not a socket, is not (-EADDRINUSE). transports/udp.c. */
int corio__unix_bind(int fd, int type, const char *path, const struct sockaddr_un *un,
                     socklen_t len);

#endif
