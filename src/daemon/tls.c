/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd's TLS server contexts (tls.h): the issue #3 policy applied to an SSL_CTX, and the
 * stateless session tickets whose keys rotate.
 *
 * Invariants:
 *  - a context is complete or not made: every setting is applied and checked before the
 *    context is handed out, and nothing is half-configured on failure;
 *  - ticket keys exist only inside struct tls_tickets (OpenSSL-allocated, cleansed on rotation
 *    and on free); they are never logged and never leave the process;
 *  - a ticket is sealed with the current key only; the current and the previous key open one,
 *    and a ticket opened with the previous key is renewed, so that a resumed client always
 *    leaves with a ticket of the current key.
 */
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "keys/keys.h"
#include "log/log.h"
#include "util/ossl.h"

DEFINE_CLEANUP(SSL_CTX, SSL_CTX_free)

/*
 * TLS 1.2 suites (issue #3): forward secrecy (ECDHE) and AEAD only, ECDSA and RSA
 * certificates, in server preference order: AES-128-GCM first (fastest with AES-NI and strong),
 * then AES-256-GCM, then ChaCha20-Poly1305 for clients without AES hardware.
 */
#define TLS12_CIPHERS                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3 suites: all three are AEAD and forward secret; OpenSSL's default order. */
#define TLS13_CIPHERSUITES \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
/* Key exchange groups (issue #3); X25519 first: the cheapest for client and server. */
#define TLS_GROUPS "X25519:P-256:P-384"
/* Session id context: only needed once client certificates are requested, harmless before. */
#define TLS_SID_CTX "certd"
/* Bytes of plaintext per record we send (tls_apply_policy). */
#define TLS_MAX_SEND_FRAGMENT 4096u
/*
 * TLS 1.3 tickets sent after a full handshake. One: every new connection gets its own, and
 * each costs the server an encryption and a record (OpenSSL's default is two).
 */
#define TLS_TICKETS_PER_HANDSHAKE 1

/* The ticket cipher and MAC fixed by OpenSSL's ticket callback contract (IV of 16 bytes). */
#define TICKET_CIPHER   "AES-256-CBC"
#define TICKET_DIGEST   "SHA256"
#define TICKET_NAME_LEN 16u
#define TICKET_AES_LEN  32u
#define TICKET_HMAC_LEN 32u
#define TICKET_IV_LEN   16u

struct ticket_key {
    unsigned char name[TICKET_NAME_LEN]; /* public: sent in clear in every ticket */
    unsigned char aes[TICKET_AES_LEN];
    unsigned char hmac[TICKET_HMAC_LEN];
};

/*
 * The keys are read by every handshake and changed by tls_tickets_rotate on the loop thread.
 * Handshakes that sign with a key held by a provider run on the worker pool's serial thread
 * (http.c), so the keys are read there too: lock guards cur, prev and has_prev. A handshake
 * copies the key it needs under the lock and works on the copy.
 */
struct tls_tickets {
    pthread_mutex_t lock;
    bool is_lock_ready;
    struct ticket_key cur;
    struct ticket_key prev;
    bool has_prev;
    OSSL_LIB_CTX *libctx; /* borrowed */
    char *propq;          /* owned copy; NULL for none */
    EVP_CIPHER *cipher;   /* fetched once: a fetch per handshake would cost a lookup */
};

static int ticket_key_make(OSSL_LIB_CTX *libctx, struct ticket_key *ret)
{
    struct ticket_key k;

    if (RAND_bytes_ex(libctx, k.name, sizeof(k.name), 0) != 1 ||
        RAND_priv_bytes_ex(libctx, k.aes, sizeof(k.aes), 0) != 1 ||
        RAND_priv_bytes_ex(libctx, k.hmac, sizeof(k.hmac), 0) != 1) {
        OPENSSL_cleanse(&k, sizeof(k));
        (void)ossl_drain_errors("tls: ticket key");
        return -EIO;
    }
    *ret = k;
    OPENSSL_cleanse(&k, sizeof(k));
    return 0;
}

