/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The users file: certd's local accounts, one per line "NAME:ROLE:HASH", with '#' comment
 * lines and blank lines allowed. NAME is 1..USERS_NAME_MAX of [a-z_][a-z0-9_.-]*, ROLE a
 * Redfish role (Administrator, Operator, ReadOnly), HASH a yescrypt crypt(3) hash ("$y$") with
 * exactly the parameters libxcrypt gives new hashes by default ("j9T"). Anything else (other
 * schemes, other costs) is refused when the file is loaded, with the line named: every hash
 * then costs the same to check, so the time of a login reveals nothing, and nobody can make
 * logins expensive with a costly hash.
 *
 * Invariants of a struct users: every name is valid and unique, every role is in range, every
 * hash has the accepted scheme and parameters, at most USERS_MAX users. Changes are all-or-nothing
 * in memory; users_save() replaces the file atomically with mode 0600 (comments are not kept).
 * Passwords only ever travel in a struct secret and are never copied into plain strings or
 * messages; the memory crypt(3) worked in is wiped.
 *
 * Writers serialise on an exclusive flock(2) of "<users file>.lock" (users_lock), held from
 * load to the end of save: two changes never lose one another. The lock file is never deleted.
 * Not thread-safe per object; hashing takes tens of milliseconds and 16 MiB (yescrypt j9T).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error/error.h"
#include "util/cleanup.h"
#include "util/secret.h"
#include "util/span.h"

/* The users file is small (1000 users of ~110 bytes); anything larger is not ours. */
#define USERS_FILE_MAX (256u * 1024u)
/* Accounts in one file: a BMC has a handful; the cap bounds load and lookup work. */
#define USERS_MAX 1000u
/* Longest user name (the usual Linux login name bound). */
#define USERS_NAME_MAX 32u
/* Longest stored hash: yescrypt is ~73 characters, sha512crypt with rounds ~120. */
#define USERS_HASH_MAX 255u
/* Longest line: a name, the longest role, a hash and two colons fit well below it. */
#define USERS_LINE_MAX 512u
/* Password policy, in bytes of UTF-8. */
#define USERS_PASSWORD_MIN 12u
#define USERS_PASSWORD_MAX 128u
/* The lock file of a users file is its path with this suffix. */
#define USERS_LOCK_SUFFIX ".lock"
/* The default location (certctl); certd uses STATE_DIR/users. */
#define USERS_FILE_DEFAULT "/var/lib/certd/users"

/* Redfish roles (DSP8011 Redfish standard roles). */
enum user_role { USER_ROLE_ADMINISTRATOR, USER_ROLE_OPERATOR, USER_ROLE_READONLY, USER_ROLE_MAX };

struct user {
    char name[USERS_NAME_MAX + 1];
    enum user_role role;
    char *hash; /* owned; a crypt(3) hash of an accepted scheme */
};

/* Read-only for callers: change it through the functions below only. */
struct users {
    struct user *v; /* n entries, in file order */
    size_t n;
    size_t cap;
};

/* "Administrator", "Operator", "ReadOnly"; NULL for an out-of-range role. */
const char *user_role_name(enum user_role role);
/* Exact, case-sensitive role name to enum. 0, or -EINVAL. */
_must_check_ int user_role_from_name(const char *s, enum user_role *ret);

/*
 * Check a user name: 1..USERS_NAME_MAX of [a-z_][a-z0-9_.-]*. Returns 0, -EINVAL with
 * CERTD_E_FIELD_INVALID, or -E2BIG with CERTD_E_FIELD_TOO_LONG (err nullable).
 */
_must_check_ int users_check_name(const char *name, struct certd_err *err);

/*
 * Check a new password against the policy: USERS_PASSWORD_MIN..USERS_PASSWORD_MAX bytes,
 * valid UTF-8 (shortest form, no surrogates), no control characters (C0, DEL, C1). Returns 0,
 * -EINVAL with CERTD_E_FIELD_INVALID, or -E2BIG with CERTD_E_FIELD_TOO_LONG. The message never
 * contains the password or any part of it.
 */
_must_check_ int users_check_password(const struct secret *password, struct certd_err *err);

/* An empty set of users; NULL on lack of memory. */
struct users *users_new(void);
/* Free (hashes wiped first); accepts NULL; returns NULL. */
struct users *users_free(struct users *u);
DEFINE_CLEANUP_STRUCT(users, users_free)

/*
 * Parse the bytes of a users file (pure: no I/O). filename only names the file in messages
 * ("FILE:LINE: ..."). On success *ret is a new owned struct users. Errors (nothing written to
 * *ret):
 *  -E2BIG   CERTD_E_INPUT_TOO_LARGE (over USERS_FILE_MAX), CERTD_E_FIELD_TOO_LONG (a line over
 *           USERS_LINE_MAX, a name or hash too long), CERTD_E_TOO_MANY_VALUES (over USERS_MAX);
 *  -EBADMSG CERTD_E_INPUT_GARBAGE (a NUL byte, a field with bad characters),
 *           CERTD_E_FIELD_MISSING (fewer than three fields, an empty field),
 *           CERTD_E_FIELD_INVALID (a bad name or an unknown role), CERTD_E_DUPLICATE (a name
 *           twice);
 *  -EOPNOTSUPP CERTD_E_ALG_UNSUPPORTED (a hash of another scheme, or malformed);
 *  -ENOMEM.
 */
_must_check_ int users_parse(struct span data, const char *filename, struct users **ret,
                             struct certd_err *err);

