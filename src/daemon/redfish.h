/* SPDX-License-Identifier: Apache-2.0 */
/*
 * certd's HTTP front ends: Redfish (redfish.c: routing, authentication, errors, headers;
 * rf-service.c: service documents, sessions, accounts, managers; rf-cert.c: certificates) and
 * the legacy OpenBMC REST API (legacy.c). front_handle is the one http_handler_fn; it routes
 * every request through one table of routes (each file contributes its part), so that method
 * checks (405 + Allow), authentication (401 + WWW-Authenticate), privileges (403), OData-Version
 * (412), query parameters (501/400), media types (415) and body parsing (400 MalformedJSON) are
 * decided in one place before any handler runs.
 *
 * Handlers get a struct rf_request, answer it exactly once with rf_respond*() or rf_error*() --
 * at once or later from the loop thread after a worker job -- and never touch files or OpenSSL
 * directly (they call manager.h, auth.h).
 *
 * Order of the checks in front_handle (the first failing one answers):
 *   error request from http.h (400/408/413/414/431/501/505) -> route (404) -> method (405 with
 *   Allow; OPTIONS answers 204 with Allow, without authentication) -> Redfish routes only:
 *   OData-Version (412), query parameters (400 for a bad value of a known one, 501 for one we do
 *   not support; parameters not starting with '$' and not reserved are ignored) ->
 *   authentication (401 + WWW-Authenticate, 429 + Retry-After when throttled, 503 + Retry-After
 *   when unavailable) -> privileges (403) -> body: media type (415), JSON (400) -> handler.
 * Static facts (routes, methods, query syntax) are decided before authentication: they are the
 * same for everybody and public in the schema; nothing a handler could reveal runs before it.
 *
 * Error bodies: Redfish routes (and unknown URIs outside /xyz/) get
 *   {"error": {"code": MessageId, "message": text, "@Message.ExtendedInfo": [messages]}};
 * legacy routes (is_redfish false, and unknown URIs under /xyz/) get phosphor-rest's shape
 *   {"status": "error", "message": "<status> <reason>", "data": {"description": text}}
 * from the same rf_error*() calls, and no OData headers.
 *
 * Every request is logged once, at debug level, when it is answered: method, path, status,
 * user, duration. Never a header value, a query or a body.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "daemon.h"
#include "error/error.h"
#include "http.h"
#include "pin/pin.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/span.h"

/* {} segments of one route pattern. */
#define RF_PARAMS_MAX 4u
#define RF_PARAM_MAX  128u
/*
 * JSON request bodies: nesting depth and values (members and array elements) over the whole
 * document. The largest request we take (GenerateCSR with CERTD_SANS_MAX names and
 * CERTD_KEY_USAGES_MAX usages) has about 120 values 3 levels deep; the bounds keep jansson's
 * allocations for one request small whatever the body size limit is.
 */
#define RF_JSON_DEPTH_MAX  16u
#define RF_JSON_VALUES_MAX 1024u
/* Bytes of one client-supplied string quoted in a message (longer ones end in "..."). */
#define RF_ARG_MAX 128u

/* The entry point: the http_handler_fn of certd's server (userdata: struct daemon *). */
void front_handle(struct http_request *req, void *userdata);

/* What a route accepts as a request body (for POST, PUT, PATCH). */
enum rf_body {
    RF_BODY_NONE,        /* a body is refused (400 for non-empty) */
    RF_BODY_JSON,        /* application/json (charset utf-8 allowed), an object: rq->json */
    RF_BODY_JSON_OR_PEM, /* also application/x-pem-file or application/octet-stream: rq->body */
    RF_BODY_PEM,         /* any type but JSON: raw bytes (legacy REST) */
};
/*
 * Media types: "application/json" (parameter charset=utf-8 only), "application/x-pem-file",
 * "application/octet-stream"; anything else where a body is given is 415. An empty body on a
 * JSON route is taken as {} (actions without parameters), whatever the Content-Type. Bodies of
 * GET, HEAD, DELETE and OPTIONS are not looked at.
 */

struct rf_request;
typedef void (*rf_handler_fn)(struct rf_request *rq);

