"""The HTTP read API on http.listen: /v1/stats equal to `relationctl stats`
for profile ids holding '/', spaces and non-ASCII; /v1/edges paged with
cursor (each edge once, none missed while edges come and go); 404, 400 and
401 with a JSON error; 503 while Redis is down. relationd runs here with no
source at all, serving reads only; each test through both engines
(`redis.engine` function and module, the test's server loading the module
for the module's run), which write what relationctl apply gives it; a
layout-2 side written by hand is read by its slots."""

import json
import random
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
import redis
from redis_server import Server, free_port

import test_apply as A
from brokers import Daemon, wait_until
from conftest import RELATIONCTL
from test_layout import apply

ODD = ["a/b", "with space", "naïve ☃", "100%", "{tag}", "plain"]


def get(port, path, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def q(s):
    return urllib.parse.quote(s, safe="")


class Reads:
    """A redis-server of the test's own (`server`, started; with the module
    for engine "module") and a free port (`port`) for relationd's
    http.listen; start() runs relationd there, its configuration with
    redis.engine `engine`."""

    def __init__(self, tmp_path, engine):
        self.tmp_path = tmp_path
        self.engine = engine
        self.server, self.port = Server(module=engine == "module"), free_port()
        self.daemon = None

    def start(self, token=None):
        """relationd with no source, serving reads: (daemon, configuration path)."""
        cfg = {"redis": {"url": "redis://127.0.0.1:%d/0" % self.server.port, "timeout_ms": 1000,
                         "engine": self.engine},
               "http": dict({"listen": "127.0.0.1:%d" % self.port},
                            **({"token": token} if token else {})),
               "relations": [A.REL_SALES, A.REL_PEERS]}
        self.daemon = Daemon(self.tmp_path, cfg).start(ready_timeout=30)
        wait_until(lambda: _up(self.port), timeout=30)
        return self.daemon, self.daemon.config_path


@pytest.fixture()
def reads(tmp_path, engine):
    """Reads with its server up, once per engine; at the end the daemon,
    still running, is killed and the server stopped."""
    r = Reads(tmp_path, engine)
    r.server.start()
    try:
        yield r
    finally:
        if r.daemon and r.daemon.running():
            r.daemon.kill()
        r.server.stop()


def _up(port):
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=2)
        return True
    except OSError:
        return False


def stats(cfg, rel, side, prof):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "stats", rel, side, prof],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_stats_and_errors(reads):
    server, port = reads.server, reads.port
    d, cfg = reads.start()
    rng = random.Random(7)
    events = [{"id": "e%d" % i, "op": "attach", "relation": "sales",
               "profile_a": rng.choice(ODD), "profile_b": rng.choice(ODD),
               "weights": {"profit": rng.randint(1, 900) / 100, "qty": i % 7, "ok": i % 2 == 0}}
              for i in range(60)]
    apply(cfg, events)
    for prof in ODD:
        for side in ("direct", "reverse"):
            status, body = get(port, "/v1/stats/sales/%s/%s" % (side, q(prof)))
            assert status == 200 and body == stats(cfg, "sales", side, prof), (side, prof)
    assert get(port, "/v1/stats/sales/direct/nobody")[1]["count"] == 0
    assert get(port, "/v1/stats/nope/direct/x") == (404, {"error": 'unknown relation "nope"'})
    assert get(port, "/v1/edges/sales/sideways/x") == \
        (404, {"error": "side must be direct or reverse"})
    for bad in ("limit=0", "limit=1001", "limit=x", "cursor=zz", "cursor=0", "cursor=5.z"):
        status, body = get(port, "/v1/edges/sales/direct/plain?" + bad)
        assert status == 400 and "error" in body, (bad, status, body)
    # Redis down: 503, then back
    server.kill()
    status, body = get(port, "/v1/stats/sales/direct/plain")
    assert status == 503 and "redis" in body["error"], body
    server.start()
    wait_until(lambda: get(port, "/v1/stats/sales/direct/plain")[0] == 200, timeout=30)
    assert d.stop() == 0, d.log_tail()


def test_edges_arguments_decoded_and_strict(reads):
    """limit and cursor are percent-decoded like any query argument, then
    must be digits only and in range; a 400 names the argument."""
    port = reads.port
    d, cfg = reads.start()
    apply(cfg, [{"id": "a%d" % i, "op": "attach", "relation": "sales", "profile_a": "hub",
                 "profile_b": "c%d" % i, "weights": {"qty": 1}} for i in range(3)])
    base = "/v1/edges/sales/direct/hub?"
    for good, n in (("limit=%31", 1), ("%6Cimit=2", 2), ("limit=002", 2), ("limit=1000", 3)):
        status, body = get(port, base + good)
        assert status == 200 and len(body["edges"]) == n, (good, status, body)
    for bad in ("limit=+5", "limit=%205", "limit=5%20", "limit=-1", "limit=1e2", "limit=",
                "limit", "limit=0x10", "limit=99999999999999999999", "limit=5&limit=6",
                "limit=%zz"):
        status, body = get(port, base + bad)
        assert status == 400 and body["error"].startswith("limit: "), (bad, status, body)
    for bad in ("cursor=99999999999999999999999999", "cursor=18446744073709551616",
                "cursor=+5", "cursor=%205", "cursor=-5", "cursor=5.", "cursor=",
                "cursor=1&cursor=2"):
        status, body = get(port, base + bad)
        assert status == 400 and body["error"].startswith("cursor: "), (bad, status, body)
    # the largest HSCAN cursor is taken (Redis answers: a page, maybe empty)
    assert get(port, base + "cursor=18446744073709551615")[0] == 200
    assert get(port, base + "cursor=%35")[0] == 200
    assert d.stop() == 0, d.log_tail()


