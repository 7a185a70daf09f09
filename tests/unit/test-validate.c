/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509/validate: every rule for server, client and authority uploads, in its order, with the errno,
 * the detail code and a word of the message. Fixtures come through bundle_parse (the real upload
 * path); the cases the fixtures cannot express (EKU/KeyUsage variants, chain depth, forged
 * signatures, CA validity) use certificates built here with plain OpenSSL calls.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testutil.h"
#include "util/limits.h"
#include "x509/bundle.h"
#include "x509/validate.h"

#define DAY INT64_C(86400)

static int64_t asn1_unix(const ASN1_TIME *t)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int day = 0, sec = 0;
    assert_non_null(epoch);
    assert_int_equal(ASN1_TIME_diff(&day, &sec, epoch, t), 1);
    ASN1_TIME_free(epoch);
    return (int64_t)day * DAY + sec;
}

/*
 * The fixed clock of these tests: one day after server-ec.pem's notBefore, which gen-fixtures sets
 * to its own start time minus a day. Inside every fixture's validity except those of
 * expired/future/before1970, and independent of the machine's clock.
 */
static int64_t now_fixed(void)
{
    X509 *x = fixture_cert("server-ec.pem");
    int64_t t = asn1_unix(X509_get0_notBefore(x)) + DAY;
    X509_free(x);
    return t;
}

/* Parse the concatenation of fixture files through the real upload parser. */
static struct bundle *parse_files(const char *const *files, size_t n_files)
{
    size_t total = 0;
    uint8_t *all = NULL;
    for (size_t i = 0; i < n_files && files[i]; i++) {
        size_t len;
        uint8_t *data = fixture_read(files[i], &len);
        uint8_t *p = realloc(all, total + len + 1);
        assert_non_null(p);
        all = p;
        memcpy(all + total, data, len);
        total += len;
        free(data);
    }
    assert_non_null(all);
    struct bundle *b = NULL;
    struct certd_err err = { 0 };
    int r = bundle_parse(NULL, NULL, span_make(all, total), 0, &b, &err);
    if (r < 0) {
        fail_msg("bundle_parse(%s...): %d %s", files[0], r, err.msg);
    }
    free(all);
    return b;
}

static struct bundle *parse_one(const char *file)
{
    const char *files[] = { file };
    return parse_files(files, 1);
}

/* All certificates of a PEM fixture, read with OpenSSL alone. */
static STACK_OF(X509) *load_certs(const char *name, size_t max)
{
    BIO *bio = BIO_new_file(fixture_path(name), "r");
    assert_non_null(bio);
    STACK_OF(X509) *sk = sk_X509_new_null();
    assert_non_null(sk);
    X509 *x;
    while ((size_t)sk_X509_num(sk) < max && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        assert_true(sk_X509_push(sk, x) > 0);
    }
    BIO_free(bio);
    return sk;
}

/* Run a validation that must fail, and check that *ret stayed untouched. */
static void expect_fail(const struct bundle *b, enum endpoint_type type,
                        const struct validate_policy *pol, EVP_PKEY *pending,
                        const STACK_OF(X509) *existing, int want_r, enum certd_errc want_code,
                        const char *word)
{
    struct validate_result res, before;
    struct certd_err err = { 0 };
    memset(&res, 0xa5, sizeof(res));
    before = res;
    int r = validate_bundle(NULL, NULL, b, type, pol, pending, existing, &res, &err);
    if (r != want_r || err.code != want_code) {
        fail_msg("got %d %s (%s), want %d %s", r, err_code_name(err.code), err.msg, want_r,
                 err_code_name(want_code));
    }
    if (word && !strstr(err.msg, word)) {
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, word);
    }
    assert_memory_equal(&res, &before, sizeof(res));
}

/* Run a validation that must pass; warning_word NULL means no warning. */
static struct validate_result expect_ok(const struct bundle *b, enum endpoint_type type,
                                        const struct validate_policy *pol, EVP_PKEY *pending,
                                        const STACK_OF(X509) *existing, const char *warning_word)
{
    struct validate_result res;
    struct certd_err err = { 0 };
    memset(&res, 0xa5, sizeof(res));
    int r = validate_bundle(NULL, NULL, b, type, pol, pending, existing, &res, &err);
    if (r != 0) {
        fail_msg("got %d %s (%s), want success", r, err_code_name(err.code), err.msg);
    }
    assert_int_equal(err.code, CERTD_E_OK);
    if (warning_word) {
        if (!strstr(res.warning, warning_word)) {
            fail_msg("warning \"%s\" lacks \"%s\"", res.warning, warning_word);
        }
    } else {
        assert_string_equal(res.warning, "");
    }
    return res;
}

/* ---- certificates built here ---- */

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

struct ext {
    int nid;
    const char *value;
};

/* Make a v3 certificate for `key` with subject CN `cn` (NULL: O only), signed
 * by sign_key. */
static X509 *mk_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *sign_key,
                     const struct ext *exts, size_t n_exts, int64_t nb, int64_t na, long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    X509_NAME *name = X509_get_subject_name(x);
    if (cn) {
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    } else {
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                    (const unsigned char *)"no cn", -1, -1, 0),
                         1);
    }
    assert_int_equal(
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x)),
        1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    for (size_t i = 0; i < n_exts; i++) {
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    const EVP_MD *md = EVP_PKEY_is_a(sign_key, "ED25519") ? NULL : EVP_sha256();
    assert_true(X509_sign(x, sign_key, md) > 0);
    return x;
}

/* A bundle assembled by hand: certs (taken) and key (taken, nullable). */
static struct bundle *mk_bundle(X509 **certs, size_t n, EVP_PKEY *key)
{
    struct bundle *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->certs = sk_X509_new_null();
    assert_non_null(b->certs);
    for (size_t i = 0; i < n; i++) {
        assert_true(sk_X509_push(b->certs, certs[i]) > 0);
    }
    b->key = key;
    return b;
}

/* Free a bundle made by mk_bundle (not by bundle_parse, so not with
 * bundle_free). */
static void bundle_discard(struct bundle *b)
{
    sk_X509_pop_free(b->certs, X509_free);
    EVP_PKEY_free(b->key);
    free(b);
}

/* ---- fixture table ---- */

enum {
    F_REJECT = 1u << 0,  /* expired and not-yet-valid rejected */
    F_ED25519 = 1u << 1, /* Ed25519 allowed */
};

struct fcase {
    const char *files[3];
    enum endpoint_type type;
    const char *pending; /* key fixture of the pending CSR, or NULL */
    unsigned flags;
    int r;
    enum certd_errc code;
    const char *word; /* in err.msg on failure; in the warning on success (NULL: none) */
    bool uses_pending, is_expired, is_not_yet_valid;
};

#define OK(...)       .r = 0, .code = CERTD_E_OK, __VA_ARGS__
#define FAIL(e, c, w) .r = (e), .code = (c), .word = (w)
#define S             .type = ENDPOINT_SERVER
#define C             .type = ENDPOINT_CLIENT
#define A             .type = ENDPOINT_AUTHORITY

