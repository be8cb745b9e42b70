"""`relationctl apply` as a stream: memory that does not grow with the input,
oversized and blank lines, CRLF, a file argument, a Redis that is not there.
The tests that apply events run through both engines (`redis.engine`; the
session's redis-server has the module loaded, `rdb` empties it first)."""

import json
import os
import subprocess


from redis_server import free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))

RELATION = {"short": "rel", "database_a": "a", "database_b": "b",
            "properties": [{"short": "n", "type": "int", "save_amount": True}]}


def write_config(tmp_path, port, engine="function"):
    path = tmp_path / "relationd.json"
    path.write_text(json.dumps({"redis": {"url": "redis://127.0.0.1:%d/0" % port,
                                          "engine": engine},
                                "relations": [RELATION]}))
    return str(path)


def event(i, profiles=50):
    return json.dumps({"id": "s-%d" % i, "op": "strengthen", "relation": "rel",
                       "profile_a": "a%d" % (i % profiles), "profile_b": "b%d" % (i % 7),
                       "weights": {"n": 1}})


def child_max_rss_kib(args, stdin_path):
    """Runs args in a fresh Python child so that RUSAGE_CHILDREN holds only it."""
    code = ("import resource, subprocess, sys\n"
            "with open(sys.argv[1]) as f:\n"
            "    rc = subprocess.run(sys.argv[2:], stdin=f, stdout=subprocess.DEVNULL,"
            " stderr=subprocess.DEVNULL).returncode\n"
            "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
    # default) that would grow with the input: keep it small.
    env = dict(os.environ, ASAN_OPTIONS="quarantine_size_mb=4")
    out = subprocess.run(["/usr/bin/python3", "-c", code, stdin_path] + args, env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    rc, rss = out.stdout.split()
    return int(rc), int(rss)


def test_memory_does_not_grow_with_the_input(server, rdb, tmp_path, engine):
    cfg = write_config(tmp_path, server.port, engine)
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_text("\n".join(event(i) for i in range(500)) + "\n")
    # 40 times as many events, and as many bytes again in invalid lines
    with open(large, "w") as f:
        for i in range(500, 20500):
            f.write(event(i) + "\n")
            f.write("{\"id\": \"bad-%d\", \"op\": \"strengthen\", \"pad\": \"%s\"}\n" % (i, "x" * 600))
    rc_small, rss_small = child_max_rss_kib([RELATIONCTL, "-c", cfg, "apply", "-"], str(small))
    rc_large, rss_large = child_max_rss_kib([RELATIONCTL, "-c", cfg, "apply", "-"], str(large))
    assert (rc_small, rc_large) == (0, 3)
    assert os.path.getsize(large) > 10 * 1024 * 1024
    assert rss_large < rss_small * 1.5 + 2048, (rss_small, rss_large)


def test_oversized_blank_and_crlf_lines(server, rdb, tmp_path, engine):
    cfg = write_config(tmp_path, server.port, engine)
    big = json.dumps({"id": "big", "op": "attach", "relation": "rel", "profile_a": "x",
                      "profile_b": "y", "pad": "p" * 70000})
    path = tmp_path / "events.jsonl"
    with open(path, "w", newline="") as f:
        f.write(json.dumps({"id": "c1", "op": "attach", "relation": "rel", "profile_a": "crlf",
                            "profile_b": "y", "weights": {"n": 2}}) + "\r\n")
        f.write("\n   \n")
        f.write(big + "\n")
        f.write(json.dumps({"id": "c2", "op": "strengthen", "relation": "rel",
                            "profile_a": "crlf", "profile_b": "y", "weights": {"n": 3}}))
    out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3
    errors = out.stderr.splitlines()
    assert errors == ["line 4: event larger than 65536 bytes",
                      "applied 2, duplicate 0, stale 0, invalid 1"]
    stats = subprocess.run([RELATIONCTL, "-c", cfg, "stats", "rel", "direct", "crlf"],
                           capture_output=True, text=True, check=True)
    assert json.loads(stats.stdout) == {"count": 1, "properties": {"n": {"count": 1, "total": 5}}}


def test_missing_file_and_unreachable_redis(server, tmp_path):
    cfg = write_config(tmp_path, server.port)
    out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", str(tmp_path / "nope.jsonl")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "nope.jsonl: No such file or directory" in out.stderr

    dead = write_config(tmp_path, free_port())
    out = subprocess.run([RELATIONCTL, "-c", dead, "apply", "-"], input=event(1) + "\n",
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "Connection refused" in out.stderr
    out = subprocess.run([RELATIONCTL, "-c", dead, "stats", "rel", "direct", "a1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "Connection refused" in out.stderr
    assert "hint: is redis-server running at redis.url?" in out.stderr, out.stderr


def test_usage_errors(server, tmp_path):
    cfg = write_config(tmp_path, server.port)
    for args, message in [
        (["stats", "nope", "direct", "x"], 'unknown relation "nope"'),
        (["stats", "rel", "sideways", "x"], 'side must be direct or reverse, not "sideways"'),
        (["stats", "rel", "direct"],
         "relationctl stats: missing arguments; it takes RELATION direct|reverse PROFILE"),
        (["stats", "rel", "direct", "x", "y"], 'relationctl stats: unexpected argument "y"'),
        (["stats", "rel", "direct", "x", "--jsn"],
         "relationctl stats: unknown option --jsn (see relationctl stats --help)"),
        (["segment", "rel", "direct", "--where"], "relationctl segment: --where needs a value"),
        (["frobnicate"], 'relationctl: unknown command "frobnicate"'),
    ]:
        out = subprocess.run([RELATIONCTL, "-c", cfg] + args, capture_output=True, text=True)
        assert out.returncode == 2, args
        assert message in out.stderr, (args, out.stderr)


def test_lines_are_binary_safe_and_measured_without_their_terminator(server, rdb, tmp_path,
                                                                      engine):
    """A NUL byte makes a line invalid (nothing after it is dropped or
    applied); the size limit counts a line's bytes without its terminator,
    \\r\\n or \\n alike: an event of exactly 65536 bytes is applied either way,
    one of 65537 is refused; an event after a NUL past byte 65536 of a line
    is not applied."""
    cfg = write_config(tmp_path, server.port, engine)

    def sized(eid, size):
        head = {"id": eid, "op": "strengthen", "relation": "rel", "profile_a": "bin",
                "profile_b": eid, "weights": {"n": 1}, "pad": ""}
        text = json.dumps(head, separators=(",", ":"))
        text = text.replace('"pad":""', '"pad":"%s"' % ("p" * (size - len(text))))
        assert len(text) == size
        return text.encode()

    valid = json.dumps({"id": "nul", "op": "attach", "relation": "rel", "profile_a": "bin",
                        "profile_b": "nul", "weights": {"n": 100}}).encode()
    hidden = json.dumps({"id": "hidden", "op": "attach", "relation": "rel", "profile_a": "bin",
                         "profile_b": "hidden", "weights": {"n": 1000}}).encode()
    data = (sized("lf", 65536) + b"\n" +
            sized("crlf", 65536) + b"\r\n" +
            sized("big-lf", 65537) + b"\n" +
            sized("big-crlf", 65537) + b"\r\n" +
            valid + b"\0garbage\n" +
            b"x" * 70000 + b"\0" + hidden + b"\n" +
            valid.replace(b'"nul"', b'"nul2"', 1) + b"\n")
    path = tmp_path / "binary.jsonl"
    path.write_bytes(data)
    out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", str(path)],
                         capture_output=True, timeout=60)
    errors = out.stderr.decode().splitlines()
    assert out.returncode == 3, errors
    assert errors[-1] == "applied 3, duplicate 0, stale 0, invalid 4", errors
    assert [e.split(":")[0] for e in errors[:-1]] == ["line 3", "line 4", "line 5", "line 6"]
    assert errors[0] == "line 3: event larger than 65536 bytes"
    assert errors[1] == "line 4: event larger than 65536 bytes"
    stats = subprocess.run([RELATIONCTL, "-c", cfg, "stats", "rel", "direct", "bin"],
                           capture_output=True, text=True, check=True)
    # lf, crlf (1 each) and nul2 (100); neither the NUL line nor the hidden event
    assert json.loads(stats.stdout) == {"count": 3, "properties": {"n": {"count": 3,
                                                                         "total": 102}}}
