/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http: a real server on 127.0.0.1 (port 0) whose event loop runs in a thread of its own,
 * driven by blocking OpenSSL clients from the test's thread (where cmocka may assert). The
 * test talks to the loop only through a socketpair of commands (swap the context, drain,
 * count connections, answer a held request), so that every server call stays on the loop
 * thread as http.h requires. Covered: requests and their parts, keep-alive, pipelining order,
 * HEAD, 204/304, 100-continue, every limit at N and N+1, errors the server finds itself (each
 * answered through the handler, then the connection closed), deadlines and timeouts with
 * 1-second limits, the connection limit, asynchronous answers, clients that vanish, the
 * SSL_CTX swap and draining.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http.h"
#include "issue/issue.h"
#include "log/log.h"
#include "testutil.h"
#include "tls.h"
#include "worker.h"

#define MAX_BODY    1024u
#define MAX_HEADERS 4096u

/* ---- the server, in its loop thread ---- */

enum cmd_op {
    CMD_QUIT,
    CMD_SWAP,       /* use context B for new connections */
    CMD_DRAIN,      /* http_server_drain */
    CMD_DRAINED,    /* 1 once drain's done ran */
    CMD_NCONN,      /* http_server_n_connections */
    CMD_HELD,       /* 0: no held request, 1: held, 2: held and its client is gone */
    CMD_RELEASE,    /* answer the held request */
    CMD_ASYNC,      /* asynchronous answers not yet sent */
    CMD_ASYNC_GONE, /* asynchronous answers that found their client gone */
    CMD_CLOSED,     /* on-close calls made with no connection left open */
};

struct srv {
    struct event_base *base;
    struct http_server *http;
    struct worker_pool *pool; /* offload mode: handshakes run on its serial thread */
    struct tls_tickets *tickets;
    X509 *cert_a, *cert_b;
    SSL_CTX *ctx_a, *ctx_b;
    pthread_t thread;
    bool is_running; /* the loop thread runs */
    int cmd[2];
    struct event *cmd_ev;
    uint16_t port;
    /* loop thread only */
    long n_closed;
    struct http_request *held;
    bool is_drained;
    unsigned n_async;
    unsigned n_async_gone;
    unsigned n_handled;
};

static struct srv S;
static SSL_CTX *client_ctx;
/*
 * Tests run twice: as they are, and with every handshake offloaded to a worker pool's serial
 * thread (http_server_set_ssl_ctx_ex), as the daemon does for a key a TPM holds.
 */
static bool is_offload;

struct async {
    struct event *ev;
    struct http_request *req;
};

static void async_cb(evutil_socket_t fd, short what, void *arg)
{
    struct async *a = arg;
    (void)fd;
    (void)what;
    if (http_request_is_gone(a->req)) {
        S.n_async_gone++;
    }
    static const char msg[] = "async done";
    http_respond(a->req, 200, "text/plain", msg, sizeof(msg) - 1);
    event_free(a->ev);
    free(a);
    S.n_async--;
}

static unsigned num(const char *s)
{
    unsigned v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned)(*s - '0');
    }
    return v;
}

/* The response header API, exercised from inside a handler. */
static void handle_headers(struct http_request *r)
{
    char body[256];
    int one = http_response_header(r, "X-One", "1");
    int crlf = http_response_header(r, "X-Bad", "a\r\nSet-Cookie: x");
    int nul_name = http_response_header(r, "Bad Name", "x");
    int empty_name = http_response_header(r, "", "x");
    int cl = http_response_header(r, "content-length", "5");
    int conn = http_response_header(r, "Connection", "close");
    int fill = 0;
    for (int i = 2; i <= (int)HTTP_RESPONSE_HEADERS_MAX && fill == 0; i++) {
        char name[16];
        (void)snprintf(name, sizeof(name), "X-H%d", i);
        fill = http_response_header(r, name, "\tv");
    }
    int over = http_response_header(r, "X-Over", "1");
    int n = snprintf(body, sizeof(body),
                     "one=%d crlf=%d name=%d empty=%d cl=%d conn=%d fill=%d over=%d", one, crlf,
                     nul_name, empty_name, cl, conn, fill, over);
    http_respond(r, 200, "text/plain", body, (size_t)n);
}

/* Echo what the server parsed, so that the client can check it. */
static void handle_echo(struct http_request *r)
{
    char out[1024];
    struct span b = http_request_body(r);
    const char *q = http_request_query(r);
    const char *x = http_request_header(r, "x-test");
    const char *host = http_request_header(r, "HOST");
    /* The body is followed by a NUL (http.h). */
    bool is_nul_ok = b.len == 0 || b.p[b.len] == '\0';
    int n = snprintf(out, sizeof(out), "M=%s m=%s P=%s Q=%s X=%s XN=%u H=%s B=%zu nul=%d body=%.*s",
                     http_request_method_name(r), http_method_name(http_request_method(r)),
                     http_request_path(r), q ? q : "(none)", x ? x : "(none)",
                     http_request_header_count(r, "X-Test"), host ? host : "(none)", b.len,
                     is_nul_ok, (int)(b.len > 64 ? 64 : b.len), b.p ? (const char *)b.p : "");
    assert(n > 0);
    /* A 2 KiB path is cut short: the echo keeps its beginning. */
    size_t len = (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1;
    http_respond(r, 200, "text/plain", out, len);
}

static void handler(struct http_request *r, void *userdata)
{
    struct srv *s = userdata;
    s->n_handled++;
    assert(strcmp(http_request_peer(r), "127.0.0.1") == 0);
    assert(http_request_connection_id(r) > 0);
    assert(!http_request_is_gone(r));

    int e = http_request_error(r);
    if (e) {
        char b[64];
        int n = snprintf(b, sizeof(b), "error %d path=[%s]", e, http_request_path(r));
        http_respond(r, e, "text/plain", b, (size_t)n);
        return;
    }
    const char *path = http_request_path(r);
    if (strcmp(path, "/hold") == 0) {
        s->held = r;
        return;
    }
    if (strncmp(path, "/async/", 7) == 0) {
        struct async *a = calloc(1, sizeof(*a));
        assert(a);
        a->req = r;
        a->ev = evtimer_new(s->base, async_cb, a);
        assert(a->ev);
        unsigned ms = num(path + 7);
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
        (void)evtimer_add(a->ev, &tv);
        s->n_async++;
        return;
    }
    if (strncmp(path, "/status/", 8) == 0) {
        http_respond(r, (int)num(path + 8), "text/plain", "ignored", 7);
        return;
    }
    if (strncmp(path, "/big/", 5) == 0) {
        size_t n = num(path + 5);
        char *b = malloc(n);
        assert(b);
        for (size_t i = 0; i < n; i++) {
            b[i] = (char)('a' + i % 26);
        }
        http_respond(r, 200, "application/octet-stream", b, n);
        free(b);
        return;
    }
    if (strcmp(path, "/headers") == 0) {
        handle_headers(r);
        return;
    }
    handle_echo(r);
}

/* Counts the calls that came once their connection no longer counted as open (a test that
 * closes one connection at a time sees 0 open every time). */
static void closed_cb(void *arg)
{
    struct srv *s = arg;
    if (http_server_n_connections(s->http) == 0) {
        s->n_closed++;
    }
}

static void drained_cb(void *arg)
{
    struct srv *s = arg;
    s->is_drained = true;
}

static void cmd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct srv *s = arg;
    (void)what;
    int op;
    if (read(fd, &op, sizeof(op)) != (ssize_t)sizeof(op)) {
        return;
    }
    long reply = 0;
    switch ((enum cmd_op)op) {
    case CMD_QUIT:
        (void)event_base_loopbreak(s->base);
        break;
    case CMD_SWAP:
        http_server_set_ssl_ctx_ex(s->http, s->ctx_b, s->pool);
        break;
    case CMD_DRAIN:
        http_server_drain(s->http, drained_cb, s);
        break;
    case CMD_DRAINED:
        reply = s->is_drained;
        break;
    case CMD_NCONN:
        reply = http_server_n_connections(s->http);
        break;
    case CMD_HELD:
        reply = !s->held ? 0 : http_request_is_gone(s->held) ? 2 : 1;
        break;
    case CMD_RELEASE:
        if (s->held) {
            http_respond(s->held, 200, "text/plain", "released", 8);
            s->held = NULL;
            reply = 1;
        }
        break;
    case CMD_ASYNC:
        reply = s->n_async;
        break;
    case CMD_ASYNC_GONE:
        reply = s->n_async_gone;
        break;
    case CMD_CLOSED:
        reply = s->n_closed;
        break;
    }
    if (write(fd, &reply, sizeof(reply)) != (ssize_t)sizeof(reply)) {
        abort();
    }
}

