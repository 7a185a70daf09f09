/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Authentication and sessions for certd's HTTP front ends (issue #3):
 *  - users from the users file (users/users.h), re-read on a worker by auth_reload_async (the
 *    daemon calls it when the file changes and on SIGHUP) and applied on the loop: a removed
 *    user's sessions end, a changed role applies at once;
 *  - HTTP Basic (RFC 7617, UTF-8) and X-Auth-Token sessions (Redfish SessionService);
 *  - password checks (yescrypt, tens of ms) run on the worker pool, never on the loop;
 *    successful Basic credentials are remembered for AUTH_BASIC_CACHE_SECONDS under a keyed
 *    hash (HMAC-SHA-256 with a random per-process key of "user\0password"; never the password),
 *    at most AUTH_BASIC_CACHE_MAX entries, all forgotten when the users file changes;
 *  - session tokens: 128 random bits, base64url; stored only as SHA-256 digests, looked up by
 *    digest and compared with CRYPTO_memcmp; ids are separate random values (the id appears in
 *    URIs, the token never does); idle timeout (SessionService SessionTimeout, 30..86400 s,
 *    default AUTH_SESSION_TIMEOUT_DEFAULT); at most auth_set_max_sessions (AUTH_SESSIONS_MAX)
 *    sessions, AUTH_SESSIONS_PER_USER_MAX of them one user's;
 *  - failed logins are rate-limited per user name and per peer address: after
 *    AUTH_FAILURES_FREE failures within AUTH_FAILURE_WINDOW seconds, each further attempt for that
 *    name or address is refused without checking the password until a delay has passed that
 *    doubles per failure (1 s, 2 s, 4 s ... at most AUTH_LOCKOUT_MAX seconds); a success resets
 *    the counters of that name and address. Tables are bounded (oldest entries evicted).
 *    Details: a wrong password or an unknown name counts against both the name and the address;
 *    malformed Basic credentials and logins (a name or password nobody can have) count against
 *    the address only, and are refused without hashing; tokens never count (a 128-bit token
 *    cannot be guessed, and expired sessions are routine). The counters are forgotten after
 *    AUTH_FAILURE_WINDOW seconds without a failure once any delay has passed. IPv6 peers count
 *    per /64 (one host usually holds a whole /64). Refused attempts do not count.
 *  - a password change (a new hash for a user in the file) ends that user's sessions as well: a
 *    reset after a compromise must lock the intruder out. Checks in flight when the file
 *    changes succeed only if the user still has the hash they were checked against.
 * Roles map to Redfish privileges as DSP8011's standard roles do.
 * Failed logins are logged at notice with the user name (only names of the valid shape; others
 * are not logged, they may be a password typed into the wrong field) and the peer; passwords and
 * tokens never.
 * Thread-safety: loop thread only (worker jobs touch only their own job data and an immutable,
 * reference-counted snapshot of the users).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/types.h>

#include "error/error.h"
#include "users/users.h"
#include "util/cleanup.h"
#include "util/secret.h"

struct event_base;
struct worker_pool;
struct auth;

#define AUTH_SESSIONS_MAX 64u
/* Sessions of one user; a further login ends that user\'s least recently used session. */
#define AUTH_SESSIONS_PER_USER_MAX   8u
#define AUTH_SESSION_TIMEOUT_DEFAULT 1800u
#define AUTH_SESSION_TIMEOUT_MIN     30u
#define AUTH_SESSION_TIMEOUT_MAX     86400u
#define AUTH_BASIC_CACHE_SECONDS     60u
#define AUTH_BASIC_CACHE_MAX         32u
#define AUTH_FAILURES_FREE           5u
#define AUTH_FAILURE_WINDOW          300u
#define AUTH_LOCKOUT_MAX             300u
/* Session ids and tokens: 128 bits in base64url without padding = 22 characters. */
#define AUTH_SESSION_ID_MAX 23u
#define AUTH_TOKEN_MAX      23u
/*
 * Longest Authorization value looked at: "Basic " and the base64 of the longest user name, a
 * colon and the longest password (33 + 128 bytes: 216 characters), with room for extra blanks.
 * Longer values cannot hold credentials that match and are refused unread.
 */
