# SPDX-License-Identifier: Apache-2.0
"""Re-enrolment without losing connectivity (issue #6), end to end against the real daemon.

A client that trusts certd by the pin of its key alone (Python ssl without chain verification;
the SPKI SHA-256 of the served certificate computed with `cryptography` and compared with the
pins the client holds) polls the API continuously, one new TLS connection per request, while
certd re-enrols its HTTPS certificate:
  a. same key: SelfSign re-issues the self-signed certificate, then Renew + a CA-signed
     certificate through ReplaceCertificate moves it from self-signed to a CA (scenario c of the
     issue: the key, and so the pin, survive);
  b. key rotation with overlap: PrepareNextKey publishes the next key's pin, the client adds
     it, SelfSign {"KeyPin"} switches, the client drops the old pin;
and no request of the client fails. A client holding only the old pin does fail after the
switch, which shows that the check can fail. Bad inputs change nothing; a restart with an
expired self-signed certificate keeps the key.

In a and b both sides pin each other, as seed 004 has it: certd is configured with
[tls] client_auth = optional and holds the poller's self-signed client certificate's pin (ReadOnly),
so the poller sends no password at all; the TPM variant polls with Basic auth, sent only after the
pin check passed."""
import base64
import datetime
import hashlib
import http.client
import os
import re
import ssl
import subprocess
import threading

import pytest
from conftest import CA, Client, assert_error, basic_auth, cert_pem, ok, schemas, served_cert
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HTTPS = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates"
MEMBER = HTTPS + "/1"
TRUSTED = "/redfish/v1/Managers/bmc/SecurityPolicy/TLS/Server/TrustedCertificates"
NEXT_KEY = "/Actions/Oem/CertdCertificate.PrepareNextKey"
SELF_SIGN = "/Actions/Oem/CertdCertificate.SelfSign"
RENEW = MEMBER + "/Actions/Certificate.Renew"
REPLACE = "/redfish/v1/CertificateService/Actions/CertificateService.ReplaceCertificate"
POLL_PATH = "/redfish/v1/SessionService"
OEM_TYPE = "#CertdCertificate.v1_0_0.CertdCertificate"

# Requests the poller makes on each side of every switch: 1000 across each switch at least.
PER_SIDE = 500
# Generous: a loaded CI machine, sanitizer builds.
WAIT = 600.0

CONFIG = """
[server]
hostname = certd.test
{tls}
[endpoint https]
type = server
reload = self
{extra}
[endpoint truststore]
type = authority
"""


# --- pins, computed here independently of certd -----------------------------------------------

def pin_of_public_key(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def pin_of_der(der):
    return pin_of_public_key(x509.load_der_x509_certificate(der).public_key())


def pin_of_cert(cert):
    return pin_of_public_key(cert.public_key())


def pin_hex(pin):
    """The hex form certd accepts too (64 digits)."""
    return base64.b64decode(pin[len("sha256//"):]).hex()


def openssl_csr_pin(csr_pem):
    """The pin of a CSR's key as openssl computes it: pkey DER of the request's public key."""
    pub = subprocess.run(["openssl", "req", "-noout", "-pubkey"], input=csr_pem.encode(),
                         capture_output=True, check=True, timeout=60).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True, timeout=60).stdout
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


# --- a client that verifies certd by pin only --------------------------------------------------

class PinMismatch(Exception):
    pass


