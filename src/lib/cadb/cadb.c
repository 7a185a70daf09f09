/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cadb/: the CA's issuance log in SQLite, the only module that includes sqlite3.h (STYLE.md §1).
 * Invariants:
 *  - every write is one BEGIN IMMEDIATE ... COMMIT transaction, rolled back on any failure, so
 *    a batch is in the log whole or not at all; WAL with synchronous=FULL makes COMMIT durable;
 *  - SQL text is constant: data only ever travels through bound parameters;
 *  - the file is checked (regular, not a link) and created 0600 by us, but never opened by us
 *    once it exists: closing a second descriptor of a file drops the process's POSIX locks on
 *    it, SQLite's included, and would let another process write under a reader's feet;
 *  - the file is outside input too (a damaged or edited log): it is opened with triggers and
 *    views disabled and defensive mode on, values are bounded by SQLITE_LIMIT_LENGTH, and each
 *    record read back is checked against the bounds cadb_add enforces (-EBADMSG);
 *  - messages name the file, the step and the serial, never a PEM or SQLite's own text (which
 *    goes to the debug log).
 */
#include "cadb/cadb.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include "log/log.h"
#include "util/dlib.h"
#include "util/ossl.h"
#include "util/parse.h"

/*
 * libsqlite3 is opened when the first log is (util/dlib.h): a certd whose CA is not used does
 * not map it. Every SQLite call below goes through this table (the macros after it).
 */
#define SQLITE_FUNCTIONS(X)          \
    X(sqlite3_bind_int)              \
    X(sqlite3_bind_int64)            \
    X(sqlite3_bind_text)             \
    X(sqlite3_busy_timeout)          \
    X(sqlite3_changes)               \
    X(sqlite3_clear_bindings)        \
    X(sqlite3_close)                 \
    X(sqlite3_close_v2)              \
    X(sqlite3_column_bytes)          \
    X(sqlite3_column_int64)          \
    X(sqlite3_column_text)           \
    X(sqlite3_column_type)           \
    X(sqlite3_db_config)             \
    X(sqlite3_errmsg)                \
    X(sqlite3_errstr)                \
    X(sqlite3_exec)                  \
    X(sqlite3_extended_result_codes) \
    X(sqlite3_finalize)              \
    X(sqlite3_get_autocommit)        \
    X(sqlite3_limit)                 \
    X(sqlite3_open_v2)               \
    X(sqlite3_prepare_v2)            \
    X(sqlite3_prepare_v3)            \
    X(sqlite3_reset)                 \
    X(sqlite3_step)                  \
    X(sqlite3_system_errno)

struct sqlite_lib {
    SQLITE_FUNCTIONS(DLIB_MEMBER)
};
static struct sqlite_lib sqlite_table; /* filled once (pthread_once), read-only after */
static int sqlite_load_r;
static char sqlite_load_msg[CERTD_ERR_MSG_MAX];
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_load(void)
{
    static const char *const names[] = { SQLITE_FUNCTIONS(DLIB_NAME) };
    static_assert(sizeof(struct sqlite_lib) == ELEMENTSOF(names) * sizeof(void (*)(void)),
                  "struct sqlite_lib holds the functions of the list and nothing else");
    sqlite_load_r = dlib_load(CADB_SQLITE_SONAME, names, ELEMENTSOF(names), &sqlite_table,
                              sqlite_load_msg, sizeof(sqlite_load_msg));
}

#define sqlite3_bind_int(...)              (sqlite_table.sqlite3_bind_int(__VA_ARGS__))
#define sqlite3_bind_int64(...)            (sqlite_table.sqlite3_bind_int64(__VA_ARGS__))
#define sqlite3_bind_text(...)             (sqlite_table.sqlite3_bind_text(__VA_ARGS__))
#define sqlite3_busy_timeout(...)          (sqlite_table.sqlite3_busy_timeout(__VA_ARGS__))
#define sqlite3_changes(...)               (sqlite_table.sqlite3_changes(__VA_ARGS__))
#define sqlite3_clear_bindings(...)        (sqlite_table.sqlite3_clear_bindings(__VA_ARGS__))
#define sqlite3_close(...)                 (sqlite_table.sqlite3_close(__VA_ARGS__))
#define sqlite3_close_v2(...)              (sqlite_table.sqlite3_close_v2(__VA_ARGS__))
#define sqlite3_column_bytes(...)          (sqlite_table.sqlite3_column_bytes(__VA_ARGS__))
#define sqlite3_column_int64(...)          (sqlite_table.sqlite3_column_int64(__VA_ARGS__))
#define sqlite3_column_text(...)           (sqlite_table.sqlite3_column_text(__VA_ARGS__))
#define sqlite3_column_type(...)           (sqlite_table.sqlite3_column_type(__VA_ARGS__))
#define sqlite3_db_config(...)             (sqlite_table.sqlite3_db_config(__VA_ARGS__))
#define sqlite3_errmsg(...)                (sqlite_table.sqlite3_errmsg(__VA_ARGS__))
#define sqlite3_errstr(...)                (sqlite_table.sqlite3_errstr(__VA_ARGS__))
#define sqlite3_exec(...)                  (sqlite_table.sqlite3_exec(__VA_ARGS__))
#define sqlite3_extended_result_codes(...) (sqlite_table.sqlite3_extended_result_codes(__VA_ARGS__))
#define sqlite3_finalize(...)              (sqlite_table.sqlite3_finalize(__VA_ARGS__))
#define sqlite3_get_autocommit(...)        (sqlite_table.sqlite3_get_autocommit(__VA_ARGS__))
#define sqlite3_limit(...)                 (sqlite_table.sqlite3_limit(__VA_ARGS__))
#define sqlite3_open_v2(...)               (sqlite_table.sqlite3_open_v2(__VA_ARGS__))
#define sqlite3_prepare_v2(...)            (sqlite_table.sqlite3_prepare_v2(__VA_ARGS__))
#define sqlite3_prepare_v3(...)            (sqlite_table.sqlite3_prepare_v3(__VA_ARGS__))
#define sqlite3_reset(...)                 (sqlite_table.sqlite3_reset(__VA_ARGS__))
#define sqlite3_step(...)                  (sqlite_table.sqlite3_step(__VA_ARGS__))
#define sqlite3_system_errno(...)          (sqlite_table.sqlite3_system_errno(__VA_ARGS__))

