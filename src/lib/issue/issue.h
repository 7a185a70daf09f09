/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue certificates and CRLs: self-signed server certificates (bootstrap), "sign this CSR with
 * that CA key under that profile", and for the CA of issue #4 its self-signed root and its v2
 * CRLs. Serials are random, positive, 128 bits (RFC 5280 §4.1.2.2: at most 20 octets). All
 * certificates are v3, with SKI and AKI.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error/error.h"
#include "keys/keys.h"
#include "util/cleanup.h"

struct selfsign_request {
    const char *common_name;      /* required; e.g. the host name */
    const char *const *alt_names; /* DNS names and IP addresses (and emails, URIs) for the SAN */
    size_t n_alt_names;
    unsigned days; /* validity; 1..CERTD_VALIDITY_DAYS_MAX */
    int64_t now;   /* notBefore (injected clock) */
};

/*
 * Make a self-signed server certificate for key: subject CN (+ nothing else), SAN with the
 * common name (when it is a valid DNS name or IP) and the alt names, basicConstraints CA:FALSE
 * (critical), keyUsage digitalSignature (+ keyEncipherment for RSA), EKU serverAuth, SKI, AKI,
 * random 128-bit serial. Returns 0 and an owned certificate, or a negative errno with err
 * (CERTD_E_FIELD_MISSING, CERTD_E_FIELD_TOO_LONG, CERTD_E_SAN_INVALID,
 * CERTD_E_VALIDITY_INVALID, ...).
 */
_must_check_ int issue_selfsigned(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                                  const struct selfsign_request *req, X509 **ret,
                                  struct certd_err *err);

/* What a CA puts into a certificate it issues from a CSR. */
struct issue_profile {
    unsigned days;          /* validity; capped at the CA's own notAfter */
    uint32_t key_usage;     /* CERT_KU_* bits; 0 = digitalSignature (+ keyEncipherment for RSA),
                               with is_ca: keyCertSign + cRLSign */
    uint32_t eku;           /* CERT_EKU_* bits; 0 = no EKU extension */
    bool is_ca;             /* basicConstraints CA:TRUE (for making intermediates) */
    int path_len;           /* with is_ca: -1 = none */
    bool copy_sans;         /* copy subjectAltName from the CSR's extensionRequest */
    uint32_t allowed_sans;  /* with copy_sans: bit (1u << SAN_DNS) etc. of csr/csr.h */
    struct key_policy keys; /* which CSR keys are accepted; zero = defaults (no Ed25519) */
    /* The subject: with require_cn the CSR must name a CN (-EINVAL, CERTD_E_FIELD_MISSING);
     * with filter_subject only CN and the attributes whose NIDs keep_subject_nids lists are
     * copied, in the CSR's order, the others dropped (a console's CSR may carry anything). */
    bool require_cn;
    bool filter_subject;
    const int *keep_subject_nids;
    size_t n_keep_subject_nids;
    /* Refuse a CSR that asks for more than the profile gives (-EPERM, CERTD_E_POLICY_FORBIDS,
     * naming what it asked for): basicConstraints CA:TRUE from a profile that is not is_ca, key
     * usages beyond the profile's (as computed for this key), extended key usages beyond eku.
     * Without it, requested extensions other than the SAN are ignored. */
    bool refuse_excess_requests;
    /* The caller has verified the CSR's signature already (csr_parse does): step 1 below is
     * skipped, since verifying costs as much as signing. */
    bool is_csr_verified;
    /* The caller only encodes the certificate (a CA handing it out as PEM): its
     * SubjectPublicKeyInfo is then the CSR's, copied byte for byte, and the key is never
     * decoded, which saves OpenSSL 3.0's encode-and-decode of it. X509_get0_pubkey() on such a
     * certificate returns NULL (i2d/d2i it, or use the CSR's key, to have one). */
    bool is_key_not_needed;
};

