/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd's HTTPS/1.1 server (http.h): accepts TLS connections with an evconnlistener, runs
 * each over a bufferevent_openssl, parses requests with http-parser straight out of the
 * bufferevent's input buffer and hands them, one at a time per connection, to the handler.
 *
 * A connection moves through these states (enum conn_state):
 *   HANDSHAKE -> IDLE -> READING -> HANDLING -> WRITING -> IDLE ... -> (LINGER) -> freed
 * and one timer per connection bounds every state that waits on the client: the handshake and
 * the first request share one deadline from the accept, each later request has its own from
 * its first byte, an idle connection has the idle timeout and a response being written the
 * write timeout. HANDLING waits on our own handler, so it has no timer.
 *
 * Invariants:
 *  - memory per connection is bounded: the request's arena holds at most the header section's
 *    bytes (which the parser is never fed more than max_headers_size of), the body buffer at
 *    most max_body bytes, the bufferevent's input buffer at most HTTP_READ_AHEAD_MAX bytes
 *    (plus one TLS record) while a request is being handled;
 *  - a request object belongs to the connection except between the handler call and
 *    http_respond, when the handler owns it; a connection that closes in between leaves it to
 *    the handler (req->conn = NULL), and http_respond frees it;
 *  - the steady state of a keep-alive connection allocates nothing per request of ours: the
 *    request object, its arena, its body, response-header and response buffers are reused;
 *  - a response is assembled in one buffer and written with SSL_write at once when nothing is
 *    queued (one record, one system call, no write event); only what the socket does not take
 *    goes through the bufferevent's output buffer, which libevent then writes as it can;
 *  - the handler is never called from within http_respond: what follows a response runs from
 *    a callback of its own.
 *  - no header value is ever logged (Authorization, X-Auth-Token, cookies).
 */
#include "http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * http_parser.h declares its own `enum http_method`, which http.h (ours, used by every front
 * end) also declares. The parser's is renamed for this file only; it is an int all the same.
 */
#define http_method http_parser_method
#include <http_parser.h>
#undef http_method

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>

#include "log/log.h"
#include "util/parse.h"
#include "worker.h"

/*
 * Bytes of the next request(s) read ahead while a request is being handled: enough for a
 * few pipelined requests, small enough that a client streaming data at us meanwhile costs
 * little (bufferevent_openssl may overshoot by one TLS record, 16 KiB). It is also the size
 * of each read: libevent allocates a buffer of this size per read, and 4 KiB (its default)
 * keeps that allocation cheap.
 */
#define HTTP_READ_AHEAD_MAX (4u * 1024u)
/*
 * Largest SSL_write made from http_respond. A write that would block is retried by libevent
 * from the output buffer, and OpenSSL requires the retry to carry at least the same bytes:
 * libevent retries with up to 16 KiB at a time (its write maximum), so ours stay within that.
 */
#define HTTP_DIRECT_WRITE_MAX (16u * 1024u)
/* Accept backlog (http.h). */
#define HTTP_BACKLOG 128
/*
 * After an error response the client may still be sending (a body we refused): we read and
 * discard for up to this long before closing, so that the kernel does not answer its data with
 * a reset that could destroy our response before the client read it.
 */
#define HTTP_LINGER_SECONDS 2
/* Bytes discarded while lingering; beyond this the client is not listening anyway. */
#define HTTP_LINGER_MAX (256u * 1024u)
/* Pause after accept() fails for lack of descriptors or memory, instead of spinning. */
#define HTTP_ACCEPT_RETRY_SECONDS 1
/*
 * Newcomers accepted when, after all, no slot was free (see accept_cb) wait here for one, as
 * they would have waited in the backlog; beyond this many they are closed.
 */
#define HTTP_PARKED_MAX 8u
/* Buffers a connection keeps between requests; larger ones are freed after the request. */
#define HTTP_KEEP_BUFFER_MAX (16u * 1024u)
/* First allocation of the arena: a typical request's line and headers. */
#define HTTP_ARENA_INITIAL 1024u
/* Bytes of a request's start kept to tell an unknown method (501) from garbage (400). */
#define HTTP_METHOD_PEEK 24u
/*
 * Handshake steps queued for the serial thread at once (http_server_set_ssl_ctx_ex). The thread
 * runs one at a time anyway; more would only fill the worker queue that CSRs and SignCSR also
 * need. Connections beyond it wait their turn here, in accept order (each within its deadline).
 */
#define HTTP_HS_INFLIGHT_MAX 8u
/* A worker queue full of other jobs: try the waiting handshakes again this soon. */
#define HTTP_HS_RETRY_USEC 20000
/* Largest header section limit accepted (config allows 64 KiB). */
#define HTTP_HEADERS_SIZE_HARD_MAX (1024u * 1024u)
/*
 * Room for "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7 IMF-fixdate, 29 bytes); more so
 * that the compiler can see that no int overflows it.
 */
#define HTTP_DATE_LEN 80u

enum conn_state {
    CONN_HANDSHAKE,
    CONN_IDLE,
    CONN_READING,
    CONN_HANDLING,
    CONN_WRITING,
    CONN_LINGER,
    CONN_STATE_MAX
};

/* What the parser's data callbacks last appended to the arena. */
enum part { PART_NONE, PART_URL, PART_FIELD, PART_VALUE, PART_MAX };

struct http_header {
    uint32_t name; /* arena offsets of NUL-terminated strings */
    uint32_t value;
};

struct http_request {
    struct http_conn *conn; /* NULL once the connection is gone */
    int error;
    enum http_method method;
    const char *method_name; /* static */
    /* arena: target, header names and values, decoded path; all NUL-terminated */
    char *buf;
    size_t len, cap;
    size_t url_off, url_len; /* the raw target */
    size_t path_off;         /* the decoded path */
    size_t query_off;        /* the raw query; SIZE_MAX for none */
    const char *path;        /* set at dispatch, into buf or "" */
    const char *query;       /* set at dispatch, into buf or NULL */
    struct http_header headers[HTTP_HEADERS_MAX];
    unsigned n_headers;
    uint8_t *body; /* body_len bytes and a NUL */
    size_t body_len, body_cap;
    /* response headers added by the handler: "Name: value\r\n"... */
    char *out;
    size_t out_len, out_cap;
    unsigned n_out;
    bool is_keep_alive;
    uint64_t conn_id;
    char peer[INET6_ADDRSTRLEN];
};

/*
 * One step of a handshake run on the worker pool's serial thread (http_server_set_ssl_ctx_ex):
 * SSL_do_handshake on a non-blocking socket, once. The loop owns it between steps, the serial
 * thread while a step runs. A connection freed while its step runs lets go of it (c = NULL):
 * the step's done then frees the SSL and closes the socket.
 */
struct hs_step {
    struct http_conn *c;
    SSL *ssl;
    int fd;
    int result; /* 1: done; else SSL_get_error's value */
    char why[160];
};

