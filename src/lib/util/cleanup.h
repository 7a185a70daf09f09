/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scope-bound cleanup (STYLE.md §4). Every owned local is declared with _cleanup_(fn) or one of
 * the shorthands, initialised to NULL or -EBADF, and handed on with TAKE_PTR()/TAKE_FD(). The
 * GNU extensions live here only, behind __extension__, so that -Wpedantic stays on elsewhere.
 */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(fn)   __attribute__((cleanup(fn)))
#define _cleanup_free_  _cleanup_(cleanup_freep)
#define _cleanup_close_ _cleanup_(cleanup_closep)
#define _must_check_    __attribute__((warn_unused_result))
#define _printf_(a, b)  __attribute__((format(printf, a, b)))
#define _unused_        __attribute__((unused))
#define _noreturn_      __attribute__((noreturn))
#define ELEMENTSOF(x)   (sizeof(x) / sizeof((x)[0]))

/* The type "pointer to the function f", for tables of functions looked up with dlsym. */
#define FUNCTION_POINTER(f) __extension__ __typeof__(f) *

/* Hand ownership of *p on: yields the pointer and leaves NULL behind. */
#define TAKE_PTR(p)                \
    __extension__({                \
        __typeof__(p) *_pp = &(p); \
        __typeof__(p) _ptr = *_pp; \
        *_pp = NULL;               \
        _ptr;                      \
    })

/* Hand a descriptor on: yields it and leaves -EBADF behind. */
#define TAKE_FD(fd)        \
    __extension__({        \
        int *_pfd = &(fd); \
        int _fd = *_pfd;   \
        *_pfd = -EBADF;    \
        _fd;               \
    })

/* For functions that front ends call: a violated precondition returns an error, never aborts. */
#define assert_return(cond, r) \
    do {                       \
        if (!(cond)) {         \
            return (r);        \
        }                      \
    } while (0)

/* DEFINE_CLEANUP(T, fn) makes cleanup_T(T **p) that calls fn(*p) when *p is not NULL. */
#define DEFINE_CLEANUP(T, fn)             \
    static inline void cleanup_##T(T **p) \
    {                                     \
        if (*p) {                         \
            (void)fn(*p);                 \
        }                                 \
    }

/* The same for `struct name`: DEFINE_CLEANUP_STRUCT(bundle, bundle_free) makes cleanup_bundle. */
#define DEFINE_CLEANUP_STRUCT(name, fn)                \
    static inline void cleanup_##name(struct name **p) \
    {                                                  \
        if (*p) {                                      \
            (void)fn(*p);                              \
        }                                              \
    }

static inline void cleanup_freep(void *p)
{
    free(*(void **)p);
}

static inline void cleanup_closep(const int *fd)
{
    if (*fd >= 0) {
        (void)close(*fd);
    }
}
