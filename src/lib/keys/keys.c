/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys: the names users give algorithms and curves (OpenSSL's, NIST's and the
 * TCG's), fresh key generation through the provider that libctx/propq select
 * (or in the one provider a spec names), description and strength policy for
 * keys from outside, PEM encoding, and how certd signs.
 * Invariants: keys are only ever EVP_PKEY; every fetch passes libctx and propq;
 * a key made for a spec with a provider comes from that provider or not at all;
 * anything that uses a key's private half (signing, encoding) asks the key's
 * own provider first, because a provider that holds its keys (a TPM) exports
 * only their public half; private key bytes leave this module only inside a
 * struct secret, and every intermediate buffer that held them is cleansed
 * before it is freed. No provider is named here: what a provider is comes
 * from what OpenSSL says about it.
 */
#include "keys/keys.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "keys/providers.h"
#include "util/ossl.h"
#include "util/parse.h"

DEFINE_CLEANUP(OSSL_ENCODER_CTX, OSSL_ENCODER_CTX_free)

/*
 * The longest configuration string key_spec_parse looks at: a provider name of
 * KEY_PROVIDER_NAME_MAX, ':' and "TPM_ALG_ECDSA:TPM_ECC_NIST_P521" make 63.
 */
#define KEY_SPEC_INPUT_MAX 64u

/* The request fields key_spec_from_names blames (struct certd_err.field): Redfish's names. */
#define FIELD_ALG   "KeyPairAlgorithm"
#define FIELD_BITS  "KeyBitLength"
#define FIELD_CURVE "KeyCurveId"

/* RSA below 2048 bits is weak (NIST SP 800-131A Rev. 2 §2). */
#define KEY_RSA_MIN_BITS 2048

struct curve_entry {
    const char *name;  /* accepted spelling, compared case-insensitively */
    const char *nist;  /* canonical NIST name */
    const char *group; /* OpenSSL group name passed to the key generator */
    unsigned bits;
};

/* Every spelling of the three curves we support: OpenSSL (SN and long name), SEC 2, NIST, TCG. */
static const struct curve_entry curves[] = {
    { "P-256", "P-256", "prime256v1", 256 },
    { "prime256v1", "P-256", "prime256v1", 256 },
    { "secp256r1", "P-256", "prime256v1", 256 },
    { "TPM_ECC_NIST_P256", "P-256", "prime256v1", 256 },
    { "P-384", "P-384", "secp384r1", 384 },
    { "secp384r1", "P-384", "secp384r1", 384 },
    { "TPM_ECC_NIST_P384", "P-384", "secp384r1", 384 },
    { "P-521", "P-521", "secp521r1", 521 },
    { "secp521r1", "P-521", "secp521r1", 521 },
    { "TPM_ECC_NIST_P521", "P-521", "secp521r1", 521 },
};

static const struct curve_entry *curve_lookup(const char *name)
{
    if (!name) {
        return NULL;
    }
    for (size_t i = 0; i < ELEMENTSOF(curves); i++) {
        if (str_case_eq(name, curves[i].name)) {
            return &curves[i];
        }
    }
    return NULL;
}

/* The first entry whose canonical name or size matches: the one we generate with. */
static const struct curve_entry *curve_by_bits(unsigned bits)
{
    for (size_t i = 0; i < ELEMENTSOF(curves); i++) {
        if (curves[i].bits == bits) {
            return &curves[i];
        }
    }
    return NULL;
}

struct alg_entry {
    const char *name;
    enum key_alg alg;
};

static const struct alg_entry algs[] = {
    { "RSA", KEY_ALG_RSA },         { "TPM_ALG_RSA", KEY_ALG_RSA }, { "EC", KEY_ALG_EC },
    { "ECDSA", KEY_ALG_EC },        { "TPM_ALG_ECC", KEY_ALG_EC },  { "TPM_ALG_ECDSA", KEY_ALG_EC },
    { "Ed25519", KEY_ALG_ED25519 },
};

static bool rsa_bits_ok(unsigned bits)
{
    return bits == 2048 || bits == 3072 || bits == 4096;
}

/* Keep a name from outside short and printable enough to quote in a message. */
static int quote_len(const char *s)
{
    size_t n = strnlen(s, 32);
    return (int)n;
}

int key_spec_from_names(const char *alg, unsigned bits, const char *curve, struct key_spec *ret,
                        struct certd_err *err)
{
    assert_return(ret, -EINVAL);

    if (!alg || alg[0] == '\0') {
        return err_set_field(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, FIELD_ALG,
                             "no key algorithm given; use RSA, EC or Ed25519");
    }
    const struct alg_entry *a = NULL;
    for (size_t i = 0; i < ELEMENTSOF(algs); i++) {
        if (str_case_eq(alg, algs[i].name)) {
            a = &algs[i];
            break;
        }
    }
    if (!a) {
        return err_set_field(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, FIELD_ALG,
                             "key algorithm '%.*s' is not supported; use RSA, EC or Ed25519",
                             quote_len(alg), alg);
    }

    bool has_curve = curve && curve[0] != '\0';
    struct key_spec spec = { .alg = a->alg };

    switch (a->alg) {
    case KEY_ALG_RSA:
        if (has_curve) {
            return err_set_field(err, -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, FIELD_CURVE,
                                 "a curve ('%.*s') applies to EC keys, not RSA", quote_len(curve),
                                 curve);
        }
        if (bits == 0) {
            bits = 2048;
        }
        if (!rsa_bits_ok(bits)) {
            return err_set_field(err, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, FIELD_BITS,
                                 "RSA key size %u is not supported; use 2048, 3072 or 4096", bits);
        }
        spec.bits = bits;
        break;
    case KEY_ALG_EC: {
        const struct curve_entry *c;
        if (has_curve) {
            c = curve_lookup(curve);
            if (!c) {
                return err_set_field(err, -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, FIELD_CURVE,
                                     "curve '%.*s' is not supported; use P-256, P-384 or P-521",
                                     quote_len(curve), curve);
            }
        } else {
            /* No curve: the size picks one (Redfish KeyBitLength alone), default P-256. */
            c = curve_by_bits(bits == 0 ? 256 : bits);
        }
        if (!c || (bits != 0 && bits != c->bits)) {
            return err_set_field(err, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, FIELD_BITS,
                                 "EC key size %u is not supported%s%s; use 256, 384 or 521", bits,
                                 c ? " with " : "", c ? c->nist : "");
        }
        spec.bits = c->bits;
        (void)snprintf(spec.curve, sizeof(spec.curve), "%s", c->nist);
        break;
    }
    case KEY_ALG_ED25519:
        if (has_curve) {
            return err_set_field(err, -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, FIELD_CURVE,
                                 "a curve ('%.*s') applies to EC keys, not Ed25519",
                                 quote_len(curve), curve);
        }
        if (bits != 0 && bits != 256) {
            return err_set_field(err, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, FIELD_BITS,
                                 "Ed25519 key size %u is not supported; Ed25519 keys are 256 bits",
                                 bits);
        }
        spec.bits = 256;
        break;
    case KEY_ALG_MAX:
    default:
        return err_set_field(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, FIELD_ALG,
                             "key algorithm not supported");
    }

    *ret = spec;
    return 0;
}

/*
 * Whether a property query has a term about the property "provider" ("provider=x", "?provider=x",
 * "-provider", "provider!=x"): OpenSSL refuses a query that names a property twice.
 */
static bool query_names_provider(const char *q)
{
    static const char name[] = "provider";
    const char *p = q;
    while (*p) {
        while (*p == ' ' || *p == '?' || *p == '-') {
            p++;
        }
        if (strncasecmp(p, name, sizeof(name) - 1) == 0) {
            char c = p[sizeof(name) - 1];
            if (c == '\0' || c == '=' || c == '!' || c == ',' || c == ' ') {
                return true;
            }
        }
        const char *comma = strchr(p, ',');
        if (!comma) {
            break;
        }
        p = comma + 1;
    }
    return false;
}

bool key_provider_name_is_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > KEY_PROVIDER_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

bool key_provider_name_str_is_valid(const char *s)
{
    return s && key_provider_name_is_valid(s, strnlen(s, KEY_PROVIDER_NAME_MAX + 1));
}

/*
 * propq (NULL or "") and "provider=NAME" ("?provider=NAME" when is_optional) into buf: 0, -EEXIST
 * when propq names a provider already (OpenSSL refuses a query naming a property twice), -E2BIG.
 */
static int query_add_provider(const char *propq, bool is_optional, const char *name, char *buf,
                              size_t size)
{
    if (propq && query_names_provider(propq)) {
        return -EEXIST;
    }
    const char *opt = is_optional ? "?" : "";
    int n = propq && propq[0] ? snprintf(buf, size, "%s,%sprovider=%s", propq, opt, name)
                              : snprintf(buf, size, "%sprovider=%s", opt, name);
    return n < 0 || (size_t)n >= size ? -E2BIG : 0;
}

static bool is_alg_name(const char *s)
{
    for (size_t i = 0; i < ELEMENTSOF(algs); i++) {
        if (str_case_eq(s, algs[i].name)) {
            return true;
        }
    }
    return false;
}

/* Parse "ALG[:SIZE|CURVE]" (no provider) into *ret; s is the whole string, for messages. */
static int spec_parse_alg(const char *alg, const char *arg, const char *s, struct key_spec *ret,
                          struct certd_err *err)
{
    struct key_spec probe;
    /* Validate the algorithm name first so that its error wins over the argument's. */
    int r = key_spec_from_names(alg, 0, NULL, &probe, err);
    if (r < 0) {
        return r;
    }

    switch (probe.alg) {
    case KEY_ALG_RSA: {
        unsigned bits = 0;
        if (arg) {
            uint64_t v;
            r = parse_u64(arg, 1, UINT16_MAX, &v);
            if (r == -EINVAL) {
                return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                               "malformed RSA key size '%s' in key type", arg);
            }
            if (r < 0) {
                return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED,
                               "RSA key size '%s' is not supported; use 2048, 3072 or 4096", arg);
            }
            bits = (unsigned)v;
        }
        return key_spec_from_names(alg, bits, NULL, ret, err);
    }
    case KEY_ALG_EC:
        return key_spec_from_names(alg, 0, arg, ret, err);
    case KEY_ALG_ED25519:
        if (arg) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "malformed key type '%s'; ed25519 takes no size or curve", s);
        }
        *ret = probe;
        return 0;
    case KEY_ALG_MAX:
    default:
        break;
    }
    return err_set(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "key algorithm not supported");
}

