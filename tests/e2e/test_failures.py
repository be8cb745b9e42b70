"""Failure paths of `relationctl apply`: Redis killed mid-stream, the script
cache flushed mid-stream, a crash between storing and delivering the triggers.
Each ends with exact statistics and every trigger delivered at least once."""

import json
import os
import subprocess

import pytest
import redis

import layout2
from redis_server import Server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))

RELATION = {
    "short": "rel", "database_a": "a", "database_b": "b",
    "properties": [
        {"short": "amount", "type": "float", "save_amount": True,
         "save_top": {"order": "desc", "limit": 3}},
        {"short": "n", "type": "int", "save_amount": True},
    ],
    "thresholds": [{"direction": "direct", "stat": "count", "value": 3}],
}


@pytest.fixture()
def server():
    s = Server(persistent=True)
    s.start()
    yield s
    s.stop()


@pytest.fixture()
def config(server, tmp_path):
    path = tmp_path / "relationd.json"
    path.write_text(json.dumps({
        "redis": {"url": "redis://127.0.0.1:%d/0" % server.port, "timeout_ms": 2000},
        "engine": {"batch_size": 1},
        "relations": [RELATION],
    }))
    return str(path)


def event(i, profile_a="p1"):
    return json.dumps({"id": "ev-%d" % i, "op": "strengthen", "relation": "rel",
                       "profile_a": profile_a, "profile_b": "b%d" % (i % 5),
                       "weights": {"amount": 0.1, "n": 1}})


def apply(config, lines, stdout=subprocess.PIPE):
    return subprocess.run([RELATIONCTL, "-c", config, "apply", "-"], input="\n".join(lines) + "\n",
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)


def stats(config, side, profile):
    out = subprocess.run([RELATIONCTL, "-c", config, "stats", "rel", side, profile],
                         capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)


def read_event_triggers(proc, event_id):
    """Reads the trigger lines of one event; its last one is on the reverse side."""
    lines = []
    while True:
        line = proc.stdout.readline()
        assert line, "relationctl ended early"
        lines.append(line)
        data = json.loads(line)["event_data"]
        if data["source_event"]["id"] == event_id and data["direction"] == "reverse":
            return lines


def trigger_ids(stdout):
    return [json.loads(line)["event_data"]["id"] for line in stdout.splitlines() if line]


def expected_direct_stats(events):
    """Twenty strengthens of 0.1 / 1 over five counterparts: four each."""
    per = {}
    for i in range(events):
        per["b%d" % (i % 5)] = per.get("b%d" % (i % 5), 0) + 1
    return {"count": len(per), "properties": {
        "amount": {"count": len(per), "total": round(sum(per.values()) * 0.1, 6),
                   "top": sorted(({"profile_id": k, "value": round(v * 0.1, 6)}
                                  for k, v in per.items()),
                                 key=lambda t: (-t["value"], [-ord(c) for c in t["profile_id"]]))[:3]},
        "n": {"count": len(per), "total": sum(per.values())}}}


def reference_ids(config, lines, server):
    """The trigger ids of the same events applied once, cleanly, elsewhere."""
    r = redis.Redis(port=server.port)
    r.flushall()
    ids = trigger_ids(apply(config, lines).stdout)
    r.flushall()
    return set(ids)


