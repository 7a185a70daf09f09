/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CA's issuance log (issue #4): every certificate the CA handed out, in SQLite
 * (STATE_DIR/ca.db), with its status. A record is durable when cadb_add returns: the database
 * runs in WAL mode with synchronous=FULL, so a commit survives a power cut. Issuing many
 * certificates at once commits them in one transaction (cadb_add with n > 1): one fsync for
 * the batch, all or none.
 *
 * Serials are the certificate's serialNumber as upper-case hex without leading zeros (at
 * least one digit), as cadb_serial_hex makes them; they are unique in the log (a UNIQUE
 * index), which is what makes a serial "unique in the issuance log".
 *
 * Thread-safety: one struct cadb is used by one thread at a time (certd: its serial worker
 * lane). Several processes may open the same file (certd and `certctl ca`): SQLite's locking
 * serialises them, waiting up to CADB_BUSY_TIMEOUT_MS for the other's transaction.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1.h>

#include "error/error.h"
#include "util/cleanup.h"

/* Opened with dlopen by the first cadb_open (util/dlib.h); a different major version has a
 * different ABI and is not tried. */
#define CADB_SQLITE_SONAME   "libsqlite3.so.0"
#define CADB_SERIAL_MAX      41u /* 20 octets in hex + NUL (RFC 5280 §4.1.2.2) */
#define CADB_BUSY_TIMEOUT_MS 5000
#define CADB_SCHEMA_VERSION  1
/* SQLite's header field application_id of a certd CA log ("crtd"); no other file has it. */
#define CADB_APPLICATION_ID 0x63727464

/*
 * Bounds on what one record may hold (cadb_add: -E2BIG, CERTD_E_INPUT_TOO_LARGE), and on what
 * a record read back may hold (a larger one is damage: -EBADMSG). A subject is at most
 * CERTD_DN_STR_MAX (2 KiB) and SANs CERTD_SANS_MAX x CERTD_SAN_LEN_MAX (~16 KiB) when certd makes
 * them; a client certificate in PEM is 1-3 KiB. 64 KiB each leaves room for certificates
 * signed by an exec: signer while keeping a record, and any read of one, bounded.
 */
#define CADB_TEXT_MAX (64u * 1024u) /* subject, sans, requester: bytes without the NUL */
#define CADB_PEM_MAX  (64u * 1024u)
/* Records in one cadb_add: a batch is one transaction held in memory by SQLite (-E2BIG). */
#define CADB_BATCH_MAX 4096u
/* Longest serial spelling cadb_serial_parse reads (colons and leading zeros included). */
#define CADB_SERIAL_INPUT_MAX 128u

/* RFC 5280 §5.3.1 CRLReason values that an admin may give (7 is not used by the RFC). */
enum cadb_reason {
    CADB_REASON_UNSPECIFIED = 0,
    CADB_REASON_KEY_COMPROMISE = 1,
    CADB_REASON_CA_COMPROMISE = 2,
    CADB_REASON_AFFILIATION_CHANGED = 3,
    CADB_REASON_SUPERSEDED = 4,
    CADB_REASON_CESSATION_OF_OPERATION = 5,
    CADB_REASON_CERTIFICATE_HOLD = 6,
    CADB_REASON_PRIVILEGE_WITHDRAWN = 9,
    CADB_REASON_AA_COMPROMISE = 10,
};

enum cadb_status { CADB_VALID, CADB_REVOKED };

struct cadb_cert {
    char serial[CADB_SERIAL_MAX];
    char *subject; /* RFC 2253 one-line form */
    char *sans;    /* "DNS:a, IP:1.2.3.4" (OpenSSL's print form), "" when none */
    int64_t not_before, not_after, issued_at; /* Unix seconds */
    char *requester; /* the user who asked; "" when not known (certctl ca sign: "local") */
    char *pem;       /* the certificate as handed out */
    enum cadb_status status;
    int reason;         /* enum cadb_reason, when revoked */
    int64_t revoked_at; /* when revoked */
};

struct cadb;

/*
 * Open (creating it 0600 when missing, and its schema) the log at path. Refuses a file that
 * is not a certd CA database or has a newer schema (-EPROTO, CERTD_E_STORAGE with a message
 * naming the file), and a directory or unreadable file (-errno, CERTD_E_STORAGE). 0 or -errno.
 * Also: a symbolic link (-ELOOP), a directory (-EISDIR), another non-regular file (-EINVAL), a
 * file locked by another writer for longer than CADB_BUSY_TIMEOUT_MS (-EBUSY,
 * CERTD_E_UNAVAILABLE). The -wal and -shm files SQLite keeps next to path get path's mode
 * (0600 for a log made here), whatever the umask. An existing file keeps its mode.
 * The file is checked with stat, never opened by this module outside SQLite: closing another
 * descriptor of it would drop SQLite's POSIX locks of every handle in the process.
 */
_must_check_ int cadb_open(const char *path, struct cadb **ret, struct certd_err *err);
struct cadb *cadb_close(struct cadb *db);
DEFINE_CLEANUP_STRUCT(cadb, cadb_close)

