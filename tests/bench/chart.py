"""The figures of `make bench` as a chart (build/bench.svg, next to build/bench.json).

One group of horizontal bars per figure of the table: "now" (the current
build, with the function), "now (module)" (the same build with the Redis
module) and the baseline, each when the run measured it; each figure on its
own scale (its longest bar, or its target, spans the whole width), so only
the bars of one figure compare with each other; the values printed beside
the bars as in the table, the target (if the figure has one) as a dashed
line, and at the right, level with each bar but the baseline's, that bar's
value / the baseline's. A figure no column measured (a section
skipped) is left out; a column that lacks a figure shows n/a.

Written by hand with the standard library (xml.etree escapes the text).

    chart.py BENCH_JSON [OUT_SVG]      (OUT_SVG: BENCH_JSON with .svg)
"""

import importlib.util
import json
import math
import os
import re
import sys
import xml.etree.ElementTree as ET

WIDTH = 960
PAD = 16
X0 = 400            # where the bars start
BAR_W = 380         # the longest bar of a figure
VALUE_X = X0 + BAR_W + 10   # the column of the values
BAR_H = 12
BAR_GAP = 3
FIG_GAP = 9
COLOURS = {"current": "#2f6db5", "module": "#e08a2c", "baseline": "#a9a9a9"}
OTHER_COLOURS = ["#5aa55a", "#9467bd", "#8c564b"]
TARGET_COLOUR = "#c62828"
NAMES = {"current": "now", "module": "now (module)", "baseline": "baseline"}
ORDER = ("current", "module", "baseline")
OPS = {">=": "\u2265", "<=": "\u2264"}
_BAD_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def number(v):
    """v if a finite number, else None (missing, null, NaN, not a number)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return v


def fmt_value(v, f):
    try:
        return f % v
    except (TypeError, ValueError):
        return "%.4g" % v


def columns(doc):
    """The columns of the run: current, module, baseline (those it has), then
    any other."""
    summary = doc.get("summary") or {}
    cols = [c for c in ORDER if isinstance(summary.get(c), dict)]
    return cols + sorted(c for c, v in summary.items() if c not in cols and isinstance(v, dict))


def generic_rows(doc):
    """Rows from the figures' keys alone (when bench.py's table cannot be read):
    one section per prefix, the key as the label."""
    keys = set()
    for col in columns(doc):
        keys.update(k for k, v in doc["summary"][col].items() if number(v) is not None)
    rows, section = [], None
    for k in sorted(keys):
        prefix = k.split(".")[0]
        if prefix != section:
            section = prefix
            rows.append((prefix, prefix, None, None))
        rows.append((k, k, None, "%.4g"))
    return rows


def rows_of_run(doc):
    """bench.py's ROWS (key, label, target, format) as that run labelled them
    (some labels carry its parameters: read again with the run's settings),
    or generic_rows when bench.py cannot be loaded."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.py")
    env = {}
    try:
        env["BENCH_EVENTS"] = str(int(doc["events"]))
        env["BENCH_QUICK"] = "1" if doc.get("quick") else "0"
        if doc.get("rate") is not None:
            env["BENCH_RATE"] = str(int(doc["rate"]))
        if doc.get("latency_s") is not None:
            env["BENCH_LATENCY_S"] = repr(float(doc["latency_s"]))
        for col in columns(doc):
            for key, var in (("seg.edges", "BENCH_SEGMENT_EDGES"),
                             ("rb.edges", "BENCH_REBUILD_EDGES"),
                             ("real.attaches", "BENCH_REALISTIC_EDGES"),
                             ("rcg.events", "BENCH_CALLGRIND_REDIS_EVENTS")):
                n = number(doc["summary"][col].get(key))
                if n is not None:
                    env[var] = str(int(n))
    except (KeyError, TypeError, ValueError):
        pass
    saved = {k: os.environ.get(k) for k in env}
    try:
        os.environ.update(env)
        spec = importlib.util.spec_from_file_location("relationd_bench_rows", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return list(mod.ROWS)
    except Exception as e:   # noqa: BLE001 - any failure: the keys as labels
        print("chart: bench.py's labels not read (%s); the keys stand for them" % e,
              file=sys.stderr)
        return generic_rows(doc)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _clean(s):
    return _BAD_XML.sub("?", str(s))


def _el(parent, tag, text=None, **attrs):
    e = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): _clean(v)
                                    for k, v in attrs.items() if v is not None})
    if text is not None:
        e.text = _clean(text)
    return e


