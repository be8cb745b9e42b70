"""The log: one logfmt record per line (level, component, msg, then context
keys), the level set by engine.log_level and changed by SIGHUP, and no
secret in it, whatever happens (here: bad messages, Redis killed and back,
a reload to debug)."""

import re
import time


from redis_server import Server

from brokers import Event, make_stream, publish

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
            assert re.search(r' queue=%s delivery_tag=\d+ reason=' % re.escape(h.names.queue), r), r
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
