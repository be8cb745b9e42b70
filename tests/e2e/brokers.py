"""Brokers and the daemon for the end-to-end tests, each on free loopback
ports, in a temporary directory, stopped by its own pid.

- `RabbitMQ`: a private rabbitmq-server (run as the `rabbitmq` user) with its
  own epmd; `restart()` keeps the ports and the data directory, so durable
  queues and persistent messages survive.
- `KafkaMock`: the `kafka_mock` helper (librdkafka's mock cluster).
- `Daemon`: `relationd -c FILE` with its log in a file.
- `HttpReceiver`: an http hook's endpoint in this process, answering from a
  script or a mode, recording every request; `verify_signature` checks a
  request's Standard Webhooks signature.
- `wait_until`: polls a condition with a deadline.
"""

import base64
import collections
import contextlib
import hashlib
import hmac
import http.server
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import layout2

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIOND = os.environ.get("RELATIOND", os.path.join(REPO, "build", "relationd"))
RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))
KAFKA_MOCK = os.environ.get("KAFKA_MOCK", os.path.join(REPO, "build", "kafka_mock"))
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"



def http_get(port, path):
    """(status, body) of GET path on 127.0.0.1:port; (None, None) while
    nothing listens."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None, None

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect((host, port))
            return True
        except OSError:
            return False


def die_with_parent():
    """preexec_fn: SIGTERM this child when the test process dies (so that a
    killed pytest leaves no server behind)."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def group_members(pgid):
    """The live processes whose process group is pgid."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(name))
    return found


class Abort(AssertionError):
    """Raised by a condition of wait_until to stop waiting at once."""


def wait_until(cond, timeout=60.0, interval=0.05, message=None):
    """Calls cond() every `interval` s until it returns a true value (returned)
    or `timeout` s passed (AssertionError with `message`, or a callable's
    result, and the last value). Exceptions of cond() count as false, except
    Abort."""
    deadline = time.monotonic() + timeout
    last, error = None, None
    while True:
        try:
            last = cond()
            error = None
            if last:
                return last
        except Abort:
            raise
        except Exception as e:     # noqa: BLE001 - the condition may fail while not ready
            error = e
        if time.monotonic() > deadline:
            try:
                text = message() if callable(message) else message
            except Exception as e:     # noqa: BLE001 - the timeout is the news
                text = "(the status could not be read: %r)" % e
            raise AssertionError("timed out after %.0f s: %s (last value %r%s)" % (
                timeout, text or getattr(cond, "__name__", "condition"), last,
                ", last error %r" % error if error else ""))
        time.sleep(interval)


def _signal_and_wait(pid, sig, timeout, popen=None):
    """Sends sig to pid, waits for it to go; SIGKILL after timeout. Returns
    True if it went within timeout."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None and popen.pid == pid:
            if popen.poll() is not None:
                return True
        elif not pid_alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if popen is not None and popen.pid == pid:
        popen.wait()
    return False


def make_certificates(d, owner):
    """A test CA (ca.pem), a server certificate for localhost signed by it
    (server.pem, server.key: readable by the broker's user), a client
    certificate (client.pem, client.key) and a CA nobody trusts (other-ca.pem)."""
    os.makedirs(d, exist_ok=True)

    def ssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    for ca in ("ca", "other-ca"):
        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=relationd test %s" % ca, "-keyout", ca + ".key", "-out", ca + ".pem")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    for name in ("server", "client"):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", name + ".key", "-out", name + ".csr")
        ssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", name + ".pem")
    os.chmod(d, 0o755)
    for f in os.listdir(d):
        os.chown(os.path.join(d, f), owner.pw_uid, owner.pw_gid)
        os.chmod(os.path.join(d, f), 0o644)