static const struct fcase fixture_cases[] = {
    /* server/client: the shapes users upload */
    { .files = { "server-ec-bundle.pem" }, S, OK() },
    { .files = { "server-key-first.pem" }, S, OK() },
    { .files = { "server-ec-chain.pem", "server-ec.key" }, S, OK() },
    { .files = { "selfsigned.pem" }, S, OK() },
    { .files = { "server-rsa.pem", "server-rsa.key" }, S, OK() },
    { .files = { "server-rsa.pem", "server-rsa.key" }, C, OK() },
    /* rule 1: one leaf, first; every later certificate a CA */
    { .files = { "server-two-leaves.pem" },
      S,
      FAIL(-EINVAL, CERTD_E_NOT_ONE_LEAF,
           "more than one end-entity certificate: 'server.example.com' at position 2") },
    { .files = { "server-ec-bundle.pem", "server-rsa.pem" },
      S,
      FAIL(-EINVAL, CERTD_E_NOT_ONE_LEAF, "'rsa.example.com' at position 2 is not a CA") },
    /* the first certificate is the leaf even when it is a CA: then it needs its key */
    { .files = { "ca-bundle.pem" },
      S,
      FAIL(-EINVAL, CERTD_E_KEY_MISSING, "for the certificate 'certd test root'") },
    /* a reversed upload: the key names the certificate that must come first */
    { .files = { "server-chain-reversed.pem" },
      S,
      FAIL(
          -EINVAL, CERTD_E_CHAIN_ORDER,
          "the private key must come first, followed by its issuers; it is 'server.example.com' at position 2") },
    { .files = { "int-ca.pem", "server-ec.pem" },
      S,
      .pending = "server-ec.key",
      FAIL(-EINVAL, CERTD_E_CHAIN_ORDER, "key of the pending CSR must come first") },
    /* the key belongs to the intermediate, not to the first certificate */
    /* ... and without any key, the only end-entity certificate names itself */
    { .files = { "int-ca.pem", "server-ec.pem" },
      S,
      FAIL(
          -EINVAL, CERTD_E_CHAIN_ORDER,
          "end-entity certificate must come first, followed by its issuers; it is 'server.example.com' at position 2, after the CA certificate 'certd test intermediate'") },
    { .files = { "server-ec-chain.pem", "int-ca.key" },
      S,
      FAIL(-EINVAL, CERTD_E_CHAIN_ORDER,
           "first, followed by its issuers; it is 'certd test intermediate' at position 2") },
    /* rule 4: each certificate issued by the next */
    { .files = { "server-chain-wrong.pem" },
      S,
      FAIL(-EINVAL, CERTD_E_CHAIN_ORDER,
           "'server.example.com' was not issued by certificate 2 'certd test root'") },
    /* rule 2: the key */
    { .files = { "server-mismatch.pem" },
      S,
      FAIL(-EKEYREJECTED, CERTD_E_KEY_MISMATCH,
           "does not match the certificate 'server.example.com'") },
    { .files = { "server-ec.pem" }, S, FAIL(-EINVAL, CERTD_E_KEY_MISSING, "no private key") },
    { .files = { "server-ec.pem" }, S, .pending = "server-ec.key", OK(.uses_pending = true) },
    { .files = { "server-ec-chain.pem" }, S, .pending = "server-ec.key", OK(.uses_pending = true) },
    { .files = { "server-ec-chain.pem" },
      C,
      .pending = "server-ec.key",
      FAIL(-EINVAL, CERTD_E_EKU_MISMATCH, "serverAuth") },
    { .files = { "server-ec.pem" },
      S,
      .pending = "other.key",
      FAIL(-EKEYREJECTED, CERTD_E_KEY_MISMATCH, "does not match the key of the pending CSR") },
    /* a key in the upload wins over the pending one */
    { .files = { "server-ec-bundle.pem" }, S, .pending = "other.key", OK() },
    { .files = { "server-mismatch.pem" },
      S,
      .pending = "server-ec.key",
      FAIL(-EKEYREJECTED, CERTD_E_KEY_MISMATCH, "private key does not match") },
    { .files = { "codesign-only.pem" },
      S,
      FAIL(-EINVAL, CERTD_E_KEY_MISSING, "'codesign.example.com'") },
    /* rule 3: strength, named by the certificate's CN */
    { .files = { "rsa1024.pem", "rsa1024.key" },
      S,
      FAIL(-EKEYREJECTED, CERTD_E_KEY_WEAK, "weak.example.com") },
    { .files = { "secp256k1.pem", "secp256k1.key" },
      S,
      FAIL(-EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "k1.example.com") },
    { .files = { "ed25519.pem", "ed25519.key" },
      S,
      FAIL(-EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "ed.example.com") },
    { .files = { "ed25519.pem", "ed25519.key" }, S, .flags = F_ED25519, OK() },
    /* rule 5: EKU */
    { .files = { "client-ec384.pem", "client-ec384.key" },
      S,
      FAIL(-EINVAL, CERTD_E_EKU_MISMATCH, "is for clientAuth, not serverAuth") },
    { .files = { "client-ec384.pem", "client-ec384.key" }, C, OK() },
    { .files = { "server-ec-bundle.pem" },
      C,
      FAIL(-EINVAL, CERTD_E_EKU_MISMATCH, "not clientAuth") },
    /* rule 6: validity */
    { .files = { "expired.pem" },
      S,
      OK(.word = "'expired.example.com' expired on 2001-01-01T00:00:00Z", .is_expired = true) },
    { .files = { "expired.pem" },
      S,
      .flags = F_REJECT,
      FAIL(-EKEYEXPIRED, CERTD_E_CERT_EXPIRED, "expired on 2001-01-01T00:00:00Z") },
    { .files = { "future.pem" }, S, OK(.word = "not valid before", .is_not_yet_valid = true) },
    { .files = { "future.pem" },
      S,
      .flags = F_REJECT,
      FAIL(-EKEYEXPIRED, CERTD_E_CERT_NOT_YET_VALID, "'future.example.com' is not valid before") },
    { .files = { "before1970.pem" },
      S,
      FAIL(-EKEYEXPIRED, CERTD_E_CERT_BEFORE_1970, "1965-01-01T00:00:00Z, before 1970") },
    { .files = { "before1970.pem" },
      S,
      .flags = F_REJECT,
      FAIL(-EKEYEXPIRED, CERTD_E_CERT_BEFORE_1970, "before 1970") },
    /* authority */
    { .files = { "ca-bundle.pem" }, A, OK() },
    { .files = { "ca-noku.pem" }, A, OK() },
    { .files = { "root-ca.pem", "int-ca.pem" }, A, OK() },
    { .files = { "ca-with-key.pem" },
      A,
      FAIL(-EPERM, CERTD_E_KEY_NOT_ALLOWED, "private key was included") },
    { .files = { "ca-nokeycertsign.pem" },
      A,
      FAIL(-EINVAL, CERTD_E_CA_NO_KEYCERTSIGN,
           "'ca without keyCertSign' has KeyUsage digitalSignature, without keyCertSign") },
    { .files = { "server-ec.pem" },
      A,
      FAIL(-EINVAL, CERTD_E_NOT_CA, "'server.example.com' is not a CA") },
    { .files = { "ca-bundle.pem", "codesign-only.pem" },
      A,
      FAIL(-EINVAL, CERTD_E_NOT_CA, "codesign.example.com") },
    { .files = { "root-ca.pem", "int-ca.pem", "root-ca.pem" },
      A,
      FAIL(-EEXIST, CERTD_E_DUPLICATE,
           "'certd test root' appears twice in the upload (positions 1 and 3)") },
    { .files = { "ca-eleven.pem" }, A, FAIL(-E2BIG, CERTD_E_LIMIT_REACHED, "at most 10") },
};

#undef OK
#undef FAIL
#undef S
#undef C
#undef A

static void test_fixture_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(fixture_cases); i++) {
        const struct fcase *c = &fixture_cases[i];
        size_t n_files = 0;
        while (n_files < ELEMENTSOF(c->files) && c->files[n_files]) {
            n_files++;
        }
        print_message("case %zu: %s (%s)\n", i, c->files[0] ? c->files[0] : "(none)",
                      endpoint_type_name(c->type));
        struct bundle *b = parse_files(c->files, n_files);
        EVP_PKEY *pending = c->pending ? fixture_key(c->pending) : NULL;
        struct validate_policy pol;
        validate_policy_init(&pol, now_fixed());
        if (c->flags & F_REJECT) {
            pol.expired = VALIDITY_REJECT;
            pol.not_yet_valid = VALIDITY_REJECT;
        }
        pol.keys.allow_ed25519 = (c->flags & F_ED25519) != 0;
        if (c->r < 0) {
            expect_fail(b, c->type, &pol, pending, NULL, c->r, c->code, c->word);
        } else {
            struct validate_result res = expect_ok(b, c->type, &pol, pending, NULL, c->word);
            assert_int_equal(res.uses_pending_key, c->uses_pending);
            assert_int_equal(res.is_expired, c->is_expired);
            assert_int_equal(res.is_not_yet_valid, c->is_not_yet_valid);
        }
        EVP_PKEY_free(pending);
        bundle_free(b);
    }
}

/* The injected clock alone decides: notBefore and notAfter at N and N+1. */
static void test_injected_clock(void **state)
{
    (void)state;
    struct bundle *b = parse_one("server-ec-bundle.pem");
    X509 *leaf = bundle_cert(b, 0);
    int64_t nb = asn1_unix(X509_get0_notBefore(leaf));
    int64_t na = asn1_unix(X509_get0_notAfter(leaf));
    struct validate_policy pol;
    struct validate_result res;

    validate_policy_init(&pol, nb);
    res = expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    assert_false(res.is_not_yet_valid);
    validate_policy_init(&pol, nb - 1);
    res = expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, "'server.example.com' is not valid");
    assert_true(res.is_not_yet_valid);
    assert_false(res.is_expired);
    pol.not_yet_valid = VALIDITY_REJECT;
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYEXPIRED, CERTD_E_CERT_NOT_YET_VALID,
                "not valid before");
    /* the expiry policy does not govern not-yet-valid, and vice versa */
    pol.not_yet_valid = VALIDITY_ACCEPT_WARN;
    pol.expired = VALIDITY_REJECT;
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, "not valid before");

    /* a controller that booted with a 1970 clock */
    validate_policy_init(&pol, 0);
    res = expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, "not valid before");
    assert_true(res.is_not_yet_valid);

    validate_policy_init(&pol, na);
    res = expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    assert_false(res.is_expired);
    validate_policy_init(&pol, na + 1);
    res = expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, "expired on");
    assert_true(res.is_expired);
    pol.expired = VALIDITY_REJECT;
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYEXPIRED, CERTD_E_CERT_EXPIRED,
                "'server.example.com' expired on");

    /* expired.pem becomes valid when the clock is set back into its validity */
    struct bundle *old = parse_one("expired.pem");
    validate_policy_init(&pol, asn1_unix(X509_get0_notBefore(bundle_cert(old, 0))) + DAY);
    pol.expired = VALIDITY_REJECT;
    pol.not_yet_valid = VALIDITY_REJECT;
    res = expect_ok(old, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    assert_false(res.is_expired);
    bundle_free(old);
    bundle_free(b);
}

