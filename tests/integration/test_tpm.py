# SPDX-License-Identifier: Apache-2.0
"""Keys held by a TPM (issue #5), on a software TPM of this module's own (tools/swtpm-env):
certd configured with [providers] load = default,tpm2 and the TCTI in [provider tpm2] (not in
the environment), keys made inside the TPM for the self-signed bootstrap and for GenerateCSR,
persistent (handle:) and serialized (object:) keys and a certificate in an NV index loaded at
start, the CA's key in the TPM, and TLS 1.2 and 1.3 handshakes checked with `openssl s_client`.
The TSS2 blob on disk is checked to be no software key: `openssl pkey` without the provider
cannot use it. Bad configurations and inputs are refused with messages that name the cause.

Without a resource manager (swtpm here, not /dev/tpmrm0), a process killed while it holds TPM
objects leaves them in the TPM's three slots; the kernel's resource manager flushes them when
the process dies. Between tests, and after a kill -9, the module flushes them itself, standing
in for that resource manager."""
import base64
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CA, Client, cert_pem, ok, schemas, served_cert
from cryptography import x509
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parents[2]
SWTPM_ENV = ROOT / "tools" / "swtpm-env"
HTTPS = "/redfish/v1/Managers/bmc/NetworkProtocol/HTTPS/Certificates"
LDAP = "/redfish/v1/AccountService/LDAP/Certificates"
SERVICE = "/redfish/v1/CertificateService"
GENERATE_CSR = SERVICE + "/Actions/CertificateService.GenerateCSR"
REPLACE = SERVICE + "/Actions/CertificateService.ReplaceCertificate"
SIGN = "/ibm/v1/Host/Actions/SignCSR"
TSS2_HEADER = b"-----BEGIN TSS2 PRIVATE KEY-----"
PROV = ["-provider", "tpm2", "-provider", "default"]


class Tpm:
    """A swtpm of our own: env holds the TCTI variables for tpm2-tools and openssl only; certd
    gets the TCTI from its configuration."""

    def __init__(self, directory):
        self.dir = str(directory)
        p = subprocess.run([str(SWTPM_ENV), "start", self.dir], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, f"cannot start a software TPM: {p.stderr}"
        self.env = dict(os.environ)
        for name, value in re.findall(r"export (\w+)=['\"]?([^'\"\n]*)['\"]?", p.stdout):
            self.env[name] = value
        self.tcti = self.env["TPM2OPENSSL_TCTI"]
        assert self.tcti.startswith("swtpm:"), p.stdout

    def run(self, *args, check=True, input=None):
        p = subprocess.run(list(args), capture_output=True, env=self.env, timeout=120,
                           input=input)
        if check:
            assert p.returncode == 0, (args, p.stderr.decode(errors="replace"))
        return p

    def openssl(self, *args, check=True, input=None):
        return self.run("openssl", *args, check=check, input=input)

    def flush(self):
        self.run("tpm2_flushcontext", "-t", check=False)
        self.run("tpm2_flushcontext", "-s", check=False)

    def transient(self):
        out = self.run("tpm2_getcap", "handles-transient").stdout.decode()
        return [ln for ln in out.splitlines() if ln.strip().startswith("- 0x")]

    def genkey(self, path, alg="EC"):
        opt = ["-pkeyopt", "group:P-256"] if alg == "EC" else ["-pkeyopt", "bits:2048"]
        self.openssl("genpkey", *PROV, "-propquery", "provider=tpm2", "-algorithm", alg, *opt,
                     "-out", str(path))
        assert Path(path).read_bytes().startswith(TSS2_HEADER)

    def persist(self, blob, handle, obj=None):
        ctx = Path(self.dir) / "load.ctx"
        self.run("tpm2_load", "-r", str(blob), "-c", str(ctx))
        self.run("tpm2_evictcontrol", "-C", "o", "-c", str(ctx), handle,
                 *(["-o", str(obj)] if obj else []))
        self.flush()

    def pubkey(self, uri):
        """The public key of a TPM key, as the provider reads it. Without a resource manager the
        TPM's three object slots are shared with a running certd, whose TLS handshakes and
        health probe briefly take one (a hash sequence): a load refused for lack of a slot
        (TPM_RC_OBJECT_MEMORY, 0x902) is tried again; any other failure is not."""
        for _ in range(10):
            p = self.openssl("pkey", *PROV, "-in", str(uri), "-pubout", check=False)
            if p.returncode == 0 or b"0x902" not in p.stderr and b"0x00000902" not in p.stderr:
                break
            time.sleep(0.2)
        assert p.returncode == 0, (uri, p.stderr.decode(errors="replace"))
        return p.stdout

    def stop(self):
        subprocess.run([str(SWTPM_ENV), "stop", self.dir], capture_output=True, timeout=60)

    def start_again(self):
        """The same TPM (its state directory) at the same address, as after a power cycle:
        persistent objects are there, transient ones are gone."""
        port = re.search(r"port=(\d+)", self.tcti).group(1)
        p = subprocess.run([str(SWTPM_ENV), "start", self.dir], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, SWTPM_ENV_PORT=port))
        assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def tpm(tmp_path_factory):
    if not shutil.which("swtpm") or not shutil.which("tpm2_getcap"):
        pytest.fail("swtpm and tpm2-tools are needed (scripts/install-deps installs them)")
    t = Tpm(tmp_path_factory.mktemp("tpm"))
    yield t
    t.stop()


