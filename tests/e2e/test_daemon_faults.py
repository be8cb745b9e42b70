"""relationd under faults: killed with SIGKILL mid-stream, Redis restarted,
RabbitMQ restarted, a member of a Kafka consumer group gone. Each ends with
the statistics of applying every event exactly once and every expected
trigger delivered at least once (compared with relationctl's results of the
same events, see brokers.Harness). Each test runs through both engines
(`redis.engine` function and module, the module loaded into the servers
the test starts), the reference always through the function; a member of
a consumer group gone and Kafka down run on the module only."""

import json
import os
import re
import signal
import subprocess
import time

import pytest
import redis

from redis_server import Server, with_data_to_load
import test_apply as A

from brokers import committed_lag, hook_backlog, make_stream, pid_alive, wait_until


def split(events, kafka_clusters):
    """Kafka's events and AMQP's: clusters never span both sources."""
    return ([e for e in events if e.cluster in kafka_clusters],
            [e for e in events if e.cluster not in kafka_clusters])


def test_kill9_mid_stream_then_restart(harness, daemons, engine):
    """Killed twice while busy; between the kills more events arrive."""
    h = harness(kafka=True, amqp=True, redis_engine=engine)
    events = make_stream(5000, seed=41, clusters=list(range(10)), tag="k9")
    kafka_events, amqp_events = split(events, range(6))
    cuts_k = [0, len(kafka_events) * 6 // 10, len(kafka_events) * 8 // 10, len(kafka_events)]
    cuts_a = [0, len(amqp_events) * 6 // 10, len(amqp_events) * 8 // 10, len(amqp_events)]
    h.feed_kafka(kafka_events[:cuts_k[1]])
    h.feed_amqp(amqp_events[:cuts_a[1]])
    d = h.daemon(daemons).start()
    for i, fraction in enumerate((0.3, 0.7)):
        h.wait_progress(fraction)
        assert d.kill() == -signal.SIGKILL
        before = len(h.hook_ids)
        h.feed_kafka(kafka_events[cuts_k[i + 1]:cuts_k[i + 2]])
        h.feed_amqp(amqp_events[cuts_a[i + 1]:cuts_a[i + 2]])
        t0 = time.monotonic()
        d.start()
        print("restarted in %.1f s" % (time.monotonic() - t0))
    h.wait_done(timeout=180)
    assert before < len(h.oracle.triggers)
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert h.lag() == 0


def test_redis_down_at_start(harness, daemons, rdb, redis_proc, engine):
    """Started while Redis is unreachable: the daemon stays up, says what is
    down and since when, holds the events, and applies them once Redis is up."""
    server = Server(persistent=True, module=engine == "module")
    try:
        h = harness(kafka=False, amqp=True, redis_server=server, redis_engine=engine)
        events = make_stream(300, seed=44, clusters=list(range(3)), tag="rs")
        d = h.daemon(daemons).start()
        h.feed_amqp(events)
        d.wait_log("redis down since")
        assert re.search(r"redis down since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ .*Connection refused",
                         d.current_log()), d.log_tail()
        time.sleep(1)
        assert d.running(), d.log_tail()
        assert h.drain_hooks() == 0, "triggers published while Redis was down"
        server.start()
        h.wait_done(timeout=120)
        d.wait_log("redis back after")
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def test_redis_restarted_mid_stream(harness, daemons, rdb, redis_proc, engine):
    server = Server(persistent=True, module=engine == "module")
    server.start()
    try:
        h = harness(kafka=True, amqp=True, redis_server=server, redis_engine=engine)
        events = make_stream(4000, seed=42, clusters=list(range(10)), tag="rr")
        kafka_events, amqp_events = split(events, range(5))
        d = h.daemon(daemons).start()
        h.feed_kafka(kafka_events[:len(kafka_events) // 2])
        h.feed_amqp(amqp_events[:len(amqp_events) // 2])
        h.wait_progress(0.3)
        server.kill()
        before = len(h.hook_ids)
        # the rest arrives while Redis is down: the daemon holds it
        h.feed_kafka(kafka_events[len(kafka_events) // 2:])
        h.feed_amqp(amqp_events[len(amqp_events) // 2:])
        time.sleep(2)
        assert d.running(), d.log_tail()
        server.start()
        h.wait_done(timeout=180)
        assert before < len(h.oracle.triggers), "the daemon finished before Redis went"
        h.check()
        assert d.stop() == 0, d.log_tail()
        assert h.lag() == 0
        # a server loading its data is not a configuration problem
        refused = [line for line in d.log().splitlines() if "refused the configuration" in line]
        assert not refused, refused
    finally:
        server.stop()


def test_a_restarted_redis_still_loading_its_data_is_waited_for(harness, daemons, engine):
    """Redis killed and started again with data to load (20,000 keys of
    another application, each slowed down by key-load-delay): while it loads
    it answers every command with LOADING, which is Redis's state, not the
    configuration's fault; the daemon retries and, once loaded, applies the
    events that came meanwhile."""
    server = with_data_to_load(module=engine == "module", delay_us=100)
    try:
        h = harness(kafka=False, amqp=True, redis_server=server, redis_engine=engine)
        events = make_stream(400, seed=46, clusters=list(range(3)), tag="ld")
        d = h.daemon(daemons).start()
        h.feed_amqp(events[:200])
        h.wait_done(timeout=60)
        server.kill()
        h.feed_amqp(events[200:])
        d.wait_log("redis down since")
        t0 = time.monotonic()
        server.start()                  # PING answers LOADING until the data is in
        print("loaded in %.1f s" % (time.monotonic() - t0))
        refused = [line for line in d.current_log().splitlines()
                   if "refused the configuration" in line]
        assert not refused, refused
        h.wait_done(timeout=60)
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def test_rabbitmq_restarted_mid_stream(harness, daemons, rabbit, engine):
    """The AMQP source and the hooks publisher both reconnect; Kafka events
    arrive while RabbitMQ is down, AMQP events once it is back."""
    h = harness(kafka=True, amqp=True, redis_engine=engine)
    events = make_stream(4000, seed=43, clusters=list(range(10)), tag="rq")
    kafka_events, amqp_events = split(events, range(5))
    half_k, half_a = len(kafka_events) // 2, len(amqp_events) // 2
    h.feed_amqp(amqp_events[:half_a])
    d = h.daemon(daemons).start()
    h.feed_kafka(kafka_events[:half_k])
    h.wait_progress(0.3)
    before = len(h.hook_ids)
    rabbit.stop_server()
    h.feed_kafka(kafka_events[half_k:])
    time.sleep(1)
    assert d.running(), d.log_tail()
    rabbit.start()
    h.feed_amqp(amqp_events[half_a:])
    h.wait_done(timeout=180)
    assert before < len(h.oracle.triggers)
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert h.lag() == 0


def assigned(d):
    """The partition count of the daemon's latest assignment (None before)."""
    found = re.findall(r"(assigned|revoked|lost) (\d+) partitions", d.current_log())
    if not found:
        return None
    kind, n = found[-1]
    return int(n) if kind == "assigned" else 0


# Kafka's faults: the engine does there what the tests above check on both;
# on the module only, for the time of the suite.
ON_THE_MODULE_ONLY = pytest.mark.parametrize("engine", ["module"])


@ON_THE_MODULE_ONLY
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_two_daemons_in_one_group_one_goes(harness, daemons, sig, engine):
    h = harness(kafka=True, redis_engine=engine)
    events = make_stream(4000, seed=44, clusters=list(range(8)), tag="g%d" % sig)
    d1 = h.daemon(daemons, "relationd-1").start()
    d2 = h.daemon(daemons, "relationd-2").start()
    wait_until(lambda: assigned(d1) == 2 and assigned(d2) == 2, timeout=60,
               message=lambda: "assignments %s %s\n%s\n%s" % (
                   assigned(d1), assigned(d2), d1.log_tail(), d2.log_tail()))
    h.feed_kafka(events[:2500])
    h.wait_progress(0.3)
    before = len(h.hook_ids)
    if sig == signal.SIGTERM:
        assert d2.stop(sig) == 0, d2.log_tail()
    else:
        assert d2.kill() == -signal.SIGKILL
    h.feed_kafka(events[2500:])           # work on every partition after it went
    wait_until(lambda: assigned(d1) == 4, timeout=60,
               message=lambda: "relationd-1 did not take over the 4 partitions\n" + d1.log_tail())
    h.wait_done(timeout=180)
    assert before < len(h.oracle.triggers), "the stream ended before relationd-2 went"
    h.check()
    assert d1.stop() == 0, d1.log_tail()
    assert h.lag() == 0


@ON_THE_MODULE_ONLY
def test_kafka_down_mid_stream(harness, daemons, engine):
    """Every Kafka broker down while a stream is being consumed (kafka_mock
    takes its brokers down on SIGUSR1, up on SIGUSR2): the daemon stays up,
    says Kafka is down, and finishes the stream exactly once it is back."""
    h = harness(kafka=True, redis_engine=engine)
    events = make_stream(3000, seed=45, clusters=list(range(8)), tag="kd")
    d = h.daemon(daemons).start()
    h.feed_kafka(events)
    h.wait_progress(0.2)
    h.kafka.proc.send_signal(signal.SIGUSR1)
    d.wait_log("kafka down since", timeout=60)
    # librdkafka's errors once each, with what they mean (not its raw FAIL lines too)
    d.wait_log("a broker connection failed (librdkafka reconnects by itself)", timeout=30)
    assert 'msg="FAIL' not in d.current_log(), d.log_tail()
    time.sleep(1)
    assert d.running(), d.log_tail()
    h.kafka.proc.send_signal(signal.SIGUSR2)
    h.wait_done(timeout=180)
    d.wait_log("kafka back after", timeout=60)
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert h.lag() == 0


@pytest.mark.parametrize("source", ["kafka", "amqp"])
def test_kill9_while_batches_overlap(harness, daemons, rabbit, source, engine):
    """The hooks broker frozen (SIGSTOP) while a backlog drains: application
    goes on (the hook's deliverer waits for its confirms) and the triggers of
    several batches wait in the hook's backlog in Redis when the daemon is
    killed; after a restart every statistic counts each event once and every
    trigger arrives. (The AMQP source is on the frozen broker too: a prefetch
    of 10 batches puts enough deliveries in the daemon's socket beforehand,
    and their acks wait with the broker.) Before the per-hook backlogs, the
    batches in flight waited for the confirms with their triggers in the
    outbox."""
    h = harness(kafka=source == "kafka", amqp=source == "amqp", engine={"batch_size": 40},
                prefetch=400, redis_engine=engine)
    events = make_stream(1500, seed=47, clusters=list(range(6)), tag="ov" + source)
    if source == "kafka":
        h.feed_kafka(events)
    else:
        h.feed_amqp(events)
    d = h.daemon(daemons).start()
    h.wait_progress(0.2)
    vm = [pid for pid in rabbit.vm_pids if pid_alive(pid)]
    for pid in vm:
        os.kill(pid, signal.SIGSTOP)
    try:
        # Applying stops once what the daemon could take is applied ...
        last = [-1.0]

        def settled():
            now = h.applied()
            done = now == last[0]
            last[0] = now
            return done
        wait_until(settled, timeout=30, interval=0.5, message="applying never stopped")
        # ... and then the triggers of several batches are undelivered, kept in
        # the hook's backlog (more than one batch of events can leave).
        assert hook_backlog(h.redis, h.names.prefix + "{hook:default}") > 2 * 40
        assert d.kill() == -signal.SIGKILL
    finally:
        for pid in vm:
            os.kill(pid, signal.SIGCONT)
    d.start()
    h.wait_done(timeout=180)
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert h.lag() == 0


def _oom(r, engine=None):
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", "1")
    return lambda: r.config_set("maxmemory", "0")


def _misconf(r, engine=None):
    # a snapshot that cannot be written (no file can be created in /proc)
    # makes Redis refuse writes with MISCONF until a snapshot succeeds
    saved = r.config_get("dir")["dir"]
    r.config_set("save", "3600 1")
    r.config_set("dir", "/proc")
    r.bgsave()
    wait_until(lambda: r.info("persistence")["rdb_last_bgsave_status"] == "err", timeout=10)

    def lift():
        r.config_set("dir", saved)
        r.bgsave()
        wait_until(lambda: r.info("persistence")["rdb_last_bgsave_status"] == "ok", timeout=10)
    return lift


# the commands that apply events, per engine (redis.engine)
APPLY_COMMANDS = {"function": ["fcall"], "module": ["relationd.apply", "relationd.apply2"]}


def _noperm(r, engine):
    denied = APPLY_COMMANDS[engine]
    r.acl_setuser("relationd", enabled=True, passwords=["+s3cret"], keys=["*"], channels=["*"],
                  commands=["+@all"] + ["-" + c for c in denied])
    return lambda: r.acl_setuser("relationd", enabled=True, commands=["+" + c for c in denied])


def _noperm_xadd(r, engine):
    # the events apply, their triggers cannot enter the hook's backlog: the
    # appends sent with the next batch's calls fail, and are retried alone
    r.acl_setuser("relationd", enabled=True, passwords=["+s3cret"], keys=["*"], channels=["*"],
                  commands=["+@all", "-xadd"])
    return lambda: r.acl_setuser("relationd", enabled=True, commands=["+xadd"])


@pytest.mark.parametrize("refusal,code", [(_oom, "OOM"), (_misconf, "MISCONF"), (_noperm, "NOPERM"),
                                          (_noperm_xadd, "NOPERM")],
                         ids=["oom", "misconf", "noperm", "noperm-xadd"])
def test_redis_refusing_commands_is_waited_out(harness, daemons, rdb, redis_proc, refusal, code,
                                               engine):
    """Out of memory, a failed snapshot, an ACL user without the engine's
    command (FCALL, or the module's relationd.apply and apply2), or without
    XADD (the hook's backlog): Redis refuses every call, or every append. These are Redis's state, not the events' fault: the
    daemon says so and retries; nothing is dead-lettered, nothing
    acknowledged; once Redis accepts again every event is applied once."""
    server = Server(args=["--enable-protected-configs", "yes"], module=engine == "module")
    server.start()
    try:
        r = redis.Redis(port=server.port, decode_responses=True)
        r.acl_setuser("relationd", enabled=True, passwords=["+s3cret"], keys=["*"],
                      channels=["*"], commands=["+@all"])
        h = harness(kafka=False, amqp=True, redis_server=server, redis_engine=engine,
                    redis_url="redis://relationd:s3cret@127.0.0.1:%d/0" % server.port)
        events = make_stream(600, seed=48, clusters=list(range(3)), tag="rf" + code)
        d = h.daemon(daemons).start()
        h.feed_amqp(events[:200])
        h.wait_done(timeout=60)
        lift = refusal(r, engine)
        h.feed_amqp(events[200:])
        d.wait_log(code)
        applied = h.applied()
        time.sleep(1.5)
        assert d.running(), d.log_tail()
        assert h.applied() == applied, "events applied while Redis refused"
        h.dlx.drain(0.2)
        assert h.dlx.messages == [], "a valid event was dead-lettered"
        assert "refused" not in d.current_log(), d.log_tail()
        lift()
        h.wait_done(timeout=120)
        h.check()
        h.dlx.drain(0.2)
        assert h.dlx.messages == []
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


@pytest.mark.parametrize("suffix", ["tomb", "out"])
def test_a_redis_error_of_any_kind_is_retried_not_dead_lettered(harness, daemons, rdb,
                                                                 redis_proc, suffix, engine):
    """A key of the wrong type in the way (foreign data under the prefix):
    Redis answers WRONGTYPE, an error the engine does not know. Only the
    engine's own refusals are the event's fault; this one is retried until an
    operator removes the key, and nothing is lost or dead-lettered. The
    tombstone of a new edge is read before anything is written; the outbox is
    written before the side's hash, and a call stopped there is made again in
    full (the event key joins the side's window last)."""
    from brokers import profiles_of
    server = Server(module=engine == "module")
    server.start()
    try:
        h = harness(kafka=False, amqp=True, redis_server=server, redis_engine=engine)
        events = make_stream(600, seed=49, clusters=list(range(6)), tag="wt" + suffix)
        d = h.daemon(daemons).start()
        h.feed_amqp(events[:200])
        h.wait_done(timeout=60)
        # a side the events still to come create (its keys hold nothing yet),
        # and the counterpart of its first event
        rel, side, profile = sorted(profiles_of(events[200:]) - profiles_of(events[:200]))[0]
        first = next(e.body for e in events[200:] if e.body["relation"] == rel and
                     str(e.body["profile_a" if side == "direct" else "profile_b"]) == profile)
        cp = str(first["profile_b" if side == "direct" else "profile_a"])
        key = "%s{%s:%s:%s}:%s" % (h.names.prefix, rel, side[0], profile,
                                   "tomb:" + cp if suffix == "tomb" else "out")
        r = redis.Redis(port=server.port)
        r.delete(key)
        if suffix == "tomb":
            r.hset(key, "foreign", "data")     # not a string
        else:
            r.set(key, "not a hash")
        h.feed_amqp(events[200:])
        d.wait_log("WRONGTYPE")
        time.sleep(1)
        assert d.running(), d.log_tail()
        h.dlx.drain(0.2)
        assert h.dlx.messages == [], "a valid event was dead-lettered"
        assert "refused" not in d.current_log(), d.log_tail()
        r.delete(key)
        h.wait_done(timeout=120)
        h.check()
        h.dlx.drain(0.2)
        assert h.dlx.messages == []
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def attach_counts(h, direction):
    """{event id: the side's edge count in its attach trigger} of the
    direction's attach triggers the hooks received."""
    counts = {}
    for _, _, body in h.hooks.messages:
        t = json.loads(body)
        if t["event_type"] == "relation_%s_attach" % direction:
            counts[t["event_data"]["source_event"]["id"]] = t["event_data"]["stats"]["count"]
    return counts


def test_a_side_s_events_keep_their_order_past_a_failed_call(harness, daemons, engine):
    """The first event of a side fails (a foreign key in its way: its edge's
    tombstone), while later events of the same side, on other edges, are
    pipelined behind it. None of them may be applied before it: the side is
    fenced until the failed call is made again. Each trigger's statistics then
    show the events in their order: the second attach sees two edges."""
    from brokers import Event
    server = Server(module=engine == "module")
    server.start()
    try:
        h = harness(kafka=False, amqp=True, redis_server=server, redis_engine=engine)
        tag = "fence%d" % os.getpid()
        a = "m-" + tag

        def attach(i, b, profit):
            return Event(0, {"id": "%s-%d" % (tag, i), "op": "attach", "relation": "loyal",
                             "profile_a": a, "profile_b": b, "weights": {"profit": profit}})
        events = [attach(1, "c1-" + tag, 10), attach(2, "c2-" + tag, 20),
                  attach(3, "c3-" + tag, 30)]
        r = redis.Redis(port=server.port, decode_responses=True)
        side = "%s{loyal:d:%s}:side" % (h.names.prefix, a)
        in_the_way = "%s{loyal:d:%s}:tomb:c1-%s" % (h.names.prefix, a, tag)
        r.hset(in_the_way, "foreign", "data")
        h.feed_amqp(events)                   # queued first: one batch, one pipeline
        d = h.daemon(daemons).start()
        d.wait_log("WRONGTYPE")
        time.sleep(1.0)                       # retries under way
        edges = [f for f, _ in r.hscan_iter(side, match="@*")]
        assert edges == [], "events applied before the failed one: %s" % edges
        assert d.running(), d.log_tail()
        r.delete(in_the_way)
        h.wait_done(timeout=60)
        h.check()                             # each trigger as the oracle has it, in order
        counts = attach_counts(h, "direct")
        assert counts == {"%s-1" % tag: 1, "%s-2" % tag: 2, "%s-3" % tag: 3}, counts
        assert not r.hexists(side, "#fence"), "the fence outlived the retry"
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def test_an_event_held_by_the_fence_on_one_side_holds_its_other_side(harness, daemons,
                                                                      engine):
    """The fence across sides: event 1 (a0-b0) fails on b0 (a foreign key in
    its way: its outbox) after writing a0, which fences both a0 and b0. Event 2 (a0-b2)
    is then refused on a0 by the fence; event 3 (a1-b2), behind it in the
    same pipeline, must not be applied on b2 before event 2: b2's triggers
    show the events in their order (event 3 sees event 2's edge)."""
    from brokers import Event
    server = Server(module=engine == "module")
    server.start()
    try:
        h = harness(kafka=False, amqp=True, redis_server=server, redis_engine=engine)
        tag = "xfence%d" % os.getpid()

        def attach(i, a, b, profit):
            return Event(0, {"id": "%s-%d" % (tag, i), "op": "attach", "relation": "loyal",
                             "profile_a": "%s-%s" % (a, tag), "profile_b": "%s-%s" % (b, tag),
                             "weights": {"profit": profit}})
        events = [attach(1, "a0", "b0", 10), attach(2, "a0", "b2", 20),
                  attach(3, "a1", "b2", 30)]
        r = redis.Redis(port=server.port, decode_responses=True)
        in_the_way = "%s{loyal:r:b0-%s}:out" % (h.names.prefix, tag)
        r.set(in_the_way, "not a hash")
        h.feed_amqp(events)                   # queued first: one batch, one pipeline
        d = h.daemon(daemons).start()
        d.wait_log("WRONGTYPE")
        time.sleep(1.0)                       # retries under way
        b2 = "%s{loyal:r:b2-%s}:side" % (h.names.prefix, tag)
        edges = [f for f, _ in r.hscan_iter(b2, match="@*")]
        assert edges == [], "events applied on b2 before the one held: %s" % edges
        r.delete(in_the_way)
        h.wait_done(timeout=60)
        h.check()                             # each trigger as the oracle has it, in order
        counts = attach_counts(h, "reverse")
        assert counts == {"%s-1" % tag: 1, "%s-2" % tag: 1, "%s-3" % tag: 2}, counts
        for k in r.scan_iter(match=h.names.prefix + "*:side"):
            assert not r.hexists(k, "#fence"), "the fence outlived the retry on " + k
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def test_relationctl_apply_stops_a_side_at_its_failed_event(ctl, rdb, tmp_path, engine):
    """relationctl apply: the failed event's side takes nothing after it (the
    run ends with the error); run again once the key is gone, every event is
    applied in order."""
    ctl.redis_engine = engine
    cfg = ctl.config([A.REL_SALES])
    events = [{"id": "o%d" % i, "op": "attach", "relation": "sales", "profile_a": "m",
               "profile_b": "c%d" % i, "weights": {"qty": i}} for i in (1, 2, 3)]
    prefix = json.load(open(cfg))["redis"].get("key_prefix", "rel:")
    rdb.hset("%s{sales:d:m}:tomb:c1" % prefix, "foreign", "data")
    first = ctl.apply(cfg, events)
    assert first.returncode == 1 and "WRONGTYPE" in first.stderr, first.stderr
    assert [f for f, _ in rdb.hscan_iter("%s{sales:d:m}:side" % prefix, match="@*")] == []
    rdb.delete("%s{sales:d:m}:tomb:c1" % prefix)
    again = ctl.apply(cfg, events)
    assert again.returncode == 0, again.stderr
    counts = [t["event_data"]["stats"]["count"] for t in again.triggers
              if t["event_type"] == "relation_direct_attach"]
    assert counts == [1, 2, 3], counts
    assert not rdb.hexists("%s{sales:d:m}:side" % prefix, "#fence")


# the command that loads the configuration's library, per engine
LOAD_COMMANDS = {"function": "function|load", "module": "relationd.load"}
LOAD_NAMES = {"function": "FUNCTION LOAD", "module": "relationd.load"}


def test_a_function_load_refused_while_the_library_is_there(harness, daemons, tmp_path, engine):
    """A FUNCTION LOAD (the module: relationd.load) refused (a user without
    the permission, or a server still loading its data after a restart)
    while the library (the module's configuration) is there: the
    calls work, so the batches go on, each with its own replies. (The
    refused load once failed its batch without reading the batch's replies,
    and the next batch in that slot took them for its own: triggers went
    missing and outbox entries stayed.)"""
    import subprocess
    from conftest import RELATIONCTL
    server = Server(module=engine == "module")
    server.start()
    try:
        r = redis.Redis(port=server.port, decode_responses=True)
        r.acl_setuser("relationd", enabled=True, passwords=["+s3cret"], keys=["*"],
                      channels=["*"], commands=["+@all", "-" + LOAD_COMMANDS[engine]])
        h = harness(kafka=False, amqp=True, redis_server=server, redis_engine=engine,
                    redis_url="redis://relationd:s3cret@127.0.0.1:%d/0" % server.port)
        # the library, loaded by an administrator (the default user)
        admin = json.loads(json.dumps(h.config))
        admin["redis"]["url"] = "redis://127.0.0.1:%d/0" % server.port
        admin_path = tmp_path / "admin.json"
        admin_path.write_text(json.dumps(admin))
        out = subprocess.run([RELATIONCTL, "-c", str(admin_path), "apply", "-"], input="",
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        if engine == "function":
            assert r.function_list(), "the library is not there"
        d = h.daemon(daemons).start()
        # connections cut under traffic: each new one sends the load ahead of
        # a batch, and the refusal comes back with the batch's replies behind it
        for part in range(6):
            h.feed_amqp(make_stream(300, seed=70 + part, clusters=[part], tag="fl%d" % part))
            time.sleep(0.3)
            r.client_kill_filter(user="relationd")
        h.wait_done(timeout=90)
        h.check()
        assert LOAD_NAMES[engine] in d.current_log() and "NOPERM" in d.current_log(), \
            d.log_tail()
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def test_a_stop_while_redis_refuses_commits_the_batches_already_through(harness, daemons,
                                                                        rabbit, engine):
    """SIGTERM while Redis refuses the batch in hand (out of memory): the
    batches before it, applied, published and cleared from the outbox, are
    still committed (their offsets lie below the batch in hand); only the
    batch in hand is delivered again. Batches stay in flight here because
    RabbitMQ blocks the hooks (a disk alarm) until Redis refuses."""
    server = Server(args=["--enable-protected-configs", "yes"], module=engine == "module")
    server.start()
    try:
        r = redis.Redis(port=server.port, decode_responses=True)
        h = harness(kafka=True, redis_server=server, redis_engine=engine)
        # batches of 10: the first 200 events fill the ring of batches in flight
        cfg = dict(h.config, engine=dict(h.config.get("engine", {}), shutdown_timeout_ms=3000,
                                         batch_size=10))
        first = make_stream(200, seed=97, clusters=[0, 1, 2, 3], tag="sd1")
        more = make_stream(100, seed=98, clusters=[0, 1, 2, 3], tag="sd2")
        with rabbit.disk_alarm():
            h.feed_kafka(first)
            d = h.daemon(daemons, config=cfg).start()
            last = {}

            def settled():
                now = h.applied()
                stable = last.get("v") == now and time.monotonic() - last["t"] >= 1.0
                if last.get("v") != now:
                    last.update(v=now, t=time.monotonic())
                return stable and now > 0
            wait_until(settled, timeout=60, interval=0.1, message=lambda: d.log_tail())
            applied = h.applied()
            lift = _oom(r)
            h.feed_kafka(more)
        # the hooks unblocked: the daemon takes the next batch, which Redis refuses
        d.wait_log("OOM")
        d.stop(timeout=60)
        lag = committed_lag(h.kafka.bootstrap, h.names.group, h.topics[0])
        committed = len(first) + len(more) - lag
        # all but the batch in hand (applied or not, it is delivered again
        # and counted once)
        assert committed >= applied - 10, (
            "%d events applied, only %d committed\n%s" % (applied, committed, d.log_tail()))
        # and the rest once Redis accepts again: each event counted once
        lift()
        d.start()
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()


def daemon_sockets_to(pid, port):
    """The local ports of the TCP connections process pid has to
    127.0.0.1:port (ss -tnp)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True, check=True).stdout
    return [int(line.split()[2].rsplit(":", 1)[1]) for line in out.splitlines()
            if "pid=%d," % pid in line]


def test_amqp_connection_aborted_while_redis_stalls_loses_no_trigger(harness, daemons, rabbit,
                                                                    engine):
    """A backlog on the AMQP queue; Redis pauses every client (CLIENT PAUSE
    ALL) while a batch is applied and the next is sent behind it, and
    meanwhile the daemon's connections to RabbitMQ are aborted (ss -K): when
    Redis answers, the oldest batch is finished, its ack fails, the batch in
    hand (applied: Redis took its calls) is dropped and the connection
    opened again; RabbitMQ delivers the unacked messages again, to the same
    process. Their events are duplicates whose triggers are still in the
    outbox: every trigger arrives (none counted as in hand by the dropped
    batch), the state is exact, the outbox ends empty."""
    h = harness(amqp=True, redis_engine=engine)
    h.config["engine"]["batch_size"] = 32
    events = make_stream(3000, seed=61, clusters=list(range(12)), tag="ab")
    h.feed_amqp(events)
    d = h.daemon(daemons).start()
    h.wait_progress(0.15)
    pauser = redis.Redis(port=h.redis.connection_pool.connection_kwargs["port"])
    aborted = []
    try:
        for _ in range(3):          # three stalls, so that one catches a batch in hand
            pauser.execute_command("CLIENT", "PAUSE", 1200, "ALL")
            time.sleep(0.6)         # the daemon waits on Redis now
            for sport in daemon_sockets_to(d.proc.pid, rabbit.port):
                subprocess.run(["ss", "-K", "src", "127.0.0.1:%d" % sport, "dst",
                                "127.0.0.1:%d" % rabbit.port], capture_output=True, check=True)
                aborted.append(sport)
            time.sleep(1.5)
            if h.lag() == 0:
                break
    finally:
        pauser.close()
    assert aborted, "no connection of the daemon to RabbitMQ was found to abort"
    h.wait_done(timeout=120)
    h.check()
    left = sum(h.redis.hlen(k) for k in h.redis.scan_iter(match=h.names.prefix + "*:out"))
    assert left == 0, "%d outbox records left behind (triggers never rendered)\n%s" % (
        left, d.log_tail(40))
    log = d.log()
    assert "reconnect" in log or "connection" in log, d.log_tail(40)
    assert d.stop() == 0, d.log_tail()