struct http_conn {
    struct http_server *s;
    struct http_conn *prev, *next;
    struct bufferevent *bev;     /* NULL during an offloaded handshake (hs) */
    struct hs_step *hs;          /* an offloaded handshake, until it is done */
    struct event *hs_io;         /* waits for the socket between its steps */
    bool is_hs_running;          /* hs is with the serial thread */
    bool is_hs_waiting;          /* in the server's list of steps waiting for a slot */
    struct worker_pool *hs_pool; /* where its steps run: the server's at accept time */
    struct http_conn *hs_wait_prev, *hs_wait_next;
    struct event *timer;
    struct event *written; /* made active when http_respond wrote a whole response itself */
    struct event *linger;  /* CONN_LINGER only */
    char *wbuf;            /* the response being assembled (reused) */
    size_t wcap;
    int linger_fd;
    size_t lingered;
    enum conn_state state;
    struct http_limits limits;
    http_parser parser;
    struct http_request *req; /* NULL only after the handler inherited it */
    unsigned n_requests;
    size_t header_bytes;
    bool is_headers_done;
    bool is_url_seen;
    bool is_close_after;
    enum part last;
    int error;         /* the status a parser callback decided on */
    const char *chunk; /* the data the parser is being fed */
    char method_peek[HTTP_METHOD_PEEK];
    size_t method_peek_len;
    uint64_t id;
    struct http_conn *idle_prev, *idle_next; /* the server's idle list, while CONN_IDLE */
    bool is_in_idle_list;
};

struct http_server {
    struct event_base *base;
    struct http_limits limits;
    http_handler_fn handler;
    void *userdata;
    SSL_CTX *ssl_ctx;
    struct worker_pool *hs_pool; /* handshakes with ssl_ctx run on its serial lane; or NULL */
    unsigned n_hs_running;       /* steps with the serial thread for live connections */
    struct http_conn *hs_wait_first, *hs_wait_last; /* steps waiting for a slot, FIFO */
    struct event *hs_retry;                         /* runs hs_wait_kick from the loop */
    struct evconnlistener *listener;
    struct event *accept_retry;
    struct parked {
        int fd;
        struct sockaddr_storage addr;
    } parked[HTTP_PARKED_MAX]; /* FIFO: the first gets the next free slot */
    unsigned n_parked;
    struct event *unpark; /* runs unpark_cb from the loop once a slot is free */
    uint16_t port;
    bool is_listening; /* the listener is enabled */
    bool is_draining;
    void (*drain_done)(void *arg);
    void *drain_arg;
    void (*closed)(void *arg); /* after each connection closed */
    void *closed_arg;
    struct http_conn *conns;
    unsigned n_conns;
    uint64_t next_conn_id;
    /* Idle keep-alive connections, the one idle the longest first: at the connection limit a
     * newcomer takes the first one's place. */
    struct http_conn *idle_first, *idle_last;
    time_t date_sec;
    char date[HTTP_DATE_LEN];
};

