/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509/bundle: every accepted shape of upload and every rejection, with errno, detail code and
 * a word of the message; limits at N and N+1; PEM round trips checked against the fixtures.
 * Inputs are fixtures from tests/data/gen-fixtures or built here with plain OpenSSL calls.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "testutil.h"
#include "util/limits.h"
#include "x509/bundle.h"

/* A growable test buffer (tests may abort on allocation failure). */
struct buf {
    uint8_t *p;
    size_t len;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    assert_non_null(b->p);
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_fixture(struct buf *b, const char *name)
{
    size_t n;
    uint8_t *f = fixture_read(name, &n);
    buf_add(b, f, n);
    free(f);
}

/* Wrap DER as PEM with 64-column lines and optional RFC 1421 headers. */
static void buf_pem(struct buf *b, const char *label, const char *headers, const uint8_t *der,
                    size_t len)
{
    char line[128];
    (void)snprintf(line, sizeof(line), "-----BEGIN %s-----\n", label);
    buf_str(b, line);
    if (headers) {
        buf_str(b, headers);
        buf_str(b, "\n");
    }
    for (size_t off = 0; off < len; off += 48) {
        unsigned char enc[80];
        size_t n = len - off < 48 ? len - off : 48;
        int m = EVP_EncodeBlock(enc, der + off, (int)n);
        assert_true(m > 0);
        buf_add(b, enc, (size_t)m);
        buf_str(b, "\n");
    }
    (void)snprintf(line, sizeof(line), "-----END %s-----\n", label);
    buf_str(b, line);
}

/* The DER of the first certificate in fixture NAME. */
static void cert_der(const char *name, struct buf *out)
{
    X509 *x = fixture_cert(name);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    assert_true(n > 0);
    buf_add(out, der, (size_t)n);
    OPENSSL_free(der);
    X509_free(x);
}

/* Replace the first occurrence of `from` with `to` (same or other length). */
static void buf_replace(struct buf *b, const char *from, const char *to)
{
    uint8_t *at = memmem(b->p, b->len, from, strlen(from));
    assert_non_null(at);
    size_t off = (size_t)(at - b->p), fl = strlen(from), tl = strlen(to);
    struct buf n = { 0 };
    buf_add(&n, b->p, off);
    buf_add(&n, to, tl);
    buf_add(&n, b->p + off + fl, b->len - off - fl);
    free(b->p);
    *b = n;
}

/* Builders for synthesized inputs. */
static void mk_der_trailing(struct buf *b)
{
    buf_fixture(b, "server-ec.der");
    buf_add(b, "\0", 1);
}

static void mk_whitespace(struct buf *b)
{
    buf_str(b, " \n\t\r\n  \n");
}

static void mk_empty(struct buf *b)
{
    buf_add(b, "", 0);
}

static void mk_garbage(struct buf *b)
{
    buf_str(b, "hello, this is not a certificate\n");
}

static void mk_binary_garbage(struct buf *b)
{
    static const uint8_t g[] = { 0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0xff };
    buf_add(b, g, sizeof(g));
}

static void mk_cut_mid_base64(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    b->len /= 2;
    b->p[b->len] = '\0';
}

static void mk_no_end(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_replace(b, "-----END CERTIFICATE-----\n", "");
}

static void mk_begin_inside(struct buf *b)
{
    /* A block whose END is missing, followed by a complete one. */
    buf_fixture(b, "server-ec.pem");
    buf_replace(b, "-----END CERTIFICATE-----\n", "");
    buf_fixture(b, "int-ca.pem");
}

static void mk_bad_base64(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    /* Overwrite one character on the second body line with one outside the alphabet. */
    uint8_t *nl = memchr(b->p, '\n', b->len);
    assert_non_null(nl);
    nl = memchr(nl + 1, '\n', b->len - (size_t)(nl + 1 - b->p));
    assert_non_null(nl);
    nl[5] = '*';
}

static void mk_noncanonical_pad(struct buf *b)
{
    /* "QR==" decodes to 'A' but has non-zero pad bits; canonical is "QQ==". */
    buf_str(b, "-----BEGIN CERTIFICATE-----\nQR==\n-----END CERTIFICATE-----\n");
}

static void mk_data_after_pad(struct buf *b)
{
    buf_str(b, "-----BEGIN CERTIFICATE-----\nQQ==QUJD\n-----END CERTIFICATE-----\n");
}

static void mk_empty_body(struct buf *b)
{
    buf_str(b, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
}

static void relabel(struct buf *b, const char *label)
{
    struct buf der = { 0 };
    cert_der("server-ec.pem", &der);
    buf_pem(b, label, NULL, der.p, der.len);
    free(der.p);
}

static void mk_label_public_key(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    relabel(b, "PUBLIC KEY");
}

static void mk_label_csr(struct buf *b)
{
    relabel(b, "CERTIFICATE REQUEST");
}

static void mk_label_trusted(struct buf *b)
{
    relabel(b, "TRUSTED CERTIFICATE");
}

static void mk_label_crl(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    relabel(b, "X509 CRL");
}

static void mk_end_mismatch(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_replace(b, "-----END CERTIFICATE-----", "-----END X509 CRL-----");
}

static void mk_bad_begin(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_replace(b, "-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE");
}

static void mk_bad_label_chars(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_replace(b, "-----BEGIN CERTIFICATE-----", "-----BEGIN CERT\tIFICATE-----");
}

static void mk_enc_pkcs8(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_fixture(b, "server-ec-enc.key");
}

static void mk_proc_type(struct buf *b)
{
    static const uint8_t junk[64] = { 1, 2, 3 };
    buf_fixture(b, "server-ec.pem");
    buf_pem(b, "EC PRIVATE KEY",
            "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n",
            junk, sizeof(junk));
}

static void mk_bad_header(struct buf *b)
{
    static const uint8_t junk[16] = { 1 };
    buf_pem(b, "CERTIFICATE", "Proc-Type: 4,MIC-CLEAR\nnot a header", junk, sizeof(junk));
}

static void mk_headers_no_blank(struct buf *b)
{
    buf_str(b, "-----BEGIN CERTIFICATE-----\nX-Note: hi\n-----END CERTIFICATE-----\n");
}

static void mk_trailing_junk(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_str(b, "\n\njunk after the end\n");
}

static void mk_trailing_ws(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_str(b, "\n \t\r\n\n");
}

static void mk_text_before(struct buf *b)
{
    buf_str(b, "Subject: server.example.com\n");
    buf_fixture(b, "server-ec.pem");
}

static void mk_text_between(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    buf_str(b, "intermediate follows\n");
    buf_fixture(b, "int-ca.pem");
}

static void mk_embedded_nul(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    b->p[40] = '\0';
}

static void mk_certs(struct buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf_fixture(b, "int-ca.pem");
    }
}

static void mk_certs_max(struct buf *b)
{
    mk_certs(b, CERTD_BUNDLE_CERTS_MAX);
}

static void mk_certs_max_plus_one(struct buf *b)
{
    mk_certs(b, CERTD_BUNDLE_CERTS_MAX + 1);
}

static void mk_rsa_pkcs1(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_fixture(b, "server-rsa.key");
}

static void mk_ec_sec1(struct buf *b)
{
    buf_fixture(b, "client-ec384.key");
    buf_fixture(b, "client-ec384.pem");
}

static void mk_crlf(struct buf *b)
{
    size_t n;
    uint8_t *f = fixture_read("server-ec-bundle.pem", &n);
    for (size_t i = 0; i < n; i++) {
        if (f[i] == '\n') {
            buf_str(b, "\r\n");
        } else {
            buf_add(b, &f[i], 1);
        }
    }
    free(f);
}

static void mk_cert_bad_der(struct buf *b)
{
    static const uint8_t notder[] = "this is not DER";
    buf_pem(b, "CERTIFICATE", NULL, notder, sizeof(notder) - 1);
}

static void mk_cert_der_trailing(struct buf *b)
{
    struct buf der = { 0 };
    cert_der("server-ec.pem", &der);
    buf_add(&der, "\x05", 1);
    buf_pem(b, "CERTIFICATE", NULL, der.p, der.len);
    free(der.p);
}

static void mk_key_bad(struct buf *b)
{
    /* A certificate's DER under a key label: base64 fine, DER not a key. */
    buf_fixture(b, "server-ec.pem");
    relabel(b, "PRIVATE KEY");
}

static void mk_rsa_label_ec_key(struct buf *b)
{
    /* A SEC1 EC key relabelled as PKCS#1 RSA: decodes as neither. */
    buf_fixture(b, "client-ec384.pem");
    buf_fixture(b, "client-ec384.key");
    buf_replace(b, "-----BEGIN EC PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----");
    buf_replace(b, "-----END EC PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----");
}

static void mk_enc_label(struct buf *b)
{
    static const uint8_t junk[32] = { 7 };
    buf_fixture(b, "server-ec.pem");
    buf_pem(b, "ENCRYPTED PRIVATE KEY", NULL, junk, sizeof(junk));
}

static void mk_huge(struct buf *b, size_t n)
{
    b->p = malloc(n + 1);
    assert_non_null(b->p);
    memset(b->p, 'A', n);
    b->p[n] = '\0';
    b->len = n;
}

static void mk_over_default(struct buf *b)
{
    mk_huge(b, CERTD_INPUT_MAX_DEFAULT + 1);
}

static void mk_over_hard(struct buf *b)
{
    mk_huge(b, CERTD_INPUT_MAX_HARD + 1);
}

/* The PEM of key in `structure` ("PrivateKeyInfo" or "type-specific"), by OpenSSL's encoder. */
static void buf_key_pem(struct buf *b, EVP_PKEY *key, const char *structure)
{
    OSSL_ENCODER_CTX *e =
        OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_KEYPAIR, "PEM", structure, NULL);
    assert_non_null(e);
    assert_true(OSSL_ENCODER_CTX_get_num_encoders(e) > 0);
    unsigned char *pem = NULL;
    size_t len = 0;
    assert_int_equal(OSSL_ENCODER_to_data(e, &pem, &len), 1);
    buf_add(b, pem, len);
    OPENSSL_free(pem);
    OSSL_ENCODER_CTX_free(e);
}

