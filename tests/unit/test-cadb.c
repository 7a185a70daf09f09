/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cadb/: the CA issuance log on real SQLite files in scratch directories. File modes whatever
 * the umask, reopening, all-or-none batches, ordering, revocation, CRL numbers across reopen,
 * files that are not ours (checked to be left untouched), records damaged behind our back,
 * serial spellings, 10 000 records, two handles and two processes on one file, a writer held
 * off past the busy timeout, and a write failure in the middle of a batch. Independent checks
 * go through SQLite's own API, never through the code under test.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "cadb/cadb.h"
#include "testutil.h"

/* ---- helpers ---- */

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static struct cadb_cert *rec_new(const char *serial, int64_t issued_at)
{
    struct cadb_cert *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_true(strlen(serial) < sizeof(c->serial));
    memcpy(c->serial, serial, strlen(serial) + 1);
    assert_true(asprintf(&c->subject, "CN=console-%s,O=Example", serial) > 0);
    c->sans = strdup("DNS:console.example, IP Address:192.0.2.1");
    c->requester = strdup("admin");
    assert_true(asprintf(&c->pem,
                         "-----BEGIN CERTIFICATE-----\nMIIB%s\n-----END CERTIFICATE-----\n",
                         serial) > 0);
    assert_non_null(c->sans);
    assert_non_null(c->requester);
    c->not_before = issued_at;
    c->not_after = issued_at + 365 * 86400;
    c->issued_at = issued_at;
    c->status = CADB_REVOKED; /* cadb_add must ignore it */
    c->reason = 4;
    return c;
}

static void rec_free(struct cadb_cert *c)
{
    if (c) {
        free(c->subject);
        free(c->sans);
        free(c->requester);
        free(c->pem);
        free(c);
    }
}

static void recs_free(struct cadb_cert **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rec_free(v[i]);
    }
}

static int add(struct cadb *db, struct cadb_cert **v, size_t n, struct certd_err *err)
{
    return cadb_add(db, (const struct cadb_cert *const *)v, n, err);
}

static uint64_t count(struct cadb *db)
{
    uint64_t n = 0;
    assert_int_equal(cadb_count(db, &n), 0);
    return n;
}

static void assert_err(int r, int expect, const struct certd_err *err, enum certd_errc code,
                       const char *word)
{
    assert_int_equal(r, expect);
    assert_int_equal(err->code, code);
    if (!strstr(err->msg, word)) {
        fail_msg("message \"%s\" lacks \"%s\"", err->msg, word);
    }
}

/* SQLite directly, for what the module under test must not be trusted to report. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(raw, 10000), SQLITE_OK);
    return raw;
}

static void raw_exec(sqlite3 *raw, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(raw, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg ? msg : "?");
    }
}

static int64_t raw_int(sqlite3 *raw, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *raw_text(sqlite3 *raw, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    char *v = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    assert_non_null(v);
    return v;
}

/* A fresh log in a fresh scratch directory. */
struct env {
    char *dir, *path;
    struct cadb *db;
};

static void env_open(struct env *e, const char *tag)
{
    struct certd_err err = { 0 };
    e->dir = scratch_dir(tag);
    e->path = path_join(e->dir, "ca.db");
    assert_int_equal(cadb_open(e->path, &e->db, &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);
}

static void env_reopen(struct env *e)
{
    struct certd_err err = { 0 };
    e->db = cadb_close(e->db);
    assert_null(e->db);
    assert_int_equal(cadb_open(e->path, &e->db, &err), 0);
}

static void env_done(struct env *e)
{
    e->db = cadb_close(e->db);
    free(e->path);
    scratch_rm(e->dir);
}

/* ---- open and create ---- */

static void check_modes_with_umask(mode_t mask)
{
    struct env e = { 0 };
    mode_t old = umask(mask);
    env_open(&e, "cadb-mode");
    umask(old);

    char *wal = path_join(e.dir, "ca.db-wal"), *shm = path_join(e.dir, "ca.db-shm");
    struct cadb_cert *c = rec_new("1", 100);
    old = umask(mask);
    assert_int_equal(add(e.db, &c, 1, NULL), 0);
    umask(old);
    assert_int_equal(file_mode(e.path), 0600);
    assert_true(file_exists(wal));
    assert_true(file_exists(shm));
    assert_int_equal(file_mode(wal), 0600);
    assert_int_equal(file_mode(shm), 0600);

    /* The header and the mode, as SQLite itself reads them. */
    sqlite3 *raw = raw_open(e.path);
    assert_int_equal(raw_int(raw, "PRAGMA application_id"), CADB_APPLICATION_ID);
    assert_int_equal(raw_int(raw, "PRAGMA user_version"), CADB_SCHEMA_VERSION);
    char *jm = raw_text(raw, "PRAGMA journal_mode");
    assert_string_equal(jm, "wal");
    free(jm);
    assert_int_equal(raw_int(raw, "SELECT value FROM meta WHERE key = 'schema_version'"),
                     CADB_SCHEMA_VERSION);
    assert_int_equal(raw_int(raw, "SELECT count(*) FROM certs WHERE serial = '1'"), 1);
    sqlite3_close(raw);

    rec_free(c);
    free(wal);
    free(shm);
    env_done(&e);
}

static void test_open_modes(void **state)
{
    (void)state;
    check_modes_with_umask(0);    /* nothing taken away: the mode must be narrowed by us */
    check_modes_with_umask(0277); /* the owner's write bit taken away: set back exactly */
}

static void test_open_rejects_files(void **state)
{
    (void)state;
    char *dir = scratch_dir("cadb-files");
    struct cadb *db = NULL;
    struct certd_err err = { 0 };

    /* A directory. */
    char *sub = path_join(dir, "adir");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_err(cadb_open(sub, &db, &err), -EISDIR, &err, CERTD_E_STORAGE, "adir");
    assert_null(db);

    /* A symbolic link to a good log: refused, the target untouched. */
    char *real = path_join(dir, "real.db"), *link = path_join(dir, "link.db");
    assert_int_equal(cadb_open(real, &db, NULL), 0);
    db = cadb_close(db);
    assert_int_equal(symlink(real, link), 0);
    err = (struct certd_err){ 0 };
    assert_err(cadb_open(link, &db, &err), -ELOOP, &err, CERTD_E_STORAGE, "symbolic link");
    assert_null(db);

    /* A FIFO: would block a reader, and is no database. */
    char *fifo = path_join(dir, "fifo.db");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    err = (struct certd_err){ 0 };
    assert_err(cadb_open(fifo, &db, &err), -EINVAL, &err, CERTD_E_STORAGE, "regular file");

    /* A missing directory. */
    char *missing = path_join(dir, "nodir/ca.db");
    err = (struct certd_err){ 0 };
    assert_err(cadb_open(missing, &db, &err), -ENOENT, &err, CERTD_E_STORAGE, "cannot create");
    assert_null(db);

    assert_int_equal(cadb_open(NULL, &db, NULL), -EINVAL);
    assert_int_equal(cadb_open("", &db, NULL), -EINVAL);

    free(sub);
    free(real);
    free(link);
    free(fifo);
    free(missing);
    scratch_rm(dir);
}

static void test_refuse_not_sqlite(void **state)
{
    (void)state;
    char *dir = scratch_dir("cadb-notdb");
    char *path = path_join(dir, "ca.db");
    static const char junk[] = "this is not a database, it is a shopping list: eggs, milk, "
                               "bread, and enough bytes to fill a header...................";
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    assert_int_equal(close(fd), 0);

    struct cadb *db = NULL;
    struct certd_err err = { 0 };
    assert_err(cadb_open(path, &db, &err), -EPROTO, &err, CERTD_E_STORAGE,
               "not an SQLite database");
    assert_non_null(strstr(err.msg, "ca.db"));
    assert_null(db);

    /* Left as it was. */
    char buf[sizeof(junk) + 16];
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(junk));
    assert_int_equal(close(fd), 0);
    assert_memory_equal(buf, junk, sizeof(junk));

    free(path);
    scratch_rm(dir);
}