#define AUTH_AUTHORIZATION_MAX 256u
/* Entries of each rate-limit table (user names, peer addresses); the oldest goes first. */
#define AUTH_RATE_TABLE_MAX 256u

/* Redfish privileges (Privileges_v1 PrivilegeType). */
enum auth_privilege {
    AUTH_PRIV_LOGIN = 1u << 0,
    AUTH_PRIV_CONFIGURE_MANAGER = 1u << 1,
    AUTH_PRIV_CONFIGURE_USERS = 1u << 2,
    AUTH_PRIV_CONFIGURE_SELF = 1u << 3,
    AUTH_PRIV_CONFIGURE_COMPONENTS = 1u << 4,
};

/* Administrator: all five; Operator: Login, ConfigureComponents, ConfigureSelf; ReadOnly: Login,
 * ConfigureSelf. 0 for an out-of-range role. */
uint32_t auth_role_privileges(enum user_role role);
/* "Login", "ConfigureManager", ... for one bit; NULL otherwise. */
const char *auth_privilege_name(uint32_t priv);

/* Who made a request. */
struct auth_identity {
    char user[USERS_NAME_MAX + 1];
    enum user_role role;
    uint32_t privileges;
    char session_id[AUTH_SESSION_ID_MAX]; /* "" for Basic */
};

enum auth_result {
    AUTH_OK,
    AUTH_NO_CREDENTIALS, /* neither header: 401 */
    AUTH_DENIED,         /* wrong name, password or token, expired session, malformed header */
    AUTH_THROTTLED,      /* too many failures: refused unchecked; retry_after says when */
    AUTH_UNAVAILABLE,    /* the worker queue is full or memory ran out: 503 */
    AUTH_SESSION_LIMIT,  /* auth_login only: the most sessions allowed exist already */
};

/* id is valid only during the call (NULL unless AUTH_OK); retry_after in seconds (THROTTLED). */
typedef void (*auth_done_fn)(void *arg, enum auth_result result, const struct auth_identity *id,
                             unsigned retry_after);

/*
 * An authenticator over the users file at users_path (copied). The file is read at once:
 * -ENOENT/other errors with err when it cannot be loaded (certd bootstraps it first).
 * base and workers are borrowed. Free the pool before auth or after it; once it is freed (or
 * stopped), password checks answer AUTH_UNAVAILABLE, and after worker_pool_free only auth_free
 * may be called.
 * auth_new_ex takes the library context and property query (borrowed; they must outlive auth)
 * for the HMAC, SHA-256 and random bytes; auth_new is auth_new_ex(..., NULL, NULL, ...) (tests).
 * Also -EIO with CERTD_E_INTERNAL when those cannot be fetched, -ENOMEM, -EINVAL.
 */
_must_check_ int auth_new(struct event_base *base, struct worker_pool *workers,
                          const char *users_path, struct auth **ret, struct certd_err *err);
_must_check_ int auth_new_ex(struct event_base *base, struct worker_pool *workers,
                             const char *users_path, OSSL_LIB_CTX *libctx, const char *propq,
                             struct auth **ret, struct certd_err *err);
/*
 * Free a (NULL accepted; returns NULL). Checks and logins still waiting for a worker get their
 * done called from here with AUTH_UNAVAILABLE (they must not call auth again); their worker jobs,
 * and a reload under way, are released when the pool hands them back.
 */
struct auth *auth_free(struct auth *a);
DEFINE_CLEANUP_STRUCT(auth, auth_free)

/*
 * Authenticate a request from its Authorization and X-Auth-Token header values (either may be
 * NULL) and the peer address. A token wins when both are given; an Authorization of another
 * scheme than Basic is AUTH_DENIED (front ends answer 401 with WWW-Authenticate: Basic
 * realm="...", charset="UTF-8", RFC 7617 §2.1). done is called exactly once:
 * at once (token, cache hit, no credentials, throttled) or later from the loop thread after a
 * worker checked the password. A session use refreshes its idle timer.
 */
void auth_check(struct auth *a, const char *authorization, const char *x_auth_token,
                const char *peer, auth_done_fn done, void *arg);