@pytest.fixture(autouse=True)
def _clean_tpm(tpm):
    """Every test starts with the TPM's transient slots free (see the module's text)."""
    tpm.flush()
    yield
    tpm.flush()


def config(tpm, https_key="tpm2:ec:P-256", extra="", https_extra="", ca=""):
    return f"""
[providers]
load = default,tpm2

[provider tpm2]
tcti = {tpm.tcti}

[endpoint https]
type = server
new_key = {https_key}
reload = self
{https_extra}

[endpoint ldap]
type = client
new_key = tpm2:ec:P-256

[endpoint truststore]
type = authority
{extra}
{ca}
"""


def spki_pin(cert):
    """The SPKI pin (sha256//BASE64) of a certificate's key, computed here."""
    return "sha256//" + base64.b64encode(hashlib.sha256(spki(cert)).digest()).decode()


def spki(pem_or_cert):
    if isinstance(pem_or_cert, x509.Certificate):
        k = pem_or_cert.public_key()
    else:
        k = serialization.load_pem_public_key(pem_or_cert)
    return k.public_bytes(serialization.Encoding.DER,
                          serialization.PublicFormat.SubjectPublicKeyInfo)


def s_client_ok(port, version):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version,
                        "-brief"], input=b"", capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode == 0 and "CONNECTION ESTABLISHED" in out, out
    return out


def assert_tss2_blob(tpm, path):
    """The key file is a TPM blob, 0600, and no software key: openssl without the provider
    cannot use it, with it can."""
    data = Path(path).read_bytes()
    assert data.startswith(TSS2_HEADER), data[:40]
    assert b"BEGIN PRIVATE KEY" not in data
    assert (os.stat(path).st_mode & 0o777) == 0o600
    p = subprocess.run(["openssl", "pkey", "-in", str(path), "-noout"], capture_output=True,
                       timeout=60)
    assert p.returncode != 0, "a default-only openssl could use the TPM blob"
    assert tpm.pubkey(path)


def oem(body):
    o = body["Oem"]["Certd"]
    s = schemas()
    if s:
        s.check(o, "CertdCertificate.v1_0_0.json", "CertdCertificate")
    return o


