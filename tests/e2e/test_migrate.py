"""The migration from layout 1 (README "Operations", "Migration from layout
1"): a keyspace written by the release before layout 2 (commit PREVIOUS,
built from git by the test) is converted by `relationctl migrate` while this
build's daemon applies more events to it. Afterwards `relationctl verify` is
clean, every side's statistics equal the reference model's (test_apply.Model),
no layout-1 key or field is left, the layout key says version 2 with the
keyspace id it had, and events applied before the migration are still
recognised as duplicates. Through both engines (`redis.engine`)."""

import json
import os
import random
import re
import shutil
import subprocess

import pytest
import redis

from brokers import Event, produce, wait_until
from conftest import RELATIONCTL, loads
from redis_server import REPO
from test_apply import (HOSTILE_POOLS, HUGE_TTL, POOLS, REL_PEERS, REL_SALES, Model, canon,
                        every_side, fixed, gen_events)

# The release before layout 2: its relationctl writes the layout-1 keyspace.
PREVIOUS = "176a1a0"
RELATIONS = [REL_SALES, REL_PEERS]
# A window holding every id of the test's streams, tombstones kept: the
# model forgets nothing either.
ENGINE = dict(HUGE_TTL, dedup_ids=10000)
# Sides with a few events each (their window fits the side hash in layout 2)
# beside POOLS' busy ones (a window past 7 ids: the sorted set).
WIDE = {"sales": (["wm%d" % i for i in range(12)], ["wc%d" % i for i in range(12)]),
        "peers": (["wp%d" % i for i in range(10)], ["wq%d" % i for i in range(10)])}
SUMMARY = re.compile(r"^sides (\d+) converted, (\d+) already in layout 2$", re.M)


