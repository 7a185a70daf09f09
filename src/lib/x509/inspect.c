/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inspect a certificate into plain C strings for the front ends. Every string taken from the
 * certificate is checked for its ASN.1 type and converted to UTF-8, and the certificate is
 * refused (CERTD_E_CERT_BAD) when a string would reach a terminal, JSON or D-Bus unsafely: a
 * name attribute that is not valid UTF-8 or holds a control character (C0 with NUL, DEL, C1),
 * or an IA5String SAN with a byte outside printable ASCII 0x21..0x7e. So no front end ever
 * truncates or misreads a name, and every string returned is valid UTF-8 without control
 * characters (the rest: EKU and algorithm names, hex, come from OpenSSL's tables). Invariants:
 *   - all or nothing: on failure nothing is returned and all that was built is freed;
 *   - lists are bounded: at most CERTD_EKUS_MAX EKUs (more is CERTD_E_CERT_BAD, since silently
 *     dropping usages is the reference's bug) and CERTD_SANS_MAX SANs (more are not listed and
 *     san_truncated is set: real certificates carry 100+ names);
 *   - times are converted without the C library's time zone or locale (days-from-civil).
 *
 * RFC 4514 strings (name_to_rfc4514) follow `openssl x509 -nameopt RFC2253` so that users can
 * compare them: RDNs in reverse DER order (RFC 4514 §2.1), AVAs of a multi-valued RDN joined
 * with '+', short names CN, L, ST, O, OU, C, STREET, DC, UID as RFC 4514 §3 lists them, and for
 * other attribute types OpenSSL's short name ("emailAddress", "serialNumber", "title") or,
 * without one, the dotted OID. Values are UTF-8 escaped per RFC 4514 §2.4 (',', '+', '"', '\',
 * '<', '>', ';', a leading '#' or space and a trailing space with a backslash; control
 * characters (C0 with NUL, DEL, C1) as \XX per UTF-8 byte; a value that is not valid UTF-8 makes
 * the whole name -EBADMSG); values of dotted types and values that are not character strings
 * are written "#" + hex of their DER (§2.4). Two differences from OpenSSL's RFC2253 output,
 * both allowed by RFC 4514: non-ASCII UTF-8 is left unescaped, and streetAddress is "STREET"
 * (§3) where OpenSSL writes "street".
 */
#include "x509/inspect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "keys/keys.h"
#include "pin/pin.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/span.h"

/* --- bounded string builder --------------------------------------------------------------- */

/* A string with a fixed maximum, allocated once (STYLE.md §5). */
struct strbuf {
    char *p;
    size_t len;
    size_t max;
};

static int sb_init(struct strbuf *sb, size_t max)
{
    sb->p = malloc(max + 1);
    if (!sb->p) {
        return -ENOMEM;
    }
    sb->p[0] = '\0';
    sb->len = 0;
    sb->max = max;
    return 0;
}

static void sb_done(struct strbuf *sb)
{
    free(sb->p);
    sb->p = NULL;
}

static int sb_add(struct strbuf *sb, const void *p, size_t n)
{
    if (n > sb->max - sb->len) {
        return -EBADMSG; /* truncating a name would change its meaning */
    }
    memcpy(sb->p + sb->len, p, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
    return 0;
}

static int sb_str(struct strbuf *sb, const char *s)
{
    return sb_add(sb, s, strlen(s));
}

static int sb_hex(struct strbuf *sb, uint8_t b)
{
    static const char hex[] = "0123456789ABCDEF";
    char two[2] = { hex[b >> 4], hex[b & 0xf] };
    return sb_add(sb, two, 2);
}

/* --- text fit to show ---------------------------------------------------------------------- */

/*
 * Text we hand to front ends (terminals, JSON, D-Bus) must be valid UTF-8 (jansson and D-Bus
 * refuse anything else) and hold no control characters (which would let a certificate rewrite
 * a terminal or forge log lines): utf8_check_text, the one rule of util/parse.h.
 */
static bool utf8_is_clean(const char *s, size_t len)
{
    return utf8_check_text(span_make(s, len)) == 0;
}

/* --- names -------------------------------------------------------------------------------- */

static bool is_char_string_type(int type)
{
    switch (type) {
    case V_ASN1_UTF8STRING:
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_T61STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING:
    case V_ASN1_VISIBLESTRING:
    case V_ASN1_NUMERICSTRING:
        return true;
    default:
        return false;
    }
}

/*
 * A character string as malloc'd UTF-8 (NUL-terminated) with its length; NUL bytes inside are
 * allowed here, callers decide. -EBADMSG for a non-string type or invalid encoding.
 */
static int asn1_string_utf8(const ASN1_STRING *s, char **ret, size_t *ret_len)
{
    if (!s || !is_char_string_type(ASN1_STRING_type(s))) {
        return -EBADMSG;
    }
    _cleanup_(ossl_bytes_free) unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) {
        (void)ossl_drain_errors("inspect: string");
        return -EBADMSG;
    }
    char *c = malloc((size_t)n + 1);
    if (!c) {
        return -ENOMEM;
    }
    if (n > 0) {
        memcpy(c, utf8, (size_t)n);
    }
    c[n] = '\0';
    *ret = c;
    *ret_len = (size_t)n;
    return 0;
}

/*
 * RFC 4514 §3 short names, then OpenSSL's short name, then the dotted OID; *ret_is_dotted tells
 * the caller to write the value as "#" + hex DER (RFC 4514 §2.4).
 */
static int attr_type_name(const ASN1_OBJECT *obj, char *buf, size_t size, bool *ret_is_dotted)
{
    static const struct {
        int nid;
        const char *name;
    } names[] = {
        { NID_commonName, "CN" },
        { NID_localityName, "L" },
        { NID_stateOrProvinceName, "ST" },
        { NID_organizationName, "O" },
        { NID_organizationalUnitName, "OU" },
        { NID_countryName, "C" },
        { NID_streetAddress, "STREET" },
        { NID_domainComponent, "DC" },
        { NID_userId, "UID" },
        { NID_pkcs9_emailAddress, "emailAddress" },
    };
    int nid = OBJ_obj2nid(obj);
    *ret_is_dotted = false;
    for (size_t i = 0; i < ELEMENTSOF(names); i++) {
        if (names[i].nid == nid) {
            (void)snprintf(buf, size, "%s", names[i].name);
            return 0;
        }
    }
    const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
    if (sn) {
        (void)snprintf(buf, size, "%s", sn);
        return 0;
    }
    int n = OBJ_obj2txt(buf, (int)size, obj, 1);
    if (n <= 0 || (size_t)n >= size) {
        return -EBADMSG;
    }
    *ret_is_dotted = true;
    return 0;
}

/*
 * RFC 4514 §2.4 escaping of one UTF-8 value. Control characters are written as \XX per UTF-8
 * byte, so that the result never holds a raw control byte; a value that is not valid UTF-8
 * cannot be written at all (-EBADMSG).
 */
static int rfc4514_escape(struct strbuf *sb, const char *v, size_t len)
{
    struct cursor c = cur_init(span_make(v, len));
    int r = 0;
    while (r == 0 && cur_left(&c) > 0) {
        bool is_first = c.pos == 0;
        uint32_t cp;
        struct span bytes;
        if (utf8_next(&c, &cp, &bytes) < 0) {
            return -EBADMSG;
        }
        bool is_last = cur_left(&c) == 0;
        if (utf8_is_control(cp)) {
            for (size_t i = 0; i < bytes.len && r == 0; i++) {
                r = sb_str(sb, "\\");
                if (r == 0) {
                    r = sb_hex(sb, bytes.p[i]);
                }
            }
        } else if (cp < 0x80 &&
                   (strchr(",+\"\\<>;", (int)cp) || (is_first && (cp == '#' || cp == ' ')) ||
                    (is_last && cp == ' '))) {
            char esc[2] = { '\\', (char)cp };
            r = sb_add(sb, esc, 2);
        } else {
            r = sb_add(sb, bytes.p, bytes.len);
        }
    }
    return r;
}

/* RFC 4514 §2.4: a value that is not a character string is '#' and the hex of its DER. */
static int rfc4514_hex_der(struct strbuf *sb, const ASN1_STRING *s)
{
    ASN1_TYPE *at = ASN1_TYPE_new();
    if (!at) {
        return -ENOMEM;
    }
    if (ASN1_TYPE_set1(at, ASN1_STRING_type(s), s) != 1) {
        ASN1_TYPE_free(at);
        return -ENOMEM;
    }
    _cleanup_(ossl_bytes_free) unsigned char *der = NULL;
    int n = i2d_ASN1_TYPE(at, &der);
    ASN1_TYPE_free(at);
    if (n <= 0) {
        (void)ossl_drain_errors("inspect: name value");
        return -EBADMSG;
    }
    int r = sb_str(sb, "#");
    for (int i = 0; i < n && r == 0; i++) {
        r = sb_hex(sb, der[i]);
    }
    return r;
}

/*
 * The name's AVAs, escaped as RFC 4514 §2.4 says, ',' between RDNs and '+' inside a
 * multi-valued one; is_der_order: in certificate (DER) order, as OpenSSL's one-line form,
 * else last RDN first (RFC 4514 §2.1).
 */
static int rfc4514_render(const X509_NAME *name, bool is_der_order, struct strbuf *sb)
{
    int n = X509_NAME_entry_count(name);
    int prev_set = -1;
    int r;

    for (int k = 0; k < n; k++) {
        int i = is_der_order ? k : n - 1 - k;
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        if (!e) {
            return -EBADMSG;
        }
        int set = X509_NAME_ENTRY_set(e);
        if (k > 0) {
            /* AVAs of one multi-valued RDN share a set index: join them with '+'. */
            r = sb_str(sb, set == prev_set ? "+" : ",");
            if (r < 0) {
                return r;
            }
        }
        prev_set = set;

        char type[128];
        bool is_dotted = false;
        r = attr_type_name(X509_NAME_ENTRY_get_object(e), type, sizeof(type), &is_dotted);
        if (r < 0) {
            return r;
        }
        r = sb_str(sb, type);
        if (r == 0) {
            r = sb_str(sb, "=");
        }
        if (r < 0) {
            return r;
        }

        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
        if (!v) {
            return -EBADMSG;
        }
        if (is_dotted || !is_char_string_type(ASN1_STRING_type(v))) {
            r = rfc4514_hex_der(sb, v);
        } else {
            _cleanup_free_ char *u = NULL;
            size_t ulen = 0;
            r = asn1_string_utf8(v, &u, &ulen);
            if (r == 0) {
                r = rfc4514_escape(sb, u, ulen);
            }
        }
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static int name_render(const X509_NAME *name, bool is_der_order, char **ret)
{
    assert_return(name && ret, -EINVAL);

    _cleanup_(sb_done) struct strbuf sb = { 0 };
    int r = sb_init(&sb, CERTD_DN_STR_MAX);
    if (r < 0) {
        return r;
    }
    r = rfc4514_render(name, is_der_order, &sb);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(sb.p);
    return 0;
}

int name_to_rfc4514(const X509_NAME *name, char **ret)
{
    return name_render(name, false, ret);
}

int name_to_oneline(const X509_NAME *name, char **ret)
{
    return name_render(name, true, ret);
}

/*
 * The first attribute of type nid as a C string, NULL when absent; text that is not clean
 * (utf8_is_clean: NUL and other control characters, invalid UTF-8) is refused.
 */
static int name_attr(const X509_NAME *name, int nid, char **ret)
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0) {
        *ret = NULL;
        return 0;
    }
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    _cleanup_free_ char *s = NULL;
    size_t len = 0;
    int r = asn1_string_utf8(e ? X509_NAME_ENTRY_get_data(e) : NULL, &s, &len);
    if (r < 0) {
        return r;
    }
    if (!utf8_is_clean(s, len)) {
        return -EBADMSG;
    }
    *ret = TAKE_PTR(s);
    return 0;
}

static void cert_name_done(struct cert_name *n)
{
    free(n->common_name);
    free(n->organization);
    free(n->organizational_unit);
    free(n->locality);
    free(n->state);
    free(n->country);
    free(n->email);
    free(n->rfc4514);
    *n = (struct cert_name){ 0 };
}

/*
 * Every attribute of the name that is shown as text (in rfc4514 and the fields of struct
 * cert_name) must convert to clean UTF-8 (utf8_is_clean); the certificate is refused otherwise,
 * naming the attribute. Values shown as "#" + hex (dotted types, non-string values) are safe.
 */
static int name_check_text(const X509_NAME *name, const char *which, struct certd_err *err)
{
    int n = X509_NAME_entry_count(name);
    for (int i = 0; i < n; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        const ASN1_STRING *v = e ? X509_NAME_ENTRY_get_data(e) : NULL;
        char type[128];
        bool is_dotted = false;
        if (!v ||
            attr_type_name(X509_NAME_ENTRY_get_object(e), type, sizeof(type), &is_dotted) < 0) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "malformed certificate: bad attribute %d in the %s name", i + 1, which);
        }
        if (is_dotted || !is_char_string_type(ASN1_STRING_type(v))) {
            continue;
        }
        _cleanup_free_ char *u = NULL;
        size_t ulen = 0;
        int r = asn1_string_utf8(v, &u, &ulen);
        if (r == -ENOMEM) {
            return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (r < 0) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "malformed certificate: the %s %s is not a valid string (bad "
                           "encoding or invalid UTF-8)",
                           which, type);
        }
        if (!utf8_is_clean(u, ulen)) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "malformed certificate: the %s %s holds control characters or invalid "
                           "UTF-8",
                           which, type);
        }
    }
    return 0;
}