static long cmd(enum cmd_op op)
{
    int o = (int)op;
    long reply = -1;
    assert_int_equal(write(S.cmd[0], &o, sizeof(o)), sizeof(o));
    assert_int_equal(read(S.cmd[0], &reply, sizeof(reply)), sizeof(reply));
    return reply;
}

/* Poll the loop until op answers want (at most 5 s: generous, never the expected path). */
static void cmd_wait(enum cmd_op op, long want)
{
    for (int i = 0; i < 1000; i++) {
        if (cmd(op) == want) {
            return;
        }
        (void)usleep(5000);
    }
    fail_msg("command %d never answered %ld", (int)op, want);
}

static void *loop_thread(void *arg)
{
    (void)event_base_dispatch(arg);
    return NULL;
}

static X509 *make_cert(const char *cn)
{
    struct selfsign_request req = { .common_name = cn, .days = 2, .now = (int64_t)time(NULL) - 60 };
    X509 *cert = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(issue_selfsigned(NULL, NULL, fixture_keys.p256, &req, &cert, &err), 0);
    return cert;
}

static SSL_CTX *make_ctx(X509 *cert)
{
    SSL_CTX *ctx = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(tls_ctx_new(NULL, NULL, CONFIG_TLS_INTERMEDIATE, cert, NULL, fixture_keys.p256,
                                 S.tickets, &ctx, &err),
                     0);
    return ctx;
}

static struct http_limits limits_default(void)
{
    return (struct http_limits){
        .max_body = MAX_BODY,
        .max_headers_size = MAX_HEADERS,
        .max_connections = 16,
        .idle_timeout = 10,
        .request_timeout = 10,
    };
}

static void srv_start(const struct http_limits *limits)
{
    S = (struct srv){ 0 };
    S.base = event_base_new();
    assert_non_null(S.base);
    S.tickets = tls_tickets_new();
    assert_non_null(S.tickets);
    S.cert_a = make_cert("a.test");
    S.cert_b = make_cert("b.test");
    S.ctx_a = make_ctx(S.cert_a);
    S.ctx_b = make_ctx(S.cert_b);
    assert_int_equal(http_server_new(S.base, limits, handler, &S, &S.http), 0);
    if (is_offload) {
        assert_int_equal(worker_pool_new(S.base, 1, &S.pool), 0);
    }
    http_server_set_ssl_ctx_ex(S.http, S.ctx_a, S.pool);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(http_server_listen(S.http, (struct sockaddr *)&sin, sizeof(sin), -1), 0);
    http_server_on_close(S.http, closed_cb, &S);
    S.port = http_server_port(S.http);
    assert_true(S.port > 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, S.cmd), 0);
    S.cmd_ev = event_new(S.base, S.cmd[1], EV_READ | EV_PERSIST, cmd_cb, &S);
    assert_non_null(S.cmd_ev);
    assert_int_equal(event_add(S.cmd_ev, NULL), 0);
    assert_int_equal(pthread_create(&S.thread, NULL, loop_thread, S.base), 0);
    S.is_running = true;
}

/* End the loop thread: from then on the test's thread may call the server itself. */
static void srv_quit(void)
{
    (void)cmd(CMD_QUIT);
    assert_int_equal(pthread_join(S.thread, NULL), 0);
    S.is_running = false;
}

static void srv_stop(void)
{
    if (S.is_running) {
        assert_int_equal(cmd(CMD_ASYNC), 0);
        srv_quit();
    }
    assert_null(S.held);
    S.http = http_server_free(S.http);
    /* After the server: a handshake step still running ends in its done, which cleans up. */
    S.pool = worker_pool_free(S.pool);
    event_free(S.cmd_ev);
    (void)close(S.cmd[0]);
    (void)close(S.cmd[1]);
    /* Runs libevent's pending finalizers: the freed connections' sockets and SSLs. */
    event_base_free(S.base);
    SSL_CTX_free(S.ctx_a);
    SSL_CTX_free(S.ctx_b);
    X509_free(S.cert_a);
    X509_free(S.cert_b);
    tls_tickets_free(S.tickets);
    S = (struct srv){ 0 };
}

/* Most tests run on a server with the default limits; the others start theirs themselves. */
static int srv_setup(void **state)
{
    (void)state;
    struct http_limits l = limits_default();
    srv_start(&l);
    return 0;
}