/* EKU rules on certificates built here: what each purpose set allows. */
static void test_eku(void **state)
{
    (void)state;
    static const struct {
        const char *eku; /* NULL: no EKU extension */
        enum endpoint_type type;
        int r;
        const char *word;
    } cases[] = {
        { NULL, ENDPOINT_SERVER, 0, NULL },
        { NULL, ENDPOINT_CLIENT, 0, NULL },
        { "serverAuth", ENDPOINT_SERVER, 0, NULL },
        { "serverAuth", ENDPOINT_CLIENT, -EINVAL, "is for serverAuth, not clientAuth" },
        { "clientAuth", ENDPOINT_CLIENT, 0, NULL },
        { "serverAuth,clientAuth", ENDPOINT_SERVER, 0, NULL },
        { "serverAuth,clientAuth", ENDPOINT_CLIENT, 0, NULL },
        { "anyExtendedKeyUsage", ENDPOINT_SERVER, 0, NULL },
        { "anyExtendedKeyUsage", ENDPOINT_CLIENT, 0, NULL },
        { "codeSigning", ENDPOINT_SERVER, -EINVAL, "is for codeSigning, not serverAuth" },
        { "codeSigning", ENDPOINT_CLIENT, -EINVAL, "is for codeSigning, not clientAuth" },
        { "codeSigning,emailProtection", ENDPOINT_SERVER, -EINVAL, "codeSigning, emailProtection" },
        { "1.2.3.4", ENDPOINT_SERVER, -EINVAL, "is for 1.2.3.4, not serverAuth" },
    };
    int64_t now = now_fixed();
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        EVP_PKEY *key = ec_key();
        struct ext exts[] = {
            { NID_basic_constraints, "critical,CA:FALSE" },
            { NID_ext_key_usage, cases[i].eku },
        };
        X509 *x = mk_cert(key, "eku.example.com", NULL, key, exts, cases[i].eku ? 2 : 1, now - DAY,
                          now + DAY, 1);
        struct bundle *b = mk_bundle(&x, 1, key);
        struct validate_policy pol;
        validate_policy_init(&pol, now);
        print_message("case %zu: %s\n", i, cases[i].eku ? cases[i].eku : "(none)");
        if (cases[i].r < 0) {
            expect_fail(b, cases[i].type, &pol, NULL, NULL, cases[i].r, CERTD_E_EKU_MISMATCH,
                        cases[i].word);
        } else {
            (void)expect_ok(b, cases[i].type, &pol, NULL, NULL, NULL);
        }
        bundle_discard(b);
    }
}

/* KeyUsage rules: digitalSignature always does, keyEncipherment only for RSA. */
static void test_key_usage(void **state)
{
    (void)state;
    static const struct {
        bool is_rsa;
        const char *ku;
        int r;
        const char *word;
    } cases[] = {
        { false, "critical,digitalSignature", 0, NULL },
        { false, "critical,digitalSignature,keyEncipherment", 0, NULL },
        { false, "critical,keyEncipherment", -EINVAL,
          "has KeyUsage keyEncipherment; TLS needs digitalSignature" },
        { false, "critical,keyAgreement", -EINVAL, "KeyUsage keyAgreement" },
        { false, "critical,keyCertSign,cRLSign", -EINVAL, "keyCertSign, cRLSign" },
        { true, "critical,keyEncipherment", 0, NULL },
        { true, "critical,digitalSignature", 0, NULL },
        { true, "critical,nonRepudiation", -EINVAL,
          "nonRepudiation; TLS needs digitalSignature or keyEncipherment" },
    };
    int64_t now = now_fixed();
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_non_null(rsa);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        EVP_PKEY *key;
        if (cases[i].is_rsa) {
            assert_int_equal(EVP_PKEY_up_ref(rsa), 1);
            key = rsa;
        } else {
            key = ec_key();
        }
        struct ext exts[] = {
            { NID_basic_constraints, "critical,CA:FALSE" },
            { NID_key_usage, cases[i].ku },
        };
        X509 *x = mk_cert(key, "ku.example.com", NULL, key, exts, 2, now - DAY, now + DAY, 1);
        struct bundle *b = mk_bundle(&x, 1, key);
        struct validate_policy pol;
        validate_policy_init(&pol, now);
        print_message("case %zu: %s\n", i, cases[i].ku);
        if (cases[i].r < 0) {
            expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, cases[i].r,
                        CERTD_E_KEY_USAGE_MISMATCH, cases[i].word);
        } else {
            (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
        }
        bundle_discard(b);
    }
    EVP_PKEY_free(rsa);
}

/*
 * A real chain of n_ca CAs under a leaf, leaf first: ca[0] is the root, ca[i] signs ca[i+1], the
 * last CA signs the leaf. bc (nullable) gives each CA's basicConstraints, root first; NULL entries
 * and a NULL bc mean "critical,CA:TRUE".
 */
static struct bundle *mk_chain_bc(size_t n_ca, const char *const *bc, int64_t now)
{
    X509 *certs[CERTD_BUNDLE_CERTS_MAX];
    EVP_PKEY *keys[CERTD_BUNDLE_CERTS_MAX];
    static const struct ext leaf_exts[] = {
        { NID_basic_constraints, "critical,CA:FALSE" },
        { NID_ext_key_usage, "serverAuth" },
    };
    assert_true(n_ca + 1 <= CERTD_BUNDLE_CERTS_MAX);
    for (size_t i = 0; i < n_ca; i++) {
        char cn[32];
        (void)snprintf(cn, sizeof(cn), "ca %zu", i);
        const struct ext ca_exts[] = {
            { NID_basic_constraints, bc && bc[i] ? bc[i] : "critical,CA:TRUE" },
            { NID_key_usage, "critical,keyCertSign,cRLSign" },
        };
        keys[i] = ec_key();
        certs[i] = mk_cert(keys[i], cn, i ? certs[i - 1] : NULL, i ? keys[i - 1] : keys[i], ca_exts,
                           ELEMENTSOF(ca_exts), now - DAY, now + DAY, (long)i + 1);
    }
    EVP_PKEY *leaf_key = ec_key();
    X509 *leaf = mk_cert(leaf_key, "deep.example.com", certs[n_ca - 1], keys[n_ca - 1], leaf_exts,
                         ELEMENTSOF(leaf_exts), now - DAY, now + DAY, 100);
    X509 *ordered[CERTD_BUNDLE_CERTS_MAX];
    ordered[0] = leaf;
    for (size_t i = 0; i < n_ca; i++) {
        ordered[i + 1] = certs[n_ca - 1 - i];
        EVP_PKEY_free(keys[i]);
    }
    return mk_bundle(ordered, n_ca + 1, leaf_key);
}

static struct bundle *mk_chain(size_t n_ca, int64_t now)
{
    return mk_chain_bc(n_ca, NULL, now);
}

/* Chain depth at CERTD_CHAIN_DEPTH_MAX and one more. */
static void test_chain_depth(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    struct validate_policy pol;
    validate_policy_init(&pol, now);

    struct bundle *b = mk_chain(CERTD_CHAIN_DEPTH_MAX - 1, now);
    assert_int_equal(bundle_n_certs(b), CERTD_CHAIN_DEPTH_MAX);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);

    b = mk_chain(CERTD_CHAIN_DEPTH_MAX, now);
    assert_int_equal(bundle_n_certs(b), CERTD_CHAIN_DEPTH_MAX + 1);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -E2BIG, CERTD_E_CHAIN_TOO_LONG,
                "holds 11 certificates; at most 10");
    bundle_discard(b);

    /* an out-of-order middle: swap two intermediates */
    b = mk_chain(3, now);
    X509 *a = sk_X509_value(b->certs, 1);
    X509 *c = sk_X509_value(b->certs, 2);
    (void)sk_X509_set(b->certs, 1, c);
    (void)sk_X509_set(b->certs, 2, a);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "certificate 1 'deep.example.com' was not issued by certificate 2 'ca 1'");
    bundle_discard(b);
}

/* Names link, but the signature was made by another key: X509_verify must catch
 * it. */
static void test_chain_forged_signature(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    EVP_PKEY *ca_key = ec_key(), *forger = ec_key(), *leaf_key = ec_key();
    X509 *ca = mk_cert(ca_key, "real ca", NULL, ca_key, ca_exts, 1, now - DAY, now + DAY, 1);
    X509 *leaf =
        mk_cert(leaf_key, "forged.example.com", ca, forger, leaf_exts, 1, now - DAY, now + DAY, 2);
    X509 *certs[] = { leaf, ca };
    struct bundle *b = mk_bundle(certs, 2, leaf_key);
    struct validate_policy pol;
    validate_policy_init(&pol, now);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "'forged.example.com' was not issued by certificate 2 'real ca'");
    bundle_discard(b);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(forger);
}

