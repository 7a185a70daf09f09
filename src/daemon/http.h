/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd's HTTPS/1.1 server: libevent for the loop, sockets and TLS (evconnlistener,
 * bufferevent_openssl), Node's http-parser (Debian libhttp-parser-dev) for the wire format.
 * We do not use evhttp: in libevent 2.1 it answers oversized bodies, oversized headers and
 * malformed requests itself with HTML bodies (Redfish needs its own error bodies with Base
 * message ids), it has no total deadline for a request (a client sending one byte per idle
 * period holds a connection for ever), and no connection limit.
 *
 * Behaviour:
 *  - TLS only. New connections take the SSL_CTX current when they are accepted; a later
 *    http_server_set_ssl_ctx_ex never touches open connections (they finish on the old context,
 *    which lives as long as a connection uses it).
 *  - One request at a time per connection (pipelined requests wait unparsed: at most 4 KiB
 *    and one TLS record of them are read ahead, the rest waits in the socket), keep-alive per
 *    HTTP/1.1 (Connection: close and HTTP/1.0 honoured; HTTP/1.0 keep-alive on request).
 *    Requests are parsed in origin form only, HTTP/1.1 needs exactly one Host; "Expect:
 *    100-continue" is answered with 100 Continue once the headers are accepted. Header values
 *    are trimmed; folded lines, control bytes and invalid header names are 400; trailers of
 *    chunked bodies are read and ignored.
 *  - Limits (struct http_limits): header section size and count, body size (Content-Length
 *    checked before reading a byte of body; chunked bodies counted as they come), connection
 *    count (at the limit a newcomer takes the place of the keep-alive connection idle the
 *    longest, which is closed; when every connection is busy the listener stops accepting
 *    and extra clients wait in the kernel's backlog (one accepted just as the last slot was taken
 *    waits in certd instead, 8 at most): one client holding every slot with a
 *    request now and then cannot lock others out), a total deadline from the first byte of a
 *    request (TLS handshake included) to its last byte, an idle timeout between requests, a
 *    write timeout for the response.
 *  - Errors the server finds itself (431 headers too large or too many, 413 body too large,
 *    414 target longer than HTTP_TARGET_MAX, 400 malformed request, 505 version, 501 unknown
 *    method, 408 request timeout) are handed to the handler like a request, with
 *    http_request_error() set, so that the front end renders its own error body; the
 *    connection closes after that response (except 501/413 cannot leave the stream in sync, so
 *    close is always right). A timeout with no byte of a request received closes silently.
 *    After an error response the server reads and discards for up to 2 s before closing, so
 *    that the client's unread bytes do not make the kernel reset the connection before the
 *    client has read the response.
 *  - The request object belongs to the server until the handler calls http_respond() exactly
 *    once. A handler may return without responding and respond later from the loop thread
 *    (after a worker job); if the client went away meanwhile, http_respond just frees the
 *    request. http_request_is_gone() tells whether that happened, to skip work (an end of
 *    stream from the client while its request is handled counts as gone).
 * Thread-safety: everything on the loop thread only. The process must ignore SIGPIPE (TLS
 * writes to a socket the client reset would otherwise kill it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "util/cleanup.h"
#include "util/span.h"

struct event_base;
struct http_server;
struct http_request;

/* Header lines in one request. */
#define HTTP_HEADERS_MAX 64u
/* Longest request target (path and query) accepted; longer is 414 (as an error request). */
#define HTTP_TARGET_MAX 2048u
/* Response headers a handler may add. */
#define HTTP_RESPONSE_HEADERS_MAX 16u

enum http_method {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_PATCH,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_OTHER, /* parsed, but none of the above (e.g. TRACE): front ends answer 405 */
    HTTP_METHOD_MAX
};

struct http_limits {
    size_t max_body;          /* bytes of body (after de-chunking) */
    size_t max_headers_size;  /* bytes of the request line and header section */
    unsigned max_connections; /* open connections, TLS handshakes included */
    unsigned idle_timeout;    /* seconds between requests on a keep-alive connection */
    unsigned request_timeout; /* seconds from the first byte of a request to its last; also the
                                 TLS handshake and the time to write a response */
};

/* Called on the loop thread for every request (and every error request, see above). */
typedef void (*http_handler_fn)(struct http_request *req, void *userdata);

/*
 * A server on base with limits (copied) and handler. No socket yet. Returns 0, -EINVAL or
 * -ENOMEM.
 */
_must_check_ int http_server_new(struct event_base *base, const struct http_limits *limits,
                                 http_handler_fn handler, void *userdata, struct http_server **ret);

/*
 * Listen on addr (SO_REUSEADDR, close-on-exec, non-blocking, backlog 128); fd >= 0 instead uses
 * an already bound listening socket (systemd socket activation), which the server owns (and
 * closes) from a successful return on. Returns 0 or -errno (-EADDRINUSE ...; -EINVAL for an fd
 * that is not a listening socket, or when already listening). The port actually bound (for
 * port 0) is then http_server_port().
 */
_must_check_ int http_server_listen(struct http_server *s, const struct sockaddr *addr,
                                    socklen_t addrlen, int fd);
uint16_t http_server_port(const struct http_server *s);

/*
 * Use ctx (a reference is taken; the caller keeps its own) for connections accepted from now on.
 * Must be called before the first connection is accepted; no context means no accepting. With
 * pool (borrowed; must outlive the server) not NULL the TLS handshakes of
 * the connections accepted with ctx run on pool's serial lane, one SSL_do_handshake step per
 * job, while the loop waits for the socket between steps: the context's key is held by a
 * provider that is not thread-safe and may be slow (a TPM), so neither the loop nor a parallel
 * worker ever signs with it (issue #5). The connection then goes on on the loop as any other.
 * A step the pool refuses (queue full) closes that connection.
 */
struct worker_pool;
void http_server_set_ssl_ctx_ex(struct http_server *s, SSL_CTX *ctx, struct worker_pool *pool);

/* New limits (a SIGHUP may change them) for connections accepted from now on. */
void http_server_set_limits(struct http_server *s, const struct http_limits *limits);

/*
 * Stop accepting, close idle connections (and those still in their TLS handshake), let requests
 * in progress finish (their responses are sent with Connection: close), then call done(arg) once
 * (at once when nothing is open). done may stop the loop but must not free the server: free it
 * after the loop has returned.
 */
void http_server_drain(struct http_server *s, void (*done)(void *arg), void *arg);

/* Open connections. */
unsigned http_server_n_connections(const struct http_server *s);

/* Call fn(arg) on the loop after each connection closed (NULL: stop); not while freeing. */
void http_server_on_close(struct http_server *s, void (*fn)(void *arg), void *arg);

/* Close everything at once (requests still owned by handlers are freed at their http_respond). */
struct http_server *http_server_free(struct http_server *s);
DEFINE_CLEANUP_STRUCT(http_server, http_server_free)

/* --- the request (valid until http_respond) --- */

/* 0, or the status the server decided on (400, 408, 413, 414, 431, 501, 505). */
int http_request_error(const struct http_request *r);
enum http_method http_request_method(const struct http_request *r);
/* The method as sent ("GET", "TRACE"); never NULL. */
const char *http_request_method_name(const struct http_request *r);
/*
 * The path of the request target, percent-decoded once; a target with "%00", an invalid
 * escape or not starting with "/" is a 400 error request. Never NULL ("" for error requests).
 */
const char *http_request_path(const struct http_request *r);
/* The raw query after '?', not decoded; NULL when the target has none. */
const char *http_request_query(const struct http_request *r);
/* The first header called name (case-insensitive), value trimmed; NULL when absent. */
const char *http_request_header(const struct http_request *r, const char *name);
/* How many headers called name (to refuse repeated Content-Type, Authorization ...). */
unsigned http_request_header_count(const struct http_request *r, const char *name);
/* The body (empty span when none); bytes, not NUL-terminated (one NUL follows for safety). */
struct span http_request_body(const struct http_request *r);
/* The peer's address ("192.0.2.1", "::1"), for logs and rate limits. */
const char *http_request_peer(const struct http_request *r);
/*
 * The TLS connection the request came on (borrowed, valid until the request is answered), for
 * its client certificate (peers.h); NULL when the connection is gone.
 */
SSL *http_request_ssl(const struct http_request *r);
/* True when the client has gone (the connection closed) since the request arrived. */
bool http_request_is_gone(const struct http_request *r);
/* A number identifying the connection (for logs), unique for the process's life. */
uint64_t http_request_connection_id(const struct http_request *r);

/*
 * Add a response header (name and value copied; the name a token, the value without CR, LF or
 * other control bytes but HTAB, else -EINVAL). The server itself sets Content-Length,
 * Connection and Date (those names and Transfer-Encoding are -EINVAL here); Content-Type is
 * http_respond's argument. Returns 0, -EINVAL, -E2BIG (more than HTTP_RESPONSE_HEADERS_MAX) or
 * -ENOMEM.
 */
_must_check_ int http_response_header(struct http_request *r, const char *name, const char *value);

/*
 * Finish the request: status line, headers, body (copied; content_type NULL means no
 * Content-Type header). HEAD: headers only (Content-Length of the body all the same).
 * Status 204 and 304 never carry a body (nor Content-Length). A status outside 200..599 is a
 * handler bug: 500 goes out instead (logged). Frees r: do not use it afterwards. When the
 * connection is gone, nothing is sent. Once the response is written, the next pipelined
 * request is read (never from within this call: no recursion into the handler).
 */
void http_respond(struct http_request *r, int status, const char *content_type, const void *body,
                  size_t len);

/* "OK", "Not Found", ...; "Unknown" for others. */
const char *http_status_reason(int status);
const char *http_method_name(enum http_method m);
