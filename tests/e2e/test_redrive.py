"""relationctl redrive: dead letters go back to their source after a fix
(--amqp QUEUE: from a queue bound to the dead-letter exchange; --kafka:
from the dead-letter topic), each once, with its reason shown; the daemon
then applies them."""

import copy
import json
import subprocess

from brokers import publish, wait_until
from conftest import RELATIONCTL

EXTRA = {"short": "extra", "name": "Extra", "database_a": "a", "database_b": "b",
         "properties": [{"short": "n", "type": "int", "save_amount": True}]}


def test_redrive_after_a_fix(harness, daemons, rabbit, tmp_path):
    h = harness(amqp=True)
    d = h.daemon(daemons).start()
    dead = h.names.queue + ".dead"
    conn = rabbit.connection()
    ch = conn.channel()
    ch.queue_declare(dead, durable=True)
    ch.queue_bind(dead, h.names.dlx)
    conn.close()
    # a relation the daemon does not know yet: refused, dead-lettered
    events = [{"id": "x%d" % i, "op": "attach", "relation": "extra", "profile_a": "p",
               "profile_b": "c%d" % i, "weights": {"n": i}} for i in range(5)]
    publish(h.rabbit, h.names.queue, [json.dumps(e).encode() for e in events])
    wait_until(lambda: _count(rabbit, dead) == 5, timeout=60)
    # the fix: the relation added, reloaded
    cfg = copy.deepcopy(d.config)
    cfg["relations"].append(EXTRA)
    d.write_config(cfg)
    d.sighup()
    d.wait_log("reloaded")
    out = subprocess.run([RELATIONCTL, "-c", d.config_path, "redrive", "--amqp", dead],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[-1] == "redriven 5 from %s to %s" % (dead, h.names.queue)
    assert sum(1 for line in lines if line.startswith("redriven: ") and "extra" in line) == 5
    wait_until(lambda: _stats(d.config_path)["count"] == 5, timeout=60)
    assert _stats(d.config_path)["properties"]["n"]["total"] == 10
    # each once: nothing left to redrive
    out = subprocess.run([RELATIONCTL, "-c", d.config_path, "redrive", "--amqp", dead,
                          "--limit", "3"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stderr.splitlines()[-1].startswith("redriven 0 "), out
    assert d.stop() == 0, d.log_tail()


def _count(rabbit, queue):
    for line in rabbit.ctl("list_queues", "-q", "name", "messages").splitlines():
        parts = line.split("\t")
        if parts[0] == queue:
            return int(parts[1])
    return -1


def _stats(cfg):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "stats", "extra", "direct", "p"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_redrive_kafka_after_a_fix(harness, daemons):
    h = harness(kafka=True)
    d = h.daemon(daemons).start()
    events = [{"id": "k%d" % i, "op": "attach", "relation": "extra", "profile_a": "q",
               "profile_b": "c%d" % i, "weights": {"n": i}} for i in range(4)]
    for e in events:
        h.producer.produce(h.topics[0], value=json.dumps(e).encode(),
                           key=b"extra:q:" + e["profile_b"].encode(), partition=0)
    assert h.producer.flush(30) == 0
    from brokers import KafkaReader
    dlq = KafkaReader(h.kafka.bootstrap, h.topics[1], h.names.group + "-seen")
    try:
        wait_until(lambda: len(dlq.poll(0.2)) >= 4, timeout=60, message=d.log_tail)
    finally:
        dlq.close()
    cfg = copy.deepcopy(d.config)
    cfg["relations"].append(EXTRA)
    d.write_config(cfg)
    d.sighup()
    d.wait_log("reloaded")
    out = subprocess.run([RELATIONCTL, "-c", d.config_path, "redrive", "--kafka"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[-1] == "redriven 4 from %s" % h.topics[1], lines[-3:]
    assert sum(1 for line in lines if line.startswith("redriven: ") and "extra" in line) == 4
    wait_until(lambda: _stats_of(d.config_path, "q")["count"] == 4, timeout=60)
    out = subprocess.run([RELATIONCTL, "-c", d.config_path, "redrive", "--kafka"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr.splitlines()[-1].startswith("redriven 0 "), out
    assert d.stop() == 0, d.log_tail()


def _stats_of(cfg, profile):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "stats", "extra", "direct", profile],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