def test_redis_killed_mid_stream_then_rerun(server, config):
    lines = [event(i) for i in range(20)]
    want_ids = reference_ids(config, lines, server)

    proc = subprocess.Popen([RELATIONCTL, "-c", config, "apply", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed = []
    for i, line in enumerate(lines[:8]):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        # batch_size 1: each event's triggers come back before the next is read
        printed += read_event_triggers(proc, "ev-%d" % i)
    server.kill()
    try:
        for line in lines[8:]:
            proc.stdin.write(line + "\n")
        proc.stdin.close()
    except BrokenPipeError:
        pass
    rest, err = proc.stdout.read(), proc.stderr.read()
    assert proc.wait(timeout=30) == 1, err
    assert "redis" in err

    server.start()
    second = apply(config, lines)
    assert second.returncode == 0, second.stderr
    summary = second.stderr.strip().splitlines()[-1]
    assert summary == "applied 12, duplicate 8, stale 0, invalid 0"

    delivered = set(trigger_ids("".join(printed) + rest)) | set(trigger_ids(second.stdout))
    assert delivered == want_ids
    got = stats(config, "direct", "p1")
    assert json.loads(json.dumps(got)) == expected_direct_stats(20)
    for k in range(5):
        assert stats(config, "reverse", "b%d" % k)["properties"]["n"]["total"] == 4


def test_function_library_flushed_mid_stream(server, config):
    lines = [event(i) for i in range(10)]
    proc = subprocess.Popen([RELATIONCTL, "-c", config, "apply", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for i, line in enumerate(lines[:5]):
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        read_event_triggers(proc, "ev-%d" % i)
    redis.Redis(port=server.port).execute_command("FUNCTION", "FLUSH")
    for line in lines[5:]:
        proc.stdin.write(line + "\n")
    proc.stdin.close()
    proc.stdout.read()
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0, err
    assert "function library missing, loading it again" in err
    assert err.strip().splitlines()[-1] == "applied 10, duplicate 0, stale 0, invalid 0"
    assert stats(config, "direct", "p1")["properties"]["n"]["total"] == 10


def test_crash_between_storing_and_delivering_keeps_the_triggers(server, config):
    """Writing the triggers fails (a full disk): the statistics are stored but
    the triggers stay in the outbox; the rerun sees duplicates and delivers the
    same triggers, with the same ids and bodies."""
    lines = [event(i) for i in range(3)]
    with open("/dev/full", "w") as full:
        first = apply(config, lines, stdout=full)
    assert first.returncode == 1
    assert "writing the triggers" in first.stderr
    r = redis.Redis(port=server.port)
    # the outbox of the side: the undelivered records by event key
    assert layout2.event_key("ev-0", "b0") in r.hkeys("rel:{rel:d:p1}:out")

    second = apply(config, lines)
    assert second.returncode == 0, second.stderr
    # the first batch (one event) was stored, then its delivery failed; the
    # second batch is applied while the first is printed, so it may be stored too
    summary = second.stderr.strip().splitlines()[-1]
    assert summary in ("applied 2, duplicate 1, stale 0, invalid 0",
                       "applied 1, duplicate 2, stale 0, invalid 0"), summary
    bodies = [json.loads(line) for line in second.stdout.splitlines()]
    assert {b["event_data"]["source_event"]["id"] for b in bodies} == {"ev-0", "ev-1", "ev-2"}
    assert r.exists("rel:{rel:d:p1}:out") == 0
    assert stats(config, "direct", "p1")["properties"]["n"]["total"] == 3

    third = apply(config, lines)
    assert third.stdout == ""
    assert third.stderr.strip().splitlines()[-1] == "applied 0, duplicate 3, stale 0, invalid 0"


def test_function_library_flushed_while_batches_are_in_flight(server, config):
    """FUNCTION FLUSH again and again while relationctl keeps several batches
    sent and unread (a file read at full speed): every batch that met the
    missing library is sent again, in order; each event counts once and
    every trigger is printed once."""
    import threading
    lines = [event(i) for i in range(3000)]
    client = redis.Redis(port=server.port)
    stop = threading.Event()
    flushes = [0]

    def flush():
        while not stop.is_set():
            client.execute_command("FUNCTION", "FLUSH")
            flushes[0] += 1
            stop.wait(0.002)
    t = threading.Thread(target=flush)
    t.start()
    try:
        out = apply(config, lines)
    finally:
        stop.set()
        t.join()
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "applied 3000, duplicate 0, stale 0, invalid 0"
    assert flushes[0] > 10
    assert "function library missing, loading it again" in out.stderr
    bodies = [json.loads(line)["event_data"] for line in out.stdout.splitlines()]
    ids = [b["id"] for b in bodies]
    assert len(ids) == len(set(ids)), "a trigger printed twice"
    # an attach or change trigger on each side of every event
    assert {(b["source_event"]["id"], b["direction"]) for b in bodies
            if b["kind"] in ("attach", "change")} == \
        {("ev-%d" % i, side) for i in range(3000) for side in ("direct", "reverse")}
    assert stats(config, "direct", "p1")["properties"]["n"]["total"] == 3000
    for k in range(5):
        assert stats(config, "reverse", "b%d" % k)["properties"]["n"]["total"] == 600
