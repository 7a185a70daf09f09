/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys and certificates named by URI (seed 003, issue #5), read through OSSL_STORE so that a
 * provider's store serves its own schemes: "file:" (RFC 8089) or a plain absolute path,
 * "handle:0x81xxxxxx" (a persistent TPM key), "handle:0x01xxxxxx" (a certificate in a TPM NV
 * index), "object:PATH" (a serialized TPM object), and whatever else a loaded provider opens.
 *
 * What a URI may name is checked here, before OpenSSL sees it (uri_check, the one parser of
 * certd's key and certificate locations; the configuration uses it too): a bounded length;
 * printable ASCII without white space, and a scheme of [a-z][a-z0-9+.-]* (lowercase); "handle:"
 * exactly "0x" and 8 hex digits; "object:" and "file:" an absolute path in normal form (no "//",
 * "." or ".." component, no trailing '/', shorter than PATH_MAX). A plain absolute path is not a
 * URI: it may hold any bytes but control characters (spaces and UTF-8 included), in normal form.
 * OSSL_STORE then does the rest. Loading never asks for a passphrase (a UI method that refuses
 * every prompt: a key that wants one is CERTD_E_KEY_ENCRYPTED), and never logs or returns key
 * material. Files (file:, object:, plain paths) are looked at before OpenSSL opens them: they
 * must exist, be regular files and hold at most CERTD_INPUT_MAX_HARD bytes.
 *
 * Thread-safety: re-entrant; loading a held key (a TPM) uses its provider, which the caller
 * serialises (the daemon's key lane).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error/error.h"
#include "util/cleanup.h"

/* Longest URI accepted (a path plus a scheme; configuration lines are shorter anyway). */
#define URI_MAX 4200u

enum uri_kind {
    URI_FILE,   /* file: or a plain absolute path */
    URI_HANDLE, /* handle:0x........ */
    URI_OBJECT, /* object:/path */
    URI_OTHER,  /* another scheme, for a provider's store */
    URI_KIND_MAX
};

/*
 * Check uri (NUL-terminated, untrusted) as described above and say what it is. For URI_FILE and
 * URI_OBJECT, *ret_path (nullable) gets a malloc'd absolute path (file: URIs per RFC 8089:
 * "file:///p", "file://localhost/p", "file:/p", percent-decoded strictly, no query or fragment,
 * no encoded control character or %00); for URI_HANDLE, *ret_handle (nullable) the 32-bit
 * handle. No file system access. Outputs are written only on success. Returns 0, or -EINVAL with
 * CERTD_E_FIELD_INVALID, -E2BIG with CERTD_E_FIELD_TOO_LONG (over URI_MAX, or a path of
 * PATH_MAX or more), -ENOMEM with CERTD_E_NO_MEMORY. The message is a phrase about the value
 * without quoting it, for the caller to put after the field's name ("must not contain '//'",
 * "a handle: URI takes 0x and 8 hex digits (handle:0x81000001)", "bad percent-encoding in the
 * file: URI ...", "must be an absolute path or a URI with a lowercase scheme ...").
 */
_must_check_ int uri_check(const char *uri, enum uri_kind *ret_kind, char **ret_path,
                           uint32_t *ret_handle, struct certd_err *err);

/*
 * Load the one private key at uri through OSSL_STORE in libctx/propq (a file: URI or plain path
 * is given to OSSL_STORE as "file:" and the decoded path). Returns 0 and an owned key, or -errno
 * with err:
 *   -ENOENT  CERTD_E_NOT_FOUND   no such file (file:, object:, a path);
 *   -EBADMSG CERTD_E_KEY_MISSING uri holds no private key that a loaded provider reads (a
 *            certificate, a public key, a block OpenSSL's file store skipped as undecodable);
 *   -EBADMSG CERTD_E_MULTIPLE_KEYS more than one key;
 *   -EBADMSG CERTD_E_INPUT_GARBAGE the file store failed on the file's contents;
 *   -EACCES  CERTD_E_KEY_ENCRYPTED the key wants a passphrase;
 *   -EIO     CERTD_E_UNAVAILABLE a provider's own object could not be read: OpenSSL does not
 *            tell "no such handle" from "the TPM cannot be reached", so both are this, with
 *            a message saying so (the provider's words go to the debug log);
 *   -EIO     CERTD_E_STORAGE the file cannot be looked at (stat failed other than ENOENT);
 *   -EINVAL  CERTD_E_FIELD_INVALID not a regular file;
 *   -E2BIG   CERTD_E_INPUT_TOO_LARGE a file over CERTD_INPUT_MAX_HARD bytes;
 *   -E2BIG   CERTD_E_TOO_MANY_VALUES more objects than a file holds (over 33);
 *   -EOPNOTSUPP CERTD_E_FIELD_INVALID no loaded provider opens this scheme;
 *   -EINVAL / -E2BIG uri_check's errors; -ENOMEM.
 * Messages name the URI (never key bytes). A held key takes a TPM object slot until freed.
 */
_must_check_ int uri_load_key(OSSL_LIB_CTX *libctx, const char *propq, const char *uri,
                              EVP_PKEY **ret, struct certd_err *err);

/*
 * Load the certificates at uri (a PEM file with a chain, a DER certificate, an NV index) in the
 * order the store gives them, at most CERTD_BUNDLE_CERTS_MAX. Returns 0 and an owned, non-empty
 * stack, or the errors of uri_load_key with -EBADMSG CERTD_E_NO_CERT for "no certificate at
 * uri" and -E2BIG CERTD_E_TOO_MANY_VALUES for too many. Certificates are decoded into libctx by
 * OpenSSL's core, so their public keys are software keys even when a provider's store (the TPM's
 * NV index) served the bytes.
 */
_must_check_ int uri_load_certs(OSSL_LIB_CTX *libctx, const char *propq, const char *uri,
                                STACK_OF(X509) **ret, struct certd_err *err);
