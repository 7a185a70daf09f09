/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl: certificate tools on libcertd (info, csr, selfsign, verify, user), certd's local CA
 * (ca), a console's enrollment (enroll) and pin stores (pin). This file holds
 * the dispatcher and what every subcommand shares: the one table from error classes to exit
 * codes, input reading with a size cap, and number options.
 */
#include "certctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "keys/providers.h"
#include "log/log.h"
#include "store/store.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "x509/bundle.h"

static const int class_exit_codes[CERTD_CLASS_MAX] = {
    [CERTD_CLASS_NONE] = EXIT_OK,
    [CERTD_CLASS_INVALID_INPUT] = EXIT_INVALID,
    [CERTD_CLASS_NOT_ALLOWED] = EXIT_INVALID,
    [CERTD_CLASS_NOT_FOUND] = EXIT_NOT_FOUND,
    [CERTD_CLASS_CONFLICT] = EXIT_INVALID,
    [CERTD_CLASS_UNAVAILABLE] = EXIT_IO,
    [CERTD_CLASS_INTERNAL] = EXIT_IO,
    [CERTD_CLASS_UPSTREAM] = EXIT_IO,
};

int exit_code_for(const struct certd_err *err)
{
    if (!err_is_set(err)) {
        return EXIT_IO; /* a failure nobody described is an internal one */
    }
    return class_exit_codes[err_code_class(err->code)];
}

int cli_fail(const char *what, const struct certd_err *err)
{
    if (strcmp(what, "-") == 0) {
        what = "standard input";
    }
    if (err_is_set(err)) {
        (void)fprintf(stderr, "certctl: %s: %s (%s)\n", what, err->msg, err_code_name(err->code));
    } else {
        (void)fprintf(stderr, "certctl: %s: internal error\n", what);
    }
    return exit_code_for(err);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    (void)fprintf(stderr, "certctl %s: ", cmd);
    va_start(ap, fmt);
    (void)vfprintf(stderr, fmt, ap);
    va_end(ap);
    (void)fprintf(stderr, "\nTry 'certctl %s --help'.\n", cmd);
    return EXIT_USAGE;
}

int cli_one_operand(const char *cmd, int argc, char **argv, const char *missing, const char **ret)
{
    if (optind >= argc) {
        return cli_usage_error(cmd, "%s", missing);
    }
    if (optind + 1 < argc) {
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    }
    *ret = argv[optind];
    return 0;
}

/* Free a buffer that may hold key material: wiped first. */
static void buf_wipe_free(uint8_t *p, size_t size)
{
    if (p) {
        OPENSSL_cleanse(p, size);
        free(p);
    }
}

/*
 * Read all of fd, at most max bytes. The input may be a key bundle: the buffer grows by copy and
 * every copy left behind is wiped, never realloc'd away with its contents.
 */
static int read_fd_capped(int fd, size_t max, uint8_t **ret, size_t *ret_len)
{
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap + 1);
    int r = 0;
    if (!buf) {
        return -ENOMEM;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap;
            if (cap > max || !size_mul(cap, 2, &ncap)) {
                r = -E2BIG;
                break;
            }
            uint8_t *n = malloc(ncap + 1);
            if (!n) {
                r = -ENOMEM;
                break;
            }
            memcpy(n, buf, len);
            buf_wipe_free(buf, cap + 1);
            buf = n;
            cap = ncap;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = -errno;
            break;
        }
        if (k == 0) {
            break;
        }
        len += (size_t)k;
        if (len > max) {
            r = -E2BIG;
            break;
        }
    }
    if (r < 0) {
        buf_wipe_free(buf, cap + 1);
        return r;
    }
    buf[len] = '\0';
    *ret = buf;
    *ret_len = len;
    return 0;
}

