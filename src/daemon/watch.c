/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The file watcher (watch.h): one inotify descriptor on the loop, a watch per directory, and
 * a table of watched names, each belonging to a group (one fn/arg pair). An event for a
 * watched name (re)arms its group's timer to WATCH_SETTLE_MS, so a burst ends in one call.
 * Invariants: the tables are fixed arrays of WATCH_FILES_MAX (memory is bounded and callbacks
 * may add watches without invalidating anything); a directory whose watch the kernel dropped
 * (IN_IGNORED) has wd -1 and matches no event; every group has its timer.
 */
#include "watch.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"
#include "util/parse.h"

/* read() calls per wakeup: the descriptor is level-triggered, the loop comes back for more. */
#define WATCH_READS_MAX 16u

#define WATCH_MASK \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR)

struct watch_dir {
    int wd; /* -1 once the kernel dropped the watch */
    char *path;
};

struct watch_group {
    watch_fn fn;
    void *arg;
    struct event *timer;
    bool is_pending;
    uint64_t burst_start_ms; /* first event of the pending burst */
};

struct watch_file {
    size_t dir;   /* index into dirs */
    size_t group; /* index into groups */
    char *name;
};

struct watch {
    struct event_base *base;
    int fd;
    struct event *ev;
    struct watch_dir dirs[WATCH_FILES_MAX];
    size_t n_dirs;
    struct watch_group groups[WATCH_FILES_MAX];
    size_t n_groups;
    struct watch_file files[WATCH_FILES_MAX];
    size_t n_files;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_settled(evutil_socket_t fd, short what, void *userdata)
{
    struct watch_group *g = userdata;
    (void)fd;
    (void)what;

    g->is_pending = false;
    g->fn(g->arg);
}

/* Another event of g's burst: call it WATCH_SETTLE_MS after the last one. */
static void group_touch(struct watch_group *g)
{
    uint64_t now = now_ms();
    struct timeval tv = { .tv_sec = (time_t)(WATCH_SETTLE_MS / 1000u),
                          .tv_usec = (suseconds_t)(WATCH_SETTLE_MS % 1000u) * 1000 };

    if (!g->is_pending) {
        g->is_pending = true;
        g->burst_start_ms = now;
    } else if (now - g->burst_start_ms >= WATCH_SETTLE_MAX_MS) {
        return; /* leave the timer as it is: the call comes now, not never */
    }
    if (evtimer_add(g->timer, &tv) < 0) {
        /* Cannot wait: better a call too early than none. */
        g->is_pending = false;
        g->fn(g->arg);
    }
}

static void touch_all(struct watch *w)
{
    for (size_t i = 0; i < w->n_groups; i++) {
        group_touch(&w->groups[i]);
    }
}

static void handle_event(struct watch *w, const struct inotify_event *e)
{
    size_t d, name_len;

    if (e->mask & IN_Q_OVERFLOW) {
        /* Events were lost: any file may have changed. The callbacks find out cheaply. */
        log_warning("watch: the kernel's event queue overflowed; re-checking every file");
        touch_all(w);
        return;
    }
    for (d = 0; d < w->n_dirs; d++) {
        if (w->dirs[d].wd == e->wd) {
            break;
        }
    }
    if (d == w->n_dirs) {
        return;
    }
    if (e->mask & IN_IGNORED) {
        log_warning("watch: directory %s was removed or unmounted; changes to files in it are "
                    "no longer seen (SIGHUP re-reads them)",
                    w->dirs[d].path);
        w->dirs[d].wd = -1;
        /* Its files are gone or replaced: let their owners look. */
        for (size_t f = 0; f < w->n_files; f++) {
            if (w->files[f].dir == d) {
                group_touch(&w->groups[w->files[f].group]);
            }
        }
        return;
    }
    if (e->len == 0) {
        return; /* an event on the directory itself */
    }
    /* The kernel NUL-pads e->name within e->len bytes; never read past them. */
    name_len = strnlen(e->name, e->len);
    for (size_t f = 0; f < w->n_files; f++) {
        const char *name = w->files[f].name;
        if (w->files[f].dir == d && strlen(name) == name_len &&
            memcmp(name, e->name, name_len) == 0) {
            group_touch(&w->groups[w->files[f].group]);
        }
    }
}

static void on_inotify(evutil_socket_t fd, short what, void *userdata)
{
    struct watch *w = userdata;
    /* Aligned as the kernel writes struct inotify_event; room for one maximal event at least. */
    union {
        struct inotify_event e;
        char bytes[4096 + sizeof(struct inotify_event) + NAME_MAX + 1];
    } buf;
    (void)what;

    for (unsigned i = 0; i < WATCH_READS_MAX; i++) {
        ssize_t n = read(fd, buf.bytes, sizeof(buf.bytes));
        size_t off = 0;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN) {
                log_warning("watch: cannot read events: %s", strerror(errno));
            }
            return;
        }
        /* The kernel writes whole events only; check anyway rather than trust the lengths. */
        while ((size_t)n - off >= sizeof(struct inotify_event)) {
            const struct inotify_event *e = (const struct inotify_event *)(buf.bytes + off);
            size_t total = sizeof(struct inotify_event) + e->len;

            if (total > (size_t)n - off) {
                break;
            }
            handle_event(w, e);
            off += total;
        }
    }
}

