/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Build PKCS#10 certificate signing requests from every field of Redfish GenerateCSR.
 * Subject attributes go into the subject; AlternativeNames and KeyUsage go into a real
 * extensionRequest attribute (subjectAltName, keyUsage, extendedKeyUsage), never into the
 * subject (the reference implementation gets this wrong); ChallengePassword becomes the PKCS#9
 * challengePassword attribute. Lengths follow the bounds in util/limits.h: X.520's, or certd's
 * own caps where X.520 has no useful one (GivenName, Surname, Initials, ContactPerson).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "error/error.h"
#include "util/cleanup.h"

/*
 * The request, with Redfish's field names in the comments. Every string is borrowed, UTF-8,
 * NUL-terminated; NULL or "" means absent.
 */
struct csr_request {
    /*
     * Renew/Rekey (borrowed, nullable): ask for this certificate's subject exactly (every
     * attribute, in its order, with its string type) and its subjectAltName, every name as it
     * is. The subject fields (common_name .. contact_person) and alt_names must then be absent;
     * key_usage and challenge_password are checked as for GenerateCSR.
     */
    const X509 *from_cert;
    const char *common_name;      /* CommonName: required (unless from_cert), 1..64 */
    const char *const *alt_names; /* AlternativeNames: DNS names, IPv4/IPv6, emails, URIs */
    size_t n_alt_names;
    const char *const *key_usage; /* KeyUsage: Redfish KeyUsage enum names */
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
 * for Ed25519), signing once. Returns 0 and an owned X509_REQ in *ret, or a negative errno
 * with err: CERTD_E_FIELD_MISSING (no CommonName), CERTD_E_FIELD_TOO_LONG (naming the field and
 * its bound), CERTD_E_FIELD_INVALID (bad country, control characters or NUL, not UTF-8),
 * CERTD_E_SAN_INVALID (an alternative name that is none of DNS, IP, email, URI),
 * CERTD_E_KEY_USAGE_INVALID (unknown KeyUsage name), CERTD_E_TOO_MANY_VALUES (over
 * CERTD_SANS_MAX or CERTD_KEY_USAGES_MAX; for from_cert, a certificate with more than
 * CERTD_SANS_MAX alternative names), CERTD_E_CERT_BAD (-EBADMSG: from_cert's subjectAltName
 * does not decode or appears twice); -EINVAL without err when from_cert comes with subject
 * fields or alt_names (a caller's mistake). The challenge password never appears in a message.
 * errno: -E2BIG for FIELD_TOO_LONG and TOO_MANY_VALUES, -EINVAL for the other input errors,
 * -ENOMEM, -EIO (CERTD_E_INTERNAL: the key cannot sign). Country is upper-cased; Email and
 * UnstructuredName must be ASCII (IA5String) and Email a valid local@domain address; a field
 * of only spaces is refused; *ret is written only on success.
 */
_must_check_ int csr_build(OSSL_LIB_CTX *libctx, const char *propq, const struct csr_request *req,
                           EVP_PKEY *key, X509_REQ **ret, struct certd_err *err);

/*
 * Every check csr_build makes on req, without a key: the same rules, messages, codes and errno
 * (csr_build calls it first, so that both can never disagree). For front ends that must refuse a
 * bad request before they make a key for it (D-Bus GenerateCSR answers at once, and the key is
 * made later on a worker). 0, or a negative errno with err as csr_build documents (also -ENOMEM;
 * never CERTD_E_INTERNAL or CERTD_E_KEY_BAD, which only signing can cause); -EINVAL without err
 * for a caller's mistake (req NULL, a count with a NULL array, from_cert with subject fields).
 * n_alt_names and n_key_usage are checked against their bounds before any entry is read, so a
 * caller may report "one more than the bound" with an array of the bound's size. Pure,
 * thread-safe.
 */
_must_check_ int csr_check_request(const struct csr_request *req, struct certd_err *err);

/* PEM-encode a CSR into a malloc'd NUL-terminated string. 0, -ENOMEM, -EIO. */
_must_check_ int csr_to_pem(const X509_REQ *req, char **ret, size_t *ret_len);

/*
 * Parse one PEM CSR (label CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST), at most max_input
 * bytes, nothing but white space around it, and verify its self-signature (proof of
 * possession). Returns 0 and an owned X509_REQ, or a negative errno with CERTD_E_INPUT_EMPTY,
 * CERTD_E_INPUT_TOO_LARGE, CERTD_E_INPUT_GARBAGE, CERTD_E_CSR_BAD, CERTD_E_TRAILING_DATA,
 * CERTD_E_TOO_MANY_VALUES (more than one CSR) or CERTD_E_CSR_SIGNATURE; also
 * CERTD_E_PEM_UNEXPECTED_LABEL (a PEM block of another kind) and CERTD_E_PEM_TRUNCATED (no END
 * line). errno: -EINVAL empty, -E2BIG too large or several CSRs, -EBADMSG otherwise, -ENOMEM.
 * max_input 0 means CERTD_INPUT_MAX_DEFAULT; it is capped at CERTD_INPUT_MAX_HARD.
 */
_must_check_ int csr_parse(OSSL_LIB_CTX *libctx, const char *propq, const void *data, size_t len,
                           size_t max_input, X509_REQ **ret, struct certd_err *err);

/*
 * Classify one alternative name as csr_build does: 0 DNS, 1 IP, 2 email, 3 URI;
 * -EINVAL when it is none of them. In this order: an IPv4/IPv6 address (inet_pton); a
 * dot-atom local@domain; an absolute URI (RFC 3986 scheme, visible ASCII only); a host name of
 * LDH labels (1..63 each, at most 253, an optional leading "*." label, one optional trailing
 * dot, a last label that is not all digits). *ret is written only on success.
 */
enum san_kind { SAN_DNS, SAN_IP, SAN_EMAIL, SAN_URI, SAN_KIND_MAX };
_must_check_ int san_classify(const char *s, enum san_kind *ret);

/*
 * Map Redfish KeyUsage names to CERT_KU_* and CERT_EKU_* bits (x509/inspect.h). Names:
 * DigitalSignature, NonRepudiation, KeyEncipherment, DataEncipherment, KeyAgreement, KeyCertSign,
 * CRLSigning, EncipherOnly, DecipherOnly, ServerAuthentication, ClientAuthentication, CodeSigning,
 * EmailProtection, Timestamping, OCSPSigning. Duplicates are harmless. 0 or -EINVAL with
 * CERTD_E_KEY_USAGE_INVALID naming the unknown entry.
 */
_must_check_ int key_usage_from_redfish(const char *const *names, size_t n, uint32_t *ret_ku,
                                        uint32_t *ret_eku, struct certd_err *err);

/* Every Redfish KeyUsage name, in the schema's order (the table key_usage_from_redfish reads). */
#define CSR_REDFISH_KEY_USAGES_MAX 15u
/*
 * The reverse: the Redfish names of the CERT_KU_* bits in ku and CERT_EKU_* bits in eku, in
 * the schema's order, into names[0..max); returns how many (UINT32_MAX for both: every name).
 */
size_t key_usage_to_redfish(uint32_t ku, uint32_t eku, const char **names, size_t max);

/*
 * Helpers that issue/ shares with csr_build, so both apply the same rules.
 *
 * csr_check_field: check one optional text attribute named `field` (a Redfish name, used in the
 * message; the value never is): strict UTF-8 (RFC 3629), no C0/C1 control characters or DEL,
 * not only spaces, at most max_chars characters (code points). NULL or "" passes (absent).
 * Returns 0, -EINVAL with CERTD_E_FIELD_INVALID or -E2BIG with CERTD_E_FIELD_TOO_LONG.
 */
_must_check_ int csr_check_field(const char *field, const char *value, size_t max_chars,
                                 struct certd_err *err);

/*
 * Check names[0..n) (each at most CERTD_SAN_LEN_MAX bytes, classified by san_classify) and
 * append each to gens (borrowed, modified only on success) as a dNSName (a trailing dot
 * removed), iPAddress (4 or 16 octets), rfc822Name or uniformResourceIdentifier. The caller
 * checks the count. Messages name the entry as "AlternativeNames[i]" and quote it only when it
 * is printable ASCII. Returns 0, -ENOMEM, -EINVAL with CERTD_E_SAN_INVALID or -E2BIG with
 * CERTD_E_FIELD_TOO_LONG.
 */
_must_check_ int san_append_general_names(GENERAL_NAMES *gens, const char *const *names, size_t n,
                                          struct certd_err *err);

/* CERT_KU_* bits as the keyUsage BIT STRING (RFC 5280 §4.2.1.3 bit numbers). 0 or -ENOMEM. */
_must_check_ int key_usage_to_bit_string(uint32_t ku, ASN1_BIT_STRING **ret);

/* CERT_EKU_* bits as an ExtendedKeyUsage OID list (RFC 5280 §4.2.1.12). 0 or -ENOMEM. */
_must_check_ int eku_to_stack(uint32_t eku, EXTENDED_KEY_USAGE **ret);
