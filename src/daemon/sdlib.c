/* SPDX-License-Identifier: Apache-2.0 */
/* libsystemd on demand, and the service manager notification protocol (sdlib.h). */
#include "sdlib.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Filled once by sdlib_get on the loop thread, read-only from then on. */
static struct sdlib sdlib_table;
static bool sdlib_is_loaded;

const struct sdlib *sdlib_get(char *msg, size_t size)
{
    struct sdlib t = { 0 };
    void *h, *sym;

    if (sdlib_is_loaded) {
        return &sdlib_table;
    }
    /* Never closed: the functions are used for as long as the process runs. */
    h = dlopen(SDLIB_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        (void)snprintf(msg, size, "cannot load %s: %s", SDLIB_SONAME, e ? e : "unknown error");
        return NULL;
    }
    /* A function pointer is the size of a data pointer on every platform POSIX dlsym runs on. */
#define SDLIB_LOOKUP(f)                                                                          \
    static_assert(sizeof(t.f) == sizeof(sym), "function pointers differ from data pointers");    \
    sym = dlsym(h, #f);                                                                          \
    if (!sym) {                                                                                  \
        (void)snprintf(msg, size, "%s has no function %s (systemd too old?)", SDLIB_SONAME, #f); \
        (void)dlclose(h);                                                                        \
        return NULL;                                                                             \
    }                                                                                            \
    memcpy(&t.f, &sym, sizeof(t.f));
    SDLIB_FUNCTIONS(SDLIB_LOOKUP)
#undef SDLIB_LOOKUP

    sdlib_table = t;
    sdlib_is_loaded = true;
    return &sdlib_table;
}

int sdlib_notify(const char *state)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *addr = getenv("NOTIFY_SOCKET");
    _cleanup_close_ int fd = -EBADF;
    size_t len, n;
    ssize_t sent;

    assert(state);
    if (!addr || !*addr) {
        return 0;
    }
    /* A path, or '@' for an abstract socket name (the '@' stands for the leading NUL byte). */
    len = strlen(addr);
    if ((addr[0] != '/' && addr[0] != '@') || len < 2 || len > sizeof(sa.sun_path)) {
        return -EINVAL;
    }
    memcpy(sa.sun_path, addr, len);
    if (sa.sun_path[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -errno;
    }
    n = strlen(state);
    sent = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sa,
                  (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    if (sent < 0) {
        return -errno;
    }
    return (size_t)sent == n ? 1 : -EMSGSIZE;
}
