"""run-command and copy-file: per-node results, refusals before anything runs, and the
copy's real round trip (tar here, one upload to the master, forwards from there, unpack).

Nodes are simulated as folders (their own home and /tmp) by ``FolderNodes``, a runner
whose commands run in a local bash; the master reaches the workers through a stand-in
``ssh`` that runs the command in the worker's folder, as hduser's ssh would. The same
paths also run over a real sshd on 127.0.0.1 (root only), workers through the master.
"""
from __future__ import annotations

import os
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from spark_openstack import cli, errors, remote
from spark_openstack.inventory import ClusterAccess, open_cluster
from spark_openstack.model import ClusterFacts, Node
from spark_openstack.transport import CommandResult
from support.cloud import FakeCloud

COPY_TMP = "/tmp/spark-openstack-copy-"

SSH_STANDIN = textwrap.dedent("""\
    #!/bin/bash
    # ssh stand-in: ssh [-o OPT]... USER@IP COMMAND runs COMMAND in that node's folder
    while [ "$1" = "-o" ]; do shift 2; done
    ip=${1#*@}; shift
    target=$(cat "$NODES/by-ip/$ip" 2>/dev/null) || {
        echo "ssh: connect to host $ip port 22: No route to host" >&2; exit 255; }
    cmd="$*"; cmd=${cmd//"$NODES/$NODE/tmp/"/"$NODES/$target/tmp/"}
    cd "$NODES/$target/home" && HOME=$PWD NODE=$target exec bash -c "$cmd"
""")


def _facts(workers: int = 2, **status) -> ClusterFacts:
    master = Node(name="demo-master", role="master", private_ip="10.0.0.10",
                  public_ip="203.0.113.5", status=status.get("demo-master", "ACTIVE"))
    nodes = tuple(Node(name=f"demo-worker-{i}", role="worker", private_ip=f"10.0.0.{20 + i}",
                       status=status.get(f"demo-worker-{i}", "ACTIVE"))
                  for i in range(1, workers + 1))
    return ClusterFacts(cluster_name="demo", master=master, workers=nodes, ssh_user="debian")


class FolderNodes:
    """Each node is a folder with its own home and tmp; commands run there in bash (the
    copy's /tmp paths become the node's tmp). ``down`` nodes cannot be reached."""

    def __init__(self, tmp_path: Path, facts: ClusterFacts):
        self.root = tmp_path / "nodes"
        self.facts = facts
        self.down: set[str] = set()
        self.calls: list[tuple[str, str, str]] = []
        self.closed = False
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "ssh").write_text(SSH_STANDIN)
        (bin_dir / "ssh").chmod(0o755)
        self.path = f"{bin_dir}:{os.environ['PATH']}"
        (self.root / "by-ip").mkdir(parents=True)
        for node in facts.nodes:
            for part in ("home", "tmp"):
                (self.root / node.name / part).mkdir(parents=True)
            (self.root / "by-ip" / node.private_ip).write_text(node.name)

    def home(self, name: str) -> Path:
        return self.root / name / "home"

    def tmp(self, name: str) -> Path:
        return self.root / name / "tmp"

    def _bash(self, node, command, *, as_user, timeout, check, stdin=None):
        self.calls.append((node.name, as_user, command))
        if node.name in self.down:
            raise errors.SSHError(f"ssh debian@{node.private_ip}: timed out connecting")
        command = command.replace(COPY_TMP, f"{self.tmp(node.name)}/spark-openstack-copy-")
        env = dict(os.environ, PATH=self.path, NODES=str(self.root), NODE=node.name,
                   HOME=str(self.home(node.name)))
        proc = subprocess.run(["bash", "-c", command], cwd=self.home(node.name), env=env,
                              input=bytes(stdin) if stdin is not None else None,
                              capture_output=True, timeout=timeout,
                              **({} if stdin is not None else {"stdin": subprocess.DEVNULL}))
        result = CommandResult(proc.stdout.decode(), proc.stderr.decode(), proc.returncode)
        if check and result.exited:
            raise errors.SSHError(f"{node.name}: `{command}` exited {result.exited}: "
                                  f"{result.stderr.strip()}")
        return result

    def run(self, node, command, *, timeout=None, check=True):
        return self._bash(node, command, as_user="hduser", timeout=timeout, check=check)

    def run_as_login_user(self, node, command, *, timeout=None, check=True, stdin=None):
        return self._bash(node, command, as_user="debian", timeout=timeout, check=check,
                          stdin=stdin)

    def close(self):
        self.closed = True

    def leftovers(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for n in self.facts.nodes
                      for p in self.tmp(n.name).iterdir())


