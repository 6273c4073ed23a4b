"""End to end on the sandbox cloud, as the non-admin user, through the CLI, on real HDFS.

One image for the module: create-image WITH Hadoop from the sandbox mirror (there: Apache
Hadoop 2.7.3's own NameNode/DataNode jars with the project's launchers, HDFS only; on a
real cloud, SPARK_OPENSTACK_E2E_HADOOP_VERSION names an Apache release with YARN). Then:

- ``test_launch_hdfs_spark_fab_destroy``: launch -s 2 deploys HDFS + Spark; dfsadmin shows
  both workers live by name; a file round-trips through HDFS byte-identical; a PySpark word
  count reads and writes hdfs:// with the right counts; SparkPi with spark.authenticate;
  a submission without the secret is refused; ``fab status``; ``fab stop_hadoop`` then
  ``fab start_hadoop`` keeps the files; destroy leaves nothing.
- ``test_seed_fab_flow_on_a_no_deploy_cluster``: launch --no-deploy, ``deploy --no-start``
  (prepares the nodes and installs fab), then the seed's Fabric flow command by command on
  the master, each step's effect checked on the real daemons.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
MIRROR = os.environ.get("SPARK_OPENSTACK_E2E_MIRROR", "http://10.213.0.1:8099")
ALLOWED = os.environ.get("SPARK_OPENSTACK_E2E_CIDR", "10.213.0.1/32")
BASE_IMAGE = os.environ.get("SPARK_OPENSTACK_E2E_BASE_IMAGE", "debian-12")
FLAVOR = os.environ.get("SPARK_OPENSTACK_E2E_FLAVOR", "m1.small")
REAL_CLOUD = os.environ.get("SPARK_OPENSTACK_E2E_CLOUD")


def _hadoop_version() -> str:
    """The Hadoop release to bake: the env on real clouds, else what the sandbox serves."""
    if os.environ.get("SPARK_OPENSTACK_E2E_HADOOP_VERSION"):
        return os.environ["SPARK_OPENSTACK_E2E_HADOOP_VERSION"]
    served = ROOT / ".sandbox" / "hadoop_version"
    if not served.is_file():
        pytest.fail(f"{served} is missing: sandbox/up did not put a Hadoop into the mirror")
    return served.read_text().strip()


def cli(env, *args, timeout=1800, check=True):
    proc = subprocess.run([str(Path(sys.executable).parent / "spark-openstack"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        pytest.fail(f"spark-openstack {' '.join(args)} exited {proc.returncode}\n"
                    f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def e2e_env(sandbox_env):
    """The sandbox's environment, or a real cloud's when SPARK_OPENSTACK_E2E_CLOUD is set
    (the devstack workflow), with clouds.yaml found the usual way."""
    if not REAL_CLOUD:
        return sandbox_env
    env = dict(sandbox_env, OS_CLOUD=REAL_CLOUD)
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    if os.environ.get("OS_CLIENT_CONFIG_FILE"):
        env["OS_CLIENT_CONFIG_FILE"] = os.environ["OS_CLIENT_CONFIG_FILE"]
    return env


@pytest.fixture(scope="module")
def cloud(e2e_env):
    import openstack
    if e2e_env.get("OS_CLIENT_CONFIG_FILE"):
        os.environ.setdefault("OS_CLIENT_CONFIG_FILE", e2e_env["OS_CLIENT_CONFIG_FILE"])
    conn = openstack.connect(cloud=e2e_env["OS_CLOUD"])
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def keypair(cloud, tmp_path_factory):
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    folder = tmp_path_factory.mktemp("e2e-key")
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cloud.compute.create_keypair(name=name, public_key=(folder / "id_ed25519.pub").read_text())
    yield name, str(key)
    cloud.compute.delete_keypair(name, ignore_missing=True)


@pytest.fixture(scope="module")
def hadoop_image(e2e_env, cloud, keypair):
    """create-image with Hadoop (the default bake), checked, shared by the module."""
    kp_name, key = keypair
    version = _hadoop_version()
    image_name = f"e2e-hadoop-{uuid.uuid4().hex[:6]}"
    try:
        baked = cli(e2e_env, "create-image", "-n", image_name, "--base-image", BASE_IMAGE,
                    "--flavor", FLAVOR, "-k", kp_name, "--identity-file", key,
                    "--mirror", MIRROR, "--allowed-cidr", ALLOWED, "--hadoop-version", version)
        image = cloud.image.find_image(image_name)
        assert image is not None and image.status == "active"
        props = image.properties or {}
        assert props.get("spark_version") and props.get("java_version")
        assert props.get("hadoop_version") == version
        assert "hdfs" in props.get("hadoop_services", "").split(","), props
        if not REAL_CLOUD:   # Apache's 2.7.3 jars from PyPI hold no YARN daemons
            assert props["hadoop_services"] == "hdfs"
        assert f"Hadoop {version} (HDFS" in baked.stdout + baked.stderr
        assert not [s for s in cloud.compute.servers() if s.name == f"{image_name}-builder"]
        yield image_name, props
    finally:
        found = cloud.image.find_image(image_name)
        if found is not None:
            cloud.image.delete_image(found.id, ignore_missing=True)


def _ssh(host, key, command, timeout=600, stdin: bytes | None = None):
    return subprocess.run(
        ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"debian@{host}", command],
        capture_output=True, timeout=timeout,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
        text=stdin is None)


def _as_hduser(command: str) -> str:
    return f"sudo -n -u hduser -H bash -lc {shlex.quote(command)}"


def _ok(result, what: str):
    out = result.stdout if isinstance(result.stdout, str) else result.stdout.decode()
    err = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    assert result.returncode == 0, f"{what} exited {result.returncode}\n{out[-2000:]}\n{err[-2000:]}"
    return out


def _master_address(cloud, cluster: str) -> str:
    master = next(s for s in cloud.compute.servers(details=True)
                  if s.name == f"{cluster}-master")
    return next(a["addr"] for addrs in master.addresses.values() for a in addrs
                if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("version") == 4)


def _leftovers(cloud, cluster: str) -> dict:
    return {
        "servers": [s.name for s in cloud.compute.servers() if s.name.startswith(f"{cluster}-")],
        "groups": [g.name for g in cloud.network.security_groups() if cluster in g.name],
        "server groups": [g.name for g in cloud.compute.server_groups() if cluster in g.name],
        "floating ips": [f.floating_ip_address for f in cloud.network.ips()
                         if cluster in (f.description or "")],
    }


def _destroy_and_check(e2e_env, cloud, cluster: str) -> None:
    cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)
    left = _leftovers(cloud, cluster)      # checked before anything else cleans up
    assert not any(left.values()), f"left behind: {left}"


def _live_datanodes(host, key) -> str:
    return _ok(_ssh(host, key, _as_hduser("hdfs dfsadmin -report -live")), "dfsadmin -report")


def _word_count_check(host, key, cluster: str, master_url: str | None = None) -> None:
    """A PySpark word count that reads hdfs:// and writes hdfs://, counts checked."""
    words = [f"w{i % 7}" for i in range(700)] + ["spark"] * 11 + ["hdfs"] * 5
    text = "\n".join(" ".join(words[i:i + 9]) for i in range(0, len(words), 9)) + "\n"
    expected = Counter(words)
    job = (
        "import sys\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('e2e-wordcount').getOrCreate()\n"
        "lines = spark.sparkContext.textFile(sys.argv[1])\n"
        "counts = lines.flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)\n"
        "counts.map(lambda kv: '%s\\t%d' % kv).saveAsTextFile(sys.argv[2])\n"
        "spark.stop()\n")
    run = secrets.token_hex(3)
    _ok(_ssh(host, key, _as_hduser(f"cat > ~/wc-{run}.py"), stdin=job.encode()), "upload job")
    _ok(_ssh(host, key, _as_hduser(f"hdfs dfs -mkdir -p wc-{run} && "
                                   f"hdfs dfs -put - wc-{run}/in.txt"), stdin=text.encode()),
        "put input")
    master = f"--master {master_url} " if master_url else ""
    # input as a full hdfs:// URL, output as a bare path (fs.defaultFS makes it HDFS)
    _ok(_ssh(host, key, _as_hduser(
        f"cd ~ && spark-submit {master}wc-{run}.py hdfs:///user/hduser/wc-{run}/in.txt "
        f"wc-{run}/out 2> wc-{run}.err || {{ tail -n 40 wc-{run}.err >&2; exit 1; }}")),
        "word count")
    out = _ok(_ssh(host, key, _as_hduser(f"hdfs dfs -cat 'wc-{run}/out/part-*'")), "read counts")
    got = Counter({w: int(n) for w, n in (line.split("\t") for line in out.splitlines() if line)})
    assert got == expected


