"""Fixtures for the sandbox cloud's own tests: openstacksdk clients and SSH to hosts."""
from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from support.sandbox_cloud import make_ssh_group

ROOT = Path(__file__).resolve().parents[2]
CLOUDS = ROOT / ".sandbox" / "clouds.yaml"


@pytest.fixture(scope="module")
def demo(monkeypatch_module):
    import openstack
    return openstack.connect(cloud="sandbox")


@pytest.fixture(scope="module")
def admin(monkeypatch_module):
    import openstack
    return openstack.connect(cloud="sandbox-admin")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    mp.setenv("OS_CLIENT_CONFIG_FILE", str(CLOUDS))
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"):
        mp.delenv(var, raising=False)
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("sshkey")
    key = d / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture(scope="module")
def keypair(demo, ssh_key):
    kp = demo.compute.create_keypair(name=f"sbt-{uuid.uuid4().hex[:6]}",
                                     public_key=(ssh_key.with_suffix(".pub")).read_text())
    yield kp
    demo.compute.delete_keypair(kp, ignore_missing=True)


@pytest.fixture(scope="module")
def ssh_group(demo):
    """``make_ssh_group``, deleted after the module."""
    group = make_ssh_group(demo)
    yield group
    for _ in range(60):   # ports of servers being deleted may still hold the group
        try:
            demo.network.delete_security_group(group, ignore_missing=True)
            return
        except Exception:  # noqa: BLE001
            time.sleep(1)
