"""Hadoop service start/stop/health logic: the exact commands, their order, and what the
tool concludes from what the daemons really do.

YARN runs for real: the sandbox mirror's Apache Hadoop 3.4.2 tarball (sandbox/build_hadoop.py,
tests/support/hadoop.py) unpacked once per module, one ResourceManager ("demo-master",
127.0.0.1) and a NodeManager per worker ("demo-worker-N", 127.0.0.N+1), each node with its
own configuration, pid and log folders, on free loopback ports; every daemon is killed by pid
after each test. Skipped when the tarball has not been built, unless SANDBOX_REQUIRED=1.
HDFS's start/format/health run on real daemons in tests/integration (the sandbox) and
tests/sandbox/test_sandbox_hadoop.py.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support.facts import make_facts
from support.hadoop import alive, cmdline, pids_in, require_tarball, unpack, wait_for
from support.yarn import YarnRunner, loopback_facts
from spark_openstack import deploy, polling
from spark_openstack.errors import DeployError, NodeErrors
from spark_openstack.services import YARN
from spark_openstack.services.base import Health, Service
from spark_openstack.transport import CommandResult, MasterRunner, tar_bytes
from spark_openstack.services.hdfs import live_datanodes
from spark_openstack.services.yarn import running_nodemanagers


@pytest.fixture(scope="module")
def hadoop_home(tmp_path_factory) -> Path:
    return unpack(require_tarball(), tmp_path_factory.mktemp("hadoop3"))


def _started_at(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


@pytest.fixture
def cluster(tmp_path, hadoop_home):
    facts = loopback_facts()
    runner = YarnRunner(tmp_path, hadoop_home, facts)
    try:
        yield facts, runner
    finally:
        runner.kill_all()


HEALTH_TIMEOUT = 90


def test_first_start_starts_the_resourcemanager_then_every_nodemanager(cluster):
    facts, runner = cluster
    health = deploy.start_services(facts=facts, runner=runner, names=["yarn"],
                                   health_timeout=HEALTH_TIMEOUT)
    calls = runner.calls()
    assert calls[0] == "demo-master yarn --daemon start resourcemanager"
    assert sorted(calls[1:3]) == ["demo-worker-1 yarn --daemon start nodemanager",
                                  "demo-worker-2 yarn --daemon start nodemanager"]
    assert set(calls[3:]) == {f"demo-master {YARN.members_command}"}
    assert not any("--daemon status" in c for c in calls)   # its exit code lies
    assert health["yarn"].ok and health["yarn"].actual == 2
    assert health["yarn"].missing == ()
    assert "demo-worker-1, demo-worker-2" in health["yarn"].line()
    rm = runner.pid(facts.master, "resourcemanager")
    nms = [runner.pid(w, "nodemanager") for w in facts.workers]
    assert "-Dproc_resourcemanager" in cmdline(rm)
    assert all("-Dproc_nodemanager" in cmdline(p) for p in nms)
    assert all(_started_at(rm) <= _started_at(p) for p in nms)
    listing = runner.yarn(facts.master, "node", "-list", "-states", "RUNNING").stdout
    assert running_nodemanagers(listing) == {"127.0.0.2", "127.0.0.3"}


def test_a_stopped_daemon_is_started_although_status_exits_0(cluster):
    """Hadoop 3.4: `--daemon status` says "is stopped" and exits 0. A tool that trusted
    it (`status || start`) never started anything on a real cluster."""
    facts, runner = cluster
    status = runner.run(facts.master, "yarn --daemon status resourcemanager")
    assert status.exited == 0 and "resourcemanager is stopped." in status.stdout
    YARN(facts=facts, runner=runner).start()
    assert YARN(facts=facts, runner=runner).running(facts.master, "resourcemanager")
    assert "is running as process" in runner.run(
        facts.master, "yarn --daemon status resourcemanager").stdout


def test_second_start_does_not_restart_running_daemons(cluster):
    facts, runner = cluster
    deploy.start_services(facts=facts, runner=runner, names=["yarn"],
                          health_timeout=HEALTH_TIMEOUT)
    pids = [runner.pid(n, d) for n, d in ((facts.master, "resourcemanager"),
                                          *((w, "nodemanager") for w in facts.workers))]
    before = len(runner.calls())
    health = deploy.start_services(facts=facts, runner=runner, names=["yarn"],
                                   health_timeout=HEALTH_TIMEOUT)
    assert not any("--daemon start" in c for c in runner.calls()[before:])
    assert health["yarn"].ok
    assert pids == [runner.pid(n, d) for n, d in ((facts.master, "resourcemanager"),
                                                  *((w, "nodemanager") for w in facts.workers))]
    assert all(alive(p) for p in pids)


def test_a_stale_pid_file_does_not_block_the_start(cluster):
    """After a reboot the pid in the file may belong to another process: Hadoop's start
    would refuse ("Stop it first"); the tool sees no -Dproc_ JVM and starts it."""
    facts, runner = cluster
    other = subprocess.Popen(["sleep", "300"])
    try:
        pid_dir = runner.pid_dirs[facts.master.name]
        pid_dir.mkdir(parents=True)
        (pid_dir / "hadoop-hduser-resourcemanager.pid").write_text(str(other.pid))
        yarn = YARN(facts=facts, runner=runner)
        assert not yarn.running(facts.master, "resourcemanager")
        yarn.start()
        assert yarn.running(facts.master, "resourcemanager")
        rm = runner.pid(facts.master, "resourcemanager")
        assert rm != other.pid and "-Dproc_resourcemanager" in cmdline(rm)
        assert other.poll() is None      # the other process was left alone
    finally:
        other.kill()
        other.wait()


def test_stop_goes_workers_first_and_leaves_no_process(cluster):
    facts, runner = cluster
    yarn = YARN(facts=facts, runner=runner)
    deploy.start_services(facts=facts, runner=runner, names=["yarn"],
                          health_timeout=HEALTH_TIMEOUT)
    pids = pids_in(*runner.pid_dirs.values())
    assert len(pids) == 3
    before = len(runner.calls())
    deploy.stop_services(facts=facts, runner=runner, names=["yarn"])
    calls = [c for c in runner.calls()[before:] if "--daemon stop" in c]
    assert sorted(calls[0:2]) == ["demo-worker-1 yarn --daemon stop nodemanager",
                                  "demo-worker-2 yarn --daemon stop nodemanager"]
    assert calls[2] == "demo-master yarn --daemon stop resourcemanager"
    assert not yarn.running(facts.master, "resourcemanager")
    assert not any(yarn.running(w, "nodemanager") for w in facts.workers)
    assert not any(alive(p) for p in pids)
    health = deploy.cluster_health(facts=facts, runner=runner, names=["yarn"])
    assert health["yarn"].actual == 0 and not health["yarn"].ok
    assert health["yarn"].missing == ("demo-worker-1", "demo-worker-2")
    deploy.stop_services(facts=facts, runner=runner, names=["yarn"])   # stopping again: fine


def test_every_failing_worker_is_named(cluster, tmp_path):
    """Both NodeManagers fail to start (their pid folder cannot be made): both are named."""
    facts, runner = cluster
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    for w in facts.workers:
        runner.configure(w, pid_dir=blocker / w.name)
    with pytest.raises(NodeErrors) as info:
        YARN(facts=facts, runner=runner).start()
    assert set(info.value.failures) == {"demo-worker-1", "demo-worker-2"}
    assert "[demo-worker-1]" in str(info.value) and "cannot create" in str(info.value)


def test_a_daemon_dying_at_start_is_named_with_its_cause(cluster):
    """Java 17 without the --add-opens list: the real ResourceManager dies at start."""
    facts, runner = cluster
    runner.configure(facts.master, opens=False)
    with pytest.raises((DeployError, NodeErrors)) as info:
        deploy.start_services(facts=facts, runner=runner, names=["yarn"],
                              health_timeout=HEALTH_TIMEOUT)
    message = str(info.value)
    assert "demo-master" in message and "resourcemanager" in message
    assert "InaccessibleObjectException" in message
    why = YARN(facts=facts, runner=runner).diagnose()
    assert "[demo-master] resourcemanager is not running; its log says:" in why


def test_health_says_which_worker_is_missing(cluster):
    facts, runner = cluster
    yarn = YARN(facts=facts, runner=runner)
    runner.run(facts.master, yarn.start_command("resourcemanager"))
    runner.run(facts.workers[1], yarn.start_command("nodemanager"))
    wait_for(lambda: "127.0.0.3" in running_nodemanagers(runner.yarn(
        facts.master, "node", "-list", "-states", "RUNNING").stdout),
        timeout=60, what="demo-worker-2's NodeManager RUNNING")
    with pytest.raises(DeployError, match=r"yarn not ready .*1/2 NodeManagers running "
                                          r"\(demo-worker-2\); missing: demo-worker-1"):
        yarn.wait_healthy(timeout=3, interval=0.5)


def test_a_decommissioned_nodemanager_leaves_the_running_nodes(cluster):
    """`yarn rmadmin -refreshNodes` re-reads the exclude list; the listed NodeManager is
    decommissioned (the ResourceManager shuts it down) and leaves running_nodes()."""
    facts, runner = cluster
    deploy.start_services(facts=facts, runner=runner, names=["yarn"],
                          health_timeout=HEALTH_TIMEOUT)
    yarn = YARN(facts=facts, runner=runner)
    assert yarn.running_nodes() == {"127.0.0.2", "127.0.0.3"}
    (runner.conf(facts.master) / "yarn.exclude").write_text("127.0.0.3\n")
    yarn.refresh_nodes()
    wait_for(lambda: yarn.running_nodes() == {"127.0.0.2"}, timeout=60,
             what="demo-worker-2 decommissioned", interval=0.5)
    nm = runner.pid(facts.workers[1], "nodemanager")
    wait_for(lambda: nm is None or not alive(nm), timeout=30,
             what="the decommissioned NodeManager shut down", interval=0.5)


REPORT_2_7_3 = textwrap.dedent("""\
    Configured Capacity: 269490393088 (250.98 GB)
    DFS Used: 57344 (56 KB)
    -------------------------------------------------
    Live datanodes (2):

    Name: 10.213.0.21:9866 (demo-worker-1)
    Hostname: demo-worker-1
    Decommission Status : Normal
    Configured Capacity: 134745196544 (125.49 GB)

    Name: 10.213.0.22:9866 (10.213.0.22)
    Hostname: demo-worker-2
    Decommission Status : Normal
    """)


def test_live_datanodes_are_read_by_name_and_address():
    assert live_datanodes(REPORT_2_7_3) >= {"demo-worker-1", "demo-worker-2", "10.213.0.21",
                                            "10.213.0.22"}
    assert live_datanodes("Live datanodes (0):\n") == set()


def test_decommissioned_datanodes_do_not_count_as_live():
    report = REPORT_2_7_3.replace("Decommission Status : Normal",
                                  "Decommission Status : Decommissioned", 1)
    found = live_datanodes(report)
    assert len(found & {"demo-worker-1", "demo-worker-2"}) == 1
    assert len(found & {"10.213.0.21", "10.213.0.22"}) == 1


def test_running_nodemanagers_are_read_from_the_node_list():
    listing = ("Total Nodes:2\n         Node-Id\t     Node-State\tNode-Http-Address\t"
               "Number-of-Running-Containers\n"
               "demo-worker-1:40123\t        RUNNING\tdemo-worker-1:8042\t   0\n"
               "demo-worker-2:40123\t      UNHEALTHY\tdemo-worker-2:8042\t   0\n")
    assert running_nodemanagers(listing) == {"demo-worker-1"}


def test_yarn_tasks_on_an_image_without_yarn_say_there_is_nothing_to_do():
    facts = deploy.reconcile_facts(
        facts=make_facts(), image_marker={"hadoop_version": "2.7.3",
                                          "hadoop_services": ["hdfs"]})[0]
    assert facts.services == ("hdfs", "spark")
    note = deploy.not_deployed_note(facts=facts, names=["yarn"])
    assert "YARN is not part of cluster demo" in note and "no YARN daemons" in note
    assert deploy.not_deployed_note(facts=facts, names=["hdfs"]) == ""


def test_an_hdfs_only_image_drops_yarn_with_one_clear_line():
    facts, messages = deploy.reconcile_facts(
        facts=make_facts(), image_marker={"hadoop_version": "2.7.3",
                                          "hadoop_services": ["hdfs"],
                                          "java_version": "17.0.15"})
    assert facts.services == ("hdfs", "spark")
    assert facts.hadoop_version == "2.7.3" and facts.java_major == 17
    assert messages == ["the image's Hadoop 2.7.3 has no YARN daemons: deploying "
                        "HDFS + Spark standalone"]
    full, messages = deploy.reconcile_facts(facts=make_facts(),
                                            image_marker={"hadoop_version": "3.4.1"})
    assert full.services == ("hdfs", "yarn", "spark")
    assert messages == ["deploying HDFS + YARN + Spark standalone"]


def test_master_runner_never_hands_its_stdin_to_commands(tmp_path):
    """`fab` run from a piped script must not swallow the rest of that script."""
    child = textwrap.dedent("""\
        import sys
        from support.facts import make_facts
        from spark_openstack.transport import MasterRunner
        facts = make_facts()
        MasterRunner(facts=facts).run(facts.master, "cat > /dev/null", timeout=10)
        sys.stdout.write(sys.stdin.read())
        """)
    proc = subprocess.run([sys.executable, "-c", child], input="echo the rest\n",
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
                              str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH")]))))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "echo the rest\n"


def test_services_option_rejects_services_not_deployed():
    facts, runner = make_facts(workers=2, services=("yarn", "spark")), None
    spark_only = deploy.reconcile_facts(facts=facts, image_marker={"hadoop_version": None},
                                        services=["yarn", "spark"])[0]
    with pytest.raises(Exception, match="not deployed"):
        deploy.services_for(facts=spark_only, runner=runner, names=["yarn"])


def test_image_without_hadoop_means_spark_only_with_a_message():
    facts = make_facts(workers=2, services=("yarn", "spark"))
    marker = {"hadoop_version": None, "java_home": "/usr/lib/jvm/java-17-openjdk-amd64",
              "spark_home": "/opt/spark"}
    new, messages = deploy.reconcile_facts(facts=facts, image_marker=marker)
    assert new.services == ("spark",)
    assert messages and "no Hadoop" in messages[0]
    with pytest.raises(Exception, match="no Hadoop"):
        deploy.reconcile_facts(facts=facts, image_marker=marker, services=["hdfs"])
    with pytest.raises(DeployError, match="create-image"):
        deploy.reconcile_facts(facts=facts, image_marker=None)


def test_secret_is_kept_across_deploys_or_generated():
    facts = make_facts(secret="")
    marker = {"hadoop_version": "3.4.1"}
    kept, _ = deploy.reconcile_facts(facts=facts, image_marker=marker,
                                     previous={"spark_secret": "old"})
    assert kept.spark_secret == "old"
    fresh, _ = deploy.reconcile_facts(facts=facts, image_marker=marker)
    other, _ = deploy.reconcile_facts(facts=facts, image_marker=marker)
    assert len(fresh.spark_secret) >= 32 and fresh.spark_secret != other.spark_secret


def test_master_runner_runs_the_master_locally_and_unpacks_files(tmp_path):
    facts = make_facts()
    runner = MasterRunner(facts=facts)
    assert runner.run(facts.master, "echo $((6 * 7))").stdout.strip() == "42"
    assert runner.run(facts.master, "exit 4", check=False).exited == 4
    with pytest.raises(Exception, match="exited 4"):
        runner.run(facts.master, "exit 4")
    # the archive put_files sends unpacks with the given modes
    target = tmp_path / "root"
    target.mkdir()
    (tmp_path / "a.tgz").write_bytes(tar_bytes({"/conf/secret.conf": ("s", 0o600),
                                                "/conf/env.sh": ("e", 0o755)}))
    subprocess.run(["tar", "-xzf", str(tmp_path / "a.tgz"), "-C", str(target),
                    "--no-same-owner"], check=True)
    assert (target / "conf/secret.conf").stat().st_mode & 0o777 == 0o600
    assert (target / "conf/env.sh").stat().st_mode & 0o777 == 0o755


# ----------------------------------------------------------------------------- one push
class _LocalChannel:
    """A paramiko channel stand-in whose command runs in a local bash."""

    def __init__(self):
        import threading
        self.status_event = threading.Event()
        self.proc = None

    def settimeout(self, _timeout):
        pass

    def exec_command(self, command):
        self.proc = subprocess.Popen(["bash", "-c", command], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def sendall(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise OSError("Socket is closed") from exc

    def shutdown_write(self):
        self.proc.stdin.close()

    def makefile(self, _mode):
        return self.proc.stdout

    def makefile_stderr(self, _mode):
        return self.proc.stderr

    def recv_exit_status(self):
        return self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.wait()
        self.status_event.set()


class _LocalConnection:
    is_connected = True

    def __init__(self):
        outer = self

        class Transport:
            def open_session(self, timeout=None):
                chan = _LocalChannel()
                outer.channels.append(chan)
                orig = chan.makefile_stderr

                def stderr(mode):
                    out = orig(mode)
                    chan.proc.wait()
                    chan.status_event.set()
                    return out
                chan.makefile_stderr = stderr
                return chan
        self.channels: list = []
        self.client = type("Client", (), {"get_transport": lambda _self: Transport()})()


def test_a_push_is_one_command_with_the_archive_on_its_stdin(tmp_path):
    from spark_openstack.transport import extract_command, run_with_input
    conn = _LocalConnection()
    archive = tar_bytes({"/conf/a.xml": ("<a/>", 0o644), "/conf/s.conf": ("s", 0o600)})
    command = extract_command(archive="-", files={}, owner="nobody").replace(
        "-C /", f"-C {tmp_path}")
    result = run_with_input(conn=conn, command=command, data=archive, timeout=30,
                            where="demo-master")
    assert result.exited == 0 and len(conn.channels) == 1
    assert (tmp_path / "conf/a.xml").read_text() == "<a/>"
    assert (tmp_path / "conf/s.conf").stat().st_mode & 0o777 == 0o600
    # a command that ends before reading its input reports its own exit status
    early = run_with_input(conn=conn, command="echo 'no space left' >&2; exit 3",
                           data=b"x" * 2_000_000, timeout=30, where="demo-master")
    assert early.exited == 3 and "no space left" in early.stderr


def test_each_node_gets_everything_in_one_push_and_only_the_master_the_facts():
    from spark_openstack.model import FACTS_PATH_ON_MASTER
    facts = make_facts(workers=2, services=("hdfs", "spark"))

    class Recorder:
        def __init__(self):
            self.pushes = []

        def put_files(self, node, files, *, owner="hduser", root_files=None, setup=""):
            self.pushes.append((node.name, dict(files), dict(root_files or {}), setup))

    runner = Recorder()
    for node in facts.nodes:
        deploy._prepare_node(facts=facts, runner=runner, node=node,
                             hduser_public_key="ssh-ed25519 AAAA hduser@demo")
    assert [p[0] for p in runner.pushes] == ["demo-master", "demo-worker-1", "demo-worker-2"]
    for name, files, root_files, setup in runner.pushes:
        assert list(root_files) == ["/etc/hosts"]
        assert setup.startswith("install -d -m 0755 -o hduser -g hduser ")
        assert "/home/hduser/.ssh/authorized_keys" in files
        assert (FACTS_PATH_ON_MASTER in files) == (name == "demo-master")
        assert any(path.endswith("/hdfs-site.xml") for path in files)
    assert runner.pushes[0][1][FACTS_PATH_ON_MASTER][1] == 0o600
    assert "/namenode" in runner.pushes[0][3] and "/datanode" in runner.pushes[1][3]


def test_the_master_is_inspected_in_one_command():
    facts = make_facts()
    calls = []

    class Runner:
        def run_as_root(self, node, command, **_):
            calls.append(command)
            sep = deploy._SEPARATOR
            return CommandResult(f'{{"hadoop_version": "3.4.1"}}\n{sep}\n\n{sep}\n'
                                 "ssh-ed25519 AAAA hduser@demo\n", "", 0)

    marker, previous, key = deploy._inspect_master(Runner(), facts.master, "demo")
    assert len(calls) == 1 and "ssh-keygen" in calls[0]
    assert marker == {"hadoop_version": "3.4.1"} and previous == {}
    assert deploy._checked_key(key, facts.master) == "ssh-ed25519 AAAA hduser@demo"
    with pytest.raises(DeployError, match="public key"):
        deploy._checked_key("sudo: unknown user hduser", facts.master)


class _Step(Service):
    """A service whose start takes ``delay`` seconds and then fails with ``fails`` (if
    given); healthy at once otherwise."""

    def __init__(self, name: str, *, delay: float = 0.0, fails: str = ""):
        super().__init__(facts=make_facts(workers=1), runner=None)
        self.name, self.delay, self.fails = name, delay, fails

    def start(self) -> None:
        polling.sleep(self.delay)
        if self.fails:
            raise DeployError(self.fails)

    def wait_healthy(self, **_) -> Health:
        return Health(service=self.name, expected=1, actual=1)


def test_services_start_side_by_side_one_error_as_is_and_several_per_service(monkeypatch):
    def start(*steps):
        monkeypatch.setattr(deploy, "services_for", lambda **_: list(steps))
        return deploy.start_services(facts=make_facts(workers=1), runner=None)
    began = time.monotonic()
    out = start(_Step("a", delay=0.3), _Step("b", delay=0.3))
    assert sorted(out) == ["a", "b"] and all(h.ok for h in out.values())
    assert time.monotonic() - began < 0.55
    with pytest.raises(DeployError, match="hdfs not ready"):
        start(_Step("hdfs", fails="hdfs not ready"), _Step("spark"))
    with pytest.raises(NodeErrors) as info:
        start(_Step("hdfs", fails="x"), _Step("spark", fails="y"))
    assert str(info.value).startswith("start services failed on 2 node(s)")
    assert "[hdfs] x" in str(info.value) and "[spark] y" in str(info.value)


# ----------------------------------------------------------------- HDFS's start, its own
class ScriptedHdfs:
    """A fake cluster for HDFS's start: which daemons run where, whether the NameNode is
    formatted; every command is recorded (``calls``) as ``"<node> <command>"``."""

    def __init__(self, facts, *, formatted: bool, running: bool):
        import threading
        self.facts, self.formatted, self.lock = facts, formatted, threading.Lock()
        self.running = ({(facts.master.name, d) for d in ("namenode", "secondarynamenode")}
                        | {(w.name, "datanode") for w in facts.workers}) if running else set()
        self.calls: list[str] = []

    def run(self, node, command, *, timeout=None, check=True):
        with self.lock:
            self.calls.append(f"{node.name} {command}")
            daemon = next((d for d in ("secondarynamenode", "namenode", "datanode")
                           if f"-Dproc_{d} " in command), None)
            out, code = "", 0
            if command.startswith("test -f ") and command.endswith("VERSION"):
                code = 0 if self.formatted else 1
            elif command.startswith("hdfs namenode -format"):
                self.formatted = True
            elif "--daemon start" in command:
                self.running.add((node.name, daemon))
            elif daemon:
                code = 0 if (node.name, daemon) in self.running else 1
            elif command == "hdfs dfsadmin -report -live":
                out = "".join(f"Name: {w.private_ip}:9866 ({w.name})\nHostname: {w.name}\n"
                              "Decommission Status : Normal\n\n" for w in self.facts.workers
                              if (w.name, "datanode") in self.running)
            return CommandResult(out, "", code)


def _hdfs_start(*, formatted: bool, running: bool):
    facts = make_facts(workers=2, services=("hdfs",))
    runner = ScriptedHdfs(facts, formatted=formatted, running=running)
    from spark_openstack.progress import RecordingProgress
    progress = RecordingProgress()
    health = deploy.start_services(facts=facts, runner=runner, names=["hdfs"],
                                   progress=progress, health_timeout=10)
    messages = [e[1] for e in progress.events if e[0] == "message"]
    return health["hdfs"], runner.calls, messages


def test_deploy_asks_hdfs_to_format_start_and_make_the_user_dir_on_its_first_start():
    health, calls, messages = _hdfs_start(formatted=False, running=False)
    assert health.ok and health.actual == 2
    assert "formatting HDFS on demo-master" in messages
    starts = [c for c in calls if "--daemon start" in c]
    assert [c.split()[0] for c in starts[:2]] == ["demo-master", "demo-master"]
    assert sorted(c.split()[0] for c in starts[2:]) == ["demo-worker-1", "demo-worker-2"]
    assert calls.index(next(c for c in calls if "hdfs namenode -format" in c)) < \
        calls.index(starts[0])
    assert any("/dev/tcp/10.213.0.10/9000" in c for c in calls)      # its declared rpc port
    assert any("hdfs dfs -mkdir -p /user/hduser" in c for c in calls)
    assert not any("-refreshNodes" in c for c in calls)


def test_a_running_hdfs_is_not_formatted_nor_restarted_and_rereads_its_excludes():
    health, calls, messages = _hdfs_start(formatted=True, running=True)
    assert health.ok
    assert not any("format" in m for m in messages)
    assert not any("hdfs namenode -format" in c or "-mkdir" in c or "/dev/tcp/" in c
                   for c in calls)
    assert any(c.endswith("hdfs dfsadmin -refreshNodes") for c in calls)
