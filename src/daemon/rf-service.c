/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Redfish service resources of certd (redfish.h): the service documents (/redfish,
 * ServiceRoot, the OData service document, $metadata), SessionService with its sessions (the
 * login), AccountService with its roles and accounts, and the Manager "bmc" with its network
 * protocol and security policy -- everything that leads a client, or DMTF's validators, to the
 * certificate resources of rf-cert.c.
 *
 * Invariants:
 *  - every payload names a type version present in DSP8010 2025.4 (the newest of each) and
 *    holds only properties that version defines, with valid enum values; navigation
 *    properties are exactly {"@odata.id"}; Id is the last segment of @odata.id;
 *  - $metadata references exactly the CSDL namespaces of the payloads certd sends (this file's,
 *    rf-cert.c's and the error messages'): keep it in step when a version changes;
 *  - accounts are read-only here (certctl manages the users file): a session's token is shown
 *    once, in the login answer, and never again; passwords are never shown.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log/log.h"
#include "redfish.h"
#include "users/users.h"
#include "util/secret.h"
#include "x509/inspect.h"

#define M(x) (1u << HTTP_METHOD_##x)

#define ROOT_URI             "/redfish/v1/"
#define SESSION_SERVICE_URI  "/redfish/v1/SessionService"
#define SESSIONS_URI         "/redfish/v1/SessionService/Sessions"
#define ACCOUNT_SERVICE_URI  "/redfish/v1/AccountService"
#define ACCOUNTS_URI         "/redfish/v1/AccountService/Accounts"
#define ROLES_URI            "/redfish/v1/AccountService/Roles"
#define MANAGERS_URI         "/redfish/v1/Managers"
#define MANAGER_URI          "/redfish/v1/Managers/bmc"
#define NETWORK_PROTOCOL_URI "/redfish/v1/Managers/bmc/NetworkProtocol"
#define SECURITY_POLICY_URI  "/redfish/v1/Managers/bmc/SecurityPolicy"

/* The payload types (and the Link schemas) of this file. */
#define T_SERVICE_ROOT       "ServiceRoot.v1_20_0"
#define T_SESSION_SERVICE    "SessionService.v1_2_0"
#define T_SESSION            "Session.v1_8_0"
#define T_ACCOUNT_SERVICE    "AccountService.v1_18_1"
#define T_ACCOUNT            "ManagerAccount.v1_14_1"
#define T_ROLE               "Role.v1_3_3"
#define T_MANAGER            "Manager.v1_24_0"
#define T_NETWORK_PROTOCOL   "ManagerNetworkProtocol.v1_12_0"
#define T_SECURITY_POLICY    "SecurityPolicy.v1_0_3"
#define T_SESSION_COLLECTION "SessionCollection"
#define T_ACCOUNT_COLLECTION "ManagerAccountCollection"
#define T_ROLE_COLLECTION    "RoleCollection"
#define T_MANAGER_COLLECTION "ManagerCollection"

/* DSP0266 version this service follows. */
#define REDFISH_VERSION "1.20.0"

/*
 * The CSDL namespaces of every payload certd sends. ServiceRoot.v1_19_0 is the newest namespace
 * that declares a ServiceContainer (v1_20_0 adds none), so the container extends that one.
 * Certificate* and ActionInfo are rf-cert.c's types; Message those of the error bodies;
 * Resource and Privileges hold the shared types (Status, PrivilegeType).
 */
#define REF(file, ...)                                                                            \
    "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/" file "_v1.xml\">\n" __VA_ARGS__ \
    "  </edmx:Reference>\n"
#define INC(ns) "    <edmx:Include Namespace=\"" ns "\"/>\n"

