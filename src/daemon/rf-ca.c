/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CA in Redfish, as an OEM extension (issue #4; there is no DMTF schema for a CA):
 *   GET  /redfish/v1/Oem/Certd/CertificateAuthority
 *        {Signer, CertificateString (the CA certificate), Subject, ValidNotAfter, CRL link,
 *         IssuedCertificates link, Actions: #CertdCertificateAuthority.Revoke}
 *   GET  .../IssuedCertificates            every certificate in the issuance log
 *   GET  .../IssuedCertificates/{serial}   one: SerialNumber, Subject, AlternativeNames,
 *        ValidNotBefore/After, IssuedAt, Requester, Status (Valid, Revoked), RevocationReason,
 *        RevokedAt, CertificateString
 *   POST .../Actions/CertdCertificateAuthority.Revoke  {"SerialNumber": hex,
 *        "RevocationReason": RFC 5280 name (default "unspecified")} -> 200 and the new state
 *   GET  .../CRL   the current CRL, DER (application/pkix-crl), or PEM when the client
 *        accepts application/x-pem-file; public, as a CRL distribution point must be.
 * Reading the log and revoking run on the worker pool's serial lane (ca.h).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "ca.h"
#include "log/log.h"
#include "redfish.h"
#include "worker.h"
#include "x509/inspect.h"

#define CA_URI      "/redfish/v1/Oem/Certd/CertificateAuthority"
#define ISSUED_URI  CA_URI "/IssuedCertificates"
#define CRL_URI     CA_URI "/CRL"
#define REVOKE_NAME "CertdCertificateAuthority.Revoke"
#define REVOKE_URI  CA_URI "/Actions/" REVOKE_NAME
#define CA_TYPE     "CertdCertificateAuthority.v1_0_0"
#define ISSUED_TYPE "CertdIssuedCertificate.v1_0_0"

/* The CA must exist for anything here but its own description. */
static bool ca_usable(struct rf_request *rq)
{
    if (ca_signer(rq->d->ca) == CONFIG_SIGNER_OFF) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, http_request_path(rq->http), NULL);
        return false;
    }
    return true;
}

static void h_ca(struct rf_request *rq)
{
    _cleanup_(cleanup_ca_public) struct ca_public *p = ca_public(rq->d->ca);
    enum config_signer s = ca_signer(rq->d->ca);
    char when[32] = "";

    json_t *b = rf_resource_new(CA_URI, CA_TYPE, "CertificateAuthority", "Certificate Authority");
    (void)rf_set_str(&b, "Signer", config_signer_name(s));
    if (p && p->ca_pem) {
        unix_to_iso8601(p->not_after, when, sizeof(when));
        (void)rf_set(&b, "CertificateString", json_stringn(p->ca_pem, p->ca_pem_len));
        (void)rf_set_str(&b, "Subject", p->subject);
        (void)rf_set_str(&b, "ValidNotAfter", when);
    }
    if (s != CONFIG_SIGNER_OFF) {
        (void)rf_set(&b, "IssuedCertificates", rf_link(ISSUED_URI));
    }
    if (s == CONFIG_SIGNER_LOCAL) {
        (void)rf_set(&b, "CRL", rf_link(CRL_URI));
        (void)rf_set(&b, "Actions", json_pack("{s:{s:s}}", "#" REVOKE_NAME, "target", REVOKE_URI));
    }
    rf_respond_200(rq, b);
}

/* ---- the log, read on the serial lane ---- */

static json_t *record_json(const struct cadb_cert *c, bool full)
{
    char uri[sizeof(ISSUED_URI) + CADB_SERIAL_MAX + 1];
    char nb[32], na[32], at[32], rv[32];

    (void)snprintf(uri, sizeof(uri), "%s/%s", ISSUED_URI, c->serial);
    unix_to_iso8601(c->not_before, nb, sizeof(nb));
    unix_to_iso8601(c->not_after, na, sizeof(na));
    unix_to_iso8601(c->issued_at, at, sizeof(at));
    json_t *b = rf_resource_new(uri, ISSUED_TYPE, c->serial, "Issued certificate");
    (void)rf_set_str(&b, "SerialNumber", c->serial);
    (void)rf_set_str(&b, "Subject", c->subject);
    (void)rf_set_str(&b, "AlternativeNames", c->sans);
    (void)rf_set_str(&b, "ValidNotBefore", nb);
    (void)rf_set_str(&b, "ValidNotAfter", na);
    (void)rf_set_str(&b, "IssuedAt", at);
    (void)rf_set_str(&b, "Requester", c->requester);
    (void)rf_set_str(&b, "Status", c->status == CADB_REVOKED ? "Revoked" : "Valid");
    if (c->status == CADB_REVOKED) {
        unix_to_iso8601(c->revoked_at, rv, sizeof(rv));
        (void)rf_set_str(&b, "RevocationReason", cadb_reason_name(c->reason));
        (void)rf_set_str(&b, "RevokedAt", rv);
    }
    if (full) {
        (void)rf_set_str(&b, "CertificateString", c->pem);
    }
    return b;
}

