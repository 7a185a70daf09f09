/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Authority directories: the CA certificates an endpoint trusts, one file per certificate named
 * "<lowercase SHA-256 fingerprint hex>.pem" (the id), plus the "<subject-hash>.<n>" symlinks
 * OpenSSL's CApath lookup (X509_LOOKUP_hash_dir) needs, as `openssl rehash` makes them.
 * Invariants: only names of the exact id form are ever read, written or removed through an id,
 * so no id can reach outside the directory; a file is trusted under an id only if its
 * fingerprint is that id; links are rebuilt after every change and each one is replaced
 * atomically, so an OpenSSL client reading the directory never misses a certificate that stays.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log/log.h"
#include "store/store-internal.h"
#include "store/store.h"
#include "util/limits.h"
#include "util/ossl.h"

/* An id: SHA-256 in lowercase hex. */
#define AUTH_ID_LEN 64u
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

/* The id of a certificate: lowercase hex of its SHA-256 fingerprint. */
static int cert_id(const EVP_MD *md, const X509 *cert, char id[static AUTH_ID_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    if (X509_digest(cert, md, digest, &len) != 1 || len * 2 != AUTH_ID_LEN) {
        ossl_drain_errors("authority: fingerprint");
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

static EVP_MD *sha256_fetch(OSSL_LIB_CTX *libctx, const char *propq)
{
    EVP_MD *md = EVP_MD_fetch(libctx, "SHA2-256", propq);
    if (!md) {
        ossl_drain_errors("authority: fetch SHA2-256");
    }
    return md;
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
        ossl_drain_errors("authority: parse");
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

/* Every valid "<id>.pem" of dir, parsed, sorted by id. */
static int ca_scan(OSSL_LIB_CTX *libctx, const char *propq, int dirfd, const char *dir,
                   struct ca_list *ret)
{
    _cleanup_(cleanup_DIR) DIR *d = NULL;
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = NULL;
    struct ca_list l = { 0 };
    size_t cap = 0;
    int r;

    md = sha256_fetch(libctx, propq);
    if (!md) {
        return -EOPNOTSUPP;
    }
    r = store_dir_stream(dirfd, &d);
    if (r < 0) {
        return r;
    }
    for (;;) {
        struct dirent *de;
        X509 *x = NULL;

        errno = 0;
        de = readdir(d);
        if (!de) {
            r = errno != 0 ? -errno : 0;
            break;
        }
        if (!is_cert_file_name(de->d_name)) {
            continue; /* ".tmp-*", links, anything else */
        }
        if (l.n == CERTD_AUTHORITY_MAX_HARD) {
            r = -E2BIG;
            break;
        }
        r = cert_file_load(libctx, propq, md, dir, de->d_name, &x);
        if (r < 0) {
            break;
        }
        if (r == 0) {
            continue;
        }
        if (l.n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            struct ca_entry *nv;
            if (ncap > CERTD_AUTHORITY_MAX_HARD) {
                ncap = CERTD_AUTHORITY_MAX_HARD;
            }
            nv = reallocarray(l.v, ncap, sizeof(*nv));
            if (!nv) {
                X509_free(x);
                r = -ENOMEM;
                break;
            }
            l.v = nv;
            cap = ncap;
        }
        memcpy(l.v[l.n].id, de->d_name, AUTH_ID_LEN);
        l.v[l.n].id[AUTH_ID_LEN] = '\0';
        l.v[l.n].cert = x;
        l.v[l.n].hash = 0;
        l.n++;
        r = 0;
    }
    if (r < 0) {
        ca_list_done(&l);
        return r;
    }
    if (l.n > 1) {
        qsort(l.v, l.n, sizeof(*l.v), ca_entry_cmp);
    }
    *ret = l;
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
    int r;

    r = store_dir_stream(dirfd, &d);
    if (r < 0) {
        return r;
    }
    for (;;) {
        struct dirent *de;
        struct stat st;

        errno = 0;
        de = readdir(d);
        if (!de) {
            return errno != 0 ? -errno : 0;
        }
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
}

static int rehash_at(OSSL_LIB_CTX *libctx, const char *propq, int dirfd, const char *dir)
{
    _cleanup_(ca_list_done) struct ca_list l = { 0 };
    _cleanup_free_ char(*links)[NAME_MAX + 1] = NULL;
    int r;

    r = ca_scan(libctx, propq, dirfd, dir, &l);
    if (r < 0) {
        return r;
    }
    if (l.n > 0) {
        links = calloc(l.n, sizeof(*links));
        if (!links) {
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        int ok = 0;
        l.v[i].hash = X509_NAME_hash_ex(X509_get_subject_name(l.v[i].cert), libctx, propq, &ok);
        if (!ok) {
            ossl_drain_errors("authority: subject hash");
            return -EIO;
        }
    }
    /*
     * Entries are in id order; n counts earlier certificates with the same subject hash, as
     * `openssl rehash` numbers them. A name held by a foreign non-symlink file is skipped.
     */
    for (size_t i = 0; i < l.n; i++) {
        char target[AUTH_FILE_LEN + 1];
        size_t k = 0;
        for (size_t j = 0; j < i; j++) {
            k += l.v[j].hash == l.v[i].hash;
        }
        (void)snprintf(target, sizeof(target), "%s" AUTH_FILE_SUFFIX, l.v[i].id);
        for (;; k++) {
            (void)snprintf(links[i], sizeof(links[i]), "%08lx.%zu", l.v[i].hash & 0xffffffffUL, k);
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
    r = links_prune(dirfd, links, l.n);
    if (r < 0) {
        return r;
    }
    if (fsync(dirfd) < 0) {
        return -errno;
    }
    return 0;
}

int authority_dir_rehash_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir)
{
    _cleanup_close_ int dirfd = -EBADF;

    assert_return(dir, -EINVAL);

    dirfd = store_open_dir(dir);
    if (dirfd < 0) {
        return dirfd;
    }
    /* Shared, like every writer: store_recover() must not take our link temporaries. */
    int r = store_dir_lock(dirfd, LOCK_SH);
    if (r < 0) {
        return r;
    }
    return rehash_at(libctx, propq, dirfd, dir);
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

/* A file this call created: its name's id and the inode it got. */
struct ca_added {
    char id[AUTH_ID_LEN + 1];
    dev_t dev;
    ino_t ino;
};

/*
 * Rollback of a failed add: remove the n files this call created, each only while its name
 * still holds the inode we made (never a file someone else put there since).
 */
static void files_remove(int dirfd, const struct ca_added *added, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[AUTH_FILE_LEN + 1];
        struct stat st;
        (void)snprintf(name, sizeof(name), "%s" AUTH_FILE_SUFFIX, added[i].id);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == added[i].dev &&
            st.st_ino == added[i].ino) {
            (void)unlinkat(dirfd, name, 0);
        }
    }
    (void)fsync(dirfd);
}

int authority_dir_add_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                         STACK_OF(X509) *certs, char ***ret_ids, struct certd_err *err)
{
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = NULL;
    _cleanup_free_ struct ca_added *ids = NULL;
    _cleanup_close_ int dirfd = -EBADF;
    char **out = NULL;
    size_t n, added = 0;
    int num, r;

    assert_return(dir, -EINVAL);
    assert_return(certs, -EINVAL);

    num = sk_X509_num(certs);
    if (num <= 0) {
        return err_set(err, -EINVAL, CERTD_E_NO_CERT, "no certificate to add");
    }
    n = (size_t)num;
    ids = calloc(n, sizeof(*ids));
    if (!ids) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    md = sha256_fetch(libctx, propq);
    if (!md) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_INTERNAL, "SHA-256 is not available");
    }
    dirfd = store_open_dir(dir);
    if (dirfd < 0) {
        return err_set(err, dirfd, CERTD_E_STORAGE, "cannot open authority directory %s", dir);
    }
    r = store_dir_lock(dirfd, LOCK_SH);
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot lock authority directory %s", dir);
    }

    /*
     * Validate everything before the first write: ids, duplicates in the call and on disk. The
     * check on disk gives the early, clean refusal; the no-replace create below is what makes
     * it hold against a file that appears in between.
     */
    for (size_t i = 0; i < n; i++) {
        char name[AUTH_FILE_LEN + 1];
        struct stat st;

        r = cert_id(md, sk_X509_value(certs, (int)i), ids[i].id);
        if (r < 0) {
            return err_set(err, r, CERTD_E_INTERNAL, "cannot compute a certificate fingerprint");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ids[i].id, ids[j].id) == 0) {
                return err_set(err, -EEXIST, CERTD_E_DUPLICATE,
                               "certificate %s appears twice in the request", ids[i].id);
            }
        }
        (void)snprintf(name, sizeof(name), "%s" AUTH_FILE_SUFFIX, ids[i].id);
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            return err_set(err, -EEXIST, CERTD_E_DUPLICATE, "certificate %s is already installed",
                           ids[i].id);
        }
        if (errno != ENOENT) {
            return err_set(err, -errno, CERTD_E_STORAGE, "cannot check %s/%s", dir, name);
        }
    }
    /* The copies for the caller, made now so that no allocation can fail after the writes. */
    if (ret_ids) {
        out = calloc(n, sizeof(*out));
        if (!out) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            out[i] = strdup(ids[i].id);
            if (!out[i]) {
                strv_free_n(out, n);
                return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
            }
        }
    }

    for (added = 0; added < n; added++) {
        _cleanup_(cleanup_BIO) BIO *bio = NULL;
        char name[AUTH_FILE_LEN + 1];
        const char *step = NULL;
        struct span pem;
        struct stat st;

        r = cert_pem(sk_X509_value(certs, (int)added), &bio, &pem);
        if (r < 0) {
            (void)err_set(err, r, CERTD_E_INTERNAL, "cannot encode certificate %s", ids[added].id);
            goto fail;
        }
        (void)snprintf(name, sizeof(name), "%s" AUTH_FILE_SUFFIX, ids[added].id);
        r = store_write_new_at(dirfd, name, pem, STORE_MODE_PUBLIC, &st, &step);
        if (r == -EEXIST) {
            (void)err_set(err, r, CERTD_E_DUPLICATE, "certificate %s is already installed",
                          ids[added].id);
            goto fail;
        }
        if (r < 0) {
            char buf[128];
            (void)err_set(err, r, CERTD_E_STORAGE, "storage: %s failed (%s) writing %s/%s", step,
                          strerror_r(-r, buf, sizeof(buf)), dir, name);
            goto fail;
        }
        ids[added].dev = st.st_dev;
        ids[added].ino = st.st_ino;
    }
    /* rehash_at ends with an fsync of the directory, which makes the new names durable too. */
    r = rehash_at(libctx, propq, dirfd, dir);
    if (r < 0) {
        (void)err_set(err, r, CERTD_E_STORAGE, "cannot rebuild the links in %s", dir);
        goto fail;
    }
    if (ret_ids) {
        *ret_ids = out;
    }
    return 0;

