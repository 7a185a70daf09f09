# SPDX-License-Identifier: Apache-2.0
"""The legacy OpenBMC REST API of seed 002 against the real daemon: PUT installs, DELETE removes
(the server certificate is then replaced by a new self-signed one), with the seed's codes and
phosphor-rest's JSON bodies; never an echo of the upload, never key material."""
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import CA, Client, cert_pem, key_pem, new_key, served_cert

BASE = "/xyz/openbmc_project/certs"
SERVER = BASE + "/server/https"
CLIENT = BASE + "/client/ldap"
AUTHORITY = BASE + "/authority/ldap"
REDFISH_HTTPS = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates"


@pytest.fixture(scope="module")
def ca():
    return CA("legacy test root")


class Legacy:
    """Requests on one keep-alive session; every answer is checked for shape (and for secrets,
    by conftest's hook)."""

    def __init__(self, certd, auth="admin"):
        self.c = Client(certd, auth)

    def call(self, method, path, data=None, ctype="application/x-pem-file"):
        headers = {"Content-Type": ctype} if data is not None else {}
        r = self.c.request(method, path, data=data, headers=headers)
        assert "BEGIN CERTIFICATE" not in r.text or method == "GET", r.text
        if r.content and r.status_code not in (401,):
            body = r.json()
            assert body["status"] == ("ok" if r.status_code < 300 else "error"), body
            assert body["message"].startswith(str(r.status_code)), body
            assert "OData-Version" not in r.headers
        return r

    def close(self):
        self.c.close()


@pytest.fixture
def legacy(certd):
    lg = Legacy(certd)
    yield lg
    lg.close()


def description(r):
    return r.json()["data"]["description"]


def test_put_server_certificate_is_served(legacy, certd, ca):
    cert, _key, pem = ca.leaf("legacy.certd.test")
    r = legacy.call("PUT", SERVER, pem)
    assert r.status_code == 200, r.text
    assert SERVER + "/1" in description(r)
    assert served_cert(certd.port) == cert
    # The Redfish view agrees.
    with Client(certd) as c:
        rf = c.get(REDFISH_HTTPS + "/1").json()
    assert x509.load_pem_x509_certificate(rf["CertificateString"].encode()) == cert
    # GET lists the object path and shows the PEM, never a key.
    r = legacy.call("GET", SERVER)
    assert r.status_code == 200 and r.json()["data"] == [SERVER + "/1"]
    r = legacy.call("GET", SERVER + "/1")
    assert r.status_code == 200
    assert x509.load_pem_x509_certificate(
        r.json()["data"]["CertificateString"].encode()) == cert


