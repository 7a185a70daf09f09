/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csr/: every GenerateCSR field, every rejection with errno, code and message, alternative-name
 * classification, key usages, and strict CSR parsing. Results are read back with plain OpenSSL
 * calls, never through csr/ itself.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/conf.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "csr/csr.h"
#include "testutil.h"
#include "util/limits.h"
#include "x509/inspect.h"

#define PASSWORD "s3cret-Chall3nge"

static const char *const full_sans[] = {
    "www.example.com",
    "192.0.2.1",
    "2001:db8::1",
    "admin@example.com",
    "https://bmc.example.com/redfish",
    "*.example.org",
    "absolute.example.net.",
};
static const char *const full_usages[] = {
    "DigitalSignature",     "KeyEncipherment",  "ServerAuthentication",
    "ClientAuthentication", "DigitalSignature", /* duplicates are harmless */
};

static struct csr_request full_request(void)
{
    return (struct csr_request){
        .common_name = "bmc.example.com",
        .alt_names = full_sans,
        .n_alt_names = ELEMENTSOF(full_sans),
        .key_usage = full_usages,
        .n_key_usage = ELEMENTSOF(full_usages),
        .city = "Austin",
        .state = "Texas",
        .country = "us",
        .organization = "Example Corp",
        .organizational_unit = "Platform \xc3\x89quipe", /* "Équipe" */
        .email = "pki@example.com",
        .given_name = "Ada",
        .surname = "Lovelace",
        .initials = "AL",
        .unstructured_name = "bmc-42",
        .contact_person = "Ada Lovelace",
        .challenge_password = PASSWORD,
    };
}

/* The subject entry at index i must be nid with this text and ASN.1 type. */
static void assert_entry(const X509_NAME *name, int i, int nid, const char *text, int type)
{
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    assert_non_null(e);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
    assert_int_equal(ASN1_STRING_type(s), type);
    assert_int_equal(ASN1_STRING_length(s), (int)strlen(text));
    assert_memory_equal(ASN1_STRING_get0_data(s), text, strlen(text));
}

static X509_EXTENSION *find_ext(STACK_OF(X509_EXTENSION) *exts, int nid)
{
    int i = X509v3_get_ext_by_NID(exts, nid, -1);
    return i >= 0 ? sk_X509_EXTENSION_value(exts, i) : NULL;
}

static void assert_gn_string(const GENERAL_NAME *gn, int type, const char *text)
{
    int t;
    const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &t);
    assert_int_equal(t, type);
    assert_int_equal(ASN1_STRING_length(s), (int)strlen(text));
    assert_memory_equal(ASN1_STRING_get0_data(s), text, strlen(text));
}

static void assert_gn_ip(const GENERAL_NAME *gn, const unsigned char *octets, int len)
{
    int t;
    const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &t);
    assert_int_equal(t, GEN_IPADD);
    assert_int_equal(ASN1_STRING_length(s), len);
    assert_memory_equal(ASN1_STRING_get0_data(s), octets, (size_t)len);
}

static char *to_pem(const X509_REQ *req)
{
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(csr_to_pem(req, &pem, &len), 0);
    assert_int_equal(strlen(pem), len);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----\n"));
    return pem;
}

static void test_every_field_round_trips(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    struct csr_request r = full_request();
    X509_REQ *req = NULL;

    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p384, &req, &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    assert_int_equal(X509_REQ_get_version(req), X509_REQ_VERSION_1);
    /* P-384 signs with SHA-384. */
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA384);

    /* The subject: exactly these twelve entries in this order, nothing else. */
    const X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_entry_count(name), 12);
    assert_entry(name, 0, NID_countryName, "US", V_ASN1_PRINTABLESTRING);
    assert_entry(name, 1, NID_stateOrProvinceName, "Texas", V_ASN1_UTF8STRING);
    assert_entry(name, 2, NID_localityName, "Austin", V_ASN1_UTF8STRING);
    assert_entry(name, 3, NID_organizationName, "Example Corp", V_ASN1_UTF8STRING);
    assert_entry(name, 4, NID_organizationalUnitName, "Platform \xc3\x89quipe", V_ASN1_UTF8STRING);
    assert_entry(name, 5, NID_commonName, "bmc.example.com", V_ASN1_UTF8STRING);
    assert_entry(name, 6, NID_pkcs9_emailAddress, "pki@example.com", V_ASN1_IA5STRING);
    assert_entry(name, 7, NID_givenName, "Ada", V_ASN1_UTF8STRING);
    assert_entry(name, 8, NID_surname, "Lovelace", V_ASN1_UTF8STRING);
    assert_entry(name, 9, NID_initials, "AL", V_ASN1_UTF8STRING);
    assert_entry(name, 10, NID_name, "Ada Lovelace", V_ASN1_UTF8STRING);
    assert_entry(name, 11, NID_pkcs9_unstructuredName, "bmc-42", V_ASN1_IA5STRING);
    /* The reference puts SANs, usages and the password into the subject: we do not. */
    assert_int_equal(X509_NAME_get_index_by_NID(name, NID_pkcs9_challengePassword, -1), -1);
    assert_int_equal(X509_NAME_get_index_by_NID(name, NID_subject_alt_name, -1), -1);
    char *oneline = X509_NAME_oneline(name, NULL, 0);
    assert_non_null(oneline);
    assert_null(strstr(oneline, PASSWORD));
    assert_null(strstr(oneline, "www.example.com"));
    assert_null(strstr(oneline, "ServerAuth"));
    OPENSSL_free(oneline);

    /* One real extensionRequest attribute holding SAN, keyUsage and EKU. */
    assert_true(X509_REQ_get_attr_by_NID(req, NID_ext_req, -1) >= 0);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_non_null(exts);
    assert_int_equal(sk_X509_EXTENSION_num(exts), 3);

    X509_EXTENSION *ext = find_ext(exts, NID_subject_alt_name);
    assert_non_null(ext);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
    GENERAL_NAMES *gens = X509V3_EXT_d2i(ext);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 7);
    static const unsigned char v4[4] = { 192, 0, 2, 1 };
    static const unsigned char v6[16] = {
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1
    };
    assert_gn_string(sk_GENERAL_NAME_value(gens, 0), GEN_DNS, "www.example.com");
    assert_gn_ip(sk_GENERAL_NAME_value(gens, 1), v4, 4);
    assert_gn_ip(sk_GENERAL_NAME_value(gens, 2), v6, 16);
    assert_gn_string(sk_GENERAL_NAME_value(gens, 3), GEN_EMAIL, "admin@example.com");
    assert_gn_string(sk_GENERAL_NAME_value(gens, 4), GEN_URI, "https://bmc.example.com/redfish");
    assert_gn_string(sk_GENERAL_NAME_value(gens, 5), GEN_DNS, "*.example.org");
    /* The absolute form loses its trailing dot (RFC 5280 §4.2.1.6). */
    assert_gn_string(sk_GENERAL_NAME_value(gens, 6), GEN_DNS, "absolute.example.net");
    GENERAL_NAMES_free(gens);

    ext = find_ext(exts, NID_key_usage);
    assert_non_null(ext);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    ASN1_BIT_STRING *ku = X509V3_EXT_d2i(ext);
    assert_non_null(ku);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 0), 1); /* digitalSignature */
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 1), 0);
    assert_int_equal(ASN1_BIT_STRING_get_bit(ku, 2), 1); /* keyEncipherment */
    for (int i = 3; i <= 8; i++) {
        assert_int_equal(ASN1_BIT_STRING_get_bit(ku, i), 0);
    }
    ASN1_BIT_STRING_free(ku);

    ext = find_ext(exts, NID_ext_key_usage);
    assert_non_null(ext);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
    EXTENDED_KEY_USAGE *eku = X509V3_EXT_d2i(ext);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), NID_client_auth);
    EXTENDED_KEY_USAGE_free(eku);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);

    /* challengePassword is a PKCS#9 attribute with the text we gave. */
    int idx = X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
    assert_true(idx >= 0);
    X509_ATTRIBUTE *attr = X509_REQ_get_attr(req, idx);
    assert_int_equal(X509_ATTRIBUTE_count(attr), 1);
    ASN1_TYPE *at = X509_ATTRIBUTE_get0_type(attr, 0);
    assert_non_null(at);
    assert_int_equal(at->type, V_ASN1_UTF8STRING);
    assert_int_equal(ASN1_STRING_length(at->value.asn1_string), (int)strlen(PASSWORD));
    assert_memory_equal(ASN1_STRING_get0_data(at->value.asn1_string), PASSWORD, strlen(PASSWORD));

    /* PEM round trip through csr_parse gives the same DER and still verifies. */
    char *pem = to_pem(req);
    X509_REQ *back = NULL;
    assert_int_equal(csr_parse(NULL, NULL, pem, strlen(pem), 0, &back, &err), 0);
    assert_int_equal(X509_REQ_verify(back, X509_REQ_get0_pubkey(back)), 1);
    unsigned char *d1 = NULL, *d2 = NULL;
    int l1 = i2d_X509_REQ(req, &d1), l2 = i2d_X509_REQ(back, &d2);
    assert_true(l1 > 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(d1, d2, (size_t)l1);
    OPENSSL_free(d1);
    OPENSSL_free(d2);
    free(pem);
    X509_REQ_free(back);
    X509_REQ_free(req);
}

