/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon/auth: with a real users file (three users hashed once per program), a real worker
 * pool and the event loop driven until the callbacks fire: Basic accepted, refused (wrong
 * password, unknown user) and a table of malformed headers refused without hashing; the Basic
 * cache (no second hash; flushed when the file changes); logins making sessions whose token
 * works and expires by an injected clock; deleting sessions; the session limits (of the table,
 * over several users, and per user); changes of the users file read by auth_reload_async (role
 * change applies at once, removal and password change end sessions, a broken file keeps the old
 * users with one warning, reloads coalesce, nothing is read unasked); rate limits per name and per
 * address (IPv6 per /64) with doubling delays, refused without hashing (the password-check counter
 * proves it) and reset by a success; a full worker queue; auth_free with checks in flight; the
 * privileges of each role; and that no log line holds a password or token.
 * yescrypt costs tens of milliseconds and 16 MiB a hash: every test counts its hashes.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth.h"
#include "log/log.h"
#include "testutil.h"
#include "users/users.h"
#include "worker.h"

#define PW_ADMIN "admin password 1"
#define PW_OP    "operator password 2"
#define PW_RO    "read-only password 3"
#define PW_WRONG "not the password 4"

struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned n_started;
    bool is_open;
};

static void gate_run(void *arg)
{
    struct gate *g = arg;
    (void)pthread_mutex_lock(&g->m);
    g->n_started++;
    (void)pthread_cond_broadcast(&g->c);
    while (!g->is_open) {
        (void)pthread_cond_wait(&g->c, &g->m);
    }
    (void)pthread_mutex_unlock(&g->m);
}

/* Wait until n jobs are held at the gate. */
static void gate_wait_started(struct gate *g, unsigned n)
{
    (void)pthread_mutex_lock(&g->m);
    while (g->n_started < n) {
        (void)pthread_cond_wait(&g->c, &g->m);
    }
    (void)pthread_mutex_unlock(&g->m);
}

static void gate_open(struct gate *g)
{
    (void)pthread_mutex_lock(&g->m);
    g->is_open = true;
    (void)pthread_cond_broadcast(&g->c);
    (void)pthread_mutex_unlock(&g->m);
}

static void gate_done(void *arg, bool cancelled)
{
    (void)arg;
    (void)cancelled;
}

/* The users, hashed once for the whole program (group setup). */
static struct users *g_users;

struct fx {
    char *dir;
    char *path;
    struct event_base *base;
    struct worker_pool *pool;
    struct auth *auth;
    uint64_t now;
    struct gate gate; /* holds worker threads in some tests; teardown opens it */
};

static uint64_t fake_clock(void *userdata)
{
    const struct fx *f = userdata;
    return f->now;
}

static struct secret *pw_new(const char *s)
{
    struct secret *p = secret_new(s, strlen(s));
    assert_non_null(p);
    return p;
}

static int group_setup(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    g_users = users_new();
    if (!g_users) {
        return -1;
    }
    static const struct {
        const char *name;
        enum user_role role;
        const char *pw;
    } u[] = {
        { "admin", USER_ROLE_ADMINISTRATOR, PW_ADMIN },
        { "op", USER_ROLE_OPERATOR, PW_OP },
        { "ro", USER_ROLE_READONLY, PW_RO },
    };
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        struct secret *p = secret_new(u[i].pw, strlen(u[i].pw));
        int r = p ? users_add(g_users, u[i].name, u[i].role, p, &err) : -ENOMEM;
        secret_free(p);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    g_users = users_free(g_users);
    return 0;
}

static void save_users(struct fx *f, const struct users *u)
{
    struct certd_err err = { 0 };
    assert_int_equal(users_save(u, f->path, &err), 0);
}

/* The users file as it is now, for a change. */
static struct users *load_users(struct fx *f)
{
    struct certd_err err = { 0 };
    struct users *u = NULL;
    assert_int_equal(users_load(f->path, &u, &err), 0);
    return u;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = scratch_dir("test-auth");
    assert_true(asprintf(&f->path, "%s/users", f->dir) > 0);
    save_users(f, g_users);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(worker_pool_new(f->base, 2, &f->pool), 0);
    struct certd_err err = { 0 };
    assert_int_equal(auth_new(f->base, f->pool, f->path, &f->auth, &err), 0);
    f->now = 1000000;
    auth_set_clock(f->auth, fake_clock, f);
    assert_int_equal(pthread_mutex_init(&f->gate.m, NULL), 0);
    assert_int_equal(pthread_cond_init(&f->gate.c, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    /* A failed test may have left jobs waiting at the gate. */
    gate_open(&f->gate);
    f->pool = worker_pool_free(f->pool);
    (void)pthread_cond_destroy(&f->gate.c);
    (void)pthread_mutex_destroy(&f->gate.m);
    f->auth = auth_free(f->auth);
    event_base_free(f->base);
    free(f->path);
    scratch_rm(f->dir);
    free(f);
    return 0;
}

/* "Basic " and the base64 of user:password (len bytes; OpenSSL's encoder, not ours). */
static char *basic_n(const char *cred, size_t len)
{
    char *out = calloc(1, 8 + 4 * (len / 3 + 1) + 1);
    assert_non_null(out);
    memcpy(out, "Basic ", 6);
    (void)EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)cred, (int)len);
    return out;
}

static char *basic(const char *user, const char *pw)
{
    char *cred = NULL;
    assert_true(asprintf(&cred, "%s:%s", user, pw) > 0);
    char *h = basic_n(cred, strlen(cred));
    free(cred);
    return h;
}

struct res {
    int n;
    enum auth_result r;
    struct auth_identity id;
    struct auth_session_info s;
    unsigned retry;
};

static void check_cb(void *arg, enum auth_result r, const struct auth_identity *id, unsigned retry)
{
    struct res *x = arg;
    x->n++;
    x->r = r;
    x->retry = retry;
    if (r == AUTH_OK) {
        assert_non_null(id);
        x->id = *id;
    } else {
        assert_null(id);
    }
}

static void login_cb(void *arg, enum auth_result r, const struct auth_session_info *s,
                     unsigned retry)
{
    struct res *x = arg;
    x->n++;
    x->r = r;
    x->retry = retry;
    if (r == AUTH_OK) {
        assert_non_null(s);
        x->s = *s;
    } else {
        assert_null(s);
    }
}

