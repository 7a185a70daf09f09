/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509/inspect: every field of the fixtures against the values gen-fixtures put there; RFC 4514
 * strings against what `openssl x509 -noout -subject -nameopt RFC2253` prints (as literals:
 * tests run no programs); digests recomputed here with plain OpenSSL; edge cases (NUL bytes,
 * bad SANs, unknown and too many EKUs, repeated extensions) on certificates built in the test.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "testutil.h"
#include "util/limits.h"
#include "x509/inspect.h"

static struct cert_info *inspect_fixture(const char *name)
{
    X509 *x = fixture_cert(name);
    struct cert_info *info = NULL;
    struct certd_err err = { 0 };
    int r = cert_inspect(NULL, NULL, x, &info, &err);
    if (r != 0) {
        fail_msg("%s: %d %s", name, r, err.msg);
    }
    X509_free(x);
    return info;
}

static void assert_list(const struct str_list *l, const char *const *want, size_t n)
{
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l->v[i], want[i]);
    }
}

/* Seconds since the epoch of an ASN1_TIME, computed with ASN1_TIME_diff (independent of us). */
static int64_t ref_unix(const ASN1_TIME *t)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, epoch, t), 1);
    ASN1_TIME_free(epoch);
    return (int64_t)days * 86400 + secs;
}

static void test_server_ec(void **state)
{
    (void)state;
    struct cert_info *info = inspect_fixture("server-ec.pem");
    X509 *x = fixture_cert("server-ec.pem");

    /* Subject: attributes and the RFC 4514 string `openssl ... -nameopt RFC2253` prints. */
    assert_string_equal(info->subject.common_name, "server.example.com");
    assert_string_equal(info->subject.organization, "Example, Inc.");
    assert_string_equal(info->subject.organizational_unit, "#ops+dev ");
    assert_string_equal(info->subject.locality, "Austin");
    assert_string_equal(info->subject.state, "Texas");
    assert_string_equal(info->subject.country, "US");
    assert_string_equal(info->subject.email, "admin@example.com");
    assert_string_equal(info->subject.rfc4514,
                        "emailAddress=admin@example.com,CN=server.example.com,"
                        "OU=\\#ops\\+dev\\ ,O=Example\\, Inc.,L=Austin,ST=Texas,C=US");
    assert_string_equal(info->issuer.common_name, "certd test intermediate");
    assert_null(info->issuer.organization);
    assert_null(info->issuer.email);
    assert_string_equal(info->issuer.rfc4514, "CN=certd test intermediate");

    assert_string_equal(info->serial_hex, "1234567890ABCDEF");
    assert_int_equal(info->version, 3);
    assert_string_equal(info->signature_alg, "ecdsa-with-SHA256");
    assert_string_equal(info->key_alg, "EC");
    assert_int_equal(info->key_bits, 256);
    assert_string_equal(info->key_curve, "P-256");
    assert_true(info->not_before == ref_unix(X509_get0_notBefore(x)));
    assert_true(info->not_after == ref_unix(X509_get0_notAfter(x)));
    /* gen-fixtures: valid from yesterday for 365 days. */
    assert_true(info->not_after - info->not_before == 366 * 86400);

    assert_true(info->has_key_usage);
    assert_int_equal(info->key_usage, CERT_KU_DIGITAL_SIGNATURE);
    assert_true(info->has_eku);
    assert_int_equal(info->eku, CERT_EKU_SERVER_AUTH);
    static const char *const eku[] = { "serverAuth" };
    assert_list(&info->eku_names, eku, 1);
    assert_true(info->has_basic_constraints);
    assert_false(info->is_ca);
    assert_int_equal(info->path_len, -1);

    static const char *const dns[] = { "server.example.com", "www.example.com" };
    static const char *const ip[] = { "192.0.2.10", "2001:db8::1" };
    static const char *const email[] = { "admin@example.com" };
    static const char *const uri[] = { "https://server.example.com/" };
    assert_list(&info->san_dns, dns, 2);
    assert_list(&info->san_ip, ip, 2);
    assert_list(&info->san_email, email, 1);
    assert_list(&info->san_uri, uri, 1);
    assert_false(info->san_truncated);

    /* Fingerprint: X509_digest here, formatted by hand. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
    char fp[96] = "";
    for (unsigned int i = 0; i < n; i++) {
        char two[4];
        (void)snprintf(two, sizeof(two), i ? ":%02X" : "%02X", md[i]);
        memcpy(fp + strlen(fp), two, strlen(two) + 1);
    }
    assert_string_equal(info->fingerprint_sha256, fp);

    /* Pin: SHA-256 of the DER SubjectPublicKeyInfo, base64, "sha256//" prefix. */
    unsigned char *spki = NULL;
    int len = i2d_PUBKEY(X509_get0_pubkey(x), &spki);
    assert_true(len > 0);
    assert_int_equal(EVP_Digest(spki, (size_t)len, md, &n, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    unsigned char b64[64];
    assert_int_equal(EVP_EncodeBlock(b64, md, 32), 44);
    char pin[80];
    (void)snprintf(pin, sizeof(pin), "sha256//%s", (const char *)b64);
    assert_string_equal(info->spki_pin, pin);

    assert_false(info->is_self_signed);
    X509_free(x);
    cert_info_free(info);
}

static void test_other_fixtures(void **state)
{
    (void)state;
    struct cert_info *info;

    /* Two EKUs, both kept (the reference drops EKUs); RSA key. */
    info = inspect_fixture("server-rsa.pem");
    assert_int_equal(info->eku, CERT_EKU_SERVER_AUTH | CERT_EKU_CLIENT_AUTH);
    static const char *const two[] = { "serverAuth", "clientAuth" };
    assert_list(&info->eku_names, two, 2);
    assert_string_equal(info->key_alg, "RSA");
    assert_int_equal(info->key_bits, 2048);
    assert_null(info->key_curve);
    assert_int_equal(info->key_usage, CERT_KU_DIGITAL_SIGNATURE | CERT_KU_KEY_ENCIPHERMENT);
    assert_string_equal(info->signature_alg, "ecdsa-with-SHA256"); /* signed by the EC CA */
    assert_string_equal(info->subject.rfc4514, "CN=rsa.example.com");
    cert_info_free(info);

    /* An intermediate CA: pathlen 0. */
    info = inspect_fixture("int-ca.pem");
    assert_true(info->has_basic_constraints);
    assert_true(info->is_ca);
    assert_int_equal(info->path_len, 0);
    assert_int_equal(info->key_usage, CERT_KU_KEY_CERT_SIGN | CERT_KU_CRL_SIGN);
    assert_false(info->has_eku);
    assert_int_equal(info->eku_names.n, 0);
    assert_false(info->is_self_signed);
    assert_string_equal(info->issuer.rfc4514, "O=certd tests,CN=certd test root");
    cert_info_free(info);

    /* The root: CA without pathlen, self-signed; DER order CN, O gives "O=...,CN=...". */
    info = inspect_fixture("root-ca.pem");
    assert_true(info->is_ca);
    assert_int_equal(info->path_len, -1);
    assert_true(info->is_self_signed);
    assert_string_equal(info->subject.rfc4514, "O=certd tests,CN=certd test root");
    assert_string_equal(info->subject.organization, "certd tests");
    cert_info_free(info);

    info = inspect_fixture("selfsigned.pem");
    assert_true(info->is_self_signed);
    assert_false(info->is_ca);
    cert_info_free(info);

    /* notBefore 1965-01-01T00:00:00Z. */
    info = inspect_fixture("before1970.pem");
    assert_true(info->not_before == -157766400);
    assert_true(info->not_before < 0);
    cert_info_free(info);

    info = inspect_fixture("expired.pem");
    assert_true(info->not_before == 946684800); /* 2000-01-01 */
    assert_true(info->not_after == 978307200);  /* 2001-01-01 */
    cert_info_free(info);

    info = inspect_fixture("client-ec384.pem");
    assert_string_equal(info->signature_alg, "ecdsa-with-SHA384");
    assert_string_equal(info->key_curve, "P-384");
    assert_int_equal(info->key_bits, 384);
    assert_int_equal(info->eku, CERT_EKU_CLIENT_AUTH);
    assert_int_equal(info->san_dns.n, 0);
    cert_info_free(info);

    info = inspect_fixture("ed25519.pem");
    assert_string_equal(info->key_alg, "ED25519");
    assert_null(info->key_curve);
    assert_string_equal(info->signature_alg, "ecdsa-with-SHA256");
    cert_info_free(info);

    info = inspect_fixture("secp256k1.pem");
    assert_string_equal(info->key_curve, "secp256k1");
    assert_false(info->has_key_usage);
    assert_false(info->has_eku);
    cert_info_free(info);

    info = inspect_fixture("codesign-only.pem");
    assert_int_equal(info->eku, CERT_EKU_CODE_SIGNING);
    static const char *const cs[] = { "codeSigning" };
    assert_list(&info->eku_names, cs, 1);
    cert_info_free(info);
}

/* --- certificates built here ----------------------------------------------------------- */

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

/* A v3 certificate for `subject` (issuer = subject) with key `key`, signed by `signer`. */
static X509 *make_cert(X509_NAME *subject, EVP_PKEY *key, EVP_PKEY *signer)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 42), 1);
    assert_int_equal(X509_set_subject_name(x, subject), 1);
    assert_int_equal(X509_set_issuer_name(x, subject), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    (void)signer;
    return x;
}

