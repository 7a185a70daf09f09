/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pinned peers in Redfish, an OEM collection (issue #6; no DMTF schema has pins): the pin store
 * of certd's listener (peers.h), Administrator only (ConfigureUsers: a pin is an account).
 *   GET    /redfish/v1/Oem/Certd/PinnedPeers        the collection
 *   POST   /redfish/v1/Oem/Certd/PinnedPeers        {"CertificateString": PEM | "Pin":
 *          "sha256//BASE64" or 64 hex digits, "UserName", "RoleId", optional "Label", "Note"}
 *          -> 201, Location and the member
 *   GET    .../PinnedPeers/{id}                     {Id, Name (the label), Label, Pin, UserName,
 *          RoleId, Created, Note}
 *   DELETE .../PinnedPeers/{id}[?force=true]         -> 204. The pin the request's own
 *          connection presented is refused (409) unless forced: its next request would fail.
 * Reads come from the store in force (memory); changes lock, re-read and write the file on a
 * worker (peers_add / peers_remove) and are in force for the next handshake.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "keys/keys.h"
#include "log/log.h"
#include "peers.h"
#include "redfish.h"
#include "worker.h"
#include "x509/bundle.h"
#include "x509/inspect.h"

#define PINS_URI  "/redfish/v1/Oem/Certd/PinnedPeers"
#define PIN_TYPE  "CertdPinnedPeer.v1_0_0"
#define COLL_TYPE "CertdPinnedPeerCollection"
/* "/redfish/v1/Oem/Certd/PinnedPeers/" and an id */
#define MEMBER_URI_MAX (sizeof(PINS_URI) + 12u)

static void member_uri(uint32_t id, char *buf, size_t size)
{
    (void)snprintf(buf, size, "%s/%u", PINS_URI, (unsigned)id);
}

static json_t *member_json(const struct pin_entry *e)
{
    char uri[MEMBER_URI_MAX], id[12], pin[PIN_STR_MAX], when[32];

    member_uri(e->id, uri, sizeof(uri));
    (void)snprintf(id, sizeof(id), "%u", (unsigned)e->id);
    pin_format(&e->pin, pin, sizeof(pin));
    unix_to_iso8601(e->created, when, sizeof(when));
    json_t *b = rf_resource_new(uri, PIN_TYPE, id, e->label);
    (void)rf_set_str(&b, "Label", e->label);
    (void)rf_set_str(&b, "Pin", pin);
    (void)rf_set_str(&b, "UserName", e->user);
    (void)rf_set_str(&b, "RoleId", user_role_name(e->role));
    (void)rf_set_str(&b, "Created", when);
    (void)rf_set_str(&b, "Note", e->note);
    return b;
}

static void h_collection(struct rf_request *rq)
{
    _cleanup_(cleanup_peers_store) struct peers_store *s = peers_store_ref(rq->d->peers);
    json_t *b = rf_collection_new(PINS_URI, COLL_TYPE, "Pinned peers");
    char uri[MEMBER_URI_MAX];

    for (size_t i = 0; b && i < s->ps->n; i++) {
        member_uri(s->ps->v[i].id, uri, sizeof(uri));
        if (!rf_members_add(b, uri)) {
            json_decref(b);
            b = NULL;
        }
    }
    (void)rf_set_str(&b, "Description",
                     "Public keys whose holders are trusted without a CA, each as a user and role");
    rf_respond_200(rq, rf_collection_done(b));
}

/* The member the path names, or NULL after answering 404. */
static const struct pin_entry *member_find(struct rf_request *rq, const struct peers_store *s)
{
    uint32_t id = 0;
    const struct pin_entry *e = NULL;
    if (pinstore_parse_id(rq->params[0], &id) >= 0) {
        e = pinstore_find_id(s->ps, id);
    }
    if (!e) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, http_request_path(rq->http), NULL);
    }
    return e;
}

static void h_member(struct rf_request *rq)
{
    _cleanup_(cleanup_peers_store) struct peers_store *s = peers_store_ref(rq->d->peers);
    const struct pin_entry *e = member_find(rq, s);
    if (e) {
        rf_respond_200(rq, member_json(e));
    }
}

/* ---- changes, on a worker ---- */

