/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The users file (see users.h): a bounded line parser, the password policy, yescrypt hashing
 * through libxcrypt's reentrant calls (crypt_gensalt_rn, crypt_rn with a heap struct
 * crypt_data that is wiped before it is freed; never crypt(), whose static buffer would keep
 * the last hash around and is not thread-safe), constant-time verification, and the initial
 * administrator.
 */
#include "users/users.h"

#include <assert.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "store/store.h"
#include "util/base64.h"
#include "util/parse.h"

/*
 * The one scheme accepted in a stored hash, with the one cost that crypt_gensalt_rn gives it by
 * default (checked on load): every stored hash then costs what the dummy hash costs, so the time
 * a login takes does not tell whether the name exists, and nobody who can write a hash with
 * huge parameters ("$y$jFT$", "$6$rounds=999999999$") can make each login take seconds or GiB.
 */
#define HASH_PREFIX_NEW "$y$"
/* Longest yescrypt parameter field we compare (j9T is 3 characters). */
#define HASH_PARAMS_MAX 16u

/*
 * A yescrypt hash with libxcrypt's default cost (j9T, as new hashes get), of a password nobody
 * uses. users_verify() runs an unknown name against it, so that a miss costs what a hit does.
 */
static const char dummy_hash[] =
    "$y$j9T$j9gK9uympC3qvAXwXlQ/n1$KBrKU5qdQK0l08XbHsJV7Y5Y4Pkb30VQVl1AffVvIc0";

/* Random bytes in the initial password: 144 bits, exactly 24 base64url characters. */
#define BOOTSTRAP_RANDOM_BYTES 18u
#define BOOTSTRAP_PASSWORD_LEN 24u

static const char *const role_names[USER_ROLE_MAX] = {
    [USER_ROLE_ADMINISTRATOR] = "Administrator",
    [USER_ROLE_OPERATOR] = "Operator",
    [USER_ROLE_READONLY] = "ReadOnly",
};

const char *user_role_name(enum user_role role)
{
    if ((unsigned)role >= USER_ROLE_MAX) {
        return NULL;
    }
    return role_names[role];
}

int user_role_from_name(const char *s, enum user_role *ret)
{
    assert_return(s, -EINVAL);
    assert_return(ret, -EINVAL);
    for (size_t i = 0; i < USER_ROLE_MAX; i++) {
        if (strcmp(s, role_names[i]) == 0) {
            *ret = (enum user_role)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- secrets and crypt(3) ---- */

/* A hash is not a password, but it is what an offline guesser wants: wiped before free. */
static char *hash_free(char *h)
{
    if (h) {
        OPENSSL_cleanse(h, strlen(h));
        free(h);
    }
    return NULL;
}

static void hash_freep(char **h)
{
    *h = hash_free(*h);
}

/* crypt_rn's work area holds the password and intermediate state: wiped before free. */
static void crypt_data_freep(struct crypt_data **p)
{
    if (*p) {
        OPENSSL_cleanse(*p, sizeof(**p));
        free(*p);
    }
}

/* A fresh yescrypt hash of password (NUL-terminated, no NUL inside: policy-checked). */
static int hash_new(const struct secret *password, char **ret, struct certd_err *err)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    _cleanup_(crypt_data_freep) struct crypt_data *cd = NULL;

    /* count 0: libxcrypt's default cost; NULL entropy: it reads the OS random source. */
    if (!crypt_gensalt_rn(HASH_PREFIX_NEW, 0, NULL, 0, setting, (int)sizeof(setting))) {
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot make a password salt");
    }
    cd = calloc(1, sizeof(*cd)); /* zeroed, as crypt_rn requires */
    if (!cd) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    errno = 0;
    const char *out = crypt_rn((const char *)password->p, setting, cd, (int)sizeof(*cd));
    if (!out || out[0] != '$') {
        if (errno == ENOMEM) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory hashing a password");
        }
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot hash the password");
    }
    char *h = strdup(out);
    if (!h) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    *ret = h;
    return 0;
}

/*
 * The parameter field of a yescrypt setting or hash ("j9T" in "$y$j9T$salt$hash") into out.
 * False when it is not "$y$PARAMS$...".
 */
static bool hash_params(const char *h, char out[HASH_PARAMS_MAX + 1])
{
    size_t plen = strlen(HASH_PREFIX_NEW);
    if (strncmp(h, HASH_PREFIX_NEW, plen) != 0) {
        return false;
    }
    const char *start = h + plen, *end = strchr(start, '$');
    if (!end || end == start || (size_t)(end - start) > HASH_PARAMS_MAX) {
        return false;
    }
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return true;
}

/* The parameters new hashes get: libxcrypt's default cost ("j9T" with libxcrypt 4.4). */
static bool hash_default_params(char out[HASH_PARAMS_MAX + 1])
{
    /* Fixed entropy: only the parameter field is used, and it does not depend on the salt. */
    static const char entropy[16] = { 0 };
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn(HASH_PREFIX_NEW, 0, entropy, (int)sizeof(entropy), setting,
                          (int)sizeof(setting))) {
        return false;
    }
    return hash_params(setting, out);
}