static int cert_name_fill(const X509_NAME *name, const char *which, struct cert_name *ret,
                          struct certd_err *err)
{
    const struct {
        int nid;
        size_t off;
        const char *what;
    } fields[] = {
        { NID_commonName, offsetof(struct cert_name, common_name), "CN" },
        { NID_organizationName, offsetof(struct cert_name, organization), "O" },
        { NID_organizationalUnitName, offsetof(struct cert_name, organizational_unit), "OU" },
        { NID_localityName, offsetof(struct cert_name, locality), "L" },
        { NID_stateOrProvinceName, offsetof(struct cert_name, state), "ST" },
        { NID_countryName, offsetof(struct cert_name, country), "C" },
        { NID_pkcs9_emailAddress, offsetof(struct cert_name, email), "emailAddress" },
    };
    int r;

    if (!name) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD, "malformed certificate: no %s name", which);
    }
    r = name_check_text(name, which, err);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        char **slot = (char **)(void *)((char *)ret + fields[i].off);
        r = name_attr(name, fields[i].nid, slot);
        if (r == -ENOMEM) {
            return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (r < 0) {
            return err_set(err, r, CERTD_E_CERT_BAD,
                           "malformed certificate: the %s %s is not a valid string (not a "
                           "character string, bad encoding, or control characters)",
                           which, fields[i].what);
        }
    }
    r = name_to_rfc4514(name, &ret->rfc4514);
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_CERT_BAD,
                       "malformed certificate: the %s name cannot be rendered (bad encoding or "
                       "longer than %u bytes)",
                       which, CERTD_DN_STR_MAX);
    }
    return 0;
}

