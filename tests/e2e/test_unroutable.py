"""Triggers nobody can receive: the hooks exchange routes them to no queue
(the subscriber's binding is gone). Published with the mandatory flag,
RabbitMQ returns each of them before confirming it; relationd counts them in
relationd_triggers_unroutable_total{relation,kind}, warns at most once a
minute, and goes on (the triggers count as delivered to the exchange, the
outbox is cleared). `relationctl apply --publish` says how many on standard
error."""

import collections
import json
import os
import re

import pytest

from redis_server import free_port

from brokers import RELATIONS, make_stream, run_relationctl, wait_until, write_json
from test_http import get, scrape, value

KINDS = ("attach", "change", "detach", "threshold")
WARNING = re.compile(r'exchange (\S+): (\d+) triggers unroutable in the last minute '
                     r'\(e\.g\. routing key (relation\.[a-z0-9_]+\.[a-z]+\.[a-z]+)\): '
                     r'RabbitMQ routed them to no queue and dropped them; bind the '
                     r"subscriber's queue to the exchange for the triggers it wants")


def by_relation_kind(bodies):
    """{(relation, kind): n} of trigger bodies."""
    return collections.Counter((b["event_data"]["relation"], b["event_data"]["kind"])
                               for b in bodies)


def unroutable(port):
    """{(relation, kind): n} of relationd_triggers_unroutable_total, every
    configured relation and kind (0 when listed at 0; None when missing)."""
    m = scrape(port)
    out = {}
    for rel in (r["short"] for r in RELATIONS):
        for kind in KINDS:
            key = ("relationd_triggers_unroutable_total",
                   frozenset({("relation", rel), ("kind", kind)}))
            out[(rel, kind)] = m.get(key)
    return out


def settled(h, port):
    """Every event fed is applied and acknowledged, the statistics equal the
    oracle's, and no outbox entry waits."""
    h.check_alive()
    return (h.lag() == 0 and not h.state_diff()
            and value(scrape(port), "relationd_outbox_entries") == 0)


@pytest.mark.parametrize("unbind", ["queue unbound", "exchange deleted and declared again"])
def test_unroutable_triggers_are_counted_warned_once_and_consumption_goes_on(
        harness, daemons, rabbit, unbind):
    """The test's hook queue is unbound under a running daemon (or the hooks
    exchange deleted and declared again: its bindings are gone), events come:
    every trigger of theirs is routed nowhere. The counter counts exactly
    those, per relation and kind; the log has one warning (not one per
    trigger) naming the exchange, an example routing key and what to do; the
    daemon goes on consuming (statistics exact, the outbox cleared). Bound
    again: the next events' triggers arrive, and the counter stays. At the
    stop, the warnings have counted every unroutable trigger."""
    h = harness(amqp=True)
    port = free_port()
    cfg = dict(h.config, http={"listen": "127.0.0.1:%d" % port})
    events = make_stream(600, seed=171, clusters=[0, 1, 2, 3], tag="ur")
    first, second, third = events[:150], events[150:450], events[450:]
    d = h.daemon(daemons, config=cfg).start()

    # bound: everything arrives, nothing counted (every series listed at 0)
    h.feed_amqp(first)
    h.wait_done()
    assert set(unroutable(port).values()) == {0}, unroutable(port)

    # unbound: the triggers of the next events are routed to no queue
    conn = rabbit.connection()
    ch = conn.channel()
    if unbind == "queue unbound":
        ch.queue_unbind(h.names.hooks_queue, h.names.hooks_exchange, routing_key="relation.#")
    else:
        ch.exchange_delete(h.names.hooks_exchange)
        ch.exchange_declare(h.names.hooks_exchange, "topic", durable=True)
    before = set(h.oracle.triggers)
    h.feed_amqp(second)
    lost_ids = set(h.oracle.triggers) - before
    lost = [h.oracle.triggers[t] for t in lost_ids]
    want = by_relation_kind(lost)
    assert len(lost) > 100 and len(want) >= 6, want
    wait_until(lambda: settled(h, port), timeout=120, message=h.status)
    got = unroutable(port)
    assert got == {k: want.get(k, 0) for k in got}, (got, want)
    assert h.drain_hooks() == len(before), "a trigger arrived on the unbound queue"
    warnings = WARNING.findall(d.current_log())
    assert len(warnings) == 1, d.log_tail()
    exchange, count, example = warnings[0]
    assert exchange == h.names.hooks_exchange
    assert 0 < int(count) <= len(lost)
    assert tuple(example.split(".")[i] for i in (1, 3)) in want, example
    # counted as published too: the broker confirmed them
    published = sum(v for (name, _), v in scrape(port).items()
                    if name == "relationd_triggers_published_total")
    assert published == len(h.oracle.triggers), published

    # bound again: triggers arrive, the counter stays
    ch.queue_bind(h.names.hooks_queue, h.names.hooks_exchange, routing_key="relation.#")
    conn.close()
    before = set(h.oracle.triggers)
    h.feed_amqp(third)
    fresh = set(h.oracle.triggers) - before
    assert fresh

    def arrived():
        h.drain_hooks()
        return fresh <= h.hook_ids and settled(h, port)
    wait_until(arrived, timeout=120, message=h.status)
    assert unroutable(port) == got
    status, body = get(port, "/readyz")
    assert status == 200, body
    # the statistics of every event applied once; what arrived is right
    for tid in lost_ids:
        del h.oracle.triggers[tid]      # the unroutable ones: never to arrive
    h.check()
    assert d.stop() == 0, d.log_tail()
    # the warnings (the last one at the stop) count every unroutable trigger
    counts = [int(c) for _, c, _ in WARNING.findall(d.current_log())]
    assert sum(counts) == len(lost), (counts, len(lost))
    assert len(counts) <= 2, counts


