/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl's HTTPS client (client.h): OpenSSL over one blocking socket per request
 * (Connection: close) with send and receive timeouts, TLS 1.2 or newer. How the server is
 * trusted is one of four modes, chosen by the options and never mixed: a CA chain plus the
 * URL's host name (--cacert or the system's CAs), nothing (--insecure), or the SPKI pin of its
 * key (--pin, --known-hosts). In the pin modes the verify callback accepts the handshake if
 * and only if the leaf's pin is expected (seed 004: the link needs no chain, expiry or name),
 * and the peer's pin is computed again after the handshake: no request byte leaves before
 * both agree.
 *
 * The request is one fixed message written here; the answer is parsed by http-parser (the
 * body grows as it comes, to at most CLIENT_BODY_MAX bytes) and, by the callers, by jansson.
 * Everything the server sends is hostile: texts are cleaned before they reach a terminal.
 */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pin/pinstore.h"
#include "store/store.h"
#include "util/base64.h"
#include "util/json.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/secret.h"
#include "x509/bundle.h"

/* Bytes read from the connection in all: the body, its chunk framing and the headers. */
/* "--client-cert PATH" and the like, naming a file in a message. */
#define CLIENT_WHAT_MAX (32u + PATH_MAX)
#define CLIENT_READ_MAX (2u * CLIENT_BODY_MAX)
/* Send and receive timeout of the socket, seconds: a BMC's CA may sit behind a slow host. */
#define CLIENT_IO_TIMEOUT 30
/* A URL on the command line, a user name, a password (the users module caps its own at 128). */
#define CLIENT_URL_MAX      2048u
#define CLIENT_USER_MAX     256u
#define CLIENT_PASSWORD_MAX 1024u
/* "[IPv6]:65535", or a DNS name and a port. */
#define CLIENT_HOSTPORT_MAX (CERTD_SAN_LEN_MAX + 8)
/* The long message of a pin that was not accepted: the expected pins, the file, the hint. */
#define CLIENT_DETAIL_MAX (2 * PATH_MAX + (CLIENT_PINS_MAX + 2) * PIN_STR_MAX + 512)

DEFINE_CLEANUP(SSL_CTX, SSL_CTX_free)
DEFINE_CLEANUP(SSL, SSL_free)

/* The largest answer, a PinnedPeers collection, must fit the bounds (client.h). */
_Static_assert(CLIENT_JSON_VALUES_MAX >= 2 * PINSTORE_MAX + 64,
               "a PinnedPeers collection of PINSTORE_MAX members must pass json_text_bounds");

/*
 * A heap buffer for text made from a secret (the Basic credentials, the request head that
 * carries them): wiped when freed, as struct secret is, but sized as it is built.
 */
struct wiped {
    char *p;
    size_t size;
};

static void wiped_done(struct wiped *w)
{
    if (w->p) {
        OPENSSL_clear_free(w->p, w->size);
    }
    *w = (struct wiped){ 0 };
}

static int wiped_alloc(struct wiped *w, size_t size)
{
    w->p = OPENSSL_zalloc(size);
    w->size = w->p ? size : 0;
    return w->p ? 0 : -ENOMEM;
}

struct client_url {
    char host[CERTD_SAN_LEN_MAX + 1]; /* a DNS name or an IP address, without brackets */
    char port[6];
    char authority[CERTD_SAN_LEN_MAX + 16]; /* the Host header: as the URL spells it */
    char prefix[CLIENT_URL_MAX];            /* the URL's path, without a trailing '/' */
    char hostport[CLIENT_HOSTPORT_MAX];     /* canonical "host:port" of known-hosts files */
    bool is_ip;
};

enum client_trust {
    CLIENT_TRUST_CA,       /* chain to --cacert or the system's CAs, and the host name */
    CLIENT_TRUST_INSECURE, /* nothing */
    CLIENT_TRUST_PIN,      /* the key's pin is one of pins[] (--pin or a known-hosts line) */
    CLIENT_TRUST_TOFU,     /* no line for the host yet: take the pin and record it */
    CLIENT_TRUST_UNKNOWN,  /* no line for the host and no --tofu: refuse, show the pin */
};

struct client {
    const struct cli_ctx *ctx;
    const char *cmd;
    struct client_url url;
    SSL_CTX *ssl_ctx;
    enum client_trust trust;
    struct pin pins[CLIENT_PINS_MAX];
    size_t n_pins;
    char pin_source[PATH_MAX + 32]; /* "--pin" or "FILE line N" */
    const char *known_hosts;
    struct wiped auth; /* "Basic ...", or NULL p: no Authorization header */
    /* The current connection: the leaf's pin as the verify callback saw it. */
    bool has_seen;
    struct pin seen;
    bool is_refused;      /* the callback refused the key (a handshake failure is then ours) */
    bool has_client_cert; /* --client-cert was given */
    char detail[CLIENT_DETAIL_MAX]; /* the long message of the last pin refusal, or "" */
};

/* ---- the URL ---- */

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/*
 * True when every dot-separated label of h is a number, decimal or "0x" hex: the forms
 * inet_aton(3), and so getaddrinfo(3), takes for an IPv4 address ("010.0.0.1" is 8.0.0.1,
 * "2130706433" and "127.1" are 127.0.0.1, "0x7f.1" too). Only dotted decimal may name an
 * address here (inet_pton): anything else numeric would connect somewhere other than where
 * the URL or the known-hosts line seems to point, and one address could hide behind many
 * spellings of known-hosts lines.
 */
