# SPDX-License-Identifier: Apache-2.0
"""certd as a process (issue #3 "Process"): command line and configuration errors, the initial
administrator, bootstrap of a corrupt HTTPS certificate, certificates changed on disk (inotify)
and by SIGHUP, TLS policy as seen by openssl s_client, exec: notifiers, SIGTERM."""
import datetime
import os
import re
import signal
import stat
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HTTPS_CERT = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates/1"


def make_cert(cn, key=None, days=30):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert, cert.public_bytes(serialization.Encoding.PEM), key_pem


def s_client(port, *args):
    """openssl s_client to certd; returns (returncode, stdout text)."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=b"", capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def served_cn(port):
    rc, out = s_client(port)
    m = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", out, re.S)
    assert m, out[-2000:]
    cert = x509.load_pem_x509_certificate(m.group(0).encode())
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# --- command line and configuration ----------------------------------------------------------

def test_help_and_version(certd_exe):
    p = subprocess.run([certd_exe, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--state-dir" in p.stdout and "SIGHUP" in p.stdout
    p = subprocess.run([certd_exe, "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("certd ")


@pytest.mark.parametrize("args, word", [
    (["--bogus"], "unrecognized"),
    (["extra-argument"], "unexpected argument"),
])
def test_usage_errors_exit_2(certd_exe, args, word):
    p = subprocess.run([certd_exe, *args], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, p.stderr
    assert word in p.stderr


@pytest.mark.parametrize("text, where", [
    ("[server]\nlisten = 127.0.0.1:8443\nbogus = 1\n", ":3:"),
    ("[server]\nlog_level = loud\n", ":2:"),
    ("[endpoint x]\ntype = server\ncert = relative/path\n", ":3:"),
    ("[limits]\nmax_body = 10\n", ":2:"),
])
def test_bad_configuration_names_file_and_line(certd_exe, tmp_path, text, where):
    conf = tmp_path / "certd.conf"
    conf.write_text(text)
    p = subprocess.run([certd_exe, "--config", str(conf), "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1, p.stderr
    assert str(conf) + where in p.stderr, p.stderr
    assert not (tmp_path / "s").exists(), "a refused configuration must change nothing"


def test_missing_configuration_file(certd_exe, tmp_path):
    p = subprocess.run([certd_exe, "--config", str(tmp_path / "nope.conf")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1
    assert "nope.conf" in p.stderr


def test_listen_in_use_fails_start(certd_factory):
    a = certd_factory(name="a").start()
    b = certd_factory(name="b")
    b.port = a.port
    b.start(expect_ready=False)
    assert b.proc.wait(timeout=30) == 3
    assert "cannot listen" in b.log()
    assert a.stop() == 0


# --- initial administrator -------------------------------------------------------------------

def test_initial_admin_password_file(certd):
    pw = os.path.join(certd.state_dir, "initial-admin-password")
    st = os.stat(pw)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(certd.users_file).st_mode) == 0o600
    password = certd.admin[1]
    assert len(password) >= 16
    assert password not in certd.log(), "the password must never be logged"
    assert certd.get("/redfish/v1/SessionService").status_code == 200
    assert certd.get("/redfish/v1/SessionService", auth=("admin", "wrong-password-x")
                     ).status_code == 401
    # A second start keeps users and password: no new admin, no new file content.
    before = open(pw).read()
    certd.restart()
    assert open(pw).read() == before
    assert certd.get("/redfish/v1/SessionService").status_code == 200


# --- bootstrap -------------------------------------------------------------------------------

def test_corrupt_server_pem_at_start_is_kept_aside(certd):
    cert_path = os.path.join(certd.state_dir, "https", "cert.pem")
    old_serial = certd.get(HTTPS_CERT).json()["SerialNumber"]
    assert certd.stop() == 0
    garbage = b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
    with open(cert_path, "wb") as f:
        f.write(garbage)
    certd.start()
    kept = [n for n in os.listdir(os.path.dirname(cert_path)) if n.startswith("cert.pem.corrupt-")]
    assert len(kept) == 1, os.listdir(os.path.dirname(cert_path))
    assert open(os.path.join(os.path.dirname(cert_path), kept[0]), "rb").read() == garbage
    body = certd.get(HTTPS_CERT).json()
    assert body["SerialNumber"] != old_serial
    x509.load_pem_x509_certificate(open(cert_path, "rb").read())  # a valid certificate again
    assert "cert.pem" in certd.log() and re.search(r"corrupt|not usable|kept", certd.log())


def test_mismatched_key_at_start_regenerates(certd):
    d = os.path.join(certd.state_dir, "https")
    assert certd.stop() == 0
    _, _, other_key = make_cert("other")
    with open(os.path.join(d, "key.pem"), "wb") as f:
        f.write(other_key)
    certd.start()
    assert any(n.startswith("key.pem.corrupt-") or n.startswith("cert.pem.corrupt-")
               for n in os.listdir(d)), os.listdir(d)
    assert certd.get(HTTPS_CERT).status_code == 200
    rc, out = s_client(certd.port)
    assert "BEGIN CERTIFICATE" in out


# --- certificates changed on disk ------------------------------------------------------------

CONFIG_FILES = """
[server]
hostname = certd.test
log_level = debug

