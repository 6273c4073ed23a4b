"""A class's batch of clusters end to end (issue 12) on the sandbox, through the CLI as the
non-admin user, on real Spark (the image also holds Hadoop 3; the batch runs Spark only
to keep three clusters light on a 2-core machine):

1. a batch that would exceed the project's quota is refused before anything exists;
2. Ctrl-C (SIGINT) during a batch leaves no half cluster: every cluster of the prefix is
   either absent or whole (here: absent, it is interrupted while booting);
3. ``batch launch`` of 3 clusters with 1 worker from a students file: exit 0, the roster
   (csv, json, html) has 3 rows and 3 distinct private keys (mode 0600); each student's key
   logs in to that student's master and runs a Spark job, and is refused by the others;
   the trainer's key still logs in everywhere;
4. ``batch status`` shows 3 healthy with their deadlines; ``batch run-command`` reaches
   every master;
5. ``batch destroy`` leaves nothing (checked before any other cleanup), and again is a
   no-op.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import time
import uuid

import pytest

from support.e2e import ALLOWED, CLI, FLAVOR, baked_image, cli, said

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

STUDENTS = 'Ada Lovelace,ada@example.org\nAlan Turing\n"Hopper, Grace",grace@example.org\n'


@pytest.fixture(scope="module")
def image(e2e_env, cloud, keypair):
    with baked_image(e2e_env, cloud, keypair, prefix="batch") as name:
        yield name


def launch_args(keypair, image, prefix, roster, *extra):
    kp_name, key = keypair
    return ["batch", "launch", "--prefix", prefix, "--roster", str(roster), "-s", "1",
            "-k", kp_name, "-i", image, "--identity-file", key, "--flavor", FLAVOR,
            "--allowed-cidr", ALLOWED, "--no-floating-ip", "--services", "spark",
            "--expires-in", "4h", *extra]


def of_prefix(cloud, prefix: str) -> dict:
    """Everything named after the batch's clusters that the cloud still lists."""
    return {
        "servers": sorted(s.name for s in cloud.compute.servers()
                          if s.name.startswith(f"{prefix}-")),
        "groups": sorted(g.name for g in cloud.network.security_groups()
                         if g.name.startswith(f"spark-openstack-{prefix}-")),
        "server groups": sorted(g.name for g in cloud.compute.server_groups()
                                if g.name.startswith(f"spark-openstack-{prefix}-")),
    }


