"""The systemd unit as `make install` writes it: its paths follow PREFIX,
`systemd-analyze verify` passes, and `systemd-analyze security` rates its
exposure 2.0 or less (outbound TCP, its configuration and environment file
are all it needs)."""

import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANALYZE = shutil.which("systemd-analyze")


def install(tmp_path, prefix):
    dest = tmp_path / "root"
    subprocess.run(["make", "-s", "-C", REPO, "install", "DESTDIR=%s" % dest, "PREFIX=%s" % prefix],
                   check=True, capture_output=True)
    return dest


def test_install_follows_prefix(tmp_path):
    dest = install(tmp_path, "/opt/rel")
    unit = (dest / "opt/rel/lib/systemd/system/relationd.service").read_text()
    assert "ExecStart=/opt/rel/bin/relationd -c /etc/relationd/relationd.json" in unit
    assert "Documentation=file:///opt/rel/share/doc/relationd/README.md" in unit
    assert "/usr/local" not in unit
    page = (dest / "opt/rel/share/man/man8/relationd.8").read_text()
    assert "/opt/rel/share/doc/relationd/" in page and "/usr/local" not in page
    for f in ("opt/rel/bin/relationd", "opt/rel/bin/relationctl",
              "opt/rel/share/man/man1/relationctl.1",
              "opt/rel/share/doc/relationd/README.md",
              "opt/rel/share/relationd/relationd.example.json"):
        assert (dest / f).is_file(), f


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_unit_is_valid_and_hardened(tmp_path):
    dest = install(tmp_path, "/usr/local")
    unit = dest / "usr/local/lib/systemd/system/relationd.service"
    out = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)],
                         capture_output=True, text=True)
    m = re.search(r"Overall exposure level for relationd.service: (\d+\.\d+)", out.stdout + out.stderr)
    assert m, out.stdout + out.stderr
    assert float(m.group(1)) <= 2.0, out.stdout
    # verify checks the executables: point the unit at the built ones
    local = tmp_path / "relationd.service"
    local.write_text(unit.read_text().replace("/usr/local/bin/", os.path.join(REPO, "build") + "/"))
    out = subprocess.run([ANALYZE, "verify", str(local)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == "", out.stderr


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_pages_render_without_warnings():
    for page in ("man/relationd.8", "man/relationctl.1"):
        out = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(REPO, page)],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stderr == "", (page, out.stderr)
