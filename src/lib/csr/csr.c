/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PKCS#10 requests from Redfish GenerateCSR, and strict parsing of uploaded CSRs.
 *
 * csr_build checks the whole request before it builds anything: every subject attribute is
 * strict UTF-8 without control characters and within its bound in util/limits.h (X.520's, or
 * certd's own cap where X.520 has no useful one; counted in characters, not bytes), Country is two
 * ASCII letters, Email and UnstructuredName are ASCII (IA5String), each alternative name is
 * classified as exactly one of DNS name, IP address, email address or URI, and KeyUsage holds only
 * names Redfish defines (request_check: csr_check_request runs the same checks alone, for front
 * ends that refuse a request before they make its key). Only then is the request assembled: the
 * subject in a fixed order, alternative names and usages in a real extensionRequest attribute, the
 * challenge password as the PKCS#9 attribute. Values never appear in messages (the challenge
 * password is a secret; the rest may be unprintable); alternative names and usage names are quoted
 * only when they are printable ASCII. A Renew/Rekey request (from_cert) takes the certificate's
 * subject and subjectAltName as they are instead, so that the request is assembled and signed once,
 * like any other.
 *
 * csr_parse accepts exactly one PEM block with a CSR label, nothing but white space around it,
 * DER that decodes with no byte left over, and a signature that verifies with the request's own
 * key (proof of possession).
 */
#include "csr/csr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "keys/keys.h"
#include "log/log.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/span.h"
#include "x509/inspect.h"

DEFINE_CLEANUP(GENERAL_NAME, GENERAL_NAME_free)
DEFINE_CLEANUP(ASN1_IA5STRING, ASN1_IA5STRING_free)

/* Longest alternative name or usage name we quote in a message. */
#define QUOTE_MAX 64

static int oom(struct certd_err *err)
{
    (void)ossl_drain_errors("csr");
    return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
}

static bool is_absent(const char *s)
{
    return !s || s[0] == '\0';
}

/* True when s is printable ASCII (0x20..0x7e) throughout, so that a message may quote it. */
static bool is_printable_ascii(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) {
            return false;
        }
    }
    return true;
}

static bool is_ascii(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s > 0x7f) {
            return false;
        }
    }
    return true;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Decode s as UTF-8 (RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF).
 * Counts code points into *ret_chars and notes C0/C1 controls and DEL. False when not UTF-8.
 */
static bool utf8_scan(const char *s, size_t *ret_chars, bool *ret_has_control)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0;
    bool has_control = false;

    while (*p) {
        unsigned char b = *p;
        uint32_t cp, min;
        size_t more;

        if (b < 0x80) {
            cp = b;
            more = 0;
            min = 0;
        } else if (b >= 0xc2 && b <= 0xdf) {
            cp = b & 0x1fu;
            more = 1;
            min = 0x80;
        } else if (b >= 0xe0 && b <= 0xef) {
            cp = b & 0x0fu;
            more = 2;
            min = 0x800;
        } else if (b >= 0xf0 && b <= 0xf4) {
            cp = b & 0x07u;
            more = 3;
            min = 0x10000;
        } else {
            return false;
        }
        p++;
        for (size_t i = 0; i < more; i++, p++) {
            /* The NUL terminator is not a continuation byte, so this never reads past it. */
            if ((*p & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (*p & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
            has_control = true;
        }
        chars++;
    }
    *ret_chars = chars;
    *ret_has_control = has_control;
    return true;
}

int csr_check_field(const char *field, const char *value, size_t max_chars, struct certd_err *err)
{
    size_t chars = 0;
    bool has_control = false;

    assert_return(field, -EINVAL);
    if (is_absent(value)) {
        return 0;
    }
    if (!utf8_scan(value, &chars, &has_control)) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field, "%s is not valid UTF-8",
                             field);
    }
    if (has_control) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field,
                             "%s contains a control character", field);
    }
    if (strspn(value, " ") == strlen(value)) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, field, "%s is blank", field);
    }
    if (chars > max_chars) {
        return err_set_field(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, field,
                             "%s is longer than %zu characters", field, max_chars);
    }
    return 0;
}

/*
 * A host name as LDH labels (RFC 1123 §2.1, RFC 5890 A-labels): labels of 1..63 letters,
 * digits and hyphens, not starting or ending with a hyphen, at most 253 characters. One
 * trailing dot (the absolute form) is allowed; san_append_general_names drops it because
 * RFC 5280 §4.2.1.6 dNSNames carry none. With allow_wildcard a leading "*." label is allowed
 * (RFC 6125 §6.4.3, left-most label only). The last label may not be all digits (RFC 1123
 * §2.1), so a mistyped IPv4 address such as 256.1.1.1 is not taken for a host name.
 */
