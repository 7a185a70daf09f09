# SPDX-License-Identifier: Apache-2.0
"""The Redfish service of certd (issue #3) end to end against the real daemon: the service
documents, SessionService and sessions, AccountService with roles and accounts, the Manager and
what hangs off it -- and the front end's generic behaviour every route shares: authentication,
privileges, 404/405/412/413/415/501 and the Base messages of every error.

Every JSON body is validated against the DMTF JSON schemas of the type it names (conftest's
response hook; shared/redfish-schema/json-schema, or CERTD_REDFISH_SCHEMA); without that
directory the validation is skipped with a warning, everything else still runs."""
import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
from conftest import (DATETIME, allow, assert_405_with_allow, assert_error, basic_auth,
                      expected_allow, ok, raw_request, schema_dir, schemas, wait_for)

ROOT = "/redfish/v1/"
SESSION_SERVICE = "/redfish/v1/SessionService"
SESSIONS = "/redfish/v1/SessionService/Sessions"
ACCOUNT_SERVICE = "/redfish/v1/AccountService"
ACCOUNTS = "/redfish/v1/AccountService/Accounts"
ROLES = "/redfish/v1/AccountService/Roles"
MANAGERS = "/redfish/v1/Managers"
MANAGER = "/redfish/v1/Managers/bmc"
NETWORK = "/redfish/v1/Managers/bmc/NetworkProtocol"
SECURITY = "/redfish/v1/Managers/bmc/SecurityPolicy"

PUBLIC = ["/redfish", "/redfish/v1", "/redfish/v1/", "/redfish/v1/odata", "/redfish/v1/$metadata"]

# Every resource of rf-service.c: path -> @odata.type (and so the schema that must validate it).
RESOURCES = {
    ROOT: "#ServiceRoot.v1_20_0.ServiceRoot",
    SESSION_SERVICE: "#SessionService.v1_2_0.SessionService",
    SESSIONS: "#SessionCollection.SessionCollection",
    ACCOUNT_SERVICE: "#AccountService.v1_18_1.AccountService",
    ACCOUNTS: "#ManagerAccountCollection.ManagerAccountCollection",
    ACCOUNTS + "/admin": "#ManagerAccount.v1_14_1.ManagerAccount",
    ROLES: "#RoleCollection.RoleCollection",
    ROLES + "/Administrator": "#Role.v1_3_3.Role",
    ROLES + "/Operator": "#Role.v1_3_3.Role",
    ROLES + "/ReadOnly": "#Role.v1_3_3.Role",
    MANAGERS: "#ManagerCollection.ManagerCollection",
    MANAGER: "#Manager.v1_24_0.Manager",
    NETWORK: "#ManagerNetworkProtocol.v1_12_0.ManagerNetworkProtocol",
    SECURITY: "#SecurityPolicy.v1_0_3.SecurityPolicy",
}

# The methods each route serves (HEAD comes with GET): every other one must be 405 + Allow.
METHODS = {
    "/redfish": {"GET"},
    "/redfish/v1": {"GET"},
    "/redfish/v1/odata": {"GET"},
    "/redfish/v1/$metadata": {"GET"},
    SESSION_SERVICE: {"GET", "PATCH"},
    SESSIONS: {"GET", "POST"},
    SESSIONS + "/Members": {"POST"},
    ACCOUNT_SERVICE: {"GET"},
    ACCOUNTS: {"GET"},
    ACCOUNTS + "/admin": {"GET"},
    ROLES: {"GET"},
    ROLES + "/Administrator": {"GET"},
    ROLES + "/ReadOnly": {"GET"},
    MANAGERS: {"GET"},
    MANAGER: {"GET"},
    NETWORK: {"GET"},
    SECURITY: {"GET"},
}

# Which methods the CSDL lets each type have in Allow (redfish-conformance.md §4.1).
CAPABILITIES = {
    "ServiceRoot": set(), "SessionService": {"PATCH", "PUT"}, "SessionCollection": {"POST"},
    "Session": {"DELETE"}, "AccountService": {"PATCH", "PUT"},
    "ManagerAccountCollection": {"POST"}, "ManagerAccount": {"PATCH", "PUT", "DELETE"},
    "RoleCollection": {"POST"}, "Role": {"PATCH", "PUT", "DELETE"}, "ManagerCollection": set(),
    "Manager": {"PATCH", "PUT"}, "ManagerNetworkProtocol": {"PATCH", "PUT"},
    "SecurityPolicy": {"PATCH", "PUT"}, "CertificateService": {"PATCH", "PUT"},
    "CertificateLocations": set(), "CertificateCollection": {"POST"},
    "Certificate": {"PATCH", "PUT", "DELETE"}, "ActionInfo": set(),
}

