/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redfish certificate resources (issue #3): CertificateService with GenerateCSR and
 * ReplaceCertificate, CertificateLocations, the ActionInfo resources, and for every certificate
 * endpoint its CertificateCollection and Certificate members with Rekey and Renew.
 *
 * Invariants:
 *  - One table (locations[]) maps configured endpoints to collection URIs; routes, links,
 *    CertificateLocations and the URIs accepted in action parameters all come from it. An
 *    endpoint missing from the configuration (or of another type) makes its URIs 404.
 *  - Resources are rendered from one endpoint snapshot taken for the request, so a body never
 *    mixes two generations and CertificateLocations never links to a certificate that is gone.
 *  - The loop thread never waits: every change runs on the worker pool's serial lane and every
 *    CSR (GenerateCSR, Rekey, Renew) on the parallel lane; the handler answers from the job's
 *    done callback. A change is answered only after the endpoint's notifier reported; its
 *    failure becomes a warning in @Message.ExtendedInfo, and the change stands.
 *  - A job reads its inputs straight from the request (rq->json, rq->body): the request is
 *    answered, and so freed, only from the job's done callback, after run returned; run only
 *    reads them. No upload is copied, logged or echoed; no private key is ever rendered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "csr/csr.h"
#include "log/log.h"
#include "manager.h"
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

#define SCHEMA_CERT       "Certificate.v1_11_0"
#define SCHEMA_COLLECTION "CertificateCollection"
#define SCHEMA_SERVICE    "CertificateService.v1_2_1"
#define SCHEMA_LOCATIONS  "CertificateLocations.v1_0_4"
#define SCHEMA_AI         "ActionInfo.v1_5_0"

/* The longest URI we build: the longest collection, "/", a 64-digit id, the longest suffix. */
#define URI_MAX 256u

/* Redfish's FingerprintHashAlgorithm: a TCG_ALG_ID name; cert_info's fingerprint is SHA-256. */
#define FINGERPRINT_ALG "TPM_ALG_SHA256"

struct cert_location {
    const char *uri;      /* the collection */
    const char *endpoint; /* the configured endpoint it shows */
    enum endpoint_type type;
    const char *name;        /* collection Name */
    const char *member_name; /* Certificate Name */
    bool is_alias; /* bmcweb's non-standard URI: served, but not linked from CertificateLocations */
};

static const struct cert_location locations[] = {
    { URI_HTTPS, "https", ENDPOINT_SERVER, "HTTPS Certificates", "HTTPS Certificate", false },
    { URI_LDAP, "ldap", ENDPOINT_CLIENT, "LDAP Certificates", "LDAP Certificate", false },
    { URI_TRUSTED, "truststore", ENDPOINT_AUTHORITY, "Trusted Certificates", "Trusted Certificate",
      false },
    { URI_TRUSTSTORE_ALIAS, "truststore", ENDPOINT_AUTHORITY, "TrustStore Certificates",
      "TrustStore Certificate", true },
};

/* The location whose collection URI the route's pattern starts with (a whole segment). */
static const struct cert_location *route_location(const struct rf_route *route)
{
    for (size_t i = 0; i < ELEMENTSOF(locations); i++) {
        size_t n = strlen(locations[i].uri);
        if (strncmp(route->pattern, locations[i].uri, n) == 0 &&
            (route->pattern[n] == '\0' || route->pattern[n] == '/')) {
            return &locations[i];
        }
    }
    return NULL;
}

/* The configured endpoint of loc, or NULL when the configuration has none of that type. */
static struct endpoint *location_endpoint(struct daemon *d, const struct cert_location *loc)
{
    struct endpoint *ep = manager_endpoint(d->manager, loc->endpoint);
    if (!ep || endpoint_type(ep) != loc->type) {
        return NULL;
    }
    return ep;
}

/* One trailing slash is accepted in URIs given as parameters, as in request paths. */
static size_t uri_len(const char *s)
{
    size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '/') {
        n--;
    }
    return n;
}

/* The location a collection URI names (aliases included), or NULL. */
static const struct cert_location *location_by_uri(const char *uri)
{
    size_t n = uri_len(uri);
    for (size_t i = 0; i < ELEMENTSOF(locations); i++) {
        if (strlen(locations[i].uri) == n && strncmp(uri, locations[i].uri, n) == 0) {
            return &locations[i];
        }
    }
    return NULL;
}

/* A route parameter's charset (redfish.h): what a certificate id in a URI may hold. */
static bool id_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
}

/*
 * Split a member URI ("<collection>/<id>", one trailing slash accepted) into its location and
 * id. Returns false for anything else.
 */
static bool member_by_uri(const char *uri, const struct cert_location **ret_loc,
                          char ret_id[static MANAGER_ID_MAX])
{
    size_t n = uri_len(uri);
    for (size_t i = 0; i < ELEMENTSOF(locations); i++) {
        size_t c = strlen(locations[i].uri);
        if (n <= c + 1 || strncmp(uri, locations[i].uri, c) != 0 || uri[c] != '/') {
            continue;
        }
        size_t id_len = n - c - 1;
        if (id_len >= MANAGER_ID_MAX) {
            return false;
        }
        for (size_t k = 0; k < id_len; k++) {
            if (!id_char_ok(uri[c + 1 + k])) {
                return false;
            }
        }
        memcpy(ret_id, uri + c + 1, id_len);
        ret_id[id_len] = '\0';
        *ret_loc = &locations[i];
        return true;
    }
    return false;
}

