/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl ca: certd's own CA ([ca] signer = local) worked from the command line, on the files
 * certd uses: sign a CSR, revoke a serial, list the issuance log, print the CRL. The CA logic
 * is the daemon's (src/daemon/ca.h, blocking layer), with the configuration read as certd
 * reads it (config_load / config_new_default and config_apply_overrides), so that certctl and
 * certd see the same CA key, certificate, log (STATE_DIR/ca.db) and CRL (STATE_DIR/ca/crl.der).
 *
 * Invariants:
 *  - certctl never makes a root. ca_start makes one when neither default CA file exists, so the
 *    files are looked for first and a missing CA is refused ("run certd once first");
 *  - a certificate is printed or written only after its record is durable in the log (ca_issue,
 *    then ca_record), as certd's SignCSR does;
 *  - list and crl (without --refresh) only read: they neither start the CA (which makes a new
 *    CRL) nor create a log that is not there;
 *  - the log is SQLite in WAL mode and CRL files are replaced atomically, so all of this may run
 *    while certd runs. certd keeps serving the CRL it made itself until it makes its next one.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca.h"
#include "cadb/cadb.h"
#include "certctl.h"
#include "config.h"
#include "log/log.h"
#include "store/store.h"
#include "util/ossl.h"
#include "util/parse.h"
#include "x509/inspect.h"

/*
 * The CRL file as certd writes it: about 40 bytes per revoked certificate, so 64 MiB holds over
 * a million entries; the bound keeps a wrong file from eating memory.
 */
#define CA_CLI_CRL_MAX (64u * 1024u * 1024u)
/* A --requester name: it lands in the log's requester column and in Redfish answers. */
#define CA_CLI_REQUESTER_MAX 128u

struct ca_cli {
    const char *config_path;
    const char *state_dir;
};

enum {
    OPT_CONFIG = 0x100,
    OPT_STATE_DIR,
    OPT_OUT,
    OPT_CHAIN,
    OPT_REQUESTER,
    OPT_REASON,
    OPT_JSON,
    OPT_REVOKED,
    OPT_PEM,
    OPT_DER,
    OPT_REFRESH,
};

#define CA_COMMON_OPTIONS                                        \
    { "config", required_argument, NULL, OPT_CONFIG },           \
        { "state-dir", required_argument, NULL, OPT_STATE_DIR }, \
    {                                                            \
        "help", no_argument, NULL, 'h'                           \
    }

static void ca_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl ca [--config FILE] [--state-dir DIR] OPERATION [ARGS] [OPTIONS]\n"
           "\n"
           "Work certd's own CA ([ca] signer = local) on the files certd uses; safe while certd\n"
           "runs. The CA must exist: certd makes its root at its first start.\n"
           "\n"
           "  sign CSR_FILE|- [--out FILE] [--chain] [--requester NAME]\n"
           "                     check and sign a CSR as certd's SignCSR does; print the\n"
           "                     certificate (with --out: write it and print the serial)\n"
           "  revoke SERIAL [--reason NAME]\n"
           "                     revoke; print the number of the new CRL\n"
           "  list [--json] [--revoked]\n"
           "                     the issuance log: serial, status, notAfter, subject\n"
           "  crl [--pem|--der] [--out FILE] [--refresh]\n"
           "                     the current CRL (PEM by default); --refresh makes a new one\n"
           "\n"
           "  --config FILE      certd's configuration file (as certd --config)\n"
           "  --state-dir DIR    certd's state directory (as certd --state-dir; default\n"
           "                     " CONFIG_STATE_DIR_DEFAULT ")\n"
           "\n"
           "'certctl ca OPERATION --help' describes each operation.\n"
           "\n"
           "Exit codes: 0 success, 1 refused (invalid CSR, signer not local, already revoked),\n"
           "            2 usage, 3 file or system error, 4 no CA yet, no such serial.\n");
}

