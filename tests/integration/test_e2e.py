"""End to end on the sandbox cloud, as the non-admin user, through the CLI, on real HDFS.

One image for the module, from a bare Debian 12 cloud image (no Java: the bake installs
OpenJDK 17 through the apt proxy): create-image WITH Hadoop from the sandbox mirror (there: Apache
Hadoop 3's own jars from Maven Central with the project's launchers: HDFS, YARN and
MapReduce; on a real cloud, SPARK_OPENSTACK_E2E_HADOOP_VERSION names an Apache release).
Clusters use m1.medium workers, the smallest flavor that holds HDFS + YARN + Spark. Then:

- ``test_launch_hdfs_spark_fab_destroy``: launch -s 2 deploys HDFS + YARN + Spark; dfsadmin shows
  both workers live by name; a file round-trips through HDFS byte-identical; a PySpark word
  count reads and writes hdfs:// with the right counts (on Spark standalone and on YARN); SparkPi with spark.authenticate;
  a submission without the secret is refused; ``fab status``; ``fab stop_hadoop`` then
  ``fab start_hadoop`` keeps the files; destroy leaves nothing.
- ``test_seed_fab_flow_on_a_no_deploy_cluster``: launch --no-deploy, ``deploy --no-start``
  (prepares the nodes and installs fab), then the seed's Fabric flow command by command on
  the master, each step's effect checked on the real daemons.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections import Counter

import pytest

from support.e2e import (ALLOWED, BARE_BASE_IMAGE, FLAVOR, MIRROR, REAL_CLOUD, YARN_FLAVOR,
                         apt_proxy_args, cli)
from support.e2e import as_hduser as _as_hduser
from support.e2e import hadoop_version as _hadoop_version
from support.e2e import leftovers as _leftovers
from support.e2e import ok as _ok
from support.e2e import ssh as _ssh

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

@pytest.fixture(scope="module")
def hadoop_image(e2e_env, cloud, keypair):
    """create-image with Hadoop (the default bake), checked, shared by the module."""
    kp_name, key = keypair
    version = _hadoop_version()
    image_name = f"e2e-hadoop-{uuid.uuid4().hex[:6]}"
    try:
        baked = cli(e2e_env, "create-image", "-n", image_name, "--base-image",
                    BARE_BASE_IMAGE, "--flavor", FLAVOR, "-k", kp_name, "--identity-file", key,
                    "--mirror", MIRROR, "--allowed-cidr", ALLOWED, "--hadoop-version", version,
                    *apt_proxy_args())
        image = cloud.image.find_image(image_name)
        assert image is not None and image.status == "active"
        props = image.properties or {}
        assert props.get("spark_version") and props.get("java_version")
        assert props.get("hadoop_version") == version
        assert "hdfs" in props.get("hadoop_services", "").split(","), props
        if not REAL_CLOUD:   # the sandbox's Hadoop 3 holds HDFS and YARN
            assert props["hadoop_services"] == "hdfs,yarn"
        assert f"Hadoop {version} (HDFS" in baked.stdout + baked.stderr
        if not REAL_CLOUD:   # the bare tree has no Java: Debian 12's OpenJDK 17 from apt
            assert "(installed openjdk-17-jre-headless, chosen for debian 12)" in (
                baked.stdout + baked.stderr), baked.stdout + baked.stderr
            assert props.get("java_package") == "openjdk-17-jre-headless", props
        assert not [s for s in cloud.compute.servers() if s.name == f"{image_name}-builder"]
        yield image_name, props
    finally:
        found = cloud.image.find_image(image_name)
        if found is not None:
            cloud.image.delete_image(found.id, ignore_missing=True)


def _master_address(cloud, cluster: str) -> str:
    master = next(s for s in cloud.compute.servers(details=True)
                  if s.name == f"{cluster}-master")
    return next(a["addr"] for addrs in master.addresses.values() for a in addrs
                if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("version") == 4)


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
                       "-i", image_name, "--identity-file", key, "--flavor", YARN_FLAVOR,
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
            "--identity-file", key, "--flavor", YARN_FLAVOR, "--allowed-cidr", ALLOWED,
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