static int member_uri(const struct cert_location *loc, const char *id, const char *suffix,
                      char buf[static URI_MAX])
{
    int n = snprintf(buf, URI_MAX, "%s/%s%s", loc->uri, id, suffix ? suffix : "");
    if (n < 0 || (size_t)n >= URI_MAX) {
        return -ENAMETOOLONG;
    }
    return 0;
}

/* ---- JSON building: every helper steals v and reports a failed allocation ---- */

static void cleanup_jsonp(json_t **p)
{
    if (*p) {
        json_decref(*p);
    }
}

static int put(json_t *o, const char *key, json_t *v)
{
    if (!v) {
        return -ENOMEM;
    }
    return json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
}

/* Absent and empty values are left out: the validator warns about empty strings. */
static int put_str(json_t *o, const char *key, const char *s)
{
    if (!s || s[0] == '\0') {
        return 0;
    }
    return put(o, key, json_string(s));
}

static int append(json_t *a, json_t *v)
{
    if (!v) {
        return -ENOMEM;
    }
    return json_array_append_new(a, v) == 0 ? 0 : -ENOMEM;
}

static int append_list(json_t *a, const struct str_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (append(a, json_string(l->v[i])) < 0) {
            return -ENOMEM;
        }
    }
    return 0;
}

static json_t *string_array(const char *const *v, size_t n)
{
    _cleanup_(cleanup_jsonp) json_t *a = json_array();
    if (!a) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (append(a, json_string(v[i])) < 0) {
            return NULL;
        }
    }
    return TAKE_PTR(a);
}

/* The common head of a resource. */
static json_t *resource_new(const char *odata_id, const char *odata_type, const char *id,
                            const char *name)
{
    _cleanup_(cleanup_jsonp) json_t *o = json_object();
    if (!o || put_str(o, "@odata.id", odata_id) < 0 || put_str(o, "@odata.type", odata_type) < 0 ||
        put_str(o, "Id", id) < 0 || put_str(o, "Name", name) < 0) {
        return NULL;
    }
    return TAKE_PTR(o);
}

/* Memory ran out, or an invariant broke (logged where it did): 500 InternalError. */
static void respond_internal(struct rf_request *rq)
{
    rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
}

static void respond_busy(struct rf_request *rq)
{
    rf_header(rq, "Retry-After", "1");
    rf_errorf(rq, 503, RF_MSG_SERVICE_TEMPORARILY_UNAVAILABLE, "1", NULL);
}

/*
 * Text for a JSON string. Library and notifier messages are UTF-8 (names from certificates are
 * checked); anything else that slips through is shown with '?' for bytes outside printable
 * ASCII rather than failing the answer.
 */
