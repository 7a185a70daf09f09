/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue X.509 v3 certificates: self-signed server certificates for bootstrap, and certificates
 * from a CSR signed by a CA key under a profile.
 *
 * Every certificate gets a random positive serial (RFC 5280 §4.1.2.2), validity from the
 * injected clock (never the wall clock), basicConstraints and keyUsage (both critical), SKI
 * and AKI (RFC 5280 §4.2.1.1-2), and is signed with the digest keys/ chooses for the signing
 * key. Requests are checked completely before the certificate is assembled. From a CSR we take
 * the subject, the public key (after the CSR's signature verifies and the key passes the
 * profile's key policy) and, when the profile says so, the subjectAltName entries of allowed
 * kinds; every other requested extension is ignored: the profile decides what the certificate
 * may do. A copied subject keeps the bounds csr_build applies, and the issuer must be a CA
 * that may sign certificates at the issuing time.
 */
#include "issue/issue.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "csr/csr.h"
#include "keys/keys.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "x509/inspect.h"

DEFINE_CLEANUP(AUTHORITY_KEYID, AUTHORITY_KEYID_free)

static void cleanup_openssl_free(unsigned char **p)
{
    OPENSSL_free(*p);
}

#define SECONDS_PER_DAY 86400

/* Everything that differs between the two kinds of certificate we make. */
struct cert_params {
    const X509_NAME *subject;
    const X509_NAME *issuer;
    EVP_PKEY *subject_key; /* public part is used */
    X509 *ca;              /* NULL: self-signed (AKI = own SKI) */
    EVP_PKEY *signing_key;
    int64_t now;
    unsigned days;
    bool is_ca;
    int path_len;        /* -1: none */
    uint32_t key_usage;  /* CERT_KU_* */
    uint32_t eku;        /* CERT_EKU_*; 0 = no extension */
    GENERAL_NAMES *sans; /* borrowed; NULL or empty = no extension */
};

static int oom(struct certd_err *err)
{
    (void)ossl_drain_errors("issue");
    return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
}

int issue_random_serial(OSSL_LIB_CTX *libctx, ASN1_INTEGER **ret)
{
    unsigned char buf[16];
    bool nonzero = false;

    assert_return(ret, -EINVAL);
    /* A zero serial after clearing one bit has probability 2^-127; retry a few times anyway. */
    for (int tries = 0; tries < 4 && !nonzero; tries++) {
        if (RAND_bytes_ex(libctx, buf, sizeof(buf), 0) != 1) {
            (void)ossl_drain_errors("issue: random serial");
            return -EIO;
        }
        /* RFC 5280 §4.1.2.2: positive, at most 20 octets; clearing the top bit keeps 16. */
        buf[0] &= 0x7f;
        for (size_t i = 0; i < sizeof(buf); i++) {
            nonzero = nonzero || buf[i] != 0;
        }
    }
    if (!nonzero) {
        return -EIO;
    }
    _cleanup_(cleanup_BIGNUM) BIGNUM *bn = BN_bin2bn(buf, (int)sizeof(buf), NULL);
    if (!bn) {
        return -ENOMEM;
    }
    ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
    if (!serial) {
        return -ENOMEM;
    }
    *ret = serial;
    return 0;
}

/*
 * The key identifier of a subjectPublicKey: SHA-1 of its bits (RFC 5280 §4.2.1.2 method 1);
 * when the provider offers no SHA-1 (a strict FIPS property query), SHA-256 truncated to 160
 * bits (RFC 7093 §2 method 1).
 */
static int key_identifier(OSSL_LIB_CTX *libctx, const char *propq, X509 *x, ASN1_OCTET_STRING **ret)
{
    unsigned char md_buf[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
    if (!bits) {
        return -EINVAL;
    }
    ERR_set_mark();
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = EVP_MD_fetch(libctx, "SHA1", propq);
    if (!md) {
        md = EVP_MD_fetch(libctx, "SHA256", propq);
    }
    ERR_pop_to_mark();
    if (!md || EVP_Digest(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), md_buf,
                          &md_len, md, NULL) != 1) {
        (void)ossl_drain_errors("issue: key identifier");
        return -EIO;
    }
    if (md_len > 20) {
        md_len = 20;
    }
    _cleanup_(cleanup_ASN1_OCTET_STRING) ASN1_OCTET_STRING *id = ASN1_OCTET_STRING_new();
    if (!id || ASN1_OCTET_STRING_set(id, md_buf, (int)md_len) != 1) {
        return -ENOMEM;
    }
    *ret = TAKE_PTR(id);
    return 0;
}

/*
 * notBefore = now, notAfter = now + days, capped at the CA's notAfter (RFC 5280 §6.1.3 would
 * reject nothing, but a certificate outliving its issuer fails in most relying parties).
 */
static int set_validity(X509 *x, const X509 *ca, int64_t now, unsigned days, struct certd_err *err)
{
    time_t t = (time_t)now;
    if ((int64_t)t != now) {
        return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID, "the issuing time is out of range");
    }
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *nb = ASN1_TIME_adj(NULL, t, 0, 0);
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *na = ASN1_TIME_adj(NULL, t, (int)days, 0);
    if (!nb || !na) {
        return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID,
                       "the validity period cannot be represented");
    }
    const ASN1_TIME *not_after = na;
    if (ca) {
        const ASN1_TIME *ca_na = X509_get0_notAfter(ca);
        int day = 0, sec = 0;
        if (!ca_na || ASN1_TIME_diff(&day, &sec, nb, ca_na) != 1) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "the CA certificate's notAfter cannot be read");
        }
        if (day < 0 || sec < 0 || (day == 0 && sec == 0)) {
            return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID,
                           "the CA certificate expires before the issuing time");
        }
        if (day < (int)days) {
            not_after = ca_na;
        }
    }
    if (X509_set1_notBefore(x, nb) != 1 || X509_set1_notAfter(x, not_after) != 1) {
        return oom(err);
    }
    return 0;
}