static EVP_PKEY *key_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *k = NULL;
    assert_non_null(params);
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return k;
}

/*
 * A P-256 key whose public point is fixture pub_from's and whose private scalar is fixture
 * priv_from's: EVP_PKEY_eq says it is pub_from's key, yet it cannot sign for it.
 */
static EVP_PKEY *mixed_ec_key(const char *pub_from, const char *priv_from)
{
    EVP_PKEY *a = fixture_key(pub_from), *b = fixture_key(priv_from);
    unsigned char pub[256];
    size_t publen = 0;
    BIGNUM *priv = NULL;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(a, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &publen), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(b, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
                     1);
    assert_int_equal(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, publen),
                     1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv), 1);
    EVP_PKEY *k = key_from_params("EC", bld);
    assert_int_equal(EVP_PKEY_eq(k, a), 1);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(priv);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return k;
}

/*
 * An RSA key with n and e from fixture pub_from (e replaced by e_override when not 0) and d,
 * p, q and the CRT values from fixture priv_from.
 */
static EVP_PKEY *mixed_rsa_key(const char *pub_from, const char *priv_from, unsigned e_override)
{
    static const char *const priv_names[] = {
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
    };
    EVP_PKEY *a = fixture_key(pub_from), *b = fixture_key(priv_from);
    BIGNUM *bn[8] = { NULL };
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    assert_int_equal(EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_RSA_N, &bn[0]), 1);
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn[0]), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(a, OSSL_PKEY_PARAM_RSA_E, &bn[1]), 1);
    if (e_override != 0) {
        assert_int_equal(BN_set_word(bn[1], e_override), 1);
    }
    assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn[1]), 1);
    for (size_t i = 0; i < ELEMENTSOF(priv_names); i++) {
        assert_int_equal(EVP_PKEY_get_bn_param(b, priv_names[i], &bn[i + 2]), 1);
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, priv_names[i], bn[i + 2]), 1);
    }
    EVP_PKEY *k = key_from_params("RSA", bld);
    assert_int_equal(EVP_PKEY_eq(k, a), e_override == 0 ? 1 : 0);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < ELEMENTSOF(bn); i++) {
        BN_clear_free(bn[i]);
    }
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return k;
}

/* server-ec.pem's public point with other.key's private scalar, PKCS#8 and SEC1. */
static void mk_ec_mixed_p8_key(struct buf *b)
{
    EVP_PKEY *k = mixed_ec_key("server-ec.key", "other.key");
    buf_key_pem(b, k, "PrivateKeyInfo");
    EVP_PKEY_free(k);
}

static void mk_ec_mixed_sec1_key(struct buf *b)
{
    EVP_PKEY *k = mixed_ec_key("server-ec.key", "other.key");
    buf_key_pem(b, k, "type-specific");
    assert_non_null(memmem(b->p, b->len, "EC PRIVATE KEY", 14));
    EVP_PKEY_free(k);
}

static void mk_ec_mixed_p8(struct buf *b)
{
    buf_fixture(b, "server-ec.pem");
    mk_ec_mixed_p8_key(b);
}

