"""YARN end to end on the sandbox, through the CLI as the non-admin user, on Apache Hadoop
3's real ResourceManager and NodeManagers (Apache's jars from Maven Central, the project's
launchers), with real Spark on YARN.

One image (create-image with Hadoop and --jupyter) and one cluster (2 m1.medium workers,
HDFS + YARN + Spark + Jupyter: m1.medium is the smallest sandbox flavor that holds them) for
the module, in this order:

1. a flavor too small for YARN, and YARN asked of an image without it: refused before
   anything exists;
2. health names the ResourceManager's NodeManagers, and the missing one when a NodeManager
   is stopped; ``start`` brings it back;
3. ``spark-submit --master yarn`` on the master in client (SparkPi) and cluster deploy mode
   (a PySpark word count from and to HDFS);
4. ``submit`` gets executors on both workers (the first job on an empty cluster);
   ``submit --detach``, ``jobs``, ``logs``, ``kill``: the YARN application ends KILLED and no
   container is left running;
5. a peer's workload: Apache's hadoop-mapreduce-examples (wordcount; teragen, terasort,
   teravalidate) on YARN;
6. the notebook's PySpark kernel runs on YARN on both workers, and dynamic allocation
   (shuffle tracking) gives the idle executors back;
7. the NameNode and ResourceManager UIs in headless Chromium through ``login -L`` show the
   live DataNodes and running NodeManagers by name (screenshots kept in
   .test-artifacts/); from outside, an anonymous WebHDFS write and a YARN REST submission
   get no answer with the default security group;
8. ``configure-cluster --hadoop-conf yarn-site:...`` restarts YARN only;
9. the seed's fab flow for YARN on the master (``fab stop_yarn``, ``fab status``,
   ``fab start_yarn``);
10. ``add-workers`` brings a NodeManager that takes containers;
11. ``remove-workers`` while a YARN application runs: YARN's graceful decommission lets it
    finish successfully, the NodeManager leaves, no HDFS block is lost;
12. ``stop``/``start`` keep HDFS data and bring YARN back;
13. ``destroy`` leaves nothing; the one-shot ``run`` on YARN (a cluster of its own) brings
    its output home and leaves nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from support.e2e import (ALLOWED, BASE_IMAGE, CLI, FLAVOR, MIRROR, REAL_CLOUD, ROOT,
                         YARN_FLAVOR, as_hduser, baked_image, cli, leftovers, notebook_json,
                         notebook_outputs, ok, said, ssh)
from support.e2e import fixed_ip as _fixed_ip

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

ARTIFACTS = ROOT / ".test-artifacts" / "yarn"
#: Where this machine's SSH comes from to a floating IP (the sandbox's public gateway)
FLOATING_ALLOWED = os.environ.get("SPARK_OPENSTACK_E2E_FLOATING_CIDR", "10.214.0.1/32")
EXAMPLES = "/opt/hadoop/share/hadoop/mapreduce/hadoop-mapreduce-examples-*.jar"
JUPYTER = "/opt/spark-openstack/python/bin/jupyter"

HOSTS_APP = '''
import socket, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("yarn-hosts").getOrCreate()
sc = spark.sparkContext
n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
hosts = sc.parallelize(range(n * 50), n).map(lambda _: socket.gethostname()).distinct().collect()
print("MASTER", sc.master)
print("HOSTS", ",".join(sorted(hosts)))
print("SUM", sc.parallelize(range(1000), n).sum())
spark.stop()
'''
SLOW_APP = '''
import sys, time, socket
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("yarn-slow").getOrCreate()
sc = spark.sparkContext
seconds = int(sys.argv[1])
for i in range(1, seconds // 5 + 1):
    hosts = sc.parallelize(range(12), 6).map(lambda x: (time.sleep(1), socket.gethostname())[1]).distinct().collect()
    print("tick", i, ",".join(sorted(hosts)), flush=True)
print("SLOW-DONE", flush=True)
spark.stop()
'''
WORDCOUNT_APP = '''
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("yarn-wordcount").getOrCreate()
counts = (spark.sparkContext.textFile(sys.argv[1]).flatMap(str.split)
          .map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b))
counts.map(lambda kv: "%s\\t%d" % kv).saveAsTextFile(sys.argv[2])
spark.stop()
'''


# ============================================================================ helpers
def _floating_ip(server) -> str | None:
    return next((a["addr"] for addrs in (server.addresses or {}).values() for a in addrs
                 if a.get("OS-EXT-IPS:type") == "floating"), None)


def _until(what: str, check, *, timeout: float, every: float = 3.0):
    """Poll ``check`` until it returns a true value; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"{what}: not after {timeout:.0f}s (last: {last!r})")


