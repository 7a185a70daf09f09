/* SPDX-License-Identifier: Apache-2.0 */
/*
 * issue/: self-signed certificates, certificates from CSRs, CA roots and CRLs, checked with
 * plain OpenSSL (and once with the openssl CLI): signatures, X509_verify_cert with an explicit
 * trust store, time, purpose and revocation, serials, validity from the injected clock,
 * extensions, and every refusal with errno, code and message.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "csr/csr.h"
#include "issue/issue.h"
#include "testutil.h"
#include "util/limits.h"
#include "x509/inspect.h"

#define NOW      ((int64_t)1700000000) /* 2023-11-14T22:13:20Z */
#define DAY      ((int64_t)86400)
#define ALL_SANS ((1u << SAN_DNS) | (1u << SAN_IP) | (1u << SAN_EMAIL) | (1u << SAN_URI))

/* Seconds since the epoch of an ASN1_TIME, with OpenSSL's own conversion. */
static int64_t to_unix(const ASN1_TIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

/*
 * Verify cert against anchor (a trust store of one) at time at, for purpose; with crl (NULL:
 * none), the leaf's revocation is checked against it (X509_V_FLAG_CRL_CHECK).
 */
static int verify_chain(X509 *cert, X509 *anchor, X509_CRL *crl, int purpose, int64_t at,
                        int *ret_error)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, anchor), 1);
    if (crl) {
        assert_int_equal(X509_STORE_add_crl(store, crl), 1);
    }
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, purpose), 1);
    unsigned long flags = X509_V_FLAG_X509_STRICT | (crl ? X509_V_FLAG_CRL_CHECK : 0);
    assert_int_equal(X509_VERIFY_PARAM_set_flags(param, flags), 1);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
    int r = X509_verify_cert(ctx);
    if (ret_error) {
        *ret_error = X509_STORE_CTX_get_error(ctx);
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

/* Verify cert against anchor (a trust store of one) at time at, for TLS servers. */
static int verify_with_anchor(X509 *cert, X509 *anchor, int64_t at, int *ret_error)
{
    return verify_chain(cert, anchor, NULL, X509_PURPOSE_SSL_SERVER, at, ret_error);
}

static GENERAL_NAMES *get_sans(X509 *cert, int *crit)
{
    return X509_get_ext_d2i(cert, NID_subject_alt_name, crit, NULL);
}

static void assert_gn_string(const GENERAL_NAME *gn, int type, const char *text)
{
    int t;
    const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &t);
    assert_int_equal(t, type);
    assert_int_equal(ASN1_STRING_length(s), (int)strlen(text));
    assert_memory_equal(ASN1_STRING_get0_data(s), text, strlen(text));
}

static void assert_gn_ip(const GENERAL_NAME *gn, int len)
{
    int t;
    const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &t);
    assert_int_equal(t, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(s), len);
}

/* keyUsage must be critical and hold exactly the CERT_KU_* bits in want. */
static void assert_key_usage(X509 *cert, uint32_t want)
{
    int crit = -1;
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    for (int i = 0; i <= 8; i++) {
        assert_int_equal(ASN1_BIT_STRING_get_bit(ku, i), (want >> i) & 1u);
    }
    ASN1_BIT_STRING_free(ku);
}

static void assert_basic_constraints(X509 *cert, bool is_ca, long path_len)
{
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_int_equal(bc->ca != 0, is_ca);
    if (path_len < 0) {
        assert_null(bc->pathlen);
    } else {
        assert_int_equal(ASN1_INTEGER_get(bc->pathlen), path_len);
    }
    BASIC_CONSTRAINTS_free(bc);
}

static void test_selfsigned(void **state)
{
    (void)state;
    const char *alts[] = { "10.0.0.1", "2001:db8::5", "bmc", "BMC.example.com" };
    struct selfsign_request req = {
        .common_name = "bmc.example.com",
        .alt_names = alts,
        .n_alt_names = ELEMENTSOF(alts),
        .days = 365,
        .now = NOW,
    };
    struct certd_err err = { 0 };
    X509 *cert = NULL;

    assert_int_equal(issue_selfsigned(NULL, NULL, fixture_keys.p256, &req, &cert, &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);
    assert_int_equal(X509_get_version(cert), X509_VERSION_3);
    assert_int_equal(X509_verify(cert, fixture_keys.p256), 1);
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)), 0);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)), 1);

    /* Its own trust anchor, valid for TLS servers at now + 1 day, not before or after. */
    int verr = 0;
    assert_int_equal(verify_with_anchor(cert, cert, NOW + DAY, &verr), 1);
    assert_int_equal(verify_with_anchor(cert, cert, NOW - 60, &verr), 0);
    assert_int_equal(verr, X509_V_ERR_CERT_NOT_YET_VALID);
    assert_int_equal(verify_with_anchor(cert, cert, NOW + 366 * DAY, &verr), 0);
    assert_int_equal(verr, X509_V_ERR_CERT_HAS_EXPIRED);
    assert_int_equal(X509_check_host(cert, "bmc.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(cert, "10.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(cert, "2001:db8::5", 0), 1);

    /* Validity from the injected clock. */
    assert_int_equal(to_unix(X509_get0_notBefore(cert)), NOW);
    assert_int_equal(to_unix(X509_get0_notAfter(cert)), NOW + 365 * DAY);

    /* A positive serial of at most 128 bits. */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    assert_non_null(bn);
    assert_false(BN_is_negative(bn));
    assert_false(BN_is_zero(bn));
    assert_true(BN_num_bits(bn) <= 128);
    BN_free(bn);

    /* SAN: the CN first (listed once though BMC.example.com repeats it), then the others. */
    int crit = -1;
    GENERAL_NAMES *gens = get_sans(cert, &crit);
    assert_non_null(gens);
    assert_int_equal(crit, 0);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 4);
    assert_gn_ip(sk_GENERAL_NAME_value(gens, 0), 4);
    assert_gn_ip(sk_GENERAL_NAME_value(gens, 1), 16);
    assert_gn_string(sk_GENERAL_NAME_value(gens, 2), GEN_DNS, "bmc");
    assert_gn_string(sk_GENERAL_NAME_value(gens, 3), GEN_DNS, "BMC.example.com");
    GENERAL_NAMES_free(gens);

    /* EKU serverAuth only; KU digitalSignature (EC); CA:FALSE. */
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
    assert_non_null(eku);
    assert_int_equal(crit, 0);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);
    EXTENDED_KEY_USAGE_free(eku);
    assert_key_usage(cert, CERT_KU_DIGITAL_SIGNATURE);
    assert_basic_constraints(cert, false, -1);

    /* SKI present (20 octets) and AKI keyid equal to it. */
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(cert);
    assert_non_null(ski);
    assert_non_null(aki);
    assert_int_equal(ASN1_STRING_length(ski), 20);
    assert_int_equal(ASN1_OCTET_STRING_cmp(ski, aki), 0);

    /* Two certificates never share a serial. */
    X509 *cert2 = NULL;
    assert_int_equal(issue_selfsigned(NULL, NULL, fixture_keys.p256, &req, &cert2, &err), 0);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), X509_get0_serialNumber(cert2)), 0);
    X509_free(cert2);
    X509_free(cert);
}

static void test_selfsigned_key_types(void **state)
{
    (void)state;
    const struct {
        EVP_PKEY **key;
        int sig_nid;
        uint32_t ku;
    } cases[] = {
        { &fixture_keys.p256, NID_ecdsa_with_SHA256, CERT_KU_DIGITAL_SIGNATURE },
        { &fixture_keys.p384, NID_ecdsa_with_SHA384, CERT_KU_DIGITAL_SIGNATURE },
        { &fixture_keys.rsa, NID_sha256WithRSAEncryption,
          CERT_KU_DIGITAL_SIGNATURE | CERT_KU_KEY_ENCIPHERMENT },
        { &fixture_keys.ed25519, NID_ED25519, CERT_KU_DIGITAL_SIGNATURE },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        /* A CN that is no host name is not copied into the SAN; no alt names: no SAN. */
        struct selfsign_request req = { .common_name = "My BMC", .days = 1, .now = 0 };
        struct certd_err err = { 0 };
        X509 *cert = NULL;
        assert_int_equal(issue_selfsigned(NULL, NULL, *cases[i].key, &req, &cert, &err), 0);
        assert_int_equal(X509_get_signature_nid(cert), cases[i].sig_nid);
        assert_int_equal(X509_verify(cert, *cases[i].key), 1);
        assert_key_usage(cert, cases[i].ku);
        assert_null(get_sans(cert, NULL));
        assert_int_equal(to_unix(X509_get0_notBefore(cert)), 0);
        assert_int_equal(to_unix(X509_get0_notAfter(cert)), DAY);
        X509_free(cert);
    }
}

static void test_selfsigned_rejections(void **state)
{
    (void)state;
    char cn65[66];
    memset(cn65, 'a', 65);
    cn65[65] = '\0';
    const char *bad_alt[] = { "ok.example.com", "bad name!" };
    const char *many[CERTD_SANS_MAX + 1];
    char buf[CERTD_SANS_MAX + 1][32];
    for (size_t i = 0; i <= CERTD_SANS_MAX; i++) {
        (void)snprintf(buf[i], sizeof(buf[i]), "h%zu.example.com", i);
        many[i] = buf[i];
    }
    const struct {
        struct selfsign_request req;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { { .common_name = NULL, .days = 1 }, -EINVAL, CERTD_E_FIELD_MISSING, "CommonName" },
        { { .common_name = "", .days = 1 }, -EINVAL, CERTD_E_FIELD_MISSING, "CommonName" },
        { { .common_name = cn65, .days = 1 }, -E2BIG, CERTD_E_FIELD_TOO_LONG, "64 characters" },
        { { .common_name = "a\x01", .days = 1 }, -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { { .common_name = "x", .days = 0 }, -EINVAL, CERTD_E_VALIDITY_INVALID, "1 to 36500" },
        { { .common_name = "x", .days = CERTD_VALIDITY_DAYS_MAX + 1 },
          -EINVAL,
          CERTD_E_VALIDITY_INVALID,
          "days" },
        { { .common_name = "x", .days = CERTD_VALIDITY_DAYS_MAX, .now = NOW },
          0,
          CERTD_E_OK,
          NULL },
        { { .common_name = "x", .alt_names = bad_alt, .n_alt_names = 2, .days = 1 },
          -EINVAL,
          CERTD_E_SAN_INVALID,
          "AlternativeNames[1]" },
        { { .common_name = "x", .alt_names = many, .n_alt_names = CERTD_SANS_MAX, .days = 1 },
          0,
          CERTD_E_OK,
          NULL },
        { { .common_name = "x", .alt_names = many, .n_alt_names = CERTD_SANS_MAX + 1, .days = 1 },
          -E2BIG,
          CERTD_E_TOO_MANY_VALUES,
          "more than 64" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        X509 *cert = NULL;
        int r = issue_selfsigned(NULL, NULL, fixture_keys.p256, &cases[i].req, &cert, &err);
        if (r != cases[i].r || err.code != cases[i].code) {
            fail_msg("case %zu: r=%d code=%s msg=%s", i, r, err_code_name(err.code), err.msg);
        }
        if (r < 0) {
            assert_null(cert);
            if (!strstr(err.msg, cases[i].word)) {
                fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].word, err.msg);
            }
        } else {
            assert_int_equal(X509_verify(cert, fixture_keys.p256), 1);
            X509_free(cert);
        }
    }
}

static void test_random_serial(void **state)
{
    (void)state;
    ASN1_INTEGER *prev = NULL;
    for (int i = 0; i < 64; i++) {
        ASN1_INTEGER *s = NULL;
        assert_int_equal(issue_random_serial(NULL, &s), 0);
        /* RFC 5280 §4.1.2.2: positive, at most 20 octets; ours are 16 at most. */
        assert_int_equal(ASN1_STRING_type(s), V_ASN1_INTEGER);
        assert_true(ASN1_STRING_length(s) >= 1 && ASN1_STRING_length(s) <= 16);
        if (prev) {
            assert_int_not_equal(ASN1_INTEGER_cmp(prev, s), 0);
        }
        ASN1_INTEGER_free(prev);
        prev = s;
    }
    ASN1_INTEGER_free(prev);
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *const *alts, size_t n)
{
    struct csr_request r = {
        .common_name = "leaf.example.com",
        .organization = "certd tests",
        .alt_names = alts,
        .n_alt_names = n,
    };
    struct certd_err err = { 0 };
    X509_REQ *req = NULL;
    assert_int_equal(csr_build(NULL, NULL, &r, key, &req, &err), 0);
    return req;
}

/*
 * A CSR made by hand, for subjects, keys and SANs csr_build never makes: subject (borrowed;
 * NULL = empty), one SAN entry gn (taken; NULL = no extension), signed by key.
 */
