"""Action hooks end to end: four hooks at once (an amqp topic exchange, an
amqp queue with a kinds filter, a Kafka topic on the mock, an http URL with
a relation and direction filter and a secret, answered by a receiver in
this process) fed a random log with duplicates through Kafka.

Each hook must receive exactly the oracle's triggers (brokers.Oracle: the
same events applied once, in order, by relationctl) that its filter passes,
at least once each; the first arrival of each trigger of one side in the
oracle's order; http batches of at most batch_size with signatures that
verify. A failing hook (500, 429 with Retry-After, connections refused, a
200 whose body fails success_regex, an answer past timeout_ms)
loses nothing and does not hold the others back (their arrivals are counted
during the outage); its backlog metric rises and returns to 0. kill -9 of
the daemon with a hook down, then a restart: nothing lost. max_backlog
reached pauses consumption and /readyz names the hook, until it drains."""

import base64
import json
import re
import time

from brokers import (HttpReceiver, KafkaReader, free_port, http_get, make_stream,
                     run_relationctl, verify_signature, wait_until)

SECRET = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
HTTP_BATCH = 7


class QueueReader:
    """Takes what a durable queue holds (basic_get), in order."""

    def __init__(self, rabbit, queue):
        self.rabbit = rabbit
        self.queue = queue
        self.messages = []        # (routing key, properties, body)

    def drain(self):
        conn = self.rabbit.connection()
        try:
            ch = conn.channel()
            ch.queue_declare(self.queue, durable=True)
            while True:
                method, props, body = ch.basic_get(self.queue, auto_ack=True)
                if method is None:
                    break
                self.messages.append((method.routing_key, props, body))
        finally:
            conn.close()
        return self.messages


def passes(body, relations=None, kinds=None, directions=None):
    d = body["event_data"]
    return ((relations is None or d["relation"] in relations) and
            (kinds is None or d["kind"] in kinds) and
            (directions is None or d["direction"] in directions))


def side_of(body):
    d = body["event_data"]
    return (d["relation"], d["direction"], body["profile_id"])


def problems_of(name, got, oracle, **flt):
    """got: the trigger bodies a hook received, in arrival order. Exactly the
    oracle's triggers its filter passes (each at least once, nothing else,
    each body right), and each side's first arrivals in the oracle's order."""
    want = {tid: b for tid, b in oracle.items() if passes(b, **flt)}
    order = {tid: i for i, tid in enumerate(oracle)}
    problems, first, last = [], set(), {}
    for body in got:
        tid = body["event_data"]["id"]
        if tid not in want:
            problems.append("%s: unexpected trigger %s" % (name, json.dumps(body)[:200]))
            continue
        b = dict(body)
        b.pop("event_date", None)
        if b != want[tid]:
            problems.append("%s: trigger %s differs" % (name, tid))
        if tid in first:
            continue            # a redelivery: at least once
        first.add(tid)
        side = side_of(body)
        if side in last and order[tid] < order[last[side]]:
            problems.append("%s: trigger %s of %s arrived after the later %s" % (
                name, tid, side, last[side]))
        last[side] = tid
    missing = set(want) - first
    if missing:
        problems.append("%s: %d of %d triggers missing" % (name, len(missing), len(want)))
    return problems


def metric(port, name, hook):
    status, text = http_get(port, "/metrics")
    if status != 200:
        return None
    m = re.search(r'^%s\{hook="%s"\} (\S+)$' % (name, hook), text, re.M)
    return float(m.group(1)) if m else None


