#!/usr/bin/python3
"""make demo: a referral programme, told step by step.

relationd runs with config/demo.json (the `referrals` relation: referrers ->
customers) on a private stack: a redis-server, a rabbitmq-server and a
Kafka-protocol broker (kafka_mock), on free loopback ports, in one temporary
directory. `relationctl watch` prints each trigger as it is published, and
a second hook, `partner`, POSTs them as signed JSON batches to a receiver in
this process (brokers.HttpReceiver), which checks each signature and prints
one line per step. The
events of config/demo-events.jsonl are sent one by one, each after a line of
narration (STORY below), with `relationctl send`: every event of one edge
through one source (Ben's to Kafka, Chloe's to RabbitMQ), since order holds per
Kafka partition and per queue, never across the two; one of them is bad on
purpose and is published raw to the queue, so that relationd dead-letters it.
Then `relationctl stats --table` shows what is kept.

Every process the demo starts is recorded with its pid; at the end, on an
error, on Ctrl-C (SIGINT) or SIGTERM, each is stopped by its pid and the
temporary directory is removed. The second line names that directory,
the third one the pids."""

import base64
import json
import os
import pty
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))

import pika  # noqa: E402

from brokers import (Daemon, HttpReceiver, KafkaMock, RabbitMQ, die_with_parent,  # noqa: E402
                     pid_alive, verify_signature)
from redis_server import Server  # noqa: E402

RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(TOP, "build", "relationctl"))
CONFIG = os.path.join(TOP, "config", "demo.json")
EVENTS = os.path.join(TOP, "config", "demo-events.jsonl")
STEP_TIMEOUT = 30

# event id -> (how it is sent, triggers it yields, narration); raw goes to the
# queue, so an edge's events are all "kafka" or all "amqp"/"raw"
STORY = {
    "ref-1": ("kafka", 2, "Anna refers Ben (attach, Kafka): an attach trigger on each side"),
    "ref-2": ("amqp", 2, "Anna refers Chloe (attach, RabbitMQ)"),
    "ref-3": ("kafka", 2, "Ben buys for 20 (strengthen, Kafka): the edge's weights grow"),
    "ref-4": ("amqp", 2, "Chloe buys for 45.50 (strengthen, RabbitMQ): Anna's revenue is 65.50"),
    "ref-5": ("raw", 0, "Chloe buys for 74.50; the shop sends revenue as text, unchecked (RabbitMQ)"),
    "ref-6": ("amqp", 3, "Sent again, right (RabbitMQ): Anna's revenue is 140, "
                         "past \"gold referrer\" (100)"),
    "ref-7": ("kafka", 2, "Ben leaves (detach, Kafka): his edge goes, and his part of Anna's "
                          "stats"),
}
TABLES = [("referrals", "direct", "anna"), ("referrals", "reverse", "ben")]
SOURCE = {"kafka": "kafka", "amqp": "amqp", "raw": "amqp"}


def one_source_per_edge(events):
    """Raises unless every event of an edge goes through the same source: the
    two sources are not ordered with each other."""
    seen = {}
    for ev in events:
        edge = (ev["relation"], ev["profile_a"], ev["profile_b"])
        how = SOURCE[STORY[ev["id"]][0]]
        if seen.setdefault(edge, how) != how:
            raise RuntimeError("%s: edge %s sent through both sources" % (ev["id"], edge))


# ---- every process started, stopped by its pid --------------------------------

class Interrupted(BaseException):
    """SIGINT or SIGTERM: a BaseException, as KeyboardInterrupt, so that no
    `except Exception` on the way (waits that retry) swallows it."""


STARTED = []          # every Popen of this process, helpers' included
_shield = 0           # > 0 while a process is being started
_pending = None       # a signal that came meanwhile


def on_signal(sig, frame):
    global _pending
    if _shield:
        _pending = sig          # raised once the process is recorded
    else:
        raise Interrupted(sig)


class TrackedPopen(subprocess.Popen):
    """subprocess.Popen recording each process (so that Ctrl-C in the middle of
    a start leaves no process unknown) and ending it with the demo should the
    demo itself be killed (PR_SET_PDEATHSIG, unless a preexec_fn is given)."""

    def __init__(self, *args, **kwargs):
        global _shield, _pending
        kwargs.setdefault("preexec_fn", die_with_parent)
        _shield += 1
        try:
            super().__init__(*args, **kwargs)
            STARTED.append(self)
        finally:
            _shield -= 1
        if _pending and not _shield:
            sig, _pending = _pending, None
            raise Interrupted(sig)


