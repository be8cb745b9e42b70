"""relationctl verify and rebuild: statistics recomputed from the stored
edges and compared (each differing side printed with both values, exit 1),
and written again from the edges, atomically per side, also while events
are being applied; a layout-2 side by layout 2's rules. Every test runs
through both engines (`redis.engine` function and module; the servers the
tests start load the module for the module's run)."""

import json
import subprocess

import pytest
import redis

import test_apply as A
from conftest import RELATIONCTL, loads


def run(cfg, *args):
    return subprocess.run([RELATIONCTL, "-c", cfg] + list(args), capture_output=True, text=True,
                          timeout=120)


def test_verify_finds_what_was_broken_and_rebuild_repairs_it(ctl, rdb, engine):
    ctl.redis_engine = engine            # through both engines
    cfg, events, model = A.model_stream(ctl, 5150, 3000)
    assert ctl.apply(cfg, events).returncode == 0
    for rel in ("sales", "peers"):
        out = run(cfg, "verify", rel)
        assert out.returncode == 0 and out.stdout == "", out
        assert "differing 0" in out.stderr and "sides " in out.stderr
    # break four sides, each its own way
    rdb.hincrby("rel:{sales:d:m1}:side", "count", 1)
    rdb.hincrby("rel:{sales:r:c1}:side", "profit:total", 250000)       # +0.25
    top = "rel:{sales:d:m2}:top:qty"
    member = rdb.zrange(top, 0, 0)[0]
    rdb.zadd(top, {member: 999})
    rdb.zadd("rel:{peers:d:p1}:top:w", {"ghost": 1})
    out = run(cfg, "verify", "sales")
    assert out.returncode == 1, out
    got = {(d["relation"], d["side"], d["profile"]): d["differences"]
           for d in map(loads, out.stdout.splitlines())}
    st = model.stats_internal("sales", "direct", "m1")
    assert got[("sales", "direct", "m1")] == {"count": {"stored": st["count"] + 1,
                                                        "edges": st["count"]}}
    total = model.stats_internal("sales", "reverse", "c1")["properties"]["profit"]["total"]
    d = got[("sales", "reverse", "c1")]["profit:total"]
    assert A.canon(d) == A.canon({"stored": A.unfixed(total + 250000), "edges": A.unfixed(total)})
    assert got[("sales", "direct", "m2")] == {"qty:top": "differs from the edges"}
    assert len(got) == 3 and "differing 3" in out.stderr
    out = run(cfg, "verify", "peers", "direct", "p1")
    assert out.returncode == 1 and loads(out.stdout)["differences"] == \
        {"w:top": "differs from the edges"}
    # rebuild everything: verify is clean, every side equals the model again
    for rel in ("sales", "peers"):
        out = run(cfg, "rebuild", rel)
        assert out.returncode == 0 and "rebuilt" in out.stderr, out
        assert run(cfg, "verify", rel).returncode == 0
    A.check_every_side(ctl, rdb, cfg, model)


