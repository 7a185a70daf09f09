# SPDX-License-Identifier: Apache-2.0
"""The Redfish certificate API of certd (issue #3), end to end against the real daemon:
CertificateService, CertificateLocations, ActionInfo, the HTTPS / LDAP / truststore collections
and members, GenerateCSR, ReplaceCertificate, Rekey, Renew, every bad input with its status and
Base message id, concurrency, restart and the role matrix.

Every response is validated against the DMTF JSON schemas and scanned for private key
material (the PEM label and every base64 line of every key the tests made) by conftest's hook."""
import concurrent.futures
import datetime
import http.client
import ipaddress
import json
import os
import re
import subprocess
import time

import pytest
from conftest import (CA, CSR_EVERY_SUBJECT, Client, assert_405_with_allow, assert_error,
                      basic_auth, cert_pem, check_csr_subject, check_response, dn, key_pem,
                      new_key, ok, schemas, served_cert, tls_context, utcnow)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AttributeOID, ExtendedKeyUsageOID, NameOID

SERVICE = "/redfish/v1/CertificateService"
LOCATIONS = SERVICE + "/CertificateLocations"
GENERATE_CSR = SERVICE + "/Actions/CertificateService.GenerateCSR"
REPLACE = SERVICE + "/Actions/CertificateService.ReplaceCertificate"
HTTPS = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates"
LDAP = "/redfish/v1/AccountService/LDAP/Certificates"
TRUSTED = "/redfish/v1/Managers/bmc/SecurityPolicy/TLS/Server/TrustedCertificates"
TRUSTSTORE = "/redfish/v1/Managers/bmc/Truststore/Certificates"

# Every GenerateCSR parameter of CertificateService v1_2_1.
CSR_PARAMETERS = {
    "AlternativeNames", "CertificateCollection", "ChallengePassword", "City", "CommonName",
    "ContactPerson", "Country", "Email", "GivenName", "Initials", "KeyBitLength", "KeyCurveId",
    "KeyPairAlgorithm", "KeyUsage", "Organization", "OrganizationalUnit", "State", "Surname",
    "UnstructuredName",
}

# A configuration with policies the tests need: LDAP refuses expired certificates and its
# reload always fails (the change must stand, with a warning); a small truststore.
POLICY_CONFIG = """
[server]
hostname = certd.test

[endpoint https]
type = server
reload = self

[endpoint ldap]
type = client
expired = reject
reload = exec:/usr/bin/false

[endpoint truststore]
type = authority
max = 3
"""


# --- helpers ----------------------------------------------------------------------------------

