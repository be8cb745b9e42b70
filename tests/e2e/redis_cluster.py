"""A private Redis Cluster for the end-to-end tests: redis-server nodes on
free loopback ports, each in its own temporary directory, joined by
`redis-cli --cluster create`; every node stopped by its own pid."""

import random
import socket
import subprocess
import time

import redis
from redis.cluster import ClusterNode, RedisCluster

from redis_server import Server


def _free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cluster_port(taken):
    """A free port whose cluster bus port (10000 above) is free too."""
    rng = random.Random()
    while True:
        p = rng.randrange(20000, 45000)
        if p not in taken and p + 10000 not in taken and _free(p) and _free(p + 10000):
            taken.update((p, p + 10000))
            return p


class Cluster:
    def __init__(self, primaries=3, replicas=0, persistent=False, module=False):
        """module: every node loads the module engine (redis_server.MODULE)."""
        self.primaries, self.replicas = primaries, replicas
        self.nodes = []
        taken = set()
        for _ in range(primaries * (1 + replicas)):
            n = Server(persistent=persistent, module=module,
                       args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                             "--cluster-node-timeout", "2000"])
            n.port = cluster_port(taken)
            self.nodes.append(n)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.nodes[0].port

    def start(self, timeout=60):
        for n in self.nodes:
            n.start()
        if self.primaries == 1 and self.replicas == 0:
            # redis-cli --cluster create wants three primaries: one by hand
            c = redis.Redis(port=self.nodes[0].port)
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            c.close()
            self.wait_ok(timeout)
            return self
        out = subprocess.run(
            ["redis-cli", "--cluster", "create"]
            + ["127.0.0.1:%d" % n.port for n in self.nodes]
            + ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError("redis-cli --cluster create: %s%s" % (out.stdout, out.stderr))
        self.wait_ok(timeout)
        return self

    def wait_ok(self, timeout=60):
        """Until every running node says cluster_state:ok and agrees on who
        serves every slot."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                states, maps = [], []
                for n in self.nodes:
                    if n.proc is None or n.proc.poll() is not None:
                        continue
                    c = redis.Redis(port=n.port)
                    states.append(c.cluster("INFO").get("cluster_state"))
                    maps.append(sorted((s[0], s[1], s[2][1]) for s in c.execute_command(
                        "CLUSTER", "SLOTS")))
                    c.close()
                if all(s == "ok" for s in states) and all(m == maps[0] for m in maps) and \
                        sum(b - a + 1 for a, b, _ in maps[0]) == 16384:
                    return
            except redis.RedisError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the cluster did not settle")

    def client(self):
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in self.nodes
                                           if n.proc and n.proc.poll() is None],
                            decode_responses=True)

    def node_client(self, node):
        return redis.Redis(port=node.port, decode_responses=True)

    def primaries_now(self):
        """The nodes that serve slots now."""
        c = redis.Redis(port=self.running()[0].port)
        ports = {s[2][1] for s in c.execute_command("CLUSTER", "SLOTS")}
        c.close()
        return [n for n in self.nodes if n.port in ports]

    def slots_of(self, node):
        c = redis.Redis(port=node.port)
        n = sum(s[1] - s[0] + 1 for s in c.execute_command("CLUSTER", "SLOTS")
                if s[2][1] == node.port)
        c.close()
        return n

    def running(self):
        return [n for n in self.nodes if n.proc and n.proc.poll() is None]

    def node_id(self, node):
        c = redis.Redis(port=node.port)
        try:
            return c.execute_command("CLUSTER", "MYID").decode()
        finally:
            c.close()

    def flushall(self):
        for n in self.primaries_now():
            c = redis.Redis(port=n.port)
            c.flushall()
            c.close()

    def keys_per_node(self, match="*"):
        out = {}
        for n in self.primaries_now():
            c = redis.Redis(port=n.port)
            out[n.port] = sum(1 for _ in c.scan_iter(match=match, count=1000))
            c.close()
        return out

    def reshard(self, source, target, slots, timeout=300):
        """redis-cli --cluster reshard: `slots` slots from source to target."""
        return subprocess.Popen(
            ["redis-cli", "--cluster", "reshard", "127.0.0.1:%d" % source.port,
             "--cluster-from", self.node_id(source), "--cluster-to", self.node_id(target),
             "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self):
        for n in self.nodes:
            n.stop()
