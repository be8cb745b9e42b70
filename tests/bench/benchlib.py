"""Shared code of `make bench` (tests/bench/bench.py): the workload (relation
and events), the private servers (the end-to-end fixtures of tests/e2e, on
free loopback ports, stopped by their own pid), the hooks subscriber and the
CPU and memory probes (/proc, Redis INFO)."""

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import redis  # noqa: E402

import brokers  # noqa: E402
from brokers import KafkaMock, RabbitMQ, wait_until  # noqa: E402,F401
from redis_server import Server  # noqa: E402

BUILD = os.path.join(REPO, "build")
SUBSCRIBER = os.environ.get("BENCH_SUBSCRIBER", os.path.join(BUILD, "bench_subscriber"))
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---- The workload -----------------------------------------------------------

# The properties of both benchmark relations: a float (total, top 5), an int
# (total, top 3), a bool.
PROPERTIES = [
    {"short": "profit", "type": "float", "save_amount": True,
     "save_top": {"order": "desc", "limit": 5}},
    {"short": "purchases", "type": "int", "save_amount": True,
     "save_top": {"order": "desc", "limit": 3}},
    {"short": "approve", "type": "bool"}]

RELATION = {
    "short": "bench", "database_a": "a", "database_b": "b",
    "properties": PROPERTIES,
    "thresholds": [
        {"direction": "direct", "stat": "total", "property": "profit", "value": 1000},
        {"direction": "reverse", "stat": "count", "value": 5}],
}
PROFILES_A = 1000
PROFILES_B = 20000


class Event:
    __slots__ = ("id", "key", "raw")

    def __init__(self, body):
        self.id = body["id"]
        self.key = ("%s:%s:%s" % (body["relation"], body["profile_a"], body["profile_b"])).encode()
        self.raw = json.dumps(body, separators=(",", ":")).encode()


def _weights(rnd):
    return {"profit": round(rnd.uniform(0, 100), 2), "purchases": rnd.randint(1, 5),
            "approve": rnd.random() < 0.5}


