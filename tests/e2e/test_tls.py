"""AMQP over TLS: the source and the hooks publisher on the broker's amqps://
listener (a certificate for localhost from the test's CA, see
brokers.make_certificates). The server's certificate and host name are
verified by default; a certificate from another CA is refused."""

import copy
import os
import time

from brokers import make_stream


def tls_config(h, rabbit, ca, client=False, verify=None):
    cfg = copy.deepcopy(h.config)
    tls = {"ca": os.path.join(rabbit.tls_dir, ca)}
    if client:
        tls.update(cert=os.path.join(rabbit.tls_dir, "client.pem"),
                   key=os.path.join(rabbit.tls_dir, "client.key"))
    if verify is not None:
        tls["verify"] = verify
    cfg["amqp"]["url"] = rabbit.tls_url
    cfg["amqp"]["tls"] = tls
    cfg["hooks"]["url"] = rabbit.tls_url
    cfg["hooks"]["tls"] = dict(tls)
    return cfg


def test_source_and_hooks_over_tls(harness, daemons, rabbit):
    """Events consumed and triggers published over amqps://, the hooks with a
    client certificate: everything arrives, as over plain AMQP."""
    h = harness(kafka=False, amqp=True)
    d = h.daemon(daemons, config=tls_config(h, rabbit, "ca.pem", client=True)).start()
    events = make_stream(400, seed=71, clusters=list(range(3)), tag="tls")
    h.feed_amqp(events)
    h.wait_done(timeout=90)
    h.check()
    assert d.stop() == 0, d.log_tail()


def test_a_certificate_from_another_ca_is_refused(harness, daemons, rabbit):
    """The broker's certificate does not chain to amqp.tls.ca: no connection,
    the log says why, nothing is consumed; with verify false (not for
    production) the same connection is made."""
    h = harness(kafka=False, amqp=True)
    d = h.daemon(daemons, config=tls_config(h, rabbit, "other-ca.pem")).start()
    events = make_stream(200, seed=72, clusters=list(range(2)), tag="tlsbad")
    h.feed_amqp(events)
    d.wait_log("down since")   # the hooks exchange, connected first, or the queue
    assert "SSL" in d.current_log() or "certificate" in d.current_log(), d.log_tail()
    time.sleep(1)
    assert h.applied() == 0
    assert d.stop() == 0, d.log_tail()
    d2 = h.daemon(daemons, config=tls_config(h, rabbit, "other-ca.pem", verify=False)).start()
    h.wait_done(timeout=90)
    h.check()
    assert d2.stop() == 0, d2.log_tail()
