/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The core of certd's HTTP front ends (redfish.h): one dispatcher for every request, the Base
 * message registry, the response helpers and the strict JSON readers the handlers share.
 *
 * Invariants:
 *  - every request gets exactly one answer: front_handle answers the requests it refuses, the
 *    handler answers the others; rf_respond/rf_respond_raw/rf_error* free the request, and
 *    nothing touches it afterwards;
 *  - a handler runs only after every generic check passed (route, method, OData-Version, query,
 *    authentication, privileges, media type, JSON), with rq->who filled on non-public routes;
 *  - nothing from the client reaches a response, a message or the log unbounded or unescaped:
 *    client text goes through text_clean (RF_ARG_MAX bytes, printable UTF-8 only), values of
 *    secret-looking properties never appear at all;
 *  - header values are never logged; the log line per request names method, path, status, user
 *    and duration only.
 */
#include "redfish.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log/log.h"
#include "util/json.h"
#include "util/parse.h"

/* Seconds a client is asked to wait when a queue is full or memory ran out. */
#define RETRY_AFTER_BUSY "2"
/* A bound for one formatted message (the longest registry text is ~200 bytes plus 3 args). */
#define MESSAGE_TEXT_MAX 2048u
/* Room for one cleaned argument: every input byte may become "\xHH", plus "..." and a NUL. */
#define CLEAN_MAX(n) ((n)*4u + 8u)
/* Bytes of our own explanation (a Resolution, a legacy description) that may quote library and
 * notifier messages: two of them with some words around. */
#define RESOLUTION_MAX 1024u
/* Unknown properties listed in one PropertyUnknown answer. */
#define UNKNOWN_REPORTED_MAX 8u

/* What redfish.c keeps per request besides struct rf_request. */
struct rf_priv {
    struct timespec start;
    bool is_options; /* OPTIONS: the answer carries Allow */
};

struct rf_request_full {
    struct rf_request rq; /* first: free(rq) frees the whole */
    struct rf_priv priv;
};

static struct rf_priv *priv(const struct rf_request *rq)
{
    return rq->priv_;
}

/* --- client text made safe for messages and logs --- */

/*
 * Length of the well-formed, printable UTF-8 character at p (RFC 3629 §4: no overlong forms, no
 * surrogates, nothing above U+10FFFF), 0 when p starts anything else. C0 and C1 controls and DEL
 * count as not printable: they must not reach a log line or a terminal.
 */
static size_t utf8_printable_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t k;
    uint8_t lo = 0x80, hi = 0xbf;

    if (c < 0x80) {
        return c >= 0x20 && c != 0x7f ? 1 : 0;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < k || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < k; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }
    /* U+0080..U+009F (C1 controls) are 0xc2 0x80..0x9f. */
    if (c == 0xc2 && p[1] < 0xa0) {
        return 0;
    }
    return k;
}

/*
 * Copy at most max bytes of s (len bytes, any content) into out: printable UTF-8 as it is, any
 * other byte as \xHH; when something was left out, "..." ends the text. out_size must be at
 * least CLEAN_MAX(max) to hold every byte of the input.
 */
static void text_clean(char *out, size_t out_size, const char *s, size_t len, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;

    assert(out_size >= 8);
    while (i < len) {
        size_t k = utf8_printable_len(p + i, len - i);
        size_t need = k > 0 ? k : 4;
        /* Keep room for "..." and the NUL. */
        if (i + (k > 0 ? k : 1) > max || o + need + 4 > out_size) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (k > 0) {
            memcpy(out + o, p + i, k);
            i += k;
        } else {
            out[o] = '\\';
            out[o + 1] = 'x';
            out[o + 2] = hex[p[i] >> 4];
            out[o + 3] = hex[p[i] & 0xf];
            i++;
        }
        o += need;
    }
    out[o] = '\0';
}

