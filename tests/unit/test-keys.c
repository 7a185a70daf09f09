/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keys/: algorithm and curve names (OpenSSL, NIST, TCG), configuration strings,
 * generation, description, strength policy, PEM encoding checked with plain
 * OpenSSL readers, digests.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keys/keys.h"
#include "testutil.h"

/* Keys generated once for the whole group: RSA keygen is slow under valgrind. */
struct gen_keys {
    EVP_PKEY *rsa_a, *rsa_b, *ec256_a, *ec256_b, *ec384, *ec521, *ed_a, *ed_b;
};
static struct gen_keys gk;

static EVP_PKEY *gen(const char *alg, unsigned bits, const char *curve)
{
    struct key_spec spec;
    struct certd_err err = { 0 };
    EVP_PKEY *k = NULL;
    assert_int_equal(key_spec_from_names(alg, bits, curve, &spec, &err), 0);
    assert_int_equal(key_generate(NULL, NULL, &spec, &k, &err), 0);
    assert_int_equal(err.code, CERTD_E_OK);
    assert_non_null(k);
    return k;
}

static int group_setup(void **state)
{
    (void)state;
    gk.rsa_a = gen("RSA", 2048, NULL);
    gk.rsa_b = gen("TPM_ALG_RSA", 0, NULL);
    gk.ec256_a = gen("EC", 0, "P-256");
    gk.ec256_b = gen("TPM_ALG_ECDSA", 0, "TPM_ECC_NIST_P256");
    gk.ec384 = gen("ECDSA", 0, "secp384r1");
    gk.ec521 = gen("TPM_ALG_ECC", 0, "TPM_ECC_NIST_P521");
    gk.ed_a = gen("Ed25519", 0, NULL);
    gk.ed_b = gen("ED25519", 256, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY **all[] = { &gk.rsa_a, &gk.rsa_b, &gk.ec256_a, &gk.ec256_b,
                         &gk.ec384, &gk.ec521, &gk.ed_a,    &gk.ed_b };
    for (size_t i = 0; i < ELEMENTSOF(all); i++) {
        EVP_PKEY_free(*all[i]);
        *all[i] = NULL;
    }
    return 0;
}

static void assert_err(const struct certd_err *err, enum certd_errc code, const char *kw)
{
    assert_int_equal(err->code, code);
    if (kw) {
        if (!strstr(err->msg, kw)) {
            fail_msg("message '%s' lacks '%s'", err->msg, kw);
        }
    }
}

/* A spec the code under test must not touch on failure. */
static const struct key_spec sentinel = { .alg = KEY_ALG_MAX, .bits = 4242, .curve = "sentinel" };

/* keys.h: the Redfish parameter each refusal of key_spec_from_names blames. */
static const char *refused_field(enum certd_errc code)
{
    switch (code) {
    case CERTD_E_ALG_UNSUPPORTED:
        return "KeyPairAlgorithm";
    case CERTD_E_KEY_SIZE_UNSUPPORTED:
        return "KeyBitLength";
    case CERTD_E_CURVE_UNSUPPORTED:
        return "KeyCurveId";
    default:
        return "(none)";
    }
}

static void test_spec_from_names_table(void **state)
{
    (void)state;
    static const struct {
        const char *alg;
        unsigned bits;
        const char *curve;
        int r;
        enum certd_errc code;
        const char *kw; /* word in the message, or the expected curve on success */
        enum key_alg want_alg;
        unsigned want_bits;
    } cases[] = {
        /* RSA: OpenSSL and TCG names, default size, the three sizes. */
        { "RSA", 0, NULL, 0, CERTD_E_OK, "", KEY_ALG_RSA, 2048 },
        { "rsa", 2048, NULL, 0, CERTD_E_OK, "", KEY_ALG_RSA, 2048 },
        { "Rsa", 3072, NULL, 0, CERTD_E_OK, "", KEY_ALG_RSA, 3072 },
        { "TPM_ALG_RSA", 4096, NULL, 0, CERTD_E_OK, "", KEY_ALG_RSA, 4096 },
        { "tpm_alg_rsa", 0, "", 0, CERTD_E_OK, "", KEY_ALG_RSA, 2048 },
        { "RSA", 1024, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "1024", 0, 0 },
        { "RSA", 1536, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "1536", 0, 0 },
        { "RSA", 2047, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "2047", 0, 0 },
        { "RSA", 2049, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "2049", 0, 0 },
        { "RSA", 4097, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "4097", 0, 0 },
        { "RSA", 8192, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "8192", 0, 0 },
        { "TPM_ALG_RSA", 512, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "512", 0, 0 },
        { "RSA", 2048, "P-256", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "RSA", 0, 0 },
        /* EC: every spelling of the three curves. */
        { "EC", 0, NULL, 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "EC", 0, "", 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "ec", 0, "P-256", 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "EC", 0, "p-256", 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "ECDSA", 0, "prime256v1", 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "EC", 256, "secp256r1", 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "TPM_ALG_ECC", 0, "TPM_ECC_NIST_P256", 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "TPM_ALG_ECDSA", 0, "tpm_ecc_nist_p256", 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "EC", 0, "P-384", 0, CERTD_E_OK, "P-384", KEY_ALG_EC, 384 },
        { "EC", 0, "SECP384R1", 0, CERTD_E_OK, "P-384", KEY_ALG_EC, 384 },
        { "tpm_alg_ecc", 384, "TPM_ECC_NIST_P384", 0, CERTD_E_OK, "P-384", KEY_ALG_EC, 384 },
        { "EC", 0, "P-521", 0, CERTD_E_OK, "P-521", KEY_ALG_EC, 521 },
        { "ecdsa", 0, "secp521r1", 0, CERTD_E_OK, "P-521", KEY_ALG_EC, 521 },
        { "TPM_ALG_ECDSA", 521, "TPM_ECC_NIST_P521", 0, CERTD_E_OK, "P-521", KEY_ALG_EC, 521 },
        /* A size alone picks the curve (Redfish KeyBitLength without KeyCurveId). */
        { "EC", 256, NULL, 0, CERTD_E_OK, "P-256", KEY_ALG_EC, 256 },
        { "EC", 384, NULL, 0, CERTD_E_OK, "P-384", KEY_ALG_EC, 384 },
        { "EC", 521, NULL, 0, CERTD_E_OK, "P-521", KEY_ALG_EC, 521 },
        { "EC", 512, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "512", 0, 0 },
        { "EC", 384, "P-256", -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "P-256", 0, 0 },
        { "EC", 0, "secp256k1", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "secp256k1", 0, 0 },
        { "EC", 0, "brainpoolP256r1", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "brainpoolP256r1", 0,
          0 },
        { "EC", 0, "P-224", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "P-224", 0, 0 },
        { "EC", 0, "secp224r1", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "secp224r1", 0, 0 },
        { "EC", 0, "TPM_ECC_BN_P256", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "BN_P256", 0, 0 },
        { "EC", 0, "P-256 ", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "P-256", 0, 0 },
        { "EC", 0, "P256", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "P256", 0, 0 },
        /* Ed25519. */
        { "Ed25519", 0, NULL, 0, CERTD_E_OK, "", KEY_ALG_ED25519, 256 },
        { "ED25519", 256, "", 0, CERTD_E_OK, "", KEY_ALG_ED25519, 256 },
        { "ed25519", 255, NULL, -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "255", 0, 0 },
        { "Ed25519", 0, "P-256", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "Ed25519", 0, 0 },
        /* Unknown algorithms. */
        { "DSA", 2048, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "DSA", 0, 0 },
        { "Ed448", 0, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "Ed448", 0, 0 },
        { "RSA-PSS", 2048, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "RSA-PSS", 0, 0 },
        { "RSA ", 2048, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "not supported", 0, 0 },
        { " EC", 0, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "not supported", 0, 0 },
        { "TPM_ALG_ECC2", 0, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "TPM_ALG_ECC2", 0, 0 },
        { "", 0, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "no key algorithm", 0, 0 },
        { NULL, 0, NULL, -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "no key algorithm", 0, 0 },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct key_spec spec = sentinel;
        struct certd_err err = { 0 };
        int r = key_spec_from_names(cases[i].alg, cases[i].bits, cases[i].curve, &spec, &err);
        if (r != cases[i].r) {
            fail_msg("case %zu (%s/%u/%s): r=%d, want %d (%s)", i,
                     cases[i].alg ? cases[i].alg : "NULL", cases[i].bits,
                     cases[i].curve ? cases[i].curve : "NULL", r, cases[i].r, err.msg);
        }
        if (r == 0) {
            assert_int_equal(err.code, CERTD_E_OK);
            assert_string_equal(err.field, "");
            assert_int_equal(spec.alg, cases[i].want_alg);
            assert_int_equal(spec.bits, cases[i].want_bits);
            assert_string_equal(spec.curve, cases[i].kw);
        } else {
            assert_err(&err, cases[i].code, cases[i].kw);
            /* The front end names the parameter at fault from this alone. */
            assert_string_equal(err.field, refused_field(cases[i].code));
            assert_memory_equal(&spec, &sentinel, sizeof(spec));
        }
    }
}

static void test_spec_from_names_null_err(void **state)
{
    (void)state;
    struct key_spec spec = sentinel;
    /* err is nullable. */
    assert_int_equal(key_spec_from_names("DSA", 0, NULL, &spec, NULL), -EOPNOTSUPP);
    assert_int_equal(key_spec_from_names("EC", 0, NULL, &spec, NULL), 0);
    assert_string_equal(spec.curve, "P-256");
    assert_int_equal(key_spec_from_names("EC", 0, NULL, NULL, NULL), -EINVAL);
}

static void test_spec_parse_table(void **state)
{
    (void)state;
    /* 64 characters (the limit) and 65. */
    static const char at_limit[] =
        "ec:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    static const char over_limit[] =
        "ec:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    assert_int_equal(strlen(at_limit), 64);
    assert_int_equal(strlen(over_limit), 65);
    /* The longest provider name (31) with the longest algorithm and curve: 63 characters. */
    static const char provider_max_spec[] =
        "p234567890123456789012345678901:TPM_ALG_ECDSA:TPM_ECC_NIST_P521";
    static const char provider_max_out[] = "p234567890123456789012345678901:ec:P-521";
    static const char provider_over_spec[] = "p2345678901234567890123456789012:ec";
    assert_int_equal(strlen(provider_max_spec), 63);

    static const struct {
        const char *in;
        int r;
        enum certd_errc code;
        const char *kw; /* message word, or the expected formatted spec on success */
    } cases[] = {
        { "ec", 0, CERTD_E_OK, "ec:P-256" },
        { "EC:P-384", 0, CERTD_E_OK, "ec:P-384" },
        { "ec:secp521r1", 0, CERTD_E_OK, "ec:P-521" },
        { "ecdsa:prime256v1", 0, CERTD_E_OK, "ec:P-256" },
        { "TPM_ALG_ECC:TPM_ECC_NIST_P384", 0, CERTD_E_OK, "ec:P-384" },
        { "rsa", 0, CERTD_E_OK, "rsa:2048" },
        { "rsa:3072", 0, CERTD_E_OK, "rsa:3072" },
        { "RSA:4096", 0, CERTD_E_OK, "rsa:4096" },
        { "tpm_alg_rsa:2048", 0, CERTD_E_OK, "rsa:2048" },
        { "ed25519", 0, CERTD_E_OK, "ed25519" },
        { "ED25519", 0, CERTD_E_OK, "ed25519" },
        { "", -EINVAL, CERTD_E_FIELD_INVALID, "empty" },
        { NULL, -EINVAL, CERTD_E_FIELD_INVALID, "empty" },
        { ":", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { ":P-256", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "rsa:", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "ec:", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "rsa:2048:1", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "ec:P-256:x", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "rsa:abc", -EINVAL, CERTD_E_FIELD_INVALID, "abc" },
        { "rsa: 2048", -EINVAL, CERTD_E_FIELD_INVALID, "RSA key size" },
        { "rsa:2048 ", -EINVAL, CERTD_E_FIELD_INVALID, "RSA key size" },
        { "rsa:02048", -EINVAL, CERTD_E_FIELD_INVALID, "RSA key size" },
        { "rsa:-2048", -EINVAL, CERTD_E_FIELD_INVALID, "RSA key size" },
        { "rsa:+2048", -EINVAL, CERTD_E_FIELD_INVALID, "RSA key size" },
        { "rsa:1024", -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "1024" },
        { "rsa:8192", -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "8192" },
        { "rsa:0", -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "'0'" },
        { "rsa:99999999999999999999", -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "999" },
        { "ec:secp256k1", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "secp256k1" },
        { "ec:256", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "256" },
        { "ec:P-256 ", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "P-256" },
        { "ed25519:256", -EINVAL, CERTD_E_FIELD_INVALID, "ed25519 takes no" },
        { "dsa", -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "dsa" },
        { "dsa:1024", -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "dsa" },
        { " ec", -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "not supported" },
        { "ec ", -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "not supported" },
        { at_limit, -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "xxxx" },
        { over_limit, -EINVAL, CERTD_E_FIELD_INVALID, "longer than 64" },
        /* [PROVIDER:]ALG[:SIZE|CURVE] (issue #5). */
        { "tpm2:ec:P-256", 0, CERTD_E_OK, "tpm2:ec:P-256" },
        { "tpm2:ec", 0, CERTD_E_OK, "tpm2:ec:P-256" },
        { "tpm2:rsa", 0, CERTD_E_OK, "tpm2:rsa:2048" },
        { "tpm2:RSA:3072", 0, CERTD_E_OK, "tpm2:rsa:3072" },
        { "tpm2:ed25519", 0, CERTD_E_OK, "tpm2:ed25519" },
        { "fips:TPM_ALG_ECC:TPM_ECC_NIST_P384", 0, CERTD_E_OK, "fips:ec:P-384" },
        { "my_prov-2:ecdsa:secp521r1", 0, CERTD_E_OK, "my_prov-2:ec:P-521" },
        { provider_max_spec, 0, CERTD_E_OK, provider_max_out },
        { provider_over_spec, -EINVAL, CERTD_E_FIELD_INVALID, "1 to 31 characters" },
        { "TPM2:ec", -EINVAL, CERTD_E_FIELD_INVALID, "malformed provider name 'TPM2'" },
        { "tpm.2:ec:P-256", -EINVAL, CERTD_E_FIELD_INVALID, "malformed provider name" },
        { "tpm 2:ec", -EINVAL, CERTD_E_FIELD_INVALID, "malformed provider name" },
        { "t\xc3\xa9:ec", -EINVAL, CERTD_E_FIELD_INVALID, "malformed provider name" },
        { "tpm2:dsa", -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "names no supported key algorithm" },
        { "tpm2", -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "'tpm2'" },
        { "tpm2:dsa:1024", -EOPNOTSUPP, CERTD_E_ALG_UNSUPPORTED, "dsa" },
        { "tpm2:ec:secp256k1", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "secp256k1" },
        { "tpm2:rsa:1024", -EOPNOTSUPP, CERTD_E_KEY_SIZE_UNSUPPORTED, "1024" },
        { "tpm2:rsa:x", -EINVAL, CERTD_E_FIELD_INVALID, "RSA key size" },
        { "tpm2:ed25519:256", -EINVAL, CERTD_E_FIELD_INVALID, "ed25519 takes no" },
        { "tpm2::ec", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "tpm2:ec:", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { ":tpm2:ec", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "tpm2:", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "tpm2:ec:P-256:x", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "rsa:ec:P-256", -EINVAL, CERTD_E_FIELD_INVALID, "malformed" },
        { "ec:rsa", -EOPNOTSUPP, CERTD_E_CURVE_UNSUPPORTED, "'rsa'" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct key_spec spec = sentinel;
        struct certd_err err = { 0 };
        int r = key_spec_parse(cases[i].in, &spec, &err);
        if (r != cases[i].r) {
            fail_msg("case %zu (%s): r=%d, want %d (%s)", i, cases[i].in ? cases[i].in : "NULL", r,
                     cases[i].r, err.msg);
        }
        if (r == 0) {
            char buf[KEY_SPEC_STR_MAX];
            key_spec_format(&spec, buf, sizeof(buf));
            assert_string_equal(buf, cases[i].kw);
            assert_int_equal(err.code, CERTD_E_OK);
            /* The provider is kept as written, and only when there is one. */
            const char *colon = strchr(cases[i].kw, ':');
            bool has_provider = colon && strncmp(cases[i].kw, "ec:", 3) != 0 &&
                                strncmp(cases[i].kw, "rsa:", 4) != 0;
            if (has_provider) {
                assert_int_equal(strlen(spec.provider), (size_t)(colon - cases[i].kw));
                assert_memory_equal(spec.provider, cases[i].kw, strlen(spec.provider));
            } else {
                assert_string_equal(spec.provider, "");
            }
        } else {
            assert_err(&err, cases[i].code, cases[i].kw);
            assert_memory_equal(&spec, &sentinel, sizeof(spec));
        }
    }
}

static void test_spec_format_round_trip(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "rsa:2048",
        "rsa:3072",
        "rsa:4096",
        "ec:P-256",
        "ec:P-384",
        "ec:P-521",
        "ed25519",
        "tpm2:ec:P-256",
        "tpm2:rsa:3072",
        "x_y-1:ed25519",
        "p234567890123456789012345678901:rsa:4096",
    };
    for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
        struct key_spec spec, again;
        char buf[KEY_SPEC_STR_MAX];
        assert_int_equal(key_spec_parse(forms[i], &spec, NULL), 0);
        key_spec_format(&spec, buf, sizeof(buf));
        assert_string_equal(buf, forms[i]);
        assert_int_equal(key_spec_parse(buf, &again, NULL), 0);
        assert_memory_equal(&spec, &again, sizeof(spec));
    }

    /* A short buffer is truncated and stays NUL-terminated; size 0 writes nothing. */
    struct key_spec spec;
    assert_int_equal(key_spec_parse("ec:P-384", &spec, NULL), 0);
    char small[4] = { 'z', 'z', 'z', 'z' };
    key_spec_format(&spec, small, sizeof(small));
    assert_string_equal(small, "ec:");
    char none = 'z';
    key_spec_format(&spec, &none, 0);
    assert_int_equal(none, 'z');
    struct key_spec bad = { .alg = KEY_ALG_MAX };
    char buf[KEY_SPEC_STR_MAX] = "zz";
    key_spec_format(&bad, buf, sizeof(buf));
    assert_string_equal(buf, "");

    /* A provider name that key_spec_parse would refuse is left out, never written. */
    struct key_spec odd = { .alg = KEY_ALG_EC, .bits = 256, .curve = "P-256", .provider = "TPM2" };
    key_spec_format(&odd, buf, sizeof(buf));
    assert_string_equal(buf, "ec:P-256");
    memcpy(odd.provider, "a,b", 4);
    key_spec_format(&odd, buf, sizeof(buf));
    assert_string_equal(buf, "ec:P-256");
    memset(odd.provider, 'p', sizeof(odd.provider)); /* no terminator */
    key_spec_format(&odd, buf, sizeof(buf));
    assert_string_equal(buf, "ec:P-256");
    /* A zero-initialised spec means "no provider". */
    struct key_spec zero = { .alg = KEY_ALG_RSA, .bits = 2048 };
    key_spec_format(&zero, buf, sizeof(buf));
    assert_string_equal(buf, "rsa:2048");
    /* Truncation keeps the terminator with a provider too. */
    struct key_spec with;
    assert_int_equal(key_spec_parse("tpm2:ec:P-384", &with, NULL), 0);
    char small5[6];
    key_spec_format(&with, small5, sizeof(small5));
    assert_string_equal(small5, "tpm2:");
}

static void test_curve_nist_name(void **state)
{
    (void)state;
    assert_string_equal(key_curve_nist_name("prime256v1"), "P-256");
    assert_string_equal(key_curve_nist_name("secp256r1"), "P-256");
    assert_string_equal(key_curve_nist_name("P-256"), "P-256");
    assert_string_equal(key_curve_nist_name("secp384r1"), "P-384");
    assert_string_equal(key_curve_nist_name("secp521r1"), "P-521");
    assert_string_equal(key_curve_nist_name("P-521"), "P-521");
    assert_null(key_curve_nist_name("secp256k1"));
    assert_null(key_curve_nist_name("brainpoolP256r1"));
    assert_null(key_curve_nist_name("secp224r1"));
    assert_null(key_curve_nist_name(""));
    assert_null(key_curve_nist_name(NULL));
}

static void check_describe(EVP_PKEY *k, enum key_alg alg, const char *name, int bits,
                           const char *curve)
{
    struct key_info info;
    assert_int_equal(key_describe(k, &info), 0);
    assert_int_equal(info.alg, alg);
    assert_string_equal(info.alg_name, name);
    assert_int_equal(info.bits, bits);
    assert_string_equal(info.curve, curve);
}

static void test_generate_describe(void **state)
{
    (void)state;
    check_describe(gk.rsa_a, KEY_ALG_RSA, "RSA", 2048, "");
    check_describe(gk.rsa_b, KEY_ALG_RSA, "RSA", 2048, "");
    check_describe(gk.ec256_a, KEY_ALG_EC, "EC", 256, "P-256");
    check_describe(gk.ec256_b, KEY_ALG_EC, "EC", 256, "P-256");
    check_describe(gk.ec384, KEY_ALG_EC, "EC", 384, "P-384");
    check_describe(gk.ec521, KEY_ALG_EC, "EC", 521, "P-521");
    /* OpenSSL reports Ed25519's size as 253 bits (the group order's). */
    check_describe(gk.ed_a, KEY_ALG_ED25519, "ED25519", EVP_PKEY_get_bits(gk.ed_a), "");

    /* The generated keys are the type OpenSSL itself says they are. */
    char group[32];
    size_t len;
    assert_int_equal(EVP_PKEY_get_utf8_string_param(gk.ec384, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), &len),
                     1);
    assert_string_equal(group, "secp384r1");
    assert_true(EVP_PKEY_is_a(gk.ed_a, "ED25519"));
    assert_int_equal(EVP_PKEY_get_bits(gk.rsa_a), 2048);

    /* Every key is usable: all are private keys with the strength policy's blessing. */
    struct key_policy pol = { .allow_ed25519 = true };
    EVP_PKEY *all[] = { gk.rsa_a, gk.ec256_a, gk.ec384, gk.ec521, gk.ed_a };
    for (size_t i = 0; i < ELEMENTSOF(all); i++) {
        struct certd_err err = { 0 };
        assert_int_equal(key_check_strength(all[i], &pol, "generated", &err), 0);
        assert_int_equal(err.code, CERTD_E_OK);
    }
}

static void test_generate_fresh(void **state)
{
    (void)state;
    /* A fresh key every call: never a cached one (the reference reuses one RSA key). */
    assert_false(key_public_eq(gk.rsa_a, gk.rsa_b));
    assert_false(key_public_eq(gk.ec256_a, gk.ec256_b));
    assert_false(key_public_eq(gk.ed_a, gk.ed_b));
    assert_true(key_public_eq(gk.rsa_a, gk.rsa_a));
    assert_false(key_public_eq(gk.rsa_a, gk.ec256_a));
    assert_false(key_public_eq(gk.ec256_a, gk.ec384));
    assert_false(key_public_eq(NULL, gk.ec256_a));
    assert_false(key_public_eq(gk.ec256_a, NULL));
}

static void test_generate_rejects(void **state)
{
    (void)state;
    static const struct {
        struct key_spec spec;
        enum certd_errc code;
        const char *kw;
    } cases[] = {
        { { .alg = KEY_ALG_RSA, .bits = 1024 }, CERTD_E_KEY_SIZE_UNSUPPORTED, "1024" },
        { { .alg = KEY_ALG_RSA, .bits = 0 }, CERTD_E_KEY_SIZE_UNSUPPORTED, "RSA" },
        { { .alg = KEY_ALG_EC, .bits = 256, .curve = "secp256k1" },
          CERTD_E_CURVE_UNSUPPORTED,
          "secp256k1" },
        { { .alg = KEY_ALG_EC, .bits = 256, .curve = "" }, CERTD_E_CURVE_UNSUPPORTED, "curve" },
        { { .alg = KEY_ALG_MAX }, CERTD_E_ALG_UNSUPPORTED, "not supported" },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        struct certd_err err = { 0 };
        EVP_PKEY *k = (EVP_PKEY *)&err; /* any non-NULL marker: must stay untouched */
        assert_int_equal(key_generate(NULL, NULL, &cases[i].spec, &k, &err), -EOPNOTSUPP);
        assert_ptr_equal(k, (EVP_PKEY *)&err);
        assert_err(&err, cases[i].code, cases[i].kw);
    }

    /* The property query reaches the fetch: no provider matches, so nothing is generated. */
    struct key_spec spec;
    assert_int_equal(key_spec_parse("ec:P-256", &spec, NULL), 0);
    struct certd_err err = { 0 };
    EVP_PKEY *k = NULL;
    assert_int_equal(key_generate(NULL, "provider=certd-no-such-provider", &spec, &k, &err),
                     -EOPNOTSUPP);
    assert_null(k);
    assert_err(&err, CERTD_E_ALG_UNSUPPORTED, "EC");

    assert_int_equal(key_generate(NULL, NULL, NULL, &k, NULL), -EINVAL);
    assert_int_equal(key_generate(NULL, NULL, &spec, NULL, NULL), -EINVAL);
}

static void test_describe_fixtures(void **state)
{
    (void)state;
    X509 *k1 = fixture_cert("secp256k1.pem");
    X509 *weak = fixture_cert("rsa1024.pem");
    X509 *cli = fixture_cert("client-ec384.pem");
    EVP_PKEY *rsa = fixture_key("server-rsa.key");

    check_describe(X509_get0_pubkey(k1), KEY_ALG_EC, "EC", 256, "secp256k1");
    check_describe(X509_get0_pubkey(weak), KEY_ALG_RSA, "RSA", 1024, "");
    check_describe(X509_get0_pubkey(cli), KEY_ALG_EC, "EC", 384, "P-384");
    check_describe(rsa, KEY_ALG_RSA, "RSA", 2048, "");

    /* Failure writes nothing. */
    struct key_info info = { .bits = 77 };
    assert_int_equal(key_describe(NULL, &info), -EINVAL);
    assert_int_equal(info.bits, 77);

    X509_free(k1);
    X509_free(weak);
    X509_free(cli);
    EVP_PKEY_free(rsa);
}

static void test_strength_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *cert; /* fixture whose public key is checked */
        bool allow_ed25519;
        int r;
        enum certd_errc code;
        const char *kw;
    } cases[] = {
        { "rsa1024.pem", false, -EKEYREJECTED, CERTD_E_KEY_WEAK, "1024-bit RSA" },
        { "rsa1024.pem", true, -EKEYREJECTED, CERTD_E_KEY_WEAK, "2048" },
        { "secp256k1.pem", false, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "secp256k1" },
        { "secp256k1.pem", true, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "secp256k1" },
        { "ed25519.pem", false, -EOPNOTSUPP, CERTD_E_KEY_UNSUPPORTED, "Ed25519" },
        { "ed25519.pem", true, 0, CERTD_E_OK, NULL },
        { "server-rsa.pem", false, 0, CERTD_E_OK, NULL },
        { "server-ec.pem", false, 0, CERTD_E_OK, NULL },
        { "client-ec384.pem", false, 0, CERTD_E_OK, NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        X509 *x = fixture_cert(cases[i].cert);
        struct key_policy pol = { .allow_ed25519 = cases[i].allow_ed25519 };
        struct certd_err err = { 0 };
        int r = key_check_strength(X509_get0_pubkey(x), &pol, "the certificate's key", &err);
        if (r != cases[i].r) {
            fail_msg("case %zu (%s): r=%d, want %d (%s)", i, cases[i].cert, r, cases[i].r, err.msg);
        }
        assert_int_equal(err.code, cases[i].code);
        if (r < 0) {
            assert_err(&err, cases[i].code, cases[i].kw);
            assert_non_null(strstr(err.msg, "the certificate's key"));
        }
        X509_free(x);
    }

    /* A NULL policy is the default one: Ed25519 off. NULL `what` gets a generic name. */
    EVP_PKEY *ed = fixture_key("ed25519.key");
    struct certd_err err = { 0 };
    assert_int_equal(key_check_strength(ed, NULL, NULL, &err), -EOPNOTSUPP);
    assert_err(&err, CERTD_E_KEY_UNSUPPORTED, "the key");
    EVP_PKEY_free(ed);
    assert_int_equal(key_check_strength(NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_strength_generated_edges(void **state)
{
    (void)state;
    struct key_policy pol = { .allow_ed25519 = true };
    struct certd_err err = { 0 };

    /* One bit under the RSA limit is weak; the limit itself passes (rsa_a above). */
    EVP_PKEY *rsa2047 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2047);
    assert_non_null(rsa2047);
    assert_int_equal(key_check_strength(rsa2047, &pol, "upload", &err), -EKEYREJECTED);
    assert_err(&err, CERTD_E_KEY_WEAK, "2047-bit");
    EVP_PKEY_free(rsa2047);

    /* Curves we do not take, and algorithms that are none of ours. */
    EVP_PKEY *bp = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "brainpoolP256r1");
    assert_non_null(bp);
    err_clear(&err);
    assert_int_equal(key_check_strength(bp, &pol, "upload", &err), -EOPNOTSUPP);
    assert_err(&err, CERTD_E_KEY_UNSUPPORTED, "brainpoolP256r1");
    EVP_PKEY_free(bp);

    EVP_PKEY *p224 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp224r1");
    assert_non_null(p224);
    err_clear(&err);
    assert_int_equal(key_check_strength(p224, &pol, "upload", &err), -EOPNOTSUPP);
    assert_err(&err, CERTD_E_KEY_UNSUPPORTED, "secp224r1");
    EVP_PKEY_free(p224);

    EVP_PKEY *ed448 = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    assert_non_null(ed448);
    struct key_info info;
    assert_int_equal(key_describe(ed448, &info), 0);
    assert_int_equal(info.alg, KEY_ALG_MAX);
    assert_string_equal(info.alg_name, "ED448");
    err_clear(&err);
    assert_int_equal(key_check_strength(ed448, &pol, "upload", &err), -EOPNOTSUPP);
    assert_err(&err, CERTD_E_KEY_UNSUPPORTED, "ED448");
    assert_null(key_default_digest(ed448));
    EVP_PKEY_free(ed448);
}

/* Encode with our code, decode with plain OpenSSL, compare. */
static void check_pem_round_trip(EVP_PKEY *k)
{
    struct secret *pem = NULL;
    assert_int_equal(key_private_to_pem(NULL, NULL, k, &pem), 0);
    assert_non_null(pem);
    assert_true(pem->len > 0);
    assert_int_equal(pem->p[pem->len], '\0');
    assert_int_equal(strncmp((const char *)pem->p, "-----BEGIN PRIVATE KEY-----\n", 28), 0);

    BIO *bio = BIO_new_mem_buf(pem->p, (int)pem->len);
    assert_non_null(bio);
    EVP_PKEY *back = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(k, back), 1);

    /* The private part survives too: re-encoding the decoded key gives the same bytes. */
    struct secret *again = NULL;
    assert_int_equal(key_private_to_pem(NULL, NULL, back, &again), 0);
    assert_int_equal(again->len, pem->len);
    assert_int_equal(CRYPTO_memcmp(again->p, pem->p, pem->len), 0);
    again = secret_free(again);
    pem = secret_free(pem);

    char *pub = NULL;
    assert_int_equal(key_public_to_pem(NULL, NULL, k, &pub), 0);
    assert_non_null(pub);
    assert_int_equal(strncmp(pub, "-----BEGIN PUBLIC KEY-----\n", 27), 0);
    assert_null(strstr(pub, "PRIVATE"));
    bio = BIO_new_mem_buf(pub, -1);
    assert_non_null(bio);
    EVP_PKEY *pubk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(pubk);
    assert_int_equal(EVP_PKEY_eq(k, pubk), 1);
    assert_true(key_public_eq(pubk, back));
    free(pub);
    EVP_PKEY_free(pubk);
    EVP_PKEY_free(back);
}