/* Another program's database, with application_id app_id (0: none): refused and unchanged. */
static void check_foreign(uint32_t app_id)
{
    char *dir = scratch_dir("cadb-foreign");
    char *path = path_join(dir, "other.db");
    char *wal = path_join(dir, "other.db-wal");
    char sql[128];

    sqlite3 *raw = raw_open(path);
    raw_exec(raw, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')");
    assert_true(snprintf(sql, sizeof(sql), "PRAGMA application_id = %u", app_id) > 0);
    raw_exec(raw, sql);
    sqlite3_close(raw);

    struct cadb *db = NULL;
    struct certd_err err = { 0 };
    assert_err(cadb_open(path, &db, &err), -EPROTO, &err, CERTD_E_STORAGE, "another application");
    assert_non_null(strstr(err.msg, "other.db"));
    assert_null(db);

    /* Not even switched to WAL. */
    assert_false(file_exists(wal));
    raw = raw_open(path);
    char *jm = raw_text(raw, "PRAGMA journal_mode");
    assert_string_equal(jm, "delete");
    free(jm);
    assert_int_equal(raw_int(raw, "SELECT count(*) FROM notes"), 1);
    assert_int_equal(raw_int(raw, "SELECT count(*) FROM sqlite_master"), 1);
    sqlite3_close(raw);

    free(path);
    free(wal);
    scratch_rm(dir);
}

static void test_refuse_foreign(void **state)
{
    (void)state;
    check_foreign(0);
    check_foreign(42);
    check_foreign(CADB_APPLICATION_ID + 1u);
}

static void test_refuse_newer(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-newer");
    e.db = cadb_close(e.db);

    sqlite3 *raw = raw_open(e.path);
    raw_exec(raw, "PRAGMA user_version = 2");
    sqlite3_close(raw);

    struct certd_err err = { 0 };
    assert_err(cadb_open(e.path, &e.db, &err), -EPROTO, &err, CERTD_E_STORAGE,
               "made by a newer certd");
    assert_non_null(strstr(err.msg, "ca.db"));
    assert_null(e.db);

    /* Our id but the meta table gone: damage, said as such. */
    raw = raw_open(e.path);
    raw_exec(raw, "PRAGMA user_version = 1; DROP TABLE meta");
    sqlite3_close(raw);
    err = (struct certd_err){ 0 };
    assert_err(cadb_open(e.path, &e.db, &err), -EPROTO, &err, CERTD_E_STORAGE, "no meta table");
    env_done(&e);
}

/* An empty file (as a crash right after creating it would leave) becomes a log. */
static void test_open_empty_file(void **state)
{
    (void)state;
    char *dir = scratch_dir("cadb-empty");
    char *path = path_join(dir, "ca.db");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(close(fd), 0);

    struct cadb *db = NULL;
    assert_int_equal(cadb_open(path, &db, NULL), 0);
    assert_int_equal(count(db), 0);
    db = cadb_close(db);
    free(path);
    scratch_rm(dir);
}

/* ---- adding ---- */

static void test_add_get_reopen(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-add");
    struct certd_err err = { 0 };

    assert_int_equal(count(e.db), 0);
    assert_int_equal(add(e.db, NULL, 0, &err), 0);

    struct cadb_cert *one = rec_new("1A2B", 1000);
    assert_int_equal(add(e.db, &one, 1, &err), 0);
    assert_int_equal(count(e.db), 1);

    struct cadb_cert *batch[3] = { rec_new("FF", 2000), rec_new("100", 2000),
                                   rec_new("ABCDEF0123456789ABCDEF0123456789ABCDEF01", 1500) };
    free(batch[1]->requester);
    batch[1]->requester = NULL; /* NULL: stored as "" */
    free(batch[1]->sans);
    batch[1]->sans = NULL;
    assert_int_equal(add(e.db, batch, 3, &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);
    assert_int_equal(count(e.db), 4);

    env_reopen(&e);
    assert_int_equal(count(e.db), 4);
    assert_int_equal(cadb_has_serial(e.db, "1A2B"), 1);
    assert_int_equal(cadb_has_serial(e.db, "1a:2b"), 1);
    assert_int_equal(cadb_has_serial(e.db, "001A2B"), 1);
    assert_int_equal(cadb_has_serial(e.db, "1A2C"), 0);
    assert_int_equal(cadb_has_serial(e.db, "xyz"), -EINVAL);

    struct cadb_cert *got = NULL;
    assert_int_equal(cadb_get(e.db, "1a2b", &got), 0);
    assert_string_equal(got->serial, "1A2B");
    assert_string_equal(got->subject, one->subject);
    assert_string_equal(got->sans, one->sans);
    assert_string_equal(got->requester, "admin");
    assert_string_equal(got->pem, one->pem);
    assert_int_equal(got->not_before, 1000);
    assert_int_equal(got->not_after, 1000 + 365 * 86400);
    assert_int_equal(got->issued_at, 1000);
    assert_int_equal(got->status, CADB_VALID); /* whatever the record said */
    cadb_cert_free(got);
    got = NULL;

    assert_int_equal(cadb_get(e.db, "100", &got), 0);
    assert_string_equal(got->requester, "");
    assert_string_equal(got->sans, "");
    cadb_cert_free(got);
    got = NULL;

    assert_int_equal(cadb_get(e.db, "1A2C", &got), -ENOENT);
    assert_int_equal(cadb_get(e.db, "", &got), -EINVAL);
    assert_null(got);

    rec_free(one);
    recs_free(batch, 3);
    env_done(&e);
}

static void test_duplicates_all_or_none(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-dup");
    struct certd_err err = { 0 };

    struct cadb_cert *a = rec_new("A1", 10);
    assert_int_equal(add(e.db, &a, 1, &err), 0);

    /* Already in the log: B and C before and after it must not stay. */
    struct cadb_cert *b1[3] = { rec_new("B1", 11), rec_new("A1", 12), rec_new("C1", 13) };
    assert_err(add(e.db, b1, 3, &err), -EEXIST, &err, CERTD_E_DUPLICATE, "A1 is already in");
    assert_int_equal(count(e.db), 1);
    assert_int_equal(cadb_has_serial(e.db, "B1"), 0);
    assert_int_equal(cadb_has_serial(e.db, "C1"), 0);

    /* Twice in one batch. */
    struct cadb_cert *b2[4] = { rec_new("D1", 11), rec_new("E1", 12), rec_new("F1", 12),
                                rec_new("E1", 13) };
    err = (struct certd_err){ 0 };
    assert_err(add(e.db, b2, 4, &err), -EEXIST, &err, CERTD_E_DUPLICATE, "E1 appears twice");
    assert_int_equal(count(e.db), 1);
    assert_int_equal(cadb_has_serial(e.db, "D1"), 0);

    /* The log is still usable, and survives a reopen unchanged. */
    assert_int_equal(add(e.db, b2, 3, &err), 0);
    env_reopen(&e);
    assert_int_equal(count(e.db), 4);

    rec_free(a);
    recs_free(b1, 3);
    recs_free(b2, 4);
    env_done(&e);
}

static char *big_string(size_t len)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, 'x', len);
    s[len] = '\0';
    return s;
}

