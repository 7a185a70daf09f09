/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store/: durable, atomic file writes (STYLE.md §3 "Changes are all-or-nothing"). Invariants:
 *  - a target is only ever replaced by rename(2) of a temporary in the same directory that was
 *    written completely and fsynced first, so a reader sees the old bytes or the new ones;
 *  - a file gets its final mode when it is created (O_CREAT|O_EXCL, narrowed by the umask
 *    only); nothing is chmod'ed afterwards, so a key file is never readable by others, not even
 *    for a moment;
 *  - the only names this module leaves behind after a crash start with ".tmp-": readers skip
 *    them and store_cleanup_tmp() removes them;
 *  - messages name the path and the failing step, never the data.
 */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"
#include "store/store-internal.h"
#include "util/parse.h"

#define STORE_TMP_PREFIX     ".tmp-"
#define STORE_TMP_PREFIX_LEN (sizeof(STORE_TMP_PREFIX) - 1)
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

/* Describe -r for a message; buf is used only when glibc has no static text for it. */
static const char *errno_str(int r, char *buf, size_t size)
{
    return strerror_r(r < 0 ? -r : r, buf, size);
}

/* Record a storage failure: step, reason, path. Returns r. */
static int store_fail(struct certd_err *err, int r, const char *path, const char *step)
{
    char buf[128];

    log_debug("store: %s: %s: %s", path, step, errno_str(r, buf, sizeof(buf)));
    /* The step and the reason first: a long path may be cut at the end of the message. */
    return err_set(err, r, CERTD_E_STORAGE, "storage: %s failed (%s) writing %s", step,
                   errno_str(r, buf, sizeof(buf)), path);
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

int store_tmp_name(char *buf, size_t size, const char *kind, const char *base)
{
    uint8_t rnd[8];
    size_t got = 0;
    char hex[2 * sizeof(rnd) + 1];
    size_t base_len = strnlen(base, STORE_TMP_BASE_MAX);

    while (got < sizeof(rnd)) {
        ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[rnd[i] >> 4];
        hex[2 * i + 1] = digits[rnd[i] & 0xf];
    }
    hex[sizeof(hex) - 1] = '\0';
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
 * Create a fresh temporary for base in dirfd with mode, write data, fsync and close it. On
 * success its name is in tmp (NAME_MAX + 1 bytes); on failure nothing is left behind and
 * *ret_step names the step that failed.
 */
static int tmp_write(int dirfd, const char *base, struct span data, mode_t mode, char *tmp,
                     size_t tmp_size, const char **ret_step)
{
    _cleanup_close_ int fd = -EBADF;
    int r = -EEXIST;

    for (unsigned i = 0; i < STORE_TMP_TRIES && fd < 0; i++) {
        r = store_tmp_name(tmp, tmp_size, "", base);
        if (r < 0) {
            *ret_step = "name temporary";
            return r;
        }
        /* The mode is final from here on: the umask may narrow it, nothing widens it. */
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0) {
            r = -errno;
            if (r != -EEXIST) {
                break;
            }
        }
    }
    if (fd < 0) {
        *ret_step = "create temporary";
        return r;
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
    (void)unlinkat(dirfd, tmp, 0);
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

/*
 * One member of a store_write_set() call. States: has_tmp (a written temporary exists), has_bak
 * (a hard link to the previous target exists), renamed (the temporary now is the target).
 */
struct set_entry {
    char *dir;
    const char *base;
    int dirfd;
    bool has_tmp, has_bak, keep_bak, existed, renamed;
    char tmp[NAME_MAX + 1];
    char bak[NAME_MAX + 1];
};

/* Give the target a second name, so that it can be put back after it has been replaced. */
static int set_backup(struct set_entry *e)
{
    struct stat st;
    int r = -EEXIST;

    if (fstatat(e->dirfd, e->base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) {
            e->existed = false;
            return 0;
        }
        return -errno;
    }
    e->existed = true;
    if (S_ISDIR(st.st_mode)) {
        /*
         * Directories cannot be hard-linked; the rename over it will fail (EISDIR) and be
         * rolled back like any other failed rename, so no backup is needed.
         */
        return 0;
    }
    for (unsigned i = 0; i < STORE_TMP_TRIES && r == -EEXIST; i++) {
        r = store_tmp_name(e->bak, sizeof(e->bak), "bak-", e->base);
        if (r < 0) {
            return r;
        }
        /* flags 0: a symlink target is linked itself, never followed. */
        r = linkat(e->dirfd, e->base, e->dirfd, e->bak, 0) < 0 ? -errno : 0;
    }
    if (r == 0) {
        e->has_bak = true;
    }
    return r;
}

/* Put back the previous state of an entry that was renamed already. Best effort. */
static void set_restore(struct set_entry *e, const char *path)
{
    int r;

    if (e->has_bak) {
        /* rename(2) is atomic: the old file reappears under its name in one step. */
        r = renameat(e->dirfd, e->bak, e->dirfd, e->base) < 0 ? -errno : 0;
        if (r == 0) {
            e->has_bak = false;
        } else {
            /* Keep the backup: it is now the only copy of the old content. */
            e->keep_bak = true;
        }
    } else {
        r = unlinkat(e->dirfd, e->base, 0) < 0 ? -errno : 0;
    }
    if (r < 0) {
        char buf[128];
        log_debug("store: cannot roll back %s: %s", path, errno_str(r, buf, sizeof(buf)));
    }
}

static void set_entries_free(struct set_entry *entries, size_t n)
{
    if (!entries) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct set_entry *e = &entries[i];
        if (e->dirfd >= 0) {
            if (e->has_tmp && !e->renamed) {
                (void)unlinkat(e->dirfd, e->tmp, 0);
            }
            if (e->has_bak && !e->keep_bak) {
                (void)unlinkat(e->dirfd, e->bak, 0);
            }
            (void)close(e->dirfd);
        }
        free(e->dir);
    }
    free(entries);
}

/*
 * How far this is atomic, honestly: each rename(2) is atomic, a set of renames is not. All data
 * is written and fsynced before the first rename, and the renames then run back to back, so
 * the window is a handful of system calls. A crash inside it leaves some targets new and the
 * rest old, plus ".tmp-bak-*" hard links holding the old content of those already replaced;
 * store_cleanup_tmp() deletes those links, it does not roll back. True all-or-nothing across
 * files would need one rename of a directory (a symlink flipped to a new versioned directory),
 * which the store layout does not use. A failure that is *reported* (not a crash) is rolled
 * back completely: replaced targets are renamed back from their backups and new ones removed.
 * Two entries must not name the same file (checked for identical paths only).
 */
int store_write_set(const struct store_file *files, size_t n, struct certd_err *err)
{
    struct set_entry *entries = NULL;
    const char *step = NULL;
    size_t failed = 0;
    int r = 0;

    assert_return(files || n == 0, -EINVAL);
    for (size_t i = 0; i < n; i++) {
        assert_return(files[i].path, -EINVAL);
        assert_return(files[i].data.p || files[i].data.len == 0, -EINVAL);
        assert_return((files[i].mode & ~(mode_t)0777) == 0, -EINVAL);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(files[i].path, files[j].path) == 0) {
                return err_set(err, -EINVAL, CERTD_E_STORAGE, "cannot write %s twice in one set",
                               files[i].path);
            }
        }
    }
    if (n == 0) {
        return 0;
    }

    entries = calloc(n, sizeof(*entries));
    if (!entries) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        entries[i].dirfd = -EBADF;
    }

    /* 1. Every new content written and durable under a temporary name. */
    for (size_t i = 0; i < n && r >= 0; i++) {
        struct set_entry *e = &entries[i];
        failed = i;
        r = path_split(files[i].path, &e->dir, &e->base);
        if (r < 0) {
            step = "parse path";
            break;
        }
        e->dirfd = store_open_dir(e->dir);
        if (e->dirfd < 0) {
            r = e->dirfd;
            step = "open directory";
            break;
        }
        r = tmp_write(e->dirfd, e->base, files[i].data, files[i].mode, e->tmp, sizeof(e->tmp),
                      &step);
        e->has_tmp = r >= 0;
    }

    /* 2. A backup link for every target that exists, before anything is replaced. */
    for (size_t i = 0; i < n && r >= 0; i++) {
        failed = i;
        r = set_backup(&entries[i]);
        if (r < 0) {
            step = "backup";
        }
    }

    /* 3. The renames, back to back; a failure puts back the ones already done. */
    for (size_t i = 0; i < n && r >= 0; i++) {
        struct set_entry *e = &entries[i];
        failed = i;
        if (renameat(e->dirfd, e->tmp, e->dirfd, e->base) < 0) {
            r = -errno;
            step = "rename";
            for (size_t k = i; k > 0; k--) {
                set_restore(&entries[k - 1], files[k - 1].path);
            }
            break;
        }
        e->renamed = true;
    }

    /* 4. Make the renames (or the rollback) durable. */
    for (size_t i = 0; i < n; i++) {
        if (entries[i].dirfd >= 0 && fsync(entries[i].dirfd) < 0 && r >= 0) {
            r = -errno;
            step = "fsync directory";
            failed = i;
        }
    }

    if (r < 0) {
        (void)store_fail(err, r, files[failed].path, step);
    }
    /* 5. Backups and leftover temporaries go (set_entries_free). */
    set_entries_free(entries, n);
    return r < 0 ? r : 0;
}