static void mk_ec_mixed_sec1(struct buf *b)
{
    mk_ec_mixed_sec1_key(b);
    buf_fixture(b, "server-ec.pem");
}

/* server-rsa.pem's n and e with rsa1024.key's private values, PKCS#1 and PKCS#8. */
static void mk_rsa_mixed_pkcs1_key(struct buf *b)
{
    EVP_PKEY *k = mixed_rsa_key("server-rsa.key", "rsa1024.key", 0);
    buf_key_pem(b, k, "type-specific");
    assert_non_null(memmem(b->p, b->len, "RSA PRIVATE KEY", 15));
    EVP_PKEY_free(k);
}

static void mk_rsa_mixed_pkcs1(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    mk_rsa_mixed_pkcs1_key(b);
}

static void mk_rsa_mixed_p8(struct buf *b)
{
    EVP_PKEY *k = mixed_rsa_key("server-rsa.key", "rsa1024.key", 0);
    buf_key_pem(b, k, "PrivateKeyInfo");
    EVP_PKEY_free(k);
    buf_fixture(b, "server-rsa.pem");
}

/* rsa1024.key with its public exponent changed from 65537 to 3. */
static void mk_rsa_tampered_e_key(struct buf *b)
{
    EVP_PKEY *k = mixed_rsa_key("rsa1024.key", "rsa1024.key", 3);
    buf_key_pem(b, k, "PrivateKeyInfo");
    EVP_PKEY_free(k);
}

/* Controls: genuine keys through the same encoders still parse. */
static void mk_ec_sec1_reencoded(struct buf *b)
{
    EVP_PKEY *k = fixture_key("server-ec.key");
    buf_fixture(b, "server-ec.pem");
    buf_key_pem(b, k, "type-specific");
    EVP_PKEY_free(k);
}

static void mk_rsa_p8_reencoded(struct buf *b)
{
    EVP_PKEY *k = fixture_key("server-rsa.key");
    buf_fixture(b, "server-rsa.pem");
    buf_key_pem(b, k, "PrivateKeyInfo");
    EVP_PKEY_free(k);
}

/*
 * Hostile RSA keys (a security review): n, e and d of server-rsa.key kept, so that a signature
 * still verifies through OpenSSL's fall-back to d, and the CRT numbers bent. Each must be
 * refused before the key is used, naming the failed relation.
 */
enum { RSA_N, RSA_E, RSA_D, RSA_P, RSA_Q, RSA_DP, RSA_DQ, RSA_QINV, RSA_NUM_MAX };

static const char *const rsa_num_names[RSA_NUM_MAX] = {
    OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
    OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
    OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
    OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1,
};

typedef void (*rsa_bend_fn)(BIGNUM *v[RSA_NUM_MAX]);

/* server-rsa.key's numbers, bent by `bend`, as PEM in `structure`. */
static void buf_rsa_bent(struct buf *b, rsa_bend_fn bend, const char *structure)
{
    EVP_PKEY *orig = fixture_key("server-rsa.key");
    BIGNUM *v[RSA_NUM_MAX] = { NULL };
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    assert_non_null(bld);
    for (size_t i = 0; i < RSA_NUM_MAX; i++) {
        assert_int_equal(EVP_PKEY_get_bn_param(orig, rsa_num_names[i], &v[i]), 1);
    }
    bend(v);
    for (size_t i = 0; i < RSA_NUM_MAX; i++) {
        assert_int_equal(OSSL_PARAM_BLD_push_BN(bld, rsa_num_names[i], v[i]), 1);
    }
    EVP_PKEY *k = key_from_params("RSA", bld);
    buf_key_pem(b, k, structure);
    EVP_PKEY_free(k);
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < RSA_NUM_MAX; i++) {
        BN_clear_free(v[i]);
    }
    EVP_PKEY_free(orig);
}

/*
 * The review's key: p = 3, q = 2^60000 - 1 and a 60000-bit dQ (21 KB of PEM, under the 64 KiB
 * cap). Before the fix it was accepted after 95 seconds of exponentiation modulo q; a
 * regression shows as this test timing out.
 */
static void bend_huge_q(BIGNUM *v[RSA_NUM_MAX])
{
    assert_int_equal(BN_set_word(v[RSA_P], 3), 1);
    assert_int_equal(BN_set_word(v[RSA_Q], 0), 1);
    assert_int_equal(BN_set_bit(v[RSA_Q], 60000), 1);
    assert_int_equal(BN_sub_word(v[RSA_Q], 1), 1);
    assert_int_equal(BN_set_word(v[RSA_DP], 1), 1);
    assert_non_null(BN_copy(v[RSA_DQ], v[RSA_Q]));
    assert_int_equal(BN_sub_word(v[RSA_DQ], 2), 1);
    assert_int_equal(BN_set_word(v[RSA_QINV], 1), 1);
}

static void bend_p_plus_2(BIGNUM *v[RSA_NUM_MAX])
{
    assert_int_equal(BN_add_word(v[RSA_P], 2), 1);
}

/* Each of dP, dQ and qInv one less: same size, wrong value. */
static void bend_dp(BIGNUM *v[RSA_NUM_MAX])
{
    assert_int_equal(BN_sub_word(v[RSA_DP], 1), 1);
}

static void bend_dq(BIGNUM *v[RSA_NUM_MAX])
{
    assert_int_equal(BN_sub_word(v[RSA_DQ], 1), 1);
}

static void bend_qinv(BIGNUM *v[RSA_NUM_MAX])
{
    assert_int_equal(BN_sub_word(v[RSA_QINV], 1), 1);
}

/* dQ + (q-1) * 2^20000: still d mod (q-1) modulo q-1, but 20000 bits long. */
static void bend_dq_long(BIGNUM *v[RSA_NUM_MAX])
{
    BIGNUM *t = BN_dup(v[RSA_Q]);
    assert_non_null(t);
    assert_int_equal(BN_sub_word(t, 1), 1);
    assert_int_equal(BN_lshift(t, t, 20000), 1);
    assert_int_equal(BN_add(v[RSA_DQ], v[RSA_DQ], t), 1);
    BN_free(t);
}

static void bend_e_even(BIGNUM *v[RSA_NUM_MAX])
{
    assert_int_equal(BN_set_word(v[RSA_E], 65536), 1);
}

static void bend_e_one(BIGNUM *v[RSA_NUM_MAX])
{
    assert_int_equal(BN_set_word(v[RSA_E], 1), 1);
}

static void bend_d_n(BIGNUM *v[RSA_NUM_MAX])
{
    assert_non_null(BN_copy(v[RSA_D], v[RSA_N]));
}

static void mk_rsa_huge_q(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_bent(b, bend_huge_q, "type-specific");
    assert_true(b->len < CERTD_INPUT_MAX_DEFAULT);
}

