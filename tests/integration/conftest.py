# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures and helpers of the black-box tests: where certctl, certd and the test
certificates are; the daemon as a process; test keys and CAs; TLS probes with openssl s_client;
the Redfish checks every test file shares (DMTF schemas, error bodies, 405 + Allow).

Every response any test receives (through requests, or raw_request) is checked by one hook: no
private key material (the PEM label, and every base64 line of every key the helpers made), and
every Redfish body valid against the DMTF JSON schemas of the type it names."""
import base64
import datetime
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import types
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


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


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# --- private key material: never in a response or a log --------------------------------------

SECRET_LINES = set()


def key_pem(key):
    """PKCS#8 PEM of key; its base64 lines are remembered so that no response may hold them.
    A line that is public too is left out: an EC key's PKCS#8 ends with its public point, which
    every certificate of the key holds, and the same bytes at the same alignment encode to
    the same base64 (a false alarm on an innocent certificate)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    public = [base64.b64encode(spki[k:]).decode() for k in range(3)]
    for line in pem.splitlines()[1:-1]:
        text = line.decode()
        if len(text) >= 40 and not any(text in p for p in public):
            SECRET_LINES.add(text)
    return pem


def no_secrets(data, where):
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    assert "PRIVATE KEY" not in text, f"private key label in {where}"
    for line in SECRET_LINES:
        assert line not in text, f"private key material in {where}"


# --- test keys, certificates and CAs ----------------------------------------------------------

def new_key(kind="ec", size=None):
    """A new key, registered for the scan."""
    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=size or 2048)
    else:
        key = ec.generate_private_key({None: ec.SECP256R1(), 256: ec.SECP256R1(),
                                       384: ec.SECP384R1(), 521: ec.SECP521R1()}[size])
    key_pem(key)
    return key


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def dn(cn, **extra):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    for oid, value in extra.items():
        attrs.append(x509.NameAttribute(getattr(NameOID, oid), value))
    return x509.Name(attrs)


class CA:
    """A test CA (optionally under another) that issues leaves and signs CSRs."""

    def __init__(self, cn="certd test root", parent=None, key=None):
        self.key = key or new_key()
        self.name = dn(cn, ORGANIZATION_NAME="certd tests")
        b = self._builder(self.name, self.key.public_key(),
                          parent.name if parent else self.name, days=3650)
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                          False), critical=True)
        b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                            critical=False)
        self.cert = b.sign(parent.key if parent else self.key, hashes.SHA256())
        self.pem = cert_pem(self.cert)

    @staticmethod
    def _builder(subject, public_key, issuer, days=365, not_before=None):
        nb = not_before or utcnow() - datetime.timedelta(minutes=5)
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(nb + datetime.timedelta(days=days)))

    def issue(self, subject, public_key, sans=(), eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
              days=365, not_before=None):
        b = self._builder(subject, public_key, self.name, days, not_before)
        b = b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                          False), critical=True)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        return b.sign(self.key, hashes.SHA256())

    def leaf(self, cn="server.certd.test", kind="ec", size=None, **kw):
        """A new key and a certificate for it: (cert, key, pem of cert + key)."""
        key = new_key(kind, size)
        cert = self.issue(dn(cn), key.public_key(), sans=[x509.DNSName(cn)], **kw)
        return cert, key, cert_pem(cert) + key_pem(key)

    def sign_csr(self, csr, eku=(ExtendedKeyUsageOID.SERVER_AUTH,)):
        assert csr.is_signature_valid
        sans = ()
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            pass
        return self.issue(csr.subject, csr.public_key(), sans=list(sans), eku=eku)


# GenerateCSR's subject parameters (Redfish and D-Bus name them alike) and the attribute each
# sets in the CSR's subject (X.520 initials 2.5.4.43 and name 2.5.4.41 have no NameOID).
CSR_SUBJECT_OIDS = {
    "CommonName": NameOID.COMMON_NAME,
    "Country": NameOID.COUNTRY_NAME,
    "City": NameOID.LOCALITY_NAME,
    "State": NameOID.STATE_OR_PROVINCE_NAME,
    "Organization": NameOID.ORGANIZATION_NAME,
    "OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "Email": NameOID.EMAIL_ADDRESS,
    "GivenName": NameOID.GIVEN_NAME,
    "Surname": NameOID.SURNAME,
    "Initials": x509.ObjectIdentifier("2.5.4.43"),
    "UnstructuredName": NameOID.UNSTRUCTURED_NAME,
    "ContactPerson": x509.ObjectIdentifier("2.5.4.41"),
}