struct change_job {
    struct rf_request *rq;
    bool is_remove;
    /* add */
    const char *pem; /* CertificateString (borrowed from the request), or NULL: pin is given */
    struct pin pin;
    char label[PINSTORE_LABEL_MAX + 1]; /* "": the certificate's CN, else the user name */
    char user[USERS_NAME_MAX + 1];
    char note[PINSTORE_NOTE_MAX + 1];
    enum user_role role;
    /* remove */
    uint32_t id;
    /* the outcome */
    int r;
    struct certd_err err;
    struct pin_entry entry;
};

/* The pin of an uploaded certificate (exactly one, no key), its CN into cn (or ""). */
static int cert_pin(struct daemon *d, const char *pem, struct pin *ret, char *cn, size_t cn_size,
                    struct certd_err *err)
{
    _cleanup_(cleanup_bundle) struct bundle *b = NULL;
    int r = bundle_parse(d->libctx, d->propq, span_from_str(pem), 0, &b, err);
    if (r < 0) {
        return r;
    }
    if (b->key) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "CertificateString holds a private key: send the peer's certificate "
                       "only (its key never leaves the peer)");
    }
    if (bundle_n_certs(b) != 1) {
        return err_set(err, -EINVAL, CERTD_E_FIELD_INVALID,
                       "CertificateString holds %zu certificates: send exactly the peer's own",
                       bundle_n_certs(b));
    }
    X509 *c = bundle_cert(b, 0);
    r = pin_from_cert_checked(d->libctx, d->propq, c, ret, err);
    if (r < 0) {
        return r;
    }
    _cleanup_(cleanup_cert_info) struct cert_info *info = NULL;
    cn[0] = '\0';
    if (cert_inspect(d->libctx, d->propq, c, &info, err) >= 0 && info->subject.common_name &&
        pinstore_check_label(info->subject.common_name, NULL) >= 0) {
        (void)snprintf(cn, cn_size, "%s", info->subject.common_name);
    }
    err_clear(err);
    return 0;
}

/* On a worker: an uploaded certificate is parsed and hashed here, never on the loop. */
static void change_run(void *arg)
{
    struct change_job *j = arg;
    struct peers *p = j->rq->d->peers;
    if (j->is_remove) {
        j->r = peers_remove(p, j->id, &j->err);
        return;
    }
    char cn[PINSTORE_LABEL_MAX + 1] = "";
    if (j->pem) {
        j->r = cert_pin(j->rq->d, j->pem, &j->pin, cn, sizeof(cn), &j->err);
        if (j->r < 0) {
            return;
        }
    }
    if (!j->label[0]) {
        (void)snprintf(j->label, sizeof(j->label), "%s", cn[0] ? cn : j->user);
    }
    j->r = peers_add(p, &j->pin, j->label, j->user, j->role, j->note, &j->entry, &j->err);
}

static void change_done(void *arg, bool cancelled)
{
    struct change_job *j = arg;
    struct rf_request *rq = j->rq;

    if (cancelled) {
        rf_error_busy(rq);
    } else if (j->r < 0) {
        rf_error_certd(rq, &j->err, NULL);
    } else if (j->is_remove) {
        rf_respond(rq, 204, NULL);
    } else {
        char uri[MEMBER_URI_MAX];
        member_uri(j->entry.id, uri, sizeof(uri));
        json_t *b = member_json(&j->entry);
        if (b) {
            rf_header(rq, "Location", uri);
            rf_respond(rq, 201, b);
        } else {
            rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        }
    }
    free(j);
}

static void submit(struct rf_request *rq, struct change_job *j)
{
    j->rq = rq;
    if (worker_submit(rq->d->workers, WORKER_LANE_PARALLEL, change_run, change_done, j) < 0) {
        free(j);
        rf_error_busy(rq);
    }
}

