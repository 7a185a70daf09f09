/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durable storage of certificates and keys. Every write is atomic: a temporary file in the
 * same directory (O_CREAT|O_EXCL, the final mode from the start: 0600 for anything holding a
 * key, never widened later), write, fsync, rename over the target, fsync the directory. A set
 * of files in one directory (a certificate and its key; the certificates of an authority, with
 * removals) is replaced under a redo journal kept in that directory (store_write_set). A crash
 * at any point leaves either the old or the new content, never a mix, once store_recover() has
 * run on the directory; leftovers (".tmp*", ".journal-*") are ignored by readers and settled by
 * store_recover().
 *
 * Locking: every writer (store_write_atomic, store_write_set, authority add, remove, rehash and
 * replace) and store_recover() hold an exclusive flock(2) on the directory for the whole
 * operation, and each writer first completes what a crash left there. So recovery never
 * mistakes a write in flight for a crashed one, and a committed journal never outlives a later
 * write (replayed after it, it would put older content back). Readers take no lock: they see
 * old or new files.
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
 * known to be durable. First completes a committed journal a crash left in the directory
 * (step "complete an earlier interrupted write" when that fails: nothing is written then).
 */
_must_check_ int store_write_atomic(const char *path, struct span data, mode_t mode,
                                    struct certd_err *err);

/*
 * Files written by one store_write_set() call at most: a certificate, its key and a chain, or
 * the certificates of one authority bundle (CERTD_BUNDLE_CERTS_MAX).
 */
#define STORE_SET_MAX 32u
/*
 * Files removed by one set at most, besides its writes: every certificate of an authority
 * directory (CERTD_AUTHORITY_MAX_HARD) when an upload replaces them all.
 */
#define STORE_SET_REMOVE_MAX 1024u

/*
 * Atomically write several files of ONE directory as a set: used for a certificate+key pair
 * kept in separate files. After a crash at any point, and store_recover() on that directory,
 * either every target has its old content (or is absent, as before) or every target has its
 * new content, byte for byte. Never a mix, and no temporary or journal is left. The same
 * protocol also removes files as part of a set (authority_dir_replace_ex): a removed target is
 * then gone in the new set and untouched in the old one.
 *
 * Every file must be in the same directory (compared by device and inode, however the paths
 * spell it): a journal settles its own directory only, so recovery never touches another one
 * and a store directory can be moved or copied as a whole. Files in several directories are
 * refused (-EXDEV) before anything is written; a caller that can live without the guarantee
 * writes them one by one with store_write_atomic().
 *
 * Protocol (redo logging; J is a random 64-bit id in hex; every name is in the directory):
 *  1. the journal is written as ".tmpjournal-J", fsynced, the directory fsynced. It lists, for
 *     each entry, the temporary's name (a write only) and the target's name (plain names,
 *     never a path);
 *  2. each new content is written to ".tmpset-J-<index of its entry>" (the final mode from
 *     creation), fsynced; the directory fsynced. A removal has no temporary;
 *  3. COMMIT: the journal is renamed to ".journal-J" and the directory fsynced. Before this
 *     point a crash leaves the old set, after it the new set;
 *  4. each temporary is renamed over its target and each target to remove is unlinked (one
 *     already absent is as asked); the directory fsynced;
 *  5. the journal is unlinked.
 * Journal formats: NUL-terminated fields. A set without removals: "certd-store-journal-2", the
 * entry count, then temporary and target per entry, then "end"; nothing after it (the format
 * earlier releases write and read, so that they can still settle such a set). A set with
 * removals: "certd-store-journal-3", the entry count, then per entry "write", temporary and
 * target, or "remove" and target, then "end" (at most STORE_SET_MAX writes and
 * STORE_SET_REMOVE_MAX removals). Recovery reads both.
 *
 * Before step 1 the directory is locked exclusively and what a crash left there is settled as
 * store_recover() would: an older committed journal replayed after this write would put its
 * older contents back.
 *
 * Before the commit every check that can be made is made (one directory, no file named twice,
 * no target a directory or a reserved name); a failure there leaves everything as it was. A
 * failure after the commit (a rename, unlink or fsync refused) does not roll back: the
 * remaining steps still run, the journal stays and store_recover() (or the next write into the
 * directory) completes the set.
 *
 * Returns 0, or -errno with err: CERTD_E_STORAGE (step and path in the message);
 * -EXDEV/CERTD_E_FIELD_INVALID ("the files of a set must be in one directory: A and B") when
 * the files are not all in one directory; -EINVAL/CERTD_E_FIELD_INVALID when two entries name
 * the same file (the same directory and the same name: "x" and "./x" are one file) or a
 * target's name starts with ".tmp-", ".tmpset-", ".tmpjournal-" or ".journal-";
 * -E2BIG/CERTD_E_FIELD_INVALID for more than STORE_SET_MAX files.
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
 * A heap buffer that may hold key bytes. store_buf_done (a _cleanup_ function; a zeroed struct
 * is fine) wipes p[0..len) with OPENSSL_cleanse, frees p and zeroes the struct.
 */