static void test_key_types(void **state)
{
    (void)state;
    const struct {
        EVP_PKEY **key;
        int sig_nid;
    } cases[] = {
        { &fixture_keys.p256, NID_ecdsa_with_SHA256 },
        { &fixture_keys.p384, NID_ecdsa_with_SHA384 },
        { &fixture_keys.rsa, NID_sha256WithRSAEncryption },
        { &fixture_keys.ed25519, NID_ED25519 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        struct csr_request r = { .common_name = "k.example.com" };
        X509_REQ *req = NULL;
        assert_int_equal(csr_build(NULL, NULL, &r, *cases[i].key, &req, &err), 0);
        assert_int_equal(X509_REQ_get_signature_nid(req), cases[i].sig_nid);
        assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
        assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), *cases[i].key), 1);
        /* Nothing requested, nothing added: no extensionRequest, no password. */
        assert_int_equal(X509_REQ_get_attr_count(req), 0);
        assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 1);
        char *pem = to_pem(req);
        X509_REQ *back = NULL;
        assert_int_equal(csr_parse(NULL, NULL, pem, strlen(pem), 0, &back, &err), 0);
        free(pem);
        X509_REQ_free(back);
        X509_REQ_free(req);
    }
}

static char *repeat(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        memcpy(s + i * ul, unit, ul);
    }
    s[ul * n] = '\0';
    return s;
}

#define F(member) offsetof(struct csr_request, member)