# Every subject parameter, as the "every parameter" GenerateCSR tests of both front ends send
# them and as the CSR must show them.
CSR_EVERY_SUBJECT = {
    "CommonName": "bmc.certd.test", "Country": "IN", "City": "Hyderabad",
    "State": "Telangana", "Organization": "Example", "OrganizationalUnit": "BMC",
    "Email": "pki@certd.test", "GivenName": "Pat", "Surname": "Admin", "Initials": "PA",
    "UnstructuredName": "bmc-unit-1", "ContactPerson": "Pat Admin",
}


def check_csr_subject(csr, expected):
    """csr's subject holds, for each GenerateCSR parameter of expected, the attribute that
    parameter sets with the value expected gives."""
    subj = {a.oid: a.value for a in csr.subject}
    for param, value in expected.items():
        assert subj.get(CSR_SUBJECT_OIDS[param]) == value, f"{param}: {subj}"


# --- TLS as openssl sees it -------------------------------------------------------------------

def s_client(port, *args):
    """openssl s_client to certd; returns (returncode, stdout and stderr text)."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input=b"", capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def served_cert(port):
    """The certificate a NEW connection sees, read by openssl s_client."""
    rc, out = s_client(port, "-servername", "certd.test")
    m = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", out, re.S)
    assert m, (rc, out[-3000:])
    return x509.load_pem_x509_certificate(m.group(0).encode())


def served_cn(port):
    return served_cert(port).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def tls_context():
    """A client context that takes any server certificate: the bootstrap certificate names the
    host, not 127.0.0.1; TLS itself is checked with openssl s_client where it matters."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def basic_auth(auth):
    """The Authorization header value of (user, password)."""
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


class RawResponse:
    """A response read with http.client, shaped like requests' for ok() and assert_error(), and
    checked like every response."""

    def __init__(self, method, path, r):
        import requests.structures
        self.status_code = r.status
        self.headers = requests.structures.CaseInsensitiveDict(r.getheaders())
        self.content = r.read()
        self.request = types.SimpleNamespace(method=method, path_url=path)
        check_response(f"{method} {path}", path, self.status_code, self.headers, self.content)

    @property
    def text(self):
        return self.content.decode(errors="replace")

    def json(self):
        return json.loads(self.content)


def raw_request(certd, method, path, headers, body=None):
    """One request on a fresh TLS connection with exactly these headers (and no others that
    requests would add): a RawResponse."""
    c = http.client.HTTPSConnection("127.0.0.1", certd.port, context=tls_context(), timeout=60)
    try:
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        c.endheaders(body)
        return RawResponse(method, path, c.getresponse())
    finally:
        c.close()


# --- the DMTF schemas -------------------------------------------------------------------------