static void mk_rsa_huge_q_p8_key(struct buf *b)
{
    buf_rsa_bent(b, bend_huge_q, "PrivateKeyInfo");
}

static void mk_rsa_pq_not_n(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_bent(b, bend_p_plus_2, "type-specific");
}

static void mk_rsa_bad_dp(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_bent(b, bend_dp, "PrivateKeyInfo");
}

static void mk_rsa_bad_dq(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_bent(b, bend_dq, "type-specific");
}

static void mk_rsa_long_dq(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_bent(b, bend_dq_long, "type-specific");
}

static void mk_rsa_bad_qinv(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_bent(b, bend_qinv, "PrivateKeyInfo");
}

static void mk_rsa_even_e(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_bent(b, bend_e_even, "type-specific");
}

static void mk_rsa_e_one_key(struct buf *b)
{
    buf_rsa_bent(b, bend_e_one, "PrivateKeyInfo");
}

static void mk_rsa_d_n_key(struct buf *b)
{
    buf_rsa_bent(b, bend_d_n, "type-specific");
}

/* DER by hand, for shapes OpenSSL's encoders will not write: tag, definite length, contents. */
static void der_tlv(struct buf *b, uint8_t tag, const uint8_t *p, size_t len)
{
    uint8_t hdr[4] = { tag };
    size_t h = 1;
    assert_true(len <= 0xffff);
    if (len >= 0x100) {
        hdr[h++] = 0x82;
        hdr[h++] = (uint8_t)(len >> 8);
    } else if (len >= 0x80) {
        hdr[h++] = 0x81;
    }
    hdr[h++] = (uint8_t)len;
    buf_add(b, hdr, h);
    buf_add(b, p, len);
}

/* A non-negative INTEGER. */
static void der_bn(struct buf *b, const BIGNUM *v)
{
    uint8_t c[1 + 2048] = { 0 };
    int n = BN_num_bytes(v);
    assert_true(n >= 0 && (size_t)n < sizeof(c));
    assert_int_equal(BN_bn2bin(v, c + 1), n);
    /* A leading zero when the top bit is set, and for 0 itself. */
    bool pad = n == 0 || (c[1] & 0x80);
    der_tlv(b, 0x02, pad ? c : c + 1, (size_t)n + (pad ? 1 : 0));
}

/*
 * PKCS#1 with n, e, d and the five CRT integers all 0 (OpenSSL's encoders refuse to write a key
 * without them; its decoder reads zeros as numbers, and would fail to sign with them).
 */
static void mk_rsa_zero_crt_key(struct buf *b)
{
    EVP_PKEY *orig = fixture_key("server-rsa.key");
    BIGNUM *v[RSA_D + 1] = { NULL }, *zero = BN_new();
    struct buf body = { 0 }, der = { 0 };
    assert_non_null(zero);
    der_bn(&body, zero); /* version */
    for (size_t i = RSA_N; i <= RSA_D; i++) {
        assert_int_equal(EVP_PKEY_get_bn_param(orig, rsa_num_names[i], &v[i]), 1);
        der_bn(&body, v[i]);
        BN_clear_free(v[i]);
    }
    for (size_t i = RSA_P; i < RSA_NUM_MAX; i++) {
        der_bn(&body, zero);
    }
    der_tlv(&der, 0x30, body.p, body.len);
    buf_pem(b, "RSA PRIVATE KEY", NULL, der.p, der.len);
    OPENSSL_cleanse(body.p, body.len);
    OPENSSL_cleanse(der.p, der.len);
    free(body.p);
    free(der.p);
    BN_free(zero);
    EVP_PKEY_free(orig);
}

/* A fresh 1024-bit key of `type` ("RSA", "RSA-PSS") with `primes` factors. */
static EVP_PKEY *rsa_generate(const char *type, int primes)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *k = NULL;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 1024), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_primes(ctx, primes), 1);
    assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

/* Three primes: RFC 8017 §3.2 otherPrimeInfos. */
static void buf_rsa_three_primes(struct buf *b, const char *structure)
{
    EVP_PKEY *k = rsa_generate("RSA", 3);
    BIGNUM *r3 = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_FACTOR3, &r3), 1);
    buf_key_pem(b, k, structure);
    BN_clear_free(r3);
    EVP_PKEY_free(k);
}

static void mk_rsa_three_primes(struct buf *b)
{
    buf_fixture(b, "server-rsa.pem");
    buf_rsa_three_primes(b, "type-specific");
}

static void mk_rsa_three_primes_p8_key(struct buf *b)
{
    buf_rsa_three_primes(b, "PrivateKeyInfo");
}

/* Control: a genuine RSA-PSS key goes through the same checks. */
static void mk_rsa_pss(struct buf *b)
{
    EVP_PKEY *k = rsa_generate("RSA-PSS", 2);
    buf_fixture(b, "server-rsa.pem");
    buf_key_pem(b, k, "PrivateKeyInfo");
    EVP_PKEY_free(k);
}

/*
 * ed25519.key as PKCS#8 written by hand: v1 (RFC 8410 §7, the private key only) or, with
 * has_public_key, RFC 5958 v2 with a publicKey field that is the real public key with one bit
 * flipped.
 */
static void buf_ed25519_p8(struct buf *b, bool has_public_key)
{
    static const uint8_t alg[] = { 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70 }; /* 1.3.101.112 */
    EVP_PKEY *k = fixture_key("ed25519.key");
    uint8_t priv[32], pub[1 + 32] = { 0 }, version = has_public_key ? 1 : 0;
    size_t n = sizeof(priv);
    struct buf inner = { 0 }, body = { 0 }, der = { 0 };

    assert_int_equal(EVP_PKEY_get_raw_private_key(k, priv, &n), 1);
    assert_int_equal(n, sizeof(priv));
    n = sizeof(pub) - 1;
    assert_int_equal(EVP_PKEY_get_raw_public_key(k, pub + 1, &n), 1);
    pub[sizeof(pub) - 1] ^= 1; /* BIT STRING: no unused bits, then the key */

    der_tlv(&body, 0x02, &version, 1);
    buf_add(&body, alg, sizeof(alg));
    der_tlv(&inner, 0x04, priv, sizeof(priv));
    der_tlv(&body, 0x04, inner.p, inner.len);
    if (has_public_key) {
        der_tlv(&body, 0x81, pub, sizeof(pub)); /* [1] IMPLICIT BIT STRING */
    }
    der_tlv(&der, 0x30, body.p, body.len);
    buf_pem(b, "PRIVATE KEY", NULL, der.p, der.len);
    OPENSSL_cleanse(priv, sizeof(priv));
    OPENSSL_cleanse(inner.p, inner.len);
    OPENSSL_cleanse(body.p, body.len);
    OPENSSL_cleanse(der.p, der.len);
    free(inner.p);
    free(body.p);
    free(der.p);
    EVP_PKEY_free(k);
}