subprocess.Popen = TrackedPopen     # the helpers of tests/e2e use it too


def stop_pid(pid, sig=signal.SIGTERM, timeout=10):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def stop_rabbit(rabbit):
    """A VM still booting ignores SIGTERM: SIGKILL after 5 s, not the
    helper's 60 (stop_server also ends whatever is left in its process
    group)."""
    rabbit.stop_server(timeout=5)
    rabbit.stop()


# ---- the pieces -------------------------------------------------------------

class Watch:
    """`relationctl watch` on a pseudo-terminal, so that it prints its readable
    lines; a thread hands them over one by one."""

    def __init__(self, config_path):
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen([RELATIONCTL, "-c", config_path, "watch"],
                                     stdin=subprocess.DEVNULL, stdout=slave,
                                     stderr=subprocess.PIPE, text=True)
        os.close(slave)
        self.lines = queue.Queue()
        self.seen = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    self.lines.put(line.decode(errors="replace").rstrip("\r"))

    def wait_watching(self):
        line = self.proc.stderr.readline().strip()
        if "watching" not in line:
            raise RuntimeError("relationctl watch did not start: %s" % line)
        return line

    def show(self, n, timeout=STEP_TIMEOUT):
        """Prints the next n triggers as they come."""
        deadline = time.monotonic() + timeout
        for _ in range(n):
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise RuntimeError("triggers did not arrive within %d s" % timeout) from None
            self.seen += 1
            print("   " + line)

    def stop(self):
        if self.proc.poll() is None:
            stop_pid(self.proc.pid, signal.SIGINT)
        self.proc.wait()
        os.close(self.master)


class Partner:
    """The http hook's receiver: the batches relationd POSTs, each signature
    checked as a receiver of Standard Webhooks does."""

    def __init__(self):
        self.secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
        self.receiver = HttpReceiver()
        self.seen = 0           # requests shown
        self.triggers = 0       # triggers expected so far

    def show(self, n, timeout=STEP_TIMEOUT):
        """Waits for the step's n triggers, prints one line for them."""
        self.triggers += n
        deadline = time.monotonic() + timeout
        while len(self.receiver.delivered) < self.triggers:
            if time.monotonic() > deadline:
                raise RuntimeError("the partner's http endpoint did not get the triggers "
                                   "within %d s" % timeout)
            time.sleep(0.02)
        new = self.receiver.requests[self.seen:]
        self.seen += len(new)
        if not all(verify_signature(self.secret, r.headers, r.body) for r in new):
            raise RuntimeError("a batch whose signature does not verify")
        got = [t for r in new for t in json.loads(r.body)]
        print("   http partner: %d signed batch%s, signature ok: %s" % (
            len(new), "" if len(new) == 1 else "es", ", ".join(
                "%s %s->%s" % (t["event_data"]["kind"], t["profile_id"],
                               t["event_data"]["counterpart"]["profile_id"]) for t in got)))


