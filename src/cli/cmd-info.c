/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl info: show every certificate of a PEM/DER bundle, as text or JSON. A private key in
 * the input is reported by algorithm and size only; its material is never printed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "certctl.h"
#include "keys/uri.h"
#include "util/limits.h"
#include "x509/bundle.h"
#include "x509/inspect.h"

static void info_usage(FILE *f)
{
    (void)fprintf(f,
                  "Usage: certctl info [--json] [--max-input BYTES] [--key URI] FILE|URI|-\n"
                  "\n"
                  "Show the certificates in FILE (PEM or DER; '-' reads standard input) or at a\n"
                  "URI a provider reads (handle:0x01xxxxxx: an NV index of the TPM; give\n"
                  "--provider tpm2 or --config before 'info'): subject and issuer, serial,\n"
                  "validity, algorithms, key usages, extended key usages, basic constraints,\n"
                  "alternative names, SHA-256 fingerprint and the SPKI pin (sha256//...). A\n"
                  "private key is only described: its algorithm, and where it lives (the\n"
                  "provider holding it, e.g. tpm2, and its location); never shown.\n"
                  "\n"
                  "  --json             one JSON object: {\"certificates\": [...], \"key\": ...}\n"
                  "  --max-input BYTES  refuse larger input (default 65536)\n"
                  "  --key URI          the private key at URI (file:, handle:0x81xxxxxx,\n"
                  "                     object:PATH): must be the certificate's\n");
}

static void print_list(const char *label, const struct str_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        (void)printf("    %s:%s\n", label, l->v[i]);
    }
}

static void print_name(const char *label, const struct cert_name *n)
{
    (void)printf("%s: %s\n", label, n->rfc4514);
}

static void print_bits(const char *label, uint32_t bits, const char *(*name)(uint32_t))
{
    (void)printf("%s:", label);
    const char *sep = " ";
    for (uint32_t b = 1; b != 0 && b <= bits; b <<= 1) {
        if (bits & b) {
            (void)printf("%s%s", sep, name(b));
            sep = ", ";
        }
    }
    (void)printf("\n");
}

static void print_text(const struct cert_info *ci, size_t idx, size_t n)
{
    char nb[32], na[32];
    unix_to_iso8601(ci->not_before, nb, sizeof(nb));
    unix_to_iso8601(ci->not_after, na, sizeof(na));
    if (n > 1) {
        (void)printf("Certificate %zu of %zu\n", idx + 1, n);
    }
    print_name("Subject", &ci->subject);
    print_name("Issuer", &ci->issuer);
    (void)printf("Serial: %s\n", ci->serial_hex);
    (void)printf("Version: %d\n", ci->version);
    (void)printf("Not before: %s\n", nb);
    (void)printf("Not after: %s\n", na);
    (void)printf("Signature algorithm: %s\n", ci->signature_alg);
    if (ci->key_curve) {
        (void)printf("Public key: %s %s (%d bits)\n", ci->key_alg, ci->key_curve, ci->key_bits);
    } else {
        (void)printf("Public key: %s %d bits\n", ci->key_alg, ci->key_bits);
    }
    if (ci->has_basic_constraints) {
        if (ci->is_ca && ci->path_len >= 0) {
            (void)printf("Basic constraints: CA:TRUE, pathlen:%d\n", ci->path_len);
        } else {
            (void)printf("Basic constraints: CA:%s\n", ci->is_ca ? "TRUE" : "FALSE");
        }
    }
    if (ci->has_key_usage) {
        print_bits("Key usage", ci->key_usage, key_usage_bit_name);
    }
    if (ci->has_eku) {
        (void)printf("Extended key usage:");
        for (size_t i = 0; i < ci->eku_names.n; i++) {
            (void)printf("%s%s", i ? ", " : " ", ci->eku_names.v[i]);
        }
        (void)printf("\n");
    }
    if (ci->san_dns.n + ci->san_ip.n + ci->san_email.n + ci->san_uri.n > 0) {
        (void)printf("Alternative names:\n");
        print_list("DNS", &ci->san_dns);
        print_list("IP", &ci->san_ip);
        print_list("email", &ci->san_email);
        print_list("URI", &ci->san_uri);
    }
    (void)printf("SHA-256 fingerprint: %s\n", ci->fingerprint_sha256);
    (void)printf("SPKI pin: %s\n", ci->spki_pin);
    (void)printf("Self-signed: %s\n", ci->is_self_signed ? "yes" : "no");
}