static void sign_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl ca [--config FILE] [--state-dir DIR] sign CSR_FILE|- [--out FILE]\n"
           "                  [--chain] [--requester NAME]\n"
           "\n"
           "Check the CSR (PEM, at most 16384 bytes) and sign it with certd's CA under the\n"
           "[ca] profile, exactly as certd's SignCSR does, and record it in the issuance log.\n"
           "The certificate (PEM) goes to standard output, or to --out FILE (mode 0644, written\n"
           "atomically; the serial is printed then). --chain adds the CA certificate.\n"
           "--requester NAME is logged as who asked (default local:<your user name>).\n");
}

static void revoke_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl ca [--config FILE] [--state-dir DIR] revoke SERIAL [--reason NAME]\n"
           "\n"
           "Revoke the certificate with SERIAL (hex, any case, colons allowed) and publish a new\n"
           "CRL; its number is printed. Reasons (RFC 5280): unspecified (default),\n"
           "keyCompromise, cACompromise, affiliationChanged, superseded,\n"
           "cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.\n");
}

static void list_usage(FILE *f)
{
    (void)fprintf(f,
                  "Usage: certctl ca [--config FILE] [--state-dir DIR] list [--json] [--revoked]\n"
                  "\n"
                  "Print the issuance log, oldest first: serial, status, notAfter and subject\n"
                  "(--json: an array of objects with every field of the log but the PEM).\n"
                  "--revoked: only revoked certificates.\n");
}

static void crl_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl ca [--config FILE] [--state-dir DIR] crl [--pem|--der] [--out FILE]\n"
           "                  [--refresh]\n"
           "\n"
           "Print certd's current CRL (" CONFIG_CA_DIR_NAME "/" CONFIG_CA_CRL_NAME
           " in the state directory), PEM by default,\n"
           "or write it to --out FILE. --refresh makes and publishes a new CRL first.\n");
}

/* Options every operation takes too, so that they may come before or after the operation. */
static bool common_option(struct ca_cli *o, int c)
{
    switch (c) {
    case OPT_CONFIG:
        o->config_path = optarg;
        return true;
    case OPT_STATE_DIR:
        o->state_dir = optarg;
        return true;
    default:
        return false;
    }
}

/* ---- the configuration, as certd reads it (src/daemon/main.c load_config) ---- */

static int fail_msg(const char *what, int exit_code, const char *msg)
{
    (void)fprintf(stderr, "certctl ca: %s: %s\n", what, msg);
    return exit_code;
}

/*
 * A relative --state-dir is taken against the working directory, as certd takes it; unlike
 * certd, certctl never creates it.
 */
static int absolute_dir(const char *dir, char abs[static PATH_MAX], const char **ret)
{
    if (!dir || dir[0] == '/') {
        *ret = dir;
        return 0;
    }
    if (!realpath(dir, abs)) {
        int r = errno;
        return fail_msg("--state-dir", r == ENOENT ? EXIT_NOT_FOUND : EXIT_IO, strerror(r));
    }
    *ret = abs;
    return 0;
}

static int load_config(const struct ca_cli *o, struct config **ret)
{
    _cleanup_(cleanup_config) struct config *cfg = NULL;
    struct certd_err err = { 0 };
    char abs[PATH_MAX];
    const char *dir = NULL;
    int rc, r;

    rc = absolute_dir(o->state_dir, abs, &dir);
    if (rc != 0) {
        return rc;
    }
    if (o->config_path) {
        r = config_load(o->config_path, &cfg, &err);
        if (r < 0) {
            /* config_parse's messages start with "FILE:LINE:"; read errors do not. */
            if (err.code == CERTD_E_NOT_FOUND || err.code == CERTD_E_STORAGE) {
                return cli_fail(o->config_path, &err);
            }
            (void)fprintf(stderr, "certctl ca: %s (%s)\n", err.msg, err_code_name(err.code));
            return exit_code_for(&err);
        }
        if (dir) {
            r = config_apply_overrides(cfg, dir, NULL, &err);
            if (r < 0) {
                return cli_fail("--state-dir", &err);
            }
        }
    } else {
        r = config_new_default(dir, &cfg);
        if (r < 0) {
            return fail_msg("--state-dir", r == -ENOMEM ? EXIT_IO : EXIT_USAGE,
                            r == -ENOMEM ? "out of memory" : "not a usable path");
        }
    }
    *ret = TAKE_PTR(cfg);
    return 0;
}