@pytest.mark.parametrize("alg", ["tpm2:ec:P-256", "tpm2:rsa:2048"])
def test_bootstrap_key_in_tpm_serves_tls12_and_13(tpm, certd_factory, alg):
    d = certd_factory(config(tpm, https_key=alg)).start()
    key = Path(d.state_dir) / "https" / "key.pem"
    assert_tss2_blob(tpm, key)
    served = served_cert(d.port)
    assert spki(served) == spki(tpm.pubkey(key)), "the served certificate is not the TPM key's"
    for v in ("-tls1_3", "-tls1_2"):
        s_client_ok(d.port, v)
    with Client(d) as api:
        body = ok(api.get(HTTPS + "/1")).json()
        assert oem(body) == {"@odata.type": "#CertdCertificate.v1_0_0.CertdCertificate",
                             "KeyProvider": "tpm2", "KeyLocation": f"file:{key}",
                             "KeyPin": spki_pin(served), "NextKeyPins": []}
        assert "PRIVATE KEY" not in str(body)
    # The key is loaded again from its blob at the next start: the same key is served.
    d.restart()
    assert spki(served_cert(d.port)) == spki(served)
    assert d.stop() == 0


def test_generate_csr_into_tpm_then_install_and_serve(tpm, certd_factory, tmp_path):
    d = certd_factory(config(tpm)).start()
    with Client(d) as api:
        r = ok(api.post(GENERATE_CSR, json={
            "CertificateCollection": {"@odata.id": HTTPS}, "CommonName": "bmc.tpm.test",
            "City": "X", "Country": "DE", "Organization": "O", "OrganizationalUnit": "U",
            "State": "S", "AlternativeNames": ["bmc.tpm.test"], "KeyPairAlgorithm": "EC",
            "KeyCurveId": "TPM_ECC_NIST_P256"}))
        csr_pem = r.json()["CSRString"].encode()
        p = subprocess.run(["openssl", "req", "-noout", "-verify"], input=csr_pem,
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        pending = list((Path(d.state_dir) / "https" / "pending").glob("*.key"))
        assert len(pending) == 1
        assert_tss2_blob(tpm, pending[0])
        csr = x509.load_pem_x509_csr(csr_pem)
        assert csr.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
            spki(tpm.pubkey(pending[0]))
        ca = CA()
        leaf = ca.sign_csr(csr)
        ok(api.post(REPLACE, json={"CertificateString": cert_pem(leaf).decode(),
                                   "CertificateType": "PEM",
                                   "CertificateUri": {"@odata.id": HTTPS + "/1"}}))
        assert not list((Path(d.state_dir) / "https" / "pending").glob("*.key"))
    key = Path(d.state_dir) / "https" / "key.pem"
    assert_tss2_blob(tpm, key)
    deadline = time.monotonic() + 10
    while served_cert(d.port) != leaf and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served_cert(d.port) == leaf
    s_client_ok(d.port, "-tls1_2")
    assert d.stop() == 0


def test_software_key_upload_refused_for_tpm_endpoint(tpm, certd_factory):
    d = certd_factory(config(tpm)).start()
    key = Path(d.state_dir) / "https" / "key.pem"
    before = key.read_bytes()
    _, _, both = CA().leaf("bmc.tpm.test")
    with Client(d) as api:
        r = api.post(REPLACE, json={"CertificateString": both.decode(), "CertificateType": "PEM",
                                    "CertificateUri": {"@odata.id": HTTPS + "/1"}})
        assert r.status_code == 400, r.text
        assert "tpm2" in r.text and "PRIVATE" not in r.text
    assert key.read_bytes() == before
    assert d.stop() == 0


def test_handle_object_and_nv_certificate_at_start(tpm, certd_factory, tmp_path):
    blob = tmp_path / "k.pem"
    tpm.genkey(blob)
    obj = tmp_path / "k.obj"
    tpm.persist(blob, "0x81000101", obj)
    try:
        # A persistent key with no certificate yet: a self-signed one is made for it.
        d = certd_factory(config(tpm, https_extra="key = handle:0x81000101"), name="h").start()
        assert spki(served_cert(d.port)) == spki(tpm.pubkey("handle:0x81000101"))
        with Client(d) as api:
            assert oem(ok(api.get(HTTPS + "/1")).json())["KeyLocation"] == "handle:0x81000101"
        assert not (Path(d.state_dir) / "https" / "key.pem").exists()
        assert d.stop() == 0

        # The same key by its serialized object.
        d = certd_factory(config(tpm, https_extra=f"key = object:{obj}"), name="o").start()
        assert spki(served_cert(d.port)) == spki(tpm.pubkey("handle:0x81000101"))
        assert d.stop() == 0

        # A CA-signed certificate in an NV index, for the persistent key.
        ca = CA()
        pub = serialization.load_pem_public_key(tpm.pubkey("handle:0x81000101"))
        from cryptography.x509.oid import NameOID
        leaf = ca.issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nv.tpm.test")]),
                        pub, sans=(x509.DNSName("nv.tpm.test"),))
        der = tmp_path / "leaf.der"
        der.write_bytes(leaf.public_bytes(serialization.Encoding.DER))
        tpm.run("tpm2_nvdefine", "0x01000101", "-C", "o", "-s", str(len(der.read_bytes())),
                "-a", "ownerwrite|ownerread|authread|authwrite")
        tpm.run("tpm2_nvwrite", "0x01000101", "-C", "o", "-i", str(der))
        d = certd_factory(config(tpm, https_extra="key = handle:0x81000101\n"
                                 "cert = handle:0x01000101"), name="nv").start()
        assert served_cert(d.port) == leaf
        s_client_ok(d.port, "-tls1_3")
        assert d.stop() == 0
    finally:
        tpm.run("tpm2_evictcontrol", "-C", "o", "-c", "0x81000101", check=False)
        tpm.run("tpm2_nvundefine", "0x01000101", "-C", "o", check=False)


