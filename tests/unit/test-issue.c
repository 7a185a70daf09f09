/* SPDX-License-Identifier: Apache-2.0 */
/*
 * issue/: self-signed certificates and certificates from CSRs, checked with plain OpenSSL:
 * signatures, X509_verify_cert with an explicit trust store, time and purpose, serials,
 * validity from the injected clock, extensions, and every refusal with errno, code and message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/objects.h>
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

/* Verify cert against anchor (a trust store of one) at time at, for TLS servers. */
static int verify_with_anchor(X509 *cert, X509 *anchor, int64_t at, int *ret_error)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, anchor), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER), 1);
    assert_int_equal(X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT), 1);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)at);
    int r = X509_verify_cert(ctx);
    if (ret_error) {
        *ret_error = X509_STORE_CTX_get_error(ctx);
    }
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selfsigned),
        cmocka_unit_test(test_selfsigned_key_types),
        cmocka_unit_test(test_selfsigned_rejections),
        cmocka_unit_test(test_random_serial),
        cmocka_unit_test(test_from_csr_chain),
        cmocka_unit_test(test_from_csr_selfsigned),
        cmocka_unit_test(test_from_csr_rejections),
        cmocka_unit_test(test_from_csr_key_policy),
        cmocka_unit_test(test_from_csr_issuer_checks),
        cmocka_unit_test(test_from_csr_subject_bounds),
        cmocka_unit_test(test_from_csr_empty_subject),
        cmocka_unit_test(test_from_csr_issuer_pathlen),
    };
    return cmocka_run_group_tests(tests, fixture_keys_setup, fixture_keys_teardown);
}