class Access(ClusterAccess):
    """A cluster as ``open_cluster`` gives it, whose SSH runner is the given one."""

    def __init__(self, facts, runner):
        super().__init__(provider=None, facts=facts)
        self._runner = runner

    def runner(self):
        return self._runner


@pytest.fixture()
def cluster(tmp_path):
    facts = _facts()
    nodes = FolderNodes(tmp_path, facts)
    return Access(facts, nodes), nodes


# ----------------------------------------------------------------------------- run-command

def test_every_node_runs_it_and_each_exit_is_a_result(cluster):
    access, nodes = cluster
    heard = []
    results = remote.run_command(
        access=access, on_output=lambda name, r: heard.append(name),
        command='echo "hello from $NODE"; echo warn >&2; [ "$NODE" != demo-worker-1 ] || exit 3')
    assert list(results) == ["demo-master", "demo-worker-1", "demo-worker-2"]
    assert {n: r.stdout for n, r in results.items()} == {
        n: f"hello from {n}\n" for n in results}
    assert all(r.stderr == "warn\n" for r in results.values())
    assert {n: r.exited for n, r in results.items()} == {
        "demo-master": 0, "demo-worker-1": 3, "demo-worker-2": 0}
    assert sorted(heard) == sorted(results)
    assert {user for _, user, _ in nodes.calls} == {"debian"}     # the login user, no sudo
    assert nodes.closed
    failed = remote.failure(results=results)
    assert isinstance(failed, errors.SparkOpenstackError) and failed.exit_code == 1
    assert failed.message == "the command failed on 1 of 3 node(s): demo-worker-1 (exit 3)"
    ok = remote.run_command(access=access, command="true")
    assert remote.failure(results=ok) is None


def test_master_only_and_named_nodes(cluster):
    access, nodes = cluster
    assert list(remote.run_command(access=access, command="hostname",
                                   master_only=True)) == ["demo-master"]
    picked = remote.run_command(access=access, command="echo $NODE",
                                nodes=["2", "demo-master", "demo-worker-2"])
    assert {n: r.stdout.strip() for n, r in picked.items()} == {
        "demo-worker-2": "demo-worker-2", "demo-master": "demo-master"}


def test_an_unreachable_node_is_named_and_the_others_results_are_kept(cluster):
    access, nodes = cluster
    nodes.down.add("demo-worker-2")
    with pytest.raises(remote.NodesUnreachable) as caught:
        remote.run_command(access=access, command="echo ok")
    exc = caught.value
    assert isinstance(exc, errors.NodeErrors)
    assert list(exc.failures) == ["demo-worker-2"] and "timed out" in exc.message
    assert "[demo-worker-2]" in exc.message
    assert sorted(exc.results) == ["demo-master", "demo-worker-1"]
    failed = remote.failure(results=exc.results, unreachable=exc.failures)
    assert "1 of 3" in failed.message and "demo-worker-2 (not run" in failed.message


@pytest.mark.parametrize("kwargs,error,words", [
    ({"command": "  "}, errors.UsageError, "no command"),
    ({"command": "id", "master_only": True, "nodes": ["1"]}, errors.UsageError, "exclude"),
    ({"command": "id", "nodes": ["demo-worker-9"]}, errors.ValidationError,
     "no node named 'demo-worker-9'"),
    ({"command": "id", "nodes": ["7"]}, errors.ValidationError, "demo-worker-7"),
])
def test_bad_input_is_refused_before_anything_runs(cluster, kwargs, error, words):
    access, nodes = cluster
    with pytest.raises(error, match=words):
        remote.run_command(access=access, **kwargs)
    assert nodes.calls == []


