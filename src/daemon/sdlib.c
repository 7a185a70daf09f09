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

#include "util/dlib.h"

/* Filled once by sdlib_get on the loop thread, read-only from then on. */
static struct sdlib sdlib_table;
static bool sdlib_is_loaded;

const struct sdlib *sdlib_get(char *msg, size_t size)
{
    static const char *const names[] = { SDLIB_FUNCTIONS(DLIB_NAME) };
    static_assert(offsetof(struct sdlib, vtable_format) ==
                      ELEMENTSOF(names) * sizeof(void (*)(void)),
                  "struct sdlib holds the functions of the list, then vtable_format");

    if (!sdlib_is_loaded) {
        if (dlib_load(SDLIB_SONAME, names, ELEMENTSOF(names), &sdlib_table, msg, size) < 0) {
            return NULL;
        }
        /* dlib_load keeps the library open: this only finds the same handle again. */
        void *h = dlopen(SDLIB_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        sdlib_table.vtable_format = h ? dlsym(h, "sd_bus_object_vtable_format") : NULL;
        if (h) {
            (void)dlclose(h);
        }
        if (!sdlib_table.vtable_format) {
            (void)snprintf(msg, size, "%s has no sd_bus_object_vtable_format (too old?)",
                           SDLIB_SONAME);
            return NULL;
        }
        sdlib_is_loaded = true;
    }
    return &sdlib_table;
}

void sdlib_vtable_fix(const struct sdlib *sd, sd_bus_vtable *vt)
{
    assert(sd && vt && vt[0].type == _SD_BUS_VTABLE_START);
    vt[0].x.start.vtable_format_reference = sd->vtable_format;
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