static X509_REQ *make_raw_csr(EVP_PKEY *key, const X509_NAME *subject, GENERAL_NAME *gn)
{
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    if (subject) {
        assert_int_equal(X509_REQ_set_subject_name(req, subject), 1);
    }
    if (gn) {
        GENERAL_NAMES *gens = GENERAL_NAMES_new();
        assert_int_equal(sk_GENERAL_NAME_push(gens, gn), 1);
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        X509_EXTENSION *ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
        assert_non_null(ext);
        assert_true(sk_X509_EXTENSION_push(exts, ext) > 0);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        GENERAL_NAMES_free(gens);
    }
    /* Ed25519 signs without a separate digest. */
    const EVP_MD *md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    assert_true(X509_REQ_sign(req, key, md) > 0);
    return req;
}

/* A CSR with subject CN=odd and a subjectAltName made by hand. */
static X509_REQ *make_csr_with_gn(EVP_PKEY *key, GENERAL_NAME *gn)
{
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)"odd", -1, -1, 0),
                     1);
    X509_REQ *req = make_raw_csr(key, name, gn);
    X509_NAME_free(name);
    return req;
}

/* A GENERAL_NAME dNSName with this text. */
static GENERAL_NAME *dns_gn(const char *text)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    assert_non_null(gn);
    assert_int_equal(ASN1_STRING_set(ia5, text, -1), 1);
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    return gn;
}

/*
 * A self-signed v3 certificate made with plain OpenSSL, to stand as an issuer: subject CN=cn
 * (NULL: empty subject), basicConstraints and keyUsage from OpenSSL configuration strings (NULL:
 * no such extension), valid from nb to na.
 */
static X509 *make_issuer_cert(EVP_PKEY *key, const char *cn, const char *bc, const char *ku,
                              int64_t nb, int64_t na)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    if (cn) {
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                                    (const unsigned char *)cn, -1, -1, 0),
                         1);
    }
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(x)), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    const struct {
        int nid;
        const char *value;
    } exts[] = { { NID_basic_constraints, bc }, { NID_key_usage, ku } };
    for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
        if (!exts[i].value) {
            continue;
        }
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

/* One issue_from_csr call and what it must give: 0 (a certificate signed by ca_key) or r/code/word.
 */
struct issue_case {
    const char *name;
    X509_REQ *csr;
    X509 *ca;
    EVP_PKEY *ca_key;
    const struct issue_profile *profile;
    int64_t now;
    int r;
    enum certd_errc code;
    const char *word;
};

static void run_issue_cases(const struct issue_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct certd_err err = { 0 };
        static char dummy;
        X509 *const sentinel = (X509 *)(void *)&dummy; /* untouched on failure */
        X509 *cert = sentinel;
        int r = issue_from_csr(NULL, NULL, cases[i].csr, cases[i].ca, cases[i].ca_key,
                               cases[i].profile, cases[i].now, &cert, &err);
        if (r != cases[i].r || err.code != cases[i].code) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, r, err_code_name(err.code), err.msg);
        }
        if (r < 0) {
            assert_ptr_equal(cert, sentinel);
            if (!strstr(err.msg, cases[i].word)) {
                fail_msg("%s: \"%s\" not in \"%s\"", cases[i].name, cases[i].word, err.msg);
            }
            continue;
        }
        assert_int_equal(X509_verify(cert, cases[i].ca_key), 1);
        assert_int_equal(
            X509_NAME_cmp(X509_get_subject_name(cert), X509_REQ_get_subject_name(cases[i].csr)), 0);
        X509_free(cert);
    }
}

/*
 * is_key_not_needed: the certificate's SubjectPublicKeyInfo is the CSR's byte for byte, the
 * same certificate as the ordinary path but for serial and dates, it verifies once re-read,
 * and in memory its key is (as documented) not decoded. For EC, RSA and Ed25519 keys.
 */
static void test_from_csr_key_not_needed(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    EVP_PKEY *root_key = fixture_key("root-ca.key");
    int64_t now = to_unix(X509_get0_notBefore(root)) + DAY;
    EVP_PKEY *keys[] = { fixture_keys.p256, fixture_keys.rsa, fixture_keys.ed25519 };

    for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
        const char *alts[] = { "console.example" };
        X509_REQ *csr = make_csr(keys[k], alts, 1);
        struct issue_profile profile = {
            .days = 30,
            .eku = CERT_EKU_SERVER_AUTH | CERT_EKU_CLIENT_AUTH, /* verify_with_anchor: TLS server */
            .copy_sans = true,
            .allowed_sans = ALL_SANS,
            .keys = { .allow_ed25519 = true },
            .is_key_not_needed = true,
        };
        struct certd_err err = { 0 };
        X509 *cert = NULL;
        assert_int_equal(
            issue_from_csr(NULL, NULL, csr, root, root_key, &profile, now, &cert, &err), 0);
        assert_null(X509_get0_pubkey(cert));
        ERR_clear_error();

        /* The SPKI bytes are the CSR's. */
        unsigned char *a = NULL, *b = NULL;
        int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &a);
        int lb = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr), &b);
        assert_true(la > 0 && la == lb);
        assert_memory_equal(a, b, (size_t)la);
        OPENSSL_free(a);
        OPENSSL_free(b);

        /* Re-read, it is a whole certificate: its key is the CSR's and it chains to the root. */
        unsigned char *der = NULL;
        int len = i2d_X509(cert, &der);
        assert_true(len > 0);
        const unsigned char *q = der;
        X509 *again = d2i_X509(NULL, &q, len);
        assert_non_null(again);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(again), keys[k]), 1);
        assert_int_equal(X509_verify(again, root_key), 1);
        int verr = 0;
        if (verify_with_anchor(again, root, now + 60, &verr) != 1) {
            fail_msg("chain: %s", X509_verify_cert_error_string(verr));
        }
        OPENSSL_free(der);
        X509_free(again);
        X509_free(cert);
        X509_REQ_free(csr);
    }
    X509_free(root);
    EVP_PKEY_free(root_key);
}

static void test_from_csr_chain(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    EVP_PKEY *root_key = fixture_key("root-ca.key");
    int64_t root_nb = to_unix(X509_get0_notBefore(root));
    int64_t root_na = to_unix(X509_get0_notAfter(root));
    int64_t now = root_nb + DAY;
    const char *alts[] = { "leaf.example.com", "192.0.2.7", "ops@example.com",
                           "https://leaf.example.com/" };
    X509_REQ *csr = make_csr(fixture_keys.p256, alts, ELEMENTSOF(alts));
    struct issue_profile profile = {
        .days = 30,
        .eku = CERT_EKU_SERVER_AUTH | CERT_EKU_CLIENT_AUTH,
        .copy_sans = true,
        .allowed_sans = ALL_SANS,
    };
    struct certd_err err = { 0 };
    X509 *cert = NULL;

    assert_int_equal(issue_from_csr(NULL, NULL, csr, root, root_key, &profile, now, &cert, &err),
                     0);
    /* The chain verifies against the root for TLS servers. */
    int verr = 0;
    if (verify_with_anchor(cert, root, now + 60, &verr) != 1) {
        fail_msg("chain: %s", X509_verify_cert_error_string(verr));
    }
    assert_int_equal(X509_verify(cert, root_key), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(root)), 0);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(cert), X509_REQ_get_subject_name(csr)), 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), fixture_keys.p256), 1);
    assert_int_equal(to_unix(X509_get0_notBefore(cert)), now);
    assert_int_equal(to_unix(X509_get0_notAfter(cert)), now + 30 * DAY);
    /* AKI = the root's SKI; the leaf's SKI differs. */
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert), X509_get0_subject_key_id(root)), 0);
    assert_int_not_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(cert), X509_get0_subject_key_id(root)), 0);
    assert_key_usage(cert, CERT_KU_DIGITAL_SIGNATURE);
    assert_basic_constraints(cert, false, -1);
    assert_true(X509_get_extended_key_usage(cert) == (XKU_SSL_SERVER | XKU_SSL_CLIENT));

    /* The SANs are copied, in order. */
    GENERAL_NAMES *gens = get_sans(cert, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 4);
    assert_gn_string(sk_GENERAL_NAME_value(gens, 0), GEN_DNS, "leaf.example.com");
    assert_gn_ip(sk_GENERAL_NAME_value(gens, 1), 4);
    assert_gn_string(sk_GENERAL_NAME_value(gens, 2), GEN_EMAIL, "ops@example.com");
    assert_gn_string(sk_GENERAL_NAME_value(gens, 3), GEN_URI, "https://leaf.example.com/");
    GENERAL_NAMES_free(gens);
    X509_free(cert);
    cert = NULL;

    /* notAfter is capped at the CA's. */
    profile.days = 3650;
    assert_int_equal(issue_from_csr(NULL, NULL, csr, root, root_key, &profile, now, &cert, &err),
                     0);
    assert_int_equal(to_unix(X509_get0_notAfter(cert)), root_na);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(root)), 0);
    assert_int_equal(verify_with_anchor(cert, root, now + 60, NULL), 1);
    X509_free(cert);
    cert = NULL;

    /* copy_sans off: no SAN at all. */
    profile.copy_sans = false;
    assert_int_equal(issue_from_csr(NULL, NULL, csr, root, root_key, &profile, now, &cert, &err),
                     0);
    assert_null(get_sans(cert, NULL));
    X509_free(cert);
    cert = NULL;

    /* An intermediate: CA:TRUE, pathlen 0, default CA usages; a leaf under it verifies. */
    EVP_PKEY *int_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    X509_REQ *int_csr = make_csr(int_key, NULL, 0);
    struct issue_profile ca_profile = { .days = 90, .is_ca = true, .path_len = 0 };
    X509 *inter = NULL;
    assert_int_equal(
        issue_from_csr(NULL, NULL, int_csr, root, root_key, &ca_profile, now, &inter, &err), 0);
    assert_basic_constraints(inter, true, 0);
    assert_key_usage(inter, CERT_KU_KEY_CERT_SIGN | CERT_KU_CRL_SIGN);
    profile.copy_sans = true;
    assert_int_equal(issue_from_csr(NULL, NULL, csr, inter, int_key, &profile, now, &cert, &err),
                     0);
    /* Signed by the P-384 intermediate: SHA-384, capped at the intermediate's notAfter. */
    assert_int_equal(X509_get_signature_nid(cert), NID_ecdsa_with_SHA384);
    assert_int_equal(to_unix(X509_get0_notAfter(cert)), now + 90 * DAY);
    {
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *chain = sk_X509_new_null();
        assert_int_equal(X509_STORE_add_cert(store, root), 1);
        assert_true(sk_X509_push(chain, inter) > 0);
        assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, chain), 1);
        X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
        assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER), 1);
        assert_int_equal(X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT), 1);
        X509_STORE_CTX_set_time(ctx, 0, (time_t)(now + 60));
        if (X509_verify_cert(ctx) != 1) {
            fail_msg("2-level chain: %s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        }
        X509_STORE_CTX_free(ctx);
        sk_X509_free(chain);
        X509_STORE_free(store);
    }
    X509_free(cert);
    X509_free(inter);
    X509_REQ_free(int_csr);
    EVP_PKEY_free(int_key);
    X509_REQ_free(csr);
    EVP_PKEY_free(root_key);
    X509_free(root);
}

static void test_from_csr_selfsigned(void **state)
{
    (void)state;
    const char *alts[] = { "root.example.com" };
    X509_REQ *csr = make_csr(fixture_keys.rsa, alts, 1);
    struct issue_profile profile = {
        .days = 10, .is_ca = true, .path_len = -1, .copy_sans = true, .allowed_sans = ALL_SANS
    };
    struct certd_err err = { 0 };
    X509 *cert = NULL;

    /* ca_cert NULL: subject = issuer = the CSR's subject, signed with the CSR's own key. */
    assert_int_equal(
        issue_from_csr(NULL, NULL, csr, NULL, fixture_keys.rsa, &profile, NOW, &cert, &err), 0);
    assert_int_equal(X509_verify(cert, fixture_keys.rsa), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_REQ_get_subject_name(csr)), 0);
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(cert), X509_get0_authority_key_id(cert)), 0);
    assert_basic_constraints(cert, true, -1);
    assert_int_equal(to_unix(X509_get0_notAfter(cert)), NOW + 10 * DAY);
    X509_free(cert);
    cert = NULL;

    /* Another key cannot self-sign it. */
    assert_int_equal(
        issue_from_csr(NULL, NULL, csr, NULL, fixture_keys.p256, &profile, NOW, &cert, &err),
        -EKEYREJECTED);
    assert_int_equal(err.code, CERTD_E_KEY_MISMATCH);
    assert_non_null(strstr(err.msg, "own key"));
    assert_null(cert);
    X509_REQ_free(csr);
}

