"""The RabbitMQ connections under the broker's own doings: the source's queue
deleted under the daemon (RabbitMQ cancels the consumer), a disk alarm that
blocks the hooks publisher, and messages far over the 65536-byte limit (up
to RabbitMQ's 128 MiB maximum) that must not be held in memory. Each ends
with the statistics of applying every event exactly once and every trigger
delivered (compared with relationctl's results of the same events)."""

import json
import re
import time

import pika

from redis_server import free_port

from brokers import declare_source, make_stream, wait_until
from test_http import get, scrape, value

CONFIRM_TIMEOUT_S = 30   # daemon/publisher.c: no confirm within 30 s means a dead connection


def metric(port, name, **labels):
    """The value of one sample of /metrics (0 when it is not there)."""
    return value(scrape(port), name, **labels)


def consumers(rabbit, queue):
    """The queue's consumer count (None: no such queue)."""
    conn = rabbit.connection()
    try:
        return conn.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        if conn.is_open:
            conn.close()


def with_http(h, **amqp):
    port = free_port()
    cfg = dict(h.config, http={"listen": "127.0.0.1:%d" % port})
    if "amqp" in cfg:
        cfg["amqp"] = dict(cfg["amqp"], **amqp)
    return port, cfg


# ---- the queue deleted under the daemon -------------------------------------

def test_queue_deleted_under_the_daemon_is_consumed_again(harness, daemons, rabbit):
    """amqp.declare false: the queue is deleted while the daemon consumes it.
    RabbitMQ cancels the consumer; the daemon says so, /readyz turns 503 and
    relationd_connection_up{component="amqp"} 0 while the queue is missing;
    once it is declared again the daemon consumes it (one consumer), /readyz
    is 200 again, and the events published then are applied exactly."""
    h = harness(amqp=True)
    port, cfg = with_http(h, declare=False)
    events = make_stream(400, seed=131, clusters=[0, 1, 2], tag="qd")
    d = h.daemon(daemons, config=cfg).start()
    h.feed_amqp(events[:200])
    h.wait_done()
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=30)

    rabbit.ctl("delete_queue", h.names.queue)
    wait_until(lambda: "RabbitMQ cancelled the consumer of queue %s" % h.names.queue
               in d.current_log(), timeout=30, message=d.log_tail)
    status, body = get(port, "/readyz")
    assert status == 503, body
    assert {"source": "amqp source", "component": "rabbitmq"} in json.loads(body)["down"], body
    assert metric(port, "relationd_connection_up", component="amqp") == 0

    conn = rabbit.connection()
    declare_source(conn.channel(), h.names)
    conn.close()
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=30, message=d.log_tail)
    assert metric(port, "relationd_connection_up", component="amqp") == 1
    wait_until(lambda: consumers(rabbit, h.names.queue) == 1, timeout=30)
    h.feed_amqp(events[200:])
    h.wait_done()
    h.check()
    assert metric(port, "relationd_events_total", source="amqp", result="applied") + \
        metric(port, "relationd_events_total", source="amqp", result="duplicate") + \
        metric(port, "relationd_events_total", source="amqp", result="stale") == len(events)
    assert d.stop() == 0, d.log_tail()


def test_queue_deleted_under_the_daemon_is_declared_again(harness, daemons, rabbit):
    """amqp.declare true: after the queue is deleted the daemon declares it
    again itself (with its dead-letter exchange) and consumes it."""
    h = harness(amqp=True)
    events = make_stream(300, seed=132, clusters=[0, 1], tag="qr")
    d = h.daemon(daemons).start()
    h.feed_amqp(events[:100])
    h.wait_done()
    rabbit.ctl("delete_queue", h.names.queue)
    wait_until(lambda: "RabbitMQ cancelled the consumer of queue %s" % h.names.queue
               in d.current_log(), timeout=30, message=d.log_tail)
    wait_until(lambda: consumers(rabbit, h.names.queue) == 1, timeout=30, message=d.log_tail)
    # every connection of the daemon (rabbitmq-c's) asked for heartbeats every
    # 30 s and advertised both capabilities
    rows = [r for r in rabbit.ctl("list_connections", "timeout", "client_properties",
                                  "--no-table-headers").splitlines() if "rabbitmq-c" in r]
    assert len(rows) >= 2, rows   # the source, the hooks (the dead letters: from the first one)
    for r in rows:
        assert r.split()[0] == "30", r
        assert '{"consumer_cancel_notify",true}' in r, r
        assert '{"connection.blocked",true}' in r, r
    h.feed_amqp(events[100:] + [b"not json"])
    h.wait_done()
    wait_until(lambda: h.dlx.drain(0.1) >= 0 and len(h.dlx.messages) == 1, timeout=30)
    h.check()
    assert d.stop() == 0, d.log_tail()


