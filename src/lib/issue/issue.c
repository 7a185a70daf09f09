/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Issue X.509 v3 certificates: self-signed server certificates for bootstrap, certificates from
 * a CSR signed by a CA key under a profile, and the CA's own self-signed root; and v2 CRLs.
 *
 * Every certificate gets a random positive serial (RFC 5280 §4.1.2.2), validity from the
 * injected clock (never the wall clock), basicConstraints and keyUsage (both critical), SKI
 * and AKI (RFC 5280 §4.2.1.1-2), and is signed with the digest keys/ chooses for the signing
 * key. Requests are checked completely before the certificate is assembled. From a CSR we take
 * the subject, the public key (after the CSR's signature verifies and the key passes the
 * profile's key policy) and, when the profile says so, the subjectAltName entries of allowed
 * kinds; every other requested extension is ignored: the profile decides what the certificate
 * may do. A copied subject keeps the bounds csr_build applies, and the issuer must be a CA
 * that may sign certificates at the issuing time. A CRL follows the same rules: its issuer must
 * be a CA allowed to sign CRLs, its nextUpdate never outlives the CA, its AKI is found as a
 * certificate's, and it is signed the same way. One helper per concept (time, validity cap,
 * issuer checks, key identifiers, names, signing) serves every kind of object built here.
 */
#include "issue/issue.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
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

#define SECONDS_PER_DAY 86400

/* Everything that differs between the two kinds of certificate we make. */
struct cert_params {
    const X509_NAME *subject;
    const X509_NAME *issuer;
    EVP_PKEY *subject_key; /* public part is used */
    X509_PUBKEY *spki;     /* non-NULL: the subject key as these very bytes (a CSR's) */
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

/*
 * x's SubjectPublicKeyInfo as a copy of spki's algorithm and key bits, without an EVP_PKEY:
 * X509_set_pubkey encodes the key and decodes it again, which in OpenSSL 3.0 builds an encoder
 * and a decoder context for every certificate (two fifths of what signing a CSR costs). The
 * certificate's key is then not decoded in memory (issue.h: is_key_not_needed). 0, -EINVAL
 * (parameters of a kind no key we accept has) or -ENOMEM.
 */
static int spki_copy(X509 *x, X509_PUBKEY *spki)
{
    ASN1_OBJECT *alg_oid = NULL;
    const unsigned char *bits = NULL;
    int bits_len = 0, ptype = V_ASN1_UNDEF;
    X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *palg = NULL;
    const void *pval = NULL;
    void *param = NULL;

    if (X509_PUBKEY_get0_param(&alg_oid, &bits, &bits_len, &alg, spki) != 1 || !alg) {
        return -EINVAL;
    }
    X509_ALGOR_get0(&palg, &ptype, &pval, alg);
    if (ptype == V_ASN1_OBJECT) {
        param = OBJ_dup(pval);
    } else if (ptype == V_ASN1_SEQUENCE) {
        param = ASN1_STRING_dup(pval);
    } else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) {
        return -EINVAL;
    }
    ASN1_OBJECT *oid = OBJ_dup(palg);
    unsigned char *copy = OPENSSL_memdup(bits, (size_t)bits_len);
    if (!oid || !copy || ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE) && !param) ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), oid, ptype, param, copy, bits_len) != 1) {
        ASN1_OBJECT_free(oid);
        OPENSSL_free(copy);
        if (ptype == V_ASN1_OBJECT) {
            ASN1_OBJECT_free(param);
        } else {
            ASN1_STRING_free(param);
        }
        return -ENOMEM;
    }
    return 0;
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
 * *ret = t + offset seconds as an ASN1_TIME, UTCTime through 2049 and GeneralizedTime after
 * (ASN1_TIME_adj's choice is RFC 5280's, §4.1.2.5 and §5.1.2.4). *ret, when not NULL, is reused.
 * Whole days go apart from seconds so that a 32-bit time_t still reaches past 2038.
 * -ERANGE when the time cannot be represented (or OpenSSL cannot allocate: it does not say).
 */
