"""relationctl verify and rebuild: statistics recomputed from the stored
edges and compared (each differing side printed with both values, exit 1),
and written again from the edges, atomically per side, also while events
are being applied."""

import json
import subprocess

import test_apply as A
from conftest import RELATIONCTL, loads


def run(cfg, *args):
    return subprocess.run([RELATIONCTL, "-c", cfg] + list(args), capture_output=True, text=True,
                          timeout=120)


def test_verify_finds_what_was_broken_and_rebuild_repairs_it(ctl, rdb):
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


def test_rebuild_while_events_are_applied(ctl, rdb, tmp_path):
    cfg, events, model = A.model_stream(ctl, 6060, 6000)
    assert ctl.apply(cfg, events[:2000]).returncode == 0
    path = tmp_path / "rest.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events[2000:]))
    cfg4 = json.loads(open(cfg).read())
    cfg4["engine"]["batch_size"] = 4
    cfg4_path = tmp_path / "slow.json"
    cfg4_path.write_text(json.dumps(cfg4))
    applying = subprocess.Popen([RELATIONCTL, "-c", str(cfg4_path), "apply", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rounds = overlapped = 0
    while applying.poll() is None or rounds < 2:
        during = applying.poll() is None
        for rel in ("sales", "peers"):
            out = run(cfg, "rebuild", rel)
            assert out.returncode == 0, out.stderr
        rounds += 1
        overlapped += during and applying.poll() is None
    _, err = applying.communicate(timeout=120)
    assert applying.returncode == 0, err
    assert overlapped >= 1, "no rebuild ran while events were applied"
    for rel in ("sales", "peers"):
        out = run(cfg, "verify", rel)
        assert out.returncode == 0, out.stdout[:2000]
    A.check_every_side(ctl, rdb, cfg, model)


def test_verify_arguments(ctl, rdb):
    cfg = ctl.config([A.REL_SALES])
    out = run(cfg, "verify", "nope")
    assert out.returncode == 2 and 'unknown relation "nope"' in out.stderr
    out = run(cfg, "rebuild", "sales", "sideways")
    assert out.returncode == 2 and "side must be direct or reverse" in out.stderr
    out = run(cfg, "verify", "sales")
    assert out.returncode == 0 and "sides 0, differing 0" in out.stderr


def test_a_reload_that_leaves_statistics_behind_is_said_and_rebuild_catches_up(harness,
                                                                               daemons):
    """purchases gains save_amount and save_top by a reload: the daemon warns,
    naming the rebuild; verify reports the sides until rebuild runs; then
    Redis holds what the full definition gives (the oracle's state)."""
    import copy
    from brokers import make_stream
    h = harness(amqp=True)
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
                                                                          redis_proc, tmp_path):
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

    h = harness(amqp=True)
    without = copy.deepcopy(h.config)
    loyal = without["relations"][0]
    assert loyal["short"] == "loyal"
    loyal["properties"] = [p for p in loyal["properties"] if p["short"] != "profit"]
    loyal["thresholds"] = [t for t in loyal["thresholds"] if t.get("property") != "profit"]
    d = h.daemon(daemons, config=without).start()

    oracle_without = Oracle(tmp_path, redis_proc.url, "w%s:" % h.names.uid,
                            without["relations"], name="oracle-without-profit")
    oracle_without.apply(first)
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
