/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durable storage of certificates and keys. Every write is atomic: a temporary file in the
 * same directory (O_CREAT|O_EXCL, the final mode from the start: 0600 for anything holding a
 * key, never widened later), write, fsync, rename over the target, fsync the directory. A
 * crash at any point leaves either the old or the new content, never a mix; leftover temporary
 * files (".tmp-*") are ignored by readers and removed by store_cleanup_tmp().
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

/*
 * Atomically write several files so that a crash leaves either all old or all new contents
 * visible as a set: used for a certificate+key pair kept in separate files. Each file is written
 * to a temporary, all are fsynced, then renamed in order, then the directories are fsynced. If
 * a rename fails, the ones already done are rolled back from backups. Returns 0 or -errno (with
 * CERTD_E_STORAGE). Paths must be distinct (-EINVAL). Limit of the promise: a crash *between*
 * the renames (a window of a few system calls, after all data is durable) leaves a mixed set;
 * see store.c.
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
 * written only on success.
 */
_must_check_ int store_read_file(const char *path, size_t max, bool nofollow, uint8_t **ret,
                                 size_t *ret_len);

/* Create dir (and missing parents) with mode 0700 when absent. 0 or -errno. */
_must_check_ int store_mkdir_p(const char *dir, mode_t mode);

/*
 * Remove leftover temporary files of interrupted writes in dir: ".tmp-*" regular files and
 * symlinks (never directories). 0 or -errno.
 */
_must_check_ int store_cleanup_tmp(const char *dir);

/*
 * Add certificates to an authority directory: each as "<fingerprint>.pem" (0644), then rebuild
 * the hash links. All or nothing: on failure the files added by this call are removed again.
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
