#!/bin/sh
# check-layers.sh ROOT — the layers point down: a file of a layer includes
# only headers of its own layer or of a lower one. The order, lowest first:
#   lib < config < handlers < daemon < ctl
# (ctl, the command-line tool, may use the daemon's transport code; the daemon
# never the tool's). module/ (the Redis module, run inside redis-server) is a
# root of its own: it includes only its own headers (and redismodule.h, libc)
# and lib/sha1.h (lib/sha1.c is compiled into it), never another layer's. tests/ and tools/ may include anything. Prints each
# upward include as FILE:LINE: ... and exits 1 when there is one, 0 otherwise.
set -eu
root=${1:-.}
cd "$root"
status=0
for dir in lib config handlers daemon ctl module; do
    [ -d "$dir" ] || continue
    for f in $(find "$dir" -name '*.[ch]' | sort); do
        awk -v file="$f" -v own="$dir" '
            function rank(d) {
                return d == "lib" ? 0 : d == "config" ? 1 : d == "handlers" ? 2 : \
                       d == "daemon" ? 3 : d == "ctl" ? 4 : -1
            }
            /^[ \t]*#[ \t]*include[ \t]*"/ {
                path = $0
                sub(/^[^"]*"/, "", path); sub(/".*$/, "", path)
                n = split(path, part, "/")
                if (n < 2) next
                mine = own == "module" ? part[1] == "module" || path == "lib/sha1.h" : 0
                if (own == "module" ? !mine : rank(part[1]) > rank(own)) {
                    printf "%s:%d: %s (layer %s) includes %s of the %s layer %s\n",
                           file, FNR, file, own, path, own == "module" ? "other" : "higher", part[1]
                    bad = 1
                }
            }
            END { exit bad }' "$f" || status=1
    done
done
[ $status -eq 0 ] && echo "check-layers: every include points down (lib < config < handlers < daemon < ctl; module alone)"
exit $status
