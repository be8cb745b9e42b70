"""make demo (tools/demo.py): the referral story of config/demo-events.jsonl on
config/demo.json, its triggers as `relationctl watch` prints them and as the
partner's http endpoint got them (signed batches, verified), the dead
letter, the statistics tables, each edge's events through one source (the two
sources are not ordered with each other); everything it started gone at the end, after
Ctrl-C too, and a second run as good as the first."""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from brokers import KAFKA_MOCK, RELATIOND, pid_alive
from conftest import RELATIONCTL, REPO

PYTHON = "/usr/bin/python3"      # as the Makefile runs it


class Demo:
    """tools/demo.py as `make demo` runs it, its output read as it comes."""

    def __init__(self):
        env = dict(os.environ, RELATIONCTL=RELATIONCTL, RELATIOND=RELATIOND,
                   KAFKA_MOCK=KAFKA_MOCK)
        # a session of its own: a signal to its group is a Ctrl-C on its terminal
        self.proc = subprocess.Popen([PYTHON, "tools/demo.py"], cwd=REPO, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)     # the end
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=120):
        """The first line matching pattern (waiting for it)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if line is not None and re.search(pattern, line):
                        return line
                if None in self.lines:
                    raise AssertionError("the demo ended without %r:\n%s" % (
                        pattern, self.text()))
                left = deadline - time.monotonic()
                assert left > 0, "no %r within %d s:\n%s" % (pattern, timeout, self.text())
                self.cond.wait(left)

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.reader.join()
            raise AssertionError("the demo did not end within %d s:\n%s" % (
                timeout, self.text()))
        self.reader.join()
        return rc

    def text(self):
        return "\n".join(line for line in self.lines if line is not None)

    def tmp(self):
        return re.match(r"^starting .* in (/\S+)$", self.wait_line(r"^starting ")).group(1)


def pids_of(running_line):
    return [int(p) for p in re.findall(r"\b(\d+)\b", running_line)]


def leftovers(tmp, pids):
    """Processes still there: a pid the demo printed, or any process whose
    command line or environment names its temporary directory (its servers,
    relationd, watch, and what they started)."""
    found = {p for p in pids if pid_alive(p)}
    mark = tmp.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmdline = f.read()
            with open("/proc/%s/environ" % name, "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if (mark in cmdline or mark in environ) and pid_alive(int(name)):
            found.add(int(name))
    return {p: open("/proc/%d/cmdline" % p, "rb").read().replace(b"\0", b" ")[:120]
            for p in found if pid_alive(p)}


TRIGGER = re.compile(r"^\s+\d\d:\d\d:\d\d referrals\s+(direct|reverse)\s+(\w+)\s+(\S+) -> (\S+)"
                     r"\s*(.*)$")
EXPECTED = sorted([
    ("direct", "attach", "anna", "ben"), ("reverse", "attach", "ben", "anna"),
    ("direct", "attach", "anna", "chloe"), ("reverse", "attach", "chloe", "anna"),
    ("direct", "change", "anna", "ben"), ("reverse", "change", "ben", "anna"),
    ("direct", "change", "anna", "chloe"), ("reverse", "change", "chloe", "anna"),
    ("direct", "change", "anna", "chloe"), ("reverse", "change", "chloe", "anna"),
    ("direct", "threshold", "anna", "chloe"),
    ("direct", "detach", "anna", "ben"), ("reverse", "detach", "ben", "anna")])


def table(text, command):
    """The lines printed after `$ COMMAND`, up to the next command or the end."""
    block = text.split("$ " + command + "\n", 1)[1]
    return re.split(r"\n(?=\$ |done:)", block, 1)[0]


def check_story(demo, rc):
    text = demo.text()
    assert rc == 0, text
    lines = text.splitlines()
    assert len(lines) <= 55, "more than one screen:\n" + text
    assert lines[-1].startswith("done: 7 events, 13 triggers, 1 dead letter"), text
    assert "watching relation.hooks for #" in text

    triggers = [m.groups() for m in map(TRIGGER.match, lines) if m]
    assert sorted(t[:4] for t in triggers) == EXPECTED, text
    # the threshold crossed, with its name from config/demo.json
    assert [t[4] for t in triggers if t[1] == "threshold"] == [
        "total of revenue up 100 (gold referrer)"], text
    # each after its step's narration: the threshold with the purchase that crossed it
    step = None
    by_step = {}
    for line in lines[:lines.index("Statistics now:")]:
        m = re.match(r"^(\d)\. ", line)
        if m:
            step = int(m.group(1))
            by_step[step] = [line]
        elif step is not None and line.startswith(" "):
            by_step[step].append(line)
    # each step's triggers, then one line of the partner's http endpoint (none for the
    # dead letter): the same triggers, in signed batches whose signatures verified
    assert [len(by_step[s]) - 1 for s in range(1, 8)] == [3, 3, 3, 3, 1, 4, 3], text
    for s in (1, 2, 3, 4, 6, 7):
        m = re.match(r"^   http partner: (\d+) signed batch(?:es)?, signature ok: (.*)$",
                     by_step[s][-1])
        assert m and int(m.group(1)) >= 1, by_step[s]
        watched = sorted("%s %s->%s" % TRIGGER.match(line).groups()[1:4]
                         for line in by_step[s][1:-1])
        assert sorted(m.group(2).split(", ")) == watched, by_step[s]
    assert "gold referrer" in by_step[6][0]
    assert any(re.search(r" threshold anna -> chloe\s+total of revenue up 100 "
                         r"\(gold referrer\)$", line) for line in by_step[6]), text
    assert all(" attach " in line for line in by_step[1][1:] + by_step[2][1:])
    assert all(" detach " in line for line in by_step[7][1:])
    assert by_step[5][1].strip() == ("dead letter on relation-events.dlx: "
                                     "weights.revenue: must be a number"), text

    # step n sends line n of the events file; its narration names the source
    with open(os.path.join(REPO, "config", "demo-events.jsonl")) as f:
        edges = [(e["profile_a"], e["profile_b"]) for e in map(json.loads, f) if e]
    sources = {}
    for n, edge in enumerate(edges, 1):
        named = re.findall(r"\b(Kafka|RabbitMQ)\)", by_step[n][0])
        assert len(named) == 1, by_step[n][0]
        sources.setdefault(edge, set()).add(named[0])
    assert sources == {("anna", "ben"): {"Kafka"}, ("anna", "chloe"): {"RabbitMQ"}}, sources

    # Anna keeps Chloe only: 1 edge, revenue 45.5 + 74.5 = 120, purchases 1 + 2 = 3
    anna = table(text, "relationctl stats referrals direct anna --table")
    assert re.search(r"\b1 edge\b", anna), anna
    assert re.search(r"^\s*revenue\s+1\s+120\s*$", anna, re.M), anna
    assert re.search(r"^\s*purchases\s+1\s+3\s*$", anna, re.M), anna
    assert re.search(r"^\s*1\. chloe\s+120\s*$", anna, re.M), anna
    # Ben left: nothing on his side
    ben = table(text, "relationctl stats referrals reverse ben --table")
    assert re.search(r"\b0 edges\b", ben), ben
    assert re.search(r"^\s*revenue\s+0\s+0\s*$", ben, re.M), ben


def test_demo_tells_the_story_twice():
    """Two runs in a row: fresh directories and ports each time, nothing left
    behind by the first."""
    for run in (1, 2):
        demo = Demo()
        tmp = demo.tmp()
        pids = pids_of(demo.wait_line(r"^pids: "))
        assert len(pids) == 6, pids
        rc = demo.wait(240)
        check_story(demo, rc)
        assert not leftovers(tmp, pids), (run, leftovers(tmp, pids))
        assert not os.path.exists(tmp)


@pytest.mark.parametrize("moment", ["startup", "story"])
def test_ctrl_c_stops_everything(moment):
    """startup: SIGINT to the demo alone while its servers start; story: SIGINT
    to its whole process group (Ctrl-C on a terminal) once the story began."""
    demo = Demo()
    tmp = demo.tmp()
    pids = []
    if moment == "startup":
        time.sleep(2)                   # rabbitmq-server is booting
        os.kill(demo.proc.pid, signal.SIGINT)
    else:
        pids = pids_of(demo.wait_line(r"^pids: "))
        demo.wait_line(r"^1\. ")
        os.killpg(demo.proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    rc = demo.wait(60)
    took = time.monotonic() - t0
    text = demo.text()
    assert rc != 0, text
    assert "interrupted" in text.splitlines()[-1], text
    assert "done:" not in text
    print("stopped %.1f s after SIGINT" % took)
    assert took < 30, "%.1f s to stop\n%s" % (took, text)
    assert not leftovers(tmp, pids), (leftovers(tmp, pids), text)
    assert not os.path.exists(tmp)