static int on_url(http_parser *p, const char *at, size_t len);
static int on_header_field(http_parser *p, const char *at, size_t len);
static int on_header_value(http_parser *p, const char *at, size_t len);
static int on_headers_complete(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_message_complete(http_parser *p);

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_free(struct http_conn *c);
static void conn_process(struct http_conn *c);
static void server_update_listener(struct http_server *s);

/* ---- small helpers ---- */

static bool is_tchar(unsigned char ch)
{
    /* RFC 9110 §5.6.2 token characters. */
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
        return true;
    }
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_token(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        if (!is_tchar((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

/* Grow *buf (capacity *cap) to hold need bytes; never beyond what the caller bounded. */
static int buf_reserve(char **buf, size_t *cap, size_t need, size_t initial)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : initial;
    while (n < need) {
        if (!size_mul(n, 2, &n)) {
            return -ENOMEM;
        }
    }
    char *p = realloc(*buf, n);
    if (!p) {
        return -ENOMEM;
    }
    *buf = p;
    *cap = n;
    return 0;
}

static void arm_timer(struct http_conn *c, unsigned seconds)
{
    struct timeval tv = { .tv_sec = (time_t)seconds, .tv_usec = 0 };
    (void)event_add(c->timer, &tv);
}

/* ---- requests ---- */

static struct http_request *request_free(struct http_request *r)
{
    if (r) {
        free(r->buf);
        free(r->body);
        free(r->out);
        free(r);
    }
    return NULL;
}

static void request_reset(struct http_request *r)
{
    r->error = 0;
    r->method = HTTP_METHOD_OTHER;
    r->method_name = "";
    r->len = 0;
    r->url_off = r->url_len = 0;
    r->path_off = 0;
    r->query_off = SIZE_MAX;
    r->path = "";
    r->query = NULL;
    r->n_headers = 0;
    r->body_len = 0;
    r->out_len = 0;
    r->n_out = 0;
    r->is_keep_alive = false;
    /* A connection keeps small buffers for its next request, not a large one for ever. */
    if (r->cap > HTTP_KEEP_BUFFER_MAX) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
    if (r->body_cap > HTTP_KEEP_BUFFER_MAX) {
        free(r->body);
        r->body = NULL;
        r->body_cap = 0;
    }
}

/* Make room in the arena for n more bytes and a NUL after them. */
static int arena_reserve(struct http_request *r, size_t n)
{
    size_t need;
    if (!size_add(r->len, n, &need) || !size_add(need, 1, &need)) {
        return -ENOMEM;
    }
    return buf_reserve(&r->buf, &r->cap, need, HTTP_ARENA_INITIAL);
}

/* Append n bytes to the arena, keeping room for a NUL after them. */
static int arena_append(struct http_request *r, const char *p, size_t n)
{
    int ret = arena_reserve(r, n);
    if (ret < 0) {
        return ret;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

static int arena_terminate(struct http_request *r)
{
    int ret = arena_append(r, "", 0);
    if (ret < 0) {
        return ret;
    }
    r->buf[r->len++] = '\0';
    return 0;
}

static enum http_method method_from_parser(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return HTTP_METHOD_GET;
    case HTTP_HEAD:
        return HTTP_METHOD_HEAD;
    case HTTP_POST:
        return HTTP_METHOD_POST;
    case HTTP_PUT:
        return HTTP_METHOD_PUT;
    case HTTP_PATCH:
        return HTTP_METHOD_PATCH;
    case HTTP_DELETE:
        return HTTP_METHOD_DELETE;
    case HTTP_OPTIONS:
        return HTTP_METHOD_OPTIONS;
    default:
        return HTTP_METHOD_OTHER;
    }
}

/* ---- parser callbacks (c->error set and -1 returned stops the parser with that status) ---- */

static int fail(struct http_conn *c, int status)
{
    if (c->error == 0) {
        c->error = status;
    }
    return -1;
}

/* Close the string the last data callback was appending to. */
static int finish_part(struct http_conn *c)
{
    struct http_request *r = c->req;
    switch (c->last) {
    case PART_URL:
        if (arena_terminate(r) < 0) {
            return fail(c, 431);
        }
        break;
    case PART_FIELD:
        if (arena_terminate(r) < 0) {
            return fail(c, 431);
        }
        /* Debian's http-parser is built lenient (a blank passes as a token character). */
        if (!is_token(r->buf + r->headers[r->n_headers - 1].name)) {
            return fail(c, 400);
        }
        /* Until a value comes, the name's NUL is an empty value. */
        r->headers[r->n_headers - 1].value = (uint32_t)(r->len - 1);
        break;
    case PART_VALUE: {
        /* Values are trimmed (RFC 9110 §5.5); the parser skipped the leading blanks. */
        size_t start = r->headers[r->n_headers - 1].value;
        while (r->len > start && (r->buf[r->len - 1] == ' ' || r->buf[r->len - 1] == '\t')) {
            r->len--;
        }
        /* Folded lines (obs-fold) or any control byte but HTAB: 400 (RFC 9112 §5.2). */
        for (size_t i = start; i < r->len; i++) {
            unsigned char ch = (unsigned char)r->buf[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                return fail(c, 400);
            }
        }
        if (arena_terminate(r) < 0) {
            return fail(c, 431);
        }
        break;
    }
    case PART_NONE:
    case PART_MAX:
        break;
    }
    c->last = PART_NONE;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->req;
    if (!c->is_url_seen) {
        c->is_url_seen = true;
        r->url_off = r->len;
        c->last = PART_URL;
    }
    if (len > HTTP_TARGET_MAX - r->url_len) {
        return fail(c, 414);
    }
    r->url_len += len;
    return arena_append(r, at, len) < 0 ? fail(c, 431) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->req;
    if (c->is_headers_done) {
        return 0; /* a chunked body's trailer: not part of the request's headers */
    }
    if (c->last != PART_FIELD) {
        if (finish_part(c) < 0) {
            return -1;
        }
        if (r->n_headers >= HTTP_HEADERS_MAX) {
            return fail(c, 431);
        }
        r->headers[r->n_headers++] = (struct http_header){ .name = (uint32_t)r->len, .value = 0 };
        c->last = PART_FIELD;
    }
    return arena_append(r, at, len) < 0 ? fail(c, 431) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->req;
    if (c->is_headers_done) {
        return 0;
    }
    if (c->last != PART_VALUE) {
        if (c->last != PART_FIELD || finish_part(c) < 0) {
            return fail(c, 400);
        }
        r->headers[r->n_headers - 1].value = (uint32_t)r->len;
        c->last = PART_VALUE;
    } else if (at != c->chunk) {
        /* A value continued other than across our input chunks is a folded line (obs-fold):
         * RFC 9112 §5.2 lets a server reject it, which keeps header values one line each. */
        return fail(c, 400);
    }
    return arena_append(r, at, len) < 0 ? fail(c, 431) : 0;
}

/*
 * Split the target into path and query, percent-decode the path once into the arena. Only the
 * origin form is served (RFC 9112 §3.2.1): "/path?query", no fragment, no "%00".
 */
static int split_target(struct http_request *r)
{
    const char *t = r->buf + r->url_off;
    size_t n = r->url_len;
    if (n == 0 || t[0] != '/' || memchr(t, '#', n)) {
        return -EBADMSG;
    }
    /* Visible ASCII only (RFC 3986 §2): the lenient parser lets a tab through. */
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f) {
            return -EBADMSG;
        }
    }
    const char *q = memchr(t, '?', n);
    size_t path_len = q ? (size_t)(q - t) : n;

    /* Offsets, not pointers: the arena may still move until the request is complete. */
    r->query_off = q ? r->url_off + path_len + 1 : SIZE_MAX;
    r->path_off = r->len;
    if (arena_reserve(r, path_len) < 0) {
        return -ENOMEM;
    }
    size_t n_path;
    if (percent_decode(span_make(r->buf + r->url_off, path_len), r->buf + r->len, &n_path) < 0) {
        return -EBADMSG;
    }
    r->len += n_path + 1; /* and its NUL */
    return 0;
}

static unsigned header_count(const struct http_request *r, const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->n_headers; i++) {
        if (str_case_eq(r->buf + r->headers[i].name, name)) {
            n++;
        }
    }
    return n;
}

static const char *header_get(const struct http_request *r, const char *name)
{
    for (unsigned i = 0; i < r->n_headers; i++) {
        if (str_case_eq(r->buf + r->headers[i].name, name)) {
            return r->buf + r->headers[i].value;
        }
    }
    return NULL;
}

static int on_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->req;
    if (finish_part(c) < 0) {
        return -1;
    }
    c->is_headers_done = true;
    if (p->http_major != 1) {
        return fail(c, 505);
    }
    if (!c->is_url_seen) {
        return fail(c, 400);
    }
    int ret = split_target(r);
    if (ret < 0) {
        return fail(c, ret == -ENOMEM ? 431 : 400);
    }
    /* RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0. */
    unsigned n_host = header_count(r, "Host");
    if (n_host > 1 || (p->http_minor >= 1 && n_host == 0)) {
        return fail(c, 400);
    }
    /* Refused before a byte of the body is read. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->limits.max_body) {
        return fail(c, 413);
    }
    r->method = method_from_parser(p->method);
    r->method_name = http_method_str((enum http_parser_method)p->method);
    r->is_keep_alive = http_should_keep_alive(p) != 0;
    if (p->upgrade) {
        /* Upgrade or CONNECT: we speak nothing else, and the parser stops after this one. */
        r->is_keep_alive = false;
    }

    /* RFC 9110 §10.1.1: a client waiting for 100 Continue gets it once the body is welcome. */
    const char *expect = header_get(r, "Expect");
    bool has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);
    if (expect && has_body && p->http_minor >= 1 && str_case_eq(expect, "100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)evbuffer_add(bufferevent_get_output(c->bev), cont, sizeof(cont) - 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    struct http_request *r = c->req;
    /* Chunked bodies are counted as they come. */
    if (len > c->limits.max_body - r->body_len) {
        return fail(c, 413);
    }
    size_t need = r->body_len + len + 1;
    char *b = (char *)r->body;
    int ret = buf_reserve(&b, &r->body_cap, need, need < 4096 ? 4096 : need);
    r->body = (uint8_t *)b;
    if (ret < 0) {
        return fail(c, 413);
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    /* One request at a time: the next one stays unparsed until this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- connections ---- */

static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void written_cb(evutil_socket_t fd, short what, void *arg);

static void hs_wait_remove(struct http_conn *c)
{
    struct http_server *s = c->s;
    if (!c->is_hs_waiting) {
        return;
    }
    *(c->hs_wait_prev ? &c->hs_wait_prev->hs_wait_next : &s->hs_wait_first) = c->hs_wait_next;
    *(c->hs_wait_next ? &c->hs_wait_next->hs_wait_prev : &s->hs_wait_last) = c->hs_wait_prev;
    c->hs_wait_prev = c->hs_wait_next = NULL;
    c->is_hs_waiting = false;
}

static void hs_wait_push(struct http_conn *c)
{
    struct http_server *s = c->s;
    c->hs_wait_next = NULL;
    c->hs_wait_prev = s->hs_wait_last;
    *(s->hs_wait_last ? &s->hs_wait_last->hs_wait_next : &s->hs_wait_first) = c;
    s->hs_wait_last = c;
    c->is_hs_waiting = true;
}

/* Let waiting handshake steps go as soon as the loop is back (never from within a callback). */
static void hs_wait_schedule(struct http_server *s)
{
    if (s->hs_wait_first && s->hs_retry) {
        const struct timeval now = { 0, 0 };
        (void)event_add(s->hs_retry, &now);
    }
}

static void hs_step_free(struct hs_step *st)
{
    SSL_free(st->ssl);
    if (st->fd >= 0) {
        (void)close(st->fd);
    }
    free(st);
}

/* Free a connection that never made it into the server's list. */
static void conn_discard(struct http_conn *c)
{
    if (c) {
        if (c->timer) {
            event_free(c->timer);
        }
        if (c->written) {
            event_free(c->written);
        }
        request_free(c->req);
        free(c);
    }
}

static struct http_conn *conn_new(struct http_server *s)
{
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    c->req = calloc(1, sizeof(*c->req));
    c->timer = evtimer_new(s->base, timer_cb, c);
    c->written = event_new(s->base, -1, 0, written_cb, c);
    if (!c->req || !c->timer || !c->written) {
        conn_discard(c);
        return NULL;
    }
    c->s = s;
    c->linger_fd = -EBADF;
    c->limits = s->limits;
    c->id = ++s->next_conn_id;
    c->req->conn = c;
    c->req->conn_id = c->id;
    request_reset(c->req);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    return c;
}

static void server_check_drained(struct http_server *s)
{
    if (s->is_draining && s->n_conns == 0 && s->drain_done) {
        void (*done)(void *) = s->drain_done;
        s->drain_done = NULL;
        done(s->drain_arg);
    }
}

static void idle_list_remove(struct http_conn *c)
{
    struct http_server *s = c->s;
    if (!c->is_in_idle_list) {
        return;
    }
    *(c->idle_prev ? &c->idle_prev->idle_next : &s->idle_first) = c->idle_next;
    *(c->idle_next ? &c->idle_next->idle_prev : &s->idle_last) = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
    c->is_in_idle_list = false;
}

/*
 * The keep-alive connection idle the longest with no byte of a next request waiting: what a
 * newcomer may take the place of at the connection limit. NULL when every connection is busy.
 */
static struct http_conn *server_oldest_idle(struct http_server *s)
{
    for (struct http_conn *c = s->idle_first; c; c = c->idle_next) {
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            return c;
        }
    }
    return NULL;
}

/* Listening depends on idle connections only at the limit. */
static void server_idle_changed(struct http_server *s)
{
    if (s->n_conns >= s->limits.max_connections) {
        server_update_listener(s);
    }
}

static void conn_set_idle(struct http_conn *c)
{
    struct http_server *s = c->s;
    c->state = CONN_IDLE;
    idle_list_remove(c);
    c->idle_prev = s->idle_last;
    *(s->idle_last ? &s->idle_last->idle_next : &s->idle_first) = c;
    s->idle_last = c;
    c->is_in_idle_list = true;
    server_idle_changed(s);
}

/* Close at once: no more bytes either way. */
static void conn_free(struct http_conn *c)
{
    struct http_server *s = c->s;

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    idle_list_remove(c);
    s->n_conns--;

    if (c->bev) {
        /* Closes the socket and frees the SSL once libevent's callbacks are done with it. */
        bufferevent_free(c->bev);
    }
    if (c->hs_io) {
        event_free(c->hs_io);
    }
    hs_wait_remove(c);
    if (c->hs) {
        if (c->is_hs_running) {
            c->hs->c = NULL; /* its done frees it */
            /* No longer counted: its slot goes to a waiting connection. */
            s->n_hs_running--;
            hs_wait_schedule(s);
        } else {
            hs_step_free(c->hs);
        }
    }
    if (c->linger) {
        event_free(c->linger);
    }
    if (c->linger_fd >= 0) {
        (void)close(c->linger_fd);
    }
    event_free(c->timer);
    event_free(c->written);
    free(c->wbuf);
    if (c->req) {
        if (c->state == CONN_HANDLING) {
            /* The handler owns it now; http_respond frees it. */
            c->req->conn = NULL;
        } else {
            request_free(c->req);
        }
    }
    free(c);

    server_update_listener(s);
    if (s->closed) {
        s->closed(s->closed_arg);
    }
    server_check_drained(s);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    (void)what;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            c->lingered += (size_t)n;
            if (c->lingered > HTTP_LINGER_MAX) {
                break;
            }
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        break; /* EOF or an error: the client is done */
    }
    conn_free(c);
}

/*
 * Close after a response: close_notify, then either close, or (when the client may still be
 * sending) shut our side and discard what comes for a while (see HTTP_LINGER_SECONDS).
 */
static void conn_close(struct http_conn *c, bool is_linger)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (ssl && SSL_is_init_finished(ssl)) {
        (void)SSL_shutdown(ssl);
        ERR_clear_error();
    }
    if (!is_linger) {
        conn_free(c);
        return;
    }
    int fd = (int)bufferevent_getfd(c->bev);
    int fd2 = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
    if (fd2 < 0) {
        conn_free(c);
        return;
    }
    c->linger_fd = fd2;
    idle_list_remove(c); /* no bufferevent any more: never a newcomer's place */
    bufferevent_free(c->bev);
    c->bev = NULL;
    c->state = CONN_LINGER;
    (void)shutdown(fd2, SHUT_WR);
    c->linger = event_new(c->s->base, fd2, EV_READ | EV_PERSIST, linger_cb, c);
    if (!c->linger || event_add(c->linger, NULL) < 0) {
        conn_free(c);
        return;
    }
    arm_timer(c, HTTP_LINGER_SECONDS);
}

