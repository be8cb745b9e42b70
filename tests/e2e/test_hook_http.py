"""The http hook's sender (daemon/hook_http.c) against a local receiver.

A small driver program (tests/hook_http_driver.c, built by make as
build/hook_http_driver; HOOK_HTTP_DRIVER names another) loads a
configuration with relationd's loader, reads trigger bodies from its stdin,
sends them in batches through hook_http and prints each attempt's outcome
as a JSON line. The receiver, an http.server on a free loopback port in
this process, answers from a script per test and records every request.
Checked as the receiver of a webhook would: a JSON array of at most
batch_size triggers, Content-Type application/json, the configured
headers, a Standard Webhooks signature that verifies with Python's hmac
against the secret, the same webhook-id on every retry of a batch; and
the outcome relationd would act on: delivered, retry with its delay
(Retry-After honoured) and reason, or disabled on 410."""

import base64
import json
import os
import subprocess
import time

import pytest
from brokers import HttpReceiver, free_port, verify_signature

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.environ.get("HOOK_HTTP_DRIVER", os.path.join(REPO, "build", "hook_http_driver"))
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def receiver():
    made = []

    def make(*script):
        r = HttpReceiver(script=script)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def trigger(i):
    return {"id": "trig-%04d" % i, "relation": "referrals", "kind": "attach",
            "direction": "direct", "profile_id": "p%d" % i, "text": "é \" \\ %d" % i}


def run(tmp_path, url, n, attempts=1, wait=False, log=None, **hook):
    """The driver's outcomes; log (a list) receives its standard error."""
    doc = {"redis": {"url": "redis://127.0.0.1"},
           "relations": [{"short": "referrals", "database_a": "a", "database_b": "b"}],
           "hooks": [dict({"name": "partner", "kind": "http", "url": url}, **hook)]}
    path = tmp_path / "relationd.json"
    path.write_text(json.dumps(doc))
    lines = "".join(json.dumps(trigger(i)) + "\n" for i in range(n))
    out = subprocess.run([DRIVER, str(path), "partner", str(attempts), "1" if wait else "0"],
                         input=lines, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if log is not None:
        log.append(out.stderr)
    return [json.loads(line) for line in out.stdout.splitlines()]


def verify(headers, body, secret=SECRET):
    return verify_signature(secret, headers, body)


def test_delivered_signed_batches(tmp_path, receiver):
    r = receiver((200, {}, b"OK", 0))
    out = run(tmp_path, "http://127.0.0.1:%d/hook?k=v" % r.port, 25, batch_size=10,
              secret=SECRET, headers={"Authorization": "Bearer t0k", "X-Source": "relationd"})
    assert [o["outcome"] for o in out] == ["delivered"] * 3
    assert [o["triggers"] for o in out] == [10, 10, 5]
    assert all(o["status"] == 200 and o["reason"] is None for o in out)
    seen = []
    for (headers, body, _, ids), o in zip(r.requests, out):
        assert headers["Content-Type"] == "application/json"
        assert headers["Authorization"] == "Bearer t0k" and headers["X-Source"] == "relationd"
        batch = json.loads(body)
        assert isinstance(batch, list) and 1 <= len(batch) <= 10
        assert headers["webhook-id"] == batch[0]["id"] == o["webhook_id"] and ids == [batch[0]["id"]]
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert verify(headers, body)
        assert not verify(headers, body + b" ")
        seen += batch
    assert seen == [trigger(i) for i in range(25)]


def test_unsigned_without_secret(tmp_path, receiver):
    r = receiver((204, {}, b"", 0))
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 1)
    assert out[0]["outcome"] == "delivered" and out[0]["status"] == 204
    headers = r.requests[0][0]
    assert not any(k.lower().startswith("webhook-") for k in headers)


def test_500_then_200_same_webhook_id(tmp_path, receiver):
    r = receiver((500, {}, b"oops", 0), (502, {}, b"", 0), (200, {}, b"", 0))
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 3, attempts=5, wait=True,
              secret=SECRET)
    assert [(o["outcome"], o["status"], o["reason"]) for o in out] == \
        [("retry", 500, "status_5xx"), ("retry", 502, "status_5xx"), ("delivered", 200, None)]
    # the back-off: about 1 s, then about 2 s (jitter: up to half again)
    assert 1000 <= out[0]["retry_ms"] <= 1500 and 2000 <= out[1]["retry_ms"] <= 3000
    assert [o["failures"] for o in out[:2]] == [1, 2]
    ids = [h["webhook-id"] for h, _, _, _ in r.requests]
    assert len(ids) == 3 and len(set(ids)) == 1
    assert all(verify(h, b) for h, b, _, _ in r.requests)
    assert len({b for _, b, _, _ in r.requests}) == 1   # the same batch each time


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_honoured(tmp_path, receiver, status):
    r = receiver((status, {"Retry-After": "2"}, b"", 0), (200, {}, b"", 0))
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 1, attempts=2, wait=True)
    assert out[0]["outcome"] == "retry" and out[0]["status"] == status
    assert out[0]["retry_ms"] >= 2000
    assert out[0]["reason"] == ("status_4xx" if status == 429 else "status_5xx")
    assert out[1]["outcome"] == "delivered"


def test_4xx_is_retried(tmp_path, receiver):
    r = receiver((400, {}, b"bad", 0))
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 1)
    assert (out[0]["outcome"], out[0]["reason"]) == ("retry", "status_4xx")


def test_body_mismatch(tmp_path, receiver):
    r = receiver((200, {}, b"status: FAILED", 0), (200, {}, b"status: OK", 0))
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 1, attempts=2,
              success_regex="^status: OK$")
    assert (out[0]["outcome"], out[0]["status"], out[0]["reason"]) == \
        ("retry", 200, "body_mismatch")
    assert out[1]["outcome"] == "delivered"


def test_timeout(tmp_path, receiver):
    r = receiver((200, {}, b"", 3))
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 1, timeout_ms=500)
    assert (out[0]["outcome"], out[0]["status"], out[0]["reason"]) == ("retry", 0, "timeout")
    assert 400 <= out[0]["elapsed_ms"] < 2500


def test_connection_refused(tmp_path):
    out = run(tmp_path, "http://127.0.0.1:%d/" % free_port(), 1)
    assert (out[0]["outcome"], out[0]["status"], out[0]["reason"]) == ("retry", 0, "connect")
    assert out[0]["retry_ms"] >= 1000


def test_410_disables(tmp_path, receiver):
    r = receiver((410, {}, b"gone", 0))
    log = []
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 5, attempts=3, batch_size=2, log=log)
    # one attempt, then nothing more is sent
    assert [(o["outcome"], o["status"], o["reason"]) for o in out] == [("disabled", 410, "gone")]
    assert len(r.requests) == 1
    # the reason at error level, naming the hook
    errors = [line for line in log[0].splitlines() if line.startswith("level=error")]
    assert len(errors) == 1 and "hook partner answered 410 Gone" in errors[0], log


def test_keep_alive(tmp_path, receiver):
    """One connection for every batch (the easy handle is reused)."""
    r = receiver((200, {}, b"", 0))
    ports = []
    orig = r.server.RequestHandlerClass.do_POST

    def do_post(handler):
        ports.append(handler.client_address[1])
        orig(handler)

    r.server.RequestHandlerClass.do_POST = do_post
    out = run(tmp_path, "http://127.0.0.1:%d/" % r.port, 4, batch_size=1)
    assert [o["outcome"] for o in out] == ["delivered"] * 4
    assert len(set(ports)) == 1, ports
