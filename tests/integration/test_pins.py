# SPDX-License-Identifier: Apache-2.0
"""Client certificates by pin (issue #6, seed 004 "PKI Reduce"), end to end against the real
daemon with real TLS clients: Python's ssl, curl and openssl s_client.

A pin is the SHA-256 of a key's DER SubjectPublicKeyInfo, "sha256//BASE64". The tests compute
pins themselves, with Python's cryptography and once with the openssl command line, never with
certd's code. What is checked:
 - pinned self-signed certificates (EC P-256, RSA-2048, Ed25519) are accepted at the handshake
   and act as their pin's user and role, with no password (privileges, the accounts a user
   sees, the request log);
 - an unpinned certificate is refused AT THE HANDSHAKE, with client_auth optional and required;
   without a certificate, required fails the handshake and optional falls back to passwords;
 - by design (seed 004: a pinned link needs no expiry, revocation or CA), dates and issuer are
   not looked at: an expired or not yet valid pinned certificate is accepted; the certificate's
   own signature and its key's strength still are;
 - deleting a pin refuses new handshakes at once, answers 401 to the open connections of that
   key, and its TLS session tickets do not resume;
 - every bad input is refused with a clear message and changes nothing (the API's view and the
   store file's bytes);
 - chain mode and pin-or-chain against the truststore;
 - the store file: 0600, watched (certctl pin, a file written by hand), a corrupt file keeps
   the pins in force.

Every response is validated against the schemas (the DMTF's, and docs/schemas for the OEM
CertdPinnedPeer resources) and scanned for private key material by conftest's hooks."""
import base64
import datetime
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import time

import pytest
from conftest import (CA, Client, RawResponse, assert_error, basic_auth, cert_pem, dn, key_pem,
                      new_key, ok, schemas, utcnow, wait_for)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

PINS = "/redfish/v1/Oem/Certd/PinnedPeers"
PIN_TYPE = "#CertdPinnedPeer.v1_0_0.CertdPinnedPeer"
COLL_TYPE = "#CertdPinnedPeerCollection.CertdPinnedPeerCollection"
MANAGERS = "/redfish/v1/Managers"
ACCOUNTS = "/redfish/v1/AccountService/Accounts"
TRUSTSTORE = "/redfish/v1/Managers/bmc/Truststore/Certificates"

# debug: one log line per request, naming the user it ran as.
CONFIG = """
[server]
hostname = certd.test
log_level = debug

[endpoint https]
type = server
reload = self

[endpoint truststore]
type = authority

[tls]
client_auth = {auth}
client_verify = {verify}
"""

PASSWORD = "correct horse battery staple"


def config(auth="optional", verify="pin"):
    return CONFIG.format(auth=auth, verify=verify)


# --- keys, certificates and their pins, made here ----------------------------------------------

def make_key(kind="ec", size=None):
    """A new private key (registered with conftest so no response or log may hold it)."""
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        key_pem(key)
        return key
    if kind == "secp256k1":
        key = ec.generate_private_key(ec.SECP256K1())
        key_pem(key)
        return key
    return new_key(kind, size)


def _sign_hash(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _validity(builder, not_before, days):
    nb = not_before or utcnow() - datetime.timedelta(minutes=5)
    return builder.not_valid_before(nb).not_valid_after(nb + datetime.timedelta(days=days))


def self_signed(key, cn, not_before=None, days=365):
    """A self-signed client certificate."""
    b = (x509.CertificateBuilder().subject_name(dn(cn)).issuer_name(dn(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number()))
    b = _validity(b, not_before, days)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
    return b.sign(key, _sign_hash(key))


def issued(ca, key, cn, not_before=None, days=365, eku=(ExtendedKeyUsageOID.CLIENT_AUTH,)):
    """A client certificate for key issued by ca, complete enough for strict X.509 checks;
    eku None leaves the extended key usage out."""
    b = (x509.CertificateBuilder().subject_name(dn(cn)).issuer_name(ca.name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number()))
    b = _validity(b, not_before, days)
    b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    b = b.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                      False), critical=True)
    if eku is not None:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                        critical=False)
    return b.sign(ca.key, hashes.SHA256())


def pin_of(cert_or_key):
    """sha256// + base64 of the SHA-256 of the DER SubjectPublicKeyInfo (cryptography)."""
    pub = cert_or_key.public_key()
    spki = pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


def pin_hex(pin, colons=False):
    raw = base64.b64decode(pin[len("sha256//"):])
    return ":".join(f"{b:02x}" for b in raw) if colons else raw.hex()


def pin_by_openssl(cert_path):
    """The pin as curl's documentation computes it, with the openssl command line."""
    p = subprocess.run(
        ["bash", "-o", "pipefail", "-c",
         'openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der'
         ' | openssl dgst -sha256 -binary | base64', "pin", cert_path],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return "sha256//" + p.stdout.strip()


def break_signature(cert):
    """The same certificate with one bit of its signature flipped (the DER's last byte is the
    signature's last byte, so it still parses)."""
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


class Peer:
    """A client: a key, its certificate (self-signed unless given) and both as files; the
    certificate file may carry more certificates after it (what the client sends as chain)."""

    def __init__(self, directory, name, kind="ec", size=None, cert=None, key=None,
                 not_before=None, days=365, chain=()):
        self.name = name
        self.key = key or make_key(kind, size)
        self.cert = cert or self_signed(self.key, name, not_before, days)
        self.cert_path = os.path.join(str(directory), f"{name}.crt")
        self.key_path = os.path.join(str(directory), f"{name}.key")
        with open(self.cert_path, "wb") as f:
            f.write(cert_pem(self.cert) + b"".join(cert_pem(c) for c in chain))
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem(self.key))

    @property
    def pem(self):
        return cert_pem(self.cert).decode()

    @property
    def pin(self):
        return pin_of(self.cert)


