"""What the integration modules (tests/integration) share: the cloud they run on, the CLI
as a user runs it (``cli``, the one runner), a registered keypair (``new_keypair``, the one
keypair helper), SSH to a master, and the leftovers check (``leftovers``, the one counter:
call it BEFORE any cleanup, so it counts what the command itself left).

The fixtures built from these (``e2e_env``, ``cloud``) live in tests/integration/conftest.py.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from spark_openstack.model import BUILDER_METADATA_KEY
from spark_openstack.model import META_CLUSTER

ROOT = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("SPARK_OPENSTACK_E2E_MIRROR", "http://10.213.0.1:8099")
ALLOWED = os.environ.get("SPARK_OPENSTACK_E2E_CIDR", "10.213.0.1/32")
BASE_IMAGE = os.environ.get("SPARK_OPENSTACK_E2E_BASE_IMAGE", "debian-12")
#: A distribution's own cloud image without Java (the sandbox's debootstrap Debian 12 tree;
#: on a real cloud, its Debian 12 image): the bake installs Java itself
BARE_BASE_IMAGE = os.environ.get("SPARK_OPENSTACK_E2E_BARE_BASE_IMAGE",
                                 BASE_IMAGE if os.environ.get("SPARK_OPENSTACK_E2E_CLOUD")
                                 else "debian-12-bare")
FLAVOR = os.environ.get("SPARK_OPENSTACK_E2E_FLAVOR", "m1.small")
#: The smallest sandbox flavor whose workers hold HDFS + YARN + Spark (m1.small is refused)
YARN_FLAVOR = os.environ.get("SPARK_OPENSTACK_E2E_YARN_FLAVOR", "m1.medium")
REAL_CLOUD = os.environ.get("SPARK_OPENSTACK_E2E_CLOUD")
CLI = str(Path(sys.executable).parent / "spark-openstack")


def hadoop_version() -> str:
    """The Hadoop release to bake: the env on real clouds, else what the sandbox serves."""
    if os.environ.get("SPARK_OPENSTACK_E2E_HADOOP_VERSION"):
        return os.environ["SPARK_OPENSTACK_E2E_HADOOP_VERSION"]
    served = ROOT / ".sandbox" / "hadoop_version"
    if not served.is_file():
        pytest.fail(f"{served} is missing: sandbox/up did not put a Hadoop into the mirror")
    return served.read_text().strip()


def apt_proxy_args() -> list[str]:
    """``--apt-proxy URL`` for a builder without internet: the sandbox's apt proxy
    (sandbox/up writes its URL), or on a real cloud SPARK_OPENSTACK_E2E_APT_PROXY (unset:
    none, the image's own sources)."""
    if REAL_CLOUD:
        url = os.environ.get("SPARK_OPENSTACK_E2E_APT_PROXY")
        return ["--apt-proxy", url] if url else []
    served = ROOT / ".sandbox" / "apt_proxy_url"
    if not served.is_file():
        pytest.fail(f"{served} is missing: sandbox/up did not start the apt proxy")
    return ["--apt-proxy", served.read_text().strip()]


def said(proc) -> str:
    return (f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\n"
            f"stderr:\n{proc.stderr[-4000:]}")


def fresh_name(prefix: str) -> str:
    """A fresh resource name: ``PREFIX-xxxxxx``."""
    return f"{prefix}-{secrets.token_hex(3)}"


def cli(env, *args, timeout=1800, check=True):
    """``spark-openstack ARGS`` as a user runs it (no stdin). ``check=True`` fails the test
    on a non-zero exit, an int asserts that exit code, ``False``/``None`` checks nothing."""
    proc = subprocess.run([CLI, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check is True:
        if proc.returncode != 0:
            pytest.fail(f"spark-openstack {' '.join(args)} failed: {said(proc)}")
    elif check is not False and check is not None:
        assert proc.returncode == check, \
            f"spark-openstack {' '.join(args)}: expected exit {check}, got {said(proc)}"
    return proc


def ssh(host, key, command, timeout=600, stdin: bytes | None = None):
    """One command on a node as the image's login user (bytes in and out with ``stdin``)."""
    return subprocess.run(
        ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"debian@{host}", command],
        capture_output=True, timeout=timeout,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
        text=stdin is None)


def as_hduser(command: str) -> str:
    return f"sudo -n -u hduser -H bash -lc {shlex.quote(command)}"


def ok(result, what: str) -> str:
    out = result.stdout if isinstance(result.stdout, str) else result.stdout.decode()
    err = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    assert result.returncode == 0, f"{what} exited {result.returncode}\n{out[-2000:]}\n{err[-2000:]}"
    return out


def fixed_ip(server) -> str:
    """A server's fixed (private) IPv4 address, as the cloud lists it."""
    return next(a["addr"] for addrs in (server.addresses or {}).values() for a in addrs
                if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("version") == 4)


def notebook_json(cells: list[str]) -> str:
    """A notebook (nbformat 4) of code cells, for the "pyspark" kernel."""
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": f"cell{i}",
                   "metadata": {}, "outputs": [], "source": source}
                  for i, source in enumerate(cells)],
        "metadata": {"kernelspec": {"name": "pyspark", "display_name": "PySpark",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5})


