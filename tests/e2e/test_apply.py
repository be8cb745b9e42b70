"""End-to-end tests of `relationctl apply` and `relationctl stats` against a
real redis-server, checked against a reference model of what the README describes
written in plain Python (fixed-point integers, dicts, sets). Each test runs
through both engines (`redis.engine` function and module)."""

import copy
import json
import random
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

import layout2
from conftest import Relationctl

MICRO = 10 ** 6
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
SUMMARY_RE = re.compile(r"^applied (\d+), duplicate (\d+), stale (\d+), invalid (\d+)$")
HUGE_TTL = {"tombstone_ttl_s": 5 * 365 * 86400}


@pytest.fixture()
def ctl(redis_proc, tmp_path, engine):
    return Relationctl(redis_proc, tmp_path, redis_engine=engine)


# --------------------------------------------------------------------------
# helpers

def canon(x):
    """A comparable form of a JSON value: numbers compare by exact value
    (int and Decimal alike), bools never compare equal to numbers."""
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, float):
        raise TypeError("binary float in a value that must be exact: %r" % (x,))
    if isinstance(x, (int, Decimal)):
        return ("num", Decimal(x))
    if isinstance(x, dict):
        return {k: canon(v) for k, v in x.items()}
    if isinstance(x, list):
        return [canon(v) for v in x]
    return x


def summary(result):
    m = SUMMARY_RE.match(result.summary or "")
    assert m, "no summary as the last stderr line: %r" % (result.stderr,)
    return tuple(int(g) for g in m.groups())


CANONICAL_RE = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$")


def canonical_number(text):
    """Numbers are written in natural units, shortest form: 250.5, 0, -0.007813
    (never 250.500000, 2.5e2 or -0)."""
    assert CANONICAL_RE.match(text) and text != "-0", "number written as %r" % text
    return Decimal(text)


def loads_canonical(text):
    return json.loads(text, parse_float=canonical_number, parse_int=canonical_number)


def fixed(value):
    """A float weight (a JSON number) in micro-units, half away from zero."""
    d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return int((d * MICRO).to_integral_value(rounding=ROUND_HALF_UP))


def unfixed(micro):
    return Decimal(micro).scaleb(-6)


# --------------------------------------------------------------------------
# the reference model

class RelDef:
    def __init__(self, doc):
        self.short = doc["short"]
        self.db_a = doc["database_a"]
        self.db_b = doc["database_b"]
        self.props = doc.get("properties", [])
        self.ptype = {p["short"]: p["type"] for p in self.props}
        self.thresholds = doc.get("thresholds", [])


class Model:
    """Applies events one at a time, the way the README describes.

    Edge weights: float as integer micro-units, int as int, bool as bool.
    Tombstones never expire (the tests configure a huge TTL)."""

    def __init__(self, relations):
        self.rels = {r["short"]: RelDef(r) for r in relations}
        self.edges = {}      # (rel, a, b) -> {"w": {prop: value}, "v": int | None}
        self.tombs = {}      # (rel, a, b) -> version of the detached edge
        self.seen = set()    # (rel, side, profile, event id)
        self.stale_ids = set()

    # ---- statistics

    def side_edges(self, rel, side, profile):
        out = {}
        for (r, a, b), e in self.edges.items():
            if r != rel:
                continue
            if side == "direct" and a == profile:
                out[b] = e["w"]
            elif side == "reverse" and b == profile:
                out[a] = e["w"]
        return out

    def stats_internal(self, rel, side, profile):
        rd = self.rels[rel]
        edges = self.side_edges(rel, side, profile)
        props = {}
        for p in rd.props:
            vals = {cp: w[p["short"]] for cp, w in edges.items() if p["short"] in w}
            if p["type"] == "bool":
                props[p["short"]] = {"count": sum(1 for v in vals.values() if v is True)}
                continue
            st = {"count": len(vals), "total": sum(vals.values())}
            if "save_top" in p:
                desc = p["save_top"]["order"] == "desc"
                ranked = sorted(vals.items(), key=lambda kv: (kv[1], kv[0].encode()),
                                reverse=desc)
                st["top"] = ranked[:p["save_top"]["limit"]]
            props[p["short"]] = st
        return {"count": len(edges), "properties": props}

    def out_value(self, rel, prop, v):
        t = self.rels[rel].ptype[prop]
        return unfixed(v) if t == "float" else v

    def stats_out(self, rel, st):
        """The JSON shape of `relationctl stats` and of a trigger's stats."""
        rd = self.rels[rel]
        props = {}
        for p in rd.props:
            s = st["properties"][p["short"]]
            o = {"count": s["count"]}
            if p["type"] != "bool":
                if p.get("save_amount"):
                    o["total"] = self.out_value(rel, p["short"], s["total"])
                if "save_top" in p:
                    o["top"] = [{"profile_id": cp, "value": self.out_value(rel, p["short"], v)}
                                for cp, v in s["top"]]
            props[p["short"]] = o
        return {"count": st["count"], "properties": props}

    def stats(self, rel, side, profile):
        return self.stats_out(rel, self.stats_internal(rel, side, profile))

    def weights_out(self, rel, w):
        if w is None:
            return None
        return {p: self.out_value(rel, p, v) for p, v in w.items()}

    # ---- thresholds

    def th_value(self, rel, th, st, w):
        """(internal value or None, output value or None) of a threshold's stat."""
        prop = th.get("property")
        if th["stat"] == "count":
            v = st["count"] if prop is None else st["properties"][prop]["count"]
            return v, v
        t = self.rels[rel].ptype[prop]
        if th["stat"] == "total":
            v = st["properties"][prop]["total"]
            return v, self.out_value(rel, prop, v)
        # edge
        if w is None or prop not in w:
            return None, None
        v = w[prop]
        if t == "bool":
            return int(v), int(v)
        return v, self.out_value(rel, prop, v)

    def th_limit(self, rel, th):
        prop = th.get("property")
        if th["stat"] != "count" and self.rels[rel].ptype[prop] == "float":
            return fixed(th["value"])
        return int(th["value"])

    # ---- events

    def apply(self, ev):
        """Applies one valid event: returns ("applied"|"duplicate"|"stale", triggers)."""
        rel = ev["relation"]
        rd = self.rels[rel]
        a, b = str(ev["profile_a"]), str(ev["profile_b"])
        key = (rel, a, b)
        eid = ev["id"]
        dup_d = (rel, "direct", a, eid) in self.seen
        dup_r = (rel, "reverse", b, eid) in self.seen
        assert dup_d == dup_r, "model: sides disagree on a duplicate"
        if dup_d:
            return "duplicate", []
        edge = self.edges.get(key)
        known = edge["v"] if edge is not None else self.tombs.get(key)
        version = ev.get("version")
        if version is not None and known is not None and version < known:
            self.stale_ids.add(eid)
            return "stale", []

        before = copy.deepcopy(edge["w"]) if edge is not None else None
        sides = [("direct", a, b, rd.db_a, rd.db_b), ("reverse", b, a, rd.db_b, rd.db_a)]
        st_before = {s: self.stats_internal(rel, s, p) for s, p, _, _, _ in sides}

        op = ev["op"]
        weights = ev.get("weights") or {}
        if op == "detach":
            after = None
            if edge is not None:
                del self.edges[key]
                vs = [v for v in (edge["v"], version) if v is not None]
                if vs:
                    self.tombs[key] = max(vs)
            elif version is not None:
                self.tombs[key] = max(self.tombs.get(key, version), version)
        else:
            w = dict(before) if before is not None else {}
            for p, v in weights.items():
                t = rd.ptype[p]
                if op in ("attach", "edit"):
                    if v is None:
                        w.pop(p, None)
                    else:
                        w[p] = v if t == "bool" else (int(v) if t == "int" else fixed(v))
                else:  # strengthen
                    if t == "bool":
                        w[p] = v
                    elif t == "int":
                        w[p] = w.get(p, 0) + int(v)
                    else:
                        w[p] = w.get(p, 0) + fixed(v)
            after = w
            # without a version the known version stays as it is (the edge's,
            # or for a re-created edge its tombstone's)
            new_v = version if version is not None else known
            self.edges[key] = {"w": after, "v": new_v}
            self.tombs.pop(key, None)

        self.seen.add((rel, "direct", a, eid))
        self.seen.add((rel, "reverse", b, eid))

        triggers = []
        for side, prof, cp, db, cp_db in sides:
            st_after = self.stats_internal(rel, side, prof)
            stats_out = self.stats_out(rel, st_after)

            def body(kind, threshold=None):
                return {
                    "event_type": "relation_%s_%s" % (side, kind),
                    "profile_id": prof, "database": db,
                    "is_test": ev.get("is_test", False),
                    "event_data": {
                        "relation": rel, "direction": side, "kind": kind,
                        "counterpart": {"profile_id": cp, "database": cp_db},
                        "source_event": {"id": eid, "op": op,
                                         "occurred_at": ev.get("occurred_at")},
                        "weights": {"before": self.weights_out(rel, before),
                                    "after": self.weights_out(rel, after)},
                        "stats": stats_out,
                        "threshold": threshold}}

            if before is None and after is not None:
                triggers.append(body("attach"))
            elif before is not None and after is not None and before != after:
                triggers.append(body("change"))
            elif before is not None and after is None:
                triggers.append(body("detach"))
            for th in rd.thresholds:
                if th["direction"] != side:
                    continue
                limit = self.th_limit(rel, th)
                vb, ob = self.th_value(rel, th, st_before[side], before)
                va, oa = self.th_value(rel, th, st_after, after)
                below_b = vb is None or vb < limit
                below_a = va is None or va < limit
                if below_b == below_a:
                    continue
                triggers.append(body("threshold", {
                    "stat": th["stat"], "property": th.get("property"),
                    "value": Decimal(str(th["value"])),
                    "crossing": "up" if below_b else "down",
                    "before": ob, "after": oa}))
        return "applied", triggers