static void mk_ed25519_p8_v1(struct buf *b)
{
    buf_fixture(b, "ed25519.pem");
    buf_ed25519_p8(b, false);
}

/*
 * OpenSSL 3.0 does not decode v2 at all (malformed); a decoder that did would meet
 * EVP_PKEY_pairwise_check (inconsistent). Either way: refused as a bad key.
 */
static void mk_ed25519_p8_v2_mismatch(struct buf *b)
{
    buf_fixture(b, "ed25519.pem");
    buf_ed25519_p8(b, true);
}

static void mk_ed25519_p8_v2_mismatch_key(struct buf *b)
{
    buf_ed25519_p8(b, true);
}

struct bundle_case {
    const char *what;
    const char *fixture;          /* or NULL and build */
    void (*build)(struct buf *b); /* synthesizes the input */
    size_t max_input;             /* 0: default */
    int r;
    enum certd_errc code;
    const char *word; /* must appear in err.msg */
    size_t n_certs;   /* on success */
    bool has_key;
    bool is_der;
};

static const struct bundle_case cases[] = {
    { "one cert", "server-ec.pem", NULL, 0, 0, CERTD_E_OK, NULL, 1, false, false },
    { "cert+key", "server-ec-bundle.pem", NULL, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "key first", "server-key-first.pem", NULL, 0, 0, CERTD_E_OK, NULL, 2, true, false },
    { "leaf+chain", "server-ec-chain.pem", NULL, 0, 0, CERTD_E_OK, NULL, 2, false, false },
    { "CA bundle", "ca-bundle.pem", NULL, 0, 0, CERTD_E_OK, NULL, 3, false, false },
    { "DER", "server-ec.der", NULL, 0, 0, CERTD_E_OK, NULL, 1, false, true },
    { "PKCS#1 RSA key", NULL, mk_rsa_pkcs1, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "SEC1 EC key", NULL, mk_ec_sec1, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "CRLF lines", NULL, mk_crlf, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "trailing white space", NULL, mk_trailing_ws, 0, 0, CERTD_E_OK, NULL, 1, false, false },
    { "32 certs (N)", NULL, mk_certs_max, 0, 0, CERTD_E_OK, NULL, CERTD_BUNDLE_CERTS_MAX, false,
      false },
    { "33 certs (N+1)", NULL, mk_certs_max_plus_one, 0, -E2BIG, CERTD_E_TOO_MANY_CERTS, "32", 0,
      false, false },
    { "DER trailing byte", NULL, mk_der_trailing, 0, -EBADMSG, CERTD_E_TRAILING_DATA, "trailing", 0,
      false, false },
    { "empty", NULL, mk_empty, 0, -EINVAL, CERTD_E_INPUT_EMPTY, "empty", 0, false, false },
    { "white space only", NULL, mk_whitespace, 0, -EINVAL, CERTD_E_INPUT_EMPTY, "empty", 0, false,
      false },
    { "over default cap", NULL, mk_over_default, 0, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "65536", 0,
      false, false },
    { "over hard cap", NULL, mk_over_hard, SIZE_MAX, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "1048576", 0,
      false, false },
    { "garbage text", NULL, mk_garbage, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "neither", 0, false,
      false },
    { "garbage binary", NULL, mk_binary_garbage, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "DER", 0,
      false, false },
    { "cut mid-base64", NULL, mk_cut_mid_base64, 0, -EBADMSG, CERTD_E_PEM_TRUNCATED, "truncated", 0,
      false, false },
    { "no END line", NULL, mk_no_end, 0, -EBADMSG, CERTD_E_PEM_TRUNCATED, "END", 0, false, false },
    { "BEGIN before END", NULL, mk_begin_inside, 0, -EBADMSG, CERTD_E_PEM_TRUNCATED, "truncated", 0,
      false, false },
    { "bad base64", NULL, mk_bad_base64, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "base64", 0, false,
      false },
    { "non-canonical pad", NULL, mk_noncanonical_pad, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "base64",
      0, false, false },
    { "data after pad", NULL, mk_data_after_pad, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "base64", 0,
      false, false },
    { "empty body", NULL, mk_empty_body, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "base64", 0, false,
      false },
    { "END mismatch", NULL, mk_end_mismatch, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "does not match",
      0, false, false },
    { "BEGIN without dashes", NULL, mk_bad_begin, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "BEGIN", 0,
      false, false },
    { "label with a tab", NULL, mk_bad_label_chars, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "BEGIN", 0,
      false, false },
    { "malformed header", NULL, mk_bad_header, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK, "header", 0,
      false, false },
    { "headers without blank", NULL, mk_headers_no_blank, 0, -EBADMSG, CERTD_E_PEM_BAD_BLOCK,
      "blank line", 0, false, false },
    { "PUBLIC KEY label", NULL, mk_label_public_key, 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
      "\"PUBLIC KEY\"", 0, false, false },
    { "CSR label", NULL, mk_label_csr, 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
      "\"CERTIFICATE REQUEST\"", 0, false, false },
    { "TRUSTED CERTIFICATE", NULL, mk_label_trusted, 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
      "TRUSTED", 0, false, false },
    { "CRL label", NULL, mk_label_crl, 0, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL, "X509 CRL", 0,
      false, false },
    { "encrypted PKCS#8", NULL, mk_enc_pkcs8, 0, -EKEYREJECTED, CERTD_E_KEY_ENCRYPTED, "encrypted",
      0, false, false },
    { "encrypted bundle", "server-enc-bundle.pem", NULL, 0, -EKEYREJECTED, CERTD_E_KEY_ENCRYPTED,
      "encrypted", 0, false, false },
    { "ENCRYPTED label junk", NULL, mk_enc_label, 0, -EKEYREJECTED, CERTD_E_KEY_ENCRYPTED,
      "unencrypted", 0, false, false },
    { "Proc-Type encrypted", NULL, mk_proc_type, 0, -EKEYREJECTED, CERTD_E_KEY_ENCRYPTED,
      "encrypted", 0, false, false },
    { "two keys", "server-two-keys.pem", NULL, 0, -EINVAL, CERTD_E_MULTIPLE_KEYS, "multiple", 0,
      false, false },
    { "trailing junk", NULL, mk_trailing_junk, 0, -EBADMSG, CERTD_E_TRAILING_DATA, "trailing", 0,
      false, false },
    { "text before", NULL, mk_text_before, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "before", 0, false,
      false },
    { "text between", NULL, mk_text_between, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "between", 0,
      false, false },
    { "embedded NUL", NULL, mk_embedded_nul, 0, -EBADMSG, CERTD_E_INPUT_GARBAGE, "NUL", 0, false,
      false },
    { "key only", "server-ec.key", NULL, 0, -EINVAL, CERTD_E_NO_CERT, "no certificate", 0, false,
      false },
    { "cert not DER", NULL, mk_cert_bad_der, 0, -EBADMSG, CERTD_E_CERT_BAD, "certificate", 0, false,
      false },
    { "cert DER + byte", NULL, mk_cert_der_trailing, 0, -EBADMSG, CERTD_E_CERT_BAD, "DER", 0, false,
      false },
    { "key not DER", NULL, mk_key_bad, 0, -EBADMSG, CERTD_E_KEY_BAD, "PKCS#8", 0, false, false },
    { "EC key as RSA", NULL, mk_rsa_label_ec_key, 0, -EBADMSG, CERTD_E_KEY_BAD, "RSA", 0, false,
      false },
    { "SEC1 EC re-encoded", NULL, mk_ec_sec1_reencoded, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "PKCS#8 RSA re-encoded", NULL, mk_rsa_p8_reencoded, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "EC mixed key PKCS#8", NULL, mk_ec_mixed_p8, 0, -EBADMSG, CERTD_E_KEY_BAD, "inconsistent", 0,
      false, false },
    { "EC mixed key SEC1", NULL, mk_ec_mixed_sec1, 0, -EBADMSG, CERTD_E_KEY_BAD, "inconsistent", 0,
      false, false },
    { "RSA mixed key PKCS#1", NULL, mk_rsa_mixed_pkcs1, 0, -EBADMSG, CERTD_E_KEY_BAD,
      "inconsistent", 0, false, false },
    { "RSA mixed key PKCS#8", NULL, mk_rsa_mixed_p8, 0, -EBADMSG, CERTD_E_KEY_BAD, "inconsistent",
      0, false, false },
    { "RSA p=3, q=2^60000-1", NULL, mk_rsa_huge_q, 0, -EBADMSG, CERTD_E_KEY_BAD,
      "(p or q is longer than n)", 0, false, false },
    { "RSA p*q != n", NULL, mk_rsa_pq_not_n, 0, -EBADMSG, CERTD_E_KEY_BAD, "(p*q != n)", 0, false,
      false },
    { "RSA wrong dP", NULL, mk_rsa_bad_dp, 0, -EBADMSG, CERTD_E_KEY_BAD, "(dP != d mod (p-1))", 0,
      false, false },
    { "RSA wrong dQ", NULL, mk_rsa_bad_dq, 0, -EBADMSG, CERTD_E_KEY_BAD, "(dQ != d mod (q-1))", 0,
      false, false },
    { "RSA long dQ", NULL, mk_rsa_long_dq, 0, -EBADMSG, CERTD_E_KEY_BAD, "(dQ is longer than q)", 0,
      false, false },
    { "RSA wrong qInv", NULL, mk_rsa_bad_qinv, 0, -EBADMSG, CERTD_E_KEY_BAD, "(qInv*q mod p != 1)",
      0, false, false },
    { "RSA even e", NULL, mk_rsa_even_e, 0, -EBADMSG, CERTD_E_KEY_BAD, "e is not an odd number", 0,
      false, false },
    { "RSA 3 primes PKCS#1", NULL, mk_rsa_three_primes, 0, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
      "multi-prime", 0, false, false },
    { "RSA-PSS key", NULL, mk_rsa_pss, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "Ed25519 PKCS#8 v1 by hand", NULL, mk_ed25519_p8_v1, 0, 0, CERTD_E_OK, NULL, 1, true, false },
    { "Ed25519 PKCS#8 v2 wrong public key", NULL, mk_ed25519_p8_v2_mismatch, 0, -EBADMSG,
      CERTD_E_KEY_BAD, "private key", 0, false, false },
};

