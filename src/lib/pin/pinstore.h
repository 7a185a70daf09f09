/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pin stores (issue #6, seed 004 "PKI Reduce"): the public keys one trust domain accepts, each
 * as the SPKI pin of pin.h, mapped to the user name and Redfish role a peer holding that key
 * acts as. certd checks a client certificate against its listener's store (chain, issuer and
 * dates are not looked at: the link needs no expiry or revocation); certctl pin edits a store.
 *
 * File: JSON (jansson), at most PINSTORE_FILE_MAX bytes:
 *   {"Version": 1, "NextId": 4, "Pins": [
 *     {"Id": 3, "Pin": "sha256//BASE64", "Label": "console-a", "UserName": "console",
 *      "RoleId": "Operator", "Created": "2026-11-22T18:00:00Z", "Note": "rack 4"}]}
 * "Note" may be absent (no note). Pins are written in the canonical "sha256//" form; the parser
 * takes that form only (hex is an input form of the API and the CLI, not of the file). Unknown
 * members are refused: a file we cannot fully understand is not trusted partly. Ids are
 * 1..PINSTORE_ID_MAX and never reused: NextId only grows, and is kept in the file.
 *
 * Invariants of a struct pinstore: every entry valid (pin, label, user name per
 * users_check_name, role in range, note), pins and ids unique, ids below next_id, at most
 * PINSTORE_MAX entries, in the order they were added (ids increasing).
 *
 * Writers serialise as users files do: an exclusive flock(2) of "<file>.lock" (pinstore_lock)
 * held from pinstore_load to the end of pinstore_save, so that certd's API and certctl never
 * lose one another's change; readers (certd reloading after a change) take no lock and see the
 * old or the new file (store_write_atomic). Pins are public, the mapping to accounts is not
 * everybody's business: the file is 0600.
 * Not thread-safe per object; a struct pinstore nobody changes may be read from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error/error.h"
#include "pin/pin.h"
#include "users/users.h"
#include "util/cleanup.h"
#include "util/span.h"

/*
 * The largest store file: what the writer makes of PINSTORE_MAX entries with the longest
 * label and note, every byte of them escaped (910 bytes an entry; pinstore.c checks the
 * arithmetic at compile time), fits with room to spare; anything larger is not ours.
 */
#define PINSTORE_FILE_MAX (1024u * 1024u)
/* Entries in one store: consoles, managers and their next keys; bounds lookup and load work. */
#define PINSTORE_MAX 1000u
/* Longest label and note, in bytes of UTF-8. */
#define PINSTORE_LABEL_MAX 64u
#define PINSTORE_NOTE_MAX  256u
/* Largest id (ids are shown in URIs; 9 digits always fit in a uint32_t). */
#define PINSTORE_ID_MAX 999999999u
/* The lock file of a store is its path with this suffix. */
#define PINSTORE_LOCK_SUFFIX ".lock"

struct pin_entry {
    uint32_t id;
    struct pin pin;
    char label[PINSTORE_LABEL_MAX + 1]; /* 1..PINSTORE_LABEL_MAX bytes */
    char user[USERS_NAME_MAX + 1];      /* users_check_name-valid; need not be in the users file */
    enum user_role role;
    int64_t created;                  /* seconds since the epoch (UTC), whole seconds */
    char note[PINSTORE_NOTE_MAX + 1]; /* "" when there is none */
};

/* Read-only for callers: change it through the functions below only. */
struct pinstore {
    struct pin_entry *v; /* n entries, ids increasing */
    size_t n;
    uint32_t next_id; /* 1.. ; the id the next pinstore_add gives */
};

/* An empty store (next_id 1), or NULL when out of memory. */
struct pinstore *pinstore_new(void);
/* Free; accepts NULL; returns NULL. */
struct pinstore *pinstore_free(struct pinstore *ps);
DEFINE_CLEANUP_STRUCT(pinstore, pinstore_free)