SCHEMA_BASE = "http://redfish.dmtf.org/schemas/v1/"
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def schema_dir():
    """The DMTF JSON schemas: CERTD_REDFISH_SCHEMA, or shared/redfish-schema/json-schema next to
    the source tree. Their CSDL is in the sibling directory csdl/."""
    d = os.environ.get("CERTD_REDFISH_SCHEMA")
    if d:
        return d
    root = os.environ.get("CERTD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
    return os.path.normpath(os.path.join(root, "..", "shared", "redfish-schema", "json-schema"))


class _Anything(dict):
    """The schema of a file that is not here: any pointer into it is an empty schema, which
    accepts anything."""

    def __missing__(self, key):
        return _Anything()


class Schemas:
    """The JSON schemas with their redfish.dmtf.org $refs resolved to local files, with
    jsonschema's registry (4.18+) or its RefResolver (Debian 12's 4.10). Files that are not
    there (types we only link to, such as ChassisCollection) accept anything; DateTime values
    must have DSP0266's format."""

    def __init__(self, directory):
        import jsonschema
        self.directory = directory
        self.jsonschema = jsonschema
        self.store = {}
        # The DMTF's schemas, and certd's own for its OEM and IBM resources (docs/schemas).
        own = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                           "schemas")
        for d in (directory, own):
            for f in sorted(os.listdir(d)):
                if f.endswith(".json"):
                    with open(os.path.join(d, f)) as fh:
                        self.store[SCHEMA_BASE + f] = json.load(fh)
        # Only formats the schemas use and Redfish defines: DateTime per DSP0266 §9.4.
        self.formats = jsonschema.FormatChecker(formats=())
        self.formats.checks("date-time")(
            lambda v: not isinstance(v, str) or bool(DATETIME.match(v)))
        try:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT7
        except ImportError:
            self.registry = None
            return
        self.registry = Registry(
            retrieve=lambda uri: Resource(contents=_Anything(), specification=DRAFT7)
        ).with_resources((url, DRAFT7.create_resource(doc)) for url, doc in self.store.items())

    def _validator(self, schema):
        if self.registry is not None:
            return self.jsonschema.Draft7Validator(schema, registry=self.registry,
                                                   format_checker=self.formats)
        resolver = self.jsonschema.RefResolver("", schema, store=dict(self.store),
                                               handlers={"http": lambda uri: _Anything()})
        return self.jsonschema.Draft7Validator(schema, resolver=resolver,
                                               format_checker=self.formats)

    def check(self, body, file, definition):
        url = SCHEMA_BASE + file
        assert url in self.store, f"no schema {file} in {self.directory}"
        v = self._validator({"$ref": f"{url}#/definitions/{definition}"})
        errs = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(body)]
        assert not errs, f"{file}#{definition}: {errs}\n{json.dumps(body, indent=1)[:4000]}"

    def check_body(self, body):
        """A resource by its @odata.type; an error body by its shape."""
        if "error" in body and "@odata.type" not in body:
            self.check(body, "redfish-error.v1_0_2.json", "RedfishError")
            return
        m = re.fullmatch(r"#([A-Za-z]+)\.(?:(v\d+_\d+_\d+)\.)?([A-Za-z]+)", body["@odata.type"])
        assert m, body["@odata.type"]
        ns, version, typ = m.groups()
        self.check(body, f"{ns}.{version}.json" if version else f"{ns}.json", typ)


_schemas = []


def schemas():
    """The loaded schemas, or None (with a warning) when the directory is absent."""
    if not _schemas:
        d = schema_dir()
        if os.path.isdir(d):
            _schemas.append(Schemas(d))
        else:
            warnings.warn(f"Redfish schema directory {d} absent: response bodies are NOT validated "
                          "against the DMTF schemas (set CERTD_REDFISH_SCHEMA to check them)")
            _schemas.append(None)
    return _schemas[0]


# --- every response ---------------------------------------------------------------------------

def check_response(what, path, status, headers, content):
    """What every response must be: no key material anywhere; a Redfish body (a resource or an
    error) valid against its schema, and OData-Version on every success of the Redfish tree."""
    no_secrets(content, what)
    no_secrets(str(headers), f"headers of {what}")
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if not content or not ctype.startswith("application/json"):
        return
    body = json.loads(content)
    if path.startswith("/redfish") and status < 400:
        assert {k.lower(): v for k, v in headers.items()}.get("odata-version") == "4.0", \
            (what, headers)
    s = schemas()
    if s and isinstance(body, dict) and ("@odata.type" in body or
                                         isinstance(body.get("error"), dict)):
        s.check_body(body)


@pytest.fixture(autouse=True, scope="session")
def _check_every_response():
    """Every response of the suite received through requests goes through check_response; a
    test that gets a bad one fails at once."""
    import requests
    original = requests.Session.send

    def send(self, request, **kw):
        r = original(self, request, **kw)
        check_response(f"{request.method} {request.url}", r.request.path_url, r.status_code,
                       r.headers, r.content or b"")
        return r

    requests.Session.send = send
    yield
    requests.Session.send = original


# --- Redfish answers --------------------------------------------------------------------------

def ok(r, status=200):
    assert r.status_code == status, (r.request.method, r.request.path_url, r.status_code,
                                     r.text[:3000])
    return r


def message_ids(body):
    return [m["MessageId"] for m in body["error"]["@Message.ExtendedInfo"]]


def assert_error(r, status, message_id, word=None):
    """A Redfish error body with status, the Base 1.5 message id (first), and a word in it."""
    assert r.status_code == status, (r.request.method, r.request.path_url, r.status_code,
                                     r.text[:3000])
    assert r.headers.get("OData-Version") == "4.0"
    assert r.headers.get("Cache-Control") == "no-store"
    body = r.json()
    ids = message_ids(body)
    assert ids[0] == "Base.1.5." + message_id, ids
    assert body["error"]["code"] == ids[0]
    for m in body["error"]["@Message.ExtendedInfo"]:
        assert m["@odata.type"] == "#Message.v1_3_0.Message"
        assert m["MessageSeverity"] in ("OK", "Warning", "Critical")
        assert m["Severity"] == m["MessageSeverity"]
        assert "%" not in m["Message"], m  # every argument substituted
        assert m["Resolution"]
    if word:
        assert word in json.dumps(body), (word, body)
    return body