static void test_pem_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *all[] = { gk.rsa_a, gk.ec256_a, gk.ec384, gk.ec521, gk.ed_a };
    for (size_t i = 0; i < ELEMENTSOF(all); i++) {
        check_pem_round_trip(all[i]);
    }
    /* A PKCS#1 fixture comes out as PKCS#8. */
    EVP_PKEY *rsa = fixture_key("server-rsa.key");
    check_pem_round_trip(rsa);
    EVP_PKEY_free(rsa);
}

static void test_pem_errors(void **state)
{
    (void)state;
    /* A public key has no private part to encode. */
    X509 *x = fixture_cert("server-ec.pem");
    struct secret *pem = (struct secret *)x; /* marker: must stay untouched */
    assert_int_equal(key_private_to_pem(NULL, NULL, X509_get0_pubkey(x), &pem), -EIO);
    assert_ptr_equal(pem, (struct secret *)x);

    /* But its public part encodes, equal to the certificate's. */
    char *pub = NULL;
    assert_int_equal(key_public_to_pem(NULL, NULL, X509_get0_pubkey(x), &pub), 0);
    EVP_PKEY *k = fixture_key("server-ec.key");
    char *pub2 = NULL;
    assert_int_equal(key_public_to_pem(NULL, NULL, k, &pub2), 0);
    assert_string_equal(pub, pub2);
    free(pub);
    free(pub2);
    EVP_PKEY_free(k);
    X509_free(x);

    pem = NULL;
    pub = NULL;
    assert_int_equal(key_private_to_pem(NULL, NULL, NULL, &pem), -EINVAL);
    assert_int_equal(key_public_to_pem(NULL, NULL, NULL, &pub), -EINVAL);
    assert_null(pem);
    assert_null(pub);
}

