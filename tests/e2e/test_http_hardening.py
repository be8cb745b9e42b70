"""The HTTP endpoint under hostile or stuck clients: /healthz, /readyz and
/metrics answer within a second while 70 clients trickle their headers from
five addresses and /v1 readers loop against a stalled Redis; a client that
trickles its headers is cut at the 5 s header deadline (408); one address
gets at most 32 connections; the bearer token is compared without a branch
on its bytes (memcheck, the token marked undefined)."""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from brokers import REPO, wait_until
from test_http_read import get, reads  # noqa: F401 - the fixture

SLOW_ADDRESSES = ["127.0.0.%d" % i for i in range(2, 7)]
REQUEST_LINE = b"GET /v1/stats/sales/direct/x HTTP/1.1\r\n"


def timed_get(port, path, timeout=1.0):
    """(status, seconds) of GET path from 127.0.0.1; status None when no
    answer came within timeout."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    except OSError:
        return None, time.monotonic() - t0
    finally:
        c.close()


def slow_client(port, source):
    """A socket from source that has sent a request line and nothing more."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(2)
    s.connect(("127.0.0.1", port))
    s.sendall(REQUEST_LINE)
    return s


class Trickle:
    """n clients, from the addresses in turn, each sending a header byte
    every 2 s; a client cut off connects again, as an attacker would."""

    def __init__(self, port, n):
        self.port, self.n = port, n
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.reconnects = 0

    def connect(self, i):
        try:
            return slow_client(self.port, SLOW_ADDRESSES[i % len(SLOW_ADDRESSES)])
        except OSError:
            return None

    def run(self):
        socks = [self.connect(i) for i in range(self.n)]
        while not self.stop.wait(2):
            for i, s in enumerate(socks):
                try:
                    if s is None:
                        raise OSError
                    s.sendall(b"X")
                except OSError:
                    if s:
                        s.close()
                    socks[i] = self.connect(i)
                    self.reconnects += 1
        for s in socks:
            if s:
                s.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


class Readers:
    """n threads reading /v1/stats in a loop; the statuses they got (None:
    no answer within 10 s)."""

    def __init__(self, port, n):
        self.port = port
        self.stop = threading.Event()
        self.statuses = []
        self.threads = [threading.Thread(target=self.run) for _ in range(n)]

    def run(self):
        while not self.stop.is_set():
            self.statuses.append(timed_get(self.port, "/v1/stats/sales/direct/p", timeout=10)[0])

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def test_operations_answer_through_slow_clients_and_a_stalled_redis(reads):  # noqa: F811
    port = reads.port
    d, _ = reads.start()                         # redis.timeout_ms 1000
    assert get(port, "/v1/stats/sales/direct/p")[0] == 200
    redis_pid = reads.server.proc.pid
    slow = []
    try:
        with Trickle(port, 70), Readers(port, 8) as readers:
            time.sleep(1)                        # the slow clients connected
            os.kill(redis_pid, signal.SIGSTOP)
            slow = []
            end = time.monotonic() + 10
            while time.monotonic() < end:
                for path in ("/healthz", "/readyz", "/metrics"):
                    status, took = timed_get(port, path)
                    if status is None or took >= 1.0:
                        slow.append((path, status, round(took, 2)))
                time.sleep(0.3)
            stalled = list(readers.statuses)
            os.kill(redis_pid, signal.SIGCONT)
    finally:
        os.kill(redis_pid, signal.SIGCONT)
    assert not slow, slow
    # what the readers saw while Redis stalled: 503, each within its deadline
    assert 503 in stalled and None not in stalled, stalled
    wait_until(lambda: get(port, "/v1/stats/sales/direct/p")[0] == 200, timeout=30)
    assert d.stop() == 0, d.log_tail()


