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
                 "/usr/lib/systemd/system/relationd.service",
                 "/usr/share/man/man8/relationd.8.gz", "/usr/share/man/man1/relationctl.1.gz",
                 "/usr/share/doc/relationd/README.md",
                 "/usr/share/relationd/relationd.example.json",
                 "/usr/share/relationd/relationd.schema.json",
                 "/usr/share/relationd/grafana-dashboard.json",
                 "/etc/relationd/relationd.json", "/etc/relationd/environment"):
        assert path in entries, (path, sorted(entries))
    assert entries["/etc/relationd/environment"] == "-rw-------"
    unit = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(tmp_path / debs[0])],
                          capture_output=True, check=True).stdout
    assert b"ExecStart=/usr/bin/relationd -c /etc/relationd/relationd.json" in unit
    assert b"Documentation=file:///usr/share/doc/relationd/README.md" in unit
