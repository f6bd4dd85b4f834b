/**
 * @file transport.h
 * asyncio's transports and protocols on io_uring: the callback level for the fastest servers.
 *
 * A server accepts with one multishot accept; each connection receives with one multishot recv
 * into the loop's provided-buffer ring (an idle connection holds no buffer) and sends from a
 * write buffer, one send in flight at a time per connection, every SQE going out in the loop's
 * single io_uring_enter per iteration.
 *
 * Callbacks run on the loop thread. data_received's bytes are valid only during the call (they
 * live in a ring buffer that is returned to the kernel right after).
 */
#ifndef CORIO_TRANSPORT_H
#define CORIO_TRANSPORT_H

#include "future.h"

typedef struct corio_transport corio_transport;
typedef struct corio_server corio_server;

typedef struct corio_protocol {
  /** The connection is up. @p user is the server's (or connect's) user pointer. */
  void (*connection_made)(corio_transport *tr, void *user);
  /** Bytes arrived (valid during the call only). */
  void (*data_received)(corio_transport *tr, const uint8_t *data, size_t len);
  /** The peer closed its side. Return nonzero to keep writing (half-close), 0 to close. NULL:
   *  close. */
  int (*eof_received)(corio_transport *tr);
  /** The connection is gone: 0 when closed by us or cleanly, else the error (-ECONNRESET...).
   *  The last callback: the transport is freed after it returns. */
  void (*connection_lost)(corio_transport *tr, int err);
  /** The write buffer went above the high-water mark (optional). */
  void (*pause_writing)(corio_transport *tr);
  /** ... and back below the low-water mark (optional). */
  void (*resume_writing)(corio_transport *tr);
} corio_protocol;

/** Queue bytes for sending (copied). -EPIPE once closing or after write_eof. */
CORIO_EXTERN int corio_transport_write(corio_transport *tr, const void *data, size_t len);
/** Shut down the write side once the buffer is flushed (half-close). */
CORIO_EXTERN int corio_transport_write_eof(corio_transport *tr);
/** Close after flushing what was written; connection_lost(0) follows. */
CORIO_EXTERN void corio_transport_close(corio_transport *tr);
/** Close now, dropping unsent bytes; connection_lost(-ECONNABORTED) follows. */
CORIO_EXTERN void corio_transport_abort(corio_transport *tr);
/** Stop / restart delivering data_received (the kernel keeps buffering up to its limits). */
CORIO_EXTERN void corio_transport_pause_reading(corio_transport *tr);
CORIO_EXTERN void corio_transport_resume_reading(corio_transport *tr);
/** Bytes written and not yet accepted by the kernel. */
CORIO_EXTERN size_t corio_transport_get_write_buffer_size(const corio_transport *tr);
/** Flow control marks (defaults 64 KiB / 16 KiB, asyncio's). */
CORIO_EXTERN int corio_transport_set_write_buffer_limits(corio_transport *tr, size_t high,
                                                         size_t low);
CORIO_EXTERN void corio_transport_set_context(corio_transport *tr, void *ctx);
CORIO_EXTERN void *corio_transport_get_context(const corio_transport *tr);
CORIO_EXTERN int corio_transport_fd(const corio_transport *tr);
CORIO_EXTERN corio_loop *corio_transport_loop(const corio_transport *tr);

/** Server options; zero-initialise. */
typedef struct corio_server_opts {
  int backlog;    /**< 0 = 4096 */
  int reuse_port; /**< SO_REUSEPORT */
  int no_nodelay; /**< keep Nagle on accepted TCP sockets (TCP_NODELAY is on by default) */
} corio_server_opts;

/**
 * Listen on a numeric IPv4/IPv6 address (NULL: all IPv6+IPv4) and @p port (0: any; read it
 * back with corio_server_port). Every accepted connection gets @p proto and @p user.
 */
CORIO_EXTERN int corio_server_listen_tcp(corio_loop *loop, const char *host, uint16_t port,
                                         const corio_protocol *proto, void *user,
                                         const corio_server_opts *opts, corio_server **out);
/** Listen on a Unix stream socket at @p path (an existing socket file is replaced). */
CORIO_EXTERN int corio_server_listen_unix(corio_loop *loop, const char *path,
                                          const corio_protocol *proto, void *user,
                                          const corio_server_opts *opts, corio_server **out);
