/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/watch: on a real event loop and real inotify, in scratch directories. A burst of
 * changes gives one call; names not watched give none; rename-into-place and removal count;
 * several paths (in one directory or several) share one call; a missing directory is not an
 * error; a removed directory stops its watch without harm; argument checks and the limit.
 * Negative checks ("no call") are ordered after a positive one in the same directory: inotify
 * delivers a directory's events in order, so once a later event was seen, an earlier one that
 * should not count would have been seen too.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "watch.h"

#define WAIT_SECONDS 60

struct counter {
    int calls;
};

static void on_change(void *arg)
{
    struct counter *c = arg;
    c->calls++;
}

struct fixture {
    struct event_base *base;
    struct watch *w;
    char *dir;
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(watch_new(f->base, &f->w), 0);
    f->dir = scratch_dir("watch");
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    f->w = watch_free(f->w);
    event_base_free(f->base);
    scratch_rm(f->dir);
    free(f);
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static void file_put(const char *dir, const char *name, const char *content)
{
    char *p = path_join(dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(close(fd), 0);
    free(p);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Run the loop until c was called at least once (event-driven, bounded). */
static void wait_called(struct event_base *base, const struct counter *c)
{
    bool is_expired = false;
    struct event *deadline = evtimer_new(base, on_deadline, &is_expired);
    struct timeval tv = { .tv_sec = WAIT_SECONDS };

    assert_non_null(deadline);
    assert_int_equal(evtimer_add(deadline, &tv), 0);
    while (c->calls == 0 && !is_expired) {
        assert_true(event_base_loop(base, EVLOOP_ONCE) >= 0);
    }
    event_free(deadline);
    assert_false(is_expired);
}

/*
 * Let every timer the events seen so far armed run out: a second call of a burst would come
 * WATCH_SETTLE_MS after the events that armed it, all of which were read already.
 */
static void settle(struct event_base *base)
{
    struct timeval tv = { .tv_sec = 0, .tv_usec = 3 * WATCH_SETTLE_MS * 1000 };
    assert_int_equal(event_base_loopexit(base, &tv), 0);
    assert_int_equal(event_base_dispatch(base), 0);
}

static void test_burst_once(void **state)
{
    struct fixture *f = *state;
    struct counter c = { 0 };
    char *cert = path_join(f->dir, "cert.pem");

    assert_int_equal(watch_add(f->w, cert, on_change, &c), 0);
    /* All before the loop runs: one burst, whatever the machine's speed. */
    for (int i = 0; i < 20; i++) {
        file_put(f->dir, "cert.pem", "x");
    }
    assert_int_equal(unlink(cert), 0);
    file_put(f->dir, "cert.pem", "y");
    wait_called(f->base, &c);
    settle(f->base);
    assert_int_equal(c.calls, 1);

    /* A later change is a new burst. */
    file_put(f->dir, "cert.pem", "z");
    c.calls = 0;
    wait_called(f->base, &c);
    settle(f->base);
    assert_int_equal(c.calls, 1);
    free(cert);
}

static void test_unrelated_ignored(void **state)
{
    struct fixture *f = *state;
    struct counter watched = { 0 }, marker = { 0 };
    char *cert = path_join(f->dir, "cert.pem");
    char *key = path_join(f->dir, "key.pem");

    assert_int_equal(watch_add(f->w, cert, on_change, &watched), 0);
    assert_int_equal(watch_add(f->w, key, on_change, &marker), 0);
    /* Names that only look alike, temporaries, a subdirectory: none is cert.pem. */
    file_put(f->dir, "cert.pem.tmp", "x");
    file_put(f->dir, "cert.pe", "x");
    file_put(f->dir, "xcert.pem", "x");
    file_put(f->dir, ".tmp-cert.pem", "x");
    char *sub = path_join(f->dir, "cert.pem.d");
    assert_int_equal(mkdir(sub, 0700), 0);
    file_put(sub, "cert.pem", "x"); /* same name, another directory */
    /* Then the marker: once its call came, the events above were all read. */
    file_put(f->dir, "key.pem", "k");
    wait_called(f->base, &marker);
    settle(f->base);
    assert_int_equal(marker.calls, 1);
    assert_int_equal(watched.calls, 0);
    free(cert);
    free(key);
    free(sub);
}

static void test_rename_into_place(void **state)
{
    struct fixture *f = *state;
    struct counter c = { 0 };
    char *cert = path_join(f->dir, "cert.pem");
    char *tmp = path_join(f->dir, ".tmp-1234");

    assert_int_equal(watch_add(f->w, cert, on_change, &c), 0);
    /* As store_write_atomic and cp-then-mv do: only the rename touches the watched name. */
    file_put(f->dir, ".tmp-1234", "new");
    assert_int_equal(rename(tmp, cert), 0);
    wait_called(f->base, &c);
    settle(f->base);
    assert_int_equal(c.calls, 1);

    /* Moved away counts too. */
    c.calls = 0;
    assert_int_equal(rename(cert, tmp), 0);
    wait_called(f->base, &c);
    settle(f->base);
    assert_int_equal(c.calls, 1);

    /* And so does a deletion, alone: the file is made and that burst has ended first. */
    assert_int_equal(unlink(tmp), 0);
    file_put(f->dir, "cert.pem", "again");
    c.calls = 0;
    wait_called(f->base, &c);
    settle(f->base);
    c.calls = 0;
    assert_int_equal(unlink(cert), 0);
    wait_called(f->base, &c);
    settle(f->base);
    assert_int_equal(c.calls, 1);
    free(cert);
    free(tmp);
}

static void test_paths_share_a_call(void **state)
{
    struct fixture *f = *state;
    struct counter ep = { 0 }, other = { 0 };
    char *sub = path_join(f->dir, "keys");
    char *cert = path_join(f->dir, "cert.pem");
    char *chain = path_join(f->dir, "chain.pem");
    char *key = path_join(sub, "key.pem");
    char *users = path_join(f->dir, "users");

    assert_int_equal(mkdir(sub, 0700), 0);
    /* One endpoint's files, in two directories, one callback; another one beside them. */
    assert_int_equal(watch_add(f->w, cert, on_change, &ep), 0);
    assert_int_equal(watch_add(f->w, chain, on_change, &ep), 0);
    assert_int_equal(watch_add(f->w, key, on_change, &ep), 0);
    assert_int_equal(watch_add(f->w, users, on_change, &other), 0);
    file_put(f->dir, "cert.pem", "c");
    file_put(sub, "key.pem", "k");
    file_put(f->dir, "chain.pem", "c");
    wait_called(f->base, &ep);
    settle(f->base);
    assert_int_equal(ep.calls, 1);
    assert_int_equal(other.calls, 0);

    /* The other group alone. */
    file_put(f->dir, "users", "u");
    wait_called(f->base, &other);
    settle(f->base);
    assert_int_equal(other.calls, 1);
    assert_int_equal(ep.calls, 1);
    free(sub);
    free(cert);
    free(chain);
    free(key);
    free(users);
}

static void test_missing_and_removed_directory(void **state)
{
    struct fixture *f = *state;
    struct counter gone = { 0 }, marker = { 0 };
    char *sub = path_join(f->dir, "later");
    char *later = path_join(sub, "cert.pem");
    char *marker_path = path_join(f->dir, "marker");

    /* Not there yet: not watched, not an error. */
    assert_int_equal(watch_add(f->w, later, on_change, &gone), 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    file_put(sub, "cert.pem", "x");
    assert_int_equal(watch_add(f->w, marker_path, on_change, &marker), 0);
    file_put(f->dir, "marker", "m");
    wait_called(f->base, &marker);
    settle(f->base);
    assert_int_equal(gone.calls, 0);

    /* Now watched; then the directory goes: its file's owner hears of it, nothing breaks. */
    assert_int_equal(watch_add(f->w, later, on_change, &gone), 0);
    assert_int_equal(unlink(later), 0);
    assert_int_equal(rmdir(sub), 0);
    wait_called(f->base, &gone);
    settle(f->base);
    assert_int_equal(gone.calls, 1);
    /* Made again, it is not watched until added again. */
    assert_int_equal(mkdir(sub, 0700), 0);
    file_put(sub, "cert.pem", "x");
    marker.calls = 0;
    file_put(f->dir, "marker", "m");
    wait_called(f->base, &marker);
    settle(f->base);
    assert_int_equal(gone.calls, 1);
    assert_int_equal(watch_add(f->w, later, on_change, &gone), 0);
    file_put(sub, "cert.pem", "y");
    gone.calls = 0;
    wait_called(f->base, &gone);
    free(sub);
    free(later);
    free(marker_path);
}

static void test_arguments_and_limit(void **state)
{
    struct fixture *f = *state;
    struct counter c = { 0 };
    char name[300];

    assert_int_equal(watch_add(f->w, "relative/cert.pem", on_change, &c), -EINVAL);
    assert_int_equal(watch_add(f->w, "/etc/", on_change, &c), -EINVAL);
    assert_int_equal(watch_add(f->w, "/etc/x", NULL, &c), -EINVAL);
    memset(name, 'a', sizeof(name) - 1);
    name[0] = '/';
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(watch_add(f->w, name, on_change, &c), -EINVAL); /* name over NAME_MAX */
    /* A file where a directory should be. */
    file_put(f->dir, "plain", "x");
    char *inside = path_join(f->dir, "plain/cert.pem");
    assert_int_equal(watch_add(f->w, inside, on_change, &c), -ENOTDIR);
    free(inside);

    /* WATCH_FILES_MAX paths, then one more. */
    for (unsigned i = 0; i < WATCH_FILES_MAX; i++) {
        char n[32];
        (void)snprintf(n, sizeof(n), "f%u", i);
        char *p = path_join(f->dir, n);
        assert_int_equal(watch_add(f->w, p, on_change, &c), 0);
        free(p);
    }
    char *p = path_join(f->dir, "one-more");
    assert_int_equal(watch_add(f->w, p, on_change, &c), -E2BIG);
    free(p);
    /* The ones that fit work. */
    file_put(f->dir, "f63", "x");
    wait_called(f->base, &c);
    settle(f->base);
    assert_int_equal(c.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_once, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_unrelated_ignored, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_rename_into_place, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_paths_share_a_call, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_removed_directory, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_arguments_and_limit, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