class RabbitMQ:
    """A private rabbitmq-server on 127.0.0.1.

    Runs /usr/lib/rabbitmq/bin/rabbitmq-server directly as the `rabbitmq`
    user (the shell script execs into erl, then beam.smp: the Popen pid is the
    VM's pid), with its own epmd (run by us, in the foreground, on a free
    port; the VM is told not to start one), its own node name, distribution
    port, AMQP port, data and log directories, and no plugins."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="relationd-rabbit-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.nodename = "rel%d@localhost" % self.port
        self.proc = None
        self.epmd = None
        self.pw = pwd.getpwnam("rabbitmq")
        for sub in ("mnesia", "log", "home"):
            path = os.path.join(self.dir, sub)
            os.makedirs(path, exist_ok=True)
            os.chown(path, self.pw.pw_uid, self.pw.pw_gid)
        self.tls_port = free_port()
        self.tls_dir = os.path.join(self.dir, "tls")
        make_certificates(self.tls_dir, self.pw)
        self.config_file = os.path.join(self.dir, "rabbitmq.conf")
        with open(self.config_file, "w") as f:
            f.write("listeners.tcp.1 = 127.0.0.1:%d\n" % self.port)
            # amqps:// on tls_port: a certificate for localhost from the test CA
            f.write("listeners.ssl.default = 127.0.0.1:%d\n" % self.tls_port)
            f.write("ssl_options.cacertfile = %s\n" % os.path.join(self.tls_dir, "ca.pem"))
            f.write("ssl_options.certfile = %s\n" % os.path.join(self.tls_dir, "server.pem"))
            f.write("ssl_options.keyfile = %s\n" % os.path.join(self.tls_dir, "server.key"))
            f.write("ssl_options.verify = verify_peer\n")
            f.write("ssl_options.fail_if_no_peer_cert = false\n")
            f.write("loopback_users = none\n")
            f.write("disk_free_limit.absolute = 10MB\n")
            f.write("log.console = false\n")
            f.write("log.file.level = info\n")
        self.plugins_file = os.path.join(self.dir, "enabled_plugins")
        with open(self.plugins_file, "w") as f:
            f.write("[].\n")
        self.pid_file = os.path.join(self.dir, "mnesia", "rabbit.pid")
        self.vm_pids = set()

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d/%%2f" % self.port

    @property
    def tls_url(self):
        return "amqps://guest:guest@localhost:%d/%%2f" % self.tls_port

    def params(self):
        import pika
        return pika.URLParameters(self.url + "?heartbeat=0&connection_attempts=1"
                                  "&socket_timeout=5&blocked_connection_timeout=30")

    def connection(self):
        import pika
        return pika.BlockingConnection(self.params())

    def _env(self):
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.path.join(self.dir, "home"),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": self.config_file,
            "RABBITMQ_ENABLED_PLUGINS_FILE": self.plugins_file,
            "RABBITMQ_PID_FILE": self.pid_file,
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.dir, "advanced.config"),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_START_ARGS": "-start_epmd false "
                                          "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        return env

    def ctl(self, *args, timeout=60):
        """rabbitmqctl on this node (users, permissions); its output."""
        out = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.nodename] +
                             list(args), env=self._env(), capture_output=True, text=True,
                             timeout=timeout, preexec_fn=self._demote,
                             cwd=os.path.join(self.dir, "home"))
        assert out.returncode == 0, out.stderr + out.stdout
        return out.stdout

    @contextlib.contextmanager
    def disk_alarm(self):
        """A disk alarm inside the with block (the free-disk limit set above any
        disk, then back to the configured 10MB): RabbitMQ blocks publishers."""
        self.ctl("set_disk_free_limit", "100000GB")
        try:
            wait_until(lambda: "disk" in self.ctl("status").lower() and
                       "alarm" in self.ctl("status").lower(), timeout=30)
            yield
        finally:
            self.ctl("set_disk_free_limit", "10MB")

    def _demote(self):
        os.setgid(self.pw.pw_gid)
        os.setgroups([self.pw.pw_gid])
        os.setuid(self.pw.pw_uid)
        die_with_parent()      # after setuid, which clears it

    def start(self, timeout=90):
        env = self._env()
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = subprocess.Popen(
                [EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=self._demote)
            wait_until(lambda: port_open(self.epmd_port) or self.epmd.poll() is not None,
                       timeout=10, message="epmd on port %d" % self.epmd_port)
            if self.epmd.poll() is not None:
                raise RuntimeError("epmd did not start on port %d" % self.epmd_port)
        self.out = open(os.path.join(self.dir, "server.out"), "ab")
        self.proc = subprocess.Popen([RABBITMQ_SERVER], env=env, cwd=os.path.join(self.dir, "home"),
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, preexec_fn=self._demote,
                                     start_new_session=True)
        self.vm_pids.add(self.proc.pid)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with %s:\n%s" % (
                    self.proc.returncode, self.log_tail()))
            if port_open(self.port):
                try:
                    conn = self.connection()
                    conn.close()
                    break
                except Exception:      # noqa: BLE001 - still booting
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("rabbitmq-server did not accept AMQP connections on "
                                   "port %d:\n%s" % (self.port, self.log_tail()))
            time.sleep(0.1)
        try:
            with open(self.pid_file) as f:
                self.vm_pids.add(int(f.read().strip()))
        except (OSError, ValueError):
            pass

    def log_tail(self, n=40):
        text = ""
        for name in [os.path.join(self.dir, "server.out"),
                     os.path.join(self.dir, "log", self.nodename + ".log")]:
            try:
                with open(name, errors="replace") as f:
                    text += "==> %s\n%s\n" % (name, "".join(f.readlines()[-n:]))
            except OSError:
                pass
        return text

    def stop_server(self, timeout=60):
        """Stops the VM (SIGTERM to its own pid, then SIGKILL), keeps epmd and
        the data directory. rabbitmq-server runs in a process group of its
        own, whose id is its pid: a VM still booting, whose pid file is not
        written yet, goes with whatever else is left in that group."""
        pgid = None
        if self.proc is not None:
            pgid = self.proc.pid
            if self.proc.poll() is None:
                _signal_and_wait(self.proc.pid, signal.SIGTERM, timeout, popen=self.proc)
            self.proc.wait()
            self.out.close()
        for pid in list(self.vm_pids):
            if pid_alive(pid):
                _signal_and_wait(pid, signal.SIGTERM, timeout)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            deadline = time.monotonic() + min(timeout, 5)
            while pgid and group_members(pgid) and time.monotonic() < deadline:
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        # erl_child_setup and friends end with the VM; wait for the port to be free
        wait_until(lambda: not port_open(self.port), timeout=30,
                   message="AMQP port %d still open" % self.port)
        self.vm_pids.clear()
        self.proc = None

    def restart(self):
        """Stops and starts again on the same ports and data directory."""
        self.stop_server()
        self.start()

    def stop(self):
        self.stop_server()
        if self.epmd is not None and self.epmd.poll() is None:
            _signal_and_wait(self.epmd.pid, signal.SIGTERM, 10, popen=self.epmd)
            self.epmd.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class KafkaMock:
    """`kafka_mock TOPIC[:PARTITIONS]...`: its first stdout line is the
    bootstrap address."""

    def __init__(self, topics, brokers=1, join_delay_ms=0):
        self.topics = list(topics)
        self.brokers = brokers
        self.join_delay_ms = join_delay_ms   # -j: the group joined that much later
        self.proc = None
        self.bootstrap = None

    def start(self, timeout=30):
        if not os.access(KAFKA_MOCK, os.X_OK):
            raise RuntimeError("%s is missing: make build/kafka_mock" % KAFKA_MOCK)
        self.errf = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([KAFKA_MOCK, "-b", str(self.brokers)]
                                     + (["-j", str(self.join_delay_ms)] if self.join_delay_ms
                                        else []) + self.topics,
                                     stdout=subprocess.PIPE, stderr=self.errf,
                                     stdin=subprocess.DEVNULL, text=True,
                                     preexec_fn=die_with_parent)
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.wait(timeout=10)
            self.errf.seek(0)
            raise RuntimeError("kafka_mock printed no address: %s" % self.errf.read())
        self.bootstrap = line
        port = int(line.split(",")[0].rsplit(":", 1)[1])
        wait_until(lambda: port_open(port), timeout=timeout, message="kafka_mock port")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            _signal_and_wait(self.proc.pid, signal.SIGTERM, 15, popen=self.proc)
        if self.proc is not None:
            self.proc.wait()
            self.proc.stdout.close()


# One request an HttpReceiver took: its headers (a dict), body (bytes), the
# status answered and every webhook-id header it carried.
HttpRequest = collections.namedtuple("HttpRequest", "headers body status webhook_ids")


class HttpReceiver:
    """An http hook's endpoint on 127.0.0.1:port (0: a free port), in this
    process. Each POST is answered from the script, a list of (status,
    headers, body, delay_s) steps taken in turn, the last one repeating;
    set(mode) replaces it: "ok" (200, body OK), "500", "429" (Retry-After:
    1), "410", "mismatch" (200 with a body that is not OK), "slow" (200 OK
    after 3 s), or "down" (nothing listens: connections refused; another
    mode listens again on the same port). Every request is recorded in
    `requests` (HttpRequest), and the trigger bodies of the batches answered
    2xx OK at once, in arrival order, in `delivered`."""

    MODES = {"ok": (200, {}, b"OK", 0), "500": (500, {}, b"OK", 0),
             "410": (410, {}, b"OK", 0), "429": (429, {"Retry-After": "1"}, b"OK", 0),
             "mismatch": (200, {}, b"REJECTED", 0), "slow": (200, {}, b"OK", 3)}

    def __init__(self, port=0, script=None):
        self.port = port
        self.script = list(script or [self.MODES["ok"]])
        self.requests = []
        self.delivered = []
        self.lock = threading.Lock()
        self.server = None
        self.start()

    def _answer(self, headers, ids, body):
        with self.lock:
            step = self.script[0] if len(self.script) == 1 else self.script.pop(0)
            self.requests.append(HttpRequest(headers, body, step[0], ids))
            if 200 <= step[0] < 300 and step[2] == b"OK" and not step[3]:
                try:
                    self.delivered.extend(json.loads(body))
                except ValueError:
                    pass
        return step

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers, answer, delay = receiver._answer(
                    dict(self.headers.items()), self.headers.get_all("webhook-id"), body)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def set(self, mode):
        if mode == "down":
            self.stop()
            return
        with self.lock:
            self.script = [self.MODES[mode]]
        if self.server is None:
            self.start()

    def statuses(self):
        with self.lock:
            return [r.status for r in self.requests]


def verify_signature(secret, headers, body):
    """The Standard Webhooks check a receiver makes: webhook-signature is
    v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">
    keyed by the secret's decoded base64."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = b"%s.%s.%s" % (headers["webhook-id"].encode(), headers["webhook-timestamp"].encode(),
                            body)
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return headers["webhook-signature"] == "v1," + expected


