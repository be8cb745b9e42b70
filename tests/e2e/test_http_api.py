"""The platform's relations API over HTTP, on a real daemon (Redis, the
hooks exchange on RabbitMQ, the Kafka mock), through both engines:

- a random log sent through HTTP (the platform's body on
  /api/v1.1/relations/<op>, with its id or an Idempotency-Key; /v1/events
  with one event or JSON lines), each write retried now and then with the
  same id, interleaved with Kafka traffic on other edges: the statistics
  and the triggers on the hooks queue are exactly the oracle's (brokers.Oracle:
  relationctl applies the same events once, in order);
- the platform's reads get and get_counter equal relationctl's;
- every error status with its body (400, 401, 404, 413, 503 busy), the
  write token (and its change by a reload);
- a slow client, 200 connections at once and bodies over the cap do not
  stall Kafka (the Kafka rate during the abuse is logged, not asserted);
  headers and bodies trickling in are cut at their deadlines;
- Redis down: 503, nothing half applied, a retry with the same id stores
  the event once;
- the README's curl examples run against the daemon and answer in the
  shape the README shows."""

import json
import os
import random
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

from brokers import Event, make_stream, profiles_of, stats, wait_until
from redis_server import Server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, path, body, token=None, headers=None, timeout=30):
    """(status, parsed JSON answer) of POST path with body (bytes, str or a
    JSON-able object)."""
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def metric(port, name, **labels):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"(\w+)\{([^}]*)\} (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted(m.group(2).split(","))) == want:
            return float(m.group(3))
    return 0.0


def platform_body(ev):
    """The platform's body of an event (the op goes in the path)."""
    b = {"rel_id": ev["relation"], "profile_a": ev["profile_a"], "profile_b": ev["profile_b"]}
    for k in ("weights", "id", "version", "occurred_at", "is_test"):
        if k in ev:
            b[k] = ev[k]
    return b


class Sender:
    """Sends events through HTTP in every shape, each retried now and then;
    counts the requests' events (every one answered 200)."""

    def __init__(self, port, rng, token=None):
        self.port, self.rng, self.token = port, rng, token
        self.sent = 0          # events in requests answered 200 (retries included)
        # (relation, side, profile) -> that side's statistics in the answer to
        # its last write, None when that was a batch (its answer has none)
        self.after = {}

    def _note(self, ev, data):
        self.after[(ev["relation"], "direct", ev["profile_a"])] = data and data["direct"]
        self.after[(ev["relation"], "reverse", ev["profile_b"])] = data and data["reverse"]

    def _one(self, path, body, headers=None):
        st, ans = post(self.port, path, body, self.token, headers)
        assert st == 200 and ans["error"] == 0 and ans["error_text"] == "Successful", (st, ans)
        return ans["data"]

    def send(self, events):
        """events: dicts, in order (one side's order kept: one at a time)."""
        i = 0
        while i < len(events):
            shape = self.rng.choice(["platform", "platform_key", "event", "lines"])
            if shape == "lines" and i + 1 == len(events):
                shape = "event"   # one line is one event, answered as one
            if shape == "lines":
                batch = events[i:i + self.rng.randint(2, 6)]
                text = "".join(json.dumps(e) + "\n" for e in batch)
                for _ in range(1 + (self.rng.random() < 0.2)):
                    data = self._one("/v1/events", text)
                    assert data["ids"] == [e["id"] for e in batch], data
                    self.sent += len(batch)
                for e in batch:
                    self._note(e, None)
                i += len(batch)
                continue
            ev = events[i]
            i += 1
            for _ in range(1 + (self.rng.random() < 0.2)):
                if shape == "event":
                    data = self._one("/v1/events", ev)
                elif shape == "platform":
                    data = self._one("/api/v1.1/relations/" + ev["op"], platform_body(ev))
                else:   # the id as an Idempotency-Key
                    body = platform_body(ev)
                    del body["id"]
                    data = self._one("/api/v1.1/relations/" + ev["op"], body,
                                     {"Idempotency-Key": ev["id"]})
                assert data["id"] == ev["id"], data
                self.sent += 1
                self._note(ev, data)


