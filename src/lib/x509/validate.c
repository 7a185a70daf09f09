/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validate a parsed upload for an endpoint type (x509/validate.h). The rules run in a fixed order
 * and the first violated one is reported, with the certificate named by its subject CN (or its
 * position) so that a user can tell which one to fix. Nothing here reads the clock: the policy
 * carries the time, so a controller that booted in 1970 and a unit test judge the same bundle the
 * same way. *ret is written only when every rule holds. Messages name certificates, never keys.
 */
#include "x509/validate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "x509/inspect.h"

/* A CN is at most 64 characters (X.520), up to 4 UTF-8 bytes each; longer ones
 * are cut. */
#define LABEL_MAX 96u
/* "2024-01-01T00:00:00Z" and room to spare. */
#define ISO_MAX 32u
/*
 * The least security, in bits, a certificate signature we rely on may give: 112, as NIST SP
 * 800-57 Part 1 and SP 800-131A require since 2014 (SHA-224 and up; no SHA-1 or MD5).
 */
#define SIG_SECURITY_BITS_MIN 112

static const char *const endpoint_names[ENDPOINT_TYPE_MAX] = {
    [ENDPOINT_SERVER] = "server",
    [ENDPOINT_CLIENT] = "client",
    [ENDPOINT_AUTHORITY] = "authority",
};

const char *endpoint_type_name(enum endpoint_type t)
{
    if ((unsigned)t >= ENDPOINT_TYPE_MAX) {
        return NULL;
    }
    return endpoint_names[t];
}

int endpoint_type_from_name(const char *s, enum endpoint_type *ret)
{
    assert_return(s, -EINVAL);
    assert_return(ret, -EINVAL);
    for (size_t i = 0; i < ENDPOINT_TYPE_MAX; i++) {
        if (str_case_eq(s, endpoint_names[i])) {
            *ret = (enum endpoint_type)i;
            return 0;
        }
    }
    return -EINVAL;
}

void validate_policy_init(struct validate_policy *pol, int64_t now)
{
    *pol = (struct validate_policy){
        .expired = VALIDITY_ACCEPT_WARN,
        .not_yet_valid = VALIDITY_ACCEPT_WARN,
        .keys = { .allow_ed25519 = false },
        .max_certs = CERTD_AUTHORITY_MAX_DEFAULT,
        .now = now,
    };
}

/*
 * Name certificate `pos` (0-based) for a message: "'server.example.com'" from the subject CN, or
 * "#2" when it has none we can show. Cosmetic, so it never fails: a CN that is not valid ASN.1
 * text, holds a NUL or does not fit is replaced by the position. err_set() later turns control
 * characters into '?'.
 */
static void cert_label(X509 *x, size_t pos, char *buf, size_t size)
{
    const X509_NAME *subject = X509_get_subject_name(x);
    int idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
    if (idx >= 0) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(subject, idx);
        const ASN1_STRING *s = e ? X509_NAME_ENTRY_get_data(e) : NULL;
        unsigned char *utf8 = NULL;
        int n = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
        if (n > 0 && (size_t)n <= LABEL_MAX && !memchr(utf8, '\0', (size_t)n)) {
            (void)snprintf(buf, size, "'%.*s'", n, (const char *)utf8);
            OPENSSL_free(utf8);
            return;
        }
        OPENSSL_free(utf8);
    }
    (void)snprintf(buf, size, "#%zu (no common name)", pos + 1);
}

/* An ASN1_TIME as ISO 8601 UTC (inspect's conversion); "(unreadable date)" if it does not decode.
 */
static void time_to_iso8601(const ASN1_TIME *t, char *buf, size_t size)
{
    int64_t secs = 0;
    if (asn1_time_to_unix(t, &secs) < 0) {
        (void)snprintf(buf, size, "(unreadable date)");
        return;
    }
    unix_to_iso8601(secs, buf, size);
}

/*
 * The validity rules shared by every endpoint type (RFC 5280 §4.1.2.5). notBefore before the epoch
 * is always refused: such dates break 32-bit and unsigned time handling in the clients we serve.
 * Outside notBefore..notAfter as of pol->now: refused or recorded per policy. On acceptance the
 * first warning wins, so a bundle reports its first problem.
 */
