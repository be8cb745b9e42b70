"""The layout key `<prefix>layout` (README "Redis key layout", "Redis
persistence"): written by the daemon on a fresh keyspace, nothing said; a
keyspace wiped under a running daemon (a Redis restarted without
persistence, FLUSHALL) is noticed: one error in the log, the metric
relationd_redis_keyspace_lost_total, /readyz 503 naming it, consumption
paused (the events fed meanwhile neither applied nor lost) until
`relationctl layout ack` or a restart; readers refuse a layout version they
do not know. (tests/e2e/test_layout.py is about the source tree.)"""

import json
import re
import subprocess
import time

import pytest

from brokers import (Oracle, check_hooks, committed_lag, http_get as get, make_stream,
                     wait_until)
from conftest import RELATIONCTL
from redis_server import Server, free_port
from test_http_read import reads  # noqa: F401 (a fixture)

LOST = "Redis lost its data"


def readyz(port):
    status, body = get(port, "/readyz")
    return status, (json.loads(body) if body else None)


def lost_total(port):
    status, text = get(port, "/metrics")
    assert status == 200
    m = re.search(r"^relationd_redis_keyspace_lost_total (\d+)$", text, re.M)
    assert m, "relationd_redis_keyspace_lost_total is not exported"
    return int(m.group(1))


def data_down(port):
    """The /readyz entry naming the lost keyspace, or None."""
    status, body = readyz(port)
    for entry in (body or {}).get("down", []):
        if entry.get("component") == "redis data":
            return status, entry
    return None


def ctl(config_path, *args):
    return subprocess.run([RELATIONCTL, "-c", config_path] + list(args), capture_output=True,
                          text=True, timeout=60)


def layout_value(client, prefix):
    v = client.get(prefix + "layout")
    return v.decode() if isinstance(v, bytes) else v


def start(harness, daemons, server, amqp=False):
    port = free_port()
    h = harness(kafka=True, amqp=amqp, redis_server=server)
    config = dict(h.config, http={"listen": "127.0.0.1:%d" % port})
    d = h.daemon(daemons, config=config).start()
    return h, d, port


def test_a_fresh_keyspace_gets_the_key_and_nothing_is_said(harness, daemons):
    server = Server()
    server.start()
    try:
        h, d, port = start(harness, daemons, server)
        h.feed_kafka(make_stream(120, seed=11, clusters=[0, 1], tag="fresh"))
        h.wait_done()
        wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=15, message=d.log_tail)
        value = layout_value(h.redis, h.names.prefix)
        assert re.fullmatch(r"2 [0-9a-f]{16}", value or ""), value
        assert lost_total(port) == 0
        assert LOST not in d.log() and "level=error" not in d.log(), d.log_tail()
        shown = ctl(d.config_path, "layout", "show")
        assert shown.returncode == 0, shown.stderr
        assert value.split()[1] in shown.stdout and "version 2" in shown.stdout, shown.stdout
        h.check()
        # a restart keeps the keyspace's id
        assert d.stop() == 0, d.log_tail()
        d.start()
        wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=15, message=d.log_tail)
        assert layout_value(h.redis, h.names.prefix) == value
    finally:
        server.stop()