/* The signature verifies (same key), but the names do not link: X509_check_issued catches it. */
static void test_chain_name_mismatch(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    EVP_PKEY *ca_key = ec_key(), *leaf_key = ec_key();
    X509 *ca = mk_cert(ca_key, "real ca", NULL, ca_key, ca_exts, 1, now - DAY, now + DAY, 1);
    X509 *twin = mk_cert(ca_key, "twin ca", NULL, ca_key, ca_exts, 1, now - DAY, now + DAY, 2);
    X509 *leaf =
        mk_cert(leaf_key, "named.example.com", ca, ca_key, leaf_exts, 1, now - DAY, now + DAY, 3);
    struct validate_policy pol;
    validate_policy_init(&pol, now);

    assert_int_equal(X509_up_ref(leaf), 1);
    assert_int_equal(EVP_PKEY_up_ref(leaf_key), 1);
    X509 *good[] = { leaf, ca };
    struct bundle *b = mk_bundle(good, 2, leaf_key);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);

    X509 *bad[] = { leaf, twin };
    b = mk_bundle(bad, 2, leaf_key);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "'named.example.com' was not issued by certificate 2 'twin ca'");
    bundle_discard(b);
    EVP_PKEY_free(ca_key);
}

/*
 * A v1 certificate (no extensions) for `key`, signed by sign_key under issuer (NULL: self-signed).
 * Re-read from DER, so that OpenSSL judges it as it would an upload.
 */
static X509 *mk_v1_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *sign_key, int64_t nb,
                        int64_t na, long serial)
{
    X509 *x = mk_cert(key, cn, issuer, sign_key, NULL, 0, nb, na, serial);
    assert_int_equal(X509_set_version(x, X509_VERSION_1), 1);
    assert_true(X509_sign(x, sign_key, EVP_sha256()) > 0);
    X509 *copy = X509_dup(x);
    assert_non_null(copy);
    X509_free(x);
    assert_int_equal(X509_get_version(copy), X509_VERSION_1);
    return copy;
}

/*
 * Rule 1: the first certificate is the leaf whatever its basicConstraints; every later one must be
 * able to issue (CA:TRUE, or v1).
 */
static void test_leaf_first(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    struct validate_policy pol;
    validate_policy_init(&pol, now);

    /* What `openssl req -x509` makes by default: self-signed, SKI/AKI, critical CA:TRUE, no
     * KeyUsage or EKU; an RSA 2048 key. */
    static const struct ext req_x509[] = {
        { NID_subject_key_identifier, "hash" },
        { NID_authority_key_identifier, "keyid:always" },
        { NID_basic_constraints, "critical,CA:TRUE" },
    };
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_non_null(rsa);
    X509 *ss = mk_cert(rsa, "bmc.example.com", NULL, rsa, req_x509, ELEMENTSOF(req_x509), now - DAY,
                       now + 365 * DAY, 1);
    assert_int_equal(X509_check_ca(ss), 1);
    assert_int_equal(EVP_PKEY_up_ref(rsa), 1);
    struct bundle *b = mk_bundle(&ss, 1, rsa);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    (void)expect_ok(b, ENDPOINT_CLIENT, &pol, NULL, NULL, NULL);
    /* the same certificate with the pending CSR key, and with a key that does not match */
    EVP_PKEY *other = ec_key();
    b->key = NULL;
    struct validate_result res = expect_ok(b, ENDPOINT_SERVER, &pol, rsa, NULL, NULL);
    assert_true(res.uses_pending_key);
    expect_fail(b, ENDPOINT_SERVER, &pol, other, NULL, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                "'bmc.example.com' does not match the key of the pending CSR");
    b->key = rsa;
    bundle_discard(b);
    EVP_PKEY_free(rsa);

    /* a self-signed CA:TRUE leaf still obeys EKU */
    static const struct ext ca_server[] = {
        { NID_basic_constraints, "critical,CA:TRUE" },
        { NID_ext_key_usage, "serverAuth" },
    };
    EVP_PKEY *key = ec_key();
    ss = mk_cert(key, "ca-leaf.example.com", NULL, key, ca_server, 2, now - DAY, now + DAY, 1);
    b = mk_bundle(&ss, 1, key);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    expect_fail(b, ENDPOINT_CLIENT, &pol, NULL, NULL, -EINVAL, CERTD_E_EKU_MISMATCH,
                "'ca-leaf.example.com' is for serverAuth, not clientAuth");
    bundle_discard(b);

    /* a v1 root after the leaf is chain, not a second leaf, when it signed the leaf */
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    EVP_PKEY *root_key = ec_key(), *leaf_key = ec_key();
    X509 *v1 = mk_v1_cert(root_key, "v1 root", NULL, root_key, now - DAY, now + DAY, 1);
    X509 *leaf = mk_cert(leaf_key, "v1leaf.example.com", v1, root_key, leaf_exts, 1, now - DAY,
                         now + DAY, 2);
    X509 *certs[3] = { leaf, v1 };
    assert_int_equal(EVP_PKEY_up_ref(leaf_key), 1);
    assert_int_equal(X509_up_ref(leaf), 1);
    b = mk_bundle(certs, 2, leaf_key);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);

    /* ... and breaks the chain when it did not */
    X509 *v1_other = mk_v1_cert(other, "v1 root", NULL, other, now - DAY, now + DAY, 3);
    certs[0] = leaf;
    certs[1] = v1_other;
    assert_int_equal(EVP_PKEY_up_ref(leaf_key), 1);
    assert_int_equal(X509_up_ref(leaf), 1);
    b = mk_bundle(certs, 2, leaf_key);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "'v1leaf.example.com' was not issued by certificate 2 'v1 root'");
    bundle_discard(b);

    /* explicit end entities after the leaf: CA:FALSE, or v3 without basicConstraints; at the
     * position they hold, also after a CA */
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext ku_only[] = { { NID_key_usage, "critical,keyCertSign" } };
    static const struct {
        const struct ext *exts;
        size_t n_exts;
        size_t pos;
        const char *word;
    } ees[] = {
        { leaf_exts, 1, 1, "more than one end-entity certificate: 'second' at position 2" },
        { NULL, 0, 1, "'second' at position 2 is not a CA" },
        { ku_only, 1, 1, "'second' at position 2 is not a CA" },
        { leaf_exts, 1, 2, "'second' at position 3" },
    };
    for (size_t i = 0; i < ELEMENTSOF(ees); i++) {
        print_message("second end entity %zu\n", i);
        X509 *ca = mk_cert(root_key, "a ca", NULL, root_key, ca_exts, 1, now - DAY, now + DAY, 4);
        X509 *second = mk_cert(other, "second", ca, root_key, ees[i].exts, ees[i].n_exts, now - DAY,
                               now + DAY, 5);
        assert_int_equal(X509_up_ref(leaf), 1);
        certs[0] = leaf;
        certs[1] = ees[i].pos == 1 ? second : ca;
        certs[2] = ees[i].pos == 1 ? ca : second;
        assert_int_equal(EVP_PKEY_up_ref(leaf_key), 1);
        b = mk_bundle(certs, 3, leaf_key);
        expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_NOT_ONE_LEAF,
                    ees[i].word);
        /* the key of the misplaced end entity: a reversed upload, told as such */
        assert_int_equal(EVP_PKEY_up_ref(other), 1);
        EVP_PKEY_free(b->key);
        b->key = other;
        char want[128];
        (void)snprintf(want, sizeof(want),
                       "must come first, followed by its issuers; it is 'second' at position %zu",
                       ees[i].pos + 1);
        expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER, want);
        bundle_discard(b);
    }
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(other);
}

/* Intermediates: outside their validity is the issuer's business; before 1970 is not. */
static void test_chain_intermediate_validity(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    static const struct {
        bool is_before_1970;
        int64_t nb, na; /* relative to now */
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { false, -3 * DAY, -DAY, 0, CERTD_E_OK, NULL }, /* expired intermediate */
        { false, DAY, 3 * DAY, 0, CERTD_E_OK, NULL },   /* not yet valid intermediate */
        { true, 0, DAY, -EKEYEXPIRED, CERTD_E_CERT_BEFORE_1970,
          "'old ca' is valid from 1969-12-31T00:00:00Z" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        EVP_PKEY *ca_key = ec_key(), *leaf_key = ec_key();
        int64_t nb = cases[i].is_before_1970 ? -DAY : now + cases[i].nb;
        X509 *ca = mk_cert(ca_key, "old ca", NULL, ca_key, ca_exts, 1, nb, now + cases[i].na, 1);
        X509 *leaf = mk_cert(leaf_key, "leaf.example.com", ca, ca_key, leaf_exts, 1, now - DAY,
                             now + DAY, 2);
        X509 *certs[] = { leaf, ca };
        struct bundle *b = mk_bundle(certs, 2, leaf_key);
        struct validate_policy pol;
        validate_policy_init(&pol, now);
        pol.expired = VALIDITY_REJECT;
        pol.not_yet_valid = VALIDITY_REJECT;
        print_message("case %zu\n", i);
        if (cases[i].r < 0) {
            expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, cases[i].r, cases[i].code,
                        cases[i].word);
        } else {
            struct validate_result res = expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
            assert_false(res.is_expired);
            assert_false(res.is_not_yet_valid);
        }
        bundle_discard(b);
        EVP_PKEY_free(ca_key);
    }
}

/*
 * What OpenSSL's own verifier says of b, to show that the rules below agree with it: the last
 * certificate (self-signed) is the trust anchor, the ones between untrusted, at the test clock and
 * security level 2 (112 bits, as `openssl verify -auth_level 2`). X509_V_OK or the error.
 */