static int check_validity(X509 *x, const char *label, const struct validate_policy *pol,
                          struct validate_result *res, struct certd_err *err)
{
    const ASN1_TIME *nb = X509_get0_notBefore(x);
    const ASN1_TIME *na = X509_get0_notAfter(x);
    char iso[ISO_MAX];
    int c;

    if (!nb || !na) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD, "the certificate %s has no validity period",
                       label);
    }

    c = ASN1_TIME_cmp_time_t(nb, 0);
    if (c == -2) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the certificate %s has an unreadable notBefore date", label);
    }
    if (c < 0) {
        time_to_iso8601(nb, iso, sizeof(iso));
        return err_set(err, -EKEYEXPIRED, CERTD_E_CERT_BEFORE_1970,
                       "the certificate %s is valid from %s, before 1970-01-01", label, iso);
    }

    time_t now = (time_t)pol->now;
    c = ASN1_TIME_cmp_time_t(na, now);
    if (c == -2) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the certificate %s has an unreadable notAfter date", label);
    }
    if (c < 0) {
        time_to_iso8601(na, iso, sizeof(iso));
        if (pol->expired == VALIDITY_REJECT) {
            return err_set(err, -EKEYEXPIRED, CERTD_E_CERT_EXPIRED,
                           "the certificate %s expired on %s", label, iso);
        }
        if (!res->is_expired && !res->is_not_yet_valid) {
            (void)snprintf(res->warning, sizeof(res->warning), "the certificate %s expired on %s",
                           label, iso);
        }
        res->is_expired = true;
    }

    c = ASN1_TIME_cmp_time_t(nb, now);
    if (c > 0) {
        time_to_iso8601(nb, iso, sizeof(iso));
        if (pol->not_yet_valid == VALIDITY_REJECT) {
            return err_set(err, -EKEYEXPIRED, CERTD_E_CERT_NOT_YET_VALID,
                           "the certificate %s is not valid before %s", label, iso);
        }
        if (!res->is_expired && !res->is_not_yet_valid) {
            (void)snprintf(res->warning, sizeof(res->warning),
                           "the certificate %s is not valid before %s", label, iso);
        }
        res->is_not_yet_valid = true;
    }
    return 0;
}

/*
 * OpenSSL caches the decoded extensions on first use and flags certificates whose extensions are
 * repeated or malformed (RFC 5280 §4.2: "MUST NOT include more than one instance"). Such a
 * certificate cannot be judged by the rules below, so it is refused first.
 */
static int cert_flags(X509 *x, const char *label, uint32_t *ret, struct certd_err *err)
{
    uint32_t flags = X509_get_extension_flags(x);
    if (flags & EXFLAG_INVALID) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the certificate %s has malformed or repeated extensions", label);
    }
    *ret = flags;
    return 0;
}

static bool flags_is_ca(uint32_t flags)
{
    /* basicConstraints present with cA TRUE (RFC 5280 §4.2.1.9); v1 roots do not
     * count. */
    return (flags & EXFLAG_BCONS) && (flags & EXFLAG_CA);
}

/* Append "name" to a comma-separated list in buf, cutting at its size. */
static void list_append(char *buf, size_t size, const char *name)
{
    size_t len = strnlen(buf, size);
    if (len + 1 >= size) {
        return;
    }
    (void)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", name);
}

/* The EKU purposes of x, by OpenSSL short name ("codeSigning") or dotted OID. */
static void eku_list(X509 *x, char *buf, size_t size)
{
    _cleanup_(cleanup_EXTENDED_KEY_USAGE) EXTENDED_KEY_USAGE *eku =
        X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    buf[0] = '\0';
    if (!eku) {
        list_append(buf, size, "(unreadable)");
        return;
    }
    int n = sk_ASN1_OBJECT_num(eku);
    for (int i = 0; i < n && (size_t)i < CERTD_EKUS_MAX; i++) {
        const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
        int nid = OBJ_obj2nid(o);
        const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
        char oid[80];
        if (!sn) {
            if (OBJ_obj2txt(oid, sizeof(oid), o, 1) <= 0) {
                (void)snprintf(oid, sizeof(oid), "(unknown)");
            }
            sn = oid;
        }
        list_append(buf, size, sn);
    }
    if (n <= 0) {
        list_append(buf, size, "no purpose");
    }
}

