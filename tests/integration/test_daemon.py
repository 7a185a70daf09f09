# SPDX-License-Identifier: Apache-2.0
"""certd as a process (issue #3 "Process"): command line and configuration errors, the initial
administrator, bootstrap of a corrupt HTTPS certificate, certificates changed on disk (inotify)
and by SIGHUP, TLS policy as seen by openssl s_client, exec: notifiers, SIGTERM, systemd's
notification protocol, worker priority."""
import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest
from conftest import CA, key_pem, new_key, s_client, served_cert, served_cn, wait_for
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

HTTPS_CERT = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates/1"


@pytest.fixture(scope="module")
def ca():
    return CA("daemon test root")


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
    old_serial = certd.get(HTTPS_CERT).json()["SerialNumber"]
    old_served = served_cert(certd.port)
    assert certd.stop() == 0
    with open(os.path.join(d, "cert.pem"), "rb") as f:
        old_cert = f.read()
    other_key = key_pem(new_key())
    with open(os.path.join(d, "key.pem"), "wb") as f:
        f.write(other_key)
    certd.start()
    # Both files of the mismatched pair are kept aside, byte for byte.
    for name, data in (("cert.pem", old_cert), ("key.pem", other_key)):
        kept = [n for n in os.listdir(d) if n.startswith(name + ".corrupt-")]
        assert len(kept) == 1, (name, os.listdir(d))
        with open(os.path.join(d, kept[0]), "rb") as f:
            assert f.read() == data, kept[0]
    # A new certificate is made and served.
    assert certd.get(HTTPS_CERT).json()["SerialNumber"] != old_serial
    now = served_cert(certd.port)
    assert now.serial_number != old_served.serial_number
    assert "key.pem" in certd.log()


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


def test_file_changed_on_disk_is_served_without_restart(certd_factory, ca):
    c = certd_factory(config=CONFIG_FILES)
    tls_dir = os.path.join(c.base_dir, "tls")
    os.makedirs(tls_dir, mode=0o700)
    _c, _k, pem = ca.leaf("first.test")
    _write(os.path.join(tls_dir, "server.pem"), pem)
    c.start()
    assert served_cn(c.port) == "first.test"
    pid = c.proc.pid
    _c, _k, pem = ca.leaf("second.test")
    _write(os.path.join(tls_dir, "server.pem"), pem)
    wait_for(lambda: served_cn(c.port) == "second.test", what="the new certificate")
    assert c.proc.pid == pid and c.proc.poll() is None
    # Garbage on disk: certd keeps serving the last good certificate and says why.
    _write(os.path.join(tls_dir, "server.pem"), b"garbage\n")
    wait_for(lambda: "not usable" in c.log(), what="the warning")
    assert served_cn(c.port) == "second.test"
    assert c.stop() == 0


def test_sighup_rereads_certificates(certd_factory, ca):
    c = certd_factory(config=CONFIG_FILES)
    tls_dir = os.path.join(c.base_dir, "tls")
    os.makedirs(tls_dir, mode=0o700)
    _c, _k, pem = ca.leaf("one.test")
    _write(os.path.join(tls_dir, "server.pem"), pem)
    c.start()
    _c, _k, pem = ca.leaf("two.test")
    # Written in place (no rename), then SIGHUP: the reload path must not depend on inotify.
    with open(os.path.join(tls_dir, "server.pem"), "r+b") as f:
        f.write(pem)
        f.truncate()
    c.signal(signal.SIGHUP)
    wait_for(lambda: served_cn(c.port) == "two.test", what="the certificate after SIGHUP")
    assert "SIGHUP" in c.log()
    assert c.stop() == 0