/* --- time --------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse: the date of a day number. */
static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *ret_y = y + (m <= 2);
    *ret_m = m;
    *ret_d = d;
}

int asn1_time_to_unix(const ASN1_TIME *t, int64_t *ret)
{
    assert_return(t && ret, -EINVAL);

    struct tm tm = { 0 };
    /* ASN1_TIME_to_tm checks the UTCTime/GeneralizedTime syntax and the field ranges. */
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        (void)ossl_drain_errors("inspect: time");
        return -EBADMSG;
    }
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 ||
        tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60) {
        return -EBADMSG;
    }
    int64_t days =
        days_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
    *ret = days * 86400 + (int64_t)tm.tm_hour * 3600 + (int64_t)tm.tm_min * 60 + tm.tm_sec;
    return 0;
}

void unix_to_iso8601(int64_t t, char *buf, size_t size)
{
    if (!buf || size == 0) {
        return;
    }
    /* Floor division, so that times before 1970 land on the right day. */
    int64_t days = t / 86400, secs = t % 86400;
    if (secs < 0) {
        secs += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    (void)snprintf(buf, size, "%04lld-%02u-%02uT%02u:%02u:%02uZ", (long long)y, m, d,
                   (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
}

int iso8601_to_unix(const char *s, int64_t *ret)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    unsigned v[6] = { 0 }; /* year, month, day, hour, minute, second */
    size_t field = 0;

    assert_return(s && ret, -EINVAL);
    if (strnlen(s, sizeof(shape)) != sizeof(shape) - 1) {
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] != 'd') {
            if (s[i] != shape[i]) {
                return -EINVAL;
            }
            field++;
        } else if (s[i] >= '0' && s[i] <= '9') {
            v[field] = v[field] * 10 + (unsigned)(s[i] - '0');
        } else {
            return -EINVAL;
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59) {
        return -EINVAL;
    }
    /* Days past the month's end (Feb 30, Apr 31) land in the next month: no such date. */
    int64_t days = days_from_civil(v[0], v[1], v[2]), y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y != (int64_t)v[0] || m != v[1] || d != v[2]) {
        return -EINVAL;
    }
    *ret = days * 86400 + (int64_t)v[3] * 3600 + (int64_t)v[4] * 60 + v[5];
    return 0;
}