static bool is_numbers_and_dots(const char *h)
{
    for (const char *p = h;; p++) {
        const char *end = p + strcspn(p, ".");
        bool is_hex = end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
        const char *q = is_hex ? p + 2 : p;
        if (q == end && !is_hex) {
            return false; /* an empty label: "a..b", a leading dot */
        }
        for (; q < end; q++) {
            bool is_digit = *q >= '0' && *q <= '9';
            bool is_xdigit = (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F');
            if (!is_digit && !(is_hex && is_xdigit)) {
                return false;
            }
        }
        if (*end == '\0' || end[1] == '\0') {
            return true; /* the last label (a trailing dot is the root, as in "1.2.3.4.") */
        }
        p = end;
    }
}

/*
 * The canonical "host:port" of known-hosts files: a DNS name in lower case, an IP address as
 * inet_ntop writes it (IPv6 in brackets), so that "H", "h", "[::0001]" and "[::1]" each name
 * one line. host is hlen bytes; -EINVAL with why on a bad name.
 */
static int hostport_canon(const char *host, size_t hlen, bool is_bracketed, uint64_t port,
                          char *buf, size_t size, const char **why)
{
    char h[CERTD_SAN_LEN_MAX + 1];
    unsigned char addr[16];
    char ip[INET6_ADDRSTRLEN];
    if (hlen == 0 || hlen >= sizeof(h)) {
        *why = "the host name is empty or too long";
        return -EINVAL;
    }
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    if (is_bracketed) {
        if (inet_pton(AF_INET6, h, addr) != 1 || !inet_ntop(AF_INET6, addr, ip, sizeof(ip))) {
            *why = "the text in brackets is not an IPv6 address";
            return -EINVAL;
        }
        (void)snprintf(buf, size, "[%s]:%u", ip, (unsigned)port);
        return 0;
    }
    if (inet_pton(AF_INET, h, addr) == 1 && inet_ntop(AF_INET, addr, ip, sizeof(ip))) {
        (void)snprintf(buf, size, "%s:%u", ip, (unsigned)port);
        return 0;
    }
    if (is_numbers_and_dots(h)) {
        *why = "a host made only of numbers and dots must be an IPv4 address in dotted decimal "
               "(a.b.c.d, no leading zeros, no hex, four parts): the resolver would read this "
               "one as another address than it seems to name";
        return -EINVAL;
    }
    for (size_t i = 0; i < hlen; i++) {
        if (!is_host_char(h[i])) {
            *why = h[i] == ':' ? "an IPv6 address must be in brackets"
                               : "the host name holds a character that is not allowed";
            return -EINVAL;
        }
        if (h[i] >= 'A' && h[i] <= 'Z') {
            h[i] = (char)(h[i] - 'A' + 'a');
        }
    }
    (void)snprintf(buf, size, "%s:%u", h, (unsigned)port);
    return 0;
}

/*
 * https://HOST[:PORT][/PATH]: HOST a DNS name, an IPv4 address or [IPv6]; no user
 * information (the password would end up in the process list), query or fragment; PATH
 * visible ASCII only, since it goes into the request line as it is.
 */
static int url_parse(const char *s, struct client_url *u, const char **why)
{
    size_t n = strlen(s);
    if (n > CLIENT_URL_MAX) {
        *why = "it is too long";
        return -E2BIG;
    }
    if (strncasecmp(s, "https://", 8) != 0) {
        *why = "only https:// URLs are supported";
        return -EINVAL;
    }
    const char *p = s + 8;
    const char *end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(end - p))) {
        *why = "give the user with --user, not in the URL";
        return -EINVAL;
    }
    const char *host = p, *host_end, *port = NULL;
    bool is_bracketed = *p == '[';
    if (is_bracketed) {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end) {
            *why = "an IPv6 address needs its closing ']'";
            return -EINVAL;
        }
        p = host_end + 1;
    } else {
        host_end = host;
        while (host_end < end && *host_end != ':') {
            host_end++;
        }
        p = host_end;
    }
    if (p < end) {
        if (*p != ':') {
            *why = "unexpected text after the host";
            return -EINVAL;
        }
        port = p + 1;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof(u->host)) {
        *why = "the host name is empty or too long";
        return -EINVAL;
    }
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    unsigned char addr[16];
    u->is_ip = inet_pton(AF_INET6, u->host, addr) == 1 || inet_pton(AF_INET, u->host, addr) == 1;
    if (is_bracketed && inet_pton(AF_INET6, u->host, addr) != 1) {
        *why = "the text in brackets is not an IPv6 address";
        return -EINVAL;
    }
    for (size_t i = 0; !u->is_ip && i < hlen; i++) {
        if (!is_host_char(u->host[i])) {
            *why = "the host name holds a character that is not allowed";
            return -EINVAL;
        }
    }
    uint64_t portnum = 443;
    if (port) {
        size_t plen = (size_t)(end - port);
        char pbuf[8];
        if (plen == 0 || plen >= sizeof(pbuf)) {
            *why = "the port must be a number from 1 to 65535";
            return -EINVAL;
        }
        memcpy(pbuf, port, plen);
        pbuf[plen] = '\0';
        if (parse_u64(pbuf, 1, 65535, &portnum) < 0) {
            *why = "the port must be a number from 1 to 65535";
            return -EINVAL;
        }
    }
    (void)snprintf(u->port, sizeof(u->port), "%u", (unsigned)portnum);
    (void)snprintf(u->authority, sizeof(u->authority), "%.*s", (int)(end - (s + 8)), s + 8);
    if (strpbrk(end, "?#")) {
        *why = "a query or fragment has no place in it";
        return -EINVAL;
    }
    for (const char *q = end; *q; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            *why = "the path holds a space, a control character or non-ASCII text";
            return -EINVAL;
        }
    }
    size_t plen = strlen(end);
    while (plen > 0 && end[plen - 1] == '/') {
        plen--;
    }
    memcpy(u->prefix, end, plen);
    u->prefix[plen] = '\0';
    return hostport_canon(host, hlen, is_bracketed, portnum, u->hostport, sizeof(u->hostport), why);
}

const char *client_host(const struct client *c)
{
    return c->url.host;
}

/* ---- the server's words, made safe for a terminal ---- */