/*
 * A label or a note (borrowed) as the store takes them: valid UTF-8 (shortest form, no
 * surrogates), no control characters (C0, DEL, C1), no invisible or direction-changing format
 * characters (U+200B..U+200F, U+2028..U+202E, U+2060, U+2066..U+2069, U+FEFF: look-alike
 * labels), no leading or trailing blank; a label
 * 1..PINSTORE_LABEL_MAX bytes, a note 0..PINSTORE_NOTE_MAX. Returns 0, or -EINVAL with
 * CERTD_E_FIELD_INVALID / -E2BIG with CERTD_E_FIELD_TOO_LONG; the message names the field
 * ("label", "note") and what is wrong, never quoting the text; err->field is "Label" / "Note".
 * A blank is U+0020. err nullable.
 */
_must_check_ int pinstore_check_label(const char *label, struct certd_err *err);
_must_check_ int pinstore_check_note(const char *note, struct certd_err *err);

/*
 * Parse the bytes of a store file (pure: no I/O; filename (nullable) only names the file in
 * messages: "FILE: Pins[2].Label: ..."). Entries may be listed in any order; the store has them
 * by increasing id. On success *ret is a new owned store. Errors, nothing returned:
 *  -E2BIG   CERTD_E_INPUT_TOO_LARGE (over PINSTORE_FILE_MAX), CERTD_E_TOO_MANY_VALUES (over
 *           PINSTORE_MAX entries), CERTD_E_FIELD_TOO_LONG;
 *  -EBADMSG CERTD_E_INPUT_GARBAGE (not JSON, not an object, a NUL byte, nested deeper than
 *           the format),
 *           CERTD_E_FIELD_MISSING, CERTD_E_FIELD_INVALID (a wrong type, a bad pin, label, user
 *           name, role, time, id, an id not below NextId, an unknown member, an unsupported
 *           Version), CERTD_E_DUPLICATE (a pin or an id twice);
 *  -ENOMEM.
 */
_must_check_ int pinstore_parse(struct span data, const char *filename, struct pinstore **ret,
                                struct certd_err *err);

/*
 * Read and parse the store at path: store_read_trusted(path, "pin store", PINSTORE_FILE_MAX,
 * 022), i.e. symlinks not followed and the checks made on the descriptor that is read.
 * -ENOENT with CERTD_E_NOT_FOUND when there is no file (a store nobody wrote yet: callers
 * treat it as empty); -ELOOP with CERTD_E_STORAGE for a symlink; -EPERM with
 * CERTD_E_POLICY_FORBIDS for a file that is not a regular file, owned by neither the
 * effective uid nor root, or writable by group or others (whoever can change it decides who
 * gets in: the message says what to fix); -E2BIG with CERTD_E_INPUT_TOO_LARGE; other read
 * errors -errno with CERTD_E_STORAGE; pinstore_parse's errors. Takes no lock.
 */
_must_check_ int pinstore_load(const char *path, struct pinstore **ret, struct certd_err *err);

/*
 * pinstore_load, but a store nobody wrote yet (-ENOENT) is a new empty one (next_id 1; err
 * cleared) and -ENOMEM then comes with CERTD_E_NO_MEMORY; every other error is
 * pinstore_load's. What certd and certctl read before a change or a listing.
 */
_must_check_ int pinstore_load_or_empty(const char *path, struct pinstore **ret,
                                        struct certd_err *err);

/*
 * Make the directory of the store file at path (borrowed) with its missing parents, mode 0700
 * (store_mkdir_p(dir, STORE_MODE_DIR)); an existing one must belong to the effective uid and
 * not be writable by group or others, or whoever else can write there could put their own
 * store in place. A path without a directory (the working directory) or directly under "/"
 * needs nothing. Returns 0; -EPERM with CERTD_E_POLICY_FORBIDS for an existing directory that
 * is not ours or is writable by others ("must belong to uid N ..."); -ENOMEM with
 * CERTD_E_NO_MEMORY; -ENOTDIR (a component is a file) or another -errno with CERTD_E_STORAGE
 * ("cannot make the directory DIR: reason"). Thread-safe.
 */