def test_launch_hdfs_spark_fab_destroy(e2e_env, cloud, keypair, hadoop_image):
    kp_name, key = keypair
    image_name, props = hadoop_image
    cluster = f"e2e{uuid.uuid4().hex[:6]}"
    try:
        launched = cli(e2e_env, "launch", "-c", cluster, "-s", "2", "-k", kp_name,
                       "-i", image_name, "--identity-file", key, "--flavor", FLAVOR,
                       "--allowed-cidr", ALLOWED, "--no-floating-ip")
        said = launched.stdout + launched.stderr
        yarn = "yarn" in props["hadoop_services"].split(",")
        if yarn:
            assert "deploying HDFS + YARN + Spark standalone" in said
        else:
            assert "has no YARN daemons: deploying HDFS + Spark standalone" in said
        assert "hdfs: 2/2 DataNodes live" in said
        host = _master_address(cloud, cluster)
        workers = [f"{cluster}-worker-1", f"{cluster}-worker-2"]

        report = _live_datanodes(host, key)
        assert "Live datanodes (2)" in report
        for name in workers:                       # registered by name, not 127.0.1.1
            assert re.search(rf"^Hostname: {name}$", report, re.M), report

        # a file round-trips through HDFS byte-identical (3 MiB of random bytes)
        blob = secrets.token_bytes(3 * 1024 * 1024)
        digest = hashlib.sha256(blob).hexdigest()
        _ok(_ssh(host, key, _as_hduser("hdfs dfs -put - /user/hduser/blob.bin"), stdin=blob),
            "put blob")
        back = _ok(_ssh(host, key, _as_hduser("hdfs dfs -cat /user/hduser/blob.bin | sha256sum")),
                   "cat blob")
        assert back.split()[0] == digest
        stat = _ok(_ssh(host, key, _as_hduser("hdfs dfs -stat '%r %b %u' /user/hduser/blob.bin")),
                   "stat blob")
        assert stat.split() == ["2", str(len(blob)), "hduser"]     # replicated on both

        _word_count_check(host, key, cluster)
        if yarn:
            _word_count_check(host, key, cluster, master_url="yarn")

        pi = _ssh(host, key, _as_hduser(
            "cd ~ && spark-submit /opt/spark/examples/src/main/python/pi.py 10 2>pi.err"))
        _ok(pi, "SparkPi")
        value = float(pi.stdout.strip().rsplit(" ", 1)[-1])
        assert "Pi is roughly" in pi.stdout and abs(value - 3.14159) < 0.05

        status = _ok(_ssh(host, key, "fab status"), "fab status")
        assert "hdfs: 2/2 DataNodes live" in status and "[ok]" in status
        assert "spark: 2/2 workers ALIVE" in status

        # Same master, same Spark, but no spark-defaults.conf (no secret): refused.
        refused = _ssh(host, key, _as_hduser(
            "rm -rf ~/noauth && mkdir ~/noauth && cp /opt/spark/conf/spark-env.sh ~/noauth/ && "
            "cd ~ && SPARK_CONF_DIR=~/noauth timeout 300 spark-submit "
            f"--master spark://{host}:7077 /opt/spark/examples/src/main/python/pi.py 2"))
        assert refused.returncode != 0
        assert "Pi is roughly" not in refused.stdout
        assert "SASL" in refused.stderr or "authentication" in refused.stderr.lower()

        # stop/start HDFS with fab: the NameNode is really down, then the data is back
        _ok(_ssh(host, key, "fab stop_hadoop"), "fab stop_hadoop")
        down = _ssh(host, key, _as_hduser(
            "hdfs dfsadmin -D ipc.client.connect.max.retries=0 -report -live"), timeout=120)
        assert down.returncode != 0
        assert not _ssh(host, key, "pgrep -f -- '-Dproc_[n]amenode '").stdout.strip()
        started = _ok(_ssh(host, key, "fab start_hadoop"), "fab start_hadoop")
        assert "hdfs: 2/2 DataNodes live" in started
        back = _ok(_ssh(host, key, _as_hduser("hdfs dfs -cat /user/hduser/blob.bin | sha256sum")),
                   "cat blob after restart")
        assert back.split()[0] == digest
    finally:
        _destroy_and_check(e2e_env, cloud, cluster)


