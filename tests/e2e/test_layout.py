"""The Redis key layout of the README is a contract for the services that read
it: every key, its type, its fields and values, read here straight from Redis.
Also the tombstone's lifetime, which only a real clock can show."""

import json
import os
import subprocess
import time

import pytest
import redis


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


def config(tmp_path, port, **engine):
    path = tmp_path / "relationd.json"
    path.write_text(json.dumps({"redis": {"url": "redis://127.0.0.1:%d/0" % port,
                                          "key_prefix": "t:"},
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
    d = "t:{managers_loyal:d:42}:"
    assert sorted(r.keys(d + "*")) == sorted(d + k for k in [
        "side", "top:profit", "top:purchases", "seen"])
    assert r.type(d + "side") == "hash"
    side = r.hgetall(d + "side")
    assert {f: v for f, v in side.items() if f[0] not in "@!#"} == {
        "count": "3", "profit:count": "3", "profit:total": "349800000",
        "purchases:count": "2", "purchases:total": "4", "approve:count": "1"}
    assert r.type(d + "top:profit") == "zset"
    assert r.zrevrange(d + "top:profit", 0, 1, withscores=True) == [("1001", 250500000.0),
                                                                    ("1003", 99000000.0)]
    assert r.zrange(d + "top:purchases", 0, -1, withscores=True) == [("1002", 1.0), ("1001", 3.0)]
    # the score of the side's newest event id
    assert side["#last"] == str(int(r.zrange(d + "seen", -1, -1, withscores=True)[0][1]))
    edges = {k[1:]: json.loads(v) for k, v in side.items() if k[0] == "@"}
    assert edges == {
        "1001": {"version": "7", "weights": {"profit": 250500000, "purchases": 3, "approve": True}},
        "1002": {"version": None, "weights": {"profit": 300000, "purchases": 1, "approve": False}},
        "1003": {"version": None, "weights": {"profit": 99000000}},
    }
    assert r.type(d + "seen") == "zset"
    # members: event id, NUL, counterpart
    assert set(r.zrange(d + "seen", 0, -1)) == {"e1\x001001", "e2\x001002", "e3\x001003",
                                                 "e4\x001002"}
    assert 604790 < r.ttl(d + "seen") <= 604800
    # the reverse side of customer 1002
    rv = "t:{managers_loyal:r:1002}:"
    assert r.hget(rv + "side", "profit:total") == "300000"
    assert r.zrange(rv + "top:profit", 0, -1) == ["42"]
    # relationctl delivered the triggers: no record is left
    assert [f for f in side if f[0] == "!"] == []


def test_detach_removes_everything_but_the_tombstone_and_seen(server, r, tmp_path):
    cfg = config(tmp_path, server.port)
    apply(cfg, [ev(1, "attach", "1001", {"profit": 1, "purchases": 2}, version=3),
                ev(2, "detach", "1001", version=9)])
    d = "t:{managers_loyal:d:42}:"
    assert sorted(r.keys(d + "*")) == [d + "seen", d + "tomb:1001"]
    assert r.get(d + "tomb:1001") == "9"
    assert 604790 < r.ttl(d + "tomb:1001") <= 604800
    assert r.get("t:{managers_loyal:r:1001}:tomb:42") == "9"


def test_tombstone_expires(server, r, tmp_path):
    cfg = config(tmp_path, server.port, tombstone_ttl_s=1)
    apply(cfg, [ev(1, "attach", "1001", {"profit": 1}, version=10),
                ev(2, "detach", "1001", version=10)])
    late = apply(cfg, [ev(3, "attach", "1001", {"profit": 2}, version=5)])
    assert late.stderr.splitlines()[-1] == "applied 0, duplicate 0, stale 1, invalid 0"
    assert late.stdout == ""
    time.sleep(2.2)
    # the tombstone is gone: an old version creates the edge again
    again = apply(cfg, [ev(4, "attach", "1001", {"profit": 2}, version=5)])
    assert again.stderr.splitlines()[-1] == "applied 1, duplicate 0, stale 0, invalid 0"
    kinds = [json.loads(line)["event_data"]["kind"] for line in again.stdout.splitlines()]
    assert kinds == ["attach", "attach"]
    assert r.hget("t:{managers_loyal:d:42}:side", "profit:total") == "2000000"


def test_dedup_window_is_per_side_and_trimmed(server, r, tmp_path):
    cfg = config(tmp_path, server.port, dedup_ids=3)
    apply(cfg, [ev(i, "strengthen", "1001", {"purchases": 1}) for i in range(5)])
    d = "t:{managers_loyal:d:42}:"
    # the newest dedup_ids ids at least, at most 7 more, the oldest trimmed first
    seen = r.zrange(d + "seen", 0, -1)
    assert 3 <= len(seen) <= 3 + 7
    assert seen == ["e%d\x001001" % i for i in range(5 - len(seen), 5)]
    many = apply(cfg, [ev(10 + i, "strengthen", "1001", {"purchases": 1}) for i in range(40)])
    assert many.stderr.splitlines()[-1] == "applied 40, duplicate 0, stale 0, invalid 0"
    seen = r.zrange(d + "seen", 0, -1)
    assert 3 <= len(seen) <= 3 + 7
    assert seen == ["e%d\x001001" % i for i in range(50 - len(seen), 50)]
    # within the window: a duplicate; beyond it, the event counts again
    out = apply(cfg, [ev(49, "strengthen", "1001", {"purchases": 1})])
    assert out.stderr.splitlines()[-1] == "applied 0, duplicate 1, stale 0, invalid 0"
    out = apply(cfg, [ev(4, "strengthen", "1001", {"purchases": 1})])
    assert out.stderr.splitlines()[-1] == "applied 1, duplicate 0, stale 0, invalid 0"
    assert r.hget(d + "side", "purchases:total") == "46"


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
        "t:{managers_loyal:d:x%7B%25%7Dy}:" + k for k in ("seen", "side", "top:purchases")]
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