def allow(r):
    return {m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()}


def expected_allow(methods):
    return methods | ({"HEAD"} if "GET" in methods else set())


def assert_405_with_allow(certd, table):
    """Every method a route of table ({path: methods served}) does not serve is 405 with the
    Allow header of the ones it does, and a Redfish error body."""
    for path, methods in table.items():
        for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "TRACE"]:
            if m in expected_allow(methods):
                continue
            r = certd.request(m, path, json={} if m in ("POST", "PUT", "PATCH") else None)
            assert r.status_code == 405, (m, path, r.status_code, r.text)
            assert allow(r) == expected_allow(methods), (m, path, r.headers)
            if m != "HEAD":
                assert_error(r, 405, "ResourceCannotBeDeleted" if m == "DELETE"
                             else "ActionNotSupported", None if m == "DELETE" else m)


# --- the real daemon -------------------------------------------------------------------------

def _free_port():
    """A loopback port nobody listens on now (the daemon binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Certd:
    """One certd process on a random loopback port with its own state directory.

    Attributes: url ("https://127.0.0.1:PORT"), port, state_dir, admin ((user, password) of the
    bootstrapped administrator), config_path (None for the embedded defaults).
    Responses are fetched without verifying the server certificate: the bootstrap certificate
    names the host, not 127.0.0.1; TLS itself is checked with openssl s_client in the tests
    that care.
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
        """certctl user add; returns once the running daemon takes the login."""
        p = subprocess.run([self.certctl, "user", "add", name, "--role", role,
                            "--users-file", self.users_file], input=password + "\n",
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.returncode, p.stderr)
        self.wait_for_login((name, password))

    def wait_for_login(self, auth, timeout=5.0):
        """certd re-reads the users file when inotify reports a change (after a settling
        delay of 200 ms, on a worker): wait until these credentials work, if the daemon runs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        # Let the reload happen first: failed logins from this address are rate-limited, so
        # polling with credentials certd does not know yet could lock the address out.
        time.sleep(0.5)
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
        """One request on a connection of its own."""
        with Client(self, auth) as c:
            return c.request(method, path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)


class Client:
    """A keep-alive session on one certd as admin, (user, password) or nobody (None); paths
    are relative to the daemon's URL."""

    def __init__(self, certd, auth="admin"):
        self.certd = certd
        self.s = certd.session(auth)

    def request(self, method, path, **kw):
        # Generous: RSA-4096 keys are made while some requests wait.
        kw.setdefault("timeout", 300)
        return self.s.request(method, self.certd.url + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture(scope="session")
def certd_exe():
    path = os.environ.get("CERTD")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("CERTD must name the built certd (run through meson test)")
    return path


@pytest.fixture
def certd_factory(certd_exe, certctl, tmp_path):
    """Make (not start) daemons: certd_factory(config=None, args=(), name="d"). Each one is
    killed afterwards if still running, and its log scanned for key material."""
    made = []

    def make(config=None, args=(), name="d"):
        c = Certd(certd_exe, certctl, tmp_path / name, config=config, args=args)
        made.append(c)
        return c

    yield make
    for c in made:
        c.kill()
        no_secrets(c.log(), f"the log of certd {c.base_dir}")


@pytest.fixture
def certd(certd_factory):
    """A started certd on embedded defaults; checked to stop cleanly afterwards."""
    c = certd_factory().start()
    yield c
    rc = c.stop()
    assert rc in (0, None), f"certd exited with {rc}:\n{c.log()}"


# --- a private D-Bus (issue #7) --------------------------------------------------------------

# A session bus of our own that works as root and as a user: EXTERNAL authentication only
# (the uid of the connecting process is the daemon's), everyone may own and call everything,
# and monitors (busctl monitor) may watch. The packaged system bus policy is tested separately.
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  {extra}
</busconfig>
"""


class BusError(AssertionError):
    """A D-Bus call answered with an error: name ("xyz.openbmc_project.Common.Error.NotAllowed")
    and message."""

    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def _busctl_args(signature, values):
    """busctl's command-line form of values for a signature made of s, o, x, t, u, i, b, arrays
    of those (busctl wants an array's length before its elements) and v, given as a (type,
    value) pair of one of the simple types."""
    out = []
    i = 0
    vals = list(values)
    for v in vals:
        c = signature[i]
        if c == "v":
            i += 1
            out += [v[0], str(v[1])]
        elif c == "a":
            i += 2
            out.append(str(len(v)))
            out.extend(str(e) for e in v)
        else:
            i += 1
            out.append(("true" if v else "false") if c == "b" else str(v))
    assert i == len(signature), (signature, values)
    return out


def _dbus_send_args(signature, values):
    """dbus-send's typed arguments for the same signatures (arrays of strings only)."""
    kinds = {"s": "string", "o": "objpath", "x": "int64", "t": "uint64", "u": "uint32",
             "i": "int32", "b": "boolean"}
    out = []
    i = 0
    for v in values:
        c = signature[i]
        if c == "v":
            out.append(f"variant:{kinds[v[0]]}:{v[1]}")
            i += 1
        elif c == "a":
            assert signature[i + 1] == "s" and not any("," in e for e in v), (signature, v)
            out.append("array:string:" + ",".join(v))
            i += 2
        else:
            out.append(f"{kinds[c]}:{str(v).lower() if c == 'b' else v}")
            i += 1
    assert i == len(signature), (signature, values)
    return out


def unvariant(v):
    """busctl's JSON of a value with its variants ({"type": ..., "data": ...}) unwrapped."""
    if isinstance(v, dict):
        if set(v) == {"type", "data"} and isinstance(v["type"], str):
            return unvariant(v["data"])
        return {k: unvariant(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unvariant(x) for x in v]
    return v


class Bus:
    """The private bus as clients see it: busctl and dbus-send with DBUS_SESSION_BUS_ADDRESS.
    Every output is scanned for private key material."""

    TIMEOUT = 120

    def __init__(self, address):
        self.address = address

    def env(self):
        return dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)

    def call(self, dest, path, iface, method, signature="", *args, timeout=None):
        """A method call through busctl; the reply's values (variants unwrapped) as a list.
        Raises BusError (without the error's name: busctl does not print it) on failure."""
        # "--": arguments such as a PEM's "-----BEGIN" are not options.
        cmd = ["busctl", "--user", "--json=short", f"--timeout={timeout or self.TIMEOUT}", "--",
               "call", dest, path, iface, method]
        if signature:
            cmd += [signature, *_busctl_args(signature, args)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env(),
                           timeout=(timeout or self.TIMEOUT) + 30)
        no_secrets(p.stdout + p.stderr, f"busctl call {path} {iface}.{method}")
        if p.returncode != 0:
            raise BusError("?", p.stderr.strip())
        if not p.stdout.strip():
            return []
        return unvariant(json.loads(p.stdout)["data"])

    def error(self, dest, path, iface, method, signature="", *args, timeout=None):
        """A call expected to fail, through dbus-send (which prints the error's name): the
        BusError. Fails the test if the call succeeds."""
        t = timeout or self.TIMEOUT
        cmd = ["dbus-send", "--session", "--print-reply", f"--reply-timeout={t * 1000}",
               f"--dest={dest}", path, f"{iface}.{method}", *_dbus_send_args(signature, args)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=t + 30)
        no_secrets(p.stdout + p.stderr, f"dbus-send {path} {iface}.{method}")
        assert p.returncode != 0, f"{iface}.{method}{args} on {path} succeeded:\n{p.stdout}"
        m = re.match(r"Error ([A-Za-z0-9_.]+): (.*)", p.stderr.strip(), re.S)
        assert m, p.stderr
        return BusError(m.group(1), m.group(2))

    def get_property(self, dest, path, iface, name):
        return self.call(dest, path, "org.freedesktop.DBus.Properties", "Get", "ss", iface,
                         name)[0]

    def managed_objects(self, dest, path):
        """GetManagedObjects of the ObjectManager at path: {object path: {interface: {property:
        value}}}."""
        return self.call(dest, path, "org.freedesktop.DBus.ObjectManager",
                         "GetManagedObjects")[0]

    def introspect(self, dest, path):
        return self.call(dest, path, "org.freedesktop.DBus.Introspectable", "Introspect")[0]

    def names(self):
        return set(self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                             "org.freedesktop.DBus", "ListNames")[0])

    def owner(self, name):
        return self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                         "GetNameOwner", "s", name)[0]

    def monitor(self):
        """A started Monitor (use it as a context manager)."""
        return Monitor(self)