static json_t *text_json(const char *s)
{
    json_t *v = json_string(s);
    if (v) {
        return v;
    }
    char buf[512];
    size_t n = 0;
    for (; s[n] && n + 1 < sizeof(buf); n++) {
        unsigned char c = (unsigned char)s[n];
        buf[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    buf[n] = '\0';
    return json_string(buf);
}

/*
 * A warning on a request that succeeded (a notifier that failed, an expired certificate
 * accepted by policy). Base has no warning message for this; GeneralError's text points to
 * Resolution, which carries the specifics, and the severity says that the request succeeded.
 */
static json_t *warning_message(const char *text)
{
    _cleanup_(cleanup_jsonp) json_t *m = rf_message(RF_MSG_GENERAL_ERROR, NULL, 0);
    if (!m || put(m, "Resolution", text_json(text)) < 0 ||
        put(m, "Severity", json_string("Warning")) < 0 ||
        put(m, "MessageSeverity", json_string("Warning")) < 0) {
        return NULL;
    }
    return TAKE_PTR(m);
}

/* ---- rendering certificates ---- */

/* The Redfish KeyUsage enum (Certificate.json), key usages first, then extended key usages. */
static const char *const redfish_key_usages[] = {
    "DigitalSignature", "NonRepudiation",       "KeyEncipherment",      "DataEncipherment",
    "KeyAgreement",     "KeyCertSign",          "CRLSigning",           "EncipherOnly",
    "DecipherOnly",     "ServerAuthentication", "ClientAuthentication", "CodeSigning",
    "EmailProtection",  "Timestamping",         "OCSPSigning",
};

/* KeyUsage names for what the certificate carries; the library's Redfish name table decides. */
static json_t *key_usage_array(const struct cert_info *ci)
{
    _cleanup_(cleanup_jsonp) json_t *a = json_array();
    if (!a) {
        return NULL;
    }
    for (size_t i = 0; i < ELEMENTSOF(redfish_key_usages); i++) {
        uint32_t ku = 0;
        uint32_t eku = 0;
        if (key_usage_from_redfish(&redfish_key_usages[i], 1, &ku, &eku, NULL) < 0) {
            continue;
        }
        bool has = (ci->has_key_usage && (ci->key_usage & ku)) || (ci->has_eku && (ci->eku & eku));
        if (has && append(a, json_string(redfish_key_usages[i])) < 0) {
            return NULL;
        }
    }
    return TAKE_PTR(a);
}

/* Certificate Identifier; alternative names only for the subject (the schema forbids them in
 * Issuer). */
static json_t *identifier(const struct cert_name *n, const struct cert_info *sans)
{
    _cleanup_(cleanup_jsonp) json_t *o = json_object();
    if (!o || put_str(o, "CommonName", n->common_name) < 0 ||
        put_str(o, "Organization", n->organization) < 0 ||
        put_str(o, "OrganizationalUnit", n->organizational_unit) < 0 ||
        put_str(o, "City", n->locality) < 0 || put_str(o, "State", n->state) < 0 ||
        put_str(o, "Country", n->country) < 0 || put_str(o, "Email", n->email) < 0 ||
        put_str(o, "DisplayString", n->rfc4514) < 0) {
        return NULL;
    }
    if (sans && sans->san_dns.n + sans->san_ip.n + sans->san_email.n + sans->san_uri.n > 0) {
        _cleanup_(cleanup_jsonp) json_t *a = json_array();
        if (!a || append_list(a, &sans->san_dns) < 0 || append_list(a, &sans->san_ip) < 0 ||
            append_list(a, &sans->san_email) < 0 || append_list(a, &sans->san_uri) < 0 ||
            put(o, "AlternativeNames", TAKE_PTR(a)) < 0) {
            return NULL;
        }
    }
    return TAKE_PTR(o);
}

static json_t *action_object(const char *target, const char *action_info)
{
    _cleanup_(cleanup_jsonp) json_t *o = json_object();
    if (!o || put_str(o, "target", target) < 0 ||
        put_str(o, "@Redfish.ActionInfo", action_info) < 0) {
        return NULL;
    }
    return TAKE_PTR(o);
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

/* The Certificate resource for entry e of snap, at loc (the URI the client used). */
static json_t *cert_body(const struct cert_location *loc, const struct ep_snapshot *snap,
                         const struct cert_entry *e)
{
    const struct cert_info *ci = e->info;
    char uri[URI_MAX];
    char before[32];
    char after[32];

    if (member_uri(loc, e->id, NULL, uri) < 0) {
        return NULL;
    }
    _cleanup_free_ char *serial = NULL;
    if (serial_colons(ci->serial_hex, &serial) < 0) {
        return NULL;
    }
    unix_to_iso8601(ci->not_before, before, sizeof(before));
    unix_to_iso8601(ci->not_after, after, sizeof(after));

    /* A server or client certificate is shown with its chain (cert_entry.pem). */
    bool is_chain = loc->type != ENDPOINT_AUTHORITY && snap->chain && sk_X509_num(snap->chain) > 0;
    int64_t now = (int64_t)time(NULL);
    bool is_valid_now = now >= ci->not_before && now <= ci->not_after;

    _cleanup_(cleanup_jsonp) json_t *o =
        resource_new(uri, "#" SCHEMA_CERT ".Certificate", e->id, loc->member_name);
    _cleanup_(cleanup_jsonp) json_t *status = json_object();
    if (!o || !status || put_str(status, "State", "Enabled") < 0 ||
        put_str(status, "Health", is_valid_now ? "OK" : "Warning") < 0) {
        return NULL;
    }
    if (put(o, "CertificateString", json_stringn(e->pem, e->pem_len)) < 0 ||
        put_str(o, "CertificateType", is_chain ? "PEMchain" : "PEM") < 0 ||
        put(o, "Issuer", identifier(&ci->issuer, NULL)) < 0 ||
        put(o, "Subject", identifier(&ci->subject, ci)) < 0 ||
        put_str(o, "ValidNotBefore", before) < 0 || put_str(o, "ValidNotAfter", after) < 0 ||
        put(o, "KeyUsage", key_usage_array(ci)) < 0 || put_str(o, "SerialNumber", serial) < 0 ||
        put_str(o, "Fingerprint", ci->fingerprint_sha256) < 0 ||
        put_str(o, "FingerprintHashAlgorithm", FINGERPRINT_ALG) < 0 ||
        put_str(o, "SignatureAlgorithm", ci->signature_alg) < 0 ||
        put(o, "Status", TAKE_PTR(status)) < 0) {
        return NULL;
    }

    /* Rekey and Renew make CSRs for our own key; a CA in the truststore has none here. */
    if (loc->type != ENDPOINT_AUTHORITY) {
        char rekey[URI_MAX];
        char rekey_ai[URI_MAX];
        char renew[URI_MAX];
        char renew_ai[URI_MAX];
        if (member_uri(loc, e->id, PART_REKEY, rekey) < 0 ||
            member_uri(loc, e->id, PART_REKEY_AI, rekey_ai) < 0 ||
            member_uri(loc, e->id, PART_RENEW, renew) < 0 ||
            member_uri(loc, e->id, PART_RENEW_AI, renew_ai) < 0) {
            return NULL;
        }
        _cleanup_(cleanup_jsonp) json_t *actions = json_object();
        if (!actions || put(actions, "#" ACTION_REKEY, action_object(rekey, rekey_ai)) < 0 ||
            put(actions, "#" ACTION_RENEW, action_object(renew, renew_ai)) < 0 ||
            put(o, "Actions", TAKE_PTR(actions)) < 0) {
            return NULL;
        }
    }
    return TAKE_PTR(o);
}

/* ---- jobs: changes and CSRs on the worker pool ---- */

enum job_kind { JOB_INSTALL, JOB_DELETE, JOB_CSR, JOB_REKEY, JOB_RENEW, JOB_KIND_MAX };

struct cert_job {
    enum job_kind kind;
    struct rf_request *rq;
    struct manager *m;
    struct endpoint *ep;
    const struct cert_location *loc; /* where the answer points */
    /* inputs, borrowed from rq (see the file comment) */
    struct span data;
    bool has_replace;
    char id[MANAGER_ID_MAX]; /* replaced, deleted, rekeyed or renewed certificate */
    struct key_spec spec;
    bool has_spec;
    struct csr_request req;
    const char **alt_names; /* owned array of borrowed strings */
    const char **key_usage;
    const char *challenge;
    const char *param; /* the request parameter a library error is blamed on */
    /* results */
    int r;
    struct certd_err err;
    struct manager_change change;
    struct ep_snapshot *snap; /* the endpoint right after this change */
    char *csr_pem;
    json_t *messages; /* warnings for @Message.ExtendedInfo */
};

static struct cert_job *job_free(struct cert_job *j)
{
    if (!j) {
        return NULL;
    }
    free((void *)j->alt_names);
    free((void *)j->key_usage);
    (void)ep_snapshot_unref(j->snap);
    free(j->csr_pem);
    if (j->messages) {
        json_decref(j->messages);
    }
    free(j);
    return NULL;
}
DEFINE_CLEANUP_STRUCT(cert_job, job_free)

static struct cert_job *job_new(struct rf_request *rq, enum job_kind kind,
                                const struct cert_location *loc, struct endpoint *ep)
{
    struct cert_job *j = calloc(1, sizeof(*j));
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
static void job_run(void *arg)
{
    struct cert_job *j = arg;

    switch (j->kind) {
    case JOB_INSTALL:
        j->r = manager_install(j->m, j->ep, j->data, j->has_replace ? j->id : NULL, &j->change,
                               &j->err);
        break;
    case JOB_DELETE:
        j->r = manager_delete(j->m, j->ep, j->id, &j->change, &j->err);
        break;
    case JOB_CSR:
        j->r = manager_generate_csr(j->m, j->ep, &j->spec, &j->req, &j->csr_pem, &j->err);
        break;
    case JOB_REKEY:
        j->r = manager_rekey_csr(j->m, j->ep, j->id, j->has_spec ? &j->spec : NULL, j->challenge,
                                 &j->csr_pem, &j->err);
        break;
    case JOB_RENEW:
        j->r = manager_renew_csr(j->m, j->ep, j->id, j->challenge, &j->csr_pem, &j->err);
        break;
    case JOB_KIND_MAX:
    default:
        j->r = err_set(&j->err, -EINVAL, CERTD_E_INTERNAL, "unknown job");
        break;
    }
    /* Taken here, on the serial lane, so that no later change can slip in before it. */
    if (j->r >= 0 && (j->kind == JOB_INSTALL || j->kind == JOB_DELETE)) {
        j->snap = endpoint_snapshot(j->ep);
    }
}

static int job_add_warning(struct cert_job *j, const char *text)
{
    if (!j->messages) {
        j->messages = json_array();
        if (!j->messages) {
            return -ENOMEM;
        }
    }
    return append(j->messages, warning_message(text));
}

/* Answer an install (JOB_INSTALL): 200, the Certificate and its Location, as bmcweb does. */
static void respond_installed(struct cert_job *j)
{
    struct rf_request *rq = j->rq;
    const struct cert_entry *e = j->snap ? ep_snapshot_find(j->snap, j->change.id) : NULL;
    char uri[URI_MAX];

    if (!e || member_uri(j->loc, e->id, NULL, uri) < 0) {
        log_err("installed certificate %s on %s is not in the new snapshot", j->change.id,
                endpoint_name(j->ep));
        respond_internal(rq);
        return;
    }
    _cleanup_(cleanup_jsonp) json_t *body = cert_body(j->loc, j->snap, e);
    if (!body || (j->messages && put(body, "@Message.ExtendedInfo", TAKE_PTR(j->messages)) < 0)) {
        respond_internal(rq);
        return;
    }
    rf_header(rq, "Location", uri);
    rf_respond(rq, 200, TAKE_PTR(body));
}

/* Answer a delete: 204, or 200 with the messages when there is something to say. */
static void respond_deleted(struct cert_job *j)
{
    struct rf_request *rq = j->rq;

    if (!j->messages) {
        rf_respond(rq, 204, NULL);
        return;
    }
    _cleanup_(cleanup_jsonp) json_t *body = json_object();
    if (!body || put(body, "@Message.ExtendedInfo", TAKE_PTR(j->messages)) < 0) {
        respond_internal(rq);
        return;
    }
    rf_respond(rq, 200, TAKE_PTR(body));
}

/* Loop thread: the endpoint's users were told (or not); now answer. */
static void job_notified(void *arg, int result, const char *message)
{
    _cleanup_(cleanup_cert_job) struct cert_job *j = arg;

    if (result < 0) {
        char text[NOTIFIER_MESSAGE_MAX + 96];
        (void)snprintf(text, sizeof(text),
                       "The certificate change was stored, but reloading its users failed: %s",
                       message && message[0] ? message : "no reason given");
        if (job_add_warning(j, text) < 0) {
            respond_internal(j->rq);
            return;
        }
    }
    if (j->kind == JOB_INSTALL) {
        respond_installed(j);
    } else {
        respond_deleted(j);
    }
}

static void respond_csr(struct cert_job *j)
{
    struct rf_request *rq = j->rq;
    char uri[URI_MAX];
    _cleanup_(cleanup_jsonp) json_t *body = json_object();

    if (!body || put_str(body, "CSRString", j->csr_pem) < 0) {
        respond_internal(rq);
        return;
    }
    if (j->kind == JOB_CSR) {
        if (put(body, "CertificateCollection", rf_link(j->loc->uri)) < 0) {
            respond_internal(rq);
            return;
        }
    } else if (member_uri(j->loc, j->id, NULL, uri) < 0 ||
               put(body, "Certificate", rf_link(uri)) < 0) {
        respond_internal(rq);
        return;
    }
    rf_respond(rq, 200, TAKE_PTR(body));
}

/* For the log line of a change or a CSR for an existing certificate (JOB_CSR has its own). */
static const char *const job_verbs[JOB_KIND_MAX] = {
    [JOB_INSTALL] = "installed certificate",
    [JOB_DELETE] = "deleted certificate",
    [JOB_REKEY] = "generated a rekey CSR for certificate",
    [JOB_RENEW] = "generated a renewal CSR for certificate",
};

/* Loop thread: the worker finished (or the pool is shutting down). */
static void job_done(void *arg, bool cancelled)
{
    _cleanup_(cleanup_cert_job) struct cert_job *j = arg;
    struct rf_request *rq = j->rq;

    if (cancelled) {
        respond_busy(rq);
        return;
    }
    if (j->r < 0) {
        if (!err_is_set(&j->err)) {
            (void)err_set(&j->err, j->r, CERTD_E_INTERNAL, "the request failed");
        }
        rf_error_certd(rq, &j->err, j->param);
        return;
    }

    if (j->kind == JOB_CSR) {
        log_notice("%s: generated a CSR on endpoint %s", rq->who.user, endpoint_name(j->ep));
    } else {
        log_notice("%s: %s %s on endpoint %s", rq->who.user, job_verbs[j->kind],
                   j->kind == JOB_INSTALL ? j->change.id : j->id, endpoint_name(j->ep));
    }

    switch (j->kind) {
    case JOB_INSTALL:
    case JOB_DELETE:
        if (j->change.warning[0] && job_add_warning(j, j->change.warning) < 0) {
            respond_internal(rq);
            return;
        }
        {
            /* job_notified owns the job from here; it may run before this returns. */
            struct endpoint *ep = j->ep;
            daemon_endpoint_changed(rq->d, ep, job_notified, TAKE_PTR(j));
        }
        return;
    case JOB_CSR:
    case JOB_REKEY:
    case JOB_RENEW:
        respond_csr(j);
        return;
    case JOB_KIND_MAX:
    default:
        respond_internal(rq);
        return;
    }
}

/* Hand j to the pool; on refusal answer 503 and drop it. */
static void job_submit(struct cert_job *j, enum worker_lane lane)
{
    struct rf_request *rq = j->rq;
    int r = worker_submit(rq->d->workers, lane, job_run, job_done, j);
    if (r < 0) {
        (void)job_free(j);
        respond_busy(rq);
    }
}

/* ---- collections and members ---- */

/* What uploads may call themselves: both are PEM text to us. */
static const char *const certificate_types[] = { "PEM", "PEMchain" };

static void collection_get(struct rf_request *rq, const struct cert_location *loc,
                           struct endpoint *ep)
{
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = NULL;
    _cleanup_(cleanup_jsonp) json_t *o =
        resource_new(loc->uri, "#" SCHEMA_COLLECTION "." SCHEMA_COLLECTION, NULL, loc->name);
    _cleanup_(cleanup_jsonp) json_t *members = json_array();
    if (!o || !members) {
        respond_internal(rq);
        return;
    }
    snap = endpoint_snapshot(ep);
    for (size_t i = 0; i < snap->n; i++) {
        char uri[URI_MAX];
        if (member_uri(loc, snap->entries[i].id, NULL, uri) < 0 ||
            append(members, rf_link(uri)) < 0) {
            respond_internal(rq);
            return;
        }
    }
    /* bmcweb's annotation, which clients of it read before an upload. */
    if (put(o, "Members@odata.count", json_integer((json_int_t)snap->n)) < 0 ||
        put(o, "Members", TAKE_PTR(members)) < 0 ||
        put(o, "@Redfish.SupportedCertificates",
            string_array(certificate_types, ELEMENTSOF(certificate_types))) < 0) {
        respond_internal(rq);
        return;
    }
    rf_respond(rq, 200, TAKE_PTR(o));
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
    _cleanup_(cleanup_cert_job) struct cert_job *j = job_new(rq, JOB_INSTALL, loc, ep);
    if (!j) {
        respond_internal(rq);
        return;
    }
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
        j->data = span_from_str(s);
    } else {
        j->data = rq->body;
    }
    job_submit(TAKE_PTR(j), WORKER_LANE_SERIAL);
}

static void h_collection(struct rf_request *rq)
{
    const struct cert_location *loc = route_location(rq->route);
    struct endpoint *ep = loc ? location_endpoint(rq->d, loc) : NULL;

    if (!ep) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, loc ? loc->uri : rq->route->pattern,
                  NULL);
        return;
    }
    if (rq->method == HTTP_METHOD_POST) {
        collection_post(rq, loc, ep);
    } else {
        collection_get(rq, loc, ep);
    }
}

/*
 * The member a route names: its location, endpoint and (for GET) a snapshot holding it.
 * Answers 404 itself and returns false when there is none.
 */
static bool find_member(struct rf_request *rq, const struct cert_location **ret_loc,
                        struct endpoint **ret_ep, struct ep_snapshot **ret_snap,
                        char ret_id[static MANAGER_ID_MAX])
{
    const struct cert_location *loc = route_location(rq->route);
    struct endpoint *ep = loc ? location_endpoint(rq->d, loc) : NULL;
    const char *id = rq->n_params > 0 ? rq->params[0] : "";
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = ep ? endpoint_snapshot(ep) : NULL;
    const struct cert_entry *e = snap ? ep_snapshot_find(snap, id) : NULL;

    if (!e) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_NOT_FOUND, "Certificate", id, NULL);
        return false;
    }
    memcpy(ret_id, e->id, MANAGER_ID_MAX);
    *ret_loc = loc;
    *ret_ep = ep;
    if (ret_snap) {
        *ret_snap = TAKE_PTR(snap);
    }
    return true;
}

