/*
 * The process pool's private interface: the wire protocol between the pool (parent), its fork
 * server and its workers, and the two programs that run in the child processes.
 *
 * Processes and sockets (all AF_UNIX SOCK_SEQPACKET socketpairs, so every send is one message
 * and message boundaries need no framing):
 *
 *   parent (pool: submitters + manager thread)
 *     |-- control socket --> fork server (single-threaded, forked by corio_process_pool_new)
 *     |                        |-- fork() --> worker 0, worker 1, ...
 *     |-- worker socket (one per worker; the parent makes the pair and sends the worker's end
 *         to the fork server with SPAWN, SCM_RIGHTS; worker 0's end is inherited by the fork
 *         server, named in its config, and forked before anything else)
 *
 * Control messages, parent -> fork server: SPAWN (fork a worker for slot `worker` on the
 * attached socket; `token` comes back in the reply), KILL (signal `value` to the worker spawned
 * with `token`, if not reaped yet). EOF: the fork server exits.
 * Fork server -> parent: SPAWNED (`pid` of the worker `token`), SPAWN_FAILED (`value` = errno;
 * the worker's end of the socket is closed first), EXIT (worker `pid` was reaped; `value` = its
 * wait status). The parent may send jobs to a worker before its SPAWNED arrives (they wait in
 * the socket), and may even get its results first: the two travel on different sockets.
 *
 * Worker messages, parent -> worker: JOB (function and argument pointer values; input bytes
 * inline after the header, in the parent's window for this worker, or in a one-shot memfd);
 * CHUNK (several jobs of one map chunk in one message: `len` is the number of jobs, and the
 * payload is their input lengths, uint64 each, then the inputs, each of these parts starting at a
 * multiple of CORIO__PP_CHUNK_ALIGN; inputs always inline). EOF: the worker exits.
 * Worker -> parent: RESULT (kind, integer, error code; bytes or error text inline, in the
 * worker's window, or in a one-shot memfd), one per job, in the order the jobs were sent: the
 * results of a chunk stream back as its jobs finish.
 *
 * Pointer values cross the process boundary as integers: every worker is a fork of the same
 * program (no exec), so code addresses and memory that existed when the pool started are valid.
 */
#ifndef CORIO_PROCPOOL_IMPL_H
#define CORIO_PROCPOOL_IMPL_H

#include <sys/types.h>
#include "executor_impl.h"

enum {
  CORIO__PP_JOB = 1,
  CORIO__PP_RESULT,
  CORIO__PP_SPAWN,
  CORIO__PP_KILL,
  CORIO__PP_SPAWNED,
  CORIO__PP_SPAWN_FAILED,
  CORIO__PP_EXIT,
  CORIO__PP_CHUNK,
};

/* Inputs in a CHUNK message start at multiples of this, as a malloc'd block would (a job may
 * read its input through a struct pointer). */
#define CORIO__PP_CHUNK_ALIGN 16

enum {
  CORIO__PP_F_MEMFD = 1, /* the payload is in the attached memfd, not after the header */
  CORIO__PP_F_BYTES = 2, /* JOB: the input is bytes (submit_bytes), even if empty */
  CORIO__PP_F_WINDOW = 4 /* the payload is at the start of the sender's window; an attached fd
                            is a new window that replaces the old one */
};

/* Payloads above inline_max and up to this size travel through windows: one memfd per worker and
 * direction, mapped MAP_SHARED by both processes and kept for the worker's life, so a payload
 * costs one copy in and one copy out, with no memfd_create, tmpfs allocation, mmap or munmap per
 * job (those made a 128 KiB job 6x slower than a 64 KiB inline one). Bigger payloads get a
 * one-shot memfd each: keeping 64 MiB mapped per worker would cost more than it saves. */
#define CORIO__PP_WINDOW_MAX ((size_t)4 << 20)