/* --- usages ------------------------------------------------------------------------------- */

static const char *const ku_names[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};

static const struct {
    int nid;
    uint32_t bit;
    const char *name;
} eku_table[] = {
    { NID_server_auth, CERT_EKU_SERVER_AUTH, "serverAuth" },
    { NID_client_auth, CERT_EKU_CLIENT_AUTH, "clientAuth" },
    { NID_code_sign, CERT_EKU_CODE_SIGNING, "codeSigning" },
    { NID_email_protect, CERT_EKU_EMAIL_PROTECTION, "emailProtection" },
    { NID_time_stamp, CERT_EKU_TIME_STAMPING, "timeStamping" },
    { NID_OCSP_sign, CERT_EKU_OCSP_SIGNING, "OCSPSigning" },
    { NID_anyExtendedKeyUsage, CERT_EKU_ANY, "anyExtendedKeyUsage" },
};

uint32_t eku_bit_from_nid(int nid)
{
    for (size_t i = 0; i < ELEMENTSOF(eku_table); i++) {
        if (eku_table[i].nid == nid) {
            return eku_table[i].bit;
        }
    }
    return 0;
}

uint32_t key_usage_from_x509_bits(uint32_t x509_ku)
{
    uint32_t bits = 0;
    for (unsigned n = 0; n < ELEMENTSOF(ku_names); n++) {
        uint32_t mask = n < 8 ? 0x80u >> n : 0x8000u >> (n - 8);
        if (x509_ku & mask) {
            bits |= 1u << n;
        }
    }
    return bits;
}

