#!/bin/sh
# deps.sh — the Debian packages that building, testing and the demo need.
# Installs the missing ones when run as root (apt-get); otherwise prints the
# one command that installs them and fails. Quiet when nothing is missing.
set -eu

PACKAGES="build-essential pkg-config libjansson-dev libhiredis-dev libsystemd-dev
libcmocka-dev librdkafka-dev librabbitmq-dev libmicrohttpd-dev
redis-server rabbitmq-server
python3-pytest python3-redis python3-pika python3-confluent-kafka python3-jsonschema python3-yaml
clang libclang-rt-14-dev valgrind openssl systemd debhelper dpkg-dev fakeroot prometheus"

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
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages; install them with:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
