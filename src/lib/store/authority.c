/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Authority directories: the CA certificates an endpoint trusts, one file per certificate named
 * "<lowercase SHA-256 fingerprint hex>.pem" (the id), plus the "<subject-hash>.<n>" symlinks
 * OpenSSL's CApath lookup (X509_LOOKUP_hash_dir) needs, as `openssl rehash` makes them.
 * Invariants: only names of the exact id form are ever read, written or removed through an id,
 * so no id can reach outside the directory; a file is trusted under an id only if its
 * fingerprint is that id; links are rebuilt after every change and each one is replaced
 * atomically, so an OpenSSL client reading the directory never misses a certificate that stays.
 * Every change (add, remove, rehash) holds the directory's flock exclusively from its first
 * check to its last write, on one descriptor, so checks hold for the write that follows them
 * and no two changes interleave; the certificates of one add are one journaled write set, so a
 * crash leaves none or all of them, and a replace writes its new certificates and removes the
 * old ones in one set, so a crash leaves the old set or the new one.
 */
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
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log/log.h"
#include "store/store-internal.h"
#include "store/store.h"
#include "util/limits.h"
#include "util/ossl.h"

/* An id: SHA-256 in lowercase hex (store.h). */
#define AUTH_ID_LEN AUTHORITY_ID_LEN
/* "<id>.pem" */
#define AUTH_FILE_SUFFIX     ".pem"
#define AUTH_FILE_SUFFIX_LEN (sizeof(AUTH_FILE_SUFFIX) - 1)
#define AUTH_FILE_LEN        (AUTH_ID_LEN + AUTH_FILE_SUFFIX_LEN)
/* One PEM certificate: far below the bundle limit; larger files are not ours. */
#define AUTH_FILE_MAX CERTD_INPUT_MAX_DEFAULT
/* "<8 hex>.<n>": n is below CERTD_AUTHORITY_MAX_HARD, 10 digits is plenty. */
#define AUTH_LINK_HASH_LEN 8u
#define AUTH_LINK_NUM_MAX  10u
/* Attempts at a fresh temporary link name (clashes are ~2^-64 each). */
#define AUTH_TMP_TRIES 8

/* The certificates of one add are one write set: a whole bundle must fit. */
_Static_assert(STORE_SET_MAX >= CERTD_BUNDLE_CERTS_MAX, "a CA bundle must fit in one write set");
/* A replace removes every certificate of a full directory in the same set. */
_Static_assert(STORE_SET_REMOVE_MAX >= CERTD_AUTHORITY_MAX_HARD,
               "a full authority directory must fit in the removals of one write set");

DEFINE_CLEANUP(DIR, closedir)

struct ca_entry {
    char id[AUTH_ID_LEN + 1];
    X509 *cert;
    unsigned long hash;
};

struct ca_list {
    struct ca_entry *v;
    size_t n;
};

static void ca_list_done(struct ca_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        X509_free(l->v[i].cert);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* The name starts with exactly 64 lowercase hex digits (what follows is checked by callers). */
static bool id_prefix_valid(const char *s)
{
    for (size_t i = 0; i < AUTH_ID_LEN; i++) {
        if (!is_lower_hex(s[i])) {
            return false; /* also stops at a NUL: the string is shorter */
        }
    }
    return true;
}

static bool id_valid(const char *id)
{
    return id_prefix_valid(id) && id[AUTH_ID_LEN] == '\0';
}

/* ^[0-9a-f]{64}\.pem$ */
static bool is_cert_file_name(const char *name)
{
    return id_prefix_valid(name) && strcmp(name + AUTH_ID_LEN, AUTH_FILE_SUFFIX) == 0;
}

/* ^[0-9a-f]{8}\.[0-9]+$ (with a bounded number) */
static bool is_link_name(const char *name)
{
    size_t digits = 0;

    for (size_t i = 0; i < AUTH_LINK_HASH_LEN; i++) {
        if (!is_lower_hex(name[i])) {
            return false;
        }
    }
    if (name[AUTH_LINK_HASH_LEN] != '.') {
        return false;
    }
    for (const char *p = name + AUTH_LINK_HASH_LEN + 1; *p; p++) {
        if (*p < '0' || *p > '9' || ++digits > AUTH_LINK_NUM_MAX) {
            return false;
        }
    }
    return digits > 0;
}

/*
 * Drain OpenSSL's error queue after a failed call (what: for the debug line) and say whose
 * failure it was: -ENOMEM when OpenSSL ran out of memory, -EIO for another fatal error of its
 * own (an internal error, a failed initialisation) or a failure it gave no reason for (some of
 * its allocation failures say nothing), 0 when it judged the input.
 */
static int ossl_fail(const char *what)
{
    unsigned long e = ossl_drain_errors(what);

    if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
        return -ENOMEM;
    }
    return e == 0 || ERR_FATAL_ERROR(e) ? -EIO : 0;
}

