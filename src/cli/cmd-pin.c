/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certctl pin list|add|del: the public keys certd accepts from its peers by pin (issue #6,
 * pin/pinstore.h), each mapped to a user and a role.
 *
 * Local mode edits a store file: --store FILE, the [pins NAME] store of --config CERTD.CONF
 * (--name, default the store [tls] client_pins names), or certd's default client store. A
 * change holds pinstore_lock from the load to the save, so certctl runs and certd's API never
 * lose one another's change; everything the command line gives is checked before the lock is
 * taken, and nothing is written unless the whole change is valid.
 *
 * Remote mode (--url) asks certd's API, /redfish/v1/Oem/Certd/PinnedPeers, through client.c
 * with its verification and authentication options. The account is --login there: --user is
 * the pinned peer's user. The server's answers are hostile: every text is cleaned before it
 * is shown and only the members we understand are shown.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "certctl.h"
#include "client.h"
#include "config.h"
#include "pin/pin.h"
#include "pin/pinstore.h"
#include "users/users.h"
#include "util/json.h"
#include "util/limits.h"
#include "util/ossl.h"
#include "x509/bundle.h"
#include "x509/inspect.h"

#define PINNED_PEERS "/redfish/v1/Oem/Certd/PinnedPeers"
/* certd's default client store, for a command line without --store or --config. */
#define PIN_STORE_DEFAULT                             \
    CONFIG_STATE_DIR_DEFAULT "/" CONFIG_PINS_DIR_NAME \
                             "/" CONFIG_CLIENT_PINS_DEFAULT CONFIG_PINS_FILE_SUFFIX

enum pin_op { PIN_OP_LIST, PIN_OP_ADD, PIN_OP_DEL, PIN_OP_MAX };

static const char *const pin_op_names[PIN_OP_MAX] = {
    [PIN_OP_LIST] = "list",
    [PIN_OP_ADD] = "add",
    [PIN_OP_DEL] = "del",
};

static void pin_usage(FILE *f)
{
    (void)fprintf(
        f, "Usage: certctl pin list [--json] [WHERE]\n"
           "       certctl pin add (--cert FILE | PIN) --user NAME --role ROLE [--label LABEL]\n"
           "                       [--note NOTE] [WHERE]\n"
           "       certctl pin del ID|PIN [--force] [WHERE]\n"
           "\n"
           "Manage the public keys certd accepts from its peers (consoles, managers) by their\n"
           "SPKI pin, each acting as a user with a role, with no CA involved: chain, issuer and\n"
           "dates of a pinned peer's certificate are not looked at.\n"
           "\n"
           "WHERE is a store file, or certd's API:\n"
           "  --store FILE           the store file (default " PIN_STORE_DEFAULT ")\n"
           "  --config CERTD.CONF    the store of certd's configuration: [pins NAME] ...\n"
           "  --name NAME            ... called NAME (default: the one [tls] client_pins names)\n"
           "  --url https://HOST[:PORT]  certd's API (" PINNED_PEERS "),\n"
           "                         as an Administrator\n"
           "\n"
           "  --cert FILE            add the key of this certificate (PEM or DER, exactly one)\n"
           "  PIN                    or this pin: sha256//BASE64 or 64 hex digits\n"
           "  --user NAME            the user a peer with this key acts as (required)\n"
           "  --role ROLE            Administrator, Operator or ReadOnly (required)\n"
           "  --label LABEL          a name for the entry (default: the certificate's CN, else\n"
           "                         the user name); at most 64 bytes\n"
           "  --note NOTE            a note (at most 256 bytes)\n"
           "  --json                 list as a JSON array\n"
           "  --force                with --url: delete even the pin the request's own\n"
           "                         connection authenticates with\n"
           "\n"
           "With --url:\n");
    client_opts_usage(f, "--login");
    (void)fprintf(f, "\n"
                     "Exit codes: 0 success; 1 refused: invalid input, a duplicate, a pin in use,\n"
                     "            not allowed, a server that failed verification (TLS, a pin that\n"
                     "            does not match or is not known), a known-hosts file that is\n"
                     "            malformed or not safe; 2 usage; 3 a file that cannot be read or\n"
                     "            written, a network or server failure; 4 no such pin, or a file\n"
                     "            named by --cert, --config or --password-file (or the store of\n"
                     "            'del') that does not exist.\n");
}

