"""The HTTP endpoint (http.listen): /metrics in the Prometheus text format,
whose counters equal the traffic sent through both sources; /healthz; and
/readyz, 503 naming Redis while Redis is down, 200 once it is back."""

import json
import re


from redis_server import Server, free_port

from brokers import (http_get as get, Event, hook_backlog, make_stream, outbox_entries, profiles_of,
                     wait_until)

LINE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def scrape(port):
    """{(name, frozenset(labels)): value} of /metrics; every line checked."""
    status, text = get(port, "/metrics")
    assert status == 200
    out = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = LINE.match(line)
        assert m, line
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())), 0.0)


def summary(out):
    m = re.search(r"applied (\d+), duplicate (\d+), stale (\d+), invalid (\d+)", out.stderr)
    return [int(x) for x in m.groups()]


def test_metrics_equal_the_traffic_and_readyz_follows_redis(harness, daemons, rdb, redis_proc):
    server = Server(persistent=True)
    server.start()
    port = free_port()
    try:
        h = harness(kafka=True, amqp=True, redis_server=server)
        cfg = dict(h.config, http={"listen": "127.0.0.1:%d" % port})
        cfg["kafka"] = dict(cfg["kafka"], properties=dict(cfg["kafka"]["properties"],
                                                          **{"statistics.interval.ms": "300"}))
        d = h.daemon(daemons, config=cfg).start()
        assert get(port, "/healthz") == (200, '{"status":"ok"}\n')
        wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=30)  # partitions assigned
        assert get(port, "/nope")[0] == 404

        want = {"kafka": [0, 0, 0, 0], "amqp": [0, 0, 0, 0]}
        bad = [b"not json", b'{"id": "b1", "op": "attach"}']

        def feed(source, events):
            getattr(h, "feed_" + source)(events, oracle=False)
            valid = [e for e in events if isinstance(e, Event)]
            counts = summary(h.oracle.apply(valid))
            h.sides |= profiles_of(valid)
            for i in range(3):
                want[source][i] += counts[i]
            want[source][3] += len(events) - len(valid)

        events = make_stream(1200, seed=95, clusters=list(range(8)), tag="met")
        kafka_events = [e for e in events if e.cluster < 4]
        amqp_events = [e for e in events if e.cluster >= 4]
        feed("kafka", kafka_events[:300] + [(b, 0) for b in bad])
        feed("amqp", amqp_events[:300] + bad)
        feed("kafka", kafka_events[300:] + kafka_events[:50])   # 50 delivered again
        feed("amqp", amqp_events[300:] + amqp_events[:50])
        h.wait_done()
        h.hooks.drain(0.5)

        metrics = scrape(port)
        for source in ("kafka", "amqp"):
            got = [value(metrics, "relationd_events_total", source=source, result=r)
                   for r in ("applied", "duplicate", "stale", "invalid")]
            assert got == want[source], (source, got, want[source])
            assert value(metrics, "relationd_dead_letters_total", source=source) == len(bad)
        triggers = sum(v for (name, _), v in metrics.items() if name == "relationd_triggers_published_total")
        assert triggers == len(h.hooks.messages) == len(h.oracle.triggers)
        batches = value(metrics, "relationd_batch_duration_seconds_count")
        assert batches > 0
        assert value(metrics, "relationd_batch_duration_seconds_bucket", le="+Inf") == batches
        import subprocess
        from brokers import RELATIOND
        version = subprocess.run([RELATIOND, "--version"], capture_output=True,
                                 text=True).stdout.split()[1]
        assert value(metrics, "relationd_build_info", version=version) == 1
        for conn in ("redis", "hooks", "kafka", "amqp"):
            assert value(metrics, "relationd_connection_up", component=conn) == 1, conn
        assert ("relationd_outbox_entries", frozenset()) in metrics

        def lag():
            m = scrape(port)
            parts = {dict(labels)["partition"]: v for (name, labels), v in m.items()
                     if name == "relationd_kafka_consumer_lag"
                     and dict(labels)["topic"] == h.topics[0]}
            return sum(parts.values()) if len(parts) == h.kafka.partitions else None
        wait_until(lambda: lag() == 0, timeout=30)

        # Redis down: /readyz says so (once a batch meets it), then recovers;
        # the Kafka lag keeps counting what arrives meanwhile (delivered again)
        server.kill()
        h.feed_amqp(amqp_events[:5], oracle=False)
        h.feed_kafka(kafka_events[:40], oracle=False)
        wait_until(lambda: get(port, "/readyz")[0] == 503, timeout=60)
        wait_until(lambda: lag() == 40, timeout=30)
        status, body = get(port, "/readyz")
        assert {"source": "amqp source", "component": "redis"} in json.loads(body)["down"]
        metrics = scrape(port)
        assert value(metrics, "relationd_up", source="amqp source", component="redis") == 0
        assert value(metrics, "relationd_connection_up", component="redis") == 0
        assert value(metrics, "relationd_connection_up", component="amqp") == 1
        server.start()
        wait_until(lambda: get(port, "/readyz")[0] == 200, timeout=60)
        assert json.loads(get(port, "/readyz")[1]) == {"down": []}
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def outbox_in_redis(h):
    return outbox_entries(h.redis, h.names.prefix)


def test_backlog_gauge_counts_the_triggers_waiting_for_a_blocked_hook(harness, daemons, rabbit):
    """While RabbitMQ blocks publishers (a disk alarm), the events are applied
    all the same and their triggers wait in the hook's backlog:
    relationd_hook_backlog equals the stream's length in Redis, the outbox
    is empty (relationd_outbox_entries 0, as in Redis), and the connections
    are up; once the alarm clears, every trigger is delivered and the backlog
    gauge is back to 0. (Before the per-hook backlogs the triggers waited in
    the outbox and application stopped.)"""
    port = free_port()
    h = harness(kafka=True)
    cfg = dict(h.config, http={"listen": "127.0.0.1:%d" % port})
    events = make_stream(200, seed=96, clusters=[0, 1, 2, 3], tag="obx")
    stream = h.names.prefix + "{hook:default}"
    with rabbit.disk_alarm():
        h.feed_kafka(events)
        h.sides |= profiles_of(events)
        d = h.daemon(daemons, config=cfg).start()
        # every event applied while the hook is blocked
        wait_until(lambda: h.lag() == 0 and not h.state_diff(), timeout=60, message=h.status)

        def settled():
            m = scrape(port)
            return (value(m, "relationd_hook_backlog", hook="default") == hook_backlog(h.redis, stream) > 0
                    and value(m, "relationd_outbox_entries") == 0 == outbox_in_redis(h))
        wait_until(settled, timeout=30, interval=0.1,
                   message=lambda: "backlog gauge %r, Redis %d; outbox gauge %r, Redis %d" % (
                       value(scrape(port), "relationd_hook_backlog", hook="default"),
                       hook_backlog(h.redis, stream), value(scrape(port), "relationd_outbox_entries"),
                       outbox_in_redis(h)))
        metrics = scrape(port)
        for conn in ("redis", "kafka"):
            assert value(metrics, "relationd_connection_up", component=conn) == 1, metrics
    h.wait_done()
    wait_until(lambda: value(scrape(port), "relationd_hook_backlog", hook="default") == 0,
               timeout=30)
    assert hook_backlog(h.redis, stream) == 0
    h.check()
    assert d.stop() == 0, d.log_tail()