/* What exists of a file: ENOENT only means absent (as ca.c's own check). */
static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0 || errno != ENOENT;
}

/*
 * The checks every operation makes before touching anything: the signer is local, and the CA
 * exists. ca_start would make a root when neither default file exists; certctl must not, since
 * a root made behind certd's back would be one nobody trusts (and certd would not use it until
 * it restarts). Returns 0 or an exit code after printing why.
 */
static int check_local_ca(const struct config *cfg)
{
    struct certd_err err = { 0 };
    const struct config_ca *c = &cfg->ca;

    if (c->signer != CONFIG_SIGNER_LOCAL) {
        (void)err_set(&err, -EOPNOTSUPP, CERTD_E_POLICY_FORBIDS,
                      "[ca] signer is %s: certctl ca works only with signer = local, where certd "
                      "itself is the CA",
                      config_signer_name(c->signer));
        return cli_fail("ca", &err);
    }
    bool have_cert = file_exists(c->cert), have_key = file_exists(c->key);
    if (have_cert && have_key) {
        return 0;
    }
    if (!have_cert && !have_key && !c->is_cert_given && !c->is_key_given) {
        (void)err_set(&err, -ENOENT, CERTD_E_NOT_FOUND,
                      "no CA in %s: run certd once first (it makes the root)", cfg->state_dir);
    } else {
        (void)err_set(&err, -ENOENT, CERTD_E_NOT_FOUND, "the CA %s %s does not exist",
                      have_cert ? "key" : "certificate", have_cert ? c->key : c->cert);
    }
    return cli_fail("ca", &err);
}

/* The host name certd would use (only a root made at start takes it; certctl makes none). */
static void host_name(const struct config *cfg, char *buf, size_t size)
{
    if (cfg->hostname[0]) {
        (void)snprintf(buf, size, "%s", cfg->hostname);
    } else if (gethostname(buf, size - 1) < 0 || !buf[0]) {
        (void)snprintf(buf, size, "localhost");
    }
    buf[size - 1] = '\0';
}

/* Open and start the CA (blocking layer: no worker pool). 0 or an exit code. */
static int ca_open(const struct cli_ctx *ctx, const struct config *cfg, struct ca **ret)
{
    _cleanup_(cleanup_ca) struct ca *ca = NULL;
    struct certd_err err = { 0 };
    char host[CONFIG_HOSTNAME_MAX + 1];
    int rc = check_local_ca(cfg);
    if (rc != 0) {
        return rc;
    }
    host_name(cfg, host, sizeof(host));
    int r = ca_new(cfg, ctx->libctx, ctx->propq, host, NULL, &ca);
    if (r < 0) {
        (void)err_set(&err, r, CERTD_E_NO_MEMORY, "out of memory");
        return cli_fail("ca", &err);
    }
    r = ca_start(ca, CA_START_NO_ROOT, &err);
    if (r < 0) {
        return cli_fail("ca", &err);
    }
    *ret = TAKE_PTR(ca);
    return 0;
}

/* Write data to path (0644, atomically) or, for NULL, to standard output. 0 or an exit code. */
static int emit(const char *path, const void *data, size_t len)
{
    struct certd_err err = { 0 };
    if (path) {
        if (store_write_atomic(path, span_make(data, len), STORE_MODE_PUBLIC, &err) < 0) {
            return cli_fail(path, &err);
        }
        return 0;
    }
    if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
        (void)err_set(&err, -EIO, CERTD_E_STORAGE, "cannot write to standard output");
        return cli_fail("ca", &err);
    }
    return 0;
}

/* ---- sign ---- */