class Daemon:
    """relationd -c CONFIG, its stderr and stdout in a log file."""

    def __init__(self, tmp_path, config, name="relationd"):
        self.tmp_path = tmp_path
        self.name = name
        self.config_path = os.path.join(str(tmp_path), name + ".json")
        self.log_path = os.path.join(str(tmp_path), name + ".log")
        self.proc = None
        self.stopped = False
        self.write_config(config)
        self.starts = 0

    def write_config(self, config):
        self.config = config
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=1)
        os.chmod(tmp, 0o600)   # it holds passwords
        os.replace(tmp, self.config_path)

    def start(self, ready_timeout=60):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.starts += 1
        self.stopped = False
        with open(self.log_path, "ab") as logf:
            logf.write(b"==== start %d ====\n" % self.starts)
            logf.flush()
            self.proc = subprocess.Popen([RELATIOND, "-c", self.config_path], env=env,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         preexec_fn=die_with_parent)
        if ready_timeout:
            # started: the configuration is loaded and the sources run (they
            # may still be waiting for a server: "ready" comes once connected)
            # (a build from before the "started" record logs only "ready")
            wait_until(lambda: "started" in self.current_log() or
                       "main: ready" in self.current_log(), timeout=ready_timeout,
                       message=self.log_tail)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig and waits; returns the exit status (negative: the signal)."""
        if self.proc is None:
            return None
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("relationd did not exit within %s s of signal %s\n%s"
                                     % (timeout, sig, self.log_tail()))
        return self.proc.returncode

    def kill(self):
        self.stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        return self.proc.returncode

    def sighup(self):
        self.proc.send_signal(signal.SIGHUP)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def current_log(self):
        """The log of the latest start only."""
        text = self.log()
        mark = "==== start %d ====\n" % self.starts
        i = text.rfind(mark)
        return text[i + len(mark):] if i >= 0 else text

    def log_tail(self, n=80):
        lines = self.log().splitlines()
        return "---- %s log (last %d lines) ----\n%s" % (self.name, n, "\n".join(lines[-n:]))

    def wait_log(self, text, timeout=60, since_start=True):
        def found():
            if self.proc is not None and self.proc.poll() is not None and \
                    text not in (self.current_log() if since_start else self.log()):
                raise AssertionError("relationd exited with %s before logging %r\n%s" % (
                    self.proc.returncode, text, self.log_tail()))
            return text in (self.current_log() if since_start else self.log())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found():
                return
            time.sleep(0.05)
        raise AssertionError("%r not in the log within %s s\n%s" % (text, timeout, self.log_tail()))


def machine_cpu():
    """The whole machine's CPU time so far, in clock ticks, from /proc/stat's
    first line: (user through steal, idle + iowait); the guests' fields are
    within user and nice already."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]] + [0] * 8
    return sum(v[:8]), v[3] + v[4]