def notebook_outputs(notebook_text: str) -> str:
    """Every stream output of an executed notebook, joined."""
    doc = json.loads(notebook_text)
    return "".join("".join(out.get("text", "")) for cell in doc["cells"]
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def builder_of(text: str | None, image: str) -> bool:
    """A description create-image writes for ``image``'s builder (any run)."""
    return f"image builder for {image} (" in (text or "")


def leftovers(cloud, cluster: str | None = None, server_ids=(), *,
              image: str | None = None) -> dict[str, list]:
    """Everything of ``cluster`` (its servers, groups, floating IPs, and the ports of
    ``server_ids``), or of create-image ``image`` (its builder and the image), the cloud
    still lists; only the non-empty kinds. Count BEFORE any other cleanup runs."""
    server_ids = set(server_ids)

    def ours_server(s) -> bool:
        if s.id in server_ids:
            return True
        if cluster and ((s.metadata or {}).get(META_CLUSTER) == cluster
                        or s.name.startswith(f"{cluster}-")):
            return True
        return bool(image) and ((s.metadata or {}).get(BUILDER_METADATA_KEY) == image
                                or s.name == f"{image}-builder")

    def ours_group(g) -> bool:
        if cluster and cluster in g.name:
            return True
        return bool(image) and (builder_of(g.description, image)
                                or g.name.startswith(f"spark-openstack-{image}-builder"))

    def ours_ip(f) -> bool:
        if (f.port_details or {}).get("device_id") in server_ids:
            return True
        if cluster and cluster in (f.description or ""):
            return True
        return bool(image) and builder_of(f.description, image)

    out = {
        "servers": [f"{s.name} ({s.status})" if image else s.name
                    for s in cloud.compute.servers() if ours_server(s)],
        "security_groups": [g.name for g in cloud.network.security_groups() if ours_group(g)],
        "server_groups": [g.name for g in cloud.compute.server_groups()
                          if cluster and cluster in g.name],
        "floating_ips": [f.floating_ip_address for f in cloud.network.ips() if ours_ip(f)],
        "ports": [p.id for p in cloud.network.ports() if p.device_id in server_ids]
        if server_ids else [],
        "images": [f"{i.id} ({i.status})" for i in cloud.image.images() if i.name == image]
        if image else [],
    }
    return {k: v for k, v in out.items() if v}


#: the CIDR ``launch_args`` lets SSH in from: the sandbox's own address space
LAUNCH_ALLOWED = "10.0.0.0/8"


def launch_args(cluster, keypair, *extra) -> list[str]:
    """``launch`` of a small no-deploy cluster on the sandbox (``keypair``: ``(name, key)``)."""
    kp_name, key = keypair
    return ["launch", "-c", cluster, "-k", kp_name, "--identity-file", key, "-i", "debian-12",
            "--flavor", "m1.tiny", "--allowed-cidr", LAUNCH_ALLOWED, "--no-deploy",
            "--timeout", "300", *extra]


def wait_clean(cloud, cluster: str, server_ids=(), timeout=60) -> dict[str, list]:
    """``leftovers`` once nothing is left or after ``timeout`` s (ports vanish a moment
    after their server)."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(cloud, cluster, server_ids)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2)


def e2e_environment(sandbox_env: dict) -> dict:
    """The sandbox's environment, or a real cloud's when SPARK_OPENSTACK_E2E_CLOUD is set
    (the devstack workflow), with clouds.yaml found the usual way."""
    if not REAL_CLOUD:
        return sandbox_env
    env = dict(sandbox_env, OS_CLOUD=REAL_CLOUD)
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    if os.environ.get("OS_CLIENT_CONFIG_FILE"):
        env["OS_CLIENT_CONFIG_FILE"] = os.environ["OS_CLIENT_CONFIG_FILE"]
    return env


def new_keypair(cloud, folder: Path, *, prefix: str) -> tuple[str, str]:
    """A fresh ed25519 keypair registered in the cloud: ``(name, private key path)``."""
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kp_name = fresh_name(prefix)
    cloud.compute.create_keypair(name=kp_name, public_key=(folder / "id_ed25519.pub").read_text())
    return kp_name, str(key)


@contextlib.contextmanager
def baked_image(env, cloud, keypair, *, prefix: str, extra=(), flavor: str = FLAVOR):
    """An image baked for a module with ``create-image`` (Hadoop from the sandbox's mirror,
    plus ``extra`` options), as a user bakes one; deleted when the module is done."""
    kp_name, key = keypair
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    try:
        cli(env, "create-image", "-n", name, "--base-image", BASE_IMAGE, "--flavor", flavor,
            "-k", kp_name, "--identity-file", key, "--mirror", MIRROR, "--allowed-cidr",
            ALLOWED, "--hadoop-version", hadoop_version(), *extra)
        image = cloud.image.find_image(name)
        assert image is not None and image.status == "active", f"image {name}: {image}"
        yield name
    finally:
        found = cloud.image.find_image(name)
        if found is not None:
            cloud.image.delete_image(found.id, ignore_missing=True)
