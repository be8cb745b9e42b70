"""A private Redis with Sentinel for the end-to-end tests: a primary, a
replica and three sentinels on free loopback ports, each in its own
temporary directory, each stopped by its own pid."""

import os
import shutil
import subprocess
import tempfile
import time

import redis

from redis_server import Server, free_port

MASTER = "relationd-test"


class Sentinels:
    def __init__(self, module=False):
        """module: the primary and the replica load the module engine."""
        self.primary = Server(persistent=True, module=module)
        self.replica = Server(persistent=True, module=module,
                              args=["--replicaof", "127.0.0.1", str(self.primary.port)])
        self.sentinels = []   # (port, dir, Popen)

    @property
    def addrs(self):
        return ["127.0.0.1:%d" % p for p, _, _ in self.sentinels]

    def start(self, timeout=60):
        self.primary.start()
        self.replica.start()
        for _ in range(3):
            port, d = free_port(), tempfile.mkdtemp(prefix="relationd-sentinel-")
            conf = os.path.join(d, "sentinel.conf")
            with open(conf, "w") as f:
                f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                        "sentinel monitor %s 127.0.0.1 %d 2\n"
                        "sentinel down-after-milliseconds %s 1000\n"
                        "sentinel failover-timeout %s 10000\n"
                        % (port, d, MASTER, self.primary.port, MASTER, MASTER))
            proc = subprocess.Popen(["redis-server", conf, "--sentinel"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.sentinels.append((port, d, proc))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ok = all(self._knows_all(p) for p, _, _ in self.sentinels)
                if ok:
                    return self
            except redis.RedisError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the sentinels did not find each other and the replica")

    def _knows_all(self, port):
        s = redis.Redis(port=port, decode_responses=True)
        try:
            m = s.execute_command("SENTINEL", "MASTER", MASTER)
            info = dict(zip(m[::2], m[1::2]))
            return int(info["num-other-sentinels"]) == 2 and int(info["num-slaves"]) == 1
        finally:
            s.close()

    def failover(self):
        s = redis.Redis(port=self.sentinels[0][0], decode_responses=True)
        try:
            return s.execute_command("SENTINEL", "FAILOVER", MASTER)
        finally:
            s.close()

    def role(self, server):
        c = redis.Redis(port=server.port, decode_responses=True)
        try:
            return c.info("replication")["role"]
        finally:
            c.close()

    def stop(self):
        for _, d, proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            shutil.rmtree(d, ignore_errors=True)
        self.replica.stop()
        self.primary.stop()