/* Each field at its limit is taken, one byte more is refused; a bad record spoils the batch. */
static void test_add_rejects(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-reject");

    enum field { F_SUBJECT, F_SANS, F_REQUESTER, F_PEM };
    static const struct {
        enum field f;
        const char *word;
        size_t max;
    } fields[] = {
        { F_SUBJECT, "subject", CADB_TEXT_MAX },
        { F_SANS, "alternative names", CADB_TEXT_MAX },
        { F_REQUESTER, "requester", CADB_TEXT_MAX },
        { F_PEM, "certificate", CADB_PEM_MAX },
    };
    unsigned serial = 0x100;

    for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
        for (size_t extra = 0; extra <= 1; extra++) {
            char s0[16], s[16];
            assert_true(snprintf(s0, sizeof(s0), "%X", serial++) > 0);
            assert_true(snprintf(s, sizeof(s), "%X", serial++) > 0);
            struct cadb_cert *v[2] = { rec_new(s0, 1), rec_new(s, 2) };
            size_t max = fields[i].max;
            char **slot = fields[i].f == F_SUBJECT     ? &v[1]->subject
                          : fields[i].f == F_SANS      ? &v[1]->sans
                          : fields[i].f == F_REQUESTER ? &v[1]->requester
                                                       : &v[1]->pem;
            free(*slot);
            *slot = big_string(max + extra);
            struct certd_err err = { 0 };
            uint64_t before = count(e.db);
            int r = add(e.db, v, 2, &err);
            if (extra == 0) {
                assert_int_equal(r, 0);
                assert_int_equal(count(e.db), before + 2);
                struct cadb_cert *got = NULL;
                assert_int_equal(cadb_get(e.db, s, &got), 0);
                assert_int_equal(strlen(fields[i].f == F_SUBJECT     ? got->subject
                                        : fields[i].f == F_SANS      ? got->sans
                                        : fields[i].f == F_REQUESTER ? got->requester
                                                                     : got->pem),
                                 max);
                cadb_cert_free(got);
            } else {
                assert_err(r, -E2BIG, &err, CERTD_E_INPUT_TOO_LARGE, fields[i].word);
                assert_non_null(strstr(err.msg, s));
                assert_null(strstr(err.msg, "xxxx")); /* never the data */
                assert_int_equal(count(e.db), before);
            }
            recs_free(v, 2);
        }
    }

    /* Serials the log does not spell that way, and missing parts. */
    static const char *const bad_serials[] = {
        "", "0A", "ab", "12G", "1:2", "-1", "ABCDEF0123456789ABCDEF0123456789ABCDEF012"
    };
    for (size_t i = 0; i < ELEMENTSOF(bad_serials); i++) {
        struct cadb_cert *v[2] = { rec_new("C0FFEE", 1), rec_new("1", 2) };
        memset(v[1]->serial, 0, sizeof(v[1]->serial));
        memcpy(v[1]->serial, bad_serials[i], strnlen(bad_serials[i], sizeof(v[1]->serial) - 1));
        if (strlen(bad_serials[i]) >= sizeof(v[1]->serial)) {
            memset(v[1]->serial, 'A', sizeof(v[1]->serial)); /* no NUL at all */
        }
        struct certd_err err = { 0 };
        uint64_t before = count(e.db);
        assert_err(add(e.db, v, 2, &err), -EINVAL, &err, CERTD_E_FIELD_INVALID, "record 1");
        assert_non_null(strstr(err.msg, "serial"));
        assert_int_equal(count(e.db), before);
        recs_free(v, 2);
    }

    struct cadb_cert *c = rec_new("D00D", 1);
    free(c->subject);
    c->subject = NULL;
    struct certd_err err = { 0 };
    assert_err(add(e.db, &c, 1, &err), -EINVAL, &err, CERTD_E_FIELD_MISSING, "missing");
    c->subject = strdup("CN=x");
    c->pem[0] = '\0';
    err = (struct certd_err){ 0 };
    assert_err(add(e.db, &c, 1, &err), -EINVAL, &err, CERTD_E_FIELD_MISSING, "certificate");
    struct cadb_cert *nul[2] = { c, NULL };
    err = (struct certd_err){ 0 };
    assert_err(add(e.db, nul, 2, &err), -EINVAL, &err, CERTD_E_FIELD_MISSING, "record");
    rec_free(c);

    /* Too many in one batch: refused before anything is read from the array. */
    err = (struct certd_err){ 0 };
    struct cadb_cert **many = calloc(CADB_BATCH_MAX + 1, sizeof(*many));
    assert_non_null(many);
    assert_err(add(e.db, many, CADB_BATCH_MAX + 1, &err), -E2BIG, &err, CERTD_E_TOO_MANY_VALUES,
               "batch");
    free(many);
    assert_int_equal(cadb_add(e.db, NULL, 1, NULL), -EINVAL);
    env_done(&e);
}

