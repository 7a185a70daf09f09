/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation failure injection (STYLE.md §9): every libcertd entry point is run again and again,
 * failing the 1st, 2nd, ... Nth allocation, until it runs to the end without meeting a failure.
 * Each run must return an error or a complete result: no crash, no partial output, and (under
 * ASan/LSan and valgrind, which run this test too) no leak.
 *
 * Allocations are counted in two places: OpenSSL's, through CRYPTO_set_mem_functions, and
 * libcertd's own libc calls, through the linker's --wrap (see tests/unit/meson.build), which
 * redirects malloc & co. in the objects linked into this program and nowhere else.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "csr/csr.h"
#include "issue/issue.h"
#include "keys/keys.h"
#include "pin/pin.h"
#include "store/store.h"
#include "testutil.h"
#include "util/ossl.h"
#include "x509/bundle.h"
#include "x509/inspect.h"
#include "x509/validate.h"

/* -1: never fail. Otherwise the number of allocations still allowed before one fails. */
static long alloc_budget = -1;
static bool alloc_failed;
/* Fail that one allocation only, the later ones succeed (else every one from it on fails). */
static bool alloc_is_once;

static bool alloc_should_fail(void)
{
    if (alloc_budget < 0) {
        return false;
    }
    if (alloc_budget == 0) {
        alloc_failed = true;
        if (alloc_is_once) {
            alloc_budget = -1;
        }
        return true;
    }
    alloc_budget--;
    return false;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_reallocarray(void *p, size_t n, size_t m);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_reallocarray(void *p, size_t n, size_t m);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *__wrap_malloc(size_t n)
{
    return alloc_should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return alloc_should_fail() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_should_fail() ? NULL : __real_realloc(p, n);
}

void *__wrap_reallocarray(void *p, size_t n, size_t m)
{
    return alloc_should_fail() ? NULL : __real_reallocarray(p, n, m);
}

char *__wrap_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *r = __wrap_malloc(n);
    if (r) {
        memcpy(r, s, n);
    }
    return r;
}

char *__wrap_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *r = __wrap_malloc(len + 1);
    if (r) {
        memcpy(r, s, len);
        r[len] = '\0';
    }
    return r;
}

