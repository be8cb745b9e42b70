"""The chart of `make bench` (tests/bench/chart.py, build/bench.svg): from the
figures as bench.py summarises and writes them, every figure of the table is
there by its label, with its values printed as the table prints them and bars
as long as the values say; a figure or a column that was not measured is left
out or shown as n/a; the file is XML that parses, whatever the text holds.
The module column ("current (module)") sits beside the current build's and
the baseline's in the table, the JSON and the chart, each with its ratio to
the baseline; the baseline's configurations never name redis.engine."""

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_DIR = os.path.join(REPO, "tests", "bench")
sys.path.insert(0, BENCH_DIR)

import bench  # noqa: E402
import chart  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def apply_sample(events_s, redis_cpu_us, command="fcall", usec=60.0):
    return {"events_s": events_s, "redis_cpu_us": redis_cpu_us, "ctl_cpu_us": 6.0,
            "seconds": 1000 / events_s, "other_cores": 0.05,
            "commandstats": {command: {"calls_per_event": 1.0, "usec_per_call": usec,
                                       "usec_per_event": usec}}}


def results_of(cols, cluster=False):
    """Samples as bench.main() collects them: current with two apply rounds
    (12,000 = the median of 11,000 and 13,000 events/s), the baseline with
    half that rate, the module (same binaries as current, redis.engine
    module) with 42,000 (the median of 41,000 and 43,000) and 118,000 Redis
    instructions per event (its target <= 120,000), the rest as current; the
    cluster section only if asked (BENCH_CLUSTER=0 otherwise), the segment
    for the current build only (as bench.py does)."""
    res = {}
    for col in cols:
        mod = col == "module"
        cur = col == "current" or mod
        r = {"apply": [apply_sample(41000, 18.0, "relationd.apply2", 14.0),
                       apply_sample(43000, 16.0, "relationd.apply2", 14.0)] if mod
             else [apply_sample(11000, 70.0), apply_sample(13000, 74.0)] if cur
             else [apply_sample(6000, 80.0)],
             "apply1": [{"events_s": 4000.0 if cur else 3000.0, "redis_cpu_us": 100.0,
                         "ctl_cpu_us": 60.0, "seconds": 1.0, "other_cores": 0.1,
                         "commandstats": {}}],
             "drain": [{"events_s": 5000.0 if cur else 4000.0, "daemon_cpu_us": 14.0,
                        "redis_cpu_us": 80.0, "rabbit_cpu_us": 190.0,
                        "peak_rss_mib": 20.0 if cur else 25.0,
                        "cpu_share": 0.7, "cpu_bound_events_s": 7000.0,
                        "triggers_per_event": 1.9, "other_cores": 0.1, "triggers": 190000}],
             "latency": [{"latency_p50_ms": 6.0, "latency_p99_ms": 12.5 if cur else 25.0,
                          "latency_max_ms": 30.0, "latency_backlog_at_end": 0}],
             "memory": [{"edge_side_bytes": 545.0, "seen_id_bytes": 12.5,
                         "edge_side_bytes_without_id": 532.5, "seen_usage_per_id": 53.0,
                         "zero_strengthen_triggers": 0}],
             "rabbit": [{"messages_s": 12000.0 if cur else 14000.0, "rabbit_cpu_us": 80.0,
                         "rabbit_cores": 1.0}],
             "cluster1": [], "cluster3": [], "segment": [],
             "rebuild": [{"edges": bench.REBUILD_EDGES, "max_call_ms": 1.2 if cur else 2125.0,
                          "calls": 1993 if cur else 1, "redis_ms": 1553.0 if cur else 2125.0,
                          "seconds": 1.6 if cur else 2.1}],
             "callgrind": [{"daemon_ir_per_event": 65000.0 if cur else 88000.0,
                            "daemon_ir": 260e6 if cur else 352e6}],
             "realistic": [{"edge_side_bytes": 742.0 if cur else 760.0,
                            "attaches": bench.REAL_EDGES, "live_edges": 7981,
                            "small_bytes": 808.5, "medium_bytes": 292.2, "huge_bytes": 505.2,
                            "small_sides": 6035, "medium_sides": 40, "huge_sides": 6,
                            "listpack_share": 0.0 if cur else 0.25}],
             "redis_callgrind": [{"redis_ir_per_event": 118000.0 if mod
                                  else 457545.0 if cur else 473000.0,
                                  "redis_ir": 1.37e9, "events": 3000}]}
        if mod:
            r["drain"][0]["events_s"] = 6000.0
            r["realistic"][0]["edge_side_bytes"] = 741.0
        if col == "current" and cluster:
            r["cluster1"] = [{"events_s": 13000.0, "redis_cpu_us": 74.0, "ctl_cpu_us": 10.0,
                              "calls": [100], "max_share": 1.0}]
            r["cluster3"] = [{"events_s": 19000.0, "redis_cpu_us": 79.0, "ctl_cpu_us": 16.0,
                              "calls": [34, 33, 33], "max_share": 0.34}]
        if col == "current":
            r["segment"] = [{"edges": bench.SEGMENT_EDGES, "edges_read": bench.SEGMENT_EDGES,
                             "seconds": 4.0, "edges_s": bench.SEGMENT_EDGES / 4.0,
                             "profiles": 3, "ctl_cpu_us_per_edge": 1.5}]
        res[col] = r
    return res