/* ---- reading in order ---- */

struct walk {
    char serials[16][CADB_SERIAL_MAX];
    size_t n;
    int stop_after; /* > 0: return -ECANCELED after this many */
    struct cadb *other;
    struct cadb_cert *to_add;
    int add_result;
};

static int walk_fn(const struct cadb_cert *c, void *arg)
{
    struct walk *w = arg;
    assert_true(w->n < ELEMENTSOF(w->serials));
    memcpy(w->serials[w->n++], c->serial, CADB_SERIAL_MAX);
    if (w->to_add) {
        /* Another handle writes while this one reads. */
        w->add_result = add(w->other, &w->to_add, 1, NULL);
        w->to_add = NULL;
    }
    if (w->stop_after > 0 && (int)w->n == w->stop_after) {
        return -ECANCELED;
    }
    return 0;
}

static void test_each_order_and_revoke(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-each");
    struct certd_err err = { 0 };

    /* issued_at out of order, with ties broken by serial. */
    struct cadb_cert *v[5] = { rec_new("30", 300), rec_new("B", 100), rec_new("A", 100),
                               rec_new("10", 200), rec_new("5", 50) };
    assert_int_equal(add(e.db, v, 5, &err), 0);

    struct walk w = { 0 };
    assert_int_equal(cadb_each(e.db, CADB_ALL, walk_fn, &w), 0);
    static const char *const order[] = { "5", "A", "B", "10", "30" };
    assert_int_equal(w.n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(w.serials[i], order[i]);
    }

    w = (struct walk){ .stop_after = 2 };
    assert_int_equal(cadb_each(e.db, CADB_ALL, walk_fn, &w), -ECANCELED);
    assert_int_equal(w.n, 2);

    w = (struct walk){ 0 };
    assert_int_equal(cadb_each(e.db, CADB_ONLY_REVOKED, walk_fn, &w), 0);
    assert_int_equal(w.n, 0);

    /* Revocation: errors first. */
    err = (struct certd_err){ 0 };
    assert_err(cadb_revoke(e.db, "DEAD", 1, 500, &err), -ENOENT, &err, CERTD_E_NOT_FOUND,
               "DEAD is not in");
    static const int bad_reasons[] = { -1, 7, 8, 11, 255 };
    for (size_t i = 0; i < ELEMENTSOF(bad_reasons); i++) {
        err = (struct certd_err){ 0 };
        assert_err(cadb_revoke(e.db, "A", bad_reasons[i], 500, &err), -EINVAL, &err,
                   CERTD_E_FIELD_INVALID, "reason");
        assert_string_equal(err.field, "RevocationReason");
    }
    err = (struct certd_err){ 0 };
    assert_err(cadb_revoke(e.db, "not-hex", 1, 500, &err), -EINVAL, &err, CERTD_E_FIELD_INVALID,
               "serial");

    err = (struct certd_err){ 0 };
    assert_err(cadb_revoke(e.db, "0:05", 1, 500, &err), -EINVAL, &err, CERTD_E_FIELD_INVALID,
               "serial");
    assert_string_equal(err.field, "SerialNumber");

    /* Revoked at 300, 100, 200: listed by revocation time. */
    err = (struct certd_err){ 0 };
    assert_int_equal(cadb_revoke(e.db, "30", CADB_REASON_KEY_COMPROMISE, 3000, &err), 0);
    assert_int_equal(cadb_revoke(e.db, "a", CADB_REASON_SUPERSEDED, 1000, &err), 0);
    assert_int_equal(cadb_revoke(e.db, "05", CADB_REASON_AA_COMPROMISE, 2000, &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);

    err = (struct certd_err){ 0 };
    assert_err(cadb_revoke(e.db, "30", CADB_REASON_UNSPECIFIED, 4000, &err), -EALREADY, &err,
               CERTD_E_DUPLICATE, "already revoked");

    env_reopen(&e);
    w = (struct walk){ 0 };
    assert_int_equal(cadb_each(e.db, CADB_ONLY_REVOKED, walk_fn, &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.serials[0], "A");
    assert_string_equal(w.serials[1], "5");
    assert_string_equal(w.serials[2], "30");

    struct cadb_cert *got = NULL;
    assert_int_equal(cadb_get(e.db, "30", &got), 0);
    assert_int_equal(got->status, CADB_REVOKED);
    assert_int_equal(got->reason, CADB_REASON_KEY_COMPROMISE);
    assert_int_equal(got->revoked_at, 3000); /* the first revocation stands */
    cadb_cert_free(got);
    assert_int_equal(cadb_get(e.db, "B", &got), 0);
    assert_int_equal(got->status, CADB_VALID);
    cadb_cert_free(got);
    assert_int_equal(count(e.db), 5);

    assert_int_equal(cadb_each(e.db, CADB_ALL, NULL, NULL), -EINVAL);
    assert_int_equal(cadb_each(e.db, (enum cadb_filter)7, walk_fn, &w), -EINVAL);

    recs_free(v, 5);
    env_done(&e);
}

static void test_crl_numbers(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-crl");
    uint64_t n = 0;

    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(cadb_next_crl_number(e.db, &n), 0);
        assert_int_equal(n, i);
    }
    env_reopen(&e);
    assert_int_equal(cadb_next_crl_number(e.db, &n), 0);
    assert_int_equal(n, 4);

    /* Another handle continues from there: never twice the same number. */
    struct cadb *other = NULL;
    assert_int_equal(cadb_open(e.path, &other, NULL), 0);
    assert_int_equal(cadb_next_crl_number(other, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(cadb_next_crl_number(e.db, &n), 0);
    assert_int_equal(n, 6);
    other = cadb_close(other);
    env_done(&e);
}

/* Rows damaged behind our back (checks bypassed) are refused when read, not passed on. */
static void test_damaged_records(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-damage");
    struct cadb_cert *v[2] = { rec_new("A1", 1), rec_new("A2", 2) };
    assert_int_equal(add(e.db, v, 2, NULL), 0);

    static const char *const damage[] = {
        "UPDATE certs SET status = 7 WHERE serial = 'A2'",
        "UPDATE certs SET pem = x'00' WHERE serial = 'A2'",
        "UPDATE certs SET subject = 'a' || char(0) || 'b' WHERE serial = 'A2'",
        "UPDATE certs SET subject = replace(hex(zeroblob(32769)), '0', 'x') WHERE serial = 'A2'",
        "UPDATE certs SET not_after = 'soon' WHERE serial = 'A2'",
        "UPDATE certs SET status = 1, reason = 7, revoked_at = 5 WHERE serial = 'A2'",
        "UPDATE certs SET serial = 'a2' WHERE serial = 'A2'",
    };
    for (size_t i = 0; i < ELEMENTSOF(damage); i++) {
        sqlite3 *raw = raw_open(e.path);
        raw_exec(raw, "PRAGMA ignore_check_constraints = 1");
        raw_exec(raw, "BEGIN");
        raw_exec(raw, damage[i]);
        raw_exec(raw, "COMMIT");

        struct cadb_cert *got = NULL;
        if (i + 1 < ELEMENTSOF(damage)) {
            assert_int_equal(cadb_get(e.db, "A2", &got), -EBADMSG);
            assert_null(got);
        }
        assert_int_equal(cadb_get(e.db, "A1", &got), 0);
        cadb_cert_free(got);
        struct walk w = { 0 };
        assert_int_equal(cadb_each(e.db, CADB_ALL, walk_fn, &w), -EBADMSG);
        assert_int_equal(w.n, 1); /* A1 came first, then the walk stopped */

        /* Put A2 back as it was. */
        raw_exec(raw, "DELETE FROM certs WHERE serial IN ('A2', 'a2')");
        sqlite3_close(raw);
        assert_int_equal(add(e.db, &v[1], 1, NULL), 0);
    }
    recs_free(v, 2);
    env_done(&e);
}

/* ---- serials and reasons ---- */

static ASN1_INTEGER *asn1_from_bytes(const uint8_t *b, size_t n, bool negative)
{
    BIGNUM *bn = BN_bin2bn(b, (int)n, NULL);
    assert_non_null(bn);
    BN_set_negative(bn, negative);
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    assert_non_null(ai);
    BN_free(bn);
    return ai;
}

static void test_serial_hex(void **state)
{
    (void)state;
    uint8_t ff20[21], one20[20];
    memset(ff20, 0xff, sizeof(ff20));
    memset(one20, 0, sizeof(one20));
    one20[0] = 0x01;
    static const uint8_t zero = 0, one = 1, ff[] = { 0x00, 0xff }, f[] = { 0x0f },
                         h100[] = { 0x01, 0x00 }, lead[] = { 0x00, 0x00, 0x0a, 0xbc };
    const struct {
        const uint8_t *b;
        size_t n;
        bool negative;
        int r;
        const char *hex;
    } t[] = {
        { &zero, 1, false, 0, "0" },
        { &one, 1, false, 0, "1" },
        { ff, sizeof(ff), false, 0, "FF" },
        { f, sizeof(f), false, 0, "F" },
        { h100, sizeof(h100), false, 0, "100" },
        { lead, sizeof(lead), false, 0, "ABC" },
        { ff20, 20, false, 0, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" },
        { one20, 20, false, 0, NULL }, /* "1" and 38 zeros, checked below */
        { ff20, 21, false, -EINVAL, NULL },
        { &one, 1, true, -EINVAL, NULL },
        { ff20, 20, true, -EINVAL, NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(t); i++) {
        ASN1_INTEGER *ai = asn1_from_bytes(t[i].b, t[i].n, t[i].negative);
        char buf[CADB_SERIAL_MAX];
        memset(buf, '#', sizeof(buf));
        assert_int_equal(cadb_serial_hex(ai, buf), t[i].r);
        if (t[i].hex) {
            assert_string_equal(buf, t[i].hex);
        } else if (t[i].r == 0) {
            assert_int_equal(strlen(buf), 39);
            assert_int_equal(buf[0], '1');
            assert_int_equal(strspn(buf + 1, "0"), 38);
        } else {
            assert_int_equal(buf[0], '#'); /* untouched */
        }
        ASN1_INTEGER_free(ai);
    }

    /* An ENUMERATED is no serial. */
    ASN1_ENUMERATED *en = ASN1_ENUMERATED_new();
    assert_non_null(en);
    assert_int_equal(ASN1_ENUMERATED_set(en, 5), 1);
    char buf[CADB_SERIAL_MAX];
    assert_int_equal(cadb_serial_hex((const ASN1_INTEGER *)en, buf), -EINVAL);
    ASN1_ENUMERATED_free(en);
}

static void test_serial_parse(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out; /* NULL: -EINVAL */
    } t[] = {
        { "0", "0" },
        { "000", "0" },
        { "00:00", "0" },
        { "1", "1" },
        { "0a1b", "A1B" },
        { "0a:1B", "A1B" },
        { "DE:AD:BE:EF", "DEADBEEF" },
        { "00ABCDEF0123456789ABCDEF0123456789ABCDEF01",
          "ABCDEF0123456789ABCDEF0123456789ABCDEF01" },
        { "1ABCDEF0123456789ABCDEF0123456789ABCDEF01", NULL },
        { "", NULL },
        { ":", NULL },
        { ":0a", NULL },
        { "0a:", NULL },
        { "0a::1b", NULL },
        { "a:b", NULL },
        { "0a:1b2", NULL },
        { "0x1A", NULL },
        { "-1", NULL },
        { "+1", NULL },
        { " 1", NULL },
        { "1 ", NULL },
        { "g", NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(t); i++) {
        char buf[CADB_SERIAL_MAX];
        memset(buf, '#', sizeof(buf));
        int r = cadb_serial_parse(t[i].in, buf);
        if (t[i].out) {
            if (r != 0) {
                fail_msg("\"%s\": %d", t[i].in, r);
            }
            assert_string_equal(buf, t[i].out);
        } else {
            if (r != -EINVAL) {
                fail_msg("\"%s\" accepted", t[i].in);
            }
            assert_int_equal(buf[0], '#');
        }
    }
    /* The input bound: leading zeros at the limit are fine, one more is refused. */
    char in[CADB_SERIAL_INPUT_MAX + 2], buf[CADB_SERIAL_MAX];
    memset(in, '0', sizeof(in));
    in[CADB_SERIAL_INPUT_MAX - 1] = '7';
    in[CADB_SERIAL_INPUT_MAX] = '\0';
    assert_int_equal(cadb_serial_parse(in, buf), 0);
    assert_string_equal(buf, "7");
    in[CADB_SERIAL_INPUT_MAX - 1] = '0';
    in[CADB_SERIAL_INPUT_MAX] = '7';
    in[CADB_SERIAL_INPUT_MAX + 1] = '\0';
    assert_int_equal(cadb_serial_parse(in, buf), -EINVAL);
    assert_int_equal(cadb_serial_parse(NULL, buf), -EINVAL);
}

static void test_reason_names(void **state)
{
    (void)state;
    static const struct {
        int reason;
        const char *name;
    } t[] = {
        { 0, "unspecified" },        { 1, "keyCompromise" },      { 2, "cACompromise" },
        { 3, "affiliationChanged" }, { 4, "superseded" },         { 5, "cessationOfOperation" },
        { 6, "certificateHold" },    { 9, "privilegeWithdrawn" }, { 10, "aACompromise" },
    };
    for (size_t i = 0; i < ELEMENTSOF(t); i++) {
        int r = -1;
        assert_string_equal(cadb_reason_name(t[i].reason), t[i].name);
        assert_int_equal(cadb_reason_from_name(t[i].name, &r), 0);
        assert_int_equal(r, t[i].reason);
    }
    int r = -1;
    assert_int_equal(cadb_reason_from_name("KEYCOMPROMISE", &r), 0);
    assert_int_equal(r, CADB_REASON_KEY_COMPROMISE);
    static const int bad[] = { -1, 7, 8, 11, 1000 };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        assert_null(cadb_reason_name(bad[i]));
    }
    static const char *const bad_names[] = { "",  "removeFromCRL",  "key compromise",
                                             "7", "keyCompromise ", "unspecifie" };
    for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
        r = -1;
        assert_int_equal(cadb_reason_from_name(bad_names[i], &r), -EINVAL);
        assert_int_equal(r, -1);
    }
}

/* ---- volume and concurrency ---- */

static int cmp_serial(const void *a, const void *b)
{
    return strcmp(a, b);
}

struct collect {
    char (*serials)[CADB_SERIAL_MAX];
    size_t n, max;
    int64_t last_issued;
};

static int collect_fn(const struct cadb_cert *c, void *arg)
{
    struct collect *col = arg;
    if (col->n == col->max || c->issued_at < col->last_issued) {
        return -ERANGE;
    }
    col->last_issued = c->issued_at;
    memcpy(col->serials[col->n++], c->serial, CADB_SERIAL_MAX);
    return 0;
}

/* 10 000 random 128-bit serials (as the CA makes them), in batches of 100. */
static void test_ten_thousand(void **state)
{
    (void)state;
    enum { TOTAL = 10000, BATCH = 100 };
    struct env e = { 0 };
    env_open(&e, "cadb-10k");

    for (size_t b = 0; b < TOTAL / BATCH; b++) {
        struct cadb_cert *v[BATCH];
        for (size_t i = 0; i < BATCH; i++) {
            uint8_t raw[16];
            char hex[CADB_SERIAL_MAX];
            assert_int_equal(RAND_bytes(raw, sizeof(raw)), 1);
            raw[0] &= 0x7f;
            raw[0] |= 0x40; /* 128 bits, positive, no clash with other tests' spellings */
            ASN1_INTEGER *ai = asn1_from_bytes(raw, sizeof(raw), false);
            assert_int_equal(cadb_serial_hex(ai, hex), 0);
            ASN1_INTEGER_free(ai);
            assert_int_equal(strlen(hex), 32);
            v[i] = rec_new(hex, (int64_t)(b * BATCH + i));
        }
        struct certd_err err = { 0 };
        assert_int_equal(add(e.db, v, BATCH, &err), 0);
        recs_free(v, BATCH);
    }
    env_reopen(&e);
    assert_int_equal(count(e.db), TOTAL);

    struct collect col = { .max = TOTAL + 1 };
    col.serials = calloc(col.max, CADB_SERIAL_MAX);
    assert_non_null(col.serials);
    assert_int_equal(cadb_each(e.db, CADB_ALL, collect_fn, &col), 0);
    assert_int_equal(col.n, TOTAL);
    qsort(col.serials, col.n, CADB_SERIAL_MAX, cmp_serial);
    for (size_t i = 1; i < col.n; i++) {
        assert_true(strcmp(col.serials[i - 1], col.serials[i]) < 0);
    }
    /* Each one findable. */
    for (size_t i = 0; i < col.n; i += 97) {
        assert_int_equal(cadb_has_serial(e.db, col.serials[i]), 1);
    }
    free(col.serials);
    env_done(&e);
}

/* One handle reads (a walk in progress) while another adds: neither waits, the walk keeps
 * its snapshot, and the reader sees the new record afterwards. */
static void test_two_handles(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-2h");
    struct cadb *writer = NULL;
    assert_int_equal(cadb_open(e.path, &writer, NULL), 0);

    struct cadb_cert *v[3] = { rec_new("1", 1), rec_new("2", 2), rec_new("3", 3) };
    assert_int_equal(add(writer, v, 2, NULL), 0);
    assert_int_equal(count(e.db), 2);

    struct walk w = { .other = writer, .to_add = v[2], .add_result = 1 };
    assert_int_equal(cadb_each(e.db, CADB_ALL, walk_fn, &w), 0);
    assert_int_equal(w.add_result, 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(count(e.db), 3);
    assert_int_equal(cadb_has_serial(e.db, "3"), 1);

    /* And the other way round, with a revocation. */
    assert_int_equal(cadb_revoke(e.db, "3", CADB_REASON_SUPERSEDED, 9, NULL), 0);
    struct cadb_cert *got = NULL;
    assert_int_equal(cadb_get(writer, "3", &got), 0);
    assert_int_equal(got->status, CADB_REVOKED);
    cadb_cert_free(got);

    writer = cadb_close(writer);
    recs_free(v, 3);
    env_done(&e);
}

enum { PROC_BATCHES = 10, PROC_BATCH = 20 };

/* A child's work: its own handle, serials starting with its digit. Exit code 0 when all went. */
static _noreturn_ void child_writer(const char *path, unsigned digit)
{
    struct cadb *db = NULL;
    struct certd_err oerr = { 0 };
    if (cadb_open(path, &db, &oerr) < 0) {
        (void)fprintf(stderr, "child %u: %s\n", digit, oerr.msg);
        _exit(10);
    }
    for (unsigned b = 0; b < PROC_BATCHES; b++) {
        struct cadb_cert *v[PROC_BATCH];
        for (unsigned i = 0; i < PROC_BATCH; i++) {
            char s[16];
            (void)snprintf(s, sizeof(s), "%X%04X", digit, b * PROC_BATCH + i);
            v[i] = rec_new(s, (int64_t)(b * PROC_BATCH + i));
        }
        struct certd_err err = { 0 };
        int r = add(db, v, PROC_BATCH, &err);
        recs_free(v, PROC_BATCH);
        if (r < 0) {
            (void)fprintf(stderr, "child %u: %s\n", digit, err.msg);
            _exit(11);
        }
    }
    db = cadb_close(db);
    _exit(0);
}

/* fresh: the children race to create the log, else it exists before they start. */
static void two_processes(bool fresh)
{
    struct env e = { 0 };
    env_open(&e, "cadb-fork");
    e.db = cadb_close(e.db); /* a child must never use a handle of its parent */
    if (fresh) {
        assert_int_equal(unlink(e.path), 0);
    }

    pid_t pids[2];
    for (unsigned k = 0; k < 2; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            child_writer(e.path, k + 1);
        }
    }
    for (unsigned k = 0; k < 2; k++) {
        int status = 0;
        assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    env_reopen(&e);
    assert_int_equal(count(e.db), 2 * PROC_BATCHES * PROC_BATCH);
    assert_int_equal(cadb_has_serial(e.db, "10000"), 1);
    assert_int_equal(cadb_has_serial(e.db, "200C7"), 1);
    env_done(&e);
}

static void test_two_processes(void **state)
{
    (void)state;
    two_processes(false);
    two_processes(true);
}

/* Another writer holds the log past the busy timeout: unavailable, nothing written. */
static void test_busy(void **state)
{
    (void)state;
    struct env e = { 0 };
    env_open(&e, "cadb-busy");
    struct cadb_cert *c = rec_new("B0", 1);

    sqlite3 *raw = raw_open(e.path);
    raw_exec(raw, "BEGIN IMMEDIATE");
    struct certd_err err = { 0 };
    assert_err(add(e.db, &c, 1, &err), -EBUSY, &err, CERTD_E_UNAVAILABLE, "busy");
    raw_exec(raw, "ROLLBACK");
    sqlite3_close(raw);

    assert_int_equal(cadb_has_serial(e.db, "B0"), 0);
    assert_int_equal(add(e.db, &c, 1, NULL), 0);
    rec_free(c);
    env_done(&e);
}

/*
 * The storage fails in the middle of a batch (a file size limit: EFBIG on the WAL, which root
 * cannot bypass): -EIO, the batch is not in the log, the log opens fine afterwards.
 */
static void test_write_failure(void **state)
{
    (void)state;
    enum { N = 16 };
    struct env e = { 0 };
    env_open(&e, "cadb-eio");
    struct cadb_cert *first = rec_new("1", 1);
    assert_int_equal(add(e.db, &first, 1, NULL), 0);
    rec_free(first);
    e.db = cadb_close(e.db);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct cadb *db = NULL;
        struct cadb_cert *v[N];
        struct certd_err err = { 0 };
        uint64_t n = 0;
        if (cadb_open(e.path, &db, NULL) < 0) {
            _exit(10);
        }
        (void)signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = { .rlim_cur = 64 * 1024, .rlim_max = 64 * 1024 };
        if (setrlimit(RLIMIT_FSIZE, &lim) < 0) {
            _exit(11);
        }
        for (unsigned i = 0; i < N; i++) {
            char s[16];
            (void)snprintf(s, sizeof(s), "E%X", i);
            v[i] = rec_new(s, 2);
            free(v[i]->pem);
            v[i]->pem = big_string(CADB_PEM_MAX - 1);
        }
        int r = add(db, v, N, &err);
        recs_free(v, N);
        if (r != -EIO || err.code != CERTD_E_STORAGE || !strstr(err.msg, "ca.db")) {
            (void)fprintf(stderr, "write failure: %d %s\n", r, err.msg);
            _exit(12);
        }
        if (cadb_count(db, &n) < 0 || n != 1) {
            _exit(13);
        }
        db = cadb_close(db);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    env_reopen(&e);
    assert_int_equal(count(e.db), 1);
    assert_int_equal(cadb_has_serial(e.db, "E0"), 0);
    struct cadb_cert *c = rec_new("E0", 3);
    assert_int_equal(add(e.db, &c, 1, NULL), 0);
    rec_free(c);
    env_done(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_modes),
        cmocka_unit_test(test_open_rejects_files),
        cmocka_unit_test(test_refuse_not_sqlite),
        cmocka_unit_test(test_refuse_foreign),
        cmocka_unit_test(test_refuse_newer),
        cmocka_unit_test(test_open_empty_file),
        cmocka_unit_test(test_add_get_reopen),
        cmocka_unit_test(test_duplicates_all_or_none),
        cmocka_unit_test(test_add_rejects),
        cmocka_unit_test(test_each_order_and_revoke),
        cmocka_unit_test(test_crl_numbers),
        cmocka_unit_test(test_damaged_records),
        cmocka_unit_test(test_serial_hex),
        cmocka_unit_test(test_serial_parse),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_ten_thousand),
        cmocka_unit_test(test_two_handles),
        cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_write_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
