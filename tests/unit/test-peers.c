/* SPDX-License-Identifier: Apache-2.0 */
/*
 * peers: client certificates on certd's listener (issue #6), driven through real TLS handshakes
 * in memory: a server context made by tls_ctx_new (with ticket keys, so that sessions resume)
 * and set up by peers_setup_ctx, and plain OpenSSL clients over BIO pairs. Covered: pin mode
 * (required and optional), dates not looked at, the certificate's own signature and the key's
 * strength still checked, deleting a pin (open connections at their next lookup, new
 * handshakes, resumed sessions), the store file changed behind the module's back or broken,
 * chain mode against the authority endpoint's current certificates, pin-or-chain, and the
 * refusals of peers_add / peers_remove. Every refusal is checked on both sides: the server's
 * OpenSSL reason and verify result, the alert the client gets, and the reason certd logs.
 * Client certificates, pins and the store file are made and read with OpenSSL and libc
 * directly, independent of the code under test (but for one certificate made by certd's own
 * issue_selfsigned, which pinned clients such as another certd present).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "issue/issue.h"
#include "log/log.h"
#include "manager.h"
#include "peers.h"
#include "pin/pinstore.h"
#include "testutil.h"
#include "tls.h"

#define HOSTNAME "bmc.example.com"

/* ---- helpers (plain libc and OpenSSL, never the code under test) ---- */