struct store_buf {
    uint8_t *p;
    size_t len;
};
void store_buf_done(struct store_buf *b);

/*
 * store_read_file into *ret (written only on success; the caller wipes and frees it with
 * store_buf_done), with err for people, the message naming path: -ENOENT/CERTD_E_NOT_FOUND
 * ("does not exist"), -E2BIG/CERTD_E_INPUT_TOO_LARGE ("larger than max bytes"),
 * -ENOMEM/CERTD_E_NO_MEMORY, any other -errno (-EISDIR, -ELOOP, -EINVAL for a file that is not
 * regular, -EACCES ...) CERTD_E_STORAGE ("cannot read PATH: reason").
 */
_must_check_ int store_read_file_err(const char *path, size_t max, bool nofollow,
                                     struct store_buf *ret, struct certd_err *err);

/*
 * Read a file that decides who may do what (users file, pin store): whoever can change it
 * decides, so it must be ours and guarded. Opened with O_NOFOLLOW (and O_NONBLOCK, so that a
 * FIFO cannot hang us) and judged on that descriptor, by fstat, so nothing can be swapped in
 * between check and read: a regular file, owned by the effective uid or root, with none of the
 * permission bits of forbid_mode (at most 0777; e.g. 077: no access for group or others, 022:
 * nobody else may change it). what names the file in "does not exist" ("users file"; nullable:
 * "file"). On success *ret holds the bytes (NUL-terminated, the NUL not counted; free it with
 * store_buf_done). Errors, *ret untouched, every message naming path:
 *  -ENOENT  CERTD_E_NOT_FOUND ("WHAT PATH does not exist");
 *  -ELOOP   CERTD_E_STORAGE ("is a symbolic link");
 *  -EPERM   CERTD_E_POLICY_FORBIDS: not a regular file ("is not a regular file"), owned by
 *           another uid ("is owned by uid N, not by uid M or root; chown it ..."), a forbidden
 *           mode bit ("has mode 0NNN: group or others have access|may change it; run chmod
 *           600 PATH");
 *  -E2BIG   CERTD_E_INPUT_TOO_LARGE ("is larger than MAX bytes");
 *  -ENOMEM  CERTD_E_NO_MEMORY; any other -errno CERTD_E_STORAGE ("cannot read PATH: reason").
 * Takes no lock. Thread-safe.
 */
_must_check_ int store_read_trusted(const char *path, const char *what, size_t max,
                                    mode_t forbid_mode, struct store_buf *ret,
                                    struct certd_err *err);

/*
 * ".tmp-<kind><base, cut>-<16 random hex digits>" into buf (NAME_MAX + 1 bytes): a name no
 * reader takes for real data and store_recover() removes (a regular file or symlink), so a
 * file renamed to it within its directory is gone for good after a crash. 0, -ENAMETOOLONG or
 * -errno (no randomness).
 */
_must_check_ int store_tmp_name(char *buf, size_t size, const char *kind, const char *base);

