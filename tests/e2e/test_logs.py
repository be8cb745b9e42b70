"""The log: one logfmt record per line (level, component, msg, then context
keys), the level set by engine.log_level and changed by SIGHUP, and no
secret in it, whatever happens (here: bad messages, Redis killed and back,
a reload to debug)."""

import json
import os
import re
import time


from redis_server import Server

from brokers import Event, make_stream, produce, publish

PLAIN = r'[^ "=\\\x00-\x20\x7f]+'
QUOTED = r'"(?:[^"\\\x00-\x1f]|\\["\\n]|\\x[0-9a-f]{2})*"'
VALUE = "(?:%s|%s)" % (PLAIN, QUOTED)
RECORD = re.compile(r"^level=(error|warn|info|debug) component=%s msg=%s( [a-z_]+=%s)*$"
                    % (VALUE, VALUE, VALUE))


def records(log):
    """The daemon's lines (the test's own start markers and sanitizer
    reports, which fail the test elsewhere, aside)."""
    return [line for line in log.splitlines() if line and not line.startswith("==== start")]


def test_every_line_is_logfmt_and_no_secret_shows(harness, daemons, rdb, redis_proc,
                                                   monkeypatch):
    password = "pw-that-must-not-show-7f3a"
    monkeypatch.setenv("RELATIOND_TEST_REDIS_PW", password)
    server = Server(persistent=True, password=password)
    server.start()
    try:
        h = harness(kafka=False, amqp=True, redis_server=server,
                    redis_url="redis://:${RELATIOND_TEST_REDIS_PW}@127.0.0.1:%d/0" % server.port)
        d = h.daemon(daemons).start()
        events = make_stream(300, seed=91, clusters=list(range(3)), tag="log")
        h.feed_amqp(events[:150])
        # refused messages: not JSON, a quote and a newline in the reason
        publish(h.rabbit, h.names.queue, [b'{"id": "x\\"1", "op": "nope"}', b"not json\n"])
        h.wait_done()
        server.kill()
        h.feed_amqp(events[150:])
        d.wait_log("redis down since")
        server.start()
        h.wait_done()
        cfg = dict(h.config, engine=dict(h.config["engine"], log_level="debug"))
        d.write_config(cfg)
        d.sighup()
        d.wait_log("reloaded")
        h.feed_amqp([Event(0, {"id": "after-reload", "op": "attach", "relation": "loyal",
                               "profile_a": "la", "profile_b": "lb"})])
        h.wait_done()
        time.sleep(0.5)
        assert d.stop() == 0, d.log_tail()
        lines = records(d.current_log())
        bad = [line for line in lines if not RECORD.match(line)]
        assert not bad, bad[:5]
        levels = {RECORD.match(line).group(1) for line in lines}
        assert {"info", "warn", "error", "debug"} <= levels, levels
        refusals = [line for line in lines if 'msg="message refused"' in line]
        assert len(refusals) == 2, refusals
        for r in refusals:  # where it came from: the queue and the delivery tag
            assert re.search(r' queue=%s delivery_tag=\d+ (event="x\\"1" )?reason='
                             % re.escape(h.names.queue), r), r
        # the id, quoted and escaped, when the message had one
        assert sum(' event="x\\"1" ' in r for r in refusals) == 1, refusals
        assert password not in d.current_log()
        h.check()
    finally:
        server.stop()


def test_the_level_is_set_by_the_configuration(harness, daemons):
    """engine.log_level warn: no info line (not even "ready")."""
    h = harness(kafka=False, amqp=True)
    cfg = dict(h.config, engine=dict(h.config["engine"], log_level="warn"))
    d = h.daemon(daemons, config=cfg).start(ready_timeout=0)
    h.feed_amqp(make_stream(50, seed=92, clusters=[0], tag="lvl"))
    h.wait_done()
    assert d.stop() == 0, d.log_tail()
    lines = records(d.current_log())
    assert all(RECORD.match(line) and not line.startswith("level=info") for line in lines), lines