def load_certs(pem):
    """Every certificate of a PEM string, in order (cryptography 38 has no loader for this)."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?",
                        pem.encode() if isinstance(pem, str) else pem, re.S)
    return [x509.load_pem_x509_certificate(b) for b in blocks]


def cert_not_before(cert):
    return cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)


def cert_not_after(cert):
    return cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def ca():
    return CA()


@pytest.fixture
def policy_certd(certd_factory):
    """A certd on POLICY_CONFIG."""
    d = certd_factory(config=POLICY_CONFIG, name="policy").start()
    yield d
    rc = d.stop()
    assert rc in (0, None), f"certd exited with {rc}:\n{d.log()}"


@pytest.fixture
def api(certd):
    with Client(certd) as a:
        yield a


def install(api, collection, pem, status=200, as_json=True, ctype="application/x-pem-file"):
    if as_json:
        r = api.post(collection, json={"CertificateString": pem.decode(),
                                       "CertificateType": "PEM"})
    else:
        r = api.post(collection, data=pem, headers={"Content-Type": ctype})
    body = ok(r, status).json()
    if status == 200:
        assert r.headers["Location"] == body["@odata.id"]
        assert body["@odata.id"].startswith(collection + "/")
    return body


class KeepAlive:
    """One raw HTTPS connection kept open across changes (http.client reconnects silently when
    the server closes, so the socket object tells whether it is still the same connection)."""

    def __init__(self, certd):
        self.conn = http.client.HTTPSConnection("127.0.0.1", certd.port, context=tls_context(),
                                                timeout=120)
        self.auth = basic_auth(certd.admin)
        self.get("/redfish/v1/CertificateService")
        self.sock = self.conn.sock
        self.peer = x509.load_der_x509_certificate(self.sock.getpeercert(binary_form=True))

    def get(self, path):
        self.conn.request("GET", path, headers={"Authorization": self.auth})
        r = self.conn.getresponse()
        body = r.read()
        check_response(f"GET {path} (keep-alive)", path, r.status, dict(r.getheaders()), body)
        assert r.status == 200, (r.status, body[:2000])
        return json.loads(body)

    def assert_still_open(self):
        self.get("/redfish/v1/CertificateService")
        assert self.conn.sock is self.sock, "the old keep-alive connection was dropped"
        peer = x509.load_der_x509_certificate(self.conn.sock.getpeercert(binary_form=True))
        assert peer == self.peer, "the old connection changed certificate"

    def close(self):
        self.conn.close()


def openssl_verify_csr(pem):
    p = subprocess.run(["openssl", "req", "-noout", "-verify"], input=pem.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and b"verify OK" in p.stdout + p.stderr, (p.stdout, p.stderr)


def generate_csr(api, collection=HTTPS, **params):
    body = {"CertificateCollection": {"@odata.id": collection}}
    body.update(params)
    r = api.post(GENERATE_CSR, json=body)
    out = ok(r).json()
    s = schemas()
    if s:
        s.check(out, "CertificateService.v1_2_1.json", "GenerateCSRResponse")
    assert out["CertificateCollection"] == {"@odata.id": collection.rstrip("/")}
    openssl_verify_csr(out["CSRString"])
    csr = x509.load_pem_x509_csr(out["CSRString"].encode())
    assert csr.is_signature_valid
    return csr


def fingerprint(cert):
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def iso(t):
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)


def check_certificate_body(body, cert, collection):
    """A Certificate resource shows exactly this certificate."""
    assert body["@odata.type"] == "#Certificate.v1_11_0.Certificate"
    assert body["@odata.id"] == f"{collection}/{body['Id']}"
    shown = x509.load_pem_x509_certificate(body["CertificateString"].encode())
    assert shown == cert
    assert body["Fingerprint"] == fingerprint(cert)
    assert body["FingerprintHashAlgorithm"] == "TPM_ALG_SHA256"
    assert int(body["SerialNumber"].replace(":", ""), 16) == cert.serial_number
    assert iso(body["ValidNotBefore"]) == cert_not_before(cert)
    assert iso(body["ValidNotAfter"]) == cert_not_after(cert)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cn:
        assert body["Subject"]["CommonName"] == cn[0].value
    icn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    if icn:
        assert body["Issuer"]["CommonName"] == icn[0].value
    assert "AlternativeNames" not in body["Issuer"]
    assert body["SignatureAlgorithm"]
    for t in ("ValidNotBefore", "ValidNotAfter"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body[t])


# --- service documents ------------------------------------------------------------------------

def test_certificate_service(api):
    svc = ok(api.get(SERVICE)).json()
    assert svc["@odata.id"] == SERVICE and svc["Id"] == "CertificateService"
    acts = svc["Actions"]
    assert acts["#CertificateService.GenerateCSR"]["target"] == GENERATE_CSR
    assert acts["#CertificateService.ReplaceCertificate"]["target"] == REPLACE
    assert svc["CertificateLocations"] == {"@odata.id": LOCATIONS}
    # The conformance notes' Allow rules: CertificateService allows no POST.
    assert "POST" not in api.get(SERVICE).headers.get("Allow", "")

    gen = ok(api.get(acts["#CertificateService.GenerateCSR"]["@Redfish.ActionInfo"])).json()
    params = {p["Name"]: p for p in gen["Parameters"]}
    assert set(params) == CSR_PARAMETERS
    assert [n for n, p in params.items() if p["Required"]] == ["CertificateCollection"]
    cc = params["CertificateCollection"]
    assert cc["DataType"] == "Object"
    assert cc["ObjectDataType"] == "#CertificateCollection.CertificateCollection"
    assert set(cc["AllowableValues"]) == {HTTPS, LDAP}
    assert params["AlternativeNames"]["DataType"] == "StringArray"
    assert params["KeyBitLength"]["DataType"] == "Number"
    assert "TPM_ALG_RSA" in params["KeyPairAlgorithm"]["AllowableValues"]
    assert "TPM_ECC_NIST_P384" in params["KeyCurveId"]["AllowableValues"]
    assert "ServerAuthentication" in params["KeyUsage"]["AllowableValues"]
    assert params["CommonName"]["DefaultValue"]

    rep = ok(api.get(acts["#CertificateService.ReplaceCertificate"]["@Redfish.ActionInfo"])).json()
    params = {p["Name"]: p for p in rep["Parameters"]}
    assert set(params) == {"CertificateString", "CertificateType", "CertificateUri"}
    assert all(p["Required"] for p in params.values())
    assert params["CertificateUri"]["ObjectDataType"] == "#Certificate.Certificate"
    assert set(params["CertificateType"]["AllowableValues"]) == {"PEM", "PEMchain"}


def test_collections_and_bootstrap_certificate(api, certd):
    https = ok(api.get(HTTPS)).json()
    assert https["Members@odata.count"] == 1
    assert https["Members"] == [{"@odata.id": HTTPS + "/1"}]
    assert set(api.get(HTTPS).headers["Allow"].replace(" ", "").split(",")) == {
        "GET", "HEAD", "POST"}
    for coll in (LDAP, TRUSTED, TRUSTSTORE, LDAP + "/", TRUSTED + "/"):
        body = ok(api.get(coll)).json()
        assert body["Members"] == [] and body["Members@odata.count"] == 0
        assert body["@odata.id"] == coll.rstrip("/")

    member = ok(api.get(HTTPS + "/1")).json()
    served = served_cert(certd.port)
    check_certificate_body(member, served, HTTPS)
    assert member["CertificateType"] == "PEM"
    # The bootstrap certificate is self-signed for the host name.
    assert member["Subject"]["CommonName"] == member["Issuer"]["CommonName"]
    assert "DigitalSignature" in member["KeyUsage"]
    acts = member["Actions"]
    assert acts["#Certificate.Rekey"]["target"] == HTTPS + "/1/Actions/Certificate.Rekey"
    assert acts["#Certificate.Renew"]["target"] == HTTPS + "/1/Actions/Certificate.Renew"
    # Standard actions have ActionInfo; certd's OEM ones (under "Oem") are in its schema.
    for name, a in acts.items():
        if name != "Oem":
            ok(api.get(a["@Redfish.ActionInfo"]))
    r = api.request("HEAD", HTTPS + "/1")
    assert r.status_code == 200 and r.content == b""

    # The HTTPS certificate cannot be deleted: 405 with Allow, and it stays.
    assert set(api.get(HTTPS + "/1").headers["Allow"].replace(" ", "").split(",")) == {
        "GET", "HEAD"}
    r = api.delete(HTTPS + "/1")
    assert r.status_code == 405 and "DELETE" not in r.headers["Allow"]
    assert served_cert(certd.port) == served

    for missing in (HTTPS + "/2", LDAP + "/1", TRUSTED + "/" + "ab" * 32, HTTPS + "/1/x"):
        assert api.get(missing).status_code == 404

    locs = ok(api.get(LOCATIONS)).json()
    assert locs["Links"]["Certificates"] == [{"@odata.id": HTTPS + "/1"}]
    assert locs["Links"]["Certificates@odata.count"] == 1


def test_405_with_allow_on_every_certificate_uri(api, certd, ca):
    """Every certificate URI answers a method it does not serve with 405, Allow and a Redfish
    body (and changes nothing)."""
    _c, _k, pem = ca.leaf("ldap-405.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    install(api, LDAP, pem)
    trusted_id = install(api, TRUSTED, CA("405 root").pem)["Id"]
    table = {
        SERVICE: {"GET"},
        LOCATIONS: {"GET"},
        GENERATE_CSR: {"POST"},
        REPLACE: {"POST"},
        SERVICE + "/GenerateCSRActionInfo": {"GET"},
        SERVICE + "/ReplaceCertificateActionInfo": {"GET"},
    }
    for coll, member_methods in ((HTTPS, {"GET"}), (LDAP, {"GET", "DELETE"})):
        member = coll + "/1"
        table.update({
            coll: {"GET", "POST"},
            member: member_methods,
            member + "/Actions/Certificate.Rekey": {"POST"},
            member + "/Actions/Certificate.Renew": {"POST"},
            member + "/RekeyActionInfo": {"GET"},
            member + "/RenewActionInfo": {"GET"},
        })
    for coll in (TRUSTED, TRUSTSTORE):
        table.update({coll: {"GET", "POST"}, f"{coll}/{trusted_id}": {"GET", "DELETE"}})
    state = {p: ok(api.get(p)).json() for p in (HTTPS, HTTPS + "/1", LDAP + "/1", TRUSTED)}
    assert_405_with_allow(certd, table)
    assert {p: ok(api.get(p)).json() for p in state} == state


# Only an HTTPS endpoint, and an "ldap" of the wrong type: neither LDAP nor the truststore is
# shown anywhere.
SPARSE_CONFIG = """
[endpoint https]
type = server
reload = self