static void run_case(const struct bundle_case *c)
{
    struct buf in = { 0 };
    if (c->fixture) {
        buf_fixture(&in, c->fixture);
    } else {
        c->build(&in);
    }
    struct certd_err err = { 0 };
    struct bundle *sentinel = (struct bundle *)&err, *b = sentinel;
    int r = bundle_parse(NULL, NULL, span_make(in.p, in.len), c->max_input, &b, &err);
    if (r != c->r || err.code != c->code) {
        fail_msg("%s: r=%d code=%s msg=\"%s\"", c->what, r, err_code_name(err.code), err.msg);
    }
    if (r < 0) {
        /* Nothing is returned on failure. */
        assert_ptr_equal(b, sentinel);
        if (!strstr(err.msg, c->word)) {
            fail_msg("%s: \"%s\" lacks \"%s\"", c->what, err.msg, c->word);
        }
        /* No message ever quotes key material or the base64 of any block. */
        assert_null(strstr(err.msg, "MII"));
        /* A NULL err record is allowed and gives the same errno. */
        b = sentinel;
        assert_int_equal(bundle_parse(NULL, NULL, span_make(in.p, in.len), c->max_input, &b, NULL),
                         c->r);
        assert_ptr_equal(b, sentinel);
    } else {
        assert_non_null(b);
        assert_int_equal(bundle_n_certs(b), c->n_certs);
        assert_int_equal(b->key != NULL, c->has_key);
        assert_int_equal(b->is_der, c->is_der);
        assert_null(bundle_cert(b, c->n_certs));
        assert_non_null(bundle_cert(b, c->n_certs - 1));
        assert_int_equal(err.code, CERTD_E_OK);
        assert_null(bundle_free(b));
    }
    free(in.p);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        run_case(&cases[i]);
    }
}