static int time_at(int64_t t, int64_t offset, ASN1_TIME **ret)
{
    /* t + offset must not overflow: callers compare against it. */
    bool overflows = offset > 0 ? t > INT64_MAX - offset : t < INT64_MIN - offset;
    if ((int64_t)(time_t)t != t || overflows || offset / SECONDS_PER_DAY > INT_MAX ||
        offset / SECONDS_PER_DAY < INT_MIN) {
        return -ERANGE;
    }
    ASN1_TIME *a = ASN1_TIME_adj(*ret, (time_t)t, (int)(offset / SECONDS_PER_DAY),
                                 (long)(offset % SECONDS_PER_DAY));
    if (!a) {
        (void)ossl_drain_errors("issue: time");
        return -ERANGE;
    }
    *ret = a;
    return 0;
}

/*
 * The end of a period of `seconds` from now (a notAfter or a nextUpdate), capped at the CA's
 * notAfter when ca is given: RFC 5280 §6.1.3 would reject nothing, but a certificate or CRL
 * outliving its issuer fails in most relying parties. A CA expired at now is refused.
 */
static int period_end(const X509 *ca, int64_t now, int64_t seconds, ASN1_TIME **ret,
                      struct certd_err *err)
{
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *end = NULL;
    if ((int64_t)(time_t)now != now) {
        return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID, "the issuing time is out of range");
    }
    if (time_at(now, seconds, &end) < 0) {
        return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID,
                       "the validity period cannot be represented");
    }
    if (ca) {
        const ASN1_TIME *ca_na = X509_get0_notAfter(ca);
        int64_t ca_end = 0;
        if (!ca_na || asn1_time_to_unix(ca_na, &ca_end) < 0) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "the CA certificate's notAfter cannot be read");
        }
        if (ca_end <= now) {
            return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID,
                           "the CA certificate expires before the issuing time");
        }
        /* now + seconds did not overflow in time_at. */
        if (ca_end < now + seconds) {
            ASN1_TIME_free(end);
            end = ASN1_STRING_dup(ca_na);
            if (!end) {
                return oom(err);
            }
        }
    }
    *ret = TAKE_PTR(end);
    return 0;
}

/* notBefore = now, notAfter = now + days (capped by period_end). */
static int set_validity(X509 *x, const X509 *ca, int64_t now, unsigned days, struct certd_err *err)
{
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *na = NULL;
    int r = period_end(ca, now, (int64_t)days * SECONDS_PER_DAY, &na, err);
    if (r < 0) {
        return r;
    }
    /* period_end has represented now + days: now alone fits too. */
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *nb = NULL;
    if (time_at(now, 0, &nb) < 0 || X509_set1_notBefore(x, nb) != 1 ||
        X509_set1_notAfter(x, na) != 1) {
        return oom(err);
    }
    return 0;
}

static int add_ext(X509 *x, int nid, void *value, int crit)
{
    return X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_DEFAULT) == 1 ? 0 : -ENOMEM;
}

/*
 * Sign a certificate (x) or a CRL (crl) with key: key_sign_ctx_new is the one place that
 * decides how certd signs (digest per key, EVP_DigestSignInit_ex in libctx/propq, so that a
 * provider's key signs as well as one in memory).
 */
static int sign_object(OSSL_LIB_CTX *libctx, const char *propq, X509 *x, X509_CRL *crl,
                       EVP_PKEY *key, struct certd_err *err)
{
    assert(!x != !crl);
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *mctx = NULL;
    int r = key_sign_ctx_new(libctx, propq, key, &mctx, err);
    if (r < 0) {
        return r;
    }
    if ((x ? X509_sign_ctx(x, mctx) : X509_CRL_sign_ctx(crl, mctx)) <= 0) {
        (void)ossl_drain_errors("issue: sign");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot sign the %s with this key",
                       x ? "certificate" : "CRL");
    }
    return 0;
}

/*
 * The AuthorityKeyIdentifier of what issuer signs (RFC 5280 §4.2.1.1, §5.2.1): the keyid of
 * the issuer's SKI, or computed from its key when it has none; with no issuer (self-signed),
 * own_ski.
 */