static void h_add(struct rf_request *rq)
{
    static const char *const known[] = {
        "CertificateString", "Pin", "UserName", "RoleId", "Label", "Note", NULL
    };
    const char *pem = NULL, *pin_s = NULL, *user = NULL, *role_s = NULL, *label = NULL,
               *note = NULL;
    struct certd_err err = { 0 };

    if (!rf_check_known(rq, NULL, known) ||
        !rf_get_string(rq, NULL, "CertificateString", false, &pem) ||
        !rf_get_string(rq, NULL, "Pin", false, &pin_s) ||
        !rf_get_string(rq, NULL, "UserName", true, &user) ||
        !rf_get_string(rq, NULL, "RoleId", true, &role_s) ||
        !rf_get_string(rq, NULL, "Label", false, &label) ||
        !rf_get_string(rq, NULL, "Note", false, &note)) {
        return;
    }
    if (!pem && !pin_s) {
        rf_errorf(rq, 400, RF_MSG_PROPERTY_MISSING, "Pin", NULL);
        return;
    }
    if (pem && pin_s) {
        (void)err_set(&err, -EINVAL, CERTD_E_FIELD_INVALID,
                      "give either CertificateString or Pin, not both");
        rf_error_certd(rq, &err, NULL);
        return;
    }
    enum user_role role;
    if (user_role_from_name(role_s, &role) < 0) {
        rf_errorf(rq, 400, RF_MSG_PROPERTY_VALUE_NOT_IN_LIST, role_s, "RoleId", NULL);
        return;
    }
    if (users_check_name(user, &err) < 0) {
        rf_error_certd(rq, &err, "UserName");
        return;
    }
    if (auth_check_peer_user(rq->d->auth, user, role, &err) < 0) {
        rf_error_certd(rq, &err, "RoleId");
        return;
    }
    if ((label && pinstore_check_label(label, &err) < 0) ||
        (note && pinstore_check_note(note, &err) < 0)) {
        rf_error_certd(rq, &err, NULL);
        return;
    }

    struct change_job *j = calloc(1, sizeof(*j));
    if (!j) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    if (pin_s && pin_parse(pin_s, &j->pin, &err) < 0) {
        free(j);
        rf_error_certd(rq, &err, "Pin");
        return;
    }
    j->pem = pem;
    j->role = role;
    (void)snprintf(j->user, sizeof(j->user), "%s", user);
    (void)snprintf(j->label, sizeof(j->label), "%s", label ? label : "");
    (void)snprintf(j->note, sizeof(j->note), "%s", note ? note : "");
    submit(rq, j);
}

static void h_delete(struct rf_request *rq)
{
    _cleanup_(cleanup_peers_store) struct peers_store *s = peers_store_ref(rq->d->peers);
    const struct pin_entry *e = member_find(rq, s);
    if (!e) {
        return;
    }
    if (rq->has_client_pin && pin_eq(&rq->client_pin, &e->pin) &&
        !rf_query_has(rq, "force", "true")) {
        struct certd_err err = { 0 };
        (void)err_set(&err, -EBUSY, CERTD_E_IN_USE,
                      "pin id %u (%s) is the key of this request's own client certificate: "
                      "deleting it cuts this client off. To delete it anyway, repeat with "
                      "?force=true",
                      (unsigned)e->id, e->label);
        rf_error_certd(rq, &err, NULL);
        return;
    }
    struct change_job *j = calloc(1, sizeof(*j));
    if (!j) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    j->is_remove = true;
    j->id = e->id;
    submit(rq, j);
}

static void h_pins(struct rf_request *rq)
{
    if (rq->method == HTTP_METHOD_POST) {
        h_add(rq);
    } else {
        h_collection(rq);
    }
}

static void h_pin(struct rf_request *rq)
{
    if (rq->method == HTTP_METHOD_DELETE) {
        h_delete(rq);
    } else {
        h_member(rq);
    }
}

#define M(x) (1u << HTTP_METHOD_##x)

const struct rf_route rf_pins_routes[] = {
    { .pattern = PINS_URI,
      .methods = M(GET) | M(POST),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_CONFIGURE_USERS,
                      [HTTP_METHOD_POST] = AUTH_PRIV_CONFIGURE_USERS },
      .is_redfish = true,
      .body = RF_BODY_JSON,
      .schema = COLL_TYPE,
      .handler = h_pins },
    { .pattern = PINS_URI "/{}",
      .methods = M(GET) | M(DELETE),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_CONFIGURE_USERS,
                      [HTTP_METHOD_DELETE] = AUTH_PRIV_CONFIGURE_USERS },
      .is_redfish = true,
      .schema = PIN_TYPE,
      .handler = h_pin },
    { .pattern = NULL },
};
