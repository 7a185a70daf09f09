# SPDX-License-Identifier: Apache-2.0
"""certctl pin (pin stores: a file, or certd's PinnedPeers API) and certctl verifying certd by
pin (--pin, --known-hosts, --tofu), issue #6. Pins are computed here independently, with
Python's hashlib over the DER SubjectPublicKeyInfo that cryptography encodes; what certctl
writes is read back with json and compared byte for byte after every refusal."""
import base64
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import socket
import ssl
import stat
import subprocess
import threading

import pytest
from conftest import CA, cert_pem, key_pem, new_key, ok, served_cert, wait_for
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PINNED_PEERS = "/redfish/v1/Oem/Certd/PinnedPeers"
HTTPS_CERTS = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates"


def spki_pin(cert_or_key):
    """sha256//BASE64 of the DER SubjectPublicKeyInfo (RFC 7469 §2.4)."""
    pub = cert_or_key.public_key()
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def hex_pin(pin):
    return base64.b64decode(pin[len("sha256//"):]).hex()


def random_pin():
    return "sha256//" + base64.b64encode(os.urandom(32)).decode()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def self_signed(tmp_path, name, cn):
    """A self-signed certificate (PEM file) and its key: (path, cert, key)."""
    ca = CA(cn=cn)
    path = tmp_path / f"{name}.pem"
    path.write_bytes(ca.pem)
    return path, ca.cert, ca.key