/* Append printable ASCII of s to buf (control and non-ASCII bytes as '?'), within size. */
static void text_append(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 1 < size && n < CLIENT_TEXT_MAX; s++) {
        unsigned char ch = (unsigned char)*s;
        buf[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    buf[n] = '\0';
}

void client_clean_text(const char *s, char *buf, size_t size)
{
    if (size == 0) {
        return;
    }
    buf[0] = '\0';
    text_append(buf, size, s ? s : "");
}

/*
 * The message of an error body: Redfish's error.message and the Message of each
 * @Message.ExtendedInfo entry (that says something else), or phosphor-rest's
 * data.description. "" when there is none.
 */
static void server_message(json_t *j, char *buf, size_t size)
{
    buf[0] = '\0';
    json_t *e = json_object_get(j, "error");
    if (json_is_object(e)) {
        const char *main_msg = json_string_value(json_object_get(e, "message"));
        if (main_msg) {
            text_append(buf, size, main_msg);
        }
        json_t *info = json_object_get(e, "@Message.ExtendedInfo");
        for (size_t i = 0; json_is_array(info) && i < json_array_size(info) && i < 8; i++) {
            const char *m = json_string_value(json_object_get(json_array_get(info, i), "Message"));
            if (m && (!main_msg || strcmp(m, main_msg) != 0)) {
                text_append(buf, size, buf[0] ? "; " : "");
                text_append(buf, size, m);
            }
        }
        return;
    }
    const char *d = json_string_value(json_object_get(json_object_get(j, "data"), "description"));
    if (d) {
        text_append(buf, size, d);
    }
}

/* ---- the HTTP response ---- */

struct http_answer {
    struct client_answer *a;
    size_t cap;
    bool is_complete;
    bool is_too_large;
    bool is_oom;
    /* Retry-After, for a 503's message */
    char field[16];
    size_t field_len;
    bool is_field_long;
    bool was_value;
    bool is_retry_after;
};

void client_answer_done(struct client_answer *a)
{
    free(a->body);
    *a = (struct client_answer){ 0 };
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_answer *h = p->data;
    if (h->was_value) {
        h->field_len = 0;
        h->is_field_long = false;
        h->was_value = false;
    }
    if (h->field_len + len >= sizeof(h->field)) {
        h->is_field_long = true;
        return 0;
    }
    memcpy(h->field + h->field_len, at, len);
    h->field_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_answer *h = p->data;
    char *ra = h->a->retry_after;
    if (!h->was_value) {
        h->was_value = true;
        h->field[h->field_len] = '\0';
        h->is_retry_after = !h->is_field_long && strcasecmp(h->field, "Retry-After") == 0;
        if (h->is_retry_after) {
            ra[0] = '\0';
        }
    }
    if (h->is_retry_after) {
        size_t n = strlen(ra);
        for (size_t i = 0; i < len && n + 1 < sizeof(h->a->retry_after); i++) {
            if (at[i] >= '0' && at[i] <= '9') {
                ra[n++] = at[i];
            }
        }
        ra[n] = '\0';
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_answer *h = p->data;
    h->a->status = p->status_code;
    h->was_value = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_answer *h = p->data;
    struct client_answer *a = h->a;
    size_t need;
    if (!size_add(a->len, len, &need) || need > CLIENT_BODY_MAX) {
        h->is_too_large = true;
        return 1;
    }
    if (need + 1 > h->cap) {
        /* Grow as the data comes, never from a length the server announced. */
        size_t cap = h->cap ? h->cap : 4096;
        while (cap < need + 1) {
            cap *= 2;
        }
        if (cap > CLIENT_BODY_MAX + 1) {
            cap = CLIENT_BODY_MAX + 1;
        }
        char *b = realloc(a->body, cap);
        if (!b) {
            h->is_oom = true;
            return 1;
        }
        a->body = b;
        h->cap = cap;
    }
    memcpy(a->body + a->len, at, len);
    a->len = need;
    a->body[a->len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_answer *h = p->data;
    if (p->status_code < 200) {
        /* An interim answer (100 Continue): the real one follows. */
        h->a->len = 0;
        h->a->retry_after[0] = '\0';
        return 0;
    }
    h->is_complete = true;
    /* Whatever follows on the connection is none of ours. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings answer_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- TLS ---- */

static int io_error(struct certd_err *err, const struct client *c, const char *what)
{
    return err_set(err, -ETIMEDOUT, CERTD_E_UNAVAILABLE, "%s %s:%s: no answer within %d s", what,
                   c->url.host, c->url.port, CLIENT_IO_TIMEOUT);
}

/* The reason of the first OpenSSL error queued, for a person ("wrong version number"). */
static const char *ossl_reason(const char *what)
{
    unsigned long code = ossl_drain_errors(what);
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    return r ? r : "the connection was closed";
}

static int tcp_connect(const struct client *c, int *ret, struct certd_err *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int r = getaddrinfo(c->url.host, c->url.port, &hints, &res);
    if (r != 0) {
        return err_set(err, -EHOSTUNREACH, CERTD_E_UNAVAILABLE, "cannot resolve %s: %s",
                       c->url.host, gai_strerror(r));
    }
    int last = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        /* Linux applies SO_SNDTIMEO to connect(2) too: one bound for every step. */
        struct timeval tv = { .tv_sec = CLIENT_IO_TIMEOUT };
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            last = errno;
            (void)close(fd);
            continue;
        }
        freeaddrinfo(res);
        *ret = fd;
        return 0;
    }
    freeaddrinfo(res);
    if (last == EINPROGRESS || last == EAGAIN) {
        return io_error(err, c, "cannot connect to");
    }
    return err_set(err, -last, CERTD_E_UNAVAILABLE, "cannot connect to %s:%s: %s", c->url.host,
                   c->url.port, strerror(last));
}

static bool pin_expected(const struct client *c, const struct pin *p)
{
    bool found = false;
    /* Every entry is compared (pin_eq is constant-time): no early exit to time. */
    for (size_t i = 0; i < c->n_pins; i++) {
        found |= pin_eq(&c->pins[i], p);
    }
    return found;
}

/*
 * The verify callback of the pin modes. OpenSSL calls it for every problem it finds in the
 * chain (none can be fixed: no CA is loaded) and once per certificate at the end; each call
 * answers for the leaf's key alone, so chain, issuer, dates and names do not count and a key
 * that is not expected fails the handshake whatever else the chain says. The pin is computed
 * once per connection and kept for the messages.
 */
static int verify_pin_cb(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct client *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    if (!c || !leaf) {
        return 0;
    }
    if (!c->has_seen) {
        if (pin_from_cert(c->ctx->libctx, c->ctx->propq, leaf, &c->seen) < 0) {
            X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
            return 0;
        }
        c->has_seen = true;
    }
    if (c->trust == CLIENT_TRUST_TOFU ||
        (c->trust == CLIENT_TRUST_PIN && pin_expected(c, &c->seen))) {
        return 1;
    }
    c->is_refused = true;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

/* The long message of a refused pin (client_fail prints it), and the short record in err. */
static int pin_refused(struct client *c, struct certd_err *err)
{
    char seen[PIN_STR_MAX];
    pin_format(&c->seen, seen, sizeof(seen));
    size_t n = 0;
    if (c->trust == CLIENT_TRUST_UNKNOWN) {
        (void)snprintf(c->detail, sizeof(c->detail),
                       "%s is not in %s; the server's key pin is %s. Check that pin out of band, "
                       "then add the line \"%s %s\" to %s, or pass --tofu to record it (trust on "
                       "first use)",
                       c->url.hostport, c->known_hosts, seen, c->url.hostport, seen,
                       c->known_hosts);
        return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                       "%s is not in %s: pass --tofu to record its pin, or add it by hand",
                       c->url.hostport, c->known_hosts);
    }
    n += (size_t)snprintf(c->detail, sizeof(c->detail),
                          "the server's key pin %s is not one of the pins expected for %s (", seen,
                          c->url.hostport);
    for (size_t i = 0; i < c->n_pins && n < sizeof(c->detail); i++) {
        char p[PIN_STR_MAX];
        pin_format(&c->pins[i], p, sizeof(p));
        n += (size_t)snprintf(c->detail + n, sizeof(c->detail) - n, "%s%s", i ? ", " : "", p);
    }
    if (n < sizeof(c->detail)) {
        if (c->known_hosts) {
            (void)snprintf(c->detail + n, sizeof(c->detail) - n,
                           ") from %s. If the server's key was changed on purpose, check the "
                           "new pin out of band and update %s (or pass --pin %s)",
                           c->pin_source, c->known_hosts, seen);
        } else {
            (void)snprintf(c->detail + n, sizeof(c->detail) - n,
                           ") from --pin. If the server's key was changed on purpose, check the "
                           "new pin out of band and pass it with --pin %s",
                           seen);
        }
    }
    return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                   "the server's key pin %s is not one expected for %s", seen, c->url.hostport);
}

/*
 * After a handshake in a pin mode: the peer's key, computed again from the certificate the
 * session holds, must be the one the callback judged (and accepted). A request is written
 * only after this.
 */
static int pin_check_peer(struct client *c, SSL *ssl, struct certd_err *err)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    struct pin p;
    if (!peer || !c->has_seen || pin_from_cert(c->ctx->libctx, c->ctx->propq, peer, &p) < 0 ||
        !pin_eq(&p, &c->seen)) {
        (void)ossl_drain_errors("pin check");
        return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                       "TLS with %s:%s: the server's key could not be checked", c->url.host,
                       c->url.port);
    }
    if (c->trust == CLIENT_TRUST_PIN && pin_expected(c, &p)) {
        return 0;
    }
    if (c->trust == CLIENT_TRUST_TOFU) {
        return 0;
    }
    return pin_refused(c, err);
}