class Hooks:
    """The four hooks of a harness and their receivers."""

    def __init__(self, h, port, http_port, max_backlog=None, timeout_ms=5000):
        self.h = h
        self.port = port
        self.crm_queue = "crm-%s" % h.names.uid
        self.lake_topic = h.topics[1]        # no bad message is fed: the topic is free
        self.receiver = HttpReceiver(http_port)
        self.crm = QueueReader(h.rabbit, self.crm_queue)
        self.lake = KafkaReader(h.kafka.bootstrap, self.lake_topic, "lake-%s" % h.names.uid)
        partner = {"name": "partner", "kind": "http", "url": "http://127.0.0.1:%d/hook" % http_port,
                   "batch_size": HTTP_BATCH, "batch_ms": 50, "timeout_ms": timeout_ms,
                   "success_regex": "OK", "secret": SECRET,
                   "filter": {"relations": ["loyal"], "directions": ["direct"]}}
        if max_backlog:
            partner["max_backlog"] = max_backlog
        h.config["hooks"] = [
            {"name": "mailing", "kind": "amqp", "url": h.rabbit.url,
             "exchange": h.names.hooks_exchange},
            {"name": "crm", "kind": "amqp", "url": h.rabbit.url, "queue": self.crm_queue,
             "filter": {"kinds": ["attach", "detach"]}},
            {"name": "lake", "kind": "kafka", "brokers": h.kafka.bootstrap,
             "topic": self.lake_topic},
            partner]
        h.config["http"] = {"listen": "127.0.0.1:%d" % port}

    def arrived(self):
        """Trigger bodies received so far by each hook."""
        self.h.hooks.drain(0.05)
        self.crm.drain()
        self.lake.poll(0.2)
        return {"mailing": [json.loads(b) for _, _, b in self.h.hooks.messages],
                "crm": [json.loads(b) for _, _, b in self.crm.messages],
                "lake": [json.loads(v) for _, v, _, _ in self.lake.messages],
                "partner": list(self.receiver.delivered)}

    def problems(self):
        got, oracle = self.arrived(), self.h.oracle.triggers
        p = problems_of("mailing", got["mailing"], oracle)
        p += problems_of("crm", got["crm"], oracle, kinds=("attach", "detach"))
        p += problems_of("lake", got["lake"], oracle)
        p += problems_of("partner", got["partner"], oracle, relations=("loyal",),
                         directions=("direct",))
        return p

    def wait_all(self, timeout=120):
        wait_until(lambda: not self.problems(), timeout=timeout, interval=0.5,
                   message=lambda: "\n".join(self.problems()[:12]) + "\n" + self.h._logs())

    def check_details(self):
        """What each sink must carry beyond the body."""
        for rk, props, raw in self.crm.messages:
            body = json.loads(raw)
            assert rk == self.crm_queue and props.message_id == body["event_data"]["id"]
            assert props.delivery_mode == 2 and props.content_type == "application/json"
        for key, value, headers, _ in self.lake.messages:
            body = json.loads(value)
            assert key.decode() == "%s:%s" % (body["database"], body["profile_id"])
            assert headers["message_id"] == body["event_data"]["id"]
            assert headers["event_type"] == body["event_type"]
        ids = {}
        for headers, raw, _, _ in self.receiver.requests:
            batch = json.loads(raw)
            assert 1 <= len(batch) <= HTTP_BATCH
            assert headers["Content-Type"] == "application/json"
            assert verify_signature(SECRET, headers, raw), headers
            # every retry of a batch carries the same webhook-id
            first = batch[0]["event_data"]["id"]
            assert ids.setdefault(first, headers["webhook-id"]) == headers["webhook-id"]

    def close(self):
        self.receiver.stop()
        self.lake.close()


def test_four_hooks_each_get_exactly_their_triggers_through_http_failures(harness, daemons):
    h = harness(kafka=True)
    port = free_port()
    hooks = Hooks(h, port, free_port())
    try:
        events = make_stream(700, seed=91, clusters=list(range(8)), tag="hk")
        h.feed_kafka(events[:250])
        d = h.daemon(daemons).start()
        hooks.receiver.set("500")
        wait_until(lambda: len(hooks.receiver.requests) >= 2, timeout=30, message=d.log_tail)
        hooks.receiver.set("429")
        wait_until(lambda: hooks.receiver.statuses().count(429) >= 2,
                   timeout=30, message=d.log_tail)
        # the partner hook has not taken anything yet; the others flow meanwhile
        assert hooks.receiver.delivered == []
        others = hooks.arrived()
        assert all(others[k] for k in ("mailing", "crm", "lake")), {k: len(v) for k, v in others.items()}
        assert metric(port, "relationd_hook_backlog", "partner") > 0
        failures = http_get(port, "/metrics")[1]
        assert re.search(r'relationd_hook_failures_total\{hook="partner",reason="status_5xx"\} [1-9]',
                         failures), failures
        hooks.receiver.set("down")      # connections refused for a few seconds
        h.feed_kafka(events[250:500])
        before = {k: len(v) for k, v in hooks.arrived().items()}
        time.sleep(3)
        during = {k: len(v) for k, v in hooks.arrived().items()}
        for k in ("mailing", "crm", "lake"):
            assert during[k] > before[k], (k, before, during)
        assert during["partner"] == 0
        hooks.receiver.set("ok")
        h.feed_kafka(events[500:])
        hooks.wait_all()
        h.wait_done()
        hooks.check_details()
        for hook in ("mailing", "crm", "lake", "partner"):
            wait_until(lambda: metric(port, "relationd_hook_backlog", hook) == 0, timeout=30)
            assert metric(port, "relationd_hook_delivered_total", hook) > 0
            assert metric(port, "relationd_hook_last_success_timestamp_seconds", hook) > 0
        assert d.stop() == 0, d.log_tail()
    finally:
        hooks.close()


