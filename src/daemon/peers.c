/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client certificates on certd's listener: see peers.h. The verification replaces OpenSSL's
 * (SSL_CTX_set_cert_verify_callback), because pin mode must not look at the chain at all, and
 * chain mode verifies against the authority endpoint's current certificates, which change at
 * run time without a new SSL_CTX.
 */
#include "peers.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "keys/keys.h"
#include "log/log.h"
#include "util/limits.h"
#include "util/ossl.h"

/* Bytes of a refusal's reason, for the log. */
#define WHY_MAX 256u

struct store_priv {
    struct peers_store pub;
    struct pinstore *ps;
    atomic_int refs;
};

struct peers {
    const struct config *cfg;
    const char *name; /* the store's name, for messages */
    const char *path;
    struct manager *m;
    struct endpoint *ca_ep; /* NULL: chains are never verified */
    OSSL_LIB_CTX *libctx;
    char *propq;
    pthread_mutex_t lock; /* cur, ca_snap, ca_store: pointer swaps only */
    struct store_priv *cur;
    struct ep_snapshot *ca_snap; /* what ca_store was built from */
    X509_STORE *ca_store;
    uint64_t ca_gen; /* counts ca_store's rebuilds: a chain verified before is verified again */
};

/* What a connection's certificate is, kept with the connection (SSL ex_data). */
struct conn_info {
    struct pin pin;
    bool has_pin;
    int chain;          /* 1 verified, 0 not, -1 not tried yet */
    uint64_t chain_gen; /* the peers' ca_gen it was verified against */
    char cn[USERS_NAME_MAX + 1];
};

static int conn_idx = -1;
static pthread_once_t conn_idx_once = PTHREAD_ONCE_INIT;

static void conn_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void conn_idx_init(void)
{
    conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_info_free);
}

static bool wants_pin(const struct peers *p)
{
    return p->cfg->client_verify != CONFIG_CLIENT_VERIFY_CHAIN;
}

static bool wants_chain(const struct peers *p)
{
    return p->cfg->client_verify != CONFIG_CLIENT_VERIFY_PIN && p->ca_ep;
}

/* ---- published stores ---- */

static struct store_priv *store_new(struct pinstore *ps)
{
    struct store_priv *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->ps = ps;
    s->pub.ps = ps;
    atomic_init(&s->refs, 1);
    return s;
}

struct peers_store *peers_store_unref(struct peers_store *pub)
{
    if (!pub) {
        return NULL;
    }
    struct store_priv *s = (struct store_priv *)pub;
    if (atomic_fetch_sub(&s->refs, 1) == 1) {
        pinstore_free(s->ps);
        free(s);
    }
    return NULL;
}

struct peers_store *peers_store_ref(struct peers *p)
{
    (void)pthread_mutex_lock(&p->lock);
    struct store_priv *s = p->cur;
    atomic_fetch_add(&s->refs, 1);
    (void)pthread_mutex_unlock(&p->lock);
    return &s->pub;
}

/* Publish ps (taken, also on failure). */
static int publish(struct peers *p, struct pinstore *ps)
{
    struct store_priv *s = store_new(ps);
    if (!s) {
        pinstore_free(ps);
        return -ENOMEM;
    }
    (void)pthread_mutex_lock(&p->lock);
    struct store_priv *old = p->cur;
    p->cur = s;
    (void)pthread_mutex_unlock(&p->lock);
    (void)peers_store_unref(old ? &old->pub : NULL);
    return 0;
}