def _n(x):
    return "%.2f" % x


def title_lines(doc, cols):
    title = "relationd benchmark"
    for key in ("date", "time", "commit"):
        if doc.get(key):
            title += " \u2014 %s" % doc[key]
    sub = []
    parts = []
    if number(doc.get("events")) is not None:
        parts.append("%d events%s" % (doc["events"], " (BENCH_QUICK)" if doc.get("quick") else ""))
    if number(doc.get("cores")) is not None:
        parts.append("%d cores" % doc["cores"])
    vers = doc.get("versions")
    if isinstance(vers, dict):
        parts += ["%s %s" % (k, vers[k]) for k in sorted(vers)]
    if parts:
        sub.append(", ".join(parts))
    bins = doc.get("binaries")
    if isinstance(bins, dict):
        b = ["%s: %s" % (NAMES.get(c, c), bins[c].get("relationd", "?"))
             for c in cols if isinstance(bins.get(c), dict)]
        if b:
            sub.append("; ".join(b))
    return title, sub


def write_svg(doc, path, rows=None):
    """Writes the chart of a bench.json document (a dict) to path. rows:
    bench.py's ROWS; by default read from bench.py with the run's settings."""
    if rows is None:
        rows = rows_of_run(doc)
    with open(path + ".tmp", "wb") as f:
        f.write(svg_bytes(doc, rows))
    os.replace(path + ".tmp", path)