static void test_from_csr_rejections(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    EVP_PKEY *root_key = fixture_key("root-ca.key");
    EVP_PKEY *other_key = fixture_key("int-ca.key");
    int64_t now = to_unix(X509_get0_notBefore(root)) + DAY;
    int64_t after_root = to_unix(X509_get0_notAfter(root)) + 1;
    const char *alts[] = { "leaf.example.com", "192.0.2.7", "ops@example.com" };
    X509_REQ *csr = make_csr(fixture_keys.p256, alts, ELEMENTSOF(alts));

    /* Tampered: flip a bit of the signature and decode again. */
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(csr, &der);
    assert_true(len > 0);
    der[len - 1] ^= 0x01;
    const unsigned char *p = der;
    X509_REQ *tampered = d2i_X509_REQ(NULL, &p, len);
    assert_non_null(tampered);
    OPENSSL_free(der);

    GENERAL_NAME *rid = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(rid, GEN_RID, OBJ_txt2obj("1.2.3.4", 1));
    X509_REQ *rid_csr = make_csr_with_gn(fixture_keys.p256, rid);
    X509_REQ *bad_dns_csr = make_csr_with_gn(fixture_keys.p256, dns_gn("bad name!"));
    GENERAL_NAME *bad_ip = GENERAL_NAME_new();
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    assert_int_equal(ASN1_OCTET_STRING_set(os, (const unsigned char *)"\x01\x02\x03", 3), 1);
    GENERAL_NAME_set0_value(bad_ip, GEN_IPADD, os);
    X509_REQ *bad_ip_csr = make_csr_with_gn(fixture_keys.p256, bad_ip);

    const struct issue_profile ok = { .days = 30, .copy_sans = true, .allowed_sans = ALL_SANS };
    const struct issue_profile no_email = { .days = 30,
                                            .copy_sans = true,
                                            .allowed_sans = (1u << SAN_DNS) | (1u << SAN_IP) };
    const struct issue_profile zero_days = { .days = 0 };
    const struct issue_profile long_days = { .days = CERTD_VALIDITY_DAYS_MAX + 1 };
    const struct issue_profile bad_path = { .days = 1, .is_ca = true, .path_len = -2 };
    const struct {
        const char *name;
        X509_REQ *csr;
        EVP_PKEY *ca_key;
        const struct issue_profile *profile;
        int64_t now;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "tampered", tampered, root_key, &ok, now, -EBADMSG, CERTD_E_CSR_SIGNATURE, "signature" },
        { "forbidden kind", csr, root_key, &no_email, now, -EPERM, CERTD_E_POLICY_FORBIDS,
          "email" },
        { "registeredID", rid_csr, root_key, &ok, now, -EPERM, CERTD_E_POLICY_FORBIDS,
          "registeredID" },
        { "bad DNS in CSR", bad_dns_csr, root_key, &ok, now, -EBADMSG, CERTD_E_SAN_INVALID, "DNS" },
        { "bad IP in CSR", bad_ip_csr, root_key, &ok, now, -EBADMSG, CERTD_E_SAN_INVALID,
          "IP address" },
        { "wrong CA key", csr, other_key, &ok, now, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
          "does not match" },
        { "zero days", csr, root_key, &zero_days, now, -EINVAL, CERTD_E_VALIDITY_INVALID,
          "1 to 36500 days" },
        { "too many days", csr, root_key, &long_days, now, -EINVAL, CERTD_E_VALIDITY_INVALID,
          "days" },
        { "CA expired", csr, root_key, &ok, after_root, -EINVAL, CERTD_E_VALIDITY_INVALID,
          "expires before" },
        { "path length", csr, root_key, &bad_path, now, -EINVAL, CERTD_E_FIELD_INVALID,
          "path length" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        X509 *cert = NULL;
        int r = issue_from_csr(NULL, NULL, cases[i].csr, root, cases[i].ca_key, cases[i].profile,
                               cases[i].now, &cert, &err);
        if (r != cases[i].r || err.code != cases[i].code || !strstr(err.msg, cases[i].word)) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, r, err_code_name(err.code), err.msg);
        }
        assert_null(cert);
    }

    /* With SAN copying off, kinds the profile forbids do not matter. */
    struct issue_profile no_copy = { .days = 30 };
    X509 *cert = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(
        issue_from_csr(NULL, NULL, rid_csr, root, root_key, &no_copy, now, &cert, &err), 0);
    X509_free(cert);

    X509_REQ_free(bad_ip_csr);
    X509_REQ_free(bad_dns_csr);
    X509_REQ_free(rid_csr);
    X509_REQ_free(tampered);
    X509_REQ_free(csr);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(root_key);
    X509_free(root);
}

static void test_from_csr_key_policy(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    EVP_PKEY *root_key = fixture_key("root-ca.key");
    EVP_PKEY *rsa1024 = fixture_key("rsa1024.key");
    EVP_PKEY *k1 = fixture_key("secp256k1.key");
    int64_t now = to_unix(X509_get0_notBefore(root)) + DAY;
    X509_REQ *weak = make_csr(rsa1024, NULL, 0);
    X509_REQ *odd_curve = make_csr(k1, NULL, 0);
    X509_REQ *ed = make_raw_csr(fixture_keys.ed25519, X509_REQ_get_subject_name(weak), NULL);
    X509_REQ *rsa = make_csr(fixture_keys.rsa, NULL, 0);
    X509_REQ *p384 = make_csr(fixture_keys.p384, NULL, 0);
    const struct issue_profile defaults = { .days = 30 };
    const struct issue_profile ed_ok = { .days = 30, .keys = { .allow_ed25519 = true } };
    const struct issue_case cases[] = {
        { "RSA-1024", weak, root, root_key, &defaults, now, -EKEYREJECTED, CERTD_E_KEY_WEAK,
          "the CSR's key is a 1024-bit RSA key" },
        { "secp256k1", odd_curve, root, root_key, &defaults, now, -EOPNOTSUPP,
          CERTD_E_KEY_UNSUPPORTED, "secp256k1" },
        /* A zero key policy is the default one: no Ed25519. */
        { "Ed25519 by default", ed, root, root_key, &defaults, now, -EOPNOTSUPP,
          CERTD_E_KEY_UNSUPPORTED, "Ed25519" },
        { "Ed25519 allowed", ed, root, root_key, &ed_ok, now, 0, CERTD_E_OK, NULL },
        /* The policy applies to self-signed certificates from a CSR too. */
        { "RSA-1024 self-signed", weak, NULL, rsa1024, &defaults, now, -EKEYREJECTED,
          CERTD_E_KEY_WEAK, "1024-bit" },
        { "RSA-2048", rsa, root, root_key, &defaults, now, 0, CERTD_E_OK, NULL },
        { "P-384", p384, root, root_key, &defaults, now, 0, CERTD_E_OK, NULL },
    };
    run_issue_cases(cases, ELEMENTSOF(cases));

    X509_REQ_free(p384);
    X509_REQ_free(rsa);
    X509_REQ_free(ed);
    X509_REQ_free(odd_curve);
    X509_REQ_free(weak);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(root_key);
    X509_free(root);
}

static void test_from_csr_issuer_checks(void **state)
{
    (void)state;
    const char *ca_bc = "critical,CA:TRUE", *ca_ku = "critical,keyCertSign,cRLSign";
    int64_t nb = NOW - DAY, na = NOW + 365 * DAY;
    X509 *good = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, ca_ku, nb, na);
    X509 *no_ku = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, NULL, nb, na);
    X509 *starts_now = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, ca_ku, NOW, na);
    X509 *future = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, ca_ku, NOW + 1, na);
    X509 *not_ca =
        make_issuer_cert(fixture_keys.p384, "issuer", "critical,CA:FALSE", ca_ku, nb, na);
    X509 *no_bc = make_issuer_cert(fixture_keys.p384, "issuer", NULL, ca_ku, nb, na);
    X509 *no_kcs = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc,
                                    "critical,digitalSignature,cRLSign", nb, na);
    X509 *empty = make_issuer_cert(fixture_keys.p384, NULL, ca_bc, ca_ku, nb, na);
    /* A leaf that another implementation made (tests/data/gen-fixtures), with its own key. */
    X509 *leaf = fixture_cert("server-ec.pem");
    EVP_PKEY *leaf_key = fixture_key("server-ec.key");
    int64_t leaf_now = to_unix(X509_get0_notBefore(leaf)) + 60;
    X509_REQ *csr = make_csr(fixture_keys.p256, NULL, 0);
    const struct issue_profile prof = { .days = 30 };
    const struct issue_case cases[] = {
        { "CA", csr, good, fixture_keys.p384, &prof, NOW, 0, CERTD_E_OK, NULL },
        { "CA without KeyUsage", csr, no_ku, fixture_keys.p384, &prof, NOW, 0, CERTD_E_OK, NULL },
        { "CA from now on", csr, starts_now, fixture_keys.p384, &prof, NOW, 0, CERTD_E_OK, NULL },
        { "CA not yet valid", csr, future, fixture_keys.p384, &prof, NOW, -EKEYEXPIRED,
          CERTD_E_CERT_NOT_YET_VALID, "not valid before" },
        { "CA:FALSE", csr, not_ca, fixture_keys.p384, &prof, NOW, -EINVAL, CERTD_E_NOT_CA,
          "CA:TRUE" },
        { "no basicConstraints", csr, no_bc, fixture_keys.p384, &prof, NOW, -EINVAL, CERTD_E_NOT_CA,
          "not a CA" },
        { "no keyCertSign", csr, no_kcs, fixture_keys.p384, &prof, NOW, -EINVAL,
          CERTD_E_CA_NO_KEYCERTSIGN, "keyCertSign" },
        { "empty CA subject", csr, empty, fixture_keys.p384, &prof, NOW, -EBADMSG, CERTD_E_CERT_BAD,
          "empty subject" },
        { "leaf as CA", csr, leaf, leaf_key, &prof, leaf_now, -EINVAL, CERTD_E_NOT_CA, "not a CA" },
    };
    run_issue_cases(cases, ELEMENTSOF(cases));

    X509_REQ_free(csr);
    EVP_PKEY_free(leaf_key);
    X509_free(leaf);
    X509_free(empty);
    X509_free(no_kcs);
    X509_free(no_bc);
    X509_free(not_ca);
    X509_free(future);
    X509_free(starts_now);
    X509_free(no_ku);
    X509_free(good);
}

/* A subject with one attribute nid holding len bytes of data as ASN.1 string type. */
static X509_NAME *name_of(int nid, int type, const char *data, int len)
{
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    assert_int_equal(
        X509_NAME_add_entry_by_NID(name, nid, type, (const unsigned char *)data, len, -1, 0), 1);
    return name;
}

/* str repeated n times, in a malloc'd buffer; *ret_len is its length. */
static char *repeat_n(const char *str, size_t str_len, size_t n, int *ret_len)
{
    char *s = malloc(str_len * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        memcpy(s + i * str_len, str, str_len);
    }
    s[str_len * n] = '\0';
    *ret_len = (int)(str_len * n);
    return s;
}

static void test_from_csr_subject_bounds(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    EVP_PKEY *root_key = fixture_key("root-ca.key");
    int64_t now = to_unix(X509_get0_notBefore(root)) + DAY;
    const struct {
        int nid;
        int type;
        const char *unit; /* repeated `count` times */
        size_t unit_len;
        size_t count;
        int r;
        enum certd_errc code;
        const char *word;
    } subjects[] = {
        { NID_commonName, V_ASN1_UTF8STRING, "a", 1, 64, 0, CERTD_E_OK, NULL },
        { NID_commonName, V_ASN1_UTF8STRING, "a", 1, 65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "the CSR's subject CN is longer than 64 characters" },
        /* Characters, not bytes, whatever the string type. */
        { NID_commonName, V_ASN1_UTF8STRING, "\xc3\xa9", 2, 64, 0, CERTD_E_OK, NULL },
        { NID_commonName, V_ASN1_UTF8STRING, "\xc3\xa9", 2, 65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "CN is longer than 64" },
        { NID_commonName, V_ASN1_BMPSTRING, "\0a", 2, 64, 0, CERTD_E_OK, NULL },
        { NID_commonName, V_ASN1_BMPSTRING, "\0a", 2, 65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "CN is longer than 64" },
        { NID_commonName, V_ASN1_UTF8STRING, "a", 1, 4096, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "CN is longer than 64" },
        { NID_commonName, V_ASN1_UTF8STRING, "a\0", 2, 2, -EINVAL, CERTD_E_FIELD_INVALID,
          "CN contains a NUL" },
        { NID_commonName, V_ASN1_UTF8STRING, "a\x01", 2, 1, -EINVAL, CERTD_E_FIELD_INVALID,
          "CN contains a control character" },
        { NID_commonName, V_ASN1_UTF8STRING, " ", 1, 3, -EINVAL, CERTD_E_FIELD_INVALID,
          "CN is blank" },
        { NID_givenName, V_ASN1_UTF8STRING, "g", 1, 64, 0, CERTD_E_OK, NULL },
        { NID_givenName, V_ASN1_UTF8STRING, "g", 1, 65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "givenName is longer than 64" },
        { NID_surname, V_ASN1_UTF8STRING, "s", 1, 65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "surname is longer than 64" },
        { NID_initials, V_ASN1_UTF8STRING, "i", 1, 16, 0, CERTD_E_OK, NULL },
        { NID_initials, V_ASN1_UTF8STRING, "i", 1, 17, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "initials is longer than 16" },
        { NID_organizationName, V_ASN1_UTF8STRING, "o", 1, 65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "O is longer than 64" },
        { NID_localityName, V_ASN1_UTF8STRING, "l", 1, 128, 0, CERTD_E_OK, NULL },
        { NID_localityName, V_ASN1_UTF8STRING, "l", 1, 129, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "L is longer than 128" },
        { NID_countryName, V_ASN1_PRINTABLESTRING, "U", 1, 3, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "C is longer than 2" },
        { NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "e", 1, 256, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "emailAddress is longer than 255" },
        { NID_serialNumber, V_ASN1_PRINTABLESTRING, "1", 1, 65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "serialNumber is longer than 64" },
        /* Attributes csr_build never makes are copied as they are. */
        { NID_domainComponent, V_ASN1_IA5STRING, "d", 1, 200, 0, CERTD_E_OK, NULL },
    };
    const struct issue_profile prof = { .days = 30 };
    for (size_t i = 0; i < ELEMENTSOF(subjects); i++) {
        int len = 0;
        char *data = repeat_n(subjects[i].unit, subjects[i].unit_len, subjects[i].count, &len);
        X509_NAME *name = name_of(subjects[i].nid, subjects[i].type, data, len);
        X509_REQ *csr = make_raw_csr(fixture_keys.p256, name, NULL);
        char label[64];
        (void)snprintf(label, sizeof(label), "subject case %zu", i);
        const struct issue_case c = {
            .name = label,
            .csr = csr,
            .ca = root,
            .ca_key = root_key,
            .profile = &prof,
            .now = now,
            .r = subjects[i].r,
            .code = subjects[i].code,
            .word = subjects[i].word,
        };
        run_issue_cases(&c, 1);
        X509_REQ_free(csr);
        X509_NAME_free(name);
        free(data);
    }
    EVP_PKEY_free(root_key);
    X509_free(root);
}