/* Property names whose values are secrets or uploads: never quoted back. */
static bool is_secret_name(const char *name)
{
    static const char *const words[] = {
        "password",   "passphrase",    "secret", "token",    "certificatestring",
        "privatekey", "encryptionkey", "keytab", "csrstring"
    };
    char lower[RF_ARG_MAX + 1];
    size_t n = strnlen(name, RF_ARG_MAX);

    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        lower[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    lower[n] = '\0';
    for (size_t i = 0; i < ELEMENTSOF(words); i++) {
        if (strstr(lower, words[i])) {
            return true;
        }
    }
    return false;
}

/* The value of rq->json[prop] as a message argument: compact JSON, cut, or "(hidden)". */
static void value_text(char *out, size_t out_size, const struct rf_request *rq, const char *prop)
{
    json_t *v = rq && rq->json && prop ? json_object_get(rq->json, prop) : NULL;
    _cleanup_free_ char *dump = NULL;

    if (prop && is_secret_name(prop)) {
        (void)snprintf(out, out_size, "(hidden)");
        return;
    }
    if (!v) {
        (void)snprintf(out, out_size, "null");
        return;
    }
    /* ASCII only, so that cutting it anywhere still leaves valid UTF-8. */
    dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    if (!dump) {
        (void)snprintf(out, out_size, "(value)");
        return;
    }
    text_clean(out, out_size, dump, strlen(dump), RF_ARG_MAX);
}

/* --- the Base 1.5.0 message registry (DMTF Base.1.5.0.json, the messages certd uses) --- */

struct base_def {
    const char *key;
    const char *text; /* %1.. are the arguments */
    const char *severity;
    const char *resolution;
    unsigned n_args;
};

#define BASE_PREFIX "Base.1.5."

/* Texts exactly as in the registry (their double spaces included). */
/*
 * Indexed by enum rf_msg. The stand-ins (redfish.h) have no entry of their own: message_for maps
 * them onto one of these.
 */
static const struct base_def base_defs[RF_MSG_MAX] = {
    [RF_MSG_GENERAL_ERROR] = { "GeneralError",
                               "A general error has occurred. See Resolution for information on how to resolve the error.",
                               "Critical", "None.", 0 },
    [RF_MSG_INTERNAL_ERROR] = { "InternalError",
                                "The request failed due to an internal service error.  The service is still operational.",
                                "Critical",
                                "Resubmit the request.  If the problem persists, consider resetting the service.",
                                0 },
    [RF_MSG_MALFORMED_JSON] = { "MalformedJSON",
                                "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
                                "Critical",
                                "Ensure that the request body is valid JSON and resubmit the request.",
                                0 },
    [RF_MSG_EMPTY_JSON] = { "EmptyJSON",
                            "The request body submitted contained an empty JSON object and the service is unable to process it.",
                            "Warning",
                            "Add properties in the JSON object and resubmit the request.", 0 },
    [RF_MSG_UNRECOGNIZED_REQUEST_BODY] = { "UnrecognizedRequestBody",
                                           "The service detected a malformed request body that it was unable to interpret.",
                                           "Warning",
                                           "Correct the request body and resubmit the request if it failed.",
                                           0 },
    [RF_MSG_PROPERTY_MISSING] = { "PropertyMissing",
                                  "The property %1 is a required property and must be included in the request.",
                                  "Warning",
                                  "Ensure that the property is in the request body and has a valid value and resubmit the request if the operation failed.",
                                  1 },
    [RF_MSG_PROPERTY_VALUE_TYPE_ERROR] = { "PropertyValueTypeError",
                                           "The value %1 for the property %2 is of a different type than the property can accept.",
                                           "Warning",
                                           "Correct the value for the property in the request body and resubmit the request if the operation failed.",
                                           2 },
    [RF_MSG_PROPERTY_VALUE_NOT_IN_LIST] = { "PropertyValueNotInList",
                                            "The value %1 for the property %2 is not in the list of acceptable values.",
                                            "Warning",
                                            "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.",
                                            2 },
    [RF_MSG_PROPERTY_VALUE_FORMAT_ERROR] = { "PropertyValueFormatError",
                                             "The value %1 for the property %2 is of a different format than the property can accept.",
                                             "Warning",
                                             "Correct the value for the property in the request body and resubmit the request if the operation failed.",
                                             2 },
    [RF_MSG_PROPERTY_UNKNOWN] = { "PropertyUnknown",
                                  "The property %1 is not in the list of valid properties for the resource.",
                                  "Warning",
                                  "Remove the unknown property from the request body and resubmit the request if the operation failed.",
                                  1 },
    [RF_MSG_ACTION_NOT_SUPPORTED] = { "ActionNotSupported",
                                      "The action %1 is not supported by the resource.", "Critical",
                                      "The action supplied cannot be resubmitted to the implementation.  Perhaps the action was invalid, the wrong resource was the target or the implementation documentation may be of assistance.",
                                      1 },
    [RF_MSG_ACTION_PARAMETER_MISSING] = { "ActionParameterMissing",
                                          "The action %1 requires the parameter %2 to be present in the request body.",
                                          "Critical",
                                          "Supply the action with the required parameter in the request body when the request is resubmitted.",
                                          2 },
    [RF_MSG_ACTION_PARAMETER_UNKNOWN] = { "ActionParameterUnknown",
                                          "The action %1 was submitted with the invalid parameter %2.",
                                          "Warning",
                                          "Correct the invalid parameter and resubmit the request if the operation failed.",
                                          2 },
    [RF_MSG_ACTION_PARAMETER_VALUE_TYPE_ERROR] = { "ActionParameterValueTypeError",
                                                   "The value %1 for the parameter %2 in the action %3 is of a different type than the parameter can accept.",
                                                   "Warning",
                                                   "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
                                                   3 },
    [RF_MSG_ACTION_PARAMETER_VALUE_FORMAT_ERROR] = { "ActionParameterValueFormatError",
                                                     "The value %1 for the parameter %2 in the action %3 is of a different format than the parameter can accept.",
                                                     "Warning",
                                                     "Correct the value for the parameter in the request body and resubmit the request if the operation failed.",
                                                     3 },
    [RF_MSG_RESOURCE_NOT_FOUND] = { "ResourceNotFound",
                                    "The requested resource of type %1 named %2 was not found.",
                                    "Critical",
                                    "Provide a valid resource identifier and resubmit the request.",
                                    2 },
    [RF_MSG_RESOURCE_MISSING_AT_URI] = { "ResourceMissingAtURI",
                                         "The resource at the URI %1 was not found.", "Critical",
                                         "Place a valid resource at the URI or correct the URI and resubmit the request.",
                                         1 },
    [RF_MSG_RESOURCE_CANNOT_BE_DELETED] = { "ResourceCannotBeDeleted",
                                            "The delete request failed because the resource requested cannot be deleted.",
                                            "Critical",
                                            "Do not attempt to delete a non-deletable resource.",
                                            0 },
    [RF_MSG_CREATE_LIMIT_REACHED] = { "CreateLimitReachedForResource",
                                      "The create operation failed because the resource has reached the limit of possible resources.",
                                      "Critical",
                                      "Either delete resources and resubmit the request if the operation failed or do not resubmit the request.",
                                      0 },
    [RF_MSG_INSUFFICIENT_PRIVILEGE] = { "InsufficientPrivilege",
                                        "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.",
                                        "Critical",
                                        "Either abandon the operation or change the associated access rights and resubmit the request if the operation failed.",
                                        0 },
    [RF_MSG_NO_VALID_SESSION] = { "NoValidSession",
                                  "There is no valid session established with the implementation.",
                                  "Critical",
                                  "Establish as session before attempting any operations.", 0 },
    [RF_MSG_ACCESS_DENIED] = { "AccessDenied",
                               "While attempting to establish a connection to %1, the service denied access.",
                               "Critical",
                               "Attempt to ensure that the URI is correct and that the service has the appropriate credentials.",
                               1 },
    [RF_MSG_QUERY_NOT_SUPPORTED] = { "QueryNotSupported",
                                     "Querying is not supported by the implementation.", "Warning",
                                     "Remove the query parameters and resubmit the request if the operation failed.",
                                     0 },
    [RF_MSG_QUERY_PARAMETER_VALUE_ERROR] = { "QueryParameterValueFormatError",
                                             "The value %1 for the parameter %2 is of a different format than the parameter can accept.",
                                             "Warning",
                                             "Correct the value for the query parameter in the request and resubmit the request if the operation failed.",
                                             2 },
    [RF_MSG_SERVICE_TEMPORARILY_UNAVAILABLE] = { "ServiceTemporarilyUnavailable",
                                                 "The service is temporarily unavailable.  Retry in %1 seconds.",
                                                 "Critical",
                                                 "Wait for the indicated retry duration and retry the operation.",
                                                 1 },
    [RF_MSG_SESSION_LIMIT_EXCEEDED] = { "SessionLimitExceeded",
                                        "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
                                        "Critical",
                                        "Reduce the number of other sessions before trying to establish the session or increase the limit of simultaneous sessions (if supported).",
                                        0 },
};

/* The registry text with %1..%9 replaced by the (already cleaned) arguments; NULL: no memory. */
static char *format_text(const char *tmpl, const char *const *args, size_t n_args)
{
    char *out = malloc(MESSAGE_TEXT_MAX);
    size_t o = 0;

    if (!out) {
        return NULL;
    }
    for (const char *t = tmpl; *t; t++) {
        const char *piece = t;
        size_t len = 1;
        if (t[0] == '%' && t[1] >= '1' && t[1] <= '9') {
            size_t idx = (size_t)(t[1] - '1');
            piece = idx < n_args && args[idx] ? args[idx] : "";
            len = strlen(piece);
            t++;
        }
        if (o + len >= MESSAGE_TEXT_MAX) {
            break; /* cannot happen with cleaned arguments; a cut text is still a text */
        }
        memcpy(out + o, piece, len);
        o += len;
    }
    out[o] = '\0';
    return out;
}

/*
 * One Message object of the registry (m not a stand-in): arguments are client text at worst
 * (cleaned here); a resolution (nullable, our own text) replaces the registry's where the
 * message stands in for one Base 1.5 lacks, a severity (nullable) the registry's. NULL when
 * memory ran out.
 */
static json_t *base_message(enum rf_msg m, const char *const *args, size_t n_args,
                            const char *resolution, const char *severity)
{
    const struct base_def *def = &base_defs[m];
    char clean[4][CLEAN_MAX(RF_ARG_MAX)];
    const char *cargs[4] = { "", "", "", "" };
    _cleanup_free_ char *text = NULL;
    char id[64];
    json_t *margs = json_array();

    assert(def->key && def->n_args <= ELEMENTSOF(cargs));
    for (size_t i = 0; i < def->n_args; i++) {
        const char *a = i < n_args && args[i] ? args[i] : "";
        text_clean(clean[i], sizeof(clean[i]), a, strlen(a), RF_ARG_MAX);
        cargs[i] = clean[i];
        if (margs) {
            (void)json_array_append_new(margs, json_string(clean[i]));
        }
    }
    text = format_text(def->text, cargs, def->n_args);
    (void)snprintf(id, sizeof(id), BASE_PREFIX "%s", def->key);
    if (!text || !margs) {
        json_decref(margs);
        return NULL;
    }
    /* Message v1_3_0: MessageSeverity is the current name, Severity the deprecated one that
     * older clients still read; both carry the same severity. */
    if (!severity) {
        severity = def->severity;
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s}", "@odata.type",
                     "#Message.v1_3_0.Message", "MessageId", id, "Message", text, "MessageArgs",
                     margs, "Severity", severity, "MessageSeverity", severity, "Resolution",
                     resolution ? resolution : def->resolution);
}

/* The action a request addresses: the path segment after "/Actions/" ("" outside actions). */
static const char *action_of(const struct rf_request *rq, char *buf, size_t size)
{
    const char *path = rq ? http_request_path(rq->http) : "";
    const char *a = strstr(path, "/Actions/");

    if (!a) {
        return "";
    }
    a += strlen("/Actions/");
    text_clean(buf, size, a, strcspn(a, "/"), RF_ARG_MAX);
    return buf;
}

static const char *accepted_types(const struct rf_request *rq)
{
    switch (rq && rq->route ? rq->route->body : RF_BODY_JSON) {
    case RF_BODY_NONE:
        return "no body at all";
    case RF_BODY_JSON_OR_PEM:
        return "application/json, application/x-pem-file or application/octet-stream";
    case RF_BODY_PEM:
        return "application/x-pem-file or application/octet-stream";
    case RF_BODY_JSON:
    default:
        return "application/json";
    }
}