def cert_of_key(tmp_path, name, key):
    """A self-signed certificate file for key (any type OpenSSL signs with)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = tmp_path / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def store_json(path):
    with open(path) as f:
        return json.load(f)


# --- local mode -------------------------------------------------------------------------------

def test_local_add_list_del(run, tmp_path):
    store = str(tmp_path / "pins" / "clients.json")
    where = ["--store", store]

    # An empty (absent) store lists as empty, and nothing is written by a list.
    p = run("pin", "list", *where, check_rc=0)
    assert p.stdout.split() == ["ID", "PIN", "USER", "ROLE", "CREATED", "LABEL"]
    assert json.loads(run("pin", "list", "--json", *where, check_rc=0).stdout) == []
    assert not os.path.exists(store)

    # By pin (base64), by pin (hex, with and without colons), by certificate.
    pin1, pin2, pin3 = random_pin(), random_pin(), random_pin()
    p = run("pin", "add", pin1, "--user", "console", "--role", "Operator", *where, check_rc=0)
    assert pin1 in p.stdout and "console" in p.stdout
    run("pin", "add", hex_pin(pin2), "--user", "reader", "--role", "ReadOnly", "--label",
        "reader key", "--note", "rack 4", *where, check_rc=0)
    h3 = hex_pin(pin3).upper()
    run("pin", "add", ":".join(h3[i:i + 2] for i in range(0, 64, 2)), "--user", "ops",
        "--role", "Administrator", *where, check_rc=0)
    cert_file, cert, _ = self_signed(tmp_path, "console-b", "console-b.example")
    run("pin", "add", "--cert", str(cert_file), "--user", "console", "--role", "Operator",
        *where, check_rc=0)
    assert mode(store) == 0o600

    # What the file holds, read independently.
    doc = store_json(store)
    pins = doc["Pins"]
    assert [e["Id"] for e in pins] == [1, 2, 3, 4]
    assert [e["Pin"] for e in pins] == [pin1, pin2, pin3, spki_pin(cert)]
    assert [e["Label"] for e in pins] == ["console", "reader key", "ops", "console-b.example"]
    assert [e["RoleId"] for e in pins] == ["Operator", "ReadOnly", "Administrator", "Operator"]
    assert pins[1]["Note"] == "rack 4" and "Note" not in pins[0]

    # list: the table and the JSON agree with the file.
    table = run("pin", "list", *where, check_rc=0).stdout.splitlines()
    assert len(table) == 5
    for line, e in zip(table[1:], pins):
        cols = line.split()
        assert cols[:5] == [str(e["Id"]), e["Pin"], e["UserName"], e["RoleId"], e["Created"]]
        assert " ".join(cols[5:]) == e["Label"]
    listed = json.loads(run("pin", "list", "--json", *where, check_rc=0).stdout)
    assert [(m["Id"], m["Pin"], m["UserName"], m["RoleId"], m["Label"], m["Created"])
            for m in listed] == [(str(e["Id"]), e["Pin"], e["UserName"], e["RoleId"],
                                  e["Label"], e["Created"]) for e in pins]
    assert listed[1]["Note"] == "rack 4"

    # del by id and by pin (either spelling); ids are never reused.
    run("pin", "del", "2", *where, check_rc=0)
    run("pin", "del", hex_pin(pin1), *where, check_rc=0)
    assert [e["Id"] for e in store_json(store)["Pins"]] == [3, 4]
    run("pin", "add", pin1, "--user", "console", "--role", "Operator", *where, check_rc=0)
    assert [e["Id"] for e in store_json(store)["Pins"]] == [3, 4, 5]
    assert mode(store) == 0o600


def test_local_bad_inputs_change_nothing(run, tmp_path):
    store = tmp_path / "clients.json"
    where = ["--store", str(store)]
    existing = random_pin()
    run("pin", "add", existing, "--user", "console", "--role", "Operator", *where, check_rc=0)
    before = store.read_bytes()

    key_file = tmp_path / "key.pem"
    key_file.write_bytes(key_pem(new_key()))
    two = tmp_path / "two.pem"
    two.write_bytes(CA(cn="a").pem + CA(cn="b").pem)
    cert_file, _, ckey = self_signed(tmp_path, "withkey", "with-key")
    with_key = tmp_path / "cert-and-key.pem"
    with_key.write_bytes(cert_file.read_bytes() + key_pem(ckey))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not a certificate\n")
    # A CN that is fine in X.509 but not as a label (a leading blank).
    blank_cn, _, _ = self_signed(tmp_path, "blankcn", " console")
    good = ["--user", "console", "--role", "Operator"]
    valid = random_pin()
    # Keys certd refuses at the handshake, and so its API refuses too: not pinned here either.
    weak = cert_of_key(tmp_path, "weak", rsa.generate_private_key(65537, 1024))
    k1 = cert_of_key(tmp_path, "k1", ec.generate_private_key(ec.SECP256K1()))

    cases = [
        # malformed pins: wrong length, bad base64, bad hex, 63 hex digits, empty
        (["add", "sha256//" + "A" * 42 + "=", *good], 1, "base64"),
        (["add", "sha256//" + "A" * 44 + "=", *good], 1, "base64"),
        (["add", "sha256//*" + "A" * 42 + "=", *good], 1, "invalid base64"),
        (["add", "sha256//" + "A" * 43 + "B", *good], 1, "'='"),
        (["add", "g" * 64, *good], 1, "non-hex"),
        (["add", "a" * 63, *good], 1, "63 characters"),
        (["add", "a" * 65, *good], 1, "neither \"sha256//\" + base64 nor 64 hex digits (65"),
        (["add", "md5//" + "A" * 44, *good], 1, "neither \"sha256//\" + base64 nor 64 hex"),
        # a duplicate (in either spelling)
        (["add", existing, *good], 1, "already"),
        (["add", hex_pin(existing), "--user", "other", "--role", "ReadOnly"], 1, "already"),
        # bad user, role, label, note
        (["add", valid, "--user", "Bad User", "--role", "Operator"], 1, "user name"),
        (["add", valid, "--user", "u" * 33, "--role", "Operator"], 1, "user name"),
        (["add", valid, "--user", "console", "--role", "Root"], 2, "role"),
        (["add", valid, *good, "--label", "x" * 65], 1, "label"),
        (["add", valid, *good, "--label", " padded"], 1, "label"),
        (["add", valid, *good, "--label", "a\tb"], 1, "label"),
        (["add", valid, *good, "--note", "n" * 257], 1, "note"),
        # files that are not exactly one certificate
        (["add", "--cert", str(key_file), *good], 1, "not a certificate"),
        (["add", "--cert", str(two), *good], 1, "exactly one"),
        (["add", "--cert", str(with_key), *good], 1, "private key"),
        (["add", "--cert", str(garbage), *good], 1, "not a certificate"),
        (["add", "--cert", str(weak), *good], 1, "1024-bit RSA key"),
        (["add", "--cert", str(k1), *good], 1, "not supported"),
        (["add", "--cert", str(tmp_path), *good], 3, "directory"),
        (["add", "--cert", str(tmp_path / "missing.pem"), *good], 4, "does not exist"),
        # a CN that cannot be the default label: said, and --label is the way out
        (["add", "--cert", str(blank_cn), *good], 1, "--label"),
        # del: unknown id, a pin not there, neither an id nor a pin
        (["del", "99"], 4, "no pin"),
        (["del", valid], 4, "no pin"),
        (["del", "0"], 1, "neither an id"),
        (["del", "007"], 1, "neither an id"),
    ]
    for args, rc, word in cases:
        p = run("pin", *args, *where, check_rc=rc)
        assert word in p.stderr, (args, p.stderr)
        assert "PRIVATE" not in p.stdout + p.stderr
        assert store.read_bytes() == before, args
    assert mode(store) == 0o600
    assert not any(n.startswith(".tmp") for n in os.listdir(tmp_path))

    # A store that does not parse is never read in part nor overwritten.
    broken = tmp_path / "broken.json"
    broken.write_text('{"Version": 1, "NextId": 2, "Pins": [{"Id": 1}]}')
    data = broken.read_bytes()
    p = run("pin", "add", valid, *good, "--store", str(broken), check_rc=1)
    assert "broken.json" in p.stderr
    run("pin", "list", "--store", str(broken), check_rc=1)
    run("pin", "del", "1", "--store", str(broken), check_rc=1)
    assert broken.read_bytes() == data
    # del on a store nobody wrote: not found, and no file appears.
    run("pin", "del", "1", "--store", str(tmp_path / "none.json"), check_rc=4)
    assert not (tmp_path / "none.json").exists()


def test_local_concurrent_adds_all_land(certctl, tmp_path):
    store = str(tmp_path / "clients.json")
    pins = [random_pin() for _ in range(12)]
    procs = [subprocess.Popen([certctl, "pin", "add", pin, "--user", f"user{i}", "--role",
                               "ReadOnly", "--store", store], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for i, pin in enumerate(pins)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, (out, err)
    entries = store_json(store)["Pins"]
    assert sorted(e["Pin"] for e in entries) == sorted(pins)
    assert sorted(e["Id"] for e in entries) == list(range(1, 13))
    assert {e["Pin"]: e["UserName"] for e in entries} == {p: f"user{i}" for i, p in
                                                          enumerate(pins)}
    assert mode(store) == 0o600


def test_local_store_from_config(run, tmp_path):
    consoles = tmp_path / "consoles.json"
    managers = tmp_path / "managers.json"
    conf = tmp_path / "certd.conf"
    conf.write_text(f"[server]\nstate_dir = {tmp_path}/state\n"
                    f"[tls]\nclient_pins = consoles\n"
                    f"[pins consoles]\nfile = {consoles}\n"
                    f"[pins managers]\nfile = {managers}\n")
    a, b = random_pin(), random_pin()
    # Default: the store [tls] client_pins names; --name picks another.
    run("pin", "add", a, "--user", "console", "--role", "Operator", "--config", str(conf),
        check_rc=0)
    run("pin", "add", b, "--user", "manager", "--role", "Administrator", "--config", str(conf),
        "--name", "managers", check_rc=0)
    assert [e["Pin"] for e in store_json(consoles)["Pins"]] == [a]
    assert [e["Pin"] for e in store_json(managers)["Pins"]] == [b]
    listed = json.loads(run("pin", "list", "--json", "--config", str(conf), "--name", "managers",
                            check_rc=0).stdout)
    assert [m["Pin"] for m in listed] == [b]
    p = run("pin", "list", "--config", str(conf), "--name", "nope", check_rc=4)
    assert "nope" in p.stderr
    # Without client_pins: the implicit store STATE_DIR/pins/clients.json.
    conf2 = tmp_path / "plain.conf"
    conf2.write_text(f"[server]\nstate_dir = {tmp_path}/state2\n")
    run("pin", "add", a, "--user", "console", "--role", "Operator", "--config", str(conf2),
        check_rc=0)
    implicit = tmp_path / "state2" / "pins" / "clients.json"
    assert [e["Pin"] for e in store_json(implicit)["Pins"]] == [a]
    assert mode(implicit) == 0o600
    # A configuration that does not parse.
    bad = tmp_path / "bad.conf"
    bad.write_text("[pins x]\nfile = relative.json\n")
    run("pin", "list", "--config", str(bad), check_rc=1)


def test_pin_usage_errors(run, tmp_path):
    store = str(tmp_path / "s.json")
    pin = random_pin()
    url = "https://127.0.0.1:1"
    cases = [
        (["pin"], "operation"),
        (["pin", "show"], "operation"),
        (["pin", "list", "extra", "--store", store], "unexpected"),
        (["pin", "add", "--user", "u", "--role", "Operator", "--store", store], "PIN"),
        (["pin", "add", pin, "--role", "Operator", "--store", store], "--user"),
        (["pin", "add", pin, "--user", "u", "--store", store], "--role"),
        (["pin", "add", pin, "--cert", "x.pem", "--user", "u", "--role", "Operator"], "one"),
        (["pin", "del", "--store", store], "ID"),
        (["pin", "del", "1", "2", "--store", store], "unexpected"),
        (["pin", "list", "--store", store, "--url", url], "exclude"),
        (["pin", "list", "--store", store, "--config", "c"], "exclude"),
        (["pin", "list", "--name", "x"], "--config"),
        (["pin", "del", "1", "--force", "--store", store], "--force"),
        (["pin", "add", pin, "--user", "u", "--role", "Operator", "--json"], "--json"),
        (["pin", "list", "--label", "x", "--store", store], "add"),
        (["pin", "list", "--insecure", "--store", store], "--url"),
        (["pin", "list", "--url", url, "--tofu"], "--known-hosts"),
        (["pin", "list", "--url", url, "--pin", pin, "--insecure"], "exclude"),
        (["pin", "list", "--url", url, "--pin", pin, "--cacert", "c.pem"], "exclude"),
        (["pin", "list", "--url", url, "--pin", pin, "--known-hosts", "k"], "exclude"),
        (["pin", "list", "--url", url, "--pin", "sha256//short"], "--pin"),
        (["pin", "list", "--url", url, "--client-key", "k.pem"], "--client-cert"),
        (["pin", "list", "--url", "http://127.0.0.1", "--insecure"], "https"),
        (["pin", "list", "--url", url, "--login", "a:b", "--insecure"], "--login"),
        (["pin", "list", "--bogus"], None),
    ]
    for args, word in cases:
        p = run(*args, stdin="password-1234\n", check_rc=2)
        assert "certctl pin" in p.stderr, (args, p.stderr)
        if word:
            assert word in p.stderr, (args, p.stderr)
    assert not os.path.exists(store)
    assert run("pin", "--help", check_rc=0).stdout.startswith("Usage: certctl pin")
    assert run("pin", "add", "--help", check_rc=0).stdout.startswith("Usage: certctl pin")
    assert "pin OPERATION" in run("--help", check_rc=0).stdout
    for cmd in (["enroll", "--help"], ["pin", "--help"]):
        text = run(*cmd, check_rc=0).stdout
        for opt in ("--pin", "--known-hosts", "--tofu", "--client-cert", "--client-key"):
            assert opt in text, (cmd, opt)
    # enroll's new exclusions
    for args, word in [(["--pin", pin, "--insecure"], "exclude"),
                       (["--known-hosts", "k", "--cacert", "c"], "exclude"),
                       (["--tofu"], "--known-hosts"),
                       (["--pin", "0" * 63], "--pin")]:
        p = run("enroll", url, *args, stdin="password-1234\n", check_rc=2)
        assert "certctl enroll" in p.stderr and word in p.stderr, (args, p.stderr)


# --- certctl verifying certd by pin ---------------------------------------------------------

def enroll(run, certd, out, *args, password=None, rc=0):
    pw = certd.admin[1] if password is None else password
    return run("enroll", f"https://127.0.0.1:{certd.port}", "--out-dir", str(out), *args,
               stdin=pw + "\n", check_rc=rc)


def replace_https_cert(certd):
    """A new key and certificate for certd's HTTPS endpoint, through its API; returns the new
    certificate once new connections see it."""
    ca = CA(cn="replacement CA")
    cert, _, pem = ca.leaf(cn="certd.test")
    ok(certd.post(HTTPS_CERTS, json={"CertificateString": pem.decode(),
                                     "CertificateType": "PEM"}))
    wait_for(lambda: served_cert(certd.port) == cert, what="the new HTTPS certificate")
    return cert


def test_enroll_by_pin_known_hosts_and_tofu(run, certd, tmp_path):
    served = served_cert(certd.port)
    right = spki_pin(served)
    wrong = random_pin()

    # --pin right: the certificate names certd's host, not 127.0.0.1, and no CA is given:
    # chain and name are not checked, the key is.
    out = tmp_path / "by-pin"
    p = enroll(run, certd, out, "--pin", wrong, "--pin", right)
    assert p.stderr == "" and (out / "client.pem").exists()
    enroll(run, certd, tmp_path / "by-hex", "--pin", hex_pin(right))

    # --pin wrong: refused, expected and actual pins shown, nothing written.
    out = tmp_path / "wrong"
    p = enroll(run, certd, out, "--pin", wrong, rc=1)
    assert right in p.stderr and wrong in p.stderr, p.stderr
    assert "from --pin" in p.stderr and f"--pin {right}" in p.stderr
    assert f"https://127.0.0.1:{certd.port}" in p.stderr
    assert certd.admin[1] not in p.stdout + p.stderr
    assert not out.exists()

    # --known-hosts without the host: fails closed and says how to go on.
    kh = tmp_path / "known_hosts"
    kh.write_text(f"# consoles\n\nother.example:443 {random_pin()}\n")
    kh.chmod(0o640)
    p = enroll(run, certd, out, "--known-hosts", str(kh), rc=1)
    assert "--tofu" in p.stderr and f"127.0.0.1:{certd.port}" in p.stderr, p.stderr
    assert right in p.stderr
    assert not out.exists()
    missing = tmp_path / "nothing"
    p = enroll(run, certd, out, "--known-hosts", str(missing), rc=1)
    assert "--tofu" in p.stderr and not missing.exists()

    # --tofu records the pin (appended, other lines kept, the file's mode kept) and works.
    old = kh.read_text()
    p = enroll(run, certd, tmp_path / "tofu", "--known-hosts", str(kh), "--tofu")
    line = f"127.0.0.1:{certd.port} {right}"
    assert p.stderr == (f"certctl: recorded pin {right} for 127.0.0.1:{certd.port} in {kh} "
                        "(trust on first use)\n"), p.stderr
    assert kh.read_text() == old + line + "\n"
    assert mode(kh) == 0o640
    # A new file is made 0600.
    fresh = tmp_path / "fresh_hosts"
    enroll(run, certd, tmp_path / "tofu2", "--known-hosts", str(fresh), "--tofu")
    assert fresh.read_text() == line + "\n" and mode(fresh) == 0o600
    # From now on the line is checked, with or without --tofu, and nothing more is recorded.
    p = enroll(run, certd, tmp_path / "known", "--known-hosts", str(kh))
    assert p.stderr == ""
    p = enroll(run, certd, tmp_path / "known2", "--known-hosts", str(kh), "--tofu")
    assert p.stderr == "" and kh.read_text() == old + line + "\n"

    # The server's key changes: refused, with the update hint; --tofu changes nothing.
    new = spki_pin(replace_https_cert(certd))
    assert new != right
    out = tmp_path / "changed"
    for extra in ([], ["--tofu"]):
        p = enroll(run, certd, out, "--known-hosts", str(kh), *extra, rc=1)
        assert new in p.stderr and right in p.stderr, p.stderr
        assert f"{kh} line 4" in p.stderr and f"update {kh}" in p.stderr, p.stderr
        assert f"--pin {new}" in p.stderr
        assert not out.exists()
    assert kh.read_text() == old + line + "\n"
    # Both pins on the line (rotation): accepted.
    kh.write_text(old + line + f" {new}\n")
    enroll(run, certd, out, "--known-hosts", str(kh))
    assert (out / "client.pem").exists()


def test_known_hosts_file_errors(run, certd, tmp_path):
    right = spki_pin(served_cert(certd.port))
    host = f"127.0.0.1:{certd.port}"
    out = tmp_path / "out"
    cases = [
        (f"{host} sha256//short\n", "line 1"),
        (f"# ok\n{host}\n", "no pin"),
        (f"{host} {right}\n{host} {right}\n", "earlier line"),
        (f"127.0.0.1 {right}\n", "PORT"),
        (f"::1:443 {right}\n{host} {right}\n", "brackets"),
        (f"{host}:x {right}\n", "line 1"),
        (f"{host} " + " ".join([right] * 17) + "\n", "more than"),
    ]
    for text, word in cases:
        kh = tmp_path / "kh"
        kh.write_text(text)
        p = enroll(run, certd, out, "--known-hosts", str(kh), "--tofu", rc=1)
        assert word in p.stderr, (text, p.stderr)
        assert kh.read_text() == text
        assert not out.exists()
    # Spellings: IPv6 in brackets, upper-case names, comments, blanks and CRLF are fine.
    kh = tmp_path / "kh"
    kh.write_text(f"[::1]:443 {random_pin()}\r\n  # comment\r\n\r\nCERTD.Example:8443 "
                  f"{random_pin()}\n\t{host}\t{random_pin()}  {hex_pin(right)} \n")
    enroll(run, certd, out, "--known-hosts", str(kh))


SERVICE_UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                       b"Connection: close\r\n\r\n")


def http_answer(status, body):
    """An HTTP/1.1 answer with a JSON body (bytes or an object)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data