/* In pieces: C11 compilers need support string literals of 4095 bytes only (§5.2.4.1). */
static const char *const metadata_parts[] = {
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n",
    REF("RedfishExtensions",
        "    <edmx:Include Namespace=\"RedfishExtensions.v1_0_0\" Alias=\"Redfish\"/>\n"),
    REF("Resource", INC("Resource") INC("Resource.v1_0_0")),
    REF("Privileges", INC("Privileges")),
    REF("Message", INC("Message") INC("Message.v1_3_0")),
    REF("ServiceRoot", INC("ServiceRoot") INC("ServiceRoot.v1_19_0") INC("ServiceRoot.v1_20_0")),
    REF("SessionService", INC("SessionService") INC("SessionService.v1_2_0")),
    REF("SessionCollection", INC("SessionCollection")),
    REF("Session", INC("Session") INC("Session.v1_8_0")),
    REF("AccountService", INC("AccountService") INC("AccountService.v1_18_1")),
    REF("ManagerAccountCollection", INC("ManagerAccountCollection")),
    REF("ManagerAccount", INC("ManagerAccount") INC("ManagerAccount.v1_14_1")),
    REF("RoleCollection", INC("RoleCollection")),
    REF("Role", INC("Role") INC("Role.v1_3_3")),
    REF("ManagerCollection", INC("ManagerCollection")),
    REF("Manager", INC("Manager") INC("Manager.v1_24_0")),
    REF("ManagerNetworkProtocol",
        INC("ManagerNetworkProtocol") INC("ManagerNetworkProtocol.v1_12_0")),
    REF("SecurityPolicy", INC("SecurityPolicy") INC("SecurityPolicy.v1_0_3")),
    REF("CertificateService", INC("CertificateService") INC("CertificateService.v1_2_1")),
    REF("CertificateLocations", INC("CertificateLocations") INC("CertificateLocations.v1_0_4")),
    REF("CertificateCollection", INC("CertificateCollection")),
    REF("Certificate", INC("Certificate") INC("Certificate.v1_11_0")),
    REF("ActionInfo", INC("ActionInfo") INC("ActionInfo.v1_5_0")),
    "  <edmx:DataServices>\n"
    "    <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"Service\">\n"
    "      <EntityContainer Name=\"Service\" Extends=\"ServiceRoot.v1_19_0.ServiceContainer\"/>\n"
    "    </Schema>\n"
    "  </edmx:DataServices>\n"
    "</edmx:Edmx>\n",
};

/* --- building payloads --- */

static json_t *status_enabled(void)
{
    return json_pack("{s:s, s:s}", "State", "Enabled", "Health", "OK");
}

/* --- /redfish, ServiceRoot, odata, $metadata --- */

static void get_redfish(struct rf_request *rq)
{
    rf_respond_200(rq, json_pack("{s:s}", "v1", ROOT_URI));
}

static void get_root(struct rf_request *rq)
{
    json_t *r = rf_resource_new(ROOT_URI, T_SERVICE_ROOT, "RootService", "Root Service");

    /* We implement no query parameter: saying so keeps clients and validators from trying. */
    (void)rf_set(&r, "ProtocolFeaturesSupported",
                 json_pack("{s:b, s:{s:b, s:b, s:b, s:b}, s:b, s:b, s:b, s:b}", "ExcerptQuery", 0,
                           "ExpandQuery", "ExpandAll", 0, "Levels", 0, "Links", 0, "NoLinks", 0,
                           "FilterQuery", 0, "OnlyMemberQuery", 0, "SelectQuery", 0, "TopSkipQuery",
                           0));
    (void)rf_set(&r, "RedfishVersion", json_string(REDFISH_VERSION));
    (void)rf_set(&r, "UUID", json_string(rq->d->uuid));
    (void)rf_set(&r, "Product", json_string("certd"));
    (void)rf_set(&r, "CertificateService", rf_link("/redfish/v1/CertificateService"));
    (void)rf_set(&r, "SessionService", rf_link(SESSION_SERVICE_URI));
    (void)rf_set(&r, "AccountService", rf_link(ACCOUNT_SERVICE_URI));
    (void)rf_set(&r, "Managers", rf_link(MANAGERS_URI));
    (void)rf_set(&r, "Links",
                 json_pack("{s:o, s:o}", "Sessions", rf_link(SESSIONS_URI),
                           "ManagerProvidingService", rf_link(MANAGER_URI)));
    rf_respond_200(rq, r);
}