int peers_new(const struct config *cfg, struct manager *m, OSSL_LIB_CTX *libctx, const char *propq,
              struct peers **ret)
{
    assert_return(cfg && m && ret, -EINVAL);
    assert_return(cfg->client_pins < cfg->n_pins, -EINVAL);
    (void)pthread_once(&conn_idx_once, conn_idx_init);
    if (conn_idx < 0) {
        return -ENOMEM;
    }
    struct peers *p = calloc(1, sizeof(*p));
    if (!p) {
        return -ENOMEM;
    }
    p->cfg = cfg;
    p->name = cfg->pins[cfg->client_pins].name;
    p->path = cfg->pins[cfg->client_pins].file;
    p->m = m;
    p->libctx = libctx;
    if (propq && !(p->propq = strdup(propq))) {
        free(p);
        return -ENOMEM;
    }
    if (cfg->client_ca[0]) {
        p->ca_ep = manager_endpoint(m, cfg->client_ca);
        if (!p->ca_ep || endpoint_type(p->ca_ep) != ENDPOINT_AUTHORITY) {
            free(p->propq);
            free(p);
            return -EINVAL;
        }
    }
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p->propq);
        free(p);
        return -ENOMEM;
    }

    struct certd_err err = { 0 };
    struct pinstore *ps = NULL;
    int r = pinstore_load_or_empty(p->path, &ps, &err);
    if (r == -ENOMEM) {
        (void)peers_free(p);
        return -ENOMEM;
    }
    if (r < 0) {
        /* Fail closed for pins only: password logins and everything else go on. */
        log_err("pins '%s': %s; no pinned client is accepted until the file is fixed", p->name,
                err.msg);
        ps = pinstore_new();
        if (!ps) {
            (void)peers_free(p);
            return -ENOMEM;
        }
    }
    r = publish(p, ps);
    if (r < 0) {
        (void)peers_free(p);
        return r;
    }
    *ret = p;
    return 0;
}

struct peers *peers_free(struct peers *p)
{
    if (!p) {
        return NULL;
    }
    (void)peers_store_unref(p->cur ? &p->cur->pub : NULL);
    (void)ep_snapshot_unref(p->ca_snap);
    X509_STORE_free(p->ca_store);
    (void)pthread_mutex_destroy(&p->lock);
    free(p->propq);
    free(p);
    return NULL;
}

const char *peers_store_path(const struct peers *p)
{
    return p->path;
}

bool peers_is_enabled(const struct peers *p)
{
    return p->cfg->client_auth != CONFIG_CLIENT_AUTH_OFF;
}

int peers_reload(struct peers *p, struct certd_err *err)
{
    /*
     * Under the store's lock, as changes are: publications then follow the file's versions in
     * order, and a reload that read an older version cannot publish it over a newer one (a pin
     * deleted meanwhile would come back).
     */
    int fd = -1;
    int r = pinstore_lock(p->path, &fd, err);
    if (r < 0) {
        return r;
    }
    struct pinstore *ps = NULL;
    r = pinstore_load_or_empty(p->path, &ps, err);
    if (r < 0) {
        fd = pinstore_unlock(fd);
        return r;
    }
    size_t n = ps->n;
    r = publish(p, ps);
    fd = pinstore_unlock(fd);
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    log_debug("pins '%s': %zu pins in force", p->name, n);
    return 0;
}

/* ---- changes ---- */

