"""The fault soak (`make soak`, SOAK_SECONDS long; skipped otherwise): both
sources under mixed traffic while the daemon (kill -9), Redis (kill -9; an
append-only file fsynced at every write), the Kafka brokers (all down, then
up) and RabbitMQ (stopped, started) fail in turn, round after round, with
more events arriving between the faults. At the end every side equals the
reference model (relationctl's application of each event once), every
expected trigger arrived, and nothing is left unacknowledged. Once per
engine (`redis.engine` function, then module with the module loaded into
the restarted Redis), each SOAK_SECONDS long."""

import os
import signal
import time

import pytest

from redis_server import Server

from brokers import make_stream

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "0") or 0)
pytestmark = pytest.mark.skipif(not SOAK_SECONDS, reason="the soak runs with make soak")

CHUNK = 250  # events per source between two faults


def test_soak(harness, daemons, rdb, redis_proc, rabbit, engine):
    server = Server(persistent=True, module=engine == "module")
    server.start()
    try:
        h = harness(kafka=True, amqp=True, redis_server=server, redis_engine=engine)
        # enough events for every round; clusters never span both sources
        n = int(max(4000, SOAK_SECONDS * 120))
        events = make_stream(n, seed=81, clusters=list(range(12)), tag="soak")
        kafka_events = [e for e in events if e.cluster < 6]
        amqp_events = [e for e in events if e.cluster >= 6]
        d = h.daemon(daemons).start()

        def kill_daemon():
            assert d.kill() == -signal.SIGKILL
            time.sleep(0.3)
            d.start()

        def kill_redis():
            server.kill()
            time.sleep(1)
            server.start()

        def kafka_down():
            h.kafka.proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            h.kafka.proc.send_signal(signal.SIGUSR2)

        def rabbitmq_down():
            rabbit.stop_server()
            time.sleep(1)
            rabbit.start()

        faults = [kill_daemon, kill_redis, kafka_down, rabbitmq_down]
        deadline = time.monotonic() + SOAK_SECONDS
        fed_k = fed_a = rounds = 0
        while time.monotonic() < deadline and (fed_k < len(kafka_events) or
                                               fed_a < len(amqp_events)):
            h.feed_kafka(kafka_events[fed_k:fed_k + CHUNK])
            h.feed_amqp(amqp_events[fed_a:fed_a + CHUNK])
            fed_k, fed_a = fed_k + CHUNK, fed_a + CHUNK
            time.sleep(0.5)  # the fault hits a daemon at work
            fault = faults[rounds % len(faults)]
            t0 = time.monotonic()
            fault()
            rounds += 1
            print("round %d: %s (%.1f s), %d + %d events fed" % (
                rounds, fault.__name__, time.monotonic() - t0, min(fed_k, len(kafka_events)),
                min(fed_a, len(amqp_events))))
        assert rounds >= len(faults), "the soak was too short for one round of each fault"
        h.wait_done(timeout=300)
        h.check()
        assert d.stop() == 0, d.log_tail()
        assert h.lag() == 0
    finally:
        server.stop()