static void sign(X509 *x, EVP_PKEY *signer)
{
    assert_true(X509_sign(x, signer, EVP_sha256()) > 0);
}

static X509_NAME *cn_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    return n;
}

static void add_ext(X509 *x, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, NULL, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

static void expect_bad(X509 *x, const char *word)
{
    struct cert_info *info = (struct cert_info *)&word;
    struct certd_err err = { 0 };
    assert_int_equal(cert_inspect(NULL, NULL, x, &info, &err), -EBADMSG);
    assert_int_equal(err.code, CERTD_E_CERT_BAD);
    if (!strstr(err.msg, word)) {
        fail_msg("\"%s\" lacks \"%s\"", err.msg, word);
    }
    /* Nothing returned on failure. */
    assert_ptr_equal(info, (struct cert_info *)&word);
}

static void test_self_signed_needs_signature(void **state)
{
    (void)state;
    EVP_PKEY *a = ec_key(), *b = ec_key();
    X509_NAME *n = cn_name("same name");
    X509 *x = make_cert(n, a, b);
    /* Subject == issuer, but signed by another key: not self-signed. */
    sign(x, b);
    struct cert_info *info = NULL;
    assert_int_equal(cert_inspect(NULL, NULL, x, &info, NULL), 0);
    assert_false(info->is_self_signed);
    assert_false(info->has_basic_constraints);
    assert_int_equal(info->path_len, -1);
    assert_string_equal(info->serial_hex, "2A");
    info = cert_info_free(info);
    /* Signed by its own key: self-signed. */
    sign(x, a);
    assert_int_equal(cert_inspect(NULL, NULL, x, &info, NULL), 0);
    assert_true(info->is_self_signed);
    cert_info_free(info);
    X509_free(x);
    X509_NAME_free(n);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void test_eku_unknown_and_limits(void **state)
{
    (void)state;
    EVP_PKEY *k = ec_key();
    X509_NAME *n = cn_name("eku.example.com");
    X509 *x = make_cert(n, k, k);
    /* ipsecIKE is known to OpenSSL, not named by us: both unknowns come out dotted. */
    add_ext(x, NID_ext_key_usage,
            "serverAuth,1.3.6.1.4.1.99999.1,1.3.6.1.5.5.7.3.17,OCSPSigning,timeStamping,"
            "emailProtection,anyExtendedKeyUsage");
    add_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:3");
    add_ext(x, NID_key_usage, "keyCertSign,encipherOnly,decipherOnly,nonRepudiation");
    sign(x, k);
    struct cert_info *info = NULL;
    assert_int_equal(cert_inspect(NULL, NULL, x, &info, NULL), 0);
    static const char *const want[] = {
        "serverAuth",   "1.3.6.1.4.1.99999.1", "1.3.6.1.5.5.7.3.17",  "OCSPSigning",
        "timeStamping", "emailProtection",     "anyExtendedKeyUsage",
    };
    assert_list(&info->eku_names, want, ELEMENTSOF(want));
    assert_int_equal(info->eku, CERT_EKU_SERVER_AUTH | CERT_EKU_OCSP_SIGNING |
                                    CERT_EKU_TIME_STAMPING | CERT_EKU_EMAIL_PROTECTION |
                                    CERT_EKU_ANY);
    assert_true(info->is_ca);
    assert_int_equal(info->path_len, 3);
    assert_int_equal(info->key_usage, CERT_KU_KEY_CERT_SIGN | CERT_KU_ENCIPHER_ONLY |
                                          CERT_KU_DECIPHER_ONLY | CERT_KU_NON_REPUDIATION);
    cert_info_free(info);
    X509_free(x);

    /* CERTD_EKUS_MAX EKUs are listed; one more is refused rather than silently dropped. */
    for (unsigned extra = 0; extra < 2; extra++) {
        char list[4096] = "";
        for (unsigned i = 0; i < CERTD_EKUS_MAX + extra; i++) {
            char one[64];
            (void)snprintf(one, sizeof(one), "%s1.3.6.1.4.1.99999.%u", i ? "," : "", i);
            memcpy(list + strlen(list), one, strlen(one) + 1);
        }
        x = make_cert(n, k, k);
        add_ext(x, NID_ext_key_usage, list);
        sign(x, k);
        if (extra == 0) {
            assert_int_equal(cert_inspect(NULL, NULL, x, &info, NULL), 0);
            assert_int_equal(info->eku_names.n, CERTD_EKUS_MAX);
            assert_int_equal(info->eku, 0);
            info = cert_info_free(info);
        } else {
            expect_bad(x, "extended key usages");
        }
        X509_free(x);
    }
    X509_NAME_free(n);
    EVP_PKEY_free(k);
}

static void add_sans(X509 *x, int type, const char *value, size_t len, size_t count)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    assert_non_null(gens);
    for (size_t i = 0; i < count; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_STRING *s = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
        assert_non_null(g);
        assert_non_null(s);
        assert_int_equal(ASN1_STRING_set(s, value, (int)len), 1);
        GENERAL_NAME_set0_value(g, type, s);
        assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
    }
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND), 1);
    GENERAL_NAMES_free(gens);
}

