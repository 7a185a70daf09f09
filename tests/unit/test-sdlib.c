/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/sdlib: the notification reaches a datagram socket named by $NOTIFY_SOCKET, by path and
 * by abstract name, byte for byte and as one datagram; no $NOTIFY_SOCKET (or an empty one) is
 * "not run by a service manager"; addresses that are not a path or '@name', or too long, are
 * refused; a socket nobody listens on is an error. libsystemd loads on demand, once, with every
 * function of the table present, and the loaded sd-bus works (an error name maps to errno).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdlib.h"
#include "testutil.h"

/* A datagram socket bound to name (a path, or '@' + an abstract name); returns its fd. */
static int listener(const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(len < sizeof(sa.sun_path));
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
    }
    assert_int_equal(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
        0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    assert_int_equal(n, (ssize_t)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
    /* One datagram per notification, nothing more. */
    assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
}

static void test_notify_path(void **state)
{
    (void)state;
    char *dir = scratch_dir("sdlib");
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/notify", dir);
    int fd = listener(path);

    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    assert_int_equal(sdlib_notify("READY=1"), 1);
    expect_datagram(fd, "READY=1");
    assert_int_equal(sdlib_notify("RELOADING=1\nMONOTONIC_USEC=42"), 1);
    expect_datagram(fd, "RELOADING=1\nMONOTONIC_USEC=42");

    /* Nobody listening any more: an error, not a hang. */
    (void)close(fd);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(sdlib_notify("STOPPING=1"), -ENOENT);
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    scratch_rm(dir);
}

static void test_notify_abstract(void **state)
{
    (void)state;
    char name[64];
    (void)snprintf(name, sizeof(name), "@certd-test-sdlib-%ld", (long)getpid());
    int fd = listener(name);

    assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
    assert_int_equal(sdlib_notify("STOPPING=1"), 1);
    expect_datagram(fd, "STOPPING=1");
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    (void)close(fd);
}

static void test_notify_unset_and_bad(void **state)
{
    (void)state;
    char longname[200];

    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
    assert_int_equal(sdlib_notify("READY=1"), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_int_equal(sdlib_notify("READY=1"), 0);

    const char *bad[] = { "relative/path", "@", "/", "vsock:2:1234" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv("NOTIFY_SOCKET", bad[i], 1), 0);
        assert_int_equal(sdlib_notify("READY=1"), -EINVAL);
    }
    memset(longname, 'x', sizeof(longname) - 1);
    longname[0] = '/';
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(setenv("NOTIFY_SOCKET", longname, 1), 0);
    assert_int_equal(sdlib_notify("READY=1"), -EINVAL);
    assert_int_equal(unsetenv("NOTIFY_SOCKET"), 0);
}

static void test_load(void **state)
{
    (void)state;
    char msg[256] = "";
    const struct sdlib *a = sdlib_get(msg, sizeof(msg));
    assert_non_null(a);
    assert_string_equal(msg, "");
    assert_ptr_equal(sdlib_get(msg, sizeof(msg)), a);

#define CHECK_MEMBER(f) assert_non_null(a->f);
    SDLIB_FUNCTIONS(CHECK_MEMBER)
#undef CHECK_MEMBER

    /* The functions are libsystemd's own: opening a system bus at a bad address fails cleanly. */
    assert_int_equal(setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/certd-test", 1), 0);
    sd_bus *bus = NULL;
    int r = a->sd_bus_open_system(&bus);
    if (r >= 0) {
        /* sd-bus connects asynchronously: the failure shows when the connection is used. */
        assert_true(a->sd_bus_get_fd(bus) >= 0);
        (void)a->sd_bus_close_unref(bus);
    } else {
        assert_int_equal(r, -ENOENT);
    }
    assert_int_equal(unsetenv("DBUS_SYSTEM_BUS_ADDRESS"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_path),
        cmocka_unit_test(test_notify_abstract),
        cmocka_unit_test(test_notify_unset_and_bad),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