const char *key_usage_bit_name(uint32_t bit)
{
    for (size_t i = 0; i < ELEMENTSOF(ku_names); i++) {
        if (bit == 1u << i) {
            return ku_names[i];
        }
    }
    return NULL;
}

const char *eku_bit_name(uint32_t bit)
{
    for (size_t i = 0; i < ELEMENTSOF(eku_table); i++) {
        if (bit == eku_table[i].bit) {
            return eku_table[i].name;
        }
    }
    return NULL;
}

static void str_list_done(struct str_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    *l = (struct str_list){ 0 };
}

/* Append a copy of s (len bytes, no NUL inside); the list grows one entry at a time. */
static int str_list_add(struct str_list *l, const char *s, size_t len)
{
    size_t n, bytes;
    if (!size_add(l->n, 1, &n) || !size_mul(n, sizeof(char *), &bytes)) {
        return -ENOMEM;
    }
    char **v = realloc(l->v, bytes);
    if (!v) {
        return -ENOMEM;
    }
    l->v = v;
    char *c = strndup(s, len);
    if (!c) {
        return -ENOMEM;
    }
    l->v[l->n++] = c;
    return 0;
}

/*
 * X509_get_ext_d2i tells "absent" (crit -1), "more than once" (crit -2, RFC 5280 §4.2 forbids
 * it) and "present but undecodable" (NULL with crit >= 0) apart.
 */
static int ext_get(X509 *cert, int nid, void **ret)
{
    int crit = -1;
    ERR_set_mark();
    void *v = X509_get_ext_d2i(cert, nid, &crit, NULL);
    ERR_pop_to_mark();
    if (!v && crit != -1) {
        return -EBADMSG;
    }
    *ret = v;
    return 0;
}

static int fill_key_usage(X509 *cert, struct cert_info *info, struct certd_err *err)
{
    void *v = NULL;
    if (ext_get(cert, NID_key_usage, &v) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "malformed certificate: bad or repeated KeyUsage extension");
    }
    _cleanup_(cleanup_ASN1_BIT_STRING) ASN1_BIT_STRING *ku = v;
    if (!ku) {
        return 0;
    }
    info->has_key_usage = true;
    /* RFC 5280 §4.2.1.3: bit n of the BIT STRING is usage n in ku_names (and CERT_KU_* bit n). */
    for (unsigned i = 0; i < ELEMENTSOF(ku_names); i++) {
        if (ASN1_BIT_STRING_get_bit(ku, (int)i) == 1) {
            info->key_usage |= 1u << i;
        }
    }
    return 0;
}