/* OpenSSL's KeyUsage bits (X509_get_key_usage) by their RFC 5280 names, as inspect names them. */
static void key_usage_list(uint32_t ku, char *buf, size_t size)
{
    uint32_t bits = key_usage_from_x509_bits(ku);
    buf[0] = '\0';
    for (uint32_t b = 1; b != 0 && b <= bits; b <<= 1) {
        if (bits & b) {
            list_append(buf, size, key_usage_bit_name(b));
        }
    }
    if (!buf[0]) {
        list_append(buf, size, "no usage");
    }
}

/*
 * May x follow the end-entity certificate as part of its chain, as far as rule 1 is concerned? It
 * may unless it is an explicit end entity: cA FALSE, or a v3 certificate without the extension,
 * whose key "MUST NOT be used to verify certificate signatures" (RFC 5280 §4.2.1.9). A v1 or v2
 * certificate without basicConstraints cannot say what it is (extensions exist only in v3, RFC
 * 5280 §4.1.2.9); whether it may issue is rule 4's question (cert_is_ca).
 */
static bool cert_can_follow(X509 *x, uint32_t flags)
{
    if (flags & EXFLAG_BCONS) {
        return (flags & EXFLAG_CA) != 0;
    }
    return X509_get_version(x) < X509_VERSION_3;
}

/*
 * May x issue certificates? OpenSSL's own test (X509_check_ca, as `openssl verify` applies it):
 * basicConstraints cA TRUE with keyCertSign when KeyUsage is present (RFC 5280 §4.2.1.3), or a
 * self-signed v1 root. Restricted to what cert_can_follow admits, so that a v3 certificate without
 * basicConstraints, which X509_check_ca tolerates when its KeyUsage has keyCertSign, is no CA.
 */
static bool cert_is_ca(X509 *x)
{
    return cert_can_follow(x, X509_get_extension_flags(x)) && X509_check_ca(x) != 0;
}

/*
 * Which certificate the key belongs to: the key in the upload wins over the pending CSR key, as
 * in rule 2. Sets *ret_key to that key (borrowed; NULL when there is neither) and *ret_pos to the
 * position of the first certificate holding its public key, or n when none does. Certificate 0 is
 * tried first, so a key matching it is never reported elsewhere. A certificate whose key cannot be
 * decoded matches nothing here; rule 2 reports it when it is certificate 0.
 */
static void find_key_cert(const struct bundle *b, size_t n, EVP_PKEY *pending_key,
                          EVP_PKEY **ret_key, size_t *ret_pos)
{
    EVP_PKEY *key = b->key ? b->key : pending_key;
    size_t pos = n;

    for (size_t i = 0; key && i < n; i++) {
        const EVP_PKEY *pub = X509_get0_pubkey(bundle_cert(b, i));
        if (!pub) {
            (void)ossl_drain_errors("certificate public key");
            continue;
        }
        if (key_public_eq(key, pub)) {
            pos = i;
            break;
        }
    }
    *ret_key = key;
    *ret_pos = pos;
}

/*
 * The key belongs to certificate `pos` > 0, so the upload is out of order: most often an
 * intermediate pasted before the leaf. Saying so helps more than "the key does not match".
 */
static int err_key_not_first(const struct bundle *b, size_t pos, struct certd_err *err)
{
    char label[LABEL_MAX + 32];
    cert_label(bundle_cert(b, pos), pos, label, sizeof(label));
    return err_set(
        err, -EINVAL, CERTD_E_CHAIN_ORDER,
        "the certificate for the %s must come first, followed by its issuers; it is %s at position %zu",
        b->key ? "private key" : "key of the pending CSR", label, pos + 1);
}

/*
 * Rule 1 (server/client): exactly one leaf. Certificate 0 is the end-entity certificate, whatever
 * its basicConstraints: a self-signed CA:TRUE certificate, as `openssl req -x509` makes by
 * default, is a valid HTTPS certificate on a controller. No later certificate may be an explicit
 * end entity (cert_can_follow). When one is, the upload is most often out of order rather than
 * holding two leaves, and that is reported instead: when the key belongs to it (a reversed
 * upload), or when it is the only one and certificate 0 is a CA that the key does not belong to
 * (an intermediate pasted first).
 */