/* What the meta table says about the file, besides the header's application_id. */
#define CADB_MARKER_KEY   "application"
#define CADB_MARKER_VALUE "certd CA issuance log"
/*
 * SQLITE_LIMIT_LENGTH for our connection: larger than any record we write (four strings of
 * at most 64 KiB), small enough that a tampered file cannot make one read allocate much.
 */
#define CADB_SQL_LENGTH_MAX (1024 * 1024)
/* 20 octets of magnitude in hex (RFC 5280 §4.1.2.2). */
#define CADB_SERIAL_DIGITS_MAX (CADB_SERIAL_MAX - 1u)

/* The bounds again as SQL literals (the C constants carry a 'u' suffix SQL does not know). */
#define SQL_SERIAL_DIGITS_MAX "40"
#define SQL_TEXT_MAX          "65536"
#define SQL_PEM_MAX           "65536"
_Static_assert(CADB_SERIAL_DIGITS_MAX == 40, "SQL_SERIAL_DIGITS_MAX");
_Static_assert(CADB_TEXT_MAX == 65536, "SQL_TEXT_MAX");
_Static_assert(CADB_PEM_MAX == 65536, "SQL_PEM_MAX");

#define STR_(x) #x
#define STR(x)  STR_(x)

/* The columns of a record, in the order row_read expects them. */
#define CERT_COLUMNS                                                                    \
    "serial, subject, sans, not_before, not_after, issued_at, requester, pem, status, " \
    "reason, revoked_at"

/*
 * Schema v1. CHECKs repeat the bounds of cadb_add so that a bug here cannot store what
 * row_read would refuse. The partial index serves the CRL (revoked, by time) without
 * touching valid records.
 */
static const char schema_v1[] =
    "CREATE TABLE certs ("
    " serial TEXT NOT NULL PRIMARY KEY CHECK (typeof(serial) = 'text' AND length(serial)"
    "  BETWEEN 1 AND " SQL_SERIAL_DIGITS_MAX "),"
    " subject TEXT NOT NULL CHECK (length(CAST(subject AS BLOB)) <= " SQL_TEXT_MAX "),"
    " sans TEXT NOT NULL CHECK (length(CAST(sans AS BLOB)) <= " SQL_TEXT_MAX "),"
    " not_before INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL,"
    " issued_at INTEGER NOT NULL,"
    " requester TEXT NOT NULL CHECK (length(CAST(requester AS BLOB)) <= " SQL_TEXT_MAX "),"
    " pem TEXT NOT NULL CHECK (length(CAST(pem AS BLOB)) BETWEEN 1 AND " SQL_PEM_MAX "),"
    " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
    " reason INTEGER,"
    " revoked_at INTEGER,"
    " CHECK ((status = 0 AND reason IS NULL AND revoked_at IS NULL) OR"
    "        (status = 1 AND reason IS NOT NULL AND revoked_at IS NOT NULL))"
    ");"
    "CREATE INDEX certs_by_issued ON certs (issued_at, serial);"
    "CREATE INDEX certs_revoked ON certs (revoked_at, serial) WHERE status = 1;"
    "CREATE TABLE meta (key TEXT NOT NULL PRIMARY KEY, value NOT NULL);"
    "INSERT INTO meta (key, value) VALUES"
    " ('" CADB_MARKER_KEY "', '" CADB_MARKER_VALUE "'),"
    " ('schema_version', " STR(
        CADB_SCHEMA_VERSION) "),"
                             " ('crl_number', 0);"
                             "PRAGMA application_id = " STR(
                                 CADB_APPLICATION_ID) ";"
                                                      "PRAGMA user_version = " STR(
                                                          CADB_SCHEMA_VERSION) ";";

/* Statements prepared once at open (which also proves the schema is ours) and reused. */
enum cadb_stmt {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_INSERT,
    STMT_HAS,
    STMT_GET,
    STMT_STATUS,
    STMT_REVOKE,
    STMT_COUNT,
    STMT_CRL_GET,
    STMT_CRL_SET,
    STMT_MAX
};

static const char *const stmt_sql[STMT_MAX] = {
    /* IMMEDIATE: take the write lock first, so that no read snapshot can go stale mid-way. */
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_INSERT] = "INSERT INTO certs (serial, subject, sans, not_before, not_after, issued_at,"
                    " requester, pem, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)",
    [STMT_HAS] = "SELECT 1 FROM certs WHERE serial = ?1",
    [STMT_GET] = "SELECT " CERT_COLUMNS " FROM certs WHERE serial = ?1",
    [STMT_STATUS] = "SELECT status FROM certs WHERE serial = ?1",
    [STMT_REVOKE] = "UPDATE certs SET status = 1, reason = ?2, revoked_at = ?3"
                    " WHERE serial = ?1 AND status = 0",
    [STMT_COUNT] = "SELECT count(*) FROM certs",
    [STMT_CRL_GET] = "SELECT value FROM meta WHERE key = 'crl_number'",
    [STMT_CRL_SET] = "UPDATE meta SET value = ?1 WHERE key = 'crl_number'",
};

