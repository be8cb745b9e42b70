"""The test brokers themselves: a private rabbitmq-server (round trip, restart
keeping durable queues and persistent messages, nothing of it left after
stop) and the Kafka mock broker (round trip with keys, headers and a consumer
group)."""

import os
import time

import pika
from confluent_kafka import Consumer, Producer, TopicPartition

from brokers import Collector, RabbitMQ, pid_alive, port_open, wait_until


def test_rabbit_round_trip(rabbit, names):
    conn = rabbit.connection()
    ch = conn.channel()
    ch.queue_declare(names.queue, durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", names.queue, b"hello", pika.BasicProperties(delivery_mode=2))
    method, props, body = ch.basic_get(names.queue, auto_ack=True)
    assert body == b"hello" and props.delivery_mode == 2
    ch.queue_delete(names.queue)
    conn.close()
    assert rabbit.url.startswith("amqp://guest:guest@127.0.0.1:%d/" % rabbit.port)


def test_collector_sees_topic_exchange(rabbit, names):
    hooks = Collector(rabbit, names.hooks_queue, names.hooks_exchange, "topic", "relation.#")
    conn = rabbit.connection()
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish(names.hooks_exchange, "relation.x.direct.attach", b"{}",
                     pika.BasicProperties(message_id="m1"))
    ch.basic_publish(names.hooks_exchange, "other.x", b"{}")
    conn.close()
    wait_until(lambda: hooks.drain() or hooks.messages, timeout=10)
    hooks.drain()
    assert [(rk, p.message_id) for rk, p, _ in hooks.messages] == \
        [("relation.x.direct.attach", "m1")]
    hooks.close()


def test_rabbit_restart_keeps_persistent_messages_and_stops_clean():
    """A second private server (not the session's): restart on the same
    ports keeps a durable queue's persistent messages; stop leaves no
    process and no port behind."""
    server = RabbitMQ()
    try:
        server.start()
        conn = server.connection()
        ch = conn.channel()
        ch.queue_declare("keep", durable=True)
        ch.confirm_delivery()
        for i in range(3):
            ch.basic_publish("", "keep", b"m%d" % i, pika.BasicProperties(delivery_mode=2))
        conn.close()
        pids = set(server.vm_pids)
        port = server.port
        server.restart()
        assert server.port == port
        assert not any(pid_alive(p) for p in pids), pids
        conn = server.connection()
        ch = conn.channel()
        got = [ch.basic_get("keep", auto_ack=True)[2] for _ in range(3)]
        assert got == [b"m0", b"m1", b"m2"]
        conn.close()
        pids = set(server.vm_pids) | {server.epmd.pid}
    finally:
        server.stop()
    assert not any(pid_alive(p) for p in pids), pids
    assert not port_open(server.port) and not port_open(server.epmd_port)
    assert not os.path.exists(server.dir)


def test_kafka_round_trip(kafka, kafka_topics, names):
    events, _dlq = kafka_topics
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    for i in range(8):
        p.produce(events, key=b"k%d" % i, value=b"v%d" % i, partition=i % kafka.partitions,
                  headers={"h": b"%d" % i})
    assert p.flush(10) == 0
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": names.group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([events])
    got = {}
    deadline = time.monotonic() + 30
    while len(got) < 8 and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        got[m.key()] = (m.value(), m.partition(), dict(m.headers()))
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(events, i) for i in range(kafka.partitions)],
                            timeout=10)
    c.close()
    assert got == {b"k%d" % i: (b"v%d" % i, i % 4, {"h": b"%d" % i}) for i in range(8)}
    assert sorted(tp.offset for tp in committed) == [2, 2, 2, 2]


def test_kafka_topics_are_fresh(kafka_topics):
    events, dlq = kafka_topics
    assert events.startswith("events-") and dlq.startswith("dlq-")
    assert events.split("-")[1] == dlq.split("-")[1]