/* The id of a certificate: lowercase hex of its SHA-256 fingerprint. */
static int cert_id(const EVP_MD *md, const X509 *cert, char id[static AUTH_ID_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (X509_digest(cert, md, digest, &len) != 1) {
        return ossl_fail("authority: fingerprint") == -ENOMEM ? -ENOMEM : -EIO;
    }
    if (len * 2 != AUTH_ID_LEN) {
        return -EIO;
    }
    for (unsigned i = 0; i < len; i++) {
        static const char digits[] = "0123456789abcdef";
        id[2 * i] = digits[digest[i] >> 4];
        id[2 * i + 1] = digits[digest[i] & 0xf];
    }
    id[AUTH_ID_LEN] = '\0';
    return 0;
}

/* SHA-256 into *ret (owned): -ENOMEM when OpenSSL ran out of memory, else -EOPNOTSUPP. */
static int sha256_fetch(OSSL_LIB_CTX *libctx, const char *propq, EVP_MD **ret)
{
    EVP_MD *md = EVP_MD_fetch(libctx, "SHA2-256", propq);
    if (!md) {
        return ossl_fail("authority: fetch SHA2-256") == -ENOMEM ? -ENOMEM : -EOPNOTSUPP;
    }
    *ret = md;
    return 0;
}

int authority_cert_id(OSSL_LIB_CTX *libctx, const char *propq, const X509 *cert,
                      char ret_id[static AUTHORITY_ID_LEN + 1])
{
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = NULL;

    assert_return(cert && ret_id, -EINVAL);

    int r = sha256_fetch(libctx, propq, &md);
    if (r < 0) {
        return r;
    }
    return cert_id(md, cert, ret_id);
}

/*
 * Read and parse "<id>.pem" in dir. 1 with *ret set; 0 when the file is to be skipped (gone,
 * not a regular file, too large, not a certificate, or fingerprint != name); -errno.
 */
static int cert_file_load(OSSL_LIB_CTX *libctx, const char *propq, const EVP_MD *md,
                          const char *dir, const char *name, X509 **ret)
{
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ uint8_t *buf = NULL;
    _cleanup_(cleanup_BIO) BIO *bio = NULL;
    _cleanup_(cleanup_X509) X509 *x = NULL;
    char id[AUTH_ID_LEN + 1];
    size_t len = 0;
    int r;

    if (asprintf(&path, "%s/%s", dir, name) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    /* nofollow: a symlink dropped under an id name is not trusted. */
    r = store_read_file(path, AUTH_FILE_MAX, true, &buf, &len);
    if (r == -ENOENT || r == -ELOOP || r == -E2BIG || r == -EISDIR || r == -EINVAL) {
        log_debug("authority: skipping %s: unreadable (%d)", path, r);
        return 0;
    }
    if (r < 0) {
        return r;
    }
    if (len > INT_MAX) {
        return 0;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    x = X509_new_ex(libctx, propq);
    if (!bio || !x) {
        ossl_drain_errors("authority: load");
        return -ENOMEM;
    }
    if (!PEM_read_bio_X509(bio, &x, NULL, NULL)) {
        /*
         * Only a verdict on the file skips it: were OpenSSL's own failure (out of memory) taken
         * for one, a certificate present would look gone.
         */
        r = ossl_fail("authority: parse");
        if (r < 0) {
            return r;
        }
        log_debug("authority: skipping %s: not a PEM certificate", path);
        return 0;
    }
    r = cert_id(md, x, id);
    if (r < 0) {
        return r;
    }
    if (strncmp(id, name, AUTH_ID_LEN) != 0) {
        log_debug("authority: skipping %s: its fingerprint is %s", path, id);
        return 0;
    }
    *ret = TAKE_PTR(x);
    return 1;
}

static int ca_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ca_entry *)a)->id, ((const struct ca_entry *)b)->id);
}

/*
 * The next entry of d: 1 with *ret set, 0 at the end, or -errno (readdir(3) tells an error
 * from the end only through errno).
 */
static int dir_next(DIR *d, struct dirent **ret)
{
    struct dirent *de;

    errno = 0;
    de = readdir(d);
    if (!de) {
        return errno != 0 ? -errno : 0;
    }
    *ret = de;
    return 1;
}

/* A file name of the "<id>.pem" form. */
struct cert_name {
    char s[AUTH_FILE_LEN + 1];
};

/*
 * Every entry of dirfd named in the "<id>.pem" form that is not a directory (a file whatever
 * its content, or a symlink): what load reads and what a replace removes unless it keeps it.
 * Into *ret (malloc'd; NULL when there is none) and *ret_n. -E2BIG past STORE_SET_REMOVE_MAX
 * (so that a directory stuffed with such names costs bounded memory and work); -ENOMEM; -errno.
 */