def doc_of(cols, cluster=False, **over):
    """The document bench.main() writes to BENCH_JSON, from bench.py's own code."""
    results = results_of(cols, cluster)
    summary = bench.summarize(results, cols)
    rows = bench.ROWS
    doc = {"events": bench.EVENTS, "quick": bench.QUICK, "cores": 2,
           "versions": {"redis-server": "7.0.15", "rabbitmq-server": "3.10.8",
                        "librdkafka": "2.0.2"},
           "binaries": {c: {"relationd": "/b/%s/relationd" % c,
                            "relationctl": "/b/%s/relationctl" % c} for c in cols},
           "apply_rounds": 2, "drain_rounds": 1, "latency_s": bench.LATENCY_S,
           "rate": bench.RATE, "batch_ms": None,
           "targets": {k: {"op": t[0], "value": t[1]} for k, _, t, _ in rows if t},
           "summary": summary, "samples": results,
           "met": {c: {k: bench.met(summary[c].get(k), t) for k, _, t, _ in rows if t}
                   for c in cols}}
    doc.update(over)
    return doc


def figure_rows():
    return [(k, label, t, f) for k, label, t, f in bench.ROWS if f is not None and k != "cmd"]


def parse(path):
    root = ET.parse(path).getroot()     # raises unless well-formed XML
    assert root.tag == SVG + "svg"
    return root


def texts(root, cls=None):
    return ["".join(t.itertext()) for t in root.iter(SVG + "text")
            if cls is None or t.get("class") == cls]


def figure(root, key):
    found = [g for g in root.iter(SVG + "g") if g.get("data-key") == key]
    assert len(found) <= 1
    return found[0] if found else None


def bar(g, col):
    bars = [r for r in g.iter(SVG + "rect") if r.get("class") == "bar" and r.get("data-col") == col]
    assert len(bars) <= 1
    return bars[0] if bars else None


def value_text(g, col):
    vals = [t.text for t in g.iter(SVG + "text")
            if t.get("class") == "value" and t.get("data-col") == col]
    assert len(vals) == 1, (g.get("data-key"), col, vals)
    return vals[0]


def write(doc, tmp_path, name="bench.svg"):
    path = str(tmp_path / name)
    chart.write_svg(doc, path, bench.ROWS)
    return parse(path)