@pytest.fixture(scope="session")
def previous_relationctl():
    """relationctl of commit PREVIOUS: its tree from `git archive`, built with
    its own Makefile under build/previous-PREVIOUS (kept for the next run)."""
    home = os.path.join(REPO, "build", "previous-" + PREVIOUS)
    binary = os.path.join(home, "build", "relationctl")
    if os.access(binary, os.X_OK):
        return binary
    src = home + ".tmp"
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    archive = subprocess.run("git -C '%s' archive %s | tar -x -C '%s'" % (REPO, PREVIOUS, src),
                             shell=True, capture_output=True, text=True, timeout=120)
    assert archive.returncode == 0, "git archive %s: %s" % (PREVIOUS, archive.stderr)
    build = subprocess.run(["nice", "make", "-C", src, "-j2", "BUILD=build", "build/relationctl"],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, "building %s:\n%s" % (PREVIOUS, build.stderr[-3000:])
    shutil.rmtree(home, ignore_errors=True)
    os.replace(src, home)
    return binary


def ctl(config, *args, binary=RELATIONCTL, stdin=None, timeout=300):
    return subprocess.run([binary, "-c", config] + list(args), input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def stream(seed, n, pools, tag):
    """gen_events with ids of their own (tag): streams never share an id."""
    events = gen_events(random.Random(seed), n, pools)
    for e in events:
        e["id"] = "%s-%s" % (tag, e["id"])
    return events


def as_kafka(events):
    """Events for the Kafka source, each edge's in one partition (so that the
    daemon applies them in the model's order; the statistics do not depend
    on the order between edges)."""
    return [Event(sum(("%s:%s:%s" % (e["relation"], e["profile_a"], e["profile_b"])).encode()),
                  e) for e in events]


def layout_value(client, prefix):
    v = client.get(prefix + "layout")
    return v.decode() if isinstance(v, bytes) else v


def layout1_leftovers(raw, prefix):
    """Keys and fields only layout 1 has: `:seen` windows, `#last` and
    outbox `!` fields, JSON edge values (raw: a client answering bytes)."""
    left = list(raw.scan_iter(match=prefix + "{*}:seen", count=1000, _type="zset"))
    for k in raw.scan_iter(match=prefix + "{*}:side", count=1000, _type="hash"):
        left += [(k, f) for f, v in raw.hgetall(k).items()
                 if f == b"#last" or f.startswith(b"!") or (f.startswith(b"@") and v.startswith(b"{"))]
    return left


# One side far larger than the others: HUB_EDGES edges and as many ids
# again in its window (one call converts it all).
HUB_EDGES = 5000


def hub_events():
    """The hub's events (not in the model, which recomputes a side from all
    its edges at every event): an attach of each edge, then a strengthen of
    one edge in five; and the hub's side in a Model of its own."""
    events, hub = [], Model(RELATIONS)
    for i in range(HUB_EDGES):
        w = {"profit": round((i % 97) * 0.25, 2), "qty": i % 9, "ok": i % 2 == 0}
        events.append({"id": "hub-a-%d" % i, "op": "attach", "relation": "sales",
                       "profile_a": "hub", "profile_b": "hc%d" % i, "weights": w})
        hub.edges[("sales", "hub", "hc%d" % i)] = {
            "w": dict(w, profit=fixed(w["profit"])), "v": None}
    for i in range(0, HUB_EDGES, 5):
        events.append({"id": "hub-s-%d" % i, "op": "strengthen", "relation": "sales",
                       "profile_a": "hub", "profile_b": "hc%d" % i, "weights": {"qty": 1}})
        hub.edges[("sales", "hub", "hc%d" % i)]["w"]["qty"] += 1
    return events, hub


def check_sides(config, model, pools_list):
    return check_stats(config, model, [s for pools in pools_list for s in every_side(pools)])


def check_hub(config, hub_model):
    """The hub's side and three of its counterparts' (pools of their own)."""
    return check_stats(config, hub_model, [("sales", "direct", "hub")] +
                       [("sales", "reverse", "hc%d" % i) for i in (0, 1, HUB_EDGES - 1)])


def check_stats(config, model, sides):
    """`relationctl stats` of each (relation, side, profile) against the
    model's: the differences."""
    problems = []
    for rel, side, prof in sides:
        out = ctl(config, "stats", rel, side, prof, "--json", timeout=30)
        assert out.returncode == 0, (rel, side, prof, out.stderr)
        if canon(loads(out.stdout)) != canon(model.stats(rel, side, prof)):
            problems.append("%s %s %s:\n  got  %s\n  want %s" % (
                rel, side, prof, out.stdout.strip(), model.stats(rel, side, prof)))
    return problems


def test_a_layout_1_keyspace_migrated_while_the_daemon_runs(engine, previous_relationctl,
                                                            harness, daemons, redis_proc, rdb,
                                                            tmp_path):
    rng = random.Random(7001)
    raw = redis.Redis(host="127.0.0.1", port=redis_proc.port)     # binary fields as bytes
    model = Model(RELATIONS)
    h = harness(kafka=True, relations=RELATIONS, engine=ENGINE, redis_engine=engine)
    prefix = h.names.prefix
    every = (POOLS, WIDE, HOSTILE_POOLS)

    # 1. the previous release writes a layout-1 keyspace
    before = stream(1, 1200, POOLS, "a") + stream(2, 500, WIDE, "w") + \
        stream(3, 300, HOSTILE_POOLS, "h")
    rng.shuffle(before)
    before += [rng.choice(before) for _ in range(60)]              # duplicates
    applied = set()
    for e in before:
        if model.apply(e)[0] == "applied":
            applied.add(e["id"])
    old_cfg = str(tmp_path / "previous.json")
    with open(old_cfg, "w") as f:
        json.dump({"redis": {"url": h.config["redis"]["url"], "key_prefix": prefix},
                   "engine": ENGINE, "relations": RELATIONS}, f)
    out = ctl(old_cfg, "apply", "-", "--no-triggers", binary=previous_relationctl,
              stdin="".join(json.dumps(e) + "\n" for e in before))
    assert out.returncode == 0, out.stderr[-2000:]
    # (a stale event's id may or may not be remembered: duplicate or stale again)
    m = re.search(r"^applied (\d+), duplicate (\d+), stale (\d+), invalid 0$", out.stderr, re.M)
    assert m and int(m.group(1)) == len(applied) and \
        int(m.group(2)) + int(m.group(3)) == len(before) - len(applied), out.stderr[-500:]
    hub, hub_model = hub_events()
    out = ctl(old_cfg, "apply", "-", "--no-triggers", binary=previous_relationctl,
              stdin="".join(json.dumps(e) + "\n" for e in hub))
    assert out.returncode == 0 and out.stderr.endswith(
        "applied %d, duplicate 0, stale 0, invalid 0\n" % len(hub)), out.stderr[-500:]
    assert any(raw.scan_iter(match=prefix + "{*}:seen", _type="zset")), \
        "the previous release wrote no layout-1 window"

    # 2. this build's daemon on it: the layout key says 1 (layout-1 data)
    d = h.daemon(daemons).start()
    wait_until(lambda: layout_value(rdb, prefix), timeout=30, message=d.log_tail)
    value = layout_value(rdb, prefix)
    assert re.fullmatch(r"1 [0-9a-f]{16}", value), value
    keyspace = value.split()[1]

    # 3. more traffic (new events, duplicates of old ones) while migrate runs
    after = stream(4, 1200, POOLS, "b") + stream(5, 300, WIDE, "x")
    rng.shuffle(after)
    for i in rng.sample(range(len(after)), 40):
        after.insert(i, rng.choice(before))
    for e in after:
        model.apply(e)
    half = len(after) // 2
    produce(h.producer, h.topics[0], as_kafka(after[:half]), h.kafka.partitions)
    one = ctl(d.config_path, "migrate", "peers")
    assert one.returncode == 0, one.stderr
    assert "left as it was" in one.stderr and layout_value(rdb, prefix) == value, one.stderr
    full = subprocess.Popen([RELATIONCTL, "-c", d.config_path, "migrate"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    produce(h.producer, h.topics[0], as_kafka(after[half:]), h.kafka.partitions)
    _, err = full.communicate(timeout=300)
    assert full.returncode == 0, err
    assert "layout: version 2, keyspace id %s" % keyspace in err, err
    converted = sum(int(m.group(1)) for m in SUMMARY.finditer(one.stderr + err))
    assert converted > 0, (one.stderr, err)
    wait_until(lambda: h.lag() == 0, timeout=180, message=d.log_tail)

    # 4. a run again finds every side in layout 2
    again = ctl(d.config_path, "migrate")
    assert again.returncode == 0, again.stderr
    m = SUMMARY.search(again.stderr)
    assert m and m.group(1) == "0" and int(m.group(2)) > 0, again.stderr

    # 5. verify clean, the model's statistics, nothing of layout 1, version 2
    for rel in ("sales", "peers"):
        v = ctl(d.config_path, "verify", rel)
        assert v.returncode == 0 and v.stdout == "", (rel, v.stdout[:2000], v.stderr)
    problems = check_sides(d.config_path, model, every)
    problems += check_hub(d.config_path, hub_model)
    assert not problems, "\n".join(problems[:8])
    assert layout1_leftovers(raw, prefix) == []
    assert layout_value(rdb, prefix) == "2 " + keyspace

    # 6. events applied by the previous release are still duplicates: each a
    # strengthen of a number on an edge still there, counted twice otherwise
    resent = [e for e in before if e["op"] == "strengthen" and e["id"] in applied and
             (e["relation"], str(e["profile_a"]), str(e["profile_b"])) in model.edges and
             any(isinstance(v, (int, float)) and not isinstance(v, bool) and v
                 for v in (e.get("weights") or {}).values())]
    resent = rng.sample(resent, min(30, len(resent)))
    assert len(resent) >= 10, "too few strengthens to send again"
    assert {model.apply(e)[0] for e in resent} == {"duplicate"}
    resent += rng.sample([e for e in hub if e["op"] == "strengthen"], 10)
    produce(h.producer, h.topics[0], as_kafka(resent), h.kafka.partitions)
    wait_until(lambda: h.lag() == 0, timeout=120, message=d.log_tail)
    problems = check_sides(d.config_path, model, every) + check_hub(d.config_path, hub_model)
    assert not problems, "counted twice:\n" + "\n".join(problems[:8])
