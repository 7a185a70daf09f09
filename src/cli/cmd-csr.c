/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl csr and certctl selfsign: make a fresh key (or use one) and a CSR or a self-signed
 * server certificate. Key files are written 0600 through libcertd's atomic store; when the key
 * and the CSR/certificate both go to files they are written as one set, so a failure leaves
 * neither half behind.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "certctl.h"
#include "csr/csr.h"
#include "issue/issue.h"
#include "store/store.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/secret.h"
#include "x509/bundle.h"

/* Repeated options are gathered up to this many; the library judges its own lower limits. */
#define CLI_LIST_MAX 1024u

struct str_vec {
    const char **v;
    size_t n;
};

static int vec_push(struct str_vec *vec, const char *s)
{
    if (vec->n >= CLI_LIST_MAX) {
        return -E2BIG;
    }
    const char **n = realloc(vec->v, (vec->n + 1) * sizeof(*n));
    if (!n) {
        return -ENOMEM;
    }
    n[vec->n++] = s;
    vec->v = n;
    return 0;
}

struct key_opts {
    const char *alg;
    uint64_t bits;
    const char *curve;
    const char *key_in;
    const char *key_out;
};

/* Make the key the options ask for: load --key, or generate --key-alg/--key-bits/--key-curve. */
static int key_from_opts(const struct cli_ctx *ctx, const struct key_opts *ko, EVP_PKEY **ret,
                         struct certd_err *err)
{
    if (ko->key_in) {
        return cli_load_key(ctx, ko->key_in, ret, err);
    }
    struct key_spec spec;
    int r =
        key_spec_from_names(ko->alg ? ko->alg : "EC", (unsigned)ko->bits, ko->curve, &spec, err);
    if (r < 0) {
        return r;
    }
    return key_generate(ctx->libctx, ctx->propq, &spec, ret, err);
}

/*
 * Write the private key (0600) and the public output (CSR or certificate, 0644). With out "-"
 * the output goes to standard output after the key file is safely written.
 */
static int write_outputs(const struct cli_ctx *ctx, EVP_PKEY *key, const char *key_out,
                         const char *out, const char *pem, size_t pem_len, struct certd_err *err)
{
    _cleanup_(cleanup_secret) struct secret *kp = NULL;
    int r;

    if (key_out) {
        r = key_private_to_pem(ctx->libctx, ctx->propq, key, &kp);
        if (r < 0) {
            return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the new private key");
        }
    }
    if (strcmp(out, "-") != 0) {
        struct store_file files[2];
        size_t n = 0;
        if (kp) {
            files[n++] = (struct store_file){ .path = key_out,
                                              .data = span_make(kp->p, kp->len),
                                              .mode = STORE_MODE_SECRET };
        }
        files[n++] = (struct store_file){ .path = out,
                                          .data = span_make(pem, pem_len),
                                          .mode = STORE_MODE_PUBLIC };
        r = store_write_set(files, n, err);
        if (r != -EXDEV || !kp) {
            return r;
        }
        /*
         * Key and output in different directories: the store makes crash-safe sets only within
         * one directory. Write the key, then the output; if the output fails, take back a key
         * file this call created, so that a failure leaves no new key without its CSR.
         */
        err_clear(err);
        struct stat st;
        bool key_existed = lstat(key_out, &st) == 0;
        r = store_write_atomic(key_out, span_make(kp->p, kp->len), STORE_MODE_SECRET, err);
        if (r < 0) {
            return r;
        }
        r = store_write_atomic(out, span_make(pem, pem_len), STORE_MODE_PUBLIC, err);
        if (r < 0 && !key_existed) {
            (void)unlink(key_out);
        }
        return r;
    }
    if (kp) {
        r = store_write_atomic(key_out, span_make(kp->p, kp->len), STORE_MODE_SECRET, err);
        if (r < 0) {
            return r;
        }
    }
    if (fwrite(pem, 1, pem_len, stdout) != pem_len || fflush(stdout) != 0) {
        return err_set(err, -EIO, CERTD_E_STORAGE, "cannot write to standard output");
    }
    return 0;
}