def test_signal_as_soon_as_the_port_answers(certd_factory):
    """SIGHUP and SIGTERM are caught before the listener exists: a reload sent the moment the
    port answers is queued for the loop, never the default action that kills the daemon."""
    for i in range(4):
        c = certd_factory(name=f"d{i}").start(expect_ready=False)
        deadline = time.monotonic() + c.START_TIMEOUT
        while True:
            assert c.proc.poll() is None, c.log()
            assert time.monotonic() < deadline, c.log()
            try:
                with socket.create_connection(("127.0.0.1", c.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.001)
        c.signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP" in c.log(), what="the reload")
        assert c.proc.poll() is None, c.log()
        assert served_cert(c.port) is not None
        assert c.stop() == 0, c.log()


# --- TLS policy ------------------------------------------------------------------------------

def test_tls_versions_intermediate(certd):
    rc, out = s_client(certd.port, "-tls1_2")
    assert rc == 0 and "TLSv1.2" in out
    rc, out = s_client(certd.port, "-tls1_3")
    assert rc == 0 and "TLSv1.3" in out
    # The client must be willing to speak TLS 1.1 (OpenSSL 3 refuses it itself at the default
    # security level): the refusal is then the server's alert.
    rc, out = s_client(certd.port, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert rc != 0 and "alert protocol version" in out, out
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

def test_exec_notifier_runs_after_a_change(certd_factory, tmp_path, ca):
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
    _c, _k, pem = ca.leaf("ldap-client.test", eku=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    r = c.post("/redfish/v1/AccountService/LDAP/Certificates", data=pem,
               headers={"Content-Type": "application/x-pem-file"})
    assert r.status_code == 200, r.text
    wait_for(marker.exists, what="the exec notifier")
    assert marker.read_text() == "ldap-changed\n"
    assert c.stop() == 0


# --- stopping --------------------------------------------------------------------------------

def test_sigterm_while_a_connection_is_open_exits_0(certd):
    s = certd.session()
    assert s.get(certd.url + "/redfish/v1").status_code == 200
    # The keep-alive connection stays open; SIGTERM must still end the process cleanly.
    assert certd.stop(timeout=20) == 0
    assert "stopped" in certd.log()
    s.close()


# --- systemd: notifications without libsystemd, worker priority --------------------------------

def _datagram(sock, what):
    try:
        return sock.recv(4096).decode()
    except TimeoutError:
        raise AssertionError(f"no {what} notification within {sock.gettimeout()} s") from None


def test_service_manager_notifications(certd_factory, tmp_path, monkeypatch):
    """READY=1, RELOADING=1 (with MONOTONIC_USEC, as Type=notify-reload wants) then READY=1
    on SIGHUP, STOPPING=1 on SIGTERM, over $NOTIFY_SOCKET; libsystemd is not even mapped, and
    the parallel worker threads run at SCHED_IDLE while the loop and serial threads do not."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    c = certd_factory().start()
    assert _datagram(sock, "READY=1") == "READY=1"

    with open(f"/proc/{c.proc.pid}/maps") as f:
        maps = f.read()
    assert "libsystemd" not in maps
    tids = sorted(int(t) for t in os.listdir(f"/proc/{c.proc.pid}/task"))
    assert len(tids) >= 2
    assert os.sched_getscheduler(tids[0]) == os.SCHED_OTHER  # the loop (main) thread
    # The parallel workers idle; the serial thread (stored-state changes and TPM work, TLS
    # handshakes with a TPM key among them) at normal priority: exactly one such thread.
    workers = [os.sched_getscheduler(t) for t in tids[1:]]
    assert sorted(workers) == sorted([os.SCHED_OTHER] + [os.SCHED_IDLE] * (len(workers) - 1))
    assert workers.count(os.SCHED_IDLE) >= 2

    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    c.signal(signal.SIGHUP)
    m = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", _datagram(sock, "RELOADING=1"))
    assert m, "RELOADING=1 without a MONOTONIC_USEC line"
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert before <= int(m.group(1)) <= after
    assert _datagram(sock, "READY=1 after the reload") == "READY=1"

    c.signal(signal.SIGTERM)
    assert _datagram(sock, "STOPPING=1") == "STOPPING=1"
    assert c.proc.wait(timeout=30) == 0
    sock.close()


def test_unreachable_notify_socket_is_logged_not_fatal(certd_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    c = certd_factory().start()
    assert c.session().get(c.url + "/redfish/v1").status_code == 200
    assert c.stop() == 0
    assert "cannot notify the service manager" in c.log()
