/* SPDX-License-Identifier: Apache-2.0 */
/* Libraries opened on demand (dlib.h). */
#include "util/dlib.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*any_fn)(void);

int dlib_load(const char *soname, const char *const *names, size_t n, void *table, char *msg,
              size_t size)
{
    /* dlsym yields a data pointer; POSIX requires it to convert to a function pointer. */
    static_assert(sizeof(any_fn) == sizeof(void *), "function pointers differ from data pointers");
    any_fn *fns = calloc(n ? n : 1, sizeof(any_fn));
    if (!fns) {
        (void)snprintf(msg, size, "out of memory");
        return -ENOMEM;
    }
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        (void)snprintf(msg, size, "cannot load %s: %s", soname, e ? e : "unknown error");
        free(fns);
        return -ENOPKG;
    }
    for (size_t i = 0; i < n; i++) {
        void *sym = dlsym(h, names[i]);
        if (!sym) {
            (void)snprintf(msg, size, "%s has no function %s (too old?)", soname, names[i]);
            (void)dlclose(h);
            free(fns);
            return -ENOSYS;
        }
        memcpy(&fns[i], &sym, sizeof(sym));
    }
    memcpy(table, fns, n * sizeof(any_fn));
    free(fns);
    return 0;
}
