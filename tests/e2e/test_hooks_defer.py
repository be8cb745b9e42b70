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
import json
import time

from brokers import HttpReceiver, free_port, http_get, make_stream, wait_until
from test_hooks import metric, problems_of

BATCH = 64                  # engine.batch_size
FAR = 600000                # a defer_ms far longer than any run of this file


def http_hook(name, receiver, defer_ms):
    return {"name": name, "kind": "http", "url": "http://127.0.0.1:%d/hook" % receiver.port,
            "batch_size": 1000, "batch_ms": 50, "defer_ms": defer_ms}


def configure(h, hooks, shutdown_ms=None):
    """hooks: {name: defer_ms}; the harness's config gets one http hook per
    name (and the metrics endpoint); returns ({name: HttpReceiver}, port)."""
    receivers = {name: HttpReceiver() for name in hooks}
    h.config["hooks"] = [http_hook(name, receivers[name], ms) for name, ms in hooks.items()]
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
    """The hook's backlog in Redis: the stream PREFIX{hook:NAME}."""
    return h.redis.xlen("%s{hook:%s}" % (h.names.prefix, name))


def test_a_backlog_defers_a_hook_until_the_sources_are_through(harness, daemons):
    """A Kafka backlog produced before the daemon starts; two http hooks on
    the same triggers, `now` (defer_ms 0) and `later` (defer_ms 600000).

    While the backlog drains `later` holds its triggers and `now` sends
    them: at the last moment the committed offsets are seen still behind,
    `later` has received less than half of what `now` has, and its backlog
    gauge is the larger. Once every offset is committed (the source idle),
    `later` receives everything within seconds (not defer_ms: the hold ends
    with the backlog), and both hooks hold exactly the oracle's triggers."""
    h = harness(kafka=True)
    receivers, port = configure(h, {"now": 0, "later": FAR})
    now, later = receivers["now"], receivers["later"]
    try:
        h.feed_kafka(make_stream(10000, seed=301, clusters=list(range(16)), tag="df"))
        want = len(h.oracle.triggers)
        d = h.daemon(daemons).start()
        t0 = time.monotonic()
        # samples taken before a look at the committed offsets that found
        # them still behind: the drain was going on at that moment
        during, deadline = None, time.monotonic() + 120
        while True:
            h.check_alive()
            sample = (len(now.delivered), len(later.delivered),
                      metric(port, "relationd_hook_backlog", "now"),
                      metric(port, "relationd_hook_backlog", "later"))
            lag = h.lag()
            if lag == 0:
                break
            during = sample
            assert time.monotonic() < deadline, "the backlog not committed within 120 s: %s" % (
                h.status())
        idle_at = time.monotonic()
        print("%d events, %d triggers: committed after %.1f s" % (
            len(h.fed_ids), want, idle_at - t0))
        assert during is not None, "the backlog was committed before it was seen"
        got_now, got_later, backlog_now, backlog_later = during
        print("during the drain: now %d, later %d of %d triggers; backlogs now %s, later %s"
              % (got_now, got_later, want, backlog_now, backlog_later))
        assert got_later < got_now / 2, (during, want)
        assert backlog_later > backlog_now, (during, want)
        # the source is idle: `later` catches up within seconds
        wait_until(lambda: len(later.delivered) >= want, timeout=20, interval=0.05,
                   message=lambda: "later: %d of %d triggers, %.1f s after the last commit\n%s"
                   % (len(later.delivered), want, time.monotonic() - idle_at, d.log_tail()))
        print("later caught up %.2f s after the offsets were seen committed"
              % (time.monotonic() - idle_at))
        wait_until(lambda: len(now.delivered) >= want, timeout=20, message=d.log_tail)
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