# ---- Observing the daemon's output ----------------------------------------

class Collector:
    """A durable queue of the test, bound to an exchange before the daemon
    starts; `drain()` fetches what arrived (reconnecting after a broker
    restart). Each message: (routing_key, pika.BasicProperties, body bytes)."""

    def __init__(self, rabbit, queue, exchange, exchange_type, binding_key=""):
        self.rabbit = rabbit
        self.queue = queue
        self.exchange = exchange
        self.exchange_type = exchange_type
        self.binding_key = binding_key
        self.messages = []
        self.conn = None
        self._connect(declare=True)

    def _connect(self, declare=False):
        self.conn = self.rabbit.connection()
        self.ch = self.conn.channel()
        if declare:
            self.ch.exchange_declare(self.exchange, self.exchange_type, durable=True)
            self.ch.queue_declare(self.queue, durable=True)
            self.ch.queue_bind(self.queue, self.exchange, routing_key=self.binding_key)
        self.ch.basic_qos(prefetch_count=1000)
        self.ch.basic_consume(self.queue, self._on_message)
        self.last_tag = None

    def _on_message(self, ch, method, props, body):
        self.messages.append((method.routing_key, props, body))
        self.last_tag = method.delivery_tag

    def drain(self, time_limit=0.2):
        """Takes every message that arrives within time_limit; returns how
        many were taken."""
        import pika.exceptions
        before = len(self.messages)
        try:
            if self.conn is None or not self.conn.is_open:
                self._connect()
            deadline = time.monotonic() + time_limit
            while True:
                n = len(self.messages)
                self.conn.process_data_events(time_limit=0.05)
                if self.last_tag is not None:
                    self.ch.basic_ack(self.last_tag, multiple=True)
                    self.last_tag = None
                if len(self.messages) == n and time.monotonic() > deadline:
                    break
        except (pika.exceptions.AMQPError, OSError):
            # the broker went away: what was not acked comes again later
            try:
                if self.conn is not None and self.conn.is_open:
                    self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None
        return len(self.messages) - before

    def bodies(self):
        return [json.loads(body) for _, _, body in self.messages]

    def close(self, delete=True):
        try:
            if self.conn is None or not self.conn.is_open:
                self._connect()
            if delete:
                self.ch.queue_delete(self.queue)
            self.conn.close()
        except Exception:  # noqa: BLE001 - best effort at the end of a test
            pass


def without_date(body):
    body = dict(body)
    body.pop("event_date", None)
    return body


def check_hooks(messages, expected):
    """messages: what the hooks queue received; expected: trigger id -> body
    (without event_date) from relationctl. Returns a list of problems (empty
    when every expected trigger arrived at least once, nothing else arrived,
    and each copy is right)."""
    problems = []
    seen = {}
    for rk, props, raw in messages:
        try:
            body = json.loads(raw)
            data = body["event_data"]
            tid = data["id"]
        except (ValueError, KeyError, TypeError) as e:
            problems.append("unparsable trigger %r: %s" % (raw[:200], e))
            continue
        seen[tid] = seen.get(tid, 0) + 1
        want_rk = "relation.%s.%s.%s" % (data.get("relation"), data.get("direction"), data.get("kind"))
        if rk != want_rk:
            problems.append("trigger %s: routing key %r, want %r" % (tid, rk, want_rk))
        if props.message_id != tid:
            problems.append("trigger %s: message_id %r" % (tid, props.message_id))
        if props.content_type != "application/json":
            problems.append("trigger %s: content_type %r" % (tid, props.content_type))
        if props.delivery_mode != 2:
            problems.append("trigger %s: delivery_mode %r" % (tid, props.delivery_mode))
        if "event_date" not in body:
            problems.append("trigger %s: no event_date" % tid)
        if tid not in expected:
            problems.append("unexpected trigger %s: %s" % (tid, raw[:300]))
        elif without_date(body) != expected[tid]:
            problems.append("trigger %s differs:\n  got  %s\n  want %s" % (
                tid, json.dumps(without_date(body), sort_keys=True),
                json.dumps(expected[tid], sort_keys=True)))
    missing = sorted(set(expected) - set(seen))
    if missing:
        problems.append("%d of %d triggers never arrived, e.g. %s" % (
            len(missing), len(expected),
            "; ".join(json.dumps(expected[t], sort_keys=True)[:300] for t in missing[:3])))
    return problems


