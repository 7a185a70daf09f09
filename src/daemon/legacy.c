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
 * "data": {"description": ...} or the data asked for}: successes from rf_respond_legacy, errors
 * from redfish.c's rf_error*() (one table for both APIs), with the seed's codes: 200, 400 for an
 * upload the library refuses (with its specific reason, never the upload), 404 for an unknown
 * id, 405 for a method (the router), 503 when the worker queue is full, and 500 only for faults
 * of ours (storage, memory), whose details stay in the log.
 *
 * Invariants: changes are rf-cert.c's (rf_change_install/_delete): on the worker pool's serial
 * lane, answered only after the endpoint's notifier reported (a failure is a warning in the
 * description; the change stands), the upload read straight from the request. No private key
 * is ever rendered.
 */
#include <stdio.h>

#include <jansson.h>

#include "manager.h"
#include "redfish.h"

#define LEGACY_PREFIX "/xyz/openbmc_project/certs"
#define PATH_HTTPS    LEGACY_PREFIX "/server/https"
#define PATH_LDAP     LEGACY_PREFIX "/client/ldap"
#define PATH_CA_LDAP  LEGACY_PREFIX "/authority/ldap"

/* The longest path we build: the longest endpoint path, "/", a 64-digit id. */
#define PATH_MAX_LEN 128u
/* A description: a path, a library warning and a reload warning, with some words around. */
#define DESCRIPTION_MAX (PATH_MAX_LEN + 256u + NOTIFIER_MESSAGE_MAX + 256u)

/* A route's data: the object path and the endpoint it shows. */
struct legacy_endpoint {
    const char *path;
    enum rf_cert_ep endpoint;
};

static const struct legacy_endpoint legacy_endpoints[RF_CERT_EP_MAX] = {
    [RF_CERT_EP_HTTPS] = { PATH_HTTPS, RF_CERT_EP_HTTPS },
    [RF_CERT_EP_LDAP] = { PATH_LDAP, RF_CERT_EP_LDAP },
    [RF_CERT_EP_TRUSTSTORE] = { PATH_CA_LDAP, RF_CERT_EP_TRUSTSTORE },
};

/* The endpoint a route serves; answers 404 itself when the configuration has none. */
static struct endpoint *legacy_find(struct rf_request *rq)
{
    const struct legacy_endpoint *le = rq->route->data;
    struct endpoint *ep = rf_cert_endpoint(rq->d, le->endpoint);

    if (!ep) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, http_request_path(rq->http), NULL);
    }
    return ep;
}

/* A change is done: say what it did, and its warnings. */
static void legacy_answer(struct rf_request *rq, const struct rf_change *c)
{
    const struct legacy_endpoint *le = c->ctx;
    char text[DESCRIPTION_MAX];
    size_t n;

    if (c->is_delete) {
        n = (size_t)snprintf(text, sizeof(text), "deleted %s/%s%s", le->path, c->id,
                             endpoint_type(c->ep) == ENDPOINT_SERVER
                                 ? "; a new self-signed certificate replaces it"
                                 : "");
    } else {
        n = (size_t)snprintf(text, sizeof(text), "installed %s/%s", le->path, c->id);
    }
    for (size_t i = 0; i < c->n_warnings && n < sizeof(text); i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "; warning: %s", c->warnings[i]);
    }
    rf_respond_legacy(rq, text, NULL);
}

/* GET: the installed ids as object paths; PUT: install the PEM body. */
static void h_legacy_endpoint(struct rf_request *rq)
{
    const struct legacy_endpoint *le = rq->route->data;
    struct endpoint *ep = legacy_find(rq);
    if (!ep) {
        return;
    }
    if (rq->method == HTTP_METHOD_PUT) {
        rf_change_install(rq, ep, rq->body, NULL, NULL, legacy_answer, le);
        return;
    }

    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
    json_t *paths = json_array();
    for (size_t i = 0; i < snap->n; i++) {
        char path[PATH_MAX_LEN];
        (void)snprintf(path, sizeof(path), "%s/%s", le->path, snap->entries[i].id);
        (void)rf_append(&paths, json_string(path));
    }
    if (!paths) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    rf_respond_legacy(rq, NULL, paths);
}

/* GET: the certificate's PEM (never a key); DELETE: remove it. */
static void h_legacy_cert(struct rf_request *rq)
{
    struct endpoint *ep = legacy_find(rq);
    if (!ep) {
        return;
    }
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
    const struct cert_entry *e = ep_snapshot_find(snap, rq->params[0]);
    if (!e) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, http_request_path(rq->http), NULL);
        return;
    }

    if (rq->method == HTTP_METHOD_DELETE) {
        rf_change_delete(rq, ep, e->id, legacy_answer, rq->route->data);
        return;
    }
    json_t *data = json_pack("{s:s%}", "CertificateString", e->pem, e->pem_len);
    if (!data) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    rf_respond_legacy(rq, NULL, data);
}

#define M(x) (1u << HTTP_METHOD_##x)

#define LEGACY_ROUTES(path, le)                                                              \
    { .pattern = (path),                                                                     \
      .methods = M(GET) | M(PUT),                                                            \
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN,                                   \
                      [HTTP_METHOD_HEAD] = AUTH_PRIV_LOGIN,                                  \
                      [HTTP_METHOD_PUT] = AUTH_PRIV_CONFIGURE_MANAGER },                     \
      .is_redfish = false,                                                                   \
      .body = RF_BODY_PEM,                                                                   \
      .schema = NULL,                                                                        \
      .handler = h_legacy_endpoint,                                                          \
      .data = (le) },                                                                        \
    {                                                                                        \
        .pattern = path "/{}", .methods = M(GET) | M(DELETE),                                \
        .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN,                                 \
                        [HTTP_METHOD_HEAD] = AUTH_PRIV_LOGIN,                                \
                        [HTTP_METHOD_DELETE] = AUTH_PRIV_CONFIGURE_MANAGER },                \
        .is_redfish = false, .body = RF_BODY_NONE, .schema = NULL, .handler = h_legacy_cert, \
        .data = (le)                                                                         \
    }

const struct rf_route legacy_routes[] = {
    LEGACY_ROUTES(PATH_HTTPS, &legacy_endpoints[RF_CERT_EP_HTTPS]),
    LEGACY_ROUTES(PATH_LDAP, &legacy_endpoints[RF_CERT_EP_LDAP]),
    LEGACY_ROUTES(PATH_CA_LDAP, &legacy_endpoints[RF_CERT_EP_TRUSTSTORE]),
    { .pattern = NULL },
};
