/* SPDX-License-Identifier: Apache-2.0 */
/* Test helpers: fixtures are read with plain libc and OpenSSL, never through libcertd. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static const char *fixtures_dir(void)
{
    const char *d = getenv("CERTD_FIXTURES");
    if (!d) {
        fail_msg("CERTD_FIXTURES is not set: run the tests with meson test");
    }
    return d;
}

const char *fixture_path(const char *name)
{
    static char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    return path;
}

uint8_t *fixture_read(const char *name, size_t *ret_len)
{
    FILE *f = fopen(fixture_path(name), "rbe");
    if (!f) {
        fail_msg("fixture %s: %s", name, strerror(errno));
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap) {
            break;
        }
        cap *= 2;
        buf = realloc(buf, cap + 1);
        assert_non_null(buf);
    }
    assert_int_equal(ferror(f), 0);
    fclose(f);
    buf[len] = '\0';
    *ret_len = len;
    return buf;
}

X509 *fixture_cert(const char *name)
{
    FILE *f = fopen(fixture_path(name), "re");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

EVP_PKEY *fixture_key(const char *name)
{
    FILE *f = fopen(fixture_path(name), "re");
    assert_non_null(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(k);
    return k;
}

char *scratch_dir(const char *tag)
{
    const char *base = getenv("CERTD_TEST_TMP");
    char tmpl[4096];
    if (base) {
        (void)mkdir(base, 0700);
    } else {
        base = "/tmp";
    }
    int n = snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX", base, tag);
    assert_true(n > 0 && (size_t)n < sizeof(tmpl));
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *r = strdup(d);
    assert_non_null(r);
    return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void scratch_rm(char *dir)
{
    if (dir) {
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
    }
}

struct fixture_keys fixture_keys;

int fixture_keys_setup(void **state)
{
    (void)state;
    fixture_keys.p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fixture_keys.p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    fixture_keys.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    fixture_keys.ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return fixture_keys.p256 && fixture_keys.p384 && fixture_keys.rsa && fixture_keys.ed25519 ? 0
                                                                                              : -1;
}

int fixture_keys_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(fixture_keys.p256);
    EVP_PKEY_free(fixture_keys.p384);
    EVP_PKEY_free(fixture_keys.rsa);
    EVP_PKEY_free(fixture_keys.ed25519);
    fixture_keys = (struct fixture_keys){ 0 };
    return 0;
}

static void cert_ext_add(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static void cert_name_add(X509_NAME *name, const char *field, const char *value)
{
    assert_int_equal(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                                (const unsigned char *)value, -1, -1, 0),
                     1);
}

X509 *tu_cert_make(const struct tu_cert_spec *spec)
{
    X509 *x = X509_new();
    uint64_t serial;
    assert_non_null(x);
    assert_non_null(spec->key);
    assert_non_null(spec->cn);
    assert_true(!spec->issuer == !spec->issuer_key);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    /* Halved: a positive INTEGER that fits the 20 octets RFC 5280 §4.1.2.2 allows. */
    assert_int_equal(RAND_bytes((unsigned char *)&serial, sizeof(serial)), 1);
    assert_int_equal(ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1), 1);
    X509_NAME *name = X509_get_subject_name(x);
    cert_name_add(name, "O", "certd tests");
    if (spec->ou) {
        cert_name_add(name, "OU", spec->ou);
    }
    cert_name_add(name, "CN", spec->cn);
    assert_int_equal(
        X509_set_issuer_name(x, spec->issuer ? X509_get_subject_name(spec->issuer) : name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), spec->nb_days * 86400));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), spec->na_days * 86400));
    assert_int_equal(X509_set_pubkey(x, spec->key), 1);

    X509V3_CTX v3;
    X509V3_set_ctx(&v3, spec->issuer ? spec->issuer : x, x, NULL, NULL, 0);
    cert_ext_add(x, &v3, NID_basic_constraints,
                 spec->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    const char *ku = spec->ku;
    if (!ku) {
        ku = spec->is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature";
    }
    if (ku[0]) {
        cert_ext_add(x, &v3, NID_key_usage, ku);
    }
    cert_ext_add(x, &v3, NID_subject_key_identifier, "hash");
    if (spec->has_aki && spec->issuer) {
        cert_ext_add(x, &v3, NID_authority_key_identifier, "keyid:always");
    }
    if (spec->eku) {
        cert_ext_add(x, &v3, NID_ext_key_usage, spec->eku);
    }
    if (spec->san) {
        cert_ext_add(x, &v3, NID_subject_alt_name, spec->san);
    }

    EVP_PKEY *signer = spec->issuer ? spec->issuer_key : spec->key;
    /* EdDSA signs the message itself: no digest. */
    const EVP_MD *md = NULL;
    if (!EVP_PKEY_is_a(signer, "ED25519") && !EVP_PKEY_is_a(signer, "ED448")) {
        md = spec->md ? spec->md : EVP_sha256();
    }
    assert_true(X509_sign(x, signer, md) > 0);
    return x;
}

char *tu_strf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

size_t tu_count_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    assert_non_null(d);
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return n;
}

char *tu_file_get(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        assert_int_equal(errno, ENOENT);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0 || len < cap) {
            break;
        }
        cap *= 2;
        buf = realloc(buf, cap + 1);
        assert_non_null(buf);
    }
    fclose(f);
    buf[len] = '\0';
    if (ret_len) {
        *ret_len = len;
    }
    return buf;
}
