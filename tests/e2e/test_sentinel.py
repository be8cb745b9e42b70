"""relationd with Redis Sentinel (redis.sentinels, redis.master_name): the
primary is asked of the sentinels, and asked again after a failover; through
both engines (`redis.engine`), the primary and the replica loading the
module for the module's run."""

from brokers import make_stream, wait_until
from redis_sentinel import MASTER, Sentinels


def test_a_sentinel_failover_mid_stream(harness, daemons, engine):
    """SENTINEL FAILOVER while events flow: the old primary turns replica
    (READONLY), the daemon asks the sentinels again and goes on with the new
    one; exact, every trigger delivered."""
    s = Sentinels(module=engine == "module")
    try:
        s.start()
        # the checks read the replica, the primary once the failover is done
        h = harness(amqp=True, redis_server=s.replica, redis_engine=engine)
        cfg = dict(h.config, redis=dict(h.config["redis"], sentinels=s.addrs, master_name=MASTER))
        d = h.daemon(daemons, config=cfg).start()
        events = make_stream(1200, seed=109, clusters=[0, 1, 2, 3], tag="sn")
        h.feed_amqp(events[:500])
        h.wait_progress(0.3)
        assert s.failover() == "OK"
        wait_until(lambda: s.role(s.replica) == "master" and s.role(s.primary) == "slave",
                   timeout=60)
        h.feed_amqp(events[500:] + events[:30])
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        s.stop()
