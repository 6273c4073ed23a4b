"""Jobs and the one-shot ``run`` end to end (issue 11, parts 1 and 2) on the sandbox,
through the CLI as a user runs it, with real Spark (standalone) on real servers.

ONE cluster for the submit/jobs/logs/kill tests (``-s 1 --no-floating-ip``, the image
baked by ``create-image --hadoop-version``); the tests run in file order:

1. ``submit`` attached prints the app's result and exits 0; its ``--conf`` reaches the app
   (``spark.conf.get``), a ``--py-files`` module imports on the driver and the executors,
   a ``--files`` file is readable (``SparkFiles.get``), ``$SPARK_OPENSTACK_OUTPUT_DIR`` is
   writable;
2. a failing app (``sys.exit(3)``) exits 3 and what it printed to stderr is shown;
3. ``--detach`` returns a job id at once; ``jobs --json`` later shows it finished with
   exit 0 and ``logs`` shows its output;
4. SIGINT to an attached submit without a terminal: exit 130, the hints printed, the job
   still running; ``kill`` then stops it (state killed, no process of it left on the
   master), and a second ``kill`` says it already ended;
5. the cluster is destroyed (nothing left), then ``run`` launches clusters of its own:
   success -> the output folder and driver.log arrive in --output and nothing is left in
   the cloud; a failing app -> its exit code, nothing left; SIGINT during the job ->
   exit 130, nothing left. Leftovers are checked BEFORE any other cleanup.
"""
from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import textwrap
import time
import uuid

import pytest

from support.e2e import ALLOWED, CLI, FLAVOR, baked_image, cli
from support.e2e import fixed_ip as _fixed_ip
from support.e2e import leftovers as _leftovers
from support.e2e import said as _said
from support.e2e import ssh as _ssh

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

APPS = {
    "main.py": """\
        import os, sys
        from pyspark import SparkFiles
        from pyspark.sql import SparkSession
        import helper                                   # from --py-files
        spark = SparkSession.builder.appName("e2e-main").getOrCreate()
        sc = spark.sparkContext
        total = sc.parallelize(range(100), 4).map(helper.square).sum()   # on executors
        with open(SparkFiles.get("lookup.txt")) as f:  # from --files
            looked_up = f.read().strip()
        greeting = spark.conf.get("spark.myapp.greeting", "unset")
        print(f"RESULT total={total} greeting={greeting} lookup={looked_up} "
              f"args={sys.argv[1:]!r}", flush=True)
        with open(os.path.join(os.environ["SPARK_OPENSTACK_OUTPUT_DIR"], "total.txt"),
                  "w") as out:
            out.write(f"{total}\\n")
        spark.stop()
        """,
    "helper.py": """\
        def square(x):
            return x * x
        """,
    "lookup.txt": "looked-up-value\n",
    "fail.py": """\
        import sys
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.appName("e2e-fail").getOrCreate()
        print("the app is failing on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
        """,
    "quick.py": """\
        print("DETACHED-OK", flush=True)
        """,
    "slow.py": """\
        import sys, time
        from pyspark.sql import SparkSession
        spark = SparkSession.builder.appName("e2e-slow").getOrCreate()
        for i in range(int(sys.argv[1])):
            print(f"tick {i}", flush=True)
            time.sleep(1)
        """,
}
TOTAL = sum(x * x for x in range(100))


# ============================================================================ helpers
def _jobs(env, cluster, key) -> dict:
    proc = cli(env, "jobs", "-c", cluster, "--identity-file", key, "--json", timeout=120)
    return {j["id"]: j for j in json.loads(proc.stdout)}


def _wait_state(env, cluster, key, job_id, states, timeout=300) -> dict:
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        job = _jobs(env, cluster, key).get(job_id)
        if job and job["state"] in states:
            return job
        time.sleep(3)
    pytest.fail(f"job {job_id} not {states} after {timeout}s: {job}")


