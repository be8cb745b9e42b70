"""Action hooks as an operator runs them: the drain's deadline holds with a
hook's Kafka broker frozen (nothing lost after a restart); several daemons
sharing a Redis deliver each hook through one of them at a time (its
lease)."""

import json
import os
import re
import signal
import subprocess
import time

from brokers import (HttpReceiver, KafkaMock, KafkaReader, free_port, hook_backlog, http_get,
                     make_stream, run_relationctl, wait_until)
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
        print("stopped %.1f s after SIGTERM" % took)
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


def lease_holders(h, hooks):
    """{hook: the pid in its lease's token, or None}."""
    out = {}
    for name in hooks:
        v = h.redis.get("%s{hook:%s}:lease" % (h.names.prefix, name))
        out[name] = int((v.decode() if isinstance(v, bytes) else v).split(":")[1]) if v else None
    return out


def test_two_daemons_one_deliverer_per_hook_and_takeover_after_kill_9(harness, daemons, engine):
    """Two daemons in one Kafka group on one Redis, two hooks (amqp, http):
    one deliverer at a time sends a hook's stream (its lease), so every
    trigger arrives once, in order per side; relationctl hooks list names
    the holder. kill -9 of a holder: the other daemon takes its hooks over
    within the lease's 5 s (and a renewal), nothing lost."""
    h = harness(kafka=True, redis_engine=engine)
    receiver = HttpReceiver()
    try:
        h.config["hooks"] = [
            {"name": "mailing", "kind": "amqp", "url": h.rabbit.url,
             "exchange": h.names.hooks_exchange},
            {"name": "partner", "kind": "http", "url": "http://127.0.0.1:%d/" % receiver.port,
             "batch_size": 20, "batch_ms": 20}]
        d1 = h.daemon(daemons, "relationd-a").start()
        d2 = h.daemon(daemons, "relationd-b").start()
        for d in (d1, d2):          # the group settled: no rebalance redelivers a batch
            d.wait_log("assigned 2 partitions")
        events = make_stream(600, seed=96, clusters=list(range(10)), tag="ls")
        h.feed_kafka(events[:400])
        h.wait_done()

        def arrived():
            h.drain_hooks()
            return {"mailing": [json.loads(b) for _, _, b in h.hooks.messages],
                    "partner": list(receiver.delivered)}

        def problems():
            got = arrived()
            return (problems_of("mailing", got["mailing"], h.oracle.triggers) +
                    problems_of("partner", got["partner"], h.oracle.triggers))
        wait_until(lambda: not problems(), timeout=60, interval=0.3,
                   message=lambda: "\n".join(problems()[:8]) + h._logs())
        for hook, got in arrived().items():
            ids = [b["event_data"]["id"] for b in got]
            twice = sorted({i for i in ids if ids.count(i) > 1})
            assert not twice, "%s: %d triggers sent twice: %s" % (hook, len(twice), twice[:5])
        holders = lease_holders(h, ("mailing", "partner"))
        pids = {d1.proc.pid: d1, d2.proc.pid: d2}
        assert set(holders.values()) <= set(pids), holders
        listed = run_relationctl(["-c", d1.config_path, "hooks", "list"])
        assert listed.returncode == 0, listed.stderr
        for line in listed.stdout.splitlines()[1:]:
            assert ":%d:" % holders[line.split()[0]] in line.split()[4], listed.stdout
        # kill -9 of the holder of mailing's lease; events keep coming
        victim = pids[holders["mailing"]]
        survivor = d2 if victim is d1 else d1
        taken = [k for k, pid in holders.items() if pid == victim.proc.pid]
        victim.kill()
        t0 = time.monotonic()
        h.feed_kafka(events[400:])
        wait_until(lambda: all(v == survivor.proc.pid
                               for v in lease_holders(h, taken).values()),
                   timeout=30, interval=0.1, message=survivor.log_tail)
        took = time.monotonic() - t0
        print("took over %d hook(s) %.1f s after the kill" % (len(taken), took))
        assert took < 5 + 1 + 1.5, "took over after %.1f s" % took
        for k in taken:
            survivor.wait_log('msg="delivering (lease %s{hook:%s}:lease held by' % (
                h.names.prefix, k))
        wait_until(lambda: not problems(), timeout=90, interval=0.3,
                   message=lambda: "\n".join(problems()[:8]) + h._logs())
        h.wait_done()
        assert survivor.stop() == 0, survivor.log_tail()
    finally:
        receiver.stop()