static void csr_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl csr --cn NAME --key-out FILE [--out FILE|-] [OPTIONS]\n"
           "\n"
           "Generate a fresh private key and a PKCS#10 certificate signing request with the\n"
           "fields of Redfish GenerateCSR. The key is written with mode 0600; the CSR (PEM)\n"
           "goes to --out, standard output by default.\n"
           "\n"
           "Key:\n"
           "  --key-alg ALG          RSA, EC (default), Ed25519; also TPM_ALG_RSA, TPM_ALG_ECC\n"
           "  --key-bits N           RSA size: 2048 (default), 3072, 4096\n"
           "  --key-curve CURVE      EC curve: P-256 (default), P-384, P-521, prime256v1,\n"
           "                         secp384r1, secp521r1, TPM_ECC_NIST_P256, ...\n"
           "  --key FILE             use this existing key instead of making one (certd itself\n"
           "                         makes a fresh key for every CSR; reusing one is your call)\n"
           "  --key-out FILE         where to write the new key (required without --key)\n"
           "Subject and request (X.520 lengths are enforced):\n"
           "  --cn NAME              CommonName (required, at most 64 characters)\n"
           "  --san NAME             AlternativeNames: DNS name, IPv4/IPv6 address, email or URI\n"
           "                         (repeat for more)\n"
           "  --key-usage USAGE      Redfish KeyUsage: DigitalSignature, KeyEncipherment,\n"
           "                         ServerAuthentication, ClientAuthentication, ... (repeat)\n"
           "  --city, --state, --country CC, --org, --ou, --email, --given-name, --surname,\n"
           "  --initials, --unstructured-name, --contact-person   subject attributes\n"
           "  --challenge-password-file FILE   challengePassword attribute, read from FILE\n"
           "                         (first line; never on the command line)\n");
}

int cli_read_secret_line(const char *path, size_t max, const char *what, struct secret **ret,
                         struct certd_err *err)
{
    _cleanup_free_ uint8_t *data = NULL;
    size_t len = 0;
    /* The line and its terminator (CR LF at most): anything longer is too long. */
    int r = cli_read_input(path, max + 2, &data, &len, err);
    if (r < 0) {
        return r;
    }
    size_t n = 0;
    while (n < len && data[n] != '\n' && data[n] != '\r') {
        n++;
    }
    struct secret *s = secret_new(data, n);
    OPENSSL_cleanse(data, len);
    if (!s) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    if (memchr(s->p, '\0', n)) {
        (void)secret_free(s);
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID, "%s holds a NUL byte", what);
    }
    *ret = s;
    return 0;
}

enum {
    OPT_KEY_ALG = 0x100,
    OPT_KEY_BITS,
    OPT_KEY_CURVE,
    OPT_KEY,
    OPT_KEY_OUT,
    OPT_OUT,
    OPT_CN,
    OPT_SAN,
    OPT_KEY_USAGE,
    OPT_CITY,
    OPT_STATE,
    OPT_COUNTRY,
    OPT_ORG,
    OPT_OU,
    OPT_EMAIL,
    OPT_GIVEN_NAME,
    OPT_SURNAME,
    OPT_INITIALS,
    OPT_UNSTRUCTURED_NAME,
    OPT_CONTACT_PERSON,
    OPT_CHALLENGE_FILE,
    OPT_DAYS,
};

#define KEY_OPTIONS                                                                             \
    { "key-alg", required_argument, NULL, OPT_KEY_ALG },                                        \
        { "key-bits", required_argument, NULL, OPT_KEY_BITS },                                  \
        { "key-curve", required_argument, NULL, OPT_KEY_CURVE },                                \
        { "key", required_argument, NULL, OPT_KEY },                                            \
        { "key-out", required_argument, NULL, OPT_KEY_OUT },                                    \
        { "out", required_argument, NULL, OPT_OUT }, { "cn", required_argument, NULL, OPT_CN }, \
        { "san", required_argument, NULL, OPT_SAN },                                            \
    {                                                                                           \
        "help", no_argument, NULL, 'h'                                                          \
    }

/* Handle the options csr and selfsign share. 1 = handled, 0 = not ours, EXIT_* < 0 never. */
static int key_option(const char *cmd, int c, struct key_opts *ko, int *ret_exit)
{
    *ret_exit = 0;
    switch (c) {
    case OPT_KEY_ALG:
        ko->alg = optarg;
        return 1;
    case OPT_KEY_BITS:
        *ret_exit = cli_parse_number(cmd, "--key-bits", optarg, 1, 65536, &ko->bits);
        return 1;
    case OPT_KEY_CURVE:
        ko->curve = optarg;
        return 1;
    case OPT_KEY:
        ko->key_in = optarg;
        return 1;
    case OPT_KEY_OUT:
        ko->key_out = optarg;
        return 1;
    default:
        return 0;
    }
}