class Yarn:
    """The module's one cluster."""

    def __init__(self, env, cloud, cluster, key, apps: Path):
        self.env, self.cloud, self.cluster, self.key, self.apps = env, cloud, cluster, key, apps
        self.host = ""
        self.destroyed = False

    @property
    def workers(self) -> list[str]:
        return sorted(s.name for s in self.cloud.compute.servers()
                      if s.name.startswith(f"{self.cluster}-worker-"))

    def run(self, *args, check=True, timeout=900):
        command, rest = args[0], args[1:]
        extra = [] if command in ("destroy", "describe") else ["--identity-file", self.key]
        return cli(self.env, command, "-c", self.cluster, *extra, *rest, check=check,
                   timeout=timeout)

    def hd(self, command: str, *, what: str, timeout=600, check=True):
        """``command`` on the master as hduser (its login environment)."""
        result = ssh(self.host, self.key, as_hduser(command), timeout=timeout)
        return ok(result, what) if check else result

    def yarn_apps(self, states: str = "") -> dict[str, tuple[str, str, str]]:
        """{application id: (name, state, final status)} from the ResourceManager's REST
        API on the master (names may hold spaces: "word count")."""
        url = (f"http://{self.host}:8088/ws/v1/cluster/apps"
               + (f"?states={states}" if states else ""))
        out = self.hd("python3 -c 'import sys, urllib.request as u; "
                      "print(u.urlopen(sys.argv[1], timeout=30).read().decode())' "
                      + shlex.quote(url), what="the ResourceManager's applications")
        apps = (json.loads(out).get("apps") or {}).get("app") or []
        return {a["id"]: (a["name"], a["state"], a["finalStatus"]) for a in apps}

    def running_containers(self) -> dict[str, int]:
        """{node: running containers} of the RUNNING NodeManagers."""
        out = self.hd("yarn node -list 2>/dev/null", what="yarn node -list")
        return {m[1]: int(m[2]) for m in re.finditer(
            r"^\s*([^\s:]+):\d+\s+RUNNING\s+\S+\s+(\d+)\s*$", out, re.M)}

    def node_states(self) -> dict[str, str]:
        out = self.hd("yarn node -list -all 2>/dev/null", what="yarn node -list -all")
        return {m[1]: m[2] for m in re.finditer(r"^\s*([^\s:]+):\d+\s+([A-Z_]+)\s", out, re.M)}

    def status(self, check=True) -> dict:
        proc = self.run("status", "--json", check=False, timeout=300)
        if check:
            assert proc.returncode == 0, said(proc)
        return json.loads(proc.stdout)

    def daemon_pid(self, node: str, tool: str, daemon: str) -> str:
        """The pid of ``daemon`` on ``node`` as its launcher's ``--daemon status`` says."""
        proc = self.run("run-command", "--node", node, "--",
                        as_hduser(f"{tool} --daemon status {daemon}"), check=False, timeout=120)
        found = re.search(rf"{daemon} is running as process (\d+)", proc.stdout)
        return found[1] if found else ""


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("yarn-apps")
    for name, text in (("hosts.py", HOSTS_APP), ("slow.py", SLOW_APP),
                       ("wordcount.py", WORDCOUNT_APP)):
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def image(e2e_env, cloud, keypair):
    # Jupyter's wheels from the sandbox mirror's pypi/ folder (sandbox/up builds it); a
    # real cloud's hosts use their own index
    pip = () if REAL_CLOUD else (
        "--python-constraints", str(ROOT / ".sandbox" / "mirror" / "pypi" / "constraints.txt"),
        "--pip-find-links", f"{MIRROR}/pypi/")
    with baked_image(e2e_env, cloud, keypair, prefix="yarn-img",
                     extra=("--jupyter", *pip)) as name:
        props = cloud.image.find_image(name).properties or {}
        assert props.get("hadoop_services") == "hdfs,yarn", props
        yield name


