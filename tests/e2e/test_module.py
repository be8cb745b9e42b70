"""The Redis module engine (build/relationd.so) against the Lua function
library: the same events applied through each (`redis.engine` function and
module, two key prefixes of one redis-server that has the module loaded)
leave the same keyspace and print the same triggers; a rebuild through each
repairs alike; a fenced side is refused alike; a replica and an append-only
file restart hold what the module wrote.

Compared per key (README "Redis key layout", layout 2): type, whether it
has a TTL, and its content (hashes field by field, sorted sets member and
score, strings byte for byte: the duplicate window's '#w', '#z' and the
'ids' ring string of 8-byte event keys depend on no clock); the outbox
records (the values of ':out', MessagePack) are compared byte for byte
after their first element, the event date (the engine's clock)."""

import hashlib
import json
import os
import subprocess
import time

import pytest
import redis

from brokers import RELATIONS, make_stream, write_json, without_date
from redis_server import Server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))


@pytest.fixture(scope="module")
def modsrv():
    s = Server(module=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture()
def mdb(modsrv):
    c = redis.Redis(port=modsrv.port)
    c.flushall()
    c.function_flush()
    yield c
    c.close()


def config(tmp_path, srv, prefix, engine, relations=RELATIONS, engine_section=None):
    doc = {"redis": {"url": "redis://127.0.0.1:%d/0" % srv.port, "key_prefix": prefix,
                     "engine": engine},
           "relations": relations}
    if engine_section:
        doc["engine"] = engine_section
    return write_json(os.path.join(str(tmp_path), "%s-%s.json" % (engine, prefix.strip(":"))),
                      doc)


def ctl(cfg, *args, input_text=None):
    return subprocess.run([RELATIONCTL, "-c", cfg] + list(args), input=input_text,
                          capture_output=True, text=True, timeout=300)


def apply(cfg, lines):
    out = ctl(cfg, "apply", "-", input_text="".join(l + "\n" for l in lines))
    assert out.returncode in (0, 3), out.stderr[-2000:]
    return out


def record_tail(rec):
    """A record without its first element (the event date): [0x96, str header, date, rest]."""
    assert rec[0] == 0x96, rec[:4]
    h = rec[1]
    if 0xa0 <= h <= 0xbf:
        return rec[2 + (h & 0x1f):]
    assert h == 0xd9, rec[:4]
    return rec[3 + rec[2]:]


def dump(client, prefix):
    """{key without prefix: (type, has TTL, content)} of every key of prefix
    but the layout key (its keyspace id is random: README "Redis key
    layout") and the schema (the engine's connection writes it, not the
    engines; without a hash tag, on a cluster it lives in the slot of its
    own name)."""
    out = {}
    for key in client.scan_iter(match=prefix + "*", count=1000):
        name = key[len(prefix):].decode("latin-1")
        if name in ("layout", "schema"):
            continue
        kind = client.type(key).decode()
        ttl = client.pttl(key) > 0
        if kind == "hash":
            content = {}
            for f, v in client.hgetall(key).items():
                if name.endswith(":out"):
                    v = record_tail(v)
                content[f] = v
        elif kind == "zset":
            content = client.zrange(key, 0, -1, withscores=True)
        elif kind == "string":
            content = client.get(key)
        else:
            content = kind
        out[name] = (kind, ttl, content)
    return out


def triggers(out):
    return [without_date(json.loads(l)) for l in out.stdout.splitlines() if l]


def assert_same(client, a, b):
    da, db = dump(client, a), dump(client, b)
    assert da, "nothing stored under " + a
    assert sorted(da) == sorted(db)
    for k in da:
        assert da[k] == db[k], k


def both_engines(tmp_path, srv, **kw):
    return config(tmp_path, srv, "f:", "function", **kw), config(tmp_path, srv, "m:", "module", **kw)


def overflow_events(tag):
    """Strengthens that push a weight past its limit: refused (INVALID), the
    side unchanged."""
    base = {"relation": "loyal", "profile_a": "ova", "profile_b": "ovb"}
    return [dict(base, id="%s-o1" % tag, op="attach", weights={"profit": 1, "purchases": 1}),
            dict(base, id="%s-o2" % tag, op="strengthen", weights={"profit": 600000000}),
            dict(base, id="%s-o3" % tag, op="strengthen", weights={"profit": 600000000}),
            dict(base, id="%s-o4" % tag, op="strengthen", weights={"purchases": 2})]


def wrapped_rings(client, prefix, dedup_ids):
    """The sides whose ids ring string is full (dedup_ids keys) and has been
    written over since (#z, the next position, is not 0)."""
    out = []
    for k in client.scan_iter(match=prefix + "*:ids"):
        z = client.hget(k[:-3] + b"side", "#z")
        if client.strlen(k) == 8 * dedup_ids and z not in (None, b"0"):
            out.append(k)
    return out


@pytest.mark.parametrize("seed,dedup_ids,clusters", [(1, None, 4), (2, None, 4), (3, None, 4),
                                                     (4, 3, 4), (5, 20, 1)])
def test_module_and_function_leave_the_same_keyspace(mdb, modsrv, tmp_path, seed, dedup_ids,
                                                      clusters):
    """Random logs (duplicates, stale versions, detaches, unset properties,
    overflow refusals) through both engines: the same keyspace, the same
    triggers, the same summary; with the default window (sides spill to the
    ids string), with a window of 3 ids (the hash's 7 kept, the oldest
    dropped) and with a window of 20 ids on one cluster, whose sides get
    many more events than 20: their ring strings wrap (the oldest key
    written over), byte for byte alike."""
    events = make_stream(500, seed, list(range(clusters)))
    lines = [e.raw.decode() for e in events] + [json.dumps(e) for e in overflow_events(seed)]
    f_cfg, m_cfg = both_engines(tmp_path, modsrv, engine_section=dedup_ids and
                                {"dedup_ids": dedup_ids})
    f_out, m_out = apply(f_cfg, lines), apply(m_cfg, lines)
    assert f_out.returncode == m_out.returncode
    assert f_out.stderr.splitlines()[-1] == m_out.stderr.splitlines()[-1]
    assert "invalid 0" not in m_out.stderr.splitlines()[-1]   # the overflow was refused
    assert triggers(f_out) == triggers(m_out)
    assert len(triggers(m_out)) > 100
    assert_same(mdb, "f:", "m:")
    calls = mdb.info("commandstats")
    assert calls["cmdstat_relationd.apply2"]["calls"] >= len(lines)
    if dedup_ids == 20:
        assert len(wrapped_rings(mdb, "m:", 20)) >= 3
    # applied again: duplicates only (with the large window), answered alike
    # (their undelivered triggers)
    f_again, m_again = apply(f_cfg, lines), apply(m_cfg, lines)
    assert f_again.stderr.splitlines()[-1] == m_again.stderr.splitlines()[-1]
    assert ("applied 0," in m_again.stderr.splitlines()[-1]) == (dedup_ids is None)
    assert triggers(f_again) == triggers(m_again)
    assert_same(mdb, "f:", "m:")


def test_an_edge_stored_differently_on_its_two_sides_changes_from_each_ones_value(
        mdb, modsrv, tmp_path):
    """Both sides of an event are applied in one call; the function takes the
    second side's new weights and statistics' changes from the first when
    the two store the same edge. An edge whose direct side was edited by
    hand (a value of its own) is strengthened from each side's own value,
    as the module does: the same keyspace, and the reverse side's edge and
    totals from its own value."""
    base = {"relation": "loyal", "profile_a": "tw_a", "profile_b": "tw_b"}
    first = [dict(base, id="tw-1", op="attach",
                  weights={"profit": 10, "purchases": 2, "approve": True})]
    then = [dict(base, id="tw-2", op="strengthen", weights={"profit": 1.5, "purchases": 1})]
    f_cfg, m_cfg = both_engines(tmp_path, modsrv)
    for cfg in (f_cfg, m_cfg):
        apply(cfg, [json.dumps(e) for e in first])
    for p in ("f:", "m:"):
        # the direct side: profit 40, purchases 7 (its statistics too)
        mdb.hset(p + "{loyal:d:tw_a}:side", mapping={
            "@tw_b": "40000000,7,1", "profit:total": "40000000", "purchases:total": "7"})
    f_out = apply(f_cfg, [json.dumps(e) for e in then])
    m_out = apply(m_cfg, [json.dumps(e) for e in then])
    assert triggers(f_out) == triggers(m_out)
    assert_same(mdb, "f:", "m:")
    direct = mdb.hgetall("f:{loyal:d:tw_a}:side")
    reverse = mdb.hgetall("f:{loyal:r:tw_b}:side")
    assert direct[b"@tw_b"] == b"41500000,8,1"
    assert direct[b"profit:total"] == b"41500000" and direct[b"purchases:total"] == b"8"
    assert reverse[b"@tw_a"] == b"11500000,3,1"
    assert reverse[b"profit:total"] == b"11500000" and reverse[b"purchases:total"] == b"3"


def test_a_new_edge_takes_each_sides_own_tombstone_version(mdb, modsrv, tmp_path):
    """An unversioned attach of a detached edge takes the version its
    tombstone kept (README "Versions"), per side: with the reverse side's
    tombstone gone (removed by hand), the direct side's edge gets version 6
    and the reverse side's none; the function, which writes the packed value
    once for both sides when they agree, writes each its own here, as the
    module does."""
    base = {"relation": "loyal", "profile_a": "tb_a", "profile_b": "tb_b"}
    first = [dict(base, id="tb-1", op="attach", version=5, weights={"profit": 10}),
             dict(base, id="tb-2", op="detach", version=6)]
    then = [dict(base, id="tb-3", op="attach", weights={"profit": 2, "purchases": 1})]
    f_cfg, m_cfg = both_engines(tmp_path, modsrv)
    for cfg in (f_cfg, m_cfg):
        apply(cfg, [json.dumps(e) for e in first])
    for p in ("f:", "m:"):
        assert mdb.get(p + "{loyal:r:tb_b}:tomb:tb_a") == b"6"
        mdb.delete(p + "{loyal:r:tb_b}:tomb:tb_a")
    f_out = apply(f_cfg, [json.dumps(e) for e in then])
    m_out = apply(m_cfg, [json.dumps(e) for e in then])
    assert triggers(f_out) == triggers(m_out)
    assert_same(mdb, "f:", "m:")
    assert mdb.hget("f:{loyal:d:tb_a}:side", "@tb_b") == b"6;2000000,1"
    assert mdb.hget("f:{loyal:r:tb_b}:side", "@tb_a") == b"2000000,1"


def test_rebuild_through_the_module_repairs_as_the_function(mdb, modsrv, tmp_path):
    events = make_stream(300, 7, [0, 1])
    lines = [e.raw.decode() for e in events]
    f_cfg, m_cfg = both_engines(tmp_path, modsrv)
    apply(f_cfg, lines)
    apply(m_cfg, lines)
    # the same damage on both: a count, a total and a top member wrong
    for p in ("f:", "m:"):
        mdb.hset(p + "{loyal:d:c0a1}:side", mapping={"count": 99, "profit:total": 5})
        mdb.zadd(p + "{loyal:d:c0a1}:top:profit", {"ghost": 1})
        mdb.hdel(p + "{loyal:r:c1b2}:side", "purchases:count")
    for cfg in (f_cfg, m_cfg):
        assert ctl(cfg, "verify", "loyal").returncode != 0
        out = ctl(cfg, "rebuild", "loyal")
        assert out.returncode == 0, out.stderr
        assert ctl(cfg, "verify", "loyal").returncode == 0
    assert_same(mdb, "f:", "m:")


def test_fence_and_refusals_are_the_functions(mdb, modsrv, tmp_path):
    """A side whose key is of another type (its outbox, which every change
    writes) fails the call with Redis's error and fences the side for the
    epoch (FENCED), a later epoch passes; the module's replies are the
    function's."""
    f_cfg, m_cfg = both_engines(tmp_path, modsrv)
    apply(f_cfg, [json.dumps(overflow_events("x")[0])])
    apply(m_cfg, [json.dumps(overflow_events("x")[0])])
    lib = mdb.function_list()[0]
    name = dict(zip(lib[::2], lib[1::2]))[b"library_name"].decode()
    fn = name.replace("relationd_", "relationd_apply_") + "_both"

    def keys(p):
        side = lambda s, own, other: ["%s{loyal:%s:%s}:%s" % (p, s, own, k) for k in
                                      ("side", "ids", "out", "tomb:" + other, "top:profit",
                                       "top:purchases")]
        return side("d", "fa", "fb") + side("r", "fb", "fa")

    def event_key(ev, counterpart):
        return hashlib.sha1(("%s\0%s" % (ev, counterpart)).encode()).digest()[:8]

    def args(epoch, ev, **w):
        pairs = []
        for i, k in enumerate(["profit", "purchases", "approve"]):
            if k in w:
                pairs += [str(i + 1), str(w[k])]
        return ["1", epoch, "1700000000000", "2026-01-01T00:00:00Z", "fa", "fb",
                event_key(ev, "fb"), event_key(ev, "fa"), "s", ""] + pairs

    def both(epoch, ev, **w):
        out = []
        for p, cmd in (("f:", ["FCALL", fn]), ("m:", ["relationd.apply2", name])):
            try:
                r = mdb.execute_command(*cmd, len(keys(p)), *keys(p), *args(epoch, ev, **w))
                out.append(("ok", r[0], r[2], r[1] != b"", r[3] != b""))
            except redis.ResponseError as e:
                out.append(("error", str(e).replace("f:", "P:").replace("m:", "P:")))
        return out

    for p in ("f:", "m:"):
        mdb.set(p + "{loyal:r:fb}:out", "in the way")
    f, m = both("ep1", "ev1", profit=5)
    assert f == m and f[0] == "error" and f[1].startswith("WRONGTYPE"), (f, m)
    f, m = both("ep1", "ev2", profit=5)
    assert f == m and f[1].startswith("FENCED P:{loyal:d:fa}:side"), (f, m)
    f, m = both("ep1", "ev3", profit=9000000000000000)
    assert f == m and f[1].startswith("FENCED"), (f, m)
    for p in ("f:", "m:"):
        mdb.delete(p + "{loyal:r:fb}:out")
    f, m = both("ep2", "ev3", profit=2000000000000000)
    assert f == m and f[1].startswith("INVALID weights.profit: result of strengthen"), (f, m)
    f, m = both("ep2", "ev4", profit=5)
    assert f == m == ("ok", 1, 1, True, True), (f, m)
    assert_same(mdb, "f:", "m:")


def test_a_call_without_its_configuration_fences_its_sides(mdb, modsrv, tmp_path):
    """A call meeting its configuration missing (a node failed over to, or
    restarted, before the engine loaded it there) fences its sides for its
    epoch, as a failing call does: a later call of that epoch, pipelined
    behind it, is refused FENCED even if another client loaded the
    configuration meanwhile, and writes nothing; the engine's next epoch
    passes. Without it the later event of the side went first."""
    f_cfg, m_cfg = both_engines(tmp_path, modsrv)
    apply(f_cfg, [json.dumps(overflow_events("n")[0])])   # for the name (the same digest)
    apply(m_cfg, [json.dumps(overflow_events("n")[0])])
    lib = mdb.function_list()[0]
    name = dict(zip(lib[::2], lib[1::2]))[b"library_name"].decode()

    def keys(own, other, s):
        return ["n:{loyal:%s:%s}:%s" % (s, own, k) for k in
                ("side", "ids", "out", "tomb:" + other, "top:profit", "top:purchases")]

    def call(conf, epoch, ev, a, b):
        ks = keys(a, b, "d") + keys(b, a, "r")
        ek = lambda cp: hashlib.sha1(("%s\0%s" % (ev, cp)).encode()).digest()[:8]
        return mdb.execute_command("relationd.apply2", conf, len(ks), *ks, "1", epoch,
                                   "1700000000000", "2026-01-01T00:00:00Z", a, b, ek(b), ek(a),
                                   "s", "", "1", "5")

    with pytest.raises(redis.ResponseError, match="^NOCONFIG"):
        call(name + "x", "ep1", "ev1", "na", "nb")
    assert mdb.hgetall("n:{loyal:d:na}:side") == {b"#fence": b"ep1"}
    assert mdb.hgetall("n:{loyal:r:nb}:side") == {b"#fence": b"ep1"}
    for a, b in (("na", "nb"), ("nc", "nb")):   # the same side, or its other side
        with pytest.raises(redis.ResponseError, match="^FENCED"):
            call(name, "ep1", "ev2", a, b)
    assert not mdb.exists("n:{loyal:d:na}:out", "n:{loyal:r:nb}:out", "n:{loyal:d:nc}:out")
    assert call(name, "ep2", "ev1", "na", "nb")[0] == 1
    side = mdb.hgetall("n:{loyal:d:na}:side")
    assert b"#fence" not in side and side[b"count"] == b"1", side
    # an apply with no arguments after its keys fences nothing
    with pytest.raises(redis.ResponseError, match="^NOCONFIG"):
        mdb.execute_command("relationd.apply", name + "x", 1, "n:{loyal:d:nz}:side")
    assert not mdb.exists("n:{loyal:d:nz}:side")


def layout1_side(client, key, edges, seen, stats, ttl_ms=None):
    """A side of layout 1 (README before layout 2): JSON edges, '#last', a
    '!' record, the statistics given (zeros kept), its window in seen (with
    a TTL) and full tops."""
    side = dict(("@" + cp, json.dumps({"version": ver, "weights": w}))
                for cp, (ver, w) in edges.items())
    side.update(stats)
    side["#last"] = "1700000000100"
    side["!old-1\0" + next(iter(edges))] = b"\x96\xa4date\x01rest"
    client.hset(key + ":side", mapping=side)
    client.zadd(key + ":seen", {"%s\0%s" % m: 1700000000000 + i for i, m in enumerate(seen)})
    if ttl_ms:
        client.pexpire(key + ":seen", ttl_ms)
    for p in ("profit", "purchases"):
        top = {cp: w[p] for cp, (_, w) in edges.items() if p in w}
        if top:
            client.zadd(key + ":top:" + p, top)


def test_the_migration_through_the_module_converts_as_the_function(mdb, modsrv, tmp_path):
    """A keyspace of layout 1 (the layout key says 1): events applied through
    each engine convert the sides they touch first (the calls name layout
    1's seen), relationd.migrate and the function's migrate convert the
    others, answering 1 then 0; the keyspaces end the same, with no key or
    field of layout 1 left."""
    f_cfg, m_cfg = both_engines(tmp_path, modsrv)
    many = [("old-%d" % i, "c0b0") for i in range(9)]            # past the hash window
    for p in ("f:", "m:"):
        mdb.set(p + "layout", "1 0123456789abcdef")
        layout1_side(mdb, p + "{loyal:d:c0a0}",
                     {"c0b0": ("1001", {"profit": 5000000, "purchases": 2, "approve": True}),
                      "c0b1": (None, {"profit": 7000000, "purchases": 1}),
                      "c0b2": (None, {"profit": 1000000}),
                      "c0b3": ("1002", {"purchases": 4, "approve": False})},
                     many, {"count": 4, "profit:count": 3, "profit:total": 13000000,
                            "purchases:count": 3, "purchases:total": 7, "approve:count": 1},
                     ttl_ms=600000)
        layout1_side(mdb, p + "{loyal:r:c0b1}", {"c0a0": (None, {"profit": 7000000,
                                                                "purchases": 1})},
                     [("old-%d" % i, "c0a0") for i in range(3)],
                     {"count": 1, "profit:count": 1, "profit:total": 7000000,
                      "purchases:count": 1, "purchases:total": 1, "approve:count": 0})
        layout1_side(mdb, p + "{loyal:d:c1a0}", {"c1b0": (None, {"profit": 3})},
                     [("old-9", "c1b0")], {"count": 1, "profit:count": 1, "profit:total": 3})
    events = make_stream(200, 4, [0])
    lines = [e.raw.decode() for e in events]
    f_out, m_out = apply(f_cfg, lines), apply(m_cfg, lines)
    assert f_out.stderr.splitlines()[-1] == m_out.stderr.splitlines()[-1]
    assert triggers(f_out) == triggers(m_out)
    assert_same(mdb, "f:", "m:")
    lib = mdb.function_list()[0]
    name = dict(zip(lib[::2], lib[1::2]))[b"library_name"].decode()
    fn = name.replace("relationd_", "relationd_apply_") + "_migrate"
    keys = lambda p: [p + "{loyal:d:c1a0}:" + k for k in ("side", "ids", "out", "seen",
                                                         "top:profit", "top:purchases")]
    for _ in range(2):
        got = [mdb.execute_command("FCALL", fn, 6, *keys("f:"), "1"),
               mdb.execute_command("relationd.migrate", name, 6, *keys("m:"), "1")]
        assert got[0] == got[1] == (1 if _ == 0 else 0), got
    assert_same(mdb, "f:", "m:")
    for p in ("f:", "m:"):
        assert not list(mdb.scan_iter(match=p + "*:seen"))
        for k in mdb.scan_iter(match=p + "*:side"):
            h = mdb.hgetall(k)
            assert b"#last" not in h and not any(f.startswith(b"!") for f in h), (k, h)
            assert not any(v.startswith(b"{") for f, v in h.items() if f.startswith(b"@")), h
    assert mdb.hexists("m:{loyal:d:c0a0}:side", "#z")       # the 9 ids went to ids
    ids = mdb.get("m:{loyal:d:c0a0}:ids")
    assert len(ids) >= 9 * 8 and len(ids) % 8 == 0
    assert ids[:9 * 8] == b"".join(hashlib.sha1(b"old-%d\0c0b0" % i).digest()[:8]
                                   for i in range(9))                # oldest first
    # a side with edges: its ids string has no expiry (seen's is not carried)
    assert mdb.hlen("m:{loyal:d:c0a0}:side") > 2 and mdb.pttl("m:{loyal:d:c0a0}:ids") == -1
    assert mdb.hget("m:{loyal:d:c1a0}:out", hashlib.sha1(b"old-1\0c1b0").digest()[:8]) == \
        b"\x96\xa4date\x01rest"


def test_the_migration_of_seen_past_a_small_window_is_the_functions(mdb, modsrv, tmp_path):
    """With engine.dedup_ids 8, relationd.migrate and the function's migrate
    convert layout 1's seen alike: 12 members of a side with edges become
    the ring of the newest 8 (oldest first, '#z' 0: full) without expiry;
    5 members the hash's '#w'; 10 members of a side without edges the ring
    with seen's expiry, the hash expiring too."""
    f_cfg, m_cfg = both_engines(tmp_path, modsrv, engine_section={"dedup_ids": 8})
    apply(f_cfg, [json.dumps(overflow_events("s8")[0])])     # loads both engines' code
    apply(m_cfg, [json.dumps(overflow_events("s8")[0])])
    ek = lambda m: hashlib.sha1(m.encode()).digest()[:8]
    for p in ("f:", "m:"):
        layout1_side(mdb, p + "{loyal:d:s8a}", {"s8b": (None, {"profit": 5})},
                     [("x-%d" % i, "s8b") for i in range(12)], {"count": 1})
        layout1_side(mdb, p + "{loyal:d:s8c}", {"s8b": (None, {"profit": 5})},
                     [("x-%d" % i, "s8b") for i in range(5)], {"count": 1})
        mdb.hset(p + "{loyal:d:s8e}:side", mapping={"#last": "1700000000100", "count": "0"})
        mdb.zadd(p + "{loyal:d:s8e}:seen", {"y-%d\0s8b" % i: 1700000000000 + i
                                            for i in range(10)})
        mdb.pexpire(p + "{loyal:d:s8e}:seen", 500000)
    lib = mdb.function_list()[0]
    name = dict(zip(lib[::2], lib[1::2]))[b"library_name"].decode()
    fn = name.replace("relationd_", "relationd_apply_") + "_migrate"
    for side in ("s8a", "s8c", "s8e"):
        keys = lambda p: [p + "{loyal:d:%s}:" % side + k for k in
                          ("side", "ids", "out", "seen", "top:profit", "top:purchases")]
        got = [mdb.execute_command("FCALL", fn, 6, *keys("f:"), "1"),
               mdb.execute_command("relationd.migrate", name, 6, *keys("m:"), "1")]
        assert got == [1, 1], (side, got)
    assert_same(mdb, "f:", "m:")
    m = "m:{loyal:d:"
    assert mdb.get(m + "s8a}:ids") == b"".join(ek("x-%d\0s8b" % i) for i in range(4, 12))
    assert mdb.hget(m + "s8a}:side", "#z") == b"0" and mdb.pttl(m + "s8a}:ids") == -1
    assert mdb.hget(m + "s8c}:side", "#w") == b"".join(ek("x-%d\0s8b" % i) for i in range(5))
    assert not mdb.exists(m + "s8c}:ids")
    assert mdb.get(m + "s8e}:ids") == b"".join(ek("y-%d\0s8b" % i) for i in range(2, 10))
    assert 0 < mdb.pttl(m + "s8e}:ids") <= 500000 and mdb.pttl(m + "s8e}:side") > 0
    assert mdb.hgetall(m + "s8e}:side") == {b"#z": b"0"}
    assert not list(mdb.scan_iter(match="*:seen"))


def test_a_restarted_server_gets_the_configuration_again(tmp_path):
    """The module keeps configurations in memory only: after a restart a call
    naming one fails with NOCONFIG (the error the engine answers by loading
    it), and the next connection of the engine loads it again."""
    srv = Server(module=True)
    srv.start()
    try:
        cfg = config(tmp_path, srv, "m:", "module")
        events = make_stream(40, 11, [0])
        apply(cfg, [e.raw.decode() for e in events[:20]])
        c = redis.Redis(port=srv.port)
        # the configuration's name is the function library's (same digest)
        apply(config(tmp_path, srv, "f:", "function"), [e.raw.decode() for e in events[:1]])
        lib = c.function_list()[0]
        probe = ["relationd.apply2", dict(zip(lib[::2], lib[1::2]))[b"library_name"], "0"]
        with pytest.raises(redis.ResponseError, match="^relationd: no arguments after the keys"):
            c.execute_command(*probe)   # known: the call gets as far as its arguments
        srv.proc.terminate()       # restarted: the module's configurations are gone
        srv.proc.wait()
        srv.start()
        with pytest.raises(redis.ResponseError, match="^NOCONFIG relationd: configuration"):
            c.execute_command(*probe)
        out = apply(cfg, [e.raw.decode() for e in events[20:]])
        assert "applied 0," not in out.stderr.splitlines()[-1], out.stderr
        assert c.info("commandstats")["cmdstat_relationd.load"]["calls"] == 1
        c.execute_command("FUNCTION", "FLUSH")
        with pytest.raises(redis.ResponseError, match="^relationd: no arguments after the keys"):
            c.execute_command(*probe)
    finally:
        srv.stop()


def test_module_engine_without_the_module_is_refused(tmp_path, modsrv):
    plain = Server()
    plain.start()
    try:
        cfg = config(tmp_path, plain, "m:", "module")
        out = ctl(cfg, "apply", "-", input_text=json.dumps(overflow_events("r")[0]) + "\n")
        assert out.returncode != 0
        assert "redis.engine" in out.stderr and "relationd module" in out.stderr
        # auto: the function on a server without the module
        cfg = config(tmp_path, plain, "a:", "auto")
        out = ctl(cfg, "apply", "-", input_text=json.dumps(overflow_events("r")[0]) + "\n")
        assert out.returncode == 0, out.stderr
        assert "cmdstat_fcall" in redis.Redis(port=plain.port).info("commandstats")
    finally:
        plain.stop()


def wait_synced(primary, replica):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = replica.info("replication")
        if (info.get("master_link_status") == "up" and
                info.get("slave_repl_offset") == primary.info("replication")["master_repl_offset"]):
            return
        time.sleep(0.05)
    raise AssertionError("the replica did not catch up")


def full_dump(client):
    return dump(client, "")


def test_replica_and_aof_hold_what_the_module_wrote(tmp_path):
    """The module replicates its effects: a replica without the module ends
    with the primary's keyspace, and so does the primary restarted from its
    append-only file (also without the module)."""
    primary = Server(persistent=True, module=True)
    primary.start()
    replica = Server()
    replica.start()
    try:
        p = redis.Redis(port=primary.port)
        r = redis.Redis(port=replica.port)
        r.replicaof("127.0.0.1", primary.port)
        # a window past the hash's 7 ids: its spill to the ids string and the
        # ring's writes (APPEND, SETRANGE once it wraps) are replicated too
        cfg = config(tmp_path, primary, "m:", "module", engine_section={"dedup_ids": 8})
        events = make_stream(300, 5, [0, 1, 2])
        apply(cfg, [e.raw.decode() for e in events])
        ctl(cfg, "rebuild", "loyal")
        wait_synced(p, r)
        before = full_dump(p)
        assert len(before) > 20
        ids = [len(v[2]) for k, v in before.items() if k.endswith(":ids")]
        assert ids and max(ids) == 8 * 8 and wrapped_rings(p, "m:", 8)
        assert full_dump(r) == before
        primary.proc.terminate()
        primary.proc.wait()
        primary.args = []            # started again without the module
        primary.start()
        assert full_dump(p) == before
    finally:
        replica.stop()
        primary.stop()


def test_on_a_cluster_the_module_routes_and_writes_as_the_function(tmp_path):
    """Three primaries with the module: each side's call goes to its slot's
    node (its keys declared: a key of another node is MOVED, keys of two
    slots CROSSSLOT), and every node ends with the same keys and values
    through the module as through the function."""
    from redis_cluster import Cluster
    c = Cluster(primaries=3, module=True)
    c.start()
    try:
        srv = c.nodes[0]
        f_cfg, m_cfg = both_engines(tmp_path, srv)
        events = make_stream(400, 21, [0, 1, 2, 3, 4, 5])
        lines = [e.raw.decode() for e in events]
        f_out, m_out = apply(f_cfg, lines), apply(m_cfg, lines)
        assert f_out.stderr.splitlines()[-1] == m_out.stderr.splitlines()[-1]
        assert triggers(f_out) == triggers(m_out)
        used = 0
        for n in c.nodes:
            client = redis.Redis(port=n.port)
            assert client.info("commandstats").get("cmdstat_relationd.apply", {}).get("calls", 0) > 0
            df, dm = dump(client, "f:"), dump(client, "m:")
            assert df == dm
            used += len(dm)
        assert used > 50
        node = redis.Redis(port=srv.port)
        with pytest.raises(redis.ResponseError, match="CROSSSLOT"):
            node.execute_command("relationd.apply", "x", 2, "{a}1", "{b}2")
        moved = 0
        for tag in ("a", "b", "c", "d", "e", "f"):
            try:
                node.execute_command("relationd.apply", "x", 1, "{%s}k" % tag)
            except redis.ResponseError as e:
                moved += str(e).startswith("MOVED")
        assert moved > 0
    finally:
        c.stop()


def test_any_arguments_or_foreign_data_get_an_error_not_a_crash(mdb, modsrv, tmp_path):
    """Random argument lists for every command, and keys holding foreign
    data (an edge that is not the layout's packed value, layout 1's JSON in
    a layout-2 side, a statistic that is not a number, keys of other types):
    each call is answered, the server stays up."""
    import random
    _, m_cfg = both_engines(tmp_path, modsrv)
    apply(m_cfg, [json.dumps(overflow_events("g")[0])])
    lib_text = ("2 604800 -10001 37800000 1 3 3 profit 1 1 1 1 2 purchases 2 0 1 2 1 "
                "approve 3 2 0 0 -1")
    assert mdb.execute_command("relationd.load", "g", lib_text) == b"OK"
    rng = random.Random(5)
    words = [b"", b"0", b"1", b"2", b"8", b"-1", b"99999999999999999999", b"n", b"a", b"s", b"d",
             b"g", b"x", b"\x00", b"{a}", b"1e3", b" 5", b"0x10", b"\xff" * 40]
    side = "{loyal:d:fuzz}"
    mdb.hset("f" + side + ":side", mapping={"@b": "5,x", "count": "many", "#w": "1234567"})
    mdb.hset("g" + side + ":side", mapping={"@B": '{"weights":{"profit":"1"}}', "#w": ""})
    mdb.set("h" + side + ":ids", "a string")
    answered = applied = 0
    names = [":side", ":ids", ":out", ":tomb:b", ":top:profit", ":top:purchases", ":seen"]
    for i in range(3000):
        cmd = rng.choice(["relationd.apply", "relationd.apply2", "relationd.rebuild",
                          "relationd.migrate", "relationd.load"])
        nkeys = rng.choice([0, 1, 5, 6, 7, 12, 14, rng.randint(0, 20)])
        keys = [rng.choice("fgh") + side + rng.choice(names + [":rebuild"])
                for _ in range(nkeys)]
        args = [rng.choice(words) for _ in range(rng.randint(0, 16))]
        if rng.random() < 0.6:       # a well-formed call, then a word or two changed
            seen = rng.random() < 0.3
            per = names[:6] + [":seen"] * seen
            nkeys = {"relationd.apply2": 2 * len(per), "relationd.apply": len(per),
                     "relationd.migrate": 6}.get(cmd, 6)
            keys = [rng.choice("fghkk") + side + k for k in per] * 2   # k: no foreign data
            keys = keys[:nkeys]
            if cmd == "relationd.rebuild":
                args = [b"1", b"tok", rng.choice([b"0", b"3"]), b"10"]
            elif cmd == "relationd.migrate":
                args = [b"1"]
            else:
                key = lambda: b"ev%06d" % rng.randint(0, 50)
                args = [b"1", b"ep%d" % rng.randint(0, 2), b"%d" % (1700000000000 + i), b"d",
                        b"A", b"B"][: 6 if cmd == "relationd.apply2" else 5] + \
                       [key() for _ in range(2 if cmd == "relationd.apply2" else 1)] + \
                       [rng.choice([b"a", b"e", b"s", b"d"]),
                        rng.choice([b"", b"5", b"7"]), b"1", b"%d" % rng.randint(-9, 9),
                        b"3", rng.choice([b"0", b"1", b"n"])]
            for _ in range(rng.randint(0, 2)):
                args[rng.randrange(len(args))] = rng.choice(words)
        argv = [cmd, rng.choice([b"g", b"g", b"nope"]), str(nkeys).encode()] + keys + args
        if cmd == "relationd.load":
            argv = [cmd, b"g2", b" ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))]
        try:
            mdb.execute_command(*argv)
            applied += cmd in ("relationd.apply", "relationd.apply2")
        except redis.ResponseError:
            pass
        answered += 1
    assert answered == 3000 and mdb.ping()
    assert applied > 100             # events got as far as the writes
    assert mdb.execute_command("relationd.load", "g", lib_text) == b"OK"   # still serving


def test_the_daemon_with_the_module_engine_waits_for_the_module(harness, daemons):
    """relationd with redis.engine "module" on a server without the module:
    an error naming redis.engine (a configuration refusal, retried slowly),
    nothing applied."""
    from brokers import make_stream as stream, wait_until
    plain = Server()
    plain.start()
    try:
        h = harness(amqp=True, redis_server=plain, redis_engine="module")
        h.feed_amqp(stream(20, seed=3, clusters=[0], tag="w"), oracle=False)
        d = h.daemon(daemons).start(ready_timeout=0)

        def refused():
            return [l for l in d.current_log().splitlines()
                    if "level=error" in l and "refused the configuration" in l]
        wait_until(refused, timeout=30, message=d.log_tail)
        line = refused()[0]
        assert "redis.engine" in line and "relationd module" in line, line
        assert redis.Redis(port=plain.port).dbsize() == 0
        d.stop()
    finally:
        plain.stop()


def test_check_config_connect_names_the_engine(tmp_path, modsrv):
    """--check-config --connect says which engine a server gets, and names
    redis.engine when it asks for a module the server has not loaded."""
    relationd = os.environ.get("RELATIOND", os.path.join(REPO, "build", "relationd"))
    plain = Server()
    plain.start()
    try:
        for srv, engine, want in ((modsrv, "auto", "engine module"),
                                  (modsrv, "function", "engine function"),
                                  (plain, "auto", "engine function")):
            cfg = config(tmp_path, srv, "c:", engine)
            out = subprocess.run([relationd, "-c", cfg, "--check-config", "--connect"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert "redis 127.0.0.1:%d: ok, %s" % (srv.port, want) in out.stdout, out.stdout
        cfg = config(tmp_path, plain, "c:", "module")
        out = subprocess.run([relationd, "-c", cfg, "--check-config", "--connect"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert "relationd: redis.engine: \"module\", but the server has not loaded" in out.stderr
    finally:
        plain.stop()


def test_edges_packed_like_the_rebuild_copys_marks_are_counted_once(mdb, modsrv, tmp_path):
    """A rebuild under way (its first step taken by hand: the side is past
    one page, past the listpack encoding) while edges whose packed values are the shortest ones — ''
    (nothing set) and '1' (the first slot 1, no version) — are attached and
    then changed: the copy tells them from its own marks, so the rebuilt
    side counts each edge once; verify is clean and both engines leave the
    same keyspace."""
    f_cfg, m_cfg = both_engines(tmp_path, modsrv)
    lib = None
    for p, cfg in (("f:", f_cfg), ("m:", m_cfg)):
        hot = [json.dumps({"id": "hot-%d" % i, "op": "attach", "relation": "loyal",
                           "profile_a": "hot", "profile_b": "b%03d" % i,
                           "weights": {"purchases": i + 1}}) for i in range(600)]
        apply(cfg, hot)
        if lib is None:
            lib = mdb.function_list()[0]
            name = dict(zip(lib[::2], lib[1::2]))[b"library_name"].decode()
        side = p + "{loyal:d:hot}:"
        keys = [side + "side", side + "rebuild", side + "top:profit", side + "top:purchases",
                side + "rebuild:top:profit", side + "rebuild:top:purchases"]
        if p == "f:":
            step = ["FCALL", name.replace("relationd_", "relationd_apply_") + "_rebuild"]
        else:
            step = ["relationd.rebuild", name]
        cursor, token = "0", "tok-" + p

        def one_step(cur):
            nxt, _ = mdb.execute_command(*(step + [len(keys)] + keys + ["1", token, cur, "10"]))
            return nxt.decode() if isinstance(nxt, bytes) else str(nxt)
        cursor = one_step(cursor)
        assert cursor != "0"            # under way: the side is marked
        assert mdb.hget(side + "side", "#rebuild") == token.encode()
        changes = [{"op": "attach", "profile_b": "x1"},                          # ''
                   {"op": "attach", "profile_b": "x2", "weights": {"profit": 0.000001}},  # '1'
                   {"op": "strengthen", "profile_b": "x1", "weights": {"purchases": 3}},
                   {"op": "strengthen", "profile_b": "x2", "weights": {"purchases": 4}},
                   {"op": "attach", "profile_b": "x3"},
                   {"op": "detach", "profile_b": "x3"}]
        apply(cfg, [json.dumps(dict(c, id="x-%d" % i, relation="loyal", profile_a="hot"))
                    for i, c in enumerate(changes)])
        while cursor != "0":
            cursor = one_step(cursor)
        out = ctl(cfg, "verify", "loyal", "direct", "hot")
        assert out.returncode == 0, out.stdout + out.stderr
        assert mdb.hget(side + "side", "count") == b"602"
        assert mdb.hget(side + "side", "purchases:count") == b"602"
    assert_same(mdb, "f:", "m:")