def test_apply_publish_says_how_many_triggers_were_unroutable(rabbit, names, redis_proc, rdb,
                                                              tmp_path):
    """relationctl apply --publish to a hooks exchange where only a queue for
    relation.loyal.# is bound: standard error says how many triggers were
    unroutable (exactly the refs ones), after `triggers published`; the loyal
    ones arrive; exit status 0. With every relation bound, no such line."""
    events = make_stream(200, seed=172, clusters=[0, 1], tag="ua")
    text = "".join(e.raw.decode() + "\n" for e in events)
    oracle = write_json(os.path.join(str(tmp_path), "oracle.json"), {
        "redis": {"url": redis_proc.url, "key_prefix": names.oracle_prefix},
        "relations": RELATIONS})
    out = run_relationctl(["-c", oracle, "apply", "-"], text)
    assert out.returncode == 0, out.stderr
    bodies = [json.loads(line) for line in out.stdout.splitlines() if line]
    refs = sum(1 for b in bodies if b["event_data"]["relation"] == "refs")
    assert refs > 0 and refs < len(bodies), refs

    conn = rabbit.connection()
    ch = conn.channel()
    ch.exchange_declare(names.hooks_exchange, "topic", durable=True)
    ch.queue_declare(names.hooks_queue, durable=True)
    ch.queue_bind(names.hooks_queue, names.hooks_exchange, routing_key="relation.loyal.#")
    try:
        def publish(prefix):
            cfg = write_json(os.path.join(str(tmp_path), prefix + ".json"), {
                "redis": {"url": redis_proc.url, "key_prefix": prefix},
                "hooks": {"url": rabbit.url, "exchange": names.hooks_exchange},
                "relations": RELATIONS})
            return run_relationctl(["-c", cfg, "apply", "--publish", "-"], text)

        out = publish("p%s:" % names.uid)
        assert out.returncode == 0, out.stderr
        lines = out.stderr.splitlines()
        assert lines[-3] == "triggers published %d to %s" % (len(bodies), names.hooks_exchange), \
            out.stderr
        assert lines[-2] == ("triggers unroutable %d: %s routed them to no queue, and RabbitMQ "
                             "dropped them (bind the subscriber's queue to the exchange first)"
                             % (refs, names.hooks_exchange)), out.stderr
        assert lines[-1].startswith("applied "), out.stderr
        arrived = ch.queue_declare(names.hooks_queue, durable=True).method.message_count
        assert arrived == len(bodies) - refs

        ch.queue_bind(names.hooks_queue, names.hooks_exchange, routing_key="relation.refs.#")
        out = publish("q%s:" % names.uid)
        assert out.returncode == 0, out.stderr
        assert "unroutable" not in out.stderr, out.stderr
    finally:
        ch.queue_delete(names.hooks_queue)
        ch.exchange_delete(names.hooks_exchange)
        conn.close()
