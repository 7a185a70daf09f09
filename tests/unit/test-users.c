/* SPDX-License-Identifier: Apache-2.0 */
/*
 * users/: the users file parser as a table of every bad line shape (with its errno, detail
 * code and a message word), its limits at N and N+1, verification against hashes made outside
 * certd (Python's crypt and libxcrypt's own gensalt), the refusal of every other scheme and
 * cost, the trust rules of the file (type, owner, mode), the lock between writers, the password
 * policy at its bounds (and that no message ever holds the password), changes round-tripped
 * through save and load with mode 0600, the last-administrator rule, and the initial admin.
 * yescrypt costs ~16 MiB and tens of milliseconds per hash: hashing is kept to a few calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "users/users.h"

#define PW "correct horse battery"
/* Hashes of PW made outside certd (libxcrypt's crypt_gensalt + crypt_rn, Python's crypt). */
#define H_Y  "$y$j9T$W0hPEClv536CNFsjOTzrM.$tdZKm0KxMzUPUHYWouVslo4SxjJFPs5hAsk1Kt08of4"
#define H_GY "$gy$j9T$6tXr9axRJgN2clB5g1ucM0$jwmxSV2mLAcOLANYMywphyH5k0v/832EUEbbLZx6gx3"
#define H_7  "$7$CU..../....abcdefghijklmnop$nEzPvU8Gve14pC7/weSbXs/UVLmnu8V/.GtO5M0VQiD"
#define H_6 \
    "$6$abcdefghijklmnop$rt39N1qx1/IV9N1Jf5nwUgG6t8Znzd69aCkEyydxq/KPdVGwEO3H4uBFCIlTZqoTbUZLsXm2RD5Na5i7F.u2v/"
#define H_6R \
    "$6$rounds=5000$abcdefghijklmnop$rt39N1qx1/IV9N1Jf5nwUgG6t8Znzd69aCkEyydxq/KPdVGwEO3H4uBFCIlTZqoTbUZLsXm2RD5Na5i7F.u2v/"
/* yescrypt with other costs than certd's (jFT: 64 times the memory; j8T: half of it). */
#define H_Y_JFT "$y$jFT$W0hPEClv536CNFsjOTzrM.$as.wnJPS6jwQKfN2iBTHiWbBTZq5vgcMnvjFKA0cUoB"
#define H_Y_J8T "$y$j8T$W0hPEClv536CNFsjOTzrM.$HyIwXjlL8ciBCK5VMl2HJkcC78O/10SrQLH1C2CZQ8/"
/* yescrypt (j9T) of 129 'Q's: one byte over USERS_PASSWORD_MAX. */
#define H_LONG "$y$j9T$abcdefghijklmnopqrstu/$Qo0g40DSI17JQ2BJdMZIpNc6VJ2O5G/BWdMOswgCD7C"
#define H_MD5  "$1$abcdefgh$E2IUOVGWn4QIROUcRm1wO/"
#define H_DES  "abhfCpXqd4GrI"
#define H_BF   "$2b$05$abcdefghijklmnopqrstuuD3mHdCr44zlIZ.VZCaYRpfQhXMYnEo."

static struct secret *pw_new(const char *s)
{
    struct secret *p = secret_new(s, strlen(s));
    assert_non_null(p);
    return p;
}

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* ---- parsing ---- */

struct parse_case {
    const char *input;
    size_t len; /* 0: strlen(input) */
    int r;
    enum certd_errc code;
    const char *word; /* in err.msg */
    size_t n;         /* users on success */
};