/*
 * A stored hash: yescrypt with exactly the default parameters (defaults, from
 * hash_default_params), only crypt(3)'s alphabet, "$y$params$salt$hash" with a non-empty salt
 * and hash, and a setting libxcrypt accepts. 0, -E2BIG or -EOPNOTSUPP.
 */
static int hash_check(const char *h, const char *defaults)
{
    size_t len = strlen(h), dollars = 0;
    char params[HASH_PARAMS_MAX + 1];

    if (len > USERS_HASH_MAX) {
        return -E2BIG;
    }
    if (!hash_params(h, params) || strcmp(params, defaults) != 0) {
        return -EOPNOTSUPP;
    }
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (c == '$') {
            dollars++;
            if (i > 0 && h[i - 1] == '$') {
                return -EOPNOTSUPP; /* an empty field */
            }
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '/')) {
            return -EOPNOTSUPP;
        }
    }
    if (dollars != 4 || h[len - 1] == '$') {
        return -EOPNOTSUPP;
    }
    if (crypt_checksalt(h) != CRYPT_SALT_OK) {
        return -EOPNOTSUPP;
    }
    return 0;
}

/* ---- names and passwords ---- */

/* 0, -EINVAL or -E2BIG for a name of len bytes (may hold anything, NUL included). */
static int name_check(const char *s, size_t len)
{
    if (len == 0) {
        return -EINVAL;
    }
    if (len > USERS_NAME_MAX) {
        return -E2BIG;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || c == '_';
        if (i > 0) {
            ok = ok || (c >= '0' && c <= '9') || c == '.' || c == '-';
        }
        if (!ok) {
            return -EINVAL;
        }
    }
    return 0;
}

int users_check_name(const char *name, struct certd_err *err)
{
    assert_return(name, -EINVAL);
    size_t len = strnlen(name, USERS_NAME_MAX + 1);
    int r = name_check(name, len);
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_FIELD_TOO_LONG, "a user name has at most %u characters",
                       USERS_NAME_MAX);
    }
    if (r < 0) {
        /* The name is not echoed: it may be anything, a password typed in the wrong place too. */
        return err_set(err, r, CERTD_E_FIELD_INVALID,
                       "a user name is a lowercase letter or '_', then lowercase letters, digits, "
                       "'_', '.' or '-'");
    }
    return 0;
}

