"""The Redis key layout of the README is a contract for the services that read
it: every key, its type, its fields and values, read here straight from Redis.
Also the tombstone's lifetime, which only a real clock can show."""

import json
import os
import subprocess
import time

import pytest
import redis

import layout2


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))

RELATION = {
    "short": "managers_loyal", "database_a": "managers", "database_b": "customers",
    "properties": [
        {"short": "profit", "type": "float", "save_amount": True,
         "save_top": {"order": "desc", "limit": 2}},
        {"short": "purchases", "type": "int", "save_amount": True,
         "save_top": {"order": "asc", "limit": 5}},
        {"short": "approve", "type": "bool"}],
}


@pytest.fixture()
def r(server):
    client = redis.Redis(port=server.port, decode_responses=True)
    client.flushall()
    return client


def apply(cfg, events):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", "-"],
                         input="".join(json.dumps(e) + "\n" for e in events),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out


def config(tmp_path, port, redis_engine="auto", **engine):
    path = tmp_path / "relationd.json"
    path.write_text(json.dumps({"redis": {"url": "redis://127.0.0.1:%d/0" % port,
                                          "key_prefix": "t:", "engine": redis_engine},
                                "engine": engine, "relations": [RELATION]}))
    return str(path)


def ev(i, op, b, weights=None, version=None):
    e = {"id": "e%d" % i, "op": op, "relation": "managers_loyal", "profile_a": "42",
         "profile_b": b}
    if weights is not None:
        e["weights"] = weights
    if version is not None:
        e["version"] = version
    return e


def test_every_key_of_a_side(server, r, tmp_path):
    cfg = config(tmp_path, server.port)
    apply(cfg, [
        ev(1, "attach", "1001", {"profit": 250.5, "purchases": 3, "approve": True}, version=7),
        ev(2, "attach", "1002", {"profit": 0.1, "purchases": 1, "approve": False}),
        ev(3, "attach", "1003", {"profit": 99}),
        ev(4, "strengthen", "1002", {"profit": 0.2}),
    ])
    assert r.get("t:layout").split(" ")[0] == "2"
    # the relation's slots: its properties in the order they were first configured
    assert r.hget("t:schema", "managers_loyal") == "profit,purchases,approve"
    d = "t:{managers_loyal:d:42}:"
    # 3 edges: the top of profit (limit 2) is kept, the one of purchases (limit 5)
    # is computed from the edges; 4 events fit the hash window; no record is left
    assert sorted(r.keys(d + "*")) == sorted(d + k for k in ["side", "top:profit"])
    assert r.type(d + "side") == "hash"
    assert r.ttl(d + "side") == -1
    side = layout2.side(r, d + "side")
    assert {f: v for f, v in side.items() if f[0] not in "@#"} == {
        "count": "3", "profit:count": "3", "profit:total": "349800000",
        "purchases:count": "2", "purchases:total": "4", "approve:count": "1"}
    # the top: a prefix of the order (here every edge: at most 2 * limit)
    assert r.type(d + "top:profit") == "zset"
    assert r.zrevrange(d + "top:profit", 0, -1, withscores=True) == [
        ("1001", 250500000.0), ("1003", 99000000.0), ("1002", 300000.0)]
    # packed edges: [version;] then profit, purchases, approve; trailing unset left out
    assert {k[1:]: v for k, v in side.items() if k[0] == "@"} == {
        "1001": "7;250500000,3,1", "1002": "300000,1,0", "1003": "99000000"}
    # the hash window: the event keys of the side's events, oldest first
    assert set(side) == {"count", "profit:count", "profit:total", "purchases:count",
                         "purchases:total", "approve:count", "@1001", "@1002", "@1003", "#w"}
    assert layout2.window(r, d + "side") == [
        layout2.event_key("e1", "1001"), layout2.event_key("e2", "1002"),
        layout2.event_key("e3", "1003"), layout2.event_key("e4", "1002")]
    # the reverse side of customer 1002: the same edge value, its own window
    rv = "t:{managers_loyal:r:1002}:"
    assert r.hget(rv + "side", "profit:total") == "300000"
    assert r.hget(rv + "side", "@42") == "300000,1,0"
    assert layout2.window(r, rv + "side") == [layout2.event_key("e2", "42"),
                                              layout2.event_key("e4", "42")]
    assert r.keys(rv + "*") == [rv + "side"]


