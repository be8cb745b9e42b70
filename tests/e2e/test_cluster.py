"""relationctl and relationd on a Redis Cluster of three primaries (started
by the fixture with `redis-cli --cluster create`): the same configuration
file, pointed at one node, gives the same statistics and triggers as on one
server; keys spread over every primary; slots moved while events flow
change nothing. Each test runs through both engines (`redis.engine`
function and module). The tests on the shared cluster run first on one
started for the function, then on one started with the module loaded in
every node (a resharding empties a primary: each cluster takes each
resharding test once); the others start their own cluster per engine."""

import json
import random
import subprocess
import time
from types import SimpleNamespace

import pytest

import test_apply as A
from brokers import make_stream, wait_until
from conftest import ENGINES, RELATIONCTL, Relationctl
from redis_cluster import Cluster


@pytest.fixture(scope="module", params=ENGINES)
def cluster(request):
    """Three primaries, once per engine (`cluster.engine`, redis.engine), the
    module loaded in every node for the module's."""
    c = Cluster(primaries=3, module=request.param == "module")
    c.engine = request.param
    try:
        c.start()
    except Exception:
        c.stop()
        raise
    yield c
    c.stop()


class _At:
    def __init__(self, url):
        self.url = url


@pytest.fixture()
def cctl(cluster, tmp_path):
    """relationctl on the cluster, through the cluster's engine."""
    cluster.flushall()
    return Relationctl(_At(cluster.url), tmp_path, redis_engine=cluster.engine)


@pytest.fixture()
def crdb(cluster):
    c = cluster.client()
    yield c
    c.close()


@pytest.mark.parametrize("batch_size,pools", [(None, A.POOLS), (None, A.HOSTILE_POOLS)],
                         ids=["plain", "hostile-ids"])
def test_randomized_stream_matches_the_model_on_a_cluster(cluster, cctl, crdb, batch_size,
                                                           pools):
    """The engine's randomized model test (duplicates, redelivered suffixes,
    floats, thresholds, tombstones), unchanged, on the cluster."""
    A.test_randomized_stream_matches_the_model(cctl, crdb, batch_size, pools)
    spread = cluster.keys_per_node("rel:*")
    assert len(spread) == 3 and all(n > 0 for n in spread.values()), spread


def test_resharding_while_relationctl_applies(cluster, cctl, crdb, tmp_path):
    """Every slot of one primary moves to another (`redis-cli --cluster
    reshard`, thousands of slots) during one relationctl run fed events until
    the resharding is over: MOVED (and ASK or TRYAGAIN) are met and followed
    (the debug log says so), the run succeeds, every event counts once, and
    the statistics and keys equal the model's."""
    rng = random.Random(77)
    cfg, model = A.model_config(cctl, batch_size=4, log_level="debug")
    primaries = cluster.primaries_now()
    out_path, err_path = tmp_path / "triggers", tmp_path / "log"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        run = subprocess.Popen([RELATIONCTL, "-c", cfg, "apply", "-"], stdin=subprocess.PIPE,
                               stdout=out, stderr=err, text=True)
        mover = cluster.reshard(primaries[0], primaries[1], cluster.slots_of(primaries[0]))
        fed = 0
        try:
            while mover.poll() is None and fed < 400000:
                for e in A.gen_events(rng, 500):
                    e["id"] = "%s-%d" % (e["id"], fed)
                    fed += 1
                    model.apply(e)
                    run.stdin.write(json.dumps(e) + "\n")
                run.stdin.flush()
                time.sleep(0.05)
        finally:
            run.stdin.close()
            rc = run.wait(timeout=300)
            _, moved_err = mover.communicate(timeout=300)
    log = err_path.read_text().splitlines()
    assert mover.returncode == 0, moved_err
    assert rc == 0, log[-20:]
    a, d, st, inv = A.summary(SimpleNamespace(summary=log[-1], stderr="\n".join(log[-5:])))
    assert inv == 0 and a + d + st == fed, log[-1]
    followed = [line for line in log if line.endswith('; following"')]
    assert any(" MOVED " in line for line in followed), followed[:10]
    cluster.wait_ok()
    # the first primary serves no slot now, and holds no key
    after = cluster.keys_per_node()
    assert primaries[0].port not in after and sum(after.values()) > 0, after
    c = cluster.node_client(primaries[0])
    assert c.dbsize() == 0
    c.close()
    A.check_every_side(cctl, crdb, cfg, model)


def test_the_daemon_through_a_resharding(cluster, harness, daemons):
    """relationd with both sources on the cluster while every slot of a
    primary moves: the statistics equal the oracle's, every trigger arrives,
    no outbox entry is left."""
    cluster.flushall()
    h = harness(kafka=True, amqp=True, redis_server=cluster, redis_engine=cluster.engine)
    cfg = dict(h.config, engine=dict(h.config["engine"], log_level="debug"))
    d = h.daemon(daemons, config=cfg).start()
    events = make_stream(4000, seed=101, clusters=list(range(8)), tag="rs")
    kafka_events = [e for e in events if e.cluster < 4]
    amqp_events = [e for e in events if e.cluster >= 4]
    h.feed_kafka(kafka_events[:500])
    h.feed_amqp(amqp_events[:500])
    h.wait_progress(0.5)
    primaries = cluster.primaries_now()
    source = max(primaries, key=cluster.slots_of)
    target = [p for p in primaries if p is not source][0]
    mover = cluster.reshard(source, target, cluster.slots_of(source))
    try:
        for k in range(500, 2000, 250):
            h.feed_kafka(kafka_events[k:k + 250])
            h.feed_amqp(amqp_events[k:k + 250])
            h.wait_progress(0.9)
    finally:
        _, err = mover.communicate(timeout=300)
    assert mover.returncode == 0, err
    h.feed_kafka(kafka_events[2000:] + kafka_events[:100])   # the last 100 again
    h.feed_amqp(amqp_events[2000:])
    h.wait_done()
    h.check()
    assert source.port not in cluster.keys_per_node()
    assert "MOVED" in d.current_log() and "; following" in d.current_log()
    assert d.stop() == 0, d.log_tail()


