/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store/: durable, atomic file writes (STYLE.md §3 "Changes are all-or-nothing"). Invariants:
 *  - a target is only ever replaced by rename(2) of a temporary in the same directory that was
 *    written completely and fsynced first, so a reader sees the old bytes or the new ones;
 *  - a set of files (store_write_set), all in one directory, is written (and some removed)
 *    under a redo journal kept in that directory: once the journal is committed (renamed to
 *    ".journal-<id>") the new set is what a crash leaves, after store_recover(); before that,
 *    the old set. Never a mix;
 *  - journals name files relative to their own directory only (plain names, no '/'): recovery
 *    never acts outside the directory it is given, and a store can be moved;
 *  - every writer holds the directory's flock exclusively and first completes any committed
 *    journal a crash left there, so no journal can outlive a later write and be replayed over
 *    it; a committed journal that cannot be trusted is set aside, never replayed;
 *  - a file gets its final mode when it is created (O_CREAT|O_EXCL, narrowed by the umask
 *    only); nothing is chmod'ed afterwards, so a key file is never readable by others, not even
 *    for a moment;
 *  - the only names this module leaves behind after a crash start with ".tmp" or ".journal-":
 *    readers skip them and store_recover() settles them;
 *  - buffers that may hold key bytes are wiped before they are freed;
 *  - messages name the path and the failing step, never the data.
 */
#include "store/store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log/log.h"
#include "store/store-internal.h"
#include "util/parse.h"

/* Temporaries of single writes (store_write_atomic, authority links): removed on recovery. */
#define STORE_TMP_PREFIX     ".tmp-"
#define STORE_TMP_PREFIX_LEN (sizeof(STORE_TMP_PREFIX) - 1)
/*
 * The names of a write set with journal id J, all in the one directory of the set:
 * ".tmpjournal-J" (written, not committed), ".journal-J" (committed), ".tmpset-J-<index>" (the
 * new contents), and ".journal-J.broken" (a committed journal recovery set aside unread).
 */
#define STORE_SET_TMP_PREFIX        ".tmpset-"
#define STORE_JOURNAL_TMP_PREFIX    ".tmpjournal-"
#define STORE_JOURNAL_PREFIX        ".journal-"
#define STORE_JOURNAL_BROKEN_SUFFIX ".broken"
/* A journal id: 64 random bits in lowercase hex. */
#define STORE_JID_BYTES 8u
#define STORE_JID_LEN   (2u * STORE_JID_BYTES)
/*
 * Journal layout: NUL-terminated fields (names may hold any other byte), see store.h. Version 2
 * holds names relative to the journal's directory only; a version 1 journal (with directories)
 * does not parse and is set aside, never replayed. Version 3 adds removals: each entry starts
 * with its kind. A set without removals is still written as version 2, so that an older certd
 * (downgraded, or certctl of an earlier release) can settle it; both are read.
 */
#define STORE_JOURNAL_MAGIC_V2    "certd-store-journal-2"
#define STORE_JOURNAL_MAGIC_V3    "certd-store-journal-3"
#define STORE_JOURNAL_KIND_WRITE  "write"
#define STORE_JOURNAL_KIND_REMOVE "remove"
#define STORE_JOURNAL_END         "end"
/* Entries of one set at most: its writes and its removals. */
#define STORE_SET_ENTRIES_MAX (STORE_SET_MAX + STORE_SET_REMOVE_MAX)
/* The largest entry: its kind and two names, each with its NUL. */
#define STORE_JOURNAL_ENTRY_MAX (sizeof(STORE_JOURNAL_KIND_REMOVE) + 2u * (NAME_MAX + 1u))
/* The largest journal we write: magic, count, end, and the entries. */
#define STORE_JOURNAL_MAX (4096u + STORE_SET_ENTRIES_MAX * STORE_JOURNAL_ENTRY_MAX)
/*
 * The target's name appears in its temporary's name only to help a human reading a directory
 * after a crash; it is cut to this many bytes so that the temporary's name stays far below
 * NAME_MAX whatever the target's length (a too-long target then fails at rename).
 */
#define STORE_TMP_BASE_MAX 64
/* Attempts at a fresh random temporary name before giving up (a clash is already ~2^-64). */
#define STORE_TMP_TRIES 8
/* First buffer size for files whose size fstat does not tell (procfs and the like). */
#define STORE_READ_CHUNK 4096u

DEFINE_CLEANUP(DIR, closedir)

enum store_crash_point store_test_crash_at = STORE_CRASH_NONE;

/* The crash hook of the write-set test (store-internal.h); a no-op in every real program. */
static void crash_point(enum store_crash_point p)
{
    if (store_test_crash_at == p) {
        _exit(0);
    }
}

const char *store_errno_str(int r, char *buf, size_t size)
{
    return strerror_r(r < 0 ? -r : r, buf, size);
}

/* Record a storage failure: step, reason, path. Returns r. */
static int store_fail(struct certd_err *err, int r, const char *path, const char *step)
{
    char buf[128];

    log_debug("store: %s: %s: %s", path, step, store_errno_str(r, buf, sizeof(buf)));
    /* The step and the reason first: a long path may be cut at the end of the message. */
    return err_set(err, r, CERTD_E_STORAGE, "storage: %s failed (%s) writing %s", step,
                   store_errno_str(r, buf, sizeof(buf)), path);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* One path component we could create or rename: not empty, ".", "..", no '/', <= NAME_MAX. */
static bool name_is_plain(const char *s)
{
    size_t len = strnlen(s, NAME_MAX + 1);
    return len > 0 && len <= NAME_MAX && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
           !strchr(s, '/');
}

/* Names recovery acts on: never a target of a write set. */
static bool name_is_reserved(const char *s)
{
    return has_prefix(s, STORE_TMP_PREFIX) || has_prefix(s, STORE_SET_TMP_PREFIX) ||
           has_prefix(s, STORE_JOURNAL_TMP_PREFIX) || has_prefix(s, STORE_JOURNAL_PREFIX);
}

static bool same_dir(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* prefix followed by exactly STORE_JID_LEN lowercase hex digits, then end (or '-' if is_set). */
static bool parse_jid_name(const char *name, const char *prefix, bool is_set,
                           char jid[static STORE_JID_LEN + 1])
{
    size_t plen = strlen(prefix);

    if (strncmp(name, prefix, plen) != 0) {
        return false;
    }
    for (size_t i = 0; i < STORE_JID_LEN; i++) {
        char c = name[plen + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false; /* also stops at a NUL: the name is shorter */
        }
    }
    if (name[plen + STORE_JID_LEN] != (is_set ? '-' : '\0')) {
        return false;
    }
    memcpy(jid, name + plen, STORE_JID_LEN);
    jid[STORE_JID_LEN] = '\0';
    return true;
}

/*
 * Split path into its directory (malloc'd; "." when there is no slash) and its last component
 * (borrowed from path). A path ending in "/", ".", or ".." names no file we could replace.
 */
static int path_split(const char *path, char **ret_dir, const char **ret_base)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir;

    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        return -EINVAL;
    }
    if (!slash) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (!dir) {
        return -ENOMEM;
    }
    *ret_dir = dir;
    *ret_base = base;
    return 0;
}