/* Hand the finished request (or error request) to the handler. */
static void conn_dispatch(struct http_conn *c, int error)
{
    struct http_server *s = c->s;
    struct http_request *r = c->req;

    (void)event_del(c->timer);
    c->state = CONN_HANDLING;
    c->n_requests++;
    if (error) {
        r->error = error;
        r->path = "";
        r->query = NULL;
        r->n_headers = 0;
        r->body_len = 0;
        r->is_keep_alive = false;
        if (!c->is_url_seen) {
            r->method = HTTP_METHOD_OTHER;
            r->method_name = "";
        } else if (!*r->method_name) {
            r->method = method_from_parser(c->parser.method);
            r->method_name = http_method_str((enum http_parser_method)c->parser.method);
        }
        c->is_close_after = true;
    } else {
        r->path = r->buf + r->path_off;
        r->query = r->query_off != SIZE_MAX ? r->buf + r->query_off : NULL;
    }
    if (r->body) {
        r->body[r->body_len] = '\0';
    }
    s->handler(r, s->userdata);
}

/* Map a parser failure that no callback decided on to a status. */
static int parser_error_status(struct http_conn *c, enum http_errno e)
{
    if (c->error) {
        return c->error;
    }
    switch (e) {
    case HPE_HEADER_OVERFLOW:
        return 431;
    case HPE_INVALID_METHOD: {
        /*
         * A request line with an unknown method ("BREW /pot HTTP/1.1") is 501; anything else
         * is garbage, 400. Methods are case-sensitive and every registered one is upper case
         * (RFC 9110 §9.1), which tells "hello world" from a method.
         */
        size_t i = 0;
        while (i < c->method_peek_len && ((c->method_peek[i] >= 'A' && c->method_peek[i] <= 'Z') ||
                                          c->method_peek[i] == '-' || c->method_peek[i] == '_')) {
            i++;
        }
        return i > 0 && i + 1 < c->method_peek_len && c->method_peek[i] == ' ' &&
                       c->method_peek[i + 1] != ' '
                   ? 501
                   : 400;
    }
    default:
        return 400;
    }
}

/*
 * Move plaintext that OpenSSL holds but libevent left behind into the input buffer. The TLS
 * contexts read ahead (tls.c): one read() takes whatever the socket has, often several
 * records -- the client's Finished and its first request, or pipelined requests. libevent
 * 2.1 only goes on reading while SSL_pending() (decrypted bytes of the current record) is
 * non-zero, and it also stops at its high watermark in the middle of a record; either way the
 * rest waits inside the SSL object while the socket has nothing more to say, so no read event
 * would ever fetch it. SSL_has_pending() sees both kinds; what is buffered is read here
 * (SSL_read touches the socket only when a record in the buffer is incomplete).
 */
