"""Day-2 operations end to end (issue 10) on the sandbox, as the non-admin user, through the
CLI, on real HDFS (Apache Hadoop 3's jars baked by create-image) and real Spark, with
--services hdfs,spark (YARN's decommission and add-workers are test_yarn_e2e's).

ONE cluster for the module (launch -s 2 on m1.small costs minutes on a 2-core machine); the
tests run in file order and each leaves the cluster as the next expects:

1. files written to HDFS (random bytes, 1 MiB blocks, replication 2), sha256 recorded;
   ``status --json`` healthy with 2 workers;
2. bad input refused before any change (unknown cluster / node, -n 0, the master, every
   worker, a shrink below the files' replication, no --yes without a terminal): exit
   non-zero, the cloud's servers and the NameNode's exclude list unchanged;
3. ``run-command`` reaches every node; a command failing on one node exits non-zero
   naming it (and only it);
4. ``copy-file`` of a file and of a directory reaches every node (sha256sum through
   run-command);
5. SIGINT to ``add-workers`` while its server boots: exit 130, the new server gone,
   status healthy with the old workers;
6. ``add-workers -n 1``: status shows 3 DataNodes and 3 Spark workers;
7. SIGINT to ``remove-workers`` during the decommission: exit 130, the worker still there
   and in service ("Normal" in ``dfsadmin -report``), status healthy;
8. ``remove-workers --node`` a worker holding blocks: its blocks moved, every file reads
   back byte-identical (``hdfs dfs -cat``), ``fsck /`` HEALTHY with 0 missing/corrupt
   blocks, the server gone, status healthy with the rest;
9. ``stop`` (servers SHUTOFF, status not healthy) then ``start`` (healthy, files intact);
10. ``destroy`` leaves nothing (checked before any other cleanup).

The cloud, the CLI and SSH helpers are shared with test_e2e.py (tests/support/e2e.py,
conftest.py); ``pytest -x`` is the intended way to run it.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import shlex
import signal
import subprocess
import tarfile
import time
import uuid

import pytest

from support.e2e import ALLOWED, CLI, FLAVOR, baked_image, cli
from support.e2e import fixed_ip as _fixed_ip
from support.e2e import as_hduser as _as_hduser
from support.e2e import leftovers as _leftovers
from support.e2e import ok as _ok
from support.e2e import said as _said
from support.e2e import ssh as _ssh

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

HDFS_DIR = "/user/hduser/day2"
BLOCK = 1024 * 1024          # 1 MiB blocks (HDFS's minimum): many blocks from a few MiB


# ============================================================================ helpers
def _servers(cloud, cluster: str) -> dict:
    """{name: server} of the cluster's servers, as the cloud lists them now."""
    return {s.name: s for s in cloud.compute.servers(details=True)
            if s.name.startswith(f"{cluster}-")}


def _snapshot(cloud, cluster: str) -> dict:
    """What "the cloud unchanged" compares: each server's id and state."""
    return {name: (s.id, s.status) for name, s in _servers(cloud, cluster).items()}


def _json_out(proc, what: str):
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"{what}: stdout is not JSON: {_said(proc)}")


def _status(env, cluster: str, key: str, *, healthy: bool | None = True):
    """``status --json`` parsed; with ``healthy`` its exit code is checked against it."""
    proc = cli(env, "status", "-c", cluster, "--identity-file", key, "--json",
               check=False, timeout=600)
    report = _json_out(proc, "status --json")
    if healthy is not None:
        assert (proc.returncode == 0) == healthy and report.get("healthy") is healthy, \
            f"status expected {'healthy' if healthy else 'NOT healthy'}: {_said(proc)}"
    return report


def _assert_healthy_with(report: dict, cluster: str, workers: list[str]) -> None:
    """Every server ACTIVE, exactly the master and ``workers``, every service complete."""
    text = json.dumps(report, indent=1)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert set(nodes) == {f"{cluster}-master", *workers}, text
    assert nodes[f"{cluster}-master"]["role"] == "master", text
    assert all(nodes[w]["role"] == "worker" for w in workers), text
    assert all(n["status"] == "ACTIVE" for n in nodes.values()), text
    services = report["services"]
    assert "hdfs" in services and "spark" in services, text
    for name, svc in services.items():
        assert svc["ok"] and svc["expected"] == len(workers) and \
            svc["actual"] == len(workers) and svc["missing"] == [], f"{name}: {text}"
    assert report["healthy"] is True, text


