/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An sd-bus connection driven by libevent (busev.h): the one place that turns sd-bus's wishes
 * into events and calls sd_bus_process.
 *
 * Invariants:
 *  - while the busev runs (state BUSEV_RUNNING), the loop watches the descriptor for what
 *    sd_bus_get_events asked after the last thing done with the bus (sd_bus_process, or a kick
 *    after a message was queued), and the timer for sd_bus_get_timeout's deadline;
 *  - a connection that is no longer open is still processed (the timer runs at once), so that
 *    sd-bus answers the calls in flight with errors and shuts down, until sd_bus_process fails
 *    or has nothing left to do: then the busev is lost;
 *  - once lost is due (BUSEV_LOST_DUE) or called (BUSEV_LOST), nothing is watched and
 *    sd_bus_process is never called again; lost is called at most once, always as the last
 *    thing a loop callback does, so that it may free the busev.
 */
#include "busev.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum busev_state { BUSEV_RUNNING, BUSEV_LOST_DUE, BUSEV_LOST, BUSEV_STATE_MAX };

struct busev {
    const struct sdlib *sd;
    sd_bus *bus;
    busev_lost_fn lost;
    void *arg;
    struct event *read_ev;
    struct event *write_ev;
    struct event *timer; /* sd-bus's deadline; made active by hand for a lost that is due */
    bool is_read_added;
    bool is_write_added;
    bool is_processing;
    enum busev_state state;
    int lost_r; /* the reason given to lost */
};

static uint64_t now_usec(void)
{
    struct timespec ts;
    /* sd_bus_get_timeout's deadlines are CLOCK_MONOTONIC. */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int watch(struct event *ev, bool is_wanted, bool *is_added)
{
    if (is_wanted && !*is_added) {
        if (event_add(ev, NULL) < 0) {
            return -ENOMEM;
        }
        *is_added = true;
    } else if (!is_wanted && *is_added) {
        (void)event_del(ev);
        *is_added = false;
    }
    return 0;
}

static void unwatch_io(struct busev *b)
{
    (void)watch(b->read_ev, false, &b->is_read_added);
    (void)watch(b->write_ev, false, &b->is_write_added);
}

/* until: absolute CLOCK_MONOTONIC microseconds, 0 for at once, UINT64_MAX for never. */
static int arm_timer(struct busev *b, uint64_t until)
{
    if (until == UINT64_MAX) {
        (void)event_del(b->timer);
        return 0;
    }
    uint64_t now = until > 0 ? now_usec() : 0, left = until > now ? until - now : 0;
    struct timeval tv = { .tv_sec = (time_t)(left / 1000000u),
                          .tv_usec = (suseconds_t)(left % 1000000u) };
    return evtimer_add(b->timer, &tv) < 0 ? -ENOMEM : 0;
}

/*
 * Watch what sd-bus asks for now. has_more: the last batch ended with sd-bus still busy, so
 * the timer runs at once (after the loop's other events: a busy bus does not starve them).
 */
static int update(struct busev *b, bool has_more)
{
    const struct sdlib *sd = b->sd;
    uint64_t until = 0;
    int ev, r;

    if (sd->sd_bus_is_open(b->bus) <= 0) {
        /* Closing: sd-bus fails the calls in flight and closes the descriptor itself, without
         * I/O; the descriptor must not stay watched once it is closed. */
        unwatch_io(b);
        return arm_timer(b, 0);
    }
    ev = sd->sd_bus_get_events(b->bus);
    if (ev < 0) {
        return ev;
    }
    r = watch(b->read_ev, (ev & POLLIN) != 0, &b->is_read_added);
    if (r >= 0) {
        r = watch(b->write_ev, (ev & POLLOUT) != 0, &b->is_write_added);
    }
    if (r < 0) {
        return r;
    }
    if (!has_more) {
        /* 0 when sd-bus has messages queued already. */
        r = sd->sd_bus_get_timeout(b->bus, &until);
        if (r < 0) {
            return r;
        }
    }
    return arm_timer(b, until);
}

static void on_event(evutil_socket_t fd, short what, void *userdata)
{
    struct busev *b = userdata;
    int r = 0;
    (void)fd;
    (void)what;

    if (b->state == BUSEV_LOST_DUE) {
        /* busev_kick failed: this is the later loop callback it promised. */
        b->state = BUSEV_LOST;
        b->lost(b->arg, b->lost_r); /* may free b: nothing after this */
        return;
    }
    if (b->state != BUSEV_RUNNING) {
        return;
    }
    b->is_processing = true;
    for (unsigned i = 0; i < BUSEV_PROCESS_BATCH; i++) {
        r = b->sd->sd_bus_process(b->bus, NULL);
        if (r <= 0) {
            break;
        }
    }
    b->is_processing = false;
    /* Closing, sd-bus may say "nothing to do" before it says anything else: nothing left to do
     * on a connection that is no longer open is the end of it. */
    if (r == 0 && b->sd->sd_bus_is_open(b->bus) <= 0) {
        r = -ECONNRESET;
    }
    if (r >= 0) {
        r = update(b, r > 0);
    }
    if (r < 0) {
        unwatch_io(b);
        (void)event_del(b->timer);
        b->state = BUSEV_LOST;
        b->lost(b->arg, r); /* may free b: nothing after this */
    }
}

int busev_attach(struct event_base *base, const struct sdlib *sd, sd_bus *bus, busev_lost_fn lost,
                 void *arg, struct busev **ret)
{
    _cleanup_(cleanup_busev) struct busev *b = NULL;
    int fd, r;

    if (!base || !sd || !bus || !lost || !ret) {
        if (sd && bus) {
            (void)sd->sd_bus_close_unref(bus);
        }
        return -EINVAL;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        (void)sd->sd_bus_close_unref(bus);
        return -ENOMEM;
    }
    *b = (struct busev){ .sd = sd, .bus = bus, .lost = lost, .arg = arg };
    fd = sd->sd_bus_get_fd(bus);
    if (fd < 0) {
        return fd;
    }
    b->read_ev = event_new(base, fd, EV_READ | EV_PERSIST, on_event, b);
    b->write_ev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_event, b);
    b->timer = evtimer_new(base, on_event, b);
    if (!b->read_ev || !b->write_ev || !b->timer) {
        return -ENOMEM;
    }
    /* A fresh connection has its authentication and Hello to write. */
    r = update(b, false);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(b);
    return 0;
}