static int fill_eku(X509 *cert, struct cert_info *info, struct certd_err *err)
{
    void *v = NULL;
    if (ext_get(cert, NID_ext_key_usage, &v) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "malformed certificate: bad or repeated ExtendedKeyUsage extension");
    }
    _cleanup_(cleanup_EXTENDED_KEY_USAGE) EXTENDED_KEY_USAGE *eku = v;
    if (!eku) {
        return 0;
    }
    info->has_eku = true;
    int n = sk_ASN1_OBJECT_num(eku);
    if (n > (int)CERTD_EKUS_MAX) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "malformed certificate: %d extended key usages, more than %u", n,
                       CERTD_EKUS_MAX);
    }
    for (int i = 0; i < n; i++) {
        const ASN1_OBJECT *obj = sk_ASN1_OBJECT_value(eku, i);
        int nid = OBJ_obj2nid(obj);
        const char *name = NULL;
        char dotted[128];
        for (size_t j = 0; j < ELEMENTSOF(eku_table); j++) {
            if (eku_table[j].nid == nid) {
                info->eku |= eku_table[j].bit;
                name = eku_table[j].name;
            }
        }
        if (!name) {
            /* RFC 5280 §4.2.1.12: any OID may be a purpose; keep it, dotted. */
            int len = OBJ_obj2txt(dotted, (int)sizeof(dotted), obj, 1);
            if (len <= 0 || (size_t)len >= sizeof(dotted)) {
                return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                               "malformed certificate: bad extended key usage OID");
            }
            name = dotted;
        }
        if (str_list_add(&info->eku_names, name, strlen(name)) < 0) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    return 0;
}

static int fill_basic_constraints(X509 *cert, struct cert_info *info, struct certd_err *err)
{
    void *v = NULL;
    info->path_len = -1;
    if (ext_get(cert, NID_basic_constraints, &v) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "malformed certificate: bad or repeated basicConstraints extension");
    }
    _cleanup_(cleanup_BASIC_CONSTRAINTS) BASIC_CONSTRAINTS *bc = v;
    if (!bc) {
        return 0;
    }
    info->has_basic_constraints = true;
    info->is_ca = bc->ca != 0;
    if (bc->pathlen) {
        int64_t pl = -1;
        if (ASN1_INTEGER_get_int64(&pl, bc->pathlen) != 1 || pl < 0 || pl > INT_MAX) {
            (void)ossl_drain_errors("inspect: pathlen");
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "malformed certificate: bad pathLenConstraint");
        }
        info->path_len = (int)pl;
    }
    return 0;
}

/*
 * SAN number `pos` (1-based), an IA5String (DNS name, email address, URI), appended to l as a C
 * string. Refused when it holds a byte outside printable ASCII 0x21..0x7e: a NUL would hide a
 * different name from C, control bytes reach terminals and logs, and bytes >= 0x80 are neither
 * IA5 nor valid in a DNS name (RFC 5280 §4.2.1.6: IDNs are A-labels), an address or a URI
 * (RFC 3986 §2: percent-encoded; no spaces either).
 */
static int san_string(const ASN1_IA5STRING *s, int pos, const char *what, struct str_list *l,
                      struct certd_err *err)
{
    int len = s ? ASN1_STRING_length(s) : -1;
    const unsigned char *p = s ? ASN1_STRING_get0_data(s) : NULL;
    if (!s || ASN1_STRING_type(s) != V_ASN1_IA5STRING || len < 0 || (len > 0 && !p)) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "malformed certificate: subject alternative name %d is not a valid %s", pos,
                       what);
    }
    struct span text = span_make(len > 0 ? p : (const unsigned char *)"", (size_t)len);
    for (size_t i = 0; i < text.len; i++) {
        if (text.p[i] < 0x21 || text.p[i] > 0x7e) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "malformed certificate: alternative name %d (%s) holds spaces, control "
                           "or non-ASCII bytes",
                           pos, what);
        }
    }
    if (str_list_add(l, (const char *)text.p, text.len) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

/* SAN number `pos`, an iPAddress, appended to l in text form. */
static int san_ip(const ASN1_OCTET_STRING *s, int pos, struct str_list *l, struct certd_err *err)
{
    char buf[INET6_ADDRSTRLEN];
    int len = s ? ASN1_STRING_length(s) : -1;
    const unsigned char *p = s ? ASN1_STRING_get0_data(s) : NULL;
    /* RFC 5280 §4.2.1.6: four octets for IPv4, sixteen for IPv6. */
    int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
    if (af < 0 || !p || !inet_ntop(af, p, buf, sizeof(buf))) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "malformed certificate: subject alternative name %d is not a valid IP "
                       "address",
                       pos);
    }
    if (str_list_add(l, buf, strlen(buf)) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

static int fill_sans(X509 *cert, struct cert_info *info, struct certd_err *err)
{
    void *v = NULL;
    if (ext_get(cert, NID_subject_alt_name, &v) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                       "malformed certificate: bad or repeated subjectAltName extension");
    }
    _cleanup_(cleanup_GENERAL_NAMES) GENERAL_NAMES *gens = v;
    size_t listed = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        struct str_list *l = NULL;
        const char *what = NULL;
        int r = 0;

        if (!g) {
            continue;
        }
        switch (g->type) {
        case GEN_DNS:
            l = &info->san_dns;
            what = "DNS name";
            break;
        case GEN_EMAIL:
            l = &info->san_email;
            what = "email address";
            break;
        case GEN_URI:
            l = &info->san_uri;
            what = "URI";
            break;
        case GEN_IPADD:
            l = &info->san_ip;
            break;
        default:
            continue; /* otherName, directoryName, ...: not shown */
        }
        if (listed >= CERTD_SANS_MAX) {
            info->san_truncated = true;
            continue;
        }
        if (g->type == GEN_IPADD) {
            r = san_ip(g->d.iPAddress, i + 1, l, err);
        } else {
            r = san_string(g->d.ia5, i + 1, what, l, err);
        }
        if (r < 0) {
            return r;
        }
        listed++;
    }
    return 0;
}