def _datanodes(host, key) -> dict:
    """{DataNode host name: its "Decommission Status"} from ``hdfs dfsadmin -report``
    (every node the NameNode knows; dead ones under their own heading)."""
    out = _ok(_ssh(host, key, _as_hduser("hdfs dfsadmin -report")), "dfsadmin -report")
    found = {}
    for chunk in re.split(r"\n(?=Name: )", out):
        name = re.search(r"^Hostname: (\S+)$", chunk, re.M)
        state = re.search(r"^Decommission Status : (.+)$", chunk, re.M)
        if name and state:
            found[name[1]] = state[1].strip()
    return found


def _live_datanodes(host, key) -> set[str]:
    out = _ok(_ssh(host, key, _as_hduser("hdfs dfsadmin -report -live")), "report -live")
    return set(re.findall(r"^Hostname: (\S+)$", out, re.M))


def _exclude_list(host, key) -> str:
    """The host names in the NameNode's dfs.hosts.exclude (its comments left out)."""
    path = _ok(_ssh(host, key, _as_hduser("hdfs getconf -confKey dfs.hosts.exclude")),
               "getconf dfs.hosts.exclude").strip().splitlines()[-1]
    text = _ok(_ssh(host, key, f"sudo -n cat {shlex.quote(path)}"), "cat dfs.exclude")
    return "\n".join(line.strip() for line in text.splitlines()
                     if line.strip() and not line.lstrip().startswith("#"))


def _read_back(host, key, files: dict) -> dict:
    """sha256 of every file read back with ``hdfs dfs -cat``: each big file on its own,
    the small files as one concatenation in name order (one JVM per read)."""
    big = sorted(n for n in files if not n.startswith("small/"))
    script = "; ".join(
        f"printf '%s ' {shlex.quote(n)}; hdfs dfs -cat {HDFS_DIR}/{n} | sha256sum" for n in big)
    script += f"; printf 'small/* '; hdfs dfs -cat '{HDFS_DIR}/small/*' | sha256sum"
    out = _ok(_ssh(host, key, _as_hduser(f"set -o pipefail; {script}"), timeout=900),
              "hdfs dfs -cat")
    return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}


def _expected_digests(files: dict) -> dict:
    digests = {n: hashlib.sha256(b).hexdigest() for n, b in files.items()
               if not n.startswith("small/")}
    small = hashlib.sha256()
    for name in sorted(n for n in files if n.startswith("small/")):
        small.update(files[name])
    digests["small/*"] = small.hexdigest()
    return digests


def _assert_files_intact(day2, when: str) -> None:
    got = _read_back(day2.host, day2.key, day2.files)
    assert got == day2.digests, f"{when}: HDFS files differ\nexpected {day2.digests}\ngot {got}"


def _fsck_healthy(host, key, when: str) -> str:
    out = _ssh(host, key, _as_hduser("hdfs fsck / 2>&1 | tail -n 40"), timeout=900).stdout
    assert "The filesystem under path '/' is HEALTHY" in out, f"{when}: fsck:\n{out}"
    # Hadoop 2.7 prints "MISSING BLOCKS: n" only when some are (3.x: "Missing blocks: n")
    missing = re.search(r"(?:MISSING BLOCKS|Missing blocks):\s*(\d+)", out)
    corrupt = re.search(r"Corrupt blocks:\s*(\d+)", out)
    assert not missing or int(missing[1]) == 0, f"{when}: fsck:\n{out}"
    assert corrupt and int(corrupt[1]) == 0, f"{when}: fsck:\n{out}"
    total = re.search(r"Total blocks \(validated\):\s*(\d+)", out)
    minimal = re.search(r"Minimally replicated blocks:\s*(\d+)", out)
    assert total and minimal and total[1] == minimal[1], \
        f"{when}: not every block has a live replica: fsck:\n{out}"
    return out


