/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pin/: SPKI SHA-256 pins checked against a digest of the certificate's own
 * SPKI DER computed in the test, known answers for the "sha256//BASE64" and hex
 * forms, every malformed spelling rejected, and the key policy of pin_from_cert_checked.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "pin/pin.h"
#include "testutil.h"

/* SHA-256 of the empty string (FIPS 180-4 test vector), in every accepted spelling. */
static const uint8_t empty_sha256[PIN_SHA256_LEN] = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};
#define EMPTY_B64       "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
#define EMPTY_HEX       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EMPTY_HEX_UPPER "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
#define EMPTY_HEX_COLON                                                        \
    "e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:" \
    "a4:95:99:1b:78:52:"                                                       \
    "b8:55"
#define EMPTY_HEX_COLON_UPPER                                                  \
    "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:" \
    "A4:95:99:1B:78:52:"                                                       \
    "B8:55"

/* Bytes 0..31. */
#define SEQ_B64 "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static const struct pin sentinel = { .sha256 = { 0xaa, 0xbb, 0xcc } };

/*
 * SHA-256 over the certificate's own SubjectPublicKeyInfo encoding, computed
 * here without the code under test. (X509_pubkey_digest would not do: it hashes
 * only the key's BIT STRING.)
 */
static void independent_pin(X509 *x, uint8_t out[PIN_SHA256_LEN])
{
    unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    assert_true(len > 0);
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(der, (size_t)len, out, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, PIN_SHA256_LEN);
    OPENSSL_free(der);

    /* And it is not the BIT STRING hash that X509_pubkey_digest gives. */
    uint8_t bits[PIN_SHA256_LEN];
    assert_int_equal(X509_pubkey_digest(x, EVP_sha256(), bits, &mdlen), 1);
    assert_memory_not_equal(bits, out, PIN_SHA256_LEN);
}

static void test_pin_fixture_certs(void **state)
{
    (void)state;
    static const struct {
        const char *cert, *key;
    } cases[] = {
        { "server-ec.pem", "server-ec.key" },       { "server-rsa.pem", "server-rsa.key" },
        { "client-ec384.pem", "client-ec384.key" }, { "ed25519.pem", "ed25519.key" },
        { "rsa1024.pem", "rsa1024.key" },
    };
    struct pin seen[ELEMENTSOF(cases)];
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        X509 *x = fixture_cert(cases[i].cert);
        EVP_PKEY *k = fixture_key(cases[i].key);
        uint8_t want[PIN_SHA256_LEN];
        independent_pin(x, want);

        struct pin from_cert = sentinel, from_key = sentinel;
        assert_int_equal(pin_from_cert(NULL, NULL, x, &from_cert), 0);
        assert_memory_equal(from_cert.sha256, want, PIN_SHA256_LEN);
        /* The private key's public half has the same pin as the certificate. */
        assert_int_equal(pin_from_pkey(NULL, NULL, k, &from_key), 0);
        assert_true(pin_eq(&from_cert, &from_key));

        /* Formatted and parsed back, it is the same pin. */
        char buf[PIN_STR_MAX];
        struct pin back;
        pin_format(&from_cert, buf, sizeof(buf));
        assert_int_equal(strlen(buf), 8 + 44);
        assert_int_equal(pin_parse(buf, &back, NULL), 0);
        assert_true(pin_eq(&back, &from_cert));

        for (size_t j = 0; j < i; j++) {
            assert_false(pin_eq(&seen[j], &from_cert));
        }
        seen[i] = from_cert;
        X509_free(x);
        EVP_PKEY_free(k);
    }
}

static void test_pin_errors(void **state)
{
    (void)state;
    X509 *x = fixture_cert("server-ec.pem");
    struct pin p = sentinel;
    /* The property query reaches the digest fetch. */
    assert_int_equal(pin_from_cert(NULL, "provider=certd-no-such-provider", x, &p), -EIO);
    assert_memory_equal(&p, &sentinel, sizeof(p));
    assert_int_equal(pin_from_cert(NULL, NULL, NULL, &p), -EINVAL);
    assert_int_equal(pin_from_pkey(NULL, NULL, NULL, &p), -EINVAL);
    assert_int_equal(pin_from_cert(NULL, NULL, x, NULL), -EINVAL);
    assert_memory_equal(&p, &sentinel, sizeof(p));
    X509_free(x);
}

/*
 * server-ec.der with its key's algorithm changed from id-ecPublicKey (1.2.840.10045.2.1) to
 * 1.2.840.10045.2.99, which no provider knows: the certificate parses, its key does not.
 */