int users_check_password(const struct secret *password, struct certd_err *err)
{
    assert_return(password, -EINVAL);
    assert_return(password->p || password->len == 0, -EINVAL);

    /* Messages state the rule only: never the password, its length or where it failed. */
    if (password->len < USERS_PASSWORD_MIN) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "a password has at least %u bytes",
                       USERS_PASSWORD_MIN);
    }
    if (password->len > USERS_PASSWORD_MAX) {
        return err_set(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, "a password has at most %u bytes",
                       USERS_PASSWORD_MAX);
    }
    int r = utf8_check_text(span_make(password->p, password->len));
    if (r == -EILSEQ) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "a password must be valid UTF-8");
    }
    if (r == -EBADMSG) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "a password may not contain control characters");
    }
    return r;
}

/* ---- the set ---- */

struct users *users_new(void)
{
    return calloc(1, sizeof(struct users));
}

struct users *users_free(struct users *u)
{
    if (!u) {
        return NULL;
    }
    for (size_t i = 0; i < u->n; i++) {
        u->v[i].hash = hash_free(u->v[i].hash);
    }
    free(u->v);
    free(u);
    return NULL;
}

static struct user *users_find_mut(const struct users *u, const char *name)
{
    for (size_t i = 0; i < u->n; i++) {
        if (strcmp(u->v[i].name, name) == 0) {
            return &u->v[i];
        }
    }
    return NULL;
}

const struct user *users_find(const struct users *u, const char *name)
{
    if (!u || !name) {
        return NULL;
    }
    return users_find_mut(u, name);
}

size_t users_count_role(const struct users *u, enum user_role role)
{
    size_t n = 0;
    for (size_t i = 0; u && i < u->n; i++) {
        if (u->v[i].role == role) {
            n++;
        }
    }
    return n;
}

/* Room for one more entry; the array grows by doubling, never past USERS_MAX. */
static int users_reserve(struct users *u)
{
    if (u->n < u->cap) {
        return 0;
    }
    if (u->n >= USERS_MAX) {
        return -E2BIG;
    }
    size_t ncap = u->cap == 0 ? 8 : u->cap * 2;
    if (ncap > USERS_MAX) {
        ncap = USERS_MAX;
    }
    struct user *v = reallocarray(u->v, ncap, sizeof(*v));
    if (!v) {
        return -ENOMEM;
    }
    u->v = v;
    u->cap = ncap;
    return 0;
}

/* Append a checked entry; takes hash on success only. */
static int users_append(struct users *u, const char *name, size_t name_len, enum user_role role,
                        char *hash)
{
    int r = users_reserve(u);
    if (r < 0) {
        return r;
    }
    struct user *e = &u->v[u->n];
    memset(e, 0, sizeof(*e));
    memcpy(e->name, name, name_len);
    e->name[name_len] = '\0';
    e->role = role;
    e->hash = hash;
    u->n++;
    return 0;
}