# --- TLS clients ------------------------------------------------------------------------------

def client_ctx(peer=None, tls12=False, weak=False):
    """A Python ssl client context presenting peer's certificate (or none). The server's own
    certificate is not checked here (its pinning by certctl is another test's business)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if weak:
        # Let the client library send an RSA-1024 certificate: certd must be the one refusing.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if peer:
        ctx.load_cert_chain(peer.cert_path, peer.key_path)
    return ctx


class _Http(http.client.HTTPConnection):
    """HTTP on a TLS socket made by Conn; never reconnects (a new connection would not be the
    one under test)."""

    def connect(self):
        raise ConnectionError("the TLS connection under test is closed")


OPEN = []


class Conn:
    """One TLS connection to certd with Python's ssl, keep-alive HTTP/1.1 on it."""

    def __init__(self, certd, peer=None, ctx=None, session=None, tls12=False, weak=False):
        self.ctx = ctx or client_ctx(peer, tls12, weak)
        raw = socket.create_connection(("127.0.0.1", certd.port), timeout=30)
        try:
            self.sock = self.ctx.wrap_socket(raw, server_hostname="certd.test", session=session)
        except BaseException:
            raw.close()
            raise
        self.http = _Http("127.0.0.1", certd.port, timeout=30)
        self.http.sock = self.sock
        OPEN.append(self)

    def request(self, method, path, body=None, headers=None, auth=None):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if auth is not None:
            h["Authorization"] = basic_auth(auth)
        self.http.request(method, path, body=data, headers=h)
        return RawResponse(method, path, self.http.getresponse())

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    @property
    def session(self):
        return self.sock.session

    def close(self):
        self.http.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def is_tls_alert(e):
    return isinstance(e, ssl.SSLError) and "alert" in str(e).lower()


def refused(certd, peer=None, ctx=None, session=None, tls12=False, weak=False):
    """Assert that certd's TLS layer refuses this client, and return the client's error text.

    With TLS 1.2 the handshake itself fails (wrap_socket raises). With TLS 1.3 the client's
    Certificate and Finished are its last handshake flight, so the server's alert reaches the
    client at its first read after the handshake: the first request must end in that alert,
    with no HTTP answer. Either way the server never answered a request."""
    try:
        c = Conn(certd, peer, ctx=ctx, session=session, tls12=tls12, weak=weak)
    except ssl.SSLError as e:
        assert is_tls_alert(e), repr(e)
        return str(e)
    try:
        assert not tls12 and c.sock.version() == "TLSv1.3", \
            f"a {c.sock.version()} handshake completed"
        try:
            r = c.get(MANAGERS)
        except ssl.SSLError as e:
            assert is_tls_alert(e), repr(e)
            return str(e)
        pytest.fail(f"certd answered {r.status_code} on a connection it should have refused: "
                    f"{r.text[:500]}")
    finally:
        c.close()


def curl(certd, path, peer=None, auth=None, method="GET", tmp=None):
    """curl with a client certificate: (exit code, HTTP status, body)."""
    cmd = ["curl", "-sS", "-k", "--noproxy", "*", "--max-time", "60", "-X", method,
           "-w", "\n%{http_code}"]
    if peer:
        cmd += ["--cert", peer.cert_path, "--key", peer.key_path]
    if auth:
        cmd += ["-u", f"{auth[0]}:{auth[1]}"]
    p = subprocess.run(cmd + [certd.url + path], capture_output=True, text=True, timeout=120)
    body, _, status = p.stdout.rpartition("\n")
    if body.startswith("{"):
        s = schemas()
        if s:
            s.check_body(json.loads(body))
    return p.returncode, status, body


