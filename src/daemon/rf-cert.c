/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redfish certificate resources (issue #3): CertificateService with GenerateCSR and
 * ReplaceCertificate, CertificateLocations, the ActionInfo resources, and for every certificate
 * endpoint its CertificateCollection and Certificate members with Rekey and Renew. Also the
 * certificate endpoints and changes that the legacy REST API (legacy.c) shares (redfish.h).
 * Re-enrolment without losing connectivity (issue #6), on server and client certificates: the
 * pins of the current and the next keys (Oem.Certd KeyPin, NextKeyPins) and two OEM actions
 * (DSP0266: under Actions.Oem, targets below .../Actions/Oem/): PrepareNextKey, a Rekey that
 * also answers the new key's pin, and SelfSign, a self-signed certificate for the current key
 * (a renewal: pins survive) or for a pending key (the switch of a key rotation).
 *
 * Invariants:
 *  - One table (locations[]) maps the endpoints of cert_endpoints[] to collection URIs; the
 *    routes (their data), links, CertificateLocations and the URIs accepted in action parameters
 *    (through the router, rf_route_lookup) all come from it. An endpoint missing from the
 *    configuration (or of another type) makes its URIs 404.
 *  - Resources are rendered from one endpoint snapshot taken for the request, so a body never
 *    mixes two generations and CertificateLocations never links to a certificate that is gone.
 *  - The loop thread never waits: every change runs on the worker pool's serial lane and every
 *    CSR (GenerateCSR, Rekey, Renew) on the parallel lane; the handler answers from the job's
 *    done callback. A change is answered only after the endpoint's notifier reported; its
 *    failure becomes a warning in the answer, and the change stands.
 *  - A job reads its inputs straight from the request (rq->json, rq->body): the request is
 *    answered, and so freed, only from the job's done callback, after run returned; run only
 *    reads them. No upload is copied, logged or echoed; no private key is ever rendered.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "csr/csr.h"
#include "log/log.h"
#include "manager.h"
#include "pin/pin.h"
#include "redfish.h"
#include "util/limits.h"
#include "x509/inspect.h"

/* ---- URIs and schema versions (the newest in shared/redfish-schema) ---- */

#define URI_SERVICE          "/redfish/v1/CertificateService"
#define URI_LOCATIONS        URI_SERVICE "/CertificateLocations"
#define URI_GENERATE_CSR     URI_SERVICE "/Actions/CertificateService.GenerateCSR"
#define URI_REPLACE          URI_SERVICE "/Actions/CertificateService.ReplaceCertificate"
#define URI_GENERATE_CSR_AI  URI_SERVICE "/GenerateCSRActionInfo"
#define URI_REPLACE_AI       URI_SERVICE "/ReplaceCertificateActionInfo"
#define URI_HTTPS            "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates"
#define URI_LDAP             "/redfish/v1/AccountService/LDAP/Certificates"
#define URI_TRUSTED          "/redfish/v1/Managers/bmc/SecurityPolicy/TLS/Server/TrustedCertificates"
#define URI_TRUSTSTORE_ALIAS "/redfish/v1/Managers/bmc/Truststore/Certificates"

#define ACTION_GENERATE_CSR "CertificateService.GenerateCSR"
#define ACTION_REPLACE      "CertificateService.ReplaceCertificate"
#define ACTION_REKEY        "Certificate.Rekey"
#define ACTION_RENEW        "Certificate.Renew"
/* certd's OEM extension of Certificate (docs/schemas/CertdCertificate.v1_0_0.json). */
#define OEM_CERT_TYPE    "#CertdCertificate.v1_0_0.CertdCertificate"
#define ACTION_NEXT_KEY  "CertdCertificate.PrepareNextKey"
#define ACTION_SELF_SIGN "CertdCertificate.SelfSign"
#define PART_NEXT_KEY    "/Actions/Oem/" ACTION_NEXT_KEY
#define PART_SELF_SIGN   "/Actions/Oem/" ACTION_SELF_SIGN

/* Below a member, and the route patterns below a collection. */
#define PART_REKEY    "/Actions/" ACTION_REKEY
#define PART_RENEW    "/Actions/" ACTION_RENEW
#define PART_REKEY_AI "/RekeyActionInfo"
#define PART_RENEW_AI "/RenewActionInfo"
#define SUB_MEMBER    "/{}"
#define SUB_REKEY     SUB_MEMBER PART_REKEY
#define SUB_RENEW     SUB_MEMBER PART_RENEW
#define SUB_REKEY_AI  SUB_MEMBER PART_REKEY_AI
#define SUB_RENEW_AI  SUB_MEMBER PART_RENEW_AI
#define SUB_NEXT_KEY  SUB_MEMBER PART_NEXT_KEY
#define SUB_SELF_SIGN SUB_MEMBER PART_SELF_SIGN

#define SCHEMA_CERT       "Certificate.v1_11_0"
#define SCHEMA_COLLECTION "CertificateCollection"
#define SCHEMA_SERVICE    "CertificateService.v1_2_1"
#define SCHEMA_LOCATIONS  "CertificateLocations.v1_0_4"
#define SCHEMA_AI         "ActionInfo.v1_5_0"

/* Every URI we build: the longest collection, "/", an id (a route parameter at most), the
 * longest suffix. */
#define URI_MAX 256u
_Static_assert(sizeof(URI_TRUSTED) + RF_PARAM_MAX + sizeof(PART_NEXT_KEY) <= URI_MAX,
               "URI_MAX holds every member URI");

/* Redfish's FingerprintHashAlgorithm: a TCG_ALG_ID name; cert_info's fingerprint is SHA-256. */
#define FINGERPRINT_ALG "TPM_ALG_SHA256"

/* ---- endpoints and locations ---- */

/* The configured endpoint behind each certificate URI of both APIs, and the type it must have. */
static const struct {
    const char *name;
    enum endpoint_type type;
} cert_endpoints[RF_CERT_EP_MAX] = {
    [RF_CERT_EP_HTTPS] = { "https", ENDPOINT_SERVER },
    [RF_CERT_EP_LDAP] = { "ldap", ENDPOINT_CLIENT },
    [RF_CERT_EP_TRUSTSTORE] = { "truststore", ENDPOINT_AUTHORITY },
};

struct endpoint *rf_cert_endpoint(struct daemon *d, enum rf_cert_ep which)
{
    struct endpoint *ep;

    assert_return((unsigned)which < RF_CERT_EP_MAX, NULL);
    ep = manager_endpoint(d->manager, cert_endpoints[which].name);
    if (!ep || endpoint_type(ep) != cert_endpoints[which].type) {
        return NULL;
    }
    return ep;
}

struct cert_location {
    const char *uri; /* the collection */
    enum rf_cert_ep endpoint;
    const char *name;        /* collection Name */
    const char *member_name; /* Certificate Name */
    bool is_alias; /* bmcweb's non-standard URI: served, but not linked from CertificateLocations */
};

enum { LOC_HTTPS, LOC_LDAP, LOC_TRUSTED, LOC_TRUSTSTORE_ALIAS, LOC_MAX };

static const struct cert_location locations[LOC_MAX] = {
    [LOC_HTTPS] = { URI_HTTPS, RF_CERT_EP_HTTPS, "HTTPS Certificates", "HTTPS Certificate", false },
    [LOC_LDAP] = { URI_LDAP, RF_CERT_EP_LDAP, "LDAP Certificates", "LDAP Certificate", false },
    [LOC_TRUSTED] = { URI_TRUSTED, RF_CERT_EP_TRUSTSTORE, "Trusted Certificates",
                      "Trusted Certificate", false },
    [LOC_TRUSTSTORE_ALIAS] = { URI_TRUSTSTORE_ALIAS, RF_CERT_EP_TRUSTSTORE,
                               "TrustStore Certificates", "TrustStore Certificate", true },
};

static enum endpoint_type location_type(const struct cert_location *loc)
{
    return cert_endpoints[loc->endpoint].type;
}

/* "<collection>/<id><suffix>" into buf; URI_MAX holds it (id: a route parameter at most). */
static void member_uri(const struct cert_location *loc, const char *id, const char *suffix,
                       char buf[static URI_MAX])
{
    (void)snprintf(buf, URI_MAX, "%s/%.*s%s", loc->uri, (int)RF_PARAM_MAX, id,
                   suffix ? suffix : "");
}

/* ---- JSON building (the chains of redfish.h) ---- */

static json_t *string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        (void)rf_append(&a, json_string(v[i]));
    }
    return a;
}

