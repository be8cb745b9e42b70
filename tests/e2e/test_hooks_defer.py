"""A hook's `defer_ms` (README, Action hooks, "Deliverers": under a backlog
the sources go first). While a source takes full batches at once (a
backlog waiting at the broker) and for 200 ms after the last one, a
deliverer holds its sends until its oldest trigger is defer_ms old;
defer_ms 0 sends at once; the drain at SIGTERM never waits; a steady flow
the daemon keeps up with is no backlog.

The hooks are http hooks answered by receivers in this process; what each
receives is compared with the oracle's triggers (brokers.Oracle: the same
events applied once, in order, by relationctl)."""

import collections
import os
import time

from brokers import (HttpReceiver, free_port, hook_backlog, machine_cpu, make_stream,
                     wait_until)
from test_hooks import metric, problems_of

BATCH = 64                  # engine.batch_size
FAR = 600000                # a defer_ms far longer than any run of this file


def http_hook(name, receiver, defer_ms, idle_percent=None):
    hook = {"name": name, "kind": "http", "url": "http://127.0.0.1:%d/hook" % receiver.port,
            "batch_size": 1000, "batch_ms": 50, "defer_ms": defer_ms}
    if idle_percent is not None:
        hook["defer_idle_percent"] = idle_percent
    return hook


def configure(h, hooks, shutdown_ms=None, idle=None):
    """hooks: {name: defer_ms}; idle: {name: defer_idle_percent} (absent:
    0, never sent early on idle CPU: these tests hold on defer_ms alone);
    the harness's config gets one http hook per name (and the metrics
    endpoint); returns ({name: HttpReceiver}, port)."""
    receivers = {name: HttpReceiver() for name in hooks}
    idle = idle or {}
    h.config["hooks"] = [http_hook(name, receivers[name], ms, idle.get(name, 0))
                         for name, ms in hooks.items()]
    h.config["engine"]["batch_size"] = BATCH
    if shutdown_ms is not None:
        h.config["engine"]["shutdown_timeout_ms"] = shutdown_ms
    port = free_port()
    h.config["http"] = {"listen": "127.0.0.1:%d" % port}
    return receivers, port


def exact_problems(name, receiver, oracle):
    """What an operator checks on the receiving end: every trigger the oracle
    expects (right bodies, each side in order), nothing else, none twice."""
    got = list(receiver.delivered)
    problems = problems_of(name, got, oracle)
    twice = [tid for tid, n in collections.Counter(b["event_data"]["id"] for b in got).items()
             if n > 1]
    if twice:
        problems.append("%s: %d triggers received more than once (%s ...)" % (
            name, len(twice), twice[0]))
    return problems


def hook_stream_len(h, name):
    """The hook's backlog in Redis: the triggers in the stream PREFIX{hook:NAME}."""
    return hook_backlog(h.redis, "%s{hook:%s}" % (h.names.prefix, name))