static size_t conn_pull_pending(struct http_conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    char buf[HTTP_READ_AHEAD_MAX];
    int n;

    if (!ssl || !SSL_has_pending(ssl)) {
        return 0;
    }
    n = SSL_read(ssl, buf, (int)sizeof(buf));
    if (n <= 0) {
        ERR_clear_error(); /* an incomplete record: libevent's read event gets the rest */
        return 0;
    }
    if (evbuffer_add(bufferevent_get_input(c->bev), buf, (size_t)n) < 0) {
        OPENSSL_cleanse(buf, (size_t)n);
        return 0;
    }
    OPENSSL_cleanse(buf, (size_t)n); /* a request may carry a password */
    return (size_t)n;
}

/* Feed the parser from the input buffer while a request is being read. */
static void conn_process(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    while (c->state == CONN_READING) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
            if (conn_pull_pending(c) > 0) {
                continue;
            }
            return;
        }
        size_t len = v.iov_len;
        bool was_headers_done = c->is_headers_done;
        if (!was_headers_done) {
            /* The parser never sees more header bytes than the limit: no counting after. */
            size_t budget = c->limits.max_headers_size - c->header_bytes;
            if (len > budget) {
                len = budget;
            }
            if (!c->is_url_seen && c->method_peek_len < HTTP_METHOD_PEEK) {
                const char *p = v.iov_base;
                for (size_t i = 0; i < len && c->method_peek_len < HTTP_METHOD_PEEK; i++) {
                    if (c->method_peek_len == 0 && (p[i] == '\r' || p[i] == '\n')) {
                        continue;
                    }
                    c->method_peek[c->method_peek_len++] = p[i];
                }
            }
        }
        c->chunk = v.iov_base;
        size_t n = http_parser_execute(&c->parser, &parser_settings, v.iov_base, len);
        c->chunk = NULL;
        if (!was_headers_done) {
            c->header_bytes += n;
        }
        (void)evbuffer_drain(in, n);

        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            conn_dispatch(c, 0);
            return;
        }
        if (e != HPE_OK) {
            conn_dispatch(c, parser_error_status(c, e));
            return;
        }
        if (!c->is_headers_done && c->header_bytes >= c->limits.max_headers_size) {
            conn_dispatch(c, 431);
            return;
        }
    }
}

/*
 * The first byte of a request has arrived (or was waiting): start reading it. The one place the
 * per-request state is reset: the parser pauses after each message, so every message begins
 * after a call here.
 */
static void conn_start_request(struct http_conn *c)
{
    c->state = CONN_READING;
    idle_list_remove(c);
    server_idle_changed(c->s);
    c->header_bytes = 0;
    c->is_headers_done = false;
    c->is_url_seen = false;
    c->error = 0;
    c->method_peek_len = 0;
    c->last = PART_NONE;
    request_reset(c->req);
    /* The first request shares its deadline with the handshake (armed at accept). */
    if (c->n_requests > 0) {
        arm_timer(c, c->limits.request_timeout);
    }
    conn_process(c);
}

static void conn_handshake_done(struct http_conn *c)
{
    if (c->state == CONN_HANDSHAKE) {
        conn_set_idle(c);
        if (c->s->is_draining) {
            conn_free(c);
            return;
        }
        /* The first request often came in the same read as the client's Finished. */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 || conn_pull_pending(c) > 0) {
            conn_start_request(c);
        }
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    /* Deferred callbacks run reads before events: data may come before "connected". */
    if (c->state == CONN_HANDSHAKE) {
        conn_set_idle(c);
    }
    if (c->state == CONN_IDLE && evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
        conn_start_request(c);
    } else if (c->state == CONN_READING) {
        conn_process(c);
    }
}

/* The response has gone out whole: close, or go on with the next request. */
static void conn_written(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->is_close_after) {
        /* Unread bytes mean the client may still be sending: linger, or it may get a reset. */
        conn_close(c, c->req->error != 0 || evbuffer_get_length(in) > 0);
        return;
    }
    if (c->wcap > HTTP_KEEP_BUFFER_MAX) {
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
    http_parser_pause(&c->parser, 0);
    conn_set_idle(c);
    if (evbuffer_get_length(in) > 0 || conn_pull_pending(c) > 0) {
        conn_start_request(c); /* a pipelined request was waiting */
    } else {
        arm_timer(c, c->limits.idle_timeout);
    }
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    (void)bev;
    /* Also called when a 100 Continue went out, or after http_respond's own writes. */
    if (c->state == CONN_WRITING && !event_pending(c->written, EV_WRITE, NULL)) {
        conn_written(c);
    }
}

static void written_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == CONN_WRITING) {
        conn_written(c);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        conn_handshake_done(c);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e;
        while ((e = bufferevent_get_openssl_error(bev)) != 0) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            log_debug("http: connection %llu: tls: %s", (unsigned long long)c->id, buf);
        }
    }
    /* EOF or error: the client is gone; a handler holding its request is told so. */
    conn_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    (void)fd;
    (void)what;
    switch (c->state) {
    case CONN_READING:
        /* Part of a request came, not all of it in time: 408 rendered by the handler. */
        log_debug("http: connection %llu: request timeout", (unsigned long long)c->id);
        conn_dispatch(c, 408);
        break;
    case CONN_IDLE:
        /* Idle timeout (or no request after the handshake): close_notify, then close. */
        conn_close(c, false);
        break;
    case CONN_HANDSHAKE:
    case CONN_WRITING:
    case CONN_LINGER:
    case CONN_HANDLING:
    case CONN_STATE_MAX:
        conn_free(c);
        break;
    }
}

/* ---- responses ---- */

/* The Date header's value, formatted at most once a second. */
static const char *server_date(struct http_server *s)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct timeval now;
    (void)event_base_gettimeofday_cached(s->base, &now);
    if (now.tv_sec != s->date_sec || !s->date[0]) {
        struct tm tm;
        time_t t = now.tv_sec;
        if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
            tm.tm_mon > 11) {
            return s->date;
        }
        (void)snprintf(s->date, sizeof(s->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                       days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                       tm.tm_hour, tm.tm_min, tm.tm_sec);
        s->date_sec = now.tv_sec;
    }
    return s->date;
}

int http_response_header(struct http_request *r, const char *name, const char *value)
{
    assert_return(r && name && value, -EINVAL);
    if (!is_token(name) || str_case_eq(name, "Content-Length") || str_case_eq(name, "Connection") ||
        str_case_eq(name, "Date") || str_case_eq(name, "Transfer-Encoding")) {
        return -EINVAL;
    }
    for (const char *p = value; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return -EINVAL;
        }
    }
    if (r->n_out >= HTTP_RESPONSE_HEADERS_MAX) {
        return -E2BIG;
    }
    size_t nl = strlen(name), vl = strlen(value), need;
    if (!size_add(r->out_len, nl, &need) || !size_add(need, vl, &need) ||
        !size_add(need, 4, &need)) {
        return -ENOMEM;
    }
    int ret = buf_reserve(&r->out, &r->out_cap, need, 256);
    if (ret < 0) {
        return ret;
    }
    char *o = r->out + r->out_len;
    memcpy(o, name, nl);
    o += nl;
    memcpy(o, ": ", 2);
    o += 2;
    memcpy(o, value, vl);
    o += vl;
    memcpy(o, "\r\n", 2);
    r->out_len = need;
    r->n_out++;
    return 0;
}