static void append_list(json_t **a, const struct str_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        (void)rf_append(a, json_string(l->v[i]));
    }
}

/* Memory ran out, or an invariant broke (logged where it did): 500 InternalError. */
static void respond_internal(struct rf_request *rq)
{
    rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
}

/* ---- rendering certificates ---- */

/* The Redfish KeyUsage enum (Certificate.json), key usages first, then extended key usages. */
/* KeyUsage names for what the certificate carries, from the library's one Redfish name table. */
static json_t *key_usage_array(const struct cert_info *ci)
{
    const char *names[CSR_REDFISH_KEY_USAGES_MAX];
    size_t n = key_usage_to_redfish(ci->has_key_usage ? ci->key_usage : 0,
                                    ci->has_eku ? ci->eku : 0, names, ELEMENTSOF(names));
    return string_array(names, n);
}

/* Certificate Identifier; alternative names only for the subject (the schema forbids them in
 * Issuer). */
static json_t *identifier(const struct cert_name *n, const struct cert_info *sans)
{
    json_t *o = json_object();
    (void)rf_set_str(&o, "CommonName", n->common_name);
    (void)rf_set_str(&o, "Organization", n->organization);
    (void)rf_set_str(&o, "OrganizationalUnit", n->organizational_unit);
    (void)rf_set_str(&o, "City", n->locality);
    (void)rf_set_str(&o, "State", n->state);
    (void)rf_set_str(&o, "Country", n->country);
    (void)rf_set_str(&o, "Email", n->email);
    (void)rf_set_str(&o, "DisplayString", n->rfc4514);
    if (sans && sans->san_dns.n + sans->san_ip.n + sans->san_email.n + sans->san_uri.n > 0) {
        json_t *a = json_array();
        append_list(&a, &sans->san_dns);
        append_list(&a, &sans->san_ip);
        append_list(&a, &sans->san_email);
        append_list(&a, &sans->san_uri);
        (void)rf_set(&o, "AlternativeNames", a);
    }
    return o;
}

static json_t *action_object(const char *target, const char *action_info)
{
    json_t *o = json_object();
    (void)rf_set_str(&o, "target", target);
    (void)rf_set_str(&o, "@Redfish.ActionInfo", action_info);
    return o;
}

/*
 * SerialNumber as Certificate's schema patterns it: hex bytes separated by colons
 * ("0A:1B:..."). cert_info gives upper-case hex without separators; a negative serial (RFC 5280
 * forbids them, old CAs made some) cannot be written so and is left out (NULL, ret untouched).
 * Returns 0 or -ENOMEM; *ret owned.
 */
static int serial_colons(const char *hex, char **ret)
{
    size_t n = strlen(hex);
    if (n == 0 || hex[0] == '-') {
        *ret = NULL;
        return 0;
    }
    bool is_odd = n % 2 == 1;
    size_t bytes = (n + 1) / 2;
    char *out = malloc(bytes * 3);
    if (!out) {
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < bytes; i++) {
        if (i > 0) {
            out[k++] = ':';
        }
        /* An odd count gets its leading zero in the first byte. */
        out[k++] = i == 0 && is_odd ? '0' : hex[2 * i - (is_odd ? 1 : 0)];
        out[k++] = hex[2 * i + (is_odd ? 0 : 1)];
    }
    out[k] = '\0';
    *ret = out;
    return 0;
}

/* A pin as Redfish shows it ("sha256//BASE64"), or NULL when memory ran out. */
static json_t *pin_json(const struct pin *p)
{
    char buf[PIN_STR_MAX];
    pin_format(p, buf, sizeof(buf));
    return json_string(buf);
}

/*
 * Oem.Certd of a server or client certificate: where its key lives (issue #5: its provider
 * and URI, never the key), the pin of that key, and the pins of the keys waiting to follow it,
 * newest first (issue #6: what pinned clients add before a switch). NULL when memory ran out.
 */
static json_t *oem_body(const struct endpoint *ep, const struct ep_snapshot *snap)
{
    char provider[KEY_PROVIDER_NAME_MAX + 1];
    char key_uri[CONFIG_PATH_MAX + 8];
    struct pin next[MANAGER_PENDING_MAX];
    size_t n = endpoint_pending_pins(ep, next, ELEMENTSOF(next));

    endpoint_key_location(ep, snap, provider, sizeof(provider), key_uri, sizeof(key_uri));
    json_t *o = json_pack("{s:s, s:s, s:s}", "@odata.type", OEM_CERT_TYPE, "KeyProvider", provider,
                          "KeyLocation", key_uri);
    (void)rf_set(&o, "KeyPin", pin_json(&snap->key_pin));
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        (void)rf_append(&a, pin_json(&next[i]));
    }
    (void)rf_set(&o, "NextKeyPins", a);
    return o;
}

/* The Certificate resource for entry e of snap, at loc (the URI the client used). */
static json_t *cert_body(const struct cert_location *loc, const struct endpoint *ep,
                         const struct ep_snapshot *snap, const struct cert_entry *e)
{
    const struct cert_info *ci = e->info;
    _cleanup_free_ char *serial = NULL;
    char uri[URI_MAX];
    char before[32];
    char after[32];

    if (serial_colons(ci->serial_hex, &serial) < 0) {
        return NULL;
    }
    member_uri(loc, e->id, NULL, uri);
    unix_to_iso8601(ci->not_before, before, sizeof(before));
    unix_to_iso8601(ci->not_after, after, sizeof(after));

    /* A server or client certificate is shown with its chain (cert_entry.pem). */
    bool is_chain =
        location_type(loc) != ENDPOINT_AUTHORITY && snap->chain && sk_X509_num(snap->chain) > 0;
    int64_t now = (int64_t)time(NULL);
    bool is_valid_now = now >= ci->not_before && now <= ci->not_after;

    json_t *o = rf_resource_new(uri, SCHEMA_CERT, e->id, loc->member_name);
    (void)rf_set(&o, "CertificateString", json_stringn(e->pem, e->pem_len));
    (void)rf_set_str(&o, "CertificateType", is_chain ? "PEMchain" : "PEM");
    (void)rf_set(&o, "Issuer", identifier(&ci->issuer, NULL));
    (void)rf_set(&o, "Subject", identifier(&ci->subject, ci));
    (void)rf_set_str(&o, "ValidNotBefore", before);
    (void)rf_set_str(&o, "ValidNotAfter", after);
    (void)rf_set(&o, "KeyUsage", key_usage_array(ci));
    (void)rf_set_str(&o, "SerialNumber", serial);
    (void)rf_set_str(&o, "Fingerprint", ci->fingerprint_sha256);
    (void)rf_set_str(&o, "FingerprintHashAlgorithm", FINGERPRINT_ALG);
    (void)rf_set_str(&o, "SignatureAlgorithm", ci->signature_alg);
    (void)rf_set(
        &o, "Status",
        json_pack("{s:s, s:s}", "State", "Enabled", "Health", is_valid_now ? "OK" : "Warning"));

    /* Rekey and Renew make CSRs for our own key; a CA in the truststore has none here. */
    if (location_type(loc) != ENDPOINT_AUTHORITY) {
        char rekey[URI_MAX];
        char rekey_ai[URI_MAX];
        char renew[URI_MAX];
        char renew_ai[URI_MAX];
        member_uri(loc, e->id, PART_REKEY, rekey);
        member_uri(loc, e->id, PART_REKEY_AI, rekey_ai);
        member_uri(loc, e->id, PART_RENEW, renew);
        member_uri(loc, e->id, PART_RENEW_AI, renew_ai);
        char next_key[URI_MAX];
        char self_sign[URI_MAX];
        member_uri(loc, e->id, PART_NEXT_KEY, next_key);
        member_uri(loc, e->id, PART_SELF_SIGN, self_sign);
        json_t *actions = json_object();
        (void)rf_set(&actions, "#" ACTION_REKEY, action_object(rekey, rekey_ai));
        (void)rf_set(&actions, "#" ACTION_RENEW, action_object(renew, renew_ai));
        (void)rf_set(&actions, "Oem",
                     json_pack("{s:{s:s}, s:{s:s}}", "#" ACTION_NEXT_KEY, "target", next_key,
                               "#" ACTION_SELF_SIGN, "target", self_sign));
        (void)rf_set(&o, "Actions", actions);
        (void)rf_set(&o, "Oem", json_pack("{s:o}", "Certd", oem_body(ep, snap)));
    }
    return o;
}