def test_a_removed_hooks_backlog_is_reported_listed_and_dropped(harness, daemons, engine):
    """A hook taken out of the configuration leaves its backlog in Redis:
    the daemon logs it at the start (with its length), relationctl hooks
    list shows it as not configured, hooks drop deletes it and its keys
    (and refuses a hook that is configured)."""
    h = harness(kafka=True, redis_engine=engine)
    h.config["hooks"] = [
        {"name": "mailing", "kind": "amqp", "url": h.rabbit.url,
         "exchange": h.names.hooks_exchange},
        {"name": "partner", "kind": "http", "url": "http://127.0.0.1:%d/" % free_port()}]
    d = h.daemon(daemons).start()
    h.feed_kafka(make_stream(120, seed=97, clusters=list(range(4)), tag="rm"))
    h.wait_done()                       # partner refuses connections: its backlog stays
    stream = "%s{hook:partner}" % h.names.prefix
    backlog = hook_backlog(h.redis, stream)
    assert backlog > 0
    assert d.stop() == 0, d.log_tail()
    h.config["hooks"] = h.config["hooks"][:1]
    d.write_config(h.config)
    d.start()
    d.wait_log('level=warn component=hooks msg="the backlog %s of a hook the configuration no '
               'longer has holds %d triggers: relationctl hooks drop partner deletes it"'
               % (stream, backlog))
    assert d.current_log().count("no longer has") == 1     # mailing's is not reported

    def ctl(*args):
        return run_relationctl(["-c", d.config_path, "hooks"] + list(args))
    out = ctl("list")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:]}
    assert rows["partner"][1:3] == ["-", str(backlog)], out.stdout
    assert " ".join(rows["partner"][5:]) == "not configured (relationctl hooks drop partner)"
    assert rows["mailing"][1] == "amqp" and rows["mailing"][-1] == "enabled"
    out = ctl("drop", "mailing")
    assert out.returncode == 2 and "hook mailing is configured" in out.stderr, out
    out = ctl("drop", "Bad}name")
    assert out.returncode == 2 and "is not a hook's name" in out.stderr, out
    out = ctl("drop", "partner")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("hook partner: dropped its backlog of %d triggers" % backlog)
    assert not h.redis.keys("%s{hook:partner}*" % h.names.prefix)
    out = ctl("list")
    assert "partner" not in out.stdout and "mailing" in out.stdout
    assert ctl("drop", "partner").stdout == "hook partner: nothing in Redis\n"
    assert d.stop() == 0, d.log_tail()