/*
 * The message for id (see the mapping in redfish.h). rq (nullable) supplies what some stand-ins
 * need: the method, the value of a parameter, the accepted media types. *ret_summary (nullable)
 * gets the error's "message" when it should not be the message text (the library's reason).
 */
static json_t *message_for(const struct rf_request *rq, enum rf_msg id, const char *const *args,
                           size_t n_args, const char **ret_summary)
{
    const char *arg0 = n_args > 0 && args[0] ? args[0] : NULL;
    char res[CLEAN_MAX(CERTD_ERR_MSG_MAX) + 256];
    char clean[CLEAN_MAX(CERTD_ERR_MSG_MAX)];

    if ((unsigned)id >= RF_MSG_MAX) {
        return base_message(RF_MSG_INTERNAL_ERROR, NULL, 0, NULL, NULL);
    }
    switch (id) {
    case RF_MSG_ACTION_PARAMETER_VALUE_ERROR: {
        /* Base 1.5 has no ActionParameterValueError (parameter, action); its format error
         * also names the value, which rq->json holds. */
        char value[CLEAN_MAX(RF_ARG_MAX)];
        const char *a[3];
        if (rq) {
            value_text(value, sizeof(value), rq, arg0);
        } else {
            (void)snprintf(value, sizeof(value), "(value)");
        }
        a[0] = value;
        a[1] = arg0;
        a[2] = n_args > 1 ? args[1] : NULL;
        return base_message(RF_MSG_ACTION_PARAMETER_VALUE_FORMAT_ERROR, a, 3, NULL, NULL);
    }
    case RF_MSG_OPERATION_NOT_ALLOWED: {
        /* Base 1.5 has no OperationNotAllowed: a DELETE is "cannot be deleted", any other
         * method an action (the method) the resource does not support. */
        const char *m = arg0;
        if (rq && rq->method == HTTP_METHOD_DELETE && !m) {
            return base_message(RF_MSG_RESOURCE_CANNOT_BE_DELETED, NULL, 0, NULL, NULL);
        }
        if (!m) {
            m = rq ? http_request_method_name(rq->http) : "";
        }
        return base_message(RF_MSG_ACTION_NOT_SUPPORTED, &m, 1, NULL, NULL);
    }
    case RF_MSG_PAYLOAD_TOO_LARGE:
        /* No PayloadTooLarge in Base 1.5: GeneralError, whose Resolution tells what to do. */
        if (arg0) {
            text_clean(clean, sizeof(clean), arg0, strlen(arg0), RF_ARG_MAX);
            (void)snprintf(res, sizeof(res),
                           "Send a request body of at most %s bytes and resubmit the request.",
                           clean);
        } else {
            (void)snprintf(res, sizeof(res),
                           "Send a smaller request body and resubmit the request.");
        }
        return base_message(RF_MSG_GENERAL_ERROR, NULL, 0, res, NULL);
    case RF_MSG_UNSUPPORTED_MEDIA_TYPE:
        /* No UnsupportedMediaType in Base 1.5: the body cannot be interpreted, and the
         * Resolution says which media types would be. */
        text_clean(clean, sizeof(clean), arg0 ? arg0 : "", arg0 ? strlen(arg0) : 0, RF_ARG_MAX);
        (void)snprintf(res, sizeof(res),
                       "Send the request body as %s and resubmit the request (the Content-Type "
                       "was '%s').",
                       accepted_types(rq), clean);
        return base_message(RF_MSG_UNRECOGNIZED_REQUEST_BODY, NULL, 0, res, NULL);
    case RF_MSG_PRECONDITION_FAILED:
        /* No PreconditionFailed in Base 1.5: GeneralError with the condition to meet. */
        if (arg0) {
            text_clean(res, sizeof(res), arg0, strlen(arg0), CERTD_ERR_MSG_MAX);
        } else {
            (void)snprintf(res, sizeof(res),
                           "Meet the request's preconditions and resubmit the request.");
        }
        return base_message(RF_MSG_GENERAL_ERROR, NULL, 0, res, NULL);
    case RF_MSG_CERTIFICATE_INVALID: {
        /* GeneralError is the registry's message for "see Resolution": the library's reason. */
        json_t *m;
        text_clean(res, sizeof(res), arg0 ? arg0 : "", arg0 ? strlen(arg0) : 0, CERTD_ERR_MSG_MAX);
        m = base_message(RF_MSG_GENERAL_ERROR, NULL, 0, res, NULL);
        if (m && ret_summary) {
            *ret_summary = json_string_value(json_object_get(m, "Resolution"));
        }
        return m;
    }
    default:
        return base_message(id, args, n_args, NULL, NULL);
    }
}

json_t *rf_message(enum rf_msg id, const char *const *args, size_t n_args)
{
    return message_for(NULL, id, args, n_args, NULL);
}

json_t *rf_message_explained(enum rf_msg id, const char *resolution, const char *severity)
{
    char clean[CLEAN_MAX(RESOLUTION_MAX)];

    assert_return((unsigned)id < RF_MSG_MAX && base_defs[id].key, NULL);
    if (resolution) {
        text_clean(clean, sizeof(clean), resolution, strlen(resolution), RESOLUTION_MAX);
    }
    return base_message(id, NULL, 0, resolution ? clean : NULL, severity);
}

json_t *rf_link(const char *uri)
{
    return json_pack("{s:s}", "@odata.id", uri);
}

/* --- building payloads --- */

/* A step of a payload chain failed (redfish.h): drop what was built. */
static bool chain_fail(json_t **c)
{
    json_decref(*c);
    *c = NULL;
    return false;
}

bool rf_set(json_t **c, const char *key, json_t *v)
{
    if (!*c || !v) {
        json_decref(v);
        return chain_fail(c);
    }
    /* json_object_set_new releases v itself when it fails. */
    if (json_object_set_new(*c, key, v) < 0) {
        return chain_fail(c);
    }
    return true;
}

bool rf_set_str(json_t **c, const char *key, const char *s)
{
    if (!s || s[0] == '\0') {
        return *c != NULL;
    }
    return rf_set(c, key, json_string(s));
}

bool rf_append(json_t **a, json_t *v)
{
    if (!*a || !v) {
        json_decref(v);
        return chain_fail(a);
    }
    if (json_array_append_new(*a, v) < 0) {
        return chain_fail(a);
    }
    return true;
}

json_t *rf_resource_new(const char *uri, const char *type, const char *id, const char *name)
{
    char t[128];
    const char *dot = strchr(type, '.');
    int n =
        snprintf(t, sizeof(t), "#%s.%.*s", type, dot ? (int)(dot - type) : (int)strlen(type), type);

    if (n < 0 || (size_t)n >= sizeof(t)) {
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s}", "@odata.id", uri, "@odata.type", t, "Id", id, "Name",
                     name);
}

json_t *rf_collection_new(const char *uri, const char *type, const char *name)
{
    char t[128];
    int n = snprintf(t, sizeof(t), "#%s.%s", type, type);

    if (n < 0 || (size_t)n >= sizeof(t)) {
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:[]}", "@odata.id", uri, "@odata.type", t, "Name", name,
                     "Members");
}

bool rf_members_add(json_t *c, const char *uri)
{
    return json_array_append_new(json_object_get(c, "Members"), rf_link(uri)) == 0;
}

json_t *rf_collection_done(json_t *c)
{
    json_t *n = json_integer((json_int_t)json_array_size(json_object_get(c, "Members")));

    (void)rf_set(&c, "Members@odata.count", n);
    return c;
}

bool rf_has_privileges(const struct rf_request *rq, uint32_t privs)
{
    return (rq->who.privileges & privs) == privs;
}

/* --- answering --- */

static bool rq_is_redfish(const struct rf_request *rq)
{
    if (rq->route) {
        return rq->route->is_redfish;
    }
    return strncmp(http_request_path(rq->http), "/xyz/", 5) != 0;
}

static uint32_t route_methods(const struct rf_route *r)
{
    uint32_t m = r->methods;
    if (m & (1u << HTTP_METHOD_GET)) {
        m |= 1u << HTTP_METHOD_HEAD;
    }
    return m;
}