/* ---- certificate changes (redfish.h): installs and deletes on the serial lane ---- */

struct change_job {
    struct rf_request *rq;
    struct manager *m;
    rf_change_answer_fn answer;
    struct rf_change c; /* what answer gets; c.snap is the job's reference */
    /* inputs, borrowed from rq (see the file comment) */
    struct span data;
    bool has_replace;
    char id[MANAGER_ID_MAX]; /* replaced or deleted certificate */
    const char *param;       /* the request parameter a library error is blamed on */
    bool is_self_sign;       /* SelfSign (issue #6): for the current key, or with has_pin */
    bool has_pin;            /* ... for the pending key of this pin */
    struct pin pin;
    /* results */
    int r;
    struct certd_err err;
    struct manager_change change;
    char reload_warning[NOTIFIER_MESSAGE_MAX + 96];
};

static struct change_job *change_job_free(struct change_job *j)
{
    if (j) {
        (void)ep_snapshot_unref(j->c.snap);
        free(j);
    }
    return NULL;
}
DEFINE_CLEANUP_STRUCT(change_job, change_job_free)

/* Worker thread: only the job's own data and the (thread-safe) manager. */
static void change_run(void *arg)
{
    struct change_job *j = arg;

    if (j->c.is_delete) {
        j->r = manager_delete(j->m, j->c.ep, j->id, &j->change, &j->err);
    } else if (j->is_self_sign) {
        j->r = manager_selfsign(j->m, j->c.ep, j->has_pin ? &j->pin : NULL, &j->change, &j->err);
    } else {
        j->r = manager_install(j->m, j->c.ep, j->data, j->has_replace ? j->id : NULL, &j->change,
                               &j->err);
    }
    /* Taken here, on the serial lane, so that no later change can slip in before it. */
    if (j->r >= 0) {
        j->c.snap = endpoint_snapshot(j->c.ep);
    }
}

/* Loop thread: the endpoint's users were told (or not); now the caller answers. */
static void change_notified(void *arg, int result, const char *message)
{
    _cleanup_(cleanup_change_job) struct change_job *j = arg;
    struct rf_change *c = &j->c;

    c->id = c->is_delete ? j->id : j->change.id;
    if (j->change.warning[0]) {
        c->warnings[c->n_warnings++] = j->change.warning;
    }
    if (result < 0) {
        (void)snprintf(j->reload_warning, sizeof(j->reload_warning),
                       "The certificate change was stored, but reloading its users failed: %s",
                       message && message[0] ? message : "no reason given");
        c->warnings[c->n_warnings++] = j->reload_warning;
    }
    j->answer(j->rq, c);
}

/* Loop thread: the worker finished (or the pool is shutting down). */
static void change_done(void *arg, bool cancelled)
{
    _cleanup_(cleanup_change_job) struct change_job *j = arg;
    struct rf_request *rq = j->rq;

    if (cancelled) {
        rf_error_busy(rq);
        return;
    }
    if (j->r < 0) {
        if (!err_is_set(&j->err)) {
            (void)err_set(&j->err, j->r, CERTD_E_INTERNAL, "the request failed");
        }
        rf_error_certd(rq, &j->err, j->param);
        return;
    }
    const char *what = j->c.is_delete ? "deleted" : j->is_self_sign ? "self-signed" : "installed";
    log_notice("%s: %s certificate %s on endpoint %s%s", rq->who.user, what,
               j->c.is_delete ? j->id : j->change.id, endpoint_name(j->c.ep),
               rq->route->is_redfish ? "" : " (legacy REST)");
    /* change_notified owns the job from here; it may run before this returns. */
    struct endpoint *ep = j->c.ep;
    /* Taken before the call: the order in which arguments are evaluated is unspecified. */
    const struct manager_change *change = &j->change;
    daemon_endpoint_changed(rq->d, ep, change, change_notified, TAKE_PTR(j));
}

static struct change_job *change_job_new(struct rf_request *rq, struct endpoint *ep, bool is_delete,
                                         const char *id, struct span data, const char *param,
                                         rf_change_answer_fn answer, const void *ctx)
{
    struct change_job *j = calloc(1, sizeof(*j));

    if (!j) {
        return NULL;
    }
    j->rq = rq;
    j->m = rq->d->manager;
    j->answer = answer;
    j->c.ep = ep;
    j->c.ctx = ctx;
    j->c.is_delete = is_delete;
    j->data = data;
    j->param = param;
    if (id) {
        /* Ids come from a snapshot: shorter than MANAGER_ID_MAX. */
        assert(strlen(id) < sizeof(j->id));
        memcpy(j->id, id, strlen(id) + 1);
        j->has_replace = !is_delete;
    }
    return j;
}

/* Hand j to the serial lane; on refusal answer 503 and drop it. */
static void change_job_submit(struct change_job *j)
{
    struct rf_request *rq = j->rq;
    if (worker_submit(rq->d->workers, WORKER_LANE_SERIAL, change_run, change_done, j) < 0) {
        (void)change_job_free(j);
        rf_error_busy(rq);
    }
}

static void change_submit(struct rf_request *rq, struct endpoint *ep, bool is_delete,
                          const char *id, struct span data, const char *param,
                          rf_change_answer_fn answer, const void *ctx)
{
    struct change_job *j = change_job_new(rq, ep, is_delete, id, data, param, answer, ctx);

    if (!j) {
        respond_internal(rq);
        return;
    }
    change_job_submit(j);
}

void rf_change_install(struct rf_request *rq, struct endpoint *ep, struct span data,
                       const char *replace_id, const char *param, rf_change_answer_fn answer,
                       const void *ctx)
{
    change_submit(rq, ep, false, replace_id, data, param, answer, ctx);
}

void rf_change_delete(struct rf_request *rq, struct endpoint *ep, const char *id,
                      rf_change_answer_fn answer, const void *ctx)
{
    change_submit(rq, ep, true, id, (struct span){ 0 }, NULL, answer, ctx);
}

/*
 * The warnings of a change for @Message.ExtendedInfo (an expired certificate accepted by
 * policy, a notifier that failed). Base has no warning message for this; GeneralError's text
 * points to Resolution, which carries the specifics, and the severity says that the request
 * succeeded.
 */
static json_t *warning_messages(const struct rf_change *c)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->n_warnings; i++) {
        (void)rf_append(&a, rf_message_explained(RF_MSG_GENERAL_ERROR, c->warnings[i], "Warning"));
    }
    return a;
}

/*
 * Answer a Redfish change (c->ctx: the location the client used). An install: 200, the
 * Certificate and its Location, as bmcweb does; a delete: 204, or 200 with the messages when
 * there is something to say.
 */