static void test_field_rules(void **state)
{
    (void)state;
    char *a64 = repeat("a", 64), *a65 = repeat("a", 65), *e64 = repeat("\xc3\xa9", 64),
         *e65 = repeat("\xc3\xa9", 65), *a128 = repeat("a", 128), *a129 = repeat("a", 129),
         *a17 = repeat("a", 17), *a16 = repeat("a", 16), *a256 = repeat("a", 256),
         *pw256 = repeat("p", 256);
    const struct {
        size_t off;
        const char *value;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { F(common_name), NULL, -EINVAL, CERTD_E_FIELD_MISSING, "CommonName is required" },
        { F(common_name), "", -EINVAL, CERTD_E_FIELD_MISSING, "CommonName" },
        { F(common_name), a64, 0, CERTD_E_OK, NULL },
        { F(common_name), a65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "CommonName is longer than 64 characters" },
        /* Bounds count characters, not bytes: 64 two-byte characters are fine. */
        { F(common_name), e64, 0, CERTD_E_OK, NULL },
        { F(common_name), e65, -E2BIG, CERTD_E_FIELD_TOO_LONG, "64 characters" },
        { F(common_name), "   ", -EINVAL, CERTD_E_FIELD_INVALID, "CommonName is blank" },
        { F(common_name), "bmc\x01", -EINVAL, CERTD_E_FIELD_INVALID, "control character" },
        { F(common_name), "bmc\t1", -EINVAL, CERTD_E_FIELD_INVALID, "control character" },
        { F(common_name), "bmc\x7f", -EINVAL, CERTD_E_FIELD_INVALID, "control character" },
        { F(common_name), "bmc\xc2\x85", -EINVAL, CERTD_E_FIELD_INVALID, "control character" },
        { F(common_name), "bmc\xff", -EINVAL, CERTD_E_FIELD_INVALID, "not valid UTF-8" },
        { F(common_name), "\xc0\xaf", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },     /* overlong */
        { F(common_name), "\xed\xa0\x80", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" }, /* surrogate */
        { F(common_name), "\xe2\x82", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },     /* truncated */
        { F(common_name), "\xf4\x90\x80\x80", -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },
        { F(city), a128, 0, CERTD_E_OK, NULL },
        { F(city), a129, -E2BIG, CERTD_E_FIELD_TOO_LONG, "City is longer than 128 characters" },
        { F(city), "Aus\x01tin", -EINVAL, CERTD_E_FIELD_INVALID, "City contains a control" },
        { F(state), a129, -E2BIG, CERTD_E_FIELD_TOO_LONG, "State is longer than 128" },
        { F(organization), a65, -E2BIG, CERTD_E_FIELD_TOO_LONG, "Organization is longer than 64" },
        { F(organization), "  ", -EINVAL, CERTD_E_FIELD_INVALID, "Organization is blank" },
        { F(organizational_unit), a65, -E2BIG, CERTD_E_FIELD_TOO_LONG, "OrganizationalUnit" },
        /* certd's caps (util/limits.h): X.520 bounds these only by ub-name = 32768. */
        { F(given_name), a64, 0, CERTD_E_OK, NULL },
        { F(given_name), a65, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "GivenName is longer than 64 characters" },
        { F(given_name), e64, 0, CERTD_E_OK, NULL },
        { F(given_name), e65, -E2BIG, CERTD_E_FIELD_TOO_LONG, "GivenName is longer than 64" },
        { F(surname), a64, 0, CERTD_E_OK, NULL },
        { F(surname), a65, -E2BIG, CERTD_E_FIELD_TOO_LONG, "Surname is longer than 64 characters" },
        { F(initials), a16, 0, CERTD_E_OK, NULL },
        { F(initials), a17, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "Initials is longer than 16 characters" },
        { F(contact_person), a129, -E2BIG, CERTD_E_FIELD_TOO_LONG, "ContactPerson" },
        { F(unstructured_name), a256, -E2BIG, CERTD_E_FIELD_TOO_LONG, "UnstructuredName" },
        { F(unstructured_name), "b\xc3\xa9", -EINVAL, CERTD_E_FIELD_INVALID, "ASCII" },
        { F(email), "j\xc3\xb6@example.com", -EINVAL, CERTD_E_FIELD_INVALID, "Email may contain" },
        { F(email), "not-an-address", -EINVAL, CERTD_E_FIELD_INVALID, "valid email" },
        { F(email), "a@b@example.com", -EINVAL, CERTD_E_FIELD_INVALID, "valid email" },
        { F(country), "USA", -EINVAL, CERTD_E_FIELD_INVALID, "Country must be a two-letter" },
        { F(country), "U1", -EINVAL, CERTD_E_FIELD_INVALID, "Country" },
        { F(country), "U", -EINVAL, CERTD_E_FIELD_INVALID, "Country" },
        { F(country), "  ", -EINVAL, CERTD_E_FIELD_INVALID, "Country" },
        { F(country), "\xc3\x9c\x53", -EINVAL, CERTD_E_FIELD_INVALID, "Country" },
        /* "" means absent (csr.h): no C attribute at all. */
        { F(country), "", 0, CERTD_E_OK, NULL },
        { F(country), "de", 0, CERTD_E_OK, NULL },
        { F(challenge_password), pw256, -E2BIG, CERTD_E_FIELD_TOO_LONG, "ChallengePassword" },
        { F(challenge_password), "s3cret\x01pw", -EINVAL, CERTD_E_FIELD_INVALID,
          "ChallengePassword contains a control" },
        { F(challenge_password), "s3cret\xffpw", -EINVAL, CERTD_E_FIELD_INVALID,
          "ChallengePassword is not valid UTF-8" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        struct csr_request r = full_request();
        static char dummy;
        X509_REQ *const sentinel = (X509_REQ *)(void *)&dummy; /* untouched on failure */
        X509_REQ *req = sentinel;
        *(const char **)((char *)&r + cases[i].off) = cases[i].value;
        int rc = csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err);
        if (rc != cases[i].r || err.code != cases[i].code) {
            fail_msg("case %zu: r=%d code=%d msg=%s", i, rc, err.code, err.msg);
        }
        /* The password text never appears in a message, whatever the error. */
        assert_null(strstr(err.msg, "s3cret"));
        assert_null(strstr(err.msg, "pppp"));
        if (cases[i].r < 0) {
            assert_ptr_equal(req, sentinel);
            if (!strstr(err.msg, cases[i].word)) {
                fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].word, err.msg);
            }
            /* The field at fault is named for front ends, and it is the one the message names. */
            if (!err.field[0] || strncmp(err.msg, err.field, strlen(err.field)) != 0) {
                fail_msg("case %zu: field \"%s\" for \"%s\"", i, err.field, err.msg);
            }
            continue;
        }
        assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
        if (cases[i].off == F(country)) {
            const X509_NAME *name = X509_REQ_get_subject_name(req);
            int idx = X509_NAME_get_index_by_NID(name, NID_countryName, -1);
            if (cases[i].value[0] == '\0') {
                assert_int_equal(idx, -1);
            } else {
                assert_entry(name, idx, NID_countryName, "DE", V_ASN1_PRINTABLESTRING);
            }
        }
        X509_REQ_free(req);
    }
    free(a64);
    free(a65);
    free(e64);
    free(e65);
    free(a128);
    free(a129);
    free(a17);
    free(a16);
    free(a256);
    free(pw256);
}