[endpoint ldap]
type = server
"""


def test_unconfigured_endpoints_are_not_found(certd_factory):
    d = certd_factory(config=SPARSE_CONFIG, name="sparse").start()
    a = Client(d)
    try:
        for path in (LDAP, LDAP + "/1", TRUSTED, TRUSTSTORE, TRUSTED + "/" + "ab" * 32):
            want = "ResourceMissingAtURI" if path in (LDAP, TRUSTED, TRUSTSTORE) else \
                "ResourceNotFound"
            assert_error(a.get(path), 404, want)
        assert_error(a.post(TRUSTED, json={"CertificateString": CA("x").pem.decode(),
                                           "CertificateType": "PEM"}), 404,
                     "ResourceMissingAtURI")
        assert ok(a.get(LOCATIONS)).json()["Links"]["Certificates"] == [{"@odata.id": HTTPS + "/1"}]
        info = ok(a.get(SERVICE + "/GenerateCSRActionInfo")).json()
        cc = {p["Name"]: p for p in info["Parameters"]}["CertificateCollection"]
        assert cc["AllowableValues"] == [HTTPS]
        assert_error(a.post(GENERATE_CSR, json={"CertificateCollection": {"@odata.id": LDAP}}),
                     400, "ActionParameterValueFormatError", "CertificateCollection")
        ok(a.get(HTTPS + "/1"))
    finally:
        a.close()
        assert d.stop() == 0


# --- install ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, size", [("ec", 256), ("ec", 384), ("rsa", 2048), ("rsa", 3072)])
def test_install_https_is_served_at_once(api, certd, ca, kind, size):
    old = KeepAlive(certd)
    try:
        cert, _key, pem = ca.leaf(f"{kind}{size}.certd.test", kind, size)
        body = install(api, HTTPS, pem)
        check_certificate_body(body, cert, HTTPS)
        assert body["Id"] == "1"
        assert "PRIVATE" not in body["CertificateString"]
        assert served_cert(certd.port) == cert
        old.assert_still_open()
        check_certificate_body(ok(api.get(HTTPS + "/1")).json(), cert, HTTPS)
    finally:
        old.close()


@pytest.mark.parametrize("ctype", ["application/x-pem-file", "application/octet-stream"])
def test_install_raw_pem(api, ca, ctype):
    cert, _key, pem = ca.leaf("ldap-client.certd.test",
                              eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    body = install(api, LDAP, pem, as_json=False, ctype=ctype)
    check_certificate_body(body, cert, LDAP)
    assert body["KeyUsage"] == ["DigitalSignature", "KeyEncipherment", "ClientAuthentication"]
    assert ok(api.get(LDAP)).json()["Members"] == [{"@odata.id": LDAP + "/1"}]
    # A second upload replaces the one certificate of a client endpoint.
    cert2, _key, pem2 = ca.leaf("ldap-client2.certd.test",
                                eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    check_certificate_body(install(api, LDAP, pem2, as_json=False, ctype=ctype), cert2, LDAP)
    assert ok(api.get(LDAP)).json()["Members@odata.count"] == 1


def test_install_chain_and_subject_fields(api, certd, ca):
    inter = CA("certd test intermediate", parent=ca)
    key = new_key("ec", 384)
    subject = dn("chain.certd.test", ORGANIZATION_NAME="Example Org",
                 ORGANIZATIONAL_UNIT_NAME="Unit 7", LOCALITY_NAME="Springfield",
                 STATE_OR_PROVINCE_NAME="Oregon", COUNTRY_NAME="US",
                 EMAIL_ADDRESS="ops@certd.test")
    sans = [x509.DNSName("chain.certd.test"), x509.DNSName("alt.certd.test"),
            x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
            x509.RFC822Name("ops@certd.test")]
    cert = inter.issue(subject, key.public_key(), sans=sans)
    body = install(api, HTTPS, cert_pem(cert) + inter.pem + key_pem(key))
    check_certificate_body(body, cert, HTTPS)
    assert body["CertificateType"] == "PEMchain"
    shown = load_certs(body["CertificateString"])
    assert shown == [cert, inter.cert]
    s = body["Subject"]
    assert (s["Organization"], s["OrganizationalUnit"], s["City"], s["State"], s["Country"],
            s["Email"]) == ("Example Org", "Unit 7", "Springfield", "Oregon", "US",
                            "ops@certd.test")
    assert "CN=chain.certd.test" in s["DisplayString"]
    assert s["AlternativeNames"] == ["chain.certd.test", "alt.certd.test", "192.0.2.7",
                                     "ops@certd.test"]
    assert body["Issuer"]["CommonName"] == "certd test intermediate"
    assert body["Issuer"]["Organization"] == "certd tests"
    assert served_cert(certd.port) == cert


def test_expired_accepted_with_warning_by_default(api, ca):
    past = utcnow() - datetime.timedelta(days=30)
    cert, _key, pem = ca.leaf("old.certd.test", days=10, not_before=past)
    body = install(api, HTTPS, pem)
    check_certificate_body(body, cert, HTTPS)
    assert body["Status"]["Health"] == "Warning"
    warnings = body["@Message.ExtendedInfo"]
    assert any("expired" in m["Resolution"] for m in warnings), warnings
    assert all(m["MessageSeverity"] == "Warning" for m in warnings)


# --- GenerateCSR ------------------------------------------------------------------------------

def test_generate_csr_every_parameter_then_upload(api, certd, ca):
    old = KeepAlive(certd)
    try:
        csr = generate_csr(
            api, HTTPS + "/", CommonName="bmc.certd.test",
            AlternativeNames=["bmc.certd.test", "www.certd.test", "192.0.2.10", "2001:db8::5",
                              "admin@certd.test"],
            ChallengePassword="challenge-123", City="Hyderabad", Country="in",
            ContactPerson="Pat Admin", Email="pki@certd.test", GivenName="Pat",
            Initials="PA", KeyPairAlgorithm="TPM_ALG_ECDSA", KeyCurveId="TPM_ECC_NIST_P384",
            KeyUsage=["DigitalSignature", "KeyAgreement", "ServerAuthentication",
                      "ClientAuthentication"],
            Organization="Example", OrganizationalUnit="BMC", State="Telangana",
            Surname="Admin", UnstructuredName="bmc-unit-1")
        check_csr_subject(csr, CSR_EVERY_SUBJECT)
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["bmc.certd.test", "www.certd.test"]
        assert san.get_values_for_type(x509.IPAddress) == [
            ipaddress.ip_address("192.0.2.10"), ipaddress.ip_address("2001:db8::5")]
        assert san.get_values_for_type(x509.RFC822Name) == ["admin@certd.test"]
        ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature and ku.key_agreement and not ku.key_cert_sign
        eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert csr.attributes.get_attribute_for_oid(
            AttributeOID.CHALLENGE_PASSWORD).value == b"challenge-123"
        pub = csr.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp384r1"

        # The pending key waits in a 0600 file of its own.
        pending = os.path.join(certd.state_dir, "https", "pending")
        keys = [os.path.join(pending, f) for f in os.listdir(pending)]
        assert len(keys) == 1 and oct(os.stat(keys[0]).st_mode & 0o777) == "0o600"

        # The signed certificate alone (no key) is paired with the pending key and served.
        cert = ca.sign_csr(csr)
        body = install(api, HTTPS, cert_pem(cert))
        check_certificate_body(body, cert, HTTPS)
        assert served_cert(certd.port) == cert
        old.assert_still_open()
        assert os.listdir(pending) == [], "the pending key was not consumed"
        # A certificate for no key we hold is refused, saying why.
        other, _k, _pem = ca.leaf("other.certd.test")
        assert_error(api.post(HTTPS, json={"CertificateString": cert_pem(other).decode(),
                                           "CertificateType": "PEM"}), 400, "GeneralError",
                     "key")
    finally:
        old.close()


def test_generate_csr_defaults(policy_certd):
    d = policy_certd
    a = Client(d)
    try:
        info = ok(a.get(SERVICE + "/GenerateCSRActionInfo")).json()
        cn = {p["Name"]: p for p in info["Parameters"]}["CommonName"]
        assert cn["DefaultValue"] == "certd.test" and not cn["Required"]
        # Only CertificateCollection is needed: CN = the host name, the endpoint's key type.
        csr = generate_csr(a, LDAP)
        assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "certd.test"
        pub = csr.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"
        # A plain string is accepted for the link, as bmcweb does.
        r = a.post(GENERATE_CSR, json={"CertificateCollection": HTTPS, "CommonName": "x"})
        ok(r)
    finally:
        a.close()


def _advertised(api, name):
    info = ok(api.get(SERVICE + "/GenerateCSRActionInfo")).json()
    p = {p["Name"]: p for p in info["Parameters"]}[name]
    return p.get("AllowableValues") or p.get("AllowableNumbers")


def test_generate_csr_every_advertised_algorithm_and_curve(api):
    """Each value ActionInfo offers is taken and makes the key it names."""
    for alg in _advertised(api, "KeyPairAlgorithm"):
        is_rsa = "RSA" in alg
        csr = generate_csr(api, LDAP, CommonName="alg.certd.test", KeyPairAlgorithm=alg,
                           **({"KeyBitLength": 2048} if is_rsa else {}))
        pub = csr.public_key()
        if is_rsa:
            assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048, alg
        else:
            assert isinstance(pub, ec.EllipticCurvePublicKey), alg
    curves = {"256": "secp256r1", "384": "secp384r1", "521": "secp521r1"}
    for curve in _advertised(api, "KeyCurveId"):
        csr = generate_csr(api, LDAP, CommonName="curve.certd.test", KeyPairAlgorithm="EC",
                           KeyCurveId=curve)
        want = next(v for k, v in curves.items() if k in curve)
        assert csr.public_key().curve.name == want, curve
    for bits in _advertised(api, "KeyBitLength"):
        if bits in ("3072", "4096"):
            continue  # made by other tests; keeps this one quick
        csr = generate_csr(api, LDAP, CommonName="bits.certd.test", KeyBitLength=int(bits))
        pub = csr.public_key()
        size = pub.key_size if isinstance(pub, rsa.RSAPublicKey) else pub.curve.key_size
        assert size == int(bits)


def test_generate_csr_rsa_3072(api, ca, certd):
    csr = generate_csr(api, HTTPS, CommonName="rsa.certd.test", KeyPairAlgorithm="RSA",
                       KeyBitLength=3072, AlternativeNames=["rsa.certd.test"])
    pub = csr.public_key()
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 3072
    cert = ca.sign_csr(csr)
    check_certificate_body(install(api, HTTPS, cert_pem(cert), as_json=False), cert, HTTPS)
    assert served_cert(certd.port) == cert


def test_several_pending_csrs_pair_with_the_right_key(api, ca, certd):
    csrs = [generate_csr(api, HTTPS, CommonName=f"p{i}.certd.test") for i in range(3)]
    # Uploaded in another order than made: each is paired with its own key.
    for csr in (csrs[1], csrs[2]):
        cert = ca.sign_csr(csr)
        check_certificate_body(install(api, HTTPS, cert_pem(cert)), cert, HTTPS)
        assert served_cert(certd.port) == cert


def test_concurrent_rsa4096_csrs_do_not_block_the_loop(api, certd):
    """Four RSA-4096 CSRs in flight; GETs keep answering while the workers are busy."""
    ok(api.get(SERVICE))  # the Basic credentials are now cached: GETs need no worker

    def one(i):
        a = Client(certd)
        try:
            t0 = time.monotonic()
            csr = generate_csr(a, HTTPS if i % 2 else LDAP, CommonName=f"c{i}.certd.test",
                               KeyPairAlgorithm="TPM_ALG_RSA", KeyBitLength=4096)
            return csr, time.monotonic() - t0, time.monotonic()
        finally:
            a.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(one, i) for i in range(4)]
        gets = []
        while not all(f.done() for f in futures):
            t0 = time.monotonic()
            ok(api.get(SERVICE))
            gets.append((t0, time.monotonic()))
        results = [f.result() for f in futures]
    for csr, _took, _end in results:
        pub = csr.public_key()
        assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 4096
    first_csr_done = min(end for _csr, _took, end in results)
    during = [g for g in gets if g[1] < first_csr_done]
    # Had the loop waited for a key, no GET would have come back before the first CSR did.
    assert during, "no GET was answered while the CSRs were generated"
    assert max(end - start for start, end in gets) < 5.0, gets


# --- Rekey and Renew --------------------------------------------------------------------------

def test_renew_and_rekey(api, ca, certd):
    cert, key, pem = ca.leaf("renew.certd.test")
    install(api, HTTPS, pem)
    current = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    r = api.post(HTTPS + "/1/Actions/Certificate.Renew", json={"ChallengePassword": "pw-1"})
    out = ok(r).json()
    s = schemas()
    if s:
        s.check(out, "Certificate.v1_11_0.json", "RenewResponse")
    assert out["Certificate"] == {"@odata.id": HTTPS + "/1"}
    openssl_verify_csr(out["CSRString"])
    csr = x509.load_pem_x509_csr(out["CSRString"].encode())
    assert csr.subject == cert.subject
    assert csr.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo) == current
    # The renewed certificate (same key) installs without a key.
    renewed = ca.sign_csr(csr)
    check_certificate_body(install(api, HTTPS, cert_pem(renewed)), renewed, HTTPS)
    assert served_cert(certd.port) == renewed

    # Rekey with the same type (no parameters), then with another one.
    out = ok(api.post(HTTPS + "/1/Actions/Certificate.Rekey", json={})).json()
    if s:
        s.check(out, "Certificate.v1_11_0.json", "RekeyResponse")
    csr = x509.load_pem_x509_csr(out["CSRString"].encode())
    assert csr.subject == cert.subject
    assert csr.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo) != current
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
    out = ok(api.post(HTTPS + "/1/Actions/Certificate.Rekey",
                      json={"KeyPairAlgorithm": "TPM_ALG_RSA", "KeyBitLength": 2048,
                            "ChallengePassword": "pw-2"})).json()
    csr = x509.load_pem_x509_csr(out["CSRString"].encode())
    openssl_verify_csr(out["CSRString"])
    assert isinstance(csr.public_key(), rsa.RSAPublicKey)
    rekeyed = ca.sign_csr(csr)
    check_certificate_body(install(api, HTTPS, cert_pem(rekeyed)), rekeyed, HTTPS)
    assert served_cert(certd.port) == rekeyed

    # The truststore has no Rekey/Renew; bad input is refused.
    assert_error(api.post(HTTPS + "/1/Actions/Certificate.Rekey", json={"Bogus": 1}), 400,
                 "ActionParameterUnknown", "Bogus")
    assert_error(api.post(HTTPS + "/1/Actions/Certificate.Rekey",
                          json={"KeyPairAlgorithm": "DSA"}), 400,
                 "ActionParameterValueFormatError", "KeyPairAlgorithm")
    assert_error(api.post(HTTPS + "/1/Actions/Certificate.Renew",
                          json={"ChallengePassword": 5}), 400, "ActionParameterValueTypeError")
    assert api.post(HTTPS + "/2/Actions/Certificate.Renew", json={}).status_code == 404
    assert api.post(LDAP + "/1/Actions/Certificate.Renew", json={}).status_code == 404


# --- ReplaceCertificate -----------------------------------------------------------------------

def test_replace_certificate(api, ca, certd):
    cert, _key, pem = ca.leaf("replaced.certd.test")
    r = api.post(REPLACE, json={"CertificateString": pem.decode(), "CertificateType": "PEM",
                                "CertificateUri": {"@odata.id": HTTPS + "/1"}})
    check_certificate_body(ok(r).json(), cert, HTTPS)
    assert r.headers["Location"] == HTTPS + "/1"
    assert served_cert(certd.port) == cert

    # The truststore: replace one CA with another, through the alias URI.
    root1, root2 = CA("replace root 1"), CA("replace root 2")
    first = install(api, TRUSTSTORE, root1.pem)
    assert first["@odata.id"].startswith(TRUSTSTORE + "/")
    r = api.post(REPLACE, json={"CertificateString": root2.pem.decode(),
                                "CertificateType": "PEM", "CertificateUri": first["@odata.id"]})
    body = ok(r).json()
    check_certificate_body(body, root2.cert, TRUSTSTORE)
    members = ok(api.get(TRUSTED)).json()["Members"]
    assert members == [{"@odata.id": TRUSTED + "/" + body["Id"]}]

    # Errors: missing parameter, unknown URI, unknown member, bad type.
    assert_error(api.post(REPLACE, json={"CertificateString": pem.decode(),
                                         "CertificateType": "PEM"}), 400,
                 "ActionParameterMissing", "CertificateUri")
    assert_error(api.post(REPLACE, json={"CertificateString": pem.decode(),
                                         "CertificateType": "PEM",
                                         "CertificateUri": {"@odata.id": "/redfish/v1/x/1"}}),
                 400, "ActionParameterValueFormatError", "CertificateUri")
    assert_error(api.post(REPLACE, json={"CertificateString": pem.decode(),
                                         "CertificateType": "PEM",
                                         "CertificateUri": {"@odata.id": LDAP + "/1"}}),
                 404, "ResourceNotFound")
    assert_error(api.post(REPLACE, json={"CertificateString": pem.decode(),
                                         "CertificateType": "PKCS7",
                                         "CertificateUri": {"@odata.id": HTTPS + "/1"}}),
                 400, "ActionParameterValueFormatError", "CertificateType")
    assert_error(api.post(REPLACE, json={"CertificateString": pem.decode(),
                                         "CertificateType": "PEM", "Password": "x",
                                         "CertificateUri": {"@odata.id": HTTPS + "/1"}}),
                 400, "ActionParameterUnknown", "Password")
    assert served_cert(certd.port) == cert


# --- truststore -------------------------------------------------------------------------------

def test_truststore_add_list_delete_on_both_uris(api):
    roots = [CA(f"trust root {i}") for i in range(3)]
    a = install(api, TRUSTED, roots[0].pem)
    b = install(api, TRUSTSTORE, roots[1].pem, as_json=False)
    for body, root, coll in ((a, roots[0], TRUSTED), (b, roots[1], TRUSTSTORE)):
        check_certificate_body(body, root.cert, coll)
        assert body["Id"] == root.cert.fingerprint(hashes.SHA256()).hex()
        assert "Actions" not in body
    for coll in (TRUSTED, TRUSTSTORE):
        listing = ok(api.get(coll)).json()
        assert listing["Members@odata.count"] == 2
        assert {m["@odata.id"] for m in listing["Members"]} == {
            f"{coll}/{a['Id']}", f"{coll}/{b['Id']}"}
        # Members answer at the URI they were asked by.
        check_certificate_body(ok(api.get(f"{coll}/{a['Id']}")).json(), roots[0].cert, coll)
    links = ok(api.get(LOCATIONS)).json()["Links"]["Certificates"]
    assert {"@odata.id": f"{TRUSTED}/{a['Id']}"} in links
    assert not any(TRUSTSTORE in l["@odata.id"] for l in links)  # the alias is not linked

    # Duplicate: refused, saying so.
    assert_error(api.post(TRUSTSTORE, json={"CertificateString": roots[0].pem.decode(),
                                            "CertificateType": "PEM"}), 409, "GeneralError",
                 "already")
    assert ok(api.get(TRUSTED)).json()["Members@odata.count"] == 2

    # Delete through the alias; gone on both URIs and from CertificateLocations.
    assert api.delete(f"{TRUSTSTORE}/{a['Id']}").status_code == 204
    for coll in (TRUSTED, TRUSTSTORE):
        assert api.get(f"{coll}/{a['Id']}").status_code == 404
    assert api.delete(f"{TRUSTED}/{a['Id']}").status_code == 404
    links = ok(api.get(LOCATIONS)).json()["Links"]["Certificates"]
    assert {"@odata.id": f"{TRUSTED}/{a['Id']}"} not in links
    for l in links:
        ok(api.get(l["@odata.id"]))  # never stale
    assert api.delete(f"{TRUSTED}/{b['Id']}").status_code == 204
    assert ok(api.get(TRUSTED)).json()["Members"] == []


def test_truststore_limit_and_policies(policy_certd, ca):
    a = Client(policy_certd)
    try:
        roots = [CA(f"limit root {i}") for i in range(4)]
        for r in roots[:3]:
            install(a, TRUSTED, r.pem)
        assert_error(a.post(TRUSTED, json={"CertificateString": roots[3].pem.decode(),
                                           "CertificateType": "PEM"}), 409,
                     "CreateLimitReachedForResource")
        assert ok(a.get(TRUSTED)).json()["Members@odata.count"] == 3

        # LDAP refuses expired certificates by policy; nothing is installed.
        past = utcnow() - datetime.timedelta(days=30)
        _c, _k, pem = ca.leaf("expired.certd.test", days=10, not_before=past,
                              eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
        assert_error(a.post(LDAP, data=pem, headers={"Content-Type": "application/x-pem-file"}),
                     400, "GeneralError", "expired")
        assert ok(a.get(LDAP)).json()["Members"] == []

        # LDAP's reload fails: the change stands, with a warning that says so.
        cert, _k, pem = ca.leaf("ldap.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
        body = install(a, LDAP, pem)
        check_certificate_body(body, cert, LDAP)
        msgs = body["@Message.ExtendedInfo"]
        assert any("reloading" in m["Resolution"] for m in msgs), msgs
        check_certificate_body(ok(a.get(LDAP + "/1")).json(), cert, LDAP)
        # DELETE answers 200 with the warning instead of 204.
        r = a.delete(LDAP + "/1")
        assert r.status_code == 200 and "reloading" in r.text
        assert a.get(LDAP + "/1").status_code == 404
    finally:
        a.close()


# --- bad input --------------------------------------------------------------------------------

def _pem_post(pem):
    return {"json": {"CertificateString": pem.decode(), "CertificateType": "PEM"}}


def test_bad_uploads(api, ca, certd):
    before = served_cert(certd.port)
    cert, key, pem = ca.leaf("bad.certd.test")
    other = new_key()
    ca_key_pem = key_pem(ca.key)
    leaf_for_trust = cert_pem(cert)
    cases = [
        # (collection, request kwargs, status, message id, word)
        (HTTPS, {"data": b"{", "headers": {"Content-Type": "application/json"}}, 400,
         "MalformedJSON", None),
        (HTTPS, {"json": {"CertificateType": "PEM"}}, 400, "PropertyMissing",
         "CertificateString"),
        (HTTPS, {"json": {"CertificateString": pem.decode()}}, 400, "PropertyMissing",
         "CertificateType"),
        (HTTPS, {"json": {"CertificateString": 42, "CertificateType": "PEM"}}, 400,
         "PropertyValueTypeError", "CertificateString"),
        (HTTPS, {"json": {"CertificateString": pem.decode(), "CertificateType": "DER"}}, 400,
         "PropertyValueNotInList", "CertificateType"),
        (HTTPS, {"json": {"CertificateString": pem.decode(), "CertificateType": "PEM",
                          "Extra": 1}}, 400, "PropertyUnknown", "Extra"),
        (HTTPS, _pem_post(cert_pem(cert) + key_pem(other)), 400, "GeneralError", "match"),
        (HTTPS, _pem_post(b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                          b"-----END CERTIFICATE-----\n"), 400, "GeneralError", "base64"),
        (HTTPS, {"data": bytes(range(256)) * 8,
                 "headers": {"Content-Type": "application/octet-stream"}}, 400, "GeneralError",
         "neither PEM nor a DER"),
        (HTTPS, {"data": b"", "headers": {"Content-Type": "application/x-pem-file"}}, 400,
         "GeneralError", "empty"),
        (HTTPS, {"data": pem.replace(b"-----END CERTIFICATE-----", b""),
                 "headers": {"Content-Type": "application/x-pem-file"}}, 400, "GeneralError",
         "no END line"),
        # A CA certificate (keyCertSign only) with its key is no server certificate.
        (HTTPS, _pem_post(ca.pem + ca_key_pem), 400, "GeneralError", "KeyUsage"),
        # A leaf is no CA; a key is never taken into the truststore.
        (TRUSTED, _pem_post(leaf_for_trust), 400, "GeneralError", "CA"),
        (TRUSTED, _pem_post(ca.pem + ca_key_pem), 400, "GeneralError", "key"),
        (HTTPS, {"data": b"x" * 70000,
                 "headers": {"Content-Type": "application/x-pem-file"}}, 413, "GeneralError",
         "65536"),
        (HTTPS, {"data": pem, "headers": {"Content-Type": "text/plain"}}, 415,
         "UnrecognizedRequestBody", "text/plain"),
    ]
    for coll, kw, status, mid, word in cases:
        r = api.post(coll, **kw)
        body = assert_error(r, status, mid, word)
        # The upload is never echoed back.
        assert "BEGIN CERTIFICATE" not in json.dumps(body)
    assert served_cert(certd.port) == before
    assert ok(api.get(TRUSTED)).json()["Members"] == []


@pytest.mark.parametrize("params, status, message_id, word", [
    ({"CommonName": "x"}, 400, "ActionParameterMissing", "CertificateCollection"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "Bogus": 1}, 400,
     "ActionParameterUnknown", "Bogus"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "OrganizationUnit": "x"}, 400,
     "ActionParameterUnknown", "OrganizationUnit"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "KeyBitLength": "2048"}, 400,
     "ActionParameterValueTypeError", "KeyBitLength"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "AlternativeNames": "a.example"}, 400,
     "ActionParameterValueTypeError", "AlternativeNames"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "City": 7}, 400,
     "ActionParameterValueTypeError", "City"),
    ({"CertificateCollection": 5}, 400, "ActionParameterValueTypeError",
     "CertificateCollection"),
    ({"CertificateCollection": {"@odata.id": TRUSTED}}, 400,
     "ActionParameterValueFormatError", "CertificateCollection"),
    ({"CertificateCollection": {"@odata.id": "/redfish/v1/Nowhere"}}, 400,
     "ActionParameterValueFormatError", "CertificateCollection"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "KeyPairAlgorithm": "RSA",
      "KeyBitLength": 1024}, 400, "ActionParameterValueFormatError", "KeyBitLength"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "KeyPairAlgorithm": "EC",
      "KeyCurveId": "P-192"}, 400, "ActionParameterValueFormatError", "KeyCurveId"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "KeyPairAlgorithm": "Ed25519"}, 400,
     "GeneralError", "Ed25519"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "KeyUsage": ["Bogus"]}, 400,
     "ActionParameterValueFormatError", "KeyUsage"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "CommonName": ""}, 400,
     "ActionParameterValueFormatError", "CommonName"),
    # The library names the field at fault: the answer names the parameter.
    ({"CertificateCollection": {"@odata.id": HTTPS}, "Country": "USA"}, 400,
     "ActionParameterValueFormatError", "Country"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "AlternativeNames": ["bad name!"]}, 400,
     "ActionParameterValueFormatError", "AlternativeNames"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "CommonName": "x" * 65}, 400,
     "ActionParameterValueFormatError", "CommonName"),
    ({"CertificateCollection": {"@odata.id": HTTPS}, "Email": "not-an-address"}, 400,
     "ActionParameterValueFormatError", "Email"),
    ({"CertificateCollection": {"@odata.id": HTTPS},
      "AlternativeNames": [f"n{i}.example" for i in range(65)]}, 400,
     "ActionParameterValueFormatError", "AlternativeNames"),
])
def test_generate_csr_bad_parameters(api, params, status, message_id, word):
    assert_error(api.post(GENERATE_CSR, json=params), status, message_id, word)


def test_generate_csr_malformed_json_makes_no_key(api, certd):
    assert_error(api.post(GENERATE_CSR, data=b'{"CertificateCollection": ',
                          headers={"Content-Type": "application/json"}), 400, "MalformedJSON")
    assert_error(api.post(GENERATE_CSR, json={"CertificateCollection": {"@odata.id": HTTPS},
                                              "Country": "USA"}), 400,
                 "ActionParameterValueFormatError", "Country")
    pending = os.path.join(certd.state_dir, "https", "pending")
    assert not os.path.isdir(pending) or os.listdir(pending) == []


# --- restart ----------------------------------------------------------------------------------

def test_restart_preserves_everything(certd, ca):
    a = Client(certd)
    https, _k, pem = ca.leaf("restart.certd.test")
    install(a, HTTPS, pem)
    ldap, _k, pem = ca.leaf("ldap-restart.certd.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    install(a, LDAP, pem)
    root = CA("restart root")
    trusted = install(a, TRUSTED, root.pem)
    csr = generate_csr(a, HTTPS, CommonName="after-restart.certd.test")
    before = {p: ok(a.get(p)).json() for p in (HTTPS + "/1", LDAP + "/1", trusted["@odata.id"],
                                         LOCATIONS)}
    a.close()

    certd.restart()
    a = Client(certd)
    try:
        for p, body in before.items():
            assert ok(a.get(p)).json() == body
        assert served_cert(certd.port) == https
        # The pending key survived: its signed certificate installs without a key.
        cert = ca.sign_csr(csr)
        check_certificate_body(install(a, HTTPS, cert_pem(cert)), cert, HTTPS)
        assert served_cert(certd.port) == cert
    finally:
        a.close()


# --- roles ------------------------------------------------------------------------------------

PASSWORDS = {"operator": "Operator-pass-8472", "reader": "Reader-pass-9313"}


def test_role_matrix(certd, ca):
    certd.add_user("operator", "Operator", PASSWORDS["operator"])
    certd.add_user("reader", "ReadOnly", PASSWORDS["reader"])
    admin = Client(certd)
    users = {name: Client(certd, (name, pw)) for name, pw in PASSWORDS.items()}
    anon = Client(certd, None)
    try:
        _c, _k, ldap_pem = ca.leaf("ldap-roles.certd.test",
                                   eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
        install(admin, LDAP, ldap_pem)
        roots = [CA(f"role root {i}") for i in range(4)]
        ids = [install(admin, TRUSTED, r.pem)["Id"] for r in roots[:2]]
        _c, _k, https_pem = ca.leaf("roles.certd.test")
        _c, _k, https_pem2 = ca.leaf("roles2.certd.test")

        def post_pem(pem):
            return {"json": {"CertificateString": pem.decode(), "CertificateType": "PEM"}}

        matrix = [
            ("POST", GENERATE_CSR, {"json": {"CertificateCollection": {"@odata.id": HTTPS},
                                             "CommonName": "roles.certd.test"}}, 200),
            ("POST", HTTPS + "/1/Actions/Certificate.Renew", {"json": {}}, 200),
            ("POST", HTTPS + "/1/Actions/Certificate.Rekey", {"json": {}}, 200),
            ("POST", LDAP + "/1/Actions/Certificate.Renew", {"json": {}}, 200),
            ("POST", LDAP + "/1/Actions/Certificate.Rekey", {"json": {}}, 200),
            ("POST", HTTPS, post_pem(https_pem), 200),
            ("POST", REPLACE, {"json": {"CertificateString": https_pem2.decode(),
                                        "CertificateType": "PEM",
                                        "CertificateUri": {"@odata.id": HTTPS + "/1"}}}, 200),
            ("POST", LDAP, {"data": ldap_pem,
                            "headers": {"Content-Type": "application/x-pem-file"}}, 200),
            ("POST", TRUSTED, post_pem(roots[2].pem), 200),
            ("POST", TRUSTSTORE, post_pem(roots[3].pem), 200),
            ("DELETE", f"{TRUSTED}/{ids[0]}", {}, 204),
            ("DELETE", f"{TRUSTSTORE}/{ids[1]}", {}, 204),
            ("DELETE", LDAP + "/1", {}, 204),
        ]
        for method, path, kw, status in matrix:
            state = {p: ok(admin.get(p)).json() for p in (HTTPS, LDAP, TRUSTED)}
            for name, u in users.items():
                assert_error(u.request(method, path, **kw), 403, "InsufficientPrivilege")
                r = anon.request(method, path, **kw)
                assert r.status_code == 401 and "WWW-Authenticate" in r.headers
            assert {p: ok(admin.get(p)).json() for p in (HTTPS, LDAP, TRUSTED)} == state, path
            r = admin.request(method, path, **kw)
            assert r.status_code == status, (method, path, r.status_code, r.text[:2000])
        # Every role may read.
        for u in users.values():
            for p in (SERVICE, LOCATIONS, HTTPS, HTTPS + "/1", TRUSTED, TRUSTSTORE,
                      SERVICE + "/GenerateCSRActionInfo"):
                ok(u.get(p))
    finally:
        admin.close()
        anon.close()
        for u in users.values():
            u.close()