static int check_one_leaf(const struct bundle *b, size_t n, size_t key_pos, struct certd_err *err)
{
    char label[LABEL_MAX + 32], ca_label[LABEL_MAX + 32];
    size_t first_ee = 0, n_ee = 0;

    /* Certificates with unreadable extensions cannot be judged, wherever they are. */
    for (size_t i = 0; i < n; i++) {
        uint32_t flags = 0;
        cert_label(bundle_cert(b, i), i, label, sizeof(label));
        int r = cert_flags(bundle_cert(b, i), label, &flags, err);
        if (r < 0) {
            return r;
        }
    }
    for (size_t i = 1; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        if (cert_can_follow(x, X509_get_extension_flags(x))) {
            continue;
        }
        if (n_ee == 0) {
            first_ee = i;
        }
        n_ee++;
    }
    if (n_ee == 0) {
        return 0;
    }
    if (key_pos == first_ee) {
        return err_key_not_first(b, first_ee, err);
    }
    cert_label(bundle_cert(b, first_ee), first_ee, label, sizeof(label));
    if (n_ee == 1 && key_pos != 0 && cert_is_ca(bundle_cert(b, 0))) {
        cert_label(bundle_cert(b, 0), 0, ca_label, sizeof(ca_label));
        return err_set(
            err, -EINVAL, CERTD_E_CHAIN_ORDER,
            "the end-entity certificate must come first, followed by its issuers; it is %s at position %zu, after the CA certificate %s",
            label, first_ee + 1, ca_label);
    }
    return err_set(
        err, -EINVAL, CERTD_E_NOT_ONE_LEAF,
        "more than one end-entity certificate: %s at position %zu is not a CA; only the first certificate may be an end-entity certificate, followed by its issuers",
        label, first_ee + 1);
}

/*
 * Rule 2 (server/client): the key that goes with the leaf: the one in the upload, or else the
 * pending CSR key. key and key_pos come from find_key_cert().
 */
static int check_leaf_key(const struct bundle *b, size_t n, const char *label, EVP_PKEY *key,
                          size_t key_pos, struct validate_result *res, struct certd_err *err)
{
    if (!X509_get0_pubkey(bundle_cert(b, 0))) {
        (void)ossl_drain_errors("leaf public key");
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the public key of the certificate %s cannot be decoded", label);
    }
    if (!key) {
        return err_set(
            err, -EINVAL, CERTD_E_KEY_MISSING,
            "no private key was included for the certificate %s, and there is no pending CSR whose key it could match",
            label);
    }
    if (key_pos == 0) {
        res->uses_pending_key = !b->key;
        return 0;
    }
    if (key_pos < n) {
        return err_key_not_first(b, key_pos, err);
    }
    if (b->key) {
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "the private key does not match the certificate %s", label);
    }
    return err_set(
        err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
        "the certificate %s does not match the key of the pending CSR, and no private key was included",
        label);
}

/* The signature algorithm of x for a message: "ecdsa-with-SHA1", or its OID when OpenSSL has no
 * name for it. */
static void sig_alg_name(X509 *x, char *buf, size_t size)
{
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *obj = NULL;
    X509_get0_signature(NULL, &alg, x);
    if (alg) {
        X509_ALGOR_get0(&obj, NULL, NULL, alg);
    }
    int nid = obj ? OBJ_obj2nid(obj) : NID_undef;
    const char *ln = nid != NID_undef ? OBJ_nid2ln(nid) : NULL;
    if (ln) {
        (void)snprintf(buf, size, "%s", ln);
    } else if (!obj || OBJ_obj2txt(buf, (int)size, obj, 1) <= 0) {
        (void)snprintf(buf, size, "(unknown)");
    }
}

/*
 * The signature on x must give at least SIG_SECURITY_BITS_MIN bits of security (NIST SP 800-131A:
 * no MD5 or SHA-1 for signatures; SHA-224 and up, Ed25519). OpenSSL rates the digest the way its
 * security levels do (X509_get_signature_info: SHA-1 63, MD5 39, SHA-256 128). Callers skip a
 * self-signed root: its own signature is not relied upon, only its key.
 */