static int cert_names_scan(int dirfd, struct cert_name **ret, size_t *ret_n)
{
    _cleanup_(cleanup_DIR) DIR *d = NULL;
    _cleanup_free_ struct cert_name *v = NULL;
    struct dirent *de = NULL;
    size_t n = 0, cap = 0;
    int r;

    r = store_dir_stream(dirfd, &d);
    if (r < 0) {
        return r;
    }
    while ((r = dir_next(d, &de)) > 0) {
        struct stat st;

        if (!is_cert_file_name(de->d_name)) {
            continue; /* ".tmp-*", links, anything else */
        }
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) {
                continue;
            }
            return -errno;
        }
        if (S_ISDIR(st.st_mode)) {
            continue; /* never ours: no write set could remove it */
        }
        if (n == STORE_SET_REMOVE_MAX) {
            return -E2BIG;
        }
        if (n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            if (ncap > STORE_SET_REMOVE_MAX) {
                ncap = STORE_SET_REMOVE_MAX;
            }
            struct cert_name *nv = reallocarray(v, ncap, sizeof(*nv));
            if (!nv) {
                return -ENOMEM;
            }
            v = nv;
            cap = ncap;
        }
        memcpy(v[n].s, de->d_name, sizeof(v[n].s));
        n++;
    }
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(v);
    *ret_n = n;
    return 0;
}

/*
 * Every valid "<id>.pem" of dir, parsed, sorted by id: at most CERTD_AUTHORITY_MAX_HARD of them
 * among at most STORE_SET_REMOVE_MAX names of that form (-E2BIG).
 */
static int ca_scan(OSSL_LIB_CTX *libctx, const char *propq, int dirfd, const char *dir,
                   struct ca_list *ret)
{
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = NULL;
    _cleanup_free_ struct cert_name *names = NULL;
    _cleanup_(ca_list_done) struct ca_list l = { 0 };
    size_t n_names = 0;
    int r;

    r = sha256_fetch(libctx, propq, &md);
    if (r < 0) {
        return r;
    }
    r = cert_names_scan(dirfd, &names, &n_names);
    if (r < 0) {
        return r;
    }
    if (n_names > 0) {
        l.v = calloc(n_names, sizeof(*l.v));
        if (!l.v) {
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < n_names; i++) {
        X509 *x = NULL;
        r = cert_file_load(libctx, propq, md, dir, names[i].s, &x);
        if (r < 0) {
            return r;
        }
        if (r == 0) {
            continue;
        }
        if (l.n == CERTD_AUTHORITY_MAX_HARD) {
            X509_free(x);
            return -E2BIG;
        }
        memcpy(l.v[l.n].id, names[i].s, AUTH_ID_LEN);
        l.v[l.n].id[AUTH_ID_LEN] = '\0';
        l.v[l.n].cert = x;
        l.v[l.n].hash = 0;
        l.n++;
    }
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof(*l.v), ca_entry_cmp);
    }
    *ret = l;
    l = (struct ca_list){ .v = NULL };
    return 0;
}

/*
 * Make link point at target, replacing an older symlink of that name in one rename(2). 0, 1
 * when the name is taken by something that is not a symlink (left alone), or -errno.
 */
static int link_set(int dirfd, const char *link, const char *target)
{
    char cur[AUTH_FILE_LEN + 2];
    char tmp[NAME_MAX + 1];
    struct stat st;
    int r = -EEXIST;

    if (fstatat(dirfd, link, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISLNK(st.st_mode)) {
            return 1;
        }
        ssize_t n = readlinkat(dirfd, link, cur, sizeof(cur));
        if (n >= 0 && (size_t)n == strlen(target) && memcmp(cur, target, (size_t)n) == 0) {
            return 0; /* already right */
        }
    } else if (errno != ENOENT) {
        return -errno;
    }
    for (unsigned i = 0; i < AUTH_TMP_TRIES && r == -EEXIST; i++) {
        r = store_tmp_name(tmp, sizeof(tmp), "", link);
        if (r < 0) {
            return r;
        }
        r = symlinkat(target, dirfd, tmp) < 0 ? -errno : 0;
    }
    if (r < 0) {
        return r;
    }
    if (renameat(dirfd, tmp, dirfd, link) < 0) {
        r = -errno;
        (void)unlinkat(dirfd, tmp, 0);
        return r;
    }
    return 0;
}

static bool name_in(const char *name, char (*names)[NAME_MAX + 1], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, names[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Remove every symlink named like a hash link that is not in keep. */
static int links_prune(int dirfd, char (*keep)[NAME_MAX + 1], size_t n_keep)
{
    _cleanup_(cleanup_DIR) DIR *d = NULL;
    struct dirent *de = NULL;
    int r;

    r = store_dir_stream(dirfd, &d);
    if (r < 0) {
        return r;
    }
    while ((r = dir_next(d, &de)) > 0) {
        struct stat st;

        if (!is_link_name(de->d_name) || name_in(de->d_name, keep, n_keep)) {
            continue;
        }
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode)) {
            continue; /* gone, or not ours: only symlinks are links we made */
        }
        if (unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT) {
            return -errno;
        }
    }
    return r;
}

/*
 * Compute each entry's subject hash and the room for its link name: everything rehashing needs
 * that can fail for lack of memory, done before anything is changed. *ret_links has l->n names
 * (NULL when l is empty).
 */