static int spec_malformed(const char *s, struct certd_err *err)
{
    return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                   "malformed key type '%s'; expected [PROVIDER:]ALG[:SIZE|CURVE] such as ec:P-256",
                   s);
}

int key_spec_parse(const char *s, struct key_spec *ret, struct certd_err *err)
{
    assert_return(ret, -EINVAL);

    if (!s || s[0] == '\0') {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "empty key type; expected [PROVIDER:]ALG[:SIZE|CURVE] such as ec:P-256, "
                       "rsa:3072 or tpm2:ec:P-256");
    }
    size_t len = strnlen(s, KEY_SPEC_INPUT_MAX + 1);
    if (len > KEY_SPEC_INPUT_MAX) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "key type is longer than %u characters",
                       KEY_SPEC_INPUT_MAX);
    }

    /* Up to three words: [PROVIDER:]ALG[:SIZE|CURVE]. Copied, so that each is a C string. */
    char buf[KEY_SPEC_INPUT_MAX + 1];
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *words[3] = { buf, NULL, NULL };
    size_t n_words = 1;
    for (char *p = buf; *p; p++) {
        if (*p != ':') {
            continue;
        }
        if (n_words == ELEMENTSOF(words)) {
            return spec_malformed(s, err);
        }
        *p = '\0';
        words[n_words++] = p + 1;
    }
    for (size_t i = 0; i < n_words; i++) {
        if (words[i][0] == '\0') {
            return spec_malformed(s, err);
        }
    }

    /*
     * The first word is a provider when it is not an algorithm: always with three words, and
     * with two when the second is one ("tpm2:ec"). Two words of which neither is an algorithm
     * ("dsa:1024", "tpm2:dsa") could be either form: the message names both.
     */
    const char *provider = NULL;
    if (n_words == 3) {
        if (is_alg_name(words[0])) {
            /* "rsa:2048:1": an algorithm cannot also be a provider's name. */
            return spec_malformed(s, err);
        }
        provider = words[0];
    } else if (n_words == 2 && !is_alg_name(words[0])) {
        if (!is_alg_name(words[1])) {
            return err_set_field(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, FIELD_ALG,
                                 "key type '%s' names no supported key algorithm; use RSA, EC or "
                                 "Ed25519, after a provider name if any (tpm2:ec:P-256)",
                                 s);
        }
        provider = words[0];
    }

    struct key_spec spec;
    int r;
    if (provider) {
        if (!key_provider_name_str_is_valid(provider)) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "malformed provider name '%s' in key type '%s'; a provider name is 1 "
                           "to %u characters of a-z, 0-9, '_' and '-'",
                           provider, s, KEY_PROVIDER_NAME_MAX);
        }
        r = spec_parse_alg(words[1], n_words == 3 ? words[2] : NULL, s, &spec, err);
    } else {
        r = spec_parse_alg(words[0], n_words == 2 ? words[1] : NULL, s, &spec, err);
    }
    if (r < 0) {
        return r;
    }
    if (provider) {
        (void)snprintf(spec.provider, sizeof(spec.provider), "%s", provider);
    }
    *ret = spec;
    return 0;
}

