/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validate a parsed bundle for an endpoint type, returning the first violated rule.
 *
 * server/client, in this order (issue #2):
 *   1. exactly one leaf: the FIRST certificate is the end-entity certificate, whatever its
 *      basicConstraints (a self-signed CA:TRUE certificate from `openssl req -x509` is a valid
 *      HTTPS certificate); no following one may be an explicit end entity (basicConstraints
 *      CA:FALSE, or v3 without basicConstraints);
 *   2. a private key that matches the leaf: the key in the upload, or else the pending CSR key;
 *   3. key strength (keys/keys.h) of every certificate's key, the leaf's first;
 *   4. the chain: at most CERTD_CHAIN_DEPTH_MAX certificates; none repeated; every one after the
 *      leaf a CA (X509_check_ca: CA:TRUE with keyCertSign when KeyUsage is present, or a
 *      self-signed v1 root); each issued by the next (names and signature); pathLenConstraint
 *      (RFC 5280 §4.2.1.9) held over the upload's positions; every signature at least 112-bit
 *      strong (no MD5 or SHA-1), except a self-signed last certificate's own;
 *   5. EKU, when present, must include serverAuth (server) or clientAuth (client) or
 *      anyExtendedKeyUsage; KeyUsage, when present, must allow signing (digitalSignature, or
 *      keyEncipherment for RSA);
 *   6. expired / not-yet-valid per policy (default: accept with a warning, because a controller
 *      may boot with a 1970 clock); notBefore before 1970 is always rejected.
 *   A reversed upload (intermediate first) is reported as CHAIN_ORDER ("must come first"), not as
 *   a key mismatch or a second leaf: when the key (upload or pending) matches a later certificate
 *   instead of the first, that certificate is named with its position; without such a key, when
 *   certificate 0 is a CA and exactly one later certificate is an end entity, that one is named.
 * authority: CA certificates only (basicConstraints CA:TRUE, keyCertSign when KeyUsage is
 *   present); a private key in the upload is refused and never stored; key strength; signatures
 *   at least 112-bit strong except a self-signed certificate's own; duplicates (same subject,
 *   issuer and serial) within the upload or with `existing` refused; at most policy->max_certs
 *   counting `existing`.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error/error.h"
#include "keys/keys.h"
#include "x509/bundle.h"

enum endpoint_type { ENDPOINT_SERVER, ENDPOINT_CLIENT, ENDPOINT_AUTHORITY, ENDPOINT_TYPE_MAX };

enum validity_policy {
    VALIDITY_ACCEPT_WARN, /* accept, and report a warning */
    VALIDITY_REJECT,
    VALIDITY_POLICY_MAX
};

struct validate_policy {
    enum validity_policy expired;
    enum validity_policy not_yet_valid;
    struct key_policy keys;
    size_t max_certs; /* authority limit; 0 means CERTD_AUTHORITY_MAX_DEFAULT */
    int64_t now;      /* injected clock, seconds since the epoch */
};

/* The defaults: accept-with-warning for both validity checks, no Ed25519, limit 10. */
void validate_policy_init(struct validate_policy *pol, int64_t now);

struct validate_result {
    bool uses_pending_key; /* the bundle had no key and the pending CSR key matched */
    bool is_expired;
    bool is_not_yet_valid;
    char warning[256]; /* "" or a message for the user, e.g. "the certificate expired on ..." */
};

/*
 * Validate bundle `b` for `type`. pending_key (nullable, borrowed) is the key of the last CSR
 * generated for the endpoint. existing (nullable, borrowed) holds the authority's current
 * certificates, for the duplicate and limit checks. Returns 0 and fills *ret, or a negative
 * errno with the first violated rule in err (codes in error.h: CERTD_E_NOT_ONE_LEAF,
 * CERTD_E_KEY_MISSING, CERTD_E_KEY_MISMATCH, CERTD_E_KEY_WEAK, CERTD_E_KEY_UNSUPPORTED,
 * CERTD_E_CHAIN_ORDER, CERTD_E_CHAIN_TOO_LONG, CERTD_E_SIGNATURE_WEAK, CERTD_E_ALG_UNSUPPORTED,
 * CERTD_E_EKU_MISMATCH, CERTD_E_KEY_USAGE_MISMATCH, CERTD_E_CERT_EXPIRED,
 * CERTD_E_CERT_NOT_YET_VALID, CERTD_E_CERT_BEFORE_1970, CERTD_E_NOT_CA, CERTD_E_CA_NO_KEYCERTSIGN,
 * CERTD_E_KEY_NOT_ALLOWED, CERTD_E_DUPLICATE, CERTD_E_LIMIT_REACHED, CERTD_E_CERT_BAD).
 * errno by rule:
 *   -EINVAL       NOT_ONE_LEAF (a later certificate is an end entity: CA:FALSE, or v3 without
 *                 basicConstraints), CHAIN_ORDER (the end entity or the key's certificate is not
 *                 first, a certificate repeats an earlier one, or a link does not verify),
 *                 KEY_MISSING, EKU_MISMATCH, KEY_USAGE_MISMATCH, NOT_CA (authority: no CA:TRUE;
 *                 chain: a v1/v2 certificate that is not a self-signed root), CA_NO_KEYCERTSIGN
 *                 (authority, or a chain CA); also a NULL/out-of-range argument (err untouched)
 *   -E2BIG        CHAIN_TOO_LONG (more than CERTD_CHAIN_DEPTH_MAX, or a CA's pathLenConstraint
 *                 exceeded), LIMIT_REACHED
 *   -EKEYREJECTED KEY_MISMATCH (the key matches no certificate of the upload), KEY_WEAK,
 *                 SIGNATURE_WEAK (MD5, SHA-1 or anything under 112 bits of security)
 *   -EOPNOTSUPP   KEY_UNSUPPORTED (keys/keys.h); ALG_UNSUPPORTED (a signature algorithm OpenSSL
 *                 cannot rate)
 *   -EKEYEXPIRED  CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_BEFORE_1970
 *   -EPERM        KEY_NOT_ALLOWED;  -EEXIST DUPLICATE (authority only)
 *   -EBADMSG      CERT_BAD: repeated or malformed extensions (any certificate, checked with rule
 *                 1), an undecodable date or public key
 * Order for server/client: rules 1 to 6 above; a key that matches only a later certificate is
 * CHAIN_ORDER at rule 1 when that certificate is the misplaced end entity, else at rule 2.
 * Validity: pre-1970 for every certificate; expired / not-yet-valid only for the leaf, since
 * intermediates are the issuer's business. For authority: key in the upload; per certificate
 * CA, keyCertSign, key strength, signature strength, validity; duplicates; the limit (max_certs,
 * clamped to CERTD_AUTHORITY_MAX_HARD). Warnings: the first one found is kept in ret->warning.
 * libctx/propq are accepted for symmetry; the objects judged are already bound to them.
 */
_must_check_ int validate_bundle(OSSL_LIB_CTX *libctx, const char *propq, const struct bundle *b,
                                 enum endpoint_type type, const struct validate_policy *pol,
                                 EVP_PKEY *pending_key, const STACK_OF(X509) *existing,
                                 struct validate_result *ret, struct certd_err *err);

/*
 * "server", "client", "authority" (NULL for an out-of-range value); and back
 * (case-insensitive): 0 or -EINVAL, *ret written only on success.
 */
const char *endpoint_type_name(enum endpoint_type t);
_must_check_ int endpoint_type_from_name(const char *s, enum endpoint_type *ret);