static void h_member(struct rf_request *rq)
{
    const struct cert_location *loc = NULL;
    struct endpoint *ep = NULL;
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = NULL;
    char id[MANAGER_ID_MAX];

    if (!find_member(rq, &loc, &ep, &snap, id)) {
        return;
    }
    if (rq->method == HTTP_METHOD_DELETE) {
        _cleanup_(cleanup_cert_job) struct cert_job *j = job_new(rq, JOB_DELETE, loc, ep);
        if (!j) {
            respond_internal(rq);
            return;
        }
        memcpy(j->id, id, sizeof(j->id));
        job_submit(TAKE_PTR(j), WORKER_LANE_SERIAL);
        return;
    }
    _cleanup_(cleanup_jsonp) json_t *body = cert_body(loc, snap, ep_snapshot_find(snap, id));
    if (!body) {
        respond_internal(rq);
        return;
    }
    rf_respond(rq, 200, TAKE_PTR(body));
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

    struct certd_err err = { 0 };
    int r = key_spec_from_names(alg, (unsigned)bits, curve, ret, &err);
    if (r < 0) {
        const char *param = err.code == CERTD_E_CURVE_UNSUPPORTED      ? "KeyCurveId"
                            : err.code == CERTD_E_KEY_SIZE_UNSUPPORTED ? "KeyBitLength"
                                                                       : "KeyPairAlgorithm";
        rf_error_certd(rq, &err, param);
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
        _cleanup_(cleanup_jsonp) json_t *a = json_array();
        if (!a) {
            return NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(locations); i++) {
            if (locations[i].type != ENDPOINT_AUTHORITY && location_endpoint(d, &locations[i]) &&
                append(a, json_string(locations[i].uri)) < 0) {
                return NULL;
            }
        }
        return TAKE_PTR(a);
    }
    case AV_KEY_ALGS: {
        _cleanup_(cleanup_jsonp) json_t *a = string_array(key_alg_names, ELEMENTSOF(key_alg_names));
        if (!a) {
            return NULL;
        }
        /* Ed25519 is offered only when some endpoint's policy takes it. */
        for (size_t i = 0; i < manager_n_endpoints(d->manager); i++) {
            const struct config_endpoint *c = endpoint_config(manager_endpoint_at(d->manager, i));
            if (c->type != ENDPOINT_AUTHORITY && c->allow_ed25519) {
                if (append(a, json_string("Ed25519")) < 0) {
                    return NULL;
                }
                break;
            }
        }
        return TAKE_PTR(a);
    }
    case AV_KEY_CURVES:
        return string_array(key_curve_names, ELEMENTSOF(key_curve_names));
    case AV_KEY_USAGES:
        return string_array(redfish_key_usages, ELEMENTSOF(redfish_key_usages));
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
    _cleanup_(cleanup_jsonp) json_t *o = json_object();
    if (!o || put_str(o, "Name", p->name) < 0 ||
        put(o, "Required", json_boolean(p->is_required)) < 0 ||
        put_str(o, "DataType", p->data_type) < 0 ||
        put_str(o, "ObjectDataType", p->object_type) < 0) {
        return NULL;
    }
    if (p->allowable == AV_KEY_BITS) {
        if (put(o, "AllowableNumbers", string_array(key_bits_values, ELEMENTSOF(key_bits_values))) <
            0) {
            return NULL;
        }
    } else if (p->allowable != AV_NONE &&
               put(o, "AllowableValues", allowable_values(d, p->allowable)) < 0) {
        return NULL;
    }
    if (p->array_max > 0 &&
        put(o, "ArraySizeMaximum", json_integer((json_int_t)p->array_max)) < 0) {
        return NULL;
    }
    /* Our one departure from the schema: CommonName defaults to the host name. */
    if (strcmp(p->name, "CommonName") == 0 && d->hostname[0] &&
        put_str(o, "DefaultValue", d->hostname) < 0) {
        return NULL;
    }
    return TAKE_PTR(o);
}

