"""relationctl for a person: `stats` as a table on a terminal and JSON when
piped, progress lines on a terminal only, `--help` with an example for every
command, and errors that say what to do next (an unknown relation said with
the configured ones, by every command); kafka_mock, the test broker, says how
it is used."""

import json
import os
import pty
import select
import subprocess
import tempfile

import test_apply as A
from brokers import KAFKA_MOCK
from conftest import RELATIONCTL, REPO

COMMANDS = ["stats", "edges", "segment", "render", "watch", "send", "redrive", "verify",
            "rebuild", "migrate", "layout", "apply"]


def on_terminal(args, stdout_tty=True, stdin=None, timeout=120):
    """Runs relationctl with standard error (and standard output when
    stdout_tty) on a pseudo-terminal; returns (status, terminal text, piped
    standard output)."""
    master, slave = pty.openpty()
    sink = tempfile.TemporaryFile()   # not a pipe: nobody reads it while it runs
    p = subprocess.Popen([RELATIONCTL] + args, stdin=stdin or subprocess.DEVNULL,
                         stdout=slave if stdout_tty else sink, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        assert ready, "relationctl did not finish"
        try:
            chunk = os.read(master, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    sink.seek(0)
    out = sink.read()
    sink.close()
    os.close(master)
    return p.wait(timeout), seen.decode(), out.decode()


def piped(args, **kw):
    return subprocess.run([RELATIONCTL] + args, capture_output=True, text=True, timeout=120, **kw)


def sales_config(ctl):
    cfg = ctl.config([A.REL_SALES])
    events = [
        {"id": "h1", "op": "attach", "relation": "sales", "profile_a": "42",
         "profile_b": "1001", "weights": {"profit": 250.5, "qty": 2, "ok": True}},
        {"id": "h2", "op": "attach", "relation": "sales", "profile_a": "42",
         "profile_b": "1002", "weights": {"profit": 0.000001, "qty": 7}},
    ]
    assert ctl.apply(cfg, events).returncode == 0
    return cfg


def test_stats_is_a_table_on_a_terminal_and_json_when_piped(ctl, rdb):
    cfg = sales_config(ctl)
    rc, screen, _ = on_terminal(["-c", cfg, "stats", "sales", "direct", "42"])
    assert rc == 0, screen
    lines = [l.rstrip() for l in screen.replace("\r\n", "\n").splitlines()]
    assert lines[0] == "sales, direct side of 42 (managers -> customers): 2 edges", lines
    rows = {l.split()[0]: l.split()[1:] for l in lines[1:] if l and l.split()[0] in
            ("profit", "qty", "ok")}
    assert rows == {"profit": ["2", "250.500001"], "qty": ["2", "9"], "ok": ["1", "-"]}, lines
    top = lines[lines.index("top profit (highest first, at most 3)") + 1:][:2]
    assert [t.split() for t in top] == [["1.", "1001", "250.5"], ["2.", "1002", "0.000001"]]
    assert "top qty (lowest first, at most 2)" in lines
    assert "{" not in screen

    out = piped(["-c", cfg, "stats", "sales", "direct", "42"])
    assert out.returncode == 0
    stats = json.loads(out.stdout)
    assert stats["count"] == 2 and stats["properties"]["qty"]["total"] == 9

    rc, screen, _ = on_terminal(["-c", cfg, "stats", "sales", "direct", "42", "--json"])
    assert rc == 0 and json.loads(screen) == stats
    out = piped(["-c", cfg, "stats", "sales", "direct", "42", "--table"])
    assert out.returncode == 0 and out.stdout.startswith("sales, direct side of 42")
    out = piped(["-c", cfg, "stats", "sales", "direct", "42", "--table", "--json"])
    assert out.returncode == 2 and "--json or --table, not both" in out.stderr


def big_input(tmp_path, n=30000):
    path = tmp_path / "many.jsonl"
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": "p%d" % i, "op": "attach", "relation": "sales",
                                "profile_a": "m%d" % (i % 200), "profile_b": "c%d" % i,
                                "weights": {"qty": i % 9}}) + "\n")
        f.write("not an event\n")
    return str(path)