def test_statistics_of_zero_are_absent(server, r, tmp_path):
    cfg = config(tmp_path, server.port)
    apply(cfg, [ev(1, "attach", "1001", {"profit": 2, "purchases": 1, "approve": True}),
                ev(2, "attach", "1002", {"profit": -2}),
                ev(3, "edit", "1001", {"purchases": None, "approve": False})])
    side = layout2.side(r, "t:{managers_loyal:d:42}:side")
    assert {f: v for f, v in side.items() if f[0] not in "@#"} == {
        "count": "2", "profit:count": "2"}
    assert side["@1001"] == "2000000,,0"


def test_detach_leaves_the_window_to_expire_and_the_tombstone(server, r, tmp_path):
    cfg = config(tmp_path, server.port)
    apply(cfg, [ev(1, "attach", "1001", {"profit": 1, "purchases": 2}, version=3),
                ev(2, "detach", "1001", version=9)])
    d = "t:{managers_loyal:d:42}:"
    assert sorted(r.keys(d + "*")) == [d + "side", d + "tomb:1001"]
    assert list(layout2.side(r, d + "side")) == ["#w"]
    assert layout2.window(r, d + "side") == [layout2.event_key("e1", "1001"),
                                             layout2.event_key("e2", "1001")]
    # the edgeless side expires as a tombstone does
    assert 604790 < r.ttl(d + "side") <= 604800
    assert r.get(d + "tomb:1001") == "9"
    assert 604790 < r.ttl(d + "tomb:1001") <= 604800
    assert r.get("t:{managers_loyal:r:1001}:tomb:42") == "9"
    # an edge attached again: the side lives on
    apply(cfg, [ev(3, "attach", "1002", {"purchases": 1})])
    assert r.ttl(d + "side") == -1
    assert len(layout2.window(r, d + "side")) == 3


def test_tombstone_expires(server, r, tmp_path):
    cfg = config(tmp_path, server.port, tombstone_ttl_s=1)
    apply(cfg, [ev(1, "attach", "1001", {"profit": 1}, version=10),
                ev(2, "detach", "1001", version=10)])
    late = apply(cfg, [ev(3, "attach", "1001", {"profit": 2}, version=5)])
    assert late.stderr.splitlines()[-1] == "applied 0, duplicate 0, stale 1, invalid 0"
    assert late.stdout == ""
    time.sleep(2.2)
    # the tombstone is gone, and the edgeless sides with it: an old version
    # creates the edge again
    assert r.keys("t:*{*") == []
    again = apply(cfg, [ev(4, "attach", "1001", {"profit": 2}, version=5)])
    assert again.stderr.splitlines()[-1] == "applied 1, duplicate 0, stale 0, invalid 0"
    kinds = [json.loads(line)["event_data"]["kind"] for line in again.stdout.splitlines()]
    assert kinds == ["attach", "attach"]
    assert r.hget("t:{managers_loyal:d:42}:side", "profit:total") == "2000000"


def test_a_small_dedup_window_stays_in_the_hash(server, r, tmp_path):
    cfg = config(tmp_path, server.port, dedup_ids=3)
    apply(cfg, [ev(i, "strengthen", "1001", {"purchases": 1}) for i in range(5)])
    d = "t:{managers_loyal:d:42}:"
    assert layout2.window(r, d + "side") == [layout2.event_key("e%d" % i, "1001")
                                             for i in range(5)]
    many = apply(cfg, [ev(10 + i, "strengthen", "1001", {"purchases": 1}) for i in range(40)])
    assert many.stderr.splitlines()[-1] == "applied 40, duplicate 0, stale 0, invalid 0"
    # dedup_ids <= 7: the newest 7 event keys, in the hash
    assert layout2.window(r, d + "side") == [layout2.event_key("e%d" % i, "1001")
                                             for i in range(43, 50)]
    assert r.keys(d + "ids") == []
    # within the window: a duplicate; beyond it, the event counts again
    out = apply(cfg, [ev(43, "strengthen", "1001", {"purchases": 1})])
    assert out.stderr.splitlines()[-1] == "applied 0, duplicate 1, stale 0, invalid 0"
    out = apply(cfg, [ev(42, "strengthen", "1001", {"purchases": 1})])
    assert out.stderr.splitlines()[-1] == "applied 1, duplicate 0, stale 0, invalid 0"
    assert r.hget(d + "side", "purchases:total") == "46"


