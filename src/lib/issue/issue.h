/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue certificates: self-signed server certificates (bootstrap) and "sign this CSR with that
 * CA key under that profile" (the CA of issue #4 builds on it). Serials are random, positive,
 * 128 bits (RFC 5280 §4.1.2.2: at most 20 octets). All v3, with SKI and AKI.
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

/* A random positive 128-bit serial number. 0, -ENOMEM, -EIO. */
_must_check_ int issue_random_serial(OSSL_LIB_CTX *libctx, ASN1_INTEGER **ret);