static int authority_key_id(OSSL_LIB_CTX *libctx, const char *propq, X509 *issuer,
                            const ASN1_OCTET_STRING *own_ski, AUTHORITY_KEYID **ret,
                            struct certd_err *err)
{
    _cleanup_(cleanup_AUTHORITY_KEYID) AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (!akid) {
        return oom(err);
    }
    const ASN1_OCTET_STRING *ski = issuer ? X509_get0_subject_key_id(issuer) : own_ski;
    if (ski) {
        akid->keyid = ASN1_OCTET_STRING_dup(ski);
        if (!akid->keyid) {
            return oom(err);
        }
    } else {
        assert(issuer);
        int r = key_identifier(libctx, propq, issuer, &akid->keyid);
        if (r < 0) {
            return r == -ENOMEM ? oom(err)
                                : err_set(err, r, CERTD_E_CERT_BAD,
                                          "cannot compute the CA's key identifier");
        }
    }
    *ret = TAKE_PTR(akid);
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
    /*
     * A copy of the subject's public key, never its provider's own key object (a TPM key, and
     * one of the TPM's object slots with it): TLS cannot judge that one's strength ("ee key too
     * small") and finds no TLS 1.2 suite for it (notes/tpm2.md P7).
     */
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *pub = NULL;
    r = p->spki ? 0 : key_public_dup(libctx, propq, p->subject_key, &pub);
    if (r == -ENOMEM) {
        return oom(err);
    }
    if (p->spki ? spki_copy(x, p->spki) < 0 : (r < 0 || X509_set_pubkey(x, pub) != 1)) {
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
    _cleanup_(cleanup_AUTHORITY_KEYID) AUTHORITY_KEYID *akid = NULL;
    r = authority_key_id(libctx, propq, p->ca, ski, &akid, err);
    if (r < 0) {
        return r;
    }
    if (add_ext(x, NID_authority_key_identifier, akid, 0) < 0) {
        return oom(err);
    }

    r = sign_object(libctx, propq, x, NULL, p->signing_key, err);
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

/*
 * A subject made from request fields (Redfish names in messages): O when given, then CN (the
 * big-endian order csr_build uses), UTF8String, each checked with csr_check_field and its
 * X.520 bound. The CN is required: it is the only name a CA root or a bootstrap certificate
 * has (RFC 5280 §4.1.2.4: an issuer name is never empty).
 */
static int subject_from_fields(const char *common_name, const char *organization, X509_NAME **ret,
                               struct certd_err *err)
{
    if (!common_name || common_name[0] == '\0') {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_MISSING, "CommonName",
                             "CommonName is required");
    }
    int r = csr_check_field("CommonName", common_name, X520_CN_MAX, err);
    if (r < 0) {
        return r;
    }
    r = csr_check_field("Organization", organization, X520_ORGANIZATION_MAX, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_X509_NAME) X509_NAME *name = X509_NAME_new();
    if (!name) {
        return oom(err);
    }
    if (organization && organization[0] != '\0' &&
        X509_NAME_add_entry_by_NID(name, NID_organizationName, V_ASN1_UTF8STRING,
                                   (const unsigned char *)organization, -1, -1, 0) != 1) {
        return oom(err);
    }
    if (X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                   (const unsigned char *)common_name, -1, -1, 0) != 1) {
        return oom(err);
    }
    *ret = TAKE_PTR(name);
    return 0;
}