void key_spec_format(const struct key_spec *spec, char *buf, size_t size)
{
    if (!buf || size == 0) {
        return;
    }
    if (!spec) {
        buf[0] = '\0';
        return;
    }
    /* A provider prefix only for a well-formed name: nothing else may reach a configuration. */
    const char *provider = key_provider_name_str_is_valid(spec->provider) ? spec->provider : "";
    const char *sep = provider[0] ? ":" : "";
    switch (spec->alg) {
    case KEY_ALG_RSA:
        (void)snprintf(buf, size, "%s%srsa:%u", provider, sep, spec->bits);
        break;
    case KEY_ALG_EC:
        (void)snprintf(buf, size, "%s%sec:%.*s", provider, sep,
                       (int)strnlen(spec->curve, sizeof(spec->curve)), spec->curve);
        break;
    case KEY_ALG_ED25519:
        (void)snprintf(buf, size, "%s%sed25519", provider, sep);
        break;
    case KEY_ALG_MAX:
    default:
        buf[0] = '\0';
        break;
    }
}

/*
 * Parameters of every key generation per provider (key_set_provider_keygen_params): parsed
 * configuration, set before any thread runs and read-only afterwards.
 */
static struct keygen_params {
    char provider[KEY_PROVIDER_NAME_MAX + 1];
    OSSL_PARAM *params; /* OSSL_PARAM_dup'ed; may hold a password: wiped when freed */
} keygen_params[KEY_KEYGEN_PROVIDERS_MAX];

