# SPDX-License-Identifier: Apache-2.0
"""certd's CA and SignCSR (issue #4), as a management console uses them: a key and CSR made
with the openssl CLI, SignCSR over HTTPS, the answer checked with `openssl verify`, and then
a mutually authenticated TLS session with `openssl s_server -Verify` that trusts only the root.
The same with the exec signer and the sample helper. Every rejection the issue names; the
issuance log (revocation, CRL checked with `openssl crl` and `openssl verify -crl_check`,
restart, concurrency, serial uniqueness)."""
import base64
import concurrent.futures
import json
import os
import re
import socket
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import Client, _free_port, ok
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SIGN = "/ibm/v1/Host/Actions/SignCSR"
ROOT = "/ibm/v1/Host/Certificate/root"
VMI = "/ibm/v1/VMInterface/SignCSR"
HMC = "/xyz/openbmc_project/HMC/VMInterface/SignCSR"
CA_URI = "/redfish/v1/Oem/Certd/CertificateAuthority"
ISSUED = CA_URI + "/IssuedCertificates"
REVOKE = CA_URI + "/Actions/CertdCertificateAuthority.Revoke"
CRL = CA_URI + "/CRL"
HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                      "openssl-signer")


def openssl(*args, input=None, check=True):
    p = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=60)
    if check:
        assert p.returncode == 0, (args, p.stderr.decode(errors="replace"))
    return p


def console_csr(tmp_path, name="console", cn="hmc.example", key="ec:P-256", subj_extra="",
                addext=None):
    """A key and CSR as a console makes them with the openssl CLI: (key path, CSR PEM)."""
    keyfile = tmp_path / f"{name}.key"
    alg, _, param = key.partition(":")
    if alg == "ec":
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{param}",
                "-out", str(keyfile))
    elif alg == "rsa":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{param}",
                "-out", str(keyfile))
    else:
        openssl("genpkey", "-algorithm", alg, "-out", str(keyfile))
    args = ["req", "-new", "-key", str(keyfile), "-subj", f"/CN={cn}{subj_extra}"]
    for a in addext or ():
        args += ["-addext", a]
    csr = openssl(*args).stdout.decode()
    return keyfile, csr


def sign(certd, csr, auth="admin"):
    return certd.post(SIGN, json={"CsrString": csr}, auth=auth)


def pem_certs(text):
    return re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", text, re.S)


@pytest.fixture
def ca_certd(certd_factory):
    c = certd_factory().start()
    yield c
    assert c.stop() == 0


def root_pem(certd):
    return ok(certd.get(ROOT)).json()["Certificate"]


# --- the console's flow -----------------------------------------------------------------------

def test_console_flow_and_mutual_tls(ca_certd, tmp_path):
    c = ca_certd
    keyfile, csr = console_csr(tmp_path, addext=["subjectAltName=DNS:hmc.example,IP:192.0.2.7"])
    r = ok(sign(c, csr))
    client_pem = r.json()["Certificate"]
    assert len(pem_certs(client_pem)) == 1
    root = root_pem(c)
    (tmp_path / "root.pem").write_text(root)
    (tmp_path / "client.pem").write_text(client_pem)
    openssl("verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "client.pem"))

    # The root: what the issue asks of it.
    rc = x509.load_pem_x509_certificate(root.encode())
    bc = rc.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = rc.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    assert isinstance(rc.public_key(), ec.EllipticCurvePublicKey)
    assert rc.public_key().curve.name == "secp384r1"
    life = rc.not_valid_after - rc.not_valid_before
    assert 3649 <= life.days <= 3651
    ski = rc.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    # The client certificate: the console profile.
    cc = x509.load_pem_x509_certificate(client_pem.encode())
    assert cc.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "hmc.example"
    assert cc.issuer == rc.subject
    assert not cc.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cku = cc.extensions.get_extension_for_class(x509.KeyUsage).value
    assert cku.digital_signature and not cku.key_encipherment and not cku.key_cert_sign
    eku = cc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cc.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hmc.example"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    aki = cc.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cc.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert 0 < cc.serial_number < 2 ** 128 and cc.serial_number.bit_length() > 64
    days = (cc.not_valid_after - cc.not_valid_before).days
    assert 364 <= days <= 365

    # The mutual TLS session the console opens with it, against a server that trusts only
    # the root.
    mutual_tls(tmp_path, root_file=tmp_path / "root.pem", cert_file=tmp_path / "client.pem",
               key_file=keyfile)


def mutual_tls(tmp_path, root_file, cert_file, key_file):
    """A TLS server that demands a client certificate and trusts only root_file (openssl
    s_server -Verify), and a client presenting cert_file: the server's echo comes back."""
    skey, scert = tmp_path / "srv.key", tmp_path / "srv.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(skey), "-out", str(scert), "-subj", "/CN=vmi.example", "-days", "1",
            "-addext", "subjectAltName=DNS:vmi.example")
    port = _free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert",
                            str(scert), "-key", str(skey), "-Verify", "1", "-CAfile",
                            str(root_file), "-verify_return_error", "-naccept", "1", "-rev"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        line = b""
        while b"ACCEPT" not in line:
            line = srv.stdout.readline()
            assert line, "openssl s_server did not start"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(str(scert))
        ctx.load_cert_chain(str(cert_file), str(key_file))
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="vmi.example") as s:
                s.sendall(b"hello vmi\n")
                reply = b""
                while b"\n" not in reply:
                    chunk = s.recv(100)
                    if not chunk:
                        break
                    reply += chunk
        assert reply.strip() == b"imv olleh", reply
    finally:
        srv.kill()
        out = srv.communicate(timeout=20)[0].decode(errors="replace")
    assert "verify error" not in out, out