@pytest.mark.parametrize("ctype", ["application/octet-stream", "application/x-pem-file"])
def test_put_and_delete_client(legacy, ca, ctype):
    cert, _key, pem = ca.leaf("ldap.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    r = legacy.call("PUT", CLIENT, pem, ctype=ctype)
    assert r.status_code == 200, r.text
    assert legacy.call("GET", CLIENT).json()["data"] == [CLIENT + "/1"]
    r = legacy.call("DELETE", CLIENT + "/1")
    assert r.status_code == 200, r.text
    assert legacy.call("GET", CLIENT).json()["data"] == []
    assert legacy.call("GET", CLIENT + "/1").status_code == 404
    assert legacy.call("DELETE", CLIENT + "/1").status_code == 404


def test_delete_server_regenerates_self_signed(legacy, certd, ca):
    cert, _key, pem = ca.leaf("before-delete.certd.test")
    assert legacy.call("PUT", SERVER, pem).status_code == 200
    assert served_cert(certd.port) == cert
    r = legacy.call("DELETE", SERVER + "/1")
    assert r.status_code == 200, r.text
    assert "self-signed" in description(r)
    now = served_cert(certd.port)
    assert now != cert
    assert now.issuer == now.subject
    assert legacy.call("GET", SERVER).json()["data"] == [SERVER + "/1"]


def test_authority_add_duplicate_delete(legacy, certd):
    root = CA("legacy trust root")
    r = legacy.call("PUT", AUTHORITY, root.pem)
    assert r.status_code == 200, r.text
    fid = root.cert.fingerprint(hashes.SHA256()).hex()
    assert legacy.call("GET", AUTHORITY).json()["data"] == [f"{AUTHORITY}/{fid}"]
    r = legacy.call("PUT", AUTHORITY, root.pem)
    assert r.status_code == 400 and "already" in description(r)
    assert legacy.call("DELETE", f"{AUTHORITY}/{fid}").status_code == 200
    assert legacy.call("GET", AUTHORITY).json()["data"] == []
    assert legacy.call("DELETE", f"{AUTHORITY}/{fid}").status_code == 404


def test_bad_uploads_are_400_with_a_reason(legacy, certd, ca):
    before = served_cert(certd.port)
    cert, _key, pem = ca.leaf("bad.certd.test")
    cases = [
        (SERVER, b"hello world\n", "PEM"),
        (SERVER, b"", "empty"),
        (SERVER, cert_pem(cert) + key_pem(new_key()), "match"),
        (SERVER, pem.replace(b"-----END CERTIFICATE-----", b""), "no END line"),
        (AUTHORITY, pem, "CA"),
        (AUTHORITY, CA("with key").pem + key_pem(new_key()), "key"),
    ]
    for path, data, word in cases:
        r = legacy.call("PUT", path, data)
        assert r.status_code == 400, (path, r.status_code, r.text)
        assert word.lower() in description(r).lower(), r.text
    assert served_cert(certd.port) == before
    assert legacy.call("GET", AUTHORITY).json()["data"] == []


def test_methods_ids_and_types(legacy, certd, ca):
    _c, _k, pem = ca.leaf("m.certd.test")
    for method, path in (("POST", SERVER), ("PATCH", SERVER), ("PUT", SERVER + "/1"),
                         ("DELETE", SERVER), ("POST", AUTHORITY)):
        r = legacy.call(method, path, pem)
        assert r.status_code == 405, (method, path, r.status_code, r.text)
        assert "Allow" in r.headers
    assert legacy.call("DELETE", SERVER + "/7").status_code == 404
    assert legacy.call("DELETE", AUTHORITY + "/" + "ab" * 32).status_code == 404
    assert legacy.call("GET", BASE + "/server/nope").status_code == 404
    # A JSON body is not a PEM upload.
    r = legacy.call("PUT", SERVER, json.dumps({"x": 1}).encode(), ctype="application/json")
    assert r.status_code == 415, r.text


def test_privileges(legacy, certd, ca):
    certd.add_user("reader", "ReadOnly", "Reader-pass-9313")
    certd.add_user("operator", "Operator", "Operator-pass-8472")
    _c, _k, client_pem = ca.leaf("p-ldap.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    assert legacy.call("PUT", CLIENT, client_pem).status_code == 200
    root = CA("legacy privileges root")
    assert legacy.call("PUT", AUTHORITY, root.pem).status_code == 200
    fid = root.cert.fingerprint(hashes.SHA256()).hex()
    before = {p: legacy.call("GET", p).json()["data"] for p in (CLIENT, CLIENT + "/1", AUTHORITY)}
    _c, _k, pem = ca.leaf("p.certd.test")
    _c, _k, other_client_pem = ca.leaf("p-ldap2.certd.test",
                                       eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    changes = [("PUT", SERVER, pem), ("DELETE", SERVER + "/1", None),
               ("PUT", CLIENT, other_client_pem), ("DELETE", CLIENT + "/1", None),
               ("PUT", AUTHORITY, CA("legacy privileges root 2").pem),
               ("DELETE", f"{AUTHORITY}/{fid}", None)]
    for auth in (("reader", "Reader-pass-9313"), ("operator", "Operator-pass-8472")):
        lg = Legacy(certd, auth)
        try:
            for method, path, data in changes:
                assert lg.call(method, path, data).status_code == 403, (auth, method, path)
            for path in (SERVER, CLIENT, AUTHORITY):
                assert lg.call("GET", path).status_code == 200
        finally:
            lg.close()
    anon = Legacy(certd, None)
    try:
        for method, path, data in changes:
            r = anon.call(method, path, data)
            assert r.status_code == 401 and "WWW-Authenticate" in r.headers, (method, path)
        assert anon.call("GET", SERVER).status_code == 401
    finally:
        anon.close()
    # Nothing changed: the subject is still the bootstrap host name, the rest as it was.
    cn = served_cert(certd.port).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn != "p.certd.test"
    assert {p: legacy.call("GET", p).json()["data"] for p in before} == before
