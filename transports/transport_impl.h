/* Transports' private interface. */
#ifndef CORIO_TRANSPORT_IMPL_H
#define CORIO_TRANSPORT_IMPL_H

#include <sys/socket.h>
#include "loop_impl.h"

/** Free @p fn(user) when the server is freed (the stream layer's per-server state). */
void corio__server_set_user_free(corio_server *srv, void (*fn)(void *user));

/** Connect to one address; with @p defer the transport is not started on success (no
 *  connection_made): the caller starts it or discards it. */
corio_future *corio__connect_addr(corio_loop *loop, const struct sockaddr_storage *ss,
                                  socklen_t len, const corio_protocol *proto, void *user,
                                  bool defer);
/** connection_made + start reading, for a deferred connect's winner. */
void corio__transport_start(corio_transport *tr, void *user);
/** Wrap a connected stream socket (a subprocess's socketpair end) and start it. */
corio_transport *corio__transport_adopt(corio_loop *loop, int fd, const corio_protocol *proto,
                                        void *user);
/** A stream over a connected socket we already own (NULL on ENOMEM; the fd is then closed). */
corio_stream *corio__stream_adopt(corio_loop *loop, int fd);
/** Make corio_stream_close() set *@p slot to NULL: the owner's pointer to the stream (a
 *  process's stdin/stdout/stderr) never outlives the user's close. */
void corio__stream_set_owner_slot(corio_stream *s, corio_stream **slot);
/** Close and free a deferred connect's transport that was never started. */
void corio__transport_discard(corio_transport *tr);

#endif
