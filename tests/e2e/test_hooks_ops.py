"""Action hooks as an operator runs them: the drain's deadline holds with a
hook's Kafka broker frozen (nothing lost after a restart)."""

import json
import os
import signal
import time

from brokers import KafkaMock, KafkaReader, make_stream, wait_until
from test_hooks import problems_of


def test_a_frozen_kafka_hook_does_not_hold_the_stop_past_the_drain_deadline(harness, daemons):
    """The hook's broker stops answering (SIGSTOP) with triggers in flight:
    SIGTERM exits within engine.shutdown_timeout_ms (and a little), not
    after the producer's 30 s wait for delivery reports; the triggers not
    confirmed stay in the backlog and arrive after the next start."""
    h = harness(kafka=True)
    lake_topic = "lake-%s" % h.names.uid
    lake_mock = KafkaMock([lake_topic])
    lake_mock.start()
    lake = KafkaReader(lake_mock.bootstrap, lake_topic, "lake-%s" % h.names.uid)
    frozen = False
    try:
        h.config["engine"]["shutdown_timeout_ms"] = 2000
        h.config["hooks"] = [
            {"name": "mailing", "kind": "amqp", "url": h.rabbit.url,
             "exchange": h.names.hooks_exchange},
            {"name": "lake", "kind": "kafka", "brokers": lake_mock.bootstrap,
             "topic": lake_topic}]
        events = make_stream(300, seed=95, clusters=list(range(6)), tag="fz")
        d = h.daemon(daemons).start()
        h.feed_kafka(events[:150])
        h.wait_done()
        wait_until(lambda: lake.poll(0.2), timeout=60, message=d.log_tail)
        os.kill(lake_mock.proc.pid, signal.SIGSTOP)
        frozen = True
        h.feed_kafka(events[150:])
        h.wait_done()                   # applied, the amqp hook took them
        t0 = time.monotonic()
        d.stop(timeout=60)
        took = time.monotonic() - t0
        assert took < 2 + 4, "the stop took %.1f s with shutdown_timeout_ms 2000\n%s" % (
            took, d.log_tail())
        os.kill(lake_mock.proc.pid, signal.SIGCONT)
        frozen = False
        d.start()

        def problems():
            got = [json.loads(v) for _, v, _, _ in lake.poll(0.3)]
            return problems_of("lake", got, h.oracle.triggers)
        wait_until(lambda: not problems(), timeout=90, interval=0.5,
                   message=lambda: "\n".join(problems()[:8]) + d.log_tail())
        assert d.stop() == 0, d.log_tail()
    finally:
        if frozen:
            os.kill(lake_mock.proc.pid, signal.SIGCONT)
        lake.close()
        lake_mock.stop()