def as_student(host: str, key: str, command: str, timeout=300):
    return subprocess.run(
        ["ssh", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=15", f"hduser@{host}", command],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_batch_over_the_quota_is_refused_before_anything_exists(e2e_env, cloud, keypair,
                                                                   image, tmp_path):
    prefix = f"bq{uuid.uuid4().hex[:4]}"
    proc = cli(e2e_env, *launch_args(keypair, image, prefix, tmp_path / "roster",
                                     "--count", "60"), check=False, timeout=300)
    assert proc.returncode == 2, said(proc)
    assert "a batch of 60 clusters does not fit" in proc.stderr and "instances" in proc.stderr
    assert not any(of_prefix(cloud, prefix).values())
    assert not (tmp_path / "roster").exists()


def test_interrupting_a_batch_leaves_no_half_cluster(e2e_env, cloud, keypair, image, tmp_path):
    prefix = f"bi{uuid.uuid4().hex[:4]}"
    proc = subprocess.Popen([CLI, *launch_args(keypair, image, prefix, tmp_path / "roster",
                                               "--count", "2")],
                            env=e2e_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not of_prefix(cloud, prefix)["servers"]:     # wait until servers exist
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no server appeared"
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, f"{out}\n{err}"
    assert "interrupted" in err
    left = of_prefix(cloud, prefix)                      # before any other cleanup
    assert not any(left.values()), left
    cli(e2e_env, "batch", "destroy", "--prefix", prefix, "--yes", check=False)


@pytest.fixture(scope="module")
def batch(e2e_env, cloud, keypair, image, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    students = folder / "class.csv"
    students.write_text(STUDENTS)
    prefix = f"bt{uuid.uuid4().hex[:4]}"
    roster = folder / "roster"
    state = {"prefix": prefix, "roster": roster, "destroyed": False}
    try:
        state["proc"] = cli(e2e_env, *launch_args(keypair, image, prefix, roster,
                                                  "--students", str(students), "--json"),
                            check=False, timeout=1800)
        yield state
    finally:
        if not state["destroyed"]:
            cli(e2e_env, "batch", "destroy", "--prefix", prefix, "--yes", check=False,
                timeout=900)


def test_batch_launch_gives_every_student_a_healthy_cluster_and_own_key(batch, cloud, keypair):
    proc, prefix, roster = batch["proc"], batch["prefix"], batch["roster"]
    assert proc.returncode == 0, said(proc)
    result = json.loads(proc.stdout)
    assert result["ok"] and result["healthy"] == 3 and result["without_cluster"] == []
    rows = list(csv.DictReader((roster / "roster.csv").open()))
    assert [(r["student"], r["cluster"]) for r in rows] == [
        ("Ada Lovelace", f"{prefix}-01"), ("Alan Turing", f"{prefix}-02"),
        ("Hopper, Grace", f"{prefix}-03")]
    assert json.loads((roster / "roster.json").read_text())["students"] == result["students"]
    page = (roster / "roster.html").read_text()
    assert page.count('class="card"') == 3 and "Hopper, Grace" in page
    keys = {r["cluster"]: str(roster / r["key_file"]) for r in rows}
    assert len({open(k).read() for k in keys.values()}) == 3
    assert all(stat.S_IMODE(os.stat(k).st_mode) == 0o600 for k in keys.values())
    masters = {r["cluster"]: r["master"] for r in rows}
    for cluster, host in masters.items():
        for owner, key in keys.items():
            got = as_student(host, key, "bash -lc 'whoami; hostname'")
            if owner == cluster:
                assert got.returncode == 0 and got.stdout.split() == \
                    ["hduser", f"{cluster}-master"], got
            else:
                assert got.returncode == 255 and "Permission denied" in got.stderr, got
    # a student runs a Spark job on their own cluster, as they would after logging in
    pi = as_student(masters[f"{prefix}-02"], keys[f"{prefix}-02"],
                    "bash -lc 'spark-submit /opt/spark/examples/src/main/python/pi.py 4 "
                    "2>/dev/null'")
    assert pi.returncode == 0 and "Pi is roughly 3.1" in pi.stdout, pi
    # the trainer's keypair logs in everywhere, as the image's user
    _name, trainer_key = keypair
    for host in masters.values():
        got = subprocess.run(["ssh", "-i", trainer_key, "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                              "-o", "LogLevel=ERROR", f"debian@{host}", "whoami"],
                             capture_output=True, text=True, timeout=120)
        assert got.stdout.strip() == "debian", got


def test_batch_status_and_run_command(batch, e2e_env, keypair):
    prefix = batch["prefix"]
    _name, key = keypair
    proc = cli(e2e_env, "batch", "status", "--prefix", prefix, "--identity-file", key,
               "--json", check=False)
    assert proc.returncode == 0, said(proc)
    report = json.loads(proc.stdout)
    assert report["healthy"] == 3 and report["all_healthy"]
    assert sorted(report["clusters"]) == [f"{prefix}-0{i}" for i in (1, 2, 3)]
    for item in report["clusters"].values():
        assert item["healthy"] and item["expires"]["expired"] is False
        assert 3 * 3600 < item["expires"]["remaining_s"] <= 4 * 3600
    table = cli(e2e_env, "batch", "status", "--prefix", prefix, "--identity-file", key).stdout
    assert "3/3 healthy" in table
    out = cli(e2e_env, "batch", "run-command", "--prefix", prefix, "--identity-file", key,
              "--", "hostname").stdout
    assert sorted(out.split("\n")[:3]) == sorted(
        f"[{prefix}-0{i}] {prefix}-0{i}-master" for i in (1, 2, 3))


def test_batch_destroy_leaves_nothing(batch, e2e_env, cloud):
    prefix = batch["prefix"]
    cli(e2e_env, "batch", "destroy", "--prefix", prefix, "--yes", timeout=900)
    batch["destroyed"] = True
    left = of_prefix(cloud, prefix)                      # before any other cleanup
    assert not any(left.values()), left
    again = cli(e2e_env, "batch", "destroy", "--prefix", prefix, "--yes")
    assert "destroyed 0 cluster(s)" in again.stdout
