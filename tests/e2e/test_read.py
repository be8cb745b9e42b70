"""The read side: `relationctl edges` of every side after a randomized stream
equals the reference model's edges (weights as in triggers, the
counterpart's database, the last version), on one server and on hostile
profile ids; unknown relation or side exits 2 naming it. Every test runs through both
engines (`redis.engine` function and module write what is read; the
session's redis-server has the module loaded)."""

import json
import subprocess

import pytest

import test_apply as A
from conftest import RELATIONCTL, Relationctl, loads


@pytest.fixture()
def ctl(redis_proc, tmp_path, engine):
    """relationctl through each engine in turn."""
    return Relationctl(redis_proc, tmp_path, redis_engine=engine)


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


def assert_edges_equal_the_model(got, model, rel, side, prof):
    """got (`relationctl edges` of the side) equals the model's edges, in any order."""
    key = lambda x: x["profile_id"].encode()   # noqa: E731
    assert A.canon(sorted(got, key=key)) == \
        A.canon(sorted(model_edges(model, rel, side, prof), key=key)), (rel, side, prof)


@pytest.mark.parametrize("pools", [A.POOLS, A.HOSTILE_POOLS], ids=["plain", "hostile-ids"])
def test_edges_of_every_side_equal_the_model(ctl, rdb, pools):
    cfg, events, model = A.model_stream(ctl, 4242, 3000, pools)
    res = ctl.apply(cfg, events)
    assert res.returncode == 0, res.stderr
    seen = 0
    for rel, side, prof in A.every_side(pools):
        got = edges(cfg, rel, side, prof)
        ids = [g["profile_id"] for g in got]
        assert len(ids) == len(set(ids)), "an edge printed twice"
        assert_edges_equal_the_model(got, model, rel, side, prof)
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


# ---- segment ----------------------------------------------------------------

from decimal import Decimal  # noqa: E402

OPS = {"=": lambda x, v: x == v, "!=": lambda x, v: x != v, ">": lambda x, v: x > v,
       ">=": lambda x, v: x >= v, "<": lambda x, v: x < v, "<=": lambda x, v: x <= v}


def model_segment(model, rel, side, conds, pools):
    """The profiles of the side's pool with an edge satisfying every
    condition (property, op, value) of the model's weights."""
    ptype = model.rels[rel].ptype
    out = set()
    for (r, a, b), e in model.edges.items():
        if r != rel:
            continue
        ok = True
        for p, op, v in conds:
            if p not in e["w"]:
                ok = False
                break
            x = e["w"][p]
            if ptype[p] == "float":
                x = Decimal(x).scaleb(-6)
            ok = ok and OPS[op](x, v)
        if ok:
            out.add(a if side == "direct" else b)
    return out


def segment(cfg, rel, side, where=None):
    out = subprocess.run([RELATIONCTL, "-c", cfg, "segment", rel, side] +
                         (["--where", where] if where is not None else []),
                         capture_output=True, text=True, timeout=60)
    return out


EXPRS = {
    "sales": [
        (None, []),
        ("profit > 5", [("profit", ">", Decimal("5"))]),
        ("profit>=5.5 and qty<3", [("profit", ">=", Decimal("5.5")), ("qty", "<", 3)]),
        ("profit > 2.0000005", [("profit", ">", Decimal("2.0000005"))]),
        ("profit <= -0.0000001", [("profit", "<=", Decimal("-0.0000001"))]),
        ("profit = 0", [("profit", "=", Decimal("0"))]),
        ("ok = true", [("ok", "=", True)]),
        ("ok != true and qty >= 2", [("ok", "!=", True), ("qty", ">=", 2)]),
        ("qty = 1", [("qty", "=", 1)]),
        ("qty != 1", [("qty", "!=", 1)]),
        ("ok=false and profit< 50 and qty <=4", [("ok", "=", False), ("profit", "<", Decimal(50)),
                                                  ("qty", "<=", 4)]),
    ],
    "peers": [
        ("score > 3", [("score", ">", 3)]),
        ("w >= 0.5", [("w", ">=", Decimal("0.5"))]),
        ("w < 0.25 and score != 0", [("w", "<", Decimal("0.25")), ("score", "!=", 0)]),
    ],
}


@pytest.mark.parametrize("pools", [A.POOLS, A.HOSTILE_POOLS], ids=["plain", "hostile-ids"])
def test_segment_equals_the_model(ctl, rdb, pools):
    cfg, events, model = A.model_stream(ctl, 99, 3000, pools)
    assert ctl.apply(cfg, events).returncode == 0
    nonempty = 0
    for rel, exprs in EXPRS.items():
        for side in ("direct", "reverse"):
            for where, conds in exprs:
                out = segment(cfg, rel, side, where)
                assert out.returncode == 0, (where, out.stderr)
                got = out.stdout.split("\n")[:-1]
                assert len(got) == len(set(got)), (where, "a profile printed twice")
                want = model_segment(model, rel, side, conds, pools)
                assert set(got) == want, (rel, side, where, sorted(got), sorted(want))
                nonempty += bool(want)
    assert nonempty >= 15   # the expressions select something