static int openssl_verdict(const struct bundle *b, int64_t now)
{
    size_t n = bundle_n_certs(b);
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(untrusted);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, bundle_cert(b, n - 1)), 1);
    for (size_t i = 1; i + 1 < n; i++) {
        assert_true(sk_X509_push(untrusted, bundle_cert(b, i)) > 0);
    }
    assert_int_equal(X509_STORE_CTX_init(ctx, store, bundle_cert(b, 0), untrusted), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)now);
    X509_VERIFY_PARAM_set_auth_level(param, 2);
    int r = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    X509_STORE_free(store);
    ERR_clear_error();
    return r;
}

/* Sign x again with md (NULL for Ed25519) and return a decoded copy, as an upload would be. */
static X509 *resign(X509 *x, EVP_PKEY *sign_key, const EVP_MD *md)
{
    assert_true(X509_sign(x, sign_key, md) > 0);
    X509 *copy = X509_dup(x);
    assert_non_null(copy);
    X509_free(x);
    return copy;
}

/*
 * Rule 4: every certificate after the leaf must be a CA as X509_check_ca sees it. A v1 certificate
 * qualifies only as a self-signed root (test_leaf_first), and a CA:TRUE certificate whose KeyUsage
 * lacks keyCertSign not at all.
 */
static void test_chain_not_ca(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext ds_ca[] = {
        { NID_basic_constraints, "critical,CA:TRUE" },
        { NID_key_usage, "critical,digitalSignature" },
    };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    struct validate_policy pol;
    validate_policy_init(&pol, now);
    EVP_PKEY *root_key = ec_key(), *int_key = ec_key(), *leaf_key = ec_key();
    X509 *root = mk_cert(root_key, "root", NULL, root_key, ca_exts, 1, now - DAY, now + DAY, 1);

    /* a v1 intermediate, not self-signed: `openssl verify` says "invalid CA certificate" */
    X509 *v1 = mk_v1_cert(int_key, "v1 int", root, root_key, now - DAY, now + DAY, 2);
    assert_int_equal(X509_check_ca(v1), 0);
    X509 *leaf =
        mk_cert(leaf_key, "leaf.example.com", v1, int_key, leaf_exts, 1, now - DAY, now + DAY, 3);
    assert_int_equal(X509_up_ref(root), 1);
    assert_int_equal(EVP_PKEY_up_ref(leaf_key), 1);
    X509 *certs[] = { leaf, v1, root };
    struct bundle *b = mk_bundle(certs, 3, leaf_key);
    assert_int_equal(openssl_verdict(b, now), X509_V_ERR_INVALID_CA);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_NOT_CA,
                "'v1 int' at position 2 is not a CA");
    /* the same as the last certificate, with the pending key */
    X509_free(sk_X509_pop(b->certs));
    EVP_PKEY_free(b->key);
    b->key = NULL;
    expect_fail(b, ENDPOINT_SERVER, &pol, leaf_key, NULL, -EINVAL, CERTD_E_NOT_CA,
                "only a self-signed v1 root may issue certificates");
    bundle_discard(b);

    /* CA:TRUE, but KeyUsage without keyCertSign (RFC 5280 §4.2.1.3) */
    X509 *ds = mk_cert(int_key, "signing-only ca", root, root_key, ds_ca, ELEMENTSOF(ds_ca),
                       now - DAY, now + DAY, 4);
    leaf =
        mk_cert(leaf_key, "leaf.example.com", ds, int_key, leaf_exts, 1, now - DAY, now + DAY, 5);
    certs[0] = leaf;
    certs[1] = ds;
    certs[2] = root;
    b = mk_bundle(certs, 3, leaf_key);
    assert_int_not_equal(openssl_verdict(b, now), X509_V_OK);
    expect_fail(
        b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CA_NO_KEYCERTSIGN,
        "'signing-only ca' at position 2 has KeyUsage digitalSignature, without keyCertSign");
    bundle_discard(b);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(int_key);
}

/*
 * Rule 4: pathLenConstraint (RFC 5280 §4.2.1.9), at N and N+1: the number of non-self-issued
 * intermediate CAs below each CA in the upload, the leaf not counted.
 */
static void test_chain_pathlen(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct {
        size_t n_ca;
        const char *bc[3]; /* root first; NULL: CA:TRUE without pathlen */
        const char *word;  /* NULL: accepted */
    } cases[] = {
        { 1, { "critical,CA:TRUE,pathlen:0" }, NULL },
        { 2,
          { "critical,CA:TRUE,pathlen:0" },
          "the CA certificate 'ca 0' at position 3 allows 0 intermediate CAs below it (pathLenConstraint 0), but the chain has 1" },
        { 2, { "critical,CA:TRUE,pathlen:1" }, NULL },
        { 3, { "critical,CA:TRUE,pathlen:1" }, "'ca 0' at position 4 allows 1 intermediate" },
        { 3, { "critical,CA:TRUE,pathlen:2" }, NULL },
        /* an intermediate's own constraint */
        { 3,
          { NULL, "critical,CA:TRUE,pathlen:0" },
          "'ca 1' at position 3 allows 0 intermediate CAs below it (pathLenConstraint 0), but the chain has 1" },
        { 3, { NULL, NULL, "critical,CA:TRUE,pathlen:0" }, NULL },
    };
    struct validate_policy pol;
    validate_policy_init(&pol, now);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        print_message("case %zu\n", i);
        struct bundle *b = mk_chain_bc(cases[i].n_ca, cases[i].bc, now);
        if (cases[i].word) {
            assert_int_equal(openssl_verdict(b, now), X509_V_ERR_PATH_LENGTH_EXCEEDED);
            expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -E2BIG, CERTD_E_CHAIN_TOO_LONG,
                        cases[i].word);
        } else {
            assert_int_equal(openssl_verdict(b, now), X509_V_OK);
            (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
        }
        bundle_discard(b);
    }

    /*
     * A self-issued intermediate (same name, new key: a root key rollover) does not count: root
     * (pathlen:0) -> "root" with another key -> leaf.
     */
    static const struct ext root_exts[] = { { NID_basic_constraints,
                                              "critical,CA:TRUE,pathlen:0" } };
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    EVP_PKEY *old_key = ec_key(), *new_key = ec_key(), *leaf_key = ec_key();
    X509 *root = mk_cert(old_key, "root", NULL, old_key, root_exts, 1, now - DAY, now + DAY, 1);
    X509 *rollover = mk_cert(new_key, "root", root, old_key, ca_exts, 1, now - DAY, now + DAY, 2);
    X509 *leaf = mk_cert(leaf_key, "leaf.example.com", rollover, new_key, leaf_exts, 1, now - DAY,
                         now + DAY, 3);
    X509 *certs[] = { leaf, rollover, root };
    struct bundle *b = mk_bundle(certs, 3, leaf_key);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);
    EVP_PKEY_free(old_key);
    EVP_PKEY_free(new_key);
}

/* Rule 4: a certificate repeated in the chain is a malformed chain. */
static void test_chain_repeated(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    struct validate_policy pol;
    validate_policy_init(&pol, now);

    /* leaf, int, root, root, root: every link verifies, since the root signed itself */
    struct bundle *b = mk_chain(2, now);
    X509 *root = sk_X509_value(b->certs, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(X509_up_ref(root), 1);
        assert_true(sk_X509_push(b->certs, root) > 0);
    }
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "certificate 4 'ca 0' repeats certificate 3");
    bundle_discard(b);

    /* leaf, int, int, root: the repeat is named, not a broken link */
    b = mk_chain(2, now);
    X509 *inter = sk_X509_value(b->certs, 1);
    assert_int_equal(X509_up_ref(inter), 1);
    assert_true(sk_X509_insert(b->certs, inter, 2) > 0);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "certificate 3 'ca 1' repeats certificate 2");
    bundle_discard(b);
}

/* Rule 3: every certificate's key is judged, not only the leaf's, and before the chain. */
static void test_chain_key_strength(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    struct validate_policy pol;
    validate_policy_init(&pol, now);
    EVP_PKEY *root_key = ec_key(), *leaf_key = ec_key();
    EVP_PKEY *weak = EVP_RSA_gen(1024);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(weak);
    assert_non_null(ed);
    X509 *root = mk_cert(root_key, "root", NULL, root_key, ca_exts, 1, now - DAY, now + DAY, 1);

    /* a 1024-bit RSA intermediate */
    X509 *inter = mk_cert(weak, "weak int", root, root_key, ca_exts, 1, now - DAY, now + DAY, 2);
    X509 *leaf =
        mk_cert(leaf_key, "leaf.example.com", inter, weak, leaf_exts, 1, now - DAY, now + DAY, 3);
    X509 *certs[] = { leaf, inter, root };
    assert_int_equal(X509_up_ref(root), 1);
    assert_int_equal(EVP_PKEY_up_ref(leaf_key), 1);
    struct bundle *b = mk_bundle(certs, 3, leaf_key);
    assert_int_equal(openssl_verdict(b, now), X509_V_ERR_CA_KEY_TOO_SMALL);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_KEY_WEAK,
                "the key of the chain certificate 'weak int' at position 2 is a 1024-bit RSA key");
    /* strength before chain order: the same under an unrelated root */
    X509 *stranger =
        mk_cert(leaf_key, "stranger", NULL, leaf_key, ca_exts, 1, now - DAY, now + DAY, 4);
    X509_free(sk_X509_value(b->certs, 2));
    (void)sk_X509_set(b->certs, 2, stranger);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_KEY_WEAK,
                "'weak int' at position 2");
    bundle_discard(b);

    /* a weak self-signed root at the end: its key is what the chain hangs on */
    X509 *weak_root = mk_cert(weak, "weak root", NULL, weak, ca_exts, 1, now - DAY, now + DAY, 5);
    leaf = mk_cert(leaf_key, "leaf.example.com", weak_root, weak, leaf_exts, 1, now - DAY,
                   now + DAY, 6);
    certs[0] = leaf;
    certs[1] = weak_root;
    assert_int_equal(EVP_PKEY_up_ref(leaf_key), 1);
    b = mk_bundle(certs, 2, leaf_key);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_KEY_WEAK,
                "'weak root' at position 2");
    bundle_discard(b);

    /* an Ed25519 intermediate follows the key policy */
    inter = mk_cert(ed, "ed int", root, root_key, ca_exts, 1, now - DAY, now + DAY, 7);
    leaf = mk_cert(leaf_key, "leaf.example.com", inter, ed, leaf_exts, 1, now - DAY, now + DAY, 8);
    certs[0] = leaf;
    certs[1] = inter;
    certs[2] = root;
    b = mk_bundle(certs, 3, leaf_key);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                "the key of the chain certificate 'ed int' at position 2 is an Ed25519 key");
    pol.keys.allow_ed25519 = true;
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(weak);
    EVP_PKEY_free(ed);
}