struct rf_route {
    /* "/redfish/v1/SessionService/Sessions/{}": literal segments and {} for a parameter (one
     * segment, 1..RF_PARAM_MAX bytes of [A-Za-z0-9._~-]). Matched after percent-decoding, with
     * one trailing slash ignored (but "/redfish/v1/" is the root's own id). */
    const char *pattern;
    uint32_t methods;                     /* 1u << HTTP_METHOD_*; GET implies HEAD */
    uint32_t privileges[HTTP_METHOD_MAX]; /* AUTH_PRIV_* all needed per method */
    bool is_public;                       /* no authentication (service documents only) */
    bool is_redfish;                      /* Redfish headers and error bodies (else legacy) */
    enum rf_body body;
    const char *schema; /* "Certificate.v1_11_0" for Link: rel=describedby,
                           NULL for none */
    rf_handler_fn handler;
    /* Methods served without any credentials (the login: POST SessionService/Sessions);
     * credentials sent along are ignored. */
    uint32_t unauthenticated_methods;
    /* The route table's own (borrowed, static): what the handler serves, such as rf-cert.c's
     * certificate location, so that no handler parses its pattern. NULL for none. */
    const void *data;
};
/*
 * Privileges: privileges[HTTP_METHOD_GET] also applies to HEAD. A method whose entry is 0 needs
 * AUTH_PRIV_LOGIN for GET and AUTH_PRIV_CONFIGURE_MANAGER for anything else, so a forgotten
 * entry never opens a change to every user. Handlers check finer rules themselves (one's own
 * session or account) with rf_has_privileges.
 */

/* The route tables, each NULL-pattern terminated, in match order. */
extern const struct rf_route rf_service_routes[]; /* rf-service.c */
extern const struct rf_route rf_cert_routes[];    /* rf-cert.c */
extern const struct rf_route legacy_routes[];     /* legacy.c */
extern const struct rf_route ibm_routes[];        /* ibm.c: SignCSR for consoles */
extern const struct rf_route rf_ca_routes[];      /* rf-ca.c: the CA's OEM resources */
extern const struct rf_route rf_pins_routes[];    /* rf-pins.c: pinned peers (OEM) */

struct rf_request {
    struct daemon *d;
    struct http_request *http;
    const struct rf_route *route;
    enum http_method method; /* HEAD requests are presented as GET (http.h drops the body) */
    char params[RF_PARAMS_MAX][RF_PARAM_MAX + 1]; /* the {} segments, in order */
    size_t n_params;
    struct auth_identity who; /* the authenticated user (zeroed on public routes) */
    /* The connection's client certificate key pin (peers.h), whoever authenticated */
    bool has_client_pin;
    struct pin client_pin;
    json_t *json;     /* RF_BODY_JSON(_OR_PEM) with a JSON body: the object (owned) */
    struct span body; /* the raw body */
    /* private to redfish.c */
    void *priv_;
};

/*
 * Answer with a JSON body (stolen; NULL = no body) and status. Adds OData-Version: 4.0,
 * Cache-Control: no-store, Content-Type: application/json; charset=utf-8, and for
 * GET/HEAD the route's Allow and (status 200) Link headers. Frees rq. Legacy routes get no
 * OData-Version and no Link. Loop thread only, like every function here.
 */
void rf_respond(struct rf_request *rq, int status, json_t *body);
/* Answer 200 with body (stolen), or 500 InternalError when body is NULL: building it failed
 * (the payload chains below). Frees rq. */
void rf_respond_200(struct rf_request *rq, json_t *body);
/* Add a response header before rf_respond (Location, X-Auth-Token, ETag, Retry-After). Values
 * with CR or LF, and headers past HTTP_RESPONSE_HEADERS_MAX, are dropped (and logged). */
void rf_header(struct rf_request *rq, const char *name, const char *value);
/* Answer with a non-JSON body ($metadata XML, legacy text). Frees rq. */
void rf_respond_raw(struct rf_request *rq, int status, const char *content_type, const void *body,
                    size_t len);
/*
 * Answer a legacy route's success: 200 with phosphor-rest's
 * {"status": "ok", "message": "200 OK", "data": data}, data (stolen) being
 * {"description": description} when data is NULL and description is not (description, any
 * text, is cut and cleaned as message arguments are), else null. Errors of legacy routes come
 * from the rf_error*() calls below, in the same shape. Frees rq.
 */
void rf_respond_legacy(struct rf_request *rq, const char *description, json_t *data);

/* The route a path (a URI from a request body, not percent-decoded; one trailing slash
 * ignored) names, as the dispatcher would find it, with its {} segments in ret_params and
 * their count in *ret_n (both written only when a route is found); NULL when none does. */
const struct rf_route *
rf_route_lookup(const char *path, char ret_params[RF_PARAMS_MAX][RF_PARAM_MAX + 1], size_t *ret_n);

