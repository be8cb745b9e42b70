"""relationd end to end: events from Kafka and RabbitMQ become statistics in
Redis and triggers on the hooks exchange, exactly as `relationctl apply` of
the same events computes them; bad messages go to the dead-letter
destinations with their reason; SIGTERM drains; SIGHUP reloads the relations.

Expected results come from the oracle (brokers.Oracle): the same valid
events applied once, in order, by relationctl into another key prefix."""

import re
import json
import os
import signal
import time

import redis

from redis_server import Server

from brokers import (RELATIONS, Event, KafkaReader, committed_lag, make_stream, produce,
                     profiles_of, publish, queue_depth, wait_until)


def test_kafka_events_give_the_statistics_and_triggers(harness, daemons, engine):
    h = harness(kafka=True, redis_engine=engine)   # both engines; the oracle: the function
    events = make_stream(800, seed=11, clusters=list(range(8)), tag="k")
    h.feed_kafka(events[:300])
    d = h.daemon(daemons).start()
    h.feed_kafka(events[300:])
    h.wait_done()
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert committed_lag(h.kafka.bootstrap, h.names.group, h.topics[0]) == 0
    assert len(h.oracle.triggers) > 1000


def test_amqp_events_give_the_statistics_and_triggers(harness, daemons, engine):
    h = harness(amqp=True, redis_engine=engine)   # both engines; the oracle: the function
    events = make_stream(800, seed=12, clusters=list(range(8)), tag="q")
    h.feed_amqp(events[:300])
    d = h.daemon(daemons).start()
    h.feed_amqp(events[300:])
    h.wait_done()
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert queue_depth(h.rabbit, h.names.queue) == 0
    assert h.dlx.drain() == 0 and h.dlx.messages == []


def test_both_sources_at_once(harness, daemons, engine):
    h = harness(kafka=True, amqp=True, redis_engine=engine)   # both engines; the oracle: the function
    events = make_stream(1200, seed=13, clusters=list(range(10)), tag="kq")
    kafka_events = [e for e in events if e.cluster < 6]
    amqp_events = [e for e in events if e.cluster >= 6]
    d = h.daemon(daemons).start()
    h.feed_kafka(kafka_events)
    h.feed_amqp(amqp_events)
    h.wait_done()
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert h.lag() == 0


# ---- bad messages ----------------------------------------------------------

def bad_messages(tag):
    """(raw message, words its reason must contain, edge it must not touch)."""
    big = {"id": "%s-big" % tag, "op": "attach", "relation": "loyal", "profile_a": "xbig",
           "profile_b": "ybig", "weights": {"purchases": 1}, "pad": "p" * 70000}
    return [
        (b"this is not json {", ["not JSON"]),
        (json.dumps({"id": "%s-u" % tag, "op": "attach", "relation": "nope",
                     "profile_a": "xu", "profile_b": "yu"}).encode(), ["nope"]),
        (json.dumps({"id": "%s-w" % tag, "op": "attach", "relation": "loyal",
                     "profile_a": "xw", "profile_b": "yw",
                     "weights": {"purchases": "five"}}).encode(), ["weights.purchases"]),
        (json.dumps({"op": "attach", "relation": "loyal", "profile_a": "xi",
                     "profile_b": "yi", "weights": {"purchases": 1}}).encode(),
         ["id", "required"]),
        (json.dumps(big).encode(), ["65536"]),
        (json.dumps({"id": "%s-p" % tag, "op": "strengthen", "relation": "loyal",
                     "profile_a": "xp", "profile_b": "yp",
                     "weights": {"purchases": 1, "zzz": 2}}).encode(), ["weights.zzz"]),
    ]


def assert_untouched(h):
    """None of the bad messages' edges exist (nothing applied in part)."""
    for a in ("xbig", "xu", "xw", "xi", "xp"):
        keys = list(h.redis.scan_iter(match="%s*%s*" % (h.names.prefix, a)))
        assert keys == [], keys