def test_every_figure_by_its_label_with_the_values_of_the_table(tmp_path):
    doc = doc_of(["current", "baseline"], cluster=True)
    root = write(doc, tmp_path)
    labels = texts(root, "label")
    shown = 0
    for key, label, _, f in figure_rows():
        vals = {c: doc["summary"][c].get(key) for c in ("current", "baseline")}
        if all(v is None for v in vals.values()):
            assert figure(root, key) is None, key
            continue
        shown += 1
        assert label.strip() in labels, label
        g = figure(root, key)
        assert g is not None, key
        for col, v in vals.items():
            assert value_text(g, col) == ("n/a" if v is None else f % v), (key, col)
    assert shown >= 30
    # the numbers themselves, not only the format: the medians bench.py took
    g = figure(root, "apply.events_s")
    assert value_text(g, "current") == "12000"
    assert value_text(g, "baseline") == "6000"
    assert "2.00" in texts(g, "ratio")
    assert value_text(figure(root, "drain.peak_rss_mib"), "baseline") == "25.0"
    assert value_text(figure(root, "lat.latency_p99_ms"), "current") == "12.5"
    assert value_text(figure(root, "rcg.redis_ir_per_event"), "baseline") == "473000"
    g = figure(root, "real.edge_side_bytes")     # target <= 160
    assert value_text(g, "current") == "742"
    assert any("160" in t for t in texts(g, "target"))
    assert value_text(figure(root, "real.listpack_share"), "baseline") == "0.250"
    # every section heading of the table that has figures, in the table's order
    headings = texts(root, "section")
    expected = [label.strip() for k, label, _, f in bench.ROWS
                if f is None and k != "cmd"]
    assert headings == expected
    assert "relationd benchmark" in texts(root, "title")


def test_bars_as_long_as_the_values_and_the_target_on_the_same_scale(tmp_path):
    root = write(doc_of(["current", "baseline"]), tmp_path)
    g = figure(root, "apply.events_s")        # now 12,000, baseline 6,000, target >= 40,000
    now, base = bar(g, "current"), bar(g, "baseline")
    w_now, w_base = float(now.get("width")), float(base.get("width"))
    assert w_base > 0
    assert w_now / w_base == pytest.approx(2.0, rel=1e-3)
    x0 = float(now.get("x"))
    assert float(base.get("x")) == x0
    lines = [ln for ln in g.iter(SVG + "line") if ln.get("class") == "target"]
    assert len(lines) == 1
    x_target = float(lines[0].get("x1")) - x0
    assert w_now / x_target == pytest.approx(12000 / 40000, rel=1e-3)
    assert any("40000" in t for t in texts(g, "target"))
    met = {t.get("data-col"): "".join(t.itertext()) for t in g.iter(SVG + "text")
           if t.get("class") == "met"}
    assert met == {"current": "not met", "baseline": "not met"}

    g = figure(root, "drain.peak_rss_mib")    # now 20, baseline 25, target <= 30
    w_now, w_base = float(bar(g, "current").get("width")), float(bar(g, "baseline").get("width"))
    assert w_now / w_base == pytest.approx(20 / 25, rel=1e-3)
    x_target = float([ln for ln in g.iter(SVG + "line")
                      if ln.get("class") == "target"][0].get("x1")) - x0
    assert w_base / x_target == pytest.approx(25 / 30, rel=1e-3)

    # a figure without target: its longest bar spans the width; the same
    # width as the longest of any other figure
    g = figure(root, "rabbit.messages_s")     # now 12,000, baseline 14,000
    full = float(bar(g, "baseline").get("width"))
    assert float(bar(g, "current").get("width")) / full == pytest.approx(12 / 14, rel=1e-3)
    assert float(bar(figure(root, "drain.events_s"), "current").get("width")) == \
        pytest.approx(full)