def test_a_large_dedup_window_spills_to_an_ids_ring(server, r, tmp_path):
    cfg = config(tmp_path, server.port, dedup_ids=20)
    d = "t:{managers_loyal:d:42}:"
    key = [layout2.event_key("e%d" % i, "1001") for i in range(200)]
    apply(cfg, [ev(i, "strengthen", "1001", {"purchases": 1}) for i in range(7)])
    assert len(layout2.window(r, d + "side")) == 7
    assert r.keys(d + "ids") == []
    # the 8th event key: the window moves to the string ids, 8 bytes a key,
    # oldest first; '#z' the position of the next key
    apply(cfg, [ev(7, "strengthen", "1001", {"purchases": 1})])
    side = layout2.side(r, d + "side")
    assert "#w" not in side
    assert r.type(d + "ids") == "string"
    assert layout2.ids(r, d + "ids") == key[:8]
    assert side["#z"] == "8"
    # no expiry while the side has an edge
    assert r.ttl(d + "ids") == -1
    apply(cfg, [ev(8 + i, "strengthen", "1001", {"purchases": 1}) for i in range(10)])
    assert layout2.ids(r, d + "ids") == key[:18]
    assert layout2.side(r, d + "side")["#z"] == "18"
    # full (20 keys): the oldest is written over, in place
    apply(cfg, [ev(18 + i, "strengthen", "1001", {"purchases": 1}) for i in range(30)])
    assert r.strlen(d + "ids") == 20 * 8
    assert layout2.side(r, d + "side")["#z"] == "8"  # 48 keys written, mod 20
    assert layout2.ids(r, d + "ids") == key[40:48] + key[28:40]
    assert layout2.ring(r, d, 20) == key[28:48]
    # the last 20: duplicates; the one before: applied again (and remembered)
    out = apply(cfg, [ev(28, "strengthen", "1001", {"purchases": 1}),
                      ev(47, "strengthen", "1001", {"purchases": 1})])
    assert out.stderr.splitlines()[-1] == "applied 0, duplicate 2, stale 0, invalid 0"
    out = apply(cfg, [ev(27, "strengthen", "1001", {"purchases": 1})])
    assert out.stderr.splitlines()[-1] == "applied 1, duplicate 0, stale 0, invalid 0"
    assert r.hget(d + "side", "purchases:total") == "49"
    assert layout2.ring(r, d, 20) == key[29:48] + [key[27]]
    # the window stays when the side loses its last edge; ids expires with
    # the hash, and both are persistent again with a new edge
    apply(cfg, [ev(99, "detach", "1001")])
    assert set(layout2.side(r, d + "side")) == {"#z"}
    assert 604790 < r.ttl(d + "side") <= 604800
    assert 604790 < r.ttl(d + "ids") <= 604800
    assert layout2.ring(r, d, 20) == key[30:48] + [key[27], key[99]]
    apply(cfg, [ev(100, "attach", "1001", {"purchases": 2})])
    assert r.ttl(d + "side") == -1
    assert r.ttl(d + "ids") == -1
    assert layout2.ring(r, d, 20) == key[31:48] + [key[27], key[99], key[100]]


def test_a_side_spilling_without_an_edge_expires_with_its_ids(server, r, tmp_path):
    cfg = config(tmp_path, server.port, dedup_ids=20)
    d = "t:{managers_loyal:d:42}:"
    # detaches of an edge the side never had: remembered, nothing attached
    apply(cfg, [ev(i, "detach", "1001") for i in range(8)])
    assert set(layout2.side(r, d + "side")) == {"#z"}
    assert layout2.ids(r, d + "ids") == [layout2.event_key("e%d" % i, "1001") for i in range(8)]
    assert 604790 < r.ttl(d + "side") <= 604800
    assert 604790 < r.ttl(d + "ids") <= 604800


