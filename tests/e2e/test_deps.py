"""tools/deps.sh, which `make test` and `make demo` run first: quiet when every
package is there, installs what is missing as root, otherwise prints the one
command to run and fails; then the source of Debian's redis package (for
redismodule.h), fetched once into REDIS_SRC_CACHE. dpkg-query, apt-get and
id are replaced by scripts on PATH (no package is really installed, no source
really downloaded)."""

import os
import stat
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPS = os.path.join(ROOT, "tools", "deps.sh")


def shims(tmp_path, missing, uid, redis_src=True, playwright=True):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "apt-calls"
    cache = tmp_path / "cache"
    cache.mkdir()
    if redis_src:
        (cache / "redis_7.0.15.orig.tar.gz").write_text("")
    node_tools = tmp_path / "node-tools"
    if playwright:
        (node_tools / "node_modules" / "playwright-core").mkdir(parents=True)
        (node_tools / "node_modules" / "playwright-core" / "package.json").write_text("{}")
    scripts = {
        "dpkg-query": 'for a; do p=$a; done\ncase " %s " in *" $p "*) echo "unknown ok not-installed"; exit 1;; esac\n'
                      'printf "install ok installed"\n' % " ".join(missing),
        # `apt-get source` leaves the orig tarball in the current directory
        "apt-get": 'echo "$*" >> %s\ncase "$*" in *source*) : > redis_7.0.15.orig.tar.gz;; esac\n'
                   % calls,
        "id": 'echo %d\n' % uid,
        "npm": 'echo "npm $*" >> %s\n' % calls,
    }
    for name, body in scripts.items():
        path = bindir / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]),
               REDIS_SRC_CACHE=str(cache), DEB_SRC_FILE=str(tmp_path / "debian-src.sources"),
               NODE_TOOLS_DIR=str(node_tools))
    return env, calls


def run(env):
    return subprocess.run(["sh", DEPS], env=env, capture_output=True, text=True, timeout=60)


def test_nothing_missing_is_quiet(tmp_path):
    env, calls = shims(tmp_path, [], 0)
    p = run(env)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p
    assert not calls.exists()


def test_root_installs_only_what_is_missing(tmp_path):
    env, calls = shims(tmp_path, ["libcmocka-dev", "rabbitmq-server"], 0)
    p = run(env)
    assert p.returncode == 0, p
    lines = calls.read_text().splitlines()
    assert lines[0].split() == ["update", "-qq"], lines
    words = lines[1].split()
    assert words[0] == "install" and "-y" in words, lines
    assert sorted(w for w in words[1:] if not w.startswith("-")) == \
        ["libcmocka-dev", "rabbitmq-server"], lines


def test_another_user_is_told_the_command(tmp_path):
    env, calls = shims(tmp_path, ["librdkafka-dev"], 1000)
    p = run(env)
    assert p.returncode == 1, p
    assert "sudo apt-get install -y librdkafka-dev" in p.stderr, p.stderr
    assert not calls.exists()


def test_root_fetches_the_redis_source_once(tmp_path):
    """No orig tarball in the cache: a deb-src entry for bookworm is written
    when missing, then apt-get source --download-only redis into the cache;
    run again, nothing is fetched."""
    env, calls = shims(tmp_path, [], 0, redis_src=False)
    p = run(env)
    assert p.returncode == 0, p
    lines = calls.read_text().splitlines()
    assert lines[0].split() == ["update", "-qq"], lines
    assert lines[1].split()[:2] == ["source", "--download-only"] and lines[1].split()[-1] == "redis"
    sources = (tmp_path / "debian-src.sources").read_text()
    assert "Types: deb-src" in sources and "Suites: bookworm bookworm-updates" in sources
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in sources
    assert (tmp_path / "cache" / "redis_7.0.15.orig.tar.gz").exists()
    calls.unlink()
    p = run(env)
    assert p.returncode == 0 and p.stderr == "", p
    assert not calls.exists()


def test_another_user_is_told_to_fetch_the_redis_source(tmp_path):
    env, calls = shims(tmp_path, [], 1000, redis_src=False)
    p = run(env)
    assert p.returncode == 1, p
    assert "sudo sh tools/deps.sh" in p.stderr and "redis's source" in p.stderr, p.stderr
    assert not calls.exists()


def test_playwright_core_installed_by_npm_when_missing(tmp_path):
    """The browser test's driver: playwright-core from npm into
    NODE_TOOLS_DIR/node_modules (tools/ by default), once; no root needed."""
    env, calls = shims(tmp_path, [], 1000, playwright=False)
    p = run(env)
    assert p.returncode == 0, p
    words = calls.read_text().split()
    assert words[:2] == ["npm", "install"], words
    assert words[words.index("--prefix") + 1] == str(tmp_path / "node-tools"), words
    assert any(w.startswith("playwright-core@") for w in words), words