/* "local:<user>" for the effective user, or "local:uid=N" without a passwd entry. */
static void default_requester(char *buf, size_t size)
{
    struct passwd pw, *res = NULL;
    char pwbuf[4096];
    uid_t uid = geteuid();
    if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res && res->pw_name[0]) {
        (void)snprintf(buf, size, "local:%s", res->pw_name);
    } else {
        (void)snprintf(buf, size, "local:uid=%lu", (unsigned long)uid);
    }
}

static bool requester_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CA_CLI_REQUESTER_MAX) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* Printable ASCII: it shows in Redfish answers and journal lines as it is. */
        if (*p < 0x20 || *p >= 0x7f) {
            return false;
        }
    }
    return true;
}

/*
 * Issue and record (durably) one certificate for csr. A random 128-bit serial that is already
 * in the log is as unlikely as it gets, but the log refuses it: sign again, as certd does.
 */
static int sign_and_record(struct ca *ca, struct span csr, const char *requester,
                           struct ca_issued **ret, struct certd_err *err)
{
    for (unsigned attempt = 0;; attempt++) {
        struct ca_issued *is = NULL;
        bool dup = false;
        int r = ca_issue(ca, csr, requester, &is, err);
        if (r < 0) {
            return r;
        }
        r = ca_record(ca, &is, 1, &dup, err);
        if (r == 0) {
            *ret = is;
            return 0;
        }
        ca_issued_free(is);
        if (r != -EEXIST || attempt >= 2) {
            return r;
        }
        err_clear(err);
    }
}

/* The certificate, and with chain the CA after it, as one write to out (NULL: stdout). */
static int sign_output(const struct ca_issued *is, bool chain, const char *out)
{
    size_t ca_len = chain && is->pub && is->pub->ca_pem ? is->pub->ca_pem_len : 0;
    size_t n = 0;
    if (!size_add(is->cert_pem_len, ca_len, &n)) {
        return fail_msg("ca sign", EXIT_IO, "out of memory");
    }
    _cleanup_free_ char *both = malloc(n + 1);
    if (!both) {
        return fail_msg("ca sign", EXIT_IO, "out of memory");
    }
    memcpy(both, is->cert_pem, is->cert_pem_len);
    if (ca_len) {
        memcpy(both + is->cert_pem_len, is->pub->ca_pem, ca_len);
    }
    return emit(out, both, n);
}

static int ca_sign_cmd(const struct cli_ctx *ctx, struct ca_cli *o, int argc, char **argv)
{
    static const struct option opts[] = {
        CA_COMMON_OPTIONS,
        { "out", required_argument, NULL, OPT_OUT },
        { "chain", no_argument, NULL, OPT_CHAIN },
        { "requester", required_argument, NULL, OPT_REQUESTER },
        { 0 },
    };
    const char *out = NULL, *requester = NULL;
    bool chain = false;
    char req_buf[CA_CLI_REQUESTER_MAX + 64];
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (common_option(o, c)) {
            continue;
        }
        switch (c) {
        case 'h':
            sign_usage(stdout);
            return EXIT_OK;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_CHAIN:
            chain = true;
            break;
        case OPT_REQUESTER:
            requester = optarg;
            break;
        default:
            return cli_usage_error("ca sign", "unknown option");
        }
    }
    const char *csr_path = NULL;
    rc = cli_one_operand("ca sign", argc, argv,
                         "the CSR file is missing (use - for standard input)", &csr_path);
    if (rc != 0) {
        return rc;
    }
    if (requester && !requester_ok(requester)) {
        return cli_usage_error("ca sign", "--requester takes 1 to %u printable ASCII characters",
                               CA_CLI_REQUESTER_MAX);
    }
    if (!requester) {
        default_requester(req_buf, sizeof(req_buf));
        requester = req_buf;
    }

    _cleanup_(cleanup_config) struct config *cfg = NULL;
    rc = load_config(o, &cfg);
    if (rc != 0) {
        return rc;
    }
    struct certd_err err = { 0 };
    _cleanup_free_ uint8_t *csr = NULL;
    size_t csr_len = 0;
    /* ca_issue judges the CSR; its size bound is read here already so no more is read. */
    if (cli_read_input(csr_path, CA_CSR_MAX, &csr, &csr_len, &err) < 0) {
        return cli_fail(csr_path, &err);
    }
    _cleanup_(cleanup_ca) struct ca *ca = NULL;
    rc = ca_open(ctx, cfg, &ca);
    if (rc != 0) {
        return rc;
    }
    struct ca_issued *is = NULL;
    if (sign_and_record(ca, span_make(csr, csr_len), requester, &is, &err) < 0) {
        return cli_fail(csr_path, &err);
    }
    rc = sign_output(is, chain, out);
    if (rc != 0) {
        (void)fprintf(stderr,
                      "certctl ca sign: the certificate with serial %s is in the issuance log; "
                      "revoke it if it is lost\n",
                      is->rec.serial);
    } else if (out) {
        (void)printf("%s\n", is->rec.serial);
    }
    ca_issued_free(is);
    return rc;
}