static void get_odata(struct rf_request *rq)
{
    static const char *const top[][2] = {
        { "Service", ROOT_URI },
        { "CertificateService", "/redfish/v1/CertificateService" },
        { "SessionService", SESSION_SERVICE_URI },
        { "AccountService", ACCOUNT_SERVICE_URI },
        { "Managers", MANAGERS_URI },
        { "Sessions", SESSIONS_URI },
    };
    json_t *value = json_array();

    for (size_t i = 0; value && i < ELEMENTSOF(top); i++) {
        if (json_array_append_new(value, json_pack("{s:s, s:s, s:s}", "name", top[i][0], "kind",
                                                   "Singleton", "url", top[i][1])) < 0) {
            json_decref(value);
            value = NULL;
        }
    }
    rf_respond_200(rq, value ? json_pack("{s:s, s:o}", "@odata.context", "/redfish/v1/$metadata",
                                         "value", value)
                             : NULL);
}

/* The document, joined at its first request and kept to the end (loop thread only). */
static const char *metadata_xml(size_t *ret_len)
{
    static char *xml;
    static size_t len;

    if (!xml) {
        size_t n = 0, o = 0;
        for (size_t i = 0; i < ELEMENTSOF(metadata_parts); i++) {
            n += strlen(metadata_parts[i]);
        }
        xml = malloc(n);
        if (!xml) {
            return NULL;
        }
        for (size_t i = 0; i < ELEMENTSOF(metadata_parts); i++) {
            size_t k = strlen(metadata_parts[i]);
            memcpy(xml + o, metadata_parts[i], k);
            o += k;
        }
        len = n;
    }
    *ret_len = len;
    return xml;
}

