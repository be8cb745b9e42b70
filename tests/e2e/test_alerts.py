"""The alert rules (config/alerts.yml): what the README's Alerts section shows
is the file itself; every rule has a severity and a summary and assumes no
job name; and every metric and label a rule uses is one a live daemon
exports (as for the Grafana dashboard, test_dashboard.problems). promtool
checks and unit-tests the rules themselves (make test-alerts)."""

import os
import re

import yaml

import test_dashboard as D

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALERTS = os.path.join(REPO, "config", "alerts.yml")


def rules():
    with open(ALERTS) as f:
        doc = yaml.safe_load(f)
    return [r for g in doc["groups"] for r in g["rules"]]


def test_readme_shows_the_rule_file():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    section = readme.split("\n### Alerts\n", 1)[1].split("\n### ", 1)[0]
    shown = re.search(r"```yaml\n(.*?)```\n", section, re.S).group(1)
    with open(ALERTS) as f:
        text = f.read()
    assert shown == text[text.index("groups:"):]


def test_every_rule_has_a_severity_and_a_summary_and_no_job():
    found = rules()
    assert found
    for r in found:
        assert r["alert"].startswith("Relationd"), r
        assert r["labels"]["severity"] in ("critical", "warning"), r
        assert r["annotations"]["summary"].strip(), r
        assert "job=" not in r["expr"].replace(" ", ""), r


def test_alert_rules_use_what_the_daemon_exports(harness, daemons):
    d, text, series = D.scrape_after_traffic(harness, daemons)
    as_dashboard = {"panels": [{"title": r["alert"], "targets": [{"expr": r["expr"]}]}
                               for r in rules()]}
    found = D.problems(as_dashboard, text, series)
    assert not found, "\n".join(found)
    # the check can fail: a misspelt metric is reported
    as_dashboard["panels"][1]["targets"][0]["expr"] = "relationd_connection_upp == 0"
    assert any("relationd_connection_upp is not in the scrape" in p
               for p in D.problems(as_dashboard, text, series))
    assert d.stop() == 0, d.log_tail()