def test_a_token_guards_v1_only(reads):
    port = reads.port
    d, _ = reads.start(token="s3cret")
    assert get(port, "/v1/stats/sales/direct/x")[0] == 401
    assert get(port, "/v1/stats/sales/direct/x", token="wrong")[0] == 401
    assert get(port, "/v1/stats/sales/direct/x", token="s3cret")[0] == 200
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        assert r.status == 200
    assert d.stop() == 0, d.log_tail()


def test_edges_paged_each_once_while_edges_come_and_go(reads):
    port = reads.port
    d, cfg = reads.start()
    stable = ["s%d/x" % i for i in range(1500)]
    apply(cfg, [{"id": "st-%d" % i, "op": "attach", "relation": "sales", "profile_a": "hub",
                 "profile_b": cp, "weights": {"qty": i}} for i, cp in enumerate(stable)])
    # quiet first: every page, each edge once, the limit kept
    seen, cursor, pages = [], None, 0
    while True:
        path = "/v1/edges/sales/direct/hub?limit=97" + ("&cursor=" + q(cursor) if cursor else "")
        status, body = get(port, path)
        assert status == 200, body
        assert len(body["edges"]) <= 97
        seen += [e["profile_id"] for e in body["edges"]]
        pages += 1
        cursor = body["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(stable) and pages > 10
    # while other edges are attached and detached: every stable edge still comes
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            apply(cfg, [{"id": "ch-%d-%d" % (i, k), "op": op, "relation": "sales",
                         "profile_a": "hub", "profile_b": "t%d" % k,
                         **({"weights": {"qty": 1}} if op == "attach" else {})}
                        for k in range(200) for op in ("attach", "detach")])
            i += 1
    t = threading.Thread(target=churn)
    t.start()
    try:
        seen, cursor = [], None
        while True:
            path = "/v1/edges/sales/direct/hub?limit=50" + (
                "&cursor=" + q(cursor) if cursor else "")
            status, body = get(port, path)
            assert status == 200, body
            seen += [e["profile_id"] for e in body["edges"]]
            cursor = body["cursor"]
            if cursor is None:
                break
    finally:
        stop.set()
        t.join()
    assert set(stable) <= set(seen)
    assert d.stop() == 0, d.log_tail()


def test_a_layout2_side_is_read_by_its_slots(reads):
    """A side written in layout 2 by hand (packed edges by the slots of
    PREFIX schema, in an order of their own; statistics that are 0 absent;
    no sorted set for qty's top, 2 edges being within its limit): /v1/stats
    equals `relationctl stats`, the top computed from the edges; /v1/edges
    decodes every edge."""
    rdb = redis.Redis(port=reads.server.port)
    rdb.set("rel:layout", "2 00000000000000aa")
    rdb.hset("rel:schema", "sales", "ok,qty,profit")
    rdb.hset("rel:{sales:d:hub}:side", mapping={
        "@a/b": "7;1,5,250500000", "@c": ",5", "count": 2, "qty:count": 2, "qty:total": 10,
        "profit:count": 1, "profit:total": 250500000, "ok:count": 1, "#w": b"\x00" * 8})
    port = reads.port
    d, cfg = reads.start()
    status, body = get(port, "/v1/stats/sales/direct/hub")
    assert status == 200 and body == stats(cfg, "sales", "direct", "hub")
    assert body["properties"]["qty"]["top"] == [{"profile_id": "a/b", "value": 5},
                                                {"profile_id": "c", "value": 5}]
    assert body["properties"]["profit"]["top"] == [{"profile_id": "a/b", "value": 250.5}]
    status, body = get(port, "/v1/edges/sales/direct/hub")
    assert status == 200 and body["cursor"] is None
    assert sorted(body["edges"], key=lambda e: e["profile_id"]) == [
        {"profile_id": "a/b", "database": "customers", "version": "7",
         "weights": {"profit": 250.5, "qty": 5, "ok": True}},
        {"profile_id": "c", "database": "customers", "version": None, "weights": {"qty": 5}}]
    assert d.stop() == 0, d.log_tail()
