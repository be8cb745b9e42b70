"""relationd's command line: --version, --check-config, and its lifecycle
against Redis: SIGHUP reloads (a broken file keeps the running one), SIGTERM
stops it with status 0."""

import json
import os
import signal
import subprocess
import time


from redis_server import free_port
from conftest import MODULE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIOND = os.environ.get("RELATIOND", os.path.join(REPO, "build", "relationd"))

GOOD = {"short": "rel", "database_a": "a", "database_b": "b",
        "properties": [{"short": "n", "type": "int", "save_amount": True}]}


def write(path, port, relations, **extra):
    doc = {"redis": {"url": "redis://127.0.0.1:%d/0" % port}, "relations": relations}
    doc.update(extra)
    path.write_text(json.dumps(doc))
    return str(path)


def test_version():
    out = subprocess.run([RELATIOND, "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("relationd ")


def test_check_config(tmp_path):
    ok = write(tmp_path / "ok.json", 6379, [GOOD])
    out = subprocess.run([RELATIOND, "-c", ok, "--check-config"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith(": ok (1 relation)"), out.stdout

    bad_rel = dict(GOOD, properties=[{"short": "n", "type": "int",
                                      "save_top": {"order": "desc", "limit": 21}}])
    bad = write(tmp_path / "bad.json", 6379, [bad_rel])
    out = subprocess.run([RELATIOND, "-c", bad, "--check-config"], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip() == "relationd: %s: relations[0].properties[0].save_top.limit: " \
                                 "must be 1..20" % bad

    typo = write(tmp_path / "typo.json", 6379, [GOOD], engine={"tombstone_ttl": 5})
    out = subprocess.run([RELATIOND, "-c", typo, "--check-config"], capture_output=True, text=True)
    assert out.returncode == 1
    assert "engine.tombstone_ttl: unknown key" in out.stderr

    # kafka.properties are checked by librdkafka itself
    hooks = {"url": "amqp://127.0.0.1"}
    kafka = {"brokers": "127.0.0.1:9092", "topics": ["t"], "dead_letter_topic": "d",
             "properties": {"session.timeout.ms": "6000", "security.protocol": "sasl_ssl",
                            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "relationd",
                            "sasl.password": "${RELATIOND_TEST_PW}",
                            "ssl.ca.location": "/etc/ssl/certs/ca-certificates.crt"}}
    good_kafka = write(tmp_path / "kafka.json", 6379, [GOOD], kafka=kafka, hooks=hooks)
    out = subprocess.run([RELATIOND, "-c", good_kafka, "--check-config"], capture_output=True,
                         text=True, env=dict(os.environ, RELATIOND_TEST_PW="pw"))
    assert out.returncode == 0, out.stderr
    for key, value, message in [("no.such.property", "1", "No such configuration property"),
                                ("session.timeout.ms", "soon", "Invalid value")]:
        bad_kafka = write(tmp_path / "badkafka.json", 6379, [GOOD], hooks=hooks,
                          kafka=dict(kafka, properties={key: value}))
        out = subprocess.run([RELATIOND, "-c", bad_kafka, "--check-config"],
                             capture_output=True, text=True,
                             env=dict(os.environ, RELATIOND_TEST_PW="pw"))
        assert out.returncode == 1
        assert out.stderr.startswith("relationd: %s: kafka.properties.%s: " % (bad_kafka, key)), \
            out.stderr
        assert message in out.stderr

    env = dict(os.environ, RELATIOND_TEST_PORT="6390")
    envfile = tmp_path / "env.json"
    envfile.write_text(json.dumps({"redis": {"url": "redis://127.0.0.1:${RELATIOND_TEST_PORT}/0"},
                                   "relations": []}))
    out = subprocess.run([RELATIOND, "-c", str(envfile), "--check-config"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([RELATIOND, "-c", str(envfile), "--check-config"], capture_output=True,
                         text=True)
    assert out.returncode == 1
    assert "redis.url: environment variable RELATIOND_TEST_PORT is not set" in out.stderr


def test_a_secret_in_a_file_others_can_read_is_warned_about(tmp_path):
    """A password written in the configuration file (not taken from the
    environment) while the file is readable by other users: a warning naming
    it and the fix; none once the file is private, or the secret comes from
    the environment."""
    env = dict(os.environ, RELATIOND_TEST_PW="s3cret")
    cases = [
        ({"hooks": {"url": "amqp://app:s3cret@127.0.0.1/"}}, "the password of hooks.url"),
        ({"kafka": {"brokers": "h:9092", "topics": ["t"], "dead_letter_topic": "d",
                    "properties": {"sasl.password": "s3cret"}},
          "hooks": {"url": "amqp://127.0.0.1/"}}, "kafka.properties.sasl.password"),
        # every one is named, not only the first
        ({"redis": {"url": "redis://:s3cret@127.0.0.1:6379/0"},
          "amqp": {"url": "amqp://app:s3cret@127.0.0.1/", "queue": "q",
                   "dead_letter_exchange": "x"},
          "hooks": {"url": "amqp://app:s3cret@127.0.0.1/"},
          "http": {"listen": "127.0.0.1:1", "token": "s3cret"},
          "kafka": {"brokers": "h:9092", "topics": ["t"], "dead_letter_topic": "d",
                    "properties": {"sasl.password": "s3cret",
                                   "ssl.key.password": "${RELATIOND_TEST_PW}"}}},
         "the password of redis.url, the password of amqp.url, the password of hooks.url, "
         "http.token and kafka.properties.sasl.password"),
    ]
    for extra, what in cases:
        path = write(tmp_path / "secret.json", 6379, [GOOD], **extra)
        os.chmod(path, 0o644)
        out = subprocess.run([RELATIOND, "-c", path, "--check-config"], capture_output=True,
                             text=True, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stderr == ("relationd: warning: %s is readable by other users and holds %s "
                              "(mode 0644): chmod 600 it, or take the secret from the "
                              "environment (\"${VAR}\")\n" % (path, what)), out.stderr
        assert "s3cret" not in out.stderr + out.stdout
        os.chmod(path, 0o600)
        out = subprocess.run([RELATIOND, "-c", path, "--check-config"], capture_output=True,
                             text=True, env=env)
        assert out.returncode == 0 and out.stderr == "", out.stderr
    path = write(tmp_path / "env.json", 6379, [GOOD],
                 hooks={"url": "amqp://app:${RELATIOND_TEST_PW}@127.0.0.1/"})
    os.chmod(path, 0o644)
    out = subprocess.run([RELATIOND, "-c", path, "--check-config"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_check_config_refuses_what_would_fail_at_start(tmp_path):
    """--check-config (run by the unit before the daemon starts) refuses a
    kafka.properties value that would lose a guarantee (acks below all: a
    dead letter could be lost after its offset is committed) and a TLS file
    the daemon could not read, naming the setting, the path and why (before:
    "ok", then the daemon exited 1 at start, or ran with acks=0)."""
    hooks = {"url": "amqp://127.0.0.1"}
    kafka = {"brokers": "127.0.0.1:9092", "topics": ["t"], "dead_letter_topic": "d"}
    missing = str(tmp_path / "client.key")
    cases = [
        (dict(kafka=dict(kafka, properties={"acks": "0"}), hooks=hooks),
         "kafka.properties.acks: must be all (or -1): an event's offset is committed once its "
         "dead letter is acknowledged"),
        (dict(kafka=dict(kafka, properties={"request.required.acks": 1}), hooks=hooks),
         "kafka.properties.request.required.acks: must be all (or -1)"),
        (dict(kafka=dict(kafka, properties={"security.protocol": "ssl",
                                            "ssl.key.location": missing}), hooks=hooks),
         "kafka.properties.ssl.key.location: cannot read %s: No such file or directory"
         % missing),
        (dict(kafka=dict(kafka, properties={"ssl.ca.location": str(tmp_path)}), hooks=hooks),
         None),
        (dict(kafka=dict(kafka, properties={"ssl.certificate.location": str(tmp_path)}),
              hooks=hooks),
         "kafka.properties.ssl.certificate.location: %s is not a regular file" % tmp_path),
        (dict(hooks={"url": "amqps://127.0.0.1", "tls": {"ca": missing}}),
         "hooks.tls.ca: cannot read %s: No such file or directory" % missing),
    ]
    for extra, message in cases:
        path = write(tmp_path / "c.json", 6379, [GOOD], **extra)
        out = subprocess.run([RELATIOND, "-c", path, "--check-config"], capture_output=True,
                             text=True)
        if message is None:
            assert out.returncode == 0, out.stderr
            continue
        assert out.returncode == 1, (extra, out.stdout)
        assert out.stderr.startswith("relationd: %s: %s" % (path, message)), out.stderr
        assert out.stdout == ""


def test_check_config_reads_the_files_as_the_daemons_user():
    """A key file the daemon's user cannot read (owned by root, mode 0600)
    is refused by --check-config run as that user, with the setting, the
    path and "Permission denied" (before: "ok", then the start failed)."""
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"):
        import pytest
        pytest.skip("needs root and setpriv to run as another user")
    import shutil
    import tempfile
    where = tempfile.mkdtemp(prefix="relationd-user-")
    try:
        os.chmod(where, 0o755)
        key = os.path.join(where, "client.key")
        with open(key, "w") as f:
            f.write("not a key\n")
        os.chmod(key, 0o600)
        path = os.path.join(where, "c.json")
        with open(path, "w") as f:
            json.dump({"redis": {"url": "redis://127.0.0.1:6379/0"}, "relations": [GOOD],
                       "hooks": {"url": "amqp://127.0.0.1"},
                       "kafka": {"brokers": "127.0.0.1:9092", "topics": ["t"],
                                 "dead_letter_topic": "d",
                                 "properties": {"ssl.key.location": key}}}, f)
        os.chmod(path, 0o644)
        as_nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        out = subprocess.run(as_nobody + [RELATIOND, "-c", path, "--check-config"],
                             capture_output=True, text=True)
        assert out.returncode == 1, out.stdout + out.stderr
        assert out.stderr == ("relationd: %s: kafka.properties.ssl.key.location: cannot read "
                              "%s: Permission denied\n" % (path, key)), out.stderr
        os.chmod(key, 0o644)
        out = subprocess.run(as_nobody + [RELATIOND, "-c", path, "--check-config"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    finally:
        shutil.rmtree(where)


def wait_for(path, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("%r not in the log:\n%s" % (text, path.read_text()))


def test_reload_and_stop(server, tmp_path):
    cfg = tmp_path / "relationd.json"
    write(cfg, server.port, [GOOD])
    log = tmp_path / "relationd.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen([RELATIOND, "-c", str(cfg)], stderr=logf)
    try:
        wait_for(log, "ready: 1 relation,")
        write(cfg, server.port, [dict(GOOD, short="Bad")])
        proc.send_signal(signal.SIGHUP)
        wait_for(log, "reload refused, keeping the running configuration")
        assert "relations[0].short: must match [a-z][a-z0-9_]{0,63}" in log.read_text()
        write(cfg, server.port, [GOOD, dict(GOOD, short="other")])
        proc.send_signal(signal.SIGHUP)
        wait_for(log, "2 relations")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_check_config_connect(tmp_path, server, rabbit, kafka, kafka_topics):
    """--check-config --connect: each server answers, one line each; a server
    that does not (here Redis on a closed port, a topic that does not exist)
    is named and the status is 1."""
    hooks = {"url": rabbit.url, "exchange": "relation.hooks"}
    amqp = {"url": rabbit.url, "queue": "q", "dead_letter_exchange": "dlx"}
    kafka_section = {"brokers": kafka.bootstrap, "topics": [kafka_topics[0]],
                     "dead_letter_topic": kafka_topics[1]}
    good = write(tmp_path / "good.json", server.port, [GOOD], hooks=hooks, amqp=amqp,
                 kafka=kafka_section)
    os.chmod(good, 0o600)
    out = subprocess.run([RELATIOND, "-c", good, "--check-config", "--connect"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # redis.engine auto: the module, which the session's server has loaded when it is built
    engine = "module" if os.path.exists(MODULE) else "function"
    # the hook's line (tests/e2e/test_hooks_config.py), then each connection
    assert lines[1].startswith("hook default: amqp topic exchange relation.hooks at amqp://")
    assert lines[2:] == ["redis 127.0.0.1:%d: ok, engine %s" % (server.port, engine),
                         "amqp: ok (logged in)",
                         "hook default: ok (logged in, exchange declared)",
                         "kafka: ok (%d broker%s, 1 topic found)"
                         % (kafka.brokers, "" if kafka.brokers == 1 else "s")], out.stdout

    bad = write(tmp_path / "bad.json", free_port(), [GOOD], hooks=hooks, amqp=amqp,
                kafka=dict(kafka_section, topics=["no-such-topic"]))
    os.chmod(bad, 0o600)
    out = subprocess.run([RELATIOND, "-c", bad, "--check-config", "--connect"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "Connection refused" in out.stderr
    assert "topic no-such-topic does not exist" in out.stderr
    assert "amqp: ok (logged in)" in out.stdout


def test_check_config_connect_names_redis_url_on_a_refusal(tmp_path, server, rdb):
    """--check-config --connect with a password Redis refuses, or a database
    it does not have: a configuration error naming redis.url, never the
    password, status 1."""
    rdb.execute_command("ACL", "SETUSER", "checker", "on", ">right-secret", "~*", "+@all")
    try:
        cases = [("redis://checker:wrong-secret@127.0.0.1:%d/0" % server.port, "WRONGPASS"),
                 ("redis://127.0.0.1:%d/99" % server.port, "DB index is out of range")]
        for url, code in cases:
            path = tmp_path / "refused.json"
            path.write_text(json.dumps({"redis": {"url": url}, "relations": [GOOD]}))
            os.chmod(path, 0o600)
            out = subprocess.run([RELATIOND, "-c", str(path), "--check-config", "--connect"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 1, out
            assert "relationd: redis.url: redis " in out.stderr and code in out.stderr, out.stderr
            assert "wrong-secret" not in out.stderr + out.stdout
    finally:
        rdb.execute_command("ACL", "DELUSER", "checker")


def test_check_config_connect_on_a_redis_still_loading_says_so(tmp_path):
    """--check-config --connect while Redis loads its data (every command
    answered LOADING): status 1, the server named as not ready yet; not a
    configuration error about redis.engine (the module is loaded, the
    server cannot say so yet)."""
    from redis_server import with_data_to_load
    server = with_data_to_load(module=True, delay_us=200)
    try:
        server.kill()
        server.start(wait_loaded=False)
        path = tmp_path / "loading.json"
        path.write_text(json.dumps({"redis": {"url": "redis://127.0.0.1:%d/0" % server.port,
                                              "engine": "module"}, "relations": [GOOD]}))
        out = subprocess.run([RELATIOND, "-c", str(path), "--check-config", "--connect"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1, out
        assert "redis 127.0.0.1:%d: LOADING" % server.port in out.stderr, out.stderr
        assert "not ready yet" in out.stderr, out.stderr
        assert "redis.engine" not in out.stderr, out.stderr
    finally:
        server.stop()