/* Each walk prepares its own statement, so that fn may walk again (nested) through db. */
static const char *const each_sql[] = {
    [CADB_ALL] = "SELECT " CERT_COLUMNS " FROM certs ORDER BY issued_at, serial",
    [CADB_ONLY_REVOKED] =
        "SELECT " CERT_COLUMNS " FROM certs WHERE status = 1 ORDER BY revoked_at, serial",
};

struct cadb {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[STMT_MAX];
};

DEFINE_CLEANUP(sqlite3_stmt, sqlite3_finalize)

/* RFC 5280 §5.3.1 CRLReason names; 7 is unused and 8 (removeFromCRL) is for delta CRLs only. */
static const char *const reason_names[] = {
    [CADB_REASON_UNSPECIFIED] = "unspecified",
    [CADB_REASON_KEY_COMPROMISE] = "keyCompromise",
    [CADB_REASON_CA_COMPROMISE] = "cACompromise",
    [CADB_REASON_AFFILIATION_CHANGED] = "affiliationChanged",
    [CADB_REASON_SUPERSEDED] = "superseded",
    [CADB_REASON_CESSATION_OF_OPERATION] = "cessationOfOperation",
    [CADB_REASON_CERTIFICATE_HOLD] = "certificateHold",
    [CADB_REASON_PRIVILEGE_WITHDRAWN] = "privilegeWithdrawn",
    [CADB_REASON_AA_COMPROMISE] = "aACompromise",
};

const char *cadb_reason_name(int reason)
{
    if (reason < 0 || (size_t)reason >= ELEMENTSOF(reason_names)) {
        return NULL;
    }
    return reason_names[reason];
}

int cadb_reason_from_name(const char *name, int *ret)
{
    assert_return(name && ret, -EINVAL);
    for (size_t i = 0; i < ELEMENTSOF(reason_names); i++) {
        if (reason_names[i] && str_case_eq(name, reason_names[i])) {
            *ret = (int)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---- serials ---- */

/* The log's spelling: 1..40 upper-case hex digits, no leading zero except for "0" itself. */
static bool serial_is_canonical(const char *s, size_t len)
{
    if (len == 0 || len > CADB_SERIAL_DIGITS_MAX || (len > 1 && s[0] == '0')) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F'))) {
            return false;
        }
    }
    return true;
}

int cadb_serial_parse(const char *s, char buf[CADB_SERIAL_MAX])
{
    static const char digits[] = "0123456789ABCDEF";
    char out[CADB_SERIAL_MAX];
    size_t len, n = 0, run = 0;
    bool seen_digit = false, has_colon = false;

    assert_return(s && buf, -EINVAL);
    len = strnlen(s, CADB_SERIAL_INPUT_MAX + 1);
    if (len == 0 || len > CADB_SERIAL_INPUT_MAX) {
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ':') {
            /* Separators sit between pairs of digits: "0a:1b", never ":0a", "0a::1b", "a:b". */
            if (run != 2 || i + 1 == len) {
                return -EINVAL;
            }
            has_colon = true;
            run = 0;
            continue;
        }
        int v = hex_digit_value(s[i]);
        if (v < 0) {
            return -EINVAL;
        }
        run++;
        if (v == 0 && !seen_digit) {
            continue; /* leading zero */
        }
        seen_digit = true;
        if (n == CADB_SERIAL_DIGITS_MAX) {
            return -EINVAL; /* over 20 octets */
        }
        out[n++] = digits[v];
    }
    if (has_colon && run != 2) {
        return -EINVAL; /* "0a:1b2" */
    }
    if (n == 0) {
        out[n++] = '0';
    }
    out[n] = '\0';
    memcpy(buf, out, n + 1);
    return 0;
}

int cadb_serial_hex(const ASN1_INTEGER *serial, char buf[CADB_SERIAL_MAX])
{
    _cleanup_(cleanup_BIGNUM) BIGNUM *bn = NULL;
    /* OpenSSL's bytes, freed as such: BN_bn2hex gives a char * of them. */
    _cleanup_(ossl_bytes_free) unsigned char *hex = NULL;
    const char *p;
    size_t len;

    assert_return(serial && buf, -EINVAL);
    /* A negative serial breaks RFC 5280 §4.1.2.2; ENUMERATED and the like are no serial. */
    if (ASN1_STRING_type(serial) != V_ASN1_INTEGER) {
        return -EINVAL;
    }
    bn = ASN1_INTEGER_to_BN(serial, NULL);
    if (!bn) {
        return -ENOMEM;
    }
    if (BN_is_negative(bn) || BN_num_bytes(bn) > (int)(CADB_SERIAL_DIGITS_MAX / 2u)) {
        return -EINVAL;
    }
    hex = (unsigned char *)BN_bn2hex(bn);
    if (!hex) {
        return -ENOMEM;
    }
    /* BN_bn2hex writes whole octets ("0F"), and "0" for zero. */
    p = (const char *)hex;
    while (p[0] == '0' && p[1] != '\0') {
        p++;
    }
    len = strlen(p);
    if (!serial_is_canonical(p, len)) {
        return -EINVAL; /* not reached with OpenSSL's upper-case output; never store otherwise */
    }
    memcpy(buf, p, len + 1);
    return 0;
}

/* ---- SQLite results to our errors ---- */

static int errno_from_sqlite(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CONSTRAINT:
        return -EEXIST;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_NOTADB:
        return -EPROTO;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_CANTOPEN: {
        int e = db ? sqlite3_system_errno(db) : 0;
        return e > 0 ? -e : -EIO;
    }
    default:
        /* SQLITE_IOERR_*, SQLITE_CORRUPT and the rest: the storage failed us. */
        return -EIO;
    }
}

