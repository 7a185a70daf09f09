/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What store.c shares with authority.c and the unit tests, and nobody else: directory, lock and
 * temporary-name helpers, recovery and the set protocol on a directory already locked, and the
 * crash hook of the write-set test.
 */
#pragma once

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/span.h"

/* Open a directory for *at() calls (O_DIRECTORY|O_CLOEXEC). A descriptor, or -errno. */
int store_open_dir(const char *dir);

/*
 * Take flock(2) op (LOCK_SH or LOCK_EX, blocking) on an open directory. Every writer and
 * store_recover() hold LOCK_EX for their whole operation, so recovery never takes an in-flight
 * write for a crashed one and no two writers interleave. The lock belongs to the open file
 * description: a second descriptor of the same directory opened by the same process does not
 * share it, and locking that one would wait for ourselves forever. Code that holds the lock
 * therefore calls the *_locked / *_at variants on its own descriptor. On file systems without
 * flock (EOPNOTSUPP, ENOLCK, EBADF on some NFS set-ups) it is skipped: returns 0 then, -errno
 * only for other failures.
 */
int store_dir_lock(int dirfd, int op);

/*
 * store_recover() on dirfd (dir only names it in log lines), which the caller holds with
 * LOCK_EX. Every writer calls it after taking the lock, before writing. Returns 1 when it
 * completed a committed set (targets changed: an authority directory then needs new links),
 * 0 when there was none, or -errno as store_recover().
 */
int store_recover_locked(int dirfd, const char *dir);

/*
 * One file of a store_write_set_at() call: a plain name in the set's directory, written with
 * data and mode, or (is_remove) removed, data and mode ignored.
 */
struct store_set_file {
    const char *name;
    struct span data;
    mode_t mode;
    bool is_remove;
};

/*
 * The journaled set protocol of store_write_set() (store.h) on dirfd, which the caller holds
 * with LOCK_EX and has settled with store_recover_locked(). The caller has checked the names
 * (plain, not reserved, each once, at most NAME_MAX bytes, no target a directory) and the
 * counts (at most STORE_SET_MAX writes and STORE_SET_REMOVE_MAX removals, at least one entry);
 * a bad one is -EINVAL. Returns 0; or -errno with *ret_step naming the step, *ret_failed the index
 * of the file concerned (0 when none) and *ret_is_committed whether the set got past its commit
 * point (then it is the new set that a crash or store_recover_locked() leaves, and the journal
 * stays until that has run). The crash hook below fires inside it.
 */
int store_write_set_at(int dirfd, const char *dir, const struct store_set_file *files, size_t n,
                       const char **ret_step, size_t *ret_failed, bool *ret_is_committed);

/*
 * Test hook, for tests/unit/test-store.c only: when store_write_set() reaches this point it
 * calls _exit(0) there, to simulate a crash in a forked child (also when the set is written by
 * authority_dir_add). STORE_CRASH_NONE (the default) in every real program; nothing but a unit
 * test assigns it.
 */
enum store_crash_point {
    STORE_CRASH_NONE,
    STORE_CRASH_AFTER_TEMPS,        /* journal written (uncommitted), temporaries durable */
    STORE_CRASH_AFTER_COMMIT,       /* journal renamed to its committed name, dir fsynced */
    STORE_CRASH_AFTER_FIRST_RENAME, /* the first target replaced (or removed) */
    STORE_CRASH_AFTER_RENAMES,      /* every target replaced or removed and durable, journal
                                       still there */
    STORE_CRASH_MAX
};
extern enum store_crash_point store_test_crash_at;

/* A directory stream of its own over dirfd (which stays open and owned by the caller). */
int store_dir_stream(int dirfd, DIR **ret);