static void respond_action_info(struct rf_request *rq, const char *uri, const char *id,
                                const char *name, const struct action_param *params, size_t n)
{
    _cleanup_(cleanup_jsonp) json_t *o = resource_new(uri, "#" SCHEMA_AI ".ActionInfo", id, name);
    _cleanup_(cleanup_jsonp) json_t *a = json_array();
    if (!o || !a) {
        respond_internal(rq);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (append(a, action_param_json(rq->d, &params[i])) < 0) {
            respond_internal(rq);
            return;
        }
    }
    if (put(o, "Parameters", TAKE_PTR(a)) < 0) {
        respond_internal(rq);
        return;
    }
    rf_respond(rq, 200, TAKE_PTR(o));
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
    const struct cert_location *loc = NULL;
    struct endpoint *ep = NULL;
    char uri[URI_MAX];
    char id[MANAGER_ID_MAX];

    if (!find_member(rq, &loc, &ep, NULL, id)) {
        return;
    }
    if (member_uri(loc, id, is_rekey ? PART_REKEY_AI : PART_RENEW_AI, uri) < 0) {
        respond_internal(rq);
        return;
    }
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

static void h_rekey(struct rf_request *rq)
{
    const char *known[ELEMENTSOF(rekey_params) + 1];
    const struct cert_location *loc = NULL;
    struct endpoint *ep = NULL;
    char id[MANAGER_ID_MAX];

    param_names(rekey_params, ELEMENTSOF(rekey_params), known);
    if (!find_member(rq, &loc, &ep, NULL, id) || !rf_check_known(rq, ACTION_REKEY, known)) {
        return;
    }
    _cleanup_(cleanup_cert_job) struct cert_job *j = job_new(rq, JOB_REKEY, loc, ep);
    if (!j) {
        respond_internal(rq);
        return;
    }
    if (!key_spec_from_request(rq, ACTION_REKEY, endpoint_config(ep), &j->spec, &j->has_spec) ||
        !get_challenge(rq, ACTION_REKEY, &j->challenge)) {
        return;
    }
    memcpy(j->id, id, sizeof(j->id));
    job_submit(TAKE_PTR(j), WORKER_LANE_PARALLEL);
}

static void h_renew(struct rf_request *rq)
{
    const char *known[ELEMENTSOF(renew_params) + 1];
    const struct cert_location *loc = NULL;
    struct endpoint *ep = NULL;
    char id[MANAGER_ID_MAX];

    param_names(renew_params, ELEMENTSOF(renew_params), known);
    if (!find_member(rq, &loc, &ep, NULL, id) || !rf_check_known(rq, ACTION_RENEW, known)) {
        return;
    }
    _cleanup_(cleanup_cert_job) struct cert_job *j = job_new(rq, JOB_RENEW, loc, ep);
    if (!j) {
        respond_internal(rq);
        return;
    }
    if (!get_challenge(rq, ACTION_RENEW, &j->challenge)) {
        return;
    }
    memcpy(j->id, id, sizeof(j->id));
    job_submit(TAKE_PTR(j), WORKER_LANE_PARALLEL);
}

/* ---- CertificateService and CertificateLocations ---- */

static void h_service(struct rf_request *rq)
{
    _cleanup_(cleanup_jsonp) json_t *o =
        resource_new(URI_SERVICE, "#" SCHEMA_SERVICE ".CertificateService", "CertificateService",
                     "Certificate Service");
    _cleanup_(cleanup_jsonp) json_t *actions = json_object();
    if (!o || !actions ||
        put_str(o, "Description", "Actions to generate CSRs and replace certificates") < 0 ||
        put(actions, "#" ACTION_GENERATE_CSR,
            action_object(URI_GENERATE_CSR, URI_GENERATE_CSR_AI)) < 0 ||
        put(actions, "#" ACTION_REPLACE, action_object(URI_REPLACE, URI_REPLACE_AI)) < 0 ||
        put(o, "Actions", TAKE_PTR(actions)) < 0 ||
        put(o, "CertificateLocations", rf_link(URI_LOCATIONS)) < 0) {
        respond_internal(rq);
        return;
    }
    rf_respond(rq, 200, TAKE_PTR(o));
}

static void h_locations(struct rf_request *rq)
{
    _cleanup_(cleanup_jsonp) json_t *o =
        resource_new(URI_LOCATIONS, "#" SCHEMA_LOCATIONS ".CertificateLocations",
                     "CertificateLocations", "Certificate Locations");
    _cleanup_(cleanup_jsonp) json_t *certs = json_array();
    _cleanup_(cleanup_jsonp) json_t *links = json_object();
    if (!o || !certs || !links) {
        respond_internal(rq);
        return;
    }
    for (size_t i = 0; i < ELEMENTSOF(locations); i++) {
        struct endpoint *ep = location_endpoint(rq->d, &locations[i]);
        if (!ep || locations[i].is_alias) {
            continue;
        }
        _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = endpoint_snapshot(ep);
        for (size_t k = 0; k < snap->n; k++) {
            char uri[URI_MAX];
            if (member_uri(&locations[i], snap->entries[k].id, NULL, uri) < 0 ||
                append(certs, rf_link(uri)) < 0) {
                respond_internal(rq);
                return;
            }
        }
    }
    if (put(links, "Certificates@odata.count", json_integer((json_int_t)json_array_size(certs))) <
            0 ||
        put(links, "Certificates", TAKE_PTR(certs)) < 0 || put(o, "Links", TAKE_PTR(links)) < 0) {
        respond_internal(rq);
        return;
    }
    rf_respond(rq, 200, TAKE_PTR(o));
}

/* ---- CertificateService.GenerateCSR ---- */

/* The server or client collection a CertificateCollection link names; answers 400 itself. */
static bool csr_collection(struct rf_request *rq, const struct cert_location **ret_loc,
                           struct endpoint **ret_ep)
{
    const char *uri = NULL;
    if (!rf_get_link(rq, ACTION_GENERATE_CSR, "CertificateCollection", true, &uri)) {
        return false;
    }
    const struct cert_location *loc = location_by_uri(uri);
    struct endpoint *ep = loc ? location_endpoint(rq->d, loc) : NULL;
    if (!ep || loc->type == ENDPOINT_AUTHORITY) {
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
    _cleanup_(cleanup_cert_job) struct cert_job *j = job_new(rq, JOB_CSR, loc, ep);
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
    /* Errors of csr_build name the field at fault in their message. */
    job_submit(TAKE_PTR(j), WORKER_LANE_PARALLEL);
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

    const struct cert_location *loc = NULL;
    char id[MANAGER_ID_MAX];
    if (!member_by_uri(uri, &loc, id)) {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_ERROR, "CertificateUri", ACTION_REPLACE,
                  NULL);
        return;
    }
    struct endpoint *ep = location_endpoint(rq->d, loc);
    _cleanup_(cleanup_ep_snapshot) struct ep_snapshot *snap = ep ? endpoint_snapshot(ep) : NULL;
    if (!snap || !ep_snapshot_find(snap, id)) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_NOT_FOUND, "Certificate", id, NULL);
        return;
    }

    _cleanup_(cleanup_cert_job) struct cert_job *j = job_new(rq, JOB_INSTALL, loc, ep);
    if (!j) {
        respond_internal(rq);
        return;
    }
    j->data = span_from_str(s);
    j->has_replace = true;
    memcpy(j->id, id, sizeof(j->id));
    j->param = "CertificateString";
    job_submit(TAKE_PTR(j), WORKER_LANE_SERIAL);
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