/*
 * Base message registry messages (Base.1.x, as in the DMTF registry): id and arguments.
 * rf_message builds one ExtendedInfo object ({@odata.type, MessageId, Message, MessageArgs,
 * Severity, MessageSeverity, Resolution}); rf_error answers with status and an error body
 * {"error": {"code", "message", "@Message.ExtendedInfo": [that message]}}. Arguments are
 * strings (numbers formatted by the caller); never pass key material or an upload's bytes.
 */
enum rf_msg {
    RF_MSG_GENERAL_ERROR,
    RF_MSG_INTERNAL_ERROR,
    RF_MSG_MALFORMED_JSON,
    RF_MSG_PROPERTY_MISSING,                  /* (property) */
    RF_MSG_PROPERTY_VALUE_TYPE_ERROR,         /* (value, property) */
    RF_MSG_PROPERTY_VALUE_NOT_IN_LIST,        /* (value, property) */
    RF_MSG_PROPERTY_VALUE_FORMAT_ERROR,       /* (value, property) */
    RF_MSG_PROPERTY_UNKNOWN,                  /* (property) */
    RF_MSG_ACTION_PARAMETER_MISSING,          /* (action, parameter) */
    RF_MSG_ACTION_PARAMETER_VALUE_ERROR,      /* (parameter, action) -- ActionParameterValueError */
    RF_MSG_ACTION_PARAMETER_VALUE_TYPE_ERROR, /* (value, parameter, action) */
    RF_MSG_ACTION_PARAMETER_UNKNOWN,          /* (action, parameter) */
    RF_MSG_ACTION_NOT_SUPPORTED,              /* (action) */
    RF_MSG_RESOURCE_NOT_FOUND,                /* (type, id) */
    RF_MSG_RESOURCE_MISSING_AT_URI,           /* (uri) */
    RF_MSG_CREATE_LIMIT_REACHED,              /* () CreateLimitReachedForResource */
    RF_MSG_INSUFFICIENT_PRIVILEGE,
    RF_MSG_NO_VALID_SESSION,
    RF_MSG_ACCESS_DENIED,         /* (uri) */
    RF_MSG_OPERATION_NOT_ALLOWED, /* method not allowed on the resource */
    RF_MSG_QUERY_NOT_SUPPORTED,
    RF_MSG_QUERY_PARAMETER_VALUE_ERROR, /* (value, parameter) -- QueryParameterValueFormatError */
    RF_MSG_SERVICE_TEMPORARILY_UNAVAILABLE, /* (retry seconds) */
    RF_MSG_PAYLOAD_TOO_LARGE,
    RF_MSG_UNSUPPORTED_MEDIA_TYPE, /* (media type) -- closest Base message, see redfish.c */
    RF_MSG_PRECONDITION_FAILED,
    RF_MSG_SESSION_LIMIT_EXCEEDED,
    RF_MSG_CERTIFICATE_INVALID, /* (reason): 400 for an upload the library refused */
    /* added after the first version of this header */
    RF_MSG_EMPTY_JSON,
    RF_MSG_UNRECOGNIZED_REQUEST_BODY,
    RF_MSG_ACTION_PARAMETER_VALUE_FORMAT_ERROR, /* (value, parameter, action) */
    RF_MSG_RESOURCE_CANNOT_BE_DELETED,
    RF_MSG_MAX
};
/*
 * certd answers with the Base 1.5.0 registry (Base.1.5.0.json): MessageId "Base.1.5.<Key>",
 * the registry's text with %1.. replaced, its Severity (also as MessageSeverity) and
 * Resolution. Where Base 1.5 has no message of that meaning, the closest one stands in:
 *   RF_MSG_ACTION_PARAMETER_VALUE_ERROR  -> ActionParameterValueFormatError, with the value
 *                                           taken from rq->json[parameter] (rf_error only);
 *   RF_MSG_OPERATION_NOT_ALLOWED         -> ResourceCannotBeDeleted for DELETE, otherwise
 *                                           ActionNotSupported with the method as the action;
 *   RF_MSG_PAYLOAD_TOO_LARGE (limit)     -> GeneralError, Resolution naming the limit;
 *   RF_MSG_UNSUPPORTED_MEDIA_TYPE (type) -> UnrecognizedRequestBody, Resolution naming the
 *                                           accepted types;
 *   RF_MSG_PRECONDITION_FAILED (what)    -> GeneralError, Resolution what (optional);
 *   RF_MSG_CERTIFICATE_INVALID (reason)  -> GeneralError, Resolution the reason, which is also
 *                                           the error's "message".
 * Arguments are client text at worst: each is cut to RF_ARG_MAX bytes and anything that is not
 * printable UTF-8 is shown as \xHH. Values of properties whose name suggests a secret
 * (Password, Token, CertificateString, ...) are never quoted: "(hidden)" stands in.
 */
