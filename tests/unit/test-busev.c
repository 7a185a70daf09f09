/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/busev: an sd-bus connection on a real event loop, against a private
 * `dbus-daemon --session` in a scratch directory ($DBUS_SESSION_BUS_ADDRESS names it). Method
 * calls answered by the bus, a call started from inside a reply (no kick needed there), a call
 * that only sd-bus's own timeout ends (the loop must run its timer), refused connections, and
 * a bus that goes away: calls in flight fail, lost is called exactly once, from the loop, and
 * may free the busev; nothing is watched afterwards. Every sd-bus call goes through the sdlib
 * table, as in the daemon.
 */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "busev.h"
#include "sdlib.h"
#include "testutil.h"

/* Generous: an event-driven wait only fails at this bound when something is broken. */
#define WAIT_SECONDS 60

#define DBUS_SERVICE "org.freedesktop.DBus"
#define DBUS_PATH    "/org/freedesktop/DBus"
#define DBUS_IFACE   "org.freedesktop.DBus"

static const char dbus_daemon[] = "/usr/bin/dbus-daemon";
static const struct sdlib *sd;

struct fixture {
    struct event_base *base;
    char *dir;
    pid_t daemon; /* > 0 while the bus runs; the teardown stops it after a failure too */
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->dir = scratch_dir("busev");
    *state = f;
    return 0;
}

static void bus_stop(struct fixture *f)
{
    int status;
    if (f->daemon > 0) {
        (void)kill(f->daemon, SIGKILL);
        assert_int_equal(waitpid(f->daemon, &status, 0), f->daemon);
        f->daemon = 0;
    }
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    bus_stop(f);
    (void)unsetenv("DBUS_SESSION_BUS_ADDRESS");
    (void)unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
    event_base_free(f->base);
    scratch_rm(f->dir);
    free(f);
    return 0;
}

/* A private session bus listening in the scratch directory; its address goes to the env. */
static void bus_start(struct fixture *f)
{
    char *addr_arg = tu_strf("--address=unix:path=%s/bus", f->dir);
    char line[512];
    size_t len = 0;
    int ready[2];

    /* A missing bus fails rather than skips: a skip would pass unnoticed on a fresh machine. */
    if (access(dbus_daemon, X_OK) != 0) {
        print_error("%s is not installed (Debian package dbus-daemon; scripts/install-deps)\n",
                    dbus_daemon);
        fail();
    }
    assert_int_equal(pipe(ready), 0);
    char *fd_arg = tu_strf("--print-address=%d", ready[1]);
    f->daemon = fork();
    assert_true(f->daemon >= 0);
    if (f->daemon == 0) {
        (void)close(ready[0]);
        execl(dbus_daemon, dbus_daemon, "--session", "--nofork", "--nopidfile", addr_arg, fd_arg,
              (char *)NULL);
        _exit(127);
    }
    free(fd_arg);
    free(addr_arg);
    (void)close(ready[1]);
    /* It prints its address once it listens: the readiness signal, and the address to use. */
    while (len < sizeof(line) - 1) {
        ssize_t n = read(ready[0], line + len, 1);
        if (n <= 0 || line[len] == '\n') {
            break;
        }
        len++;
    }
    line[len] = '\0';
    (void)close(ready[0]);
    if (strncmp(line, "unix:path=", 10) != 0) {
        print_error("dbus-daemon did not start (printed '%s')\n", line);
        fail();
    }
    assert_int_equal(setenv("DBUS_SESSION_BUS_ADDRESS", line, 1), 0);
}

/* What the callbacks saw. */
struct seen {
    struct busev *b;
    sd_bus_slot *slot; /* the call in flight, dropped when answered or lost */
    int replies;
    int reply_errno; /* 0 for a method return */
    char reply_error[128];
    char value[128]; /* the string a method return held */
    bool was_processing;
    bool was_open;
    /* on_id_then_owner: GetNameOwner(our unique name), started from inside a callback */
    sd_bus_slot *chain_slot;
    int chain_replies;
    char unique[128];
    char owner[128];
    /* lost */
    int lost_calls;
    int lost_r;
    bool is_free_in_lost;
};

static void on_lost(void *arg, int r)
{
    struct seen *s = arg;
    s->lost_calls++;
    s->lost_r = r;
    assert_false(busev_is_processing(s->b));
    if (s->is_free_in_lost) {
        /* The documented pattern: drop the slots while the bus exists, then free. */
        s->slot = sd->sd_bus_slot_unref(s->slot);
        s->chain_slot = sd->sd_bus_slot_unref(s->chain_slot);
        s->b = busev_free(s->b);
    }
}