#define ROUTE_GET(pat, sch, h)                                                            \
    {                                                                                     \
        .pattern = (pat), .methods = M(GET), .privileges = PRIV_READ, .is_redfish = true, \
        .body = RF_BODY_NONE, .schema = (sch), .handler = (h)                             \
    }
#define ROUTE_ACTION(pat, h)                                                               \
    {                                                                                      \
        .pattern = (pat), .methods = M(POST), .privileges = PRIV_POST, .is_redfish = true, \
        .body = RF_BODY_JSON, .schema = NULL, .handler = (h)                               \
    }
#define ROUTE_COLLECTION(uri)                                                         \
    {                                                                                 \
        .pattern = (uri), .methods = M(GET) | M(POST), .privileges = PRIV_READ_WRITE, \
        .is_redfish = true, .body = RF_BODY_JSON_OR_PEM, .schema = SCHEMA_COLLECTION, \
        .handler = h_collection                                                       \
    }
#define ROUTE_MEMBER(uri, methods_)                                                          \
    {                                                                                        \
        .pattern = uri SUB_MEMBER, .methods = (methods_), .privileges = PRIV_READ_WRITE,     \
        .is_redfish = true, .body = RF_BODY_NONE, .schema = SCHEMA_CERT, .handler = h_member \
    }
