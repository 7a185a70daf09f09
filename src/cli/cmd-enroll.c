/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl enroll URL: a management console's whole flow in one command (issue #4). Make a key
 * and a CSR, send the CSR to the BMC's SignCSR over HTTPS with Basic authentication, check
 * the answer, and write the key (0600), the client certificate and the CA certificate as one
 * set. Two forms: "ibm" (POST /ibm/v1/Host/Actions/SignCSR {"CsrString"} -> {"Certificate"},
 * then GET /ibm/v1/Host/Certificate/root) and "vmi" (seed 000: POST /ibm/v1/VMInterface/SignCSR
 * {"data": [CSR]} -> {"data": [client certificate + CA certificate]}).
 *
 * The HTTPS client is OpenSSL over one blocking socket per request (Connection: close) with
 * send and receive timeouts: TLS 1.2 or newer, the server's certificate verified against
 * --cacert (or the system's CAs) and checked for the URL's host name or IP address; --insecure
 * skips that, loudly. The request is one fixed message written here; the response is parsed by
 * http-parser and its body (at most ENROLL_BODY_MAX bytes) by jansson. Everything the server
 * sends is hostile: its texts are cleaned before they reach the terminal, its certificates go
 * through libcertd's bundle parser, and nothing is written unless the certificate holds our
 * public key and chains to the CA certificate that came with it.
 *
 * Secrets: the password and the Authorization header live in wiped buffers only; the private
 * key exists as an EVP_PKEY and as PEM in a struct secret until it is written. Neither is ever
 * printed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "certctl.h"
#include "csr/csr.h"
#include "keys/keys.h"
#include "store/store.h"
#include "util/base64.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/secret.h"
#include "x509/bundle.h"

/*
 * A SignCSR answer is a certificate and a CA certificate, a few KiB; 1 MiB bounds what a
 * wrong or hostile server can make us hold, headers and chunk framing aside.
 */
#define ENROLL_BODY_MAX (1024u * 1024u)
/* Bytes read from the connection in all: the body, its chunk framing and the headers. */
#define ENROLL_READ_MAX (2u * 1024u * 1024u)
/* Send and receive timeout of the socket, seconds: a BMC's CA may sit behind a slow host. */
#define ENROLL_IO_TIMEOUT 30
/* A URL on the command line, a user name, a password (the users module caps its own at 128). */
#define ENROLL_URL_MAX      2048u
#define ENROLL_USER_MAX     256u
#define ENROLL_PASSWORD_MAX 1024u
/* Characters of the server's error text shown. */
#define ENROLL_SERVER_TEXT_MAX 400u

DEFINE_CLEANUP(SSL_CTX, SSL_CTX_free)
DEFINE_CLEANUP(SSL, SSL_free)
DEFINE_CLEANUP(json_t, json_decref)

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

enum enroll_form { ENROLL_FORM_IBM, ENROLL_FORM_VMI };

#define IBM_SIGN_PATH "/ibm/v1/Host/Actions/SignCSR"
#define IBM_ROOT_PATH "/ibm/v1/Host/Certificate/root"
#define VMI_SIGN_PATH "/ibm/v1/VMInterface/SignCSR"

struct enroll_url {
    char host[CERTD_SAN_LEN_MAX + 1]; /* a DNS name or an IP address, without brackets */
    char port[6];
    char authority[CERTD_SAN_LEN_MAX + 16]; /* the Host header: as the URL spells it */
    char prefix[ENROLL_URL_MAX];            /* the URL's path, without a trailing '/' */
    bool is_ip;
};

struct enroll {
    const struct cli_ctx *ctx;
    struct enroll_url url;
    SSL_CTX *ssl_ctx;
    bool is_insecure;
    const char *auth; /* "Basic base64(user:password)", in a wiped buffer */
    size_t auth_len;
};

/* ---- the URL ---- */

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

/*
 * https://HOST[:PORT][/PATH]: HOST a DNS name, an IPv4 address or [IPv6]; no user
 * information (the password would end up in the process list), query or fragment; PATH
 * visible ASCII only, since it goes into the request line as it is.
 */
static int url_parse(const char *s, struct enroll_url *u, const char **why)
{
    size_t n = strlen(s);
    if (n > ENROLL_URL_MAX) {
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
    if (*p == '[') {
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
    if (*(host - 1) == '[' && inet_pton(AF_INET6, u->host, addr) != 1) {
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
    return 0;
}

/* ---- the server's words, made safe for a terminal ---- */

/* Append printable ASCII of s to buf (control and non-ASCII bytes as '?'), within size. */
static void text_append(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);
    for (; *s && n + 1 < size && n < ENROLL_SERVER_TEXT_MAX; s++) {
        unsigned char c = (unsigned char)*s;
        buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    buf[n] = '\0';
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
    unsigned status;
    char *body; /* NUL-terminated */
    size_t len, cap;
    bool is_complete;
    bool is_too_large;
    /* Retry-After, for a 503's message */
    char field[16];
    size_t field_len;
    bool is_field_long;
    bool was_value;
    bool is_retry_after;
    char retry_after[16];
};

static void answer_done(struct http_answer *a)
{
    free(a->body);
    a->body = NULL;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_answer *a = p->data;
    if (a->was_value) {
        a->field_len = 0;
        a->is_field_long = false;
        a->was_value = false;
    }
    if (a->field_len + len >= sizeof(a->field)) {
        a->is_field_long = true;
        return 0;
    }
    memcpy(a->field + a->field_len, at, len);
    a->field_len += len;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_answer *a = p->data;
    if (!a->was_value) {
        a->was_value = true;
        a->field[a->field_len] = '\0';
        a->is_retry_after = !a->is_field_long && strcasecmp(a->field, "Retry-After") == 0;
        if (a->is_retry_after) {
            a->retry_after[0] = '\0';
        }
    }
    if (a->is_retry_after) {
        size_t n = strlen(a->retry_after);
        for (size_t i = 0; i < len && n + 1 < sizeof(a->retry_after); i++) {
            if (at[i] >= '0' && at[i] <= '9') {
                a->retry_after[n++] = at[i];
            }
        }
        a->retry_after[n] = '\0';
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_answer *a = p->data;
    a->status = p->status_code;
    a->was_value = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_answer *a = p->data;
    size_t need;
    if (!size_add(a->len, len, &need) || need > ENROLL_BODY_MAX) {
        a->is_too_large = true;
        return 1;
    }
    if (need + 1 > a->cap) {
        /* Grow as the data comes, never from a length the server announced. */
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < need + 1) {
            cap *= 2;
        }
        if (cap > ENROLL_BODY_MAX + 1) {
            cap = ENROLL_BODY_MAX + 1;
        }
        char *b = realloc(a->body, cap);
        if (!b) {
            return 1;
        }
        a->body = b;
        a->cap = cap;
    }
    memcpy(a->body + a->len, at, len);
    a->len = need;
    a->body[a->len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct http_answer *a = p->data;
    if (p->status_code < 200) {
        /* An interim answer (100 Continue): the real one follows. */
        a->len = 0;
        a->retry_after[0] = '\0';
        return 0;
    }
    a->is_complete = true;
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

static int io_error(struct certd_err *err, const struct enroll *e, const char *what)
{
    return err_set(err, -ETIMEDOUT, CERTD_E_UNAVAILABLE, "%s %s:%s: no answer within %d s", what,
                   e->url.host, e->url.port, ENROLL_IO_TIMEOUT);
}

/* The reason of the first OpenSSL error queued, for a person ("wrong version number"). */
static const char *ossl_reason(const char *what)
{
    unsigned long code = ossl_drain_errors(what);
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    return r ? r : "the connection was closed";
}

static int tcp_connect(const struct enroll *e, int *ret, struct certd_err *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int r = getaddrinfo(e->url.host, e->url.port, &hints, &res);
    if (r != 0) {
        return err_set(err, -EHOSTUNREACH, CERTD_E_UNAVAILABLE, "cannot resolve %s: %s",
                       e->url.host, gai_strerror(r));
    }
    int last = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        /* Linux applies SO_SNDTIMEO to connect(2) too: one bound for every step. */
        struct timeval tv = { .tv_sec = ENROLL_IO_TIMEOUT };
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
        return io_error(err, e, "cannot connect to");
    }
    return err_set(err, -last, CERTD_E_UNAVAILABLE, "cannot connect to %s:%s: %s", e->url.host,
                   e->url.port, strerror(last));
}

static int tls_connect(const struct enroll *e, int fd, SSL **ret, struct certd_err *err)
{
    _cleanup_(cleanup_SSL) SSL *ssl = SSL_new(e->ssl_ctx);
    if (!ssl) {
        (void)ossl_drain_errors("SSL_new");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = e->url.is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, e->url.host)
                          : X509_VERIFY_PARAM_set1_host(param, e->url.host, 0);
    /* SNI carries host names only (RFC 6066 §3). */
    if (ok == 1 && !e->url.is_ip) {
        ok = (int)SSL_set_tlsext_host_name(ssl, e->url.host);
    }
    if (ok != 1 || SSL_set_fd(ssl, fd) != 1) {
        (void)ossl_drain_errors("SSL setup");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r != 1) {
        int saved = errno;
        int se = SSL_get_error(ssl, r);
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK && !e->is_insecure) {
            (void)ossl_drain_errors("SSL_connect");
            return err_set(err, -EKEYREJECTED, CERTD_E_POLICY_FORBIDS,
                           "TLS with %s:%s: the server's certificate did not verify: %s",
                           e->url.host, e->url.port, X509_verify_cert_error_string(v));
        }
        if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
            (void)ossl_drain_errors("SSL_connect");
            return io_error(err, e, "TLS with");
        }
        if (se == SSL_ERROR_SYSCALL && saved != 0) {
            (void)ossl_drain_errors("SSL_connect");
            return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE, "TLS with %s:%s failed: %s",
                           e->url.host, e->url.port, strerror(saved));
        }
        return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE, "TLS with %s:%s failed: %s", e->url.host,
                       e->url.port, ossl_reason("SSL_connect"));
    }
    *ret = TAKE_PTR(ssl);
    return 0;
}

/* Load --cacert through libcertd's parser (certificates only) into the context's store. */
static int load_cacert(const struct cli_ctx *ctx, SSL_CTX *c, const char *path,
                       struct certd_err *err)
{
    _cleanup_free_ uint8_t *data = NULL;
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    struct certd_err e2 = { 0 };
    size_t len = 0;
    int r = cli_read_input(path, CERTD_INPUT_MAX_DEFAULT, &data, &len, err);
    if (r < 0) {
        return r;
    }
    r = bundle_parse(ctx->libctx, ctx->propq, span_make(data, len), len, &b, &e2);
    if (r < 0) {
        return err_set(err, r, e2.code, "--cacert %s: %s", path, e2.msg);
    }
    if (b->key) {
        return err_set(err, -EINVAL, CERTD_E_PEM_UNEXPECTED_LABEL,
                       "--cacert %s holds a private key: give the CA certificate only", path);
    }
    X509_STORE *store = SSL_CTX_get_cert_store(c);
    for (size_t i = 0; i < bundle_n_certs(b); i++) {
        if (X509_STORE_add_cert(store, bundle_cert(b, i)) != 1) {
            (void)ossl_drain_errors("X509_STORE_add_cert");
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    return 0;
}

/* The client context: TLS 1.2 or newer; the peer verified unless insecure. */
static int tls_setup(const struct cli_ctx *ctx, const char *cacert, bool insecure, SSL_CTX **ret,
                     struct certd_err *err)
{
    _cleanup_(cleanup_SSL_CTX) SSL_CTX *c =
        SSL_CTX_new_ex(ctx->libctx, ctx->propq, TLS_client_method());
    if (!c || SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
        (void)ossl_drain_errors("SSL_CTX_new_ex");
        return err_set(err, -ENOMEM, CERTD_E_INTERNAL, "cannot set up TLS");
    }
    if (insecure) {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c), X509_V_FLAG_X509_STRICT);
        int r = 0;
        if (cacert) {
            r = load_cacert(ctx, c, cacert, err);
        } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
            (void)ossl_drain_errors("SSL_CTX_set_default_verify_paths");
            r = err_set(err, -EIO, CERTD_E_STORAGE, "cannot load the system's CA certificates");
        }
        if (r < 0) {
            return r;
        }
    }
    *ret = TAKE_PTR(c);
    return 0;
}

