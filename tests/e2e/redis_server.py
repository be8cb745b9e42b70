"""A private redis-server for the end-to-end tests: a free loopback port, a
temporary directory, stopped by its own pid; with module=True it loads the
Redis module engine (build/relationd.so, or $RELATIOND_MODULE)."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.environ.get("RELATIOND_MODULE", os.path.join(REPO, "build", "relationd.so"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """persistent: an append-only file fsynced at every write, so that a server
    killed and started again keeps everything it acknowledged. prefix: a
    command the server runs under (e.g. valgrind and its options; the server's
    pid is then that command's), with start_timeout_s to answer PING.
    module: the server loads MODULE (for `redis.engine` module)."""

    def __init__(self, persistent=False, args=(), password=None, prefix=(),
                 start_timeout_s=5.0, module=False):
        self.dir = tempfile.mkdtemp(prefix="relationd-redis-")
        self.port = free_port()
        self.persistent = persistent
        self.password = password
        self.args = list(args) + (["--requirepass", password] if password else []) \
            + (["--loadmodule", MODULE] if module else [])
        self.prefix = list(prefix)
        self.start_timeout_s = start_timeout_s
        self.proc = None

    def start(self, wait_loaded=True):
        """wait_loaded=False: back as soon as the server answers, while it
        may still be loading its data (LOADING)."""
        self.proc = subprocess.Popen(
            self.prefix + ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--dir", self.dir]
            + (["--appendonly", "yes", "--appendfsync", "always"] if self.persistent
               else ["--appendonly", "no"]) + self.args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, password=self.password)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                client.ping()
                return
            except redis.BusyLoadingError:
                if not wait_loaded:
                    return
                time.sleep(0.05)
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start (%s)" % " ".join(
            self.prefix + ["redis-server"]))

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def with_data_to_load(module=False, delay_us=100, keys=20000):
    """A started persistent server holding `keys` keys of another
    application, each slowed down by key-load-delay (µs) when the server
    loads them at start: killed and started again, it answers every command
    with LOADING for a while. The caller stops it."""
    server = Server(persistent=True, module=module, start_timeout_s=60,
                    args=["--key-load-delay", str(delay_us)])
    server.start()
    try:
        r = redis.Redis(port=server.port)
        pipe = r.pipeline(transaction=False)
        for i in range(keys):
            pipe.set("other-app:%d" % i, "x")
        pipe.execute()
        r.close()
    except BaseException:
        server.stop()
        raise
    return server

