# SPDX-License-Identifier: Apache-2.0
"""certctl end to end: what it makes is checked by openssl and Python's cryptography,
never by our own parser alone."""
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

CHALLENGE = "s3cret-Challenge!"
OID_CHALLENGE = ObjectIdentifier("1.2.840.113549.1.9.7")
OID_UNSTRUCTURED = ObjectIdentifier("1.2.840.113549.1.9.2")
OID_NAME = ObjectIdentifier("2.5.4.41")
OID_INITIALS = ObjectIdentifier("2.5.4.43")


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def spki_pin(cert):
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def attr(name, oid):
    vals = name.get_attributes_for_oid(oid)
    return vals[0].value if vals else None


def csr_attribute(csr, oid):
    try:
        return csr.attributes.get_attribute_for_oid(oid).value
    except AttributeError:  # cryptography < 36
        return csr.get_attribute_for_oid(oid)


@pytest.fixture
def pwfile(tmp_path):
    p = tmp_path / "challenge"
    p.write_text(CHALLENGE + "\n")
    return str(p)


FULL_FIELDS = [
    "--cn", "bmc.example.com", "--san", "bmc.example.com", "--san", "192.0.2.7",
    "--san", "2001:db8::7", "--san", "ops@example.com", "--san", "https://bmc.example.com/",
    "--key-usage", "DigitalSignature", "--key-usage", "KeyEncipherment",
    "--key-usage", "ServerAuthentication", "--key-usage", "ClientAuthentication",
    "--city", "Hyderabad", "--state", "Telangana", "--country", "IN", "--org", "ABCD, Ltd.",
    "--ou", "XY", "--email", "xxx@example.com", "--given-name", "Ada", "--surname", "Lovelace",
    "--initials", "AL", "--unstructured-name", "unit-7", "--contact-person", "Ada Lovelace",
]


@pytest.mark.parametrize("keyargs, keytype, digest", [
    ([], ec.EllipticCurvePublicKey, hashes.SHA256),
    (["--key-alg", "EC", "--key-curve", "secp384r1"], ec.EllipticCurvePublicKey, hashes.SHA384),
    (["--key-alg", "TPM_ALG_ECC", "--key-curve", "TPM_ECC_NIST_P521"], ec.EllipticCurvePublicKey,
     hashes.SHA384),
    (["--key-alg", "RSA", "--key-bits", "2048"], rsa.RSAPublicKey, hashes.SHA256),
])
def test_csr_every_field(run, tmp_path, pwfile, keyargs, keytype, digest):
    key_out = tmp_path / "k.pem"
    csr_out = tmp_path / "r.csr"
    p = run("csr", *FULL_FIELDS, *keyargs, "--challenge-password-file", pwfile,
            "--key-out", str(key_out), "--out", str(csr_out), check_rc=0)
    assert CHALLENGE not in p.stdout + p.stderr

    # openssl checks the self-signature independently.
    v = openssl("req", "-in", str(csr_out), "-verify", "-noout")
    assert v.returncode == 0, v.stderr

    assert mode(key_out) == 0o600
    key = serialization.load_pem_private_key(key_out.read_bytes(), None)
    csr = x509.load_pem_x509_csr(csr_out.read_bytes())
    assert csr.is_signature_valid
    assert isinstance(csr.public_key(), keytype)
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    assert isinstance(csr.signature_hash_algorithm, digest)

    s = csr.subject
    assert attr(s, NameOID.COMMON_NAME) == "bmc.example.com"
    assert attr(s, NameOID.LOCALITY_NAME) == "Hyderabad"
    assert attr(s, NameOID.STATE_OR_PROVINCE_NAME) == "Telangana"
    assert attr(s, NameOID.COUNTRY_NAME) == "IN"
    assert attr(s, NameOID.ORGANIZATION_NAME) == "ABCD, Ltd."
    assert attr(s, NameOID.ORGANIZATIONAL_UNIT_NAME) == "XY"
    assert attr(s, NameOID.EMAIL_ADDRESS) == "xxx@example.com"
    assert attr(s, NameOID.GIVEN_NAME) == "Ada"
    assert attr(s, NameOID.SURNAME) == "Lovelace"
    assert attr(s, OID_INITIALS) == "AL"
    assert attr(s, OID_UNSTRUCTURED) == "unit-7"
    assert attr(s, OID_NAME) == "Ada Lovelace"
    # Alternative names and usages are extensions, never subject attributes.
    for a in s:
        assert "192.0.2.7" not in a.value and "Authentication" not in a.value

    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["bmc.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7"),
                                                       ipaddress.ip_address("2001:db8::7")]
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["https://bmc.example.com/"]
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    cp = csr_attribute(csr, OID_CHALLENGE)
    assert (cp.decode() if isinstance(cp, bytes) else cp) == CHALLENGE