def with_http(h, port, **http):
    h.config["http"] = dict({"listen": "127.0.0.1:%d" % port}, **http)
    return h


def test_random_log_through_http_and_kafka_is_exact(harness, daemons, engine):
    h = with_http(harness(kafka=True, redis_engine=engine), free_port())
    port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
    over_http = make_stream(240, seed=23, clusters=[0, 1, 2, 3], tag="ht")
    over_kafka = make_stream(400, seed=24, clusters=[4, 5, 6, 7], tag="kf")
    d = h.daemon(daemons).start()
    sender = Sender(port, random.Random(5))
    for k in range(4):
        h.feed_kafka(over_kafka[100 * k:100 * (k + 1)])
        chunk = over_http[60 * k:60 * (k + 1)]
        # stored by the daemon through HTTP; the oracle applies the same
        # events once, in the same order
        sender.send([e.body for e in chunk])
        h._expect(chunk, True)
    h.wait_done()
    h.check()
    cfg = h.daemons[0].config_path
    # a side last written by a single write: its answer's statistics are
    # the side's final ones (only the HTTP log writes these sides)
    finals = [(k, v) for k, v in sorted(sender.after.items()) if v is not None]
    assert len(finals) >= 5, sender.after
    for (rel, side, prof), got in finals:
        assert got == stats(cfg, rel, side, prof), (rel, side, prof, got)
    # the platform's reads equal relationctl's
    for rel, side, prof in sorted(profiles_of(over_http))[:10]:
        st, ans = post(port, "/api/v1.1/relations/get_counter",
                       {"rel_id": rel, "profile_id": prof, "direction": side})
        assert st == 200 and ans["data"] == stats(cfg, rel, side, prof), (rel, side, prof, ans)
        seen, cursor = [], None
        while True:
            body = {"rel_id": rel, "profile_id": prof, "direction": side, "limit": 2}
            if cursor:
                body["cursor"] = cursor
            st, ans = post(port, "/api/v1.1/relations/get", body)
            assert st == 200 and ans["error"] == 0, ans
            assert ans["data"]["total_count"] == stats(cfg, rel, side, prof)["count"]
            seen += ans["data"]["relations"]
            cursor = ans["data"]["cursor"]
            if cursor is None:
                break
        edges = subprocess.run([os.environ.get("RELATIONCTL", os.path.join(REPO, "build",
                                                                           "relationctl")),
                                "-c", cfg, "edges", rel, side, prof],
                               capture_output=True, text=True, timeout=30)
        want = sorted(json.loads(line)["profile_id"] for line in edges.stdout.splitlines())
        assert sorted(e["profile_id"] for e in seen) == want
    ok = sum(metric(port, "relationd_events_total", source="http", result=r)
             for r in ("applied", "duplicate", "stale"))
    assert ok == sender.sent, (ok, sender.sent)
    assert d.stop() == 0, d.log_tail()


def test_single_write_answers_the_sides_statistics_after(harness, daemons):
    h = with_http(harness(kafka=False), free_port())
    port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
    h.daemon(daemons).start()
    cfg = h.daemons[0].config_path
    st, ans = post(port, "/api/v1.1/relations/strengthen",
                   {"rel_id": "loyal", "profile_a": "m1", "profile_b": "c1", "id": "s1",
                    "weights": {"profit": 250.5, "purchases": 1}})
    assert st == 200, ans
    assert ans["data"]["direct"] == stats(cfg, "loyal", "direct", "m1")
    assert ans["data"]["reverse"] == stats(cfg, "loyal", "reverse", "c1")
    assert ans["data"]["direct"]["properties"]["profit"]["total"] == 250.5
    # the same id again: a duplicate, nothing added
    st, again = post(port, "/api/v1.1/relations/strengthen",
                     {"rel_id": "loyal", "profile_a": "m1", "profile_b": "c1", "id": "s1",
                      "weights": {"profit": 250.5, "purchases": 1}})
    assert st == 200 and again["data"] == ans["data"], again
    assert metric(port, "relationd_events_total", source="http", result="duplicate") == 1
    # without an id: a server-generated one; each request applies
    for _ in range(2):
        st, ans = post(port, "/api/v1.1/relations/strengthen",
                       {"rel_id": "loyal", "profile_a": "m2", "profile_b": "c1",
                        "weights": {"purchases": 2}})
        assert st == 200 and ans["data"]["id"].startswith("http-"), ans
    assert stats(cfg, "loyal", "direct", "m2")["properties"]["purchases"]["total"] == 4