/* NULL only when memory ran out. */
json_t *rf_message(enum rf_msg id, const char *const *args, size_t n_args);
/*
 * A registry message without arguments whose Resolution is ours (resolution: any text, cut and
 * cleaned as arguments are) and whose severity (both properties) is severity, or the
 * registry's when NULL: a warning on a request that succeeded is GeneralError, "Warning" and
 * the specifics. id must not be a stand-in (NULL then, as when memory ran out).
 */
json_t *rf_message_explained(enum rf_msg id, const char *resolution, const char *severity);
void rf_error(struct rf_request *rq, int status, enum rf_msg id, const char *const *args,
              size_t n_args);
/* Shorthands with 0..3 arguments (NULL ends the list; always pass the NULL). */
void rf_errorf(struct rf_request *rq, int status, enum rf_msg id, ...);
/*
 * Statuses rf_error adds headers to: 401 WWW-Authenticate: Basic realm="certd", 405 Allow (the
 * route's methods), 429 and 503 nothing more (set Retry-After with rf_header first).
 */

/*
 * Answer a failed authentication or login (result other than AUTH_OK): AUTH_NO_CREDENTIALS
 * 401 NoValidSession, AUTH_DENIED 401 AccessDenied (the URI), AUTH_THROTTLED 429 with
 * Retry-After (retry_after seconds) and ServiceTemporarilyUnavailable, AUTH_UNAVAILABLE 503 with
 * Retry-After. Every 401 carries WWW-Authenticate. Frees rq.
 */
void rf_error_auth(struct rf_request *rq, enum auth_result result, unsigned retry_after);

/* Answer 503 ServiceTemporarilyUnavailable with Retry-After (the same few seconds everywhere):
 * a worker queue is full or the pool is shutting down. Frees rq. */
void rf_error_busy(struct rf_request *rq);

/*
 * Answer a library error: the status and message from err's code and class in one table
 * (invalid input 400 with the library's message as the reason, duplicate 409/400,
 * limit 409 CreateLimitReachedForResource, not found 404, not allowed 403/400, unavailable
 * 503, internal 500 InternalError logged at err). param names the request parameter at fault
 * (for ActionParameterValueError), or NULL: then err->field, when the library named one.
 * Legacy routes get the same table but for conflicts (duplicate, limit): 400, as seed 002's
 * codes have it, with the same body in phosphor-rest's shape.
 * In detail: invalid input 400 -- with param, ActionParameterValueFormatError (inside an action:
 * the action is the last path segment after "/Actions/") or PropertyValueFormatError for
 * param's value in rq->json, followed by GeneralError; without, GeneralError -- the Resolution
 * of GeneralError and the error's "message" being err->msg; not allowed 400 (GeneralError with
 * err->msg); not found 404 ResourceMissingAtURI, or 400 when param names the parameter that
 * points nowhere; duplicate 409 GeneralError with err->msg; limit reached 409
 * CreateLimitReachedForResource and err->msg; unavailable 503 ServiceTemporarilyUnavailable with
 * Retry-After; internal (and anything unknown) 500 InternalError, err->msg going to the log
 * only. err->msg never holds key material or the upload (error.h), and nothing else of the
 * request is quoted but param's value when it is not a secret.
 */
void rf_error_certd(struct rf_request *rq, const struct certd_err *err, const char *param);

/*
 * Strict JSON body helpers: each answers the error itself (400 with the right message) and
 * returns false when the property is missing (required), of the wrong type, or (for enums) not
 * in the list. "prop" is the property name; action (nullable) switches messages to the
 * ActionParameter* family. *ret borrowed from rq->json.
 * When false is returned rq has been answered and freed: return at once. An absent optional
 * property gives true with *ret NULL (*ret_present false, *ret_n 0). JSON null counts as a
 * value of the wrong type. Integers out of [min, max]: PropertyValueNotInList /
 * ActionParameterValueFormatError. rf_get_string_array: more than max elements is a format
 * error; *ret is a new array of pointers borrowed from rq->json (free() it, not the strings).
 */
bool rf_get_string(struct rf_request *rq, const char *action, const char *prop, bool required,
                   const char **ret);
bool rf_get_int(struct rf_request *rq, const char *action, const char *prop, bool required,
                json_int_t min, json_int_t max, json_int_t *ret, bool *ret_present);
bool rf_get_string_array(struct rf_request *rq, const char *action, const char *prop, bool required,
                         size_t max, const char ***ret, size_t *ret_n);