/*
 * The serial of a certificate as the log keys it. 0, or -EINVAL (negative, over 20 octets of
 * magnitude, or not an INTEGER), -ENOMEM. buf is written only on success. Thread-safe.
 */
_must_check_ int cadb_serial_hex(const ASN1_INTEGER *serial, char buf[CADB_SERIAL_MAX]);

/*
 * A serial as a person types it (untrusted): hex digits in either case, optionally with ':'
 * between digit pairs as `openssl x509 -text` prints them, leading zeros allowed; at most
 * CADB_SERIAL_INPUT_MAX characters. Writes the log's spelling ("0a:1B" -> "A1B") to buf.
 * 0 or -EINVAL (buf untouched). cadb_has_serial, cadb_get and cadb_revoke accept any such
 * spelling through this function. Thread-safe.
 */
_must_check_ int cadb_serial_parse(const char *s, char buf[CADB_SERIAL_MAX]);

/*
 * Add n records in one transaction (status taken as valid whatever the records say). All or
 * none: -EEXIST with CERTD_E_DUPLICATE naming the serial when one is in the log already (or
 * twice in the batch), -EIO/-ENOSPC with CERTD_E_STORAGE. Durable on return.
 * Records are checked before anything is written: serial in the log's spelling (-EINVAL,
 * CERTD_E_FIELD_INVALID), subject and pem not NULL, pem not empty (-EINVAL), strings within
 * CADB_TEXT_MAX / CADB_PEM_MAX (-E2BIG, CERTD_E_INPUT_TOO_LARGE), n <= CADB_BATCH_MAX (-E2BIG,
 * CERTD_E_TOO_MANY_VALUES). sans and requester may be NULL (stored as ""). n == 0 does nothing.
 * Another writer holding the log longer than CADB_BUSY_TIMEOUT_MS: -EBUSY, CERTD_E_UNAVAILABLE.
 * The records are borrowed for the call. Messages name serials, never the PEM.
 */
_must_check_ int cadb_add(struct cadb *db, const struct cadb_cert *const *certs, size_t n,
                          struct certd_err *err);

/* 1 when serial is in the log, 0 when not, -errno (-EINVAL: not a serial, see cadb_serial_parse).
 */
_must_check_ int cadb_has_serial(struct cadb *db, const char *serial);

/*
 * Revoke serial at `when` for reason. -ENOENT (CERTD_E_NOT_FOUND) when it is not in the log,
 * -EALREADY (CERTD_E_DUPLICATE, "already revoked") when it is revoked already,
 * -EINVAL (CERTD_E_FIELD_INVALID) for a reason outside enum cadb_reason. Durable on return.
 * serial may be spelled as cadb_serial_parse reads it; any other string is -EINVAL
 * (CERTD_E_FIELD_INVALID, field "SerialNumber"; a bad reason names "RevocationReason").
 * -EBUSY (CERTD_E_UNAVAILABLE) past the busy timeout, -EIO/-ENOSPC (CERTD_E_STORAGE).
 */
_must_check_ int cadb_revoke(struct cadb *db, const char *serial, int reason, int64_t when,
                             struct certd_err *err);

/*
 * One record, owned (cadb_cert_free). -ENOENT when not there, -EINVAL for a string that is not
 * a serial, -EBADMSG for a record that breaks the bounds above (a damaged or tampered file).
 */
_must_check_ int cadb_get(struct cadb *db, const char *serial, struct cadb_cert **ret);
void cadb_cert_free(struct cadb_cert *c);
DEFINE_CLEANUP_STRUCT(cadb_cert, cadb_cert_free)

/*
 * Call fn for each record, oldest issued first (ties: by serial), or only the revoked ones
 * (by revocation time). fn returns 0 to go on or a negative errno to stop (returned).
 * The record passed is valid only during the call. The walk reads one snapshot: records
 * added meanwhile (by fn through another handle, or by another process) are not seen. fn may
 * read the log through db (cadb_get, cadb_count, cadb_each) but must not write through db.
 * -EBADMSG for a damaged record (the walk stops there).
 */
enum cadb_filter { CADB_ALL, CADB_ONLY_REVOKED };
typedef int (*cadb_each_fn)(const struct cadb_cert *c, void *arg);
_must_check_ int cadb_each(struct cadb *db, enum cadb_filter filter, cadb_each_fn fn, void *arg);

/* Records in the log (all statuses). */
_must_check_ int cadb_count(struct cadb *db, uint64_t *ret);

/*
 * The next CRL number (1, 2, ...), taken durably: never handed out twice, also across handles
 * and processes. 0 or -errno (-EBUSY, -EIO, -ENOSPC; -EBADMSG for a damaged counter).
 */
_must_check_ int cadb_next_crl_number(struct cadb *db, uint64_t *ret);

/* The reason's name as RFC 5280 spells it ("keyCompromise"), NULL for an invalid one; and back
 * (-EINVAL). */
const char *cadb_reason_name(int reason);
_must_check_ int cadb_reason_from_name(const char *name, int *ret);