def test_a_ring_made_smaller_by_the_configuration_keeps_its_keys(server, r, tmp_path):
    d = "t:{managers_loyal:d:42}:"
    key = [layout2.event_key("e%d" % i, "1001") for i in range(60)]
    apply(config(tmp_path, server.port, dedup_ids=20),
          [ev(i, "strengthen", "1001", {"purchases": 1}) for i in range(28)])
    assert layout2.side(r, d + "side")["#z"] == "8"
    # dedup_ids 10: the next keys go at 8, 9, then 0, 1 ...; the keys past
    # position 10 stay (duplicates still), '#z' counts modulo 10
    small = config(tmp_path, server.port, dedup_ids=10)
    apply(small, [ev(28 + i, "strengthen", "1001", {"purchases": 1}) for i in range(3)])
    assert layout2.side(r, d + "side")["#z"] == "1"
    assert layout2.ids(r, d + "ids") == (key[30:31] + key[21:28] + key[28:30] + key[10:20])
    out = apply(small, [ev(15, "strengthen", "1001", {"purchases": 1}),
                        ev(20, "strengthen", "1001", {"purchases": 1})])
    assert out.stderr.splitlines()[-1] == "applied 1, duplicate 1, stale 0, invalid 0"


def stats_of(cfg, side, profile):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "stats", "managers_loyal", side, profile],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_profile_ids_cannot_forge_keys_or_split_the_hash_tag(server, r, tmp_path):
    """'%', '{' and '}' in a profile id are percent-encoded in keys: an id
    cannot end the hash tag early, nor name another profile's keys (here a
    tombstone whose name would be the side hash of profile 'a}:tomb:b')."""
    cfg = config(tmp_path, server.port)

    def e(i, op, a, b, **kw):
        return dict({"id": "k%d" % i, "op": op, "relation": "managers_loyal",
                     "profile_a": a, "profile_b": b}, **kw)
    apply(cfg, [e(1, "attach", "a", "b}:side", weights={"purchases": 1}, version=1),
                e(2, "detach", "a", "b}:side", version=2),
                e(3, "attach", "a}:tomb:b", "c", weights={"purchases": 5}),
                e(4, "attach", "x{%}y", "z", weights={"purchases": 7})])
    assert r.get("t:{managers_loyal:d:a}:tomb:b%7D:side") == "2"
    assert r.get("t:{managers_loyal:r:b%7D:side}:tomb:a") == "2"
    assert stats_of(cfg, "direct", "a}:tomb:b")["count"] == 1
    assert stats_of(cfg, "direct", "a}:tomb:b")["properties"]["purchases"]["total"] == 5
    assert r.type("t:{managers_loyal:d:a%7D:tomb:b}:side") == "hash"
    # every key of a side has the whole side in its hash tag
    assert sorted(r.keys("t:{managers_loyal:d:x*")) == [
        "t:{managers_loyal:d:x%7B%25%7Dy}:side"]
    assert stats_of(cfg, "direct", "x{%}y")["properties"]["purchases"]["total"] == 7
    # a further event on each: no key of another type is in the way
    out = apply(cfg, [e(5, "strengthen", "a}:tomb:b", "c", weights={"purchases": 1}),
                      e(6, "attach", "a", "b}:side", weights={"purchases": 1}, version=3)])
    assert out.stderr.splitlines()[-1] == "applied 2, duplicate 0, stale 0, invalid 0"
    assert stats_of(cfg, "direct", "a}:tomb:b")["properties"]["purchases"]["total"] == 6
    assert stats_of(cfg, "direct", "a")["count"] == 1