def test_progress_only_on_a_terminal(ctl, rdb, tmp_path):
    cfg = ctl.config([A.REL_SALES])
    path = big_input(tmp_path)
    # stderr on a terminal, the triggers to a pipe: a bar with a share of the file
    rc, screen, out = on_terminal(["-c", cfg, "apply", path], stdout_tty=False)
    assert rc == 3, screen
    kinds = [json.loads(l)["event_type"] for l in out.splitlines()]
    assert kinds.count("relation_direct_attach") == kinds.count("relation_reverse_attach") == 30000
    assert "%" in screen and "events" in screen and "/s" in screen, screen[-500:]
    assert "[" in screen and "#" in screen
    assert "line 30001: not JSON" in screen      # said on a line of its own
    assert screen.rstrip().endswith("applied 30000, duplicate 0, stale 0, invalid 1"), \
        screen[-300:]
    # the same run piped: only the lines a program reads
    out = piped(["-c", cfg, "apply", path])
    assert out.returncode == 3
    assert out.stderr.splitlines() == ["line 30001: not JSON: '[' or '{' expected near 'not' "
                                       "at column 3",
                                       "applied 0, duplicate 30000, stale 0, invalid 1"], \
        out.stderr[:500]
    # verify: sides counted with a bar from the walk of the keys
    rc, screen, _ = on_terminal(["-c", cfg, "verify", "sales"], stdout_tty=False)
    assert rc == 0 and "sides" in screen and "%" in screen, screen[-300:]
    assert screen.rstrip().endswith("sides 30200, differing 0, edges read 60000"), screen[-300:]
    out = piped(["-c", cfg, "verify", "sales"])
    assert out.stderr == "sides 30200, differing 0, edges read 60000\n"
    # migrate: the same bar over the walks of the side keys (every side in layout 2)
    rc, screen, _ = on_terminal(["-c", cfg, "migrate"], stdout_tty=False)
    assert rc == 0 and "sides" in screen and "%" in screen, screen[-300:]
    assert "sides 0 converted, 30200 already in layout 2" in screen, screen[-300:]
    out = piped(["-c", cfg, "migrate"])
    assert out.stderr.startswith("sides 0 converted, 30200 already in layout 2\n"), out.stderr
    # apply printing its triggers on the terminal: they are the progress
    small = tmp_path / "one.jsonl"
    small.write_text(json.dumps({"id": "q1", "op": "attach", "relation": "sales",
                                 "profile_a": "z", "profile_b": "y"}) + "\n")
    rc, screen, _ = on_terminal(["-c", cfg, "apply", str(small)])
    assert rc == 0 and "%" not in screen and "\x1b[K" not in screen


def test_help_for_every_command_with_an_example(ctl):
    for name in COMMANDS:
        for args in ([name, "--help"], ["help", name], ["-c", "/nonexistent", name, "-h"]):
            out = piped(args)
            assert out.returncode == 0, (args, out.stderr)
            text = out.stdout
            assert text.startswith("usage: relationctl -c FILE %s" % name), text
            example = text.split("example:\n", 1)[1].splitlines()[0].strip()
            assert example.startswith("relationctl -c ") and \
                (" %s " % name in example or example.endswith(" " + name)), text
    out = piped(["--help"])
    assert out.returncode == 0 and all(" %s " % c in out.stdout for c in COMMANDS)
    out = piped(["stats", "sales", "direct", "42"])
    assert out.returncode == 2 and "-c FILE, relationd's configuration, comes first" in out.stderr


def test_errors_say_what_to_do_next(ctl, tmp_path):
    cfg = ctl.config([A.REL_SALES])
    out = piped(["-c", cfg, "stats", "salse", "direct", "42"])
    assert out.returncode == 2
    assert 'unknown relation "salse" (the configuration has: sales)' in out.stderr
    two = ctl.config([A.REL_SALES, A.REL_PEERS])
    out = piped(["-c", two, "render", "-", "--profile", "42"],
                input="Hello {relation.salse.direct.count}\n")
    assert out.returncode == 2
    assert ('{relation.salse.direct.count}: unknown relation "salse" '
            '(the configuration has: sales, peers)') in out.stderr, out.stderr
    conf = json.load(open(cfg))
    conf["hooks"] = {"url": "amqp://guest:guest@127.0.0.1:1/%2f", "exchange": "h"}
    bad = tmp_path / "hooks.json"
    bad.write_text(json.dumps(conf))
    out = piped(["-c", str(bad), "watch"])
    assert out.returncode == 1
    assert "hint: is the broker running at the URL of the configuration?" in out.stderr, out.stderr


def test_kafka_mock_says_how_it_is_used():
    """--help (or -h): the usage with every option on standard output, exit 0,
    nothing started; a wrong option or argument: what was wrong, then the
    usage, on standard error, exit 2."""
    for flag in ("--help", "-h"):
        out = subprocess.run([KAFKA_MOCK, flag], capture_output=True, text=True, timeout=10)
        assert out.returncode == 0 and out.stderr == "", out
        assert out.stdout.startswith("usage: kafka_mock [-b BROKERS] [-j MS] "
                                     "TOPIC[:PARTITIONS]...\n"), out.stdout
        for option in ("-b BROKERS", "-j MS", "-h, --help"):
            assert "\n  %s " % option in out.stdout, (option, out.stdout)
        with open(os.path.join(REPO, "README.md")) as f:
            assert "\n```\n" + out.stdout + "```\n" in f.read(), "the README shows another usage"
    for args, what in ((["--bogus", "t"], "unknown option: --bogus"),
                       (["-x", "t"], "unknown option: -x"),
                       (["-b", "0", "t"], "-b wants a number of brokers of 1 or more, not: 0"),
                       (["-b", "two", "t"], "not: two"),
                       (["-j", "-5", "t"], "-j wants milliseconds (0 or more), not: -5"),
                       (["t", "-j"], "bad TOPIC[:PARTITIONS]: -j"),
                       (["-j"], "missing the value of: -j"),
                       ([], "no TOPIC given"),
                       (["t:0"], "bad TOPIC[:PARTITIONS]: t:0"),
                       (["t:2x"], "bad TOPIC[:PARTITIONS]: t:2x"),
                       ([":3"], "bad TOPIC[:PARTITIONS]: :3")):
        out = subprocess.run([KAFKA_MOCK] + args, capture_output=True, text=True, timeout=10)
        assert out.returncode == 2 and out.stdout == "", (args, out)
        assert out.stderr.startswith("kafka_mock: ") and what in out.stderr, (args, out.stderr)
        assert "\nusage: kafka_mock [-b BROKERS] [-j MS] TOPIC[:PARTITIONS]...\n" in out.stderr
