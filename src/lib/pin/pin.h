/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SPKI pins: the SHA-256 of a DER SubjectPublicKeyInfo, written "sha256//BASE64" as curl's
 * --pinnedpubkey does. Issue #6 builds pin stores on this; here: compute, parse, compare.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error/error.h"
#include "util/cleanup.h"

#define PIN_SHA256_LEN 32
/* What pin_format writes: "sha256//" + 44 base64 characters (without the NUL). */
#define PIN_STR_LEN 52
/* A buffer for pin_format: PIN_STR_LEN and the NUL, with room to spare. */
#define PIN_STR_MAX 64

struct pin {
    uint8_t sha256[PIN_SHA256_LEN];
};

/* Compute the pin of a key's public part / of a certificate's key. 0, -ENOMEM, -EIO. */
_must_check_ int pin_from_pkey(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey,
                               struct pin *ret);
_must_check_ int pin_from_cert(OSSL_LIB_CTX *libctx, const char *propq, X509 *cert,
                               struct pin *ret);

/*
 * The pin of cert's key (borrowed), once its type and strength are ones certd accepts from a
 * peer: key_check_strength with Ed25519 allowed (RSA of 2048 bits or more, EC P-256/384/521,
 * Ed25519). certd's TLS and API and certctl judge a peer's certificate by this one rule. 0, or
 * -errno with err (nullable), *ret untouched: -EOPNOTSUPP CERTD_E_KEY_UNSUPPORTED for a key no
 * provider can decode; key_check_strength's errors ("the certificate's key ..."); -EIO
 * CERTD_E_INTERNAL / -ENOMEM CERTD_E_NO_MEMORY when it cannot be hashed. Leaves the calling
 * thread's OpenSSL error queue empty. Any thread.
 */
_must_check_ int pin_from_cert_checked(OSSL_LIB_CTX *libctx, const char *propq, X509 *cert,
                                       struct pin *ret, struct certd_err *err);

/* Format as "sha256//BASE64" into buf (at least PIN_STR_MAX bytes). */
void pin_format(const struct pin *p, char *buf, size_t size);

/*
 * Parse "sha256//BASE64" (exactly 44 characters of standard base64 with padding) or 64 hex
 * digits (with or without colons between byte pairs). 0, or -EINVAL with CERTD_E_FIELD_INVALID.
 */
_must_check_ int pin_parse(const char *s, struct pin *ret, struct certd_err *err);

/* Constant-time comparison. */
bool pin_eq(const struct pin *a, const struct pin *b);