/* ---- revoke ---- */

/*
 * Refuse what ca_revoke would refuse, before the CA is started: starting it publishes a new
 * CRL, which a mistyped serial should not cause. ca_revoke judges again (the log may change
 * in between); this only reads. 0 or an exit code.
 */
static int revoke_precheck(const struct config *cfg, const char *serial)
{
    _cleanup_(cleanup_cadb) struct cadb *db = NULL;
    _cleanup_(cleanup_cadb_cert) struct cadb_cert *rec = NULL;
    struct certd_err err = { 0 };
    char canon[CADB_SERIAL_MAX];
    int r;

    if (cadb_serial_parse(serial, canon) < 0) {
        (void)err_set(&err, -EINVAL, CERTD_E_FIELD_INVALID,
                      "'%.*s' is not a serial number (hex digits, colons allowed)",
                      (int)CADB_SERIAL_INPUT_MAX, serial);
        return cli_fail("ca revoke", &err);
    }
    r = file_exists(cfg->ca.db) ? cadb_open(cfg->ca.db, &db, &err) : -ENOENT;
    if (r == 0) {
        r = cadb_get(db, canon, &rec);
    } else if (r != -ENOENT) {
        return cli_fail(cfg->ca.db, &err);
    }
    if (r == -ENOENT) {
        (void)err_set(&err, r, CERTD_E_NOT_FOUND, "serial %s is not in the issuance log", canon);
        return cli_fail("ca revoke", &err);
    }
    if (r < 0) {
        (void)err_set(&err, r, CERTD_E_STORAGE, "cannot read serial %s from %s: %s", canon,
                      cfg->ca.db, r == -EBADMSG ? "a damaged record" : strerror(-r));
        return cli_fail("ca revoke", &err);
    }
    if (rec->status == CADB_REVOKED) {
        (void)err_set(&err, -EALREADY, CERTD_E_DUPLICATE, "serial %s is already revoked", canon);
        return cli_fail("ca revoke", &err);
    }
    return 0;
}

