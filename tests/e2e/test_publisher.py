"""The confirmed publisher (daemon/publisher.c) against a real RabbitMQ.

Through relationd: dead letters larger than a frame arrive byte-identical on
the dead-letter exchange with their headers; triggers nacked by the broker (a
full queue with x-overflow reject-publish) are published again until they get
through.

Directly: a small driver program (its C source below, compiled here with the
sanitizers against daemon/publisher.c) runs publisher_publish / _wait /
_send / _poll / _reset commands read from its stdin; the tests check what
arrives on the broker, the delivery tags, confirms and nacks, bodies split at
the frame size, short strings over 255 bytes refused, and connections cut by
a TCP proxy between the driver and the broker."""

import os
import random
import re
import select
import shutil
import socket
import subprocess
import threading
import time

import pytest

from brokers import REPO, make_stream, profiles_of, publish, queue_depth, wait_until

FRAME_MAX = 131072            # rabbitmq-c's and RabbitMQ's default frame size
CHUNK = FRAME_MAX - 8         # body bytes per body frame
LIMIT = 65536                 # the largest event; of a larger message relationd keeps this much


def body_of(size, seed):
    """The driver's body of a message: byte j is (j * 7 + seed) % 251."""
    one = bytes((j * 7 + seed) % 251 for j in range(251))      # repeats every 251 bytes
    return (one * (size // 251 + 1))[:size]


def text(v):
    return v.decode() if isinstance(v, bytes) else v


# ---- through relationd ------------------------------------------------------

def test_dead_letters_of_every_size_arrive_whole_or_cut_at_the_limit(harness, daemons):
    """Non-JSON bodies of every size around the body-frame boundaries and the
    65536-byte limit, up to 1 MiB, between valid events: each one up to the
    limit arrives on the dead-letter exchange byte-identical, persistent, with
    its original routing key and reason; a larger one arrives as its first
    65536 bytes, with its size (x-relationd-body-bytes) and the reason
    "message of N bytes over the 65536-byte limit" (the daemon does not hold
    more of it)."""
    h = harness(amqp=True)
    rng = random.Random(7)
    sizes = [0, 1, LIMIT - 1, LIMIT, LIMIT + 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK,
             2 * CHUNK + 1, 300 * 1024, 1024 * 1024 + 3]
    # random bytes after a first byte that cannot start JSON
    bad = [b"\xff" + rng.randbytes(n - 1) if n else b"" for n in sizes]
    events = make_stream(120, seed=51, clusters=[0, 1], tag="pb")
    stream, pending = [], list(bad)
    for i, e in enumerate(events):
        stream.append(e)
        if i % 12 == 5 and pending:
            stream.append(pending.pop(0))
    stream.extend(pending)
    publish(h.rabbit, h.names.queue, stream)
    h.oracle.apply(events)
    h.sides |= profiles_of(events)

    d = h.daemon(daemons).start()
    h.wait_done()
    wait_until(lambda: h.dlx.drain(0.1) >= 0 and len(h.dlx.messages) >= len(bad), timeout=60,
               message=lambda: "dead letters: %d of %d\n%s" % (
                   len(h.dlx.messages), len(bad), d.log_tail()))
    h.dlx.drain(0.5)
    assert len(h.dlx.messages) == len(bad), sorted(len(b) for _, _, b in h.dlx.messages)
    got = {body: (rk, props) for rk, props, body in h.dlx.messages}
    for raw in bad:
        kept = raw[:LIMIT]
        assert kept in got, "dead letter of %d bytes missing or altered (got sizes %s)" % (
            len(raw), sorted(len(b) for b in got))
        rk, props = got[kept]
        assert rk == h.names.queue
        assert props.delivery_mode == 2
        headers = props.headers or {}
        assert text(headers.get("x-relationd-reason")), headers
        assert text(headers.get("x-relationd-queue")) == h.names.queue, headers
        if len(raw) > LIMIT:
            assert headers.get("x-relationd-body-bytes") == len(raw), headers
            assert text(headers.get("x-relationd-reason")) == (
                "message of %d bytes over the 65536-byte limit" % len(raw)), headers
        else:
            assert "x-relationd-body-bytes" not in headers, headers
    h.check()
    assert d.stop() == 0, d.log_tail()
    assert queue_depth(h.rabbit, h.names.queue) == 0


def test_nacked_triggers_are_published_again(harness, daemons):
    """A second queue on the hooks exchange holds 3 messages and refuses more
    (x-overflow reject-publish): the broker nacks the triggers it cannot
    take, and the daemon publishes them again (and again). Once that queue is
    gone, every trigger arrives, statistics exact."""
    h = harness(amqp=True)
    full_queue = "full-%s" % h.names.uid
    conn = h.rabbit.connection()
    ch = conn.channel()
    ch.queue_declare(full_queue, durable=True,
                     arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
    ch.queue_bind(full_queue, h.names.hooks_exchange, routing_key="relation.#")
    try:
        events = make_stream(200, seed=52, clusters=[0, 1, 2], tag="pn")
        h.feed_amqp(events)
        d = h.daemon(daemons).start()
        d.wait_log("nacked, publishing them again", timeout=60)
        time.sleep(1.0)
        # while that queue is full, triggers stay unpublished
        h.drain_hooks()
        assert not set(h.oracle.triggers) <= h.hook_ids, "every trigger published, none nacked?"
        ch.queue_delete(full_queue)
        h.wait_done()
        h.check()
        assert d.stop() == 0, d.log_tail()
    finally:
        try:
            ch.queue_delete(full_queue)
            conn.close()
        except Exception:  # noqa: BLE001 - best effort
            pass


# ---- the driver -------------------------------------------------------------

DRIVER_C = r"""
/* Commands on stdin, one per line; answers "ok [TAG]" or "fail REASON".
 *   publish N PREFIX SIZE   publisher_publish of N messages
 *   send N PREFIX SIZE      publisher_send of N messages
 *   sizes PREFIX S...       publisher_publish of one message per size
 *   wait TAG | poll | reset | quit
 *   mandatory               publisher_set_mandatory (returns logged as "messages")
 *   returned                answers "ok N": returns seen by the callback, which
 *                           checks them against publisher_returned
 *   long FIELD VERB         one message with a 256-byte FIELD (rk, id, ct,
 *                           hkey), by VERB (publish or send)
 * Message i of PREFIX: routing key rk.PREFIX, message id PREFIX-i, content
 * type application/octet-stream, headers x-index (int i), x-prefix, x-nested
 * {k: true}, x-list [5000000000, "two"]; body byte j = (j * 7 + i) % 251. */
#include "daemon/publisher.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Outgoing *out;
    char (*ids)[300];
    unsigned char **bodies;
    amqp_table_entry_t (*entries)[4];
    amqp_table_t *tables;
    amqp_table_entry_t nested_entry;
    amqp_field_value_t list[2];
    char rk[300];
    char ct[300];
    char hkey[300];
    size_t n;
} Batch;

static void batch_free(Batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->bodies[i]);
    free(b->out);
    free(b->ids);
    free(b->bodies);
    free(b->entries);
    free(b->tables);
    memset(b, 0, sizeof *b);
}

static void batch_make(Batch *b, const char *prefix, const size_t *sizes, size_t n)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->out = calloc(n + 1, sizeof *b->out);
    b->ids = calloc(n + 1, sizeof *b->ids);
    b->bodies = calloc(n + 1, sizeof *b->bodies);
    b->entries = calloc(n + 1, sizeof *b->entries);
    b->tables = calloc(n + 1, sizeof *b->tables);
    if (!b->out || !b->ids || !b->bodies || !b->entries || !b->tables)
        abort();
    snprintf(b->rk, sizeof b->rk, "rk.%s", prefix);
    snprintf(b->ct, sizeof b->ct, "application/octet-stream");
    snprintf(b->hkey, sizeof b->hkey, "x-index");
    b->nested_entry.key = amqp_cstring_bytes("k");
    b->nested_entry.value.kind = AMQP_FIELD_KIND_BOOLEAN;
    b->nested_entry.value.value.boolean = 1;
    b->list[0].kind = AMQP_FIELD_KIND_I64;
    b->list[0].value.i64 = 5000000000; /* pika reads 64-bit integers as unsigned */
    b->list[1].kind = AMQP_FIELD_KIND_UTF8;
    b->list[1].value.bytes = amqp_cstring_bytes("two");
    for (size_t i = 0; i < n; i++) {
        snprintf(b->ids[i], sizeof b->ids[i], "%s-%zu", prefix, i);
        b->bodies[i] = malloc(sizes[i] ? sizes[i] : 1);
        if (!b->bodies[i])
            abort();
        for (size_t j = 0; j < sizes[i]; j++)
            b->bodies[i][j] = (unsigned char)((j * 7 + i) % 251);
        amqp_table_entry_t *e = b->entries[i];
        e[0].key = amqp_cstring_bytes(b->hkey);
        e[0].value.kind = AMQP_FIELD_KIND_I32;
        e[0].value.value.i32 = (int32_t)i;
        e[1].key = amqp_cstring_bytes("x-prefix");
        e[1].value.kind = AMQP_FIELD_KIND_UTF8;
        e[1].value.value.bytes = amqp_cstring_bytes(prefix);
        e[2].key = amqp_cstring_bytes("x-nested");
        e[2].value.kind = AMQP_FIELD_KIND_TABLE;
        e[2].value.value.table = (amqp_table_t){1, &b->nested_entry};
        e[3].key = amqp_cstring_bytes("x-list");
        e[3].value.kind = AMQP_FIELD_KIND_ARRAY;
        e[3].value.value.array = (amqp_array_t){2, b->list};
        b->tables[i] = (amqp_table_t){4, e};
        b->out[i] = (Outgoing){b->rk, b->ids[i], b->ct, &b->tables[i], b->bodies[i], sizes[i]};
    }
}

static uint64_t returns_seen;
static char return_key[300];

static void on_return(const char *routing_key)
{
    returns_seen++;
    snprintf(return_key, sizeof return_key, "%s", routing_key);
}

static void answer(bool ok, uint64_t tag, bool with_tag, const char *err)
{
    if (!ok)
        printf("fail %s\n", err);
    else if (with_tag)
        printf("ok %" PRIu64 "\n", tag);
    else
        printf("ok\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: driver URL EXCHANGE TYPE\n");
        return 2;
    }
    Publisher *p = publisher_new(argv[1], argv[2], argv[3], true, NULL);
    if (!p)
        return 1;
    char line[4096], err[512];
    while (fgets(line, sizeof line, stdin)) {
        char *save = NULL;
        char *cmd = strtok_r(line, " \n", &save);
        if (!cmd)
            continue;
        err[0] = '\0';
        if (!strcmp(cmd, "quit"))
            break;
        if (!strcmp(cmd, "publish") || !strcmp(cmd, "send")) {
            size_t n = strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
            const char *prefix = strtok_r(NULL, " \n", &save);
            size_t size = strtoul(strtok_r(NULL, " \n", &save), NULL, 10);
            size_t *sizes = calloc(n + 1, sizeof *sizes);
            if (!sizes)
                abort();
            for (size_t i = 0; i < n; i++)
                sizes[i] = size;
            Batch b;
            batch_make(&b, prefix, sizes, n);
            uint64_t tag = 0;
            bool ok = cmd[0] == 'p' ? publisher_publish(p, b.out, n, &tag, err, sizeof err)
                                    : publisher_send(p, b.out, n, err, sizeof err);
            answer(ok, tag, cmd[0] == 'p', err);
            batch_free(&b);
            free(sizes);
        } else if (!strcmp(cmd, "sizes")) {
            const char *prefix = strtok_r(NULL, " \n", &save);
            size_t sizes[64], n = 0;
            char *s;
            while (n < 64 && (s = strtok_r(NULL, " \n", &save)))
                sizes[n++] = strtoul(s, NULL, 10);
            Batch b;
            batch_make(&b, prefix, sizes, n);
            uint64_t tag = 0;
            bool ok = publisher_publish(p, b.out, n, &tag, err, sizeof err);
            answer(ok, tag, true, err);
            batch_free(&b);
        } else if (!strcmp(cmd, "long")) {
            const char *field = strtok_r(NULL, " \n", &save);
            const char *verb = strtok_r(NULL, " \n", &save);
            size_t size = 10;
            Batch b;
            batch_make(&b, "long", &size, 1);
            char *target = !strcmp(field, "rk") ? b.rk : !strcmp(field, "id") ? b.ids[0]
                         : !strcmp(field, "ct") ? b.ct : b.hkey;
            memset(target, 'L', 256);
            target[256] = '\0';
            b.entries[0][0].key = amqp_cstring_bytes(b.hkey);
            uint64_t tag = 0;
            bool ok = !strcmp(verb, "publish")
                          ? publisher_publish(p, b.out, 1, &tag, err, sizeof err)
                          : publisher_send(p, b.out, 1, err, sizeof err);
            answer(ok, tag, !strcmp(verb, "publish"), err);
            batch_free(&b);
        } else if (!strcmp(cmd, "wait")) {
            uint64_t tag = strtoull(strtok_r(NULL, " \n", &save), NULL, 10);
            answer(publisher_wait(p, tag, err, sizeof err), 0, false, err);
        } else if (!strcmp(cmd, "poll")) {
            publisher_poll(p);
            answer(true, 0, false, "");
        } else if (!strcmp(cmd, "mandatory")) {
            publisher_set_mandatory(p, "messages", on_return);
            answer(true, 0, false, "");
        } else if (!strcmp(cmd, "returned")) {
            snprintf(err, sizeof err, "callback %" PRIu64 " (last %s), publisher_returned %"
                     PRIu64, returns_seen, return_key, publisher_returned(p));
            answer(returns_seen == publisher_returned(p), returns_seen, true, err);
        } else if (!strcmp(cmd, "reset")) {
            publisher_reset(p);
            answer(true, 0, false, "");
        } else {
            answer(false, 0, false, "unknown command");
        }
    }
    publisher_free(p);
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver_bin(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the publisher driver")
    d = tmp_path_factory.mktemp("publisher-driver")
    src = d / "driver.c"
    src.write_text(DRIVER_C)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "librabbitmq", "jansson"],
                           capture_output=True, text=True, check=True).stdout.split() + ["-lm"]
    out = str(d / "driver")
    base = [cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
            "-Wno-format-truncation", "-g", "-O1",
            "-I", REPO, str(src)] + [os.path.join(REPO, f) for f in
                                      ("daemon/publisher.c", "daemon/amqp_conn.c", "lib/log.c",
                                       "lib/clock.c", "lib/grow.c",
                                       "config/config.c", "lib/jsontext.c",
                                       "lib/fixed.c")]
    sanitized = base + ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                        "-fno-omit-frame-pointer", "-o", out] + flags
    r = subprocess.run(sanitized, capture_output=True, text=True)
    if r.returncode != 0:   # no sanitizer runtime: a plain build
        r = subprocess.run(base + ["-o", out] + flags, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


class Proxy:
    """A TCP proxy to the broker; cut() closes every connection through it,
    refuse() also stops accepting new ones (until accept())."""

    def __init__(self, port):
        self.target = port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.refusing = False
        self.lock = threading.Lock()
        self.pairs = []
        self.accepted = 0
        self.done = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.done:
            r, _, _ = select.select([self.lsock], [], [], 0.1)
            if not r:
                continue
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            if self.refusing:
                c.close()
                continue
            try:
                s = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.append((c, s))
                self.accepted += 1
            threading.Thread(target=self._pump, args=(c, s), daemon=True).start()

    def _pump(self, a, b):
        socks = [a, b]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 0.5)
                if self.done:
                    return
                for x in r:
                    data = x.recv(1 << 16)
                    if not data:
                        return
                    (b if x is a else a).sendall(data)
        except OSError:
            return
        finally:
            for x in socks:
                try:
                    x.close()
                except OSError:
                    pass

    def cut(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for x in pair:
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.done = True
        self.cut()
        self.lsock.close()


class Driver:
    def __init__(self, binary, url, exchange, typ="topic"):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1")
        self.proc = subprocess.Popen([binary, url, exchange, typ], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.stderr = []
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def __call__(self, line, timeout=90):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert r, "driver: no answer to %r within %s s\n%s" % (line, timeout,
                                                               "".join(self.stderr))
        out = self.proc.stdout.readline().rstrip("\n")
        assert out, "driver exited after %r\n%s" % (line, "".join(self.stderr))
        return out

    def ok(self, line):
        out = self(line)
        assert out.startswith("ok"), "%s -> %s\n%s" % (line, out, "".join(self.stderr))
        rest = out[2:].strip()
        return int(rest) if rest else None

    def fail(self, line):
        out = self(line)
        assert out.startswith("fail "), "%s -> %s" % (line, out)
        return out[5:]

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        rc = self.proc.wait(timeout=30)
        time.sleep(0.1)
        errors = "".join(self.stderr)
        assert rc == 0, "driver exit %s\n%s" % (rc, errors)
        assert "Sanitizer" not in errors and "runtime error" not in errors, errors


@pytest.fixture()
def setup(rabbit, names):
    """(exchange, queue bound to it with rk.#, a pika channel)."""
    conn = rabbit.connection()
    ch = conn.channel()
    exchange, queue = names.hooks_exchange, names.hooks_queue
    ch.exchange_declare(exchange, "topic", durable=True)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, exchange, routing_key="rk.#")
    yield exchange, queue, ch
    try:
        ch.queue_delete(queue)
        ch.exchange_delete(exchange)
        conn.close()
    except Exception:  # noqa: BLE001 - best effort
        pass


@pytest.fixture()
def drivers(driver_bin):
    made = []

    def make(url, exchange, typ="topic"):
        d = Driver(driver_bin, url, exchange, typ)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


def fetch_all(ch, queue, expect, timeout=30):
    """Every message of the queue (at least `expect` of them): [(routing key,
    properties, body)], in order."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            if len(got) >= expect:
                break
            time.sleep(0.05)
            continue
        got.append((method.routing_key, props, body))
    return got


def check_message(msg, prefix, i, size):
    rk, props, body = msg
    assert rk == "rk.%s" % prefix
    assert props.message_id == "%s-%d" % (prefix, i)
    assert props.content_type == "application/octet-stream"
    assert props.delivery_mode == 2
    h = props.headers
    assert h["x-index"] == i and text(h["x-prefix"]) == prefix, h
    assert h["x-nested"] == {"k": True}, h
    assert [text(x) for x in h["x-list"]] == [5000000000, "two"], h
    assert len(body) == size, (prefix, i, len(body), size)
    assert body == body_of(size, i), "body of %s-%d (%d bytes) altered" % (prefix, i, size)


def test_async_batches_tags_and_properties(rabbit, setup, drivers):
    exchange, queue, ch = setup
    d = drivers(rabbit.url, exchange)
    assert d.ok("wait 0") is None               # nothing published: nothing to wait for
    assert d.ok("publish 0 none 0") == 0
    assert d.ok("publish 10 a 100") == 10
    assert d.ok("publish 0 none 0") == 10
    assert d.ok("publish 50 b 3000") == 60
    assert "not published" in d.fail("wait 61")
    d.ok("wait 60")
    d.ok("wait 10")
    d.ok("wait 60")
    d.ok("poll")
    got = fetch_all(ch, queue, 60)
    assert len(got) == 60
    for i in range(10):
        check_message(got[i], "a", i, 100)
    for i in range(50):
        check_message(got[10 + i], "b", i, 3000)
    # publisher_send on the same connection: its tags follow
    d.ok("send 5 c 10")
    assert d.ok("publish 1 d 0") == 66
    d.ok("wait 66")
    got = fetch_all(ch, queue, 6)
    assert [p.message_id for _, p, _ in got] == ["c-%d" % i for i in range(5)] + ["d-0"]


def test_bodies_split_at_the_frame_size(rabbit, setup, drivers):
    exchange, queue, ch = setup
    d = drivers(rabbit.url, exchange)
    sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1, 300 * 1024,
             3 * 1024 * 1024 + 5, 7]
    last = d.ok("sizes s " + " ".join(map(str, sizes)))
    assert last == len(sizes)
    d.ok("wait %d" % last)
    got = fetch_all(ch, queue, len(sizes))
    assert len(got) == len(sizes)
    for i, size in enumerate(sizes):
        check_message(got[i], "s", i, size)
    # and through publisher_send, several large ones in one batch
    d.ok("send 4 big %d" % (CHUNK * 3 + 17))
    got = fetch_all(ch, queue, 4)
    assert len(got) == 4
    for i in range(4):
        check_message(got[i], "big", i, CHUNK * 3 + 17)


@pytest.mark.parametrize("field,words", [("rk", "routing key"), ("id", "message id"),
                                         ("ct", "content type"), ("hkey", "headers")])
def test_short_strings_over_255_bytes_are_refused(rabbit, setup, drivers, field, words):
    exchange, queue, ch = setup
    d = drivers(rabbit.url, exchange)
    assert d.ok("publish 2 x 5") == 2
    assert words in d.fail("long %s publish" % field)
    assert words in d.fail("long %s send" % field)
    # nothing of it was published, the connection still works, tags go on
    assert d.ok("publish 1 y 5") == 3
    d.ok("wait 3")
    got = fetch_all(ch, queue, 3)
    assert [p.message_id for _, p, _ in got] == ["x-0", "x-1", "y-0"]


def test_nacks(rabbit, setup, drivers, names):
    """A bound queue taking 5 messages and refusing more: publisher_wait
    reports the nack; publisher_send publishes nacked messages again and
    gives up after its rounds; once there is room, both succeed."""
    exchange, queue, ch = setup
    small = "small-%s" % names.uid
    ch.queue_declare(small, durable=True,
                     arguments={"x-max-length": 5, "x-overflow": "reject-publish"})
    ch.queue_bind(small, exchange, routing_key="rk.#")
    try:
        d = drivers(rabbit.url, exchange)
        assert d.ok("publish 8 n 10") == 8
        assert "nacked" in d.fail("wait 8")
        assert "nacked" in d.fail("send 2 m 10")
        ch.queue_purge(small)
        d.ok("send 3 o 10")
        last = d.ok("publish 2 p 10")
        d.ok("wait %d" % last)
        assert d.ok("publish 1 q 10") == last + 1
        assert "nacked" in d.fail("wait %d" % (last + 1))      # 6th in the small queue
    finally:
        ch.queue_delete(small)


def test_unroutable_messages_are_returned_counted_and_confirmed(rabbit, setup, drivers):
    """With the mandatory flag, messages the exchange routes to no queue come
    back (basic.return, a header and as many body frames as their size takes,
    before their ack): each is counted once, and confirmed as the others (wait
    and send succeed); the routed ones arrive whole, in order. The warnings
    (at most one a minute, the rest when the publisher is freed) count them
    all."""
    exchange, queue, ch = setup
    ch.queue_unbind(queue, exchange, routing_key="rk.#")
    ch.queue_bind(queue, exchange, routing_key="rk.yes.#")
    d = drivers(rabbit.url, exchange)
    d.ok("mandatory")
    sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17, 7]
    d.ok("sizes no " + " ".join(map(str, sizes)))
    d.ok("sizes yes.a " + " ".join(map(str, sizes)))
    last = d.ok("publish 20 no 100")
    d.ok("wait %d" % last)
    assert d.ok("returned") == len(sizes) + 20
    d.ok("send 5 yes.b 10")
    d.ok("send 5 no %d" % (CHUNK + 1))
    assert d.ok("returned") == len(sizes) + 25
    last = d.ok("publish 1 yes.c 5")
    d.ok("wait %d" % last)
    d.ok("poll")
    assert d.ok("returned") == len(sizes) + 25
    got = fetch_all(ch, queue, len(sizes) + 6)
    assert len(got) == len(sizes) + 6
    for i, size in enumerate(sizes):
        check_message(got[i], "yes.a", i, size)
    for i in range(5):
        check_message(got[len(sizes) + i], "yes.b", i, 10)
    check_message(got[-1], "yes.c", 0, 5)
    d.close()
    warnings = re.findall(r"exchange %s: (\d+) messages unroutable in the last minute "
                          r"\(e\.g\. routing key rk\.no\)" % exchange, "".join(d.stderr))
    assert 1 <= len(warnings) <= 2, d.stderr
    assert sum(map(int, warnings)) == len(sizes) + 25, d.stderr


def test_lost_connections(rabbit, setup, drivers):
    """Connections cut by a proxy: publisher_wait reports the messages in
    flight as lost (once), tags go on counting over the new connection,
    publisher_send replaces a dead connection within the call, a broker that
    cannot be reached fails publish and send, publisher_reset forgets."""
    exchange, queue, ch = setup
    proxy = Proxy(rabbit.port)
    try:
        url = "amqp://guest:guest@127.0.0.1:%d/%%2f" % proxy.port
        d = drivers(url, exchange)
        assert d.ok("publish 5 a 10") == 5
        d.ok("wait 5")
        assert d.ok("publish 5 b 10") == 10
        proxy.cut()
        d.fail("wait 10")
        d.ok("wait 10")                          # reported once
        assert d.ok("publish 3 c 10") == 13     # a new connection, tags go on
        d.ok("wait 13")

        # lost while idle: publisher_poll drops the connection, the next
        # publish reconnects, the wait reports the lost ones
        assert d.ok("publish 4 d 10") == 17
        proxy.cut()
        time.sleep(0.3)
        d.ok("poll")
        assert d.ok("publish 2 e 10") == 19
        why = d.fail("wait 19")
        assert "14 to 17" in why, why
        d.ok("wait 19")

        # publisher_send on a connection cut while idle: a fresh one
        d.ok("send 3 f 10")
        proxy.cut()
        time.sleep(0.3)
        d.ok("send 3 g 10")

        # a connection cut under a large batch published without waiting
        last = d.ok("publish 20 h 200000")
        proxy.cut()
        d.fail("wait %d" % last)

        # the broker unreachable
        proxy.refusing = True
        proxy.cut()
        time.sleep(0.3)
        d.fail("publish 1 i 10")
        d.fail("send 1 i 10")
        proxy.refusing = False
        last = d.ok("publish 1 j 10")
        d.ok("wait %d" % last)

        # reset: forgets what is in flight
        last = d.ok("publish 2 k 10")
        d.ok("reset")
        d.ok("wait %d" % last)
        last = d.ok("publish 1 l 10")
        d.ok("wait %d" % last)
        assert proxy.accepted >= 6

        got = {p.message_id for _, p, _ in fetch_all(ch, queue, 0, timeout=2)}
        confirmed = (["a-%d" % i for i in range(5)] + ["c-%d" % i for i in range(3)]
                     + ["e-%d" % i for i in range(2)] + ["f-%d" % i for i in range(3)]
                     + ["g-%d" % i for i in range(3)] + ["j-0", "l-0"])
        missing = set(confirmed) - got
        assert not missing, missing
    finally:
        proxy.close()