/* Every test that starts a server: stopped (and freed) even after a failure. */
static int srv_teardown(void **state)
{
    (void)state;
    if (S.base) {
        srv_stop();
    }
    is_offload = false;
    return 0;
}

static int srv_setup_offload(void **state)
{
    is_offload = true;
    return srv_setup(state);
}

static int offload_only(void **state)
{
    (void)state;
    is_offload = true;
    return 0;
}

/* ---- clients: blocking OpenSSL sockets ---- */

#define CL_BUF (4u * 1024u * 1024u)

struct cl {
    int fd;
    SSL *ssl;
    char *buf;
    size_t len;
};

struct resp {
    int status;
    char head[8192];
    char *body;
    size_t body_len;
};

static int tcp_connect_rcvbuf(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0) {
        /* A small window: the server's writes block until the client reads. */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
    }
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    /* A safety net against a hung test, never the expected path. */
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

static int tcp_connect(uint16_t port)
{
    return tcp_connect_rcvbuf(port, 0);
}

static struct cl *cl_new_fd(int fd)
{
    struct cl *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->buf = malloc(CL_BUF);
    assert_non_null(c->buf);
    c->fd = fd;
    c->ssl = SSL_new(client_ctx);
    assert_non_null(c->ssl);
    assert_int_equal(SSL_set_fd(c->ssl, fd), 1);
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r != 1) {
        fail_msg("SSL_connect: %d", SSL_get_error(c->ssl, r));
    }
    return c;
}

static struct cl *cl_new(void)
{
    return cl_new_fd(tcp_connect(S.port));
}

static void cl_free(struct cl *c)
{
    if (c) {
        SSL_free(c->ssl);
        (void)close(c->fd);
        free(c->buf);
        free(c);
    }
}

static void cl_send(struct cl *c, const void *p, size_t n)
{
    while (n > 0) {
        ERR_clear_error();
        int w = SSL_write(c->ssl, p, n > 16384 ? 16384 : (int)n);
        assert_true(w > 0);
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

static void cl_sends(struct cl *c, const char *s)
{
    cl_send(c, s, strlen(s));
}

/* More bytes into the buffer: > 0 read, 0 the connection ended, -1 nothing came (timeout). */
static int cl_fill(struct cl *c)
{
    assert_true(c->len < CL_BUF);
    ERR_clear_error();
    int n = SSL_read(c->ssl, c->buf + c->len, (int)(CL_BUF - c->len));
    if (n > 0) {
        c->len += (size_t)n;
        return n;
    }
    int e = SSL_get_error(c->ssl, n);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_READ ? -1 : 0;
}

static bool cl_is_eof(struct cl *c)
{
    return c->len == 0 && cl_fill(c) == 0;
}

static const char *resp_header(const struct resp *r, const char *name, char *buf, size_t size)
{
    char pat[64];
    (void)snprintf(pat, sizeof(pat), "\r\n%s: ", name);
    const char *p = strcasestr(r->head, pat);
    if (!p) {
        return NULL;
    }
    p += strlen(pat);
    const char *e = strstr(p, "\r\n");
    assert_non_null(e);
    size_t n = (size_t)(e - p);
    assert_true(n < size);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* Read one response; -1 when the connection ended before one began. */
static int cl_response(struct cl *c, struct resp *r, bool is_head)
{
    free(r->body);
    *r = (struct resp){ 0 };
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
        int n = cl_fill(c);
        if (n <= 0) {
            assert_int_equal(c->len, 0);
            return -1;
        }
    }
    size_t hlen = (size_t)(end - c->buf) + 4;
    assert_true(hlen < sizeof(r->head));
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    assert_memory_equal(r->head, "HTTP/1.1 ", 9);
    r->status = (int)num(r->head + 9);

    char v[64];
    const char *cl = resp_header(r, "Content-Length", v, sizeof(v));
    size_t body_len = 0;
    if (!is_head && r->status >= 200 && r->status != 204 && r->status != 304) {
        assert_non_null(cl);
        body_len = num(cl);
    }
    while (c->len < hlen + body_len) {
        assert_true(cl_fill(c) > 0);
    }
    r->body = malloc(body_len + 1);
    assert_non_null(r->body);
    memcpy(r->body, c->buf + hlen, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;
    memmove(c->buf, c->buf + hlen + body_len, c->len - hlen - body_len);
    c->len -= hlen + body_len;
    return 0;
}

static void resp_done(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

static bool resp_has(const struct resp *r, const char *name, const char *value)
{
    char v[256];
    const char *got = resp_header(r, name, v, sizeof(v));
    return got && strcmp(got, value) == 0;
}

/* One request on c; the response must have status and (when given) a body containing want. */
static void exchange(struct cl *c, const char *req, int status, const char *want)
{
    struct resp r = { 0 };
    cl_sends(c, req);
    assert_int_equal(cl_response(c, &r, false), 0);
    if (r.status != status || (want && !strstr(r.body, want))) {
        fail_msg("request %.40s: %d %s", req, r.status, r.body);
    }
    resp_done(&r);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- tests ---- */

static void test_get_post_keepalive(void **state)
{
    (void)state;
    struct cl *c = cl_new();
    struct resp r = { 0 };

    cl_sends(
        c, "GET /a%20b/c?x=1&y=%41 HTTP/1.1\r\nHost: example\r\nX-Test:   spaced value \t\r\n\r\n");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_has(&r, "Connection", "keep-alive"));
    assert_true(resp_has(&r, "Content-Type", "text/plain"));
    char date[64];
    assert_non_null(resp_header(&r, "Date", date, sizeof(date)));
    assert_int_equal(strlen(date), 29);
    assert_non_null(strstr(date, " GMT"));
    assert_non_null(
        strstr(r.body, "M=GET m=GET P=/a b/c Q=x=1&y=%41 X=spaced value XN=1 H=example B=0"));

    /* Second request on the same connection: a POST with a body and repeated headers. */
    cl_sends(c, "POST /p HTTP/1.1\r\nHost: h\r\nX-Test: one\r\nx-test: two\r\n"
                "Content-Length: 11\r\n\r\nhello world");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(
        strstr(r.body, "M=POST m=POST P=/p Q=(none) X=one XN=2 H=h B=11 nul=1 body=hello world"));

    /* Methods the front ends must refuse themselves arrive as OTHER. */
    exchange(c, "TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", 200, "M=TRACE m=OTHER");
    exchange(c, "PATCH /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}", 200,
             "M=PATCH m=PATCH P=/x");
    exchange(c, "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", 200, "m=DELETE");
    /* An empty value is an empty string, not a missing header. */
    exchange(c, "GET /e HTTP/1.1\r\nX-Test:\r\nHost: h\r\n\r\n", 200, "P=/e Q=(none) X= XN=1 H=h");
    exchange(c, "GET /e HTTP/1.1\r\nHost: h\r\nX-Test:  \r\n\r\n", 200,
             "P=/e Q=(none) X= XN=1 H=h");
    exchange(c, "OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n", 200, "m=OPTIONS");
    exchange(c, "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 200, "m=PUT");

    /* A chunked body within the limit. */
    exchange(c,
             "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
             200, "P=/c Q=(none) X=(none) XN=0 H=h B=11 nul=1 body=hello world");

    /* A large response. */
    cl_sends(c, GET("/big/100000"));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 100000);
    for (size_t i = 0; i < r.body_len; i++) {
        if (r.body[i] != (char)('a' + i % 26)) {
            fail_msg("byte %zu", i);
        }
    }
    /* Still the same connection. */
    assert_int_equal(cmd(CMD_NCONN), 1);
    resp_done(&r);
    cl_free(c);
}

/* A response larger than the socket takes at once: the rest goes out as the client reads. */
static void test_large_response_backpressure(void **state)
{
    (void)state;
    struct http_limits l = limits_default();
    l.request_timeout = 1;
    srv_start(&l);
    struct resp r = { 0 };

    struct cl *c = cl_new_fd(tcp_connect_rcvbuf(S.port, 4096));
    cl_sends(c, GET("/big/3000000"));
    /* The server is blocked on the full socket now; reading drains it. */
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 3000000);
    for (size_t i = 0; i < r.body_len; i += 4099) {
        assert_int_equal(r.body[i], (char)('a' + i % 26));
    }
    exchange(c, GET("/next"), 200, "P=/next ");
    cl_free(c);

    /* A client that never reads: the write timeout closes the connection. */
    c = cl_new_fd(tcp_connect_rcvbuf(S.port, 4096));
    cl_sends(c, GET("/big/3000000"));
    cmd_wait(CMD_NCONN, 0);
    cl_free(c);

    resp_done(&r);
}

static void test_connection_close_and_http10(void **state)
{
    (void)state;
    struct resp r = { 0 };
    cmd_wait(CMD_NCONN, 0);
    long closed = cmd(CMD_CLOSED);

    struct cl *c = cl_new();
    cl_sends(c, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cl_is_eof(c));
    cl_free(c);

    /* HTTP/1.0: close by default, keep-alive on request, Host optional. */
    c = cl_new();
    cl_sends(c, "GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_true(resp_has(&r, "Connection", "keep-alive"));
    assert_non_null(strstr(r.body, "P=/ten"));
    cl_sends(c, "GET /ten2 HTTP/1.0\r\n\r\n");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_true(resp_has(&r, "Connection", "close"));
    assert_non_null(strstr(r.body, "P=/ten2 Q=(none) X=(none) XN=0 H=(none)"));
    assert_true(cl_is_eof(c));
    cl_free(c);

    resp_done(&r);
    cmd_wait(CMD_NCONN, 0);
    /* The on-close callback ran once per connection, after it was gone. */
    assert_int_equal(cmd(CMD_CLOSED), closed + 2);
}

static void set_cork(int fd, int on)
{
    assert_int_equal(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)), 0);
}

/*
 * The server reads ahead: one read() takes several TLS records. Records it has read but
 * libevent did not ask for must still be answered: the first request in the same segment as
 * the client's Finished, and several records (one request split across two) in one segment
 * on an idle keep-alive connection. A stall would show as the client's 5 s receive timeout.
 */
static void test_records_in_one_segment(void **state)
{
    (void)state;
    struct resp r = { 0 };
    int fd = tcp_connect(S.port);

    set_cork(fd, 1); /* held until uncorked (the kernel sends anyway after 200 ms) */
    struct cl *c = cl_new_fd(fd);
    cl_sends(c, GET("/r1"));
    set_cork(fd, 0);
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "P=/r1 "));

    set_cork(fd, 1);
    cl_sends(c, GET("/r2"));
    cl_sends(c, "GET /r3 HTTP/1.1\r\nHo");
    cl_sends(c, "st: t\r\n\r\n");
    set_cork(fd, 0);
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_non_null(strstr(r.body, "P=/r2 "));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_non_null(strstr(r.body, "P=/r3 "));
    assert_int_equal(c->len, 0);

    resp_done(&r);
    cl_free(c);
}