static void test_default_digest(void **state)
{
    (void)state;
    assert_string_equal(key_default_digest(gk.rsa_a), "SHA256");
    assert_string_equal(key_default_digest(gk.ec256_a), "SHA256");
    assert_string_equal(key_default_digest(gk.ec384), "SHA384");
    assert_string_equal(key_default_digest(gk.ec521), "SHA384");
    assert_null(key_default_digest(gk.ed_a));
    assert_null(key_default_digest(NULL));
    X509 *x = fixture_cert("client-ec384.pem");
    assert_string_equal(key_default_digest(X509_get0_pubkey(x)), "SHA384");
    X509_free(x);
}

/* key_sign_ctx_new: the digest follows the key, and a signature made with it verifies. */
static void test_sign_ctx(void **state)
{
    (void)state;
    static const struct {
        const char *fixture;
        const char *md; /* NULL: no separate digest (Ed25519) */
    } cases[] = {
        { "server-ec.key", "SHA256" },
        { "client-ec384.key", "SHA384" },
        { "server-rsa.key", "SHA256" },
        { "ed25519.key", NULL },
    };
    static const unsigned char msg[] = "to be signed";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        EVP_PKEY *key = fixture_key(cases[i].fixture);
        EVP_MD_CTX *ctx = NULL;
        struct certd_err err = { 0 };
        assert_int_equal(key_sign_ctx_new(NULL, NULL, key, &ctx, &err), 0);
        assert_non_null(ctx);
        const EVP_MD *md = EVP_MD_CTX_get0_md(ctx);
        if (cases[i].md) {
            assert_non_null(md);
            assert_true(EVP_MD_is_a(md, cases[i].md));
        } else {
            assert_null(md);
        }
        unsigned char sig[1024];
        size_t siglen = sizeof(sig);
        assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, msg, sizeof(msg)), 1);
        EVP_MD_CTX *vctx = EVP_MD_CTX_new();
        assert_non_null(vctx);
        assert_int_equal(EVP_DigestVerifyInit_ex(vctx, NULL, cases[i].md, NULL, NULL, key, NULL),
                         1);
        assert_int_equal(EVP_DigestVerify(vctx, sig, siglen, msg, sizeof(msg)), 1);
        EVP_MD_CTX_free(vctx);
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(key);
    }
    /* A property query no provider satisfies: refused, nothing returned. */
    EVP_PKEY *key = fixture_key("server-ec.key");
    EVP_MD_CTX *ctx = NULL;
    struct certd_err err = { 0 };
    assert_int_equal(key_sign_ctx_new(NULL, "provider=nonexistent", key, &ctx, &err), -EIO);
    assert_null(ctx);
    assert_int_equal(err.code, CERTD_E_INTERNAL);
    assert_non_null(strstr(err.msg, "sign"));
    EVP_PKEY_free(key);
}

