/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Build PKCS#10 certificate signing requests from every field of Redfish GenerateCSR.
 * Subject attributes go into the subject; AlternativeNames and KeyUsage go into a real
 * extensionRequest attribute (subjectAltName, keyUsage, extendedKeyUsage), never into the
 * subject (the reference implementation gets this wrong); ChallengePassword becomes the PKCS#9
 * challengePassword attribute. Lengths follow the X.520 upper bounds in util/limits.h.
 */
#pragma once

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error/error.h"
#include "util/cleanup.h"

/*
 * The request, with Redfish's field names in the comments. Every string is borrowed, UTF-8,
 * NUL-terminated; NULL or "" means absent.
 */
struct csr_request {
    const char *common_name;         /* CommonName: required, 1..64 */
    const char *const *alt_names;    /* AlternativeNames: DNS names, IPv4/IPv6, emails, URIs */
    size_t n_alt_names;
    const char *const *key_usage;    /* KeyUsage: Redfish KeyUsage enum names */
    size_t n_key_usage;
    const char *city;                /* City -> L */
    const char *state;               /* State -> ST */
    const char *country;             /* Country -> C: exactly two letters */
    const char *organization;        /* Organization -> O */
    const char *organizational_unit; /* OrganizationalUnit -> OU */
    const char *email;               /* Email -> emailAddress */
    const char *given_name;          /* GivenName -> GN */
    const char *surname;             /* Surname -> SN */
    const char *initials;            /* Initials */
    const char *unstructured_name;   /* UnstructuredName -> PKCS#9 unstructuredName (subject) */
    const char *contact_person;      /* ContactPerson -> name attribute (2.5.4.41) in subject */
    const char *challenge_password;  /* ChallengePassword -> PKCS#9 challengePassword attribute */
};

/*
 * Check the request and build a CSR signed with key (SHA-256; SHA-384 for P-384/P-521; none
 * for Ed25519). Returns 0 and an owned X509_REQ in *ret, or a negative errno with err:
 * CERTD_E_FIELD_MISSING (no CommonName), CERTD_E_FIELD_TOO_LONG (naming the field and its
 * bound), CERTD_E_FIELD_INVALID (bad country, control characters or NUL, not UTF-8),
 * CERTD_E_SAN_INVALID (an alternative name that is none of DNS, IP, email, URI),
 * CERTD_E_KEY_USAGE_INVALID (unknown KeyUsage name), CERTD_E_TOO_MANY_VALUES (over
 * CERTD_SANS_MAX or CERTD_KEY_USAGES_MAX). The challenge password never appears in a message.
 */
_must_check_ int csr_build(OSSL_LIB_CTX *libctx, const char *propq, const struct csr_request *req,
                           EVP_PKEY *key, X509_REQ **ret, struct certd_err *err);

/* PEM-encode a CSR into a malloc'd NUL-terminated string. 0, -ENOMEM, -EIO. */
_must_check_ int csr_to_pem(const X509_REQ *req, char **ret, size_t *ret_len);

/*
 * Parse one PEM CSR (label CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST), at most max_input
 * bytes, nothing but white space around it, and verify its self-signature (proof of
 * possession). Returns 0 and an owned X509_REQ, or a negative errno with CERTD_E_INPUT_EMPTY,
 * CERTD_E_INPUT_TOO_LARGE, CERTD_E_INPUT_GARBAGE, CERTD_E_CSR_BAD, CERTD_E_TRAILING_DATA,
 * CERTD_E_TOO_MANY_VALUES (more than one CSR) or CERTD_E_CSR_SIGNATURE.
 */
_must_check_ int csr_parse(OSSL_LIB_CTX *libctx, const char *propq, const void *data, size_t len,
                           size_t max_input, X509_REQ **ret, struct certd_err *err);

/*
 * Classify one alternative name as csr_build does: 0 DNS, 1 IP, 2 email, 3 URI;
 * -EINVAL when it is none of them.
 */
enum san_kind {
    SAN_DNS,
    SAN_IP,
    SAN_EMAIL,
    SAN_URI,
    SAN_KIND_MAX
};
_must_check_ int san_classify(const char *s, enum san_kind *ret);

/*
 * Map Redfish KeyUsage names to KU_* and EKU_* bits (x509/inspect.h). Names: DigitalSignature,
 * NonRepudiation, KeyEncipherment, DataEncipherment, KeyAgreement, KeyCertSign, CRLSigning,
 * EncipherOnly, DecipherOnly, ServerAuthentication, ClientAuthentication, CodeSigning,
 * EmailProtection, Timestamping, OCSPSigning. Duplicates are harmless. 0 or -EINVAL with
 * CERTD_E_KEY_USAGE_INVALID naming the unknown entry.
 */
_must_check_ int key_usage_from_redfish(const char *const *names, size_t n, uint32_t *ret_ku,
                                        uint32_t *ret_eku, struct certd_err *err);