static bool dns_name_valid(const char *s, bool allow_wildcard)
{
    size_t len = strlen(s);

    if (len > 0 && s[len - 1] == '.') {
        len--;
    }
    if (allow_wildcard && len >= 2 && s[0] == '*' && s[1] == '.') {
        s += 2;
        len -= 2;
    }
    if (len == 0 || len > 253) {
        return false;
    }

    size_t label = 0;
    bool label_all_digits = true;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? s[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-') {
                return false;
            }
            if (i == len && label_all_digits) {
                return false;
            }
            label = 0;
            label_all_digits = true;
            continue;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-') {
            return false;
        }
        if (c == '-' && label == 0) {
            return false;
        }
        if (!is_digit(c)) {
            label_all_digits = false;
        }
        label++;
    }
    return true;
}

/* RFC 5322 §3.2.3 atext. */
static bool is_atext(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/*
 * An email address as local@domain: a dot-atom local part (RFC 5322 §3.4.1) of at most 64
 * characters and a host name without wildcard or trailing dot. Quoted local parts and
 * internationalised addresses (SmtpUTF8Mailbox) are not supported.
 */
static bool email_valid(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || strchr(at + 1, '@')) {
        return false;
    }
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.') {
        return false;
    }
    for (size_t i = 0; i < local; i++) {
        if (s[i] == '.') {
            if (s[i + 1] == '.') {
                return false;
            }
        } else if (!is_atext(s[i])) {
            return false;
        }
    }
    const char *domain = at + 1;
    size_t dlen = strlen(domain);
    if (dlen == 0 || domain[dlen - 1] == '.') {
        return false;
    }
    return dns_name_valid(domain, false);
}

/*
 * An IPv6 attempt that inet_pton refused ("fe80::1%eth0", "2001:db8::g"): two colons or more
 * and hex digits before the first. Such a string must not pass as a URI with scheme "fe80".
 */
static bool looks_like_ipv6(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || !strchr(colon + 1, ':')) {
        return false;
    }
    for (const char *p = s; p < colon; p++) {
        if (!is_hex(*p)) {
            return false;
        }
    }
    return true;
}

/*
 * An absolute URI: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" (RFC 3986 §3.1),
 * something after the colon, and only visible ASCII (no spaces; IRIs must be percent-encoded).
 */
static bool uri_valid(const char *s)
{
    if (!is_alpha(s[0])) {
        return false;
    }
    size_t i = 1;
    while (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.') {
        i++;
    }
    if (s[i] != ':' || s[i + 1] == '\0') {
        return false;
    }
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            return false;
        }
    }
    return true;
}

int san_classify(const char *s, enum san_kind *ret)
{
    unsigned char addr[16];

    assert_return(ret, -EINVAL);
    if (is_absent(s) || strlen(s) > CERTD_SAN_LEN_MAX) {
        return -EINVAL;
    }
    if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1) {
        *ret = SAN_IP;
        return 0;
    }
    if (strchr(s, '@') && email_valid(s)) {
        *ret = SAN_EMAIL;
        return 0;
    }
    if (!looks_like_ipv6(s) && uri_valid(s)) {
        *ret = SAN_URI;
        return 0;
    }
    if (dns_name_valid(s, true)) {
        *ret = SAN_DNS;
        return 0;
    }
    return -EINVAL;
}

/* One classified name as a GENERAL_NAME. 0 or -ENOMEM (or -EINVAL for an unparsable IP). */
static int san_general_name_new(const char *s, enum san_kind kind, GENERAL_NAME **ret)
{
    _cleanup_(cleanup_GENERAL_NAME) GENERAL_NAME *gn = GENERAL_NAME_new();
    if (!gn) {
        return -ENOMEM;
    }

    if (kind == SAN_IP) {
        unsigned char addr[16];
        int len;
        if (inet_pton(AF_INET, s, addr) == 1) {
            len = 4;
        } else if (inet_pton(AF_INET6, s, addr) == 1) {
            len = 16;
        } else {
            return -EINVAL;
        }
        _cleanup_(cleanup_ASN1_OCTET_STRING) ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        if (!os || ASN1_OCTET_STRING_set(os, addr, len) != 1) {
            return -ENOMEM;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, TAKE_PTR(os));
    } else {
        size_t len = strlen(s);
        int type = kind == SAN_DNS ? GEN_DNS : kind == SAN_EMAIL ? GEN_EMAIL : GEN_URI;
        /* RFC 5280 §4.2.1.6: a dNSName has no trailing dot. */
        if (kind == SAN_DNS && len > 0 && s[len - 1] == '.') {
            len--;
        }
        if (len > CERTD_SAN_LEN_MAX) {
            return -EINVAL;
        }
        _cleanup_(cleanup_ASN1_IA5STRING) ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (!ia5 || ASN1_STRING_set(ia5, s, (int)len) != 1) {
            return -ENOMEM;
        }
        GENERAL_NAME_set0_value(gn, type, TAKE_PTR(ia5));
    }
    *ret = TAKE_PTR(gn);
    return 0;
}

