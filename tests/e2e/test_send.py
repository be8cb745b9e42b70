"""relationctl send: JSON-lines events published the way an upstream service
should (Kafka: the recommended key, acks=all; AMQP: persistent, confirmed),
each line checked first (a bad one reported as `line N: reason`, not sent);
the daemon applies what was sent: the statistics equal the oracle's."""

import signal
import subprocess

from brokers import make_stream
from conftest import RELATIONCTL


def send(cfg_path, path, *flags):
    return subprocess.run([RELATIONCTL, "-c", cfg_path, "send", str(path)] + list(flags),
                          capture_output=True, text=True, timeout=120)


def test_send_to_both_sources(harness, daemons, tmp_path):
    h = harness(kafka=True, amqp=True)
    d = h.daemon(daemons).start()
    events = make_stream(600, seed=113, clusters=[0, 1, 2, 3], tag="sd")
    # an edge's events stay in one source (its cluster), in order
    halves = {"--kafka": [e for e in events if e.cluster < 2],
              "--amqp": [e for e in events if e.cluster >= 2]}
    for flag, evs in halves.items():
        path = tmp_path / ("events%s.jsonl" % flag)
        lines = [e.raw for e in evs]
        lines.insert(10, b"not json")
        lines.insert(20, b'{"id": "b1", "op": "attach"}')
        path.write_bytes(b"\n".join(lines) + b"\n")
        if flag == "--amqp":   # on a terminal: the same, and a progress line
            from test_human import on_terminal
            rc, screen, _ = on_terminal(["-c", d.config_path, "send", str(path), flag],
                                        stdout_tty=False)
            assert rc == 3 and "%" in screen and " events " in screen, screen[-500:]
            # what is left on the screen: each line after its last erase
            out = subprocess.CompletedProcess([], rc, "", "\n".join(
                l.split("\x1b[K")[-1] for l in screen.replace("\r\n", "\n").split("\n")))
        else:
            out = send(d.config_path, path, flag)
        assert out.returncode == 3, out.stderr
        err = out.stderr.splitlines()
        assert err[-1] == "sent %d, invalid 2" % len(evs), err[-3:]
        assert [e.split(":")[0] for e in err if e.startswith("line ")] == ["line 11", "line 21"]
        h._expect(evs, True)
    # Kafka partitions by edge (the recommended key): a side sees its edges'
    # events in another interleaving than the file's, so thresholds may
    # cross at other events; the statistics are the same.
    h.wait_progress(1.0)
    from brokers import wait_until
    wait_until(lambda: not h.state_diff(), timeout=60, message=lambda: h.state_diff()[:5])
    assert d.stop() == 0, d.log_tail()


def test_send_needs_a_source(ctl, rdb, tmp_path):
    cfg = ctl.config([])
    path = tmp_path / "e.jsonl"
    path.write_text("")
    out = send(cfg, path, "--kafka")
    assert out.returncode == 2 and "send needs --kafka (and the kafka section)" in out.stderr


def test_send_kafka_failing_login_ends_with_one_error(harness, daemons, tmp_path):
    """A login that cannot succeed (TLS, or SASL, toward the tests' plaintext
    broker) ends send within seconds with one error naming kafka.brokers and
    the reason, no librdkafka log line, nothing counted as sent, status 1
    (before: still waiting after 60 s)."""
    from test_redrive import _kafka_config
    h = harness(kafka=True)
    d = h.daemon(daemons)   # its configuration only
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(e.raw for e in make_stream(5, seed=7, clusters=[0], tag="sf")) + b"\n")
    for login, reason in [({"security.protocol": "ssl"}, "SSL"),
                          ({"security.protocol": "sasl_plaintext", "sasl.mechanism": "PLAIN",
                            "sasl.username": "nobody", "sasl.password": "wrong"}, "SASL")]:
        props = dict(d.config["kafka"]["properties"], **login)
        cfg = _kafka_config(d, tmp_path, properties=props)
        out = subprocess.run([RELATIONCTL, "-c", cfg, "send", str(path), "--kafka"],
                             capture_output=True, text=True, timeout=40)
        err = out.stderr.splitlines()
        assert out.returncode == 1, out.stderr
        assert len(err) == 2 and err[0].startswith(
            "relationctl: kafka.brokers %s: no broker answered within " % h.kafka.bootstrap), err
        assert reason in err[0], err
        assert err[1] == "sent 0, invalid 0", err


def _in_topic(bootstrap, topic):
    """The messages topic holds (its partitions' end offsets added)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "send-count"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in parts)
    finally:
        c.close()


def test_send_kafka_names_the_lines_not_confirmed(harness, daemons, tmp_path):
    """The brokers go away in the middle of a send: the events they did not
    confirm are one error naming the topic and their lines (so that just
    those are sent again), status 1 (before: a count, no lines)."""
    from test_redrive import _kafka_config
    from brokers import wait_until
    h = harness(kafka=True)
    d = h.daemon(daemons)   # its configuration only
    props = dict(d.config["kafka"]["properties"], **{"message.timeout.ms": "3000"})
    cfg = _kafka_config(d, tmp_path, properties=props)
    lines = [e.raw.decode() for e in make_stream(5, seed=9, clusters=[0], tag="sn")]
    lines.insert(2, "not json")
    topic = h.topics[0]
    before = _in_topic(h.kafka.bootstrap, topic)
    proc = subprocess.Popen([RELATIONCTL, "-c", cfg, "send", "-", "--kafka"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("\n".join(lines[:3]) + "\n")
        proc.stdin.flush()
        wait_until(lambda: _in_topic(h.kafka.bootstrap, topic) == before + 2, timeout=30)
        h.kafka.proc.send_signal(signal.SIGUSR1)   # the brokers go down
        proc.stdin.write("\n".join(lines[3:]) + "\n")
        proc.stdin.close()
        err = proc.stderr.read().splitlines()
        assert proc.wait(timeout=60) == 1, err
    finally:
        h.kafka.proc.send_signal(signal.SIGUSR2)
        if proc.poll() is None:
            proc.kill()
    assert err[0].startswith("line 3: "), err
    assert err[1:] == ["relationctl: kafka: 3 of 5 events sent to %s not confirmed (lines "
                       "4-6): Local: Message timed out" % topic, "sent 0, invalid 1"], err
