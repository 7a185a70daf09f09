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

/* Longest provider name we keep (OpenSSL's own are short: "default", "fips", "tpm2"). */
#define KEY_PROVIDER_NAME_MAX 31u

/*
 * Whether s[0..len) is a provider name certd takes: 1..KEY_PROVIDER_NAME_MAX of [a-z0-9_-] (a
 * module file name, and safe in configuration text and messages). The one check for key specs,
 * [providers] and providers_libctx_new.
 */
bool key_provider_name_is_valid(const char *s, size_t len);

/*
 * The same for a NUL-terminated s (NULL: false), read at most KEY_PROVIDER_NAME_MAX + 1 bytes
 * into: a key_spec's provider without a terminator is refused, never overrun.
 */
bool key_provider_name_str_is_valid(const char *s);

/*
 * What key to make: RSA with bits, EC with an OpenSSL group name, or Ed25519; and where: in the
 * provider named `provider` (issue #5: "tpm2" makes the key inside the TPM, where it stays), or,
 * with provider "", wherever the library context's default properties send a key generation.
 */
struct key_spec {
    enum key_alg alg;
    unsigned bits;  /* RSA: 2048, 3072 or 4096; EC: the curve's size; Ed25519: 256 */
    char curve[16]; /* EC: canonical NIST name "P-256", "P-384", "P-521"; else "" */
    char provider[KEY_PROVIDER_NAME_MAX + 1]; /* "" or a provider name: [a-z0-9_-], 1..31 */
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
 * Parse the configuration form "[PROVIDER:]ALG[:SIZE|CURVE]": "ec", "ec:P-384", "rsa:3072",
 * "rsa", "ed25519", "tpm2:ec:P-256", "tpm2:rsa" (algorithm and curve case-insensitive; the
 * provider as written, [a-z0-9_-] only, 1..KEY_PROVIDER_NAME_MAX; at most 64 characters in
 * all). The first word is a provider when it is not an algorithm name: with three words, and
 * with two when the second is an algorithm ("tpm2:ec"); two words neither of which is an
 * algorithm ("dsa:1024") are CERTD_E_ALG_UNSUPPORTED. Same errors as key_spec_from_names;
 * -EINVAL with CERTD_E_FIELD_INVALID for a malformed string or provider name. Whether the
 * provider exists is not checked here (the configuration checks it against [providers] load).
 * *ret is written only on success; without a provider, ret->provider is "".
 */
_must_check_ int key_spec_parse(const char *s, struct key_spec *ret, struct certd_err *err);

/*
 * Format a spec as "ec:P-256" / "rsa:2048" / "ed25519", "tpm2:ec:P-256" with a provider, into
 * buf (KEY_SPEC_STR_MAX bytes always suffice; a shorter buf gets a truncated, NUL-terminated
 * string). What key_spec_parse reads, key_spec_format writes back the same. A malformed
 * provider name is left out.
 */
#define KEY_SPEC_STR_MAX (KEY_PROVIDER_NAME_MAX + 32u)
void key_spec_format(const struct key_spec *spec, char *buf, size_t size);

/*
 * Generate a fresh key pair in libctx/propq; with spec->provider set, in that provider and no
 * other (the fetch requires "provider=NAME", merged with propq, which must then not name a
 * provider itself; and the key made is checked to come from there: never a silent software
 * key). Returns 0 and an owned key in *ret, or -ENOMEM, -EOPNOTSUPP (the provider cannot make
 * it, or is not loaded: CERTD_E_ALG_UNSUPPORTED naming the provider; an unsupported size or
 * curve: CERTD_E_KEY_SIZE_UNSUPPORTED / CERTD_E_CURVE_UNSUPPORTED), -EINVAL
 * (CERTD_E_FIELD_INVALID: a malformed spec->provider, or propq too long), -EIO (generation
 * failed: CERTD_E_UNAVAILABLE when spec names a provider, for that is one that keeps its keys
 * in a device that may be gone, e.g. a TPM that cannot be reached; CERTD_E_INTERNAL
 * otherwise), with err filled. Slow for RSA and for hardware: callers on an event loop run it
 * on a worker (held keys: on the key lane, see key_is_held).
 */
_must_check_ int key_generate(OSSL_LIB_CTX *libctx, const char *propq, const struct key_spec *spec,
                              EVP_PKEY **ret, struct certd_err *err);

/*
 * Parameters that every key generation in provider `provider` gets on top of the algorithm's
 * (issue #5: tpm2's "parent" and "parent-auth", for keys made under a persistent parent with a
 * password). params (nullable: forget the provider's) is copied, strings included; the copy is
 * wiped when replaced or cleared. Call at start-up, before any thread uses keys: the table is
 * read without a lock. 0, -EINVAL, -E2BIG (more than KEY_KEYGEN_PROVIDERS_MAX providers),
 * -ENOMEM. key_clear_provider_keygen_params wipes and forgets them all (at exit).
 */
#define KEY_KEYGEN_PROVIDERS_MAX 8u
_must_check_ int key_set_provider_keygen_params(const char *provider, const OSSL_PARAM *params);
void key_clear_provider_keygen_params(void);

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

/*
 * The name of the provider whose key management holds pkey ("default", "tpm2" ...), borrowed
 * for as long as the provider is loaded; "" when OpenSSL does not say (a legacy key).
 */
const char *key_provider_name(const EVP_PKEY *pkey);

/*
 * True when pkey's private half stays inside its provider: it has one (a key pair) but the
 * provider exports only the public half (a TPM key). Such a key can sign only through its own
 * provider's signature (key_sign_ctx_new does so), its PEM is the provider's own wrapping (a
 * "TSS2 PRIVATE KEY" blob, useless without that TPM), and, with a provider that is not
 * thread-safe, every use must be serialised (certd's key lane). False for software keys, for
 * public-only keys and for NULL. Decided from what the key's provider does, never from its
 * name: the key pair's export holds nothing more than the public key's, and the key management
 * still says it has a private half (EVP_PKEY_private_check). Costs two exports (a software
 * key's private numbers are wiped after) and that check; no device is asked.
 */
bool key_is_held(const EVP_PKEY *pkey);

/*
 * The property query for operations that must use pkey's own provider (signing, encoding):
 * propq (may be NULL or "") followed by "?provider=NAME" for pkey's provider, into buf: a
 * preference, so that an operation the provider lacks still comes from another one. Returns
 * buf, or NULL (then callers use propq as it is) when it does not fit (KEY_QUERY_MAX always
 * fits a propq of up to PROVIDER_QUERY_MAX), when pkey is NULL or has no provider name, or when
 * propq already has a term about "provider" (OpenSSL refuses a query naming a property twice;
 * the caller's choice stands).
 */
#define KEY_QUERY_MAX 256u
const char *key_query_for(const EVP_PKEY *pkey, const char *propq, char *buf, size_t size);

/* True when both keys hold the same public key (EVP_PKEY_eq). */
bool key_public_eq(const EVP_PKEY *a, const EVP_PKEY *b);

/*
 * A public-only copy of pkey: its SubjectPublicKeyInfo encoded, then decoded in libctx/propq,
 * so that the copy belongs to a provider that decodes public keys (a software one), never to
 * pkey's (tpm2.md P7: a TPM key's public half is "too small" for TLS, and keeping a held key
 * keeps a TPM object slot). For keeping a held key's public half while the key itself is freed.
 * Returns 0 and an owned key in *ret, -EINVAL (NULL arguments), -ENOMEM or -EIO (no public
 * half to encode, or it does not decode).
 */
_must_check_ int key_public_dup(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey,
                                EVP_PKEY **ret);

/*
 * Encode the private key as unencrypted PKCS#8 PEM into a new secret (wiped when freed); a held
 * key (key_is_held) as its provider's own PEM ("-----BEGIN TSS2 PRIVATE KEY-----" for a TPM
 * key: a blob that only that TPM can load). The encoder is fetched with key_query_for, so the
 * key's own provider writes it. Returns 0, -ENOMEM or -EIO (a public key; no encoder).
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
 * The signature comes from the key's own provider (key_query_for): OpenSSL would otherwise
 * fetch it from the first provider loaded, export a held key there as its public half, and
 * fail with "missing private key". Returns 0 and an owned context, or -ENOMEM / -EIO
 * (CERTD_E_INTERNAL) with err.
 */
_must_check_ int key_sign_ctx_new(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                                  EVP_MD_CTX **ret, struct certd_err *err);

/* The canonical NIST name ("P-256") for an OpenSSL group name, or NULL if not a supported one. */
const char *key_curve_nist_name(const char *group);