def test_csr_to_stdout_and_fresh_key_each_time(run, tmp_path):
    a = run("csr", "--cn", "a", "--key-out", str(tmp_path / "a.key"), check_rc=0)
    b = run("csr", "--cn", "a", "--key-out", str(tmp_path / "b.key"), check_rc=0)
    ca = x509.load_pem_x509_csr(a.stdout.encode())
    cb = x509.load_pem_x509_csr(b.stdout.encode())
    assert ca.public_key().public_numbers() != cb.public_key().public_numbers()
    assert "PRIVATE KEY" not in a.stdout + a.stderr


@pytest.mark.parametrize("args, rc, word", [
    (["--country", "USA"], 1, "Country"),
    (["--country", "U1"], 1, "Country"),
    (["--san", "bad name!"], 1, "lternative"),
    (["--san", "a..b.example"], 1, "lternative"),
    (["--key-usage", "Teleportation"], 1, "Teleportation"),
    (["--key-alg", "DSA"], 1, "DSA"),
    (["--key-alg", "RSA", "--key-bits", "1024"], 1, "1024"),
    (["--key-alg", "EC", "--key-curve", "secp256k1"], 1, "secp256k1"),
    (["--city", "x" * 129], 1, "128"),
    (["--key-bits", "abc"], 2, "--key-bits"),
    (["--bogus"], 2, "unknown option"),
])
def test_csr_rejections_write_nothing(run, tmp_path, args, rc, word):
    key_out = tmp_path / "k.pem"
    csr_out = tmp_path / "r.csr"
    p = run("csr", "--cn", "x.example.com", *args, "--key-out", str(key_out),
            "--out", str(csr_out))
    assert p.returncode == rc, (p.stdout, p.stderr)
    assert word in p.stderr
    assert not key_out.exists() and not csr_out.exists()
    assert os.listdir(tmp_path) == []  # no temporary leftovers either


def test_csr_common_name_bounds(run, tmp_path):
    run("csr", "--cn", "c" * 64, "--key-out", str(tmp_path / "ok.key"), check_rc=0)
    p = run("csr", "--cn", "c" * 65, "--key-out", str(tmp_path / "no.key"))
    assert p.returncode == 1 and "64" in p.stderr
    p = run("csr", "--key-out", str(tmp_path / "no.key"))
    assert p.returncode == 1 and "CommonName" in p.stderr
    assert not (tmp_path / "no.key").exists()


def test_csr_usage_errors(run, tmp_path):
    p = run("csr", "--cn", "x")
    assert p.returncode == 2 and "--key-out" in p.stderr
    p = run("csr", "--cn", "x", "--key", "a", "--key-out", "b")
    assert p.returncode == 2


def test_csr_with_existing_key(run, fixtures, tmp_path):
    p = run("csr", "--cn", "x.example.com", "--key", os.path.join(fixtures, "server-rsa.key"),
            check_rc=0)
    csr = x509.load_pem_x509_csr(p.stdout.encode())
    key = serialization.load_pem_private_key(
        open(os.path.join(fixtures, "server-rsa.key"), "rb").read(), None)
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    p = run("csr", "--cn", "x", "--key", os.path.join(fixtures, "server-ec-enc.key"))
    assert p.returncode == 1 and "encrypted" in p.stderr


def test_selfsign(run, tmp_path):
    cert_out = tmp_path / "c.pem"
    key_out = tmp_path / "c.key"
    run("selfsign", "--cn", "bmc.example.com", "--san", "192.0.2.9", "--days", "30",
        "--key-out", str(key_out), "--out", str(cert_out), check_rc=0)
    assert mode(key_out) == 0o600
    v = openssl("verify", "-CAfile", str(cert_out), "-purpose", "sslserver", str(cert_out))
    assert v.returncode == 0, v.stdout + v.stderr
    cert = x509.load_pem_x509_certificate(cert_out.read_bytes())
    key = serialization.load_pem_private_key(key_out.read_bytes(), None)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.version == x509.Version.v3
    assert 0 < cert.serial_number < 2 ** 128
    assert (cert.not_valid_after - cert.not_valid_before).days == 30
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "bmc.example.com" in san.get_values_for_type(x509.DNSName)
    assert ipaddress.ip_address("192.0.2.9") in san.get_values_for_type(x509.IPAddress)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is False
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert ski.digest == aki.key_identifier