static int ca_revoke_cmd(const struct cli_ctx *ctx, struct ca_cli *o, int argc, char **argv)
{
    static const struct option opts[] = {
        CA_COMMON_OPTIONS,
        { "reason", required_argument, NULL, OPT_REASON },
        { 0 },
    };
    int reason = CADB_REASON_UNSPECIFIED;
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (common_option(o, c)) {
            continue;
        }
        switch (c) {
        case 'h':
            revoke_usage(stdout);
            return EXIT_OK;
        case OPT_REASON:
            if (cadb_reason_from_name(optarg, &reason) < 0) {
                return cli_usage_error(
                    "ca revoke",
                    "unknown reason '%s' (unspecified, keyCompromise, cACompromise, "
                    "affiliationChanged, superseded, cessationOfOperation, certificateHold, "
                    "privilegeWithdrawn, aACompromise)",
                    optarg);
            }
            break;
        default:
            return cli_usage_error("ca revoke", "unknown option");
        }
    }
    const char *serial = NULL;
    rc = cli_one_operand("ca revoke", argc, argv, "the serial number is missing", &serial);
    if (rc != 0) {
        return rc;
    }

    _cleanup_(cleanup_config) struct config *cfg = NULL;
    rc = load_config(o, &cfg);
    if (rc != 0) {
        return rc;
    }
    rc = check_local_ca(cfg);
    if (rc == 0) {
        rc = revoke_precheck(cfg, serial);
    }
    if (rc != 0) {
        return rc;
    }
    _cleanup_(cleanup_ca) struct ca *ca = NULL;
    rc = ca_open(ctx, cfg, &ca);
    if (rc != 0) {
        return rc;
    }
    struct certd_err err = { 0 };
    if (ca_revoke(ca, serial, reason, &err) < 0) {
        return cli_fail("ca revoke", &err);
    }
    _cleanup_(cleanup_ca_public) struct ca_public *pub = ca_public(ca);
    (void)printf("%llu\n", pub ? (unsigned long long)pub->crl_number : 0ull);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
}

/* ---- list ---- */

/* Text of the log for a terminal: control bytes (a tampered log) shown as \xNN. */
static void print_clean(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            (void)printf("\\x%02X", *p);
        } else {
            (void)putchar(*p);
        }
    }
}

struct list_state {
    json_t *array; /* --json, else NULL */
};

static const char *status_name(const struct cadb_cert *c)
{
    return c->status == CADB_REVOKED ? "revoked" : "valid";
}

static json_t *time_json(int64_t t)
{
    char buf[32];
    unix_to_iso8601(t, buf, sizeof(buf));
    return json_string(buf);
}

static int list_one(const struct cadb_cert *c, void *arg)
{
    struct list_state *st = arg;
    if (!st->array) {
        char na[32];
        unix_to_iso8601(c->not_after, na, sizeof(na));
        (void)printf("%-40s %-7s %s ", c->serial, status_name(c), na);
        print_clean(c->subject);
        (void)putchar('\n');
        return 0;
    }
    bool revoked = c->status == CADB_REVOKED;
    const char *reason = revoked ? cadb_reason_name(c->reason) : NULL;
    /* json_string returns NULL for text that is not UTF-8; "o" then fails the whole pack. */
    json_t *o =
        json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "serial", c->serial,
                  "status", status_name(c), "subject", json_string(c->subject), "alternative_names",
                  json_string(c->sans ? c->sans : ""), "not_before", time_json(c->not_before),
                  "not_after", time_json(c->not_after), "issued_at", time_json(c->issued_at),
                  "requester", json_string(c->requester ? c->requester : ""), "revoked_at",
                  revoked ? time_json(c->revoked_at) : json_null(), "revocation_reason",
                  reason ? json_string(reason) : json_null());
    if (!o || json_array_append_new(st->array, o) != 0) {
        return -EBADMSG;
    }
    return 0;
}

