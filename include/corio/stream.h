/**
 * @file stream.h
 * asyncio's streams for tasks: corio_open_connection / corio_start_server give a corio_stream
 * with read, readexactly, readline, readuntil (bounded by a limit), write + drain, write_eof and
 * close — all futures to await. Built on the transports of transport.h.
 *
 *     CORIO_AWAIT_TRY(t, corio_open_connection(t->loop, "127.0.0.1", 8080));
 *     f->s = corio_future_ptr(corio_awaited(t));
 *     CORIO_AWAIT_TRY(t, corio_stream_write_all(f->s, "ping\n", 5));
 *     CORIO_AWAIT_TRY(t, corio_stream_readline(f->s));
 *     line = corio_future_bytes(corio_awaited(t));
 *   CORIO_FINALLY(t);
 *     if (f->s) CORIO_AWAIT(t, corio_stream_close(f->s));
 */
#ifndef CORIO_STREAM_H
#define CORIO_STREAM_H

#include "transport.h"

typedef struct corio_stream corio_stream;
/** Called for each accepted connection (start a task for it; it must close the stream). */
typedef void (*corio_stream_handler)(corio_stream *s, void *user);

/** Connect to a host name or address (resolver + happy eyeballs, see corio_connect). Done with
 *  the stream as pointer value (the caller closes it). */
CORIO_EXTERN corio_future *corio_open_connection(corio_loop *loop, const char *host, uint16_t port);
CORIO_EXTERN corio_future *corio_open_unix_connection(corio_loop *loop, const char *path);
/** Serve: @p handler gets each connection's stream. Close with corio_server_close(). */
CORIO_EXTERN int corio_start_server(corio_loop *loop, const char *host, uint16_t port,
                                    corio_stream_handler handler, void *user,
                                    const corio_server_opts *opts, corio_server **out);
CORIO_EXTERN int corio_start_unix_server(corio_loop *loop, const char *path,
                                         corio_stream_handler handler, void *user,
                                         const corio_server_opts *opts, corio_server **out);

/**
 * A stream over the read end of a pipe (FIFO, socket, character device such as stdin; see
 * corio_connect_read_pipe): read, readexactly, readline, readuntil, and EOF once every writer
 * closed. Writing fails with -EBADF. The stream owns @p fd (closed by corio_stream_close); on
 * failure the fd is left to the caller. -EBADF / -EINVAL / -ENOMEM as corio_connect_read_pipe.
 */
CORIO_EXTERN int corio_open_read_pipe(corio_loop *loop, int fd, corio_stream **out);
/**
 * A stream over the write end of a pipe (FIFO, socket, character device such as stdout): write +
 * drain with the transport's flow control, write_eof = close after flushing. No SIGPIPE: once the
 * reader is gone, write and drain fail with -EPIPE. Reading fails with -EBADF.
 */
CORIO_EXTERN int corio_open_write_pipe(corio_loop *loop, int fd, corio_stream **out);
/**
 * pipe(2) as two streams: bytes written to @p *writer are read from @p *reader; closing the writer
 * is EOF for the reader, closing the reader makes the writer fail with -EPIPE. Both fds are
 * O_CLOEXEC. Close both streams.
 */
CORIO_EXTERN int corio_pipe_open(corio_loop *loop, corio_stream **reader, corio_stream **writer);

/** Up to @p max bytes (at least 1), as soon as any are buffered; empty bytes at EOF. One read
 *  may wait at a time (CORIO_E_READ_PENDING). Cancelling a read loses no data. */
CORIO_EXTERN corio_future *corio_stream_read(corio_stream *s, size_t max);
/** Exactly @p n bytes, or CORIO_E_INCOMPLETE_READ at EOF (the partial data stays readable). */
CORIO_EXTERN corio_future *corio_stream_readexactly(corio_stream *s, size_t n);
/** Up to and including the separator; CORIO_E_LIMIT_OVERRUN beyond the limit (data kept),
 *  CORIO_E_INCOMPLETE_READ at EOF without it. */
CORIO_EXTERN corio_future *corio_stream_readuntil(corio_stream *s, const void *sep, size_t seplen);
/** readuntil "\n"; at EOF returns what is left (maybe empty), as asyncio's readline. */
CORIO_EXTERN corio_future *corio_stream_readline(corio_stream *s);
/** Buffer limit for readuntil/readline and read-side flow control (default 64 KiB). */
CORIO_EXTERN int corio_stream_set_limit(corio_stream *s, size_t limit);
CORIO_EXTERN int corio_stream_at_eof(const corio_stream *s);

/** Queue bytes (copied). */
CORIO_EXTERN int corio_stream_write(corio_stream *s, const void *data, size_t len);
/** Done when the write buffer is below the low-water mark (at once if it is). Fails if the
 *  connection was lost. */
CORIO_EXTERN corio_future *corio_stream_drain(corio_stream *s);
/** write then drain. */
CORIO_EXTERN corio_future *corio_stream_write_all(corio_stream *s, const void *data, size_t len);
/** Half-close after the buffered bytes. */
CORIO_EXTERN int corio_stream_write_eof(corio_stream *s);
/** Close (flushing) and wait until closed; the stream is freed after, don't use it again. */
CORIO_EXTERN corio_future *corio_stream_close(corio_stream *s);
CORIO_EXTERN corio_transport *corio_stream_transport(corio_stream *s);

#endif
