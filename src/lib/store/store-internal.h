/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What store.c shares with authority.c and the unit tests, and nobody else: directory, lock and
 * temporary-name helpers, the no-replace write, and the crash hook of the write-set test.
 */
#pragma once

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util/span.h"

/* Open a directory for *at() calls (O_DIRECTORY|O_CLOEXEC). A descriptor, or -errno. */
int store_open_dir(const char *dir);

/*
 * Take flock(2) op (LOCK_SH or LOCK_EX, blocking) on an open directory. Writers hold LOCK_SH on
 * every directory they write into, store_recover() holds LOCK_EX, so recovery never takes an
 * in-flight write for a crashed one. The lock goes with the descriptor. On file systems without
 * flock (EOPNOTSUPP, ENOLCK, EBADF on some NFS set-ups) it is skipped: returns 0 then, -errno
 * only for other failures.
 */
int store_dir_lock(int dirfd, int op);

/*
 * ".tmp-<kind><base, cut>-<16 random hex digits>" into buf (NAME_MAX + 1 bytes): a name no
 * reader takes for real data and store_recover() removes. 0, -ENAMETOOLONG or -errno.
 */
int store_tmp_name(char *buf, size_t size, const char *kind, const char *base);

/*
 * Create name in dirfd with data and mode, only if no such name exists: written to a temporary,
 * fsynced, then moved in with renameat2(RENAME_NOREPLACE) (link(2) where the file system lacks
 * it), so a file that appears concurrently is never replaced. Returns 0 (ret_st, nullable,
 * holds the new file's stat), -EEXIST when the name is taken (nothing changed), or -errno with
 * *ret_step naming the step. The directory is not fsynced: the caller does that once.
 */
int store_write_new_at(int dirfd, const char *name, struct span data, mode_t mode,
                       struct stat *ret_st, const char **ret_step);

/*
 * Test hook, for tests/unit/test-store.c only: when store_write_set() reaches this point it
 * calls _exit(0) there, to simulate a crash in a forked child. STORE_CRASH_NONE (the default)
 * in every real program; nothing but a unit test assigns it.
 */
enum store_crash_point {
    STORE_CRASH_NONE,
    STORE_CRASH_AFTER_TEMPS,        /* journal written (uncommitted), temporaries durable */
    STORE_CRASH_AFTER_COMMIT,       /* journal renamed to its committed name, dir fsynced */
    STORE_CRASH_AFTER_FIRST_RENAME, /* the first target replaced */
    STORE_CRASH_AFTER_RENAMES,      /* every target replaced and durable, journal still there */
    STORE_CRASH_MAX
};
extern enum store_crash_point store_test_crash_at;

/* A directory stream of its own over dirfd (which stays open and owned by the caller). */
int store_dir_stream(int dirfd, DIR **ret);
