"""Shared fixtures of the end-to-end tests.

- `redis_proc`: one private redis-server for the session, on a free loopback
  port, in a temporary directory, stopped by its own pid.
- `rdb`: a client of that server, FLUSHALL'd before the test.
- `ctl`: writes configuration files and runs `relationctl apply` / `stats`.
- `engine`: "function" then "module" (`redis.engine`): a test module that
  defines `ctl` on it runs each of its tests through both engines (the
  session's redis-server has the module loaded when it is built); `ctl`
  alone writes `redis.engine` "function", as before the module.
"""

import decimal
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest
import redis

from redis_server import MODULE, REPO  # noqa: F401 (MODULE: for the test modules)

RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))
ENGINES = ("function", "module")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisProcess:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="relationd-e2e-redis-")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir]
            + (["--loadmodule", MODULE] if os.path.exists(MODULE) else []),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start on port %d" % self.port)
            time.sleep(0.02)
        client.close()

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()          # signals this pid only
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_proc():
    server = RedisProcess()
    yield server
    server.stop()


@pytest.fixture()
def server(redis_proc):
    """The session's redis-server (a test module may define its own)."""
    return redis_proc


@pytest.fixture()
def rdb(redis_proc):
    client = redis_proc.client()
    client.flushall()
    yield client
    client.close()


def loads(text):
    """JSON with exact decimals: floats become decimal.Decimal."""
    return json.loads(text, parse_float=decimal.Decimal)


@dataclass
class ApplyResult:
    returncode: int
    stdout: str
    stderr: str
    triggers: list = field(default_factory=list)   # parsed bodies, in output order
    lines: list = field(default_factory=list)      # raw stdout lines, same order
    errors: list = field(default_factory=list)     # stderr lines

    @property
    def summary(self):
        return self.errors[-1] if self.errors else None


