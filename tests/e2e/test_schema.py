"""config/relationd.schema.json, the JSON Schema of the configuration file for
editors, agrees with the loader (`relationd --check-config`): the example is
valid for both; each broken variation of it is refused by both; each valid
variation (optional sections left out, ${NAME} in a checked string, ...) is
accepted by both; and the schema names exactly the keys config.c takes, with
their types, defaults and bounds, as its table has them (relationd
--dump-config-table), and the README's configuration table is that table.
No server is needed: --check-config without --connect reads only the file."""

import copy
import json
import os
import subprocess

import jsonschema
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIOND = os.environ.get("RELATIOND", os.path.join(REPO, "build", "relationd"))
SCHEMA_PATH = os.path.join(REPO, "config", "relationd.schema.json")
EXAMPLE_PATH = os.path.join(REPO, "config", "relationd.example.json")

# The example takes the AMQP password from the environment.
ENV = dict(os.environ, AMQP_PASSWORD="guest", RELATIOND_SCHEMA_LEVEL="debug",
           RELATIOND_SCHEMA_PREFIX="t:")


def load(path):
    with open(path) as f:
        return json.load(f)


SCHEMA = load(SCHEMA_PATH)
EXAMPLE = load(EXAMPLE_PATH)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def schema_errors(doc):
    return sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))


def check_config(tmp_path, doc):
    path = tmp_path / "relationd.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    out = subprocess.run([RELATIOND, "-c", str(path), "--check-config"], capture_output=True,
                         text=True, env=ENV, timeout=30)
    return out


# ---- variations of the example ----

DELETE = object()


def mutate(*changes):
    """The example with changes: (path, value); value DELETE removes the key, an
    index one past a list's end appends."""
    doc = copy.deepcopy(EXAMPLE)
    for path, value in changes:
        node = doc
        for step in path[:-1]:
            node = node[step]
        if value is DELETE:
            del node[path[-1]]
        elif isinstance(node, list) and path[-1] == len(node):
            node.append(value)
        else:
            node[path[-1]] = value
    return doc


P0 = ("relations", 0, "properties", 0)   # profit: float, save_amount, save_top
T0 = ("relations", 0, "thresholds")

