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
 * Atomically replace path with data, created with mode. Returns 0, or -errno with
 * CERTD_E_STORAGE (the message names the path and the failing step, not the data).
 */
_must_check_ int store_write_atomic(const char *path, struct span data, mode_t mode,
                                    struct certd_err *err);

/*
 * Atomically write several files so that a crash leaves either all old or all new contents
 * visible as a set: used for a certificate+key pair kept in separate files. Each file is written
 * to a temporary, all are fsynced, then renamed in order, then the directories are fsynced. If
 * a rename fails, the ones already done are rolled back from backups. Returns 0 or -errno.
 */
struct store_file {
    const char *path;
    struct span data;
    mode_t mode;
};
_must_check_ int store_write_set(const struct store_file *files, size_t n, struct certd_err *err);

/*
 * Read a whole file of at most max bytes into a malloc'd buffer (NUL-terminated, the NUL not
 * counted). O_NOFOLLOW when nofollow is set. Returns 0, -ENOENT, -E2BIG, or -errno.
 */
_must_check_ int store_read_file(const char *path, size_t max, bool nofollow, uint8_t **ret,
                                 size_t *ret_len);

/* Create dir (and missing parents) with mode 0700 when absent. 0 or -errno. */
_must_check_ int store_mkdir_p(const char *dir, mode_t mode);

/* Remove leftover temporary files of interrupted writes in dir. 0 or -errno. */
_must_check_ int store_cleanup_tmp(const char *dir);

/*
 * Add certificates to an authority directory: each as "<fingerprint>.pem" (0644), then rebuild
 * the hash links. All or nothing: on failure the files added by this call are removed again.
 * Returns 0, or -errno with err. ret_ids (nullable) receives malloc'd copies of the ids
 * (fingerprint hex) in order; the caller frees each and the array.
 */
_must_check_ int authority_dir_add(const char *dir, STACK_OF(X509) *certs, char ***ret_ids,
                                   struct certd_err *err);

/* Remove the certificate with this id and rebuild the links. -ENOENT/CERTD_E_NOT_FOUND. */
_must_check_ int authority_dir_remove(const char *dir, const char *id, struct certd_err *err);

/*
 * Load every "<fingerprint>.pem" of an authority directory (temporary files and links are
 * skipped), sorted by id. A file that does not parse is skipped with a debug log line. Returns
 * 0 with an owned stack (possibly empty) and, when ret_ids is not NULL, a parallel owned array
 * of ids; or -errno.
 */
_must_check_ int authority_dir_load(OSSL_LIB_CTX *libctx, const char *propq, const char *dir,
                                    STACK_OF(X509) **ret_certs, char ***ret_ids, size_t *ret_n);

/* Rebuild the "<subject-hash>.<n>" links from the .pem files present. 0 or -errno. */
_must_check_ int authority_dir_rehash(const char *dir);

/* Free an array of n malloc'd strings. */
void strv_free_n(char **v, size_t n);
