/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durable storage of certificates and keys. Every write is atomic: a temporary file in the
 * same directory (O_CREAT|O_EXCL, the final mode from the start: 0600 for anything holding a
 * key, never widened later), write, fsync, rename over the target, fsync the directory. A set
 * of files (a certificate and its key) is replaced under a redo journal (store_write_set). A
 * crash at any point leaves either the old or the new content, never a mix, once
 * store_recover() has run on the directory; leftovers (".tmp*", ".journal-*") are ignored by
 * readers and settled by store_recover().
 *
 * Locking: writers hold a shared flock(2) on each directory they write into (a set writer an
 * exclusive one on its journal's directory), store_recover() an exclusive one, so recovery
 * never mistakes a write in flight for a crashed one.
 *
 * Authority directories hold one file per CA certificate, "<SHA-256 fingerprint hex>.pem",
 * plus OpenSSL CApath links "<subject-hash>.<n>" (symlinks to those files), rebuilt after each
 * change, so that the directory works as a CApath for OpenSSL clients (nslcd, curl).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "error/error.h"
#include "util/cleanup.h"
#include "util/span.h"

#define STORE_MODE_SECRET 0600
#define STORE_MODE_PUBLIC 0644
#define STORE_MODE_DIR    0700

/*
 * Atomically replace path with data, created with mode (at most 0777; the process umask may
 * narrow it, nothing widens it). Returns 0, or -errno with CERTD_E_STORAGE (the message names
 * the path and the failing step, not the data). On failure the target is untouched and no
 * temporary is left, except after "fsync directory": then the new content is in place but not
 * known to be durable.
 */
_must_check_ int store_write_atomic(const char *path, struct span data, mode_t mode,
                                    struct certd_err *err);

/* Files in one store_write_set() call at most: a certificate, its key, a chain, and room. */
#define STORE_SET_MAX 16u

/*
 * Atomically write several files as a set: used for a certificate+key pair kept in separate
 * files. After a crash at any point, and store_recover() on the first file's directory (and
 * on the others'), either every target has its old content (or is absent, as before) or every
 * target has its new content, byte for byte. Never a mix, and no temporary or journal is left.
 *
 * Protocol (redo logging; J is a random 64-bit id in hex):
 *  1. the journal is written as ".tmpjournal-J" in the first target's directory, fsynced, the
 *     directory fsynced. It lists, for each entry, the directory ("." for the journal's own,
 *     else the canonical absolute path), the temporary's name and the target's name;
 *  2. each new content is written to ".tmpset-J-<index>" in its target's directory (the final
 *     mode from creation), fsynced; each directory fsynced;
 *  3. COMMIT: the journal is renamed to ".journal-J" and the directory fsynced. Before this
 *     point a crash leaves the old set, after it the new set;
 *  4. each temporary is renamed over its target; each directory fsynced;
 *  5. the journal is unlinked.
 * Journal format: NUL-terminated fields "certd-store-journal-1", the entry count, then
 * directory, temporary, target per entry, then "end"; nothing after it.
 *
 * Before step 1 the first file's directory is locked exclusively (the others shared, all in
 * device/inode order) and what a crash left there is settled as store_recover() would: an
 * older committed journal replayed after this write would put its older contents back.
 *
 * Before the commit every check that can be made is made (directories open, no file named
 * twice, no target a directory or a reserved name); a failure there leaves everything as it
 * was. A failure after the commit (a rename or fsync refused) does not roll back: the remaining
 * steps still run, the journal stays and store_recover() completes the set.
 *
 * Returns 0, or -errno with err: CERTD_E_STORAGE (step and path in the message);
 * -EINVAL/CERTD_E_FIELD_INVALID when two entries name the same file (the same directory, by
 * device and inode, and the same name: "x" and "./x" are one file) or a target's name starts
 * with ".tmp-", ".tmpset-", ".tmpjournal-" or ".journal-"; -E2BIG/CERTD_E_FIELD_INVALID for
 * more than STORE_SET_MAX files.
 */
struct store_file {
    const char *path;
    struct span data;
    mode_t mode;
};
_must_check_ int store_write_set(const struct store_file *files, size_t n, struct certd_err *err);

/*
 * Read a whole file of at most max bytes into a malloc'd buffer (NUL-terminated, the NUL not
 * counted). O_NOFOLLOW when nofollow is set (a symlink then gives -ELOOP). Returns 0, -ENOENT,
 * -E2BIG, -EISDIR (a directory), -EINVAL (not a regular file), or -errno. *ret and *ret_len are
 * written only on success. Since it reads key files, every buffer it frees itself (on failure,
 * and the smaller one when it grows) is wiped first; the caller wipes the one it gets.
 */
_must_check_ int store_read_file(const char *path, size_t max, bool nofollow, uint8_t **ret,
                                 size_t *ret_len);

/*
 * Create dir (and missing parents) with mode (e.g. STORE_MODE_DIR) when absent. The final
 * directory, new or existing, must be owned by the effective uid and not writable by group or
 * others: a key directory others can write to is not safe (they could swap keys or plant a
 * journal). Returns 0; -EPERM when it is not ours or group/other-writable; -ENOTDIR when a
 * component is not a directory; -EINVAL for a mode with group/other write bits; or -errno.
 */
_must_check_ int store_mkdir_p(const char *dir, mode_t mode);

/*
 * Settle what interrupted writes left in dir (call at start-up and before reading a store):
 *  - a committed journal ".journal-J": its temporaries still present are renamed over their
 *    targets (roll forward: the new set), fsynced, then the journal is removed;
 *  - an uncommitted journal ".tmpjournal-J": its temporaries are removed (the old set), then
 *    the journal; one that does not parse (cut short while written, before any temporary of
 *    its set existed) is removed alone;
 *  - ".tmp-*" regular files and symlinks are removed (never directories);
 *  - ".tmpset-J-*" whose journal is in another directory are left to that directory's
 *    recovery.
 * A journal is validated completely before anything is done for it: it names only our
 * temporaries (".tmpset-J-<index>" of its own J), plain target names, and "." or canonical
 * absolute directories, so no content can make recovery act elsewhere. A committed journal
 * that does not parse is kept, untouched, with its temporaries (-EBADMSG): never guessed at.
 * Takes an exclusive lock on dir, so it waits for writes in flight. Returns 0, or the first
 * -errno (the rest is still done); -ENOENT when dir does not exist.
 */
_must_check_ int store_recover(const char *dir);

/* The older name of store_recover(), kept for callers: exactly the same function. */
_must_check_ int store_cleanup_tmp(const char *dir);

/*
 * Add certificates to an authority directory: each as "<fingerprint>.pem" (0644), then rebuild
 * the hash links. A file is created only where none exists (RENAME_NOREPLACE): one that
 * appears concurrently is never overwritten but reported as a duplicate. All or nothing: on
 * failure the files this call created (and only those) are removed again.
 * Returns 0, or -errno with err: -EINVAL/CERTD_E_NO_CERT for an empty stack, -EEXIST/
 * CERTD_E_DUPLICATE when a certificate is present already (or twice in certs; nothing is
 * written then), CERTD_E_STORAGE for file system failures. ret_ids (nullable) receives malloc'd
 * copies of the ids (fingerprint hex) in order; the caller frees each and the array.
 */
_must_check_ int authority_dir_add(const char *dir, STACK_OF(X509) *certs, char ***ret_ids,
                                   struct certd_err *err);

/*
 * Remove the certificate with this id and rebuild the links. -ENOENT/CERTD_E_NOT_FOUND; an id
 * that is not exactly 64 lowercase hex digits is -EINVAL/CERTD_E_FIELD_INVALID (so no id can
 * name a file outside dir).
 */
_must_check_ int authority_dir_remove(const char *dir, const char *id, struct certd_err *err);

/*
 * Load every "<fingerprint>.pem" of an authority directory (temporary files and links are
 * skipped), sorted by id. A file that does not parse, or whose SHA-256 fingerprint is not its
 * name, is skipped with a debug log line. At most CERTD_AUTHORITY_MAX_HARD files (-E2BIG).
 * ret_n may be NULL. Returns
 * 0 with an owned stack (possibly empty) and, when ret_ids is not NULL, a parallel owned array
 * of ids; or -errno.
 */
_must_check_ int authority_dir_load(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                    STACK_OF(X509) **ret_certs, char ***ret_ids, size_t *ret_n);

/*
 * Rebuild the "<subject-hash>.<n>" links from the .pem files present. 0 or -errno.
 * Names as `openssl rehash` makes them: "%08lx" of X509_NAME_hash_ex(subject), n counting
 * certificates with the same hash from 0 in id order. Each link is replaced atomically; stale
 * links (symlinks named like a hash link) are removed; other files are never touched.
 */
_must_check_ int authority_dir_rehash(const char *dir);

/*
 * The same three operations with the library context and property query used to hash and
 * parse (STYLE.md §6); the plain forms above use the default context (NULL, NULL).
 */
_must_check_ int authority_dir_add_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                      STACK_OF(X509) *certs, char ***ret_ids,
                                      struct certd_err *err);
_must_check_ int authority_dir_remove_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                         const char *id, struct certd_err *err);
_must_check_ int authority_dir_rehash_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir);

/* Free an array of n malloc'd strings. */
void strv_free_n(char **v, size_t n);