/* key_provider_name and key_is_held: software keys are never held, whatever their shape. */
static void test_provider_and_held(void **state)
{
    (void)state;
    EVP_PKEY *pairs[] = { gk.rsa_a, gk.ec256_a, gk.ec384, gk.ec521, gk.ed_a };
    for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
        assert_string_equal(key_provider_name(pairs[i]), "default");
        assert_false(key_is_held(pairs[i]));
    }
    /* Keys read from files (PKCS#1, SEC1, PKCS#8), and public keys from certificates. */
    static const char *const files[] = { "server-rsa.key", "server-ec.key", "client-ec384.key",
                                         "ed25519.key" };
    for (size_t i = 0; i < ELEMENTSOF(files); i++) {
        EVP_PKEY *k = fixture_key(files[i]);
        assert_false(key_is_held(k));
        assert_string_equal(key_provider_name(k), "default");
        EVP_PKEY_free(k);
    }
    static const char *const certs[] = { "server-rsa.pem", "server-ec.pem", "ed25519.pem" };
    for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
        X509 *x = fixture_cert(certs[i]);
        assert_false(key_is_held(X509_get0_pubkey(x)));
        assert_string_equal(key_provider_name(X509_get0_pubkey(x)), "default");
        X509_free(x);
    }
    /* An RSA-PSS key pair, and an empty EVP_PKEY. */
    EVP_PKEY *pss = NULL;
    EVP_PKEY_CTX *gctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    assert_non_null(gctx);
    assert_int_equal(EVP_PKEY_keygen_init(gctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_rsa_keygen_bits(gctx, 2048), 1);
    assert_int_equal(EVP_PKEY_generate(gctx, &pss), 1);
    EVP_PKEY_CTX_free(gctx);
    assert_non_null(pss);
    assert_false(key_is_held(pss));
    EVP_PKEY_free(pss);
    EVP_PKEY *empty = EVP_PKEY_new();
    assert_non_null(empty);
    assert_false(key_is_held(empty));
    assert_string_equal(key_provider_name(empty), "");
    EVP_PKEY_free(empty);
    assert_false(key_is_held(NULL));
    assert_string_equal(key_provider_name(NULL), "");
    /* A probe: it leaves no error behind. */
    assert_int_equal(ERR_peek_error(), 0);
}