static void test_san_classify(void **state)
{
    (void)state;
    char *l63 = repeat("a", 63), *l64 = repeat("a", 64);
    char n253[260], n254[260], lbl63[80], lbl64[80];
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters; one more makes 254. */
    (void)snprintf(n253, sizeof(n253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
    (void)snprintf(n254, sizeof(n254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
    (void)snprintf(lbl63, sizeof(lbl63), "%s.example.com", l63);
    (void)snprintf(lbl64, sizeof(lbl64), "%s.example.com", l64);
    assert_int_equal(strlen(n253), 253);
    assert_int_equal(strlen(n254), 254);

    const struct {
        const char *in;
        int r;
        enum san_kind kind;
    } cases[] = {
        { "example.com", 0, SAN_DNS },
        { "bmc", 0, SAN_DNS },
        { "xn--bcher-kva.example", 0, SAN_DNS },
        { "*.example.com", 0, SAN_DNS },
        { "example.com.", 0, SAN_DNS },
        { n253, 0, SAN_DNS },
        { lbl63, 0, SAN_DNS },
        { "192.0.2.1", 0, SAN_IP },
        { "::1", 0, SAN_IP },
        { "2001:db8::1", 0, SAN_IP },
        { "::ffff:192.0.2.1", 0, SAN_IP },
        { "admin@example.com", 0, SAN_EMAIL },
        { "first.last+tag@sub.example.com", 0, SAN_EMAIL },
        { "https://bmc.example.com/redfish/v1", 0, SAN_URI },
        { "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", 0, SAN_URI },
        { "mailto:admin@example.com", 0, SAN_URI },
        { "bad name!", -EINVAL, 0 },
        { "a..b", -EINVAL, 0 },
        { n254, -EINVAL, 0 },
        { lbl64, -EINVAL, 0 },
        { "-lead.example.com", -EINVAL, 0 },
        { "trail-.example.com", -EINVAL, 0 },
        { "example.com..", -EINVAL, 0 },
        { ".example.com", -EINVAL, 0 },
        { "*", -EINVAL, 0 },
        { "a.*.example.com", -EINVAL, 0 },
        { "*.*.example.com", -EINVAL, 0 },
        { "under_score.example.com", -EINVAL, 0 },
        { "256.1.1.1", -EINVAL, 0 },
        { "1.2.3", -EINVAL, 0 },
        { "fe80::1%eth0", -EINVAL, 0 },
        { "2001:db8::g", -EINVAL, 0 },
        { "http:", -EINVAL, 0 },
        { "http://a b", -EINVAL, 0 },
        { "a@", -EINVAL, 0 },
        { "@example.com", -EINVAL, 0 },
        { "a..b@example.com", -EINVAL, 0 },
        { "b\xc3\xbc\x63her.example", -EINVAL, 0 },
        { "", -EINVAL, 0 },
        { NULL, -EINVAL, 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        enum san_kind k = SAN_KIND_MAX;
        int r = san_classify(cases[i].in, &k);
        if (r != cases[i].r || (r == 0 && k != cases[i].kind) || (r < 0 && k != SAN_KIND_MAX)) {
            fail_msg("case %zu (%s): r=%d kind=%d", i, cases[i].in ? cases[i].in : "NULL", r,
                     (int)k);
        }
    }
    free(l63);
    free(l64);
}

static void test_san_rejections(void **state)
{
    (void)state;
    char *l64 = repeat("a", 64), *a256 = repeat("a", 256), *l63 = repeat("a", 63);
    char lbl64[80], n254[260];
    (void)snprintf(lbl64, sizeof(lbl64), "%s.example.com", l64);
    (void)snprintf(n254, sizeof(n254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
    const struct {
        const char *bad;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "bad name!", -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames[1] (\"bad name!\")" },
        { "a..b", -EINVAL, CERTD_E_SAN_INVALID, "not a DNS name, IP address" },
        { lbl64, -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames[1]" },
        { n254, -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames[1]" },
        { a256, -E2BIG, CERTD_E_FIELD_TOO_LONG, "AlternativeNames[1] is longer than 255" },
        { "", -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames[1] is empty" },
        /* Unprintable entries are named by index only. */
        { "\x01secret", -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames[1] is not" },
        { "caf\xc3\xa9.example", -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames[1] is not" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        const char *names[] = { "ok.example.com", cases[i].bad };
        struct csr_request r = { .common_name = "x", .alt_names = names, .n_alt_names = 2 };
        X509_REQ *req = NULL;
        assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), cases[i].r);
        assert_int_equal(err.code, cases[i].code);
        if (!strstr(err.msg, cases[i].word)) {
            fail_msg("case %zu: \"%s\" not in \"%s\"", i, cases[i].word, err.msg);
        }
        assert_null(strstr(err.msg, "secret"));
        assert_null(strstr(err.msg, "caf"));
        assert_null(req);
    }
    free(l64);
    free(a256);
    free(l63);
}

static void test_san_count(void **state)
{
    (void)state;
    const char *names[CERTD_SANS_MAX + 1];
    char buf[CERTD_SANS_MAX + 1][32];
    for (size_t i = 0; i <= CERTD_SANS_MAX; i++) {
        (void)snprintf(buf[i], sizeof(buf[i]), "h%zu.example.com", i);
        names[i] = buf[i];
    }
    struct certd_err err = { 0 };
    struct csr_request r = { .common_name = "x", .alt_names = names };
    X509_REQ *req = NULL;

    r.n_alt_names = CERTD_SANS_MAX;
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), 0);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(gens), CERTD_SANS_MAX);
    GENERAL_NAMES_free(gens);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    req = NULL;

    r.n_alt_names = CERTD_SANS_MAX + 1;
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_TOO_MANY_VALUES);
    assert_non_null(strstr(err.msg, "AlternativeNames has more than 64"));
    assert_null(req);
}

static void test_key_usage(void **state)
{
    (void)state;
    const struct {
        const char *name;
        uint32_t ku, eku;
    } map[] = {
        { "DigitalSignature", CERT_KU_DIGITAL_SIGNATURE, 0 },
        { "NonRepudiation", CERT_KU_NON_REPUDIATION, 0 },
        { "KeyEncipherment", CERT_KU_KEY_ENCIPHERMENT, 0 },
        { "DataEncipherment", CERT_KU_DATA_ENCIPHERMENT, 0 },
        { "KeyAgreement", CERT_KU_KEY_AGREEMENT, 0 },
        { "KeyCertSign", CERT_KU_KEY_CERT_SIGN, 0 },
        { "CRLSigning", CERT_KU_CRL_SIGN, 0 },
        { "EncipherOnly", CERT_KU_ENCIPHER_ONLY, 0 },
        { "DecipherOnly", CERT_KU_DECIPHER_ONLY, 0 },
        { "ServerAuthentication", 0, CERT_EKU_SERVER_AUTH },
        { "ClientAuthentication", 0, CERT_EKU_CLIENT_AUTH },
        { "CodeSigning", 0, CERT_EKU_CODE_SIGNING },
        { "EmailProtection", 0, CERT_EKU_EMAIL_PROTECTION },
        { "Timestamping", 0, CERT_EKU_TIME_STAMPING },
        { "OCSPSigning", 0, CERT_EKU_OCSP_SIGNING },
    };
    for (size_t i = 0; i < ELEMENTSOF(map); i++) {
        uint32_t ku = 99, eku = 99;
        assert_int_equal(key_usage_from_redfish(&map[i].name, 1, &ku, &eku, NULL), 0);
        assert_int_equal(ku, map[i].ku);
        assert_int_equal(eku, map[i].eku);
        /* And back: exactly this name. */
        const char *one[CSR_REDFISH_KEY_USAGES_MAX];
        assert_int_equal(key_usage_to_redfish(ku, eku, one, ELEMENTSOF(one)), 1);
        assert_string_equal(one[0], map[i].name);
    }
    /* Every name, in the schema's order; never more than max. */
    const char *all[CSR_REDFISH_KEY_USAGES_MAX];
    assert_int_equal(ELEMENTSOF(map), CSR_REDFISH_KEY_USAGES_MAX);
    assert_int_equal(key_usage_to_redfish(UINT32_MAX, UINT32_MAX, all, ELEMENTSOF(all)),
                     ELEMENTSOF(map));
    for (size_t i = 0; i < ELEMENTSOF(map); i++) {
        assert_string_equal(all[i], map[i].name);
    }
    assert_int_equal(key_usage_to_redfish(UINT32_MAX, UINT32_MAX, all, 3), 3);
    assert_int_equal(key_usage_to_redfish(0, 0, all, ELEMENTSOF(all)), 0);
    assert_int_equal(key_usage_to_redfish(CERT_KU_KEY_CERT_SIGN | CERT_KU_DIGITAL_SIGNATURE,
                                          CERT_EKU_SERVER_AUTH, all, ELEMENTSOF(all)),
                     3);
    assert_string_equal(all[0], "DigitalSignature");
    assert_string_equal(all[1], "KeyCertSign");
    assert_string_equal(all[2], "ServerAuthentication");

    /* Unknown and wrongly-cased names are refused; outputs stay untouched. */
    const char *bad[] = { "DigitalSignature", "Frobnicate" };
    struct certd_err err = { 0 };
    uint32_t ku = 7, eku = 7;
    assert_int_equal(key_usage_from_redfish(bad, 2, &ku, &eku, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_KEY_USAGE_INVALID);
    assert_non_null(strstr(err.msg, "KeyUsage[1] (\"Frobnicate\")"));
    assert_int_equal(ku, 7);
    assert_int_equal(eku, 7);
    const char *cased[] = { "digitalsignature" };
    err = (struct certd_err){ 0 };
    assert_int_equal(key_usage_from_redfish(cased, 1, &ku, &eku, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_KEY_USAGE_INVALID);
    const char *unprintable[] = { "Digital\x01" };
    err = (struct certd_err){ 0 };
    assert_int_equal(key_usage_from_redfish(unprintable, 1, &ku, &eku, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "KeyUsage[0] is not a known"));

    /* Through csr_build: an unknown usage, then the count limit at N and N+1. */
    err = (struct certd_err){ 0 };
    struct csr_request r = { .common_name = "x", .key_usage = bad, .n_key_usage = 2 };
    X509_REQ *req = NULL;
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_KEY_USAGE_INVALID);
    assert_null(req);

    const char *many[CERTD_KEY_USAGES_MAX + 1];
    for (size_t i = 0; i <= CERTD_KEY_USAGES_MAX; i++) {
        many[i] = i % 2 ? "ClientAuthentication" : "KeyAgreement";
    }
    r.key_usage = many;
    r.n_key_usage = CERTD_KEY_USAGES_MAX;
    err = (struct certd_err){ 0 };
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), 0);
    X509_REQ_free(req);
    req = NULL;
    r.n_key_usage = CERTD_KEY_USAGES_MAX + 1;
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_TOO_MANY_VALUES);
    assert_non_null(strstr(err.msg, "KeyUsage has more than 32"));

    /* Only EKU names: an EKU extension and no keyUsage extension. */
    const char *only_eku[] = { "ServerAuthentication", "OCSPSigning" };
    r.key_usage = only_eku;
    r.n_key_usage = 2;
    err = (struct certd_err){ 0 };
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), 0);
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_null(find_ext(exts, NID_key_usage));
    assert_null(find_ext(exts, NID_subject_alt_name));
    EXTENDED_KEY_USAGE *ekus = X509V3_get_d2i(exts, NID_ext_key_usage, NULL, NULL);
    assert_int_equal(sk_ASN1_OBJECT_num(ekus), 2);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(ekus, 1)), NID_OCSP_sign);
    EXTENDED_KEY_USAGE_free(ekus);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
}

