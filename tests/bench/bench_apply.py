"""make bench: `relationctl apply` throughput, unpipelined (batch_size 1) and
pipelined (batch_size 256), measured side by side in one run against one
private redis-server. Reports events per second and the ratio; the machine
is shared, so only the ratio of runs made together means anything."""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIONCTL = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))
EVENTS = int(os.environ.get("BENCH_EVENTS", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

RELATION = {
    "short": "bench", "database_a": "a", "database_b": "b",
    "properties": [
        {"short": "profit", "type": "float", "save_amount": True,
         "save_top": {"order": "desc", "limit": 10}},
        {"short": "purchases", "type": "int", "save_amount": True},
        {"short": "approve", "type": "bool"}],
    "thresholds": [{"direction": "direct", "stat": "total", "property": "profit", "value": 1000}],
}


def events(tag):
    rnd = random.Random(7)
    for i in range(EVENTS):
        yield json.dumps({
            "id": "%s-%d" % (tag, i), "op": rnd.choice(["strengthen", "strengthen", "edit", "detach"]),
            "relation": "bench", "profile_a": "a%d" % rnd.randrange(200),
            "profile_b": "b%d" % rnd.randrange(2000),
            "weights": {"profit": round(rnd.uniform(0, 100), 2), "purchases": 1,
                        "approve": rnd.random() < 0.5}})


def main():
    tmp = tempfile.mkdtemp(prefix="relationd-bench-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", tmp],
                              stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        results = {1: [], 256: []}
        for rnd in range(ROUNDS):
            for batch in (1, 256):
                cfg = os.path.join(tmp, "c%d.json" % batch)
                with open(cfg, "w") as f:
                    json.dump({"redis": {"url": "redis://127.0.0.1:%d/0" % port},
                               "engine": {"batch_size": batch}, "relations": [RELATION]}, f)
                data = "\n".join(events("r%d-b%d" % (rnd, batch))) + "\n"
                subprocess.run(["redis-cli", "-p", str(port), "flushall"], check=True,
                               stdout=subprocess.DEVNULL)
                start = time.perf_counter()
                out = subprocess.run([RELATIONCTL, "-c", cfg, "apply", "-"], input=data, text=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                took = time.perf_counter() - start
                if out.returncode != 0:
                    sys.exit("relationctl failed: " + out.stderr)
                results[batch].append(EVENTS / took)
        for batch, rates in results.items():
            print("batch_size %3d: %8.0f events/s (best of %d)" % (batch, max(rates), ROUNDS))
        print("pipelined / unpipelined: %.2fx" % (max(results[256]) / max(results[1])))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