int san_append_general_names(GENERAL_NAMES *gens, const char *const *names, size_t n,
                             struct certd_err *err)
{
    assert_return(gens, -EINVAL);
    assert_return(names || n == 0, -EINVAL);

    /* Validate everything first, so gens changes only on success. */
    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        enum san_kind kind;
        if (is_absent(s)) {
            return err_set_field(err, -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames",
                                 "AlternativeNames[%zu] is empty", i);
        }
        if (strlen(s) > CERTD_SAN_LEN_MAX) {
            return err_set_field(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, "AlternativeNames",
                                 "AlternativeNames[%zu] is longer than %u characters", i,
                                 CERTD_SAN_LEN_MAX);
        }
        if (san_classify(s, &kind) < 0) {
            if (is_printable_ascii(s)) {
                return err_set_field(
                    err, -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames",
                    "AlternativeNames[%zu] (\"%.*s%s\") is not a DNS name, IP address, "
                    "email address or URI",
                    i, QUOTE_MAX, s, strlen(s) > QUOTE_MAX ? "..." : "");
            }
            return err_set_field(
                err, -EINVAL, CERTD_E_SAN_INVALID, "AlternativeNames",
                "AlternativeNames[%zu] is not a DNS name, IP address, email address or "
                "URI",
                i);
        }
    }

    size_t base = (size_t)sk_GENERAL_NAME_num(gens);
    for (size_t i = 0; i < n; i++) {
        enum san_kind kind;
        GENERAL_NAME *gn = NULL;
        int r = san_classify(names[i], &kind);
        if (r >= 0) {
            r = san_general_name_new(names[i], kind, &gn);
        }
        if (r < 0 || sk_GENERAL_NAME_push(gens, gn) <= 0) {
            GENERAL_NAME_free(gn);
            /* Undo: pop what this call appended. */
            while ((size_t)sk_GENERAL_NAME_num(gens) > base) {
                GENERAL_NAME_free(sk_GENERAL_NAME_pop(gens));
            }
            return r == -EINVAL
                       ? err_set_field(err, r, CERTD_E_SAN_INVALID, "AlternativeNames",
                                       "AlternativeNames[%zu] is not a valid IP address", i)
                       : oom(err);
        }
    }
    return 0;
}

static const struct {
    const char *name;
    uint32_t ku;
    uint32_t eku;
} redfish_usages[CSR_REDFISH_KEY_USAGES_MAX] = {
    { "DigitalSignature", CERT_KU_DIGITAL_SIGNATURE, 0 },
    { "NonRepudiation", CERT_KU_NON_REPUDIATION, 0 },
    { "KeyEncipherment", CERT_KU_KEY_ENCIPHERMENT, 0 },
    { "DataEncipherment", CERT_KU_DATA_ENCIPHERMENT, 0 },
    { "KeyAgreement", CERT_KU_KEY_AGREEMENT, 0 },
    { "KeyCertSign", CERT_KU_KEY_CERT_SIGN, 0 },
    { "CRLSigning", CERT_KU_CRL_SIGN, 0 },
    { "EncipherOnly", CERT_KU_ENCIPHER_ONLY, 0 },
    { "DecipherOnly", CERT_KU_DECIPHER_ONLY, 0 },
    { "ServerAuthentication", 0, CERT_EKU_SERVER_AUTH },
    { "ClientAuthentication", 0, CERT_EKU_CLIENT_AUTH },
    { "CodeSigning", 0, CERT_EKU_CODE_SIGNING },
    { "EmailProtection", 0, CERT_EKU_EMAIL_PROTECTION },
    { "Timestamping", 0, CERT_EKU_TIME_STAMPING },
    { "OCSPSigning", 0, CERT_EKU_OCSP_SIGNING },
};

size_t key_usage_to_redfish(uint32_t ku, uint32_t eku, const char **names, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ELEMENTSOF(redfish_usages) && n < max; i++) {
        if ((redfish_usages[i].ku & ku) || (redfish_usages[i].eku & eku)) {
            names[n++] = redfish_usages[i].name;
        }
    }
    return n;
}