int issue_selfsigned(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                     const struct selfsign_request *req, X509 **ret, struct certd_err *err)
{
    enum san_kind kind;
    int r;

    assert_return(key && req && ret, -EINVAL);
    assert_return(req->alt_names || req->n_alt_names == 0, -EINVAL);

    _cleanup_(cleanup_X509_NAME) X509_NAME *name = NULL;
    r = subject_from_fields(req->common_name, NULL, &name, err);
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
        _cleanup_(ossl_bytes_free) unsigned char *utf8 = NULL;
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
 * The issuer must be able to sign what we make at now: a CA by basicConstraints (RFC 5280
 * §4.2.1.9; a v1 certificate does not count), with keyCertSign for certificates or cRLSign for
 * CRLs (need_ku) when it has a keyUsage (§4.2.1.3), a non-empty subject to become our issuer
 * name (§4.1.2.4, §4.1.2.6, §5.1.2.3), and valid from notBefore (its notAfter caps what we make
 * in period_end, which refuses a CA expired at now).
 */
static int check_issuer(X509 *ca, int64_t now, uint32_t need_ku, struct certd_err *err)
{
    assert(need_ku == KU_KEY_CERT_SIGN || need_ku == KU_CRL_SIGN);
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
    if ((flags & EXFLAG_KUSAGE) && !(X509_get_key_usage(ca) & need_ku)) {
        return need_ku == KU_KEY_CERT_SIGN
                   ? err_set(err, -EINVAL, CERTD_E_CA_NO_KEYCERTSIGN,
                             "the CA certificate's KeyUsage lacks keyCertSign, so it may not sign "
                             "certificates")
                   : err_set(err, -EINVAL, CERTD_E_KEY_USAGE_MISMATCH,
                             "the CA certificate's KeyUsage lacks cRLSign, so it may not sign "
                             "CRLs");
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

/* The signing key must be the issuer's: anything else makes a signature nobody can check. */
static int check_issuer_key(X509 *ca, EVP_PKEY *ca_key, struct certd_err *err)
{
    if (EVP_PKEY_eq(X509_get0_pubkey(ca), ca_key) != 1) {
        (void)ossl_drain_errors("issue: CA key");
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "the CA key does not match the CA certificate");
    }
    return 0;
}

/* The CSR's subject with CN and the attributes the profile keeps; *ret NULL: keep it whole. */
static int subject_for_profile(const X509_NAME *subject, const struct issue_profile *profile,
                               X509_NAME **ret, struct certd_err *err)
{
    if (profile->require_cn && X509_NAME_get_index_by_NID(subject, NID_commonName, -1) < 0) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_MISSING, "CommonName",
                             "the CSR's subject has no CN (common name), which this CA requires");
    }
    *ret = NULL;
    if (!profile->filter_subject) {
        return 0;
    }
    _cleanup_(cleanup_X509_NAME) X509_NAME *name = X509_NAME_new();
    if (!name) {
        return oom(err);
    }
    int n = X509_NAME_entry_count(subject);
    for (int i = 0; i < n; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        bool keep = nid == NID_commonName;
        for (size_t k = 0; k < profile->n_keep_subject_nids && !keep; k++) {
            keep = profile->keep_subject_nids[k] == nid;
        }
        if (keep && X509_NAME_add_entry(name, e, -1, 0) != 1) {
            return oom(err);
        }
    }
    *ret = TAKE_PTR(name);
    return 0;
}

/* With refuse_excess_requests: what the CSR asks for must be within what we give. */
static int check_requested(X509_REQ *csr, const struct issue_profile *profile, uint32_t ku,
                           struct certd_err *err)
{
    _cleanup_(cleanup_x509_ext_stack) x509_ext_stack *exts = X509_REQ_get_extensions(csr);
    int crit = 0;

    if (!profile->refuse_excess_requests || !exts) {
        (void)ossl_drain_errors("issue: CSR extensions");
        return 0;
    }
    _cleanup_(cleanup_BASIC_CONSTRAINTS) BASIC_CONSTRAINTS *bc =
        X509V3_get_d2i(exts, NID_basic_constraints, &crit, NULL);
    if (bc && bc->ca && !profile->is_ca) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "the CSR asks for a CA certificate (basicConstraints CA:TRUE); this CA "
                       "issues end-entity certificates only");
    }
    _cleanup_(cleanup_ASN1_BIT_STRING) ASN1_BIT_STRING *bs =
        X509V3_get_d2i(exts, NID_key_usage, &crit, NULL);
    if (bs) {
        uint32_t x509_ku = 0;
        for (int i = 0; i < 9; i++) {
            if (ASN1_BIT_STRING_get_bit(bs, i)) {
                x509_ku |= i < 8 ? 0x80u >> i : 0x8000u;
            }
        }
        uint32_t asked = key_usage_from_x509_bits(x509_ku), extra = asked & ~ku;
        if (extra) {
            return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                           "the CSR asks for key usage %s, which this CA does not give",
                           key_usage_bit_name(extra & -extra));
        }
    }
    _cleanup_(cleanup_EXTENDED_KEY_USAGE) EXTENDED_KEY_USAGE *eku =
        X509V3_get_d2i(exts, NID_ext_key_usage, &crit, NULL);
    for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
        const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
        uint32_t bit = eku_bit_from_nid(OBJ_obj2nid(obj));
        if (!bit || !(profile->eku & bit)) {
            char name[80];
            if (bit) {
                (void)snprintf(name, sizeof(name), "%s", eku_bit_name(bit));
            } else if (OBJ_obj2txt(name, (int)sizeof(name), obj, 1) <= 0) {
                (void)snprintf(name, sizeof(name), "(unreadable)");
            }
            return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                           "the CSR asks for extended key usage %s, which this CA does not give",
                           name);
        }
    }
    (void)ossl_drain_errors("issue: CSR extensions");
    return 0;
}