# id, the document, what the loader's message starts with (its JSON path)
BROKEN = [
    ("batch_size_negative", mutate((("engine", "batch_size"), -1)), "engine.batch_size:"),
    ("batch_size_string", mutate((("engine", "batch_size"), "256")), "engine.batch_size:"),
    ("timeout_zero", mutate((("redis", "timeout_ms"), 0)), "redis.timeout_ms:"),
    ("unknown_engine_key", mutate((("engine", "tombstone_ttl"), 5)), "engine.tombstone_ttl:"),
    ("unknown_root_key", mutate((("$schema",), "./relationd.schema.json")), "$schema: unknown key"),
    ("unknown_property_key", mutate((P0 + ("top",), 3)),
     "relations[0].properties[0].top: unknown key"),
    ("log_level_enum", mutate((("engine", "log_level"), "verbose")), "engine.log_level:"),
    ("property_type_floaty", mutate((P0 + ("type",), "floaty")),
     "relations[0].properties[0].type:"),
    ("threshold_direction_sideways", mutate((T0 + (0, "direction"), "sideways")),
     "relations[0].thresholds[0].direction:"),
    ("threshold_stat_enum", mutate((T0 + (0, "stat"), "sum")),
     "relations[0].thresholds[0].stat:"),
    ("missing_redis_url", mutate((("redis", "url"), DELETE)), "redis.url: required"),
    ("missing_relations", mutate((("relations",), DELETE)), "relations: required"),
    ("missing_database_b", mutate((("relations", 1, "database_b"), DELETE)),
     "relations[1].database_b: required"),
    ("empty_database_a", mutate((("relations", 1, "database_a"), "")),
     "relations[1].database_a: must not be empty"),
    ("missing_property_type", mutate((P0 + ("type",), DELETE)),
     "relations[0].properties[0].type: required"),
    ("relation_short_pattern", mutate((("relations", 0, "short"), "Loyal-Managers")),
     "relations[0].short:"),
    ("property_not_object", mutate((P0, "profit")), "relations[0].properties[0]: must be an object"),
    ("too_many_properties",
     mutate((("relations", 1, "properties"),
             [{"short": "p%d" % i, "type": "int"} for i in range(12)])),
     "relations[1].properties: at most 11"),
    ("save_top_limit_21", mutate((P0 + ("save_top", "limit"), 21)),
     "relations[0].properties[0].save_top.limit:"),
    ("save_top_without_limit", mutate((P0 + ("save_top",), {"order": "asc"})),
     "relations[0].properties[0].save_top.limit: required"),
    ("save_top_order", mutate((P0 + ("save_top", "order"), "up")),
     "relations[0].properties[0].save_top.order:"),
    ("save_amount_on_bool", mutate((("relations", 0, "properties", 2, "save_amount"), True)),
     "relations[0].properties[2].save_amount:"),
    ("save_top_on_bool",
     mutate((("relations", 0, "properties", 2, "save_top"), {"order": "desc", "limit": 3})),
     "relations[0].properties[2].save_top:"),
    ("edge_without_property", mutate((T0 + (2, "property"), DELETE)),
     "relations[0].thresholds[2].property: required"),
    ("count_value_fraction", mutate((T0 + (1, "value"), 2.5)),
     "relations[0].thresholds[1].value:"),
    ("threshold_without_value", mutate((T0 + (1, "value"), DELETE)),
     "relations[0].thresholds[1].value: required"),
    ("threshold_name_pattern", mutate((T0 + (1, "name"), "five/more")),
     "relations[0].thresholds[1].name:"),
    ("key_prefix_brace", mutate((("redis", "key_prefix"), "rel:{x}:")), "redis.key_prefix:"),
    ("master_name_without_sentinels", mutate((("redis", "master_name"), "mymaster")),
     "redis.sentinels: required with redis.master_name"),
    ("sentinels_without_master_name", mutate((("redis", "sentinels"), ["127.0.0.1:26379"])),
     "redis.master_name: required with redis.sentinels"),
    ("seed_port_out_of_range", mutate((("redis", "seeds"), ["127.0.0.1:70000"])),
     "redis.seeds[0]:"),
    ("wait_replicas_17", mutate((("redis", "wait_replicas"), 17)), "redis.wait_replicas:"),
    ("http_listen_no_host", mutate((("http", "listen"), "9464")), "http.listen:"),
    ("http_token_empty", mutate((("http", "token"), "")), "http.token:"),
    ("hooks_missing_with_sources", mutate((("hooks",), DELETE)), "hooks: required"),
    ("kafka_topics_empty", mutate((("kafka", "topics"), [])), "kafka.topics:"),
    ("kafka_auto_commit", mutate((("kafka", "properties", "enable.auto.commit"), True)),
     "kafka.properties.enable.auto.commit:"),
    ("kafka_group_id_property", mutate((("kafka", "properties", "group.id"), "other")),
     "kafka.properties.group.id:"),
    ("kafka_property_object", mutate((("kafka", "properties", "linger.ms"), {"ms": 5})),
     "kafka.properties.linger.ms:"),
    ("amqp_prefetch_70000", mutate((("amqp", "prefetch"), 70000)), "amqp.prefetch:"),
    ("amqp_declare_string", mutate((("amqp", "declare"), "yes")), "amqp.declare:"),
    ("amqp_dead_letter_argument",
     mutate((("amqp", "queue_arguments"), {"x-dead-letter-exchange": "other"})),
     "amqp.queue_arguments.x-dead-letter-exchange:"),
    ("amqp_missing_queue", mutate((("amqp", "queue"), DELETE)), "amqp.queue: required"),
    ("tls_cert_without_key",
     mutate((("hooks", "url"), "amqps://guest:${AMQP_PASSWORD}@127.0.0.1:5671/%2f"),
            (("hooks", "tls"), {"cert": "/etc/hostname"})),
     "hooks.tls: cert and key go together"),
    ("tls_unknown_key",
     mutate((("hooks", "url"), "amqps://guest:${AMQP_PASSWORD}@127.0.0.1:5671/%2f"),
            (("hooks", "tls"), {"verify_host": False})),
     "hooks.tls.verify_host: unknown key"),
]


# a list of named hooks in place of the example's single object
HOOK_AMQP = {"name": "default", "kind": "amqp", "url": "amqp://guest:${AMQP_PASSWORD}@127.0.0.1:5672/%2f",
             "exchange": "relation.hooks"}