@pytest.fixture(scope="module")
def yc(e2e_env, cloud, keypair, image, apps):
    kp_name, key = keypair
    cluster = f"yn{uuid.uuid4().hex[:6]}"
    state = Yarn(e2e_env, cloud, cluster, key, apps)
    try:
        proc = cli(e2e_env, "launch", "-c", cluster, "-s", "2", "-k", kp_name, "-i", image,
                   "--identity-file", key, "--flavor", YARN_FLAVOR, "--allowed-cidr",
                   ALLOWED, "--allowed-cidr", FLOATING_ALLOWED, "--jupyter", timeout=1500)
        out = proc.stdout + proc.stderr
        assert "deploying HDFS + YARN + Spark standalone + Jupyter" in out, said(proc)
        assert (f"yarn: 2/2 NodeManagers running ({cluster}-worker-1, {cluster}-worker-2)"
                " [ok]") in out, said(proc)
        master = next(s for s in cloud.compute.servers() if s.name == f"{cluster}-master")
        state.host = _fixed_ip(cloud.compute.get_server(master.id))
        yield state
    finally:
        if not state.destroyed:       # safety net; test_destroy checks leftovers itself
            cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)


# ============================================================================ 1. bad input
def test_bad_input_is_refused_before_anything_exists(e2e_env, cloud, keypair, image):
    kp_name, key = keypair
    cluster = f"yb{uuid.uuid4().hex[:6]}"
    small = cli(e2e_env, "launch", "-c", cluster, "-s", "2", "-k", kp_name, "-i", image,
                "--identity-file", key, "--flavor", FLAVOR, "--allowed-cidr", ALLOWED,
                "--no-floating-ip", check=False, timeout=300)
    assert small.returncode != 0, said(small)
    assert "too small for hdfs, yarn, spark" in small.stderr, said(small)
    assert re.search(r"the worker needs .*NodeManager.*= \d+ MB; its flavor has 2048 MB",
                     small.stderr), said(small)
    assert not any(leftovers(cloud, cluster).values())
    bare = cli(e2e_env, "launch", "-c", cluster, "-s", "1", "-k", kp_name, "-i", BASE_IMAGE,
               "--identity-file", key, "--flavor", YARN_FLAVOR, "--allowed-cidr", ALLOWED,
               "--no-floating-ip", "--services", "hdfs,yarn,spark", check=False, timeout=300)
    assert bare.returncode != 0, said(bare)
    assert "was not made by `spark-openstack create-image`" in bare.stderr, said(bare)
    assert not any(leftovers(cloud, cluster).values())


# ============================================================================ 2. health
def test_health_names_the_nodemanagers_and_the_missing_one(yc):
    report = yc.status()
    yarn = report["services"]["yarn"]
    assert yarn["ok"] and yarn["expected"] == 2 and yarn["actual"] == 2, report
    w1, w2 = f"{yc.cluster}-worker-1", f"{yc.cluster}-worker-2"
    assert w1 in yarn["line"] and w2 in yarn["line"], yarn
    assert yc.daemon_pid(f"{yc.cluster}-master", "yarn", "resourcemanager")
    # a NodeManager stopped (it unregisters): health says which one is missing
    yc.run("run-command", "--node", w2, "--", as_hduser("yarn --daemon stop nodemanager"))
    _until("the ResourceManager sees worker-2 leave",
           lambda: yc.node_states().get(w2) in ("SHUTDOWN", "LOST"), timeout=120)
    proc = yc.run("status", "--json", check=False, timeout=300)
    assert proc.returncode == 1, said(proc)
    yarn = json.loads(proc.stdout)["services"]["yarn"]
    assert not yarn["ok"] and yarn["actual"] == 1, yarn
    assert f"missing: {w2}" in yarn["line"], yarn
    # start brings back what is not running
    yc.run("start", timeout=900)
    yarn = yc.status()["services"]["yarn"]
    assert yarn["ok"] and yarn["actual"] == 2, yarn


