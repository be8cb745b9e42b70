"""make check-layers (tools/check-layers.sh): the layers point down
(lib < config < handlers < daemon < ctl), and module/ (the Redis module)
includes nothing of theirs. It passes on the tree as it is, and
fails, naming the file, the line and the header, once an upward include is
planted in a copy of the tree."""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tools", "check-layers.sh")
LAYERS = ["lib", "config", "handlers", "daemon", "ctl", "module"]


def check(root):
    return subprocess.run(["sh", SCRIPT, str(root)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "tree"
    for layer in LAYERS:
        if os.path.isdir(os.path.join(REPO, layer)):
            shutil.copytree(os.path.join(REPO, layer), root / layer)
    return root


def plant(path, header):
    text = path.read_text()
    path.write_text('#include "%s"\n' % header + text)


def test_the_tree_passes():
    out = check(REPO)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("where,header", [
    ("lib/jsonbuf.c", "config/config.h"),
    ("lib/log.h", "daemon/lifecycle.h"),
    ("config/config.c", "handlers/engine.h"),
    ("handlers/router.c", "daemon/metrics.h"),
])
def test_an_upward_include_fails(tree, where, header):
    assert check(tree).returncode == 0
    plant(tree / where, header)
    out = check(tree)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "%s:1: " % where in out.stdout and header in out.stdout, out.stdout


def test_a_daemon_file_including_the_tool_fails(tree):
    (tree / "ctl").mkdir(exist_ok=True)
    (tree / "ctl" / "tool.h").write_text("/* a header of the tool */\n")
    plant(tree / "daemon" / "main.c", "ctl/tool.h")
    out = check(tree)
    assert out.returncode == 1 and "daemon/main.c:1: " in out.stdout, out.stdout


def test_includes_downward_and_system_headers_pass(tree):
    plant(tree / "daemon" / "main.c", "lib/log.h")
    plant(tree / "handlers" / "router.c", "config/config.h")
    (tree / "lib" / "jsonbuf.c").write_text("#include <stdio.h>\n" +
                                            (tree / "lib" / "jsonbuf.c").read_text())
    out = check(tree)
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("header", ["lib/log.h", "handlers/engine.h"])
def test_the_module_including_another_layer_fails(tree, header):
    """module/ runs inside redis-server: even the lowest layer (malloc) is not its own."""
    plant(tree / "module" / "apply.c", "module/num.h")      # its own: fine
    assert check(tree).returncode == 0
    plant(tree / "module" / "apply.c", header)
    out = check(tree)
    assert out.returncode == 1 and "module/apply.c:1: " in out.stdout and header in out.stdout, \
        out.stdout