# ---- Event streams and the expected results --------------------------------

# Two relations with float, int and bool properties, tops in both orders and
# thresholds of every kind.
RELATIONS = [
    {"short": "loyal", "name": "Loyal managers", "database_a": "managers",
     "database_b": "customers",
     "properties": [
         {"short": "profit", "type": "float", "save_amount": True,
          "save_top": {"order": "desc", "limit": 3}},
         {"short": "purchases", "type": "int", "save_amount": True,
          "save_top": {"order": "asc", "limit": 2}},
         {"short": "approve", "type": "bool"}],
     "thresholds": [
         {"direction": "direct", "stat": "total", "property": "profit", "value": 300},
         {"direction": "reverse", "stat": "count", "value": 2},
         {"direction": "direct", "stat": "edge", "property": "purchases", "value": 4},
         {"direction": "reverse", "stat": "count", "property": "approve", "value": 2},
         {"direction": "direct", "stat": "edge", "property": "approve", "value": 1}]},
    {"short": "refs", "database_a": "referrers", "database_b": "customers",
     "properties": [
         {"short": "revenue", "type": "float", "save_amount": True,
          "save_top": {"order": "desc", "limit": 2}},
         {"short": "days", "type": "int", "save_top": {"order": "asc", "limit": 2}}],
     "thresholds": [{"direction": "direct", "stat": "count", "value": 3},
                    {"direction": "reverse", "stat": "total", "property": "revenue",
                     "value": 100.5}]},
]


class Event:
    """One event of a stream: `cluster` decides its Kafka partition / source
    (every side's events stay in one cluster, so that each side sees them in
    the same order whatever the interleaving of partitions and sources)."""

    def __init__(self, cluster, body):
        self.cluster = cluster
        self.body = body
        self.raw = json.dumps(body).encode()

    @property
    def key(self):
        b = self.body
        return ("%s:%s:%s" % (b["relation"], b["profile_a"], b["profile_b"])).encode()


def _weights(rng, relation, op):
    w = {}
    if relation == "loyal":
        if rng.random() < 0.8:
            w["profit"] = round(rng.uniform(-40, 160), rng.choice([0, 1, 2, 6]))
        if rng.random() < 0.7:
            w["purchases"] = rng.randint(-1, 4)
        if rng.random() < 0.5:
            w["approve"] = rng.random() < 0.6
    else:
        if rng.random() < 0.8:
            w["revenue"] = round(rng.uniform(0, 60), 3)
        if rng.random() < 0.6:
            w["days"] = rng.randint(0, 30)
    if op in ("attach", "edit") and w and rng.random() < 0.15:
        w[rng.choice(sorted(w))] = None         # unsets the property
    return w