class Relationctl:
    def __init__(self, redis_proc, tmp_path, redis_engine="function"):
        self.redis_proc = redis_proc
        self.tmp_path = tmp_path
        self.redis_engine = redis_engine     # redis.engine; None: not written (auto)
        self.n = 0

    def config(self, relations, engine=None, **extra):
        """Writes a configuration file for the session's Redis; returns its path."""
        doc = {"redis": {"url": self.redis_proc.url}, "relations": relations}
        if self.redis_engine:
            doc["redis"]["engine"] = self.redis_engine
        if engine is not None:
            doc["engine"] = engine
        doc.update(extra)
        self.n += 1
        path = self.tmp_path / ("relationd-%d.json" % self.n)
        path.write_text(json.dumps(doc))
        return str(path)

    @staticmethod
    def _text(events):
        if isinstance(events, str):
            return events
        return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)

    def apply(self, cfg, events, timeout=120):
        """`relationctl -c CFG apply -` with the events (dicts or raw lines) on stdin."""
        out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", "-"], input=self._text(events),
                             capture_output=True, text=True, timeout=timeout)
        lines = [line for line in out.stdout.split("\n") if line != ""]
        return ApplyResult(out.returncode, out.stdout, out.stderr,
                           [loads(line) for line in lines], lines, out.stderr.splitlines())

    def stats(self, cfg, relation, side, profile):
        out = subprocess.run([RELATIONCTL, "-c", cfg, "stats", relation, side, str(profile)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, (relation, side, profile, out.stderr)
        return loads(out.stdout)


@pytest.fixture()
def ctl(redis_proc, tmp_path):
    return Relationctl(redis_proc, tmp_path)


@pytest.fixture(params=ENGINES)
def engine(request):
    """redis.engine: each test that uses it runs once per engine."""
    return request.param


# ---- Brokers and the daemon (see brokers.py) --------------------------------

import uuid  # noqa: E402

from brokers import Daemon, KafkaMock, RabbitMQ  # noqa: E402

# Partitions of the events topic of each test's Kafka mock broker.
KAFKA_PARTITIONS = 4


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, so that fixtures know in their
    teardown whether the test failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    return any(getattr(getattr(request.node, "rep_" + w, None), "failed", False)
               for w in ("setup", "call"))


@pytest.fixture(scope="session")
def rabbit():
    """A private rabbitmq-server for the session (about 5 s to start)."""
    server = RabbitMQ()
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture()
def kafka(names):
    """A Kafka mock broker of this test only, with its two topics (they cannot
    be created later): `events-<uid>` (4 partitions) and `dlq-<uid>`.

    Not one broker for the session with a pool of topics: librdkafka 2.0's
    mock cluster often misses a wakeup while creating a topic and then takes
    1 s for it (a pool of 96 topics took 0.02 to 37 s to start); two topics
    per test keep that small."""
    mock = KafkaMock(["events-%s:%d" % (names.uid, KAFKA_PARTITIONS), "dlq-%s" % names.uid])
    mock.start()
    mock.partitions = KAFKA_PARTITIONS
    mock.topic_pair = ("events-%s" % names.uid, "dlq-%s" % names.uid)
    yield mock
    mock.stop()


@pytest.fixture()
def kafka_topics(kafka):
    """(events topic with 4 partitions, dead-letter topic) of this test."""
    return kafka.topic_pair


class Names:
    """Unique names of one test: Redis key prefixes, AMQP queues and exchanges,
    Kafka group id."""

    def __init__(self):
        self.uid = uuid.uuid4().hex[:8]
        u = self.uid
        self.prefix = "t%s:" % u              # the daemon's redis.key_prefix
        self.oracle_prefix = "o%s:" % u       # relationctl's, for the expected results
        self.queue = "events-%s" % u          # amqp.queue
        self.dlx = "dlx-%s" % u               # amqp.dead_letter_exchange
        self.dlx_queue = "dlxq-%s" % u        # bound to the dlx by the test
        self.hooks_exchange = "hooks-%s" % u  # hooks.exchange
        self.hooks_queue = "hooksq-%s" % u    # bound with relation.# by the test
        self.group = "g-%s" % u               # kafka.group_id


@pytest.fixture()
def names():
    return Names()


@pytest.fixture()
def daemons(request, tmp_path):
    """A factory of `Daemon`s (not started). At the end each one still running
    is stopped (SIGTERM, then SIGKILL); on failure their logs are printed; any
    sanitizer report in a log fails the test."""
    made = []

    def make(config, name=None):
        d = Daemon(tmp_path, config, name or "relationd-%d" % len(made))
        made.append(d)
        return d

    yield make
    for d in made:
        if d.running():
            try:
                d.stop(timeout=30)
            except AssertionError:
                pass
            d.kill()
    if _failed(request):
        for d in made:
            print(d.log_tail(200))
    reports = [d.name for d in made
               if "ERROR: AddressSanitizer" in d.log() or "ERROR: LeakSanitizer" in d.log()
               or "runtime error:" in d.log()]
    if reports:
        pytest.fail("sanitizer reports in the log of %s:\n%s" % (
            ", ".join(reports), "\n".join(d.log_tail(200) for d in made if d.name in reports)))


@pytest.fixture()
def harness(request, tmp_path, names, rabbit, redis_proc, rdb):
    """A factory of brokers.Harness for this test (the session's Redis, RabbitMQ
    and, with kafka=True, the Kafka mock and a fresh topic pair). With
    redis_server (a redis_server.Server, or a redis_cluster.Cluster), the
    daemon uses that server (and redis_url, when given, to reach it) while
    the oracle stays on the session's."""
    from brokers import Harness
    made = []

    def make(kafka=False, amqp=False, redis_server=None, **kw):
        k = topics = None
        if kafka:
            k = request.getfixturevalue("kafka")
            topics = request.getfixturevalue("kafka_topics")
        if redis_server is not None and hasattr(redis_server, "primaries_now"):
            # a redis_cluster.Cluster
            kw.setdefault("redis_client", redis_server.client())
            kw.setdefault("redis_url", redis_server.url)
            kw.setdefault("oracle_client", rdb)
            kw.setdefault("oracle_url", redis_proc.url)
        elif redis_server is not None:
            import redis
            kw.setdefault("redis_client", redis.Redis(port=redis_server.port,
                                                      password=redis_server.password))
            kw.setdefault("redis_url", "redis://127.0.0.1:%d/0" % redis_server.port)
            kw.setdefault("oracle_client", rdb)
            kw.setdefault("oracle_url", redis_proc.url)
        kw.setdefault("redis_client", rdb)
        kw.setdefault("redis_url", redis_proc.url)
        h = Harness(tmp_path, names, rabbit, kafka=k, topics=topics, amqp=amqp, **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