/* ---- parsing ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One non-comment line, NUL-terminated in line (len bytes, no NUL inside). */
static int parse_entry(struct users *u, char *line, size_t len, const char *params, const char *fn,
                       size_t lineno, struct certd_err *err)
{
    char *c1 = memchr(line, ':', len);
    char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2) {
        return err_set(err, -EBADMSG, CERTD_E_FIELD_MISSING, "%s:%zu: expected NAME:ROLE:HASH", fn,
                       lineno);
    }
    *c1 = '\0';
    *c2 = '\0';
    const char *name = line, *role_s = c1 + 1, *hash_s = c2 + 1;
    if (name[0] == '\0' || role_s[0] == '\0' || hash_s[0] == '\0') {
        return err_set(err, -EBADMSG, CERTD_E_FIELD_MISSING, "%s:%zu: an empty field", fn, lineno);
    }

    int r = name_check(name, strlen(name));
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_FIELD_TOO_LONG,
                       "%s:%zu: a user name has at most %u characters", fn, lineno, USERS_NAME_MAX);
    }
    if (r < 0) {
        return err_set(err, -EBADMSG, CERTD_E_FIELD_INVALID, "%s:%zu: invalid user name", fn,
                       lineno);
    }
    enum user_role role;
    if (user_role_from_name(role_s, &role) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_FIELD_INVALID,
                       "%s:%zu: unknown role (Administrator, Operator or ReadOnly)", fn, lineno);
    }
    r = hash_check(hash_s, params);
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_FIELD_TOO_LONG,
                       "%s:%zu: a password hash has at most %u characters", fn, lineno,
                       USERS_HASH_MAX);
    }
    if (r < 0) {
        return err_set(err, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
                       "%s:%zu: unsupported password hash: only yescrypt with certd's parameters "
                       "($y$%s$); set the password again with 'certctl user passwd'",
                       fn, lineno, params);
    }
    if (users_find_mut(u, name)) {
        return err_set(err, -EBADMSG, CERTD_E_DUPLICATE, "%s:%zu: user %s appears twice", fn,
                       lineno, name);
    }
    if (u->n >= USERS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES, "%s:%zu: more than %u users", fn,
                       lineno, USERS_MAX);
    }

    char *h = strdup(hash_s);
    if (!h) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = users_append(u, name, strlen(name), role, h);
    if (r < 0) {
        h = hash_free(h);
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

int users_parse(struct span data, const char *filename, struct users **ret, struct certd_err *err)
{
    assert_return(data.p || data.len == 0, -EINVAL);
    assert_return(ret, -EINVAL);
    const char *fn = filename ? filename : "users file";

    if (data.len > USERS_FILE_MAX) {
        return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE, "%s is larger than %u bytes", fn,
                       USERS_FILE_MAX);
    }
    char params[HASH_PARAMS_MAX + 1];
    if (!hash_default_params(params)) {
        return err_set(err, -EIO, CERTD_E_INTERNAL, "cannot find yescrypt's default parameters");
    }
    _cleanup_(cleanup_users) struct users *u = users_new();
    if (!u) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }

    struct cursor c = cur_init(data);
    struct span line;
    char buf[USERS_LINE_MAX + 1];
    int r = 0;
    for (size_t lineno = 1; cur_line(&c, &line) == 0; lineno++) {
        if (line.len > USERS_LINE_MAX) {
            r = err_set(err, -E2BIG, CERTD_E_FIELD_TOO_LONG, "%s:%zu: longer than %u bytes", fn,
                        lineno, USERS_LINE_MAX);
            break;
        }
        if (span_has_nul(line)) {
            r = err_set(err, -EBADMSG, CERTD_E_INPUT_GARBAGE, "%s:%zu: a NUL byte", fn, lineno);
            break;
        }
        if (line.len > 0) {
            memcpy(buf, line.p, line.len);
        }
        buf[line.len] = '\0';
        size_t skip = 0;
        while (skip < line.len && is_blank(buf[skip])) {
            skip++;
        }
        if (skip == line.len || buf[skip] == '#') {
            continue; /* blank or comment */
        }
        r = parse_entry(u, buf, line.len, params, fn, lineno, err);
        if (r < 0) {
            break;
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(u);
    return 0;
}

int users_load(const char *path, struct users **ret, struct certd_err *err)
{
    assert_return(path, -EINVAL);
    assert_return(ret, -EINVAL);

    /*
     * Like sshd's StrictModes: the file holds password hashes, so nobody else may even read it
     * (077), and whoever can change it could let themselves in.
     */
    _cleanup_(store_buf_done) struct store_buf b = { .p = NULL };
    int r = store_read_trusted(path, "users file", USERS_FILE_MAX, 077, &b, err);
    if (r < 0) {
        return r;
    }
    return users_parse(span_make(b.p, b.len), path, ret, err);
}

static const char users_header[] =
    "# certd users: NAME:ROLE:HASH, one per line. Managed by 'certctl user'.\n";

/* The text of u (with the header) in a new buffer of *ret_size bytes (no NUL). */
static int users_format(const struct users *u, char **ret, size_t *ret_size)
{
    /* Every line is bounded (name, role, hash), and so is n: no overflow is possible here. */
    size_t size = sizeof(users_header) - 1;
    for (size_t i = 0; i < u->n; i++) {
        size += strlen(u->v[i].name) + strlen(role_names[u->v[i].role]) + strlen(u->v[i].hash) + 3;
    }
    char *buf = malloc(size);
    if (!buf) {
        return -ENOMEM;
    }
    size_t pos = 0;
#define APPEND(s, n)                 \
    do {                             \
        memcpy(buf + pos, (s), (n)); \
        pos += (n);                  \
    } while (0)
    APPEND(users_header, sizeof(users_header) - 1);
    for (size_t i = 0; i < u->n; i++) {
        const struct user *e = &u->v[i];
        APPEND(e->name, strlen(e->name));
        APPEND(":", 1);
        APPEND(role_names[e->role], strlen(role_names[e->role]));
        APPEND(":", 1);
        APPEND(e->hash, strlen(e->hash));
        APPEND("\n", 1);
    }
#undef APPEND
    assert(pos == size);
    *ret = buf;
    *ret_size = size;
    return 0;
}

int users_save(const struct users *u, const char *path, struct certd_err *err)
{
    assert_return(u, -EINVAL);
    assert_return(path, -EINVAL);

    /*
     * The new file is created by us: replacing a file another user owns (certctl run as root on
     * the service's file) would hand it to us, and the service could no longer read it.
     * Refused rather than chowned: the store creates the file, and a chown after the rename
     * would leave a window with the wrong owner.
     */
    int r = store_check_writer(path, err);
    if (r < 0) {
        return r;
    }
    char *buf = NULL;
    size_t size = 0;
    r = users_format(u, &buf, &size);
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = store_write_atomic(path, span_make(buf, size), STORE_MODE_SECRET, err);
    OPENSSL_cleanse(buf, size);
    free(buf);
    return r;
}

int users_lock(const char *path, int *ret_fd, struct certd_err *err)
{
    assert_return(path, -EINVAL);
    assert_return(ret_fd, -EINVAL);

    /* Before the lock file is made: as root on the service's file it would be root's. */
    int r = store_check_writer(path, err);
    if (r < 0) {
        return r;
    }
    return store_lock_file(path, USERS_LOCK_SUFFIX, ret_fd, err);
}

int users_unlock(int fd)
{
    return store_unlock_file(fd);
}

/* ---- changes ---- */

int users_add(struct users *u, const char *name, enum user_role role, const struct secret *password,
              struct certd_err *err)
{
    assert_return(u, -EINVAL);
    assert_return(name, -EINVAL);
    assert_return(password, -EINVAL);

    int r = users_check_name(name, err);
    if (r < 0) {
        return r;
    }
    if ((unsigned)role >= USER_ROLE_MAX) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "the role is Administrator, Operator or ReadOnly");
    }
    if (users_find_mut(u, name)) {
        return err_set(err, -EEXIST, CERTD_E_DUPLICATE, "user %s exists already", name);
    }
    if (u->n >= USERS_MAX) {
        return err_set(err, -E2BIG, CERTD_E_LIMIT_REACHED, "there are %u users already", USERS_MAX);
    }
    r = users_check_password(password, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(hash_freep) char *h = NULL;
    r = hash_new(password, &h, err);
    if (r < 0) {
        return r;
    }
    r = users_append(u, name, strlen(name), role, h);
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    h = NULL; /* taken by the entry */
    return 0;
}