struct pin_opts {
    enum pin_op op;
    const char *operand; /* add: PIN; del: ID|PIN */
    const char *store, *config, *name, *url;
    const char *cert, *user, *role_name, *label, *note;
    enum user_role role;
    bool is_json, is_force;
    struct client_opts client;
};

/* One entry as both modes show it: strings only (a remote answer's texts cleaned). */
struct pin_row {
    char id[16];
    char pin[PIN_STR_MAX];
    char user[USERS_NAME_MAX + 8];
    char role[24];
    char created[32];
    char label[CLIENT_TEXT_MAX + 1];
    char note[CLIENT_TEXT_MAX + 1];
};

static void row_from_entry(const struct pin_entry *e, struct pin_row *row)
{
    *row = (struct pin_row){ 0 };
    (void)snprintf(row->id, sizeof(row->id), "%u", (unsigned)e->id);
    pin_format(&e->pin, row->pin, sizeof(row->pin));
    (void)snprintf(row->user, sizeof(row->user), "%s", e->user);
    (void)snprintf(row->role, sizeof(row->role), "%s", user_role_name(e->role));
    unix_to_iso8601(e->created, row->created, sizeof(row->created));
    /* Labels and notes are the store's own, checked UTF-8 without control characters. */
    (void)snprintf(row->label, sizeof(row->label), "%s", e->label);
    (void)snprintf(row->note, sizeof(row->note), "%s", e->note);
}

static void print_header(void)
{
    (void)printf("%-4s  %-52s  %-16s  %-13s  %-20s  %s\n", "ID", "PIN", "USER", "ROLE", "CREATED",
                 "LABEL");
}

static void print_row(const struct pin_row *r)
{
    (void)printf("%-4s  %-52s  %-16s  %-13s  %-20s  %s\n", r->id, r->pin, r->user, r->role,
                 r->created, r->label);
}

static json_t *row_json(const struct pin_row *r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Id", r->id, "Pin", r->pin, "UserName",
                     r->user, "RoleId", r->role, "Created", r->created, "Label", r->label, "Note",
                     r->note);
}