void http_respond(struct http_request *r, int status, const char *content_type, const void *body,
                  size_t len)
{
    if (!r) {
        return;
    }
    if (status < 200 || status > 599) {
        log_err("http: handler answered with status %d; sending 500", status);
        status = 500;
        content_type = NULL;
        len = 0;
    }

    struct http_conn *c = r->conn;
    if (!c) {
        request_free(r);
        return;
    }
    if (c->state != CONN_HANDLING || c->req != r) {
        /* A second answer to one request: a front-end bug, not worth the daemon. */
        log_err("http: connection %llu: request answered twice", (unsigned long long)c->id);
        return;
    }
    struct http_server *s = c->s;

    bool is_keep_alive = r->is_keep_alive && !c->is_close_after && !s->is_draining;
    c->is_close_after = !is_keep_alive;
    /* RFC 9110 §6.4.1 and §8.6: 204 and 304 carry no body and 204 no Content-Length. */
    bool is_bodyless = status == 204 || status == 304;
    if (is_bodyless) {
        len = 0;
        content_type = NULL;
    }
    bool is_sending_body = len > 0 && r->method != HTTP_METHOD_HEAD;

    char head[256];
    int n;
    if (is_bodyless) {
        n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: %s\r\n", status,
                     http_status_reason(status), server_date(s),
                     is_keep_alive ? "keep-alive" : "close");
    } else {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Length: %zu\r\nConnection: %s\r\n",
                     status, http_status_reason(status), server_date(s), len,
                     is_keep_alive ? "keep-alive" : "close");
    }
    char ctype[128];
    int m = 0;
    if (content_type) {
        m = snprintf(ctype, sizeof(ctype), "Content-Type: %s\r\n", content_type);
        if (m < 0 || (size_t)m >= sizeof(ctype)) {
            m = 0; /* a content type this long is a handler bug: leave it out */
        }
    }
    assert(n > 0 && (size_t)n < sizeof(head));

    /*
     * One contiguous buffer, written with SSL_write right away when nothing else is queued:
     * the usual response leaves in one record and one system call, without the write event
     * (two epoll_ctl calls) and the output buffer that a bufferevent write would cost.
     */
    size_t hlen = (size_t)n, send_len = is_sending_body ? len : 0, total;
    if (!size_add(hlen + (size_t)m + 2, r->out_len, &total) || !size_add(total, send_len, &total) ||
        buf_reserve(&c->wbuf, &c->wcap, total, 2048) < 0) {
        log_err("http: connection %llu: out of memory for a response", (unsigned long long)c->id);
        c->state = CONN_WRITING;
        conn_free(c);
        return;
    }
    char *w = c->wbuf;
    memcpy(w, head, hlen);
    w += hlen;
    if (r->out_len) {
        memcpy(w, r->out, r->out_len);
        w += r->out_len;
    }
    if (m > 0) {
        memcpy(w, ctype, (size_t)m);
        w += m;
    }
    memcpy(w, "\r\n", 2);
    w += 2;
    if (send_len) {
        memcpy(w, body, send_len);
    }

    c->state = CONN_WRITING;
    size_t off = 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) == 0) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        while (off < total) {
            size_t chunk =
                total - off < HTTP_DIRECT_WRITE_MAX ? total - off : HTTP_DIRECT_WRITE_MAX;
            ERR_clear_error();
            int wr = SSL_write(ssl, c->wbuf + off, (int)chunk);
            if (wr <= 0) {
                /* Would block (or failed): libevent retries with the same bytes from the output
                 * buffer, and reports a failure as an event. */
                (void)SSL_get_error(ssl, wr);
                ERR_clear_error();
                break;
            }
            off += (size_t)wr;
        }
    }
    if (off == total) {
        /* Done: go on from a callback of its own, never by recursing into the handler. */
        event_active(c->written, EV_WRITE, 0);
        return;
    }
    if (evbuffer_add(out, c->wbuf + off, total - off) < 0) {
        log_err("http: connection %llu: out of memory for a response", (unsigned long long)c->id);
        conn_free(c);
        return;
    }
    arm_timer(c, c->limits.request_timeout);
}

/* ---- the server ---- */

static void server_update_listener(struct http_server *s)
{
    if (!s->listener) {
        return;
    }
    /*
     * At the limit a new client may still come in when it can take an idle keep-alive
     * connection's place: otherwise one client holding every slot open with a request now and
     * then would keep everybody else waiting in the backlog.
     */
    bool has_slot = s->n_conns < s->limits.max_connections || server_oldest_idle(s);
    if (s->n_parked > 0 && s->unpark && (has_slot || s->is_draining || !s->ssl_ctx)) {
        event_active(s->unpark, EV_TIMEOUT, 0);
    }
    bool want = s->ssl_ctx && !s->is_draining && has_slot && s->n_parked == 0 &&
                !(s->accept_retry && event_pending(s->accept_retry, EV_TIMEOUT, NULL));
    if (want && !s->is_listening) {
        s->is_listening = evconnlistener_enable(s->listener) == 0;
    } else if (!want && s->is_listening) {
        (void)evconnlistener_disable(s->listener);
        s->is_listening = false;
    }
}

/* Callbacks and limits of a connection's bufferevent, made at accept or after an offloaded
 * handshake. */
static void conn_setup_bev(struct http_conn *c)
{
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_READ_AHEAD_MAX);
}

/* ---- handshakes on the serial thread ---- */

static void hs_run(void *arg)
{
    struct hs_step *st = arg;
    ERR_clear_error();
    int r = SSL_do_handshake(st->ssl);
    st->result = r == 1 ? 1 : SSL_get_error(st->ssl, r);
    st->why[0] = '\0';
    if (st->result != 1 && st->result != SSL_ERROR_WANT_READ &&
        st->result != SSL_ERROR_WANT_WRITE) {
        unsigned long e = ERR_peek_last_error();
        if (e != 0) {
            ERR_error_string_n(e, st->why, sizeof(st->why));
        }
    }
    /* The queue is per thread: leave nothing for this thread's next job. */
    ERR_clear_error();
}

static void hs_done(void *arg, bool cancelled);

/*
 * Hand c's next handshake step to the serial thread. 0 (queued), -EAGAIN (the worker queue is
 * full: c is untouched), or another -errno, after which c is freed.
 */
static int hs_try_submit(struct http_conn *c)
{
    struct http_server *s = c->s;
    int r = worker_submit(c->hs_pool, WORKER_LANE_SERIAL, hs_run, hs_done, c->hs);
    if (r == -EAGAIN) {
        if (s->hs_retry) {
            const struct timeval tv = { 0, HTTP_HS_RETRY_USEC };
            (void)event_add(s->hs_retry, &tv);
        }
        return r;
    }
    if (r < 0) {
        log_debug("http: connection %llu: cannot queue a handshake step (%s)",
                  (unsigned long long)c->id, strerror(-r));
        conn_free(c);
        return r;
    }
    s->n_hs_running++;
    c->is_hs_running = true;
    return 0;
}

/*
 * Run the next step of c's handshake on the serial thread: at once when fewer than
 * HTTP_HS_INFLIGHT_MAX steps are there and none waits, else after those ahead of it.
 */
static void hs_submit(struct http_conn *c)
{
    struct http_server *s = c->s;
    if (s->n_hs_running >= HTTP_HS_INFLIGHT_MAX || s->hs_wait_first ||
        hs_try_submit(c) == -EAGAIN) {
        hs_wait_push(c);
    }
}