def test_selfsign_rejections(run, tmp_path):
    p = run("selfsign", "--cn", "x", "--days", "0", "--key-out", str(tmp_path / "k"))
    assert p.returncode == 2 and "--days" in p.stderr
    p = run("selfsign", "--key-out", str(tmp_path / "k"))
    assert p.returncode == 2 and "--cn" in p.stderr
    p = run("selfsign", "--cn", "x", "--san", "not a name", "--key-out", str(tmp_path / "k"))
    assert p.returncode == 1
    assert os.listdir(tmp_path) == []


def test_info_json_matches_cryptography(run, fixtures):
    path = os.path.join(fixtures, "server-ec-chain.pem")
    p = run("info", "--json", path, check_rc=0)
    doc = json.loads(p.stdout)
    certs = [x509.load_pem_x509_certificate(b"-----BEGIN" + part)
             for part in open(path, "rb").read().split(b"-----BEGIN")[1:]]
    assert len(doc["certificates"]) == len(certs) == 2
    leaf, ref = doc["certificates"][0], certs[0]
    assert leaf["serial"] == format(ref.serial_number, "X")
    assert leaf["subject"]["rfc4514"] == ref.subject.rfc4514_string(
        {NameOID.EMAIL_ADDRESS: "emailAddress"})
    assert leaf["subject"]["rfc4514"] == ("emailAddress=admin@example.com,CN=server.example.com,"
                                          "OU=\\#ops\\+dev\\ ,O=Example\\, Inc.,L=Austin,"
                                          "ST=Texas,C=US")
    assert leaf["subject"]["organization"] == "Example, Inc."
    assert leaf["fingerprint_sha256"] == ":".join(
        f"{b:02X}" for b in ref.fingerprint(hashes.SHA256()))
    assert leaf["spki_pin"] == spki_pin(ref)
    assert leaf["extended_key_usage"] == ["serverAuth"]
    assert leaf["key_usage"] == ["digitalSignature"]
    assert leaf["public_key"] == {"algorithm": "EC", "bits": 256, "curve": "P-256"}
    assert leaf["alternative_names"]["ip"] == ["192.0.2.10", "2001:db8::1"]
    assert leaf["alternative_names"]["uri"] == ["https://server.example.com/"]
    assert leaf["is_ca"] is False and leaf["self_signed"] is False
    inter = doc["certificates"][1]
    assert inter["is_ca"] is True and inter["basic_constraints"]["path_len"] == 0
    assert doc["private_key"] is None


def test_info_never_prints_key(run, fixtures):
    path = os.path.join(fixtures, "server-ec-bundle.pem")
    p = run("info", path, check_rc=0)
    key_pem = open(os.path.join(fixtures, "server-ec.key")).read()
    body = "".join(key_pem.strip().splitlines()[1:-1])
    assert "PRIVATE KEY-----" not in p.stdout
    assert body[:40] not in p.stdout.replace("\n", "")
    assert "Private key: present (EC P-256" in p.stdout
    p = run("info", "--json", path, check_rc=0)
    assert json.loads(p.stdout)["private_key"]["curve"] == "P-256"


def test_info_stdin_and_der(run, fixtures):
    pem = open(os.path.join(fixtures, "server-ec.pem")).read()
    p = run("info", "-", stdin=pem, check_rc=0)
    assert "server.example.com" in p.stdout
    p = run("info", os.path.join(fixtures, "server-ec.der"), check_rc=0)
    assert "Serial: 1234567890ABCDEF" in p.stdout


@pytest.mark.parametrize("content, word", [
    ("", "empty"),
    ("   \n\n", "empty"),
    ("hello world\n", None),
    ("-----BEGIN CERTIFICATE-----\nMIIB\n", "truncated"),
])
def test_info_rejects_bad_input(run, tmp_path, content, word):
    f = tmp_path / "in.pem"
    f.write_text(content)
    p = run("info", str(f))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    if word:
        assert word in p.stderr.lower()


def test_info_rejects_encrypted_and_trailing_and_oversize(run, fixtures, tmp_path):
    p = run("info", os.path.join(fixtures, "server-enc-bundle.pem"))
    assert p.returncode == 1 and "encrypted" in p.stderr
    f = tmp_path / "junk.pem"
    f.write_bytes(open(os.path.join(fixtures, "server-ec.pem"), "rb").read() + b"junk\n")
    p = run("info", str(f))
    assert p.returncode == 1 and "trailing-data" in p.stderr
    size = os.path.getsize(os.path.join(fixtures, "server-ec.pem"))
    p = run("info", "--max-input", str(size - 1), os.path.join(fixtures, "server-ec.pem"))
    assert p.returncode == 1 and "input-too-large" in p.stderr
    run("info", "--max-input", str(size), os.path.join(fixtures, "server-ec.pem"), check_rc=0)
    p = run("info", str(tmp_path / "missing.pem"))
    assert p.returncode == 4