def make_stream(n, seed, clusters, tag="s"):
    """n events (duplicates included) over the given cluster numbers, every
    op, versions (some stale), unset weights, is_test, detaches and
    re-attaches. Profiles are named after their cluster, so clusters share
    no side."""
    import random
    rng = random.Random(seed)
    events, versions = [], {}
    for i in range(n):
        c = rng.choice(clusters)
        if events and rng.random() < 0.07:
            old = rng.choice([e for e in events[-200:] if e.cluster == c] or events[-1:])
            events.append(old)                  # a duplicate: the same id and body
            continue
        relation = rng.choice(["loyal", "loyal", "refs"])
        a = "%sa%d" % ("c%d" % c, rng.randint(0, 2))
        b = "%sb%d" % ("c%d" % c, rng.randint(0, 3))
        op = rng.choices(["strengthen", "attach", "edit", "detach"], [50, 18, 17, 15])[0]
        body = {"id": "%s-%d-%d" % (tag, seed, i), "op": op, "relation": relation,
                "profile_a": a, "profile_b": b}
        if op != "detach" or rng.random() < 0.2:
            w = _weights(rng, relation, op)
            if w or rng.random() < 0.5:
                body["weights"] = w
        edge = (relation, a, b)
        r = rng.random()
        if r < 0.35:
            versions[edge] = versions.get(edge, 0) + rng.randint(1, 3)
            body["version"] = 1000 + versions[edge]
        elif r < 0.40 and edge in versions:
            body["version"] = 1000 + versions[edge] - 1 - rng.randint(0, 1)   # stale
        if rng.random() < 0.5:
            body["occurred_at"] = "2026-11-28T12:%02d:%02dZ" % (i // 60 % 60, i % 60)
        if rng.random() < 0.05:
            body["is_test"] = True
        events.append(Event(c, body))
    return events


def profiles_of(events):
    """{(relation, side, profile)} touched by the events."""
    out = set()
    for e in events:
        b = e.body
        out.add((b["relation"], "direct", str(b["profile_a"])))
        out.add((b["relation"], "reverse", str(b["profile_b"])))
    return out


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return str(path)


def run_relationctl(args, input_text=None, timeout=300):
    return subprocess.run([RELATIONCTL] + args, input=input_text, capture_output=True,
                          text=True, timeout=timeout)


class Oracle:
    """The expected results: the same events applied once, in order, by
    `relationctl apply` (the function library) into another key prefix."""

    def __init__(self, tmp_path, redis_url, prefix, relations=None, engine=None, name="oracle"):
        # the reference: always the function library (redis.engine)
        doc = {"redis": {"url": redis_url, "key_prefix": prefix, "engine": "function"},
               "relations": relations if relations is not None else RELATIONS}
        if engine:
            doc["engine"] = engine
        self.prefix = prefix
        self.config = write_json(os.path.join(str(tmp_path), name + ".json"), doc)
        self.triggers = {}          # trigger id -> body without event_date

    def apply(self, events):
        text = "".join(e.raw.decode() + "\n" for e in events)
        out = run_relationctl(["-c", self.config, "apply", "-"], text)
        assert out.returncode in (0, 3), out.stderr[-2000:]
        for line in out.stdout.splitlines():
            if line:
                body = json.loads(line)
                self.triggers[body["event_data"]["id"]] = without_date(body)
        return out


def stats(config, relation, side, profile):
    out = run_relationctl(["-c", config, "stats", relation, side, str(profile)], timeout=60)
    assert out.returncode == 0, (relation, side, profile, out.stderr)
    return json.loads(out.stdout)


def compare_stats(daemon_config, oracle_config, sides):
    """relationctl stats of each (relation, side, profile) under both
    configurations; returns the differences."""
    problems = []
    for rel, side, profile in sorted(sides):
        got = stats(daemon_config, rel, side, profile)
        want = stats(oracle_config, rel, side, profile)
        if got != want:
            problems.append("%s %s %s:\n  got  %s\n  want %s" % (
                rel, side, profile, json.dumps(got, sort_keys=True),
                json.dumps(want, sort_keys=True)))
    return problems


def _s(v):
    # outbox records are binary (MessagePack): shown escaped
    return v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v


def _hgetall(client, key):
    """HGETALL of key as bytes when a value is not UTF-8 (outbox records are
    MessagePack, a side's window '#w' binary) and client decodes replies: _s
    then shows it as a client that does not decode would."""
    try:
        return client.hgetall(key)
    except UnicodeDecodeError:
        return layout2.raw(client, "hgetall", key)


def redis_state(client, prefix, zeros=True):
    """Every statistics key under prefix (side hashes, tops, tombstones,
    outboxes; not the hooks' backlogs `{hook:NAME}`, nor the duplicate windows `ids` (layout 1: `seen`) and the
    ring's position `#z` (layout 1's newest score `#last`), which no oracle
    models, nor the `layout` key, whose keyspace id is
    random, nor `schema`, which every connection completes with its own
    configuration's properties), prefix stripped, with its content
    (as text, whatever the client's decode_responses). zeros=False leaves
    out statistic fields holding 0 (the layout reads a missing field as 0:
    an event writes one, `relationctl rebuild` does not)."""
    state = {}
    for k in client.scan_iter(match=prefix + "*", count=1000):
        name = _s(k)[len(prefix):]
        if name.endswith(":seen") or name.endswith(":ids") or name in ("layout", "schema"):
            continue
        if name.startswith("{hook:"):
            continue    # a hook's backlog and flags: delivery state, not statistics
        t = _s(client.type(k))
        if t == "hash":
            # '#z' ('#last'): the window's (see above)
            v = {_s(f): _s(x) for f, x in _hgetall(client, k).items()
                 if _s(f) not in ("#last", "#z")
                 and (zeros or _s(x) != "0" or _s(f)[:1] in "@!")}
        elif t == "zset":
            v = [(_s(m), sc) for m, sc in client.zrange(k, 0, -1, withscores=True)]
        elif t == "string":
            v = _s(client.get(k))
        else:
            v = (t,)
        state[name] = v
    return state


def outbox_entries(client, prefix):
    """Events applied in Redis whose triggers are not delivered yet (outbox
    fields, one per side: the `out` hashes)."""
    return sum(client.hlen(k) for k in client.scan_iter(match=prefix + "*:out", count=1000))


def hook_backlog(client, stream):
    """The triggers waiting in a hook's backlog stream, counted from its
    entries: an entry's field `n` (layout 2: its packed triggers), or 1 (an
    entry of one trigger, as the release before wrote them)."""
    total = 0
    for _, fields in client.xrange(stream):
        n = fields.get(b"n", fields.get("n"))
        total += int(n) if n is not None else 1
    return total


def diff_states(got, want, limit=8):
    problems = []
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            problems.append("%s: got %r, want %r" % (k, got.get(k), want.get(k)))
    if len(problems) > limit:
        problems = problems[:limit] + ["... %d more" % (len(problems) - limit)]
    return problems


# ---- Feeding the sources ----------------------------------------------------

def kafka_producer(bootstrap):
    from confluent_kafka import Producer
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                     "enable.idempotence": False, "acks": "all"})


def produce(producer, topic, events, partitions=4):
    """Each event to partition cluster % partitions, key <relation>:<a>:<b>;
    raw (bytes, partition) pairs pass through as they are."""
    for e in events:
        if isinstance(e, Event):
            producer.produce(topic, value=e.raw, key=e.key, partition=e.cluster % partitions)
        else:
            raw, part = e
            producer.produce(topic, value=raw, key=b"bad", partition=part)
        producer.poll(0)
    left = producer.flush(30)
    assert left == 0, "%d Kafka messages not delivered" % left


def declare_source(ch, names):
    """The daemon's AMQP objects as it declares them (so that the test can
    publish before the daemon starts)."""
    ch.exchange_declare(names.dlx, "fanout", durable=True)
    ch.queue_declare(names.queue, durable=True,
                     arguments={"x-dead-letter-exchange": names.dlx})


