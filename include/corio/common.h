/**
 * @file common.h
 * Shared definitions for every corio header: export macro, container_of, forward types.
 */
#ifndef CORIO_COMMON_H
#define CORIO_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define CORIO_EXTERN    __attribute__((visibility("default")))
#define CORIO_NODISCARD __attribute__((warn_unused_result))
#else
#define CORIO_EXTERN
#define CORIO_NODISCARD
#endif

/** Pointer to the struct that embeds @p ptr as its member @p member. */
#define corio_container_of(ptr, type, member)                                                      \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

typedef struct corio_loop corio_loop;
typedef struct corio_future corio_future;
typedef struct corio_task corio_task;

#endif