static void test_password_never_in_messages(void **state)
{
    (void)state;
    /* Whatever goes wrong with a request that carries a password, the message omits it. */
    const char *bad_san[] = { "bad name!" };
    const char *bad_ku[] = { "Nope" };
    struct csr_request reqs[] = {
        { .common_name = NULL, .challenge_password = PASSWORD },
        { .common_name = "x", .country = "USA", .challenge_password = PASSWORD },
        { .common_name = "x",
          .alt_names = bad_san,
          .n_alt_names = 1,
          .challenge_password = PASSWORD },
        { .common_name = "x",
          .key_usage = bad_ku,
          .n_key_usage = 1,
          .challenge_password = PASSWORD },
        { .common_name = "x", .challenge_password = PASSWORD "\x01" },
        { .common_name = "x", .challenge_password = "   " },
    };
    for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
        struct certd_err err = { 0 };
        X509_REQ *req = NULL;
        assert_true(csr_build(NULL, NULL, &reqs[i], fixture_keys.p256, &req, &err) < 0);
        assert_true(err.msg[0] != '\0');
        assert_null(strstr(err.msg, PASSWORD));
        assert_null(strstr(err.msg, "Chall3nge"));
    }
}

/*
 * A certificate made with plain OpenSSL for Renew/Rekey requests: the subject entries as given
 * (object, string type, text), then san (conf syntax, NULL for none) as subjectAltName.
 */
struct name_part {
    int nid;
    int type;
    const char *text;
};

static X509 *renew_cert(const struct name_part *parts, size_t n, const char *san)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 42), 1);
    X509_NAME *name = X509_get_subject_name(x);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(X509_NAME_add_entry_by_NID(name, parts[i].nid, parts[i].type,
                                                    (const unsigned char *)parts[i].text, -1, -1,
                                                    0),
                         1);
    }
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_set_pubkey(x, fixture_keys.p256), 1);
    if (san) {
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
    }
    assert_true(X509_sign(x, fixture_keys.p256, EVP_sha256()) > 0);
    return x;
}

/* DER of a name, to compare byte for byte. */
static void assert_name_der_equal(const X509_NAME *a, const X509_NAME *b)
{
    unsigned char *da = NULL, *db = NULL;
    int la = i2d_X509_NAME(a, &da), lb = i2d_X509_NAME(b, &db);
    assert_true(la > 0);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, (size_t)la);
    OPENSSL_free(da);
    OPENSSL_free(db);
}