def test_kafka_bad_messages_go_to_the_dead_letter_topic(harness, daemons):
    h = harness(kafka=True)
    events = make_stream(300, seed=21, clusters=[0, 1, 2, 3], tag="kb")
    bad = bad_messages("kb")
    offsets = {}

    def report(err, msg):
        if msg.key() == b"bad" and err is None:
            offsets[msg.value()] = (msg.partition(), msg.offset())

    # valid events before, between and after the bad ones, on every partition
    stream = list(events[:100])
    for i, (raw, _) in enumerate(bad):
        stream.append((raw, i % 4))
        stream.extend(events[100 + 30 * i:130 + 30 * i])
    stream.extend(events[100 + 30 * len(bad):])
    for e in stream:
        if isinstance(e, Event):
            h.producer.produce(h.topics[0], value=e.raw, key=e.key, partition=e.cluster % 4)
        else:
            h.producer.produce(h.topics[0], value=e[0], key=b"bad", partition=e[1],
                               on_delivery=report)
    assert h.producer.flush(30) == 0
    h.oracle.apply(events)
    h.sides |= profiles_of(events)

    dlq = KafkaReader(h.kafka.bootstrap, h.topics[1], h.names.group + "-dlq")
    d = h.daemon(daemons).start()
    try:
        h.wait_done()
        wait_until(lambda: len(dlq.poll(0.2)) >= len(bad), timeout=60,
                   message=lambda: "dead letters: %r\n%s" % (
                       [(m[0], m[2]) for m in dlq.messages], d.log_tail()))
        dlq.poll(1.0)
        got = {m[1]: m for m in dlq.messages}
        assert len(dlq.messages) == len(bad), [(m[1][:80], m[2]) for m in dlq.messages]
        for raw, words in bad:
            assert raw in got, "not dead-lettered: %r" % raw[:100]
            key, value, headers, _ = got[raw]
            assert key == b"bad"
            reason = headers.get("x-relationd-reason") or ""
            for w in words:
                assert w in reason, (raw[:100], headers)
            part, off = offsets[raw]
            assert headers.get("x-relationd-topic") == h.topics[0], headers
            assert headers.get("x-relationd-partition") == str(part), headers
            assert headers.get("x-relationd-offset") == str(off), headers
            # one warning naming where it came from, in separate keys
            where = r'msg="(message|event) refused" topic=%s partition=%d offset=%d ' % (
                re.escape(h.topics[0]), part, off)
            assert len(re.findall(where, d.current_log())) == 1, (where, d.log_tail())
    finally:
        dlq.close()
    h.check()
    assert_untouched(h)
    assert d.stop() == 0, d.log_tail()
    # the bad messages' offsets were committed too
    assert committed_lag(h.kafka.bootstrap, h.names.group, h.topics[0]) == 0


def test_kafka_dead_letter_too_large_for_its_topic(harness, daemons):
    """A bad message larger than the dead-letter producer may send: it goes
    without its value (headers alone, its size in x-relationd-value-bytes);
    consumption does not stall on it."""
    h = harness(kafka=True)
    h.config["kafka"]["properties"]["message.max.bytes"] = "20000"
    events = make_stream(60, seed=23, clusters=[0, 1], tag="kt")
    big = json.dumps({"id": "kt-big", "op": "attach", "relation": "loyal", "profile_a": "xbig",
                      "profile_b": "ybig", "pad": "p" * 70000}).encode()
    for e in events[:30]:
        h.producer.produce(h.topics[0], value=e.raw, key=e.key, partition=e.cluster % 4)
    h.producer.produce(h.topics[0], value=big, key=b"big", partition=0)
    for e in events[30:]:
        h.producer.produce(h.topics[0], value=e.raw, key=e.key, partition=e.cluster % 4)
    assert h.producer.flush(30) == 0
    h.oracle.apply(events)
    h.sides |= profiles_of(events)

    dlq = KafkaReader(h.kafka.bootstrap, h.topics[1], h.names.group + "-dlq")
    d = h.daemon(daemons).start()
    try:
        h.wait_done()
        wait_until(lambda: dlq.poll(0.2), timeout=60, message=d.log_tail)
        dlq.poll(1.0)
        assert len(dlq.messages) == 1, dlq.messages
        key, value, headers, _ = dlq.messages[0]
        assert key == b"big"
        assert not value
        assert headers.get("x-relationd-value-bytes") == str(len(big)), headers
        assert "65536" in headers.get("x-relationd-reason", ""), headers
        assert headers.get("x-relationd-topic") == h.topics[0], headers
    finally:
        dlq.close()
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert committed_lag(h.kafka.bootstrap, h.names.group, h.topics[0]) == 0