static void file_put(const char *path, const char *s, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    size_t len = strlen(s);
    assert_int_equal(write(fd, s, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void assert_err(int r, const struct certd_err *err, int want_r, enum certd_errc want_code,
                       const char *word)
{
    if (r != want_r || err->code != want_code || !strstr(err->msg, word)) {
        fail_msg("got %d %s \"%s\", want %d %s with \"%s\"", r, err_code_name(err->code), err->msg,
                 want_r, err_code_name(want_code), word);
    }
}

/* The SPKI pin of key: SHA-256 of its DER SubjectPublicKeyInfo (RFC 7469 §2.4). */
static struct pin pin_of(EVP_PKEY *key)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    assert_true(len > 0);
    struct pin p;
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(der, (size_t)len, p.sha256, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, PIN_SHA256_LEN);
    OPENSSL_free(der);
    return p;
}

/*
 * A certificate for key with subject CN cn, signed by issuer/issuer_key (NULL: self-signed
 * with key), valid from now + nb_days to now + na_days, with KeyUsage ku ("": none). Issued
 * ones carry an AuthorityKeyIdentifier: X509_V_FLAG_X509_STRICT wants it on every certificate
 * that is not self-signed. Leaves get clientAuth, as a console's.
 */
static X509 *cert_make_ku(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                          bool is_ca, long nb_days, long na_days, const char *ku)
{
    return tu_cert_make(&(const struct tu_cert_spec){ .key = key,
                                                      .cn = cn,
                                                      .issuer = issuer,
                                                      .issuer_key = issuer_key,
                                                      .is_ca = is_ca,
                                                      .ku = ku,
                                                      .has_aki = true,
                                                      .eku = is_ca ? NULL : "clientAuth",
                                                      .nb_days = nb_days,
                                                      .na_days = na_days });
}

/* Leaves: KeyUsage digitalSignature only, as certd's own self-signed certificates have. */
static X509 *cert_make(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       bool is_ca, long nb_days, long na_days)
{
    return cert_make_ku(key, cn, issuer, issuer_key, is_ca, nb_days, na_days, NULL);
}

/* A copy of x whose signature has one bit flipped (the TBS part, names and key, unchanged). */
static X509 *cert_break_signature(X509 *x)
{
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    assert_true(len > 16);
    /* The signature BIT STRING ends the encoding: a byte near the end lies inside it. */
    der[len - 3] ^= 0x01;
    const unsigned char *p = der;
    X509 *y = d2i_X509(NULL, &p, len);
    assert_non_null(y);
    assert_ptr_equal(p, der + len);
    OPENSSL_free(der);
    assert_int_not_equal(X509_verify(y, X509_get0_pubkey(x)), 1);
    ERR_clear_error();
    return y;
}

static char *pem_of_cert(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    assert_true(n > 0);
    char *s = strndup(p, (size_t)n);
    assert_non_null(s);
    BIO_free(b);
    return s;
}

/* ---- keys and CAs, made once ---- */

static struct {
    EVP_PKEY *a, *b, *c; /* P-256 */
    EVP_PKEY *rsa2048;   /* fixture: RSA generation is slow under valgrind */
    EVP_PKEY *rsa1024;   /* fixture */
    EVP_PKEY *ed25519;
    EVP_PKEY *ed448; /* a key type TLS takes but certd does not: unsupported */
    EVP_PKEY *ca_key, *other_ca_key;
    X509 *ca, *other_ca; /* "peers test CA" and an unrelated one */
    X509 *server_cert;   /* certd's own, fixture */
    EVP_PKEY *server_key;
} K;

static int group_setup(void **state)
{
    (void)state;
    K.a = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K.b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K.c = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K.ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    K.ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    K.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    K.other_ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!K.a || !K.b || !K.c || !K.ed25519 || !K.ed448 || !K.ca_key || !K.other_ca_key) {
        return -1;
    }
    K.rsa2048 = fixture_key("server-rsa.key");
    K.rsa1024 = fixture_key("rsa1024.key");
    K.server_cert = fixture_cert("server-ec.pem");
    K.server_key = fixture_key("server-ec.key");
    K.ca = cert_make(K.ca_key, "peers test CA", NULL, NULL, true, -1, 3650);
    K.other_ca = cert_make(K.other_ca_key, "another test CA", NULL, NULL, true, -1, 3650);
    (void)umask(022);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(K.a);
    EVP_PKEY_free(K.b);
    EVP_PKEY_free(K.c);
    EVP_PKEY_free(K.rsa2048);
    EVP_PKEY_free(K.rsa1024);
    EVP_PKEY_free(K.ed25519);
    EVP_PKEY_free(K.ed448);
    EVP_PKEY_free(K.ca_key);
    EVP_PKEY_free(K.other_ca_key);
    X509_free(K.ca);
    X509_free(K.other_ca);
    X509_free(K.server_cert);
    EVP_PKEY_free(K.server_key);
    return 0;
}

/* ---- the module under test: a configuration, a started manager, peers, a server context ---- */

struct fx {
    char *root, *state, *store;
    struct config *cfg;
    struct manager *m;
    struct peers *p;
    struct tls_tickets *tickets;
    SSL_CTX *sctx;
};

static void fx_start(struct fx *f)
{
    struct certd_err err = { 0 };
    assert_int_equal(manager_new(f->cfg, NULL, NULL, HOSTNAME, &f->m), 0);
    int r = manager_start(f->m, &err);
    if (r < 0) {
        fail_msg("manager_start: %d %s", r, err.msg);
    }
    assert_int_equal(peers_new(f->cfg, f->m, NULL, NULL, &f->p), 0);
    assert_non_null(f->tickets = tls_tickets_new());
    r = tls_ctx_new(NULL, NULL, CONFIG_TLS_INTERMEDIATE, K.server_cert, NULL, K.server_key,
                    f->tickets, &f->sctx, &err);
    if (r < 0) {
        fail_msg("tls_ctx_new: %d %s", r, err.msg);
    }
    assert_int_equal(peers_setup_ctx(f->p, f->sctx, &err), 0);
}

/* Parse the configuration only; fx_start then starts everything (a store file may go first). */
static void fx_config(struct fx *f, const char *tag, const char *auth, const char *verify)
{
    *f = (struct fx){ .root = scratch_dir(tag) };
    f->state = tu_strf("%s/state", f->root);
    char *text = tu_strf("[server]\nstate_dir = %s\n"
                         "[tls]\nclient_auth = %s\nclient_verify = %s\n"
                         "[endpoint truststore]\ntype = authority\n"
                         "[ca]\nsigner = off\n",
                         f->state, auth, verify);
    struct certd_err err = { 0 };
    int r = config_parse(span_from_str(text), "peers.conf", &f->cfg, &err);
    if (r < 0) {
        fail_msg("config_parse: %d %s", r, err.msg);
    }
    free(text);
    f->store = tu_strf("%s/pins/clients.json", f->state);
}

static void fx_init(struct fx *f, const char *tag, const char *auth, const char *verify)
{
    fx_config(f, tag, auth, verify);
    fx_start(f);
    assert_string_equal(peers_store_path(f->p), f->store);
}

static void fx_done(struct fx *f)
{
    SSL_CTX_free(f->sctx);
    f->p = peers_free(f->p);
    f->tickets = tls_tickets_free(f->tickets);
    f->m = manager_free(f->m);
    f->cfg = config_free(f->cfg);
    free(f->store);
    free(f->state);
    scratch_rm(f->root);
}

/* Pin key for user with role; returns the new entry's id. */
static uint32_t fx_pin(struct fx *f, EVP_PKEY *key, const char *label, const char *user,
                       enum user_role role)
{
    struct pin p = pin_of(key);
    struct pin_entry e;
    struct certd_err err = { 0 };
    int r = peers_add(f->p, &p, label, user, role, "a note", &e, &err);
    if (r < 0) {
        fail_msg("peers_add: %d %s", r, err.msg);
    }
    assert_memory_equal(e.pin.sha256, p.sha256, PIN_SHA256_LEN);
    assert_string_equal(e.label, label);
    assert_string_equal(e.user, user);
    assert_int_equal(e.role, role);
    assert_string_equal(e.note, "a note");
    return e.id;
}

static size_t fx_n_pins(struct fx *f)
{
    struct peers_store *s = peers_store_ref(f->p);
    assert_non_null(s);
    size_t n = s->ps->n;
    (void)peers_store_unref(s);
    return n;
}

/* Install ca into the authority endpoint client_ca names; its id into ret_id (nullable). */
static void fx_install_ca(struct fx *f, X509 *ca, char ret_id[MANAGER_ID_MAX])
{
    char *pem = pem_of_cert(ca);
    struct manager_change chg;
    struct certd_err err = { 0 };
    int r = manager_install(f->m, manager_endpoint(f->m, "truststore"), span_from_str(pem), NULL,
                            &chg, &err);
    if (r < 0) {
        fail_msg("manager_install: %d %s", r, err.msg);
    }
    free(pem);
    if (ret_id) {
        memcpy(ret_id, chg.id, MANAGER_ID_MAX);
    }
}

/* ---- the log: refusals say why there, and only there ---- */

struct capture {
    char *path;
    int saved, fd, old_level;
};

static void log_capture_start(struct fx *f, struct capture *c)
{
    c->path = tu_strf("%s/log", f->root);
    (void)fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    c->fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(c->fd >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
    c->old_level = log_get_max_level();
    log_set_max_level(LOG_DEBUG);
}

/* The text logged since log_capture_start (malloc'd). */
static char *log_capture_end(struct capture *c)
{
    log_set_max_level(c->old_level);
    (void)fflush(stderr);
    assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
    close(c->saved);
    close(c->fd);
    char *text = tu_file_get(c->path, NULL);
    assert_non_null(text);
    free(c->path);
    return text;
}

/* ---- clients and handshakes ---- */

struct client {
    EVP_PKEY *key; /* NULL: no certificate */
    X509 *cert;
    X509 *extra;     /* nullable: sent after cert (its issuer) */
    int max_version; /* 0: TLS 1.3 */
};

static SSL_CTX *client_ctx(const struct client *cl)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    /* The server's certificate is not what is tested here. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Let the client offer what the server must refuse (RSA-1024). */
    SSL_CTX_set_security_level(ctx, 0);
    /* Send exactly the chain given, never one built from a store. */
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    if (cl->max_version) {
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, cl->max_version), 1);
    }
    if (cl->key) {
        assert_int_equal(SSL_CTX_use_certificate(ctx, cl->cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ctx, cl->key), 1);
    }
    if (cl->extra) {
        assert_int_equal(SSL_CTX_add1_chain_cert(ctx, cl->extra), 1);
    }
    return ctx;
}

