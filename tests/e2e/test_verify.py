"""relationctl verify and rebuild: statistics recomputed from the stored
edges and compared (each differing side printed with both values, exit 1),
and written again from the edges, atomically per side, also while events
are being applied."""

import json
import random
import subprocess

import test_apply as A
from conftest import RELATIONCTL, loads


def run(cfg, *args):
    return subprocess.run([RELATIONCTL, "-c", cfg] + list(args), capture_output=True, text=True,
                          timeout=120)


def stream(ctl, seed=5150, n=3000):
    rng = random.Random(seed)
    relations = [A.REL_SALES, A.REL_PEERS]
    cfg = ctl.config(relations, engine=dict(A.HUGE_TTL, dedup_ids=10000))
    events = A.gen_events(rng, n)
    model = A.Model(relations)
    for e in events:
        model.apply(e)
    return cfg, events, model


def all_sides_equal_the_model(ctl, rdb, cfg, model):
    for rel in ("sales", "peers"):
        pa, pb = A.POOLS[rel]
        for side, pool in (("direct", pa), ("reverse", pb)):
            for prof in pool:
                assert A.canon(ctl.stats(cfg, rel, side, prof)) == \
                    A.canon(model.stats(rel, side, prof)), (rel, side, prof)
                A.check_redis_side(rdb, model, rel, side, prof)


def test_verify_finds_what_was_broken_and_rebuild_repairs_it(ctl, rdb):
    cfg, events, model = stream(ctl)
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
    all_sides_equal_the_model(ctl, rdb, cfg, model)


def test_rebuild_while_events_are_applied(ctl, rdb, tmp_path):
    cfg, events, model = stream(ctl, seed=6060, n=6000)
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
    all_sides_equal_the_model(ctl, rdb, cfg, model)


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
