"""RabbitMQ as operators provision it: a user without the configure
permission, queues and exchanges declared beforehand (quorum queues among
them), and the refusals that waiting will not cure named as configuration
errors, still retried so that they can be repaired live."""

import copy

from brokers import declare_source, make_stream


def limited_url(rabbit, user, password):
    return "amqp://%s:%s@127.0.0.1:%d/%%2f" % (user, password, rabbit.port)


def test_a_user_without_configure_permission_uses_what_exists(harness, daemons, rabbit):
    """amqp.declare false: the queue and the dead-letter exchange must exist
    and are used as they are; hooks.declare left true: the declare refused
    (403), the existing hooks exchange is enough. Everything arrives."""
    rabbit.ctl("add_user", "limited", "pw1")
    try:
        rabbit.ctl("set_permissions", "-p", "/", "limited", "^$", ".*", ".*")
        h = harness(kafka=False, amqp=True)   # declares the queue and the exchanges
        cfg = copy.deepcopy(h.config)
        cfg["amqp"]["url"] = limited_url(rabbit, "limited", "pw1")
        cfg["amqp"]["declare"] = False
        cfg["hooks"]["url"] = limited_url(rabbit, "limited", "pw1")
        events = make_stream(400, seed=61, clusters=list(range(3)), tag="pv")
        d = h.daemon(daemons, config=cfg).start()
        h.feed_amqp(events)
        h.wait_done(timeout=90)
        h.check()
        assert "403" not in d.current_log(), d.log_tail()
        assert d.stop() == 0, d.log_tail()
    finally:
        rabbit.ctl("delete_user", "limited")


def test_a_queue_declared_otherwise_is_a_named_configuration_error(harness, daemons, rabbit):
    """The queue exists without x-dead-letter-exchange: RabbitMQ refuses the
    daemon's declare (406). The log says it is a configuration error and what
    to do; the daemon keeps retrying, and once the queue is declared as it
    should be, the events flow."""
    h = harness(kafka=False, amqp=True)
    conn = rabbit.connection()
    ch = conn.channel()
    ch.queue_delete(h.names.queue)
    ch.queue_declare(h.names.queue, durable=True)
    conn.close()
    d = h.daemon(daemons).start()
    d.wait_log("406 PRECONDITION_FAILED")
    log = d.current_log()
    assert "a configuration error: it exists with other settings" in log, d.log_tail()
    assert "amqp.declare" in log
    assert d.running(), d.log_tail()
    # repaired live
    conn = rabbit.connection()
    ch = conn.channel()
    ch.queue_delete(h.names.queue)
    declare_source(ch, h.names)
    conn.close()
    d.wait_log("consuming queue", timeout=60)
    events = make_stream(300, seed=62, clusters=list(range(3)), tag="pq")
    h.feed_amqp(events)
    h.wait_done(timeout=90)
    h.check()
    assert d.stop() == 0, d.log_tail()


def test_a_quorum_queue_from_queue_arguments(harness, daemons, rabbit):
    """amqp.queue_arguments {"x-queue-type": "quorum"}: the daemon declares a
    quorum queue (with its dead-letter exchange) and consumes from it."""
    h = harness(kafka=False, amqp=True)
    conn = rabbit.connection()
    conn.channel().queue_delete(h.names.queue)  # the harness's classic one
    conn.close()
    cfg = copy.deepcopy(h.config)
    cfg["amqp"]["queue_arguments"] = {"x-queue-type": "quorum"}
    d = h.daemon(daemons, config=cfg).start()
    d.wait_log("consuming queue", timeout=60)
    types = dict(line.split("\t")[:2] for line in
                 rabbit.ctl("list_queues", "-q", "name", "type").splitlines() if "\t" in line)
    assert types.get(h.names.queue) == "quorum", types
    events = make_stream(300, seed=63, clusters=list(range(3)), tag="qq")
    h.feed_amqp(events)
    h.wait_done(timeout=90)
    h.check()
    assert d.stop() == 0, d.log_tail()


def test_a_wrong_password_is_a_named_configuration_error(harness, daemons, rabbit):
    """RabbitMQ refuses the login (403): the log names it as a configuration
    error and what to check, without the password; the daemon keeps trying."""
    h = harness(kafka=False, amqp=True)
    cfg = copy.deepcopy(h.config)
    cfg["amqp"]["url"] = limited_url(rabbit, "guest", "not-the-password")
    d = h.daemon(daemons, config=cfg).start()
    d.wait_log("403")
    log = d.current_log()
    assert "a configuration error: check the user's password" in log, d.log_tail()
    assert "not-the-password" not in log
    assert d.running(), d.log_tail()
    assert d.stop() == 0, d.log_tail()