struct hs {
    SSL *client, *server;
    bool is_ok;
    int server_reason; /* the server's first SSL error reason when it failed, else 0 */
    int client_alert;  /* the alert the client received (SSL_AD_*), else -1 */
    long verify;       /* SSL_get_verify_result of the server */
};

/* The reason of the first SSL-library error in the queue (0: none); empties the queue. */
static int ssl_reason_drain(void)
{
    int reason = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (reason == 0 && ERR_GET_LIB(e) == ERR_LIB_SSL) {
            reason = ERR_GET_REASON(e);
        }
    }
    return reason;
}

static bool is_fatal(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    return e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
}

/*
 * A handshake of a new client (cl, resuming resume when not NULL) with the fixture's server
 * over a BIO pair, then application data both ways (the client reads TLS 1.3 tickets on the
 * way). On failure, what each side saw.
 */
static void handshake(struct fx *f, const struct client *cl, SSL_SESSION *resume, struct hs *ret)
{
    *ret = (struct hs){ .client_alert = -1 };
    SSL_CTX *cctx = client_ctx(cl);
    SSL *c = SSL_new(cctx), *s = SSL_new(f->sctx);
    SSL_CTX_free(cctx);
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
    bool c_failed = false, s_failed = false;
    for (int i = 0; i < 64 && !(rc == 1 && rs == 1) && !c_failed && !s_failed; i++) {
        if (rc != 1) {
            ERR_clear_error();
            rc = SSL_do_handshake(c);
            c_failed = rc != 1 && is_fatal(c, rc);
            if (c_failed) {
                int reason = ssl_reason_drain();
                if (reason > SSL_AD_REASON_OFFSET) {
                    ret->client_alert = reason - SSL_AD_REASON_OFFSET;
                }
            }
        }
        if (rs != 1 && !c_failed) {
            ERR_clear_error();
            rs = SSL_do_handshake(s);
            s_failed = rs != 1 && is_fatal(s, rs);
            if (s_failed) {
                ret->server_reason = ssl_reason_drain();
            }
        }
    }
    ERR_clear_error();
    ret->client = c;
    ret->server = s;
    ret->verify = SSL_get_verify_result(s);
    ret->is_ok = !c_failed && !s_failed && rc == 1 && rs == 1;
    char buf[8];
    if (ret->is_ok) {
        assert_int_equal(SSL_write(s, "ping", 4), 4);
        assert_int_equal(SSL_read(c, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "ping", 4);
        assert_int_equal(SSL_write(c, "pong", 4), 4);
        assert_int_equal(SSL_read(s, buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "pong", 4);
    } else if (s_failed && ret->client_alert < 0) {
        /* TLS 1.3: the client finished first; the server's alert waits in the pair. */
        int n = rc == 1 ? SSL_read(c, buf, sizeof(buf)) : SSL_do_handshake(c);
        assert_true(n <= 0);
        int reason = ssl_reason_drain();
        if (reason > SSL_AD_REASON_OFFSET) {
            ret->client_alert = reason - SSL_AD_REASON_OFFSET;
        }
    }
    ERR_clear_error();
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

/* A handshake that must succeed; the caller frees h. */
static void hs_ok(struct fx *f, const struct client *cl, SSL_SESSION *resume, struct hs *h)
{
    handshake(f, cl, resume, h);
    if (!h->is_ok) {
        fail_msg("handshake refused: server reason %d, verify %ld (%s), client alert %d",
                 h->server_reason, h->verify, X509_verify_cert_error_string(h->verify),
                 h->client_alert);
    }
}

/*
 * A handshake the server must refuse because of the client's certificate: its verify result
 * verr, OpenSSL's reason for it, the alert the client gets, and log_word in the line certd
 * logs (NULL: not looked at).
 */
static void hs_refused(struct fx *f, const struct client *cl, SSL_SESSION *resume, long verr,
                       int alert, const char *log_word)
{
    struct capture cap;
    struct hs h;
    log_capture_start(f, &cap);
    handshake(f, cl, resume, &h);
    char *text = log_capture_end(&cap);
    if (h.is_ok) {
        fail_msg("handshake accepted, want refused with %ld (%s)", verr,
                 X509_verify_cert_error_string(verr));
    }
    if (resume) {
        assert_int_equal(SSL_session_reused(h.client), 0);
    }
    assert_int_equal(h.server_reason, SSL_R_CERTIFICATE_VERIFY_FAILED);
    if (h.verify != verr) {
        fail_msg("verify result %ld (%s), want %ld (%s)", h.verify,
                 X509_verify_cert_error_string(h.verify), verr,
                 X509_verify_cert_error_string(verr));
    }
    assert_int_equal(h.client_alert, alert);
    if (log_word && !strstr(text, log_word)) {
        fail_msg("log \"%s\" lacks \"%s\"", text, log_word);
    }
    free(text);
    hs_free(&h);
}

static struct peers_who who_of(struct fx *f, SSL *server)
{
    struct peers_who w;
    peers_identify(f->p, server, &w);
    return w;
}

static void assert_who_pin(const struct peers_who *w, EVP_PKEY *key, uint32_t id, const char *label,
                           const char *user, enum user_role role)
{
    struct pin p = pin_of(key);
    assert_int_equal(w->kind, PEERS_PIN);
    assert_true(w->has_cert);
    assert_memory_equal(w->pin.sha256, p.sha256, PIN_SHA256_LEN);
    assert_memory_equal(w->entry.pin.sha256, p.sha256, PIN_SHA256_LEN);
    assert_int_equal(w->entry.id, id);
    assert_string_equal(w->entry.label, label);
    assert_string_equal(w->entry.user, user);
    assert_int_equal(w->entry.role, role);
    assert_string_equal(w->user, user);
}

/* A client of key with a self-signed certificate (CN cn), dates relative to now in days. */
static struct client self_client(EVP_PKEY *key, const char *cn, long nb_days, long na_days)
{
    return (struct client){ .key = key,
                            .cert = cert_make(key, cn, NULL, NULL, false, nb_days, na_days) };
}

static void client_done(struct client *cl)
{
    X509_free(cl->cert);
    *cl = (struct client){ 0 };
}

/* ---- pin mode ---- */

static void test_pin_required(void **state)
{
    (void)state;
    static const int versions[] = { 0, TLS1_2_VERSION };
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        struct fx f;
        fx_init(&f, "peers-required", "required", "pin");
        assert_true(peers_is_enabled(f.p));
        uint32_t id = fx_pin(&f, K.a, "console-a", "console", USER_ROLE_OPERATOR);
        assert_int_equal(id, 1);

        struct client pinned = self_client(K.a, "console-a", -1, 30);
        pinned.max_version = versions[i];
        struct hs h;
        hs_ok(&f, &pinned, NULL, &h);
        struct peers_who w = who_of(&f, h.server);
        assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);
        /* Cheap and stable when asked again for the next request. */
        w = who_of(&f, h.server);
        assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);
        hs_free(&h);

        /* Another key with the same subject: the key decides, not the name. */
        struct client unpinned = self_client(K.b, "console-a", -1, 30);
        unpinned.max_version = versions[i];
        hs_refused(&f, &unpinned, NULL, X509_V_ERR_CERT_UNTRUSTED, SSL_AD_BAD_CERTIFICATE,
                   "is not in pin store 'clients'");

        /* No certificate at all. */
        struct client none = { .max_version = versions[i] };
        handshake(&f, &none, NULL, &h);
        assert_false(h.is_ok);
        assert_int_equal(h.server_reason, SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
        assert_int_equal(h.client_alert, versions[i] == TLS1_2_VERSION
                                             ? SSL_AD_HANDSHAKE_FAILURE
                                             : SSL_AD_CERTIFICATE_REQUIRED);
        hs_free(&h);

        client_done(&pinned);
        client_done(&unpinned);
        fx_done(&f);
    }
}

static void test_pin_optional(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-optional", "optional", "pin");
    uint32_t id = fx_pin(&f, K.a, "admin-key", "admin", USER_ROLE_ADMINISTRATOR);

    /* Without a certificate: in, to authenticate otherwise. */
    struct client none = { 0 };
    struct hs h;
    hs_ok(&f, &none, NULL, &h);
    struct peers_who w = who_of(&f, h.server);
    assert_int_equal(w.kind, PEERS_NONE);
    assert_false(w.has_cert);
    assert_string_equal(w.user, "");
    hs_free(&h);

    struct client pinned = self_client(K.a, "whatever", -1, 30);
    hs_ok(&f, &pinned, NULL, &h);
    w = who_of(&f, h.server);
    assert_who_pin(&w, K.a, id, "admin-key", "admin", USER_ROLE_ADMINISTRATOR);
    hs_free(&h);

    /* A certificate offered and not accepted fails the handshake, optional or not. */
    struct client unpinned = self_client(K.b, "whatever", -1, 30);
    hs_refused(&f, &unpinned, NULL, X509_V_ERR_CERT_UNTRUSTED, SSL_AD_BAD_CERTIFICATE,
               "is not in pin store");

    client_done(&pinned);
    client_done(&unpinned);
    fx_done(&f);
}

static void test_off(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-off", "off", "pin");
    assert_false(peers_is_enabled(f.p));
    (void)fx_pin(&f, K.a, "console-a", "console", USER_ROLE_OPERATOR);
    /* Not asked for one: a client's certificate is never sent, pinned or not. */
    struct client pinned = self_client(K.a, "console-a", -1, 30);
    struct hs h;
    hs_ok(&f, &pinned, NULL, &h);
    assert_null(SSL_get0_peer_certificate(h.server));
    struct peers_who w = who_of(&f, h.server);
    assert_int_equal(w.kind, PEERS_NONE);
    assert_false(w.has_cert);
    hs_free(&h);
    client_done(&pinned);
    fx_done(&f);
}

/* The dates of a pinned certificate are not looked at: the key is what is trusted. */
static void test_pin_ignores_dates(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        long nb, na;
    } cases[] = {
        { "expired", -400, -1 },
        { "not yet valid", 1, 30 },
        { "expired long ago", -4000, -3000 },
    };
    struct fx f;
    fx_init(&f, "peers-dates", "required", "pin");
    uint32_t id = fx_pin(&f, K.a, "console-a", "console", USER_ROLE_READONLY);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct client cl = self_client(K.a, "console-a", cases[i].nb, cases[i].na);
        struct hs h;
        handshake(&f, &cl, NULL, &h);
        if (!h.is_ok) {
            fail_msg("%s: refused (verify %ld)", cases[i].name, h.verify);
        }
        struct peers_who w = who_of(&f, h.server);
        assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_READONLY);
        hs_free(&h);
        client_done(&cl);
    }
    fx_done(&f);
}