static void change_answer(struct rf_request *rq, const struct rf_change *c)
{
    const struct cert_location *loc = c->ctx;
    json_t *body;

    if (c->is_delete) {
        if (c->n_warnings == 0) {
            rf_respond(rq, 204, NULL);
            return;
        }
        body = json_object();
    } else {
        const struct cert_entry *e = ep_snapshot_find(c->snap, c->id);
        char uri[URI_MAX];
        if (!e) {
            log_err("installed certificate %s on %s is not in the new snapshot", c->id,
                    endpoint_name(c->ep));
            respond_internal(rq);
            return;
        }
        body = cert_body(loc, c->ep, c->snap, e);
        if (body) {
            member_uri(loc, e->id, NULL, uri);
            rf_header(rq, "Location", uri);
        }
    }
    if (c->n_warnings > 0) {
        (void)rf_set(&body, "@Message.ExtendedInfo", warning_messages(c));
    }
    rf_respond_200(rq, body);
}

/* ---- CSRs on the worker pool's parallel lane ---- */

enum csr_kind { CSR_NEW, CSR_REKEY, CSR_RENEW, CSR_NEXT_KEY, CSR_KIND_MAX };

struct csr_job {
    enum csr_kind kind;
    struct rf_request *rq;
    struct manager *m;
    struct endpoint *ep;
    const struct cert_location *loc; /* where the answer points */
    /* inputs, borrowed from rq (see the file comment) */
    char id[MANAGER_ID_MAX]; /* rekeyed or renewed certificate */
    struct key_spec spec;
    bool has_spec;
    struct csr_request req;
    const char **alt_names; /* owned array of borrowed strings */
    const char **key_usage;
    const char *challenge;
    /* results */
    int r;
    struct certd_err err;
    char *csr_pem;
    struct pin next_pin; /* CSR_NEXT_KEY: the new key's */
};

static struct csr_job *csr_job_free(struct csr_job *j)
{
    if (!j) {
        return NULL;
    }
    free((void *)j->alt_names);
    free((void *)j->key_usage);
    free(j->csr_pem);
    free(j);
    return NULL;
}
DEFINE_CLEANUP_STRUCT(csr_job, csr_job_free)

static struct csr_job *csr_job_new(struct rf_request *rq, enum csr_kind kind,
                                   const struct cert_location *loc, struct endpoint *ep)
{
    struct csr_job *j = calloc(1, sizeof(*j));
    if (!j) {
        return NULL;
    }
    j->kind = kind;
    j->rq = rq;
    j->m = rq->d->manager;
    j->ep = ep;
    j->loc = loc;
    return j;
}

/* Worker thread: only the job's own data and the (thread-safe) manager. */
static void csr_run(void *arg)
{
    struct csr_job *j = arg;

    switch (j->kind) {
    case CSR_NEW:
        j->r = manager_generate_csr(j->m, j->ep, &j->spec, &j->req, &j->csr_pem, &j->err);
        break;
    case CSR_REKEY:
        j->r = manager_rekey_csr(j->m, j->ep, j->id, j->has_spec ? &j->spec : NULL, j->challenge,
                                 &j->csr_pem, &j->err);
        break;
    case CSR_RENEW:
        j->r = manager_renew_csr(j->m, j->ep, j->id, j->challenge, &j->csr_pem, &j->err);
        break;
    case CSR_NEXT_KEY:
        j->r = manager_prepare_next_key(j->m, j->ep, j->id, j->has_spec ? &j->spec : NULL,
                                        j->challenge, &j->csr_pem, &j->next_pin, &j->err);
        break;
    case CSR_KIND_MAX:
    default:
        j->r = err_set(&j->err, -EINVAL, CERTD_E_INTERNAL, "unknown job");
        break;
    }
}

static void respond_csr(struct csr_job *j)
{
    char uri[URI_MAX];
    json_t *body = json_object();

    (void)rf_set_str(&body, "CSRString", j->csr_pem);
    if (j->kind == CSR_NEXT_KEY) {
        /* The pin of the key made for the CSR, the one clients add before SelfSign switches. */
        (void)rf_set(&body, "NextKeyPin", pin_json(&j->next_pin));
    }
    if (j->kind == CSR_NEW || j->kind == CSR_NEXT_KEY) {
        (void)rf_set(&body, "CertificateCollection", rf_link(j->loc->uri));
    } else {
        member_uri(j->loc, j->id, NULL, uri);
        (void)rf_set(&body, "Certificate", rf_link(uri));
    }
    rf_respond_200(j->rq, body);
}

/* Loop thread: the worker finished (or the pool is shutting down). */
static void csr_done(void *arg, bool cancelled)
{
    _cleanup_(cleanup_csr_job) struct csr_job *j = arg;
    struct rf_request *rq = j->rq;

    if (cancelled) {
        rf_error_busy(rq);
        return;
    }
    if (j->r < 0) {
        if (!err_is_set(&j->err)) {
            (void)err_set(&j->err, j->r, CERTD_E_INTERNAL, "the request failed");
        }
        /* Errors of csr_build name the field at fault (err.field). */
        rf_error_certd(rq, &j->err, NULL);
        return;
    }
    if (j->kind == CSR_NEW) {
        log_notice("%s: generated a CSR on endpoint %s", rq->who.user, endpoint_name(j->ep));
    } else if (j->kind == CSR_NEXT_KEY) {
        char pin[PIN_STR_MAX];
        pin_format(&j->next_pin, pin, sizeof(pin));
        log_notice("%s: prepared the next key of certificate %s on endpoint %s: %s", rq->who.user,
                   j->id, endpoint_name(j->ep), pin);
    } else {
        log_notice("%s: generated a %s CSR for certificate %s on endpoint %s", rq->who.user,
                   j->kind == CSR_REKEY ? "rekey" : "renewal", j->id, endpoint_name(j->ep));
    }
    respond_csr(j);
}

/* Hand j to the pool; on refusal answer 503 and drop it. */
static void csr_submit(struct csr_job *j)
{
    struct rf_request *rq = j->rq;
    /* Keys a provider holds (a TPM) are used by the serial thread only (worker.h). */
    enum worker_lane lane = endpoint_is_held(j->ep) ? WORKER_LANE_SERIAL : WORKER_LANE_PARALLEL;
    if (worker_submit(rq->d->workers, lane, csr_run, csr_done, j) < 0) {
        (void)csr_job_free(j);
        rf_error_busy(rq);
    }
}

/* ---- collections and members ---- */

/* What uploads may call themselves: both are PEM text to us. */
static const char *const certificate_types[] = { "PEM", "PEMchain" };

static void collection_get(struct rf_request *rq, const struct cert_location *loc,
                           struct endpoint *ep)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
    json_t *c = rf_collection_new(loc->uri, SCHEMA_COLLECTION, loc->name);

    for (size_t i = 0; c && i < snap->n; i++) {
        char uri[URI_MAX];
        member_uri(loc, snap->entries[i].id, NULL, uri);
        if (!rf_members_add(c, uri)) {
            json_decref(c);
            c = NULL;
        }
    }
    /* bmcweb's annotation, which clients of it read before an upload. */
    (void)rf_set(&c, "@Redfish.SupportedCertificates",
                 string_array(certificate_types, ELEMENTSOF(certificate_types)));
    rf_respond_200(rq, rf_collection_done(c));
}

