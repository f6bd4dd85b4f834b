/* Transports' private interface. */
#ifndef CORIO_TRANSPORT_IMPL_H
#define CORIO_TRANSPORT_IMPL_H

#include "loop_impl.h"

/** Free @p fn(user) when the server is freed (the stream layer's per-server state). */
void corio__server_set_user_free(corio_server *srv, void (*fn)(void *user));

#endif
