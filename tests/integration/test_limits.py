# SPDX-License-Identifier: Apache-2.0
"""certd's HTTP limits (issue #3, [limits] of certd.conf) end to end: header count and size,
body size (Content-Length and chunked), the request deadline (slow clients, TLS handshakes never
finished), the idle timeout of keep-alive connections, and the connection limit (busy
connections make newcomers wait; idle ones make room for them). Each limit is checked at N and
N + 1 where the wire format lets a test say exactly where N is."""
import concurrent.futures
import http.client
import select
import socket
import time

import pytest
from conftest import RawResponse, assert_error, basic_auth, ok, raw_request, tls_context

MANAGER = "/redfish/v1/Managers/bmc"
SESSION_SERVICE = "/redfish/v1/SessionService"

# Small limits, so that tests reach them quickly.
LIMITS = """
[limits]
max_connections = 2
request_timeout = 2
idle_timeout = 2
max_headers_size = 2048
max_body = 4096
"""
REQUEST_TIMEOUT = 2
IDLE_TIMEOUT = 2

# The connection limit alone: requests and idle connections do not time out while a test holds
# them.
CONNECTIONS = """
[limits]
max_connections = 2
request_timeout = 120
idle_timeout = 120
"""


def _daemon(certd_factory, config):
    c = certd_factory(config=config).start()
    yield c
    assert c.stop() == 0, c.log()


@pytest.fixture
def limited(certd_factory):
    yield from _daemon(certd_factory, LIMITS)


@pytest.fixture
def two_connections(certd_factory):
    yield from _daemon(certd_factory, CONNECTIONS)


def tls_connect(certd, timeout=60):
    """A TLS connection to certd, its handshake done."""
    sock = socket.create_connection(("127.0.0.1", certd.port), timeout=timeout)
    return tls_context().wrap_socket(sock)


def get_request(certd, path=MANAGER, extra=""):
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth(certd.admin)}\r\n"
            f"{extra}\r\n").encode()


def read_response(sock, method="GET", path=MANAGER):
    r = http.client.HTTPResponse(sock, method=method)
    r.begin()
    return RawResponse(method, path, r)


