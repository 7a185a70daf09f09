/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls: server contexts driven through real handshakes with plain OpenSSL clients over
 * in-memory BIO pairs: protocol versions per profile, the suites and groups a TLS 1.2 or 1.3
 * client may get (weak ones refused with OpenSSL's own reason), server preference, the chain
 * sent as given, ticket resumption across key rotations and across contexts sharing the
 * tickets, and the refusals of tls_ctx_new with errno, code and message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "issue/issue.h"
#include "testutil.h"
#include "tls.h"

/* ---- helpers (plain OpenSSL for the client side) ---- */

static X509 *make_cert(EVP_PKEY *key, const char *cn)
{
    struct selfsign_request req = {
        .common_name = cn,
        .days = 30,
        .now = (int64_t)time(NULL) - 60,
    };
    X509 *cert = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(issue_selfsigned(NULL, NULL, key, &req, &cert, &err), 0);
    return cert;
}

static SSL_CTX *server_ctx(enum config_tls_profile profile, EVP_PKEY *key, X509 *cert,
                           STACK_OF(X509) *chain, struct tls_tickets *tickets)
{
    SSL_CTX *ctx = NULL;
    struct certd_err err = { 0 };
    int r = tls_ctx_new(NULL, NULL, profile, cert, chain, key, tickets, &ctx, &err);
    if (r < 0) {
        fail_msg("tls_ctx_new: %d %s", r, err.msg);
    }
    assert_non_null(ctx);
    return ctx;
}

struct client_opts {
    int min_version, max_version; /* 0: OpenSSL's defaults */
    const char *ciphers;          /* TLS 1.2 cipher list; NULL: default */
    const char *suites;           /* TLS 1.3 suites; NULL: default */
    const char *groups;           /* NULL: default */
};

static SSL_CTX *client_ctx(const struct client_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    /* Tests only: the server's certificate is self-signed, what matters here is the policy. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Let the client offer what the server must refuse. */
    SSL_CTX_set_security_level(ctx, 0);
    if (o->min_version) {
        assert_int_equal(SSL_CTX_set_min_proto_version(ctx, o->min_version), 1);
    } else {
        assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION), 1);
    }
    if (o->max_version) {
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, o->max_version), 1);
    }
    if (o->ciphers) {
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, o->ciphers), 1);
    }
    if (o->suites) {
        assert_int_equal(SSL_CTX_set_ciphersuites(ctx, o->suites), 1);
    }
    if (o->groups) {
        assert_int_equal(SSL_CTX_set1_groups_list(ctx, o->groups), 1);
    }
    return ctx;
}

struct hs {
    SSL *client, *server;
    bool is_ok;
    unsigned long server_err; /* the server's first OpenSSL error when it failed */
};

