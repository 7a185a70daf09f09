/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client certificates on certd's listener (issue #6, seed 004 "PKI Reduce"): [tls] client_auth
 * and client_verify (config.h) decide whether a client is asked for a certificate and how one
 * is accepted:
 *  - by pin: its key's SPKI pin (pin/pin.h) is in the listener's pin store (pin/pinstore.h). The
 *    chain, the issuer, the dates, key usages and names are not looked at: by design the link
 *    needs no expiry or revocation (a pinned key is trusted until its pin is deleted). What is
 *    still checked: the certificate's own signature (by its own key when it is self-issued, by
 *    the next certificate the client sent otherwise; a certificate whose signature cannot be
 *    checked is refused), and the key's type and strength (key_check_strength, Ed25519 allowed).
 *    TLS itself proves that the client holds the key (CertificateVerify).
 *  - by chain: a chain to the client_ca authority endpoint's certificates, with the usual X.509
 *    checks (dates, X509_V_FLAG_X509_STRICT, purpose sslclient);
 *  - pin-or-chain: the pin first, then the chain.
 * A certificate offered and not accepted fails the handshake (alert), whatever client_auth says;
 * with client_auth = optional a client without one goes on to password or session
 * authentication.
 *
 * Who a client is: a pinned client acts as its pin's UserName and RoleId (it needs no password
 * and need not be in the users file); a chain-verified client as the user of the users file
 * whose name is its certificate's subject CN (none: it authenticates like any other client).
 * This is looked up again for every request against the store in use, so that deleting a pin
 * (or changing its role) applies to open connections at their next request, and resumed
 * sessions (TLS tickets) of a pin since deleted fall back to a full handshake, which refuses
 * them: a deletion takes effect for new connections at once.
 *
 * The store: loaded at start (a missing file is an empty store; a file that does not load is
 * logged and taken as empty: no pinned client gets in, nothing else changes), re-read when its
 * file changes (main.c watches it; a file that does not load then keeps the old store), and
 * changed by the API through peers_add / peers_remove, which lock, re-read, change and save the
 * file (pinstore.h) and publish the result at once. Stores are immutable once published and
 * reference-counted, so handshakes on any thread read them without holding a lock for long.
 *
 * Thread-safety: the TLS callbacks run on whatever thread runs the handshake (the loop, or the
 * serial worker for a provider-held key); peers_reload, peers_add and peers_remove block on
 * file I/O (call them from a worker) and may run on any thread; the rest is for any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config.h"
#include "error/error.h"
#include "manager.h"
#include "pin/pinstore.h"
#include "users/users.h"
#include "util/cleanup.h"

struct peers;

/* A published store: the entries in force (read-only), valid while the reference is held. */
struct peers_store {
    const struct pinstore *ps;
};

/*
 * For cfg's [tls] client settings and its client_pins store (cfg borrowed: it must outlive
 * peers), chains checked against the authority endpoint cfg->client_ca of m (borrowed), keys
 * hashed with libctx/propq (borrowed). Reads the store file (see above). Returns 0, -ENOMEM,
 * -EINVAL (client_ca not an authority endpoint of m: a configuration the parser refuses).
 */
_must_check_ int peers_new(const struct config *cfg, struct manager *m, OSSL_LIB_CTX *libctx,
                           const char *propq, struct peers **ret);
/* Free (NULL accepted; returns NULL). Contexts set up with it must be gone. */
struct peers *peers_free(struct peers *p);
DEFINE_CLEANUP_STRUCT(peers, peers_free)

/* The store file's path (borrowed). */
const char *peers_store_path(const struct peers *p);
/* Whether clients are asked for certificates at all (client_auth not off). */
bool peers_is_enabled(const struct peers *p);

/*
 * Set ctx up for client certificates as configured: verify mode, the verification callback,
 * the ticket check, a session id context. Nothing is done with client_auth = off. p must
 * outlive ctx. 0, or -EIO with err (CERTD_E_INTERNAL).
 */
_must_check_ int peers_setup_ctx(struct peers *p, SSL_CTX *ctx, struct certd_err *err);

/* A new reference to the store in force (never NULL); peers_store_unref drops it. */
struct peers_store *peers_store_ref(struct peers *p);
struct peers_store *peers_store_unref(struct peers_store *s);
DEFINE_CLEANUP_STRUCT(peers_store, peers_store_unref)

/*
 * Re-read the store file and publish what it holds. 0 (also when nothing changed), or -errno
 * with err (pinstore_load's errors but -ENOENT, which is an empty store): the store in force
 * stays. Blocks.
 */
_must_check_ int peers_reload(struct peers *p, struct certd_err *err);

/*
 * Changes (the API): under pinstore_lock, re-read the file, change, save, publish. Errors of
 * pinstore_load (but -ENOENT), pinstore_add / pinstore_remove (-ENOENT with CERTD_E_NOT_FOUND
 * for an unknown id), pinstore_save; nothing changes on failure. *ret_entry (nullable) gets a
 * copy of the new entry. Block.
 */
_must_check_ int peers_add(struct peers *p, const struct pin *pin, const char *label,
                           const char *user, enum user_role role, const char *note,
                           struct pin_entry *ret_entry, struct certd_err *err);
_must_check_ int peers_remove(struct peers *p, uint32_t id, struct certd_err *err);

/* How a connection's client certificate was accepted, looked up for one request. */
enum peers_kind {
    PEERS_NONE,  /* no certificate, or one that names nobody (a chain-verified CN not a user) */
    PEERS_PIN,   /* entry below */
    PEERS_CHAIN, /* user: the subject CN, to be found in the users file */
    PEERS_GONE,  /* a pinned certificate whose pin is no longer in the store: refuse */
};
struct peers_who {
    enum peers_kind kind;
    bool has_cert; /* the connection presented a certificate (pin below is its key's) */
    struct pin pin;
    struct pin_entry entry;        /* PEERS_PIN */
    char user[USERS_NAME_MAX + 1]; /* PEERS_PIN: entry.user; PEERS_CHAIN: the CN */
};

/*
 * Who the client of ssl (a connection of a context set up above, handshake done) is, by its
 * certificate, against the store in force. Cheap after the first call per connection (the pin
 * and the chain result are kept with the connection). Loop thread.
 */
void peers_identify(struct peers *p, SSL *ssl, struct peers_who *ret);