static X509 *undecodable_key_cert(void)
{
    static const uint8_t ec_oid[] = { 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
    size_t len = 0;
    uint8_t *der = fixture_read("server-ec.der", &len);
    uint8_t *at = memmem(der, len, ec_oid, sizeof(ec_oid));
    assert_non_null(at);
    at[sizeof(ec_oid) - 1] = 99;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_null(X509_get0_pubkey(x));
    ERR_clear_error();
    free(der);
    return x;
}

static void test_pin_from_cert_checked(void **state)
{
    (void)state;
    EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    assert_non_null(ed448);
    X509 *ed448_cert =
        tu_cert_make(&(struct tu_cert_spec){ .key = ed448, .cn = "ed448", .na_days = 1 });
    X509 *odd = undecodable_key_cert();
    const struct {
        const char *file; /* NULL: cert */
        X509 *cert;
        int r;
        enum certd_errc code;
        const char *word;
    } cases[] = {
        { "server-ec.pem", NULL, 0, CERTD_E_OK, NULL },
        { "client-ec384.pem", NULL, 0, CERTD_E_OK, NULL },
        { "server-rsa.pem", NULL, 0, CERTD_E_OK, NULL },
        { "ed25519.pem", NULL, 0, CERTD_E_OK, NULL },
        { "rsa1024.pem", NULL, -EKEYREJECTED, CERTD_E_KEY_WEAK,
          "the certificate's key is a 1024-bit" },
        { "secp256k1.pem", NULL, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "curve secp256k1" },
        { NULL, ed448_cert, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "the certificate's key is a" },
        { NULL, odd, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "type is not supported" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        X509 *x = cases[i].file ? fixture_cert(cases[i].file) : cases[i].cert;
        struct pin p = sentinel, want = sentinel;
        struct certd_err err = { 0 };
        int r = pin_from_cert_checked(NULL, NULL, x, &p, &err);
        if (r != cases[i].r || err.code != cases[i].code ||
            (cases[i].word && !strstr(err.msg, cases[i].word))) {
            fail_msg("case %zu: %d %d \"%s\"", i, r, (int)err.code, err.msg);
        }
        if (r == 0) {
            /* The same pin as the unchecked function's. */
            assert_int_equal(pin_from_cert(NULL, NULL, x, &want), 0);
            assert_true(pin_eq(&p, &want));
        } else {
            assert_memory_equal(&p, &sentinel, sizeof(p)); /* untouched on failure */
        }
        assert_int_equal(ERR_peek_error(), 0);
        if (cases[i].file) {
            X509_free(x);
        }
    }

    /* A digest that cannot be fetched is an internal error, not the peer's. */
    X509 *x = fixture_cert("server-ec.pem");
    struct pin p = sentinel;
    struct certd_err err = { 0 };
    assert_int_equal(pin_from_cert_checked(NULL, "provider=certd-no-such-provider", x, &p, &err),
                     -EIO);
    assert_int_equal(err.code, CERTD_E_INTERNAL);
    assert_non_null(strstr(err.msg, "cannot be hashed"));
    assert_memory_equal(&p, &sentinel, sizeof(p));
    assert_int_equal(pin_from_cert_checked(NULL, NULL, NULL, &p, NULL), -EINVAL);
    assert_int_equal(pin_from_cert_checked(NULL, NULL, x, NULL, NULL), -EINVAL);
    X509_free(x);
    X509_free(odd);
    X509_free(ed448_cert);
    EVP_PKEY_free(ed448);
}

static void test_pin_known_answers(void **state)
{
    (void)state;
    struct pin p;
    memcpy(p.sha256, empty_sha256, PIN_SHA256_LEN);
    char buf[PIN_STR_MAX];
    pin_format(&p, buf, sizeof(buf));
    assert_string_equal(buf, EMPTY_B64);

    struct pin seq;
    for (size_t i = 0; i < PIN_SHA256_LEN; i++) {
        seq.sha256[i] = (uint8_t)i;
    }
    pin_format(&seq, buf, sizeof(buf));
    assert_string_equal(buf, SEQ_B64);
    struct pin back;
    assert_int_equal(pin_parse(SEQ_B64, &back, NULL), 0);
    assert_true(pin_eq(&back, &seq));

    /* Every accepted spelling of one digest is the same pin. */
    static const char *const forms[] = {
        EMPTY_B64, EMPTY_HEX, EMPTY_HEX_UPPER, EMPTY_HEX_COLON, EMPTY_HEX_COLON_UPPER,
        /* mixed case is still hex */
        "E3b0C44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852B855"
    };
    for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
        struct pin q = sentinel;
        struct certd_err err = { 0 };
        if (pin_parse(forms[i], &q, &err) != 0) {
            fail_msg("form %zu rejected: %s", i, err.msg);
        }
        assert_int_equal(err.code, CERTD_E_OK);
        assert_memory_equal(q.sha256, empty_sha256, PIN_SHA256_LEN);
        assert_true(pin_eq(&q, &p));
    }
}

static void test_pin_format_bounds(void **state)
{
    (void)state;
    struct pin p = { .sha256 = { 0 } };
    char small[9];
    memset(small, 'z', sizeof(small));
    pin_format(&p, small, sizeof(small));
    assert_string_equal(small, "sha256//");
    char none = 'z';
    pin_format(&p, &none, 0);
    assert_int_equal(none, 'z');
    char buf[PIN_STR_MAX] = "zz";
    pin_format(NULL, buf, sizeof(buf));
    assert_string_equal(buf, "");
    /* Exactly the formatted length plus NUL fits. */
    char exact[8 + 44 + 1];
    pin_format(&p, exact, sizeof(exact));
    assert_string_equal(exact, "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
}

static void test_pin_parse_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *kw;
    } cases[] = {
        { "", "empty" },
        { NULL, "empty" },
        /* base64 form: length, alphabet, padding, canonical form */
        { "sha256//", "0 base64 characters" },
        { "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", "43 base64 characters" },
        { "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=A", "45 base64 characters" },
        { "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU==", "45 base64 characters" },
        { "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", "45 base64 characters" },
        { "sha256// 7DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "invalid base64 character" },
        { "sha256//47DEQpj8HBSa+/TImW+5 CeuQeRkm5NMpJWZG3hSuFU=", "position 29" },
        { "sha256//47DEQpj8HBSa-_TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "invalid base64 character" },
        { "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSu=U=", "invalid base64 character" },
        { "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuF==", "invalid base64 character" },
        { "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFUA", "end with one '='" },
        { "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", "canonical" },
        { "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh/=", "canonical" },
        /* the prefix is exact */
        { "SHA256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "neither" },
        { "sha1//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "neither" },
        { " sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "neither" },
        { "sha256/47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "neither" },
        { "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "neither" },
        /* hex form: length, digits, separators */
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", "(63 characters)" },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550", "(65 characters)" },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n", "(65 characters)" },
        { " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "(65 characters)" },
        { "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "position 1" },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g", "position 64" },
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4 49b934ca495991b7852b855", "non-hex" },
        { "0xb0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "position 2" },
        { "e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8-55",
          "separated by ':'" },
        { "e3 b0 c4 42 98 fc 1c 14 9a fb f4 c8 99 6f b9 24 27 ae 41 e4 64 9b 93 4c a4 95 99 1b 78 52 b8 55",
          "separated by ':'" },
        { "e3b:0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55",
          "separated by ':'" },
        { "e3:b0:zz:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55",
          "position 7" },
        /* one colon missing: 94 characters */
        { "e3b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55",
          "(94 characters)" },
        /* a trailing colon: 96 characters, over the limit */
        { "e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55:",
          "longer than 95" },
        { ":e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55",
          "longer than 95" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct pin p = sentinel;
        struct certd_err err = { 0 };
        int r = pin_parse(cases[i].in, &p, &err);
        if (r != -EINVAL) {
            fail_msg("case %zu (%s): r=%d, want -EINVAL", i, cases[i].in ? cases[i].in : "NULL", r);
        }
        assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
        if (!strstr(err.msg, cases[i].kw)) {
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].kw);
        }
        assert_memory_equal(&p, &sentinel, sizeof(p));
    }

    /* err is nullable; ret is required. */
    struct pin p = sentinel;
    assert_int_equal(pin_parse("nope", &p, NULL), -EINVAL);
    assert_memory_equal(&p, &sentinel, sizeof(p));
    assert_int_equal(pin_parse(EMPTY_HEX, NULL, NULL), -EINVAL);
}

static void test_pin_parse_embedded_nul(void **state)
{
    (void)state;
    /* A NUL inside a valid pin cuts it: what is left is too short and rejected. */
    char b64[] = EMPTY_B64;
    b64[20] = '\0';
    struct pin p = sentinel;
    struct certd_err err = { 0 };
    assert_int_equal(pin_parse(b64, &p, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "12 base64 characters"));

    char hex[] = EMPTY_HEX;
    hex[63] = '\0';
    err_clear(&err);
    assert_int_equal(pin_parse(hex, &p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "(63 characters)"));
    assert_memory_equal(&p, &sentinel, sizeof(p));
}

static void test_pin_limits(void **state)
{
    (void)state;
    /* The colon form is the longest valid input: 95 characters pass, 96 do not (above). */
    assert_int_equal(strlen(EMPTY_HEX_COLON), 95);
    struct pin p;
    assert_int_equal(pin_parse(EMPTY_HEX_COLON, &p, NULL), 0);
    /* A very long input is refused without being read to its end. */
    char big[4096];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct certd_err err = { 0 };
    assert_int_equal(pin_parse(big, &p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "longer than"));
}

static void test_pin_eq(void **state)
{
    (void)state;
    struct pin a, b;
    memcpy(a.sha256, empty_sha256, PIN_SHA256_LEN);
    b = a;
    assert_true(pin_eq(&a, &b));
    b.sha256[PIN_SHA256_LEN - 1] ^= 1;
    assert_false(pin_eq(&a, &b));
    b = a;
    b.sha256[0] ^= 0x80;
    assert_false(pin_eq(&a, &b));
    assert_false(pin_eq(NULL, &a));
    assert_false(pin_eq(&a, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_fixture_certs),
        cmocka_unit_test(test_pin_errors),
        cmocka_unit_test(test_pin_known_answers),
        cmocka_unit_test(test_pin_format_bounds),
        cmocka_unit_test(test_pin_parse_rejects),
        cmocka_unit_test(test_pin_parse_embedded_nul),
        cmocka_unit_test(test_pin_limits),
        cmocka_unit_test(test_pin_eq),
        cmocka_unit_test(test_pin_from_cert_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