static void test_bad_fields(void **state)
{
    (void)state;
    EVP_PKEY *k = ec_key();
    X509_NAME *n = cn_name("bad.example.com");
    X509 *x;

    /* A DNS SAN with a NUL inside would read as another name in C. */
    x = make_cert(n, k, k);
    add_sans(x, GEN_DNS, "good.com\0evil.com", 17, 1);
    sign(x, k);
    expect_bad(x, "DNS name");
    X509_free(x);

    x = make_cert(n, k, k);
    add_sans(x, GEN_EMAIL, "a@b\0c", 5, 1);
    sign(x, k);
    expect_bad(x, "email");
    X509_free(x);

    x = make_cert(n, k, k);
    add_sans(x, GEN_URI, "https://a\0b", 11, 1);
    sign(x, k);
    expect_bad(x, "URI");
    X509_free(x);

    /* An iPAddress of 5 octets is neither IPv4 nor IPv6. */
    x = make_cert(n, k, k);
    add_sans(x, GEN_IPADD, "\x01\x02\x03\x04\x05", 5, 1);
    sign(x, k);
    expect_bad(x, "IP address");
    X509_free(x);

    /* Two SAN extensions (RFC 5280 §4.2: at most one of each). */
    x = make_cert(n, k, k);
    add_sans(x, GEN_DNS, "a.com", 5, 1);
    add_sans(x, GEN_DNS, "b.com", 5, 1);
    sign(x, k);
    expect_bad(x, "repeated");
    X509_free(x);

    /* A CN with a NUL byte. */
    X509_NAME *nul = X509_NAME_new();
    assert_non_null(nul);
    assert_int_equal(X509_NAME_add_entry_by_txt(nul, "CN", V_ASN1_UTF8STRING,
                                                (const unsigned char *)"a\0b", 3, -1, 0),
                     1);
    x = make_cert(nul, k, k);
    sign(x, k);
    expect_bad(x, "subject CN");
    X509_free(x);
    /* The RFC 4514 renderer itself escapes the NUL. */
    char *s = NULL;
    assert_int_equal(name_to_rfc4514(nul, &s), 0);
    assert_string_equal(s, "CN=a\\00b");
    free(s);
    X509_NAME_free(nul);

    /* CERTD_SANS_MAX SANs listed in full; more are cut and flagged. */
    for (unsigned extra = 0; extra < 2; extra++) {
        x = make_cert(n, k, k);
        add_sans(x, GEN_DNS, "many.example.com", 16, CERTD_SANS_MAX + extra);
        sign(x, k);
        struct cert_info *info = NULL;
        assert_int_equal(cert_inspect(NULL, NULL, x, &info, NULL), 0);
        assert_int_equal(info->san_dns.n, CERTD_SANS_MAX);
        assert_int_equal(info->san_truncated, extra == 1);
        cert_info_free(info);
        X509_free(x);
    }

    X509_NAME_free(n);
    EVP_PKEY_free(k);
}