static void test_pipelining_order(void **state)
{
    (void)state;
    struct cl *c = cl_new();
    struct resp r = { 0 };

    /* Four requests in one write; the third is answered asynchronously and late. */
    cl_sends(c, GET("/p1") "POST /p2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" GET(
                    "/async/100") "HEAD /p4 HTTP/1.1\r\nHost: t\r\n\r\n" GET("/p5"));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_non_null(strstr(r.body, "P=/p1 "));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_non_null(strstr(r.body, "P=/p2 Q=(none) X=(none) XN=0 H=t B=5 nul=1 body=hello"));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_string_equal(r.body, "async done");
    assert_int_equal(cl_response(c, &r, true), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_non_null(strstr(r.body, "P=/p5 "));
    assert_int_equal(c->len, 0);

    resp_done(&r);
    cl_free(c);
}

static void test_head_and_bodyless(void **state)
{
    (void)state;
    struct cl *c = cl_new();
    struct resp r = { 0 };
    char v[64];

    /* HEAD: the length of the body GET would have, and no body bytes (the next response
     * parses cleanly on the same connection). */
    cl_sends(c, "HEAD /big/1234 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cl_response(c, &r, true), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Length", v, sizeof(v)), "1234");
    assert_true(resp_has(&r, "Content-Type", "application/octet-stream"));

    static const int bodyless[] = { 204, 304 };
    for (size_t i = 0; i < 2; i++) {
        char req[64];
        (void)snprintf(req, sizeof(req), GET("/status/%d"), bodyless[i]);
        cl_sends(c, req);
        assert_int_equal(cl_response(c, &r, false), 0);
        assert_int_equal(r.status, bodyless[i]);
        assert_null(resp_header(&r, "Content-Length", v, sizeof(v)));
        assert_null(resp_header(&r, "Content-Type", v, sizeof(v)));
        assert_true(resp_has(&r, "Connection", "keep-alive"));
    }
    exchange(c, GET("/after"), 200, "P=/after ");
    assert_int_equal(c->len, 0);

    /* Statuses and reasons. */
    cl_sends(c, GET("/status/404"));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_memory_equal(r.head, "HTTP/1.1 404 Not Found\r\n", 24);
    assert_string_equal(r.body, "ignored");
    /* A status no handler may send becomes 500. */
    cl_sends(c, GET("/status/99"));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_memory_equal(r.head, "HTTP/1.1 500 Internal Server Error\r\n", 36);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_reason(799), "Unknown");
    assert_string_equal(http_method_name(HTTP_METHOD_PATCH), "PATCH");
    assert_string_equal(http_method_name(HTTP_METHOD_MAX), "UNKNOWN");

    resp_done(&r);
    cl_free(c);
}

