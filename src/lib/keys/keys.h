/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys: naming, generating, describing, strength policy and PEM encoding. Keys exist only as
 * EVP_PKEY; every call that creates or fetches passes the OSSL_LIB_CTX and property query it is
 * given, so that a provider (tpm2, fips) can serve it. A private key never appears in a message.
 * Thread-safety: all functions are re-entrant; a libctx may be shared between threads.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "error/error.h"
#include "util/cleanup.h"
#include "util/secret.h"

enum key_alg { KEY_ALG_RSA, KEY_ALG_EC, KEY_ALG_ED25519, KEY_ALG_MAX };

/* What key to make: RSA with bits, EC with an OpenSSL group name, or Ed25519. */
struct key_spec {
    enum key_alg alg;
    unsigned bits;  /* RSA: 2048, 3072 or 4096; EC: the curve's size; Ed25519: 256 */
    char curve[16]; /* EC: canonical NIST name "P-256", "P-384", "P-521"; else "" */
};

/* Policy for keys we accept from outside (uploads, CSRs) and make. */
struct key_policy {
    bool allow_ed25519; /* Ed25519 leaf keys: off by default (not all TLS peers take them) */
};

/*
 * Build a spec from an algorithm name and an optional size or curve, as Redfish GenerateCSR and
 * configuration give them. Algorithm names: "RSA", "EC", "ECDSA", "Ed25519", "TPM_ALG_RSA",
 * "TPM_ALG_ECC", "TPM_ALG_ECDSA" (case-insensitive). Curves: "P-256", "prime256v1",
 * "secp256r1", "TPM_ECC_NIST_P256" (and the 384/521 equivalents; "secp384r1", "secp521r1").
 * RSA sizes: bits = 0 means 2048; 2048, 3072, 4096 accepted. For EC a NULL curve means P-256.
 * Returns 0, or -EOPNOTSUPP with CERTD_E_ALG_UNSUPPORTED / CERTD_E_KEY_SIZE_UNSUPPORTED /
 * CERTD_E_CURVE_UNSUPPORTED in err, err->field naming the argument at fault by its Redfish
 * name: "KeyPairAlgorithm", "KeyBitLength" or "KeyCurveId" (a curve given for RSA or Ed25519
 * is the curve's fault). *ret is written only on success.
 */
_must_check_ int key_spec_from_names(const char *alg, unsigned bits, const char *curve,
                                     struct key_spec *ret, struct certd_err *err);

/*
 * Parse the configuration form "ALG[:SIZE|CURVE]": "ec", "ec:P-384", "rsa:3072", "rsa",
 * "ed25519" (case-insensitive). Same errors as key_spec_from_names; -EINVAL with
 * CERTD_E_FIELD_INVALID for a malformed string.
 */
_must_check_ int key_spec_parse(const char *s, struct key_spec *ret, struct certd_err *err);

/* Format a spec as "ec:P-256" / "rsa:2048" / "ed25519" into buf (at least 24 bytes). */
void key_spec_format(const struct key_spec *spec, char *buf, size_t size);

/*
 * Generate a fresh key pair in libctx/propq. Returns 0 and an owned key in *ret, or -ENOMEM,
 * -EOPNOTSUPP (the provider cannot make it) or -EIO, with err filled. Slow for RSA: callers on
 * an event loop run it on a worker.
 */
_must_check_ int key_generate(OSSL_LIB_CTX *libctx, const char *propq, const struct key_spec *spec,
                              EVP_PKEY **ret, struct certd_err *err);

/* What a key is, for display and policy. */
struct key_info {
    enum key_alg alg;  /* KEY_ALG_MAX when the algorithm is none of ours */
    char alg_name[16]; /* "RSA", "EC", "ED25519", or OpenSSL's name of another type */
    int bits;
    char curve[16]; /* EC: "P-256" etc. when known, else the OpenSSL group name; else "" */
};

/* Describe a (public or private) key. 0, or -EINVAL when pkey is NULL. */
_must_check_ int key_describe(const EVP_PKEY *pkey, struct key_info *ret);

/*
 * Check a key against certd's strength policy: RSA >= 2048 bits, EC on P-256/P-384/P-521,
 * Ed25519 only when policy allows. `what` names the key in the message ("the certificate's
 * key"). Returns 0, or -EKEYREJECTED with CERTD_E_KEY_WEAK, or -EOPNOTSUPP with
 * CERTD_E_KEY_UNSUPPORTED.
 */
_must_check_ int key_check_strength(const EVP_PKEY *pkey, const struct key_policy *policy,
                                    const char *what, struct certd_err *err);

/* True when both keys hold the same public key (EVP_PKEY_eq). */
bool key_public_eq(const EVP_PKEY *a, const EVP_PKEY *b);

/*
 * Encode the private key as unencrypted PKCS#8 PEM into a new secret (wiped when freed).
 * Returns 0, -ENOMEM or -EIO.
 */
_must_check_ int key_private_to_pem(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey,
                                    struct secret **ret);

/* Encode the public key as SubjectPublicKeyInfo PEM; *ret is malloc'd and NUL-terminated. */
_must_check_ int key_public_to_pem(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey,
                                   char **ret);

/*
 * The signature digest we use with a key: "SHA256" for RSA and P-256, "SHA384" for P-384 and
 * P-521, NULL for Ed25519 (which signs without a separate digest).
 */
const char *key_default_digest(const EVP_PKEY *pkey);

/*
 * A digest-sign context for key with key_default_digest() fetched in libctx/propq, ready for
 * X509_sign_ctx / X509_REQ_sign_ctx / X509_CRL_sign_ctx: one place decides how certd signs.
 * Returns 0 and an owned context, or -ENOMEM / -EIO (CERTD_E_INTERNAL) with err.
 */
_must_check_ int key_sign_ctx_new(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                                  EVP_MD_CTX **ret, struct certd_err *err);

/* The canonical NIST name ("P-256") for an OpenSSL group name, or NULL if not a supported one. */
const char *key_curve_nist_name(const char *group);