/* Describe -r (or r) for a message, as strerror_r(3) does: its text, or buf filled with one. */
const char *store_errno_str(int r, char *buf, size_t size);

/*
 * Create dir (and missing parents) with mode (e.g. STORE_MODE_DIR) when absent. The final
 * directory, new or existing, must be owned by the effective uid and not writable by group or
 * others: a key directory others can write to is not safe (they could swap keys or plant a
 * journal). Returns 0; -EPERM when it is not ours or group/other-writable; -ENOTDIR when a
 * component is not a directory; -EINVAL for a mode with group/other write bits; or -errno.
 */
_must_check_ int store_mkdir_p(const char *dir, mode_t mode);

/*
 * The writers' lock of a file kept as a whole (users file, pin store): an exclusive flock(2)
 * of "<path><suffix>", opened (created 0600 when missing; O_NOFOLLOW, so a planted symlink
 * gives -ELOOP), waiting for any other holder. Held from a writer's load to the end of its
 * store_write_atomic(), so that two writers never lose one another's change; a lock on the
 * directory would not do, store_write_atomic() takes that one. The lock file is never
 * deleted: unlinking it would let a waiter lock an orphan while others use a new file. On
 * success *ret_fd is the owned descriptor holding the lock: store_unlock_file() (or closing
 * it) releases it. Returns 0, -ENOMEM with CERTD_E_NO_MEMORY, or -errno with CERTD_E_STORAGE
 * (the message names the lock file). Blocks: not for an event loop thread.
 */
_must_check_ int store_lock_file(const char *path, const char *suffix, int *ret_fd,
                                 struct certd_err *err);
/* Release a lock of store_lock_file (fd < 0 is ignored). Returns -EBADF: fd = ...(fd). */
int store_unlock_file(int fd);

/*
 * Before a writer of a file kept as a whole (users file, pin store) creates anything for it
 * (its lock file, its directory, the file): the file, when it exists (lstat), must belong to
 * the effective uid; when it does not, the nearest directory on its path that exists must
 * belong to the effective uid too, unless that directory is sticky (S_ISVTX, as /tmp, where
 * what everybody makes stays theirs). What this process makes belongs to it: root running
 * certctl on certd's store would otherwise leave a root-owned lock file, directory or store
 * that certd, running as its own user, can no longer open. Returns 0, or -EPERM with
 * CERTD_E_POLICY_FORBIDS ("PATH is owned by uid N: run this as that user (e.g. with sudo -u)
 * ..."), -ENOMEM with CERTD_E_NO_MEMORY. Other lookup failures (-EACCES, -ENOTDIR...) return 0:
 * the writer's own steps report them with the step that failed. A check, not a guarantee:
 * the lock and the writes that follow judge what they find again.
 */
_must_check_ int store_check_writer(const char *path, struct certd_err *err);

/*
 * Settle what interrupted writes left in dir (call at start-up and before reading a store;
 * every writer also does it first, under its lock):
 *  - a committed journal ".journal-J": its temporaries still present are renamed over their
 *    targets and its targets to remove still present are unlinked (roll forward: the new set),
 *    fsynced, then the journal is removed;
 *  - an uncommitted journal ".tmpjournal-J": its temporaries are removed (the old set), then
 *    the journal; one that does not parse (cut short while written, before any temporary of
 *    its set existed) is removed alone;
 *  - ".tmp-*" regular files and symlinks are removed (never directories);
 *  - ".tmpset-J-*" without an uncommitted journal of their J are left alone.
 * A journal is validated completely before anything is done for it: it names only our
 * temporaries (".tmpset-J-<index>" of its own J) and plain, distinct target names (no '/', no
 * ".", "..", no reserved name), all relative to dir, so no content can make recovery act
 * outside dir. A target that is a symlink is replaced or removed like any target (rename(2)
 * and unlink(2) never follow it). Journals of both formats (store_write_set) are read. A committed
 * journal that does not parse, or whose temporaries are not regular files or whose targets are
 * directories, is never acted on: it is renamed to ".journal-J.broken" (left with its temporaries
 * for a human; a debug line says so) and recovery goes on, so it cannot block later writes. Takes
 * an exclusive lock on dir, so it waits for writes in flight. Returns 0, or the first -errno of a
 * failing system call (the rest is still done; a committed journal that could not be completed is
 * kept, and writers refuse to write into dir until it is); -ENOENT when dir does not exist.
 */