/* An alert by which the server refused (or asked for) our client certificate. */
static bool is_client_cert_refused(unsigned long e)
{
    if (ERR_GET_LIB(e) != ERR_LIB_SSL) {
        return false;
    }
    switch (ERR_GET_REASON(e)) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

static int client_cert_refused(struct certd_err *err, const struct client *c)
{
    return err_set(err, -EACCES, CERTD_E_POLICY_FORBIDS,
                   "%s:%s refused the TLS connection over the client certificate: %s", c->url.host,
                   c->url.port,
                   c->has_client_cert ? "its key is not pinned there (or no longer), or its chain "
                                        "is not trusted"
                                      : "it requires one (--client-cert, --client-key)");
}

static int tls_connect(struct client *c, int fd, SSL **ret, struct certd_err *err)
{
    _cleanup_(cleanup_SSL) SSL *ssl = SSL_new(c->ssl_ctx);
    if (!ssl) {
        (void)ossl_drain_errors("SSL_new");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int ok = SSL_set_app_data(ssl, c);
    if (ok == 1 && c->trust == CLIENT_TRUST_CA) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = c->url.is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, c->url.host)
                          : X509_VERIFY_PARAM_set1_host(param, c->url.host, 0);
    }
    /* SNI carries host names only (RFC 6066 §3). */
    if (ok == 1 && !c->url.is_ip) {
        ok = (int)SSL_set_tlsext_host_name(ssl, c->url.host);
    }
    if (ok != 1 || SSL_set_fd(ssl, fd) != 1) {
        (void)ossl_drain_errors("SSL setup");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    c->has_seen = false;
    c->is_refused = false;
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r != 1) {
        int saved = errno;
        int se = SSL_get_error(ssl, r);
        long v = SSL_get_verify_result(ssl);
        /* A refused key, not whatever error of the chain the callback overlooked. */
        if (c->is_refused) {
            (void)ossl_drain_errors("SSL_connect");
            return pin_refused(c, err);
        }
        if (v != X509_V_OK && c->trust == CLIENT_TRUST_CA) {
            (void)ossl_drain_errors("SSL_connect");
            return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                           "TLS with %s:%s: the server's certificate did not verify: %s",
                           c->url.host, c->url.port, X509_verify_cert_error_string(v));
        }
        if (se == SSL_ERROR_SSL && is_client_cert_refused(ERR_peek_error())) {
            (void)ossl_drain_errors("SSL_connect");
            return client_cert_refused(err, c);
        }
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
            (void)ossl_drain_errors("SSL_connect");
            return io_error(err, c, "TLS with");
        }
        if (se == SSL_ERROR_SYSCALL && saved != 0) {
            (void)ossl_drain_errors("SSL_connect");
            return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE, "TLS with %s:%s failed: %s",
                           c->url.host, c->url.port, strerror(saved));
        }
        return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE, "TLS with %s:%s failed: %s", c->url.host,
                       c->url.port, ossl_reason("SSL_connect"));
    }
    if (c->trust >= CLIENT_TRUST_PIN) {
        r = pin_check_peer(c, ssl, err);
        if (r < 0) {
            return r;
        }
    }
    *ret = TAKE_PTR(ssl);
    return 0;
}

/* Load --cacert through libcertd's parser (certificates only) into the context's store. */
static int load_cacert(const struct cli_ctx *ctx, SSL_CTX *sc, const char *path,
                       struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    char what[CLIENT_WHAT_MAX];
    (void)snprintf(what, sizeof(what), "--cacert %s", path);
    int r = cli_read_bundle(ctx, path, what, &b, err);
    if (r < 0) {
        return r;
    }
    if (b->key) {
        return err_set(err, -EINVAL, CERTD_E_PEM_UNEXPECTED_LABEL,
                       "--cacert %s holds a private key: give the CA certificate only", path);
    }
    X509_STORE *store = SSL_CTX_get_cert_store(sc);
    for (size_t i = 0; i < bundle_n_certs(b); i++) {
        if (X509_STORE_add_cert(store, bundle_cert(b, i)) != 1) {
            (void)ossl_drain_errors("X509_STORE_add_cert");
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    return 0;
}

/*
 * The client certificate (first in cert_path, any others its chain) and its key (in key_path,
 * or with the certificate when key_path is NULL or the same file), checked to belong
 * together. The bytes that held the key are wiped.
 */
static int load_client_cert(const struct cli_ctx *ctx, SSL_CTX *sc, const char *cert_path,
                            const char *key_path, struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    struct certd_err e2 = { 0 };
    char what[CLIENT_WHAT_MAX];
    (void)snprintf(what, sizeof(what), "--client-cert %s", cert_path);
    int r = cli_read_bundle(ctx, cert_path, what, &b, err);
    if (r < 0) {
        return r;
    }
    bool is_same = !key_path || strcmp(key_path, cert_path) == 0;
    if (is_same) {
        if (!b->key) {
            return err_set(err, -EINVAL, CERTD_E_KEY_MISSING,
                           "--client-cert %s holds no private key: give --client-key FILE",
                           cert_path);
        }
        key = TAKE_PTR(b->key);
    } else {
        if (b->key) {
            return err_set(err, -EINVAL, CERTD_E_MULTIPLE_KEYS,
                           "--client-cert %s holds a private key, and --client-key names another "
                           "file: give one key",
                           cert_path);
        }
        r = cli_load_key(ctx, key_path, &key, &e2);
        if (r < 0) {
            return err_set(err, r, e2.code, "--client-key %s: %s", key_path, e2.msg);
        }
    }
    if (!key_public_eq(X509_get0_pubkey(bundle_cert(b, 0)), key)) {
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "the key of --client-key does not belong to the certificate of "
                       "--client-cert %s",
                       cert_path);
    }
    if (SSL_CTX_use_certificate(sc, bundle_cert(b, 0)) != 1 ||
        SSL_CTX_use_PrivateKey(sc, key) != 1) {
        (void)ossl_drain_errors("SSL_CTX_use_certificate");
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_UNSUPPORTED,
                       "--client-cert %s: TLS cannot use this certificate and key", cert_path);
    }
    for (size_t i = 1; i < bundle_n_certs(b); i++) {
        if (SSL_CTX_add1_chain_cert(sc, bundle_cert(b, i)) != 1) {
            (void)ossl_drain_errors("SSL_CTX_add1_chain_cert");
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    return 0;
}

/* The client context: TLS 1.2 or newer; the peer verified as c->trust says. */
static int tls_setup(struct client *c, const struct client_opts *o, struct certd_err *err)
{
    const struct cli_ctx *ctx = c->ctx;
    _cleanup_(cleanup_SSL_CTX) SSL_CTX *sc =
        SSL_CTX_new_ex(ctx->libctx, ctx->propq, TLS_client_method());
    if (!sc || SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1) {
        (void)ossl_drain_errors("SSL_CTX_new_ex");
        return err_set(err, -ENOMEM, CERTD_E_INTERNAL, "cannot set up TLS");
    }
    int r = 0;
    switch (c->trust) {
    case CLIENT_TRUST_INSECURE:
        SSL_CTX_set_verify(sc, SSL_VERIFY_NONE, NULL);
        break;
    case CLIENT_TRUST_CA:
        SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(sc), X509_V_FLAG_X509_STRICT);
        if (o->cacert) {
            r = load_cacert(ctx, sc, o->cacert, err);
        } else if (SSL_CTX_set_default_verify_paths(sc) != 1) {
            (void)ossl_drain_errors("SSL_CTX_set_default_verify_paths");
            r = err_set(err, -EIO, CERTD_E_STORAGE, "cannot load the system's CA certificates");
        }
        break;
    case CLIENT_TRUST_PIN:
    case CLIENT_TRUST_TOFU:
    case CLIENT_TRUST_UNKNOWN:
        /* No CA is loaded: the callback alone decides, on the leaf's key. */
        SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, verify_pin_cb);
        break;
    }
    if (r >= 0 && o->client_cert) {
        r = load_client_cert(ctx, sc, o->client_cert, o->client_key, err);
        c->has_client_cert = true;
    }
    if (r < 0) {
        return r;
    }
    c->ssl_ctx = TAKE_PTR(sc);
    return 0;
}