int key_usage_from_redfish(const char *const *names, size_t n, uint32_t *ret_ku, uint32_t *ret_eku,
                           struct certd_err *err)
{
    uint32_t ku = 0, eku = 0;

    assert_return(names || n == 0, -EINVAL);
    assert_return(ret_ku && ret_eku, -EINVAL);

    for (size_t i = 0; i < n; i++) {
        const char *s = names[i];
        bool found = false;
        /* Redfish enumeration members are case-sensitive (DSP0266 §9.6.5). */
        for (size_t j = 0; s && j < ELEMENTSOF(redfish_usages); j++) {
            if (strcmp(s, redfish_usages[j].name) == 0) {
                ku |= redfish_usages[j].ku;
                eku |= redfish_usages[j].eku;
                found = true;
                break;
            }
        }
        if (found) {
            continue;
        }
        if (s && is_printable_ascii(s)) {
            return err_set_field(err, -EINVAL, CERTD_E_KEY_USAGE_INVALID, "KeyUsage",
                                 "KeyUsage[%zu] (\"%.*s%s\") is not a known key usage", i,
                                 QUOTE_MAX, s, strlen(s) > QUOTE_MAX ? "..." : "");
        }
        return err_set_field(err, -EINVAL, CERTD_E_KEY_USAGE_INVALID, "KeyUsage",
                             "KeyUsage[%zu] is not a known key usage", i);
    }
    *ret_ku = ku;
    *ret_eku = eku;
    return 0;
}

int key_usage_to_bit_string(uint32_t ku, ASN1_BIT_STRING **ret)
{
    assert_return(ret, -EINVAL);
    _cleanup_(cleanup_ASN1_BIT_STRING) ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    if (!bs) {
        return -ENOMEM;
    }
    /* CERT_KU_* bit i is RFC 5280 §4.2.1.3 bit i (digitalSignature(0) .. decipherOnly(8)). */
    for (int i = 0; i <= 8; i++) {
        if ((ku & (1u << i)) && ASN1_BIT_STRING_set_bit(bs, i, 1) != 1) {
            return -ENOMEM;
        }
    }
    *ret = TAKE_PTR(bs);
    return 0;
}

int eku_to_stack(uint32_t eku, EXTENDED_KEY_USAGE **ret)
{
    static const struct {
        uint32_t bit;
        int nid;
    } map[] = {
        { CERT_EKU_SERVER_AUTH, NID_server_auth },
        { CERT_EKU_CLIENT_AUTH, NID_client_auth },
        { CERT_EKU_CODE_SIGNING, NID_code_sign },
        { CERT_EKU_EMAIL_PROTECTION, NID_email_protect },
        { CERT_EKU_TIME_STAMPING, NID_time_stamp },
        { CERT_EKU_OCSP_SIGNING, NID_OCSP_sign },
        { CERT_EKU_ANY, NID_anyExtendedKeyUsage },
    };

    assert_return(ret, -EINVAL);
    _cleanup_(cleanup_EXTENDED_KEY_USAGE) EXTENDED_KEY_USAGE *ekus = sk_ASN1_OBJECT_new_null();
    if (!ekus) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < ELEMENTSOF(map); i++) {
        if (!(eku & map[i].bit)) {
            continue;
        }
        /* The table objects are static: ASN1_OBJECT_free leaves them alone. */
        ASN1_OBJECT *obj = OBJ_nid2obj(map[i].nid);
        if (!obj || sk_ASN1_OBJECT_push(ekus, obj) <= 0) {
            return -ENOMEM;
        }
    }
    *ret = TAKE_PTR(ekus);
    return 0;
}

/* Encode value as extension nid and append it to exts. 0 or -ENOMEM. */
static int push_ext(x509_ext_stack *exts, int nid, int crit, void *value)
{
    X509_EXTENSION *ext = X509V3_EXT_i2d(nid, crit, value);
    if (!ext) {
        return -ENOMEM;
    }
    if (sk_X509_EXTENSION_push(exts, ext) <= 0) {
        X509_EXTENSION_free(ext);
        return -ENOMEM;
    }
    return 0;
}

/* Country: exactly two ASCII letters (ISO 3166-1 alpha-2), stored upper-case. */
static int check_country(const char *s, char out[static 3], struct certd_err *err)
{
    if (is_absent(s)) {
        out[0] = '\0';
        return 0;
    }
    if (strlen(s) != 2 || !is_alpha(s[0]) || !is_alpha(s[1])) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, "Country",
                             "Country must be a two-letter ISO 3166 code such as \"US\"");
    }
    for (size_t i = 0; i < 2; i++) {
        out[i] = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
    }
    out[2] = '\0';
    return 0;
}