/* --- the rest ----------------------------------------------------------------------------- */

static int fill_serial(const X509 *cert, struct cert_info *info, struct certd_err *err)
{
    const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
    _cleanup_(cleanup_BIGNUM) BIGNUM *bn = serial ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    if (!bn) {
        (void)ossl_drain_errors("inspect: serial");
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD, "malformed certificate: bad serial");
    }
    /* OpenSSL's bytes, freed as such: BN_bn2hex gives a char * of them. */
    _cleanup_(ossl_bytes_free) unsigned char *hex = (unsigned char *)BN_bn2hex(bn);
    if (!hex) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    info->serial_hex = strdup((const char *)hex);
    if (!info->serial_hex) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

static int fill_times(const X509 *cert, struct cert_info *info, struct certd_err *err)
{
    const ASN1_TIME *nb = X509_get0_notBefore(cert), *na = X509_get0_notAfter(cert);
    if (!nb || asn1_time_to_unix(nb, &info->not_before) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD, "malformed certificate: bad notBefore");
    }
    if (!na || asn1_time_to_unix(na, &info->not_after) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD, "malformed certificate: bad notAfter");
    }
    return 0;
}

static int obj_name(const ASN1_OBJECT *obj, char **ret)
{
    char buf[128];
    int nid = OBJ_obj2nid(obj);
    const char *ln = nid != NID_undef ? OBJ_nid2ln(nid) : NULL;
    if (!ln) {
        int n = OBJ_obj2txt(buf, (int)sizeof(buf), obj, 1);
        if (n <= 0 || (size_t)n >= sizeof(buf)) {
            return -EBADMSG;
        }
        ln = buf;
    }
    *ret = strdup(ln);
    return *ret ? 0 : -ENOMEM;
}

static int fill_algorithms(X509 *cert, struct cert_info *info, struct certd_err *err)
{
    const X509_ALGOR *sig = NULL;
    const ASN1_OBJECT *obj = NULL;
    int r;

    X509_get0_signature(NULL, &sig, cert);
    if (sig) {
        X509_ALGOR_get0(&obj, NULL, NULL, sig);
    }
    r = obj ? obj_name(obj, &info->signature_alg) : -EBADMSG;
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_CERT_BAD, "malformed certificate: bad signature algorithm");
    }

    ERR_set_mark();
    EVP_PKEY *pkey = X509_get0_pubkey(cert);
    ERR_pop_to_mark();
    if (!pkey) {
        /* A key type no provider decodes: name it by its OID, leave size, curve, pin empty. */
        X509_PUBKEY *pub = X509_get_X509_PUBKEY(cert);
        ASN1_OBJECT *alg = NULL;
        if (!pub || X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, pub) != 1 || !alg) {
            return err_set(err, -EBADMSG, CERTD_E_CERT_BAD,
                           "malformed certificate: bad public key");
        }
        r = obj_name(alg, &info->key_alg);
        if (r < 0) {
            return err_set(err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_CERT_BAD,
                           "malformed certificate: bad public key algorithm");
        }
        return 0;
    }

    struct key_info ki;
    r = key_describe(pkey, &ki);
    if (r < 0) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD, "malformed certificate: bad public key");
    }
    info->key_alg = strdup(ki.alg_name);
    if (!info->key_alg) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    info->key_bits = ki.bits;
    if (ki.curve[0] != '\0') {
        const char *nist = key_curve_nist_name(ki.curve);
        info->key_curve = strdup(nist ? nist : ki.curve);
        if (!info->key_curve) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    return 0;
}