def strip_trigger(body):
    """The body without its id and date, after checking their shape."""
    body = copy.deepcopy(body)
    assert DATE_RE.match(body.pop("event_date")), body
    tid = body["event_data"].pop("id")
    assert UUID_RE.match(tid), tid
    return body


def assert_triggers_match(got, want):
    """got: trigger bodies printed (in order); want: the model's, in input order.
    Sides of one event may come in either order; within a side the order is
    attach/change/detach, then thresholds in configuration order."""
    order = {}
    for i, w in enumerate(want):
        order.setdefault(w["event_data"]["source_event"]["id"], i)
    positions = [order.get(g["event_data"]["source_event"]["id"], -1) for g in got]
    assert -1 not in positions, "a trigger of an event that produces none: %r" % (
        got[positions.index(-1)],)
    assert positions == sorted(positions), "triggers not in input order"

    def key(t):
        return (order[t["event_data"]["source_event"]["id"]],
                t["event_data"]["direction"] == "reverse")

    got_c = [canon(strip_trigger(t)) for t in sorted(got, key=key)]
    want_c = [canon(t) for t in sorted(want, key=key)]
    assert len(got_c) == len(want_c), (len(got_c), len(want_c))
    for g, w in zip(got_c, want_c):
        assert g == w


# --------------------------------------------------------------------------
# configurations

REL_SALES = {
    "short": "sales", "name": "Sales", "database_a": "managers", "database_b": "customers",
    "properties": [
        {"short": "profit", "name": "Profit", "type": "float", "save_amount": True,
         "save_top": {"order": "desc", "limit": 3}},
        {"short": "qty", "type": "int", "save_amount": True,
         "save_top": {"order": "asc", "limit": 2}},
        {"short": "ok", "type": "bool"},
    ],
    "thresholds": [
        {"direction": "direct", "stat": "total", "property": "profit", "value": 1.5},
        {"direction": "reverse", "stat": "count", "value": 3},
        {"direction": "direct", "stat": "edge", "property": "qty", "value": 5},
        {"direction": "reverse", "stat": "count", "property": "ok", "value": 2},
        {"direction": "direct", "stat": "count", "property": "profit", "value": 3},
    ],
}

REL_PEERS = {
    "short": "peers", "name": "Peers", "database_a": "people", "database_b": "people",
    "properties": [
        {"short": "score", "type": "int", "save_amount": True},
        {"short": "w", "type": "float", "save_top": {"order": "desc", "limit": 2}},
    ],
    "thresholds": [
        {"direction": "reverse", "stat": "total", "property": "score", "value": 10},
        {"direction": "direct", "stat": "edge", "property": "w", "value": 0.5},
        {"direction": "direct", "stat": "count", "value": 2},
    ],
}

POOLS = {
    "sales": (["m1", "m2", "m10", "42", "7"], ["c1", "c2", "c10", "1001", "c3"]),
    "peers": (["p1", "p2", "p3", "9"], ["p1", "p2", "p4", "9", "10"]),
}
# Profile ids that would forge keys without the key encoding: '}' ending the
# hash tag, suffixes of key names, '%', '{', ':', and escapes of each other.
HOSTILE_POOLS = {
    "sales": (["m1", "m1}:side", "m1%7D:side", "{m1}", "%"],
              ["c1", "c1}:tomb:m1", ":", "c1%25", "}{"]),
    "peers": (["p1", "p1}:seen", "p1%7Dx", "9"], ["p1", "p1}:seen", "%7D", "9", "a}:top:w"]),
}


TOPS = {"sales": ["profit", "qty"], "peers": ["w"]}


def key_id(profile):
    """A profile id as the README's key layout encodes it."""
    return profile.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")

FLOATS = [0.1, 0.2, 0.3, 1.5, 2.25, 0.5, 1, 3.1415926, 0.000001, 100.000001, 0.75]
PROPS = {"sales": {"profit": "float", "qty": "int", "ok": "bool"},
         "peers": {"score": "int", "w": "float"}}


def gen_value(rng, t, op):
    if t == "bool":
        return rng.random() < 0.6
    if t == "int":
        return rng.randint(-3, 8) if op == "strengthen" else rng.randint(0, 9)
    v = rng.choice(FLOATS)
    if op == "strengthen" and rng.random() < 0.4:
        v = -v
    return v