def test_check_config_connect_probes_every_hook(harness, tmp_path):
    """relationd --check-config --connect probes each hook's destination
    without sending a trigger: amqp (login, the exchange or queue declared,
    or found with declare false), kafka (the brokers answer, the topic
    exists), http (a connection to the URL's host opens; no request); each
    failure names its hook, and the status is 1."""
    h = harness(kafka=True)
    receiver = HttpReceiver()
    uid = h.names.uid
    try:
        good = [
            {"name": "mailing", "kind": "amqp", "url": h.rabbit.url, "exchange": "x-%s" % uid},
            {"name": "crm", "kind": "amqp", "url": h.rabbit.url, "queue": "q-%s" % uid},
            {"name": "lake", "kind": "kafka", "brokers": h.kafka.bootstrap,
             "topic": h.topics[1]},
            {"name": "partner", "kind": "http",
             "url": "http://127.0.0.1:%d/hook" % receiver.port}]
        bad = [
            {"name": "mailing", "kind": "amqp", "url": h.rabbit.url,
             "exchange": "none-%s" % uid, "declare": False},
            {"name": "crm", "kind": "amqp", "url": h.rabbit.url, "queue": "none-%s" % uid,
             "declare": False},
            {"name": "lake", "kind": "kafka", "brokers": h.kafka.bootstrap,
             "topic": "no-such-topic"},
            {"name": "partner", "kind": "http", "url": "http://127.0.0.1:%d/hook" % free_port()}]

        def check(hooks):
            path = tmp_path / "probe.json"
            path.write_text(json.dumps(dict(h.config, hooks=hooks)))
            path.chmod(0o600)
            return subprocess.run([os.environ.get("RELATIOND", "build/relationd"), "-c",
                                   str(path), "--check-config", "--connect"],
                                  capture_output=True, text=True, timeout=60)

        out = check(good)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert "hook mailing: ok (logged in, exchange declared)" in lines, out.stdout
        assert "hook crm: ok (logged in, queue declared)" in lines, out.stdout
        assert "hook lake: ok (1 broker, 1 topic found)" in lines, out.stdout
        assert "hook partner: ok (connected, no request sent)" in lines, out.stdout
        assert receiver.requests == []
        good[0]["declare"] = good[1]["declare"] = False    # they exist now
        out = check(good)
        assert out.returncode == 0, out.stderr
        assert "hook mailing: ok (logged in, exchange exists)" in out.stdout.splitlines()

        out = check(bad)
        assert out.returncode == 1
        errors = [line for line in out.stderr.splitlines() if line.startswith("relationd: hook ")]
        assert len(errors) == 4, out.stderr
        assert errors[0].startswith("relationd: hook mailing: ") and "none-%s" % uid in errors[0]
        assert errors[1].startswith("relationd: hook crm: ") and "none-%s" % uid in errors[1]
        assert errors[2] == ("relationd: hook lake: kafka %s: topic no-such-topic does not "
                             "exist" % h.kafka.bootstrap), errors[2]
        assert errors[3].startswith("relationd: hook partner: http://127.0.0.1:") and \
            errors[3].endswith("(connect)"), errors[3]
        assert not [line for line in out.stdout.splitlines()
                    if line.startswith("hook ") and ": ok (" in line], out.stdout
    finally:
        receiver.stop()
        conn = h.rabbit.connection()
        ch = conn.channel()
        ch.exchange_delete("x-%s" % uid)
        ch.queue_delete("q-%s" % uid)
        conn.close()


def test_an_entry_with_a_routing_key_over_255_bytes_is_set_aside(harness, daemons):
    """A backlog entry an amqp exchange cannot take (its routing key over
    AMQP's 255 bytes, as a configuration of an earlier release may have
    written) does not hold the hook: it is set aside in <stream>:dead with
    the reason, logged and counted (reason unroutable), and the triggers
    after it are delivered."""
    h = harness(kafka=True)
    port = free_port()
    h.config["hooks"] = [{"name": "mailing", "kind": "amqp", "url": h.rabbit.url,
                          "exchange": h.names.hooks_exchange}]
    h.config["http"] = {"listen": "127.0.0.1:%d" % port}
    stream = "%s{hook:mailing}" % h.names.prefix
    long_key = "db" + "x" * 298 + ".relation_direct_attach"
    h.redis.xadd(stream, {"id": "old-1", "body": '{"old": true}', "key": "db:p1",
                          "rk": long_key, "event_type": "relation_direct_attach"})
    d = h.daemon(daemons).start()
    h.feed_kafka(make_stream(150, seed=98, clusters=list(range(4)), tag="rk"))
    h.wait_done()                       # every trigger after it went out
    h.check()
    dead = h.redis.xrange(stream + ":dead")
    assert len(dead) == 1, dead
    fields = {(k if isinstance(k, str) else k.decode()): (v if isinstance(v, str) else v.decode())
              for k, v in dead[0][1].items()}
    assert fields["reason"] == "its routing key is %d bytes, more than AMQP's 255" % len(long_key)
    assert fields["id"] == "old-1" and fields["rk"] == long_key and fields["body"] == '{"old": true}'
    d.wait_log('msg="entry ')
    assert re.search(r'level=error component="hook mailing" msg="entry \S+ of %s cannot be '
                     r'sent \(its routing key is %d bytes, more than AMQP\'s 255\): set aside '
                     r'in %s:dead"' % (re.escape(stream), len(long_key), re.escape(stream)),
                     d.current_log()), d.log_tail()
    text = http_get(port, "/metrics")[1]
    assert 'relationd_hook_failures_total{hook="mailing",reason="unroutable"} 1' in text, text
    assert d.stop() == 0, d.log_tail()