@pytest.mark.parametrize("extra, words", [
    ("key = handle:0x81000fff", ["0x81000fff"]),
    ("key = handle:0x123", ["[endpoint https] key", "handle:"]),
    ("key = handle:0x81ZZ0000", ["[endpoint https] key"]),
    ("key = object:/nonexistent/none.obj", ["none.obj"]),
    ("key = foo:bar", ["foo:bar"]),
    ("key = handle:0x81000fff\ncert = handle:0x01000fff", ["0x81000fff"]),
])
def test_bad_or_missing_key_location_refuses_to_start(tpm, certd_factory, extra, words):
    """Bad URIs and missing handles: certd does not start, says what is wrong, and makes no
    key of its own instead (never a silent software key)."""
    d = certd_factory(config(tpm, https_extra=extra))
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=60) != 0
    log = d.log()
    for w in words:
        assert w in log, log
    assert not (Path(d.state_dir) / "https" / "key.pem").exists()


def test_unreachable_tpm_or_unknown_provider_refuses_to_start(tpm, certd_factory):
    for name, tcti in (("port", "swtpm:host=127.0.0.1,port=9"), ("nonsense", "nonsense")):
        d = certd_factory(config(tpm).replace(tpm.tcti, tcti), name=f"tcti-{name}")
        d.start(expect_ready=False)
        assert d.proc.wait(timeout=60) != 0
        assert "provider tpm2 cannot be loaded" in d.log(), d.log()
        assert not (Path(d.state_dir) / "https" / "key.pem").exists()
    # A curve no TPM key can have: refused by the configuration.
    d = certd_factory(config(tpm, https_key="tpm2:ec:P-999"), name="curve")
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=60) != 0
    assert "P-999" in d.log(), d.log()
    # A key type naming a provider that is not loaded: refused, not made in software.
    d = certd_factory(config(tpm).replace("load = default,tpm2", "load = default")
                      .replace("[provider tpm2]\ntcti = " + tpm.tcti, ""), name="notloaded")
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=60) != 0
    assert "provider 'tpm2' is not in [providers] load" in d.log(), d.log()
    assert not (Path(d.state_dir) / "https" / "key.pem").exists()
    d = certd_factory(config(tpm).replace("load = default,tpm2", "load = default,tpm2,nosuch")
                      .replace("[provider tpm2]", "[provider nosuch]\n\n[provider tpm2]"),
                      name="nosuch")
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=60) != 0
    assert "nosuch" in d.log(), d.log()
    # Never a silent software key: nothing was made.
    assert not (Path(d.state_dir) / "https" / "key.pem").exists()