# The CSDL namespaces $metadata must reference: ours, rf-cert.c's and the error messages'.
METADATA_NAMESPACES = {
    "RedfishExtensions.v1_0_0", "Resource", "Resource.v1_0_0", "Privileges", "Message",
    "Message.v1_3_0", "ServiceRoot", "ServiceRoot.v1_19_0", "ServiceRoot.v1_20_0",
    "SessionService", "SessionService.v1_2_0", "SessionCollection", "Session", "Session.v1_8_0",
    "AccountService", "AccountService.v1_18_1", "ManagerAccountCollection", "ManagerAccount",
    "ManagerAccount.v1_14_1", "RoleCollection", "Role", "Role.v1_3_3", "ManagerCollection",
    "Manager", "Manager.v1_24_0", "ManagerNetworkProtocol", "ManagerNetworkProtocol.v1_12_0",
    "SecurityPolicy", "SecurityPolicy.v1_0_3", "CertificateService", "CertificateService.v1_2_1",
    "CertificateLocations", "CertificateLocations.v1_0_4", "CertificateCollection", "Certificate",
    "Certificate.v1_11_0", "ActionInfo", "ActionInfo.v1_5_0",
}

OPERATOR = ("oper", "operator-password-1")
READONLY = ("reader", "readonly-password-1")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# --- helpers ----------------------------------------------------------------------------------

def get_json(certd, path, auth="admin"):
    r = ok(certd.request("GET", path, auth=auth))
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    return r.json()


def login(certd, user, password, path=SESSIONS):
    return certd.request("POST", path, auth=None, json={"UserName": user, "Password": password})


def token_get(certd, path, token):
    return certd.request("GET", path, auth=None, headers={"X-Auth-Token": token})


@pytest.fixture
def users(certd):
    certd.add_user(OPERATOR[0], "Operator", OPERATOR[1])
    certd.add_user(READONLY[0], "ReadOnly", READONLY[1])
    return certd


# --- service documents ------------------------------------------------------------------------

def test_redfish_and_service_root_are_public(certd):
    r = ok(certd.request("GET", "/redfish", auth=None))
    assert r.json() == {"v1": "/redfish/v1/"}
    assert r.headers["OData-Version"] == "4.0"
    for path in ("/redfish/v1", "/redfish/v1/", "/redfish/"):
        ok(certd.request("GET", path, auth=None))
    root = get_json(certd, "/redfish/v1", auth=None)
    assert root["@odata.id"] == "/redfish/v1/"
    assert root["Id"] and root["Name"]
    assert root["Links"] == {"Sessions": {"@odata.id": SESSIONS},
                             "ManagerProvidingService": {"@odata.id": MANAGER}}
    for key, uri in (("CertificateService", "/redfish/v1/CertificateService"),
                     ("SessionService", SESSION_SERVICE), ("AccountService", ACCOUNT_SERVICE),
                     ("Managers", MANAGERS)):
        assert root[key] == {"@odata.id": uri}
    assert re.match(r"^\d+\.\d+\.\d+$", root["RedfishVersion"])
    assert UUID.match(root["UUID"])
    with open(os.path.join(certd.state_dir, "uuid")) as f:
        assert f.read().strip() == root["UUID"]
    # We implement no query: the root says so, so that clients do not try.
    feats = root["ProtocolFeaturesSupported"]
    assert not any(v for k, v in feats.items() if isinstance(v, bool))
    # The UUID survives a restart.
    certd.restart()
    assert get_json(certd, ROOT, auth=None)["UUID"] == root["UUID"]


def test_odata_service_document(certd):
    r = ok(certd.request("GET", "/redfish/v1/odata", auth=None))
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert doc["@odata.context"] == "/redfish/v1/$metadata"
    urls = {v["url"] for v in doc["value"]}
    assert {ROOT, SESSION_SERVICE, ACCOUNT_SERVICE, MANAGERS, SESSIONS} <= urls
    for v in doc["value"]:
        assert v["kind"] == "Singleton" and v["name"]
        ok(certd.request("GET", v["url"]))