/* ---- one request ---- */

static int ssl_write_all(const struct enroll *e, SSL *ssl, const void *p, size_t n,
                         struct certd_err *err)
{
    size_t done = 0;
    ERR_clear_error();
    if (n > 0 && SSL_write_ex(ssl, p, n, &done) != 1) {
        int se = SSL_get_error(ssl, 0);
        if (se == SSL_ERROR_WANT_WRITE || se == SSL_ERROR_WANT_READ) {
            (void)ossl_drain_errors("SSL_write_ex");
            return io_error(err, e, "sending to");
        }
        return err_set(err, -EPIPE, CERTD_E_UNAVAILABLE, "sending to %s:%s failed: %s", e->url.host,
                       e->url.port, ossl_reason("SSL_write_ex"));
    }
    return 0;
}

static int read_answer(const struct enroll *e, SSL *ssl, struct http_answer *a,
                       struct certd_err *err)
{
    http_parser p;
    char buf[16384];
    size_t total = 0;

    http_parser_init(&p, HTTP_RESPONSE);
    p.data = a;
    while (!a->is_complete) {
        size_t n = 0;
        bool eof = false;
        ERR_clear_error();
        if (SSL_read_ex(ssl, buf, sizeof(buf), &n) != 1) {
            int se = SSL_get_error(ssl, 0);
            if (se == SSL_ERROR_WANT_READ || se == SSL_ERROR_WANT_WRITE) {
                (void)ossl_drain_errors("SSL_read_ex");
                return io_error(err, e, "waiting for");
            }
            if (se != SSL_ERROR_ZERO_RETURN) {
                /* A close without close_notify may cut an answer short: never taken whole. */
                (void)ossl_drain_errors("SSL_read_ex");
                return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE,
                               "%s:%s closed the connection before its answer was complete",
                               e->url.host, e->url.port);
            }
            eof = true;
        }
        if (!size_add(total, n, &total) || total > ENROLL_READ_MAX) {
            return err_set(err, -E2BIG, CERTD_E_SIGNER_FAILED,
                           "the answer of %s:%s is larger than %u bytes", e->url.host, e->url.port,
                           ENROLL_READ_MAX);
        }
        (void)http_parser_execute(&p, &answer_settings, buf, n);
        enum http_errno he = HTTP_PARSER_ERRNO(&p);
        if (a->is_too_large) {
            return err_set(err, -E2BIG, CERTD_E_SIGNER_FAILED,
                           "the answer of %s:%s is larger than %u bytes", e->url.host, e->url.port,
                           ENROLL_BODY_MAX);
        }
        if (he != HPE_OK && he != HPE_PAUSED) {
            return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED, "%s:%s did not answer in HTTP: %s",
                           e->url.host, e->url.port, http_errno_description(he));
        }
        if (eof && !a->is_complete) {
            return err_set(err, -EPROTO, CERTD_E_UNAVAILABLE,
                           "%s:%s closed the connection before its answer was complete",
                           e->url.host, e->url.port);
        }
    }
    return 0;
}