# ============================================================================ 3. spark-submit
def test_spark_submit_on_yarn_in_client_and_cluster_mode(yc, apps):
    ssh(yc.host, yc.key, as_hduser("cat > ~/wordcount.py"),
        stdin=(apps / "wordcount.py").read_bytes())
    pi = yc.hd("cd ~ && spark-submit --master yarn --deploy-mode client "
               "/opt/spark/examples/src/main/python/pi.py 8 2> pi-client.err",
               what="SparkPi on YARN (client mode)")
    assert "Pi is roughly 3.1" in pi, pi
    text = " ".join(f"word{i % 7}" for i in range(7000)) + "\n"
    ssh(yc.host, yc.key, as_hduser("hdfs dfs -put -f - /user/hduser/wc-in.txt"),
        stdin=text.encode())
    yc.hd("cd ~ && spark-submit --master yarn --deploy-mode cluster wordcount.py "
          "hdfs:///user/hduser/wc-in.txt hdfs:///user/hduser/wc-out 2> wc-cluster.err "
          "|| { tail -n 40 wc-cluster.err >&2; exit 1; }", what="word count (cluster mode)")
    counts = yc.hd("hdfs dfs -cat '/user/hduser/wc-out/part-*'", what="read counts")
    got = dict(line.split("\t") for line in counts.splitlines() if line)
    assert got == {f"word{i}": "1000" for i in range(7)}, got
    finished = {name: (state, final) for name, state, final in yc.yarn_apps().values()}
    assert finished.get("PythonPi") == ("FINISHED", "SUCCEEDED"), finished
    # in cluster mode YARN names the application before the app sets its name
    assert finished.get("wordcount.py") == ("FINISHED", "SUCCEEDED"), finished


# ============================================================================ 4. jobs
def test_submit_gets_executors_on_both_workers(yc, apps):
    proc = yc.run("submit", str(apps / "hosts.py"), "16", timeout=600)
    assert "MASTER yarn" in proc.stdout, said(proc)
    hosts = re.search(r"^HOSTS (.*)$", proc.stdout, re.M)
    assert hosts and hosts[1].split(",") == yc.workers, said(proc)
    assert "SUM 499500" in proc.stdout


def test_submit_detach_jobs_logs_and_kill_end_the_yarn_application(yc, apps):
    job_id = yc.run("submit", "--detach", str(apps / "slow.py"), "600").stdout.strip()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", job_id), job_id
    _until("tick 2 in the job's log", lambda: "tick 2" in yc.run("logs", job_id).stdout,
           timeout=300)
    jobs = {j["id"]: j for j in json.loads(yc.run("jobs", "--json").stdout)}
    assert jobs[job_id]["state"] == "running", jobs
    log = yc.run("logs", job_id).stdout
    app = re.search(r"(application_\d+_\d+)", log)
    assert app, log[-3000:]
    app = app[1]
    assert yc.yarn_apps("RUNNING").get(app, ("",))[0] == "yarn-slow"
    killed = yc.run("kill", job_id, timeout=180)
    assert f"killed job {job_id}" in killed.stdout, said(killed)
    status = yc.hd(f"yarn application -status {app} 2>/dev/null", what="application -status")
    assert re.search(r"^\s*State : KILLED$", status, re.M), status
    _until("no container left running",
           lambda: set(yc.running_containers().values()) == {0}, timeout=120)
    jobs = {j["id"]: j for j in json.loads(yc.run("jobs", "--json").stdout)}
    assert jobs[job_id]["state"] == "killed", jobs


# ============================================================================ 5. MapReduce
def test_apache_mapreduce_examples_on_yarn(yc):
    text = "".join(f"alpha beta beta gamma gamma gamma w{i % 50}\n" for i in range(5000))
    ok(ssh(yc.host, yc.key, as_hduser("hdfs dfs -mkdir -p mr-in && "
                                      "hdfs dfs -put -f - mr-in/words.txt"),
           stdin=text.encode()), "put words")
    yc.hd(f"cd ~ && yarn jar {EXAMPLES} wordcount mr-in mr-wc 2> mr-wc.err "
          "|| { tail -n 40 mr-wc.err >&2; exit 1; }", what="MapReduce wordcount", timeout=900)
    counts = yc.hd("hdfs dfs -cat 'mr-wc/part-r-*'", what="wordcount output")
    got = dict(line.split("\t") for line in counts.splitlines() if line)
    assert got == {"alpha": "5000", "beta": "10000", "gamma": "15000",
                   **{f"w{i}": "100" for i in range(50)}}, got
    for step in ("teragen 200000 tera-in", "terasort tera-in tera-out",
                 "teravalidate tera-out tera-report"):
        yc.hd(f"cd ~ && yarn jar {EXAMPLES} {step} 2> tera.err "
              "|| { tail -n 40 tera.err >&2; exit 1; }",
              what=step.split()[0], timeout=900)
    report = yc.hd("hdfs dfs -cat 'tera-report/part-r-*'", what="teravalidate report")
    assert re.search(r"^checksum\s+[0-9a-f]+$", report, re.M), report
    assert "error" not in report.lower(), report
    names = [name for name, state, final in yc.yarn_apps().values()
             if final == "SUCCEEDED"]
    for job in ("word count", "TeraGen", "TeraSort", "TeraValidate"):
        assert job in names, names


