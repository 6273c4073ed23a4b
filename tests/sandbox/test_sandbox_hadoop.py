"""The sandbox mirror's Hadoop (sandbox/build_hadoop.py): Apache Hadoop 3.4.2's own jars and
the project's launchers (sandbox/hadoop/), driven as real daemons in every command form the
tool uses.

Runs on this machine, loopback only, without the sandbox cloud: unpacks the built tarball
into a temporary folder and starts one NameNode, DataNode, ResourceManager and NodeManager
for the whole module (free loopback ports; stopped by pid in the fixture's teardown whatever
happened). Skipped when the tarball has not been built (sandbox/up builds it), unless
SANDBOX_REQUIRED=1.
"""
from __future__ import annotations

import getpass
import hashlib
import importlib.util
import re
import subprocess
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support.hadoop import (FAST_JVM, ROOT, VERSION, alive, clean_env, cmdline, free_ports,
                        hadoop_env, kill_all, pids_in, require_tarball, site, unpack, wait_for)

NAME = f"hadoop-{VERSION}"
IDENT = "sbxtest"
EXAMPLES = f"share/hadoop/mapreduce/hadoop-mapreduce-examples-{VERSION}.jar"
HDFS_DAEMONS = ("namenode", "datanode")
YARN_DAEMONS = ("resourcemanager", "nodemanager")


