/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Authentication and sessions (auth.h). Everything here runs on the loop thread; the only work
 * done elsewhere is users_verify() in a worker job, which reads its own job and a users snapshot,
 * and users_load() in a reload job, which reads its own job only.
 *
 * Invariants:
 *  - a->users is the current snapshot. A snapshot is immutable once made and reference-counted
 *    on the loop thread only: each password job holds a reference, so a reload never frees the
 *    users a worker is reading. a->generation changes with every snapshot.
 *  - passwords exist only in struct secret (wiped when freed) and in the stack buffer Basic is
 *    decoded into (wiped before returning); tokens are kept only as SHA-256 digests, the Basic
 *    cache only as HMACs under a key that exists only inside an OpenSSL MAC context.
 *  - sessions[0..n_sessions) are in creation order with unique ids; tables never grow: the
 *    session table refuses, the cache and the rate tables evict.
 *  - every check or login calls its done exactly once: at once, from the worker job's done, or
 *    from auth_free for jobs still out (then the job is detached: job->a == NULL).
 *  - at most one reload job is out (a->reload) and at most one more is wanted
 *    (a->is_reload_pending); auth_free detaches the one out.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "log/log.h"
#include "util/base64.h"
#include "util/ossl.h"
#include "worker.h"

DEFINE_CLEANUP(EVP_MAC, EVP_MAC_free)
DEFINE_CLEANUP(EVP_MAC_CTX, EVP_MAC_CTX_free)

#define DIGEST_LEN      32u /* SHA-256 and HMAC-SHA-256 */
#define RANDOM_ID_BYTES 16u /* 128 bits for session ids and tokens */
#define RANDOM_ID_CHARS BASE64URL_LEN(RANDOM_ID_BYTES)
/* The decoded Basic credentials we can use: a name, a colon and a password. */
#define BASIC_DECODED_MAX (USERS_NAME_MAX + 1u + USERS_PASSWORD_MAX)
/* Rate-limit keys: an address in text form ("ffff:...:/64", INET6_ADDRSTRLEN + 3) or a name. */
#define RATE_KEY_MAX 64u

struct users_ref {
    unsigned n_refs;
    struct users *u;
};

struct session {
    struct auth_session_info info; /* info.token is always "" */
    uint8_t digest[DIGEST_LEN];    /* SHA-256 of the token's text */
    uint64_t last_used;
};

struct cache_entry {
    bool is_used;
    uint8_t mac[DIGEST_LEN]; /* HMAC of "user\0password" */
    char user[USERS_NAME_MAX + 1];
    uint64_t expires;
};

struct rate_entry {
    bool is_used;
    char key[RATE_KEY_MAX];
    unsigned failures;
    unsigned in_flight; /* password checks queued or running for this key */
    uint64_t last_failure;
};

/* A peer, worked out once per attempt: its rate-limit key and its form for logs. */
struct peer {
    char key[RATE_KEY_MAX];
    char log[RATE_KEY_MAX];
};

struct verify_job {
    struct auth *a; /* NULL once auth is gone */
    struct verify_job *prev, *next;
    struct users_ref *users;
    uint64_t generation;
    char user[USERS_NAME_MAX + 1];
    struct peer peer;
    struct secret *password;
    uint8_t mac[DIGEST_LEN]; /* Basic: the cache key on success */
    bool is_login;
    bool is_reserved; /* holds a rate-limit reservation (job_release ends it) */
    auth_done_fn check_done;
    auth_login_fn login_done;
    void *arg;
    int result; /* users_verify's, written by the worker */
};

/* A read of the users file on a worker. */
struct reload_job {
    struct auth *a; /* NULL once auth is gone */
    struct users *users;
    int r;
    struct certd_err err;
    char path[]; /* a copy: auth may be freed while the worker reads */
};

struct auth {
    struct worker_pool *workers;
    char *users_path;
    OSSL_LIB_CTX *libctx;
    const char *propq;
    EVP_MD *sha256;
    EVP_MAC_CTX *hmac; /* keyed and initialised; duplicated per use */

    struct users_ref *users;
    uint64_t generation;
    struct reload_job *reload; /* in flight */
    bool is_reload_pending;    /* another read wanted once it is done */

    struct cache_entry cache[AUTH_BASIC_CACHE_MAX];
    struct session sessions[AUTH_SESSIONS_MAX];
    size_t n_sessions;
    unsigned max_sessions;
    unsigned timeout;
    struct rate_entry rate_users[AUTH_RATE_TABLE_MAX];
    struct rate_entry rate_peers[AUTH_RATE_TABLE_MAX];

    struct verify_job *jobs; /* in flight */
    uint64_t n_checks;
    auth_clock_fn clock;
    void *clock_data;
};

/* ---- roles ---- */

uint32_t auth_role_privileges(enum user_role role)
{
    /* DSP8011 "Redfish standard roles" (Privileges: Login, ConfigureManager, ...). */
    switch (role) {
    case USER_ROLE_ADMINISTRATOR:
        return AUTH_PRIV_LOGIN | AUTH_PRIV_CONFIGURE_MANAGER | AUTH_PRIV_CONFIGURE_USERS |
               AUTH_PRIV_CONFIGURE_SELF | AUTH_PRIV_CONFIGURE_COMPONENTS;
    case USER_ROLE_OPERATOR:
        return AUTH_PRIV_LOGIN | AUTH_PRIV_CONFIGURE_COMPONENTS | AUTH_PRIV_CONFIGURE_SELF;
    case USER_ROLE_READONLY:
        return AUTH_PRIV_LOGIN | AUTH_PRIV_CONFIGURE_SELF;
    case USER_ROLE_MAX:
    default:
        return 0;
    }
}