struct tls_tickets *tls_tickets_new_ex(OSSL_LIB_CTX *libctx, const char *propq)
{
    /* OPENSSL_zalloc/OPENSSL_clear_free: the keys are wiped as struct secret's bytes are. */
    struct tls_tickets *t = OPENSSL_zalloc(sizeof(*t));
    if (!t) {
        return NULL;
    }
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        return tls_tickets_free(t);
    }
    t->is_lock_ready = true;
    t->libctx = libctx;
    if (propq) {
        t->propq = OPENSSL_strdup(propq);
        if (!t->propq) {
            return tls_tickets_free(t);
        }
    }
    t->cipher = EVP_CIPHER_fetch(libctx, TICKET_CIPHER, propq);
    if (!t->cipher) {
        (void)ossl_drain_errors("tls: ticket cipher");
        return tls_tickets_free(t);
    }
    if (ticket_key_make(libctx, &t->cur) < 0) {
        return tls_tickets_free(t);
    }
    return t;
}

struct tls_tickets *tls_tickets_new(void)
{
    return tls_tickets_new_ex(NULL, NULL);
}

int tls_tickets_rotate(struct tls_tickets *t)
{
    assert_return(t, -EINVAL);

    struct ticket_key k;
    int r = ticket_key_make(t->libctx, &k);
    if (r < 0) {
        return r;
    }
    (void)pthread_mutex_lock(&t->lock);
    t->prev = t->cur;
    t->cur = k;
    t->has_prev = true;
    (void)pthread_mutex_unlock(&t->lock);
    OPENSSL_cleanse(&k, sizeof(k));
    return 0;
}

struct tls_tickets *tls_tickets_free(struct tls_tickets *t)
{
    if (t) {
        if (t->is_lock_ready) {
            (void)pthread_mutex_destroy(&t->lock);
        }
        EVP_CIPHER_free(t->cipher);
        OPENSSL_free(t->propq);
        OPENSSL_clear_free(t, sizeof(*t));
    }
    return NULL;
}

static int ticket_mac_init(struct tls_tickets *t, struct ticket_key *k, EVP_MAC_CTX *hctx)
{
    static char digest[] = TICKET_DIGEST;
    OSSL_PARAM params[4];
    size_t n = 0;

    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    if (t->propq) {
        params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_PROPERTIES, t->propq, 0);
    }
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k->hmac, sizeof(k->hmac));
    params[n] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 0 : -EIO;
}

/*
 * OpenSSL's ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)): enc = 1 seals a new
 * ticket with the current key (returns 1); enc = 0 opens one: 0 for an unknown key name (the
 * client gets a full handshake), 1 for the current key, 2 for the previous key (open, and
 * issue a fresh ticket). Negative on an internal failure, which aborts the handshake.
 */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_tickets *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!t) {
        return -1;
    }

    /* A copy of the key taken under the lock, wiped when done (it is a secret). */
    struct ticket_key k;
    int found = 0;
    (void)pthread_mutex_lock(&t->lock);
    if (enc) {
        k = t->cur;
        found = 1;
    } else if (memcmp(key_name, t->cur.name, TICKET_NAME_LEN) == 0) {
        /* Key names are public (they travel in clear), so a plain comparison is right. */
        k = t->cur;
        found = 1;
    } else if (t->has_prev && memcmp(key_name, t->prev.name, TICKET_NAME_LEN) == 0) {
        k = t->prev;
        found = 2;
    }
    (void)pthread_mutex_unlock(&t->lock);
    if (!found) {
        return 0;
    }

    int r = found;
    if (enc) {
        if (RAND_bytes_ex(t->libctx, iv, TICKET_IV_LEN, 0) != 1 ||
            EVP_EncryptInit_ex(cctx, t->cipher, NULL, k.aes, iv) != 1 ||
            ticket_mac_init(t, &k, hctx) < 0) {
            (void)ossl_drain_errors("tls: seal ticket");
            r = -1;
        } else {
            memcpy(key_name, k.name, TICKET_NAME_LEN);
        }
    } else if (EVP_DecryptInit_ex(cctx, t->cipher, NULL, k.aes, iv) != 1 ||
               ticket_mac_init(t, &k, hctx) < 0) {
        (void)ossl_drain_errors("tls: open ticket");
        r = -1;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return r;
}

/* Record an OpenSSL refusal: its text goes to the debug log, ours to err. */
static int tls_fail(struct certd_err *err, const char *what)
{
    unsigned long e = ossl_drain_errors(what);
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNKNOWN_CERTIFICATE_TYPE) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                       "TLS cannot serve a certificate with this key type");
    }
    if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory building the TLS context");
    }
    return err_set(err, -EIO, CERTD_E_INTERNAL, "OpenSSL refused the TLS %s", what);
}

