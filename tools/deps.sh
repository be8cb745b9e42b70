#!/bin/sh
# deps.sh — the Debian packages that building, testing and the demo need.
# Installs the missing ones when run as root (apt-get); otherwise prints the
# one command that installs them and fails. Quiet when nothing is missing.
# Then the SDK of the Redis module (module/): redismodule.h is in no binary
# package, so the source of Debian's redis package is downloaded (a deb-src
# entry for bookworm added when missing) into REDIS_SRC_CACHE
# (/var/cache/relationd); the Makefile unpacks the header from its orig
# tarball into build/. Nothing is fetched when the tarball is there.
# Last, the browser test's driver (tests/e2e/test_ui.py): Debian's chromium
# (a package above) driven by playwright-core from npm, installed into
# tools/node_modules (ignored by git; NODE_TOOLS_DIR names another directory
# to hold node_modules) when missing; it downloads no browser.
set -eu
NODE_TOOLS_DIR=${NODE_TOOLS_DIR:-$(cd "$(dirname "$0")" && pwd)}
PLAYWRIGHT_CORE=playwright-core@1.65.2
REDIS_SRC_CACHE=${REDIS_SRC_CACHE:-/var/cache/relationd}
DEB_SRC_FILE=${DEB_SRC_FILE:-/etc/apt/sources.list.d/debian-src.sources}

PACKAGES="build-essential pkg-config libjansson-dev libhiredis-dev libsystemd-dev
libcmocka-dev librdkafka-dev librabbitmq-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
redis-server rabbitmq-server
python3-pytest python3-redis python3-pika python3-confluent-kafka python3-jsonschema python3-yaml
clang libclang-rt-14-dev valgrind openssl systemd debhelper dpkg-dev fakeroot prometheus iproute2
chromium"
# node and npm: the machine's (any origin), else Debian's
command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs"
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system (no dpkg-query); install the equivalents of:" >&2
    echo "  $(echo $PACKAGES)" >&2
    exit 1
fi

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *" installed") ;;
    *) missing="$missing $p" ;;
    esac
done
have_redis_src() {
    ls "$REDIS_SRC_CACHE"/redis_*.orig.tar.gz >/dev/null 2>&1
}
# playwright-core into tools/node_modules (npm, no root needed)
playwright() {
    [ -e "$NODE_TOOLS_DIR/node_modules/playwright-core/package.json" ] && return 0
    echo "deps: installing $PLAYWRIGHT_CORE into $NODE_TOOLS_DIR/node_modules" >&2
    npm install --prefix "$NODE_TOOLS_DIR" --no-save --no-package-lock --no-audit --no-fund \
        "$PLAYWRIGHT_CORE" >/dev/null
}
if [ -z "$missing" ] && have_redis_src; then
    playwright
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages or the redis source; as root:" >&2
    [ -n "$missing" ] && echo "  sudo apt-get install -y$missing" >&2
    have_redis_src || echo "  sudo sh tools/deps.sh   (fetches redis's source into $REDIS_SRC_CACHE)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
    echo "deps: installing$missing" >&2
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if ! have_redis_src; then
    src=$DEB_SRC_FILE
    if [ ! -e "$src" ]; then
        echo "deps: adding $src (deb-src for bookworm: redis's source, for redismodule.h)" >&2
        cat > "$src" <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    fi
    echo "deps: downloading the source of redis into $REDIS_SRC_CACHE" >&2
    apt-get update -qq
    mkdir -p "$REDIS_SRC_CACHE"
    (cd "$REDIS_SRC_CACHE" && apt-get source --download-only -qq redis >/dev/null 2>&1)
    have_redis_src || { echo "deps: apt-get source redis fetched no orig tarball" >&2; exit 1; }
fi
playwright