static bool certificate_type_ok(const char *t)
{
    for (size_t i = 0; i < ELEMENTSOF(certificate_types); i++) {
        if (strcmp(t, certificate_types[i]) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * POST to a collection: install. The body is JSON {CertificateString, CertificateType} or the
 * raw upload (PEM, or one DER certificate). Both types name PEM text: which of the two the
 * client says does not change how it is read.
 */
static void collection_post(struct rf_request *rq, const struct cert_location *loc,
                            struct endpoint *ep)
{
    struct span data = rq->body;

    if (rq->json) {
        static const char *const known[] = { "CertificateString", "CertificateType", NULL };
        const char *s = NULL;
        const char *type = NULL;
        if (!rf_check_known(rq, NULL, known) ||
            !rf_get_string(rq, NULL, "CertificateString", true, &s) ||
            !rf_get_string(rq, NULL, "CertificateType", true, &type)) {
            return;
        }
        if (!certificate_type_ok(type)) {
            rf_errorf(rq, 400, RF_MSG_PROPERTY_VALUE_NOT_IN_LIST, type, "CertificateType", NULL);
            return;
        }
        data = span_from_str(s);
    }
    rf_change_install(rq, ep, data, NULL, NULL, change_answer, loc);
}

static void h_collection(struct rf_request *rq)
{
    const struct cert_location *loc = rq->route->data;
    struct endpoint *ep = rf_cert_endpoint(rq->d, loc->endpoint);

    if (!ep) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, loc->uri, NULL);
        return;
    }
    if (rq->method == HTTP_METHOD_POST) {
        collection_post(rq, loc, ep);
    } else {
        collection_get(rq, loc, ep);
    }
}

/*
 * Certificate id at loc: its entry, borrowed from *ret_snap (a reference the caller drops),
 * and its endpoint. Answers 404 itself and returns NULL when there is none.
 */
static const struct cert_entry *find_member(struct rf_request *rq, const struct cert_location *loc,
                                            const char *id, struct endpoint **ret_ep,
                                            struct ep_snapshot **ret_snap)
{
    struct endpoint *ep = rf_cert_endpoint(rq->d, loc->endpoint);
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = ep ? endpoint_snapshot(ep) : NULL;
    const struct cert_entry *e = ep_snapshot_find(snap, id);

    if (!e) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_NOT_FOUND, "Certificate", id, NULL);
        return NULL;
    }
    *ret_ep = ep;
    *ret_snap = TAKE_PTR(snap);
    return e;
}

/* The member the route names (its location is the route's data, its id the parameter). */
static const struct cert_entry *route_member(struct rf_request *rq, struct endpoint **ret_ep,
                                             struct ep_snapshot **ret_snap)
{
    return find_member(rq, rq->route->data, rq->n_params > 0 ? rq->params[0] : "", ret_ep,
                       ret_snap);
}

static void h_member(struct rf_request *rq)
{
    const struct cert_location *loc = rq->route->data;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = NULL;
    struct endpoint *ep = NULL;
    const struct cert_entry *e = route_member(rq, &ep, &snap);

    if (!e) {
        return;
    }
    if (rq->method == HTTP_METHOD_DELETE) {
        rf_change_delete(rq, ep, e->id, change_answer, loc);
        return;
    }
    rf_respond_200(rq, cert_body(loc, ep, snap, e));
}

/* ---- key specs from action parameters ---- */

/*
 * The key a CSR action asks for. KeyPairAlgorithm names it (OpenSSL or TCG names, keys.h);
 * without it, KeyCurveId implies EC and KeyBitLength alone implies EC for 256/384/521 and RSA
 * otherwise; with none of the three, *ret_has is false and the caller's default applies (the
 * endpoint's new_key for GenerateCSR, the current key's type for Rekey). Ed25519 only where the
 * endpoint's policy allows it, since its uploads would be refused otherwise. Answers 400 itself
 * and returns false on a bad value.
 */
static bool key_spec_from_request(struct rf_request *rq, const char *action,
                                  const struct config_endpoint *cfg, struct key_spec *ret,
                                  bool *ret_has)
{
    const char *alg = NULL;
    const char *curve = NULL;
    json_int_t bits = 0;
    bool has_bits = false;

    if (!rf_get_string(rq, action, "KeyPairAlgorithm", false, &alg) ||
        !rf_get_string(rq, action, "KeyCurveId", false, &curve) ||
        !rf_get_int(rq, action, "KeyBitLength", false, 1, 65535, &bits, &has_bits)) {
        return false;
    }
    if (alg && alg[0] == '\0') {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_ERROR, "KeyPairAlgorithm", action, NULL);
        return false;
    }
    if (curve && curve[0] == '\0') {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_ERROR, "KeyCurveId", action, NULL);
        return false;
    }
    if (!alg && !curve && !has_bits) {
        *ret_has = false;
        return true;
    }
    if (!alg) {
        alg = curve || bits == 256 || bits == 384 || bits == 521 ? "EC" : "RSA";
    }

    /* The library names the parameter at fault (err.field). */
    struct certd_err err = { 0 };
    if (key_spec_from_names(alg, (unsigned)bits, curve, ret, &err) < 0) {
        rf_error_certd(rq, &err, NULL);
        return false;
    }
    if (ret->alg == KEY_ALG_ED25519 && !cfg->allow_ed25519) {
        (void)err_set(&err, -EPERM, CERTD_E_POLICY_FORBIDS,
                      "Ed25519 keys are not allowed for endpoint %s", cfg->name);
        rf_error_certd(rq, &err, "KeyPairAlgorithm");
        return false;
    }
    *ret_has = true;
    return true;
}

static bool get_challenge(struct rf_request *rq, const char *action, const char **ret)
{
    if (!rf_get_string(rq, action, "ChallengePassword", false, ret)) {
        return false;
    }
    if (*ret && (*ret)[0] == '\0') {
        *ret = NULL;
    }
    return true;
}

/* ---- ActionInfo ---- */

enum allowable {
    AV_NONE,
    AV_CSR_COLLECTIONS, /* the server and client collections configured */
    AV_KEY_ALGS,
    AV_KEY_CURVES,
    AV_KEY_BITS,
    AV_KEY_USAGES,
    AV_CERT_TYPES,
    AV_MAX
};

struct action_param {
    const char *name;
    const char *data_type; /* ActionInfo ParameterTypes */
    bool is_required;
    const char *object_type; /* ObjectDataType for Object parameters */
    enum allowable allowable;
    size_t array_max; /* ArraySizeMaximum for arrays, 0 for none */
};

/*
 * Algorithm and curve spellings key_spec_from_names accepts (OpenSSL, NIST, SEC 2 and TCG), and
 * the sizes it makes; the integration tests make a CSR with each advertised value.
 */
static const char *const key_alg_names[] = { "TPM_ALG_RSA", "TPM_ALG_ECDSA", "TPM_ALG_ECC", "RSA",
                                             "EC",          "ECDSA" };
static const char *const key_curve_names[] = {
    "TPM_ECC_NIST_P256", "TPM_ECC_NIST_P384", "TPM_ECC_NIST_P521", "P-256",     "P-384", "P-521",
    "prime256v1",        "secp256r1",         "secp384r1",         "secp521r1",
};
static const char *const key_bits_values[] = { "2048", "3072", "4096", "256", "384", "521" };

/* Every GenerateCSR parameter of CertificateService v1_2_1. */
static const struct action_param csr_params[] = {
    { "CertificateCollection", "Object", true, "#CertificateCollection.CertificateCollection",
      AV_CSR_COLLECTIONS, 0 },
    { "CommonName", "String", false, NULL, AV_NONE, 0 },
    { "AlternativeNames", "StringArray", false, NULL, AV_NONE, CERTD_SANS_MAX },
    { "ChallengePassword", "String", false, NULL, AV_NONE, 0 },
    { "City", "String", false, NULL, AV_NONE, 0 },
    { "ContactPerson", "String", false, NULL, AV_NONE, 0 },
    { "Country", "String", false, NULL, AV_NONE, 0 },
    { "Email", "String", false, NULL, AV_NONE, 0 },
    { "GivenName", "String", false, NULL, AV_NONE, 0 },
    { "Initials", "String", false, NULL, AV_NONE, 0 },
    { "KeyBitLength", "Number", false, NULL, AV_KEY_BITS, 0 },
    { "KeyCurveId", "String", false, NULL, AV_KEY_CURVES, 0 },
    { "KeyPairAlgorithm", "String", false, NULL, AV_KEY_ALGS, 0 },
    { "KeyUsage", "StringArray", false, NULL, AV_KEY_USAGES, CERTD_KEY_USAGES_MAX },
    { "Organization", "String", false, NULL, AV_NONE, 0 },
    { "OrganizationalUnit", "String", false, NULL, AV_NONE, 0 },
    { "State", "String", false, NULL, AV_NONE, 0 },
    { "Surname", "String", false, NULL, AV_NONE, 0 },
    { "UnstructuredName", "String", false, NULL, AV_NONE, 0 },
};