def test_a_backlog_defers_a_hook_until_the_sources_are_through(harness, daemons):
    """A Kafka backlog produced before the daemon starts; two http hooks on
    the same triggers, `now` (defer_ms 0) and `later` (defer_ms 600000).

    While the backlog drains `later` holds its triggers and `now` sends
    them: at the last moment the committed offsets are seen still behind,
    `later` has received less than half of what `now` has, and its backlog
    gauge is the larger. Once every offset is committed (the source idle),
    `later` receives everything within seconds (not defer_ms: the hold ends
    with the backlog), and both hooks hold exactly the oracle's triggers.

    A third hook, `spare`, is held as `later` but with defer_idle_percent 1:
    it sends whenever the machine's CPU was at least 1% idle over the last
    100 ms. When the machine was idle at least 5% of the drain (the test
    reads /proc/stat as the daemon does), `spare` received triggers while
    the backlog drained, where `later` holds; it too ends exact."""
    h = harness(kafka=True)
    receivers, port = configure(h, {"now": 0, "later": FAR, "spare": FAR}, idle={"spare": 1})
    now, later, spare = receivers["now"], receivers["later"], receivers["spare"]
    try:
        h.feed_kafka(make_stream(10000, seed=301, clusters=list(range(16)), tag="df"))
        want = len(h.oracle.triggers)
        d = h.daemon(daemons).start()
        t0 = time.monotonic()
        cpu0 = machine_cpu()
        spare_during = 0
        # samples taken before a look at the committed offsets that found
        # them still behind: the drain was going on at that moment; the one
        # where `now` had received the most is compared
        during, looks, deadline = None, 0, time.monotonic() + 120
        while True:
            looks += 1
            h.check_alive()
            sample = (len(now.delivered), len(later.delivered),
                      metric(port, "relationd_hook_backlog", "now"),
                      metric(port, "relationd_hook_backlog", "later"))
            got_spare = len(spare.delivered)
            lag = h.lag()
            if lag == 0:
                break
            spare_during = max(spare_during, got_spare)
            if during is None or sample[0] >= during[0]:
                during = sample
            assert time.monotonic() < deadline, "the backlog not committed within 120 s: %s" % (
                h.status())
        idle_at = time.monotonic()
        cpu1 = machine_cpu()
        idle_share = (cpu1[1] - cpu0[1]) / max(1, cpu1[0] - cpu0[0])
        print("%d events, %d triggers: committed after %.1f s (%d looks); the machine idle "
              "%.2f of it; spare received %d meanwhile" % (
                  len(h.fed_ids), want, idle_at - t0, looks, idle_share, spare_during))
        assert during is not None, "the backlog was committed before it was seen"
        got_now, got_later, backlog_now, backlog_later = during
        print("during the drain: now %d, later %d of %d triggers; backlogs now %s, later %s"
              % (got_now, got_later, want, backlog_now, backlog_later))
        assert got_now > 0, "nothing reached the hook now while the backlog drained: %r" % (during,)
        assert got_later < got_now / 2, (during, want)
        assert backlog_later > backlog_now, (during, want)
        if idle_share >= 0.05:
            assert spare_during > 0, (
                "spare (defer_idle_percent 1) received nothing while the backlog drained, "
                "with the machine %.2f idle" % idle_share)
        # the source is idle: `later` catches up within seconds
        wait_until(lambda: len(later.delivered) >= want, timeout=45, interval=0.05,
                   message=lambda: "later: %d of %d triggers, %.1f s after the last commit\n%s"
                   % (len(later.delivered), want, time.monotonic() - idle_at, d.log_tail()))
        print("later caught up %.2f s after the offsets were seen committed"
              % (time.monotonic() - idle_at))
        wait_until(lambda: len(now.delivered) >= want, timeout=20, message=d.log_tail)
        wait_until(lambda: len(spare.delivered) >= want, timeout=20, message=d.log_tail)
        time.sleep(0.5)             # anything doubled would come now
        for name, r in receivers.items():
            problems = exact_problems(name, r, h.oracle.triggers)
            assert not problems, "\n".join(problems[:12])
        assert not h.state_diff(), h.state_diff()
        for name in receivers:
            wait_until(lambda: metric(port, "relationd_hook_backlog", name) == 0, timeout=10)
            assert metric(port, "relationd_hook_delivered_total", name) == want
        assert d.stop() == 0, d.log_tail()
    finally:
        for r in receivers.values():
            r.stop()


def test_sigterm_during_a_deferred_backlog_delivers_everything_at_once(harness, daemons):
    """A hook with defer_ms 600000 and a Kafka backlog being drained, its
    triggers held (its backlog stream not empty); SIGTERM: the daemon exits
    0 within its drain deadline (engine.shutdown_timeout_ms) and leaves the
    hook's backlog empty: every trigger of what it applied was sent, without
    waiting for defer_ms. A restart takes the rest of the backlog: the hook
    then holds exactly the oracle's triggers, none lost, none twice."""
    h = harness(kafka=True)
    receivers, _ = configure(h, {"held": FAR}, shutdown_ms=30000)
    held = receivers["held"]
    try:
        h.feed_kafka(make_stream(8000, seed=302, clusters=list(range(16)), tag="dt"))
        d = h.daemon(daemons).start()
        h.wait_progress(0.3)
        assert h.lag() > 0, "the backlog was drained before SIGTERM"
        assert hook_stream_len(h, "held") > 0, "no trigger held when SIGTERM came"
        before = len(held.delivered)
        t0 = time.monotonic()
        assert d.stop(timeout=60) == 0, d.log_tail()
        took = time.monotonic() - t0
        print("held: %d triggers received before SIGTERM, %d after; exit after %.1f s"
              % (before, len(held.delivered) - before, took))
        assert took < 30, "the drain took %.1f s, past its 30 s deadline" % took
        assert hook_stream_len(h, "held") == 0, "triggers left in the hook's backlog at exit"
        assert len(held.delivered) > before
        d.start()
        wait_until(lambda: h.lag() == 0 and not exact_problems("held", held, h.oracle.triggers),
                   timeout=90, interval=0.25,
                   message=lambda: "\n".join(exact_problems("held", held, h.oracle.triggers)[:12])
                   + "\n" + d.log_tail())
        time.sleep(0.5)             # anything doubled would come now
        problems = exact_problems("held", held, h.oracle.triggers)
        assert not problems, "\n".join(problems[:12])
        assert not h.state_diff(), h.state_diff()
        assert d.stop() == 0, d.log_tail()
    finally:
        held.stop()