static void test_from_csr_empty_subject(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    EVP_PKEY *root_key = fixture_key("root-ca.key");
    int64_t now = to_unix(X509_get0_notBefore(root)) + DAY;
    X509_REQ *with_san = make_raw_csr(fixture_keys.p256, NULL, dns_gn("anon.example.com"));
    X509_REQ *bare = make_raw_csr(fixture_keys.p256, NULL, NULL);
    const struct issue_profile copy = { .days = 30,
                                        .copy_sans = true,
                                        .allowed_sans = 1u << SAN_DNS };
    const struct issue_profile no_copy = { .days = 30 };
    const struct issue_case cases[] = {
        { "empty subject, SAN copied", with_san, root, root_key, &copy, now, 0, CERTD_E_OK, NULL },
        { "empty subject, SAN not copied", with_san, root, root_key, &no_copy, now, -EINVAL,
          CERTD_E_FIELD_MISSING, "empty subject and no alternative name" },
        { "empty subject, no SAN", bare, root, root_key, &copy, now, -EINVAL, CERTD_E_FIELD_MISSING,
          "empty subject" },
        { "empty subject, self-signed", with_san, NULL, fixture_keys.p256, &copy, now, -EINVAL,
          CERTD_E_FIELD_MISSING, "self-signed" },
    };
    run_issue_cases(cases, ELEMENTSOF(cases));

    /* RFC 5280 §4.1.2.6: with an empty subject the SAN is critical. */
    struct certd_err err = { 0 };
    X509 *cert = NULL;
    assert_int_equal(issue_from_csr(NULL, NULL, with_san, root, root_key, &copy, now, &cert, &err),
                     0);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)), 0);
    int crit = -1;
    GENERAL_NAMES *gens = get_sans(cert, &crit);
    assert_non_null(gens);
    assert_int_equal(crit, 1);
    assert_gn_string(sk_GENERAL_NAME_value(gens, 0), GEN_DNS, "anon.example.com");
    GENERAL_NAMES_free(gens);
    assert_int_equal(verify_with_anchor(cert, root, now + 60, NULL), 1);
    X509_free(cert);

    X509_REQ_free(bare);
    X509_REQ_free(with_san);
    EVP_PKEY_free(root_key);
    X509_free(root);
}

/* RFC 5280 §4.2.1.9: a CA certificate issued under a pathLenConstraint fits inside it. */
static void test_from_csr_issuer_pathlen(void **state)
{
    (void)state;
    X509 *root = fixture_cert("root-ca.pem");
    EVP_PKEY *root_key = fixture_key("root-ca.key");
    X509 *inter = fixture_cert("int-ca.pem"); /* pathlen:0 */
    EVP_PKEY *inter_key = fixture_key("int-ca.key");
    int64_t now = to_unix(X509_get0_notBefore(inter)) + DAY;
    X509_REQ *csr = make_csr(fixture_keys.p256, NULL, 0);
    struct certd_err err = { 0 };
    X509 *cert = NULL;

    /* Under pathlen 0: no CA at all, whatever its own constraint. */
    struct issue_profile ca0 = { .days = 30, .is_ca = true, .path_len = 0 };
    assert_int_equal(issue_from_csr(NULL, NULL, csr, inter, inter_key, &ca0, now, &cert, &err),
                     -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_non_null(strstr(err.msg, "pathLenConstraint is 0"));
    assert_null(cert);
    /* A leaf under the same CA is fine. */
    struct issue_profile leaf = { .days = 30 };
    err_clear(&err);
    assert_int_equal(issue_from_csr(NULL, NULL, csr, inter, inter_key, &leaf, now, &cert, &err), 0);
    X509_free(cert);
    cert = NULL;

    /* A CA with pathlen 1 (made under the unconstrained root) may issue CAs with pathlen 0. */
    struct issue_profile ca1 = { .days = 30, .is_ca = true, .path_len = 1 };
    X509 *mid = NULL;
    err_clear(&err);
    assert_int_equal(issue_from_csr(NULL, NULL, csr, root, root_key, &ca1, now, &mid, &err), 0);
    assert_int_equal(X509_get_pathlen(mid), 1);
    static const int bad[] = { -1, 1, 5 };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        struct issue_profile p = { .days = 10, .is_ca = true, .path_len = bad[i] };
        err_clear(&err);
        assert_int_equal(
            issue_from_csr(NULL, NULL, csr, mid, fixture_keys.p256, &p, now, &cert, &err), -EINVAL);
        assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
        assert_non_null(strstr(err.msg, "at most 0"));
        assert_null(cert);
    }
    err_clear(&err);
    assert_int_equal(
        issue_from_csr(NULL, NULL, csr, mid, fixture_keys.p256, &ca0, now, &cert, &err), 0);
    assert_int_equal(X509_get_pathlen(cert), 0);

    X509_free(cert);
    X509_free(mid);
    X509_REQ_free(csr);
    X509_free(inter);
    EVP_PKEY_free(inter_key);
    X509_free(root);
    EVP_PKEY_free(root_key);
}

/* The CA keys a root is made for, with the signature each must carry. */
static const struct {
    const char *name;
    EVP_PKEY **key;
    int sig_nid;
} ca_keys[] = {
    { "P-256", &fixture_keys.p256, NID_ecdsa_with_SHA256 },
    { "P-384", &fixture_keys.p384, NID_ecdsa_with_SHA384 },
    { "RSA-2048", &fixture_keys.rsa, NID_sha256WithRSAEncryption },
};

static X509 *make_root(EVP_PKEY *key)
{
    const struct ca_root_request req = {
        .common_name = "certd CA",
        .organization = "certd tests",
        .days = 3650,
        .now = NOW,
    };
    struct certd_err err = { 0 };
    X509 *root = NULL;
    int r = issue_ca_root(NULL, NULL, key, &req, &root, &err);
    if (r != 0) {
        fail_msg("issue_ca_root: r=%d code=%s msg=%s", r, err_code_name(err.code), err.msg);
    }
    return root;
}

/* A console's client certificate for key, issued by issue_from_csr under ca at NOW. */
static X509 *make_client(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key)
{
    X509_REQ *csr = make_csr(key, NULL, 0);
    const struct issue_profile prof = { .days = 365, .eku = CERT_EKU_CLIENT_AUTH };
    struct certd_err err = { 0 };
    X509 *cert = NULL;
    int r = issue_from_csr(NULL, NULL, csr, ca, ca_key, &prof, NOW, &cert, &err);
    if (r != 0) {
        fail_msg("issue_from_csr: r=%d code=%s msg=%s", r, err_code_name(err.code), err.msg);
    }
    X509_REQ_free(csr);
    return cert;
}

static void assert_name_entry(const X509_NAME *name, int idx, int nid, const char *text)
{
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, idx);
    assert_non_null(e);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
    assert_int_equal(ASN1_STRING_type(s), V_ASN1_UTF8STRING);
    assert_int_equal(ASN1_STRING_length(s), (int)strlen(text));
    assert_memory_equal(ASN1_STRING_get0_data(s), text, strlen(text));
}

static void test_ca_root(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(ca_keys); i++) {
        EVP_PKEY *key = *ca_keys[i].key;
        X509 *root = make_root(key);

        assert_int_equal(X509_get_version(root), X509_VERSION_3);
        assert_int_equal(X509_verify(root, key), 1);
        assert_int_equal(X509_get_signature_nid(root), ca_keys[i].sig_nid);
        assert_true(X509_check_ca(root) > 0);
        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(root), key), 1);

        /* Subject = issuer = O, CN, in that order. */
        const X509_NAME *subject = X509_get_subject_name(root);
        assert_int_equal(X509_NAME_cmp(subject, X509_get_issuer_name(root)), 0);
        assert_int_equal(X509_NAME_entry_count(subject), 2);
        assert_name_entry(subject, 0, NID_organizationName, "certd tests");
        assert_name_entry(subject, 1, NID_commonName, "certd CA");

        /* CA:TRUE pathlen 0 and exactly keyCertSign + cRLSign, both critical; nothing else. */
        assert_basic_constraints(root, true, 0);
        assert_int_equal(X509_get_pathlen(root), 0);
        assert_key_usage(root, CERT_KU_KEY_CERT_SIGN | CERT_KU_CRL_SIGN);
        assert_null(X509_get_ext_d2i(root, NID_ext_key_usage, NULL, NULL));
        assert_null(get_sans(root, NULL));

        /* SKI of 20 octets; AKI carries it as keyid only. */
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(root);
        assert_non_null(ski);
        assert_int_equal(ASN1_STRING_length(ski), 20);
        assert_non_null(X509_get0_authority_key_id(root));
        assert_int_equal(ASN1_OCTET_STRING_cmp(ski, X509_get0_authority_key_id(root)), 0);
        assert_null(X509_get0_authority_issuer(root));
        assert_null(X509_get0_authority_serial(root));

        /* A positive serial of at most 16 octets. */
        const ASN1_INTEGER *serial = X509_get0_serialNumber(root);
        assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
        assert_true(ASN1_STRING_length(serial) >= 1 && ASN1_STRING_length(serial) <= 16);
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        assert_non_null(bn);
        assert_false(BN_is_negative(bn));
        assert_false(BN_is_zero(bn));
        BN_free(bn);

        assert_int_equal(to_unix(X509_get0_notBefore(root)), NOW);
        assert_int_equal(to_unix(X509_get0_notAfter(root)), NOW + 3650 * DAY);

        /* A console's client certificate under it verifies against a store of the root alone. */
        X509 *client = make_client(root, key, fixture_keys.p256);
        int verr = 0;
        if (verify_chain(client, root, NULL, X509_PURPOSE_SSL_CLIENT, NOW + DAY, &verr) != 1) {
            fail_msg("%s: client: %s", ca_keys[i].name, X509_verify_cert_error_string(verr));
        }
        assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(client), ski), 0);
        /* The root's pathLenConstraint 0 still allows end-entity certificates only. */
        assert_int_equal(
            verify_chain(client, root, NULL, X509_PURPOSE_SSL_CLIENT, NOW + 3651 * DAY, &verr), 0);
        assert_int_equal(verr, X509_V_ERR_CERT_HAS_EXPIRED);
        X509_free(client);
        X509_free(root);
    }

    /* Without an organization the subject is the CN alone; two roots never share a serial. */
    const struct ca_root_request bare = { .common_name = "CA", .organization = "", .days = 1 };
    struct certd_err err = { 0 };
    X509 *a = NULL, *b = NULL;
    assert_int_equal(issue_ca_root(NULL, NULL, fixture_keys.p384, &bare, &a, &err), 0);
    assert_int_equal(issue_ca_root(NULL, NULL, fixture_keys.p384, &bare, &b, &err), 0);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(a)), 1);
    assert_name_entry(X509_get_subject_name(a), 0, NID_commonName, "CA");
    assert_int_equal(to_unix(X509_get0_notAfter(a)), DAY);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    X509_free(b);
    X509_free(a);
}

