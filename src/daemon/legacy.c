/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The legacy OpenBMC REST API of seed 002, for clients written against phosphor-rest:
 *   PUT    /xyz/openbmc_project/certs/server/https        install/replace (PEM cert + key)
 *   PUT    /xyz/openbmc_project/certs/client/ldap
 *   PUT    /xyz/openbmc_project/certs/authority/ldap      add CA certificates (the truststore)
 *   DELETE /xyz/openbmc_project/certs/<type>/<name>/<id>  server: delete, then a new
 *                                                         self-signed certificate; others: remove
 *   GET    the same paths: the installed ids, and one certificate's PEM
 * Answers are phosphor-rest's JSON {"status": "ok"|"error", "message": "<code> <reason>",
 * "data": {"description": ...} or the data asked for}, as redfish.c renders the router's own
 * errors on these paths, with the seed's codes: 200, 400 for an upload the library refuses (with
 * its specific reason, never the upload), 404 for an unknown id, 405 for a method (the router), 503
 * when the worker queue is full, and 500 only for faults of ours (storage, memory).
 *
 * Invariants: as in rf-cert.c, every change runs on the worker pool's serial lane, the request is
 * answered only after the endpoint's notifier reported (a failure is a warning in the message;
 * the change stands), and the job reads its upload straight from the request, which lives until
 * the answer. No private key is ever rendered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log/log.h"
#include "manager.h"
#include "redfish.h"

#define LEGACY_PREFIX "/xyz/openbmc_project/certs"
#define PATH_HTTPS    LEGACY_PREFIX "/server/https"
#define PATH_LDAP     LEGACY_PREFIX "/client/ldap"
#define PATH_CA_LDAP  LEGACY_PREFIX "/authority/ldap"

/* The longest path we build: the longest endpoint path, "/", a 64-digit id. */
#define PATH_MAX_LEN 128u
/* A message: a library reason, a warning and a notifier message, with some words around them. */
#define MESSAGE_MAX (3u * 256u + 128u)

struct legacy_endpoint {
    const char *path;
    const char *endpoint; /* the configured endpoint it serves */
    enum endpoint_type type;
};

static const struct legacy_endpoint legacy_endpoints[] = {
    { PATH_HTTPS, "https", ENDPOINT_SERVER },
    { PATH_LDAP, "ldap", ENDPOINT_CLIENT },
    { PATH_CA_LDAP, "truststore", ENDPOINT_AUTHORITY },
};

static const struct legacy_endpoint *route_endpoint(const struct rf_route *route)
{
    for (size_t i = 0; i < ELEMENTSOF(legacy_endpoints); i++) {
        size_t n = strlen(legacy_endpoints[i].path);
        if (strncmp(route->pattern, legacy_endpoints[i].path, n) == 0 &&
            (route->pattern[n] == '\0' || route->pattern[n] == '/')) {
            return &legacy_endpoints[i];
        }
    }
    return NULL;
}

static void cleanup_jsonp(json_t **p)
{
    if (*p) {
        json_decref(*p);
    }
}

/*
 * Text for a JSON string. Library messages are UTF-8 (names from certificates are checked);
 * anything else that slips through is shown with '?' for bytes outside printable ASCII rather
 * than failing the answer.
 */
static json_t *text_json(const char *s)
{
    json_t *v = json_string(s);
    if (v) {
        return v;
    }
    char buf[MESSAGE_MAX];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof(buf); n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    buf[n] = '\0';
    return json_string(buf);
}

/*
 * Answer in phosphor-rest's shape, as redfish.c does for the router's own errors:
 * {"status": "ok"|"error", "message": "<status> <reason>", "data": data}, data (stolen) being
 * {"description": description} when description is given.
 */
static void legacy_respond(struct rf_request *rq, int status, const char *description, json_t *data)
{
    _cleanup_(cleanup_jsonp) json_t *d = data;
    _cleanup_(cleanup_jsonp) json_t *o = json_object();
    char message[64];

    (void)snprintf(message, sizeof(message), "%d %s", status, http_status_reason(status));
    if (!d && description) {
        d = json_object();
        if (!d || json_object_set_new(d, "description", text_json(description)) != 0) {
            rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
            return;
        }
    }
    if (!o || json_object_set_new(o, "status", json_string(status < 300 ? "ok" : "error")) != 0 ||
        json_object_set_new(o, "message", json_string(message)) != 0 ||
        json_object_set_new(o, "data", d ? TAKE_PTR(d) : json_null()) != 0) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    rf_respond(rq, status, TAKE_PTR(o));
}