[endpoint https]
type = server
cert = @BASE_DIR@/tls/server.pem
key = @BASE_DIR@/tls/server.pem
reload = self
"""


def _write(path, data):
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def test_file_changed_on_disk_is_served_without_restart(certd_factory):
    c = certd_factory(config=CONFIG_FILES)
    tls_dir = os.path.join(c.base_dir, "tls")
    os.makedirs(tls_dir, mode=0o700)
    _, cert_pem, key_pem = make_cert("first.test")
    _write(os.path.join(tls_dir, "server.pem"), cert_pem + key_pem)
    c.start()
    assert served_cn(c.port) == "first.test"
    pid = c.proc.pid
    _, cert_pem, key_pem = make_cert("second.test")
    _write(os.path.join(tls_dir, "server.pem"), cert_pem + key_pem)
    wait_for(lambda: served_cn(c.port) == "second.test", what="the new certificate")
    assert c.proc.pid == pid and c.proc.poll() is None
    # Garbage on disk: certd keeps serving the last good certificate and says why.
    _write(os.path.join(tls_dir, "server.pem"), b"garbage\n")
    wait_for(lambda: "not usable" in c.log(), what="the warning")
    assert served_cn(c.port) == "second.test"
    assert c.stop() == 0


def test_sighup_rereads_certificates(certd_factory):
    c = certd_factory(config=CONFIG_FILES)
    tls_dir = os.path.join(c.base_dir, "tls")
    os.makedirs(tls_dir, mode=0o700)
    _, cert_pem, key_pem = make_cert("one.test")
    _write(os.path.join(tls_dir, "server.pem"), cert_pem + key_pem)
    c.start()
    _, cert_pem, key_pem = make_cert("two.test")
    # Written in place (no rename), then SIGHUP: the reload path must not depend on inotify.
    with open(os.path.join(tls_dir, "server.pem"), "r+b") as f:
        f.write(cert_pem + key_pem)
        f.truncate()
    c.signal(signal.SIGHUP)
    wait_for(lambda: served_cn(c.port) == "two.test", what="the certificate after SIGHUP")
    assert "SIGHUP" in c.log()
    assert c.stop() == 0


# --- TLS policy ------------------------------------------------------------------------------

def test_tls_versions_intermediate(certd):
    rc, out = s_client(certd.port, "-tls1_2")
    assert rc == 0 and "TLSv1.2" in out
    rc, out = s_client(certd.port, "-tls1_3")
    assert rc == 0 and "TLSv1.3" in out
    rc, out = s_client(certd.port, "-tls1_1")
    assert rc != 0
    # No CBC and no static RSA key exchange in TLS 1.2.
    rc, out = s_client(certd.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    assert rc != 0
    rc, out = s_client(certd.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert rc == 0


def test_tls_modern_profile_is_tls13_only(certd_factory):
    c = certd_factory(config="[tls]\nprofile = modern\n").start()
    rc, out = s_client(c.port, "-tls1_2")
    assert rc != 0
    rc, out = s_client(c.port, "-tls1_3")
    assert rc == 0 and "TLSv1.3" in out
    assert c.stop() == 0


# --- notifiers -------------------------------------------------------------------------------

def test_exec_notifier_runs_after_a_change(certd_factory, tmp_path):
    marker = tmp_path / "reloaded"
    script = tmp_path / "reload-ldap"
    script.write_text(f"#!/bin/sh\necho \"$1\" >> {marker}\n")
    script.chmod(0o700)
    c = certd_factory(config=f"""
[endpoint https]
type = server
reload = self

[endpoint ldap]
type = client
reload = exec:{script} ldap-changed
""").start()
    key = ec.generate_private_key(ec.SECP256R1())
    _, cert_pem, key_pem = make_cert("ldap-client.test", key)
    r = c.post("/redfish/v1/AccountService/LDAP/Certificates", data=cert_pem + key_pem,
               headers={"Content-Type": "application/x-pem-file"})
    assert r.status_code == 200, r.text
    wait_for(marker.exists, what="the exec notifier")
    assert marker.read_text() == "ldap-changed\n"
    assert c.stop() == 0


# --- stopping --------------------------------------------------------------------------------

def test_sigterm_while_a_connection_is_open_exits_0(certd):
    s = certd.session()
    assert s.get(certd.url + "/redfish/v1", verify=False).status_code == 200
    # The keep-alive connection stays open; SIGTERM must still end the process cleanly.
    assert certd.stop(timeout=20) == 0
    assert "stopped" in certd.log()
    s.close()