def test_errors_have_the_platforms_shape(harness, daemons):
    h = with_http(harness(kafka=False), free_port(), token="rt", write_token="wt",
                  max_body_bytes=4096)
    port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
    h.daemon(daemons).start()
    good = {"rel_id": "loyal", "profile_a": "a", "profile_b": "b", "weights": {"purchases": 1}}
    attach = "/api/v1.1/relations/attach"
    assert post(port, attach, good) == \
        (401, {"error": 401, "error_text": "Authorization: Bearer <http.write_token> required"})
    # the read token does not write; the write token does not read
    assert post(port, attach, good, "rt")[0] == 401
    assert post(port, "/api/v1.1/relations/get_counter",
                {"rel_id": "loyal", "profile_id": "a"}, "wt") == \
        (401, {"error": 401, "error_text": "Authorization: Bearer <http.token> required"})
    cases = [
        (attach, {"rel_id": "nope", "profile_a": "a", "profile_b": "b"}, 404,
         'rel_id: unknown relation "nope"'),
        (attach, dict(good, weights={"profit": "x"}), 400, "weights.profit: must be a number"),
        (attach, dict(good, weights={"colour": 1}), 400,
         "weights.colour: no such property in relation loyal"),
        (attach, dict(good, extra=1), 400,
         "extra: not a field (rel_id, profile_a, profile_b, weights, id, version, "
         "occurred_at, is_test)"),
        (attach, {"profile_a": "a", "profile_b": "b"}, 400, "rel_id: required"),
        (attach, "{nope", 400, None),
        ("/api/v1.1/relations/merge", good, 404, None),
        ("/v1/events", "", 400, "body: one event, or JSON lines of events, required"),
        ("/v1/events", '{"op":"attach","relation":"loyal","profile_a":"a","profile_b":"b"}\n'
         '{"op":"attach","relation":"loyal","profile_a":"a"}\n', 400,
         "line 2: profile_b: required"),
        ("/v1/events", {"op": "attach", "relation": "gone", "profile_a": "a",
                        "profile_b": "b"}, 404, 'relation: unknown relation "gone"'),
        ("/api/v1.1/relations/get", {"rel_id": "loyal"}, 400,
         "profile_id: required, a string of 1..128 bytes or an integer"),
        ("/api/v1.1/relations/get", {"rel_id": "loyal", "profile_id": "a", "limit": 0}, 400,
         "limit: an integer 1..1000 (given once)"),
        ("/api/v1.1/relations/get", {"rel_id": "loyal", "profile_id": "a",
                                     "direction": "up"}, 400, "direction: direct or reverse"),
        ("/api/v1.1/relations/get_counter", {"rel_id": "x", "profile_id": "a"}, 404,
         'rel_id: unknown relation "x"'),
    ]
    for path, body, status, text in cases:
        token = "rt" if path.endswith(("/get", "/get_counter")) else "wt"
        st, ans = post(port, path, body, token)
        assert st == status and ans["error"] == status, (path, body, st, ans)
        if text:
            assert ans["error_text"] == text, (path, body, ans)
        else:
            assert ans["error_text"], ans
    # the first line was valid, the second not: nothing of the batch stored
    assert stats(h.daemons[0].config_path, "loyal", "direct", "a")["count"] == 0
    # the body cap: 413, announced or not
    big = json.dumps(dict(good, occurred_at="x" * 5000))
    assert post(port, attach, big, "wt") == \
        (413, {"error": 413, "error_text": "body larger than http.max_body_bytes (4096 bytes)"})
    chunked = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-H", "Authorization: Bearer wt",
         "-H", "Transfer-Encoding: chunked", "--data-binary", "@-",
         "http://127.0.0.1:%d%s" % (port, attach)], input=big, capture_output=True, text=True,
        timeout=30)
    body, code = chunked.stdout.rsplit("\n", 1)
    assert code == "413" and json.loads(body)["error"] == 413, chunked.stdout
    assert post(port, attach, good, "wt")[0] == 200
    invalid = metric(port, "relationd_events_total", source="http", result="invalid")
    assert invalid >= 9, invalid