def test_metadata_references_exactly_our_namespaces(certd):
    r = ok(certd.request("GET", "/redfish/v1/$metadata", auth=None))
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.headers["OData-Version"] == "4.0"
    ns = {"edmx": "http://docs.oasis-open.org/odata/ns/edmx",
          "edm": "http://docs.oasis-open.org/odata/ns/edm"}
    doc = ET.fromstring(r.content)
    includes = {}
    for ref in doc.findall("edmx:Reference", ns):
        uri = ref.get("Uri")
        m = re.fullmatch(r"http://redfish\.dmtf\.org/schemas/v1/([A-Za-z]+)_v1\.xml", uri)
        assert m, uri
        for inc in ref.findall("edmx:Include", ns):
            includes[inc.get("Namespace")] = m.group(1)
    assert set(includes) == METADATA_NAMESPACES
    container = doc.find("edmx:DataServices/edm:Schema/edm:EntityContainer", ns)
    assert container is not None
    assert container.get("Extends").rsplit(".", 1)[0] in includes
    # Every namespace named is really in the CSDL file referenced (when the DMTF schemas are
    # here at all: schemas() warns when they are not).
    if schemas():
        csdl = os.path.join(os.path.dirname(schema_dir()), "csdl")
        assert os.path.isdir(csdl), f"the CSDL directory {csdl} is missing next to the schemas"
        for namespace, file in includes.items():
            with open(os.path.join(csdl, file + "_v1.xml")) as f:
                assert f'Namespace="{namespace}"' in f.read(), (namespace, file)
        with open(os.path.join(csdl, "ServiceRoot_v1.xml")) as f:
            text = f.read()
        ext = container.get("Extends").rsplit(".", 1)[0]
        block = text.split(f'Namespace="{ext}"', 1)[1].split("</Schema>", 1)[0]
        assert 'EntityContainer Name="ServiceContainer"' in block


# --- every resource ---------------------------------------------------------------------------

def _links(value, found, top=True):
    """Navigation links in a payload; checks each is exactly {"@odata.id": uri}."""
    if isinstance(value, dict):
        if "@odata.id" in value and not top:
            assert set(value) == {"@odata.id"}, f"navigation property with extras: {value}"
            found.add(value["@odata.id"])
            return
        for k, v in value.items():
            if k.endswith("@Redfish.ActionInfo"):
                found.add(v)
            elif k != "@odata.id":
                _links(v, found, top=False)
    elif isinstance(value, list):
        for v in value:
            _links(v, found, top=False)


def _check_payload(body, path):
    text = json.dumps(body)
    assert "@Redfish.Copyright" not in text
    assert '""' not in text, f"empty string in {path}: omit the property instead"
    assert body["@odata.id"] == path.rstrip("/") or path == ROOT
    if "Members" in body:
        assert body["Members@odata.count"] == len(body["Members"])
    elif path != ROOT:
        assert body["Id"] == path.rstrip("/").rsplit("/", 1)[1]


def test_every_linked_resource_validates(certd):
    """Crawl from the root as the Service Validator does: every link answers 200 with a body
    of its type that the schema accepts, with the headers DSP0266 asks for."""
    seen, todo = set(), [ROOT]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        r = ok(certd.request("GET", path))
        assert r.headers["OData-Version"] == "4.0"
        assert r.headers["Cache-Control"] == "no-store"
        body = r.json()
        _check_payload(body, path)
        typ = body["@odata.type"]
        version = typ[1:].rsplit(".", 1)[0]
        assert r.headers["Link"] == \
            f"<https://redfish.dmtf.org/schemas/v1/{version}.json>; rel=describedby"
        name = typ.rsplit(".", 1)[1]
        if name in CAPABILITIES:
            assert allow(r) - {"GET", "HEAD"} <= CAPABILITIES[name], (path, allow(r))
        assert {"GET", "HEAD"} <= allow(r)
        if path in RESOURCES:
            assert typ == RESOURCES[path], path
        found = set()
        _links(body, found)
        todo.extend(found - seen)
    missing = set(RESOURCES) - seen
    assert not missing, f"not reachable from the root: {missing}"


@pytest.mark.parametrize("path", sorted(RESOURCES))
def test_resource_get_and_head(certd, path):
    body = get_json(certd, path)
    _check_payload(body, path)
    assert body["@odata.type"] == RESOURCES[path]
    h = ok(certd.request("HEAD", path))
    assert h.content == b""
    assert h.headers["Allow"] == ok(certd.request("GET", path)).headers["Allow"]
    assert h.headers["Link"].endswith("; rel=describedby")
    o = certd.request("OPTIONS", path, auth=None)
    assert o.status_code in (200, 204)
    assert allow(o) == expected_allow(METHODS.get(path.rstrip("/") or path, {"GET"}))


