"""make bench: relationd's end-to-end throughput through the RabbitMQ source:
a queue filled with events beforehand, drained by the daemon (apply in Redis,
triggers published with confirms, acks; the time runs from the start of the
daemon to the end of its drain after the queue emptied), with engine.batch_size 1 and 256 side
by side in one run against one private Redis and RabbitMQ. Reports events per
second of each and their ratio; the machine is shared, so only the ratio of
runs made together means anything."""

import json
import os
import random
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import pika  # noqa: E402

from bench_apply import RELATION  # noqa: E402  the same relation as the apply benchmark
from brokers import Daemon, RabbitMQ  # noqa: E402
from redis_server import Server  # noqa: E402

EVENTS = int(os.environ.get("BENCH_DAEMON_EVENTS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def events(tag):
    rnd = random.Random(7)
    for i in range(EVENTS):
        yield json.dumps({
            "id": "%s-%d" % (tag, i), "op": rnd.choice(["strengthen", "strengthen", "detach"]),
            "relation": "bench", "profile_a": "a%d" % rnd.randrange(200),
            "profile_b": "b%d" % rnd.randrange(2000),
            "weights": {"profit": round(rnd.uniform(0, 100), 2), "purchases": 1}})


def run(tmp, redis, rabbit, tag, batch):
    queue = "bench-%s" % tag
    ch = rabbit.connection().channel()
    ch.exchange_declare(queue + ".dlx", "fanout", durable=True)
    ch.queue_declare(queue, durable=True, arguments={"x-dead-letter-exchange": queue + ".dlx"})
    ch.exchange_declare(queue + ".hooks", "topic", durable=True)
    ch.queue_declare(queue + ".triggers", durable=True)
    ch.queue_bind(queue + ".triggers", queue + ".hooks", "relation.#")
    for body in events(tag):
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    cfg = {"redis": {"url": "redis://127.0.0.1:%d/0" % redis.port, "key_prefix": tag + ":"},
           "engine": {"batch_size": batch, "batch_ms": 20},
           "amqp": {"url": rabbit.url, "queue": queue, "prefetch": 1000,
                    "dead_letter_exchange": queue + ".dlx"},
           "hooks": {"url": rabbit.url, "exchange": queue + ".hooks"},
           "relations": [RELATION]}
    daemon = Daemon(tmp, cfg, name="bench-" + tag)
    start = time.monotonic()
    daemon.start()
    while ch.queue_declare(queue, passive=True).method.message_count > 0:
        time.sleep(0.02)
    status = daemon.stop()  # the drain finishes and acks the last batch
    elapsed = time.monotonic() - start
    if status != 0:
        raise SystemExit("relationd exited with %s\n%s" % (status, daemon.log_tail()))
    ch.queue_delete(queue + ".triggers")
    ch.queue_delete(queue)
    ch.connection.close()
    return EVENTS / elapsed


def main():
    tmp = tempfile.mkdtemp(prefix="relationd-bench-daemon-")
    redis, rabbit = Server(), RabbitMQ()
    try:
        redis.start()
        rabbit.start()
        results = {1: [], 256: []}
        for rnd in range(ROUNDS):
            for batch in (1, 256):
                results[batch].append(run(tmp, redis, rabbit, "r%d-b%d" % (rnd, batch), batch))
        best = {b: max(v) for b, v in results.items()}
        print("relationd, RabbitMQ source -> Redis -> hooks, %d events per run, best of %d:"
              % (EVENTS, ROUNDS))
        print("  batch_size 1:   %8.0f events/s" % best[1])
        print("  batch_size 256: %8.0f events/s" % best[256])
        print("  ratio:          %8.1fx" % (best[256] / best[1]))
    finally:
        rabbit.stop()
        redis.stop()


if __name__ == "__main__":
    main()
