"""A small fault matrix on the sandbox, through the CLI as the non-admin user (CI: < 4 min).

- API faults (20 % compute 503s, 10 % network 429s, through ``sandbox/faults``): launch
  succeeds on its retries, and the proxy's counters show faults were really injected.
- A worker whose SSH never answers (its host frozen once the servers are ACTIVE): launch
  fails within ``--timeout`` naming that worker, its cleanup is bounded, and nothing of
  the cluster is left, counted before any destroy.

Faults are always cleared and the host thawed in ``finally``; ``destroy`` runs only as a
safety net, after counting. The whole matrix is ``bench/bench_faults.py``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import openstack
import pytest

from support.e2e import cli, fresh_name, new_keypair, wait_clean

pytestmark = [pytest.mark.sandbox,
              pytest.mark.skipif(os.geteuid() != 0, reason="sandbox/faults must run as root")]

ROOT = Path(__file__).resolve().parents[2]
FAULTS = str(ROOT / "sandbox" / "faults")
COUNTERS = ROOT / ".sandbox" / "run" / "faults.json"
ALLOWED = "10.0.0.0/8"
#: with this seed the first compute and the first network request through the proxy are
#: faulted (``random.Random(f"{seed}:{service}")``), so injection does not rest on luck
SEED = "53"


def _faults(*args, check=True):
    proc = subprocess.run([FAULTS, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"sandbox/faults {' '.join(args)}: {proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def conn(sandbox_env):
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", sandbox_env["OS_CLIENT_CONFIG_FILE"])
    connection = openstack.connect(cloud="sandbox")
    connection.authorize()     # now: a token got after a fault starts would name the proxy
    return connection


@pytest.fixture(scope="module")
def keypair(conn, tmp_path_factory):
    name, key = new_keypair(conn, tmp_path_factory.mktemp("fm-keys"), prefix="fm-key")
    yield name, key
    conn.compute.delete_keypair(name, ignore_missing=True)


def launch_args(cluster, keypair, *extra):
    name, key = keypair
    return ["launch", "-c", cluster, "-k", name, "--identity-file", key, "-i", "debian-12",
            "--flavor", "m1.tiny", "--allowed-cidr", ALLOWED, "--no-deploy", *extra]


def test_launch_rides_out_api_faults(sandbox_env, conn, keypair):
    cluster = fresh_name("fm-api")
    server_ids: set[str] = set()
    _faults("--compute", "503:0.2", "--network", "429:0.1", "--seed", SEED)
    try:
        proc = cli(sandbox_env, *launch_args(cluster, keypair, "-s", "1", "--timeout", "180"),
                   timeout=300, check=False)
        server_ids = {s.id for s in conn.compute.servers()
                      if s.name.startswith(f"{cluster}-")}
        counters = json.loads(COUNTERS.read_text())["services"]
        gone = cli(sandbox_env, "destroy", "-c", cluster, "--yes", timeout=300, check=False)
    finally:
        _faults("--clear", check=False)
    left = wait_clean(conn, cluster, server_ids)
    if left:
        cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=False)   # safety net only
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(server_ids) == 2, server_ids
    injected = {kind: sum(c["faults"].values()) for kind, c in counters.items()}
    assert injected.get("compute", 0) > 0 and injected.get("network", 0) > 0, counters
    assert counters["compute"]["faults"].get("503") and counters["network"]["faults"].get("429")
    assert gone.returncode == 0, gone.stderr[-3000:]
    assert left == {}


def test_a_worker_whose_ssh_never_answers_fails_the_launch_naming_it(sandbox_env, conn,
                                                                     keypair):
    cluster = fresh_name("fm-frz")
    victim = f"{cluster}-worker-1"
    timeout = 90
    proc = subprocess.Popen([sys.executable, "-m", "spark_openstack.cli",
                             *launch_args(cluster, keypair, "-s", "1", "--timeout",
                                          str(timeout))],
                            env=sandbox_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    seen, server_ids, frozen, thawed, cleanup_from, left = [], set(), False, False, None, None
    try:
        for line in proc.stderr:
            seen.append(line)
            if re.search(rf"{victim}: active", line):   # frozen before SSH reaches it
                break
        assert proc.poll() is None, "".join(seen)
        server_ids = {s.id for s in conn.compute.servers() if s.name.startswith(f"{cluster}-")}
        _faults("--freeze-host", victim)
        frozen = True
        for line in proc.stderr:
            seen.append(line)
            if "cleaning up" in line:
                _faults("--thaw-host", victim)          # so the rollback's delete works
                thawed, cleanup_from = True, time.monotonic()
                break
        seen.append(proc.stderr.read())
        code = proc.wait(timeout=timeout + 120)
        ended = time.monotonic()
        left = wait_clean(conn, cluster, server_ids)       # the rollback's work, before destroy
    finally:
        if proc.poll() is None:
            proc.kill()
        if frozen and not thawed:
            _faults("--thaw-host", victim, check=False)
        cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=False)   # safety net only
    text = "".join(seen)
    assert len(server_ids) == 2, server_ids
    assert code == 1, text[-3000:]
    assert "failed in the ssh phase" in text, text[-3000:]
    assert f"[{victim}]" in text, text[-3000:]
    assert f"[{cluster}-master]" not in text.split("error:", 1)[-1], text[-3000:]
    assert "deleted everything this launch created" in text, text[-3000:]
    assert thawed, text[-3000:]
    assert ended - cleanup_from < 60, f"cleanup took {ended - cleanup_from:.0f}s"
    assert ended - started < timeout + 60, f"launch took {ended - started:.0f}s"
    assert left == {}