static int check_signature_strength(X509 *x, const char *label, struct certd_err *err)
{
    char alg[80];
    int secbits = 0;

    if (X509_get_signature_info(x, NULL, NULL, &secbits, NULL) != 1) {
        (void)ossl_drain_errors("signature info");
        sig_alg_name(x, alg, sizeof(alg));
        return err_set(
            err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED,
            "the certificate %s is signed with %s, an algorithm whose strength is unknown", label,
            alg);
    }
    if (secbits < SIG_SECURITY_BITS_MIN) {
        sig_alg_name(x, alg, sizeof(alg));
        return err_set(
            err, -EKEYREJECTED, CERTD_E_SIGNATURE_WEAK,
            "the certificate %s is signed with %s, a weak algorithm (%d bits of security; at least %d required: SHA-224 or stronger, or Ed25519)",
            label, alg, secbits, SIG_SECURITY_BITS_MIN);
    }
    return 0;
}

/* Is x signed by its own key (names and signature)? Errors count as "no". */
static bool cert_is_self_signed(X509 *x)
{
    if (X509_self_signed(x, 1) == 1) {
        return true;
    }
    (void)ossl_drain_errors("self-signed check");
    return false;
}

/*
 * check_signature_strength(), except that with root_exempt a certificate that signed itself
 * passes whatever its digest. The self-signature (a public-key operation, the costliest step of
 * validation) is verified only when the digest alone would fail.
 */
static int check_signature(X509 *x, bool root_exempt, const char *label, struct certd_err *err)
{
    struct certd_err mine = { 0 };
    int r = check_signature_strength(x, label, &mine);
    if (r == 0 || (root_exempt && cert_is_self_signed(x))) {
        return 0;
    }
    return err_set(err, r, mine.code, "%s", mine.msg);
}

/*
 * Rule 4 (server/client): the chain. In order: at most CERTD_CHAIN_DEPTH_MAX certificates; no
 * certificate repeated (checked before the links, whose message would only confuse); every
 * certificate after the leaf a CA (X509_check_ca); each certificate issued by the next (RFC 5246
 * §7.4.2, RFC 8446 §4.4.2: the sender's certificate first, each following one certifying the one
 * before): names and key identifiers link (X509_check_issued) and the signature verifies with the
 * issuer's key; pathLenConstraint holds; every signature is strong, except a self-signed last
 * certificate's own. Reaching a trust anchor is not required: most uploads are leaf-only.
 */