def make_events(n, seed, tag):
    """n events of relation `bench`: 80% strengthen, attach/edit/detach 20%
    evenly; profile_a among PROFILES_A, profile_b among PROFILES_B; ids
    `<tag>-<i>` (unique); 2-decimal float, int and bool weights."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        r = rnd.random()
        op = ("strengthen" if r < 0.8 else "attach" if r < 0.8 + 0.2 / 3
              else "edit" if r < 0.8 + 0.4 / 3 else "detach")
        body = {"id": "%s-%d" % (tag, i), "op": op, "relation": "bench",
                "profile_a": "a%d" % rnd.randrange(PROFILES_A),
                "profile_b": "b%d" % rnd.randrange(PROFILES_B)}
        if op != "detach":
            body["weights"] = _weights(rnd)
        out.append(Event(body))
    return out


def memory_events(n, seed, tag):
    """For the memory figure: n attach events of distinct edges between
    profiles of the same distribution (prefixed `m`, so fresh), then n
    strengthen events of the same edges with a zero delta (they only add
    their id to the two `seen` sets)."""
    rnd = random.Random(seed)
    edges, seen = [], set()
    while len(edges) < n:
        e = (rnd.randrange(PROFILES_A), rnd.randrange(PROFILES_B))
        if e not in seen:
            seen.add(e)
            edges.append(e)
    attach = [Event({"id": "%s-a%d" % (tag, i), "op": "attach", "relation": "bench",
                     "profile_a": "ma%d" % a, "profile_b": "mb%d" % b,
                     "weights": _weights(rnd)}) for i, (a, b) in enumerate(edges)]
    zero = [Event({"id": "%s-z%d" % (tag, i), "op": "strengthen", "relation": "bench",
                   "profile_a": "ma%d" % a, "profile_b": "mb%d" % b,
                   "weights": {"profit": 0, "purchases": 0}}) for i, (a, b) in enumerate(edges)]
    return attach, zero


# The realistic relation of section 4b: managers (A) and their customers (B).
RELATION_REAL = {
    "short": "loyal", "database_a": "managers", "database_b": "customers",
    "properties": PROPERTIES,
}
# its full size: 84,000 attaches, 3,000 managers, 60,000 customers, the
# largest manager with 45,000 customers, then 30,000 mixed events
REAL_FULL = {"attaches": 84000, "managers": 3000, "customers": 60000, "largest": 45000,
             "mixed": 30000}


def pareto_degrees(n, largest, total):
    """n degrees in decreasing order, largest / (i+1)^s but at least 1 (the
    rank-size form of a Pareto law), s chosen so that they sum to `total`
    (the remainder added to the first): a few huge, most 1..3."""
    def degrees(s):
        return [max(1, int(round(largest / (i + 1) ** s))) for i in range(n)]
    lo, hi = 0.1, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if sum(degrees(mid)) > total:
            lo = mid
        else:
            hi = mid
    d = degrees(hi)
    d[0] += total - sum(d)
    if d[0] < d[1] or d[-1] < 1:
        raise ValueError("no Pareto degrees for %d sides, largest %d, %d in all" % (
            n, largest, total))
    return d


def realistic_events(attaches, seed, tag):
    """The workload of section 4b, scaled by attaches / 84,000 (see
    REAL_FULL): managers `m<i>` with Pareto-shaped numbers of customers,
    customers `c<j>` with 1..3 managers each; returns (the attach events of
    every edge in random order, then the mixed events: 60% strengthen, 25%
    edit, 15% detach of edges still attached, and the sizes)."""
    rnd = random.Random(seed)
    f = attaches / REAL_FULL["attaches"]
    n_a = max(10, int(round(REAL_FULL["managers"] * f)))
    n_b = max(10, int(round(REAL_FULL["customers"] * f)))
    largest = max(4, int(round(REAL_FULL["largest"] * f)))
    if not n_b <= attaches <= 3 * n_b or largest > n_b:
        raise ValueError("BENCH_REALISTIC_EDGES %d: too small" % attaches)
    degree = pareto_degrees(n_a, largest, attaches)
    # every customer takes 1..3 managers: 1 each, the rest spread at random
    cap = [1] * n_b
    for _ in range(attaches - n_b):
        j = rnd.randrange(n_b)
        while cap[j] == 3:
            j = rnd.randrange(n_b)
        cap[j] += 1
    avail = list(range(n_b))            # customers with a free place
    where = list(range(n_b))            # their index in avail
    edges = []
    for a, d in enumerate(degree):      # the largest first: it needs the most choice
        chosen = set()
        d = min(d, len(avail))
        while len(chosen) < d:
            chosen.add(avail[rnd.randrange(len(avail))])
        for b in chosen:
            edges.append((a, b))
            cap[b] -= 1
            if cap[b] == 0:             # swap-remove from avail
                i, last = where[b], avail[-1]
                avail[i], where[last] = last, i
                avail.pop()
    rnd.shuffle(edges)

    def ev(i, op, e, weights):
        body = {"id": "%s-%d" % (tag, i), "op": op, "relation": RELATION_REAL["short"],
                "profile_a": "m%d" % e[0], "profile_b": "c%d" % e[1]}
        if weights is not None:
            body["weights"] = weights
        return Event(body)
    attach = [ev(i, "attach", e, _weights(rnd)) for i, e in enumerate(edges)]
    live, mixed = list(edges), []
    for i in range(int(round(REAL_FULL["mixed"] * f))):
        k = rnd.randrange(len(live))
        r = rnd.random()
        if r < 0.85:
            mixed.append(ev(len(edges) + i, "strengthen" if r < 0.6 else "edit", live[k],
                            _weights(rnd)))
        else:
            mixed.append(ev(len(edges) + i, "detach", live[k], None))
            live[k] = live[-1]
            live.pop()
    sizes = {"managers": n_a, "customers": n_b, "attaches": len(edges),
             "largest_side": max(degree), "mixed": len(mixed), "live_edges": len(live)}
    return attach, mixed, sizes


def write_events(path, events):
    with open(path, "wb") as f:
        for e in events:
            f.write(e.raw + b"\n")
    return path


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return path


# ---- /proc and Redis probes --------------------------------------------------

def proc_cpu(pid):
    """utime + stime of pid (every thread), in seconds; 0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_of(pids):
    return sum(proc_cpu(p) for p in pids)


