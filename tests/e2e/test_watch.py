"""relationctl watch: a queue of its own bound to the hooks exchange with a
routing pattern; every trigger published meanwhile that matches is printed
(JSON lines with --json or when piped; a readable line each otherwise)."""

import json
import os
import pty
import signal
import subprocess
import threading
import time

from brokers import make_stream
from conftest import RELATIONCTL


def start_watch(cfg_path, *args, tty=False, out=None):
    if tty:
        master, slave = pty.openpty()
        p = subprocess.Popen([RELATIONCTL, "-c", cfg_path, "watch"] + list(args),
                             stdout=slave, stderr=subprocess.PIPE, text=False)
        os.close(slave)
        return p, master
    # a file, not a pipe: nothing reads it before the end (a full pipe would
    # stop the watch)
    p = subprocess.Popen([RELATIONCTL, "-c", cfg_path, "watch"] + list(args),
                         stdout=out, stderr=subprocess.PIPE, text=True)
    return p, None


def wait_watching(p):
    line = p.stderr.readline()
    assert "watching" in (line if isinstance(line, str) else line.decode()), line


def test_watch_prints_the_matching_triggers(harness, daemons, tmp_path):
    h = harness(amqp=True)
    d = h.daemon(daemons).start()
    files = [open(tmp_path / "all.txt", "w+"), open(tmp_path / "direct.txt", "w+")]
    everything, _ = start_watch(d.config_path, "--json", out=files[0])
    direct, _ = start_watch(d.config_path, "relation.*.direct.#", out=files[1])  # not a tty: JSON
    human, master = start_watch(d.config_path, "relation.*.*.threshold", tty=True)
    chunks = []

    def read_tty():   # as it comes: a full terminal buffer would stop the watch
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            chunks.append(chunk)
    reader = threading.Thread(target=read_tty)
    reader.start()
    for p in (everything, direct, human):
        wait_watching(p)
    events = make_stream(300, seed=111, clusters=[0, 1], tag="wt")
    h.feed_amqp(events)
    h.wait_done()
    h.hooks.drain(0.5)
    time.sleep(0.5)
    outs = []
    for p, f in zip((everything, direct), files):
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        f.seek(0)
        outs.append([json.loads(line) for line in f.read().splitlines()])
        f.close()
    human.send_signal(signal.SIGINT)
    _, err = human.communicate(timeout=30)
    assert human.returncode == 0, err
    reader.join(timeout=30)
    os.close(master)
    text = b"".join(chunks)

    published = {json.loads(body)["event_data"]["id"]: key
                 for key, _, body in h.hooks.messages}
    assert published
    got_all = [t["event_data"]["id"] for t in outs[0]]
    assert sorted(got_all) == sorted(published), ("watch missed or added triggers", len(got_all), len(published), len(set(got_all)))
    got_direct = {t["event_data"]["id"] for t in outs[1]}
    assert got_direct == {i for i, k in published.items() if k.split(".")[2] == "direct"}
    # readable lines on a terminal: one per threshold trigger, with the crossing
    lines = [line for line in text.decode().splitlines() if line.strip()]
    thresholds = [i for i, k in published.items() if k.endswith(".threshold")]
    assert len(lines) == len(thresholds) > 0, lines[:5]
    assert all(" threshold " in line and (" up " in line or " down " in line) for line in lines)
    assert d.stop() == 0, d.log_tail()