static int links_prepare(OSSL_LIB_CTX *libctx, const char *propq, struct ca_list *l,
                         char (**ret_links)[NAME_MAX + 1])
{
    _cleanup_free_ char(*links)[NAME_MAX + 1] = NULL;

    if (l->n > 0) {
        links = calloc(l->n, sizeof(*links));
        if (!links) {
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        int ok = 0;
        l->v[i].hash = X509_NAME_hash_ex(X509_get_subject_name(l->v[i].cert), libctx, propq, &ok);
        if (!ok) {
            ossl_drain_errors("authority: subject hash");
            return -EIO;
        }
    }
    *ret_links = TAKE_PTR(links);
    return 0;
}

/*
 * Make the links of l (prepared by links_prepare, sorted by id), prune the stale ones, fsync
 * the directory. Allocates nothing of its own.
 */
static int links_apply(int dirfd, const struct ca_list *l, char (*links)[NAME_MAX + 1])
{
    int r;

    /*
     * Entries are in id order; n counts earlier certificates with the same subject hash, as
     * `openssl rehash` numbers them. A name held by a foreign non-symlink file is skipped.
     */
    for (size_t i = 0; i < l->n; i++) {
        char target[AUTH_FILE_LEN + 1];
        size_t k = 0;
        for (size_t j = 0; j < i; j++) {
            k += l->v[j].hash == l->v[i].hash;
        }
        (void)snprintf(target, sizeof(target), "%s" AUTH_FILE_SUFFIX, l->v[i].id);
        for (;; k++) {
            (void)snprintf(links[i], sizeof(links[i]), "%08lx.%zu", l->v[i].hash & 0xffffffffUL, k);
            if (name_in(links[i], links, i)) {
                continue;
            }
            r = link_set(dirfd, links[i], target);
            if (r < 0) {
                return r;
            }
            if (r == 0) {
                break;
            }
        }
    }
    r = links_prune(dirfd, links, l->n);
    if (r < 0) {
        return r;
    }
    if (fsync(dirfd) < 0) {
        return -errno;
    }
    return 0;
}

/* Rebuild the links of dirfd, which the caller holds with LOCK_EX. */
static int rehash_locked(OSSL_LIB_CTX *libctx, const char *propq, int dirfd, const char *dir)
{
    _cleanup_(ca_list_done) struct ca_list l = { 0 };
    _cleanup_free_ char(*links)[NAME_MAX + 1] = NULL;
    int r;

    r = ca_scan(libctx, propq, dirfd, dir, &l);
    if (r < 0) {
        return r;
    }
    r = links_prepare(libctx, propq, &l, &links);
    if (r < 0) {
        return r;
    }
    return links_apply(dirfd, &l, links);
}

/*
 * Open dir, take its lock exclusively and settle what a crash left there (and when that
 * completed an interrupted add, rebuild the links it did not get to). Every operation that
 * changes the directory holds this one descriptor (and lock) to its end and calls only
 * *_locked helpers on it: a second descriptor of dir locked by this process would wait for the
 * first forever (flock belongs to the open file description). Returns the descriptor, or
 * -errno with *ret_step naming the step.
 */
static int auth_dir_open_locked(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                const char **ret_step)
{
    _cleanup_close_ int dirfd = store_open_dir(dir);
    int r;

    if (dirfd < 0) {
        *ret_step = "open";
        return dirfd;
    }
    r = store_dir_lock(dirfd, LOCK_EX);
    if (r < 0) {
        *ret_step = "lock";
        return r;
    }
    r = store_recover_locked(dirfd, dir);
    if (r < 0) {
        *ret_step = "complete an earlier interrupted change in";
        return r;
    }
    /* Best effort: the operation that follows may refuse, the links are right all the same. */
    if (r > 0 && rehash_locked(libctx, propq, dirfd, dir) < 0) {
        log_debug("authority: %s: links not rebuilt after completing an interrupted add", dir);
    }
    return TAKE_FD(dirfd);
}

/* Record a failure of auth_dir_open_locked. */
static int auth_open_fail(struct certd_err *err, int r, const char *dir, const char *step)
{
    char buf[128];

    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    return err_set(err, r, CERTD_E_STORAGE, "cannot %s authority directory %s (%s)", step, dir,
                   store_errno_str(r, buf, sizeof(buf)));
}

int authority_dir_rehash_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir)
{
    _cleanup_close_ int dirfd = -EBADF;
    const char *step = NULL;

    assert_return(dir, -EINVAL);

    /* Exclusive: two rehashes at once would prune each other's fresh links. */
    dirfd = auth_dir_open_locked(libctx, propq, dir, &step);
    if (dirfd < 0) {
        return dirfd;
    }
    return rehash_locked(libctx, propq, dirfd, dir);
}

int authority_dir_rehash(const char *dir)
{
    return authority_dir_rehash_ex(NULL, NULL, dir);
}

/* The PEM text of a certificate, in a memory BIO. */
static int cert_pem(X509 *cert, BIO **ret_bio, struct span *ret)
{
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    long len;

    if (!bio || PEM_write_bio_X509(bio, cert) != 1) {
        ossl_drain_errors("authority: encode");
        return -ENOMEM;
    }
    len = BIO_get_mem_data(bio, &p);
    if (len <= 0 || !p) {
        return -EIO;
    }
    *ret = span_make(p, (size_t)len);
    *ret_bio = TAKE_PTR(bio);
    return 0;
}

