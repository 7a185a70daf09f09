# SPDX-License-Identifier: Apache-2.0
"""certctl user end to end: the users file it writes is checked independently, the hashes with
Python's crypt module (libxcrypt underneath, but not our code), the modes with stat."""
import os
import pty
import select
import signal
import stat
import subprocess
import termios
import time
import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated since 3.11, removed in 3.13

PW1 = "Tr0ub4dor&3-first"
PW2 = "correct horse battery staple"
PW3 = "p\u00e4ssw\u00f6rd-third-one"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def entries(path):
    """NAME -> (ROLE, HASH) from the file, parsed here, not by certctl."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, role, h = line.split(":")
            assert name not in out
            out[name] = (role, h)
    return out


def hash_ok(pw, h):
    return crypt.crypt(pw, h) == h


def no_secret(p, *secrets):
    for s in secrets:
        assert s not in p.stdout and s not in p.stderr


@pytest.fixture
def users(tmp_path):
    return str(tmp_path / "users")


def test_lifecycle(run, users):
    f = ["--users-file", users]
    p = run("user", "add", "admin", "--role", "Administrator", *f, stdin=PW1 + "\n", check_rc=0)
    no_secret(p, PW1)
    assert mode(users) == 0o600
    e = entries(users)
    assert list(e) == ["admin"]
    role, h = e["admin"]
    assert role == "Administrator"
    assert h.startswith("$y$")
    assert hash_ok(PW1, h)
    assert not hash_ok(PW2, h)

    # Options may come first; the password's last line may lack a newline.
    p = run("user", "add", *f, "--role", "Operator", "op", stdin=PW2, check_rc=0)
    no_secret(p, PW2)
    e = entries(users)
    assert e["op"][0] == "Operator" and hash_ok(PW2, e["op"][1])
    assert hash_ok(PW1, e["admin"][1])  # untouched

    p = run("user", "list", *f, check_rc=0)
    rows = [line.split() for line in p.stdout.splitlines()]
    assert rows == [["admin", "Administrator"], ["op", "Operator"]]
    assert "$" not in p.stdout  # never a hash

    old = e["op"][1]
    p = run("user", "passwd", "op", *f, stdin=PW3 + "\r\n", check_rc=0)
    no_secret(p, PW3)
    e = entries(users)
    assert e["op"][1] != old and hash_ok(PW3, e["op"][1]) and not hash_ok(PW2, e["op"][1])
    assert mode(users) == 0o600

    run("user", "role", "op", "ReadOnly", *f, check_rc=0)
    assert entries(users)["op"][0] == "ReadOnly"
    run("user", "role", "op", "Administrator", *f, check_rc=0)
    run("user", "role", "admin", "Operator", *f, check_rc=0)
    assert entries(users)["admin"][0] == "Operator"

    run("user", "del", "admin", *f, check_rc=0)
    assert list(entries(users)) == ["op"]
    assert mode(users) == 0o600
    # The last Administrator stays, in role and in the file.
    p = run("user", "del", "op", *f, check_rc=1)
    assert "last Administrator" in p.stderr
    p = run("user", "role", "op", "Operator", *f, check_rc=1)
    assert "last Administrator" in p.stderr
    assert entries(users)["op"][0] == "Administrator"


def test_refusals(run, users, tmp_path):
    f = ["--users-file", users]
    # A new file must start with an Administrator.
    p = run("user", "add", "bob", "--role", "ReadOnly", *f, stdin=PW1 + "\n", check_rc=1)
    assert not os.path.exists(users)
    run("user", "add", "admin", "--role", "Administrator", *f, stdin=PW1 + "\n", check_rc=0)
    before = open(users, encoding="utf-8").read()

    # Duplicates, weak and malformed passwords, bad names: rejected (1), file unchanged.
    p = run("user", "add", "admin", "--role", "Operator", *f, stdin=PW2 + "\n", check_rc=1)
    assert "exists" in p.stderr
    for pw in ["short-pw", "x" * 129, "tab\there-long-enough", ""]:
        p = run("user", "add", "bob", "--role", "Operator", *f, stdin=pw + "\n", check_rc=1)
        if pw:
            no_secret(p, pw)
    p = run("user", "add", "bob", "--role", "Operator", *f, stdin="", check_rc=1)
    assert "no password" in p.stderr
    for name in ["Bob", "9bob", "bob smith", "a" * 33, "bob:x"]:
        run("user", "add", name, "--role", "Operator", *f, stdin=PW2 + "\n", check_rc=1)
    assert open(users, encoding="utf-8").read() == before

    # Unknown users: 4.
    run("user", "passwd", "nobody", *f, stdin=PW2 + "\n", check_rc=4)
    run("user", "del", "nobody", *f, check_rc=4)
    run("user", "role", "nobody", "Operator", *f, check_rc=4)
    # A missing users file: 4 too (except for add, which creates it).
    missing = str(tmp_path / "none")
    run("user", "list", "--users-file", missing, check_rc=4)
    run("user", "del", "admin", "--users-file", missing, check_rc=4)
    # Not a regular file (here a directory): refused as not allowed (1), saying what is wrong.
    p = run("user", "list", "--users-file", str(tmp_path), check_rc=1)
    assert "regular file" in p.stderr
    assert open(users, encoding="utf-8").read() == before


def test_broken_file(run, users):
    # Other schemes and costs than certd's own yescrypt are refused, naming the line.
    for h in ["$1$abcdefgh$E2IUOVGWn4QIROUcRm1wO/",
              "$6$rounds=999999999$abcdefghijklmnop$x",
              "$y$jFT$W0hPEClv536CNFsjOTzrM.$as.wnJPS6jwQKfN2iBTHiWbBTZq5vgcMnvjFKA0cUoB"]:
        with open(users, "w", encoding="utf-8") as f:
            f.write("# ok\nadmin:Administrator:" + h + "\n")
        os.chmod(users, 0o600)
        p = run("user", "list", "--users-file", users, check_rc=1)
        assert users + ":2:" in p.stderr and "unsupported password hash" in p.stderr


def test_loose_mode(run, users):
    run("user", "add", "admin", "--role", "Administrator", "--users-file", users,
        stdin=PW1 + "\n", check_rc=0)
    # Readable by others: refused until chmod 600 (like sshd's StrictModes).
    os.chmod(users, 0o644)
    p = run("user", "list", "--users-file", users, check_rc=1)
    assert "chmod 600" in p.stderr
    os.chmod(users, 0o600)
    run("user", "list", "--users-file", users, check_rc=0)
    assert os.path.exists(users + ".lock")


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["add"],
    ["add", "bob"],                                  # no --role
    ["add", "bob", "--role", "God"],
    ["add", "bob", "--role"],
    ["add", "bob", "carol", "--role", "Operator"],
    ["passwd"],
    ["passwd", "a", "b"],
    ["del"],
    ["list", "extra"],
    ["role", "bob"],
    ["role", "bob", "admin"],                        # roles are case-sensitive
    ["del", "bob", "--role", "Operator"],
    ["list", "--bogus"],
])
def test_usage_errors(run, users, args):
    p = run("user", *args, "--users-file", users, stdin="", check_rc=2)
    assert "Try 'certctl user --help'" in p.stderr
    assert not os.path.exists(users)


def test_help(run):
    p = run("user", "--help", check_rc=0)
    for op in ["add", "passwd", "del", "list", "role"]:
        assert "certctl user " + op in p.stdout
    for op in ["add", "passwd", "del", "list", "role"]:
        p = run("user", op, "--help", check_rc=0)
        assert p.stdout.startswith("Usage: certctl user " + op)
    assert "user" in run("--help", check_rc=0).stdout


def _pty_session(certctl, args, answers):
    """Run certctl on a pseudo-terminal, answering each password prompt in turn. Returns the
    exit code, all output, and the terminal's lflag after the process ended."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([certctl, *args], stdin=slave, stdout=slave, stderr=slave,
                                close_fds=True)
        out = b""
        pending = list(answers)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                out += chunk
                if pending and out.rstrip().endswith(b":"):
                    # Echo must be off while the password is typed.
                    assert not termios.tcgetattr(slave)[3] & termios.ECHO
                    os.write(master, pending.pop(0).encode() + b"\n")
                    out += b"\x00"  # mark the answer so the next prompt is told apart
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=60)
        lflag = termios.tcgetattr(slave)[3]
        return rc, out.replace(b"\x00", b"").decode(errors="replace"), lflag
    finally:
        os.close(master)
        os.close(slave)