struct subject_field {
    const char *label; /* Redfish property name, for messages */
    const char *value;
    int nid;
    int asn1_type;
    size_t max_chars;
};

/* Whether req names a subject attribute (a request from_cert must not). */
static bool has_subject_fields(const struct csr_request *req)
{
    const char *const v[] = {
        req->common_name,
        req->city,
        req->state,
        req->country,
        req->organization,
        req->organizational_unit,
        req->email,
        req->given_name,
        req->surname,
        req->initials,
        req->unstructured_name,
        req->contact_person,
    };
    for (size_t i = 0; i < ELEMENTSOF(v); i++) {
        if (!is_absent(v[i])) {
            return true;
        }
    }
    return false;
}

/*
 * A copy of cert's subjectAltName names, as they are (an empty list when it has none). The
 * certificate was checked when it was installed; only the count is bounded here again.
 */
static int sans_of_cert(const X509 *cert, GENERAL_NAMES **ret, struct certd_err *err)
{
    int crit = 0;
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *gens =
        X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);

    if (!gens && crit != -1) {
        /* -2: the extension appears twice; otherwise it does not decode. */
        (void)ossl_drain_errors("csr: certificate SAN");
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "the certificate's subjectAltName cannot be decoded");
    }
    if (!gens) {
        gens = GENERAL_NAMES_new();
        if (!gens) {
            return oom(err);
        }
    }
    if (sk_GENERAL_NAME_num(gens) > (int)CERTD_SANS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                       "the certificate has more than %u alternative names", CERTD_SANS_MAX);
    }
    *ret = TAKE_PTR(gens);
    return 0;
}

static int sign_request(OSSL_LIB_CTX *libctx, const char *propq, X509_REQ *x, EVP_PKEY *key,
                        struct certd_err *err)
{
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *mctx = NULL;
    int r = key_sign_ctx_new(libctx, propq, key, &mctx, err);
    if (r < 0) {
        return r;
    }
    if (X509_REQ_sign_ctx(x, mctx) <= 0) {
        (void)ossl_drain_errors("csr: sign");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot sign the CSR with this key");
    }
    return 0;
}

/* The subject attributes a request names, in the conventional big-endian order: C, ST, L, O,
 * OU, CN, then the rest. country is the checked, upper-cased Country ("" when absent). */
#define SUBJECT_FIELDS_N 12
static void subject_fields(const struct csr_request *req, const char *country,
                           struct subject_field out[static SUBJECT_FIELDS_N])
{
    const struct subject_field fields[SUBJECT_FIELDS_N] = {
        { "Country", country[0] ? country : NULL, NID_countryName, V_ASN1_PRINTABLESTRING,
          X520_COUNTRY_LEN },
        { "State", req->state, NID_stateOrProvinceName, V_ASN1_UTF8STRING, X520_STATE_MAX },
        { "City", req->city, NID_localityName, V_ASN1_UTF8STRING, X520_LOCALITY_MAX },
        { "Organization", req->organization, NID_organizationName, V_ASN1_UTF8STRING,
          X520_ORGANIZATION_MAX },
        { "OrganizationalUnit", req->organizational_unit, NID_organizationalUnitName,
          V_ASN1_UTF8STRING, X520_OU_MAX },
        { "CommonName", req->common_name, NID_commonName, V_ASN1_UTF8STRING, X520_CN_MAX },
        /* PKCS #9 emailAddress is an IA5String (RFC 5280 Appendix A.1). */
        { "Email", req->email, NID_pkcs9_emailAddress, V_ASN1_IA5STRING, X520_EMAIL_MAX },
        { "GivenName", req->given_name, NID_givenName, V_ASN1_UTF8STRING, CERTD_GIVEN_NAME_MAX },
        { "Surname", req->surname, NID_surname, V_ASN1_UTF8STRING, CERTD_SURNAME_MAX },
        { "Initials", req->initials, NID_initials, V_ASN1_UTF8STRING, CERTD_INITIALS_MAX },
        /* ContactPerson has no attribute of its own; X.520 name (2.5.4.41) fits it. */
        { "ContactPerson", req->contact_person, NID_name, V_ASN1_UTF8STRING,
          CERTD_CONTACT_PERSON_MAX },
        /* PKCS #9 unstructuredName: IA5String is the choice every reader understands. */
        { "UnstructuredName", req->unstructured_name, NID_pkcs9_unstructuredName, V_ASN1_IA5STRING,
          PKCS9_UNSTRUCTURED_NAME_MAX },
    };
    memcpy(out, fields, sizeof(fields));
}