def test_ca_key_in_tpm_signs_csrs(tpm, certd_factory, tmp_path):
    d = certd_factory(config(tpm, ca="[ca]\nnew_key = tpm2:ec:P-256")).start()
    cakey = Path(d.state_dir) / "ca" / "ca-key.pem"
    assert_tss2_blob(tpm, cakey)
    key = tmp_path / "console.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(key)], check=True, timeout=60)
    csr = subprocess.run(["openssl", "req", "-new", "-key", str(key), "-subj", "/CN=hmc"],
                         capture_output=True, check=True, timeout=60).stdout
    with Client(d) as api:
        out = ok(api.post(SIGN, json={"CsrString": csr.decode()})).json()
        root_pem = ok(api.get("/ibm/v1/Host/Certificate/root")).json()["Certificate"]
    root = tmp_path / "root.pem"
    root.write_text(root_pem)
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(out["Certificate"])
    p = subprocess.run(["openssl", "verify", "-CAfile", str(root), str(leaf)],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert spki(x509.load_pem_x509_certificate(root.read_bytes())) == spki(tpm.pubkey(cakey))
    assert d.stop() == 0


def test_kill_during_tpm_keygen_then_restart(tpm, certd_factory):
    d = certd_factory(config(tpm, https_key="tpm2:rsa:2048")).start()
    served = served_cert(d.port)
    import concurrent.futures
    body = {"CertificateCollection": {"@odata.id": HTTPS}, "CommonName": "x", "City": "X",
            "Country": "DE", "Organization": "O", "OrganizationalUnit": "U", "State": "S",
            "KeyPairAlgorithm": "TPM_ALG_RSA", "KeyBitLength": 2048}

    def csr(_):
        try:
            with Client(d) as api:
                return api.post(GENERATE_CSR, json=body, timeout=30).status_code
        except Exception:
            return None  # the connection died with certd

    # Four RSA keys made one after the other in the TPM (about 0.5 s of work): the kill
    # lands while some are made or waiting, which the unanswered requests show.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        futures = [ex.submit(csr, i) for i in range(4)]
        time.sleep(0.25)
        d.kill()
        answered = [f.result(timeout=60) for f in futures]
    assert answered.count(200) < 4, "every key was made before the kill"
    tpm.flush()  # what the kernel's resource manager does when a client dies
    d.start()
    s_client_ok(d.port, "-tls1_3")
    assert served_cert(d.port) == served  # the key and certificate are the ones before
    for f in (Path(d.state_dir) / "https").rglob("*"):
        assert not f.name.startswith(".tmp"), f
    # No half-written key: whatever pending key there is loads (a TSS2 blob of this TPM).
    for f in (Path(d.state_dir) / "https" / "pending").glob("*.key"):
        assert_tss2_blob(tpm, f)
    assert d.stop() == 0


def test_new_key_made_persistent_at_handle_and_cert_into_nv(tpm, certd_factory, tmp_path):
    """A CSR for an endpoint whose key lives at a handle: the new key is made in the TPM, and
    when its certificate is installed it replaces the old key at that handle (through ESYS);
    the certificate goes into the endpoint's NV index. Both survive a restart."""
    blob = tmp_path / "k.pem"
    tpm.genkey(blob)
    tpm.persist(blob, "0x81000102")
    try:
        old_pub = tpm.pubkey("handle:0x81000102")
        # No NV index yet: the self-signed bootstrap defines it and writes its certificate.
        d = certd_factory(config(tpm, https_extra="key = handle:0x81000102\n"
                                 "cert = handle:0x01000102")).start()
        boot = served_cert(d.port)
        assert spki(boot) == spki(old_pub)
        nv = tpm.openssl("x509", *PROV, "-in", "handle:0x01000102", "-outform", "DER").stdout
        assert x509.load_der_x509_certificate(nv) == boot
        with Client(d) as api:
            out = ok(api.post(GENERATE_CSR, json={
                "CertificateCollection": {"@odata.id": HTTPS}, "CommonName": "rot.tpm.test",
                "City": "X", "Country": "DE", "Organization": "O", "OrganizationalUnit": "U",
                "State": "S", "AlternativeNames": ["rot.tpm.test"]})).json()
            csr = x509.load_pem_x509_csr(out["CSRString"].encode())
            assert spki_of_key(csr.public_key()) != spki(old_pub), "not a new key"
            leaf = CA().sign_csr(csr)
            ok(api.post(REPLACE, json={"CertificateString": cert_pem(leaf).decode(),
                                       "CertificateType": "PEM",
                                       "CertificateUri": {"@odata.id": HTTPS + "/1"}}))
        assert spki(tpm.pubkey("handle:0x81000102")) == spki_of_key(csr.public_key())
        nv = tpm.openssl("x509", *PROV, "-in", "handle:0x01000102", "-outform", "DER").stdout
        assert x509.load_der_x509_certificate(nv) == leaf
        assert not (Path(d.state_dir) / "https" / "tpm-journal.pem").exists()
        wait_served(d, leaf)
        d.restart()
        assert served_cert(d.port) == leaf
        s_client_ok(d.port, "-tls1_2")
        assert d.stop() == 0
    finally:
        tpm.run("tpm2_evictcontrol", "-C", "o", "-c", "0x81000102", check=False)
        tpm.run("tpm2_nvundefine", "0x01000102", "-C", "o", check=False)


def test_interrupted_tpm_change_finished_at_start(tpm, certd_factory, tmp_path):
    """A journal a crash left (the new certificate and key, written before the TPM changed)
    is carried out at the next start."""
    blob = tmp_path / "k.pem"
    tpm.genkey(blob)
    tpm.persist(blob, "0x81000103")
    new_blob = tmp_path / "new.pem"
    tpm.genkey(new_blob)
    try:
        d = certd_factory(config(tpm, https_extra="key = handle:0x81000103")).start()
        assert d.stop() == 0
        tpm.flush()
        pub = serialization.load_pem_public_key(tpm.pubkey(new_blob))
        leaf = CA().issue(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "j")]),
                          pub, sans=(x509.DNSName("j.tpm.test"),))
        journal = Path(d.state_dir) / "https" / "tpm-journal.pem"
        journal.write_bytes(cert_pem(leaf) + new_blob.read_bytes())
        os.chmod(journal, 0o600)
        d.start()
        assert served_cert(d.port) == leaf
        assert spki(tpm.pubkey("handle:0x81000103")) == spki(tpm.pubkey(new_blob))
        assert not journal.exists()
        assert "interrupted" in d.log()
        assert d.stop() == 0
    finally:
        tpm.run("tpm2_evictcontrol", "-C", "o", "-c", "0x81000103", check=False)