static int fill_digests(OSSL_LIB_CTX *libctx, const char *propq, X509 *cert, struct cert_info *info,
                        struct certd_err *err)
{
    _cleanup_(cleanup_EVP_MD) EVP_MD *md = EVP_MD_fetch(libctx, "SHA256", propq);
    unsigned char dgst[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!md || X509_digest(cert, md, dgst, &n) != 1 || n != 32) {
        (void)ossl_drain_errors("inspect: fingerprint");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot compute the SHA-256 fingerprint");
    }
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (unsigned int i = 0; i < n; i++) {
        if (i > 0) {
            info->fingerprint_sha256[o++] = ':';
        }
        info->fingerprint_sha256[o++] = hex[dgst[i] >> 4];
        info->fingerprint_sha256[o++] = hex[dgst[i] & 0xf];
    }
    info->fingerprint_sha256[o] = '\0';

    ERR_set_mark();
    const EVP_PKEY *pkey = X509_get0_pubkey(cert);
    ERR_pop_to_mark();
    if (!pkey) {
        return 0; /* no decodable key, no pin (fill_algorithms named the algorithm) */
    }
    struct pin pin;
    int r = pin_from_cert(libctx, propq, cert, &pin);
    if (r == -ENOMEM) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot compute the SPKI pin");
    }
    pin_format(&pin, info->spki_pin, sizeof(info->spki_pin));
    return 0;
}

/*
 * Self-signed: issuer and subject are the same name and the certificate's own key verifies its
 * signature (what X509_check_issued calls self-issued, plus the proof).
 */
static bool cert_is_self_signed(X509 *cert)
{
    if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) != 0) {
        return false;
    }
    ERR_set_mark();
    EVP_PKEY *pkey = X509_get0_pubkey(cert);
    bool ok = pkey && X509_verify(cert, pkey) == 1;
    ERR_pop_to_mark();
    return ok;
}

struct cert_info *cert_info_free(struct cert_info *info)
{
    if (!info) {
        return NULL;
    }
    cert_name_done(&info->subject);
    cert_name_done(&info->issuer);
    free(info->serial_hex);
    free(info->signature_alg);
    free(info->key_alg);
    free(info->key_curve);
    str_list_done(&info->eku_names);
    str_list_done(&info->san_dns);
    str_list_done(&info->san_ip);
    str_list_done(&info->san_email);
    str_list_done(&info->san_uri);
    free(info);
    return NULL;
}

int cert_inspect(OSSL_LIB_CTX *libctx, const char *propq, X509 *cert, struct cert_info **ret,
                 struct certd_err *err)
{
    assert_return(cert && ret, -EINVAL);

    _cleanup_(cleanup_cert_info) struct cert_info *info = calloc(1, sizeof(*info));
    if (!info) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = cert_name_fill(X509_get_subject_name(cert), "subject", &info->subject, err);
    if (r < 0) {
        return r;
    }
    r = cert_name_fill(X509_get_issuer_name(cert), "issuer", &info->issuer, err);
    if (r < 0) {
        return r;
    }
    r = fill_serial(cert, info, err);
    if (r < 0) {
        return r;
    }
    r = fill_times(cert, info, err);
    if (r < 0) {
        return r;
    }
    long version = X509_get_version(cert);
    if (version < 0 || version > 2) {
        return err_set(err, -EBADMSG, CERTD_E_CERT_BAD, "malformed certificate: version %ld",
                       version + 1);
    }
    info->version = (int)version + 1;

    r = fill_algorithms(cert, info, err);
    if (r >= 0) {
        r = fill_key_usage(cert, info, err);
    }
    if (r >= 0) {
        r = fill_eku(cert, info, err);
    }
    if (r >= 0) {
        r = fill_basic_constraints(cert, info, err);
    }
    if (r >= 0) {
        r = fill_sans(cert, info, err);
    }
    if (r >= 0) {
        r = fill_digests(libctx, propq, cert, info, err);
    }
    if (r < 0) {
        return r;
    }
    info->is_self_signed = cert_is_self_signed(cert);

    *ret = TAKE_PTR(info);
    return 0;
}