# ============================================================================ 6. notebook
def test_notebook_kernel_runs_on_yarn_and_gives_idle_executors_back(yc):
    cells = [
        "import socket, time\n"
        "print('MASTER', sc.master)\n"
        "hosts = sc.parallelize(range(16), 16).map(lambda _: (time.sleep(2), "
        "socket.gethostname())[1]).distinct().collect()\n"
        "print('HOSTS', ','.join(sorted(hosts)))",
        "def executors():\n"
        "    return sc._jsc.sc().getExecutorIds().size()\n"
        "print('BUSY', executors())\n"
        "deadline = time.time() + 420\n"
        "while executors() and time.time() < deadline:\n"
        "    time.sleep(5)\n"
        "print('IDLE', executors())",
    ]
    ssh(yc.host, yc.key, as_hduser("mkdir -p ~/notebooks && cat > ~/notebooks/yarn.ipynb"),
        stdin=notebook_json(cells).encode())
    yc.hd(f"cd ~/notebooks && timeout 600 {JUPYTER} nbconvert --to notebook --execute "
          "--ExecutePreprocessor.kernel_name=pyspark --ExecutePreprocessor.timeout=540 "
          "--output yarn.out.ipynb yarn.ipynb > yarn.log 2>&1 "
          "|| { tail -n 40 yarn.log >&2; exit 1; }", what="nbconvert on YARN", timeout=700)
    out = notebook_outputs(yc.hd("cat ~/notebooks/yarn.out.ipynb", what="executed notebook"))
    assert "MASTER yarn" in out, out
    # (progress bars share the stream: no line anchors)
    hosts = re.search(r"HOSTS (\S+)", out)
    # 16 tasks of 2 s: dynamic allocation asks for a second executor, which YARN can only
    # place on the other worker (one executor fits a worker beside the application master)
    assert hosts and hosts[1].split(",") == yc.workers, out
    busy = int(re.search(r"BUSY (\d+)", out)[1])
    assert busy >= 2, out
    assert re.search(r"IDLE 0\b", out), out        # dynamic allocation gave them back


# ============================================================================ 7. web UIs
def _browser(url: str, *, screenshot: Path | None = None) -> str:
    """The page's DOM after its scripts ran, in headless Chromium (and a screenshot)."""
    base = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--virtual-time-budget=15000", "--window-size=1400,1000"]
    if screenshot is not None:
        subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=120, check=True)
    proc = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                          timeout=120, check=True)
    return proc.stdout


def test_web_uis_in_a_browser_and_closed_to_outside(yc):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tunnel = subprocess.Popen([CLI, "login", "-c", yc.cluster, "--identity-file", yc.key,
                               "-L", "--", "sleep", "300"], env=yc.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        def answers():
            import urllib.request
            try:
                with urllib.request.urlopen("http://localhost:8088/ws/v1/cluster/info",
                                            timeout=5) as resp:
                    return resp.status == 200
            except OSError:
                return False
        _until("the tunnel to the ResourceManager", answers, timeout=60, every=1)
        nn = _browser("http://localhost:9870/dfshealth.html#tab-datanode",
                      screenshot=ARTIFACTS / "namenode-datanodes.png")
        rm = _browser("http://localhost:8088/cluster/nodes",
                      screenshot=ARTIFACTS / "resourcemanager-nodes.png")
        (ARTIFACTS / "namenode-datanodes.html").write_text(nn)
        (ARTIFACTS / "resourcemanager-nodes.html").write_text(rm)
    finally:
        tunnel.kill()
        tunnel.communicate(timeout=30)
    assert "In operation" in nn, nn[:2000]
    for worker in yc.workers:
        assert re.search(rf"{worker}:9866", nn), f"{worker} not in the DataNodes page"
        assert re.search(rf"{worker}:8042", rm), f"{worker} not in the NodeManagers page"
    assert "RUNNING" in rm
    # from outside (this machine: only SSH is allowed to it), the unsafe APIs do not answer
    server = yc.cloud.compute.get_server(
        next(s.id for s in yc.cloud.compute.servers() if s.name == f"{yc.cluster}-master"))
    for address in filter(None, (_fixed_ip(server), _floating_ip(server))):
        put = subprocess.run(
            ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
             f"http://{address}:9870/webhdfs/v1/tmp/anon.txt?op=CREATE&user.name=hduser"],
            capture_output=True, text=True, timeout=30)
        assert put.returncode != 0 and put.stdout in ("", "000"), (address, put)
        post = subprocess.run(
            ["curl", "-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
             f"http://{address}:8088/ws/v1/cluster/apps/new-application"],
            capture_output=True, text=True, timeout=30)
        assert post.returncode != 0 and post.stdout in ("", "000"), (address, post)
    assert "anon.txt" not in yc.hd("hdfs dfs -ls /tmp 2>&1 || true", what="ls /tmp")


