# SPDX-License-Identifier: Apache-2.0
"""certctl ca (certd's local CA from the command line, on the state directory of a running
certd) and certctl enroll (a console's whole SignCSR flow over HTTPS), issue #4. What certctl
makes is checked with openssl and through certd's own Redfish view of the issuance log."""
import json
import os
import pwd
import re
import socket
import stat
import subprocess
import threading

import pytest
from conftest import _free_port, ok, wait_for
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_URI = "/redfish/v1/Oem/Certd/CertificateAuthority"
ISSUED = CA_URI + "/IssuedCertificates"
CRL_PATH = CA_URI + "/CRL"
SIGN = "/ibm/v1/Host/Actions/SignCSR"
# certd's HTTPS certificate names the configured host; "localhost" resolves to the loopback
# address certd listens on, so --cacert can be checked with the name matching.
LOCALHOST_CONFIG = "[server]\nhostname = localhost\n"


def openssl(*args, input=None, check=True):
    p = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=60)
    if check:
        assert p.returncode == 0, (args, p.stderr.decode(errors="replace"))
    return p


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def console_csr(tmp_path, name="console", cn="hmc.example", key="ec:P-256", addext=()):
    """A key and CSR made with the openssl CLI: (CSR path, CSR PEM)."""
    keyfile = tmp_path / f"{name}.key"
    alg, _, param = key.partition(":")
    opt = f"ec_paramgen_curve:{param}" if alg == "ec" else f"rsa_keygen_bits:{param}"
    openssl("genpkey", "-algorithm", alg.upper(), "-pkeyopt", opt, "-out", str(keyfile))
    args = ["req", "-new", "-key", str(keyfile), "-subj", f"/CN={cn}"]
    for a in addext:
        args += ["-addext", a]
    csr = openssl(*args).stdout.decode()
    path = tmp_path / f"{name}.csr"
    path.write_text(csr)
    return path, csr


def serial_of(pem):
    return format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "X")