static int add_ext(X509 *x, int nid, void *value, int crit)
{
    return X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) == 1 ? 0 : -ENOMEM;
}

static int sign_cert(OSSL_LIB_CTX *libctx, const char *propq, X509 *x, EVP_PKEY *key,
                     struct certd_err *err)
{
    /* The digest follows the signing key (keys/keys.h). */
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *mctx = NULL;
    int r = key_sign_ctx_new(libctx, propq, key, &mctx, err);
    if (r < 0) {
        return r;
    }
    if (X509_sign_ctx(x, mctx) <= 0) {
        (void)ossl_drain_errors("issue: sign");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot sign the certificate with this key");
    }
    return 0;
}

static int cert_build(OSSL_LIB_CTX *libctx, const char *propq, const struct cert_params *p,
                      X509 **ret, struct certd_err *err)
{
    int r;

    _cleanup_(cleanup_X509) X509 *x = X509_new_ex(libctx, propq);
    if (!x || X509_set_version(x, X509_VERSION_3) != 1) {
        return oom(err);
    }
    _cleanup_(cleanup_ASN1_INTEGER) ASN1_INTEGER *serial = NULL;
    r = issue_random_serial(libctx, &serial);
    if (r < 0) {
        return r == -ENOMEM ? oom(err)
                            : err_set(err, r, CERTD_E_INTERNAL, "no random serial number");
    }
    if (X509_set_serialNumber(x, serial) != 1 || X509_set_subject_name(x, p->subject) != 1 ||
        X509_set_issuer_name(x, p->issuer) != 1) {
        return oom(err);
    }
    if (X509_set_pubkey(x, p->subject_key) != 1) {
        (void)ossl_drain_errors("issue: public key");
        return err_set(err, -EINVAL, CERTD_E_KEY_BAD, "the subject's public key cannot be used");
    }
    r = set_validity(x, p->ca, p->now, p->days, err);
    if (r < 0) {
        return r;
    }

    /* RFC 5280 §4.2.1.9: basicConstraints, critical. */
    _cleanup_(cleanup_BASIC_CONSTRAINTS) BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (!bc) {
        return oom(err);
    }
    bc->ca = p->is_ca ? 0xff : 0;
    if (p->is_ca && p->path_len >= 0) {
        bc->pathlen = ASN1_INTEGER_new();
        if (!bc->pathlen || ASN1_INTEGER_set(bc->pathlen, p->path_len) != 1) {
            return oom(err);
        }
    }
    if (add_ext(x, NID_basic_constraints, bc, 1) < 0) {
        return oom(err);
    }

    /* RFC 5280 §4.2.1.3: keyUsage, critical. */
    _cleanup_(cleanup_ASN1_BIT_STRING) ASN1_BIT_STRING *ku = NULL;
    if (key_usage_to_bit_string(p->key_usage, &ku) < 0 || add_ext(x, NID_key_usage, ku, 1) < 0) {
        return oom(err);
    }
    if (p->eku != 0) {
        _cleanup_(cleanup_EXTENDED_KEY_USAGE) EXTENDED_KEY_USAGE *eku = NULL;
        if (eku_to_stack(p->eku, &eku) < 0 || add_ext(x, NID_ext_key_usage, eku, 0) < 0) {
            return oom(err);
        }
    }
    if (p->sans && sk_GENERAL_NAME_num(p->sans) > 0) {
        /* RFC 5280 §4.2.1.6: critical when the subject is empty. */
        int crit = X509_NAME_entry_count(p->subject) == 0;
        if (add_ext(x, NID_subject_alt_name, p->sans, crit) < 0) {
            return oom(err);
        }
    }

    /* RFC 5280 §4.2.1.2 and §4.2.1.1: SKI of the subject key, AKI = the issuer's SKI. */
    _cleanup_(cleanup_ASN1_OCTET_STRING) ASN1_OCTET_STRING *ski = NULL;
    r = key_identifier(libctx, propq, x, &ski);
    if (r < 0) {
        return r == -ENOMEM
                   ? oom(err)
                   : err_set(err, r, CERTD_E_INTERNAL, "cannot compute the key identifier");
    }
    if (add_ext(x, NID_subject_key_identifier, ski, 0) < 0) {
        return oom(err);
    }
    _cleanup_(cleanup_AUTHORITY_KEYID) AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (!akid) {
        return oom(err);
    }
    if (p->ca) {
        const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id(p->ca);
        if (ca_ski) {
            akid->keyid = ASN1_OCTET_STRING_dup(ca_ski);
            if (!akid->keyid) {
                return oom(err);
            }
        } else {
            r = key_identifier(libctx, propq, p->ca, &akid->keyid);
            if (r < 0) {
                return r == -ENOMEM ? oom(err)
                                    : err_set(err, r, CERTD_E_CERT_BAD,
                                              "cannot compute the CA's key identifier");
            }
        }
    } else {
        akid->keyid = ASN1_OCTET_STRING_dup(ski);
        if (!akid->keyid) {
            return oom(err);
        }
    }
    if (add_ext(x, NID_authority_key_identifier, akid, 0) < 0) {
        return oom(err);
    }

    r = sign_cert(libctx, propq, x, p->signing_key, err);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(x);
    return 0;
}