def test_busy_answers_503_and_redis_down_answers_503_nothing_half_applied(harness, daemons,
                                                                        engine):
    server = Server(persistent=True, module=engine == "module")
    server.start()
    try:
        h = with_http(harness(kafka=False, redis_server=server, redis_engine=engine),
                      free_port(), write_timeout_ms=1500, max_writes=1)
        port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
        d = h.daemon(daemons).start()
        cfg = d.config_path
        events = [e.body for e in make_stream(20, seed=8, clusters=[0], tag="rd")
                  if e.body["op"] != "detach"][:6]
        Sender(port, random.Random(1)).send(events[:3])
        ev = events[3]
        sides = [(ev["relation"], "direct", ev["profile_a"]),
                 (ev["relation"], "reverse", ev["profile_b"])]
        before = [stats(cfg, *side) for side in sides]
        server.kill()
        results = []
        t = threading.Thread(target=lambda: results.append(post(port, "/v1/events", events[3])))
        t.start()
        time.sleep(0.3)
        # max_writes 1: the second write waiting is refused at once
        st, ans = post(port, "/v1/events", events[4])
        assert st == 503 and "http.max_writes" in ans["error_text"], ans
        t.join(30)
        st, ans = results[0]
        assert st == 503 and ans["error"] == 503 and "retry with the same id" in \
            ans["error_text"], ans
        server.start()
        time.sleep(2)   # the batch holding it, if any, is applied again meanwhile
        between = [stats(cfg, *side) for side in sides]
        answers = []
        wait_until(lambda: answers.append(post(port, "/v1/events", events[3])) or
                   answers[-1][0] == 200, timeout=60, message=d.log_tail)
        after = [answers[-1][1]["data"]["direct"], answers[-1][1]["data"]["reverse"]]
        assert after != before
        # the event is there entirely (both sides: one atomic call on one
        # server) or not at all, never a part
        assert between in (before, after), (before, between, after)
        Sender(port, random.Random(2)).send(events[4:])
        h._expect([Event(0, e) for e in events], True)
        h.wait_done()
        h.check()
    finally:
        server.stop()