static int on_owner(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct seen *s = userdata;
    const char *v = NULL;
    (void)ret_error;

    s->chain_slot = sd->sd_bus_slot_unref(s->chain_slot);
    s->chain_replies++;
    assert_null(sd->sd_bus_message_get_error(m));
    assert_true(sd->sd_bus_message_read(m, "s", &v) > 0);
    (void)snprintf(s->owner, sizeof(s->owner), "%s", v);
    return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct seen *s = userdata;
    const sd_bus_error *e = sd->sd_bus_message_get_error(m);
    sd_bus *bus = sd->sd_bus_message_get_bus(m);
    (void)ret_error;

    s->slot = sd->sd_bus_slot_unref(s->slot);
    s->replies++;
    s->was_processing = busev_is_processing(s->b);
    s->was_open = sd->sd_bus_is_open(bus) > 0;
    if (e) {
        s->reply_errno = sd->sd_bus_message_get_errno(m);
        (void)snprintf(s->reply_error, sizeof(s->reply_error), "%s", e->name);
        return 0;
    }
    const char *v = NULL;
    assert_true(sd->sd_bus_message_read(m, "s", &v) > 0);
    (void)snprintf(s->value, sizeof(s->value), "%s", v);
    return 0;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Run the loop until *count reaches want (event-driven; the deadline only catches a hang). */
static void wait_for(struct event_base *base, const int *count, int want)
{
    bool is_expired = false;
    struct event *deadline = evtimer_new(base, on_deadline, &is_expired);
    struct timeval tv = { .tv_sec = WAIT_SECONDS };

    assert_non_null(deadline);
    assert_int_equal(evtimer_add(deadline, &tv), 0);
    while (*count < want && !is_expired) {
        assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
    }
    event_free(deadline);
    if (is_expired) {
        print_error("still %d event(s) of %d after %d s\n", *count, want, WAIT_SECONDS);
        fail();
    }
}

/* Queue a call to the bus itself (no arguments, or one string) with this timeout (0: sd-bus's). */
static void call(struct seen *s, sd_bus_slot **slot, const char *dest, const char *member,
                 const char *arg, uint64_t timeout_usec, sd_bus_message_handler_t cb)
{
    sd_bus *bus = busev_bus(s->b);
    sd_bus_message *m = NULL;

    assert_true(sd->sd_bus_message_new_method_call(bus, &m, dest, DBUS_PATH, DBUS_IFACE, member) >=
                0);
    if (arg) {
        assert_true(sd->sd_bus_message_append(m, "s", arg) >= 0);
    }
    assert_true(sd->sd_bus_call_async(bus, slot, m, cb, s, timeout_usec) >= 0);
    (void)sd->sd_bus_message_unref(m);
}

static bool is_hex_id(const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)v[i])) {
            return false;
        }
    }
    return n == 32;
}

/* No events of the busev are left in the loop (the test's base holds nothing else). */
static void assert_nothing_watched(struct event_base *base)
{
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
}

/* ---- connecting ---- */

static void test_open_refused(void **state)
{
    struct fixture *f = *state;
    static const struct {
        enum busev_kind kind;
        const char *env;
        const char *place; /* where the address points, in the scratch directory */
        bool is_file;      /* a regular file there rather than nothing */
        int r;
        const char *word;
    } cases[] = {
        { BUSEV_USER, "DBUS_SESSION_BUS_ADDRESS", "none", false, -ENOENT,
          "cannot connect to the session bus" },
        { BUSEV_SYSTEM, "DBUS_SYSTEM_BUS_ADDRESS", "none", false, -ENOENT,
          "cannot connect to the system bus" },
        { BUSEV_USER, "DBUS_SESSION_BUS_ADDRESS", "file", true, -ECONNREFUSED,
          "cannot connect to the session bus" },
    };

    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char *path = tu_strf("%s/%s", f->dir, cases[i].place);
        char *addr = tu_strf("unix:path=%s", path);
        char msg[256] = "";
        struct busev *b = NULL;
        struct seen s = { 0 };

        if (cases[i].is_file) {
            int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
            assert_true(fd >= 0);
            (void)close(fd);
        }
        assert_int_equal(setenv(cases[i].env, addr, 1), 0);
        int r = busev_open(f->base, sd, cases[i].kind, on_lost, &s, &b, msg, sizeof(msg));
        if (r != cases[i].r || !strstr(msg, cases[i].word) || !strstr(msg, strerror(-cases[i].r))) {
            print_error("case %zu: %d '%s'; want %d and '%s'\n", i, r, msg, cases[i].r,
                        cases[i].word);
            fail();
        }
        assert_null(b);
        assert_int_equal(s.lost_calls, 0);
        assert_int_equal(unsetenv(cases[i].env), 0);
        free(addr);
        free(path);
    }
    assert_nothing_watched(f->base);
}

