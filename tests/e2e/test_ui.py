"""The relation card page (GET /ui/) in a real browser: Debian's chromium,
headless, driven by playwright-core (tools/deps.sh installs both;
tests/e2e/ui/drive_card.js). relationd consumes Kafka (the test broker) and
publishes to a RabbitMQ hook, with http.token set. The page asks for the
token, looks up a profile: the summary and tops it shows equal `relationctl
stats`; the related profiles paged through equal `relationctl edges`, each
once; a trigger appears live once an event is sent to Kafka (the ids the
hook received); the screenshot goes to build/relation-card.png (the README's
man/relation-card.png is one of those). Without a browser: the page's
endpoints' token, the stream's server-sent events, its end at a stop and a
slow client's drops."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from brokers import Event, run_relationctl, wait_until
from redis_server import REPO, free_port

TOKEN = "card-t0ken"
# where tools/deps.sh installed playwright-core
NODE_MODULES = os.path.join(os.environ.get("NODE_TOOLS_DIR", os.path.join(REPO, "tools")),
                            "node_modules")
DRIVER = os.path.join(REPO, "tests", "e2e", "ui", "drive_card.js")
SCREENSHOT = os.path.join(REPO, "build", "relation-card.png")


def get(port, path, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def exact(text):
    """JSON with numbers kept as their text (as relationctl printed them)."""
    return json.loads(text, parse_float=str, parse_int=str)


def ctl_stats(cfg, side, profile):
    out = run_relationctl(["-c", cfg, "stats", "loyal", side, profile], timeout=60)
    assert out.returncode == 0, out.stderr
    return exact(out.stdout)


def ctl_edges(cfg, side, profile):
    out = run_relationctl(["-c", cfg, "edges", "loyal", side, profile], timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line)["profile_id"] for line in out.stdout.splitlines()]


def shown_as_stats(summary):
    """The page's summary in the shape of relationctl stats (top values and
    ids only: the bars' widths are checked apart)."""
    props = {}
    for name, p in summary["properties"].items():
        props[name] = {"count": p["count"]}
        if p["total"] != "":
            props[name]["total"] = p["total"]
        if name in summary["tops"]:
            props[name]["top"] = [{"profile_id": pid, "value": v}
                                  for pid, v, _ in summary["tops"][name]]
    return {"count": summary["count"], "properties": props}


@pytest.fixture()
def card_daemon(harness, daemons):
    """(harness, daemon, port): relationd on Kafka with http.token, fed a
    hub of 23 related profiles and some other sides (one partition: the
    sides the hub shares with them see the events in one order), caught up."""
    port = free_port()
    h = harness(kafka=True)
    cfg = dict(h.config, http={"listen": "127.0.0.1:%d" % port, "token": TOKEN})
    cfg["kafka"] = dict(cfg["kafka"], properties=dict(cfg["kafka"]["properties"],
                                                      **{"statistics.interval.ms": "300"}))
    d = h.daemon(daemons, config=cfg).start()
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=60)
    events = [Event(0, {"id": "hub-%d" % i, "op": "attach", "relation": "loyal",
                        "profile_a": "hub", "profile_b": "c%02d" % i,
                        "weights": {"profit": round(2.25 * i - 3, 2),
                                    "purchases": i % 5, "approve": i % 3 == 0}})
              for i in range(23)]
    events += [Event(0, {"id": "other-%d" % i, "op": "strengthen", "relation": "loyal",
                         "profile_a": "m%d" % (i % 3), "profile_b": "c%02d" % i,
                         "weights": {"profit": (i + 1) / 8}}) for i in range(6)]
    h.feed_kafka(events)
    h.wait_done()
    return h, d, port