static void test_ca_root_rejections(void **state)
{
    (void)state;
    EVP_PKEY *rsa1024 = fixture_key("rsa1024.key");
    EVP_PKEY *k1 = fixture_key("secp256k1.key");
    char cn65[66], o65[66];
    memset(cn65, 'c', 65);
    cn65[65] = '\0';
    memset(o65, 'o', 65);
    o65[65] = '\0';
    const struct {
        const char *name;
        EVP_PKEY *key;
        struct ca_root_request req;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "no CN",
          fixture_keys.p256,
          { .days = 1 },
          -EINVAL,
          CERTD_E_FIELD_MISSING,
          "CommonName is required" },
        { "empty CN",
          fixture_keys.p256,
          { .common_name = "", .days = 1 },
          -EINVAL,
          CERTD_E_FIELD_MISSING,
          "CommonName" },
        { "CN 64", fixture_keys.p256, { .common_name = cn65 + 1, .days = 1 }, 0, CERTD_E_OK, NULL },
        { "CN 65",
          fixture_keys.p256,
          { .common_name = cn65, .days = 1 },
          -E2BIG,
          CERTD_E_FIELD_TOO_LONG,
          "CommonName is longer than 64" },
        { "CN control",
          fixture_keys.p256,
          { .common_name = "C\x1b"
                           "A",
            .days = 1 },
          -EINVAL,
          CERTD_E_FIELD_INVALID,
          "control" },
        { "CN not UTF-8",
          fixture_keys.p256,
          { .common_name = "\xff", .days = 1 },
          -EINVAL,
          CERTD_E_FIELD_INVALID,
          "UTF-8" },
        { "O 64",
          fixture_keys.p256,
          { .common_name = "CA", .organization = o65 + 1, .days = 1 },
          0,
          CERTD_E_OK,
          NULL },
        { "O 65",
          fixture_keys.p256,
          { .common_name = "CA", .organization = o65, .days = 1 },
          -E2BIG,
          CERTD_E_FIELD_TOO_LONG,
          "Organization is longer than 64" },
        { "O blank",
          fixture_keys.p256,
          { .common_name = "CA", .organization = "  ", .days = 1 },
          -EINVAL,
          CERTD_E_FIELD_INVALID,
          "Organization is blank" },
        { "0 days",
          fixture_keys.p256,
          { .common_name = "CA", .days = 0 },
          -EINVAL,
          CERTD_E_VALIDITY_INVALID,
          "1 to 36500 days" },
        { "max days",
          fixture_keys.p256,
          { .common_name = "CA", .days = CERTD_VALIDITY_DAYS_MAX, .now = NOW },
          0,
          CERTD_E_OK,
          NULL },
        { "too many days",
          fixture_keys.p256,
          { .common_name = "CA", .days = CERTD_VALIDITY_DAYS_MAX + 1 },
          -EINVAL,
          CERTD_E_VALIDITY_INVALID,
          "days" },
        /* Past 9999-12-31: no ASN.1 time holds it. */
        { "after 9999",
          fixture_keys.p256,
          { .common_name = "CA", .days = 1, .now = (int64_t)253402300800 - DAY / 2 },
          -EINVAL,
          CERTD_E_VALIDITY_INVALID,
          "cannot be represented" },
        { "RSA-1024",
          rsa1024,
          { .common_name = "CA", .days = 1 },
          -EKEYREJECTED,
          CERTD_E_KEY_WEAK,
          "the CA key is a 1024-bit RSA key" },
        { "secp256k1",
          k1,
          { .common_name = "CA", .days = 1 },
          -EOPNOTSUPP,
          CERTD_E_KEY_UNSUPPORTED,
          "secp256k1" },
        /* The module's key policy: no Ed25519 unless asked for. */
        { "Ed25519 by default",
          fixture_keys.ed25519,
          { .common_name = "CA", .days = 1 },
          -EOPNOTSUPP,
          CERTD_E_KEY_UNSUPPORTED,
          "Ed25519" },
        { "Ed25519 allowed",
          fixture_keys.ed25519,
          { .common_name = "CA", .days = 1, .keys = { .allow_ed25519 = true } },
          0,
          CERTD_E_OK,
          NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        static char dummy;
        X509 *const sentinel = (X509 *)(void *)&dummy;
        X509 *cert = sentinel;
        int r = issue_ca_root(NULL, NULL, cases[i].key, &cases[i].req, &cert, &err);
        if (r != cases[i].r || err.code != cases[i].code) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, r, err_code_name(err.code), err.msg);
        }
        if (r < 0) {
            assert_ptr_equal(cert, sentinel);
            if (!strstr(err.msg, cases[i].word)) {
                fail_msg("%s: \"%s\" not in \"%s\"", cases[i].name, cases[i].word, err.msg);
            }
            continue;
        }
        assert_int_equal(X509_verify(cert, cases[i].key), 1);
        assert_true(X509_check_ca(cert) > 0);
        X509_free(cert);
    }
    EVP_PKEY_free(k1);
    EVP_PKEY_free(rsa1024);
}

/* The reasonCode of a CRL entry: -1 when the entry has none; crit must be 0 when present. */
static int entry_reason(const X509_REVOKED *rev)
{
    int crit = -2;
    ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
    if (!e) {
        assert_int_equal(crit, -1);
        return -1;
    }
    assert_int_equal(crit, 0);
    long v = ASN1_ENUMERATED_get(e);
    ASN1_ENUMERATED_free(e);
    return (int)v;
}

/* A copy of crl decoded from its DER: what a relying party sees, in the order on the wire. */
static X509_CRL *crl_reparse(X509_CRL *crl)
{
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    assert_true(len > 0);
    const unsigned char *p = der;
    X509_CRL *copy = d2i_X509_CRL(NULL, &p, len);
    assert_non_null(copy);
    assert_ptr_equal(p, der + len);
    OPENSSL_free(der);
    return copy;
}

/*
 * The CRL as a relying party decodes it verifies with key and lists entries[0..n) in order, each
 * with its date and a reasonCode exactly when the reason is not unspecified.
 */
static void assert_crl_entries(X509_CRL *crl, EVP_PKEY *key, const struct crl_entry *entries,
                               size_t n)
{
    X509_CRL *wire = crl_reparse(crl);
    assert_int_equal(X509_CRL_verify(wire, key), 1);
    STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(wire);
    assert_int_equal(sk_X509_REVOKED_num(revs), (int)n);
    for (size_t j = 0; j < n; j++) {
        const X509_REVOKED *rev = sk_X509_REVOKED_value(revs, (int)j);
        assert_int_equal(ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(rev), entries[j].serial),
                         0);
        assert_int_equal(to_unix(X509_REVOKED_get0_revocationDate(rev)), entries[j].revoked_at);
        bool has_reason = entries[j].reason != CRL_REASON_UNSPECIFIED;
        assert_int_equal(entry_reason(rev), has_reason ? entries[j].reason : -1);
        assert_int_equal(X509_REVOKED_get_ext_count(rev), has_reason ? 1 : 0);
    }
    X509_CRL_free(wire);
}

/* The CRL's cRLNumber (which must be non-critical). */
static uint64_t crl_number(X509_CRL *crl)
{
    int crit = -1;
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
    assert_non_null(num);
    assert_int_equal(crit, 0);
    uint64_t v = 0;
    assert_int_equal(ASN1_INTEGER_get_uint64(&v, num), 1);
    ASN1_INTEGER_free(num);
    return v;
}

/* The CRL's AKI must be keyid = want, non-critical. */
static void assert_crl_aki(X509_CRL *crl, const ASN1_OCTET_STRING *want)
{
    int crit = -1;
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit, NULL);
    assert_non_null(akid);
    assert_int_equal(crit, 0);
    assert_non_null(akid->keyid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, want), 0);
    assert_null(akid->issuer);
    assert_null(akid->serial);
    AUTHORITY_KEYID_free(akid);
}

/* Call issue_crl with NULL library context; fails the test unless it succeeds. */
static X509_CRL *make_crl(X509 *ca, EVP_PKEY *ca_key, const struct crl_entry *entries, size_t n,
                          uint64_t number, int64_t now, int64_t next)
{
    struct certd_err err = { 0 };
    X509_CRL *crl = NULL;
    int r = issue_crl(NULL, NULL, ca, ca_key, entries, n, number, now, next, &crl, &err);
    if (r != 0) {
        fail_msg("issue_crl: r=%d code=%s msg=%s", r, err_code_name(err.code), err.msg);
    }
    assert_int_equal(err.code, CERTD_E_OK);
    return crl;
}

static void test_crl(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(ca_keys); i++) {
        EVP_PKEY *key = *ca_keys[i].key;
        X509 *root = make_root(key);
        X509 *revoked = make_client(root, key, fixture_keys.p256);
        X509 *other = make_client(root, key, fixture_keys.p384);
        X509 *held = make_client(root, key, fixture_keys.rsa);
        const int64_t now = NOW + DAY;
        const struct crl_entry entries[] = {
            { X509_get0_serialNumber(revoked), NOW + 100, CRL_REASON_KEY_COMPROMISE },
            { X509_get0_serialNumber(other), NOW + 200, CRL_REASON_UNSPECIFIED },
            { X509_get0_serialNumber(held), now, CRL_REASON_CERTIFICATE_HOLD },
        };
        X509_CRL *crl = make_crl(root, key, entries, ELEMENTSOF(entries), 42, now, 7 * DAY);

        assert_int_equal(X509_CRL_verify(crl, key), 1);
        assert_true(X509_CRL_verify(crl, fixture_keys.ed25519) <= 0);
        ERR_clear_error();
        assert_int_equal(X509_CRL_get_signature_nid(crl), ca_keys[i].sig_nid);
        assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
        assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(root)), 0);
        assert_int_equal(to_unix(X509_CRL_get0_lastUpdate(crl)), now);
        assert_int_equal(to_unix(X509_CRL_get0_nextUpdate(crl)), now + 7 * DAY);
        assert_int_equal(crl_number(crl), 42);
        assert_crl_aki(crl, X509_get0_subject_key_id(root));
        /* The only extensions: cRLNumber and AKI. */
        assert_int_equal(X509_CRL_get_ext_count(crl), 2);

        assert_crl_entries(crl, key, entries, ELEMENTSOF(entries));

        /* A relying party checking revocation: the revoked clients fail, a fresh one passes. */
        X509 *good = make_client(root, key, fixture_keys.p256);
        int verr = 0;
        const int64_t at = now + 60;
        X509 *bad[] = { revoked, other, held };
        for (size_t j = 0; j < ELEMENTSOF(bad); j++) {
            assert_int_equal(verify_chain(bad[j], root, crl, X509_PURPOSE_SSL_CLIENT, at, &verr),
                             0);
            assert_int_equal(verr, X509_V_ERR_CERT_REVOKED);
        }
        if (verify_chain(good, root, crl, X509_PURPOSE_SSL_CLIENT, at, &verr) != 1) {
            fail_msg("%s: unrevoked client: %s", ca_keys[i].name,
                     X509_verify_cert_error_string(verr));
        }
        /*
         * Those lookups sorted the entries in memory; what the CRL encodes to is still what was
         * signed, in the order given.
         */
        assert_crl_entries(crl, key, entries, ELEMENTSOF(entries));
        X509_REVOKED *found = NULL;
        assert_int_equal(X509_CRL_get0_by_serial(crl, &found, X509_get0_serialNumber(held)), 1);
        assert_int_equal(X509_CRL_get0_by_cert(crl, &found, good), 0);
        assert_crl_entries(crl, key, entries, ELEMENTSOF(entries));
        /* After nextUpdate the CRL no longer vouches for anyone. */
        assert_int_equal(
            verify_chain(good, root, crl, X509_PURPOSE_SSL_CLIENT, now + 8 * DAY, &verr), 0);
        assert_int_equal(verr, X509_V_ERR_CRL_HAS_EXPIRED);

        X509_free(good);
        X509_CRL_free(crl);
        X509_free(held);
        X509_free(other);
        X509_free(revoked);
        X509_free(root);
    }
}

static void test_crl_next_update_cap(void **state)
{
    (void)state;
    const char *bc = "critical,CA:TRUE", *ku = "critical,keyCertSign,cRLSign";
    X509 *ca = make_issuer_cert(fixture_keys.p384, "short CA", bc, ku, NOW - DAY, NOW + 3 * DAY);
    /* The issuer has no SKI: the AKI is computed from its key, as for certificates. */
    assert_null(X509_get0_subject_key_id(ca));
    const struct {
        int64_t next;
        int64_t want;
    } cases[] = {
        { 1, NOW + 1 },
        { DAY, NOW + DAY },
        { 3 * DAY, NOW + 3 * DAY },
        { 3 * DAY + 1, NOW + 3 * DAY },
        { 7 * DAY, NOW + 3 * DAY },
        { (int64_t)CERTD_VALIDITY_DAYS_MAX * DAY, NOW + 3 * DAY },
    };
    X509 *client = make_client(ca, fixture_keys.p384, fixture_keys.p256);
    X509_PUBKEY *xpk = X509_get_X509_PUBKEY(ca);
    const unsigned char *pk = NULL;
    int pk_len = 0;
    assert_int_equal(X509_PUBKEY_get0_param(NULL, &pk, &pk_len, NULL, xpk), 1);
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        X509_CRL *crl = make_crl(ca, fixture_keys.p384, NULL, 0, i, NOW, cases[i].next);
        assert_int_equal(to_unix(X509_CRL_get0_nextUpdate(crl)), cases[i].want);
        if (cases[i].want == NOW + 3 * DAY) {
            assert_int_equal(
                ASN1_TIME_compare(X509_CRL_get0_nextUpdate(crl), X509_get0_notAfter(ca)), 0);
        }
        assert_int_equal(crl_number(crl), i);
        /* The same key id as the client certificate's AKI: SHA-1 of the CA's key bits. */
        unsigned char sha1[20];
        assert_non_null(SHA1(pk, (size_t)pk_len, sha1));
        ASN1_OCTET_STRING *want = ASN1_OCTET_STRING_new();
        assert_int_equal(ASN1_OCTET_STRING_set(want, sha1, 20), 1);
        assert_crl_aki(crl, want);
        assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(client), want), 0);
        ASN1_OCTET_STRING_free(want);
        assert_int_equal(X509_CRL_verify(crl, fixture_keys.p384), 1);
        X509_CRL_free(crl);
    }
    X509_free(client);
    X509_free(ca);
}

