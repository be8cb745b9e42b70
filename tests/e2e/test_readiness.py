"""Readiness and the connection gauges follow reality, both ways, without
traffic: an idle daemon sees Redis go and come back; /readyz waits for the
Kafka group's assignment; Redis refusing redis.url (a wrong password, a
database out of range, a user without a permission) is a configuration
error, said once per slow retry and named in /readyz, and recovered from
once fixed; a daemon with only the read API follows Redis too."""

import json
import re
import signal
import subprocess
import time

import pytest
import redis

import test_apply as A
from brokers import http_get as get, Daemon, Harness, KafkaMock, make_stream, wait_until
from conftest import KAFKA_PARTITIONS, RELATIONCTL
from redis_server import Server, free_port


def readyz(port):
    status, body = get(port, "/readyz")
    return status, (json.loads(body) if body else None)


def redis_up(port):
    """relationd_connection_up{component="redis"} (None: not listed)."""
    status, text = get(port, "/metrics")
    assert status == 200
    m = re.search(r'^relationd_connection_up\{component="redis"\} (\d)$', text, re.M)
    return int(m.group(1)) if m else None


def with_http(config, port):
    return dict(config, http={"listen": "127.0.0.1:%d" % port})


def test_idle_daemon_follows_redis_both_ways(harness, daemons):
    """No event in flight: Redis killed, then started again on its port."""
    server = Server(persistent=True)
    server.start()
    port = free_port()
    try:
        h = harness(kafka=True, amqp=True, redis_server=server)
        d = h.daemon(daemons, config=with_http(h.config, port)).start()
        events = make_stream(400, seed=71, clusters=list(range(4)), tag="idle")
        h.feed_kafka([e for e in events if e.cluster < 2])
        h.feed_amqp([e for e in events if e.cluster >= 2])
        h.wait_done()
        wait_until(lambda: readyz(port)[0] == 200, timeout=30)
        assert redis_up(port) == 1

        server.kill()   # gone: its port refuses connections
        wait_until(lambda: readyz(port)[0] == 503 and redis_up(port) == 0, timeout=8,
                   message=d.log_tail)
        down = readyz(port)[1]["down"]
        for source in ("kafka source", "amqp source"):
            wait_until(lambda: {"source": source, "component": "redis"} in readyz(port)[1]["down"],
                       timeout=8, message=lambda: str(down))

        server.start()  # the same port, the same data
        wait_until(lambda: readyz(port) == (200, {"down": []}) and redis_up(port) == 1,
                   timeout=8, message=d.log_tail)
        more = make_stream(400, seed=72, clusters=list(range(4, 8)), tag="idle2")
        h.feed_kafka([e for e in more if e.cluster < 6])
        h.feed_amqp([e for e in more if e.cluster >= 6])
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def test_idle_daemon_on_a_cluster_sees_every_primary(harness, daemons):
    """A primary other than redis.url's node killed while nothing flows: the
    idle check PINGs every primary."""
    from redis_cluster import Cluster
    c = Cluster(primaries=3, persistent=True)
    port = free_port()
    try:
        c.start()
        h = harness(amqp=True, redis_server=c)
        d = h.daemon(daemons, config=with_http(h.config, port)).start()
        h.feed_amqp(make_stream(300, seed=75, clusters=[0, 1, 2], tag="cidle"))
        h.wait_done()
        wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=30)
        victim = c.nodes[1]
        victim.kill()
        wait_until(lambda: readyz(port)[0] == 503 and redis_up(port) == 0, timeout=8,
                   message=d.log_tail)
        victim.start()
        c.wait_ok()
        wait_until(lambda: readyz(port) == (200, {"down": []}) and redis_up(port) == 1,
                   timeout=15, message=d.log_tail)
        h.feed_amqp(make_stream(300, seed=76, clusters=[3, 4, 5], tag="cidle2"))
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        c.stop()


