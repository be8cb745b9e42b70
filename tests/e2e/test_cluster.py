"""relationctl and relationd on a Redis Cluster of three primaries (started
by the fixture with `redis-cli --cluster create`): the same configuration
file, pointed at one node, gives the same statistics and triggers as on one
server; keys spread over every primary; slots moved while events flow
change nothing."""

import random

import pytest

import test_apply as A
from brokers import make_stream
from conftest import Relationctl
from redis_cluster import Cluster


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(primaries=3)
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
    cluster.flushall()
    return Relationctl(_At(cluster.url), tmp_path)


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


def test_resharding_while_relationctl_applies(cluster, cctl, crdb):
    """Every slot of one primary moves to another (`redis-cli --cluster
    reshard`, thousands of slots) while relationctl applies a stream in long
    runs: ASK, TRYAGAIN and MOVED are met and followed (the debug log says
    so), no run fails, every event counts once, and the statistics and keys
    equal the model's."""
    rng = random.Random(77)
    relations = [A.REL_SALES, A.REL_PEERS]
    cfg = cctl.config(relations, engine=dict(A.HUGE_TTL, dedup_ids=10000, batch_size=4,
                                             log_level="debug"))
    events = A.gen_events(rng, 60000, A.POOLS)
    model = A.Model(relations)
    primaries = cluster.primaries_now()
    mover = cluster.reshard(primaries[0], primaries[1], cluster.slots_of(primaries[0]))
    followed, n = [], 0
    try:
        while n < len(events) and (n == 0 or mover.poll() is None):
            chunk = events[n:n + 10000]
            n += len(chunk)
            res = cctl.apply(cfg, chunk, timeout=300)
            assert res.returncode == 0, res.stderr[-2000:]
            assert A.summary(res)[3] == 0, res.summary
            followed += [e for e in res.errors if e.endswith('; following"')]
            for e in chunk:
                model.apply(e)
    finally:
        _, err = mover.communicate(timeout=300)
    assert mover.returncode == 0, err
    assert any(" MOVED " in e for e in followed), followed[:10]
    cluster.wait_ok()
    # the first primary serves no slot now, and holds no key
    after = cluster.keys_per_node()
    assert primaries[0].port not in after and sum(after.values()) > 0, after
    c = cluster.node_client(primaries[0])
    assert c.dbsize() == 0
    c.close()
    for rel in ("sales", "peers"):
        pa, pb = A.POOLS[rel]
        for side, pool in (("direct", pa), ("reverse", pb)):
            for prof in pool:
                assert A.canon(cctl.stats(cfg, rel, side, prof)) == \
                    A.canon(model.stats(rel, side, prof)), (rel, side, prof)
                A.check_redis_side(crdb, model, rel, side, prof)


def test_the_daemon_through_a_resharding(cluster, harness, daemons):
    """relationd with both sources on the cluster while every slot of a
    primary moves: the statistics equal the oracle's, every trigger arrives,
    no outbox entry is left."""
    cluster.flushall()
    h = harness(kafka=True, amqp=True, redis_server=cluster)
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


def test_a_primary_killed_and_restarted_mid_stream(harness, daemons):
    """A persistent cluster; the primary redis.url names is killed (kill -9)
    while events flow and started again: the daemon waits (the cluster is
    down meanwhile), then goes on; exact, every trigger delivered."""
    c = Cluster(primaries=3, persistent=True)
    try:
        c.start()
        h = harness(amqp=True, redis_server=c)
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