class Background:
    """A CLI run whose stdout is read line by line until a marker shows, then signalled."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen([CLI, *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.seen: list[str] = []

    def wait_for(self, pattern: str) -> bool:
        for line in self.proc.stdout:         # ends at EOF: the command ended
            self.seen.append(line)
            if re.search(pattern, line):
                return True
        return False

    def finish(self, sig=signal.SIGINT, timeout: float = 300) -> tuple[int, str, float]:
        self.proc.send_signal(sig)
        t0 = time.monotonic()
        out, err = self.proc.communicate(timeout=timeout)
        return (self.proc.returncode, f"stdout:\n{''.join(self.seen)}{out}\nstderr:\n{err}",
                time.monotonic() - t0)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


# ============================================================================ fixtures
@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    folder = tmp_path_factory.mktemp("apps")
    for name, text in APPS.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


@pytest.fixture(scope="module")
def image(e2e_env, cloud, keypair):
    with baked_image(e2e_env, cloud, keypair, prefix="jobs-hadoop") as name:
        yield name


class Jb:
    """The module's one cluster."""

    def __init__(self, env, cloud, cluster, key):
        self.env, self.cloud, self.cluster, self.key = env, cloud, cluster, key
        self.host = ""
        self.destroyed = False

    def cli(self, command, *args, check=True, timeout=900):
        return cli(self.env, command, "-c", self.cluster, "--identity-file", self.key,
                   *args, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def jb(e2e_env, cloud, keypair, image):
    kp_name, key = keypair
    cluster = f"jb{uuid.uuid4().hex[:6]}"
    state = Jb(e2e_env, cloud, cluster, key)
    try:
        cli(e2e_env, "launch", "-c", cluster, "-s", "1", "-k", kp_name, "-i", image,
            "--identity-file", key, "--flavor", FLAVOR, "--allowed-cidr", ALLOWED,
            "--no-floating-ip", "--services", "hdfs,spark")
        master = next(s for s in cloud.compute.servers(details=True)
                      if s.name == f"{cluster}-master")
        state.host = _fixed_ip(master)
        yield state
    finally:
        if not state.destroyed:
            cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)


def _run_args(keypair, image, cluster, output, *rest):
    kp_name, key = keypair
    return ["run", "-c", cluster, "-s", "1", "-k", kp_name, "-i", image,
            "--identity-file", key, "--flavor", FLAVOR, "--allowed-cidr", ALLOWED,
            "--no-floating-ip", "--services", "spark", "--output", str(output), *rest]


# ============================================================================ submit
def test_submit_attached_prints_the_result_and_exits_0(jb, apps):
    proc = jb.cli("submit", "--conf", "spark.myapp.greeting=hello from conf",
                  "--py-files", str(apps / "helper.py"), "--files", str(apps / "lookup.txt"),
                  str(apps / "main.py"), "first arg", "it's", check=False)
    assert proc.returncode == 0, _said(proc)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), "")
    assert f"total={TOTAL}" in line, _said(proc)                 # executors ran helper
    assert "greeting=hello from conf" in line, _said(proc)       # --conf reached the app
    assert "lookup=looked-up-value" in line, _said(proc)         # --files readable
    assert "args=['first arg', \"it's\"]" in line, _said(proc)   # args survive quoting
    assert re.search(r"job \S+ finished \(exit 0\)", proc.stderr), _said(proc)


def test_a_failing_app_exits_with_its_code(jb, apps):
    proc = jb.cli("submit", str(apps / "fail.py"), check=False)
    assert proc.returncode == 3, _said(proc)
    assert "the app is failing on purpose" in proc.stdout, _said(proc)
    assert re.search(r"job \S+ failed \(exit 3\)", proc.stderr), _said(proc)


def test_detach_returns_a_job_id_and_jobs_logs_see_it(jb, apps):
    t0 = time.monotonic()
    proc = jb.cli("submit", "--detach", str(apps / "quick.py"))
    took = time.monotonic() - t0
    job_id = proc.stdout.strip()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", job_id), _said(proc)
    assert took < 30, f"--detach took {took:.0f}s: {_said(proc)}"
    assert "DETACHED-OK" not in proc.stdout
    job = _wait_state(jb.env, jb.cluster, jb.key, job_id, {"finished", "failed"})
    assert job["state"] == "finished" and job["exit_code"] == 0, job
    assert job["app"].endswith("quick.py") and job["duration_s"] is not None, job
    logs = jb.cli("logs", job_id)
    assert "DETACHED-OK" in logs.stdout, _said(logs)
    # the same jobs from the master's own tasks (the same library, run there as hduser)
    listed = _ssh(jb.host, jb.key, "fab jobs", timeout=120)
    assert listed.returncode == 0 and re.search(
        rf"^{job_id}  finished exit 0 \d+s  quick\.py$", listed.stdout, re.M), \
        f"fab jobs:\n{listed.stdout}{listed.stderr}"
    log = _ssh(jb.host, jb.key, f"fab job_log --job {job_id}", timeout=120)
    assert "DETACHED-OK" in log.stdout, f"fab job_log:\n{log.stdout}{log.stderr}"