/* Library error classes to the seed's codes (one table). */
static int legacy_status(const struct certd_err *err)
{
    switch (err_code_class(err->code)) {
    case CERTD_CLASS_INVALID_INPUT:
    case CERTD_CLASS_NOT_ALLOWED:
    case CERTD_CLASS_CONFLICT:
        return 400;
    case CERTD_CLASS_NOT_FOUND:
        return 404;
    case CERTD_CLASS_UNAVAILABLE:
        return 503;
    case CERTD_CLASS_NONE:
    case CERTD_CLASS_INTERNAL:
    case CERTD_CLASS_MAX:
    default:
        return 500;
    }
}

static void legacy_error(struct rf_request *rq, const struct certd_err *err)
{
    int status = legacy_status(err);
    char msg[MESSAGE_MAX];

    if (status >= 500) {
        log_err("%s %s: %s (%s)", http_method_name(rq->method), rq->route->pattern, err->msg,
                err_code_name(err->code));
    }
    (void)snprintf(msg, sizeof(msg), "%s (%s)", err->msg, err_code_name(err->code));
    legacy_respond(rq, status, msg, NULL);
}

static void legacy_busy(struct rf_request *rq)
{
    rf_header(rq, "Retry-After", "1");
    legacy_respond(rq, 503, "the service is busy; retry in 1 second", NULL);
}

/* ---- changes on the worker pool ---- */

struct legacy_job {
    bool is_delete;
    struct rf_request *rq;
    struct manager *m;
    struct endpoint *ep;
    const struct legacy_endpoint *le;
    struct span data;        /* PUT: the upload, borrowed from rq */
    char id[MANAGER_ID_MAX]; /* DELETE: the certificate */
    int r;
    struct certd_err err;
    struct manager_change change;
};

static struct legacy_job *legacy_job_free(struct legacy_job *j)
{
    free(j);
    return NULL;
}
DEFINE_CLEANUP_STRUCT(legacy_job, legacy_job_free)

/* Worker thread: the job's own data and the (thread-safe) manager only. */
static void legacy_run(void *arg)
{
    struct legacy_job *j = arg;

    if (j->is_delete) {
        j->r = manager_delete(j->m, j->ep, j->id, &j->change, &j->err);
    } else {
        j->r = manager_install(j->m, j->ep, j->data, NULL, &j->change, &j->err);
    }
}

static void legacy_notified(void *arg, int result, const char *message)
{
    _cleanup_(cleanup_legacy_job) struct legacy_job *j = arg;
    char msg[MESSAGE_MAX];
    size_t n = 0;

    if (j->is_delete) {
        n = (size_t)snprintf(
            msg, sizeof(msg), "deleted %s/%s%s", j->le->path, j->id,
            j->le->type == ENDPOINT_SERVER ? "; a new self-signed certificate replaces it" : "");
    } else {
        n = (size_t)snprintf(msg, sizeof(msg), "installed %s/%s", j->le->path, j->change.id);
    }
    if (n < sizeof(msg) && j->change.warning[0]) {
        n += (size_t)snprintf(msg + n, sizeof(msg) - n, "; warning: %s", j->change.warning);
    }
    if (n < sizeof(msg) && result < 0) {
        (void)snprintf(msg + n, sizeof(msg) - n,
                       "; warning: the change was stored, but reloading its users failed: %s",
                       message && message[0] ? message : "no reason given");
    }
    legacy_respond(j->rq, 200, msg, NULL);
}

static void legacy_done(void *arg, bool cancelled)
{
    _cleanup_(cleanup_legacy_job) struct legacy_job *j = arg;
    struct rf_request *rq = j->rq;

    if (cancelled) {
        legacy_busy(rq);
        return;
    }
    if (j->r < 0) {
        if (!err_is_set(&j->err)) {
            (void)err_set(&j->err, j->r, CERTD_E_INTERNAL, "the request failed");
        }
        legacy_error(rq, &j->err);
        return;
    }
    log_notice("%s: %s certificate %s on endpoint %s (legacy REST)", rq->who.user,
               j->is_delete ? "deleted" : "installed", j->is_delete ? j->id : j->change.id,
               endpoint_name(j->ep));
    /* legacy_notified owns the job from here; it may run before this returns. */
    struct endpoint *ep = j->ep;
    daemon_endpoint_changed(rq->d, ep, legacy_notified, TAKE_PTR(j));
}

static void legacy_submit(struct rf_request *rq, struct legacy_job *j)
{
    if (worker_submit(rq->d->workers, WORKER_LANE_SERIAL, legacy_run, legacy_done, j) < 0) {
        (void)legacy_job_free(j);
        legacy_busy(rq);
    }
}

/* ---- handlers ---- */