static int ca_list_cmd(struct ca_cli *o, int argc, char **argv)
{
    static const struct option opts[] = {
        CA_COMMON_OPTIONS,
        { "json", no_argument, NULL, OPT_JSON },
        { "revoked", no_argument, NULL, OPT_REVOKED },
        { 0 },
    };
    bool as_json = false, only_revoked = false;
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (common_option(o, c)) {
            continue;
        }
        switch (c) {
        case 'h':
            list_usage(stdout);
            return EXIT_OK;
        case OPT_JSON:
            as_json = true;
            break;
        case OPT_REVOKED:
            only_revoked = true;
            break;
        default:
            return cli_usage_error("ca list", "unknown option");
        }
    }
    if (optind < argc) {
        return cli_usage_error("ca list", "unexpected argument '%s'", argv[optind]);
    }

    _cleanup_(cleanup_config) struct config *cfg = NULL;
    rc = load_config(o, &cfg);
    if (rc != 0) {
        return rc;
    }
    rc = check_local_ca(cfg);
    if (rc != 0) {
        return rc;
    }
    struct list_state st = { .array = as_json ? json_array() : NULL };
    if (as_json && !st.array) {
        return fail_msg("ca list", EXIT_IO, "out of memory");
    }
    /* Reading must not create: a CA whose log certd has not made yet has signed nothing. */
    if (file_exists(cfg->ca.db)) {
        _cleanup_(cleanup_cadb) struct cadb *db = NULL;
        struct certd_err err = { 0 };
        int r = cadb_open(cfg->ca.db, &db, &err);
        if (r < 0) {
            json_decref(st.array);
            return cli_fail(cfg->ca.db, &err);
        }
        if (!as_json) {
            (void)printf("%-40s %-7s %-20s %s\n", "SERIAL", "STATUS", "NOT_AFTER", "SUBJECT");
        }
        r = cadb_each(db, only_revoked ? CADB_ONLY_REVOKED : CADB_ALL, list_one, &st);
        if (r < 0) {
            json_decref(st.array);
            (void)err_set(&err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_STORAGE,
                          "cannot read the issuance log %s: %s", cfg->ca.db,
                          r == -EBADMSG ? "a damaged record" : strerror(-r));
            return cli_fail("ca list", &err);
        }
    } else if (!as_json) {
        (void)printf("%-40s %-7s %-20s %s\n", "SERIAL", "STATUS", "NOT_AFTER", "SUBJECT");
    }
    if (as_json) {
        int r = json_dumpf(st.array, stdout, JSON_INDENT(2));
        json_decref(st.array);
        if (r != 0) {
            return fail_msg("ca list", EXIT_IO, "cannot write to standard output");
        }
        (void)putchar('\n');
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_IO;
}

/* ---- crl ---- */

/* The PEM form of a DER CRL that must decode completely. 0 or an exit code. */
static int crl_der_to_pem(const struct cli_ctx *ctx, const uint8_t *der, size_t len,
                          const char *path, char **ret, size_t *ret_len)
{
    _cleanup_(cleanup_X509_CRL) X509_CRL *crl = NULL;
    _cleanup_(cleanup_BIO) BIO *bio = NULL;
    const unsigned char *p = der;
    BUF_MEM *bm = NULL;

    crl = X509_CRL_new_ex(ctx->libctx, ctx->propq);
    if (!crl) {
        return fail_msg(path, EXIT_IO, "out of memory");
    }
    if (len > LONG_MAX || !d2i_X509_CRL(&crl, &p, (long)len) || p != der + len) {
        (void)ossl_drain_errors("d2i_X509_CRL");
        return fail_msg(path, EXIT_INVALID, "not one DER CRL");
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || PEM_write_bio_X509_CRL(bio, crl) != 1 || BIO_get_mem_ptr(bio, &bm) != 1 ||
        !(*ret = strndup(bm->data, bm->length))) {
        (void)ossl_drain_errors("PEM_write_bio_X509_CRL");
        return fail_msg(path, EXIT_IO, "out of memory");
    }
    *ret_len = bm->length;
    return 0;
}