/*
 * Self-signed certificates as tools make them: the key usages a leaf has (certd's own
 * issue_selfsigned: digitalSignature only), none at all, keyCertSign as well, a CA:TRUE
 * certificate as "openssl req -x509" makes. None of this matters: the key is pinned.
 */
static void test_pin_self_signed_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *ku; /* NULL: made by issue_selfsigned */
        bool is_ca;
    } cases[] = {
        { "issue_selfsigned", NULL, false },
        { "digitalSignature", "critical,digitalSignature", false },
        { "no KeyUsage", "", false },
        { "keyCertSign too", "critical,digitalSignature,keyCertSign", false },
        { "CA:TRUE", "critical,keyCertSign,cRLSign", true },
    };
    struct fx f;
    fx_init(&f, "peers-selfsigned", "required", "pin");
    uint32_t id = fx_pin(&f, K.a, "console-a", "console", USER_ROLE_OPERATOR);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *cert = NULL;
        if (cases[i].ku) {
            cert = cert_make_ku(K.a, "console-a", NULL, NULL, cases[i].is_ca, -1, 30, cases[i].ku);
        } else {
            struct selfsign_request req = {
                .common_name = "console-a",
                .days = 30,
                .now = (int64_t)time(NULL) - 60,
            };
            struct certd_err err = { 0 };
            assert_int_equal(issue_selfsigned(NULL, NULL, K.a, &req, &cert, &err), 0);
        }
        struct client cl = { .key = K.a, .cert = cert };
        struct hs h;
        handshake(&f, &cl, NULL, &h);
        if (!h.is_ok) {
            fail_msg("%s: refused (verify %ld: %s)", cases[i].name, h.verify,
                     X509_verify_cert_error_string(h.verify));
        }
        struct peers_who w = who_of(&f, h.server);
        assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);
        hs_free(&h);
        client_done(&cl);
    }
    fx_done(&f);
}