def test_a_figure_without_baseline_and_a_section_skipped(tmp_path):
    doc = doc_of(["current", "baseline"], cluster=False)
    root = write(doc, tmp_path)
    # segment: measured for the current build only
    g = figure(root, "seg.edges_s")
    assert g is not None
    assert float(bar(g, "current").get("width")) > 0
    assert value_text(g, "current") == "%.0f" % (bench.SEGMENT_EDGES / 4.0)
    assert bar(g, "baseline") is None
    assert value_text(g, "baseline") == "n/a"
    assert not texts(g, "ratio")
    # the cluster (BENCH_CLUSTER=0): no heading, no figure
    assert figure(root, "cl1.events_s") is None
    assert not [t for t in texts(root, "section") if "Redis Cluster" in t]
    # a value that is not a number (NaN in the JSON) shows n/a, the other bar stays
    doc["summary"]["baseline"]["drain.events_s"] = math.nan
    g = figure(write(doc, tmp_path, "nan.svg"), "drain.events_s")
    assert value_text(g, "baseline") == "n/a"
    assert bar(g, "baseline") is None
    assert value_text(g, "current") == "5000"


def test_a_run_without_baseline(tmp_path):
    root = write(doc_of(["current"]), tmp_path)
    legend = [g for g in root.iter(SVG + "g") if g.get("class") == "legend"][0]
    assert "now" in texts(legend) and "baseline" not in texts(legend)
    assert not texts(root, "ratio")
    for key, label, _, _ in figure_rows():
        g = figure(root, key)
        if g is None:
            continue
        bars = [r for r in g.iter(SVG + "rect") if r.get("class") == "bar"]
        assert [b.get("data-col") for b in bars] == ["current"], key
    g = figure(root, "lat.latency_backlog_at_end")      # 0: no bar length, a label
    assert float(bar(g, "current").get("width")) == 0
    assert value_text(g, "current") == "0"
    g = figure(root, "apply.events_s")
    assert value_text(g, "current") == "12000"


def test_text_is_escaped_and_the_title_has_date_and_commit(tmp_path):
    doc = doc_of(["current", "baseline"], date="2024-11-29 21:00", commit="382f749")
    doc["versions"]["redis-server"] = "7.0 <beta> & \"rc\" 'x'"
    doc["binaries"]["baseline"]["relationd"] = "/tmp/a&b/<old>/relationd"
    doc["versions"]["librdkafka"] = "2.0.2\x01"        # not allowed in XML at all
    root = write(doc, tmp_path)
    subtitle = " ".join(texts(root, "subtitle"))
    assert "redis-server 7.0 <beta> & \"rc\" 'x'" in subtitle
    assert "/tmp/a&b/<old>/relationd" in subtitle
    title = texts(root, "title")[0]
    assert "2024-11-29 21:00" in title and "382f749" in title
    raw = (tmp_path / "bench.svg").read_text()
    assert "<beta>" not in raw and "&lt;beta&gt;" in raw


