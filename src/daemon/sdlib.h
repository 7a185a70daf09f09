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
#define SDLIB_FUNCTIONS(X)                 \
    X(sd_bus_add_fallback_vtable)          \
    X(sd_bus_add_node_enumerator)          \
    X(sd_bus_add_object_manager)           \
    X(sd_bus_add_object_vtable)            \
    X(sd_bus_call_async)                   \
    X(sd_bus_close_unref)                  \
    X(sd_bus_emit_interfaces_added_strv)   \
    X(sd_bus_emit_interfaces_removed_strv) \
    X(sd_bus_emit_properties_changed_strv) \
    X(sd_bus_emit_signal)                  \
    X(sd_bus_error_free)                   \
    X(sd_bus_error_set)                    \
    X(sd_bus_error_setf)                   \
    X(sd_bus_flush)                        \
    X(sd_bus_get_events)                   \
    X(sd_bus_get_fd)                       \
    X(sd_bus_get_timeout)                  \
    X(sd_bus_get_unique_name)              \
    X(sd_bus_is_open)                      \
    X(sd_bus_match_signal_async)           \
    X(sd_bus_message_append)               \
    X(sd_bus_message_append_basic)         \
    X(sd_bus_message_append_strv)          \
    X(sd_bus_message_close_container)      \
    X(sd_bus_message_enter_container)      \
    X(sd_bus_message_exit_container)       \
    X(sd_bus_message_get_bus)              \
    X(sd_bus_message_get_errno)            \
    X(sd_bus_message_get_error)            \
    X(sd_bus_message_get_member)           \
    X(sd_bus_message_get_path)             \
    X(sd_bus_message_get_sender)           \
    X(sd_bus_message_new_method_call)      \
    X(sd_bus_message_new_method_return)    \
    X(sd_bus_message_open_container)       \
    X(sd_bus_message_read)                 \
    X(sd_bus_message_read_basic)           \
    X(sd_bus_message_read_strv)            \
    X(sd_bus_message_ref)                  \
    X(sd_bus_message_unref)                \
    X(sd_bus_open_system)                  \
    X(sd_bus_open_user)                    \
    X(sd_bus_process)                      \
    X(sd_bus_release_name)                 \
    X(sd_bus_reply_method_error)           \
    X(sd_bus_reply_method_errorf)          \
    X(sd_bus_reply_method_return)          \
    X(sd_bus_request_name)                 \
    X(sd_bus_request_name_async)           \
    X(sd_bus_send)                         \
    X(sd_bus_set_description)              \
    X(sd_bus_slot_unref)

struct sdlib {
    SDLIB_FUNCTIONS(DLIB_MEMBER)
    /*
     * libsystemd's sd_bus_object_vtable_format: the first entry of every vtable must point at
     * this very object (sd-bus refuses a vtable that does not, with -EINVAL), and a dlopen'ed
     * library's data symbol is known only at run time. See SDLIB_VTABLE_START.
     */
    const unsigned *vtable_format;
};

/*
 * SD_BUS_VTABLE_START without its link-time reference to libsystemd's data symbol: vtables are
 * static, non-const arrays that start with this, and sdlib_vtable_fix points their first entry
 * at sdlib->vtable_format before they are registered (once, on the loop thread).
 */
#define SDLIB_VTABLE_START(_flags)                                \
    {                                                             \
        .type = _SD_BUS_VTABLE_START, .flags = (_flags),          \
        .x = { .start = { .element_size = sizeof(sd_bus_vtable),  \
                          .features = _SD_BUS_VTABLE_PARAM_NAMES, \
                          .vtable_format_reference = NULL } },    \
    }

/* Point vt's start entry at sd's vtable_format (idempotent). */
void sdlib_vtable_fix(const struct sdlib *sd, sd_bus_vtable *vt);

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