/* A certificate of one add call: its id, its file name, its PEM, and the inode it got. */
struct ca_added {
    char id[AUTH_ID_LEN + 1];
    char name[AUTH_FILE_LEN + 1];
    BIO *pem; /* owned: holds the bytes of the set's file */
    dev_t dev;
    ino_t ino;
};

struct ca_added_list {
    struct ca_added v[STORE_SET_MAX];
    size_t n;
};

static void ca_added_done(struct ca_added_list *a)
{
    for (size_t i = 0; i < a->n; i++) {
        BIO_free(a->v[i].pem);
        a->v[i].pem = NULL;
    }
}

/*
 * Rollback of a failed add: remove the files this call created, each only while its name still
 * holds the inode we made (never a file someone else put there since).
 */
static void files_remove(int dirfd, const struct ca_added_list *a)
{
    for (size_t i = 0; i < a->n; i++) {
        struct stat st;
        if (fstatat(dirfd, a->v[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_dev == a->v[i].dev && st.st_ino == a->v[i].ino) {
            (void)unlinkat(dirfd, a->v[i].name, 0);
        }
    }
    (void)fsync(dirfd);
}

/* The same certificate for the duplicate rule of issue #2: same subject, issuer and serial. */
static bool cert_same_identity(const X509 *a, const X509 *b)
{
    return X509_issuer_and_serial_cmp(a, b) == 0 &&
           X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0;
}

/*
 * Everything an add checks under the lock, against the directory as it is now: no new id is a
 * file there, no new certificate has the identity of a loaded one, the total within the limit.
 * l holds the loaded certificates.
 */
static int add_check_locked(int dirfd, const char *dir, const struct ca_added_list *a,
                            STACK_OF(X509) *certs, const struct ca_list *l, size_t max_total,
                            struct certd_err *err)
{
    size_t limit = CERTD_AUTHORITY_MAX_HARD;

    for (size_t i = 0; i < a->n; i++) {
        struct stat st;
        if (fstatat(dirfd, a->v[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            return err_set(err, -EEXIST, CERTD_E_DUPLICATE, "certificate %s is already installed",
                           a->v[i].id);
        }
        if (errno != ENOENT) {
            return err_set(err, -errno, CERTD_E_STORAGE, "cannot check %s/%s", dir, a->v[i].name);
        }
        for (size_t j = 0; j < l->n; j++) {
            if (cert_same_identity(sk_X509_value(certs, (int)i), l->v[j].cert)) {
                return err_set(err, -EEXIST, CERTD_E_DUPLICATE,
                               "certificate %s has the subject, issuer and serial number of "
                               "installed certificate %s",
                               a->v[i].id, l->v[j].id);
            }
        }
    }
    if (max_total > 0 && max_total < limit) {
        limit = max_total;
    }
    if (l->n > limit || a->n > limit - l->n) {
        return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED,
                       "at most %zu authority certificates: %zu installed, %zu more requested",
                       limit, l->n, a->n);
    }
    return 0;
}

/* Add the new certificates to the loaded list l (taking references), kept sorted by id. */
static int ca_list_extend(struct ca_list *l, const struct ca_added_list *a, STACK_OF(X509) *certs)
{
    struct ca_entry *nv = reallocarray(l->v, l->n + a->n, sizeof(*nv));

    if (!nv) {
        return -ENOMEM;
    }
    l->v = nv;
    for (size_t i = 0; i < a->n; i++) {
        X509 *x = sk_X509_value(certs, (int)i);
        if (X509_up_ref(x) != 1) {
            return -EIO;
        }
        memcpy(l->v[l->n].id, a->v[i].id, sizeof(l->v[l->n].id));
        l->v[l->n].cert = x;
        l->v[l->n].hash = 0;
        l->n++;
    }
    if (l->n > 1) {
        qsort(l->v, l->n, sizeof(*l->v), ca_entry_cmp);
    }
    return 0;
}

/*
 * After a failure past the commit point: complete the set now, as recovery would (we hold the
 * lock). 0 when it is complete and durable, else the error (the journal stays for recovery).
 */
static int set_complete_committed(int dirfd, const char *dir, int r, const char *step)
{
    char buf[128];
    int q = store_recover_locked(dirfd, dir);

    log_debug("authority: %s: %s failed (%s) after the commit point; completing the set: %s", dir,
              step, store_errno_str(r, buf, sizeof(buf)), q < 0 ? "failed" : "done");
    return q < 0 ? r : 0;
}

/*
 * What an add and a replace (verb, for messages) check before the directory is opened: 1 to
 * STORE_SET_MAX certificates (one write set holds them all; a bundle has at most
 * CERTD_BUNDLE_CERTS_MAX), their ids and file names into a, none named twice in certs (by id,
 * or by subject, issuer and serial number). *ret_md: SHA-256, owned by the caller.
 */
static int added_begin(OSSL_LIB_CTX *libctx, const char *propq, STACK_OF(X509) *certs,
                       const char *verb, EVP_MD **ret_md, struct ca_added_list *a,
                       struct certd_err *err)
{
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = NULL;
    int num = sk_X509_num(certs);

    if (num <= 0) {
        return err_set(err, -EINVAL, CERTD_E_NO_CERT, "no certificate to %s", verb);
    }
    if ((size_t)num > STORE_SET_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                       "at most %u certificates can be given at once", STORE_SET_MAX);
    }
    int r = sha256_fetch(libctx, propq, &md);
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "SHA-256 is not available");
    }
    for (size_t i = 0; i < (size_t)num; i++) {
        struct ca_added *e = &a->v[i];
        X509 *x = sk_X509_value(certs, (int)i);
        r = cert_id(md, x, e->id);
        if (r < 0) {
            return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                           "cannot compute a certificate fingerprint");
        }
        memcpy(e->name, e->id, AUTH_ID_LEN);
        memcpy(e->name + AUTH_ID_LEN, AUTH_FILE_SUFFIX, AUTH_FILE_SUFFIX_LEN + 1);
        a->n++;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(e->id, a->v[j].id) == 0 ||
                cert_same_identity(x, sk_X509_value(certs, (int)j))) {
                return err_set(err, -EEXIST, CERTD_E_DUPLICATE,
                               "certificate %s appears twice in the request", e->id);
            }
        }
    }
    *ret_md = TAKE_PTR(md);
    return 0;
}