static void test_from_cert(void **state)
{
    (void)state;
    /* An order csr_build would never use, a PrintableString and a TeletexString, and no CN. */
    static const struct name_part parts[] = {
        { NID_organizationName, V_ASN1_PRINTABLESTRING, "Example Corp" },
        { NID_serialNumber, V_ASN1_PRINTABLESTRING, "SN-42" },
        { NID_countryName, V_ASN1_PRINTABLESTRING, "DE" },
        { NID_organizationalUnitName, V_ASN1_T61STRING, "Platform" },
        { NID_localityName, V_ASN1_UTF8STRING, "K\xc3\xb6ln" },
    };
    /* A directoryName and a registeredID too: names no AlternativeNames entry can make. */
    const char *san = "DNS:www.example.com,IP:192.0.2.1,email:pki@example.com,"
                      "URI:https://example.com/x,dirName:dir_sect,RID:1.2.3.4";
    X509 *cert = NULL;
    {
        /* dirName needs a section: build the SAN from a config string. */
        CONF *conf = NCONF_new(NULL);
        long line = 0;
        BIO *b = BIO_new_mem_buf("[dir_sect]\nCN=Directory Name\nO=Example\n", -1);
        assert_non_null(conf);
        assert_non_null(b);
        assert_int_equal(NCONF_load_bio(conf, b, &line), 1);
        BIO_free(b);
        cert = renew_cert(parts, ELEMENTSOF(parts), NULL);
        X509V3_CTX v3;
        X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
        X509V3_set_nconf(&v3, conf);
        X509_EXTENSION *e = X509V3_EXT_nconf_nid(conf, &v3, NID_subject_alt_name, san);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(cert, e, -1), 1);
        X509_EXTENSION_free(e);
        assert_true(X509_sign(cert, fixture_keys.p256, EVP_sha256()) > 0);
        NCONF_free(conf);
    }
    static const char *const usages[] = { "DigitalSignature", "ServerAuthentication" };
    struct csr_request r = { .from_cert = cert,
                             .key_usage = usages,
                             .n_key_usage = ELEMENTSOF(usages),
                             .challenge_password = PASSWORD };
    struct certd_err err = { 0 };
    X509_REQ *req = NULL;

    /* A new key (Rekey): the request carries it and is signed by it. */
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p384, &req, &err), 0);
    assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
    assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), fixture_keys.p384), 1);
    assert_int_equal(X509_REQ_get_signature_nid(req), NID_ecdsa_with_SHA384);

    /* The subject exactly: entries, order and string types, byte for byte. */
    const X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_name_der_equal(name, X509_get_subject_name(cert));
    assert_int_equal(X509_NAME_entry_count(name), (int)ELEMENTSOF(parts));
    assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, 3))),
                     V_ASN1_T61STRING);

    /* Every name of the SAN, in its order; non-critical beside a non-empty subject. */
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    assert_non_null(exts);
    X509_EXTENSION *ext = find_ext(exts, NID_subject_alt_name);
    assert_non_null(ext);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
    GENERAL_NAMES *got = X509V3_EXT_d2i(ext);
    GENERAL_NAMES *want = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(got);
    assert_non_null(want);
    assert_int_equal(sk_GENERAL_NAME_num(got), 6);
    assert_int_equal(sk_GENERAL_NAME_num(got), sk_GENERAL_NAME_num(want));
    for (int i = 0; i < sk_GENERAL_NAME_num(want); i++) {
        assert_int_equal(
            GENERAL_NAME_cmp(sk_GENERAL_NAME_value(got, i), sk_GENERAL_NAME_value(want, i)), 0);
    }
    assert_int_equal(sk_GENERAL_NAME_value(got, 4)->type, GEN_DIRNAME);
    GENERAL_NAMES_free(got);
    GENERAL_NAMES_free(want);
    /* The usages and the password as for GenerateCSR. */
    assert_non_null(find_ext(exts, NID_key_usage));
    assert_non_null(find_ext(exts, NID_ext_key_usage));
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    assert_true(X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1) >= 0);
    /* The PEM parses and verifies through csr_parse too. */
    char *pem = to_pem(req);
    X509_REQ *back = NULL;
    assert_int_equal(csr_parse(NULL, NULL, pem, strlen(pem), 0, &back, &err), 0);
    free(pem);
    X509_REQ_free(back);
    X509_REQ_free(req);
    req = NULL;

    /* The other fields keep their Redfish checks. */
    const char *bad_ku[] = { "Nope" };
    struct csr_request bad = { .from_cert = cert, .key_usage = bad_ku, .n_key_usage = 1 };
    err = (struct certd_err){ 0 };
    assert_int_equal(csr_build(NULL, NULL, &bad, fixture_keys.p256, &req, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_KEY_USAGE_INVALID);
    assert_non_null(strstr(err.msg, "KeyUsage"));
    bad = (struct csr_request){ .from_cert = cert, .challenge_password = "pw\x01" };
    err = (struct certd_err){ 0 };
    assert_int_equal(csr_build(NULL, NULL, &bad, fixture_keys.p256, &req, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "ChallengePassword"));
    /* Subject fields or AlternativeNames beside from_cert: a caller's mistake. */
    static const char *const one_san[] = { "a.example.com" };
    bad = (struct csr_request){ .from_cert = cert, .common_name = "x" };
    assert_int_equal(csr_build(NULL, NULL, &bad, fixture_keys.p256, &req, NULL), -EINVAL);
    bad = (struct csr_request){ .from_cert = cert, .country = "US" };
    assert_int_equal(csr_build(NULL, NULL, &bad, fixture_keys.p256, &req, NULL), -EINVAL);
    bad = (struct csr_request){ .from_cert = cert, .alt_names = one_san, .n_alt_names = 1 };
    assert_int_equal(csr_build(NULL, NULL, &bad, fixture_keys.p256, &req, NULL), -EINVAL);
    assert_null(req);
    X509_free(cert);

    /* An empty subject: the SAN is critical (RFC 5280 §4.2.1.6). No SAN: no extension. */
    cert = renew_cert(NULL, 0, "DNS:only.example.com");
    r = (struct csr_request){ .from_cert = cert };
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), 0);
    assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
    exts = X509_REQ_get_extensions(req);
    ext = find_ext(exts, NID_subject_alt_name);
    assert_non_null(ext);
    assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    req = NULL;
    X509_free(cert);
    static const struct name_part cn[] = { { NID_commonName, V_ASN1_UTF8STRING, "plain" } };
    cert = renew_cert(cn, 1, NULL);
    r = (struct csr_request){ .from_cert = cert };
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err), 0);
    assert_name_der_equal(X509_REQ_get_subject_name(req), X509_get_subject_name(cert));
    assert_int_equal(X509_REQ_get_attr_count(req), 0);
    X509_REQ_free(req);
    req = NULL;
    X509_free(cert);

    /* The SAN count limit at N and N+1. */
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t n = CERTD_SANS_MAX + extra;
        char *list = calloc(n, 32);
        assert_non_null(list);
        size_t off = 0;
        for (size_t i = 0; i < n; i++) {
            off += (size_t)snprintf(list + off, 32, "%sDNS:h%zu.example.com", i ? "," : "", i);
        }
        cert = renew_cert(cn, 1, list);
        free(list);
        r = (struct csr_request){ .from_cert = cert };
        err = (struct certd_err){ 0 };
        int rc = csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &err);
        if (extra == 0) {
            assert_int_equal(rc, 0);
            X509_REQ_free(req);
            req = NULL;
        } else {
            assert_int_equal(rc, -E2BIG);
            assert_int_equal(err.code, CERTD_E_TOO_MANY_VALUES);
            assert_non_null(strstr(err.msg, "more than 64 alternative names"));
            assert_null(req);
        }
        X509_free(cert);
    }
}

/*
 * csr_check_request: every rejection without a key (errno, code, a word of the message, the field
 * it names), and csr_build refuses the same requests with the same errno, code and message, so
 * that a front end that checks first never answers differently from one that builds.
 */