/*
 * Send method path (with body, JSON) and read the answer into *a (caller frees with
 * answer_done). A connection per request: two requests at most per run, and no state to keep.
 */
static int http_exchange(const struct enroll *e, const char *method, const char *path,
                         const char *body, size_t body_len, struct http_answer *a,
                         struct certd_err *err)
{
    _cleanup_close_ int fd = -EBADF;
    _cleanup_(cleanup_SSL) SSL *ssl = NULL;
    int r = tcp_connect(e, &fd, err);
    if (r < 0) {
        return r;
    }
    r = tls_connect(e, fd, &ssl, err);
    if (r < 0) {
        return r;
    }
    /* The head holds the credentials: it lives in a buffer that is wiped. */
    _cleanup_(wiped_done) struct wiped head = { 0 };
    if (wiped_alloc(&head, 1024 + strlen(e->url.prefix) + strlen(path) + e->auth_len) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    char *h = head.p;
    int n = body ? snprintf(h, head.size,
                            "%s %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"
                            "Accept: application/json\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            method, e->url.prefix, path, e->url.authority, e->auth, body_len)
                 : snprintf(h, head.size,
                            "%s %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n"
                            "Accept: application/json\r\nConnection: close\r\n\r\n",
                            method, e->url.prefix, path, e->url.authority, e->auth);
    if (n < 0 || (size_t)n >= head.size) {
        return err_set(err, -E2BIG, CERTD_E_INTERNAL, "the request is too long");
    }
    r = ssl_write_all(e, ssl, h, (size_t)n, err);
    if (r >= 0 && body) {
        r = ssl_write_all(e, ssl, body, body_len, err);
    }
    if (r < 0) {
        return r;
    }
    r = read_answer(e, ssl, a, err);
    if (r >= 0) {
        (void)SSL_shutdown(ssl);
    }
    return r;
}

/* ---- judging the answer ---- */

/* The error of a non-2xx answer: the status, what it means for us, and the server's words. */
static int http_failure(const struct enroll *e, const char *what, const struct http_answer *a,
                        json_t *j, struct certd_err *err)
{
    char text[ENROLL_SERVER_TEXT_MAX + 8];
    enum certd_errc code;
    const char *meaning;

    server_message(j, text, sizeof(text));
    switch (a->status) {
    case 401:
        code = CERTD_E_POLICY_FORBIDS;
        meaning = "the user name or password was not accepted";
        break;
    case 403:
        code = CERTD_E_POLICY_FORBIDS;
        meaning = "the user may not sign certificates (an Administrator may)";
        break;
    case 404:
        code = CERTD_E_NOT_FOUND;
        meaning = "no such service at this URL (try the other --form)";
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
                   what, e->url.host, a->status, meaning, text[0] ? ": " : "", text,
                   a->retry_after[0] ? " (retry after " : "", a->retry_after,
                   a->retry_after[0] ? " s)" : "");
}

/* The JSON object of a 2xx answer into *ret; any other answer is an error. */
static int answer_json(const struct enroll *e, const char *what, const struct http_answer *a,
                       json_t **ret, struct certd_err *err)
{
    json_error_t je;
    _cleanup_(cleanup_json_t) json_t *j =
        a->len ? json_loadb(a->body, a->len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (a->status < 200 || a->status > 299) {
        return http_failure(e, what, a, j, err);
    }
    if (!json_is_object(j)) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "%s %s: the answer (HTTP %u) is not a JSON object", what, e->url.host,
                       a->status);
    }
    *ret = TAKE_PTR(j);
    return 0;
}

/* Certificates in PEM from the server: libcertd's bundle rules, and never a key. */
static int parse_certs(const struct enroll *e, const char *what, const char *pem,
                       struct bundle **ret, struct certd_err *err)
{
    struct certd_err e2 = { 0 };
    int r =
        bundle_parse(e->ctx->libctx, e->ctx->propq, span_from_str(pem), ENROLL_BODY_MAX, ret, &e2);
    if (r < 0) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED, "%s from %s: %s", what, e->url.host,
                       e2.msg);
    }
    if ((*ret)->key || (*ret)->is_der) {
        *ret = bundle_free(*ret);
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "%s from %s is not certificates in PEM", what, e->url.host);
    }
    return 0;
}