def test_an_answer_failing_success_regex_or_timing_out_is_sent_again(harness, daemons):
    """A 200 whose body does not match success_regex, then an answer later
    than timeout_ms: each is a failure of its reason, the batch is sent again
    (the same webhook-id) and nothing is lost; the other hooks flow
    meanwhile and the backlog returns to 0."""
    h = harness(kafka=True)
    port = free_port()
    hooks = Hooks(h, port, free_port(), timeout_ms=1000)
    try:
        events = make_stream(300, seed=93, clusters=list(range(6)), tag="hr")
        hooks.receiver.set("mismatch")
        h.feed_kafka(events[:150])
        d = h.daemon(daemons).start()
        wait_until(lambda: len(hooks.receiver.requests) >= 2, timeout=30, message=d.log_tail)
        hooks.receiver.set("slow")
        n = len(hooks.receiver.requests)
        wait_until(lambda: len(hooks.receiver.requests) >= n + 1, timeout=30, message=d.log_tail)
        others = hooks.arrived()
        assert all(others[k] for k in ("mailing", "crm", "lake")), {k: len(v) for k, v in others.items()}
        assert hooks.receiver.delivered == []
        assert metric(port, "relationd_hook_backlog", "partner") > 0
        text = http_get(port, "/metrics")[1]
        for reason in ("body_mismatch", "timeout"):
            wait_until(lambda: re.search(r'relationd_hook_failures_total\{hook="partner",reason="%s"\} [1-9]'
                                         % reason, http_get(port, "/metrics")[1]),
                       timeout=30, message=lambda: text)
        hooks.receiver.set("ok")
        h.feed_kafka(events[150:])
        hooks.wait_all()
        h.wait_done()
        hooks.check_details()
        # the batch refused by its answer went again, under the same webhook-id
        refused = [r for r in hooks.receiver.requests if r.status == 200][:1]
        again = [r for r in hooks.receiver.requests if r.headers["webhook-id"] == refused[0].headers["webhook-id"]]
        assert len(again) >= 2, [r.headers["webhook-id"] for r in hooks.receiver.requests[:6]]
        wait_until(lambda: metric(port, "relationd_hook_backlog", "partner") == 0, timeout=30)
        assert d.stop() == 0, d.log_tail()
    finally:
        hooks.close()


def test_kill_9_with_a_hook_down_loses_nothing(harness, daemons):
    h = harness(kafka=True)
    hooks = Hooks(h, free_port(), free_port())
    try:
        hooks.receiver.set("down")
        events = make_stream(600, seed=92, clusters=list(range(8)), tag="k9")
        d = h.daemon(daemons).start()
        h.feed_kafka(events[:400])
        h.wait_progress(0.5)
        d.kill()                        # kill -9 mid-stream, the partner hook down
        h.feed_kafka(events[400:])
        hooks.receiver.set("ok")
        d.start()
        hooks.wait_all()
        h.wait_done()
        hooks.check_details()
        assert d.stop() == 0, d.log_tail()
    finally:
        hooks.close()


def test_max_backlog_pauses_consumption_and_readyz_names_the_hook(harness, daemons):
    h = harness(kafka=True)
    port = free_port()
    hooks = Hooks(h, port, free_port(), max_backlog=20)
    try:
        hooks.receiver.set("down")
        events = make_stream(500, seed=93, clusters=list(range(8)), tag="mb")
        d = h.daemon(daemons).start()
        h.feed_kafka(events[:150])

        def paused():
            status, body = http_get(port, "/readyz")
            return status == 503 and "hook partner: backlog" in body and "max_backlog 20" in body
        wait_until(paused, timeout=60, message=d.log_tail)
        # consumption stays paused: what comes next is not applied
        applied = h.applied()
        h.feed_kafka(events[150:])
        time.sleep(1.5)
        assert h.applied() == applied
        assert h.lag() > 0
        assert metric(port, "relationd_hook_backlog", "partner") >= 20
        hooks.receiver.set("ok")
        hooks.wait_all()
        h.wait_done()
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout=30)
        assert d.stop() == 0, d.log_tail()
    finally:
        hooks.close()