static void test_crl_empty(void **state)
{
    (void)state;
    X509 *root = make_root(fixture_keys.p256);
    X509 *client = make_client(root, fixture_keys.p256, fixture_keys.p256);
    X509_CRL *crl = make_crl(root, fixture_keys.p256, NULL, 0, 0, NOW, DAY);
    assert_int_equal(X509_CRL_verify(crl, fixture_keys.p256), 1);
    assert_int_equal(crl_number(crl), 0);
    X509_CRL *wire = crl_reparse(crl);
    /* RFC 5280 §5.1.2.6: with no revoked certificates the list is absent, not empty. */
    assert_null(X509_CRL_get_REVOKED(wire));
    X509_CRL_free(wire);
    int verr = 0;
    if (verify_chain(client, root, crl, X509_PURPOSE_SSL_CLIENT, NOW + 60, &verr) != 1) {
        fail_msg("empty CRL: %s", X509_verify_cert_error_string(verr));
    }
    X509_CRL_free(crl);

    /* The largest number a cRLNumber of ours holds (RFC 5280 §5.2.3 allows 20 octets). */
    crl = make_crl(root, fixture_keys.p256, NULL, 0, UINT64_MAX, NOW, DAY);
    assert_true(crl_number(crl) == UINT64_MAX);
    X509_CRL_free(crl);
    X509_free(client);
    X509_free(root);
}

static void test_crl_many(void **state)
{
    (void)state;
    enum { N = 10000 };
    static const int reasons[] = { 0, 1, 2, 3, 4, 5, 6, 8, 9, 10 };
    X509 *root = make_root(fixture_keys.p256);
    struct crl_entry *entries = calloc(N, sizeof(*entries));
    ASN1_INTEGER **serials = calloc(N, sizeof(*serials));
    assert_non_null(entries);
    assert_non_null(serials);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(issue_random_serial(NULL, &serials[i]), 0);
        entries[i] = (struct crl_entry){ .serial = serials[i],
                                         .revoked_at = NOW - (int64_t)i,
                                         .reason = reasons[i % ELEMENTSOF(reasons)] };
    }
    X509_CRL *crl = make_crl(root, fixture_keys.p256, entries, N, 7, NOW, DAY);
    assert_int_equal(X509_CRL_verify(crl, fixture_keys.p256), 1);
    assert_int_equal(crl_number(crl), 7);
    assert_crl_entries(crl, fixture_keys.p256, entries, N);
    X509_CRL_free(crl);
    for (size_t i = 0; i < N; i++) {
        ASN1_INTEGER_free(serials[i]);
    }
    free(serials);
    free(entries);
    X509_free(root);
}

/* The entry limit at N: a CRL of ISSUE_CRL_ENTRIES_MAX entries is made (N + 1 is refused). */
static void test_crl_limit(void **state)
{
    (void)state;
    X509 *root = make_root(fixture_keys.p256);
    ASN1_INTEGER *serial = NULL;
    assert_int_equal(issue_random_serial(NULL, &serial), 0);
    struct crl_entry *entries = calloc(ISSUE_CRL_ENTRIES_MAX, sizeof(*entries));
    assert_non_null(entries);
    for (size_t i = 0; i < ISSUE_CRL_ENTRIES_MAX; i++) {
        entries[i] = (struct crl_entry){ .serial = serial, .revoked_at = NOW, .reason = 1 };
    }
    X509_CRL *crl = make_crl(root, fixture_keys.p256, entries, ISSUE_CRL_ENTRIES_MAX, 1, NOW, DAY);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), (int)ISSUE_CRL_ENTRIES_MAX);
    assert_int_equal(X509_CRL_verify(crl, fixture_keys.p256), 1);
    X509_CRL_free(crl);
    free(entries);
    ASN1_INTEGER_free(serial);
    X509_free(root);
}

static void test_crl_rejections(void **state)
{
    (void)state;
    const char *ca_bc = "critical,CA:TRUE", *ca_ku = "critical,keyCertSign,cRLSign";
    int64_t nb = NOW - DAY, na = NOW + 365 * DAY;
    X509 *root = make_root(fixture_keys.p256);
    X509 *not_ca = make_issuer_cert(fixture_keys.p384, "leaf", "critical,CA:FALSE",
                                    "critical,digitalSignature", nb, na);
    X509 *no_bc = make_issuer_cert(fixture_keys.p384, "leaf", NULL, ca_ku, nb, na);
    X509 *no_crl_sign =
        make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, "critical,keyCertSign", nb, na);
    X509 *no_ku = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, NULL, nb, na);
    X509 *future = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, ca_ku, NOW + 1, na);
    X509 *expired = make_issuer_cert(fixture_keys.p384, "issuer", ca_bc, ca_ku, nb, NOW);
    X509 *empty = make_issuer_cert(fixture_keys.p384, NULL, ca_bc, ca_ku, nb, na);

    ASN1_INTEGER *one = ASN1_INTEGER_new(), *zero = ASN1_INTEGER_new(), *neg = ASN1_INTEGER_new();
    assert_int_equal(ASN1_INTEGER_set(one, 1), 1);
    assert_int_equal(ASN1_INTEGER_set(zero, 0), 1);
    assert_int_equal(ASN1_INTEGER_set(neg, -5), 1);
    /* 2^160 - 1 is the largest magnitude of 20 octets; 2^160 needs 21. */
    BIGNUM *bn = BN_new();
    assert_non_null(bn);
    assert_int_equal(BN_set_bit(bn, 160), 1);
    ASN1_INTEGER *big21 = BN_to_ASN1_INTEGER(bn, NULL);
    assert_int_equal(BN_sub_word(bn, 1), 1);
    ASN1_INTEGER *big20 = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(big21);
    assert_non_null(big20);
    BN_free(bn);

    static const int ok_reasons[] = { 0, 1, 2, 3, 4, 5, 6, 8, 9, 10 };
    static const int bad_reasons[] = { -1, 7, 11, 255 };
    const struct crl_entry e_ok = { one, NOW, 1 };
    const struct crl_entry e_big20[] = { { big20, NOW, 0 } };
    const struct crl_entry e_null[] = { e_ok, { NULL, NOW, 0 } };
    const struct crl_entry e_zero[] = { { zero, NOW, 0 } };
    const struct crl_entry e_neg[] = { { neg, NOW, 0 } };
    const struct crl_entry e_big21[] = { { big21, NOW, 0 } };
    const struct crl_entry e_future[] = { { one, NOW + 1, 0 } };
    const struct crl_entry e_pre1970[] = { { one, -1, 0 } };
    const struct {
        const char *name;
        X509 *ca;
        EVP_PKEY *key;
        const struct crl_entry *entries;
        size_t n;
        int64_t next;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "good", root, fixture_keys.p256, &e_ok, 1, DAY, 0, CERTD_E_OK, NULL },
        { "20-octet serial", root, fixture_keys.p256, e_big20, 1, DAY, 0, CERTD_E_OK, NULL },
        { "CA without keyUsage", no_ku, fixture_keys.p384, &e_ok, 1, DAY, 0, CERTD_E_OK, NULL },
        { "CA:FALSE", not_ca, fixture_keys.p384, &e_ok, 1, DAY, -EINVAL, CERTD_E_NOT_CA,
          "CA:TRUE" },
        { "no basicConstraints", no_bc, fixture_keys.p384, &e_ok, 1, DAY, -EINVAL, CERTD_E_NOT_CA,
          "not a CA" },
        { "no cRLSign", no_crl_sign, fixture_keys.p384, &e_ok, 1, DAY, -EINVAL,
          CERTD_E_KEY_USAGE_MISMATCH, "cRLSign" },
        { "empty CA subject", empty, fixture_keys.p384, &e_ok, 1, DAY, -EBADMSG, CERTD_E_CERT_BAD,
          "empty subject" },
        { "CA not yet valid", future, fixture_keys.p384, &e_ok, 1, DAY, -EKEYEXPIRED,
          CERTD_E_CERT_NOT_YET_VALID, "not valid before" },
        { "CA expired", expired, fixture_keys.p384, &e_ok, 1, DAY, -EINVAL,
          CERTD_E_VALIDITY_INVALID, "expires before" },
        { "wrong key", root, fixture_keys.p384, &e_ok, 1, DAY, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
          "does not match" },
        { "next 0", root, fixture_keys.p256, &e_ok, 1, 0, -EINVAL, CERTD_E_VALIDITY_INVALID,
          "next update" },
        { "next negative", root, fixture_keys.p256, &e_ok, 1, -DAY, -EINVAL,
          CERTD_E_VALIDITY_INVALID, "next update" },
        { "next too far", root, fixture_keys.p256, &e_ok, 1,
          (int64_t)CERTD_VALIDITY_DAYS_MAX * DAY + 1, -EINVAL, CERTD_E_VALIDITY_INVALID,
          "36500 days" },
        { "no serial", root, fixture_keys.p256, e_null, 2, DAY, -EINVAL, CERTD_E_FIELD_INVALID,
          "serial number of CRL entry 1" },
        { "zero serial", root, fixture_keys.p256, e_zero, 1, DAY, -EINVAL, CERTD_E_FIELD_INVALID,
          "positive" },
        { "negative serial", root, fixture_keys.p256, e_neg, 1, DAY, -EINVAL, CERTD_E_FIELD_INVALID,
          "positive" },
        { "21-octet serial", root, fixture_keys.p256, e_big21, 1, DAY, -EINVAL,
          CERTD_E_FIELD_INVALID, "20 octets" },
        { "revoked after now", root, fixture_keys.p256, e_future, 1, DAY, -EINVAL,
          CERTD_E_VALIDITY_INVALID, "revocation time of CRL entry 0" },
        { "revoked before 1970", root, fixture_keys.p256, e_pre1970, 1, DAY, -EINVAL,
          CERTD_E_VALIDITY_INVALID, "1970" },
        /* Checked before the entries are read: a count alone cannot make us allocate. */
        { "too many entries", root, fixture_keys.p256, &e_ok, ISSUE_CRL_ENTRIES_MAX + 1, DAY,
          -E2BIG, CERTD_E_TOO_MANY_VALUES, "at most 100000 revoked" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        static char dummy;
        X509_CRL *const sentinel = (X509_CRL *)(void *)&dummy;
        X509_CRL *crl = sentinel;
        int r = issue_crl(NULL, NULL, cases[i].ca, cases[i].key, cases[i].entries, cases[i].n, 1,
                          NOW, cases[i].next, &crl, &err);
        if (r != cases[i].r || err.code != cases[i].code) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, r, err_code_name(err.code), err.msg);
        }
        if (r < 0) {
            assert_ptr_equal(crl, sentinel);
            if (!strstr(err.msg, cases[i].word)) {
                fail_msg("%s: \"%s\" not in \"%s\"", cases[i].name, cases[i].word, err.msg);
            }
            continue;
        }
        assert_int_equal(X509_CRL_verify(crl, cases[i].key), 1);
        X509_CRL_free(crl);
    }

    /* A clock near the end of int64_t: now + next_update_seconds would overflow. */
    {
        X509_CRL *crl = NULL;
        struct certd_err err = { 0 };
        assert_int_equal(issue_crl(NULL, NULL, root, fixture_keys.p256, NULL, 0, 1, INT64_MAX - 10,
                                   DAY, &crl, &err),
                         -EINVAL);
        assert_int_equal(err.code, CERTD_E_VALIDITY_INVALID);
        assert_non_null(strstr(err.msg, "cannot be represented"));
        assert_null(crl);
    }

    /* Every defined reason is taken, and every other refused, naming the entry and code. */
    for (size_t i = 0; i < ELEMENTSOF(ok_reasons); i++) {
        const struct crl_entry e = { one, NOW, ok_reasons[i] };
        X509_CRL *crl = make_crl(root, fixture_keys.p256, &e, 1, 1, NOW, DAY);
        X509_CRL *wire = crl_reparse(crl);
        assert_int_equal(entry_reason(sk_X509_REVOKED_value(X509_CRL_get_REVOKED(wire), 0)),
                         ok_reasons[i] == 0 ? -1 : ok_reasons[i]);
        X509_CRL_free(wire);
        X509_CRL_free(crl);
    }
    for (size_t i = 0; i < ELEMENTSOF(bad_reasons); i++) {
        const struct crl_entry e[] = { e_ok, { one, NOW, bad_reasons[i] } };
        struct certd_err err = { 0 };
        X509_CRL *crl = NULL;
        assert_int_equal(
            issue_crl(NULL, NULL, root, fixture_keys.p256, e, 2, 1, NOW, DAY, &crl, &err), -EINVAL);
        assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
        char want[64];
        (void)snprintf(want, sizeof(want), "CRL entry 1 has reason code %d", bad_reasons[i]);
        if (!strstr(err.msg, want)) {
            fail_msg("\"%s\" not in \"%s\"", want, err.msg);
        }
        assert_null(crl);
    }

    ASN1_INTEGER_free(big20);
    ASN1_INTEGER_free(big21);
    ASN1_INTEGER_free(neg);
    ASN1_INTEGER_free(zero);
    ASN1_INTEGER_free(one);
    X509_free(empty);
    X509_free(expired);
    X509_free(future);
    X509_free(no_ku);
    X509_free(no_crl_sign);
    X509_free(no_bc);
    X509_free(not_ca);
    X509_free(root);
}

