"""The sandbox mirror's Hadoop (sandbox/build_hadoop.sh): real HDFS daemons through its launchers.

Runs on this machine, loopback only, without the sandbox cloud: unpacks the built tarball
(Apache Hadoop 2.7.3's jars from PyPI pyspark 2.4.8's sdist + the project's bin/hdfs) into a
temporary folder, and drives a NameNode, a DataNode and a SecondaryNameNode with the Hadoop 3
command forms the tool uses. Skipped when the tarball has not been built (sandbox/up builds
it), unless SANDBOX_REQUIRED=1.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARBALL = Path(os.environ.get(
    "SANDBOX_HADOOP27_TARBALL",
    ROOT / ".sandbox/mirror/hadoop/common/hadoop-2.7.3/hadoop-2.7.3.tar.gz"))
DEADLINE = 40  # seconds for the DataNode to register


def _need(cond: bool, reason: str) -> None:
    if cond:
        return
    if os.environ.get("SANDBOX_REQUIRED") == "1":
        pytest.fail(f"SANDBOX_REQUIRED=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def tarball() -> Path:
    _need(TARBALL.is_file(), f"{TARBALL} is not built (sudo sandbox/up builds it with "
                             "sandbox/build_hadoop.sh)")
    _need(shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME")),
          "no java on PATH and no JAVA_HOME")
    return TARBALL


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _site(props: dict[str, str]) -> str:
    body = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n"
                   for k, v in props.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


def test_tarball_layout_and_checksum(tarball):
    sha = (tarball.parent / (tarball.name + ".sha512")).read_text().split()
    assert sha[1] == tarball.name
    assert sha[0] == hashlib.sha512(tarball.read_bytes()).hexdigest()
    with tarfile.open(tarball) as tf:
        names = set(tf.getnames())
    top = {n.split("/")[0] for n in names}
    assert top == {"hadoop-2.7.3"}
    for f in ("bin/hdfs", "bin/hadoop", "etc/hadoop/core-site.xml", "etc/hadoop/hdfs-site.xml",
              "etc/hadoop/hadoop-env.sh", "etc/hadoop/log4j.properties", "etc/hadoop/workers",
              "RELEASE", "share/hadoop/common/hadoop-common-2.7.3.jar",
              "share/hadoop/common/hadoop-auth-2.7.3.jar",
              "share/hadoop/common/hadoop-annotations-2.7.3.jar",
              "share/hadoop/hdfs/hadoop-hdfs-2.7.3.jar",
              "share/hadoop/hdfs/webapps/hdfs/WEB-INF/web.xml",
              "share/hadoop/hdfs/webapps/datanode/WEB-INF/web.xml",
              "share/hadoop/hdfs/webapps/secondary/WEB-INF/web.xml"):
        assert f"hadoop-2.7.3/{f}" in names, f
    # HDFS only: no YARN daemons exist in any registry here
    assert "hadoop-2.7.3/bin/yarn" not in names
    assert "hadoop-2.7.3/sbin/start-yarn.sh" not in names
    jars = [n.rsplit("/", 1)[1] for n in names if n.endswith(".jar")]
    assert any(j.startswith("jersey1-server") for j in jars)
    bad = [j for j in jars if j.startswith(("spark-", "scala-", "hive-", "hk2-", "jersey-",
                                            "javax.ws.rs-api", "hadoop-yarn", "hadoop-mapreduce"))]
    assert not bad


def test_hdfs_daemons_through_the_launchers(tarball, tmp_path):
    t0 = time.monotonic()
    with tarfile.open(tarball) as tf:
        tf.extractall(tmp_path)
    home = tmp_path / "hadoop-2.7.3"
    hdfs = str(home / "bin/hdfs")
    conf = home / "etc/hadoop"
    run = tmp_path / "run"
    for d in ("nn", "dn", "snn", "tmp", "logs", "pids"):
        (run / d).mkdir(parents=True)
    nn_rpc, nn_http, snn_http, dn_data, dn_http, dn_ipc = _free_ports(6)
    (conf / "core-site.xml").write_text(_site({
        "fs.defaultFS": f"hdfs://127.0.0.1:{nn_rpc}",
        "hadoop.tmp.dir": f"{run}/tmp"}))
    (conf / "hdfs-site.xml").write_text(_site({
        "dfs.namenode.name.dir": f"file://{run}/nn",
        "dfs.datanode.data.dir": f"file://{run}/dn",
        "dfs.namenode.checkpoint.dir": f"file://{run}/snn",
        "dfs.replication": "1",
        "dfs.namenode.rpc-address": f"127.0.0.1:{nn_rpc}",
        "dfs.namenode.http-address": f"127.0.0.1:{nn_http}",
        "dfs.namenode.secondary.http-address": f"127.0.0.1:{snn_http}",
        "dfs.datanode.address": f"127.0.0.1:{dn_data}",
        "dfs.datanode.http.address": f"127.0.0.1:{dn_http}",
        "dfs.datanode.ipc.address": f"127.0.0.1:{dn_ipc}",
        "dfs.datanode.hostname": "127.0.0.1",
        "dfs.namenode.datanode.registration.ip-hostname-check": "false"}))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HADOOP_", "HDFS_", "YARN_"))}
    env.update(HADOOP_LOG_DIR=str(run / "logs"), HADOOP_PID_DIR=str(run / "pids"),
               HADOOP_IDENT_STRING="sbxtest", HADOOP_HEAPSIZE_MAX="256m",
               HADOOP_OPTS=f"-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.io.tmpdir={run}/tmp")
    pidfile = {d: run / "pids" / f"hadoop-sbxtest-{d}.pid"
               for d in ("namenode", "datanode", "secondarynamenode")}

    def h(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        p = subprocess.run([hdfs, *args], env=env, capture_output=True, timeout=timeout)
        if check:
            assert p.returncode == 0, (args, p.stdout.decode(), p.stderr.decode()[-3000:])
        return p

    def out(p: subprocess.CompletedProcess) -> str:
        return p.stdout.decode() + p.stderr.decode()

    started: dict[str, int] = {}
    try:
        fmt = h("namenode", "-format", "-nonInteractive", "-clusterid", "CID-sbxtest")
        assert "successfully formatted" in out(fmt)
        st = h("--daemon", "status", "namenode")  # Hadoop 3.4: always exit 0
        assert st.returncode == 0 and "namenode is stopped." in out(st)

        for d in ("namenode", "datanode"):
            h("--daemon", "start", d)
            pid = int(pidfile[d].read_text())
            started[d] = pid
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert f"-Dproc_{d}".encode() in cmdline
            assert b"-Xmx256m" in cmdline
        again = h("--daemon", "start", "namenode", check=False)
        assert again.returncode == 1 and "Stop it first" in out(again)
        st = h("--daemon", "status", "namenode")
        assert st.returncode == 0
        assert f"namenode is running as process {started['namenode']}." in out(st)
        host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
        assert (run / "logs" / f"hadoop-sbxtest-namenode-{host}.log").stat().st_size > 0
        assert (run / "logs" / f"hadoop-sbxtest-namenode-{host}.out").exists()

        deadline = time.monotonic() + DEADLINE
        while True:
            rep = h("dfsadmin", "-report", "-live", check=False)
            if "Live datanodes (1)" in rep.stdout.decode():
                break
            for d, pid in started.items():
                assert Path(f"/proc/{pid}").exists(), f"{d} died: " + "".join(
                    p.read_text()[-3000:] for p in (run / "logs").glob(f"*{d}*.out"))
            assert time.monotonic() < deadline, out(rep)
            time.sleep(1)
        up_s = time.monotonic() - t0
        assert "Safe mode is OFF" in out(h("dfsadmin", "-safemode", "wait"))

        data = os.urandom(1 << 20)
        (run / "r.bin").write_bytes(data)
        h("dfs", "-mkdir", "-p", "/sbx")
        h("dfs", "-put", str(run / "r.bin"), "/sbx/r.bin")
        assert h("dfs", "-cat", "/sbx/r.bin").stdout == data

        with urllib.request.urlopen(f"http://127.0.0.1:{nn_http}/webhdfs/v1/sbx"
                                    "?op=LISTSTATUS&user.name=sbxtest", timeout=10) as r:
            listing = json.load(r)["FileStatuses"]["FileStatus"]
        assert [(f["pathSuffix"], f["length"]) for f in listing] == [("r.bin", len(data))]

        assert h("getconf", "-confKey", "fs.defaultFS").stdout.decode().strip() \
            == f"hdfs://127.0.0.1:{nn_rpc}"
        assert h("--config", str(conf), "getconf", "-confKey", "dfs.namenode.http-address") \
            .stdout.decode().strip() == f"127.0.0.1:{nn_http}"
        assert "Hadoop 2.7.3" in h("version").stdout.decode()

        h("--daemon", "start", "secondarynamenode")
        started["secondarynamenode"] = int(pidfile["secondarynamenode"].read_text())
        assert "secondarynamenode is running as process" in \
            out(h("--daemon", "status", "secondarynamenode"))

        rss = {d: int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0])
               for d, pid in started.items()}
        print(f"\nformat+start+report {up_s:.1f}s; RSS KiB {rss}")

        for d in ("secondarynamenode", "datanode", "namenode"):
            h("--daemon", "stop", d)
            assert not pidfile[d].exists()
            pid = started[d]
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists() or \
                        Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                    break
                time.sleep(0.1)
            else:
                pytest.fail(f"{d} (pid {pid}) still running after --daemon stop")
            started.pop(d)
        again = h("--daemon", "stop", "datanode")
        assert "no datanode to stop" in out(again)
        st = h("--daemon", "status", "datanode")
        assert st.returncode == 0 and "datanode is stopped." in out(st)
    finally:
        for d, f in pidfile.items():
            if d not in started and f.exists() and f.read_text().strip().isdigit():
                started[d] = int(f.read_text())
        for d, pid in started.items():  # by pid, whatever happened above
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