def test_prompt(certctl, users):
    f = ["--users-file", users]
    rc, out, lflag = _pty_session(certctl, ["user", "add", "admin", "--role", "Administrator",
                                            *f], [PW1, PW1])
    assert rc == 0, out
    assert PW1 not in out
    assert lflag & termios.ECHO  # restored
    assert hash_ok(PW1, entries(users)["admin"][1])

    rc, out, lflag = _pty_session(certctl, ["user", "passwd", "admin", *f], [PW2, PW3])
    assert rc == 1, out
    assert "do not match" in out
    assert PW2 not in out and PW3 not in out
    assert lflag & termios.ECHO
    assert hash_ok(PW1, entries(users)["admin"][1])


def test_prompt_interrupted(certctl, users, run):
    """A signal at the prompt: the terminal gets its echo back and the process dies of it."""
    run("user", "add", "admin", "--role", "Administrator", "--users-file", users,
        stdin=PW1 + "\n", check_rc=0)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([certctl, "user", "passwd", "admin", "--users-file", users],
                                stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        out = b""
        deadline = time.monotonic() + 60
        while not out.rstrip().endswith(b":") and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
        assert not termios.tcgetattr(slave)[3] & termios.ECHO
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM
        assert termios.tcgetattr(slave)[3] & termios.ECHO
    finally:
        os.close(master)
        os.close(slave)
    assert hash_ok(PW1, entries(users)["admin"][1])