struct list_job {
    struct rf_request *rq;
    char serial[CADB_SERIAL_MAX]; /* "" for the whole collection */
    /* revoke */
    bool is_revoke;
    int reason;
    /* the outcome */
    int r;
    struct certd_err err;
    json_t *body;
};

static int list_one(const struct cadb_cert *c, void *arg)
{
    struct list_job *j = arg;
    char uri[sizeof(ISSUED_URI) + CADB_SERIAL_MAX + 1];
    (void)snprintf(uri, sizeof(uri), "%s/%s", ISSUED_URI, c->serial);
    return rf_members_add(j->body, uri) ? 0 : -ENOMEM;
}

/* The record of one serial as JSON, or the collection: j->body (NULL when not found). */
static void list_run(void *arg)
{
    struct list_job *j = arg;
    if (j->is_revoke) {
        j->r = ca_revoke(j->rq->d->ca, j->serial, j->reason, &j->err);
        if (j->r < 0) {
            return;
        }
    }
    int r;
    if (j->serial[0]) {
        _cleanup_(cleanup_cadb_cert) struct cadb_cert *c = NULL;
        r = ca_get(j->rq->d->ca, j->serial, &c);
        if (r == -ENOENT) {
            return; /* no body: 404 */
        }
        if (r >= 0) {
            j->body = record_json(c, true);
            r = j->body ? 0 : -ENOMEM;
        }
    } else {
        j->body = rf_collection_new(ISSUED_URI, "CertdIssuedCertificateCollection",
                                    "Issued certificates");
        r = !j->body ? -ENOMEM : ca_each(j->rq->d->ca, CADB_ALL, list_one, j);
        if (r >= 0) {
            j->body = rf_collection_done(j->body);
            r = j->body ? 0 : -ENOMEM;
        }
    }
    if (r < 0) {
        json_decref(j->body);
        j->body = NULL;
        j->r = err_set(&j->err, r, r == -ENOMEM ? CERTD_E_NO_MEMORY : CERTD_E_STORAGE,
                       "cannot read the issuance log: %s", strerror(-r));
    }
}

static void list_done(void *arg, bool cancelled)
{
    struct list_job *j = arg;
    struct rf_request *rq = j->rq;

    if (cancelled) {
        rf_error_busy(rq);
    } else if (j->r < 0) {
        rf_error_certd(rq, &j->err, j->is_revoke ? "SerialNumber" : NULL);
    } else if (!j->body) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, http_request_path(rq->http), NULL);
    } else {
        rf_respond_200(rq, j->body);
        j->body = NULL;
    }
    json_decref(j->body);
    free(j);
}

static void list_submit(struct rf_request *rq, struct list_job *j)
{
    j->rq = rq;
    if (worker_submit(rq->d->workers, WORKER_LANE_SERIAL, list_run, list_done, j) < 0) {
        free(j);
        rf_error_busy(rq);
    }
}

static void h_issued(struct rf_request *rq)
{
    if (!ca_usable(rq)) {
        return;
    }
    struct list_job *j = calloc(1, sizeof(*j));
    if (!j) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    list_submit(rq, j);
}

static void h_issued_one(struct rf_request *rq)
{
    if (!ca_usable(rq)) {
        return;
    }
    struct list_job *j = calloc(1, sizeof(*j));
    if (!j) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    if (cadb_serial_parse(rq->params[0], j->serial) < 0) {
        free(j);
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, http_request_path(rq->http), NULL);
        return;
    }
    list_submit(rq, j);
}