_must_check_ int store_recover(const char *dir);

/* The older name of store_recover(), kept for callers: exactly the same function. */
_must_check_ int store_cleanup_tmp(const char *dir);

/* An authority id: the certificate's SHA-256 fingerprint as lowercase hex, without separators. */
#define AUTHORITY_ID_LEN 64u

/*
 * The id cert has (or would have) in an authority directory, as the functions below name it,
 * into ret_id (AUTHORITY_ID_LEN digits and a NUL; written only on success). The digest is
 * fetched with libctx/propq. 0, -EOPNOTSUPP (no SHA-256) or -EIO.
 */
_must_check_ int authority_cert_id(OSSL_LIB_CTX *libctx, const char *propq, const X509 *cert,
                                   char ret_id[static AUTHORITY_ID_LEN + 1]);

/*
 * Add certificates to an authority directory: each as "<fingerprint>.pem" (0644), then rebuild
 * the hash links. certs is borrowed.
 *
 * The whole call holds the directory's lock exclusively (as do remove and rehash), and first
 * settles what a crash left (store_recover). Under that lock it checks everything against the
 * directory as it is then: no certificate is installed already, by id or by subject, issuer and
 * serial number (CERTD_E_DUPLICATE), and the total stays within the limit (see
 * authority_dir_add_ex). A caller that validated against a list it loaded earlier (limits,
 * duplicates) must still treat these refusals as final: another writer may have changed the
 * directory since its load, and only this check, made under the lock, holds.
 *
 * All or nothing: the new files are written as one journaled set (store_write_set's protocol),
 * so a crash leaves none or all of them (after store_recover, which authority_dir_rehash and
 * every later add or remove run first); a failure leaves none (a file system failure after the
 * set's commit point is the exception: the set is then completed by recovery, as after a
 * crash). Returns 0, or -errno with err: -EINVAL/CERTD_E_NO_CERT for an empty stack,
 * -E2BIG/CERTD_E_TOO_MANY_VALUES for more than STORE_SET_MAX certificates in one call,
 * -EEXIST/CERTD_E_DUPLICATE when a certificate is present already (or twice in certs),
 * -E2BIG/CERTD_E_LIMIT_REACHED over the limit (nothing is written then), CERTD_E_STORAGE for
 * file system failures. ret_ids (nullable) receives malloc'd copies of the ids (fingerprint
 * hex) in order; the caller frees each and the array.
 */
_must_check_ int authority_dir_add(const char *dir, STACK_OF(X509) *certs, char ***ret_ids,
                                   struct certd_err *err);

/*
 * Remove the certificate with this id and rebuild the links, under the directory's exclusive
 * lock (after settling what a crash left). -ENOENT/CERTD_E_NOT_FOUND; an id that is not
 * exactly 64 lowercase hex digits is -EINVAL/CERTD_E_FIELD_INVALID (so no id can name a file
 * outside dir); CERTD_E_STORAGE for file system failures.
 */
_must_check_ int authority_dir_remove(const char *dir, const char *id, struct certd_err *err);

/*
 * Load every "<fingerprint>.pem" of an authority directory (temporary files and links are
 * skipped), sorted by id. A file that does not parse, or whose SHA-256 fingerprint is not its
 * name, is skipped with a debug log line. At most CERTD_AUTHORITY_MAX_HARD certificates, among at
 * most STORE_SET_REMOVE_MAX entries named like one (-E2BIG; so that a directory stuffed with
 * such names costs bounded work).
 * ret_n may be NULL. Returns 0 with an owned stack (possibly empty) and, when ret_ids is not
 * NULL, a parallel owned array of ids (authority_cert_id of each certificate, ascending; free
 * with strv_free_n and the count); or -errno.
 */
