/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store/: atomic writes and their failure paths (old content kept byte for byte, no temporary
 * left), write sets and their crash safety (a forked child "crashes" at each step of the
 * journal protocol, then recovery must leave exactly the old or the new set), journals made
 * hostile by hand, bounded reads that wipe what they free, mkdir -p and its ownership rules,
 * and authority directories checked against OpenSSL itself (X509_NAME_hash_ex link names,
 * CApath lookup). Tests may run as root, so failures are provoked by means that defeat root too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "store/store-internal.h"
#include "store/store.h"
#include "testutil.h"
#include "util/ossl.h"

/* Under valgrind, fresh heap memory is "undefined"; the wipe test reads it on purpose. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define mark_defined(p, n) VALGRIND_MAKE_MEM_DEFINED(p, n)
#endif
#endif
#ifndef mark_defined
#define mark_defined(p, n) ((void)(p), (void)(n))
#endif

/* ---- helpers (plain libc and OpenSSL, never the code under test) ---- */

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static void file_put(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void file_put_str(const char *dir, const char *name, const char *s)
{
    char *p = path_join(dir, name);
    file_put(p, s, strlen(s), 0644);
    free(p);
}

static void assert_file_content(const char *path, const char *want)
{
    size_t len = 0;
    char *got = tu_file_get(path, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
}

static void assert_content_at(const char *dir, const char *name, const char *want)
{
    char *p = path_join(dir, name);
    assert_file_content(p, want);
    free(p);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A fresh self-signed P-256 certificate with subject CN=cn (a new key, a new serial). */
static X509 *make_cert(const char *cn, long serial)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(key);
    assert_non_null(x);
    assert_non_null(name);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 30));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return x;
}

/* The id as the test computes it: SHA-256 of the DER, lowercase hex. */
static void expected_id(X509 *x, char id[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &len), 1);
    assert_int_equal(len, 32);
    for (unsigned i = 0; i < len; i++) {
        (void)snprintf(id + 2 * i, 3, "%02x", md[i]);
    }
}

/* What `openssl x509 -hash -noout` prints, plus ".n". */
static void expected_link(X509 *x, unsigned n, char *buf, size_t size)
{
    int ok = 0;
    unsigned long h = X509_NAME_hash_ex(X509_get_subject_name(x), NULL, NULL, &ok);
    assert_int_equal(ok, 1);
    int r = snprintf(buf, size, "%08lx.%u", h, n);
    assert_true(r > 0 && (size_t)r < size);
}

/* Assert that dir/link is a symlink whose target is "<id>.pem". */
static void assert_link(const char *dir, const char *link, const char *id)
{
    char *p = path_join(dir, link);
    char target[256] = { 0 };
    char want[80];
    (void)snprintf(want, sizeof(want), "%s.pem", id);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    ssize_t n = readlink(p, target, sizeof(target) - 1);
    assert_true(n > 0);
    assert_string_equal(target, want);
    free(p);
}

/* dir/<id of x>.pem */
static char *cert_path(const char *dir, X509 *x)
{
    char id[65], *p = NULL;
    expected_id(x, id);
    assert_true(asprintf(&p, "%s/%s.pem", dir, id) > 0);
    return p;
}

/* path is a certificate file as the store writes it: 0644, exactly x as OpenSSL reads it. */
static void assert_cert_file(const char *path, X509 *x)
{
    assert_int_equal(mode_of(path), 0644);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    X509 *got = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(got);
    assert_int_equal(X509_cmp(got, x), 0);
    X509_free(got);
}

/*
 * Verify leaf with dir as OpenSSL's CApath (X509_LOOKUP_hash_dir, the links alone): when
 * want_ok, the chain leaf, intermediate, root; otherwise "unable to get issuer".
 */
static void assert_capath_verifies(const char *dir, X509 *leaf, bool want_ok)
{
    X509_STORE *store = X509_STORE_new();
    assert_non_null(store);
    X509_LOOKUP *lu = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());
    assert_non_null(lu);
    assert_int_equal(X509_LOOKUP_add_dir(lu, dir, X509_FILETYPE_PEM), 1);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    int ok = X509_verify_cert(ctx);
    if (want_ok) {
        assert_int_equal(ok, 1);
        assert_int_equal(X509_STORE_CTX_get_error(ctx), X509_V_OK);
        assert_int_equal(sk_X509_num(X509_STORE_CTX_get0_chain(ctx)), 3);
    } else {
        assert_int_equal(ok, 0);
        assert_int_equal(X509_STORE_CTX_get_error(ctx),
                         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
}

static STACK_OF(X509) *stack_of(X509 *a, X509 *b)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    assert_non_null(sk);
    if (a) {
        assert_true(X509_up_ref(a) == 1 && sk_X509_push(sk, a) > 0);
    }
    if (b) {
        assert_true(X509_up_ref(b) == 1 && sk_X509_push(sk, b) > 0);
    }
    return sk;
}

/* Names and contents of a directory, for "unchanged" checks. */
static char *dir_snapshot(const char *dir)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    size_t cap = 1 << 16, len = 0;
    char *s = calloc(1, cap);
    assert_non_null(s);
    for (int i = 0; i < n; i++) {
        char *p = path_join(dir, list[i]->d_name);
        char target[256] = { 0 };
        char *content = NULL;
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        if (S_ISLNK(st.st_mode)) {
            assert_true(readlink(p, target, sizeof(target) - 1) > 0);
        } else if (S_ISREG(st.st_mode)) {
            content = tu_file_get(p, NULL);
        }
        int w = snprintf(s + len, cap - len, "%s|%o|%s|%s\n", list[i]->d_name,
                         (unsigned)(st.st_mode & 07777), target, content ? content : "");
        assert_true(w > 0 && (size_t)w < cap - len);
        len += (size_t)w;
        free(content);
        free(p);
        free(list[i]);
    }
    free(list);
    return s;
}

static int setup_umask(void **state)
{
    (void)state;
    (void)umask(022);
    return 0;
}

/* ---- store_write_atomic ---- */

static void test_write_modes(void **state)
{
    (void)state;
    static const mode_t umasks[] = { 022, 077 };
    static const mode_t modes[] = { STORE_MODE_SECRET, STORE_MODE_PUBLIC, 0640 };
    char *dir = scratch_dir("store-modes");

    for (size_t u = 0; u < ELEMENTSOF(umasks); u++) {
        (void)umask(umasks[u]);
        for (size_t m = 0; m < ELEMENTSOF(modes); m++) {
            char name[32];
            (void)snprintf(name, sizeof(name), "f-%zu-%zu", u, m);
            char *p = path_join(dir, name);
            struct certd_err err = { 0 };
            assert_int_equal(store_write_atomic(p, span_from_str("data"), modes[m], &err), 0);
            assert_false(err_is_set(&err));
            /* Exactly the mode asked for, narrowed by the umask and nothing else. */
            assert_int_equal(mode_of(p), modes[m] & ~umasks[u]);
            free(p);
        }
    }
    (void)umask(022);
    /* 0600 is 0600 exactly and 0644 is 0644 exactly under the usual umask. */
    char *p = path_join(dir, "key");
    assert_int_equal(store_write_atomic(p, span_from_str("k"), STORE_MODE_SECRET, NULL), 0);
    assert_int_equal(mode_of(p), 0600);
    free(p);
    p = path_join(dir, "pub");
    assert_int_equal(store_write_atomic(p, span_from_str("c"), STORE_MODE_PUBLIC, NULL), 0);
    assert_int_equal(mode_of(p), 0644);
    free(p);
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 0);
    scratch_rm(dir);
}