def test_resource_contents(certd):
    root = get_json(certd, ROOT)
    m = get_json(certd, MANAGER)
    assert m["Id"] == "bmc" and m["ManagerType"] == "BMC"
    assert m["UUID"] == root["UUID"]
    assert m["NetworkProtocol"] == {"@odata.id": NETWORK}
    assert m["SecurityPolicy"] == {"@odata.id": SECURITY}
    assert DATETIME.match(m["DateTime"]) and DATETIME.match(m["LastResetTime"])
    n = get_json(certd, NETWORK)
    assert n["HTTPS"] == {"Port": certd.port, "ProtocolEnabled": True,
                          "Certificates": {"@odata.id": NETWORK + "/HTTPS/Certificates"}}
    s = get_json(certd, SECURITY)
    server = s["TLS"]["Server"]
    assert server["TrustedCertificates"] == \
        {"@odata.id": SECURITY + "/TLS/Server/TrustedCertificates"}
    assert server["Allowed"]["Versions"] == ["1.2", "1.3"]
    a = get_json(certd, ACCOUNT_SERVICE)
    assert a["LDAP"] == {"Certificates": {"@odata.id": ACCOUNT_SERVICE + "/LDAP/Certificates"}}
    assert a["Accounts"] == {"@odata.id": ACCOUNTS} and a["Roles"] == {"@odata.id": ROLES}
    assert a["MinPasswordLength"] == 12
    ss = get_json(certd, SESSION_SERVICE)
    assert ss["ServiceEnabled"] is True and ss["SessionTimeout"] == 1800
    assert get_json(certd, MANAGERS)["Members"] == [{"@odata.id": MANAGER}]


def test_tls_profile_modern_in_security_policy(certd_factory):
    c = certd_factory(config="[tls]\nprofile = modern\n").start()
    try:
        assert get_json(c, SECURITY)["TLS"]["Server"]["Allowed"]["Versions"] == ["1.3"]
    finally:
        assert c.stop() == 0


def test_roles(certd):
    c = get_json(certd, ROLES)
    assert {m["@odata.id"] for m in c["Members"]} == \
        {ROLES + "/" + n for n in ("Administrator", "Operator", "ReadOnly")}
    expect = {
        "Administrator": {"Login", "ConfigureManager", "ConfigureUsers", "ConfigureSelf",
                          "ConfigureComponents"},
        "Operator": {"Login", "ConfigureSelf", "ConfigureComponents"},
        "ReadOnly": {"Login", "ConfigureSelf"},
    }
    for name, privs in expect.items():
        role = get_json(certd, ROLES + "/" + name)
        assert role["Id"] == role["RoleId"] == name
        assert role["IsPredefined"] is True
        assert set(role["AssignedPrivileges"]) == privs
        # Predefined roles cannot be changed (Protocol Validator) nor deleted.
        r = certd.request("PATCH", ROLES + "/" + name, json={"AssignedPrivileges": ["Login"]})
        assert_error(r, 405, "ActionNotSupported", "PATCH")
        assert allow(r) == {"GET", "HEAD"}
    assert_error(certd.request("GET", ROLES + "/Nobody"), 404, "ResourceNotFound", "Nobody")