def test_certctl_info_shows_where_the_key_lives(tpm, certd_factory, certctl, tmp_path):
    d = certd_factory(config(tpm)).start()
    assert d.stop() == 0
    tpm.flush()
    key = Path(d.state_dir) / "https" / "key.pem"
    cert = Path(d.state_dir) / "https" / "cert.pem"
    p = tpm.run(certctl, "--config", d.config_path, "info", "--key", str(key), str(cert))
    out = p.stdout.decode()
    assert "held by provider tpm2" in out and str(key) in out, out
    assert "PRIVATE KEY" not in out
    p = tpm.run(certctl, "--config", d.config_path, "info", "--json", "--key", str(key),
                str(cert))
    import json
    j = json.loads(p.stdout)
    assert j["private_key"]["provider"] == "tpm2" and j["private_key"]["held"] is True
    # Without the provider the blob is no key certctl can read: a clear error, exit 1.
    p = subprocess.run([certctl, "info", "--key", str(key), str(cert)], capture_output=True,
                       timeout=60)
    assert p.returncode != 0 and b"tpm2" in p.stderr, p.stderr
    # A key that is not the certificate's is refused.
    other = tmp_path / "other.pem"
    tpm.genkey(other)
    tpm.flush()
    p = tpm.run(certctl, "--config", d.config_path, "info", "--key", str(other), str(cert),
                check=False)
    assert p.returncode == 1 and b"not the certificate's key" in p.stderr, p.stderr


def spki_of_key(k):
    return k.public_bytes(serialization.Encoding.DER,
                          serialization.PublicFormat.SubjectPublicKeyInfo)


def wait_served(d, cert, timeout=10):
    deadline = time.monotonic() + timeout
    while served_cert(d.port) != cert and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served_cert(d.port) == cert