class RecordingTLSServer:
    """A TLS server with its own self-signed key that accepts one connection and records every
    application byte it receives: a client that refuses the key must have sent none. Once the
    whole request is in, it sends answer (503 by default)."""

    def __init__(self, tmp_path, answer=SERVICE_UNAVAILABLE):
        self.answer = answer
        self.ca = CA(cn="impostor")
        cert_file = tmp_path / f"impostor-{id(self)}.pem"
        key_file = tmp_path / f"impostor-{id(self)}.key"
        cert_file.write_bytes(cert_pem(self.ca.cert))
        key_file.write_bytes(key_pem(self.ca.key))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert_file), str(key_file))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.handshake_ok = None
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        conn.settimeout(60)
        try:
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.handshake_ok = True
                while not self._request_complete():
                    data = tls.recv(65536)
                    if not data:
                        break
                    self.received += data
                if self._request_complete():
                    # The whole request was read: the answer cannot race the client's writes.
                    tls.sendall(self.answer)
                    tls.unwrap()
        except (ssl.SSLError, OSError):
            if self.handshake_ok is None:
                self.handshake_ok = False
        finally:
            conn.close()

    def _request_complete(self):
        head, sep, body = self.received.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return len(body) >= length

    def close(self):
        self.thread.join(timeout=120)
        self.sock.close()

    @property
    def pin(self):
        return spki_pin(self.ca.cert)