def pem_certs(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", text, re.S)


@pytest.fixture
def daemon(certd_factory):
    c = certd_factory().start()
    yield c
    assert c.stop() == 0, c.log()


def ca(run, certd, *args, **kw):
    """certctl ca on certd's state directory (and its configuration file, if any)."""
    where = ["--state-dir", certd.state_dir]
    if certd.config_path:
        where += ["--config", certd.config_path]
    return run("ca", *where, *args, **kw)


def crl_text(path, der=False):
    args = ["crl", "-in", str(path), "-noout", "-text"]
    if der:
        args += ["-inform", "DER"]
    return openssl(*args).stdout.decode()


def crl_number(text):
    m = re.search(r"CRL Number:\s*\n\s*(\d+)", text)
    assert m, text
    return int(m.group(1))


# --- certctl ca -------------------------------------------------------------------------------

def test_ca_sign_list_revoke_crl_while_certd_runs(run, daemon, tmp_path):
    c = daemon
    root = tmp_path / "root.pem"
    root.write_text(ok(c.get("/ibm/v1/Host/Certificate/root")).json()["Certificate"])

    # An empty log: the header only, and an empty JSON array.
    p = ca(run, c, "list", check_rc=0)
    assert p.stdout.split() == ["SERIAL", "STATUS", "NOT_AFTER", "SUBJECT"]
    assert json.loads(ca(run, c, "list", "--json", check_rc=0).stdout) == []

    # sign: the certificate on stdout, as certd's SignCSR makes it, recorded as the local user.
    csr_a, _ = console_csr(tmp_path, "a", cn="a.example",
                           addext=["subjectAltName=DNS:a.example,IP:192.0.2.7"])
    p = ca(run, c, "sign", str(csr_a), check_rc=0)
    assert len(pem_certs(p.stdout)) == 1
    (tmp_path / "a.pem").write_text(p.stdout)
    openssl("verify", "-CAfile", str(root), str(tmp_path / "a.pem"))
    cert_a = x509.load_pem_x509_certificate(p.stdout.encode())
    assert cert_a.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a.example"
    eku = cert_a.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert_a.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    serial_a = serial_of(p.stdout)
    rec = ok(c.get(f"{ISSUED}/{serial_a}")).json()
    assert rec["Status"] == "Valid"
    assert rec["Requester"] == "local:" + pwd.getpwuid(os.geteuid()).pw_name

    # sign --out --chain --requester: the file holds certificate and CA; the serial is printed.
    csr_b, _ = console_csr(tmp_path, "b", cn="b.example")
    out = tmp_path / "b-chain.pem"
    p = ca(run, c, "sign", str(csr_b), "--out", str(out), "--chain", "--requester", "tester",
           check_rc=0)
    serial_b = p.stdout.strip()
    certs = pem_certs(out.read_text())
    assert len(certs) == 2 and certs[1] == root.read_text()
    assert serial_of(certs[0]) == serial_b
    assert mode(out) == 0o644
    assert ok(c.get(f"{ISSUED}/{serial_b}")).json()["Requester"] == "tester"
    (tmp_path / "b.pem").write_text(certs[0])

    # certd's Redfish view of the log sees what certctl signed.
    members = ok(c.get(ISSUED)).json()["Members"]
    assert {m["@odata.id"].rsplit("/", 1)[1] for m in members} == {serial_a, serial_b}

    # list, text and JSON.
    # (Oldest first; certificates issued within one second come in serial order.)
    lines = ca(run, c, "list", check_rc=0).stdout.splitlines()
    assert len(lines) == 3
    rows = {ln.split()[0]: ln for ln in lines[1:]}
    assert rows[serial_a].split()[1] == "valid" and rows[serial_b].split()[1] == "valid"
    assert rows[serial_a].endswith(" CN=a.example") and rows[serial_b].endswith(" CN=b.example")
    assert rows[serial_a].split()[2] == cert_a.not_valid_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = {e["serial"]: e for e in json.loads(ca(run, c, "list", "--json",
                                                      check_rc=0).stdout)}
    assert set(entries) == {serial_a, serial_b}
    ea, eb = entries[serial_a], entries[serial_b]
    assert ea["status"] == "valid" and ea["revocation_reason"] is None
    assert ea["revoked_at"] is None and ea["subject"] == "CN=a.example"
    assert ea["alternative_names"] == "DNS:a.example, IP:192.0.2.7"
    assert eb["requester"] == "tester"
    assert ea["not_after"] == cert_a.not_valid_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ea["not_before"] == cert_a.not_valid_before.strftime("%Y-%m-%dT%H:%M:%SZ")

    # revoke: the new CRL's number is printed, and the CRL holds the serial with its reason.
    p = ca(run, c, "revoke", serial_a.lower(), "--reason", "keyCompromise", check_rc=0)
    number = int(p.stdout.strip())
    pem = ca(run, c, "crl", check_rc=0).stdout
    assert pem.startswith("-----BEGIN X509 CRL-----")
    (tmp_path / "crl.pem").write_text(pem)
    text = crl_text(tmp_path / "crl.pem")
    assert crl_number(text) == number
    assert serial_a in text.replace(":", "").upper()
    assert serial_b not in text.replace(":", "").upper()
    assert "Key Compromise" in text
    bad = openssl("verify", "-crl_check", "-CAfile", str(root), "-CRLfile",
                  str(tmp_path / "crl.pem"), str(tmp_path / "a.pem"), check=False)
    assert bad.returncode != 0 and b"revoked" in bad.stdout + bad.stderr
    openssl("verify", "-crl_check", "-CAfile", str(root), "-CRLfile", str(tmp_path / "crl.pem"),
            str(tmp_path / "b.pem"))
    assert ok(c.get(f"{ISSUED}/{serial_a}")).json()["Status"] == "Revoked"
    # crl --der: the state directory's file as it is.
    ca(run, c, "crl", "--der", "--out", str(tmp_path / "crl.der"), check_rc=0)
    with open(os.path.join(c.state_dir, "ca", "crl.der"), "rb") as f:
        assert (tmp_path / "crl.der").read_bytes() == f.read()
    assert crl_number(crl_text(tmp_path / "crl.der", der=True)) == number

    # list --revoked
    entries = json.loads(ca(run, c, "list", "--json", "--revoked", check_rc=0).stdout)
    assert [e["serial"] for e in entries] == [serial_a]
    assert entries[0]["status"] == "revoked"
    assert entries[0]["revocation_reason"] == "keyCompromise"
    lines = ca(run, c, "list", "--revoked", check_rc=0).stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[:2] == [serial_a, "revoked"]

    # Refusals, each before a new CRL is made.
    p = ca(run, c, "revoke", serial_a, check_rc=1)
    assert "already revoked" in p.stderr
    p = ca(run, c, "revoke", "ABCDEF", check_rc=4)
    assert "not in the issuance log" in p.stderr
    p = ca(run, c, "revoke", "not-hex", check_rc=1)
    assert "not a serial" in p.stderr
    p = ca(run, c, "revoke", serial_b, "--reason", "bored", check_rc=2)
    assert "keyCompromise" in p.stderr
    assert crl_number(crl_text(os.path.join(c.state_dir, "ca", "crl.der"), der=True)) == number

    # certd serves a CRL at least as new as the one certctl wrote, with the revocation: the
    # file itself once inotify told it, or one it made from the log when asked first (which
    # rewrites the file: so only after the checks of the file above).
    served = lambda: x509.load_der_x509_crl(c.get(CRL_PATH, auth=None).content)  # noqa: E731
    wait_for(lambda: served().extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number >= number, what="certd serving certctl's CRL")
    assert served().get_revoked_certificate_by_serial_number(int(serial_a, 16)) is not None

    # crl --refresh makes a newer CRL with the same revocations.
    pem = ca(run, c, "crl", "--refresh", check_rc=0).stdout
    (tmp_path / "crl2.pem").write_text(pem)
    text = crl_text(tmp_path / "crl2.pem")
    assert crl_number(text) > number
    assert serial_a in text.replace(":", "").upper()

    # Bad CSRs: refused with the reason, nothing recorded.
    rsa, _ = console_csr(tmp_path, "weak", key="rsa:1024")
    p = ca(run, c, "sign", str(rsa), check_rc=1)
    assert "2048" in p.stderr and "BEGIN" not in p.stdout
    cak, _ = console_csr(tmp_path, "ca", addext=["basicConstraints=critical,CA:TRUE"])
    p = ca(run, c, "sign", str(cak), check_rc=1)
    assert "CA" in p.stderr
    garbage = tmp_path / "garbage.csr"
    garbage.write_text("this is not a CSR\n")
    p = ca(run, c, "sign", str(garbage), check_rc=1)
    assert "not a PEM certificate request" in p.stderr, p.stderr
    for name, text, word in (("two", csr_a.read_text() * 2, "more than one CSR"),
                             ("junk", csr_a.read_text() + "junk\n", "after the CSR")):
        f = tmp_path / f"{name}.csr"
        f.write_text(text)
        p = ca(run, c, "sign", str(f), check_rc=1)
        assert word in p.stderr and "BEGIN" not in p.stdout, (name, p.stderr)
    big = tmp_path / "big.csr"
    big.write_text(csr_a.read_text() + " " * 17000)
    p = ca(run, c, "sign", str(big), check_rc=1)
    assert "16384" in p.stderr
    ca(run, c, "sign", str(tmp_path / "missing.csr"), check_rc=4)
    assert len(json.loads(ca(run, c, "list", "--json", check_rc=0).stdout)) == 2

    # The CSR from standard input; certd itself still signs (the log is shared, not locked).
    _, csr_text = console_csr(tmp_path, "stdin", cn="stdin.example")
    p = ca(run, c, "sign", "-", stdin=csr_text, check_rc=0)
    serial_c = serial_of(p.stdout)
    r = ok(c.post(SIGN, json={"CsrString": console_csr(tmp_path, "http")[1]}))
    serial_d = serial_of(r.json()["Certificate"])
    serials = [e["serial"] for e in json.loads(ca(run, c, "list", "--json", check_rc=0).stdout)]
    assert sorted(serials) == sorted([serial_a, serial_b, serial_c, serial_d])
    assert ok(c.get(ISSUED)).json()["Members@odata.count"] == 4


def test_ca_with_configuration_file(run, certd_factory, tmp_path):
    """--config and --state-dir find the same files as certd given the same options."""
    c = certd_factory(config=LOCALHOST_CONFIG).start()
    csr, _ = console_csr(tmp_path)
    p = ca(run, c, "sign", str(csr), check_rc=0)
    serial = serial_of(p.stdout)
    assert ok(c.get(f"{ISSUED}/{serial}")).json()["Status"] == "Valid"
    entries = json.loads(ca(run, c, "list", "--json", check_rc=0).stdout)
    assert [e["serial"] for e in entries] == [serial]
    # The options may also follow the operation.
    p = run("ca", "list", "--json", "--config", c.config_path, "--state-dir", c.state_dir,
            check_rc=0)
    assert [e["serial"] for e in json.loads(p.stdout)] == [serial]
    assert c.stop() == 0


def test_ca_refuses_exec_signer(run, tmp_path):
    conf = tmp_path / "exec.conf"
    conf.write_text("[ca]\nsigner = exec:/bin/true\n")
    state = tmp_path / "state"
    state.mkdir()
    for args in (["list"], ["sign", str(conf)], ["revoke", "01"], ["crl"], ["crl", "--refresh"]):
        p = run("ca", "--config", str(conf), "--state-dir", str(state), *args, check_rc=1)
        assert "signer is exec" in p.stderr and "signer = local" in p.stderr, (args, p.stderr)
    assert os.listdir(state) == []


def test_ca_never_makes_a_root(run, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    csr, _ = console_csr(tmp_path)
    for args in (["list"], ["sign", str(csr)], ["revoke", "01"], ["crl"], ["crl", "--refresh"]):
        p = run("ca", "--state-dir", str(state), *args, check_rc=4)
        assert "run certd once first (it makes the root)" in p.stderr, (args, p.stderr)
    assert os.listdir(state) == []
    # A missing half of a configured pair is named.
    conf = tmp_path / "ca.conf"
    conf.write_text(f"[ca]\ncert = {tmp_path}/ca.pem\nkey = {tmp_path}/ca-key.pem\n")
    (tmp_path / "ca.pem").write_text("x")
    p = run("ca", "--config", str(conf), "--state-dir", str(state), "list", check_rc=4)
    assert "ca-key.pem does not exist" in p.stderr


def test_ca_usage_errors(run, tmp_path):
    cases = [
        ["ca"],
        ["ca", "bogus"],
        ["ca", "--bogus", "list"],
        ["ca", "sign"],
        ["ca", "sign", "a.csr", "b.csr"],
        ["ca", "sign", "a.csr", "--requester", ""],
        ["ca", "sign", "a.csr", "--requester", "a\x01b"],
        ["ca", "revoke"],
        ["ca", "revoke", "01", "02"],
        ["ca", "revoke", "01", "--reason", "bored"],
        ["ca", "list", "extra"],
        ["ca", "list", "--bogus"],
        ["ca", "crl", "--pem", "--der"],
        ["ca", "crl", "extra"],
    ]
    for args in cases:
        p = run(*args, check_rc=2)
        assert "certctl ca" in p.stderr and "--help" in p.stderr, (args, p.stderr)
    for op in ("sign", "revoke", "list", "crl"):
        p = run("ca", op, "--help", check_rc=0)
        assert p.stdout.startswith("Usage: certctl ca"), op
    assert "enroll URL" in run("--help", check_rc=0).stdout
    assert "ca OPERATION" in run("--help", check_rc=0).stdout


# --- certctl enroll ---------------------------------------------------------------------------

def enroll(run, url, *args, password=None, stdin=None, **kw):
    if password is not None:
        stdin = password + "\n"
    return run("enroll", url, *args, stdin=stdin, **kw)


def check_enrolled(out_dir, password):
    """The three files, their modes, the chain and the key: checked with openssl."""
    key, cert, root = (os.path.join(out_dir, n) for n in ("client.key", "client.pem", "ca.pem"))
    assert mode(key) == 0o600
    assert mode(cert) == 0o644 and mode(root) == 0o644
    openssl("verify", "-CAfile", root, "-purpose", "sslclient", cert)
    pub_key = openssl("pkey", "-in", key, "-pubout").stdout
    pub_cert = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
    assert pub_key == pub_cert
    with open(cert) as f:
        text = f.read()
    assert len(pem_certs(text)) == 1
    assert password not in open(key).read()
    return x509.load_pem_x509_certificate(text.encode())


@pytest.mark.parametrize("form", ["ibm", "vmi"])
def test_enroll(run, certd_factory, tmp_path, form):
    c = certd_factory(config=LOCALHOST_CONFIG).start()
    pw = c.admin[1]
    root = ok(c.get("/ibm/v1/Host/Certificate/root")).json()["Certificate"]

    # --insecure to 127.0.0.1 (the HTTPS certificate names localhost): it works, and says so.
    out = tmp_path / "insecure"
    p = enroll(run, f"https://127.0.0.1:{c.port}", "--insecure", "--form", form, "--out-dir",
               str(out), "--san", "hmc.example", "--san", "192.0.2.9", password=pw, check_rc=0)
    assert "--insecure" in p.stderr and "not verified" in p.stderr
    assert pw not in p.stdout + p.stderr and "PRIVATE" not in p.stdout + p.stderr
    cert = check_enrolled(str(out), pw)
    assert (out / "ca.pem").read_text() == root
    assert mode(out) == 0o700
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == socket.gethostname()[:64]  # the host name, cut to a CN's 64 characters
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hmc.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.9"]
    serial = format(cert.serial_number, "X")
    assert ok(c.get(f"{ISSUED}/{serial}")).json()["Requester"] == "admin"

    # --cacert with the name matching; the password from a file; an RSA key, a chosen CN.
    pwfile = tmp_path / "pw"
    pwfile.write_text(pw + "\n")
    out = tmp_path / "verified"
    p = run("enroll", f"https://localhost:{c.port}/", "--cacert",
            os.path.join(c.state_dir, "https", "cert.pem"), "--password-file", str(pwfile),
            "--user", "admin", "--form", form, "--key-alg", "rsa:2048", "--cn", "console.example",
            "--out-dir", str(out), check_rc=0)
    assert p.stderr == "" and p.stdout == ""
    cert = check_enrolled(str(out), pw)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "console.example"
    assert cert.public_key().key_size == 2048
    key = serialization.load_pem_private_key((out / "client.key").read_bytes(), None)
    assert key.key_size == 2048
    assert ok(c.get(ISSUED)).json()["Members@odata.count"] == 2
    assert c.stop() == 0


def test_enroll_errors(run, certd_factory, tmp_path):
    c = certd_factory(config=LOCALHOST_CONFIG).start()
    pw = c.admin[1]
    url = f"https://127.0.0.1:{c.port}"
    https_cert = os.path.join(c.state_dir, "https", "cert.pem")
    out = tmp_path / "out"

    # A ReadOnly user may not sign: 403 with the server's message.
    c.add_user("reader", "ReadOnly", "reader-password-1")
    for form in ("ibm", "vmi"):
        p = enroll(run, url, "--insecure", "--user", "reader", "--out-dir", str(out), "--form",
                   form, password="reader-password-1", check_rc=1)
        assert "HTTP 403" in p.stderr and "Administrator" in p.stderr, p.stderr
        # The server's own words follow (Redfish's message, or phosphor-rest's description).
        assert re.search(r"HTTP 403: [^:]+: \S", p.stderr), p.stderr
    # Nobody listening.
    p = enroll(run, f"https://127.0.0.1:{_free_port()}", "--insecure", "--out-dir", str(out),
               password=pw, check_rc=3)
    assert "cannot connect" in p.stderr and "refused" in p.stderr, p.stderr
    # --cacert of an unrelated CA (certd's own CA root did not sign its HTTPS certificate).
    p = enroll(run, f"https://localhost:{c.port}", "--cacert",
               os.path.join(c.state_dir, "ca", "ca.pem"), "--out-dir", str(out), password=pw,
               check_rc=1)
    assert "did not verify" in p.stderr and "certificate" in p.stderr, p.stderr
    # The right CA, but the URL names 127.0.0.1 and the certificate names localhost.
    p = enroll(run, url, "--cacert", https_cert, "--out-dir", str(out), password=pw, check_rc=1)
    assert "did not verify" in p.stderr and "IP address mismatch" in p.stderr, p.stderr
    # A URL where no SignCSR lives: 404.
    p = enroll(run, url + "/nothing", "--insecure", "--out-dir", str(out), password=pw,
               check_rc=4)
    assert "HTTP 404" in p.stderr, p.stderr
    # Not TLS at all (a plain TCP server that closes at once).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]

        def serve():
            conn, _ = s.accept()
            conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
            conn.close()

        t = threading.Thread(target=serve)
        t.start()
        p = enroll(run, f"https://127.0.0.1:{port}", "--insecure", "--out-dir", str(out),
                   password=pw, check_rc=3)
        t.join(timeout=60)
        assert "TLS with" in p.stderr, p.stderr
    # Wrong password last: failed logins slow this address down.
    p = enroll(run, url, "--insecure", "--out-dir", str(out), password="wrong-password-1",
               check_rc=1)
    assert "HTTP 401" in p.stderr and "password" in p.stderr, p.stderr
    assert "wrong-password-1" not in p.stdout + p.stderr
    assert not out.exists()
    assert ok(c.get(ISSUED)).json()["Members@odata.count"] == 0
    assert c.stop() == 0


def test_enroll_usage_errors(run, tmp_path):
    url = "https://127.0.0.1:1"
    cases = [
        (["enroll"], None),
        (["enroll", "http://127.0.0.1"], "https"),
        (["enroll", "https://admin@127.0.0.1"], "--user"),
        (["enroll", "https://127.0.0.1:99999"], "port"),
        (["enroll", "https://127.0.0.1:x"], "port"),
        (["enroll", "https://[::1"], "IPv6"),
        (["enroll", "https://[zz]:1"], "IPv6"),
        (["enroll", "https://a b"], "host"),
        (["enroll", "https://h/p?q=1"], "query"),
        (["enroll", url, "extra"], "unexpected"),
        (["enroll", url, "--cacert", "x", "--insecure"], "exclude"),
        (["enroll", url, "--form", "soap"], "--form"),
        (["enroll", url, "--key-alg", "rsa:1024"], "--key-alg"),
        (["enroll", url, "--key-alg", "dsa"], "--key-alg"),
        (["enroll", url, "--user", "a:b"], "--user"),
        (["enroll", url, "--bogus"], None),
    ]
    for args, word in cases:
        p = run(*args, stdin="password-1234\n", check_rc=2)
        assert "certctl enroll" in p.stderr, (args, p.stderr)
        if word:
            assert word in p.stderr, (args, p.stderr)
    p = run("enroll", url, "--insecure", stdin="\n", check_rc=2)
    assert "empty" in p.stderr
    assert run("enroll", "--help", check_rc=0).stdout.startswith("Usage: certctl enroll")