_must_check_ int pinstore_mkdir(const char *path, struct certd_err *err);

/*
 * Write ps to path atomically (store_write_atomic), mode 0600, making the directory
 * (pinstore_mkdir) when it is missing. The text is deterministic: entries by id, members in
 * the order shown above, two-space indentation, a final newline; a store that keeps the
 * invariants above always fits in PINSTORE_FILE_MAX, so what is saved always loads (a text
 * over it would be refused before anything is written: -E2BIG with CERTD_E_LIMIT_REACHED).
 * Returns 0, -ENOMEM, pinstore_mkdir's errors, or -errno with CERTD_E_STORAGE; -EPERM with
 * CERTD_E_POLICY_FORBIDS when the file (or, while there is none, its directory) belongs to
 * another uid (store_check_writer, as users_save: the replacement would be ours, and its owner
 * could no longer read it). Callers hold pinstore_lock(path) from their pinstore_load until
 * this returns.
 */
_must_check_ int pinstore_save(const struct pinstore *ps, const char *path, struct certd_err *err);

/*
 * Lock the store at path for a change: store_lock_file(path, PINSTORE_LOCK_SUFFIX), i.e. an
 * exclusive flock(2) of "path.lock" (created 0600, O_NOFOLLOW, never deleted; its directory
 * made by pinstore_mkdir when missing), waiting for any other holder. Before anything is
 * created, refuses what pinstore_save would refuse: -EPERM with CERTD_E_POLICY_FORBIDS when
 * the store file, or while there is none its directory, belongs to another uid
 * (store_check_writer: "run this as that user (e.g. with sudo -u)"), so that root never leaves
 * a lock file or directory certd cannot open. *ret_fd owns the lock; release it with
 * pinstore_unlock. 0, -ENOMEM, pinstore_mkdir's errors, -errno with CERTD_E_STORAGE. Blocks:
 * not for an event loop thread.
 */
_must_check_ int pinstore_lock(const char *path, int *ret_fd, struct certd_err *err);
/* Release (fd < 0 ignored); returns -EBADF: fd = pinstore_unlock(fd). */
int pinstore_unlock(int fd);

/*
 * Add pin for user (users_check_name) with role, label and note (nullable or "": none), created
 * at now (seconds since the epoch, 0..253402300799, i.e. up to 9999-12-31T23:59:59Z: the
 * clock's time, checked with assert_return). All strings are borrowed (copied). On success the
 * new entry's id in *ret_id (nullable). Errors name the request field in err->field
 * ("UserName", "RoleId", "Label", "Note", "Pin" for a duplicate).
 * Errors, ps unchanged: -EEXIST with CERTD_E_DUPLICATE ("pin sha256//... is already in the
 * store as id N (LABEL)" -- the label is the store's own, already checked); -E2BIG with
 * CERTD_E_LIMIT_REACHED (PINSTORE_MAX entries, or next_id past PINSTORE_ID_MAX); the errors of
 * the checks (user name, label, note; role out of range: -EINVAL CERTD_E_FIELD_INVALID);
 * -ENOMEM.
 */
_must_check_ int pinstore_add(struct pinstore *ps, const struct pin *pin, const char *label,
                              const char *user, enum user_role role, const char *note, int64_t now,
                              uint32_t *ret_id, struct certd_err *err);

/* Remove entry id: 0, or -ENOENT (ps unchanged). */
_must_check_ int pinstore_remove(struct pinstore *ps, uint32_t id);

/* The entry holding pin / with id (borrowed, valid until ps changes), or NULL. */
const struct pin_entry *pinstore_find(const struct pinstore *ps, const struct pin *pin);
const struct pin_entry *pinstore_find_id(const struct pinstore *ps, uint32_t id);

/*
 * Parse an id as URIs and the CLI give it: 1..PINSTORE_ID_MAX in decimal without sign, blanks
 * or leading zeros. 0 or -EINVAL (*ret untouched).
 */
_must_check_ int pinstore_parse_id(const char *s, uint32_t *ret);