/* ---- known hosts ---- */

static bool is_blank(uint8_t b)
{
    return b == ' ' || b == '\t';
}

/* The next blank-separated word of the line into buf, or -ENOENT at its end; -E2BIG if long. */
static int next_word(struct cursor *cur, char *buf, size_t size)
{
    uint8_t b = 0;
    size_t n = 0;
    while (cur_left(cur) > 0 && is_blank(cur_rest(cur).p[0])) {
        if (cur_u8(cur, &b) < 0) {
            return -ENOENT;
        }
    }
    if (cur_left(cur) == 0) {
        return -ENOENT;
    }
    while (cur_left(cur) > 0 && !is_blank(cur_rest(cur).p[0])) {
        if (cur_u8(cur, &b) < 0) {
            break;
        }
        if (n + 1 >= size) {
            return -E2BIG;
        }
        buf[n++] = (char)b;
    }
    buf[n] = '\0';
    return 0;
}

/* "HOST:PORT" of a known-hosts line into its canonical form (hostport_canon). */
static int hostport_parse(const char *s, char *buf, size_t size, const char **why)
{
    const char *colon;
    const char *host = s;
    size_t hlen;
    bool is_bracketed = s[0] == '[';
    if (is_bracketed) {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            *why = "an IPv6 address needs its closing ']' and then \":PORT\"";
            return -EINVAL;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            *why = "the host has no \":PORT\"";
            return -EINVAL;
        }
        hlen = (size_t)(colon - s);
    }
    uint64_t port;
    if (parse_u64(colon + 1, 1, 65535, &port) < 0) {
        *why = "the port must be a number from 1 to 65535";
        return -EINVAL;
    }
    return hostport_canon(host, hlen, is_bracketed, port, buf, size, why);
}

/*
 * Read the known-hosts file, which decides whom certctl trusts, into *ret (store_buf_done
 * frees it). store_read_trusted judges the descriptor it reads: a regular file, never through
 * a symlink, owned by the effective uid or root, not writable by group or others (whoever can
 * write it chooses the keys certctl accepts). -ENOENT (err untouched) when there is none. A
 * file refused as unsafe, a symlink included, is -EPERM CERTD_E_POLICY_FORBIDS: a refusal
 * (exit 1), as a malformed file is. Other failures as store_read_trusted's.
 */
static int known_hosts_read(const char *path, struct store_buf *ret, struct certd_err *err)
{
    struct certd_err e2 = { 0 };
    int r = store_read_trusted(path, "known-hosts file", CLIENT_KNOWN_HOSTS_MAX, 022, ret, &e2);
    if (r == -ENOENT) {
        return r;
    }
    if (r == -ELOOP) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "--known-hosts %s is a symbolic link: it is never followed; give the "
                       "file itself",
                       path);
    }
    if (r < 0) {
        return err_set(err, r, e2.code, "--known-hosts %s", e2.msg);
    }
    return 0;
}

/* The line of one host in a known-hosts file. */
struct known_host {
    struct pin pins[CLIENT_PINS_MAX];
    size_t n_pins;
    size_t lineno;
};

/*
 * Parse known-hosts text (read from path, named in messages) and find hostport's line into
 * *ret (ret->n_pins 0: none). Every line is checked: a broken file is refused whole
 * (-EBADMSG/-E2BIG, "PATH line N: ...").
 */
static int known_hosts_parse(const char *path, struct span text, const char *hostport,
                             struct known_host *ret, struct certd_err *err)
{
    if (span_has_nul(text)) {
        return err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE, "%s holds a NUL byte", path);
    }
    struct cursor cur = cur_init(text);
    struct span line;
    int r;
    *ret = (struct known_host){ 0 };
    for (size_t lineno = 1; cur_line(&cur, &line) == 0; lineno++) {
        struct cursor lc = cur_init(line);
        char word[CLIENT_HOSTPORT_MAX + PIN_STR_MAX];
        char hp[CLIENT_HOSTPORT_MAX];
        const char *why = NULL;
        r = next_word(&lc, word, sizeof(word));
        if (r == -ENOENT || (r == 0 && word[0] == '#')) {
            continue;
        }
        if (r == 0) {
            r = hostport_parse(word, hp, sizeof(hp), &why);
        } else {
            why = "the host is too long";
        }
        if (r < 0) {
            return err_set(err, -EBADMSG, CERTD_E_FIELD_INVALID, "%s line %zu: %s", path, lineno,
                           why);
        }
        bool is_ours = strcmp(hp, hostport) == 0;
        if (is_ours && ret->n_pins > 0) {
            return err_set(err, -EBADMSG, CERTD_E_DUPLICATE,
                           "%s line %zu: %s is on an earlier line too: keep one line with all "
                           "its pins",
                           path, lineno, hp);
        }
        size_t n = 0;
        struct pin pins[CLIENT_PINS_MAX];
        while ((r = next_word(&lc, word, sizeof(word))) == 0) {
            struct certd_err pe = { 0 };
            if (n >= CLIENT_PINS_MAX) {
                return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES,
                               "%s line %zu: more than %u pins for one host", path, lineno,
                               CLIENT_PINS_MAX);
            }
            if (pin_parse(word, &pins[n], &pe) < 0) {
                return err_set(err, -EBADMSG, CERTD_E_FIELD_INVALID, "%s line %zu: %s", path,
                               lineno, pe.msg);
            }
            n++;
        }
        if (r == -E2BIG) {
            return err_set(err, -EBADMSG, CERTD_E_FIELD_INVALID,
                           "%s line %zu: a word is too long to be a pin", path, lineno);
        }
        if (n == 0) {
            return err_set(err, -EBADMSG, CERTD_E_FIELD_MISSING,
                           "%s line %zu: %s has no pin (\"HOST:PORT PIN [PIN...]\")", path, lineno,
                           hp);
        }
        if (is_ours) {
            memcpy(ret->pins, pins, n * sizeof(pins[0]));
            ret->n_pins = n;
            ret->lineno = lineno;
        }
    }
    return 0;
}

/* Take the pins of a known-hosts line as the ones c expects. */
static void known_host_take(struct client *c, const struct known_host *kh)
{
    memcpy(c->pins, kh->pins, kh->n_pins * sizeof(kh->pins[0]));
    c->n_pins = kh->n_pins;
    (void)snprintf(c->pin_source, sizeof(c->pin_source), "%s line %zu", c->known_hosts, kh->lineno);
}

/* Read the known-hosts file and take the pins of c's host. A missing file has no hosts. */
static int known_hosts_load(struct client *c, struct certd_err *err)
{
    _cleanup_(store_buf_done) struct store_buf data = { 0 };
    struct known_host kh;
    int r = known_hosts_read(c->known_hosts, &data, err);
    if (r == -ENOENT) {
        return 0;
    }
    if (r >= 0) {
        r = known_hosts_parse(c->known_hosts, span_make(data.p, data.len), c->url.hostport, &kh,
                              err);
    }
    if (r < 0) {
        return r;
    }
    if (kh.n_pins > 0) {
        known_host_take(c, &kh);
    }
    return 0;
}

static void unlock_file(int *fd)
{
    *fd = store_unlock_file(*fd);
}