static void allow_text(const struct rf_route *r, char *buf, size_t size)
{
    static const enum http_method order[] = {
        HTTP_METHOD_GET, HTTP_METHOD_HEAD,  HTTP_METHOD_POST,
        HTTP_METHOD_PUT, HTTP_METHOD_PATCH, HTTP_METHOD_DELETE
    };
    uint32_t m = route_methods(r);
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < ELEMENTSOF(order); i++) {
        if (m & (1u << order[i])) {
            int n = snprintf(buf + o, size - o, "%s%s", o ? ", " : "", http_method_name(order[i]));
            if (n < 0 || (size_t)n >= size - o) {
                return;
            }
            o += (size_t)n;
        }
    }
}

void rf_header(struct rf_request *rq, const char *name, const char *value)
{
    int r = http_response_header(rq->http, name, value);
    if (r < 0) {
        /* A programming error (CR/LF, too many headers): the answer goes out without it. */
        log_warning("response header %s dropped: %s", name, strerror(-r));
    }
}

static void log_request(const struct rf_request *rq, int status)
{
    char path[CLEAN_MAX(200)], method[CLEAN_MAX(16)];
    const char *p = http_request_path(rq->http);
    const char *m = http_request_method_name(rq->http);
    struct timespec now;
    long long us = 0;

    if (log_get_max_level() < LOG_DEBUG) {
        return;
    }
    if (clock_gettime(CLOCK_MONOTONIC, &now) == 0) {
        us = ((long long)now.tv_sec - (long long)priv(rq)->start.tv_sec) * 1000000LL +
             ((long long)now.tv_nsec - (long long)priv(rq)->start.tv_nsec) / 1000LL;
    }
    text_clean(path, sizeof(path), p, strlen(p), 200);
    text_clean(method, sizeof(method), m, strlen(m), 16);
    log_debug("%s %s -> %d (user %s, %lld.%03lld ms, connection %llu)", method, path, status,
              rq->who.user[0] ? rq->who.user : "-", us / 1000, us % 1000,
              (unsigned long long)http_request_connection_id(rq->http));
}

static void request_free(struct rf_request *rq)
{
    json_decref(rq->json);
    free(rq);
}

static void finish(struct rf_request *rq, int status, const char *content_type, const void *body,
                   size_t len)
{
    log_request(rq, status);
    http_respond(rq->http, status, content_type, body, len);
    request_free(rq);
}

static void add_headers(struct rf_request *rq, int status)
{
    bool redfish = rq_is_redfish(rq);
    bool is_get = rq->method == HTTP_METHOD_GET;

    if (redfish) {
        rf_header(rq, "OData-Version", "4.0");
    }
    rf_header(rq, "Cache-Control", "no-store");
    if (rq->route && ((is_get && status < 300) || status == 405 || priv(rq)->is_options)) {
        char allow[64];
        allow_text(rq->route, allow, sizeof(allow));
        rf_header(rq, "Allow", allow);
    }
    if (redfish && rq->route && rq->route->schema && is_get && status == 200) {
        char link[160];
        int n = snprintf(link, sizeof(link),
                         "<https://redfish.dmtf.org/schemas/v1/%s.json>; rel=describedby",
                         rq->route->schema);
        if (n > 0 && (size_t)n < sizeof(link)) {
            rf_header(rq, "Link", link);
        }
    }
}

/* Memory ran out while building an answer: a bare status is all that can still be sent. */
static void respond_bare(struct rf_request *rq, int status)
{
    log_err("%s: out of memory while answering", http_request_path(rq->http));
    finish(rq, status, NULL, NULL, 0);
}

void rf_respond(struct rf_request *rq, int status, json_t *body)
{
    _cleanup_free_ char *text = NULL;

    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!text) {
            respond_bare(rq, 500);
            return;
        }
    }
    add_headers(rq, status);
    finish(rq, status, text ? "application/json; charset=utf-8" : NULL, text,
           text ? strlen(text) : 0);
}

void rf_respond_200(struct rf_request *rq, json_t *body)
{
    if (!body) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    rf_respond(rq, 200, body);
}

void rf_respond_raw(struct rf_request *rq, int status, const char *content_type, const void *body,
                    size_t len)
{
    add_headers(rq, status);
    finish(rq, status, content_type, body, len);
}

/* phosphor-rest's body {"status", "message": "<status> <reason>", "data": data (stolen)}. */
static json_t *legacy_body(int status, json_t *data)
{
    char line[64];

    (void)snprintf(line, sizeof(line), "%d %s", status, http_status_reason(status));
    /* jansson releases data when packing fails, and fails on data NULL. */
    return json_pack("{s:s, s:s, s:o}", "status", status < 300 ? "ok" : "error", "message", line,
                     "data", data);
}

void rf_respond_legacy(struct rf_request *rq, const char *description, json_t *data)
{
    char clean[CLEAN_MAX(RESOLUTION_MAX)];
    json_t *body;

    if (!data && description) {
        text_clean(clean, sizeof(clean), description, strlen(description), RESOLUTION_MAX);
        data = json_pack("{s:s}", "description", clean);
    } else if (!data) {
        data = json_null();
    }
    body = legacy_body(200, data);
    if (!body) {
        respond_bare(rq, 500);
        return;
    }
    rf_respond(rq, 200, body);
}

/* Answer with messages (an array, stolen) as an error body of the route's kind. */
static void respond_messages(struct rf_request *rq, int status, json_t *msgs, const char *summary)
{
    json_t *first = json_array_get(msgs, 0);
    const char *code = json_string_value(json_object_get(first, "MessageId"));
    const char *text = summary ? summary : json_string_value(json_object_get(first, "Message"));
    json_t *body;

    if (!code || !text) {
        json_decref(msgs);
        respond_bare(rq, status);
        return;
    }
    if (rq_is_redfish(rq)) {
        body = json_pack("{s:{s:s, s:s, s:O}}", "error", "code", code, "message", text,
                         "@Message.ExtendedInfo", msgs);
    } else {
        body = legacy_body(status, json_pack("{s:s}", "description", text));
    }
    json_decref(msgs);
    if (!body) {
        respond_bare(rq, status);
        return;
    }
    if (status == 401) {
        /* RFC 7235 §3.1: every 401 names a scheme; RFC 7617 §2.1: our passwords are UTF-8. */
        rf_header(rq, "WWW-Authenticate", "Basic realm=\"certd\", charset=\"UTF-8\"");
    }
    rf_respond(rq, status, body);
}

/* Append msg (stolen; NULL when memory ran out) to msgs; false when either is NULL. */
static bool messages_add(json_t *msgs, json_t *msg)
{
    if (!msgs || !msg) {
        json_decref(msg);
        return false;
    }
    return json_array_append_new(msgs, msg) == 0;
}

void rf_error(struct rf_request *rq, int status, enum rf_msg id, const char *const *args,
              size_t n_args)
{
    const char *summary = NULL;
    json_t *msgs = json_array();

    if (!messages_add(msgs, message_for(rq, id, args, n_args, &summary))) {
        json_decref(msgs);
        respond_bare(rq, status);
        return;
    }
    /* summary points into msgs, which lives until the body is built. */
    respond_messages(rq, status, msgs, summary);
}

void rf_errorf(struct rf_request *rq, int status, enum rf_msg id, ...)
{
    const char *args[4];
    size_t n = 0;
    va_list ap;

    va_start(ap, id);
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (!a || n == ELEMENTSOF(args)) {
            break;
        }
        args[n++] = a;
    }
    va_end(ap);
    rf_error(rq, status, id, args, n);
}

/* A GeneralError whose Resolution is our own explanation (limits, HTTP-level refusals). */
static void error_explained(struct rf_request *rq, int status, enum rf_msg m,
                            const char *resolution)
{
    json_t *msgs = json_array();
    if (!messages_add(msgs, base_message(m, NULL, 0, resolution, NULL))) {
        json_decref(msgs);
        respond_bare(rq, status);
        return;
    }
    respond_messages(rq, status, msgs, NULL);
}