static int check_days(unsigned days, struct certd_err *err)
{
    if (days < 1 || days > CERTD_VALIDITY_DAYS_MAX) {
        return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID, "the validity must be 1 to %u days",
                       CERTD_VALIDITY_DAYS_MAX);
    }
    return 0;
}

/* digitalSignature, plus keyEncipherment for RSA (RSA key transport, RFC 5246 §7.4.7.1). */
static uint32_t default_leaf_key_usage(const EVP_PKEY *key)
{
    struct key_info info;
    uint32_t ku = CERT_KU_DIGITAL_SIGNATURE;
    if (key_describe(key, &info) >= 0 && info.alg == KEY_ALG_RSA) {
        ku |= CERT_KU_KEY_ENCIPHERMENT;
    }
    return ku;
}

/* True when s is already among names (DNS names compare case-insensitively, RFC 4343). */
static bool name_listed(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (names[i] && str_case_eq(s, names[i])) {
            return true;
        }
    }
    return false;
}

int issue_selfsigned(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                     const struct selfsign_request *req, X509 **ret, struct certd_err *err)
{
    enum san_kind kind;
    int r;

    assert_return(key && req && ret, -EINVAL);
    assert_return(req->alt_names || req->n_alt_names == 0, -EINVAL);

    if (!req->common_name || req->common_name[0] == '\0') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_MISSING, "CommonName is required");
    }
    r = csr_check_field("CommonName", req->common_name, X520_CN_MAX, err);
    if (r < 0) {
        return r;
    }
    r = check_days(req->days, err);
    if (r < 0) {
        return r;
    }
    if (req->n_alt_names > CERTD_SANS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                       "AlternativeNames has more than %u entries", CERTD_SANS_MAX);
    }

    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *sans = GENERAL_NAMES_new();
    if (!sans) {
        return oom(err);
    }
    /*
     * The host name goes into the SAN too: relying parties ignore the CN when a SAN is present
     * (RFC 6125 §6.4.4, CA/B BR §7.1.4.3).
     */
    if (san_classify(req->common_name, &kind) == 0 && (kind == SAN_DNS || kind == SAN_IP) &&
        !name_listed(req->common_name, req->alt_names, req->n_alt_names)) {
        r = san_append_general_names(sans, &req->common_name, 1, err);
        if (r < 0) {
            return r;
        }
    }
    r = san_append_general_names(sans, req->alt_names, req->n_alt_names, err);
    if (r < 0) {
        return r;
    }

    _cleanup_(cleanup_X509_NAME) X509_NAME *name = X509_NAME_new();
    if (!name ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                   (const unsigned char *)req->common_name, -1, -1, 0) != 1) {
        return oom(err);
    }
    struct cert_params p = {
        .subject = name,
        .issuer = name,
        .subject_key = key,
        .ca = NULL,
        .signing_key = key,
        .now = req->now,
        .days = req->days,
        .is_ca = false,
        .path_len = -1,
        .key_usage = default_leaf_key_usage(key),
        .eku = CERT_EKU_SERVER_AUTH,
        .sans = sans,
    };
    return cert_build(libctx, propq, &p, ret, err);
}