static void test_attach_invalid(void **state)
{
    struct fixture *f = *state;
    struct busev *b = NULL;
    sd_bus *bus = NULL;
    struct seen s = { 0 };

    bus_start(f);
    /* The reference is taken over also on failure: valgrind sees no leak of it. */
    assert_true(sd->sd_bus_open_user(&bus) >= 0);
    assert_int_equal(busev_attach(f->base, sd, bus, NULL, &s, &b), -EINVAL);
    assert_null(b);
    assert_true(sd->sd_bus_open_user(&bus) >= 0);
    assert_int_equal(busev_attach(NULL, sd, bus, on_lost, &s, &b), -EINVAL);
    assert_null(b);
    assert_null(busev_free(NULL));
    assert_false(busev_is_processing(NULL));
    busev_kick(NULL);
}

/* ---- calls ---- */

static void test_call(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    char msg[256] = "";

    bus_start(f);
    assert_int_equal(busev_open(f->base, sd, BUSEV_USER, on_lost, &s, &s.b, msg, sizeof(msg)), 0);
    assert_non_null(busev_bus(s.b));
    assert_false(busev_is_processing(s.b));

    /* Outside a callback: the kick registers the write interest of the queued call. */
    call(&s, &s.slot, DBUS_SERVICE, "GetId", NULL, 0, on_reply);
    busev_kick(s.b);
    wait_for(f->base, &s.replies, 1);
    assert_int_equal(s.reply_errno, 0);
    assert_true(is_hex_id(s.value));
    assert_true(s.was_processing);
    assert_true(s.was_open);
    assert_null(s.slot);

    /* The connection is reused. */
    s.value[0] = '\0';
    call(&s, &s.slot, DBUS_SERVICE, "GetId", NULL, 0, on_reply);
    busev_kick(s.b);
    wait_for(f->base, &s.replies, 2);
    assert_true(is_hex_id(s.value));
    s.b = busev_free(s.b);
    assert_int_equal(s.lost_calls, 0);
    assert_nothing_watched(f->base);
}

/* GetId's reply starts GetNameOwner(our own unique name) from inside the callback. */
static int on_id_then_owner(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
    struct seen *s = userdata;
    const char *unique = NULL;
    sd_bus *bus = sd->sd_bus_message_get_bus(m);
    int r = on_reply(m, userdata, ret_error);

    assert_true(busev_is_processing(s->b));
    assert_true(sd->sd_bus_get_unique_name(bus, &unique) >= 0);
    (void)snprintf(s->unique, sizeof(s->unique), "%s", unique);
    /* No busev_kick: busev registers the write interest when sd_bus_process returns. */
    call(s, &s->chain_slot, DBUS_SERVICE, "GetNameOwner", unique, 0, on_owner);
    return r;
}

static void test_call_from_callback(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    sd_bus *bus = NULL;

    bus_start(f);
    /* Through busev_attach this time: a bus the caller opened. */
    assert_true(sd->sd_bus_open_user(&bus) >= 0);
    assert_int_equal(busev_attach(f->base, sd, bus, on_lost, &s, &s.b), 0);
    assert_ptr_equal(busev_bus(s.b), bus);
    call(&s, &s.slot, DBUS_SERVICE, "GetId", NULL, 0, on_id_then_owner);
    busev_kick(s.b);
    wait_for(f->base, &s.chain_replies, 1);
    assert_int_equal(s.replies, 1);
    assert_true(is_hex_id(s.value));
    assert_true(s.unique[0] == ':');
    assert_string_equal(s.owner, s.unique);
    assert_null(s.chain_slot);
    s.b = busev_free(s.b);
    assert_int_equal(s.lost_calls, 0);
    assert_nothing_watched(f->base);
}