int store_open_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int store_dir_lock(int dirfd, int op)
{
    while (flock(dirfd, op) < 0) {
        if (errno == EINTR) {
            continue;
        }
        /* No flock here (some NFS set-ups): the lock only guards against our own mistakes. */
        if (errno == EOPNOTSUPP || errno == ENOLCK || errno == EBADF || errno == EINVAL) {
            log_debug("store: no directory lock on this file system");
            return 0;
        }
        return -errno;
    }
    return 0;
}

int store_dir_stream(int dirfd, DIR **ret)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int r = -errno;
        (void)close(fd);
        return r;
    }
    *ret = d;
    return 0;
}

/* n random bytes as 2n lowercase hex digits and a NUL into hex. */
static int random_hex(char *hex, size_t n)
{
    uint8_t rnd[STORE_JID_BYTES];
    size_t got = 0;

    assert(n <= sizeof(rnd));
    while (got < n) {
        ssize_t k = getrandom(rnd + got, n - got, 0);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        got += (size_t)k;
    }
    for (size_t i = 0; i < n; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[rnd[i] >> 4];
        hex[2 * i + 1] = digits[rnd[i] & 0xf];
    }
    hex[2 * n] = '\0';
    return 0;
}

int store_tmp_name(char *buf, size_t size, const char *kind, const char *base)
{
    char hex[STORE_JID_LEN + 1];
    size_t base_len = strnlen(base, STORE_TMP_BASE_MAX);
    int r = random_hex(hex, STORE_JID_BYTES);

    if (r < 0) {
        return r;
    }
    int n = snprintf(buf, size, STORE_TMP_PREFIX "%s%.*s-%s", kind, (int)base_len, base, hex);
    if (n < 0 || (size_t)n >= size) {
        return -ENAMETOOLONG;
    }
    return 0;
}

/* Write all of data to fd, across partial writes and signals. */
static int write_all(int fd, struct span data)
{
    size_t off = 0;

    while (off < data.len) {
        ssize_t n = write(fd, data.p + off, data.len - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;
        }
        off += (size_t)n;
    }
    return 0;
}

/*
 * Create name in dirfd (O_EXCL: never an existing file) with mode, write data, fsync, close.
 * On failure the name is removed again when this call made it, and *ret_step names the step
 * ("create temporary" with -EEXIST when taken).
 */
static int file_create(int dirfd, const char *name, struct span data, mode_t mode,
                       const char **ret_step)
{
    _cleanup_close_ int fd = -EBADF;
    int r;

    /* The mode is final from here on: the umask may narrow it, nothing widens it. */
    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        *ret_step = "create temporary";
        return -errno;
    }
    r = write_all(fd, data);
    if (r < 0) {
        *ret_step = "write";
        goto fail;
    }
    if (fsync(fd) < 0) {
        r = -errno;
        *ret_step = "fsync";
        goto fail;
    }
    /*
     * close() reports late write-back errors on some file systems. On Linux the descriptor is
     * gone even when close() fails with EINTR, so that one is not retried; after fsync it
     * cannot mean lost data.
     */
    if (close(TAKE_FD(fd)) < 0 && errno != EINTR) {
        r = -errno;
        *ret_step = "close";
        goto fail;
    }
    return 0;

fail:
    (void)unlinkat(dirfd, name, 0);
    return r;
}

/*
 * Create a fresh temporary for base in dirfd with mode, write data, fsync and close it. On
 * success its name is in tmp (NAME_MAX + 1 bytes); on failure nothing is left behind and
 * *ret_step names the step that failed.
 */
static int tmp_write(int dirfd, const char *base, struct span data, mode_t mode, char *tmp,
                     size_t tmp_size, const char **ret_step)
{
    int r = -EEXIST;

    for (unsigned i = 0; i < STORE_TMP_TRIES && r == -EEXIST; i++) {
        r = store_tmp_name(tmp, tmp_size, "", base);
        if (r < 0) {
            *ret_step = "name temporary";
            return r;
        }
        r = file_create(dirfd, tmp, data, mode, ret_step);
    }
    return r;
}

int store_write_atomic(const char *path, struct span data, mode_t mode, struct certd_err *err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    const char *base = NULL, *step = NULL;
    char tmp[NAME_MAX + 1];
    int r;

    assert_return(path, -EINVAL);
    assert_return(data.p || data.len == 0, -EINVAL);
    assert_return((mode & ~(mode_t)0777) == 0, -EINVAL);

    r = path_split(path, &dir, &base);
    if (r < 0) {
        return store_fail(err, r, path, "parse path");
    }
    dirfd = store_open_dir(dir);
    if (dirfd < 0) {
        return store_fail(err, dirfd, path, "open directory");
    }
    /*
     * Exclusive, like every writer: a committed journal a crash left here is completed before
     * this write, never after it (replayed later, it would put its older content back over
     * ours). Holding the lock, any journal here is a dead writer's.
     */
    r = store_dir_lock(dirfd, LOCK_EX);
    if (r < 0) {
        return store_fail(err, r, path, "lock directory");
    }
    r = store_recover_locked(dirfd, dir);
    if (r < 0) {
        return store_fail(err, r, path, "complete an earlier interrupted write");
    }
    r = tmp_write(dirfd, base, data, mode, tmp, sizeof(tmp), &step);
    if (r < 0) {
        return store_fail(err, r, path, step);
    }
    if (renameat(dirfd, tmp, dirfd, base) < 0) {
        r = -errno;
        (void)unlinkat(dirfd, tmp, 0);
        return store_fail(err, r, path, "rename");
    }
    /*
     * Without this the rename itself may not survive a crash. When it fails the new content is
     * visible but not known to be durable: reported, since the caller promised durability.
     */
    if (fsync(dirfd) < 0) {
        return store_fail(err, -errno, path, "fsync directory");
    }
    return 0;
}

/* ---- write sets under a redo journal ---- */

/* The progress of one store_write_set_at() call, for its cleanup. */
struct set_state {
    int dirfd;                          /* borrowed */
    const struct store_set_file *files; /* borrowed */
    size_t n_made; /* entries [0, n_made) went through step 2: their writes have temporaries */
    char jid[STORE_JID_LEN + 1];
    char jtmp[NAME_MAX + 1];  /* the journal before the commit */
    char jname[NAME_MAX + 1]; /* its committed name */
    bool has_jtmp, is_committed;
};