static void add_entry(X509_NAME *n, const char *field, int type, const char *v, int len, int set)
{
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, field, type, (const unsigned char *)v, len, -1, set), 1);
}

/* Expected strings are what `openssl x509 -noout -subject -nameopt RFC2253` prints. */
static void test_rfc4514(void **state)
{
    (void)state;
    char *s = NULL;
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);

    /* The empty name. */
    assert_int_equal(name_to_rfc4514(n, &s), 0);
    assert_string_equal(s, "");
    free(s);

    add_entry(n, "DC", MBSTRING_ASC, "com", -1, 0);
    add_entry(n, "DC", MBSTRING_ASC, "example", -1, 0);
    add_entry(n, "street", MBSTRING_ASC, "1 Main St; Suite <2>", -1, 0);
    /* A multi-valued RDN: CN + UID; printed in reverse like every AVA. */
    add_entry(n, "CN", MBSTRING_UTF8, " Jos\xc3\xa9 \"J\" = \\ ", -1, 0);
    add_entry(n, "UID", MBSTRING_ASC, "jose", -1, -1);
    /* A type without a name: dotted, its value as '#' and the hex of its DER (§2.4). */
    add_entry(n, "1.2.3.4", MBSTRING_ASC, "x#y", -1, 0);
    /* A named type outside RFC 4514's table; a leading '#' and a control character. */
    add_entry(n, "title", MBSTRING_ASC, "#1\x01", -1, 0);
    assert_int_equal(name_to_rfc4514(n, &s), 0);
    /* OpenSSL: title=\#1\01,1.2.3.4=#0C03782379,UID=jose+CN=\ Jos\C3\A9 \"J\" = \\\ ,
     * street=1 Main St\; Suite \<2\>,DC=example,DC=com (we keep UTF-8 and say STREET). */
    assert_string_equal(s, "title=\\#1\\01,1.2.3.4=#0C03782379,"
                           "UID=jose+CN=\\ Jos\xc3\xa9 \\\"J\\\" = \\\\\\ ,"
                           "STREET=1 Main St\\; Suite \\<2\\>,DC=example,DC=com");
    free(s);
    X509_NAME_free(n);

    /* CERTD_DN_STR_MAX bounds the string: too long is an error, never a truncation. */
    n = X509_NAME_new();
    assert_non_null(n);
    char cn[61];
    memset(cn, 'a', 60);
    cn[60] = '\0';
    for (size_t i = 0; i < CERTD_DN_STR_MAX / 64 + 1; i++) {
        add_entry(n, "CN", MBSTRING_ASC, cn, -1, 0);
    }
    s = NULL;
    assert_int_equal(name_to_rfc4514(n, &s), -EBADMSG);
    assert_null(s);
    X509_NAME_free(n);
}

/* The one-line form OpenBMC shows Subject and Issuer in: certificate order, same escapes. */
static void test_oneline(void **state)
{
    (void)state;
    char *s = NULL;
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);

    assert_int_equal(name_to_oneline(n, &s), 0);
    assert_string_equal(s, "");
    free(s);

    add_entry(n, "C", MBSTRING_ASC, "US", -1, 0);
    add_entry(n, "O", MBSTRING_UTF8, "Acme, M\xc3\xbcller+Co", -1, 0);
    /* A multi-valued RDN: '+' inside it, in its own order. */
    add_entry(n, "CN", MBSTRING_ASC, "host", -1, 0);
    add_entry(n, "UID", MBSTRING_ASC, "a\nb", -1, -1);
    assert_int_equal(name_to_oneline(n, &s), 0);
    assert_string_equal(s, "C=US,O=Acme\\, M\xc3\xbcller\\+Co,CN=host+UID=a\\0Ab");
    free(s);
    /* The same attributes reversed (the multi-valued RDN's too), in RFC 4514's form. */
    assert_int_equal(name_to_rfc4514(n, &s), 0);
    assert_string_equal(s, "UID=a\\0Ab+CN=host,O=Acme\\, M\xc3\xbcller\\+Co,C=US");
    free(s);
    X509_NAME_free(n);

    /* Bounded as name_to_rfc4514. */
    n = X509_NAME_new();
    assert_non_null(n);
    char cn[61];
    memset(cn, 'a', 60);
    cn[60] = '\0';
    for (size_t i = 0; i < CERTD_DN_STR_MAX / 64 + 1; i++) {
        add_entry(n, "CN", MBSTRING_ASC, cn, -1, 0);
    }
    s = NULL;
    assert_int_equal(name_to_oneline(n, &s), -EBADMSG);
    assert_null(s);
    X509_NAME_free(n);
}