/* A server or client collection: members with Rekey and Renew and their ActionInfo. */
#define ROUTES_KEYED(uri, member_methods)                                           \
    ROUTE_COLLECTION(uri), ROUTE_MEMBER(uri, member_methods),                       \
        ROUTE_ACTION(uri SUB_REKEY, h_rekey), ROUTE_ACTION(uri SUB_RENEW, h_renew), \
        ROUTE_GET(uri SUB_REKEY_AI, SCHEMA_AI, h_rekey_info),                       \
        ROUTE_GET(uri SUB_RENEW_AI, SCHEMA_AI, h_renew_info)

const struct rf_route rf_cert_routes[] = {
    ROUTE_GET(URI_SERVICE, SCHEMA_SERVICE, h_service),
    ROUTE_GET(URI_LOCATIONS, SCHEMA_LOCATIONS, h_locations),
    ROUTE_GET(URI_GENERATE_CSR_AI, SCHEMA_AI, h_generate_csr_info),
    ROUTE_GET(URI_REPLACE_AI, SCHEMA_AI, h_replace_info),
    ROUTE_ACTION(URI_GENERATE_CSR, h_generate_csr),
    ROUTE_ACTION(URI_REPLACE, h_replace),
    /* The HTTPS certificate cannot be deleted through Redfish (seed 002, as bmcweb): DELETE on
     * it is 405 with Allow: GET, HEAD. LDAP and truststore certificates can. */
    ROUTES_KEYED(URI_HTTPS, M(GET)),
    ROUTES_KEYED(URI_LDAP, M(GET) | M(DELETE)),
    ROUTE_COLLECTION(URI_TRUSTED),
    ROUTE_MEMBER(URI_TRUSTED, M(GET) | M(DELETE)),
    ROUTE_COLLECTION(URI_TRUSTSTORE_ALIAS),
    ROUTE_MEMBER(URI_TRUSTSTORE_ALIAS, M(GET) | M(DELETE)),
    { .pattern = NULL },
};