class Interrupted:
    """A CLI run in the background whose stderr is read line by line until a marker
    shows, then signalled; ``finish`` returns (exit code, everything it said)."""

    def __init__(self, env, *args):
        self.args = args
        self.proc = subprocess.Popen([CLI, *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.seen: list[str] = []

    def wait_for(self, pattern: str, timeout: float = 900) -> re.Match | None:
        deadline = time.monotonic() + timeout
        for line in self.proc.stderr:
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
            if time.monotonic() > deadline:
                break
        return None

    def finish(self, sig=signal.SIGINT, timeout: float = 300) -> tuple[int, str, float]:
        self.proc.send_signal(sig)
        signalled = time.monotonic()
        rest = self.proc.stderr.read()
        code = self.proc.wait(timeout=timeout)
        out = self.proc.stdout.read()
        return code, f"stdout:\n{out}\nstderr:\n{''.join(self.seen)}{rest}", \
            time.monotonic() - signalled

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ============================================================================ fixtures
@pytest.fixture(scope="module")
def hadoop_image(e2e_env, cloud, keypair):
    with baked_image(e2e_env, cloud, keypair, prefix="day2-hadoop") as name:
        assert "hdfs" in (cloud.image.find_image(name).properties or {}).get(
            "hadoop_services", "").split(",")
        yield name


class Day2:
    """The module's one cluster and what the tests learn about it as they go."""

    def __init__(self, env, cloud, cluster, key):
        self.env, self.cloud, self.cluster, self.key = env, cloud, cluster, key
        self.host = ""
        self.files: dict[str, bytes] = {}
        self.digests: dict[str, str] = {}
        self.workers = [f"{cluster}-worker-1", f"{cluster}-worker-2"]
        self.destroyed = False

    def run(self, *args, check=True, timeout=1800):
        """A CLI command on this cluster (``-c`` and ``--identity-file`` added)."""
        command, rest = args[0], args[1:]
        extra = [] if command in ("destroy", "describe") else ["--identity-file", self.key]
        return cli(self.env, command, "-c", self.cluster, *extra, *rest, check=check,
                   timeout=timeout)

    def status(self, healthy: bool | None = True) -> dict:
        return _status(self.env, self.cluster, self.key, healthy=healthy)

    def name(self, suffix: str) -> str:
        return f"{self.cluster}-{suffix}"


@pytest.fixture(scope="module")
def day2(e2e_env, cloud, keypair, hadoop_image):
    kp_name, key = keypair
    cluster = f"d2{uuid.uuid4().hex[:6]}"
    state = Day2(e2e_env, cloud, cluster, key)
    try:
        cli(e2e_env, "launch", "-c", cluster, "-s", "2", "-k", kp_name, "-i", hadoop_image,
            "--identity-file", key, "--flavor", FLAVOR, "--allowed-cidr", ALLOWED,
            "--no-floating-ip", "--services", "hdfs,spark")
        state.host = _fixed_ip(_servers(cloud, cluster)[f"{cluster}-master"])
        yield state
    finally:
        if not state.destroyed:       # safety net; test_destroy checks leftovers itself
            cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)


# ============================================================================ tests
def test_files_written_and_status_healthy(day2):
    files = {
        "big-1.bin": secrets.token_bytes(6 * BLOCK),
        "big-2.bin": secrets.token_bytes(5 * BLOCK + 12345),
        "big-3.bin": secrets.token_bytes(3 * BLOCK),
    }
    small = {f"small/f{i:02d}.bin": secrets.token_bytes(64 * 1024 + i) for i in range(20)}
    put = f"hdfs dfs -Ddfs.blocksize={BLOCK} -Ddfs.replication=2"
    _ok(_ssh(day2.host, day2.key, _as_hduser(f"hdfs dfs -mkdir -p {HDFS_DIR}")), "mkdir")
    for name, blob in files.items():
        _ok(_ssh(day2.host, day2.key, _as_hduser(f"{put} -put - {HDFS_DIR}/{name}"),
                 stdin=blob), f"put {name}")
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, blob in small.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    _ok(_ssh(day2.host, day2.key, _as_hduser(
        f"rm -rf ~/day2-small && mkdir ~/day2-small && tar -x -C ~/day2-small && "
        f"{put} -put ~/day2-small/small {HDFS_DIR}/ && rm -rf ~/day2-small"),
        stdin=archive.getvalue()), "put small files")
    files.update(small)
    day2.files, day2.digests = files, _expected_digests(files)
    _assert_files_intact(day2, "just written")
    stat = _ok(_ssh(day2.host, day2.key, _as_hduser(f"hdfs dfs -stat '%r %o' {HDFS_DIR}/big-1.bin")),
               "stat")
    assert stat.split() == ["2", str(BLOCK)], stat

    report = day2.status()
    _assert_healthy_with(report, day2.cluster, day2.workers)
    assert report["state"] == "ACTIVE"
    assert _live_datanodes(day2.host, day2.key) == set(day2.workers)


def test_bad_input_refused_before_any_change(day2):
    before = _snapshot(day2.cloud, day2.cluster)
    excluded = _exclude_list(day2.host, day2.key)
    ghost = f"nx{uuid.uuid4().hex[:6]}"
    w1, master = day2.name("worker-1"), day2.name("master")
    cases = [
        # (argv, a word the refusal must say)
        (["status", "-c", ghost], ghost),
        (["stop", "-c", ghost], ghost),
        (["start", "-c", ghost], ghost),
        (["add-workers", "-c", ghost, "-n", "1"], ghost),
        (["remove-workers", "-c", ghost, "-n", "1", "--yes"], ghost),
        (["run-command", "-c", ghost, "--", "true"], ghost),
        (["copy-file", "-c", ghost, __file__, "x.py"], ghost),
        (["add-workers", "-c", day2.cluster, "-n", "0"], "-n 0"),
        (["remove-workers", "-c", day2.cluster, "-n", "0", "--yes"], "-n 0"),
        (["remove-workers", "-c", day2.cluster, "--node", "nosuch", "--yes"], "nosuch"),
        (["remove-workers", "-c", day2.cluster, "--node", "9", "--yes"], "worker-9"),
        (["remove-workers", "-c", day2.cluster, "--node", master, "--yes"], "master"),
        (["remove-workers", "-c", day2.cluster, "-n", "2", "--yes"], "no worker"),
        (["remove-workers", "-c", day2.cluster, "--node", "1", "--node", "2", "--yes"],
         "no worker"),
        (["remove-workers", "-c", day2.cluster, "-n", "3", "--yes"], "only 2"),
        # 2 workers and files of replication 2: one worker left could never hold them
        (["remove-workers", "-c", day2.cluster, "-n", "1", "--yes"], "replica"),
        (["remove-workers", "-c", day2.cluster, "--node", w1], "--yes"),  # no terminal
        (["run-command", "-c", day2.cluster, "--node", "nosuch", "--", "true"], "nosuch"),
        (["copy-file", "-c", day2.cluster, "--node", "nosuch", __file__, "x.py"], "nosuch"),
    ]
    wrong = []
    for args, word in cases:
        proc = cli(day2.env, *args[:3], "--identity-file", day2.key, *args[3:], check=False,
                   timeout=900)
        said = proc.stdout + proc.stderr
        if proc.returncode == 0 or word.lower() not in said.lower() or \
                "internal error" in said or "Traceback" in said:
            wrong.append(f"$ spark-openstack {' '.join(args)}\n(expected non-zero and "
                         f"{word!r} in the output) {_said(proc)}")
    assert not wrong, "\n\n".join(wrong)
    assert _snapshot(day2.cloud, day2.cluster) == before
    assert _exclude_list(day2.host, day2.key) == excluded
    assert set(_datanodes(day2.host, day2.key).values()) == {"Normal"}
    _assert_healthy_with(day2.status(), day2.cluster, day2.workers)
    # nothing was copied by the refused copy-file
    left = _ssh(day2.host, day2.key, "ls ~/x.py 2>/dev/null")
    assert left.stdout.strip() == "", left.stdout


def test_run_command_reaches_every_node_and_failures_are_named(day2):
    nodes = [day2.name("master"), *day2.workers]
    proc = day2.run("run-command", "--", "hostname")
    lines = proc.stdout.splitlines()
    for node in nodes:
        assert f"[{node}] {node}" in lines, _said(proc)

    # a long line comes back whole, on one line, prefixed
    long = "x" * 300
    proc = day2.run("run-command", "--", f"echo {long}")
    for node in nodes:
        assert f"[{node}] {long}" in proc.stdout.splitlines(), _said(proc)

    rows = _json_out(day2.run("run-command", "--json", "--", "cat /etc/hostname"),
                     "run-command --json")
    assert {r["node"]: r["stdout"].strip() for r in rows} == {n: n for n in nodes}
    assert all(r["exit"] == 0 for r in rows), rows

    bad = day2.workers[1]
    proc = day2.run("run-command", "--", f'test "$(hostname)" != {bad} || exit 3', check=False)
    assert proc.returncode != 0, _said(proc)
    assert bad in proc.stderr and re.search(rf"\[{re.escape(bad)}\] exited 3", proc.stderr), \
        _said(proc)
    for node in nodes:
        if node != bad:
            assert f"[{node}] exited" not in proc.stderr, _said(proc)

    proc = day2.run("run-command", "--node", "1", "--", "false", check=False)
    assert proc.returncode != 0 and day2.workers[0] in proc.stderr, _said(proc)

    proc = day2.run("run-command", "--master-only", "--", "hostname")
    assert proc.stdout.splitlines() == [f"[{nodes[0]}] {nodes[0]}"], _said(proc)


def test_copy_file_and_directory_reach_every_node(day2, tmp_path):
    nodes = {day2.name("master"), *day2.workers}
    blob = tmp_path / "blob.bin"
    blob.write_bytes(secrets.token_bytes(300 * 1024))
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    day2.run("copy-file", str(blob), "day2-blob.bin")
    rows = _json_out(day2.run("run-command", "--json", "--", "sha256sum day2-blob.bin"),
                     "run-command --json")
    assert {r["node"]: r["stdout"].split()[0] if r["stdout"] else r for r in rows} == \
        {n: digest for n in nodes}, rows

    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    contents = {"a.txt": b"alpha\n", "sub/b.bin": secrets.token_bytes(70_000),
                "sub/deeper/c.txt": b"gamma with spaces\n", "sub/deeper/empty": b""}
    for rel, data in contents.items():
        (tree / rel).write_bytes(data)
    (tree / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (tree / "run.sh").chmod(0o755)
    contents["run.sh"] = (tree / "run.sh").read_bytes()
    expected = "\n".join(f"{hashlib.sha256(data).hexdigest()}  ./{rel}"
                         for rel, data in sorted(contents.items()))
    day2.run("copy-file", str(tree), "day2-tree")
    rows = _json_out(day2.run(
        "run-command", "--json", "--",
        "cd day2-tree && find . -type f | LC_ALL=C sort | xargs sha256sum && ./run.sh"),
        "run-command --json")
    got = {r["node"]: r["stdout"].strip() for r in rows}
    assert set(got) == nodes, rows
    for node, text in got.items():
        assert text == expected + "\nran", f"{node}:\n{text}\nexpected:\n{expected}\nran"


def test_add_workers_interrupted_while_booting(day2):
    new = day2.name("worker-3")
    before = _snapshot(day2.cloud, day2.cluster)
    run = Interrupted(day2.env, "add-workers", "-c", day2.cluster, "-n", "1",
                      "--identity-file", day2.key)
    try:
        seen = run.wait_for(rf"\] {re.escape(new)}: (requested|build)")
        assert seen, f"no boot progress for {new}:\n{''.join(run.seen)}"
        assert new in _servers(day2.cloud, day2.cluster), "the server was not in the cloud"
        code, said, took = run.finish()
    finally:
        run.kill()
    assert code == 130, said
    assert "interrupted" in said, said
    assert took < 180, f"took {took:.0f}s to stop and clean up\n{said}"
    left = _snapshot(day2.cloud, day2.cluster)
    assert new not in left, f"{new} still in the cloud after exit 130: {left}\n{said}"
    assert left == before, said
    _assert_healthy_with(day2.status(), day2.cluster, day2.workers)
    assert _live_datanodes(day2.host, day2.key) == set(day2.workers)


def test_add_workers_interrupted_after_the_old_nodes_were_rewritten(day2):
    """SIGINT once the deploy has rewritten every node's files (they name the new worker):
    the new server is deleted AND the old nodes' files are put back."""
    new = day2.name("worker-3")
    before = _snapshot(day2.cloud, day2.cluster)
    run = Interrupted(day2.env, "add-workers", "-c", day2.cluster, "-n", "1",
                      "--identity-file", day2.key)
    try:
        seen = run.wait_for(r"\] deploy: configure nodes done")
        assert seen, f"no 'deploy: configure nodes done' line:\n{''.join(run.seen)}"
        named = _ssh(day2.host, day2.key, f"grep -c {new} /etc/hosts")
        code, said, took = run.finish()
    finally:
        run.kill()
    assert named.stdout.strip() not in ("", "0"), \
        f"the master's /etc/hosts did not name {new} yet when signalled\n{said}"
    assert code == 130, said
    assert took < 180, f"took {took:.0f}s to stop and clean up\n{said}"
    left = _snapshot(day2.cloud, day2.cluster)
    assert new not in left and left == before, f"{left}\n{said}"
    rows = _json_out(day2.run(
        "run-command", "--json", "--",
        f"grep -l {new} /etc/hosts /opt/hadoop/etc/hadoop/* /opt/spark/conf/* "
        "2>/dev/null; true"), "run-command --json")
    still = {r["node"]: r["stdout"].split() for r in rows if r["stdout"].strip()}
    assert not still, f"files still naming {new} after the interrupted add: {still}\n{said}"
    _assert_healthy_with(day2.status(), day2.cluster, day2.workers)
    _assert_files_intact(day2, "after the interrupted add-workers")


def test_add_workers_grows_the_counts(day2):
    new = day2.name("worker-3")
    proc = day2.run("add-workers", "-n", "1", "--json")
    result = _json_out(proc, "add-workers --json")
    assert result["added"] == [new], _said(proc)
    assert result["workers"] == [*day2.workers, new], _said(proc)
    assert result["healthy"] is True, _said(proc)
    day2.workers = [*day2.workers, new]
    report = day2.status()
    _assert_healthy_with(report, day2.cluster, day2.workers)
    assert report["services"]["hdfs"]["actual"] == 3 and report["services"]["spark"]["actual"] == 3
    assert _live_datanodes(day2.host, day2.key) == set(day2.workers)
    rows = _json_out(day2.run("run-command", "--json", "--node", new, "--", "hostname"),
                     "run-command --json")
    assert [r["stdout"].strip() for r in rows] == [new]


def _holds_blocks(day2, node: str) -> int:
    """How many of the test's blocks have a replica on ``node`` (fsck -locations)."""
    ip = _fixed_ip(_servers(day2.cloud, day2.cluster)[node])
    out = _ok(_ssh(day2.host, day2.key, _as_hduser(
        f"hdfs fsck {HDFS_DIR} -files -blocks -locations 2>&1")), "fsck -locations")
    return len(re.findall(rf"\[{re.escape(ip)}:\d+", out))


def test_remove_workers_interrupted_during_decommission(day2):
    victim = day2.workers[0]
    assert _holds_blocks(day2, victim) > 0
    before = _snapshot(day2.cloud, day2.cluster)
    run = Interrupted(day2.env, "remove-workers", "-c", day2.cluster, "--node", victim,
                      "--yes", "--identity-file", day2.key)
    try:
        seen = run.wait_for(rf"\] {re.escape(victim)}: HDFS: decommission in progress, "
                            r"([1-9]\d*) block")
        assert seen, f"no decommission progress for {victim}:\n{''.join(run.seen)}"
        code, said, took = run.finish()
    finally:
        run.kill()
    assert code == 130, said
    assert "reverted" in said, said
    assert took < 120, f"took {took:.0f}s to stop\n{said}"
    assert _snapshot(day2.cloud, day2.cluster) == before, said
    excluded = _exclude_list(day2.host, day2.key)
    victim_ip = _fixed_ip(_servers(day2.cloud, day2.cluster)[victim])
    assert victim not in excluded and not re.search(
        rf"^{re.escape(victim_ip)}\b", excluded, re.M), f"dfs.exclude:\n{excluded}\n{said}"
    states = _datanodes(day2.host, day2.key)
    assert states.get(victim) == "Normal", f"{states}\n{said}"
    assert set(states.values()) == {"Normal"}, states
    _assert_healthy_with(day2.status(), day2.cluster, day2.workers)
    _assert_files_intact(day2, "after the interrupted decommission")


def test_remove_workers_moves_the_data_first(day2):
    victim = day2.workers[0]
    held = _holds_blocks(day2, victim)
    assert held > 0
    proc = day2.run("remove-workers", "--node", victim, "--yes", "--json", timeout=1800)
    result = _json_out(proc, "remove-workers --json")
    rest = [w for w in day2.workers if w != victim]
    assert result["removed"] == [victim], _said(proc)
    assert result["workers"] == rest, _said(proc)
    assert result["blocks_moved"].get(victim, 0) > 0, _said(proc)
    assert result["timings"], _said(proc)
    day2.workers = rest
    # the server is gone from the cloud
    assert victim not in _servers(day2.cloud, day2.cluster)
    _assert_files_intact(day2, f"after removing {victim}")
    _fsck_healthy(day2.host, day2.key, f"after removing {victim}")
    _assert_healthy_with(day2.status(), day2.cluster, day2.workers)
    live = _live_datanodes(day2.host, day2.key)
    assert set(rest) <= live, live
    # The NameNode keeps a removed DataNode in its lists until its heartbeats expire
    # (~10 min); until then it must not be "Normal" (in service): new blocks would be
    # placed on a server that no longer exists.
    states = _datanodes(day2.host, day2.key)
    assert victim not in live or states.get(victim) != "Normal", (
        f"{victim} was removed but the NameNode still has it live and in service: "
        f"{states}\n{_said(proc)}")
    # and a new file is written at once, with every replica on the remaining workers
    t0 = time.monotonic()
    _ok(_ssh(day2.host, day2.key, _as_hduser(
        f"hdfs dfs -Ddfs.blocksize={BLOCK} -Ddfs.replication=2 -put - {HDFS_DIR}/after.bin"),
        stdin=secrets.token_bytes(4 * BLOCK)), "put after the removal")
    took = time.monotonic() - t0
    _ok(_ssh(day2.host, day2.key, _as_hduser(f"hdfs dfs -rm -skipTrash {HDFS_DIR}/after.bin")),
        "rm after.bin")
    assert took < 60, f"writing 4 MiB after the removal took {took:.0f}s (states {states})"


def test_stop_then_start_keeps_the_files(day2):
    day2.run("stop", timeout=900)
    servers = _servers(day2.cloud, day2.cluster)
    assert {n: s.status for n, s in servers.items()} == \
        {n: "SHUTOFF" for n in [day2.name("master"), *day2.workers]}
    report = day2.status(healthy=False)
    assert report["state"] == "SHUTOFF", report
    proc = day2.run("start", timeout=1200)
    servers = _servers(day2.cloud, day2.cluster)
    assert all(s.status == "ACTIVE" for s in servers.values()), _said(proc)
    day2.host = _fixed_ip(servers[day2.name("master")])
    _assert_healthy_with(day2.status(), day2.cluster, day2.workers)
    _assert_files_intact(day2, "after stop + start")
    _fsck_healthy(day2.host, day2.key, "after stop + start")


def test_destroy_leaves_nothing(day2):
    day2.run("destroy", "--yes", timeout=600)
    day2.destroyed = True
    left = _leftovers(day2.cloud, day2.cluster)      # before anything else cleans up
    assert not any(left.values()), f"left behind: {left}"
