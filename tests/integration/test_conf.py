"""A cluster's own settings end to end (issue 11, part 3) on the sandbox, through the CLI,
on real HDFS (Apache Hadoop 3's jars from Maven Central) and real Spark, with
--services hdfs,spark (YARN's side of configure-cluster is test_yarn_e2e's):

1. ``launch --conf spark.x=... --hadoop-conf hdfs-site:dfs.replication=1
   --hadoop-conf core-site:io.file.buffer.size=...``: every node's files hold them, the
   running NameNode uses them, and a PySpark app sees the Spark one;
2. bad input refused before any change (a protected Spark key, a non-spark key, an
   unknown file, unsetting what is not set, nothing to change): exit 2, settings unchanged;
3. ``configure-cluster`` sets one, replaces one and unsets one: every node's files, the
   restarted NameNode (its /conf servlet) and a new app see the new values, ``--show``
   lists them;
4. a Spark change while an application runs is refused (the app keeps running); a Hadoop
   change then restarts HDFS only (the app still runs);
5. ``add-workers`` gives the new worker the same settings; ``deploy`` keeps them;
6. ``destroy`` leaves nothing (checked before any other cleanup).
"""
from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from support.e2e import ALLOWED, FLAVOR, baked_image, cli, said
from support.e2e import as_hduser
from support.e2e import leftovers
from support.e2e import ok
from support.e2e import ssh

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

GREETING_APP = """\
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("greeting").getOrCreate()
print("GREETING=" + spark.conf.get("spark.myapp.greeting", "unset"))
print("COUNT=%d" % spark.sparkContext.parallelize(range(100), 4).count())
spark.stop()
"""
SLEEPER_APP = """\
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("sleeper").getOrCreate()
spark.sparkContext.parallelize(range(4), 2).count()
time.sleep(600)
"""


@pytest.fixture(scope="module")
def hadoop_image(e2e_env, cloud, keypair):
    with baked_image(e2e_env, cloud, keypair, prefix="conf-hadoop") as name:
        yield name


class Cluster:
    def __init__(self, env, cloud, name, key):
        self.env, self.cloud, self.name, self.key = env, cloud, name, key
        self.host = ""
        self.destroyed = False

    def run(self, command, *rest, check=True, timeout=1200):
        extra = [] if command == "destroy" else ["--identity-file", self.key]
        return cli(self.env, command, "-c", self.name, *extra, *rest, check=check,
                   timeout=timeout)

    def on_master(self, command: str, timeout=600) -> str:
        return ok(ssh(self.host, self.key, as_hduser(command), timeout=timeout), command)

    def on_every_node(self, command: str) -> dict[str, str]:
        """``{node: output}`` of a command run as hduser on every node (run-command)."""
        proc = self.run("run-command", "--json", "--", as_hduser(command))
        return {item["node"]: item["stdout"] for item in json.loads(proc.stdout)}

    def app_says(self, app: str = GREETING_APP) -> dict[str, str]:
        """Run a PySpark app on the master (spark-submit as hduser); its KEY=VALUE lines."""
        ssh(self.host, self.key, as_hduser("cat > /tmp/conf-app.py"),
            stdin=app.encode())
        out = self.on_master("spark-submit /tmp/conf-app.py 2>/tmp/conf-app.err")
        return dict(re.findall(r"^([A-Z]+)=(.*)$", out, re.M))

    def namenode_conf(self, key: str) -> str:
        """What the RUNNING NameNode uses (its /conf servlet), not what a file says."""
        script = ("import sys, urllib.request, xml.etree.ElementTree as ET\n"
                  "root = ET.fromstring(urllib.request.urlopen(sys.argv[1], timeout=20).read())\n"
                  "print({p.findtext('name'): p.findtext('value') for p in root.iter('property')}"
                  ".get(sys.argv[2], ''))\n")
        ssh(self.host, self.key, "cat > /tmp/nn-conf.py", stdin=script.encode())
        return self.on_master(f"python3 /tmp/nn-conf.py http://{self.host}:9870/conf "
                              f"{key}").strip()

    def show(self) -> dict:
        proc = self.run("configure-cluster", "--show", "--json")
        return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def cluster(e2e_env, cloud, keypair, hadoop_image):
    kp_name, key = keypair
    name = f"cf{uuid.uuid4().hex[:6]}"
    state = Cluster(e2e_env, cloud, name, key)
    try:
        cli(e2e_env, "launch", "-c", name, "-s", "1", "-k", kp_name, "-i", hadoop_image,
            "--identity-file", key, "--flavor", FLAVOR, "--allowed-cidr", ALLOWED,
            "--no-floating-ip", "--services", "hdfs,spark",
            "--conf", "spark.myapp.greeting=from-launch",
            "--hadoop-conf", "hdfs-site:dfs.replication=1",
            "--hadoop-conf", "core-site.xml:io.file.buffer.size=65536", timeout=1200)
        server = next(s for s in cloud.compute.servers(details=True)
                      if s.name == f"{name}-master")
        state.host = next(a["addr"] for addrs in server.addresses.values() for a in addrs
                          if a.get("version") == 4)
        yield state
    finally:
        if not state.destroyed:
            cli(e2e_env, "destroy", "-c", name, "--yes", check=False, timeout=600)


GETCONF = ("hdfs getconf -confKey dfs.replication; hdfs getconf -confKey io.file.buffer.size; "
           "hdfs getconf -confKey dfs.blocksize; "
           "grep -E '^spark.myapp.greeting' /opt/spark/conf/spark-defaults.conf || true")