static int check_chain(const struct bundle *b, size_t n, struct certd_err *err)
{
    char label[LABEL_MAX + 32], ilabel[LABEL_MAX + 32];

    if (n > CERTD_CHAIN_DEPTH_MAX) {
        return err_set(err, -E2BIG, CERTD_E_CHAIN_TOO_LONG,
                       "the chain holds %zu certificates; at most %u are accepted", n,
                       CERTD_CHAIN_DEPTH_MAX);
    }

    /* A repeated certificate makes a malformed chain (RFC 8446 §4.4.2 lists each once). */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (X509_cmp(bundle_cert(b, i), bundle_cert(b, j)) == 0) {
                cert_label(bundle_cert(b, i), i, label, sizeof(label));
                return err_set(err, -EINVAL, CERTD_E_CHAIN_ORDER,
                               "certificate %zu %s repeats certificate %zu; list each issuer once",
                               i + 1, label, j + 1);
            }
        }
    }

    /*
     * Rule 1 let through only CAs and v1/v2 certificates. Only a CA may issue (RFC 5280 §4.2.1.9,
     * §4.2.1.3): a v1 certificate counts as one only as a self-signed root, as in `openssl verify`.
     */
    for (size_t i = 1; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        if (cert_is_ca(x)) {
            continue;
        }
        cert_label(x, i, label, sizeof(label));
        uint32_t ku = X509_get_key_usage(x);
        if ((X509_get_extension_flags(x) & EXFLAG_BCONS) && ku != UINT32_MAX &&
            !(ku & KU_KEY_CERT_SIGN)) {
            char list[160];
            key_usage_list(ku, list, sizeof(list));
            return err_set(
                err, -EINVAL, CERTD_E_CA_NO_KEYCERTSIGN,
                "the CA certificate %s at position %zu has KeyUsage %s, without keyCertSign, so it cannot issue certificates",
                label, i + 1, list);
        }
        return err_set(
            err, -EINVAL, CERTD_E_NOT_CA,
            "the certificate %s at position %zu is not a CA: without basicConstraints, only a self-signed v1 root may issue certificates",
            label, i + 1);
    }

    for (size_t i = 0; i + 1 < n; i++) {
        X509 *x = bundle_cert(b, i);
        X509 *issuer = bundle_cert(b, i + 1);
        EVP_PKEY *ikey = X509_get0_pubkey(issuer);
        bool is_issued = X509_check_issued(issuer, x) == X509_V_OK;

        /* X509_verify returns 1, 0 (bad signature) or -1 (error); only 1 links. */
        bool is_signed = is_issued && ikey && X509_verify(x, ikey) == 1;
        if (!is_signed) {
            (void)ossl_drain_errors("chain link");
            cert_label(x, i, label, sizeof(label));
            cert_label(issuer, i + 1, ilabel, sizeof(ilabel));
            return err_set(
                err, -EINVAL, CERTD_E_CHAIN_ORDER,
                "certificate %zu %s was not issued by certificate %zu %s; each certificate must be followed by its issuer",
                i + 1, label, i + 2, ilabel);
        }
    }

    /*
     * RFC 5280 §4.2.1.9: pathLenConstraint is the number of non-self-issued intermediate
     * certificates that may follow a CA in the path, the leaf not counted. In the upload those
     * are positions 1 .. i-1 below CA i.
     */
    size_t n_below = 0;
    for (size_t i = 1; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        long pathlen = X509_get_pathlen(x);
        if (pathlen >= 0 && n_below > (size_t)pathlen) {
            cert_label(x, i, label, sizeof(label));
            return err_set(
                err, -E2BIG, CERTD_E_CHAIN_TOO_LONG,
                "the CA certificate %s at position %zu allows %ld intermediate CAs below it (pathLenConstraint %ld), but the chain has %zu",
                label, i + 1, pathlen, pathlen, n_below);
        }
        if (!(X509_get_extension_flags(x) & EXFLAG_SI)) {
            n_below++;
        }
    }

    for (size_t i = 0; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        cert_label(x, i, label, sizeof(label));
        /* The last certificate may be a root: its own signature is not relied upon. */
        int r = check_signature(x, i + 1 == n, label, err);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* Rule 5 (server/client): EKU and KeyUsage allow the use (RFC 5280 §4.2.1.12,
 * §4.2.1.3). */
static int check_usage(X509 *leaf, const char *label, enum endpoint_type type,
                       struct certd_err *err)
{
    char list[160];
    uint32_t xku = X509_get_extended_key_usage(leaf);
    uint32_t want = type == ENDPOINT_SERVER ? XKU_SSL_SERVER : XKU_SSL_CLIENT;

    /* UINT32_MAX: no EKU extension, which permits every purpose. */
    if (xku != UINT32_MAX && !(xku & (want | XKU_ANYEKU))) {
        eku_list(leaf, list, sizeof(list));
        return err_set(err, -EINVAL, CERTD_E_EKU_MISMATCH,
                       "the certificate %s is for %s, not %s (TLS %s authentication)", label, list,
                       type == ENDPOINT_SERVER ? "serverAuth" : "clientAuth",
                       type == ENDPOINT_SERVER ? "server" : "client");
    }

    uint32_t ku = X509_get_key_usage(leaf);
    if (ku != UINT32_MAX) {
        /* TLS signs with the key; RSA key transport (TLS 1.2) needs keyEncipherment
         * instead. */
        uint32_t allowed = KU_DIGITAL_SIGNATURE;
        bool is_rsa = EVP_PKEY_is_a(X509_get0_pubkey(leaf), "RSA") == 1;
        if (is_rsa) {
            allowed |= KU_KEY_ENCIPHERMENT;
        }
        if (!(ku & allowed)) {
            key_usage_list(ku, list, sizeof(list));
            return err_set(err, -EINVAL, CERTD_E_KEY_USAGE_MISMATCH,
                           "the certificate %s has KeyUsage %s; TLS needs digitalSignature%s",
                           label, list, is_rsa ? " or keyEncipherment" : "");
        }
    }
    return 0;
}

static int validate_leaf(const struct bundle *b, enum endpoint_type type,
                         const struct validate_policy *pol, EVP_PKEY *pending_key,
                         struct validate_result *res, struct certd_err *err)
{
    size_t n = bundle_n_certs(b), key_pos;
    char label[LABEL_MAX + 32], what[LABEL_MAX + 128];
    EVP_PKEY *key;
    int r;

    /* The order of issue #2: one leaf, its key, key strength, the chain, usage, validity. */
    find_key_cert(b, n, pending_key, &key, &key_pos);
    r = check_one_leaf(b, n, key_pos, err);
    if (r < 0) {
        return r;
    }

    X509 *leaf = bundle_cert(b, 0);
    cert_label(leaf, 0, label, sizeof(label));
    r = check_leaf_key(b, n, label, key, key_pos, res, err);
    if (r < 0) {
        return r;
    }

    /* Rule 3: strength, of every key: a weak issuer key lets anyone forge the leaf. */
    (void)snprintf(what, sizeof(what), "the key of the certificate %s", label);
    r = key_check_strength(X509_get0_pubkey(leaf), &pol->keys, what, err);
    if (r < 0) {
        return r;
    }
    for (size_t i = 1; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        char clabel[LABEL_MAX + 32];
        const EVP_PKEY *pub = X509_get0_pubkey(x);
        cert_label(x, i, clabel, sizeof(clabel));
        if (!pub) {
            (void)ossl_drain_errors("chain public key");
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "the public key of the certificate %s at position %zu cannot be decoded",
                           clabel, i + 1);
        }
        (void)snprintf(what, sizeof(what), "the key of the chain certificate %s at position %zu",
                       clabel, i + 1);
        r = key_check_strength(pub, &pol->keys, what, err);
        if (r < 0) {
            return r;
        }
    }

    r = check_chain(b, n, err);
    if (r < 0) {
        return r;
    }

    r = check_usage(leaf, label, type, err);
    if (r < 0) {
        return r;
    }

    /* Rule 6: validity. Intermediates are the issuer's business; only the pre-1970 rule applies
     * to them. */
    for (size_t i = 1; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        char clabel[LABEL_MAX + 32];
        struct validate_result ignored = { 0 };
        struct validate_policy lax = *pol;
        lax.expired = VALIDITY_ACCEPT_WARN;
        lax.not_yet_valid = VALIDITY_ACCEPT_WARN;
        cert_label(x, i, clabel, sizeof(clabel));
        r = check_validity(x, clabel, &lax, &ignored, err);
        if (r < 0) {
            return r;
        }
    }
    return check_validity(leaf, label, pol, res, err);
}

