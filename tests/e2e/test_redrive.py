"""relationctl redrive: dead letters go back to their source after a fix
(--amqp QUEUE: from a queue bound to the dead-letter exchange; --kafka:
from the dead-letter topic), each once, with its reason shown; the daemon
then applies them. Both read what was there at the start only (the topic up
to its end offsets, the queue's message count: a message refused again does
not make it loop) and skip what was redriven before unless --force (AMQP:
left in the queue). --kafka connects as the daemon does (kafka.properties)
and fails when no broker answers."""

import copy
import json
import os
import re
import subprocess

from brokers import KafkaReader, committed_lag, free_port, publish, wait_until
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
    assert lines[-1] == "redriven 5, skipped 0 from %s to %s" % (dead, h.names.queue), lines
    assert sum(1 for line in lines if line.startswith("redriven: ") and "extra" in line) == 5
    wait_until(lambda: _stats(d.config_path)["count"] == 5, timeout=60)
    assert _stats(d.config_path)["properties"]["n"]["total"] == 10
    # each once: nothing left to redrive
    out = subprocess.run([RELATIONCTL, "-c", d.config_path, "redrive", "--amqp", dead,
                          "--limit", "3"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[-1] == "redriven 0, skipped 0 from %s to %s" % (
        dead, h.names.queue), out.stderr
    assert d.stop() == 0, d.log_tail()


def _redrive_amqp(config_path, queue, *args):
    return subprocess.run([RELATIONCTL, "-c", config_path, "redrive", "--amqp", queue] +
                          list(args), capture_output=True, text=True, timeout=60)


def _dead_queue(rabbit, h):
    """A queue bound to h's dead-letter exchange (h.dlx, the harness's
    collector, consumes names.dlx_queue)."""
    dead = h.names.queue + ".dead"
    conn = rabbit.connection()
    try:
        ch = conn.channel()
        ch.queue_declare(dead, durable=True)
        ch.queue_bind(dead, h.names.dlx)
    finally:
        conn.close()
    return dead


def _letters(rabbit, queue):
    """The messages in queue, left there: (redrive count, reason) each, sorted
    ("0": never redriven)."""
    conn = rabbit.connection()
    got = []
    try:
        ch = conn.channel()
        while True:
            method, props, _ = ch.basic_get(queue, auto_ack=False)
            if method is None:
                break
            headers = props.headers or {}
            got.append((str(headers.get("x-relationd-redrives", "0")),
                        str(headers.get("x-relationd-reason"))))
    finally:
        conn.close()   # unacked: back in the queue
    return sorted(got)


def test_redrive_amqp_refused_again_ends(harness, daemons, rabbit):
    """Redriven without a fix, refused again: back in the dead-letter queue
    with its redrive count (the daemon carries x-relationd-redrives into its
    dead letter); the run ends anyway (before, it redrove them in a loop for
    as long as it ran). Then those redriven before are reported and left in
    the queue, next to a new dead letter that is redriven; --force sends them
    once more."""
    h = harness(amqp=True)
    d = h.daemon(daemons).start()
    dead = _dead_queue(rabbit, h)
    events = [{"id": "a%d" % i, "op": "attach", "relation": "extra", "profile_a": "q",
               "profile_b": "c%d" % i, "weights": {"n": i}} for i in range(4)]
    publish(h.rabbit, h.names.queue, [json.dumps(e).encode() for e in events[:3]])
    wait_until(lambda: len(_letters(rabbit, dead)) == 3, timeout=60, message=d.log_tail)
    reason = _letters(rabbit, dead)[0][1]
    assert "extra" in reason, reason
    assert _letters(rabbit, dead) == [("0", reason)] * 3
    summary = "redriven %d, skipped %d from " + "%s to %s" % (dead, h.names.queue)
    # no fix: each is redriven once, refused again, and the run ends
    out = _redrive_amqp(d.config_path, dead)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines == ["redriven: %s" % reason] * 3 + ["  redriven 3, skipped 0: %s" % reason,
                                                      summary % (3, 0)], lines
    wait_until(lambda: _letters(rabbit, dead) == [("1", reason)] * 3, timeout=60,
               message=d.log_tail)
    # without --force: reported, left in the queue, not sent; a new one is sent
    publish(h.rabbit, h.names.queue, [json.dumps(events[3]).encode()])
    wait_until(lambda: len(_letters(rabbit, dead)) == 4, timeout=60, message=d.log_tail)
    out = _redrive_amqp(d.config_path, dead)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    skipped = "skipped: already redriven 1 time: %s (left in %s, from %s)" % (
        reason, dead, h.names.queue)
    assert sorted(lines[:4]) == ["redriven: %s" % reason] + [skipped] * 3, lines
    assert lines[4:] == ["  redriven 1, skipped 3: %s" % reason, summary % (1, 3)], lines
    wait_until(lambda: _letters(rabbit, dead) == [("1", reason)] * 4, timeout=60,
               message=d.log_tail)
    # --force: those redriven before are sent once more, refused again
    out = _redrive_amqp(d.config_path, dead, "--force")
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[-1] == summary % (4, 0), out.stderr
    wait_until(lambda: _letters(rabbit, dead) == [("2", reason)] * 4, timeout=60,
               message=d.log_tail)
    out = _redrive_amqp(d.config_path, dead, "--limit", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith("skipped: already redriven 2 times: %s (" % reason), lines
    assert lines[-1] == summary % (0, 4), lines
    assert _letters(rabbit, dead) == [("2", reason)] * 4
    assert d.stop() == 0, d.log_tail()


def test_redrive_amqp_body_not_kept(harness, daemons, rabbit):
    """A dead letter of a message over 65536 bytes holds only its first
    65536 bytes: it is reported and left in the queue, not sent (before, the
    cut body went to amqp.queue)."""
    import pika
    h = harness(amqp=True)
    d = h.daemon(daemons).start()
    dead = _dead_queue(rabbit, h)
    assert d.stop() == 0, d.log_tail()   # amqp.queue declared, no longer consumed
    event = {"id": "b1", "op": "attach", "relation": "extra", "profile_a": "q",
             "profile_b": "c1", "weights": {"n": 1}}
    conn = rabbit.connection()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        over = "message of 70000 bytes over the 65536-byte limit"
        for body, headers in ((b"[" * 65536, {"x-relationd-reason": over,
                                              "x-relationd-queue": h.names.queue,
                                              "x-relationd-body-bytes": 70000}),
                              (json.dumps(event).encode(), {"x-relationd-reason": "kept",
                                                            "x-relationd-queue": h.names.queue})):
            ch.basic_publish("", dead, body, pika.BasicProperties(delivery_mode=2,
                                                                   headers=headers))
    finally:
        conn.close()
    out = _redrive_amqp(d.config_path, dead)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines == ["skipped: only the first 65536 of its 70000 bytes were kept: %s (left in "
                     "%s, from %s)" % (over, dead, h.names.queue),
                     "redriven: kept",
                     "  redriven 0, skipped 1: %s" % over,
                     "  redriven 1, skipped 0: kept",
                     "redriven 1, skipped 1 from %s to %s" % (dead, h.names.queue)], lines
    assert _letters(rabbit, dead) == [("0", over)]
    assert _count(rabbit, h.names.queue) == 1
    # a queue that is not there: an error naming it, nothing done
    out = _redrive_amqp(d.config_path, dead + ".missing")
    assert out.returncode == 1, out.stderr
    assert "no queue '%s.missing'" % dead in out.stderr, out.stderr
    assert "redriven" not in out.stderr, out.stderr


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
    # --limit: that many, the rest by the next run
    out = _redrive(d.config_path, "--limit", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[-1] == "redriven 3, skipped 0 from %s" % h.topics[1], lines[-3:]
    assert sum(1 for line in lines if line.startswith("redriven: ") and "extra" in line) == 3
    reason = dlq.messages[0][2]["x-relationd-reason"]
    assert lines[-2] == "  redriven 3, skipped 0: %s" % reason, lines
    out = _redrive(d.config_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[-1] == "redriven 1, skipped 0 from %s" % h.topics[1], out
    wait_until(lambda: _stats_of(d.config_path, "q")["count"] == 4, timeout=60)
    out = subprocess.run([RELATIONCTL, "-c", d.config_path, "redrive", "--kafka"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[-1] == "redriven 0, skipped 0 from %s" % h.topics[1], out
    assert d.stop() == 0, d.log_tail()


def _stats_of(cfg, profile):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "stats", "extra", "direct", profile],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _redrive(config_path, *args, timeout=90):
    return subprocess.run([RELATIONCTL, "-c", config_path, "redrive", "--kafka"] + list(args),
                          capture_output=True, text=True, timeout=timeout)


def _redrives(dlq):
    """The redrive counts of the dead letters read so far (None: never redriven)."""
    return sorted((m[2].get("x-relationd-redrives") or "0") for m in dlq.poll(0.3))


def test_redrive_kafka_refused_again_ends(harness, daemons):
    """Redriven without a fix, refused again: back in the dead-letter topic
    with its redrive count; the run ends anyway (before, it redrove them in a
    loop for as long as it ran). --force sends them once more; without it
    they are reported and skipped."""
    h = harness(kafka=True)
    d = h.daemon(daemons).start()
    for i in range(2):
        e = {"id": "r%d" % i, "op": "attach", "relation": "extra", "profile_a": "q",
             "profile_b": "c%d" % i, "weights": {"n": i}}
        h.producer.produce(h.topics[0], value=json.dumps(e).encode(),
                           key=("extra:q:c%d" % i).encode(), partition=0)
    assert h.producer.flush(30) == 0
    dlq = KafkaReader(h.kafka.bootstrap, h.topics[1], h.names.group + "-seen")
    try:
        wait_until(lambda: _redrives(dlq) == ["0", "0"], timeout=60, message=d.log_tail)
        # no fix: each is redriven once, refused again, and the run ends
        out = _redrive(d.config_path)
        assert out.returncode == 0, out.stderr
        lines = out.stderr.splitlines()
        assert lines[-1] == "redriven 2, skipped 0 from %s" % h.topics[1], lines
        assert sum(1 for line in lines if line.startswith("redriven: ")) == 2, lines
        wait_until(lambda: _redrives(dlq) == ["0", "0", "1", "1"], timeout=60,
                   message=d.log_tail)
        reason = dlq.messages[0][2]["x-relationd-reason"]
        assert "extra" in reason
        # --force: those redriven before are sent once more, refused again
        out = _redrive(d.config_path, "--force")
        assert out.returncode == 0, out.stderr
        assert out.stderr.splitlines()[-1] == "redriven 2, skipped 0 from %s" % h.topics[1], \
            out.stderr
        wait_until(lambda: _redrives(dlq) == ["0", "0", "1", "1", "2", "2"], timeout=60,
                   message=d.log_tail)
        # without it: reported, with where they are, not sent
        out = _redrive(d.config_path)
        assert out.returncode == 0, out.stderr
        lines = out.stderr.splitlines()
        skipped = [line for line in lines if line.startswith("skipped: ")]
        assert len(skipped) == 2, lines
        for line in skipped:
            assert line.startswith("skipped: already redriven 2 times: %s (%s[0] offset "
                                   % (reason, h.topics[1])), line
            assert re.search(r", from %s\[[0-3]\] offset [0-9]+\)$" % h.topics[0], line), line
        assert "  redriven 0, skipped 2: %s" % reason in lines, lines
        assert lines[-1] == "redriven 0, skipped 2 from %s" % h.topics[1], lines
        # nothing new: nothing done, nothing more in the dead-letter topic
        out = _redrive(d.config_path)
        assert out.returncode == 0, out.stderr
        assert out.stderr.splitlines()[-1] == "redriven 0, skipped 0 from %s" % h.topics[1], \
            out.stderr
        assert _redrives(dlq) == ["0", "0", "1", "1", "2", "2"]
    finally:
        dlq.close()
    assert d.stop() == 0, d.log_tail()


def _kafka_config(d, tmp_path, **kafka):
    """d's configuration with kafka changed, in a file of its own."""
    cfg = copy.deepcopy(d.config)
    cfg["kafka"].update(kafka)
    path = os.path.join(str(tmp_path), "changed.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def test_redrive_kafka_uses_kafka_properties(harness, daemons, tmp_path):
    """The consumer and producer of redrive (and send) are configured as the
    daemon's, kafka.properties included: TLS toward a plaintext broker fails
    the handshake, a value librdkafka refuses is an error naming the property
    (before, both connected in plaintext and the properties were ignored)."""
    h = harness(kafka=True)
    d = h.daemon(daemons)   # its configuration only
    props = dict(d.config["kafka"]["properties"], **{"security.protocol": "ssl"})
    out = _redrive(_kafka_config(d, tmp_path, properties=props))
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("relationctl: kafka.brokers %s: no broker answered within "
                                 % h.kafka.bootstrap), out.stderr
    assert "SSL" in out.stderr, out.stderr
    props = dict(d.config["kafka"]["properties"], **{"security.protocol": "tls-please"})
    path = _kafka_config(d, tmp_path, properties=props)
    for cmd in (["redrive", "--kafka"], ["send", "-", "--kafka"]):
        out = subprocess.run([RELATIONCTL, "-c", path] + cmd, input="", capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 1, (cmd, out.stderr)
        assert out.stderr.splitlines()[0].startswith(
            "relationctl: kafka.properties.security.protocol: "), (cmd, out.stderr)
        assert "tls-please" in out.stderr, (cmd, out.stderr)


def test_redrive_kafka_no_broker(harness, daemons, tmp_path):
    """No broker answering is an error naming kafka.brokers, within seconds
    (before: "redriven 0", exit status 0)."""
    h = harness(kafka=True)
    d = h.daemon(daemons)
    brokers = "127.0.0.1:%d" % free_port()
    out = _redrive(_kafka_config(d, tmp_path, brokers=brokers), timeout=60)
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("relationctl: kafka.brokers %s: no broker answered within "
                                 % brokers), out.stderr
    assert "redriven" not in out.stderr, out.stderr


def test_redrive_kafka_value_not_kept(harness, daemons):
    """A dead letter whose value was too large for the dead-letter topic has
    only its headers: it is reported, not sent (before, an empty message went
    to the events topic)."""
    h = harness(kafka=True)
    d = h.daemon(daemons)   # its configuration only
    event = {"id": "v1", "op": "attach", "relation": "extra", "profile_a": "q",
             "profile_b": "c1", "weights": {"n": 1}}
    where = [("x-relationd-topic", h.topics[0]), ("x-relationd-partition", "1")]
    h.producer.produce(h.topics[1], value=json.dumps(event).encode(), key=b"extra:q:c1",
                       headers=[("x-relationd-reason", "kept")] + where +
                       [("x-relationd-offset", "7")], partition=0)
    h.producer.produce(h.topics[1], value=b"", key=b"extra:q:c2",
                       headers=[("x-relationd-reason", "too large")] + where +
                       [("x-relationd-offset", "8"), ("x-relationd-value-bytes", "2000000")],
                       partition=0)
    assert h.producer.flush(30) == 0
    out = _redrive(d.config_path)
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert "skipped: its value (2000000 bytes) was too large for the dead-letter topic: too " \
           "large (%s[0] offset 1, from %s[1] offset 8)" % (h.topics[1], h.topics[0]) in lines, \
        lines
    assert lines[-1] == "redriven 1, skipped 1 from %s" % h.topics[1], lines
    # all that was sent is acknowledged: one message in the events topic
    assert committed_lag(h.kafka.bootstrap, h.names.group + "-none", h.topics[0],
                         h.kafka.partitions) == 1
    events = KafkaReader(h.kafka.bootstrap, h.topics[0], h.names.group + "-seen")
    try:
        got = wait_until(lambda: events.poll(0.3), timeout=30)
        assert [(m[0], json.loads(m[1]), m[2]) for m in got] == \
            [(b"extra:q:c1", event, {"x-relationd-redrives": "1"})]
    finally:
        events.close()
