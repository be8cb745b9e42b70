"""The readers on layout 2 (README "Redis key layout"), on sides written by
hand as the engines write them, beside layout-1 sides (a keyspace in the
middle of its migration has both): `relationctl edges`, `stats`, `segment`,
`render` and `verify` decode a packed edge by the relation's slots in
PREFIX schema (which need not follow the configuration's order, and may
name a property the configuration no longer has), take an absent statistic
as 0, read a top from its bounded sorted set when the side keeps one and
compute it from the side's edges when it does not; verify applies layout
2's rules to a layout-2 side (no statistic stored as 0; the top's sorted
set only past `limit` edges, a prefix of the top's order of at least
min(limit, p:count) and at most 2 x limit members, at the edges' values)
and layout 1's to a layout-1 side.

The sides are written by hand (HSET of packed values) rather than by
applying events: what is tested is what the readers make of a given
keyspace."""

import json
import subprocess

import pytest

from conftest import RELATIONCTL, loads

# Slot order differs from the configuration's, and slot 1 is a property
# the configuration no longer has: its positions must be ignored.
SCHEMA = "gone,purchases,profit,approve"
RELATIONS = [{"short": "sales", "database_a": "managers", "database_b": "customers",
              "properties": [
                  {"short": "profit", "type": "float", "save_amount": True,
                   "save_top": {"order": "desc", "limit": 2}},
                  {"short": "purchases", "type": "int",
                   "save_top": {"order": "asc", "limit": 3}},
                  {"short": "approve", "type": "bool"}]}]


def run(cfg, *args, stdin=None):
    return subprocess.run([RELATIONCTL, "-c", cfg] + list(args), capture_output=True, text=True,
                          input=stdin, timeout=60)


def side_key(side, profile, what="side"):
    return "rel:{sales:%s:%s}:%s" % (side, profile, what)


def packed(profit=None, purchases=None, approve=None, version=None, gone=None):
    """A packed edge value by SCHEMA's slots (profit in millionths)."""
    pos = [gone, purchases, profit, None if approve is None else int(approve)]
    while pos and pos[-1] is None:
        pos.pop()
    text = ",".join("" if v is None else str(v) for v in pos)
    return text if version is None else "%d;%s" % (version, text)


@pytest.fixture()
def keyspace(ctl, rdb):
    """A keyspace in layout 2 with SCHEMA; its configuration file."""
    rdb.set("rel:layout", "2 0123456789abcdef")
    rdb.hset("rel:schema", "sales", SCHEMA)
    return ctl.config(RELATIONS)


def write_side(rdb, side, profile, edges, stats, tops=None):
    """A layout-2 side: edges {counterpart: packed value}, statistics
    {field: value} (0s left out, as the engines do), tops {property:
    {member: score}}."""
    h = {"@" + cp: v for cp, v in edges.items()}
    h.update({k: v for k, v in stats.items() if v != 0})
    h["#w"] = b"\x01" * 8
    rdb.hset(side_key(side, profile), mapping=h)
    for p, members in (tops or {}).items():
        rdb.zadd(side_key(side, profile, "top:" + p), members)


def write_m1(rdb):
    """m1's direct side, 3 edges: profit's top (limit 2) keeps a sorted set
    (3 edges > 2) of the first 2 of its order, purchases' (limit 3) none."""
    write_side(rdb, "d", "m1", {
        "c1": packed(profit=250500000, purchases=3, approve=True, version=17, gone=99),
        "c2": packed(purchases=1, approve=False),
        "c3": packed(profit=-1000000, purchases=3),
    }, {"count": 3, "profit:count": 2, "profit:total": 249500000, "purchases:count": 3,
        "approve:count": 1},
        {"profit": {"c1": 250500000, "c3": -1000000}})