/* Lock, re-read, let change() work on the store, save, publish. */
static int change(struct peers *p, int (*fn)(struct pinstore *ps, void *arg, struct certd_err *err),
                  void *arg, struct certd_err *err)
{
    int fd = -1;
    int r = pinstore_lock(p->path, &fd, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_pinstore) struct pinstore *ps = NULL;
    r = pinstore_load_or_empty(p->path, &ps, err);
    if (r < 0 && r != -ENOMEM) {
        /* Certd's own file is at fault, not the request: an internal error (500). */
        char why[CERTD_ERR_MSG_MAX];
        (void)snprintf(why, sizeof(why), "%s", err->msg);
        err_clear(err); /* the first error set wins: this one replaces it */
        (void)err_set(err, r, CERTD_E_STORAGE, "the pin store cannot be changed: %s", why);
    }
    if (r >= 0) {
        r = fn(ps, arg, err);
    }
    if (r >= 0) {
        r = pinstore_save(ps, p->path, err);
    }
    if (r >= 0) {
        r = publish(p, TAKE_PTR(ps));
        if (r < 0) {
            (void)err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    fd = pinstore_unlock(fd);
    return r;
}

struct add_args {
    const struct pin *pin;
    const char *label, *user, *note;
    enum user_role role;
    struct pin_entry *ret;
};

static int add_fn(struct pinstore *ps, void *arg, struct certd_err *err)
{
    struct add_args *a = arg;
    uint32_t id = 0;
    int r = pinstore_add(ps, a->pin, a->label, a->user, a->role, a->note, (int64_t)time(NULL), &id,
                         err);
    if (r >= 0 && a->ret) {
        *a->ret = *pinstore_find_id(ps, id);
    }
    return r;
}

int peers_add(struct peers *p, const struct pin *pin, const char *label, const char *user,
              enum user_role role, const char *note, struct pin_entry *ret_entry,
              struct certd_err *err)
{
    struct add_args a = {
        .pin = pin, .label = label, .user = user, .note = note, .role = role, .ret = ret_entry
    };
    int r = change(p, add_fn, &a, err);
    if (r >= 0 && ret_entry) {
        char s[PIN_STR_MAX];
        pin_format(pin, s, sizeof(s));
        log_notice("pins '%s': pin %s added as id %u for user %s (%s)", p->name, s,
                   (unsigned)ret_entry->id, ret_entry->user, user_role_name(ret_entry->role));
    }
    return r;
}

static int remove_fn(struct pinstore *ps, void *arg, struct certd_err *err)
{
    uint32_t id = *(const uint32_t *)arg;
    if (pinstore_remove(ps, id) < 0) {
        return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "there is no pin with id %u", (unsigned)id);
    }
    return 0;
}

int peers_remove(struct peers *p, uint32_t id, struct certd_err *err)
{
    int r = change(p, remove_fn, &id, err);
    if (r >= 0) {
        log_notice("pins '%s': pin id %u deleted; new connections with its key are refused",
                   p->name, (unsigned)id);
    }
    return r;
}

/* ---- verification ---- */

/*
 * The chain store, rebuilt when the authority endpoint changed; a new reference, or NULL. Its
 * generation in *ret_gen.
 */
static X509_STORE *ca_store_get(struct peers *p, uint64_t *ret_gen)
{
    struct ep_snapshot *snap = endpoint_snapshot(p->ca_ep);
    X509_STORE *st = NULL;

    (void)pthread_mutex_lock(&p->lock);
    if (snap != p->ca_snap || !p->ca_store) {
        X509_STORE *n = X509_STORE_new();
        bool ok = n != NULL;
        for (size_t i = 0; ok && i < snap->n; i++) {
            ok = X509_STORE_add_cert(n, snap->entries[i].cert) == 1;
        }
        if (ok) {
            X509_STORE_free(p->ca_store);
            p->ca_store = n;
            (void)ep_snapshot_unref(p->ca_snap);
            p->ca_snap = ep_snapshot_ref(snap);
            p->ca_gen++;
        } else {
            X509_STORE_free(n);
            (void)ossl_drain_errors("peers: X509_STORE");
        }
    }
    if (p->ca_store && X509_STORE_up_ref(p->ca_store) == 1) {
        st = p->ca_store;
    }
    *ret_gen = p->ca_gen;
    (void)pthread_mutex_unlock(&p->lock);
    (void)ep_snapshot_unref(snap);
    return st;
}

/* A chain from leaf (sent: what else the client sent) to the authority's certificates. */
static bool chain_ok(struct peers *p, X509 *leaf, STACK_OF(X509) *sent, uint64_t *ret_gen,
                     int *ret_verr)
{
    _cleanup_(cleanup_X509_STORE) X509_STORE *st = ca_store_get(p, ret_gen);
    if (!st) {
        *ret_verr = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
        return false;
    }
    _cleanup_(cleanup_X509_STORE_CTX) X509_STORE_CTX *c =
        X509_STORE_CTX_new_ex(p->libctx, p->propq);
    if (!c || X509_STORE_CTX_init(c, st, leaf, sent) != 1 ||
        X509_STORE_CTX_set_purpose(c, X509_PURPOSE_SSL_CLIENT) != 1) {
        (void)ossl_drain_errors("peers: X509_STORE_CTX");
        *ret_verr = X509_V_ERR_OUT_OF_MEM;
        return false;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(c);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_depth(param, (int)CERTD_CHAIN_DEPTH_MAX);
    bool ok = X509_verify_cert(c) == 1;
    *ret_verr = ok ? X509_V_OK : X509_STORE_CTX_get_error(c);
    /*
     * The sslclient purpose lets a leaf without extended key usage pass; a CA in the truststore
     * may sign for other uses (LDAP servers), so a client certificate must say clientAuth.
     */
    if (ok && (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
               !(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT))) {
        ok = false;
        *ret_verr = X509_V_ERR_INVALID_PURPOSE;
    }
    ERR_clear_error();
    return ok;
}

/*
 * The certificate's own signature: by its own key when self-issued, else by the certificate
 * the client sent that issued it. 0, -EBADMSG (does not verify), -ENOENT (no issuer to check
 * with: the caller lets it go unchecked).
 */
static int signature_check(X509 *leaf, STACK_OF(X509) *sent)
{
    X509 *issuer = NULL;
    if (X509_get_extension_flags(leaf) & EXFLAG_SI) {
        issuer = leaf;
    }
    for (int i = 0; !issuer && sent && i < sk_X509_num(sent); i++) {
        X509 *c = sk_X509_value(sent, i);
        if (c != leaf && X509_cmp(c, leaf) != 0 && X509_check_issued(c, leaf) == X509_V_OK) {
            issuer = c;
        }
    }
    ERR_clear_error();
    if (!issuer) {
        return -ENOENT;
    }
    EVP_PKEY *k = X509_get0_pubkey(issuer);
    int ok = k ? X509_verify(leaf, k) : -1;
    ERR_clear_error();
    return ok == 1 ? 0 : -EBADMSG;
}

/* The subject CN when it is a possible user name, else "". */
static void subject_cn(X509 *cert, char *buf, size_t size)
{
    buf[0] = '\0';
    X509_NAME *n = X509_get_subject_name(cert);
    int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
    if (i < 0 || X509_NAME_get_index_by_NID(n, NID_commonName, i) >= 0) {
        return; /* none, or several: ambiguous */
    }
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    int len = s ? ASN1_STRING_length(s) : 0;
    if (len <= 0 || (size_t)len >= size || len > (int)USERS_NAME_MAX) {
        return;
    }
    memcpy(buf, ASN1_STRING_get0_data(s), (size_t)len);
    buf[len] = '\0';
    if (strlen(buf) != (size_t)len || users_check_name(buf, NULL) < 0) {
        buf[0] = '\0';
    }
}

/* pin_from_cert_checked for a handshake: the reason into why, the X509_V_ERR_* for the alert. */
static int key_pin(struct peers *p, X509 *cert, struct pin *ret, int *ret_verr, char *why,
                   size_t why_size)
{
    struct certd_err err = { 0 };
    int r = pin_from_cert_checked(p->libctx, p->propq, cert, ret, &err);
    if (r < 0) {
        (void)snprintf(why, why_size, "%s", err.msg);
        *ret_verr = r == -EKEYREJECTED ? X509_V_ERR_EE_KEY_TOO_SMALL
                    : r == -EOPNOTSUPP ? X509_V_ERR_CERT_REJECTED
                                       : X509_V_ERR_UNSPECIFIED;
    }
    return r;
}

/*
 * Whether leaf (and what else the client sent) is accepted: by pin, then by chain, as
 * configured. ci gets the pin, CN and chain result. On refusal why says why, *ret_verr the
 * X509_V_ERR_* for the alert.
 */
static bool accept_cert(struct peers *p, X509 *leaf, STACK_OF(X509) *sent, bool is_resumed,
                        struct conn_info *ci, int *ret_verr, char *why, size_t why_size)
{
    char pin_s[PIN_STR_MAX];

    *ret_verr = X509_V_OK;
    memset(ci, 0, sizeof(*ci));
    ci->chain = -1;
    subject_cn(leaf, ci->cn, sizeof(ci->cn));
    if (key_pin(p, leaf, &ci->pin, ret_verr, why, why_size) < 0) {
        return false;
    }
    ci->has_pin = true;
    pin_format(&ci->pin, pin_s, sizeof(pin_s));

    if (wants_pin(p)) {
        _cleanup_(cleanup_peers_store) struct peers_store *s = peers_store_ref(p);
        const struct pin_entry *e = pinstore_find(s->ps, &ci->pin);
        if (e) {
            /*
             * Only a signature that can be checked and fails is refused: the issuer is not
             * trusted anyway in this mode, and TLS proved the client holds the key. A leaf sent
             * without its issuer (curl --cert sends the leaf alone) goes unchecked.
             */
            int r = is_resumed ? 0 : signature_check(leaf, sent);
            if (r == -ENOENT) {
                log_debug("tls: pinned client certificate sent without its issuer: its "
                          "signature is not checked");
                r = 0;
            }
            if (r == 0) {
                log_debug("tls: client certificate accepted by pin %s (id %u, %s)", pin_s,
                          (unsigned)e->id, e->label);
                return true;
            }
            (void)snprintf(why, why_size,
                           "key pin %s is pinned (id %u), but the certificate's signature does "
                           "not verify",
                           pin_s, (unsigned)e->id);
            *ret_verr = X509_V_ERR_CERT_SIGNATURE_FAILURE;
            return false;
        }
    }
    if (wants_chain(p)) {
        int verr = X509_V_OK;
        ci->chain = chain_ok(p, leaf, sent, &ci->chain_gen, &verr) ? 1 : 0;
        if (ci->chain == 1) {
            log_debug("tls: client certificate accepted by chain (key pin %s)", pin_s);
            return true;
        }
        (void)snprintf(why, why_size, "key pin %s is %sand its chain does not verify: %s", pin_s,
                       wants_pin(p) ? "not pinned, " : "", X509_verify_cert_error_string(verr));
        *ret_verr = verr;
        return false;
    }
    (void)snprintf(why, why_size, "key pin %s is not in pin store '%s'", pin_s, p->name);
    *ret_verr = X509_V_ERR_CERT_UNTRUSTED;
    return false;
}

/* Keep what verification found with the connection, for peers_identify. */
static void conn_info_set(SSL *ssl, const struct conn_info *ci)
{
    if (!ssl) {
        return;
    }
    struct conn_info *keep = malloc(sizeof(*keep));
    if (!keep) {
        return; /* peers_identify works it out again */
    }
    *keep = *ci;
    struct conn_info *old = SSL_get_ex_data(ssl, conn_idx);
    if (SSL_set_ex_data(ssl, conn_idx, keep) != 1) {
        free(keep);
        return;
    }
    free(old);
}

static int cert_verify_cb(X509_STORE_CTX *xs, void *arg)
{
    struct peers *p = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    struct conn_info ci;
    char why[WHY_MAX] = "";
    int verr = X509_V_ERR_UNSPECIFIED;

    if (!leaf) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    if (!accept_cert(p, leaf, X509_STORE_CTX_get0_untrusted(xs), false, &ci, &verr, why,
                     sizeof(why))) {
        log_notice("tls: client certificate refused: %s", why);
        X509_STORE_CTX_set_error(xs, verr);
        return 0;
    }
    conn_info_set(ssl, &ci);
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    return 1;
}

/*
 * A ticket of a session whose client certificate is no longer accepted (its pin deleted) must
 * not resume it: the client goes through a full handshake, where verification refuses it.
 */
static SSL_TICKET_RETURN ticket_decrypted(SSL *ssl, SSL_SESSION *ss, const unsigned char *name,
                                          size_t name_len, SSL_TICKET_STATUS status, void *arg)
{
    struct peers *p = arg;
    (void)name;
    (void)name_len;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
        X509 *peer = SSL_SESSION_get0_peer(ss);
        if (peer) {
            /* Checked again as it was at its full handshake (its signature was then). */
            struct conn_info ci;
            char why[WHY_MAX];
            int verr;
            if (!accept_cert(p, peer, NULL, true, &ci, &verr, why, sizeof(why))) {
                log_info("tls: a session ticket is ignored: its client certificate is no "
                         "longer accepted (%s)",
                         why);
                return SSL_TICKET_RETURN_IGNORE_RENEW;
            }
            conn_info_set(ssl, &ci);
        }
        return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
    }
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
    default:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
}

int peers_setup_ctx(struct peers *p, SSL_CTX *ctx, struct certd_err *err)
{
    static const unsigned char sid_ctx[] = "certd client certificates";

    if (!peers_is_enabled(p)) {
        return 0;
    }
    int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (p->cfg->client_auth == CONFIG_CLIENT_AUTH_REQUIRED) {
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, p);
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1 ||
        SSL_CTX_set_session_ticket_cb(ctx, NULL, ticket_decrypted, p) != 1) {
        (void)ossl_drain_errors("peers: SSL_CTX");
        return err_set(err, -EIO, CERTD_E_INTERNAL,
                       "cannot set the TLS context up for client certificates");
    }
    return 0;
}