const char *auth_privilege_name(uint32_t priv)
{
    switch (priv) {
    case AUTH_PRIV_LOGIN:
        return "Login";
    case AUTH_PRIV_CONFIGURE_MANAGER:
        return "ConfigureManager";
    case AUTH_PRIV_CONFIGURE_USERS:
        return "ConfigureUsers";
    case AUTH_PRIV_CONFIGURE_SELF:
        return "ConfigureSelf";
    case AUTH_PRIV_CONFIGURE_COMPONENTS:
        return "ConfigureComponents";
    default:
        return NULL;
    }
}

/* ---- small helpers ---- */

static uint64_t now_s(const struct auth *a)
{
    if (a->clock) {
        return a->clock(a->clock_data);
    }
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

/* Copy a string that fits (true), else leave dst empty (false). */
static bool copy_str(char *dst, size_t size, const char *src)
{
    size_t len = strnlen(src, size);
    if (len >= size) {
        dst[0] = '\0';
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

/*
 * A peer address for logs: our HTTP server gives numeric addresses, but this module does not
 * rely on it. Anything but the characters of an address becomes '?'; long values are cut.
 */
static void peer_sanitise(const char *peer, char out[RATE_KEY_MAX])
{
    size_t o = 0;
    if (!peer || !*peer) {
        peer = "-";
    }
    for (size_t i = 0; peer[i] && o < RATE_KEY_MAX - 1; i++) {
        char c = peer[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == ':' || c == '.' || c == '%' || c == '-' || c == '_';
        if (!ok) {
            c = '?';
        }
        out[o++] = c;
    }
    out[o] = '\0';
}

/* The rate-limit key of a peer (the address, or for IPv6 its /64) and its form for logs. */
static void peer_init(const char *peer, struct peer *ret)
{
    struct in6_addr a6;
    peer_sanitise(peer, ret->log);
    if (inet_pton(AF_INET6, ret->log, &a6) == 1) {
        char text[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            /* ::ffff:192.0.2.1 is the IPv4 host 192.0.2.1, one key for both spellings. */
            if (inet_ntop(AF_INET, &a6.s6_addr[12], text, sizeof(text))) {
                (void)snprintf(ret->key, RATE_KEY_MAX, "%s", text);
                return;
            }
        } else {
            memset(&a6.s6_addr[8], 0, 8);
            if (inet_ntop(AF_INET6, &a6, text, sizeof(text))) {
                (void)snprintf(ret->key, RATE_KEY_MAX, "%s/64", text);
                return;
            }
        }
    }
    memcpy(ret->key, ret->log, RATE_KEY_MAX);
}

/* A token or id as we make them: exactly RANDOM_ID_CHARS base64url characters. */
static bool is_random_id(const char *s)
{
    size_t len = strnlen(s, RANDOM_ID_CHARS + 1);
    return len == RANDOM_ID_CHARS && strspn(s, BASE64URL_ALPHABET) == len;
}

/* ---- crypto ---- */

static int crypto_setup(struct auth *a, struct certd_err *err)
{
    a->sha256 = EVP_MD_fetch(a->libctx, OSSL_DIGEST_NAME_SHA2_256, a->propq);
    _cleanup_(cleanup_EVP_MAC) EVP_MAC *mac =
        EVP_MAC_fetch(a->libctx, OSSL_MAC_NAME_HMAC, a->propq);
    if (!a->sha256 || !mac) {
        (void)ossl_drain_errors("auth: fetch SHA-256/HMAC");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "SHA-256 or HMAC is not available");
    }
    _cleanup_(cleanup_EVP_MAC_CTX) EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (!ctx) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    /* The key lives only in the MAC context: per process, never stored, never shown. */
    uint8_t key[DIGEST_LEN];
    if (RAND_priv_bytes_ex(a->libctx, key, sizeof(key), 0) != 1) {
        (void)ossl_drain_errors("auth: random key");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "no random bytes for the credential cache");
    }
    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    OSSL_PARAM params[3];
    size_t np = 0;
    params[np++] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    if (a->propq) {
        /* OSSL_PARAM wants a char *; EVP_MAC_init only reads it. */
        params[np++] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_PROPERTIES,
                                                        (char *)(uintptr_t)a->propq, 0);
    }
    params[np] = OSSL_PARAM_construct_end();
    int ok = EVP_MAC_init(ctx, key, sizeof(key), params);
    OPENSSL_cleanse(key, sizeof(key));
    if (ok != 1) {
        (void)ossl_drain_errors("auth: HMAC init");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot set up HMAC-SHA-256");
    }
    a->hmac = TAKE_PTR(ctx);
    return 0;
}

/* HMAC-SHA-256 of "user\0password" (the NUL keeps "ab"+"c" apart from "a"+"bc"). */
static int cache_mac(const struct auth *a, const char *user, const struct secret *pw,
                     uint8_t out[DIGEST_LEN])
{
    _cleanup_(cleanup_EVP_MAC_CTX) EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(a->hmac);
    size_t n = 0;
    if (!ctx || EVP_MAC_update(ctx, (const uint8_t *)user, strlen(user) + 1) != 1 ||
        EVP_MAC_update(ctx, pw->p, pw->len) != 1 || EVP_MAC_final(ctx, out, &n, DIGEST_LEN) != 1 ||
        n != DIGEST_LEN) {
        (void)ossl_drain_errors("auth: HMAC");
        return -EIO;
    }
    return 0;
}

static int token_digest(const struct auth *a, const char *token, uint8_t out[DIGEST_LEN])
{
    unsigned n = 0;
    if (EVP_Digest(token, strlen(token), out, &n, a->sha256, NULL) != 1 || n != DIGEST_LEN) {
        (void)ossl_drain_errors("auth: SHA-256");
        return -EIO;
    }
    return 0;
}

/* ---- the Basic cache ---- */

static void cache_clear(struct cache_entry *e)
{
    OPENSSL_cleanse(e, sizeof(*e));
}

static void cache_flush(struct auth *a)
{
    for (size_t i = 0; i < AUTH_BASIC_CACHE_MAX; i++) {
        cache_clear(&a->cache[i]);
    }
}

static const struct cache_entry *cache_find(struct auth *a, const uint8_t mac[DIGEST_LEN],
                                            uint64_t now)
{
    const struct cache_entry *hit = NULL;
    for (size_t i = 0; i < AUTH_BASIC_CACHE_MAX; i++) {
        struct cache_entry *e = &a->cache[i];
        if (e->is_used && now >= e->expires) {
            cache_clear(e);
        }
        if (e->is_used && CRYPTO_memcmp(e->mac, mac, DIGEST_LEN) == 0) {
            hit = e;
        }
    }
    return hit;
}

static void cache_add(struct auth *a, const char *user, const uint8_t mac[DIGEST_LEN], uint64_t now)
{
    struct cache_entry *slot = NULL;
    for (size_t i = 0; i < AUTH_BASIC_CACHE_MAX; i++) {
        struct cache_entry *e = &a->cache[i];
        if (!e->is_used || now >= e->expires || CRYPTO_memcmp(e->mac, mac, DIGEST_LEN) == 0) {
            slot = e;
            break;
        }
        /* Full: the entry that expires first goes. */
        if (!slot || e->expires < slot->expires) {
            slot = e;
        }
    }
    cache_clear(slot);
    slot->is_used = true;
    memcpy(slot->mac, mac, DIGEST_LEN);
    (void)copy_str(slot->user, sizeof(slot->user), user);
    /* A fixed lifetime from the check, not from the last use: a changed password elsewhere
     * (another host's copy of the file) is picked up within this time. */
    slot->expires = now + AUTH_BASIC_CACHE_SECONDS;
}

/* ---- rate limits ---- */

/* Until when e refuses attempts (0: it does not). */
static uint64_t rate_locked_until(const struct rate_entry *e)
{
    if (e->failures < AUTH_FAILURES_FREE) {
        return 0;
    }
    unsigned k = e->failures - AUTH_FAILURES_FREE; /* 0 for the first delay: 1 s */
    uint64_t delay = k >= 16 ? AUTH_LOCKOUT_MAX : (uint64_t)1 << k;
    if (delay > AUTH_LOCKOUT_MAX) {
        delay = AUTH_LOCKOUT_MAX;
    }
    return e->last_failure + delay;
}

/* Failures are forgotten after a quiet window that starts when the last delay ended. */
static bool rate_is_stale(const struct rate_entry *e, uint64_t now)
{
    if (e->in_flight > 0) {
        return false;
    }
    uint64_t quiet_since = rate_locked_until(e);
    if (quiet_since < e->last_failure) {
        quiet_since = e->last_failure;
    }
    return now > quiet_since + AUTH_FAILURE_WINDOW;
}

static struct rate_entry *rate_find(struct rate_entry *table, const char *key, uint64_t now)
{
    for (size_t i = 0; i < AUTH_RATE_TABLE_MAX; i++) {
        struct rate_entry *e = &table[i];
        if (!e->is_used) {
            continue;
        }
        if (rate_is_stale(e, now)) {
            memset(e, 0, sizeof(*e));
            continue;
        }
        if (strcmp(e->key, key) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Seconds until key may try again, 0 when it may now. */
static unsigned rate_wait(struct rate_entry *table, const char *key, uint64_t now)
{
    const struct rate_entry *e = rate_find(table, key, now);
    if (!e) {
        return 0;
    }
    uint64_t until = rate_locked_until(e);
    if (until > now) {
        return (unsigned)(until - now);
    }
    /*
     * Checks still running count as failures until they end: without this, a burst of
     * parallel guesses would all be queued before the first one failed, and every one of
     * them would get a full password check.
     */
    if (e->in_flight > 0 && e->failures + e->in_flight >= AUTH_FAILURES_FREE) {
        return 1;
    }
    return 0;
}

/* The entry of key, made when absent (evicting, when full, the entry quiet longest). */
static struct rate_entry *rate_get(struct rate_entry *table, const char *key, uint64_t now)
{
    struct rate_entry *e = rate_find(table, key, now);
    if (e) {
        return e;
    }
    struct rate_entry *busy = NULL;
    for (size_t i = 0; i < AUTH_RATE_TABLE_MAX; i++) {
        struct rate_entry *c = &table[i];
        if (!c->is_used) {
            e = c;
            break;
        }
        /*
         * Full: an entry that is locked or has checks running is evicted only when every one
         * is: a flood of other names or addresses cannot push a locked-out name out and so
         * reopen it to guessing. Among equals, the oldest failure goes.
         */
        bool is_busy = c->in_flight > 0 || rate_locked_until(c) > now;
        struct rate_entry **pick = is_busy ? &busy : &e;
        if (!*pick || c->last_failure < (*pick)->last_failure) {
            *pick = c;
        }
    }
    if (!e) {
        e = busy;
    }
    memset(e, 0, sizeof(*e));
    e->is_used = true;
    (void)copy_str(e->key, sizeof(e->key), key);
    return e;
}

static void rate_reserve(struct rate_entry *table, const char *key, uint64_t now)
{
    struct rate_entry *e = rate_get(table, key, now);
    e->in_flight++;
}

static void rate_release(struct rate_entry *table, const char *key, uint64_t now)
{
    struct rate_entry *e = rate_find(table, key, now);
    if (e && e->in_flight > 0) {
        e->in_flight--;
    }
}

/* Count a failure of key; returns the failures counted so far in its window. */
static unsigned rate_fail(struct rate_entry *table, const char *key, uint64_t now)
{
    struct rate_entry *e = rate_get(table, key, now);
    if (e->failures < UINT32_MAX) {
        e->failures++;
    }
    e->last_failure = now;
    return e->failures;
}

static void rate_reset(struct rate_entry *table, const char *key, uint64_t now)
{
    struct rate_entry *e = rate_find(table, key, now);
    if (e) {
        memset(e, 0, sizeof(*e));
    }
}

/* Record a failed attempt from p (for user too when user is set) and log it. */
static void note_failure(struct auth *a, const char *user, const struct peer *p, const char *why)
{
    uint64_t now = now_s(a);
    unsigned np = rate_fail(a->rate_peers, p->key, now);
    unsigned nu = user ? rate_fail(a->rate_users, user, now) : 0;
    /* Names reach here only when they have the shape of a user name: safe to log as they are. */
    if (user) {
        log_notice("auth: failed login for user %s from %s: %s", user, p->log, why);
    } else {
        log_notice("auth: failed login from %s: %s", p->log, why);
    }
    /* One line when a delay starts, not one per refused attempt (which are not logged). */
    if (np == AUTH_FAILURES_FREE) {
        log_notice("auth: %u failed logins from %s: further attempts delayed", np, p->log);
    }
    if (user && nu == AUTH_FAILURES_FREE) {
        log_notice("auth: %u failed logins for user %s: further attempts delayed", nu, user);
    }
}

static void note_success(struct auth *a, const char *user, const struct peer *p)
{
    uint64_t now = now_s(a);
    rate_reset(a->rate_peers, p->key, now);
    rate_reset(a->rate_users, user, now);
}

/*
 * The checks an attempt passes before its password may be hashed, in this order: the delay of
 * its address; the form of its credentials (form: 0 when they could be a user's, else why not,
 * as basic_parse says it, with why); the delay of its user name. AUTH_OK when it may go on,
 * else the answer, with *ret_wait for AUTH_THROTTLED (0 otherwise).
 */
static enum auth_result attempt_precheck(struct auth *a, const struct peer *p, const char *user,
                                         int form, const char *why, unsigned *ret_wait)
{
    uint64_t now = now_s(a);
    *ret_wait = rate_wait(a->rate_peers, p->key, now);
    if (*ret_wait > 0) {
        return AUTH_THROTTLED;
    }
    if (form == -ENOMEM) {
        return AUTH_UNAVAILABLE;
    }
    if (form == -EOPNOTSUPP) {
        /* Another scheme (Bearer, Digest): not ours, not an attempt at our passwords. */
        log_debug("auth: %s", why);
        return AUTH_DENIED;
    }
    if (form < 0) {
        note_failure(a, NULL, p, why);
        return AUTH_DENIED;
    }
    *ret_wait = rate_wait(a->rate_users, user, now);
    return *ret_wait > 0 ? AUTH_THROTTLED : AUTH_OK;
}

/* ---- users ---- */

static struct users_ref *users_ref_unref(struct users_ref *r)
{
    if (r) {
        assert(r->n_refs > 0);
        if (--r->n_refs == 0) {
            (void)users_free(r->u);
            free(r);
        }
    }
    return NULL;
}

static struct users_ref *users_ref_ref(struct users_ref *r)
{
    r->n_refs++;
    return r;
}

static void session_remove_at(struct auth *a, size_t i)
{
    assert(i < a->n_sessions);
    OPENSSL_cleanse(&a->sessions[i], sizeof(a->sessions[i]));
    memmove(&a->sessions[i], &a->sessions[i + 1], (a->n_sessions - i - 1) * sizeof(a->sessions[0]));
    a->n_sessions--;
    OPENSSL_cleanse(&a->sessions[a->n_sessions], sizeof(a->sessions[0]));
}

/* Make u (owned) the current users: sessions follow, the cache goes. */
static int users_apply(struct auth *a, struct users *u)
{
    struct users_ref *r = calloc(1, sizeof(*r));
    if (!r) {
        (void)users_free(u);
        return -ENOMEM;
    }
    r->u = u;
    r->n_refs = 1;
    const struct users *old = a->users ? a->users->u : NULL;

    for (size_t i = a->n_sessions; i-- > 0;) {
        struct session *s = &a->sessions[i];
        const struct user *nu = users_find(u, s->info.user);
        const struct user *ou = old ? users_find(old, s->info.user) : NULL;
        if (!nu) {
            log_info("auth: session %s of user %s ended: the user was removed", s->info.id,
                     s->info.user);
            session_remove_at(a, i);
        } else if (ou && strcmp(nu->hash, ou->hash) != 0) {
            log_info("auth: session %s of user %s ended: the password changed", s->info.id,
                     s->info.user);
            session_remove_at(a, i);
        } else if (nu->role != s->info.role) {
            log_info("auth: session %s of user %s: role now %s", s->info.id, s->info.user,
                     user_role_name(nu->role));
            s->info.role = nu->role;
        }
    }
    cache_flush(a);
    a->users = users_ref_unref(a->users);
    a->users = r;
    a->generation++;
    return 0;
}

/* Make u (owned) the current users, and say so. */
static int users_use(struct auth *a, struct users *u)
{
    size_t n = u->n;
    int r = users_apply(a, u);
    if (r < 0) {
        return r;
    }
    log_info("auth: users file %s loaded: %zu users", a->users_path, n);
    return 0;
}

/* Worker thread: reads only its job. */
static void reload_run(void *arg)
{
    struct reload_job *j = arg;
    j->r = users_load(j->path, &j->users, &j->err);
}

static void reload_done(void *arg, bool cancelled)
{
    struct reload_job *j = arg;
    struct auth *a = j->a;

    if (a) {
        a->reload = NULL;
        if (cancelled) {
            /* Shutting down: the users in use serve to the end. */
            a->is_reload_pending = false;
        } else if (j->r < 0) {
            log_warning("auth: cannot use the users file, keeping the previous users: %s",
                        j->err.msg);
        } else if (users_use(a, TAKE_PTR(j->users)) < 0) {
            log_warning("auth: cannot use the users file, keeping the previous users: out of "
                        "memory");
        }
        if (a->is_reload_pending) {
            a->is_reload_pending = false;
            auth_reload_async(a);
        }
    }
    (void)users_free(j->users);
    free(j);
}

/* ---- sessions ---- */

static void sessions_expire(struct auth *a)
{
    uint64_t now = now_s(a);
    for (size_t i = a->n_sessions; i-- > 0;) {
        struct session *s = &a->sessions[i];
        if (now >= s->last_used + a->timeout) {
            log_info("auth: session %s of user %s timed out", s->info.id, s->info.user);
            session_remove_at(a, i);
        }
    }
}

static struct session *session_by_id(struct auth *a, const char *id)
{
    for (size_t i = 0; i < a->n_sessions; i++) {
        if (strcmp(a->sessions[i].info.id, id) == 0) {
            return &a->sessions[i];
        }
    }
    return NULL;
}

/* A new session for user (role) with a new id and token; the token goes to *ret only. */
static int session_new(struct auth *a, const char *user, enum user_role role,
                       struct auth_session_info *ret)
{
    /*
     * One user may hold AUTH_SESSIONS_PER_USER_MAX sessions; a further login ends that user's
     * least recently used one. So no single account, however low its role, can fill the table
     * and lock everybody else out, and a script that never logs out keeps working.
     */
    size_t n_user = 0, lru = SIZE_MAX;
    for (size_t i = 0; i < a->n_sessions; i++) {
        if (strcmp(a->sessions[i].info.user, user) == 0) {
            n_user++;
            if (lru == SIZE_MAX || a->sessions[i].last_used < a->sessions[lru].last_used) {
                lru = i;
            }
        }
    }
    if (n_user >= AUTH_SESSIONS_PER_USER_MAX) {
        assert(lru != SIZE_MAX);
        log_info("auth: user %s has %zu sessions: ending the least recently used, %s", user, n_user,
                 a->sessions[lru].info.id);
        session_remove_at(a, lru);
    }
    if (a->n_sessions >= a->max_sessions) {
        return -E2BIG;
    }
    uint8_t raw[2 * RANDOM_ID_BYTES];
    struct auth_session_info info = { .role = role, .created = time(NULL) };
    (void)copy_str(info.user, sizeof(info.user), user);
    /* A repeated id would need 2^64 sessions; still, ids must be unique, so check. */
    do {
        if (RAND_bytes_ex(a->libctx, raw, sizeof(raw), 0) != 1) {
            (void)ossl_drain_errors("auth: session random");
            OPENSSL_cleanse(raw, sizeof(raw));
            return -EIO;
        }
        base64url_encode(raw, RANDOM_ID_BYTES, info.id, sizeof(info.id));
        base64url_encode(raw + RANDOM_ID_BYTES, RANDOM_ID_BYTES, info.token, sizeof(info.token));
    } while (session_by_id(a, info.id));
    OPENSSL_cleanse(raw, sizeof(raw));

    struct session *s = &a->sessions[a->n_sessions];
    memset(s, 0, sizeof(*s));
    if (token_digest(a, info.token, s->digest) < 0) {
        OPENSSL_cleanse(&info, sizeof(info));
        return -EIO;
    }
    s->info = info;
    s->info.token[0] = '\0';
    s->last_used = now_s(a);
    a->n_sessions++;
    if (a->n_sessions == a->max_sessions) {
        log_warning("auth: %zu sessions exist, the most allowed: logins are refused until one "
                    "ends",
                    a->n_sessions);
    }
    *ret = info;
    OPENSSL_cleanse(&info, sizeof(info));
    return 0;
}

/* ---- identities ---- */

static void identity_fill(struct auth_identity *id, const char *user, enum user_role role,
                          const char *session_id)
{
    memset(id, 0, sizeof(*id));
    (void)copy_str(id->user, sizeof(id->user), user);
    id->role = role;
    id->privileges = auth_role_privileges(role);
    (void)copy_str(id->session_id, sizeof(id->session_id), session_id);
}

int auth_check_peer_user(const struct auth *a, const char *user, enum user_role role,
                         struct certd_err *err)
{
    const struct user *u = users_find(auth_users(a), user);
    if (u && u->role != role) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "UserName %s is an account of the users file with role %s: a pin acting "
                       "as it must have that role, or use another name",
                       u->name, user_role_name(u->role));
    }
    return 0;
}

bool auth_identify_pinned(const struct auth *a, const char *user, enum user_role role,
                          struct auth_identity *ret)
{
    struct certd_err err = { 0 };
    if (auth_check_peer_user(a, user, role, &err) < 0) {
        /* The API refuses such a pin; a store edited by hand may hold one. */
        log_notice("a pinned client is not let in without credentials: %s", err.msg);
        return false;
    }
    identity_fill(ret, user, role, "");
    return true;
}

bool auth_identify_user(const struct auth *a, const char *user, struct auth_identity *ret)
{
    const struct user *u = users_find(auth_users(a), user);
    if (!u) {
        return false;
    }
    identity_fill(ret, u->name, u->role, "");
    return true;
}

/* ---- password jobs ---- */

static struct verify_job *job_free(struct verify_job *j)
{
    if (j) {
        j->users = users_ref_unref(j->users);
        j->password = secret_free(j->password);
        OPENSSL_cleanse(j->mac, sizeof(j->mac));
        free(j);
    }
    return NULL;
}

/* A password check of user (copied) from p, taking password; NULL without memory. */
static struct verify_job *job_new(const char *user, const struct peer *p, struct secret *password)
{
    struct verify_job *j = password ? calloc(1, sizeof(*j)) : NULL;
    if (!j) {
        (void)secret_free(password);
        return NULL;
    }
    (void)copy_str(j->user, sizeof(j->user), user);
    j->peer = *p;
    j->password = password;
    return j;
}

static void job_unlink(struct verify_job *j)
{
    struct auth *a = j->a;
    if (!a) {
        return;
    }
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        a->jobs = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    }
    j->prev = j->next = NULL;
}

static void job_fail(struct verify_job *j, enum auth_result result, unsigned retry_after)
{
    if (j->is_login) {
        j->login_done(j->arg, result, NULL, retry_after);
    } else {
        j->check_done(j->arg, result, NULL, retry_after);
    }
}

/* Worker thread: reads only the job and its users snapshot. */
static void verify_run(void *arg)
{
    struct verify_job *j = arg;
    j->result = users_verify(j->users->u, j->user, j->password);
}

static void job_release(struct auth *a, struct verify_job *j);

static void verify_done(void *arg, bool cancelled)
{
    struct verify_job *j = arg;
    struct auth *a = j->a;

    if (!a) {
        /* auth_free already answered this one. */
        (void)job_free(j);
        return;
    }
    job_unlink(j);
    j->a = NULL;
    job_release(a, j);

    if (cancelled || j->result < 0) {
        /* Shutting down, or no memory to hash: the client did nothing wrong. */
        job_fail(j, AUTH_UNAVAILABLE, 0);
        (void)job_free(j);
        return;
    }

    const struct user *then = users_find(j->users->u, j->user);
    if (j->result != 1) {
        note_failure(a, j->user, &j->peer, then ? "wrong password" : "unknown user");
        job_fail(j, AUTH_DENIED, 0);
        (void)job_free(j);
        return;
    }
    /* The file may have changed while the worker hashed: the hash checked must still be the
     * user's. Not a failure of the client's: nothing is counted. */
    const struct user *cur = users_find(a->users->u, j->user);
    if (!cur || !then || strcmp(then->hash, cur->hash) != 0) {
        log_notice("auth: login for user %s from %s refused: the user changed meanwhile", j->user,
                   j->peer.log);
        job_fail(j, AUTH_DENIED, 0);
        (void)job_free(j);
        return;
    }

    note_success(a, j->user, &j->peer);
    if (j->is_login) {
        sessions_expire(a);
        struct auth_session_info info;
        int r = session_new(a, j->user, cur->role, &info);
        if (r < 0) {
            /* The table filled up while the password was checked. */
            log_warning("auth: no session for user %s: %s", j->user,
                        r == -E2BIG ? "session limit reached" : "no random bytes");
            job_fail(j, r == -E2BIG ? AUTH_SESSION_LIMIT : AUTH_UNAVAILABLE, 0);
        } else {
            log_info("auth: session %s created for user %s from %s", info.id, j->user, j->peer.log);
            j->login_done(j->arg, AUTH_OK, &info, 0);
            OPENSSL_cleanse(&info, sizeof(info));
        }
    } else {
        if (j->generation == a->generation) {
            cache_add(a, j->user, j->mac, now_s(a));
        }
        struct auth_identity id;
        identity_fill(&id, j->user, cur->role, "");
        j->check_done(j->arg, AUTH_OK, &id, 0);
    }
    (void)job_free(j);
}

/* The rate-limit reservations of a password check end with it. */
static void job_release(struct auth *a, struct verify_job *j)
{
    if (j->is_reserved) {
        uint64_t now = now_s(a);
        rate_release(a->rate_peers, j->peer.key, now);
        rate_release(a->rate_users, j->user, now);
        j->is_reserved = false;
    }
}

/* Hand a password check to the workers; answers UNAVAILABLE itself when they refuse. */
static void job_submit(struct auth *a, struct verify_job *j)
{
    uint64_t now = now_s(a);
    rate_reserve(a->rate_peers, j->peer.key, now);
    rate_reserve(a->rate_users, j->user, now);
    j->is_reserved = true;
    j->a = a;
    j->users = users_ref_ref(a->users);
    j->generation = a->generation;
    j->next = a->jobs;
    if (a->jobs) {
        a->jobs->prev = j;
    }
    a->jobs = j;
    int r = worker_submit(a->workers, WORKER_LANE_PARALLEL, verify_run, verify_done, j);
    if (r < 0) {
        job_unlink(j);
        job_release(a, j);
        /* Under load this repeats for every request: the 503 tells the client, not the log. */
        log_debug("auth: password check refused by the workers: %s", strerror(-r));
        job_fail(j, AUTH_UNAVAILABLE, 0);
        (void)job_free(j);
        return;
    }
    a->n_checks++;
}

/* ---- Basic ---- */

/*
 * Parse "Basic <base64 of user:password>" (RFC 7617 §2, RFC 7235 §2.1: scheme case-insensitive,
 * one or more spaces). On success user holds a name of the valid shape and *ret_pw a password
 * within the policy (UTF-8 without control characters: RFC 7617 §2 forbids control characters,
 * §2.1 gives UTF-8). On failure *why says what was wrong (for the log; never a part of the
 * credentials): -E2BIG, -EOPNOTSUPP (another scheme), -EBADMSG, -ENOMEM.
 */
static int basic_parse(const char *value, char user[USERS_NAME_MAX + 1], struct secret **ret_pw,
                       const char **why)
{
    size_t len = strnlen(value, AUTH_AUTHORIZATION_MAX + 1);
    if (len > AUTH_AUTHORIZATION_MAX) {
        *why = "Authorization header too long";
        return -E2BIG;
    }
    if (len < 6 || strncasecmp(value, "Basic ", 6) != 0) {
        *why = "not Basic credentials";
        return -EOPNOTSUPP;
    }
    const char *b64 = value + 6;
    b64 += strspn(b64, " ");

    uint8_t buf[BASIC_DECODED_MAX];
    size_t n = 0;
    /* RFC 7617 §2 (token68): no blanks inside the credentials. */
    int r = base64_decode(span_from_str(b64), 0, buf, sizeof(buf), &n);
    if (r < 0) {
        OPENSSL_cleanse(buf, sizeof(buf));
        *why = r == -E2BIG ? "credentials too long" : "credentials not in base64";
        return r;
    }
    /* RFC 7617 §2: the first colon splits; the user-id cannot contain one. */
    const uint8_t *colon = memchr(buf, ':', n);
    size_t user_len = colon ? (size_t)(colon - buf) : 0;
    if (!colon) {
        *why = "credentials without a colon";
        r = -EBADMSG;
    } else if (user_len == 0 || user_len > USERS_NAME_MAX || memchr(buf, '\0', user_len)) {
        *why = "malformed user name";
        r = -EBADMSG;
    } else {
        memcpy(user, buf, user_len);
        user[user_len] = '\0';
        if (users_check_name(user, NULL) < 0) {
            *why = "malformed user name";
            r = -EBADMSG;
        }
    }
    struct secret *pw = NULL;
    if (r == 0) {
        pw = secret_new(colon + 1, n - user_len - 1);
        if (!pw) {
            *why = "out of memory";
            r = -ENOMEM;
        } else if (users_check_password(pw, NULL) < 0) {
            /* No password of a user can be outside the policy: refused without hashing. */
            *why = "password outside the password policy";
            pw = secret_free(pw);
            r = -EBADMSG;
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (r < 0) {
        user[0] = '\0';
        return r;
    }
    *ret_pw = pw;
    return 0;
}

static void check_token(struct auth *a, const char *token, auth_done_fn done, void *arg)
{
    if (!is_random_id(token)) {
        log_debug("auth: malformed X-Auth-Token");
        done(arg, AUTH_DENIED, NULL, 0);
        return;
    }
    uint8_t digest[DIGEST_LEN];
    if (token_digest(a, token, digest) < 0) {
        done(arg, AUTH_UNAVAILABLE, NULL, 0);
        return;
    }
    sessions_expire(a);
    struct session *found = NULL;
    for (size_t i = 0; i < a->n_sessions; i++) {
        if (CRYPTO_memcmp(a->sessions[i].digest, digest, DIGEST_LEN) == 0) {
            found = &a->sessions[i];
        }
    }
    if (!found) {
        log_debug("auth: unknown or expired session token");
        done(arg, AUTH_DENIED, NULL, 0);
        return;
    }
    found->last_used = now_s(a);
    struct auth_identity id;
    identity_fill(&id, found->info.user, found->info.role, found->info.id);
    done(arg, AUTH_OK, &id, 0);
}

void auth_check(struct auth *a, const char *authorization, const char *x_auth_token,
                const char *peer, auth_done_fn done, void *arg)
{
    assert(a && done);

    /* An empty X-Auth-Token (some clients always send the header) is no token. */
    if (x_auth_token && x_auth_token[0]) {
        check_token(a, x_auth_token, done, arg);
        return;
    }
    if (!authorization) {
        done(arg, AUTH_NO_CREDENTIALS, NULL, 0);
        return;
    }

    struct peer p;
    peer_init(peer, &p);
    char user[USERS_NAME_MAX + 1] = "";
    _cleanup_(cleanup_secret) struct secret *pw = NULL;
    const char *why = NULL;
    int r = basic_parse(authorization, user, &pw, &why);
    unsigned wait = 0;
    enum auth_result result = attempt_precheck(a, &p, user, r, why, &wait);
    if (result != AUTH_OK) {
        done(arg, result, NULL, wait);
        return;
    }

    uint8_t mac[DIGEST_LEN];
    if (cache_mac(a, user, pw, mac) < 0) {
        done(arg, AUTH_UNAVAILABLE, NULL, 0);
        return;
    }
    const struct cache_entry *hit = cache_find(a, mac, now_s(a));
    const struct user *u = hit ? users_find(a->users->u, hit->user) : NULL;
    if (u && strcmp(u->name, user) == 0) {
        OPENSSL_cleanse(mac, sizeof(mac));
        note_success(a, user, &p);
        struct auth_identity id;
        identity_fill(&id, u->name, u->role, "");
        done(arg, AUTH_OK, &id, 0);
        return;
    }

    struct verify_job *j = job_new(user, &p, TAKE_PTR(pw));
    if (!j) {
        OPENSSL_cleanse(mac, sizeof(mac));
        done(arg, AUTH_UNAVAILABLE, NULL, 0);
        return;
    }
    memcpy(j->mac, mac, sizeof(mac));
    OPENSSL_cleanse(mac, sizeof(mac));
    j->check_done = done;
    j->arg = arg;
    job_submit(a, j);
}

void auth_login(struct auth *a, const char *user, const struct secret *password, const char *peer,
                auth_login_fn done, void *arg)
{
    assert(a && done);

    struct peer p;
    peer_init(peer, &p);
    int form = 0;
    const char *why = NULL;
    if (!user || !password || !password->p || users_check_name(user, NULL) < 0) {
        form = -EBADMSG;
        why = "malformed user name";
    } else if (users_check_password(password, NULL) < 0) {
        /* No password of a user can be outside the policy: refused without hashing. */
        form = -EBADMSG;
        why = "password outside the password policy";
    }
    unsigned wait = 0;
    enum auth_result result = attempt_precheck(a, &p, user, form, why, &wait);
    if (result != AUTH_OK) {
        done(arg, result, NULL, wait);
        return;
    }
    /* Refuse before hashing when no session could be made anyway (checked again after). */
    sessions_expire(a);
    if (a->n_sessions >= a->max_sessions) {
        /* The warning came when the table filled up; one line per refusal would be a flood. */
        log_debug("auth: login of user %s refused: %zu sessions exist", user, a->n_sessions);
        done(arg, AUTH_SESSION_LIMIT, NULL, 0);
        return;
    }

    struct verify_job *j = job_new(user, &p, secret_new(password->p, password->len));
    if (!j) {
        done(arg, AUTH_UNAVAILABLE, NULL, 0);
        return;
    }
    j->is_login = true;
    j->login_done = done;
    j->arg = arg;
    job_submit(a, j);
}

/* ---- sessions API ---- */

size_t auth_n_sessions(struct auth *a)
{
    assert(a);
    sessions_expire(a);
    return a->n_sessions;
}

const struct auth_session_info *auth_session_at(struct auth *a, size_t i)
{
    assert(a);
    return i < a->n_sessions ? &a->sessions[i].info : NULL;
}

const struct auth_session_info *auth_session_find(struct auth *a, const char *id)
{
    assert(a);
    if (!id) {
        return NULL;
    }
    sessions_expire(a);
    const struct session *s = session_by_id(a, id);
    return s ? &s->info : NULL;
}

int auth_session_delete(struct auth *a, const char *id)
{
    assert_return(a && id, -EINVAL);
    sessions_expire(a);
    for (size_t i = 0; i < a->n_sessions; i++) {
        if (strcmp(a->sessions[i].info.id, id) == 0) {
            log_info("auth: session %s of user %s deleted", id, a->sessions[i].info.user);
            session_remove_at(a, i);
            return 0;
        }
    }
    return -ENOENT;
}

int auth_set_max_sessions(struct auth *a, unsigned n)
{
    assert_return(a, -EINVAL);
    assert_return(n >= 1 && n <= AUTH_SESSIONS_MAX, -EINVAL);
    a->max_sessions = n;
    return 0;
}

unsigned auth_session_timeout(const struct auth *a)
{
    assert(a);
    return a->timeout;
}

int auth_set_session_timeout(struct auth *a, unsigned seconds)
{
    assert_return(a, -EINVAL);
    assert_return(seconds >= AUTH_SESSION_TIMEOUT_MIN && seconds <= AUTH_SESSION_TIMEOUT_MAX,
                  -EINVAL);
    a->timeout = seconds;
    return 0;
}

void auth_reload_async(struct auth *a)
{
    assert(a);
    if (a->reload) {
        /* The read under way may have missed the change that led here: one more after it. */
        a->is_reload_pending = true;
        return;
    }
    size_t len = strlen(a->users_path);
    struct reload_job *j = calloc(1, sizeof(*j) + len + 1);
    if (!j) {
        log_warning("auth: cannot reload the users file: out of memory; keeping the previous "
                    "users");
        return;
    }
    memcpy(j->path, a->users_path, len + 1);
    j->a = a;
    int r = worker_submit(a->workers, WORKER_LANE_PARALLEL, reload_run, reload_done, j);
    if (r < 0) {
        free(j);
        log_warning("auth: cannot reload the users file now (%s); keeping the previous users "
                    "until it changes again or SIGHUP",
                    strerror(-r));
        return;
    }
    a->reload = j;
}

const struct users *auth_users(const struct auth *a)
{
    assert(a);
    return a->users->u;
}

uint64_t auth_password_checks(const struct auth *a)
{
    return a ? a->n_checks : 0;
}

void auth_set_clock(struct auth *a, auth_clock_fn clock, void *userdata)
{
    assert(a);
    a->clock = clock;
    a->clock_data = userdata;
}

/* ---- life cycle ---- */

struct auth *auth_free(struct auth *a)
{
    if (!a) {
        return NULL;
    }
    /* Detach every job first: their callbacks must find nothing half-freed. */
    struct verify_job *list = a->jobs;
    a->jobs = NULL;
    for (struct verify_job *j = list; j; j = j->next) {
        j->a = NULL;
    }
    if (a->reload) {
        a->reload->a = NULL; /* the pool frees it */
    }
    while (list) {
        struct verify_job *j = list;
        list = j->next;
        j->prev = j->next = NULL;
        /* The job stays with the pool; verify_done frees it and its users reference. */
        job_fail(j, AUTH_UNAVAILABLE, 0);
    }
    cache_flush(a);
    OPENSSL_cleanse(a->sessions, sizeof(a->sessions));
    a->users = users_ref_unref(a->users);
    EVP_MAC_CTX_free(a->hmac);
    EVP_MD_free(a->sha256);
    free(a->users_path);
    free(a);
    return NULL;
}

int auth_new_ex(struct event_base *base, struct worker_pool *workers, const char *users_path,
                OSSL_LIB_CTX *libctx, const char *propq, struct auth **ret, struct certd_err *err)
{
    assert_return(base && workers && users_path && ret, -EINVAL);

    _cleanup_(cleanup_auth) struct auth *a = calloc(1, sizeof(*a));
    if (!a) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    a->workers = workers;
    a->libctx = libctx;
    a->propq = propq;
    a->timeout = AUTH_SESSION_TIMEOUT_DEFAULT;
    a->max_sessions = AUTH_SESSIONS_MAX;
    a->users_path = strdup(users_path);
    if (!a->users_path) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = crypto_setup(a, err);
    if (r < 0) {
        return r;
    }
    struct users *u = NULL;
    r = users_load(users_path, &u, err);
    if (r < 0) {
        return r;
    }
    r = users_use(a, u);
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    *ret = TAKE_PTR(a);
    return 0;
}

int auth_new(struct event_base *base, struct worker_pool *workers, const char *users_path,
             struct auth **ret, struct certd_err *err)
{
    return auth_new_ex(base, workers, users_path, NULL, NULL, ret, err);
}
