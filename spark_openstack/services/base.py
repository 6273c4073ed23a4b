"""What every service shares: the ``Service`` base, and what a health check says.

How commands reach a node (the runners) is ``spark_openstack.transport``'s.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Callable

from ..errors import DeployError, HostKeyChanged, SparkOpenstackError, SSHError, TimeoutError_
from ..executor import run_per_node
from ..polling import poll
from ..probes import wait_for_probe
from ..model import ClusterFacts, Node
from ..ports import Port, port_number
from ..dirs import cluster_dirs
from ..transport import CommandResult, Runner

#: How long a stopped daemon may take to go before it is killed (SIGKILL), and how long
#: the kill may take to show.
STOP_TIMEOUT = 30
KILL_SETTLE = 1


# ----------------------------------------------------------------------------- health
@dataclass
class Health:
    """One service's readiness: ``actual`` of ``expected`` members up."""

    service: str
    expected: int
    actual: int
    detail: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()      # expected members (node names) that are not up

    @property
    def ok(self) -> bool:
        return self.actual == self.expected

    def line(self) -> str:
        state = "ok" if self.ok else "NOT READY"
        missing = f"; missing: {', '.join(self.missing)}" if self.missing else ""
        return (f"{self.service}: {self.actual}/{self.expected} {self.detail}{missing} "
                f"[{state}]").strip()


class Service:
    """Base for hdfs/yarn/spark/jupyter: what each one is (its ports, the files whose
    change restarts it, its JVMs), and start, stop, health — from the master.

    The class attributes are the one declaration of each fact: the security group,
    the templates' port numbers, ``describe``, ``configure-cluster``'s restarts and the
    memory plan all read them (through ``spark_openstack.services``).
    """

    name = ""
    title = ""                           # in "deploying HDFS + YARN + Spark standalone"
    default = True                       # deployed unless --services leaves it out
    ports: tuple[Port, ...] = ()         # where it listens
    restart_on: tuple[str, ...] = ()     # config files whose change restarts it
    #: The long-running JVMs it runs per role ("master"/"worker"): the memory plan
    #: budgets a heap for each.
    jvms: dict[str, tuple[str, ...]] = {}
    master_only = False                  # its one member is the master (Jupyter)
    #: Its config files: template under ``config_files/<template_dir>/`` (NAME.j2) ->
    #: the ``Dirs`` field of the folder it goes to. Rendered on every node of a cluster
    #: that runs it (the master only when ``master_only``); a file two services share is
    #: rendered once.
    template_dir = ""
    config_files: dict[str, str] = {}
    #: Its files are rendered even for a cluster without it (Spark's client files:
    #: spark-submit reads them on YARN too).
    files_without_it = False

    @classmethod
    def renders_files(cls, *, services, is_master: bool) -> bool:
        """Whether this node of a cluster running ``services`` gets this service's files."""
        return ((cls.name in services or cls.files_without_it)
                and (is_master or not cls.master_only))

    def __init__(self, *, facts: ClusterFacts, runner: Runner,
                 on_node_done: Callable | None = None):
        self.facts = facts
        self.runner = runner
        self.on_node_done = on_node_done

    @property
    def master(self) -> Node:
        return self.facts.master

    @property
    def workers(self) -> tuple[Node, ...]:
        return self.facts.workers

    def on_master(self, command: str, *, timeout: float | None = 300,
                  check: bool = True) -> CommandResult:
        return self.runner.run(self.master, command, timeout=timeout, check=check)

    def on_workers(self, command: str, *, what: str, timeout: float | None = 300) -> None:
        """The same command on every worker at once; every failure is reported per node."""
        run_per_node(lambda node: self.runner.run(node, command, timeout=timeout),
                     self.workers, what=f"{self.name}: {what}", on_done=self.on_node_done)

    @classmethod
    def port(cls, name: str) -> int:
        """The number of this service's port ``name``."""
        return port_number(cls.ports, name)

    # -- lifecycle (subclasses)
    def setup_needed(self) -> str:
        """What one-time setup the first start needs (said to the user), "" for none."""
        return ""

    def setup(self) -> None:
        """Do what ``setup_needed`` said (before ``start``)."""

    def start(self) -> None:
        raise NotImplementedError

    def ready_steps(self, *, timeout: float) -> dict[str, Callable[[], object]]:
        """After ``start``: what else to wait for, beside health, before it is ready
        (run together with ``wait_healthy``)."""
        return {}

    def wait_for_port(self, port: int, *, timeout: float) -> None:
        """Until ``port`` on the master answers (one bash connect per try, on the master)."""
        probe = f"(exec 3<>/dev/tcp/{self.master.private_ip}/{port}) 2>/dev/null"
        try:
            wait_for_probe(runner=self.runner, node=self.master, command=probe,
                           timeout=timeout, what=f"{self.name}: port {port}",
                           interval=0.2, max_interval=1.0)
        except TimeoutError_ as exc:
            raise DeployError(f"{self.name}: nothing answers on {self.master.name}:{port} "
                              f"after {timeout:.0f}s",
                              hint=f"look at the logs on {self.master.name}: "
                                   f"{self.log_hint()}") from exc

    def stop(self) -> None:
        raise NotImplementedError

    def stop_on_worker(self, node: Node) -> None:
        """Stop what this service runs on worker ``node`` alone (a worker being removed);
        nothing to stop is fine. A master-only service (Jupyter) has nothing there."""
        if not self.master_only:
            raise NotImplementedError

    def health(self) -> Health:
        raise NotImplementedError

    def wait_healthy(self, *, timeout: float = 180, interval: float = 2.0) -> Health:
        """Poll ``health`` until every member is up; ``DeployError`` naming what is missing
        and why (dead daemons and their last log lines)."""
        last: list[Health] = []

        def healthy():
            last[:] = [self.health()]
            return last[0] if last[0].ok else None
        try:
            return poll(healthy, timeout=timeout, what=f"{self.name} health",
                        interval=interval, max_interval=5, backoff=1.3,
                        transient=(SSHError, DeployError, TimeoutError_),
                        fatal=(HostKeyChanged,), describe=lambda: last[0].line() if last else "no answer")
        except TimeoutError_ as exc:
            seen = last[0].line() if last else f"{self.name}: no answer ({exc.message})"
            why = self.diagnose()
            raise DeployError(f"{self.name} not ready after {timeout:.0f}s: {seen}"
                              + (f"\n{why}" if why else ""),
                              hint=f"look at the logs on {self.master.name}: "
                                   f"{self.log_hint()}") from exc

    def diagnose(self) -> str:
        """Why members are missing (dead daemons and their last log lines); "" if unknown."""
        return ""

    def log_hint(self) -> str:
        return "/var/log"


