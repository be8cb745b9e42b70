"""relationd and systemd: READY=1, RELOADING=1 (with MONOTONIC_USEC) then
READY=1 around a SIGHUP, STOPPING=1, and WATCHDOG=1 pings every half
WATCHDOG_USEC only while every source thread's loop turns: a thread stuck in
a Redis call that does not return (Redis frozen, a timeout of an hour) stops
the pings; they resume once it returns."""

import os
import signal
import socket
import time


from redis_server import Server

from brokers import make_stream


class NotifySocket:
    """The socket systemd would listen on (NOTIFY_SOCKET)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.messages = []   # (monotonic time, {key: value})

    def drain(self, seconds=0.0):
        end = time.monotonic() + seconds
        while True:
            try:
                data = self.sock.recv(4096).decode()
                fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
                self.messages.append((time.monotonic(), fields))
            except socket.timeout:
                if time.monotonic() >= end:
                    return

    def wait_for(self, key, value=None, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.drain(0.1)
            for t, f in self.messages:
                if key in f and (value is None or f[key] == value):
                    return t, f
        raise AssertionError("no %s=%s; got %r" % (key, value, self.messages))

    def pings_since(self, since):
        self.drain(0.1)
        return [t for t, f in self.messages if f.get("WATCHDOG") == "1" and t >= since]

    def close(self):
        self.sock.close()


def test_notify_reload_stop_and_a_watchdog_that_sees_a_stuck_thread(harness, daemons, rdb,
                                                                    redis_proc, tmp_path,
                                                                    monkeypatch):
    sock = NotifySocket(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", sock.path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")   # pings every second
    server = Server()
    server.start()
    try:
        h = harness(kafka=False, amqp=True, redis_server=server)
        cfg = dict(h.config, redis=dict(h.config["redis"], timeout_ms=3600000))
        d = h.daemon(daemons, config=cfg).start()
        sock.wait_for("READY", "1")
        sock.drain()
        t0 = time.monotonic()
        time.sleep(3.2)
        assert len(sock.pings_since(t0)) >= 2, sock.messages

        # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again
        sock.messages.clear()
        d.sighup()
        _, f = sock.wait_for("RELOADING", "1")
        assert int(f["MONOTONIC_USEC"]) > 0
        sock.wait_for("READY", "1")

        # the source thread stuck in a Redis call: the pings stop
        events = make_stream(40, seed=93, clusters=[0], tag="wd")
        h.feed_amqp(events[:20])
        h.wait_done()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            h.feed_amqp(events[20:])
            time.sleep(2.5)         # the thread is in its read by now
            sock.drain()            # (a message is timed when it is read)
            t1 = time.monotonic()
            time.sleep(3)
            assert sock.pings_since(t1) == [], "pinged while the source thread was stuck"
            assert "made no progress" in d.current_log(), d.log_tail()
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        h.wait_done()
        sock.drain()
        t2 = time.monotonic()
        time.sleep(2.5)
        assert sock.pings_since(t2), "the pings did not resume"
        h.check()

        sock.messages.clear()
        assert d.stop() == 0, d.log_tail()
        sock.wait_for("STOPPING", "1", timeout=5)
    finally:
        server.stop()
        sock.close()


def test_ready_waits_for_redis(harness, daemons, rdb, redis_proc, tmp_path, monkeypatch):
    """Started while Redis is down: STATUS= says what is awaited and READY=1
    waits; Redis up, READY=1 comes (and the log says ready)."""
    sock = NotifySocket(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", sock.path)
    server = Server()
    try:
        h = harness(kafka=False, amqp=True, redis_server=server)
        d = h.daemon(daemons).start()
        _, f = sock.wait_for("STATUS")
        sock.drain(2)
        assert not [m for _, m in sock.messages if m.get("READY") == "1"], sock.messages
        assert any("waiting for amqp" in m.get("STATUS", "") for _, m in sock.messages)
        assert "level=info component=main msg=\"ready" not in d.current_log()
        server.start()
        sock.wait_for("READY", "1", timeout=30)
        d.wait_log("ready: ")
        h.feed_amqp(make_stream(30, seed=94, clusters=[0], tag="rd"))
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        server.stop()
        sock.close()


def test_status_sums_up_events_and_the_kafka_lag(harness, daemons, tmp_path, monkeypatch):
    """STATUS= once ready: the events taken, their rate and the Kafka lag."""
    sock = NotifySocket(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", sock.path)
    h = harness(kafka=True)
    cfg = dict(h.config)
    cfg["kafka"] = dict(cfg["kafka"], properties=dict(cfg["kafka"]["properties"],
                                                      **{"statistics.interval.ms": "300"}))
    d = h.daemon(daemons, config=cfg).start()
    try:
        sock.wait_for("READY", "1")
        events = make_stream(60, seed=97, clusters=[0, 1], tag="st")
        h.feed_kafka(events)
        h.wait_done()
        want = "ready: %d events, " % len(events)
        end = time.monotonic() + 20
        status = []
        while time.monotonic() < end:
            sock.drain(0.2)
            status = [f["STATUS"] for _, f in sock.messages if "STATUS" in f]
            if status and status[-1].startswith(want) and status[-1].endswith(", kafka lag 0"):
                break
        else:
            raise AssertionError("STATUS=%r, not %r...kafka lag 0" % (status[-3:], want))
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        sock.close()
