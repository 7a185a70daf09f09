/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Watching files for changes made behind certd's back (an admin copying a certificate into
 * place, certctl editing the users file): inotify on the directories of the watched files,
 * events for the watched names only (written and closed, moved in, created, deleted), and the
 * callback called once per burst, WATCH_SETTLE_MS after the last event, so that a
 * "cp cert; cp key" pair is seen as one change. certd's own atomic writes are seen too; the
 * callbacks must find "nothing changed" cheaply (the manager compares with its snapshot).
 * A directory that does not exist yet is not watched (logged at debug). A burst that never
 * settles (a file rewritten in a loop) still gets its call, WATCH_SETTLE_MAX_MS to
 * WATCH_SETTLE_MAX_MS + WATCH_SETTLE_MS after it began: the debounce may delay a reload, never
 * suppress it.
 * When the kernel's event queue overflows, every callback is called; when a watched directory
 * is removed (IN_IGNORED) a warning is logged, its callbacks are called once, and its files are
 * no longer watched (watch_add them again once it exists).
 * Callbacks run on the loop; they may call watch_add, not watch_free.
 * Thread-safety: loop thread only.
 */
#pragma once

#include "util/cleanup.h"

struct event_base;
struct watch;

#define WATCH_SETTLE_MS     200u
#define WATCH_SETTLE_MAX_MS (10u * WATCH_SETTLE_MS)
/* Watched paths (and so directories and callback groups) per watcher: 16 endpoints x 2 files,
 * the users file, and room to spare. */
#define WATCH_FILES_MAX 64u

typedef void (*watch_fn)(void *arg);

/* Returns 0, -ENOMEM or -errno of inotify_init1. */
_must_check_ int watch_new(struct event_base *base, struct watch **ret);
struct watch *watch_free(struct watch *w);
DEFINE_CLEANUP_STRUCT(watch, watch_free)

/*
 * Call fn(arg) when the file at path (absolute; its directory is watched) changes. Several
 * paths may share one fn/arg (cert and key of one endpoint): one call per burst for them all.
 * Returns 0 (also when the directory does not exist: not watched), -EINVAL (path not
 * absolute, or ending in "/", or a last name over NAME_MAX), -E2BIG (over WATCH_FILES_MAX),
 * -ENOMEM, or -errno of inotify_add_watch (-ENOTDIR, -EACCES, -ENOSPC: the user's limit of
 * watches). path is copied; arg is borrowed until watch_free.
 */
_must_check_ int watch_add(struct watch *w, const char *path, watch_fn fn, void *arg);
