"""Real YARN daemons per simulated node on loopback addresses: ``YarnRunner`` runs each
node's command in a local bash against the sandbox mirror's Hadoop 3 release (see
support.hadoop), for tests/unit/test_services.py and tests/unit/test_scale.py."""
from __future__ import annotations

import dataclasses
import getpass
import shlex
import shutil
import subprocess
from pathlib import Path

from support.facts import make_facts
from support.hadoop import clean_env, free_ports, hadoop_env, kill_all, pids_in, site
from spark_openstack.errors import DeployError
from spark_openstack.transport import CommandResult

PIDS, LOGS = "/var/lib/hadoop/pids", "/var/log/hadoop"
ADDRESS = {"demo-master": "127.0.0.1", "demo-worker-1": "127.0.0.2", "demo-worker-2": "127.0.0.3"}


def loopback_facts():
    """make_facts' cluster, its nodes on loopback addresses (NodeManagers report these)."""
    facts = make_facts(workers=2, services=("yarn", "spark"))
    return dataclasses.replace(
        facts, master=dataclasses.replace(facts.master, private_ip=ADDRESS["demo-master"]),
        workers=tuple(dataclasses.replace(w, private_ip=ADDRESS[w.name]) for w in facts.workers))



class YarnRunner:
    """Runs each node's command in a local bash against the real Hadoop 3 release: the
    node's own HADOOP_CONF_DIR (its yarn-site.xml and hadoop-env.sh), pid and log folders
    under ``state/<node>``. Each `yarn` the command runs is the real one; its arguments are
    written to ``argv.log`` first (a shell function, then ``command yarn``)."""

    def __init__(self, tmp_path: Path, home: Path, facts):
        self.home, self.facts = home, facts
        self.log = tmp_path / "argv.log"
        self.state = tmp_path / "state"
        self.env = clean_env(home)
        self.pid_dirs: dict[str, Path] = {}
        names = ("address", "scheduler", "tracker", "admin", "webapp")
        self.rm = dict(zip(names, free_ports(len(names))))
        for node in facts.nodes:
            self.configure(node)

    def node_dir(self, node, kind: str) -> Path:
        return self.state / node.name / kind

    def conf(self, node) -> Path:
        return self.node_dir(node, "conf")

    def configure(self, node, *, opens: bool = True, pid_dir: Path | None = None) -> None:
        conf = self.conf(node)
        if not conf.exists():
            shutil.copytree(self.home / "etc/hadoop", conf)
        ip = node.private_ip
        nm, localizer, web = free_ports(3, ip)
        lo = self.facts.master.private_ip
        (conf / "yarn-site.xml").write_text(site({
            "yarn.resourcemanager.hostname": lo, "yarn.resourcemanager.bind-host": lo,
            **{f"yarn.resourcemanager.{k}": f"{lo}:{self.rm[n]}" for k, n in (
                ("address", "address"), ("scheduler.address", "scheduler"),
                ("resource-tracker.address", "tracker"), ("admin.address", "admin"),
                ("webapp.address", "webapp"))},
            "yarn.resourcemanager.connect.max-wait.ms": "4000",
            "yarn.resourcemanager.connect.retry-interval.ms": "500",
            "yarn.resourcemanager.nodes.exclude-path": f"{conf}/yarn.exclude",
            "yarn.acl.enable": "true", "yarn.admin.acl": getpass.getuser(),
            "yarn.nodemanager.bind-host": ip,
            "yarn.nodemanager.address": f"{ip}:{nm}",
            "yarn.nodemanager.localizer.address": f"{ip}:{localizer}",
            "yarn.nodemanager.webapp.address": f"{ip}:{web}",
            "yarn.nodemanager.resource.memory-mb": "1024",
            "yarn.nodemanager.resource.cpu-vcores": "1",
            "yarn.nodemanager.vmem-check-enabled": "false",
            "yarn.nodemanager.local-dirs": str(self.node_dir(node, "nmlocal")),
            "yarn.nodemanager.log-dirs": str(self.node_dir(node, "nmlogs"))}))
        (conf / "yarn.exclude").write_text("")
        pids = pid_dir or self.node_dir(node, "pids")
        self.pid_dirs[node.name] = pids
        (conf / "hadoop-env.sh").write_text(hadoop_env(
            logs=self.node_dir(node, "logs"), pids=pids, ident="hduser", opens=opens))

    def run(self, node, command, *, timeout=None, check=True):
        pids, logs = self.pid_dirs[node.name], self.node_dir(node, "logs")
        command = command.replace(PIDS, str(pids)).replace(LOGS, str(logs))
        traced = (f'yarn() {{ echo "{node.name} yarn $*" >> {shlex.quote(str(self.log))}; '
                  f'command yarn "$@"; }}\n{command}')
        env = dict(self.env, HADOOP_CONF_DIR=str(self.conf(node)))
        proc = subprocess.run(["bash", "-c", traced], env=env, capture_output=True,
                              text=True, timeout=timeout or 120, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise DeployError(f"{node.name}: `{command}` exited {proc.returncode}: "
                              f"{proc.stderr.strip()}")
        return CommandResult(proc.stdout, proc.stderr, proc.returncode)

    def put_files(self, node, files, *, owner="hduser"):
        pass

    def close(self):
        pass

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def pid(self, node, daemon: str) -> int | None:
        f = self.pid_dirs[node.name] / f"hadoop-hduser-{daemon}.pid"
        return int(f.read_text()) if f.exists() else None

    def yarn(self, node, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.home / "bin/yarn"), *args], capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL,
                              env=dict(self.env, HADOOP_CONF_DIR=str(self.conf(node))))

    def kill_all(self) -> None:
        kill_all(pids_in(*self.pid_dirs.values()))
