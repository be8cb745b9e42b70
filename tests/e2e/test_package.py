"""The Debian package: `dpkg-buildpackage -us -uc -b` on the tracked files
builds a .deb holding the binaries, the unit, the man pages, the README (not
compressed: the unit's Documentation= names it), the example configuration and
/etc/relationd/ (the configuration, and an environment file readable by root
only). Skipped, saying so, where debhelper is not installed."""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None,
                    reason="dpkg-buildpackage or debhelper is not installed")
def test_deb_builds_with_every_file(tmp_path):
    src = tmp_path / "relationd"
    src.mkdir()
    files = subprocess.run(["git", "-C", REPO, "ls-files", "-z"], capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        dest = src / f
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(REPO, f), dest)
    out = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    debs = [p for p in os.listdir(tmp_path) if p.startswith("relationd_") and p.endswith(".deb")]
    assert len(debs) == 1, os.listdir(tmp_path)
    listing = subprocess.run(["dpkg-deb", "-c", str(tmp_path / debs[0])], capture_output=True,
                             text=True, check=True).stdout
    entries = {line.split()[-1].lstrip("."): line.split()[0] for line in listing.splitlines()}
    for path in ("/usr/bin/relationd", "/usr/bin/relationctl",
                 "/usr/lib/relationd/relationd.so",
                 "/usr/lib/systemd/system/relationd.service",
                 "/usr/share/man/man8/relationd.8.gz", "/usr/share/man/man1/relationctl.1.gz",
                 "/usr/share/doc/relationd/README.md",
                 "/usr/share/relationd/relationd.example.json",
                 "/usr/share/relationd/relationd.schema.json",
                 "/usr/share/relationd/grafana-dashboard.json", "/usr/share/relationd/alerts.yml",
                 "/etc/relationd/relationd.json", "/etc/relationd/environment"):
        assert path in entries, (path, sorted(entries))
    assert entries["/etc/relationd/environment"] == "-rw-------"
    unit = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(tmp_path / debs[0])],
                          capture_output=True, check=True).stdout
    assert b"ExecStart=/usr/bin/relationd -c /etc/relationd/relationd.json" in unit
    assert b"Documentation=file:///usr/share/doc/relationd/README.md" in unit


RELATIOND = os.environ.get("RELATIOND", os.path.join(REPO, "build", "relationd"))


def make_install(destdir, *args):
    """make install into destdir, of the binaries already built beside
    RELATIOND (-o all: nothing is built again)."""
    out = subprocess.run(["make", "-s", "-C", REPO, "-o", "all", "install", "DESTDIR=%s" % destdir,
                          "BUILD=%s" % os.path.dirname(os.path.abspath(RELATIOND))] + list(args),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def mode(path):
    return oct(os.stat(path).st_mode & 0o777)


def test_make_install_puts_the_configuration_in_etc_once(tmp_path):
    """make install into a DESTDIR: the unit's /etc/relationd/relationd.json
    is the example (readable by the unit's dynamic user), with an environment
    file for secrets (root only), and the alert rules beside the example;
    a second install leaves the operator's files as they are."""
    stage = tmp_path / "stage"
    make_install(stage)
    etc = stage / "etc" / "relationd"
    conf, env = etc / "relationd.json", etc / "environment"
    with open(os.path.join(REPO, "config", "relationd.example.json"), "rb") as f:
        assert conf.read_bytes() == f.read()
    assert mode(conf) == "0o644" and mode(env) == "0o600"
    share = stage / "usr" / "local" / "share" / "relationd"
    with open(os.path.join(REPO, "config", "alerts.yml"), "rb") as f:
        assert (share / "alerts.yml").read_bytes() == f.read()
    unit = (stage / "usr/local/lib/systemd/system/relationd.service").read_text()
    assert "ExecStart=/usr/local/bin/relationd -c /etc/relationd/relationd.json\n" in unit
    # the Redis module, for redis-server's loadmodule
    so = stage / "usr/local/lib/relationd/relationd.so"
    assert mode(so) == "0o644" and so.read_bytes()[:4] == b"\x7fELF"
    # what the unit's ExecStartPre runs, on the file installed
    check = subprocess.run([RELATIOND, "-c", str(conf), "--check-config"], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, AMQP_PASSWORD="x"))
    assert check.returncode == 0 and ": ok (2 relations)" in check.stdout, check

    conf.write_text('{"edited": "by the operator"}\n')
    env.write_text("AMQP_PASSWORD=secret\n")
    os.chmod(conf, 0o640)
    make_install(stage)
    assert conf.read_text() == '{"edited": "by the operator"}\n' and mode(conf) == "0o640"
    assert env.read_text() == "AMQP_PASSWORD=secret\n" and mode(env) == "0o600"


def test_make_install_follows_sysconfdir(tmp_path):
    stage = tmp_path / "stage"
    make_install(stage, "SYSCONFDIR=/opt/etc", "PREFIX=/opt")
    assert (stage / "opt/etc/relationd/relationd.json").is_file()
    assert not (stage / "etc").exists()
    unit = (stage / "opt/lib/systemd/system/relationd.service").read_text()
    assert "ExecStart=/opt/bin/relationd -c /opt/etc/relationd/relationd.json\n" in unit
    assert "EnvironmentFile=-/opt/etc/relationd/environment\n" in unit
    man = (stage / "opt/share/man/man8/relationd.8").read_text()
    assert "/opt/etc/relationd/relationd.json" in man and "/etc/relationd/" not in \
        man.replace("/opt/etc/relationd/", "")