def ctl(config_path, *args, stdin=None):
    """relationctl -c CONFIG ARGS...; its standard output (an error if it fails)."""
    p = subprocess.run([RELATIONCTL, "-c", config_path] + list(args), input=stdin,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("relationctl %s exited with %d: %s" % (
            " ".join(args), p.returncode, (p.stderr or p.stdout).strip().split("\n")[0]))
    return p.stdout


def dead_letter(ch, queue_name, timeout=STEP_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue_name, auto_ack=True)
        if method is not None:
            return props.headers.get("x-relationd-reason")
        time.sleep(0.1)
    raise RuntimeError("no dead letter within %d s" % timeout)


# ---- the demo -----------------------------------------------------------------

def story(tmp, started):
    with open(EVENTS) as f:
        events = [line.strip() for line in f if line.strip()]
    one_source_per_edge([json.loads(line) for line in events])
    redis = Server()
    started.append(redis.stop)
    redis.start()
    rabbit = RabbitMQ()
    started.append(lambda: stop_rabbit(rabbit))
    rabbit.start()
    kafka = KafkaMock(["relation-events:2", "relation-events.dlq"])
    started.append(kafka.stop)
    kafka.start()

    partner = Partner()
    started.append(partner.receiver.stop)

    # config/demo.json as it is: the ports come from the environment (${NAME})
    os.environ.update(DEMO_REDIS_PORT=str(redis.port), DEMO_KAFKA_BROKERS=kafka.bootstrap,
                      DEMO_AMQP_PORT=str(rabbit.port), DEMO_AMQP_PASSWORD="guest",
                      DEMO_HTTP_PORT=str(partner.receiver.port),
                      DEMO_WEBHOOK_SECRET=partner.secret)
    with open(CONFIG) as f:
        daemon = Daemon(tmp, json.load(f))
    cfg = daemon.config_path

    # A queue of the demo's on the dead-letter exchange, declared as relationd does.
    conn = rabbit.connection()
    ch = conn.channel()
    ch.exchange_declare("relation-events.dlx", "fanout", durable=True)
    dlq = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(dlq, "relation-events.dlx")

    started.append(lambda: daemon.stop(timeout=15) if daemon.running() else None)
    daemon.start()
    daemon.wait_log("msg=\"ready")        # connected: Redis, RabbitMQ, Kafka
    daemon.wait_log("assigned")           # in the Kafka consumer group

    watch = Watch(cfg)
    started.append(watch.stop)
    watching = watch.wait_watching()
    print("pids: redis %d, rabbitmq %d, epmd %d, kafka %d, relationd %d, watch %d" % (
        redis.proc.pid, rabbit.proc.pid, rabbit.epmd.pid, kafka.proc.pid, daemon.proc.pid,
        watch.proc.pid))
    print("relationctl watch: %s" % watching)
    print("Each edge's events through one source (Ben's: Kafka, Chloe's: RabbitMQ) with "
          "`relationctl send`; each trigger as the watch prints it, then as the partner's "
          "http endpoint got it:")

    via = {"kafka": "--kafka", "amqp": "--amqp"}
    for n, line in enumerate(events, 1):
        how, triggers, text = STORY[json.loads(line)["id"]]
        if sys.stdout.isatty():
            time.sleep(0.6)             # a pace a person follows
        print("%d. %s" % (n, text))
        if how == "raw":
            # what a producer that skips the check sends: relationd refuses it
            ch.basic_publish("", "relation-events", line, pika.BasicProperties(delivery_mode=2))
            print("   dead letter on relation-events.dlx: %s" % dead_letter(ch, dlq))
        else:
            ctl(cfg, "send", "-", via[how], stdin=line + "\n")
        watch.show(triggers)
        if triggers:
            partner.show(triggers)
    conn.close()

    print("Statistics now:")
    for relation, side, profile in TABLES:
        print("$ relationctl stats %s %s %s --table" % (relation, side, profile))
        for row in ctl(cfg, "stats", relation, side, profile, "--table").splitlines():
            print(("   " + row).rstrip())
    return len(events), watch.seen


def main():
    sys.stdout.reconfigure(line_buffering=True)
    started = []      # how to stop each piece, in start order
    tmp, status, last = None, 0, None
    try:
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        tmp = tempfile.mkdtemp(prefix="relationd-demo-")
        os.chmod(tmp, 0o755)            # the rabbitmq user reads its directory in it
        tempfile.tempdir = tmp          # the servers' directories go in it too
        os.environ["RELATIOND_DEMO_DIR"] = tmp
        print("relationd demo, a referral programme: config/demo.json, config/demo-events.jsonl")
        print("starting Redis, RabbitMQ, Kafka, relationd in %s" % tmp)
        events, triggers = story(tmp, started)
        last = "done: %d events, %d triggers, 1 dead letter; everything stopped" % (
            events, triggers)
    except Interrupted:
        print("interrupted: stopping everything the demo started")
        status, last = 130, "interrupted: everything stopped"
    except Exception as e:      # noqa: BLE001 - reported, then everything is stopped
        print("demo failed: %s" % e)
        status, last = 1, "demo failed: everything stopped"
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for stop in reversed(started):
            try:
                stop()
            except Exception as e:    # noqa: BLE001 - the others are stopped all the same
                print("stopping: %s" % e)
        for p in STARTED:               # anything the helpers left
            if p.poll() is None:
                stop_pid(p.pid)
                p.wait()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(last)
    return status


if __name__ == "__main__":
    sys.exit(main())