def test_under_the_journal_each_line_has_its_priority(harness, daemons, monkeypatch):
    """stderr is the journal (JOURNAL_STREAM names its device and inode): each
    record starts with the priority prefix the journal reads (<3> error, <4>
    warn, <6> info, <7> debug), the logfmt record after it unchanged."""
    h = harness(kafka=False, amqp=True)
    d = h.daemon(daemons)
    open(d.log_path, "ab").close()
    st = os.stat(d.log_path)
    monkeypatch.setenv("JOURNAL_STREAM", "%d:%d" % (st.st_dev, st.st_ino))
    d.start()
    publish(h.rabbit, h.names.queue, [b"not json"])  # a warning
    h.feed_amqp(make_stream(20, seed=93, clusters=[0], tag="jrn"))
    h.wait_done()
    assert d.stop() == 0, d.log_tail()
    lines = records(d.current_log())
    prefix = {"error": "<3>", "warn": "<4>", "info": "<6>", "debug": "<7>"}
    levels = set()
    for line in lines:
        m = RECORD.match(line[3:])
        assert m and line[:3] == prefix[m.group(1)], line
        levels.add(m.group(1))
    assert {"info", "warn"} <= levels, lines


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")
PAIR = re.compile(r"([a-z_]+)=(%s)" % VALUE)


def logfmt(line):
    """[(key, value)] of a record, quotes and escapes undone."""
    pairs = []
    for k, v in PAIR.findall(line):
        if v.startswith('"'):
            v = re.sub(r'\\x([0-9a-f]{2})|\\(.)',
                       lambda m: chr(int(m.group(1), 16)) if m.group(1)
                       else ("\n" if m.group(2) == "n" else m.group(2)), v[1:-1])
        pairs.append((k, v))
    return pairs


def readme_refusal_examples():
    """The log records of the README's "Logs" that show a refusal, as written
    (a record in backquotes, wrapped over lines)."""
    with open(README) as f:
        text = f.read()
    found = [re.sub(r"\s+", " ", m) for m in re.findall(r"`(level=[^`]*)`", text)]
    return [logfmt(r) for r in found
            if dict(logfmt(r)).get("msg") in ("message refused", "event refused")]


def test_the_readme_log_examples_are_what_refusals_log(harness, daemons):
    """Each refusal the README shows as an example (Kafka: a weight of the
    wrong type, refused by the event parser; RabbitMQ: a strengthen the
    engine refuses) is sent to the daemon, and its record has the example's
    keys in the same order and the same level, component, msg, event and
    reason; the id shows whenever the message had a valid one, and not when
    the message had none."""
    examples = readme_refusal_examples()
    assert {(dict(e)["component"], dict(e)["msg"]) for e in examples} == {
        ("kafka source", "message refused"), ("amqp source", "event refused")}, examples
    h = harness(kafka=True, amqp=True)
    d = h.daemon(daemons).start()
    sent = {}
    for ex in examples:
        e = dict(ex)
        field = re.match(r"weights\.([a-z_]+): ", e["reason"]).group(1)
        head = {"id": e["event"], "relation": "loyal", "profile_a": "readme-a-" + e["event"],
                "profile_b": "readme-b"}
        if e["reason"].endswith("must be a number"):
            bad = [dict(head, op="attach", weights={field: "12.5"})]
        else:  # result of strengthen out of range
            bad = [dict(head, id=e["event"] + "-before", op="attach",
                        weights={field: 1000000000}),
                   dict(head, op="strengthen", weights={field: 1000000000})]
        raw = [json.dumps(b).encode() for b in bad]
        if e["component"] == "kafka source":
            produce(h.producer, h.topics[0], [(r, int(e["partition"]) % 4) for r in raw])
        else:
            publish(h.rabbit, h.names.queue, raw)
        sent[e["event"]] = e
    # without an id that can be read: no event key
    publish(h.rabbit, h.names.queue, [b"not json", b'{"id": 17, "op": "attach"}'])
    for ex in examples:
        d.wait_log(dict(ex)["reason"])
    d.wait_log("id: must be a string of 1..128 bytes")
    assert d.stop() == 0, d.log_tail()
    lines = [logfmt(line) for line in records(d.current_log())]
    for ex in examples:
        e = dict(ex)
        got = [rec for rec in lines if dict(rec).get("event") == e["event"]]
        assert len(got) == 1, (ex, got)
        g = dict(got[0])
        assert [k for k, _ in got[0]] == [k for k, _ in ex], (ex, got[0])
        for k in ("level", "component", "msg", "event", "reason"):
            assert g[k] == e[k], (k, ex, got[0])
        if "topic" in g:
            assert g["topic"] == h.topics[0] and g["partition"] == e["partition"], got[0]
            assert g["offset"].isdigit(), got[0]
        else:
            assert g["queue"] == h.names.queue and g["delivery_tag"].isdigit(), got[0]
    idless = [rec for rec in lines if dict(rec).get("msg") == "message refused"
              and dict(rec).get("queue") == h.names.queue]
    assert len(idless) == 2 and all("event" not in dict(rec) for rec in idless), idless