static void get_metadata(struct rf_request *rq)
{
    size_t len = 0;
    const char *xml = metadata_xml(&len);

    if (!xml) {
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    rf_respond_raw(rq, 200, "application/xml", xml, len);
}

/* --- SessionService and sessions --- */

static json_t *session_service_json(struct rf_request *rq)
{
    json_t *r = rf_resource_new(SESSION_SERVICE_URI, T_SESSION_SERVICE, "SessionService",
                                "Session Service");

    (void)rf_set(&r, "Description", json_string("Sessions of certd's Redfish service"));
    (void)rf_set(&r, "ServiceEnabled", json_true());
    (void)rf_set(&r, "SessionTimeout", json_integer(auth_session_timeout(rq->d->auth)));
    (void)rf_set(&r, "Sessions", rf_link(SESSIONS_URI));
    (void)rf_set(&r, "Status", status_enabled());
    return r;
}

static void session_service(struct rf_request *rq)
{
    static const char *const known[] = { "SessionTimeout", "ServiceEnabled", NULL };
    json_int_t timeout;
    bool has_timeout, enabled, has_enabled;

    if (rq->method == HTTP_METHOD_GET) {
        rf_respond_200(rq, session_service_json(rq));
        return;
    }
    /* PATCH: every property checked before anything changes. */
    if (!rf_check_known(rq, NULL, known) ||
        !rf_get_int(rq, NULL, "SessionTimeout", false, AUTH_SESSION_TIMEOUT_MIN,
                    AUTH_SESSION_TIMEOUT_MAX, &timeout, &has_timeout) ||
        !rf_get_bool(rq, NULL, "ServiceEnabled", false, &enabled, &has_enabled)) {
        return;
    }
    if (!has_timeout && !has_enabled) {
        rf_errorf(rq, 400, RF_MSG_EMPTY_JSON, NULL);
        return;
    }
    if (has_enabled && !enabled) {
        /* The service that answers this request cannot switch itself off. */
        rf_errorf(rq, 400, RF_MSG_PROPERTY_VALUE_NOT_IN_LIST, "false", "ServiceEnabled", NULL);
        return;
    }
    if (has_timeout) {
        /* In range (checked above), so this cannot fail; the timeout is not persisted. */
        if (auth_set_session_timeout(rq->d->auth, (unsigned)timeout) < 0) {
            rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
            return;
        }
        log_info("user %s set the session timeout to %lld s", rq->who.user, (long long)timeout);
    }
    rf_respond_200(rq, session_service_json(rq));
}

static json_t *session_json(const struct auth_session_info *s)
{
    char uri[sizeof(SESSIONS_URI) + AUTH_SESSION_ID_MAX + 1], created[32];
    json_t *r;

    (void)snprintf(uri, sizeof(uri), SESSIONS_URI "/%s", s->id);
    unix_to_iso8601((int64_t)s->created, created, sizeof(created));
    r = rf_resource_new(uri, T_SESSION, s->id, "User Session");
    (void)rf_set(&r, "Description", json_string("Manager User Session"));
    (void)rf_set(&r, "UserName", json_string(s->user));
    (void)rf_set(&r, "CreatedTime", json_string(created));
    (void)rf_set(&r, "SessionType", json_string("Redfish"));
    (void)rf_set(&r, "Roles", json_pack("[s]", user_role_name(s->role)));
    return r;
}

/*
 * Who sees a session: its owner, and users who may manage the service. Others learn nothing of
 * other users' sessions (DSP8011 lets them see sessions; their ids and origins are not theirs).
 */
static bool session_visible(const struct rf_request *rq, const struct auth_session_info *s)
{
    return strcmp(s->user, rq->who.user) == 0 || rf_has_privileges(rq, AUTH_PRIV_CONFIGURE_MANAGER);
}

static void on_login(void *arg, enum auth_result result, const struct auth_session_info *s,
                     unsigned retry_after)
{
    struct rf_request *rq = arg;
    char uri[sizeof(SESSIONS_URI) + AUTH_SESSION_ID_MAX + 1];
    json_t *body;

    if (result == AUTH_SESSION_LIMIT) {
        rf_errorf(rq, 503, RF_MSG_SESSION_LIMIT_EXCEEDED, NULL);
        return;
    }
    if (result != AUTH_OK || !s) {
        rf_error_auth(rq, result, retry_after);
        return;
    }
    body = session_json(s);
    if (!body) {
        /* The session exists but nobody can learn its token: end it. */
        (void)auth_session_delete(rq->d->auth, s->id);
        rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
        return;
    }
    (void)snprintf(uri, sizeof(uri), SESSIONS_URI "/%s", s->id);
    log_info("user %s logged in from %s (session %s)", s->user, http_request_peer(rq->http), s->id);
    /* DSP0266 §13.3.4: the token once, in X-Auth-Token; Location names the new session. */
    rf_header(rq, "X-Auth-Token", s->token);
    rf_header(rq, "Location", uri);
    rf_respond(rq, 201, body);
}

static void login(struct rf_request *rq)
{
    static const char *const known[] = { "UserName", "Password", NULL };
    _cleanup_(cleanup_secret) struct secret *password = NULL;
    json_t *pw = json_object_get(rq->json, "Password");
    char user[USERS_NAME_MAX * 4 + 1];
    const char *u, *p;
    size_t ulen;

    /*
     * The password moves into a secret before anything else, and jansson's copy is wiped, so
     * that no answer below -- whatever it refuses -- leaves it in ordinary memory.
     */
    if (json_is_string(pw)) {
        p = json_string_value(pw);
        password = secret_new(p, json_string_length(pw));
        explicit_bzero((void *)(uintptr_t)p, json_string_length(pw));
        if (!password) {
            rf_errorf(rq, 500, RF_MSG_INTERNAL_ERROR, NULL);
            return;
        }
    }
    if (!rf_check_known(rq, NULL, known) || !rf_get_string(rq, NULL, "UserName", true, &u) ||
        !rf_get_string(rq, NULL, "Password", true, &p)) {
        return;
    }
    /*
     * Our own copy of the name: the callback may run (and free rq) inside auth_login. A name
     * longer than any user's stays longer than any user's when cut, so it still fails -- and
     * still counts as a failure for the rate limits.
     */
    ulen = strnlen(u, sizeof(user) - 1);
    memcpy(user, u, ulen);
    user[ulen] = '\0';
    auth_login(rq->d->auth, user, password, http_request_peer(rq->http), on_login, rq);
}

static void sessions(struct rf_request *rq)
{
    json_t *c;

    if (rq->method == HTTP_METHOD_POST) {
        login(rq);
        return;
    }
    c = rf_collection_new(SESSIONS_URI, T_SESSION_COLLECTION, "Session Collection");
    /* Counting ends timed-out sessions: count once, then walk what is left. */
    size_t n = auth_n_sessions(rq->d->auth);
    for (size_t i = 0; c && i < n; i++) {
        const struct auth_session_info *s = auth_session_at(rq->d->auth, i);
        char uri[sizeof(SESSIONS_URI) + AUTH_SESSION_ID_MAX + 1];
        if (!s || !session_visible(rq, s)) {
            continue;
        }
        (void)snprintf(uri, sizeof(uri), SESSIONS_URI "/%s", s->id);
        if (!rf_members_add(c, uri)) {
            json_decref(c);
            c = NULL;
        }
    }
    rf_respond_200(rq, rf_collection_done(c));
}

static void session(struct rf_request *rq)
{
    const char *id = rq->params[0];
    const struct auth_session_info *s = auth_session_find(rq->d->auth, id);
    bool own;

    if (!s) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_NOT_FOUND, "Session", id, NULL);
        return;
    }
    own = strcmp(s->user, rq->who.user) == 0;
    if (rq->method == HTTP_METHOD_GET) {
        if (!session_visible(rq, s)) {
            rf_errorf(rq, 403, RF_MSG_INSUFFICIENT_PRIVILEGE, NULL);
            return;
        }
        rf_respond_200(rq, session_json(s));
        return;
    }
    /* DELETE (DSP8011): one's own session with ConfigureSelf, anybody's with ConfigureManager. */
    if (!(own && rf_has_privileges(rq, AUTH_PRIV_CONFIGURE_SELF)) &&
        !rf_has_privileges(rq, AUTH_PRIV_CONFIGURE_MANAGER)) {
        rf_errorf(rq, 403, RF_MSG_INSUFFICIENT_PRIVILEGE, NULL);
        return;
    }
    log_info("user %s ended session %s of %s", rq->who.user, s->id, s->user);
    if (auth_session_delete(rq->d->auth, id) < 0) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_NOT_FOUND, "Session", id, NULL);
        return;
    }
    rf_respond(rq, 204, NULL);
}

