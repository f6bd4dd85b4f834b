/**
 * @file corio.h
 * Umbrella header: asyncio and concurrent.futures for C, on io_uring.
 */
#ifndef CORIO_H
#define CORIO_H

#include "corio/common.h"
#include "corio/error.h"
#include "corio/loop.h"
#include "corio/future.h"
#include "corio/task.h"
#include "corio/combinators.h"
#include "corio/sync.h"
#include "corio/executor.h"
#include "corio/shm.h"
#include "corio/transport.h"
#include "corio/stream.h"
#include "corio/dns.h"
#include "corio/datagram.h"
#include "corio/subprocess.h"

#endif