/*
 * Every check of req, in one place for csr_build and csr_check_request: 0 with the upper-cased
 * country, the usage bits and the alternative names (an owned list, as the CSR will carry them),
 * or -errno with err; nothing is written on failure.
 */
static int request_check(const struct csr_request *req, char country[static 3], uint32_t *ret_ku,
                         uint32_t *ret_eku, GENERAL_NAMES **ret_gens, struct certd_err *err)
{
    struct subject_field fields[SUBJECT_FIELDS_N];
    char c[3];
    uint32_t ku = 0, eku = 0;
    int r;

    assert_return(req->alt_names || req->n_alt_names == 0, -EINVAL);
    assert_return(req->key_usage || req->n_key_usage == 0, -EINVAL);
    /* A Renew/Rekey request takes its subject and names from the certificate alone. */
    assert_return(!req->from_cert || (!has_subject_fields(req) && req->n_alt_names == 0), -EINVAL);

    if (!req->from_cert && is_absent(req->common_name)) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_MISSING, "CommonName",
                             "CommonName is required");
    }
    r = check_country(req->country, c, err);
    if (r < 0) {
        return r;
    }
    subject_fields(req, c, fields);
    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        const struct subject_field *f = &fields[i];
        r = csr_check_field(f->label, f->value, f->max_chars, err);
        if (r < 0) {
            return r;
        }
        if (f->asn1_type == V_ASN1_IA5STRING && !is_absent(f->value) && !is_ascii(f->value)) {
            return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, f->label,
                                 "%s may contain only ASCII characters", f->label);
        }
    }
    if (!is_absent(req->email) && !email_valid(req->email)) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, "Email",
                             "Email is not a valid email address");
    }
    /* The message names the field only: the password is a secret. */
    r = csr_check_field("ChallengePassword", req->challenge_password, PKCS9_CHALLENGE_PASSWORD_MAX,
                        err);
    if (r < 0) {
        return r;
    }
    /* Counts before contents: a caller may pass more names than its array holds (the count
     * says "too many"), so no entry is read before the count is known to be in bounds. */
    if (req->n_alt_names > CERTD_SANS_MAX) {
        return err_set_field(err, -E2BIG, CERTD_E_TOO_MANY_VALUES, "AlternativeNames",
                             "AlternativeNames has more than %u entries", CERTD_SANS_MAX);
    }
    if (req->n_key_usage > CERTD_KEY_USAGES_MAX) {
        return err_set_field(err, -E2BIG, CERTD_E_TOO_MANY_VALUES, "KeyUsage",
                             "KeyUsage has more than %u entries", CERTD_KEY_USAGES_MAX);
    }
    r = key_usage_from_redfish(req->key_usage, req->n_key_usage, &ku, &eku, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *gens = NULL;
    if (req->from_cert) {
        r = sans_of_cert(req->from_cert, &gens, err);
        if (r < 0) {
            return r;
        }
    } else {
        gens = GENERAL_NAMES_new();
        if (!gens) {
            return oom(err);
        }
        r = san_append_general_names(gens, req->alt_names, req->n_alt_names, err);
        if (r < 0) {
            return r;
        }
    }
    memcpy(country, c, sizeof(c));
    *ret_ku = ku;
    *ret_eku = eku;
    *ret_gens = TAKE_PTR(gens);
    return 0;
}

int csr_check_request(const struct csr_request *req, struct certd_err *err)
{
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *gens = NULL;
    char country[3];
    uint32_t ku, eku;

    assert_return(req, -EINVAL);
    return request_check(req, country, &ku, &eku, &gens, err);
}

