"""`sandbox/down` leaves nothing of the sandbox on the machine; `up` brings it back.

Runs last (see tests/conftest.py: tests marked ``destroys_sandbox`` are moved to the end),
with a server running so there is a host to remove. It then runs `sandbox/up` again so
the machine is left as it was found: with a fresh sandbox cloud.
"""
from __future__ import annotations

import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest

from support.sandbox_cloud import boot, fixed_ip, make_ssh_group, wait_ssh

pytestmark = [pytest.mark.sandbox, pytest.mark.destroys_sandbox]

ROOT = Path(__file__).resolve().parents[2]
SB = ROOT / ".sandbox"
PORTS = [5000, 9292, 8778, 8774, 9696, 3306, 5672]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and \
        "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def keypair(demo, ssh_key):
    """Not deleted afterwards: `down` wipes this cloud, and the one `up` makes has new
    credentials (a teardown with the old ones would be refused)."""
    return demo.compute.create_keypair(name=f"sbt-{uuid.uuid4().hex[:6]}",
                                       public_key=(ssh_key.with_suffix(".pub")).read_text())


@pytest.fixture(scope="module")
def ssh_group(demo):
    """As ``keypair``: lives and dies with this cloud."""
    return make_ssh_group(demo)


def test_down_removes_everything_then_up_restores(demo, keypair, ssh_key, ssh_group):
    server = boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair,
                  security_groups=[ssh_group.name])
    wait_ssh(ssh_key, fixed_ip(server))
    pids = [int(p.read_text()) for p in (SB / "run").glob("*.pid")]
    pids += [int(p.read_text()) for p in (SB / "hosts").glob("*/init.pid")]
    assert len(pids) >= 14, pids   # 13 services + at least one host

    subprocess.run([str(ROOT / "sandbox" / "down")], check=True, timeout=60)

    assert [p for p in pids if _alive(p)] == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert [n for n in netns.split() if n.startswith("sbx-")] == []
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    assert [ln for ln in links.splitlines() if ": sbx" in ln] == []
    nat = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                         text=True).stdout
    assert "SBX-FIP" not in nat
    assert not (SB / "hosts").exists()
    assert [p for p in PORTS if _listening(p)] == []
    # idempotent: a second down finds nothing to do and succeeds
    subprocess.run([str(ROOT / "sandbox" / "down")], check=True, timeout=60)

    up = subprocess.run([str(ROOT / "sandbox" / "up")], capture_output=True, text=True,
                        timeout=600)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    assert "READY" in up.stdout