/*
 * Read and parse path: store_read_trusted(path, "users file", USERS_FILE_MAX, 077), i.e. the
 * checks are made on the descriptor that is read. As users_parse, plus: -ENOENT with
 * CERTD_E_NOT_FOUND when the file does not exist; -ELOOP with CERTD_E_STORAGE for a symlink;
 * -EPERM with CERTD_E_POLICY_FORBIDS when the file is not a regular file, is owned by neither
 * the effective uid nor root, or has any group or other permission bit (the message says what
 * to fix, e.g. "chmod 600"); -E2BIG with CERTD_E_INPUT_TOO_LARGE; -errno with CERTD_E_STORAGE
 * when it cannot be read. Takes no lock: a writer calls users_lock() first.
 */
_must_check_ int users_load(const char *path, struct users **ret, struct certd_err *err);

/*
 * Write u to path atomically (store_write_atomic), mode 0600, with one header comment. The new
 * file belongs to the effective uid, so replacing a file owned by another uid (certctl as root
 * on the service's file), or creating one in another uid's directory, is refused
 * (store_check_writer: -EPERM with CERTD_E_POLICY_FORBIDS) rather than taking the file away
 * from its owner. Returns 0 or -errno with CERTD_E_STORAGE (or -ENOMEM). u is borrowed.
 * Callers hold users_lock() from their users_load() until this returns.
 */
_must_check_ int users_save(const struct users *u, const char *path, struct certd_err *err);

/*
 * Lock the users file at path for a change: open (creating it 0600, O_NOFOLLOW) "path.lock" and
 * take an exclusive flock(2) on it, waiting for any other holder. Hold it from users_load() until
 * users_save() returns, and ask for passwords before taking it (a prompt must not block others).
 * On success *ret_fd is the owned descriptor holding the lock; release it with users_unlock()
 * (or by closing it). Returns 0, -ENOMEM, or -errno with CERTD_E_STORAGE; before anything is
 * created, -EPERM with CERTD_E_POLICY_FORBIDS when the file (or, while there is none, its
 * directory) belongs to another uid (store_check_writer: users_save would refuse it, and a
 * lock file made now would be ours, not the owner's). Blocks: not for an event loop thread. A
 * lock on the directory would not do: store_write_atomic() takes that one.
 */
_must_check_ int users_lock(const char *path, int *ret_fd, struct certd_err *err);

/* Release a lock from users_lock() (fd < 0 is ignored). Returns -EBADF: fd = users_unlock(fd). */
int users_unlock(int fd);

/* The user named name (borrowed from u, valid until u changes), or NULL. */
const struct user *users_find(const struct users *u, const char *name);

/* Number of users with the given role. */
size_t users_count_role(const struct users *u, enum user_role role);

/*
 * Add a user with a new yescrypt hash of password (borrowed). Checks the name, the role, the
 * password policy, and then: -EEXIST with CERTD_E_DUPLICATE when the name exists, -E2BIG with
 * CERTD_E_LIMIT_REACHED at USERS_MAX users. -ENOMEM, or -EIO with CERTD_E_INTERNAL when
 * crypt(3) fails. On failure u is unchanged.
 */
_must_check_ int users_add(struct users *u, const char *name, enum user_role role,
                           const struct secret *password, struct certd_err *err);

/*
 * Replace the hash of name with a new yescrypt hash of password (borrowed, checked against the
 * policy). -ENOENT with CERTD_E_NOT_FOUND for an unknown name; otherwise as users_add.
 */
_must_check_ int users_set_password(struct users *u, const char *name,
                                    const struct secret *password, struct certd_err *err);

/*
 * Change the role of name. -ENOENT/CERTD_E_NOT_FOUND for an unknown name, -EINVAL/
 * CERTD_E_FIELD_INVALID for an out-of-range role, -EPERM/CERTD_E_POLICY_FORBIDS when it would
 * demote the last Administrator. Returns 1 when the role changed, 0 when it was already role.
 */
_must_check_ int users_set_role(struct users *u, const char *name, enum user_role role,
                                struct certd_err *err);

/*
 * Remove name. -ENOENT/CERTD_E_NOT_FOUND for an unknown name, -EPERM/CERTD_E_POLICY_FORBIDS for
 * the last Administrator (nobody could manage the service afterwards).
 */
_must_check_ int users_del(struct users *u, const char *name, struct certd_err *err);

/*
 * Check password (borrowed) for name. Returns 1 on a match, 0 otherwise (unknown user, wrong
 * password, a password longer than USERS_PASSWORD_MAX (not hashed: a fixed string is, at the
 * same cost), an unusable hash), -ENOMEM when hashing ran out of memory: treat anything but 1 as
 * a refusal. The hash outputs are compared in constant time (CRYPTO_memcmp), and an unknown
 * name still costs one yescrypt run against a fixed dummy hash, so the time taken does not
 * reveal which names exist. Slow by design: never call it from an event loop thread.
 */
_must_check_ int users_verify(const struct users *u, const char *name,
                              const struct secret *password);

/*
 * The initial administrator. Under users_lock(users_path), when users_path does not exist: make
 * user "admin"
 * (Administrator) with a random password (144 bits from RAND_bytes, 24 base64url characters),
 * write password_path (0600: the password and a newline) and then users_path (0600) -- in that
 * order, so that a crash between the two leaves no users file and the next start does it all
 * again, never an admin whose password nobody knows -- and return 0 with *ret_password a new
 * secret holding the password (the caller frees it). The users file is created without ever
 * replacing one (O_TMPFILE + linkat; needs /proc): when one appears in between (a writer that
 * ignores the lock), it is kept, the password file removed, and nothing handed out. When
 * users_path exists (whatever it holds), nothing is done: 0 with *ret_password NULL. Errors: -errno
 * with CERTD_E_STORAGE, -ENOMEM, -EIO with CERTD_E_INTERNAL (no randomness, crypt(3) failure).
 */
_must_check_ int users_bootstrap(const char *users_path, const char *password_path,
                                 struct secret **ret_password, struct certd_err *err);
