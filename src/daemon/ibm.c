/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SignCSR for management consoles (issue #4, seeds 000 and 001), in the forms clients know:
 *   GET  /ibm/v1/                               the IBM service root, as bmcweb serves it
 *   GET  /ibm/v1/Host/Certificate               the SignCSR action's target and the root link
 *   POST /ibm/v1/Host/Actions/SignCSR           {"CsrString": PEM} -> {"Certificate": PEM}
 *   GET  /ibm/v1/Host/Certificate/root          {"Certificate": the CA certificate}
 *   POST /ibm/v1/VMInterface/SignCSR            seed 000
 *   POST /xyz/openbmc_project/HMC/VMInterface/SignCSR   seed 001
 * The seeds' routes take {"data": [CSR]}, {"data": [{"CsrString": CSR}]} or {"CsrString": CSR}
 * and answer phosphor-rest's {"data": [client certificate + CA certificate], "message":
 * "200 OK", "status": "ok"}, errors in the same shape; the /ibm/v1/Host routes answer and fail
 * as Redfish does. Signing needs ConfigureManager and ConfigureComponents (Administrator).
 * The work is ca.h's ca_sign: the answer comes once the certificate is in the issuance log.
 * Errors: a bad CSR 400 with the reason, the helper not ready 503 + Retry-After, the helper
 * failing 502, a full queue 503; 500 only for faults of ours.
 */
#include <string.h>

#include <jansson.h>

#include "ca.h"
#include "redfish.h"

#define IBM_ROOT      "/ibm/v1/"
#define IBM_CERT      "/ibm/v1/Host/Certificate"
#define IBM_CERT_ROOT "/ibm/v1/Host/Certificate/root"
#define IBM_SIGN      "/ibm/v1/Host/Actions/SignCSR"
#define VMI_SIGN      "/ibm/v1/VMInterface/SignCSR"
#define HMC_SIGN      "/xyz/openbmc_project/HMC/VMInterface/SignCSR"

enum sign_form { FORM_IBM, FORM_SEED };

static const enum sign_form form_ibm = FORM_IBM, form_seed = FORM_SEED;

static void h_ibm_root(struct rf_request *rq)
{
    json_t *b = rf_resource_new(IBM_ROOT, "ibmServiceRoot.v1_0_0", "IBM Rest RootService",
                                "IBM Service Root");
    (void)rf_set(&b, "Certificate", rf_link(IBM_CERT));
    rf_respond_200(rq, b);
}

static void h_ibm_cert(struct rf_request *rq)
{
    json_t *b =
        rf_resource_new(IBM_CERT, "ibmHostCertificate.v1_0_0", "Certificate", "Host certificate");
    (void)rf_set(&b, "Actions", json_pack("{s:{s:s}}", "#SignCSR", "target", IBM_SIGN));
    (void)rf_set(&b, "root", rf_link(IBM_CERT_ROOT));
    rf_respond_200(rq, b);
}

static void h_ibm_cert_root(struct rf_request *rq)
{
    _cleanup_(cleanup_ca_public) struct ca_public *p = ca_public(rq->d->ca);
    if (!p || !p->ca_pem) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, IBM_CERT_ROOT, NULL);
        return;
    }
    rf_respond_200(rq, json_pack("{s:s%}", "Certificate", p->ca_pem, p->ca_pem_len));
}

static void sign_answer(const struct ca_sign_result *res, void *arg)
{
    struct rf_request *rq = arg;
    const enum sign_form *form = rq->route->data;

    if (res->r < 0) {
        rf_error_certd(rq, &res->err, *form == FORM_IBM ? "CsrString" : NULL);
        return;
    }
    if (*form == FORM_IBM) {
        rf_respond_200(rq, json_pack("{s:s%}", "Certificate", res->cert_pem, res->cert_pem_len));
        return;
    }
    /* Seed 000: one string, the client certificate and then the CA certificate. */
    size_t ca_len = res->pub && res->pub->ca_pem ? res->pub->ca_pem_len : 0;
    char *both = malloc(res->cert_pem_len + ca_len + 1);
    if (!both) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    memcpy(both, res->cert_pem, res->cert_pem_len);
    if (ca_len) {
        memcpy(both + res->cert_pem_len, res->pub->ca_pem, ca_len);
    }
    json_t *data = json_pack("[s%]", both, res->cert_pem_len + ca_len);
    free(both);
    if (!data) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    rf_respond_legacy(rq, NULL, data);
}