def read_all(s, timeout):
    """What s receives until the server closes it (or timeout)."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    except ConnectionResetError:
        return data, True


def test_headers_trickled_in_are_cut_at_the_deadline(reads):  # noqa: F811
    port = reads.port
    d, _ = reads.start()
    s = slow_client(port, "127.0.0.1")
    quiet = socket.create_connection(("127.0.0.1", port))
    t0 = time.monotonic()
    got = b""
    closed = False
    while not closed and time.monotonic() - t0 < 8:
        try:
            s.sendall(b"X")
        except OSError:
            pass
        data, closed = read_all(s, 0.5)
        got += data
    took = time.monotonic() - t0
    assert closed and got.startswith(b"HTTP/1.1 408 "), (got, took)
    assert b"request headers not complete within 5000 ms" in got
    # a connection that sent nothing is closed without an answer
    data, closed = read_all(quiet, 8 - (time.monotonic() - t0))
    assert closed and data == b""
    s.close()
    quiet.close()
    # a request sent at once is still answered
    assert get(port, "/v1/stats/sales/direct/p")[0] == 200
    assert d.stop() == 0, d.log_tail()


def test_one_address_gets_32_connections(reads):  # noqa: F811
    port = reads.port
    d, _ = reads.start()
    socks = []
    for _ in range(40):
        s = socket.socket()
        s.bind(("127.0.0.7", 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    try:
        def cut():
            n = 0
            for s in socks:
                s.setblocking(False)
                try:
                    n += s.recv(1) == b""
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    n += 1
            return n
        # the 8 beyond 32 are closed at once; the other 32 wait for their headers
        wait_until(lambda: cut() == 8, timeout=3, message=lambda: "cut: %d" % cut())
        assert timed_get(port, "/healthz")[0] == 200
    finally:
        for s in socks:
            s.close()
    assert d.stop() == 0, d.log_tail()


HARNESS = r"""
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <valgrind/memcheck.h>
bool http_token_equal(const char *given, size_t glen, const char *token, size_t tlen);
int main(void)
{
    const char *guesses[] = {"xxxxxxxxxxxxxxxxxxxxxxxx", "s3cret-token-0123456789x",
                             "s3cret-token-0123456789", "s3cret", "s3cret-token-0123456789-longer"};
    for (int i = 0; i < 5; i++) {
        char token[] = "s3cret-token-0123456789";
        VALGRIND_MAKE_MEM_UNDEFINED(token, sizeof token);   /* secret: no branch on it */
        bool r = http_token_equal(guesses[i], strlen(guesses[i]), token, sizeof token - 1);
        VALGRIND_MAKE_MEM_DEFINED(&r, sizeof r);
        printf("%d", r);
    }
    printf("\n");
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("valgrind") is None or not os.path.exists(
    "/usr/include/valgrind/memcheck.h"), reason="valgrind is not installed")
def test_token_compared_without_a_branch_on_its_bytes(tmp_path):
    """The token's bytes are marked undefined: memcheck reports any jump that
    depends on them (strcmp stops at the first difference, so does a
    comparison that returns early on a length mismatch after reading it)."""
    (tmp_path / "harness.c").write_text(HARNESS)
    cflags = subprocess.run(["pkg-config", "--cflags", "jansson", "hiredis", "libmicrohttpd"],
                            capture_output=True, text=True, check=True).stdout.split()
    obj = tmp_path / "http.o"
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-g", "-ffunction-sections",
                    "-I", REPO, *cflags, "-c", os.path.join(REPO, "daemon/http.c"), "-o", str(obj)],
                   check=True)
    out = subprocess.run(["cc", "-O2", "-g", str(tmp_path / "harness.c"), str(obj),
                          "-Wl,--gc-sections", "-o", str(tmp_path / "harness")],
                         capture_output=True, text=True)
    assert out.returncode == 0, "http_token_equal does not link alone: " + out.stderr[-2000:]
    run = subprocess.run(["valgrind", "-q", "--error-exitcode=3", str(tmp_path / "harness")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout == "00100\n", run.stdout + run.stderr