class TimedReceiver(HttpReceiver):
    """An HttpReceiver that also notes when each trigger of `delivered`
    first arrived (trigger id -> time.monotonic())."""

    def __init__(self, *args, **kw):
        self.arrived = {}
        self.stamped = 0            # entries of delivered already in arrived
        super().__init__(*args, **kw)

    def _answer(self, headers, ids, body):
        step = super()._answer(headers, ids, body)
        now = time.monotonic()
        with self.lock:
            for b in self.delivered[self.stamped:]:
                self.arrived.setdefault(b["event_data"]["id"], now)
            self.stamped = len(self.delivered)
        return step


def test_a_steady_flow_is_no_backlog(harness, daemons):
    """200 events/s for 6 s, produced while the daemon runs (10 every 50 ms:
    the daemon keeps up, its batches fill as messages arrive), to a hook
    with defer_ms 600000: each trigger arrives within 4 s of its event's
    production (were the flow counted as a backlog, the first triggers would
    be held at least until the flow ends, 6 s later)."""
    h = harness(kafka=True)
    held = TimedReceiver()
    h.config["hooks"] = [http_hook("held", held, FAR, 0)]
    h.config["engine"]["batch_size"] = BATCH
    try:
        d = h.daemon(daemons).start()
        d.wait_log("assigned 4 partitions")
        events = make_stream(1200, seed=303, clusters=list(range(16)), tag="ds")
        produced = {}
        start = time.monotonic()
        for i in range(0, len(events), 10):
            chunk = events[i:i + 10]
            h.feed_kafka(chunk, oracle=False)
            now = time.monotonic()
            for e in chunk:
                produced.setdefault(e.body["id"], now)
            pause = start + (i + 10) / 200 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        print("produced %d events in %.1f s" % (len(events), time.monotonic() - start))
        h.oracle.apply(events)
        oracle = h.oracle.triggers
        wait_until(lambda: not exact_problems("held", held, oracle), timeout=30, interval=0.1,
                   message=lambda: "\n".join(exact_problems("held", held, oracle)[:12])
                   + "\n" + d.log_tail())
        late = {tid: held.arrived[tid] - produced[oracle[tid]["event_data"]["source_event"]["id"]]
                for tid in oracle}
        worst = max(late.values())
        print("held: %d triggers, the latest %.2f s after its event (median %.2f s)" % (
            len(late), worst, sorted(late.values())[len(late) // 2]))
        assert worst < 4, sorted(late.items(), key=lambda kv: -kv[1])[:5]
        assert not h.state_diff(), h.state_diff()
        assert d.stop() == 0, d.log_tail()
    finally:
        held.stop()


def test_the_deliverers_run_nicer_than_the_daemon_never_idle_only(harness, daemons):
    """Each hook's deliverer is a thread named hook:<name> (ps -L, top -H),
    scheduled like the rest of the daemon (SCHED_OTHER, not SCHED_IDLE: a
    thread that runs only on an idle core could be held past its lease on a
    busy machine) 5 nice levels below the daemon's other threads."""
    h = harness(kafka=True)
    receivers, _ = configure(h, {"partner": 0, "crm": FAR})
    try:
        d = h.daemon(daemons).start()
        d.wait_log("assigned 4 partitions")

        def threads():
            out = {}
            task = "/proc/%d/task" % d.proc.pid
            for tid in os.listdir(task):
                try:
                    with open(os.path.join(task, tid, "stat")) as f:
                        stat = f.read()
                except FileNotFoundError:
                    continue  # a thread that ended meanwhile
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2:].split()
                # fields[0] is stat's field 3: nice is field 19, policy 41
                out.setdefault(comm, []).append((int(fields[16]), int(fields[38])))
            return out

        wait_until(lambda: {"hook:partner", "hook:crm"} <= set(threads()), timeout=10,
                   message=lambda: "threads: %s" % sorted(threads()))
        t = threads()
        main_nice = t["relationd"][0][0]
        for name in ("hook:partner", "hook:crm"):
            assert t[name] == [(main_nice + 5, 0)], (name, t[name], main_nice)
        assert d.stop() == 0, d.log_tail()
    finally:
        for r in receivers.values():
            r.stop()