def test_edges_of_a_layout2_side_are_decoded_by_the_slots(keyspace, rdb):
    write_m1(rdb)
    out = run(keyspace, "edges", "sales", "direct", "m1")
    assert out.returncode == 0, out.stderr
    got = sorted((loads(line) for line in out.stdout.splitlines()), key=lambda e: e["profile_id"])
    assert got == [
        {"profile_id": "c1", "database": "customers", "version": "17",
         "weights": {"profit": 250.5, "purchases": 3, "approve": True}},
        {"profile_id": "c2", "database": "customers", "version": None,
         "weights": {"purchases": 1, "approve": False}},
        {"profile_id": "c3", "database": "customers", "version": None,
         "weights": {"profit": -1, "purchases": 3}},
    ]


def test_a_layout1_side_beside_layout2_ones_is_read_as_before(keyspace, rdb):
    write_m1(rdb)
    rdb.hset(side_key("d", "m9"), mapping={
        "@c1": json.dumps({"version": "5", "weights": {"profit": 1000000, "approve": True}}),
        "count": 1, "profit:count": 1, "profit:total": 1000000, "purchases:count": 0,
        "approve:count": 1, "#last": 1})
    rdb.zadd(side_key("d", "m9", "top:profit"), {"c1": 1000000})
    out = run(keyspace, "edges", "sales", "direct", "m9")
    assert out.returncode == 0, out.stderr
    assert loads(out.stdout) == {"profile_id": "c1", "database": "customers", "version": "5",
                                 "weights": {"profit": 1, "approve": True}}
    st = loads(run(keyspace, "stats", "sales", "direct", "m9", "--json").stdout)
    assert st["count"] == 1 and st["properties"]["profit"]["top"] == \
        [{"profile_id": "c1", "value": 1}]
    out = run(keyspace, "verify", "sales", "direct")
    assert out.returncode == 0 and "sides 2, differing 0" in out.stderr, out


def test_stats_take_absent_statistics_as_0_and_tops_from_the_set_or_the_edges(keyspace, rdb):
    write_m1(rdb)
    out = run(keyspace, "stats", "sales", "direct", "m1", "--json")
    assert out.returncode == 0, out.stderr
    st = loads(out.stdout)
    assert st["count"] == 3
    profit, purchases = st["properties"]["profit"], st["properties"]["purchases"]
    assert profit["count"] == 2 and str(profit["total"]) == "249.5"
    # profit: the first 2 of its sorted set
    assert profit["top"] == [{"profile_id": "c1", "value": 250.5},
                             {"profile_id": "c3", "value": -1}]
    # purchases keeps no set (3 edges, limit 3): from the edges, ascending,
    # ties by the id ascending
    assert purchases["top"] == [{"profile_id": "c2", "value": 1},
                                {"profile_id": "c1", "value": 3},
                                {"profile_id": "c3", "value": 3}]
    assert st["properties"]["approve"]["count"] == 1
    # a side whose hash holds only its window: every statistic 0, no top
    rdb.hset(side_key("d", "m2"), "#w", b"\x02" * 8)
    st = loads(run(keyspace, "stats", "sales", "direct", "m2", "--json").stdout)
    assert st["count"] == 0 and st["properties"]["profit"]["top"] == []
    assert st["properties"]["purchases"] == {"count": 0, "top": []}


def test_a_top_from_the_edges_breaks_ties_by_the_id_descending(keyspace, rdb):
    # 2 edges (<= profit's limit: no set) at equal values: by id descending,
    # as ZREVRANGE would
    write_side(rdb, "d", "m3", {"a": packed(profit=5), "b": packed(profit=5)},
               {"count": 2, "profit:count": 2, "profit:total": 10})
    st = loads(run(keyspace, "stats", "sales", "direct", "m3", "--json").stdout)
    assert [t["profile_id"] for t in st["properties"]["profit"]["top"]] == ["b", "a"]


