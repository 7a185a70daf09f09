/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SPKI pins: SHA-256 over the DER SubjectPublicKeyInfo (RFC 7469 §2.4), written
 * as curl's --pinnedpubkey "sha256//BASE64" or as 64 hex digits. The parser accepts
 * exactly those forms and nothing around them (no blanks, no trailing bytes, no
 * non-canonical base64), so that one pin has one meaning. Pins are public data;
 * comparison is constant-time anyway because callers compare them against
 * values an attacker chooses.
 */
#include "pin/pin.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "keys/keys.h"
#include "util/base64.h"
#include "util/ossl.h"
#include "util/parse.h"

#define PIN_PREFIX     "sha256//"
#define PIN_PREFIX_LEN (sizeof(PIN_PREFIX) - 1)
/* Base64 of 32 bytes: 4 * ceil(32 / 3) = 44 characters, the last one '=' padding. */
#define PIN_B64_LEN 44
_Static_assert(BASE64_LEN(PIN_SHA256_LEN) == PIN_B64_LEN, "pin base64 length");
_Static_assert(PIN_PREFIX_LEN + PIN_B64_LEN == PIN_STR_LEN && PIN_STR_LEN < PIN_STR_MAX,
               "pin text length");
/* Hex forms: 64 digits, or 32 pairs joined by 31 colons. */
#define PIN_HEX_LEN       (2 * PIN_SHA256_LEN)
#define PIN_HEX_COLON_LEN (3 * PIN_SHA256_LEN - 1)
/* Anything longer than the longest valid form is rejected without being read further. */
#define PIN_PARSE_MAX PIN_HEX_COLON_LEN

/* The pin of a DER SubjectPublicKeyInfo. */
static int pin_of_der(OSSL_LIB_CTX *libctx, const char *propq, const unsigned char *der, size_t len,
                      struct pin *ret)
{
    struct pin pin;
    size_t mdlen = 0;
    if (EVP_Q_digest(libctx, "SHA256", propq, der, len, pin.sha256, &mdlen) != 1 ||
        mdlen != PIN_SHA256_LEN) {
        (void)ossl_drain_errors("pin: digest");
        return -EIO;
    }
    *ret = pin;
    return 0;
}

int pin_from_pkey(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey, struct pin *ret)
{
    assert_return(pkey, -EINVAL);
    assert_return(ret, -EINVAL);

    int len = i2d_PUBKEY(pkey, NULL);
    if (len <= 0) {
        (void)ossl_drain_errors("pin: i2d_PUBKEY size");
        return -EIO;
    }
    _cleanup_free_ unsigned char *der = malloc((size_t)len);
    if (!der) {
        return -ENOMEM;
    }
    unsigned char *p = der;
    if (i2d_PUBKEY(pkey, &p) != len) {
        (void)ossl_drain_errors("pin: i2d_PUBKEY");
        return -EIO;
    }
    return pin_of_der(libctx, propq, der, (size_t)len, ret);
}

int pin_from_cert(OSSL_LIB_CTX *libctx, const char *propq, X509 *cert, struct pin *ret)
{
    assert_return(cert, -EINVAL);
    assert_return(ret, -EINVAL);

    if (!X509_get0_pubkey(cert)) {
        /* An algorithm no provider can decode: the certificate has no usable key. */
        (void)ossl_drain_errors("pin: certificate key");
        return -EIO;
    }
    /*
     * The certificate's own SubjectPublicKeyInfo, as it came (what RFC 7469 and curl hash), not
     * encoded again from the key: in OpenSSL 3.0 i2d_PUBKEY goes through the encoder framework
     * and costs some 100 us, a sixth of a TLS handshake; this costs about 1 us.
     */
    _cleanup_(ossl_bytes_free) unsigned char *der = NULL;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (len <= 0) {
        (void)ossl_drain_errors("pin: i2d_X509_PUBKEY");
        return -EIO;
    }
    return pin_of_der(libctx, propq, der, (size_t)len, ret);
}

int pin_from_cert_checked(OSSL_LIB_CTX *libctx, const char *propq, X509 *cert, struct pin *ret,
                          struct certd_err *err)
{
    assert_return(cert, -EINVAL);
    assert_return(ret, -EINVAL);