/* Run a handshake between a new client and server SSL over a BIO pair. */
static void handshake(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *resume, struct hs *ret)
{
    *ret = (struct hs){ 0 };
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    assert_non_null(c);
    assert_non_null(s);
    BIO *bc = NULL, *bs = NULL;
    assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(c, bc, bc);
    SSL_set_bio(s, bs, bs);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    if (resume) {
        assert_int_equal(SSL_set_session(c, resume), 1);
    }

    int rc = 0, rs = 0;
    bool failed = false;
    for (int i = 0; i < 64 && !(rc == 1 && rs == 1) && !failed; i++) {
        if (rc != 1) {
            ERR_clear_error();
            rc = SSL_do_handshake(c);
            int e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c, rc);
            if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                failed = true;
            }
        }
        if (rs != 1 && !failed) {
            ERR_clear_error();
            rs = SSL_do_handshake(s);
            int e = rs == 1 ? SSL_ERROR_NONE : SSL_get_error(s, rs);
            if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                ret->server_err = ERR_peek_error();
                failed = true;
            }
        }
    }
    ERR_clear_error();
    ret->client = c;
    ret->server = s;
    ret->is_ok = !failed && rc == 1 && rs == 1;
    if (ret->is_ok) {
        /* Application data both ways; the client reads the TLS 1.3 tickets on the way. */
        char buf[8];
        assert_int_equal(SSL_write(s, "ping", 4), 4);
        assert_int_equal(SSL_read(c, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "ping", 4);
        assert_int_equal(SSL_write(c, "pong", 4), 4);
        assert_int_equal(SSL_read(s, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "pong", 4);
    }
}

static void hs_free(struct hs *h)
{
    /* A client freed without close_notify marks its session not resumable. */
    if (h->is_ok) {
        (void)SSL_shutdown(h->client);
        ERR_clear_error();
    }
    SSL_free(h->client);
    SSL_free(h->server);
    *h = (struct hs){ 0 };
}

struct ident {
    EVP_PKEY *key;
    X509 *cert;
};

static struct ident ident_new(EVP_PKEY *key, const char *cn)
{
    return (struct ident){ .key = key, .cert = make_cert(key, cn) };
}

/* ---- protocol versions, suites, groups ---- */

struct proto_case {
    const char *name;
    enum config_tls_profile profile;
    bool use_rsa;
    struct client_opts client;
    const char *cipher; /* the suite negotiated; NULL: the server refuses */
    int version;        /* with cipher */
    int reason;         /* without cipher: the server's OpenSSL reason */
};

#define V12    .max_version = TLS1_2_VERSION
#define INTER  CONFIG_TLS_INTERMEDIATE
#define MODERN CONFIG_TLS_MODERN

static void test_profiles_and_suites(void **state)
{
    (void)state;
    static const struct proto_case cases[] = {
        /* intermediate: TLS 1.2 and 1.3 */
        { .name = "1.3 default",
          .profile = INTER,
          .cipher = "TLS_AES_128_GCM_SHA256",
          .version = TLS1_3_VERSION },
        { .name = "1.2 ecdsa",
          .profile = INTER,
          .client = { V12 },
          .cipher = "ECDHE-ECDSA-AES128-GCM-SHA256",
          .version = TLS1_2_VERSION },
        { .name = "1.2 rsa",
          .profile = INTER,
          .use_rsa = true,
          .client = { V12 },
          .cipher = "ECDHE-RSA-AES128-GCM-SHA256",
          .version = TLS1_2_VERSION },
        { .name = "1.2 chacha only",
          .profile = INTER,
          .client = { V12, .ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305" },
          .cipher = "ECDHE-ECDSA-CHACHA20-POLY1305",
          .version = TLS1_2_VERSION },
        { .name = "1.2 aes256 only",
          .profile = INTER,
          .use_rsa = true,
          .client = { V12, .ciphers = "ECDHE-RSA-AES256-GCM-SHA384" },
          .cipher = "ECDHE-RSA-AES256-GCM-SHA384",
          .version = TLS1_2_VERSION },
        /* server preference: the client prefers ChaCha20, the server's order wins */
        { .name = "1.2 server preference",
          .profile = INTER,
          .client = { V12,
                      .ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256" },
          .cipher = "ECDHE-ECDSA-AES128-GCM-SHA256",
          .version = TLS1_2_VERSION },
        { .name = "1.3 server preference",
          .profile = INTER,
          .client = { .suites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384" },
          .cipher = "TLS_AES_256_GCM_SHA384",
          .version = TLS1_3_VERSION },
        /* weak TLS 1.2 suites: CBC, static RSA, DHE, SHA-1 */
        { .name = "1.2 ecdhe cbc",
          .profile = INTER,
          .client = { V12, .ciphers = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384" },
          .reason = SSL_R_NO_SHARED_CIPHER },
        { .name = "1.2 static rsa",
          .profile = INTER,
          .use_rsa = true,
          .client = { V12, .ciphers = "AES128-GCM-SHA256:AES256-SHA" },
          .reason = SSL_R_NO_SHARED_CIPHER },
        { .name = "1.2 dhe",
          .profile = INTER,
          .use_rsa = true,
          .client = { V12, .ciphers = "DHE-RSA-AES128-GCM-SHA256" },
          .reason = SSL_R_NO_SHARED_CIPHER },
        { .name = "1.2 cbc sha256",
          .profile = INTER,
          .use_rsa = true,
          .client = { V12, .ciphers = "ECDHE-RSA-AES128-SHA256" },
          .reason = SSL_R_NO_SHARED_CIPHER },
        /* old protocols */
        { .name = "1.1",
          .profile = INTER,
          .client = { .max_version = TLS1_1_VERSION },
          .reason = SSL_R_UNSUPPORTED_PROTOCOL },
        { .name = "1.0",
          .profile = INTER,
          .use_rsa = true,
          .client = { .max_version = TLS1_VERSION },
          .reason = SSL_R_UNSUPPORTED_PROTOCOL },
        /* modern: TLS 1.3 only */
        { .name = "modern 1.3",
          .profile = MODERN,
          .cipher = "TLS_AES_128_GCM_SHA256",
          .version = TLS1_3_VERSION },
        { .name = "modern 1.2",
          .profile = MODERN,
          .client = { V12 },
          .reason = SSL_R_UNSUPPORTED_PROTOCOL },
        { .name = "modern 1.2 rsa",
          .profile = MODERN,
          .use_rsa = true,
          .client = { V12 },
          .reason = SSL_R_UNSUPPORTED_PROTOCOL },
        /* groups: X25519, P-256, P-384 */
        { .name = "group p-384",
          .profile = INTER,
          .client = { .groups = "P-384" },
          .cipher = "TLS_AES_128_GCM_SHA256",
          .version = TLS1_3_VERSION },
        { .name = "group p-521",
          .profile = INTER,
          .client = { .groups = "P-521" },
          .reason = SSL_R_NO_SUITABLE_KEY_SHARE },
        { .name = "group x448",
          .profile = MODERN,
          .client = { .groups = "X448" },
          .reason = SSL_R_NO_SUITABLE_KEY_SHARE },
        { .name = "1.2 group p-521",
          .profile = INTER,
          .client = { V12, .groups = "P-521" },
          .reason = SSL_R_NO_SHARED_CIPHER },
    };

    struct tls_tickets *tickets = tls_tickets_new();
    assert_non_null(tickets);
    struct ident ec = ident_new(fixture_keys.p256, "ec.test");
    struct ident rsa = ident_new(fixture_keys.rsa, "rsa.test");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct proto_case *t = &cases[i];
        const struct ident *id = t->use_rsa ? &rsa : &ec;
        SSL_CTX *sctx = server_ctx(t->profile, id->key, id->cert, NULL, tickets);
        SSL_CTX *cctx = client_ctx(&t->client);
        struct hs h;
        handshake(cctx, sctx, NULL, &h);
        if (h.is_ok != (t->cipher != NULL)) {
            fail_msg("%s: handshake %s", t->name, h.is_ok ? "succeeded" : "failed");
        }
        if (t->cipher) {
            if (strcmp(SSL_get_cipher_name(h.client), t->cipher) != 0) {
                fail_msg("%s: negotiated %s", t->name, SSL_get_cipher_name(h.client));
            }
            assert_int_equal(SSL_version(h.client), t->version);
        } else if (ERR_GET_REASON(h.server_err) != t->reason) {
            char buf[256];
            ERR_error_string_n(h.server_err, buf, sizeof(buf));
            fail_msg("%s: server refused with %s", t->name, buf);
        }
        hs_free(&h);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
    X509_free(ec.cert);
    X509_free(rsa.cert);
    tls_tickets_free(tickets);
}

/* Other certificate types a BMC may get, and the policy options visible on a connection. */
static void test_key_types_and_options(void **state)
{
    (void)state;
    struct tls_tickets *tickets = tls_tickets_new();
    assert_non_null(tickets);
    EVP_PKEY *keys[] = { fixture_keys.p384, fixture_keys.ed25519 };
    for (size_t i = 0; i < 2; i++) {
        struct ident id = ident_new(keys[i], "k.test");
        for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
            SSL_CTX *sctx = server_ctx(CONFIG_TLS_INTERMEDIATE, id.key, id.cert, NULL, tickets);
            SSL_CTX *cctx = client_ctx(&(struct client_opts){ .max_version = v });
            struct hs h;
            handshake(cctx, sctx, NULL, &h);
            assert_true(h.is_ok);
            assert_int_equal(SSL_version(h.server), v);
            X509 *peer = SSL_get1_peer_certificate(h.client);
            assert_non_null(peer);
            assert_int_equal(X509_cmp(peer, id.cert), 0);
            X509_free(peer);
            /* No compression, no renegotiation, server preference. */
            assert_null(SSL_get_current_compression(h.server));
            uint64_t opts = SSL_get_options(h.server);
            assert_true(opts & SSL_OP_NO_RENEGOTIATION);
            assert_true(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
            assert_false(opts & SSL_OP_NO_TICKET);
            hs_free(&h);
            SSL_CTX_free(cctx);
            SSL_CTX_free(sctx);
        }
        X509_free(id.cert);
    }
    tls_tickets_free(tickets);
}

/* A TLS 1.2 client asking to renegotiate gets no new handshake. */
static void test_no_renegotiation(void **state)
{
    (void)state;
    struct tls_tickets *tickets = tls_tickets_new();
    struct ident id = ident_new(fixture_keys.p256, "r.test");
    SSL_CTX *sctx = server_ctx(CONFIG_TLS_INTERMEDIATE, id.key, id.cert, NULL, tickets);
    SSL_CTX *cctx = client_ctx(&(struct client_opts){ .max_version = TLS1_2_VERSION });
    struct hs h;
    handshake(cctx, sctx, NULL, &h);
    assert_true(h.is_ok);

    assert_int_equal(SSL_renegotiate(h.client), 1);
    char buf[8];
    /* The client sends a ClientHello; the server answers no_renegotiation (a warning). */
    ERR_clear_error();
    (void)SSL_do_handshake(h.client);
    ERR_clear_error();
    int r = SSL_read(h.server, buf, sizeof(buf));
    assert_true(r <= 0);
    ERR_clear_error();
    (void)SSL_read(h.client, buf, sizeof(buf));
    ERR_clear_error();
    /* The renegotiation never completed. */
    assert_int_equal(SSL_renegotiate_pending(h.client), 1);
    assert_int_equal(SSL_num_renegotiations(h.server), 0);

    hs_free(&h);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    X509_free(id.cert);
    tls_tickets_free(tickets);
}

/* The chain goes out as given, and nothing is added when none is given. */
static void test_chain_as_given(void **state)
{
    (void)state;
    struct tls_tickets *tickets = tls_tickets_new();
    struct ident leaf = ident_new(fixture_keys.p256, "leaf.test");
    X509 *ca1 = make_cert(fixture_keys.p384, "ca1.test");
    X509 *ca2 = make_cert(fixture_keys.rsa, "ca2.test");
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    assert_true(sk_X509_push(chain, ca1) > 0);
    assert_true(sk_X509_push(chain, ca2) > 0);

    for (int with_chain = 0; with_chain <= 1; with_chain++) {
        SSL_CTX *sctx = server_ctx(CONFIG_TLS_INTERMEDIATE, leaf.key, leaf.cert,
                                   with_chain ? chain : NULL, tickets);
        SSL_CTX *cctx = client_ctx(&(struct client_opts){ 0 });
        struct hs h;
        handshake(cctx, sctx, NULL, &h);
        assert_true(h.is_ok);
        STACK_OF(X509) *got = SSL_get_peer_cert_chain(h.client);
        assert_non_null(got);
        assert_int_equal(sk_X509_num(got), with_chain ? 3 : 1);
        assert_int_equal(X509_cmp(sk_X509_value(got, 0), leaf.cert), 0);
        if (with_chain) {
            assert_int_equal(X509_cmp(sk_X509_value(got, 1), ca1), 0);
            assert_int_equal(X509_cmp(sk_X509_value(got, 2), ca2), 0);
        }
        hs_free(&h);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
    }
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf.cert);
    tls_tickets_free(tickets);
}

/* ---- session tickets ---- */

static SSL_SESSION *full_session(SSL_CTX *cctx, SSL_CTX *sctx)
{
    struct hs h;
    handshake(cctx, sctx, NULL, &h);
    assert_true(h.is_ok);
    assert_int_equal(SSL_session_reused(h.client), 0);
    SSL_SESSION *sess = SSL_get1_session(h.client);
    assert_non_null(sess);
    assert_int_equal(SSL_SESSION_is_resumable(sess), 1);
    hs_free(&h);
    return sess;
}

/* Resume with sess; true when the server accepted the ticket. *ret_new: the ticket it sent. */
static bool resume(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION *sess, SSL_SESSION **ret_new)
{
    struct hs h;
    handshake(cctx, sctx, sess, &h);
    assert_true(h.is_ok);
    bool reused = SSL_session_reused(h.client) == 1;
    assert_int_equal(SSL_session_reused(h.server), reused ? 1 : 0);
    if (ret_new) {
        *ret_new = SSL_get1_session(h.client);
    }
    hs_free(&h);
    return reused;
}

static void test_ticket_rotation(void **state)
{
    (void)state;
    struct ident id = ident_new(fixture_keys.p256, "t.test");
    for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
        struct tls_tickets *tickets = tls_tickets_new();
        assert_non_null(tickets);
        SSL_CTX *sctx = server_ctx(CONFIG_TLS_INTERMEDIATE, id.key, id.cert, NULL, tickets);
        SSL_CTX *cctx = client_ctx(&(struct client_opts){ .min_version = v, .max_version = v });
        /* The client keeps no cache of its own: every resumption is by the session given. */
        (void)SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);

        SSL_SESSION *s1 = full_session(cctx, sctx);
        assert_true(resume(cctx, sctx, s1, NULL));

        /* One rotation: the old ticket still opens, and the server renews it. */
        assert_int_equal(tls_tickets_rotate(tickets), 0);
        SSL_SESSION *s2 = NULL;
        assert_true(resume(cctx, sctx, s1, &s2));
        assert_non_null(s2);

        /* Two rotations: the first ticket is dead, the renewed one still works. */
        assert_int_equal(tls_tickets_rotate(tickets), 0);
        assert_false(resume(cctx, sctx, s1, NULL));
        assert_true(resume(cctx, sctx, s2, NULL));

        /* Other ticket keys (a restart): nothing resumes. */
        struct tls_tickets *other = tls_tickets_new();
        SSL_CTX *sctx2 = server_ctx(CONFIG_TLS_INTERMEDIATE, id.key, id.cert, NULL, other);
        assert_false(resume(cctx, sctx2, s2, NULL));

        SSL_SESSION_free(s1);
        SSL_SESSION_free(s2);
        SSL_CTX_free(sctx2);
        tls_tickets_free(other);
        SSL_CTX_free(cctx);
        SSL_CTX_free(sctx);
        tls_tickets_free(tickets);
    }
    X509_free(id.cert);
}

/* A certificate swap (a new context with the same tickets) does not end resumption. */
static void test_tickets_shared_across_contexts(void **state)
{
    (void)state;
    struct tls_tickets *tickets = tls_tickets_new();
    struct ident a = ident_new(fixture_keys.p256, "a.test");
    struct ident b = ident_new(fixture_keys.p256, "b.test");
    SSL_CTX *ctx_a = server_ctx(CONFIG_TLS_INTERMEDIATE, a.key, a.cert, NULL, tickets);
    SSL_CTX *ctx_b = server_ctx(CONFIG_TLS_INTERMEDIATE, b.key, b.cert, NULL, tickets);
    SSL_CTX *cctx = client_ctx(&(struct client_opts){ 0 });
    (void)SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);

    SSL_SESSION *s = full_session(cctx, ctx_a);
    assert_true(resume(cctx, ctx_b, s, NULL));

    SSL_SESSION_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(ctx_a);
    SSL_CTX_free(ctx_b);
    X509_free(a.cert);
    X509_free(b.cert);
    tls_tickets_free(tickets);
}

/* ---- refusals ---- */

static void test_key_mismatch(void **state)
{
    (void)state;
    struct tls_tickets *tickets = tls_tickets_new();
    struct ident id = ident_new(fixture_keys.p256, "m.test");
    EVP_PKEY *wrong[] = { fixture_keys.p384, fixture_keys.rsa, fixture_keys.ed25519 };
    for (size_t i = 0; i < 3; i++) {
        SSL_CTX *ctx = NULL;
        struct certd_err err = { 0 };
        int r = tls_ctx_new(NULL, NULL, CONFIG_TLS_INTERMEDIATE, id.cert, NULL, wrong[i], tickets,
                            &ctx, &err);
        assert_int_equal(r, -EKEYREJECTED);
        assert_int_equal(err.code, CERTD_E_KEY_MISMATCH);
        assert_non_null(strstr(err.msg, "does not match"));
        assert_null(ctx);
    }
    /* A P-256 key that is not the certificate's. */
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(other);
    SSL_CTX *ctx = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(
        tls_ctx_new(NULL, NULL, CONFIG_TLS_MODERN, id.cert, NULL, other, tickets, &ctx, &err),
        -EKEYREJECTED);
    assert_int_equal(err.code, CERTD_E_KEY_MISMATCH);
    assert_non_null(strstr(err.msg, "private key"));
    assert_null(ctx);
    assert_int_equal(ERR_peek_error(), 0);

    EVP_PKEY_free(other);
    X509_free(id.cert);
    tls_tickets_free(tickets);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct tls_tickets *tickets = tls_tickets_new();
    struct ident id = ident_new(fixture_keys.p256, "x.test");
    SSL_CTX *ctx = NULL;
    struct certd_err err = { 0 };

    assert_int_equal(
        tls_ctx_new(NULL, NULL, CONFIG_TLS_PROFILE_MAX, id.cert, NULL, id.key, tickets, &ctx, &err),
        -EINVAL);
    assert_int_equal(err.code, CERTD_E_INTERNAL);
    assert_non_null(strstr(err.msg, "profile"));
    assert_null(ctx);

    /* Tickets made for another library context. */
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    assert_non_null(libctx);
    struct tls_tickets *foreign = tls_tickets_new_ex(libctx, NULL);
    assert_non_null(foreign);
    err_clear(&err);
    assert_int_equal(tls_ctx_new(NULL, NULL, CONFIG_TLS_INTERMEDIATE, id.cert, NULL, id.key,
                                 foreign, &ctx, &err),
                     -EINVAL);
    assert_int_equal(err.code, CERTD_E_INTERNAL);
    assert_non_null(strstr(err.msg, "library context"));
    assert_null(ctx);

    /* The same tickets with their own context work. */
    err_clear(&err);
    assert_int_equal(tls_ctx_new(libctx, NULL, CONFIG_TLS_INTERMEDIATE, id.cert, NULL, id.key,
                                 foreign, &ctx, &err),
                     0);
    assert_non_null(ctx);
    SSL_CTX_free(ctx);
    ctx = NULL;

    assert_int_equal(
        tls_ctx_new(NULL, NULL, CONFIG_TLS_INTERMEDIATE, NULL, NULL, id.key, tickets, &ctx, &err),
        -EINVAL);
    assert_int_equal(
        tls_ctx_new(NULL, NULL, CONFIG_TLS_INTERMEDIATE, id.cert, NULL, id.key, NULL, &ctx, &err),
        -EINVAL);
    assert_int_equal(tls_tickets_rotate(NULL), -EINVAL);
    assert_null(tls_tickets_free(NULL));

    tls_tickets_free(foreign);
    OSSL_LIB_CTX_free(libctx);
    X509_free(id.cert);
    tls_tickets_free(tickets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profiles_and_suites),
        cmocka_unit_test(test_key_types_and_options),
        cmocka_unit_test(test_no_renegotiation),
        cmocka_unit_test(test_chain_as_given),
        cmocka_unit_test(test_ticket_rotation),
        cmocka_unit_test(test_tickets_shared_across_contexts),
        cmocka_unit_test(test_key_mismatch),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, fixture_keys_setup, fixture_keys_teardown);
}