static void h_revoke(struct rf_request *rq)
{
    static const char *const known[] = { "SerialNumber", "RevocationReason", NULL };
    const char *serial = NULL, *reason = NULL;
    int code = CADB_REASON_UNSPECIFIED;

    if (!ca_usable(rq) || !rf_check_known(rq, REVOKE_NAME, known) ||
        !rf_get_string(rq, REVOKE_NAME, "SerialNumber", true, &serial) ||
        !rf_get_string(rq, REVOKE_NAME, "RevocationReason", false, &reason)) {
        return;
    }
    if (reason && cadb_reason_from_name(reason, &code) < 0) {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_FORMAT_ERROR, reason, "RevocationReason",
                  REVOKE_NAME, NULL);
        return;
    }
    struct list_job *j = calloc(1, sizeof(*j));
    if (!j) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    if (cadb_serial_parse(serial, j->serial) < 0) {
        free(j);
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_FORMAT_ERROR, serial, "SerialNumber",
                  REVOKE_NAME, NULL);
        return;
    }
    j->is_revoke = true;
    j->reason = code;
    list_submit(rq, j);
}

/* ---- the CRL: public ---- */

static bool accepts_pem(const struct rf_request *rq)
{
    const char *accept = http_request_header(rq->http, "Accept");
    return accept && strstr(accept, "application/x-pem-file") != NULL;
}

static void crl_answer(struct rf_request *rq, const struct ca_public *p)
{
    if (accepts_pem(rq)) {
        rf_respond_raw(rq, 200, "application/x-pem-file", p->crl_pem, p->crl_pem_len);
    } else {
        rf_respond_raw(rq, 200, "application/pkix-crl", p->crl_der, p->crl_der_len);
    }
}

struct crl_job {
    struct rf_request *rq;
    int r;
    struct certd_err err;
};

static void crl_make_run(void *arg)
{
    struct crl_job *j = arg;
    _cleanup_(cleanup_ca_public) struct ca_public *p = ca_public(j->rq->d->ca);
    /* Requests that waited for the first CRL: the serial lane made it for the first of them. */
    if (p && p->crl_der) {
        return;
    }
    j->r = ca_refresh_crl(j->rq->d->ca, &j->err);
}

static void crl_make_done(void *arg, bool cancelled)
{
    struct crl_job *j = arg;
    struct rf_request *rq = j->rq;
    _cleanup_(cleanup_ca_public) struct ca_public *p = ca_public(rq->d->ca);

    if (cancelled) {
        rf_error_busy(rq);
    } else if (p && p->crl_der) {
        crl_answer(rq, p);
    } else {
        rf_error_certd(rq, &j->err, NULL);
    }
    free(j);
}

static void h_crl(struct rf_request *rq)
{
    _cleanup_(cleanup_ca_public) struct ca_public *p = ca_public(rq->d->ca);
    if (p && p->crl_der) {
        crl_answer(rq, p);
        return;
    }
    if (ca_signer(rq->d->ca) != CONFIG_SIGNER_LOCAL) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, CRL_URI, NULL);
        return;
    }
    /* Nothing was ever revoked: the first CRL is made now (on the serial lane: the log). */
    struct crl_job *j = calloc(1, sizeof(*j));
    if (!j) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    j->rq = rq;
    if (worker_submit(rq->d->workers, WORKER_LANE_SERIAL, crl_make_run, crl_make_done, j) < 0) {
        free(j);
        rf_error_busy(rq);
    }
}

#define M(x) (1u << HTTP_METHOD_##x)

const struct rf_route rf_ca_routes[] = {
    { .pattern = CA_URI,
      .methods = M(GET),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN },
      .is_redfish = true,
      .handler = h_ca },
    { .pattern = ISSUED_URI,
      .methods = M(GET),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_CONFIGURE_MANAGER },
      .is_redfish = true,
      .handler = h_issued },
    { .pattern = ISSUED_URI "/{}",
      .methods = M(GET),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_CONFIGURE_MANAGER },
      .is_redfish = true,
      .handler = h_issued_one },
    { .pattern = REVOKE_URI,
      .methods = M(POST),
      .privileges = { [HTTP_METHOD_POST] =
                          AUTH_PRIV_CONFIGURE_MANAGER | AUTH_PRIV_CONFIGURE_COMPONENTS },
      .is_redfish = true,
      .body = RF_BODY_JSON,
      .handler = h_revoke },
    { .pattern = CRL_URI,
      .methods = M(GET),
      .is_public = true,
      .is_redfish = true,
      .handler = h_crl },
    { .pattern = NULL },
};