static void test_response_headers(void **state)
{
    (void)state;
    struct cl *c = cl_new();
    struct resp r = { 0 };

    cl_sends(c, GET("/headers"));
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "one=0 crlf=-22 name=-22 empty=-22 cl=-22 conn=-22 fill=0 over=-7");
    assert_true(resp_has(&r, "X-One", "1"));
    assert_true(resp_has(&r, "X-H16", "\tv"));
    assert_null(strstr(r.head, "X-Over"));
    assert_null(strstr(r.head, "Set-Cookie"));
    /* The server's own headers once each. */
    assert_true(resp_has(&r, "Connection", "keep-alive"));
    assert_null(strstr(strstr(r.head, "Connection:") + 1, "Connection:"));

    resp_done(&r);
    cl_free(c);
}

static void test_expect_continue(void **state)
{
    (void)state;
    struct cl *c = cl_new();
    struct resp r = { 0 };

    cl_sends(c,
             "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 100);
    cl_sends(c, "0123456789");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "P=/e Q=(none) X=(none) XN=0 H=t B=10 nul=1 body=0123456789"));

    /* Too large: 413 at once, no 100 Continue. */
    cl_sends(c,
             "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n");
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 413);
    assert_true(cl_is_eof(c));

    resp_done(&r);
    cl_free(c);
}

/* A request (built by the caller) with name: value headers filling exactly total bytes. */
static char *request_of_size(size_t total, size_t n_headers)
{
    char *req = malloc(total + 1);
    assert_non_null(req);
    size_t len = (size_t)snprintf(req, total + 1, "GET /s HTTP/1.1\r\nHost: t\r\n");
    /* Host, n_headers - 2 short ones, and the padding one. */
    for (size_t i = 0; i + 2 < n_headers; i++) {
        len += (size_t)snprintf(req + len, total + 1 - len, "X-%zu: v\r\n", i);
    }
    /* Pad the last header to the size asked for. */
    size_t fixed = len + strlen("X-Pad: \r\n\r\n");
    assert_true(fixed <= total);
    len += (size_t)snprintf(req + len, total + 1 - len, "X-Pad: ");
    memset(req + len, 'p', total - fixed);
    len += total - fixed;
    memcpy(req + len, "\r\n\r\n", 5);
    assert_int_equal(strlen(req), total);
    return req;
}

struct limit_case {
    const char *name;
    char *req;  /* owned */
    int status; /* 200: served and kept open; else an error request, then close */
};

static void run_limit_cases(struct limit_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct cl *c = cl_new();
        struct resp r = { 0 };
        cl_send(c, cases[i].req, strlen(cases[i].req));
        assert_int_equal(cl_response(c, &r, false), 0);
        if (r.status != cases[i].status) {
            fail_msg("%s: status %d (%s)", cases[i].name, r.status, r.body);
        }
        if (cases[i].status == 200) {
            assert_true(resp_has(&r, "Connection", "keep-alive"));
            exchange(c, GET("/again"), 200, "P=/again ");
        } else {
            /* Rendered by the handler: it saw the error and an empty path. */
            char want[64];
            (void)snprintf(want, sizeof(want), "error %d path=[]", cases[i].status);
            if (strcmp(r.body, want) != 0) {
                fail_msg("%s: body %s", cases[i].name, r.body);
            }
            assert_true(resp_has(&r, "Connection", "close"));
            assert_true(cl_is_eof(c));
        }
        resp_done(&r);
        cl_free(c);
        free(cases[i].req);
    }
}

static char *str_dup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

static char *with_body(const char *head, size_t body_len, bool is_chunked)
{
    size_t cap = strlen(head) + body_len * 2 + 256;
    char *req = malloc(cap);
    assert_non_null(req);
    size_t len = (size_t)snprintf(req, cap, "%s", head);
    if (is_chunked) {
        /* Chunks of 100 bytes. */
        for (size_t done = 0; done < body_len;) {
            size_t n = body_len - done < 100 ? body_len - done : 100;
            len += (size_t)snprintf(req + len, cap - len, "%zx\r\n", n);
            memset(req + len, 'b', n);
            len += n;
            len += (size_t)snprintf(req + len, cap - len, "\r\n");
            done += n;
        }
        len += (size_t)snprintf(req + len, cap - len, "0\r\n\r\n");
    } else {
        memset(req + len, 'b', body_len);
        len += body_len;
        req[len] = '\0';
    }
    return req;
}

static void test_limits(void **state)
{
    (void)state;

    char target[HTTP_TARGET_MAX + 64];
    char long_ok[HTTP_TARGET_MAX + 64], long_bad[HTTP_TARGET_MAX + 64];
    memset(target, 'a', sizeof(target));
    target[0] = '/';
    (void)snprintf(long_ok, sizeof(long_ok), "GET %.*s HTTP/1.1\r\nHost: t\r\n\r\n",
                   (int)HTTP_TARGET_MAX, target);
    (void)snprintf(long_bad, sizeof(long_bad), "GET %.*s HTTP/1.1\r\nHost: t\r\n\r\n",
                   (int)HTTP_TARGET_MAX + 1, target);
    char cl_ok[128], cl_bad[128];
    (void)snprintf(cl_ok, sizeof(cl_ok),
                   "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n", MAX_BODY);
    (void)snprintf(cl_bad, sizeof(cl_bad),
                   "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n", MAX_BODY + 1);
    static const char chunked[] =
        "POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";

    struct limit_case cases[] = {
        { "headers size N", request_of_size(MAX_HEADERS, 10), 200 },
        { "headers size N+1", request_of_size(MAX_HEADERS + 1, 10), 431 },
        { "headers size way over", request_of_size(MAX_HEADERS * 3, 10), 431 },
        { "headers count N", request_of_size(1000, HTTP_HEADERS_MAX), 200 },
        { "headers count N+1", request_of_size(1000, HTTP_HEADERS_MAX + 1), 431 },
        { "target N", str_dup(long_ok), 200 },
        { "target N+1", str_dup(long_bad), 414 },
        { "content-length N", with_body(cl_ok, MAX_BODY, false), 200 },
        /* The body is sent all the same: the answer must survive the unread bytes. */
        { "content-length N+1", with_body(cl_bad, MAX_BODY + 1, false), 413 },
        { "content-length huge",
          str_dup("POST /b HTTP/1.1\r\nHost: t\r\n"
                  "Content-Length: 99999999999999\r\n\r\n"),
          413 },
        { "chunked N", with_body(chunked, MAX_BODY, true), 200 },
        { "chunked N+1", with_body(chunked, MAX_BODY + 1, true), 413 },
    };
    run_limit_cases(cases, sizeof(cases) / sizeof(cases[0]));
    cmd_wait(CMD_NCONN, 0);
}

