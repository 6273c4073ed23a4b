"""End to end on the sandbox cloud, as the non-admin user, through the CLI:

create-image --no-hadoop from the sandbox mirror -> launch -s 2 from it -> SparkPi with
spark.authenticate on the master (result checked) -> `fab status` shows 2 workers -> a
submission without the secret is refused -> destroy leaves nothing. Hadoop cannot run in
the sandbox (no distribution reachable); .github/workflows/devstack.yml runs this flow with
Hadoop on a real cloud.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox

MIRROR = os.environ.get("SPARK_OPENSTACK_E2E_MIRROR", "http://10.213.0.1:8099")
ALLOWED = os.environ.get("SPARK_OPENSTACK_E2E_CIDR", "10.213.0.1/32")
BASE_IMAGE = os.environ.get("SPARK_OPENSTACK_E2E_BASE_IMAGE", "debian-12")
FLAVOR = os.environ.get("SPARK_OPENSTACK_E2E_FLAVOR", "m1.small")
HADOOP = os.environ.get("SPARK_OPENSTACK_E2E_HADOOP_VERSION")   # set on real clouds only


def cli(env, *args, timeout=1800, check=True):
    proc = subprocess.run([str(Path(sys.executable).parent / "spark-openstack"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"spark-openstack {' '.join(args)} exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture
def e2e_env(sandbox_env):
    """The sandbox's environment, or a real cloud's when SPARK_OPENSTACK_E2E_CLOUD is set
    (the devstack workflow), with clouds.yaml found the usual way."""
    real = os.environ.get("SPARK_OPENSTACK_E2E_CLOUD")
    if not real:
        return sandbox_env
    env = dict(sandbox_env, OS_CLOUD=real)
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    if os.environ.get("OS_CLIENT_CONFIG_FILE"):
        env["OS_CLIENT_CONFIG_FILE"] = os.environ["OS_CLIENT_CONFIG_FILE"]
    return env


@pytest.fixture
def cloud(e2e_env):
    import openstack
    if e2e_env.get("OS_CLIENT_CONFIG_FILE"):
        os.environ.setdefault("OS_CLIENT_CONFIG_FILE", e2e_env["OS_CLIENT_CONFIG_FILE"])
    conn = openstack.connect(cloud=e2e_env["OS_CLOUD"])
    yield conn
    conn.close()


@pytest.fixture
def keypair(cloud, tmp_path):
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cloud.compute.create_keypair(name=name, public_key=(tmp_path / "id_ed25519.pub").read_text())
    yield name, str(key)
    cloud.compute.delete_keypair(name, ignore_missing=True)


def _ssh(host, key, command, timeout=600):
    return subprocess.run(
        ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"debian@{host}", command],
        capture_output=True, text=True, timeout=timeout)


def _as_hduser(command: str) -> str:
    return f"sudo -n -u hduser -H bash -lc {shlex.quote(command)}"


def test_image_launch_sparkpi_status_refusal_destroy(e2e_env, cloud, keypair):
    kp_name, key = keypair
    suffix = uuid.uuid4().hex[:6]
    image_name, cluster = f"e2e-spark-{suffix}", f"e2e{suffix}"
    image_args = ["create-image", "-n", image_name, "--base-image", BASE_IMAGE,
                  "--flavor", FLAVOR, "-k", kp_name, "--identity-file", key,
                  "--mirror", MIRROR, "--allowed-cidr", ALLOWED]
    image_args += ["--hadoop-version", HADOOP] if HADOOP else ["--no-hadoop"]
    try:
        cli(e2e_env, *image_args)
        image = cloud.image.find_image(image_name)
        assert image is not None and image.status == "active"
        props = image.properties or {}
        assert props.get("spark_version") and props.get("java_version")
        assert props.get("hadoop_version") == (HADOOP or "none")
        assert not [s for s in cloud.compute.servers() if s.name == f"{image_name}-builder"]

        launched = cli(e2e_env, "launch", "-c", cluster, "-s", "2", "-k", kp_name,
                       "-i", image_name, "--identity-file", key, "--flavor", FLAVOR,
                       "--allowed-cidr", ALLOWED, "--no-floating-ip")
        assert "no Hadoop" in launched.stdout + launched.stderr or HADOOP
        master = next(s for s in cloud.compute.servers(details=True)
                      if s.name == f"{cluster}-master")
        host = next(a["addr"] for addrs in master.addresses.values() for a in addrs
                    if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("version") == 4)

        pi = _ssh(host, key, _as_hduser(
            "cd ~ && spark-submit /opt/spark/examples/src/main/python/pi.py 10 2>pi.err"))
        assert pi.returncode == 0, pi.stderr
        value = float(pi.stdout.strip().rsplit(" ", 1)[-1])
        assert "Pi is roughly" in pi.stdout and abs(value - 3.14159) < 0.05

        status = _ssh(host, key, "fab status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "spark: 2/2 workers ALIVE" in status.stdout

        # Same master, same Spark, but no spark-defaults.conf (no secret): refused.
        refused = _ssh(host, key, _as_hduser(
            "rm -rf ~/noauth && mkdir ~/noauth && cp /opt/spark/conf/spark-env.sh ~/noauth/ && "
            "cd ~ && SPARK_CONF_DIR=~/noauth timeout 300 spark-submit "
            f"--master spark://{host}:7077 /opt/spark/examples/src/main/python/pi.py 2"))
        assert refused.returncode != 0
        assert "Pi is roughly" not in refused.stdout
        assert "SASL" in refused.stderr or "authentication" in refused.stderr.lower()
    finally:
        cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)
        left = [s.name for s in cloud.compute.servers() if s.name.startswith(cluster)
                or s.name.startswith(image_name)]
        groups = [g.name for g in cloud.network.security_groups()
                  if cluster in g.name or image_name in g.name]
        found = cloud.image.find_image(image_name)
        if found is not None:
            cloud.image.delete_image(found.id, ignore_missing=True)
    assert left == [] and groups == [], f"left behind: servers {left}, groups {groups}"