static struct keygen_params *keygen_params_find(const char *provider)
{
    for (size_t i = 0; i < ELEMENTSOF(keygen_params); i++) {
        if (keygen_params[i].params && strcmp(keygen_params[i].provider, provider) == 0) {
            return &keygen_params[i];
        }
    }
    return NULL;
}

int key_set_provider_keygen_params(const char *provider, const OSSL_PARAM *params)
{
    assert_return(key_provider_name_str_is_valid(provider), -EINVAL);
    struct keygen_params *slot = keygen_params_find(provider);
    for (size_t i = 0; i < ELEMENTSOF(keygen_params) && !slot && params; i++) {
        if (!keygen_params[i].params) {
            slot = &keygen_params[i];
        }
    }
    if (!slot) {
        return params ? -E2BIG : 0;
    }
    OSSL_PARAM *dup = params ? OSSL_PARAM_dup(params) : NULL;
    if (params && !dup) {
        return -ENOMEM;
    }
    ossl_params_clear_free(&slot->params);
    slot->params = dup;
    (void)snprintf(slot->provider, sizeof(slot->provider), "%s", provider);
    return 0;
}

void key_clear_provider_keygen_params(void)
{
    for (size_t i = 0; i < ELEMENTSOF(keygen_params); i++) {
        ossl_params_clear_free(&keygen_params[i].params);
    }
}