/* --- hostile strings: nothing reaches a terminal, JSON or D-Bus raw ----------------------- */

struct san {
    int type;
    const char *v;
    size_t len;
};

static void add_san_list(X509 *x, const struct san *list, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    assert_non_null(gens);
    for (size_t i = 0; i < n; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        assert_non_null(g);
        assert_non_null(s);
        assert_int_equal(ASN1_STRING_set(s, list[i].v, (int)list[i].len), 1);
        GENERAL_NAME_set0_value(g, list[i].type, s);
        assert_true(sk_GENERAL_NAME_push(gens, g) > 0);
    }
    assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND), 1);
    GENERAL_NAMES_free(gens);
}

#define SAN(type, lit)             \
    {                              \
        type, lit, sizeof(lit) - 1 \
    }

static void test_hostile_sans(void **state)
{
    (void)state;
    /* Each goes second, after a good DNS name: the message names the position. */
    static const struct {
        struct san san;
        const char *what;
    } bad[] = {
        { SAN(GEN_DNS, "a\x1b[31m.example.com"), "DNS name" },
        { SAN(GEN_DNS, "a\r.example.com"), "DNS name" },
        { SAN(GEN_DNS, "a\n.example.com"), "DNS name" },
        { SAN(GEN_DNS, "a\x80.example.com"), "DNS name" },
        { SAN(GEN_DNS, "caf\xe9.example.com"), "DNS name" },
        { SAN(GEN_DNS, "caf\xc3\xa9.example.com"), "DNS name" },
        { SAN(GEN_DNS, "a b.example.com"), "DNS name" },
        { SAN(GEN_DNS, "a\x7f.example.com"), "DNS name" },
        { SAN(GEN_DNS, "a\t.example.com"), "DNS name" },
        { SAN(GEN_EMAIL, "admin@example.com\r\nBcc: x@y"), "email address" },
        { SAN(GEN_EMAIL, "\xe9@example.com"), "email address" },
        { SAN(GEN_URI, "https://example.com/\x1b]0;x\x07"), "URI" },
        { SAN(GEN_URI, "https://example.com/a b"), "URI" },
        { SAN(GEN_URI, "https://example.com/\xff"), "URI" },
    };
    EVP_PKEY *k = ec_key();
    X509_NAME *n = cn_name("san.example.com");
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        const struct san list[] = { SAN(GEN_DNS, "good.example.com"), bad[i].san };
        X509 *x = make_cert(n, k, k);
        add_san_list(x, list, ELEMENTSOF(list));
        sign(x, k);
        struct cert_info *info = (struct cert_info *)&k;
        struct certd_err err = { 0 };
        assert_int_equal(cert_inspect(NULL, NULL, x, &info, &err), -EBADMSG);
        assert_int_equal(err.code, CERTD_E_CERT_BAD);
        assert_ptr_equal(info, (struct cert_info *)&k);
        if (!strstr(err.msg, "alternative name 2") || !strstr(err.msg, "non-ASCII") ||
            !strstr(err.msg, bad[i].what)) {
            fail_msg("case %zu: \"%s\"", i, err.msg);
        }
        X509_free(x);
    }

    /* Every printable ASCII byte but the space is fine, as are A-labels. */
    char all[0x7f - 0x21 + 1];
    for (size_t i = 0; i < sizeof(all) - 1; i++) {
        all[i] = (char)(0x21 + i);
    }
    all[sizeof(all) - 1] = '\0';
    const struct san good[] = {
        { GEN_URI, all, sizeof(all) - 1 },
        SAN(GEN_DNS, "xn--caf-dma.example.com"),
    };
    X509 *x = make_cert(n, k, k);
    add_san_list(x, good, ELEMENTSOF(good));
    sign(x, k);
    struct cert_info *info = NULL;
    assert_int_equal(cert_inspect(NULL, NULL, x, &info, NULL), 0);
    assert_list(&info->san_uri, (const char *const[]){ all }, 1);
    assert_list(&info->san_dns, (const char *const[]){ "xn--caf-dma.example.com" }, 1);
    cert_info_free(info);
    X509_free(x);
    X509_NAME_free(n);
    EVP_PKEY_free(k);
}

/* A name with one attribute of ASN.1 type `type` holding the raw bytes v (no conversion). */
static X509_NAME *raw_name(const char *field, int type, const char *v, int len)
{
    X509_NAME *n = X509_NAME_new();
    assert_non_null(n);
    add_entry(n, "O", MBSTRING_ASC, "certd tests", -1, 0);
    add_entry(n, field, type, v, len, 0);
    return n;
}

