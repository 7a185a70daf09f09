/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl enroll URL: a management console's whole flow in one command (issue #4). Make a key
 * and a CSR, send the CSR to the BMC's SignCSR over HTTPS with Basic authentication, check
 * the answer, and write the key (0600), the client certificate and the CA certificate as one
 * set. Two forms: "ibm" (POST /ibm/v1/Host/Actions/SignCSR {"CsrString"} -> {"Certificate"},
 * then GET /ibm/v1/Host/Certificate/root) and "vmi" (seed 000: POST /ibm/v1/VMInterface/SignCSR
 * {"data": [CSR]} -> {"data": [client certificate + CA certificate]}).
 *
 * The HTTPS exchange is client.c's (the server verified by CA, by pin or not at all, Basic
 * or client-certificate authentication). Everything the server sends is hostile: its
 * certificates go through libcertd's bundle parser, and nothing is written unless the
 * certificate holds our public key and chains to the CA certificate that came with it.
 *
 * Secrets: the private key exists as an EVP_PKEY and as PEM in a struct secret until it is
 * written; it is never printed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "certctl.h"
#include "client.h"
#include "csr/csr.h"
#include "keys/keys.h"
#include "store/store.h"
#include "util/base64.h"
#include "util/json.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "util/secret.h"
#include "x509/bundle.h"

/*
 * A SignCSR answer is a certificate and a CA certificate, a few KiB: the client's bound on a
 * body (CLIENT_BODY_MAX) bounds what a wrong or hostile server can make us hold.
 */
_Static_assert(CLIENT_BODY_MAX >= 64u * 1024u, "a SignCSR answer fits");

enum enroll_form { ENROLL_FORM_IBM, ENROLL_FORM_VMI };

#define IBM_SIGN_PATH "/ibm/v1/Host/Actions/SignCSR"
#define IBM_ROOT_PATH "/ibm/v1/Host/Certificate/root"
#define VMI_SIGN_PATH "/ibm/v1/VMInterface/SignCSR"

struct enroll {
    const struct cli_ctx *ctx;
    struct client *client;
};

/* ---- judging the answer ---- */

static const struct client_meanings sign_meanings = {
    .unauthorized = "the user name or password was not accepted",
    .forbidden = "the user may not sign certificates (an Administrator may)",
    .not_found = "no such service at this URL (try the other --form)",
};

/* Certificates in PEM from the server: libcertd's bundle rules, and never a key. */
static int parse_certs(const struct enroll *e, const char *what, const char *pem,
                       struct bundle **ret, struct certd_err *err)
{
    struct certd_err e2 = { 0 };
    int r =
        bundle_parse(e->ctx->libctx, e->ctx->propq, span_from_str(pem), CLIENT_BODY_MAX, ret, &e2);
    if (r < 0) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED, "%s from %s: %s", what,
                       client_host(e->client), e2.msg);
    }
    if ((*ret)->key || (*ret)->is_der) {
        *ret = bundle_free(*ret);
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "%s from %s is not certificates in PEM", what, client_host(e->client));
    }
    return 0;
}

/* A string member of an object, or an error naming what is missing. */
static int member_string(const struct enroll *e, json_t *o, const char *name, const char *what,
                         const char **ret, struct certd_err *err)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (!s) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "%s from %s: the answer has no string \"%s\"", what, client_host(e->client),
                       name);
    }
    *ret = s;
    return 0;
}

/* The issued certificate (leaf first, then any chain the server sent) and its CA. */
struct enroll_result {
    STACK_OF(X509) *client; /* owned */
    STACK_OF(X509) *ca;     /* owned */
};

static void result_done(struct enroll_result *res)
{
    x509_stack_free(res->client);
    x509_stack_free(res->ca);
}

static STACK_OF(X509) *take_certs(struct bundle *b, int from, int to)
{
    STACK_OF(X509) *sk = sk_X509_new_null();
    for (int i = from; sk && i < to; i++) {
        X509 *c = sk_X509_value(b->certs, i);
        if (!X509_up_ref(c)) {
            x509_stack_free(sk);
            return NULL;
        }
        if (!sk_X509_push(sk, c)) {
            X509_free(c);
            x509_stack_free(sk);
            return NULL;
        }
    }
    return sk;
}