/*
 * Rule 4: every signature relied upon gives at least 112 bits of security: no MD5 or SHA-1;
 * SHA-224 and up, and Ed25519, pass. A self-signed last certificate's own signature is not
 * relied upon, whatever its digest.
 */
static void test_signature_strength(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = {
        { NID_basic_constraints, "critical,CA:FALSE" },
        { NID_ext_key_usage, "serverAuth" },
    };
    static const struct {
        bool is_rsa_int;                        /* the intermediate's key: RSA 2048, else P-256 */
        const char *leaf_md, *int_md, *root_md; /* digests of each certificate's signature */
        size_t n;                               /* uploaded: the leaf, then int, then root */
        const char *word;                       /* NULL: accepted */
    } cases[] = {
        { false, "SHA256", "SHA256", "SHA256", 3, NULL },
        { false, "SHA224", "SHA256", "SHA256", 3, NULL },
        { true, "SHA224", "SHA256", "SHA256", 3, NULL },
        { false, "SHA512", "SHA384", "SHA256", 3, NULL },
        { false, "SHA1", "SHA256", "SHA256", 3,
          "the certificate 'sig.example.com' is signed with ecdsa-with-SHA1, a weak algorithm (63 bits of security; at least 112 required" },
        { true, "SHA1", "SHA256", "SHA256", 3,
          "'sig.example.com' is signed with sha1WithRSAEncryption" },
        { true, "MD5", "SHA256", "SHA256", 3,
          "'sig.example.com' is signed with md5WithRSAEncryption" },
        { false, "SHA256", "SHA1", "SHA256", 3, "'sig int' is signed with ecdsa-with-SHA1" },
        /* the root's self-signature is not relied upon */
        { false, "SHA256", "SHA256", "SHA1", 3, NULL },
        /* the last certificate, when not self-signed, is relied upon */
        { false, "SHA256", "SHA1", "SHA1", 2, "'sig int' is signed with ecdsa-with-SHA1" },
        { false, "SHA1", "SHA256", "SHA256", 1,
          "'sig.example.com' is signed with ecdsa-with-SHA1" },
    };
    struct validate_policy pol;
    validate_policy_init(&pol, now);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    assert_non_null(rsa);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        print_message("case %zu: %s %s %s\n", i, cases[i].leaf_md, cases[i].int_md,
                      cases[i].root_md);
        EVP_PKEY *root_key = ec_key(), *leaf_key = ec_key();
        EVP_PKEY *int_key = cases[i].is_rsa_int ? rsa : ec_key();
        X509 *root =
            mk_cert(root_key, "sig root", NULL, root_key, ca_exts, 1, now - DAY, now + DAY, 1);
        root = resign(root, root_key, EVP_get_digestbyname(cases[i].root_md));
        X509 *inter =
            mk_cert(int_key, "sig int", root, root_key, ca_exts, 1, now - DAY, now + DAY, 2);
        inter = resign(inter, root_key, EVP_get_digestbyname(cases[i].int_md));
        X509 *leaf = mk_cert(leaf_key, "sig.example.com", inter, int_key, leaf_exts,
                             ELEMENTSOF(leaf_exts), now - DAY, now + DAY, 3);
        leaf = resign(leaf, int_key, EVP_get_digestbyname(cases[i].leaf_md));
        X509 *certs[] = { leaf, inter, root };
        for (size_t j = cases[i].n; j < ELEMENTSOF(certs); j++) {
            X509_free(certs[j]);
        }
        struct bundle *b = mk_bundle(certs, cases[i].n, leaf_key);
        if (cases[i].n == 3) {
            assert_int_equal(openssl_verdict(b, now),
                             cases[i].word ? X509_V_ERR_CA_MD_TOO_WEAK : X509_V_OK);
        }
        if (cases[i].word) {
            expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_SIGNATURE_WEAK,
                        cases[i].word);
        } else {
            (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
        }
        /* signature strength (rule 4) comes before EKU (rule 5) */
        if (cases[i].word) {
            expect_fail(b, ENDPOINT_CLIENT, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_SIGNATURE_WEAK,
                        cases[i].word);
        } else {
            expect_fail(b, ENDPOINT_CLIENT, &pol, NULL, NULL, -EINVAL, CERTD_E_EKU_MISMATCH,
                        "not clientAuth");
        }
        bundle_discard(b);
        EVP_PKEY_free(root_key);
        if (!cases[i].is_rsa_int) {
            EVP_PKEY_free(int_key);
        }
    }
    EVP_PKEY_free(rsa);

    /* a lone self-signed SHA-1 certificate: nothing relies on its own signature */
    EVP_PKEY *key = ec_key();
    X509 *ss = mk_cert(key, "ss.example.com", NULL, key, leaf_exts, 1, now - DAY, now + DAY, 1);
    ss = resign(ss, key, EVP_sha1());
    struct bundle *b = mk_bundle(&ss, 1, key);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);

    /* an Ed25519 signature, under an Ed25519 intermediate the policy allows */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *root_key = ec_key(), *leaf_key = ec_key();
    assert_non_null(ed);
    X509 *root = mk_cert(root_key, "sig root", NULL, root_key, ca_exts, 1, now - DAY, now + DAY, 1);
    X509 *inter = mk_cert(ed, "ed int", root, root_key, ca_exts, 1, now - DAY, now + DAY, 2);
    X509 *leaf = mk_cert(leaf_key, "ed-signed.example.com", inter, ed, leaf_exts,
                         ELEMENTSOF(leaf_exts), now - DAY, now + DAY, 3);
    X509 *certs[] = { leaf, inter, root };
    b = mk_bundle(certs, 3, leaf_key);
    pol.keys.allow_ed25519 = true;
    assert_int_equal(openssl_verdict(b, now), X509_V_OK);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(root_key);
}

/*
 * A signature algorithm OpenSSL does not know (ecdsa-with-SHA256's OID with its last arc changed)
 * cannot be rated: refused as unsupported, not waved through.
 */
static void test_signature_unknown(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    static const uint8_t oid[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
    EVP_PKEY *ca_key = ec_key(), *leaf_key = ec_key();
    X509 *ca = mk_cert(ca_key, "ca", NULL, ca_key, ca_exts, 1, now - DAY, now + DAY, 1);
    X509 *leaf =
        mk_cert(leaf_key, "odd.example.com", ca, ca_key, leaf_exts, 1, now - DAY, now + DAY, 2);
    unsigned char *der = NULL;
    int len = i2d_X509(leaf, &der);
    assert_true(len > 0);
    size_t n_patched = 0;
    for (size_t i = 0; i + sizeof(oid) <= (size_t)len; i++) {
        if (memcmp(der + i, oid, sizeof(oid)) == 0) {
            der[i + sizeof(oid) - 1] = 0x7f;
            n_patched++;
        }
    }
    assert_int_equal(n_patched, 2); /* in the TBS and in the outer signatureAlgorithm */
    const unsigned char *p = der;
    X509 *odd = d2i_X509(NULL, &p, len);
    assert_non_null(odd);
    OPENSSL_free(der);
    X509_free(leaf);
    X509_free(ca);

    struct validate_policy pol;
    validate_policy_init(&pol, now);
    struct bundle *b = mk_bundle(&odd, 1, leaf_key);
    expect_fail(
        b, ENDPOINT_SERVER, &pol, NULL, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED,
        "'odd.example.com' is signed with 1.2.840.10045.4.3.127, an algorithm whose strength is unknown");
    bundle_discard(b);
    EVP_PKEY_free(ca_key);
}

/*
 * Rule 1: an intermediate CA first and the only end-entity certificate after it is an upload out
 * of order, not two leaves; with a key that matches the first certificate it is two leaves.
 */
static void test_end_entity_not_first(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    struct validate_policy pol;
    validate_policy_init(&pol, now);
    EVP_PKEY *ca_key = ec_key(), *leaf_key = ec_key(), *other = ec_key();
    X509 *ca = mk_cert(ca_key, "an int", NULL, ca_key, ca_exts, 1, now - DAY, now + DAY, 1);
    X509 *leaf =
        mk_cert(leaf_key, "ee.example.com", ca, ca_key, leaf_exts, 1, now - DAY, now + DAY, 2);
    X509 *leaf2 =
        mk_cert(other, "ee2.example.com", ca, ca_key, leaf_exts, 1, now - DAY, now + DAY, 3);

    X509 *certs[] = { ca, leaf };
    struct bundle *b = mk_bundle(certs, 2, NULL);
    expect_fail(
        b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
        "the end-entity certificate must come first, followed by its issuers; it is 'ee.example.com' at position 2, after the CA certificate 'an int'");
    /* a key that matches nothing: still the order */
    expect_fail(b, ENDPOINT_SERVER, &pol, other, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "end-entity certificate must come first");
    /* the CA's own key: the CA is the leaf, and the other one a second leaf */
    expect_fail(b, ENDPOINT_SERVER, &pol, ca_key, NULL, -EINVAL, CERTD_E_NOT_ONE_LEAF,
                "more than one end-entity certificate: 'ee.example.com' at position 2");
    /* two end entities after the CA: two leaves */
    assert_true(sk_X509_push(b->certs, leaf2) > 0);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_NOT_ONE_LEAF,
                "'ee.example.com' at position 2 is not a CA");
    bundle_discard(b);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other);
}