static int tls_apply_policy(SSL_CTX *ctx, enum config_tls_profile profile, struct certd_err *err)
{
    int min = profile == CONFIG_TLS_MODERN ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        return tls_fail(err, "protocol versions");
    }
    /* Renegotiation is a DoS lever and a source of attacks (RFC 5746); compression is CRIME. */
    (void)SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                       SSL_OP_NO_COMPRESSION);
    (void)SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET | SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        return tls_fail(err, "cipher list");
    }
    if (SSL_CTX_set_ciphersuites(ctx, TLS13_CIPHERSUITES) != 1) {
        return tls_fail(err, "TLS 1.3 cipher suites");
    }
    if (SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        return tls_fail(err, "groups");
    }
    /*
     * The chain is sent as uploaded: never completed from a trust store behind our back.
     * Memory: an idle keep-alive connection gives its record buffers back, and records we send
     * are at most 4 KiB (Redfish answers are smaller), so a write buffer is about 4.5 KiB, not
     * 17: 50 handshakes at once peak 1.5 MiB lower.
     */
    (void)SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN | SSL_MODE_RELEASE_BUFFERS);
    /*
     * One read() per flight, not two per record (header, then body): a full handshake plus
     * one request took 11 reads, now 5. http.c fetches what libevent leaves in the buffer.
     */
    SSL_CTX_set_read_ahead(ctx, 1);
    (void)SSL_CTX_set_max_send_fragment(ctx, TLS_MAX_SEND_FRAGMENT);
    return 0;
}

static int tls_apply_tickets(SSL_CTX *ctx, struct tls_tickets *tickets, struct certd_err *err)
{
    /* Stateless tickets only: a server-side cache would hold sessions past a key rotation. */
    (void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* A ticket outlives its key by at most one period, so a longer lifetime would only lie. */
    (void)SSL_CTX_set_timeout(ctx, TLS_TICKET_ROTATE_SECONDS);
    if (SSL_CTX_set_num_tickets(ctx, TLS_TICKETS_PER_HANDSHAKE) != 1) {
        return tls_fail(err, "ticket count");
    }
    if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)TLS_SID_CTX,
                                       sizeof(TLS_SID_CTX) - 1) != 1) {
        return tls_fail(err, "session id context");
    }
    if (SSL_CTX_set_app_data(ctx, tickets) != 1) {
        return tls_fail(err, "ticket keys");
    }
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1) {
        return tls_fail(err, "ticket callback");
    }
    return 0;
}

static int tls_apply_identity(SSL_CTX *ctx, X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
                              struct certd_err *err)
{
    /* Our own check first, for a clear message: SSL_CTX_use_PrivateKey refuses a mismatch too,
     * but only with OpenSSL's text. */
    if (!key_public_eq(X509_get0_pubkey(leaf), key)) {
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "the private key does not match the certificate");
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        return tls_fail(err, "certificate");
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        return tls_fail(err, "private key");
    }
    if (chain && sk_X509_num(chain) > 0 && SSL_CTX_set1_chain(ctx, chain) != 1) {
        return tls_fail(err, "certificate chain");
    }
    return 0;
}

int tls_ctx_new(OSSL_LIB_CTX *libctx, const char *propq, enum config_tls_profile profile,
                X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key, struct tls_tickets *tickets,
                SSL_CTX **ret, struct certd_err *err)
{
    assert_return(leaf && key && tickets && ret, -EINVAL);
    if ((unsigned)profile >= CONFIG_TLS_PROFILE_MAX) {
        return err_set(err, -EINVAL, CERTD_E_INTERNAL, "unknown TLS profile %d", (int)profile);
    }
    if (tickets->libctx != libctx) {
        return err_set(err, -EINVAL, CERTD_E_INTERNAL,
                       "ticket keys belong to another library context");
    }

    ERR_clear_error();
    _cleanup_(cleanup_SSL_CTX) SSL_CTX *ctx = SSL_CTX_new_ex(libctx, propq, TLS_server_method());
    if (!ctx) {
        return tls_fail(err, "context");
    }
    int r = tls_apply_policy(ctx, profile, err);
    if (r < 0) {
        return r;
    }
    r = tls_apply_tickets(ctx, tickets, err);
    if (r < 0) {
        return r;
    }
    r = tls_apply_identity(ctx, leaf, chain, key, err);
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(ctx);
    return 0;
}