static void test_parse_table(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        /* accepted */
        { "", 0, 0, CERTD_E_OK, NULL, 0 },
        { "# only a comment\n\n  \t\n", 0, 0, CERTD_E_OK, NULL, 0 },
        { "admin:Administrator:" H_Y "\n", 0, 0, CERTD_E_OK, NULL, 1 },
        { "admin:Administrator:" H_Y, 0, 0, CERTD_E_OK, NULL, 1 }, /* no final newline */
        { "admin:Administrator:" H_Y "\r\n", 0, 0, CERTD_E_OK, NULL, 1 },
        { "# c\nadmin:Administrator:" H_Y "\n\nop:Operator:" H_Y "\n  # indented comment\n"
          "ro:ReadOnly:" H_LONG "\n",
          0, 0, CERTD_E_OK, NULL, 3 },
        { "_a.b-c_9:Operator:" H_Y "\n", 0, 0, CERTD_E_OK, NULL, 1 },
        { "abcdefghijklmnopqrstuvwxyz012345:Operator:" H_Y "\n", 0, 0, CERTD_E_OK, NULL, 1 },
        /* missing fields */
        { "admin\n", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "users:1:", 0 },
        { "admin:Administrator\n", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "NAME:ROLE:HASH", 0 },
        { "admin:Administrator:\n", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "empty", 0 },
        { ":Administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "empty", 0 },
        { "admin::" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_MISSING, "empty", 0 },
        { "# c\n\nadmin:Administrator:" H_Y "\nbob\n", 0, -EBADMSG, CERTD_E_FIELD_MISSING,
          "users:4:", 0 },
        /* bad names */
        { "Admin:Administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { "1admin:Administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { "-admin:Administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { "ad min:Administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { " admin:Administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name", 0 },
        { "ad\xc3\xa9:Administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "user name",
          0 },
        { "abcdefghijklmnopqrstuvwxyz0123456:Operator:" H_Y "\n", 0, -E2BIG, CERTD_E_FIELD_TOO_LONG,
          "at most 32", 0 },
        /* unknown roles */
        { "admin:administrator:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "role", 0 },
        { "admin:Admin:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "role", 0 },
        { "admin:Administrator :" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "role", 0 },
        { "admin:NoAccess:" H_Y "\n", 0, -EBADMSG, CERTD_E_FIELD_INVALID, "role", 0 },
        /* hash schemes, costs and shapes: only yescrypt with certd's parameters */
        { "admin:Administrator:" H_MD5 "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "yescrypt", 0 },
        { "admin:Administrator:" H_DES "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "users:1:", 0 },
        { "admin:Administrator:" H_BF "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:" H_GY "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
          "unsupported password hash", 0 },
        { "admin:Administrator:" H_7 "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
          "unsupported password hash", 0 },
        { "admin:Administrator:" H_6 "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
          "unsupported password hash", 0 },
        { "admin:Administrator:" H_6R "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
          "unsupported password hash", 0 },
        { "admin:Administrator:$6$rounds=999999999$abcdefghijklmnop$x\n", 0, -EOPNOTSUPP,
          CERTD_E_FIELD_INVALID, "certd's parameters", 0 },
        { "admin:Administrator:" H_Y_JFT "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
          "certd's parameters", 0 },
        { "admin:Administrator:" H_Y_J8T "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID,
          "users:1:", 0 },
        { "admin:Administrator:plaintext-password\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash",
          0 },
        { "admin:Administrator:!" H_Y "\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:*\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:$y$\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:$y$j9T$W0hPEClv536CNFsjOTzrM.$\n", 0, -EOPNOTSUPP,
          CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:$y$j9T$$tdZKm0KxMzUPUHYWouVslo4SxjJFPs5hAsk1Kt08of4\n", 0,
          -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:" H_Y "$x\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:" H_Y " \n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        { "admin:Administrator:" H_Y ":extra\n", 0, -EOPNOTSUPP, CERTD_E_FIELD_INVALID, "hash", 0 },
        /* duplicates */
        { "admin:Administrator:" H_Y "\nadmin:ReadOnly:" H_Y "\n", 0, -EBADMSG, CERTD_E_DUPLICATE,
          "users:2:", 0 },
        /* NUL bytes, in a user line and in a comment */
        { "admin:Admin\0istrator:" H_Y "\n", sizeof("admin:Admin\0istrator:" H_Y "\n") - 1,
          -EBADMSG, CERTD_E_INPUT_GARBAGE, "NUL", 0 },
        { "admin:Administrator:" H_Y "\n#\0\n", sizeof("admin:Administrator:" H_Y "\n#\0\n") - 1,
          -EBADMSG, CERTD_E_INPUT_GARBAGE, "users:2:", 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        const struct parse_case *t = &cases[i];
        struct certd_err err = { 0 };
        struct users *u = NULL;
        size_t len = t->len ? t->len : strlen(t->input);
        int r = users_parse(span_make(t->input, len), "users", &u, &err);
        if (r != t->r || err.code != t->code) {
            fail_msg("case %zu: r=%d code=%s msg=%s", i, r, err_code_name(err.code), err.msg);
        }
        if (t->r == 0) {
            assert_non_null(u);
            assert_int_equal(u->n, t->n);
            u = users_free(u);
        } else {
            assert_null(u);
            assert_non_null(strstr(err.msg, t->word));
        }
    }
}

static void test_parse_fields(void **state)
{
    (void)state;
    struct users *u = NULL;
    const char *in = "admin:Administrator:" H_Y "\nop:Operator:" H_LONG "\nro:ReadOnly:" H_Y "\n";
    assert_int_equal(users_parse(span_from_str(in), "u", &u, NULL), 0);
    assert_int_equal(u->n, 3);
    assert_string_equal(u->v[1].name, "op");
    assert_int_equal(u->v[1].role, USER_ROLE_OPERATOR);
    assert_string_equal(u->v[1].hash, H_LONG);
    assert_int_equal(users_find(u, "ro")->role, USER_ROLE_READONLY);
    assert_null(users_find(u, "nobody"));
    assert_null(users_find(u, "Admin"));
    assert_int_equal(users_count_role(u, USER_ROLE_ADMINISTRATOR), 1);
    users_free(u);
}

/* A buffer of n users "uNNNN:ReadOnly:H_Y" lines. */
static char *many_users(size_t n)
{
    size_t line = strlen("u0000:ReadOnly:" H_Y "\n");
    char *buf = malloc(n * line + 1);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        char one[256];
        int k = snprintf(one, sizeof(one), "u%04u:ReadOnly:%s\n", (unsigned)(i % 10000), H_Y);
        assert_int_equal(k, (int)line);
        memcpy(buf + i * line, one, line);
    }
    buf[n * line] = '\0';
    return buf;
}

static void test_parse_limits(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    struct users *u = NULL;

    /* 1000 users load; 1001 do not. */
    char *buf = many_users(USERS_MAX + 1);
    size_t line = strlen("u0000:ReadOnly:" H_Y "\n");
    assert_int_equal(users_parse(span_make(buf, USERS_MAX * line), "users", &u, &err), 0);
    assert_int_equal(u->n, USERS_MAX);
    /* ...and then nobody can be added (checked before any hashing or password check). */
    struct secret *pw = pw_new("x");
    assert_int_equal(users_add(u, "extra", USER_ROLE_READONLY, pw, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_LIMIT_REACHED);
    secret_free(pw);
    u = users_free(u);
    err_clear(&err);
    assert_int_equal(users_parse(span_make(buf, (USERS_MAX + 1) * line), "users", &u, &err),
                     -E2BIG);
    assert_int_equal(err.code, CERTD_E_TOO_MANY_VALUES);
    assert_non_null(strstr(err.msg, "users:1001:"));
    assert_null(u);
    free(buf);

    /* The file size: USERS_FILE_MAX bytes of comments load, one more byte does not. */
    buf = malloc(USERS_FILE_MAX + 256);
    assert_non_null(buf);
    for (size_t i = 0; i < USERS_FILE_MAX + 1; i += 256) {
        memset(buf + i, '#', 255);
        buf[i + 255] = '\n';
    }
    err_clear(&err);
    assert_int_equal(users_parse(span_make(buf, USERS_FILE_MAX), "users", &u, &err), 0);
    u = users_free(u);
    assert_int_equal(users_parse(span_make(buf, USERS_FILE_MAX + 1), "users", &u, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_INPUT_TOO_LARGE);
    assert_non_null(strstr(err.msg, "larger"));
    assert_null(u);

    /* A line of USERS_LINE_MAX bytes is read, one byte more is refused naming the line. */
    memset(buf, '#', USERS_LINE_MAX + 1);
    buf[USERS_LINE_MAX + 1] = '\n';
    err_clear(&err);
    assert_int_equal(users_parse(span_make(buf, USERS_LINE_MAX), "users", &u, &err), 0);
    u = users_free(u);
    assert_int_equal(users_parse(span_make(buf, USERS_LINE_MAX + 2), "users", &u, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_TOO_LONG);
    assert_non_null(strstr(err.msg, "users:1:"));
    assert_null(u);

    /* A hash of USERS_HASH_MAX + 1 characters (within the line bound). */
    char line_buf[USERS_LINE_MAX + 1];
    int n = snprintf(line_buf, sizeof(line_buf), "a:Operator:$6$%0*d", (int)USERS_HASH_MAX - 2, 0);
    assert_true(n > 0 && (size_t)n < sizeof(line_buf));
    err_clear(&err);
    assert_int_equal(users_parse(span_make(line_buf, (size_t)n), "users", &u, &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_TOO_LONG);
    assert_non_null(strstr(err.msg, "hash"));
    free(buf);
}

static void test_load_errors(void **state)
{
    (void)state;
    char *dir = scratch_dir("users-load");
    char *path = path_join(dir, "users");
    char *link = path_join(dir, "link");
    struct certd_err err = { 0 };
    struct users *u = NULL;

    assert_int_equal(users_load(path, &u, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "does not exist"));
    assert_null(u);

    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs("admin:Administrator:" H_Y "\nbad line\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    err_clear(&err);
    assert_int_equal(users_load(path, &u, &err), -EBADMSG);
    assert_int_equal(err.code, CERTD_E_FIELD_MISSING);
    assert_non_null(strstr(err.msg, ":2:"));
    assert_non_null(strstr(err.msg, path));

    assert_int_equal(symlink(path, link), 0);
    err_clear(&err);
    assert_int_equal(users_load(link, &u, &err), -ELOOP);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_null(u);

    free(link);
    free(path);
    scratch_rm(dir);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void expect_load_forbidden(const char *path, const char *word)
{
    struct certd_err err = { 0 };
    struct users *u = NULL;
    assert_int_equal(users_load(path, &u, &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    if (!strstr(err.msg, word)) {
        fail_msg("expected '%s' in: %s", word, err.msg);
    }
    assert_null(u);
}

/* Like sshd's StrictModes: a file others could write or swap is not trusted. */
static void test_load_trust(void **state)
{
    (void)state;
    char *dir = scratch_dir("users-trust");
    char *path = path_join(dir, "users");
    struct users *u = NULL;

    write_file(path, "admin:Administrator:" H_Y "\n", 0600);
    assert_int_equal(users_load(path, &u, NULL), 0);
    u = users_free(u);
    static const mode_t loose[] = { 0640, 0604, 0660, 0602, 0620, 0610, 0601 };
    for (size_t i = 0; i < ELEMENTSOF(loose); i++) {
        assert_int_equal(chmod(path, loose[i]), 0);
        expect_load_forbidden(path, "chmod 600");
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(users_load(path, &u, NULL), 0);
    u = users_free(u);
    assert_int_equal(chmod(path, 0600), 0);

    /* Owned by root or by us is fine; another uid is not (only root can make that file). */
    if (geteuid() == 0) {
        assert_int_equal(chown(path, 4242, 4242), 0);
        expect_load_forbidden(path, "uid 4242");
        assert_int_equal(chown(path, 0, 0), 0);
    }
    assert_int_equal(users_load(path, &u, NULL), 0);
    u = users_free(u);

    /* Not a regular file: a FIFO (must not hang) and a directory. */
    char *fifo = path_join(dir, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_load_forbidden(fifo, "regular file");
    char *sub = path_join(dir, "sub");
    assert_int_equal(mkdir(sub, 0700), 0);
    expect_load_forbidden(sub, "regular file");

    free(sub);
    free(fifo);
    free(path);
    scratch_rm(dir);
}

/* certctl as root on the service's file: refused instead of taking the file from its owner. */
static void test_save_keeps_owner(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    char *dir = scratch_dir("users-owner");
    char *path = path_join(dir, "users");
    struct certd_err err = { 0 };
    struct users *u = NULL;
    const char *text = "admin:Administrator:" H_Y "\n";

    write_file(path, text, 0600);
    assert_int_equal(users_parse(span_from_str(text), "u", &u, NULL), 0);
    assert_int_equal(chown(path, 4242, 4243), 0);
    assert_int_equal(users_save(u, path, &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_non_null(strstr(err.msg, "keeps its owner"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 4242);
    assert_int_equal(st.st_gid, 4243);
    char *after = tu_file_get(path, NULL);
    assert_non_null(after);
    assert_string_equal(after, text);
    free(after);
    /* Our own file is replaced as before. */
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(users_save(u, path, &err), 0);
    users_free(u);
    free(path);
    scratch_rm(dir);
}

/*
 * The lock refuses what users_save would refuse, before it makes the lock file: run as root on
 * the service's file (or, with no file yet, in its directory) it would leave a root-owned lock
 * file the service cannot open.
 */
static void test_lock_other_owner(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    char *dir = scratch_dir("users-lock-owner");
    char *path = path_join(dir, "users");
    char *lockpath = path_join(dir, "users" USERS_LOCK_SUFFIX);
    struct certd_err err = { 0 };
    struct stat st;
    int fd = -1;

    write_file(path, "admin:Administrator:" H_Y "\n", 0600);
    assert_int_equal(chown(path, 4242, 4242), 0);
    assert_int_equal(users_lock(path, &fd, &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_non_null(strstr(err.msg, "uid 4242: run this as that user (e.g. with sudo -u)"));
    assert_int_equal(fd, -1);
    assert_int_equal(lstat(lockpath, &st), -1);
    assert_int_equal(errno, ENOENT);

    /* no file yet, in a directory of another uid: the same, naming the directory */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(chown(dir, 4242, 4242), 0);
    err_clear(&err);
    assert_int_equal(users_lock(path, &fd, &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_non_null(strstr(err.msg, dir));
    assert_non_null(strstr(err.msg, "sudo -u"));
    assert_int_equal(lstat(lockpath, &st), -1);
    struct users *u = users_new();
    assert_non_null(u);
    err_clear(&err);
    assert_int_equal(users_save(u, path, &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_int_equal(lstat(path, &st), -1);

    /* ours again: locked as before */
    assert_int_equal(chown(dir, 0, 0), 0);
    assert_int_equal(users_lock(path, &fd, &err), 0);
    fd = users_unlock(fd);
    users_free(u);
    free(lockpath);
    free(path);
    scratch_rm(dir);
}

/* The role of name in the file at path. */
static enum user_role role_in_file(const char *path, const char *name)
{
    struct users *u = NULL;
    assert_int_equal(users_load(path, &u, NULL), 0);
    const struct user *e = users_find(u, name);
    assert_non_null(e);
    enum user_role role = e->role;
    users_free(u);
    return role;
}

/*
 * Two writers: a child holds the lock from its load to its save; the parent's change waits for
 * it, and then loads what the child saved, so neither change is lost.
 */
static void test_lock(void **state)
{
    (void)state;
    char *dir = scratch_dir("users-lock");
    char *path = path_join(dir, "users");
    char *lockpath = path_join(dir, "users" USERS_LOCK_SUFFIX);
    struct certd_err err = { 0 };
    int ready[2], go[2];
    char c = 0;

    write_file(path, "admin:Administrator:" H_Y "\nalice:Operator:" H_Y "\nbob:Operator:" H_Y "\n",
               0600);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = -1;
        struct users *u = NULL;
        /* Only the parent's ends stay open elsewhere: if it fails, read() sees EOF. */
        close(ready[0]);
        close(go[1]);
        int ok = users_lock(path, &fd, NULL) == 0 && users_load(path, &u, NULL) == 0 &&
                 write(ready[1], "r", 1) == 1 && read(go[0], &c, 1) == 1 &&
                 users_set_role(u, "alice", USER_ROLE_READONLY, NULL) == 1 &&
                 users_save(u, path, NULL) == 0;
        users_free(u);
        (void)users_unlock(fd);
        free(lockpath); /* valgrind checks the child's heap too */
        free(path);
        free(dir);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(read(ready[0], &c, 1), 1);

    /* The lock is held: a non-blocking attempt on it fails while the child has loaded. */
    int probe = open(lockpath, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    assert_true(probe >= 0);
    assert_int_equal(flock(probe, LOCK_EX | LOCK_NB), -1);
    assert_int_equal(errno, EWOULDBLOCK);
    close(probe);
    assert_int_equal(file_mode(lockpath), 0600);

    /* The parent's change: it waits for the child's save, then sees alice's new role. */
    assert_int_equal(write(go[1], "g", 1), 1);
    int fd = -1;
    assert_int_equal(users_lock(path, &fd, &err), 0);
    assert_true(fd >= 0);
    struct users *u = NULL;
    assert_int_equal(users_load(path, &u, &err), 0);
    assert_int_equal(users_set_role(u, "bob", USER_ROLE_READONLY, &err), 1);
    assert_int_equal(users_save(u, path, &err), 0);
    fd = users_unlock(fd);
    assert_int_equal(fd, -EBADF);
    users_free(u);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(role_in_file(path, "alice"), USER_ROLE_READONLY);
    assert_int_equal(role_in_file(path, "bob"), USER_ROLE_READONLY);

    /* Unlocked again, and the lock file stays. */
    probe = open(lockpath, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    assert_true(probe >= 0);
    assert_int_equal(flock(probe, LOCK_EX | LOCK_NB), 0);
    close(probe);

    /* A lock file that is a symlink is not followed. */
    char *other = path_join(dir, "other");
    char *other_lock = path_join(dir, "other" USERS_LOCK_SUFFIX);
    assert_int_equal(symlink(path, other_lock), 0);
    err_clear(&err);
    fd = -1;
    assert_int_equal(users_lock(other, &fd, &err), -ELOOP);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    assert_non_null(strstr(err.msg, "lock"));
    assert_int_equal(fd, -1);

    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    free(other_lock);
    free(other);
    free(lockpath);
    free(path);
    scratch_rm(dir);
}

/* ---- verification ---- */

static void test_verify(void **state)
{
    (void)state;
    struct users *u = NULL;
    const char *in = "y:Administrator:" H_Y "\nlong:ReadOnly:" H_LONG "\n";
    assert_int_equal(users_parse(span_from_str(in), "u", &u, NULL), 0);
    struct secret *right = pw_new(PW);
    struct secret *wrong = pw_new(PW "!");
    struct secret *prefix = pw_new("correct horse batter");
    /* PW, a NUL, then more: the NUL would cut it to PW in crypt(3); must not match. */
    struct secret *nul = secret_new(PW "\0x", sizeof(PW "\0x") - 1);
    assert_non_null(nul);

    assert_int_equal(users_verify(u, "y", right), 1);
    assert_int_equal(users_verify(u, "y", wrong), 0);
    assert_int_equal(users_verify(u, "y", prefix), 0);
    assert_int_equal(users_verify(u, "y", nul), 0);
    assert_int_equal(users_verify(u, "nobody", right), 0);
    assert_int_equal(users_verify(u, "Y", right), 0);
    assert_int_equal(users_verify(u, "", right), 0);

    /*
     * A password over USERS_PASSWORD_MAX is never hashed, so never matches: not even the hash
     * of exactly that password (129 'Q's). One byte less is an ordinary wrong password.
     */
    char q[USERS_PASSWORD_MAX + 1];
    memset(q, 'Q', sizeof(q));
    struct secret *over = secret_new(q, sizeof(q));
    struct secret *at = secret_new(q, USERS_PASSWORD_MAX);
    assert_non_null(over);
    assert_non_null(at);
    assert_int_equal(users_verify(u, "long", over), 0);
    assert_int_equal(users_verify(u, "long", at), 0);
    assert_int_equal(users_verify(u, "nobody", over), 0);

    secret_free(at);
    secret_free(over);
    secret_free(nul);
    secret_free(prefix);
    secret_free(wrong);
    secret_free(right);
    users_free(u);
}

/* ---- the password policy ---- */

static void expect_refused(const char *pw, size_t len, int r, enum certd_errc code,
                           const char *word)
{
    struct certd_err err = { 0 };
    struct secret *s = secret_new(pw, len);
    assert_non_null(s);
    assert_int_equal(users_check_password(s, &err), r);
    assert_int_equal(err.code, code);
    assert_non_null(strstr(err.msg, word));
    /* The message never holds the password, nor a recognisable piece of it. */
    if (len >= 6) {
        char piece[7];
        memcpy(piece, pw, 6);
        piece[6] = '\0';
        assert_null(strstr(err.msg, piece));
    }
    secret_free(s);
}

static void test_password_policy(void **state)
{
    (void)state;
    char buf[USERS_PASSWORD_MAX + 2];
    memset(buf, 'Q', sizeof(buf));

    /* 11 and 12 bytes, 128 and 129 bytes. */
    expect_refused(buf, USERS_PASSWORD_MIN - 1, -EINVAL, CERTD_E_FIELD_INVALID, "at least 12");
    struct secret *s = secret_new(buf, USERS_PASSWORD_MIN);
    assert_int_equal(users_check_password(s, NULL), 0);
    secret_free(s);
    s = secret_new(buf, USERS_PASSWORD_MAX);
    assert_int_equal(users_check_password(s, NULL), 0);
    secret_free(s);
    expect_refused(buf, USERS_PASSWORD_MAX + 1, -E2BIG, CERTD_E_FIELD_TOO_LONG, "at most 128");
    expect_refused("", 0, -EINVAL, CERTD_E_FIELD_INVALID, "at least");

    /* UTF-8: multibyte is fine; broken, overlong and surrogate sequences are not. */
    static const char *const good[] = {
        "p\xc3\xa4ssw\xc3\xb6rd-long",                      /* ä ö */
        "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", /* €€€€ */
        "\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91", /* 🔑🔑🔑 */
        "with spaces and ~!@#$%^&*()",
    };
    for (size_t i = 0; i < ELEMENTSOF(good); i++) {
        s = pw_new(good[i]);
        assert_int_equal(users_check_password(s, NULL), 0);
        secret_free(s);
    }
    static const char *const bad_utf8[] = {
        "Secret-pass\xc3",              /* truncated */
        "Secret-pass\xc0\xafxx",        /* overlong '/' */
        "Secret-pass\xe0\x80\xafx",     /* overlong, 3 bytes */
        "Secret-pass\xed\xa0\x80x",     /* surrogate U+D800 */
        "Secret-pass\xf4\x90\x80\x80x", /* above U+10FFFF */
        "Secret-pass\xffxx",            /* not UTF-8 at all */
        "Secret-pass\x80xx",            /* lone continuation byte */
    };
    for (size_t i = 0; i < ELEMENTSOF(bad_utf8); i++) {
        expect_refused(bad_utf8[i], strlen(bad_utf8[i]), -EINVAL, CERTD_E_FIELD_INVALID, "UTF-8");
    }
    static const char *const controls[] = {
        "Secret-pass\tword",   "Secret-pass\nword",       "Secret-pass\rword", "Secret-pass\x1b[0m",
        "Secret-pass\x7fword", "Secret-pass\xc2\x85word", /* U+0085 NEL (C1) */
    };
    for (size_t i = 0; i < ELEMENTSOF(controls); i++) {
        expect_refused(controls[i], strlen(controls[i]), -EINVAL, CERTD_E_FIELD_INVALID, "control");
    }
    expect_refused("Secret-pass\0word", sizeof("Secret-pass\0word") - 1, -EINVAL,
                   CERTD_E_FIELD_INVALID, "control");
}

static void test_names(void **state)
{
    (void)state;
    static const char *const good[] = { "a",        "_",    "admin",
                                        "a.b-c_d9", "_svc", "abcdefghijklmnopqrstuvwxyz012345" };
    static const char *const bad[] = { "",    "Admin", "9a",  ".a",      "-a",
                                       "a b", "a:b",   "a/b", "\xc3\xa9" };
    for (size_t i = 0; i < ELEMENTSOF(good); i++) {
        assert_int_equal(users_check_name(good[i], NULL), 0);
    }
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        struct certd_err err = { 0 };
        assert_int_equal(users_check_name(bad[i], &err), -EINVAL);
        assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
        assert_non_null(strstr(err.msg, "user name"));
    }
    struct certd_err err = { 0 };
    assert_int_equal(users_check_name("abcdefghijklmnopqrstuvwxyz0123456", &err), -E2BIG);
    assert_int_equal(err.code, CERTD_E_FIELD_TOO_LONG);

    enum user_role role;
    assert_int_equal(user_role_from_name("ReadOnly", &role), 0);
    assert_int_equal(role, USER_ROLE_READONLY);
    assert_int_equal(user_role_from_name("readonly", &role), -EINVAL);
    assert_string_equal(user_role_name(USER_ROLE_OPERATOR), "Operator");
    assert_null(user_role_name(USER_ROLE_MAX));
}

/* ---- changes, saved and loaded ---- */

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = scratch_dir("users-rt");
    char *path = path_join(dir, "users");
    struct certd_err err = { 0 };
    struct secret *pw_a = pw_new("first password 1");
    struct secret *pw_b = pw_new("second password 2");
    struct secret *pw_c = pw_new("third password 3");

    struct users *u = users_new();
    assert_non_null(u);
    assert_int_equal(users_add(u, "admin", USER_ROLE_ADMINISTRATOR, pw_a, &err), 0);
    assert_int_equal(users_add(u, "bob", USER_ROLE_OPERATOR, pw_b, &err), 0);
    assert_int_equal(strncmp(users_find(u, "bob")->hash, "$y$", 3), 0);

    /* Refusals leave the set as it was. */
    assert_int_equal(users_add(u, "bob", USER_ROLE_READONLY, pw_c, &err), -EEXIST);
    assert_int_equal(err.code, CERTD_E_DUPLICATE);
    assert_non_null(strstr(err.msg, "exists"));
    err_clear(&err);
    assert_int_equal(users_add(u, "Bad", USER_ROLE_READONLY, pw_c, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    err_clear(&err);
    assert_int_equal(users_add(u, "carol", USER_ROLE_MAX, pw_c, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_non_null(strstr(err.msg, "role"));
    err_clear(&err);
    struct secret *weak = pw_new("short-pw");
    assert_int_equal(users_add(u, "carol", USER_ROLE_READONLY, weak, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_null(strstr(err.msg, "short-pw"));
    err_clear(&err);
    assert_int_equal(users_set_password(u, "bob", weak, &err), -EINVAL);
    assert_int_equal(err.code, CERTD_E_FIELD_INVALID);
    assert_null(strstr(err.msg, "short-pw"));
    secret_free(weak);
    assert_int_equal(u->n, 2);

    assert_int_equal(users_save(u, path, &err), 0);
    assert_int_equal(file_mode(path), 0600);
    u = users_free(u);

    /* Load, change the password and the role, save, load again. */
    assert_int_equal(users_load(path, &u, &err), 0);
    assert_int_equal(u->n, 2);
    assert_int_equal(users_verify(u, "admin", pw_a), 1);
    assert_int_equal(users_verify(u, "bob", pw_b), 1);
    assert_int_equal(users_verify(u, "bob", pw_a), 0);
    assert_int_equal(users_set_password(u, "bob", pw_c, &err), 0);
    assert_int_equal(users_set_role(u, "bob", USER_ROLE_READONLY, &err), 1);
    assert_int_equal(users_set_role(u, "bob", USER_ROLE_READONLY, &err), 0);
    err_clear(&err);
    assert_int_equal(users_set_password(u, "nobody", pw_c, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(users_set_role(u, "nobody", USER_ROLE_READONLY, &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(users_del(u, "nobody", &err), -ENOENT);
    assert_int_equal(err.code, CERTD_E_NOT_FOUND);
    assert_non_null(strstr(err.msg, "nobody"));
    /* The file is replaced, not widened: even a 0644 file comes back 0600. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(users_save(u, path, &err), 0);
    assert_int_equal(file_mode(path), 0600);
    u = users_free(u);

    assert_int_equal(users_load(path, &u, &err), 0);
    assert_int_equal(users_verify(u, "bob", pw_c), 1);
    assert_int_equal(users_verify(u, "bob", pw_b), 0);
    assert_int_equal(users_find(u, "bob")->role, USER_ROLE_READONLY);
    assert_int_equal(users_del(u, "bob", &err), 0);
    assert_null(users_find(u, "bob"));
    assert_int_equal(users_save(u, path, &err), 0);
    u = users_free(u);

    assert_int_equal(users_load(path, &u, &err), 0);
    assert_int_equal(u->n, 1);
    assert_string_equal(u->v[0].name, "admin");
    char *text = tu_file_get(path, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "admin:Administrator:$y$"));
    assert_null(strstr(text, "bob"));
    free(text);
    u = users_free(u);

    secret_free(pw_c);
    secret_free(pw_b);
    secret_free(pw_a);
    free(path);
    scratch_rm(dir);
}

static void test_last_admin(void **state)
{
    (void)state;
    struct certd_err err = { 0 };
    struct users *u = NULL;
    const char *in = "root:Administrator:" H_Y "\nop:Operator:" H_Y "\n";
    assert_int_equal(users_parse(span_from_str(in), "u", &u, NULL), 0);

    assert_int_equal(users_del(u, "root", &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_non_null(strstr(err.msg, "last Administrator"));
    err_clear(&err);
    assert_int_equal(users_set_role(u, "root", USER_ROLE_OPERATOR, &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    assert_non_null(strstr(err.msg, "last Administrator"));
    assert_int_equal(users_find(u, "root")->role, USER_ROLE_ADMINISTRATOR);
    assert_int_equal(u->n, 2);

    /* With a second Administrator either may go; then the other is the last one. */
    assert_int_equal(users_set_role(u, "op", USER_ROLE_ADMINISTRATOR, &err), 1);
    assert_int_equal(users_set_role(u, "root", USER_ROLE_READONLY, &err), 1);
    assert_int_equal(users_set_role(u, "root", USER_ROLE_ADMINISTRATOR, &err), 1);
    assert_int_equal(users_del(u, "root", &err), 0);
    err_clear(&err);
    assert_int_equal(users_del(u, "op", &err), -EPERM);
    assert_int_equal(err.code, CERTD_E_POLICY_FORBIDS);
    /* Others may always be deleted, down to none but the Administrator. */
    users_free(u);
    assert_int_equal(users_parse(span_from_str(in), "u", &u, NULL), 0);
    assert_int_equal(users_del(u, "op", &err), 0);
    assert_int_equal(u->n, 1);
    users_free(u);
}

/* ---- the initial administrator ---- */

static void test_bootstrap(void **state)
{
    (void)state;
    char *dir = scratch_dir("users-boot");
    char *users = path_join(dir, "users");
    char *pwfile = path_join(dir, "initial-admin-password");
    struct certd_err err = { 0 };
    struct secret *pw = NULL;

    assert_int_equal(users_bootstrap(users, pwfile, &pw, &err), 0);
    assert_non_null(pw);
    assert_true(pw->len >= 22);
    for (size_t i = 0; i < pw->len; i++) {
        char c = (char)pw->p[i];
        assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_');
    }
    assert_int_equal(file_mode(users), 0600);
    assert_int_equal(file_mode(pwfile), 0600);
    char *text = tu_file_get(pwfile, NULL);
    assert_non_null(text);
    assert_int_equal(strlen(text), pw->len + 1);
    assert_memory_equal(text, pw->p, pw->len);
    assert_int_equal(text[pw->len], '\n');
    free(text);

    struct users *u = NULL;
    assert_int_equal(users_load(users, &u, &err), 0);
    assert_int_equal(u->n, 1);
    assert_string_equal(u->v[0].name, "admin");
    assert_int_equal(u->v[0].role, USER_ROLE_ADMINISTRATOR);
    assert_int_equal(users_verify(u, "admin", pw), 1);
    u = users_free(u);
    char *before = tu_file_get(users, NULL);
    assert_non_null(before);

    /* The second time, nothing is done: not even the password file is touched. */
    assert_int_equal(unlink(pwfile), 0);
    struct secret *again = pw_new("placeholder");
    struct secret *keep = again;
    assert_int_equal(users_bootstrap(users, pwfile, &again, &err), 0);
    assert_null(again);
    secret_free(keep);
    assert_int_equal(access(pwfile, F_OK), -1);
    char *after = tu_file_get(users, NULL);
    assert_non_null(after);
    assert_string_equal(before, after);
    free(after);
    free(before);

    /* Two bootstraps make two different passwords. */
    char *users2 = path_join(dir, "users2");
    struct secret *pw2 = NULL;
    assert_int_equal(users_bootstrap(users2, pwfile, &pw2, &err), 0);
    assert_non_null(pw2);
    assert_false(pw2->len == pw->len && memcmp(pw2->p, pw->p, pw->len) == 0);

    /* A directory that does not exist: a storage failure, and no password handed out. */
    char *nodir = path_join(dir, "missing/users");
    char *nodir_pw = path_join(dir, "missing/pw");
    struct secret *pw3 = NULL;
    err_clear(&err);
    assert_true(users_bootstrap(nodir, nodir_pw, &pw3, &err) < 0);
    assert_int_equal(err.code, CERTD_E_STORAGE);
    assert_null(pw3);

    free(nodir_pw);
    free(nodir);
    secret_free(pw2);
    free(users2);
    secret_free(pw);
    free(pwfile);
    free(users);
    scratch_rm(dir);
}

/*
 * A users file made while a bootstrap waits for the lock is kept as it is, and no password
 * file is left: the bootstrap looks again under the lock and never replaces a file.
 */
static void test_bootstrap_race(void **state)
{
    (void)state;
    char *dir = scratch_dir("users-boot-race");
    char *users = path_join(dir, "users");
    char *pwfile = path_join(dir, "initial-admin-password");
    const char *text = "admin:Administrator:" H_Y "\n";
    struct certd_err err = { 0 };
    int started[2];
    char c = 0;

    int fd = -1;
    assert_int_equal(users_lock(users, &fd, &err), 0);
    assert_int_equal(pipe(started), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct secret *pw = NULL;
        (void)users_unlock(fd); /* the parent's descriptor; the lock stays the parent's */
        int ok =
            write(started[1], "s", 1) == 1 && users_bootstrap(users, pwfile, &pw, NULL) == 0 && !pw;
        secret_free(pw);
        free(pwfile); /* valgrind checks the child's heap too */
        free(users);
        free(dir);
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(read(started[0], &c, 1), 1);
    /* Another writer makes the file while the bootstrap is (about to be) waiting. */
    write_file(users, text, 0600);
    fd = users_unlock(fd);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char *after = tu_file_get(users, NULL);
    assert_non_null(after);
    assert_string_equal(after, text);
    free(after);
    assert_int_equal(access(pwfile, F_OK), -1);

    close(started[0]);
    close(started[1]);
    free(pwfile);
    free(users);
    scratch_rm(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_password_policy),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_last_admin),
        cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_load_trust),
        cmocka_unit_test(test_save_keeps_owner),
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_bootstrap_race),
        cmocka_unit_test(test_lock_other_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