/* ReplaceCertificate's Password is for PKCS#12, which we do not take: not offered. */
static const struct action_param replace_params[] = {
    { "CertificateString", "String", true, NULL, AV_NONE, 0 },
    { "CertificateType", "String", true, NULL, AV_CERT_TYPES, 0 },
    { "CertificateUri", "Object", true, "#Certificate.Certificate", AV_NONE, 0 },
};

static const struct action_param rekey_params[] = {
    { "KeyPairAlgorithm", "String", false, NULL, AV_KEY_ALGS, 0 },
    { "KeyBitLength", "Number", false, NULL, AV_KEY_BITS, 0 },
    { "KeyCurveId", "String", false, NULL, AV_KEY_CURVES, 0 },
    { "ChallengePassword", "String", false, NULL, AV_NONE, 0 },
};

static const struct action_param renew_params[] = {
    { "ChallengePassword", "String", false, NULL, AV_NONE, 0 },
};

static json_t *allowable_values(struct daemon *d, enum allowable av)
{
    switch (av) {
    case AV_CSR_COLLECTIONS: {
        json_t *a = json_array();
        for (size_t i = 0; i < ELEMENTSOF(locations); i++) {
            if (location_type(&locations[i]) != ENDPOINT_AUTHORITY &&
                rf_cert_endpoint(d, locations[i].endpoint)) {
                (void)rf_append(&a, json_string(locations[i].uri));
            }
        }
        return a;
    }
    case AV_KEY_ALGS: {
        json_t *a = string_array(key_alg_names, ELEMENTSOF(key_alg_names));
        /* Ed25519 is offered only when some endpoint's policy takes it. */
        for (size_t i = 0; i < manager_n_endpoints(d->manager); i++) {
            const struct config_endpoint *c = endpoint_config(manager_endpoint_at(d->manager, i));
            if (c->type != ENDPOINT_AUTHORITY && c->allow_ed25519) {
                (void)rf_append(&a, json_string("Ed25519"));
                break;
            }
        }
        return a;
    }
    case AV_KEY_CURVES:
        return string_array(key_curve_names, ELEMENTSOF(key_curve_names));
    case AV_KEY_USAGES: {
        const char *names[CSR_REDFISH_KEY_USAGES_MAX];
        size_t n = key_usage_to_redfish(UINT32_MAX, UINT32_MAX, names, ELEMENTSOF(names));
        return string_array(names, n);
    }
    case AV_CERT_TYPES:
        return string_array(certificate_types, ELEMENTSOF(certificate_types));
    case AV_KEY_BITS:
    case AV_NONE:
    case AV_MAX:
    default:
        return NULL;
    }
}

static json_t *action_param_json(struct daemon *d, const struct action_param *p)
{
    json_t *o = json_object();
    (void)rf_set_str(&o, "Name", p->name);
    (void)rf_set(&o, "Required", json_boolean(p->is_required));
    (void)rf_set_str(&o, "DataType", p->data_type);
    (void)rf_set_str(&o, "ObjectDataType", p->object_type);
    if (p->allowable == AV_KEY_BITS) {
        (void)rf_set(&o, "AllowableNumbers",
                     string_array(key_bits_values, ELEMENTSOF(key_bits_values)));
    } else if (p->allowable != AV_NONE) {
        (void)rf_set(&o, "AllowableValues", allowable_values(d, p->allowable));
    }
    if (p->array_max > 0) {
        (void)rf_set(&o, "ArraySizeMaximum", json_integer((json_int_t)p->array_max));
    }
    /* Our one departure from the schema: CommonName defaults to the host name. */
    if (strcmp(p->name, "CommonName") == 0) {
        (void)rf_set_str(&o, "DefaultValue", d->hostname);
    }
    return o;
}

static void respond_action_info(struct rf_request *rq, const char *uri, const char *id,
                                const char *name, const struct action_param *params, size_t n)
{
    json_t *o = rf_resource_new(uri, SCHEMA_AI, id, name);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        (void)rf_append(&a, action_param_json(rq->d, &params[i]));
    }
    (void)rf_set(&o, "Parameters", a);
    rf_respond_200(rq, o);
}

static void h_generate_csr_info(struct rf_request *rq)
{
    respond_action_info(rq, URI_GENERATE_CSR_AI, "GenerateCSRActionInfo", "GenerateCSR Action Info",
                        csr_params, ELEMENTSOF(csr_params));
}

static void h_replace_info(struct rf_request *rq)
{
    respond_action_info(rq, URI_REPLACE_AI, "ReplaceCertificateActionInfo",
                        "ReplaceCertificate Action Info", replace_params,
                        ELEMENTSOF(replace_params));
}

static void h_member_action_info(struct rf_request *rq, bool is_rekey)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = NULL;
    struct endpoint *ep = NULL;
    const struct cert_entry *e = route_member(rq, &ep, &snap);
    char uri[URI_MAX];

    if (!e) {
        return;
    }
    member_uri(rq->route->data, e->id, is_rekey ? PART_REKEY_AI : PART_RENEW_AI, uri);
    if (is_rekey) {
        respond_action_info(rq, uri, "RekeyActionInfo", "Rekey Action Info", rekey_params,
                            ELEMENTSOF(rekey_params));
    } else {
        respond_action_info(rq, uri, "RenewActionInfo", "Renew Action Info", renew_params,
                            ELEMENTSOF(renew_params));
    }
}

static void h_rekey_info(struct rf_request *rq)
{
    h_member_action_info(rq, true);
}

static void h_renew_info(struct rf_request *rq)
{
    h_member_action_info(rq, false);
}

/* ---- Certificate.Rekey / Certificate.Renew ---- */

/* The names of params, NULL-terminated, for rf_check_known (out has n + 1 slots). */
static void param_names(const struct action_param *params, size_t n, const char **out)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = params[i].name;
    }
    out[n] = NULL;
}

/* A CSR job for the member the route names; NULL when answered (404, 500). */
static struct csr_job *member_csr_job(struct rf_request *rq, enum csr_kind kind)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = NULL;
    struct endpoint *ep = NULL;
    const struct cert_entry *e = route_member(rq, &ep, &snap);
    struct csr_job *j;

    if (!e) {
        return NULL;
    }
    j = csr_job_new(rq, kind, rq->route->data, ep);
    if (!j) {
        respond_internal(rq);
        return NULL;
    }
    memcpy(j->id, e->id, sizeof(j->id));
    return j;
}

static void h_rekey(struct rf_request *rq)
{
    const char *known[ELEMENTSOF(rekey_params) + 1];

    param_names(rekey_params, ELEMENTSOF(rekey_params), known);
    _cleanup_(cleanup_csr_job) struct csr_job *j = member_csr_job(rq, CSR_REKEY);
    if (!j || !rf_check_known(rq, ACTION_REKEY, known) ||
        !key_spec_from_request(rq, ACTION_REKEY, endpoint_config(j->ep), &j->spec, &j->has_spec) ||
        !get_challenge(rq, ACTION_REKEY, &j->challenge)) {
        return;
    }
    csr_submit(TAKE_PTR(j));
}

static void h_renew(struct rf_request *rq)
{
    const char *known[ELEMENTSOF(renew_params) + 1];

    param_names(renew_params, ELEMENTSOF(renew_params), known);
    _cleanup_(cleanup_csr_job) struct csr_job *j = member_csr_job(rq, CSR_RENEW);
    if (!j || !rf_check_known(rq, ACTION_RENEW, known) ||
        !get_challenge(rq, ACTION_RENEW, &j->challenge)) {
        return;
    }
    csr_submit(TAKE_PTR(j));
}