/* max_input at N (accepted) and N-1 (refused) for a given input; 0 means the default. */
static void test_size_limit(void **state)
{
    (void)state;
    size_t n;
    uint8_t *f = fixture_read("server-ec.pem", &n);
    struct bundle *b = NULL;
    struct certd_err err = { 0 };

    assert_int_equal(bundle_parse(NULL, NULL, span_make(f, n), n, &b, &err), 0);
    b = bundle_free(b);
    assert_int_equal(bundle_parse(NULL, NULL, span_make(f, n), n - 1, &b, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_INPUT_TOO_LARGE);
    assert_non_null(strstr(err.msg, "too large"));
    assert_null(b);
    free(f);

    /* Exactly the default cap passes the size check (and then fails as garbage). */
    struct buf big = { 0 };
    mk_huge(&big, CERTD_INPUT_MAX_DEFAULT);
    err_clear(&err);
    assert_int_equal(bundle_parse(NULL, NULL, span_make(big.p, big.len), 0, &b, &err), -EBADMSG);
    assert_int_equal(err.code, CERTD_E_INPUT_GARBAGE);
    free(big.p);

    /* A cap above the hard ceiling is clamped: HARD passes the size check, HARD+1 does not. */
    big = (struct buf){ 0 };
    mk_huge(&big, CERTD_INPUT_MAX_HARD);
    err_clear(&err);
    assert_int_equal(bundle_parse(NULL, NULL, span_make(big.p, big.len), SIZE_MAX, &b, &err),
                     -EBADMSG);
    assert_int_equal(err.code, CERTD_E_INPUT_GARBAGE);
    free(big.p);
}

static void test_contents(void **state)
{
    (void)state;
    size_t n;
    uint8_t *f = fixture_read("server-key-first.pem", &n);
    struct bundle *b = NULL;
    assert_int_equal(bundle_parse(NULL, NULL, span_make(f, n), 0, &b, NULL), 0);
    free(f);

    /* Input order kept: leaf, then intermediate; the key is the leaf's. */
    X509 *leaf = fixture_cert("server-ec.pem"), *inter = fixture_cert("int-ca.pem");
    EVP_PKEY *key = fixture_key("server-ec.key");
    assert_int_equal(X509_cmp(bundle_cert(b, 0), leaf), 0);
    assert_int_equal(X509_cmp(bundle_cert(b, 1), inter), 0);
    assert_int_equal(EVP_PKEY_eq(b->key, key), 1);
    assert_int_equal(EVP_PKEY_eq(b->key, X509_get0_pubkey(leaf)), 1);
    EVP_PKEY_free(key);
    bundle_free(b);

    /* PKCS#1 RSA and SEC1 EC keys decode to the right types. */
    struct buf in = { 0 };
    mk_rsa_pkcs1(&in);
    assert_int_equal(bundle_parse(NULL, NULL, span_make(in.p, in.len), 0, &b, NULL), 0);
    assert_true(EVP_PKEY_is_a(b->key, "RSA"));
    assert_int_equal(EVP_PKEY_get_bits(b->key), 2048);
    b = bundle_free(b);
    free(in.p);
    in = (struct buf){ 0 };
    mk_ec_sec1(&in);
    assert_int_equal(bundle_parse(NULL, NULL, span_make(in.p, in.len), 0, &b, NULL), 0);
    assert_true(EVP_PKEY_is_a(b->key, "EC"));
    assert_int_equal(EVP_PKEY_get_bits(b->key), 384);
    b = bundle_free(b);
    free(in.p);

    /* With an explicit library context. */
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    assert_non_null(ctx);
    f = fixture_read("server-ec-bundle.pem", &n);
    assert_int_equal(bundle_parse(ctx, NULL, span_make(f, n), 0, &b, NULL), 0);
    assert_int_equal(X509_cmp(bundle_cert(b, 0), leaf), 0);
    b = bundle_free(b);
    free(f);
    OSSL_LIB_CTX_free(ctx);

    X509_free(leaf);
    X509_free(inter);
}

static void test_pem_round_trip(void **state)
{
    (void)state;
    size_t n;
    uint8_t *f = fixture_read("server-ec-chain.pem", &n);
    struct bundle *b = NULL, *b2 = NULL;
    assert_int_equal(bundle_parse(NULL, NULL, span_make(f, n), 0, &b, NULL), 0);

    /* Our PEM of the chain is byte-for-byte the fixture's (both are RFC 7468 strict). */
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(certs_to_pem(b->certs, &pem, &len), 0);
    assert_int_equal(len, n);
    assert_int_equal(strlen(pem), len);
    assert_memory_equal(pem, f, n);

    /* And it parses back to the same certificates. */
    assert_int_equal(bundle_parse(NULL, NULL, span_make(pem, len), 0, &b2, NULL), 0);
    assert_int_equal(bundle_n_certs(b2), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(X509_cmp(bundle_cert(b, i), bundle_cert(b2, i)), 0);
    }
    free(pem);

    /* One certificate: the first block of the chain file. */
    assert_int_equal(cert_to_pem(bundle_cert(b, 0), &pem, &len), 0);
    size_t one;
    uint8_t *leaf = fixture_read("server-ec.pem", &one);
    assert_int_equal(len, one);
    assert_memory_equal(pem, leaf, one);
    free(leaf);
    free(pem);

    /* DER in, PEM out. */
    bundle_free(b);
    b = NULL;
    free(f);
    f = fixture_read("server-ec.der", &n);
    assert_int_equal(bundle_parse(NULL, NULL, span_make(f, n), 0, &b, NULL), 0);
    assert_int_equal(X509_cmp(bundle_cert(b, 0), bundle_cert(b2, 0)), 0);
    assert_int_equal(cert_to_pem(bundle_cert(b, 0), &pem, NULL), 0);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----\n"));
    free(pem);
    free(f);
    bundle_free(b);
    bundle_free(b2);
}

static void test_args(void **state)
{
    (void)state;
    struct bundle *b = NULL;
    assert_int_equal(bundle_parse(NULL, NULL, span_make(NULL, 5), 0, &b, NULL), -EINVAL);
    assert_int_equal(bundle_parse(NULL, NULL, SPAN_EMPTY, 0, NULL, NULL), -EINVAL);
    assert_null(bundle_free(NULL));
    assert_int_equal(bundle_n_certs(NULL), 0);
    assert_null(bundle_cert(NULL, 0));
    char *s = NULL;
    assert_int_equal(cert_to_pem(NULL, &s, NULL), -EINVAL);
    assert_int_equal(certs_to_pem(NULL, &s, NULL), -EINVAL);
    assert_null(s);
}

/* key_parse_pem: one unencrypted key and nothing else. */
static void mk_key_then_cert(struct buf *b)
{
    buf_fixture(b, "server-ec.key");
    buf_fixture(b, "server-ec.pem");
}

static void mk_key_trailing(struct buf *b)
{
    buf_fixture(b, "server-ec.key");
    buf_str(b, "junk\n");
}

static void mk_key_cut(struct buf *b)
{
    buf_fixture(b, "server-ec.key");
    buf_replace(b, "-----END PRIVATE KEY-----\n", "");
}

static void mk_two_keys(struct buf *b)
{
    buf_fixture(b, "server-ec.key");
    buf_fixture(b, "other.key");
}

static void mk_key_csr_label(struct buf *b)
{
    buf_fixture(b, "server-ec.key");
    relabel(b, "CERTIFICATE REQUEST");
}

static void test_key_parse_pem(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        const char *fixture;
        void (*build)(struct buf *b);
        int r;
        enum certd_errc code;
        const char *word;
    } kcases[] = {
        { "PKCS#8 EC", "server-ec.key", NULL, 0, CERTD_E_OK, NULL },
        { "PKCS#1 RSA", "server-rsa.key", NULL, 0, CERTD_E_OK, NULL },
        { "SEC1 EC", "client-ec384.key", NULL, 0, CERTD_E_OK, NULL },
        { "Ed25519", "ed25519.key", NULL, 0, CERTD_E_OK, NULL },
        { "empty", NULL, mk_whitespace, -EINVAL, CERTD_E_INPUT_EMPTY, "empty" },
        { "garbage", NULL, mk_garbage, -EBADMSG, CERTD_E_INPUT_GARBAGE, "garbage" },
        { "over default cap", NULL, mk_over_default, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "too large" },
        { "cert only", "server-ec.pem", NULL, -EINVAL, CERTD_E_KEY_MISSING, "no private key" },
        { "key + cert", NULL, mk_key_then_cert, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
          "CERTIFICATE" },
        { "CSR label", NULL, mk_key_csr_label, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
          "CERTIFICATE REQUEST" },
        { "two keys", NULL, mk_two_keys, -EINVAL, CERTD_E_MULTIPLE_KEYS, "multiple" },
        { "encrypted", "server-ec-enc.key", NULL, -EKEYREJECTED, CERTD_E_KEY_ENCRYPTED,
          "encrypted" },
        { "trailing", NULL, mk_key_trailing, -EBADMSG, CERTD_E_TRAILING_DATA, "trailing" },
        { "truncated", NULL, mk_key_cut, -EBADMSG, CERTD_E_PEM_TRUNCATED, "truncated" },
        { "not a key", NULL, mk_key_bad, -EBADMSG, CERTD_E_KEY_BAD, "PKCS#8" },
        { "EC mixed PKCS#8", NULL, mk_ec_mixed_p8_key, -EBADMSG, CERTD_E_KEY_BAD, "inconsistent" },
        { "EC mixed SEC1", NULL, mk_ec_mixed_sec1_key, -EBADMSG, CERTD_E_KEY_BAD, "inconsistent" },
        { "RSA mixed PKCS#1", NULL, mk_rsa_mixed_pkcs1_key, -EBADMSG, CERTD_E_KEY_BAD,
          "inconsistent" },
        { "RSA tampered e", NULL, mk_rsa_tampered_e_key, -EBADMSG, CERTD_E_KEY_BAD, "public part" },
        { "RSA huge q PKCS#8", NULL, mk_rsa_huge_q_p8_key, -EBADMSG, CERTD_E_KEY_BAD,
          "p or q is longer than n" },
        { "RSA e = 1", NULL, mk_rsa_e_one_key, -EBADMSG, CERTD_E_KEY_BAD,
          "e is not an odd number" },
        { "RSA d = n", NULL, mk_rsa_d_n_key, -EBADMSG, CERTD_E_KEY_BAD, "d is not between" },
        { "RSA zero CRT", NULL, mk_rsa_zero_crt_key, -EBADMSG, CERTD_E_KEY_BAD,
          "p or q is not greater than 1" },
        { "RSA 3 primes PKCS#8", NULL, mk_rsa_three_primes_p8_key, -EOPNOTSUPP,
          CERTD_E_KEY_UNSUPPORTED, "multi-prime" },
        { "Ed25519 v2 wrong public key", NULL, mk_ed25519_p8_v2_mismatch_key, -EBADMSG,
          CERTD_E_KEY_BAD, "private key" },
    };
    for (size_t i = 0; i < ELEMENTSOF(kcases); i++) {
        struct buf in = { 0 };
        if (kcases[i].fixture) {
            buf_fixture(&in, kcases[i].fixture);
        } else {
            kcases[i].build(&in);
        }
        struct certd_err err = { 0 };
        EVP_PKEY *key = NULL;
        int r = key_parse_pem(NULL, NULL, span_make(in.p, in.len), &key, &err);
        if (r != kcases[i].r || err.code != kcases[i].code) {
            fail_msg("%s: r=%d code=%s msg=\"%s\"", kcases[i].what, r, err_code_name(err.code),
                     err.msg);
        }
        if (r == 0) {
            EVP_PKEY *want = fixture_key(kcases[i].fixture);
            assert_int_equal(EVP_PKEY_eq(key, want), 1);
            EVP_PKEY_free(want);
            EVP_PKEY_free(key);
        } else {
            assert_null(key);
            if (!strstr(err.msg, kcases[i].word)) {
                fail_msg("%s: \"%s\" lacks \"%s\"", kcases[i].what, err.msg, kcases[i].word);
            }
            assert_null(strstr(err.msg, "MII"));
        }
        free(in.p);
    }
}