static int check_key_opts(const char *cmd, const struct key_opts *ko)
{
    if (ko->key_in && (ko->alg || ko->bits || ko->curve)) {
        return cli_usage_error(cmd, "--key uses an existing key: drop --key-alg/--key-bits/"
                                    "--key-curve");
    }
    if (ko->key_in && ko->key_out) {
        return cli_usage_error(cmd, "--key and --key-out exclude each other");
    }
    if (!ko->key_in && !ko->key_out) {
        return cli_usage_error(cmd, "a new key needs --key-out FILE (or give --key FILE)");
    }
    return 0;
}

static int csr_run(const struct cli_ctx *ctx, struct csr_request *req, const struct key_opts *ko,
                   const char *out, const char *pw_file)
{
    struct certd_err err = { 0 };
    _cleanup_(cleanup_secret) struct secret *pw = NULL;
    int r;

    if (pw_file) {
        r = cli_read_secret_line(pw_file, PKCS9_CHALLENGE_PASSWORD_MAX,
                                 "the challenge password file", &pw, &err);
        if (r < 0 || !pw) {
            return cli_fail(pw_file, &err);
        }
        req->challenge_password = (const char *)pw->p;
    }
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    r = key_from_opts(ctx, ko, &key, &err);
    if (r < 0) {
        return cli_fail("key", &err);
    }
    _cleanup_(cleanup_X509_REQ) X509_REQ *csr = NULL;
    r = csr_build(ctx->libctx, ctx->propq, req, key, &csr, &err);
    /* The request borrowed the password; it is wiped with pw when this function returns. */
    req->challenge_password = NULL;
    if (r < 0) {
        return cli_fail("csr", &err);
    }
    _cleanup_free_ char *pem = NULL;
    size_t pem_len = 0;
    r = csr_to_pem(csr, &pem, &pem_len);
    if (r < 0) {
        (void)err_set(&err, r, CERTD_E_INTERNAL, "cannot encode the CSR");
        return cli_fail("csr", &err);
    }
    r = write_outputs(ctx, key, ko->key_out, out, pem, pem_len, &err);
    if (r < 0) {
        return cli_fail("write", &err);
    }
    return EXIT_OK;
}

int cmd_csr(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        KEY_OPTIONS,
        { "key-usage", required_argument, NULL, OPT_KEY_USAGE },
        { "city", required_argument, NULL, OPT_CITY },
        { "state", required_argument, NULL, OPT_STATE },
        { "country", required_argument, NULL, OPT_COUNTRY },
        { "org", required_argument, NULL, OPT_ORG },
        { "ou", required_argument, NULL, OPT_OU },
        { "email", required_argument, NULL, OPT_EMAIL },
        { "given-name", required_argument, NULL, OPT_GIVEN_NAME },
        { "surname", required_argument, NULL, OPT_SURNAME },
        { "initials", required_argument, NULL, OPT_INITIALS },
        { "unstructured-name", required_argument, NULL, OPT_UNSTRUCTURED_NAME },
        { "contact-person", required_argument, NULL, OPT_CONTACT_PERSON },
        { "challenge-password-file", required_argument, NULL, OPT_CHALLENGE_FILE },
        { 0 },
    };
    struct csr_request req = { 0 };
    struct key_opts ko = { 0 };
    struct str_vec sans = { 0 }, usages = { 0 };
    const char *out = "-", *pw_file = NULL;
    int c, rc = EXIT_OK;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (key_option("csr", c, &ko, &rc)) {
            if (rc != 0) {
                goto out;
            }
            continue;
        }
        switch (c) {
        case 'h':
            csr_usage(stdout);
            goto out;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_CN:
            req.common_name = optarg;
            break;
        case OPT_SAN:
            if (vec_push(&sans, optarg) < 0) {
                rc = cli_usage_error("csr", "too many --san options");
                goto out;
            }
            break;
        case OPT_KEY_USAGE:
            if (vec_push(&usages, optarg) < 0) {
                rc = cli_usage_error("csr", "too many --key-usage options");
                goto out;
            }
            break;
        case OPT_CITY:
            req.city = optarg;
            break;
        case OPT_STATE:
            req.state = optarg;
            break;
        case OPT_COUNTRY:
            req.country = optarg;
            break;
        case OPT_ORG:
            req.organization = optarg;
            break;
        case OPT_OU:
            req.organizational_unit = optarg;
            break;
        case OPT_EMAIL:
            req.email = optarg;
            break;
        case OPT_GIVEN_NAME:
            req.given_name = optarg;
            break;
        case OPT_SURNAME:
            req.surname = optarg;
            break;
        case OPT_INITIALS:
            req.initials = optarg;
            break;
        case OPT_UNSTRUCTURED_NAME:
            req.unstructured_name = optarg;
            break;
        case OPT_CONTACT_PERSON:
            req.contact_person = optarg;
            break;
        case OPT_CHALLENGE_FILE:
            pw_file = optarg;
            break;
        default:
            rc = cli_usage_error("csr", "unknown option");
            goto out;
        }
    }
    if (optind != argc) {
        rc = cli_usage_error("csr", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    rc = check_key_opts("csr", &ko);
    if (rc != 0) {
        goto out;
    }

    req.alt_names = sans.v;
    req.n_alt_names = sans.n;
    req.key_usage = usages.v;
    req.n_key_usage = usages.n;
    rc = csr_run(ctx, &req, &ko, out, pw_file);
out:
    free(sans.v);
    free(usages.v);
    return rc;
}

static void selfsign_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl selfsign --cn NAME (--key FILE | --key-out FILE) [--out FILE|-]\n"
           "                        [--san NAME]... [--days N] [--key-alg ALG] [--key-bits N]\n"
           "                        [--key-curve CURVE]\n"
           "\n"
           "Make a self-signed server certificate (v3, serverAuth, SAN from --cn and --san,\n"
           "random 128-bit serial) for an existing key or a new one (EC P-256 by default;\n"
           "written 0600 to --key-out). The certificate (PEM) goes to --out, standard\n"
           "output by default. --days: validity, 1 to 36500 (default 365).\n");
}