def gen_events(rng, n, pools=POOLS):
    events = []
    clocks = {}
    for i in range(n):
        rel = rng.choice(["sales", "sales", "peers"])
        pa, pb = pools[rel]
        a, b = rng.choice(pa), rng.choice(pb)
        op = rng.choices(["attach", "edit", "strengthen", "detach"], [25, 20, 37, 18])[0]
        ev = {"id": "ev-%05d-%s" % (i, rng.choice("abcdef")), "op": op, "relation": rel,
              "profile_a": int(a) if a.isdigit() and rng.random() < 0.5 else a,
              "profile_b": int(b) if b.isdigit() and rng.random() < 0.5 else b}
        weights = {}
        for p, t in PROPS[rel].items():
            if rng.random() < 0.55:
                if op in ("attach", "edit") and rng.random() < 0.15:
                    weights[p] = None
                else:
                    weights[p] = gen_value(rng, t, op)
        if op != "detach" or rng.random() < 0.2:
            if weights or rng.random() < 0.5:
                ev["weights"] = weights
        key = (rel, a, b)
        clocks[key] = clocks.get(key, 0) + 1
        if rng.random() < 0.6:
            v = clocks[key] * 10
            if rng.random() < 0.25:
                v -= rng.randint(1, 35)   # out of order: often stale
            ev["version"] = v
        if rng.random() < 0.3:
            ev["occurred_at"] = "2026-11-28T12:%02d:%02dZ" % (i // 60 % 60, i % 60)
        if rng.random() < 0.1:
            ev["is_test"] = rng.random() < 0.5
        if rng.random() < 0.05:
            ev["source"] = "upstream-extra-field"
        events.append(ev)
    return events


def with_duplicates(rng, seq, rate=0.04, distance=300):
    out = []
    for ev in seq:
        out.append(ev)
        if len(out) > 1 and rng.random() < rate:
            out.append(rng.choice(out[max(0, len(out) - distance):-1]))
    return out


def model_config(ctl, **engine):
    """A configuration file of REL_SALES and REL_PEERS (tombstones kept, a
    dedup window holding every id of the tests' streams; `engine` adds
    settings) and the reference model of it, empty: (cfg, model)."""
    relations = [REL_SALES, REL_PEERS]
    cfg = ctl.config(relations, engine=dict(HUGE_TTL, dedup_ids=10000, **engine))
    return cfg, Model(relations)


def model_stream(ctl, seed, n, pools=POOLS, **engine):
    """model_config's (cfg, model), n events of gen_events(Random(seed), n,
    pools), and the model after applying every one of them in order:
    (cfg, events, model). Nothing is applied to Redis."""
    cfg, model = model_config(ctl, **engine)
    events = gen_events(random.Random(seed), n, pools)
    for e in events:
        model.apply(e)
    return cfg, events, model


def every_side(pools=POOLS):
    """(relation, side, profile) of every profile of the pools, sales first."""
    for rel in ("sales", "peers"):
        pa, pb = pools[rel]
        for side, pool in (("direct", pa), ("reverse", pb)):
            for prof in pool:
                yield rel, side, prof


def check_every_side(ctl, rdb, cfg, model, pools=POOLS):
    """Every side of the pools: `relationctl stats` equals the model's, and
    Redis holds the model's state in the README's key layout. Returns how
    many sides were checked."""
    checked = 0
    for rel, side, prof in every_side(pools):
        assert canon(ctl.stats(cfg, rel, side, prof)) == \
            canon(model.stats(rel, side, prof)), (rel, side, prof)
        check_redis_side(rdb, model, rel, side, prof, pools)
        checked += 1
    return checked


# --------------------------------------------------------------------------
# b. randomized stream with duplicates and redelivered suffixes

@pytest.mark.parametrize("batch_size,pools", [(None, POOLS), (7, POOLS), (None, HOSTILE_POOLS)],
                         ids=["batch-default", "batch-7", "hostile-ids"])
def test_randomized_stream_matches_the_model(ctl, rdb, batch_size, pools):
    rng = random.Random(20261128)
    cfg, model = model_config(ctl, **({"batch_size": batch_size} if batch_size else {}))
    events = gen_events(rng, 3000, pools)
    deliveries = [
        with_duplicates(rng, events[0:1200]),
        with_duplicates(rng, events[1000:2200]),                  # 200 redelivered
        with_duplicates(rng, events[2100:3000]) + events[2800:3000],
        events[2950:3000],                                        # all redelivered
    ]
    all_ids = set()
    for n, batch in enumerate(deliveries):
        want = []
        applied = dup_min = dup_max = 0
        for ev in batch:
            was_stale = ev["id"] in model.stale_ids
            outcome, trig = model.apply(ev)
            want += trig
            if outcome == "applied":
                applied += 1
            elif outcome == "duplicate":
                dup_min += 1
                dup_max += 1
            elif was_stale:
                dup_max += 1      # a stale event's id may or may not be remembered
        res = ctl.apply(cfg, batch)
        assert res.returncode == 0, res.stderr
        assert len(res.errors) == 1, res.errors
        a, d, s, i = summary(res)
        assert (a, i) == (applied, 0), (n, res.summary)
        assert dup_min <= d <= dup_max and a + d + s == len(batch), (n, res.summary)

        # A duplicate within one run may return its first application's
        # triggers again (same ids, same bodies); across runs, never.
        first = {}
        got = []
        for line, body in zip(res.lines, res.triggers):
            loads_canonical(line)
            tid = body["event_data"]["id"]
            if tid in first:
                assert first[tid] == line, "a trigger id printed with two bodies"
                continue
            first[tid] = line
            got.append(body)
        assert not (set(first) & all_ids), "a trigger delivered again in a later run"
        all_ids |= set(first)
        assert_triggers_match(got, want)

    # the outbox is empty after every run: no side has one (gone with its last record)
    assert not list(rdb.scan_iter(match="rel:*:out", _type="hash"))  # a tombstone may end so

    # every profile side: `relationctl stats` and the documented keys
    assert check_every_side(ctl, rdb, cfg, model, pools) == 19
    # every key is one the layout names for these sides: none forged
    names = {"rel:{%s:%s:%s}:%s" % (rel, side, key_id(p), suffix)
             for rel, (pa, pb) in pools.items() for side, pool in (("d", pa), ("r", pb))
             for p in pool for suffix in ["side", "ids"] + ["top:" + t for t in TOPS[rel]] +
             ["tomb:" + key_id(o) for o in (pb if side == "d" else pa)]}
    names |= {"rel:layout", "rel:schema"}
    stray = [k for k in rdb.scan_iter(match="rel:*") if k not in names]
    assert not stray, stray[:5]
    # the stream was varied enough to mean something
    assert len(all_ids) > 2000
    assert len(model.stale_ids) > 50


def check_redis_side(rdb, model, rel, side, prof, pools=POOLS):
    """The README's key layout holds the model's state."""
    tag = "rel:{%s:%s:%s}" % (rel, side[0], key_id(prof))
    st = model.stats_internal(rel, side, prof)
    h = {f: v for f, v in layout2.side(rdb, tag + ":side").items() if f[0] not in "@#"}
    for v in h.values():
        assert canonical_number(v) != 0, (tag, h)  # a statistic of 0 is absent
    assert int(h.get("count", "0")) == st["count"]
    model_edges = model.side_edges(rel, side, prof)
    for p in model.rels[rel].props:
        s = st["properties"][p["short"]]
        assert int(h.get(p["short"] + ":count", "0")) == s["count"], (tag, p["short"])
        if p.get("save_amount"):
            # integers in units: float properties in millionths
            assert int(h.get(p["short"] + ":total", "0")) == s["total"], (tag, p["short"])
        if "save_top" in p:
            vals = {cp: w[p["short"]] for cp, w in model_edges.items() if p["short"] in w}
            layout2.check_top(rdb, tag + ":top:" + p["short"], vals, st["count"],
                              p["save_top"]["limit"], p["save_top"]["order"] == "desc")
    bools = [p["short"] for p in model.rels[rel].props if p["type"] == "bool"]
    want_edges = {}
    for (r, a, b), e in model.edges.items():
        if r == rel and (a if side == "direct" else b) == prof:
            want_edges[b if side == "direct" else a] = {
                "version": None if e["v"] is None else str(e["v"]),
                "weights": dict(e["w"])}  # units, bools as booleans
    assert canon(layout2.edges(rdb, rel, tag + ":side", bools)) == canon(want_edges), tag
    # tombstones of detached edges (and none where the model has none)
    others = pools[rel][1] if side == "direct" else pools[rel][0]
    for cp in others:
        k = (rel, prof, cp) if side == "direct" else (rel, cp, prof)
        if k in model.edges:
            continue
        want = model.tombs.get(k)
        assert rdb.get(tag + ":tomb:" + key_id(cp)) == (None if want is None else str(want)), \
            (tag, cp)


# --------------------------------------------------------------------------
# c. float exactness

REL_FLOAT = {
    "short": "money", "name": "Money", "database_a": "accounts", "database_b": "clients",
    "properties": [
        {"short": "amount", "type": "float", "save_amount": True,
         "save_top": {"order": "desc", "limit": 5}},
    ],
}


def ev(eid, op, a, b, weights=None, rel="money", **extra):
    e = {"id": eid, "op": op, "relation": rel, "profile_a": a, "profile_b": b}
    if weights is not None:
        e["weights"] = weights
    e.update(extra)
    return e


def test_float_totals_return_exactly_to_zero(ctl, rdb):
    cfg = ctl.config([REL_FLOAT])
    rng = random.Random(7)
    amounts = [0.1, 0.2, 0.3]
    plan = [(b, x) for b in range(40) for x in amounts for _ in range(3)]
    rng.shuffle(plan)
    up = [ev("up-%d" % i, "strengthen", "acc", "cl%02d" % b, {"amount": x})
          for i, (b, x) in enumerate(plan)]
    res = ctl.apply(cfg, up)
    assert res.returncode == 0 and summary(res) == (len(up), 0, 0, 0), res.stderr
    st = ctl.stats(cfg, "money", "direct", "acc")
    # every edge holds 3 * (0.1 + 0.2 + 0.3) = 1.8 exactly, the total 40 * 1.8 = 72
    assert st["properties"]["amount"]["total"] == Decimal("72")
    assert [canon(t["value"]) for t in st["properties"]["amount"]["top"]] == \
        [canon(Decimal("1.8"))] * 5
    assert rdb.hget("rel:{money:d:acc}:side", "amount:total") == "72000000"  # millionths

    rng.shuffle(plan)
    down = [ev("down-%d" % i, "strengthen", "acc", "cl%02d" % b, {"amount": -x})
            for i, (b, x) in enumerate(plan)]
    res = ctl.apply(cfg, down)
    assert res.returncode == 0 and summary(res) == (len(down), 0, 0, 0), res.stderr
    st = ctl.stats(cfg, "money", "direct", "acc")
    assert canon(st["properties"]["amount"]) == canon({
        "count": 40, "total": 0,
        "top": [{"profile_id": "cl%02d" % b, "value": 0} for b in (39, 38, 37, 36, 35)]})
    assert st["properties"]["amount"]["total"] == Decimal(0)
    # a statistic of 0 is absent; an edge's value of 0 is written
    assert rdb.hget("rel:{money:d:acc}:side", "amount:total") is None
    for b in range(40):
        assert rdb.hget("rel:{money:r:cl%02d}:side" % b, "amount:total") is None
        assert rdb.hget("rel:{money:d:acc}:side", "@cl%02d" % b) == "0"

    res = ctl.apply(cfg, [ev("off-%d" % b, "detach", "acc", "cl%02d" % b) for b in range(40)])
    assert res.returncode == 0 and summary(res) == (40, 0, 0, 0)
    st = ctl.stats(cfg, "money", "direct", "acc")
    assert canon(st) == canon({"count": 0, "properties": {
        "amount": {"count": 0, "total": 0, "top": []}}})
    assert rdb.hget("rel:{money:d:acc}:side", "amount:total") is None


def test_float_sums_are_decimal_and_rounded_half_away_from_zero(ctl, rdb):
    cfg = ctl.config([REL_FLOAT])
    res = ctl.apply(cfg, [
        ev("r1", "strengthen", "x", "y1", {"amount": 0.1}),
        ev("r2", "strengthen", "x", "y1", {"amount": 0.2}),        # 0.3, not 0.30000000000000004
        ev("r3", "attach", "x", "y2", {"amount": 0.0078125}),      # exactly 1/128: half
        ev("r4", "attach", "x", "y3", {"amount": -0.0078125}),
        ev("r5", "attach", "x", "y4", {"amount": 2.0000004999}),   # rounds down
        ev("r6", "attach", "x", "y5", {"amount": 999999999.999999}),
    ])
    assert res.returncode == 0, res.stderr
    st = ctl.stats(cfg, "money", "direct", "x")
    top = st["properties"]["amount"]["top"]
    assert canon(top) == canon([
        {"profile_id": "y5", "value": Decimal("999999999.999999")},
        {"profile_id": "y4", "value": 2},
        {"profile_id": "y1", "value": Decimal("0.3")},
        {"profile_id": "y2", "value": Decimal("0.007813")},
        {"profile_id": "y3", "value": Decimal("-0.007813")}])
    assert str(top[2]["value"]) == "0.3"
    rev = ctl.stats(cfg, "money", "reverse", "y3")
    assert rev["properties"]["amount"]["total"] == Decimal("-0.007813")
    assert st["properties"]["amount"]["total"] == \
        Decimal("0.3") + Decimal("0.007813") - Decimal("0.007813") + 2 + Decimal("999999999.999999")
    assert Decimal(rdb.hget("rel:{money:d:x}:side", "amount:total")).scaleb(-6) == \
        st["properties"]["amount"]["total"]


def test_totals_past_2_53_units_stay_exact(ctl, rdb):
    """Totals are int64 in Redis: 12 edges of 999999999.999999 (past 2^53
    millionths), then 11 detached, leave exactly .999999; the triggers and
    stats say so, and the stored field is the exact integer."""
    rel = {"short": "big", "name": "Big", "database_a": "da", "database_b": "db",
           "properties": [{"short": "f", "type": "float", "save_amount": True},
                          {"short": "n", "type": "int", "save_amount": True}]}
    cfg = ctl.config([rel])
    up = [ev("u%d" % i, "attach", "x", "k%d" % i, {"f": 999999999.999999, "n": 10 ** 15},
             rel="big") for i in range(12)]
    res = ctl.apply(cfg, up)
    assert summary(res) == (12, 0, 0, 0), res.stderr
    props = ctl.stats(cfg, "big", "direct", "x")["properties"]
    assert props["f"]["total"] == Decimal("11999999999.999988")
    assert props["n"]["total"] == 12 * 10 ** 15
    assert rdb.hget("rel:{big:d:x}:side", "f:total") == "11999999999999988"
    last = [t for t in res.triggers if t["event_data"]["direction"] == "direct"][-1]
    assert last["event_data"]["stats"]["properties"]["f"]["total"] == Decimal("11999999999.999988")
    down = ctl.apply(cfg, [ev("d%d" % i, "detach", "x", "k%d" % i, rel="big") for i in range(11)])
    assert summary(down) == (11, 0, 0, 0), down.stderr
    props = ctl.stats(cfg, "big", "direct", "x")["properties"]
    assert props["f"]["total"] == Decimal("999999999.999999")
    assert props["n"]["total"] == 10 ** 15


def test_a_total_beyond_64_bits_is_refused_whole(ctl, rdb):
    """README: a total stays within 9.2e18 units. 9,200 edges of 10^15 reach
    it; the next attach would take the direct total of x past it: the event
    is refused, naming the total, and nothing changes on either side (the
    counterpart's side, far from the limit, does not get the edge either)."""
    rel = {"short": "big", "name": "Big", "database_a": "da", "database_b": "db",
           "properties": [{"short": "n", "type": "int", "save_amount": True}]}
    cfg = ctl.config([rel])
    up = [ev("u%d" % i, "attach", "x", "k%d" % i, {"n": 10 ** 15}, rel="big")
          for i in range(9201)]
    res = ctl.apply(cfg, up)
    assert res.returncode == 3, res.stderr  # some lines refused
    assert summary(res) == (9200, 0, 0, 1), res.summary
    assert res.errors[:-1] == [
        "line 9201: weights: n:total of this side would leave the range of a 64-bit integer"]
    st = ctl.stats(cfg, "big", "direct", "x")
    assert (st["count"], st["properties"]["n"]["total"]) == (9200, 92 * 10 ** 17)
    assert rdb.hget("rel:{big:d:x}:side", "n:total") == "9200000000000000000"
    assert rdb.hget("rel:{big:d:x}:side", "@k9200") is None
    assert ctl.stats(cfg, "big", "reverse", "k9200")["count"] == 0
    assert rdb.keys("rel:{big:r:k9200}:*") == []   # not even the event id is remembered


def test_totals_are_exact_up_to_2_53_units(ctl, rdb):
    """README: totals are exact up to 2^53 units of the last decimal
    (9007199254.740992 for a float property, 9007199254740992 for an int one)."""
    rel = {"short": "big", "name": "Big", "database_a": "da", "database_b": "db",
           "properties": [{"short": "f", "type": "float", "save_amount": True},
                          {"short": "n", "type": "int", "save_amount": True}]}
    cfg = ctl.config([rel])
    events = [ev("a%d" % i, "attach", "x", "k%d" % i, {"f": 10 ** 9, "n": 10 ** 15}, rel="big")
              for i in range(9)]
    events.append(ev("w1", "strengthen", "x", "k0", {"f": -0.000001, "n": -1}, rel="big"))
    res = ctl.apply(cfg, events)
    assert summary(res) == (10, 0, 0, 0), res.stderr
    props = ctl.stats(cfg, "big", "direct", "x")["properties"]
    assert props["f"]["total"] == Decimal("8999999999.999999")
    assert props["n"]["total"] == 8999999999999999
    h = layout2.side(rdb, "rel:{big:d:x}:side")
    assert (h["f:total"], h["n:total"]) == ("8999999999999999", "8999999999999999")
    res = ctl.apply(cfg, [ev("w2", "edit", "x", "k1", {"f": 999999999.999997, "n": 999999999999997},
                             rel="big")])
    props = ctl.stats(cfg, "big", "direct", "x")["properties"]
    assert props["f"]["total"] == Decimal("8999999999.999996")
    assert props["n"]["total"] == 8999999999999996


# --------------------------------------------------------------------------
# d. thresholds crossing up and down on each stat kind

REL_TH = {
    "short": "th", "name": "Thresholds", "database_a": "da", "database_b": "db",
    "properties": [
        {"short": "f", "type": "float", "save_amount": True},
        {"short": "n", "type": "int", "save_amount": True},
        {"short": "b", "type": "bool"},
    ],
    "thresholds": [
        {"direction": "direct", "stat": "count", "value": 2},                    # 0
        {"direction": "direct", "stat": "count", "property": "b", "value": 1},   # 1
        {"direction": "direct", "stat": "total", "property": "f", "value": 1.5}, # 2
        {"direction": "direct", "stat": "edge", "property": "n", "value": 3},    # 3
        {"direction": "reverse", "stat": "edge", "property": "f", "value": 0.5}, # 4
        {"direction": "reverse", "stat": "count", "property": "n", "value": 1},  # 5
        {"direction": "direct", "stat": "edge", "property": "b", "value": 1},    # 6
        {"direction": "reverse", "stat": "total", "property": "n", "value": 4},  # 7
    ],
}


def th(stat, prop, value, crossing, before, after):
    return {"stat": stat, "property": prop, "value": value, "crossing": crossing,
            "before": before, "after": after}


def test_threshold_crossings(ctl, rdb):
    cfg = ctl.config([REL_TH])
    D = Decimal
    steps = [
        (ev("t1", "attach", "x", "y1", {"f": 1.0, "n": 2, "b": True}, rel="th"), [
            ("direct", "attach", None),
            ("direct", "threshold", th("count", "b", 1, "up", 0, 1)),
            ("direct", "threshold", th("edge", "b", 1, "up", None, 1)),
            ("reverse", "attach", None),
            ("reverse", "threshold", th("edge", "f", D("0.5"), "up", None, 1)),
            ("reverse", "threshold", th("count", "n", 1, "up", 0, 1))]),
        (ev("t2", "attach", "x", "y2", {"f": 0.5}, rel="th"), [
            ("direct", "attach", None),
            ("direct", "threshold", th("count", None, 2, "up", 1, 2)),
            ("direct", "threshold", th("total", "f", D("1.5"), "up", 1, D("1.5"))),
            ("reverse", "attach", None),
            ("reverse", "threshold", th("edge", "f", D("0.5"), "up", None, D("0.5")))]),
        (ev("t3", "strengthen", "x", "y1", {"n": 1}, rel="th"), [
            ("direct", "change", None),
            ("direct", "threshold", th("edge", "n", 3, "up", 2, 3)),
            ("reverse", "change", None)]),
        (ev("t3b", "strengthen", "z", "y1", {"n": 1}, rel="th"), [
            ("direct", "attach", None),
            ("reverse", "attach", None),
            ("reverse", "threshold", th("total", "n", 4, "up", 3, 4))]),
        (ev("t4", "edit", "x", "y1", {"n": None, "b": False}, rel="th"), [
            ("direct", "change", None),
            ("direct", "threshold", th("count", "b", 1, "down", 1, 0)),
            ("direct", "threshold", th("edge", "n", 3, "down", 3, None)),
            ("direct", "threshold", th("edge", "b", 1, "down", 1, 0)),
            ("reverse", "change", None),
            ("reverse", "threshold", th("total", "n", 4, "down", 4, 1))]),
        (ev("t5", "strengthen", "x", "y2", {"f": -0.1}, rel="th"), [
            ("direct", "change", None),
            ("direct", "threshold", th("total", "f", D("1.5"), "down", D("1.5"), D("1.4"))),
            ("reverse", "change", None),
            ("reverse", "threshold", th("edge", "f", D("0.5"), "down", D("0.5"), D("0.4")))]),
        # no crossing: still below / still above
        (ev("t6", "strengthen", "x", "y2", {"f": 0.05}, rel="th"), [
            ("direct", "change", None), ("reverse", "change", None)]),
        (ev("t7", "detach", "x", "y1", rel="th"), [
            ("direct", "detach", None),
            ("direct", "threshold", th("count", None, 2, "down", 2, 1)),
            ("reverse", "detach", None),
            ("reverse", "threshold", th("edge", "f", D("0.5"), "down", 1, None))]),
        (ev("t8", "detach", "z", "y1", rel="th"), [
            ("direct", "detach", None),
            ("reverse", "detach", None),
            ("reverse", "threshold", th("count", "n", 1, "down", 1, 0))]),
    ]
    model = Model([REL_TH])
    for event, expected in steps:
        res = ctl.apply(cfg, [event])
        assert res.returncode == 0 and summary(res) == (1, 0, 0, 0), res.stderr
        got = [(t["event_data"]["direction"], t["event_data"]["kind"],
                canon(t["event_data"]["threshold"])) for t in res.triggers]
        exp = [(s, k, canon(t)) for s, k, t in expected]
        key = lambda x: x[0] == "reverse"  # noqa: E731  sides may come in either order
        assert sorted(got, key=key) == sorted(exp, key=key), event["id"]
        for t in res.triggers:
            assert t["event_type"] == "relation_%s_%s" % (
                t["event_data"]["direction"], t["event_data"]["kind"])
        # and the model agrees with the hand-written expectations
        _, want = model.apply(event)
        assert_triggers_match(res.triggers, want)


# --------------------------------------------------------------------------
# e. tombstones

def test_tombstone_blocks_a_late_attach(ctl, rdb):
    cfg = ctl.config([REL_SALES])
    base = {"relation": "sales", "profile_a": "m", "profile_b": "c"}
    r1 = ctl.apply(cfg, [
        dict(base, id="e1", op="attach", weights={"profit": 5, "qty": 1}, version=3),
        dict(base, id="e2", op="detach", version=10),
    ])
    assert r1.returncode == 0 and summary(r1) == (2, 0, 0, 0)
    assert rdb.get("rel:{sales:d:m}:tomb:c") == "10"
    assert rdb.get("rel:{sales:r:c}:tomb:m") == "10"
    assert rdb.ttl("rel:{sales:d:m}:tomb:c") > 0
    zero = ctl.stats(cfg, "sales", "direct", "m")
    assert zero["count"] == 0

    r2 = ctl.apply(cfg, [dict(base, id="e3", op="attach", weights={"profit": 7}, version=5)])
    assert r2.returncode == 0, r2.stderr
    assert summary(r2) == (0, 0, 1, 0)
    assert r2.stdout == ""
    assert ctl.stats(cfg, "sales", "direct", "m") == zero
    assert ctl.stats(cfg, "sales", "reverse", "c")["count"] == 0
    assert not [f for f in rdb.hkeys("rel:{sales:d:m}:side") if f.startswith("@")]

    r3 = ctl.apply(cfg, [dict(base, id="e4", op="attach", weights={"profit": 7}, version=11)])
    assert summary(r3) == (1, 0, 0, 0)
    kinds = sorted((t["event_data"]["direction"], t["event_data"]["kind"]) for t in r3.triggers)
    # profit 7 also crosses the direct total threshold (1.5)
    assert kinds == [("direct", "attach"), ("direct", "threshold"), ("reverse", "attach")]
    assert all(t["event_data"]["weights"] == {"before": None, "after": {"profit": 7}}
               for t in r3.triggers)
    assert ctl.stats(cfg, "sales", "direct", "m")["properties"]["profit"]["total"] == 7
    assert rdb.hget("rel:{sales:d:m}:side", "@c") == "11;7000000"  # float weights in millionths

    # an equal version applies; a lower one is stale
    r4 = ctl.apply(cfg, [dict(base, id="e5", op="edit", weights={"qty": 2}, version=11),
                         dict(base, id="e6", op="edit", weights={"qty": 9}, version=10)])
    assert summary(r4) == (1, 0, 1, 0)
    assert ctl.stats(cfg, "sales", "direct", "m")["properties"]["qty"]["total"] == 2


def test_detach_with_version_of_a_missing_edge_leaves_a_tombstone(ctl, rdb):
    cfg = ctl.config([REL_SALES])
    base = {"relation": "sales", "profile_a": "m", "profile_b": "c"}
    r = ctl.apply(cfg, [dict(base, id="d1", op="detach", version=20),
                        dict(base, id="d2", op="strengthen", weights={"qty": 1}, version=19),
                        dict(base, id="d3", op="detach", version=15)])
    assert summary(r) == (1, 0, 2, 0), r.stderr
    assert r.stdout == ""
    assert rdb.get("rel:{sales:d:m}:tomb:c") == "20"
    assert ctl.stats(cfg, "sales", "direct", "m")["count"] == 0


def test_unversioned_event_keeps_the_tombstone_version(ctl, rdb):
    """README: events without a version apply and leave the known version as it
    is; for a detached edge the known version is its tombstone's."""
    cfg = ctl.config([REL_SALES])
    base = {"relation": "sales", "profile_a": "m", "profile_b": "c"}
    r = ctl.apply(cfg, [dict(base, id="u1", op="attach", weights={"qty": 1}, version=10),
                        dict(base, id="u2", op="detach"),
                        dict(base, id="u3", op="attach", weights={"qty": 2}),
                        dict(base, id="u4", op="edit", weights={"qty": 3}, version=9)])
    assert summary(r) == (3, 0, 1, 0), r.stderr
    assert ctl.stats(cfg, "sales", "direct", "m")["properties"]["qty"]["total"] == 2


# --------------------------------------------------------------------------
# f. bad lines

def test_bad_lines_are_reported_and_skipped(ctl, rdb):
    cfg = ctl.config([REL_SALES])
    good = lambda i, **kw: json.dumps(dict(  # noqa: E731
        {"id": "g%d" % i, "op": "strengthen", "relation": "sales", "profile_a": "m",
         "profile_b": "c%d" % i, "weights": {"qty": 1}}, **kw))
    bad = lambda i, **kw: json.dumps(dict(  # noqa: E731
        {"id": "b%d" % i, "op": "strengthen", "relation": "sales", "profile_a": "m",
         "profile_b": "c%d" % i, "weights": {"qty": 1}}, **kw))
    no_id = {"op": "attach", "relation": "sales", "profile_a": "m", "profile_b": "x"}
    lines = [
        good(1),                                                        # 1
        "{not json",                                                    # 2
        json.dumps(no_id),                                              # 3
        bad(3, relation="nope"),                                        # 4
        good(2, profile_a=42),                                          # 5
        bad(4, weights={"nope": 1}),                                    # 6
        bad(5, weights={"profit": 5, "qty": 1.5}),                      # 7 (never in part)
        bad(6, weights={"ok": 1}),                                      # 8
        bad(7, profile_a=""),                                           # 9
        bad(8, profile_a="x" * 129),                                    # 10
        good(3, profile_a="y" * 128, extra_field={"a": [1]}),           # 11
        bad(9, weights={"qty": None}),                                  # 12
        bad(10, op="merge"),                                            # 13
        good(4, op="attach", weights={"profit": 2.5, "ok": False}),     # 14
        bad(11, id="i" * 129),                                          # 15
        bad(12, id=""),                                                 # 16
        bad(13, version=1.5),                                           # 17
        "[1, 2]",                                                       # 18
        good(5, op="detach", profile_b="c99"),                          # 19
    ]
    bad_lines = [2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 15, 16, 17, 18]
    res = ctl.apply(cfg, lines)
    assert res.returncode == 3, res.stderr
    assert summary(res) == (len(lines) - len(bad_lines), 0, 0, len(bad_lines))
    reported = []
    for line in res.errors[:-1]:
        m = re.match(r"^line (\d+): \S", line)
        assert m, line
        reported.append(int(m.group(1)))
    # one report per bad line (the order of the reports is not prescribed)
    assert sorted(reported) == bad_lines, res.errors

    st = ctl.stats(cfg, "sales", "direct", "m")
    assert canon(st) == canon({"count": 2, "properties": {
        "profit": {"count": 1, "total": Decimal("2.5"),
                   "top": [{"profile_id": "c4", "value": Decimal("2.5")}]},
        "qty": {"count": 1, "total": 1, "top": [{"profile_id": "c1", "value": 1}]},
        "ok": {"count": 0}}})
    assert ctl.stats(cfg, "sales", "direct", "42")["properties"]["qty"]["total"] == 1
    assert ctl.stats(cfg, "sales", "direct", "y" * 128)["count"] == 1
    assert ctl.stats(cfg, "sales", "reverse", "c5")["count"] == 0
    for t in res.triggers:
        assert t["event_data"]["source_event"]["id"] in {"g1", "g2", "g3", "g4"}
    profiles = {t["profile_id"] for t in res.triggers if t["event_data"]["direction"] == "direct"}
    assert profiles == {"m", "42", "y" * 128}
    # only valid events reached Redis
    for k in rdb.scan_iter(match="rel:*"):
        assert "nope" not in k and "x" * 129 not in k, k


# --------------------------------------------------------------------------
# g. duplicates across runs

def test_applying_the_same_file_twice(ctl, rdb, tmp_path):
    cfg = ctl.config([REL_SALES, REL_PEERS], engine=HUGE_TTL)
    rng = random.Random(99)
    events = [e for e in gen_events(rng, 400) if "version" not in e]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    first = ctl.apply(cfg, path.read_text())
    assert first.returncode == 0 and summary(first) == (len(events), 0, 0, 0), first.stderr
    assert first.triggers
    before = {k: ctl.stats(cfg, *k) for k in every_side()}
    # every key, the duplicate windows too: a duplicate writes nothing
    keys = {k: rdb.dump(k) for k in rdb.scan_iter(match="rel:*")}
    assert any(k.endswith(":ids") for k in keys), "no side spilled to its ring ids"

    second = ctl.apply(cfg, path.read_text())
    assert second.returncode == 0, second.stderr
    assert summary(second) == (0, len(events), 0, 0)
    assert second.stdout == ""
    assert second.errors == [second.summary]
    after = {k: ctl.stats(cfg, *k) for k in before}
    assert after == before
    assert {k: rdb.dump(k) for k in rdb.scan_iter(match="rel:*")} == keys


def test_redelivery_within_the_dedup_window_is_a_duplicate(ctl, rdb):
    """README: replaying is safe as long as fewer than engine.dedup_ids later
    events reached that side in between, whatever the event ids look like."""
    cfg = ctl.config([REL_SALES], engine={"dedup_ids": 3})
    first = [ev(eid, "strengthen", "m", "c%d" % i, {"qty": 1}, rel="sales")
             for i, eid in enumerate(["z1", "a2", "a3", "a4"])]
    res = ctl.apply(cfg, first)
    assert summary(res) == (4, 0, 0, 0), res.stderr
    # "a2" was followed by two events on the direct side of m: still remembered
    again = ctl.apply(cfg, [first[1]])
    assert summary(again) == (0, 1, 0, 0), again.stderr
    assert again.stdout == ""
    assert ctl.stats(cfg, "sales", "direct", "m")["properties"]["qty"]["total"] == 4
    assert ctl.stats(cfg, "sales", "reverse", "c1")["properties"]["qty"]["total"] == 1
    # both sides still hold the same edge
    assert rdb.hget("rel:{sales:d:m}:side", "@c1") == rdb.hget("rel:{sales:r:c1}:side", "@m")


# --------------------------------------------------------------------------
# h. trigger body

def test_trigger_body_and_stable_ids(ctl, rdb):
    cfg = ctl.config([dict(REL_SALES, thresholds=[])])
    event = {"id": "9f1c0d2e-attach", "op": "attach", "relation": "sales",
             "profile_a": "42", "profile_b": 1001,
             "weights": {"profit": 250.5, "qty": 1, "ok": True},
             "version": 1764331200123, "occurred_at": "2026-11-28T12:00:00Z"}
    first = ctl.apply(cfg, [event])
    assert first.returncode == 0 and summary(first) == (1, 0, 0, 0)
    assert len(first.triggers) == 2
    direct = next(t for t in first.triggers if t["event_data"]["direction"] == "direct")
    reverse = next(t for t in first.triggers if t["event_data"]["direction"] == "reverse")
    assert set(direct) == {"event_type", "event_date", "profile_id", "database", "is_test",
                           "event_data"}
    assert set(direct["event_data"]) == {"id", "relation", "direction", "kind", "counterpart",
                                         "source_event", "weights", "stats", "threshold"}
    assert direct["event_type"] == "relation_direct_attach"
    assert reverse["event_type"] == "relation_reverse_attach"
    assert (direct["profile_id"], direct["database"]) == ("42", "managers")
    assert (reverse["profile_id"], reverse["database"]) == ("1001", "customers")
    assert direct["is_test"] is False and reverse["is_test"] is False
    assert DATE_RE.match(direct["event_date"])
    d = direct["event_data"]
    assert UUID_RE.match(d["id"]) and UUID_RE.match(reverse["event_data"]["id"])
    assert d["id"] != reverse["event_data"]["id"]
    assert d["relation"] == "sales" and d["kind"] == "attach" and d["threshold"] is None
    assert d["counterpart"] == {"profile_id": "1001", "database": "customers"}
    assert reverse["event_data"]["counterpart"] == {"profile_id": "42", "database": "managers"}
    assert d["source_event"] == {"id": "9f1c0d2e-attach", "op": "attach",
                                 "occurred_at": "2026-11-28T12:00:00Z"}
    assert canon(d["weights"]) == canon(
        {"before": None, "after": {"profit": Decimal("250.5"), "qty": 1, "ok": True}})
    assert canon(d["stats"]) == canon({"count": 1, "properties": {
        "profit": {"count": 1, "total": Decimal("250.5"),
                   "top": [{"profile_id": "1001", "value": Decimal("250.5")}]},
        "qty": {"count": 1, "total": 1, "top": [{"profile_id": "1001", "value": 1}]},
        "ok": {"count": 1}}})
    assert canon(reverse["event_data"]["stats"]) == canon(ctl.stats(cfg, "sales", "reverse", "1001"))
    ids = sorted(t["event_data"]["id"] for t in first.triggers)

    # the same event on an empty Redis: the same trigger ids
    rdb.flushall()
    again = ctl.apply(cfg, [event])
    assert sorted(t["event_data"]["id"] for t in again.triggers) == ids
    # another event id, or another relation: other trigger ids
    rdb.flushall()
    other = ctl.apply(cfg, [dict(event, id="9f1c0d2e-other")])
    assert not set(t["event_data"]["id"] for t in other.triggers) & set(ids)
    rdb.flushall()
    cfg2 = ctl.config([dict(REL_SALES, thresholds=[]),
                       dict(REL_SALES, short="sales2", thresholds=[])])
    other_rel = ctl.apply(cfg2, [dict(event, relation="sales2")])
    assert len(other_rel.triggers) == 2
    assert not set(t["event_data"]["id"] for t in other_rel.triggers) & set(ids)

    # is_test is copied
    rdb.flushall()
    test_ev = ctl.apply(cfg, [dict(event, id="t", is_test=True)])
    assert [t["is_test"] for t in test_ev.triggers] == [True, True]


def test_threshold_trigger_ids_differ_per_threshold(ctl, rdb):
    rel = dict(REL_TH)
    cfg = ctl.config([rel])
    res = ctl.apply(cfg, [ev("one", "attach", "x", "y", {"f": 9, "n": 9, "b": True}, rel="th")])
    ths = [t for t in res.triggers if t["event_data"]["kind"] == "threshold"]
    assert len(ths) >= 4
    ids = [t["event_data"]["id"] for t in res.triggers]
    assert len(set(ids)) == len(ids)
    rdb.flushall()
    res2 = ctl.apply(cfg, [ev("one", "attach", "x", "y", {"f": 9, "n": 9, "b": True}, rel="th")])
    assert [t["event_data"]["id"] for t in res2.triggers] == ids


# --------------------------------------------------------------------------
# i. unknown profile

def test_stats_of_an_unknown_profile(ctl, rdb):
    cfg = ctl.config([REL_SALES, REL_PEERS])
    assert canon(ctl.stats(cfg, "sales", "direct", "nobody")) == canon({
        "count": 0, "properties": {
            "profit": {"count": 0, "total": 0, "top": []},
            "qty": {"count": 0, "total": 0, "top": []},
            "ok": {"count": 0}}})
    assert canon(ctl.stats(cfg, "peers", "reverse", "nobody")) == canon({
        "count": 0, "properties": {
            "score": {"count": 0, "total": 0},
            "w": {"count": 0, "top": []}}})
    assert rdb.dbsize() == 0


# --------------------------------------------------------------------------
# ranges: a strengthen leaving the range is refused and changes nothing

def test_values_out_of_range_are_invalid_and_change_nothing(ctl, rdb):
    cfg = ctl.config([REL_SALES])
    base = {"relation": "sales", "profile_a": "m", "profile_b": "c", "op": "strengthen"}
    lines = [
        dict(base, id="r1", weights={"qty": 10 ** 15, "profit": 10 ** 9}),        # 1 ok: limits
        dict(base, id="r2", weights={"qty": 1}),                                  # 2 > 10^15
        dict(base, id="r3", weights={"profit": 0.000001, "qty": -1}),             # 3 > 10^9
        dict(base, id="r4", op="attach", profile_b="d", weights={"qty": 10 ** 15 + 1}),
        dict(base, id="r5", op="attach", profile_b="d",
             weights={"profit": -1000000000.000001}),
        dict(base, id="r6", op="attach", profile_b="d", weights={"qty": 1e3}),    # a real
        dict(base, id="r7", weights={"qty": -(10 ** 15), "profit": -(10 ** 9)}),  # 7 ok: to 0
    ]
    res = ctl.apply(cfg, lines)
    assert res.returncode == 3, res.stderr
    assert summary(res) == (2, 0, 0, 5)
    reported = sorted(int(re.match(r"^line (\d+): \S", e).group(1)) for e in res.errors[:-1])
    assert reported == [2, 3, 4, 5, 6], res.errors
    st = ctl.stats(cfg, "sales", "direct", "m")
    assert canon(st) == canon({"count": 1, "properties": {
        "profit": {"count": 1, "total": 0, "top": [{"profile_id": "c", "value": 0}]},
        "qty": {"count": 1, "total": 0, "top": [{"profile_id": "c", "value": 0}]},
        "ok": {"count": 0}}})
    assert ctl.stats(cfg, "sales", "reverse", "d")["count"] == 0
    # the triggers are those of r1 and r7 only
    assert {t["event_data"]["source_event"]["id"] for t in res.triggers} == {"r1", "r7"}


# --------------------------------------------------------------------------
# configuration changes

def test_a_removed_property_is_dropped_when_the_edge_changes(ctl, rdb):
    two = {"short": "s", "name": "S", "database_a": "da", "database_b": "db",
           "properties": [{"short": "f", "type": "float", "save_amount": True},
                          {"short": "n", "type": "int", "save_amount": True}]}
    cfg1 = ctl.config([two])
    res = ctl.apply(cfg1, [ev("1", "attach", "x", "y", {"f": 1.5, "n": 3}, rel="s"),
                           ev("2", "attach", "x", "z", {"f": 1.5, "n": 3}, rel="s")])
    assert summary(res) == (2, 0, 0, 0)
    one = dict(two, properties=[two["properties"][0],
                                {"short": "q", "type": "int", "save_amount": True}])
    cfg2 = ctl.config([one])
    res = ctl.apply(cfg2, [ev("3", "strengthen", "x", "y", {"f": 1}, rel="s")])
    assert summary(res) == (1, 0, 0, 0)
    assert len(res.triggers) == 2
    for t in res.triggers:
        assert set(t["event_data"]["stats"]["properties"]) == {"f", "q"}
        assert canon(t["event_data"]["weights"]["after"]) == canon({"f": Decimal("2.5")})
    assert canon(ctl.stats(cfg2, "s", "direct", "x")) == canon({"count": 2, "properties": {
        "f": {"count": 2, "total": 4}, "q": {"count": 0, "total": 0}}})
    # n keeps its slot (2), written empty from now on; q takes the next one
    assert rdb.hget("rel:schema", "s") == "f,n,q"
    assert rdb.hget("rel:{s:d:x}:side", "@y") == "2500000"
    assert rdb.hget("rel:{s:r:y}:side", "@x") == "2500000"
    # an edge that did not change keeps its values
    assert rdb.hget("rel:{s:d:x}:side", "@z") == "1500000,3"


# --------------------------------------------------------------------------
# model self-checks: the model itself can tell wrong from right

def test_model_top_tie_rule():
    m = Model([REL_SALES])
    for i, (b, q) in enumerate([("c1", 3), ("c2", 3), ("c10", 1), ("c3", 1)]):
        m.apply({"id": str(i), "op": "attach", "relation": "sales", "profile_a": "m",
                 "profile_b": b, "weights": {"profit": q, "qty": q}})
    st = m.stats("sales", "direct", "m")
    # desc: equal values by profile id descending; asc: ascending, bytewise
    assert [t["profile_id"] for t in st["properties"]["profit"]["top"]] == ["c2", "c1", "c3"]
    assert [t["profile_id"] for t in st["properties"]["qty"]["top"]] == ["c10", "c3"]