def rebuild_while_applying(cfg, events, tmp_path, *rebuilds, last=None):
    """The events applied by `relationctl apply` in batches of 4 while each
    rebuild (arguments of `relationctl rebuild`) runs round after round, at
    least twice: (rounds, rounds that began and ended while events were being
    applied), after asserting that every command succeeded and that one round
    did. With last=N, N rounds, each begun and ended while events were being
    applied, and the rest of the events applied after the last: no quiet
    round at the end puts right what one beside the events got wrong."""
    path = tmp_path / "applied-meanwhile.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    cfg4 = json.loads(open(cfg).read())
    cfg4["engine"]["batch_size"] = 4
    cfg4_path = tmp_path / "slow.json"
    cfg4_path.write_text(json.dumps(cfg4))
    applying = subprocess.Popen([RELATIONCTL, "-c", str(cfg4_path), "apply", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rounds = overlapped = 0
    while (applying.poll() is None or rounds < 2) if last is None else rounds < last:
        during = applying.poll() is None
        for args in rebuilds:
            out = run(cfg, "rebuild", *args)
            assert out.returncode == 0, out.stderr
            assert "rebuilt" in out.stderr, out.stderr
        rounds += 1
        overlapped += during and applying.poll() is None
    _, err = applying.communicate(timeout=300)
    assert applying.returncode == 0, err
    assert overlapped >= 1, "no rebuild ran while events were applied"
    assert last is None or overlapped == last, \
        "the events ran out during the rebuilds: %d of %d rounds beside them" % (overlapped, last)
    return rounds, overlapped


def test_rebuild_while_events_are_applied(ctl, rdb, tmp_path, engine):
    ctl.redis_engine = engine            # through both engines
    cfg, events, model = A.model_stream(ctl, 6060, 6000)
    assert ctl.apply(cfg, events[:2000]).returncode == 0
    rebuild_while_applying(cfg, events[2000:], tmp_path, ["sales"], ["peers"])
    for rel in ("sales", "peers"):
        out = run(cfg, "verify", rel)
        assert out.returncode == 0, out.stdout[:2000]
    A.check_every_side(ctl, rdb, cfg, model)


HOT_EDGES = 100000


def hot_side_events(rng, n, first, new_cps):
    """n events on the direct side of sales profile "hot", ids from first:
    attach, edit, strengthen and detach of counterparts c000000... (new_cps
    of them, so some do not exist yet), no versions."""
    events = []
    for k in range(n):
        op = rng.choices(["attach", "edit", "strengthen", "detach"], [20, 25, 40, 15])[0]
        ev = {"id": "hot-%07d" % (first + k), "op": op, "relation": "sales",
              "profile_a": "hot", "profile_b": "c%06d" % rng.randrange(new_cps)}
        if op != "detach":
            ev["weights"] = {p: (None if op != "strengthen" and rng.random() < 0.1
                                 else A.gen_value(rng, t, op))
                             for p, t in A.PROPS["sales"].items() if rng.random() < 0.7}
        events.append(ev)
    return events


def hot_side_model(events):
    """The hot side's edges after the events, in units: {counterpart: weights}
    (the semantics of README "Events", as test_apply's Model has them)."""
    edges = {}
    for ev in events:
        cp = ev["profile_b"]
        if ev["op"] == "detach":
            edges.pop(cp, None)
            continue
        w = edges.setdefault(cp, {})
        for p, v in ev.get("weights", {}).items():
            t = A.PROPS["sales"][p]
            if v is None:
                w.pop(p, None)
            elif ev["op"] == "strengthen" and t != "bool":
                w[p] = w.get(p, 0) + (v if t == "int" else A.fixed(v))
            else:
                w[p] = v if t != "float" else A.fixed(v)
    return edges


def check_hot_side(ctl, rdb, cfg, events):
    """The hot side (hot_side_events) in Redis equals the model of events
    (stats, and the README's key layout); verify finds nothing; the
    rebuild's own keys and mark are gone."""
    model = A.Model([A.REL_SALES, A.REL_PEERS])
    model.edges = {("sales", "hot", cp): {"w": w, "v": None}
                   for cp, w in hot_side_model(events).items()}
    assert A.canon(ctl.stats(cfg, "sales", "direct", "hot")) == \
        A.canon(model.stats("sales", "direct", "hot"))
    A.check_redis_side(rdb, model, "sales", "direct", "hot", {"sales": (["hot"], ["c000000"])})
    assert run(cfg, "verify", "sales", "direct", "hot").returncode == 0
    assert not rdb.hexists("rel:{sales:d:hot}:side", "#rebuild")
    assert not [k for k in ("rebuild", "rebuild:top:profit", "rebuild:top:qty")
                if rdb.exists("rel:{sales:d:hot}:" + k)]


def rebuild_calls_slower_than(rdb, micros):
    """The rebuild calls (FCALL of the library's _rebuild function, or the
    module's relationd.rebuild) Redis's SLOWLOG holds, each (duration in µs,
    arguments)."""
    return [(e["duration"], e["command"]) for e in rdb.slowlog_get(-1)
            if ("_rebuild" in str(e["command"]) or "relationd.rebuild" in str(e["command"]))
            and e["duration"] > micros]


def test_a_hot_side_is_rebuilt_in_short_steps_while_events_are_applied_to_it(ctl, rdb,
                                                                           tmp_path, engine):
    """One side with 100,000 edges, its statistics and a top broken, rebuilt
    round after round while a stream of attach/edit/strengthen/detach is
    applied to that very side (edges the rebuild has read, edges it has
    not, new ones, detached ones): afterwards the side equals the model,
    and Redis's SLOWLOG holds no rebuild call over 200 ms: no call held
    Redis for long. (A step takes a millisecond or two, the whole side in
    one call over a second; the margin is for this shared machine, where a
    process may wait tens of milliseconds for a core.)"""
    import random
    ctl.redis_engine = engine            # through both engines
    rng = random.Random(4242)
    cfg, model = A.model_config(ctl)
    bulk = [{"id": "bulk-%06d" % k, "op": "attach", "relation": "sales", "profile_a": "hot",
             "profile_b": "c%06d" % k,
             "weights": {"profit": rng.choice(A.FLOATS), "qty": rng.randint(0, 9),
                         "ok": rng.random() < 0.5}} for k in range(HOT_EDGES)]
    stream = hot_side_events(rng, 15000, 0, HOT_EDGES + 2000)
    bulk_path = tmp_path / "bulk.jsonl"
    bulk_path.write_text("".join(json.dumps(e) + "\n" for e in bulk))
    out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", str(bulk_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert rdb.hlen("rel:{sales:d:hot}:side") > HOT_EDGES
    # broken: what the rebuild has to put right
    rdb.hincrby("rel:{sales:d:hot}:side", "count", 5)
    rdb.hincrby("rel:{sales:d:hot}:side", "profit:total", -250000)
    rdb.zadd("rel:{sales:d:hot}:top:qty", {"ghost": -1})

    slower_than = rdb.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    max_len = rdb.config_get("slowlog-max-len")["slowlog-max-len"]
    rdb.config_set("slowlog-log-slower-than", 200000)
    rdb.config_set("slowlog-max-len", 1024)
    rdb.slowlog_reset()
    try:
        rounds, overlapped = rebuild_while_applying(cfg, stream, tmp_path,
                                                    ["sales", "direct", "hot"], last=2)
        slow = rebuild_calls_slower_than(rdb, 200000)
    finally:
        rdb.config_set("slowlog-log-slower-than", slower_than)
        rdb.config_set("slowlog-max-len", max_len)
    assert not slow, "rebuild calls that held Redis over 200 ms: %r" % [
        (d, c[:120]) for d, c in slow[:5]]
    print("%d rebuilds of %d edges, %d while events were applied" % (rounds, HOT_EDGES,
                                                                      overlapped))

    assert len(hot_side_model(bulk + stream)) > HOT_EDGES * 9 // 10
    check_hot_side(ctl, rdb, cfg, bulk + stream)


def test_a_hot_side_is_rebuilt_in_steps_on_a_cluster(tmp_path, engine):
    """The same on a Redis Cluster of three primaries, smaller (about 13,000
    edges, 130 steps a round): the events applied meanwhile reach the
    rebuild's copy, keys of the side's slot the apply function names itself."""
    import random
    from types import SimpleNamespace
    from conftest import Relationctl
    from redis_cluster import Cluster
    c = Cluster(primaries=3, module=engine == "module")
    try:
        c.start()
        ctl = Relationctl(SimpleNamespace(url=c.url), tmp_path, redis_engine=engine)
        crdb = c.client()
        cfg, _ = A.model_config(ctl)
        rng = random.Random(99)
        bulk = hot_side_events(rng, 25000, 0, 20000)
        stream = hot_side_events(rng, 6000, 25000, 21000)
        assert ctl.apply(cfg, bulk).returncode == 0
        assert crdb.hlen("rel:{sales:d:hot}:side") > 10000
        crdb.hincrby("rel:{sales:d:hot}:side", "qty:total", 7)
        rebuild_while_applying(cfg, stream, tmp_path, ["sales", "direct", "hot"], last=3)
        check_hot_side(ctl, crdb, cfg, bulk + stream)
        crdb.close()
    finally:
        c.stop()




@pytest.fixture()
def hashtable_hashes(rdb):
    """Hashes past 64 fields in Redis's hashtable encoding for the test (the
    server's hash-max-listpack-entries restored after it): an HSCAN of a
    listpack returns every field in one page, whatever COUNT."""
    was = rdb.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"]
    rdb.config_set("hash-max-listpack-entries", 64)
    yield
    rdb.config_set("hash-max-listpack-entries", was)


def test_a_rebuild_stopped_half_way_or_superseded_leaves_the_side_right(ctl, rdb, engine,
                                                                        hashtable_hashes):
    """Steps of a rebuild made by hand (FCALL of the library's _rebuild, or
    the module's relationd.rebuild with the configuration's name, 10 edges a
    step; the side's hash in the hashtable encoding, where HSCAN pages).
    One stopped after its first step: once its copy has
    expired (deleted here, as the expiry would), the next event applied to
    the side removes its marker and its top copies, and the statistics stay
    right. One superseded by `relationctl rebuild` of the side: its next
    step fails with REBUILD and changes nothing."""
    import random
    ctl.redis_engine = engine
    cfg, _ = A.model_config(ctl)
    rng = random.Random(77)
    events = hot_side_events(rng, 900, 0, 400)
    assert ctl.apply(cfg, events[:600]).returncode == 0
    rdb.function_flush()                # the libraries of earlier tests
    out = run(cfg, "rebuild", "sales", "direct", "hot")     # loads the library
    assert out.returncode == 0, out.stderr

    def strings(x):
        return [x] if isinstance(x, str) else [s for y in x or [] for s in strings(y)]
    if engine == "module":
        # the module's name of the configuration is the library's own
        # (relationd_apply_HASH gives relationd_HASH): the library loaded
        # by a rebuild, through the function, of a side that has no edge
        doc = json.load(open(cfg))
        doc["redis"]["engine"] = "function"
        fcfg = cfg + ".function.json"
        with open(fcfg, "w") as f:
            json.dump(doc, f)
        assert run(fcfg, "rebuild", "sales", "direct", "nobody").returncode == 0
    [fn] = [f for f in strings(rdb.function_list()) if f.endswith("_rebuild")]
    if engine == "module":
        call = ["relationd.rebuild", "relationd_" + fn[len("relationd_apply_"):-len("_rebuild")]]
    else:
        call = ["FCALL", fn]
    tag = "rel:{sales:d:hot}"
    keys = [tag + ":side", tag + ":rebuild", tag + ":top:profit", tag + ":top:qty",
            tag + ":rebuild:top:profit", tag + ":rebuild:top:qty"]

    def step(token, cursor):
        return rdb.execute_command(*call, len(keys), *keys, 1, token, cursor, 10)

    cursor, counted = step("stopped", "0")
    assert cursor != "0" and 0 < counted < 100
    assert rdb.hget(tag + ":side", "#rebuild") == "stopped"
    assert 0 < rdb.pttl(tag + ":rebuild") <= 60000
    ttls = [rdb.pttl(tag + ":rebuild:top:" + p) for p in ("profit", "qty")]
    assert any(t != -2 for t in ttls) and all(t == -2 or 60000 < t <= 70000 for t in ttls), ttls
    rdb.delete(tag + ":rebuild")                              # expired
    assert ctl.apply(cfg, events[600:700]).returncode == 0
    assert not rdb.hexists(tag + ":side", "#rebuild")
    assert rdb.keys(tag + ":rebuild*") == []
    check_hot_side(ctl, rdb, cfg, events[:700])

    cursor, _ = step("superseded", "0")
    assert cursor != "0"
    assert ctl.apply(cfg, events[700:800]).returncode == 0
    out = run(cfg, "rebuild", "sales", "direct", "hot")
    assert out.returncode == 0, out.stderr
    with pytest.raises(redis.ResponseError, match="REBUILD rel:{sales:d:hot}:side: stopped"):
        step("superseded", cursor)
    assert ctl.apply(cfg, events[800:]).returncode == 0
    check_hot_side(ctl, rdb, cfg, events)
    assert rdb.keys(tag + ":rebuild*") == []
    assert run(cfg, "verify", "sales", "direct", "hot").returncode == 0


def test_verify_applies_layout2s_rules_to_the_sides_the_engines_write(ctl, rdb, engine):
    """Sides written by each engine in layout 2 verify clean; then each
    broken the way only layout 2 can be: the top's sorted set of a side with
    more edges than the top's limit deleted, one given to a side within its
    limit, a statistic written as 0 (the engines leave it absent)."""
    ctl.redis_engine = engine
    cfg = ctl.config([A.REL_SALES])      # profit: top 3 desc, qty: top 2 asc
    events = [{"id": "b%d" % i, "op": "attach", "relation": "sales", "profile_a": "big",
               "profile_b": "c%d" % i, "weights": {"profit": i + 0.5, "qty": i}}
              for i in range(5)]
    events += [{"id": "s%d" % i, "op": "attach", "relation": "sales", "profile_a": "small",
                "profile_b": "c%d" % i, "weights": {"qty": 10 - i}} for i in range(2)]
    events += [{"id": "z", "op": "attach", "relation": "sales", "profile_a": "zero",
                "profile_b": "c0", "weights": {"profit": 1}}]
    assert ctl.apply(cfg, events).returncode == 0
    key = "rel:{sales:d:%s}:%s"
    assert rdb.exists(key % ("big", "top:profit")) and not rdb.exists(key % ("small", "top:qty"))
    out = run(cfg, "verify", "sales", "direct")
    assert out.returncode == 0 and "differing 0" in out.stderr, out
    rdb.delete(key % ("big", "top:profit"))
    rdb.zadd(key % ("small", "top:qty"), {"c1": 9, "c0": 10})
    assert not rdb.hexists(key % ("zero", "side"), "qty:total")
    rdb.hset(key % ("zero", "side"), "qty:total", 0)
    out = run(cfg, "verify", "sales", "direct")
    assert out.returncode == 1 and "differing 3" in out.stderr, out
    got = {d["profile"]: d["differences"] for d in map(loads, out.stdout.splitlines())}
    assert got == {"big": {"profit:top": "differs from the edges"},
                   "small": {"qty:top": "differs from the edges"},
                   "zero": {"qty:total": "stored as 0, not absent"}}


def test_verify_arguments(ctl, rdb, engine):
    ctl.redis_engine = engine
    cfg = ctl.config([A.REL_SALES])
    out = run(cfg, "verify", "nope")
    assert out.returncode == 2 and 'unknown relation "nope"' in out.stderr
    out = run(cfg, "rebuild", "sales", "sideways")
    assert out.returncode == 2 and "side must be direct or reverse" in out.stderr
    out = run(cfg, "verify", "sales")
    assert out.returncode == 0 and "sides 0, differing 0" in out.stderr


def test_a_reload_that_leaves_statistics_behind_is_said_and_rebuild_catches_up(harness,
                                                                               daemons, engine):
    """purchases gains save_amount and save_top by a reload: the daemon warns,
    naming the rebuild; verify reports the sides until rebuild runs; then
    Redis holds what the full definition gives (the oracle's state)."""
    import copy
    from brokers import make_stream
    h = harness(amqp=True, redis_engine=engine)
    cfg = copy.deepcopy(h.config)
    for p in cfg["relations"][0]["properties"]:
        if p["short"] == "purchases":
            p["save_amount"] = False
            p.pop("save_top")
    cfg["relations"][0]["thresholds"] = [
        t for t in cfg["relations"][0]["thresholds"] if t.get("property") != "purchases"]
    d = h.daemon(daemons, config=cfg).start()
    h.feed_amqp(make_stream(300, seed=121, clusters=[0, 1], tag="rb"))
    h.wait_progress(1.0)
    d.write_config(h.config)            # purchases as the oracle has it
    d.sighup()
    d.wait_log("reloaded")
    assert ("relation loyal, property purchases: save_amount turned on" in d.current_log() and
            "relationctl rebuild loyal" in d.current_log()), d.log_tail()
    out = run(d.config_path, "verify", "loyal")
    assert out.returncode == 1 and "purchases:total" in out.stdout, out
    out = run(d.config_path, "rebuild", "loyal")
    assert out.returncode == 0, out.stderr
    assert run(d.config_path, "verify", "loyal").returncode == 0
    assert not h.state_diff(), h.state_diff()[:5]
    assert d.stop() == 0, d.log_tail()


def test_a_property_added_by_a_reload_is_rebuilt_while_the_daemon_applies(harness, daemons,
                                                                          redis_proc, tmp_path,
                                                                          engine):
    """loyal starts without profit (no property, no threshold on it); a first
    stream is applied. The file gains profit and is reloaded; a second stream
    on the same profiles is applied while `relationctl rebuild loyal` runs
    round after round: no update and no trigger is lost to a rebuild. At the
    end verify is clean, Redis holds the oracle's state (a statistic at 0 and
    none are one: an event writes "0", rebuild leaves the field out) and
    every trigger came exactly once.

    The oracle (relationctl apply under the full definition) cannot leave a
    property out. The first stream is therefore the one a world without
    profit has: profit taken out of every event's weights (under the first
    file an event naming profit is invalid and dead-lettered). Applied under
    the full definition it gives the same edges and profit's statistics are
    all zero: the daemon's state exactly. Its triggers come from a second
    oracle under the daemon's first file (their stats list no profit, and
    threshold indexes, hence trigger ids, follow that file)."""
    import copy
    import threading
    from collections import Counter
    from brokers import Event, Oracle, make_stream, profiles_of

    def reshaped(events, change):
        """Copies of the events with change(body) done (a duplicate stays one
        id and one body)."""
        made = {}
        for e in events:
            if e.body["id"] not in made:
                body = copy.deepcopy(e.body)
                change(body)
                made[e.body["id"]] = Event(e.cluster, body)
        return [made[e.body["id"]] for e in events]

    def no_profit(body):
        body.get("weights", {}).pop("profit", None)

    def later(body):                      # newer than every version of the first stream
        if "version" in body:
            body["version"] += 100000

    clusters = [0, 1, 2, 3]
    first = reshaped(make_stream(1000, seed=131, clusters=clusters, tag="ap1"), no_profit)
    second = reshaped(make_stream(2000, seed=137, clusters=clusters, tag="ap2"), later)
    # the same profiles (so h.sides, read by applied() in the rebuilding
    # thread, gains none while the second stream is fed)
    assert profiles_of(second) <= profiles_of(first)
    assert sum("profit" in e.body.get("weights", {}) for e in second) > 500

    h = harness(amqp=True, redis_engine=engine)
    without = copy.deepcopy(h.config)
    loyal = without["relations"][0]
    assert loyal["short"] == "loyal"
    loyal["properties"] = [p for p in loyal["properties"] if p["short"] != "profit"]
    loyal["thresholds"] = [t for t in loyal["thresholds"] if t.get("property") != "profit"]
    d = h.daemon(daemons, config=without).start()

    oracle_without = Oracle(tmp_path, redis_proc.url, "w%s:" % h.names.uid,
                            without["relations"], name="oracle-without-profit")
    oracle_without.apply(first)
    # the daemon gives profit, which its first file has not, the slot after
    # purchases and approve (PREFIX schema is append-only): the full oracle's
    # edges are packed in the same order
    h.redis.hset(h.oracle.prefix + "schema", "loyal", "purchases,approve,profit")
    h.feed_amqp(first)                    # the full oracle: edges and statistics
    h.oracle.triggers = dict(oracle_without.triggers)   # the daemon's, without profit
    h.wait_done()
    first_triggers = set(h.oracle.triggers)

    d.write_config(h.config)              # profit as the oracle has it
    d.sighup()
    d.wait_log("reloaded")
    # no edge holds profit yet: nothing is out of step
    out = run(d.config_path, "verify", "loyal")
    assert out.returncode == 0, out.stdout[:2000]

    # rebuild loyal round after round while most of the second stream is
    # applied; its last events come after the last round, so that no quiet
    # rebuild at the end puts right what one beside the daemon got wrong
    h.zero_is_missing = True              # a rebuilt side has no statistic at 0
    fed, rest = second[:1600], second[1600:]
    total = len({e.body["id"] for e in first + fed})
    stop, rounds, failed = threading.Event(), [], []

    def rebuild():
        try:
            while not stop.is_set():
                was = h.applied()
                out = run(d.config_path, "rebuild", "loyal")
                rounds.append((was, h.applied()))
                assert out.returncode == 0, out.stderr
        except BaseException as e:        # noqa: BLE001 - reported by the test
            failed.append(e)
    rebuilder = threading.Thread(target=rebuild)
    rebuilder.start()
    try:
        for k in range(0, len(fed), 200):
            if failed:
                break
            h.feed_amqp(fed[k:k + 200])
    finally:
        stop.set()
        rebuilder.join(timeout=120)
    assert not failed, failed[0]
    # the daemon applied events while a rebuild ran, and had more to apply
    overlapped = [(was, now) for was, now in rounds if was < now < total]
    assert overlapped, "no rebuild ran while the daemon applied: %r" % rounds
    print("%d rebuilds, %d while the daemon applied" % (len(rounds), len(overlapped)))
    h.feed_amqp(rest)
    h.wait_done()

    for rel in ("loyal", "refs"):
        out = run(d.config_path, "verify", rel)
        assert out.returncode == 0, out.stdout[:2000]
    assert not h.state_diff(), h.state_diff()
    h.check()                             # every trigger, each body right, nothing else
    h.hooks.drain(0.3)
    times = Counter(loads(body)["event_data"]["id"] for _, _, body in h.hooks.messages)
    assert set(times) == set(h.oracle.triggers)
    again = {t: n for t, n in times.items() if n != 1}
    assert not again, "triggers published more than once: %r" % sorted(again.items())[:5]
    second_triggers = set(h.oracle.triggers) - first_triggers
    assert len(second_triggers) > 1000 and any(
        t["event_data"]["stats"]["properties"]["profit"]["count"] > 0
        for t in map(h.oracle.triggers.get, second_triggers)
        if t["event_data"]["relation"] == "loyal")
    assert d.stop() == 0, d.log_tail()