def pin_context():
    """No chain, no name, no dates: the pin is the whole check (done by the caller)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def pinned_get(ctx, port, held, auth, path=POLL_PATH):
    """One request on a new connection; the server's key must have a pin in held (checked
    before anything is sent). Returns (pin, certificate serial, status)."""
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
    try:
        c.connect()
        der = c.sock.getpeercert(binary_form=True)
        pin = pin_of_der(der)
        if pin not in held:
            raise PinMismatch(f"served key {pin} is none of {sorted(held)}")
        headers = {"Host": "certd.test"}
        if auth:
            headers["Authorization"] = basic_auth(auth)
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        return pin, x509.load_der_x509_certificate(der).serial_number, r.status
    finally:
        c.close()


class Poller(threading.Thread):
    """Polls certd, one new TLS connection per request, against the pins it holds when each
    connection starts (hold() changes them, as a client's configuration would)."""

    def __init__(self, certd, pins, client=None):
        super().__init__(daemon=True)
        self.port = certd.port
        self.ctx = pin_context()
        # With a client certificate that certd pins, no password is sent at all.
        self.auth = None if client else certd.admin
        if client:
            self.ctx.load_cert_chain(*client)
        self.cond = threading.Condition()
        self.pins = frozenset(pins)
        self.count = 0
        self.failures = []
        self.seen_pins = {}
        self.seen_serials = set()
        self.is_stopping = False

    def hold(self, pins):
        with self.cond:
            self.pins = frozenset(pins)

    def run(self):
        while True:
            with self.cond:
                if self.is_stopping:
                    return
                held = self.pins
                n = self.count
            try:
                pin, serial, status = pinned_get(self.ctx, self.port, held, self.auth)
                failure = None if status == 200 else f"request {n}: status {status}"
            except Exception as e:  # every kind of failure counts, and is listed
                pin, serial, failure = None, None, f"request {n}: {e!r}"
            with self.cond:
                self.count += 1
                if failure:
                    self.failures.append(failure)
                else:
                    self.seen_pins[pin] = self.seen_pins.get(pin, 0) + 1
                    self.seen_serials.add(serial)
                self.cond.notify_all()

    def wait_more(self, n):
        """Wait until n more requests are done (event-driven); the count reached."""
        with self.cond:
            target = self.count + n
            assert self.cond.wait_for(lambda: self.count >= target or not self.is_alive(),
                                      timeout=WAIT), f"the poller made {self.count} of {target}"
            assert self.count >= target, "the poller stopped"
            return self.count

    def stop(self):
        with self.cond:
            self.is_stopping = True
        self.join(timeout=WAIT)
        assert not self.is_alive()

    def assert_no_failures(self):
        with self.cond:
            assert not self.failures, \
                f"{len(self.failures)} of {self.count} requests failed:\n" + \
                "\n".join(self.failures[:50])


@pytest.fixture
def poller_for():
    started = []

    def start(certd, pins, client=None):
        p = Poller(certd, pins, client)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        if p.is_alive():
            p.stop()


# --- helpers ----------------------------------------------------------------------------------

def start_certd(certd_factory, extra="", name="d", tls=""):
    return certd_factory(config=CONFIG.format(extra=extra, tls=tls), name=name).start()


# certd asks clients for a certificate and accepts pinned ones (its PinnedPeers store).
MUTUAL = "[tls]\nclient_auth = optional\nclient_verify = pin\n"


def pinned_client(api, directory):
    """A self-signed client certificate (EC P-256) that certd pins as a ReadOnly user: the
    poller's identity, with no password. Returns (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "poller")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_file, key_file = os.path.join(directory, "poller.pem"), os.path.join(directory,
                                                                                "poller.key")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    r = api.post("/redfish/v1/Oem/Certd/PinnedPeers",
                 json={"CertificateString": cert.public_bytes(serialization.Encoding.PEM)
                       .decode(), "UserName": "poller", "RoleId": "ReadOnly"})
    assert r.status_code == 201, r.text
    assert r.json()["Pin"] == pin_of_cert(cert)
    # Without the pin, certd refuses that certificate; with it, no password is needed.
    ctx = pin_context()
    ctx.load_cert_chain(cert_file, key_file)
    pin = pin_of_cert(served_cert(api_port(api)))
    assert pinned_get(ctx, api_port(api), {pin}, None)[2] == 200
    return cert_file, key_file


def api_port(api):
    return api.certd.port


def member(api):
    body = ok(api.get(MEMBER)).json()
    oem = body["Oem"]["Certd"]
    s = schemas()
    if s:
        s.check(oem, "CertdCertificate.v1_0_0.json", "CertdCertificate")
    assert oem["@odata.type"] == OEM_TYPE
    return body, oem


def shown_cert(body):
    return x509.load_pem_x509_certificate(body["CertificateString"].encode())


def prepare_next_key(api, **params):
    out = ok(api.post(MEMBER + NEXT_KEY, json=params)).json()
    s = schemas()
    if s:
        s.check(out, "CertdCertificate.v1_0_0.json", "PrepareNextKeyResponse")
    assert out["CertificateCollection"] == {"@odata.id": HTTPS}
    csr = x509.load_pem_x509_csr(out["CSRString"].encode())
    assert csr.is_signature_valid
    # The pin certd published is the CSR's key's, as cryptography and openssl compute it.
    assert out["NextKeyPin"] == pin_of_public_key(csr.public_key())
    assert out["NextKeyPin"] == openssl_csr_pin(out["CSRString"])
    return out["NextKeyPin"], csr


def self_sign(api, **params):
    r = ok(api.post(MEMBER + SELF_SIGN, json=params))
    body = r.json()
    assert r.headers["Location"] == MEMBER
    assert body["@odata.id"] == MEMBER
    return body


def served_pin(certd):
    return pin_of_cert(served_cert(certd.port))


# --- a. the same key: self-signed renewal, then a CA-signed certificate -----------------------

def test_same_key_selfsign_then_ca_while_polling(certd_factory, poller_for, tmp_path):
    certd = start_certd(certd_factory, tls=MUTUAL)
    api = Client(certd)
    try:
        body, oem = member(api)
        first = shown_cert(body)
        p0 = oem["KeyPin"]
        assert p0 == pin_of_cert(first) == served_pin(certd)
        assert oem["NextKeyPins"] == []
        # The actions, where DSP0266 puts OEM actions.
        acts = body["Actions"]["Oem"]
        assert acts["#CertdCertificate.PrepareNextKey"]["target"] == MEMBER + NEXT_KEY
        assert acts["#CertdCertificate.SelfSign"]["target"] == MEMBER + SELF_SIGN

        poller = poller_for(certd, {p0}, pinned_client(api, tmp_path))
        poller.wait_more(PER_SIDE)

        # SelfSign without a pin: a new self-signed certificate for the same key.
        out = self_sign(api)
        renewed = shown_cert(out)
        assert renewed.serial_number != first.serial_number
        assert renewed.subject == first.subject and renewed.issuer == renewed.subject
        assert renewed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            == first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert out["Oem"]["Certd"]["KeyPin"] == p0
        assert served_cert(certd.port) == renewed
        poller.wait_more(PER_SIDE)

        # Renew: a CSR for the same key; a CA signs it; ReplaceCertificate installs it.
        renew = ok(api.post(RENEW, json={})).json()
        csr = x509.load_pem_x509_csr(renew["CSRString"].encode())
        assert pin_of_public_key(csr.public_key()) == p0 == openssl_csr_pin(renew["CSRString"])
        ca = CA("reenrol test CA")
        signed = ca.sign_csr(csr)
        ok(api.post(REPLACE, json={"CertificateString": cert_pem(signed).decode(),
                                   "CertificateType": "PEM",
                                   "CertificateUri": {"@odata.id": MEMBER}}))
        now = served_cert(certd.port)
        assert now == signed and now.issuer == ca.cert.subject
        assert pin_of_cert(now) == p0
        assert member(api)[1]["KeyPin"] == p0
        poller.wait_more(PER_SIDE)
        poller.stop()
        poller.assert_no_failures()
        # The polling crossed both switches: three certificates served, one key throughout.
        assert {first.serial_number, renewed.serial_number, signed.serial_number} <= \
            poller.seen_serials
        assert set(poller.seen_pins) == {p0}
        assert poller.count >= 3 * PER_SIDE
    finally:
        api.close()
    assert certd.stop() == 0


# --- b. key rotation with overlap --------------------------------------------------------------

def test_key_rotation_with_overlap_while_polling(certd_factory, poller_for, tmp_path):
    certd = start_certd(certd_factory, tls=MUTUAL)
    api = Client(certd)
    try:
        _body, oem = member(api)
        p0 = oem["KeyPin"]
        poller = poller_for(certd, {p0}, pinned_client(api, tmp_path))
        poller.wait_more(PER_SIDE // 2)

        # The next key and its pin are published before anything changes.
        nxt, _csr = prepare_next_key(api)
        assert nxt != p0
        _body, oem = member(api)
        assert oem["KeyPin"] == p0 and oem["NextKeyPins"] == [nxt]
        assert served_pin(certd) == p0
        pending = os.path.join(certd.state_dir, "https", "pending")
        assert len(os.listdir(pending)) == 1

        # The client adds the next pin, then certd switches.
        poller.hold({p0, nxt})
        poller.wait_more(PER_SIDE)
        out = self_sign(api, KeyPin=nxt)
        assert out["Oem"]["Certd"]["KeyPin"] == nxt
        assert out["Oem"]["Certd"]["NextKeyPins"] == []
        assert pin_of_cert(shown_cert(out)) == nxt
        assert served_pin(certd) == nxt
        # The pending key was used up, as an upload uses it.
        assert os.listdir(pending) == []
        poller.wait_more(PER_SIDE)

        # The old pin goes; polling goes on with the new one alone.
        poller.hold({nxt})
        poller.wait_more(PER_SIDE // 2)

        # A second rotation, the pin given in hex this time.
        nxt2, _csr = prepare_next_key(api, KeyPairAlgorithm="EC")
        poller.hold({nxt, nxt2})
        poller.wait_more(PER_SIDE // 2)
        out = self_sign(api, KeyPin=pin_hex(nxt2))
        assert out["Oem"]["Certd"]["KeyPin"] == nxt2 == served_pin(certd)
        poller.wait_more(PER_SIDE // 2)
        poller.hold({nxt2})
        poller.wait_more(PER_SIDE // 2)
        poller.stop()
        poller.assert_no_failures()
        assert set(poller.seen_pins) == {p0, nxt, nxt2}
        assert poller.seen_pins[p0] >= PER_SIDE and poller.seen_pins[nxt] >= PER_SIDE

        # A client that kept only an old pin fails now: the check above could fail.
        ctx = pin_context()
        for stale in ({p0}, {nxt}):
            with pytest.raises(PinMismatch):
                pinned_get(ctx, certd.port, stale, certd.admin)
        assert pinned_get(ctx, certd.port, {nxt2}, certd.admin)[2] == 200
    finally:
        api.close()
    assert certd.stop() == 0


# --- c. bad input changes nothing --------------------------------------------------------------

def test_bad_inputs_change_nothing(certd_factory):
    certd = start_certd(certd_factory)
    api = Client(certd)
    try:
        body, oem = member(api)
        served = served_cert(certd.port)
        trusted = ok(api.post(TRUSTED, json={"CertificateString": CA("reenrol root").pem.decode(),
                                             "CertificateType": "PEM"})).json()["@odata.id"]
        nxt, _csr = prepare_next_key(api)
        body, oem = member(api)
        nobody = "sha256//" + base64.b64encode(hashlib.sha256(b"no such key").digest()).decode()
        good_b64 = nxt[len("sha256//"):]
        bad = [
            ({"KeyPin": "sha256//" + good_b64[:-2] + "="}, 400,
             "ActionParameterValueFormatError", "KeyPin"),                   # wrong length
            ({"KeyPin": "sha256//" + "!" * 43 + "="}, 400,
             "ActionParameterValueFormatError", "KeyPin"),                   # bad base64
            ({"KeyPin": pin_hex(nxt)[:63]}, 400, "ActionParameterValueFormatError", "KeyPin"),
            ({"KeyPin": pin_hex(nxt) + "0"}, 400, "ActionParameterValueFormatError", "KeyPin"),
            ({"KeyPin": "sha512//" + good_b64}, 400, "ActionParameterValueFormatError", "KeyPin"),
            ({"KeyPin": ""}, 400, "ActionParameterValueFormatError", "KeyPin"),
            ({"KeyPin": 5}, 400, "ActionParameterValueTypeError", "KeyPin"),
            ({"Bogus": 1}, 400, "ActionParameterUnknown", "Bogus"),
            ({"KeyPin": nobody}, 400, "ActionParameterValueFormatError", "no pending key"),
            ({"KeyPin": oem["KeyPin"]}, 400, "ActionParameterValueFormatError",
             "no pending key"),                                              # the current key
        ]
        for params, status, msg, word in bad:
            assert_error(api.post(MEMBER + SELF_SIGN, json=params), status, msg, word)
        # The pin of no pending key is named, so that the user sees which one it was.
        assert_error(api.post(MEMBER + SELF_SIGN, json={"KeyPin": nobody}), 400,
                     "ActionParameterValueFormatError", nobody)
        assert_error(api.post(MEMBER + NEXT_KEY, json={"KeyPairAlgorithm": "DSA"}), 400,
                     "ActionParameterValueFormatError", "KeyPairAlgorithm")
        assert_error(api.post(MEMBER + NEXT_KEY, json={"Bogus": 1}), 400,
                     "ActionParameterUnknown", "Bogus")
        # The truststore holds CA certificates: no key of certd's to prepare or sign with.
        for action in (NEXT_KEY, SELF_SIGN):
            assert_error(api.post(trusted + action, json={}), 404, "ResourceMissingAtURI")
        assert api.post(HTTPS + "/2" + SELF_SIGN, json={}).status_code == 404
        assert served_cert(certd.port) == served
        assert member(api)[0] == body

        # A pin is used up by the switch: the second SelfSign with it is refused.
        first = self_sign(api, KeyPin=nxt)
        switched = served_cert(certd.port)
        assert pin_of_cert(switched) == nxt
        assert_error(api.post(MEMBER + SELF_SIGN, json={"KeyPin": nxt}), 400,
                     "ActionParameterValueFormatError", "no pending key")
        assert served_cert(certd.port) == switched
        assert member(api)[0] == first
    finally:
        api.close()
    assert certd.stop() == 0


# --- a restart with an expired self-signed certificate keeps the key --------------------------

def test_restart_with_expired_selfsigned_keeps_key(certd_factory):
    certd = start_certd(certd_factory, extra="expired = reject\n")
    p0 = served_pin(certd)
    assert certd.stop() == 0

    # The same key, a self-signed certificate that expired yesterday, as certd's own would.
    https = os.path.join(certd.state_dir, "https")
    with open(os.path.join(https, "key.pem"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certd.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=30))
               .not_valid_after(now - datetime.timedelta(days=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("certd.test")]), False)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .sign(key, hashes.SHA256()))
    with open(os.path.join(https, "cert.pem"), "wb") as f:
        f.write(cert_pem(expired))

    certd.start()
    now_served = served_cert(certd.port)
    assert pin_of_cert(now_served) == p0
    assert now_served.serial_number != expired.serial_number
    assert now_served.subject == expired.subject == now_served.issuer
    assert now_served.not_valid_after.replace(tzinfo=datetime.timezone.utc) > now
    assert "re-issued for the same key (pins stay valid)" in certd.log()
    # The expired certificate was kept aside, byte for byte, as every bootstrap keeps files.
    aside = [f for f in os.listdir(https) if re.fullmatch(r"cert\.pem\.corrupt-\d{8}T\d{6}Z", f)]
    assert len(aside) == 1
    with open(os.path.join(https, aside[0]), "rb") as f:
        assert f.read() == cert_pem(expired)
    with Client(certd) as api:
        assert member(api)[1]["KeyPin"] == p0
    assert certd.stop() == 0


# --- the same with the key in a TPM (issue #5's keys) ------------------------------------------

@pytest.fixture(scope="module")
def tpm(tmp_path_factory):
    import shutil
    from test_tpm import Tpm
    if not shutil.which("swtpm") or not shutil.which("tpm2_getcap"):
        pytest.fail("swtpm and tpm2-tools are needed (scripts/install-deps installs them)")
    t = Tpm(tmp_path_factory.mktemp("tpm"))
    t.flush()
    yield t
    t.flush()
    t.stop()


def test_tpm_key_renewal_and_rotation_while_polling(tpm, certd_factory, poller_for):
    """SelfSign signs in the TPM: the same TPM key, then a next key made in the TPM."""
    from test_tpm import TSS2_HEADER, config as tpm_config
    certd = certd_factory(config=tpm_config(tpm), name="tpm").start()
    key_file = os.path.join(certd.state_dir, "https", "key.pem")
    api = Client(certd)
    try:
        _body, oem = member(api)
        p0 = oem["KeyPin"]
        assert oem["KeyProvider"] == "tpm2" and p0 == served_pin(certd)
        poller = poller_for(certd, {p0})
        # TPM handshakes are slower; the file-key tests above make the thousand requests.
        poller.wait_more(PER_SIDE // 5)

        out = self_sign(api)
        assert out["Oem"]["Certd"]["KeyPin"] == p0 == served_pin(certd)
        poller.wait_more(PER_SIDE // 5)

        nxt, _csr = prepare_next_key(api)
        pending = os.listdir(os.path.join(certd.state_dir, "https", "pending"))
        assert len(pending) == 1
        with open(os.path.join(certd.state_dir, "https", "pending", pending[0]), "rb") as f:
            assert f.read().startswith(TSS2_HEADER)
        poller.hold({p0, nxt})
        poller.wait_more(PER_SIDE // 5)
        out = self_sign(api, KeyPin=nxt)
        assert out["Oem"]["Certd"]["KeyPin"] == nxt == served_pin(certd)
        assert out["Oem"]["Certd"]["KeyProvider"] == "tpm2"
        poller.wait_more(PER_SIDE // 5)
        poller.hold({nxt})
        poller.wait_more(PER_SIDE // 5)
        poller.stop()
        poller.assert_no_failures()
        assert set(poller.seen_pins) == {p0, nxt}
    finally:
        api.close()
    # Stopped first: its connections (this keep-alive session's, opened before the switch, still
    # on the old key) hold TPM object slots that reading the key needs.
    assert certd.stop() == 0
    # The key file is the new key's TPM blob, and no software key.
    with open(key_file, "rb") as f:
        data = f.read()
    assert data.startswith(TSS2_HEADER) and b"BEGIN PRIVATE KEY" not in data
    assert pin_of_public_key(serialization.load_pem_public_key(tpm.pubkey(key_file))) == nxt