int csr_build(OSSL_LIB_CTX *libctx, const char *propq, const struct csr_request *req, EVP_PKEY *key,
              X509_REQ **ret, struct certd_err *err)
{
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *gens = NULL;
    struct subject_field fields[SUBJECT_FIELDS_N];
    char country[3];
    uint32_t ku = 0, eku = 0;
    int r;

    assert_return(req && key && ret, -EINVAL);

    /* Check everything before building anything. */
    r = request_check(req, country, &ku, &eku, &gens, err);
    if (r < 0) {
        return r;
    }
    subject_fields(req, country, fields);

    /* Build. From here on only OpenSSL (memory, provider) can fail. */
    _cleanup_(cleanup_X509_REQ) X509_REQ *x = X509_REQ_new_ex(libctx, propq);
    if (!x || X509_REQ_set_version(x, X509_REQ_VERSION_1) != 1) {
        return oom(err);
    }
    /* X509_REQ_set_subject_name copies the name whole: its entries, order and string types. */
    if (req->from_cert &&
        X509_REQ_set_subject_name(x, X509_get_subject_name(req->from_cert)) != 1) {
        return oom(err);
    }
    X509_NAME *subject = X509_REQ_get_subject_name(x);
    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        const struct subject_field *f = &fields[i];
        if (is_absent(f->value)) {
            continue;
        }
        /* A plain ASN.1 type (not MBSTRING_*) stores the checked bytes as they are. */
        if (X509_NAME_add_entry_by_NID(subject, f->nid, f->asn1_type,
                                       (const unsigned char *)f->value, -1, -1, 0) != 1) {
            return oom(err);
        }
    }
    if (X509_REQ_set_pubkey(x, key) != 1) {
        (void)ossl_drain_errors("csr: public key");
        return err_set(err, -EINVAL, CERTD_E_KEY_BAD, "the key cannot be used for a CSR");
    }

    _cleanup_(cleanup_x509_ext_stack) x509_ext_stack *exts = sk_X509_EXTENSION_new_null();
    if (!exts) {
        return oom(err);
    }
    if (sk_GENERAL_NAME_num(gens) > 0) {
        /*
         * Critical only when the subject is empty (RFC 5280 §4.2.1.6): a request of ours holds
         * a CN, a certificate being renewed may not.
         */
        int crit = X509_NAME_entry_count(subject) == 0 ? 1 : 0;
        r = push_ext(exts, NID_subject_alt_name, crit, gens);
        if (r < 0) {
            return oom(err);
        }
    }
    if (ku != 0) {
        _cleanup_(cleanup_ASN1_BIT_STRING) ASN1_BIT_STRING *bs = NULL;
        /* RFC 5280 §4.2.1.3: conforming CAs SHOULD mark keyUsage critical. */
        if (key_usage_to_bit_string(ku, &bs) < 0 || push_ext(exts, NID_key_usage, 1, bs) < 0) {
            return oom(err);
        }
    }
    if (eku != 0) {
        _cleanup_(cleanup_EXTENDED_KEY_USAGE) EXTENDED_KEY_USAGE *ekus = NULL;
        if (eku_to_stack(eku, &ekus) < 0 || push_ext(exts, NID_ext_key_usage, 0, ekus) < 0) {
            return oom(err);
        }
    }
    /* RFC 2986 §4.1 / RFC 2985 §5.4.2: one extensionRequest attribute with all of them. */
    if (sk_X509_EXTENSION_num(exts) > 0 && X509_REQ_add_extensions(x, exts) != 1) {
        return oom(err);
    }
    if (!is_absent(req->challenge_password) &&
        X509_REQ_add1_attr_by_NID(x, NID_pkcs9_challengePassword, MBSTRING_UTF8,
                                  (const unsigned char *)req->challenge_password, -1) != 1) {
        return oom(err);
    }

    r = sign_request(libctx, propq, x, key, err);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(x);
    return 0;
}

int csr_to_pem(const X509_REQ *req, char **ret, size_t *ret_len)
{
    char *data = NULL;

    assert_return(req && ret, -EINVAL);
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) {
        return -ENOMEM;
    }
    if (PEM_write_bio_X509_REQ(bio, req) != 1) {
        (void)ossl_drain_errors("csr: PEM");
        return -EIO;
    }
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !data) {
        return -EIO;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        return -ENOMEM;
    }
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *ret = s;
    if (ret_len) {
        *ret_len = (size_t)n;
    }
    return 0;
}

static const char *const csr_labels[] = { "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST" };

static bool span_starts_with(struct span s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.p, prefix, n) == 0;
}

/* True when line is "-----<kind> <label>-----" for one of the CSR labels; *ret_label its index. */
static bool is_csr_boundary(struct span line, const char *kind, size_t *ret_label)
{
    char want[64];
    for (size_t i = 0; i < ELEMENTSOF(csr_labels); i++) {
        int n = snprintf(want, sizeof(want), "-----%s %s-----", kind, csr_labels[i]);
        if (n > 0 && (size_t)n < sizeof(want) && span_eq(line, span_make(want, (size_t)n))) {
            if (ret_label) {
                *ret_label = i;
            }
            return true;
        }
    }
    return false;
}