def svg_bytes(doc, rows):
    cols = columns(doc)
    summary = doc.get("summary") or {}
    targets = doc.get("targets") if isinstance(doc.get("targets"), dict) else {}
    met = doc.get("met") if isinstance(doc.get("met"), dict) else {}
    colour = dict(COLOURS)
    for i, c in enumerate(c for c in cols if c not in COLOURS):
        colour[c] = OTHER_COLOURS[i % len(OTHER_COLOURS)]

    root = ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "version": "1.1",
                              "font-family": "DejaVu Sans, Arial, Helvetica, sans-serif",
                              "font-size": "12"})
    title, sub = title_lines(doc, cols)
    _el(root, "title", title)
    bg = _el(root, "rect", x=0, y=0, width=WIDTH, height=0, fill="#ffffff")
    y = 30
    _el(root, "text", title, x=PAD, y=y, font_size=18, font_weight="bold", class_="title")
    for line in sub:
        y += 17
        _el(root, "text", line, x=PAD, y=y, fill="#444444", class_="subtitle")
    y += 17
    _el(root, "text", "each figure on its own scale: its longest bar (or its target) spans "
        "the width; bar length \u221d value; values as in the table",
        x=PAD, y=y, fill="#444444", font_style="italic")

    # legend
    y += 22
    legend = _el(root, "g", class_="legend")
    x = PAD
    for c in cols:
        _el(legend, "rect", x=x, y=y - 10, width=14, height=BAR_H, fill=colour[c])
        name = NAMES.get(c, c)
        _el(legend, "text", name, x=x + 19, y=y)
        x += 19 + 7 * len(name) + 24
    _el(legend, "line", x1=x, y1=y - 11, x2=x, y2=y + 3, stroke=TARGET_COLOUR,
        stroke_width=2, stroke_dasharray="4 2")
    _el(legend, "text", "target", x=x + 6, y=y)
    if "baseline" in cols and len(cols) > 1:
        _el(root, "text", "bar / baseline", x=WIDTH - PAD, y=y, text_anchor="end",
            font_weight="bold")

    # the figures, by section
    sections, current = [], None
    for key, label, target, f in rows:
        if f is None:
            if key != "cmd" and label:
                current = (label, [])
                sections.append(current)
            continue
        vals = {c: number((summary.get(c) or {}).get(key)) for c in cols}
        if all(v is None for v in vals.values()):
            continue
        if current is None:
            current = ("", [])
            sections.append(current)
        current[1].append((key, label, f, vals))
    if not any(figs for _, figs in sections):
        y += 30
        _el(root, "text", "no figures in this run", x=PAD, y=y, fill="#444444")

    y += 6
    stripe = 0
    for heading, figs in sections:
        if not figs:
            continue
        if heading:
            y += 24
            _el(root, "text", heading.strip(), x=PAD, y=y, font_size=13, font_weight="bold",
                class_="section")
            _el(root, "line", x1=PAD, y1=y + 5, x2=WIDTH - PAD, y2=y + 5, stroke="#cccccc")
            y += 8
        for key, label, f, vals in figs:
            y = figure(root, y, key, label, f, vals, cols, colour, targets.get(key), met, stripe)
            stripe += 1
    height = y + PAD
    root.set("width", str(WIDTH))
    root.set("height", str(height))
    root.set("viewBox", "0 0 %d %d" % (WIDTH, height))
    bg.set("height", str(height))
    ET.indent(root, space=" ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def figure(root, y, key, label, f, vals, cols, colour, target, met, stripe):
    """One figure's group below y; returns the y below it."""
    tval = number(target.get("value")) if isinstance(target, dict) else None
    top = y + FIG_GAP
    if tval is not None:
        top += 13                       # the target's text above the bars
    group_h = len(cols) * BAR_H + (len(cols) - 1) * BAR_GAP
    bottom = top + group_h
    g = _el(root, "g", class_="figure", data_key=key)
    _el(g, "title", key)
    if stripe % 2:
        _el(g, "rect", x=PAD / 2, y=y + FIG_GAP / 2, width=WIDTH - PAD, height=bottom - y,
            fill="#f4f6f9", stroke="none")
    indent = 12 if label.startswith(" ") else 0
    mid = top + group_h / 2 + 4
    _el(g, "text", label.strip(), x=PAD + indent, y=_n(mid), class_="label",
        fill="#555555" if indent else "#000000")
    scale = max([abs(v) for v in vals.values() if v is not None] +
                ([abs(tval)] if tval is not None else []))
    _el(g, "line", x1=X0, y1=top - 2, x2=X0, y2=bottom + 2, stroke="#888888")
    for i, c in enumerate(cols):
        by = top + i * (BAR_H + BAR_GAP)
        v = vals[c]
        name = NAMES.get(c, c)
        if v is None:
            _el(g, "text", "n/a", x=VALUE_X, y=by + BAR_H - 2, font_size=11, fill="#888888",
                class_="value", data_col=c)
            continue
        w = max(v, 0) / scale * BAR_W if scale > 0 else 0.0
        bar = _el(g, "rect", x=X0, y=by, width=_n(w), height=BAR_H, fill=colour[c],
                  class_="bar", data_col=c)
        _el(bar, "title", "%s, %s: %s" % (label.strip(), name, fmt_value(v, f)))
        text = fmt_value(v, f)
        _el(g, "text", text, x=VALUE_X, y=by + BAR_H - 2, font_size=11,
            class_="value", data_col=c)
        ok = (met.get(c) or {}).get(key) if isinstance(met.get(c), dict) else None
        if ok is not None and tval is not None:
            _el(g, "text", "met" if ok else "not met", x=_n(VALUE_X + 4 + 6.5 * len(text)),
                y=by + BAR_H - 2, font_size=11, font_weight="bold",
                fill="#2e7d32" if ok else TARGET_COLOUR, class_="met", data_col=c)
    if tval is not None:
        tx = X0 + max(tval, 0) / scale * BAR_W if scale > 0 else X0
        _el(g, "line", x1=_n(tx), y1=top - 3, x2=_n(tx), y2=bottom + 3, stroke=TARGET_COLOUR,
            stroke_width=2, stroke_dasharray="4 2", class_="target")
        op = OPS.get(target.get("op"), str(target.get("op", "")))
        _el(g, "text", "target %s %g" % (op, tval), x=_n(tx), y=top - 4, font_size=10,
            fill=TARGET_COLOUR, text_anchor="end" if tx > X0 + BAR_W * 0.7 else "middle",
            class_="target")
    base = vals.get("baseline")
    for i, c in enumerate(cols):
        if c != "baseline" and vals[c] is not None and base:
            _el(g, "text", "%.2f" % (vals[c] / base), x=WIDTH - PAD,
                y=top + i * (BAR_H + BAR_GAP) + BAR_H - 2, font_size=11, text_anchor="end",
                class_="ratio", data_col=c)
    return bottom


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit("usage: chart.py BENCH_JSON [OUT_SVG]")
    src = argv[1]
    out = argv[2] if len(argv) == 3 else os.path.splitext(src)[0] + ".svg"
    try:
        with open(src) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("chart: %s: %s" % (src, e))
    if not isinstance(doc, dict):
        sys.exit("chart: %s: not a bench.json document" % src)
    write_svg(doc, out)
    print(out)


if __name__ == "__main__":
    main(sys.argv)