static void test_malformed(void **state)
{
    (void)state;
    struct limit_case cases[] = {
        { "garbage", str_dup("hello world\r\n\r\n"), 400 },
        { "lower case method", str_dup("get / HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "empty line", str_dup("\r\n\r\n \r\n\r\n"), 400 },
        { "binary", str_dup("\x16\x03\x01\x02\xfc\x03\x03\r\n\r\n"), 400 },
        { "unknown method", str_dup("FOO / HTTP/1.1\r\nHost: t\r\n\r\n"), 501 },
        { "unknown method 2", str_dup("BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n"), 501 },
        { "version 2", str_dup("GET / HTTP/2.0\r\nHost: t\r\n\r\n"), 505 },
        { "version 0.9", str_dup("GET / HTTP/0.9\r\nHost: t\r\n\r\n"), 505 },
        { "bad version", str_dup("GET / HTTP/x.y\r\nHost: t\r\n\r\n"), 400 },
        { "bad escape", str_dup("GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "short escape", str_dup("GET /a%2 HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "escape at end", str_dup("GET /a% HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "nul escape", str_dup("GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "absolute form", str_dup("GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "asterisk", str_dup("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "fragment", str_dup("GET /a#b HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "connect", str_dup("CONNECT t:443 HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "no host", str_dup("GET / HTTP/1.1\r\n\r\n"), 400 },
        { "two hosts", str_dup("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400 },
        { "folded", str_dup("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n"), 400 },
        { "control byte in value",
          str_dup("GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x01"
                  "b\r\n\r\n"),
          400 },
        { "tab in target", str_dup("GET /a\tb HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "high byte in target", str_dup("GET /a\x80 HTTP/1.1\r\nHost: t\r\n\r\n"), 400 },
        { "cr without lf", str_dup("GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n"), 400 },
        { "space in name", str_dup("GET / HTTP/1.1\r\nHost: t\r\nX A: a\r\n\r\n"), 400 },
        { "bad length", str_dup("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n"), 400 },
        { "two lengths",
          str_dup("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                  "Content-Length: 2\r\n\r\nab"),
          400 },
        { "length and chunked",
          str_dup("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
          400 },
        { "gzip coding", str_dup("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n"),
          400 },
        { "bad chunk",
          str_dup("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "zz\r\n"),
          400 },
        { "bare lf ok", str_dup("GET /lf HTTP/1.1\nHost: t\n\n"), 200 },
    };
    run_limit_cases(cases, sizeof(cases) / sizeof(cases[0]));
    cmd_wait(CMD_NCONN, 0);
}

static void test_deadline_slow_client(void **state)
{
    (void)state;
    struct http_limits l = limits_default();
    l.request_timeout = 1;
    srv_start(&l);
    struct cl *c = cl_new();
    struct resp r = { 0 };

    /* One header line every 100 ms: activity never extends the deadline. */
    cl_sends(c, "GET /slow HTTP/1.1\r\nHost: t\r\n");
    bool is_answered = false;
    for (int i = 0; i < 40 && !is_answered; i++) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        if (poll(&p, 1, 100) > 0) {
            is_answered = true;
        } else {
            cl_sends(c, "X-Slow: 1\r\n");
        }
    }
    assert_true(is_answered);
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_int_equal(r.status, 408);
    assert_string_equal(r.body, "error 408 path=[]");
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cl_is_eof(c));
    cl_free(c);
    resp_done(&r);
    cmd_wait(CMD_NCONN, 0);
}

/* A handshake never finished: closed without a word once the deadline passes. */
static void test_deadline_handshake(void **state)
{
    (void)state;
    struct http_limits l = limits_default();
    l.request_timeout = 1;
    srv_start(&l);
    int fd = tcp_connect(S.port);
    assert_int_equal(write(fd, "\x16\x03\x01", 3), 3);
    char b[16];
    assert_int_equal(read(fd, b, sizeof(b)), 0);
    (void)close(fd);
    cmd_wait(CMD_NCONN, 0);
}

/* A handshake and then nothing: closed too (close_notify, no response). */
static void test_deadline_no_request(void **state)
{
    (void)state;
    struct http_limits l = limits_default();
    l.request_timeout = 1;
    srv_start(&l);
    struct cl *c = cl_new();
    assert_true(cl_is_eof(c));
    cl_free(c);
    cmd_wait(CMD_NCONN, 0);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    struct http_limits l = limits_default();
    l.idle_timeout = 1;
    srv_start(&l);
    struct cl *c = cl_new();

    exchange(c, GET("/one"), 200, "P=/one ");
    assert_int_equal(cmd(CMD_NCONN), 1);
    /* The server closes the idle connection (the read would otherwise time out after 5 s). */
    assert_true(cl_is_eof(c));
    cmd_wait(CMD_NCONN, 0);

    cl_free(c);
}

struct waiter {
    int ready[2]; /* the thread writes a byte once connected */
    int status;
    char why[200]; /* how the TLS handshake failed (a failure is rare: say why when it comes) */
};

static void *late_client(void *arg)
{
    struct waiter *w = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(S.port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        w->status = -1;
        if (write(w->ready[1], "x", 1) != 1) {
            abort();
        }
        return NULL;
    }
    struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    w->status = -2;
    if (write(w->ready[1], "x", 1) != 1) {
        abort();
    }
    SSL *ssl = SSL_new(client_ctx);
    char buf[4096];
    int hs = ssl && SSL_set_fd(ssl, fd) == 1 ? SSL_connect(ssl) : -1;
    if (hs != 1) {
        int saved = errno;
        char reason[120] = "";
        ERR_error_string_n(ERR_peek_error(), reason, sizeof(reason));
        (void)snprintf(w->why, sizeof(w->why),
                       "SSL_connect %d, SSL_get_error %d, errno %d (%s), %s", hs,
                       ssl ? SSL_get_error(ssl, hs) : -1, saved, strerror(saved), reason);
    }
    if (hs == 1) {
        static const char req[] = GET("/late");
        w->status = -3; /* the request could not be sent */
        if (SSL_write(ssl, req, sizeof(req) - 1) == (int)sizeof(req) - 1) {
            int n = SSL_read(ssl, buf, sizeof(buf) - 1);
            w->status = -4; /* no response */
            if (n > 12 && memcmp(buf, "HTTP/1.1 ", 9) == 0) {
                w->status = (int)num(buf + 9);
            }
        }
    }
    ERR_clear_error();
    SSL_free(ssl);
    (void)close(fd);
    return NULL;
}

static void start_late_client(struct waiter *w, pthread_t *t)
{
    *w = (struct waiter){ .status = 0 };
    assert_int_equal(pipe2(w->ready, O_CLOEXEC), 0);
    assert_int_equal(pthread_create(t, NULL, late_client, w), 0);
    char x;
    assert_int_equal(read(w->ready[0], &x, 1), 1);
}

static void end_late_client(struct waiter *w, pthread_t t, int want)
{
    assert_int_equal(pthread_join(t, NULL), 0);
    if (w->status != want) {
        /* -2: no TLS session, -3: the request not sent, -4: no response */
        fail_msg("late client: status %d, want %d; %s", w->status, want, w->why);
    }
    (void)close(w->ready[0]);
    (void)close(w->ready[1]);
}

static void test_connection_limit(void **state)
{
    (void)state;
    struct http_limits l = limits_default();
    l.max_connections = 2;
    srv_start(&l);
    struct cl *c1 = cl_new();
    struct cl *c2 = cl_new();
    exchange(c1, GET("/1"), 200, "P=/1 ");
    exchange(c2, GET("/2"), 200, "P=/2 ");

    /* Both busy (a request half sent): the third waits in the backlog, not accepted. */
    cl_sends(c1, "GET /1b HTTP/1.1\r\nHost: t\r\n");
    cl_sends(c2, "GET /2b HTTP/1.1\r\nHost: t\r\n");
    struct waiter w;
    pthread_t t;
    start_late_client(&w, &t);
    struct pollfd p = { .fd = c1->fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, 300), 0);
    assert_int_equal(cmd(CMD_NCONN), 2);
    assert_int_equal(w.status, -2);

    /* c1 finishes its request and goes idle: the third takes its place, c1 is closed. */
    struct resp r = { 0 };
    cl_sends(c1, "\r\n");
    assert_int_equal(cl_response(c1, &r, false), 0);
    assert_int_equal(r.status, 200);
    resp_done(&r);
    end_late_client(&w, t, 200);
    assert_true(cl_is_eof(c1));
    /* c2, busy all along, is untouched. */
    cl_sends(c2, "\r\n");
    assert_int_equal(cl_response(c2, &r, false), 0);
    assert_int_equal(r.status, 200);
    resp_done(&r);
    cl_free(c1);

    /* All idle: a newcomer closes the one idle the longest (c3), not the most recent (c2). */
    cmd_wait(CMD_NCONN, 1);
    struct cl *c3 = cl_new();
    exchange(c3, GET("/3"), 200, "P=/3 ");
    exchange(c2, GET("/2c"), 200, "P=/2c ");
    start_late_client(&w, &t);
    end_late_client(&w, t, 200);
    assert_true(cl_is_eof(c3));
    exchange(c2, GET("/2d"), 200, "P=/2d ");

    cl_free(c3);
    cl_free(c2);
    cmd_wait(CMD_NCONN, 0);
}

static void test_async_and_vanishing_clients(void **state)
{
    (void)state;
    struct resp r = { 0 };

    /* An answer after a timer; the connection goes on afterwards. */
    struct cl *c = cl_new();
    exchange(c, GET("/async/50"), 200, "async done");
    exchange(c, GET("/after"), 200, "P=/after ");
    cl_free(c);

    /* The client leaves before the asynchronous answer: http_respond only frees. */
    c = cl_new();
    cl_sends(c, GET("/async/300"));
    cmd_wait(CMD_ASYNC, 1);
    cl_free(c);
    cmd_wait(CMD_ASYNC, 0);
    assert_int_equal(cmd(CMD_ASYNC_GONE), 1);

    /* A held request sees its client go, then is answered. */
    c = cl_new();
    cl_sends(c, GET("/hold"));
    cmd_wait(CMD_HELD, 1);
    cl_free(c);
    cmd_wait(CMD_HELD, 2);
    cmd_wait(CMD_NCONN, 0);
    assert_int_equal(cmd(CMD_RELEASE), 1);

    /* A held request whose client stays gets its answer. */
    c = cl_new();
    cl_sends(c, GET("/hold"));
    cmd_wait(CMD_HELD, 1);
    assert_int_equal(cmd(CMD_RELEASE), 1);
    assert_int_equal(cl_response(c, &r, false), 0);
    assert_string_equal(r.body, "released");
    assert_true(resp_has(&r, "Connection", "keep-alive"));
    cl_free(c);

    resp_done(&r);
    cmd_wait(CMD_NCONN, 0);
}

static X509 *peer_cert(struct cl *c)
{
    X509 *x = SSL_get1_peer_certificate(c->ssl);
    assert_non_null(x);
    return x;
}

static void test_ssl_ctx_swap(void **state)
{
    (void)state;
    struct cl *old = cl_new();
    exchange(old, GET("/old"), 200, "P=/old ");
    X509 *x = peer_cert(old);
    assert_int_equal(X509_cmp(x, S.cert_a), 0);
    X509_free(x);

    assert_int_equal(cmd(CMD_SWAP), 0);

    struct cl *new = cl_new();
    x = peer_cert(new);
    assert_int_equal(X509_cmp(x, S.cert_b), 0);
    X509_free(x);
    exchange(new, GET("/new"), 200, "P=/new ");
    /* The old keep-alive connection goes on, on its old context. */
    exchange(old, GET("/old2"), 200, "P=/old2 ");
    x = peer_cert(old);
    assert_int_equal(X509_cmp(x, S.cert_a), 0);
    X509_free(x);

    cl_free(old);
    cl_free(new);
    cmd_wait(CMD_NCONN, 0);
}

static void test_drain(void **state)
{
    (void)state;
    struct resp r = { 0 };

    struct cl *idle = cl_new();
    exchange(idle, GET("/i"), 200, "P=/i ");
    struct cl *busy = cl_new();
    cl_sends(busy, GET("/hold"));
    cmd_wait(CMD_HELD, 1);
    assert_int_equal(cmd(CMD_NCONN), 2);

    assert_int_equal(cmd(CMD_DRAIN), 0);
    /* The idle one is closed at once, the busy one finishes. */
    assert_true(cl_is_eof(idle));
    assert_int_equal(cmd(CMD_NCONN), 1);
    assert_int_equal(cmd(CMD_DRAINED), 0);
    assert_int_equal(cmd(CMD_RELEASE), 1);
    assert_int_equal(cl_response(busy, &r, false), 0);
    assert_string_equal(r.body, "released");
    assert_true(resp_has(&r, "Connection", "close"));
    assert_true(cl_is_eof(busy));
    cmd_wait(CMD_DRAINED, 1);
    assert_int_equal(cmd(CMD_NCONN), 0);

    resp_done(&r);
    cl_free(idle);
    cl_free(busy);
}

/* Freeing the server while a handler holds a request: http_respond frees it later. */
static void test_free_with_held_request(void **state)
{
    (void)state;
    struct cl *c = cl_new();
    cl_sends(c, GET("/hold"));
    cmd_wait(CMD_HELD, 1);
    srv_quit();
    S.http = http_server_free(S.http);
    assert_true(http_request_is_gone(S.held));
    assert_string_equal(http_request_path(S.held), "/hold");
    http_respond(S.held, 200, NULL, NULL, 0);
    S.held = NULL;
    cl_free(c);
}

static void test_api_refusals(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct http_server *s = NULL;
    struct http_limits l = limits_default();

    assert_int_equal(http_server_new(NULL, &l, handler, NULL, &s), -EINVAL);
    assert_int_equal(http_server_new(base, &l, NULL, NULL, &s), -EINVAL);
    l.max_body = 0;
    assert_int_equal(http_server_new(base, &l, handler, NULL, &s), -EINVAL);
    l = limits_default();
    l.request_timeout = 0;
    assert_int_equal(http_server_new(base, &l, handler, NULL, &s), -EINVAL);
    assert_null(s);

    l = limits_default();
    assert_int_equal(http_server_new(base, &l, handler, NULL, &s), 0);
    /* Not a listening socket. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(http_server_listen(s, NULL, 0, sv[0]), -EINVAL);
    (void)close(sv[0]);
    (void)close(sv[1]);

    /* An address in use. */
    struct http_server *s2 = NULL;
    assert_int_equal(http_server_new(base, &l, handler, NULL, &s2), 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(http_server_listen(s, (struct sockaddr *)&sin, sizeof(sin), -1), 0);
    sin.sin_port = htons(http_server_port(s));
    assert_int_equal(http_server_listen(s2, (struct sockaddr *)&sin, sizeof(sin), -1), -EADDRINUSE);
    assert_int_equal(http_server_listen(s, (struct sockaddr *)&sin, sizeof(sin), -1), -EINVAL);

    /* An adopted listening socket (socket activation). */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    sin.sin_port = 0;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(http_server_listen(s2, NULL, 0, fd), 0);
    assert_true(http_server_port(s2) > 0);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);

    /* Drain with nothing open: done at once. */
    struct srv flag = { 0 };
    http_server_drain(s2, drained_cb, &flag);
    assert_true(flag.is_drained);

    http_server_free(s);
    http_server_free(s2);
    assert_null(http_server_free(NULL));
    event_base_free(base);
}

static int group_setup(void **state)
{
    if (fixture_keys_setup(state) < 0) {
        return -1;
    }
    /* A client reset must not kill the test with SIGPIPE (http.h asks the process for it). */
    (void)signal(SIGPIPE, SIG_IGN);
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (!client_ctx) {
        return -1;
    }
    /* Tests only: the server's certificates are self-signed. */
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    SSL_CTX_free(client_ctx);
    return fixture_keys_teardown(state);
}

int main(void)
{
    if (getenv("CERTD_TEST_DEBUG")) {
        log_set_max_level(LOG_DEBUG);
    }
#define SRV_TEST(fn)     cmocka_unit_test_setup_teardown(fn, srv_setup, srv_teardown)
#define OWN_SRV_TEST(fn) cmocka_unit_test_teardown(fn, srv_teardown)
#define OFFLOAD_TEST(fn) \
    cmocka_unit_test_prestate_setup_teardown(fn, srv_setup_offload, srv_teardown, NULL)
#define OWN_OFFLOAD_TEST(fn) \
    cmocka_unit_test_prestate_setup_teardown(fn, offload_only, srv_teardown, NULL)
    const struct CMUnitTest tests[] = {
        SRV_TEST(test_get_post_keepalive),
        OWN_SRV_TEST(test_large_response_backpressure),
        SRV_TEST(test_connection_close_and_http10),
        SRV_TEST(test_pipelining_order),
        SRV_TEST(test_records_in_one_segment),
        SRV_TEST(test_head_and_bodyless),
        SRV_TEST(test_response_headers),
        SRV_TEST(test_expect_continue),
        SRV_TEST(test_limits),
        SRV_TEST(test_malformed),
        OWN_SRV_TEST(test_deadline_slow_client),
        OWN_SRV_TEST(test_deadline_handshake),
        OWN_SRV_TEST(test_deadline_no_request),
        OWN_SRV_TEST(test_idle_timeout),
        OWN_SRV_TEST(test_connection_limit),
        SRV_TEST(test_async_and_vanishing_clients),
        SRV_TEST(test_ssl_ctx_swap),
        SRV_TEST(test_drain),
        SRV_TEST(test_free_with_held_request),
        cmocka_unit_test(test_api_refusals),
        /* The same with handshakes on the serial thread (http_server_set_ssl_ctx_ex). */
        OFFLOAD_TEST(test_get_post_keepalive),
        OFFLOAD_TEST(test_records_in_one_segment),
        OFFLOAD_TEST(test_pipelining_order),
        OFFLOAD_TEST(test_malformed),
        OWN_OFFLOAD_TEST(test_deadline_handshake),
        OWN_OFFLOAD_TEST(test_deadline_no_request),
        OFFLOAD_TEST(test_async_and_vanishing_clients),
        OFFLOAD_TEST(test_ssl_ctx_swap),
        OFFLOAD_TEST(test_drain),
    };
#undef SRV_TEST
#undef OWN_SRV_TEST
#undef OFFLOAD_TEST
#undef OWN_OFFLOAD_TEST
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