static bool cert_same_id(X509 *a, X509 *b)
{
    /* RFC 5280 §4.1.2.2: issuer and serial identify a certificate; the subject
     * too, here. */
    return X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) == 0 &&
           X509_NAME_cmp(X509_get_issuer_name(a), X509_get_issuer_name(b)) == 0 &&
           ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)) == 0;
}

static int validate_authority(const struct bundle *b, const struct validate_policy *pol,
                              const STACK_OF(X509) *existing, struct validate_result *res,
                              struct certd_err *err)
{
    size_t n = bundle_n_certs(b);
    char label[LABEL_MAX + 32], what[LABEL_MAX + 64];
    int r;

    if (b->key) {
        return err_set(
            err, -EPERM, CERTD_E_KEY_NOT_ALLOWED,
            "a private key was included; authority certificates are stored without keys");
    }

    for (size_t i = 0; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        uint32_t flags = 0;
        cert_label(x, i, label, sizeof(label));
        r = cert_flags(x, label, &flags, err);
        if (r < 0) {
            return r;
        }
        if (!flags_is_ca(flags)) {
            return err_set(
                err, -EINVAL, CERTD_E_NOT_CA,
                "the certificate %s is not a CA certificate (basicConstraints CA:TRUE is missing)",
                label);
        }
        /* RFC 5280 §4.2.1.3: a CA key that signs certificates must assert
         * keyCertSign. */
        uint32_t ku = X509_get_key_usage(x);
        if (ku != UINT32_MAX && !(ku & KU_KEY_CERT_SIGN)) {
            char list[160];
            key_usage_list(ku, list, sizeof(list));
            return err_set(err, -EINVAL, CERTD_E_CA_NO_KEYCERTSIGN,
                           "the CA certificate %s has KeyUsage %s, without keyCertSign", label,
                           list);
        }
        const EVP_PKEY *pub = X509_get0_pubkey(x);
        if (!pub) {
            (void)ossl_drain_errors("CA public key");
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "the public key of the certificate %s cannot be decoded", label);
        }
        (void)snprintf(what, sizeof(what), "the key of the CA certificate %s", label);
        r = key_check_strength(pub, &pol->keys, what, err);
        if (r < 0) {
            return r;
        }
        /* A CA's signature is relied upon unless it signed itself (then only its key is). */
        r = check_signature(x, true, label, err);
        if (r < 0) {
            return r;
        }
        r = check_validity(x, label, pol, res, err);
        if (r < 0) {
            return r;
        }
    }

    int n_existing_i = existing ? sk_X509_num(existing) : 0;
    size_t n_existing = n_existing_i > 0 ? (size_t)n_existing_i : 0;
    for (size_t i = 0; i < n; i++) {
        X509 *x = bundle_cert(b, i);
        for (size_t j = 0; j < i; j++) {
            if (cert_same_id(x, bundle_cert(b, j))) {
                cert_label(x, i, label, sizeof(label));
                return err_set(
                    err, -EEXIST, CERTD_E_DUPLICATE,
                    "the certificate %s appears twice in the upload (positions %zu and %zu)", label,
                    j + 1, i + 1);
            }
        }
        for (size_t j = 0; j < n_existing; j++) {
            if (cert_same_id(x, sk_X509_value(existing, (int)j))) {
                cert_label(x, i, label, sizeof(label));
                return err_set(err, -EEXIST, CERTD_E_DUPLICATE,
                               "the certificate %s is already installed", label);
            }
        }
    }

    size_t max = pol->max_certs ? pol->max_certs : CERTD_AUTHORITY_MAX_DEFAULT;
    if (max > CERTD_AUTHORITY_MAX_HARD) {
        max = CERTD_AUTHORITY_MAX_HARD;
    }
    size_t total;
    if (!size_add(n_existing, n, &total) || total > max) {
        if (n_existing == 0) {
            return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED,
                           "the upload holds %zu certificates; at most %zu are allowed", n, max);
        }
        return err_set(
            err, -E2BIG, CERTD_E_LIMIT_REACHED,
            "%zu certificates are installed and %zu were uploaded; at most %zu are allowed",
            n_existing, n, max);
    }
    return 0;
}