def test_tpm_stopped_mid_run_then_back(tpm, certd_factory):
    """The TPM goes away: connections already open go on, a new handshake (which needs the
    TPM's signature) is refused, a key that must be made in the TPM gets a clear 503, and
    certd lives and keeps serving what needs no TPM. The TPM comes back (restarted, as after a
    power cycle): tpm2-openssl's ESYS context answers every command with "bad sequence" once
    one failed below the TPM, so certd, whose probe finds the TPM answering while the provider
    cannot sign, restarts itself in place (the same process) and serves the same key again."""
    d = certd_factory(config(tpm)).start()
    served = served_cert(d.port)
    csr_body = {"CertificateCollection": {"@odata.id": HTTPS}, "CommonName": "x", "City": "X",
                "Country": "DE", "Organization": "O", "OrganizationalUnit": "U", "State": "S"}
    with Client(d) as api:
        ok(api.get(SERVICE))
        tpm.stop()
        try:
            ok(api.get(HTTPS + "/1"))  # the open connection needs no TPM
            p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}",
                                "-brief"], input=b"", capture_output=True, timeout=60)
            assert b"CONNECTION ESTABLISHED" not in p.stdout + p.stderr and p.returncode != 0
            r = api.post(GENERATE_CSR, json=csr_body)
            assert r.status_code == 503, (r.status_code, r.text)
            assert "TPM" in r.text or "tpm2" in r.text, r.text
            assert "PRIVATE" not in r.text
            ok(api.get(SERVICE))
            assert d.proc.poll() is None, d.log()
            deadline = time.monotonic() + 20
            while "TPM does not answer" not in d.log() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "TPM does not answer" in d.log(), d.log()[-2000:]
        finally:
            tpm.start_again()
    pid = d.proc.pid
    deadline = time.monotonic() + 30
    while True:
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}", "-brief"],
                           input=b"", capture_output=True, timeout=60)
        if b"CONNECTION ESTABLISHED" in p.stdout + p.stderr and p.returncode == 0:
            break
        assert time.monotonic() < deadline, d.log()[-3000:]
        assert d.proc.poll() is None, d.log()[-3000:]
        time.sleep(0.5)
    assert d.proc.pid == pid and d.proc.poll() is None
    assert "restarts itself" in d.log()
    assert served_cert(d.port) == served
    s_client_ok(d.port, "-tls1_3")
    with Client(d) as api:
        out = ok(api.post(GENERATE_CSR, json=csr_body)).json()
        assert "CSRString" in out
    assert d.stop() == 0