/* Malloc'd copies of a's ids, in order, for the caller's ret_ids. 0 or -ENOMEM. */
static int added_ids_dup(const struct ca_added_list *a, char ***ret)
{
    char **out = calloc(a->n, sizeof(*out));

    if (!out) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < a->n; i++) {
        out[i] = strdup(a->v[i].id);
        if (!out[i]) {
            strv_free_n(out, a->n);
            return -ENOMEM;
        }
    }
    *ret = out;
    return 0;
}

/*
 * Everything the write of a's certificates needs that can fail for lack of memory, made before
 * the first write, so that after it only system calls remain: l (the certificates that stay)
 * extended by a's and its link plan *ret_links, the PEM of each certificate not is_kept
 * (nullable: none is) appended to files as a write (*n_files counts on), and with ret_ids
 * (nullable) the caller's copies of the ids. 0, or -errno with err.
 */
static int added_plan(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                      STACK_OF(X509) *certs, struct ca_added_list *a, const bool *is_kept,
                      struct ca_list *l, char (**ret_links)[NAME_MAX + 1],
                      struct store_set_file *files, size_t *n_files, char ***ret_ids,
                      struct certd_err *err)
{
    int r = ca_list_extend(l, a, certs);

    if (r >= 0) {
        r = links_prepare(libctx, propq, l, ret_links);
    }
    for (size_t i = 0; r >= 0 && i < a->n; i++) {
        struct span pem = SPAN_EMPTY;
        if (is_kept && is_kept[i]) {
            continue;
        }
        r = cert_pem(sk_X509_value(certs, (int)i), &a->v[i].pem, &pem);
        files[(*n_files)++] =
            (struct store_set_file){ .name = a->v[i].name, .data = pem, .mode = STORE_MODE_PUBLIC };
    }
    if (r >= 0 && ret_ids) {
        r = added_ids_dup(a, ret_ids);
    }
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot prepare the certificates for %s", dir);
    }
    return 0;
}

/*
 * Write the journaled set files[0..n) into dirfd (held with LOCK_EX, settled), completing it
 * at once when it fails past its commit point. 0, or -errno with err (the file named is the
 * one whose step failed).
 */
static int set_write(int dirfd, const char *dir, const struct store_set_file *files, size_t n,
                     struct certd_err *err)
{
    const char *step = NULL;
    size_t failed = 0;
    bool is_committed = false;
    char buf[128];
    int r = store_write_set_at(dirfd, dir, files, n, &step, &failed, &is_committed);

    if (r < 0 && is_committed) {
        r = set_complete_committed(dirfd, dir, r, step);
    }
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "storage: %s failed (%s) writing %s/%s", step,
                       store_errno_str(r, buf, sizeof(buf)), dir, files[failed].name);
    }
    return 0;
}

/* Record a failure of ca_scan or cert_names_scan on dir. */
static int scan_fail(struct certd_err *err, int r, const char *dir)
{
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_LIMIT_REACHED,
                       "authority directory %s holds more than %u certificates (or more than %u "
                       "files named like one)",
                       dir, CERTD_AUTHORITY_MAX_HARD, STORE_SET_REMOVE_MAX);
    }
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    return err_set(err, r, CERTD_E_STORAGE, "cannot read authority directory %s", dir);
}

int authority_dir_add_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                         STACK_OF(X509) *certs, size_t max_total, char ***ret_ids,
                         struct certd_err *err)
{
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = NULL;
    _cleanup_(ca_added_done) struct ca_added_list a = { .n = 0 };
    _cleanup_(ca_list_done) struct ca_list l = { 0 };
    _cleanup_free_ char(*links)[NAME_MAX + 1] = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    struct store_set_file files[STORE_SET_MAX];
    const char *step = NULL;
    char **out = NULL;
    size_t n_files = 0;
    int r;

    assert_return(dir, -EINVAL);
    assert_return(certs, -EINVAL);

    r = added_begin(libctx, propq, certs, "add", &md, &a, err);
    if (r < 0) {
        return r;
    }