static void test_write_replace(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-replace");
    char *p = path_join(dir, "cert.pem");
    static const uint8_t bin[] = { 'a', 0, 'b', 0xff, '\n' };

    file_put(p, "old content", 11, 0644);
    assert_int_equal(store_write_atomic(p, span_from_str("new content, longer"), 0644, NULL), 0);
    assert_file_content(p, "new content, longer");
    /* Shorter content: no tail of the old file survives (it is a new file, not a rewrite). */
    assert_int_equal(store_write_atomic(p, span_from_str("x"), 0644, NULL), 0);
    assert_file_content(p, "x");
    /* Binary with embedded NULs, kept byte for byte. */
    assert_int_equal(store_write_atomic(p, span_make(bin, sizeof(bin)), 0644, NULL), 0);
    size_t len = 0;
    char *got = tu_file_get(p, &len);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(got, bin, sizeof(bin));
    free(got);
    /* Empty content is a valid (empty) file. */
    assert_int_equal(store_write_atomic(p, SPAN_EMPTY, 0644, NULL), 0);
    assert_file_content(p, "");
    /* Replacing a public file with a key narrows the mode: the new file has its own mode. */
    assert_int_equal(store_write_atomic(p, span_from_str("secret"), STORE_MODE_SECRET, NULL), 0);
    assert_int_equal(mode_of(p), 0600);
    /* A symlink at the target is replaced by the file, not followed. */
    char *victim = path_join(dir, "victim");
    file_put(victim, "victim", 6, 0644);
    char *lnk = path_join(dir, "lnk");
    assert_int_equal(symlink(victim, lnk), 0);
    assert_int_equal(store_write_atomic(lnk, span_from_str("mine"), 0644, NULL), 0);
    assert_file_content(victim, "victim");
    assert_file_content(lnk, "mine");
    struct stat st;
    assert_int_equal(lstat(lnk, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    /* A relative path with no directory part works too (directory "."). */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_int_equal(store_write_atomic("rel", span_from_str("r"), 0644, NULL), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_content_at(dir, "rel", "r");

    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 0);
    free(victim);
    free(lnk);
    free(p);
    scratch_rm(dir);
}

static void test_write_failures(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-fail");
    char *old = path_join(dir, "old.txt");
    char *sub = path_join(dir, "adir");
    char *inner = path_join(sub, "inner");
    char long_name[NAME_MAX + 2];
    char *toolong, *missing, *under_file, *trailing, *dot, *dotdot;

    file_put(old, "OLD\0BYTES", 9, 0644);
    assert_int_equal(mkdir(sub, 0755), 0);
    file_put(inner, "inner", 5, 0644);
    memset(long_name, 'a', NAME_MAX + 1);
    long_name[NAME_MAX + 1] = '\0';
    toolong = path_join(dir, long_name);
    missing = path_join(dir, "missing/file");
    under_file = path_join(old, "x");
    assert_true(asprintf(&trailing, "%s/", old) > 0);
    dot = path_join(dir, ".");
    dotdot = path_join(dir, "..");

    const struct {
        const char *path;
        int r;
        const char *step;
    } cases[] = {
        { missing, -ENOENT, "open directory" },
        /* The target is an existing (non-empty) directory: rename refuses, even for root. */
        { sub, -EISDIR, "rename" },
        /* The parent is a regular file. */
        { under_file, -ENOTDIR, "open directory" },
        /* Longer than NAME_MAX: the temporary is made, the rename fails, nothing remains. */
        { toolong, -ENAMETOOLONG, "rename" },
        { trailing, -EINVAL, "parse path" },
        { dot, -EINVAL, "parse path" },
        { dotdot, -EINVAL, "parse path" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        int r = store_write_atomic(cases[i].path, span_from_str("NEW SECRET DATA"), 0600, &err);
        assert_int_equal(r, cases[i].r);
        assert_int_equal(err.code, CERTD_E_STORAGE);
        assert_non_null(strstr(err.msg, cases[i].step));
        /* The path, or as much of it as fits (the long name is cut). */
        assert_non_null(strstr(err.msg, strlen(cases[i].path) < 100 ? cases[i].path : dir));
        /* Messages name the path and step, never the data. */
        assert_null(strstr(err.msg, "SECRET"));
        /* Old state byte for byte, no temporary left anywhere. */
        size_t len = 0;
        char *got = tu_file_get(old, &len);
        assert_int_equal(len, 9);
        assert_memory_equal(got, "OLD\0BYTES", 9);
        free(got);
        assert_file_content(inner, "inner");
        assert_int_equal(tu_count_prefix(dir, ".tmp-"), 0);
        assert_int_equal(tu_count_prefix(sub, ".tmp-"), 0);
        assert_int_equal(tu_count_prefix(dir, ""), 2);
        /* err may be NULL: same result. */
        assert_int_equal(
            store_write_atomic(cases[i].path, span_from_str("NEW SECRET DATA"), 0600, NULL),
            cases[i].r);
    }

    /* Read-only directory: meaningful only when permission checks apply (not root). */
    if (geteuid() != 0) {
        struct certd_err err = { 0 };
        assert_int_equal(chmod(sub, 0555), 0);
        assert_int_equal(store_write_atomic(inner, span_from_str("new"), 0644, &err), -EACCES);
        assert_non_null(strstr(err.msg, "create temporary"));
        assert_int_equal(chmod(sub, 0755), 0);
        assert_file_content(inner, "inner");
    }

    /* Arguments: a mode beyond 0777 (setuid etc.) and a NULL path are programmer errors. */
    assert_int_equal(store_write_atomic(old, span_from_str("x"), 04755, NULL), -EINVAL);
    assert_int_equal(store_write_atomic(NULL, span_from_str("x"), 0644, NULL), -EINVAL);
    assert_int_equal(store_write_atomic(old, span_make(NULL, 3), 0644, NULL), -EINVAL);
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 0);

    free(old);
    free(sub);
    free(inner);
    free(toolong);
    free(missing);
    free(under_file);
    free(trailing);
    free(dot);
    free(dotdot);
    scratch_rm(dir);
}

/* ---- store_write_set ---- */

static void test_write_set(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-set");
    char *cert = path_join(dir, "server.pem");
    char *key = path_join(dir, "server.key");
    struct store_file files[] = {
        { .path = cert, .data = span_from_str("CERT-1"), .mode = STORE_MODE_PUBLIC },
        { .path = key, .data = span_from_str("KEY-1"), .mode = STORE_MODE_SECRET },
    };
    struct certd_err err = { 0 };

    assert_int_equal(store_write_set(files, 2, &err), 0);
    assert_false(err_is_set(&err));
    assert_file_content(cert, "CERT-1");
    assert_file_content(key, "KEY-1");
    assert_int_equal(mode_of(cert), 0644);
    assert_int_equal(mode_of(key), 0600);

    /* Replace both: new contents, no temporaries or backups left. */
    files[0].data = span_from_str("CERT-2");
    files[1].data = span_from_str("KEY-2");
    assert_int_equal(store_write_set(files, 2, &err), 0);
    assert_file_content(cert, "CERT-2");
    assert_file_content(key, "KEY-2");
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 0);
    assert_int_equal(tu_count_prefix(dir, ""), 2);

    /* Nothing to do is success; the same path twice is refused before anything happens. */
    assert_int_equal(store_write_set(NULL, 0, NULL), 0);
    struct store_file twice[] = { files[0], files[0] };
    twice[1].data = span_from_str("OTHER");
    err_clear(&err);
    assert_int_equal(store_write_set(twice, 2, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "named twice"));
    assert_file_content(cert, "CERT-2");

    /*
     * One file under different spellings (certctl csr --key-out same.pem --out ./same.pem):
     * compared by directory identity and name, not by string. Nothing may be written.
     */
    char *sub = path_join(dir, "sub");
    char *lnk = path_join(dir, "lnk");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(symlink("sub", lnk), 0);
    char *via_dotdot = NULL, *via_dot = NULL, *in_sub = path_join(sub, "k.pem"),
         *via_lnk = path_join(lnk, "k.pem");
    assert_true(asprintf(&via_dotdot, "%s/../server.pem", sub) > 0);
    assert_true(asprintf(&via_dot, "%s/./server.pem", dir) > 0);
    const char *pairs[][2] = { { cert, via_dotdot }, { cert, via_dot }, { in_sub, via_lnk } };
    for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
        struct store_file same[] = {
            { .path = pairs[i][0], .data = span_from_str("KEY-X"), .mode = STORE_MODE_SECRET },
            { .path = pairs[i][1], .data = span_from_str("CSR-X"), .mode = STORE_MODE_PUBLIC },
        };
        err_clear(&err);
        assert_int_equal(store_write_set(same, 2, &err), -EINVAL);
        assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
        assert_non_null(strstr(err.msg, "the same file is named twice"));
        assert_non_null(strstr(err.msg, pairs[i][1]));
    }
    assert_file_content(cert, "CERT-2");
    assert_false(exists(in_sub));
    /* Relative to the working directory: "same.pem" and "./same.pem". */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    struct store_file rel[] = {
        { .path = "same.pem", .data = span_from_str("KEY"), .mode = STORE_MODE_SECRET },
        { .path = "./same.pem", .data = span_from_str("CSR"), .mode = STORE_MODE_PUBLIC },
    };
    err_clear(&err);
    assert_int_equal(store_write_set(rel, 2, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_false(exists("same.pem"));
    /* Different names in one directory are fine, also spelled differently. */
    rel[1].path = "./other.pem";
    assert_int_equal(store_write_set(rel, 2, NULL), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_content_at(dir, "same.pem", "KEY");
    assert_content_at(dir, "other.pem", "CSR");

    /* Names recovery acts on cannot be targets; more than STORE_SET_MAX files is refused. */
    static const char *const reserved[] = { ".tmp-x", ".tmpset-x", ".tmpjournal-x", ".journal-x" };
    for (size_t i = 0; i < ELEMENTSOF(reserved); i++) {
        char *rp = path_join(dir, reserved[i]);
        struct store_file one[] = { { .path = rp, .data = span_from_str("x"), .mode = 0600 } };
        err_clear(&err);
        assert_int_equal(store_write_set(one, 1, &err), -EINVAL);
        assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
        assert_non_null(strstr(err.msg, "reserved"));
        assert_false(exists(rp));
        free(rp);
    }
    struct store_file many[STORE_SET_MAX + 1];
    char *many_paths[STORE_SET_MAX + 1];
    for (size_t i = 0; i < ELEMENTSOF(many); i++) {
        char name[32];
        (void)snprintf(name, sizeof(name), "m%zu", i);
        many_paths[i] = path_join(sub, name);
        many[i] =
            (struct store_file){ .path = many_paths[i], .data = span_from_str("m"), .mode = 0644 };
    }
    err_clear(&err);
    assert_int_equal(store_write_set(many, STORE_SET_MAX + 1, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_int_equal(tu_count_prefix(sub, ""), 0);
    /* Exactly STORE_SET_MAX is fine. */
    assert_int_equal(store_write_set(many, STORE_SET_MAX, &err), 0);
    assert_int_equal(tu_count_prefix(sub, ""), STORE_SET_MAX);
    for (size_t i = 0; i < ELEMENTSOF(many); i++) {
        free(many_paths[i]);
    }
    assert_int_equal(tu_count_prefix(dir, ".tmp"), 0);
    assert_int_equal(tu_count_prefix(dir, ".journal"), 0);

    free(via_dotdot);
    free(via_dot);
    free(in_sub);
    free(via_lnk);
    free(sub);
    free(lnk);
    free(cert);
    free(key);
    scratch_rm(dir);
}

static void test_write_set_rollback(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-set-rb");
    char *a = path_join(dir, "a.pem");
    char *fresh = path_join(dir, "fresh.pem");
    char *b = path_join(dir, "b.key");
    char *b_inner = path_join(b, "keep");
    char *missing = path_join(dir, "nodir/c.key");

    file_put(a, "OLD-A\0\xff", 7, 0644);
    /* The second target cannot be renamed over: a non-empty directory. */
    assert_int_equal(mkdir(b, 0700), 0);
    file_put(b_inner, "keep", 4, 0600);

    struct store_file files[] = {
        { .path = a, .data = span_from_str("NEW-A"), .mode = 0644 },
        { .path = b, .data = span_from_str("NEW-B"), .mode = 0600 },
    };
    struct certd_err err = { 0 };
    assert_int_equal(store_write_set(files, 2, &err), -EISDIR);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    /* Found before the commit point, before anything is written: nothing to roll back. */
    assert_non_null(strstr(err.msg, "check target"));
    assert_non_null(strstr(err.msg, b));
    /* The first target is untouched, byte for byte. */
    size_t len = 0;
    char *got = tu_file_get(a, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(got, "OLD-A\0\xff", 7);
    free(got);
    assert_int_equal(mode_of(a), 0644);
    assert_file_content(b_inner, "keep");
    assert_int_equal(tu_count_prefix(dir, ".tmp"), 0);
    assert_int_equal(tu_count_prefix(dir, ".journal"), 0);
    assert_int_equal(tu_count_prefix(dir, ""), 2);

    /* A first target that did not exist before is never created. */
    files[0].path = fresh;
    err_clear(&err);
    assert_int_equal(store_write_set(files, 2, &err), -EISDIR);
    assert_false(exists(fresh));
    assert_int_equal(tu_count_prefix(dir, ".tmp"), 0);

    /* A failure while writing the temporaries changes nothing at all. */
    files[0].path = a;
    files[1].path = missing;
    err_clear(&err);
    assert_int_equal(store_write_set(files, 2, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "open directory"));
    got = tu_file_get(a, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(got, "OLD-A\0\xff", 7);
    free(got);
    assert_int_equal(tu_count_prefix(dir, ".tmp"), 0);
    assert_int_equal(tu_count_prefix(dir, ""), 2);

    /* A read-only directory: the journal cannot be written; nothing changes. */
    if (geteuid() != 0) {
        files[1].path = fresh;
        assert_int_equal(chmod(dir, 0555), 0);
        err_clear(&err);
        assert_int_equal(store_write_set(files, 2, &err), -EACCES);
        assert_non_null(strstr(err.msg, "write journal"));
        assert_int_equal(chmod(dir, 0700), 0);
        assert_false(exists(fresh));
        assert_int_equal(tu_count_prefix(dir, ""), 2);
    }

    free(a);
    free(fresh);
    free(b);
    free(b_inner);
    free(missing);
    scratch_rm(dir);
}

/* ---- crash safety of write sets: a forked child dies at each step, then recovery ---- */

/* The content of dir/name, or NULL when absent (the test's own reader). */
static char *content_or_null(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    char *c = tu_file_get(p, NULL);
    free(p);
    return c;
}

/* dir/name holds want exactly (NULL: does not exist). */
static void assert_state(const char *dir, const char *name, const char *want)
{
    char *got = content_or_null(dir, name);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

/* The points of the set protocol where a forked child "crashes" (_exit(0) from the hook). */
static const enum store_crash_point crash_points[] = {
    STORE_CRASH_AFTER_TEMPS,
    STORE_CRASH_AFTER_COMMIT,
    STORE_CRASH_AFTER_FIRST_RENAME,
    STORE_CRASH_AFTER_RENAMES,
};

/* An operation run in a child that crashes: its result. */
typedef int (*crash_op_fn)(const void *arg);

/*
 * Run op(arg) in a child that "crashes" at point. With STORE_CRASH_NONE the child must
 * complete op instead; with any other point, op returning at all means the crash point was
 * never reached, and the test fails.
 */
static void run_crashing(crash_op_fn op, const void *arg, enum store_crash_point point)
{
    int status = 0;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store_test_crash_at = point;
        int r = op(arg);
        _exit(point == STORE_CRASH_NONE && r == 0 ? 0 : r < 0 ? 2 : 3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

struct write_set_arg {
    const struct store_file *files;
    size_t n;
};

static int op_write_set(const void *arg)
{
    const struct write_set_arg *a = arg;
    return store_write_set(a->files, a->n, NULL);
}

static void write_set_crashing(const struct store_file *files, size_t n,
                               enum store_crash_point point)
{
    const struct write_set_arg a = { .files = files, .n = n };
    run_crashing(op_write_set, &a, point);
}

static void test_write_set_crash(void **state)
{
    (void)state;

    /* old 0: both files exist; 1: only the certificate exists (the key is new). */
    for (int old = 0; old < 2; old++) {
        for (size_t k = 0; k < ELEMENTSOF(crash_points); k++) {
            char *a = scratch_dir("store-crash");
            char *cert = path_join(a, "server.pem");
            char *key = path_join(a, "server.key");
            const char *old_key = old == 0 ? "OLD-KEY\n" : NULL;
            bool is_new = crash_points[k] != STORE_CRASH_AFTER_TEMPS;

            file_put(cert, "OLD-CERT\n", 9, 0644);
            if (old_key) {
                file_put(key, old_key, strlen(old_key), 0600);
            }
            struct store_file files[] = {
                { .path = cert, .data = span_from_str("NEW-CERT\n"), .mode = 0644 },
                { .path = key, .data = span_from_str("NEW-KEY\n"), .mode = 0600 },
            };
            write_set_crashing(files, 2, crash_points[k]);

            /* The crash left its traces: a journal in the directory. */
            assert_true(tu_count_prefix(a, ".journal-") + tu_count_prefix(a, ".tmpjournal-") == 1);
            assert_int_equal(store_recover(a), 0);

            /* Entirely old or entirely new, byte for byte, with the modes asked for. */
            assert_state(a, "server.pem", is_new ? "NEW-CERT\n" : "OLD-CERT\n");
            assert_state(a, "server.key", is_new ? "NEW-KEY\n" : old_key);
            if (is_new) {
                assert_int_equal(mode_of(key), 0600);
                assert_int_equal(mode_of(cert), 0644);
            }
            /* Nothing else is left. */
            assert_int_equal(tu_count_prefix(a, ".tmp"), 0);
            assert_int_equal(tu_count_prefix(a, ".journal"), 0);
            assert_int_equal(tu_count_prefix(a, ""), is_new || old_key ? 2u : 1u);
            /* Recovery is idempotent. */
            assert_int_equal(store_recover(a), 0);
            assert_state(a, "server.pem", is_new ? "NEW-CERT\n" : "OLD-CERT\n");

            free(cert);
            free(key);
            scratch_rm(a);
        }
    }
}

/*
 * A crash after the commit, then a new write before anyone ran store_recover (certctl run
 * again): the new set must win. Replaying the old journal after it would put the old key back
 * next to the new certificate.
 */
static void test_write_set_after_crash(void **state)
{
    (void)state;
    for (size_t k = 0; k < ELEMENTSOF(crash_points); k++) {
        char *dir = scratch_dir("store-stale");
        char *cert = path_join(dir, "server.pem");
        char *key = path_join(dir, "server.key");
        struct store_file files[] = {
            { .path = cert, .data = span_from_str("CERT-A"), .mode = 0644 },
            { .path = key, .data = span_from_str("KEY-A"), .mode = 0600 },
        };
        write_set_crashing(files, 2, crash_points[k]);

        files[0].data = span_from_str("CERT-B");
        files[1].data = span_from_str("KEY-B");
        struct certd_err err = { 0 };
        assert_int_equal(store_write_set(files, 2, &err), 0);
        assert_false(err_is_set(&err));
        assert_int_equal(tu_count_prefix(dir, ""), 2);
        assert_int_equal(store_recover(dir), 0);
        assert_file_content(cert, "CERT-B");
        assert_file_content(key, "KEY-B");
        assert_int_equal(tu_count_prefix(dir, ""), 2);

        free(cert);
        free(key);
        scratch_rm(dir);
    }
}

/*
 * A set spread over two directories is refused before anything is written: recovery of one
 * directory could otherwise replay an old set over newer files of the other.
 */
static void test_write_set_one_dir(void **state)
{
    (void)state;
    char *a = scratch_dir("store-xdev-a");
    char *b = scratch_dir("store-xdev-b");
    char *sub = path_join(a, "sub");
    char *lnk = path_join(b, "to-a");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(symlink(a, lnk), 0);
    char *cert = path_join(a, "server.pem");
    char *key_b = path_join(b, "server.key");
    char *key_sub = path_join(sub, "server.key");
    char *key_via_lnk = path_join(lnk, "server.key");
    file_put(cert, "OLD-CERT", 8, 0644);
    char *before_a = dir_snapshot(a);
    char *before_b = dir_snapshot(b);

    /* Another directory, and a subdirectory: -EXDEV, naming both paths; nothing written. */
    const char *others[] = { key_b, key_sub };
    for (size_t i = 0; i < ELEMENTSOF(others); i++) {
        for (int order = 0; order < 2; order++) {
            struct store_file files[] = {
                { .path = cert, .data = span_from_str("NEW-CERT"), .mode = 0644 },
                { .path = others[i], .data = span_from_str("NEW-KEY"), .mode = 0600 },
            };
            if (order == 1) {
                struct store_file t = files[0];
                files[0] = files[1];
                files[1] = t;
            }
            struct certd_err err = { 0 };
            assert_int_equal(store_write_set(files, 2, &err), -EXDEV);
            assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
            assert_non_null(strstr(err.msg, "one directory"));
            assert_non_null(strstr(err.msg, others[i]));
            assert_int_equal(store_write_set(files, 2, NULL), -EXDEV);
            char *after_a = dir_snapshot(a);
            char *after_b = dir_snapshot(b);
            assert_string_equal(before_a, after_a);
            assert_string_equal(before_b, after_b);
            assert_int_equal(tu_count_prefix(sub, ""), 0);
            free(after_a);
            free(after_b);
        }
    }
    /* The same directory reached through a symlink is one directory: fine. */
    struct store_file same[] = {
        { .path = cert, .data = span_from_str("NEW-CERT"), .mode = 0644 },
        { .path = key_via_lnk, .data = span_from_str("NEW-KEY"), .mode = 0600 },
    };
    assert_int_equal(store_write_set(same, 2, NULL), 0);
    assert_content_at(a, "server.pem", "NEW-CERT");
    assert_content_at(a, "server.key", "NEW-KEY");
    assert_int_equal(tu_count_prefix(b, ""), 1);

    free(before_a);
    free(before_b);
    free(cert);
    free(key_b);
    free(key_sub);
    free(key_via_lnk);
    free(sub);
    free(lnk);
    scratch_rm(b);
    scratch_rm(a);
}

/* The committed journal of dir: its bytes (the test's own reader), or NULL when there is none. */
static char *journal_bytes(const char *dir, size_t *ret_len)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *got = NULL;
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, ".journal-", 9) == 0) {
            char *p = path_join(dir, de->d_name);
            got = tu_file_get(p, ret_len);
            free(p);
        }
    }
    closedir(d);
    return got;
}

/*
 * A crash after the commit, then the whole store directory is moved (a restore, a copy to a
 * new disk): recovery of the new place completes the set there, from plain names, and never
 * writes into a directory that took the old name.
 */
static void test_recover_moved_store(void **state)
{
    (void)state;
    static const enum store_crash_point points[] = {
        STORE_CRASH_AFTER_COMMIT,
        STORE_CRASH_AFTER_FIRST_RENAME,
    };
    for (size_t k = 0; k < ELEMENTSOF(points); k++) {
        char *top = scratch_dir("store-moved");
        char *old = path_join(top, "old");
        char *moved = path_join(top, "moved");
        char *cert = path_join(old, "server.pem");
        char *key = path_join(old, "server.key");
        assert_int_equal(mkdir(old, 0700), 0);
        file_put(cert, "OLD-CERT", 8, 0644);
        file_put(key, "OLD-KEY", 7, 0600);
        struct store_file files[] = {
            { .path = cert, .data = span_from_str("NEW-CERT"), .mode = 0644 },
            { .path = key, .data = span_from_str("NEW-KEY"), .mode = 0600 },
        };
        write_set_crashing(files, 2, points[k]);

        /* The journal names no directory: no '/' anywhere in it. */
        size_t len = 0;
        char *j = journal_bytes(old, &len);
        assert_non_null(j);
        assert_true(len > 0);
        assert_null(memchr(j, '/', len));
        free(j);

        assert_int_equal(rename(old, moved), 0);
        assert_int_equal(mkdir(old, 0700), 0); /* a new directory under the old name */
        assert_int_equal(store_recover(moved), 0);
        assert_content_at(moved, "server.pem", "NEW-CERT");
        assert_content_at(moved, "server.key", "NEW-KEY");
        assert_int_equal(tu_count_prefix(moved, ""), 2);
        assert_int_equal(tu_count_prefix(old, ""), 0);
        assert_int_equal(store_recover(old), 0);
        assert_int_equal(tu_count_prefix(old, ""), 0);

        free(cert);
        free(key);
        free(old);
        free(moved);
        scratch_rm(top);
    }
}

/*
 * A crash after a set's commit, then a single write to one of its targets before anyone ran
 * store_recover (the daemon replacing a certificate at start-up): the newer single write must
 * win. The set is completed before it, never replayed after it.
 */
static void test_write_atomic_after_crash(void **state)
{
    (void)state;
    for (size_t k = 0; k < ELEMENTSOF(crash_points); k++) {
        for (int target = 0; target < 2; target++) {
            char *dir = scratch_dir("store-stale1");
            char *cert = path_join(dir, "server.pem");
            char *key = path_join(dir, "server.key");
            bool is_committed = crash_points[k] != STORE_CRASH_AFTER_TEMPS;
            file_put(cert, "CERT-0", 6, 0644);
            file_put(key, "KEY-0", 5, 0600);
            struct store_file files[] = {
                { .path = cert, .data = span_from_str("CERT-A"), .mode = 0644 },
                { .path = key, .data = span_from_str("KEY-A"), .mode = 0600 },
            };
            write_set_crashing(files, 2, crash_points[k]);

            /* The single write, into either target of the interrupted set. */
            struct certd_err err = { 0 };
            assert_int_equal(
                store_write_atomic(target == 0 ? cert : key, span_from_str("NEWEST"), 0600, &err),
                0);
            assert_false(err_is_set(&err));
            /* No committed journal outlives it. */
            assert_int_equal(tu_count_prefix(dir, ".journal-"), 0);
            assert_int_equal(store_recover(dir), 0);
            assert_state(dir, "server.pem",
                         target == 0 ? "NEWEST" : (is_committed ? "CERT-A" : "CERT-0"));
            assert_state(dir, "server.key",
                         target == 1 ? "NEWEST" : (is_committed ? "KEY-A" : "KEY-0"));
            assert_int_equal(tu_count_prefix(dir, ""), 2);

            free(cert);
            free(key);
            scratch_rm(dir);
        }
    }
}

/* Write a journal by hand: fields are NUL-terminated, count of them given. */
static void journal_put(const char *dir, const char *name, const char *const *fields, size_t n)
{
    char *p = path_join(dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(fields[i]) + 1;
        assert_int_equal(write(fd, fields[i], len), (ssize_t)len);
    }
    assert_int_equal(close(fd), 0);
    free(p);
}

#define JID "0123456789abcdef"

/*
 * Journals that are corrupt or hostile are never acted on: recovery sets a committed one aside
 * as ".journal-J.broken" (with its temporaries), returns 0, and writes go on. Nothing outside
 * the directory is ever touched.
 */
static void test_recover_hostile_journals(void **state)
{
    (void)state;
    char *top = scratch_dir("store-hostile");
    char *dir = path_join(top, "store");
    char *victim = path_join(top, "victim");
    char *victim_dir = path_join(top, "vdir");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(mkdir(victim_dir, 0700), 0);
    file_put(victim, "VICTIM", 6, 0644);
    char *real_top = realpath(top, NULL);
    assert_non_null(real_top);
    char *abs_victim = NULL;
    assert_true(asprintf(&abs_victim, "%s/victim", real_top) > 0);
    char *jp = path_join(dir, ".journal-" JID);
    char *broken = path_join(dir, ".journal-" JID ".broken");
    char *tp = path_join(dir, ".tmpset-" JID "-0");
    const char *M = "certd-store-journal-2";
    const char *T = ".tmpset-" JID "-0";
    const char *T1 = ".tmpset-" JID "-1";
    const char *E = "end";

    struct {
        const char *f[8];
        size_t n;
    } bad[] = {
        { { M, "1", "../.tmpset-" JID "-0", "x", E }, 5 },       /* temporary outside */
        { { M, "1", T, "../victim", E }, 5 },                    /* target outside: '..' */
        { { M, "1", T, abs_victim, E }, 5 },                     /* absolute path */
        { { M, "1", T, "vdir/victim", E }, 5 },                  /* target with a '/' */
        { { M, "1", T, "..", E }, 5 },                           /* not a name */
        { { M, "1", T, ".", E }, 5 },                            /* not a name */
        { { M, "1", T, "", E }, 5 },                             /* empty name */
        { { M, "1", ".tmpset-fedcba9876543210-0", "x", E }, 5 }, /* another journal's */
        { { M, "1", ".tmp-x", "x", E }, 5 },                     /* not a set temporary */
        { { M, "1", T, ".journal-" JID, E }, 5 },                /* reserved target */
        { { M, "2", T, "x", T1, "x", E }, 7 },                   /* one target twice */
        { { M, "2", T, "x", E }, 5 },                            /* count above entries */
        { { M, "0", E }, 3 },                                    /* count 0 */
        { { M, "33", T, "x", E }, 5 },                           /* over STORE_SET_MAX */
        { { M, "01", T, "x", E }, 5 },                           /* not our number */
        { { M, "1", T, "x" }, 4 },                               /* no end: cut short */
        { { M, "1", T, "x", E, "more" }, 6 },                    /* trailing field */
        { { "certd-store-journal-3", "1", T, "x", E }, 5 },      /* unknown version */
        /* Version 1 named directories, absolute ones included: never replayed any more. */
        { { "certd-store-journal-1", "1", ".", T, "x", E }, 6 },
        { { "certd-store-journal-1", "1", real_top, T, "victim", E }, 6 },
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        journal_put(dir, ".journal-" JID, bad[i].f, bad[i].n);
        file_put_str(dir, T, "NEW");
        assert_int_equal(store_recover(dir), 0);
        /* Set aside for a human, with its temporary; nothing renamed anywhere. */
        assert_false(exists(jp));
        assert_true(exists(broken));
        assert_int_equal(tu_count_prefix(dir, ""), 2);
        assert_content_at(dir, T, "NEW");
        assert_content_at(top, "victim", "VICTIM");
        assert_int_equal(tu_count_prefix(top, ""), 3);
        assert_int_equal(tu_count_prefix(victim_dir, ""), 0);
        assert_int_equal(unlink(broken), 0);
    }
    /* Not a NUL at the end of the bytes: no field may run off the buffer. */
    file_put(jp,
             "certd-store-journal-2\0"
             "1\0x",
             25, 0600);
    assert_int_equal(store_recover(dir), 0);
    assert_true(exists(broken));
    assert_int_equal(unlink(broken), 0);

    /*
     * Well formed, but the directory is not as a crash of ours leaves it: a temporary that is
     * a symlink (to a file outside), a target that is a directory. Set aside, not acted on.
     */
    const char *one[] = { M, "1", T, "cert.pem", E };
    assert_int_equal(unlink(tp), 0);
    assert_int_equal(symlink("../victim", tp), 0);
    journal_put(dir, ".journal-" JID, one, ELEMENTSOF(one));
    assert_int_equal(store_recover(dir), 0);
    assert_true(exists(broken));
    assert_false(exists(jp));
    char *cert = path_join(dir, "cert.pem");
    assert_false(exists(cert));
    assert_content_at(top, "victim", "VICTIM");
    assert_int_equal(unlink(broken), 0);
    assert_int_equal(unlink(tp), 0);
    assert_int_equal(mkdir(cert, 0700), 0);
    file_put_str(dir, T, "NEW");
    journal_put(dir, ".journal-" JID, one, ELEMENTSOF(one));
    assert_int_equal(store_recover(dir), 0);
    assert_true(exists(broken));
    assert_content_at(dir, T, "NEW");
    assert_int_equal(rmdir(cert), 0);
    assert_int_equal(unlink(broken), 0);

    /* A set-aside journal never blocks a write, nor is it replayed by one. */
    journal_put(dir, ".journal-" JID, bad[1].f, bad[1].n);
    struct certd_err err = { 0 };
    assert_int_equal(store_write_atomic(cert, span_from_str("MINE"), 0644, &err), 0);
    assert_false(err_is_set(&err));
    assert_content_at(dir, "cert.pem", "MINE");
    assert_true(exists(broken));
    assert_content_at(dir, T, "NEW");
    assert_content_at(top, "victim", "VICTIM");
    assert_int_equal(unlink(broken), 0);

    /* A well-formed journal is replayed (plain names, relative to its own directory). */
    journal_put(dir, ".journal-" JID, one, ELEMENTSOF(one));
    assert_int_equal(store_recover(dir), 0);
    assert_content_at(dir, "cert.pem", "NEW");
    assert_int_equal(tu_count_prefix(dir, ""), 1);
    /* A target that is a symlink to a file outside: the link is replaced, never followed. */
    assert_int_equal(unlink(cert), 0);
    assert_int_equal(symlink("../victim", cert), 0);
    file_put_str(dir, T, "NEW2");
    journal_put(dir, ".journal-" JID, one, ELEMENTSOF(one));
    assert_int_equal(store_recover(dir), 0);
    struct stat st;
    assert_int_equal(lstat(cert, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_content_at(dir, "cert.pem", "NEW2");
    assert_content_at(top, "victim", "VICTIM");
    assert_int_equal(tu_count_prefix(dir, ""), 1);

    /*
     * Not committed: an uncommitted journal cut short is removed with its local temporaries;
     * a set temporary of another journal stays; plain temporaries go; a symlink named like
     * a journal is not ours and stays; a directory named like a temporary stays.
     */
    const char *torn[] = { M, "1", T };
    journal_put(dir, ".tmpjournal-" JID, torn, ELEMENTSOF(torn));
    file_put_str(dir, T, "NEW");
    file_put_str(dir, ".tmpset-fedcba9876543210-0", "FOREIGN");
    file_put_str(dir, ".tmp-cert.pem-0011223344556677", "PLAIN");
    char *sl = path_join(dir, ".journal-1111111111111111");
    assert_int_equal(symlink("../victim", sl), 0);
    char *td = path_join(dir, ".tmp-dir");
    assert_int_equal(mkdir(td, 0700), 0);
    assert_int_equal(store_recover(dir), 0);
    assert_content_at(dir, ".tmpset-fedcba9876543210-0", "FOREIGN");
    assert_true(exists(sl));
    assert_true(exists(td));
    assert_content_at(dir, "cert.pem", "NEW2");
    assert_int_equal(tu_count_prefix(dir, ""), 4);
    assert_content_at(top, "victim", "VICTIM");

    /*
     * An uncommitted journal that parses: its temporaries go (a symlink is unlinked, never
     * followed); the targets keep their old content.
     */
    const char *unc[] = { M, "2", T, "cert.pem", T1, "key.pem", E };
    journal_put(dir, ".tmpjournal-" JID, unc, ELEMENTSOF(unc));
    file_put_str(dir, T, "NEW3");
    char *tp1 = path_join(dir, T1);
    assert_int_equal(symlink("../victim", tp1), 0);
    assert_int_equal(store_recover(dir), 0);
    assert_false(exists(tp1));
    assert_content_at(dir, "cert.pem", "NEW2");
    assert_content_at(top, "victim", "VICTIM");
    assert_int_equal(tu_count_prefix(dir, ".tmpjournal"), 0);
    assert_int_equal(tu_count_prefix(dir, T), 0);

    /* store_cleanup_tmp is the same function under its older name. */
    file_put_str(dir, ".tmp-x", "x");
    assert_int_equal(store_cleanup_tmp(dir), 0);
    assert_int_equal(tu_count_prefix(dir, ".tmp-x"), 0);
    assert_int_equal(store_recover(NULL), -EINVAL);

    free(tp1);
    free(cert);
    free(sl);
    free(td);
    free(jp);
    free(tp);
    free(broken);
    free(abs_victim);
    free(real_top);
    free(victim);
    free(victim_dir);
    free(dir);
    scratch_rm(top);
}

/* ---- store_read_file ---- */

static void test_read_file(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-read");
    char *p = path_join(dir, "f");
    char *lnk = path_join(dir, "lnk");
    char *fifo = path_join(dir, "fifo");
    char *missing = path_join(dir, "missing");
    static uint8_t sentinel_buf[] = "sentinel";
    uint8_t *const sentinel = sentinel_buf;
    uint8_t *buf = sentinel;
    size_t len = 777;

    file_put(p, "0123456789", 10, 0644);
    /* Exactly max: fine, NUL-terminated, the NUL not counted. */
    assert_int_equal(store_read_file(p, 10, false, &buf, &len), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "0123456789", 10);
    assert_int_equal(buf[10], '\0');
    free(buf);
    /* max + 1 bytes present: too large; outputs untouched. */
    buf = sentinel;
    len = 777;
    assert_int_equal(store_read_file(p, 9, false, &buf, &len), -E2BIG);
    assert_ptr_equal(buf, sentinel);
    assert_int_equal(len, 777);
    /* Empty file with max 0. */
    char *empty = path_join(dir, "empty");
    file_put(empty, "", 0, 0644);
    assert_int_equal(store_read_file(empty, 0, false, &buf, &len), 0);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], '\0');
    free(buf);
    free(empty);
    /* Embedded NULs are data. */
    file_put(p, "a\0b", 3, 0644);
    assert_int_equal(store_read_file(p, 100, true, &buf, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "a\0b", 3);
    free(buf);

    /* A file larger than the first buffer: growth, and the N / N+1 limit around it. */
    size_t big = 3 * 4096 + 123;
    char *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++) {
        data[i] = (char)('a' + i % 26);
    }
    file_put(p, data, big, 0644);
    assert_int_equal(store_read_file(p, big, false, &buf, &len), 0);
    assert_int_equal(len, big);
    assert_memory_equal(buf, data, big);
    free(buf);
    buf = sentinel;
    assert_int_equal(store_read_file(p, big - 1, false, &buf, &len), -E2BIG);
    assert_ptr_equal(buf, sentinel);
    assert_int_equal(store_read_file(p, SIZE_MAX / 2, false, &buf, &len), 0);
    assert_int_equal(len, big);
    free(buf);
    free(data);

    buf = sentinel;
    len = 777;
    assert_int_equal(store_read_file(missing, 100, false, &buf, &len), -ENOENT);
    /* A symlink: followed unless nofollow, then ELOOP. */
    assert_int_equal(symlink("f", lnk), 0);
    assert_int_equal(store_read_file(lnk, big, true, &buf, &len), -ELOOP);
    assert_ptr_equal(buf, sentinel);
    assert_int_equal(store_read_file(lnk, big, false, &buf, &len), 0);
    assert_int_equal(len, big);
    free(buf);
    buf = sentinel;
    len = 777;
    /* A directory, a FIFO (must not block): not regular files. */
    assert_int_equal(store_read_file(dir, 100, false, &buf, &len), -EISDIR);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(store_read_file(fifo, 100, false, &buf, &len), -EINVAL);
    assert_ptr_equal(buf, sentinel);
    assert_int_equal(len, 777);
    /* max so large that max + 2 overflows: refused as an argument error. */
    assert_int_equal(store_read_file(p, SIZE_MAX, false, &buf, &len), -EINVAL);
    assert_int_equal(store_read_file(NULL, 1, false, &buf, &len), -EINVAL);

    free(p);
    free(lnk);
    free(fifo);
    free(missing);
    scratch_rm(dir);
}

/* store_read_file_err: the same reads, each failure with its errno, code and message. */
static void test_read_file_err(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-read-err");
    char *p = path_join(dir, "f");
    char *lnk = path_join(dir, "lnk");
    char *fifo = path_join(dir, "fifo");
    char *missing = path_join(dir, "missing");
    file_put(p, "0123456789", 10, 0600);
    assert_int_equal(symlink("f", lnk), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const struct {
        const char *path;
        size_t max;
        bool nofollow;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { p, 10, true, 0, CERTD_E_OK, NULL },
        { lnk, 10, false, 0, CERTD_E_OK, NULL },
        { missing, 10, false, -ENOENT, CERTD_E_NOT_FOUND, "does not exist" },
        { p, 9, false, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "larger than 9 bytes" },
        { dir, 10, false, -EISDIR, CERTD_E_STORAGE, "cannot read" },
        { lnk, 10, true, -ELOOP, CERTD_E_STORAGE, "cannot read" },
        { fifo, 10, false, -EINVAL, CERTD_E_STORAGE, "cannot read" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        static uint8_t sentinel_buf[] = "sentinel";
        struct store_buf b = { .p = sentinel_buf, .len = 777 };
        struct certd_err err = { 0 };
        print_message("case %zu: %s\n", i, cases[i].path);
        int r = store_read_file_err(cases[i].path, cases[i].max, cases[i].nofollow, &b, &err);
        assert_int_equal(r, cases[i].r);
        assert_int_equal(err.code, cases[i].code);
        if (r == 0) {
            assert_int_equal(b.len, 10);
            assert_memory_equal(b.p, "0123456789", 11);
            store_buf_done(&b);
            assert_null(b.p);
            assert_int_equal(b.len, 0);
            continue;
        }
        /* Nothing written on failure; the message names the file. */
        assert_ptr_equal(b.p, sentinel_buf);
        assert_int_equal(b.len, 777);
        assert_non_null(strstr(err.msg, cases[i].word));
        assert_non_null(strstr(err.msg, cases[i].path));
    }
    /* A zeroed buffer is fine to clean up; so is one never filled. */
    struct store_buf none = { .p = NULL };
    store_buf_done(&none);
    assert_int_equal(store_read_file_err(NULL, 1, false, &none, NULL), -EINVAL);
    free(p);
    free(lnk);
    free(fifo);
    free(missing);
    scratch_rm(dir);
}

/*
 * A buffer store_read_file frees itself is wiped first. White-box: glibc hands a freed small
 * chunk straight back to the next malloc of that size, so the bytes it held are visible there
 * (all but the first 16, which its free list overwrites). /proc/self/status reports size 0,
 * so the reader fills its buffer before it finds the file too large: the -E2BIG path after
 * reading. Under ASan or valgrind the chunk is not reused and the check passes trivially.
 */
static void test_read_file_wipes(void **state)
{
    (void)state;
    enum { MAX = 63 };
    uint8_t want[MAX + 1];
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        skip();
    }
    /* "Name:\ttest-store\nUmask:\t...\nState:\tR (running)\n": the same on every read. */
    assert_int_equal(read(fd, want, sizeof(want)), (ssize_t)sizeof(want));
    assert_int_equal(close(fd), 0);

    assert_int_equal(store_read_file("/proc/self/status", MAX, false, &buf, &len), -E2BIG);
    /* The reader's buffer was MAX + 2 bytes (MAX + 1 read, room for the NUL). */
    uint8_t *again = malloc(MAX + 2);
    assert_non_null(again);
    mark_defined(again, MAX + 2);
    assert_memory_not_equal(again + 16, want + 16, sizeof(want) - 16);
    free(again);
}

/* ---- files that decide who may do what ---- */

/*
 * store_read_trusted: every refusal of its contract with errno, code and a word of the
 * message, both masks its callers use (077 for the users file, 022 for pin stores), and
 * nothing written on failure. Owners other than us and root need root to make (below).
 */
static void test_read_trusted(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-trusted");
    char *p = path_join(dir, "f");
    char *lnk = path_join(dir, "lnk");
    char *fifo = path_join(dir, "fifo");
    char *missing = path_join(dir, "missing");
    char *wide = path_join(dir, "wide");
    char *open_ = path_join(dir, "readable");
    file_put(p, "0123456789", 10, 0600);
    assert_int_equal(chmod(p, 0600), 0);
    file_put(wide, "0123456789", 10, 0600);
    assert_int_equal(chmod(wide, 0620), 0);
    file_put(open_, "0123456789", 10, 0600);
    assert_int_equal(chmod(open_, 0644), 0);
    assert_int_equal(symlink("f", lnk), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const struct {
        const char *path;
        const char *what;
        size_t max;
        mode_t forbid;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { p, "users file", 10, 077, 0, CERTD_E_OK, NULL },
        { open_, "pin store", 10, 022, 0, CERTD_E_OK, NULL },
        { missing, "users file", 10, 077, -ENOENT, CERTD_E_NOT_FOUND, "users file" },
        { missing, NULL, 10, 077, -ENOENT, CERTD_E_NOT_FOUND, "file" },
        { lnk, "pin store", 10, 022, -ELOOP, CERTD_E_STORAGE, "symbolic link" },
        { fifo, "pin store", 10, 022, -EPERM, CERTD_E_POLICY_FORBIDS, "not a regular file" },
        { dir, "users file", 10, 077, -EPERM, CERTD_E_POLICY_FORBIDS, "not a regular file" },
        { open_, "users file", 10, 077, -EPERM, CERTD_E_POLICY_FORBIDS,
          "mode 644: group or others have access; run chmod 600" },
        { wide, "users file", 10, 077, -EPERM, CERTD_E_POLICY_FORBIDS, "have access" },
        { wide, "pin store", 10, 022, -EPERM, CERTD_E_POLICY_FORBIDS,
          "mode 620: group or others may change it; run chmod 600" },
        { p, "users file", 9, 077, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "larger than 9 bytes" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        static uint8_t sentinel_buf[] = "sentinel";
        struct store_buf b = { .p = sentinel_buf, .len = 777 };
        struct certd_err err = { 0 };
        print_message("case %zu: %s\n", i, cases[i].path);
        int r = store_read_trusted(cases[i].path, cases[i].what, cases[i].max, cases[i].forbid, &b,
                                   &err);
        assert_int_equal(r, cases[i].r);
        assert_int_equal(err.code, cases[i].code);
        if (r == 0) {
            assert_int_equal(b.len, 10);
            assert_memory_equal(b.p, "0123456789", 11);
            store_buf_done(&b);
            continue;
        }
        assert_ptr_equal(b.p, sentinel_buf);
        assert_int_equal(b.len, 777);
        if (!strstr(err.msg, cases[i].word) || !strstr(err.msg, cases[i].path)) {
            fail_msg("case %zu: \"%s\"", i, err.msg);
        }
    }
    if (geteuid() == 0) {
        /* root's files are trusted too; another uid's are not */
        struct store_buf b = { .p = NULL };
        struct certd_err err = { 0 };
        assert_int_equal(chown(p, 4242, 4242), 0);
        assert_int_equal(store_read_trusted(p, "x", 10, 077, &b, &err), -EPERM);
        assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
        assert_non_null(strstr(err.msg, "owned by uid 4242, not by uid 0 or root"));
        assert_null(b.p);
    }
    struct store_buf none = { .p = NULL };
    assert_int_equal(store_read_trusted(NULL, "x", 1, 077, &none, NULL), -EINVAL);
    assert_int_equal(store_read_trusted(p, "x", 1, 01000, &none, NULL), -EINVAL);
    free(open_);
    free(wide);
    free(p);
    free(lnk);
    free(fifo);
    free(missing);
    scratch_rm(dir);
}

/*
 * store_check_writer: ours is fine, another uid's file or (no file yet) the nearest existing
 * directory of another uid is refused, a sticky one is not. Other uids need root.
 */
static void test_check_writer(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-writer");
    char *mine = path_join(dir, "mine");
    char *missing = path_join(dir, "a/b/c");
    struct certd_err err = { 0 };

    file_put(mine, "x", 1, 0600);
    assert_int_equal(store_check_writer(mine, &err), 0);
    assert_int_equal(store_check_writer(missing, &err), 0);
    assert_int_equal(store_check_writer("relative-missing/x", &err), 0);
    assert_int_equal(store_check_writer("/", &err), 0);
    assert_false(err_is_set(&err));
    assert_int_equal(store_check_writer(NULL, NULL), -EINVAL);

    if (geteuid() == 0) {
        const uid_t other = 65534;
        assert_int_equal(chown(mine, other, other), 0);
        assert_int_equal(store_check_writer(mine, &err), -EPERM);
        assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
        assert_non_null(strstr(err.msg, "mine is owned by uid 65534: run this as that user"));

        char *theirs = path_join(dir, "theirs");
        char *deep = path_join(dir, "theirs/x/y/file");
        assert_int_equal(mkdir(theirs, 0700), 0);
        assert_int_equal(chown(theirs, other, other), 0);
        err_clear(&err);
        assert_int_equal(store_check_writer(deep, &err), -EPERM);
        assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
        assert_non_null(strstr(err.msg, "theirs is owned by uid 65534"));
        assert_non_null(strstr(err.msg, "sudo -u"));

        assert_int_equal(chmod(theirs, 01777), 0);
        err_clear(&err);
        assert_int_equal(store_check_writer(deep, &err), 0);
        assert_false(err_is_set(&err));
        free(deep);
        free(theirs);
    }
    free(missing);
    free(mine);
    scratch_rm(dir);
}

/* ---- store_mkdir_p ---- */

static void test_mkdir_p(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-mkdir");
    char *nested = path_join(dir, "a/b/c");
    char *a = path_join(dir, "a");
    char *file = path_join(dir, "file");
    char *over = path_join(dir, "file/sub/x");
    char *slashes = NULL;

    assert_int_equal(store_mkdir_p(nested, STORE_MODE_DIR), 0);
    struct stat st;
    assert_int_equal(stat(nested, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(mode_of(a), 0700);
    /* Again: everything exists, nothing changes. */
    assert_int_equal(store_mkdir_p(nested, STORE_MODE_DIR), 0);
    /* Repeated and trailing slashes. */
    assert_true(asprintf(&slashes, "%s//a///b/d/", dir) > 0);
    assert_int_equal(store_mkdir_p(slashes, STORE_MODE_DIR), 0);
    assert_int_equal(stat(slashes, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* A component (or the whole path) that is a regular file. */
    file_put(file, "f", 1, 0644);
    assert_int_equal(store_mkdir_p(over, STORE_MODE_DIR), -ENOTDIR);
    assert_int_equal(store_mkdir_p(file, STORE_MODE_DIR), -ENOTDIR);
    assert_file_content(file, "f");
    assert_int_equal(store_mkdir_p("", STORE_MODE_DIR), -EINVAL);
    assert_int_equal(store_mkdir_p(NULL, STORE_MODE_DIR), -EINVAL);
    /* A symlink to a directory is a fine existing component. */
    char *lnk = path_join(dir, "lnk");
    char *via = path_join(dir, "lnk/e");
    assert_int_equal(symlink("a", lnk), 0);
    assert_int_equal(store_mkdir_p(via, STORE_MODE_DIR), 0);
    char *real = path_join(dir, "a/e");
    assert_int_equal(stat(real, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /*
     * The final directory holds keys: one that exists must not be writable by group or
     * others (-EPERM, nothing changed), whatever the mode asked for. Parents may be.
     */
    char *open_dir = path_join(dir, "open");
    char *under_open = path_join(dir, "open/keys");
    assert_int_equal(mkdir(open_dir, 0700), 0);
    static const mode_t unsafe[] = { 0770, 0707, 0777, 01777, 0720 };
    for (size_t i = 0; i < ELEMENTSOF(unsafe); i++) {
        assert_int_equal(chmod(open_dir, unsafe[i]), 0);
        assert_int_equal(store_mkdir_p(open_dir, STORE_MODE_DIR), -EPERM);
        assert_int_equal(mode_of(open_dir), unsafe[i]);
    }
    /* A group/world-writable parent is not the key directory itself. */
    assert_int_equal(store_mkdir_p(under_open, STORE_MODE_DIR), 0);
    assert_int_equal(mode_of(under_open), 0700);
    /* Readable by others is fine (0755), writable is not. */
    assert_int_equal(chmod(open_dir, 0755), 0);
    assert_int_equal(store_mkdir_p(open_dir, STORE_MODE_DIR), 0);
    /* A mode with group/other write bits would make a directory we then refuse. */
    char *fresh = path_join(dir, "fresh");
    assert_int_equal(store_mkdir_p(fresh, 0770), -EINVAL);
    assert_int_equal(store_mkdir_p(fresh, 0702), -EINVAL);
    assert_false(exists(fresh));
    /* Owned by someone else (only root can set that up). */
    if (geteuid() == 0) {
        assert_int_equal(chown(open_dir, 65534, 65534), 0);
        assert_int_equal(store_mkdir_p(open_dir, STORE_MODE_DIR), -EPERM);
        assert_int_equal(chown(open_dir, 0, 0), 0);
    }
    free(fresh);
    free(open_dir);
    free(under_open);

    free(real);
    free(lnk);
    free(via);
    free(nested);
    free(a);
    free(file);
    free(over);
    free(slashes);
    scratch_rm(dir);
}

/* ---- authority directories ---- */

static void test_authority_round_trip(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-rt");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    STACK_OF(X509) *sk = stack_of(root, inter);
    char **ids = NULL;
    char want_root[65], want_inter[65];
    struct certd_err err = { 0 };

    expected_id(root, want_root);
    expected_id(inter, want_inter);
    /* authority_cert_id names a certificate as the directory will, before any write. */
    char cid[AUTHORITY_ID_LEN + 1];
    assert_int_equal(authority_cert_id(NULL, NULL, root, cid), 0);
    assert_string_equal(cid, want_root);
    assert_int_equal(strlen(cid), AUTHORITY_ID_LEN);
    assert_int_equal(authority_cert_id(NULL, NULL, inter, cid), 0);
    assert_string_equal(cid, want_inter);
    assert_int_equal(authority_cert_id(NULL, NULL, NULL, cid), -EINVAL);
    assert_int_equal(authority_dir_add(dir, sk, &ids, &err), 0);
    assert_false(err_is_set(&err));
    assert_string_equal(ids[0], want_root);
    assert_string_equal(ids[1], want_inter);
    /* Files by fingerprint, 0644, holding the PEM of exactly that certificate. */
    for (size_t i = 0; i < 2; i++) {
        char name[80];
        (void)snprintf(name, sizeof(name), "%s.pem", ids[i]);
        char *p = path_join(dir, name);
        assert_cert_file(p, i == 0 ? root : inter);
        free(p);
    }
    /* Two certificates, two links, no temporaries. */
    assert_int_equal(tu_count_prefix(dir, ""), 4);
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 0);

    /* Load: sorted by id, the same certificates, ids parallel. */
    STACK_OF(X509) *loaded = NULL;
    char **lids = NULL;
    size_t n = 0;
    assert_int_equal(authority_dir_load(NULL, NULL, dir, &loaded, &lids, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(sk_X509_num(loaded), 2);
    assert_true(strcmp(lids[0], lids[1]) < 0);
    for (size_t i = 0; i < 2; i++) {
        X509 *want = strcmp(lids[i], want_root) == 0 ? root : inter;
        assert_true(strcmp(lids[i], want_root) == 0 || strcmp(lids[i], want_inter) == 0);
        assert_int_equal(X509_cmp(sk_X509_value(loaded, (int)i), want), 0);
    }
    sk_X509_pop_free(loaded, X509_free);
    strv_free_n(lids, n);

    /* Remove one: gone from load, its link gone too. */
    assert_int_equal(authority_dir_remove(dir, want_root, &err), 0);
    assert_int_equal(authority_dir_load(NULL, NULL, dir, &loaded, NULL, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(X509_cmp(sk_X509_value(loaded, 0), inter), 0);
    sk_X509_pop_free(loaded, X509_free);
    assert_int_equal(tu_count_prefix(dir, ""), 2);
    /* Again: not found. */
    err_clear(&err);
    assert_int_equal(authority_dir_remove(dir, want_root, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "not found"));
    assert_non_null(strstr(err.msg, want_root));

    /* ret_ids is optional; the _ex form with an explicit (default) context works the same. */
    sk_X509_pop_free(sk, X509_free);
    sk = stack_of(root, NULL);
    assert_int_equal(authority_dir_add_ex(NULL, NULL, dir, sk, 0, NULL, &err), 0);
    assert_int_equal(authority_dir_remove_ex(NULL, NULL, dir, want_root, &err), 0);

    /* An empty stack is refused. */
    STACK_OF(X509) *none = sk_X509_new_null();
    err_clear(&err);
    assert_int_equal(authority_dir_add(dir, none, NULL, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_NO_CERT);
    assert_non_null(strstr(err.msg, "no certificate"));
    sk_X509_free(none);
    /* A missing directory. */
    char *nodir = path_join(dir, "nodir");
    err_clear(&err);
    assert_int_equal(authority_dir_add(nodir, sk, NULL, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    assert_non_null(strstr(err.msg, nodir));
    assert_int_equal(authority_dir_load(NULL, NULL, nodir, &loaded, NULL, &n), -ENOENT);
    free(nodir);

    strv_free_n(ids, 2);
    sk_X509_pop_free(sk, X509_free);
    X509_free(root);
    X509_free(inter);
    scratch_rm(dir);
}

static void test_authority_duplicates_and_ids(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-dup");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    STACK_OF(X509) *sk = stack_of(root, NULL);
    struct certd_err err = { 0 };
    char id[65];

    expected_id(root, id);
    assert_int_equal(authority_dir_add(dir, sk, NULL, &err), 0);
    char *before = dir_snapshot(dir);

    /* The same certificate again: refused, directory unchanged. */
    char **ids = (char **)0x1;
    assert_int_equal(authority_dir_add(dir, sk, &ids, &err), -EEXIST);
    assert_int_equal(err.code, CERTD_E_DUPLICATE);
    assert_non_null(strstr(err.msg, "already"));
    assert_non_null(strstr(err.msg, id));
    assert_ptr_equal(ids, (char **)0x1);
    char *after = dir_snapshot(dir);
    assert_string_equal(before, after);
    free(after);

    /* A new one together with an existing one: nothing is added (validated before writing). */
    sk_X509_pop_free(sk, X509_free);
    sk = stack_of(inter, root);
    err_clear(&err);
    assert_int_equal(authority_dir_add(dir, sk, NULL, &err), -EEXIST);
    assert_int_equal(err.code, CERTD_E_DUPLICATE);
    after = dir_snapshot(dir);
    assert_string_equal(before, after);
    free(after);

    /* The same new certificate twice in one call. */
    sk_X509_pop_free(sk, X509_free);
    sk = stack_of(inter, inter);
    err_clear(&err);
    assert_int_equal(authority_dir_add(dir, sk, NULL, &err), -EEXIST);
    assert_int_equal(err.code, CERTD_E_DUPLICATE);
    assert_non_null(strstr(err.msg, "twice"));
    after = dir_snapshot(dir);
    assert_string_equal(before, after);
    free(after);

    /* Ids that are not exactly 64 lowercase hex digits never reach the file system. */
    char upper[65], short63[64], long65[66], nonhex[65], withsuffix[70];
    memcpy(upper, id, sizeof(upper));
    for (size_t i = 0; i < 64; i++) {
        if (upper[i] >= 'a' && upper[i] <= 'f') {
            upper[i] = (char)(upper[i] - 'a' + 'A');
        }
    }
    assert_string_not_equal(upper, id); /* a SHA-256 without a letter is not credible */
    memcpy(short63, id, 63);
    short63[63] = '\0';
    memcpy(long65, id, 64);
    long65[64] = '0';
    long65[65] = '\0';
    memcpy(nonhex, id, sizeof(nonhex));
    nonhex[10] = 'g';
    (void)snprintf(withsuffix, sizeof(withsuffix), "%s.pem", id);
    const char *bad[] = { "../etc/passwd",
                          upper,
                          short63,
                          long65,
                          nonhex,
                          withsuffix,
                          "",
                          "../../../../../../../../../../../../../../../../../../../../../../x" };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        err_clear(&err);
        assert_int_equal(authority_dir_remove(dir, bad[i], &err), -EINVAL);
        assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
        assert_non_null(strstr(err.msg, "invalid certificate id"));
    }
    after = dir_snapshot(dir);
    assert_string_equal(before, after);
    free(after);
    /* Well-formed but absent. */
    char absent[65];
    memset(absent, '0', 64);
    absent[64] = '\0';
    err_clear(&err);
    assert_int_equal(authority_dir_remove(dir, absent, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);

    free(before);
    sk_X509_pop_free(sk, X509_free);
    X509_free(root);
    X509_free(inter);
    scratch_rm(dir);
}

static void test_authority_capath(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-capath");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    X509 *leaf = fixture_cert("server-ec.pem");
    STACK_OF(X509) *sk = stack_of(root, inter);
    char **ids = NULL;
    char link[32];

    /* Leftovers a rehash must clear (a stale symlink) or leave alone (foreign files). */
    char *stale = path_join(dir, "deadbeef.0");
    assert_int_equal(symlink("gone.pem", stale), 0);
    file_put_str(dir, "deadbeef.1", "a regular file is not ours");
    file_put_str(dir, "README", "not ours either");

    /* Empty CApath: the leaf does not verify (proves the directory is what is used below). */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            assert_int_equal(authority_dir_add(dir, sk, &ids, NULL), 0);
        }
        assert_capath_verifies(dir, leaf, pass == 1);
    }

    /* Link names as `openssl x509 -hash -noout` prints them, pointing at the right file. */
    expected_link(root, 0, link, sizeof(link));
    assert_link(dir, link, ids[0]);
    expected_link(inter, 0, link, sizeof(link));
    assert_link(dir, link, ids[1]);
    assert_false(exists(stale));
    assert_content_at(dir, "deadbeef.1", "a regular file is not ours");
    assert_content_at(dir, "README", "not ours either");
    /* 2 certificates + 2 links + 2 foreign files. */
    assert_int_equal(tu_count_prefix(dir, ""), 6);

    /* Rehash is idempotent, and repairs a link pointed elsewhere or deleted. */
    expected_link(root, 0, link, sizeof(link));
    char *lp = path_join(dir, link);
    assert_int_equal(unlink(lp), 0);
    assert_int_equal(symlink("README", lp), 0);
    expected_link(inter, 0, link, sizeof(link));
    char *lp2 = path_join(dir, link);
    assert_int_equal(unlink(lp2), 0);
    assert_int_equal(authority_dir_rehash(dir), 0);
    assert_int_equal(authority_dir_rehash_ex(NULL, NULL, dir), 0);
    expected_link(root, 0, link, sizeof(link));
    assert_link(dir, link, ids[0]);
    expected_link(inter, 0, link, sizeof(link));
    assert_link(dir, link, ids[1]);
    assert_int_equal(tu_count_prefix(dir, ""), 6);
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 0);
    assert_int_equal(authority_dir_rehash("/nonexistent-certd-dir"), -ENOENT);

    free(lp);
    free(lp2);
    free(stale);
    strv_free_n(ids, 2);
    sk_X509_pop_free(sk, X509_free);
    X509_free(root);
    X509_free(inter);
    X509_free(leaf);
    scratch_rm(dir);
}

static void test_authority_same_subject(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-collide");
    X509 *a = make_cert("certd same subject", 1);
    X509 *b = make_cert("certd same subject", 2);
    STACK_OF(X509) *sk = stack_of(a, b);
    char id_a[65], id_b[65], l0[32], l1[32], l2[32];
    struct certd_err err = { 0 };

    expected_id(a, id_a);
    expected_id(b, id_b);
    assert_string_not_equal(id_a, id_b);
    const char *lo = strcmp(id_a, id_b) < 0 ? id_a : id_b;
    const char *hi = lo == id_a ? id_b : id_a;
    expected_link(a, 0, l0, sizeof(l0));
    expected_link(b, 1, l1, sizeof(l1));
    expected_link(b, 2, l2, sizeof(l2));

    assert_int_equal(authority_dir_add(dir, sk, NULL, &err), 0);
    /* One hash, two links: .0 and .1 in id order. */
    assert_link(dir, l0, lo);
    assert_link(dir, l1, hi);
    char *p2 = path_join(dir, l2);
    assert_false(exists(p2));
    free(p2);

    /* Remove the one .0 points at: only .0 remains, now pointing at the survivor. */
    assert_int_equal(authority_dir_remove(dir, lo, &err), 0);
    assert_link(dir, l0, hi);
    char *p1 = path_join(dir, l1);
    assert_false(exists(p1));
    free(p1);
    assert_int_equal(tu_count_prefix(dir, ""), 2);

    sk_X509_pop_free(sk, X509_free);
    X509_free(a);
    X509_free(b);
    scratch_rm(dir);
}

/* A crash left temporaries; junk and lookalikes sit next to a good file. */
static void test_leftovers_and_load_filter(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-crash");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *other = make_cert("certd other", 7);
    STACK_OF(X509) *sk = stack_of(root, NULL);
    char **ids = NULL;
    char id[65], other_id[65], name[80];
    size_t n = 0;
    STACK_OF(X509) *loaded = NULL;

    assert_int_equal(authority_dir_add(dir, sk, &ids, NULL), 0);
    expected_id(root, id);
    expected_id(other, other_id);
    (void)snprintf(name, sizeof(name), "%s.pem", id);
    size_t pem_len = 0;
    char *good_path = path_join(dir, name);
    char *good = tu_file_get(good_path, &pem_len);
    assert_non_null(good);

    /* Simulated crash: a half-written temporary, and a complete one under a valid-looking
     * prefix; neither is read by load. */
    file_put_str(dir, ".tmp-x", "-----BEGIN CERTIFICATE-----\nMIIB");
    char tmpname[120];
    (void)snprintf(tmpname, sizeof(tmpname), ".tmp-%s.pem-0123456789abcdef", other_id);
    BIO *mem = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(mem, other), 1);
    char *other_pem = NULL;
    long other_len = BIO_get_mem_data(mem, &other_pem);
    char *op = path_join(dir, tmpname);
    file_put(op, other_pem, (size_t)other_len, 0644);
    free(op);
    /* Lookalikes: uppercase name, a name that is not its fingerprint, garbage, a directory,
     * a symlink under an id name. */
    char upper[80];
    (void)snprintf(upper, sizeof(upper), "%s.pem", other_id);
    for (char *c = upper; *c; c++) {
        if (*c >= 'a' && *c <= 'f') {
            *c = (char)(*c - 'a' + 'A');
        }
    }
    op = path_join(dir, upper);
    file_put(op, other_pem, (size_t)other_len, 0644);
    free(op);
    char wrong[80];
    memset(wrong, 'a', 64);
    (void)snprintf(wrong + 64, sizeof(wrong) - 64, ".pem");
    op = path_join(dir, wrong);
    file_put(op, other_pem, (size_t)other_len, 0644);
    free(op);
    char garbage[80];
    memset(garbage, 'b', 64);
    (void)snprintf(garbage + 64, sizeof(garbage) - 64, ".pem");
    file_put_str(dir, garbage, "not a certificate");
    char dirname_[80];
    memset(dirname_, 'c', 64);
    (void)snprintf(dirname_ + 64, sizeof(dirname_) - 64, ".pem");
    op = path_join(dir, dirname_);
    assert_int_equal(mkdir(op, 0700), 0);
    free(op);
    char lnkname[80];
    (void)snprintf(lnkname, sizeof(lnkname), "%s.pem", other_id);
    op = path_join(dir, lnkname);
    assert_int_equal(symlink(upper, op), 0);
    free(op);
    /* PEM armour around bytes that are no certificate, and an oversized file. */
    char bad_der[80];
    memset(bad_der, 'd', 64);
    (void)snprintf(bad_der + 64, sizeof(bad_der) - 64, ".pem");
    file_put_str(dir, bad_der,
                 "-----BEGIN CERTIFICATE-----\nMIIBAAAAAAAA\n-----END CERTIFICATE-----\n");
    /* A genuine certificate under its own id, padded past the 64 KiB file limit: skipped
     * for the size alone (PEM readers would ignore the padding). */
    X509 *third = make_cert("certd padded", 9);
    char third_id[65], huge_name[80];
    expected_id(third, third_id);
    (void)snprintf(huge_name, sizeof(huge_name), "%s.pem", third_id);
    BIO *mem3 = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(mem3, third), 1);
    char *third_pem = NULL;
    long third_len = BIO_get_mem_data(mem3, &third_pem);
    size_t huge_len = 64 * 1024 + 1;
    char *huge = malloc(huge_len);
    assert_non_null(huge);
    memset(huge, '\n', huge_len);
    memcpy(huge, third_pem, (size_t)third_len);
    op = path_join(dir, huge_name);
    file_put(op, huge, huge_len, 0644);
    free(op);
    free(huge);
    BIO_free(mem3);
    X509_free(third);
    BIO_free(mem);
    char *tmpdir = path_join(dir, ".tmp-dir");
    assert_int_equal(mkdir(tmpdir, 0700), 0);

    assert_int_equal(authority_dir_load(NULL, NULL, dir, &loaded, NULL, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(X509_cmp(sk_X509_value(loaded, 0), root), 0);
    sk_X509_pop_free(loaded, X509_free);

    /* Loading changes nothing; cleanup removes the temporary files (not the directory). */
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 3);
    assert_int_equal(store_cleanup_tmp(dir), 0);
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 1);
    assert_true(exists(tmpdir));
    /* Rehash makes links only for the good file. */
    assert_int_equal(authority_dir_rehash(dir), 0);
    char link[32];
    expected_link(root, 0, link, sizeof(link));
    assert_link(dir, link, id);
    expected_link(other, 0, link, sizeof(link));
    char *olink = path_join(dir, link);
    assert_false(exists(olink));
    free(olink);
    /* Rehash settles what a crash left first, as every writer does: nothing else goes. */
    file_put_str(dir, ".tmp-y", "crash leftover");
    assert_int_equal(authority_dir_rehash(dir), 0);
    assert_int_equal(tu_count_prefix(dir, ".tmp-"), 1);
    assert_true(exists(tmpdir));
    size_t len = 0;
    char *still = tu_file_get(good_path, &len);
    assert_int_equal(len, pem_len);
    assert_memory_equal(still, good, len);
    free(still);
    assert_int_equal(tu_count_prefix(dir, ""), 1 + 1 + 7 + 1); /* good, link, lookalikes, tmpdir */
    assert_int_equal(store_cleanup_tmp(dir), 0);
    char *nodir = path_join(dir, "nodir");
    assert_int_equal(store_cleanup_tmp(nodir), -ENOENT);
    free(nodir);

    /* An empty directory loads as an empty stack with an empty id array. */
    char *empty = scratch_dir("auth-empty");
    char **eids = NULL;
    n = 99;
    assert_int_equal(authority_dir_load(NULL, NULL, empty, &loaded, &eids, &n), 0);
    assert_int_equal(n, 0);
    assert_non_null(loaded);
    assert_int_equal(sk_X509_num(loaded), 0);
    sk_X509_free(loaded);
    strv_free_n(eids, 0);
    strv_free_n(NULL, 0);
    scratch_rm(empty);

    free(tmpdir);
    free(good);
    free(good_path);
    strv_free_n(ids, 1);
    sk_X509_pop_free(sk, X509_free);
    X509_free(root);
    X509_free(other);
    scratch_rm(dir);
}

/* Every certificate file of dir has its link, as OpenSSL names it, and no other link exists. */
static void assert_links_consistent(const char *dir)
{
    STACK_OF(X509) *loaded = NULL;
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(authority_dir_load(NULL, NULL, dir, &loaded, &ids, &n), 0);
    for (size_t i = 0; i < n; i++) {
        X509 *x = sk_X509_value(loaded, (int)i);
        char link[32];
        unsigned k = 0;
        /* n counts earlier certificates (id order) with the same subject hash. */
        for (size_t j = 0; j < i; j++) {
            k += X509_NAME_cmp(X509_get_subject_name(sk_X509_value(loaded, (int)j)),
                               X509_get_subject_name(x)) == 0;
        }
        expected_link(x, k, link, sizeof(link));
        assert_link(dir, link, ids[i]);
    }
    /* Files and links only: nothing else, no temporary, no journal. */
    assert_int_equal(tu_count_prefix(dir, ""), 2 * n);
    sk_X509_pop_free(loaded, X509_free);
    strv_free_n(ids, n);
}

struct authority_arg {
    const char *dir;
    STACK_OF(X509) *certs;
};

static int op_authority_add(const void *arg)
{
    const struct authority_arg *a = arg;
    return authority_dir_add(a->dir, a->certs, NULL, NULL);
}

static int op_authority_replace(const void *arg)
{
    const struct authority_arg *a = arg;
    return authority_dir_replace_ex(NULL, NULL, a->dir, a->certs, 0, NULL, NULL);
}

/* Run op (an authority change of sk in dir) in a child that crashes at point. */
static void authority_crashing(crash_op_fn op, const char *dir, STACK_OF(X509) *sk,
                               enum store_crash_point point)
{
    const struct authority_arg a = { .dir = dir, .certs = sk };
    run_crashing(op, &a, point);
}

/*
 * An add of several certificates that crashes at each step of the set protocol: after
 * store_recover and rehash, none of them or all of them, with consistent links. A later add,
 * remove or rehash settles the crash itself first.
 */
static void test_authority_add_crash(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    X509 *old = make_cert("certd already there", 3);
    STACK_OF(X509) *sk = stack_of(root, inter);
    STACK_OF(X509) *sk_old = stack_of(old, NULL);
    char id_root[65], id_inter[65], id_old[65];
    expected_id(root, id_root);
    expected_id(inter, id_inter);
    expected_id(old, id_old);

    for (size_t k = 0; k < ELEMENTSOF(crash_points); k++) {
        /* how 0: store_recover + rehash; 1: the next remove settles it; 2: the next add. */
        for (int how = 0; how < 3; how++) {
            char *dir = scratch_dir("auth-crash-add");
            bool is_new = crash_points[k] != STORE_CRASH_AFTER_TEMPS;
            assert_int_equal(authority_dir_add(dir, sk_old, NULL, NULL), 0);
            authority_crashing(op_authority_add, dir, sk, crash_points[k]);

            struct certd_err err = { 0 };
            if (how == 0) {
                assert_int_equal(store_recover(dir), 0);
                assert_int_equal(authority_dir_rehash(dir), 0);
            } else if (how == 1) {
                /* A committed add is completed before the removal: the id is found. */
                assert_int_equal(authority_dir_remove(dir, id_root, &err), is_new ? 0 : -ENOENT);
                assert_int_equal(store_recover(dir), 0); /* and it never comes back */
            } else {
                /* The same certificates again: a duplicate exactly when the crash committed. */
                assert_int_equal(authority_dir_add(dir, sk, NULL, &err), is_new ? -EEXIST : 0);
                if (is_new) {
                    assert_int_equal(err.code, CERTD_E_DUPLICATE);
                }
                is_new = true;
            }
            char *p_root = cert_path(dir, root), *p_inter = cert_path(dir, inter);
            char *p_old = cert_path(dir, old);
            assert_true(exists(p_old));
            assert_int_equal(exists(p_root), is_new && how != 1);
            assert_int_equal(exists(p_inter), is_new);
            assert_links_consistent(dir);
            free(p_root);
            free(p_inter);
            free(p_old);
            scratch_rm(dir);
        }
    }
    sk_X509_pop_free(sk, X509_free);
    sk_X509_pop_free(sk_old, X509_free);
    X509_free(root);
    X509_free(inter);
    X509_free(old);
}

/* The limit, checked under the lock against the directory: N fits, N + 1 does not. */
static void test_authority_limit(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-limit");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    X509 *third = make_cert("certd third", 4);
    STACK_OF(X509) *sk1 = stack_of(third, NULL);
    STACK_OF(X509) *sk2 = stack_of(root, inter);
    struct certd_err err = { 0 };

    assert_int_equal(authority_dir_add_ex(NULL, NULL, dir, sk1, 1, NULL, &err), 0);
    char *before = dir_snapshot(dir);
    /* 1 installed + 2 = 3 > 2: refused, nothing written. */
    char **ids = (char **)0x1;
    assert_int_equal(authority_dir_add_ex(NULL, NULL, dir, sk2, 2, &ids, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_LIMIT_REACHED);
    assert_non_null(strstr(err.msg, "at most 2"));
    assert_ptr_equal(ids, (char **)0x1);
    char *after = dir_snapshot(dir);
    assert_string_equal(before, after);
    free(after);
    /* Exactly at the limit: fine. */
    err_clear(&err);
    assert_int_equal(authority_dir_add_ex(NULL, NULL, dir, sk2, 3, NULL, &err), 0);
    assert_false(err_is_set(&err));
    assert_links_consistent(dir);
    /* Full: one more is over, also for a limit the directory already exceeds. */
    free(before);
    before = dir_snapshot(dir);
    X509 *fourth = make_cert("certd fourth", 5);
    STACK_OF(X509) *sk4 = stack_of(fourth, NULL);
    const size_t limits[] = { 3, 2 };
    for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
        err_clear(&err);
        assert_int_equal(authority_dir_add_ex(NULL, NULL, dir, sk4, limits[i], NULL, &err), -E2BIG);
        assert_int_equal(err.code, CERTD_E_LIMIT_REACHED);
        after = dir_snapshot(dir);
        assert_string_equal(before, after);
        free(after);
    }
    /* 0: no limit of the caller's. */
    assert_int_equal(authority_dir_add_ex(NULL, NULL, dir, sk4, 0, NULL, &err), 0);
    assert_links_consistent(dir);

    /* More certificates than one set holds: refused before anything is looked at. */
    STACK_OF(X509) *many = sk_X509_new_null();
    assert_non_null(many);
    for (size_t i = 0; i < STORE_SET_MAX + 1; i++) {
        assert_true(X509_up_ref(root) == 1 && sk_X509_push(many, root) > 0);
    }
    err_clear(&err);
    assert_int_equal(authority_dir_add(dir, many, NULL, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_TOO_MANY_VALUES);
    assert_non_null(strstr(err.msg, "at most"));

    sk_X509_pop_free(many, X509_free);
    sk_X509_pop_free(sk4, X509_free);
    sk_X509_pop_free(sk1, X509_free);
    sk_X509_pop_free(sk2, X509_free);
    free(before);
    X509_free(fourth);
    X509_free(root);
    X509_free(inter);
    X509_free(third);
    scratch_rm(dir);
}

/*
 * Issue #2's duplicate rule (same subject, issuer and serial number), checked under the lock
 * against the directory: two certificates with different keys, hence different ids.
 */
static void test_authority_same_identity(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-ident");
    X509 *a = make_cert("certd twin", 42);
    X509 *b = make_cert("certd twin", 42);
    STACK_OF(X509) *ska = stack_of(a, NULL);
    STACK_OF(X509) *skb = stack_of(b, NULL);
    STACK_OF(X509) *skab = stack_of(a, b);
    char id_a[65], id_b[65];
    struct certd_err err = { 0 };
    expected_id(a, id_a);
    expected_id(b, id_b);
    assert_string_not_equal(id_a, id_b);

    assert_int_equal(authority_dir_add(dir, skab, NULL, &err), -EEXIST);
    assert_int_equal(err.code, CERTD_E_DUPLICATE);
    assert_non_null(strstr(err.msg, "twice"));
    assert_int_equal(tu_count_prefix(dir, ""), 0);

    assert_int_equal(authority_dir_add(dir, ska, NULL, NULL), 0);
    char *before = dir_snapshot(dir);
    err_clear(&err);
    assert_int_equal(authority_dir_add(dir, skb, NULL, &err), -EEXIST);
    assert_int_equal(err.code, CERTD_E_DUPLICATE);
    assert_non_null(strstr(err.msg, "serial"));
    assert_non_null(strstr(err.msg, id_a));
    char *after = dir_snapshot(dir);
    assert_string_equal(before, after);

    free(before);
    free(after);
    sk_X509_pop_free(ska, X509_free);
    sk_X509_pop_free(skb, X509_free);
    sk_X509_pop_free(skab, X509_free);
    X509_free(a);
    X509_free(b);
    scratch_rm(dir);
}

/*
 * Does process pid wait for a flock (a "->" line of /proc/locks)? Returns false when the
 * process ends first: it did not wait. No sleeping: the answer comes from the kernel's view.
 */
static bool child_waits_for_flock(pid_t pid, int *ret_status)
{
    char want[32];
    (void)snprintf(want, sizeof(want), " %ld ", (long)pid);
    for (;;) {
        pid_t w = waitpid(pid, ret_status, WNOHANG);
        assert_true(w >= 0);
        if (w == pid) {
            return false;
        }
        FILE *f = fopen("/proc/locks", "re");
        assert_non_null(f);
        char line[256];
        bool found = false;
        while (fgets(line, sizeof(line), f)) {
            if (strstr(line, "-> FLOCK") && strstr(line, want)) {
                found = true;
            }
        }
        fclose(f);
        if (found) {
            return true;
        }
        (void)sched_yield();
    }
}

/* ---- journals with removals (format 3) ---- */

/* An inode number, to tell "kept as it was" from "written anew". */
static ino_t ino_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_ino;
}

/*
 * Hand-made journals, as a crash leaves them: a committed format 3 journal (a write and
 * removals) is completed by store_recover, whichever of its steps were done; an uncommitted one
 * is discarded and every target keeps its old state; a format 2 journal left by an earlier
 * certd is still replayed.
 */
static void test_recover_removals(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-rm-journal");
    char *outside = scratch_dir("store-rm-outside");
    const char *M3 = "certd-store-journal-3";
    const char *T0 = ".tmpset-" JID "-0";
    const char *E = "end";
    const char *committed[] = { M3,       "3",     "write",  T0,      "a.pem",
                                "remove", "b.pem", "remove", "c.pem", E };

    /* done 0: nothing of step 4 happened; 1: the write and one removal were done already. */
    for (int done = 0; done < 2; done++) {
        file_put_str(dir, "a.pem", "OLD-A");
        file_put_str(dir, "b.pem", "OLD-B");
        if (done == 0) {
            file_put_str(dir, "c.pem", "OLD-C");
            file_put_str(dir, T0, "NEW-A");
        } else {
            file_put_str(dir, "a.pem", "NEW-A");
        }
        file_put_str(dir, "keep.pem", "KEEP");
        journal_put(dir, ".journal-" JID, committed, ELEMENTSOF(committed));
        assert_int_equal(store_recover(dir), 0);
        assert_state(dir, "a.pem", "NEW-A");
        assert_state(dir, "b.pem", NULL);
        assert_state(dir, "c.pem", NULL);
        assert_state(dir, "keep.pem", "KEEP");
        assert_int_equal(tu_count_prefix(dir, ""), 2);
        /* Idempotent: a second run changes nothing. */
        assert_int_equal(store_recover(dir), 0);
        assert_int_equal(tu_count_prefix(dir, ""), 2);
    }

    /* Not committed: the temporary goes, nothing is removed. */
    file_put_str(dir, "b.pem", "OLD-B");
    file_put_str(dir, "c.pem", "OLD-C");
    file_put_str(dir, T0, "NEWER-A");
    journal_put(dir, ".tmpjournal-" JID, committed, ELEMENTSOF(committed));
    assert_int_equal(store_recover(dir), 0);
    assert_state(dir, "a.pem", "NEW-A");
    assert_state(dir, "b.pem", "OLD-B");
    assert_state(dir, "c.pem", "OLD-C");
    assert_int_equal(tu_count_prefix(dir, ".tmp"), 0);
    assert_int_equal(tu_count_prefix(dir, ""), 4);

    /* A removal-only set; a target to remove that is a symlink: the link goes, never its target. */
    char *victim = path_join(outside, "victim");
    file_put(victim, "VICTIM", 6, 0644);
    char *lp = path_join(dir, "b.pem");
    assert_int_equal(unlink(lp), 0);
    assert_int_equal(symlink(victim, lp), 0);
    const char *removals[] = { M3, "2", "remove", "b.pem", "remove", "c.pem", E };
    journal_put(dir, ".journal-" JID, removals, ELEMENTSOF(removals));
    assert_int_equal(store_recover(dir), 0);
    assert_false(exists(lp));
    assert_state(dir, "c.pem", NULL);
    assert_file_content(victim, "VICTIM");
    assert_int_equal(tu_count_prefix(dir, ""), 2);

    /* A format 2 journal, as an earlier certd leaves it, is still replayed. */
    const char *v2[] = { "certd-store-journal-2", "1", T0, "a.pem", E };
    file_put_str(dir, T0, "V2-A");
    journal_put(dir, ".journal-" JID, v2, ELEMENTSOF(v2));
    assert_int_equal(store_recover(dir), 0);
    assert_state(dir, "a.pem", "V2-A");
    assert_int_equal(tu_count_prefix(dir, ""), 2);
    /* ... and its uncommitted form discarded. */
    file_put_str(dir, T0, "V2-B");
    journal_put(dir, ".tmpjournal-" JID, v2, ELEMENTSOF(v2));
    assert_int_equal(store_recover(dir), 0);
    assert_state(dir, "a.pem", "V2-A");
    assert_int_equal(tu_count_prefix(dir, ""), 2);

    free(lp);
    free(victim);
    scratch_rm(outside);
    scratch_rm(dir);
}

/* Format 3 journals that are not what a writer makes: set aside, never acted on. */
static void test_recover_removals_hostile(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-rm-hostile");
    char *broken = path_join(dir, ".journal-" JID ".broken");
    const char *M = "certd-store-journal-3";
    const char *T0 = ".tmpset-" JID "-0";
    const char *T1 = ".tmpset-" JID "-1";
    const char *W = "write", *R = "remove", *E = "end";
    char over_writes[8], over_removes[8], over_total[8];
    (void)snprintf(over_writes, sizeof(over_writes), "%u", STORE_SET_MAX + 1);
    (void)snprintf(over_removes, sizeof(over_removes), "%u", STORE_SET_REMOVE_MAX + 1);
    (void)snprintf(over_total, sizeof(over_total), "%u", STORE_SET_MAX + STORE_SET_REMOVE_MAX + 1);

    struct {
        const char *f[10];
        size_t n;
    } bad[] = {
        { { M, "1", R, "../victim", E }, 5 },                   /* target outside */
        { { M, "1", R, "sub/x.pem", E }, 5 },                   /* target with a '/' */
        { { M, "1", R, "..", E }, 5 },                          /* not a name */
        { { M, "1", R, "", E }, 5 },                            /* empty name */
        { { M, "1", R, ".journal-" JID, E }, 5 },               /* reserved: our own journal */
        { { M, "1", R, T0, E }, 5 },                            /* reserved: a temporary */
        { { M, "2", W, T0, "x.pem", R, "x.pem", E }, 8 },       /* written and removed */
        { { M, "2", R, "x.pem", R, "x.pem", E }, 7 },           /* removed twice */
        { { M, "1", "delete", "x.pem", E }, 5 },                /* unknown kind */
        { { M, "1", W, T1, "x.pem", E }, 6 },                   /* not its entry's temporary */
        { { M, "2", R, "y.pem", W, T0, "x.pem", E }, 8 },       /* the same: entry 1 is T1 */
        { { M, "1", R, "x.pem", "y.pem", E }, 6 },              /* trailing name */
        { { M, "2", R, "x.pem", E }, 5 },                       /* count above entries */
        { { M, "0", E }, 3 },                                   /* count 0 */
        { { M, over_total, R, "x.pem", E }, 5 },                /* over every limit */
        { { M, "1", R, "x.pem" }, 4 },                          /* no end: cut short */
        { { "certd-store-journal-4", "1", R, "x.pem", E }, 5 }, /* unknown version */
        /* Format 2 knows no removals: its entries are (temporary, target) pairs. */
        { { "certd-store-journal-2", "1", R, "x.pem", E }, 5 },
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        file_put_str(dir, "x.pem", "X");
        file_put_str(dir, "y.pem", "Y");
        file_put_str(dir, T0, "NEW");
        journal_put(dir, ".journal-" JID, bad[i].f, bad[i].n);
        assert_int_equal(store_recover(dir), 0);
        assert_true(exists(broken));
        assert_state(dir, "x.pem", "X");
        assert_state(dir, "y.pem", "Y");
        assert_state(dir, T0, "NEW");
        assert_int_equal(tu_count_prefix(dir, ""), 4);
        assert_int_equal(unlink(broken), 0);
    }

    /* More writes or more removals than a writer makes: a journal listing them is not ours. */
    const char *limits[] = { over_writes, over_removes };
    for (size_t k = 0; k < ELEMENTSOF(limits); k++) {
        size_t n = k == 0 ? STORE_SET_MAX + 1 : STORE_SET_REMOVE_MAX + 1;
        char *p = path_join(dir, ".journal-" JID);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fprintf(f, "%s%c%zu%c", M, 0, n, 0);
        for (size_t i = 0; i < n; i++) {
            if (k == 0) {
                fprintf(f, "write%c.tmpset-" JID "-%zu%cw%zu.pem%c", 0, i, 0, i, 0);
            } else {
                fprintf(f, "remove%cr%zu.pem%c", 0, i, 0);
            }
        }
        fprintf(f, "end%c", 0);
        assert_int_equal(fclose(f), 0);
        free(p);
        assert_int_equal(store_recover(dir), 0);
        assert_true(exists(broken));
        assert_state(dir, "x.pem", "X");
        assert_int_equal(unlink(broken), 0);
    }

    /* Well formed, but a target to remove is a directory now: not acted on. */
    char *sub = path_join(dir, "d.pem");
    assert_int_equal(mkdir(sub, 0700), 0);
    const char *dirt[] = { M, "2", W, T0, "x.pem", R, "d.pem", E };
    journal_put(dir, ".journal-" JID, dirt, ELEMENTSOF(dirt));
    assert_int_equal(store_recover(dir), 0);
    assert_true(exists(broken));
    assert_true(exists(sub));
    assert_state(dir, "x.pem", "X");
    assert_state(dir, T0, "NEW");

    free(sub);
    free(broken);
    scratch_rm(dir);
}

struct write_set_at_arg {
    const char *dir;
    const struct store_set_file *files;
    size_t n;
};

/* store_write_set_at as a writer calls it: the directory opened and locked exclusively. */
static int op_write_set_at(const void *arg)
{
    const struct write_set_at_arg *a = arg;
    const char *step = NULL;
    size_t failed = 0;
    bool is_committed = false;
    int fd = store_open_dir(a->dir);
    int r = fd < 0 ? fd : store_dir_lock(fd, LOCK_EX);
    if (r == 0) {
        r = store_write_set_at(fd, a->dir, a->files, a->n, &step, &failed, &is_committed);
    }
    if (fd >= 0) {
        (void)close(fd);
    }
    return r;
}

/*
 * The protocol on a locked directory (what authority_dir_replace_ex uses): writes and removals
 * in one set, a target to remove that is absent already, a crash at each step.
 */
static void test_write_set_removals(void **state)
{
    (void)state;
    static const enum store_crash_point points[] = {
        STORE_CRASH_NONE,          STORE_CRASH_AFTER_TEMPS,
        STORE_CRASH_AFTER_COMMIT,  STORE_CRASH_AFTER_FIRST_RENAME,
        STORE_CRASH_AFTER_RENAMES,
    };
    const struct store_set_file files[] = {
        { .name = "new.pem", .data = span_from_str("NEW"), .mode = 0644 },
        { .name = "a.pem", .data = span_from_str("A2"), .mode = 0600 },
        { .name = "old.pem", .is_remove = true },
        { .name = "absent.pem", .is_remove = true },
    };
    /* The removals first too: the first step 4 entry is then a removal. */
    const struct store_set_file reversed[] = { files[3], files[2], files[1], files[0] };

    for (int order = 0; order < 2; order++) {
        for (size_t k = 0; k < ELEMENTSOF(points); k++) {
            char *dir = scratch_dir("store-rm-set");
            bool is_new = points[k] != STORE_CRASH_AFTER_TEMPS;
            file_put_str(dir, "a.pem", "A1");
            file_put_str(dir, "old.pem", "OLD");
            file_put_str(dir, "other", "OTHER");
            const struct write_set_at_arg arg = { .dir = dir,
                                                  .files = order == 0 ? files : reversed,
                                                  .n = ELEMENTSOF(files) };
            run_crashing(op_write_set_at, &arg, points[k]);
            if (points[k] != STORE_CRASH_NONE) {
                /* The crash left its journal, in the format for removals. */
                assert_int_equal(
                    tu_count_prefix(dir, ".journal-") + tu_count_prefix(dir, ".tmpjournal-"), 1);
                assert_int_equal(store_recover(dir), 0);
            }
            assert_state(dir, "new.pem", is_new ? "NEW" : NULL);
            assert_state(dir, "a.pem", is_new ? "A2" : "A1");
            assert_state(dir, "old.pem", is_new ? NULL : "OLD");
            assert_state(dir, "absent.pem", NULL);
            assert_state(dir, "other", "OTHER");
            if (is_new) {
                char *p = path_join(dir, "a.pem");
                assert_int_equal(mode_of(p), 0600);
                free(p);
            }
            assert_int_equal(tu_count_prefix(dir, ".tmp"), 0);
            assert_int_equal(tu_count_prefix(dir, ".journal"), 0);
            assert_int_equal(tu_count_prefix(dir, ""), 3);
            scratch_rm(dir);
        }
    }
}

/* ---- authority_dir_replace_ex ---- */

static void test_authority_replace(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-replace");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    X509 *c = make_cert("certd replace c", 11);
    X509 *d = make_cert("certd replace d", 12);
    STACK_OF(X509) *old = stack_of(root, inter);
    STACK_OF(X509) *nw = stack_of(c, inter);
    char id_c[65], id_inter[65], **ids = NULL;
    struct certd_err err = { 0 };

    expected_id(c, id_c);
    expected_id(inter, id_inter);
    assert_int_equal(authority_dir_add(dir, old, NULL, &err), 0);
    char *p_root = cert_path(dir, root), *p_inter = cert_path(dir, inter);
    char *p_c = cert_path(dir, c), *p_d = cert_path(dir, d);
    ino_t inter_ino = ino_of(p_inter);

    /* {root, inter} -> {c, inter}: root goes, c comes, inter stays the very same file. */
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, dir, nw, 2, &ids, &err), 0);
    assert_false(err_is_set(&err));
    assert_string_equal(ids[0], id_c);
    assert_string_equal(ids[1], id_inter);
    strv_free_n(ids, 2);
    assert_false(exists(p_root));
    assert_cert_file(p_c, c);
    assert_int_equal(ino_of(p_inter), inter_ino);
    assert_links_consistent(dir);

    /* The same set again: nothing is rewritten. */
    ino_t c_ino = ino_of(p_c);
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, dir, nw, 0, NULL, &err), 0);
    assert_int_equal(ino_of(p_c), c_ino);
    assert_int_equal(ino_of(p_inter), inter_ino);
    assert_links_consistent(dir);

    /*
     * Whatever else has a certificate's name goes too (a damaged file, a symlink, a file whose
     * content is another certificate), and a damaged file under a new id is written anew;
     * a directory under such a name and files of other names are never touched.
     */
    char junk_id[65], *junk = NULL, *sub = NULL, *sl = NULL;
    memset(junk_id, 'a', 64);
    junk_id[64] = '\0';
    assert_true(asprintf(&junk, "%s/%s.pem", dir, junk_id) > 0);
    file_put(junk, "not a certificate", 17, 0644);
    junk_id[0] = 'b';
    assert_true(asprintf(&sl, "%s/%s.pem", dir, junk_id) > 0);
    assert_int_equal(symlink(p_c, sl), 0);
    junk_id[0] = 'c';
    assert_true(asprintf(&sub, "%s/%s.pem", dir, junk_id) > 0);
    assert_int_equal(mkdir(sub, 0700), 0);
    file_put(p_d, "damaged", 7, 0644);
    file_put_str(dir, "README", "mine");
    STACK_OF(X509) *only_d = stack_of(d, NULL);
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, dir, only_d, 1, &ids, &err), 0);
    strv_free_n(ids, 1);
    assert_false(exists(junk));
    assert_false(exists(sl));
    assert_false(exists(p_c));
    assert_false(exists(p_inter));
    assert_true(exists(sub));
    assert_content_at(dir, "README", "mine");
    assert_cert_file(p_d, d);
    assert_int_equal(rmdir(sub), 0);
    char *readme = path_join(dir, "README");
    assert_int_equal(unlink(readme), 0);
    free(readme);
    assert_links_consistent(dir);
    assert_int_equal(tu_count_prefix(dir, ""), 2);

    /* Into an empty directory: a plain install. */
    char *empty = scratch_dir("auth-replace-empty");
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, empty, old, 0, NULL, &err), 0);
    assert_links_consistent(empty);
    assert_int_equal(tu_count_prefix(empty, ""), 4);

    /* CApath works with the new set: the leaf verifies through root and inter. */
    X509 *leaf = fixture_cert("server-ec.pem");
    assert_capath_verifies(empty, leaf, true);
    X509_free(leaf);

    scratch_rm(empty);
    free(junk);
    free(sl);
    free(sub);
    free(p_root);
    free(p_inter);
    free(p_c);
    free(p_d);
    sk_X509_pop_free(only_d, X509_free);
    sk_X509_pop_free(old, X509_free);
    sk_X509_pop_free(nw, X509_free);
    X509_free(root);
    X509_free(inter);
    X509_free(c);
    X509_free(d);
    scratch_rm(dir);
}

/* Every refusal leaves the directory byte for byte as it was and the output untouched. */
static void test_authority_replace_refusals(void **state)
{
    (void)state;
    char *dir = scratch_dir("auth-replace-refuse");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    X509 *twin_a = make_cert("certd replace twin", 9);
    X509 *twin_b = make_cert("certd replace twin", 9);
    X509 *third = make_cert("certd replace third", 10);
    STACK_OF(X509) *old = stack_of(root, NULL);
    assert_int_equal(authority_dir_add(dir, old, NULL, NULL), 0);
    char *before = dir_snapshot(dir);

    STACK_OF(X509) *none = sk_X509_new_null();
    STACK_OF(X509) *same_twice = stack_of(inter, inter);
    STACK_OF(X509) *twins = stack_of(twin_a, twin_b);
    STACK_OF(X509) *three = stack_of(inter, third);
    assert_true(X509_up_ref(twin_a) == 1 && sk_X509_push(three, twin_a) > 0);
    STACK_OF(X509) *many = sk_X509_new_null();
    assert_non_null(none);
    assert_non_null(many);
    for (size_t i = 0; i < STORE_SET_MAX + 1; i++) {
        assert_true(X509_up_ref(inter) == 1 && sk_X509_push(many, inter) > 0);
    }
    struct {
        STACK_OF(X509) *certs;
        size_t max;
        int want_r;
        enum certd_errc want_code;
        const char *want_word;
    } cases[] = {
        { none, 0, -EINVAL, CERTD_E_NO_CERT, "no certificate" },
        { same_twice, 0, -EEXIST, CERTD_E_DUPLICATE, "twice" },
        { twins, 0, -EEXIST, CERTD_E_DUPLICATE, "twice" },
        { three, 2, -E2BIG, CERTD_E_LIMIT_REACHED, "at most 2" },
        { many, 0, -E2BIG, CERTD_E_TOO_MANY_VALUES, "at most" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        char **ids = (char **)0x1;
        assert_int_equal(
            authority_dir_replace_ex(NULL, NULL, dir, cases[i].certs, cases[i].max, &ids, &err),
            cases[i].want_r);
        assert_int_equal(err.code, cases[i].want_code);
        assert_non_null(strstr(err.msg, cases[i].want_word));
        assert_ptr_equal(ids, (char **)0x1);
        char *after = dir_snapshot(dir);
        assert_string_equal(before, after);
        free(after);
    }
    /*
     * A directory under the name of a certificate to write: refused before anything is written.
     * (Past the commit the rename over it could only fail, with the old files removed already.)
     */
    struct certd_err err = { 0 };
    char *p_third = cert_path(dir, third);
    assert_int_equal(mkdir(p_third, 0700), 0);
    char *with_dir = dir_snapshot(dir);
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, dir, three, 3, NULL, &err), -EISDIR);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    assert_non_null(strstr(err.msg, "is a directory"));
    char *after = dir_snapshot(dir);
    assert_string_equal(with_dir, after);
    free(after);
    free(with_dir);
    assert_int_equal(rmdir(p_third), 0);
    free(p_third);

    /* The limit at N: fine (the certificates present do not count, they go). */
    err_clear(&err);
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, dir, three, 3, NULL, &err), 0);
    assert_links_consistent(dir);
    assert_int_equal(tu_count_prefix(dir, ""), 6);

    /* A missing directory. */
    char *nodir = path_join(dir, "nodir");
    err_clear(&err);
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, nodir, old, 0, NULL, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    assert_non_null(strstr(err.msg, nodir));

    /* More certificate files than one set can remove: refused, nothing touched. */
    char *full = scratch_dir("auth-replace-full");
    for (unsigned i = 0; i <= STORE_SET_REMOVE_MAX; i++) {
        char name[80];
        (void)snprintf(name, sizeof(name), "%064x.pem", i);
        file_put_str(full, name, "x");
    }
    err_clear(&err);
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, full, old, 0, NULL, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_LIMIT_REACHED);
    assert_non_null(strstr(err.msg, "more than"));
    assert_int_equal(tu_count_prefix(full, ""), STORE_SET_REMOVE_MAX + 1);
    /* Load and add read no more of such a directory either: bounded work. */
    x509_stack *loaded = NULL;
    assert_int_equal(authority_dir_load(NULL, NULL, full, &loaded, NULL, NULL), -E2BIG);
    assert_null(loaded);
    err_clear(&err);
    assert_int_equal(authority_dir_add(full, old, NULL, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_LIMIT_REACHED);
    assert_non_null(strstr(err.msg, "more than"));
    assert_int_equal(tu_count_prefix(full, ""), STORE_SET_REMOVE_MAX + 1);
    scratch_rm(full);

    free(nodir);
    free(before);
    sk_X509_pop_free(none, X509_free);
    sk_X509_pop_free(same_twice, X509_free);
    sk_X509_pop_free(twins, X509_free);
    sk_X509_pop_free(three, X509_free);
    sk_X509_pop_free(many, X509_free);
    sk_X509_pop_free(old, X509_free);
    X509_free(root);
    X509_free(inter);
    X509_free(twin_a);
    X509_free(twin_b);
    X509_free(third);
    scratch_rm(dir);
}

/*
 * A replace that crashes at each step of the set protocol: after recovery the old set or the
 * new one, never a mix, with links that match. Two shapes: writes and removals ({a, b} ->
 * {b, c}), and removals alone ({a, b} -> {b}). The next change settles the crash itself.
 */
static void test_authority_replace_crash(void **state)
{
    (void)state;
    X509 *a = fixture_cert("root-ca.pem");
    X509 *b = fixture_cert("int-ca.pem");
    X509 *c = make_cert("certd replace crash", 21);
    STACK_OF(X509) *old = stack_of(a, b);
    STACK_OF(X509) *shapes[] = { stack_of(b, c), stack_of(b, NULL) };

    for (size_t s = 0; s < ELEMENTSOF(shapes); s++) {
        for (size_t k = 0; k < ELEMENTSOF(crash_points); k++) {
            /* how 0: store_recover + rehash; 1: the next rehash alone settles it. */
            for (int how = 0; how < 2; how++) {
                char *dir = scratch_dir("auth-replace-crash");
                bool is_new = crash_points[k] != STORE_CRASH_AFTER_TEMPS;
                assert_int_equal(authority_dir_add(dir, old, NULL, NULL), 0);
                authority_crashing(op_authority_replace, dir, shapes[s], crash_points[k]);
                if (how == 0) {
                    assert_int_equal(store_recover(dir), 0);
                }
                assert_int_equal(authority_dir_rehash(dir), 0);
                char *pa = cert_path(dir, a), *pb = cert_path(dir, b), *pc = cert_path(dir, c);
                assert_int_equal(exists(pa), !is_new);
                assert_true(exists(pb));
                assert_int_equal(exists(pc), is_new && s == 0);
                assert_links_consistent(dir);
                free(pa);
                free(pb);
                free(pc);
                scratch_rm(dir);
            }
        }
    }
    /* A crash before the commit, then the replace again: it completes normally. */
    char *dir = scratch_dir("auth-replace-again");
    assert_int_equal(authority_dir_add(dir, old, NULL, NULL), 0);
    authority_crashing(op_authority_replace, dir, shapes[0], STORE_CRASH_AFTER_TEMPS);
    assert_int_equal(authority_dir_replace_ex(NULL, NULL, dir, shapes[0], 0, NULL, NULL), 0);
    char *pa = cert_path(dir, a), *pc = cert_path(dir, c);
    assert_false(exists(pa));
    assert_true(exists(pc));
    assert_links_consistent(dir);
    free(pa);
    free(pc);
    scratch_rm(dir);

    for (size_t s = 0; s < ELEMENTSOF(shapes); s++) {
        sk_X509_pop_free(shapes[s], X509_free);
    }
    sk_X509_pop_free(old, X509_free);
    X509_free(a);
    X509_free(b);
    X509_free(c);
}

/*
 * A committed journal (format 3) whose removal target is a hash link of an authority directory:
 * recovery unlinks the link, never the certificate it points at; a rehash (any change of the
 * authority, which settles the journal first) makes the link again.
 */
static void test_recover_removal_of_link(void **state)
{
    (void)state;
    char *dir = scratch_dir("store-rm-link");
    X509 *root = fixture_cert("root-ca.pem");
    STACK_OF(X509) *sk = stack_of(root, NULL);
    char link[32], id[65];
    assert_int_equal(authority_dir_add(dir, sk, NULL, NULL), 0);
    expected_id(root, id);
    expected_link(root, 0, link, sizeof(link));
    char *p_root = cert_path(dir, root);
    char *p_link = path_join(dir, link);
    const char *fields[] = { "certd-store-journal-3", "1", "remove", link, "end" };

    /* how 0: store_recover first, then the rehash; 1: the rehash alone settles it. */
    for (int how = 0; how < 2; how++) {
        journal_put(dir, ".journal-" JID, fields, ELEMENTSOF(fields));
        if (how == 0) {
            assert_int_equal(store_recover(dir), 0);
            assert_false(exists(p_link));
            assert_cert_file(p_root, root);
            assert_int_equal(tu_count_prefix(dir, ""), 1);
        }
        assert_int_equal(authority_dir_rehash(dir), 0);
        assert_link(dir, link, id);
        assert_cert_file(p_root, root);
        assert_links_consistent(dir);
    }

    free(p_link);
    free(p_root);
    sk_X509_pop_free(sk, X509_free);
    X509_free(root);
    scratch_rm(dir);
}

/*
 * Every writer takes the directory's lock exclusively: while another holder has it even shared
 * (a reader-writer of old), add, remove, rehash, replace and single writes wait. Two rehashes can
 * thus never prune each other's links, and a check made under the lock holds for the write.
 */
static void test_writers_lock_exclusively(void **state)
{
    (void)state;
    if (access("/proc/locks", R_OK) != 0) {
        skip();
    }
    char *dir = scratch_dir("store-lock");
    X509 *root = fixture_cert("root-ca.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    STACK_OF(X509) *sk = stack_of(inter, NULL);
    STACK_OF(X509) *skr = stack_of(root, NULL);
    char id_root[65];
    expected_id(root, id_root);
    assert_int_equal(authority_dir_add(dir, skr, NULL, NULL), 0);
    char *file = path_join(dir, "file");

    for (int op = 0; op < 5; op++) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_SH), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* The inherited descriptor shares the parent's lock: only the parent may hold it. */
            (void)close(fd);
            int r = op == 0   ? authority_dir_rehash(dir)
                    : op == 1 ? authority_dir_add(dir, sk, NULL, NULL)
                    : op == 2 ? authority_dir_remove(dir, id_root, NULL)
                    : op == 3 ? authority_dir_replace_ex(NULL, NULL, dir, skr, 0, NULL, NULL)
                              : store_write_atomic(file, span_from_str("x"), 0644, NULL);
            _exit(r == 0 ? 0 : 1);
        }
        int status = 0;
        bool waited = child_waits_for_flock(pid, &status);
        assert_int_equal(close(fd), 0); /* releases the lock: the child goes on */
        if (waited) {
            assert_int_equal(waitpid(pid, &status, 0), pid);
        }
        assert_true(waited);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_content_at(dir, "file", "x");
    assert_int_equal(tu_count_prefix(dir, ".tmp"), 0);

    free(file);
    sk_X509_pop_free(sk, X509_free);
    sk_X509_pop_free(skr, X509_free);
    X509_free(root);
    X509_free(inter);
    scratch_rm(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_modes),
        cmocka_unit_test(test_write_replace),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test(test_write_set),
        cmocka_unit_test(test_write_set_rollback),
        cmocka_unit_test(test_write_set_crash),
        cmocka_unit_test(test_write_set_after_crash),
        cmocka_unit_test(test_write_set_one_dir),
        cmocka_unit_test(test_recover_moved_store),
        cmocka_unit_test(test_write_atomic_after_crash),
        cmocka_unit_test(test_recover_hostile_journals),
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_file_err),
        cmocka_unit_test(test_read_file_wipes),
        cmocka_unit_test(test_read_trusted),
        cmocka_unit_test(test_check_writer),
        cmocka_unit_test(test_mkdir_p),
        cmocka_unit_test(test_authority_round_trip),
        cmocka_unit_test(test_authority_duplicates_and_ids),
        cmocka_unit_test(test_authority_capath),
        cmocka_unit_test(test_authority_same_subject),
        cmocka_unit_test(test_leftovers_and_load_filter),
        cmocka_unit_test(test_authority_add_crash),
        cmocka_unit_test(test_authority_limit),
        cmocka_unit_test(test_authority_same_identity),
        cmocka_unit_test(test_recover_removals),
        cmocka_unit_test(test_recover_removals_hostile),
        cmocka_unit_test(test_write_set_removals),
        cmocka_unit_test(test_authority_replace),
        cmocka_unit_test(test_authority_replace_refusals),
        cmocka_unit_test(test_authority_replace_crash),
        cmocka_unit_test(test_recover_removal_of_link),
        cmocka_unit_test(test_writers_lock_exclusively),
    };
    return cmocka_run_group_tests(tests, setup_umask, NULL);
}