void rf_error_auth(struct rf_request *rq, enum auth_result result, unsigned retry_after)
{
    char secs[16], uri[CLEAN_MAX(RF_ARG_MAX)];
    const char *path = http_request_path(rq->http);

    switch (result) {
    case AUTH_NO_CREDENTIALS:
        rf_errorf(rq, 401, RF_MSG_NO_VALID_SESSION, NULL);
        return;
    case AUTH_THROTTLED:
        /*
         * RFC 6585 §4: too many failed attempts from this name or address. A distinct status
         * tells a legitimate client to wait instead of retrying at once; it reveals nothing
         * about the credentials (the attempt was not checked).
         */
        (void)snprintf(secs, sizeof(secs), "%u", retry_after > 0 ? retry_after : 1);
        rf_header(rq, "Retry-After", secs);
        rf_errorf(rq, 429, RF_MSG_SERVICE_TEMPORARILY_UNAVAILABLE, secs, NULL);
        return;
    case AUTH_UNAVAILABLE:
        rf_error_busy(rq);
        return;
    case AUTH_DENIED:
    case AUTH_OK:
    default:
        text_clean(uri, sizeof(uri), path, strlen(path), RF_ARG_MAX);
        rf_errorf(rq, 401, RF_MSG_ACCESS_DENIED, uri, NULL);
        return;
    }
}

void rf_error_busy(struct rf_request *rq)
{
    rf_header(rq, "Retry-After", RETRY_AFTER_BUSY);
    rf_errorf(rq, 503, RF_MSG_SERVICE_TEMPORARILY_UNAVAILABLE, RETRY_AFTER_BUSY, NULL);
}

/* --- library errors --- */

void rf_error_certd(struct rf_request *rq, const struct certd_err *err, const char *param)
{
    enum certd_errc code = err && err_is_set(err) ? err->code : CERTD_E_INTERNAL;
    const char *reason = err && err->msg[0] ? err->msg : err_code_name(code);
    /* The library names the field at fault of a structured request (GenerateCSR's Country). */
    if (!param && err && err->field[0]) {
        param = err->field;
    }
    char action_buf[CLEAN_MAX(RF_ARG_MAX)], value[CLEAN_MAX(RF_ARG_MAX)];
    const char *action = action_of(rq, action_buf, sizeof(action_buf));
    const char *path = http_request_path(rq->http);
    json_t *msgs = json_array();
    const char *summary = NULL;
    int status;

    switch (err_code_class(code)) {
    case CERTD_CLASS_INVALID_INPUT:
    case CERTD_CLASS_NOT_FOUND:
        if (param) {
            /* The request named something wrong: say which parameter, then why. */
            value_text(value, sizeof(value), rq, param);
            if (action[0]) {
                const char *a[] = { value, param, action };
                (void)messages_add(msgs, base_message(RF_MSG_ACTION_PARAMETER_VALUE_FORMAT_ERROR, a,
                                                      3, NULL, NULL));
            } else {
                const char *a[] = { value, param };
                (void)messages_add(
                    msgs, base_message(RF_MSG_PROPERTY_VALUE_FORMAT_ERROR, a, 2, NULL, NULL));
            }
            status = 400;
        } else if (err_code_class(code) == CERTD_CLASS_NOT_FOUND) {
            (void)messages_add(msgs,
                               message_for(rq, RF_MSG_RESOURCE_MISSING_AT_URI, &path, 1, NULL));
            status = 404;
        } else {
            status = 400;
        }
        if (status == 400) {
            (void)messages_add(msgs,
                               message_for(rq, RF_MSG_CERTIFICATE_INVALID, &reason, 1, &summary));
        }
        break;
    case CERTD_CLASS_NOT_ALLOWED:
        /* Policy, not privileges: 403 would send the user looking for another account. */
        (void)messages_add(msgs, message_for(rq, RF_MSG_CERTIFICATE_INVALID, &reason, 1, &summary));
        status = 400;
        break;
    case CERTD_CLASS_CONFLICT:
        if (code == CERTD_E_LIMIT_REACHED) {
            (void)messages_add(msgs,
                               base_message(RF_MSG_CREATE_LIMIT_REACHED, NULL, 0, NULL, NULL));
        }
        (void)messages_add(msgs, message_for(rq, RF_MSG_CERTIFICATE_INVALID, &reason, 1, &summary));
        /* Seed 002: the legacy API answers every refused upload 400. */
        status = rq_is_redfish(rq) ? 409 : 400;
        break;
    case CERTD_CLASS_UNAVAILABLE: {
        /* Try again later, and why (a signing CA that is not ready says so). */
        const char *retry = RETRY_AFTER_BUSY;
        rf_header(rq, "Retry-After", retry);
        (void)messages_add(
            msgs, base_message(RF_MSG_SERVICE_TEMPORARILY_UNAVAILABLE, &retry, 1, NULL, NULL));
        if (err && err->msg[0]) {
            (void)messages_add(msgs,
                               message_for(rq, RF_MSG_CERTIFICATE_INVALID, &reason, 1, &summary));
        }
        status = 503;
        break;
    }
    case CERTD_CLASS_UPSTREAM:
        /* A gateway's answer: the program we handed the work to failed, not the request. */
        (void)messages_add(msgs, message_for(rq, RF_MSG_CERTIFICATE_INVALID, &reason, 1, &summary));
        status = 502;
        break;
    case CERTD_CLASS_INTERNAL:
    case CERTD_CLASS_NONE:
    default: {
        char p[CLEAN_MAX(200)];
        text_clean(p, sizeof(p), path, strlen(path), 200);
        /* The one log line of this failure: the client learns only that it was ours. */
        log_err("%s %s: %s (%s)", http_request_method_name(rq->http), p, reason,
                err_code_name(code));
        (void)messages_add(msgs, base_message(RF_MSG_INTERNAL_ERROR, NULL, 0, NULL, NULL));
        status = 500;
        break;
    }
    }
    if (!msgs || json_array_size(msgs) == 0) {
        json_decref(msgs);
        respond_bare(rq, status);
        return;
    }
    respond_messages(rq, status, msgs, summary);
}

/* --- strict JSON readers --- */

static void type_error(struct rf_request *rq, const char *action, const char *prop)
{
    char value[CLEAN_MAX(RF_ARG_MAX)];

    value_text(value, sizeof(value), rq, prop);
    if (action) {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_TYPE_ERROR, value, prop, action, NULL);
    } else {
        rf_errorf(rq, 400, RF_MSG_PROPERTY_VALUE_TYPE_ERROR, value, prop, NULL);
    }
}

static void format_error(struct rf_request *rq, const char *action, const char *prop,
                         bool not_in_list)
{
    char value[CLEAN_MAX(RF_ARG_MAX)];

    value_text(value, sizeof(value), rq, prop);
    if (action) {
        rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_VALUE_FORMAT_ERROR, value, prop, action, NULL);
    } else {
        rf_errorf(rq, 400,
                  not_in_list ? RF_MSG_PROPERTY_VALUE_NOT_IN_LIST
                              : RF_MSG_PROPERTY_VALUE_FORMAT_ERROR,
                  value, prop, NULL);
    }
}

#define TYPE_BIT(t) (1u << (t))

/*
 * rq->json[prop] in *ret (NULL when absent), if it is one of the JSON types in the mask types
 * (TYPE_BIT(JSON_STRING) | ...). Absent and required: PropertyMissing / ActionParameterMissing;
 * another type: the type error. false when answered.
 */
static bool get_typed(struct rf_request *rq, const char *action, const char *prop, bool required,
                      unsigned types, json_t **ret)
{
    json_t *v = rq->json ? json_object_get(rq->json, prop) : NULL;

    if (!v && required) {
        if (action) {
            rf_errorf(rq, 400, RF_MSG_ACTION_PARAMETER_MISSING, action, prop, NULL);
        } else {
            rf_errorf(rq, 400, RF_MSG_PROPERTY_MISSING, prop, NULL);
        }
        return false;
    }
    if (v && !(types & TYPE_BIT(json_typeof(v)))) {
        type_error(rq, action, prop);
        return false;
    }
    *ret = v;
    return true;
}