int cli_read_input(const char *path, size_t max, uint8_t **ret, size_t *ret_len,
                   struct certd_err *err)
{
    int r;
    if (strcmp(path, "-") == 0) {
        r = read_fd_capped(STDIN_FILENO, max, ret, ret_len);
    } else {
        r = store_read_file(path, max, false, ret, ret_len);
    }
    if (r == -E2BIG) {
        return err_set(err, r, CERTD_E_INPUT_TOO_LARGE, "%s is larger than %zu bytes",
                       strcmp(path, "-") == 0 ? "standard input" : path, max);
    }
    if (r == -ENOENT) {
        return err_set(err, r, CERTD_E_NOT_FOUND, "%s does not exist", path);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot read %s: %s", path, strerror(-r));
    }
    return 0;
}

int cli_parse_number(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max,
                     uint64_t *ret)
{
    if (parse_u64(s, min, max, ret) < 0) {
        return cli_usage_error(cmd, "%s takes a whole number from %llu to %llu, not '%s'", opt,
                               (unsigned long long)min, (unsigned long long)max, s);
    }
    return 0;
}

int cli_load_key(const struct cli_ctx *ctx, const char *path, EVP_PKEY **ret, struct certd_err *err)
{
    _cleanup_free_ uint8_t *data = NULL;
    size_t len = 0;
    int r = cli_read_input(path, CERTD_INPUT_MAX_DEFAULT, &data, &len, err);
    if (r < 0) {
        return r;
    }
    r = key_parse_pem(ctx->libctx, ctx->propq, span_make(data, len), ret, err);
    OPENSSL_cleanse(data, len);
    return r;
}

int cli_read_bundle(const struct cli_ctx *ctx, const char *path, const char *what,
                    struct bundle **ret, struct certd_err *err)
{
    _cleanup_free_ uint8_t *data = NULL;
    struct certd_err e2 = { 0 };
    size_t len = 0;
    int r = cli_read_input(path, CERTD_INPUT_MAX_DEFAULT, &data, &len, err);
    if (r < 0) {
        return r;
    }
    r = bundle_parse(ctx->libctx, ctx->propq, span_make(data, len), len, ret, &e2);
    OPENSSL_cleanse(data, len);
    if (r < 0) {
        return err_set(err, r, e2.code, "%s: %s", what, e2.msg);
    }
    return 0;
}