/*
 * Identities a client certificate gives (peers.h), with the users file's rules applied here, in
 * one place. auth_check_peer_user: may a pin act as user with role? 0; or -EINVAL with
 * CERTD_E_FIELD_INVALID when user is an account of the users file with another role (who would
 * it be, for its own sessions, its own account, the log?). auth_identify_pinned: *ret for a
 * pinned client acting as user/role; false (logged) when auth_check_peer_user refuses.
 * auth_identify_user: *ret for the users-file account user (a chain-verified client named by
 * its CN); false when there is none. Loop thread.
 */
_must_check_ int auth_check_peer_user(const struct auth *a, const char *user, enum user_role role,
                                      struct certd_err *err);
bool auth_identify_pinned(const struct auth *a, const char *user, enum user_role role,
                          struct auth_identity *ret);
bool auth_identify_user(const struct auth *a, const char *user, struct auth_identity *ret);

/* A new session, returned by auth_login's callback; token is shown once, to its creator. */
struct auth_session_info {
    char id[AUTH_SESSION_ID_MAX];
    char token[AUTH_TOKEN_MAX];
    char user[USERS_NAME_MAX + 1];
    enum user_role role;
    time_t created;
};
typedef void (*auth_login_fn)(void *arg, enum auth_result result, const struct auth_session_info *s,
                              unsigned retry_after);

/*
 * Log in (POST SessionService/Sessions): check user and password (borrowed; copied before
 * returning) on a worker, subject to the rate limits, then create a session. done as for
 * auth_check; AUTH_SESSION_LIMIT when auth_set_max_sessions' number of sessions exist (before
 * the password is checked, or after it when the last place went meanwhile). A user who holds
 * AUTH_SESSIONS_PER_USER_MAX sessions loses the least recently used one to the new one.
 */
void auth_login(struct auth *a, const char *user, const struct secret *password, const char *peer,
                auth_login_fn done, void *arg);

/*
 * Sessions, for SessionService/Sessions: ids in creation order. auth_n_sessions first ends the
 * sessions that timed out; auth_session_at does not, so that indices below the count stay valid
 * until the next call of another auth function. Pointers returned are borrowed, valid likewise.
 */
size_t auth_n_sessions(struct auth *a);
/* The i-th session (borrowed: id, user, role, created; token is ""), NULL past the end. */
const struct auth_session_info *auth_session_at(struct auth *a, size_t i);
/* The session with this id (not timed out), NULL when there is none. */
const struct auth_session_info *auth_session_find(struct auth *a, const char *id);
/* End a session. 0, -ENOENT. */
int auth_session_delete(struct auth *a, const char *id);

/*
 * The most sessions that may exist at once: 1..AUTH_SESSIONS_MAX (the default), else -EINVAL.
 * Lowering it ends no session; logins are refused until fewer remain.
 */
_must_check_ int auth_set_max_sessions(struct auth *a, unsigned n);

unsigned auth_session_timeout(const struct auth *a);
/* AUTH_SESSION_TIMEOUT_MIN..MAX, else -EINVAL. */
_must_check_ int auth_set_session_timeout(struct auth *a, unsigned seconds);

/*
 * Re-read the users file (it changed, or SIGHUP): users_load on a worker, the result applied on
 * the loop later, as a change of the file applies (sessions, cache). Calls while a read is under
 * way make one more read after it, however many they are. A file that cannot be used (or a full
 * worker queue) is logged at warning, once per read, and the users in use stay.
 */
void auth_reload_async(struct auth *a);

/*
 * The users in use (borrowed): valid until control returns to the loop, where a reload may
 * replace them. Never NULL.
 */
const struct users *auth_users(const struct auth *a);

/* Password checks handed to the workers so far (logs, metrics; tests prove refusals unhashed). */
uint64_t auth_password_checks(const struct auth *a);

/*
 * Tests: the clock for idle timeouts, rate limits and the Basic cache, in whole seconds of a
 * monotonic clock (clock NULL: CLOCK_MONOTONIC again). Set it right after auth_new: times
 * already recorded are not converted. Session "created" times stay wall-clock times.
 */
typedef uint64_t (*auth_clock_fn)(void *userdata);
void auth_set_clock(struct auth *a, auth_clock_fn clock, void *userdata);