def _build_hadoop():
    spec = importlib.util.spec_from_file_location("build_hadoop", ROOT / "sandbox/build_hadoop.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- the tarball
@pytest.fixture(scope="module")
def tarball() -> Path:
    return require_tarball()


@pytest.fixture(scope="module")
def names(tarball) -> set[str]:
    with tarfile.open(tarball) as tf:
        return set(tf.getnames())


def test_tarball_layout_and_checksum(tarball, names):
    sha = (tarball.parent / (tarball.name + ".sha512")).read_text().split()
    assert sha[1] == tarball.name
    assert sha[0] == hashlib.sha512(tarball.read_bytes()).hexdigest()
    assert {n.split("/")[0] for n in names} == {NAME}
    for f in ("bin/hadoop", "bin/hdfs", "bin/yarn", "bin/mapred",
              "libexec/sbx-hadoop-launcher.sh", "RELEASE", "LICENSE.txt", "NOTICE.txt",
              *(f"etc/hadoop/{c}" for c in (
                  "core-site.xml", "hdfs-site.xml", "yarn-site.xml", "mapred-site.xml",
                  "hadoop-env.sh", "yarn-env.sh", "mapred-env.sh", "log4j.properties",
                  "capacity-scheduler.xml", "workers")),
              *(f"share/hadoop/common/hadoop-{a}-{VERSION}.jar"
                for a in ("common", "auth", "annotations")),
              f"share/hadoop/hdfs/hadoop-hdfs-{VERSION}.jar",
              f"share/hadoop/hdfs/hadoop-hdfs-client-{VERSION}.jar",
              *(f"share/hadoop/yarn/hadoop-yarn-{a}-{VERSION}.jar" for a in (
                  "api", "common", "client", "server-common", "server-resourcemanager",
                  "server-nodemanager", "server-web-proxy")),
              f"share/hadoop/yarn/timelineservice/hadoop-yarn-server-timelineservice-{VERSION}.jar",
              *(f"share/hadoop/mapreduce/hadoop-mapreduce-client-{a}-{VERSION}.jar"
                for a in ("core", "common", "app", "jobclient", "shuffle", "hs")),
              EXAMPLES,
              f"share/hadoop/tools/lib/hadoop-distcp-{VERSION}.jar",
              *(f"share/hadoop/hdfs/webapps/{w}/WEB-INF/web.xml"
                for w in ("hdfs", "datanode", "secondary"))):
        assert f"{NAME}/{f}" in names, f
    for layer in ("common", "hdfs", "yarn", "mapreduce"):
        assert any(n.startswith(f"{NAME}/share/hadoop/{layer}/lib/") and n.endswith(".jar")
                   for n in names) or layer == "mapreduce", layer
    # the hdfs tests jar gave its webapps/ only, none of its classes
    assert not any("tests" in n.rsplit("/", 1)[-1] for n in names if n.endswith(".jar"))


def test_the_tarball_carries_the_launchers_of_this_work_tree(tarball):
    """A tarball built from older sandbox/hadoop/ files is stale (sandbox/up rebuilds)."""
    src = ROOT / "sandbox/hadoop"
    with tarfile.open(tarball) as tf:
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = f.relative_to(src)
            member = tf.getmember(f"{NAME}/{rel}")
            assert tf.extractfile(member).read() == f.read_bytes(), f"{rel} differs: rebuild"
            if rel.parts[0] == "bin":
                assert member.mode & 0o111, rel


def test_release_note(tarball, names):
    with tarfile.open(tarball) as tf:
        note = tf.extractfile(f"{NAME}/RELEASE").read().decode()
    assert note.startswith(f"Apache Hadoop {VERSION} (HDFS, YARN, MapReduce)")
    own = len([n for n in names if re.fullmatch(
        rf"{NAME}/share/hadoop/(common|hdfs|yarn|mapreduce|yarn/timelineservice|tools/lib)"
        rf"/hadoop-[a-z-]+-{VERSION}\.jar", n)])
    libs = len([n for n in names if n.endswith(".jar")]) - own
    assert f"share/hadoop/*/hadoop-*.jar ({own} files)" in note
    assert f"share/hadoop/*/lib/*.jar ({libs} files)" in note
    assert "SHA-1 Maven Central publishes" in note and "own\n  launchers" in note


def test_every_jar_is_apaches_or_a_library(tarball, names, tmp_path):
    jars = sorted(n for n in names if n.endswith(".jar"))
    assert all(n.startswith(f"{NAME}/share/hadoop/") for n in jars)
    base = [n.rsplit("/", 1)[1] for n in jars]
    assert not [j for j in base if j.startswith(("spark-", "scala-", "pyspark"))]
    own = [n for n in jars if "/lib/" not in n or "/tools/lib/hadoop-" in n]
    with tarfile.open(tarball) as tf:
        for n in own:
            data = tf.extractfile(n).read()
            path = tmp_path / "j.jar"
            path.write_bytes(data)
            with zipfile.ZipFile(path) as z:
                poms = [m for m in z.namelist() if m.endswith("/pom.properties")]
                props = z.read(poms[0]).decode() if poms else ""
            assert "groupId=org.apache.hadoop\n" in props, n
            assert f"version={VERSION}" in props, n
    # Apache's own jars are never among the libraries (each layer's jar sits in the layer)
    assert not [n for n in jars if "/lib/" in n and "/tools/" not in n
                and re.search(rf"/hadoop-(common|hdfs|yarn|mapreduce)[a-z-]*-{VERSION}\.jar$", n)]


# ----------------------------------------------------------------------------- build_hadoop.py
def test_verify_stops_naming_the_jar_on_a_checksum_mismatch(tmp_path, capsys):
    bh = _build_hadoop()
    jar = tmp_path / "guava-27.0-jre.jar"
    jar.write_bytes(b"PK\x03\x04 not really")
    good = hashlib.sha1(jar.read_bytes()).hexdigest()
    (tmp_path / (jar.name + ".sha1")).write_text(f"{good}  {jar.name}\n")
    bh.verify(jar)   # right checksum: no exit
    (tmp_path / (jar.name + ".sha1")).write_text("0" * 40 + "\n")
    with pytest.raises(SystemExit) as info:
        bh.verify(jar)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert str(jar) in err and "checksum mismatch" in err and good in err


def test_verify_stops_naming_the_jar_without_its_sha1(tmp_path, capsys):
    bh = _build_hadoop()
    jar = tmp_path / "commons-io-2.16.1.jar"
    jar.write_bytes(b"jar")
    with pytest.raises(SystemExit):
        bh.verify(jar)
    err = capsys.readouterr().err
    assert str(jar) in err and "commons-io-2.16.1.jar.sha1" in err
    (tmp_path / (jar.name + ".sha1")).write_text("<html>not found</html>\n")
    with pytest.raises(SystemExit):
        bh.verify(jar)
    assert "not a SHA-1 checksum file" in capsys.readouterr().err


def test_parse_list_tree_and_layer_of():
    bh = _build_hadoop()
    listing = """
The following files have been resolved:
   org.apache.hadoop:hadoop-common:jar:3.4.2:compile:/m2/hadoop-common-3.4.2.jar
   com.google.guava:guava:jar:27.0-jre:compile:/m2/guava-27.0-jre.jar
   org.apache.hadoop:hadoop-hdfs:jar:tests:3.4.2:compile:/m2/hadoop-hdfs-3.4.2-tests.jar
   junit:junit:jar:4.13.2:test:/m2/junit-4.13.2.jar
   javax.servlet:servlet-api:jar:2.5:provided:/m2/servlet-api-2.5.jar
   org.slf4j:slf4j-api:jar:1.7.36:runtime:/m2/slf4j-api-1.7.36.jar
   org.apache.hadoop:hadoop-yarn-api:pom:3.4.2:compile:/m2/hadoop-yarn-api-3.4.2.pom
"""
    assert bh.parse_list(listing) == {
        ("org.apache.hadoop", "hadoop-common", ""): Path("/m2/hadoop-common-3.4.2.jar"),
        ("com.google.guava", "guava", ""): Path("/m2/guava-27.0-jre.jar"),
        ("org.apache.hadoop", "hadoop-hdfs", "tests"): Path("/m2/hadoop-hdfs-3.4.2-tests.jar"),
        ("org.slf4j", "slf4j-api", ""): Path("/m2/slf4j-api-1.7.36.jar")}
    tree = """spark-openstack.sandbox:hadoop-release:pom:3.4.2
+- org.apache.hadoop:hadoop-common:jar:3.4.2:compile
|  +- com.google.guava:guava:jar:27.0-jre:compile
|  \\- org.slf4j:slf4j-api:jar:1.7.36:compile
+- org.apache.hadoop:hadoop-yarn-server-nodemanager:jar:3.4.2:compile
|  \\- org.apache.hadoop:hadoop-yarn-api:jar:3.4.2:compile
|     \\- javax.xml.bind:jaxb-api:jar:2.2.11:compile
\\- org.apache.hadoop:hadoop-hdfs:jar:tests:3.4.2:compile
"""
    owners = bh.parse_tree(tree)
    assert owners[("com.google.guava", "guava", "")] == "hadoop-common"
    assert owners[("org.slf4j", "slf4j-api", "")] == "hadoop-common"
    assert owners[("javax.xml.bind", "jaxb-api", "")] == "hadoop-yarn-server-nodemanager"
    assert owners[("org.apache.hadoop", "hadoop-hdfs", "tests")] == "hadoop-hdfs"
    assert ("spark-openstack.sandbox", "hadoop-release", "") not in owners
    assert bh.layer_of("org.apache.hadoop", "hadoop-yarn-api", "hadoop-common") == ("yarn", True)
    assert bh.layer_of("org.apache.hadoop", "hadoop-mapreduce-client-core", "x") == \
        ("mapreduce", True)
    assert bh.layer_of("org.apache.hadoop", "hadoop-hdfs-client", "x") == ("hdfs", True)
    assert bh.layer_of("org.apache.hadoop", "hadoop-distcp", "x") == ("tools", True)
    assert bh.layer_of("org.apache.hadoop", "hadoop-auth", "x") == ("common", True)
    assert bh.layer_of("javax.xml.bind", "jaxb-api", "hadoop-yarn-server-nodemanager") == \
        ("yarn", False)
    assert bh.layer_of("com.google.guava", "guava", "hadoop-common") == ("common", False)
    assert bh.layer_of("x", "y", "hadoop-mapreduce-examples") == ("mapreduce", False)
    assert bh.layer_of("x", "y", "nobody") == ("common", False)


# ----------------------------------------------------------------------------- real daemons
@dataclass
class Cluster:
    home: Path
    run: Path
    env: dict
    ports: dict
    started: dict = field(default_factory=dict)   # daemon -> pid

    @property
    def conf(self) -> Path:
        return self.home / "etc/hadoop"

    def pidfile(self, daemon: str) -> Path:
        return self.run / "pids" / f"hadoop-{IDENT}-{daemon}.pid"

    def cmd(self, tool: str, *args: str, check: bool = True, timeout: float = 120
            ) -> subprocess.CompletedProcess:
        p = subprocess.run([str(self.home / "bin" / tool), *args], env=self.env, text=True,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert p.returncode == 0, (tool, args, p.stdout[-3000:], p.stderr[-3000:])
        return p

    def dead(self) -> str:
        """Which started daemon died, with the end of its logs ("" if none)."""
        for d, pid in self.started.items():
            if not alive(pid):
                return f"{d} died: " + "".join(
                    p.read_text()[-3000:] for p in (self.run / "logs").glob(f"*{d}*"))
        return ""


def _configure(home: Path, run: Path) -> dict:
    names = ("nn_rpc", "nn_http", "snn_http", "dn_data", "dn_http", "dn_ipc", "rm", "rm_sched",
             "rm_track", "rm_admin", "rm_http", "nm", "nm_loc", "nm_http", "shuffle")
    ports = dict(zip(names, free_ports(len(names))))
    lo = "127.0.0.1"
    conf = home / "etc/hadoop"
    (conf / "core-site.xml").write_text(site({
        "fs.defaultFS": f"hdfs://{lo}:{ports['nn_rpc']}", "hadoop.tmp.dir": f"{run}/tmp"}))
    (conf / "hdfs-site.xml").write_text(site({
        "dfs.namenode.name.dir": f"file://{run}/nn", "dfs.datanode.data.dir": f"file://{run}/dn",
        "dfs.namenode.checkpoint.dir": f"file://{run}/snn", "dfs.replication": "1",
        "dfs.namenode.rpc-address": f"{lo}:{ports['nn_rpc']}",
        "dfs.namenode.http-address": f"{lo}:{ports['nn_http']}",
        "dfs.namenode.secondary.http-address": f"{lo}:{ports['snn_http']}",
        "dfs.datanode.address": f"{lo}:{ports['dn_data']}",
        "dfs.datanode.http.address": f"{lo}:{ports['dn_http']}",
        "dfs.datanode.ipc.address": f"{lo}:{ports['dn_ipc']}",
        "dfs.datanode.hostname": lo,
        "dfs.namenode.datanode.registration.ip-hostname-check": "false"}))
    # config_files/hadoop/yarn-site.xml.j2's settings, on loopback ports (no log aggregation
    # there either: `yarn logs` must say so)
    (conf / "yarn-site.xml").write_text(site({
        "yarn.resourcemanager.hostname": lo, "yarn.resourcemanager.bind-host": lo,
        "yarn.resourcemanager.address": f"{lo}:{ports['rm']}",
        "yarn.resourcemanager.scheduler.address": f"{lo}:{ports['rm_sched']}",
        "yarn.resourcemanager.resource-tracker.address": f"{lo}:{ports['rm_track']}",
        "yarn.resourcemanager.admin.address": f"{lo}:{ports['rm_admin']}",
        "yarn.resourcemanager.webapp.address": f"{lo}:{ports['rm_http']}",
        "yarn.resourcemanager.connect.max-wait.ms": "20000",
        "yarn.resourcemanager.connect.retry-interval.ms": "1000",
        "yarn.nodemanager.bind-host": lo,
        "yarn.nodemanager.address": f"{lo}:{ports['nm']}",
        "yarn.nodemanager.localizer.address": f"{lo}:{ports['nm_loc']}",
        "yarn.nodemanager.webapp.address": f"{lo}:{ports['nm_http']}",
        "yarn.resourcemanager.nodes.exclude-path": f"{conf}/yarn.exclude",
        "yarn.acl.enable": "true", "yarn.admin.acl": getpass.getuser(),
        "yarn.nodemanager.aux-services": "mapreduce_shuffle",
        "yarn.nodemanager.aux-services.mapreduce_shuffle.class":
            "org.apache.hadoop.mapred.ShuffleHandler",
        "mapreduce.shuffle.port": str(ports["shuffle"]),
        "yarn.nodemanager.resource.memory-mb": "2048",
        "yarn.nodemanager.resource.cpu-vcores": "4",
        "yarn.scheduler.minimum-allocation-mb": "128",
        "yarn.scheduler.maximum-allocation-mb": "1024",
        "yarn.nodemanager.vmem-check-enabled": "false",
        "yarn.nodemanager.local-dirs": f"{run}/nmlocal",
        "yarn.nodemanager.log-dirs": f"{run}/nmlogs",
        "yarn.nodemanager.env-whitelist": "JAVA_HOME,HADOOP_COMMON_HOME,HADOOP_HDFS_HOME,"
            "HADOOP_CONF_DIR,CLASSPATH_PREPEND_DISTCACHE,HADOOP_YARN_HOME,HADOOP_HOME,PATH,"
            "LANG,TZ,HADOOP_MAPRED_HOME"}))
    (conf / "yarn.exclude").write_text("")
    task = f"-Xmx200m {FAST_JVM}"
    (conf / "mapred-site.xml").write_text(site({
        "mapreduce.framework.name": "yarn",
        # The NodeManager's ShuffleHandler loads mapred-default.xml after yarn-site.xml, so
        # its port must be set here: yarn-site.xml's mapreduce.shuffle.port is overridden
        # by mapred-default.xml's 13562 (test_the_shuffle_port_is_read_from_mapred_site).
        "mapreduce.shuffle.port": str(ports["shuffle"]),
        **{k: f"HADOOP_MAPRED_HOME={home}" for k in (
            "yarn.app.mapreduce.am.env", "mapreduce.map.env", "mapreduce.reduce.env")},
        "yarn.app.mapreduce.am.resource.mb": "384",
        "yarn.app.mapreduce.am.command-opts": f"-Xmx256m {FAST_JVM}",
        "mapreduce.map.memory.mb": "320", "mapreduce.reduce.memory.mb": "320",
        "mapreduce.task.io.sort.mb": "32",   # of the task's heap (default 100 MB)
        "mapreduce.map.java.opts": task, "mapreduce.reduce.java.opts": task}))
    # Set only in these files (the environment has none of them): the daemons' pid files,
    # logs and -D flags prove that the launchers source hadoop-env.sh and yarn-env.sh.
    (conf / "hadoop-env.sh").write_text(hadoop_env(
        logs=run / "logs", pids=run / "pids", ident=IDENT,
        extra='export HDFS_NAMENODE_OPTS="-Dsbx.from=hadoop-env.sh-namenode"\n'
              'export HDFS_DATANODE_OPTS="-Dsbx.from=hadoop-env.sh-datanode"\n'))
    (conf / "yarn-env.sh").write_text(
        'export YARN_RESOURCEMANAGER_OPTS="-Dsbx.from=yarn-env.sh-resourcemanager"\n'
        'export YARN_NODEMANAGER_OPTS="-Dsbx.from=yarn-env.sh-nodemanager"\n')
    return ports


@pytest.fixture(scope="module")
def cluster(tarball, tmp_path_factory):
    base = tmp_path_factory.mktemp("hadoop3")
    home = unpack(tarball, base)
    run = base / "run"
    for d in ("nn", "dn", "snn", "tmp", "nmlocal", "nmlogs"):
        (run / d).mkdir(parents=True)
    ports = _configure(home, run)
    c = Cluster(home=home, run=run, env=clean_env(home), ports=ports)
    t0 = time.monotonic()
    try:
        fmt = c.cmd("hdfs", "namenode", "-format", "-nonInteractive", "-clusterid", "CID-sbx")
        assert "successfully formatted" in fmt.stdout + fmt.stderr
        for tool, daemons in (("hdfs", HDFS_DAEMONS), ("yarn", YARN_DAEMONS)):
            for d in daemons:
                c.cmd(tool, "--daemon", "start", d)
                c.started[d] = int(c.pidfile(d).read_text())

        def ready():
            assert not c.dead(), c.dead()
            rep = c.cmd("hdfs", "dfsadmin", "-report", "-live", check=False).stdout
            nodes = c.cmd("yarn", "node", "-list", "-states", "RUNNING", check=False).stdout
            return "Live datanodes (1)" in rep and "Total Nodes:1" in nodes
        wait_for(ready, timeout=90, what="DataNode and NodeManager registered")
        c.cmd("hdfs", "dfsadmin", "-safemode", "wait")
        print(f"\nformat + 4 daemons up and registered in {time.monotonic() - t0:.1f}s")
        yield c
    finally:
        for d in (*YARN_DAEMONS[::-1], *HDFS_DAEMONS[::-1], "secondarynamenode"):
            subprocess.run([str(home / "bin" / ("yarn" if d in YARN_DAEMONS else "hdfs")),
                            "--daemon", "stop", d], env=c.env, capture_output=True, timeout=60)
        # whatever happened above: every pid we started or that a pid file names, by pid
        kill_all([*c.started.values(), *pids_in(run / "pids")])


def test_daemons_pid_files_logs_and_env_files(cluster):
    host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    for d, pid in cluster.started.items():
        assert int(cluster.pidfile(d).read_text()) == pid
        args = cmdline(pid)
        assert f"-Dproc_{d}" in args and "-Xmx256m" in args
        # HDFS_*_OPTS come from hadoop-env.sh, YARN_*_OPTS from yarn-env.sh only
        src = "yarn-env.sh" if d in YARN_DAEMONS else "hadoop-env.sh"
        assert f"-Dsbx.from={src}-{d}" in args, args
        assert not [a for a in args if a.startswith("-Dsbx.from=") and not a.endswith(d)]
        # HADOOP_OPTS of hadoop-env.sh: the Java 17 module opens
        assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in args
        log = cluster.run / "logs" / f"hadoop-{IDENT}-{d}-{host}.log"
        assert log.stat().st_size > 0, log
        assert (cluster.run / "logs" / f"hadoop-{IDENT}-{d}-{host}.out").exists()


def test_daemon_status_start_and_stop(cluster):
    for tool, d in (("hdfs", "namenode"), ("yarn", "resourcemanager")):
        st = cluster.cmd(tool, "--daemon", "status", d)
        assert st.stdout.strip() == f"{d} is running as process {cluster.started[d]}."
        again = cluster.cmd(tool, "--daemon", "start", d, check=False)
        assert again.returncode == 1 and "Stop it first" in again.stderr
        assert int(cluster.pidfile(d).read_text()) == cluster.started[d]
    # a stopped daemon: status says so and exits 0 (as Hadoop 3.4's does)
    for tool, d in (("hdfs", "secondarynamenode"), ("yarn", "proxyserver"),
                    ("mapred", "historyserver")):
        st = cluster.cmd(tool, "--daemon", "status", d)
        assert st.returncode == 0 and st.stdout.strip() == f"{d} is stopped."
    cluster.cmd("hdfs", "--daemon", "start", "secondarynamenode")
    pid = int(cluster.pidfile("secondarynamenode").read_text())
    assert "-Dproc_secondarynamenode" in cmdline(pid)
    assert "is running as process" in cluster.cmd(
        "hdfs", "--daemon", "status", "secondarynamenode").stdout
    cluster.cmd("hdfs", "--daemon", "stop", "secondarynamenode")
    assert not cluster.pidfile("secondarynamenode").exists()
    wait_for(lambda: not alive(pid), timeout=10, what="secondarynamenode gone", interval=0.2)
    assert "no secondarynamenode to stop" in cluster.cmd(
        "hdfs", "--daemon", "stop", "secondarynamenode").stdout
    assert cluster.cmd("hdfs", "--daemon", "status", "secondarynamenode").stdout.strip() == \
        "secondarynamenode is stopped."
    bad = cluster.cmd("hdfs", "--daemon", "start", "dfsadmin", check=False)
    assert bad.returncode == 1 and "daemons only" in bad.stderr


def test_classpath(cluster):
    for tool in ("hadoop", "hdfs", "yarn", "mapred"):
        cp = cluster.cmd(tool, "classpath").stdout.strip().split(":")
        assert cp[0] == str(cluster.conf)
        for entry in cp[1:]:
            folder = Path(entry[:-2] if entry.endswith("/*") else entry)
            assert folder.is_dir() or entry.endswith("log4j.properties") is False, entry
        assert f"{cluster.home}/share/hadoop/common/*" in cp
        assert f"{cluster.home}/share/hadoop/yarn/lib/*" in cp
    assert "Hadoop 3.4.2" in cluster.cmd("hadoop", "version").stdout


def test_hdfs_clients(cluster):
    rpc = cluster.ports["nn_rpc"]
    assert cluster.cmd("hdfs", "getconf", "-confKey", "fs.defaultFS").stdout.strip() == \
        f"hdfs://127.0.0.1:{rpc}"
    assert cluster.cmd("hdfs", "--config", str(cluster.conf), "getconf", "-confKey",
                       "dfs.replication").stdout.strip() == "1"
    rep = cluster.cmd("hdfs", "dfsadmin", "-report").stdout
    assert "Live datanodes (1):" in rep and f"127.0.0.1:{cluster.ports['dn_data']}" in rep
    data = b"sandbox hadoop 3\n" * 1000
    (cluster.run / "r.txt").write_bytes(data)
    cluster.cmd("hdfs", "dfs", "-mkdir", "-p", "/sbx")
    cluster.cmd("hdfs", "dfs", "-put", "-f", str(cluster.run / "r.txt"), "/sbx/r.txt")
    assert subprocess.run([str(cluster.home / "bin/hadoop"), "fs", "-cat", "/sbx/r.txt"],
                          env=cluster.env, capture_output=True, timeout=60).stdout == data
    fsck = cluster.cmd("hdfs", "fsck", "/")
    assert "is HEALTHY" in fsck.stdout and "Total files:\t1" in fsck.stdout.replace("  ", "\t")


def test_the_shuffle_listens_on_mapred_sites_port(cluster):
    host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    log = (cluster.run / "logs" / f"hadoop-{IDENT}-nodemanager-{host}.log").read_text()
    assert f"mapreduce_shuffle listening on port {cluster.ports['shuffle']}" in log


def test_yarn_node_list_and_refresh_nodes(cluster):
    nodes = cluster.cmd("yarn", "node", "-list", "-states", "RUNNING").stdout
    assert "Total Nodes:1" in nodes
    # the Node-Id is the canonical name of yarn.nodemanager.address's host
    assert re.search(rf"(127\.0\.0\.1|localhost):{cluster.ports['nm']}\s+RUNNING\s+"
                     rf"(127\.0\.0\.1|localhost):{cluster.ports['nm_http']}", nodes), nodes
    cluster.cmd("yarn", "rmadmin", "-refreshNodes")
    assert "Total Nodes:1" in cluster.cmd("yarn", "node", "-list").stdout


def _app_ids(text: str) -> list[str]:
    return re.findall(r"application_\d+_\d+", text)


def test_mapreduce_job_succeeds_and_the_application_cli_sees_it(cluster):
    t0 = time.monotonic()
    pi = cluster.cmd("hadoop", "jar", str(cluster.home / EXAMPLES), "pi", "2", "20",
                     timeout=240)
    out = pi.stdout + pi.stderr
    assert "Estimated value of Pi is 3." in out, out[-3000:]
    app = _app_ids(out)[0]
    print(f"\npi 2 20 on YARN: {time.monotonic() - t0:.1f}s ({app})")
    listed = cluster.cmd("yarn", "application", "-list", "-appStates", "FINISHED").stdout
    assert app in listed and "SUCCEEDED" in listed
    status = cluster.cmd("yarn", "application", "-status", app).stdout
    assert "State : FINISHED" in status and "Final-State : SUCCEEDED" in status
    assert "Application-Type : MAPREDUCE" in status
    assert app.replace("application", "job") in cluster.cmd(
        "mapred", "job", "-list", "all").stdout
    # the product's yarn-site.xml has no log aggregation: `yarn logs` says exactly that
    logs = cluster.cmd("yarn", "logs", "-applicationId", app, check=False)
    said = logs.stdout + logs.stderr
    assert logs.returncode != 0, said[-2000:]
    assert re.search(r"[Ll]og aggregation .*(not enabled|has not completed)|"
                     r"not (enabled|completed)|does not exist", said), said[-2000:]


def test_a_running_application_is_killed(cluster):
    job = subprocess.Popen([str(cluster.home / "bin/hadoop"), "jar",
                            str(cluster.home / EXAMPLES), "pi", "40", "200000"],
                           env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True)
    try:
        def running():
            out = cluster.cmd("yarn", "application", "-list", "-appStates", "RUNNING").stdout
            return _app_ids(out)
        app = wait_for(running, timeout=120, what="the pi job RUNNING")[0]
        assert "job_" in cluster.cmd("mapred", "job", "-list").stdout
        kill = cluster.cmd("yarn", "application", "-kill", app)
        assert f"Killed application {app}" in kill.stdout + kill.stderr
        status = cluster.cmd("yarn", "application", "-status", app).stdout
        assert "State : KILLED" in status and "Final-State : KILLED" in status
        assert job.wait(timeout=120) != 0
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()


def test_stop_leaves_no_daemon(cluster):
    """Last: `--daemon stop` of every daemon, workers first; the pid files go with them."""
    for tool, d in (("yarn", "nodemanager"), ("yarn", "resourcemanager"),
                    ("hdfs", "datanode"), ("hdfs", "namenode")):
        pid = cluster.started[d]
        cluster.cmd(tool, "--daemon", "stop", d)
        assert not cluster.pidfile(d).exists()
        wait_for(lambda: not alive(pid), timeout=15, what=f"{d} gone", interval=0.2)
        assert cluster.cmd(tool, "--daemon", "status", d).stdout.strip() == f"{d} is stopped."
