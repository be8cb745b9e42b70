"""make bench: every performance figure of relationd in one run and one table
(also written as JSON to build/bench.json, and as a chart to build/bench.svg).

1. engine alone: `relationctl apply -` into a private redis-server: events/s,
   Redis CPU per event, the top Redis commands (INFO commandstats); also
   events/s with engine.batch_size 1 (BENCH_EVENTS/10 events) for the gain of
   pipelining;
   (1c.) with BENCH_CALLGRIND=1 (off by default: slow), a second
   redis-server run by `valgrind --tool=callgrind`: 500 of those events
   applied to warm up, the counters zeroed (callgrind_control -z),
   BENCH_CALLGRIND_REDIS_EVENTS (3,000) of the next events applied, the
   counters dumped (callgrind_control -d): Redis instructions per event;
2. the daemon draining a Kafka backlog (kafka_mock, a topic of 8 partitions
   filled beforehand; relationd with engine.batch_size 256; the hooks queue
   consumed meanwhile by bench_subscriber): events/s, CPU per event of the
   daemon, Redis and RabbitMQ, the daemon's peak RSS and the share of the
   machine's CPU those three used (drain rate / (cores / their CPU per
   event)). The window runs from the first committed offset seen to every
   partition committed to its end (the daemon commits once the triggers are
   in the hooks' backlogs); starting the daemon and joining the group are
   outside it. Then each drain again with 4 hooks (no filter, each gets
   every trigger: that exchange, a queue consumed by a second
   bench_subscriber, a topic on the kafka_mock, http to a local receiver
   answering 200 "OK"; not the baseline, whose hooks are one object): the
   drain rate and its share of the engine-alone rate (relationctl apply of the
   same events run again just before each drain; the median of the shares), the whole
   machine's busy share over the window (/proc/stat: every process, ours
   and others), the hooks' catch-up (from the last commit until the last
   trigger reached the slowest hook: the streams empty and every receiver
   quiet for 0.3 s since; the baseline publishes before committing: its
   receiver quiet for 0.5 s), and the CPU per event of the daemon and of Redis from
   the daemon's start until every hook delivered everything;
   (6.) relationctl segment over BENCH_SEGMENT_EDGES edges (1,000,000;
   100,000 with BENCH_QUICK; 0 skips it): edges read per second;
   (7.) relationctl rebuild of one side of BENCH_REBUILD_EDGES edges
   (200,000; 50,000 with BENCH_QUICK; 0 skips it), by each column: the
   largest single rebuild call (Redis's SLOWLOG, every command logged during
   the rebuild: the time Redis spent in it, when no other client is served),
   the number of calls and their sum, and the rebuild's wall time;
   (5.) the engine alone on a Redis Cluster of 1 and of 3 primaries
   (BENCH_CLUSTER=0 skips it): events/s, Redis CPU per event over every
   node, the busiest primary's share of the calls;
   After each drain, RabbitMQ alone: as many messages as the drain's
   triggers (bodies: triggers of the same events) published by bench_publish
   with relationd's own publisher (batches of 512, 8 in flight, confirms) to
   a queue consumed as in the drain; messages/s and RabbitMQ's CPU per
   message, and the drain rate as a share of the rate RabbitMQ alone allows
   (messages/s / triggers per event): near 1, RabbitMQ bounds the drain;
3. latency: the same daemon, caught up, fed at a steady rate (1000 events/s,
   20 s): produce() of each event to the first trigger of that event received
   by the subscriber (CLOCK_MONOTONIC in both processes);
4. Redis memory: used_memory after attach events of distinct edges between
   fresh profiles (per edge side), then after zero-delta strengthen events of
   those edges (which only remember their id: per event id).
   (4b.) a realistic relation (benchlib.RELATION_REAL, benchlib.
   realistic_events): 3,000 managers with Pareto-shaped numbers of customers
   (the largest 45,000), 60,000 customers of 1..3 managers; 84,000 attaches,
   then 30,000 strengthen/edit/detach of attached edges, into a flushed
   Redis. used_memory after less before per edge side (2 x the live edges);
   by side size (1..3, 4..128, >128 edges) the MEMORY USAGE (SAMPLES 0) of
   every key under the sides' hash tags per edge side; the share of side
   hashes in listpack encoding. BENCH_REALISTIC_EDGES sets the attaches (every
   other size scales with them; a tenth with BENCH_QUICK; 0 skips it).

Columns: "current" is the current build with redis.engine function;
"current (module)" the same binaries with redis.engine module, the Redis
module build/relationd.so (the relationd.so beside RELATIOND) loaded by
every redis-server the benchmark starts (--loadmodule; the cluster of
section 5 excepted); it is measured in sections 1, 1c, 2 (and 2b, 2c, 3,
which come with each drain), 4, 4b and 7, and left out, with a log line
saying why, when that file is missing or BENCH_MODULE=0.
BASELINE_RELATIOND / BASELINE_RELATIONCTL (one is enough when the other sits
beside it) measure a second pair of binaries in the same run, interleaved
with the current ones (run order alternates every round), in a "baseline"
column, with no redis.engine key in its configurations (a release before
the key refuses it), and the ratios current/baseline and module/baseline. Figures are medians over the rounds;
every sample is in the JSON; a section no column measured is left out of the
table. The binaries are copied first, so a rebuild
during the run changes nothing. The CPU that other processes used during the
measures is shown (from /proc/stat): on a busy machine rates and the CPU
share mean little, CPU per event a little more.

Choices that shape the figures: the hooks queue is durable (persistent
triggers are written by RabbitMQ, as for a real consumer's queue); RabbitMQ
runs with +sbwt none (no busy-waiting schedulers counted as its work or
taking CPU from the others); the daemon's kafka.properties add
fetch.wait.max.ms=5, because the mock broker holds a fetch that found no data
for the whole fetch.wait.max.ms even when data arrives meanwhile (a real
broker answers at once); engine.batch_ms is the daemon's default.

Environment: RELATIOND, RELATIONCTL, KAFKA_MOCK, BENCH_SUBSCRIBER, BENCH_PUBLISHER
(binaries);
BENCH_MODULE (0: no module column), BENCH_EVENTS (default 100000), BENCH_QUICK=1 (10000 events, 5 s of latency),
BENCH_ROUNDS (apply rounds, default 2; 1 with BENCH_QUICK), BENCH_DRAIN_ROUNDS
(default 1; the latency is measured in the last), BENCH_LATENCY_S (20),
BENCH_RATE (1000), BENCH_BATCH_MS (engine.batch_ms; unset: the daemon's
default), BENCH_DEFER_MS (every hook's defer_ms in the drains; unset: the
daemon's default), BENCH_FETCH_WAIT_MS (5), BENCH_HOOKS_DURABLE (1), BENCH_PERF (a perf record of the
daemon per drain, in files named from it), BENCH_PERF_EVENTS (its events, default
cpu-clock; e.g. cpu-clock,sched:sched_switch), BENCH_CALLGRIND_EVENTS (the
events of the drain under callgrind, default 4000; 0 skips it), BENCH_CALLGRIND
(1: section 1c), BENCH_CALLGRIND_REDIS_EVENTS (3000), BENCH_CALLGRIND_KEEP (a
directory: 1c's dumps kept there, redis-callgrind.COLUMN.out), BENCH_REALISTIC_EDGES
(section 4b's attaches: 84000; 8400 with BENCH_QUICK; 0 skips it), BENCH_JSON
(default build/bench.json), BENCH_SVG (default BENCH_JSON with .svg).
"""