static void usage(FILE *f)
{
    (void)fprintf(f,
                  "Usage: certctl [--propq QUERY] [--provider NAME]... [--config FILE] [--debug]\n"
                  "               COMMAND [OPTIONS]\n"
                  "\n"
                  "Certificate tools of certd.\n"
                  "\n"
                  "  --provider NAME    load this OpenSSL provider (default first, then e.g.\n"
                  "                     tpm2: keys in a TPM; its TCTI from TPM2OPENSSL_TCTI)\n"
                  "  --config FILE      load the providers of certd's configuration file\n"
                  "\n"
                  "Commands:\n"
                  "  info FILE|-        show the certificates (and whether a key is present)\n"
                  "  csr                make a new key and a certificate signing request\n"
                  "  selfsign           make a self-signed server certificate\n"
                  "  verify CERT [KEY]  check a certificate (bundle) for an endpoint type\n"
                  "  user OPERATION     add, passwd, del, list or role: certd's users file\n"
                  "  ca OPERATION       sign, revoke, list or crl with certd's local CA\n"
                  "  enroll URL         get a client certificate from a BMC's SignCSR\n"
                  "  pin OPERATION      list, add or del the keys certd accepts by pin\n"
                  "\n"
                  "'certctl COMMAND --help' describes each command.\n"
                  "\n"
                  "Exit codes: 0 success, 1 input rejected (or a server that failed\n"
                  "            verification), 2 usage error, 3 a file that cannot be read or\n"
                  "            written, a network, server or system error, 4 a named file or\n"
                  "            object does not exist.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "propq", required_argument, NULL, 'q' },
        { "debug", no_argument, NULL, 'd' },
        { "version", no_argument, NULL, 'V' },
        { "provider", required_argument, NULL, 'p' },
        { "config", required_argument, NULL, 'c' },
        { 0 },
    };
    struct cli_ctx ctx = { 0 };
    struct provider_spec specs[PROVIDERS_MAX] = { 0 };
    size_t n_specs = 0;
    const char *config_path = NULL;
    int c;

    /* Options before the command only: '+' stops at the first non-option. */
    while ((c = getopt_long(argc, argv, "+hq:dVp:c:", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'q':
            ctx.propq = optarg;
            break;
        case 'd':
            log_set_max_level(LOG_DEBUG);
            break;
        case 'V':
            (void)printf("certctl 0.1.0\n");
            return EXIT_OK;
        case 'p':
            if (n_specs == 0 && strcmp(optarg, "default") != 0) {
                /* notes/tpm2.md P2: the default provider first, always. */
                memcpy(specs[n_specs++].name, "default", sizeof("default"));
            }
            /* Names are checked by config_parse below; these bounds keep the copy safe. */
            if (n_specs >= PROVIDERS_MAX || strlen(optarg) > KEY_PROVIDER_NAME_MAX) {
                return cli_usage_error("certctl", "--provider: too many, or a name too long");
            }
            memcpy(specs[n_specs++].name, optarg, strlen(optarg) + 1);
            break;
        case 'c':
            config_path = optarg;
            break;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    _cleanup_(cleanup_config) struct config *cfg = NULL;
    if (config_path && n_specs > 0) {
        return cli_usage_error("certctl", "--provider and --config exclude each other");
    }
    struct certd_err err = { 0 };
    if (config_path && config_load(config_path, &cfg, &err) < 0) {
        return cli_fail(config_path, &err);
    }
    if (n_specs > 0) {
        /* The same rules and defaults as certd's [providers] (config.c's known providers). */
        char text[64 + PROVIDERS_MAX * (KEY_PROVIDER_NAME_MAX + 1)];
        size_t o = (size_t)snprintf(text, sizeof(text), "[providers]\nload = ");
        for (size_t i = 0; i < n_specs; i++) {
            o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s", i ? "," : "", specs[i].name);
        }
        (void)snprintf(text + o, sizeof(text) - o, "\n");
        if (config_parse(span_from_str(text), "--provider", &cfg, &err) < 0) {
            return cli_fail("--provider", &err);
        }
    }
    _cleanup_(cleanup_OSSL_LIB_CTX) OSSL_LIB_CTX *libctx = NULL;
    const struct config_providers *p = cfg ? &cfg->providers : NULL;
    if (p && !(p->n == 1 && strcmp(p->specs[0].name, "default") == 0 && p->specs[0].n_params == 0 &&
               !p->query)) {
        for (size_t i = 0; i < p->n_env; i++) {
            (void)setenv(p->env[i].name, p->env[i].value, 1);
        }
        if (providers_libctx_new(p->specs, p->n, p->query, &libctx, &err) < 0) {
            return cli_fail("providers", &err);
        }
        ctx.libctx = libctx;
    }

    static const struct {
        const char *name;
        int (*fn)(const struct cli_ctx *, int, char **);
    } cmds[] = {
        { "info", cmd_info },     { "csr", cmd_csr },   { "selfsign", cmd_selfsign },
        { "verify", cmd_verify }, { "user", cmd_user }, { "ca", cmd_ca },
        { "enroll", cmd_enroll }, { "pin", cmd_pin },
    };
    const char *name = argv[optind];
    for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
        if (strcmp(name, cmds[i].name) == 0) {
            /* The subcommand sees argv from its own name on; optind = 0 restarts getopt. */
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0;
            return cmds[i].fn(&ctx, sub_argc, sub_argv);
        }
    }
    (void)fprintf(stderr, "certctl: unknown command '%s'\n", name);
    usage(stderr);
    return EXIT_USAGE;
}