def test_segment_errors_name_what_is_wrong(ctl, rdb):
    cfg = ctl.config([A.REL_SALES])
    for where, msg in (
            ("nope > 1", 'unknown property "nope" of relation sales'),
            ("ok > true", "ok: a bool takes only = or != with true or false"),
            ("ok = 1", "ok: a bool takes only = or != with true or false"),
            ("qty = 1.5", 'qty: an int takes only integers, not "1.5"'),
            ("profit = abc", 'profit: a float takes a number, not "abc"'),
            ("profit ~ 1", "profit: expected an operator (= != > >= < <=)"),
            ("profit >", "profit: a value is missing"),
            ("profit > 1 or qty = 2", 'expected "and" between conditions, not "or"'),
            ("profit > 1 AND qty = 2", 'expected "and" between conditions, not "AND"'),
            ("> 1", 'expected a property name at "> 1"'),
            ("  ", "no condition")):
        out = segment(cfg, "sales", "direct", where)
        assert out.returncode == 2 and msg in out.stderr, (where, out.stderr)
    out = segment(cfg, "nope", "direct")
    assert out.returncode == 2 and 'unknown relation "nope"' in out.stderr


# ---- render -----------------------------------------------------------------

def num(v):
    """A number as relationctl prints it (700.5, 0, -3)."""
    if isinstance(v, Decimal):
        s = format(v.normalize(), "f")
        return "0" if s in ("-0", "0") else s
    return str(v)


TEMPLATE = (
    "Hi {$item.lead._fname}! {if x}kept{end} {unknown}\n"
    "D {relation.sales.direct.count}; profit {relation.sales.direct.profit.count}"
    "/{relation.sales.direct.profit.total}; qty {relation.sales.direct.qty.total}; "
    "ok {relation.sales.direct.ok.count}\n"
    "{for $i $it = relation.sales.direct.profit.top}[{$i} {$it.profile_id} {$it.value} "
    "{$it.other}]{else}none{end}\n"
    "R {relation.sales.reverse.count} {for $k $x = relation.sales.reverse.qty.top}"
    "<{$k}:{$x.profile_id}={$x.value}>{end}|\n"
    "P {relation.peers.direct.w.count} {relation.peers.reverse.score.total} {"
)


def expected(model, prof):
    sd, sr = model.stats("sales", "direct", prof), model.stats("sales", "reverse", prof)
    pd, pr = model.stats("peers", "direct", prof), model.stats("peers", "reverse", prof)
    top = sd["properties"]["profit"]["top"]
    loop = "".join("[%d %s %s {$it.other}]" % (i, t["profile_id"], num(t["value"]))
                   for i, t in enumerate(top)) or "none"
    rtop = sr["properties"]["qty"]["top"]
    return ("Hi {$item.lead._fname}! {if x}kept{end} {unknown}\n"
            "D %d; profit %d/%s; qty %s; ok %d\n%s\n"
            "R %d %s|\n"
            "P %d %s {") % (
        sd["count"], sd["properties"]["profit"]["count"],
        num(sd["properties"]["profit"]["total"]), num(sd["properties"]["qty"]["total"]),
        sd["properties"]["ok"]["count"], loop, sr["count"],
        "".join("<%d:%s=%s>" % (i, t["profile_id"], num(t["value"])) for i, t in enumerate(rtop)),
        pd["properties"]["w"]["count"], num(pr["properties"]["score"]["total"]))


def render(cfg, template, prof):
    return subprocess.run([RELATIONCTL, "-c", cfg, "render", "-", "--profile", prof],
                          input=template, capture_output=True, text=True, timeout=30)


def test_render_equals_text_from_the_model(ctl, rdb):
    cfg, events, model = A.model_stream(ctl, 31337, 3000)
    assert ctl.apply(cfg, events).returncode == 0
    profiles = sorted(set(A.POOLS["sales"][0] + A.POOLS["sales"][1] + A.POOLS["peers"][0])) + \
        ["nobody"]
    empty_tops = 0
    for prof in profiles:
        out = render(cfg, TEMPLATE, prof)
        assert out.returncode == 0, out.stderr
        assert out.stdout == expected(model, prof), prof
        empty_tops += "none" in out.stdout
    assert empty_tops >= 1 and empty_tops < len(profiles)