/* The endpoint a route serves; answers 404 itself when the configuration has none. */
static struct endpoint *legacy_find(struct rf_request *rq, const struct legacy_endpoint **ret)
{
    const struct legacy_endpoint *le = route_endpoint(rq->route);
    struct endpoint *ep = le ? manager_endpoint(rq->d->manager, le->endpoint) : NULL;

    if (!ep || endpoint_type(ep) != le->type) {
        legacy_respond(rq, 404, "no such certificate endpoint", NULL);
        return NULL;
    }
    *ret = le;
    return ep;
}

static struct legacy_job *legacy_job_new(struct rf_request *rq, const struct legacy_endpoint *le,
                                         struct endpoint *ep, bool is_delete)
{
    struct legacy_job *j = calloc(1, sizeof(*j));
    if (!j) {
        return NULL;
    }
    j->is_delete = is_delete;
    j->rq = rq;
    j->m = rq->d->manager;
    j->ep = ep;
    j->le = le;
    return j;
}

/* GET: the installed ids as object paths; PUT: install the PEM body. */
static void h_legacy_endpoint(struct rf_request *rq)
{
    const struct legacy_endpoint *le = NULL;
    struct endpoint *ep = legacy_find(rq, &le);
    if (!ep) {
        return;
    }

    if (rq->method == HTTP_METHOD_PUT) {
        struct legacy_job *j = legacy_job_new(rq, le, ep, false);
        if (!j) {
            legacy_respond(rq, 500, "out of memory", NULL);
            return;
        }
        j->data = rq->body;
        legacy_submit(rq, j);
        return;
    }

    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
    _cleanup_(cleanup_jsonp) json_t *paths = json_array();
    if (!paths) {
        legacy_respond(rq, 500, "out of memory", NULL);
        return;
    }
    for (size_t i = 0; i < snap->n; i++) {
        char path[PATH_MAX_LEN];
        (void)snprintf(path, sizeof(path), "%s/%s", le->path, snap->entries[i].id);
        if (json_array_append_new(paths, json_string(path)) != 0) {
            legacy_respond(rq, 500, "out of memory", NULL);
            return;
        }
    }
    legacy_respond(rq, 200, NULL, TAKE_PTR(paths));
}

/* GET: the certificate's PEM (never a key); DELETE: remove it. */
static void h_legacy_cert(struct rf_request *rq)
{
    const struct legacy_endpoint *le = NULL;
    struct endpoint *ep = legacy_find(rq, &le);
    if (!ep) {
        return;
    }
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
    const struct cert_entry *e = ep_snapshot_find(snap, rq->params[0]);
    if (!e) {
        legacy_respond(rq, 404, "no such certificate", NULL);
        return;
    }

    if (rq->method == HTTP_METHOD_DELETE) {
        struct legacy_job *j = legacy_job_new(rq, le, ep, true);
        if (!j) {
            legacy_respond(rq, 500, "out of memory", NULL);
            return;
        }
        memcpy(j->id, e->id, sizeof(j->id));
        legacy_submit(rq, j);
        return;
    }

    json_t *data = json_pack("{s:s%}", "CertificateString", e->pem, e->pem_len);
    if (!data) {
        legacy_respond(rq, 500, "out of memory", NULL);
        return;
    }
    legacy_respond(rq, 200, NULL, data);
}

#define M(x) (1u << HTTP_METHOD_##x)

#define LEGACY_ROUTES(path)                                                                 \
    { .pattern = (path),                                                                    \
      .methods = M(GET) | M(PUT),                                                           \
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN,                                  \
                      [HTTP_METHOD_HEAD] = AUTH_PRIV_LOGIN,                                 \
                      [HTTP_METHOD_PUT] = AUTH_PRIV_CONFIGURE_MANAGER },                    \
      .is_redfish = false,                                                                  \
      .body = RF_BODY_PEM,                                                                  \
      .schema = NULL,                                                                       \
      .handler = h_legacy_endpoint },                                                       \
    {                                                                                       \
        .pattern = path "/{}", .methods = M(GET) | M(DELETE),                               \
        .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN,                                \
                        [HTTP_METHOD_HEAD] = AUTH_PRIV_LOGIN,                               \
                        [HTTP_METHOD_DELETE] = AUTH_PRIV_CONFIGURE_MANAGER },               \
        .is_redfish = false, .body = RF_BODY_NONE, .schema = NULL, .handler = h_legacy_cert \
    }

const struct rf_route legacy_routes[] = {
    LEGACY_ROUTES(PATH_HTTPS),
    LEGACY_ROUTES(PATH_LDAP),
    LEGACY_ROUTES(PATH_CA_LDAP),
    { .pattern = NULL },
};