int store_read_file(const char *path, size_t max, bool nofollow, uint8_t **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = -EBADF;
    _cleanup_free_ uint8_t *buf = NULL;
    struct stat st;
    size_t limit, cap, len = 0;

    assert_return(path, -EINVAL);
    assert_return(ret, -EINVAL);
    assert_return(ret_len, -EINVAL);
    /* We read at most max + 1 bytes (to notice "too large") plus room for the NUL. */
    if (!size_add(max, 1, &limit) || !size_add(limit, 1, &cap)) {
        return -EINVAL;
    }

    /* O_NONBLOCK: a FIFO planted under this name must not hang us before fstat rejects it. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) < 0) {
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
    buf = malloc(cap + 1);
    if (!buf) {
        return -ENOMEM;
    }
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
            nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                return -ENOMEM;
            }
            buf = nbuf;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
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
    buf[len] = '\0';
    *ret = TAKE_PTR(buf);
    *ret_len = len;
    return 0;
}

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
    size_t len;

    assert_return(dir, -EINVAL);
    assert_return(dir[0] != '\0', -EINVAL);
    assert_return((mode & ~(mode_t)07777) == 0, -EINVAL);

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
    return 0;
}

int store_cleanup_tmp(const char *dir)
{
    _cleanup_(cleanup_DIR) DIR *d = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    struct dirent *de;
    int r = 0;

    assert_return(dir, -EINVAL);

    dirfd = store_open_dir(dir);
    if (dirfd < 0) {
        return dirfd;
    }
    int fd = dup(dirfd);
    if (fd < 0) {
        return -errno;
    }
    d = fdopendir(fd);
    if (!d) {
        r = -errno;
        (void)close(fd);
        return r;
    }
    for (;;) {
        struct stat st;
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno != 0) {
                return -errno;
            }
            break;
        }
        if (strncmp(de->d_name, STORE_TMP_PREFIX, STORE_TMP_PREFIX_LEN) != 0) {
            continue;
        }
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT && r == 0) {
                r = -errno;
            }
            continue;
        }
        /* Our temporaries are files and symlinks (authority links); never a directory. */
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
            continue;
        }
        if (unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT && r == 0) {
            r = -errno;
        }
        log_debug("store: removed leftover %s/%s", dir, de->d_name);
    }
    if (fsync(dirfd) < 0 && r == 0) {
        r = -errno;
    }
    return r;
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
