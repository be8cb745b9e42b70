#!/usr/bin/python3
"""make demo: relationd on a private stack (redis-server, rabbitmq-server and a
Kafka-protocol broker, on free loopback ports, in temporary directories), the
sample events of config/demo-events.jsonl sent by ordinary clients, then the
triggers, the dead letters and the statistics printed. Everything it started is
stopped by its own pid at the end."""

import json
import os
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))

import pika  # noqa: E402
from confluent_kafka import Consumer, Producer  # noqa: E402

from brokers import Daemon, KafkaMock, RabbitMQ  # noqa: E402
from redis_server import Server  # noqa: E402

RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(TOP, "build", "relationctl"))


def drain(ch, queue, quiet=2.0, limit=30.0):
    """Messages of queue until none arrived for `quiet` seconds."""
    got, last, start = [], time.monotonic(), time.monotonic()
    while time.monotonic() - last < quiet and time.monotonic() - start < limit:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.1)
            continue
        got.append((method.routing_key, props, body))
        last = time.monotonic()
    return got


def main():
    tmp = tempfile.mkdtemp(prefix="relationd-demo-")
    redis, rabbit, kafka, daemon = Server(), None, None, None
    try:
        print("== starting redis-server, rabbitmq-server (about 5 s) and the Kafka mock broker")
        redis.start()
        rabbit = RabbitMQ()
        rabbit.start()
        kafka = KafkaMock(["relation-events:4", "relation-events.dlq"])
        kafka.start()

        cfg = json.load(open(os.path.join(TOP, "config", "relationd.example.json")))
        cfg["redis"]["url"] = "redis://127.0.0.1:%d/0" % redis.port
        cfg["kafka"]["brokers"] = kafka.bootstrap
        cfg["kafka"]["properties"] = {}
        cfg["amqp"]["url"] = cfg["hooks"]["url"] = rabbit.url
        cfg.pop("http")

        # A queue bound to the hook exchange and one to the dead-letter exchange,
        # declared the way relationd declares their exchanges.
        conn = rabbit.connection()
        ch = conn.channel()
        ch.exchange_declare("relation.hooks", "topic", durable=True)
        ch.queue_declare("demo.triggers", durable=True)
        ch.queue_bind("demo.triggers", "relation.hooks", "relation.#")
        ch.exchange_declare("relation-events.dlx", "fanout", durable=True)
        ch.queue_declare("demo.dead-letters", durable=True)
        ch.queue_bind("demo.dead-letters", "relation-events.dlx", "")

        daemon = Daemon(tmp, cfg)
        daemon.start()
        daemon.wait_log("assigned")  # joined the consumer group
        print("== relationd started: %s" % daemon.config_path)

        lines = [l for l in open(os.path.join(TOP, "config", "demo-events.jsonl")) if l.strip()]
        producer = Producer({"bootstrap.servers": kafka.bootstrap})
        sent_kafka = sent_amqp = 0
        for line in lines:
            e = json.loads(line)
            if e["relation"] == "managers_loyal":
                key = "%s:%s:%s" % (e["relation"], e["profile_a"], e["profile_b"])
                producer.produce("relation-events", key=key, value=line.strip())
                sent_kafka += 1
            else:
                ch.basic_publish("", "relation-events", line.strip(),
                                 pika.BasicProperties(delivery_mode=2))
                sent_amqp += 1
        ch.basic_publish("", "relation-events", "this is not JSON",
                         pika.BasicProperties(delivery_mode=2))
        producer.flush(10)
        producer = None  # disconnects before the broker stops
        print("== sent %d events to Kafka topic relation-events, %d events and one bad "
              "message to RabbitMQ queue relation-events" % (sent_kafka, sent_amqp))

        print("== triggers on exchange relation.hooks")
        for key, props, body in drain(ch, "demo.triggers"):
            t = json.loads(body)
            d = t["event_data"]
            print("%-46s profile %-6s event %-7s message_id %s%s" % (
                key, t["profile_id"], d["source_event"]["id"], props.message_id,
                "  " + json.dumps(d["threshold"]) if d["threshold"] else ""))

        print("== dead letters on exchange relation-events.dlx")
        for key, props, body in drain(ch, "demo.dead-letters", quiet=0.5):
            print("%r  reason: %s" % (body[:60], props.headers.get("x-relationd-reason")))
        consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "demo-dlq",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe(["relation-events.dlq"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                h = dict(m.headers() or [])
                print("%r  reason: %s  from %s[%s]@%s" % (
                    m.value()[:60], h["x-relationd-reason"].decode(),
                    h["x-relationd-topic"].decode(), h["x-relationd-partition"].decode(),
                    h["x-relationd-offset"].decode()))
                break
        consumer.close()
        conn.close()

        for side in ("managers_loyal direct 42", "managers_loyal reverse 1001",
                     "referrals reverse 1001"):
            print("== relationctl stats %s" % side)
            sys.stdout.flush()
            os.spawnv(os.P_WAIT, RELATIONCTL,
                      [RELATIONCTL, "-c", daemon.config_path, "stats"] + side.split())

        print("== SIGTERM: relationd drained and exited with status %s" % daemon.stop())
        print("== relationd log")
        print(daemon.current_log().rstrip())
    finally:
        if daemon is not None and daemon.running():
            daemon.kill()
        if kafka is not None:
            kafka.stop()
        if rabbit is not None:
            rabbit.stop()
        redis.stop()


if __name__ == "__main__":
    main()