def test_accounts_follow_the_users_file(users):
    certd = users
    c = get_json(certd, ACCOUNTS)
    assert {m["@odata.id"] for m in c["Members"]} == \
        {ACCOUNTS + "/" + n for n in ("admin", OPERATOR[0], READONLY[0])}
    r = ok(certd.request("GET", ACCOUNTS + "/" + OPERATOR[0]))
    a = r.json()
    assert a["UserName"] == a["Id"] == OPERATOR[0]
    assert a["RoleId"] == "Operator"
    assert a["Links"] == {"Role": {"@odata.id": ROLES + "/Operator"}}
    assert a["Enabled"] is True and a["Locked"] is False
    assert a.get("Password") is None
    etag = r.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
    assert ok(certd.request("GET", ACCOUNTS + "/" + OPERATOR[0])).headers["ETag"] == etag
    # certctl changes the role: the account and its ETag change with it.
    p = subprocess.run([certd.certctl, "user", "role", OPERATOR[0], "ReadOnly", "--users-file",
                        certd.users_file], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # certd re-reads the users file shortly after inotify reports the change.
    wait_for(lambda: ok(certd.request("GET", ACCOUNTS + "/" + OPERATOR[0])).json()["RoleId"]
             == "ReadOnly", 10, "the new role")
    r2 = ok(certd.request("GET", ACCOUNTS + "/" + OPERATOR[0]))
    assert r2.json()["RoleId"] == "ReadOnly"
    assert r2.headers["ETag"] != etag
    assert_error(certd.request("GET", ACCOUNTS + "/ghost"), 404, "ResourceNotFound", "ghost")
    # Accounts are certctl's: no creation, change or removal over Redfish.
    assert_error(certd.request("POST", ACCOUNTS, json={"UserName": "x", "Password": "y" * 12,
                                                       "RoleId": "ReadOnly"}),
                 405, "ActionNotSupported", "POST")
    assert_error(certd.request("PATCH", ACCOUNTS + "/admin", json={"RoleId": "ReadOnly"}), 405,
                 "ActionNotSupported")
    assert_error(certd.request("DELETE", ACCOUNTS + "/admin"), 405, "ResourceCannotBeDeleted")


# --- methods, versions, queries, unknown URIs -------------------------------------------------

def test_405_with_allow_on_every_route_and_method(certd):
    assert_405_with_allow(certd, METHODS)
    # The root cannot be changed, with or without credentials (Protocol Validator).
    for m in ("POST", "PATCH", "DELETE", "PUT"):
        assert certd.request(m, ROOT, auth=None).status_code == 405


def test_odata_version(certd):
    for path, auth in ((ROOT, None), (MANAGER, "admin")):
        assert_error(certd.request("GET", path, auth=auth, headers={"OData-Version": "4.1"}), 412,
                     "GeneralError", "OData-Version")
        ok(certd.request("GET", path, auth=auth, headers={"OData-Version": "4.0"}))


def test_query_parameters(certd):
    for path, auth in ((ROOT, None), (MANAGERS, "admin")):
        for q in ("$foo=1", "$expand=*", "$expand=.($levels=2)", "$select=Id", "$filter=Id eq 1",
                  "$top=1", "$skip=0", "only", "excerpt", "%24foo=x", "a=b&$top=2"):
            assert_error(certd.request("GET", f"{path}?{q}", auth=auth), 501, "QueryNotSupported")
        for q, word in (("$top=abc", "$top"), ("$skip=-1", "$skip"), ("only=yes", "only"),
                        ("excerpt=1", "excerpt"), ("$expand=all", "$expand"),
                        ("$expand=*($levels=x)", "$expand"), ("$select=", "$select"),
                        ("$foo=1&$top=z", "$top")):
            assert_error(certd.request("GET", f"{path}?{q}", auth=auth), 400,
                         "QueryParameterValueFormatError", word)
        # Parameters that are not Redfish's are the client's business.
        ok(certd.request("GET", f"{path}?foo=bar&x", auth=auth))


def test_unknown_uris(certd):
    for path in ("/redfish/v1/Nothing", "/redfish/v2", "/redfish/v1/Managers/other",
                 "/redfish/v1/Managers//bmc", "/redfish/v1/Managers/bmc//", "/", "/index.html",
                 "/redfish/v1/SessionService/Sessions/a%20b", "/redfish/v1/Managers/%ff"):
        for auth in (None, "admin"):
            assert_error(certd.request("GET", path, auth=auth), 404, "ResourceMissingAtURI")
    body = assert_error(certd.request("GET", "/redfish/v1/Nothing%0a%1bX"), 404,
                        "ResourceMissingAtURI")
    # Client bytes are shown escaped, never raw.
    assert "\\x0a\\x1bX" in body["error"]["@Message.ExtendedInfo"][0]["Message"]
    # A trailing slash is the same resource.
    assert ok(certd.request("GET", MANAGERS + "/")).json()["@odata.id"] == MANAGERS
    # Unknown legacy URIs answer in the legacy REST shape.
    r = certd.request("GET", "/xyz/openbmc_project/nothing")
    assert r.status_code == 404
    assert "OData-Version" not in r.headers
    legacy = r.json()
    assert legacy["status"] == "error" and legacy["message"] == "404 Not Found"
    assert legacy["data"]["description"]


# --- authentication and privileges ------------------------------------------------------------

def test_authentication_required(certd):
    for path in RESOURCES:
        if path == ROOT:
            continue
        r = certd.request("GET", path, auth=None)
        assert_error(r, 401, "NoValidSession")
        assert r.headers["WWW-Authenticate"].startswith('Basic realm="certd"')
        assert_error(token_get(certd, path, "A" * 22), 401, "AccessDenied")
    # Wrong passwords count against this address (5 are free): two are enough here.
    for path in (MANAGER, SESSIONS):
        r = certd.request("GET", path, auth=("admin", "wrong-password-123"))
        assert_error(r, 401, "AccessDenied")
        assert r.headers["WWW-Authenticate"].startswith('Basic realm="certd"')
    for m in ("PATCH", "DELETE", "POST"):
        r = certd.request(m, SESSION_SERVICE if m == "PATCH" else SESSIONS + "/x", auth=None,
                json={"SessionTimeout": 60} if m == "PATCH" else None)
        if m == "POST":
            assert r.status_code == 405
        else:
            assert_error(r, 401, "NoValidSession")
    for path in PUBLIC:
        ok(certd.request("GET", path, auth=None))
    # No cookies, ever (Protocol Validator).
    assert "Set-Cookie" not in ok(certd.request("GET", MANAGER)).headers


def test_privileges_per_role(users):
    certd = users
    for who in (OPERATOR, READONLY):
        for path in RESOURCES:
            if path.startswith(ACCOUNTS + "/"):
                continue
            ok(certd.request("GET", path, auth=who))
        assert_error(certd.request("PATCH", SESSION_SERVICE, auth=who, json={"SessionTimeout": 60}),
                     403, "InsufficientPrivilege")
        # One's own account, and no one else's.
        own = get_json(certd, ACCOUNTS + "/" + who[0], auth=who)
        assert own["UserName"] == who[0]
        assert get_json(certd, ACCOUNTS, auth=who)["Members"] == \
            [{"@odata.id": ACCOUNTS + "/" + who[0]}]
        assert_error(certd.request("GET", ACCOUNTS + "/admin", auth=who), 403,
                     "InsufficientPrivilege")
    assert get_json(certd, SESSION_SERVICE)["SessionTimeout"] == 1800


def test_sessions_of_others(users):
    certd = users
    admin = login(certd, *certd.admin)
    mine = login(certd, *READONLY)
    assert admin.status_code == mine.status_code == 201
    admin_uri, mine_uri = admin.headers["Location"], mine.headers["Location"]
    # A ReadOnly user sees and ends their own session only; the administrator sees all.
    listed = get_json(certd, SESSIONS, auth=READONLY)["Members"]
    assert listed == [{"@odata.id": mine_uri}]
    assert {admin_uri, mine_uri} <= {m["@odata.id"] for m in get_json(certd, SESSIONS)["Members"]}
    assert_error(certd.request("GET", admin_uri, auth=READONLY), 403, "InsufficientPrivilege")
    assert_error(certd.request("DELETE", admin_uri, auth=READONLY), 403, "InsufficientPrivilege")
    ok(token_get(certd, MANAGER, admin.headers["X-Auth-Token"]))
    ok(certd.request("DELETE", mine_uri, auth=READONLY), 204)
    assert_error(token_get(certd, MANAGER, mine.headers["X-Auth-Token"]), 401, "AccessDenied")
    # The administrator ends anybody's session.
    ok(certd.request("DELETE", admin_uri), 204)
    assert_error(certd.request("GET", admin_uri), 404, "ResourceNotFound")


# --- sessions ---------------------------------------------------------------------------------

def test_login_token_logout(certd):
    r = login(certd, *certd.admin)
    assert r.status_code == 201, r.text
    token, location = r.headers["X-Auth-Token"], r.headers["Location"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token)
    assert re.fullmatch(SESSIONS + r"/[A-Za-z0-9_-]+", location)
    s = r.json()
    assert s["@odata.id"] == location and s["Id"] == location.rsplit("/", 1)[1]
    assert s["UserName"] == "admin" and s.get("Password") is None
    assert s["Roles"] == ["Administrator"] and DATETIME.match(s["CreatedTime"])
    assert token not in json.dumps(s)
    # The token alone authenticates, and wins over Basic credentials sent along.
    ok(token_get(certd, MANAGER, token))
    ok(certd.request("GET", MANAGER, auth=("admin", "wrong-password-123"),
           headers={"X-Auth-Token": token}))
    got = ok(token_get(certd, location, token)).json()
    assert got["Id"] == s["Id"] and "Token" not in got
    assert {"@odata.id": location} in get_json(certd, SESSIONS)["Members"]
    # Logout with the token itself.
    r = certd.request("DELETE", location, auth=None, headers={"X-Auth-Token": token})
    assert r.status_code == 204
    assert_error(token_get(certd, MANAGER, token), 401, "AccessDenied")
    assert_error(certd.request("GET", location), 404, "ResourceNotFound")
    assert {"@odata.id": location} not in get_json(certd, SESSIONS)["Members"]
    # The Members alias logs in too; both answer with the Session.
    r = login(certd, *certd.admin, path=SESSIONS + "/Members")
    assert r.status_code == 201 and r.headers["Location"].startswith(SESSIONS + "/")
    ok(token_get(certd, ROOT + "AccountService", r.headers["X-Auth-Token"]))
    # Trailing slashes are the same URIs.
    assert login(certd, *certd.admin, path=SESSIONS + "/").status_code == 201


def test_login_errors_never_echo_the_password(certd):
    assert_error(login(certd, "admin", "wrong-password-123"), 401, "AccessDenied")
    assert_error(login(certd, "nobody", "wrong-password-123"), 401, "AccessDenied")
    r = certd.request("POST", SESSIONS, auth=None, json={"UserName": "admin"})
    assert_error(r, 400, "PropertyMissing", "Password")
    r = certd.request("POST", SESSIONS, auth=None, json={"Password": "x" * 12})
    assert_error(r, 400, "PropertyMissing", "UserName")
    r = certd.request("POST", SESSIONS, auth=None, json={"UserName": "admin",
                                                         "Password": 31415926535897})
    body = assert_error(r, 400, "PropertyValueTypeError", "(hidden)")
    assert "31415926535897" not in json.dumps(body)
    r = certd.request("POST", SESSIONS, auth=None,
            json={"UserName": "admin", "Password": "secret-pw-1234", "Extra": 1})
    assert_error(r, 400, "PropertyUnknown", "Extra")
    assert "secret-pw-1234" not in r.text
    r = certd.request("POST", SESSIONS, auth=None,
                      json={"UserName": ["admin"], "Password": "p" * 12})
    assert_error(r, 400, "PropertyValueTypeError", "UserName")
    # The failures above did not log the password either.
    assert "31415926535897" not in certd.log() and "secret-pw-1234" not in certd.log()


def test_session_timeout_patch(users):
    certd = users
    r = ok(certd.request("PATCH", SESSION_SERVICE, json={"SessionTimeout": 60}))
    body = r.json()
    assert body["SessionTimeout"] == 60
    assert get_json(certd, SESSION_SERVICE)["SessionTimeout"] == 60
    ok(certd.request("PATCH", SESSION_SERVICE,
                     json={"ServiceEnabled": True, "SessionTimeout": 86400}))
    assert get_json(certd, SESSION_SERVICE)["SessionTimeout"] == 86400
    for value, mid in ((29, "PropertyValueNotInList"), (86401, "PropertyValueNotInList"),
                       ("60", "PropertyValueTypeError"), (60.5, "PropertyValueTypeError"),
                       (None, "PropertyValueTypeError")):
        assert_error(certd.request("PATCH", SESSION_SERVICE, json={"SessionTimeout": value}), 400,
                     mid, "SessionTimeout")
    assert_error(certd.request("PATCH", SESSION_SERVICE, json={"ServiceEnabled": False}), 400,
                 "PropertyValueNotInList", "ServiceEnabled")
    assert_error(certd.request("PATCH", SESSION_SERVICE, json={"Sessions": {}}), 400,
                 "PropertyUnknown", "Sessions")
    assert_error(certd.request("PATCH", SESSION_SERVICE, json={}), 400, "EmptyJSON")
    # Nothing changes when any part of the request is refused.
    assert_error(certd.request("PATCH", SESSION_SERVICE,
                     json={"SessionTimeout": 120, "ServiceEnabled": "yes"}), 400,
                 "PropertyValueTypeError", "ServiceEnabled")
    assert get_json(certd, SESSION_SERVICE)["SessionTimeout"] == 86400
    assert_error(certd.request("PATCH", SESSION_SERVICE, auth=OPERATOR,
                               json={"SessionTimeout": 60}), 403, "InsufficientPrivilege")


def test_login_rate_limit(certd):
    """After 5 failures, attempts for that name and address are refused unchecked -- even with
    the right password, and Basic credentials from that address -- until Retry-After has
    passed; a failure after a delay doubles the next one (1 s, 2 s, 4 s...); a success resets."""
    for _ in range(5):
        assert_error(login(certd, "admin", "wrong-password-123"), 401, "AccessDenied")
    # Wait out each delay and fail once more, until a delay of 4 s or more runs: the checks
    # below take a fraction of that. (Delays are counted in whole seconds, so a short one may
    # already be over when the next attempt comes: that attempt is checked and fails too.)
    for _ in range(12):
        r = login(certd, "admin", "wrong-password-123")
        if r.status_code == 401:
            assert_error(r, 401, "AccessDenied")
            continue
        body = assert_error(r, 429, "ServiceTemporarilyUnavailable")
        retry = int(r.headers["Retry-After"])
        assert 1 <= retry <= 300
        assert str(retry) in json.dumps(body)
        if retry >= 4:
            break
        time.sleep(retry)
    else:
        raise AssertionError("the delay never reached 4 s")
    # The right password is not even checked now, nor Basic credentials from this address.
    r = login(certd, *certd.admin)
    assert_error(r, 429, "ServiceTemporarilyUnavailable")
    assert 1 <= int(r.headers["Retry-After"]) <= retry
    assert_error(certd.request("GET", MANAGER), 429, "ServiceTemporarilyUnavailable")
    # Once the delay has passed the right password works (and resets the counters).
    deadline = time.monotonic() + 60
    while True:
        time.sleep(int(r.headers.get("Retry-After", "1")))
        r = login(certd, *certd.admin)
        if r.status_code == 201:
            break
        assert r.status_code == 429, r.text
        assert time.monotonic() < deadline, "still throttled after 60 s"
    ok(certd.request("GET", MANAGER))


def test_parallel_guesses_are_rate_limited_too(certd):
    """A burst of parallel wrong passwords gets no more checks than the free failures (plus
    the one retry each expired delay allows): checks still running count as failures."""
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
        codes = list(ex.map(lambda i: login(certd, "admin", f"wrong-password-{i:04d}").status_code,
                            range(20)))
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= 7, codes
    assert codes.count(429) >= 13, codes


# --- bodies -----------------------------------------------------------------------------------

def test_bad_bodies(certd):
    def patch(data, ctype="application/json"):
        return certd.request("PATCH", SESSION_SERVICE, data=data, headers={"Content-Type": ctype})

    assert_error(patch(b'{"SessionTimeout": 60'), 400, "MalformedJSON")
    assert_error(patch(b'{"SessionTimeout": 60} x'), 400, "MalformedJSON")
    assert_error(patch(b'{"SessionTimeout": 60, "SessionTimeout": 70}'), 400, "MalformedJSON")
    assert_error(patch(b'{"SessionTimeout": "\\u0000"}'), 400, "MalformedJSON")
    assert_error(patch(b'\xff\xfe{}'), 400, "MalformedJSON")
    assert_error(patch(b"[60]"), 400, "UnrecognizedRequestBody", "JSON object")
    assert_error(patch(b'"x"'), 400, "UnrecognizedRequestBody")
    assert_error(patch(b"[" * 17 + b"]" * 17), 400, "UnrecognizedRequestBody", "16 levels")
    assert_error(patch(b"[" + b"0," * 1100 + b"0]"), 400, "UnrecognizedRequestBody", "1024")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml",
                  "application/json; charset=latin1", "application/json; foo=bar", "json",
                  "application/x-pem-file"):
        assert_error(patch(b'{"SessionTimeout": 60}', ctype), 415, "UnrecognizedRequestBody",
                     "application/json")
    ok(patch(b'{"SessionTimeout": 61}', 'Application/JSON; charset="UTF-8"'))
    assert get_json(certd, SESSION_SERVICE)["SessionTimeout"] == 61
    # No Content-Type at all is no JSON either.
    r = raw_request(certd, "PATCH", SESSION_SERVICE, {
        "Host": "x", "Authorization": basic_auth(certd.admin),
        "Content-Length": "22"}, b'{"SessionTimeout": 62}')
    assert_error(r, 415, "UnrecognizedRequestBody")


