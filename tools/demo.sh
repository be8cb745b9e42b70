#!/bin/sh
# make demo: a private redis-server on a free port, the demo events applied
# with relationctl, the triggers and the statistics printed; then cleanup.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
cleanup() { kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
# The example configuration, pointed at the private Redis, without the brokers.
/usr/bin/python3 - "$top/config/relationd.example.json" "$port" > "$dir/relationd.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["redis"]["url"] = "redis://127.0.0.1:%s/0" % sys.argv[2]
for k in ("kafka", "amqp", "hooks", "http"):
    cfg.pop(k)
print(json.dumps(cfg))
PY
echo "== relationctl apply config/demo-events.jsonl (triggers on stdout, report on stderr)"
"$top/build/relationctl" -c "$dir/relationd.json" apply "$top/config/demo-events.jsonl" |
  /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    t = json.loads(line); d = t["event_data"]
    print("%-28s profile %-6s event %-7s id %s%s" % (t["event_type"], t["profile_id"],
          d["source_event"]["id"], d["id"], "  " + json.dumps(d["threshold"]) if d["threshold"] else ""))
' || true
for side in "managers_loyal direct 42" "managers_loyal reverse 1001" "referrals reverse 1001"; do
  echo "== relationctl stats $side"
  # shellcheck disable=SC2086
  "$top/build/relationctl" -c "$dir/relationd.json" stats $side
done
echo "== Redis keys"
redis-cli -p "$port" --scan | sort
