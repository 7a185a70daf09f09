# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures for the black-box tests: where certctl and the test certificates are."""
import os
import subprocess

import pytest


@pytest.fixture(scope="session")
def certctl():
    path = os.environ.get("CERTCTL")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("CERTCTL must name the built certctl (run through meson test)")
    return path


@pytest.fixture(scope="session")
def fixtures():
    d = os.environ.get("CERTD_FIXTURES")
    if not d or not os.path.isdir(d):
        pytest.fail("CERTD_FIXTURES must name the generated fixtures directory")
    return d


@pytest.fixture
def run(certctl):
    """Run certctl with arguments; returns CompletedProcess with text output."""
    def _run(*args, stdin=None, check_rc=None):
        p = subprocess.run([certctl, *args], input=stdin, capture_output=True, text=True,
                           timeout=120)
        if check_rc is not None:
            assert p.returncode == check_rc, (p.returncode, p.stdout, p.stderr)
        return p
    return _run


# --- the real daemon -------------------------------------------------------------------------

import signal
import socket
import time
import warnings


def _free_port():
    """A loopback port nobody listens on now (the daemon binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Certd:
    """One certd process on a random loopback port with its own state directory.

    Attributes: url ("https://127.0.0.1:PORT"), port, state_dir, admin ((user, password) of the
    bootstrapped administrator), config_path (None for the embedded defaults).
    Responses are fetched with verify=False: the bootstrap certificate names the host, not
    127.0.0.1; TLS itself is checked with openssl s_client in the tests that care.
    """

    START_TIMEOUT = float(os.environ.get("CERTD_START_TIMEOUT", "30"))

    def __init__(self, exe, certctl, base_dir, config=None, args=()):
        self.exe = exe
        self.certctl = certctl
        self.base_dir = str(base_dir)
        self.state_dir = os.path.join(self.base_dir, "state")
        self.log_path = os.path.join(self.base_dir, "certd.log")
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.args = list(args)
        self.config_path = None
        os.makedirs(self.base_dir, exist_ok=True)
        if config is not None:
            self.config_path = os.path.join(self.base_dir, "certd.conf")
            with open(self.config_path, "w") as f:
                f.write(config.replace("@STATE_DIR@", self.state_dir)
                        .replace("@BASE_DIR@", self.base_dir)
                        .replace("@PORT@", str(self.port)))
        self.proc = None
        self.admin = None

    # -- process --
    def command(self):
        cmd = [self.exe, "--state-dir", self.state_dir, "--listen", f"127.0.0.1:{self.port}"]
        if self.config_path:
            cmd += ["--config", self.config_path]
        return cmd + self.args

    def start(self, expect_ready=True):
        os.makedirs(self.base_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()
        if not expect_ready:
            return self
        deadline = time.monotonic() + self.START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"certd exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.kill()
            raise AssertionError(f"certd did not listen within {self.START_TIMEOUT} s:\n"
                                 f"{self.log()}")
        pw_file = os.path.join(self.state_dir, "initial-admin-password")
        if self.admin is None and os.path.exists(pw_file):
            with open(pw_file) as f:
                self.admin = ("admin", f.read().strip())
        return self

    def stop(self, timeout=30):
        """SIGTERM, and the exit status (0 is a clean drain)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"certd did not stop on SIGTERM:\n{self.log()}")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self):
        rc = self.stop()
        assert rc == 0, f"certd exited with {rc}:\n{self.log()}"
        return self.start()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- users --
    @property
    def users_file(self):
        return os.path.join(self.state_dir, "users")

    def add_user(self, name, role, password):
        p = subprocess.run([self.certctl, "user", "add", name, "--role", role,
                            "--users-file", self.users_file], input=password + "\n",
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.returncode, p.stderr)
        self.wait_for_login((name, password))

    def wait_for_login(self, auth, timeout=5.0):
        """certd re-reads the users file when it changes (checked at most once a second):
        wait until these credentials work, if the daemon runs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        # Wait out the once-a-second check first: failed logins from this address are
        # rate-limited, so polling with credentials certd does not know yet would lock us out.
        time.sleep(1.1)
        deadline = time.monotonic() + timeout
        while True:
            r = self.get("/redfish/v1/SessionService", auth=auth)
            if r.status_code == 200 or time.monotonic() > deadline:
                assert r.status_code == 200, (r.status_code, r.text)
                return
            time.sleep(1.0)

    # -- HTTP --
    def session(self, auth="admin"):
        """A requests.Session (keep-alive) with Basic auth of admin, (user, pw), or None."""
        import requests
        import urllib3
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        s = requests.Session()
        # Not from the environment: REQUESTS_CA_BUNDLE would override verify=False, and proxy
        # variables have no business with loopback.
        s.trust_env = False
        s.verify = False
        if auth == "admin":
            s.auth = self.admin
        elif auth is not None:
            s.auth = auth
        return s

    def request(self, method, path, auth="admin", **kw):
        with self.session(auth) as s:
            return s.request(method, self.url + path, timeout=kw.pop("timeout", 60), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def server_cert_pem(self):
        """The certificate the server presents on a new connection (PEM)."""
        import ssl
        return ssl.get_server_certificate(("127.0.0.1", self.port))


@pytest.fixture(scope="session")
def certd_exe():
    path = os.environ.get("CERTD")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("CERTD does not name a built certd (run through meson test)")
    return path


@pytest.fixture
def certd_factory(certd_exe, certctl, tmp_path):
    """Make (not start) daemons: certd_factory(config=None, args=(), name="d")."""
    made = []

    def make(config=None, args=(), name="d"):
        c = Certd(certd_exe, certctl, tmp_path / name, config=config, args=args)
        made.append(c)
        return c

    yield make
    for c in made:
        c.kill()


@pytest.fixture
def certd(certd_factory):
    """A started certd on embedded defaults; checked to stop cleanly afterwards."""
    c = certd_factory().start()
    yield c
    rc = c.stop()
    assert rc in (0, None), f"certd exited with {rc}:\n{c.log()}"


@pytest.fixture(autouse=True, scope="session")
def _no_private_key_in_any_response():
    """Every response any test of the suite receives through requests is scanned: private key
    material never appears in a response (issue #3). A test that finds one fails at once."""
    try:
        import requests
    except ImportError:
        yield
        return
    original = requests.Session.send

    def send(self, request, **kw):
        r = original(self, request, **kw)
        body = r.content or b""
        assert b"PRIVATE KEY" not in body, f"private key material in {request.method} {request.url}"
        for v in r.headers.values():
            assert "PRIVATE KEY" not in v, f"private key material in a header of {request.url}"
        return r

    requests.Session.send = send
    yield
    requests.Session.send = original
