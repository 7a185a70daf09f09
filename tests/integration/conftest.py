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