/* Hand waiting steps to the serial thread while there is room, in order. */
static void hs_wait_kick(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;
    (void)fd;
    (void)what;
    while (s->hs_wait_first && s->n_hs_running < HTTP_HS_INFLIGHT_MAX) {
        struct http_conn *c = s->hs_wait_first;
        hs_wait_remove(c);
        if (hs_try_submit(c) == -EAGAIN) {
            /* Back to the front, in its turn; the retry timer runs. */
            c->hs_wait_prev = NULL;
            c->hs_wait_next = s->hs_wait_first;
            *(s->hs_wait_first ? &s->hs_wait_first->hs_wait_prev : &s->hs_wait_last) = c;
            s->hs_wait_first = c;
            c->is_hs_waiting = true;
            break;
        }
    }
}

static void hs_io_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hs_submit(arg);
}

/* The handshake is done: the connection goes on over a bufferevent like any other. */
static void hs_adopt(struct http_conn *c)
{
    struct hs_step *st = TAKE_PTR(c->hs);
    event_free(c->hs_io);
    c->hs_io = NULL;
    /*
     * BEV_OPT_CLOSE_ON_FREE: from here libevent owns the SSL and the socket. On failure it frees
     * the SSL, whose socket BIO (SSL_set_fd) does not close the descriptor: that is ours.
     */
    int fd = st->fd;
    c->bev = bufferevent_openssl_socket_new(c->s->base, fd, st->ssl, BUFFEREVENT_SSL_OPEN,
                                            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    free(st);
    if (!c->bev) {
        (void)close(fd);
    }
    if (!c->bev || bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0) {
        log_warning("http: out of memory after a handshake");
        conn_free(c);
        return;
    }
    conn_setup_bev(c);
    conn_handshake_done(c);
}

static void hs_done(void *arg, bool cancelled)
{
    struct hs_step *st = arg;
    struct http_conn *c = st->c;
    if (!c) {
        hs_step_free(st); /* the connection was freed while the step ran */
        return;
    }
    c->is_hs_running = false;
    c->s->n_hs_running--;
    hs_wait_schedule(c->s);
    if (cancelled) {
        conn_free(c);
        return;
    }
    switch (st->result) {
    case 1:
        hs_adopt(c);
        return;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        if (event_assign(c->hs_io, c->s->base, st->fd,
                         st->result == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE, hs_io_cb, c) < 0 ||
            event_add(c->hs_io, NULL) < 0) {
            conn_free(c);
        }
        return;
    default:
        log_debug("http: connection %llu: tls: %s", (unsigned long long)c->id,
                  st->why[0] ? st->why : "handshake failed");
        conn_free(c);
        return;
    }
}

/* Start serving fd, accepted from addr: there is a free slot, or an idle connection to close. */
static void server_take(struct http_server *s, int fd, struct sockaddr *addr)
{
    if (s->n_conns >= s->limits.max_connections) {
        struct http_conn *idle = server_oldest_idle(s);
        if (!idle) {
            (void)close(fd); /* the callers checked: not reached */
            return;
        }
        /* Closing an idle keep-alive connection is always allowed (RFC 9112 §9.6). */
        log_debug("http: connection limit reached, closing idle connection %" PRIu64, idle->id);
        conn_close(idle, false);
    }
    if (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) {
        /* Responses go out whole in one write; waiting for Nagle only adds latency. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }

    struct http_conn *c = conn_new(s);
    SSL *ssl = c ? SSL_new(s->ssl_ctx) : NULL;
    if (!ssl) {
        (void)close(fd);
        conn_discard(c);
        ERR_clear_error();
        log_warning("http: out of memory accepting a connection");
        return;
    }
    if (s->hs_pool) {
        /* The handshake signs with a provider-held key: it runs on the serial thread. */
        c->hs = calloc(1, sizeof(*c->hs));
        c->hs_io = c->hs ? event_new(s->base, fd, EV_READ, hs_io_cb, c) : NULL;
        if (!c->hs_io || SSL_set_fd(ssl, fd) != 1) {
            SSL_free(ssl);
            (void)close(fd);
            free(c->hs);
            c->hs = NULL;
            if (c->hs_io) {
                event_free(c->hs_io);
                c->hs_io = NULL;
            }
            conn_discard(c);
            ERR_clear_error();
            log_warning("http: out of memory accepting a connection");
            return;
        }
        SSL_set_accept_state(ssl);
        c->hs_pool = s->hs_pool;
        c->hs->c = c;
        c->hs->ssl = ssl;
        c->hs->fd = fd;
    } else {
        /* BEV_OPT_CLOSE_ON_FREE: libevent frees the SSL (even on failure here) and the socket. */
        c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (!c->bev) {
            (void)close(fd);
            conn_discard(c);
            log_warning("http: out of memory accepting a connection");
            return;
        }
        conn_setup_bev(c);
    }

    if (addr->sa_family == AF_INET) {
        (void)inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)addr)->sin_addr, c->req->peer,
                        sizeof(c->req->peer));
    } else if (addr->sa_family == AF_INET6) {
        (void)inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)addr)->sin6_addr, c->req->peer,
                        sizeof(c->req->peer));
    } else {
        (void)snprintf(c->req->peer, sizeof(c->req->peer), "local");
    }

    c->next = s->conns;
    if (s->conns) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->n_conns++;
    c->state = CONN_HANDSHAKE;
    arm_timer(c, c->limits.request_timeout);
    if (c->hs) {
        /* TCP_DEFER_ACCEPT: the ClientHello is usually there already. */
        hs_submit(c);
    } else if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) < 0) {
        conn_free(c);
        return;
    }
    server_update_listener(s);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
                      int addrlen, void *arg)
{
    struct http_server *s = arg;
    (void)l;

    if (!s->ssl_ctx || s->is_draining) {
        (void)close(fd);
        return;
    }
    if ((s->n_conns >= s->limits.max_connections && !server_oldest_idle(s)) || s->n_parked > 0) {
        /*
         * No slot after all: the listener was enabled while one was free, and this newcomer
         * came in the same loop iteration as the request that took it (deferred callbacks run
         * after the accept). It waits for a slot, as it would have in the backlog.
         */
        if (s->n_parked < HTTP_PARKED_MAX && addrlen > 0 &&
            (size_t)addrlen <= sizeof(s->parked[0].addr)) {
            struct parked *p = &s->parked[s->n_parked++];
            p->fd = fd;
            memset(&p->addr, 0, sizeof(p->addr));
            memcpy(&p->addr, addr, (size_t)addrlen);
            log_debug("http: connection limit reached: a newcomer waits for a slot");
        } else {
            log_debug("http: connection limit reached: a newcomer is closed");
            (void)close(fd);
        }
        server_update_listener(s);
        return;
    }
    server_take(s, fd, addr);
}

/* Parked newcomers take the slots that freed, in arrival order. */
static void unpark_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;
    (void)fd;
    (void)what;
    while (s->n_parked > 0) {
        if (!s->ssl_ctx || s->is_draining) {
            while (s->n_parked > 0) {
                (void)close(s->parked[--s->n_parked].fd);
            }
            break;
        }
        if (s->n_conns >= s->limits.max_connections && !server_oldest_idle(s)) {
            break;
        }
        struct parked p = s->parked[0];
        s->n_parked--;
        memmove(&s->parked[0], &s->parked[1], s->n_parked * sizeof(s->parked[0]));
        server_take(s, p.fd, (struct sockaddr *)&p.addr);
    }
    server_update_listener(s);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    server_update_listener(arg);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct http_server *s = arg;
    int e = errno;
    (void)l;
    /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the socket stays readable, so pause instead of spin. */
    log_warning("http: accept: %s; pausing for %d s", strerror(e), HTTP_ACCEPT_RETRY_SECONDS);
    if (s->accept_retry) {
        struct timeval tv = { .tv_sec = HTTP_ACCEPT_RETRY_SECONDS, .tv_usec = 0 };
        (void)event_add(s->accept_retry, &tv);
    }
    server_update_listener(s);
}