def test_slow_clients_many_connections_and_big_bodies_do_not_stall_kafka(harness, daemons):
    h = with_http(harness(kafka=True), free_port(), max_body_bytes=65536, write_timeout_ms=3000)
    port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
    h.daemon(daemons).start()
    events = make_stream(600, seed=31, clusters=list(range(6)), tag="ab")
    stop = threading.Event()
    opened = []

    cut = []   # the slow clients the server closed

    def slow(head):   # a request trickling in, one byte a second: headers or body
        s = socket.create_connection(("127.0.0.1", port))
        opened.append(s)
        s.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n" +
                  (b"" if head else b"\r\n"))
        s.settimeout(1)
        while not stop.is_set():
            try:
                s.sendall(b"x")
                if s.recv(4096) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        else:
            return
        cut.append("headers" if head else "body")

    def crowd(n):   # connections from several loopback addresses, idle
        for i in range(n):
            try:
                s = socket.socket()
                s.bind(("127.0.0.%d" % (2 + i % 8), 0))
                s.connect(("127.0.0.1", port))
                opened.append(s)
            except OSError:
                pass

    def big():
        while not stop.is_set():
            try:
                post(port, "/v1/events", "x" * 200000, timeout=10)
            except (OSError, ValueError, urllib.error.URLError):
                pass

    def rate(part, what):
        t0 = time.monotonic()
        h.feed_kafka(part)
        h.wait_done()
        took = time.monotonic() - t0
        print("kafka %s: %d events in %.1f s (%.0f events/s, the feeding and the checks "
              "included), %d connections open" % (what, len(part), took, len(part) / took,
                                                  len(opened)))

    h.feed_kafka(events[:20])   # the group joined, the first batches through
    h.wait_done()
    rate(events[20:310], "before the abuse")
    threads = [threading.Thread(target=slow, args=(head,)) for head in (True, True, False)]
    threads += [threading.Thread(target=crowd, args=(200,)), threading.Thread(target=big)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        rate(events[310:], "during the abuse")
        # the slow clients are cut: headers past 5 s, a body past write_timeout_ms
        wait_until(lambda: sorted(cut) == ["body", "headers", "headers"], timeout=30)
        # writes still go through
        late = {"id": "z1", "op": "attach", "relation": "loyal", "profile_a": "z",
                "profile_b": "y"}
        st, ans = post(port, "/v1/events", late)
        assert st == 200, ans
        h._expect([Event(9, late)], True)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        for s in opened:
            s.close()
    h.check()


def readme_examples():
    """The README's curl examples of the HTTP API, each with the answer it shows."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    section = text.split("### The relations API over HTTP", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(curl .*?)\n```\n```json\n(.*?)\n```", section, re.S)


def test_readme_curl_examples_answer_as_shown(harness, daemons):
    h = with_http(harness(kafka=False), 9464 if not _listening(9464) else free_port(),
                  token="secret")
    port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
    h.daemon(daemons).start()
    examples = readme_examples()
    assert len(examples) >= 5, examples
    for cmd, shown in examples:
        cmd = cmd.replace("\\\n", " ").replace("127.0.0.1:9464", "127.0.0.1:%d" % port)
        cmd = cmd.replace("$RELATIOND_TOKEN", "secret")
        out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30)
        got = json.loads(out.stdout)
        want = json.loads(shown)
        assert shape(got) == shape(want), (cmd, got, want)
        assert got.get("error") == want.get("error"), (cmd, got, want)


def shape(v):
    """The keys and types of a JSON value (the values left out)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__ if not isinstance(v, (int, float)) or isinstance(v, bool) \
        else "number"


def _listening(p):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", p)) == 0


def test_write_token_follows_a_reload(harness, daemons):
    h = with_http(harness(kafka=False), free_port(), write_token="w1")
    port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
    d = h.daemon(daemons).start()
    body = {"rel_id": "loyal", "profile_a": "a", "profile_b": "b", "id": "t1"}
    assert post(port, "/api/v1.1/relations/attach", body, "w1")[0] == 200
    config = json.loads(json.dumps(d.config))
    config["http"]["write_token"] = "w2"
    d.write_config(config)
    d.sighup()
    wait_until(lambda: post(port, "/api/v1.1/relations/attach", body, "w2")[0] == 200,
               timeout=30, message=d.log_tail)
    assert post(port, "/api/v1.1/relations/attach", body, "w1")[0] == 401
    # reads are open (no http.token): the write token is not asked of them
    st, ans = post(port, "/api/v1.1/relations/get", {"rel_id": "loyal", "profile_id": "a"})
    assert st == 200 and ans["data"]["total_count"] == 1, ans


def test_without_a_hook_writes_are_not_served_and_reads_are(harness, daemons):
    h = with_http(harness(kafka=False), free_port())
    port = int(h.config["http"]["listen"].rsplit(":", 1)[1])
    del h.config["hooks"]
    h.daemon(daemons).start()
    body = {"rel_id": "loyal", "profile_a": "a", "profile_b": "b", "id": "n1"}
    assert post(port, "/api/v1.1/relations/attach", body) == \
        (404, {"error": 404, "error_text": "writes are not served: relationd has no hooks "
                                           "section to deliver their triggers to"})
    st, ans = post(port, "/api/v1.1/relations/get_counter", {"rel_id": "loyal",
                                                             "profile_id": "a"})
    assert st == 200 and ans["data"]["count"] == 0, ans