bool rf_get_string(struct rf_request *rq, const char *action, const char *prop, bool required,
                   const char **ret)
{
    json_t *v;

    if (!get_typed(rq, action, prop, required, TYPE_BIT(JSON_STRING), &v)) {
        return false;
    }
    /* jansson refuses \u0000 unless asked (JSON_ALLOW_NUL), so the value is a C string. */
    *ret = v ? json_string_value(v) : NULL;
    return true;
}

bool rf_get_int(struct rf_request *rq, const char *action, const char *prop, bool required,
                json_int_t min, json_int_t max, json_int_t *ret, bool *ret_present)
{
    json_t *v;

    if (!get_typed(rq, action, prop, required, TYPE_BIT(JSON_INTEGER), &v)) {
        return false;
    }
    if (v && (json_integer_value(v) < min || json_integer_value(v) > max)) {
        /* Base 1.5 has no PropertyValueOutOfRange: the range is the list of acceptable values. */
        format_error(rq, action, prop, true);
        return false;
    }
    *ret = v ? json_integer_value(v) : 0;
    *ret_present = v != NULL;
    return true;
}

bool rf_get_bool(struct rf_request *rq, const char *action, const char *prop, bool required,
                 bool *ret, bool *ret_present)
{
    json_t *v;

    if (!get_typed(rq, action, prop, required, TYPE_BIT(JSON_TRUE) | TYPE_BIT(JSON_FALSE), &v)) {
        return false;
    }
    *ret = v && json_is_true(v);
    *ret_present = v != NULL;
    return true;
}

bool rf_get_string_array(struct rf_request *rq, const char *action, const char *prop, bool required,
                         size_t max, const char ***ret, size_t *ret_n)
{
    _cleanup_free_ const char **list = NULL;
    json_t *v;
    size_t n;

    if (!get_typed(rq, action, prop, required, TYPE_BIT(JSON_ARRAY), &v)) {
        return false;
    }
    if (!v) {
        *ret = NULL;
        *ret_n = 0;
        return true;
    }
    n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
        if (!json_is_string(json_array_get(v, i))) {
            type_error(rq, action, prop);
            return false;
        }
    }
    if (n > max) {
        format_error(rq, action, prop, false);
        return false;
    }
    /* n <= RF_JSON_VALUES_MAX: the body passed json_text_bounds. */
    list = calloc(n > 0 ? n : 1, sizeof(*list));
    if (!list) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        list[i] = json_string_value(json_array_get(v, i));
    }
    *ret = TAKE_PTR(list);
    *ret_n = n;
    return true;
}

bool rf_get_link(struct rf_request *rq, const char *action, const char *prop, bool required,
                 const char **ret)
{
    json_t *v, *id;

    if (!get_typed(rq, action, prop, required, TYPE_BIT(JSON_STRING) | TYPE_BIT(JSON_OBJECT), &v)) {
        return false;
    }
    if (!v || json_is_string(v)) {
        *ret = v ? json_string_value(v) : NULL;
        return true;
    }
    id = json_object_size(v) == 1 ? json_object_get(v, "@odata.id") : NULL;
    if (!json_is_string(id)) {
        type_error(rq, action, prop);
        return false;
    }
    *ret = json_string_value(id);
    return true;
}

bool rf_check_known(struct rf_request *rq, const char *action, const char *const *allowed)
{
    json_t *msgs = NULL;
    const char *key;
    json_t *value;
    size_t n = 0;

    if (!rq->json) {
        return true;
    }
    json_object_foreach(rq->json, key, value)
    {
        bool known = false;
        (void)value;
        /* Annotations ("@odata.type", "X@Redfish.Y") are hints a service may ignore (OData
         * JSON Format §18). */
        if (strchr(key, '@')) {
            continue;
        }
        for (size_t i = 0; allowed && allowed[i]; i++) {
            if (strcmp(key, allowed[i]) == 0) {
                known = true;
                break;
            }
        }
        if (known) {
            continue;
        }
        if (!msgs) {
            msgs = json_array();
        }
        if (n++ < UNKNOWN_REPORTED_MAX) {
            const char *a[2] = { action, key };
            (void)messages_add(
                msgs, action ? base_message(RF_MSG_ACTION_PARAMETER_UNKNOWN, a, 2, NULL, NULL)
                             : base_message(RF_MSG_PROPERTY_UNKNOWN, &key, 1, NULL, NULL));
        }
    }
    if (n == 0) {
        return true;
    }
    if (!msgs || json_array_size(msgs) == 0) {
        json_decref(msgs);
        respond_bare(rq, 400);
        return false;
    }
    respond_messages(rq, 400, msgs, NULL);
    return false;
}

/* --- routing --- */

static bool is_param_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
}

/* Match path (len bytes, starting with '/') against pattern; fill the params on success. */
static bool route_match(const char *pattern, const char *path, size_t len,
                        char ret_params[RF_PARAMS_MAX][RF_PARAM_MAX + 1], size_t *ret_n)
{
    char params[RF_PARAMS_MAX][RF_PARAM_MAX + 1];
    const char *p = pattern;
    size_t s = 0, n = 0;

    while (*p) {
        const char *pend;
        size_t plen, slen;

        if (*p != '/' || s >= len || path[s] != '/') {
            return false;
        }
        p++;
        s++;
        pend = p + strcspn(p, "/");
        plen = (size_t)(pend - p);
        slen = 0;
        while (s + slen < len && path[s + slen] != '/') {
            slen++;
        }
        if (slen == 0) {
            return false;
        }
        if (plen == 2 && p[0] == '{' && p[1] == '}') {
            if (n >= RF_PARAMS_MAX || slen > RF_PARAM_MAX) {
                return false;
            }
            for (size_t i = 0; i < slen; i++) {
                if (!is_param_char(path[s + i])) {
                    return false;
                }
            }
            memcpy(params[n], path + s, slen);
            params[n][slen] = '\0';
            n++;
        } else if (plen != slen || memcmp(p, path + s, plen) != 0) {
            return false;
        }
        p = pend;
        s += slen;
    }
    if (s != len) {
        return false;
    }
    memcpy(ret_params, params, sizeof(params));
    *ret_n = n;
    return true;
}

const struct rf_route *
rf_route_lookup(const char *path, char ret_params[RF_PARAMS_MAX][RF_PARAM_MAX + 1], size_t *ret_n)
{
    const struct rf_route *const tables[] = { rf_service_routes, rf_cert_routes, rf_ca_routes,
                                              rf_pins_routes,    legacy_routes,  ibm_routes };
    size_t len = strlen(path);

    /* One trailing slash is the same resource ("/redfish/v1/" is the root's own id). */
    if (len > 1 && path[len - 1] == '/') {
        len--;
    }
    for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
        for (const struct rf_route *r = tables[t]; r->pattern; r++) {
            if (route_match(r->pattern, path, len, ret_params, ret_n)) {
                return r;
            }
        }
    }
    return NULL;
}

/* --- query parameters (DSP0266 §7.3) --- */