/* The CSR of a seed-form body, or NULL after answering 400. */
static const char *seed_csr(struct rf_request *rq)
{
    json_t *data = json_object_get(rq->json, "data");
    json_t *v = NULL;

    if (data) {
        if (!json_is_array(data) || json_array_size(data) != 1 || json_object_size(rq->json) != 1) {
            rf_errorf(rq, 400, RF_MSG_PROPERTY_VALUE_FORMAT_ERROR, "(array)", "data", NULL);
            return NULL;
        }
        v = json_array_get(data, 0);
        if (json_is_object(v)) {
            if (json_object_size(v) != 1 || !json_is_string(json_object_get(v, "CsrString"))) {
                rf_errorf(rq, 400, RF_MSG_PROPERTY_MISSING, "CsrString", NULL);
                return NULL;
            }
            v = json_object_get(v, "CsrString");
        } else if (!json_is_string(v)) {
            rf_errorf(rq, 400, RF_MSG_PROPERTY_VALUE_TYPE_ERROR, "(value)", "data", NULL);
            return NULL;
        }
        return json_string_value(v);
    }
    const char *csr = NULL;
    static const char *const known[] = { "CsrString", NULL };
    if (!rf_check_known(rq, NULL, known) || !rf_get_string(rq, NULL, "CsrString", true, &csr)) {
        return NULL;
    }
    return csr;
}

static void h_sign(struct rf_request *rq)
{
    const enum sign_form *form = rq->route->data;
    const char *csr = NULL;

    if (*form == FORM_IBM) {
        static const char *const known[] = { "CsrString", NULL };
        if (!rf_check_known(rq, "SignCSR", known) ||
            !rf_get_string(rq, "SignCSR", "CsrString", true, &csr)) {
            return;
        }
    } else if (!(csr = seed_csr(rq))) {
        return;
    }
    int r = ca_sign(rq->d->ca, span_from_str(csr), rq->who.user, sign_answer, rq);
    if (r == -EAGAIN) {
        rf_error_busy(rq);
    } else if (r < 0) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
    }
}

#define M(x)       (1u << HTTP_METHOD_##x)
#define SIGN_PRIVS (AUTH_PRIV_CONFIGURE_MANAGER | AUTH_PRIV_CONFIGURE_COMPONENTS)

const struct rf_route ibm_routes[] = {
    { .pattern = "/ibm/v1",
      .methods = M(GET),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN },
      .is_redfish = true,
      .handler = h_ibm_root },
    { .pattern = IBM_CERT,
      .methods = M(GET),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN },
      .is_redfish = true,
      .handler = h_ibm_cert },
    { .pattern = IBM_CERT_ROOT,
      .methods = M(GET),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN },
      .is_redfish = true,
      .handler = h_ibm_cert_root },
    { .pattern = IBM_SIGN,
      .methods = M(POST),
      .privileges = { [HTTP_METHOD_POST] = SIGN_PRIVS },
      .is_redfish = true,
      .body = RF_BODY_JSON,
      .handler = h_sign,
      .data = &form_ibm },
    { .pattern = VMI_SIGN,
      .methods = M(POST),
      .privileges = { [HTTP_METHOD_POST] = SIGN_PRIVS },
      .is_redfish = false,
      .body = RF_BODY_JSON,
      .handler = h_sign,
      .data = &form_seed },
    { .pattern = HMC_SIGN,
      .methods = M(POST),
      .privileges = { [HTTP_METHOD_POST] = SIGN_PRIVS },
      .is_redfish = false,
      .body = RF_BODY_JSON,
      .handler = h_sign,
      .data = &form_seed },
    { .pattern = NULL },
};