def test_nothing_sent_before_the_key_is_verified(run, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret-password-1\n")
    url = None
    for args, rc in [(lambda s: ["--pin", random_pin()], 1),
                     (lambda s: ["--known-hosts", str(tmp_path / "none")], 1),
                     (lambda s: ["--pin", spki_pin(s.ca.cert)], 3)]:
        srv = RecordingTLSServer(tmp_path)
        try:
            url = f"https://127.0.0.1:{srv.port}"
            p = run("enroll", url, "--password-file", str(pw), "--out-dir",
                    str(tmp_path / "out"), *args(srv), check_rc=rc)
        finally:
            srv.close()
        if rc == 1:
            # Refused at the handshake: not one application byte, no password.
            assert srv.received == b"", srv.received[:200]
            assert srv.handshake_ok is False
            assert spki_pin(srv.ca.cert) in p.stderr, p.stderr
        else:
            # The control: with the right pin the same server does see the request.
            assert srv.handshake_ok is True
            assert b"Authorization: Basic " in srv.received
            assert "HTTP 503" in p.stderr, p.stderr
        assert "secret-password-1" not in p.stdout + p.stderr
        assert not (tmp_path / "out").exists()


# --- certd's API (remote mode) and mutual TLS by pin ------------------------------------------

MTLS_CONFIG = "[tls]\nclient_auth = optional\nclient_verify = pin\n"


def api_present(certd):
    r = certd.get(PINNED_PEERS)
    if r.status_code == 404:
        pytest.fail("certd has no " + PINNED_PEERS + " yet: the remote tests of certctl pin "
                    "cannot run (issue #6, the lead's part)")
    return ok(r)


def test_remote_pins_and_client_certificate(run, certd_factory, tmp_path):
    c = certd_factory(config=MTLS_CONFIG).start()
    api_present(c)
    server_pin = spki_pin(served_cert(c.port))
    pwfile = tmp_path / "pw"
    pwfile.write_text(c.admin[1] + "\n")
    url = f"https://127.0.0.1:{c.port}"
    admin = ["--url", url, "--pin", server_pin, "--password-file", str(pwfile)]

    assert json.loads(run("pin", "list", "--json", *admin, check_rc=0).stdout) == []
    # add by pin and by certificate (the console's own key, for mutual TLS below).
    other = random_pin()
    p = run("pin", "add", other, "--user", "reader", "--role", "ReadOnly", "--note", "n 1",
            *admin, check_rc=0)
    assert other in p.stdout
    cert_file, cert, key = self_signed(tmp_path, "console", "console.example")
    key_file = tmp_path / "console.key"
    key_file.write_bytes(key_pem(key))
    key_file.chmod(0o600)
    run("pin", "add", "--cert", str(cert_file), "--user", "console", "--role", "Administrator",
        *admin, check_rc=0)
    listed = json.loads(run("pin", "list", "--json", *admin, check_rc=0).stdout)
    assert [(m["Pin"], m["UserName"], m["RoleId"], m["Label"]) for m in listed] == [
        (other, "reader", "ReadOnly", "reader"),
        (spki_pin(cert), "console", "Administrator", "console.example")]
    assert listed[0]["Note"] == "n 1"
    table = run("pin", "list", *admin, check_rc=0).stdout
    assert spki_pin(cert) in table and "console.example" in table
    # The API's answers agree.
    members = ok(c.get(PINNED_PEERS)).json()["Members"]
    assert len(members) == 2

    # Refusals: a duplicate, a bad role name on the server side is caught here first, an
    # unknown id, a wrong password.
    p = run("pin", "add", other, "--user", "x", "--role", "ReadOnly", *admin, check_rc=1)
    assert "HTTP 409" in p.stderr and "already" in p.stderr and "(duplicate)" in p.stderr, p.stderr
    run("pin", "del", "999", *admin, check_rc=4)
    bad = tmp_path / "bad"
    bad.write_text("wrong-password-1\n")
    p = run("pin", "list", "--url", url, "--pin", server_pin, "--password-file", str(bad),
            check_rc=1)
    assert "HTTP 401" in p.stderr

    # Mutual TLS by pin: the pinned console needs no password.
    mtls = ["--url", url, "--pin", server_pin, "--client-cert", str(cert_file), "--client-key",
            str(key_file)]
    listed = json.loads(run("pin", "list", "--json", *mtls, check_rc=0).stdout)
    assert len(listed) == 2
    combined = tmp_path / "combined.pem"
    combined.write_bytes(cert_file.read_bytes() + key_file.read_bytes())
    run("pin", "list", "--url", url, "--pin", server_pin, "--client-cert", str(combined),
        check_rc=0)
    # Deleting the pin this very connection authenticates with: refused unless forced.
    own = next(m["Id"] for m in listed if m["Pin"] == spki_pin(cert))
    p = run("pin", "del", own, *mtls, check_rc=1)
    assert "HTTP 409" in p.stderr and "--force" in p.stderr and "(in-use)" in p.stderr, p.stderr
    run("pin", "del", other, *admin, check_rc=0)
    run("pin", "del", own, "--force", *mtls, check_rc=0)
    assert json.loads(run("pin", "list", "--json", *admin, check_rc=0).stdout) == []
    # The client certificate is no longer pinned: refused (at the handshake or with 401).
    p = run("pin", "list", *mtls, check_rc=None)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "refused the TLS connection over the client certificate" in p.stderr, p.stderr
    assert "PRIVATE" not in p.stdout + p.stderr
    assert c.stop() == 0


def test_remote_wrong_server_pin_sends_nothing(run, certd, tmp_path):
    api_present(certd)
    pwfile = tmp_path / "pw"
    pwfile.write_text(certd.admin[1] + "\n")
    right = spki_pin(served_cert(certd.port))
    wrong = random_pin()
    p = run("pin", "add", random_pin(), "--user", "console", "--role", "Operator", "--url",
            f"https://127.0.0.1:{certd.port}", "--pin", wrong, "--password-file", str(pwfile),
            check_rc=1)
    assert right in p.stderr and wrong in p.stderr
    assert ok(certd.get(PINNED_PEERS)).json()["Members@odata.count"] == 0


# --- review fixes: numeric host names, known-hosts trust, --tofu under a lock, answers -------

def test_numeric_host_names_refused(run, tmp_path):
    """Numbers that inet_aton (and so getaddrinfo) reads as another IPv4 address than the text
    seems to say are refused, in URLs and in known-hosts lines; dotted decimal is fine."""
    pin = random_pin()
    for host in ["010.0.0.1", "2130706433", "127.1", "0x7f.0.0.1", "0x7f000001", "1.2.3.4.",
                 "1.2.3.4.5"]:
        p = run("pin", "list", "--url", f"https://{host}:1", "--pin", pin, stdin="pw-12345\n",
                check_rc=2)
        assert "numbers and dots" in p.stderr and host in p.stderr, (host, p.stderr)
        kh = tmp_path / "kh"
        kh.write_text(f"{host}:443 {pin}\n")
        kh.chmod(0o600)
        p = run("pin", "list", "--url", "https://127.0.0.1:1", "--known-hosts", str(kh),
                stdin="pw-12345\n", check_rc=1)
        assert "line 1" in p.stderr and "numbers and dots" in p.stderr, (host, p.stderr)
    # Names with a letter in a label, and dotted decimal, are still taken (then refused only
    # because nothing listens: exit 3, a connection error).
    kh = tmp_path / "kh"
    kh.write_text(f"1e100.example:443 {pin}\nhost.123a:443 {pin}\n127.0.0.1:1 {pin}\n")
    p = run("pin", "list", "--url", "https://127.0.0.1:1", "--known-hosts", str(kh),
            stdin="pw-12345\n", check_rc=3)
    assert "connect" in p.stderr, p.stderr


def test_known_hosts_file_must_be_safe(run, tmp_path):
    """The known-hosts file decides whom certctl trusts: it must be a regular file, ours (or
    root's), not group/other writable, and is never followed through a symlink."""
    pin = random_pin()
    url = "https://127.0.0.1:1"  # nothing listens: every refusal here comes before connecting
    good = tmp_path / "good"
    good.write_text(f"127.0.0.1:1 {pin}\n")
    good.chmod(0o644)

    def refused(path, word, *extra):
        p = run("pin", "list", "--url", url, "--known-hosts", str(path), *extra,
                stdin="pw-12345\n", check_rc=1)
        assert word in p.stderr and "policy-forbids" in p.stderr, (path, p.stderr)
        return p

    for bits in (0o664, 0o646, 0o622, 0o602):
        f = tmp_path / f"mode-{bits:o}"
        f.write_text(good.read_text())
        f.chmod(bits)
        p = refused(f, f"run chmod 600 {f} (policy-forbids)")
        assert f"mode {bits:03o}" in p.stderr, p.stderr
        refused(f, "may change it", "--tofu")
        assert f.read_text() == good.read_text() and mode(f) == bits
    # A symlink is never followed, whether it points to a good file or nowhere (--tofu must not
    # write through it either).
    link = tmp_path / "link"
    link.symlink_to(good)
    refused(link, "symbolic link")
    refused(link, "symbolic link", "--tofu")
    dangling = tmp_path / "dangling"
    target = tmp_path / "elsewhere"
    dangling.symlink_to(target)
    refused(dangling, "symbolic link", "--tofu")
    assert not target.exists() and os.path.islink(dangling) and os.path.islink(link)
    # Not a regular file: a directory, a FIFO (which must not hang the open).
    refused(tmp_path, "not a regular file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    refused(fifo, "not a regular file", "--tofu")
    # Owned by another user (only root can make one).
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.write_text(good.read_text())
        theirs.chmod(0o644)
        os.chown(theirs, 65534, 65534)
        refused(theirs, "owned by uid 65534")
    # The control: the same text in a safe file is read (exit 3: nothing listens).
    p = run("pin", "list", "--url", url, "--known-hosts", str(good), stdin="pw-12345\n",
            check_rc=3)
    assert "connect" in p.stderr


@contextlib.contextmanager
def known_hosts_locked(kh):
    """Hold the lock certctl takes around a --tofu update (flock of FILE.lock)."""
    fd = os.open(f"{kh}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def wait_for_lock_open(proc, kh):
    """Wait until proc has opened FILE.lock: it then read the file once already (before its
    handshake) and reads it again only once it holds the lock."""
    lock = f"{kh}.lock"

    def opened():
        assert proc.poll() is None, proc.communicate()
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
        except FileNotFoundError:
            return False
        links = []
        for fd in fds:
            try:
                links.append(os.readlink(f"/proc/{proc.pid}/fd/{fd}"))
            except OSError:
                pass
        return lock in links
    wait_for(opened, timeout=60, what=f"certctl to open {lock}")


def start(certctl, *args):
    return subprocess.Popen([certctl, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(p, rc):
    out, err = p.communicate(timeout=120)
    assert p.returncode == rc, (p.returncode, out, err)
    return out, err


def test_tofu_concurrent_runs_all_land(certctl, tmp_path):
    """Several --tofu runs for different hosts at once: each must take the lock (they all wait
    for the one held here) and every line lands, with its own host's pin."""
    kh = tmp_path / "known_hosts"
    kh.write_text("# consoles\n")
    kh.chmod(0o640)
    pw = tmp_path / "pw"
    pw.write_text("secret-password-1\n")
    servers = [RecordingTLSServer(tmp_path) for _ in range(6)]
    procs = []
    try:
        with known_hosts_locked(kh):
            for srv in servers:
                procs.append(start(certctl, "pin", "list", "--url",
                                   f"https://127.0.0.1:{srv.port}", "--known-hosts", str(kh),
                                   "--tofu", "--password-file", str(pw)))
            for p in procs:
                wait_for_lock_open(p, kh)
            # Nothing recorded while the lock is held, and no request sent yet.
            assert kh.read_text() == "# consoles\n"
            assert all(srv.received == b"" for srv in servers)
        for p, srv in zip(procs, servers):
            # Each server answers 503 once it has the request: recorded, then sent.
            _, err = finish(p, 3)
            assert f"recorded pin {srv.pin} for 127.0.0.1:{srv.port}" in err, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for srv in servers:
            srv.close()
    lines = kh.read_text().splitlines()
    assert lines[0] == "# consoles"
    assert sorted(lines[1:]) == sorted(f"127.0.0.1:{srv.port} {srv.pin}" for srv in servers)
    assert mode(kh) == 0o640
    assert all(b"Authorization: Basic " in srv.received for srv in servers)


def test_tofu_rereads_the_file_under_the_lock(certctl, certd, tmp_path):
    """What another run recorded while this one waited for the lock decides: the same pin is
    used as it is (nothing appended), another pin is refused (nothing sent or written), and a
    symlink planted meanwhile is refused, not written through."""
    right = spki_pin(served_cert(certd.port))
    host = f"127.0.0.1:{certd.port}"
    url = f"https://{host}"
    kh = tmp_path / "known_hosts"
    pw = tmp_path / "pw"
    pw.write_text(certd.admin[1] + "\n")

    def run_while_locked(text_or_link, out):
        """Start enroll --tofu on an absent file; put text_or_link in place while it waits."""
        if os.path.lexists(kh):
            os.unlink(kh)
        with known_hosts_locked(kh):
            p = start(certctl, "enroll", url, "--out-dir", str(out), "--known-hosts", str(kh),
                      "--tofu", "--password-file", str(pw))
            wait_for_lock_open(p, kh)
            if isinstance(text_or_link, str):
                kh.write_text(text_or_link)
                kh.chmod(0o600)
            else:
                kh.symlink_to(text_or_link)
        return p

    # Another run recorded the same pin: taken, not appended again.
    text = f"other.example:443 {random_pin()}\n{host} {right}\n"
    out = tmp_path / "same"
    _, err = finish(run_while_locked(text, out), 0)
    assert "recorded" not in err and err == "", err
    assert kh.read_text() == text and (out / "client.pem").exists()

    # Another run recorded a different pin: refused as any pin that does not match.
    wrong = random_pin()
    text = f"{host} {wrong}\n"
    out = tmp_path / "different"
    _, err = finish(run_while_locked(text, out), 1)
    assert right in err and wrong in err and f"{kh} line 1" in err, err
    assert "policy-forbids" in err and certd.admin[1] not in err
    assert kh.read_text() == text and not out.exists()

    # A symlink planted meanwhile: refused; its target is not created.
    target = tmp_path / "elsewhere"
    out = tmp_path / "link"
    _, err = finish(run_while_locked(target, out), 1)
    assert "symbolic link" in err, err
    assert not target.exists() and os.path.islink(kh) and not out.exists()


def test_answers_bounded_and_conflicts_named(run, tmp_path):
    """A JSON answer is bounded before it is parsed; a 409 says what the conflict is."""
    pw = tmp_path / "pw"
    pw.write_text("secret-password-1\n")
    member = {"@odata.id": PINNED_PEERS + "/1"}
    cases = [
        # (operation, answer, exit code, words)
        (["list"], http_answer(200, b'{"Members":' + b"[" * 17 + b"]" * 17 + b"}"), 3,
         ["nests deeper than 16", "signer-failed"]),
        (["list"], http_answer(200, {"Members": [0] * 5000}), 3, ["4096 JSON values"]),
        # 1001 links pass the bounds (1000 is the store's limit): refused by count after.
        (["list"], http_answer(200, {"Members": [member] * 1001}), 3, ["more than 1000"]),
        (["del", "5"], http_answer(409, {"error": {"code": "Base.1.5.0.GeneralError",
                                                   "message": "pin id 5 is the key of this "
                                                              "request's own client "
                                                              "certificate"}}),
         1, ["HTTP 409", "(in-use)", "--force"]),
        (["add", random_pin(), "--user", "u", "--role", "ReadOnly"],
         http_answer(409, {"error": {"code": "Base.1.5.0.GeneralError",
                                     "message": "pin x is already in the store as id 3"}}),
         1, ["HTTP 409", "(duplicate)"]),
        (["add", random_pin(), "--user", "u", "--role", "ReadOnly"],
         http_answer(409, {"error": {"code": "Base.1.5.0.GeneralError", "message": "full",
                                     "@Message.ExtendedInfo": [
                                         {"MessageId": "Base.1.5.0.CreateLimitReachedForResource",
                                          "Message": "The create operation failed because "
                                                     "the resource has reached the limit."}]}}),
         1, ["HTTP 409", "(limit-reached)"]),
        # An error body over the bounds loses only its words.
        (["del", "5"], http_answer(409, b"[" * 40 + b"]" * 40), 1, ["HTTP 409", "(in-use)"]),
    ]
    for op, answer, rc, words in cases:
        srv = RecordingTLSServer(tmp_path, answer=answer)
        try:
            p = run("pin", *op, "--url", f"https://127.0.0.1:{srv.port}", "--pin", srv.pin,
                    "--password-file", str(pw), check_rc=rc)
        finally:
            srv.close()
        for w in words:
            assert w in p.stderr, (op, w, p.stderr)
        assert srv.handshake_ok and b"Authorization: Basic " in srv.received
    # certd's own 409s: a duplicate and the pin a connection uses are told apart by the code
    # in test_remote_pins_and_client_certificate.