/* A string member of an object, or an error naming what is missing. */
static int member_string(const struct enroll *e, json_t *o, const char *name, const char *what,
                         const char **ret, struct certd_err *err)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (!s) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "%s from %s: the answer has no string \"%s\"", what, e->url.host, name);
    }
    *ret = s;
    return 0;
}

/* The issued certificate (leaf first, then any chain the server sent) and its CA. */
struct enroll_result {
    STACK_OF(X509) *client; /* owned */
    STACK_OF(X509) *ca;     /* owned */
};

static void result_done(struct enroll_result *res)
{
    x509_stack_free(res->client);
    x509_stack_free(res->ca);
}

static STACK_OF(X509) *take_certs(struct bundle *b, int from, int to)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    for (int i = from; sk && i < to; i++) {
        X509 *c = sk_X509_value(b->certs, i);
        if (!X509_up_ref(c)) {
            x509_stack_free(sk);
            return NULL;
        }
        if (!sk_X509_push(sk, c)) {
            X509_free(c);
            x509_stack_free(sk);
            return NULL;
        }
    }
    return sk;
}

static int sign_ibm(const struct enroll *e, const char *csr, struct enroll_result *res,
                    struct certd_err *err)
{
    _cleanup_(answer_done) struct http_answer a = { 0 }, ra = { 0 };
    _cleanup_(cleanup_json_t) json_t *req = json_pack("{s:s}", "CsrString", csr);
    _cleanup_(cleanup_json_t) json_t *j = NULL, *rj = NULL;
    _cleanup_free_ char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    _cleanup_(cleanup_bundle) struct bundle *cb = NULL, *rb = NULL;
    const char *pem = NULL;
    if (!body) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = http_exchange(e, "POST", IBM_SIGN_PATH, body, strlen(body), &a, err);
    if (r >= 0) {
        r = answer_json(e, "SignCSR at", &a, &j, err);
    }
    if (r >= 0) {
        r = member_string(e, j, "Certificate", "SignCSR", &pem, err);
    }
    if (r >= 0) {
        r = parse_certs(e, "the certificate", pem, &cb, err);
    }
    if (r >= 0) {
        r = http_exchange(e, "GET", IBM_ROOT_PATH, NULL, 0, &ra, err);
    }
    if (r >= 0) {
        r = answer_json(e, "the CA certificate at", &ra, &rj, err);
    }
    if (r >= 0) {
        r = member_string(e, rj, "Certificate", "the CA certificate", &pem, err);
    }
    if (r >= 0) {
        r = parse_certs(e, "the CA certificate", pem, &rb, err);
    }
    if (r < 0) {
        return r;
    }
    res->client = take_certs(cb, 0, sk_X509_num(cb->certs));
    res->ca = take_certs(rb, 0, sk_X509_num(rb->certs));
    if (!res->client || !res->ca) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

static int sign_vmi(const struct enroll *e, const char *csr, struct enroll_result *res,
                    struct certd_err *err)
{
    _cleanup_(answer_done) struct http_answer a = { 0 };
    _cleanup_(cleanup_json_t) json_t *req = json_pack("{s:[s]}", "data", csr);
    _cleanup_(cleanup_json_t) json_t *j = NULL;
    _cleanup_free_ char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    if (!body) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = http_exchange(e, "POST", VMI_SIGN_PATH, body, strlen(body), &a, err);
    if (r >= 0) {
        r = answer_json(e, "SignCSR at", &a, &j, err);
    }
    if (r < 0) {
        return r;
    }
    json_t *data = json_object_get(j, "data");
    const char *pem = json_string_value(json_array_get(data, 0));
    if (!json_is_array(data) || json_array_size(data) != 1 || !pem) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "SignCSR at %s: the answer's \"data\" is not one string", e->url.host);
    }
    r = parse_certs(e, "the certificates", pem, &b, err);
    if (r < 0) {
        return r;
    }
    int n = sk_X509_num(b->certs);
    if (n < 2) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "SignCSR at %s: the answer holds no CA certificate after the client's",
                       e->url.host);
    }
    res->client = take_certs(b, 0, 1);
    res->ca = take_certs(b, 1, n);
    if (!res->client || !res->ca) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