static int sign_ibm(const struct enroll *e, const char *csr, struct enroll_result *res,
                    struct certd_err *err)
{
    _cleanup_(client_answer_done) struct client_answer a = { 0 }, ra = { 0 };
    _cleanup_(cleanup_json_t) json_t *req = json_pack("{s:s}", "CsrString", csr);
    _cleanup_(cleanup_json_t) json_t *j = NULL, *rj = NULL;
    _cleanup_free_ char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    _cleanup_(cleanup_bundle) struct bundle *cb = NULL, *rb = NULL;
    const char *pem = NULL;
    if (!body) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = client_request(e->client, "POST", IBM_SIGN_PATH, body, strlen(body), &a, err);
    if (r >= 0) {
        r = client_answer_json(e->client, "SignCSR at", &a, &sign_meanings, &j, err);
    }
    if (r >= 0) {
        r = member_string(e, j, "Certificate", "SignCSR", &pem, err);
    }
    if (r >= 0) {
        r = parse_certs(e, "the certificate", pem, &cb, err);
    }
    if (r >= 0) {
        r = client_request(e->client, "GET", IBM_ROOT_PATH, NULL, 0, &ra, err);
    }
    if (r >= 0) {
        r = client_answer_json(e->client, "the CA certificate at", &ra, &sign_meanings, &rj, err);
    }
    if (r >= 0) {
        r = member_string(e, rj, "Certificate", "the CA certificate", &pem, err);
    }
    if (r >= 0) {
        r = parse_certs(e, "the CA certificate", pem, &rb, err);
    }
    if (r < 0) {
        return r;
    }
    res->client = take_certs(cb, 0, sk_X509_num(cb->certs));
    res->ca = take_certs(rb, 0, sk_X509_num(rb->certs));
    if (!res->client || !res->ca) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

static int sign_vmi(const struct enroll *e, const char *csr, struct enroll_result *res,
                    struct certd_err *err)
{
    _cleanup_(client_answer_done) struct client_answer a = { 0 };
    _cleanup_(cleanup_json_t) json_t *req = json_pack("{s:[s]}", "data", csr);
    _cleanup_(cleanup_json_t) json_t *j = NULL;
    _cleanup_free_ char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    if (!body) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = client_request(e->client, "POST", VMI_SIGN_PATH, body, strlen(body), &a, err);
    if (r >= 0) {
        r = client_answer_json(e->client, "SignCSR at", &a, &sign_meanings, &j, err);
    }
    if (r < 0) {
        return r;
    }
    json_t *data = json_object_get(j, "data");
    const char *pem = json_string_value(json_array_get(data, 0));
    if (!json_is_array(data) || json_array_size(data) != 1 || !pem) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "SignCSR at %s: the answer's \"data\" is not one string",
                       client_host(e->client));
    }
    r = parse_certs(e, "the certificates", pem, &b, err);
    if (r < 0) {
        return r;
    }
    int n = sk_X509_num(b->certs);
    if (n < 2) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "SignCSR at %s: the answer holds no CA certificate after the client's",
                       client_host(e->client));
    }
    res->client = take_certs(b, 0, 1);
    res->ca = take_certs(b, 1, n);
    if (!res->client || !res->ca) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    return 0;
}

/*
 * What came back must be ours: the certificate holds our public key, and it verifies up to
 * the CA certificate that came with it (for client authentication, now). Partial chains: a
 * CA that is itself an intermediate is still the anchor the console is told to trust.
 */
