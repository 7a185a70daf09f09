/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The library context certd works in: providers loaded in a given order, each with its
 * parameters, and a global property query. Parameters reach a provider the one way OpenSSL 3.0
 * offers for any provider: its configuration module. We write a small configuration in memory
 * (never a file, never OPENSSL_CONF) and let OpenSSL's parser and "providers" module read it
 * into the new context, in two passes over the same text:
 *   1. "certd_register": each provider's parameters (and module path), without activation,
 *      are only registered in the context, for OSSL_PROVIDER_load to pick up later;
 *   2. "openssl_conf": the same with "activate = 1", in order. Providers activated by the
 *      configuration belong to the context and go with OSSL_LIB_CTX_free (one loaded with
 *      OSSL_PROVIDER_load would need an OSSL_PROVIDER_unload that our callers cannot make).
 * OpenSSL 3.0 takes a provider that fails to activate from configuration for a non-fatal
 * error: CONF_modules_load succeeds and the error queue is emptied. So afterwards each
 * provider must be available, in order; the first that is not is loaded once more by hand
 * (OSSL_PROVIDER_load, with the parameters registered in pass 1) to get OpenSSL's cause.
 * Invariants: every name and value is checked before it is written into the configuration
 * text (nothing can add a line, a section, a variable or a comment to it); no provider is
 * named in this file; on failure nothing is returned and everything is freed.
 */
#include "keys/providers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>

#include "util/ossl.h"

DEFINE_CLEANUP(CONF, NCONF_free)

/*
 * Names of the sections we write, for the two passes (activate, register); no parameter value
 * may be one of them (see value_check). The per-provider ones end with the provider's index.
 */
#define APPNAME_REGISTER      "certd_register"
#define SECTION_INIT          "certd_init"
#define SECTION_INIT_REG      "certd_init_reg"
#define SECTION_PROVIDERS     "certd_providers"
#define SECTION_PROVIDERS_REG "certd_providers_reg"
#define SECTION_PROVIDER      "certd_provider_"
#define SECTION_PROVIDER_REG  "certd_provider_reg_"

/*
 * Entries of a provider section that OpenSSL's providers module takes as its own commands:
 * "activate" and "soft_load" would change how a provider is loaded ("soft_load" silently
 * ignores a failure), "identity" would load another provider under this name. "module" (the
 * path of the provider's shared object) is allowed: it only says where the provider is.
 */
static const char *const reserved_names[] = { "activate", "soft_load", "identity" };

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/*
 * A parameter name: [A-Za-z0-9_.-], starting with a letter or digit (a line starting with '.'
 * is a directive to OpenSSL's parser), and not one of the module's own commands. The module
 * matches commands on the part after the first '.', so "x.activate" is "activate" to it.
 */
static int param_name_check(const char *s, const char **why)
{
    size_t n = strnlen(s, PROVIDER_PARAM_NAME_MAX + 1);
    if (n == 0 || n > PROVIDER_PARAM_NAME_MAX) {
        *why = "must be 1 to 63 characters";
        return -EINVAL;
    }
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
          (s[0] >= '0' && s[0] <= '9'))) {
        *why = "must start with a letter or a digit";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!name_char_ok(s[i])) {
            *why = "may hold only A-Z, a-z, 0-9, '_', '.' and '-'";
            return -EINVAL;
        }
    }
    const char *dot = strchr(s, '.');
    const char *cmd = dot ? dot + 1 : s;
    for (size_t i = 0; i < ELEMENTSOF(reserved_names); i++) {
        if (strcmp(cmd, reserved_names[i]) == 0) {
            *why = "is a command of OpenSSL's provider configuration, not a parameter";
            return -EINVAL;
        }
    }
    return 0;
}

/* Whether s is prefix followed by one or more digits. */
static bool is_numbered(const char *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0 || s[plen] == '\0') {
        return false;
    }
    for (const char *p = s + plen; *p; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return true;
}

/* Whether s names a section of the configuration we write (or the parser's own "default"). */
static bool names_section(const char *s)
{
    static const char *const fixed[] = { "default", SECTION_INIT, SECTION_INIT_REG,
                                         SECTION_PROVIDERS, SECTION_PROVIDERS_REG };
    for (size_t i = 0; i < ELEMENTSOF(fixed); i++) {
        if (strcmp(s, fixed[i]) == 0) {
            return true;
        }
    }
    return is_numbered(s, SECTION_PROVIDER) || is_numbered(s, SECTION_PROVIDER_REG);
}

/*
 * A value: printable ASCII without the characters OpenSSL's parser gives a meaning to (quotes,
 * backslash escapes, "$var" expansion, '#' comments, ';'), and without white space at either
 * end, which the parser would drop. A value that names a section would be read as a section of
 * nested parameters, so it cannot be given either.
 */