/* The temporary of entry i of the set with journal id jid: ".tmpset-J-<i>". */
static void set_tmp_name(char buf[static NAME_MAX + 1], const char *jid, size_t i)
{
    (void)snprintf(buf, NAME_MAX + 1, STORE_SET_TMP_PREFIX "%s-%zu", jid, i);
}

/*
 * Ends a set. Before the commit: the temporaries go first, then (once their removal is durable)
 * the journal that names them, so a crash in between still leaves recovery a complete list.
 * After the commit nothing is removed here: the journal stays until the set is complete.
 */
static void set_state_done(struct set_state *s)
{
    bool removed = false;

    if (s->is_committed) {
        return;
    }
    for (size_t i = 0; i < s->n_made; i++) {
        char tmp[NAME_MAX + 1];
        if (s->files[i].is_remove) {
            continue;
        }
        set_tmp_name(tmp, s->jid, i);
        (void)unlinkat(s->dirfd, tmp, 0);
        removed = true;
    }
    if (removed) {
        (void)fsync(s->dirfd);
    }
    if (s->has_jtmp) {
        (void)unlinkat(s->dirfd, s->jtmp, 0);
        (void)fsync(s->dirfd);
    }
}

/* Append s and its NUL at *off in buf; with buf NULL only count its bytes into *off. */
static void put_field(uint8_t *buf, size_t *off, const char *s)
{
    size_t len = strlen(s) + 1;
    if (buf) {
        memcpy(buf + *off, s, len);
    }
    *off += len;
}

/*
 * The journal's fields, in order, into buf (NULL: only counted) at *off: version 2 (no
 * removal) magic, count, (temporary, target) per entry, end; version 3 magic, count, per entry
 * "write" temporary target or "remove" target, end.
 */
static void journal_fields(const struct set_state *s, size_t n, bool is_v3, uint8_t *buf,
                           size_t *off)
{
    char count[24], tmp[NAME_MAX + 1];

    (void)snprintf(count, sizeof(count), "%zu", n);
    put_field(buf, off, is_v3 ? STORE_JOURNAL_MAGIC_V3 : STORE_JOURNAL_MAGIC_V2);
    put_field(buf, off, count);
    for (size_t i = 0; i < n; i++) {
        const struct store_set_file *f = &s->files[i];
        if (is_v3) {
            put_field(buf, off,
                      f->is_remove ? STORE_JOURNAL_KIND_REMOVE : STORE_JOURNAL_KIND_WRITE);
        }
        if (!f->is_remove) {
            set_tmp_name(tmp, s->jid, i);
            put_field(buf, off, tmp);
        }
        put_field(buf, off, f->name);
    }
    put_field(buf, off, STORE_JOURNAL_END);
}

/*
 * The journal's bytes. Every name is at most NAME_MAX bytes and n is bounded
 * (STORE_SET_ENTRIES_MAX), so the size cannot overflow; it is checked against the journal limit
 * recovery reads with all the same.
 */
static int journal_build(const struct set_state *s, size_t n, bool is_v3, uint8_t **ret,
                         size_t *ret_len)
{
    size_t len = 0, off = 0;
    uint8_t *buf;

    journal_fields(s, n, is_v3, NULL, &len);
    if (len > STORE_JOURNAL_MAX) {
        return -E2BIG;
    }
    buf = malloc(len);
    if (!buf) {
        return -ENOMEM;
    }
    journal_fields(s, n, is_v3, buf, &off);
    assert(off == len);
    *ret = buf;
    *ret_len = len;
    return 0;
}

/*
 * The protocol is described in store.h. Steps, with the state a crash leaves (after
 * store_recover of the directory):
 *  1. journal ".tmpjournal-J" written, fsynced, the directory fsynced        -> old set
 *  2. temporaries ".tmpset-J-i" written, fsynced, the directory fsynced      -> old set
 *  3. commit: rename to ".journal-J", fsync the directory                    -> new set
 *  4. rename each temporary over its target, unlink each removed target,
 *     fsync the directory                                                    -> new set
 *  5. unlink the journal                                                     -> new set
 * The journal is durable before any temporary exists, so recovery always finds the temporaries
 * of a set; they are durable before the commit, so a committed journal whose temporary is
 * missing means "renamed already", and a removed target that is missing means "unlinked
 * already". Everything is named relative to dirfd: the journal holds plain names only, so the
 * directory may be moved and no content can lead recovery elsewhere.
 */