def hooks_list(config_path):
    out = run_relationctl(["-c", config_path, "hooks", "list"], timeout=60)
    assert out.returncode == 0, out.stderr
    return {line.split()[0]: line for line in out.stdout.splitlines()[1:]}


def test_410_disables_until_enabled_and_relationctl_hooks(harness, daemons):
    """A 410 disables the http hook (logged at error level), the others go
    on; the flag outlives a restart; relationctl hooks list shows the
    backlog and the state, hooks enable lets the backlog drain; hooks test
    sends one is_test trigger through a hook directly (exit 0 when taken,
    1 when not)."""
    h = harness(kafka=True)
    port = free_port()
    hooks = Hooks(h, port, free_port())
    try:
        hooks.receiver.set("410")
        events = make_stream(300, seed=94, clusters=list(range(8)), tag="gone")
        d = h.daemon(daemons).start()
        h.feed_kafka(events[:150])
        d.wait_log('level=error component="hook partner" msg="the destination answered 410 Gone')
        listed = wait_until(lambda: (lambda l: "disabled: 410 Gone" in l["partner"] and l)(
            hooks_list(d.config_path)), timeout=30)
        assert int(listed["partner"].split()[2]) > 0          # its backlog is kept
        assert "enabled" in listed["mailing"] and "amqp" in listed["mailing"]
        assert listed["lake"].split()[1] == "kafka"
        hooks.receiver.set("ok")
        assert d.stop() == 0, d.log_tail()
        d.start()                       # still disabled after a restart
        h.feed_kafka(events[150:])
        h.wait_done()                   # the other hooks flow
        time.sleep(1.5)
        assert hooks.receiver.delivered == []
        assert "disabled" in hooks_list(d.config_path)["partner"]
        out = run_relationctl(["-c", d.config_path, "hooks", "enable", "partner"])
        assert out.returncode == 0 and "enabled (it was disabled: 410 Gone" in out.stdout, out
        hooks.wait_all()
        wait_until(lambda: hooks_list(d.config_path)["partner"].split()[2] == "0", timeout=30)
        assert "never" not in hooks_list(d.config_path)["partner"]
        # hooks test: delivered directly, marked is_test
        before = len(hooks.receiver.delivered)
        out = run_relationctl(["-c", d.config_path, "hooks", "test", "partner"])
        assert out.returncode == 0, out
        assert re.match(r"hook partner: test trigger \S+ delivered in \d+ ms, HTTP 200$",
                        out.stdout.strip()), out.stdout
        sent = hooks.receiver.delivered[before:]
        assert len(sent) == 1 and sent[0]["is_test"] is True
        assert sent[0]["event_data"]["relation"] == "loyal"
        assert sent[0]["event_data"]["direction"] == "direct"
        out = run_relationctl(["-c", d.config_path, "hooks", "test", "crm"])
        assert out.returncode == 0, out
        got = hooks.crm.drain()[-1]
        assert json.loads(got[2])["is_test"] is True
        out = run_relationctl(["-c", d.config_path, "hooks", "test", "lake"])
        assert out.returncode == 0, out
        tid = out.stdout.split()[4]     # hook lake: test trigger <id> delivered ...

        def test_record():
            for key, v, headers, _ in hooks.lake.poll(0.2):
                if headers.get("message_id") == tid:
                    return key, json.loads(v), headers
        key, body, headers = wait_until(test_record, timeout=30)
        assert body["is_test"] is True and body["event_data"]["id"] == tid
        assert key == b"managers:relationctl-test"
        assert headers["event_type"] == body["event_type"] == "relation_direct_attach"
        hooks.receiver.set("down")
        out = run_relationctl(["-c", d.config_path, "hooks", "test", "partner"])
        assert out.returncode == 1 and "not delivered" in out.stdout and "connect" in out.stdout
        out = run_relationctl(["-c", d.config_path, "hooks", "test", "nosuch"])
        assert out.returncode == 2 and 'no hook named "nosuch"' in out.stderr
        assert d.stop() == 0, d.log_tail()
    finally:
        hooks.close()