static int check_result(const struct enroll *e, EVP_PKEY *key, const struct enroll_result *res,
                        struct certd_err *err)
{
    X509 *leaf = sk_X509_value(res->client, 0);
    if (!key_public_eq(X509_get0_pubkey(leaf), key)) {
        return err_set(err, -EKEYREJECTED, CERTD_E_KEY_MISMATCH,
                       "the certificate from %s is not for the key made for this request",
                       client_host(e->client));
    }
    _cleanup_(cleanup_X509_STORE) X509_STORE *store = X509_STORE_new();
    _cleanup_(cleanup_X509_STORE_CTX) X509_STORE_CTX *vc =
        X509_STORE_CTX_new_ex(e->ctx->libctx, e->ctx->propq);
    _cleanup_(cleanup_x509_stack) x509_stack *untrusted = sk_X509_new_null();
    if (!store || !vc || !untrusted) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < sk_X509_num(res->ca); i++) {
        if (X509_STORE_add_cert(store, sk_X509_value(res->ca, i)) != 1) {
            (void)ossl_drain_errors("X509_STORE_add_cert");
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    for (int i = 1; i < sk_X509_num(res->client); i++) {
        X509 *c = sk_X509_value(res->client, i);
        if (!X509_up_ref(c)) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
        if (!sk_X509_push(untrusted, c)) {
            X509_free(c);
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    if (X509_STORE_CTX_init(vc, store, leaf, untrusted) != 1) {
        (void)ossl_drain_errors("X509_STORE_CTX_init");
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(vc);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
    X509_VERIFY_PARAM_set_depth(param, (int)CERTD_CHAIN_DEPTH_MAX);
    X509_VERIFY_PARAM_set_time(param, time(NULL));
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
    ERR_clear_error();
    if (X509_verify_cert(vc) != 1) {
        int v = X509_STORE_CTX_get_error(vc);
        (void)ossl_drain_errors("X509_verify_cert");
        return err_set(err, -EKEYREJECTED, CERTD_E_SIGNER_FAILED,
                       "the certificate from %s does not verify against the CA certificate it "
                       "sent: %s",
                       client_host(e->client), X509_verify_cert_error_string(v));
    }
    return 0;
}

/* ---- output ---- */

static int write_result(const struct enroll *e, const char *dir, EVP_PKEY *key,
                        const struct enroll_result *res, struct certd_err *err)
{
    _cleanup_(cleanup_secret) struct secret *kp = NULL;
    _cleanup_free_ char *cert_pem = NULL, *ca_pem = NULL;
    _cleanup_free_ char *kpath = NULL, *cpath = NULL, *apath = NULL;
    size_t cert_len = 0, ca_len = 0;
    int r = store_mkdir_p(dir, STORE_MODE_DIR);
    if (r == -EPERM) {
        return err_set(err, r, CERTD_E_STORAGE,
                       "--out-dir %s is not yours or others may write to it: the key needs a "
                       "private directory",
                       dir);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_STORAGE, "cannot make --out-dir %s: %s", dir, strerror(-r));
    }
    r = key_private_to_pem(e->ctx->libctx, e->ctx->propq, key, &kp);
    if (r >= 0) {
        r = certs_to_pem(res->client, &cert_pem, &cert_len);
    }
    if (r >= 0) {
        r = certs_to_pem(res->ca, &ca_pem, &ca_len);
    }
    if (r < 0) {
        return err_set(err, r, CERTD_E_INTERNAL, "cannot encode the results");
    }
    if (asprintf(&kpath, "%s/client.key", dir) < 0 || asprintf(&cpath, "%s/client.pem", dir) < 0 ||
        asprintf(&apath, "%s/ca.pem", dir) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    const struct store_file files[] = {
        { kpath, span_make(kp->p, kp->len), STORE_MODE_SECRET },
        { cpath, span_make(cert_pem, cert_len), STORE_MODE_PUBLIC },
        { apath, span_make(ca_pem, ca_len), STORE_MODE_PUBLIC },
    };
    return store_write_set(files, ELEMENTSOF(files), err);
}

/* ---- the command ---- */

static void enroll_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl enroll URL [--user NAME] [--password-file FILE] [--cacert FILE |\n"
           "                      --insecure | --pin PIN... | --known-hosts FILE [--tofu]]\n"
           "                      [--client-cert FILE [--client-key FILE]] [--key-alg SPEC]\n"
           "                      [--cn NAME] [--san NAME]... [--out-dir DIR] [--form ibm|vmi]\n"
           "\n"
           "Get a client certificate from a BMC's CA, as a management console does: make a key\n"
           "and a CSR, send it to SignCSR at URL (https://HOST[:PORT]) and write DIR/client.key\n"
           "(mode 0600), DIR/client.pem and DIR/ca.pem once the certificate is checked to be for\n"
           "the new key and to verify against the CA certificate that came with it.\n"
           "The account (--user, default admin) needs the Administrator role.\n"
           "\n"
           "  --key-alg SPEC         the new key: ec:P-256 (default), ec:P-384, ec:P-521,\n"
           "                         rsa:2048, rsa:3072, rsa:4096, ed25519\n"
           "  --cn NAME              the CSR's CommonName (default: this host's name)\n"
           "  --san NAME             a subjectAltName: DNS name or IP address (repeat for more)\n"
           "  --out-dir DIR          where the files go (default: the working directory; made\n"
           "                         0700 when missing; must not be writable by others)\n"
           "  --form ibm|vmi         ibm (default): POST " IBM_SIGN_PATH "\n"
           "                         and GET " IBM_ROOT_PATH ";\n"
           "                         vmi: POST " VMI_SIGN_PATH " (seed 000)\n"
           "\n");
    client_opts_usage(f, "--user");
    (void)fprintf(
        f, "\n"
           "Exit codes: 0 success, 1 refused (credentials, privileges, TLS verification or a\n"
           "            pin that does not match, the CSR, a certificate not for our key),\n"
           "            2 usage, 3 network, server or file error, 4 no SignCSR at URL, or a\n"
           "            named file (--cacert, --client-cert, --password-file) that does not\n"
           "            exist.\n");
}

struct enroll_opts {
    const char *url, *key_alg, *cn, *out_dir;
    const char **sans;
    size_t n_sans;
    enum enroll_form form;
    struct client_opts client;
};

static int enroll_run(const struct cli_ctx *ctx, const struct enroll_opts *o)
{
    struct certd_err err = { 0 };
    struct enroll e = { .ctx = ctx };
    _cleanup_(cleanup_client) struct client *client = NULL;
    _cleanup_(cleanup_EVP_PKEY) EVP_PKEY *key = NULL;
    _cleanup_(cleanup_X509_REQ) X509_REQ *req = NULL;
    _cleanup_free_ char *csr = NULL;
    _cleanup_(result_done) struct enroll_result res = { 0 };
    char host[HOST_NAME_MAX + 1];
    size_t csr_len = 0;
    int r;

    struct key_spec spec;
    if (key_spec_parse(o->key_alg ? o->key_alg : "ec:P-256", &spec, &err) < 0) {
        return cli_usage_error("enroll", "--key-alg: %s", err.msg);
    }
    const char *cn = o->cn;
    if (!cn) {
        if (gethostname(host, sizeof(host) - 1) < 0 || !host[0]) {
            return cli_usage_error("enroll", "this host has no name: give --cn NAME");
        }
        host[sizeof(host) - 1] = '\0';
        cn = host;
    }
    r = client_new(ctx, "enroll", o->url, &o->client, "admin", &client);
    if (r != 0) {
        return r;
    }
    e.client = client;

    /* The key and CSR first: a server that is down costs a key, not a half-written state. */
    r = key_generate(ctx->libctx, ctx->propq, &spec, &key, &err);
    if (r < 0) {
        return cli_fail("key", &err);
    }
    const struct csr_request creq = {
        .common_name = cn,
        .alt_names = o->sans,
        .n_alt_names = o->n_sans,
    };
    r = csr_build(ctx->libctx, ctx->propq, &creq, key, &req, &err);
    if (r < 0) {
        return cli_fail("csr", &err);
    }
    r = csr_to_pem(req, &csr, &csr_len);
    if (r < 0) {
        (void)err_set(&err, r, CERTD_E_INTERNAL, "cannot encode the CSR");
        return cli_fail("csr", &err);
    }
    r = o->form == ENROLL_FORM_IBM ? sign_ibm(&e, csr, &res, &err) : sign_vmi(&e, csr, &res, &err);
    if (r < 0) {
        return client_fail(client, "enroll", &err);
    }
    r = check_result(&e, key, &res, &err);
    if (r < 0) {
        return cli_fail("enroll", &err);
    }
    r = write_result(&e, o->out_dir, key, &res, &err);
    if (r < 0) {
        return cli_fail("enroll", &err);
    }
    return EXIT_OK;
}

enum {
    OPT_KEY_ALG = 0x100,
    OPT_CN,
    OPT_SAN,
    OPT_OUT_DIR,
    OPT_FORM,
};

int cmd_enroll(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        CLIENT_LONG_OPTIONS,
        { "user", required_argument, NULL, CLIENT_OPT_USER },
        { "key-alg", required_argument, NULL, OPT_KEY_ALG },
        { "cn", required_argument, NULL, OPT_CN },
        { "san", required_argument, NULL, OPT_SAN },
        { "out-dir", required_argument, NULL, OPT_OUT_DIR },
        { "form", required_argument, NULL, OPT_FORM },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct enroll_opts o = { .out_dir = ".", .form = ENROLL_FORM_IBM };
    _cleanup_free_ const char **sans = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = client_opt_take("enroll", c, optarg, &o.client);
        if (taken != -ENOENT) {
            if (taken != 0) {
                return taken;
            }
            continue;
        }
        switch (c) {
        case 'h':
            enroll_usage(stdout);
            return EXIT_OK;
        case OPT_KEY_ALG:
            o.key_alg = optarg;
            break;
        case OPT_CN:
            o.cn = optarg;
            break;
        case OPT_SAN: {
            if (o.n_sans >= CERTD_SANS_MAX) {
                return cli_usage_error("enroll", "at most %u --san options", CERTD_SANS_MAX);
            }
            const char **n = reallocarray(sans, o.n_sans + 1, sizeof(*n));
            if (!n) {
                return cli_usage_error("enroll", "out of memory");
            }
            sans = n;
            sans[o.n_sans++] = optarg;
            break;
        }
        case OPT_OUT_DIR:
            o.out_dir = optarg;
            break;
        case OPT_FORM:
            if (strcmp(optarg, "ibm") == 0) {
                o.form = ENROLL_FORM_IBM;
            } else if (strcmp(optarg, "vmi") == 0) {
                o.form = ENROLL_FORM_VMI;
            } else {
                return cli_usage_error("enroll", "--form is ibm or vmi, not '%s'", optarg);
            }
            break;
        default:
            return cli_usage_error("enroll", "unknown option");
        }
    }
    int urc =
        cli_one_operand("enroll", argc, argv, "the URL is missing (https://HOST[:PORT])", &o.url);
    if (urc != 0) {
        return urc;
    }
    o.sans = sans;
    /*
     * A server may close while we write (the request, a close_notify): that is an error to
     * report, not a reason to die of SIGPIPE.
     */
    (void)signal(SIGPIPE, SIG_IGN);
    return enroll_run(ctx, &o);
}