static const char *san_kind_name(enum san_kind k)
{
    switch (k) {
    case SAN_DNS:
        return "DNS";
    case SAN_IP:
        return "IP address";
    case SAN_EMAIL:
        return "email";
    case SAN_URI:
        return "URI";
    case SAN_KIND_MAX:
    default:
        return "unknown";
    }
}

static const char *general_name_type_name(int type)
{
    switch (type) {
    case GEN_OTHERNAME:
        return "otherName";
    case GEN_X400:
        return "x400Address";
    case GEN_DIRNAME:
        return "directoryName";
    case GEN_EDIPARTY:
        return "ediPartyName";
    case GEN_RID:
        return "registeredID";
    default:
        return "unknown";
    }
}

/*
 * Check one subjectAltName entry from a CSR against the profile: its kind must be one of ours
 * and allowed, and its content must be what csr_build would have made (no NUL, classifies as
 * the same kind, 4 or 16 address octets).
 */
static int check_csr_san(const GENERAL_NAME *gn, size_t i, uint32_t allowed, struct certd_err *err)
{
    enum san_kind kind, found;
    int type;
    const ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &type);

    switch (type) {
    case GEN_DNS:
        kind = SAN_DNS;
        break;
    case GEN_IPADD:
        kind = SAN_IP;
        break;
    case GEN_EMAIL:
        kind = SAN_EMAIL;
        break;
    case GEN_URI:
        kind = SAN_URI;
        break;
    default:
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "the CSR asks for a %s alternative name, which is not allowed",
                       general_name_type_name(type));
    }
    if (!(allowed & (1u << kind))) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "the CSR asks for a %s alternative name, which this profile does not allow",
                       san_kind_name(kind));
    }
    int len = s ? ASN1_STRING_length(s) : -1;
    const unsigned char *data = s ? ASN1_STRING_get0_data(s) : NULL;
    if (kind == SAN_IP) {
        if (len != 4 && len != 16) {
            return err_set(err, -EBADMSG, CERTD_E_SAN_INVALID,
                           "the CSR's alternative name %zu is not a valid IP address", i);
        }
        return 0;
    }
    char buf[CERTD_SAN_LEN_MAX + 1];
    if (len <= 0 || (size_t)len > CERTD_SAN_LEN_MAX || !data || memchr(data, '\0', (size_t)len)) {
        return err_set(err, -EBADMSG, CERTD_E_SAN_INVALID,
                       "the CSR's alternative name %zu is not a valid %s name", i,
                       san_kind_name(kind));
    }
    memcpy(buf, data, (size_t)len);
    buf[len] = '\0';
    if (san_classify(buf, &found) < 0 || found != kind) {
        return err_set(err, -EBADMSG, CERTD_E_SAN_INVALID,
                       "the CSR's alternative name %zu is not a valid %s name", i,
                       san_kind_name(kind));
    }
    return 0;
}

