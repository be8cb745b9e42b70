"""relationctl send: JSON-lines events published the way an upstream service
should (Kafka: the recommended key, acks=all; AMQP: persistent, confirmed),
each line checked first (a bad one reported as `line N: reason`, not sent);
the daemon applies what was sent: the statistics equal the oracle's."""

import subprocess

from brokers import make_stream
from conftest import RELATIONCTL


def send(cfg_path, path, *flags):
    return subprocess.run([RELATIONCTL, "-c", cfg_path, "send", str(path)] + list(flags),
                          capture_output=True, text=True, timeout=120)


def test_send_to_both_sources(harness, daemons, tmp_path):
    h = harness(kafka=True, amqp=True)
    d = h.daemon(daemons).start()
    events = make_stream(600, seed=113, clusters=[0, 1, 2, 3], tag="sd")
    # an edge's events stay in one source (its cluster), in order
    halves = {"--kafka": [e for e in events if e.cluster < 2],
              "--amqp": [e for e in events if e.cluster >= 2]}
    for flag, evs in halves.items():
        path = tmp_path / ("events%s.jsonl" % flag)
        lines = [e.raw for e in evs]
        lines.insert(10, b"not json")
        lines.insert(20, b'{"id": "b1", "op": "attach"}')
        path.write_bytes(b"\n".join(lines) + b"\n")
        if flag == "--amqp":   # on a terminal: the same, and a progress line
            from test_human import on_terminal
            rc, screen, _ = on_terminal(["-c", d.config_path, "send", str(path), flag],
                                        stdout_tty=False)
            assert rc == 3 and "%" in screen and " events " in screen, screen[-500:]
            # what is left on the screen: each line after its last erase
            out = subprocess.CompletedProcess([], rc, "", "\n".join(
                l.split("\x1b[K")[-1] for l in screen.replace("\r\n", "\n").split("\n")))
        else:
            out = send(d.config_path, path, flag)
        assert out.returncode == 3, out.stderr
        err = out.stderr.splitlines()
        assert err[-1] == "sent %d, invalid 2" % len(evs), err[-3:]
        assert [e.split(":")[0] for e in err if e.startswith("line ")] == ["line 11", "line 21"]
        h._expect(evs, True)
    # Kafka partitions by edge (the recommended key): a side sees its edges'
    # events in another interleaving than the file's, so thresholds may
    # cross at other events; the statistics are the same.
    h.wait_progress(1.0)
    from brokers import wait_until
    wait_until(lambda: not h.state_diff(), timeout=60, message=lambda: h.state_diff()[:5])
    assert d.stop() == 0, d.log_tail()


def test_send_needs_a_source(ctl, rdb, tmp_path):
    cfg = ctl.config([])
    path = tmp_path / "e.jsonl"
    path.write_text("")
    out = send(cfg, path, "--kafka")
    assert out.returncode == 2 and "send needs --kafka (and the kafka section)" in out.stderr