def publish(rabbit, queue, payloads):
    """Persistent messages to the queue through the default exchange, with
    publisher confirms. payloads: Events or raw bytes."""
    import pika
    conn = rabbit.connection()
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        for p in payloads:
            ch.basic_publish("", queue, p.raw if isinstance(p, Event) else p, props)
    finally:
        conn.close()


def queue_depth(rabbit, queue):
    conn = rabbit.connection()
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def committed_lag(bootstrap, group, topic, partitions=4):
    """Messages of topic not yet committed by group (sum over partitions)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        committed = c.committed(tps, timeout=10)
        lag = 0
        for tp in committed:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            done = tp.offset if tp.offset >= 0 else lo
            lag += hi - done
        return lag
    finally:
        c.close()


class KafkaReader:
    """Reads a topic from the start (its own group); `poll()` returns the
    messages so far as (key, value, headers dict, partition)."""

    def __init__(self, bootstrap, topic, group):
        from confluent_kafka import Consumer
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.c.subscribe([topic])
        self.messages = []

    def poll(self, time_limit=0.5):
        deadline = time.monotonic() + time_limit
        while time.monotonic() < deadline:
            m = self.c.poll(0.1)
            if m is None or m.error():
                continue
            headers = {}
            for k, v in m.headers() or []:
                headers[k] = v.decode() if v is not None else None
            self.messages.append((m.key(), m.value(), headers, m.partition()))
        return self.messages

    def close(self):
        self.c.close()


# ---- One test's setup: sources, hooks, oracle, daemons ----------------------

KAFKA_PROPERTIES = {"session.timeout.ms": "3000", "heartbeat.interval.ms": "300",
                    "auto.offset.reset": "earliest"}


class Harness:
    """Everything one daemon test needs: the hooks queue (bound before the
    daemon starts), the AMQP source queue and its dead-letter exchange
    (declared as the daemon declares them), the Kafka topics, the oracle and
    the daemon configuration.

    feed_kafka / feed_amqp send valid events and apply them to the oracle in
    the same order; wait_done() waits until the daemon caught up (every
    expected trigger on the hooks queue, sources drained, the daemon's Redis
    keys equal to the oracle's); check() asserts the final results."""

    def __init__(self, tmp_path, names, rabbit, redis_client, redis_url, kafka=None,
                 topics=None, amqp=False, relations=None, engine=None,
                 oracle_client=None, oracle_url=None, prefetch=64, redis_engine="function"):
        self.tmp_path = tmp_path
        self.names = names
        self.rabbit = rabbit
        self.redis = redis_client
        self.kafka = kafka
        self.topics = topics
        self.amqp = amqp
        self.relations = relations if relations is not None else RELATIONS
        self.oracle_redis = oracle_client if oracle_client is not None else redis_client
        self.oracle = Oracle(tmp_path, oracle_url or redis_url, names.oracle_prefix,
                             self.relations)
        self.hooks = Collector(rabbit, names.hooks_queue, names.hooks_exchange, "topic",
                               "relation.#")
        self.hook_ids = set()
        self.hook_unexpected = {}   # id -> body of a trigger the oracle does not have
        self.hooks_seen = 0
        self.sides = set()
        self.fed_ids = set()
        self.zero_is_missing = False    # state_diff: a statistic at 0 equals none (rebuild)
        self.daemons = []
        self.producer = None
        self.dlx = None
        if amqp:
            conn = rabbit.connection()
            ch = conn.channel()
            declare_source(ch, names)
            conn.close()
            self.dlx = Collector(rabbit, names.dlx_queue, names.dlx, "fanout")
        if kafka is not None:
            self.producer = kafka_producer(kafka.bootstrap)
        doc = {"redis": {"url": redis_url, "key_prefix": names.prefix, "timeout_ms": 2000,
                         "engine": redis_engine},
               "engine": dict({"batch_ms": 20, "retry_max_ms": 500}, **(engine or {})),
               "hooks": {"url": rabbit.url, "exchange": names.hooks_exchange},
               "relations": self.relations}
        if kafka is not None:
            doc["kafka"] = {"brokers": kafka.bootstrap, "group_id": names.group,
                            "topics": [topics[0]], "dead_letter_topic": topics[1],
                            "properties": dict(KAFKA_PROPERTIES)}
        if amqp:
            doc["amqp"] = {"url": rabbit.url, "queue": names.queue, "prefetch": prefetch,
                           "dead_letter_exchange": names.dlx}
        self.config = doc

    # -- feeding
    def feed_kafka(self, events, oracle=True):
        produce(self.producer, self.topics[0], events, self.kafka.partitions)
        self._expect(events, oracle)

    def feed_amqp(self, events, oracle=True):
        publish(self.rabbit, self.names.queue, events)
        self._expect(events, oracle)

    def _expect(self, events, oracle):
        valid = [e for e in events if isinstance(e, Event)]
        self.fed_ids.update(e.body["id"] for e in valid)
        if oracle and valid:
            self.oracle.apply(valid)
            self.sides |= profiles_of(valid)

    # -- daemons
    def daemon(self, factory, name=None, config=None):
        d = factory(config or self.config, name)
        self.daemons.append(d)
        return d

    def _logs(self):
        return "\n".join(d.log_tail(60) for d in self.daemons)

    # -- observing
    def drain_hooks(self):
        self.hooks.drain(0.05)
        for _, _, raw in self.hooks.messages[self.hooks_seen:]:
            try:
                body = json.loads(raw)
                tid = body["event_data"]["id"]
                self.hook_ids.add(tid)
                if tid not in self.oracle.triggers and not body.get("is_test"):
                    self.hook_unexpected.setdefault(tid, body)
            except (ValueError, KeyError, TypeError):
                pass
        self.hooks_seen = len(self.hooks.messages)
        return len(self.hook_ids)

    def lag(self):
        n = 0
        if self.kafka is not None:
            n += committed_lag(self.kafka.bootstrap, self.names.group, self.topics[0],
                               self.kafka.partitions)
        if self.amqp:
            n += queue_depth(self.rabbit, self.names.queue)
        return n

    def state_diff(self):
        zeros = not self.zero_is_missing
        return diff_states(redis_state(self.redis, self.names.prefix, zeros),
                           redis_state(self.oracle_redis, self.oracle.prefix, zeros))

    def status(self):
        self.drain_hooks()
        gone = sorted(set(self.oracle.triggers) - self.hook_ids)
        missing = len(gone)
        try:
            lag = self.lag()
        except Exception as e:  # noqa: BLE001
            lag = "? (%s)" % e

        def which(tid):
            b = self.oracle.triggers[tid]
            x = b["event_data"]
            return "%s %s %s of %s:%s (event %s)" % (
                x["relation"], x["direction"], x["kind"], b["database"], b["profile_id"],
                x["source_event"]["id"])
        odd = sorted(t for t in self.hook_unexpected if t not in self.oracle.triggers)
        return ("%d of %d expected triggers missing%s%s; %d hook messages; lag %s; "
                "redis differences: %s\n%s" % (
                    missing, len(self.oracle.triggers),
                    "".join("\n  missing: " + which(t) for t in gone[:8]),
                    "".join("\n  not expected: " + json.dumps(self.hook_unexpected[t])[:600]
                            for t in odd[:4]),
                    len(self.hooks.messages), lag,
                    "\n  ".join(self.state_diff()) or "none", self._logs()))

    def check_alive(self):
        for d in self.daemons:
            if d.proc is not None and d.proc.poll() is not None and not d.stopped:
                raise Abort("%s exited with %s\n%s" % (d.name, d.proc.returncode, d.log_tail(100)))

    def caught_up(self):
        self.check_alive()
        self.drain_hooks()
        if not set(self.oracle.triggers) <= self.hook_ids:
            return False
        if self.lag() != 0:
            return False
        return not self.state_diff()

    def wait_done(self, timeout=120):
        t0 = time.monotonic()
        wait_until(self.caught_up, timeout=timeout, interval=0.25, message=self.status)
        print("caught up in %.1f s: %d triggers expected, %d hook messages" % (
            time.monotonic() - t0, len(self.oracle.triggers), len(self.hooks.messages)))

    def applied(self):
        """Events applied by the daemon so far (side applications / 2, from
        the sizes of the duplicate windows: the 8-byte event keys of a side's
        `#w`, or of its ring `ids`; engine.dedup_ids at most per side)."""
        pipe = self.redis.pipeline(transaction=False)
        for rel, side, profile in sorted(self.sides):
            tag = "%s{%s:%s:%s}:" % (self.names.prefix, rel, side[0], profile)
            pipe.hstrlen(tag + "side", "#w")
            pipe.strlen(tag + "ids")
        return sum(pipe.execute()) / 8 / 2

    def wait_progress(self, fraction, timeout=60):
        """Until the daemon applied `fraction` of the distinct events fed so
        far (watched in Redis, so that the daemon is still busy then)."""
        want = fraction * len(self.fed_ids)

        def progress():
            self.check_alive()
            return self.applied() >= want
        t0 = time.monotonic()
        wait_until(progress, timeout=timeout, interval=0.01, message=self.status)
        print("%d of %d events applied after %.1f s" % (
            self.applied(), len(self.fed_ids), time.monotonic() - t0))

    def check(self):
        """Final assertions: every expected trigger arrived (at least once),
        nothing else, each copy right; relationctl stats equal the oracle's
        for every side; no backlog in any outbox."""
        self.hooks.drain(0.3)
        problems = check_hooks(self.hooks.messages, self.oracle.triggers)
        assert not problems, "hooks:\n" + "\n".join(problems[:10])
        # every key is compared in Redis below; relationctl's view of a sample of sides
        sides = sorted(self.sides)
        sides = sides[::max(1, len(sides) // 24)]
        problems = compare_stats(self.config_path(), self.oracle.config, sides)
        assert not problems, "stats:\n" + "\n".join(problems[:10])
        outbox = [k for k in self.redis.scan_iter(match=self.names.prefix + "*:side")
                  if any(f[:1] in ("!", b"!") for f in self.redis.hkeys(k))]
        assert not outbox, "triggers left in the outbox: %r" % outbox[:5]
        assert not self.state_diff(), self.state_diff()

    def config_path(self):
        if self.daemons:
            return self.daemons[0].config_path
        return write_json(os.path.join(str(self.tmp_path), "daemon-view.json"), self.config)

    def close(self):
        self.hooks.close()
        if self.dlx is not None:
            self.dlx.close()
        try:
            conn = self.rabbit.connection()
            ch = conn.channel()
            ch.queue_delete(self.names.queue)
            conn.close()
        except Exception:  # noqa: BLE001 - best effort
            pass