/* --- AccountService, roles, accounts --- */

static void account_service(struct rf_request *rq)
{
    json_t *r = rf_resource_new(ACCOUNT_SERVICE_URI, T_ACCOUNT_SERVICE, "AccountService",
                                "Account Service");

    (void)rf_set(
        &r, "Description",
        json_string("Local accounts of certd (read-only here: certctl user manages them)"));
    (void)rf_set(&r, "ServiceEnabled", json_true());
    (void)rf_set(&r, "Status", status_enabled());
    (void)rf_set(&r, "MinPasswordLength", json_integer(USERS_PASSWORD_MIN));
    (void)rf_set(&r, "MaxPasswordLength", json_integer(USERS_PASSWORD_MAX));
    (void)rf_set(&r, "LocalAccountAuth", json_string("Enabled"));
    (void)rf_set(&r, "HTTPBasicAuth", json_string("Enabled"));
    (void)rf_set(&r, "SupportedAccountTypes", json_pack("[s]", "Redfish"));
    (void)rf_set(&r, "Accounts", rf_link(ACCOUNTS_URI));
    (void)rf_set(&r, "Roles", rf_link(ROLES_URI));
    /* certd keeps the LDAP client's certificate; LDAP authentication itself is not ours. */
    (void)rf_set(&r, "LDAP",
                 json_pack("{s:o}", "Certificates",
                           rf_link("/redfish/v1/AccountService/LDAP/Certificates")));
    rf_respond_200(rq, r);
}

static void roles(struct rf_request *rq)
{
    json_t *c = rf_collection_new(ROLES_URI, T_ROLE_COLLECTION, "Roles Collection");

    for (int i = 0; c && i < USER_ROLE_MAX; i++) {
        char uri[sizeof(ROLES_URI) + 32];
        (void)snprintf(uri, sizeof(uri), ROLES_URI "/%s", user_role_name((enum user_role)i));
        if (!rf_members_add(c, uri)) {
            json_decref(c);
            c = NULL;
        }
    }
    rf_respond_200(rq, rf_collection_done(c));
}

