/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one error type of libcertd (DESIGN.md, STYLE.md §3). Functions return a negative errno;
 * the entry points that judge user input also fill a struct certd_err: a stable code, which
 * belongs to exactly one class, and a message written for the user. Front ends map classes and
 * codes to HTTP statuses, Redfish messages, D-Bus errors and exit codes in one table each.
 * Messages may name subjects, serials and fingerprints; never key material or passphrases.
 */
#pragma once

#include <stdbool.h>

#include "util/cleanup.h"

enum certd_errclass {
    CERTD_CLASS_NONE,
    CERTD_CLASS_INVALID_INPUT, /* the request itself is wrong: fix it and retry */
    CERTD_CLASS_NOT_ALLOWED,   /* well-formed, but policy or state forbids it */
    CERTD_CLASS_NOT_FOUND,
    CERTD_CLASS_CONFLICT,    /* clashes with what exists (duplicate, limit reached) */
    CERTD_CLASS_UNAVAILABLE, /* try again later */
    CERTD_CLASS_INTERNAL,    /* our fault or the system's: storage, memory, OpenSSL */
    CERTD_CLASS_UPSTREAM,    /* a program or service we hand work to failed (a signing helper) */
    CERTD_CLASS_MAX
};

/* X(code, name, class): the name is stable and appears in --json output and API bodies. */
#define CERTD_ERRORS(X)                                                                   \
    X(CERTD_E_OK, "ok", CERTD_CLASS_NONE)                                                 \
    /* parsing uploads */                                                                 \
    X(CERTD_E_INPUT_EMPTY, "input-empty", CERTD_CLASS_INVALID_INPUT)                      \
    X(CERTD_E_INPUT_TOO_LARGE, "input-too-large", CERTD_CLASS_INVALID_INPUT)              \
    X(CERTD_E_INPUT_GARBAGE, "input-garbage", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_PEM_TRUNCATED, "pem-truncated", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_PEM_BAD_BLOCK, "pem-bad-block", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_PEM_UNEXPECTED_LABEL, "pem-unexpected-label", CERTD_CLASS_INVALID_INPUT)    \
    X(CERTD_E_TRAILING_DATA, "trailing-data", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_NO_CERT, "no-certificate", CERTD_CLASS_INVALID_INPUT)                       \
    X(CERTD_E_TOO_MANY_CERTS, "too-many-certificates", CERTD_CLASS_INVALID_INPUT)         \
    X(CERTD_E_KEY_ENCRYPTED, "key-encrypted", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_MULTIPLE_KEYS, "multiple-keys", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_KEY_BAD, "key-malformed", CERTD_CLASS_INVALID_INPUT)                        \
    X(CERTD_E_CERT_BAD, "certificate-malformed", CERTD_CLASS_INVALID_INPUT)               \
    /* validating for an endpoint */                                                      \
    X(CERTD_E_NOT_ONE_LEAF, "not-one-leaf", CERTD_CLASS_INVALID_INPUT)                    \
    X(CERTD_E_KEY_MISSING, "key-missing", CERTD_CLASS_INVALID_INPUT)                      \
    X(CERTD_E_KEY_MISMATCH, "key-mismatch", CERTD_CLASS_INVALID_INPUT)                    \
    X(CERTD_E_KEY_WEAK, "key-weak", CERTD_CLASS_INVALID_INPUT)                            \
    X(CERTD_E_KEY_UNSUPPORTED, "key-unsupported", CERTD_CLASS_INVALID_INPUT)              \
    X(CERTD_E_SIGNATURE_WEAK, "signature-weak", CERTD_CLASS_INVALID_INPUT)                \
    X(CERTD_E_CHAIN_ORDER, "chain-order", CERTD_CLASS_INVALID_INPUT)                      \
    X(CERTD_E_CHAIN_TOO_LONG, "chain-too-long", CERTD_CLASS_INVALID_INPUT)                \
    X(CERTD_E_EKU_MISMATCH, "eku-mismatch", CERTD_CLASS_INVALID_INPUT)                    \
    X(CERTD_E_KEY_USAGE_MISMATCH, "key-usage-mismatch", CERTD_CLASS_INVALID_INPUT)        \
    X(CERTD_E_CERT_EXPIRED, "certificate-expired", CERTD_CLASS_INVALID_INPUT)             \
    X(CERTD_E_CERT_NOT_YET_VALID, "certificate-not-yet-valid", CERTD_CLASS_INVALID_INPUT) \
    X(CERTD_E_CERT_BEFORE_1970, "certificate-before-1970", CERTD_CLASS_INVALID_INPUT)     \
    X(CERTD_E_NOT_CA, "not-ca", CERTD_CLASS_INVALID_INPUT)                                \
    X(CERTD_E_CA_NO_KEYCERTSIGN, "ca-without-keycertsign", CERTD_CLASS_INVALID_INPUT)     \
    X(CERTD_E_KEY_NOT_ALLOWED, "key-not-allowed", CERTD_CLASS_NOT_ALLOWED)                \
    X(CERTD_E_DUPLICATE, "duplicate", CERTD_CLASS_CONFLICT)                               \
    X(CERTD_E_LIMIT_REACHED, "limit-reached", CERTD_CLASS_CONFLICT)                       \
    X(CERTD_E_IN_USE, "in-use", CERTD_CLASS_CONFLICT)                                     \
    /* keys, CSRs, issuing */                                                             \
    X(CERTD_E_ALG_UNSUPPORTED, "algorithm-unsupported", CERTD_CLASS_INVALID_INPUT)        \
    X(CERTD_E_KEY_SIZE_UNSUPPORTED, "key-size-unsupported", CERTD_CLASS_INVALID_INPUT)    \
    X(CERTD_E_CURVE_UNSUPPORTED, "curve-unsupported", CERTD_CLASS_INVALID_INPUT)          \
    X(CERTD_E_FIELD_MISSING, "field-missing", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_FIELD_TOO_LONG, "field-too-long", CERTD_CLASS_INVALID_INPUT)                \
    X(CERTD_E_FIELD_INVALID, "field-invalid", CERTD_CLASS_INVALID_INPUT)                  \
    X(CERTD_E_SAN_INVALID, "alternative-name-invalid", CERTD_CLASS_INVALID_INPUT)         \
    X(CERTD_E_KEY_USAGE_INVALID, "key-usage-invalid", CERTD_CLASS_INVALID_INPUT)          \
    X(CERTD_E_TOO_MANY_VALUES, "too-many-values", CERTD_CLASS_INVALID_INPUT)              \
    X(CERTD_E_CSR_BAD, "csr-malformed", CERTD_CLASS_INVALID_INPUT)                        \
    X(CERTD_E_CSR_SIGNATURE, "csr-signature-invalid", CERTD_CLASS_INVALID_INPUT)          \
    X(CERTD_E_VALIDITY_INVALID, "validity-invalid", CERTD_CLASS_INVALID_INPUT)            \
    X(CERTD_E_POLICY_FORBIDS, "policy-forbids", CERTD_CLASS_NOT_ALLOWED)                  \
    /* storage and the rest */                                                            \
    X(CERTD_E_NOT_FOUND, "not-found", CERTD_CLASS_NOT_FOUND)                              \
    X(CERTD_E_UNAVAILABLE, "unavailable", CERTD_CLASS_UNAVAILABLE)                        \
    X(CERTD_E_SIGNER_FAILED, "signer-failed", CERTD_CLASS_UPSTREAM)                       \
    X(CERTD_E_STORAGE, "storage-failure", CERTD_CLASS_INTERNAL)                           \
    X(CERTD_E_NO_MEMORY, "out-of-memory", CERTD_CLASS_INTERNAL)                           \
    X(CERTD_E_INTERNAL, "internal-error", CERTD_CLASS_INTERNAL)

