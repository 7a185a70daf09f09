/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OpenSSL library context certd works in (STYLE.md §6, issue #5): the providers named in
 * [providers] load, in that order, each with the parameters of its [provider NAME] section, and
 * the global property query. Built once at start; everything else borrows it.
 *
 * Parameters reach the providers through OpenSSL's own configuration module, fed from memory
 * (never from a file or the environment's OPENSSL_CONF): that is the one documented way to hand
 * a provider its parameters (the tpm2 provider's "tcti", a module path ...) in OpenSSL 3.0, so
 * certd passes any parameter to any provider without knowing its name. Providers are activated
 * by that configuration ("activate = 1", in order), so they belong to the context and go with
 * OSSL_LIB_CTX_free. OpenSSL 3.0 takes a provider that fails to activate from configuration for
 * a non-fatal error and empties the error queue: so each provider must then be available, in
 * order, and the first that is not is loaded once more by hand (OSSL_PROVIDER_load, with the
 * same parameters, registered by a first pass of the configuration) for OpenSSL's cause. No
 * fallback to the default provider happens: only what is listed is loaded. A provider that
 * cannot be loaded (unknown module, its init refused: a TPM that cannot be reached, a bad TCTI)
 * is an error naming the provider and the cause; nothing falls back to software keys. Which
 * provider's implementation a fetch without a property query gets is OpenSSL's choice, not
 * fixed by this order (tpm2.md P2): the global query says it.
 *
 * Known limit (tpm2-openssl 1.1.1 in Debian 12, and upstream when this was written): the tpm2
 * provider asks for its "tcti" parameter but never stores the answer (it passes the pointer's
 * value, not its address, to core_get_params), so only its environment variable TPM2OPENSSL_TCTI,
 * read first, selects the TPM; without it the TSS probes its defaults (/dev/tpmrm0, /dev/tpm0,
 * localhost:2321). A "tcti" parameter is still handed over, and takes effect once the provider
 * is fixed.
 *
 * Thread-safety: providers_libctx_new runs alone (start-up). The context it returns may be used
 * from any thread OpenSSL allows; providers that are not thread-safe (tpm2) are the callers'
 * business (the daemon's key lane).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <openssl/crypto.h>

#include "error/error.h"
#include "keys/keys.h"
#include "util/cleanup.h"

/* Providers in one [providers] load list. */
#define PROVIDERS_MAX 8u
/* Parameters of one provider. */
#define PROVIDER_PARAMS_MAX 16u
/* Longest parameter name and value (a configuration line holds less anyway). */
#define PROVIDER_PARAM_NAME_MAX  63u
#define PROVIDER_PARAM_VALUE_MAX 199u
/* Longest property query (global, or a provider's sign query). */
#define PROVIDER_QUERY_MAX 199u

struct provider_param {
    /* [A-Za-z0-9_.-], 1..PROVIDER_PARAM_NAME_MAX, starting with a letter or digit; not one of
     * the configuration module's commands "activate", "soft_load", "identity" (also not after
     * a '.': "x.activate"); "module" (the provider's shared object) is allowed */
    char *name;
    /* printable ASCII without '"', '\'', '\\', '$', '#', ';', 1..VALUE_MAX, no space at either
     * end, and not the name of a section of the generated configuration ("default",
     * "certd_init", "certd_providers", "certd_provider_N"), which OpenSSL would read as one */
    char *value;
};

struct provider_spec {
    char name[KEY_PROVIDER_NAME_MAX + 1]; /* [a-z0-9_-], as OpenSSL finds the module */
    struct provider_param *params;        /* n_params, owned by whoever owns the spec */
    size_t n_params;
};

/*
 * A new library context with the providers of specs[0..n) (borrowed; 1..PROVIDERS_MAX, no name
 * twice, no parameter twice) loaded and activated in that order, and query (nullable; "" =
 * none; printable ASCII, at most PROVIDER_QUERY_MAX) as its global default properties, set
 * after the providers with EVP_set_default_properties. Names and values are written into
 * OpenSSL's configuration text as they are, so the caller (config.c) checks them against the
 * rules above for its own messages; they are checked again here (-EINVAL,
 * CERTD_E_FIELD_INVALID) so that nothing can add a line, section, variable or comment.
 * Returns 0 and an owned context (free with OSSL_LIB_CTX_free; its providers go with it), or:
 *   -ENOENT  CERTD_E_UNAVAILABLE "provider NAME cannot be loaded: CAUSE (with P=V, ...)" for
 *            the first provider in order that fails (no such module, or its initialisation
 *            failed, e.g. "655370 tcti:IO failure" for a TPM that is not there); CAUSE is
 *            OpenSSL's reason text and data for the oldest error, fit for the administrator's
 *            log (it never holds a key), followed by the parameters that were given, with the
 *            values of those whose name holds "auth", "pass", "pin", "secret" or "key" shown as
 *            "(hidden)"; the message is cut at CERTD_ERR_MSG_MAX;
 *   -EINVAL  CERTD_E_FIELD_INVALID for a bad name, parameter or query ("the property query
 *            'X' does not parse"); a parameter's value is never quoted;
 *   -EIO     CERTD_E_INTERNAL when OpenSSL refuses the generated configuration (a bug);
 *   -ENOMEM.
 */
_must_check_ int providers_libctx_new(const struct provider_spec *specs, size_t n,
                                      const char *query, OSSL_LIB_CTX **ret, struct certd_err *err);

/* True when the provider called name is loaded and available in libctx (false for NULL or a
 * malformed name). */
bool providers_is_loaded(OSSL_LIB_CTX *libctx, const char *name);