/*
 * --tofu, after a handshake with a host the file had no line for: append "HOSTPORT PIN" as a
 * new file renamed over the old one (store_write_atomic: a crash leaves one or the other).
 * Every --tofu run holds "FILE.lock" (store_lock_file) from reading the file again to
 * writing it, so concurrent runs for different hosts each keep the other's line. The text read
 * under the lock is judged as known_hosts_load judges it; when another run recorded our host
 * meanwhile, its line decides: the server's pin must be one of it (else the usual refusal,
 * nothing written or sent), and nothing is appended. The file is written where it is named,
 * never through a symlink (known_hosts_read refuses one, rename(2) replaces one), with its
 * mode kept (one known_hosts_read accepted) or 0600 when new. Then c expects this pin alone.
 */
static int known_hosts_record(struct client *c, struct certd_err *err)
{
    _cleanup_(unlock_file) int lock = -EBADF;
    _cleanup_(store_buf_done) struct store_buf data = { 0 };
    _cleanup_free_ char *out = NULL;
    struct known_host kh = { 0 };
    struct certd_err e2 = { 0 };
    mode_t mode = STORE_MODE_SECRET;
    const char *path = c->known_hosts;
    int r = store_lock_file(path, ".lock", &lock, &e2);
    if (r < 0) {
        return err_set(err, r, e2.code, "cannot record the pin of %s: %s", c->url.hostport, e2.msg);
    }
    r = known_hosts_read(path, &data, err);
    if (r >= 0) {
        r = known_hosts_parse(path, span_make(data.p, data.len), c->url.hostport, &kh, err);
    }
    if (r < 0 && r != -ENOENT) {
        return r;
    }
    if (r >= 0) {
        struct stat st;
        /*
         * The old file's mode for the new one. store_read_trusted does not return it, so it is
         * looked up again, by lstat: anything but the regular file just read is refused, and
         * group/other write bits are never carried over (the file passed without them).
         */
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                           "--known-hosts %s was replaced while it was read: try again", path);
        }
        mode = st.st_mode & 0755;
    }
    if (kh.n_pins > 0) {
        known_host_take(c, &kh);
        c->trust = CLIENT_TRUST_PIN;
        return pin_expected(c, &c->seen) ? 0 : pin_refused(c, err);
    }
    char p[PIN_STR_MAX];
    pin_format(&c->seen, p, sizeof(p));
    size_t len = data.len;
    bool need_nl = len > 0 && data.p[len - 1] != '\n';
    size_t add = strlen(c->url.hostport) + 1 + strlen(p) + 2;
    size_t total;
    if (!size_add(len, add, &total) || total > CLIENT_KNOWN_HOSTS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED,
                       "%s is full (%u bytes): the pin of %s cannot be recorded", path,
                       CLIENT_KNOWN_HOSTS_MAX, c->url.hostport);
    }
    out = malloc(total + 1);
    if (!out) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (len > 0) {
        memcpy(out, data.p, len);
    }
    int n =
        snprintf(out + len, total + 1 - len, "%s%s %s\n", need_nl ? "\n" : "", c->url.hostport, p);
    if (n < 0) {
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot format the known-hosts line");
    }
    r = store_write_atomic(path, span_make(out, len + (size_t)n), mode, &e2);
    if (r < 0) {
        return err_set(err, r, e2.code, "cannot record the pin of %s in %s: %s", c->url.hostport,
                       path, e2.msg);
    }
    (void)fprintf(stderr, "certctl: recorded pin %s for %s in %s (trust on first use)\n", p,
                  c->url.hostport, path);
    c->pins[0] = c->seen;
    c->n_pins = 1;
    (void)snprintf(c->pin_source, sizeof(c->pin_source), "%s (recorded now)", path);
    c->trust = CLIENT_TRUST_PIN;
    return 0;
}

/* ---- options ---- */

int client_opt_take(const char *cmd, int c, const char *arg, struct client_opts *o)
{
    struct certd_err err = { 0 };
    switch (c) {
    case CLIENT_OPT_CACERT:
        o->cacert = arg;
        return 0;
    case CLIENT_OPT_INSECURE:
        o->is_insecure = true;
        return 0;
    case CLIENT_OPT_PIN:
        if (o->n_pins >= CLIENT_PINS_MAX) {
            return cli_usage_error(cmd, "at most %u --pin options", CLIENT_PINS_MAX);
        }
        if (pin_parse(arg, &o->pins[o->n_pins], &err) < 0) {
            return cli_usage_error(cmd, "--pin: %s", err.msg);
        }
        o->n_pins++;
        return 0;
    case CLIENT_OPT_KNOWN_HOSTS:
        o->known_hosts = arg;
        return 0;
    case CLIENT_OPT_TOFU:
        o->is_tofu = true;
        return 0;
    case CLIENT_OPT_CLIENT_CERT:
        o->client_cert = arg;
        return 0;
    case CLIENT_OPT_CLIENT_KEY:
        o->client_key = arg;
        return 0;
    case CLIENT_OPT_USER:
        o->user = arg;
        return 0;
    case CLIENT_OPT_PASSWORD_FILE:
        o->password_file = arg;
        return 0;
    default:
        return -ENOENT;
    }
}

void client_opts_usage(FILE *f, const char *user_opt)
{
    (void)fprintf(
        f,
        "Verifying the server (one way):\n"
        "  --cacert FILE          trust these CA certificates for the server's HTTPS\n"
        "                         certificate (default: the system's); its name must match\n"
        "                         URL's host\n"
        "  --insecure             do not verify the server's certificate (a warning says so)\n"
        "  --pin PIN              the server's key must have this SPKI pin (sha256//BASE64 or\n"
        "                         64 hex digits; repeat for more): chain, dates and host name\n"
        "                         are then NOT checked (CA-less trust)\n"
        "  --known-hosts FILE     the pins of HOST:PORT from FILE (lines \"HOST:PORT PIN...\");\n"
        "                         a host not in FILE is refused\n"
        "  --tofu                 with --known-hosts: record the pin of a host not in FILE\n"
        "                         (trust on first use)\n"
        "Authenticating:\n"
        "  --client-cert FILE     a client certificate (PEM) for mutual TLS; with it\n"
        "                         %s and --password-file are optional\n"
        "  --client-key FILE      its private key (default: in --client-cert's file)\n"
        "  %-7s NAME           the account for Basic authentication\n"
        "  --password-file FILE   its password: the first line of FILE; without this option\n"
        "                         the first line of standard input (never a terminal)\n",
        user_opt, user_opt);
}

static bool user_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CLIENT_USER_MAX || strchr(s, ':')) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

/* "Basic base64(user:password)" (RFC 7617 §2) into a wiped buffer. */
static int make_auth(const char *user, const struct secret *pw, struct wiped *ret)
{
    size_t ulen = strlen(user), n = ulen + 1 + pw->len;
    _cleanup_(wiped_done) struct wiped cred = { 0 };
    if (wiped_alloc(&cred, n + 1) < 0 || wiped_alloc(ret, 6 + BASE64_LEN(n) + 1) < 0) {
        return -ENOMEM;
    }
    memcpy(cred.p, user, ulen);
    cred.p[ulen] = ':';
    memcpy(cred.p + ulen + 1, pw->p, pw->len);
    memcpy(ret->p, "Basic ", 6);
    base64_encode((const uint8_t *)cred.p, n, ret->p + 6, BASE64_LEN(n) + 1);
    return 0;
}