fail:
    files_remove(dirfd, ids, added);
    /* Links may point at the removed files now: put them back in line (best effort). */
    if (rehash_at(libctx, propq, dirfd, dir) < 0) {
        log_debug("authority: %s: links not rebuilt after a failed add", dir);
    }
    strv_free_n(out, out ? n : 0);
    return r;
}

int authority_dir_add(const char *dir, STACK_OF(X509) *certs, char ***ret_ids,
                      struct certd_err *err)
{
    return authority_dir_add_ex(NULL, NULL, dir, certs, ret_ids, err);
}

int authority_dir_remove_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                            const char *id, struct certd_err *err)
{
    _cleanup_close_ int dirfd = -EBADF;
    char name[AUTH_FILE_LEN + 1];
    struct stat st;
    int r;

    assert_return(dir, -EINVAL);
    assert_return(id, -EINVAL);

    /* The id becomes a file name: only the exact id form, so "../x" never leaves dir. */
    if (!id_valid(id)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "invalid certificate id: expected 64 lowercase hex digits");
    }
    dirfd = store_open_dir(dir);
    if (dirfd < 0) {
        return err_set(err, dirfd, CERTD_E_STORAGE, "cannot open authority directory %s", dir);
    }
    r = store_dir_lock(dirfd, LOCK_SH);
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot lock authority directory %s", dir);
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
    /* rehash_at ends with an fsync of the directory, which makes the unlink durable too. */
    r = rehash_at(libctx, propq, dirfd, dir);
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