static enum certd_errc code_from_errno(int r)
{
    switch (r) {
    case -EBUSY:
        return CERTD_E_UNAVAILABLE;
    case -ENOMEM:
        return CERTD_E_NO_MEMORY;
    default:
        return CERTD_E_STORAGE;
    }
}

/* Record a failed SQLite call: step and SQLite's generic text for the code, and the file. */
static int sql_fail(const struct cadb *db, struct certd_err *err, int rc, const char *step)
{
    int r = errno_from_sqlite(db->db, rc);

    log_debug("cadb: %s: %s: %s (%d)", db->path, step, db->db ? sqlite3_errmsg(db->db) : "-", rc);
    if (r == -EBUSY) {
        return err_set(err, r, CERTD_E_UNAVAILABLE,
                       "CA log %s is busy: another writer held it for over %d ms", db->path,
                       CADB_BUSY_TIMEOUT_MS);
    }
    return err_set(err, r, code_from_errno(r), "CA log %s: %s failed (%s)", db->path, step,
                   sqlite3_errstr(rc));
}

/* ---- statements and transactions ---- */

/* A cached statement, reset and unbound when the scope ends. */
static void stmt_resetp(sqlite3_stmt **p)
{
    if (*p) {
        (void)sqlite3_reset(*p);
        (void)sqlite3_clear_bindings(*p);
    }
}

static sqlite3_stmt *stmt_get(struct cadb *db, enum cadb_stmt id)
{
    assert(id < STMT_MAX && db->stmts[id]);
    return db->stmts[id];
}

/* Run a statement that returns no rows. SQLITE_DONE or the failing code. */
static int stmt_run(struct cadb *db, enum cadb_stmt id)
{
    _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, id);
    return sqlite3_step(st);
}

static int tx_begin(struct cadb *db, struct certd_err *err)
{
    int rc = stmt_run(db, STMT_BEGIN);
    return rc == SQLITE_DONE ? 0 : sql_fail(db, err, rc, "begin transaction");
}

/* Roll back whatever is open; SQLite may have rolled back itself after I/O errors. */
static void tx_rollback(struct cadb *db)
{
    if (!sqlite3_get_autocommit(db->db)) {
        /* While cadb_open sets the schema up, the statements are not prepared yet. */
        int rc = db->stmts[STMT_ROLLBACK] ? stmt_run(db, STMT_ROLLBACK)
                                          : sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            rc = SQLITE_DONE;
        }
        if (rc != SQLITE_DONE) {
            log_debug("cadb: %s: rollback: %s", db->path, sqlite3_errmsg(db->db));
        }
    }
}

/* The guard of an open transaction: rolls back unless tx_commit cleared it. */
static void tx_abortp(struct cadb **p)
{
    if (*p) {
        tx_rollback(*p);
    }
}

static int tx_commit(struct cadb **tx, struct certd_err *err)
{
    struct cadb *db = *tx;
    int rc = stmt_run(db, STMT_COMMIT);
    if (rc != SQLITE_DONE) {
        return sql_fail(db, err, rc, "commit");
    }
    *tx = NULL;
    return 0;
}

/* ---- reading records back ---- */

/* A text column into a fresh string; anything but text within max bytes is damage. */
static int col_text_dup(sqlite3_stmt *st, int i, size_t max, char **ret)
{
    const unsigned char *t;
    int bytes;
    char *s;

    if (sqlite3_column_type(st, i) != SQLITE_TEXT) {
        return -EBADMSG;
    }
    t = sqlite3_column_text(st, i);
    bytes = sqlite3_column_bytes(st, i);
    if (!t) {
        return -ENOMEM;
    }
    if (bytes < 0 || (size_t)bytes > max || memchr(t, '\0', (size_t)bytes)) {
        return -EBADMSG;
    }
    s = malloc((size_t)bytes + 1);
    if (!s) {
        return -ENOMEM;
    }
    memcpy(s, t, (size_t)bytes);
    s[bytes] = '\0';
    *ret = s;
    return 0;
}

static int col_int(sqlite3_stmt *st, int i, int64_t *ret)
{
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER) {
        return -EBADMSG;
    }
    *ret = sqlite3_column_int64(st, i);
    return 0;
}

/* Free what a record owns, leaving it empty (the struct itself is the caller's). */
static void cert_clear(struct cadb_cert *c)
{
    free(c->subject);
    free(c->sans);
    free(c->requester);
    free(c->pem);
    *c = (struct cadb_cert){ 0 };
}

static void cert_clearp(struct cadb_cert *c)
{
    cert_clear(c);
}

/* The current row (CERT_COLUMNS) into c, which must be empty; c stays empty on failure. */
static int row_read(sqlite3_stmt *st, struct cadb_cert *c)
{
    _cleanup_(cert_clearp) struct cadb_cert t = { 0 };
    const unsigned char *serial;
    int64_t status, reason = 0, revoked_at = 0;
    int r, bytes;

    if (sqlite3_column_type(st, 0) != SQLITE_TEXT) {
        return -EBADMSG;
    }
    serial = sqlite3_column_text(st, 0);
    bytes = sqlite3_column_bytes(st, 0);
    if (!serial) {
        return -ENOMEM;
    }
    if (bytes < 0 || !serial_is_canonical((const char *)serial, (size_t)bytes)) {
        return -EBADMSG;
    }
    memcpy(t.serial, serial, (size_t)bytes);
    t.serial[bytes] = '\0';

    r = col_text_dup(st, 1, CADB_TEXT_MAX, &t.subject);
    if (r >= 0) {
        r = col_text_dup(st, 2, CADB_TEXT_MAX, &t.sans);
    }
    if (r >= 0) {
        r = col_int(st, 3, &t.not_before);
    }
    if (r >= 0) {
        r = col_int(st, 4, &t.not_after);
    }
    if (r >= 0) {
        r = col_int(st, 5, &t.issued_at);
    }
    if (r >= 0) {
        r = col_text_dup(st, 6, CADB_TEXT_MAX, &t.requester);
    }
    if (r >= 0) {
        r = col_text_dup(st, 7, CADB_PEM_MAX, &t.pem);
    }
    if (r >= 0) {
        r = col_int(st, 8, &status);
    }
    if (r < 0) {
        return r;
    }
    if (status == CADB_REVOKED) {
        if (col_int(st, 9, &reason) < 0 || col_int(st, 10, &revoked_at) < 0 || reason < 0 ||
            reason > INT32_MAX || !cadb_reason_name((int)reason)) {
            return -EBADMSG;
        }
        t.status = CADB_REVOKED;
    } else if (status == CADB_VALID) {
        t.status = CADB_VALID;
    } else {
        return -EBADMSG;
    }
    t.reason = (int)reason;
    t.revoked_at = revoked_at;
    *c = t;
    t = (struct cadb_cert){ 0 };
    return 0;
}

