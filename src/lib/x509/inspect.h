/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inspect a certificate: everything Redfish, D-Bus and certctl show about it. The result owns
 * plain C strings, so front ends render it without touching OpenSSL.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "error/error.h"
#include "util/cleanup.h"

/* The attributes of a distinguished name that front ends show separately. NULL when absent. */
struct cert_name {
    char *common_name;         /* CN */
    char *organization;        /* O */
    char *organizational_unit; /* OU (the first, when several) */
    char *locality;            /* L */
    char *state;               /* ST */
    char *country;             /* C */
    char *email;               /* emailAddress */
    char *rfc4514;             /* the whole name, RFC 4514 string: "CN=a\,b,O=x" (never NULL) */
};

/* KeyUsage bits (RFC 5280 §4.2.1.3), in our own order. */
enum {
    CERT_KU_DIGITAL_SIGNATURE = 1u << 0,
    CERT_KU_NON_REPUDIATION = 1u << 1,
    CERT_KU_KEY_ENCIPHERMENT = 1u << 2,
    CERT_KU_DATA_ENCIPHERMENT = 1u << 3,
    CERT_KU_KEY_AGREEMENT = 1u << 4,
    CERT_KU_KEY_CERT_SIGN = 1u << 5,
    CERT_KU_CRL_SIGN = 1u << 6,
    CERT_KU_ENCIPHER_ONLY = 1u << 7,
    CERT_KU_DECIPHER_ONLY = 1u << 8,
};

/* ExtendedKeyUsage purposes we name (RFC 5280 §4.2.1.12); others are kept as dotted OIDs. */
enum {
    CERT_EKU_SERVER_AUTH = 1u << 0,
    CERT_EKU_CLIENT_AUTH = 1u << 1,
    CERT_EKU_CODE_SIGNING = 1u << 2,
    CERT_EKU_EMAIL_PROTECTION = 1u << 3,
    CERT_EKU_TIME_STAMPING = 1u << 4,
    CERT_EKU_OCSP_SIGNING = 1u << 5,
    CERT_EKU_ANY = 1u << 6,
};

struct str_list {
    char **v; /* owned strings */
    size_t n;
};

struct cert_info {
    struct cert_name subject;
    struct cert_name issuer;
    char *serial_hex;   /* upper-case hex, no separators, leading "-" if negative */
    int64_t not_before; /* seconds since the epoch (may be negative) */
    int64_t not_after;
    int version;         /* 1, 2 or 3 */
    char *signature_alg; /* "sha256WithRSAEncryption", "ecdsa-with-SHA256", "ED25519", ... */
    char *key_alg;       /* "RSA", "EC", "ED25519", ... */
    int key_bits;
    char *key_curve; /* "P-256" etc. for EC, NULL otherwise */
    bool has_key_usage;
    uint32_t key_usage; /* CERT_KU_* bits */
    bool has_eku;
    uint32_t eku;              /* CERT_EKU_* bits */
    struct str_list eku_names; /* every EKU: "serverAuth", "clientAuth", ..., or dotted OID */
    bool has_basic_constraints;
    bool is_ca;
    int path_len; /* -1 when absent */
    struct str_list san_dns;
    struct str_list san_ip; /* "192.0.2.1", "2001:db8::1" */
    struct str_list san_email;
    struct str_list san_uri;
    bool san_truncated;          /* more than CERTD_SANS_MAX SANs: the lists hold the first */
    char fingerprint_sha256[96]; /* "AB:CD:..." upper-case hex with colons */
    char spki_pin[64];           /* "sha256//BASE64" of the SubjectPublicKeyInfo */
    bool is_self_signed;         /* issuer == subject and the signature verifies with its key */
};

/*
 * Inspect cert. Returns 0 and an owned result in *ret, or -ENOMEM, or -EBADMSG with
 * CERTD_E_CERT_BAD when a field cannot be decoded or shown safely: a SAN that is not valid ASN.1
 * or whose DNS name, email address or URI holds a byte outside printable ASCII 0x21..0x7e; a
 * subject or issuer attribute that is not valid UTF-8 or holds a control character (C0 with
 * NUL, DEL, C1); the message names the SAN's position or the attribute. Every string in the
 * result is valid UTF-8 without control characters. libctx/propq serve the digests.
 */
_must_check_ int cert_inspect(OSSL_LIB_CTX *libctx, const char *propq, X509 *cert,
                              struct cert_info **ret, struct certd_err *err);

struct cert_info *cert_info_free(struct cert_info *info);
DEFINE_CLEANUP_STRUCT(cert_info, cert_info_free)

/*
 * Render an X509_NAME as an RFC 4514 string into a malloc'd string: valid UTF-8, control
 * characters escaped as \XX per UTF-8 byte. -ENOMEM; -EBADMSG for a value that is not valid
 * UTF-8 or a string longer than CERTD_DN_STR_MAX.
 */
_must_check_ int name_to_rfc4514(const X509_NAME *name, char **ret);

/*
 * The same in certificate (DER) order, as OpenSSL's one-line form with XN_FLAG_SEP_COMMA_PLUS
 * shows a name and OpenBMC's certificate manager publishes Subject and Issuer ("C=US,O=Acme,
 * CN=host"), values escaped as above (so "O=Acme\, Inc" is one attribute). Same errors.
 */
_must_check_ int name_to_oneline(const X509_NAME *name, char **ret);

/* Names for CERT_KU_* / CERT_EKU_* bits ("digitalSignature", "serverAuth"), for display. */
const char *key_usage_bit_name(uint32_t bit);

/*
 * CERT_KU_* bits from the value X509_get_key_usage() returns, which keeps the KeyUsage BIT
 * STRING's first two bytes as they are (bit 0, digitalSignature, is 0x80; bit 8 is 0x8000).
 */
uint32_t key_usage_from_x509_bits(uint32_t x509_ku);
const char *eku_bit_name(uint32_t bit);
/* The CERT_EKU_* bit of an EKU's NID (NID_client_auth ...); 0 for a purpose not in the set. */
uint32_t eku_bit_from_nid(int nid);

/* Convert an ASN1_TIME to seconds since the epoch. 0 or -EBADMSG. */
_must_check_ int asn1_time_to_unix(const ASN1_TIME *t, int64_t *ret);

/* Format seconds since the epoch as "2024-01-01T00:00:00Z" (buf >= 32 bytes). */
void unix_to_iso8601(int64_t t, char *buf, size_t size);

/*
 * The inverse of unix_to_iso8601 for years 0000..9999: s (borrowed, NUL-terminated) must be
 * exactly "YYYY-MM-DDThh:mm:ssZ" (RFC 3339 §5.6 in UTC, whole seconds, upper-case 'T' and 'Z')
 * naming a real date and time; no leap second (:60), no offsets, fractions, blanks or signs.
 * 0 with the seconds since the epoch in *ret (negative before 1970), or -EINVAL (*ret
 * untouched). Pure; thread-safe.
 */
_must_check_ int iso8601_to_unix(const char *s, int64_t *ret);