_must_check_ int authority_dir_load(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                    STACK_OF(X509) **ret_certs, char ***ret_ids, size_t *ret_n);

/*
 * Rebuild the "<subject-hash>.<n>" links from the .pem files present. 0 or -errno.
 * Names as `openssl rehash` makes them: "%08lx" of X509_NAME_hash_ex(subject), n counting
 * certificates with the same hash from 0 in id order. Each link is replaced atomically; stale
 * links (symlinks named like a hash link) are removed; other files are never touched. Holds
 * the directory's lock exclusively and settles what a crash left first (store_recover), so two
 * rehashes never prune each other's links and links are made for the settled set of files.
 */
_must_check_ int authority_dir_rehash(const char *dir);

/*
 * The same three operations with the library context and property query used to hash and
 * parse (STYLE.md §6); the plain forms above use the default context (NULL, NULL) and no limit.
 * max_total is the most certificates the directory may hold after the add (the endpoint's
 * configured limit), checked under the lock against the certificates authority_dir_load would
 * return; 0 means no limit of the caller's. CERTD_AUTHORITY_MAX_HARD always applies (load
 * refuses a larger directory). Over it: -E2BIG/CERTD_E_LIMIT_REACHED, nothing written.
 */
_must_check_ int authority_dir_add_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                      STACK_OF(X509) *certs, size_t max_total, char ***ret_ids,
                                      struct certd_err *err);
_must_check_ int authority_dir_remove_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                         const char *id, struct certd_err *err);
_must_check_ int authority_dir_rehash_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir);

/*
 * Replace every certificate of an authority directory by certs (borrowed): afterwards dir holds
 * exactly one "<fingerprint>.pem" (0644) per certificate of certs and their hash links. Every
 * other file of the "<fingerprint>.pem" form is removed (a damaged one too; never a directory),
 * and other files are never touched.
 *
 * Under the directory's exclusive lock, after settling what a crash left (store_recover), as
 * its siblings. A certificate of certs whose file is present already (and holds it) stays as it
 * is, in the same set: neither rewritten nor removed. The new files and the removals are one
 * journaled set (store_write_set's protocol), so a crash leaves the old set or the new one,
 * never a mix (after store_recover, which every later change runs first); a failure before the
 * set's commit point leaves the directory as it was, one after it is completed by recovery at
 * once. Then the hash links are rebuilt for the new set.
 *
 * Nothing is judged against the certificates present (they all go): duplicates are refused
 * within certs only, as authority_dir_add refuses them. max_total (0: no limit of the
 * caller's; CERTD_AUTHORITY_MAX_HARD always applies) bounds how many certs may hold.
 *
 * Returns 0, or -errno with err: -EINVAL/CERTD_E_NO_CERT for an empty stack (a directory
 * emptied by a replace would be a deletion nobody asked for); -E2BIG/CERTD_E_TOO_MANY_VALUES
 * for more than STORE_SET_MAX certificates; -E2BIG/CERTD_E_LIMIT_REACHED for more than
 * max_total, or a directory holding more than STORE_SET_REMOVE_MAX certificate files;
 * -EEXIST/CERTD_E_DUPLICATE for a certificate twice in certs (by id, or by subject, issuer and
 * serial number); -EISDIR/CERTD_E_STORAGE when a directory has the file name of a certificate of
 * certs (nothing changed); -ENOMEM/CERTD_E_NO_MEMORY; CERTD_E_STORAGE for file system failures,
 * nothing changed when they come before the set's commit. The one exception: "were replaced, but
 * its links could not be rebuilt" means the new set is in place (and cannot be taken back: the old
 * files are gone) while its links are not; authority_dir_rehash, or any later change, repairs them.
 * ret_ids (nullable) receives malloc'd copies of the ids of certs in their order; the caller frees
 * each and the array. Blocks (fsync): not for an event loop thread.
 */
_must_check_ int authority_dir_replace_ex(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                          STACK_OF(X509) *certs, size_t max_total, char ***ret_ids,
                                          struct certd_err *err);

/* Free an array of n malloc'd strings. */
void strv_free_n(char **v, size_t n);
