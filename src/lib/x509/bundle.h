/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parse what users upload: one certificate; a certificate and its private key in either order;
 * a leaf followed by intermediates; a bundle of CA certificates; a DER certificate. The parser
 * is a pure function from bytes to a bundle: it judges shape only (labels, counts, encodings,
 * sizes); what the bundle is good for is x509/validate.h's business.
 *
 * Accepted PEM labels: CERTIFICATE, PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY, and TSS2
 * PRIVATE KEY (a TPM key blob, issue #5: decoded by whichever loaded provider offers the DER
 * structure "TSS2", which loads it into its TPM; the key comes back held there, key_is_held).
 * TRUSTED CERTIFICATE is refused: its OpenSSL-specific trust settings would be silently dropped.
 * ENCRYPTED PRIVATE KEY and Proc-Type: 4,ENCRYPTED headers are refused (CERTD_E_KEY_ENCRYPTED);
 * any other label is CERTD_E_PEM_UNEXPECTED_LABEL. Text before the first block is refused as
 * garbage, and text after the last block other than white space as trailing data; text
 * between two blocks is garbage too.
 */
#pragma once

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "error/error.h"
#include "util/cleanup.h"
#include "util/span.h"

struct bundle {
    STACK_OF(X509) *certs; /* owned; in input order; at least one on success */
    EVP_PKEY *key;         /* owned; NULL when the input held no private key */
    bool is_der;           /* the input was one DER certificate */
};

/*
 * Parse `in` (at most max_input bytes; 0 means CERTD_INPUT_MAX_DEFAULT, values above
 * CERTD_INPUT_MAX_HARD are clamped to it). On success returns 0 and an owned bundle in *ret.
 * On failure returns a negative errno and fills err with the first problem found:
 *   -EINVAL/CERTD_E_INPUT_EMPTY        nothing but white space
 *   -E2BIG/CERTD_E_INPUT_TOO_LARGE     over the cap
 *   -EBADMSG/CERTD_E_INPUT_GARBAGE     not PEM and not one DER certificate; embedded NUL
 *   -EBADMSG/CERTD_E_PEM_TRUNCATED     a BEGIN line without its END line
 *   -EBADMSG/CERTD_E_PEM_BAD_BLOCK     a block whose base64 or DER does not decode fully
 *   -EBADMSG/CERTD_E_PEM_UNEXPECTED_LABEL  e.g. a CSR or a public key where none belongs
 *   -EBADMSG/CERTD_E_TRAILING_DATA     non-space bytes after the last block
 *   -EINVAL/CERTD_E_NO_CERT            blocks, but no certificate among them
 *   -E2BIG/CERTD_E_TOO_MANY_CERTS      more than CERTD_BUNDLE_CERTS_MAX certificates
 *   -EKEYREJECTED/CERTD_E_KEY_ENCRYPTED  an encrypted private key
 *   -EINVAL/CERTD_E_MULTIPLE_KEYS      more than one private key
 *   -EBADMSG/CERTD_E_KEY_BAD / CERTD_E_CERT_BAD  a block that does not decode as its label says
 *   -EBADMSG/CERTD_E_KEY_BAD           a private key whose public part does not belong to its
 *                                      private part (checked here, since key matching compares
 *                                      public parts only), or an RSA key whose numbers do not
 *                                      fit together: e even or not in (1, n), d not in (1, n),
 *                                      p or q longer than n, dP/dQ/qInv longer than their
 *                                      modulus, p*q != n, dP != d mod (p-1), dQ != d mod (q-1),
 *                                      qInv*q != 1 mod p (the message names the relation, never
 *                                      a value). All of this is checked before the key is used.
 *   -EOPNOTSUPP/CERTD_E_KEY_UNSUPPORTED  a private key that cannot be checked that way (a type
 *                                      no provider validates; RSA above 16384 bits; multi-prime
 *                                      RSA, i.e. more than two factors); a TSS2 PRIVATE KEY when
 *                                      no loaded provider reads one ("no loaded provider can read
 *                                      a TSS2 PRIVATE KEY (load the tpm2 provider)")
 *   -EIO/CERTD_E_UNAVAILABLE           a TSS2 PRIVATE KEY its provider did not load into the
 *                                      TPM: the TPM is away or out of object slots, or the blob
 *                                      is another TPM's. Not proof of a bad key: never delete it
 *                                      on this answer
 *   Held keys (key_is_held: a TSS2 blob a provider loaded into its TPM) skip the consistency
 *   checks above: their private part never leaves the device, which verified the blob's
 *   integrity when it loaded it. A malformed blob, or one its TPM refuses, is CERTD_E_KEY_BAD.
 *   Each held key takes one of the TPM's few object slots until it is freed.
 *   -ENOMEM/CERTD_E_NO_MEMORY
 * Certificates are decoded into libctx/propq (X509_new_ex), keys through OSSL_DECODER.
 */
_must_check_ int bundle_parse(OSSL_LIB_CTX *libctx, const char *propq, struct span in,
                              size_t max_input, struct bundle **ret, struct certd_err *err);

/* Free a bundle and all it owns; accepts NULL; returns NULL. */
struct bundle *bundle_free(struct bundle *b);
DEFINE_CLEANUP_STRUCT(bundle, bundle_free)

/* Number of certificates in the bundle. */
size_t bundle_n_certs(const struct bundle *b);
/* Borrow certificate i (0 = first in the input). */
X509 *bundle_cert(const struct bundle *b, size_t i);

/*
 * Encode certificates as PEM, concatenated, into a malloc'd NUL-terminated string.
 * Returns 0, -ENOMEM or -EIO.
 */
_must_check_ int certs_to_pem(const STACK_OF(X509) *certs, char **ret, size_t *ret_len);
/* The same for one certificate. */
_must_check_ int cert_to_pem(const X509 *cert, char **ret, size_t *ret_len);

/*
 * Parse exactly one unencrypted private key in PEM (PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE
 * KEY, or TSS2 PRIVATE KEY with a provider that reads it), nothing but white space around it: a
 * key file as certctl and the daemon read it.
 * Returns 0 and an owned key, or a negative errno with err (CERTD_E_INPUT_EMPTY,
 * CERTD_E_INPUT_TOO_LARGE, CERTD_E_INPUT_GARBAGE, CERTD_E_PEM_TRUNCATED, CERTD_E_PEM_BAD_BLOCK,
 * CERTD_E_PEM_UNEXPECTED_LABEL, CERTD_E_KEY_ENCRYPTED, CERTD_E_MULTIPLE_KEYS, CERTD_E_KEY_BAD,
 * CERTD_E_TRAILING_DATA; CERTD_E_KEY_MISSING when the input holds no key). The key is checked
 * for consistency as in bundle_parse (CERTD_E_KEY_BAD, CERTD_E_KEY_UNSUPPORTED), unless held.
 */
_must_check_ int key_parse_pem(OSSL_LIB_CTX *libctx, const char *propq, struct span in,
                               EVP_PKEY **ret, struct certd_err *err);