def test_ready_only_once_partitions_are_assigned(tmp_path, names, rabbit, rdb, redis_proc,
                                                  daemons):
    """The group's join is slow (the broker answers JoinGroup 3 s late):
    /readyz, polled from the start, is never 200 before the assignment."""
    mock = KafkaMock(["events-%s:%d" % (names.uid, KAFKA_PARTITIONS), "dlq-%s" % names.uid],
                     join_delay_ms=3000)
    mock.start()
    mock.partitions = KAFKA_PARTITIONS
    h = None
    try:
        topics = ("events-%s" % names.uid, "dlq-%s" % names.uid)
        h = Harness(tmp_path, names, rabbit, rdb, redis_proc.url, kafka=mock, topics=topics)
        port = free_port()
        d = h.daemon(daemons, config=with_http(h.config, port)).start(ready_timeout=0)
        seen = []   # (status, body, the log then has the assignment)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = readyz(port)
            if status is not None:
                seen.append((status, body, "assigned" in d.current_log()))
            if status == 200:
                break
            time.sleep(0.02)
        assert seen and seen[-1][0] == 200, d.log_tail()
        early = [s for s in seen if s[0] == 200 and not s[2]]
        assert not early, "ready before the assignment:\n" + d.log_tail()
        waiting = [s[1] for s in seen if s[0] == 503]
        assert waiting, "never seen waiting: the join was not slow"
        assert {"source": "kafka source", "for": "partition assignment"} in \
            waiting[0]["waiting"], waiting[0]
        # ready: an event produced now is consumed
        events = make_stream(200, seed=73, clusters=[0, 1], tag="join")
        h.feed_kafka(events)
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        if h is not None:
            h.close()
        mock.stop()


def test_a_lost_assignment_is_not_ready(harness, daemons):
    """The brokers gone past the session timeout: the assignment is lost,
    and /readyz waits for a new one, which the group gives once they are
    back; events then applied exactly."""
    h = harness(kafka=True)
    port = free_port()
    d = h.daemon(daemons, config=with_http(h.config, port)).start()
    wait_until(lambda: readyz(port)[0] == 200, timeout=30, message=d.log_tail)
    h.kafka.proc.send_signal(signal.SIGUSR1)
    awaited = {"source": "kafka source", "for": "partition assignment"}
    wait_until(lambda: awaited in (readyz(port)[1] or {}).get("waiting", []), timeout=30,
               message=d.log_tail)
    assert "lost" in d.current_log(), d.log_tail()
    h.kafka.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=60, message=d.log_tail)
    h.feed_kafka(make_stream(300, seed=77, clusters=[0, 1], tag="lost"))
    h.wait_done()
    h.check()
    assert d.stop() == 0, d.log_tail()


# ---- Redis refusing redis.url ----------------------------------------------

SECRET = "s3cr3t-Pa55"


@pytest.fixture()
def acl_server():
    """A redis-server of the test's own whose default user needs a password,
    so that a user of the test's is the only way in."""
    server = Server(password="admin-" + SECRET)
    server.start()
    admin = redis.Redis(port=server.port, password=server.password, decode_responses=True)
    yield server, admin
    admin.close()
    server.stop()


def refusals(d):
    return [line for line in d.current_log().splitlines()
            if "level=error" in line and "refused the configuration" in line]


def assert_refused(d, port, code):
    """The configuration error: logged at error level naming redis.url, never
    the password; /readyz 503 naming it; retried slowly."""
    wait_until(lambda: refusals(d), timeout=15, message=d.log_tail)
    line = refusals(d)[0]
    assert "redis.url" in line and code in line, line
    assert SECRET not in d.log(), d.log_tail()
    status, body = readyz(port)
    assert status == 503, body
    errors = [c.get("error", "") for c in body["down"] if c["component"] == "redis"]
    assert errors and all("redis.url" in e and code in e for e in errors), body
    assert SECRET not in json.dumps(body)
    assert redis_up(port) == 0
    n = len(refusals(d))
    time.sleep(4)
    # one per source thread and retry (every 30 s), no spinning
    assert len(refusals(d)) - n <= 2, "\n".join(refusals(d))


def relationctl_stats(h, d):
    """relationctl stats with the daemon's configuration: it exits."""
    return subprocess.run([RELATIONCTL, "-c", d.config_path, "stats", h.relations[0]["short"],
                           "direct", "p1"], capture_output=True, text=True, timeout=30)