int key_generate(OSSL_LIB_CTX *libctx, const char *propq, const struct key_spec *spec,
                 EVP_PKEY **ret, struct certd_err *err)
{
    assert_return(spec, -EINVAL);
    assert_return(ret, -EINVAL);

    const char *type;
    OSSL_PARAM params[2] = { OSSL_PARAM_END, OSSL_PARAM_END };
    unsigned int rsa_bits = spec->bits;
    const struct curve_entry *c = NULL;

    switch (spec->alg) {
    case KEY_ALG_RSA:
        if (!rsa_bits_ok(spec->bits)) {
            return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED,
                           "RSA key size %u is not supported; use 2048, 3072 or 4096", spec->bits);
        }
        type = "RSA";
        params[0] = OSSL_PARAM_construct_uint(OSSL_PKEY_PARAM_RSA_BITS, &rsa_bits);
        break;
    case KEY_ALG_EC:
        c = curve_lookup(spec->curve);
        if (!c) {
            return err_set(err, -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED,
                           "curve '%.*s' is not supported; use P-256, P-384 or P-521",
                           (int)strnlen(spec->curve, sizeof(spec->curve)), spec->curve);
        }
        type = "EC";
        /* OSSL_PARAM only reads the group name; the table entry outlives the call. */
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                     (char *)(uintptr_t)c->group, 0);
        break;
    case KEY_ALG_ED25519:
        type = "ED25519";
        break;
    case KEY_ALG_MAX:
    default:
        return err_set(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "key algorithm not supported");
    }

    /*
     * A named provider is a hard requirement merged into the query, and it must be loaded:
     * otherwise OpenSSL 3.0 may fall back to its built-in (legacy) implementation in the
     * default context and quietly make a software key (tpm2.md P3).
     */
    const char *provider = spec->provider;
    char query[KEY_QUERY_MAX];
    const char *q = propq;
    if (provider[0] != '\0') {
        if (!key_provider_name_str_is_valid(provider)) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "malformed provider name in the key type");
        }
        int r = query_add_provider(propq, false, provider, query, sizeof(query));
        if (r == -EEXIST) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "the property query already names a provider; a key type naming "
                           "provider %s cannot be added to it",
                           provider);
        }
        if (!providers_is_loaded(libctx, provider)) {
            (void)ossl_drain_errors("key_generate: provider");
            return err_set(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED,
                           "provider %s is not loaded, so it cannot make an %s key", provider,
                           type);
        }
        if (r < 0) {
            return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                           "the property query is too long to add provider %s to it", provider);
        }
        q = query;
    }
    _cleanup_(cleanup_EVP_PKEY_CTX) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, type, q);
    if (!ctx || EVP_PKEY_keygen_init(ctx) != 1) {
        (void)ossl_drain_errors("key_generate: keygen_init");
        if (provider[0]) {
            return err_set(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED,
                           "provider %s cannot generate %s keys", provider, type);
        }
        return err_set(err, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED,
                       "no provider can generate %s keys", type);
    }
    if (params[0].key && EVP_PKEY_CTX_set_params(ctx, params) != 1) {
        (void)ossl_drain_errors("key_generate: set_params");
        const char *who = provider[0] ? provider : "the provider";
        if (c) {
            return err_set(err, -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED,
                           "%s%s cannot generate keys on curve %s", provider[0] ? "provider " : "",
                           who, c->nist);
        }
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED,
                       "%s%s cannot generate %u-bit %s keys", provider[0] ? "provider " : "", who,
                       spec->bits, type);
    }
    /* Only valid names have a slot: "" finds none. */
    const struct keygen_params *extra = keygen_params_find(provider);
    if (extra && EVP_PKEY_CTX_set_params(ctx, extra->params) != 1) {
        (void)ossl_drain_errors("key_generate: provider's keygen params");
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "provider %s refused the key generation settings of its configuration",
                       provider);
    }
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *pkey = NULL;
    if (EVP_PKEY_generate(ctx, &pkey) != 1 || !pkey) {
        unsigned long e = ossl_drain_errors("key_generate: generate");
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory generating a key");
        }
        if (provider[0]) {
            /* A provider named for its keys is one that keeps them: a device that may be gone. */
            return err_set(err, -EIO, CERTD_E_UNAVAILABLE,
                           "provider %s failed to generate an %s key (is its device reachable?)",
                           provider, type);
        }
        return err_set(err, -EIO, CERTD_E_INTERNAL, "generating an %s key failed", type);
    }
    /* Belt and braces for "never a silent software key": the key says where it was made. */
    if (provider[0] && strcmp(key_provider_name(pkey), provider) != 0) {
        return err_set(err, -EIO, CERTD_E_INTERNAL,
                       "an %s key was to be made by provider %s, but provider '%s' made it", type,
                       provider, key_provider_name(pkey));
    }
    *ret = TAKE_PTR(pkey);
    return 0;
}