static int value_check(const char *s, const char **why)
{
    size_t n = strnlen(s, PROVIDER_PARAM_VALUE_MAX + 1);
    if (n == 0 || n > PROVIDER_PARAM_VALUE_MAX) {
        *why = "must be 1 to 199 characters";
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c < 0x20 || c > 0x7e || strchr("\"'\\$#;", c)) {
            *why = "may hold only printable ASCII without '\"', ''', '\\', '$', '#' and ';'";
            return -EINVAL;
        }
    }
    if (s[0] == ' ' || s[n - 1] == ' ') {
        *why = "must not start or end with a space";
        return -EINVAL;
    }
    if (names_section(s)) {
        *why = "names a section of OpenSSL's configuration";
        return -EINVAL;
    }
    return 0;
}

static int specs_check(const struct provider_spec *specs, size_t n, struct certd_err *err)
{
    if (n == 0 || n > PROVIDERS_MAX) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "between 1 and %u providers can be loaded, not %zu", PROVIDERS_MAX, n);
    }
    for (size_t i = 0; i < n; i++) {
        const struct provider_spec *sp = &specs[i];
        if (!key_provider_name_str_is_valid(sp->name)) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "malformed provider name '%.*s': 1 to %u characters of a-z, 0-9, '_' "
                           "and '-'",
                           (int)strnlen(sp->name, sizeof(sp->name)), sp->name,
                           KEY_PROVIDER_NAME_MAX);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(specs[j].name, sp->name) == 0) {
                return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "provider %s is named twice",
                               sp->name);
            }
        }
        if (sp->n_params > PROVIDER_PARAMS_MAX || (sp->n_params > 0 && !sp->params)) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "provider %s: at most %u parameters", sp->name, PROVIDER_PARAMS_MAX);
        }
        for (size_t j = 0; j < sp->n_params; j++) {
            const struct provider_param *pp = &sp->params[j];
            const char *why = NULL;
            if (!pp->name || param_name_check(pp->name, &why) < 0) {
                return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                               "provider %s: parameter name '%.*s' %s", sp->name,
                               pp->name ? (int)strnlen(pp->name, PROVIDER_PARAM_NAME_MAX) : 0,
                               pp->name ? pp->name : "", why ? why : "is missing");
            }
            for (size_t k = 0; k < j; k++) {
                if (strcmp(sp->params[k].name, pp->name) == 0) {
                    return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                                   "provider %s: parameter %s is given twice", sp->name, pp->name);
                }
            }
            if (!pp->value || value_check(pp->value, &why) < 0) {
                /* The value is not quoted: it may be a secret (a parent's password). */
                return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                               "provider %s: the value of parameter %s %s", sp->name, pp->name,
                               why ? why : "is missing");
            }
        }
    }
    return 0;
}

/* The configuration text for specs, in a memory BIO; names and values are checked already. */
static int conf_text(const struct provider_spec *specs, size_t n, BIO **ret)
{
    _cleanup_(cleanup_BIO) BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) {
        return -ENOMEM;
    }
    bool ok =
        BIO_printf(bio,
                   "openssl_conf = " SECTION_INIT "\n" APPNAME_REGISTER " = " SECTION_INIT_REG "\n"
                   "[" SECTION_INIT "]\nproviders = " SECTION_PROVIDERS "\n"
                   "[" SECTION_INIT_REG "]\nproviders = " SECTION_PROVIDERS_REG "\n") > 0;
    /* Pass 2 (activate), then pass 1 (register): the same providers, in the same order. */
    for (int pass = 0; ok && pass < 2; pass++) {
        const char *list = pass == 0 ? SECTION_PROVIDERS : SECTION_PROVIDERS_REG;
        const char *prefix = pass == 0 ? SECTION_PROVIDER : SECTION_PROVIDER_REG;
        ok = BIO_printf(bio, "[%s]\n", list) > 0;
        for (size_t i = 0; ok && i < n; i++) {
            ok = BIO_printf(bio, "%s = %s%zu\n", specs[i].name, prefix, i) > 0;
        }
        for (size_t i = 0; ok && i < n; i++) {
            ok = BIO_printf(bio, "[%s%zu]\n%s", prefix, i, pass == 0 ? "activate = 1\n" : "") > 0;
            for (size_t j = 0; ok && j < specs[i].n_params; j++) {
                ok = BIO_printf(bio, "%s = %s\n", specs[i].params[j].name,
                                specs[i].params[j].value) > 0;
            }
        }
    }
    if (!ok) {
        (void)ossl_drain_errors("providers: configuration text");
        return -ENOMEM;
    }
    *ret = TAKE_PTR(bio);
    return 0;
}

/* A parameter whose value is not shown in messages: it may hold a password or a PIN. */
static bool param_is_secret(const char *name)
{
    static const char *const words[] = { "auth", "pass", "pin", "secret", "key" };
    for (size_t i = 0; i < ELEMENTSOF(words); i++) {
        if (strcasestr(name, words[i])) {
            return true;
        }
    }
    return false;
}

/*
 * OpenSSL's reason for the oldest error on the queue, with its data ("could not load the shared
 * library (filename(...): No such file or directory)"), into buf; then the queue is drained to
 * the debug log. A provider's own reason strings go with the provider when it fails to load, so
 * its errors are known by their data alone.
 */