def test_seed_fab_flow_on_a_no_deploy_cluster(e2e_env, cloud, keypair, hadoop_image):
    kp_name, key = keypair
    image_name, props = hadoop_image
    cluster = f"fab{uuid.uuid4().hex[:6]}"
    try:
        cli(e2e_env, "launch", "-c", cluster, "-s", "2", "-k", kp_name, "-i", image_name,
            "--identity-file", key, "--flavor", FLAVOR, "--allowed-cidr", ALLOWED,
            "--no-floating-ip", "--no-deploy")
        host = _master_address(cloud, cluster)
        prepared = cli(e2e_env, "deploy", "-c", cluster, "--identity-file", key, "--no-start")
        assert "nothing started" in prepared.stdout + prepared.stderr
        # nothing runs yet ([a-z]: the pattern must not match the shell running pgrep)
        assert _ssh(host, key, "pgrep -f -- '-Dproc_[a-z]'").stdout.strip() == ""

        def fab(task, ok=True):
            result = _ssh(host, key, f"fab {task}")
            if ok:
                _ok(result, f"fab {task}")
            return result

        conn = fab("test_conn").stdout
        for node in (f"{cluster}-master", f"{cluster}-worker-1", f"{cluster}-worker-2"):
            assert f"{node} (" in conn and f"hostname {node}" in conn
        fab("init_cluster")
        version_file = "/var/lib/hadoop/hdfs/namenode/current/VERSION"
        assert _ssh(host, key, f"test -f {version_file}").returncode != 0
        assert "HDFS formatted" in fab("format_hdfs").stdout
        version = _ok(_ssh(host, key, f"sudo -n cat {version_file}"), "VERSION")
        assert f"clusterID=spark-openstack-{cluster}" in version
        again = fab("format_hdfs", ok=False)
        assert again.returncode != 0 and "already formatted" in again.stdout + again.stderr
        assert _ok(_ssh(host, key, f"sudo -n cat {version_file}"), "VERSION") == version

        started = fab("start_hadoop").stdout
        assert "hdfs: 2/2 DataNodes live" in started
        for daemon in ("namenode", "secondarynamenode"):
            pattern = f"-Dproc_[{daemon[0]}]{daemon[1:]} "
            assert _ssh(host, key, f"pgrep -u hduser -f -- '{pattern}'").stdout.strip()
        fab("create_hdfs_user")
        listing = _ok(_ssh(host, key, _as_hduser("hdfs dfs -ls /user")), "ls /user")
        assert re.search(r"^d\S+\s+-\s+hduser\s+hduser\s+.*/user/hduser$", listing, re.M), listing
        safemode = _ok(_ssh(host, key, _as_hduser("hdfs dfsadmin -safemode get")), "safemode")
        assert "Safe mode is OFF" in safemode

        yarn_said = fab("start_yarn").stdout
        if "yarn" in props["hadoop_services"].split(","):
            assert "yarn: 2/2 NodeManagers running" in yarn_said
        else:
            assert "YARN is not part of cluster" in yarn_said and "nothing to do" in yarn_said

        assert "spark: 2/2 workers ALIVE" in fab("start_spark").stdout
        status = fab("status").stdout
        assert "hdfs: 2/2 DataNodes live" in status and "spark: 2/2 workers ALIVE" in status

        _ok(_ssh(host, key, _as_hduser("echo kept across restarts | hdfs dfs -put - keep.txt")),
            "put keep.txt")
        fab("stop_hadoop")
        assert not _ssh(host, key, "pgrep -f -- '-Dproc_[n]amenode '").stdout.strip()
        assert not _ssh(host, key, "pgrep -f -- '-Dproc_[s]econdarynamenode '").stdout.strip()
        assert "hdfs: 2/2 DataNodes live" in fab("start_hadoop").stdout
        kept = _ok(_ssh(host, key, _as_hduser("hdfs dfs -cat keep.txt")), "cat keep.txt")
        assert kept == "kept across restarts\n"
    finally:
        _destroy_and_check(e2e_env, cloud, cluster)