const char *key_curve_nist_name(const char *group)
{
    const struct curve_entry *c = curve_lookup(group);
    return c ? c->nist : NULL;
}

int key_describe(const EVP_PKEY *pkey, struct key_info *ret)
{
    assert_return(pkey, -EINVAL);
    assert_return(ret, -EINVAL);

    struct key_info info = { .alg = KEY_ALG_MAX };

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        info.alg = KEY_ALG_RSA;
        (void)snprintf(info.alg_name, sizeof(info.alg_name), "RSA");
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        info.alg = KEY_ALG_EC;
        (void)snprintf(info.alg_name, sizeof(info.alg_name), "EC");
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        info.alg = KEY_ALG_ED25519;
        (void)snprintf(info.alg_name, sizeof(info.alg_name), "ED25519");
    } else {
        const char *name = EVP_PKEY_get0_type_name(pkey);
        (void)snprintf(info.alg_name, sizeof(info.alg_name), "%s", name ? name : "unknown");
    }

    info.bits = EVP_PKEY_get_bits(pkey);
    if (info.bits < 0) {
        info.bits = 0;
    }

    if (info.alg == KEY_ALG_EC) {
        /* Named curves only; a key with explicit parameters has no group name. */
        char group[80];
        size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &len) == 1) {
            const char *nist = key_curve_nist_name(group);
            (void)snprintf(info.curve, sizeof(info.curve), "%.*s", (int)(sizeof(info.curve) - 1),
                           nist ? nist : group);
        } else {
            (void)ossl_drain_errors("key_describe: group name");
        }
    }

    *ret = info;
    return 0;
}

int key_check_strength(const EVP_PKEY *pkey, const struct key_policy *policy, const char *what,
                       struct certd_err *err)
{
    assert_return(pkey, -EINVAL);

    const char *w = what ? what : "the key";
    struct key_info info;
    int r = key_describe(pkey, &info);
    if (r < 0) {
        return r;
    }

    switch (info.alg) {
    case KEY_ALG_RSA:
        if (info.bits < KEY_RSA_MIN_BITS) {
            return err_set(err, -EKEYREJECTED, CERTD_E_KEY_WEAK,
                           "%s is a %d-bit RSA key; at least %d bits are required", w, info.bits,
                           KEY_RSA_MIN_BITS);
        }
        return 0;
    case KEY_ALG_EC:
        if (!key_curve_nist_name(info.curve)) {
            return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                           "%s is on curve %s, which is not supported; use P-256, P-384 or P-521",
                           w, info.curve[0] ? info.curve : "(explicit parameters)");
        }
        return 0;
    case KEY_ALG_ED25519:
        if (!policy || !policy->allow_ed25519) {
            return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                           "%s is an Ed25519 key, which the key policy does not allow", w);
        }
        return 0;
    case KEY_ALG_MAX:
    default:
        return err_set(err, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED,
                       "%s is a %s key, which is not supported; use RSA or EC", w, info.alg_name);
    }
}

bool key_public_eq(const EVP_PKEY *a, const EVP_PKEY *b)
{
    if (!a || !b) {
        return false;
    }
    int r = EVP_PKEY_eq(a, b);
    if (r < 0) {
        /* -1 / -2: different types or unsupported comparison, which means "not equal". */
        (void)ossl_drain_errors("key_public_eq");
    }
    return r == 1;
}