/* The CSR's requested subjectAltName, checked against the profile; *ret NULL when none. */
static int csr_sans(X509_REQ *csr, uint32_t allowed, GENERAL_NAMES **ret, struct certd_err *err)
{
    int crit = -1;

    _cleanup_(cleanup_x509_ext_stack) x509_ext_stack *exts = X509_REQ_get_extensions(csr);
    if (!exts) {
        (void)ossl_drain_errors("issue: CSR extensions");
        *ret = NULL;
        return 0;
    }
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *gens =
        X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
    if (!gens) {
        if (crit == -1) {
            *ret = NULL;
            return 0;
        }
        (void)ossl_drain_errors("issue: CSR subjectAltName");
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD,
                       crit == -2 ? "the CSR requests more than one subjectAltName"
                                  : "the CSR's subjectAltName cannot be decoded");
    }
    int n = sk_GENERAL_NAME_num(gens);
    if (n > (int)CERTD_SANS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                       "the CSR requests more than %u alternative names", CERTD_SANS_MAX);
    }
    for (int i = 0; i < n; i++) {
        int r = check_csr_san(sk_GENERAL_NAME_value(gens, i), (size_t)i, allowed, err);
        if (r < 0) {
            return r;
        }
    }
    *ret = TAKE_PTR(gens);
    return 0;
}

/*
 * Bounds for the subject attributes of a CSR that csr_build also makes, in characters, with the
 * name a message uses. Attributes of other types are copied as they are.
 */
static const struct subject_bound {
    int nid;
    const char *name;
    size_t max_chars;
} subject_bounds[] = {
    { NID_countryName, "C", X520_COUNTRY_LEN },
    { NID_stateOrProvinceName, "ST", X520_STATE_MAX },
    { NID_localityName, "L", X520_LOCALITY_MAX },
    { NID_organizationName, "O", X520_ORGANIZATION_MAX },
    { NID_organizationalUnitName, "OU", X520_OU_MAX },
    { NID_commonName, "CN", X520_CN_MAX },
    { NID_pkcs9_emailAddress, "emailAddress", X520_EMAIL_MAX },
    { NID_givenName, "givenName", CERTD_GIVEN_NAME_MAX },
    { NID_surname, "surname", CERTD_SURNAME_MAX },
    { NID_initials, "initials", CERTD_INITIALS_MAX },
    { NID_name, "name", CERTD_CONTACT_PERSON_MAX },
    { NID_pkcs9_unstructuredName, "unstructuredName", PKCS9_UNSTRUCTURED_NAME_MAX },
    { NID_serialNumber, "serialNumber", X520_SERIAL_NUMBER_MAX },
    { NID_title, "title", X520_TITLE_MAX },
    { NID_pseudonym, "pseudonym", X520_PSEUDONYM_MAX },
};

/*
 * The certificate carries the CSR's subject unchanged, so each attribute we know must be one
 * csr_build could have made: decodable, no NUL, csr_check_field's rules (UTF-8, no control
 * characters, not blank) and its bound in characters, whatever the string type.
 */
