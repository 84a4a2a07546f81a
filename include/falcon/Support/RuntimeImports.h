/*===- RuntimeImports.h - what a host library imports ------------*- C -*-===*\
|*                                                                          *|
|* The compiled host library does not call malloc/free (or trace, or        *|
|* reduce) itself: it calls through a table the runtime fills when it loads *|
|* the library, so the runtime can account for, limit and later place the   *|
|* library's workspace. Shared by the compiler, which emits the table and   *|
|* the calls, and the runtime, which fills it; plain C, no LLVM.            *|
|*                                                                          *|
|* The library defines and exports                                          *|
|*   falcon_runtime_imports_t falcon_runtime_imports;  (zero-initialized)   *|
|* A library loaded by a runtime that fills the table sees `version` != 0;  *|
|* one that finds it zero (loaded some other way) may fall back to          *|
|* malloc/free. A library without the symbol loads as before.               *|
|*                                                                          *|
|* Contract for the runtime: the callbacks are thread-safe (the library     *|
|* calls them from its parallel loops) and `context` stays valid while the  *|
|* library is loaded. Contract for the library: a buffer it returns to the  *|
|* runtime (a result memref) was allocated through `alloc`, and the runtime *|
|* releases it through `free`.                                              *|
|*                                                                          *|
\*===----------------------------------------------------------------------===*/

#ifndef FALCON_SUPPORT_RUNTIMEIMPORTS_H
#define FALCON_SUPPORT_RUNTIMEIMPORTS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The layout below; bumped when a field changes meaning. Fields are only
 * ever appended, and `size` tells a reader which ones exist. */
#define FALCON_RUNTIME_IMPORTS_VERSION 1

/* The name of the table in the host library's dynamic symbol table. */
#define FALCON_RUNTIME_IMPORTS_SYMBOL "falcon_runtime_imports"

typedef struct falcon_runtime_imports_t {
  uint32_t version; /* FALCON_RUNTIME_IMPORTS_VERSION (1) */
  uint32_t size;    /* sizeof(falcon_runtime_imports_t) */
  void *context;    /* passed back to every callback */
  /* `size` bytes aligned to `alignment` (a power of two); NULL on failure,
   * including when the runtime's workspace limit would be exceeded. */
  void *(*alloc)(void *context, uint64_t size, uint64_t alignment);
  /* Releases a pointer from `alloc`; NULL is ignored. */
  void (*free)(void *context, void *ptr);
  /* Brackets a named region of the library's work in the runtime's trace;
   * calls nest and are per thread. */
  void (*trace_begin)(void *context, const char *name);
  void (*trace_end)(void *context);
  /* Sums `count` floats in place across the ranks of the runtime's
   * collective channel; 0 = ok, anything else = failure. */
  int32_t (*all_reduce_sum_f32)(void *context, float *data, int64_t count);
} falcon_runtime_imports_t;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FALCON_SUPPORT_RUNTIMEIMPORTS_H */