int busev_open(struct event_base *base, const struct sdlib *sd, enum busev_kind kind,
               busev_lost_fn lost, void *arg, struct busev **ret, char *msg, size_t size)
{
    const char *name = kind == BUSEV_SYSTEM ? "system" : "session";
    sd_bus *bus = NULL;
    int r;

    assert_return(sd && (kind == BUSEV_SYSTEM || kind == BUSEV_USER), -EINVAL);
    /* Both connect without waiting: authentication and Hello go through the loop. */
    r = kind == BUSEV_SYSTEM ? sd->sd_bus_open_system(&bus) : sd->sd_bus_open_user(&bus);
    if (r >= 0) {
        r = busev_attach(base, sd, bus, lost, arg, ret);
    }
    if (r < 0 && msg && size > 0) {
        (void)snprintf(msg, size, "cannot connect to the %s bus: %s", name, strerror(-r));
    }
    return r;
}

sd_bus *busev_bus(const struct busev *b)
{
    assert(b);
    return b->bus;
}

bool busev_is_processing(const struct busev *b)
{
    return b && b->is_processing;
}

void busev_kick(struct busev *b)
{
    int r;

    if (!b || b->state != BUSEV_RUNNING || b->is_processing) {
        return;
    }
    r = update(b, false);
    if (r < 0) {
        /* The caller may be deep in its own work: lost comes from the loop, not from here. */
        unwatch_io(b);
        (void)event_del(b->timer);
        b->state = BUSEV_LOST_DUE;
        b->lost_r = r;
        event_active(b->timer, EV_TIMEOUT, 1);
    }
}

struct busev *busev_free(struct busev *b)
{
    if (!b) {
        return NULL;
    }
    /* sd-bus would process on with a freed bus: never from a callback it dispatched. */
    assert(!b->is_processing);
    if (b->read_ev) {
        event_free(b->read_ev);
    }
    if (b->write_ev) {
        event_free(b->write_ev);
    }
    if (b->timer) {
        event_free(b->timer);
    }
    if (b->bus) {
        (void)b->sd->sd_bus_close_unref(b->bus);
    }
    free(b);
    return NULL;
}
