"""The Grafana dashboard (config/grafana-dashboard.json): a well-formed
dashboard model, and every metric and label its queries use is one the daemon
really exports, checked against a live /metrics scrape after some traffic, so
that a renamed metric or label fails here rather than as an empty panel."""

import copy
import json
import os
import re

import test_http as H
from brokers import free_port, make_stream, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(REPO, "config", "grafana-dashboard.json")

METRIC = re.compile(r"\b(relationd_[a-z_]+)")
SELECTOR = re.compile(r"\b(relationd_[a-z_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
LABEL_VALUES = re.compile(r"label_values\(\s*(relationd_[a-z_]+)[^,]*,\s*([a-zA-Z_]\w*)\s*\)")
RATE_OF = re.compile(r"\b(?:rate|irate|increase)\(\s*$")
INSTANCE = 'instance=~"$instance"'
# Labels Prometheus adds at scrape time: never in /metrics itself.
TARGET_LABELS = {"instance", "job"}
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dashboard):
    """Every panel, those nested in rows included."""
    out = []
    for p in dashboard.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def queries(dashboard):
    """(where, expr, legendFormat) of every panel target and every query
    variable."""
    out = []
    for p in all_panels(dashboard):
        for t in p.get("targets", []):
            out.append(("panel %r target %s" % (p.get("title"), t.get("refId")),
                        t.get("expr", ""), t.get("legendFormat", "")))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            out.append(("variable %r" % v.get("name"), q, ""))
    return out


def family_of(name, types):
    """(family, its type) of a series name: relationd_x_bucket is the
    histogram relationd_x's; None when no # TYPE line covers it."""
    if name in types:
        return name, types[name]
    for suffix in HISTOGRAM_PARTS:
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            if suffix == "_bucket" and types[base] != "histogram":
                return None
            return base, types[base]
    return None