static bool limits_ok(const struct http_limits *l)
{
    /* Header bytes bound the arena, whose offsets are 32-bit. */
    return l->max_body > 0 && l->max_body < SIZE_MAX / 2 && l->max_headers_size > 0 &&
           l->max_headers_size <= HTTP_HEADERS_SIZE_HARD_MAX && l->max_connections > 0 &&
           l->idle_timeout > 0 && l->request_timeout > 0;
}

int http_server_new(struct event_base *base, const struct http_limits *limits,
                    http_handler_fn handler, void *userdata, struct http_server **ret)
{
    assert_return(base && limits && handler && ret, -EINVAL);
    assert_return(limits_ok(limits), -EINVAL);

    struct http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        return -ENOMEM;
    }
    s->base = base;
    s->limits = *limits;
    s->handler = handler;
    s->userdata = userdata;
    s->accept_retry = evtimer_new(base, accept_retry_cb, s);
    s->hs_retry = evtimer_new(base, hs_wait_kick, s);
    s->unpark = evtimer_new(base, unpark_cb, s);
    if (!s->accept_retry || !s->hs_retry || !s->unpark) {
        if (s->accept_retry) {
            event_free(s->accept_retry);
        }
        if (s->hs_retry) {
            event_free(s->hs_retry);
        }
        if (s->unpark) {
            event_free(s->unpark);
        }
        free(s);
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

static int listen_socket(const struct sockaddr *addr, socklen_t addrlen)
{
    _cleanup_close_ int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
        return -errno;
    }
    /* TLS clients speak first: wake us when the ClientHello is there, not at the SYN. */
    int secs = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs));
    if (bind(fd, addr, addrlen) < 0 || listen(fd, HTTP_BACKLOG) < 0) {
        return -errno;
    }
    return TAKE_FD(fd);
}

static int adopt_socket(int fd)
{
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0) {
        return -errno;
    }
    if (!v) {
        return -EINVAL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return -errno;
    }
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
        return -errno;
    }
    return fd;
}

int http_server_listen(struct http_server *s, const struct sockaddr *addr, socklen_t addrlen,
                       int fd)
{
    assert_return(s && !s->listener, -EINVAL);
    assert_return(fd >= 0 || (addr && addrlen > 0), -EINVAL);

    int lfd = fd >= 0 ? adopt_socket(fd) : listen_socket(addr, addrlen);
    if (lfd < 0) {
        return lfd;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0) {
        int r = -errno;
        if (fd < 0) {
            (void)close(lfd);
        }
        return r;
    }
    /* Backlog 0: the socket already listens (ours, or systemd's). */
    s->listener = evconnlistener_new(
        s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, 0,
        lfd);
    if (!s->listener) {
        if (fd < 0) {
            (void)close(lfd);
        }
        return -ENOMEM;
    }
    evconnlistener_set_error_cb(s->listener, accept_error_cb);
    if (ss.ss_family == AF_INET) {
        s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    server_update_listener(s);
    return 0;
}

uint16_t http_server_port(const struct http_server *s)
{
    return s ? s->port : 0;
}

void http_server_set_ssl_ctx_ex(struct http_server *s, SSL_CTX *ctx, struct worker_pool *pool)
{
    if (!s) {
        return;
    }
    if (ctx && SSL_CTX_up_ref(ctx) != 1) {
        return;
    }
    /* Open connections hold their own reference (through their SSL). */
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = ctx;
    s->hs_pool = ctx ? pool : NULL;
    server_update_listener(s);
}

void http_server_set_limits(struct http_server *s, const struct http_limits *limits)
{
    if (!s || !limits || !limits_ok(limits)) {
        return;
    }
    s->limits = *limits;
    server_update_listener(s);
}

void http_server_drain(struct http_server *s, void (*done)(void *arg), void *arg)
{
    if (!s) {
        return;
    }
    s->is_draining = true;
    s->drain_done = done;
    s->drain_arg = arg;
    server_update_listener(s);
    struct http_conn *next;
    for (struct http_conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->state == CONN_HANDSHAKE) {
            conn_free(c);
        } else if (c->state == CONN_IDLE) {
            conn_close(c, false);
        }
    }
    server_check_drained(s);
}

unsigned http_server_n_connections(const struct http_server *s)
{
    return s ? s->n_conns : 0;
}

void http_server_on_close(struct http_server *s, void (*fn)(void *arg), void *arg)
{
    if (s) {
        s->closed = fn;
        s->closed_arg = arg;
    }
}

struct http_server *http_server_free(struct http_server *s)
{
    if (!s) {
        return NULL;
    }
    s->drain_done = NULL;
    s->closed = NULL;
    while (s->conns) {
        conn_free(s->conns);
    }
    if (s->listener) {
        evconnlistener_free(s->listener);
    }
    event_free(s->accept_retry);
    event_free(s->hs_retry);
    event_free(s->unpark);
    while (s->n_parked > 0) {
        (void)close(s->parked[--s->n_parked].fd);
    }
    SSL_CTX_free(s->ssl_ctx);
    free(s);
    return NULL;
}

/* ---- request accessors ---- */

int http_request_error(const struct http_request *r)
{
    return r->error;
}

enum http_method http_request_method(const struct http_request *r)
{
    return r->method;
}

const char *http_request_method_name(const struct http_request *r)
{
    return r->method_name;
}

const char *http_request_path(const struct http_request *r)
{
    return r->path;
}

const char *http_request_query(const struct http_request *r)
{
    return r->query;
}

const char *http_request_header(const struct http_request *r, const char *name)
{
    return name ? header_get(r, name) : NULL;
}

unsigned http_request_header_count(const struct http_request *r, const char *name)
{
    return name ? header_count(r, name) : 0;
}

struct span http_request_body(const struct http_request *r)
{
    return r->body_len > 0 ? span_make(r->body, r->body_len) : SPAN_EMPTY;
}

const char *http_request_peer(const struct http_request *r)
{
    return r->peer;
}

SSL *http_request_ssl(const struct http_request *r)
{
    if (!r->conn || !r->conn->bev) {
        return NULL;
    }
    return bufferevent_openssl_get_ssl(r->conn->bev);
}

bool http_request_is_gone(const struct http_request *r)
{
    return !r->conn;
}

uint64_t http_request_connection_id(const struct http_request *r)
{
    return r->conn_id;
}

const char *http_status_reason(int status)
{
    const char *s = http_status_str((enum http_status)status);
    return s && s[0] != '<' ? s : "Unknown";
}

const char *http_method_name(enum http_method m)
{
    static const char *const names[HTTP_METHOD_MAX] = {
        [HTTP_METHOD_GET] = "GET",         [HTTP_METHOD_HEAD] = "HEAD",
        [HTTP_METHOD_POST] = "POST",       [HTTP_METHOD_PUT] = "PUT",
        [HTTP_METHOD_PATCH] = "PATCH",     [HTTP_METHOD_DELETE] = "DELETE",
        [HTTP_METHOD_OPTIONS] = "OPTIONS", [HTTP_METHOD_OTHER] = "OTHER",
    };
    return (unsigned)m < HTTP_METHOD_MAX ? names[m] : "UNKNOWN";
}