def test_render_errors_name_the_variable(ctl, rdb):
    cfg = ctl.config([A.REL_SALES, A.REL_PEERS])
    for template, msg in (
            ("x {relation.nope.direct.count}", 'unknown relation "nope"'),
            ("{relation.sales.sideways.count}", "the side must be direct or reverse"),
            ("{relation.sales.direct.nope.count}", 'unknown property "nope" of relation sales'),
            ("{relation.sales.direct.ok.total}", "a total needs save_amount"),
            ("{for $i $x = relation.peers.direct.score.top}{end}", "a top needs save_top"),
            ("{relation.sales.direct.profit.top}", "a top is read in a {for"),
            ("{for $i $x = relation.sales.direct.profit.top}...", "a loop without {end}")):
        out = render(cfg, template, "m1")
        assert out.returncode == 2 and msg in out.stderr, (template, out.stderr)


def test_relationctl_reads_only_the_sections_it_needs(ctl, rdb, tmp_path):
    """An unset ${NAME} in the sources or the hooks does not stop stats,
    edges, segment or apply; watch, which needs the hooks, names it."""
    doc = json.loads(open(ctl.config([A.REL_SALES])).read())
    doc["amqp"] = {"url": "amqp://u:${RELATIOND_UNSET_PASSWORD}@127.0.0.1:1/", "queue": "q"}
    doc["kafka"] = {"brokers": "127.0.0.1:1", "topics": ["t"], "dead_letter_topic": "d",
                    "group_id": "${RELATIOND_UNSET_GROUP}"}
    doc["hooks"] = {"url": "amqp://u:${RELATIOND_UNSET_PASSWORD}@127.0.0.1:1/"}
    cfg = tmp_path / "partial.json"
    cfg.write_text(json.dumps(doc))
    cfg = str(cfg)
    ev = {"id": "x1", "op": "attach", "relation": "sales", "profile_a": "a", "profile_b": "b"}
    out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", "-"], input=json.dumps(ev) + "\n",
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for args in (["stats", "sales", "direct", "a"], ["edges", "sales", "direct", "a"],
                 ["segment", "sales", "direct"]):
        out = subprocess.run([RELATIONCTL, "-c", cfg] + args, capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, (args, out.stderr)
    out = subprocess.run([RELATIONCTL, "-c", cfg, "watch"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0 and "RELATIOND_UNSET_PASSWORD" in out.stderr, out.stderr


def test_a_prefix_without_any_data_is_pointed_out(ctl, rdb, tmp_path):
    cfg = ctl.config([A.REL_SALES])
    ev = {"id": "p1", "op": "attach", "relation": "sales", "profile_a": "a", "profile_b": "b"}
    out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", "-"], input=json.dumps(ev) + "\n",
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    doc = json.loads(open(cfg).read())
    doc["redis"]["key_prefix"] = "typo:"
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps(doc))
    note = 'no key at all starts with "typo:"'
    for args in (["stats", "sales", "direct", "a"], ["edges", "sales", "direct", "a"],
                 ["segment", "sales", "direct"], ["verify", "sales"]):
        out = subprocess.run([RELATIONCTL, "-c", str(typo)] + args, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and note in out.stderr, (args, out.stderr)
        # the right prefix, a profile without relations: no such word
        out = subprocess.run([RELATIONCTL, "-c", cfg] + args[:3] + (["nobody"] if len(args) == 4
                                                                    else []),
                             capture_output=True, text=True, timeout=30)
        assert "no key at all" not in out.stderr, (args, out.stderr)


def test_the_engines_warning_is_a_logfmt_line_on_stderr(ctl, rdb):
    """A hash field that is not an edge of ours: `relationctl edges` skips it
    and the engine's warning reaches standard error as the one logfmt line
    the daemon would write (no journal prefix), the edges still on stdout."""
    cfg = ctl.config([A.REL_SALES])
    res = ctl.apply(cfg, [{"id": "lw-1", "op": "attach", "relation": "sales",
                           "profile_a": "logw", "profile_b": "cp1"}])
    assert res.returncode == 0, res.stderr
    sides = [k for k in rdb.keys("*logw*") if rdb.type(k) in (b"hash", "hash")]
    assert len(sides) == 1, rdb.keys("*")
    rdb.hset(sides[0], "@junk", "not an edge")  # a counterpart, but no weights
    out = subprocess.run([RELATIONCTL, "-c", cfg, "edges", "sales", "direct", "logw"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert [loads(line)["profile_id"] for line in out.stdout.splitlines()] == ["cp1"]
    assert out.stderr.splitlines() == [
        'level=warn component=redis msg="sales: a field that is not an edge of ours, skipped"'
    ], out.stderr