def test_launch_settings_reach_every_node_hdfs_and_the_app(cluster):
    per_node = cluster.on_every_node(GETCONF)
    assert set(per_node) == {f"{cluster.name}-master", f"{cluster.name}-worker-1"}
    for node, out in per_node.items():
        lines = out.split()
        assert lines[:2] == ["1", "65536"], f"{node}: {out}"
        assert "from-launch" in out, f"{node}: {out}"
    assert cluster.namenode_conf("dfs.replication") == "1"
    assert cluster.app_says()["GREETING"] == "from-launch"
    assert cluster.show() == {"cluster": cluster.name,
                              "spark": {"spark.myapp.greeting": "from-launch"},
                              "hadoop": {"hdfs-site.xml": {"dfs.replication": "1"},
                                         "core-site.xml": {"io.file.buffer.size": "65536"}}}


@pytest.mark.parametrize("args, says", [
    (["--conf", "spark.authenticate=false"], "not changeable"),
    (["--conf", "spark.authenticate.secret=guess"], "not changeable"),
    (["--conf", "myapp.greeting=x"], "start with 'spark.'"),
    (["--hadoop-conf", "hadoop-env:x=1"], "FILE:KEY=VALUE"),
    (["--unset", "spark.never.set"], "no such Spark setting"),
    (["--unset", "hdfs-site:dfs.never.set"], "no such Hadoop setting"),
    ([], "nothing to change"),
    (["--show", "--conf", "spark.a=1"], "cannot change"),
])
def test_bad_input_is_refused_and_nothing_changes(cluster, args, says):
    before = cluster.show()
    proc = cluster.run("configure-cluster", *args, check=False, timeout=300)
    assert proc.returncode == 2, said(proc)
    assert says in proc.stderr, said(proc)
    assert cluster.show() == before


def test_configure_cluster_sets_replaces_and_unsets(cluster):
    proc = cluster.run("configure-cluster", "--conf", "spark.myapp.greeting=from-configure",
                       "--hadoop-conf", "hdfs-site:dfs.blocksize=2097152",
                       "--unset", "core-site:io.file.buffer.size", "--json")
    result = json.loads(proc.stdout)
    assert result["changed"] and result["healthy"]
    assert set(result["restarted"]) == {"hdfs", "spark"}
    for node, out in cluster.on_every_node(GETCONF).items():
        lines = out.split()
        # replication kept, buffer size back to Hadoop's default, new block size
        assert lines[:3] == ["1", "4096", "2097152"], f"{node}: {out}"
        assert "from-configure" in out and "from-launch" not in out, f"{node}: {out}"
    assert cluster.namenode_conf("dfs.blocksize") == "2097152"   # the restarted NameNode
    assert cluster.app_says()["GREETING"] == "from-configure"
    assert cluster.show()["hadoop"] == {"hdfs-site.xml": {"dfs.replication": "1",
                                                          "dfs.blocksize": "2097152"}}
    again = cluster.run("configure-cluster", "--conf", "spark.myapp.greeting=from-configure")
    assert "nothing to do" in again.stdout


def test_a_spark_restart_is_refused_while_an_app_runs(cluster):
    ssh(cluster.host, cluster.key, as_hduser("cat > /tmp/sleeper.py"),
        stdin=SLEEPER_APP.encode())
    cluster.on_master("setsid nohup spark-submit /tmp/sleeper.py > /tmp/sleeper.log 2>&1 "
                      "< /dev/null & echo $! > /tmp/sleeper.pid")
    pid = cluster.on_master("cat /tmp/sleeper.pid").strip()

    def app_running() -> bool:
        out = cluster.on_master("python3 -c \"import json,sys,urllib.request; "
                                f"print(len(json.load(urllib.request.urlopen('http://{cluster.host}"
                                ":8080/json/', timeout=10))['activeapps']))\"")
        return out.strip() == "1"
    deadline = time.monotonic() + 180
    while not app_running():
        assert time.monotonic() < deadline, cluster.on_master("tail -20 /tmp/sleeper.log")
        time.sleep(2)
    try:
        proc = cluster.run("configure-cluster", "--conf", "spark.myapp.greeting=refused",
                           check=False)
        assert proc.returncode == 2 and "sleeper" in proc.stderr, said(proc)
        assert "--restart-running" in proc.stderr
        assert cluster.show()["spark"] == {"spark.myapp.greeting": "from-configure"}
        # a Hadoop-only change restarts HDFS and leaves Spark (and the app) alone
        proc = cluster.run("configure-cluster", "--hadoop-conf",
                           "hdfs-site:dfs.namenode.handler.count=12", "--json")
        assert json.loads(proc.stdout)["restarted"] == ["hdfs"]
        assert app_running()
        assert cluster.namenode_conf("dfs.namenode.handler.count") == "12"
    finally:
        cluster.on_master(f"kill -- -{pid} 2>/dev/null; true")   # setsid: its own group


def test_new_workers_and_redeploys_keep_the_settings(cluster):
    cluster.run("add-workers", "-n", "1", timeout=1200)
    per_node = cluster.on_every_node(GETCONF)
    assert f"{cluster.name}-worker-2" in per_node
    for node, out in per_node.items():
        assert out.split()[:3] == ["1", "4096", "2097152"], f"{node}: {out}"
        assert "from-configure" in out, f"{node}: {out}"
    cluster.run("deploy")
    assert cluster.app_says()["GREETING"] == "from-configure"
    assert cluster.namenode_conf("dfs.namenode.handler.count") == "12"


def test_destroy_leaves_nothing(cluster):
    cluster.run("destroy", "--yes", timeout=600)
    cluster.destroyed = True
    left = leftovers(cluster.cloud, cluster.name)     # before anything else cleans up
    assert not any(left.values()), f"left behind: {left}"