class HadoopService(Service):
    """HDFS and YARN share one shape: daemons on the master, one daemon on every worker,
    all driven by ``<name> --daemon start|stop``, and a command on the master that lists
    the worker daemons that joined.

    Whether a daemon runs is decided from its pid file and that process's command line
    (``-Dproc_<daemon>``, which Hadoop's launchers put there), never from
    ``--daemon status``: Hadoop 3.4's prints "namenode is stopped." and exits 0.
    """

    master_daemons: tuple[str, ...] = ()
    worker_daemons: tuple[str, ...] = ()
    #: The Hadoop XML files it reads (``--hadoop-conf FILE:KEY=VALUE`` may set them);
    #: a change to one restarts it.
    site_files: tuple[str, ...] = ()
    template_dir = "hadoop"
    members_command = ""    # run on the master; its output names the joined workers
    health_detail = ""      # e.g. "DataNodes live"
    ui_label = ""
    ui_port = 0             # its web UI's port (one of ``ports``)
    #: Whether the (first) master daemon already ran when ``start`` was called.
    was_running = False

    # -- processes
    def pid_file(self, daemon: str) -> str:
        return f"{cluster_dirs(self.facts).hadoop_pids}/hadoop-{self.facts.hadoop_user}-{daemon}.pid"

    def running_test(self, daemon: str) -> str:
        """A shell test that is true while ``daemon``'s JVM runs on the node."""
        return (f"{{ p=$(cat {shlex.quote(self.pid_file(daemon))} 2>/dev/null) && "
                f"[ -n \"$p\" ] && tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null "
                f"| grep -q -- '-Dproc_{daemon} '; }}")

    def start_command(self, daemon: str) -> str:
        """Start unless running; a stale pid file (its pid reused by another process after
        a reboot) is removed first, or Hadoop would refuse with "Stop it first"."""
        return (f"{self.running_test(daemon)} || {{ rm -f {shlex.quote(self.pid_file(daemon))}"
                f" && {self.name} --daemon start {daemon}; }}")

    def stop_daemon(self, node: Node, daemon: str, *, timeout: float = STOP_TIMEOUT) -> None:
        """Ask Hadoop to stop it, then make sure it is gone (``timeout`` s, then SIGKILL):
        a daemon left running would hold its ports and pid file. ``DeployError`` when
        even SIGKILL did not end it."""
        test = self.running_test(daemon)
        asked = self.runner.run(node, f"{self.name} --daemon stop {daemon} >/dev/null 2>&1; "
                                f"! {test}", timeout=120, check=False)
        if asked.exited == 0:
            return
        try:
            wait_for_probe(runner=self.runner, node=node, command=f"! {test}",
                           timeout=timeout, what=f"{node.name}: {daemon} to stop")
            return
        except TimeoutError_:
            pass
        self.runner.run(node, f"{test} && kill -9 \"$p\" 2>/dev/null; true", timeout=30,
                        check=False)
        try:
            wait_for_probe(runner=self.runner, node=node, command=f"! {test}",
                           timeout=KILL_SETTLE, what=f"{node.name}: {daemon} to die")
        except TimeoutError_ as exc:
            raise DeployError(f"{node.name}: {daemon} still runs after `{self.name} --daemon "
                              f"stop`, {timeout:.0f}s and SIGKILL") from exc

    def start(self) -> None:
        """The master's daemons all at once, then the worker daemon on every worker at
        once (workers register with the master's). Sets ``was_running``: whether the
        (first) master daemon already ran."""
        # A master daemon that already runs re-reads its exclude list before workers join: a
        # new worker on a removed worker's address must not be taken for that one.
        self.was_running = self.running(self.master, self.master_daemons[0])
        run_per_node(lambda daemon: self.on_master(self.start_command(daemon)),
                     self.master_daemons, what=f"{self.name}: start on {self.master.name}")
        if self.was_running:
            self.refresh_nodes()
        for daemon in self.worker_daemons:
            self.on_workers(self.start_command(daemon), what=f"start {daemon}")

    def stop(self) -> None:
        """Workers first, then the master; stopping a stopped daemon is not an error."""
        for daemon in self.worker_daemons:
            run_per_node(lambda node, daemon=daemon: self.stop_daemon(node, daemon),
                         self.workers, what=f"{self.name}: stop {daemon}",
                         on_done=self.on_node_done)
        for daemon in reversed(self.master_daemons):
            self.stop_daemon(self.master, daemon)

    def stop_on_worker(self, node: Node) -> None:
        for daemon in self.worker_daemons:
            self.stop_daemon(node, daemon)

    def running(self, node: Node, daemon: str) -> bool:
        return self.runner.run(node, self.running_test(daemon), timeout=30,
                               check=False).exited == 0

    def diagnose(self) -> str:
        """Every daemon that is not running, with the last error lines of its log."""
        dead: list[str] = []
        logs = cluster_dirs(self.facts).hadoop_logs
        for node, daemons in ((self.master, self.master_daemons),
                              *((w, self.worker_daemons) for w in self.workers)):
            for daemon in daemons:
                try:
                    if self.running(node, daemon):
                        continue
                    pattern = shlex.quote(f"{logs}/hadoop-{self.facts.hadoop_user}-{daemon}-")
                    tail = self.runner.run(node, (
                        f"for f in $(ls -t {pattern}*.log {pattern}*.out 2>/dev/null | head -2); "
                        f"do grep -E -A4 'ERROR|FATAL|Exception' \"$f\" | tail -n 8; done"),
                        timeout=30, check=False).stdout.strip()
                except SparkOpenstackError as exc:
                    dead.append(f"[{node.name}] {daemon}: cannot check ({exc.message})")
                    continue
                dead.append(f"[{node.name}] {daemon} is not running"
                            + (f"; its log says:\n{tail}" if tail else " (its log is empty)"))
        return "\n".join(dead)

    def refresh_nodes(self) -> None:
        """Make the master daemon re-read its exclude list (no restart)."""
        raise NotImplementedError

    # -- health
    def parse_members(self, text: str) -> set[str]:
        """Host names and addresses of the worker daemons that joined."""
        raise NotImplementedError

    def health(self) -> Health:
        out = self.on_master(self.members_command, timeout=60).stdout
        joined = self.parse_members(out)
        up = [w.name for w in self.workers if w.name in joined or w.private_ip in joined]
        missing = tuple(w.name for w in self.workers if w.name not in up)
        return Health(service=self.name, expected=len(self.workers), actual=len(up),
                      detail=self.health_detail + (f" ({', '.join(up)})" if up else ""),
                      missing=missing,
                      urls={self.ui_label: f"http://{self.master.private_ip}:{self.ui_port}/"})
