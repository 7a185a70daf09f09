/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What certd uses of systemd, without linking libsystemd.
 *
 * libsystemd and the libraries it pulls in (libgcrypt, liblzma, libzstd, liblz4, libcap) add
 * about 1.2 MiB to the resident size of a process that merely links them. certd needs sd-bus
 * only for `systemd:` reload notifiers (and the D-Bus front end), so libsystemd is opened
 * with dlopen when the first of those is used, and a configuration without them never maps it.
 *
 * The service manager notification (sd_notify(3): READY=1, RELOADING=1, STOPPING=1) is a
 * datagram to $NOTIFY_SOCKET, a protocol systemd documents as stable and meant to be spoken
 * without libsystemd; sdlib_notify speaks it.
 */
#pragma once

#include <stddef.h>

#include <systemd/sd-bus.h>

#include "util/cleanup.h"
#include "util/dlib.h"

/* The sd-bus functions certd calls, each as sdlib->NAME(...). */
#define SDLIB_FUNCTIONS(X)            \
    X(sd_bus_call_async)              \
    X(sd_bus_close_unref)             \
    X(sd_bus_get_events)              \
    X(sd_bus_get_fd)                  \
    X(sd_bus_get_timeout)             \
    X(sd_bus_is_open)                 \
    X(sd_bus_match_signal_async)      \
    X(sd_bus_message_append)          \
    X(sd_bus_message_get_bus)         \
    X(sd_bus_message_get_errno)       \
    X(sd_bus_message_get_error)       \
    X(sd_bus_message_new_method_call) \
    X(sd_bus_message_read)            \
    X(sd_bus_message_unref)           \
    X(sd_bus_open_system)             \
    X(sd_bus_process)                 \
    X(sd_bus_slot_unref)

struct sdlib {
    SDLIB_FUNCTIONS(DLIB_MEMBER)
};

/* The soname opened; a different major version has a different ABI and is not tried. */
#define SDLIB_SONAME "libsystemd.so.0"

/*
 * The table, loading libsystemd on the first call (from the loop thread only; later calls
 * return the same table at once). NULL when it cannot be loaded, with the reason in
 * msg (dlerror's text: the library or the function that is missing).
 */
const struct sdlib *sdlib_get(char *msg, size_t size);

/*
 * Send state (e.g. "READY=1") to the service manager when $NOTIFY_SOCKET names one: returns
 * 1 when sent, 0 when not run by a service manager, or -errno (-EINVAL for a bad address).
 * Never blocks (the manager reads its socket; a full one fails with -EAGAIN).
 */
int sdlib_notify(const char *state);