# ---- a resource alarm --------------------------------------------------------

def test_disk_alarm_blocks_the_hook_visibly_application_goes_on_and_delivers_once(
        harness, daemons, rabbit):
    """A disk alarm while triggers are published: RabbitMQ blocks the hook's
    connection. The daemon logs it once with the broker's reason, /readyz is
    503 naming the hooks and the alarm, relationd_amqp_blocked{hooks} is 1;
    the events are applied all the same (the statistics reach the oracle's,
    the source is drained) while their triggers wait in the hook's backlog
    (relationd_hook_backlog{hook="default"} > 0), held longer than the 30 s
    that otherwise mean a dead connection: nothing is published again; once
    the alarm clears, /readyz is 200, the gauges 0, and every trigger arrives
    exactly once."""
    h = harness(kafka=True)
    port, cfg = with_http(h)
    d = h.daemon(daemons, config=cfg).start()
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=30)
    listed = scrape(port)
    assert listed.get(("relationd_amqp_blocked", frozenset({("component", "hooks")}))) == 0
    events = make_stream(300, seed=133, clusters=[0, 1, 2, 3], tag="al")
    with rabbit.disk_alarm():
        h.feed_kafka(events)
        wait_until(lambda: "RabbitMQ blocked the connection (low on disk" in d.current_log(),
                   timeout=60, message=d.log_tail)
        status, body = get(port, "/readyz")
        assert status == 503, body
        assert {"component": "hooks", "blocked": "low on disk"} in json.loads(body)["down"], body
        assert metric(port, "relationd_amqp_blocked", component="hooks") == 1
        # application goes on: every event applied, its triggers in the backlog
        wait_until(lambda: h.lag() == 0 and not h.state_diff(), timeout=60, message=h.status)
        wait_until(lambda: metric(port, "relationd_hook_backlog", hook="default") > 0,
                   timeout=10)
        held = h.drain_hooks()
        assert held < len(set(h.oracle.triggers)), "triggers not held: %d" % held
        # past the confirm timeout: the connection is kept, nothing published again
        time.sleep(CONFIRM_TIMEOUT_S + 5)
        assert "no confirm within" not in d.current_log(), d.log_tail()
        assert get(port, "/readyz")[0] == 503
    wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=60, message=d.log_tail)
    assert metric(port, "relationd_amqp_blocked", component="hooks") == 0
    h.wait_done()
    wait_until(lambda: metric(port, "relationd_outbox_entries") == 0 and
               metric(port, "relationd_hook_backlog", hook="default") == 0, timeout=30)
    h.check()
    ids = [props.message_id for _, props, _ in h.hooks.messages]
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    assert not doubled, "triggers delivered twice: %s" % doubled[:10]
    log = d.current_log()
    assert log.count("RabbitMQ blocked the connection") == 1, d.log_tail()
    assert d.stop() == 0, d.log_tail()


# ---- messages over the limit -------------------------------------------------

def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M).group(1))


def test_huge_messages_are_dead_lettered_without_being_held(harness, daemons):
    """Three messages of 100 MiB between valid events (RabbitMQ takes up to
    128 MiB): each is dead-lettered with its reason and size and only its
    first 65536 bytes; the valid events are applied; the daemon's peak RSS
    stays far below one such message."""
    big = 100 * 1024 * 1024
    h = harness(amqp=True)
    events = make_stream(150, seed=134, clusters=[0, 1], tag="hg")
    huge = [bytes([ord("a") + i]) * big for i in range(3)]
    stream = events[:50] + [huge[0]] + events[50:100] + huge[1:] + events[100:]
    h.feed_amqp(stream)
    del stream
    d = h.daemon(daemons).start()
    h.wait_done(timeout=180)
    wait_until(lambda: h.dlx.drain(0.2) >= 0 and len(h.dlx.messages) >= 3, timeout=120,
               message=d.log_tail)
    peak = vm_hwm_kib(d.proc.pid)
    assert peak < 100 * 1024, "peak RSS %d KiB" % peak
    h.dlx.drain(0.5)
    assert len(h.dlx.messages) == 3
    for (rk, props, body), want in zip(h.dlx.messages, huge):
        assert body == want[:65536]
        assert rk == h.names.queue
        headers = props.headers or {}
        assert headers.get("x-relationd-body-bytes") == big, headers
        reason = headers.get("x-relationd-reason")
        reason = reason.decode() if isinstance(reason, bytes) else reason
        assert reason == "message of %d bytes over the 65536-byte limit" % big, headers
    assert len(re.findall(r'msg="message refused" queue=%s delivery_tag=\d+ reason="message of '
                          r'%d bytes over the 65536-byte limit"' % (h.names.queue, big),
                          d.current_log())) == 3, d.log_tail()
    h.check()
    assert d.stop() == 0, d.log_tail()