static json_t *json_str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/*
 * JSON builders return NULL when anything fails (no memory, or a string that is not UTF-8,
 * which jansson refuses): the caller then fails the command instead of printing a document
 * with silently missing values. Values passed with "o" are stolen by json_pack even on error.
 */
static json_t *json_list(const struct str_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++) {
        if (json_array_append_new(a, json_string(l->v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *json_name(const struct cert_name *n)
{
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "common_name", json_str_or_null(n->common_name),
        "organization", json_str_or_null(n->organization), "organizational_unit",
        json_str_or_null(n->organizational_unit), "locality", json_str_or_null(n->locality),
        "state", json_str_or_null(n->state), "country", json_str_or_null(n->country), "email",
        json_str_or_null(n->email), "rfc4514", n->rfc4514);
}

static json_t *json_bits(uint32_t bits, const char *(*name)(uint32_t))
{
    json_t *a = json_array();
    for (uint32_t b = 1; a && b != 0 && b <= bits; b <<= 1) {
        if ((bits & b) && json_array_append_new(a, json_string(name(b))) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *json_cert(const struct cert_info *ci)
{
    char nb[32], na[32];
    unix_to_iso8601(ci->not_before, nb, sizeof(nb));
    unix_to_iso8601(ci->not_after, na, sizeof(na));
    json_t *o = json_pack(
        "{s:o, s:o, s:s, s:i, s:s, s:s, s:I, s:I, s:s, s:{s:s, s:i, s:o}, s:o, s:o, s:o, s:o,"
        " s:{s:o, s:o, s:o, s:o}, s:s, s:s, s:b}",
        "subject", json_name(&ci->subject), "issuer", json_name(&ci->issuer), "serial",
        ci->serial_hex, "version", ci->version, "not_before", nb, "not_after", na,
        "not_before_unix", (json_int_t)ci->not_before, "not_after_unix", (json_int_t)ci->not_after,
        "signature_algorithm", ci->signature_alg, "public_key", "algorithm", ci->key_alg, "bits",
        ci->key_bits, "curve", json_str_or_null(ci->key_curve), "key_usage",
        ci->has_key_usage ? json_bits(ci->key_usage, key_usage_bit_name) : json_null(),
        "extended_key_usage", ci->has_eku ? json_list(&ci->eku_names) : json_null(),
        "basic_constraints",
        ci->has_basic_constraints
            ? json_pack("{s:b, s:o}", "ca", ci->is_ca, "path_len",
                        ci->path_len >= 0 ? json_integer(ci->path_len) : json_null())
            : json_null(),
        "is_ca", json_boolean(ci->has_basic_constraints && ci->is_ca), "alternative_names", "dns",
        json_list(&ci->san_dns), "ip", json_list(&ci->san_ip), "email", json_list(&ci->san_email),
        "uri", json_list(&ci->san_uri), "fingerprint_sha256", ci->fingerprint_sha256, "spki_pin",
        ci->spki_pin, "self_signed", ci->is_self_signed);
    return o;
}

int cmd_info(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, 'h' },
        { "json", no_argument, NULL, 'j' },
        { "max-input", required_argument, NULL, 'm' },
        { "key", required_argument, NULL, 'k' },
        { 0 },
    };
    const char *key_uri = NULL;
    bool as_json = false;
    uint64_t max_input = CERTD_INPUT_MAX_DEFAULT;
    int c, r;

    while ((c = getopt_long(argc, argv, "hjm:k:", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            info_usage(stdout);
            return EXIT_OK;
        case 'j':
            as_json = true;
            break;
        case 'k':
            key_uri = optarg;
            break;
        case 'm':
            r = cli_parse_number("info", "--max-input", optarg, 1, CERTD_INPUT_MAX_HARD,
                                 &max_input);
            if (r != 0) {
                return r;
            }
            break;
        default:
            return cli_usage_error("info", "unknown option");
        }
    }
    if (argc - optind != 1) {
        return cli_usage_error("info", "expected one FILE (or '-' for standard input)");
    }
    const char *path = argv[optind];

    struct certd_err err = { 0 };
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    enum uri_kind kind = URI_FILE;
    /* A URI that is not a file (an NV index: handle:0x01...) is read through OSSL_STORE. */
    if (strcmp(path, "-") != 0 && strchr(path, ':') &&
        uri_check(path, &kind, NULL, NULL, &err) < 0) {
        return cli_fail(path, &err);
    }
    if (kind != URI_FILE) {
        b = calloc(1, sizeof(*b));
        if (!b) {
            return cli_fail(path, NULL);
        }
        r = uri_load_certs(ctx->libctx, ctx->propq, path, &b->certs, &err);
        if (r < 0) {
            return cli_fail(path, &err);
        }
    } else {
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        /* Read one byte over the cap so that the parser, not the reader, reports the size. */
        r = cli_read_input(path, (size_t)max_input + 1, &data, &len, &err);
        if (r < 0) {
            return cli_fail(path, &err);
        }
        r = bundle_parse(ctx->libctx, ctx->propq, span_make(data, len), (size_t)max_input, &b,
                         &err);
        OPENSSL_cleanse(data, len); /* the input may have held a private key */
        if (r < 0) {
            return cli_fail(path, &err);
        }
    }
    if (key_uri) {
        EVP_PKEY *k = NULL;
        enum uri_kind key_kind = URI_FILE;
        _cleanup_free_ char *key_path = NULL;
        r = uri_check(key_uri, &key_kind, &key_path, NULL, &err);
        if (r < 0) {
            return cli_fail(key_uri, &err);
        }
        /* A file through libcertd's strict PEM reader (it names what no provider reads). */
        if (key_kind == URI_FILE) {
            r = cli_load_key(ctx, key_path, &k, &err);
        } else {
            r = uri_load_key(ctx->libctx, ctx->propq, key_uri, &k, &err);
        }
        if (r < 0) {
            return cli_fail(key_uri, &err);
        }
        EVP_PKEY_free(b->key);
        b->key = k;
    }

    size_t n = bundle_n_certs(b);
    json_t *certs = as_json ? json_array() : NULL;
    if (as_json && !certs) {
        return cli_fail(path, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        _cleanup_(cleanup_cert_info) struct cert_info *ci = NULL;
        r = cert_inspect(ctx->libctx, ctx->propq, bundle_cert(b, i), &ci, &err);
        if (r < 0) {
            json_decref(certs);
            return cli_fail(path, &err);
        }
        if (as_json) {
            if (json_array_append_new(certs, json_cert(ci)) != 0) {
                json_decref(certs);
                (void)err_set(&err, -EBADMSG, CERTD_E_CERT_BAD,
                              "certificate %zu cannot be shown as JSON", i + 1);
                return cli_fail(path, &err);
            }
        } else {
            if (i > 0) {
                (void)printf("\n");
            }
            print_text(ci, i, n);
        }
    }

    struct key_info ki = { 0 };
    bool has_key = b->key && key_describe(b->key, &ki) == 0;
    /* Where the key lives (issue #5): a provider that holds it never lets it out. */
    bool is_held = has_key && key_is_held(b->key);
    const char *provider = has_key ? key_provider_name(b->key) : "";
    const char *where = key_uri ? key_uri : path;
    if (has_key && key_uri) {
        /* The certificates must be for this key, or the two operands do not belong together. */
        if (bundle_n_certs(b) > 0 && !key_public_eq(X509_get0_pubkey(bundle_cert(b, 0)), b->key)) {
            (void)err_set(&err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                          "the key at %s is not the certificate's key", key_uri);
            return cli_fail(path, &err);
        }
    }
    if (as_json) {
        json_t *key =
            has_key ? json_pack("{s:s, s:i, s:o, s:s, s:b, s:s}", "algorithm", ki.alg_name, "bits",
                                ki.bits, "curve", ki.curve[0] ? json_string(ki.curve) : json_null(),
                                "provider", provider, "held", is_held, "location", where)
                    : json_null();
        json_t *root = json_pack("{s:o, s:o}", "certificates", certs, "private_key", key);
        if (!root) {
            return cli_fail(path, NULL);
        }
        r = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        (void)printf("\n");
        if (r != 0) {
            return EXIT_IO;
        }
    } else if (has_key && is_held) {
        (void)printf("\nPrivate key: held by provider %s at %s (%s%s%s, %d bits; it never leaves "
                     "the provider)\n",
                     provider, where, ki.alg_name, ki.curve[0] ? " " : "", ki.curve, ki.bits);
    } else if (has_key) {
        (void)printf("\nPrivate key: present (%s%s%s, %d bits; provider %s; not shown)\n",
                     ki.alg_name, ki.curve[0] ? " " : "", ki.curve, ki.bits, provider);
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
}