int store_write_set_at(int dirfd, const char *dir, const struct store_set_file *files, size_t n,
                       const char **ret_step, size_t *ret_failed, bool *ret_is_committed)
{
    _cleanup_(set_state_done) struct set_state s = { .dirfd = dirfd, .files = files };
    _cleanup_free_ uint8_t *journal = NULL;
    size_t journal_len = 0, n_writes = 0, n_removes = 0;
    int r, q;

    assert_return(dirfd >= 0, -EINVAL);
    assert_return(dir, -EINVAL);
    assert_return(files, -EINVAL);
    assert_return(n > 0, -EINVAL);
    assert_return(ret_step && ret_failed && ret_is_committed, -EINVAL);
    for (size_t i = 0; i < n; i++) {
        assert_return(files[i].name && name_is_plain(files[i].name), -EINVAL);
        assert_return(!name_is_reserved(files[i].name), -EINVAL);
        if (files[i].is_remove) {
            n_removes++;
            continue;
        }
        n_writes++;
        assert_return(files[i].data.p || files[i].data.len == 0, -EINVAL);
        assert_return((files[i].mode & ~(mode_t)0777) == 0, -EINVAL);
    }
    assert_return(n_writes <= STORE_SET_MAX && n_removes <= STORE_SET_REMOVE_MAX, -EINVAL);
    *ret_is_committed = false;
    *ret_failed = 0;

    r = random_hex(s.jid, STORE_JID_BYTES);
    if (r < 0) {
        *ret_step = "name journal";
        return r;
    }
    (void)snprintf(s.jtmp, sizeof(s.jtmp), STORE_JOURNAL_TMP_PREFIX "%s", s.jid);
    (void)snprintf(s.jname, sizeof(s.jname), STORE_JOURNAL_PREFIX "%s", s.jid);
    /* Version 2 whenever it can say it all: an older certd can still settle such a set. */
    r = journal_build(&s, n, n_removes > 0, &journal, &journal_len);
    if (r < 0) {
        *ret_step = "build journal";
        return r;
    }

    /* 1. The journal, durable, under its uncommitted name. */
    r = file_create(dirfd, s.jtmp, span_make(journal, journal_len), STORE_MODE_SECRET, ret_step);
    free(TAKE_PTR(journal)); /* on disk now; nothing else needs it */
    if (r < 0) {
        *ret_step = "write journal";
        return r;
    }
    s.has_jtmp = true;
    if (fsync(dirfd) < 0) {
        *ret_step = "fsync directory";
        return -errno;
    }

    /* 2. Every new content, durable, under its temporary name; a removal has none. */
    for (size_t i = 0; i < n; i++) {
        if (!files[i].is_remove) {
            char tmp[NAME_MAX + 1];
            set_tmp_name(tmp, s.jid, i);
            r = file_create(dirfd, tmp, files[i].data, files[i].mode, ret_step);
            if (r < 0) {
                *ret_failed = i;
                return r;
            }
        }
        s.n_made = i + 1;
    }
    if (fsync(dirfd) < 0) {
        *ret_step = "fsync directory";
        return -errno;
    }
    crash_point(STORE_CRASH_AFTER_TEMPS);

    /* 3. The commit point. */
    if (renameat(dirfd, s.jtmp, dirfd, s.jname) < 0) {
        struct stat st;
        r = -errno;
        /* A rename that reports failure but happened is a commit all the same. */
        if (fstatat(dirfd, s.jname, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            *ret_step = "commit journal";
            return r;
        }
    }
    s.is_committed = true;
    *ret_is_committed = true;
    /* From here on only forward: failures are recorded, the remaining steps still run. */
    r = fsync(dirfd) < 0 ? -errno : 0;
    *ret_step = "fsync directory";
    crash_point(STORE_CRASH_AFTER_COMMIT);

    /* 4. The renames and removals, then their durability. */
    for (size_t i = 0; i < n; i++) {
        char tmp[NAME_MAX + 1];
        bool is_done;
        if (files[i].is_remove) {
            /* Gone already is what was asked for. */
            is_done = unlinkat(dirfd, files[i].name, 0) == 0 || errno == ENOENT;
        } else {
            set_tmp_name(tmp, s.jid, i);
            is_done = renameat(dirfd, tmp, dirfd, files[i].name) == 0;
        }
        if (!is_done) {
            if (r == 0) {
                r = -errno;
                *ret_step = files[i].is_remove
                                ? "remove (the set is committed: store_recover completes it)"
                                : "rename (the set is committed: store_recover completes it)";
                *ret_failed = i;
            }
            continue;
        }
        if (i == 0) {
            crash_point(STORE_CRASH_AFTER_FIRST_RENAME);
        }
    }
    q = fsync(dirfd) < 0 ? -errno : 0;
    if (q < 0 && r == 0) {
        r = q;
        *ret_step = "fsync directory";
    }
    crash_point(STORE_CRASH_AFTER_RENAMES);
    if (r < 0) {
        /* The journal stays: store_recover() finishes what could not be finished here. */
        return r;
    }

    /* 5. Done: the journal goes. If that fails, recovery removes it later (nothing to redo). */
    if (unlinkat(dirfd, s.jname, 0) < 0 || fsync(dirfd) < 0) {
        char buf[128];
        log_debug("store: %s: cannot remove journal %s: %s", dir, s.jname,
                  store_errno_str(-errno, buf, sizeof(buf)));
    }
    return 0;
}

/*
 * Open the one directory of a set and check every entry: all in that directory (by device and
 * inode: "a/x" and "a/../a/y" are in one), no file named twice, no reserved name. Fills set[]
 * with the base names (borrowed from files[]). Nothing is locked or written yet.
 */
static int write_set_open(const struct store_file *files, size_t n, struct store_set_file *set,
                          char **ret_dir, int *ret_dirfd, struct certd_err *err)
{
    _cleanup_free_ char *dir0 = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    struct stat dst;
    int r;

    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *dir = NULL;
        const char *base = NULL;
        r = path_split(files[i].path, &dir, &base);
        if (r < 0) {
            return store_fail(err, r, files[i].path, "parse path");
        }
        if (name_is_reserved(base)) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "%s: names starting with .tmp-, .tmpset-, .tmpjournal- or .journal- "
                           "are reserved for the store",
                           files[i].path);
        }
        set[i] =
            (struct store_set_file){ .name = base, .data = files[i].data, .mode = files[i].mode };
        if (i == 0) {
            dir0 = TAKE_PTR(dir);
        }
    }
    dirfd = store_open_dir(dir0);
    if (dirfd < 0) {
        return store_fail(err, dirfd, files[0].path, "open directory");
    }
    if (fstat(dirfd, &dst) < 0) {
        return store_fail(err, -errno, files[0].path, "stat directory");
    }
    for (size_t i = 1; i < n; i++) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *base = NULL;
        struct stat st;
        r = path_split(files[i].path, &dir, &base);
        if (r < 0) {
            return store_fail(err, r, files[i].path, "parse path");
        }
        fd = store_open_dir(dir);
        if (fd < 0) {
            return store_fail(err, fd, files[i].path, "open directory");
        }
        if (fstat(fd, &st) < 0) {
            return store_fail(err, -errno, files[i].path, "stat directory");
        }
        /*
         * One journal settles one directory: a set spread over several could be replayed by
         * the recovery of one of them over newer files in another (security review, finding A).
         */
        if (!same_dir(&st, &dst)) {
            return err_set(err, -EXDEV, CERTD_E_FIELD_INVALID,
                           "the files of a set must be in one directory: %s and %s", files[0].path,
                           files[i].path);
        }
        for (size_t j = 0; j < i; j++) {
            /*
             * "same.pem" and "./same.pem" (or a path through a symlinked directory) are one
             * file: writing both would silently replace one content with the other.
             */
            if (strcmp(set[i].name, set[j].name) == 0) {
                return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                               "the same file is named twice: %s and %s", files[j].path,
                               files[i].path);
            }
        }
    }
    *ret_dir = TAKE_PTR(dir0);
    *ret_dirfd = TAKE_FD(dirfd);
    return 0;
}

