"""The README's "Action hooks" example: the JSON Schema and the loader both
accept it in the example configuration, and `relationd --check-config`
prints each hook as the README shows (no credentials, which one receives
the triggers). No server is needed."""

import json
import os
import subprocess

import jsonschema

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELATIOND = os.environ.get("RELATIOND", os.path.join(REPO, "build", "relationd"))

ENV = dict(os.environ, AMQP_PASSWORD="guest", PARTNER_TOKEN="t0ken",
           PARTNER_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def readme_section():
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    start = text.index("\n### Action hooks\n")
    return text[start:text.index("\n## ", start)]


def blocks(section, lang):
    """The fenced blocks of section whose opening fence names lang ("" none)."""
    found, current = [], None
    for line in section.split("\n"):
        if current is None and line.startswith("```"):
            current = [] if line[3:] == lang else False
        elif current is not None and line == "```":
            if current is not False:
                found.append("\n".join(current))
            current = None
        elif isinstance(current, list):
            current.append(line)
    return found


def test_readme_hooks_example(tmp_path):
    section = readme_section()
    hooks = json.loads(blocks(section, "json")[0])["hooks"]
    with open(os.path.join(REPO, "config", "relationd.example.json")) as f:
        doc = json.load(f)
    doc["hooks"] = hooks
    with open(os.path.join(REPO, "config", "relationd.schema.json")) as f:
        schema = json.load(f)
    assert [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)] == []

    path = tmp_path / "relationd.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    out = subprocess.run([RELATIOND, "-c", str(path), "--check-config"], capture_output=True,
                         text=True, env=ENV, timeout=30)
    assert out.returncode == 0, out.stderr
    shown = blocks(section, "")[0].split("\n")
    assert shown[0] == "/etc/relationd/relationd.json: ok (2 relations)"
    assert out.stdout.split("\n")[0] == "%s: ok (2 relations)" % path
    assert out.stdout.rstrip("\n").split("\n")[1:] == shown[1:], out.stdout
    assert "guest" not in out.stdout and "t0ken" not in out.stdout


def test_hook_errors_name_the_path(tmp_path):
    """The README's examples of refusals, as the loader writes them."""
    section = readme_section()
    base = json.loads(blocks(section, "json")[0])["hooks"]
    with open(os.path.join(REPO, "config", "relationd.example.json")) as f:
        example = json.load(f)
    cases = [
        (2, {"topic": "t", "kind": "http", "url": "https://h/"}, "hooks[2].topic: only for kind kafka"),
        (3, {"filter": {"relations": ["referals"]}},
         'hooks[3].filter.relations[0]: no relation "referals"'),
    ]
    for i, change, message in cases:
        hooks = json.loads(json.dumps(base))
        hooks[i].update(change)
        if change.get("kind") == "http":
            for k in ("brokers", "properties"):
                hooks[i].pop(k)
        doc = dict(example, hooks=hooks)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        out = subprocess.run([RELATIOND, "-c", str(path), "--check-config"], capture_output=True,
                             text=True, env=ENV, timeout=30)
        assert out.returncode == 1
        assert out.stderr.strip() == "relationd: %s: %s" % (path, message)
        assert "`%s`" % message in section.replace("\n  ", " ")


def test_no_amqp_exchange_hook(tmp_path):
    """Without a hook of kind amqp with a topic exchange a source is accepted
    (every hook receives the triggers its filter passes); relationctl watch
    says what it needs."""
    relationctl = os.environ.get("RELATIONCTL", os.path.join(REPO, "build", "relationctl"))
    with open(os.path.join(REPO, "config", "relationd.example.json")) as f:
        doc = json.load(f)
    doc["hooks"] = [{"name": "partner", "kind": "http", "url": "https://partner.example/hook"},
                    {"name": "d", "kind": "amqp", "url": "amqp://127.0.0.1/", "exchange": "x",
                     "exchange_type": "direct"}]
    path = tmp_path / "relationd.json"
    path.write_text(json.dumps(doc))
    out = subprocess.run([RELATIOND, "-c", str(path), "--check-config"], capture_output=True,
                         text=True, env=ENV, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "hook partner: http POST https://partner.example/hook" in out.stdout
    del doc["kafka"], doc["amqp"]
    path.write_text(json.dumps(doc))
    out = subprocess.run([relationctl, "-c", str(path), "watch"], capture_output=True,
                         text=True, env=ENV, timeout=30)
    assert out.returncode == 2
    assert "watch needs a hook of kind amqp with a topic exchange" in out.stderr


def test_routing_keys_over_255_bytes_are_refused_at_load(tmp_path):
    """AMQP routing keys, exchange and queue names are short strings (255
    bytes at most): a direct exchange's key <database>.<event_type> that
    could be longer is refused naming the database's setting and the hook
    (the hook would otherwise retry that trigger forever); the filter is
    taken into account; a longer queue name is refused too."""
    section = readme_section()
    hooks = json.loads(blocks(section, "json")[0])["hooks"]
    with open(os.path.join(REPO, "config", "relationd.example.json")) as f:
        example = json.load(f)
    hooks[0]["exchange_type"] = "direct"
    relations = json.loads(json.dumps(example["relations"]))
    relations[0]["database_b"] = "d" * 229          # 229 + len(".relation_reverse_attach") = 253

    def check(hooks, relations):
        path = tmp_path / "keys.json"
        path.write_text(json.dumps(dict(example, hooks=hooks, relations=relations)))
        path.chmod(0o600)
        return subprocess.run([RELATIOND, "-c", str(path), "--check-config"],
                              capture_output=True, text=True, env=ENV, timeout=30), path

    out, _ = check(hooks, relations)
    assert out.returncode == 1
    message = ("relations[0].database_b: 229 bytes: the routing key "
               "<database>.relation_reverse_threshold of hooks[0] (a direct exchange) would be "
               "256 bytes, more than AMQP's 255")
    assert out.stderr.strip().endswith(": " + message), out.stderr
    assert "`%s`" % message in section.replace("\n  ", " ")
    hooks[0]["filter"] = {"kinds": ["attach", "change", "detach"]}   # at most 253 bytes
    out, _ = check(hooks, relations)
    assert out.returncode == 0, out.stderr
    hooks[0]["filter"] = {"directions": ["direct"]}                  # database_a only
    relations[0]["database_b"] = "d" * 1000
    out, _ = check(hooks, relations)
    assert out.returncode == 0, out.stderr
    hooks[1]["queue"] = "q" * 256
    out, _ = check(hooks, relations)
    assert out.returncode == 1
    assert out.stderr.strip().endswith(": hooks[1].queue: 256 bytes, more than AMQP's 255")