/* key_public_dup: the public half alone, in a software provider. */
static void test_public_dup(void **state)
{
    (void)state;
    EVP_PKEY *all[] = { gk.rsa_a, gk.ec384, gk.ed_a };
    for (size_t i = 0; i < ELEMENTSOF(all); i++) {
        EVP_PKEY *pub = NULL;
        assert_int_equal(key_public_dup(NULL, NULL, all[i], &pub), 0);
        assert_non_null(pub);
        assert_ptr_not_equal(pub, all[i]);
        assert_true(key_public_eq(pub, all[i]));
        assert_string_equal(key_provider_name(pub), "default");
        assert_false(key_is_held(pub));
        /* Nothing private came along. */
        struct secret *pem = NULL;
        assert_int_equal(key_private_to_pem(NULL, NULL, pub, &pem), -EIO);
        assert_null(pem);
        EVP_PKEY_free(pub);
    }
    EVP_PKEY *pub = (EVP_PKEY *)&gk; /* marker: untouched on failure */
    EVP_PKEY *empty = EVP_PKEY_new();
    assert_non_null(empty);
    assert_int_equal(key_public_dup(NULL, NULL, empty, &pub), -EIO);
    assert_ptr_equal(pub, (EVP_PKEY *)&gk);
    EVP_PKEY_free(empty);
    assert_int_equal(key_public_dup(NULL, NULL, NULL, &pub), -EINVAL);
    assert_int_equal(key_public_dup(NULL, NULL, gk.ec256_a, NULL), -EINVAL);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_query_for(void **state)
{
    (void)state;
    char buf[KEY_QUERY_MAX];
    static const struct {
        const char *propq;
        const char *want; /* NULL: no query (the caller's propq stands) */
    } cases[] = {
        { NULL, "?provider=default" },
        { "", "?provider=default" },
        { "fips=no", "fips=no,?provider=default" },
        { "tpm2.digest!=yes,tpm2.rand!=yes", "tpm2.digest!=yes,tpm2.rand!=yes,?provider=default" },
        { "providers=1", "providers=1,?provider=default" },
        { "provider=default", NULL },
        { "fips=no,?provider=tpm2", NULL },
        { "-provider", NULL },
        { "provider!=tpm2", NULL },
        { "fips=no, provider=x", NULL },
        { "PROVIDER=x", NULL },
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        memset(buf, 'z', sizeof(buf));
        const char *q = key_query_for(gk.ec256_a, cases[i].propq, buf, sizeof(buf));
        if (cases[i].want) {
            assert_ptr_equal(q, buf);
            assert_string_equal(q, cases[i].want);
        } else {
            assert_null(q);
        }
    }
    /* Sizes at the edge: "?provider=default" is 17 characters. */
    assert_null(key_query_for(gk.ec256_a, NULL, buf, 17));
    assert_ptr_equal(key_query_for(gk.ec256_a, NULL, buf, 18), buf);
    assert_string_equal(buf, "?provider=default");
    assert_null(key_query_for(gk.ec256_a, NULL, buf, 0));
    assert_null(key_query_for(gk.ec256_a, NULL, NULL, 10));
    assert_null(key_query_for(NULL, NULL, buf, sizeof(buf)));
    /* KEY_QUERY_MAX holds the longest query a configuration gives (199 characters). */
    char propq[200];
    memset(propq, 'q', sizeof(propq) - 1);
    propq[sizeof(propq) - 1] = '\0';
    const char *q = key_query_for(gk.ec256_a, propq, buf, sizeof(buf));
    assert_non_null(q);
    assert_int_equal(strlen(q), 199 + strlen(",?provider=default"));
}

/* key_generate with a provider named: that provider, or an error naming it. */
static void test_generate_provider(void **state)
{
    (void)state;
    struct key_spec spec;
    struct certd_err err = { 0 };
    EVP_PKEY *k = NULL;

    /* The default provider, named: a key from it, with or without a propq of other terms. */
    assert_int_equal(key_spec_parse("default:ec:P-256", &spec, &err), 0);
    assert_int_equal(key_generate(NULL, NULL, &spec, &k, &err), 0);
    assert_string_equal(key_provider_name(k), "default");
    assert_false(key_is_held(k));
    EVP_PKEY_free(k);
    k = NULL;
    assert_int_equal(key_generate(NULL, "fips=no", &spec, &k, &err), 0);
    assert_string_equal(key_provider_name(k), "default");
    EVP_PKEY_free(k);

    /* A provider that is not loaded: named, nothing made (never a silent software key). */
    assert_int_equal(key_spec_parse("certd-none:rsa:2048", &spec, &err), 0);
    k = (EVP_PKEY *)&err;
    err_clear(&err);
    assert_int_equal(key_generate(NULL, NULL, &spec, &k, &err), -EOPNOTSUPP);
    assert_err(&err, CERTD_E_ALG_UNSUPPORTED, "provider certd-none is not loaded");
    assert_ptr_equal(k, (EVP_PKEY *)&err);

    /* A propq that names a provider cannot take another one. */
    assert_int_equal(key_spec_parse("default:ec:P-384", &spec, &err), 0);
    err_clear(&err);
    assert_int_equal(key_generate(NULL, "?provider=default", &spec, &k, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "already names a provider");
    assert_ptr_equal(k, (EVP_PKEY *)&err);

    /* A spec built by hand with a name key_spec_parse would refuse. */
    struct key_spec bad = { .alg = KEY_ALG_EC, .bits = 256, .curve = "P-256", .provider = "a,b" };
    err_clear(&err);
    assert_int_equal(key_generate(NULL, NULL, &bad, &k, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "malformed provider name");
    memset(bad.provider, 'p', sizeof(bad.provider));
    err_clear(&err);
    assert_int_equal(key_generate(NULL, NULL, &bad, &k, &err), -EINVAL);
    assert_ptr_equal(k, (EVP_PKEY *)&err);

    /* A property query too long to add the provider to. */
    char propq[KEY_QUERY_MAX];
    memset(propq, 'q', sizeof(propq) - 1);
    propq[sizeof(propq) - 1] = '\0';
    assert_int_equal(key_spec_parse("default:ec", &spec, &err), 0);
    err_clear(&err);
    assert_int_equal(key_generate(NULL, propq, &spec, &k, &err), -EINVAL);
    assert_err(&err, CERTD_E_FIELD_INVALID, "too long");
    assert_ptr_equal(k, (EVP_PKEY *)&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_from_names_table),
        cmocka_unit_test(test_spec_from_names_null_err),
        cmocka_unit_test(test_spec_parse_table),
        cmocka_unit_test(test_spec_format_round_trip),
        cmocka_unit_test(test_curve_nist_name),
        cmocka_unit_test(test_generate_describe),
        cmocka_unit_test(test_generate_fresh),
        cmocka_unit_test(test_generate_rejects),
        cmocka_unit_test(test_describe_fixtures),
        cmocka_unit_test(test_strength_fixtures),
        cmocka_unit_test(test_strength_generated_edges),
        cmocka_unit_test(test_pem_round_trip),
        cmocka_unit_test(test_pem_errors),
        cmocka_unit_test(test_default_digest),
        cmocka_unit_test(test_sign_ctx),
        cmocka_unit_test(test_provider_and_held),
        cmocka_unit_test(test_public_dup),
        cmocka_unit_test(test_query_for),
        cmocka_unit_test(test_generate_provider),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