int store_write_set(const struct store_file *files, size_t n, struct certd_err *err)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    struct store_set_file set[STORE_SET_MAX];
    const char *step = NULL;
    size_t failed = 0;
    bool is_committed = false;
    int r;

    assert_return(files || n == 0, -EINVAL);
    for (size_t i = 0; i < n; i++) {
        assert_return(files[i].path, -EINVAL);
        assert_return(files[i].data.p || files[i].data.len == 0, -EINVAL);
        assert_return((files[i].mode & ~(mode_t)0777) == 0, -EINVAL);
    }
    if (n == 0) {
        return 0;
    }
    if (n > STORE_SET_MAX) {
        return err_set(err, -E2BIG, CERTD_E_FIELD_INVALID,
                       "at most %u files can be written as one set", STORE_SET_MAX);
    }
    r = write_set_open(files, n, set, &dir, &dirfd, err);
    if (r < 0) {
        return r;
    }
    /* One set writer at a time, and no other writer or recovery meanwhile. */
    r = store_dir_lock(dirfd, LOCK_EX);
    if (r < 0) {
        return store_fail(err, r, files[0].path, "lock directory");
    }
    /*
     * A committed journal left here by a crash would, replayed later, put its older contents
     * over the ones we are about to write: it is completed first (we hold the directory
     * exclusively, so any journal in it is a dead writer's).
     */
    r = store_recover_locked(dirfd, dir);
    if (r < 0) {
        return store_fail(err, r, files[0].path, "complete an earlier interrupted write");
    }
    /*
     * Failures we can see coming are found before the commit, while they still leave the old
     * set: after it, the only way is forward.
     */
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (strlen(set[i].name) > NAME_MAX) {
            return store_fail(err, -ENAMETOOLONG, files[i].path, "check target");
        }
        if (fstatat(dirfd, set[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode)) {
                return store_fail(err, -EISDIR, files[i].path, "check target");
            }
        } else if (errno != ENOENT) {
            return store_fail(err, -errno, files[i].path, "check target");
        }
    }
    r = store_write_set_at(dirfd, dir, set, n, &step, &failed, &is_committed);
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return store_fail(err, r, files[failed].path, step);
    }
    return 0;
}

/* ---- reading ---- */

void store_buf_done(struct store_buf *b)
{
    if (b->p) {
        OPENSSL_cleanse(b->p, b->len);
        free(b->p);
    }
    *b = (struct store_buf){ .p = NULL };
}

/*
 * Read all of fd (a regular file of at most max bytes) into a NUL-terminated malloc'd buffer.
 * have_st: fd's fstat when the caller made it already (NULL: made here).
 */
static int read_fd_all(int fd, const struct stat *have_st, size_t max, uint8_t **ret,
                       size_t *ret_len)
{
    /* len is the whole allocation here: every byte of it may have held file data. */
    _cleanup_(store_buf_done) struct store_buf b = { .p = NULL };
    struct stat st;
    size_t limit, cap, len = 0;

    /* We read at most max + 1 bytes (to notice "too large") plus room for the NUL. */
    if (!size_add(max, 1, &limit) || !size_add(limit, 1, &cap)) {
        return -EINVAL;
    }
    if (have_st) {
        st = *have_st;
    } else if (fstat(fd, &st) < 0) {
        return -errno;
    }
    if (S_ISDIR(st.st_mode)) {
        return -EISDIR;
    }
    if (!S_ISREG(st.st_mode)) {
        return -EINVAL;
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > max) {
        return -E2BIG;
    }

    /*
     * The size is a hint only (the file may grow, procfs says 0): start from it, capped by
     * the limit, and grow as data arrives.
     */
    cap = (size_t)st.st_size + 1 < STORE_READ_CHUNK ? STORE_READ_CHUNK : (size_t)st.st_size + 1;
    if (cap > limit) {
        cap = limit;
    }
    b.p = malloc(cap + 1);
    if (!b.p) {
        return -ENOMEM;
    }
    b.len = cap + 1;
    for (;;) {
        if (len == cap) {
            size_t ncap;
            uint8_t *nbuf;
            if (cap == limit) {
                break;
            }
            if (!size_mul(cap, 2, &ncap) || ncap > limit) {
                ncap = limit;
            }
            /* Not realloc: it would free the old block with the bytes still in it. */
            nbuf = malloc(ncap + 1);
            if (!nbuf) {
                return -ENOMEM;
            }
            memcpy(nbuf, b.p, len);
            store_buf_done(&b);
            b.p = nbuf;
            b.len = ncap + 1;
            cap = ncap;
        }
        ssize_t n = read(fd, b.p + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (len > max) {
        return -E2BIG;
    }
    b.p[len] = '\0';
    *ret = TAKE_PTR(b.p);
    *ret_len = len;
    return 0;
}

int store_read_file(const char *path, size_t max, bool nofollow, uint8_t **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = -EBADF;
    size_t limit;

    assert_return(path, -EINVAL);
    assert_return(ret, -EINVAL);
    assert_return(ret_len, -EINVAL);
    if (!size_add(max, 2, &limit)) {
        return -EINVAL;
    }

    /* O_NONBLOCK: a FIFO planted under this name must not hang us before fstat rejects it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0) {
        return -errno;
    }
    return read_fd_all(fd, NULL, max, ret, ret_len);
}

/*
 * A read of path that failed with r, for people: what (nullable) names the file in "does not
 * exist" ("users file PATH").
 */
static int read_fail(int r, const char *what, const char *path, size_t max, struct certd_err *err)
{
    char buf[128];

    if (r == -ENOENT) {
        return err_set(err, r, CERTD_E_NOT_FOUND, "%s%s%s does not exist", what ? what : "",
                       what ? " " : "", path);
    }
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_INPUT_TOO_LARGE, "%s is larger than %zu bytes", path, max);
    }
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    return err_set(err, r, CERTD_E_STORAGE, "cannot read %s: %s", path,
                   store_errno_str(r, buf, sizeof(buf)));
}

int store_read_file_err(const char *path, size_t max, bool nofollow, struct store_buf *ret,
                        struct certd_err *err)
{
    struct store_buf b = { .p = NULL };

    assert_return(path && ret, -EINVAL);

    int r = store_read_file(path, max, nofollow, &b.p, &b.len);
    if (r < 0) {
        return read_fail(r, NULL, path, max, err);
    }
    *ret = b;
    return 0;
}

int store_read_trusted(const char *path, const char *what, size_t max, mode_t forbid_mode,
                       struct store_buf *ret, struct certd_err *err)
{
    _cleanup_(store_buf_done) struct store_buf b = { .p = NULL };
    struct stat st;

    assert_return(path && ret, -EINVAL);
    assert_return((forbid_mode & ~(mode_t)0777) == 0, -EINVAL);

    /*
     * O_NOFOLLOW: the file sits in a directory of ours, a symlink there is someone else's
     * doing. Everything below is judged on this descriptor, the one that is read.
     */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP) {
        return err_set(err, -ELOOP, CERTD_E_STORAGE, "%s is a symbolic link", path);
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        return read_fail(-errno, what ? what : "file", path, max, err);
    }
    if (!S_ISREG(st.st_mode)) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "%s is not a regular file; replace it with one", path);
    }
    /* Root can change any file anyway: trusting its files as well costs nothing. */
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "%s is owned by uid %u, not by uid %u or root; chown it to the service user",
                       path, (unsigned)st.st_uid, (unsigned)geteuid());
    }
    if ((st.st_mode & forbid_mode) != 0) {
        bool is_read_forbidden = (forbid_mode & (S_IRGRP | S_IROTH)) != 0;
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "%s has mode %03o: group or others %s; run chmod 600 %s", path,
                       (unsigned)(st.st_mode & 0777),
                       is_read_forbidden ? "have access" : "may change it", path);
    }
    int r = read_fd_all(fd, &st, max, &b.p, &b.len);
    if (r < 0) {
        return read_fail(r, what ? what : "file", path, max, err);
    }
    *ret = b;
    b = (struct store_buf){ .p = NULL };
    return 0;
}