def test_amqp_bad_messages_go_to_the_dead_letter_exchange(harness, daemons):
    h = harness(amqp=True)
    events = make_stream(300, seed=22, clusters=[0, 1, 2, 3], tag="qb")
    bad = bad_messages("qb")
    stream = list(events[:100])
    for i, (raw, _) in enumerate(bad):
        stream.append(raw)
        stream.extend(events[100 + 30 * i:130 + 30 * i])
    stream.extend(events[100 + 30 * len(bad):])
    publish(h.rabbit, h.names.queue, stream)
    h.oracle.apply(events)
    h.sides |= profiles_of(events)

    d = h.daemon(daemons).start()
    h.wait_done()
    wait_until(lambda: h.dlx.drain(0.1) >= 0 and len(h.dlx.messages) >= len(bad), timeout=60,
               message=lambda: "dead letters: %d\n%s" % (len(h.dlx.messages), d.log_tail()))
    h.dlx.drain(0.5)
    assert len(h.dlx.messages) == len(bad), [(b[:80], p.headers) for _, p, b in h.dlx.messages]
    got = {body: (rk, props) for rk, props, body in h.dlx.messages}
    for raw, words in bad:
        kept = raw[:65536]    # of a larger message only its first 65536 bytes go
        assert kept in got, "not dead-lettered: %r" % raw[:100]
        rk, props = got[kept]
        assert rk == h.names.queue            # the original routing key
        assert props.delivery_mode == 2
        headers = props.headers or {}
        reason = headers.get("x-relationd-reason")
        reason = reason.decode() if isinstance(reason, bytes) else (reason or "")
        for w in words:
            assert w in reason, (raw[:100], headers)
        queue = headers.get("x-relationd-queue")
        queue = queue.decode() if isinstance(queue, bytes) else queue
        assert queue == h.names.queue, headers
    h.check()
    assert_untouched(h)
    assert d.stop() == 0, d.log_tail()
    assert queue_depth(h.rabbit, h.names.queue) == 0


# ---- SIGTERM and SIGHUP -----------------------------------------------------