static int check_csr_subject(const X509_NAME *subject, struct certd_err *err)
{
    int n = X509_NAME_entry_count(subject);

    for (int i = 0; i < n; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        const struct subject_bound *b = NULL;
        for (size_t j = 0; j < ELEMENTSOF(subject_bounds) && !b; j++) {
            if (subject_bounds[j].nid == nid) {
                b = &subject_bounds[j];
            }
        }
        if (!b) {
            continue;
        }
        char label[64];
        (void)snprintf(label, sizeof(label), "the CSR's subject %s", b->name);
        const ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);
        int len = s ? ASN1_STRING_length(s) : -1;
        if (len < 0) {
            return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "%s cannot be decoded", label);
        }
        /* No string type spends more than 4 bytes on a character: longer is too long. */
        if ((size_t)len > 4 * b->max_chars) {
            return err_set(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, "%s is longer than %zu characters",
                           label, b->max_chars);
        }
        _cleanup_(cleanup_openssl_free) unsigned char *utf8 = NULL;
        int ulen = ASN1_STRING_to_UTF8(&utf8, s);
        if (ulen < 0 || !utf8) {
            unsigned long code = ossl_drain_errors("issue: CSR subject");
            if (ERR_GET_REASON(code) == ERR_R_MALLOC_FAILURE) {
                return oom(err);
            }
            return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "%s cannot be decoded", label);
        }
        if (memchr(utf8, '\0', (size_t)ulen)) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "%s contains a NUL character",
                           label);
        }
        int r = csr_check_field(label, (const char *)utf8, b->max_chars, err);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/*
 * The issuer must be able to sign certificates at now: a CA by basicConstraints (RFC 5280
 * §4.2.1.9; a v1 certificate does not count), with keyCertSign when it has a keyUsage
 * (§4.2.1.3), a non-empty subject to become our issuer name (§4.1.2.4, §4.1.2.6), and valid
 * from notBefore (its notAfter caps the new certificate in set_validity, which refuses a CA
 * expired at now).
 */
static int check_ca(X509 *ca, int64_t now, struct certd_err *err)
{
    uint32_t flags = X509_get_extension_flags(ca);
    if (flags & EXFLAG_INVALID) {
        (void)ossl_drain_errors("issue: CA extensions");
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the CA certificate has malformed or repeated extensions");
    }
    if (!(flags & EXFLAG_BCONS) || !(flags & EXFLAG_CA)) {
        return err_set(err, -EINVAL, CERTD_E_NOT_CA,
                       "the issuer is not a CA certificate (basicConstraints CA:TRUE is missing)");
    }
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN)) {
        return err_set(err, -EINVAL, CERTD_E_CA_NO_KEYCERTSIGN,
                       "the CA certificate's KeyUsage lacks keyCertSign, so it may not sign "
                       "certificates");
    }
    if (X509_NAME_entry_count(X509_get_subject_name(ca)) == 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the CA certificate has an empty subject, which cannot name an issuer");
    }
    const ASN1_TIME *nb = X509_get0_notBefore(ca);
    int64_t not_before = 0;
    if (!nb || asn1_time_to_unix(nb, &not_before) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the CA certificate's notBefore cannot be read");
    }
    if (not_before > now) {
        char iso[32];
        unix_to_iso8601(not_before, iso, sizeof(iso));
        return err_set(err, -EKEYEXPIRED, CERTD_E_CERT_NOT_YET_VALID,
                       "the CA certificate is not valid before %s", iso);
    }
    return 0;
}

int issue_from_csr(OSSL_LIB_CTX *libctx, const char *propq, X509_REQ *csr, X509 *ca_cert,
                   EVP_PKEY *ca_key, const struct issue_profile *profile, int64_t now, X509 **ret,
                   struct certd_err *err)
{
    int r;

    assert_return(csr && ca_key && profile && ret, -EINVAL);