/* ---- directories ---- */

/* One component: exists as a directory (fine), exists as something else, or is made. */
static int mkdir_one(const char *p, mode_t mode)
{
    struct stat st;

    /* stat, not lstat: a symlink to a directory is a fine parent (/var/lib -> /data/...). */
    if (stat(p, &st) == 0) {
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    }
    if (errno != ENOENT) {
        return -errno;
    }
    if (mkdir(p, mode) == 0) {
        return 0;
    }
    if (errno != EEXIST) {
        return -errno;
    }
    /* Someone else made it in between: fine if it is a directory. */
    if (stat(p, &st) < 0) {
        return -errno;
    }
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int store_mkdir_p(const char *dir, mode_t mode)
{
    _cleanup_free_ char *p = NULL;
    struct stat st;
    size_t len;

    assert_return(dir, -EINVAL);
    assert_return(dir[0] != '\0', -EINVAL);
    assert_return((mode & ~(mode_t)07777) == 0, -EINVAL);
    /* We would refuse such a directory the next time round (below). */
    assert_return((mode & (S_IWGRP | S_IWOTH)) == 0, -EINVAL);

    p = strdup(dir);
    if (!p) {
        return -ENOMEM;
    }
    len = strlen(p);
    /* Each prefix that ends a component, shortest first; "//" and a trailing '/' add none. */
    for (size_t i = 1; i <= len; i++) {
        if ((p[i] != '/' && p[i] != '\0') || p[i - 1] == '/') {
            continue;
        }
        char c = p[i];
        p[i] = '\0';
        int r = mkdir_one(p, mode);
        p[i] = c;
        if (r < 0) {
            return r;
        }
    }
    /*
     * The final directory holds keys: whoever else can write to it can swap or plant files
     * (a key we then serve, a journal we then replay). An existing one must be ours and
     * writable by us alone; one we just made is, by the mode check above.
     */
    if (stat(dir, &st) < 0) {
        return -errno;
    }
    if (st.st_uid != geteuid()) {
        log_debug("store: %s is owned by uid %u, not by us (uid %u): refusing it", dir,
                  (unsigned)st.st_uid, (unsigned)geteuid());
        return -EPERM;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        log_debug("store: %s is writable by group or others (mode %04o): refusing it", dir,
                  (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* ---- writers' lock files ---- */

int store_lock_file(const char *path, const char *suffix, int *ret_fd, struct certd_err *err)
{
    char buf[128];

    assert_return(path, -EINVAL);
    assert_return(suffix && suffix[0] != '\0', -EINVAL);
    assert_return(ret_fd, -EINVAL);

    _cleanup_free_ char *lock = NULL;
    if (asprintf(&lock, "%s%s", path, suffix) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    /* O_NONBLOCK: a FIFO planted under this name must not hang the open itself. */
    _cleanup_close_ int fd =
        open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
    if (fd < 0) {
        int r = -errno;
        return err_set(err, r, CERTD_E_STORAGE, "cannot open the lock file %s: %s", lock,
                       store_errno_str(r, buf, sizeof(buf)));
    }
    int r;
    do {
        r = flock(fd, LOCK_EX) < 0 ? -errno : 0;
    } while (r == -EINTR);
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot lock %s: %s", lock,
                       store_errno_str(r, buf, sizeof(buf)));
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

int store_unlock_file(int fd)
{
    if (fd >= 0) {
        (void)close(fd); /* closing the only descriptor releases the flock */
    }
    return -EBADF;
}

/* ---- writers' ownership ---- */

int store_check_writer(const char *path, struct certd_err *err)
{
    struct stat st;

    assert_return(path, -EINVAL);

    if (lstat(path, &st) == 0) {
        if (st.st_uid != geteuid()) {
            return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                           "%s is owned by uid %u: run this as that user (e.g. with sudo -u) so "
                           "that the file keeps its owner",
                           path, (unsigned)st.st_uid);
        }
        return 0;
    }
    if (errno != ENOENT) {
        return 0;
    }
    /* No file yet: what will be made is made in the nearest directory that exists. */
    const char *base = NULL;
    _cleanup_free_ char *dir = NULL;
    int r = path_split(path, &dir, &base);
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return 0; /* names no file: the writer refuses it */
    }
    for (;;) {
        if (stat(dir, &st) == 0) {
            break;
        }
        if (errno != ENOENT) {
            return 0;
        }
        /* Up one level; every step shortens dir, "." and "/" end it. */
        char *slash = strrchr(dir, '/');
        if (strcmp(dir, ".") == 0 || strcmp(dir, "/") == 0) {
            return 0;
        }
        if (!slash) {
            dir[0] = '.'; /* "a" missing: the working directory */
            dir[1] = '\0';
        } else if (slash == dir) {
            slash[1] = '\0'; /* "/a" missing: "/" */
        } else {
            *slash = '\0';
        }
    }
    if (st.st_uid != geteuid() && (st.st_mode & S_ISVTX) == 0) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "%s is owned by uid %u: run this as that user (e.g. with sudo -u) so that "
                       "what is made there belongs to it",
                       dir, (unsigned)st.st_uid);
    }
    return 0;
}

/* ---- recovery ---- */

struct journal_entry {
    const char *tmp;    /* borrowed from the journal's buffer; NULL for a removal */
    const char *target; /* borrowed from the journal's buffer */
};

struct journal {
    struct journal_entry *v; /* owned */
    size_t n;
};

static void journal_done(struct journal *j)
{
    free(j->v);
    *j = (struct journal){ .v = NULL };
}

/* The next NUL-terminated field, as a C string pointing into the cursor's buffer. */
static int cur_cstr(struct cursor *c, const char **ret)
{
    struct span rest = cur_rest(c), field;
    const uint8_t *nul = rest.len > 0 ? memchr(rest.p, '\0', rest.len) : NULL;
    int r;

    if (!nul) {
        return -EBADMSG;
    }
    r = cur_bytes(c, (size_t)(nul - rest.p), &field);
    if (r < 0) {
        return r;
    }
    r = cur_skip(c, 1);
    if (r < 0) {
        return r;
    }
    *ret = (const char *)field.p;
    return 0;
}

/*
 * Parse and validate the journal with id jid: every part, before recovery acts on any. Version
 * 2: (temporary, target) per entry; version 3: "write" temporary target, or "remove" target.
 * Each temporary is exactly ".tmpset-<jid>-<index of its entry>", each target a plain,
 * unreserved name named once: no '/', so whatever the bytes, recovery renames or removes only
 * our temporaries and the targets named, and only inside the journal's own directory. At most
 * STORE_SET_MAX writes and STORE_SET_REMOVE_MAX removals, as a writer makes them. -EBADMSG for
 * anything else, -ENOMEM.
 */
static int journal_parse(struct span data, const char *jid, struct journal *ret)
{
    _cleanup_(journal_done) struct journal j = { .v = NULL };
    struct cursor c = cur_init(data);
    const char *magic = NULL, *count = NULL, *end = NULL;
    size_t n_writes = 0, n_removes = 0;
    uint64_t n = 0;
    bool is_v3;

    if (cur_cstr(&c, &magic) < 0) {
        return -EBADMSG;
    }
    if (strcmp(magic, STORE_JOURNAL_MAGIC_V2) == 0) {
        is_v3 = false;
    } else if (strcmp(magic, STORE_JOURNAL_MAGIC_V3) == 0) {
        is_v3 = true;
    } else {
        return -EBADMSG;
    }
    /*
     * Every entry takes at least two bytes of what is left (a one-byte name and its NUL): a
     * count the bytes cannot hold allocates nothing.
     */
    if (cur_cstr(&c, &count) < 0 ||
        parse_u64(count, 1, is_v3 ? STORE_SET_ENTRIES_MAX : STORE_SET_MAX, &n) < 0 ||
        n > cur_left(&c) / 2) {
        return -EBADMSG;
    }
    j.v = calloc((size_t)n, sizeof(*j.v));
    if (!j.v) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct journal_entry *e = &j.v[i];
        const char *kind = STORE_JOURNAL_KIND_WRITE;
        char want[NAME_MAX + 1];
        if (is_v3 && cur_cstr(&c, &kind) < 0) {
            return -EBADMSG;
        }
        if (strcmp(kind, STORE_JOURNAL_KIND_REMOVE) == 0) {
            e->tmp = NULL;
            n_removes++;
        } else if (strcmp(kind, STORE_JOURNAL_KIND_WRITE) == 0) {
            if (cur_cstr(&c, &e->tmp) < 0) {
                return -EBADMSG;
            }
            set_tmp_name(want, jid, i);
            if (strcmp(e->tmp, want) != 0) {
                return -EBADMSG;
            }
            n_writes++;
        } else {
            return -EBADMSG;
        }
        if (cur_cstr(&c, &e->target) < 0 || !name_is_plain(e->target) ||
            name_is_reserved(e->target)) {
            return -EBADMSG;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(e->target, j.v[k].target) == 0) {
                return -EBADMSG; /* we never name one file twice in a set */
            }
        }
    }
    if (n_writes > STORE_SET_MAX || n_removes > STORE_SET_REMOVE_MAX) {
        return -EBADMSG;
    }
    if (cur_cstr(&c, &end) < 0 || strcmp(end, STORE_JOURNAL_END) != 0 || cur_left(&c) != 0) {
        return -EBADMSG;
    }
    j.n = (size_t)n;
    *ret = j;
    j = (struct journal){ .v = NULL };
    return 0;
}