/*
 * Steps 1-3 of issue_from_csr, and the profile's subject rules: proof of possession first
 * (nothing from an unverified request is used), then the key under the same strength policy
 * as uploaded keys (the CA vouches for it), then the subject. *ret_pub is borrowed from csr;
 * *ret_kept the filtered subject, NULL when the CSR's stands.
 */
static int csr_check_head(OSSL_LIB_CTX *libctx, const char *propq, X509_REQ *csr,
                          const struct issue_profile *profile, EVP_PKEY **ret_pub,
                          X509_NAME **ret_kept, struct certd_err *err)
{
    EVP_PKEY *pub = X509_REQ_get0_pubkey(csr);
    if (!pub) {
        (void)ossl_drain_errors("issue: CSR key");
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "the CSR's public key cannot be decoded");
    }
    if (!profile->is_csr_verified && X509_REQ_verify_ex(csr, pub, libctx, propq) != 1) {
        (void)ossl_drain_errors("issue: CSR verify");
        return err_set(err, -EBADMSG, CERTD_E_CSR_SIGNATURE, "the CSR's signature does not verify");
    }
    int r = key_check_strength(pub, &profile->keys, "the CSR's key", err);
    if (r < 0) {
        return r;
    }
    r = check_csr_subject(X509_REQ_get_subject_name(csr), err);
    if (r < 0) {
        return r;
    }
    r = subject_for_profile(X509_REQ_get_subject_name(csr), profile, ret_kept, err);
    if (r < 0) {
        return r;
    }
    *ret_pub = pub;
    return 0;
}

int issue_check_csr(OSSL_LIB_CTX *libctx, const char *propq, X509_REQ *csr,
                    const struct issue_profile *profile, struct certd_err *err)
{
    _cleanup_(cleanup_X509_NAME) X509_NAME *kept = NULL;
    EVP_PKEY *pub = NULL;
    int r;

    assert_return(csr && profile, -EINVAL);
    r = csr_check_head(libctx, propq, csr, profile, &pub, &kept, err);
    if (r < 0) {
        return r;
    }
    const X509_NAME *subject = X509_REQ_get_subject_name(csr);
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *sans = NULL;
    if (profile->copy_sans) {
        r = csr_sans(csr, profile->allowed_sans, &sans, err);
        if (r < 0) {
            return r;
        }
    }
    if (X509_NAME_entry_count(kept ? kept : subject) == 0 &&
        (!sans || sk_GENERAL_NAME_num(sans) == 0)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_MISSING,
                       "the CSR has an empty subject and no alternative name that this "
                       "profile copies; a certificate needs one or the other");
    }
    uint32_t ku = profile->key_usage;
    if (ku == 0) {
        ku =
            profile->is_ca ? CERT_KU_KEY_CERT_SIGN | CERT_KU_CRL_SIGN : default_leaf_key_usage(pub);
    }
    return check_requested(csr, profile, ku, err);
}

int issue_from_csr(OSSL_LIB_CTX *libctx, const char *propq, X509_REQ *csr, X509 *ca_cert,
                   EVP_PKEY *ca_key, const struct issue_profile *profile, int64_t now, X509 **ret,
                   struct certd_err *err)
{
    _cleanup_(cleanup_X509_NAME) X509_NAME *kept = NULL;
    EVP_PKEY *pub = NULL;
    int r;