def test_http_level_errors_have_redfish_bodies(certd):
    # 413 is decided on Content-Length, before a byte of the body is read.
    r = raw_request(certd, "PATCH", SESSION_SERVICE, {
        "Host": "x", "Authorization": basic_auth(certd.admin),
        "Content-Type": "application/json", "Content-Length": str(65536 + 1)})
    err = assert_error(r, 413, "GeneralError")
    assert "65536" in err["error"]["@Message.ExtendedInfo"][0]["Resolution"]
    # 414: a target longer than the server takes.
    r = certd.request("GET", "/redfish/v1/" + "a" * 3000)
    assert_error(r, 414, "GeneralError", "2048")


@pytest.mark.parametrize("size", [8200, 10000, 20000])
def test_header_section_too_large_is_431(certd, size):
    # The limit is 8192 bytes of request line and headers: anything beyond is refused at once.
    r = certd.request("GET", MANAGER, headers={"X-Big": "b" * size}, timeout=5)
    assert_error(r, 431, "GeneralError", "8192")


def test_debug_log_line_per_request(certd_factory):
    c = certd_factory(config="[server]\nlog_level = debug\n").start()
    try:
        r = login(c, *c.admin)
        assert r.status_code == 201
        token = r.headers["X-Auth-Token"]
        ok(token_get(c, MANAGER, token))
        assert c.request("GET", "/redfish/v1/Nothing\x7f", auth=None).status_code == 404
        wait_for(lambda: "GET /redfish/v1/Managers/bmc -> 200 (user admin" in c.log(), 30,
                 "the log line of the GET")
        log = c.log()
        assert re.search(r"POST /redfish/v1/SessionService/Sessions -> 201 \(user -, \d+\.\d{3} ms",
                         log), log
        assert "GET /redfish/v1/Nothing\\x7f -> 404" in log
        assert token not in log and c.admin[1] not in log
        assert "Basic " not in log
    finally:
        assert c.stop() == 0