/* Percent-decode s[0..len) into out (NUL-terminated); a bad escape or %00 stays as it is. */
static void query_decode(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < size; i++) {
        int hi = i + 2 < len && s[i] == '%' ? hex_digit_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_digit_value(s[i + 2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

bool rf_query_has(const struct rf_request *rq, const char *name, const char *value)
{
    const char *q = http_request_query(rq->http);
    char n[RF_PARAM_MAX + 1], v[RF_PARAM_MAX + 1];

    while (q && *q) {
        const char *end = strchr(q, '&');
        size_t len = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t nlen = eq ? (size_t)(eq - q) : len;
        query_decode(q, nlen, n, sizeof(n));
        query_decode(eq ? eq + 1 : "", eq ? len - nlen - 1 : 0, v, sizeof(v));
        if (strcmp(n, name) == 0 && strcmp(v, value) == 0) {
            return true;
        }
        q = end ? end + 1 : NULL;
    }
    return false;
}

static bool is_number(const char *s)
{
    uint64_t v;
    return parse_u64(s, 0, UINT32_MAX, &v) == 0;
}

/* $expand=*|.|~ with an optional ($levels=N). */
static bool expand_value_ok(const char *v)
{
    char levels[16];
    size_t n;

    if ((v[0] != '*' && v[0] != '.' && v[0] != '~')) {
        return false;
    }
    if (v[1] == '\0') {
        return true;
    }
    if (strncmp(v + 1, "($levels=", 9) != 0) {
        return false;
    }
    n = strlen(v + 10);
    if (n < 2 || n > sizeof(levels) || v[10 + n - 1] != ')') {
        return false;
    }
    memcpy(levels, v + 10, n - 1);
    levels[n - 1] = '\0';
    return is_number(levels) && strcmp(levels, "0") != 0;
}

enum query_verdict { QUERY_OK, QUERY_UNSUPPORTED, QUERY_BAD_VALUE };

/*
 * The parameters of DSP0266 §7.3 are known, with their syntax; we implement none of them (the
 * ServiceRoot says so in ProtocolFeaturesSupported). A bad value is 400 whatever else the query
 * holds; otherwise a known parameter or any other "$" one is 501. Other names are the client's
 * business (DSP0266: services shall ignore them).
 */
static enum query_verdict query_check(const char *query, char *bad_name, char *bad_value,
                                      size_t size)
{
    enum query_verdict v = QUERY_OK;
    const char *q = query;

    while (q && *q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t nlen = eq ? (size_t)(eq - q) : len;
        char name[64], value[HTTP_TARGET_MAX + 1];
        bool has_value, ok = true, known = true;

        query_decode(q, nlen, name, sizeof(name));
        query_decode(eq ? eq + 1 : "", eq ? len - nlen - 1 : 0, value, sizeof(value));
        has_value = value[0] != '\0';
        if (strcmp(name, "only") == 0 || strcmp(name, "excerpt") == 0 ||
            strcmp(name, "includeoriginofcondition") == 0) {
            ok = !has_value;
        } else if (strcmp(name, "$top") == 0 || strcmp(name, "$skip") == 0) {
            ok = is_number(value);
        } else if (strcmp(name, "$expand") == 0) {
            ok = expand_value_ok(value);
        } else if (strcmp(name, "$select") == 0 || strcmp(name, "$filter") == 0 ||
                   strcmp(name, "$levels") == 0) {
            ok = has_value;
        } else {
            known = name[0] == '$';
        }
        if (!ok) {
            text_clean(bad_name, size, name, strlen(name), RF_ARG_MAX);
            text_clean(bad_value, size, value, strlen(value), RF_ARG_MAX);
            return QUERY_BAD_VALUE;
        }
        if (known) {
            v = QUERY_UNSUPPORTED;
        }
        q += len;
        if (*q == '&') {
            q++;
        }
    }
    return v;
}

/* --- request bodies --- */

/* Lower-case type/subtype and the charset parameter; false when the header is malformed. */
static bool media_type_parse(const char *ct, char *type, size_t size, bool *ret_charset_ok,
                             bool *ret_other_params)
{
    size_t i = 0, o = 0;

    *ret_charset_ok = true;
    *ret_other_params = false;
    while (ct[i] == ' ' || ct[i] == '\t') {
        i++;
    }
    while (ct[i] && ct[i] != ';' && ct[i] != ' ' && ct[i] != '\t') {
        char c = ct[i++];
        if (o + 1 >= size || (unsigned char)c < 0x21 || (unsigned char)c > 0x7e) {
            return false;
        }
        type[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    type[o] = '\0';
    if (o == 0 || !strchr(type, '/')) {
        return false;
    }
    /* Parameters (RFC 9110 §8.3.1): "; name=value" with value a token or a quoted string. */
    while (ct[i]) {
        char name[32], value[32];
        size_t n = 0, v = 0;

        while (ct[i] == ' ' || ct[i] == '\t' || ct[i] == ';') {
            i++;
        }
        if (!ct[i]) {
            break;
        }
        while (ct[i] && ct[i] != '=' && ct[i] != ';') {
            if (n + 1 < sizeof(name) && ct[i] != ' ' && ct[i] != '\t') {
                char c = ct[i];
                name[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
            }
            i++;
        }
        name[n] = '\0';
        if (ct[i] == '=') {
            i++;
            bool quoted = ct[i] == '"';
            if (quoted) {
                i++;
            }
            while (ct[i] && (quoted ? ct[i] != '"' : (ct[i] != ';' && ct[i] != ' '))) {
                if (v + 1 < sizeof(value)) {
                    value[v++] = ct[i];
                }
                i++;
            }
            if (quoted && ct[i] == '"') {
                i++;
            }
        }
        value[v] = '\0';
        if (strcmp(name, "charset") == 0) {
            *ret_charset_ok = strcasecmp(value, "utf-8") == 0;
        } else {
            *ret_other_params = true;
        }
    }
    return true;
}

static bool body_parse_json(struct rf_request *rq)
{
    json_error_t error;
    json_t *j;

    if (rq->body.len == 0) {
        /* Actions without parameters are often posted with no body at all. */
        rq->json = json_object();
        if (!rq->json) {
            rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
            return false;
        }
        return true;
    }
    /* Bound jansson's work before it runs (STYLE.md §5). */
    if (json_text_bounds(rq->body, RF_JSON_DEPTH_MAX, RF_JSON_VALUES_MAX) < 0) {
        char res[160];
        (void)snprintf(res, sizeof(res),
                       "Send JSON nested at most %u levels deep with at most %u values and "
                       "resubmit the request.",
                       RF_JSON_DEPTH_MAX, RF_JSON_VALUES_MAX);
        error_explained(rq, 400, RF_MSG_UNRECOGNIZED_REQUEST_BODY, res);
        return false;
    }
    /* Duplicate names make a body mean different things to different parsers: refused.
     * Any JSON text is parsed (RFC 8259 §2), so that a valid non-object gets its own answer. */
    j = json_loadb((const char *)rq->body.p, rq->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                   &error);
    if (!j) {
        rf_errorf(rq, 400, RF_MSG_MALFORMED_JSON, NULL);
        return false;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        error_explained(rq, 400, RF_MSG_UNRECOGNIZED_REQUEST_BODY,
                        "Send a JSON object as the request body and resubmit the request.");
        return false;
    }
    rq->json = j;
    return true;
}

static bool body_prepare(struct rf_request *rq)
{
    const char *ct = http_request_header(rq->http, "Content-Type");
    /* Lower case, without parameters; "" when there is no Content-Type. */
    char media_type[64] = "";
    bool charset_ok = true, other_params = false, is_json, is_pem;

    if (rq->method != HTTP_METHOD_POST && rq->method != HTTP_METHOD_PUT &&
        rq->method != HTTP_METHOD_PATCH) {
        return true;
    }
    if (ct) {
        if (http_request_header_count(rq->http, "Content-Type") > 1 ||
            !media_type_parse(ct, media_type, sizeof(media_type), &charset_ok, &other_params)) {
            rf_errorf(rq, 415, RF_MSG_UNSUPPORTED_MEDIA_TYPE, ct, NULL);
            return false;
        }
    }
    is_json = strcmp(media_type, "application/json") == 0;
    is_pem = strcmp(media_type, "application/x-pem-file") == 0 ||
             strcmp(media_type, "application/octet-stream") == 0;
    if (is_json && (!charset_ok || other_params)) {
        /* RFC 8259 §8.1: JSON is UTF-8, and application/json defines no other parameter. */
        rf_errorf(rq, 415, RF_MSG_UNSUPPORTED_MEDIA_TYPE, ct, NULL);
        return false;
    }
    switch (rq->route->body) {
    case RF_BODY_NONE:
        if (rq->body.len > 0) {
            error_explained(rq, 400, RF_MSG_UNRECOGNIZED_REQUEST_BODY,
                            "Resubmit the request without a body.");
            return false;
        }
        return true;
    case RF_BODY_JSON:
        if (rq->body.len > 0 && !is_json) {
            rf_errorf(rq, 415, RF_MSG_UNSUPPORTED_MEDIA_TYPE, ct ? ct : "", NULL);
            return false;
        }
        return body_parse_json(rq);
    case RF_BODY_JSON_OR_PEM:
        if (is_json || (rq->body.len == 0 && !is_pem)) {
            return body_parse_json(rq);
        }
        if (!is_pem) {
            rf_errorf(rq, 415, RF_MSG_UNSUPPORTED_MEDIA_TYPE, ct ? ct : "", NULL);
            return false;
        }
        return true;
    case RF_BODY_PEM:
    default:
        if (is_json) {
            rf_errorf(rq, 415, RF_MSG_UNSUPPORTED_MEDIA_TYPE, ct, NULL);
            return false;
        }
        return true;
    }
}

/* --- the dispatcher --- */

static uint32_t privileges_needed(const struct rf_route *r, enum http_method m)
{
    uint32_t p = r->privileges[m];
    if (p == 0) {
        p = m == HTTP_METHOD_GET ? AUTH_PRIV_LOGIN : AUTH_PRIV_CONFIGURE_MANAGER;
    }
    return p;
}

static void run_handler(struct rf_request *rq, bool check_privileges)
{
    if (check_privileges && !rf_has_privileges(rq, privileges_needed(rq->route, rq->method))) {
        rf_errorf(rq, 403, RF_MSG_INSUFFICIENT_PRIVILEGE, NULL);
        return;
    }
    if (!body_prepare(rq)) {
        return;
    }
    rq->route->handler(rq);
}

static void on_auth(void *arg, enum auth_result result, const struct auth_identity *id,
                    unsigned retry_after)
{
    struct rf_request *rq = arg;

    if (http_request_is_gone(rq->http)) {
        /* Nobody is waiting: the handler need not run; http_respond only frees. */
        finish(rq, 499, NULL, NULL, 0);
        return;
    }
    if (result != AUTH_OK || !id) {
        rf_error_auth(rq, result, retry_after);
        return;
    }
    rq->who = *id;
    run_handler(rq, true);
}

/* rq->who from the connection's client certificate; false when it names nobody. */
static bool who_by_certificate(struct rf_request *rq, const struct peers_who *pw)
{
    switch (pw->kind) {
    case PEERS_PIN:
        return auth_identify_pinned(rq->d->auth, pw->entry.user, pw->entry.role, &rq->who);
    case PEERS_CHAIN:
        return auth_identify_user(rq->d->auth, pw->user, &rq->who);
    default:
        return false;
    }
}

static void answer_http_error(struct rf_request *rq, int status)
{
    char res[160];
    struct daemon *d = rq->d;

    switch (status) {
    case 413:
        (void)snprintf(res, sizeof(res), "%u", d && d->cfg ? d->cfg->max_body : 0u);
        if (d && d->cfg) {
            rf_errorf(rq, 413, RF_MSG_PAYLOAD_TOO_LARGE, res, NULL);
        } else {
            rf_errorf(rq, 413, RF_MSG_PAYLOAD_TOO_LARGE, NULL);
        }
        return;
    case 408:
        (void)snprintf(res, sizeof(res),
                       "Send the whole request within %u seconds and resubmit it.",
                       d && d->cfg ? d->cfg->request_timeout : CONFIG_REQUEST_TIMEOUT_DEFAULT);
        break;
    case 414:
        (void)snprintf(res, sizeof(res),
                       "Use a request target of at most %u bytes and resubmit the request.",
                       HTTP_TARGET_MAX);
        break;
    case 431:
        (void)snprintf(res, sizeof(res),
                       "Send at most %u header lines of at most %u bytes in all and resubmit the "
                       "request.",
                       HTTP_HEADERS_MAX,
                       d && d->cfg ? d->cfg->max_headers_size : CONFIG_MAX_HEADERS_SIZE_DEFAULT);
        break;
    case 501:
        /* A method the server does not know: no resource supports it. */
        rf_errorf(rq, 501, RF_MSG_OPERATION_NOT_ALLOWED, NULL);
        return;
    case 505:
        (void)snprintf(res, sizeof(res), "Use HTTP/1.1 and resubmit the request.");
        break;
    case 400:
    default:
        (void)snprintf(res, sizeof(res),
                       "Send a well-formed HTTP/1.1 request (request line, headers, percent-"
                       "encoding of the target) and resubmit it.");
        break;
    }
    error_explained(rq, status, RF_MSG_GENERAL_ERROR, res);
}

void front_handle(struct http_request *req, void *userdata)
{
    struct rf_request_full *full = calloc(1, sizeof(*full));
    struct rf_request *rq;
    const char *ov, *authz, *token;
    int e;

    if (!full) {
        log_err("out of memory for a request");
        http_respond(req, 503, NULL, NULL, 0);
        return;
    }
    rq = &full->rq;
    rq->priv_ = &full->priv;
    (void)clock_gettime(CLOCK_MONOTONIC, &full->priv.start);
    rq->d = userdata;
    rq->http = req;
    rq->method = http_request_method(req);
    rq->body = http_request_body(req);

    e = http_request_error(req);
    if (e != 0) {
        answer_http_error(rq, e);
        return;
    }

    rq->route = rf_route_lookup(http_request_path(req), rq->params, &rq->n_params);
    if (!rq->route) {
        char uri[CLEAN_MAX(RF_ARG_MAX)];
        const char *path = http_request_path(req);
        text_clean(uri, sizeof(uri), path, strlen(path), RF_ARG_MAX);
        rf_errorf(rq, 404, RF_MSG_RESOURCE_MISSING_AT_URI, uri, NULL);
        return;
    }
    if (rq->method == HTTP_METHOD_OPTIONS) {
        full->priv.is_options = true;
        rf_respond(rq, 204, NULL);
        return;
    }
    if (rq->method >= HTTP_METHOD_OTHER || !(route_methods(rq->route) & (1u << rq->method))) {
        rf_errorf(rq, 405, RF_MSG_OPERATION_NOT_ALLOWED, NULL);
        return;
    }
    /* Handlers serve HEAD as GET; http_respond leaves the body out. */
    if (rq->method == HTTP_METHOD_HEAD) {
        rq->method = HTTP_METHOD_GET;
    }

    if (rq->route->is_redfish) {
        char name[CLEAN_MAX(RF_ARG_MAX)], value[CLEAN_MAX(RF_ARG_MAX)];

        /* DSP0266 §8.1: a service that cannot serve the requested OData-Version answers 412. */
        ov = http_request_header(req, "OData-Version");
        if (ov && (strcmp(ov, "4.0") != 0 || http_request_header_count(req, "OData-Version") > 1)) {
            rf_errorf(rq, 412, RF_MSG_PRECONDITION_FAILED,
                      "Send OData-Version: 4.0, or no OData-Version header, and resubmit the "
                      "request.",
                      NULL);
            return;
        }
        switch (query_check(http_request_query(req), name, value, sizeof(name))) {
        case QUERY_BAD_VALUE:
            rf_errorf(rq, 400, RF_MSG_QUERY_PARAMETER_VALUE_ERROR, value, name, NULL);
            return;
        case QUERY_UNSUPPORTED:
            rf_errorf(rq, 501, RF_MSG_QUERY_NOT_SUPPORTED, NULL);
            return;
        case QUERY_OK:
        default:
            break;
        }
    }

    if (rq->route->is_public || (rq->route->unauthenticated_methods & (1u << rq->method))) {
        run_handler(rq, false);
        return;
    }
    struct peers_who pw = { .kind = PEERS_NONE };
    if (rq->d->peers) {
        peers_identify(rq->d->peers, http_request_ssl(req), &pw);
    }
    rq->has_client_pin = pw.has_cert;
    rq->client_pin = pw.pin;
    /* A certificate no longer accepted (its pin deleted) gets nothing, whatever else is sent. */
    if (pw.kind == PEERS_GONE) {
        rf_error_auth(rq, AUTH_DENIED, 0);
        return;
    }
    /* Repeated credentials are ambiguous: which one would be checked? Refused as such. */
    if (http_request_header_count(req, "Authorization") > 1 ||
        http_request_header_count(req, "X-Auth-Token") > 1) {
        rf_error_auth(rq, AUTH_DENIED, 0);
        return;
    }
    authz = http_request_header(req, "Authorization");
    token = http_request_header(req, "X-Auth-Token");
    /* Credentials sent win (a person may log in over a console's connection); else the
     * client certificate says who it is. */
    if (!authz && !token && who_by_certificate(rq, &pw)) {
        run_handler(rq, true);
        return;
    }
    /* on_auth may run before auth_check returns: rq is not touched after this call. */
    auth_check(rq->d->auth, authz, token, http_request_peer(req), on_auth, rq);
}