    assert_return(csr && ca_key && profile && ret, -EINVAL);
    r = csr_check_head(libctx, propq, csr, profile, &pub, &kept, err);
    if (r < 0) {
        return r;
    }
    const X509_NAME *subject = X509_REQ_get_subject_name(csr);
    if (kept) {
        subject = kept;
    }
    r = check_days(profile->days, err);
    if (r < 0) {
        return r;
    }
    if (profile->is_ca && profile->path_len < -1) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "the path length must be -1 or more");
    }
    if (ca_cert) {
        r = check_issuer(ca_cert, now, KU_KEY_CERT_SIGN, err);
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
        r = check_issuer_key(ca_cert, ca_key, err);
        if (r < 0) {
            return r;
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
    r = check_requested(csr, profile, ku, err);
    if (r < 0) {
        return r;
    }
    struct cert_params p = {
        .subject = subject,
        .issuer = ca_cert ? X509_get_subject_name(ca_cert) : subject,
        .subject_key = pub,
        .spki = profile->is_key_not_needed ? X509_REQ_get_X509_PUBKEY(csr) : NULL,
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

int issue_ca_root(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key,
                  const struct ca_root_request *req, X509 **ret, struct certd_err *err)
{
    int r;

    assert_return(key && req && ret, -EINVAL);

    _cleanup_(cleanup_X509_NAME) X509_NAME *name = NULL;
    r = subject_from_fields(req->common_name, req->organization, &name, err);
    if (r < 0) {
        return r;
    }
    r = check_days(req->days, err);
    if (r < 0) {
        return r;
    }
    /* Everything the CA signs rests on this key: the policy for CSR keys at the least. */
    r = key_check_strength(key, &req->keys, "the CA key", err);
    if (r < 0) {
        return r;
    }
    /*
     * pathLenConstraint 0 (RFC 5280 §4.2.1.9): certd's CA issues end-entity certificates only,
     * so a stolen client certificate can never pass for an intermediate.
     */
    struct cert_params p = {
        .subject = name,
        .issuer = name,
        .subject_key = key,
        .ca = NULL,
        .signing_key = key,
        .now = req->now,
        .days = req->days,
        .is_ca = true,
        .path_len = 0,
        .key_usage = CERT_KU_KEY_CERT_SIGN | CERT_KU_CRL_SIGN,
        .eku = 0,
        .sans = NULL,
    };
    return cert_build(libctx, propq, &p, ret, err);
}

/* RFC 5280 §5.3.1 CRLReason: 0-10 without 7, which is not assigned. */
static bool crl_reason_valid(int reason)
{
    return reason >= CRL_REASON_UNSPECIFIED && reason <= CRL_REASON_AA_COMPROMISE && reason != 7;
}

/* RFC 5280 §4.1.2.2: a positive INTEGER of at most 20 octets (OpenSSL keeps the magnitude). */
static bool serial_valid(const ASN1_INTEGER *serial)
{
    if (!serial || ASN1_STRING_type(serial) != V_ASN1_INTEGER) {
        return false;
    }
    int len = ASN1_STRING_length(serial);
    const unsigned char *data = ASN1_STRING_get0_data(serial);
    /*
     * The magnitude, at most 20 octets; its DER may need one more for the sign bit, which we
     * accept as §4.1.2.2 asks certificate users to: the entries name certificates issued.
     */
    if (len < 1 || len > 20 || !data) {
        return false;
    }
    for (int i = 0; i < len; i++) {
        if (data[i] != 0) {
            return true;
        }
    }
    return false;
}

static int check_crl_entry(const struct crl_entry *e, size_t i, int64_t now, struct certd_err *err)
{
    if (!serial_valid(e->serial)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "the serial number of CRL entry %zu is not a positive integer of at most "
                       "20 octets",
                       i);
    }
    if (!crl_reason_valid(e->reason)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "CRL entry %zu has reason code %d, which RFC 5280 does not define", i,
                       e->reason);
    }
    /* A revocation after thisUpdate is one this CRL cannot know about yet. */
    if (e->revoked_at < 0 || e->revoked_at > now) {
        return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID,
                       "the revocation time of CRL entry %zu is not between 1970 and the CRL's "
                       "issuing time",
                       i);
    }
    return 0;
}

/*
 * Append one checked entry. serial, when and reason are scratch objects the caller reuses for
 * every entry: X509_REVOKED copies what it is given, and a million entries should not cost three
 * million allocations more than they need.
 */
static int crl_add_entry(X509_CRL *crl, const struct crl_entry *e, ASN1_INTEGER *serial,
                         ASN1_TIME **when, ASN1_ENUMERATED *reason)
{
    _cleanup_(cleanup_X509_REVOKED) X509_REVOKED *rev = X509_REVOKED_new();
    /* check_crl_entry put revoked_at between 0 and a now that period_end could represent. */
    if (!rev || ASN1_STRING_copy(serial, e->serial) != 1 ||
        X509_REVOKED_set_serialNumber(rev, serial) != 1 || time_at(e->revoked_at, 0, when) < 0 ||
        X509_REVOKED_set_revocationDate(rev, *when) != 1) {
        return -ENOMEM;
    }
    /* RFC 5280 §5.3.1: reasonCode unspecified (0) SHOULD be absent rather than present. */
    if (e->reason != CRL_REASON_UNSPECIFIED &&
        (ASN1_ENUMERATED_set(reason, e->reason) != 1 ||
         X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, X509V3_ADD_DEFAULT) != 1)) {
        return -ENOMEM;
    }
    if (X509_CRL_add0_revoked(crl, rev) != 1) {
        return -ENOMEM;
    }
    TAKE_PTR(rev);
    return 0;
}

