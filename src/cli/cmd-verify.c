/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl verify: judge a certificate bundle (and optionally a separate key file) exactly as
 * certd judges an upload for an endpoint type, and say why when it is refused.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "certctl.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "x509/bundle.h"
#include "x509/validate.h"

static void verify_usage(FILE *f)
{
    (void)fprintf(f,
                  "Usage: certctl verify [OPTIONS] CERT [KEY]\n"
                  "\n"
                  "Check CERT (PEM or DER; a certificate, its chain and optionally its key) for\n"
                  "an endpoint type, as certd does before installing it. KEY is a separate key\n"
                  "file. Prints the first violated rule and exits 1, or 'OK' and exits 0.\n"
                  "\n"
                  "  --type TYPE          server (default), client or authority\n"
                  "  --pending-key FILE   the key of a pending CSR, used when CERT has no key\n"
                  "  --reject-expired     refuse expired certificates (default: accept, warn)\n"
                  "  --reject-not-yet-valid  refuse certificates not yet valid (default: warn)\n"
                  "  --allow-ed25519      accept Ed25519 keys\n"
                  "  --max N              authority: most certificates accepted (default 10)\n"
                  "  --max-input BYTES    refuse larger input (default 65536)\n");
}

enum {
    OPT_TYPE = 0x100,
    OPT_PENDING,
    OPT_REJECT_EXPIRED,
    OPT_REJECT_NYV,
    OPT_ED25519,
    OPT_MAX,
    OPT_MAX_INPUT,
};

int cmd_verify(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "type", required_argument, NULL, OPT_TYPE },
        { "pending-key", required_argument, NULL, OPT_PENDING },
        { "reject-expired", no_argument, NULL, OPT_REJECT_EXPIRED },
        { "reject-not-yet-valid", no_argument, NULL, OPT_REJECT_NYV },
        { "allow-ed25519", no_argument, NULL, OPT_ED25519 },
        { "max", required_argument, NULL, OPT_MAX },
        { "max-input", required_argument, NULL, OPT_MAX_INPUT },
        { 0 },
    };
    struct validate_policy pol;
    enum endpoint_type type = ENDPOINT_SERVER;
    const char *pending_path = NULL;
    uint64_t max = 0, max_input = CERTD_INPUT_MAX_DEFAULT;
    int c, r;

    validate_policy_init(&pol, (int64_t)time(NULL));
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            verify_usage(stdout);
            return EXIT_OK;
        case OPT_TYPE:
            if (endpoint_type_from_name(optarg, &type) < 0) {
                return cli_usage_error("verify", "--type is server, client or authority, not '%s'",
                                       optarg);
            }
            break;
        case OPT_PENDING:
            pending_path = optarg;
            break;
        case OPT_REJECT_EXPIRED:
            pol.expired = VALIDITY_REJECT;
            break;
        case OPT_REJECT_NYV:
            pol.not_yet_valid = VALIDITY_REJECT;
            break;
        case OPT_ED25519:
            pol.keys.allow_ed25519 = true;
            break;
        case OPT_MAX:
            r = cli_parse_number("verify", "--max", optarg, 1, CERTD_AUTHORITY_MAX_HARD, &max);
            if (r != 0) {
                return r;
            }
            pol.max_certs = (size_t)max;
            break;
        case OPT_MAX_INPUT:
            r = cli_parse_number("verify", "--max-input", optarg, 1, CERTD_INPUT_MAX_HARD,
                                 &max_input);
            if (r != 0) {
                return r;
            }
            break;
        default:
            return cli_usage_error("verify", "unknown option");
        }
    }
    int nargs = argc - optind;
    if (nargs < 1 || nargs > 2) {
        return cli_usage_error("verify", "expected CERT and an optional KEY");
    }
    const char *cert_path = argv[optind];
    const char *key_path = nargs == 2 ? argv[optind + 1] : NULL;

    struct certd_err err = { 0 };
    _cleanup_free_ uint8_t *data = NULL;
    size_t len = 0;
    r = cli_read_input(cert_path, (size_t)max_input + 1, &data, &len, &err);
    if (r < 0) {
        return cli_fail(cert_path, &err);
    }
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    r = bundle_parse(ctx->libctx, ctx->propq, span_make(data, len), (size_t)max_input, &b, &err);
    OPENSSL_cleanse(data, len);
    if (r < 0) {
        return cli_fail(cert_path, &err);
    }
    if (key_path) {
        if (b->key) {
            (void)err_set(&err, -EINVAL, CERTD_E_MULTIPLE_KEYS,
                          "%s already holds a private key; give KEY only for a certificate "
                          "without one",
                          cert_path);
            return cli_fail(key_path, &err);
        }
        r = cli_load_key(ctx, key_path, &b->key, &err);
        if (r < 0) {
            return cli_fail(key_path, &err);
        }
    }
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *pending = NULL;
    if (pending_path) {
        r = cli_load_key(ctx, pending_path, &pending, &err);
        if (r < 0) {
            return cli_fail(pending_path, &err);
        }
    }

    struct validate_result res = { 0 };
    r = validate_bundle(ctx->libctx, ctx->propq, b, type, &pol, pending, NULL, &res, &err);
    if (r < 0) {
        return cli_fail(cert_path, &err);
    }
    if (res.warning[0]) {
        (void)fprintf(stderr, "certctl: warning: %s\n", res.warning);
    }
    (void)printf("OK: %zu certificate%s valid for a %s endpoint%s\n", bundle_n_certs(b),
                 bundle_n_certs(b) == 1 ? "" : "s", endpoint_type_name(type),
                 res.uses_pending_key ? " (with the pending CSR key)" : "");
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
}