bool rf_get_bool(struct rf_request *rq, const char *action, const char *prop, bool required,
                 bool *ret, bool *ret_present);
/* A link object {"@odata.id": "..."} (a plain string is accepted too, as bmcweb does). */
bool rf_get_link(struct rf_request *rq, const char *action, const char *prop, bool required,
                 const char **ret);
/* Refuse properties not in allowed (NULL-terminated): 400 PropertyUnknown/ActionParameterUnknown.
 */
bool rf_check_known(struct rf_request *rq, const char *action, const char *const *allowed);

/* {"@odata.id": uri} (NULL only when memory ran out). */
json_t *rf_link(const char *uri);

/*
 * Building payloads. Every builder steals the values it is given and may be chained without
 * checks in between: rf_set and rf_append take v NULL (its construction failed) and *c NULL (an
 * earlier step failed); on any failure they free *c, leave NULL there and return false, so the
 * chain ends in NULL and the handler answers 500.
 */
bool rf_set(json_t **c, const char *key, json_t *v);
/* rf_set of a string, leaving out NULL and "" (validators warn about empty strings). */
bool rf_set_str(json_t **c, const char *key, const char *s);
bool rf_append(json_t **a, json_t *v);
/* A resource's head: @odata.id, @odata.type "#Ns.vX.Type" from type "Ns.vX" ("Session.v1_8_0"
 * -> "#Session.v1_8_0.Session"; a type without version is repeated), Id and Name. */
json_t *rf_resource_new(const char *uri, const char *type, const char *id, const char *name);
/* A collection: @odata.id, @odata.type "#Type.Type", Name and Members, to which rf_members_add
 * adds links (false when memory ran out or c is NULL; c stays the caller's), and
 * rf_collection_done (a chain step) Members@odata.count. */
json_t *rf_collection_new(const char *uri, const char *type, const char *name);
bool rf_members_add(json_t *c, const char *uri);
json_t *rf_collection_done(json_t *c);

/*
 * True when the request's query holds the parameter name=value (both compared after
 * percent-decoding, exactly), for a handler's own non-$ parameters ("force=true").
 */
bool rf_query_has(const struct rf_request *rq, const char *name, const char *value);

/* True when the authenticated user has every privilege in privs (AUTH_PRIV_*). */
bool rf_has_privileges(const struct rf_request *rq, uint32_t privs);

/*
 * Certificate endpoints and changes (rf-cert.c), shared by the Redfish and legacy certificate
 * routes.
 *
 * The endpoints both APIs show: rf_cert_endpoint gives the configured endpoint of that name and
 * type (https: server, ldap: client, truststore: authority), or NULL when the configuration has
 * none (its URIs are then 404). Loop thread.
 */
enum rf_cert_ep { RF_CERT_EP_HTTPS, RF_CERT_EP_LDAP, RF_CERT_EP_TRUSTSTORE, RF_CERT_EP_MAX };
struct endpoint *rf_cert_endpoint(struct daemon *d, enum rf_cert_ep which);

/* What a change did, for its answer; everything borrowed for the answer's call only. */
struct rf_change {
    struct endpoint *ep;
    const void *ctx; /* as given to rf_change_install/_delete */
    bool is_delete;
    const char *id; /* the certificate installed (authority: the first added) or deleted */
    struct ep_snapshot *snap; /* the endpoint right after the change */
    const char *warnings[2];  /* for the user: the library's (expired ...), a failed reload */
    size_t n_warnings;
};
typedef void (*rf_change_answer_fn)(struct rf_request *rq, const struct rf_change *c);

/*
 * Install data (an upload borrowed from rq: rq->body or a string of rq->json) into ep, replacing
 * certificate replace_id (copied; NULL for none, see manager_install), or delete certificate id
 * (copied) of ep. The change runs on the worker pool's serial lane, then ep's notifier runs
 * (daemon_endpoint_changed); then answer(rq, ...) answers on the loop thread. A notifier that
 * failed does not undo the change: it is a warning. Every failure is answered here: a library
 * error with rf_error_certd (param: the request parameter it is blamed on, or NULL), a full
 * queue or a shutdown with rf_error_busy, memory with 500. ctx (borrowed, static: a route's
 * data) goes to answer. Loop thread; rq belongs to the change from the call on.
 */
void rf_change_install(struct rf_request *rq, struct endpoint *ep, struct span data,
                       const char *replace_id, const char *param, rf_change_answer_fn answer,
                       const void *ctx);
void rf_change_delete(struct rf_request *rq, struct endpoint *ep, const char *id,
                      rf_change_answer_fn answer, const void *ctx);