def test_burst_of_handshakes_with_tpm_key_all_served(tpm, certd_factory):
    """Handshakes with a TPM key run one at a time on the serial thread; a burst of new
    connections waits its turn (each within its deadline) rather than being dropped, and
    SignCSR still gets room in the worker queue meanwhile."""
    import concurrent.futures
    import socket
    import ssl
    d = certd_factory(config(tpm, extra="[limits]\nmax_connections = 512")).start()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def one(_):
        with socket.create_connection(("127.0.0.1", d.port), timeout=60) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"GET /redfish/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(12)

    with concurrent.futures.ThreadPoolExecutor(max_workers=150) as ex:
        answers = list(ex.map(one, range(150)))
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers), answers[:5]
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_keys_under_a_persistent_parent_with_a_password(tpm, certd_factory, tmp_path):
    """[provider tpm2] parent = 0x81... and parent_auth_file: keys are made under that storage
    key with its password (tpm2-openssl's parent and parent-auth), loaded again at the next
    start (its TPM2OPENSSL_PARENT_AUTH), and made persistent through ESYS with it. The
    password file must be ours alone; a wrong password stops certd with a message."""
    ctx = tmp_path / "parent.ctx"
    tpm.run("tpm2_createprimary", "-C", "o", "-G", "ecc", "-p", "s3cret", "-c", str(ctx))
    tpm.run("tpm2_evictcontrol", "-C", "o", "-c", str(ctx), "0x81000010")
    tpm.flush()
    pw = tmp_path / "parent-pw"
    pw.write_text("s3cret\n")
    os.chmod(pw, 0o600)
    env = dict(tpm.env, TPM2OPENSSL_PARENT_AUTH="s3cret")

    def with_parent(pwfile):
        return config(tpm).replace("[provider tpm2]\n", "[provider tpm2]\nparent = 0x81000010\n"
                                   f"parent_auth_file = {pwfile}\n")
    try:
        d = certd_factory(with_parent(pw)).start()
        key = Path(d.state_dir) / "https" / "key.pem"
        assert key.read_bytes().startswith(TSS2_HEADER)
        dump = subprocess.run(["openssl", "asn1parse", "-in", str(key)], capture_output=True,
                              text=True, timeout=60).stdout
        assert "INTEGER           :81000010" in dump, dump
        pub = subprocess.run(["openssl", "pkey", *PROV, "-in", str(key), "-pubout"], env=env,
                             capture_output=True, timeout=60)
        assert pub.returncode == 0, pub.stderr
        served = served_cert(d.port)
        assert spki(served) == spki(pub.stdout)
        with Client(d) as api:
            ok(api.post(GENERATE_CSR, json={
                "CertificateCollection": {"@odata.id": HTTPS}, "CommonName": "p", "City": "X",
                "Country": "DE", "Organization": "O", "OrganizationalUnit": "U", "State": "S"}))
        assert "s3cret" not in d.log()
        d.restart()
        assert served_cert(d.port) == served
        assert d.stop() == 0

        bad = tmp_path / "bad-pw"
        bad.write_text("wrong\n")
        os.chmod(bad, 0o600)
        for pwfile, mode, words in ((bad, 0o600, "tpm2"), (pw, 0o644, "group or others have access")):
            os.chmod(pwfile, mode)
            d2 = certd_factory(with_parent(pwfile), name=f"bad{mode:o}{pwfile.name}")
            d2.start(expect_ready=False)
            assert d2.proc.wait(timeout=60) != 0
            assert words in d2.log(), d2.log()
            assert "s3cret" not in d2.log() and "wrong" not in d2.log()
            tpm.flush()
        os.chmod(pw, 0o600)
    finally:
        tpm.run("tpm2_evictcontrol", "-C", "o", "-c", "0x81000010", check=False)


def test_renew_and_rekey_with_tpm_keys(tpm, certd_factory):
    """Renew signs a CSR with the TPM key itself (the same key); Rekey makes the new key in the
    TPM, whatever algorithm it names; the certificate for it installs and is served."""
    d = certd_factory(config(tpm)).start()
    key = Path(d.state_dir) / "https" / "key.pem"
    current = spki(tpm.pubkey(key))
    ca = CA()
    with Client(d) as api:
        out = ok(api.post(HTTPS + "/1/Actions/Certificate.Renew", json={})).json()
        csr = x509.load_pem_x509_csr(out["CSRString"].encode())
        assert csr.is_signature_valid and spki_of_key(csr.public_key()) == current
        renewed = ca.sign_csr(csr)
        ok(api.post(HTTPS, json={"CertificateString": cert_pem(renewed).decode(),
                                 "CertificateType": "PEM"}))
        wait_served(d, renewed)
        out = ok(api.post(HTTPS + "/1/Actions/Certificate.Rekey",
                          json={"KeyPairAlgorithm": "TPM_ALG_RSA", "KeyBitLength": 2048})).json()
        csr = x509.load_pem_x509_csr(out["CSRString"].encode())
        assert csr.is_signature_valid and spki_of_key(csr.public_key()) != current
        pending = list((Path(d.state_dir) / "https" / "pending").glob("*.key"))
        assert len(pending) == 1
        assert_tss2_blob(tpm, pending[0])
        rekeyed = ca.sign_csr(csr)
        ok(api.post(HTTPS, json={"CertificateString": cert_pem(rekeyed).decode(),
                                 "CertificateType": "PEM"}))
    wait_served(d, rekeyed)
    assert_tss2_blob(tpm, key)
    s_client_ok(d.port, "-tls1_2")
    assert d.stop() == 0