/*
 * PKCS#8 keys of every type certd meets decode with the type their AlgorithmIdentifier names,
 * and a type we do not name (X25519) still decodes through the generic path.
 */
static void test_pkcs8_key_types(void **state)
{
    (void)state;
    static const struct {
        const char *alg;
        const char *param; /* EC group, RSA bits, or NULL */
    } types[] = {
        { "EC", "P-384" },   { "RSA", "2048" }, { "RSA-PSS", "2048" },
        { "ED25519", NULL }, { "ED448", NULL }, { "X25519", NULL },
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EVP_PKEY *k = NULL;
        if (types[i].param && strcmp(types[i].alg, "EC") == 0) {
            k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", types[i].param);
        } else if (strcmp(types[i].alg, "RSA") == 0) {
            k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        } else {
            /* EVP_PKEY_Q_keygen knows no parameters for RSA-PSS: the long way. */
            EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, types[i].alg, NULL);
            assert_non_null(ctx);
            assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
            assert_int_equal(EVP_PKEY_generate(ctx, &k), 1);
            EVP_PKEY_CTX_free(ctx);
        }
        assert_non_null(k);
        BIO *bio = BIO_new(BIO_s_mem());
        assert_non_null(bio);
        assert_int_equal(PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL), 1);
        char *pem = NULL;
        long len = BIO_get_mem_data(bio, &pem);
        assert_true(len > 0);
        assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));

        struct certd_err err = { 0 };
        EVP_PKEY *got = NULL;
        assert_int_equal(key_parse_pem(NULL, NULL, span_make(pem, (size_t)len), &got, &err), 0);
        assert_non_null(got);
        assert_true(EVP_PKEY_is_a(got, types[i].alg));
        assert_int_equal(EVP_PKEY_eq(got, k), 1);
        EVP_PKEY_free(got);
        BIO_free(bio);
        EVP_PKEY_free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_contents),
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_key_parse_pem),
        cmocka_unit_test(test_pkcs8_key_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