def test_redis_restarted_without_persistence_pauses_until_ack(harness, daemons, tmp_path,
                                                              names, redis_proc):
    server = Server(persistent=False)
    server.start()
    try:
        h, d, port = start(harness, daemons, server, amqp=True)     # two sources, one log line
        before = make_stream(200, seed=21, clusters=[0, 1, 2, 3], tag="before")
        h.feed_kafka([e for e in before if e.cluster < 2])
        h.feed_amqp([e for e in before if e.cluster >= 2])
        h.wait_done()
        wait_until(lambda: readyz(port)[0] == 200, timeout=15, message=d.log_tail)
        first = layout_value(h.redis, h.names.prefix)
        assert first

        server.kill()
        server.start()      # the same port, an empty keyspace
        got = wait_until(lambda: data_down(port), timeout=20, message=d.log_tail)
        status, entry = got
        assert status == 503
        assert LOST in entry["error"] and h.names.prefix + "layout" in entry["error"], entry
        # both sources that consume say so (the HTTP writes' source too, once
        # it has looked: it has no write to take here)
        wait_until(lambda: {"kafka source", "amqp source"} <= {
                       e["source"] for e in readyz(port)[1]["down"]
                       if e.get("component") == "redis data"} <= {
                       "kafka source", "amqp source", "http source"},
                   timeout=10, message=d.log_tail)
        assert lost_total(port) == 1
        log = d.current_log()
        assert log.count(LOST) == 1, log[-3000:]
        line = [x for x in log.splitlines() if LOST in x][0]
        assert "level=error" in line and "restart without persistence" in line, line

        # events fed meanwhile: neither applied nor acknowledged
        h.drain_hooks()
        seen = len(h.hooks.messages)
        h.oracle = Oracle(tmp_path, redis_proc.url, "p%s:" % names.uid, h.relations,
                          name="oracle-after")
        after = make_stream(150, seed=22, clusters=[4, 5, 6, 7], tag="after")
        h.feed_kafka([e for e in after if e.cluster < 6])
        h.feed_amqp([e for e in after if e.cluster >= 6])
        wait_until(lambda: h.lag() > 0, timeout=10)
        time.sleep(3)
        # (every connection writes the relations' property slots, PREFIX schema)
        written = [k for k in h.redis.scan_iter(match=h.names.prefix + "*")
                   if k not in (h.names.prefix + "schema", (h.names.prefix + "schema").encode())]
        assert written == [], "applied onto the wiped keyspace while paused"
        assert h.lag() > 0, "acknowledged while paused"
        assert data_down(port) is not None and lost_total(port) == 1
        assert d.current_log().count(LOST) == 1

        ack = ctl(d.config_path, "layout", "ack")
        assert ack.returncode == 0, ack.stderr
        new = layout_value(h.redis, h.names.prefix)
        assert new and new != first and new.split()[1] in ack.stdout, (new, ack.stdout)
        wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=15, message=d.log_tail)
        h.wait_done()       # the held events applied: the state equals the new oracle's
        h.hooks.drain(0.3)
        problems = check_hooks(h.hooks.messages[seen:], h.oracle.triggers)
        assert not problems, problems[:5]
        assert lost_total(port) == 1
        assert layout_value(h.redis, h.names.prefix) == new, "the daemon rewrote the key"
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def test_flushall_then_a_restart_acknowledges_and_nothing_is_dropped(harness, daemons):
    server = Server()
    server.start()
    try:
        h, d, port = start(harness, daemons, server)
        h.feed_kafka(make_stream(100, seed=31, clusters=[0], tag="one"))
        h.wait_done()
        first = layout_value(h.redis, h.names.prefix)
        h.redis.flushall()                  # the same connection: the idle check sees it
        wait_until(lambda: data_down(port), timeout=10, message=d.log_tail)
        assert lost_total(port) == 1
        # events fed while paused, then the daemon stopped: left unacknowledged
        more = make_stream(60, seed=32, clusters=[1], tag="two")
        h.feed_kafka(more, oracle=False)
        wait_until(lambda: h.lag() > 0, timeout=10)
        time.sleep(1)       # taken into a batch, held
        assert d.stop() == 1, d.log_tail()      # work left undone
        assert "stopping while consumption is paused (Redis lost its data)" in d.current_log()
        assert list(h.redis.scan_iter(match=h.names.prefix + "{*")) == []
        assert committed_lag(h.kafka.bootstrap, h.names.group, h.topics[0],
                             h.kafka.partitions) > 0
        # a restart acknowledges: the key written again, ready, the events applied
        d.start()
        wait_until(lambda: h.lag() == 0, timeout=60, message=d.log_tail)
        wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=15, message=d.log_tail)
        again = layout_value(h.redis, h.names.prefix)
        assert again and again != first
        assert LOST not in d.current_log()
        sides = {k for k in h.redis.scan_iter(match=h.names.prefix + "{*:side")}
        assert sides and all(":c1" in (k.decode() if isinstance(k, bytes) else k)
                             for k in sides), sides
    finally:
        server.stop()


def test_a_reader_refuses_a_layout_version_it_does_not_know(ctl_fixture_config):
    cfg, client = ctl_fixture_config
    client.set("rel:layout", "9 0123456789abcdef")
    for args in (("stats", "sales", "direct", "42"), ("layout", "show"), ("layout", "ack")):
        out = ctl(cfg, *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert "rel:layout" in out.stderr and "version 9" in out.stderr \
            and "versions 1 to 2" in out.stderr, (args, out.stderr)
        assert out.stdout == ""
    assert client.get("rel:layout") in (b"9 0123456789abcdef", "9 0123456789abcdef")
    # the versions it knows are read; a reader writes nothing
    for known in ("1 0123456789abcdef", "2 0123456789abcdef"):
        client.set("rel:layout", known)
        out = ctl(cfg, "stats", "sales", "direct", "42")
        assert out.returncode == 0, out.stderr
    client.delete("rel:layout")
    out = ctl(cfg, "stats", "sales", "direct", "42")
    assert out.returncode == 0, out.stderr
    assert client.get("rel:layout") is None
    # a value that is no layout: refused, and not overwritten by an ack
    client.set("rel:layout", "garbage")
    for args in (("stats", "sales", "direct", "42"), ("layout", "ack")):
        out = ctl(cfg, *args)
        assert out.returncode == 1 and 'rel:layout holds "garbage"' in out.stderr, out.stderr
    # version 1 without an id: refused by readers, repaired by an ack
    client.set("rel:layout", "1")
    out = ctl(cfg, "stats", "sales", "direct", "42")
    assert out.returncode == 1 and "without a keyspace id" in out.stderr, out.stderr
    out = ctl(cfg, "layout", "ack")
    assert out.returncode == 0, out.stderr
    value = layout_value(client, "rel:")
    assert re.fullmatch(r"1 [0-9a-f]{16}", value) and value.split()[1] in out.stdout, value
    assert ctl(cfg, "stats", "sales", "direct", "42").returncode == 0


@pytest.fixture()
def ctl_fixture_config(ctl, rdb):
    rel = {"short": "sales", "name": "Sales", "database_a": "managers",
           "database_b": "customers",
           "properties": [{"short": "qty", "type": "int", "save_amount": True}]}
    return ctl.config([rel]), rdb


def test_the_read_api_refuses_a_layout_version_it_does_not_know(reads):
    import redis
    from test_http_read import get as get_json
    client = redis.Redis(port=reads.server.port)
    client.set("rel:layout", "9 0123456789abcdef")
    reads.start()
    status, body = get_json(reads.port, "/v1/stats/sales/direct/42")
    assert status == 503, body
    assert "rel:layout" in body["error"] and "version 9" in body["error"] \
        and "versions 1 to 2" in body["error"], body
    client.close()