    /*
     * From here to the end the directory is ours alone (LOCK_EX): the checks below hold for
     * the write that follows them, and no other add, remove or rehash interleaves.
     */
    dirfd = auth_dir_open_locked(libctx, propq, dir, &step);
    if (dirfd < 0) {
        return auth_open_fail(err, dirfd, dir, step);
    }
    r = ca_scan(libctx, propq, dirfd, dir, &l);
    if (r < 0) {
        return scan_fail(err, r, dir);
    }
    r = add_check_locked(dirfd, dir, &a, certs, &l, max_total, err);
    if (r < 0) {
        return r;
    }
    r = added_plan(libctx, propq, dir, certs, &a, NULL, &l, &links, files, &n_files,
                   ret_ids ? &out : NULL, err);
    if (r < 0) {
        return r;
    }

    /* All the files or none, also across a crash: one journaled set. */
    r = set_write(dirfd, dir, files, n_files, err);
    if (r < 0) {
        strv_free_n(out, a.n);
        return r;
    }
    for (size_t i = 0; i < a.n; i++) {
        struct stat st;
        if (fstatat(dirfd, a.v[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            a.v[i].dev = st.st_dev;
            a.v[i].ino = st.st_ino;
        }
    }
    /* links_apply ends with an fsync of the directory. */
    r = links_apply(dirfd, &l, links);
    if (r < 0) {
        (void)err_set(err, r, CERTD_E_STORAGE, "cannot rebuild the links in %s", dir);
        files_remove(dirfd, &a);
        /* Links may point at the removed files now: put them back in line (best effort). */
        if (rehash_locked(libctx, propq, dirfd, dir) < 0) {
            log_debug("authority: %s: links not rebuilt after a failed add", dir);
        }
        strv_free_n(out, a.n);
        return r;
    }
    if (ret_ids) {
        *ret_ids = out;
    }
    return 0;
}

int authority_dir_add(const char *dir, STACK_OF(X509) *certs, char ***ret_ids,
                      struct certd_err *err)
{
    return authority_dir_add_ex(NULL, NULL, dir, certs, 0, ret_ids, err);
}

/*
 * Which certificates of a a replace keeps as they are (is_kept[i]): those whose file is
 * present and really holds them; one that does not (damaged, not a certificate, a symlink) is
 * written anew. A name of a held by a directory is refused: the set's rename over it could
 * only fail past the commit point, with the old files removed already.
 */
static int replace_kept(OSSL_LIB_CTX *libctx, const char *propq, const EVP_MD *md, int dirfd,
                        const char *dir, const struct ca_added_list *a, bool *is_kept,
                        struct certd_err *err)
{
    for (size_t i = 0; i < a->n; i++) {
        _cleanup_(cleanup_X509) X509 *x = NULL;
        struct stat st;
        int r;

        if (fstatat(dirfd, a->v[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) {
                continue;
            }
            return err_set(err, -errno, CERTD_E_STORAGE, "cannot check %s/%s", dir, a->v[i].name);
        }
        if (S_ISDIR(st.st_mode)) {
            return err_set(err, -EISDIR, CERTD_E_STORAGE,
                           "cannot write certificate %s: %s/%s is a directory", a->v[i].id, dir,
                           a->v[i].name);
        }
        r = cert_file_load(libctx, propq, md, dir, a->v[i].name, &x);
        if (r == -ENOMEM) {
            return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (r < 0) {
            return err_set(err, r, CERTD_E_STORAGE, "cannot read %s/%s", dir, a->v[i].name);
        }
        is_kept[i] = r == 1;
    }
    return 0;
}

int authority_dir_replace_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                             STACK_OF(X509) *certs, size_t max_total, char ***ret_ids,
                             struct certd_err *err)
{
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = NULL;
    _cleanup_(ca_added_done) struct ca_added_list a = { .n = 0 };
    _cleanup_(ca_list_done) struct ca_list l = { 0 };
    _cleanup_free_ char(*links)[NAME_MAX + 1] = NULL;
    _cleanup_free_ struct cert_name *names = NULL;
    _cleanup_free_ struct store_set_file *files = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    bool is_kept[STORE_SET_MAX] = { false };
    size_t limit = CERTD_AUTHORITY_MAX_HARD, n_names = 0, n_files = 0;
    const char *step = NULL;
    char **out = NULL;
    int r;

    assert_return(dir, -EINVAL);
    assert_return(certs, -EINVAL);

    /* An authority emptied by a replace would be a delete the caller did not ask for. */
    r = added_begin(libctx, propq, certs, "install", &md, &a, err);
    if (r < 0) {
        return r;
    }
    /* What the directory holds afterwards is certs alone: the limit needs no look at it. */
    if (max_total > 0 && max_total < limit) {
        limit = max_total;
    }
    if (a.n > limit) {
        return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED,
                       "at most %zu authority certificates: %zu requested", limit, a.n);
    }

    /* Ours alone from the scan to the links: the set removes exactly what is there. */
    dirfd = auth_dir_open_locked(libctx, propq, dir, &step);
    if (dirfd < 0) {
        return auth_open_fail(err, dirfd, dir, step);
    }
    r = cert_names_scan(dirfd, &names, &n_names);
    if (r < 0) {
        return scan_fail(err, r, dir);
    }
    r = replace_kept(libctx, propq, md, dirfd, dir, &a, is_kept, err);
    if (r < 0) {
        return r;
    }

    /* Everything that can fail for lack of memory comes before the first write (as in add). */
    files = calloc(a.n + n_names, sizeof(*files));
    if (!files) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = added_plan(libctx, propq, dir, certs, &a, is_kept, &l, &links, files, &n_files,
                   ret_ids ? &out : NULL, err);
    if (r < 0) {
        return r;
    }
    for (size_t k = 0; k < n_names; k++) {
        bool is_new = false;
        for (size_t i = 0; i < a.n && !is_new; i++) {
            is_new = strcmp(a.v[i].name, names[k].s) == 0;
        }
        if (!is_new) {
            files[n_files++] = (struct store_set_file){ .name = names[k].s, .is_remove = true };
        }
    }

    /* The writes and the removals as one journaled set: the old set or the new one. */
    if (n_files > 0) {
        r = set_write(dirfd, dir, files, n_files, err);
        if (r < 0) {
            strv_free_n(out, a.n);
            return r;
        }
    }
    /*
     * The new set is in place and cannot be taken back (the old files are gone): a failure
     * here is reported, and authority_dir_rehash or the next change repairs the links.
     */
    r = links_apply(dirfd, &l, links);
    if (r < 0) {
        strv_free_n(out, a.n);
        return err_set(err, r, CERTD_E_STORAGE,
                       "the certificates of %s were replaced, but its links could not be rebuilt",
                       dir);
    }
    if (ret_ids) {
        *ret_ids = out;
    }
    return 0;
}

int authority_dir_remove_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                            const char *id, struct certd_err *err)
{
    _cleanup_close_ int dirfd = -EBADF;
    char name[AUTH_FILE_LEN + 1];
    const char *step = NULL;
    struct stat st;
    int r;

    assert_return(dir, -EINVAL);
    assert_return(id, -EINVAL);

    /* The id becomes a file name: only the exact id form, so "../x" never leaves dir. */
    if (!id_valid(id)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "invalid certificate id: expected 64 lowercase hex digits");
    }
    /* Exclusive to the end: the rehash below sees exactly the files this removal left. */
    dirfd = auth_dir_open_locked(libctx, propq, dir, &step);
    if (dirfd < 0) {
        return auth_open_fail(err, dirfd, dir, step);
    }
    (void)snprintf(name, sizeof(name), "%s" AUTH_FILE_SUFFIX, id);
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) {
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "certificate %s not found", id);
        }
        return err_set(err, -errno, CERTD_E_STORAGE, "cannot check %s/%s", dir, name);
    }
    if (S_ISDIR(st.st_mode)) {
        return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "certificate %s not found", id);
    }
    if (unlinkat(dirfd, name, 0) < 0) {
        if (errno == ENOENT) {
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "certificate %s not found", id);
        }
        return err_set(err, -errno, CERTD_E_STORAGE, "cannot remove %s/%s", dir, name);
    }
    /* rehash_locked ends with an fsync of the directory, which makes the unlink durable too. */
    r = rehash_locked(libctx, propq, dirfd, dir);
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot rebuild the links in %s", dir);
    }
    return 0;
}

