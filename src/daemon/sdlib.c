/* SPDX-License-Identifier: Apache-2.0 */
/* libsystemd on demand, and the service manager notification protocol (sdlib.h). */
#include "sdlib.h"

#include <assert.h>
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
    static_assert(sizeof(struct sdlib) == ELEMENTSOF(names) * sizeof(void (*)(void)),
                  "struct sdlib holds the functions of the list and nothing else");

    if (!sdlib_is_loaded) {
        if (dlib_load(SDLIB_SONAME, names, ELEMENTSOF(names), &sdlib_table, msg, size) < 0) {
            return NULL;
        }
        sdlib_is_loaded = true;
    }
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