static int opts_check(const char *cmd, const struct client_opts *o)
{
    bool is_pinned = o->n_pins > 0 || o->known_hosts;
    if (o->cacert && o->is_insecure) {
        return cli_usage_error(cmd, "--cacert and --insecure exclude each other");
    }
    if (is_pinned && (o->cacert || o->is_insecure)) {
        return cli_usage_error(cmd, "--pin and --known-hosts exclude --cacert and --insecure");
    }
    if (o->n_pins > 0 && o->known_hosts) {
        return cli_usage_error(cmd, "--pin and --known-hosts exclude each other");
    }
    if (o->is_tofu && !o->known_hosts) {
        return cli_usage_error(cmd, "--tofu needs --known-hosts FILE (where the pin goes)");
    }
    if (o->client_key && !o->client_cert) {
        return cli_usage_error(cmd, "--client-key needs --client-cert");
    }
    if (o->user && !user_ok(o->user)) {
        return cli_usage_error(cmd, "%s takes 1 to %u characters, no ':' and no control characters",
                               o->user_opt ? o->user_opt : "--user", CLIENT_USER_MAX);
    }
    return 0;
}

int client_new(const struct cli_ctx *ctx, const char *cmd, const char *url,
               const struct client_opts *o, const char *default_user, struct client **ret)
{
    struct certd_err err = { 0 };
    const char *why = NULL;
    int r = opts_check(cmd, o);
    if (r != 0) {
        return r;
    }
    _cleanup_(cleanup_client) struct client *c = calloc(1, sizeof(*c));
    if (!c) {
        (void)err_set(&err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        return cli_fail(cmd, &err);
    }
    c->ctx = ctx;
    c->cmd = cmd;
    if (url_parse(url, &c->url, &why) < 0) {
        return cli_usage_error(cmd, "URL %s: %s", url, why);
    }
    const char *user = o->user ? o->user : default_user;
    bool wants_password = !o->client_cert || o->user || o->password_file;
    if (wants_password && !user) {
        return cli_usage_error(cmd, "give %s NAME and its password, or --client-cert FILE",
                               o->user_opt ? o->user_opt : "--user");
    }
    if (wants_password && !o->password_file && isatty(STDIN_FILENO)) {
        return cli_usage_error(cmd, "give --password-file FILE, or the password on standard "
                                    "input (not a terminal)");
    }
    if (o->is_insecure) {
        c->trust = CLIENT_TRUST_INSECURE;
    } else if (o->n_pins > 0) {
        c->trust = CLIENT_TRUST_PIN;
        memcpy(c->pins, o->pins, o->n_pins * sizeof(o->pins[0]));
        c->n_pins = o->n_pins;
        (void)snprintf(c->pin_source, sizeof(c->pin_source), "--pin");
    } else if (o->known_hosts) {
        c->known_hosts = o->known_hosts;
        r = known_hosts_load(c, &err);
        if (r < 0) {
            return cli_fail(cmd, &err);
        }
        c->trust = c->n_pins > 0 ? CLIENT_TRUST_PIN
                   : o->is_tofu  ? CLIENT_TRUST_TOFU
                                 : CLIENT_TRUST_UNKNOWN;
    } else {
        c->trust = CLIENT_TRUST_CA;
    }
    if (wants_password) {
        _cleanup_(cleanup_secret) struct secret *pw = NULL;
        const char *pf = o->password_file ? o->password_file : "-";
        r = cli_read_secret_line(pf, CLIENT_PASSWORD_MAX, "the password", &pw, &err);
        if (r < 0) {
            return cli_fail(pf, &err);
        }
        if (pw->len == 0) {
            return cli_usage_error(cmd, "the password is empty");
        }
        if (make_auth(user, pw, &c->auth) < 0) {
            (void)err_set(&err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
            return cli_fail(cmd, &err);
        }
    }
    if (o->is_insecure) {
        (void)fprintf(stderr,
                      "certctl %s: warning: --insecure: the server's certificate is not "
                      "verified; anyone on the path can read %s\n",
                      cmd, wants_password ? "the password" : "what is sent");
    }
    r = tls_setup(c, o, &err);
    if (r < 0) {
        return cli_fail(cmd, &err);
    }
    *ret = TAKE_PTR(c);
    return 0;
}

struct client *client_free(struct client *c)
{
    if (c) {
        SSL_CTX_free(c->ssl_ctx);
        wiped_done(&c->auth);
        free(c);
    }
    return NULL;
}

/* ---- one request ---- */

static int ssl_write_all(const struct client *c, SSL *ssl, const void *p, size_t n,
                         struct certd_err *err)
{
    size_t done = 0;
    ERR_clear_error();
    if (n > 0 && SSL_write_ex(ssl, p, n, &done) != 1) {
        int se = SSL_get_error(ssl, 0);
        if (se == SSL_ERROR_WANT_WRITE || se == SSL_ERROR_WANT_READ) {
            (void)ossl_drain_errors("SSL_write_ex");
            return io_error(err, c, "sending to");
        }
        return err_set(err, -EPIPE, CERTD_E_UNAVAILABLE, "sending to %s:%s failed: %s", c->url.host,
                       c->url.port, ossl_reason("SSL_write_ex"));
    }
    return 0;
}

static int read_answer(const struct client *c, SSL *ssl, struct client_answer *a,
                       struct certd_err *err)
{
    http_parser p;
    char buf[16384];
    size_t total = 0;
    struct http_answer h = { .a = a };

    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &h;
    while (!h.is_complete) {
        size_t n = 0;
        bool eof = false;
        ERR_clear_error();
        if (SSL_read_ex(ssl, buf, sizeof(buf), &n) != 1) {
            int se = SSL_get_error(ssl, 0);
            if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
                (void)ossl_drain_errors("SSL_read_ex");
                return io_error(err, c, "waiting for");
            }
            if (se != SSL_ERROR_ZERO_RETURN) {
                /* With TLS 1.3 a refused client certificate shows only now, as an alert. */
                if (is_client_cert_refused(ERR_peek_error())) {
                    (void)ossl_drain_errors("SSL_read_ex");
                    return client_cert_refused(err, c);
                }
                /* A close without close_notify may cut an answer short: never taken whole. */
                (void)ossl_drain_errors("SSL_read_ex");
                return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE,
                               "%s:%s closed the connection before its answer was complete",
                               c->url.host, c->url.port);
            }
            eof = true;
        }
        if (!size_add(total, n, &total) || total > CLIENT_READ_MAX) {
            return err_set(err, -E2BIG, CERTD_E_SIGNER_FAILED,
                           "the answer of %s:%s is larger than %u bytes", c->url.host, c->url.port,
                           CLIENT_READ_MAX);
        }
        (void)http_parser_execute(&p, &answer_settings, buf, n);
        enum http_errno he = HTTP_PARSER_ERRNO(&p);
        if (h.is_oom) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (h.is_too_large) {
            return err_set(err, -E2BIG, CERTD_E_SIGNER_FAILED,
                           "the answer of %s:%s is larger than %u bytes", c->url.host, c->url.port,
                           CLIENT_BODY_MAX);
        }
        if (he != HPE_OK && he != HPE_PAUSED) {
            return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED, "%s:%s did not answer in HTTP: %s",
                           c->url.host, c->url.port, http_errno_description(he));
        }
        if (eof && !h.is_complete) {
            return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE,
                           "%s:%s closed the connection before its answer was complete",
                           c->url.host, c->url.port);
        }
    }
    return 0;
}