void cadb_cert_free(struct cadb_cert *c)
{
    if (c) {
        cert_clear(c);
        free(c);
    }
}

/* ---- open ---- */

/* fsync the directory holding path, so that a file just created there survives a crash. */
static int fsync_parent(const char *path)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_close_ int fd = -EBADF;
    const char *slash = strrchr(path, '/');

    if (!slash) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (!dir) {
        return -ENOMEM;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        return -errno;
    }
    return 0;
}

static int file_fail(struct certd_err *err, int r, const char *path, const char *what)
{
    char buf[128];

    return err_set(err, r, CERTD_E_STORAGE, "CA log %s: %s (%s)", path, what,
                   strerror_r(-r, buf, sizeof(buf)));
}

/*
 * Make path a regular file we may use: create it empty and 0600 (whatever the umask) when
 * missing, else check what is there with stat only (see the invariants above).
 */
static int file_prepare(const char *path, struct certd_err *err)
{
    _cleanup_close_ int fd = -EBADF;
    struct stat st;
    int r;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd >= 0) {
        /* A umask such as 0277 would leave the owner unable to write: set the mode exactly. */
        if (fchmod(fd, 0600) < 0) {
            return file_fail(err, -errno, path, "cannot set mode 0600");
        }
        r = fsync_parent(path);
        if (r < 0) {
            return file_fail(err, r, path, "cannot sync its directory");
        }
        return 0;
    }
    if (errno != EEXIST) {
        return file_fail(err, -errno, path, "cannot create");
    }
    if (fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        return file_fail(err, -errno, path, "cannot stat");
    }
    if (S_ISLNK(st.st_mode)) {
        return file_fail(err, -ELOOP, path, "is a symbolic link");
    }
    if (S_ISDIR(st.st_mode)) {
        return file_fail(err, -EISDIR, path, "is a directory");
    }
    if (!S_ISREG(st.st_mode)) {
        return file_fail(err, -EINVAL, path, "is not a regular file");
    }
    if (faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) < 0) {
        return file_fail(err, -errno, path, "cannot read and write");
    }
    return 0;
}

static int exec_const(struct cadb *db, const char *sql, const char *step, struct certd_err *err)
{
    int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sql_fail(db, err, rc, step);
}

static int not_ours(struct cadb *db, struct certd_err *err, const char *why)
{
    return err_set(err, -EPROTO, CERTD_E_STORAGE, "%s is not a certd CA log (%s)", db->path, why);
}

/* The n integers of the one row a constant query returns (pragmas, counts). */
static int query_ints(struct cadb *db, const char *sql, int64_t *ret, size_t n,
                      struct certd_err *err)
{
    _cleanup_(cleanup_sqlite3_stmt) sqlite3_stmt *st = NULL;
    int rc;

    rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if ((rc & 0xff) == SQLITE_NOTADB) {
        return not_ours(db, err, "not an SQLite database");
    }
    if (rc != SQLITE_ROW) {
        return sql_fail(db, err, rc, "read header");
    }
    for (size_t i = 0; i < n; i++) {
        if (sqlite3_column_type(st, (int)i) != SQLITE_INTEGER) {
            return not_ours(db, err, "damaged header");
        }
        ret[i] = sqlite3_column_int64(st, (int)i);
    }
    return 0;
}

/*
 * Read the header: 1 for a file that is empty as SQLite sees it (no application_id, no
 * objects: ours to set up), 0 for a certd log of a schema we know, -EPROTO for the rest.
 */
static int header_check(struct cadb *db, struct certd_err *err)
{
    int64_t v[3], app_id, version;
    int r;

    /*
     * One statement, so one snapshot: read apart, another process creating the schema in
     * between would make an empty file look like someone else's database. The first read of
     * the file, too: a file that is no SQLite database fails here.
     */
    r = query_ints(db,
                   "SELECT a.application_id, u.user_version, (SELECT count(*) FROM sqlite_master)"
                   " FROM pragma_application_id AS a, pragma_user_version AS u",
                   v, ELEMENTSOF(v), err);
    if (r < 0) {
        return r;
    }
    app_id = v[0];
    version = v[1];
    if (app_id == 0) {
        if (v[2] == 0 && version == 0) {
            return 1;
        }
        return not_ours(db, err, "an SQLite database of another application");
    }
    if (app_id != CADB_APPLICATION_ID) {
        return not_ours(db, err, "an SQLite database of another application");
    }
    if (version > CADB_SCHEMA_VERSION) {
        return err_set(err, -EPROTO, CERTD_E_STORAGE,
                       "CA log %s was made by a newer certd (schema %" PRId64
                       ", this one knows %d)",
                       db->path, version, CADB_SCHEMA_VERSION);
    }
    if (version < 1) {
        return not_ours(db, err, "no schema version");
    }
    return 0;
}