#define CERTD_ERR_ENUM(code, name, cls) code,
enum certd_errc { CERTD_ERRORS(CERTD_ERR_ENUM) CERTD_E_MAX };
#undef CERTD_ERR_ENUM

#define CERTD_ERR_MSG_MAX   256
#define CERTD_ERR_FIELD_MAX 32

struct certd_err {
    enum certd_errc code;
    char msg[CERTD_ERR_MSG_MAX];
    /* The request field at fault, by its Redfish name ("Country", "AlternativeNames"), when
     * the error is about one field of a structured request; "" otherwise. Front ends name it
     * (Redfish ActionParameterValueError) without parsing the message. */
    char field[CERTD_ERR_FIELD_MAX];
};

/*
 * Record code and message in err (nullable) unless an earlier, more specific writer already
 * did, and return r (a negative errno) so that callers can `return err_set(...)`.
 */
_printf_(4, 5) int err_set(struct certd_err *err, int r, enum certd_errc code, const char *fmt,
                           ...);

/* err_set that also records the request field at fault (see struct certd_err). */
_printf_(5, 6) int err_set_field(struct certd_err *err, int r, enum certd_errc code,
                                 const char *field, const char *fmt, ...);

/* Reset err (nullable) to "no error". */
void err_clear(struct certd_err *err);
/* True when err holds an error. */
bool err_is_set(const struct certd_err *err);
/* The stable name of a code ("key-mismatch"); "unknown" for out-of-range values. */
const char *err_code_name(enum certd_errc code);
/* The class of a code. */
enum certd_errclass err_code_class(enum certd_errc code);
/* "invalid-input", "not-allowed", ...; for logs and --json output. */
const char *err_class_name(enum certd_errclass cls);