/** The bound TCP port (host order), or 0. */
CORIO_EXTERN uint16_t corio_server_port(const corio_server *srv);
/** Connections currently open. */
CORIO_EXTERN size_t corio_server_connections(const corio_server *srv);
/**
 * Stop accepting. Open connections are not touched (asyncio); @p close_connections closes them
 * too. The future is done when the listener and (if asked) every connection are closed; the
 * server is freed then.
 */
CORIO_EXTERN corio_future *corio_server_close(corio_server *srv, int close_connections);

/**
 * Connect to a numeric IPv4/IPv6 @p host and @p port. The future is done with the transport as
 * pointer value (connection_made has run), or fails (-ECONNREFUSED...). Cancelling it (e.g.
 * corio_wait_for's timeout) cancels the connect.
 */
CORIO_EXTERN corio_future *corio_connect_tcp(corio_loop *loop, const char *host, uint16_t port,
                                             const corio_protocol *proto, void *user);
/** Options of corio_connect; zero-initialise. */
typedef struct corio_connect_opts {
  double happy_eyeballs_delay; /**< RFC 8305 stagger between attempts: 0 = 0.25 s, < 0: one at a
                                    time (the next only after the previous failed) */
  int family;                  /**< AF_UNSPEC (0), AF_INET or AF_INET6 */
} corio_connect_opts;

/**
 * Connect to a host name or address: resolve it (corio_getaddrinfo), then try the addresses
 * IPv6/IPv4 interleaved, starting the next attempt every happy_eyeballs_delay until one
 * connects (RFC 8305, asyncio's happy_eyeballs_delay). Only the winner's protocol sees
 * connection_made. Done with the transport, or the last attempt's error (the resolver's error if
 * resolution failed). Cancelling it (e.g. through corio_wait_for: a connect timeout) cancels the
 * lookup and every attempt.
 */
CORIO_EXTERN corio_future *corio_connect(corio_loop *loop, const char *host, uint16_t port,
                                         const corio_protocol *proto, void *user,
                                         const corio_connect_opts *opts);

/** Connect to a Unix stream socket. */
CORIO_EXTERN corio_future *corio_connect_unix(corio_loop *loop, const char *path,
                                              const corio_protocol *proto, void *user);

/**
 * Wrap the read end of a pipe (or a FIFO, a socket, a character device such as stdin) as a read
 * transport, asyncio's connect_read_pipe: data_received for what arrives, eof_received when the
 * last writer closed (return nonzero to keep the transport open; NULL or 0 closes it), then
 * connection_lost. pause_reading/resume_reading work as on a socket; write and write_eof fail
 * with -EBADF.
 *
 * The transport owns @p fd from then on (it is closed with the transport); on failure the fd is
 * left to the caller. Its O_NONBLOCK flag is left as it is: neither setting matters to io_uring.
 * connection_made runs inside this call; the transport is never freed before the call returns.
 *
 * @return 0, -EBADF (@p fd invalid or not open for reading), -EINVAL (a regular file or a
 *         directory: not a stream; or no data_received), -ENOMEM.
 */
CORIO_EXTERN int corio_connect_read_pipe(corio_loop *loop, int fd, const corio_protocol *proto,
                                         void *user, corio_transport **out);
/**
 * Wrap the write end of a pipe (FIFO, socket, character device such as stdout) as a write
 * transport, asyncio's connect_write_pipe: write with high/low-water flow control
 * (pause_writing/resume_writing), write_eof closes the fd once the buffer is flushed (a pipe has
 * no half-close), and no SIGPIPE: a write after the reader went away fails the transport with
 * -EPIPE (connection_lost(-EPIPE)). The reader going away is noticed even while idle (a poll for
 * POLLERR on the write end): with bytes still buffered the loss is -EPIPE, else a clean close
 * (connection_lost(0)), as in asyncio. data_received is never called and may be NULL.
 * Ownership of @p fd and errors as corio_connect_read_pipe (-EBADF if not open for writing).
 */
CORIO_EXTERN int corio_connect_write_pipe(corio_loop *loop, int fd, const corio_protocol *proto,
                                          void *user, corio_transport **out);

#endif