int csr_parse(OSSL_LIB_CTX *libctx, const char *propq, const void *data, size_t len,
              size_t max_input, X509_REQ **ret, struct certd_err *err)
{
    struct span line;
    size_t label = 0;

    assert_return(data || len == 0, -EINVAL);
    assert_return(ret, -EINVAL);

    if (max_input == 0) {
        max_input = CERTD_INPUT_MAX_DEFAULT;
    }
    if (max_input > CERTD_INPUT_MAX_HARD) {
        max_input = CERTD_INPUT_MAX_HARD;
    }
    if (len > max_input) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "the CSR is larger than %zu bytes",
                       max_input);
    }
    struct span in = span_make(data, len);
    if (span_has_nul(in)) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE, "the CSR contains a NUL byte");
    }
    struct cursor c = cur_init(in);
    cur_skip_space(&c);
    if (cur_left(&c) == 0) {
        return err_set(err, -EINVAL, CERTD_E_INPUT_EMPTY, "the CSR is empty");
    }

    /* BEGIN line: the first non-space bytes. */
    size_t start = c.pos;
    if (cur_line(&c, &line) < 0) {
        return err_set(err, -EINVAL, CERTD_E_INPUT_EMPTY, "the CSR is empty");
    }
    if (!is_csr_boundary(line, "BEGIN", &label)) {
        if (span_starts_with(line, "-----BEGIN ")) {
            return err_set(err, -EBADMSG, CERTD_E_PEM_UNEXPECTED_LABEL,
                           "expected a PEM CERTIFICATE REQUEST, found another kind of PEM block");
        }
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE,
                       "the input is not a PEM certificate request");
    }
    /* Body lines up to the matching END line. */
    for (;;) {
        if (cur_line(&c, &line) < 0) {
            return err_set(err, -EBADMSG, CERTD_E_PEM_TRUNCATED,
                           "the CSR's PEM block has no END line");
        }
        if (span_starts_with(line, "-----END ")) {
            size_t end_label = 0;
            if (!is_csr_boundary(line, "END", &end_label) || end_label != label) {
                return err_set(err, -EBADMSG, CERTD_E_CSR_BAD,
                               "the CSR's END line does not match its BEGIN line");
            }
            break;
        }
        if (span_starts_with(line, "-----")) {
            return err_set(err, -EBADMSG, CERTD_E_PEM_TRUNCATED,
                           "the CSR's PEM block has no END line");
        }
    }
    size_t end = c.pos;

    /* Nothing but white space may follow. */
    cur_skip_space(&c);
    if (cur_left(&c) > 0) {
        struct cursor rest = c;
        if (cur_line(&rest, &line) == 0 && is_csr_boundary(line, "BEGIN", NULL)) {
            return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                           "the input holds more than one CSR");
        }
        return err_set(err, -EBADMSG, CERTD_E_TRAILING_DATA, "unexpected data after the CSR");
    }

    /* Decode exactly the block; PEM_FLAG_ONLY_B64 refuses encryption headers. */
    struct cursor bc = cur_init(in);
    struct span block;
    if (cur_skip(&bc, start) < 0 || cur_bytes(&bc, end - start, &block) < 0 ||
        block.len > INT_MAX) {
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "the CSR's PEM block is malformed");
    }
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new_mem_buf(block.p, (int)block.len);
    if (!bio) {
        return oom(err);
    }
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    int ok = PEM_read_bio_ex(bio, &name, &header, &der, &der_len, PEM_FLAG_ONLY_B64);
    bool header_empty = header && header[0] == '\0';
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (ok != 1 || !header_empty || der_len <= 0) {
        OPENSSL_free(der);
        (void)ossl_drain_errors("csr: PEM");
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "the CSR's base64 does not decode");
    }

    /* The DER must be one CertificationRequest and nothing more. */
    _cleanup_(cleanup_X509_REQ) X509_REQ *x = X509_REQ_new_ex(libctx, propq);
    if (!x) {
        OPENSSL_free(der);
        return oom(err);
    }
    const unsigned char *p = der;
    X509_REQ *decoded = d2i_X509_REQ(&x, &p, der_len);
    bool full = decoded && p == der + der_len;
    OPENSSL_free(der);
    if (!decoded) {
        /* On failure d2i freed and cleared x. */
        (void)ossl_drain_errors("csr: DER");
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "the CSR is not a valid PKCS#10 request");
    }
    if (!full) {
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "the CSR's DER has trailing bytes");
    }

    /* Proof of possession: the request is signed by the key it carries (RFC 2986 §3). */
    EVP_PKEY *pub = X509_REQ_get0_pubkey(x);
    if (!pub) {
        (void)ossl_drain_errors("csr: public key");
        return err_set(err, -EBADMSG, CERTD_E_CSR_BAD, "the CSR's public key cannot be decoded");
    }
    if (X509_REQ_verify_ex(x, pub, libctx, propq) != 1) {
        (void)ossl_drain_errors("csr: verify");
        return err_set(err, -EBADMSG, CERTD_E_CSR_SIGNATURE, "the CSR's signature does not verify");
    }
    *ret = TAKE_PTR(x);
    return 0;
}
