"""sandbox/faults: API faults through the catalog, ridden out by the tool's retries; host
faults (freeze, thaw, kill) on a real server's host. Always cleared again."""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from support.sandbox_cloud import boot, fixed_ip, ssh_answers, wait_ssh

pytestmark = [pytest.mark.sandbox,
              pytest.mark.skipif(os.geteuid() != 0, reason="sandbox/faults must run as root")]

ROOT = Path(__file__).resolve().parents[2]
FAULTS = str(ROOT / "sandbox" / "faults")
RUN = ROOT / ".sandbox" / "run"


def _faults(*args, check=True):
    return subprocess.run([FAULTS, *args], capture_output=True, text=True, timeout=120,
                          check=check)


def _public_url(admin, kind):
    svc = next(s for s in admin.identity.services() if s.type == kind)
    return next(e.url for e in admin.identity.endpoints(service_id=svc.id, interface="public"))


def _counters():
    return json.loads((RUN / "faults.json").read_text())


@pytest.fixture
def api_faults(admin):
    before = {k: _public_url(admin, k) for k in ("compute", "network")}
    proc = _faults("--compute", "503:0.3", "--network", "429:0.3", "--seed", "11", check=False)
    try:
        assert proc.returncode == 0, proc.stderr
        yield before
    finally:
        _faults("--clear", check=False)


def test_tool_retries_ride_out_api_faults(api_faults, admin, monkeypatch_module):
    import openstack

    from spark_openstack.provider import OpenStackProvider

    # the public endpoints name the proxy now, the internal ones do not
    for kind, url in api_faults.items():
        assert _public_url(admin, kind) != url
    assert "ACTIVE" in _faults("--status").stdout

    tool = OpenStackProvider.connect(cloud="sandbox").conn   # the tool's retry settings
    for _ in range(20):
        list(tool.compute.servers())
        list(tool.network.networks())
    counters = _counters()["services"]
    assert counters["compute"]["faults"].get("503", 0) > 0, counters
    assert counters["network"]["faults"].get("429", 0) > 0, counters
    assert counters["compute"]["forwarded"] >= 20 and counters["network"]["forwarded"] >= 20

    plain = openstack.connect(cloud="sandbox", status_code_retries=0)
    failures = 0
    for _ in range(20):
        try:
            list(plain.compute.servers())
            list(plain.network.networks())
        except openstack.exceptions.HttpException as exc:
            assert exc.status_code in (429, 503), exc
            failures += 1
    assert failures >= 1


def test_clear_restores_the_catalog_and_stops_the_proxy(api_faults, admin):
    pid = int((RUN / "fault-proxy.pid").read_text())
    assert Path(f"/proc/{pid}").exists()
    proc = _faults("--clear")
    assert proc.returncode == 0
    for kind, url in api_faults.items():
        assert _public_url(admin, kind) == url
    assert not (RUN / "fault-proxy.pid").exists()
    assert not (RUN / "faults.state.json").exists()
    assert not Path(f"/proc/{pid}").exists() or \
        "fault_proxy.py" not in Path(f"/proc/{pid}/cmdline").read_text()
    assert _faults("--clear").returncode == 0        # idempotent
    assert "none active" in _faults("--status").stdout


def test_freeze_thaw_and_kill_a_host(demo, keypair, ssh_key, ssh_group):
    name = f"sbt-fault-{uuid.uuid4().hex[:6]}"
    server = boot(demo, name=name, keypair=keypair, security_groups=[ssh_group.name])
    try:
        ip = fixed_ip(server)
        wait_ssh(ssh_key, ip)
        frozen = _faults("--freeze-host", name)
        try:
            assert "processes stopped" in frozen.stdout
            assert not ssh_answers(ssh_key, ip, timeout=8)
            assert "frozen hosts" in _faults("--status").stdout
        finally:
            _faults("--thaw-host", server.id, check=False)
        wait_ssh(ssh_key, ip, limit=30)
        init = int((ROOT / ".sandbox" / "hosts" / server.id / "init.pid").read_text())
        _faults("--kill-host", server.id)
        assert not ssh_answers(ssh_key, ip, timeout=8)
        assert not Path(f"/proc/{init}/cmdline").exists() or \
            "host_init.sh" not in Path(f"/proc/{init}/cmdline").read_text()
        # a stranger is never signalled: the host is gone, a second kill refuses
        assert _faults("--kill-host", server.id, check=False).returncode != 0
    finally:
        demo.compute.delete_server(server, ignore_missing=True)
        demo.compute.wait_for_delete(server, wait=120)