int authority_dir_remove(const char *dir, const char *id, struct certd_err *err)
{
    return authority_dir_remove_ex(NULL, NULL, dir, id, err);
}

int authority_dir_load(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                       STACK_OF(X509) **ret_certs, char ***ret_ids, size_t *ret_n)
{
    _cleanup_(ca_list_done) struct ca_list l = { 0 };
    _cleanup_(cleanup_x509_stack) STACK_OF(X509) *sk = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    char **ids = NULL;
    int r;

    assert_return(dir, -EINVAL);
    assert_return(ret_certs, -EINVAL);

    dirfd = store_open_dir(dir);
    if (dirfd < 0) {
        return dirfd;
    }
    r = ca_scan(libctx, propq, dirfd, dir, &l);
    if (r < 0) {
        return r;
    }
    sk = sk_X509_new_reserve(NULL, (int)l.n);
    if (!sk) {
        return -ENOMEM;
    }
    if (ret_ids) {
        ids = calloc(l.n > 0 ? l.n : 1, sizeof(*ids));
        if (!ids) {
            return -ENOMEM;
        }
        for (size_t i = 0; i < l.n; i++) {
            ids[i] = strdup(l.v[i].id);
            if (!ids[i]) {
                strv_free_n(ids, l.n);
                return -ENOMEM;
            }
        }
    }
    /* Space is reserved: pushes cannot fail; the stack takes the references. */
    for (size_t i = 0; i < l.n; i++) {
        (void)sk_X509_push(sk, l.v[i].cert);
        l.v[i].cert = NULL;
    }
    *ret_certs = TAKE_PTR(sk);
    if (ret_ids) {
        *ret_ids = ids;
    }
    if (ret_n) {
        *ret_n = l.n;
    }
    return 0;
}