def test_a_stopped_target_or_master_is_refused_before_anything_runs(tmp_path):
    facts = _facts(**{"demo-worker-1": "SHUTOFF"})
    nodes = FolderNodes(tmp_path, facts)
    access = Access(facts, nodes)
    with pytest.raises(errors.ValidationError, match="demo-worker-1 SHUTOFF"):
        remote.run_command(access=access, command="id")
    assert remote.run_command(access=access, command="id", nodes=["2"])  # not a target
    nodes.calls.clear()
    stopped_master = Access(_facts(**{"demo-master": "SHUTOFF"}), nodes)
    with pytest.raises(errors.ValidationError, match="demo-master SHUTOFF"):
        remote.copy_file(access=stopped_master, local=__file__, remote="x", nodes=["1"])
    assert nodes.calls == []


def test_an_unknown_cluster_is_not_found():
    provider = FakeCloud()
    with pytest.raises(errors.NotFoundError, match="no cluster named 'nope'"):
        open_cluster(provider=provider, cluster="nope")


# ----------------------------------------------------------------------------- copy-file

def _tree(root: Path) -> dict[str, object]:
    """Every entry under ``root``: file bytes and mode, link targets, empty folders."""
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            out[rel] = ("dir",)
        else:
            out[rel] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return out


def test_a_file_is_uploaded_once_and_lands_on_every_node(cluster, tmp_path):
    access, nodes = cluster
    local = tmp_path / "tool.sh"
    local.write_bytes(b"#!/bin/sh\necho hi\n" + os.urandom(100_000))
    local.chmod(0o750)
    heard = {}
    report = remote.copy_file(access=access, local=local, remote="bin/tool",
                              on_node=heard.__setitem__)
    for node in access.facts.nodes:
        landed = nodes.home(node.name) / "bin" / "tool"
        assert landed.read_bytes() == local.read_bytes()
        assert stat.S_IMODE(landed.stat().st_mode) == 0o750
        assert report.landed[node.name] == str(landed) == heard[node.name]
    assert not report.is_dir and report.archive_bytes > 100_000
    uploads = [c for c in nodes.calls if c[2].endswith(".tar.gz") and "cat >" in c[2]
               and "ssh" not in c[2]]
    assert [(name, user) for name, user, _ in uploads] == [("demo-master", "debian")]
    forwards = [(name, user) for name, user, cmd in nodes.calls if cmd.startswith("ssh ")]
    assert forwards == [("demo-master", "hduser")] * 2                # one per worker
    assert nodes.leftovers() == []                                    # temp files gone
    assert nodes.closed


def test_a_file_goes_inside_a_directory_or_a_path_ending_in_slash(cluster, tmp_path):
    access, nodes = cluster
    local = tmp_path / "data.csv"
    local.write_text("a,b\n1,2\n")
    (nodes.home("demo-worker-1") / "existing").mkdir()
    report = remote.copy_file(access=access, local=local, remote="existing")
    assert report.landed["demo-worker-1"] == str(nodes.home("demo-worker-1") /
                                                 "existing/data.csv")
    assert (nodes.home("demo-master") / "existing").read_text() == "a,b\n1,2\n"
    remote.copy_file(access=access, local=local, remote="in/")
    for node in access.facts.nodes:
        assert (nodes.home(node.name) / "in/data.csv").read_text() == "a,b\n1,2\n"
    local.write_text("new\n")                                         # replaced in place
    remote.copy_file(access=access, local=local, remote="in/data.csv", master_only=True)
    assert (nodes.home("demo-master") / "in/data.csv").read_text() == "new\n"
    assert (nodes.home("demo-worker-1") / "in/data.csv").read_text() == "a,b\n1,2\n"
    assert nodes.leftovers() == []