def test_sigint_leaves_the_job_running_and_kill_stops_it(jb, apps):
    run = Background(jb.env, "submit", "-c", jb.cluster, "--identity-file", jb.key,
                     str(apps / "slow.py"), "900")
    try:
        assert run.wait_for(r"^tick 1$"), f"no tick:\n{''.join(run.seen)}"
        code, said, took = run.finish()
    finally:
        run.kill()
    assert code == 130, said
    job_id = re.search(r"kill -c \S+ (\d{8}-\d{6}-[0-9a-f]{4})", said)
    assert job_id, f"no kill hint:\n{said}"
    job_id = job_id[1]
    assert f"logs -c {jb.cluster} {job_id}" in said, said
    time.sleep(3)
    assert _jobs(jb.env, jb.cluster, jb.key)[job_id]["state"] == "running"
    ticks = jb.cli("logs", job_id).stdout
    assert "tick 3" in ticks, ticks[-2000:]          # it ran on after the client left

    killed = jb.cli("kill", job_id, timeout=120)
    assert f"killed job {job_id}" in killed.stdout, _said(killed)
    job = _jobs(jb.env, jb.cluster, jb.key)[job_id]
    assert job["state"] == "killed", job
    # every process of a job (runner, spark-submit's JVM, the Python driver) works in
    # the job's directory: none may be left there
    jobdir = f"/var/lib/spark-openstack/jobs/{job_id}"
    scan = ("for p in /proc/[0-9]*; do [ \"$(readlink $p/cwd 2>/dev/null)\" = "
            f"{jobdir} ] && echo \"${{p#/proc/}} $(tr '\\0' ' ' < $p/cmdline)\"; done; true")
    left = _ssh(jb.host, jb.key, f"sudo -n bash -c {shlex.quote(scan)}", timeout=60)
    assert left.returncode == 0 and left.stdout.strip() == "", \
        f"processes of the job left:\n{left.stdout}{left.stderr}"
    again = jb.cli("kill", job_id)
    assert "already ended (killed)" in again.stdout, _said(again)


def test_destroy_the_jobs_cluster(jb):
    cli(jb.env, "destroy", "-c", jb.cluster, "--yes", timeout=600)
    jb.destroyed = True
    assert not any(_leftovers(jb.cloud, jb.cluster).values())


# ============================================================================ run
def _assert_nothing_left(e2e_env, cloud, cluster: str, *, said: str) -> None:
    """Nothing of ``cluster`` in the cloud, checked BEFORE any cleanup (which then runs
    only when something was left, so a failing test leaves nothing behind either)."""
    left = _leftovers(cloud, cluster)
    if any(left.values()):
        cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)
    assert not any(left.values()), f"left in the cloud: {left}\n{said}"


def test_run_brings_the_output_home_and_leaves_nothing(e2e_env, cloud, keypair, image,
                                                       apps, tmp_path):
    cluster = f"run{uuid.uuid4().hex[:6]}"
    output = tmp_path / "results"
    proc = cli(e2e_env, *_run_args(keypair, image, cluster, output,
                                   "--conf", "spark.myapp.greeting=one-shot",
                                   "--py-files", str(apps / "helper.py"),
                                   "--files", str(apps / "lookup.txt"),
                                   str(apps / "main.py"), "x"),
               check=False, timeout=1500)
    _assert_nothing_left(e2e_env, cloud, cluster, said=_said(proc))
    assert proc.returncode == 0, _said(proc)
    assert f"total={TOTAL} greeting=one-shot" in proc.stdout, _said(proc)
    assert (output / "total.txt").read_text() == f"{TOTAL}\n"
    assert "RESULT total=" in (output / "driver.log").read_text()


def test_run_of_a_failing_app_exits_non_zero_and_leaves_nothing(e2e_env, cloud, keypair,
                                                                 image, apps, tmp_path):
    cluster = f"run{uuid.uuid4().hex[:6]}"
    output = tmp_path / "results"
    proc = cli(e2e_env, *_run_args(keypair, image, cluster, output, str(apps / "fail.py")),
               check=False, timeout=1500)
    _assert_nothing_left(e2e_env, cloud, cluster, said=_said(proc))
    assert proc.returncode == 3, _said(proc)
    assert "the app is failing on purpose" in (output / "driver.log").read_text()


def test_run_interrupted_exits_130_and_leaves_nothing(e2e_env, cloud, keypair, image, apps,
                                                      tmp_path):
    cluster = f"run{uuid.uuid4().hex[:6]}"
    run = Background(e2e_env, *_run_args(keypair, image, cluster, tmp_path / "results",
                                         str(apps / "slow.py"), "900"))
    try:
        assert run.wait_for(r"^tick 1$"), f"no tick:\n{''.join(run.seen)}"
        code, said, took = run.finish(timeout=600)
    finally:
        run.kill()
    _assert_nothing_left(e2e_env, cloud, cluster, said=said)
    assert code == 130, said
    assert f"cluster '{cluster}' destroyed" in said, said
    assert took < 120, f"{took:.0f}s from SIGINT to exit:\n{said}"