@pytest.mark.parametrize("args, rc, code", [
    (["server-ec-bundle.pem"], 0, None),
    (["server-key-first.pem"], 0, None),
    (["server-ec.pem", "server-ec.key"], 0, None),
    (["server-ec.pem"], 1, "key-missing"),
    (["server-mismatch.pem"], 1, "key-mismatch"),
    (["server-ec.pem", "other.key"], 1, "key-mismatch"),
    (["server-chain-reversed.pem"], 1, "chain-order"),
    (["rsa1024.pem", "rsa1024.key"], 1, "key-weak"),
    (["secp256k1.pem", "secp256k1.key"], 1, "key-unsupported"),
    (["--type", "client", "server-ec-bundle.pem"], 1, "eku-mismatch"),
    (["--type", "client", "client-ec384.pem", "client-ec384.key"], 0, None),
    (["expired.pem"], 0, None),
    (["--reject-expired", "expired.pem"], 1, "certificate-expired"),
    (["before1970.pem"], 1, "certificate-before-1970"),
    (["--type", "authority", "ca-bundle.pem"], 0, None),
    (["--type", "authority", "server-ec.pem"], 1, "not-ca"),
    (["--type", "authority", "ca-with-key.pem"], 1, "key-not-allowed"),
    (["--type", "authority", "ca-eleven.pem"], 1, "limit-reached"),
    (["--type", "authority", "--max", "11", "ca-eleven.pem"], 0, None),
    (["--type", "bogus", "server-ec.pem"], 2, None),
])
def test_verify(run, fixtures, args, rc, code):
    full = [a if a.startswith("-") or a in ("client", "authority", "bogus", "11")
            else os.path.join(fixtures, a) for a in args]
    p = run("verify", *full)
    assert p.returncode == rc, (p.stdout, p.stderr)
    if code:
        assert f"({code})" in p.stderr
    if rc == 0:
        assert p.stdout.startswith("OK:")


def test_verify_expired_warns(run, fixtures):
    p = run("verify", os.path.join(fixtures, "expired.pem"), check_rc=0)
    assert "warning" in p.stderr and "expired" in p.stderr


def test_verify_pending_key(run, fixtures):
    p = run("verify", "--pending-key", os.path.join(fixtures, "server-ec.key"),
            os.path.join(fixtures, "server-ec.pem"), check_rc=0)
    assert "pending" in p.stdout
    p = run("verify", "--pending-key", os.path.join(fixtures, "other.key"),
            os.path.join(fixtures, "server-ec.pem"))
    assert p.returncode == 1 and "(key-mismatch)" in p.stderr


@pytest.mark.parametrize("cmd", ["info", "csr", "selfsign", "verify"])
def test_help(run, cmd):
    p = run(cmd, "--help", check_rc=0)
    assert p.stdout.startswith("Usage: certctl " + cmd)


def test_top_level_usage(run):
    assert run("--help").returncode == 0
    assert run().returncode == 2
    p = run("frobnicate")
    assert p.returncode == 2 and "unknown command" in p.stderr


def test_same_file_twice_is_refused(run, tmp_path, monkeypatch):
    """The key and the CSR named as one file (two spellings): refused, nothing written."""
    monkeypatch.chdir(tmp_path)
    p = run("csr", "--cn", "h.example", "--key-out", "same.pem", "--out", "./same.pem")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "twice" in p.stderr
    assert os.listdir(tmp_path) == []


def test_verify_openssl_self_signed_ca_true(run, tmp_path):
    """`openssl req -x509` marks its certificates CA:TRUE; they are valid HTTPS certificates."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    r = openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30",
                "-subj", "/CN=bmc.example")
    assert r.returncode == 0, r.stderr
    p = run("verify", str(cert), str(key), check_rc=0)
    assert p.stdout.startswith("OK:")
    p = run("info", "--json", str(cert), check_rc=0)
    assert json.loads(p.stdout)["certificates"][0]["self_signed"] is True


def test_info_refuses_control_bytes_in_names(run, tmp_path):
    """A SAN with an escape sequence must not reach the terminal."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")]))
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now).not_valid_after(now.replace(year=now.year + 1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("x\x1b[2K\r    DNS:spoofed.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    f = tmp_path / "evil.pem"
    f.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    for args in ([str(f)], ["--json", str(f)]):
        p = run("info", *args)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert "\x1b" not in p.stdout + p.stderr
        assert "(certificate-malformed)" in p.stderr