def stop_process(proc, timeout=10):
    """End a helper process the tests started (busctl monitor, dbus-daemon): SIGTERM, and
    SIGKILL when it has not exited within timeout seconds. Reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Monitor:
    """Every message on the bus, as `busctl monitor --json=short` prints it, recorded by a
    background process from the moment start() returns (busctl says it monitors only once the
    bus has made it a monitor). messages is the list so far, in bus order."""

    def __init__(self, bus):
        import threading
        self.bus = bus
        self.messages = []
        self.failure = None  # what stopped the reader (a secret seen on the bus, bad JSON)
        self.cond = threading.Condition()
        # busctl writes through stdio: line-buffered, or a pipe would hold messages back.
        self.proc = subprocess.Popen(["stdbuf", "-oL", "busctl", "--user", "monitor",
                                      "--json=short"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=bus.env())
        self.err = b""
        ready = self.proc.stderr.readline()
        if b"Monitoring" not in ready:
            self.stop()
            raise AssertionError(f"busctl monitor did not start: {ready!r}")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            self._read_lines()
        except Exception as e:  # noqa: BLE001 -- handed to the test thread by wait()
            with self.cond:
                self.failure = e
                self.cond.notify_all()

    def _read_lines(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            no_secrets(line, "a D-Bus message")
            m = json.loads(line)
            payload = m.get("payload") or {"type": "", "data": []}
            m["payload"] = {"type": payload.get("type"), "data": unvariant(payload["data"])}
            with self.cond:
                self.messages.append(m)
                self.cond.notify_all()

    def wait(self, pred, timeout=60.0, what="a D-Bus message", start=0):
        """The first message from index start on for which pred holds, with its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.failure is not None:
                    raise AssertionError(f"the monitor stopped: {self.failure}")
                for i in range(start, len(self.messages)):
                    if pred(self.messages[i]):
                        return i, self.messages[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; saw:\n" + "\n".join(
                        json.dumps(m)[:300] for m in self.messages[start:][-30:]))
                self.cond.wait(left)

    def sync(self):
        """Wait until every message sent before this call is recorded: a Ping of the bus
        driver, whose reply the monitor sees after everything that came before it."""
        n = len(self.snapshot())
        self.bus.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                      "org.freedesktop.DBus.Peer", "Ping")
        self.wait(lambda m: m.get("type") == "method_call" and m.get("member") == "Ping" and
                  m.get("interface") == "org.freedesktop.DBus.Peer", start=n, what="our Ping")
        # The Ping's reply comes after it; waiting for the call is enough for ordering since
        # the bus delivers to monitors in order.

    def snapshot(self):
        with self.cond:
            return list(self.messages)

    def signals(self, member, path=None, start=0):
        return [m for m in self.snapshot()[start:]
                if m.get("type") == "signal" and m.get("member") == member and
                (path is None or m.get("path") == path)]

    def stop(self):
        stop_process(self.proc)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class PrivateBus:
    """dbus-daemon with BUS_CONFIG (plus extra policy) in a scratch directory of its own."""

    def __init__(self, extra=""):
        import tempfile
        # A short directory: a socket path has at most 107 bytes.
        self.dir = tempfile.mkdtemp(prefix="certd-bus-")
        self.socket = os.path.join(self.dir, "bus")
        self.config = os.path.join(self.dir, "bus.conf")
        with open(self.config, "w") as f:
            f.write(BUS_CONFIG.format(socket=self.socket, extra=extra))
        self.log = open(os.path.join(self.dir, "dbus-daemon.log"), "wb")
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={self.config}", "--nofork",
                                      "--print-address=1"], stdout=subprocess.PIPE,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("unix:"):
            self.stop()
            raise AssertionError(f"dbus-daemon did not start: {line!r}")
        self.address = line
        self.bus = Bus(self.address)

    def stop(self):
        import shutil
        stop_process(self.proc)
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_bus():
    """A private session bus for the test module; DBUS_SESSION_BUS_ADDRESS names it for every
    process the tests start (certd, busctl, dbus-send). Yields a Bus."""
    pb = PrivateBus()
    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = pb.address
    try:
        yield pb.bus
    finally:
        if old is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = old
        pb.stop()