/* Print rows as a table or a JSON array. */
static int print_rows(const struct pin_row *rows, size_t n, bool is_json)
{
    if (!is_json) {
        print_header();
        for (size_t i = 0; i < n; i++) {
            print_row(&rows[i]);
        }
        return EXIT_OK;
    }
    _cleanup_(cleanup_json_t) json_t *a = json_array();
    bool is_ok = a != NULL;
    for (size_t i = 0; is_ok && i < n; i++) {
        is_ok = json_array_append_new(a, row_json(&rows[i])) == 0;
    }
    _cleanup_free_ char *text = is_ok ? json_dumps(a, JSON_INDENT(2)) : NULL;
    if (!text) {
        struct certd_err err = { 0 };
        (void)err_set(&err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        return cli_fail("pin list", &err);
    }
    (void)printf("%s\n", text);
    return EXIT_OK;
}

/* ---- what to add: a pin from the command line or a certificate ---- */

/*
 * The certificate of --cert FILE (exactly one, nothing else: a new reference), its pin and its
 * CN (a new string, NULL when it has none) for the default label.
 */
static int cert_pin(const struct cli_ctx *ctx, const char *path, X509 **ret_cert, struct pin *ret,
                    char **ret_cn, struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    _cleanup_(cleanup_cert_info) struct cert_info *info = NULL;
    _cleanup_free_ char *what = NULL;
    if (asprintf(&what, "--cert %s is not a certificate", path) < 0) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    int r = cli_read_bundle(ctx, path, what, &b, err);
    if (r < 0) {
        return r;
    }
    if (b->key) {
        return err_set(err, -EINVAL, CERTD_E_PEM_UNEXPECTED_LABEL,
                       "--cert %s holds a private key: give the certificate alone", path);
    }
    if (bundle_n_certs(b) != 1) {
        return err_set(err, -EINVAL, CERTD_E_TOO_MANY_CERTS,
                       "--cert %s holds %zu certificates: give exactly one", path,
                       bundle_n_certs(b));
    }
    /* The key checks certd's API makes too: a pin certd would refuse at the handshake is no
     * use in its store. */
    struct pin p;
    struct certd_err e2 = { 0 };
    r = pin_from_cert_checked(ctx->libctx, ctx->propq, bundle_cert(b, 0), &p, &e2);
    if (r < 0) {
        return err_set(err, r, e2.code, "--cert %s: %s", path, e2.msg);
    }
    _cleanup_free_ char *cn = NULL;
    /* The CN only names the entry: a certificate we cannot show still has a pinnable key. */
    if (cert_inspect(ctx->libctx, ctx->propq, bundle_cert(b, 0), &info, NULL) == 0 &&
        info->subject.common_name) {
        cn = strdup(info->subject.common_name);
        if (!cn) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    if (X509_up_ref(bundle_cert(b, 0)) != 1) {
        return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
    }
    *ret_cert = bundle_cert(b, 0);
    *ret = p;
    *ret_cn = TAKE_PTR(cn);
    return 0;
}

/* Everything add needs, checked before any lock or connection. */
struct pin_new {
    struct pin pin;
    X509 *cert; /* owned; the certificate of --cert (the API takes it whole), or NULL */
    char *cn;   /* owned; NULL without --cert or CN */
    const char *label;
};

static void pin_new_done(struct pin_new *n)
{
    X509_free(n->cert);
    free(n->cn);
    *n = (struct pin_new){ 0 };
}

static int prepare_add(const struct cli_ctx *ctx, const struct pin_opts *o, struct pin_new *n)
{
    struct certd_err err = { 0 };
    int r;
    if (o->cert) {
        r = cert_pin(ctx, o->cert, &n->cert, &n->pin, &n->cn, &err);
    } else {
        r = pin_parse(o->operand, &n->pin, &err);
    }
    if (r < 0) {
        return cli_fail("pin add", &err);
    }
    if (users_check_name(o->user, &err) < 0) {
        return cli_fail("pin add: --user", &err);
    }
    n->label = o->label ? o->label : n->cn ? n->cn : o->user;
    if (pinstore_check_label(n->label, &err) < 0) {
        if (!o->label && n->cn) {
            (void)fprintf(stderr,
                          "certctl: pin add: the certificate's CN cannot be the label: %s; give "
                          "--label LABEL (%s)\n",
                          err.msg, err_code_name(err.code));
            return exit_code_for(&err);
        }
        return cli_fail("pin add: --label", &err);
    }
    if (o->note && pinstore_check_note(o->note, &err) < 0) {
        return cli_fail("pin add: --note", &err);
    }
    return 0;
}

/* ---- local mode ---- */

/* The store file of the command line: --store, --config [--name], or the default. */
static int store_path(const struct pin_opts *o, char **ret)
{
    struct certd_err err = { 0 };
    const char *path = o->store ? o->store : PIN_STORE_DEFAULT;
    if (o->config) {
        _cleanup_(cleanup_config) struct config *cfg = NULL;
        if (config_load(o->config, &cfg, &err) < 0) {
            return cli_fail(o->config, &err);
        }
        const struct config_pins *p =
            o->name ? config_pins_find(cfg, o->name) : &cfg->pins[cfg->client_pins];
        if (!p) {
            (void)err_set(&err, -ENOENT, CERTD_E_NOT_FOUND, "no pin store [pins %s] in %s", o->name,
                          o->config);
            return cli_fail("pin", &err);
        }
        *ret = strdup(p->file);
    } else {
        *ret = strdup(path);
    }
    if (!*ret) {
        (void)err_set(&err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        return cli_fail("pin", &err);
    }
    return 0;
}

static int local_list(const struct pin_opts *o, const char *path)
{
    struct certd_err err = { 0 };
    _cleanup_(cleanup_pinstore) struct pinstore *ps = NULL;
    _cleanup_free_ struct pin_row *rows = NULL;
    if (pinstore_load_or_empty(path, &ps, &err) < 0) {
        return cli_fail("pin list", &err);
    }
    if (ps->n > 0) {
        rows = calloc(ps->n, sizeof(*rows));
        if (!rows) {
            (void)err_set(&err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
            return cli_fail("pin list", &err);
        }
    }
    for (size_t i = 0; i < ps->n; i++) {
        row_from_entry(&ps->v[i], &rows[i]);
    }
    return print_rows(rows, ps->n, o->is_json);
}

static void unlock_fd(int *fd)
{
    *fd = pinstore_unlock(*fd);
}

static int local_add(const struct pin_opts *o, const struct pin_new *n, const char *path)
{
    struct certd_err err = { 0 };
    _cleanup_(cleanup_pinstore) struct pinstore *ps = NULL;
    _cleanup_(unlock_fd) int lock = -EBADF;
    uint32_t id = 0;
    int r = pinstore_lock(path, &lock, &err);
    if (r >= 0) {
        r = pinstore_load_or_empty(path, &ps, &err);
    }
    if (r >= 0) {
        r = pinstore_add(ps, &n->pin, n->label, o->user, o->role, o->note, (int64_t)time(NULL), &id,
                         &err);
    }
    if (r >= 0) {
        r = pinstore_save(ps, path, &err);
    }
    if (r < 0) {
        return cli_fail("pin add", &err);
    }
    struct pin_row row;
    row_from_entry(pinstore_find_id(ps, id), &row);
    (void)printf("added pin %s: %s for %s (%s), label %s\n", row.id, row.pin, row.user, row.role,
                 row.label);
    return EXIT_OK;
}

/* The operand of del: an id, or a pin (never both: ids are at most 9 digits, pins 64). */
static int parse_target(const char *s, uint32_t *ret_id, struct pin *ret_pin, bool *ret_is_id)
{
    struct certd_err err = { 0 }, pe = { 0 };
    if (pinstore_parse_id(s, ret_id) == 0) {
        *ret_is_id = true;
        return 0;
    }
    if (pin_parse(s, ret_pin, &pe) < 0) {
        (void)err_set(&err, -EINVAL, CERTD_E_FIELD_INVALID,
                      "'%.80s' is neither an id (1 to %u) nor a pin: %s", s, PINSTORE_ID_MAX,
                      pe.msg);
        return cli_fail("pin del", &err);
    }
    *ret_is_id = false;
    return 0;
}

static int local_del(const struct pin_opts *o, const char *path)
{
    struct certd_err err = { 0 };
    _cleanup_(cleanup_pinstore) struct pinstore *ps = NULL;
    _cleanup_(unlock_fd) int lock = -EBADF;
    uint32_t id = 0;
    struct pin pin;
    bool is_id = false;
    int rc = parse_target(o->operand, &id, &pin, &is_id);
    if (rc != 0) {
        return rc;
    }
    int r = pinstore_lock(path, &lock, &err);
    if (r >= 0) {
        r = pinstore_load(path, &ps, &err);
    }
    if (r < 0) {
        return cli_fail("pin del", &err);
    }
    const struct pin_entry *e = is_id ? pinstore_find_id(ps, id) : pinstore_find(ps, &pin);
    if (!e) {
        (void)err_set(&err, -ENOENT, CERTD_E_NOT_FOUND, "no pin %s in %s", o->operand, path);
        return cli_fail("pin del", &err);
    }
    struct pin_row row;
    row_from_entry(e, &row);
    r = pinstore_remove(ps, e->id);
    if (r >= 0) {
        r = pinstore_save(ps, path, &err);
    }
    if (r < 0) {
        (void)err_set(&err, r, CERTD_E_INTERNAL, "cannot remove pin %s", row.id);
        return cli_fail("pin del", &err);
    }
    (void)printf("deleted pin %s: %s (%s)\n", row.id, row.pin, row.label);
    return EXIT_OK;
}

/* ---- remote mode ---- */

static const struct client_meanings pin_meanings = {
    .forbidden = "managing pins needs the Administrator role",
    .not_found = "no such pin, or no pin management at this URL",
    .conflict = "certd refused the change",
};

/* A member's string, cleaned for a terminal; "" when absent or not a string. */
static void member_text(json_t *o, const char *name, char *buf, size_t size)
{
    client_clean_text(json_string_value(json_object_get(o, name)), buf, size);
}

/* A member body into a row; the id must be one certd gives (1..PINSTORE_ID_MAX). */
static int row_from_json(const struct client *c, json_t *j, struct pin_row *row,
                         struct certd_err *err)
{
    uint32_t id;
    *row = (struct pin_row){ 0 };
    const char *sid = json_string_value(json_object_get(j, "Id"));
    if (!sid || pinstore_parse_id(sid, &id) < 0) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED, "a pin from %s has no valid \"Id\"",
                       client_host(c));
    }
    (void)snprintf(row->id, sizeof(row->id), "%u", (unsigned)id);
    member_text(j, "Pin", row->pin, sizeof(row->pin));
    member_text(j, "UserName", row->user, sizeof(row->user));
    member_text(j, "RoleId", row->role, sizeof(row->role));
    member_text(j, "Created", row->created, sizeof(row->created));
    member_text(j, "Name", row->label, sizeof(row->label));
    member_text(j, "Note", row->note, sizeof(row->note));
    return 0;
}

/* GET one member by id into row. */
static int remote_get(struct client *c, uint32_t id, struct pin_row *row, struct certd_err *err)
{
    _cleanup_(client_answer_done) struct client_answer a = { 0 };
    _cleanup_(cleanup_json_t) json_t *j = NULL;
    char path[sizeof(PINNED_PEERS) + 16];
    (void)snprintf(path, sizeof(path), PINNED_PEERS "/%u", (unsigned)id);
    int r = client_request(c, "GET", path, NULL, 0, &a, err);
    if (r >= 0) {
        r = client_answer_json(c, "pin at", &a, &pin_meanings, &j, err);
    }
    if (r >= 0) {
        r = row_from_json(c, j, row, err);
    }
    return r;
}

/* Every member: the collection, then each member (certd lists links only). */
static int remote_rows(struct client *c, struct pin_row **ret, size_t *ret_n, struct certd_err *err)
{
    _cleanup_(client_answer_done) struct client_answer a = { 0 };
    _cleanup_(cleanup_json_t) json_t *j = NULL;
    _cleanup_free_ struct pin_row *rows = NULL;
    int r = client_request(c, "GET", PINNED_PEERS, NULL, 0, &a, err);
    if (r >= 0) {
        r = client_answer_json(c, "the pins at", &a, &pin_meanings, &j, err);
    }
    if (r < 0) {
        return r;
    }
    json_t *members = json_object_get(j, "Members");
    if (!json_is_array(members)) {
        return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                       "the pins at %s: the answer has no \"Members\" array", client_host(c));
    }
    size_t n = json_array_size(members);
    if (n > PINSTORE_MAX) {
        return err_set(err, -E2BIG, CERTD_E_SIGNER_FAILED, "the pins at %s: more than %u members",
                       client_host(c), PINSTORE_MAX);
    }
    if (n > 0) {
        rows = calloc(n, sizeof(*rows));
        if (!rows) {
            return err_set(err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *link =
            json_string_value(json_object_get(json_array_get(members, i), "@odata.id"));
        const char *prefix = PINNED_PEERS "/";
        uint32_t id;
        /* Only links into the collection are followed: the server names ids, not paths. */
        if (!link || strncmp(link, prefix, strlen(prefix)) != 0 ||
            pinstore_parse_id(link + strlen(prefix), &id) < 0) {
            return err_set(err, -EBADMSG, CERTD_E_SIGNER_FAILED,
                           "the pins at %s: member %zu is not a link to a pin", client_host(c), i);
        }
        r = remote_get(c, id, &rows[i], err);
        if (r < 0) {
            return r;
        }
    }
    *ret = TAKE_PTR(rows);
    *ret_n = n;
    return 0;
}

static int remote_list(struct client *c, const struct pin_opts *o)
{
    struct certd_err err = { 0 };
    _cleanup_free_ struct pin_row *rows = NULL;
    size_t n = 0;
    if (remote_rows(c, &rows, &n, &err) < 0) {
        return client_fail(c, "pin list", &err);
    }
    return print_rows(rows, n, o->is_json);
}

static int remote_add(struct client *c, const struct pin_opts *o, const struct pin_new *n)
{
    struct certd_err err = { 0 };
    _cleanup_(client_answer_done) struct client_answer a = { 0 };
    _cleanup_(cleanup_json_t) json_t *req = NULL, *j = NULL;
    _cleanup_free_ char *pem = NULL;
    _cleanup_free_ char *body = NULL;
    char pin[PIN_STR_MAX];
    size_t pem_len = 0;
    int r = 0;
    pin_format(&n->pin, pin, sizeof(pin));
    /* The certificate prepare_add parsed, re-encoded: nothing else of the file is sent. */
    r = n->cert ? cert_to_pem(n->cert, &pem, &pem_len) : 0;
    if (r < 0) {
        (void)err_set(&err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_INTERNAL,
                      "cannot encode the certificate");
        return cli_fail("pin add", &err);
    }
    req = pem ? json_pack("{s:s}", "CertificateString", pem) : json_pack("{s:s}", "Pin", pin);
    if (!req || json_object_set_new(req, "UserName", json_string(o->user)) < 0 ||
        json_object_set_new(req, "RoleId", json_string(user_role_name(o->role))) < 0 ||
        json_object_set_new(req, "Label", json_string(n->label)) < 0 ||
        (o->note && json_object_set_new(req, "Note", json_string(o->note)) < 0) ||
        !(body = json_dumps(req, JSON_COMPACT))) {
        (void)err_set(&err, -ENOMEM, CERTD_E_NO_MEMORY, "out of memory");
        return cli_fail("pin add", &err);
    }
    r = client_request(c, "POST", PINNED_PEERS, body, strlen(body), &a, &err);
    if (r >= 0) {
        r = client_answer_json(c, "adding a pin at", &a, &pin_meanings, &j, &err);
    }
    struct pin_row row;
    if (r >= 0) {
        r = row_from_json(c, j, &row, &err);
    }
    if (r < 0) {
        return client_fail(c, "pin add", &err);
    }
    (void)printf("added pin %s: %s for %s (%s), label %s\n", row.id, row.pin, row.user, row.role,
                 row.label);
    return EXIT_OK;
}

static int remote_del(struct client *c, const struct pin_opts *o)
{
    struct certd_err err = { 0 };
    _cleanup_(client_answer_done) struct client_answer a = { 0 };
    uint32_t id = 0;
    struct pin pin;
    bool is_id = false;
    int rc = parse_target(o->operand, &id, &pin, &is_id);
    if (rc != 0) {
        return rc;
    }
    if (!is_id) {
        /* The API deletes by id: find the pin's. */
        _cleanup_free_ struct pin_row *rows = NULL;
        size_t n = 0;
        char want[PIN_STR_MAX];
        pin_format(&pin, want, sizeof(want));
        if (remote_rows(c, &rows, &n, &err) < 0) {
            return client_fail(c, "pin del", &err);
        }
        /* Compared as pins, not as text: the server may write one in another form. */
        size_t i = 0;
        for (struct pin row; i < n; i++) {
            if (pin_parse(rows[i].pin, &row, NULL) == 0 && pin_eq(&row, &pin)) {
                break;
            }
        }
        if (i == n || pinstore_parse_id(rows[i].id, &id) < 0) {
            (void)err_set(&err, -ENOENT, CERTD_E_NOT_FOUND, "no pin %s at %s", want,
                          client_host(c));
            return cli_fail("pin del", &err);
        }
    }
    char path[sizeof(PINNED_PEERS) + 32];
    (void)snprintf(path, sizeof(path), PINNED_PEERS "/%u%s", (unsigned)id,
                   o->is_force ? "?force=true" : "");
    int r = client_request(c, "DELETE", path, NULL, 0, &a, &err);
    if (r >= 0) {
        r = client_answer_ok(c, "deleting a pin at", &a, &pin_meanings, &err);
        if (r < 0 && err.code == CERTD_E_IN_USE && !o->is_force) {
            (void)fprintf(stderr, "certctl: pin del: pass --force to delete it anyway\n");
        }
    }
    if (r < 0) {
        return client_fail(c, "pin del", &err);
    }
    (void)printf("deleted pin %u\n", (unsigned)id);
    return EXIT_OK;
}

/* ---- the command ---- */

enum {
    OPT_STORE = 0x100,
    OPT_CONFIG,
    OPT_NAME,
    OPT_URL,
    OPT_CERT,
    OPT_PIN_USER,
    OPT_ROLE,
    OPT_LABEL,
    OPT_NOTE,
    OPT_JSON,
    OPT_FORCE,
};

/* The options against the operation and the mode: 0 or EXIT_USAGE (printed). */
static int pin_check(const struct pin_opts *o)
{
    bool is_add = o->op == PIN_OP_ADD;
    const struct client_opts *co = &o->client;
    bool has_client = co->cacert || co->is_insecure || co->n_pins || co->known_hosts ||
                      co->is_tofu || co->client_cert || co->client_key || co->user ||
                      co->password_file;
    if ((o->store != NULL) + (o->config != NULL) + (o->url != NULL) > 1) {
        return cli_usage_error("pin", "--store, --config and --url exclude each other");
    }
    if (o->name && !o->config) {
        return cli_usage_error("pin", "--name needs --config CERTD.CONF");
    }
    if (!o->url && has_client) {
        return cli_usage_error("pin", "the TLS and login options belong to --url");
    }
    if (o->is_force && (o->op != PIN_OP_DEL || !o->url)) {
        return cli_usage_error("pin", "--force is for 'del --url' (certd's own refusal to "
                                      "delete the pin of the connection itself)");
    }
    if (o->is_json && o->op != PIN_OP_LIST) {
        return cli_usage_error("pin", "--json is for 'list'");
    }
    if (!is_add && (o->cert || o->user || o->role_name || o->label || o->note)) {
        return cli_usage_error("pin", "--cert, --user, --role, --label and --note are for 'add'");
    }
    if (is_add && !o->cert == !o->operand) {
        return cli_usage_error("pin", "add takes a PIN or --cert FILE (one of them)");
    }
    if (is_add && (!o->user || !o->role_name)) {
        return cli_usage_error("pin", "add needs --user NAME and --role ROLE");
    }
    if (o->op == PIN_OP_DEL && !o->operand) {
        return cli_usage_error("pin", "del needs the ID or PIN of the entry");
    }
    if (o->op == PIN_OP_LIST && o->operand) {
        return cli_usage_error("pin", "unexpected argument '%s'", o->operand);
    }
    return 0;
}

int cmd_pin(const struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        CLIENT_LONG_OPTIONS,
        { "login", required_argument, NULL, CLIENT_OPT_USER },
        { "store", required_argument, NULL, OPT_STORE },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "name", required_argument, NULL, OPT_NAME },
        { "url", required_argument, NULL, OPT_URL },
        { "cert", required_argument, NULL, OPT_CERT },
        { "user", required_argument, NULL, OPT_PIN_USER },
        { "role", required_argument, NULL, OPT_ROLE },
        { "label", required_argument, NULL, OPT_LABEL },
        { "note", required_argument, NULL, OPT_NOTE },
        { "json", no_argument, NULL, OPT_JSON },
        { "force", no_argument, NULL, OPT_FORCE },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    struct pin_opts o = { .op = PIN_OP_MAX, .client = { .user_opt = "--login" } };
    int c;

    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        pin_usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; argc >= 2 && i < PIN_OP_MAX; i++) {
        if (strcmp(argv[1], pin_op_names[i]) == 0) {
            o.op = (enum pin_op)i;
        }
    }
    if (o.op == PIN_OP_MAX) {
        return cli_usage_error("pin", "expected an operation: list, add or del");
    }
    /* getopt sees the operation's arguments: argv[1] is the operation, as argv[0] would be. */
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = client_opt_take("pin", c, optarg, &o.client);
        if (taken != -ENOENT) {
            if (taken != 0) {
                return taken;
            }
            continue;
        }
        switch (c) {
        case 'h':
            pin_usage(stdout);
            return EXIT_OK;
        case OPT_STORE:
            o.store = optarg;
            break;
        case OPT_CONFIG:
            o.config = optarg;
            break;
        case OPT_NAME:
            o.name = optarg;
            break;
        case OPT_URL:
            o.url = optarg;
            break;
        case OPT_CERT:
            o.cert = optarg;
            break;
        case OPT_PIN_USER:
            o.user = optarg;
            break;
        case OPT_ROLE:
            o.role_name = optarg;
            if (user_role_from_name(optarg, &o.role) < 0) {
                return cli_usage_error(
                    "pin", "a role is Administrator, Operator or ReadOnly, not '%s'", optarg);
            }
            break;
        case OPT_LABEL:
            o.label = optarg;
            break;
        case OPT_NOTE:
            o.note = optarg;
            break;
        case OPT_JSON:
            o.is_json = true;
            break;
        case OPT_FORCE:
            o.is_force = true;
            break;
        default:
            return cli_usage_error("pin", "unknown option");
        }
    }
    if (optind < argc) {
        o.operand = argv[optind];
        if (optind + 1 < argc) {
            return cli_usage_error("pin", "unexpected argument '%s'", argv[optind + 1]);
        }
    }
    int rc = pin_check(&o);
    if (rc != 0) {
        return rc;
    }
    _cleanup_(pin_new_done) struct pin_new n = { 0 };
    if (o.op == PIN_OP_ADD) {
        rc = prepare_add(ctx, &o, &n);
        if (rc != 0) {
            return rc;
        }
    }
    if (o.url) {
        _cleanup_(cleanup_client) struct client *client = NULL;
        (void)signal(SIGPIPE, SIG_IGN);
        rc = client_new(ctx, "pin", o.url, &o.client, "admin", &client);
        if (rc != 0) {
            return rc;
        }
        switch (o.op) {
        case PIN_OP_LIST:
            return remote_list(client, &o);
        case PIN_OP_ADD:
            return remote_add(client, &o, &n);
        default:
            return remote_del(client, &o);
        }
    }
    _cleanup_free_ char *path = NULL;
    rc = store_path(&o, &path);
    if (rc != 0) {
        return rc;
    }
    switch (o.op) {
    case PIN_OP_LIST:
        return local_list(&o, path);
    case PIN_OP_ADD:
        return local_add(&o, &n, path);
    default:
        return local_del(&o, path);
    }
}