/* What is still checked: the certificate's own signature, by its issuer when not self-issued. */
static void test_pin_signature(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-signature", "required", "pin");
    uint32_t id_a = fx_pin(&f, K.a, "self", "console", USER_ROLE_OPERATOR);
    uint32_t id_b = fx_pin(&f, K.b, "issued", "console2", USER_ROLE_OPERATOR);

    /* Self-signed, its signature broken: the key is pinned, the certificate is forged. */
    struct client good = self_client(K.a, "console-a", -1, 30);
    struct client broken = { .key = K.a, .cert = cert_break_signature(good.cert) };
    hs_refused(&f, &broken, NULL, X509_V_ERR_CERT_SIGNATURE_FAILURE, SSL_AD_DECRYPT_ERROR,
               "signature does not verify");
    struct hs h;
    hs_ok(&f, &good, NULL, &h);
    struct peers_who w = who_of(&f, h.server);
    assert_who_pin(&w, K.a, id_a, "self", "console", USER_ROLE_OPERATOR);
    hs_free(&h);

    /*
     * Issued by a CA (not self-issued): its signature is checked when the issuer comes along;
     * without it (curl --cert sends the leaf alone), or with an unrelated certificate, it goes
     * unchecked -- the issuer is not trusted in this mode anyway, and TLS proved the key.
     */
    X509 *issued = cert_make(K.b, "console-b", K.ca, K.ca_key, false, -1, 30);
    struct client alone = { .key = K.b, .cert = issued };
    hs_ok(&f, &alone, NULL, &h);
    w = who_of(&f, h.server);
    assert_who_pin(&w, K.b, id_b, "issued", "console2", USER_ROLE_OPERATOR);
    hs_free(&h);
    struct client wrong = { .key = K.b, .cert = issued, .extra = K.other_ca };
    hs_ok(&f, &wrong, NULL, &h);
    hs_free(&h);
    struct client with_issuer = { .key = K.b, .cert = issued, .extra = K.ca };
    hs_ok(&f, &with_issuer, NULL, &h);
    w = who_of(&f, h.server);
    assert_who_pin(&w, K.b, id_b, "issued", "console2", USER_ROLE_OPERATOR);
    /*
     * Its session resumes like any other while the pin stays: the signature was checked in
     * the full handshake, and a ticket carries nothing of the issuer.
     */
    SSL_SESSION *sess = SSL_get1_session(h.client);
    assert_non_null(sess);
    hs_free(&h);
    hs_ok(&f, &with_issuer, sess, &h);
    assert_int_equal(SSL_session_reused(h.client), 1);
    w = who_of(&f, h.server);
    assert_who_pin(&w, K.b, id_b, "issued", "console2", USER_ROLE_OPERATOR);
    hs_free(&h);
    SSL_SESSION_free(sess);
    /* The issuer sent, but the certificate's signature broken. */
    struct client issued_broken = { .key = K.b,
                                    .cert = cert_break_signature(issued),
                                    .extra = K.ca };
    hs_refused(&f, &issued_broken, NULL, X509_V_ERR_CERT_SIGNATURE_FAILURE, SSL_AD_DECRYPT_ERROR,
               "signature does not verify");

    X509_free(issued);
    client_done(&issued_broken);
    client_done(&broken);
    client_done(&good);
    fx_done(&f);
}