static void role(struct rf_request *rq)
{
    char uri[sizeof(ROLES_URI) + RF_PARAM_MAX + 1], description[64];
    enum user_role role;
    json_t *privs, *r;
    uint32_t bits;

    if (user_role_from_name(rq->params[0], &role) < 0) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_NOT_FOUND, "Role", rq->params[0], NULL);
        return;
    }
    bits = auth_role_privileges(role);
    privs = json_array();
    for (uint32_t b = 1; privs && b != 0 && b <= AUTH_PRIV_CONFIGURE_COMPONENTS; b <<= 1) {
        if ((bits & b) && json_array_append_new(privs, json_string(auth_privilege_name(b))) < 0) {
            json_decref(privs);
            privs = NULL;
        }
    }
    (void)snprintf(uri, sizeof(uri), ROLES_URI "/%s", user_role_name(role));
    (void)snprintf(description, sizeof(description), "%s User Role", user_role_name(role));
    r = rf_resource_new(uri, T_ROLE, user_role_name(role), "User Role");
    (void)rf_set(&r, "Description", json_string(description));
    (void)rf_set(&r, "RoleId", json_string(user_role_name(role)));
    (void)rf_set(&r, "IsPredefined", json_true());
    (void)rf_set(&r, "Restricted", json_false());
    (void)rf_set(&r, "AssignedPrivileges", privs);
    (void)rf_set(&r, "OemPrivileges", json_array());
    rf_respond_200(rq, r);
}

static json_t *account_json(const struct user *u)
{
    char uri[sizeof(ACCOUNTS_URI) + USERS_NAME_MAX + 2], role_uri[sizeof(ROLES_URI) + 32];
    json_t *r;

    (void)snprintf(uri, sizeof(uri), ACCOUNTS_URI "/%s", u->name);
    (void)snprintf(role_uri, sizeof(role_uri), ROLES_URI "/%s", user_role_name(u->role));
    r = rf_resource_new(uri, T_ACCOUNT, u->name, "User Account");
    (void)rf_set(&r, "Description", json_string("User Account"));
    (void)rf_set(&r, "UserName", json_string(u->name));
    (void)rf_set(&r, "RoleId", json_string(user_role_name(u->role)));
    /* The users file has no disabled or locked accounts; throttling is per attempt. */
    (void)rf_set(&r, "Enabled", json_true());
    (void)rf_set(&r, "Locked", json_false());
    (void)rf_set(&r, "AccountTypes", json_pack("[s]", "Redfish"));
    (void)rf_set(&r, "Links", json_pack("{s:o}", "Role", rf_link(role_uri)));
    return r;
}

/* A strong ETag of the representation (FNV-1a 64 of its canonical JSON): it changes exactly
 * when what GET shows changes. */
static bool etag_of(const json_t *j, char *buf, size_t size)
{
    _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = 0xcbf29ce484222325ULL;

    if (!text) {
        return false;
    }
    for (const char *p = text; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 0x100000001b3ULL;
    }
    (void)snprintf(buf, size, "\"%016llx\"", (unsigned long long)h);
    return true;
}

static void accounts_answer(struct rf_request *rq, const struct users *users)
{
    const char *name = rq->n_params > 0 ? rq->params[0] : NULL;
    bool all = rf_has_privileges(rq, AUTH_PRIV_CONFIGURE_USERS);
    const struct user *u;
    char etag[24];
    json_t *r;

    if (!name) {
        /* Without ConfigureUsers a user sees their own account only (DSP8011 ConfigureSelf). */
        json_t *c = rf_collection_new(ACCOUNTS_URI, T_ACCOUNT_COLLECTION, "Accounts Collection");
        for (size_t i = 0; c && i < users->n; i++) {
            char uri[sizeof(ACCOUNTS_URI) + USERS_NAME_MAX + 2];
            if (!all && strcmp(users->v[i].name, rq->who.user) != 0) {
                continue;
            }
            (void)snprintf(uri, sizeof(uri), ACCOUNTS_URI "/%s", users->v[i].name);
            if (!rf_members_add(c, uri)) {
                json_decref(c);
                c = NULL;
            }
        }
        rf_respond_200(rq, rf_collection_done(c));
        return;
    }
    u = users_find(users, name);
    if (!u) {
        rf_errorf(rq, 404, RF_MSG_RESOURCE_NOT_FOUND, "ManagerAccount", name, NULL);
        return;
    }
    r = account_json(u);
    if (r && etag_of(r, etag, sizeof(etag))) {
        rf_header(rq, "ETag", etag);
    }
    rf_respond_200(rq, r);
}