# ============================================================================ 8. configure
def test_configure_cluster_yarn_site_restarts_only_yarn(yc):
    master = f"{yc.cluster}-master"
    before = {d: yc.daemon_pid(master, tool, d) for tool, d in
              (("hdfs", "namenode"), ("yarn", "resourcemanager"))}
    assert all(before.values()), before
    proc = yc.run("configure-cluster", "--hadoop-conf",
                  "yarn-site:yarn.nodemanager.delete.debug-delay-sec=120", timeout=900)
    out = proc.stdout + proc.stderr
    assert "yarn" in out.lower(), said(proc)
    after = {d: yc.daemon_pid(master, tool, d) for tool, d in
             (("hdfs", "namenode"), ("yarn", "resourcemanager"))}
    assert after["namenode"] == before["namenode"], (before, after)
    assert after["resourcemanager"] and after["resourcemanager"] != before["resourcemanager"]
    # the running NodeManagers read the new value
    for worker in yc.workers:
        value = yc.hd(f"curl -s 'http://{worker}:8042/conf' | "
                      "grep -o 'yarn.nodemanager.delete.debug-delay-sec</name><value>[0-9]*'",
                      what="NodeManager /conf")
        assert value.strip().endswith(">120"), value
    assert yc.status()["services"]["yarn"]["ok"]


# ============================================================================ 9. fab
def test_fab_yarn_flow_on_the_master(yc):
    ok(ssh(yc.host, yc.key, "fab stop_yarn", timeout=300), "fab stop_yarn")
    assert not ssh(yc.host, yc.key, "pgrep -f -- '-Dproc_[r]esourcemanager'").stdout.strip()
    down = ssh(yc.host, yc.key, "fab status", timeout=300)
    assert "yarn:" in down.stdout and "[FAILED]" in down.stdout or down.returncode != 0, down
    started = ok(ssh(yc.host, yc.key, "fab start_yarn", timeout=600), "fab start_yarn")
    assert "yarn: 2/2 NodeManagers running" in started, started
    status = ok(ssh(yc.host, yc.key, "fab status", timeout=300), "fab status")
    assert "yarn: 2/2 NodeManagers running" in status and "hdfs: 2/2" in status, status


# ============================================================================ 10-11. scale
def _blobs(yc) -> dict[str, str]:
    out = yc.hd("for f in $(hdfs dfs -ls -C /user/hduser/keep); do "
                "echo \"$f $(hdfs dfs -cat $f | sha256sum | cut -d' ' -f1)\"; done",
                what="sha256 of the kept files")
    return dict(line.split() for line in out.splitlines() if line.strip())


def test_add_workers_brings_a_nodemanager_that_takes_containers(yc, apps):
    files = {f"/user/hduser/keep/blob{i}.bin": secrets.token_bytes(2 * 1024 * 1024)
             for i in range(3)}
    yc.hd("hdfs dfs -mkdir -p /user/hduser/keep", what="mkdir keep")
    for path, blob in files.items():
        ok(ssh(yc.host, yc.key, as_hduser(f"hdfs dfs -put -f - {path}"), stdin=blob), "put")
    yc.files = {p: hashlib.sha256(b).hexdigest() for p, b in files.items()}
    proc = yc.run("add-workers", "-n", "1", timeout=1500)
    assert f"{yc.cluster}-worker-3" in proc.stdout + proc.stderr, said(proc)
    yarn = yc.status()["services"]["yarn"]
    assert yarn["ok"] and yarn["actual"] == 3, yarn
    ran = yc.run("submit", "--conf", "spark.dynamicAllocation.enabled=false",
                 "--conf", "spark.executor.instances=3", str(apps / "hosts.py"), "24",
                 timeout=600)
    hosts = re.search(r"^HOSTS (.*)$", ran.stdout, re.M)
    assert hosts and f"{yc.cluster}-worker-3" in hosts[1].split(","), said(ran)