/* Read and parse journal name in dirfd. -ENOENT/-ELOOP/-EINVAL: not a regular file. */
static int journal_load(int dirfd, const char *name, const char *jid, uint8_t **ret_buf,
                        struct journal *ret)
{
    _cleanup_close_ int fd = -EBADF;
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len = 0;
    int r;

    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd < 0) {
        return -errno;
    }
    r = read_fd_all(fd, NULL, STORE_JOURNAL_MAX, &buf, &len);
    if (r == -E2BIG) {
        return -EBADMSG;
    }
    if (r < 0) {
        return r;
    }
    r = journal_parse(span_make(buf, len), jid, ret);
    if (r < 0) {
        return r;
    }
    *ret_buf = TAKE_PTR(buf);
    return 0;
}

/*
 * A committed journal recovery must not act on (it does not parse, or names files that are not
 * what the protocol leaves): renamed to ".journal-J.broken", so that it never blocks recovery
 * (and with it every later write) and stays, with its temporaries, for a human to look at. It
 * is never replayed: its set keeps whatever state it has. Always 0: a journal that cannot even
 * be renamed is left as it is, still never acted on.
 */
static int journal_quarantine(int dirfd, const char *dir, const char *name, const char *why)
{
    char broken[NAME_MAX + 1], buf[128];

    /* name is ".journal-" and a journal id: the suffix always fits. */
    int k = snprintf(broken, sizeof(broken), "%s" STORE_JOURNAL_BROKEN_SUFFIX, name);
    if (k < 0 || (size_t)k >= sizeof(broken) || renameat(dirfd, name, dirfd, broken) < 0) {
        log_debug("store: %s/%s: %s, never replayed; cannot set it aside: %s", dir, name, why,
                  store_errno_str(-errno, buf, sizeof(buf)));
        return 0;
    }
    log_debug("store: %s/%s: %s, never replayed: set aside as %s", dir, name, why, broken);
    return 0;
}

/*
 * Before a redo acts on anything: each temporary is a regular file (ours) or gone (renamed
 * already), and no target is a directory (its rename or removal would fail halfway through the
 * set).
 * -EBADMSG when the directory does not look like a crash of ours left it; -errno when it
 * cannot be told.
 */