int validate_bundle(OSSL_LIB_CTX *libctx, const char *propq, const struct bundle *b,
                    enum endpoint_type type, const struct validate_policy *pol,
                    EVP_PKEY *pending_key, const STACK_OF(X509) *existing,
                    struct validate_result *ret, struct certd_err *err)
{
    struct validate_result res = { 0 };
    int r;

    /*
     * Every object judged here is already bound to libctx/propq: bundle_parse decodes into them
     * (X509_new_ex), and X509_verify uses the certificate's own context.
     */
    (void)libctx;
    (void)propq;

    assert_return(b, -EINVAL);
    assert_return(b->certs, -EINVAL);
    assert_return(bundle_n_certs(b) > 0, -EINVAL);
    assert_return(pol, -EINVAL);
    assert_return((unsigned)pol->expired < VALIDITY_POLICY_MAX, -EINVAL);
    assert_return((unsigned)pol->not_yet_valid < VALIDITY_POLICY_MAX, -EINVAL);
    assert_return((unsigned)type < ENDPOINT_TYPE_MAX, -EINVAL);
    assert_return(ret, -EINVAL);

    if (type == ENDPOINT_AUTHORITY) {
        r = validate_authority(b, pol, existing, &res, err);
    } else {
        r = validate_leaf(b, type, pol, pending_key, &res, err);
    }
    if (r < 0) {
        return r;
    }
    *ret = res;
    return 0;
}