int client_request(struct client *c, const char *method, const char *path, const char *body,
                   size_t body_len, struct client_answer *ret, struct certd_err *err)
{
    _cleanup_close_ int fd = -EBADF;
    _cleanup_(cleanup_SSL) SSL *ssl = NULL;
    _cleanup_(client_answer_done) struct client_answer a = { 0 };
    c->detail[0] = '\0';
    int r = tcp_connect(c, &fd, err);
    if (r < 0) {
        return r;
    }
    r = tls_connect(c, fd, &ssl, err);
    if (r < 0) {
        return r;
    }
    if (c->trust == CLIENT_TRUST_TOFU) {
        /* Recorded before the first request byte; later connections of this run check it. */
        r = known_hosts_record(c, err);
        if (r < 0) {
            return r;
        }
    }
    /* The head holds the credentials: it lives in a buffer that is wiped. */
    const char *auth = c->auth.p;
    _cleanup_(wiped_done) struct wiped head = { 0 };
    if (wiped_alloc(&head, 1024 + strlen(c->url.prefix) + strlen(path) + c->auth.size) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    char *h = head.p;
    char length[48] = "";
    if (body) {
        (void)snprintf(length, sizeof(length), "Content-Length: %zu\r\n", body_len);
    }
    int n = snprintf(h, head.size,
                     "%s %s%s HTTP/1.1\r\nHost: %s\r\n%s%s%sAccept: application/json\r\n%s%s"
                     "Connection: close\r\n\r\n",
                     method, c->url.prefix, path, c->url.authority, auth ? "Authorization: " : "",
                     auth ? auth : "", auth ? "\r\n" : "",
                     body ? "Content-Type: application/json\r\n" : "", length);
    if (n < 0 || (size_t)n >= head.size) {
        return err_set(err, -E2BIG, CERTD_E_INTERNAL, "the request is too long");
    }
    r = ssl_write_all(c, ssl, h, (size_t)n, err);
    if (r >= 0 && body) {
        r = ssl_write_all(c, ssl, body, body_len, err);
    }
    if (r < 0) {
        return r;
    }
    r = read_answer(c, ssl, &a, err);
    if (r < 0) {
        return r;
    }
    (void)SSL_shutdown(ssl);
    *ret = a;
    a = (struct client_answer){ 0 };
    return 0;
}

/* ---- judging the answer ---- */

/*
 * What a 409 is about. Redfish has no code for it but the Base message of a limit; certd's
 * pin and certificate stores say "already in the store" for a duplicate. Anything else in
 * conflict with the server's state is "in use" (certd refusing to delete the pin a
 * connection authenticates with). text is the server's cleaned message.
 */
static enum certd_errc conflict_code(json_t *j, const char *text)
{
    json_t *info = json_object_get(json_object_get(j, "error"), "@Message.ExtendedInfo");
    for (size_t i = 0; json_is_array(info) && i < json_array_size(info) && i < 8; i++) {
        const char *id = json_string_value(json_object_get(json_array_get(info, i), "MessageId"));
        const char *name = id ? strrchr(id, '.') : NULL;
        if (name && strcmp(name, ".CreateLimitReachedForResource") == 0) {
            return CERTD_E_LIMIT_REACHED;
        }
    }
    return strstr(text, "already in the store") ? CERTD_E_DUPLICATE : CERTD_E_IN_USE;
}

/*
 * The body of an answer as JSON (owned), or NULL: no body, not JSON, no memory, or over the
 * bounds that json_text_bounds checks before jansson sees a byte (*ret_is_over set then).
 */
static json_t *answer_parse(const struct client_answer *a, bool *ret_is_over)
{
    json_error_t je;
    *ret_is_over = a->len > 0 && json_text_bounds(span_make(a->body, a->len), CLIENT_JSON_DEPTH_MAX,
                                                  CLIENT_JSON_VALUES_MAX) < 0;
    if (a->len == 0 || *ret_is_over) {
        return NULL;
    }
    return json_loadb(a->body, a->len, JSON_REJECT_DUPLICATES, &je);
}

int client_http_failure(const struct client *c, const char *what, const struct client_answer *a,
                        json_t *j, const struct client_meanings *m, struct certd_err *err)
{
    static const struct client_meanings none = { 0 };
    char text[CLIENT_TEXT_MAX + 8];
    enum certd_errc code;
    const char *meaning;

    if (!m) {
        m = &none;
    }
    server_message(j, text, sizeof(text));
    switch (a->status) {
    case 401:
        code = CERTD_E_POLICY_FORBIDS;
        meaning = m->unauthorized ? m->unauthorized
                                  : "the user name or password (or client certificate) was "
                                    "not accepted";
        break;
    case 403:
        code = CERTD_E_POLICY_FORBIDS;
        meaning = m->forbidden ? m->forbidden : "the user may not do this";
        break;
    case 404:
        code = CERTD_E_NOT_FOUND;
        meaning = m->not_found ? m->not_found : "no such resource at this URL";
        break;
    case 409:
        code = conflict_code(j, text);
        meaning = m->conflict ? m->conflict : "it clashes with what is there";
        break;
    case 429:
    case 503:
        code = CERTD_E_UNAVAILABLE;
        meaning = "the service is busy or not ready; try again later";
        break;
    default:
        code = a->status >= 500 ? CERTD_E_SIGNER_FAILED : CERTD_E_FIELD_INVALID;
        meaning = a->status >= 500 ? "the server failed" : "the server refused the request";
        break;
    }
    return err_set(err, a->status >= 500 ? -EPROTO : -EPERM, code, "%s %s: HTTP %u: %s%s%s%s%s%s",
                   what, c->url.host, a->status, meaning, text[0] ? ": " : "", text,
                   a->retry_after[0] ? " (retry after " : "", a->retry_after,
                   a->retry_after[0] ? " s)" : "");
}

int client_answer_ok(const struct client *c, const char *what, const struct client_answer *a,
                     const struct client_meanings *m, struct certd_err *err)
{
    bool is_over;
    if (a->status >= 200 && a->status <= 299) {
        return 0;
    }
    /* A body that is not JSON, or over the bounds, only costs the failure the server's words. */
    _cleanup_(cleanup_json_t) json_t *j = answer_parse(a, &is_over);
    return client_http_failure(c, what, a, j, m, err);
}

int client_answer_json(const struct client *c, const char *what, const struct client_answer *a,
                       const struct client_meanings *m, json_t **ret, struct certd_err *err)
{
    bool is_over;
    _cleanup_(cleanup_json_t) json_t *j = answer_parse(a, &is_over);
    if (a->status < 200 || a->status > 299) {
        return client_http_failure(c, what, a, j, m, err);
    }
    if (is_over) {
        return err_set(err, -E2BIG, CERTD_E_SIGNER_FAILED,
                       "%s %s: the answer (HTTP %u) nests deeper than %u levels or holds more "
                       "than %u JSON values",
                       what, c->url.host, a->status, CLIENT_JSON_DEPTH_MAX, CLIENT_JSON_VALUES_MAX);
    }
    if (!json_is_object(j)) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "%s %s: the answer (HTTP %u) is not a JSON object", what, c->url.host,
                       a->status);
    }
    *ret = TAKE_PTR(j);
    return 0;
}

int client_fail(const struct client *c, const char *what, const struct certd_err *err)
{
    if (c && c->detail[0] && err_is_set(err) && err->code == CERTD_E_POLICY_FORBIDS) {
        (void)fprintf(stderr, "certctl: https://%s: %s (%s)\n", c->url.authority, c->detail,
                      err_code_name(err->code));
        return exit_code_for(err);
    }
    return cli_fail(what, err);
}