static void test_check_request(void **state)
{
    (void)state;
    char *a65 = repeat("a", 65), *pw256 = repeat("p", 256), *san_long = repeat("a", 300);
    static const char *const bad_san[] = { "www.example.com", "not a name" };
    static const char *const empty_san[] = { "" };
    static const char *const bad_usage[] = { "DigitalSignature", "Teleportation" };
    const char *long_san[] = { san_long };
    const char *many_usages[CERTD_KEY_USAGES_MAX];
    for (size_t i = 0; i < ELEMENTSOF(many_usages); i++) {
        many_usages[i] = "DigitalSignature";
    }
    const struct {
        size_t off; /* a string member to set, or SIZE_MAX */
        const char *value;
        const char *const *names; /* alt_names, when n_names > 0 */
        size_t n_names;
        const char *const *usages; /* key_usage, when n_usages > 0 */
        size_t n_usages;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { F(common_name), NULL, NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_MISSING, "required" },
        { F(common_name), a65, NULL, 0, NULL, 0, -E2BIG, CERTD_E_FIELD_TOO_LONG, "longer" },
        { F(common_name), "bmc\xff", NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8" },
        { F(city), "Aus\x01tin", NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID, "control" },
        { F(organization), "  ", NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID, "blank" },
        { F(country), "USA", NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID, "two-letter" },
        { F(email), "not-an-address", NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID,
          "valid email" },
        { F(email), "j\xc3\xb6@example.com", NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID,
          "ASCII" },
        { F(unstructured_name), "b\xc3\xa9", NULL, 0, NULL, 0, -EINVAL, CERTD_E_FIELD_INVALID,
          "ASCII" },
        { F(challenge_password), pw256, NULL, 0, NULL, 0, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "ChallengePassword" },
        { SIZE_MAX, NULL, bad_san, ELEMENTSOF(bad_san), NULL, 0, -EINVAL, CERTD_E_SAN_INVALID,
          "AlternativeNames[1]" },
        { SIZE_MAX, NULL, empty_san, ELEMENTSOF(empty_san), NULL, 0, -EINVAL, CERTD_E_SAN_INVALID,
          "empty" },
        { SIZE_MAX, NULL, long_san, ELEMENTSOF(long_san), NULL, 0, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "AlternativeNames[0]" },
        { SIZE_MAX, NULL, NULL, 0, bad_usage, ELEMENTSOF(bad_usage), -EINVAL,
          CERTD_E_KEY_USAGE_INVALID, "Teleportation" },
        /* One more than the bound, with an array of the bound's size: the count is judged
         * before any entry is read (ASan and valgrind would see a read past the array). */
        { SIZE_MAX, NULL, NULL, 0, many_usages, CERTD_KEY_USAGES_MAX + 1, -E2BIG,
          CERTD_E_TOO_MANY_VALUES, "KeyUsage has more than" },
        /* The first failing check wins, as in csr_build: Country before KeyUsage. */
        { F(country), "X", NULL, 0, bad_usage, ELEMENTSOF(bad_usage), -EINVAL,
          CERTD_E_FIELD_INVALID, "Country" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err check_err = { 0 }, build_err = { 0 };
        struct csr_request r = full_request();
        X509_REQ *req = NULL;
        if (cases[i].off != SIZE_MAX) {
            *(const char **)((char *)&r + cases[i].off) = cases[i].value;
        }
        if (cases[i].n_names > 0) {
            r.alt_names = cases[i].names;
            r.n_alt_names = cases[i].n_names;
        }
        if (cases[i].n_usages > 0) {
            r.key_usage = cases[i].usages;
            r.n_key_usage = cases[i].n_usages;
        }
        int rc = csr_check_request(&r, &check_err);
        if (rc != cases[i].r || check_err.code != cases[i].code ||
            !strstr(check_err.msg, cases[i].word) || !check_err.field[0]) {
            fail_msg("case %zu: r=%d code=%d field=%s msg=%s", i, rc, check_err.code,
                     check_err.field, check_err.msg);
        }
        assert_null(strstr(check_err.msg, "s3cret"));
        assert_null(strstr(check_err.msg, "pppp"));
        /* csr_build agrees, to the letter. */
        assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.p256, &req, &build_err), rc);
        assert_null(req);
        assert_int_equal(build_err.code, check_err.code);
        assert_string_equal(build_err.msg, check_err.msg);
        assert_string_equal(build_err.field, check_err.field);
    }

    /* A good request passes, and leaves err alone; csr_build builds it. */
    struct certd_err err = { 0 };
    struct csr_request good = full_request();
    X509_REQ *req = NULL;
    assert_int_equal(csr_check_request(&good, &err), 0);
    assert_false(err_is_set(&err));
    assert_int_equal(csr_build(NULL, NULL, &good, fixture_keys.p256, &req, &err), 0);
    X509_REQ_free(req);

    /* A caller's mistakes: -EINVAL, no detail record. */
    assert_int_equal(csr_check_request(NULL, &err), -EINVAL);
    struct csr_request no_array = { .common_name = "x", .n_alt_names = 1 };
    assert_int_equal(csr_check_request(&no_array, &err), -EINVAL);
    assert_false(err_is_set(&err));

    /* Renew/Rekey: a certificate whose subjectAltName appears twice is refused without a key,
     * and subject fields beside from_cert are the caller's mistake. */
    X509 *cert = renew_cert(NULL, 0, "DNS:a.example.com");
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *dup = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:b.example.com");
    assert_non_null(dup);
    assert_int_equal(X509_add_ext(cert, dup, -1), 1);
    X509_EXTENSION_free(dup);
    struct csr_request renew = { .from_cert = cert };
    assert_int_equal(csr_check_request(&renew, &err), -EBADMSG);
    assert_int_equal(err.code, CERTD_E_CERT_BAD);
    assert_non_null(strstr(err.msg, "subjectAltName"));
    err_clear(&err);
    renew.common_name = "x";
    assert_int_equal(csr_check_request(&renew, &err), -EINVAL);
    assert_false(err_is_set(&err));
    X509_free(cert);

    free(a65);
    free(pw256);
    free(san_long);
}