static void write_pem(const char *dir, const char *name, X509 *cert, X509_CRL *crl)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(cert ? PEM_write_X509(f, cert) : PEM_write_X509_CRL(f, crl), 1);
    assert_int_equal(fclose(f), 0);
}

/*
 * Run `openssl args...` (NULL-terminated, at most 15) in dir, stdout and stderr into *ret_out
 * (malloc'd). Returns its exit status, or -1 when it cannot be started (no openssl installed).
 */
static int run_openssl(const char *dir, const char *const *args, char **ret_out)
{
    /* posix_spawn wants writable strings; ours are literals. */
    char *argv[16] = { NULL };
    argv[0] = strdup("openssl");
    assert_non_null(argv[0]);
    for (size_t i = 0; args[i]; i++) {
        assert_true(i + 2 < ELEMENTSOF(argv));
        argv[i + 1] = strdup(args[i]);
        assert_non_null(argv[i + 1]);
    }
    char out_path[4096];
    int n = snprintf(out_path, sizeof(out_path), "%s/out.txt", dir);
    assert_true(n > 0 && (size_t)n < sizeof(out_path));
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, 1, 2), 0);
    assert_int_equal(posix_spawn_file_actions_addchdir_np(&fa, dir), 0);
    extern char **environ;
    pid_t pid;
    int r = posix_spawnp(&pid, "openssl", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    for (size_t i = 0; argv[i]; i++) {
        free(argv[i]);
    }
    if (r != 0) {
        return -1;
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) {
        return -1;
    }
    FILE *f = fopen(out_path, "re");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t len = fread(buf, 1, 65535, f);
    (void)len;
    fclose(f);
    *ret_out = buf;
    return WEXITSTATUS(status);
}

/* An independent reader: the openssl CLI parses the CRL and checks revocation with it. */
static void test_crl_openssl_cli(void **state)
{
    (void)state;
    X509 *root = make_root(fixture_keys.p384);
    X509 *revoked = make_client(root, fixture_keys.p384, fixture_keys.p256);
    X509 *good = make_client(root, fixture_keys.p384, fixture_keys.rsa);
    const struct crl_entry e = { X509_get0_serialNumber(revoked), NOW + 10,
                                 CRL_REASON_KEY_COMPROMISE };
    X509_CRL *crl = make_crl(root, fixture_keys.p384, &e, 1, 1234, NOW + DAY, 7 * DAY);
    char *dir = scratch_dir("test-issue-crl");
    write_pem(dir, "root.pem", root, NULL);
    write_pem(dir, "revoked.pem", revoked, NULL);
    write_pem(dir, "good.pem", good, NULL);
    write_pem(dir, "crl.pem", NULL, crl);
    char *out = NULL;

    const char *const crl_text[] = { "crl", "-in", "crl.pem", "-noout", "-text", NULL };
    int r = run_openssl(dir, crl_text, &out);
    if (r < 0) {
        scratch_rm(dir);
        X509_CRL_free(crl);
        X509_free(good);
        X509_free(revoked);
        X509_free(root);
        skip();
    }
    assert_int_equal(r, 0);
    /* The serial as the CLI prints it: upper-case hex. */
    BIGNUM *bn = ASN1_INTEGER_to_BN(e.serial, NULL);
    char *hex = BN_bn2hex(bn);
    const char *want[] = { "Version 2",
                           "CN = certd CA",
                           "X509v3 CRL Number",
                           "1234",
                           "X509v3 Authority Key Identifier",
                           "Key Compromise",
                           "ecdsa-with-SHA384",
                           hex };
    for (size_t i = 0; i < ELEMENTSOF(want); i++) {
        if (!strstr(out, want[i])) {
            fail_msg("openssl crl: \"%s\" not in:\n%s", want[i], out);
        }
    }
    OPENSSL_free(hex);
    BN_free(bn);
    free(out);

    const char *const crl_verify[] = { "crl",     "-in",      "crl.pem", "-noout",
                                       "-CAfile", "root.pem", NULL };
    assert_int_equal(run_openssl(dir, crl_verify, &out), 0);
    assert_non_null(strstr(out, "verify OK"));
    free(out);

    /* -attime: the injected clock, not today. */
    char attime[32];
    (void)snprintf(attime, sizeof(attime), "%lld", (long long)(NOW + 2 * DAY));
    const char *const verify_good[] = { "verify",   "-attime",  attime,    "-crl_check", "-CAfile",
                                        "root.pem", "-CRLfile", "crl.pem", "good.pem",   NULL };
    r = run_openssl(dir, verify_good, &out);
    if (r != 0) {
        fail_msg("openssl verify good.pem: %d:\n%s", r, out);
    }
    assert_non_null(strstr(out, "good.pem: OK"));
    free(out);
    const char *const verify_revoked[] = { "verify",      "-attime",  attime,     "-crl_check",
                                           "-CAfile",     "root.pem", "-CRLfile", "crl.pem",
                                           "revoked.pem", NULL };
    assert_int_not_equal(run_openssl(dir, verify_revoked, &out), 0);
    if (!strstr(out, "certificate revoked")) {
        fail_msg("openssl verify revoked.pem:\n%s", out);
    }
    free(out);

    scratch_rm(dir);
    X509_CRL_free(crl);
    X509_free(good);
    X509_free(revoked);
    X509_free(root);
}

/* ---- the profile's subject and request policy (require_cn, filter_subject, refuse_excess) ---- */

struct rdn_spec {
    int nid;
    int type; /* MBSTRING_UTF8 or V_ASN1_PRINTABLESTRING ... */
    const char *value;
};

struct ext_spec {
    int nid;
    const char *value; /* OpenSSL configuration syntax */
};

/* A CSR made with plain OpenSSL: these subject attributes in order, these requested extensions. */
static X509_REQ *make_policy_csr(EVP_PKEY *key, const struct rdn_spec *rdns, size_t n_rdns,
                                 const struct ext_spec *exts, size_t n_exts)
{
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    for (size_t i = 0; i < n_rdns; i++) {
        assert_int_equal(X509_NAME_add_entry_by_NID(name, rdns[i].nid, rdns[i].type,
                                                    (const unsigned char *)rdns[i].value, -1, -1,
                                                    0),
                         1);
    }
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
    X509_NAME_free(name);
    if (n_exts > 0) {
        STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
        assert_non_null(sk);
        for (size_t i = 0; i < n_exts; i++) {
            X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, NULL, exts[i].nid, exts[i].value);
            assert_non_null(e);
            assert_true(sk_X509_EXTENSION_push(sk, e) > 0);
        }
        assert_int_equal(X509_REQ_add_extensions(req, sk), 1);
        sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    }
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    return req;
}

/* The subject of cert is exactly want[0..n), attribute by attribute, string types included. */
static void assert_subject_is(X509 *cert, const struct rdn_spec *want, size_t n)
{
    const X509_NAME *name = X509_get_subject_name(cert);
    assert_int_equal(X509_NAME_entry_count(name), (int)n);
    for (size_t i = 0; i < n; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, (int)i);
        assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), want[i].nid);
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
        int type = want[i].type == MBSTRING_UTF8 ? V_ASN1_UTF8STRING : want[i].type;
        assert_int_equal(ASN1_STRING_type(s), type);
        assert_int_equal(ASN1_STRING_length(s), (int)strlen(want[i].value));
        assert_memory_equal(ASN1_STRING_get0_data(s), want[i].value, strlen(want[i].value));
    }
}

static X509 *issue_policy_ok(X509_REQ *csr, X509 *ca, EVP_PKEY *ca_key,
                             const struct issue_profile *prof, const char *what)
{
    struct certd_err err = { 0 };
    X509 *cert = NULL;
    int r = issue_from_csr(NULL, NULL, csr, ca, ca_key, prof, NOW + DAY, &cert, &err);
    if (r != 0) {
        fail_msg("%s: r=%d code=%s msg=%s", what, r, err_code_name(err.code), err.msg);
    }
    assert_int_equal(X509_verify(cert, ca ? ca_key : X509_REQ_get0_pubkey(csr)), 1);
    return cert;
}

static void test_from_csr_require_cn(void **state)
{
    (void)state;
    EVP_PKEY *ca_key = fixture_keys.p384;
    X509 *ca = make_root(ca_key);
    const struct rdn_spec no_cn[] = { { NID_organizationName, MBSTRING_UTF8, "Example" } };
    const struct rdn_spec with_cn[] = {
        { NID_organizationName, MBSTRING_UTF8, "Example" },
        { NID_commonName, MBSTRING_UTF8, "hmc.example.com" },
    };
    const struct ext_spec san[] = { { NID_subject_alt_name, "DNS:hmc.example.com" } };
    X509_REQ *csr_no_cn = make_policy_csr(fixture_keys.p256, no_cn, 1, san, 1);
    X509_REQ *csr_cn = make_policy_csr(fixture_keys.p256, with_cn, 2, san, 1);
    struct issue_profile prof = {
        .days = 30,
        .eku = CERT_EKU_CLIENT_AUTH,
        .copy_sans = true,
        .allowed_sans = 1u << SAN_DNS,
        .require_cn = true,
    };

    struct certd_err err = { 0 };
    X509 *cert = NULL;
    int r = issue_from_csr(NULL, NULL, csr_no_cn, ca, ca_key, &prof, NOW + DAY, &cert, &err);
    assert_int_equal(r, -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_MISSING);
    assert_non_null(strstr(err.msg, "CN"));
    assert_string_equal(err.field, "CommonName");
    assert_null(cert);

    cert = issue_policy_ok(csr_cn, ca, ca_key, &prof, "with CN");
    assert_subject_is(cert, with_cn, ELEMENTSOF(with_cn));
    X509_free(cert);

    /* Without require_cn, the subject without CN is copied (old behaviour). */
    prof.require_cn = false;
    cert = issue_policy_ok(csr_no_cn, ca, ca_key, &prof, "no CN, not required");
    assert_subject_is(cert, no_cn, ELEMENTSOF(no_cn));
    X509_free(cert);

    X509_REQ_free(csr_cn);
    X509_REQ_free(csr_no_cn);
    X509_free(ca);
}