def test_the_card_in_a_browser(card_daemon):
    h, d, port = card_daemon
    if not shutil.which("node") or not os.path.isdir(os.path.join(NODE_MODULES,
                                                                  "playwright-core")):
        pytest.fail("node or playwright-core missing: run tools/deps.sh")
    cfg = d.config_path
    os.makedirs(os.path.dirname(SCREENSHOT), exist_ok=True)
    if os.path.exists(SCREENSHOT):
        os.unlink(SCREENSHOT)
    plan = {"url": "http://127.0.0.1:%d/ui/" % port, "token": TOKEN, "relation": "loyal",
            "side": "direct", "profile": "hub", "limit": 10, "screenshot": SCREENSHOT}
    node = subprocess.Popen(["node", DRIVER, json.dumps(plan)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, NODE_PATH=NODE_MODULES))
    watchdog = threading.Timer(240, node.kill)   # a hung browser fails the test
    watchdog.start()
    try:
        line = node.stdout.readline()
        assert line, "the driver stopped: %s" % node.stderr.read()
        card = json.loads(line)

        # the relations as configured
        loyal = next(r for r in card["relations"] if r["short"] == "loyal")
        assert loyal["properties"] == ["profit", "purchases", "approve"]
        assert "direct total(profit) ≥ 300" in loyal["thresholds"]
        assert {r["short"] for r in card["relations"]} == {"loyal", "refs"}
        # the summary and the tops: what relationctl stats prints
        want = ctl_stats(cfg, "direct", "hub")
        assert shown_as_stats(card["summary"]) == want
        assert len(want["properties"]["profit"]["top"]) == 3
        widths = [w for _, _, w in card["summary"]["tops"]["profit"]]
        assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]
        # the related profiles: 10 a page, each once, all of them
        pages = card["pages"]
        assert [len(p) for p in pages] == [10, 10, 3]
        seen = [p for page in pages for p in page]
        assert sorted(seen) == sorted(ctl_edges(cfg, "direct", "hub"))
        assert len(set(seen)) == 23
        assert card["back"] == pages[-2]
        # the health panel: sources, Kafka lag, the hook's backlog
        assert "backlog of hook default" in card["health"], card["health"]
        assert "Kafka lag %s" % h.topics[0] in card["health"], card["health"]
        assert "kafka source redis" in card["health"], card["health"]

        # a trigger live: an event sent to Kafka
        known = set(h.oracle.triggers)
        live = Event(0, {"id": "live-1", "op": "attach", "relation": "loyal",
                         "profile_a": "hub", "profile_b": "newcomer",
                         "weights": {"profit": 500, "purchases": 4}})
        h.feed_kafka([live])
        expected = sorted(set(h.oracle.triggers) - known)
        assert len(expected) == 3   # both sides' attach, the edge threshold purchases >= 4
        node.stdin.write(json.dumps(expected) + "\n")
        node.stdin.flush()
        line = node.stdout.readline()
        assert line, "the driver stopped: %s" % node.stderr.read()
        done = json.loads(line)
        assert node.wait(timeout=60) == 0, node.stderr.read()
    finally:
        watchdog.cancel()
        if node.poll() is None:
            node.kill()
            node.wait()
    h.wait_done()
    live_shown = [t for t in done["triggers"] if t["event"] == "live-1"]
    assert sorted(t["id"] for t in live_shown) == expected
    assert set(expected) <= h.hook_ids            # the very triggers the hook received
    assert sorted(t["key"] for t in live_shown) == ["loyal.direct.attach", "loyal.direct.threshold",
                                                    "loyal.reverse.attach"]
    assert shown_as_stats(done["summary"]) == ctl_stats(cfg, "direct", "hub")
    assert done["summary"]["count"] == "24"
    assert done["token_kept"] == TOKEN
    assert done["errors"] == []
    with open(SCREENSHOT, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_page_is_open_its_data_needs_the_token(card_daemon):
    h, d, port = card_daemon
    status, headers, body = get(port, "/ui/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for path in ("/ui/card.js", "/ui/card.css"):
        assert get(port, path)[0] == 200, path
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/ui")
    r = conn.getresponse()
    assert (r.status, r.getheader("Location")) == (301, "/ui/")
    conn.close()
    for path in ("/v1/relations", "/v1/triggers/stream"):
        status, _, body = get(port, path)
        assert (status, json.loads(body)) == \
            (401, {"error": "Authorization: Bearer <http.token> required"}), path
        assert get(port, path, token="wrong")[0] == 401
    status, _, body = get(port, "/v1/relations", token=TOKEN)
    rel = {r["short"]: r for r in json.loads(body)["relations"]}
    assert rel["refs"]["thresholds"][1] == {"direction": "reverse", "stat": "total",
                                            "property": "revenue", "value": 100.5,
                                            "name": None}
    assert rel["loyal"]["properties"][0] == {"short": "profit", "name": None, "type": "float",
                                             "save_amount": True,
                                             "save_top": {"order": "desc", "limit": 3}}


def test_the_stream_sends_each_trigger_once_published(card_daemon):
    """Server-sent events: "ready" first, then an event per trigger (its body
    as the hook gets it), for every subscriber; the stop ends the streams."""
    h, d, port = card_daemon
    streams = []
    for _ in range(2):
        req = urllib.request.Request("http://127.0.0.1:%d/v1/triggers/stream" % port,
                                     headers={"Authorization": "Bearer " + TOKEN})
        r = urllib.request.urlopen(req, timeout=30)
        assert r.headers["Content-Type"] == "text/event-stream"
        assert r.readline() == b"event: ready\n" and r.readline() == b"data: {}\n"
        assert r.readline() == b"\n"
        streams.append(r)
    known = set(h.oracle.triggers)
    h.feed_kafka([Event(2, {"id": "s-1", "op": "attach", "relation": "refs",
                            "profile_a": "r1", "profile_b": "x1",
                            "weights": {"revenue": 200.25}})])
    expected = set(h.oracle.triggers) - known
    got = {}
    for r in streams:
        got = {}
        while set(got) != expected:
            kind, data, blank = r.readline(), r.readline(), r.readline()
            assert kind == b"event: trigger\n" and blank == b"\n", (kind, data)
            assert data.startswith(b"data: ")
            body = json.loads(data[6:])
            got[body["event_data"]["id"]] = body
        assert set(got) == expected
        r.close()
    h.wait_done()
    hooked = {json.loads(raw)["event_data"]["id"]: json.loads(raw) for _, _, raw in h.hooks.messages}
    for tid, body in got.items():
        assert body == hooked[tid]

    # a stream open (waiting, its connection suspended) does not hold the stop:
    # it ends, and the daemon exits 0
    req = urllib.request.Request("http://127.0.0.1:%d/v1/triggers/stream" % port,
                                 headers={"Authorization": "Bearer " + TOKEN})
    r = urllib.request.urlopen(req, timeout=30)
    assert r.readline() == b"event: ready\n"
    assert d.stop(timeout=30) == 0, d.log_tail()
    assert r.read() == b"data: {}\n\n"


class SmallWindow(http.client.HTTPConnection):
    """A client whose socket receives little (SO_RCVBUF 4 KiB): while it does
    not read, what the daemon sends piles up in the daemon."""

    def connect(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))


def test_a_slow_stream_drops_the_oldest_and_says_how_many(card_daemon):
    """A client that does not read while 4,000 events make their triggers:
    the daemon goes on (every trigger reaches the hook); the stream then
    gives what the sockets held, a note of how many were dropped, and the
    newest, in order: the triggers received and dropped add up to those
    published (here about 8,000: 5,100 received, 2,900 dropped)."""
    h, d, port = card_daemon
    conn = SmallWindow("127.0.0.1", port, timeout=60)
    conn.request("GET", "/v1/triggers/stream", headers={"Authorization": "Bearer " + TOKEN})
    r = conn.getresponse()
    assert r.status == 200
    assert [r.readline() for _ in range(3)] == [b"event: ready\n", b"data: {}\n", b"\n"]
    known = set(h.oracle.triggers)
    h.feed_kafka([Event(3, {"id": "flood-%d" % i, "op": "attach", "relation": "refs",
                            "profile_a": "f%d" % (i % 40), "profile_b": "g%d" % i,
                            "weights": {"revenue": 1.5, "days": i % 30}})
                  for i in range(4000)])
    h.wait_done()                      # not held by the stream
    published = len(set(h.oracle.triggers) - known)
    received, dropped, notes = [], 0, 0
    while len(received) + dropped < published:
        kind, data, blank = r.readline(), r.readline(), r.readline()
        assert blank == b"\n" and data.startswith(b"data: "), (kind, data, blank)
        if kind == b"event: dropped\n":
            dropped += json.loads(data[6:])["dropped"]
            notes += 1
        else:
            assert kind == b"event: trigger\n", kind
            received.append(json.loads(data[6:])["event_data"]["source_event"]["id"])
    print("published %d, received %d, dropped %d in %d notes" % (published, len(received),
                                                                dropped, notes))
    assert dropped > 0 and notes >= 1
    assert len(received) + dropped == published
    order = [int(e.split("-")[1]) for e in received]
    assert order == sorted(order) and order[-1] == 3999     # the newest, in order
    conn.close()