/*
 * Issue a certificate for csr, signed by ca_key with ca_cert as issuer (NULL ca_cert: a self-
 * signed certificate, subject = issuer = the CSR's subject, for making a root from a CSR). The
 * subject is copied from the CSR. notBefore = now, notAfter = min(now + days, CA's notAfter).
 * Everything is checked before anything is built, in this order:
 *   1. the CSR's signature (-EBADMSG, CERTD_E_CSR_BAD / CSR_SIGNATURE);
 *   2. the CSR's key under profile->keys, as key_check_strength (-EKEYREJECTED with
 *      CERTD_E_KEY_WEAK, -EOPNOTSUPP with CERTD_E_KEY_UNSUPPORTED);
 *   3. the CSR's subject attributes that csr_build also makes, with csr_check_field's rules and
 *      the bounds of util/limits.h (-E2BIG with CERTD_E_FIELD_TOO_LONG naming the attribute
 *      and its bound, -EINVAL with CERTD_E_FIELD_INVALID, -EBADMSG with CERTD_E_CSR_BAD for a
 *      string that does not decode); attributes of other types are copied unchecked;
 *   4. the profile (-EINVAL, CERTD_E_VALIDITY_INVALID: days; CERTD_E_FIELD_INVALID: path_len);
 *   5. ca_cert, when given: basicConstraints CA:TRUE (-EINVAL, CERTD_E_NOT_CA), keyCertSign
 *      when it has a KeyUsage (-EINVAL, CERTD_E_CA_NO_KEYCERTSIGN), a non-empty subject and
 *      readable extensions (-EBADMSG, CERTD_E_CERT_BAD), notBefore <= now (-EKEYEXPIRED,
 *      CERTD_E_CERT_NOT_YET_VALID); a CA expired at now is -EINVAL with
 *      CERTD_E_VALIDITY_INVALID; when issuing a CA (is_ca) under a ca_cert with a
 *      pathLenConstraint N: N = 0 is -EPERM with CERTD_E_POLICY_FORBIDS, and path_len must be
 *      0..N-1 (-EINVAL, CERTD_E_FIELD_INVALID), RFC 5280 §4.2.1.9;
 *   6. ca_key (-EKEYREJECTED, CERTD_E_KEY_MISMATCH: not ca_cert's key; with ca_cert NULL, not
 *      the CSR's key);
 *   7. with copy_sans, the requested SAN: -EPERM with CERTD_E_POLICY_FORBIDS (a kind the
 *      profile does not allow, named in the message), -EBADMSG with CERTD_E_SAN_INVALID (an
 *      entry csr_build would not have made) or CERTD_E_CSR_BAD, -E2BIG with
 *      CERTD_E_TOO_MANY_VALUES;
 *   8. a name (-EINVAL, CERTD_E_FIELD_MISSING): an empty subject needs a copied SAN (RFC 5280
 *      §4.1.2.6), and a self-signed certificate a subject (its issuer name, §4.1.2.4).
 * Also -ENOMEM, -EIO. Returns 0 and an owned certificate in *ret, written only on success.
 * Requested extensions other than the SAN are ignored: the profile decides the usages.
 */
_must_check_ int issue_from_csr(OSSL_LIB_CTX *libctx, const char *propq, X509_REQ *csr,
                                X509 *ca_cert, EVP_PKEY *ca_key,
                                const struct issue_profile *profile, int64_t now, X509 **ret,
                                struct certd_err *err);

/*
 * The checks issue_from_csr makes of the CSR itself, without a CA and without signing: what a
 * CA that forwards CSRs to another signer (certd's exec signer) applies before forwarding, so
 * that the other signer only sees what certd would sign. The CSR's signature (unless
 * profile->is_csr_verified), its key, its subject (bounds, require_cn), its requested SANs
 * (copy_sans), a name, and with refuse_excess_requests what it asks for. 0 or -errno with err,
 * as issue_from_csr.
 */
_must_check_ int issue_check_csr(OSSL_LIB_CTX *libctx, const char *propq, X509_REQ *csr,
                                 const struct issue_profile *profile, struct certd_err *err);

/* A random positive 128-bit serial number. 0, -ENOMEM, -EIO. */
_must_check_ int issue_random_serial(OSSL_LIB_CTX *libctx, ASN1_INTEGER **ret);

/* A self-signed root for the CA of issue #4. */
struct ca_root_request {
    const char *common_name;  /* required; csr_check_field rules, at most X520_CN_MAX */
    const char *organization; /* optional O=; NULL or "" = none; at most X520_ORGANIZATION_MAX */
    unsigned days;            /* validity; 1..CERTD_VALIDITY_DAYS_MAX (the CA default: 3650) */
    int64_t now;              /* notBefore (injected clock) */
    struct key_policy keys;   /* which CA keys are accepted; zero = defaults (no Ed25519) */
};