static void test_from_csr_filter_subject(void **state)
{
    (void)state;
    EVP_PKEY *ca_key = fixture_keys.p384;
    X509 *ca = make_root(ca_key);
    /* A console's subject in an unusual order, with string types of its own. */
    const struct rdn_spec subject[] = {
        { NID_countryName, V_ASN1_PRINTABLESTRING, "US" },
        { NID_organizationName, MBSTRING_UTF8, "Example" },
        { NID_streetAddress, MBSTRING_UTF8, "1 Main Street" },
        { NID_organizationalUnitName, V_ASN1_PRINTABLESTRING, "Consoles" },
        { NID_commonName, MBSTRING_UTF8, "hmc.example.com" },
        { NID_pkcs9_emailAddress, V_ASN1_IA5STRING, "ops@example.com" },
        { NID_organizationalUnitName, MBSTRING_UTF8, "Second unit" },
    };
    const struct ext_spec san[] = { { NID_subject_alt_name, "DNS:hmc.example.com" } };
    X509_REQ *csr = make_policy_csr(fixture_keys.p256, subject, ELEMENTSOF(subject), san, 1);
    const int keep[] = { NID_organizationalUnitName, NID_countryName, NID_organizationName };
    struct issue_profile prof = {
        .days = 30,
        .eku = CERT_EKU_CLIENT_AUTH,
        .copy_sans = true,
        .allowed_sans = 1u << SAN_DNS,
        .require_cn = true,
        .filter_subject = true,
        .keep_subject_nids = keep,
        .n_keep_subject_nids = ELEMENTSOF(keep),
    };

    /* Kept: C, O, both OUs and CN in the CSR's order; street and email dropped. */
    X509 *cert = issue_policy_ok(csr, ca, ca_key, &prof, "filtered");
    const struct rdn_spec want[] = { subject[0], subject[1], subject[3], subject[4], subject[6] };
    assert_subject_is(cert, want, ELEMENTSOF(want));
    X509_free(cert);

    /* Nothing kept but the CN. */
    prof.n_keep_subject_nids = 0;
    cert = issue_policy_ok(csr, ca, ca_key, &prof, "CN only");
    const struct rdn_spec cn_only[] = { subject[4] };
    assert_subject_is(cert, cn_only, ELEMENTSOF(cn_only));
    X509_free(cert);

    /* Without filter_subject the whole subject is copied (old behaviour). */
    prof.filter_subject = false;
    prof.n_keep_subject_nids = ELEMENTSOF(keep);
    cert = issue_policy_ok(csr, ca, ca_key, &prof, "unfiltered");
    assert_subject_is(cert, subject, ELEMENTSOF(subject));
    X509_free(cert);

    /* Filtered to nothing (no CN, none required): an empty subject needs the copied SAN, which
     * then is critical (RFC 5280 §4.1.2.6); without a SAN it is refused. */
    const struct rdn_spec street[] = { { NID_streetAddress, MBSTRING_UTF8, "1 Main Street" } };
    X509_REQ *csr_street = make_policy_csr(fixture_keys.p256, street, 1, san, 1);
    X509_REQ *csr_street_nosan = make_policy_csr(fixture_keys.p256, street, 1, NULL, 0);
    prof = (struct issue_profile){
        .days = 30,
        .eku = CERT_EKU_CLIENT_AUTH,
        .copy_sans = true,
        .allowed_sans = 1u << SAN_DNS,
        .filter_subject = true,
    };
    cert = issue_policy_ok(csr_street, ca, ca_key, &prof, "filtered to empty");
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(cert)), 0);
    int crit = -1;
    GENERAL_NAMES *gens = get_sans(cert, &crit);
    assert_non_null(gens);
    assert_int_equal(crit, 1);
    GENERAL_NAMES_free(gens);
    X509_free(cert);
    struct certd_err err = { 0 };
    cert = NULL;
    int r = issue_from_csr(NULL, NULL, csr_street_nosan, ca, ca_key, &prof, NOW + DAY, &cert, &err);
    assert_int_equal(r, -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_MISSING);
    assert_non_null(strstr(err.msg, "empty subject"));
    assert_null(cert);

    X509_REQ_free(csr_street_nosan);
    X509_REQ_free(csr_street);
    X509_REQ_free(csr);
    X509_free(ca);
}

/*
 * refuse_excess_requests: each request beyond the profile is refused, naming what was asked;
 * requests within it pass; and without the flag every request is ignored and the profile's
 * usages are what the certificate gets (the old behaviour).
 */
static void test_from_csr_refuse_excess(void **state)
{
    (void)state;
    EVP_PKEY *ca_key = fixture_keys.p384;
    X509 *ca = make_root(ca_key);
    const struct rdn_spec cn[] = { { NID_commonName, MBSTRING_UTF8, "hmc.example.com" } };
    const struct issue_profile client = {
        .days = 30,
        .eku = CERT_EKU_CLIENT_AUTH,
        .require_cn = true,
        .refuse_excess_requests = true,
    };
    const struct issue_profile agree = {
        .days = 30,
        .key_usage = CERT_KU_DIGITAL_SIGNATURE | CERT_KU_KEY_AGREEMENT,
        .eku = CERT_EKU_CLIENT_AUTH | CERT_EKU_SERVER_AUTH,
        .refuse_excess_requests = true,
    };
    const struct issue_profile self_ca = {
        .days = 30,
        .is_ca = true,
        .path_len = 0,
        .refuse_excess_requests = true,
    };
    const struct {
        const char *name;
        EVP_PKEY *key;
        struct ext_spec ext;
        const struct issue_profile *prof;
        bool is_self_signed;
        int r;
        const char *word;
    } cases[] = {
        { "CA:TRUE",
          fixture_keys.p256,
          { NID_basic_constraints, "critical,CA:TRUE" },
          &client,
          false,
          -EPERM,
          "CA:TRUE" },
        { "CA:TRUE, pathlen",
          fixture_keys.p256,
          { NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
          &client,
          false,
          -EPERM,
          "CA:TRUE" },
        { "CA:FALSE",
          fixture_keys.p256,
          { NID_basic_constraints, "critical,CA:FALSE" },
          &client,
          false,
          0,
          NULL },
        { "keyCertSign",
          fixture_keys.p256,
          { NID_key_usage, "critical,digitalSignature,keyCertSign" },
          &client,
          false,
          -EPERM,
          "keyCertSign" },
        { "cRLSign",
          fixture_keys.rsa,
          { NID_key_usage, "cRLSign" },
          &client,
          false,
          -EPERM,
          "cRLSign" },
        { "keyEncipherment, EC key",
          fixture_keys.p256,
          { NID_key_usage, "digitalSignature,keyEncipherment" },
          &client,
          false,
          -EPERM,
          "keyEncipherment" },
        { "keyEncipherment, RSA key",
          fixture_keys.rsa,
          { NID_key_usage, "digitalSignature,keyEncipherment" },
          &client,
          false,
          0,
          NULL },
        { "digitalSignature, EC key",
          fixture_keys.p256,
          { NID_key_usage, "digitalSignature" },
          &client,
          false,
          0,
          NULL },
        { "keyAgreement, not given",
          fixture_keys.p256,
          { NID_key_usage, "keyAgreement" },
          &client,
          false,
          -EPERM,
          "keyAgreement" },
        { "keyAgreement, given",
          fixture_keys.p256,
          { NID_key_usage, "keyAgreement" },
          &agree,
          false,
          0,
          NULL },
        { "nonRepudiation",
          fixture_keys.p256,
          { NID_key_usage, "nonRepudiation" },
          &agree,
          false,
          -EPERM,
          "nonRepudiation" },
        { "decipherOnly (bit 8)",
          fixture_keys.p256,
          { NID_key_usage, "keyAgreement,decipherOnly" },
          &agree,
          false,
          -EPERM,
          "decipherOnly" },
        { "serverAuth",
          fixture_keys.p256,
          { NID_ext_key_usage, "clientAuth,serverAuth" },
          &client,
          false,
          -EPERM,
          "serverAuth" },
        { "serverAuth, given",
          fixture_keys.p256,
          { NID_ext_key_usage, "serverAuth,clientAuth" },
          &agree,
          false,
          0,
          NULL },
        { "clientAuth",
          fixture_keys.p256,
          { NID_ext_key_usage, "clientAuth" },
          &client,
          false,
          0,
          NULL },
        { "codeSigning",
          fixture_keys.p256,
          { NID_ext_key_usage, "codeSigning" },
          &client,
          false,
          -EPERM,
          "codeSigning" },
        { "anyExtendedKeyUsage",
          fixture_keys.p256,
          { NID_ext_key_usage, "anyExtendedKeyUsage" },
          &client,
          false,
          -EPERM,
          "anyExtendedKeyUsage" },
        { "unknown EKU OID",
          fixture_keys.p256,
          { NID_ext_key_usage, "clientAuth,1.3.6.1.4.1.99999.42" },
          &client,
          false,
          -EPERM,
          "1.3.6.1.4.1.99999.42" },
        /* A CA profile gives CA:TRUE and keyCertSign + cRLSign, so it may be asked for them. */
        { "CA:TRUE from a CA profile",
          fixture_keys.p256,
          { NID_basic_constraints, "critical,CA:TRUE" },
          &self_ca,
          true,
          0,
          NULL },
        { "keyCertSign from a CA profile",
          fixture_keys.p256,
          { NID_key_usage, "critical,keyCertSign,cRLSign" },
          &self_ca,
          true,
          0,
          NULL },
        { "digitalSignature from a CA profile",
          fixture_keys.p256,
          { NID_key_usage, "digitalSignature" },
          &self_ca,
          true,
          -EPERM,
          "digitalSignature" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        X509_REQ *csr = make_policy_csr(cases[i].key, cn, 1, &cases[i].ext, 1);
        X509 *issuer = cases[i].is_self_signed ? NULL : ca;
        EVP_PKEY *signer = cases[i].is_self_signed ? cases[i].key : ca_key;
        struct certd_err err = { 0 };
        X509 *cert = NULL;
        int r =
            issue_from_csr(NULL, NULL, csr, issuer, signer, cases[i].prof, NOW + DAY, &cert, &err);
        if (r != cases[i].r) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, r, err_code_name(err.code), err.msg);
        }
        if (r < 0) {
            assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
            if (!strstr(err.msg, cases[i].word)) {
                fail_msg("%s: \"%s\" not in \"%s\"", cases[i].name, cases[i].word, err.msg);
            }
            assert_null(cert);
        } else {
            /* What the profile gives, not what was asked. */
            assert_int_equal(X509_check_ca(cert) == 1, cases[i].prof->is_ca);
            X509_free(cert);
        }

        /* Without refuse_excess_requests the request is ignored (old behaviour). */
        struct issue_profile lax = *cases[i].prof;
        lax.refuse_excess_requests = false;
        cert = issue_policy_ok(csr, issuer, signer, &lax, cases[i].name);
        if (!lax.is_ca) {
            assert_int_equal(X509_check_ca(cert), 0);
            uint32_t ku = lax.key_usage
                              ? lax.key_usage
                              : (EVP_PKEY_get_base_id(cases[i].key) == EVP_PKEY_RSA
                                     ? CERT_KU_DIGITAL_SIGNATURE | CERT_KU_KEY_ENCIPHERMENT
                                     : CERT_KU_DIGITAL_SIGNATURE);
            assert_key_usage(cert, ku);
            uint32_t xku = (lax.eku & CERT_EKU_CLIENT_AUTH ? XKU_SSL_CLIENT : 0u) |
                           (lax.eku & CERT_EKU_SERVER_AUTH ? XKU_SSL_SERVER : 0u);
            assert_int_equal(X509_get_extended_key_usage(cert), xku);
        } else {
            assert_basic_constraints(cert, true, 0);
            assert_key_usage(cert, CERT_KU_KEY_CERT_SIGN | CERT_KU_CRL_SIGN);
        }
        X509_free(cert);
        X509_REQ_free(csr);
    }
    X509_free(ca);
}

/* eku_bit_from_nid is the inverse of the EKU table; unknown purposes are 0. */
static void test_eku_bit_from_nid(void **state)
{
    (void)state;
    const struct {
        int nid;
        uint32_t bit;
        const char *name;
    } t[] = {
        { NID_server_auth, CERT_EKU_SERVER_AUTH, "serverAuth" },
        { NID_client_auth, CERT_EKU_CLIENT_AUTH, "clientAuth" },
        { NID_code_sign, CERT_EKU_CODE_SIGNING, "codeSigning" },
        { NID_email_protect, CERT_EKU_EMAIL_PROTECTION, "emailProtection" },
        { NID_time_stamp, CERT_EKU_TIME_STAMPING, "timeStamping" },
        { NID_OCSP_sign, CERT_EKU_OCSP_SIGNING, "OCSPSigning" },
        { NID_anyExtendedKeyUsage, CERT_EKU_ANY, "anyExtendedKeyUsage" },
        { NID_undef, 0, NULL },
        { NID_ms_smartcard_login, 0, NULL },
        { NID_commonName, 0, NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(t); i++) {
        assert_int_equal(eku_bit_from_nid(t[i].nid), t[i].bit);
        if (t[i].name) {
            assert_string_equal(eku_bit_name(t[i].bit), t[i].name);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selfsigned),
        cmocka_unit_test(test_selfsigned_key_types),
        cmocka_unit_test(test_selfsigned_rejections),
        cmocka_unit_test(test_random_serial),
        cmocka_unit_test(test_from_csr_chain),
        cmocka_unit_test(test_from_csr_key_not_needed),
        cmocka_unit_test(test_from_csr_selfsigned),
        cmocka_unit_test(test_from_csr_rejections),
        cmocka_unit_test(test_from_csr_key_policy),
        cmocka_unit_test(test_from_csr_issuer_checks),
        cmocka_unit_test(test_from_csr_subject_bounds),
        cmocka_unit_test(test_from_csr_empty_subject),
        cmocka_unit_test(test_from_csr_issuer_pathlen),
        cmocka_unit_test(test_from_csr_require_cn),
        cmocka_unit_test(test_from_csr_filter_subject),
        cmocka_unit_test(test_from_csr_refuse_excess),
        cmocka_unit_test(test_eku_bit_from_nid),
        cmocka_unit_test(test_ca_root),
        cmocka_unit_test(test_ca_root_rejections),
        cmocka_unit_test(test_crl),
        cmocka_unit_test(test_crl_next_update_cap),
        cmocka_unit_test(test_crl_empty),
        cmocka_unit_test(test_crl_many),
        cmocka_unit_test(test_crl_limit),
        cmocka_unit_test(test_crl_rejections),
        cmocka_unit_test(test_crl_openssl_cli),
    };
    return cmocka_run_group_tests(tests, fixture_keys_setup, fixture_keys_teardown);
}