static int marker_check(struct cadb *db, struct certd_err *err)
{
    _cleanup_(cleanup_sqlite3_stmt) sqlite3_stmt *st = NULL;
    const unsigned char *v;
    int rc;

    rc = sqlite3_prepare_v2(db->db, "SELECT value FROM meta WHERE key = '" CADB_MARKER_KEY "'", -1,
                            &st, NULL);
    if (rc == SQLITE_ERROR) {
        return not_ours(db, err, "no meta table");
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_DONE) {
        return not_ours(db, err, "no application marker");
    }
    if (rc != SQLITE_ROW) {
        return sql_fail(db, err, rc, "read meta");
    }
    v = sqlite3_column_text(st, 0);
    if (!v || strcmp((const char *)v, CADB_MARKER_VALUE) != 0) {
        return not_ours(db, err, "wrong application marker");
    }
    return 0;
}

/* Create schema v1 in one transaction, unless another process did it while we looked. */
static int schema_create(struct cadb *db, struct certd_err *err)
{
    _cleanup_(tx_abortp) struct cadb *tx = NULL;
    int r;

    r = exec_const(db, "BEGIN IMMEDIATE", "begin transaction", err);
    if (r < 0) {
        return r;
    }
    tx = db;
    r = header_check(db, err);
    if (r < 0) {
        return r;
    }
    if (r == 1) {
        r = exec_const(db, schema_v1, "create schema", err);
        if (r < 0) {
            return r;
        }
    }
    r = exec_const(db, "COMMIT", "commit", err);
    if (r < 0) {
        return r;
    }
    tx = NULL;
    return 0;
}

/* A tampered file must not run code of its own when we write: no triggers, no views. */
static int harden(struct cadb *db, struct certd_err *err)
{
    static const int off[] = { SQLITE_DBCONFIG_ENABLE_TRIGGER, SQLITE_DBCONFIG_ENABLE_VIEW,
                               SQLITE_DBCONFIG_TRUSTED_SCHEMA };
    int rc;

    for (size_t i = 0; i < ELEMENTSOF(off); i++) {
        rc = sqlite3_db_config(db->db, off[i], 0, NULL);
        if (rc != SQLITE_OK) {
            return sql_fail(db, err, rc, "configure");
        }
    }
    rc = sqlite3_db_config(db->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    if (rc != SQLITE_OK) {
        return sql_fail(db, err, rc, "configure");
    }
    (void)sqlite3_limit(db->db, SQLITE_LIMIT_LENGTH, CADB_SQL_LENGTH_MAX);
    (void)sqlite3_extended_result_codes(db->db, 1);
    rc = sqlite3_busy_timeout(db->db, CADB_BUSY_TIMEOUT_MS);
    return rc == SQLITE_OK ? 0 : sql_fail(db, err, rc, "set busy timeout");
}

static int journal_wal(struct cadb *db, struct certd_err *err)
{
    _cleanup_(cleanup_sqlite3_stmt) sqlite3_stmt *st = NULL;
    const unsigned char *mode;
    int rc;

    rc = sqlite3_prepare_v2(db->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_ROW) {
        return sql_fail(db, err, rc, "set journal mode");
    }
    /* SQLite answers with the mode in force, which is not WAL where WAL is impossible. */
    mode = sqlite3_column_text(st, 0);
    if (!mode || strcmp((const char *)mode, "wal") != 0) {
        return err_set(err, -EIO, CERTD_E_STORAGE,
                       "CA log %s: write-ahead logging is not available (journal mode %s)",
                       db->path, mode ? (const char *)mode : "unknown");
    }
    return 0;
}

int cadb_open(const char *path, struct cadb **ret, struct certd_err *err)
{
    _cleanup_(cleanup_cadb) struct cadb *db = NULL;
    int r, rc;

    assert_return(path && ret, -EINVAL);
    assert_return(path[0] != '\0', -EINVAL);

    (void)pthread_once(&sqlite_once, sqlite_load);
    if (sqlite_load_r < 0) {
        return err_set(err, sqlite_load_r, CERTD_E_UNAVAILABLE, "%s", sqlite_load_msg);
    }
    db = calloc(1, sizeof(*db));
    if (!db) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    db->path = strdup(path);
    if (!db->path) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    r = file_prepare(path, err);
    if (r < 0) {
        return r;
    }
    /* No SQLITE_OPEN_CREATE: the file exists now, and SQLite must not make one elsewhere. */
    rc = sqlite3_open_v2(
        path, &db->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK) {
        if (!db->db) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        return sql_fail(db, err, rc, "open");
    }
    r = harden(db, err);
    if (r < 0) {
        return r;
    }
    /* Look before writing anything: a foreign database must be left as it was. */
    r = header_check(db, err);
    if (r < 0) {
        return r;
    }
    r = exec_const(db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", "configure", err);
    if (r < 0) {
        return r;
    }
    /*
     * Schema first, WAL second: the switch to WAL then records itself in the file's own header,
     * where every other process sees it. Switched first, a new log's schema would sit in the
     * -wal file alone, next to an empty database file that another process opening it at the
     * same moment takes for a rollback-journal database, and waits on for good.
     */
    r = schema_create(db, err);
    if (r < 0) {
        return r;
    }
    r = journal_wal(db, err);
    if (r < 0) {
        return r;
    }
    r = marker_check(db, err);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < STMT_MAX; i++) {
        rc = sqlite3_prepare_v3(db->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->stmts[i],
                                NULL);
        if (rc == SQLITE_ERROR) {
            return not_ours(db, err, "damaged schema");
        }
        if (rc != SQLITE_OK) {
            return sql_fail(db, err, rc, "prepare");
        }
    }
    *ret = TAKE_PTR(db);
    return 0;
}

struct cadb *cadb_close(struct cadb *db)
{
    if (!db) {
        return NULL;
    }
    for (size_t i = 0; i < STMT_MAX; i++) {
        (void)sqlite3_finalize(db->stmts[i]);
    }
    if (db->db) {
        /* The last connection checkpoints the WAL into the file and removes -wal and -shm. */
        int rc = sqlite3_close(db->db);
        if (rc != SQLITE_OK) {
            log_debug("cadb: %s: close: %s", db->path, sqlite3_errstr(rc));
            (void)sqlite3_close_v2(db->db);
        }
    }
    free(db->path);
    free(db);
    return NULL;
}

/* ---- writing ---- */

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    size_t len = strlen(s);
    /* Callers checked len against CADB_TEXT_MAX / CADB_PEM_MAX: it fits an int. */
    return sqlite3_bind_text(st, i, s, (int)len, SQLITE_STATIC);
}