@pytest.mark.parametrize("path", [VMI, HMC])
@pytest.mark.parametrize("form", ["list", "list-of-object", "object"])
def test_seed_forms(ca_certd, tmp_path, path, form):
    _, csr = console_csr(tmp_path)
    body = {"list": {"data": [csr]}, "list-of-object": {"data": [{"CsrString": csr}]},
            "object": {"CsrString": csr}}[form]
    r = ca_certd.post(path, json=body)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["status"] == "ok" and j["message"] == "200 OK"
    assert isinstance(j["data"], list) and len(j["data"]) == 1
    certs = pem_certs(j["data"][0])
    assert len(certs) == 2
    assert certs[1] == root_pem(ca_certd)
    (tmp_path / "root.pem").write_text(certs[1])
    (tmp_path / "c.pem").write_text(certs[0])
    openssl("verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "c.pem"))


def test_ibm_resources(ca_certd):
    root = ok(ca_certd.get("/ibm/v1/")).json()
    assert root["Certificate"]["@odata.id"] == "/ibm/v1/Host/Certificate"
    cert = ok(ca_certd.get("/ibm/v1/Host/Certificate")).json()
    assert cert["Actions"]["#SignCSR"]["target"] == SIGN
    assert cert["root"]["@odata.id"] == ROOT
    ca = ok(ca_certd.get(CA_URI)).json()
    assert ca["Signer"] == "local"
    assert ca["CertificateString"] == root_pem(ca_certd)
    assert ca["CRL"]["@odata.id"] == CRL


# --- rejections -------------------------------------------------------------------------------

def tampered(csr):
    """The same CSR with one byte of its signature changed."""
    der = x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER)
    der = der[:-3] + bytes([der[-3] ^ 0x01]) + der[-2:]
    b64 = base64.b64encode(der).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE REQUEST-----\n" + "\n".join(lines) + \
        "\n-----END CERTIFICATE REQUEST-----\n"