/* ---- CertdCertificate.PrepareNextKey / CertdCertificate.SelfSign (issue #6) ---- */

/*
 * A Rekey whose answer also holds the new key's pin (NextKeyPin), and the collection the
 * certificate for it goes to (the answer pairs there, or SelfSign switches to it).
 */
static void h_next_key(struct rf_request *rq)
{
    const char *known[ELEMENTSOF(rekey_params) + 1];

    param_names(rekey_params, ELEMENTSOF(rekey_params), known);
    _cleanup_(cleanup_csr_job) struct csr_job *j = member_csr_job(rq, CSR_NEXT_KEY);
    if (!j || !rf_check_known(rq, ACTION_NEXT_KEY, known) ||
        !key_spec_from_request(rq, ACTION_NEXT_KEY, endpoint_config(j->ep), &j->spec,
                               &j->has_spec) ||
        !get_challenge(rq, ACTION_NEXT_KEY, &j->challenge)) {
        return;
    }
    csr_submit(TAKE_PTR(j));
}

/*
 * A self-signed certificate for the current key, or with KeyPin ("sha256//BASE64" or hex) for
 * that pending key: a change like an install (serial lane, then the endpoint's notifier: for
 * the HTTPS endpoint the TLS context is swapped), answered as ReplaceCertificate is.
 */
static void h_self_sign(struct rf_request *rq)
{
    static const char *const known[] = { "KeyPin", NULL };
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = NULL;
    struct endpoint *ep = NULL;
    const char *pin = NULL;

    if (!route_member(rq, &ep, &snap) || !rf_check_known(rq, ACTION_SELF_SIGN, known) ||
        !rf_get_string(rq, ACTION_SELF_SIGN, "KeyPin", false, &pin)) {
        return;
    }
    struct change_job *j = change_job_new(rq, ep, false, NULL, (struct span){ 0 },
                                          pin ? "KeyPin" : NULL, change_answer, rq->route->data);
    if (!j) {
        respond_internal(rq);
        return;
    }
    j->is_self_sign = true;
    if (pin) {
        struct certd_err err = { 0 };
        if (pin_parse(pin, &j->pin, &err) < 0) {
            (void)change_job_free(j);
            rf_error_certd(rq, &err, "KeyPin");
            return;
        }
        j->has_pin = true;
    }
    change_job_submit(j);
}

/* ---- CertificateService and CertificateLocations ---- */

static void h_service(struct rf_request *rq)
{
    json_t *o =
        rf_resource_new(URI_SERVICE, SCHEMA_SERVICE, "CertificateService", "Certificate Service");
    json_t *actions = json_object();

    (void)rf_set(&actions, "#" ACTION_GENERATE_CSR,
                 action_object(URI_GENERATE_CSR, URI_GENERATE_CSR_AI));
    (void)rf_set(&actions, "#" ACTION_REPLACE, action_object(URI_REPLACE, URI_REPLACE_AI));
    (void)rf_set_str(&o, "Description", "Actions to generate CSRs and replace certificates");
    (void)rf_set(&o, "Actions", actions);
    (void)rf_set(&o, "CertificateLocations", rf_link(URI_LOCATIONS));
    rf_respond_200(rq, o);
}

static void h_locations(struct rf_request *rq)
{
    json_t *o = rf_resource_new(URI_LOCATIONS, SCHEMA_LOCATIONS, "CertificateLocations",
                                "Certificate Locations");
    json_t *certs = json_array();
    json_t *links = json_object();

    for (size_t i = 0; i < ELEMENTSOF(locations); i++) {
        struct endpoint *ep = rf_cert_endpoint(rq->d, locations[i].endpoint);
        if (!ep || locations[i].is_alias) {
            continue;
        }
        _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
        for (size_t k = 0; k < snap->n; k++) {
            char uri[URI_MAX];
            member_uri(&locations[i], snap->entries[k].id, NULL, uri);
            (void)rf_append(&certs, rf_link(uri));
        }
    }
    (void)rf_set(&links, "Certificates@odata.count",
                 json_integer((json_int_t)json_array_size(certs)));
    (void)rf_set(&links, "Certificates", certs);
    (void)rf_set(&o, "Links", links);
    rf_respond_200(rq, o);
}

/* ---- CertificateService.GenerateCSR ---- */

/*
 * The location a URI parameter names through the router: a collection (handler h_collection)
 * or a member (h_member, its id in ret_id); NULL when it names neither.
 */
static const struct cert_location *location_of_uri(const char *uri, rf_handler_fn handler,
                                                   char ret_id[static RF_PARAM_MAX + 1])
{
    char params[RF_PARAMS_MAX][RF_PARAM_MAX + 1];
    size_t n = 0;
    const struct rf_route *r = rf_route_lookup(uri, params, &n);

    if (!r || r->handler != handler) {
        return NULL;
    }
    memcpy(ret_id, n > 0 ? params[0] : "", n > 0 ? strlen(params[0]) + 1 : 1);
    return r->data;
}

/* The server or client collection a CertificateCollection link names; answers 400 itself. */
static bool csr_collection(struct rf_request *rq, const struct cert_location **ret_loc,
                           struct endpoint **ret_ep)
{
    const char *uri = NULL;
    char id[RF_PARAM_MAX + 1];

    if (!rf_get_link(rq, ACTION_GENERATE_CSR, "CertificateCollection", true, &uri)) {
        return false;
    }
    const struct cert_location *loc = location_of_uri(uri, h_collection, id);
    struct endpoint *ep = loc ? rf_cert_endpoint(rq->d, loc->endpoint) : NULL;
    if (!ep || location_type(loc) == ENDPOINT_AUTHORITY) {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_ERROR, "CertificateCollection",
                  ACTION_GENERATE_CSR, NULL);
        return false;
    }
    *ret_loc = loc;
    *ret_ep = ep;
    return true;
}

static void h_generate_csr(struct rf_request *rq)
{
    const char *known[ELEMENTSOF(csr_params) + 1];
    param_names(csr_params, ELEMENTSOF(csr_params), known);
    if (!rf_check_known(rq, ACTION_GENERATE_CSR, known)) {
        return;
    }

    const struct cert_location *loc = NULL;
    struct endpoint *ep = NULL;
    if (!csr_collection(rq, &loc, &ep)) {
        return;
    }
    _cleanup_(cleanup_csr_job) struct csr_job *j = csr_job_new(rq, CSR_NEW, loc, ep);
    if (!j) {
        respond_internal(rq);
        return;
    }
    struct csr_request *req = &j->req;
    struct {
        const char *name;
        const char **slot;
    } strings[] = {
        { "CommonName", &req->common_name },
        { "City", &req->city },
        { "State", &req->state },
        { "Country", &req->country },
        { "Organization", &req->organization },
        { "OrganizationalUnit", &req->organizational_unit },
        { "Email", &req->email },
        { "GivenName", &req->given_name },
        { "Surname", &req->surname },
        { "Initials", &req->initials },
        { "UnstructuredName", &req->unstructured_name },
        { "ContactPerson", &req->contact_person },
    };
    for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
        if (!rf_get_string(rq, ACTION_GENERATE_CSR, strings[i].name, false, strings[i].slot)) {
            return;
        }
    }
    if (!get_challenge(rq, ACTION_GENERATE_CSR, &j->challenge)) {
        return;
    }
    req->challenge_password = j->challenge;

    /* Only CertificateCollection is required (issue #3): an absent CommonName is the host name,
     * as in our self-signed certificates; ActionInfo says so (DefaultValue). An empty one is an
     * error, not a request for the default. */
    if (!req->common_name) {
        req->common_name = rq->d->hostname;
    } else if (req->common_name[0] == '\0') {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_ERROR, "CommonName", ACTION_GENERATE_CSR,
                  NULL);
        return;
    }
    if (req->common_name[0] == '\0') {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_MISSING, ACTION_GENERATE_CSR, "CommonName",
                  NULL);
        return;
    }

    size_t n = 0;
    if (!rf_get_string_array(rq, ACTION_GENERATE_CSR, "AlternativeNames", false, CERTD_SANS_MAX,
                             &j->alt_names, &n)) {
        return;
    }
    req->alt_names = j->alt_names;
    req->n_alt_names = n;
    n = 0;
    if (!rf_get_string_array(rq, ACTION_GENERATE_CSR, "KeyUsage", false, CERTD_KEY_USAGES_MAX,
                             &j->key_usage, &n)) {
        return;
    }
    req->key_usage = j->key_usage;
    req->n_key_usage = n;
    /* Unknown KeyUsage names are refused here, before a key is made for nothing. */
    if (n > 0) {
        uint32_t ku = 0;
        uint32_t eku = 0;
        struct certd_err err = { 0 };
        if (key_usage_from_redfish(j->key_usage, n, &ku, &eku, &err) < 0) {
            rf_error_certd(rq, &err, "KeyUsage");
            return;
        }
    }

    const struct config_endpoint *cfg = endpoint_config(ep);
    bool has_spec = false;
    if (!key_spec_from_request(rq, ACTION_GENERATE_CSR, cfg, &j->spec, &has_spec)) {
        return;
    }
    if (!has_spec) {
        j->spec = cfg->new_key;
    }
    csr_submit(TAKE_PTR(j));
}