/* Authority uploads: CA signatures are judged too, except a self-signed certificate's own. */
static void test_authority_signature(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    struct validate_policy pol;
    validate_policy_init(&pol, now);
    EVP_PKEY *root_key = ec_key(), *int_key = ec_key();
    X509 *root =
        mk_cert(root_key, "sha1 root", NULL, root_key, ca_exts, 1, now - DAY, now + DAY, 1);
    root = resign(root, root_key, EVP_sha1());
    X509 *inter = mk_cert(int_key, "sha1 int", root, root_key, ca_exts, 1, now - DAY, now + DAY, 2);
    inter = resign(inter, root_key, EVP_sha1());
    assert_int_equal(X509_up_ref(root), 1);
    struct bundle *b = mk_bundle(&root, 1, NULL);
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, NULL);
    bundle_discard(b);
    X509 *certs[] = { root, inter };
    b = mk_bundle(certs, 2, NULL);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_SIGNATURE_WEAK,
                "'sha1 int' is signed with ecdsa-with-SHA1, a weak algorithm");
    bundle_discard(b);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(int_key);
}

/* Authority certificates built here: strength, validity, a leaf without a CN. */
static void test_authority_built(void **state)
{
    (void)state;
    int64_t now = now_fixed();
    static const struct ext ca_exts[] = { { NID_basic_constraints, "critical,CA:TRUE" } };
    static const struct ext leaf_exts[] = { { NID_basic_constraints, "critical,CA:FALSE" } };
    struct validate_policy pol;
    validate_policy_init(&pol, now);

    EVP_PKEY *weak = EVP_RSA_gen(1024);
    assert_non_null(weak);
    X509 *x = mk_cert(weak, "weak ca", NULL, weak, ca_exts, 1, now - DAY, now + DAY, 1);
    struct bundle *b = mk_bundle(&x, 1, NULL);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_KEY_WEAK,
                "weak ca");
    bundle_discard(b);
    EVP_PKEY_free(weak);

    EVP_PKEY *key = ec_key();
    x = mk_cert(key, "old ca", NULL, key, ca_exts, 1, -5 * 365 * DAY, now + DAY, 1);
    b = mk_bundle(&x, 1, NULL);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EKEYEXPIRED, CERTD_E_CERT_BEFORE_1970,
                "'old ca' is valid from 1965-");
    bundle_discard(b);

    /* notBefore exactly at the epoch is allowed */
    x = mk_cert(key, "epoch ca", NULL, key, ca_exts, 1, 0, now + DAY, 1);
    b = mk_bundle(&x, 1, NULL);
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, NULL);
    bundle_discard(b);

    /* expired CA: warning by default, refused by policy; the first warning is
     * kept */
    X509 *certs[2];
    certs[0] = mk_cert(key, "expired ca", NULL, key, ca_exts, 1, now - 3 * DAY, now - DAY, 1);
    certs[1] = mk_cert(key, "future ca", NULL, key, ca_exts, 1, now + DAY, now + 3 * DAY, 2);
    b = mk_bundle(certs, 2, NULL);
    struct validate_result res = expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, "'expired ca'");
    assert_true(res.is_expired);
    assert_true(res.is_not_yet_valid);
    pol.not_yet_valid = VALIDITY_REJECT;
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EKEYEXPIRED, CERTD_E_CERT_NOT_YET_VALID,
                "'future ca'");
    pol.expired = VALIDITY_REJECT;
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EKEYEXPIRED, CERTD_E_CERT_EXPIRED,
                "'expired ca'");
    bundle_discard(b);
    validate_policy_init(&pol, now);

    /* no CN: the message names the position */
    certs[0] = mk_cert(key, "a ca", NULL, key, ca_exts, 1, now - DAY, now + DAY, 1);
    certs[1] = mk_cert(key, NULL, NULL, key, leaf_exts, 1, now - DAY, now + DAY, 2);
    b = mk_bundle(certs, 2, NULL);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EINVAL, CERTD_E_NOT_CA,
                "#2 (no common name) is not a CA");
    bundle_discard(b);

    /* a v3 certificate without basicConstraints is not a CA */
    x = mk_cert(key, "no bc", NULL, key, NULL, 0, now - DAY, now + DAY, 1);
    b = mk_bundle(&x, 1, NULL);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EINVAL, CERTD_E_NOT_CA, "'no bc'");
    bundle_discard(b);

    /* the same certificate is a leaf for a server (no basicConstraints: not a CA) */
    assert_int_equal(EVP_PKEY_up_ref(key), 1);
    x = mk_cert(key, "no bc", NULL, key, NULL, 0, now - DAY, now + DAY, 1);
    b = mk_bundle(&x, 1, key);
    (void)expect_ok(b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL);
    bundle_discard(b);

    /* repeated extensions cannot be judged */
    static const struct ext twice[] = {
        { NID_basic_constraints, "critical,CA:TRUE" },
        { NID_basic_constraints, "critical,CA:TRUE" },
    };
    x = mk_cert(key, "twice", NULL, key, twice, 2, now - DAY, now + DAY, 1);
    b = mk_bundle(&x, 1, NULL);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EBADMSG, CERTD_E_CERT_BAD,
                "'twice' has malformed or repeated extensions");
    bundle_discard(b);
    EVP_PKEY_free(key);
}

/* Duplicates against what is installed, and the limit at N and N+1 counting
 * `existing`. */
static void test_authority_existing(void **state)
{
    (void)state;
    struct validate_policy pol;
    validate_policy_init(&pol, now_fixed());
    struct bundle *b = parse_one("ca-bundle.pem");
    assert_int_equal(bundle_n_certs(b), 3);

    STACK_OF(X509) *root = load_certs("root-ca.pem", 1);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, root, -EEXIST, CERTD_E_DUPLICATE,
                "'certd test root' is already installed");
    sk_X509_pop_free(root, X509_free);

    /* an unrelated installed certificate is no duplicate */
    STACK_OF(X509) *other = load_certs("int-ca.pem", 1);
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, other, NULL);
    sk_X509_pop_free(other, X509_free);

    STACK_OF(X509) *seven = load_certs("ca-eleven.pem", 7);
    STACK_OF(X509) *eight = load_certs("ca-eleven.pem", 8);
    assert_int_equal(sk_X509_num(seven), 7);
    assert_int_equal(sk_X509_num(eight), 8);
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, seven, NULL);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, eight, -E2BIG, CERTD_E_LIMIT_REACHED,
                "8 certificates are installed and 3 were uploaded; at most 10");
    pol.max_certs = 11;
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, eight, NULL);
    sk_X509_pop_free(seven, X509_free);
    sk_X509_pop_free(eight, X509_free);

    /* a configured limit, at N and N+1, without existing certificates */
    pol.max_certs = 3;
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, NULL);
    pol.max_certs = 2;
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -E2BIG, CERTD_E_LIMIT_REACHED,
                "the upload holds 3 certificates; at most 2 are allowed");
    bundle_free(b);

    /* ca-eleven: 0 means the default 10; 11 passes with a raised limit */
    b = parse_one("ca-eleven.pem");
    assert_int_equal(bundle_n_certs(b), 11);
    pol.max_certs = 0;
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -E2BIG, CERTD_E_LIMIT_REACHED,
                "at most 10");
    pol.max_certs = 11;
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, NULL);
    /* limits above the hard ceiling are clamped, not trusted */
    pol.max_certs = SIZE_MAX;
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, NULL);
    bundle_free(b);

    /* the hard ceiling, at N and N+1: existing holds one unrelated certificate many times */
    b = parse_one("ca-bundle.pem");
    X509 *inter = fixture_cert("int-ca.pem");
    STACK_OF(X509) *many = sk_X509_new_null();
    assert_non_null(many);
    for (size_t i = 0; i < CERTD_AUTHORITY_MAX_HARD - 3; i++) {
        assert_int_equal(X509_up_ref(inter), 1);
        assert_true(sk_X509_push(many, inter) > 0);
    }
    (void)expect_ok(b, ENDPOINT_AUTHORITY, &pol, NULL, many, NULL);
    assert_true(sk_X509_push(many, inter) > 0);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, many, -E2BIG, CERTD_E_LIMIT_REACHED,
                "998 certificates are installed and 3 were uploaded; at most 1000");
    sk_X509_pop_free(many, X509_free);
    bundle_free(b);
}