def test_rejections(ca_certd, tmp_path):
    c = ca_certd
    _, good = console_csr(tmp_path, "good")
    cases = [
        ("rsa-1024", console_csr(tmp_path, "r1", key="rsa:1024")[1], "2048"),
        ("secp256k1", console_csr(tmp_path, "k1", key="ec:secp256k1")[1], "curve"),
        ("ed25519", console_csr(tmp_path, "ed", key="ED25519")[1], "Ed25519"),
        ("ca-true", console_csr(tmp_path, "ca", addext=["basicConstraints=critical,CA:TRUE"])[1],
         "CA"),
        ("key-usage", console_csr(tmp_path, "ku", addext=["keyUsage=keyCertSign"])[1],
         "keyCertSign"),
        ("email-san", console_csr(tmp_path, "em", addext=["subjectAltName=email:a@b.example"])[1],
         "email"),
        ("no-cn", openssl("req", "-new", "-key", str(console_csr(tmp_path, "nc")[0]), "-subj",
                          "/O=console").stdout.decode(), "CN"),
        ("too-large", good + " " * (17 * 1024), "16384"),
        ("not-pem", "this is not a CSR", "not a PEM certificate request"),
        ("two-csrs", good + good, "more than one CSR"),
        ("trailing-junk", good + "junk\n", "after the CSR"),
        ("bad-signature", tampered(good), "signature"),
        ("a-certificate", root_pem(c), None),
        ("empty", "", "empty"),
    ]
    before = ok(c.get(ISSUED)).json()["Members@odata.count"]
    for name, csr, word in cases:
        r = sign(c, csr)
        assert r.status_code == 400, (name, r.status_code, r.text)
        body = r.json()
        text = json.dumps(body)
        if word:
            assert word in text, (name, text)
        assert "-----BEGIN" not in text, name  # the CSR is never echoed
    # Bodies that are not a CSR string at all.
    for body in ({}, {"CsrString": 5}, {"CsrString": good, "Other": 1}):
        r = c.post(SIGN, json=body)
        assert r.status_code == 400, (body, r.text)
    for body in ({"data": []}, {"data": [1]}, {"data": [good, good]}, {"data": [{"Csr": good}]},
                 {"data": "x"}):
        r = c.post(VMI, json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["status"] == "error"
    # Nothing was logged as issued.
    assert ok(c.get(ISSUED)).json()["Members@odata.count"] == before


def test_authorization(ca_certd, tmp_path):
    c = ca_certd
    c.add_user("reader", "ReadOnly", "reader-password-1")
    c.add_user("operator", "Operator", "operator-password-1")
    _, csr = console_csr(tmp_path)
    for user in ("reader", "operator"):
        r = sign(c, csr, auth=(user, f"{user}-password-1"))
        assert r.status_code == 403, (user, r.text)
        r = c.post(VMI, json={"data": [csr]}, auth=(user, f"{user}-password-1"))
        assert r.status_code == 403, (user, r.text)
        r = c.post(REVOKE, json={"SerialNumber": "01"}, auth=(user, f"{user}-password-1"))
        assert r.status_code == 403, (user, r.text)
    assert sign(c, csr, auth=None).status_code == 401
    assert c.post(HMC, json={"data": [csr]}, auth=None).status_code == 401
    # The CRL is public: relying parties fetch it without an account.
    assert c.get(CRL, auth=None).status_code == 200


# --- the log: revocation, CRL, restart, concurrency -------------------------------------------

def test_revocation_and_crl(ca_certd, tmp_path):
    c = ca_certd
    root = root_pem(c)
    (tmp_path / "root.pem").write_text(root)
    certs = []
    for n in ("a", "b"):
        _, csr = console_csr(tmp_path, n, cn=f"{n}.example")
        pem = ok(sign(c, csr)).json()["Certificate"]
        (tmp_path / f"{n}.pem").write_text(pem)
        certs.append(x509.load_pem_x509_certificate(pem.encode()))
    serial = format(certs[0].serial_number, "X")
    rec = ok(c.get(f"{ISSUED}/{serial}")).json()
    assert rec["Status"] == "Valid" and rec["SerialNumber"] == serial
    assert rec["Requester"] == "admin"
    assert "a.example" in rec["Subject"]

    r = ok(c.post(REVOKE, json={"SerialNumber": serial.lower(), "RevocationReason":
                                "keyCompromise"}))
    assert r.json()["Status"] == "Revoked"
    assert r.json()["RevocationReason"] == "keyCompromise"
    # Again: already revoked. Unknown serial: 404. Bad reason: 400.
    assert c.post(REVOKE, json={"SerialNumber": serial}).status_code in (400, 409)
    assert c.post(REVOKE, json={"SerialNumber": "ABCDEF"}).status_code in (400, 404)
    assert c.post(REVOKE, json={"SerialNumber": serial, "RevocationReason": "bored"}
                  ).status_code == 400
    assert c.post(REVOKE, json={"SerialNumber": "not hex"}).status_code == 400

    der = ok(c.get(CRL, auth=None)).content
    (tmp_path / "crl.der").write_bytes(der)
    text = openssl("crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-noout",
                   "-text").stdout.decode()
    assert serial in text.replace(":", "").upper()
    assert "Key Compromise" in text
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(x509.load_pem_x509_certificate(root.encode()).public_key())
    pem = c.get(CRL, auth=None, headers={"Accept": "application/x-pem-file"})
    assert pem.status_code == 200 and pem.text.startswith("-----BEGIN X509 CRL-----")
    (tmp_path / "crl.pem").write_text(pem.text)
    bad = openssl("verify", "-crl_check", "-CAfile", str(tmp_path / "root.pem"), "-CRLfile",
                  str(tmp_path / "crl.pem"), str(tmp_path / "a.pem"), check=False)
    assert bad.returncode != 0 and b"revoked" in bad.stdout + bad.stderr
    openssl("verify", "-crl_check", "-CAfile", str(tmp_path / "root.pem"), "-CRLfile",
            str(tmp_path / "crl.pem"), str(tmp_path / "b.pem"))
    # The first CRL is made when first needed (here: the revocation).
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1


def test_restart_keeps_ca_and_log(certd_factory, tmp_path):
    c = certd_factory().start()
    root = root_pem(c)
    _, csr = console_csr(tmp_path)
    serial = format(x509.load_pem_x509_certificate(
        ok(sign(c, csr)).json()["Certificate"].encode()).serial_number, "X")
    assert c.restart()
    assert root_pem(c) == root
    assert ok(c.get(f"{ISSUED}/{serial}")).json()["Status"] == "Valid"
    ca_dir = os.path.join(c.state_dir, "ca")
    assert os.stat(os.path.join(ca_dir, "ca-key.pem")).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(c.state_dir, "ca.db")).st_mode & 0o777 == 0o600
    assert c.stop() == 0