typedef struct corio__pp_job_msg {
  uint32_t type, flags;
  uint64_t fn, arg; /* corio_job_fn and void * values */
  uint64_t len;     /* JOB: input length; CHUNK: number of jobs */
  int32_t worker;   /* slot index, for corio_job_worker */
  uint32_t pad;
} corio__pp_job_msg;

typedef struct corio__pp_result_msg {
  uint32_t type, flags;
  int32_t kind; /* CORIO__JOB_INT, _BYTES, _ERR (NONE travels as INT 0) */
  int32_t err;
  int64_t i;
  uint64_t len; /* bytes, or the error text (no NUL) */
} corio__pp_result_msg;

typedef struct corio__pp_ctl_msg {
  uint32_t type;
  int32_t worker; /* SPAWN, SPAWNED: slot index */
  int32_t pid;    /* KILL, SPAWNED, EXIT */
  int32_t value;  /* KILL: signal; SPAWN_FAILED: errno; EXIT: wait status */
  uint64_t token; /* SPAWN, SPAWNED, SPAWN_FAILED, KILL: the parent's id of the worker */
} corio__pp_ctl_msg;

/* What the fork server and its workers need; a copy lives in the fork server (it is a fork). */
typedef struct corio__pp_config {
  corio_job_fn initializer;
  unsigned max_tasks_per_child;
  size_t inline_max;    /* payloads above this go through a memfd */
  size_t msg_max;       /* the largest message payload (a CHUNK's): the workers' receive buffer */
  int first_sock;       /* >= 0: the fork server forks worker 0 on this socket first thing */
  uint64_t first_token; /* and reports it with this token, as if SPAWN had asked for it */
  int fail_forks;       /* test hook: this many worker forks fail with EAGAIN (-1: all) */
} corio__pp_config;

/** Test hook, read by corio_process_pool_new: the new pool's fork server fails this many worker
 *  forks with EAGAIN (-1: every one), as if fork() had hit RLIMIT_NPROC. */
extern int corio__procpool_fail_forks;

/** The fork server's program (procpool_child.c): serves @p ctl until EOF, then _exit(0). */
void corio__pp_fork_server(int ctl, const corio__pp_config *cfg) __attribute__((noreturn));

/* ---- message I/O shared by both sides (procpool_child.c) ---- */
/** Send one message: @p hdr, then @p payload, with @p fd (>= 0) attached. 0 or -errno. */
int corio__pp_send(int sock, const void *hdr, size_t hlen, const void *payload, size_t plen, int fd,
                   int flags);
/** Receive one message into @p hdr (exactly @p hlen bytes expected) and @p payload (up to
 *  @p pcap); *fd gets an attached descriptor (close-on-exec) or -1. @return the payload length,
 *  -ENODATA on EOF, -EPROTO on a malformed message, or -errno. */
ssize_t corio__pp_recv(int sock, void *hdr, size_t hlen, void *payload, size_t pcap, int *fd,
                       int flags);
/** A new memfd holding a copy of @p data. @return the fd or -errno. */
int corio__pp_memfd_from(const void *data, size_t len);
/** Read @p len bytes at offset 0 of @p fd into @p dst. 0 or -errno (-EPROTO if short). */
int corio__pp_read_all(int fd, void *dst, size_t len);

/* A window (see CORIO__PP_WINDOW_MAX), as one side maps it. */
typedef struct corio__pp_window {
  uint8_t *map;
  size_t cap;
} corio__pp_window;
/** Sender side: replace @p w by a new window of at least @p len bytes, mapped read-write.
 *  @return its memfd, to send and then close, or -errno (@p w is then unchanged). */
int corio__pp_window_grow(corio__pp_window *w, size_t len);
/** Receiver side: map the window memfd @p fd (read-only), replacing the old one; closes @p fd.
 *  0 or -errno (@p w is then empty). */
int corio__pp_window_map(corio__pp_window *w, int fd);
void corio__pp_window_free(corio__pp_window *w);

/** Test helper: the pid of a process pool's fork server (-1 if none). */
pid_t corio__process_pool_server_pid(corio_executor *ex);

#endif
