/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An sd-bus connection driven by certd's libevent loop: the one place that turns what sd-bus
 * asks for (sd_bus_get_events, sd_bus_get_timeout) into libevent events and calls
 * sd_bus_process. The notifier (systemd: reloads, on the system bus) and the D-Bus front end
 * (dbus.h, on the bus [dbus] names) each own one.
 *
 * Lifecycle: busev_open connects (system or user bus; the user bus is the one
 * $DBUS_SESSION_BUS_ADDRESS names, as sd_bus_open_user finds it), or busev_attach takes a bus
 * the caller opened. Messages queued outside a callback of this bus (a signal sent from a
 * worker job's done callback, a method call) need busev_kick so that their write interest is
 * registered; inside sd_bus_process that happens on return.
 *
 * Loss: when sd_bus_process fails or the connection is no longer open, lost(arg, -errno) is
 * called once, from the loop, outside sd_bus_process; the caller drops its slots (while the
 * bus still exists) and then calls busev_free. lost may start a new connection.
 * In detail: a connection that closes is processed on until sd-bus has answered the calls in
 * flight (their callbacks see an error reply and sd_bus_is_open() <= 0), then lost comes
 * (usually -ECONNRESET) as the last thing its loop callback does, so lost may free the busev.
 * After lost (or once it is due) nothing is watched and sd_bus_process is not called again;
 * the bus stays usable for dropping slots. busev_free before lost cancels it: then lost is
 * never called. lost is also never called from busev_open, busev_attach or busev_kick.
 *
 * Freeing: busev_free may be called anywhere on the loop thread, lost included, but not inside
 * this bus's sd_bus_process (a callback of a message it dispatched, while busev_is_processing
 * is true: asserted); such a callback that wants the connection gone schedules that itself.
 * Slots still held keep sd-bus's (closed) bus object alive until they are dropped.
 *
 * Loop thread only.
 */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "sdlib.h"
#include "util/cleanup.h"

struct event_base;
struct busev;

typedef void (*busev_lost_fn)(void *arg, int r);

/* Sd-bus messages processed per loop callback: others get their turn, sd-bus asks again. */
#define BUSEV_PROCESS_BATCH 32u

enum busev_kind { BUSEV_SYSTEM, BUSEV_USER };

/*
 * Connect to the system or user bus and attach it to base. 0, or -errno with a message in
 * msg (the bus and the reason: "cannot connect to the system bus: ...", "... to the session
 * bus: ..." for BUSEV_USER; e.g. -ENOENT nothing at the address, -ECONNREFUSED nobody
 * listening). sd (borrowed, static) is sdlib_get's table. The connection is made without
 * waiting: authentication and Hello complete through the loop, so a bus that refuses us later
 * shows up as lost, never as a failure here.
 */
_must_check_ int busev_open(struct event_base *base, const struct sdlib *sd, enum busev_kind kind,
                            busev_lost_fn lost, void *arg, struct busev **ret, char *msg,
                            size_t size);

/*
 * Attach a bus the caller opened (the reference is taken over, also on failure). 0, -ENOMEM,
 * -EINVAL (an argument NULL), or sd-bus's -errno when the bus cannot be watched (no descriptor,
 * not connected).
 */
_must_check_ int busev_attach(struct event_base *base, const struct sdlib *sd, sd_bus *bus,
                              busev_lost_fn lost, void *arg, struct busev **ret);

/* The connection (borrowed); never NULL for a busev that exists. */
sd_bus *busev_bus(const struct busev *b);

/* True inside this bus's sd_bus_process (a callback of it is running). */
bool busev_is_processing(const struct busev *b);

/*
 * After queueing messages outside a callback of this bus: register the interest sd-bus has now
 * (write, timeout). A failure is handled as a lost connection (lost is called later, from the
 * loop). Harmless inside a callback.
 */
void busev_kick(struct busev *b);

/* Detach and close (sd_bus_flush is not called: nothing waits on the loop). NULL-safe. */
struct busev *busev_free(struct busev *b);
DEFINE_CLEANUP_STRUCT(busev, busev_free)