/* The key's type and strength are checked even when its pin is in the store. */
static void test_pin_key_types(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-keys", "required", "pin");
    const struct {
        const char *name;
        EVP_PKEY *key;
        long verr; /* X509_V_OK: accepted */
        int alert;
        const char *log_word;
    } cases[] = {
        { "P-256", K.a, X509_V_OK, 0, NULL },
        { "RSA-2048", K.rsa2048, X509_V_OK, 0, NULL },
        { "Ed25519", K.ed25519, X509_V_OK, 0, NULL },
        { "RSA-1024", K.rsa1024, X509_V_ERR_EE_KEY_TOO_SMALL, SSL_AD_BAD_CERTIFICATE,
          "1024-bit RSA key" },
        /* Pinned (a pin is a hash: nothing tells the key's type), but a type certd refuses. */
        { "Ed448", K.ed448, X509_V_ERR_CERT_REJECTED, SSL_AD_BAD_CERTIFICATE, "not supported" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char label[32];
        (void)snprintf(label, sizeof(label), "key %zu", i);
        uint32_t id = fx_pin(&f, cases[i].key, label, "console", USER_ROLE_OPERATOR);
        struct client cl = self_client(cases[i].key, "console", -1, 30);
        if (cases[i].verr == X509_V_OK) {
            struct hs h;
            handshake(&f, &cl, NULL, &h);
            if (!h.is_ok) {
                fail_msg("%s: refused (verify %ld)", cases[i].name, h.verify);
            }
            struct peers_who w = who_of(&f, h.server);
            assert_who_pin(&w, cases[i].key, id, label, "console", USER_ROLE_OPERATOR);
            hs_free(&h);
        } else {
            hs_refused(&f, &cl, NULL, cases[i].verr, cases[i].alert, cases[i].log_word);
        }
        client_done(&cl);
    }
    fx_done(&f);
}

/* ---- deleting a pin ---- */

static void remove_and_resume(int max_version)
{
    struct fx f;
    fx_init(&f, "peers-remove", "required", "pin");
    uint32_t id = fx_pin(&f, K.a, "console-a", "console", USER_ROLE_OPERATOR);
    struct client cl = self_client(K.a, "console-a", -1, 30);
    cl.max_version = max_version;

    struct hs h1, h2;
    hs_ok(&f, &cl, NULL, &h1);
    assert_int_equal(SSL_session_reused(h1.client), 0);
    struct peers_who w = who_of(&f, h1.server);
    assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);
    SSL_SESSION *sess = SSL_get1_session(h1.client);
    assert_non_null(sess);
    assert_int_equal(SSL_SESSION_is_resumable(sess), 1);

    /* While pinned, the session resumes (tickets), and the resumed connection is the pin's. */
    hs_ok(&f, &cl, sess, &h2);
    assert_int_equal(SSL_session_reused(h2.client), 1);
    assert_int_equal(SSL_session_reused(h2.server), 1);
    w = who_of(&f, h2.server);
    assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);

    struct certd_err err = { 0 };
    assert_int_equal(peers_remove(f.p, id, &err), 0);
    assert_int_equal(fx_n_pins(&f), 0);
    char *text = tu_file_get(f.store, NULL);
    assert_non_null(text);
    assert_null(strstr(text, "console-a"));
    free(text);

    /* Open connections: refused at their next lookup, full or resumed. */
    w = who_of(&f, h1.server);
    assert_int_equal(w.kind, PEERS_GONE);
    assert_true(w.has_cert);
    w = who_of(&f, h2.server);
    assert_int_equal(w.kind, PEERS_GONE);
    assert_true(w.has_cert);

    /* The session no longer resumes: a full handshake, which refuses the key. */
    hs_refused(&f, &cl, sess, X509_V_ERR_CERT_UNTRUSTED, SSL_AD_BAD_CERTIFICATE,
               "is not in pin store");
    /* Nor does a new connection get in. */
    hs_refused(&f, &cl, NULL, X509_V_ERR_CERT_UNTRUSTED, SSL_AD_BAD_CERTIFICATE,
               "is not in pin store");

    /* Pinned again (a new id, another role): open connections follow at once. */
    uint32_t id2 = fx_pin(&f, K.a, "console-a2", "console", USER_ROLE_READONLY);
    assert_true(id2 > id);
    w = who_of(&f, h1.server);
    assert_who_pin(&w, K.a, id2, "console-a2", "console", USER_ROLE_READONLY);

    SSL_SESSION_free(sess);
    hs_free(&h1);
    hs_free(&h2);
    client_done(&cl);
    fx_done(&f);
}

static void test_remove_tls13(void **state)
{
    (void)state;
    remove_and_resume(0);
}

static void test_remove_tls12(void **state)
{
    (void)state;
    remove_and_resume(TLS1_2_VERSION);
}

/* ---- the store file ---- */

/* What certctl does: lock, load, add, save the file itself. */
static void store_add_behind(struct fx *f, EVP_PKEY *key, const char *label, const char *user)
{
    struct certd_err err = { 0 };
    int fd = -1;
    assert_int_equal(pinstore_lock(f->store, &fd, &err), 0);
    struct pinstore *ps = NULL;
    int r = pinstore_load(f->store, &ps, &err);
    if (r == -ENOENT) {
        ps = pinstore_new();
        assert_non_null(ps);
    } else {
        assert_int_equal(r, 0);
    }
    struct pin p = pin_of(key);
    assert_int_equal(
        pinstore_add(ps, &p, label, user, USER_ROLE_OPERATOR, NULL, 1700000000, NULL, &err), 0);
    assert_int_equal(pinstore_save(ps, f->store, &err), 0);
    pinstore_free(ps);
    fd = pinstore_unlock(fd);
    assert_int_equal(fd, -EBADF);
}

static void test_reload(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-reload", "required", "pin");
    struct certd_err err = { 0 };
    struct client a = self_client(K.a, "console-a", -1, 30);
    struct client b = self_client(K.b, "console-b", -1, 30);
    assert_int_equal(fx_n_pins(&f), 0);

    /* Changed behind its back: nothing until it reloads. */
    store_add_behind(&f, K.a, "from-certctl", "console");
    hs_refused(&f, &a, NULL, X509_V_ERR_CERT_UNTRUSTED, SSL_AD_BAD_CERTIFICATE,
               "is not in pin store");
    assert_int_equal(peers_reload(f.p, &err), 0);
    assert_int_equal(fx_n_pins(&f), 1);
    struct hs h;
    hs_ok(&f, &a, NULL, &h);
    struct peers_who w = who_of(&f, h.server);
    assert_who_pin(&w, K.a, 1, "from-certctl", "console", USER_ROLE_OPERATOR);
    hs_free(&h);
    /* Nothing changed: still 0. */
    assert_int_equal(peers_reload(f.p, &err), 0);
    assert_int_equal(fx_n_pins(&f), 1);

    /* Files that do not load: refused, and the pins in force stay. */
    const struct {
        const char *name;
        const char *text;
        mode_t mode;
        int r;
        enum certd_errc code;
        const char *word;
    } bad[] = {
        { "not JSON", "{\"Version\": 1, \"Pins\": [", 0600, -EBADMSG, CERTD_E_INPUT_GARBAGE,
          "not valid JSON" },
        { "not an object", "[]\n", 0600, -EBADMSG, CERTD_E_INPUT_GARBAGE, "not a JSON object" },
        { "others may write", "{\"Version\": 1, \"NextId\": 1, \"Pins\": []}\n", 0666, -EPERM,
          CERTD_E_POLICY_FORBIDS, "clients.json" },
    };
    char *saved = tu_file_get(f.store, NULL);
    assert_non_null(saved);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        file_put(f.store, bad[i].text, bad[i].mode);
        err = (struct certd_err){ 0 };
        assert_err(peers_reload(f.p, &err), &err, bad[i].r, bad[i].code, bad[i].word);
        assert_int_equal(fx_n_pins(&f), 1);
        hs_ok(&f, &a, NULL, &h);
        w = who_of(&f, h.server);
        assert_who_pin(&w, K.a, 1, "from-certctl", "console", USER_ROLE_OPERATOR);
        hs_free(&h);
    }

    /* A good file again, with one more pin. */
    file_put(f.store, saved, 0600);
    free(saved);
    store_add_behind(&f, K.b, "second", "console2");
    assert_int_equal(peers_reload(f.p, &err), 0);
    assert_int_equal(fx_n_pins(&f), 2);
    hs_ok(&f, &b, NULL, &h);
    w = who_of(&f, h.server);
    assert_who_pin(&w, K.b, 2, "second", "console2", USER_ROLE_OPERATOR);
    hs_free(&h);

    /* No file: an empty store, in force at once. */
    assert_int_equal(unlink(f.store), 0);
    assert_int_equal(peers_reload(f.p, &err), 0);
    assert_int_equal(fx_n_pins(&f), 0);
    hs_refused(&f, &a, NULL, X509_V_ERR_CERT_UNTRUSTED, SSL_AD_BAD_CERTIFICATE,
               "is not in pin store");

    client_done(&a);
    client_done(&b);
    fx_done(&f);
}