import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import redis
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib as B  # noqa: E402
import chart  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000" if QUICK else "100000"))
APPLY_ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if QUICK else "2"))
DRAIN_ROUNDS = int(os.environ.get("BENCH_DRAIN_ROUNDS", "1"))
LATENCY_S = float(os.environ.get("BENCH_LATENCY_S", "5" if QUICK else "20"))
RATE = int(os.environ.get("BENCH_RATE", "1000"))
BATCH_MS = os.environ.get("BENCH_BATCH_MS")
# every hook's defer_ms in the drains (unset: the daemon's default)
DEFER_MS = int(os.environ["BENCH_DEFER_MS"]) if os.environ.get("BENCH_DEFER_MS") else None
BATCH1_EVENTS = max(1000, EVENTS // 10)
MEM_EVENTS = max(1000, EVENTS // 2)
PARTITIONS = 8
SEGMENT_EDGES = int(os.environ.get("BENCH_SEGMENT_EDGES", "100000" if QUICK else "1000000"))
REBUILD_EDGES = int(os.environ.get("BENCH_REBUILD_EDGES", "50000" if QUICK else "200000"))
# section 4b: the attaches of the realistic relation (84,000 full size, a
# tenth with BENCH_QUICK; 0 skips it); every other size scales with them
REAL_EDGES = int(os.environ.get("BENCH_REALISTIC_EDGES",
                                str(B.REAL_FULL["attaches"] // (10 if QUICK else 1))))
# section 1c: Redis under callgrind (off by default: slow), over
# BENCH_CALLGRIND_REDIS_EVENTS of the section-1 events after 500 to warm up
REDIS_CALLGRIND = os.environ.get("BENCH_CALLGRIND", "") not in ("", "0")
REDIS_CG_WARM = 500
REDIS_CG_EVENTS = int(os.environ.get("BENCH_CALLGRIND_REDIS_EVENTS", "3000"))
JSON_OUT = os.environ.get("BENCH_JSON", os.path.join(B.BUILD, "bench.json"))
CORES = os.cpu_count()

# The mock broker answers a fetch that finds no data only after
# fetch.wait.max.ms (default 500), even when data arrives meanwhile (a real
# broker answers at once): a short wait keeps that out of the latency.
KAFKA_PROPERTIES = dict(B.brokers.KAFKA_PROPERTIES,
                        **{"fetch.wait.max.ms": os.environ.get("BENCH_FETCH_WAIT_MS", "5")})
# BENCH_PERF=FILE: `perf record -g` of the daemon during each drain (into
# FILE.<column>.<run>; every column is slowed alike)
PERF_OUT = os.environ.get("BENCH_PERF")
PUBLISHER = os.environ.get("BENCH_PUBLISHER", os.path.join(B.BUILD, "bench_publish"))
PERF_EVENTS = os.environ.get("BENCH_PERF_EVENTS", "cpu-clock")
# a drain under `valgrind --tool=callgrind`: the daemon's instructions, the
# same on a busy machine as on an idle one
CALLGRIND_EVENTS = int(os.environ.get("BENCH_CALLGRIND_EVENTS", "4000"))
HOOKS_DURABLE = os.environ.get("BENCH_HOOKS_DURABLE", "1") not in ("", "0")
COMMAND_NOISE = {"info", "config|resetstat", "config", "flushall", "ping", "hello",
                 "client|setinfo", "scan", "memory|usage", "zcard", "command|docs",
                 "command"}


class BenchError(Exception):
    pass


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def binaries():
    cur = {"relationd": os.environ.get("RELATIOND", os.path.join(B.BUILD, "relationd")),
           "relationctl": os.environ.get("RELATIONCTL", os.path.join(B.BUILD, "relationctl"))}
    out = {"current": cur}
    so = os.path.join(os.path.dirname(cur["relationd"]), "relationd.so")
    if os.environ.get("BENCH_MODULE", "1") in ("", "0"):
        log("no module column: BENCH_MODULE=0")
    elif not os.path.isfile(so):
        log("no module column: %s is missing (make builds it); the Redis servers load no "
            "module" % so)
    else:
        out["module"] = dict(cur, module=so)
    bd, bc = os.environ.get("BASELINE_RELATIOND"), os.environ.get("BASELINE_RELATIONCTL")
    if bd or bc:
        bd = bd or os.path.join(os.path.dirname(bc), "relationd")
        bc = bc or os.path.join(os.path.dirname(bd), "relationctl")
        out["baseline"] = {"relationd": bd, "relationctl": bc}
    for col in out.values():
        for name, path in col.items():
            if name != "module" and not os.access(path, os.X_OK):
                raise BenchError("%s is not an executable" % path)
    for path in (B.brokers.KAFKA_MOCK, B.SUBSCRIBER):
        if not os.access(path, os.X_OK):
            raise BenchError("%s is missing (make bench builds it)" % path)
    return out


# each column's redis.engine (none for the baseline: a release before the key
# refuses it); the module column runs the current build's binaries
ENGINES = {"current": "function", "module": "module"}
COLUMN_NAMES = {"current": "current", "module": "current (module)", "baseline": "baseline"}
RATIO_NAMES = {"current": "cur/base", "module": "mod/base"}
# the module file every redis-server the benchmark starts loads (the copy
# snapshot_binaries made), None without a module column
MODULE = None


def redis_cfg(col, url, **more):
    """The `redis` section of column col's configurations: url, more, and the
    column's redis.engine (none for the baseline)."""
    out = dict({"url": url}, **more)
    if ENGINES.get(col):
        out["engine"] = ENGINES[col]
    return out


def redis_server(**kw):
    """A private redis-server (benchlib.Redis) that loads MODULE if any."""
    args = ["--loadmodule", MODULE] if MODULE else []
    return B.Redis(args=args, **kw)


def snapshot_binaries(bins, tmp):
    """Copies every binary into tmp and runs the copies, so that a rebuild
    during the run (make in the same tree) cannot change what is measured."""
    global MODULE
    run = {}
    for col, b in bins.items():
        d = os.path.join(tmp, "bin-" + col)
        os.makedirs(d)
        run[col] = {}
        for name, path in b.items():
            run[col][name] = shutil.copy2(path, os.path.join(
                d, "relationd.so" if name == "module" else name))
        MODULE = run[col].get("module", MODULE)
    d = os.path.join(tmp, "bin-tools")
    os.makedirs(d)
    B.brokers.KAFKA_MOCK = shutil.copy2(B.brokers.KAFKA_MOCK, os.path.join(d, "kafka_mock"))
    B.SUBSCRIBER = shutil.copy2(B.SUBSCRIBER, os.path.join(d, "bench_subscriber"))
    return run


def orders(cols, rounds):
    """Run order per round: alternating, so that drift hits both columns."""
    return [cols if r % 2 == 0 else cols[::-1] for r in range(rounds)]


# ---- 1. the engine alone ----------------------------------------------------

def ctl_config(tmp, name, col, rds, batch_size, prefix="rel:", relation=None,
               timeout_ms=30000):
    return B.write_json(os.path.join(tmp, name + ".json"), {
        "redis": redis_cfg(col, rds.url, key_prefix=prefix, timeout_ms=timeout_ms),
        "engine": {"batch_size": batch_size}, "relations": [relation or B.RELATION]})


def run_ctl(ctl, cfg, events_path, stdout=subprocess.DEVNULL):
    """relationctl -c cfg apply - < events_path; returns (seconds, the summary
    counts, CPU seconds of relationctl, stdout bytes or None)."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(events_path, "rb") as fin:
        p = subprocess.run([ctl, "-c", cfg, "apply", "-"], stdin=fin, stdout=stdout,
                           stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise BenchError("%s apply exited with %d:\n%s" % (ctl, p.returncode, err[-2000:]))
    summary = {}
    last = err.strip().splitlines()[-1] if err.strip() else ""
    for part in last.split(","):
        words = part.split()
        if len(words) == 2 and words[1].isdigit():
            summary[words[0]] = int(words[1])
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return took, summary, cpu, p.stdout


def apply_run(col, bins, tmp, rds, path, n, batch_size):
    client = rds.client()
    cfg = ctl_config(tmp, "ctl-%s-%d" % (col, batch_size), col, rds, batch_size)
    client.flushall()
    client.config_resetstat()
    cpu0, busy0, self0 = B.redis_cpu(client), B.machine_busy(), B.own_cpu()
    took, summary, ctl_cpu, _ = run_ctl(bins["relationctl"], cfg, path)
    cpu1, busy1, self1 = B.redis_cpu(client), B.machine_busy(), B.own_cpu()
    others = (busy1 - busy0) - (cpu1 - cpu0) - ctl_cpu - (self1 - self0)
    stats = B.redis_commandstats(client)
    client.close()
    if summary.get("applied") != n:
        raise BenchError("%s: relationctl applied %r of %d events" % (col, summary, n))
    return {"events_s": n / took, "redis_cpu_us": (cpu1 - cpu0) / n * 1e6,
            "ctl_cpu_us": ctl_cpu / n * 1e6, "seconds": took, "other_cores": others / took,
            "commandstats": {k: {"calls_per_event": c / n, "usec_per_call": u / c if c else 0,
                                 "usec_per_event": u / n}
                             for k, (c, u) in stats.items() if k not in COMMAND_NOISE}}


# ---- 5. the engine on a Redis Cluster ---------------------------------------

def cluster_run(bins, tmp, path, n, primaries):
    """relationctl apply into a fresh cluster of `primaries` primaries (one:
    every slot added by hand): events/s, Redis CPU per event (every node),
    and the share of the apply calls the busiest primary served."""
    from redis_cluster import Cluster
    c = Cluster(primaries=primaries)
    try:
        c.start()
        nodes = [redis.Redis(port=x.port) for x in c.nodes]
        for x in nodes:
            x.config_resetstat()
        cpu0 = sum(B.redis_cpu(x) for x in nodes)
        cfg = B.write_json(os.path.join(tmp, "ctl-cluster-%d.json" % primaries), {
            "redis": redis_cfg("current", c.url, key_prefix="rel:", timeout_ms=30000),
            "engine": {"batch_size": 256}, "relations": [B.RELATION]})
        took, summary, ctl_cpu, _ = run_ctl(bins["relationctl"], cfg, path)
        cpu1 = sum(B.redis_cpu(x) for x in nodes)
        calls = [B.redis_commandstats(x).get("fcall", (0, 0))[0] for x in nodes]
        for x in nodes:
            x.close()
        if summary.get("applied") != n:
            raise BenchError("cluster of %d: relationctl applied %r of %d events" % (
                primaries, summary, n))
        return {"events_s": n / took, "redis_cpu_us": (cpu1 - cpu0) / n * 1e6,
                "ctl_cpu_us": ctl_cpu / n * 1e6, "calls": calls,
                "max_share": max(calls) / max(1, sum(calls))}
    finally:
        c.stop()


# ---- 6. segment ---------------------------------------------------------------

def segment_run(bins, tmp, rds, n_edges):
    """n_edges attach events (sides of 100 edges) applied, then `relationctl
    segment bench direct --where ...` with a condition almost no edge meets
    (so nearly every edge is read): edges read per second."""
    client = rds.client()
    client.flushall()
    client.close()
    path = os.path.join(tmp, "segment.jsonl")
    with open(path, "w") as f:
        for i in range(n_edges):
            f.write(json.dumps({"id": "g%d" % i, "op": "attach", "relation": "bench",
                                "profile_a": "sa%d" % (i // 100), "profile_b": "sb%d" % (i % 5000),
                                "weights": {"profit": round((i * 7919) % 10000 / 100, 2),
                                            "purchases": i % 5, "approve": i % 2 == 0}}) + "\n")
    cfg = ctl_config(tmp, "ctl-segment", "current", rds, 256)
    run_ctl(bins["relationctl"], cfg, path)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([bins["relationctl"], "-c", cfg, "segment", "bench", "direct", "--where",
                        "profit > 99.98 and approve = true"], capture_output=True, text=True)
    took = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise BenchError("relationctl segment: %s" % p.stderr)
    last = p.stderr.strip().splitlines()[-1]
    read = int(last.split("edges read ")[1])
    return {"edges": n_edges, "edges_read": read, "seconds": took, "edges_s": read / took,
            "profiles": len(p.stdout.splitlines()),
            "ctl_cpu_us_per_edge": ((ru1.ru_utime + ru1.ru_stime) -
                                    (ru0.ru_utime + ru0.ru_stime)) / read * 1e6}


# ---- 7. rebuild of a hot side ---------------------------------------------------

def rebuild_load(bins, tmp, rds, n_edges):
    """n_edges attach events on one side (profile_a "hot"), by the current
    build's function."""
    client = rds.client()
    client.flushall()
    client.close()
    path = os.path.join(tmp, "rebuild.jsonl")
    with open(path, "w") as f:
        for i in range(n_edges):
            f.write(json.dumps({"id": "r%d" % i, "op": "attach", "relation": "bench",
                                "profile_a": "hot", "profile_b": "rb%d" % i,
                                "weights": {"profit": round((i * 7919) % 10000 / 100, 2),
                                            "purchases": i % 5 + 1,
                                            "approve": i % 2 == 0}}) + "\n")
    cfg = ctl_config(tmp, "ctl-rebuild", "current", rds, 256)
    _, summary, _, _ = run_ctl(bins["relationctl"], cfg, path)
    if summary.get("applied") != n_edges:
        raise BenchError("rebuild: relationctl applied %r of %d events" % (summary, n_edges))


def is_rebuild_call(command):
    """Whether a SLOWLOG entry's command (bytes or str) is a rebuild call of
    either engine: FCALL of the library's <name>_rebuild, or the module's
    relationd.rebuild."""
    words = (command if isinstance(command, bytes) else command.encode()).split(None, 2)
    name = words[0].lower() if words else b""
    return (name == b"relationd.rebuild" or
            name == b"fcall" and len(words) > 1 and words[1].endswith(b"_rebuild"))


def rebuild_run(col, bins, tmp, rds, n_edges):
    """`relationctl rebuild bench direct hot` with every command logged by
    SLOWLOG (slower than 0 µs): the largest single call of the rebuild
    function (or the module's command), how many and their sum (the time Redis was held), and the wall
    time of the command."""
    cfg = ctl_config(tmp, "ctl-rebuild-%s" % col, col, rds, 256)
    client = rds.client()
    saved = {k: client.config_get(k)[k] for k in ("slowlog-log-slower-than", "slowlog-max-len")}
    try:
        client.config_set("slowlog-max-len", n_edges + 1000)
        client.config_set("slowlog-log-slower-than", 0)
        client.slowlog_reset()
        t0 = time.perf_counter()
        p = subprocess.run([bins["relationctl"], "-c", cfg, "rebuild", "bench", "direct", "hot"],
                           capture_output=True, text=True)
        took = time.perf_counter() - t0
        client.config_set("slowlog-log-slower-than", saved["slowlog-log-slower-than"])
        calls = [e["duration"] for e in client.slowlog_get(-1) if is_rebuild_call(e["command"])]
    finally:
        for k, v in saved.items():
            client.config_set(k, v)
        client.close()
    if p.returncode != 0:
        raise BenchError("%s: relationctl rebuild: %s" % (col, p.stderr))
    if not calls:
        raise BenchError("%s: no rebuild call in SLOWLOG" % col)
    return {"edges": n_edges, "max_call_ms": max(calls) / 1000, "calls": len(calls),
            "redis_ms": sum(calls) / 1000, "seconds": took}


# ---- 4. Redis memory --------------------------------------------------------

def memory_run(col, bins, tmp, rds, attach_path, zero_path, warm_path, n):
    client = rds.client()
    ctl = bins["relationctl"]
    client.flushall()
    # the script loaded (and a connection made) before the first measure
    run_ctl(ctl, ctl_config(tmp, "mem-warm-%s" % col, col, rds, 256, prefix="warm:"), warm_path)
    cfg = ctl_config(tmp, "mem-%s" % col, col, rds, 256)
    m0 = client.info("memory")["used_memory"]
    _, s1, _, _ = run_ctl(ctl, cfg, attach_path)
    m1 = client.info("memory")["used_memory"]
    _, s2, _, out = run_ctl(ctl, cfg, zero_path, stdout=subprocess.PIPE)
    m2 = client.info("memory")["used_memory"]
    if s1.get("applied") != n or s2.get("applied") != n:
        raise BenchError("%s memory: applied %r then %r of %d" % (col, s1, s2, n))
    triggers = out.count(b"\n")
    seen_bytes = seen_ids = 0
    # the windows kept in a sorted set: layout 1's `seen`, layout 2's `ids`
    # (a side's first 7 ids are in its hash in layout 2)
    for pattern in ("rel:*:seen", "rel:*:ids"):
        for key in client.scan_iter(match=pattern, count=1000, _type="zset"):
            seen_bytes += client.memory_usage(key, samples=0) or 0
            seen_ids += client.zcard(key)
    client.close()
    r = {"edge_side_bytes": (m1 - m0) / (2 * n), "seen_id_bytes": (m2 - m1) / (2 * n),
         "seen_usage_per_id": seen_bytes / seen_ids if seen_ids else None,
         "zero_strengthen_triggers": triggers}
    r["edge_side_bytes_without_id"] = r["edge_side_bytes"] - r["seen_id_bytes"]
    return r


# ---- 4b. Redis memory of a realistic relation -------------------------------

SIDE_CLASSES = (("small", 1, 3), ("medium", 4, 128), ("huge", 129, None))


def realistic_run(col, bins, tmp, rds, attach_path, mixed_path, warm_path, sizes):
    """Section 4b: the attaches then the mixed events of the realistic
    relation applied into a flushed Redis. used_memory after less before (the
    function library loaded by a warm-up under another prefix) per edge side
    (2 x the live edges); then every key under a side's hash tag read with
    MEMORY USAGE SAMPLES 0, summed by the side's size class (its `count`)
    and divided by that class's edge sides (keys of sides left without edges
    count in the total only); and OBJECT ENCODING of every side hash.
    warm_path: an event of the relation (applied under the prefix warm:)."""
    client = rds.client()
    ctl = bins["relationctl"]
    rel = B.RELATION_REAL
    client.flushall()
    run_ctl(ctl, ctl_config(tmp, "real-warm-%s" % col, col, rds, 256, prefix="warm:",
                       relation=rel),
            warm_path)
    cfg = ctl_config(tmp, "real-%s" % col, col, rds, 256, relation=rel)
    m0 = client.info("memory")["used_memory"]
    _, s1, _, _ = run_ctl(ctl, cfg, attach_path)
    _, s2, _, _ = run_ctl(ctl, cfg, mixed_path)
    m1 = client.info("memory")["used_memory"]
    if s1.get("applied") != sizes["attaches"] or s2.get("applied") != sizes["mixed"]:
        raise BenchError("%s realistic: applied %r then %r of %d and %d" % (
            col, s1, s2, sizes["attaches"], sizes["mixed"]))
    keys = {}                                   # hash tag -> its keys
    for key in client.scan_iter(match="rel:{%s:*" % rel["short"], count=1000):
        keys.setdefault(key.split("{", 1)[1].split("}", 1)[0], []).append(key)
    tags = sorted(keys)
    pipe = client.pipeline(transaction=False)
    for tag in tags:
        pipe.hget("rel:{%s}:side" % tag, "count")
        pipe.object("encoding", "rel:{%s}:side" % tag)
        for key in keys[tag]:
            pipe.memory_usage(key, samples=0)
    replies = iter(pipe.execute())
    client.close()
    r = {"edge_side_bytes": (m1 - m0) / (2 * sizes["live_edges"])}
    r.update({k: v for k, v in sizes.items()})
    usage = {c: [0, 0, 0] for c, _, _ in SIDE_CLASSES}    # bytes, edge sides, sides
    hashes = listpack = edge_sides = 0
    for tag in tags:
        count, encoding = int(next(replies) or 0), next(replies)
        size = sum(next(replies) or 0 for _ in keys[tag])
        if encoding is not None:
            hashes += 1
            listpack += encoding == "listpack"
        edge_sides += count
        for c, lo, hi in SIDE_CLASSES:
            if count >= lo and (hi is None or count <= hi):
                usage[c][0] += size
                usage[c][1] += count
                usage[c][2] += 1
    if edge_sides != 2 * sizes["live_edges"]:
        raise BenchError("%s realistic: the sides count %d edge sides, not 2 x %d live edges" % (
            col, edge_sides, sizes["live_edges"]))
    for c, (size, count, sides) in usage.items():
        r[c + "_bytes"] = size / count if count else None
        r[c + "_sides"] = sides
        r[c + "_edge_sides"] = count
    r["side_hashes"] = hashes
    r["listpack_share"] = listpack / hashes if hashes else None
    return r


# ---- 1c. Redis under callgrind ----------------------------------------------

def callgrind_total(path):
    """The instruction total (Ir) of a callgrind output file."""
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise BenchError("%s holds no instruction total" % path)


def redis_callgrind_run(col, bins, tmp, warm_path, path, n):
    """A fresh redis-server run by valgrind's callgrind: `relationctl apply`
    of the warm-up events (the function library loaded, the first sides
    made), the counters zeroed (callgrind_control -z), the n events applied,
    the counters dumped (callgrind_control -d): Redis's instructions (every
    thread) per event."""
    out = os.path.join(tmp, "redis-callgrind-%s" % col)
    rds = redis_server(prefix=["valgrind", "-q", "--tool=callgrind",
                               "--callgrind-out-file=" + out], start_timeout_s=120)
    try:
        rds.start()
        ctl = bins["relationctl"]
        cfg = ctl_config(tmp, "ctl-callgrind-%s" % col, col, rds, 256, timeout_ms=600000)
        run_ctl(ctl, cfg, warm_path)

        def control(flag):
            p = subprocess.run(["callgrind_control", flag, str(rds.proc.pid)],
                               capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                raise BenchError("callgrind_control %s: %s%s" % (flag, p.stdout, p.stderr))
        control("-z")
        _, summary, _, _ = run_ctl(ctl, cfg, path)
        before = set(os.listdir(tmp))
        control("-d")
        dumps = sorted(x for x in set(os.listdir(tmp)) - before
                       if x.startswith(os.path.basename(out)))
        if summary.get("applied") != n:
            raise BenchError("%s callgrind: relationctl applied %r of %d events" % (
                col, summary, n))
        if len(dumps) != 1:
            raise BenchError("callgrind_control -d: %d new dump files (%s)" % (
                len(dumps), dumps))
        ir = callgrind_total(os.path.join(tmp, dumps[0]))
        keep = os.environ.get("BENCH_CALLGRIND_KEEP")
        if keep:  # for callgrind_annotate
            os.makedirs(keep, exist_ok=True)
            shutil.copy(os.path.join(tmp, dumps[0]),
                        os.path.join(keep, "redis-callgrind.%s.out" % col))
    finally:
        rds.stop()
    return {"redis_ir_per_event": ir / n, "redis_ir": ir, "events": n}


# ---- 2. and 3. the daemon ---------------------------------------------------

def produce_all(producer, events, topic="bench"):
    for i, e in enumerate(events):
        while True:
            try:
                producer.produce(topic, e.raw, e.key)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 5000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left:
        raise BenchError("%d Kafka messages not delivered" % left)


class Watch:
    """The group's committed offsets and the high watermarks of the topic."""

    def __init__(self, bootstrap, group, topic="bench"):
        from confluent_kafka import Consumer, TopicPartition
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "enable.auto.commit": False})
        self.tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def high(self):
        return sum(self.c.get_watermark_offsets(tp, timeout=10)[1] for tp in self.tps)

    def committed(self):
        return sum(max(tp.offset, 0) for tp in self.c.committed(self.tps, timeout=10))

    def close(self):
        self.c.close()


def subscribed_queue(local, rabbit, exchange, queue, out_path):
    """A topic exchange, a queue bound to relation.# (deleted by local.close)
    and bench_subscriber consuming it; exchange None: the queue alone."""
    conn = rabbit.connection()
    ch = conn.channel()
    ch.queue_declare(queue, durable=HOOKS_DURABLE)
    if exchange is not None:
        ch.exchange_declare(exchange, "topic", durable=True)
        ch.queue_bind(queue, exchange, "relation.#")
    conn.close()

    def delete_queue():
        c = rabbit.connection()
        c.channel().queue_delete(queue)
        c.close()
    local.add(None, delete_queue)
    return local.add(B.Subscriber(rabbit, queue, out_path))


def outbox_left(rds):
    """Undelivered records: the fields of the `:out` hashes (layout 2), the
    '!' fields of the side hashes (layout 1: a baseline), the `:outbox` keys
    (builds before the side hash)."""
    raw = rds.client(decode=False)
    try:
        n = sum(raw.hlen(k) for k in raw.scan_iter(match="rel:*:out", count=1000, _type="hash"))
        n += sum(1 for _ in raw.scan_iter(match="rel:*:outbox", count=1000))
        n += sum(1 for k in raw.scan_iter(match="rel:*:side", count=1000)
                 for f in raw.hkeys(k) if f[:1] == b"!")
        return n
    finally:
        raw.close()


class HttpReceiver:
    """The endpoint of an http hook: answers every POST 200 "OK"; counts the
    triggers (JSON array elements) received and notes when the last came."""

    def __init__(self):
        import http.server
        import threading
        receiver = self
        self.triggers = 0
        self.last = None            # time.monotonic() of the last batch
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # the headers and the body go in two writes: without it the body
            # waits for the client's delayed ACK (40 ms a request)
            disable_nagle_algorithm = True

            def do_POST(self):
                n = len(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                with receiver.lock:
                    receiver.triggers += n
                    receiver.last = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


HOOK_TOPIC = "bench.hook"


def four_hooks(local, rabbit, kafka, run_no, tmp):
    """The hooks of the 4-hook drain (no filter: each gets every trigger):
    the exchange of the 1-hook drain, a queue, a Kafka topic on the
    kafka_mock, http to a local receiver. Returns (their configuration,
    {name: a function giving (triggers received, monotonic time of the
    last or None)}, the queue's bench_subscriber)."""
    queue = "bench.hookq.%d" % run_no
    qsub = subscribed_queue(local, rabbit, None, queue, os.path.join(tmp, "subq-%d.txt" % run_no))
    receiver = HttpReceiver()
    local.add(receiver, receiver.close)
    from confluent_kafka import Consumer, TopicPartition
    wm = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "bench-wm-%d" % run_no})
    local.add(wm, wm.close)
    lake = {"n": 0, "t": None}

    def lake_count():
        n = wm.get_watermark_offsets(TopicPartition(HOOK_TOPIC, 0), timeout=10)[1]
        if n != lake["n"]:
            lake.update(n=n, t=time.monotonic())
        return lake["n"], lake["t"]

    def http_count():
        with receiver.lock:
            return receiver.triggers, receiver.last
    hooks = [{"name": "queue", "kind": "amqp", "url": rabbit.url, "queue": queue},
             {"name": "lake", "kind": "kafka", "brokers": kafka.bootstrap, "topic": HOOK_TOPIC},
             {"name": "partner", "kind": "http", "url": "http://127.0.0.1:%d/hook" % receiver.port,
              "success_regex": "OK"}]
    return hooks, {"queue": lambda: subscriber_count(qsub), "lake": lake_count,
                   "partner": http_count}, qsub


def subscriber_count(sub):
    """(messages bench_subscriber received, monotonic time of the last)."""
    recs = sub.records()
    return len(recs), (recs[-1][0] / 1e9 if recs else None)


def caught_up(rds, col, receivers, names, deadline):
    """Waits until every hook delivered every trigger its backlog took:
    each stream P{hook:NAME} empty (a deliverer deletes entries once the
    destination took them) and every receiver quiet for 0.3 s since (an
    entry holds up to 64 triggers, so entries added count no triggers; the
    figures use the time of the last trigger received). A release
    without backlogs (the baseline) publishes before it commits: there, its
    one receiver quiet for 0.5 s. Returns {name: (received, monotonic time
    of the last trigger)}."""
    raw = rds.client()
    try:
        quiet = None
        while True:
            got = {n: receivers[n]() for n in names}
            added = {}
            for n in names:
                key = "rel:{hook:%s}" % n
                if raw.exists(key):
                    added[n] = (raw.xinfo_stream(key)["entries-added"], raw.xlen(key))
            if added and len(added) == len(names):
                if not all(left == 0 for (_, left) in added.values()):
                    quiet = None
                elif quiet and quiet[0] == got and time.monotonic() - quiet[1] >= 0.3:
                    return got
                elif not quiet or quiet[0] != got:
                    quiet = (got, time.monotonic())
            elif not added and col == "baseline":
                if quiet and quiet[0] == got and time.monotonic() - quiet[1] >= 0.5:
                    return got
                if not quiet or quiet[0] != got:
                    quiet = (got, time.monotonic())
            if time.monotonic() > deadline:
                raise BenchError("%s: the hooks did not catch up: received %r, backlogs "
                                 "(entries added, left) %r" % (col, got, added))
            time.sleep(0.02)
    finally:
        raw.close()


def daemon_run(col, bins, tmp, rds, rabbit, events, run_no, latency_events, nhooks=1):
    """One daemon run: drain of the backlog with nhooks hooks (1: the
    exchange; 4: four_hooks), the hooks' catch-up, then (latency_events not
    None) the latency phase. Everything started here is stopped here."""
    from confluent_kafka import Producer
    local = B.Stack()
    try:
        kafka = B.KafkaMock(["bench:%d" % PARTITIONS, "bench.dlq", HOOK_TOPIC])
        local.add(kafka)
        kafka.start()
        clients = [Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 20,
                             "batch.num.messages": 10000, "acks": "all",
                             "queue.buffering.max.messages": 2000000,
                             "enable.idempotence": False})]
        local.add(None, clients.clear)      # the producers go before the broker
        produce_all(clients[0], events)
        group = "bench-%d" % run_no
        watch = Watch(kafka.bootstrap, group)
        local.add(watch, watch.close)
        total = watch.high()
        if total != len(events):
            raise BenchError("topic holds %d messages, not %d" % (total, len(events)))

        exchange = "bench.hooks"
        sub = subscribed_queue(local, rabbit, exchange, "bench.hooks.%d" % run_no,
                               os.path.join(tmp, "sub-%d.txt" % run_no))
        hooks = {"url": rabbit.url, "exchange": exchange}
        receivers = {"default": lambda: subscriber_count(sub)}
        subs = [sub]
        if nhooks == 4:
            more, counts, qsub = four_hooks(local, rabbit, kafka, run_no, tmp)
            hooks = [dict(hooks, name="default", kind="amqp")] + more
            receivers.update(counts)
            subs.append(qsub)

        client = rds.client()
        local.add(client, client.close)
        client.flushall()
        client.config_resetstat()
        engine = {"batch_size": 256}
        if BATCH_MS:
            engine["batch_ms"] = int(BATCH_MS)
        if DEFER_MS is not None and col != "baseline":  # a release before has no defer_ms
            for h in (hooks if isinstance(hooks, list) else [hooks]):
                h["defer_ms"] = DEFER_MS
        cfg = {"redis": redis_cfg(col, rds.url, key_prefix="rel:"), "engine": engine,
               "kafka": {"brokers": kafka.bootstrap, "group_id": group, "topics": ["bench"],
                         "dead_letter_topic": "bench.dlq", "properties": KAFKA_PROPERTIES},
               "hooks": hooks, "relations": [B.RELATION]}
        daemon = B.brokers.Daemon(tmp, cfg, name="relationd-%s-%d" % (col, run_no))
        local.add(daemon, lambda: daemon.proc is not None and daemon.kill())
        rabbit_pids = rabbit.pids()
        r_procs = sorted(set(B.comm(p) for p in rabbit_pids))

        def snap(committed):
            return {"t": time.monotonic(), "committed": committed,
                    "daemon": B.proc_cpu(daemon.proc.pid), "redis": B.redis_cpu(client),
                    "rabbit": B.cpu_of(rabbit_pids), "kafka_mock": B.proc_cpu(kafka.proc.pid),
                    "subscriber": sum(B.proc_cpu(x.proc.pid) for x in subs),
                    "self": B.own_cpu(),
                    "machine": B.machine_busy()}

        def check_alive():
            if daemon.proc.poll() is not None:
                raise BenchError("relationd exited with %s\n%s" % (
                    daemon.proc.returncode, daemon.log_tail(40)))

        B.brokers.RELATIOND = bins["relationd"]      # Daemon.start runs this binary
        t_start = time.monotonic()
        daemon.start()
        started = snap(0)
        perf = None
        if PERF_OUT:
            events = [x for e in PERF_EVENTS.split(",") for x in ("-e", e)]
            perf = subprocess.Popen(["perf", "record", "-q"] + events + ["-g", "-p",
                                     str(daemon.proc.pid), "-o", "%s.%s.%d" % (PERF_OUT, col, run_no)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            local.add(None, lambda: perf.poll() is None and perf.kill())
        first = None
        deadline = time.monotonic() + max(120, total / 200)
        while True:
            check_alive()
            c = watch.committed()
            if first is None and c > 0:
                first = snap(c)
            if c >= total:
                last = snap(c)
                if perf is not None:
                    perf.send_signal(signal.SIGINT)
                    perf.wait(timeout=60)
                break
            if time.monotonic() > deadline:
                raise BenchError("drain not done after %.0f s: %d of %d committed\n%s" % (
                    deadline - t_start, c, total, daemon.log_tail(40)))
            time.sleep(0.02)
        if last["committed"] - first["committed"] < total / 2:
            raise BenchError("the drain was too short to measure (%d of %d events in the "
                             "window): raise BENCH_EVENTS" % (
                                 last["committed"] - first["committed"], total))
        n = last["committed"] - first["committed"]
        dt = last["t"] - first["t"]
        got = caught_up(rds, col, receivers, sorted(receivers),
                        time.monotonic() + max(120, total / 100))
        caught = snap(total)
        triggers = sub.wait_quiet()
        stats = B.redis_commandstats(client)  # before outbox_left's own scan
        outbox = outbox_left(rds)
        r = {"events_s": n / dt, "window_events": n, "window_s": dt,
             "start_to_first_commit_s": first["t"] - t_start,
             "triggers": triggers, "triggers_per_event": triggers / total,
             "outbox_keys_left": outbox, "rabbit_processes": r_procs}
        delta = {k: last[k] - first[k] for k in last}
        ours = ("daemon", "redis", "rabbit", "kafka_mock", "subscriber", "self")
        for k in ours:
            r[k + "_cpu_us"] = delta[k] / n * 1e6
        r["other_cores"] = (delta["machine"] - sum(delta[k] for k in ours)) / dt
        r["machine_busy"] = delta["machine"] / (dt * CORES)
        # the hooks' catch-up: from the last commit until the last trigger
        # reached the slowest hook's receiver (0 when it came before)
        r["catch_up_s"] = max([0.0] + [t - last["t"] for _, t in got.values() if t is not None])
        r["hooks_received"] = {k: v[0] for k, v in got.items()}
        r["catch_up_s_by_hook"] = {k: max(0.0, t - last["t"]) for k, (_, t) in got.items()
                                   if t is not None}
        # from the daemon's start until every hook delivered everything:
        # what an event costs once its triggers are delivered too
        whole = {k: caught[k] - started[k] for k in ("daemon", "redis", "rabbit")}
        for k, v in whole.items():
            r[k + "_cpu_us_delivered"] = v / total * 1e6
        cpu_s = (r["daemon_cpu_us"] + r["redis_cpu_us"] + r["rabbit_cpu_us"]) * 1e-6
        r["cpu_bound_events_s"] = CORES / cpu_s
        r["cpu_share"] = r["events_s"] / r["cpu_bound_events_s"]
        r["commandstats"] = {k: {"calls_per_event": c / total, "usec_per_call": u / c if c else 0}
                             for k, (c, u) in stats.items() if k not in COMMAND_NOISE}
        if outbox:
            log("%s run %d: %d outbox keys left after the drain" % (col, run_no, outbox))

        if latency_events is not None:
            r.update(latency(kafka.bootstrap, clients, watch, sub, triggers, total,
                             latency_events, check_alive))
        r["peak_rss_mib"] = B.status_kib(daemon.proc.pid, "VmHWM") / 1024
        status = daemon.stop()
        if status != 0:
            raise BenchError("relationd exited with %s at SIGTERM\n%s" % (
                status, daemon.log_tail(40)))
        return r
    finally:
        errors = local.close()
        if errors:
            log("cleanup: %s" % "; ".join(errors))


def paired_apply(col, bins, tmp, rds, path):
    """The engine alone (section 1's run of the same events) again, just
    before a drain: the drain's share of it is taken from the two (this
    machine's speed drifts by a third over minutes; figures taken minutes
    apart do not compare)."""
    return apply_run(col, bins, tmp, rds, path, EVENTS, 256)["events_s"]


def pair(drain, alone):
    drain["engine_alone_events_s"] = alone
    drain["engine_share"] = drain["events_s"] / alone


# ---- 2c. the daemon under callgrind -----------------------------------------

def callgrind_run(col, bins, tmp, rds, rabbit, events, run_no):
    """A drain as in daemon_run, the daemon run by valgrind's callgrind: its
    instructions (every thread, start and stop included) per event."""
    out = os.path.join(tmp, "callgrind.%s.%d" % (col, run_no))
    wrapper = os.path.join(tmp, "relationd-callgrind-%s" % col)
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec valgrind -q --tool=callgrind --callgrind-out-file=%s %s \"$@\"\n"
                % (out, bins["relationd"]))
    os.chmod(wrapper, 0o755)
    daemon_run(col, dict(bins, relationd=wrapper), tmp, rds, rabbit, events, run_no, None)
    ir = callgrind_total(out)
    return {"daemon_ir_per_event": ir / len(events), "daemon_ir": ir}


# ---- 2b. RabbitMQ alone ----------------------------------------------------

def trigger_bodies(ctl, tmp, rds, events):
    """The triggers of `events` as relationctl prints them (a fresh Redis):
    the bodies RabbitMQ-alone publishes."""
    client = rds.client()
    client.flushall()
    client.close()
    path = B.write_events(os.path.join(tmp, "bodies-in.jsonl"), events)
    cfg = ctl_config(tmp, "ctl-bodies", "current", rds, 256)
    out = os.path.join(tmp, "bodies.jsonl")
    with open(out, "wb") as f:
        run_ctl(ctl, cfg, path, stdout=f)
    return out


def rabbit_run(tmp, rabbit, bodies, n, run_no):
    """n messages (bodies in turn) published by bench_publish (relationd's
    publisher: confirms, batches of 512, 8 in flight) to a topic exchange
    with a durable queue consumed by bench_subscriber, as in the drain: the
    rate RabbitMQ alone sustains here and its CPU per message."""
    local = B.Stack()
    try:
        exchange = "bench.alone"
        sub = subscribed_queue(local, rabbit, exchange, "bench.alone.%d" % run_no,
                               os.path.join(tmp, "alone-%d.txt" % run_no))
        pids = rabbit.pids()
        r0, s0, t0 = B.cpu_of(pids), B.proc_cpu(sub.proc.pid), time.monotonic()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run([PUBLISHER, rabbit.url, exchange, bodies, str(n)],
                           capture_output=True, text=True, timeout=max(120, n / 500))
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if p.returncode != 0:
            raise BenchError("bench_publish exited with %d: %s" % (p.returncode, p.stderr))
        seconds = float(p.stdout.split()[0])
        got = sub.wait_quiet()
        r1, s1, t1 = B.cpu_of(pids), B.proc_cpu(sub.proc.pid), time.monotonic()
        if got != n:
            raise BenchError("RabbitMQ alone: %d of %d messages received" % (got, n))
        pub = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        return {"messages_s": n / seconds, "messages": n, "rabbit_cpu_us": (r1 - r0) / n * 1e6,
                "rabbit_cores": (r1 - r0) / (t1 - t0),
                "publisher_cpu_us": pub / n * 1e6, "subscriber_cpu_us": (s1 - s0) / n * 1e6}
    finally:
        errors = local.close()
        if errors:
            log("cleanup: %s" % "; ".join(errors))


def latency(bootstrap, clients, watch, sub, skip, drained, events, check_alive):
    """Produces events at RATE per second, one at a time (linger.ms 0), and
    matches each to the first trigger received for it."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all",
                  "enable.idempotence": False})
    clients.append(p)
    p.poll(0)
    p.list_topics("bench", timeout=10)     # metadata known before the clock starts
    sent = {}
    t0 = time.monotonic() + 0.05
    for i, e in enumerate(events):
        delay = t0 + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[e.id] = time.monotonic_ns()
        p.produce("bench", e.raw, e.key)
        p.poll(0)
    behind = (time.monotonic() - t0) - len(events) / RATE
    if p.flush(30):
        raise BenchError("latency events not delivered")
    total = drained + len(events)
    lag_at_end = total - watch.committed()
    deadline = time.monotonic() + 120
    while watch.committed() < total:
        check_alive()
        if time.monotonic() > deadline:
            raise BenchError("latency events not committed within 120 s")
        time.sleep(0.05)
    sub.wait_quiet()
    got = {}
    for ns, eid in sub.records(skip):
        if eid in sent and eid not in got:
            got[eid] = ns
    lat = sorted((got[i] - sent[i]) / 1e6 for i in got)
    if not lat:
        raise BenchError("no trigger matched a latency event")

    def pct(q):
        return lat[min(len(lat) - 1, int(round(q * (len(lat) - 1))))]
    return {"latency_p50_ms": pct(0.50), "latency_p99_ms": pct(0.99), "latency_max_ms": lat[-1],
            "latency_events": len(events), "latency_matched": len(lat),
            "latency_producer_late_s": behind, "latency_backlog_at_end": lag_at_end}


# ---- the table --------------------------------------------------------------

def real_label():
    f = REAL_EDGES / B.REAL_FULL["attaches"]
    full = B.REAL_FULL
    return ("%d managers (the largest %d customers), %d customers of 1..3 managers, %d "
            "attaches, then %d strengthen/edit/detach%s" % (
                round(full["managers"] * f), round(full["largest"] * f),
                round(full["customers"] * f), REAL_EDGES, round(full["mixed"] * f),
                " (BENCH_QUICK: a tenth)" if QUICK and REAL_EDGES * 10 == full["attaches"]
                else ""))


ROWS = [
    # key, label, target (op, value) or None, format
    ("1", "1. engine alone: relationctl apply - (batch_size 256)", None, None),
    ("apply.events_s", "events/s (the target is the module's)", (">=", 40000), "%.0f"),
    ("apply.redis_cpu_us", "Redis CPU us/event", ("<=", 60), "%.1f"),
    ("apply.ctl_cpu_us", "relationctl CPU us/event", None, "%.1f"),
    ("apply.other_cores", "  CPU of other processes meanwhile (cores)", None, "%.2f"),
    ("apply1.events_s", "events/s with batch_size 1 (%d events)" % BATCH1_EVENTS, None, "%.0f"),
    ("apply.pipelining", "pipelining gain (256 vs 1)", None, "%.1fx"),
    ("cmd", None, None, None),
    ("1c", "1c. Redis under callgrind: relationctl apply of %d events after %d to warm up "
     "(BENCH_CALLGRIND=1)" % (REDIS_CG_EVENTS, REDIS_CG_WARM), None, None),
    ("rcg.redis_ir_per_event", "Redis instructions per event (target: the module's)",
     ("<=", 120000), "%.0f"),
    ("2", "2. daemon: drain of a Kafka backlog (8 partitions, batch_size 256); 1 hook (an "
     "exchange), 4 hooks (exchange, queue, Kafka topic, http)", None, None),
    ("drain.events_s", "events/s, 1 hook", None, "%.0f"),
    ("drain4.events_s", "events/s, 4 hooks", None, "%.0f"),
    ("drain.engine_alone_events_s", "  engine alone events/s, just before each drain", None,
     "%.0f"),
    ("drain.engine_share", "drain / engine alone, 1 hook", (">=", 0.8), "%.2f"),
    ("drain4.engine_share", "drain / engine alone, 4 hooks", (">=", 0.8), "%.2f"),
    ("drain.machine_busy", "whole machine busy share during the drain, 1 hook", (">=", 0.8),
     "%.2f"),
    ("drain4.machine_busy", "whole machine busy share during the drain, 4 hooks", (">=", 0.8),
     "%.2f"),
    ("drain.catch_up_s", "hooks' catch-up after the last commit, s, 1 hook", None, "%.2f"),
    ("drain4.catch_up_s", "hooks' catch-up after the last commit, s, 4 hooks", None, "%.2f"),
    ("drain.redis_cpu_us_delivered", "Redis CPU us/event, every hook delivered, 1 hook", None,
     "%.1f"),
    ("drain4.redis_cpu_us_delivered", "Redis CPU us/event, every hook delivered, 4 hooks", None,
     "%.1f"),
    ("drain.daemon_cpu_us_delivered", "daemon CPU us/event, every hook delivered, 1 hook",
     None, "%.1f"),
    ("drain4.daemon_cpu_us_delivered", "daemon CPU us/event, every hook delivered, 4 hooks",
     None, "%.1f"),
    ("drain4.other_cores", "  CPU of other processes meanwhile (cores), 4 hooks", None,
     "%.2f"),
    ("drain.daemon_cpu_us", "daemon CPU us/event (in the drain window, 1 hook)", ("<=", 15),
     "%.1f"),
    ("drain.redis_cpu_us", "Redis CPU us/event (in the drain window, 1 hook)", None, "%.1f"),
    ("drain.rabbit_cpu_us", "RabbitMQ CPU us/event (in the drain window, 1 hook)", None,
     "%.1f"),
    ("drain.peak_rss_mib", "daemon peak RSS MiB (VmHWM), 1 hook", ("<=", 30), "%.1f"),
    ("drain4.peak_rss_mib", "daemon peak RSS MiB (VmHWM), 4 hooks", None, "%.1f"),
    ("drain.cpu_share", "drain / (cores / CPU per event of the three)", (">=", 0.8), "%.2f"),
    ("drain.cpu_bound_events_s", "  CPU-bound events/s (cores / CPU per event)", None, "%.0f"),
    ("drain.kafka_mock_cpu_us", "  kafka_mock CPU us/event (not counted)", None, "%.1f"),
    ("drain.subscriber_cpu_us", "  subscriber CPU us/event (not counted)", None, "%.1f"),
    ("drain.triggers_per_event", "  triggers received per event", None, "%.3f"),
    ("drain.other_cores", "  CPU of other processes meanwhile (cores)", None, "%.2f"),
    ("drain.rabbit_cores", "  RabbitMQ cores busy (its CPU per second)", None, "%.2f"),
    ("2c", "2c. the daemon under callgrind: a drain of %d events (instructions do not "
     "depend on the machine's load)" % CALLGRIND_EVENTS, None, None),
    ("cg.daemon_ir_per_event", "daemon instructions/event (start and stop included)",
     None, "%.0f"),
    ("2b", "2b. RabbitMQ alone: as many triggers through relationd's publisher, no Redis, "
     "no Kafka", None, None),
    ("rabbit.messages_s", "messages/s, published to confirmed", None, "%.0f"),
    ("rabbit.rabbit_cpu_us", "RabbitMQ CPU us/message", None, "%.1f"),
    ("rabbit.rabbit_cores", "RabbitMQ cores busy (its CPU per second)", None, "%.2f"),
    ("rabbit.events_s", "events/s it allows (messages/s / triggers per event)", None, "%.0f"),
    ("rabbit.drain_share", "drain events/s / that", None, "%.2f"),
    ("5", "5. engine alone on a Redis Cluster (a call per side; current build only)", None,
     None),
    ("cl1.events_s", "events/s, 1 primary", None, "%.0f"),
    ("cl3.events_s", "events/s, 3 primaries", None, "%.0f"),
    ("cl.scaling", "3 primaries / 1 primary", None, "%.2f"),
    ("cl1.redis_cpu_us", "Redis CPU us/event, 1 primary", None, "%.1f"),
    ("cl3.redis_cpu_us", "Redis CPU us/event, 3 primaries (all nodes)", None, "%.1f"),
    ("cl3.ctl_cpu_us", "relationctl CPU us/event, 3 primaries", None, "%.1f"),
    ("cl3.max_share", "calls on the busiest primary (1/3 = even)", None, "%.2f"),
    ("6", "6. relationctl segment over %d edges (current build only)" % SEGMENT_EDGES, None,
     None),
    ("seg.edges_s", "edges read per second", None, "%.0f"),
    ("seg.edges_read", "edges read", None, "%.0f"),
    ("seg.ctl_cpu_us_per_edge", "relationctl CPU us per edge", None, "%.2f"),
    ("7", "7. relationctl rebuild of one side of %d edges (Redis SLOWLOG)" % REBUILD_EDGES,
     None, None),
    ("rb.max_call_ms", "largest single rebuild call, ms (Redis held)", None, "%.2f"),
    ("rb.calls", "rebuild calls", None, "%.0f"),
    ("rb.redis_ms", "  their sum, ms", None, "%.0f"),
    ("rb.seconds", "  the rebuild's wall time, s", None, "%.2f"),
    ("3", "3. latency at %d events/s for %g s (produce -> first trigger)" % (RATE, LATENCY_S),
     None, None),
    ("lat.latency_p50_ms", "p50 ms", None, "%.1f"),
    ("lat.latency_p99_ms", "p99 ms", ("<=", 20), "%.1f"),
    ("lat.latency_max_ms", "max ms", None, "%.1f"),
    ("lat.latency_backlog_at_end", "  events not yet committed when producing stopped", None,
     "%.0f"),
    ("4", "4. Redis memory (%d attach events of distinct edges, fresh profiles)" % MEM_EVENTS,
     None, None),
    ("mem.edge_side_bytes", "bytes per edge side (used_memory / 2E, incl. its id)", None,
     "%.0f"),
    ("mem.seen_id_bytes", "bytes per remembered id (zero-delta strengthen)", None,
     "%.1f"),
    ("mem.edge_side_bytes_without_id", "  bytes per edge side without its id", None, "%.0f"),
    ("mem.seen_usage_per_id", "  window zsets (seen, ids) MEMORY USAGE / ids", None, "%.1f"),
    ("4b", "4b. Redis memory, a realistic relation: %s" % real_label(), None, None),
    ("real.edge_side_bytes", "bytes per edge side (used_memory / 2 x live edges)",
     ("<=", 160), "%.0f"),
    ("real.small_bytes", "  sides of 1..3 edges: MEMORY USAGE per edge side", None, "%.0f"),
    ("real.medium_bytes", "  sides of 4..128 edges: MEMORY USAGE per edge side", None, "%.0f"),
    ("real.huge_bytes", "  sides of >128 edges: MEMORY USAGE per edge side", None, "%.0f"),
    ("real.listpack_share", "share of side hashes in listpack encoding", None, "%.3f"),
]


def met(value, target):
    if value is None or target is None:
        return None
    op, t = target
    return value >= t if op == ">=" else value <= t


def fmt(value, f):
    if value is None:
        return "n/a"
    return f % value


def median_of(samples, key):
    vals = [s[key] for s in samples if s.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(results, cols):
    """{col: {row key: value}} from the samples."""
    out = {}
    for col in cols:
        res = results[col]
        v = {}
        for prefix, samples in (("apply", res["apply"]), ("apply1", res["apply1"]),
                                ("drain", res["drain"]), ("drain4", res.get("drain4", [])),
                                ("lat", res["latency"]),
                                ("mem", res["memory"]), ("rabbit", res["rabbit"]),
                                ("cl1", res["cluster1"]), ("cl3", res["cluster3"]),
                                ("seg", res["segment"]), ("rb", res.get("rebuild", [])),
                                ("cg", res.get("callgrind", [])),
                                ("real", res.get("realistic", [])),
                                ("rcg", res.get("redis_callgrind", []))):
            keys = set()
            for s in samples:
                keys.update(k for k, x in s.items() if isinstance(x, (int, float)))
            for k in keys:
                v[prefix + "." + k] = median_of(samples, k)
        if v.get("cl1.events_s") and v.get("cl3.events_s"):
            v["cl.scaling"] = v["cl3.events_s"] / v["cl1.events_s"]
        if v.get("drain.rabbit_cpu_us") and v.get("drain.events_s"):
            v["drain.rabbit_cores"] = v["drain.rabbit_cpu_us"] * v["drain.events_s"] / 1e6
        if v.get("rabbit.messages_s") and v.get("drain.triggers_per_event"):
            v["rabbit.events_s"] = v["rabbit.messages_s"] / v["drain.triggers_per_event"]
            if v.get("drain.events_s"):
                v["rabbit.drain_share"] = v["drain.events_s"] / v["rabbit.events_s"]
        # the drain's share of the engine alone: the median of each drain's
        # rate over the engine alone's measured just before it (pair); a
        # drain without one (a JSON of an earlier bench) over section 1's
        for d in ("drain", "drain4"):
            if v.get(d + ".events_s") and v.get(d + ".engine_share") is None \
                    and v.get("apply.events_s"):
                v[d + ".engine_alone_events_s"] = v["apply.events_s"]
                v[d + ".engine_share"] = v[d + ".events_s"] / v["apply.events_s"]
        if v.get("apply.events_s") and v.get("apply1.events_s"):
            v["apply.pipelining"] = v["apply.events_s"] / v["apply1.events_s"]
        # commandstats of the apply runs: medians per command
        cmds = {}
        for s in res["apply"]:
            for name, st in s["commandstats"].items():
                cmds.setdefault(name, []).append(st)
        v["commands"] = {name: {k: statistics.median(x[k] for x in sts) for k in sts[0]}
                         for name, sts in cmds.items()}
        out[col] = v
    return out


def ratio_cols(cols):
    """The columns shown as a ratio to the baseline (none without one)."""
    return [c for c in cols if c != "baseline"] if "baseline" in cols else []


# the table's widths: label, target, a column's value, a ratio
WIDTHS = (52, 9, 15, 8)


def table(summary, cols, header):
    """The table of the figures: one column per measured column, then
    column/baseline for each other column when there is a baseline."""
    lines = list(header)
    ratios = ratio_cols(cols)
    wl, wt, wv, wr = WIDTHS
    head = ([("figure", wl), ("target", wt)] + [(COLUMN_NAMES.get(c, c), wv) for c in cols] +
            [(RATIO_NAMES.get(c, c[:3] + "/base"), wr) for c in ratios])
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                           for i, (h, w) in enumerate(head)))
    lines.append("-" * (sum(w for _, w in head) + 2 * (len(head) - 1)))

    def row(label, target, vals, per):
        """per: {col: the number of the ratio} (None: no ratio)."""
        cells = [label.ljust(wl), target.rjust(wt)] + [v.rjust(wv) for v in vals]
        base = per.get("baseline")
        cells += [("%.2f" % (per[c] / base) if per.get(c) is not None and base else "").rjust(wr)
                  for c in ratios]
        lines.append("  ".join(cells).rstrip())

    def measured(key):
        return any(summary[col].get(key) is not None for col in cols)

    skipping = False
    for i, (key, label, target, f) in enumerate(ROWS):
        if f is None and key != "cmd":
            # a section no column measured (skipped, or off) is left out
            body = []
            for k, _, _, ff in ROWS[i + 1:]:
                if ff is None and k != "cmd":
                    break
                body.append(k)
            skipping = "cmd" not in body and not any(measured(k) for k in body)
            if not skipping:
                lines.append(label)
            continue
        if skipping:
            continue
        if key == "cmd":
            ranked = {}
            for col in cols:
                cmds = summary[col]["commands"]
                top = sorted(cmds, key=lambda c: -cmds[c]["usec_per_event"])[:4]
                for rank, c in enumerate(top):
                    ranked[c] = min(ranked.get(c, 99), rank)
            for c in sorted(ranked, key=ranked.get):
                vals, per = [], {}
                for col in cols:
                    st = summary[col]["commands"].get(c)
                    if st:
                        vals.append("%.1f=%.2fx%.1f" % (
                            st["usec_per_event"], st["calls_per_event"], st["usec_per_call"]))
                        per[col] = st["usec_per_event"]
                    else:
                        vals.append("-")
                row("  Redis %s: us/ev = calls/ev x us/call" % c, "", vals, per)
            continue
        vals, per = [], {}
        for col in cols:
            v = summary[col].get(key)
            per[col] = v
            m = met(v, target)
            vals.append(fmt(v, f) + ("" if m is None else " met" if m else " NOT met"))
        row(label, "" if target is None else "%s %g" % target, vals, per)
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------

def main():
    def on_signal(sig, frame):
        raise SystemExit("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    try:
        bins = binaries()
    except BenchError as e:
        sys.exit("bench: %s" % e)
    cols = list(bins)
    t_begin = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="relationd-bench-")
    stack = B.Stack()
    results = {c: {"apply": [], "apply1": [], "drain": [], "drain4": [], "latency": [],
                   "memory": [],
                   "rabbit": [], "cluster1": [], "cluster3": [], "segment": [],
                   "rebuild": [], "callgrind": [], "realistic": [], "redis_callgrind": []}
               for c in cols}
    try:
        run_bins = snapshot_binaries(bins, tmp)
        log("%d events, %d cores; starting redis-server and rabbitmq-server" % (EVENTS, CORES))
        if MODULE:
            log("the Redis servers load %s (copied from %s)" % (MODULE, bins["module"]["module"]))
        rds = redis_server()
        stack.add(rds)
        rds.start()
        rabbit = B.Rabbit()
        stack.add(rabbit)
        rabbit.start()
        vers = B.versions()
        vers["rabbitmq-server"] = rabbit.version()

        events = B.make_events(EVENTS, 1, "e")
        path = B.write_events(os.path.join(tmp, "events.jsonl"), events)
        path1 = B.write_events(os.path.join(tmp, "events1.jsonl"), events[:BATCH1_EVENTS])
        attach, zero = B.memory_events(MEM_EVENTS, 3, "m")
        attach_path = B.write_events(os.path.join(tmp, "attach.jsonl"), attach)
        zero_path = B.write_events(os.path.join(tmp, "zero.jsonl"), zero)
        warm_path = B.write_events(os.path.join(tmp, "warm.jsonl"), B.make_events(1, 9, "w"))

        for rnd, order in enumerate(orders(cols, APPLY_ROUNDS)):
            for col in order:
                r = apply_run(col, run_bins[col], tmp, rds, path, EVENTS, 256)
                results[col]["apply"].append(r)
                log("apply round %d %s: %.0f events/s, Redis %.1f us/event" % (
                    rnd, col, r["events_s"], r["redis_cpu_us"]))
                r = apply_run(col, run_bins[col], tmp, rds, path1, BATCH1_EVENTS, 1)
                results[col]["apply1"].append(r)
                log("apply round %d %s batch_size 1: %.0f events/s" % (rnd, col, r["events_s"]))
        for col in cols:
            r = memory_run(col, run_bins[col], tmp, rds, attach_path, zero_path, warm_path,
                           MEM_EVENTS)
            results[col]["memory"].append(r)
            log("memory %s: %.0f bytes per edge side, %.1f per event id" % (
                col, r["edge_side_bytes"], r["seen_id_bytes"]))

        if REAL_EDGES > 0:
            real_attach, real_mixed, real_sizes = B.realistic_events(REAL_EDGES, 5, "real")
            real_paths = [B.write_events(os.path.join(tmp, "real-%s.jsonl" % name), evs)
                          for name, evs in (("attach", real_attach), ("mixed", real_mixed),
                                            ("warm", real_attach[:1]))]
            del real_attach, real_mixed
            for col in cols:
                r = realistic_run(col, run_bins[col], tmp, rds, *real_paths, real_sizes)
                results[col]["realistic"].append(r)
                log("realistic memory %s: %.0f bytes per edge side (small %s, medium %s, huge "
                    "%s), listpack share %.3f" % (
                        col, r["edge_side_bytes"], fmt(r["small_bytes"], "%.0f"),
                        fmt(r["medium_bytes"], "%.0f"), fmt(r["huge_bytes"], "%.0f"),
                        r["listpack_share"]))
        if REDIS_CALLGRIND:
            if REDIS_CG_WARM + REDIS_CG_EVENTS > EVENTS:
                raise BenchError("BENCH_CALLGRIND_REDIS_EVENTS %d: more than the %d events "
                                 "after the warm-up" % (REDIS_CG_EVENTS, EVENTS - REDIS_CG_WARM))
            cg_warm = B.write_events(os.path.join(tmp, "redis-cg-warm.jsonl"),
                                     events[:REDIS_CG_WARM])
            cg_path = B.write_events(os.path.join(tmp, "redis-cg.jsonl"),
                                     events[REDIS_CG_WARM:REDIS_CG_WARM + REDIS_CG_EVENTS])
            for col in cols:
                r = redis_callgrind_run(col, run_bins[col], tmp, cg_warm, cg_path,
                                        REDIS_CG_EVENTS)
                results[col]["redis_callgrind"].append(r)
                log("Redis under callgrind %s: %.0f instructions per event" % (
                    col, r["redis_ir_per_event"]))
        if os.environ.get("BENCH_CLUSTER", "1") not in ("", "0"):
            for rnd in range(APPLY_ROUNDS):
                for primaries in (1, 3):
                    r = cluster_run(run_bins[cols[0]], tmp, path, EVENTS, primaries)
                    results[cols[0]]["cluster%d" % primaries].append(r)
                    log("cluster of %d round %d: %.0f events/s, Redis %.1f us/event, "
                        "calls per node %s" % (primaries, rnd, r["events_s"],
                                               r["redis_cpu_us"], r["calls"]))
        if SEGMENT_EDGES > 0:
            r = segment_run(run_bins[cols[0]], tmp, rds, SEGMENT_EDGES)
            results[cols[0]]["segment"].append(r)
            log("segment: %.0f edges read per second (%d of %d edges, %d profiles)" % (
                r["edges_s"], r["edges_read"], r["edges"], r["profiles"]))
        if REBUILD_EDGES > 0:
            rebuild_load(run_bins[cols[0]], tmp, rds, REBUILD_EDGES)
            for col in cols:
                r = rebuild_run(col, run_bins[col], tmp, rds, REBUILD_EDGES)
                results[col]["rebuild"].append(r)
                log("rebuild %s: %d edges, largest call %.2f ms, %d calls, %.0f ms in all, "
                    "%.2f s" % (col, REBUILD_EDGES, r["max_call_ms"], r["calls"], r["redis_ms"],
                                r["seconds"]))
        bodies = trigger_bodies(run_bins[cols[0]]["relationctl"], tmp, rds, events[:5000])
        lat_events = B.make_events(int(RATE * LATENCY_S), 2, "lat")
        run_no = 0
        for rnd, order in enumerate(orders(cols, DRAIN_ROUNDS)):
            for col in order:
                run_no += 1
                lat = lat_events if rnd == DRAIN_ROUNDS - 1 else None
                alone = paired_apply(col, run_bins[col], tmp, rds, path)
                r = daemon_run(col, run_bins[col], tmp, rds, rabbit, events, run_no, lat)
                pair(r, alone)
                results[col]["drain"].append({k: v for k, v in r.items()
                                              if not k.startswith("latency")})
                if lat is not None:
                    results[col]["latency"].append({k: v for k, v in r.items()
                                                    if k.startswith("latency")})
                a = rabbit_run(tmp, rabbit, bodies, r["triggers"], run_no)
                results[col]["rabbit"].append(a)
                log("RabbitMQ alone %s: %.0f messages/s, %.1f us/message" % (
                    col, a["messages_s"], a["rabbit_cpu_us"]))
                log("drain round %d %s: %.0f events/s (%.2f of the engine alone just before), "
                    "daemon %.1f, Redis %.1f, RabbitMQ %.1f "
                    "us/event, RSS %.1f MiB, machine busy %.2f, catch-up %.2f s%s" % (
                        rnd, col, r["events_s"], r["engine_share"], r["daemon_cpu_us"],
                        r["redis_cpu_us"],
                        r["rabbit_cpu_us"], r["peak_rss_mib"], r["machine_busy"],
                        r["catch_up_s"],
                        "; latency p50 %.1f p99 %.1f max %.1f ms" % (
                            r["latency_p50_ms"], r["latency_p99_ms"], r["latency_max_ms"])
                        if lat is not None else ""))
                if col == "baseline":
                    continue        # a release before the hooks list has one hook
                run_no += 1
                alone = paired_apply(col, run_bins[col], tmp, rds, path)
                r = daemon_run(col, run_bins[col], tmp, rds, rabbit, events, run_no, None,
                               nhooks=4)
                pair(r, alone)
                results[col]["drain4"].append(r)
                log("drain round %d %s, 4 hooks: %.0f events/s (%.2f of the engine alone just "
                    "before), machine busy %.2f, catch-up %.2f s, received %r" % (
                        rnd, col, r["events_s"], r["engine_share"], r["machine_busy"],
                        r["catch_up_s"], r["hooks_received"]))
        if CALLGRIND_EVENTS > 0:
            cg_events = events[:CALLGRIND_EVENTS]
            for col in cols:
                run_no += 1
                r = callgrind_run(col, run_bins[col], tmp, rds, rabbit, cg_events, run_no)
                results[col]["callgrind"].append(r)
                log("callgrind %s: %.0f daemon instructions per event" % (
                    col, r["daemon_ir_per_event"]))
    except BaseException as e:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)     # let the cleanup finish
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        interrupted = isinstance(e, (SystemExit, KeyboardInterrupt))
        if isinstance(e, BenchError):
            log("failed: %s" % e)
        elif interrupted:
            log("interrupted (%s)" % (e or "SIGINT"))
        else:
            traceback.print_exc()
        errors = stack.close()
        if errors:
            log("cleanup: %s" % "; ".join(errors))
        if interrupted:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("logs kept in %s" % tmp)
        sys.exit(1)
    errors = stack.close()
    if errors:
        log("cleanup: %s" % "; ".join(errors))
    shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(results, cols)
    header = [
        "relationd benchmark: %d events%s, %d cores (os.cpu_count), redis-server %s, "
        "rabbitmq-server %s, librdkafka %s" % (
            EVENTS, " (BENCH_QUICK)" if QUICK else "", CORES, vers["redis-server"],
            vers["rabbitmq-server"], vers["librdkafka"]),
        "engine.batch_size 256, engine.batch_ms %s; medians of %d apply round(s), %d drain "
        "round(s), 1 latency run per column; %.0f s in all" % (
            BATCH_MS or "default", APPLY_ROUNDS, DRAIN_ROUNDS, time.monotonic() - t_begin),
    ] + ["%s: %s, %s%s" % (COLUMN_NAMES.get(c, c), bins[c]["relationd"], bins[c]["relationctl"],
                           ", redis.engine %s" % ENGINES[c] if ENGINES.get(c) else "")
         for c in cols]
    if MODULE:
        header.append("every redis-server (but the cluster's) loaded %s" % bins["module"]["module"])
    busy = max([summary[c].get(k) or 0 for c in cols
                for k in ("apply.other_cores", "drain.other_cores", "drain4.other_cores")])
    if busy > 0.15:
        header.append("WARNING: other processes used up to %.2f cores during the measures: "
                      "rates and the CPU share are disturbed, CPU per event less so" % busy)
    header.append("")
    print(table(summary, cols, header))
    doc = {"events": EVENTS, "quick": QUICK, "cores": CORES, "versions": vers,
           "binaries": bins, "engines": {c: ENGINES.get(c) for c in cols},
           "column_names": {c: COLUMN_NAMES.get(c, c) for c in cols}, "apply_rounds": APPLY_ROUNDS, "drain_rounds": DRAIN_ROUNDS,
           "latency_s": LATENCY_S, "rate": RATE, "batch_ms": BATCH_MS,
           "targets": {k: {"op": t[0], "value": t[1]} for k, _, t, _ in ROWS if t},
           "summary": summary, "samples": results,
           "met": {c: {k: met(summary[c].get(k), t) for k, _, t, _ in ROWS if t} for c in cols}}
    os.makedirs(os.path.dirname(JSON_OUT), exist_ok=True)
    with open(JSON_OUT, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    print("\n(JSON: %s)" % JSON_OUT)
    svg = os.environ.get("BENCH_SVG") or os.path.splitext(JSON_OUT)[0] + ".svg"
    chart.write_svg(doc, svg, ROWS)
    print("(chart: %s)" % svg)


if __name__ == "__main__":
    main()