/* The rules run in order: the first violated one is reported. */
static void test_rule_order(void **state)
{
    (void)state;
    struct validate_policy pol;
    validate_policy_init(&pol, now_fixed());
    pol.expired = VALIDITY_REJECT;

    /* a key in an authority upload is refused before anything is said about the
     * certs */
    const char *files[] = { "server-ec.pem", "server-ec.key" };
    struct bundle *b = parse_files(files, 2);
    expect_fail(b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, -EPERM, CERTD_E_KEY_NOT_ALLOWED,
                "authority certificates are stored without keys");
    bundle_free(b);

    /*
     * one leaf before the key: a reversed chain whose key matches nothing is out of order (its
     * only end-entity certificate is not first); a leaf followed by another leaf has two
     */
    const char *rev[] = { "int-ca.pem", "server-ec.pem", "other.key" };
    b = parse_files(rev, 3);
    expect_fail(
        b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
        "the end-entity certificate must come first, followed by its issuers; it is 'server.example.com' at position 2");
    bundle_free(b);
    const char *two[] = { "server-ec.pem", "server-rsa.pem", "other.key" };
    b = parse_files(two, 3);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EINVAL, CERTD_E_NOT_ONE_LEAF,
                "more than one end-entity certificate");
    bundle_free(b);

    /* key before chain order: a wrong issuer and a mismatching key report the key */
    const char *wrong[] = { "server-ec.pem", "root-ca.pem", "other.key" };
    b = parse_files(wrong, 3);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                "private key does not match the certificate 'server.example.com'");
    bundle_free(b);
    b = parse_files(wrong, 2);
    EVP_PKEY *other = fixture_key("other.key");
    expect_fail(b, ENDPOINT_SERVER, &pol, other, NULL, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                "does not match the key of the pending CSR");
    EVP_PKEY_free(other);
    bundle_free(b);

    /* strength before chain order: a weak key under the wrong issuer reports the strength */
    const char *weak_wrong[] = { "rsa1024.pem", "root-ca.pem", "rsa1024.key" };
    b = parse_files(weak_wrong, 3);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_KEY_WEAK,
                "weak.example.com");
    bundle_free(b);

    /* chain order before EKU: server-chain-wrong.pem (serverAuth) as a client */
    b = parse_one("server-chain-wrong.pem");
    expect_fail(b, ENDPOINT_CLIENT, &pol, NULL, NULL, -EINVAL, CERTD_E_CHAIN_ORDER,
                "was not issued by certificate 2");
    bundle_free(b);

    /* key before strength: a weak certificate with the wrong key reports the
     * mismatch */
    const char *weak[] = { "rsa1024.pem", "other.key" };
    b = parse_files(weak, 2);
    expect_fail(b, ENDPOINT_SERVER, &pol, NULL, NULL, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                "does not match");
    bundle_free(b);

    /* strength before EKU: Ed25519 as a client (EKU serverAuth) reports the key */
    const char *ed[] = { "ed25519.pem", "ed25519.key" };
    b = parse_files(ed, 2);
    expect_fail(b, ENDPOINT_CLIENT, &pol, NULL, NULL, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                "ed.example.com");
    pol.keys.allow_ed25519 = true;
    expect_fail(b, ENDPOINT_CLIENT, &pol, NULL, NULL, -EINVAL, CERTD_E_EKU_MISMATCH,
                "not clientAuth");
    bundle_free(b);

    /* EKU before validity: expired.pem (serverAuth) as a client */
    b = parse_one("expired.pem");
    expect_fail(b, ENDPOINT_CLIENT, &pol, NULL, NULL, -EINVAL, CERTD_E_EKU_MISMATCH,
                "'expired.example.com'");
    bundle_free(b);
}

static void test_arguments(void **state)
{
    (void)state;
    struct validate_policy pol;
    struct validate_result res, before;
    struct certd_err err = { 0 };
    validate_policy_init(&pol, now_fixed());
    struct bundle *b = parse_one("server-ec-bundle.pem");
    memset(&res, 0x5a, sizeof(res));
    before = res;

    assert_int_equal(
        validate_bundle(NULL, NULL, NULL, ENDPOINT_SERVER, &pol, NULL, NULL, &res, &err), -EINVAL);
    assert_int_equal(validate_bundle(NULL, NULL, b, ENDPOINT_SERVER, NULL, NULL, NULL, &res, &err),
                     -EINVAL);
    assert_int_equal(validate_bundle(NULL, NULL, b, ENDPOINT_SERVER, &pol, NULL, NULL, NULL, &err),
                     -EINVAL);
    assert_int_equal(
        validate_bundle(NULL, NULL, b, ENDPOINT_TYPE_MAX, &pol, NULL, NULL, &res, &err), -EINVAL);
    pol.expired = VALIDITY_POLICY_MAX;
    assert_int_equal(validate_bundle(NULL, NULL, b, ENDPOINT_SERVER, &pol, NULL, NULL, &res, &err),
                     -EINVAL);
    assert_memory_equal(&res, &before, sizeof(res));

    /* err is nullable */
    validate_policy_init(&pol, now_fixed());
    assert_int_equal(validate_bundle(NULL, NULL, b, ENDPOINT_SERVER, &pol, NULL, NULL, &res, NULL),
                     0);
    assert_int_equal(
        validate_bundle(NULL, NULL, b, ENDPOINT_AUTHORITY, &pol, NULL, NULL, &res, NULL), -EPERM);
    bundle_free(b);
}

static void test_policy_init(void **state)
{
    (void)state;
    struct validate_policy pol;
    memset(&pol, 0xff, sizeof(pol));
    validate_policy_init(&pol, 1234);
    assert_int_equal(pol.expired, VALIDITY_ACCEPT_WARN);
    assert_int_equal(pol.not_yet_valid, VALIDITY_ACCEPT_WARN);
    assert_false(pol.keys.allow_ed25519);
    assert_int_equal(pol.max_certs, CERTD_AUTHORITY_MAX_DEFAULT);
    assert_int_equal(pol.now, 1234);
}

static void test_endpoint_names(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int r;
        enum endpoint_type t;
    } cases[] = {
        { "server", 0, ENDPOINT_SERVER },
        { "client", 0, ENDPOINT_CLIENT },
        { "authority", 0, ENDPOINT_AUTHORITY },
        { "SERVER", 0, ENDPOINT_SERVER },
        { "Authority", 0, ENDPOINT_AUTHORITY },
        { "", -EINVAL, 0 },
        { "serve", -EINVAL, 0 },
        { "servers", -EINVAL, 0 },
        { " server", -EINVAL, 0 },
        { "ca", -EINVAL, 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        enum endpoint_type t = ENDPOINT_TYPE_MAX;
        assert_int_equal(endpoint_type_from_name(cases[i].s, &t), cases[i].r);
        assert_int_equal(t, cases[i].r == 0 ? cases[i].t : ENDPOINT_TYPE_MAX);
    }
    for (int t = 0; t < ENDPOINT_TYPE_MAX; t++) {
        enum endpoint_type back = ENDPOINT_TYPE_MAX;
        const char *name = endpoint_type_name((enum endpoint_type)t);
        assert_non_null(name);
        assert_int_equal(endpoint_type_from_name(name, &back), 0);
        assert_int_equal(back, t);
    }
    assert_null(endpoint_type_name(ENDPOINT_TYPE_MAX));
    enum endpoint_type t = ENDPOINT_CLIENT;
    assert_int_equal(endpoint_type_from_name(NULL, &t), -EINVAL);
    assert_int_equal(t, ENDPOINT_CLIENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_table),
        cmocka_unit_test(test_injected_clock),
        cmocka_unit_test(test_eku),
        cmocka_unit_test(test_key_usage),
        cmocka_unit_test(test_chain_depth),
        cmocka_unit_test(test_chain_forged_signature),
        cmocka_unit_test(test_chain_name_mismatch),
        cmocka_unit_test(test_chain_intermediate_validity),
        cmocka_unit_test(test_leaf_first),
        cmocka_unit_test(test_chain_not_ca),
        cmocka_unit_test(test_chain_pathlen),
        cmocka_unit_test(test_chain_repeated),
        cmocka_unit_test(test_chain_key_strength),
        cmocka_unit_test(test_signature_strength),
        cmocka_unit_test(test_signature_unknown),
        cmocka_unit_test(test_end_entity_not_first),
        cmocka_unit_test(test_authority_signature),
        cmocka_unit_test(test_authority_built),
        cmocka_unit_test(test_authority_existing),
        cmocka_unit_test(test_rule_order),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_policy_init),
        cmocka_unit_test(test_endpoint_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
