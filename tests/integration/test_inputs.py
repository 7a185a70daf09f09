# SPDX-License-Identifier: Apache-2.0
"""certctl against the bad inputs issue #2 names, end to end: each gets its specific code, a
message, exit status 1, and changes nothing."""
import os
import stat

import pytest


def fx(fixtures, name):
    return os.path.join(fixtures, name)


def read(fixtures, name):
    with open(fx(fixtures, name), "rb") as f:
        return f.read()


@pytest.mark.parametrize("make, code, word", [
    (lambda d: read(d, "server-two-keys.pem"), "multiple-keys", "private key"),
    (lambda d: read(d, "server-ec.key"), "no-certificate", "certificate"),
    (lambda d: bytes(range(256)) * 4, "input-garbage", "PEM"),
    (lambda d: b"hello world\n", "input-garbage", "PEM"),
    (lambda d: read(d, "server-ec.pem").replace(b"\n", b"\n\x00", 1), "input-garbage", None),
    (lambda d: read(d, "server-ec.pem")[:300], "pem-truncated", None),
    (lambda d: read(d, "server-enc-bundle.pem"), "key-encrypted", "encrypted"),
    (lambda d: read(d, "server-ec.pem") + b"trailing junk\n", "trailing-data", None),
    (lambda d: b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
     "pem-unexpected-label", "CERTIFICATE REQUEST"),
    (lambda d: read(d, "server-ec.der") + b"\x00", None, None),
])
def test_info_rejects(run, fixtures, tmp_path, make, code, word):
    f = tmp_path / "upload"
    f.write_bytes(make(fixtures))
    p = run("info", str(f))
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.startswith("certctl: ")
    if code:
        assert f"({code})" in p.stderr
    if word:
        assert word in p.stderr
    # No key material in any message.
    assert "MII" not in p.stderr


@pytest.mark.parametrize("args, rc, code", [
    (["ed25519.pem", "ed25519.key"], 1, "key-unsupported"),
    (["--allow-ed25519", "ed25519.pem", "ed25519.key"], 0, None),
    (["future.pem"], 0, None),
    (["--reject-not-yet-valid", "future.pem"], 1, "certificate-not-yet-valid"),
    (["server-two-leaves.pem"], 1, "not-one-leaf"),
    (["--type", "authority", "ca-nokeycertsign.pem"], 1, "ca-without-keycertsign"),
    (["--type", "authority", "ca-noku.pem"], 0, None),
])
def test_verify_policies(run, fixtures, args, rc, code):
    full = [a if a.startswith("-") or a == "authority" else fx(fixtures, a) for a in args]
    p = run("verify", *full)
    assert p.returncode == rc, (p.stdout, p.stderr)
    if code:
        assert f"({code})" in p.stderr


def test_verify_not_yet_valid_warns(run, fixtures):
    p = run("verify", fx(fixtures, "future.pem"), check_rc=0)
    assert "warning:" in p.stderr and "is not valid before" in p.stderr


def test_verify_duplicate_authority(run, fixtures, tmp_path):
    f = tmp_path / "dup.pem"
    f.write_bytes(read(fixtures, "root-ca.pem") * 2)
    p = run("verify", "--type", "authority", str(f))
    assert p.returncode == 1 and "(duplicate)" in p.stderr


def test_csr_key_and_csr_in_different_directories(run, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    run("csr", "--cn", "x.example", "--key-out", str(a / "k.pem"), "--out", str(b / "r.csr"),
        check_rc=0)
    assert stat.S_IMODE(os.stat(a / "k.pem").st_mode) == 0o600
    assert (b / "r.csr").read_bytes().startswith(b"-----BEGIN CERTIFICATE REQUEST-----")


def test_csr_output_failure_leaves_no_new_key(run, tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    (target / "x").write_text("x")
    p = run("csr", "--cn", "x.example", "--key-out", str(a / "k.pem"), "--out", str(target))
    assert p.returncode in (1, 3), (p.stdout, p.stderr)
    assert os.listdir(a) == []
