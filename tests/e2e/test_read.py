"""The read side: `relationctl edges` of every side after a randomized stream
equals the reference model's edges (weights as in triggers, the
counterpart's database, the last version), on one server and on hostile
profile ids; unknown relation or side exits 2 naming it."""

import random
import subprocess

import pytest

import test_apply as A
from conftest import RELATIONCTL, loads


def edges(cfg, rel, side, prof):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "edges", rel, side, str(prof)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [loads(line) for line in out.stdout.splitlines()]


def model_edges(model, rel, side, prof):
    rd = model.rels[rel]
    out = []
    for (r, a, b), e in model.edges.items():
        if r != rel or (a if side == "direct" else b) != prof:
            continue
        cp = b if side == "direct" else a
        out.append({"profile_id": cp, "database": rd.db_b if side == "direct" else rd.db_a,
                    "weights": model.weights_out(rel, e["w"]),
                    "version": None if e["v"] is None else str(e["v"])})
    return out


@pytest.mark.parametrize("pools", [A.POOLS, A.HOSTILE_POOLS], ids=["plain", "hostile-ids"])
def test_edges_of_every_side_equal_the_model(ctl, rdb, pools):
    rng = random.Random(4242)
    relations = [A.REL_SALES, A.REL_PEERS]
    cfg = ctl.config(relations, engine=dict(A.HUGE_TTL, dedup_ids=10000))
    events = A.gen_events(rng, 3000, pools)
    model = A.Model(relations)
    for e in events:
        model.apply(e)
    res = ctl.apply(cfg, events)
    assert res.returncode == 0, res.stderr
    seen = 0
    for rel in ("sales", "peers"):
        pa, pb = pools[rel]
        for side, pool in (("direct", pa), ("reverse", pb)):
            for prof in pool:
                got = edges(cfg, rel, side, prof)
                ids = [g["profile_id"] for g in got]
                assert len(ids) == len(set(ids)), "an edge printed twice"
                want = model_edges(model, rel, side, prof)
                key = lambda x: x["profile_id"].encode()   # noqa: E731
                assert A.canon(sorted(got, key=key)) == A.canon(sorted(want, key=key)), \
                    (rel, side, prof)
                seen += len(got)
    assert seen > 50


def test_edges_of_a_side_without_edges_and_bad_arguments(ctl, rdb):
    cfg = ctl.config([A.REL_SALES])
    assert edges(cfg, "sales", "direct", "nobody") == []
    for args, msg in ((["nope", "direct", "x"], 'unknown relation "nope"'),
                      (["sales", "sideways", "x"], 'side must be direct or reverse, not "sideways"')):
        out = subprocess.run([RELATIONCTL, "-c", cfg, "edges"] + args, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 2 and msg in out.stderr, out


def test_edges_of_a_large_side_come_in_pages_each_once(ctl, rdb):
    """2,000 edges on one side: several HSCAN pages, every edge once."""
    cfg = ctl.config([A.REL_SALES])
    events = [{"id": "big-%d" % i, "op": "attach", "relation": "sales", "profile_a": "hub",
               "profile_b": "c%d" % i, "weights": {"qty": i}} for i in range(2000)]
    res = ctl.apply(cfg, events)
    assert res.returncode == 0, res.stderr
    got = edges(cfg, "sales", "direct", "hub")
    assert sorted(g["profile_id"] for g in got) == sorted("c%d" % i for i in range(2000))
    assert all(g["weights"] == {"qty": int(g["profile_id"][1:])} and g["version"] is None and
               g["database"] == "customers" for g in got)