def test_wrong_password_is_a_configuration_error_then_recovered(acl_server, harness, daemons):
    server, admin = acl_server
    admin.execute_command("ACL", "SETUSER", "relationd", "off", ">" + SECRET, "~*", "&*",
                          "+@all")
    url = "redis://relationd:%s@127.0.0.1:%d/0" % (SECRET, server.port)
    port = free_port()
    h = harness(kafka=True, amqp=True, redis_server=server, redis_url=url,
                redis_client=admin)
    d = h.daemon(daemons, config=with_http(h.config, port)).start()
    assert_refused(d, port, "WRONGPASS")
    # relationctl says the same and exits
    out = relationctl_stats(h, d)
    assert out.returncode != 0 and "redis.url" in out.stderr and "WRONGPASS" in out.stderr, \
        out.stderr
    assert SECRET not in out.stderr + out.stdout

    admin.execute_command("ACL", "SETUSER", "relationd", "on")
    wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=45, message=d.log_tail)
    events = make_stream(300, seed=74, clusters=[0, 1, 2], tag="acl")
    h.feed_kafka([e for e in events if e.cluster < 2])
    h.feed_amqp([e for e in events if e.cluster >= 2])
    h.wait_done()
    h.check()
    assert d.stop() == 0, d.log_tail()


def test_user_without_a_permission_is_a_configuration_error(acl_server, harness, daemons):
    server, admin = acl_server
    admin.execute_command("ACL", "SETUSER", "limited", "on", ">" + SECRET, "~*", "&*", "+@all",
                          "-info")
    url = "redis://limited:%s@127.0.0.1:%d/0" % (SECRET, server.port)
    port = free_port()
    h = harness(kafka=False, amqp=True, redis_server=server, redis_url=url, redis_client=admin)
    d = h.daemon(daemons, config=with_http(h.config, port)).start()
    assert_refused(d, port, "NOPERM")
    assert d.stop() == 0, d.log_tail()


def test_database_out_of_range_is_a_configuration_error(harness, daemons, redis_proc):
    port = free_port()
    url = "redis://127.0.0.1:%d/99" % redis_proc.port
    h = harness(kafka=False, amqp=True, redis_url=url)
    d = h.daemon(daemons, config=with_http(h.config, port)).start()
    assert_refused(d, port, "DB index is out of range")
    out = relationctl_stats(h, d)
    assert out.returncode != 0 and "redis.url" in out.stderr, out.stderr
    assert d.stop() == 0, d.log_tail()


# ---- a daemon with only the read API ----------------------------------------

def reads_only(tmp_path, redis_port, db=0):
    port = free_port()
    cfg = {"redis": {"url": "redis://127.0.0.1:%d/%d" % (redis_port, db), "timeout_ms": 1000},
           "http": {"listen": "127.0.0.1:%d" % port},
           "relations": [A.REL_SALES]}
    return Daemon(tmp_path, cfg), port


def test_reads_only_daemon_follows_redis(tmp_path):
    server = Server()   # not started yet
    d, port = reads_only(tmp_path, server.port)
    try:
        d.start(ready_timeout=30)
        wait_until(lambda: readyz(port)[0] == 503, timeout=10, message=d.log_tail)
        assert 'msg="ready:' not in d.current_log(), d.log_tail()   # nor READY=1 to systemd
        server.start()
        wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=10, message=d.log_tail)
        assert 'msg="ready:' in d.current_log(), d.log_tail()
        assert redis_up(port) == 1
        server.kill()
        wait_until(lambda: readyz(port)[0] == 503 and redis_up(port) == 0, timeout=10,
                   message=d.log_tail)
        server.start()
        wait_until(lambda: readyz(port) == (200, {"down": []}), timeout=10, message=d.log_tail)
        assert d.stop() == 0, d.log_tail()
    finally:
        if d.running():
            d.kill()
        server.stop()


def test_reads_only_daemon_refused(tmp_path, redis_proc):
    d, port = reads_only(tmp_path, redis_proc.port, db=99)
    try:
        d.start(ready_timeout=30)
        assert_refused(d, port, "DB index is out of range")
        assert d.stop() == 0, d.log_tail()
    finally:
        if d.running():
            d.kill()