static void test_hostile_names(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        int type;
        const char *v;
        int len;
        const char *word; /* in the message */
    } bad[] = {
        /* C0, DEL and C1 controls, however they are encoded. */
        { "CN", V_ASN1_UTF8STRING, "evil\x1b]0;pwned\x07", -1, "subject CN holds control" },
        { "CN", V_ASN1_UTF8STRING, "a\rb", -1, "subject CN holds control" },
        { "CN", V_ASN1_UTF8STRING, "a\nb", -1, "subject CN holds control" },
        { "CN", V_ASN1_UTF8STRING, "a\x7f", -1, "subject CN holds control" },
        { "CN", V_ASN1_UTF8STRING, "a\xc2\x85", -1, "subject CN holds control" },
        { "OU", V_ASN1_BMPSTRING, "\0a\0\x07", 4, "subject OU holds control" },
        { "L", V_ASN1_BMPSTRING, "\0a\0\x9b", 4, "subject L holds control" },
        { "ST", V_ASN1_IA5STRING, "a\x85", -1, "subject ST holds control" }, /* Latin-1 NEL */
        { "CN", V_ASN1_T61STRING, "a\x1b", -1, "subject CN holds control" },
        { "emailAddress", V_ASN1_IA5STRING, "a@b\n", -1, "subject emailAddress" },
        /* Attributes without a field of their own: rfc4514 shows them too. */
        { "title", V_ASN1_UTF8STRING, "\x1b[2J", -1, "subject title holds control" },
        { "serialNumber", V_ASN1_PRINTABLESTRING, "1\r2", -1, "subject serialNumber" },
    };
    EVP_PKEY *k = ec_key();
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        X509_NAME *n = raw_name(bad[i].field, bad[i].type, bad[i].v, bad[i].len);
        X509 *x = make_cert(n, k, k);
        sign(x, k);
        struct cert_info *info = (struct cert_info *)&k;
        struct certd_err err = { 0 };
        assert_int_equal(cert_inspect(NULL, NULL, x, &info, &err), -EBADMSG);
        assert_int_equal(err.code, CERTD_E_CERT_BAD);
        assert_ptr_equal(info, (struct cert_info *)&k);
        if (!strstr(err.msg, bad[i].word)) {
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.msg, bad[i].word);
        }
        /* The RFC 4514 renderer alone never lets a raw control byte or invalid UTF-8 out. */
        char *s = NULL;
        int r = name_to_rfc4514(n, &s);
        if (r == 0) {
            for (const char *c = s; *c; c++) {
                assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c != 0x7f);
            }
            assert_null(strstr(s, "\xc2\x85"));
            assert_null(strstr(s, "\xc2\x9b"));
            free(s);
        } else {
            assert_int_equal(r, -EBADMSG);
            assert_null(s);
        }
        X509_free(x);
        X509_NAME_free(n);
    }

    /*
     * Not UTF-8: a stray byte, an overlong '/', a surrogate, past U+10FFFF. OpenSSL 3.0 refuses
     * such names in certificates itself (X509_NAME canonicalisation, in d2i too), so only the
     * renderer is fed them here.
     */
    static const struct {
        int type;
        const char *v;
        int len;
    } not_utf8[] = {
        { V_ASN1_UTF8STRING, "a\xff", 2 },        { V_ASN1_UTF8STRING, "\xc0\xaf", 2 },
        { V_ASN1_UTF8STRING, "\xed\xa0\x80", 3 }, { V_ASN1_UTF8STRING, "\xf4\x90\x80\x80", 4 },
        { V_ASN1_BMPSTRING, "\xd8\x00", 2 },      { V_ASN1_UNIVERSALSTRING, "\0\x11\0\0", 4 },
    };
    for (size_t i = 0; i < ELEMENTSOF(not_utf8); i++) {
        X509_NAME *n = raw_name("CN", not_utf8[i].type, not_utf8[i].v, not_utf8[i].len);
        char *s = NULL;
        assert_int_equal(name_to_rfc4514(n, &s), -EBADMSG);
        assert_null(s);
        X509_NAME_free(n);
    }

    /* The issuer is judged the same way. */
    X509_NAME *good = cn_name("fine"), *evil = raw_name("CN", V_ASN1_UTF8STRING, "x\ny", 3);
    X509 *x = make_cert(good, k, k);
    assert_int_equal(X509_set_issuer_name(x, evil), 1);
    sign(x, k);
    expect_bad(x, "issuer CN holds control");
    X509_free(x);
    X509_NAME_free(good);
    X509_NAME_free(evil);

    /* Controls are escaped per UTF-8 byte: ESC, and NEL (U+0085, C2 85). */
    X509_NAME *n = raw_name("CN", V_ASN1_UTF8STRING, "\x1b[31m", 5);
    char *s = NULL;
    assert_int_equal(name_to_rfc4514(n, &s), 0);
    assert_string_equal(s, "CN=\\1B[31m,O=certd tests");
    free(s);
    X509_NAME_free(n);
    n = raw_name("CN", V_ASN1_BMPSTRING, "\0a\0\x85\0b", 6);
    assert_int_equal(name_to_rfc4514(n, &s), 0);
    assert_string_equal(s, "CN=a\\C2\\85b,O=certd tests");
    free(s);
    X509_NAME_free(n);

    EVP_PKEY_free(k);
}