int users_set_password(struct users *u, const char *name, const struct secret *password,
                       struct certd_err *err)
{
    assert_return(u, -EINVAL);
    assert_return(name, -EINVAL);
    assert_return(password, -EINVAL);

    struct user *e = users_find_mut(u, name);
    if (!e) {
        return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "no user %s", name);
    }
    int r = users_check_password(password, err);
    if (r < 0) {
        return r;
    }
    char *h = NULL;
    r = hash_new(password, &h, err);
    if (r < 0) {
        return r;
    }
    e->hash = hash_free(e->hash);
    e->hash = h;
    return 0;
}

int users_set_role(struct users *u, const char *name, enum user_role role, struct certd_err *err)
{
    assert_return(u, -EINVAL);
    assert_return(name, -EINVAL);

    if ((unsigned)role >= USER_ROLE_MAX) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "the role is Administrator, Operator or ReadOnly");
    }
    struct user *e = users_find_mut(u, name);
    if (!e) {
        return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "no user %s", name);
    }
    if (e->role == role) {
        return 0;
    }
    if (e->role == USER_ROLE_ADMINISTRATOR && users_count_role(u, USER_ROLE_ADMINISTRATOR) == 1) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "%s is the last Administrator; make another user Administrator first", name);
    }
    e->role = role;
    return 1;
}