static int selfsign_run(const struct cli_ctx *ctx, const struct key_opts *ko, const char *cn,
                        const struct str_vec *sans, unsigned days, const char *out)
{
    struct certd_err err = { 0 };
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    int r = key_from_opts(ctx, ko, &key, &err);
    if (r < 0) {
        return cli_fail("key", &err);
    }
    struct selfsign_request req = {
        .common_name = cn,
        .alt_names = sans->v,
        .n_alt_names = sans->n,
        .days = days,
        .now = (int64_t)time(NULL),
    };
    _cleanup_(cleanup_X509) X509 *cert = NULL;
    r = issue_selfsigned(ctx->libctx, ctx->propq, key, &req, &cert, &err);
    if (r < 0) {
        return cli_fail("selfsign", &err);
    }
    _cleanup_free_ char *pem = NULL;
    size_t pem_len = 0;
    r = cert_to_pem(cert, &pem, &pem_len);
    if (r < 0) {
        (void)err_set(&err, r, CERTD_E_INTERNAL, "cannot encode the certificate");
        return cli_fail("selfsign", &err);
    }
    r = write_outputs(ctx, key, ko->key_out, out, pem, pem_len, &err);
    if (r < 0) {
        return cli_fail("write", &err);
    }
    return EXIT_OK;
}

int cmd_selfsign(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        KEY_OPTIONS,
        { "days", required_argument, NULL, OPT_DAYS },
        { 0 },
    };
    struct key_opts ko = { 0 };
    struct str_vec sans = { 0 };
    const char *out = "-", *cn = NULL;
    uint64_t days = 365;
    int c, rc = EXIT_OK;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (key_option("selfsign", c, &ko, &rc)) {
            if (rc != 0) {
                goto out;
            }
            continue;
        }
        switch (c) {
        case 'h':
            selfsign_usage(stdout);
            goto out;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_CN:
            cn = optarg;
            break;
        case OPT_SAN:
            if (vec_push(&sans, optarg) < 0) {
                rc = cli_usage_error("selfsign", "too many --san options");
                goto out;
            }
            break;
        case OPT_DAYS:
            rc = cli_parse_number("selfsign", "--days", optarg, 1, CERTD_VALIDITY_DAYS_MAX, &days);
            if (rc != 0) {
                goto out;
            }
            break;
        default:
            rc = cli_usage_error("selfsign", "unknown option");
            goto out;
        }
    }
    if (optind != argc) {
        rc = cli_usage_error("selfsign", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!cn) {
        rc = cli_usage_error("selfsign", "--cn NAME is required");
        goto out;
    }
    rc = check_key_opts("selfsign", &ko);
    if (rc != 0) {
        goto out;
    }

    rc = selfsign_run(ctx, &ko, cn, &sans, (unsigned)days, out);
out:
    free(sans.v);
    return rc;
}