static void test_unicode_names(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        int type;
        const char *v;
        int len;
        const char *utf8;    /* the field's value */
        const char *rfc4514; /* the whole name */
    } good[] = {
        /* Valid UTF-8 survives intact, 2-, 3- and 4-byte characters alike. */
        { "CN", V_ASN1_UTF8STRING,
          "Zo\xc3\xab \xc3\x9cn\xc3\xaf"
          "code",
          -1,
          "Zo\xc3\xab \xc3\x9cn\xc3\xaf"
          "code",
          "CN=Zo\xc3\xab \xc3\x9cn\xc3\xaf"
          "code,O=certd tests" },
        { "CN", MBSTRING_UTF8, "\xe2\x82\xac \xf0\x9f\x94\x92", -1, "\xe2\x82\xac \xf0\x9f\x94\x92",
          "CN=\xe2\x82\xac \xf0\x9f\x94\x92,O=certd tests" },
        /* A T61String byte is Latin-1 to OpenSSL: 0xe9 becomes U+00E9 (C3 A9). */
        { "CN", V_ASN1_T61STRING, "Caf\xe9", 4, "Caf\xc3\xa9", "CN=Caf\xc3\xa9,O=certd tests" },
        /* BMPString U+00EB U+00DC. */
        { "CN", V_ASN1_BMPSTRING, "\0Z\0o\0\xeb\0\xdc", 8, "Zo\xc3\xab\xc3\x9c",
          "CN=Zo\xc3\xab\xc3\x9c,O=certd tests" },
        /* The first non-control character after C1: NBSP (U+00A0). */
        { "CN", V_ASN1_BMPSTRING, "\0a\0\xa0", 4, "a\xc2\xa0", "CN=a\xc2\xa0,O=certd tests" },
    };
    EVP_PKEY *k = ec_key();
    for (size_t i = 0; i < ELEMENTSOF(good); i++) {
        X509_NAME *n = raw_name(good[i].field, good[i].type, good[i].v, good[i].len);
        X509 *x = make_cert(n, k, k);
        sign(x, k);
        struct cert_info *info = NULL;
        struct certd_err err = { 0 };
        if (cert_inspect(NULL, NULL, x, &info, &err) != 0) {
            fail_msg("case %zu: %s", i, err.msg);
        }
        assert_string_equal(info->subject.common_name, good[i].utf8);
        assert_string_equal(info->subject.rfc4514, good[i].rfc4514);
        assert_string_equal(info->issuer.common_name, good[i].utf8);
        cert_info_free(info);
        X509_free(x);
        X509_NAME_free(n);
    }
    EVP_PKEY_free(k);
}

static void test_iso8601(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *s;
    } cases[] = {
        { 0, "1970-01-01T00:00:00Z" },
        { -1, "1969-12-31T23:59:59Z" },
        { -86400, "1969-12-31T00:00:00Z" },
        { -86401, "1969-12-30T23:59:59Z" },
        { -157766400, "1965-01-01T00:00:00Z" },
        { -2203891200, "1900-03-01T00:00:00Z" },
        { -11670998400, "1600-02-29T00:00:00Z" },
        { -62135596800, "0001-01-01T00:00:00Z" },
        { 951782400, "2000-02-29T00:00:00Z" },
        { 2147483647, "2038-01-19T03:14:07Z" },
        { 2147483648, "2038-01-19T03:14:08Z" },
        { 4102444800, "2100-01-01T00:00:00Z" },
        { 4107456000, "2100-02-28T00:00:00Z" },
        { 4107542400, "2100-03-01T00:00:00Z" }, /* 2100 is not a leap year */
        { 253402300799, "9999-12-31T23:59:59Z" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        char buf[32];
        unix_to_iso8601(cases[i].t, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].s);
        /* and back */
        int64_t t = 0;
        assert_int_equal(iso8601_to_unix(cases[i].s, &t), 0);
        assert_int_equal(t, cases[i].t);
    }
    int64_t t = 0;
    assert_int_equal(iso8601_to_unix("0000-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, INT64_C(-62167219200));
    assert_int_equal(iso8601_to_unix("2024-02-29T23:59:59Z", &t), 0);
    assert_int_equal(t, INT64_C(1709251199));
    /* Extreme values do not overflow the buffer. */
    char buf[32];
    unix_to_iso8601(INT64_MIN, buf, sizeof(buf));
    assert_true(strlen(buf) < sizeof(buf));
    unix_to_iso8601(INT64_MAX, buf, sizeof(buf));
    assert_true(strlen(buf) < sizeof(buf));
}

/* iso8601_to_unix takes the one form unix_to_iso8601 writes, and real dates only. */
static void test_iso8601_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2026-11-22T18:00:00",  /* no zone */
        "2026-11-22T18:00:00z", /* lower case */
        "2026-11-22t18:00:00Z",
        "2026-11-22 18:00:00Z",   /* blank for T */
        "2026-11-22T18:00:00.5Z", /* fraction */
        "2026-11-22T18:00:00+00:00",
        "2026-11-22T18:00:00Z ", /* trailing byte */
        " 2026-11-22T18:00:00Z",
        "+026-11-22T18:00:00Z", /* sign */
        "2026-1-22T18:00:00Z",  /* short field */
        "20261-11-22T18:00:00Z",
        "2026-11-2aT18:00:00Z",
        "2026-11-22T18-00:00Z", /* wrong separator */
        "2026-00-01T00:00:00Z", /* month 0 */
        "2026-13-01T00:00:00Z",
        "2026-11-00T00:00:00Z", /* day 0 */
        "2026-11-32T00:00:00Z",
        "2026-02-29T00:00:00Z", /* not a leap year */
        "2100-02-29T00:00:00Z", /* nor is 2100 */
        "2026-04-31T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T18:60:00Z",
        "2026-11-22T18:00:60Z", /* no leap seconds */
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        int64_t t = 42;
        if (iso8601_to_unix(bad[i], &t) != -EINVAL || t != 42) {
            fail_msg("accepted or wrote for \"%s\"", bad[i]);
        }
    }
    int64_t t = 0;
    assert_int_equal(iso8601_to_unix(NULL, &t), -EINVAL);
    assert_int_equal(iso8601_to_unix("2026-11-22T18:00:00Z", NULL), -EINVAL);
}