static int ca_crl_cmd(const struct cli_ctx *ctx, struct ca_cli *o, int argc, char **argv)
{
    static const struct option opts[] = {
        CA_COMMON_OPTIONS,
        { "pem", no_argument, NULL, OPT_PEM },
        { "der", no_argument, NULL, OPT_DER },
        { "out", required_argument, NULL, OPT_OUT },
        { "refresh", no_argument, NULL, OPT_REFRESH },
        { 0 },
    };
    bool der = false, pem = false, refresh = false;
    const char *out = NULL;
    int c, rc;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (common_option(o, c)) {
            continue;
        }
        switch (c) {
        case 'h':
            crl_usage(stdout);
            return EXIT_OK;
        case OPT_PEM:
            pem = true;
            break;
        case OPT_DER:
            der = true;
            break;
        case OPT_OUT:
            out = optarg;
            break;
        case OPT_REFRESH:
            refresh = true;
            break;
        default:
            return cli_usage_error("ca crl", "unknown option");
        }
    }
    if (optind < argc) {
        return cli_usage_error("ca crl", "unexpected argument '%s'", argv[optind]);
    }
    if (pem && der) {
        return cli_usage_error("ca crl", "--pem and --der exclude each other");
    }
    if (der && !out && isatty(STDOUT_FILENO)) {
        return cli_usage_error("ca crl", "--der is binary: give --out FILE or redirect the output");
    }

    _cleanup_(cleanup_config) struct config *cfg = NULL;
    rc = load_config(o, &cfg);
    if (rc != 0) {
        return rc;
    }
    if (refresh) {
        _cleanup_(cleanup_ca) struct ca *ca = NULL;
        struct certd_err err = { 0 };
        rc = ca_open(ctx, cfg, &ca);
        if (rc != 0) {
            return rc;
        }
        if (ca_refresh_crl(ca, &err) < 0) {
            return cli_fail("ca crl", &err);
        }
        _cleanup_(cleanup_ca_public) struct ca_public *pub = ca_public(ca);
        if (!pub || !pub->crl_der) {
            return fail_msg("ca crl", EXIT_IO, "no CRL was made");
        }
        return der ? emit(out, pub->crl_der, pub->crl_der_len)
                   : emit(out, pub->crl_pem, pub->crl_pem_len);
    }

    rc = check_local_ca(cfg);
    if (rc != 0) {
        return rc;
    }
    _cleanup_(store_buf_done) struct store_buf buf = { 0 };
    struct certd_err err = { 0 };
    /* certd's own file in its own directory: a symbolic link there is not ours. */
    if (store_read_file_err(cfg->ca.crl, CA_CLI_CRL_MAX, true, &buf, &err) < 0) {
        if (err.code == CERTD_E_NOT_FOUND) {
            (void)err_set(&err, -ENOENT, CERTD_E_NOT_FOUND,
                          "%s does not exist: no CRL was made yet (use --refresh to make one)",
                          cfg->ca.crl);
        }
        return cli_fail("ca crl", &err);
    }
    _cleanup_free_ char *text = NULL;
    size_t text_len = 0;
    rc = crl_der_to_pem(ctx, buf.p, buf.len, cfg->ca.crl, &text, &text_len);
    if (rc != 0) {
        return rc;
    }
    return der ? emit(out, buf.p, buf.len) : emit(out, text, text_len);
}

/* ---- dispatch ---- */

int cmd_ca(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        CA_COMMON_OPTIONS,
        { 0 },
    };
    struct ca_cli o = { 0 };
    int c;

    /* Options before the operation: '+' stops at the operation's name. */
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (common_option(&o, c)) {
            continue;
        }
        if (c == 'h') {
            ca_usage(stdout);
            return EXIT_OK;
        }
        return cli_usage_error("ca", "unknown option");
    }
    if (optind >= argc) {
        return cli_usage_error("ca", "the operation is missing: sign, revoke, list or crl");
    }
    /*
     * The CA module reports at info level what certd's journal wants (a new CRL, a
     * revocation); for a command's user that is noise. --debug keeps everything.
     */
    if (log_get_max_level() < LOG_DEBUG) {
        log_set_max_level(LOG_WARNING);
    }
    const char *op = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    optind = 0;
    if (strcmp(op, "sign") == 0) {
        return ca_sign_cmd(ctx, &o, sub_argc, sub_argv);
    }
    if (strcmp(op, "revoke") == 0) {
        return ca_revoke_cmd(ctx, &o, sub_argc, sub_argv);
    }
    if (strcmp(op, "list") == 0) {
        return ca_list_cmd(&o, sub_argc, sub_argv);
    }
    if (strcmp(op, "crl") == 0) {
        return ca_crl_cmd(ctx, &o, sub_argc, sub_argv);
    }
    return cli_usage_error("ca", "unknown operation '%s' (sign, revoke, list or crl)", op);
}