def test_a_directory_lands_as_remote_with_everything_in_it(cluster, tmp_path):
    access, nodes = cluster
    local = tmp_path / "conf"
    (local / "sub" / "deeper").mkdir(parents=True)
    (local / "empty").mkdir()
    (local / "a.txt").write_text("alpha\n")
    (local / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (local / "sub" / "run.sh").chmod(0o755)
    (local / "sub" / "deeper" / "blob").write_bytes(os.urandom(5000))
    (local / "link").symlink_to("a.txt")
    report = remote.copy_file(access=access, local=local, remote="etc/app", nodes=["1"])
    assert report.is_dir and list(report.landed) == ["demo-worker-1"]
    assert report.landed["demo-worker-1"] == str(nodes.home("demo-worker-1") / "etc/app")
    assert _tree(nodes.home("demo-worker-1") / "etc/app") == _tree(local)
    assert not (nodes.home("demo-master") / "etc").exists()
    assert not (nodes.home("demo-worker-2") / "etc").exists()
    # again, to every node: the same result where it was, no conf/conf inside
    remote.copy_file(access=access, local=local, remote="etc/app")
    for node in access.facts.nodes:
        assert _tree(nodes.home(node.name) / "etc/app") == _tree(local)
    remote.copy_file(access=access, local=local, remote="into/", master_only=True)
    assert _tree(nodes.home("demo-master") / "into/conf") == _tree(local)
    assert nodes.leftovers() == []


def test_a_failing_node_is_named_and_temp_files_are_removed_everywhere(cluster, tmp_path):
    access, nodes = cluster
    local = tmp_path / "d"
    local.mkdir()
    (local / "f").write_text("x")
    (nodes.home("demo-worker-2") / "target").write_text("a file where a folder is wanted")
    (nodes.root / "by-ip" / "10.0.0.21").unlink()           # the master cannot reach w1
    with pytest.raises(errors.NodeErrors) as caught:
        remote.copy_file(access=access, local=local, remote="target")
    assert sorted(caught.value.failures) == ["demo-worker-1", "demo-worker-2"]
    assert "forward from demo-master as hduser failed (exit 255)" in \
        caught.value.failures["demo-worker-1"]
    assert "No route to host" in caught.value.failures["demo-worker-1"]
    assert "unpacking at target failed" in caught.value.failures["demo-worker-2"]
    assert (nodes.home("demo-master") / "target/f").read_text() == "x"
    assert nodes.leftovers() == []
    assert nodes.closed


def test_copy_refuses_bad_input_before_contacting_anything(cluster, tmp_path):
    access, nodes = cluster
    with pytest.raises(errors.UsageError, match="no such file"):
        remote.copy_file(access=access, local=tmp_path / "missing", remote="x")
    with pytest.raises(errors.UsageError, match="exclude"):
        remote.copy_file(access=access, local=__file__, remote="x", master_only=True,
                         nodes=["1"])
    with pytest.raises(errors.ValidationError, match="no node named"):
        remote.copy_file(access=access, local=__file__, remote="x", nodes=["demo-gpu"])
    assert nodes.calls == []


def test_the_archive_round_trips_through_real_tar(tmp_path):
    local = tmp_path / "src"
    (local / "x" / "y").mkdir(parents=True)
    (local / "x" / "y" / "z.bin").write_bytes(os.urandom(3000))
    (local / "top").write_text("t")
    with open(tmp_path / "a.tgz", "wb") as out:
        assert remote.make_archive(local, out) is True
    dest = tmp_path / "dest"
    subprocess.run(["bash", "-c", remote.unpack_command(
        archive=str(tmp_path / "a.tgz"), remote=str(dest), name="src", is_dir=True)],
        check=True, capture_output=True)
    assert _tree(dest) == _tree(local)


# ----------------------------------------------------------------------------- the CLI

@pytest.fixture()
def cli_cluster(cluster, monkeypatch):
    access, nodes = cluster
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: object()))
    monkeypatch.setattr("spark_openstack.inventory.open_cluster", lambda **kw: access)
    return access, nodes


def test_cli_prefixes_each_line_and_exits_1_naming_the_failed_nodes(cli_cluster, capsys):
    code = cli.main(["run-command", "-c", "demo", "--",
                     'echo "one $NODE"; echo two; [ "$NODE" = demo-master ] || exit 4'])
    out, err = capsys.readouterr()
    assert code == 1
    for name in ("demo-master", "demo-worker-1", "demo-worker-2"):
        assert f"[{name}] one {name}\n[{name}] two\n" in out
    assert "[demo-worker-1] exited 4" in err
    assert "the command failed on 2 of 3 node(s): demo-worker-1 (exit 4), " \
           "demo-worker-2 (exit 4)" in err
    assert cli.main(["run-command", "-c", "demo", "--node", "demo-master", "--",
                     "exit", "0"]) == 0