/* Every check cadb_add makes before it writes. */
static int cert_check(const struct cadb_cert *c, size_t i, struct certd_err *err)
{
    const struct {
        const char *name;
        const char *value;
        size_t max;
    } texts[] = {
        { "subject", c->subject, CADB_TEXT_MAX },
        { "alternative names", c->sans, CADB_TEXT_MAX },
        { "requester", c->requester, CADB_TEXT_MAX },
        { "certificate", c->pem, CADB_PEM_MAX },
    };
    size_t len = strnlen(c->serial, CADB_SERIAL_MAX);

    if (len == CADB_SERIAL_MAX || !serial_is_canonical(c->serial, len)) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "record %zu: serial is not upper-case hex without leading zeros", i);
    }
    if (!c->subject || !c->pem || c->pem[0] == '\0') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_MISSING,
                       "record %zu (serial %s): subject or certificate missing", i, c->serial);
    }
    for (size_t k = 0; k < ELEMENTSOF(texts); k++) {
        if (texts[k].value && strnlen(texts[k].value, texts[k].max + 1) > texts[k].max) {
            return err_set(err, -E2BIG, CERTD_E_INPUT_TOO_LARGE,
                           "record %zu (serial %s): %s is over %zu bytes", i, c->serial,
                           texts[k].name, texts[k].max);
        }
    }
    return 0;
}

/* The insert of record i failed on the primary key: say whether the batch or the log has it. */
static int duplicate(const struct cadb_cert *const *certs, size_t i, struct certd_err *err)
{
    for (size_t j = 0; j < i; j++) {
        if (strcmp(certs[j]->serial, certs[i]->serial) == 0) {
            return err_set(err, -EEXIST, CERTD_E_DUPLICATE,
                           "serial %s appears twice in the batch (records %zu and %zu)",
                           certs[i]->serial, j, i);
        }
    }
    return err_set(err, -EEXIST, CERTD_E_DUPLICATE, "serial %s is already in the issuance log",
                   certs[i]->serial);
}

static int insert_one(struct cadb *db, const struct cadb_cert *c)
{
    _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_INSERT);
    int rc;

    rc = bind_text(st, 1, c->serial);
    if (rc == SQLITE_OK) {
        rc = bind_text(st, 2, c->subject);
    }
    if (rc == SQLITE_OK) {
        rc = bind_text(st, 3, c->sans ? c->sans : "");
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 4, c->not_before);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 5, c->not_after);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 6, c->issued_at);
    }
    if (rc == SQLITE_OK) {
        rc = bind_text(st, 7, c->requester ? c->requester : "");
    }
    if (rc == SQLITE_OK) {
        rc = bind_text(st, 8, c->pem);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    return rc;
}

int cadb_add(struct cadb *db, const struct cadb_cert *const *certs, size_t n, struct certd_err *err)
{
    _cleanup_(tx_abortp) struct cadb *tx = NULL;
    int r;

    assert_return(db, -EINVAL);
    assert_return(certs || n == 0, -EINVAL);
    if (n == 0) {
        return 0;
    }
    if (n > CADB_BATCH_MAX) {
        return err_set(err, -E2BIG, CERTD_E_TOO_MANY_VALUES, "%zu records in one batch, at most %u",
                       n, CADB_BATCH_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        if (!certs[i]) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_MISSING, "record %zu missing", i);
        }
        r = cert_check(certs[i], i, err);
        if (r < 0) {
            return r;
        }
    }

    r = tx_begin(db, err);
    if (r < 0) {
        return r;
    }
    tx = db;
    for (size_t i = 0; i < n; i++) {
        int rc = insert_one(db, certs[i]);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
            return duplicate(certs, i, err);
        }
        if (rc == SQLITE_CONSTRAINT_CHECK || rc == SQLITE_CONSTRAINT_NOTNULL) {
            /* cert_check let through what the schema refuses: a bug, said as such. */
            return err_set(err, -EINVAL, CERTD_E_INTERNAL,
                           "serial %s: record refused by the log's schema", certs[i]->serial);
        }
        if (rc != SQLITE_DONE) {
            return sql_fail(db, err, rc, "insert");
        }
    }
    return tx_commit(&tx, err);
}

/* The canonical spelling of a caller's serial, or -EINVAL. */
static int serial_arg(const char *serial, char buf[CADB_SERIAL_MAX])
{
    assert_return(serial, -EINVAL);
    return cadb_serial_parse(serial, buf);
}

int cadb_has_serial(struct cadb *db, const char *serial)
{
    char key[CADB_SERIAL_MAX];
    int r, rc;

    assert_return(db, -EINVAL);
    r = serial_arg(serial, key);
    if (r < 0) {
        return r;
    }
    _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_HAS);
    rc = bind_text(st, 1, key);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        return 1;
    }
    if (rc == SQLITE_DONE) {
        return 0;
    }
    return sql_fail(db, NULL, rc, "look up serial");
}

