"""Layout 2's raw keys as the README's "Redis key layout" describes them, for the
end-to-end tests that inspect what the engine wrote: the side hash (its window
`#w` is binary), event keys, packed edge values decoded by the relation's
slots (`Pschema`), and the bounded top's rule."""

import hashlib

import redis


def event_key(event_id, counterpart):
    """The 8-byte event key: SHA-1 of the event id, NUL, the counterpart."""
    return hashlib.sha1(("%s\0%s" % (event_id, counterpart)).encode()).digest()[:8]


def raw(rdb, command, *args, **options):
    """A command of the client rdb (which decodes replies; a Redis or a
    RedisCluster) made by a client of the same server(s) that does not: its
    reply as bytes."""
    if isinstance(rdb, redis.RedisCluster):
        node = rdb.get_default_node()
        client = redis.RedisCluster(host=node.host, port=node.port, decode_responses=False)
    else:
        client = redis.Redis(**dict(rdb.connection_pool.connection_kwargs,
                                    decode_responses=False))
    try:
        return getattr(client, command)(*args, **options)
    finally:
        client.close()


def side(rdb, key):
    """The side hash key read by a client rdb that decodes replies: every
    field, as text but the window `#w` (bytes)."""
    h = raw(rdb, "hgetall", key)
    return {f.decode(): (v if f == b"#w" else v.decode()) for f, v in h.items()}


def ids(rdb, key):
    """The event keys of a side's ring `P{R:S:X}:ids` (a string of 8-byte
    keys), in the string's order ([]: no key)."""
    s = raw(rdb, "get", key) or b""
    assert len(s) % 8 == 0, s
    return [s[i:i + 8] for i in range(0, len(s), 8)]


def ring(rdb, tag, dedup_ids):
    """The event keys of a side in ring mode (tag: 'P{R:S:X}:'), oldest
    first: the string read from `#z` (the next position) on once it holds
    dedup_ids keys, else in its order."""
    keys = ids(rdb, tag + "ids")
    if len(keys) < dedup_ids:
        return keys
    z = int(side(rdb, tag + "side")["#z"])
    return keys[z:] + keys[:z]


def window(rdb, key):
    """The event keys of a side's hash window `#w`, oldest first ([]: none)."""
    w = side(rdb, key).get("#w", b"")
    assert len(w) % 8 == 0, w
    return [w[i:i + 8] for i in range(0, len(w), 8)]


def slots(rdb, relation, prefix="rel:"):
    """The relation's property names in slot order (`Pschema`), or []."""
    names = rdb.hget(prefix + "schema", relation)
    return names.split(",") if names else []


def decode_edge(raw, names, bools=()):
    """A packed edge value: {"version": str or None, "weights": {name: int or
    bool}} (names: the slots; bools: the names of bool properties)."""
    assert raw is not None
    version = None
    if ";" in raw:
        version, raw = raw.split(";", 1)
        assert version == str(int(version)), version
    weights = {}
    if raw != "":
        positions = raw.split(",")
        assert positions[-1] != "", "a trailing empty position: %r" % raw
        for name, text in zip(names, positions):
            if text == "":
                continue
            assert text == str(int(text)), "position %r of %r" % (text, raw)
            if name in bools:
                assert text in ("0", "1"), raw
                weights[name] = text == "1"
            else:
                weights[name] = int(text)
        assert len(positions) <= len(names), "more positions than slots: %r" % raw
    return {"version": version, "weights": weights}


def edge(rdb, relation, side_key, counterpart, bools=(), prefix="rel:"):
    """The edge to counterpart stored in side_key, decoded (None: no edge)."""
    raw = rdb.hget(side_key, "@" + counterpart)
    if raw is None:
        return None
    return decode_edge(raw, slots(rdb, relation, prefix), bools)


def edges(rdb, relation, side_key, bools=(), prefix="rel:"):
    """Every edge of side_key, decoded: {counterpart: edge}."""
    names = slots(rdb, relation, prefix)
    return {f[1:]: decode_edge(v, names, bools)
            for f, v in rdb.hscan_iter(side_key, match="@*")}


def order(values, desc):
    """(member, value) pairs in a top's order: value, then member bytes, both
    descending (desc) or ascending."""
    return sorted(values.items(), key=lambda kv: (kv[1], kv[0].encode()), reverse=desc)


def check_top(rdb, key, values, count, limit, desc):
    """The bounded top in key holds what the README says for a side of count
    edges whose property values are `values` ({counterpart: units}): no key
    while count <= limit, else a prefix of the order of between
    min(limit, len(values)) and 2 * limit members, scores the values."""
    got = rdb.zrange(key, 0, -1, desc=desc, withscores=True)
    if count <= limit:
        assert got == [], (key, count, got)
        return
    want = order(values, desc)
    z = len(got)
    assert min(limit, len(values)) <= z <= 2 * limit, (key, z, len(values))
    assert [(m, int(s)) for m, s in got] == want[:z], (key, got, want[:z])