def test_a_primary_killed_and_restarted_mid_stream(harness, daemons, engine):
    """A persistent cluster; the primary redis.url names is killed (kill -9)
    while events flow and started again: the daemon waits (the cluster is
    down meanwhile), then goes on; exact, every trigger delivered."""
    c = Cluster(primaries=3, persistent=True, module=engine == "module")
    try:
        c.start()
        h = harness(amqp=True, redis_server=c, redis_engine=engine)
        d = h.daemon(daemons).start()
        events = make_stream(1500, seed=103, clusters=[0, 1, 2, 3], tag="kr")
        h.feed_amqp(events[:500])
        h.wait_progress(0.3)
        victim = c.nodes[0]           # the node of redis.url: the others are asked
        victim.kill()
        h.feed_amqp(events[500:1000])
        d.wait_log("redis down since")
        victim.start()
        c.wait_ok()
        h.feed_amqp(events[1000:] + events[:50])
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        c.stop()


def test_a_manual_failover_mid_stream_with_wait_replicas(harness, daemons, engine):
    """Three primaries with a replica each, redis.wait_replicas 1: a replica
    takes over its primary (CLUSTER FAILOVER) while events flow; the daemon
    follows the new primary; exact, every trigger delivered."""
    import redis as redis_py
    c = Cluster(primaries=3, replicas=1, module=engine == "module")
    try:
        c.start()
        h = harness(amqp=True, redis_server=c, redis_engine=engine)
        cfg = dict(h.config, redis=dict(h.config["redis"], wait_replicas=1),
                   engine=dict(h.config["engine"], log_level="debug"))
        d = h.daemon(daemons, config=cfg).start()
        events = make_stream(1500, seed=107, clusters=[0, 1, 2, 3], tag="fo")
        h.feed_amqp(events[:600])
        h.wait_progress(0.4)
        primaries = c.primaries_now()
        replica = [n for n in c.nodes if n not in primaries][0]
        rc = redis_py.Redis(port=replica.port, decode_responses=True)
        assert rc.execute_command("CLUSTER", "FAILOVER") == "OK"
        wait_until(lambda: rc.info("replication")["role"] == "master", timeout=30)
        rc.close()
        h.feed_amqp(events[600:] + events[:40])
        h.wait_done()
        c.wait_ok()
        h.check()
        assert replica in c.primaries_now()
        assert d.stop() == 0, d.log_tail()
    finally:
        c.stop()


def test_wait_replicas_beyond_the_replicas_acknowledges_nothing(cluster, cctl):
    """redis.wait_replicas above the replicas a primary has: relationctl stops
    at the first batch, saying how many replicas acknowledged it (a primary
    emptied by a resharding may have become another's replica meanwhile)."""
    def replicas():
        """Each primary's replicas' states (in sync: "online")."""
        return [[v["state"] for k, v in cluster.node_client(n).info("replication").items()
                 if k.startswith("slave") and isinstance(v, dict)]
                for n in cluster.primaries_now()]
    # a replica still in its first sync is connected but acknowledges nothing
    wait_until(lambda: all(s == "online" for r in replicas() for s in r), timeout=60,
               message=lambda: "replicas not in sync: %s" % replicas())
    have = min(len(r) for r in replicas())
    cfg = cctl.config([A.REL_SALES, A.REL_PEERS], engine=dict(A.HUGE_TTL))
    with open(cfg) as f:
        doc = json.load(f)
    doc["redis"].update(wait_replicas=have + 1, timeout_ms=4000)  # WAIT 2 s: replicas under load
    with open(cfg, "w") as f:
        json.dump(doc, f)
    res = cctl.apply(cfg, A.gen_events(random.Random(5), 20))
    assert res.returncode != 0
    assert "redis WAIT: %d of %d replicas acknowledged the batch" % (have, have + 1) \
        in res.stderr, res.stderr


def test_edges_and_segment_on_the_cluster(cluster, cctl, crdb):
    """relationctl edges and segment read every primary: equal to the model."""
    import test_read as R
    cfg, events, model = A.model_stream(cctl, 4243, 2000)
    assert cctl.apply(cfg, events).returncode == 0
    for rel, exprs in R.EXPRS.items():
        pa, pb = A.POOLS[rel]
        for side, pool in (("direct", pa), ("reverse", pb)):
            for where, conds in exprs[:3]:
                out = R.segment(cfg, rel, side, where)
                assert out.returncode == 0, out.stderr
                assert set(out.stdout.split("\n")[:-1]) == \
                    R.model_segment(model, rel, side, conds, A.POOLS), (rel, side, where)
            for prof in pool:
                R.assert_edges_equal_the_model(R.edges(cfg, rel, side, prof), model,
                                               rel, side, prof)