int users_del(struct users *u, const char *name, struct certd_err *err)
{
    assert_return(u, -EINVAL);
    assert_return(name, -EINVAL);

    struct user *e = users_find_mut(u, name);
    if (!e) {
        return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "no user %s", name);
    }
    if (e->role == USER_ROLE_ADMINISTRATOR && users_count_role(u, USER_ROLE_ADMINISTRATOR) == 1) {
        return err_set(err, -EPERM, CERTD_E_POLICY_FORBIDS,
                       "%s is the last Administrator and cannot be deleted", name);
    }
    size_t i = (size_t)(e - u->v);
    e->hash = hash_free(e->hash);
    memmove(&u->v[i], &u->v[i + 1], (u->n - i - 1) * sizeof(u->v[0]));
    u->n--;
    return 0;
}

int users_verify(const struct users *u, const char *name, const struct secret *password)
{
    assert_return(u, -EINVAL);
    assert_return(name, -EINVAL);
    assert_return(password && password->p, -EINVAL);

    const struct user *e = users_find_mut(u, name);
    const char *hash = e ? e->hash : dummy_hash;
    /*
     * Longer than any password certd sets: never a match. It is not hashed (its cost would
     * grow with its length), but a fixed one is, so that a refusal takes the usual time.
     */
    bool too_long = password->len > USERS_PASSWORD_MAX;
    const char *input = too_long ? "certd: password over the limit" : (const char *)password->p;
    if (too_long) {
        hash = dummy_hash;
    }
    _cleanup_(crypt_data_freep) struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (!cd) {
        return -ENOMEM;
    }
    errno = 0;
    const char *out = crypt_rn(input, hash, cd, (int)sizeof(*cd));
    if (!out) {
        return errno == ENOMEM ? -ENOMEM : 0;
    }
    size_t len = strlen(hash);
    bool same = strnlen(out, len + 1) == len && CRYPTO_memcmp(out, hash, len) == 0;
    /* A NUL inside would have cut the password short: it can never match. */
    bool whole = memchr(password->p, '\0', password->len) == NULL;
    return e && !too_long && same && whole ? 1 : 0;
}

/* ---- the initial administrator ---- */

/* The directory of path ("." for a bare name) in a new string; NULL without memory. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        return strdup(".");
    }
    if (slash == path) {
        return strdup("/");
    }
    return strndup(path, (size_t)(slash - path));
}

/*
 * Create path with data (mode 0600) only if it does not exist: an unnamed O_TMPFILE in its
 * directory, written and fsynced, then given its name with linkat, which never replaces a file
 * (EEXIST), then the directory fsynced. Nothing is left behind on failure. Returns 0, -EEXIST,
 * or -errno with CERTD_E_STORAGE.
 */