static void wait_res(struct fx *f, const struct res *x)
{
    while (x->n == 0) {
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
    assert_int_equal(x->n, 1);
}

static struct res check(struct fx *f, const char *authz, const char *token, const char *peer)
{
    struct res x = { 0 };
    auth_check(f->auth, authz, token, peer, check_cb, &x);
    wait_res(f, &x);
    return x;
}

static struct res check_basic(struct fx *f, const char *user, const char *pw, const char *peer)
{
    char *h = basic(user, pw);
    struct res x = check(f, h, NULL, peer);
    free(h);
    return x;
}

static struct res login(struct fx *f, const char *user, const char *pw, const char *peer)
{
    struct secret *p = pw_new(pw);
    struct res x = { 0 };
    auth_login(f->auth, user, p, peer, login_cb, &x);
    secret_free(p);
    wait_res(f, &x);
    return x;
}

/* Run the loop until every job out (password checks, reloads) has had its done. */
static void drain(struct event_base *base, struct worker_pool *pool)
{
    while (worker_pool_pending(pool) > 0) {
        assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
    }
}

/* Re-read the users file, as the daemon does when it changes, and wait until that is done. */
static void reload(struct fx *f)
{
    auth_reload_async(f->auth);
    drain(f->base, f->pool);
}

/* The log (stderr) goes to a file from log_capture_start to log_capture_end, at debug level. */
struct capture {
    char *path;
    int saved, fd, old_level;
};

static void log_capture_start(struct fx *f, struct capture *c)
{
    assert_true(asprintf(&c->path, "%s/log", f->dir) > 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    c->fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(c->fd >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
    c->old_level = log_get_max_level();
    log_set_max_level(LOG_DEBUG);
}

/* The text logged since log_capture_start (static: valid until the next call). */
static const char *log_capture_end(struct capture *c)
{
    static char text[65536];
    log_set_max_level(c->old_level);
    (void)fflush(stderr);
    assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
    close(c->saved);
    close(c->fd);
    FILE *in = fopen(c->path, "re");
    assert_non_null(in);
    size_t n = fread(text, 1, sizeof(text) - 1, in);
    text[n] = '\0';
    fclose(in);
    free(c->path);
    return text;
}

static size_t count_str(const char *text, const char *s)
{
    size_t n = 0;
    for (const char *p = strstr(text, s); p; p = strstr(p + 1, s)) {
        n++;
    }
    return n;
}

/* Asserts a check result and how many password checks it cost. */
#define assert_check_of(a, x, result, hashes, before)                             \
    do {                                                                          \
        assert_int_equal((x).r, (result));                                        \
        assert_int_equal(auth_password_checks(a) - (before), (uint64_t)(hashes)); \
    } while (0)
#define assert_check(f, x, result, hashes, before) \
    assert_check_of((f)->auth, x, result, hashes, before)

/* ---- roles ---- */

static void test_privileges(void **state)
{
    (void)state;
    static const struct {
        enum user_role role;
        uint32_t privs;
    } cases[] = {
        { USER_ROLE_ADMINISTRATOR, AUTH_PRIV_LOGIN | AUTH_PRIV_CONFIGURE_MANAGER |
                                       AUTH_PRIV_CONFIGURE_USERS | AUTH_PRIV_CONFIGURE_SELF |
                                       AUTH_PRIV_CONFIGURE_COMPONENTS },
        { USER_ROLE_OPERATOR,
          AUTH_PRIV_LOGIN | AUTH_PRIV_CONFIGURE_COMPONENTS | AUTH_PRIV_CONFIGURE_SELF },
        { USER_ROLE_READONLY, AUTH_PRIV_LOGIN | AUTH_PRIV_CONFIGURE_SELF },
        { USER_ROLE_MAX, 0 },
        { (enum user_role)77, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(auth_role_privileges(cases[i].role), cases[i].privs);
    }
    /* Only the Administrator may change certificates (ConfigureManager). */
    assert_false(auth_role_privileges(USER_ROLE_OPERATOR) & AUTH_PRIV_CONFIGURE_MANAGER);

    static const struct {
        uint32_t priv;
        const char *name;
    } names[] = {
        { AUTH_PRIV_LOGIN, "Login" },
        { AUTH_PRIV_CONFIGURE_MANAGER, "ConfigureManager" },
        { AUTH_PRIV_CONFIGURE_USERS, "ConfigureUsers" },
        { AUTH_PRIV_CONFIGURE_SELF, "ConfigureSelf" },
        { AUTH_PRIV_CONFIGURE_COMPONENTS, "ConfigureComponents" },
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_string_equal(auth_privilege_name(names[i].priv), names[i].name);
    }
    assert_null(auth_privilege_name(0));
    assert_null(auth_privilege_name(AUTH_PRIV_LOGIN | AUTH_PRIV_CONFIGURE_SELF));
    assert_null(auth_privilege_name(1u << 5));
}

/* ---- construction ---- */

static void test_new_errors(void **state)
{
    struct fx *f = *state;
    struct certd_err err = { 0 };
    struct auth *a = NULL;
    char *missing = NULL;
    assert_true(asprintf(&missing, "%s/missing", f->dir) > 0);
    assert_int_equal(auth_new(f->base, f->pool, missing, &a, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "does not exist"));
    assert_null(a);

    /* A file others may read is refused by the users module, and so by auth. */
    assert_int_equal(chmod(f->path, 0644), 0);
    err_clear(&err);
    assert_int_equal(auth_new(f->base, f->pool, f->path, &a, &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_non_null(strstr(err.msg, "chmod"));
    assert_null(a);
    assert_int_equal(chmod(f->path, 0600), 0);

    assert_int_equal(auth_new(NULL, f->pool, f->path, &a, &err), -EINVAL);
    assert_int_equal(auth_new(f->base, NULL, f->path, &a, &err), -EINVAL);
    assert_int_equal(auth_new(f->base, f->pool, NULL, &a, &err), -EINVAL);
    assert_null(a);
    assert_null(auth_free(NULL));
    free(missing);
}

/* ---- Basic ---- */

static void test_basic(void **state)
{
    struct fx *f = *state;
    uint64_t c0 = auth_password_checks(f->auth);

    struct res x = check(f, NULL, NULL, "192.0.2.1");
    assert_check(f, x, AUTH_NO_CREDENTIALS, 0, c0);

    x = check_basic(f, "admin", PW_ADMIN, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 1, c0);
    assert_string_equal(x.id.user, "admin");
    assert_int_equal(x.id.role, USER_ROLE_ADMINISTRATOR);
    assert_int_equal(x.id.privileges, auth_role_privileges(USER_ROLE_ADMINISTRATOR));
    assert_string_equal(x.id.session_id, "");

    /* Cached: no second hash, from any address; the scheme name is case-insensitive. */
    char *h = basic("admin", PW_ADMIN);
    memcpy(h, "bAsIc", 5);
    x = check(f, h, NULL, "198.51.100.7");
    free(h);
    assert_check(f, x, AUTH_OK, 1, c0);
    assert_string_equal(x.id.user, "admin");

    x = check_basic(f, "op", PW_OP, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 2, c0);
    assert_int_equal(x.id.role, USER_ROLE_OPERATOR);
    assert_int_equal(x.id.privileges, auth_role_privileges(USER_ROLE_OPERATOR));

    /* Another user's password is no key to the cache. */
    x = check_basic(f, "ro", PW_ADMIN, "192.0.2.1");
    assert_check(f, x, AUTH_DENIED, 3, c0);
    x = check_basic(f, "nobody", PW_ADMIN, "192.0.2.1");
    assert_check(f, x, AUTH_DENIED, 4, c0);
    x = check_basic(f, "admin", PW_WRONG, "192.0.2.1");
    assert_check(f, x, AUTH_DENIED, 5, c0);

    /* The cache entry expires after AUTH_BASIC_CACHE_SECONDS: one new hash. */
    x = check_basic(f, "admin", PW_ADMIN, "192.0.2.2");
    assert_check(f, x, AUTH_OK, 5, c0);
    f->now += AUTH_BASIC_CACHE_SECONDS;
    x = check_basic(f, "admin", PW_ADMIN, "192.0.2.2");
    assert_check(f, x, AUTH_OK, 6, c0);
    x = check_basic(f, "admin", PW_ADMIN, "192.0.2.2");
    assert_check(f, x, AUTH_OK, 6, c0);
}

static void test_basic_malformed(void **state)
{
    struct fx *f = *state;
    static char huge[70000];
    memset(huge, 'A', sizeof(huge) - 1);
    memcpy(huge, "Basic ", 6);
    huge[sizeof(huge) - 1] = '\0';
    char long_pw[USERS_PASSWORD_MAX + 2];
    memset(long_pw, 'p', sizeof(long_pw) - 1);
    long_pw[sizeof(long_pw) - 1] = '\0';

    static const struct {
        const char *cred; /* decoded; NULL: header given as is */
        size_t len;       /* 0: strlen */
        const char *header;
    } cases[] = {
        { "admin" PW_ADMIN, 0, NULL },                           /* no colon */
        { ":" PW_ADMIN, 0, NULL },                               /* empty user */
        { "Admin:" PW_ADMIN, 0, NULL },                          /* not a user name */
        { "ad\tmin:" PW_ADMIN, 0, NULL },                        /* control character in the name */
        { "ad\0min:" PW_ADMIN, 7 + sizeof(PW_ADMIN) - 1, NULL }, /* NUL in the name */
        { "abcdefghijklmnopqrstuvwxyz0123456:" PW_ADMIN, 0, NULL }, /* name too long */
        { "admin:", 0, NULL },                                      /* empty password */
        { "admin:short", 0, NULL },                  /* below the policy: no user has it */
        { "admin:admin pass\tword", 0, NULL },       /* control character */
        { "admin:admin pass\x7fword", 0, NULL },     /* DEL */
        { "admin:admin pass\xc2\x85word", 0, NULL }, /* C1 control (NEL) */
        { "admin:admin pass\xc3word", 0, NULL },     /* not UTF-8 */
        { "admin:admin pass\xc0\xafword", 0, NULL }, /* overlong UTF-8 */
        { "admin:admin pass\0word", 21, NULL },      /* NUL */
        { NULL, 0, "Basic" },
        { NULL, 0, "Basic " },
        { NULL, 0, "Basic" PW_ADMIN },
        { NULL, 0, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQgMQ" }, /* admin:admin password 1, unpadded */
        { NULL, 0, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQgMQ=" },
        { NULL, 0, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQgMR==" },  /* non-zero spare bits */
        { NULL, 0, "Basic YWRtaW46YWRt aW4gcGFzc3dvcmQgMQ==" }, /* blank inside */
        { NULL, 0, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQgMQ==\t" },
        { NULL, 0, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQgMQ===" },
        { NULL, 0, "Basic =WRtaW46YWRtaW4gcGFzc3dvcmQgMQ==" },
        { NULL, 0, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQ_MQ==" }, /* base64url is not base64 */
        { NULL, 0, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQ-MQ==" },
        { NULL, 0, "Bearer YWRtaW46YWRtaW4gcGFzc3dvcmQgMQ==" },
        { NULL, 0, "BasicYWRtaW46YWRtaW4gcGFzc3dvcmQgMQ==" },
        { NULL, 0, "" },
        { NULL, 0, huge },
    };
    uint64_t c0 = auth_password_checks(f->auth);
    /* The well-formed twin of the base64 cases is accepted: the table tests the form only. */
    struct res x = check(f, "Basic YWRtaW46YWRtaW4gcGFzc3dvcmQgMQ==", NULL, "192.0.2.99");
    assert_check(f, x, AUTH_OK, 1, c0);
    c0 = auth_password_checks(f->auth);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *h = cases[i].header
                      ? strdup(cases[i].header)
                      : basic_n(cases[i].cred, cases[i].len ? cases[i].len : strlen(cases[i].cred));
        assert_non_null(h);
        /* One address per case: malformed credentials count against the address. */
        char peer[32];
        (void)snprintf(peer, sizeof(peer), "203.0.113.%zu", i + 1);
        x = check(f, h, NULL, peer);
        if (x.r != AUTH_DENIED) {
            print_error("case %zu (%s): result %d\n", i, h, x.r);
        }
        assert_check(f, x, AUTH_DENIED, 0, c0);
        free(h);
    }
    /* A password over the limit cannot be anyone's either. */
    x = check_basic(f, "admin", long_pw, "192.0.2.98");
    assert_check(f, x, AUTH_DENIED, 0, c0);
}

/* The log names the user and the peer of a failed login, never the password or a token. */
static void test_log_hygiene(void **state)
{
    struct fx *f = *state;
    struct capture cap;
    log_capture_start(f, &cap);

    struct res x = check_basic(f, "admin", PW_WRONG, "192.0.2.50");
    assert_int_equal(x.r, AUTH_DENIED);
    x = check_basic(f, "ghost", PW_WRONG, "192.0.2.50");
    assert_int_equal(x.r, AUTH_DENIED);
    x = check_basic(f, PW_WRONG, PW_ADMIN, "192.0.2.51"); /* password typed as the name */
    assert_int_equal(x.r, AUTH_DENIED);
    x = login(f, "op", PW_OP, "192.0.2.52\n<0>forged");
    assert_int_equal(x.r, AUTH_OK);
    char token[AUTH_TOKEN_MAX];
    memcpy(token, x.s.token, sizeof(token));
    x = check(f, NULL, token, "192.0.2.52");
    assert_int_equal(x.r, AUTH_OK);
    x = login(f, "op", PW_WRONG, "192.0.2.53");
    assert_int_equal(x.r, AUTH_DENIED);

    const char *text = log_capture_end(&cap);
    assert_non_null(strstr(text, "failed login for user admin from 192.0.2.50: wrong password"));
    assert_non_null(strstr(text, "failed login for user ghost from 192.0.2.50: unknown user"));
    assert_non_null(strstr(text, "failed login from 192.0.2.51: malformed user name"));
    assert_non_null(strstr(text, "failed login for user op from 192.0.2.53"));
    assert_non_null(strstr(text, "192.0.2.52??0?forged")); /* the peer, escaped */
    assert_null(strstr(text, "<0>forged"));
    assert_null(strstr(text, PW_WRONG));
    assert_null(strstr(text, PW_ADMIN));
    assert_null(strstr(text, PW_OP));
    assert_null(strstr(text, "not the")); /* no part of it either */
    assert_null(strstr(text, token));
}

/* ---- sessions ---- */

static void test_login_token(void **state)
{
    struct fx *f = *state;
    uint64_t c0 = auth_password_checks(f->auth);

    struct res x = login(f, "op", PW_OP, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 1, c0);
    struct auth_session_info s = x.s;
    assert_int_equal(strlen(s.id), 22);
    assert_int_equal(strlen(s.token), 22);
    assert_int_equal(
        strspn(s.token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 22);
    assert_string_not_equal(s.id, s.token);
    assert_string_equal(s.user, "op");
    assert_int_equal(s.role, USER_ROLE_OPERATOR);
    assert_true(s.created > 0);

    /* Listed without the token. */
    assert_int_equal(auth_n_sessions(f->auth), 1);
    const struct auth_session_info *l = auth_session_at(f->auth, 0);
    assert_non_null(l);
    assert_string_equal(l->id, s.id);
    assert_string_equal(l->token, "");
    assert_string_equal(l->user, "op");
    assert_null(auth_session_at(f->auth, 1));
    assert_ptr_equal(auth_session_find(f->auth, s.id), l);
    assert_null(auth_session_find(f->auth, s.token));
    assert_null(auth_session_find(f->auth, "nope"));

    /* The token works, wins over Basic, and costs no hash. */
    uint64_t c1 = auth_password_checks(f->auth);
    x = check(f, NULL, s.token, "192.0.2.9");
    assert_check(f, x, AUTH_OK, 0, c1);
    assert_string_equal(x.id.user, "op");
    assert_int_equal(x.id.role, USER_ROLE_OPERATOR);
    assert_int_equal(x.id.privileges, auth_role_privileges(USER_ROLE_OPERATOR));
    assert_string_equal(x.id.session_id, s.id);
    char *h = basic("admin", PW_WRONG);
    x = check(f, h, s.token, "192.0.2.9");
    assert_check(f, x, AUTH_OK, 0, c1);
    assert_string_equal(x.id.user, "op");
    free(h);

    /* Unknown, malformed: refused, not hashed; the id is not a token. */
    char other[AUTH_TOKEN_MAX];
    memcpy(other, s.token, sizeof(other));
    other[0] = other[0] == 'A' ? 'B' : 'A';
    static const char *const bad[] = {
        "AAAAAAAAAAAAAAAAAAAAAA",   "short", "AAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAA+/",
        "AAAAAAAAAAAAAAAAAAAA\n\n", NULL,
    };
    for (size_t i = 0; bad[i]; i++) {
        x = check(f, NULL, bad[i], "192.0.2.9");
        assert_check(f, x, AUTH_DENIED, 0, c1);
    }
    x = check(f, NULL, other, "192.0.2.9");
    assert_check(f, x, AUTH_DENIED, 0, c1);
    /* An empty X-Auth-Token (some clients always send the header) is no token at all. */
    x = check(f, NULL, "", "192.0.2.9");
    assert_check(f, x, AUTH_NO_CREDENTIALS, 0, c1);
    x = check(f, NULL, s.id, "192.0.2.9");
    assert_check(f, x, AUTH_DENIED, 0, c1);
    /* Tokens never count towards the rate limits: still fine from that address. */
    x = check(f, NULL, s.token, "192.0.2.9");
    assert_int_equal(x.r, AUTH_OK);

    /* Idle timeout by the injected clock; each use restarts it. */
    unsigned t = auth_session_timeout(f->auth);
    assert_int_equal(t, AUTH_SESSION_TIMEOUT_DEFAULT);
    f->now += t - 1;
    x = check(f, NULL, s.token, "192.0.2.9");
    assert_int_equal(x.r, AUTH_OK);
    f->now += t - 1;
    x = check(f, NULL, s.token, "192.0.2.9");
    assert_int_equal(x.r, AUTH_OK);
    f->now += t;
    assert_null(auth_session_find(f->auth, s.id));
    x = check(f, NULL, s.token, "192.0.2.9");
    assert_int_equal(x.r, AUTH_DENIED);
    assert_int_equal(auth_n_sessions(f->auth), 0);

    /* A shorter timeout applies to sessions that exist. */
    assert_int_equal(auth_set_session_timeout(f->auth, AUTH_SESSION_TIMEOUT_MIN - 1), -EINVAL);
    assert_int_equal(auth_set_session_timeout(f->auth, AUTH_SESSION_TIMEOUT_MAX + 1), -EINVAL);
    assert_int_equal(auth_session_timeout(f->auth), AUTH_SESSION_TIMEOUT_DEFAULT);
    x = login(f, "op", PW_OP, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(auth_set_session_timeout(f->auth, AUTH_SESSION_TIMEOUT_MIN), 0);
    assert_int_equal(auth_session_timeout(f->auth), AUTH_SESSION_TIMEOUT_MIN);
    f->now += AUTH_SESSION_TIMEOUT_MIN;
    x = check(f, NULL, x.s.token, "192.0.2.9");
    assert_int_equal(x.r, AUTH_DENIED);
    assert_int_equal(auth_set_session_timeout(f->auth, AUTH_SESSION_TIMEOUT_MAX), 0);
}

static void test_login_refused(void **state)
{
    struct fx *f = *state;
    uint64_t c0 = auth_password_checks(f->auth);
    struct res x = login(f, "op", PW_WRONG, "192.0.2.1");
    assert_check(f, x, AUTH_DENIED, 1, c0);
    x = login(f, "ghost", PW_OP, "192.0.2.1");
    assert_check(f, x, AUTH_DENIED, 2, c0);
    /* Without hashing: no user can have these. */
    x = login(f, "Op", PW_OP, "192.0.2.2");
    assert_check(f, x, AUTH_DENIED, 2, c0);
    x = login(f, "", PW_OP, "192.0.2.3");
    assert_check(f, x, AUTH_DENIED, 2, c0);
    x = login(f, "op", "short", "192.0.2.4");
    assert_check(f, x, AUTH_DENIED, 2, c0);
    x = login(f, "op", "operator\npassword", "192.0.2.4");
    assert_check(f, x, AUTH_DENIED, 2, c0);
    assert_int_equal(auth_n_sessions(f->auth), 0);
}

static void test_session_delete(void **state)
{
    struct fx *f = *state;
    struct res a = login(f, "admin", PW_ADMIN, "192.0.2.1");
    struct res b = login(f, "ro", PW_RO, "192.0.2.1");
    assert_int_equal(a.r, AUTH_OK);
    assert_int_equal(b.r, AUTH_OK);
    assert_string_not_equal(a.s.id, b.s.id);
    assert_string_not_equal(a.s.token, b.s.token);
    assert_int_equal(auth_n_sessions(f->auth), 2);
    /* Creation order. */
    assert_string_equal(auth_session_at(f->auth, 0)->id, a.s.id);
    assert_string_equal(auth_session_at(f->auth, 1)->id, b.s.id);

    assert_int_equal(auth_session_delete(f->auth, a.s.id), 0);
    assert_int_equal(auth_session_delete(f->auth, a.s.id), -ENOENT);
    assert_int_equal(auth_session_delete(f->auth, a.s.token), -ENOENT);
    assert_int_equal(auth_n_sessions(f->auth), 1);
    assert_string_equal(auth_session_at(f->auth, 0)->id, b.s.id);
    struct res x = check(f, NULL, a.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_DENIED);
    x = check(f, NULL, b.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(x.id.role, USER_ROLE_READONLY);
}

static void test_max_sessions(void **state)
{
    struct fx *f = *state;
    assert_int_equal(auth_set_max_sessions(f->auth, 0), -EINVAL);
    assert_int_equal(auth_set_max_sessions(f->auth, AUTH_SESSIONS_MAX + 1), -EINVAL);
    assert_int_equal(auth_set_max_sessions(f->auth, 2), 0);
    uint64_t c0 = auth_password_checks(f->auth);
    struct res a = login(f, "admin", PW_ADMIN, "192.0.2.1");
    struct res b = login(f, "admin", PW_ADMIN, "192.0.2.1");
    assert_int_equal(a.r, AUTH_OK);
    assert_int_equal(b.r, AUTH_OK);
    /* Full: refused before hashing. */
    struct res x = login(f, "op", PW_OP, "192.0.2.1");
    assert_check(f, x, AUTH_SESSION_LIMIT, 2, c0);
    assert_int_equal(auth_n_sessions(f->auth), 2);
    /* A session ending makes room. */
    assert_int_equal(auth_session_delete(f->auth, a.s.id), 0);
    x = login(f, "op", PW_OP, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 3, c0);
    /* The refusal of a full table is not a failed login: no rate-limit count. */
    for (int i = 0; i < (int)AUTH_FAILURES_FREE + 1; i++) {
        x = login(f, "op", PW_OP, "192.0.2.1");
        assert_check(f, x, AUTH_SESSION_LIMIT, 3, c0);
    }
    /* Timed-out sessions make room too. */
    f->now += AUTH_SESSION_TIMEOUT_DEFAULT;
    x = login(f, "op", PW_OP, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 4, c0);
    assert_int_equal(auth_n_sessions(f->auth), 1);
}

/* The table's limit counts every user's sessions; a login that finds it full is refused. */
static void test_session_limit(void **state)
{
    struct fx *f = *state;
    assert_int_equal(auth_set_max_sessions(f->auth, 3), 0);
    uint64_t c0 = auth_password_checks(f->auth);
    struct res a = login(f, "admin", PW_ADMIN, "192.0.2.1");
    struct res o = login(f, "op", PW_OP, "192.0.2.2");
    struct res r = login(f, "ro", PW_RO, "192.0.2.3");
    assert_int_equal(a.r, AUTH_OK);
    assert_int_equal(o.r, AUTH_OK);
    assert_int_equal(r.r, AUTH_OK);
    assert_int_equal(auth_n_sessions(f->auth), 3);
    /* Any user, even one without a session: refused unhashed, and Basic still works. */
    struct res x = login(f, "admin", PW_ADMIN, "192.0.2.4");
    assert_check(f, x, AUTH_SESSION_LIMIT, 3, c0);
    assert_int_equal(x.retry, 0);
    x = login(f, "op", PW_WRONG, "192.0.2.4");
    assert_check(f, x, AUTH_SESSION_LIMIT, 3, c0);
    x = check_basic(f, "ro", PW_RO, "192.0.2.4");
    assert_check(f, x, AUTH_OK, 4, c0);
    assert_int_equal(auth_n_sessions(f->auth), 3);

    /* The last place taken while the passwords were checked: one login gets it, the other is
     * refused after its check. Which one is up to the worker threads. */
    assert_int_equal(auth_set_max_sessions(f->auth, 4), 0);
    struct secret *pa = pw_new(PW_ADMIN), *po = pw_new(PW_OP);
    struct res y = { 0 }, z = { 0 };
    auth_login(f->auth, "admin", pa, "192.0.2.5", login_cb, &y);
    auth_login(f->auth, "op", po, "192.0.2.6", login_cb, &z);
    secret_free(pa);
    secret_free(po);
    wait_res(f, &y);
    wait_res(f, &z);
    assert_int_equal(auth_password_checks(f->auth) - c0, 6);
    assert_true((y.r == AUTH_OK && z.r == AUTH_SESSION_LIMIT) ||
                (y.r == AUTH_SESSION_LIMIT && z.r == AUTH_OK));
    assert_int_equal(auth_n_sessions(f->auth), 4);
}

/* A user's login beyond AUTH_SESSIONS_PER_USER_MAX ends that user's least recently used session,
 * and no one else's. */
static void test_sessions_per_user(void **state)
{
    struct fx *f = *state;
    struct res other = login(f, "admin", PW_ADMIN, "192.0.2.1");
    assert_int_equal(other.r, AUTH_OK);
    struct auth_session_info s[AUTH_SESSIONS_PER_USER_MAX];
    for (unsigned i = 0; i < AUTH_SESSIONS_PER_USER_MAX; i++) {
        f->now += 1;
        struct res x = login(f, "ro", PW_RO, "192.0.2.2");
        assert_int_equal(x.r, AUTH_OK);
        s[i] = x.s;
    }
    assert_int_equal(auth_n_sessions(f->auth), AUTH_SESSIONS_PER_USER_MAX + 1);
    /* The oldest is used again: the second oldest is now the least recently used. */
    f->now += 1;
    struct res x = check(f, NULL, s[0].token, "192.0.2.2");
    assert_int_equal(x.r, AUTH_OK);

    f->now += 1;
    x = login(f, "ro", PW_RO, "192.0.2.2");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(auth_n_sessions(f->auth), AUTH_SESSIONS_PER_USER_MAX + 1);
    assert_null(auth_session_find(f->auth, s[1].id));
    assert_int_equal(check(f, NULL, s[1].token, "192.0.2.2").r, AUTH_DENIED);
    assert_non_null(auth_session_find(f->auth, s[0].id));
    for (unsigned i = 2; i < AUTH_SESSIONS_PER_USER_MAX; i++) {
        assert_non_null(auth_session_find(f->auth, s[i].id));
    }
    assert_non_null(auth_session_find(f->auth, x.s.id));
    assert_int_equal(check(f, NULL, other.s.token, "192.0.2.1").r, AUTH_OK);
}

/* ---- users file changes ---- */

static void test_users_change(void **state)
{
    struct fx *f = *state;
    struct certd_err err = { 0 };
    struct res sop = login(f, "op", PW_OP, "192.0.2.1");
    struct res sro = login(f, "ro", PW_RO, "192.0.2.1");
    assert_int_equal(sop.r, AUTH_OK);
    assert_int_equal(sro.r, AUTH_OK);
    struct res x = check_basic(f, "admin", PW_ADMIN, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    uint64_t c0 = auth_password_checks(f->auth);

    /* op becomes ReadOnly. Requests do not look at the file: nothing changes until a reload. */
    struct users *u = load_users(f);
    assert_int_equal(users_set_role(u, "op", USER_ROLE_READONLY, &err), 1);
    save_users(f, u);
    f->now += 5;
    x = check(f, NULL, sop.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(x.id.role, USER_ROLE_OPERATOR);
    assert_int_equal(users_find(auth_users(f->auth), "op")->role, USER_ROLE_OPERATOR);
    reload(f);
    x = check(f, NULL, sop.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(x.id.role, USER_ROLE_READONLY);
    assert_int_equal(x.id.privileges, auth_role_privileges(USER_ROLE_READONLY));
    assert_int_equal(auth_session_find(f->auth, sop.s.id)->role, USER_ROLE_READONLY);
    assert_int_equal(users_find(auth_users(f->auth), "op")->role, USER_ROLE_READONLY);

    /* The change flushed the Basic cache: admin is hashed again (once). */
    x = check_basic(f, "admin", PW_ADMIN, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 1, c0);
    x = check_basic(f, "admin", PW_ADMIN, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 1, c0);

    /* op is removed: its session ends; ro's stays. */
    assert_int_equal(users_del(u, "op", &err), 0);
    save_users(f, u);
    reload(f);
    assert_null(users_find(auth_users(f->auth), "op"));
    x = check(f, NULL, sop.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_DENIED);
    assert_null(auth_session_find(f->auth, sop.s.id));
    x = check(f, NULL, sro.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    x = check_basic(f, "op", PW_OP, "192.0.2.1");
    assert_int_equal(x.r, AUTH_DENIED);

    /* ro's password changes: the old one stops working, in the cache too, and its session ends. */
    x = check_basic(f, "ro", PW_RO, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK); /* now cached */
    struct secret *np = pw_new("a brand new password");
    assert_int_equal(users_set_password(u, "ro", np, &err), 0);
    save_users(f, u);
    reload(f);
    uint64_t c1 = auth_password_checks(f->auth);
    x = check_basic(f, "ro", PW_RO, "192.0.2.1");
    assert_check(f, x, AUTH_DENIED, 1, c1);
    x = check(f, NULL, sro.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_DENIED);
    x = check_basic(f, "ro", "a brand new password", "192.0.2.1");
    assert_check(f, x, AUTH_OK, 2, c1);
    assert_int_equal(auth_n_sessions(f->auth), 0);
    secret_free(np);
    users_free(u);
}

/* A broken file keeps the users there were, warns once per read, and is used once it is fixed. */
static void test_users_broken(void **state)
{
    struct fx *f = *state;
    struct res s = login(f, "op", PW_OP, "192.0.2.1");
    assert_int_equal(s.r, AUTH_OK);
    const struct users *before = auth_users(f->auth);

    char *tmp = NULL;
    assert_true(asprintf(&tmp, "%s/users.tmp", f->dir) > 0);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static const char garbage[] = "op:Operator\n";
    assert_int_equal(write(fd, garbage, sizeof(garbage) - 1), (ssize_t)sizeof(garbage) - 1);
    close(fd);
    assert_int_equal(rename(tmp, f->path), 0);
    struct capture cap;
    log_capture_start(f, &cap);
    reload(f);
    const char *text = log_capture_end(&cap);
    assert_int_equal(count_str(text, "<4>"), 1);
    assert_int_equal(count_str(text, "keeping the previous users"), 1);
    assert_non_null(strstr(text, "users:1:"));
    assert_null(strstr(text, "loaded"));
    assert_ptr_equal(auth_users(f->auth), before);
    struct res x = check(f, NULL, s.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(x.id.role, USER_ROLE_OPERATOR);

    /* Removed altogether: the same. */
    assert_int_equal(unlink(f->path), 0);
    log_capture_start(f, &cap);
    reload(f);
    text = log_capture_end(&cap);
    assert_int_equal(count_str(text, "<4>"), 1);
    assert_non_null(strstr(text, "does not exist"));
    assert_ptr_equal(auth_users(f->auth), before);
    x = check(f, NULL, s.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(x.id.role, USER_ROLE_OPERATOR);

    /* Back (the same hashes, op now ReadOnly): used by the next reload. */
    char *content = NULL;
    const struct user *ad = users_find(g_users, "admin");
    const struct user *op = users_find(g_users, "op");
    assert_true(asprintf(&content, "admin:Administrator:%s\nop:ReadOnly:%s\n", ad->hash, op->hash) >
                0);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    assert_int_equal(rename(tmp, f->path), 0);
    free(content);
    log_capture_start(f, &cap);
    reload(f);
    text = log_capture_end(&cap);
    assert_int_equal(count_str(text, "<4>"), 0);
    assert_int_equal(count_str(text, "loaded: 2 users"), 1);
    x = check(f, NULL, s.s.token, "192.0.2.1");
    assert_int_equal(x.r, AUTH_OK);
    assert_int_equal(x.id.role, USER_ROLE_READONLY);
    free(tmp);
}

/* An auth on a pool of one thread, so that jobs run and end in the order they were queued. */
static struct auth *auth_single(struct fx *f, struct worker_pool **ret_pool)
{
    struct certd_err err = { 0 };
    struct auth *a = NULL;
    assert_int_equal(worker_pool_new(f->base, 1, ret_pool), 0);
    assert_int_equal(auth_new(f->base, *ret_pool, f->path, &a, &err), 0);
    auth_set_clock(a, fake_clock, f);
    return a;
}

/*
 * Reloads asked for while one is under way make one more read after it, however many they are:
 * a change made after the first read began is not lost, and the file is not read once per ask.
 */
static void test_reload_coalesced(void **state)
{
    struct fx *f = *state;
    struct certd_err err = { 0 };
    struct worker_pool *pool = NULL;
    struct auth *a = auth_single(f, &pool);
    struct gate *g1 = &f->gate, g2 = { .is_open = false };
    assert_int_equal(pthread_mutex_init(&g2.m, NULL), 0);
    assert_int_equal(pthread_cond_init(&g2.c, NULL), 0);
    struct capture cap;
    log_capture_start(f, &cap);

    /* The thread held: three asks, one job. */
    assert_int_equal(worker_submit(pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g1), 0);
    gate_wait_started(g1, 1);
    auth_reload_async(a);
    auth_reload_async(a);
    auth_reload_async(a);
    assert_int_equal(worker_pool_pending(pool), 2);
    /* The first read runs (on the file as it is), then the thread waits at the second gate. */
    assert_int_equal(worker_submit(pool, WORKER_LANE_PARALLEL, gate_run, gate_done, &g2), 0);
    gate_open(g1);
    gate_wait_started(&g2, 1);
    /* Changed after that read: only the read that the asks left pending can see it. */
    struct users *u = load_users(f);
    assert_int_equal(users_set_role(u, "op", USER_ROLE_READONLY, &err), 1);
    save_users(f, u);
    users_free(u);
    auth_reload_async(a);
    gate_open(&g2);
    drain(f->base, pool);

    const char *text = log_capture_end(&cap);
    assert_int_equal(count_str(text, "users file"), 2); /* two reads, both used */
    assert_int_equal(count_str(text, "loaded: 3 users"), 2);
    assert_int_equal(users_find(auth_users(a), "op")->role, USER_ROLE_READONLY);
    pool = worker_pool_free(pool);
    a = auth_free(a);
    (void)pthread_cond_destroy(&g2.c);
    (void)pthread_mutex_destroy(&g2.m);
}

/* auth_free with a reload under way: the pool hands the job back later, to nobody. */
static void test_free_during_reload(void **state)
{
    struct fx *f = *state;
    struct gate *g = &f->gate;
    assert_int_equal(worker_submit(f->pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g), 0);
    assert_int_equal(worker_submit(f->pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g), 0);
    gate_wait_started(g, 2);
    auth_reload_async(f->auth);
    auth_reload_async(f->auth);
    f->auth = auth_free(f->auth);
    gate_open(g);
    drain(f->base, f->pool);
    assert_int_equal(worker_pool_pending(f->pool), 0);
}

/* ---- rate limits ---- */

static void test_rate_user(void **state)
{
    struct fx *f = *state;
    uint64_t c0 = auth_password_checks(f->auth);
    char peer[32];
    int n_peer = 0;
#define NEXT_PEER() (snprintf(peer, sizeof(peer), "192.0.2.%d", ++n_peer), peer)

    /* AUTH_FAILURES_FREE wrong passwords for op, each from another address. */
    struct res x;
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        x = check_basic(f, "op", PW_WRONG, NEXT_PEER());
        assert_check(f, x, AUTH_DENIED, i + 1, c0);
    }
    uint64_t c1 = auth_password_checks(f->auth);
    /* Then: refused unchecked -- even the right password, over Basic and login alike. */
    x = check_basic(f, "op", PW_OP, NEXT_PEER());
    assert_check(f, x, AUTH_THROTTLED, 0, c1);
    assert_int_equal(x.retry, 1);
    x = login(f, "op", PW_OP, NEXT_PEER());
    assert_check(f, x, AUTH_THROTTLED, 0, c1);
    assert_int_equal(x.retry, 1);
    /* Other users are not affected. */
    x = check_basic(f, "ro", PW_RO, NEXT_PEER());
    assert_check(f, x, AUTH_OK, 1, c1);

    /* The delay doubles with each further failure: 1 s, 2 s, 4 s. */
    c1 = auth_password_checks(f->auth);
    f->now += 1;
    x = check_basic(f, "op", PW_WRONG, NEXT_PEER());
    assert_check(f, x, AUTH_DENIED, 1, c1);
    x = check_basic(f, "op", PW_OP, NEXT_PEER());
    assert_check(f, x, AUTH_THROTTLED, 1, c1);
    assert_int_equal(x.retry, 2);
    f->now += 1;
    x = check_basic(f, "op", PW_OP, NEXT_PEER());
    assert_check(f, x, AUTH_THROTTLED, 1, c1);
    assert_int_equal(x.retry, 1);
    f->now += 1;
    x = check_basic(f, "op", PW_WRONG, NEXT_PEER());
    assert_check(f, x, AUTH_DENIED, 2, c1);
    x = check_basic(f, "op", PW_WRONG, NEXT_PEER());
    assert_check(f, x, AUTH_THROTTLED, 2, c1);
    assert_int_equal(x.retry, 4);

    /* A success resets: failures start from zero again. */
    f->now += 4;
    x = login(f, "op", PW_OP, NEXT_PEER());
    assert_check(f, x, AUTH_OK, 3, c1);
    x = check_basic(f, "op", PW_WRONG, NEXT_PEER());
    assert_check(f, x, AUTH_DENIED, 4, c1);
    x = check_basic(f, "op", PW_WRONG, NEXT_PEER());
    assert_check(f, x, AUTH_DENIED, 5, c1);
#undef NEXT_PEER
}

/* The delay doubles up to AUTH_LOCKOUT_MAX, and quiet time after it forgets the failures. */
static void test_rate_window(void **state)
{
    struct fx *f = *state;
    /* Malformed credentials count against the address without hashing: cheap to repeat. */
    const char *bad = "Basic bm8gY29sb24="; /* "no colon" */
    const char *peer = "192.0.2.77";
    uint64_t c0 = auth_password_checks(f->auth);
    struct res x;
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        x = check(f, bad, NULL, peer);
        assert_int_equal(x.r, AUTH_DENIED);
    }
    unsigned expect = 1;
    for (unsigned k = 0; k < 12; k++) {
        x = check(f, bad, NULL, peer);
        assert_int_equal(x.r, AUTH_THROTTLED);
        assert_int_equal(x.retry, expect);
        /* One second early: still refused, and that does not count. */
        f->now += x.retry - 1;
        x = check(f, bad, NULL, peer);
        assert_int_equal(x.r, AUTH_THROTTLED);
        assert_int_equal(x.retry, 1);
        f->now += 1;
        x = check(f, bad, NULL, peer);
        assert_int_equal(x.r, AUTH_DENIED);
        expect = expect * 2 > AUTH_LOCKOUT_MAX ? AUTH_LOCKOUT_MAX : expect * 2;
    }
    assert_int_equal(expect, AUTH_LOCKOUT_MAX);
    /* The window counts from the end of the delay: at its last second, not forgotten yet. */
    f->now += AUTH_LOCKOUT_MAX + AUTH_FAILURE_WINDOW;
    x = check(f, bad, NULL, peer);
    assert_int_equal(x.r, AUTH_DENIED);
    x = check(f, bad, NULL, peer);
    assert_int_equal(x.r, AUTH_THROTTLED);
    assert_int_equal(x.retry, AUTH_LOCKOUT_MAX);
    /* One second later: forgotten, AUTH_FAILURES_FREE free attempts again. */
    f->now += AUTH_LOCKOUT_MAX + AUTH_FAILURE_WINDOW + 1;
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        x = check(f, bad, NULL, peer);
        assert_int_equal(x.r, AUTH_DENIED);
    }
    x = check(f, bad, NULL, peer);
    assert_int_equal(x.r, AUTH_THROTTLED);
    assert_int_equal(x.retry, 1);
    assert_int_equal(auth_password_checks(f->auth), c0);
}

static void test_rate_peer(void **state)
{
    struct fx *f = *state;
    uint64_t c0 = auth_password_checks(f->auth);
    static const char *const names[] = { "ghost1", "ghost2", "ghost3", "ghost4", "ghost5" };
    struct res x;
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        x = check_basic(f, names[i % 5], PW_WRONG, "198.51.100.1");
        assert_check(f, x, AUTH_DENIED, i + 1, c0);
    }
    uint64_t c1 = auth_password_checks(f->auth);
    /* That address, any name, right password or not, Basic or login: refused unchecked. */
    x = check_basic(f, "admin", PW_ADMIN, "198.51.100.1");
    assert_check(f, x, AUTH_THROTTLED, 0, c1);
    assert_int_equal(x.retry, 1);
    x = login(f, "admin", PW_ADMIN, "198.51.100.1");
    assert_check(f, x, AUTH_THROTTLED, 0, c1);
    x = check(f, "Basic !!!!", NULL, "198.51.100.1");
    assert_check(f, x, AUTH_THROTTLED, 0, c1);
    /* The same address written as IPv4-mapped IPv6 is the same address. */
    x = check_basic(f, "admin", PW_ADMIN, "::ffff:198.51.100.1");
    assert_check(f, x, AUTH_THROTTLED, 0, c1);
    /* Another address is fine. */
    x = check_basic(f, "admin", PW_ADMIN, "198.51.100.2");
    assert_check(f, x, AUTH_OK, 1, c1);
    /* Tokens are not throttled. */
    struct res s = login(f, "ro", PW_RO, "198.51.100.2");
    assert_int_equal(s.r, AUTH_OK);
    x = check(f, NULL, s.s.token, "198.51.100.1");
    assert_int_equal(x.r, AUTH_OK);

    /* After the delay a success from there resets the address. */
    f->now += 1;
    x = check_basic(f, "admin", PW_ADMIN, "198.51.100.1");
    assert_int_equal(x.r, AUTH_OK); /* cached: a success all the same */
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        x = check(f, "Basic !!!!", NULL, "198.51.100.1");
        assert_int_equal(x.r, AUTH_DENIED);
    }
    x = check(f, "Basic !!!!", NULL, "198.51.100.1");
    assert_int_equal(x.r, AUTH_THROTTLED);
}

/* IPv6 addresses count per /64: the next address of a host's prefix is no way around. */
static void test_rate_ipv6(void **state)
{
    struct fx *f = *state;
    const char *bad = "Basic bm8gY29sb24=";
    char peer[64];
    struct res x;
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        (void)snprintf(peer, sizeof(peer), "2001:db8:1:2::%x", i + 1);
        x = check(f, bad, NULL, peer);
        assert_int_equal(x.r, AUTH_DENIED);
    }
    x = check(f, bad, NULL, "2001:db8:1:2:ffff:ffff:ffff:ffff");
    assert_int_equal(x.r, AUTH_THROTTLED);
    x = check(f, bad, NULL, "2001:0db8:0001:0002::abcd");
    assert_int_equal(x.r, AUTH_THROTTLED);
    x = check(f, bad, NULL, "2001:db8:1:3::1");
    assert_int_equal(x.r, AUTH_DENIED);
    /* Peers that are not addresses still get a key of their own. */
    x = check(f, bad, NULL, NULL);
    assert_int_equal(x.r, AUTH_DENIED);
    x = check(f, bad, NULL, "unix:/run/certd.sock");
    assert_int_equal(x.r, AUTH_DENIED);
}

/* The tables are bounded: a flood of addresses evicts the oldest, memory stays the same. */
static void test_rate_table_bounded(void **state)
{
    struct fx *f = *state;
    const char *bad = "Basic bm8gY29sb24=";
    char peer[64];
    struct res x;
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        x = check(f, bad, NULL, "192.0.2.200");
        assert_int_equal(x.r, AUTH_DENIED);
    }
    x = check(f, bad, NULL, "192.0.2.200");
    assert_int_equal(x.r, AUTH_THROTTLED);
    /* AUTH_RATE_TABLE_MAX newer addresses push it out. */
    f->now += 1;
    for (unsigned i = 0; i < AUTH_RATE_TABLE_MAX; i++) {
        (void)snprintf(peer, sizeof(peer), "10.%u.%u.1", i / 256, i % 256);
        x = check(f, bad, NULL, peer);
        assert_int_equal(x.r, AUTH_DENIED);
    }
    for (unsigned i = 0; i < AUTH_FAILURES_FREE; i++) {
        x = check(f, bad, NULL, "192.0.2.200");
        assert_int_equal(x.r, AUTH_DENIED);
    }
}

/* ---- the worker side ---- */

static void noop_run(void *arg)
{
    (void)arg;
}

static void count_done(void *arg, bool cancelled)
{
    (void)cancelled;
    (*(int *)arg)++;
}

/* Both worker threads held, the queue full: a password check is refused with 503 at once. */
static void test_queue_full(void **state)
{
    struct fx *f = *state;
    struct gate *g = &f->gate;
    int n_done = 0, n_jobs = 0, r;
    assert_int_equal(worker_submit(f->pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g), 0);
    assert_int_equal(worker_submit(f->pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g), 0);
    gate_wait_started(g, 2);
    while ((r = worker_submit(f->pool, WORKER_LANE_PARALLEL, noop_run, count_done, &n_done)) == 0) {
        n_jobs++;
    }
    assert_int_equal(r, -EAGAIN);
    assert_int_equal(n_jobs, WORKER_QUEUE_MAX);

    uint64_t c0 = auth_password_checks(f->auth);
    struct res x = { 0 };
    char *h = basic("admin", PW_ADMIN);
    auth_check(f->auth, h, NULL, "192.0.2.1", check_cb, &x);
    free(h);
    assert_int_equal(x.n, 1); /* at once */
    assert_check(f, x, AUTH_UNAVAILABLE, 0, c0);
    struct secret *p = pw_new(PW_OP);
    struct res y = { 0 };
    auth_login(f->auth, "op", p, "192.0.2.1", login_cb, &y);
    secret_free(p);
    assert_int_equal(y.n, 1);
    assert_int_equal(y.r, AUTH_UNAVAILABLE);

    gate_open(g);
    while (worker_pool_pending(f->pool) > 0) {
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
    assert_int_equal(n_done, WORKER_QUEUE_MAX);
    /* Once there is room it works (and nothing was cached or counted meanwhile). */
    x = check_basic(f, "admin", PW_ADMIN, "192.0.2.1");
    assert_check(f, x, AUTH_OK, 1, c0);
}

/* auth_free with checks in flight answers them, once; the pool later frees their jobs. */
static void test_free_in_flight(void **state)
{
    struct fx *f = *state;
    struct res x = { 0 }, y = { 0 };
    char *h = basic("admin", PW_ADMIN);
    auth_check(f->auth, h, NULL, "192.0.2.1", check_cb, &x);
    free(h);
    struct secret *p = pw_new(PW_OP);
    auth_login(f->auth, "op", p, "192.0.2.1", login_cb, &y);
    secret_free(p);
    assert_int_equal(x.n + y.n, 0);
    f->auth = auth_free(f->auth);
    assert_int_equal(x.n, 1);
    assert_int_equal(x.r, AUTH_UNAVAILABLE);
    assert_int_equal(y.n, 1);
    assert_int_equal(y.r, AUTH_UNAVAILABLE);
    while (worker_pool_pending(f->pool) > 0) {
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
    assert_int_equal(x.n, 1);
    assert_int_equal(y.n, 1);
}

/* The pool stopping cancels a queued check: 503, once, and not counted as a failure. */
static void test_pool_stops(void **state)
{
    struct fx *f = *state;
    struct gate *g = &f->gate;
    assert_int_equal(worker_submit(f->pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g), 0);
    assert_int_equal(worker_submit(f->pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g), 0);
    gate_wait_started(g, 2);
    struct res x = { 0 };
    char *h = basic("admin", PW_WRONG);
    auth_check(f->auth, h, NULL, "192.0.2.1", check_cb, &x);
    free(h);
    assert_int_equal(x.n, 0);
    worker_pool_stop(f->pool);
    wait_res(f, &x);
    assert_int_equal(x.r, AUTH_UNAVAILABLE);
    gate_open(g);
    while (worker_pool_pending(f->pool) > 0) {
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    }
    assert_int_equal(x.n, 1);
    /* From now on every password check is refused at once. */
    struct res y = { 0 };
    h = basic("admin", PW_ADMIN);
    auth_check(f->auth, h, NULL, "192.0.2.1", check_cb, &y);
    free(h);
    assert_int_equal(y.n, 1);
    assert_int_equal(y.r, AUTH_UNAVAILABLE);
}

/* A user removed while the worker checks the password: the success is not used. */
static void test_change_during_check(void **state)
{
    struct fx *f = *state;
    struct certd_err err = { 0 };
    struct gate *g = &f->gate;
    /* One thread, held: the reload, then the login and the check wait in the queue in this
     * order, the two taking the users as they are now; the reload's done comes first. */
    struct worker_pool *pool = NULL;
    struct auth *a = auth_single(f, &pool);
    assert_int_equal(worker_submit(pool, WORKER_LANE_PARALLEL, gate_run, gate_done, g), 0);
    gate_wait_started(g, 1);
    struct users *u = load_users(f);
    assert_int_equal(users_del(u, "op", &err), 0);
    save_users(f, u);
    users_free(u);
    auth_reload_async(a);

    struct secret *p = pw_new(PW_OP);
    struct res x = { 0 };
    auth_login(a, "op", p, "192.0.2.1", login_cb, &x);
    struct res y = { 0 };
    char *h = basic("ro", PW_RO);
    auth_check(a, h, NULL, "192.0.2.1", check_cb, &y);
    free(h);
    secret_free(p);
    assert_int_equal(x.n + y.n, 0);

    gate_open(g);
    wait_res(f, &x);
    wait_res(f, &y);
    assert_null(users_find(auth_users(a), "op"));
    /* op's password was right for the users the check began with, not for those of now. */
    assert_int_equal(x.r, AUTH_DENIED);
    assert_int_equal(auth_n_sessions(a), 0);
    /* ro is unchanged: its check stands (but is not cached: it was made on other users). */
    assert_int_equal(y.r, AUTH_OK);
    uint64_t c0 = auth_password_checks(a);
    struct res z = { 0 };
    h = basic("ro", PW_RO);
    auth_check(a, h, NULL, "192.0.2.1", check_cb, &z);
    free(h);
    wait_res(f, &z);
    assert_check_of(a, z, AUTH_OK, 1, c0);
    drain(f->base, pool);
    pool = worker_pool_free(pool);
    a = auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_privileges),
        cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_basic_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_hygiene, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_per_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_coalesced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_during_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_table_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_during_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