int cadb_revoke(struct cadb *db, const char *serial, int reason, int64_t when,
                struct certd_err *err)
{
    _cleanup_(tx_abortp) struct cadb *tx = NULL;
    char key[CADB_SERIAL_MAX];
    int64_t status;
    int r, rc;

    assert_return(db, -EINVAL);
    r = serial_arg(serial, key);
    if (r < 0) {
        return err_set_field(err, r, CERTD_E_FIELD_INVALID, "SerialNumber",
                             "not a certificate serial number (hex digits expected)");
    }
    if (!cadb_reason_name(reason)) {
        return err_set_field(err, -EINVAL, CERTD_E_FIELD_INVALID, "RevocationReason",
                             "revocation reason %d is not one of RFC 5280's", reason);
    }

    r = tx_begin(db, err);
    if (r < 0) {
        return r;
    }
    tx = db;
    {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_STATUS);
        rc = bind_text(st, 1, key);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
        }
        if (rc == SQLITE_DONE) {
            return err_set(err, -ENOENT, CERTD_E_NOT_FOUND, "serial %s is not in the issuance log",
                           key);
        }
        if (rc != SQLITE_ROW) {
            return sql_fail(db, err, rc, "look up serial");
        }
        status = sqlite3_column_int64(st, 0);
    }
    if (status == CADB_REVOKED) {
        return err_set(err, -EALREADY, CERTD_E_DUPLICATE, "serial %s is already revoked", key);
    }
    {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_REVOKE);
        rc = bind_text(st, 1, key);
        if (rc == SQLITE_OK) {
            rc = sqlite3_bind_int(st, 2, reason);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_bind_int64(st, 3, when);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
        }
        if (rc != SQLITE_DONE) {
            return sql_fail(db, err, rc, "revoke");
        }
        if (sqlite3_changes(db->db) != 1) {
            /* The write lock is ours since BEGIN IMMEDIATE: the row cannot have changed. */
            return err_set(err, -EIO, CERTD_E_INTERNAL, "serial %s: revocation not recorded", key);
        }
    }
    return tx_commit(&tx, err);
}

/* ---- reading ---- */

int cadb_get(struct cadb *db, const char *serial, struct cadb_cert **ret)
{
    char key[CADB_SERIAL_MAX];
    struct cadb_cert *c;
    int r, rc;

    assert_return(db && ret, -EINVAL);
    r = serial_arg(serial, key);
    if (r < 0) {
        return r;
    }
    _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_GET);
    rc = bind_text(st, 1, key);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_DONE) {
        return -ENOENT;
    }
    if (rc != SQLITE_ROW) {
        return sql_fail(db, NULL, rc, "read record");
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    r = row_read(st, c);
    if (r < 0) {
        free(c);
        log_debug("cadb: %s: record %s cannot be read back", db->path, key);
        return r;
    }
    *ret = c;
    return 0;
}

int cadb_each(struct cadb *db, enum cadb_filter filter, cadb_each_fn fn, void *arg)
{
    _cleanup_(cleanup_sqlite3_stmt) sqlite3_stmt *st = NULL;
    int r, rc;

    assert_return(db && fn, -EINVAL);
    assert_return(filter == CADB_ALL || filter == CADB_ONLY_REVOKED, -EINVAL);

    rc = sqlite3_prepare_v2(db->db, each_sql[filter], -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return sql_fail(db, NULL, rc, "list records");
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        _cleanup_(cert_clearp) struct cadb_cert c = { 0 };
        r = row_read(st, &c);
        if (r < 0) {
            log_debug("cadb: %s: a record cannot be read back", db->path);
            return r;
        }
        r = fn(&c, arg);
        if (r < 0) {
            return r;
        }
    }
    return rc == SQLITE_DONE ? 0 : sql_fail(db, NULL, rc, "list records");
}

int cadb_count(struct cadb *db, uint64_t *ret)
{
    int rc;

    assert_return(db && ret, -EINVAL);
    _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_COUNT);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        return sql_fail(db, NULL, rc, "count records");
    }
    int64_t v = sqlite3_column_int64(st, 0);
    if (v < 0) {
        return -EBADMSG;
    }
    *ret = (uint64_t)v;
    return 0;
}

int cadb_next_crl_number(struct cadb *db, uint64_t *ret)
{
    _cleanup_(tx_abortp) struct cadb *tx = NULL;
    int64_t last;
    int r, rc;

    assert_return(db && ret, -EINVAL);
    r = tx_begin(db, NULL);
    if (r < 0) {
        return r;
    }
    tx = db;
    {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_CRL_GET);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            return -EBADMSG; /* the row is made with the schema and never deleted */
        }
        if (rc != SQLITE_ROW) {
            return sql_fail(db, NULL, rc, "read CRL number");
        }
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER) {
            return -EBADMSG;
        }
        last = sqlite3_column_int64(st, 0);
    }
    /* RFC 5280 §5.2.3: monotonically increasing, and never reused. */
    if (last < 0 || last == INT64_MAX) {
        return -EBADMSG;
    }
    {
        _cleanup_(stmt_resetp) sqlite3_stmt *st = stmt_get(db, STMT_CRL_SET);
        rc = sqlite3_bind_int64(st, 1, last + 1);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
        }
        if (rc != SQLITE_DONE) {
            return sql_fail(db, NULL, rc, "store CRL number");
        }
    }
    r = tx_commit(&tx, NULL);
    if (r < 0) {
        return r;
    }
    *ret = (uint64_t)last + 1u;
    return 0;
}