/* ---- CertificateService.ReplaceCertificate ---- */

static void h_replace(struct rf_request *rq)
{
    const char *known[ELEMENTSOF(replace_params) + 1];
    param_names(replace_params, ELEMENTSOF(replace_params), known);

    const char *s = NULL;
    const char *type = NULL;
    const char *uri = NULL;
    if (!rf_check_known(rq, ACTION_REPLACE, known) ||
        !rf_get_string(rq, ACTION_REPLACE, "CertificateString", true, &s) ||
        !rf_get_string(rq, ACTION_REPLACE, "CertificateType", true, &type) ||
        !rf_get_link(rq, ACTION_REPLACE, "CertificateUri", true, &uri)) {
        return;
    }
    if (!certificate_type_ok(type)) {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_ERROR, "CertificateType", ACTION_REPLACE,
                  NULL);
        return;
    }

    char id[RF_PARAM_MAX + 1];
    const struct cert_location *loc = location_of_uri(uri, h_member, id);
    if (!loc) {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_ERROR, "CertificateUri", ACTION_REPLACE,
                  NULL);
        return;
    }
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = NULL;
    struct endpoint *ep = NULL;
    const struct cert_entry *e = find_member(rq, loc, id, &ep, &snap);
    if (!e) {
        return;
    }
    rf_change_install(rq, ep, span_from_str(s), e->id, "CertificateString", change_answer, loc);
}

/* ---- routes ---- */

#define M(x)   (1u << HTTP_METHOD_##x)
#define LOGIN  AUTH_PRIV_LOGIN
#define CONFIG AUTH_PRIV_CONFIGURE_MANAGER
#define PRIV_READ                                             \
    {                                                         \
        [HTTP_METHOD_GET] = LOGIN, [HTTP_METHOD_HEAD] = LOGIN \
    }
#define PRIV_READ_WRITE                                                                     \
    {                                                                                       \
        [HTTP_METHOD_GET] = LOGIN, [HTTP_METHOD_HEAD] = LOGIN, [HTTP_METHOD_POST] = CONFIG, \
        [HTTP_METHOD_DELETE] = CONFIG                                                       \
    }
#define PRIV_POST                   \
    {                               \
        [HTTP_METHOD_POST] = CONFIG \
    }

/* loc: the route's data, the location (NULL for the service's own resources). */
#define ROUTE_GET(pat, sch, h, loc)                                                       \
    {                                                                                     \
        .pattern = (pat), .methods = M(GET), .privileges = PRIV_READ, .is_redfish = true, \
        .body = RF_BODY_NONE, .schema = (sch), .handler = (h), .data = (loc)              \
    }
#define ROUTE_ACTION(pat, h, loc)                                                          \
    {                                                                                      \
        .pattern = (pat), .methods = M(POST), .privileges = PRIV_POST, .is_redfish = true, \
        .body = RF_BODY_JSON, .schema = NULL, .handler = (h), .data = (loc)                \
    }
#define ROUTE_COLLECTION(uri, loc)                                                    \
    {                                                                                 \
        .pattern = (uri), .methods = M(GET) | M(POST), .privileges = PRIV_READ_WRITE, \
        .is_redfish = true, .body = RF_BODY_JSON_OR_PEM, .schema = SCHEMA_COLLECTION, \
        .handler = h_collection, .data = (loc)                                        \
    }
#define ROUTE_MEMBER(uri, loc, methods_)                                                      \
    {                                                                                         \
        .pattern = uri SUB_MEMBER, .methods = (methods_), .privileges = PRIV_READ_WRITE,      \
        .is_redfish = true, .body = RF_BODY_NONE, .schema = SCHEMA_CERT, .handler = h_member, \
        .data = (loc)                                                                         \
    }
/*
 * A server or client collection: members with Rekey and Renew and their ActionInfo, and the
 * OEM actions of issue #6.
 */
#define ROUTES_KEYED(uri, loc, member_methods)                                                \
    ROUTE_COLLECTION(uri, loc), ROUTE_MEMBER(uri, loc, member_methods),                       \
        ROUTE_ACTION(uri SUB_REKEY, h_rekey, loc), ROUTE_ACTION(uri SUB_RENEW, h_renew, loc), \
        ROUTE_GET(uri SUB_REKEY_AI, SCHEMA_AI, h_rekey_info, loc),                            \
        ROUTE_GET(uri SUB_RENEW_AI, SCHEMA_AI, h_renew_info, loc),                            \
        ROUTE_ACTION(uri SUB_NEXT_KEY, h_next_key, loc),                                      \
        ROUTE_ACTION(uri SUB_SELF_SIGN, h_self_sign, loc)

const struct rf_route rf_cert_routes[] = {
    ROUTE_GET(URI_SERVICE, SCHEMA_SERVICE, h_service, NULL),
    ROUTE_GET(URI_LOCATIONS, SCHEMA_LOCATIONS, h_locations, NULL),
    ROUTE_GET(URI_GENERATE_CSR_AI, SCHEMA_AI, h_generate_csr_info, NULL),
    ROUTE_GET(URI_REPLACE_AI, SCHEMA_AI, h_replace_info, NULL),
    ROUTE_ACTION(URI_GENERATE_CSR, h_generate_csr, NULL),
    ROUTE_ACTION(URI_REPLACE, h_replace, NULL),
    /* The HTTPS certificate cannot be deleted through Redfish (seed 002, as bmcweb): DELETE on
     * it is 405 with Allow: GET, HEAD. LDAP and truststore certificates can. */
    ROUTES_KEYED(URI_HTTPS, &locations[LOC_HTTPS], M(GET)),
    ROUTES_KEYED(URI_LDAP, &locations[LOC_LDAP], M(GET) | M(DELETE)),
    ROUTE_COLLECTION(URI_TRUSTED, &locations[LOC_TRUSTED]),
    ROUTE_MEMBER(URI_TRUSTED, &locations[LOC_TRUSTED], M(GET) | M(DELETE)),
    ROUTE_COLLECTION(URI_TRUSTSTORE_ALIAS, &locations[LOC_TRUSTSTORE_ALIAS]),
    ROUTE_MEMBER(URI_TRUSTSTORE_ALIAS, &locations[LOC_TRUSTSTORE_ALIAS], M(GET) | M(DELETE)),
    { .pattern = NULL },
};