def test_cli_json_and_usage_errors(cli_cluster, capsys):
    import json
    code = cli.main(["run-command", "-c", "demo", "--json", "--master-only", "--", "echo",
                     "hi"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == [{"node": "demo-master", "exit": 0, "stdout": "hi\n",
                                "stderr": ""}]
    assert cli.main(["run-command", "-c", "demo", "--master-only", "--node", "1", "--",
                     "id"]) == 2
    assert cli.main(["copy-file", "-c", "demo", "/nonexistent/file", "x"]) == 2
    _, err = capsys.readouterr()
    assert "exclude" in err and "does not exist" in err


def test_cli_copy_file_reports_each_node(cli_cluster, capsys, tmp_path):
    access, nodes = cli_cluster
    (tmp_path / "f.txt").write_text("payload")
    code = cli.main(["copy-file", "-c", "demo", str(tmp_path / "f.txt"), "/tmp/x/"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "[demo-worker-2] /tmp/x/f.txt" in out and "to 3 node(s)" in err


# ----------------------------------------------------------------------------- a real sshd

def test_over_real_ssh_workers_through_the_master(sshd, tmp_path):  # noqa: F811
    """Every node is the sshd on 127.0.0.1 (the workers reached through the master's
    connection); the upload goes through paramiko from a mapped temp file."""
    address = f"127.0.0.1:{sshd.port}"
    master = Node(name="demo-master", role="master", private_ip=address, public_ip=address,
                  status="ACTIVE")
    workers = tuple(Node(name=f"demo-worker-{i}", role="worker", private_ip=address,
                         status="ACTIVE") for i in (1, 2))
    facts = ClusterFacts(cluster_name="demo", master=master, workers=workers, ssh_user="root")
    access = ClusterAccess(provider=None, facts=facts, key_filename=str(sshd.client_key),
                           known_hosts=str(tmp_path / "known_hosts"))
    results = remote.run_command(access=access, command="echo $USER; exit 5")
    assert {n: (r.stdout, r.exited) for n, r in results.items()} == {
        n.name: ("root\n", 5) for n in facts.nodes}
    before = set(Path("/tmp").glob("spark-openstack-copy-*"))
    local = tmp_path / "big.bin"
    local.write_bytes(os.urandom(3 * 1024 * 1024))
    dest = tmp_path / "landed" / "big.bin"
    report = remote.copy_file(access=access, local=local, remote=str(dest), master_only=True)
    assert report.landed == {"demo-master": str(dest)}
    assert dest.read_bytes() == local.read_bytes()
    assert set(Path("/tmp").glob("spark-openstack-copy-*")) == before   # removed again


@pytest.mark.parametrize("remote_path,landed", [
    ("~", "."), ("~/", "conf"), ("~/x/y", "x/y"), ("x", "x"), ("./", "conf"), ("x/", "x/conf")])
def test_where_a_directory_lands(tmp_path, remote_path, landed):
    local = tmp_path / "conf"
    local.mkdir()
    (local / "f").write_text("1")
    home = tmp_path / "home"
    home.mkdir()
    with open(tmp_path / "a.tgz", "wb") as out:
        remote.make_archive(local, out)
    out = subprocess.run(["bash", "-c", remote.unpack_command(
        archive=str(tmp_path / "a.tgz"), remote=remote_path, name="conf", is_dir=True)],
        cwd=home, env=dict(os.environ, HOME=str(home)), check=True, capture_output=True,
        text=True).stdout.strip()
    assert out == str((home / landed).resolve())
    assert (home / landed / "f").read_text() == "1"


def test_command_run_rows_in_node_order_with_the_unreached_ones_last_and_its_failure():
    from spark_openstack.transport import CommandResult as Result
    run = remote.CommandRun(
        results={"c-worker-10": Result("a", "", 0), "c-master": Result("b", "", 0),
                 "c-worker-2": Result("", "bad", 3)},
        unreachable={"c-worker-3": "connection refused"})
    rows = run.to_rows()
    assert [r["node"] for r in rows] == ["c-master", "c-worker-2", "c-worker-10", "c-worker-3"]
    assert rows[1]["exit"] == 3 and rows[-1] == {"node": "c-worker-3", "exit": None,
                                                 "stdout": "", "stderr": "",
                                                 "error": "connection refused"}
    failed = run.failure()
    assert failed is not None and "c-worker-2" in failed.message and "c-worker-3" in failed.message
    assert remote.CommandRun(results={"c-master": Result("", "", 0)}).failure() is None