/*
 * Make a self-signed root for key: subject = issuer = O (when given), CN; basicConstraints
 * CA:TRUE with pathLenConstraint 0 (critical: it signs end-entity certificates only),
 * keyUsage keyCertSign + cRLSign (critical), SKI and AKI (keyid = the SKI), random 128-bit
 * serial, notBefore = now, notAfter = now + days, signed with key_sign_ctx_new (the digest
 * issue_from_csr uses for the key, EVP_DigestSignInit_ex in libctx/propq, so a provider key
 * such as a TPM key signs too). The key is held to the same strength policy as CSR keys: RSA
 * >= 2048 bits, P-256/P-384/P-521, Ed25519 only with req->keys.allow_ed25519 (off by default,
 * as for issue_profile: many TLS peers cannot check an Ed25519 chain).
 * Checked before anything is built, in this order: common_name (-EINVAL, CERTD_E_FIELD_MISSING;
 * -E2BIG, CERTD_E_FIELD_TOO_LONG; -EINVAL, CERTD_E_FIELD_INVALID), organization (the same
 * codes), days (-EINVAL, CERTD_E_VALIDITY_INVALID, also when the period cannot be
 * represented), the key (-EKEYREJECTED, CERTD_E_KEY_WEAK; -EOPNOTSUPP,
 * CERTD_E_KEY_UNSUPPORTED). Also -ENOMEM, -EIO (CERTD_E_INTERNAL: the key cannot sign, no
 * randomness). Returns 0 and an owned certificate in *ret, written only on success.
 * Thread-safety: re-entrant; libctx may be shared.
 */
_must_check_ int issue_ca_root(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                               const struct ca_root_request *req, X509 **ret,
                               struct certd_err *err);

/*
 * Revoked certificates one CRL may list. An entry is 42 bytes of DER but about 640 bytes of
 * memory while the CRL is built (OpenSSL's structures, once built and once decoded): 100 000
 * entries make a 4 MiB CRL and cost some 65 MiB at peak, while a million would cost over
 * 600 MiB, more than many BMCs have. A console CA revokes a handful of certificates a year, so a
 * runaway revocation log fails loudly here instead of exhausting the daemon's memory.
 */
#define ISSUE_CRL_ENTRIES_MAX 100000u

/* One entry of a CRL. */
struct crl_entry {
    const ASN1_INTEGER *serial; /* borrowed; positive, at most 20 octets (RFC 5280 §4.1.2.2) */
    int64_t revoked_at;         /* revocationDate; 0..now (the CRL's thisUpdate) */
    int reason; /* RFC 5280 CRLReason 0-6, 8-10; 0 (unspecified) is left out, as §5.3.1 asks */
};

/*
 * A v2 CRL signed by ca_key for ca_cert: issuer = ca_cert's subject, thisUpdate = now,
 * nextUpdate = now + next_update_seconds capped at the CA's notAfter, entries[0..n) in the order
 * given (duplicates are the caller's to avoid), each with its revocationDate and, unless the
 * reason is 0, a reasonCode extension; cRLNumber = number (non-critical, RFC 5280 §5.2.3; the
 * caller keeps it increasing), AKI keyid = ca_cert's SKI (computed from its key when it has
 * none). n may be 0 (an empty CRL). Signed with key_sign_ctx_new and X509_CRL_sign_ctx.
 * Checked before anything is built, in this order:
 *   1. n <= ISSUE_CRL_ENTRIES_MAX (-E2BIG, CERTD_E_TOO_MANY_VALUES);
 *   2. next_update_seconds in 1..CERTD_VALIDITY_DAYS_MAX days (-EINVAL,
 *      CERTD_E_VALIDITY_INVALID);
 *   3. each entry, naming its index: a serial that is a positive integer of at most 20 octets
 *      and a reason RFC 5280 §5.3.1 defines (-EINVAL, CERTD_E_FIELD_INVALID), revoked_at in
 *      0..now (-EINVAL, CERTD_E_VALIDITY_INVALID);
 *   4. ca_cert as for issue_from_csr, but with cRLSign in place of keyCertSign: CA:TRUE
 *      (-EINVAL, CERTD_E_NOT_CA), cRLSign when it has a keyUsage (-EINVAL,
 *      CERTD_E_KEY_USAGE_MISMATCH), a non-empty subject and readable extensions (-EBADMSG,
 *      CERTD_E_CERT_BAD), notBefore <= now (-EKEYEXPIRED, CERTD_E_CERT_NOT_YET_VALID), not
 *      expired at now (-EINVAL, CERTD_E_VALIDITY_INVALID);
 *   5. ca_key is ca_cert's key (-EKEYREJECTED, CERTD_E_KEY_MISMATCH).
 * Also -ENOMEM, -EIO (CERTD_E_INTERNAL). Returns 0 and an owned CRL in *ret, written only on
 * success: decoded from its signed DER, so i2d_X509_CRL gives exactly the bytes signed even
 * after OpenSSL's lookups have sorted its entries in memory. entries and their serials are
 * borrowed for the call. Thread-safety: re-entrant.
 */
_must_check_ int issue_crl(OSSL_LIB_CTX *libctx, const char *propq, X509 *ca_cert, EVP_PKEY *ca_key,
                           const struct crl_entry *entries, size_t n, uint64_t number, int64_t now,
                           int64_t next_update_seconds, X509_CRL **ret, struct certd_err *err);