static void accounts(struct rf_request *rq)
{
    /* One's own account with Login (ConfigureSelf), anybody's with ConfigureUsers. */
    if (rq->n_params > 0 && strcmp(rq->params[0], rq->who.user) != 0 &&
        !rf_has_privileges(rq, AUTH_PRIV_CONFIGURE_USERS)) {
        rf_errorf(rq, 403, RF_MSG_INSUFFICIENT_PRIVILEGE, NULL);
        return;
    }
    /* The users auth checks credentials against: what GET shows is what logins see. */
    accounts_answer(rq, auth_users(rq->d->auth));
}

/* --- Managers --- */

static void managers(struct rf_request *rq)
{
    json_t *c = rf_collection_new(MANAGERS_URI, T_MANAGER_COLLECTION, "Manager Collection");

    if (c && !rf_members_add(c, MANAGER_URI)) {
        json_decref(c);
        c = NULL;
    }
    rf_respond_200(rq, rf_collection_done(c));
}

static void manager(struct rf_request *rq)
{
    char now[32], start[32];
    json_t *r = rf_resource_new(MANAGER_URI, T_MANAGER, "bmc", "Manager");

    unix_to_iso8601((int64_t)time(NULL), now, sizeof(now));
    unix_to_iso8601((int64_t)rq->d->start_time, start, sizeof(start));
    (void)rf_set(&r, "Description", json_string("certd, the certificate manager of this BMC"));
    (void)rf_set(&r, "ManagerType", json_string("BMC"));
    (void)rf_set(&r, "UUID", json_string(rq->d->uuid));
    (void)rf_set(&r, "ServiceEntryPointUUID", json_string(rq->d->uuid));
    (void)rf_set(&r, "Model", json_string("certd"));
    (void)rf_set(&r, "FirmwareVersion", json_string(CERTD_VERSION));
    (void)rf_set(&r, "DateTime", json_string(now));
    (void)rf_set(&r, "DateTimeLocalOffset", json_string("+00:00"));
    (void)rf_set(&r, "LastResetTime", json_string(start));
    (void)rf_set(&r, "PowerState", json_string("On"));
    (void)rf_set(&r, "Status", status_enabled());
    (void)rf_set(&r, "NetworkProtocol", rf_link(NETWORK_PROTOCOL_URI));
    (void)rf_set(&r, "SecurityPolicy", rf_link(SECURITY_POLICY_URI));
    rf_respond_200(rq, r);
}

static void network_protocol(struct rf_request *rq)
{
    struct daemon *d = rq->d;
    uint16_t port = d->http ? http_server_port(d->http) : 0;
    json_t *r = rf_resource_new(NETWORK_PROTOCOL_URI, T_NETWORK_PROTOCOL, "NetworkProtocol",
                                "Manager Network Protocol");

    if (port == 0) {
        port = d->cfg->listen.port;
    }
    (void)rf_set(&r, "Description", json_string("The protocol certd serves"));
    (void)rf_set(&r, "HostName", json_string(d->hostname));
    (void)rf_set(&r, "Status", status_enabled());
    (void)rf_set(&r, "HTTPS",
                 json_pack("{s:i, s:b, s:o}", "Port", (int)port, "ProtocolEnabled", 1,
                           "Certificates", rf_link(NETWORK_PROTOCOL_URI "/HTTPS/Certificates")));
    rf_respond_200(rq, r);
}