int key_public_dup(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey, EVP_PKEY **ret)
{
    assert_return(pkey && ret, -EINVAL);
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pkey, &der);
    if (n <= 0 || !der) {
        unsigned long e = ossl_drain_errors("key_public_dup: encode");
        return ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE ? -ENOMEM : -EIO;
    }
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY_ex(NULL, &p, n, libctx, propq);
    bool is_whole = pub && p == der + n;
    OPENSSL_free(der);
    if (!is_whole) {
        EVP_PKEY_free(pub);
        unsigned long e = ossl_drain_errors("key_public_dup: decode");
        return ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE ? -ENOMEM : -EIO;
    }
    *ret = pub;
    return 0;
}

const char *key_provider_name(const EVP_PKEY *pkey)
{
    const OSSL_PROVIDER *prov = pkey ? EVP_PKEY_get0_provider(pkey) : NULL;
    const char *name = prov ? OSSL_PROVIDER_get0_name(prov) : NULL;
    return name ? name : "";
}

static bool key_is_held_probe(const EVP_PKEY *pkey)
{
    _cleanup_(ossl_params_clear_free) OSSL_PARAM *pub = NULL;
    _cleanup_(ossl_params_clear_free) OSSL_PARAM *pair = NULL;

    /*
     * Only a provider's key can be held there; and OpenSSL 3.0's EVP_PKEY_todata crashes on a
     * key without key management (an empty EVP_PKEY). A key without an exportable public half
     * is none we know how to treat.
     */
    if (!EVP_PKEY_get0_provider(pkey) || EVP_PKEY_todata(pkey, EVP_PKEY_PUBLIC_KEY, &pub) != 1 ||
        !pub) {
        return false;
    }
    /*
     * A provider that can export the private half exports more for the key pair than for the
     * public key alone (EC "priv", RSA "d" and the factors...): the key is a software one. A
     * provider that keeps its keys exports the same, or refuses the pair outright.
     */
    if (EVP_PKEY_todata(pkey, EVP_PKEY_KEYPAIR, &pair) == 1 && pair) {
        for (const OSSL_PARAM *p = pair; p->key; p++) {
            if (!OSSL_PARAM_locate_const(pub, p->key)) {
                return false;
            }
        }
    }
    /*
     * Same export as the public key: a public key, or a pair whose private half stays put.
     * The key's own key management tells them apart (it is the one EVP_PKEY_CTX_new_from_pkey
     * uses for a provider key, so nothing is exported); a public key fails the check.
     */
    _cleanup_(cleanup_EVP_PKEY_CTX) EVP_PKEY_CTX *ctx =
        EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)(uintptr_t)pkey, NULL);
    return ctx && EVP_PKEY_private_check(ctx) == 1;
}

bool key_is_held(const EVP_PKEY *pkey)
{
    if (!pkey) {
        return false;
    }
    /* A probe: "no" is an answer, not an error. */
    ERR_set_mark();
    bool held = key_is_held_probe(pkey);
    (void)ERR_pop_to_mark();
    return held;
}

const char *key_query_for(const EVP_PKEY *pkey, const char *propq, char *buf, size_t size)
{
    if (!buf || size == 0) {
        return NULL;
    }
    const char *name = key_provider_name(pkey);
    /* Optional ("?"): a preference that beats every other provider, never a new requirement. */
    if (name[0] == '\0' || query_add_provider(propq, true, name, buf, size) < 0) {
        return NULL;
    }
    return buf;
}

/*
 * Encode pkey with the given selection and structure into an OpenSSL-allocated
 * buffer. The encoder follows the key's own library context; libctx is kept in
 * the API so that a future OpenSSL with a context-taking encoder constructor
 * needs no caller change.
 */