def test_an_event_id_is_remembered_per_edge(server, r, tmp_path):
    """An id reused on another edge is another event on both sides (not a
    duplicate on the side the two edges share and new on the other); each is
    a duplicate when delivered again."""
    cfg = config(tmp_path, server.port)
    first, other = ev(1, "strengthen", "1001", {"purchases": 2}), ev(1, "strengthen", "1002",
                                                                         {"purchases": 3})
    out = apply(cfg, [first, other])
    assert out.stderr.splitlines()[-1] == "applied 2, duplicate 0, stale 0, invalid 0"
    assert len(out.stdout.splitlines()) == 4  # an attach trigger on each side of each edge
    st = stats_of(cfg, "direct", "42")
    assert (st["count"], st["properties"]["purchases"]["total"]) == (2, 5)
    assert stats_of(cfg, "reverse", "1002")["properties"]["purchases"]["total"] == 3
    again = apply(cfg, [other, first])
    assert again.stderr.splitlines()[-1] == "applied 0, duplicate 2, stale 0, invalid 0"
    assert again.stdout == ""
    assert stats_of(cfg, "direct", "42")["properties"]["purchases"]["total"] == 5


def layout1_side(r, tag, edges, stats, seen, records=None, ttl_ms=None):
    """A side as layout 1 (the releases before layout 2) wrote it: JSON edges,
    statistics (zeros included), '#last', records in '!' fields, the window in
    `seen` (members id NUL counterpart)."""
    h = dict(stats)
    for cp, (version, weights) in edges.items():
        h["@" + cp] = json.dumps({"version": version, "weights": weights},
                                 separators=(",", ":"))
    for member, record in (records or {}).items():
        h["!" + member] = record
    if seen and edges:
        h["#last"] = str(max(seen.values()))
    r.hset(tag + "side", mapping=h)
    if seen:
        r.zadd(tag + "seen", seen)
        if ttl_ms:
            r.pexpire(tag + "seen", ttl_ms)


def test_a_layout_1_side_is_converted_when_an_event_touches_it(server, r, tmp_path):
    cfg = config(tmp_path, server.port)
    r.set("t:layout", "1 0123456789abcdef")
    d = "t:{managers_loyal:d:42}:"
    layout1_side(r, d, {
        "1001": ("7", {"profit": 250500000, "purchases": 3, "approve": True}),
        "1002": (None, {"profit": 300000, "approve": False}),
        "1003": (None, {"profit": 99000000})},
        {"count": "3", "profit:count": "3", "profit:total": "349800000",
         "purchases:count": "1", "purchases:total": "3", "approve:count": "1"},
        {"e1\x001001": 1000001, "e2\x001002": 1000002, "e3\x001003": 1000010},
        records={"e3\x001003": "a record"})
    layout1_side(r, "t:{managers_loyal:r:1002}:", {"42": (None, {"profit": 300000, "approve": False})},
                 {"count": "1", "profit:count": "1", "profit:total": "300000",
                  "purchases:count": "0", "purchases:total": "0", "approve:count": "0"},
                 {"e2\x0042": 1000002})
    r.zadd(d + "top:profit", {"1001": 250500000, "1002": 300000, "1003": 99000000})
    r.zadd(d + "top:purchases", {"1001": 3})
    out = apply(cfg, [ev(4, "strengthen", "1002", {"purchases": 2})])
    assert out.stderr.splitlines()[-1] == "applied 1, duplicate 0, stale 0, invalid 0"
    side = layout2.side(r, d + "side")
    assert {f: v for f, v in side.items() if f != "#w"} == {
        "count": "3", "profit:count": "3", "profit:total": "349800000",
        "purchases:count": "2", "purchases:total": "5", "approve:count": "1",
        "@1001": "7;250500000,3,1", "@1002": "300000,2,0", "@1003": "99000000"}
    # the window: seen's members as event keys, in score order, then the new event
    assert layout2.window(r, d + "side") == [
        layout2.event_key("e1", "1001"), layout2.event_key("e2", "1002"),
        layout2.event_key("e3", "1003"), layout2.event_key("e4", "1002")]
    assert r.exists(d + "seen") == 0
    # the undelivered record, under its event key
    assert layout2.raw(r, "hgetall", d + "out") == {layout2.event_key("e3", "1003"): b"a record"}
    # tops: 3 edges, more than profit's limit (2): kept (at most 4); not purchases' (5)
    assert r.zrevrange(d + "top:profit", 0, -1) == ["1001", "1003", "1002"]
    assert r.exists(d + "top:purchases") == 0
    # an event remembered by layout 1 is still a duplicate
    again = apply(cfg, [ev(2, "attach", "1002", {"profit": 1})])
    assert again.stderr.splitlines()[-1] == "applied 0, duplicate 1, stale 0, invalid 0"