static void security_policy(struct rf_request *rq)
{
    json_t *r = rf_resource_new(SECURITY_POLICY_URI, T_SECURITY_POLICY, "SecurityPolicy",
                                "Security Policy");
    json_t *versions = rq->d->cfg->tls_profile == CONFIG_TLS_MODERN
                           ? json_pack("[s]", "1.3")
                           : json_pack("[s, s]", "1.2", "1.3");

    (void)rf_set(&r, "Description", json_string("TLS policy of certd's HTTPS service"));
    (void)rf_set(&r, "Status", status_enabled());
    /* certd asks clients for no certificate: it verifies none (VerifyCertificate false). */
    (void)rf_set(&r, "TLS",
                 versions
                     ? json_pack("{s:{s:o, s:b, s:{s:o}}}", "Server", "TrustedCertificates",
                                 rf_link(SECURITY_POLICY_URI "/TLS/Server/TrustedCertificates"),
                                 "VerifyCertificate", 0, "Allowed", "Versions", versions)
                     : NULL);
    rf_respond_200(rq, r);
}

/* --- the routes --- */

#define GET_LOGIN                           \
    {                                       \
        [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN \
    }

const struct rf_route rf_service_routes[] = {
    { .pattern = "/redfish",
      .methods = M(GET),
      .is_public = true,
      .is_redfish = true,
      .handler = get_redfish },
    { .pattern = "/redfish/v1",
      .methods = M(GET),
      .is_public = true,
      .is_redfish = true,
      .schema = T_SERVICE_ROOT,
      .handler = get_root },
    { .pattern = "/redfish/v1/odata",
      .methods = M(GET),
      .is_public = true,
      .is_redfish = true,
      .handler = get_odata },
    { .pattern = "/redfish/v1/$metadata",
      .methods = M(GET),
      .is_public = true,
      .is_redfish = true,
      .handler = get_metadata },
    { .pattern = SESSION_SERVICE_URI,
      .methods = M(GET) | M(PATCH),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN,
                      [HTTP_METHOD_PATCH] = AUTH_PRIV_CONFIGURE_MANAGER },
      .is_redfish = true,
      .body = RF_BODY_JSON,
      .schema = T_SESSION_SERVICE,
      .handler = session_service },
    { .pattern = SESSIONS_URI,
      .methods = M(GET) | M(POST),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .body = RF_BODY_JSON,
      .schema = T_SESSION_COLLECTION,
      .handler = sessions,
      .unauthenticated_methods = M(POST) },
    /* Before {}: "Members" is the collection's alias for POST (DSP0266 §13.3.4). */
    { .pattern = SESSIONS_URI "/Members",
      .methods = M(POST),
      .is_redfish = true,
      .body = RF_BODY_JSON,
      .handler = sessions,
      .unauthenticated_methods = M(POST) },
    { .pattern = SESSIONS_URI "/{}",
      .methods = M(GET) | M(DELETE),
      .privileges = { [HTTP_METHOD_GET] = AUTH_PRIV_LOGIN, [HTTP_METHOD_DELETE] = AUTH_PRIV_LOGIN },
      .is_redfish = true,
      .schema = T_SESSION,
      .handler = session },
    { .pattern = ACCOUNT_SERVICE_URI,
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_ACCOUNT_SERVICE,
      .handler = account_service },
    { .pattern = ROLES_URI,
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_ROLE_COLLECTION,
      .handler = roles },
    { .pattern = ROLES_URI "/{}",
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_ROLE,
      .handler = role },
    { .pattern = ACCOUNTS_URI,
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_ACCOUNT_COLLECTION,
      .handler = accounts },
    { .pattern = ACCOUNTS_URI "/{}",
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_ACCOUNT,
      .handler = accounts },
    { .pattern = MANAGERS_URI,
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_MANAGER_COLLECTION,
      .handler = managers },
    { .pattern = MANAGER_URI,
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_MANAGER,
      .handler = manager },
    { .pattern = NETWORK_PROTOCOL_URI,
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_NETWORK_PROTOCOL,
      .handler = network_protocol },
    { .pattern = SECURITY_POLICY_URI,
      .methods = M(GET),
      .privileges = GET_LOGIN,
      .is_redfish = true,
      .schema = T_SECURITY_POLICY,
      .handler = security_policy },
    { .pattern = NULL },
};
