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
        proc = subprocess.run([str(ROOT / "sandbox" / "down")], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, SANDBOX_DIR=str(tmp_path),
                                       SANDBOX_PREFIX="sbxtest"))
        assert proc.returncode == 0, proc.stderr
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
        proc = subprocess.run([str(ROOT / "sandbox" / "down")], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, SANDBOX_DIR=str(tmp_path),
                                       SANDBOX_PREFIX="sbxtest"))
        assert proc.returncode == 0, proc.stderr
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