int __wrap_asprintf(char **ret, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    char *r = __wrap_malloc((size_t)n + 1);
    if (!r) {
        return -1;
    }
    va_start(ap, fmt);
    (void)vsnprintf(r, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *ret = r;
    return n;
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return alloc_should_fail() ? NULL : __real_malloc(n);
}

static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return alloc_should_fail() ? NULL : __real_realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* One operation under test: returns its result code and frees whatever it made. */
typedef int (*op_fn)(void *arg);

/*
 * Run op with the 0th, 1st, 2nd ... allocation failing until a run meets no failure. A run that
 * met a failure must report an error or a full success; the last run must succeed.
 */
static void run_failing(const char *what, op_fn op, void *arg)
{
    /* Once without failures: OpenSSL initialises lazily, and we want to test our paths. */
    assert_int_equal(op(arg), 0);
    long n;
    for (n = 0; n < 200000; n++) {
        alloc_failed = false;
        alloc_budget = n;
        int r = op(arg);
        alloc_budget = -1;
        ERR_clear_error();
        if (!alloc_failed) {
            assert_int_equal(r, 0);
            break;
        }
        if (r < 0) {
            /* Out of memory shows as -ENOMEM; a failed OpenSSL call may only say -EIO. */
            assert_true(r == -ENOMEM || r == -EIO || r == -EBADMSG || r == -EINVAL ||
                        r == -EKEYREJECTED || r == -EOPNOTSUPP);
        }
    }
    print_message("%s: %ld allocation failure points survived\n", what, n);
    assert_true(n > 0);
}

/*
 * run_failing with only the Nth allocation failing: a failure that is swallowed (and not
 * followed by others that would be reported) must still leave an error or a complete result.
 */
static void run_failing_once(const char *what, op_fn op, void *arg)
{
    alloc_is_once = true;
    run_failing(what, op, arg);
    alloc_is_once = false;
}

struct data {
    uint8_t *bundle_pem;
    size_t bundle_len;
    EVP_PKEY *ec_key;
    X509 *cert;
    X509 *ca_cert;
    EVP_PKEY *ca_key;
    X509 *int_cert;
    char *dir;
    char *replace_dir;
};

static struct data D;

static int op_bundle(void *arg)
{
    (void)arg;
    struct certd_err err = { 0 };
    struct bundle *b = NULL;
    int r = bundle_parse(NULL, NULL, span_make(D.bundle_pem, D.bundle_len), 0, &b, &err);
    if (r < 0) {
        assert_null(b);
        return r;
    }
    assert_non_null(b);
    struct validate_policy pol;
    struct validate_result res;
    validate_policy_init(&pol, (int64_t)time(NULL));
    pol.not_yet_valid = VALIDITY_ACCEPT_WARN;
    pol.expired = VALIDITY_ACCEPT_WARN;
    r = validate_bundle(NULL, NULL, b, ENDPOINT_SERVER, &pol, NULL, NULL, &res, &err);
    (void)bundle_free(b);
    return r;
}

static int op_inspect(void *arg)
{
    (void)arg;
    struct certd_err err = { 0 };
    struct cert_info *ci = NULL;
    int r = cert_inspect(NULL, NULL, D.cert, &ci, &err);
    if (r < 0) {
        assert_null(ci);
        return r;
    }
    assert_non_null(ci->subject.rfc4514);
    (void)cert_info_free(ci);
    return 0;
}

static int op_csr(void *arg)
{
    (void)arg;
    static const char *const sans[] = { "a.example.com", "192.0.2.1", "x@example.com",
                                        "https://a.example.com/" };
    static const char *const usages[] = { "DigitalSignature", "ServerAuthentication" };
    struct csr_request req = { .common_name = "a.example.com",
                               .alt_names = sans,
                               .n_alt_names = ELEMENTSOF(sans),
                               .key_usage = usages,
                               .n_key_usage = ELEMENTSOF(usages),
                               .country = "US",
                               .organization = "Example",
                               .challenge_password = "pw" };
    struct certd_err err = { 0 };
    X509_REQ *csr = NULL;
    int r = csr_build(NULL, NULL, &req, D.ec_key, &csr, &err);
    if (r < 0) {
        assert_null(csr);
        return r;
    }
    char *pem = NULL;
    size_t len = 0;
    r = csr_to_pem(csr, &pem, &len);
    if (r == 0) {
        X509_REQ *back = NULL;
        r = csr_parse(NULL, NULL, pem, len, 0, &back, &err);
        X509_REQ_free(back);
        free(pem);
    }
    X509_REQ_free(csr);
    if (r < 0) {
        return r;
    }
    /* Renew: the subject and the SANs of a certificate, copied. */
    const struct csr_request renew = { .from_cert = D.cert, .challenge_password = "pw" };
    csr = NULL;
    r = csr_build(NULL, NULL, &renew, D.ec_key, &csr, &err);
    if (r < 0) {
        assert_null(csr);
        return r;
    }
    X509_REQ_free(csr);
    return 0;
}

static int op_selfsign(void *arg)
{
    (void)arg;
    static const char *const sans[] = { "192.0.2.1", "b.example.com" };
    struct selfsign_request req = { .common_name = "a.example.com",
                                    .alt_names = sans,
                                    .n_alt_names = 2,
                                    .days = 30,
                                    .now = 1700000000 };
    struct certd_err err = { 0 };
    X509 *x = NULL;
    int r = issue_selfsigned(NULL, NULL, D.ec_key, &req, &x, &err);
    if (r < 0) {
        assert_null(x);
        return r;
    }
    X509_free(x);
    return 0;
}

static int op_issue(void *arg)
{
    (void)arg;
    struct certd_err err = { 0 };
    struct csr_request req = { .common_name = "console-7" };
    X509_REQ *csr = NULL;
    int r = csr_build(NULL, NULL, &req, D.ec_key, &csr, &err);
    if (r < 0) {
        return r;
    }
    struct issue_profile prof = { .days = 30, .eku = CERT_EKU_CLIENT_AUTH };
    X509 *x = NULL;
    r = issue_from_csr(NULL, NULL, csr, D.ca_cert, D.ca_key, &prof, (int64_t)time(NULL), &x, &err);
    X509_REQ_free(csr);
    if (r < 0) {
        assert_null(x);
        return r;
    }
    X509_free(x);
    return 0;
}

static int op_keys(void *arg)
{
    (void)arg;
    struct secret *s = NULL;
    int r = key_private_to_pem(NULL, NULL, D.ec_key, &s);
    if (r < 0) {
        assert_null(s);
        return r;
    }
    (void)secret_free(s);
    char *pub = NULL;
    r = key_public_to_pem(NULL, NULL, D.ec_key, &pub);
    free(pub);
    if (r < 0) {
        return r;
    }
    struct pin p;
    return pin_from_cert(NULL, NULL, D.cert, &p);
}

static int op_store(void *arg)
{
    (void)arg;
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/file.pem", D.dir);
    struct certd_err err = { 0 };
    /* The target holds "old" before every run; a failed write must leave it so. */
    int r = store_write_atomic(path, span_from_str("new content"), 0600, &err);
    uint8_t *got = NULL;
    size_t len = 0;
    alloc_budget = -1;
    assert_int_equal(store_read_file(path, 1024, true, &got, &len), 0);
    if (r < 0) {
        assert_string_equal((char *)got, "old");
    } else {
        assert_string_equal((char *)got, "new content");
    }
    free(got);
    assert_int_equal(store_write_atomic(path, span_from_str("old"), 0600, NULL), 0);
    return r;
}

static int op_authority(void *arg)
{
    (void)arg;
    x509_stack *certs = sk_X509_new_null();
    if (!certs) {
        return -ENOMEM;
    }
    if (sk_X509_push(certs, D.ca_cert) <= 0) {
        sk_X509_free(certs);
        return -ENOMEM;
    }
    X509_up_ref(D.ca_cert);
    struct certd_err err = { 0 };
    char **ids = NULL;
    int r = authority_dir_add(D.dir, certs, &ids, &err);
    long saved = alloc_budget;
    alloc_budget = -1;
    if (r == 0) {
        assert_non_null(ids);
        assert_int_equal(authority_dir_remove(D.dir, ids[0], NULL), 0);
        strv_free_n(ids, 1);
    }
    /* All or nothing: after a failure nothing of this call is left behind. */
    x509_stack *loaded = NULL;
    size_t n = 99;
    assert_int_equal(authority_dir_load(NULL, NULL, D.dir, &loaded, NULL, &n), 0);
    assert_int_equal(n, 0);
    x509_stack_free(loaded);
    alloc_budget = saved;
    x509_stack_free(certs);
    return r;
}

/* A stack holding a and b (references taken), or NULL when memory runs out. */
static x509_stack *stack_of2(X509 *a, X509 *b)
{
    x509_stack *sk = sk_X509_new_null();
    if (!sk) {
        return NULL;
    }
    X509 *v[] = { a, b };
    for (size_t i = 0; i < ELEMENTSOF(v); i++) {
        if (sk_X509_push(sk, v[i]) <= 0) {
            x509_stack_free(sk);
            return NULL;
        }
        X509_up_ref(v[i]);
    }
    return sk;
}

/* The ids authority_dir_load finds in dir, joined ("" for none), malloc'd. */
static char *authority_ids(const char *dir)
{
    x509_stack *loaded = NULL;
    char **ids = NULL;
    size_t n = 0;
    assert_int_equal(authority_dir_load(NULL, NULL, dir, &loaded, &ids, &n), 0);
    char *s = calloc(n + 1, AUTHORITY_ID_LEN + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        memcpy(s + i * (AUTHORITY_ID_LEN + 1), ids[i], AUTHORITY_ID_LEN);
        s[i * (AUTHORITY_ID_LEN + 1) + AUTHORITY_ID_LEN] = ' ';
    }
    strv_free_n(ids, n);
    x509_stack_free(loaded);
    return s;
}

/*
 * replace_dir holds {root CA, server certificate}; the replace makes it {root CA (kept),
 * intermediate (written)}, the server certificate removed: a write, a kept file and a removal
 * in one set. A failed run must leave the old set, a successful one the new set, each with no
 * temporary or journal; the old set is then put back for the next run.
 */
static int op_authority_replace(void *arg)
{
    (void)arg;
    x509_stack *certs = stack_of2(D.ca_cert, D.int_cert);
    if (!certs) {
        return -ENOMEM;
    }
    struct certd_err err = { 0 };
    char **ids = NULL;
    int r = authority_dir_replace_ex(NULL, NULL, D.replace_dir, certs, 0, &ids, &err);
    long saved = alloc_budget;
    alloc_budget = -1;
    x509_stack_free(certs);

    x509_stack *want_sk = r == 0 ? stack_of2(D.ca_cert, D.int_cert) : stack_of2(D.ca_cert, D.cert);
    assert_non_null(want_sk);
    char *got = authority_ids(D.replace_dir);
    char *dir_want = scratch_dir("alloc-replace-want");
    assert_int_equal(authority_dir_add(dir_want, want_sk, NULL, NULL), 0);
    char *want = authority_ids(dir_want);
    scratch_rm(dir_want);
    assert_string_equal(got, want);
    free(got);
    free(want);
    assert_int_equal(tu_count_prefix(D.replace_dir, ".tmp"), 0);
    assert_int_equal(tu_count_prefix(D.replace_dir, ".journal"), 0);
    if (r == 0) {
        assert_non_null(ids);
        assert_int_equal(strlen(ids[1]), AUTHORITY_ID_LEN);
        strv_free_n(ids, 2);
        x509_stack *old = stack_of2(D.ca_cert, D.cert);
        assert_non_null(old);
        assert_int_equal(authority_dir_replace_ex(NULL, NULL, D.replace_dir, old, 0, NULL, NULL),
                         0);
        x509_stack_free(old);
    } else {
        assert_null(ids);
        assert_true(err_is_set(&err));
        /* OpenSSL may fail without saying why: then it is -EIO, never a refusal of the input. */
        assert_true(r == -ENOMEM ? err.code == CERTD_E_NO_MEMORY : r == -EIO);
    }
    x509_stack_free(want_sk);
    alloc_budget = saved;
    return r;
}

static int setup(void **state)
{
    (void)state;
    D.bundle_pem = fixture_read("server-key-first.pem", &D.bundle_len);
    D.cert = fixture_cert("server-ec.pem");
    D.ec_key = fixture_key("server-ec.key");
    D.ca_cert = fixture_cert("root-ca.pem");
    D.ca_key = fixture_key("root-ca.key");
    D.int_cert = fixture_cert("int-ca.pem");
    D.dir = scratch_dir("alloc");
    D.replace_dir = scratch_dir("alloc-replace");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(D.bundle_pem);
    X509_free(D.cert);
    EVP_PKEY_free(D.ec_key);
    X509_free(D.ca_cert);
    EVP_PKEY_free(D.ca_key);
    X509_free(D.int_cert);
    scratch_rm(D.dir);
    scratch_rm(D.replace_dir);
    return 0;
}

static void test_bundle(void **state)
{
    (void)state;
    run_failing("bundle_parse+validate", op_bundle, NULL);
}

static void test_inspect(void **state)
{
    (void)state;
    run_failing("cert_inspect", op_inspect, NULL);
}

static void test_csr(void **state)
{
    (void)state;
    run_failing("csr_build+parse", op_csr, NULL);
}

static void test_selfsign(void **state)
{
    (void)state;
    run_failing("issue_selfsigned", op_selfsign, NULL);
}

static void test_issue(void **state)
{
    (void)state;
    run_failing("issue_from_csr", op_issue, NULL);
}

static void test_keys(void **state)
{
    (void)state;
    run_failing("key pem+pin", op_keys, NULL);
}

static void test_store(void **state)
{
    (void)state;
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/file.pem", D.dir);
    assert_int_equal(store_write_atomic(path, span_from_str("old"), 0600, NULL), 0);
    run_failing("store_write_atomic", op_store, NULL);
}

static void test_authority(void **state)
{
    (void)state;
    run_failing("authority_dir_add", op_authority, NULL);
}

/*
 * Load of replace_dir ({root CA, server certificate}): all of it or an error. Out of memory
 * while a file is parsed is no verdict on the file: skipping it would show a certificate as
 * gone.
 */
static int op_authority_load(void *arg)
{
    (void)arg;
    x509_stack *loaded = NULL;
    char **ids = NULL;
    size_t n = 0;
    int r = authority_dir_load(NULL, NULL, D.replace_dir, &loaded, &ids, &n);
    if (r < 0) {
        return r;
    }
    assert_int_equal(n, 2);
    assert_int_equal(sk_X509_num(loaded), 2);
    strv_free_n(ids, n);
    x509_stack_free(loaded);
    return 0;
}

static void test_authority_replace(void **state)
{
    (void)state;
    x509_stack *old = stack_of2(D.ca_cert, D.cert);
    assert_non_null(old);
    assert_int_equal(authority_dir_add(D.replace_dir, old, NULL, NULL), 0);
    x509_stack_free(old);
    run_failing("authority_dir_load", op_authority_load, NULL);
    run_failing_once("authority_dir_load (one failure)", op_authority_load, NULL);
    run_failing("authority_dir_replace_ex", op_authority_replace, NULL);
}

int main(void)
{
    /* Before OpenSSL allocates anything. */
    if (CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) != 1) {
        (void)fprintf(stderr, "test-alloc: CRYPTO_set_mem_functions failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundle),
        cmocka_unit_test(test_inspect),
        cmocka_unit_test(test_csr),
        cmocka_unit_test(test_selfsign),
        cmocka_unit_test(test_issue),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_authority),
        cmocka_unit_test(test_authority_replace),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