int issue_crl(OSSL_LIB_CTX *libctx, const char *propq, X509 *ca_cert, EVP_PKEY *ca_key,
              const struct crl_entry *entries, size_t n, uint64_t number, int64_t now,
              int64_t next_update_seconds, X509_CRL **ret, struct certd_err *err)
{
    int r;

    assert_return(ca_cert && ca_key && ret && (entries || n == 0), -EINVAL);

    if (n > ISSUE_CRL_ENTRIES_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                       "a CRL may list at most %u revoked certificates", ISSUE_CRL_ENTRIES_MAX);
    }
    if (next_update_seconds <= 0 ||
        next_update_seconds > (int64_t)CERTD_VALIDITY_DAYS_MAX * SECONDS_PER_DAY) {
        return err_set(err, -EINVAL, CERTD_E_VALIDITY_INVALID,
                       "the CRL's next update must be 1 second to %u days after its issuing time",
                       CERTD_VALIDITY_DAYS_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        r = check_crl_entry(&entries[i], i, now, err);
        if (r < 0) {
            return r;
        }
    }
    r = check_issuer(ca_cert, now, KU_CRL_SIGN, err);
    if (r < 0) {
        return r;
    }
    r = check_issuer_key(ca_cert, ca_key, err);
    if (r < 0) {
        return r;
    }
    /* RFC 5280 §5.1.2.5: nextUpdate, which we always give; never beyond the CA's notAfter. */
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *next = NULL;
    r = period_end(ca_cert, now, next_update_seconds, &next, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_AUTHORITY_KEYID) AUTHORITY_KEYID *akid = NULL;
    r = authority_key_id(libctx, propq, ca_cert, NULL, &akid, err);
    if (r < 0) {
        return r;
    }

    _cleanup_(cleanup_X509_CRL) X509_CRL *crl = X509_CRL_new_ex(libctx, propq);
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *this_update = NULL;
    /* RFC 5280 §5.1.2.1: v2, for the extensions. */
    if (!crl || X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) != 1 ||
        time_at(now, 0, &this_update) < 0 || X509_CRL_set1_lastUpdate(crl, this_update) != 1 ||
        X509_CRL_set1_nextUpdate(crl, next) != 1) {
        return oom(err);
    }

    _cleanup_(cleanup_ASN1_INTEGER) ASN1_INTEGER *serial = ASN1_INTEGER_new();
    _cleanup_(cleanup_ASN1_TIME) ASN1_TIME *when = NULL;
    _cleanup_(cleanup_ASN1_ENUMERATED) ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
    if (!serial || !reason) {
        return oom(err);
    }
    for (size_t i = 0; i < n; i++) {
        if (crl_add_entry(crl, &entries[i], serial, &when, reason) < 0) {
            return oom(err);
        }
    }

    /* RFC 5280 §5.2.3: cRLNumber, non-critical; §5.2.1: AKI, non-critical. */
    _cleanup_(cleanup_ASN1_INTEGER) ASN1_INTEGER *crl_number = ASN1_INTEGER_new();
    if (!crl_number || ASN1_INTEGER_set_uint64(crl_number, number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number, 0, X509V3_ADD_DEFAULT) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) !=
            1) {
        return oom(err);
    }

    r = sign_object(libctx, propq, NULL, crl, ca_key, err);
    if (r < 0) {
        return r;
    }
    /*
     * Hand out the CRL decoded from its signed DER. A CRL built in memory has no saved encoding:
     * i2d re-encodes it, and OpenSSL's lookups (X509_CRL_get0_by_serial, X509_verify_cert)
     * sort its entries in place, after which the DER no longer matches the signature. Decoded,
     * it keeps its encoding, and OpenSSL fills the caches (AKI, cRLNumber) that verification
     * reads.
     */
    _cleanup_(ossl_bytes_free) unsigned char *der = NULL;
    int der_len = i2d_X509_CRL(crl, &der);
    if (der_len <= 0) {
        return oom(err);
    }
    _cleanup_(cleanup_X509_CRL) X509_CRL *out = X509_CRL_new_ex(libctx, propq);
    const unsigned char *p = der;
    if (!out || !d2i_X509_CRL(&out, &p, der_len) || p != der + der_len) {
        return oom(err);
    }
    *ret = TAKE_PTR(out);
    return 0;
}
