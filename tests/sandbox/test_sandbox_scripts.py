"""sandbox/down stops only what sandbox/up started: a PID file that outlived its process
(its number reused by a stranger) must never get that stranger killed. Runs the real
script against a scratch state folder and a name prefix no real sandbox uses."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox/down must run as root")


def _alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


def _down(state: Path) -> subprocess.CompletedProcess:
    """The real sandbox/down on the scratch state folder ``state``, with a name prefix no
    real sandbox uses; it must succeed."""
    proc = subprocess.run([str(ROOT / "sandbox" / "down")], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, SANDBOX_DIR=str(state), SANDBOX_PREFIX="sbxtest"))
    assert proc.returncode == 0, proc.stderr
    return proc


def test_down_kills_its_own_processes_and_spares_strangers(tmp_path):
    run = tmp_path / "run"
    (tmp_path / "hosts" / "h1").mkdir(parents=True)
    run.mkdir()
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    own = subprocess.Popen(["sleep", "301"], start_new_session=True)
    try:
        # keystone's pid file now names a process that is not keystone's uwsgi
        (run / "keystone.pid").write_text(str(stranger.pid))
        (run / "keystone.cmd").write_text("/nonexistent/venv/bin/uwsgi\n")
        # a host whose init pid was reused by the stranger too
        (tmp_path / "hosts" / "h1" / "init.pid").write_text(str(stranger.pid))
        # the mirror's pid file names the process up really started
        (run / "mirror.pid").write_text(str(own.pid))
        (run / "mirror.cmd").write_text("sleep\n")
        proc = _down(tmp_path)
        assert "keystone: pid" in proc.stdout and "not killing it" in proc.stdout
        for _ in range(40):
            if not _alive(own):
                break
            time.sleep(0.25)
        assert not _alive(own)                  # its own: stopped
        assert _alive(stranger)                 # a stranger: untouched
        assert not (run / "keystone.pid").exists()
    finally:
        for p in (stranger, own):
            if _alive(p):
                p.kill()
            p.wait()


def test_down_stops_the_fault_proxy(tmp_path):
    """sandbox/faults' proxy is recorded like the services; down stops it and forgets
    the faults' state (the catalog it changed is discarded with the database)."""
    run = tmp_path / "run"
    run.mkdir()
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"seed": 1, "counters": "%s", "services": {"compute": '
                   '{"upstream": "http://127.0.0.1:9", "share": 0.5}}}' % (run / "faults.json"))
    proxy = subprocess.Popen(["python3", str(ROOT / "sandbox" / "fault_proxy.py"),
                              "--config", str(cfg)], start_new_session=True,
                             stdout=subprocess.DEVNULL)
    try:
        (run / "fault-proxy.pid").write_text(f"{proxy.pid}\n")
        (run / "fault-proxy.cmd").write_text("fault_proxy.py\n")
        (run / "faults.state.json").write_text("{}")
        _down(tmp_path)
        proxy.wait(timeout=10)
        assert not (run / "fault-proxy.pid").exists()
        assert not (run / "faults.state.json").exists()
    finally:
        if _alive(proxy):
            proxy.kill()
            proxy.wait()


def test_faults_needs_root_but_not_for_help():
    helped = subprocess.run([str(ROOT / "sandbox" / "faults"), "--help"], capture_output=True,
                            text=True, timeout=30)
    assert helped.returncode == 0
    for word in ("--compute", "--latency", "--clear", "--status", "--kill-host",
                 "--freeze-host", "--thaw-host"):
        assert word in helped.stdout
    bad = subprocess.run([str(ROOT / "sandbox" / "faults"), "--compute", "503:1.5"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "within 0..1" in bad.stderr


def _load_agent(prefix):
    import importlib.util
    spec = importlib.util.spec_from_file_location("sandbox_agent", ROOT / "sandbox" / "agent.py")
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    agent.PREFIX = prefix
    return agent


def test_agent_restores_a_hosts_rules_only_once_its_nic_is_plugged_and_again_if_replugged():
    """The driver restores its default-deny into a new namespace before it plugs the NIC:
    the agent waits for the NIC (rules restored earlier would be overwritten and, cached as
    applied, never restored again), and a re-plugged host (a new namespace of the same
    name) gets its rules again. Real namespaces, with a prefix no real sandbox uses."""
    from types import SimpleNamespace as NS
    agent = _load_agent("sbxut")
    device = "d" + os.urandom(4).hex()
    ns, veth = f"sbxut-{device[:8]}", f"sbxut{os.getpid() % 10000}v"
    port = NS(id="p1", device_id=device, device_owner="compute:nova",
              is_port_security_enabled=True, security_group_ids=["g1"],
              fixed_ips=[{"ip_address": "10.99.0.5"}])
    rules = [NS(security_group_id="g1", remote_group_id=None, direction="ingress",
                ether_type="IPv4", protocol="tcp", port_range_min=22, port_range_max=22,
                remote_ip_prefix="10.99.0.1/32")]

    def saved():
        return subprocess.run(["ip", "netns", "exec", ns, "iptables-save", "-t", "filter"],
                              capture_output=True, text=True, check=True).stdout

    plugs = []

    def plug():   # a fresh pair each time: a deleted netns takes its veth down lazily
        name = f"{veth}{len(plugs)}"
        plugs.append(name)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"],
                       check=True)
        subprocess.run(["ip", "link", "set", name, "netns", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", name, "name", "eth0"], check=True)

    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        agent.sync_security_groups([port], rules)
        assert "--dport 22" not in saved()          # no NIC yet: nothing restored
        subprocess.run(["ip", "netns", "del", ns], check=True)
        plug()
        agent.sync_security_groups([port], rules)
        assert "-A INPUT -s 10.99.0.1/32 -p tcp -m tcp --dport 22 -j ACCEPT" in saved()
        assert ":INPUT DROP" in saved()
        subprocess.run(["ip", "netns", "del", ns], check=True)   # re-plugged: a new netns
        plug()
        assert "--dport 22" not in saved()
        agent.sync_security_groups([port], rules)
        assert "--dport 22" in saved()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for name in plugs:
            subprocess.run(["ip", "link", "del", name + "p"], capture_output=True)