def acked_prefix(h, kafka_events, amqp_events):
    """The events the sources consider done: per partition the offsets below
    the committed one, the messages gone from the queue (FIFO)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": h.kafka.bootstrap, "group.id": h.names.group,
                  "enable.auto.commit": False})
    try:
        committed = {tp.partition: max(tp.offset, 0) for tp in
                     c.committed([TopicPartition(h.topics[0], p) for p in range(4)], timeout=10)}
    finally:
        c.close()
    done, rest = [], []
    seen = {p: 0 for p in range(4)}
    for e in kafka_events:
        p = e.cluster % 4
        (done if seen[p] < committed[p] else rest).append(e)
        seen[p] += 1
    depth = queue_depth(h.rabbit, h.names.queue)
    n = len(amqp_events) - depth
    return done + amqp_events[:n], rest + amqp_events[n:], committed, depth


def test_sigterm_drains_acks_and_a_restart_reprocesses_nothing(harness, daemons):
    """SIGTERM mid-stream: exit 0; what is in Redis is exactly what was
    acked (Kafka commits, AMQP acks), every trigger of it was published; a
    new daemon then finishes the rest."""
    h = harness(kafka=True, amqp=True)
    events = make_stream(4000, seed=31, clusters=list(range(10)), tag="t")
    # no duplicates here: the acked prefix must be counted in messages
    uniq, ids = [], set()
    for e in events:
        if e.body["id"] not in ids:
            ids.add(e.body["id"])
            uniq.append(e)
    kafka_events = [e for e in uniq if e.cluster < 6]
    amqp_events = [e for e in uniq if e.cluster >= 6]
    produce(h.producer, h.topics[0], kafka_events)
    publish(h.rabbit, h.names.queue, amqp_events[:len(amqp_events) // 3])
    d = h.daemon(daemons, config=dict(h.config, engine=dict(h.config["engine"],
                                                          batch_size=32))).start()
    d.wait_log("assigned 4 partitions")
    publish(h.rabbit, h.names.queue, amqp_events[len(amqp_events) // 3:])

    # as soon as Redis holds a first statistic of a Kafka event
    wait_until(lambda: h.redis.keys(h.names.prefix + "{*:c[0-5][ab]*"), timeout=60,
               interval=0.01, message=h.status)
    rc = d.stop(signal.SIGTERM, timeout=60)
    assert rc == 0, d.log_tail()

    done, rest, committed, depth = acked_prefix(h, kafka_events, amqp_events)
    h.oracle.apply(done)
    h.sides |= profiles_of(done)
    # Redis holds exactly the acked events' statistics, their triggers were all published
    assert not h.state_diff(), "Redis after SIGTERM is not the acked events' state:\n%s" % (
        "\n".join(h.state_diff()))
    # confirmed before the acks: all in the hooks queue, read as they come
    def all_published():
        h.drain_hooks()
        return not set(h.oracle.triggers) - h.hook_ids
    wait_until(all_published, timeout=20, interval=0.1,
               message=lambda: "%d triggers of acked events not published before exit\n%s" % (
                   len(set(h.oracle.triggers) - h.hook_ids), d.log_tail()))
    print("acked at SIGTERM: %d of %d (kafka offsets %s, queue depth %d)" % (
        len(done), len(uniq), committed, depth))

    h.oracle.apply(rest)
    h.sides |= profiles_of(rest)
    d.start()
    h.wait_done()
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert h.lag() == 0


def test_second_sigterm_exits_at_once(harness, daemons, rdb, redis_proc):
    """With Redis frozen (SIGSTOP) the drain cannot finish: a second SIGTERM
    ends the daemon at once, with a non-zero status; a new daemon then ends
    with exact results."""
    frozen = Server(persistent=True)
    frozen.start()
    try:
        client = redis.Redis(port=frozen.port)
        h = harness(amqp=True, redis_client=client,
                    redis_url="redis://127.0.0.1:%d/0" % frozen.port,
                    oracle_client=rdb, oracle_url=redis_proc.url,
                    engine={"shutdown_timeout_ms": 60000})
        events = make_stream(1000, seed=32, clusters=list(range(6)), tag="t2")
        d = h.daemon(daemons).start()
        h.feed_amqp(events[:200])
        h.wait_done()
        # Redis frozen: the next events reach the daemon and stay in flight
        os.kill(frozen.proc.pid, signal.SIGSTOP)
        try:
            h.feed_amqp(events[200:])
            wait_until(lambda: queue_depth(h.rabbit, h.names.queue) < 800, timeout=30,
                       message=d.log_tail)
            time.sleep(0.5)
            d.proc.send_signal(signal.SIGTERM)
            d.wait_log("stopping", timeout=10)
            time.sleep(1.0)
            assert d.proc.poll() is None, \
                "exited (%s) within 1 s of SIGTERM with events in flight, Redis frozen " \
                "and shutdown_timeout_ms 60000\n%s" % (d.proc.returncode, d.log_tail())
            t0 = time.monotonic()
            d.proc.send_signal(signal.SIGTERM)
            rc = d.proc.wait(timeout=20)
            d.stopped = True
            took = time.monotonic() - t0
        finally:
            os.kill(frozen.proc.pid, signal.SIGCONT)
        assert rc != 0, d.log_tail()
        assert took < 5, "the second SIGTERM took %.1f s" % took
        d.start()
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        frozen.stop()


def test_sighup_reload(harness, daemons):
    """A broken file keeps the running relations (events of them still apply,
    the broken file's new relation does not exist); a good file adding a
    relation makes its events apply."""
    extra = {"short": "extra", "database_a": "xa", "database_b": "xb",
             "properties": [{"short": "n", "type": "int", "save_amount": True}],
             "thresholds": [{"direction": "reverse", "stat": "count", "value": 2}]}
    loyal = [r for r in RELATIONS if r["short"] == "loyal"]
    h = harness(amqp=True, relations=loyal + [extra])   # the oracle knows both
    d = h.daemon(daemons, config=dict(h.config, relations=loyal)).start()

    def loyal_batch(seed, tag):
        return [e for e in make_stream(400, seed=seed, clusters=[seed % 7], tag=tag)
                if e.body["relation"] == "loyal"][:100]

    def extra_batch(tag, n=20):
        return [Event(9, {"id": "%s-%d" % (tag, i), "op": "strengthen", "relation": "extra",
                          "profile_a": "xa%d" % (i % 3), "profile_b": "xb%d" % (i % 4),
                          "weights": {"n": i}}) for i in range(n)]

    h.feed_amqp(loyal_batch(1, "h1"))
    h.wait_done()

    broken = dict(h.config, relations=loyal + [dict(extra, properties=[
        {"short": "n", "type": "int", "save_top": {"order": "desc", "limit": 21}}])])
    d.write_config(broken)
    d.sighup()
    d.wait_log("reload refused")
    assert "relations[1].properties[0].save_top.limit" in d.current_log()
    # the old relations still apply; the broken file's relation does not exist
    h.feed_amqp(loyal_batch(2, "h2"))
    refused = extra_batch("x0", 3)
    publish(h.rabbit, h.names.queue, refused)
    h.wait_done()
    wait_until(lambda: h.dlx.drain() >= 0 and len(h.dlx.messages) >= 3, timeout=30,
               message=d.log_tail)
    for _, props, body in h.dlx.messages:
        reason = (props.headers or {}).get("x-relationd-reason")
        reason = reason.decode() if isinstance(reason, bytes) else reason
        assert "extra" in reason, reason
    assert {b for _, _, b in h.dlx.messages} == {e.raw for e in refused}

    d.write_config(dict(h.config, relations=loyal + [extra]))
    d.sighup()
    d.wait_log("reloaded")
    h.feed_amqp(loyal_batch(3, "h3") + extra_batch("x1"))
    h.wait_done()
    h.check()
    assert any(t["event_data"]["relation"] == "extra" for t in h.oracle.triggers.values())
    assert d.proc.poll() is None
    assert d.stop() == 0, d.log_tail()