def migrate_function(r):
    """The name of the loaded library's migrate function."""
    names = []
    for lib in r.execute_command("FUNCTION", "LIST"):
        for f in dict(zip(lib[0::2], lib[1::2]))["functions"]:
            name = dict(zip(f[0::2], f[1::2]))["name"]
            if name.startswith("relationd_apply_") and name.endswith("_migrate"):
                names.append(name)
    assert len(names) == 1, names
    return names[0]


def test_the_migrate_function_converts_a_side_once(server, r, tmp_path):
    # the function library's own migrate (the server may have the module)
    cfg = config(tmp_path, server.port, redis_engine="function", dedup_ids=20)
    r.execute_command("FUNCTION", "FLUSH")  # other tests' libraries
    apply(cfg, [])       # the library loaded, the schema written
    rv = "t:{managers_loyal:r:1001}:"
    seen = {"e%d\x00%s" % (i, "42"): 2000000 + 3 * i for i in range(9)}
    layout1_side(r, rv, {"42": (None, {"purchases": 4})},
                 {"count": "1", "profit:count": "0", "profit:total": "0",
                  "purchases:count": "1", "purchases:total": "4", "approve:count": "0"},
                 seen, ttl_ms=500000000)
    r.zadd(rv + "top:purchases", {"42": 4})
    keys = [rv + k for k in ("side", "ids", "out", "seen", "top:profit", "top:purchases")]
    fn = migrate_function(r)
    assert r.fcall(fn, len(keys), *keys, "1") == 1
    side = layout2.side(r, rv + "side")
    # past 7 events the window is in the ring ids, oldest first, '#z' its
    # next position; no expiry: the side has an edge
    assert side == {"count": "1", "purchases:count": "1", "purchases:total": "4",
                    "@42": ",4", "#z": "9"}
    assert layout2.ids(r, rv + "ids") == [layout2.event_key("e%d" % i, "42") for i in range(9)]
    assert r.pttl(rv + "ids") == -1
    assert r.exists(rv + "seen", rv + "top:purchases", rv + "out") == 0
    # once is enough
    assert r.fcall(fn, len(keys), *keys, "1") == 0
    # an edgeless side keeps its window and expires
    e = "t:{managers_loyal:r:1009}:"
    layout1_side(r, e, {}, {}, {"e1\x0042": 5}, records={"e1\x0042": "r"})
    keys = [e + k for k in ("side", "ids", "out", "seen", "top:profit", "top:purchases")]
    assert r.fcall(fn, len(keys), *keys, "1") == 1
    assert list(layout2.side(r, e + "side")) == ["#w"]
    assert 604790 < r.ttl(e + "side") <= 604800
    assert layout2.raw(r, "hget", e + "out", layout2.event_key("e1", "42")) == b"r"
    # more than dedup_ids remembered: the newest 20, the ring full ('#z' 0);
    # an edgeless side: seen's lifetime carried to ids. The hash, in the
    # hashtable encoding (a long record), is written afresh: a listpack
    m = "t:{managers_loyal:r:1010}:"
    layout1_side(r, m, {}, {}, {"e%d\x0042" % i: 3000000 + i for i in range(25)},
                 records={"e24\x0042": "r" * 100}, ttl_ms=400000000)
    r.hset(m + "side", "#fence", "7")
    assert r.object("encoding", m + "side") == "hashtable"
    keys = [m + k for k in ("side", "ids", "out", "seen", "top:profit", "top:purchases")]
    assert r.fcall(fn, len(keys), *keys, "1") == 1
    assert layout2.side(r, m + "side") == {"#fence": "7", "#z": "0"}
    assert r.object("encoding", m + "side") == "listpack"
    assert layout2.ids(r, m + "ids") == [layout2.event_key("e%d" % i, "42") for i in range(5, 25)]
    assert 399000000 < r.pttl(m + "ids") <= 400000000
    assert 604790 < r.ttl(m + "side") <= 604800
    assert r.exists(m + "seen") == 0