HOOK_HTTP = {"name": "partner", "kind": "http", "url": "https://partner.example/hook",
             "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}


def hooks(*more):
    return mutate((("hooks",), [HOOK_AMQP] + list(more)))


BROKEN += [
    ("hooks_empty_list", mutate((("hooks",), [])), "hooks:"),
    ("hook_without_kind", hooks({"name": "x"}), "hooks[1].kind: required"),
    ("hook_kind_enum", hooks(dict(HOOK_HTTP, kind="smtp")), "hooks[1].kind:"),
    ("hook_name_pattern", hooks(dict(HOOK_HTTP, name="Partner")), "hooks[1].name:"),
    ("hook_unknown_key", hooks(dict(HOOK_HTTP, batchsize=5)), "hooks[1].batchsize: unknown key"),
    ("hook_batch_size_10001", hooks(dict(HOOK_HTTP, batch_size=10001)), "hooks[1].batch_size:"),
    ("hook_secret_form", hooks(dict(HOOK_HTTP, secret="s3cr3t")), "hooks[1].secret:"),
    ("hook_header_number", hooks(dict(HOOK_HTTP, headers={"X-A": 1})), "hooks[1].headers.X-A:"),
    ("hook_filter_kind", hooks(dict(HOOK_HTTP, filter={"kinds": ["attached"]})),
     "hooks[1].filter.kinds[0]:"),
    ("hook_filter_empty", hooks(dict(HOOK_HTTP, filter={"directions": []})),
     "hooks[1].filter.directions:"),
    ("hook_kafka_acks", hooks({"name": "lake", "kind": "kafka", "brokers": "h:9092", "topic": "t",
                               "properties": {"acks": 1}}), "hooks[1].properties.acks:"),
]


def without(*sections):
    doc = copy.deepcopy(EXAMPLE)
    for s in sections:
        del doc[s]
    return doc


BOOL_EDGE = {"direction": "reverse", "stat": "edge", "property": "approve", "value": True,
             "name": "approved once"}

VALID = [
    ("no_http", without("http")),
    ("no_kafka", without("kafka")),
    ("no_amqp", without("amqp")),
    ("no_sources_no_hooks", without("kafka", "amqp", "hooks")),
    ("no_engine", without("engine")),
    ("minimal", {"redis": {"url": "redis://127.0.0.1"}, "relations": []}),
    ("env_in_checked_strings", mutate((("engine", "log_level"), "${RELATIOND_SCHEMA_LEVEL}"),
                                      (("redis", "key_prefix"), "${RELATIOND_SCHEMA_PREFIX}"))),
    ("bool_edge_threshold", mutate((T0 + (3,), BOOL_EDGE))),
    ("count_of_property", mutate((T0 + (3,), {"direction": "direct", "stat": "count",
                                              "property": "approve", "value": -3}))),
    ("sentinels", mutate((("redis", "sentinels"), ["127.0.0.1:26379", "[::1]:26380"]),
                         (("redis", "master_name"), "mymaster"))),
    ("kafka_numbers_and_booleans",
     mutate((("kafka", "properties"), {"session.timeout.ms": 6000, "enable.auto.commit": False,
                                       "auto.offset.reset": "error"}))),
    ("quorum_queue", mutate((("amqp", "queue_arguments"),
                             {"x-queue-type": "quorum", "x-delivery-limit": 20}),
                            (("amqp", "declare"), False), (("hooks", "declare"), False))),
    ("save_top_default_order", mutate((P0 + ("save_top",), {"limit": 20}))),
    ("tls_verify_off",
     mutate((("hooks", "url"), "amqps://guest:${AMQP_PASSWORD}@127.0.0.1:5671/%2f"),
            (("hooks", "tls"), {"verify": False}))),
    ("hooks_list", hooks(
        {"name": "crm", "kind": "amqp", "url": "amqp://guest:${AMQP_PASSWORD}@127.0.0.1/%2f",
         "queue": "crm.relations", "filter": {"kinds": ["attach", "detach"]}},
        {"name": "lake", "kind": "kafka", "brokers": "h:9092", "topic": "relation-triggers",
         "properties": {"security.protocol": "plaintext", "acks": "all"}},
        dict(HOOK_HTTP, batch_size=10000, batch_ms=1, timeout_ms=3000, success_regex=".*OK.*",
             headers={"Authorization": "Bearer ${AMQP_PASSWORD}"}, max_backlog=1,
             filter={"relations": ["referrals"], "directions": ["direct"]}))),
    # the edges of the ranges and patterns
    ("boundaries",
     mutate((("redis", "seeds"), ["h:1", "h:65535", "h: +080", "::1:6379"] + ["h:2"] * 12),
            (("redis", "wait_replicas"), 16), (("redis", "key_prefix"), ""),
            (("engine", "shutdown_timeout_ms"), 100), (("engine", "retry_max_ms"), 3600000),
            (("amqp", "prefetch"), 65535), (("http", "listen"), "[::1]:65535"),
            (("relations", 1, "short"), "r" * 64),
            (T0 + (1, "value"), -2147483647), (T0 + (1, "name"), "n" * 64),
            (T0 + (0, "value"), 9007199254), (T0 + (2, "value"), 1000000000000000))),
]


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_defaults_are_valid():
    """Every `default` satisfies the subschema it sits in."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "default" in node:
                sub = dict(node, **{"$defs": SCHEMA["$defs"]})
                errors = list(jsonschema.Draft202012Validator(sub).iter_errors(node["default"]))
                assert not errors, (node, errors)
                found.append(node["default"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(SCHEMA)
    assert len(found) >= 15


def test_example_is_valid(tmp_path):
    assert [e.message for e in schema_errors(EXAMPLE)] == []
    out = check_config(tmp_path, EXAMPLE)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("name,doc,where", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_is_refused_by_both(tmp_path, name, doc, where):
    assert schema_errors(doc), "the schema accepts %s" % name
    out = check_config(tmp_path, doc)
    assert out.returncode == 1, out.stdout
    message = out.stderr.strip()
    # relationd: FILE: PATH: reason
    assert message.split(": ", 2)[2].startswith(where), message


@pytest.mark.parametrize("name,doc", VALID, ids=[v[0] for v in VALID])
def test_valid_variation_is_accepted_by_both(tmp_path, name, doc):
    assert [e.message for e in schema_errors(doc)] == []
    out = check_config(tmp_path, doc)
    assert out.returncode == 0, out.stderr


# ---- the loader's table (relationd --dump-config-table) is the one source ----

def config_table():
    out = subprocess.run([RELATIOND, "--dump-config-table"], capture_output=True, text=True,
                         timeout=30, check=True)
    return json.loads(out.stdout)


TABLE = config_table()

# where each section of the table sits in the schema
SECTIONS = {
    "": [()],
    "redis": [("properties", "redis")],
    "engine": [("properties", "engine")],
    "kafka": [("properties", "kafka")],
    "amqp": [("properties", "amqp")],
    "hooks": [("properties", "hooks")],
    "http": [("properties", "http")],
    "tls": [("properties", "amqp", "properties", "tls"), ("properties", "hooks", "properties", "tls"),
            ("$defs", "hook", "properties", "tls")],
    "hook": [("$defs", "hook")],
    "filter": [("$defs", "hook", "properties", "filter")],
    "relation": [("$defs", "relation")],
    "property": [("$defs", "property")],
    "save_top": [("$defs", "property", "properties", "save_top")],
    "threshold": [("$defs", "threshold")],
}

SCHEMA_TYPE = {"string": "string", "short": "string", "enum": "string", "integer": "integer",
               "boolean": "boolean", "number": "number", "object": "object", "map": "object",
               "array": "array"}


def schema_node(*path):
    node = SCHEMA
    for step in path:
        node = node[step]
    return node


def resolve(node):
    while "$ref" in node:
        node = schema_node(*node["$ref"].lstrip("#/").split("/"))
    return node


def schema_keys(*path):
    node = schema_node(*path)
    assert node.get("additionalProperties") is False, path
    return sorted(node["properties"])


def test_schema_has_the_loaders_keys():
    """The schema names exactly the keys the loader takes, object by object."""
    assert sorted({row["section"] for row in TABLE}) == sorted(SECTIONS)
    for section, places in SECTIONS.items():
        keys = sorted(row["key"] for row in TABLE if row["section"] == section)
        for place in places:
            assert keys == schema_keys(*place), (section, place)


@pytest.mark.parametrize("row", TABLE, ids=[r["paths"][0] for r in TABLE])
def test_schema_agrees_with_the_table(row):
    """Each key's type, default, bounds, names and being required, as the loader has them."""
    for place in SECTIONS[row["section"]]:
        parent = schema_node(*place)
        node = resolve(parent["properties"][row["key"]])
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        assert SCHEMA_TYPE[row["type"]] in types, node
        assert node.get("default") == row["default"], node
        if row["type"] == "integer":
            assert (node.get("minimum"), node.get("maximum")) == (row["minimum"], row["maximum"])
        if row["type"] == "array":
            assert node.get("maxItems") == row["maximum"], node
        if row["type"] == "enum":
            assert node["else"]["enum"] == row["enum"], node
        if row["type"] == "short":
            assert parent["properties"][row["key"]]["$ref"] == "#/$defs/short"
        assert (row["key"] in parent.get("required", [])) == row["required"], row


# ---- the README's configuration table is the loader's table ----

def readme_rows():
    """The README's table, generated from the loader's: one row per key."""
    rows = ["| key | meaning | default | reload |", "| --- | --- | --- | --- |"]
    for row in TABLE:
        key = ", ".join("`%s`" % p for p in row["paths"])
        if row["required"]:
            default = "required"
        elif row["default"] is None:
            default = "none"
        else:
            default = "`%s`" % json.dumps(row["default"]).strip('"')
        reload = "SIGHUP" if row["reloadable"] else "restart"
        doc = row["doc"]
        if row["enum"]:
            names = ["`%s`" % v for v in row["enum"]]
            doc += ": " + ", ".join(names[:-1]) + " or " + names[-1]
        rows.append("| %s | %s | %s | %s |" % (key, doc, default, reload))
    return rows


def test_readme_configuration_table_is_the_loaders():
    with open(os.path.join(REPO, "README.md")) as f:
        lines = f.read().split("\n")
    start = lines.index("| key | meaning | default | reload |")
    end = lines.index("", start)
    assert lines[start:end] == readme_rows(), "\n" + "\n".join(readme_rows())