/*
 * What came back must be ours: the certificate holds our public key, and it verifies up to
 * the CA certificate that came with it (for client authentication, now). Partial chains: a
 * CA that is itself an intermediate is still the anchor the console is told to trust.
 */
static int check_result(const struct enroll *e, EVP_PKEY *key, const struct enroll_result *res,
                        struct certd_err *err)
{
    X509 *leaf = sk_X509_value(res->client, 0);
    if (!key_public_eq(X509_get0_pubkey(leaf), key)) {
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "the certificate from %s is not for the key made for this request",
                       e->url.host);
    }
    _cleanup_(cleanup_X509_STORE) X509_STORE *store = X509_STORE_new();
    _cleanup_(cleanup_X509_STORE_CTX) X509_STORE_CTX *vc =
        X509_STORE_CTX_new_ex(e->ctx->libctx, e->ctx->propq);
    _cleanup_(cleanup_x509_stack) x509_stack *untrusted = sk_X509_new_null();
    if (!store || !vc || !untrusted) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < sk_X509_num(res->ca); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(res->ca, i)) != 1) {
            (void)ossl_drain_errors("X509_STORE_add_cert");
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    for (int i = 1; i < sk_X509_num(res->client); i++) {
        X509 *c = sk_X509_value(res->client, i);
        if (!X509_up_ref(c)) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (!sk_X509_push(untrusted, c)) {
            X509_free(c);
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    if (X509_STORE_CTX_init(vc, store, leaf, untrusted) != 1) {
        (void)ossl_drain_errors("X509_STORE_CTX_init");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(vc);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
    X509_VERIFY_PARAM_set_depth(param, (int)CERTD_CHAIN_DEPTH_MAX);
    X509_VERIFY_PARAM_set_time(param, time(NULL));
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
    ERR_clear_error();
    if (X509_verify_cert(vc) != 1) {
        int v = X509_STORE_CTX_get_error(vc);
        (void)ossl_drain_errors("X509_verify_cert");
        return err_set(err, -EKEYREJECTED, CERTD_E_SIGNER_FAILED,
                       "the certificate from %s does not verify against the CA certificate it "
                       "sent: %s",
                       e->url.host, X509_verify_cert_error_string(v));
    }
    return 0;
}

/* ---- output ---- */

static int write_result(const struct enroll *e, const char *dir, EVP_PKEY *key,
                        const struct enroll_result *res, struct certd_err *err)
{
    _cleanup_(cleanup_secret) struct secret *kp = NULL;
    _cleanup_free_ char *cert_pem = NULL, *ca_pem = NULL;
    _cleanup_free_ char *kpath = NULL, *cpath = NULL, *apath = NULL;
    size_t cert_len = 0, ca_len = 0;
    int r = store_mkdir_p(dir, STORE_MODE_DIR);
    if (r == -EPERM) {
        return err_set(err, r, CERTD_E_STORAGE,
                       "--out-dir %s is not yours or others may write to it: the key needs a "
                       "private directory",
                       dir);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot make --out-dir %s: %s", dir, strerror(-r));
    }
    r = key_private_to_pem(e->ctx->libctx, e->ctx->propq, key, &kp);
    if (r >= 0) {
        r = certs_to_pem(res->client, &cert_pem, &cert_len);
    }
    if (r >= 0) {
        r = certs_to_pem(res->ca, &ca_pem, &ca_len);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the results");
    }
    if (asprintf(&kpath, "%s/client.key", dir) < 0 || asprintf(&cpath, "%s/client.pem", dir) < 0 ||
        asprintf(&apath, "%s/ca.pem", dir) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    const struct store_file files[] = {
        { kpath, span_make(kp->p, kp->len), STORE_MODE_SECRET },
        { cpath, span_make(cert_pem, cert_len), STORE_MODE_PUBLIC },
        { apath, span_make(ca_pem, ca_len), STORE_MODE_PUBLIC },
    };
    return store_write_set(files, ELEMENTSOF(files), err);
}

/* ---- the command ---- */

static void enroll_usage(FILE *f)
{
    (void)fprintf(
        f,
        "Usage: certctl enroll URL [--user NAME] [--password-file FILE] [--cacert FILE |\n"
        "                      --insecure] [--key-alg SPEC] [--cn NAME] [--san NAME]...\n"
        "                      [--out-dir DIR] [--form ibm|vmi]\n"
        "\n"
        "Get a client certificate from a BMC's CA, as a management console does: make a key\n"
        "and a CSR, send it to SignCSR at URL (https://HOST[:PORT]) and write DIR/client.key\n"
        "(mode 0600), DIR/client.pem and DIR/ca.pem once the certificate is checked to be for\n"
        "the new key and to verify against the CA certificate that came with it.\n"
        "\n"
        "  --user NAME            the account (default admin); it needs the Administrator role\n"
        "  --password-file FILE   its password: the first line of FILE; without this option\n"
        "                         the first line of standard input (never a terminal)\n"
        "  --cacert FILE          trust these CA certificates for the BMC's HTTPS certificate\n"
        "                         (default: the system's); its name must match URL's host\n"
        "  --insecure             do not verify the BMC's HTTPS certificate (a warning says so)\n"
        "  --key-alg SPEC         the new key: ec:P-256 (default), ec:P-384, ec:P-521,\n"
        "                         rsa:2048, rsa:3072, rsa:4096, ed25519\n"
        "  --cn NAME              the CSR's CommonName (default: this host's name)\n"
        "  --san NAME             a subjectAltName: DNS name or IP address (repeat for more)\n"
        "  --out-dir DIR          where the files go (default: the working directory; made\n"
        "                         0700 when missing; must not be writable by others)\n"
        "  --form ibm|vmi         ibm (default): POST " IBM_SIGN_PATH "\n"
        "                         and GET " IBM_ROOT_PATH ";\n"
        "                         vmi: POST " VMI_SIGN_PATH " (seed 000)\n"
        "\n"
        "Exit codes: 0 success, 1 refused (credentials, privileges, TLS verification, the\n"
        "            CSR, a certificate not for our key), 2 usage, 3 network, server or file\n"
        "            error, 4 no SignCSR at URL.\n");
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

static bool user_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ENROLL_USER_MAX || strchr(s, ':')) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

struct enroll_opts {
    const char *url, *user, *pw_file, *cacert, *key_alg, *cn, *out_dir;
    const char **sans;
    size_t n_sans;
    bool is_insecure;
    enum enroll_form form;
};

static int enroll_run(const struct cli_ctx *ctx, const struct enroll_opts *o)
{
    struct certd_err err = { 0 };
    struct enroll e = { .ctx = ctx };
    _cleanup_(cleanup_secret) struct secret *pw = NULL;
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_(cleanup_X509_REQ) X509_REQ *req = NULL;
    _cleanup_free_ char *csr = NULL;
    _cleanup_(result_done) struct enroll_result res = { 0 };
    char host[HOST_NAME_MAX + 1];
    const char *why = NULL;
    size_t csr_len = 0;
    int r;

    if (url_parse(o->url, &e.url, &why) < 0) {
        return cli_usage_error("enroll", "URL %s: %s", o->url, why);
    }
    struct key_spec spec;
    if (key_spec_parse(o->key_alg ? o->key_alg : "ec:P-256", &spec, &err) < 0) {
        return cli_usage_error("enroll", "--key-alg: %s", err.msg);
    }
    const char *cn = o->cn;
    if (!cn) {
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0]) {
            return cli_usage_error("enroll", "this host has no name: give --cn NAME");
        }
        host[sizeof(host) - 1] = '\0';
        cn = host;
    }
    r = cli_read_secret_line(o->pw_file ? o->pw_file : "-", ENROLL_PASSWORD_MAX, "the password",
                             &pw, &err);
    if (r < 0) {
        return cli_fail(o->pw_file ? o->pw_file : "-", &err);
    }
    if (pw->len == 0) {
        return cli_usage_error("enroll", "the password is empty");
    }
    _cleanup_(wiped_done) struct wiped auth = { 0 };
    if (make_auth(o->user, pw, &auth) < 0) {
        (void)err_set(&err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        return cli_fail("enroll", &err);
    }
    e.auth = auth.p;
    e.auth_len = strlen(auth.p);
    if (o->is_insecure) {
        (void)fprintf(stderr, "certctl enroll: warning: --insecure: the server's certificate is "
                              "not verified; anyone on the path can read the password\n");
    }
    _cleanup_(cleanup_SSL_CTX) SSL_CTX *ssl_ctx = NULL;
    if (tls_setup(ctx, o->cacert, o->is_insecure, &ssl_ctx, &err) < 0) {
        return cli_fail("enroll", &err);
    }
    e.ssl_ctx = ssl_ctx;
    e.is_insecure = o->is_insecure;

    /* The key and CSR first: a server that is down costs a key, not a half-written state. */
    r = key_generate(ctx->libctx, ctx->propq, &spec, &key, &err);
    if (r < 0) {
        return cli_fail("key", &err);
    }
    const struct csr_request creq = {
        .common_name = cn,
        .alt_names = o->sans,
        .n_alt_names = o->n_sans,
    };
    r = csr_build(ctx->libctx, ctx->propq, &creq, key, &req, &err);
    if (r < 0) {
        return cli_fail("csr", &err);
    }
    r = csr_to_pem(req, &csr, &csr_len);
    if (r < 0) {
        (void)err_set(&err, r, CERTD_E_INTERNAL, "cannot encode the CSR");
        return cli_fail("csr", &err);
    }
    r = o->form == ENROLL_FORM_IBM ? sign_ibm(&e, csr, &res, &err) : sign_vmi(&e, csr, &res, &err);
    if (r < 0) {
        return cli_fail("enroll", &err);
    }
    r = check_result(&e, key, &res, &err);
    if (r < 0) {
        return cli_fail("enroll", &err);
    }
    r = write_result(&e, o->out_dir, key, &res, &err);
    if (r < 0) {
        return cli_fail("enroll", &err);
    }
    return EXIT_OK;
}

enum {
    OPT_USER = 0x100,
    OPT_PASSWORD_FILE,
    OPT_CACERT,
    OPT_INSECURE,
    OPT_KEY_ALG,
    OPT_CN,
    OPT_SAN,
    OPT_OUT_DIR,
    OPT_FORM,
};

int cmd_enroll(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "user", required_argument, NULL, OPT_USER },
        { "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
        { "cacert", required_argument, NULL, OPT_CACERT },
        { "insecure", no_argument, NULL, OPT_INSECURE },
        { "key-alg", required_argument, NULL, OPT_KEY_ALG },
        { "cn", required_argument, NULL, OPT_CN },
        { "san", required_argument, NULL, OPT_SAN },
        { "out-dir", required_argument, NULL, OPT_OUT_DIR },
        { "form", required_argument, NULL, OPT_FORM },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct enroll_opts o = { .user = "admin", .out_dir = ".", .form = ENROLL_FORM_IBM };
    _cleanup_free_ const char **sans = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            enroll_usage(stdout);
            return EXIT_OK;
        case OPT_USER:
            o.user = optarg;
            break;
        case OPT_PASSWORD_FILE:
            o.pw_file = optarg;
            break;
        case OPT_CACERT:
            o.cacert = optarg;
            break;
        case OPT_INSECURE:
            o.is_insecure = true;
            break;
        case OPT_KEY_ALG:
            o.key_alg = optarg;
            break;
        case OPT_CN:
            o.cn = optarg;
            break;
        case OPT_SAN: {
            if (o.n_sans >= CERTD_SANS_MAX) {
                return cli_usage_error("enroll", "at most %u --san options", CERTD_SANS_MAX);
            }
            const char **n = reallocarray(sans, o.n_sans + 1, sizeof(*n));
            if (!n) {
                return cli_usage_error("enroll", "out of memory");
            }
            sans = n;
            sans[o.n_sans++] = optarg;
            break;
        }
        case OPT_OUT_DIR:
            o.out_dir = optarg;
            break;
        case OPT_FORM:
            if (strcmp(optarg, "ibm") == 0) {
                o.form = ENROLL_FORM_IBM;
            } else if (strcmp(optarg, "vmi") == 0) {
                o.form = ENROLL_FORM_VMI;
            } else {
                return cli_usage_error("enroll", "--form is ibm or vmi, not '%s'", optarg);
            }
            break;
        default:
            return cli_usage_error("enroll", "unknown option");
        }
    }
    int urc =
        cli_one_operand("enroll", argc, argv, "the URL is missing (https://HOST[:PORT])", &o.url);
    if (urc != 0) {
        return urc;
    }
    o.sans = sans;
    /*
     * A server may close while we write (the request, a close_notify): that is an error to
     * report, not a reason to die of SIGPIPE.
     */
    (void)signal(SIGPIPE, SIG_IGN);
    if (o.cacert && o.is_insecure) {
        return cli_usage_error("enroll", "--cacert and --insecure exclude each other");
    }
    if (!user_ok(o.user)) {
        return cli_usage_error("enroll",
                               "--user takes 1 to %u characters, no ':' and no "
                               "control characters",
                               ENROLL_USER_MAX);
    }
    if (!o.pw_file && isatty(STDIN_FILENO)) {
        return cli_usage_error("enroll", "give --password-file FILE, or the password on "
                                         "standard input (not a terminal)");
    }
    return enroll_run(ctx, &o);
}
