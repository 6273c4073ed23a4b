"""The CLI as a subprocess against the sandbox cloud, as the non-admin user.

Proves: launch -s 2 gives 3 ACTIVE servers with the right metadata, a floating IP on the
master only and SSH on every node; describe --json shows them; destroy leaves nothing; a
failure after servers exist, and Ctrl-C mid-boot, leave nothing; every bad input is
refused before anything is created.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import fabric
import openstack
import pytest

from spark_openstack.model import META_CLUSTER, META_ROLE, TAG_PREFIX_CLUSTER
from support.e2e import LAUNCH_ALLOWED as ALLOWED
from support.e2e import cli, fresh_name, launch_args, leftovers, new_keypair, wait_clean

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def conn(sandbox_env):
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", sandbox_env["OS_CLIENT_CONFIG_FILE"])
    return openstack.connect(cloud="sandbox")


@pytest.fixture(scope="module")
def admin(sandbox_env):
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", sandbox_env["OS_CLIENT_CONFIG_FILE"])
    return openstack.connect(cloud="sandbox-admin")


@pytest.fixture(scope="module")
def keypair(conn, tmp_path_factory):
    """A fresh ed25519 key registered as a Nova keypair for this module."""
    name, key = new_keypair(conn, tmp_path_factory.mktemp("keys"), prefix="it-key")
    yield name, key
    conn.compute.delete_keypair(name, ignore_missing=True)


def test_launch_describe_ssh_destroy(sandbox_env, conn, keypair):
    cluster = fresh_name("it")
    try:
        proc = cli(sandbox_env, *launch_args(cluster, keypair, "-s", "2", "--json"), check=0)
        result = json.loads(proc.stdout)
        servers = [s for s in conn.compute.servers()
                   if (s.metadata or {}).get(META_CLUSTER) == cluster]
        assert sorted(s.name for s in servers) == [f"{cluster}-master", f"{cluster}-worker-1",
                                                   f"{cluster}-worker-2"]
        assert all(s.status == "ACTIVE" for s in servers)
        roles = {s.name: s.metadata[META_ROLE] for s in servers}
        assert roles == {f"{cluster}-master": "master", f"{cluster}-worker-1": "worker",
                         f"{cluster}-worker-2": "worker"}
        for srv in servers:  # tags where the compute API allows (sandbox: >= 2.52)
            assert f"{TAG_PREFIX_CLUSTER}{cluster}" in (srv.tags or [])
        master = next(s for s in servers if s.name.endswith("-master"))
        server_ids = {s.id for s in servers}

        fips = [f for f in conn.network.ips()
                if (f.port_details or {}).get("device_id") in server_ids
                or f.description == f"spark-openstack:{cluster}"]
        assert len(fips) == 1, fips
        master_ports = {p.id for p in conn.network.ports(device_id=master.id)}
        assert fips[0].port_id in master_ports
        assert result["master"]["public_ip"] == fips[0].floating_ip_address
        assert all(w["public_ip"] is None for w in result["workers"])

        group = conn.network.find_security_group(f"spark-openstack-{cluster}")
        ingress = [r for r in conn.network.security_group_rules(security_group_id=group.id)
                   if r.direction == "ingress"]
        cidr_rules = [(r.remote_ip_prefix, r.port_range_min) for r in ingress
                      if r.remote_ip_prefix]
        assert cidr_rules == [(ALLOWED, 22)], cidr_rules  # SSH from the allowed CIDR only
        assert any(r.remote_group_id == group.id for r in ingress)

        # SSH on every node: the master at its floating IP, workers through the master
        key = keypair[1]
        kwargs = {"key_filename": [key], "look_for_keys": False, "allow_agent": False}
        with fabric.Connection(result["master"]["public_ip"], user="debian",
                               connect_kwargs=kwargs) as gw:
            assert gw.run("hostname", hide=True, in_stream=False).stdout.strip() == f"{cluster}-master"
            assert "done" in gw.run("cloud-init status", hide=True, warn=True, in_stream=False).stdout
            for worker in result["workers"]:
                with fabric.Connection(worker["private_ip"], user="debian", gateway=gw,
                                       connect_kwargs=kwargs) as wc:
                    assert wc.run("hostname", hide=True, in_stream=False).stdout.strip() == worker["name"]

        proc = cli(sandbox_env, "login", "-c", cluster, "--identity-file", key, "--",
                       "hostname", check=0, timeout=60)
        assert proc.stdout.strip() == f"{cluster}-master"

        described = json.loads(cli(sandbox_env, "describe", "-c", cluster, "--json",
                                       check=0).stdout)
        assert described["master"]["name"] == f"{cluster}-master"
        assert described["master"]["public_ip"] == fips[0].floating_ip_address
        assert sorted(w["name"] for w in described["workers"]) == [
            f"{cluster}-worker-1", f"{cluster}-worker-2"]
        assert described["state"] == "ACTIVE" and described["ssh_user"] == "debian"
        listed = json.loads(cli(sandbox_env, "list", "--json", check=0).stdout)
        assert any(c["cluster"] == cluster and c["workers"] == 2 for c in listed)

        # the name is now taken: refused, nothing extra created
        proc = cli(sandbox_env, *launch_args(cluster, keypair, "-s", "1"), check=2)
        assert "already exists" in proc.stderr
        assert len([s for s in conn.compute.servers()
                    if (s.metadata or {}).get(META_CLUSTER) == cluster]) == 3

        proc = cli(sandbox_env, "destroy", "-c", cluster, "--yes", "--json", check=0)
        assert json.loads(proc.stdout)["servers"] == 3
        assert wait_clean(conn, cluster, server_ids) == {}
        proc = cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=0)  # idempotent
        assert "nothing" in proc.stdout
        assert cli(sandbox_env, "describe", "-c", cluster, check=False).returncode == 2
    finally:
        cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=False)


@pytest.fixture(scope="module")
def other_key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("other")
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return str(key)


BAD_INPUTS = [
    (["-i", "no-such-image"], "image 'no-such-image'"),
    (["--flavor", "m1.nope"], "flavor 'm1.nope'"),
    (["--master-flavor", "m1.nope"], "--master-flavor"),
    (["-k", "no-such-key"], "keypair 'no-such-key'"),
    (["--network", "no-such-net"], "network 'no-such-net'"),
    (["--floating-ip-pool", "private"], "not an external network"),
    (["--identity-file", "/nonexistent/key"], "does not exist"),
    (["--identity-file", "OTHER"], "does not match keypair"),
    (["--volume-size", "10"], "No such option '--volume-size'"),
    (["-s", "0"], "must be >= 1"),
    (["-s", "300"], "quota"),
    (["--allowed-cidr", "nonsense"], "not an IP network"),
]


@pytest.mark.parametrize("extra,needle", BAD_INPUTS, ids=[b[1][:24] for b in BAD_INPUTS])
def test_bad_input_refused_before_anything_is_created(sandbox_env, conn, keypair, other_key,
                                                      extra, needle):
    cluster = fresh_name("bad")
    extra = [other_key if a == "OTHER" else a for a in extra]
    ports_before = {p.id for p in conn.network.ports()}
    proc = cli(sandbox_env, *launch_args(cluster, keypair, *extra), timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert leftovers(conn, cluster) == {}
    new_ports = [p for p in conn.network.ports() if p.id not in ports_before
                 and p.device_owner == "compute:nova" and p.name.startswith(cluster)]
    assert new_ports == []


def test_bad_name_refused(sandbox_env, keypair):
    proc = cli(sandbox_env, *launch_args("Bad_Name", keypair), timeout=60, check=False)
    assert proc.returncode == 2 and "not usable" in proc.stderr


@pytest.fixture()
def unplaceable_flavor(admin):
    """A public flavor no compute host can hold (quota allows it; the scheduler cannot)."""
    name = fresh_name("it-huge")
    flavor = admin.compute.create_flavor(name=name, vcpus=1, ram=512, disk=1, is_public=True)
    # a required trait no host has: placement finds no candidate -> "No valid host"
    admin.compute.create_flavor_extra_specs(flavor, {"trait:CUSTOM_SPARK_OPENSTACK_NOPE":
                                                     "required"})
    yield name
    admin.compute.delete_flavor(flavor.id, ignore_missing=True)


def test_failure_after_servers_exist_leaves_nothing(sandbox_env, conn, keypair,
                                                    unplaceable_flavor):
    cluster = fresh_name("fail")
    left = None
    try:
        proc = cli(sandbox_env, *launch_args(cluster, keypair, "-s", "2", "--no-anti-affinity",
                                               "--master-flavor", "m1.tiny",
                                               "--flavor", unplaceable_flavor), check=False)
        left = wait_clean(conn, cluster)       # the rollback's work, before any destroy
    finally:
        cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=False)   # safety net only
    assert proc.returncode == 1, proc.stderr
    assert f"[{cluster}-worker-" in proc.stderr, proc.stderr
    assert "No valid host" in proc.stderr, proc.stderr
    assert "deleted everything this launch created" in proc.stderr
    assert left == {}


@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGTERM,),
                                     (signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)],
                         ids=["sigint", "sigterm", "sigint-then-sigint-in-cleanup",
                              "sigterm-then-sigint-in-cleanup"])
def test_a_signal_mid_boot_leaves_nothing(sandbox_env, conn, keypair, signals):
    """Ctrl-C or SIGTERM while servers build: exit 130 within seconds, everything this
    launch made deleted; a second signal during the cleanup does not cut it short."""
    cluster = fresh_name("int")
    proc = subprocess.Popen([sys.executable, "-m", "spark_openstack.cli",
                             *launch_args(cluster, keypair, "-s", "2")], env=sandbox_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen, left = [], None
    try:
        for line in proc.stderr:
            seen.append(line)
            if "build" in line:  # servers exist in the cloud now
                break
        assert any("build" in s for s in seen), "".join(seen)
        assert leftovers(conn, cluster).get("servers")
        proc.send_signal(signals[0])
        signalled = time.monotonic()
        rest = []
        for line in proc.stderr:
            rest.append(line)
            if "cleaning up" in line and len(signals) > 1:
                proc.send_signal(signals[1])      # must be ignored while cleaning up
                break
        rest.append(proc.stderr.read())
        assert proc.wait(timeout=180) == 130, "".join(rest)
        elapsed = time.monotonic() - signalled
        text = "".join(rest)
        assert "interrupted during the boot phase" in text, text
        assert "deleted everything this launch created" in text, text
        assert elapsed < 120, f"took {elapsed:.0f}s to stop and clean up"
        left = wait_clean(conn, cluster)       # before any destroy
    finally:
        if proc.poll() is None:
            proc.kill()
        cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=False)   # safety net only
    assert left == {}


def test_two_launches_of_one_name_exactly_one_wins(sandbox_env, conn, keypair):
    """Both start at once and (usually) both pass validation: one exits 0 with its whole
    cluster, the other stops and removes only what it made (or is refused up front)."""
    cluster = fresh_name("race")
    argv = [sys.executable, "-m", "spark_openstack.cli", *launch_args(cluster, keypair, "-s", "2")]
    procs = [subprocess.Popen(argv, env=sandbox_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=420) for p in procs]
        codes = [p.returncode for p in procs]
        # looked at before any destroy
        servers = [s for s in conn.compute.servers(details=True)
                   if (s.metadata or {}).get(META_CLUSTER) == cluster]
        runs = {(s.metadata or {}).get("spark_openstack_run") for s in servers}
        groups = [g.id for g in conn.network.security_groups()
                  if g.name == f"spark-openstack-{cluster}"]
        time.sleep(3)
        groups_later = [g.id for g in conn.network.security_groups()
                        if g.name == f"spark-openstack-{cluster}"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=False)
    report = "\n".join(f"exit {c}\n{o[1][-1500:]}" for c, (o) in zip(codes, outs))
    assert sorted(codes) == [0, 2], report
    loser = outs[codes.index(2)][1]
    assert "started first" in loser or "already exists" in loser or "exists" in loser, loser
    assert len(servers) == 3 and len(runs) == 1, (report, [s.name for s in servers])
    assert all(s.status == "ACTIVE" for s in servers)
    assert len(groups_later) == 1, (groups, groups_later)