def descendants(root):
    """root and every process below it (from /proc/*/stat parent links)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def status_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmHWM, VmRSS), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def machine_busy():
    """CPU seconds the whole machine spent busy (all cores, /proc/stat: not
    idle, not iowait)."""
    total, idle = brokers.machine_cpu()
    return (total - idle) / CLK_TCK


def own_cpu():
    """CPU seconds of this process (every thread, not its children)."""
    t = os.times()
    return t.user + t.system


def redis_cpu(client):
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def redis_commandstats(client):
    """{command: (calls, usec)} of INFO commandstats."""
    out = {}
    for key, v in client.info("commandstats").items():
        name = key[len("cmdstat_"):] if key.startswith("cmdstat_") else key
        out[name] = (int(v["calls"]), int(v["usec"]))
    return out


# ---- Servers -----------------------------------------------------------------

class Rabbit(RabbitMQ):
    """The e2e fixture's private rabbitmq-server, with the Erlang schedulers'
    busy waiting off (+sbwt none): spinning schedulers would take CPU from the
    daemon and Redis on a small machine and count as RabbitMQ work."""

    def _env(self):
        env = super()._env()
        env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "+sbwt none +sbwtdcpu none +sbwtdio none"
        return env

    def pids(self):
        """The VM (beam.smp, the fixture's pid) and its children."""
        return descendants(self.proc.pid)

    def version(self):
        conn = self.connection()
        try:
            v = conn._impl.server_properties.get("version")
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            conn.close()


class Redis(Server):
    def client(self, decode=True):
        """decode=False: replies as bytes (layout 2's binary event keys, in
        the side hashes' `#w` and the `:out` fields, are not text)."""
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=decode)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port


class Subscriber:
    """bench_subscriber on one queue: a line per message, `<ns> <event id>`."""

    def __init__(self, rabbit, queue, out_path):
        self.out_path = out_path
        self.out = open(out_path, "wb")
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([SUBSCRIBER, "127.0.0.1", str(rabbit.port), queue],
                                     stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     preexec_fn=brokers.die_with_parent)

        def ready():
            if self.proc.poll() is not None:
                self.err.seek(0)
                raise brokers.Abort("bench_subscriber exited: %s" % self.err.read().decode())
            self.err.seek(0)
            return b"consuming" in self.err.read()
        wait_until(ready, timeout=20, message="bench_subscriber ready")

    def count(self):
        """Messages received so far (as flushed: within 10 ms of a pause)."""
        with open(self.out_path, "rb") as f:
            return f.read().count(b"\n")

    def wait_quiet(self, quiet=0.5, timeout=120):
        """Waits until no message arrived for `quiet` s; returns the count."""
        last, since = -1, time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            size = os.path.getsize(self.out_path)
            if size != last:
                last, since = size, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.05)
        return self.count()

    def records(self, skip=0):
        """(ns, event id) per message, after the first `skip`."""
        out = []
        with open(self.out_path, "rb") as f:
            for i, line in enumerate(f):
                if i < skip:
                    continue
                ns, _, eid = line.rstrip(b"\n").partition(b" ")
                out.append((int(ns), eid.decode()))
        return out

    def stop(self):
        if self.proc.poll() is None:
            brokers._signal_and_wait(self.proc.pid, signal.SIGTERM, 10, popen=self.proc)
        self.proc.wait()
        self.out.close()
        self.err.close()


class Stack:
    """Everything the benchmark started, stopped in reverse order (each by its
    own pid) by close(), whatever happened."""

    def __init__(self):
        self.stoppers = []

    def add(self, thing, stop=None):
        self.stoppers.append(stop or thing.stop)
        return thing

    def close(self):
        errors = []
        while self.stoppers:
            stop = self.stoppers.pop()
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - stop the rest anyway
                errors.append(repr(e))
        return errors


def versions():
    out = {}
    try:
        out["redis-server"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                             text=True).stdout.split("v=")[1].split()[0]
    except (OSError, IndexError):
        out["redis-server"] = "?"
    try:
        import confluent_kafka
        out["librdkafka"] = confluent_kafka.libversion()[0]
    except Exception:  # noqa: BLE001
        out["librdkafka"] = "?"
    return out