/* PEM-wrap der under label with OpenSSL's writer. */
static char *pem_wrap(const char *label, const unsigned char *der, long len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    assert_true(PEM_write_bio(bio, label, "", der, len) > 0);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    BIO_free(bio);
    return s;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    assert_non_null(s);
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static void test_parse_table(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    struct csr_request r = full_request();
    X509_REQ *req = NULL;
    assert_int_equal(csr_build(NULL, NULL, &r, fixture_keys.rsa, &req, &err), 0);
    unsigned char *der = NULL;
    int der_len = i2d_X509_REQ(req, &der);
    assert_true(der_len > 0);

    char *valid = to_pem(req);
    char *spaced = concat("\n  \r\n\t", valid);
    char *spaced2 = concat(spaced, "\n\n  \n");
    char *newlabel = pem_wrap("NEW CERTIFICATE REQUEST", der, der_len);
    char *two = concat(valid, valid);
    char *junk = concat(valid, "junk\n");
    char *garbage = strdup("hello, this is not a CSR\n");
    /* Truncated: the block stops half way, no END line. */
    char *truncated = strdup(valid);
    truncated[strlen(truncated) / 2] = '\0';
    /* Tampered: flip a bit in the last byte of the DER (inside the signature), re-encode. */
    unsigned char *tampered_der = OPENSSL_memdup(der, (size_t)der_len);
    tampered_der[der_len - 1] ^= 0x01;
    char *tampered = pem_wrap("CERTIFICATE REQUEST", tampered_der, der_len);
    /* Body shortened, END line intact: the base64/DER no longer decodes. */
    char *chopped = pem_wrap("CERTIFICATE REQUEST", der, der_len - 40);
    /* Good DER followed by extra bytes inside the PEM block. */
    unsigned char *extra_der = OPENSSL_malloc((size_t)der_len + 2);
    memcpy(extra_der, der, (size_t)der_len);
    extra_der[der_len] = 0x05;
    extra_der[der_len + 1] = 0x00;
    char *extra = pem_wrap("CERTIFICATE REQUEST", extra_der, der_len + 2);
    char *wrong_label = pem_wrap("CERTIFICATE", der, der_len);
    char *mismatch = strdup(newlabel);
    char *end = strstr(mismatch, "-----END NEW ");
    assert_non_null(end);
    memmove(end + 9, end + 13, strlen(end + 13) + 1); /* "-----END CERTIFICATE REQUEST-----" */
    char *headers = NULL;
    {
        const char *hdr = "Proc-Type: 4,ENCRYPTED\n";
        char *nl = strchr(valid, '\n');
        size_t pre = (size_t)(nl - valid) + 1;
        headers = malloc(strlen(valid) + strlen(hdr) + 1);
        assert_non_null(headers);
        memcpy(headers, valid, pre);
        memcpy(headers + pre, hdr, strlen(hdr));
        memcpy(headers + pre + strlen(hdr), valid + pre, strlen(valid + pre) + 1);
    }
    /* A certificate's DER under the CSR label. */
    X509 *cert = fixture_cert("server-ec.pem");
    unsigned char *cert_der = NULL;
    int cert_len = i2d_X509(cert, &cert_der);
    char *cert_as_csr = pem_wrap("CERTIFICATE REQUEST", cert_der, cert_len);
    /* The same with CRLF line ends, as uploads from Windows clients have them. */
    char *crlf = malloc(2 * strlen(valid) + 1);
    assert_non_null(crlf);
    {
        size_t j = 0;
        for (const char *q = valid; *q; q++) {
            if (*q == '\n') {
                crlf[j++] = '\r';
            }
            crlf[j++] = *q;
        }
        crlf[j] = '\0';
    }
    char *with_nul = strdup(valid);
    size_t valid_len = strlen(valid);
    with_nul[40] = '\0'; /* inside the base64 body */

    const struct {
        const char *name;
        const char *in;
        size_t len; /* 0: strlen */
        size_t max;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "valid", valid, 0, 0, 0, CERTD_E_OK, NULL },
        { "white space around", spaced2, 0, 0, 0, CERTD_E_OK, NULL },
        { "CRLF line ends", crlf, 0, 0, 0, CERTD_E_OK, NULL },
        { "NEW label", newlabel, 0, 0, 0, CERTD_E_OK, NULL },
        { "exact max", valid, 0, valid_len, 0, CERTD_E_OK, NULL },
        { "oversize", valid, 0, valid_len - 1, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "larger than" },
        { "two CSRs", two, 0, 0, -E2BIG, CERTD_E_TOO_MANY_VALUES, "more than one CSR" },
        { "trailing junk", junk, 0, 0, -EBADMSG, CERTD_E_TRAILING_DATA, "after the CSR" },
        { "garbage", garbage, 0, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not a PEM" },
        { "empty", "", 0, 0, -EINVAL, CERTD_E_INPUT_EMPTY, "empty" },
        { "only space", " \n\t\r\n", 0, 0, -EINVAL, CERTD_E_INPUT_EMPTY, "empty" },
        { "truncated", truncated, 0, 0, -EBADMSG, CERTD_E_PEM_TRUNCATED, "no END line" },
        { "chopped DER", chopped, 0, 0, -EBADMSG, CERTD_E_CSR_BAD, "not a valid PKCS#10" },
        { "DER trailing bytes", extra, 0, 0, -EBADMSG, CERTD_E_CSR_BAD, "trailing bytes" },
        { "tampered signature", tampered, 0, 0, -EBADMSG, CERTD_E_CSR_SIGNATURE, "signature" },
        { "certificate label", wrong_label, 0, 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
          "another kind" },
        { "END label mismatch", mismatch, 0, 0, -EBADMSG, CERTD_E_CSR_BAD, "END line" },
        { "PEM headers", headers, 0, 0, -EBADMSG, CERTD_E_CSR_BAD, "base64" },
        { "certificate as CSR", cert_as_csr, 0, 0, -EBADMSG, CERTD_E_CSR_BAD, "PKCS#10" },
        { "embedded NUL", with_nul, valid_len, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "NUL" },
        { "NUL only", "\0", 1, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "NUL" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err e = { 0 };
        X509_REQ *out = NULL;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        int rc = csr_parse(NULL, NULL, cases[i].in, len, cases[i].max, &out, &e);
        if (rc != cases[i].r || e.code != cases[i].code) {
            fail_msg("%s: r=%d code=%s msg=%s", cases[i].name, rc, err_code_name(e.code), e.msg);
        }
        if (rc < 0) {
            assert_null(out);
            if (!strstr(e.msg, cases[i].word)) {
                fail_msg("%s: \"%s\" not in \"%s\"", cases[i].name, cases[i].word, e.msg);
            }
        } else {
            assert_int_equal(X509_REQ_verify(out, X509_REQ_get0_pubkey(out)), 1);
            X509_REQ_free(out);
        }
    }

    free(valid);
    free(spaced);
    free(spaced2);
    free(newlabel);
    free(two);
    free(junk);
    free(garbage);
    free(truncated);
    OPENSSL_free(tampered_der);
    free(tampered);
    free(chopped);
    OPENSSL_free(extra_der);
    free(extra);
    free(wrong_label);
    free(mismatch);
    free(headers);
    OPENSSL_free(cert_der);
    X509_free(cert);
    free(cert_as_csr);
    free(with_nul);
    free(crlf);
    OPENSSL_free(der);
    X509_REQ_free(req);
}

static void test_parse_hard_cap(void **state)
{
    (void)state;
    /* A configured cap above the hard ceiling is clamped to it. */
    size_t n = CERTD_INPUT_MAX_HARD + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    struct certd_err err = { 0 };
    X509_REQ *out = NULL;
    assert_int_equal(csr_parse(NULL, NULL, big, n, SIZE_MAX, &out, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_INPUT_TOO_LARGE);
    /* The default cap (max_input 0) applies too. */
    err = (struct certd_err){ 0 };
    assert_int_equal(csr_parse(NULL, NULL, big, CERTD_INPUT_MAX_DEFAULT + 1, 0, &out, &err),
                     -E2BIG);
    assert_int_equal(err.code, CERTD_E_INPUT_TOO_LARGE);
    assert_null(out);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_round_trips),
        cmocka_unit_test(test_key_types),
        cmocka_unit_test(test_field_rules),
        cmocka_unit_test(test_san_classify),
        cmocka_unit_test(test_san_rejections),
        cmocka_unit_test(test_san_count),
        cmocka_unit_test(test_key_usage),
        cmocka_unit_test(test_password_never_in_messages),
        cmocka_unit_test(test_from_cert),
        cmocka_unit_test(test_check_request),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_hard_cap),
    };
    return cmocka_run_group_tests(tests, fixture_keys_setup, fixture_keys_teardown);
}