static void test_asn1_time(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int r;
        int64_t t;
    } cases[] = {
        { "19650101000000Z", 0, -157766400 },
        { "650101000000Z", 0, -157766400 }, /* RFC 5280: UTCTime 65 is 1965 */
        { "500101000000Z", 0, -631152000 }, /* UTCTime 50 is 1950 */
        { "491231235959Z", 0, 2524607999 }, /* UTCTime 49 is 2049 */
        { "21000301000000Z", 0, 4107542400 },
        { "20000229120000Z", 0, 951825600 },
        { "20010229000000Z", -EBADMSG, 0 }, /* no 29 February in 2001 */
        { "20001301000000Z", -EBADMSG, 0 },
        { "2000010100000Z", -EBADMSG, 0 },
        { "20000101000000", -EBADMSG, 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        size_t len = strlen(cases[i].s);
        /* Set the raw string, bypassing OpenSSL's own checks, so that we judge it. */
        ASN1_TIME *t = ASN1_STRING_type_new(len == 13 ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME);
        assert_non_null(t);
        assert_int_equal(ASN1_STRING_set(t, cases[i].s, (int)len), 1);
        int64_t v = 7;
        int r = asn1_time_to_unix(t, &v);
        if (r != cases[i].r) {
            fail_msg("%s: %d", cases[i].s, r);
        }
        if (v != (r == 0 ? cases[i].t : 7)) {
            fail_msg("%s: %lld", cases[i].s, (long long)v);
        }
        ASN1_TIME_free(t);
    }
}

static void test_names_and_args(void **state)
{
    (void)state;
    assert_string_equal(key_usage_bit_name(CERT_KU_DIGITAL_SIGNATURE), "digitalSignature");
    assert_string_equal(key_usage_bit_name(CERT_KU_CRL_SIGN), "cRLSign");
    assert_string_equal(key_usage_bit_name(CERT_KU_DECIPHER_ONLY), "decipherOnly");
    assert_null(key_usage_bit_name(1u << 9));
    assert_null(key_usage_bit_name(CERT_KU_DIGITAL_SIGNATURE | CERT_KU_CRL_SIGN));
    assert_string_equal(eku_bit_name(CERT_EKU_SERVER_AUTH), "serverAuth");
    assert_string_equal(eku_bit_name(CERT_EKU_OCSP_SIGNING), "OCSPSigning");
    assert_string_equal(eku_bit_name(CERT_EKU_ANY), "anyExtendedKeyUsage");
    assert_null(eku_bit_name(1u << 7));

    struct cert_info *info = NULL;
    assert_int_equal(cert_inspect(NULL, NULL, NULL, &info, NULL), -EINVAL);
    assert_null(info);
    assert_null(cert_info_free(NULL));
    char *s = NULL;
    assert_int_equal(name_to_rfc4514(NULL, &s), -EINVAL);

    /* With an explicit library context. */
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    assert_non_null(ctx);
    X509 *x = fixture_cert("server-ec.pem");
    assert_int_equal(cert_inspect(ctx, NULL, x, &info, NULL), 0);
    assert_string_equal(info->serial_hex, "1234567890ABCDEF");
    assert_int_equal(strlen(info->fingerprint_sha256), 95);
    cert_info_free(info);
    X509_free(x);
    OSSL_LIB_CTX_free(ctx);
}

/* OpenSSL's cached KeyUsage layout converts to the bits cert_inspect reports, for every bit. */
static void test_key_usage_from_x509_bits(void **state)
{
    (void)state;
    assert_int_equal(key_usage_from_x509_bits(0x80), CERT_KU_DIGITAL_SIGNATURE);
    assert_int_equal(key_usage_from_x509_bits(0x04), CERT_KU_KEY_CERT_SIGN);
    assert_int_equal(key_usage_from_x509_bits(0x02), CERT_KU_CRL_SIGN);
    assert_int_equal(key_usage_from_x509_bits(0x01), CERT_KU_ENCIPHER_ONLY);
    assert_int_equal(key_usage_from_x509_bits(0x8000), CERT_KU_DECIPHER_ONLY);
    assert_int_equal(key_usage_from_x509_bits(0), 0);
    static const char *const names[] = { "server-rsa.pem", "root-ca.pem", "server-ec.pem" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        X509 *x = fixture_cert(names[i]);
        struct cert_info *ci = NULL;
        struct certd_err err = { 0 };
        assert_int_equal(cert_inspect(NULL, NULL, x, &ci, &err), 0);
        assert_true(ci->has_key_usage);
        assert_int_equal(key_usage_from_x509_bits(X509_get_key_usage(x)), ci->key_usage);
        (void)cert_info_free(ci);
        X509_free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_usage_from_x509_bits),
        cmocka_unit_test(test_server_ec),
        cmocka_unit_test(test_other_fixtures),
        cmocka_unit_test(test_self_signed_needs_signature),
        cmocka_unit_test(test_eku_unknown_and_limits),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_rfc4514),
        cmocka_unit_test(test_oneline),
        cmocka_unit_test(test_hostile_sans),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_unicode_names),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_iso8601_rejects),
        cmocka_unit_test(test_asn1_time),
        cmocka_unit_test(test_names_and_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