static int encode_pem(const char *propq, const EVP_PKEY *pkey, int selection, const char *structure,
                      unsigned char **ret_data, size_t *ret_len)
{
    _cleanup_(cleanup_OSSL_ENCODER_CTX) OSSL_ENCODER_CTX *ectx =
        OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, "PEM", structure, propq);
    if (!ectx) {
        unsigned long e = ossl_drain_errors("key encode: new ctx");
        return ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE ? -ENOMEM : -EIO;
    }
    if (OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0) {
        (void)ossl_drain_errors("key encode: no encoder");
        return -EIO;
    }
    unsigned char *data = NULL;
    size_t len = 0;
    if (OSSL_ENCODER_to_data(ectx, &data, &len) != 1 || !data) {
        unsigned long e = ossl_drain_errors("key encode");
        if (data) {
            OPENSSL_clear_free(data, len);
        }
        return ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE ? -ENOMEM : -EIO;
    }
    *ret_data = data;
    *ret_len = len;
    return 0;
}

int key_private_to_pem(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey,
                       struct secret **ret)
{
    (void)libctx;
    assert_return(pkey, -EINVAL);
    assert_return(ret, -EINVAL);

    /*
     * The key's own provider first: only it can write a held key's private half, as its own
     * wrapping (a TPM's "TSS2 PRIVATE KEY" blob); for a software key it is the provider that
     * holds the numbers anyway.
     */
    char query[KEY_QUERY_MAX];
    const char *q = key_query_for(pkey, propq, query, sizeof(query));
    unsigned char *data = NULL;
    size_t len = 0;
    int r = encode_pem(q ? q : propq, pkey, EVP_PKEY_KEYPAIR, "PrivateKeyInfo", &data, &len);
    if (r < 0) {
        return r;
    }
    struct secret *s = secret_new(data, len);
    /* The encoder's buffer held the key: wipe it whatever happens next. */
    OPENSSL_clear_free(data, len);
    if (!s) {
        return -ENOMEM;
    }
    *ret = s;
    return 0;
}

int key_public_to_pem(OSSL_LIB_CTX *libctx, const char *propq, const EVP_PKEY *pkey, char **ret)
{
    (void)libctx;
    assert_return(pkey, -EINVAL);
    assert_return(ret, -EINVAL);

    unsigned char *data = NULL;
    size_t len = 0;
    int r = encode_pem(propq, pkey, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo", &data, &len);
    if (r < 0) {
        return r;
    }
    size_t n;
    char *s = size_add(len, 1, &n) ? malloc(n) : NULL;
    if (!s) {
        OPENSSL_free(data);
        return -ENOMEM;
    }
    memcpy(s, data, len);
    s[len] = '\0';
    OPENSSL_free(data);
    *ret = s;
    return 0;
}

const char *key_default_digest(const EVP_PKEY *pkey)
{
    struct key_info info;
    if (!pkey || key_describe(pkey, &info) < 0) {
        return NULL;
    }
    switch (info.alg) {
    case KEY_ALG_RSA:
        return "SHA256";
    case KEY_ALG_EC:
        /* Match the digest to the curve's strength (RFC 5480 §4; CNSA uses SHA-384 on P-384). */
        return info.bits > 256 ? "SHA384" : "SHA256";
    case KEY_ALG_ED25519:
    case KEY_ALG_MAX:
    default:
        /* Ed25519 (and other one-shot schemes) sign without a separate digest. */
        return NULL;
    }
}

int key_sign_ctx_new(OSSL_LIB_CTX *libctx, const char *propq, EVP_PKEY *key, EVP_MD_CTX **ret,
                     struct certd_err *err)
{
    assert_return(key && ret, -EINVAL);
    _cleanup_(cleanup_EVP_MD_CTX) EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (!mctx) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    /*
     * The signature from the key's own provider (tpm2.md P1): a held key exported to another
     * provider arrives there as its public half. NULL digest for Ed25519, which hashes
     * internally (RFC 8410 §6).
     */
    char query[KEY_QUERY_MAX];
    const char *q = key_query_for(key, propq, query, sizeof(query));
    if (EVP_DigestSignInit_ex(mctx, NULL, key_default_digest(key), libctx, q ? q : propq, key,
                              NULL) != 1) {
        (void)ossl_drain_errors("keys: sign init");
        return err_set(err, -EIO, CERTD_E_INTERNAL, "this key cannot sign");
    }
    *ret = TAKE_PTR(mctx);
    return 0;
}