/* A store file that does not load at start: no pinned client gets in, the rest goes on. */
static void test_bad_store_at_start(void **state)
{
    (void)state;
    struct fx f;
    fx_config(&f, "peers-badstart", "optional", "pin");
    char *dir = tu_strf("%s/pins", f.state);
    assert_int_equal(mkdir(f.state, 0755), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    free(dir);
    file_put(f.store, "this is not a pin store", 0600);

    struct capture cap;
    log_capture_start(&f, &cap);
    fx_start(&f);
    char *text = log_capture_end(&cap);
    if (!strstr(text, "no pinned client is accepted")) {
        fail_msg("log \"%s\" lacks the warning", text);
    }
    free(text);
    assert_int_equal(fx_n_pins(&f), 0);

    struct client none = { 0 };
    struct hs h;
    hs_ok(&f, &none, NULL, &h);
    hs_free(&h);
    struct client a = self_client(K.a, "console-a", -1, 30);
    hs_refused(&f, &a, NULL, X509_V_ERR_CERT_UNTRUSTED, SSL_AD_BAD_CERTIFICATE,
               "is not in pin store");

    /* The API does not write over a file it cannot read; certd's own file is at fault, not
     * the request: a storage failure (500), the parser's reason kept. */
    struct pin p = pin_of(K.a);
    struct certd_err err = { 0 };
    assert_err(peers_add(f.p, &p, "console-a", "console", USER_ROLE_OPERATOR, NULL, NULL, &err),
               &err, -EBADMSG, CERTD_E_STORAGE, "the pin store cannot be changed: ");
    assert_non_null(strstr(err.msg, "not valid JSON"));
    char *now = tu_file_get(f.store, NULL);
    assert_string_equal(now, "this is not a pin store");
    free(now);

    client_done(&a);
    fx_done(&f);
}

static void test_add_remove_refusals(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-refusals", "required", "pin");
    struct certd_err err = { 0 };
    uint32_t id = fx_pin(&f, K.a, "console-a", "console", USER_ROLE_OPERATOR);
    struct stat st;
    assert_int_equal(stat(f.store, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *before = tu_file_get(f.store, NULL);
    assert_non_null(before);

    /* The same key again, whatever its label or user. */
    struct pin p = pin_of(K.a);
    struct pin_entry e = { .id = 777 };
    assert_err(peers_add(f.p, &p, "other", "someone", USER_ROLE_ADMINISTRATOR, NULL, &e, &err),
               &err, -EEXIST, CERTD_E_DUPLICATE, "already in the store as id 1 (console-a)");
    assert_int_equal(e.id, 777);
    char *after = tu_file_get(f.store, NULL);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(fx_n_pins(&f), 1);

    /* Unknown ids. */
    const uint32_t unknown[] = { id + 1, 42, PINSTORE_ID_MAX };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        err = (struct certd_err){ 0 };
        char word[48];
        (void)snprintf(word, sizeof(word), "no pin with id %u", (unsigned)unknown[i]);
        assert_err(peers_remove(f.p, unknown[i], &err), &err, -ENOENT, CERTD_E_NOT_FOUND, word);
        after = tu_file_get(f.store, NULL);
        assert_string_equal(after, before);
        free(after);
        assert_int_equal(fx_n_pins(&f), 1);
    }

    /* Removed once; a second time it is unknown. */
    err = (struct certd_err){ 0 };
    assert_int_equal(peers_remove(f.p, id, &err), 0);
    assert_int_equal(fx_n_pins(&f), 0);
    char *emptied = tu_file_get(f.store, NULL);
    assert_non_null(emptied);
    assert_string_not_equal(emptied, before);
    assert_err(peers_remove(f.p, id, &err), &err, -ENOENT, CERTD_E_NOT_FOUND, "no pin with id 1");
    after = tu_file_get(f.store, NULL);
    assert_string_equal(after, emptied);
    free(after);
    free(emptied);

    /* Ids are never reused. */
    assert_int_equal(fx_pin(&f, K.a, "console-a", "console", USER_ROLE_OPERATOR), id + 1);

    free(before);
    fx_done(&f);
}

/* ---- chain mode ---- */

static void test_chain(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-chain", "required", "chain");
    X509 *leaf = cert_make(K.a, "operator1", K.ca, K.ca_key, false, -1, 30);
    struct client cl = { .key = K.a, .cert = leaf };

    /* The authority is empty yet: nothing chains. */
    hs_refused(&f, &cl, NULL, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, SSL_AD_UNKNOWN_CA,
               "chain does not verify");

    /* Its current certificates are used, without a new context. */
    char ca_id[MANAGER_ID_MAX];
    fx_install_ca(&f, K.ca, ca_id);
    struct hs h;
    hs_ok(&f, &cl, NULL, &h);
    struct peers_who w = who_of(&f, h.server);
    assert_int_equal(w.kind, PEERS_CHAIN);
    assert_true(w.has_cert);
    assert_string_equal(w.user, "operator1");
    struct pin p = pin_of(K.a);
    assert_memory_equal(w.pin.sha256, p.sha256, PIN_SHA256_LEN);
    SSL_SESSION *sess = SSL_get1_session(h.client);
    assert_non_null(sess);
    hs_free(&h);
    /* A resumed session is the same user (verification did not run on it). */
    hs_ok(&f, &cl, sess, &h);
    assert_int_equal(SSL_session_reused(h.client), 1);
    w = who_of(&f, h.server);
    assert_int_equal(w.kind, PEERS_CHAIN);
    assert_string_equal(w.user, "operator1");
    hs_free(&h);

    /* A CN that cannot be a user name: in, but nobody. */
    X509 *odd = cert_make(K.b, "Operator One", K.ca, K.ca_key, false, -1, 30);
    struct client cl_odd = { .key = K.b, .cert = odd };
    hs_ok(&f, &cl_odd, NULL, &h);
    w = who_of(&f, h.server);
    assert_int_equal(w.kind, PEERS_NONE);
    assert_true(w.has_cert);
    assert_string_equal(w.user, "");
    hs_free(&h);

    /* Another CA, the dates, and pins (not used in this mode). */
    X509 *foreign = cert_make(K.b, "operator2", K.other_ca, K.other_ca_key, false, -1, 30);
    struct client cl_foreign = { .key = K.b, .cert = foreign };
    hs_refused(&f, &cl_foreign, NULL, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
               SSL_AD_UNKNOWN_CA, "chain does not verify");
    /* ... even with that CA sent along: only the authority's certificates are trusted. */
    struct client cl_foreign_ca = { .key = K.b, .cert = foreign, .extra = K.other_ca };
    hs_refused(&f, &cl_foreign_ca, NULL, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, SSL_AD_UNKNOWN_CA,
               "chain does not verify");
    X509 *expired = cert_make(K.c, "operator3", K.ca, K.ca_key, false, -60, -1);
    struct client cl_expired = { .key = K.c, .cert = expired };
    hs_refused(&f, &cl_expired, NULL, X509_V_ERR_CERT_HAS_EXPIRED, SSL_AD_CERTIFICATE_EXPIRED,
               "chain does not verify");
    X509 *early = cert_make(K.c, "operator3", K.ca, K.ca_key, false, 1, 30);
    struct client cl_early = { .key = K.c, .cert = early };
    hs_refused(&f, &cl_early, NULL, X509_V_ERR_CERT_NOT_YET_VALID, SSL_AD_BAD_CERTIFICATE,
               "chain does not verify");
    (void)fx_pin(&f, K.c, "pinned", "console", USER_ROLE_OPERATOR);
    struct client self = self_client(K.c, "console", -1, 30);
    hs_refused(&f, &self, NULL, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, SSL_AD_UNKNOWN_CA,
               "chain does not verify");

    /* The CA deleted: its clients' sessions no longer resume, nor do they get in. */
    struct manager_change chg;
    struct certd_err err = { 0 };
    assert_int_equal(manager_delete(f.m, manager_endpoint(f.m, "truststore"), ca_id, &chg, &err),
                     0);
    hs_refused(&f, &cl, sess, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, SSL_AD_UNKNOWN_CA,
               "chain does not verify");
    hs_refused(&f, &cl, NULL, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, SSL_AD_UNKNOWN_CA,
               "chain does not verify");

    SSL_SESSION_free(sess);
    X509_free(leaf);
    X509_free(odd);
    X509_free(foreign);
    X509_free(expired);
    X509_free(early);
    client_done(&self);
    fx_done(&f);
}

static void test_pin_or_chain(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "peers-either", "required", "pin-or-chain");
    fx_install_ca(&f, K.ca, NULL);
    uint32_t id = fx_pin(&f, K.a, "console-a", "console", USER_ROLE_OPERATOR);

    struct client pinned = self_client(K.a, "console-a", -1, 30);
    struct hs h;
    hs_ok(&f, &pinned, NULL, &h);
    struct peers_who w = who_of(&f, h.server);
    assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);
    hs_free(&h);

    /* Pinned and expired still passes: the pin is tried first. */
    struct client pinned_old = self_client(K.a, "console-a", -400, -1);
    hs_ok(&f, &pinned_old, NULL, &h);
    w = who_of(&f, h.server);
    assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);
    hs_free(&h);

    X509 *leaf = cert_make(K.b, "operator1", K.ca, K.ca_key, false, -1, 30);
    struct client chained = { .key = K.b, .cert = leaf };
    hs_ok(&f, &chained, NULL, &h);
    w = who_of(&f, h.server);
    assert_int_equal(w.kind, PEERS_CHAIN);
    assert_string_equal(w.user, "operator1");
    hs_free(&h);

    struct client neither = self_client(K.c, "console-c", -1, 30);
    hs_refused(&f, &neither, NULL, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, SSL_AD_UNKNOWN_CA,
               "is not pinned, and its chain does not verify");

    /* A pinned connection whose pin goes, but whose certificate also chains: now by chain. */
    X509 *both = cert_make(K.a, "operator2", K.ca, K.ca_key, false, -1, 30);
    struct client cl_both = { .key = K.a, .cert = both };
    hs_ok(&f, &cl_both, NULL, &h);
    w = who_of(&f, h.server);
    assert_who_pin(&w, K.a, id, "console-a", "console", USER_ROLE_OPERATOR);
    struct certd_err err = { 0 };
    assert_int_equal(peers_remove(f.p, id, &err), 0);
    w = who_of(&f, h.server);
    assert_int_equal(w.kind, PEERS_CHAIN);
    assert_string_equal(w.user, "operator2");
    hs_free(&h);

    X509_free(leaf);
    X509_free(both);
    client_done(&pinned);
    client_done(&pinned_old);
    client_done(&neither);
    fx_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_required),
        cmocka_unit_test(test_pin_optional),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_pin_ignores_dates),
        cmocka_unit_test(test_pin_self_signed_kinds),
        cmocka_unit_test(test_pin_signature),
        cmocka_unit_test(test_pin_key_types),
        cmocka_unit_test(test_remove_tls13),
        cmocka_unit_test(test_remove_tls12),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_bad_store_at_start),
        cmocka_unit_test(test_add_remove_refusals),
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_pin_or_chain),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