def test_concurrent_signing(ca_certd, tmp_path):
    c = ca_certd
    (tmp_path / "root.pem").write_text(root_pem(c))
    csrs = [console_csr(tmp_path, f"k{i}", cn=f"console-{i}.example")[1] for i in range(16)]

    def one(csr):
        with Client(c) as cl:
            return cl.post(SIGN, json={"CsrString": csr})

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        answers = list(ex.map(one, csrs))
    serials = set()
    for i, r in enumerate(answers):
        assert r.status_code == 200, r.text
        pem = r.json()["Certificate"]
        (tmp_path / f"c{i}.pem").write_text(pem)
        openssl("verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / f"c{i}.pem"))
        cert = x509.load_pem_x509_certificate(pem.encode())
        assert cert.subject.rfc4514_string() == f"CN=console-{i}.example"
        serials.add(cert.serial_number)
    assert len(serials) == 16


def test_serials_unique_over_10000(ca_certd, tmp_path):
    """10 000 certificates through SignCSR (one CSR, 8 keep-alive clients with a session token:
    a console logs in once): every serial is different, and the log holds every one of them."""
    c = ca_certd
    _, csr = console_csr(tmp_path)
    n, workers = 10000, 8
    r = ok(c.post("/redfish/v1/SessionService/Sessions",
                  json={"UserName": c.admin[0], "Password": c.admin[1]}, auth=None), 201)
    token = r.headers["X-Auth-Token"]

    def batch(k):
        out = []
        with Client(c, auth=None) as cl:
            for _ in range(n // workers):
                r = cl.post(SIGN, json={"CsrString": csr}, headers={"X-Auth-Token": token})
                assert r.status_code == 200, r.text
                out.append(x509.load_pem_x509_certificate(
                    r.json()["Certificate"].encode()).serial_number)
        return out

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        serials = [s for part in ex.map(batch, range(workers)) for s in part]
    assert len(serials) == n
    assert len(set(serials)) == n
    assert ok(c.get(ISSUED)).json()["Members@odata.count"] == n


# --- the exec signer --------------------------------------------------------------------------

def exec_config(argv, timeout=None, cert=None):
    lines = ["[ca]", "signer = exec:" + " ".join(argv)]
    if timeout:
        lines.append(f"exec_timeout = {timeout}")
    if cert:
        lines.append(f"cert = {cert}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def host_ca(tmp_path):
    """The host's CA, made with the openssl CLI: (cert path, key path)."""
    key, cert = tmp_path / "host-ca.key", tmp_path / "host-ca.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=host CA", "-days", "30",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def test_exec_signer_with_sample_helper(certd_factory, tmp_path, host_ca):
    # A configuration line holds at most 199 bytes: short paths for the helper's arguments.
    short = tempfile.mkdtemp(prefix="ca-", dir="/tmp")
    try:
        helper = shutil.copy(HELPER, os.path.join(short, "signer"))
        cert = shutil.copy(host_ca[0], os.path.join(short, "ca.pem"))
        key = shutil.copy(host_ca[1], os.path.join(short, "ca.key"))
        exec_signer_with_sample_helper(certd_factory, tmp_path, helper, Path(cert), key)
    finally:
        shutil.rmtree(short)


def exec_signer_with_sample_helper(certd_factory, tmp_path, helper, cert, key):
    c = certd_factory(config=exec_config([helper, str(cert), str(key), "30"]),
                      name="exec").start()
    keyfile, csr = console_csr(tmp_path)
    client = ok(sign(c, csr)).json()["Certificate"]
    (tmp_path / "client.pem").write_text(client)
    openssl("verify", "-CAfile", str(cert), str(tmp_path / "client.pem"))
    # The chain the helper printed is what the console gets as the root.
    r = c.post(VMI, json={"data": [csr]})
    assert r.status_code == 200, r.text
    certs = pem_certs(r.json()["data"][0])
    assert len(certs) == 2 and certs[1].strip() == cert.read_text().strip()
    mutual_tls(tmp_path, root_file=cert, cert_file=tmp_path / "client.pem", key_file=keyfile)
    # What certd would not sign never reaches the helper: the same policy applies.
    for addext, word in ((["basicConstraints=critical,CA:TRUE"], "CA"),
                         (["subjectAltName=email:a@b.example"], "email")):
        r = sign(c, console_csr(tmp_path, "refused", addext=addext)[1])
        assert r.status_code == 400 and word in r.text, r.text
    assert ok(c.get(CA_URI)).json()["Signer"] == "exec"
    assert ok(c.get(ISSUED)).json()["Members@odata.count"] == 2
    assert c.stop() == 0


def write_helper(tmp_path, name, body):
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return str(p)


def test_exec_signer_failures(certd_factory, tmp_path, host_ca):
    cert, key = host_ca
    _, csr = console_csr(tmp_path)
    other_key, other_csr = console_csr(tmp_path, "other")
    cases = {
        "not-ready": (write_helper(tmp_path, "h75", "echo 'host CA is booting' >&2\nexit 75\n"),
                      503, "not ready"),
        "fails": (write_helper(tmp_path, "h1", "echo 'PLDM timeout talking to host' >&2\n"
                               "exit 3\n"), 502, "PLDM timeout"),
        "garbage": (write_helper(tmp_path, "hg", "cat >/dev/null\necho hello\n"), 502,
                    "no usable certificate"),
        "other-key": (write_helper(tmp_path, "ho",
                                   f"cat >/dev/null\n'{os.path.abspath(HELPER)}' '{cert}' "
                                   f"'{key}' < '{tmp_path}/other.csr'\n"), 502, "another key"),
        "slow": (write_helper(tmp_path, "hs", "sleep 30\n"), 502, "within"),
        "killed": (write_helper(tmp_path, "hk", "kill -9 $$\n"), 502, "signal"),
    }
    (tmp_path / "other.csr").write_text(other_csr)
    for name, (helper, status, word) in cases.items():
        c = certd_factory(config=exec_config([helper], timeout=2 if name == "slow" else None,
                                             cert=str(cert)),
                          name=f"exec-{name}").start()
        t0 = time.monotonic()
        r = sign(c, csr)
        assert r.status_code == status, (name, r.status_code, r.text)
        assert word in r.text, (name, r.text)
        if status == 503:
            assert r.headers.get("Retry-After"), name
        if name == "slow":
            assert time.monotonic() - t0 < 15
        assert ok(c.get(ISSUED)).json()["Members@odata.count"] == 0, name
        assert c.stop() == 0


def test_first_crl_made_once_for_requests_that_wait_for_it(ca_certd):
    """A fresh CA has no CRL yet: requests that come at once for it wait for one CRL, made
    once (CRL number 1), not one each."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
        answers = list(ex.map(lambda _: ca_certd.get(CRL, auth=None), range(6)))
    ders = {ok(r).content for r in answers}
    assert len(ders) == 1, "the requests got different CRLs"
    crl = x509.load_der_x509_crl(ders.pop())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