static int journal_check_redo(int dirfd, const struct journal *j)
{
    for (size_t i = 0; i < j->n; i++) {
        struct stat st;
        /* A removal has no temporary: only its target is looked at. */
        if (j->v[i].tmp) {
            if (fstatat(dirfd, j->v[i].tmp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (!S_ISREG(st.st_mode)) {
                    return -EBADMSG;
                }
            } else if (errno != ENOENT) {
                return -errno;
            }
        }
        if (fstatat(dirfd, j->v[i].target, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISDIR(st.st_mode)) {
                return -EBADMSG;
            }
        } else if (errno != ENOENT) {
            return -errno;
        }
    }
    return 0;
}

/*
 * Settle the set of a parsed journal: redo (committed) renames each temporary still present
 * over its target (a target that is a symlink is replaced, never followed: rename(2) acts on
 * the name) and unlinks each target to remove still present (a symlink is unlinked, never
 * followed); discard (not committed) removes the temporaries (a symlink is unlinked, never
 * followed; a directory stays) and leaves every target as it is. Then the directory is fsynced
 * and only then the journal removed, so a crash inside recovery leaves a journal that still
 * describes what is left. 0, or the first -errno (the journal is kept then).
 */
static int journal_settle(int dirfd, const char *dir, const char *name, const struct journal *j,
                          bool is_redo)
{
    int r = 0;

    for (size_t i = 0; i < j->n; i++) {
        const struct journal_entry *e = &j->v[i];
        bool is_failed;
        if (!e->tmp) {
            /* A removal: nothing to discard; redone, a target already gone is done. */
            is_failed = is_redo && unlinkat(dirfd, e->target, 0) < 0;
        } else if (is_redo) {
            is_failed = renameat(dirfd, e->tmp, dirfd, e->target) < 0;
        } else {
            is_failed = unlinkat(dirfd, e->tmp, 0) < 0;
        }
        if (is_failed) {
            /*
             * Gone: renamed or removed already (redo), never made (discard); a directory is
             * not ours.
             */
            if (errno != ENOENT && (is_redo || (errno != EISDIR && errno != EPERM)) && r == 0) {
                r = -errno;
            }
        }
    }
    if (fsync(dirfd) < 0 && r == 0) {
        r = -errno;
    }
    if (r < 0) {
        char buf[128];
        log_debug("store: %s/%s: cannot %s the set: %s", dir, name,
                  is_redo ? "complete" : "discard", store_errno_str(r, buf, sizeof(buf)));
        return r;
    }
    log_debug("store: %s/%s: %s", dir, name,
              is_redo ? "completed an interrupted write" : "discarded an unfinished write");
    return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}

/*
 * A committed journal: complete its set (1: targets changed), or set it aside when it cannot be
 * trusted (0), or -errno (the journal is kept).
 */
static int recover_committed(int dirfd, const char *dir, const char *name, const char *jid)
{
    _cleanup_free_ uint8_t *buf = NULL;
    _cleanup_(journal_done) struct journal j = { .v = NULL };
    int r = journal_load(dirfd, name, jid, &buf, &j);

    if (r == -ENOENT || r == -ELOOP || r == -EINVAL || r == -EISDIR) {
        return 0; /* not a regular file: not ours */
    }
    if (r == -EBADMSG) {
        return journal_quarantine(dirfd, dir, name, "committed journal does not parse");
    }
    if (r < 0) {
        return r;
    }
    r = journal_check_redo(dirfd, &j);
    if (r == -EBADMSG) {
        return journal_quarantine(dirfd, dir, name,
                                  "committed journal names files we did not leave");
    }
    if (r < 0) {
        return r;
    }
    r = journal_settle(dirfd, dir, name, &j, true);
    return r < 0 ? r : 1;
}

/*
 * An uncommitted journal: discard its set. One that does not parse was cut short while being
 * written, before any of its temporaries existed (they are made only once it is durable): it
 * alone goes. Discarding can never put old content over new, so it needs no quarantine.
 */
static int recover_uncommitted(int dirfd, const char *dir, const char *name, const char *jid)
{
    _cleanup_free_ uint8_t *buf = NULL;
    _cleanup_(journal_done) struct journal j = { .v = NULL };
    int r = journal_load(dirfd, name, jid, &buf, &j);

    if (r == -ENOENT || r == -ELOOP || r == -EINVAL || r == -EISDIR) {
        return 0;
    }
    if (r == -EBADMSG) {
        log_debug("store: %s/%s: removing a journal cut short", dir, name);
        return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    }
    if (r < 0) {
        return r;
    }
    return journal_settle(dirfd, dir, name, &j, false);
}

/* Remove name when it is a regular file (or, with may_be_link, a symlink). */
static int remove_leftover(int dirfd, const char *dir, const char *name, bool may_be_link)
{
    struct stat st;

    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    /* Our temporaries are files and symlinks (authority links); never a directory. */
    if (!S_ISREG(st.st_mode) && !(may_be_link && S_ISLNK(st.st_mode))) {
        return 0;
    }
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT) {
        return -errno;
    }
    log_debug("store: removed leftover %s/%s", dir, name);
    return 0;
}

/*
 * One pass over dir: pass 0 redoes committed sets (*changed set when one was), 1 removes
 * temporaries, 2 ends the rest.
 */
static int recover_pass(int dirfd, DIR *d, const char *dir, int pass, bool *changed)
{
    int r = 0;

    rewinddir(d);
    for (;;) {
        char jid[STORE_JID_LEN + 1], other[NAME_MAX + 1];
        struct dirent *de;
        struct stat st;
        int q = 0;

        errno = 0;
        de = readdir(d);
        if (!de) {
            return errno != 0 && r == 0 ? -errno : r;
        }
        if (pass == 0 && parse_jid_name(de->d_name, STORE_JOURNAL_PREFIX, false, jid)) {
            q = recover_committed(dirfd, dir, de->d_name, jid);
        } else if (pass == 1 && has_prefix(de->d_name, STORE_TMP_PREFIX)) {
            q = remove_leftover(dirfd, dir, de->d_name, true);
        } else if (pass == 1 && parse_jid_name(de->d_name, STORE_SET_TMP_PREFIX, true, jid)) {
            /* Ours to remove only when its journal is here and was never committed. */
            (void)snprintf(other, sizeof(other), STORE_JOURNAL_TMP_PREFIX "%s", jid);
            if (fstatat(dirfd, other, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
                q = remove_leftover(dirfd, dir, de->d_name, false);
            }
        } else if (pass == 2 && parse_jid_name(de->d_name, STORE_JOURNAL_TMP_PREFIX, false, jid)) {
            q = recover_uncommitted(dirfd, dir, de->d_name, jid);
        }
        if (q > 0) {
            *changed = true;
        }
        if (q < 0 && r == 0) {
            r = q;
        }
    }
}

/* store_recover() on an open directory the caller holds locked exclusively. */
int store_recover_locked(int dirfd, const char *dir)
{
    _cleanup_(cleanup_DIR) DIR *d = NULL;
    bool changed = false;
    int r = 0, q;

    q = store_dir_stream(dirfd, &d);
    if (q < 0) {
        return q;
    }
    for (int pass = 0; pass < 3; pass++) {
        q = recover_pass(dirfd, d, dir, pass, &changed);
        if (q < 0 && r == 0) {
            r = q;
        }
    }
    if (fsync(dirfd) < 0 && r == 0) {
        r = -errno;
    }
    return r < 0 ? r : changed;
}

int store_recover(const char *dir)
{
    _cleanup_close_ int dirfd = -EBADF;
    int r;

    assert_return(dir, -EINVAL);

    dirfd = store_open_dir(dir);
    if (dirfd < 0) {
        return dirfd;
    }
    /* Exclusive: no write into dir is in flight, so every leftover is a crash's. */
    r = store_dir_lock(dirfd, LOCK_EX);
    if (r < 0) {
        return r;
    }
    r = store_recover_locked(dirfd, dir);
    return r < 0 ? r : 0;
}

int store_cleanup_tmp(const char *dir)
{
    return store_recover(dir);
}

void strv_free_n(char **v, size_t n)
{
    if (!v) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}