    /* Proof of possession first: nothing from an unverified request is used. */
    EVP_PKEY *pub = X509_REQ_get0_pubkey(csr);
    if (!pub) {
        (void)ossl_drain_errors("issue: CSR key");
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "the CSR's public key cannot be decoded");
    }
    if (X509_REQ_verify_ex(csr, pub, libctx, propq) != 1) {
        (void)ossl_drain_errors("issue: CSR verify");
        return err_set(err, -EBADMSG, CERTD_E_CSR_SIGNATURE, "the CSR's signature does not verify");
    }
    /* The CA vouches for the key: the same strength policy as for uploaded keys. */
    r = key_check_strength(pub, &profile->keys, "the CSR's key", err);
    if (r < 0) {
        return r;
    }
    const X509_NAME *subject = X509_REQ_get_subject_name(csr);
    r = check_csr_subject(subject, err);
    if (r < 0) {
        return r;
    }
    r = check_days(profile->days, err);
    if (r < 0) {
        return r;
    }
    if (profile->is_ca && profile->path_len < -1) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "the path length must be -1 or more");
    }
    if (ca_cert) {
        r = check_ca(ca_cert, now, err);
        if (r < 0) {
            return r;
        }
        /*
         * RFC 5280 §4.2.1.9: under a CA with pathLenConstraint N, a new CA certificate adds one
         * level, so N must be at least 1 and the new constraint at most N - 1. An unconstrained
         * intermediate would be legal but would only fail later, at every verifier.
         */
        long ca_pathlen = X509_get_pathlen(ca_cert);
        if (profile->is_ca && ca_pathlen >= 0) {
            if (ca_pathlen == 0) {
                return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                               "the CA's pathLenConstraint is 0: it may not issue CA "
                               "certificates");
            }
            if (profile->path_len < 0 || profile->path_len > ca_pathlen - 1) {
                return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                               "the CA's pathLenConstraint is %ld: a CA it issues needs a path "
                               "length of at most %ld",
                               ca_pathlen, ca_pathlen - 1);
            }
        }
        if (EVP_PKEY_eq(X509_get0_pubkey(ca_cert), ca_key) != 1) {
            (void)ossl_drain_errors("issue: CA key");
            return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                           "the CA key does not match the CA certificate");
        }
    } else if (EVP_PKEY_eq(pub, ca_key) != 1) {
        (void)ossl_drain_errors("issue: CSR key");
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "a self-signed certificate must be signed with the CSR's own key");
    }

    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *sans = NULL;
    if (profile->copy_sans) {
        r = csr_sans(csr, profile->allowed_sans, &sans, err);
        if (r < 0) {
            return r;
        }
    }
    if (X509_NAME_entry_count(subject) == 0) {
        /* RFC 5280 §4.1.2.4: the issuer name, here the subject, must not be empty. */
        if (!ca_cert) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_MISSING,
                           "the CSR has an empty subject, but a self-signed certificate needs one "
                           "for its issuer name");
        }
        /* RFC 5280 §4.1.2.6: an empty subject only with a (then critical) subjectAltName. */
        if (!sans || sk_GENERAL_NAME_num(sans) == 0) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_MISSING,
                           "the CSR has an empty subject and no alternative name that this "
                           "profile copies; a certificate needs one or the other");
        }
    }

    uint32_t ku = profile->key_usage;
    if (ku == 0) {
        /* A CA that may not sign certificates is useless: default to what a CA does. */
        ku =
            profile->is_ca ? CERT_KU_KEY_CERT_SIGN | CERT_KU_CRL_SIGN : default_leaf_key_usage(pub);
    }
    struct cert_params p = {
        .subject = subject,
        .issuer = ca_cert ? X509_get_subject_name(ca_cert) : subject,
        .subject_key = pub,
        .ca = ca_cert,
        .signing_key = ca_key,
        .now = now,
        .days = profile->days,
        .is_ca = profile->is_ca,
        .path_len = profile->is_ca ? profile->path_len : -1,
        .key_usage = ku,
        .eku = profile->eku,
        .sans = sans,
    };
    return cert_build(libctx, propq, &p, ret, err);
}