def test_remove_workers_decommissions_gracefully_while_an_application_runs(yc, apps):
    victim = f"{yc.cluster}-worker-3"
    job_id = yc.run("submit", "--detach", "--conf", "spark.dynamicAllocation.enabled=false",
                    "--conf", "spark.executor.instances=3", str(apps / "slow.py"),
                    "60").stdout.strip()
    _until("the slow app's first tick on all three workers",
           lambda: re.search(rf"^tick \d+ .*{victim}", yc.run("logs", job_id).stdout, re.M),
           timeout=300)
    proc = yc.run("remove-workers", "--node", victim, "--yes", "--json", timeout=1800)
    result = json.loads(proc.stdout)
    assert victim in json.dumps(result), result
    jobs = {j["id"]: j for j in json.loads(yc.run("jobs", "--json").stdout)}
    job = jobs[job_id]
    if job["state"] == "running":
        job = _until("the app to finish", lambda: next(
            (j for j in json.loads(yc.run("jobs", "--json").stdout)
             if j["id"] == job_id and j["state"] != "running"), None), timeout=300)
    assert job["state"] == "finished" and job["exit_code"] == 0, job
    assert "SLOW-DONE" in yc.run("logs", job_id).stdout
    states = yc.node_states()
    assert states.get(victim) in (None, "DECOMMISSIONED", "SHUTDOWN"), states
    assert victim not in {n for n, s in states.items() if s == "RUNNING"}
    assert victim not in {s.name for s in yc.cloud.compute.servers()}
    fsck = yc.hd("hdfs fsck /user/hduser/keep 2>/dev/null", what="fsck")
    assert "is HEALTHY" in fsck and re.search(r"Missing blocks:\s+0", fsck), fsck
    assert _blobs(yc) == yc.files
    yarn = yc.status()["services"]["yarn"]
    assert yarn["ok"] and yarn["actual"] == 2, yarn


# ============================================================================ 12. power
def test_stop_start_keep_hdfs_data_and_bring_yarn_back(yc, apps):
    yc.run("stop", timeout=900)
    assert {s.status for s in yc.cloud.compute.servers()
            if s.name.startswith(f"{yc.cluster}-")} == {"SHUTOFF"}
    yc.run("start", timeout=1200)
    report = yc.status()
    assert report["healthy"] and report["services"]["yarn"]["actual"] == 2, report
    assert _blobs(yc) == yc.files
    ran = yc.run("submit", str(apps / "hosts.py"), "8", timeout=600)
    assert "SUM 499500" in ran.stdout, said(ran)


# ============================================================================ 13. the end
def test_destroy_leaves_nothing(yc):
    cli(yc.env, "destroy", "-c", yc.cluster, "--yes", timeout=600)
    yc.destroyed = True
    assert not any(leftovers(yc.cloud, yc.cluster).values())


def test_run_on_yarn_brings_the_output_home_and_leaves_nothing(e2e_env, cloud, keypair,
                                                               image, apps, tmp_path):
    kp_name, key = keypair
    cluster = f"yr{uuid.uuid4().hex[:6]}"
    output = tmp_path / "results"
    proc = cli(e2e_env, "run", "-c", cluster, "-s", "2", "-k", kp_name, "-i", image,
               "--identity-file", key, "--flavor", YARN_FLAVOR, "--allowed-cidr", ALLOWED,
               "--no-floating-ip", "--output", str(output), str(apps / "hosts.py"), "16",
               check=False, timeout=1800)
    left = leftovers(cloud, cluster)          # checked before any cleanup
    if any(left.values()):
        cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)
    assert not any(left.values()), f"left in the cloud: {left}\n{said(proc)}"
    assert proc.returncode == 0, said(proc)
    assert "MASTER yarn" in proc.stdout, said(proc)
    hosts = re.search(r"^HOSTS (.*)$", proc.stdout, re.M)
    assert hosts and hosts[1].split(",") == [f"{cluster}-worker-1", f"{cluster}-worker-2"], \
        said(proc)
    assert "MASTER yarn" in (output / "driver.log").read_text()