static int create_noreplace(const char *path, const char *data, size_t size, struct certd_err *err)
{
    _cleanup_free_ char *dir = dir_of(path);
    if (!dir) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    _cleanup_close_ int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        int r = -errno;
        return err_set(err, r, CERTD_E_STORAGE, "cannot create %s: %s", path, strerror(-r));
    }
    for (size_t pos = 0; pos < size;) {
        ssize_t k = write(fd, data + pos, size - pos);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            int r = k < 0 ? -errno : -EIO;
            return err_set(err, r, CERTD_E_STORAGE, "cannot write %s: %s", path, strerror(-r));
        }
        pos += (size_t)k;
    }
    if (fsync(fd) < 0) {
        int r = -errno;
        return err_set(err, r, CERTD_E_STORAGE, "cannot fsync %s: %s", path, strerror(-r));
    }
    char proc[64];
    (void)snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0) {
        int r = -errno;
        if (r == -EEXIST) {
            return r;
        }
        return err_set(err, r, CERTD_E_STORAGE, "cannot create %s: %s", path, strerror(-r));
    }
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        int r = -errno;
        return err_set(err, r, CERTD_E_STORAGE, "cannot fsync directory %s: %s", dir, strerror(-r));
    }
    return 0;
}

int users_bootstrap(const char *users_path, const char *password_path, struct secret **ret_password,
                    struct certd_err *err)
{
    assert_return(users_path, -EINVAL);
    assert_return(password_path, -EINVAL);
    assert_return(ret_password, -EINVAL);

    /*
     * Under the users lock: two bootstraps (or a bootstrap and 'certctl user add') cannot
     * interleave, so the password file and the users file always come from the same run.
     */
    _cleanup_close_ int lock = -EBADF;
    int r = users_lock(users_path, &lock, err);
    if (r < 0) {
        return r;
    }
    struct stat st;
    if (lstat(users_path, &st) == 0) {
        *ret_password = NULL; /* whatever it holds, it is the administrator's file */
        return 0;
    }
    if (errno != ENOENT) {
        r = -errno;
        return err_set(err, r, CERTD_E_STORAGE, "cannot check %s: %s", users_path, strerror(-r));
    }

    uint8_t rnd[BOOTSTRAP_RANDOM_BYTES];
    char text[BOOTSTRAP_PASSWORD_LEN + 1]; /* the password, then a newline over its NUL */
    _Static_assert(BASE64URL_LEN(BOOTSTRAP_RANDOM_BYTES) == BOOTSTRAP_PASSWORD_LEN,
                   "base64url size");
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return err_set(err, -EIO, CERTD_E_INTERNAL, "no random bytes for the initial password");
    }
    base64url_encode(rnd, sizeof(rnd), text, sizeof(text));
    text[BOOTSTRAP_PASSWORD_LEN] = '\n';
    OPENSSL_cleanse(rnd, sizeof(rnd));
    _cleanup_(cleanup_secret) struct secret *pw = secret_new(text, BOOTSTRAP_PASSWORD_LEN);
    _cleanup_(cleanup_secret) struct secret *file = secret_new(text, sizeof(text));
    OPENSSL_cleanse(text, sizeof(text));
    if (!pw || !file) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }

    _cleanup_(cleanup_users) struct users *u = users_new();
    if (!u) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = users_add(u, "admin", USER_ROLE_ADMINISTRATOR, pw, err);
    if (r < 0) {
        return r;
    }
    char *buf = NULL;
    size_t size = 0;
    r = users_format(u, &buf, &size);
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    /* The password first: a crash before the users file exists makes the next start redo both. */
    r = store_write_atomic(password_path, span_make(file->p, file->len), STORE_MODE_SECRET, err);
    if (r >= 0) {
        /* Never over a users file: one made in between by a writer ignoring the lock wins. */
        r = create_noreplace(users_path, buf, size, err);
    }
    OPENSSL_cleanse(buf, size);
    free(buf);
    if (r == -EEXIST) {
        /* Its password would open nothing: do not leave it for someone to trust. */
        (void)unlink(password_path);
        *ret_password = NULL;
        return 0;
    }
    if (r < 0) {
        return r;
    }
    *ret_password = TAKE_PTR(pw);
    return 0;
}