def test_segment_and_render_read_packed_edges(keyspace, rdb):
    write_m1(rdb)
    write_side(rdb, "d", "m2", {"c1": packed(profit=100000000, approve=False)},
               {"count": 1, "profit:count": 1, "profit:total": 100000000})
    out = run(keyspace, "segment", "sales", "direct", "--where", "approve = true and profit > 200")
    assert out.returncode == 0 and out.stdout == "m1\n", out
    out = run(keyspace, "segment", "sales", "direct", "--where", "profit >= 100")
    assert sorted(out.stdout.split()) == ["m1", "m2"], out
    out = run(keyspace, "segment", "sales", "direct", "--where", "purchases < 2")
    assert out.stdout == "m1\n", out
    text = ("{relation.sales.direct.count}: {for $i $item = relation.sales.direct.purchases.top}"
            "{$i}.{$item.profile_id}={$item.value} {end}")
    out = run(keyspace, "render", "--profile", "m1", stdin=text)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "3: 0.c2=1 1.c1=3 2.c3=3 "


def test_verify_a_right_layout2_side_is_clean(keyspace, rdb):
    write_m1(rdb)
    out = run(keyspace, "verify", "sales", "direct", "m1")
    assert out.returncode == 0 and out.stdout == "", out


def differences(cfg, profile):
    out = run(cfg, "verify", "sales", "direct", profile)
    assert out.returncode == 1, out
    return loads(out.stdout)["differences"]


def test_verify_applies_layout2s_rules(keyspace, rdb):
    top = side_key("d", "m1", "top:profit")
    write_m1(rdb)
    # a statistic stored as 0
    rdb.hset(side_key("d", "m1"), "purchases:total", 0)
    assert differences(keyspace, "m1") == {"purchases:total": "stored as 0, not absent"}
    rdb.hdel(side_key("d", "m1"), "purchases:total")
    # a score that differs from the edge's value
    rdb.zadd(top, {"c3": -2000000})
    assert differences(keyspace, "m1") == {"profit:top": "differs from the edges"}
    # not a prefix of the order: c1 missing
    rdb.delete(top)
    rdb.zadd(top, {"c3": -1000000})
    assert differences(keyspace, "m1") == {"profit:top": "differs from the edges"}
    # fewer than min(limit, p:count) members
    rdb.delete(top)
    rdb.zadd(top, {"c1": 250500000})
    assert differences(keyspace, "m1") == {"profit:top": "differs from the edges"}
    # missing with count > limit
    rdb.delete(top)
    assert differences(keyspace, "m1") == {"profit:top": "differs from the edges"}
    # a set kept while count <= limit (purchases: limit 3, 3 edges)
    rdb.zadd(top, {"c1": 250500000, "c3": -1000000})
    rdb.zadd(side_key("d", "m1", "top:purchases"), {"c2": 1, "c1": 3, "c3": 3})
    assert differences(keyspace, "m1") == {"purchases:top": "differs from the edges"}


def test_verify_a_set_of_more_than_2_x_limit_differs(keyspace, rdb):
    edges = {"c%d" % i: packed(profit=i * 1000000) for i in range(6)}
    top = {"c%d" % i: i * 1000000 for i in range(6)}
    write_side(rdb, "d", "m5", edges, {"count": 6, "profit:count": 6,
                                       "profit:total": 15000000},
               {"profit": {k: v for k, v in top.items() if v >= 2000000}})
    assert run(keyspace, "verify", "sales", "direct", "m5").returncode == 0
    rdb.zadd(side_key("d", "m5", "top:profit"), {"c1": 1000000})   # 5 > 2 x 2
    assert differences(keyspace, "m5") == {"profit:top": "differs from the edges"}
    st = loads(run(keyspace, "stats", "sales", "direct", "m5", "--json").stdout)
    assert [t["profile_id"] for t in st["properties"]["profit"]["top"]] == ["c5", "c4"]


def test_a_side_past_the_limit_without_its_set_shows_an_empty_top(keyspace, rdb):
    """(a top turned on by a reload, not rebuilt yet): not computed from a
    side's edges, however many, on every read."""
    edges = {"c%d" % i: packed(profit=i * 1000000) for i in range(3)}
    write_side(rdb, "d", "m6", edges, {"count": 3, "profit:count": 3, "profit:total": 3000000})
    st = loads(run(keyspace, "stats", "sales", "direct", "m6", "--json").stdout)
    assert st["count"] == 3 and st["properties"]["profit"]["top"] == []
    assert differences(keyspace, "m6") == {"profit:top": "differs from the edges"}