int watch_new(struct event_base *base, struct watch **ret)
{
    struct watch *w;

    assert_return(base, -EINVAL);
    assert_return(ret, -EINVAL);
    w = calloc(1, sizeof(*w));
    if (!w) {
        return -ENOMEM;
    }
    w->base = base;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        int r = -errno;
        free(w);
        return r;
    }
    w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, on_inotify, w);
    if (!w->ev || event_add(w->ev, NULL) < 0) {
        (void)watch_free(w);
        return -ENOMEM;
    }
    *ret = w;
    return 0;
}

struct watch *watch_free(struct watch *w)
{
    if (!w) {
        return NULL;
    }
    for (size_t i = 0; i < w->n_groups; i++) {
        event_free(w->groups[i].timer);
    }
    for (size_t i = 0; i < w->n_files; i++) {
        free(w->files[i].name);
    }
    for (size_t i = 0; i < w->n_dirs; i++) {
        free(w->dirs[i].path);
    }
    if (w->ev) {
        event_free(w->ev);
    }
    if (w->fd >= 0) {
        (void)close(w->fd);
    }
    free(w);
    return NULL;
}

static int find_group(struct watch *w, watch_fn fn, void *arg, size_t *ret)
{
    for (size_t i = 0; i < w->n_groups; i++) {
        if (w->groups[i].fn == fn && w->groups[i].arg == arg) {
            *ret = i;
            return 0;
        }
    }
    if (w->n_groups >= WATCH_FILES_MAX) {
        return -E2BIG;
    }
    struct watch_group *g = &w->groups[w->n_groups];
    *g = (struct watch_group){ .fn = fn, .arg = arg };
    g->timer = evtimer_new(w->base, on_settled, g);
    if (!g->timer) {
        return -ENOMEM;
    }
    *ret = w->n_groups++;
    return 0;
}

static int find_dir(struct watch *w, int wd, const char *dir, size_t *ret)
{
    for (size_t i = 0; i < w->n_dirs; i++) {
        if (w->dirs[i].wd == wd) {
            *ret = i;
            return 0;
        }
    }
    if (w->n_dirs >= WATCH_FILES_MAX) {
        return -E2BIG;
    }
    char *p = strdup(dir);
    if (!p) {
        return -ENOMEM;
    }
    w->dirs[w->n_dirs] = (struct watch_dir){ .wd = wd, .path = p };
    *ret = w->n_dirs++;
    return 0;
}

int watch_add(struct watch *w, const char *path, watch_fn fn, void *arg)
{
    _cleanup_free_ char *dir = NULL, *name = NULL;
    const char *base;
    size_t d, g;
    int wd, r;

    assert_return(w, -EINVAL);
    assert_return(fn, -EINVAL);
    assert_return(path, -EINVAL);
    r = path_split_name(path, &dir, &base);
    if (r < 0) {
        return r;
    }
    assert_return(strlen(base) <= NAME_MAX, -EINVAL);
    if (w->n_files >= WATCH_FILES_MAX) {
        return -E2BIG;
    }
    name = strdup(base);
    if (!name) {
        return -ENOMEM;
    }
    /* The same directory gives the same wd however it is spelled (links, bind mounts). */
    wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
    if (wd < 0) {
        r = -errno;
        if (r == -ENOENT) {
            log_debug("watch: directory %s does not exist; %s is not watched", dir, path);
            return 0;
        }
        return r;
    }
    r = find_dir(w, wd, dir, &d);
    if (r >= 0) {
        r = find_group(w, fn, arg, &g);
    }
    if (r < 0) {
        /* The watch stays: other files of the directory may use it, and it costs nothing. */
        return r;
    }
    w->files[w->n_files++] = (struct watch_file){ .dir = d, .group = g, .name = TAKE_PTR(name) };
    log_debug("watch: watching %s", path);
    return 0;
}