def problems(dashboard, text, series):
    """What the dashboard's queries use that the scrape does not have.
    text: the /metrics body (for its # TYPE lines); series: test_http.scrape()."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    labels = {}
    for name, pairs in series:
        labels.setdefault(name, set()).update(k for k, _ in pairs)
    out = []

    def need_label(where, name, label):
        if label in TARGET_LABELS or name not in labels:
            return
        if label not in labels[name]:
            out.append("%s: %s has no label %r (it has %s)" % (
                where, name, label, sorted(labels[name]) or "none"))

    for where, expr, legend in queries(dashboard):
        names = METRIC.findall(expr)
        if not names:
            out.append("%s: no relationd metric in %r" % (where, expr))
        for name in names:
            if name not in labels:
                out.append("%s: %s is not in the scrape" % (where, name))
            elif family_of(name, types) is None:
                out.append("%s: %s has no # TYPE line" % (where, name))
        for m in METRIC.finditer(expr):
            fam = family_of(m.group(1), types)
            if fam is None:
                continue
            in_rate = RATE_OF.search(expr[:m.start()]) is not None
            counting = fam[1] == "counter" or (fam[1] in ("histogram", "summary")
                                               and m.group(1) != fam[0])
            if in_rate and not counting:
                out.append("%s: rate/increase of %s, a %s" % (where, m.group(1), fam[1]))
            if counting and not in_rate:
                out.append("%s: %s, a %s, used without rate/increase" % (
                    where, m.group(1), fam[1]))
        if "histogram_quantile" in expr:
            buckets = [n for n in names if n.endswith("_bucket")]
            if not buckets or not any(
                    "le" in [x.strip() for x in g.split(",")] for g in GROUPING.findall(expr)):
                out.append("%s: histogram_quantile needs a _bucket series grouped by le" % where)
        for m in SELECTOR.finditer(expr):
            for label in MATCHER.findall(m.group(2)):
                need_label(where, m.group(1), label)
        grouped = [x.strip() for g in GROUPING.findall(expr) for x in g.split(",") if x.strip()]
        for label in grouped + LEGEND.findall(legend):
            for name in set(names):
                need_label(where, name, label)
        for name, label in LABEL_VALUES.findall(expr):
            need_label(where, name, label)
    return out


def test_dashboard_is_a_well_formed_model():
    d = load()   # valid JSON, or this raises
    assert isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36
    assert d.get("title") and d.get("uid")
    panels = all_panels(d)
    assert panels
    ids = [p.get("id") for p in panels]
    assert all(isinstance(i, int) for i in ids), ids
    assert len(set(ids)) == len(ids), "panel ids not unique: %r" % ids

    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables.get("datasource")
    assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", ds
    inst = variables.get("instance")
    assert inst and inst["type"] == "query", inst
    assert inst["datasource"]["uid"] == "${datasource}"

    for p in panels:
        if p.get("type") == "row":
            continue
        title = p.get("title")
        assert isinstance(title, str) and title.strip(), p.get("id")
        assert set(p.get("gridPos", {})) >= {"x", "y", "w", "h"}, title
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        targets = p.get("targets") or []
        assert targets, "panel %r has no target" % title
        refs = [t.get("refId") for t in targets]
        assert len(set(refs)) == len(refs) and all(refs), (title, refs)
        for t in targets:
            expr = t.get("expr", "")
            assert expr.strip(), (title, t)
            # every selector follows the instance variable
            for m in METRIC.finditer(expr):
                sel = SELECTOR.match(expr, m.start())
                assert sel and INSTANCE in sel.group(2), (title, m.group(1), expr)


def scrape_after_traffic(harness, daemons):
    """A daemon with both sources fed (with a bad message each, for the dead
    letters) until it caught up and reported the Kafka lag: (the daemon, the
    /metrics body, test_http.scrape() of it)."""
    port = free_port()
    h = harness(kafka=True, amqp=True)
    cfg = dict(h.config, http={"listen": "127.0.0.1:%d" % port})
    # the exchange the harness watches, and an http hook nothing answers (its failures)
    cfg["hooks"] = [dict(h.config["hooks"], name="mailing", kind="amqp"),
                    {"name": "unanswered", "kind": "http",
                     "url": "http://127.0.0.1:%d/hook" % free_port()}]
    cfg["kafka"] = dict(cfg["kafka"], properties=dict(cfg["kafka"]["properties"],
                                                      **{"statistics.interval.ms": "300"}))
    d = h.daemon(daemons, config=cfg).start()
    events = make_stream(80, seed=97, clusters=list(range(8)), tag="dash")
    h.feed_kafka([e for e in events if e.cluster < 4] + [(b"not json", 0)])
    h.feed_amqp([e for e in events if e.cluster >= 4] + [b"not json"])
    h.wait_done()

    def reported():
        m = H.scrape(port)
        parts = {dict(k)["partition"] for n, k in m if n == "relationd_kafka_consumer_lag"}
        return (len(parts) == h.kafka.partitions
                and H.value(m, "relationd_dead_letters_total", source="kafka") == 1
                and H.value(m, "relationd_dead_letters_total", source="amqp") == 1
                and any(n == "relationd_triggers_published_total" for n, _ in m)
                and any(n == "relationd_hook_failures_total" for n, _ in m)
                and H.value(m, "relationd_hook_last_success_timestamp_seconds",
                            hook="mailing") > 0)
    wait_until(reported, timeout=30, message=lambda: H.get(port, "/metrics")[1])

    status, text = H.get(port, "/metrics")
    assert status == 200
    return d, text, H.scrape(port)


def test_dashboard_queries_use_what_the_daemon_exports(harness, daemons):
    """Every metric and label of the dashboard is in a live scrape after
    traffic. A misspelt metric, a misspelt label, a gauge under rate() or a
    histogram queried without _bucket is reported."""
    d, text, series = scrape_after_traffic(harness, daemons)
    dashboard = load()
    found = problems(dashboard, text, series)
    assert not found, "\n".join(found)

    # the check can fail: each mistake below is reported
    def mutated(title, old, new):
        m = copy.deepcopy(dashboard)
        hits = 0
        for p in all_panels(m):
            if p["title"] == title:
                for t in p["targets"]:
                    hits += old in t["expr"]
                    t["expr"] = t["expr"].replace(old, new)
        assert hits, (title, old)
        return problems(m, text, series)

    for title, old, new, says in [
            ("Events/s by source and result", "relationd_events_total",
             "relationd_event_total", "relationd_event_total is not in the scrape"),
            ("Triggers published/s by kind", "by (kind)", "by (knd)", "no label 'knd'"),
            ("Kafka consumer lag per partition", "by (topic, partition)",
             "by (topic, partition, queue)", "no label 'queue'"),
            ("Connections up", "relationd_connection_up{",
             'relationd_connection_up{source="kafka",', "no label 'source'"),
            ("Outbox entries", 'relationd_outbox_entries{instance=~"$instance"}',
             'rate(relationd_outbox_entries{instance=~"$instance"}[5m])', "a gauge"),
            ("Batch latency", "_bucket{", "{", "relationd_batch_duration_seconds is not in"),
            ("Dead-lettered messages/s by source", "rate(relationd_dead_letters_total",
             "(relationd_dead_letters_total", "without rate")]:
        got = mutated(title, old, new)
        assert any(says in p for p in got), (title, new, got)
    m = copy.deepcopy(dashboard)
    inst = next(v for v in m["templating"]["list"] if v["name"] == "instance")
    inst["query"]["query"] = "label_values(relationd_build_info, instanc)"
    assert any("no label 'instanc'" in p for p in problems(m, text, series))

    assert d.stop() == 0, d.log_tail()