def s_client_get(certd, peer, path, tls12=False):
    """openssl s_client presenting peer's certificate, sending one GET: (exit code, output)."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{certd.port}", "-servername",
            "certd.test", "-ign_eof"]
    if peer:
        args += ["-cert", peer.cert_path, "-key", peer.key_path]
    if tls12:
        args += ["-tls1_2"]
    req = f"GET {path} HTTP/1.1\r\nHost: certd.test\r\nConnection: close\r\n\r\n".encode()
    p = subprocess.run(args, input=req, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


# --- the daemon -------------------------------------------------------------------------------

@pytest.fixture
def pinned(certd_factory):
    """Start certd with [tls] client_auth / client_verify: pinned(auth, verify, name). Every
    connection a test opened is closed, and each daemon must stop cleanly."""
    started = []

    def make(auth="optional", verify="pin", name="d"):
        d = certd_factory(config=config(auth, verify), name=name).start()
        started.append(d)
        return d

    yield make
    while OPEN:
        try:
            OPEN.pop().close()
        except OSError:
            pass
    for d in started:
        rc = d.stop()
        assert rc in (0, None), f"certd exited with {rc}:\n{d.log()}"


def reconfigure(d, auth, verify="pin"):
    """Restart d with other client settings; its state (users, pins) stays."""
    rc = d.stop()
    assert rc == 0, f"certd exited with {rc}:\n{d.log()}"
    with open(d.config_path, "w") as f:
        f.write(config(auth, verify))
    d.start()


def store_path(d):
    return os.path.join(d.state_dir, "pins", "clients.json")


def store_bytes(d):
    try:
        with open(store_path(d), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def add_pin(api, user, role, peer=None, pin=None, label=None, note=None):
    """POST a pin (a certificate's, or given); returns the 201's member after checking it."""
    body = {"UserName": user, "RoleId": role}
    if peer is not None:
        body["CertificateString"] = peer.pem
    if pin is not None:
        body["Pin"] = pin
    if label is not None:
        body["Label"] = label
    if note is not None:
        body["Note"] = note
    before = utcnow()
    r = ok(api.post(PINS, json=body) if isinstance(api, Client) else
           api.request("POST", PINS, body=body), 201)
    m = r.json()
    assert r.headers["Location"] == m["@odata.id"] == f"{PINS}/{m['Id']}"
    assert m["@odata.type"] == PIN_TYPE
    assert re.fullmatch(r"[1-9][0-9]*", m["Id"])
    want = pin_of(peer.cert) if peer is not None else pin_canonical(pin)
    assert m["Pin"] == want
    assert (m["UserName"], m["RoleId"]) == (user, role)
    assert m["Name"] == m["Label"]
    if label is not None:
        assert m["Label"] == label
    if note:
        assert m["Note"] == note
    else:
        assert "Note" not in m
    created = datetime.datetime.strptime(m["Created"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert before - datetime.timedelta(seconds=2) <= created <= utcnow() + \
        datetime.timedelta(seconds=2), (m["Created"], before)
    return m


def pin_canonical(pin):
    if pin.startswith("sha256//"):
        return pin
    raw = bytes.fromhex(pin.replace(":", ""))
    return "sha256//" + base64.b64encode(raw).decode()


def member_ids(api):
    body = ok(api.get(PINS)).json()
    assert body["@odata.type"] == COLL_TYPE
    assert body["Members@odata.count"] == len(body["Members"])
    return [m["@odata.id"] for m in body["Members"]]


def log_has(d, text, timeout=5.0):
    """Wait (bounded) until certd's log holds text; the log is written as things happen."""
    wait_for(lambda: text in d.log(), timeout, f"{text!r} in certd's log")


# --- 1. pinned clients act as their pin's user and role ------------------------------------------

def test_pinned_clients_act_as_their_role(pinned, tmp_path):
    d = pinned()
    peers = {
        "admin": Peer(tmp_path, "console-a", "ec"),
        "oper": Peer(tmp_path, "console-o", "rsa", 2048),
        "viewer": Peer(tmp_path, "console-v", "ed25519"),
    }
    # Our two independent computations agree, for every key type.
    for p in peers.values():
        assert pin_of(p.cert) == pin_of(p.key) == pin_by_openssl(p.cert_path)

    with Client(d) as api:
        assert member_ids(api) == []
        a = add_pin(api, "console", "Administrator", peers["admin"], label="rack 4 console",
                    note="the console in rack 4")
        o = add_pin(api, "opconsole", "Operator", peers["oper"])
        v = add_pin(api, "viewer", "ReadOnly", peers["viewer"], label="viewer")
        assert o["Label"] == "console-o"  # the certificate's CN when no label is given
        assert member_ids(api) == [a["@odata.id"], o["@odata.id"], v["@odata.id"]]
        for m in (a, o, v):
            assert ok(api.get(m["@odata.id"])).json() == m

    # The Administrator's pin: the pin collection, and changes to it, with no password.
    with Conn(d, peers["admin"]) as c:
        assert c.sock.version() == "TLSv1.3"
        assert c.sock.getpeercert(binary_form=True)  # a real TLS session
        body = ok(c.get(PINS)).json()
        assert body["Members@odata.count"] == 3
        extra = Peer(tmp_path, "extra", "ec", 384)
        hexpin = pin_hex(extra.pin)
        e = add_pin(c, "extra", "ReadOnly", pin=hexpin)
        assert e["Pin"] == extra.pin and e["Label"] == "extra"  # the user name by default
        accounts = ok(c.get(ACCOUNTS)).json()
        assert f"{ACCOUNTS}/admin" in [m["@odata.id"] for m in accounts["Members"]]
        assert c.request("DELETE", e["@odata.id"]).status_code == 204
        assert_error(c.get(e["@odata.id"]), 404, "ResourceMissingAtURI")

    # The Operator's: no pins (ConfigureUsers), but Login resources; it is "opconsole".
    with Conn(d, peers["oper"]) as c:
        assert_error(c.get(PINS), 403, "InsufficientPrivilege")
        assert_error(c.request("POST", PINS, body={"Pin": extra.pin, "UserName": "x",
                                                   "RoleId": "Administrator"}),
                     403, "InsufficientPrivilege")
        assert ok(c.get(MANAGERS)).json()["Members@odata.count"] == 1
        # Without ConfigureUsers a user sees only their own account: opconsole is not in the
        # users file, so nothing; its own account is its to ask for (404), admin's is not.
        assert ok(c.get(ACCOUNTS)).json()["Members"] == []
        assert_error(c.get(f"{ACCOUNTS}/opconsole"), 404, "ResourceNotFound")
        assert_error(c.get(f"{ACCOUNTS}/admin"), 403, "InsufficientPrivilege")
        # Credentials sent win over the certificate: the admin's password, on this connection.
        assert ok(c.get(PINS, auth=d.admin)).json()["Members@odata.count"] == 3
        assert_error(c.get(PINS, headers={"X-Auth-Token": "0" * 32}), 401, "AccessDenied")
        # And without them, the certificate again.
        assert_error(c.get(PINS), 403, "InsufficientPrivilege")
    log_has(d, "GET /redfish/v1/Managers -> 200 (user opconsole,")

    # The ReadOnly pin (Ed25519) through curl: reads, nothing else.
    rc, status, _ = curl(d, MANAGERS, peers["viewer"])
    assert (rc, status) == (0, "200")
    rc, status, body = curl(d, PINS, peers["viewer"])
    assert (rc, status) == (0, "403") and "InsufficientPrivilege" in body
    rc, status, body = curl(d, TRUSTSTORE, peers["viewer"], method="POST")
    assert (rc, status) == (0, "403"), body
    log_has(d, "GET /redfish/v1/Managers -> 200 (user viewer,")

    # openssl s_client with the Administrator's pin.
    rc, out = s_client_get(d, peers["admin"], PINS)
    assert "HTTP/1.1 200" in out, out[-3000:]
    assert "CertdPinnedPeerCollection" in out
    log_has(d, "GET /redfish/v1/Oem/Certd/PinnedPeers -> 200 (user console,")
    log_has(d, f"client certificate accepted by pin {peers['viewer'].pin}")


# --- 2. unpinned certificates are refused at the handshake --------------------------------------

@pytest.mark.parametrize("auth", ["optional", "required"])
def test_unpinned_certificate_refused_at_handshake(pinned, tmp_path, auth):
    d = pinned()
    admin = Peer(tmp_path, "admin-console", "ec")
    stranger = Peer(tmp_path, "stranger", "ec")
    with Client(d) as api:
        add_pin(api, "console", "Administrator", admin)
    if auth == "required":
        reconfigure(d, "required")

    # Python ssl: TLS 1.2 fails in the handshake proper; TLS 1.3 at the client's first read.
    refused(d, stranger, tls12=True)
    err = refused(d, stranger)
    assert "certificate" in err.lower(), err
    log_has(d, f"client certificate refused: key pin {stranger.pin} is not in pin store "
               "'clients'")
    # curl: 35 (handshake) or 56 (the alert at its first read); no HTTP status.
    rc, status, _ = curl(d, MANAGERS, stranger)
    assert rc in (35, 56) and status == "000", (rc, status)
    # openssl s_client: the handshake fails with TLS 1.2; with 1.3 the request gets an alert.
    rc, out = s_client_get(d, stranger, MANAGERS, tls12=True)
    assert rc != 0 and "alert" in out and "HTTP/1.1" not in out, out[-3000:]
    rc, out = s_client_get(d, stranger, MANAGERS)
    assert "alert" in out and "HTTP/1.1" not in out, out[-3000:]
    # Not even a password gets a refused certificate in.
    rc, status, _ = curl(d, MANAGERS, stranger, auth=d.admin)
    assert rc in (35, 56) and status == "000", (rc, status)

    # The pinned one still gets in, whatever the mode.
    with Conn(d, admin) as c:
        assert ok(c.get(PINS)).json()["Members@odata.count"] == 1
    with Conn(d, admin, tls12=True) as c:
        assert ok(c.get(MANAGERS)).status_code == 200

    if auth == "required":
        # No certificate: no handshake.
        err = refused(d, None)
        refused(d, None, tls12=True)
        rc, status, _ = curl(d, MANAGERS, auth=d.admin)
        assert rc in (35, 56) and status == "000", (rc, status)
    else:
        # No certificate: a password, or nothing.
        with Conn(d) as c:
            assert ok(c.get(MANAGERS, auth=d.admin)).status_code == 200
            assert_error(c.get(MANAGERS), 401, "NoValidSession")
        with Client(d) as api:
            ok(api.get(PINS))
        rc, status, _ = curl(d, MANAGERS)
        assert (rc, status) == (0, "401")


def test_client_auth_off_asks_for_no_certificate(pinned, tmp_path):
    """With client_auth = off (the default) nobody is asked for a certificate: a pinned
    client's certificate is never sent, so it authenticates like anybody else."""
    d = pinned()
    p = Peer(tmp_path, "console", "ec")
    stranger = Peer(tmp_path, "stranger", "ec")
    with Client(d) as api:
        add_pin(api, "console", "Administrator", p)
    reconfigure(d, "off")
    with Conn(d, p) as c:
        assert_error(c.get(MANAGERS), 401, "NoValidSession")
        assert ok(c.get(MANAGERS, auth=d.admin)).status_code == 200
    with Conn(d, stranger) as c:  # nor is an unknown one refused: it is never looked at
        assert ok(c.get(MANAGERS, auth=d.admin)).status_code == 200


# --- 3. dates and issuer are not looked at ---------------------------------------------------

def test_expired_and_not_yet_valid_pinned_certificates_are_accepted(pinned, tmp_path):
    """By design (seed 004, "PKI Reduce"): a pinned key is trusted until its pin is deleted;
    the link needs no expiry or revocation, so the certificate's dates are not looked at. An
    expired certificate and one not valid for another month both get in, as their users."""
    d = pinned()
    now = utcnow()
    expired = Peer(tmp_path, "expired", "ec", not_before=now - datetime.timedelta(days=400),
                   days=30)
    future = Peer(tmp_path, "future", "rsa", 2048,
                  not_before=now + datetime.timedelta(days=30), days=365)
    assert expired.cert.not_valid_after < datetime.datetime.utcnow()
    assert future.cert.not_valid_before > datetime.datetime.utcnow()
    with Client(d) as api:
        add_pin(api, "oldconsole", "Administrator", expired)
        add_pin(api, "newconsole", "Operator", future)
    with Conn(d, expired) as c:
        assert ok(c.get(PINS)).json()["Members@odata.count"] == 2
    with Conn(d, future) as c:
        assert ok(c.get(MANAGERS)).status_code == 200
        assert_error(c.get(PINS), 403, "InsufficientPrivilege")
    rc, status, _ = curl(d, PINS, expired)
    assert (rc, status) == (0, "200")
    log_has(d, "GET /redfish/v1/Managers -> 200 (user newconsole,")


def test_pin_ignores_the_issuer_but_checks_the_signature(pinned, tmp_path):
    """A pinned certificate issued by a CA nobody trusts is accepted (the issuer is not looked
    at). When the client sends the issuer along, the certificate's own signature is checked
    (a broken one is refused); sent alone (curl --cert sends the leaf only) it is accepted
    unchecked: TLS proved the key, and the issuer is not trusted in this mode anyway."""
    d = pinned()
    ca = CA("untrusted console CA")
    key = make_key("ec")
    cert = issued(ca, key, "issued-console")
    with_issuer = Peer(tmp_path, "with-issuer", cert=cert, key=key, chain=[ca.cert])
    alone = Peer(tmp_path, "alone", cert=cert, key=key)
    with Client(d) as api:
        add_pin(api, "console", "Operator", alone)
    with Conn(d, with_issuer) as c:
        assert ok(c.get(MANAGERS)).status_code == 200
    with Conn(d, alone) as c:
        assert ok(c.get(MANAGERS)).status_code == 200
    log_has(d, "sent without its issuer")
    # The issuer sent along, the certificate's signature broken: refused.
    broken = Peer(tmp_path, "broken-issued", cert=break_signature(cert), key=key,
                  chain=[ca.cert])
    refused(d, broken)
    log_has(d, "signature does not verify")


# --- 4. deletion ------------------------------------------------------------------------------

def test_deletion_takes_effect_at_once(pinned, tmp_path):
    d = pinned()
    victim = Peer(tmp_path, "victim", "ec")
    with Client(d) as api:
        m = add_pin(api, "victim", "Operator", victim)

    ctx = client_ctx(victim)
    keep = Conn(d, ctx=ctx)  # stays open across the deletion
    assert ok(keep.get(MANAGERS)).status_code == 200
    session = keep.session
    assert session is not None and session.has_ticket
    # Resumption works before the deletion, so its refusal below means something.
    with Conn(d, ctx=ctx, session=session) as c:
        assert ok(c.get(MANAGERS)).status_code == 200
        assert c.sock.session_reused
        later = c.session
    assert later is not None and later.has_ticket

    with Client(d) as api:
        assert api.delete(m["@odata.id"]).status_code == 204
        assert member_ids(api) == []

    # New connections: refused at once (no waiting), with a fresh handshake or a ticket.
    refused(d, ctx=ctx)
    log_has(d, f"client certificate refused: key pin {victim.pin} is not in pin store")
    refused(d, ctx=ctx, session=session)
    refused(d, ctx=ctx, session=later)
    log_has(d, "a session ticket is ignored: its client certificate is no longer accepted")
    rc, status, _ = curl(d, MANAGERS, victim)
    assert rc in (35, 56) and status == "000", (rc, status)
    # The connection that was open: 401 at its next request, whatever it sends.
    assert_error(keep.get(MANAGERS), 401, "AccessDenied")
    assert_error(keep.get(MANAGERS, auth=d.admin), 401, "AccessDenied")
    keep.close()


# --- 5. bad input -----------------------------------------------------------------------------

def _b64pin(raw):
    return "sha256//" + base64.b64encode(raw).decode()


def bad_pins(good):
    """(pin text, a word of the message) for malformed pins."""
    b64 = good[len("sha256//"):]
    hx = pin_hex(good)
    # The 43rd character carries 4 bits and 2 unused ones: set one of those.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    uncanonical = b64[:42] + alphabet[alphabet.index(b64[42]) | 1] + "="
    assert base64.b64decode(uncanonical) == base64.b64decode(b64)  # the same bytes, respelt
    return [
        ("sha256//" + b64[:-2] + "=", "43 base64 characters"),
        ("sha256//" + b64 + "AAAA", "48 base64 characters"),
        (_b64pin(bytes(31)), "invalid base64 character at position 51"),
        ("sha256//" + b64[:10] + "!" + b64[11:], "invalid base64 character at position 19"),
        ("sha256//" + b64[:10] + "-" + b64[11:], "invalid base64 character"),  # base64url
        ("sha256//" + uncanonical, "not canonical"),
        ("sha256//" + b64[:43] + "A", "must end with one '='"),
        (hx[:63], "(63 characters)"),
        (hx + "0", "(65 characters)"),
        (hx[:20] + "g" + hx[21:], "non-hex character at position 21"),
        ("", "pin is empty"),
        ("sha1//" + base64.b64encode(bytes(20)).decode(), "64 hex digits"),
        (" " + good, "64 hex digits"),
    ]


def test_bad_input_changes_nothing(pinned, tmp_path):
    d = pinned()
    admin = Peer(tmp_path, "admin-console", "ec")
    other = Peer(tmp_path, "other", "ec")
    weak = Peer(tmp_path, "weak", "rsa", 1024)
    k1 = Peer(tmp_path, "k1", "secp256k1")
    api = Client(d)
    try:
        m = add_pin(api, "console", "Administrator", admin)
        before_ids = member_ids(api)
        before_file = store_bytes(d)
        assert before_file is not None

        def unchanged():
            assert member_ids(api) == before_ids
            assert store_bytes(d) == before_file

        cases = [(body, 400, "PropertyValueFormatError", word) for body, word in
                 (({"Pin": p, "UserName": "x", "RoleId": "ReadOnly"}, w)
                  for p, w in bad_pins(other.pin))]
        base = {"UserName": "someone", "RoleId": "Operator"}
        key_only = key_pem(other.key).decode()
        cases += [
            ({**base, "Pin": other.pin, "CertificateString": other.pem}, 400, "GeneralError",
             "either CertificateString or Pin, not both"),
            (base, 400, "PropertyMissing", "Pin"),
            ({**base, "CertificateString": other.pem + key_only}, 400, "GeneralError",
             "private key"),
            ({**base, "CertificateString": key_only}, 400, "GeneralError", "no certificate"),
            ({**base, "CertificateString": other.pem + admin.pem}, 400, "GeneralError",
             "2 certificates"),
            ({**base, "CertificateString": "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                                           "-----END CERTIFICATE-----\n"}, 400, "GeneralError",
             "base64"),
            ({**base, "CertificateString": "hello"}, 400, "GeneralError",
             "neither PEM nor a DER certificate"),
            ({**base, "CertificateString": ""}, 400, "GeneralError", "no certificate given"),
            ({**base, "CertificateString": weak.pem}, 400, "GeneralError",
             "1024-bit RSA key; at least 2048 bits are required"),
            ({**base, "CertificateString": k1.pem}, 400, "GeneralError", "not supported"),
            ({**base, "Pin": other.pin, "Extra": 1}, 400, "PropertyUnknown", "Extra"),
            ({**base, "Pin": 42}, 400, "PropertyValueTypeError", "Pin"),
            ({"Pin": other.pin, "RoleId": "Operator"}, 400, "PropertyMissing", "UserName"),
            ({"Pin": other.pin, "UserName": "x"}, 400, "PropertyMissing", "RoleId"),
            ({"Pin": other.pin, "UserName": "x", "RoleId": "Admin"}, 400,
             "PropertyValueNotInList", "RoleId"),
            ({"Pin": other.pin, "UserName": "x", "RoleId": "administrator"}, 400,
             "PropertyValueNotInList", "RoleId"),
            ({"Pin": other.pin, "UserName": "Bad User", "RoleId": "Operator"}, 400,
             "PropertyValueFormatError", "a user name is a lowercase letter"),
            ({"Pin": other.pin, "UserName": "", "RoleId": "Operator"}, 400,
             "PropertyValueFormatError", "a user name is a lowercase letter"),
            ({"Pin": other.pin, "UserName": "u" * 33, "RoleId": "Operator"}, 400,
             "PropertyValueFormatError", "at most 32"),
            # An account of the users file, with another role than its own: who would it be?
            ({"Pin": other.pin, "UserName": "admin", "RoleId": "Operator"}, 400,
             "PropertyValueFormatError", "users file with role Administrator"),
            ({**base, "Pin": other.pin, "Label": "l" * 65}, 400, "PropertyValueFormatError",
             "a label has at most 64 bytes"),
            ({**base, "Pin": other.pin, "Label": ""}, 400, "PropertyValueFormatError",
             "a label may not be empty"),
            ({**base, "Pin": other.pin, "Label": "a\nb"}, 400, "PropertyValueFormatError",
             "control characters"),
            ({**base, "Pin": other.pin, "Label": " padded"}, 400, "PropertyValueFormatError",
             "begin or end with a space"),
            ({**base, "Pin": other.pin, "Note": "n" * 257}, 400, "PropertyValueFormatError",
             "a note has at most 256 bytes"),
            # The same key in every spelling is one pin: 409, naming the entry it duplicates.
            ({**base, "Pin": admin.pin}, 409, "GeneralError",
             f"is already in the store as id {m['Id']}"),
            ({**base, "Pin": pin_hex(admin.pin)}, 409, "GeneralError", "already in the store"),
            ({**base, "Pin": pin_hex(admin.pin, colons=True).upper()}, 409, "GeneralError",
             "already in the store"),
            ({**base, "CertificateString": admin.pem}, 409, "GeneralError",
             "already in the store"),
        ]
        for body, status, mid, word in cases:
            r = api.post(PINS, json=body)
            try:
                assert_error(r, status, mid, word)
            except AssertionError as e:
                raise AssertionError(f"POST {json.dumps(body)[:200]}: {e}") from None
            unchanged()

        # Not JSON, and not an object.
        assert_error(api.post(PINS, data=b"{", headers={"Content-Type": "application/json"}),
                     400, "MalformedJSON")
        assert_error(api.post(PINS, json=[other.pin]), 400, "UnrecognizedRequestBody")
        unchanged()

        # Deleting what is not there.
        for bad_id in ("999", "0", "01", "abc", "-1", "4294967297"):
            assert_error(api.delete(f"{PINS}/{bad_id}"), 404, "ResourceMissingAtURI")
        unchanged()

        # Somebody who is not an Administrator: 403, nothing changes.
        d.add_user("oper", "Operator", PASSWORD)
        with Client(d, ("oper", PASSWORD)) as op:
            assert_error(op.post(PINS, json={**base, "Pin": other.pin}), 403,
                         "InsufficientPrivilege")
            assert_error(op.get(PINS), 403, "InsufficientPrivilege")
            assert_error(op.delete(m["@odata.id"]), 403, "InsufficientPrivilege")
        unchanged()

        # The pin of the request's own connection: refused unless forced.
        with Conn(d, admin) as c:
            r = c.request("DELETE", m["@odata.id"])
            assert_error(r, 409, "GeneralError", "force=true")
            assert "own client certificate" in r.text
            unchanged()
            r = c.request("DELETE", m["@odata.id"] + "?force=false")
            assert_error(r, 409, "GeneralError", "force=true")
            unchanged()
            # Not the connection's pin: a password over the connection changes nothing.
            r = c.request("DELETE", m["@odata.id"], auth=d.admin)
            assert_error(r, 409, "GeneralError", "force=true")
            unchanged()
            # Decoded as any query is: "%74rue" is "true".
            r = c.request("DELETE", m["@odata.id"] + "?force=%74rue")
            assert r.status_code == 204, (r.status_code, r.text)
            assert_error(c.get(PINS), 401, "AccessDenied")
        refused(d, admin)
        assert member_ids(api) == []
        assert store_bytes(d) != before_file
    finally:
        api.close()


# --- 6. broken signatures and weak keys ---------------------------------------------------------

def test_broken_signature_and_weak_key_refused_at_handshake(pinned, tmp_path):
    d = pinned()
    good = Peer(tmp_path, "good", "ec")
    # The same key and certificate, with one bit of the signature flipped: its last byte is
    # the last byte of the ECDSA signature's s, so the DER still parses.
    der = bytearray(good.cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    broken_cert = x509.load_der_x509_certificate(bytes(der))
    broken = Peer(tmp_path, "broken", cert=broken_cert, key=good.key)
    assert broken.pin == good.pin
    # Independently: openssl says the self-signature no longer verifies.
    def self_signature_ok(path):
        p = subprocess.run(["openssl", "verify", "-check_ss_sig", "-CAfile", path, path],
                           capture_output=True, text=True, timeout=60)
        return p.returncode == 0, p.stdout + p.stderr

    assert self_signature_ok(good.cert_path)[0]
    is_ok, out = self_signature_ok(broken.cert_path)
    assert not is_ok and "signature failure" in out, out

    weak = Peer(tmp_path, "weak", "rsa", 1024)
    with Client(d) as api:
        add_pin(api, "console", "Operator", pin=good.pin)
        # The weak key's certificate is refused, saying why; its pin alone is taken (a pin is a
        # hash: nothing tells the key's size), and the handshake then refuses the key.
        assert_error(api.post(PINS, json={"CertificateString": weak.pem, "UserName": "weak",
                                          "RoleId": "Operator"}), 400, "GeneralError",
                     "1024-bit RSA key")
        add_pin(api, "weak", "Operator", pin=weak.pin)

    refused(d, broken)
    log_has(d, f"key pin {good.pin} is pinned (id 1), but the certificate's signature does not "
               "verify")
    refused(d, broken, tls12=True)
    rc, status, _ = curl(d, MANAGERS, broken)
    assert rc in (35, 56) and status == "000", (rc, status)
    with Conn(d, good) as c:  # the intact certificate of the same key gets in
        assert ok(c.get(MANAGERS)).status_code == 200

    refused(d, weak, weak=True)
    log_has(d, "client certificate refused: the certificate's key is a 1024-bit RSA key")


# --- 7. chain mode and pin-or-chain -----------------------------------------------------------

@pytest.mark.parametrize("verify", ["chain", "pin-or-chain"])
def test_chain_mode(pinned, tmp_path, verify):
    d = pinned(verify=verify)
    ca = CA("console issuing CA")
    other_ca = CA("unknown CA")
    pinned_peer = Peer(tmp_path, "pinned", "ec")
    with Client(d) as api:
        ok(api.post(TRUSTSTORE, json={"CertificateString": ca.pem.decode(),
                                      "CertificateType": "PEM"}))
        add_pin(api, "pinconsole", "Operator", pinned_peer)
    d.add_user("chainop", "Operator", PASSWORD)

    def ca_peer(name, cn, issuer=ca, **kw):
        key = make_key("ec")
        return Peer(tmp_path, name, cert=issued(issuer, key, cn, **kw), key=key)

    # CN = an existing user: that user, with that user's role.
    op = ca_peer("chainop", "chainop")
    with Conn(d, op) as c:
        assert ok(c.get(MANAGERS)).status_code == 200
        assert [m["@odata.id"] for m in ok(c.get(ACCOUNTS)).json()["Members"]] == \
            [f"{ACCOUNTS}/chainop"]
        assert_error(c.get(PINS), 403, "InsufficientPrivilege")
    log_has(d, "GET /redfish/v1/AccountService/Accounts -> 200 (user chainop,")
    adm = ca_peer("chainadmin", "admin")
    with Conn(d, adm) as c:
        assert ok(c.get(PINS)).json()["Members@odata.count"] == 1
    rc, status, _ = curl(d, PINS, adm)
    assert (rc, status) == (0, "200")

    # A verified chain whose CN is nobody's: the handshake is fine, authentication is not.
    nobody = ca_peer("nobody", "nosuchuser")
    with Conn(d, nobody) as c:
        assert_error(c.get(MANAGERS), 401, "NoValidSession")
        assert ok(c.get(MANAGERS, auth=("chainop", PASSWORD))).status_code == 200

    # The truststore's CAs may sign for other uses (LDAP servers): a client certificate must
    # say clientAuth; one without extended key usage, or for servers only, is refused.
    for name, eku in (("no-eku", None), ("server-only", (ExtendedKeyUsageOID.SERVER_AUTH,))):
        refused(d, ca_peer(name, "chainop", eku=eku))
    log_has(d, "unsuitable certificate purpose")

    # Not trusted, or expired: refused at the handshake.
    stranger = ca_peer("stranger", "chainop", issuer=other_ca)
    refused(d, stranger)
    refused(d, stranger, tls12=True)
    log_has(d, "its chain does not verify")
    expired = ca_peer("expired", "chainop",
                      not_before=utcnow() - datetime.timedelta(days=100), days=30)
    refused(d, expired)
    log_has(d, "certificate has expired")
    rc, status, _ = curl(d, MANAGERS, expired)
    assert rc in (35, 56) and status == "000", (rc, status)

    # The pinned self-signed certificate: only where pins count.
    if verify == "chain":
        refused(d, pinned_peer)
    else:
        with Conn(d, pinned_peer) as c:
            assert ok(c.get(MANAGERS)).status_code == 200
            assert ok(c.get(ACCOUNTS)).json()["Members"] == []
        log_has(d, "GET /redfish/v1/Managers -> 200 (user pinconsole,")


# --- 8. the store file ------------------------------------------------------------------------

def write_store(path, pins, mode=0o600):
    """A store file written by hand in pinstore.h's format, replaced atomically."""
    doc = {"Version": 1, "NextId": len(pins) + 1, "Pins": [
        {"Id": i + 1, "Pin": pin, "Label": label, "UserName": user, "RoleId": role,
         "Created": "2026-01-02T03:04:05Z"} for i, (pin, label, user, role) in enumerate(pins)]}
    tmp = path + ".by-hand"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
        os.fchmod(f.fileno(), mode)
    os.rename(tmp, path)


def accepted_within(d, peer, timeout=2.0):
    """Poll (bounded) until a connection with peer's certificate is accepted."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Conn(d, peer) as c:
                r = c.get(MANAGERS)
                if r.status_code == 200:
                    return time.monotonic() - (deadline - timeout)
        except (ssl.SSLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{peer.name} not accepted within {timeout} s:\n{d.log()[-3000:]}")
        time.sleep(0.05)


def refused_within(d, peer, timeout=2.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Conn(d, peer) as c:
                c.get(MANAGERS)
        except ssl.SSLError as e:
            if is_tls_alert(e):
                return
        if time.monotonic() > deadline:
            pytest.fail(f"{peer.name} still accepted after {timeout} s")
        time.sleep(0.05)


def test_store_file_is_private_and_exact(pinned, tmp_path):
    d = pinned()
    p = Peer(tmp_path, "console", "ed25519")
    with Client(d) as api:
        m = add_pin(api, "console", "Administrator", p, label="rack 1", note="spare")
    path = store_path(d)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) & 0o077 == 0
    with open(path) as f:
        doc = json.load(f)
    assert doc["Version"] == 1 and doc["NextId"] == 2
    assert doc["Pins"] == [{"Id": 1, "Pin": p.pin, "Label": "rack 1", "UserName": "console",
                            "RoleId": "Administrator", "Created": m["Created"],
                            "Note": "spare"}]
    # It survives a restart as it was.
    before = store_bytes(d)
    d.restart()
    assert store_bytes(d) == before
    with Conn(d, p) as c:
        assert ok(c.get(m["@odata.id"])).json() == m


def test_store_file_is_watched(pinned, tmp_path, certctl):
    d = pinned()
    path = store_path(d)
    a = Peer(tmp_path, "console-a", "ec")
    b = Peer(tmp_path, "console-b", "rsa", 2048)
    c = Peer(tmp_path, "console-c", "ec")
    refused(d, a)

    # certctl pin add on the file: in force within a moment, without a restart.
    p = subprocess.run([certctl, "pin", "add", "--cert", a.cert_path, "--user", "console",
                        "--role", "Administrator", "--store", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    accepted_within(d, a)
    with Conn(d, a) as conn:
        body = ok(conn.get(f"{PINS}/1")).json()
        assert (body["Pin"], body["UserName"], body["RoleId"]) == \
            (a.pin, "console", "Administrator")
        assert ok(conn.get(PINS)).json()["Members@odata.count"] == 1
    p = subprocess.run([certctl, "pin", "add", pin_hex(b.pin), "--user", "opconsole",
                        "--role", "Operator", "--label", "b", "--store", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    accepted_within(d, b)
    p = subprocess.run([certctl, "pin", "del", "1", "--store", path],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    refused_within(d, a)

    # A file written by hand (an editor, a configuration tool), replaced atomically.
    write_store(path, [(c.pin, "by hand", "handmade", "Operator")])
    accepted_within(d, c)
    refused_within(d, b)
    log_has(d, "GET /redfish/v1/Managers -> 200 (user handmade,")

    # A corrupt file: logged, and the pins in force stay.
    garbage = b'{"Version": 1, "Pins": [ this is not JSON'
    tmp = path + ".by-hand"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(garbage)
    os.rename(tmp, path)
    log_has(d, "the pins in force stay")
    with Conn(d, c) as conn:
        assert ok(conn.get(MANAGERS)).status_code == 200
    refused(d, b)
    # A change through the API cannot build on a file it cannot read: refused, file as it was.
    with Client(d) as api:
        r = api.post(PINS, json={"Pin": a.pin, "UserName": "x", "RoleId": "ReadOnly"})
        # certd's own file is at fault, not the request: 500, the reason in the log only.
        assert_error(r, 500, "InternalError")
        log_has(d, "the pin store cannot be changed")
        assert "PRIVATE" not in r.text
    assert store_bytes(d) == garbage
    # A group-writable file is not trusted either; the pins in force stay.
    write_store(path, [(a.pin, "by hand", "handmade", "Operator")], mode=0o620)
    wait_for(lambda: d.log().count("the pins in force stay") >= 2, 5,
             "the refusal of a group-writable store")
    with Conn(d, c) as conn:
        assert ok(conn.get(MANAGERS)).status_code == 200
    refused(d, a)