static void failure_cause(char *buf, size_t size)
{
    const char *data = NULL;
    int flags = 0;
    unsigned long e = ERR_peek_error_data(&data, &flags);
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    bool has_data = (flags & ERR_TXT_STRING) && data && data[0];
    if (reason && has_data) {
        (void)snprintf(buf, size, "%s (%s)", reason, data);
    } else if (reason) {
        (void)snprintf(buf, size, "%s", reason);
    } else if (has_data) {
        (void)snprintf(buf, size, "%s", data);
    } else if (e) {
        (void)snprintf(buf, size, "OpenSSL error 0x%lx", e);
    } else {
        (void)snprintf(buf, size, "no reason given");
    }
    (void)ossl_drain_errors("providers: load");
}

/* "tcti=swtpm:port=1, parent-auth=(hidden)" for the message about a provider that failed. */
static void params_text(const struct provider_spec *sp, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < sp->n_params && used < size; j++) {
        const struct provider_param *pp = &sp->params[j];
        int n = snprintf(buf + used, size - used, "%s%s=%s", j ? ", " : "", pp->name,
                         param_is_secret(pp->name) ? "(hidden)" : pp->value);
        if (n < 0) {
            break;
        }
        used += (size_t)n;
    }
}

int providers_libctx_new(const struct provider_spec *specs, size_t n, const char *query,
                         OSSL_LIB_CTX **ret, struct certd_err *err)
{
    assert_return(ret, -EINVAL);
    assert_return(specs || n == 0, -EINVAL);

    int r = specs_check(specs, n, err);
    if (r < 0) {
        return r;
    }
    if (query && strnlen(query, PROVIDER_QUERY_MAX + 1) > PROVIDER_QUERY_MAX) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "the property query is longer than %u characters", PROVIDER_QUERY_MAX);
    }
    for (const char *c = query; c && *c; c++) {
        if (*c < 0x20 || *c > 0x7e) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "the property query may hold only printable ASCII");
        }
    }

    /*
     * The "providers" configuration module must be registered for CONF_modules_load below.
     * OPENSSL_load_builtin_modules does that without reading any openssl.cnf (which could
     * activate providers of its own in the default context: a second TPM user).
     */
    OPENSSL_load_builtin_modules();

    _cleanup_(cleanup_BIO) BIO *text = NULL;
    r = conf_text(specs, n, &text);
    if (r < 0) {
        return err_set(err, r, CERTD_E_NO_MEMORY, "out of memory");
    }
    _cleanup_(cleanup_OSSL_LIB_CTX) OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    _cleanup_(cleanup_CONF) CONF *conf = libctx ? NCONF_new_ex(libctx, NULL) : NULL;
    if (!conf) {
        (void)ossl_drain_errors("providers: new");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    long line = 0;
    if (NCONF_load_bio(conf, text, &line) <= 0 ||
        CONF_modules_load(conf, APPNAME_REGISTER, 0) <= 0 ||
        CONF_modules_load(conf, NULL, 0) <= 0) {
        /* Everything written was checked: this is OpenSSL running out of memory, or a bug. */
        char cause[128];
        failure_cause(cause, sizeof(cause));
        return err_set(err, -EIO, CERTD_E_INTERNAL,
                       "OpenSSL refused the provider configuration (line %ld): %s", line, cause);
    }
    (void)ossl_drain_errors("providers: configuration");

    for (size_t i = 0; i < n; i++) {
        if (OSSL_PROVIDER_available(libctx, specs[i].name) == 1) {
            continue;
        }
        /* Once more by hand, for the cause OpenSSL's configuration module swallowed. */
        char cause[160], params[160];
        OSSL_PROVIDER *again = OSSL_PROVIDER_load(libctx, specs[i].name);
        if (again) {
            (void)OSSL_PROVIDER_unload(again);
            (void)ossl_drain_errors("providers: load");
            (void)snprintf(cause, sizeof(cause),
                           "it failed to activate, then loaded when tried again (an unreliable "
                           "device?)");
        } else {
            failure_cause(cause, sizeof(cause));
        }
        params_text(&specs[i], params, sizeof(params));
        return err_set(err, -ENOENT, CERTD_E_UNAVAILABLE, "provider %s cannot be loaded: %s%s%s%s",
                       specs[i].name, cause, params[0] ? " (with " : "", params,
                       params[0] ? ")" : "");
    }

    /*
     * The global query after the providers: EVP_set_default_properties parses it and refuses
     * one that does not parse, which the configuration module's alg_section would report only
     * as a failed module.
     */
    if (query && query[0] && EVP_set_default_properties(libctx, query) != 1) {
        (void)ossl_drain_errors("providers: query");
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "the property query '%s' does not parse", query);
    }

    *ret = TAKE_PTR(libctx);
    return 0;
}

bool providers_is_loaded(OSSL_LIB_CTX *libctx, const char *name)
{
    return key_provider_name_str_is_valid(name) && OSSL_PROVIDER_available(libctx, name) == 1;
}