void peers_identify(struct peers *p, SSL *ssl, struct peers_who *ret)
{
    memset(ret, 0, sizeof(*ret));
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    if (!peer || !peers_is_enabled(p)) {
        return;
    }
    ret->has_cert = true;
    struct conn_info *ci = SSL_get_ex_data(ssl, conn_idx);
    if (!ci) {
        /* A resumed session: verification did not run on this connection. */
        ci = calloc(1, sizeof(*ci));
        if (!ci) {
            ret->kind = PEERS_GONE; /* cannot tell: refuse rather than guess */
            return;
        }
        ci->chain = -1;
        subject_cn(peer, ci->cn, sizeof(ci->cn));
        int verr;
        char why[WHY_MAX];
        ci->has_pin = key_pin(p, peer, &ci->pin, &verr, why, sizeof(why)) == 0;
        if (SSL_set_ex_data(ssl, conn_idx, ci) != 1) {
            free(ci);
            ret->kind = PEERS_GONE;
            return;
        }
    }
    if (!ci->has_pin) {
        ret->kind = PEERS_GONE;
        return;
    }
    ret->pin = ci->pin;
    if (wants_pin(p)) {
        _cleanup_(cleanup_peers_store) struct peers_store *s = peers_store_ref(p);
        const struct pin_entry *e = pinstore_find(s->ps, &ci->pin);
        if (e) {
            ret->kind = PEERS_PIN;
            ret->entry = *e;
            (void)snprintf(ret->user, sizeof(ret->user), "%s", e->user);
            return;
        }
    }
    if (wants_chain(p)) {
        uint64_t gen = 0;
        X509_STORE_free(ca_store_get(p, &gen));
        if (ci->chain < 0 || ci->chain_gen != gen) {
            /* Not tried yet, or the authority changed since: its CA may be gone. */
            int verr;
            ci->chain =
                chain_ok(p, peer, SSL_get_peer_cert_chain(ssl), &ci->chain_gen, &verr) ? 1 : 0;
        }
        if (ci->chain == 1) {
            ret->kind = ci->cn[0] ? PEERS_CHAIN : PEERS_NONE;
            (void)snprintf(ret->user, sizeof(ret->user), "%s", ci->cn);
            return;
        }
    }
    ret->kind = PEERS_GONE;
}