def assert_closed(sock, timeout=30):
    """The server closes sock within timeout: end of stream (with close_notify or without)."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(1)
    except (ConnectionResetError, BrokenPipeError):
        return
    assert data == b"", data


# --- headers and bodies -----------------------------------------------------------------------

def _headers(certd, n):
    """n header lines: Host, Authorization and X- lines."""
    h = {"Host": "x", "Authorization": basic_auth(certd.admin)}
    h.update({f"X-H{i}": "1" for i in range(n - len(h))})
    return h


def test_header_count(limited):
    ok(raw_request(limited, "GET", MANAGER, _headers(limited, 64)))
    r = raw_request(limited, "GET", MANAGER, _headers(limited, 65))
    assert_error(r, 431, "GeneralError", "at most 64 header lines")


def _head_of_size(certd, size):
    """Headers whose request head (request line, header lines, blank line) is size bytes, as
    http.client writes them."""
    h = {"Host": "x", "Authorization": basic_auth(certd.admin), "X-Pad": ""}
    used = len(f"GET {MANAGER} HTTP/1.1\r\n") + sum(len(f"{k}: {v}\r\n") for k, v in h.items()) + 2
    h["X-Pad"] = "p" * (size - used)
    return h


def test_header_section_size(limited):
    ok(raw_request(limited, "GET", MANAGER, _head_of_size(limited, 2048)))
    r = raw_request(limited, "GET", MANAGER, _head_of_size(limited, 2049))
    assert_error(r, 431, "GeneralError", "2048 bytes")
    r = limited.request("GET", MANAGER, headers={"X-Big": "b" * 4000})
    assert_error(r, 431, "GeneralError", "2048 bytes")


def _patch_body(size):
    body = b'{"SessionTimeout": 61}'
    return body + b" " * (size - len(body))


def test_body_size(limited):
    def patch(data):
        return limited.request("PATCH", SESSION_SERVICE, data=data,
                               headers={"Content-Type": "application/json"})

    ok(patch(_patch_body(4096)))
    assert ok(limited.get(SESSION_SERVICE)).json()["SessionTimeout"] == 61
    body = assert_error(patch(_patch_body(4097)), 413, "GeneralError")
    assert "4096" in body["error"]["@Message.ExtendedInfo"][0]["Resolution"]
    # A chunked body has no Content-Length: it is counted as it comes.
    body = assert_error(patch(iter([b" " * 1000] * 5)), 413, "GeneralError")
    assert "4096" in body["error"]["@Message.ExtendedInfo"][0]["Resolution"]
    assert ok(limited.get(SESSION_SERVICE)).json()["SessionTimeout"] == 61


# --- deadlines --------------------------------------------------------------------------------

def test_slow_client_gets_408_and_others_are_served(limited):
    """One byte now and then does not keep a request alive past request_timeout."""
    started = time.monotonic()
    sock = tls_connect(limited)
    try:
        request = get_request(limited) * 10
        for i, byte in enumerate(request):
            sock.sendall(bytes([byte]))
            if i == 3:
                # Meanwhile another client is served (the other of the two connections).
                ok(limited.get(MANAGER))
            if select.select([sock], [], [], 0.25)[0]:
                break
        else:
            raise AssertionError("certd waited for the whole trickled request")
        r = read_response(sock)
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    body = assert_error(r, 408, "GeneralError", f"within {REQUEST_TIMEOUT} seconds")
    assert r.headers["Connection"] == "close", r.headers
    assert elapsed >= REQUEST_TIMEOUT - 0.5, (elapsed, body)
    ok(limited.get(MANAGER))


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x02\x00"], ids=["silent", "partial-hello"])
def test_unfinished_tls_handshake_is_dropped(limited, sent):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", limited.port), timeout=60) as sock:
        sock.sendall(sent)
        assert_closed(sock)
    assert time.monotonic() - started >= REQUEST_TIMEOUT - 0.5
    ok(limited.get(MANAGER))


def test_idle_keep_alive_connection_is_closed(limited):
    sock = tls_connect(limited)
    try:
        sock.sendall(get_request(limited))
        ok(read_response(sock))
        idle_since = time.monotonic()
        assert_closed(sock)
        assert time.monotonic() - idle_since >= IDLE_TIMEOUT - 0.5
    finally:
        sock.close()


# --- the connection limit ---------------------------------------------------------------------

def _busy(certd):
    """A connection in the middle of a request: its headers are in (certd says 100 Continue),
    its body is not."""
    sock = tls_connect(certd)
    sock.sendall((f"PATCH {SESSION_SERVICE} HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: {basic_auth(certd.admin)}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 22\r\n"
                  "Expect: 100-continue\r\nConnection: close\r\n\r\n").encode())
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(4096)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 100 "), got
    return sock


def _finish_busy(sock):
    sock.sendall(b'{"SessionTimeout": 62}')
    return read_response(sock, "PATCH", SESSION_SERVICE)


def _fetch(certd):
    """A GET on a new connection (which waits, handshake included, while certd is full)."""
    sock = tls_connect(certd, timeout=120)
    try:
        sock.sendall(get_request(certd))
        return read_response(sock)
    finally:
        sock.close()


def test_busy_connections_make_a_newcomer_wait(two_connections):
    certd = two_connections
    busy = []
    try:
        busy = [_busy(certd), _busy(certd)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            newcomer = pool.submit(_fetch, certd)
            # Every slot holds a request in progress: the newcomer is not served (it waits in
            # the kernel's backlog; nobody is dropped).
            with pytest.raises(concurrent.futures.TimeoutError):
                newcomer.result(timeout=2)
            ok(_finish_busy(busy[0]))
            ok(newcomer.result(timeout=60))
        ok(_finish_busy(busy[1]))
    finally:
        for sock in busy:
            sock.close()
    assert ok(certd.get(SESSION_SERVICE)).json()["SessionTimeout"] == 62


def test_idle_connections_make_room_for_a_newcomer(two_connections):
    certd = two_connections
    idle = []
    try:
        for _ in range(2):
            sock = tls_connect(certd)
            sock.sendall(get_request(certd))
            ok(read_response(sock))
            idle.append(sock)
        # Both slots hold idle keep-alive connections: a newcomer is served at once, in the
        # place of the one idle the longest, which is closed.
        ok(_fetch(certd))
        assert_closed(idle[0])
        idle[1].sendall(get_request(certd))
        ok(read_response(idle[1]))
    finally:
        for sock in idle:
            sock.close()