    const EVP_PKEY *key = X509_get0_pubkey(cert);
    /* Decoding may leave errors even when it succeeds; a TLS callback needs the queue empty. */
    (void)ossl_drain_errors("pin: certificate key");
    if (!key) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                       "the certificate's key type is not supported");
    }
    /* The rule certd's API applies to a pin's key: weak or odd keys are refused, not pinned. */
    const struct key_policy policy = { .allow_ed25519 = true };
    int r = key_check_strength(key, &policy, "the certificate's key", err);
    if (r < 0) {
        return r;
    }
    r = pin_from_cert(libctx, propq, cert, ret);
    if (r < 0) {
        return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                       "the certificate's key cannot be hashed");
    }
    return 0;
}

void pin_format(const struct pin *p, char *buf, size_t size)
{
    if (!buf || size == 0) {
        return;
    }
    if (!p) {
        buf[0] = '\0';
        return;
    }
    char b64[PIN_B64_LEN + 1];
    base64_encode(p->sha256, PIN_SHA256_LEN, b64, sizeof(b64));
    (void)snprintf(buf, size, "%s%s", PIN_PREFIX, b64);
}

static int parse_b64(const char *b64, size_t len, struct pin *ret, struct certd_err *err)
{
    if (len != PIN_B64_LEN) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "pin has %zu base64 characters after \"sha256//\"; expected %d characters",
                       len, PIN_B64_LEN);
    }
    /* Checked here, before decoding, to name the position of the first bad character. */
    for (size_t i = 0; i < PIN_B64_LEN - 1; i++) {
        if (base64_char_value(b64[i]) < 0) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "pin has an invalid base64 character at position %zu",
                           i + PIN_PREFIX_LEN + 1);
        }
    }
    if (b64[PIN_B64_LEN - 1] != '=') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "pin base64 must end with one '=' (32 bytes)");
    }
    /* The text is 43 characters of the alphabet and one '=': decoding can only fail for bits
     * set under the padding, a second spelling of the same pin. */
    uint8_t raw[PIN_SHA256_LEN];
    size_t n = 0;
    if (base64_decode(span_make(b64, PIN_B64_LEN), 0, raw, sizeof(raw), &n) < 0 ||
        n != PIN_SHA256_LEN) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "pin base64 is not canonical (unused bits set)");
    }
    memcpy(ret->sha256, raw, PIN_SHA256_LEN);
    return 0;
}

static int parse_hex(const char *s, size_t len, struct pin *ret, struct certd_err *err)
{
    bool colons;
    if (len == PIN_HEX_LEN) {
        colons = false;
    } else if (len == PIN_HEX_COLON_LEN) {
        colons = true;
    } else {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "pin is neither \"sha256//\" + base64 nor 64 hex digits (%zu characters)",
                       len);
    }
    size_t step = colons ? 3 : 2;
    for (size_t i = 0; i < PIN_SHA256_LEN; i++) {
        size_t at = i * step;
        int hi = hex_digit_value(s[at]);
        int lo = hex_digit_value(s[at + 1]);
        if (hi < 0 || lo < 0) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "pin has a non-hex character at position %zu", at + (hi < 0 ? 1 : 2));
        }
        if (colons && i + 1 < PIN_SHA256_LEN && s[at + 2] != ':') {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "pin hex pairs must all be separated by ':' (position %zu)", at + 3);
        }
        ret->sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int pin_parse(const char *s, struct pin *ret, struct certd_err *err)
{
    assert_return(ret, -EINVAL);

    if (!s || s[0] == '\0') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "pin is empty");
    }
    size_t len = strnlen(s, PIN_PARSE_MAX + 1);
    if (len > PIN_PARSE_MAX) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "pin is longer than %d characters",
                       PIN_PARSE_MAX);
    }

    struct pin pin;
    int r;
    if (len >= PIN_PREFIX_LEN && memcmp(s, PIN_PREFIX, PIN_PREFIX_LEN) == 0) {
        r = parse_b64(s + PIN_PREFIX_LEN, len - PIN_PREFIX_LEN, &pin, err);
    } else {
        r = parse_hex(s, len, &pin, err);
    }
    if (r < 0) {
        return r;
    }
    *ret = pin;
    return 0;
}

bool pin_eq(const struct pin *a, const struct pin *b)
{
    if (!a || !b) {
        return false;
    }
    return CRYPTO_memcmp(a->sha256, b->sha256, PIN_SHA256_LEN) == 0;
}