/*
 * A peer that never reads: connected (its Hello done, synchronously, here), so the bus routes
 * calls to it, and none is ever answered.
 */
static sd_bus *silent_peer(const char **ret_name)
{
    sd_bus *peer = NULL;
    assert_true(sd->sd_bus_open_user(&peer) >= 0);
    assert_true(sd->sd_bus_get_unique_name(peer, ret_name) >= 0);
    return peer;
}

static void test_call_timeout(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };
    const char *name = NULL;
    char msg[256] = "";

    bus_start(f);
    sd_bus *peer = silent_peer(&name);
    assert_int_equal(busev_open(f->base, sd, BUSEV_USER, on_lost, &s, &s.b, msg, sizeof(msg)), 0);
    /* Only sd-bus's timeout ends this call: the loop must run the timer sd-bus asks for. */
    call(&s, &s.slot, name, "GetId", NULL, 200 * 1000u, on_reply);
    busev_kick(s.b);
    wait_for(f->base, &s.replies, 1);
    assert_int_equal(s.reply_errno, ETIMEDOUT);
    /* sd-bus's own timeout: NoReply, which is ETIMEDOUT. */
    assert_string_equal(s.reply_error, "org.freedesktop.DBus.Error.NoReply");
    assert_true(s.was_open);

    /* The connection is still good. */
    s.reply_errno = 0;
    call(&s, &s.slot, DBUS_SERVICE, "GetId", NULL, 0, on_reply);
    busev_kick(s.b);
    wait_for(f->base, &s.replies, 2);
    assert_int_equal(s.reply_errno, 0);
    assert_true(is_hex_id(s.value));
    s.b = busev_free(s.b);
    (void)sd->sd_bus_close_unref(peer);
    assert_int_equal(s.lost_calls, 0);
}

/* ---- losing the bus ---- */

static void lose_bus(struct fixture *f, struct seen *s)
{
    const char *name = NULL;
    char msg[256] = "";

    bus_start(f);
    sd_bus *peer = silent_peer(&name);
    assert_int_equal(busev_open(f->base, sd, BUSEV_USER, on_lost, s, &s->b, msg, sizeof(msg)), 0);
    /* One answered call first: the connection is up; then one that stays in flight. */
    call(s, &s->slot, DBUS_SERVICE, "GetId", NULL, 0, on_reply);
    busev_kick(s->b);
    wait_for(f->base, &s->replies, 1);
    assert_int_equal(s->reply_errno, 0);
    call(s, &s->slot, name, "GetId", NULL, (uint64_t)WAIT_SECONDS * 2000000u, on_reply);
    busev_kick(s->b);
    /* Let the call go out (nothing comes back), then kill the bus. */
    while (sd->sd_bus_get_events(busev_bus(s->b)) & POLLOUT) {
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
    bus_stop(f);
    wait_for(f->base, &s->lost_calls, 1);
    (void)sd->sd_bus_close_unref(peer);
    /* The call in flight was answered by sd-bus, on a connection no longer open, before lost. */
    assert_int_equal(s->replies, 2);
    assert_false(s->was_open);
    assert_true(s->reply_errno > 0);
    assert_int_equal(s->lost_calls, 1);
    assert_int_equal(s->lost_r, -ECONNRESET);
}

static void test_lost_free_inside(void **state)
{
    struct fixture *f = *state;
    struct seen s = { .is_free_in_lost = true };

    lose_bus(f, &s);
    assert_null(s.b);
    assert_nothing_watched(f->base);
    assert_int_equal(s.lost_calls, 1);
}

static void test_lost_kept(void **state)
{
    struct fixture *f = *state;
    struct seen s = { 0 };

    lose_bus(f, &s);
    /* Lost, not freed: nothing is watched any more and nothing calls lost again. */
    assert_non_null(s.b);
    assert_nothing_watched(f->base);
    busev_kick(s.b);
    assert_nothing_watched(f->base);
    assert_int_equal(s.lost_calls, 1);
    assert_true(sd->sd_bus_is_open(busev_bus(s.b)) <= 0);
    s.b = busev_free(s.b);
    assert_int_equal(s.lost_calls, 1);
}

int main(void)
{
    char msg[256] = "";

    sd = sdlib_get(msg, sizeof(msg));
    if (!sd) {
        fprintf(stderr, "libsystemd: %s\n", msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_refused, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_attach_invalid, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_call, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_call_from_callback, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_call_timeout, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lost_free_inside, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_lost_kept, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