def run_chart(*args):
    return subprocess.run([sys.executable, os.path.join(BENCH_DIR, "chart.py")] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_chart_py_as_a_command(tmp_path):
    doc = doc_of(["current", "baseline"])
    src = tmp_path / "bench.json"
    src.write_text(json.dumps(doc, indent=1, sort_keys=True))    # as bench.py writes it
    p = run_chart(str(src))
    assert p.returncode == 0, p.stderr
    out = tmp_path / "bench.svg"                                  # the default: next to it
    assert p.stdout.strip() == str(out)
    root = parse(str(out))
    labels = texts(root, "label")
    for key, label, _, _ in figure_rows():
        if figure(root, key) is not None:
            assert label.strip() in labels
    assert value_text(figure(root, "apply.events_s"), "current") == "12000"
    # the figures of the file, not of this environment: the labels that carry
    # the run's parameters say those of the file
    doc = doc_of(["current"], events=6000, quick=True, latency_s=1.0, rate=500)
    (tmp_path / "quick.json").write_text(json.dumps(doc))
    p = run_chart(str(tmp_path / "quick.json"), str(tmp_path / "other.svg"))
    assert p.returncode == 0, p.stderr
    root = parse(str(tmp_path / "other.svg"))
    assert "events/s with batch_size 1 (1000 events)" in texts(root, "label")
    assert "3. latency at 500 events/s for 1 s (produce -> first trigger)" in \
        texts(root, "section")
    assert any("6000 events (BENCH_QUICK)" in t for t in texts(root, "subtitle"))
    # an empty run and bad input
    (tmp_path / "empty.json").write_text("{}")
    p = run_chart(str(tmp_path / "empty.json"))
    assert p.returncode == 0, p.stderr
    assert "no figures in this run" in texts(parse(str(tmp_path / "empty.svg")))
    (tmp_path / "broken.json").write_text("{")
    assert run_chart(str(tmp_path / "broken.json")).returncode != 0
    assert run_chart().returncode != 0


def test_the_table_leaves_out_a_section_no_column_measured():
    cols = ["current", "baseline"]
    summary = bench.summarize(results_of(cols), cols)
    text = bench.table(summary, cols, [])
    assert "1c. Redis under callgrind" in text
    assert "Redis instructions per event (target: the module's)" in text
    assert "4b. Redis memory, a realistic relation" in text
    assert "742 NOT met" in text
    res = results_of(cols)
    for col in cols:
        res[col]["redis_callgrind"] = []         # BENCH_CALLGRIND off
    text = bench.table(bench.summarize(res, cols), cols, [])
    assert "1c. Redis under callgrind" not in text
    assert "Redis instructions per event" not in text
    assert "4b. Redis memory, a realistic relation" in text
    assert "5. engine alone on a Redis Cluster" not in text     # not measured either


def test_the_module_column_beside_current_and_baseline(tmp_path):
    cols = ["current", "module", "baseline"]
    doc = doc_of(cols)
    root = write(doc, tmp_path)
    legend = [g for g in root.iter(SVG + "g") if g.get("class") == "legend"][0]
    assert [t for t in texts(legend) if t != "target"] == ["now", "now (module)", "baseline"]
    g = figure(root, "apply.events_s")
    assert [value_text(g, c) for c in cols] == ["12000", "42000", "6000"]
    bars = [r for r in g.iter(SVG + "rect") if r.get("class") == "bar"]
    assert [b.get("data-col") for b in bars] == cols                  # top to bottom
    assert float(bar(g, "module").get("width")) / float(bar(g, "current").get("width")) == \
        pytest.approx(42000 / 12000, rel=1e-3)
    # each column's ratio to the baseline, level with its own bar
    ratios = {t.get("data-col"): (t.text, float(t.get("y")))
              for t in g.iter(SVG + "text") if t.get("class") == "ratio"}
    assert {c: r[0] for c, r in ratios.items()} == {"current": "2.00", "module": "7.00"}
    values = {t.get("data-col"): float(t.get("y")) for t in g.iter(SVG + "text")
              if t.get("class") == "value"}
    assert ratios["module"][1] == values["module"] and ratios["current"][1] == values["current"]
    # the row target (<= 120,000 instructions) met by the module only
    g = figure(root, "rcg.redis_ir_per_event")
    assert value_text(g, "module") == "118000"
    met = {t.get("data-col"): "".join(t.itertext()) for t in g.iter(SVG + "text")
           if t.get("class") == "met"}
    assert met == {"current": "not met", "module": "met", "baseline": "not met"}
    assert value_text(figure(root, "real.edge_side_bytes"), "module") == "741"
    # measured for the current build only: the module shows n/a
    assert value_text(figure(root, "seg.edges_s"), "module") == "n/a"


def test_the_table_with_the_module_column():
    cols = ["current", "module", "baseline"]
    text = bench.table(bench.summarize(results_of(cols), cols), cols, [])
    lines = text.splitlines()
    head = lines[0].split()
    assert head[-5:] == ["current", "(module)", "baseline", "cur/base", "mod/base"]
    rows = [ln for ln in lines if not ln[:1].isdigit()]     # but the section headings
    assert max(len(ln) for ln in rows) <= 135
    events = [ln for ln in lines if ln.startswith("events/s (the target")][0]
    assert events.split()[-10:-2] == ["12000", "NOT", "met", "42000", "met", "6000", "NOT",
                                      "met"]
    assert events.split()[-2:] == ["2.00", "7.00"]
    ir = [ln for ln in lines if ln.startswith("Redis instructions per event")][0]
    assert "457545 NOT met" in ir and "118000 met" in ir and "473000 NOT met" in ir
    assert ir.split()[-2:] == ["0.97", "0.25"]
    # the engines' own commands: the function's fcall, the module's command
    cmd = [ln for ln in lines if "Redis relationd.apply2" in ln][0]
    assert cmd.split()[-3:] == ["-", "14.0=1.00x14.0", "-"]       # no ratio without a baseline
    # without a baseline: no ratio column
    cols = ["current", "module"]
    text = bench.table(bench.summarize(results_of(cols), cols), cols, [])
    assert "cur/base" not in text and "mod/base" not in text


def test_each_columns_configuration_names_its_engine_but_the_baselines(tmp_path):
    class Rds:
        url = "redis://127.0.0.1:1/0"
    for col, engine in (("current", "function"), ("module", "module"), ("baseline", None)):
        path = bench.ctl_config(str(tmp_path), "c-" + col, col, Rds(), 256)
        with open(path) as f:
            cfg = json.load(f)
        assert cfg["redis"].get("engine") == engine, col
        assert cfg["redis"]["url"] == Rds.url
        assert ("engine" in cfg["redis"]) == (engine is not None)


def test_the_module_column_needs_the_module_file(tmp_path, monkeypatch, capsys):
    for name in ("relationd", "relationctl", "tool"):
        p = tmp_path / name
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
    monkeypatch.setenv("RELATIOND", str(tmp_path / "relationd"))
    monkeypatch.setenv("RELATIONCTL", str(tmp_path / "relationctl"))
    monkeypatch.delenv("BASELINE_RELATIOND", raising=False)
    monkeypatch.delenv("BASELINE_RELATIONCTL", raising=False)
    monkeypatch.delenv("BENCH_MODULE", raising=False)
    monkeypatch.setattr(bench.B.brokers, "KAFKA_MOCK", str(tmp_path / "tool"))
    monkeypatch.setattr(bench.B, "SUBSCRIBER", str(tmp_path / "tool"))
    so = tmp_path / "relationd.so"
    assert list(bench.binaries()) == ["current"]
    assert "no module column: %s is missing" % so in capsys.readouterr().err
    so.write_bytes(b"\x7fELF")
    bins = bench.binaries()
    assert list(bins) == ["current", "module"]
    assert bins["module"] == {"relationd": str(tmp_path / "relationd"),
                              "relationctl": str(tmp_path / "relationctl"),
                              "module": str(so)}
    monkeypatch.setenv("BENCH_MODULE", "0")
    assert list(bench.binaries()) == ["current"]
    assert "no module column: BENCH_MODULE=0" in capsys.readouterr().err
    monkeypatch.setenv("BENCH_MODULE", "1")
    monkeypatch.setenv("BASELINE_RELATIOND", str(tmp_path / "relationd"))
    assert list(bench.binaries()) == ["current", "module", "baseline"]


def test_the_rebuild_calls_of_either_engine_in_slowlog():
    assert bench.is_rebuild_call(b"FCALL relationd_0a1b_rebuild 3 rel:{bench:a:hot}:side x y")
    assert bench.is_rebuild_call("relationd.rebuild relationd_0a1b 3 rel:{bench:a:hot}:side")
    assert bench.is_rebuild_call(b"RELATIONd.REBUILD relationd_0a1b 3 k")
    assert not bench.is_rebuild_call(b"FCALL relationd_0a1b_apply2 4 rel:{b:a:x_rebuild}:side")
    assert not bench.is_rebuild_call(b"relationd.apply2 relationd_0a1b 4 k_rebuild")
    assert not bench.is_rebuild_call(b"HSET rel:{bench:a:hot}:side relationd.rebuild 1")
    assert not bench.is_rebuild_call(b"")
