"""relationctl apply --no-triggers (triggers dropped on purpose, said in the
summary) and --publish (triggers sent to the hook exchange, confirmed,
instead of printed): the same triggers a plain run prints."""

import json
import random
import subprocess

import test_apply as A
from conftest import RELATIONCTL


def apply(cfg, events, *flags):
    return subprocess.run([RELATIONCTL, "-c", cfg, "apply", "-"] + list(flags),
                          input="".join(json.dumps(e) + "\n" for e in events),
                          capture_output=True, text=True, timeout=120)


def test_no_triggers_drops_them_and_says_so(ctl, rdb):
    cfg = ctl.config([A.REL_SALES, A.REL_PEERS], engine=dict(A.HUGE_TTL))
    events = A.gen_events(random.Random(8), 800)
    plain = apply(cfg, events)
    assert plain.returncode == 0, plain.stderr
    printed = len(plain.stdout.splitlines())
    rdb.flushall()
    out = apply(cfg, events, "--no-triggers")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[-2] == "triggers dropped %d (--no-triggers: none printed or published)" % printed
    assert lines[-1] == plain.stderr.splitlines()[-1]          # the same summary
    assert not [k for k in rdb.scan_iter(match="rel:*:side")
                if any(f.startswith("!") for f in rdb.hkeys(k))], "records left in the outbox"


def test_publish_sends_what_apply_prints(harness, tmp_path, rdb):
    h = harness()
    cfg_path = tmp_path / "publish.json"
    cfg_path.write_text(json.dumps(h.config))
    plain_cfg = tmp_path / "plain.json"
    plain_cfg.write_text(json.dumps(dict(h.config, redis=dict(h.config["redis"],
                                                               key_prefix="plain:"))))
    events = [e.body for e in __import__("brokers").make_stream(400, seed=17, clusters=[0, 1],
                                                               tag="pub")]
    plain = apply(str(plain_cfg), events)
    assert plain.returncode == 0, plain.stderr
    want = {}
    for line in plain.stdout.splitlines():
        body = json.loads(line)
        want[body["event_data"]["id"]] = body
    out = apply(str(cfg_path), events, "--publish")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert out.stderr.splitlines()[-2] == "triggers published %d to %s" % (
        len(want), h.config["hooks"]["exchange"])
    h.hooks.drain(1.0)
    got = {}
    for key, props, body in h.hooks.messages:
        b = json.loads(body)
        tid = b["event_data"]["id"]
        assert props.message_id == tid and props.delivery_mode == 2
        d = b["event_data"]
        assert key == "relation.%s.%s.%s" % (d["relation"], d["direction"], d["kind"])
        got[tid] = b
    assert set(got) == set(want)
    for tid, b in got.items():   # the same bodies, but for the date of application
        b.pop("event_date"), want[tid].pop("event_date")
        assert b == want[tid], tid


def test_a_threshold_name_is_carried_in_its_triggers(ctl, rdb):
    rel = {"short": "spend", "name": "Spend", "database_a": "a", "database_b": "b",
           "properties": [{"short": "amount", "type": "float", "save_amount": True}],
           "thresholds": [{"direction": "direct", "stat": "total", "property": "amount",
                           "value": 100, "name": "big spender"},
                          {"direction": "direct", "stat": "count", "value": 2}]}
    cfg = ctl.config([rel])
    events = [{"id": "n%d" % i, "op": "attach", "relation": "spend", "profile_a": "p",
               "profile_b": "c%d" % i, "weights": {"amount": 60}} for i in range(2)]
    res = ctl.apply(cfg, events)
    assert res.returncode == 0, res.stderr
    th = [t["event_data"]["threshold"] for t in res.triggers
          if t["event_data"]["kind"] == "threshold"]
    assert len(th) == 2
    named = [t for t in th if t["stat"] == "total"][0]
    assert named["name"] == "big spender" and named["crossing"] == "up"
    assert "name" not in [t for t in th if t["stat"] == "count"][0]
