"""Spark standalone: a Master on the master, a Worker on every worker, bound to private IPs."""
from __future__ import annotations

import json
import shlex

from ..errors import DeployError, TimeoutError_
from ..ports import SPARK_PORTS
from ..probes import wait_for_probe
from ..render import PORTS
from .base import Health, Service

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


class Spark(Service):
    name = "spark"
    daemons = ("master", "worker")
    config_names = ("spark-env.sh", "spark-defaults.conf", "workers")
    ports = SPARK_PORTS

    @property
    def master_url(self) -> str:
        return f"spark://{self.master.private_ip}:{PORTS['spark_master']}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.master.private_ip}:{PORTS['spark_master_ui']}"

    def _sbin(self, script: str) -> str:
        return shlex.quote(f"{self.facts.spark_home}/sbin/{script}")

    def _running(self, cls: str) -> str:
        return f"{self._sbin('spark-daemon.sh')} status {cls} 1 >/dev/null 2>&1"

    def start(self) -> None:
        """Master, wait for its UI to answer, then every Worker at once."""
        self.on_master(f"{self._running(MASTER_CLASS)} || {self._sbin('start-master.sh')}")
        self.wait_master_ui()
        self.on_workers(f"{self._running(WORKER_CLASS)} || "
                        f"{self._sbin('start-worker.sh')} {shlex.quote(self.master_url)}",
                        what="start worker")

    def wait_master_ui(self, *, timeout: int = 120) -> None:
        """Until the master's UI answers (one GET per try, on the master), for
        ``timeout`` seconds: the workers register through it."""
        url = shlex.quote(self.ui_url + "/json/")
        probe = ("python3 -c \"import sys,urllib.request; "
                 f"urllib.request.urlopen(sys.argv[1], timeout=2)\" {url} 2>/dev/null")
        try:
            wait_for_probe(runner=self.runner, node=self.master, command=probe,
                           timeout=timeout, what=f"spark: the master UI {self.ui_url}",
                           interval=0.25, max_interval=1.0)
        except TimeoutError_ as exc:
            log = self.on_master("tail -n 30 /var/log/spark/*Master*.out 2>/dev/null",
                                 check=False).stdout
            raise DeployError(f"spark: the master UI {self.ui_url} did not answer in "
                              f"{timeout}s\n{log.strip()}",
                              hint=f"see /var/log/spark on {self.master.name}") from exc

    def stop_worker_command(self) -> str:
        """Stop this node's Worker (nothing to stop is fine)."""
        return f"{self._sbin('stop-worker.sh')} || true"

    def stop(self) -> None:
        self.on_workers(self.stop_worker_command(), what="stop worker")
        self.on_master(f"{self._sbin('stop-master.sh')} || true")

    def master_state(self) -> dict:
        """The master's JSON status (workers, apps), fetched on the master itself."""
        fetch = ("python3 -c \"import sys,urllib.request; "
                 "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10)"
                 ".read().decode())\" " + shlex.quote(self.ui_url + "/json/"))
        out = self.on_master(fetch, timeout=60).stdout
        try:
            return json.loads(out)
        except ValueError as exc:
            raise DeployError(f"spark: {self.ui_url}/json/ did not return JSON: "
                              f"{out.strip()[:200]!r}") from exc

    def health(self) -> Health:
        state = self.master_state()
        hosts = {w.get("host", "?") for w in state.get("workers", [])
                 if w.get("state") == "ALIVE"}
        alive = [n.name for n in self.workers if n.private_ip in hosts or n.name in hosts]
        missing = tuple(n.name for n in self.workers if n.name not in alive)
        return Health(service=self.name, expected=len(self.workers), actual=len(alive),
                      detail=f"workers ALIVE ({', '.join(alive) or 'none'})", missing=missing,
                      urls={"Spark master UI": self.ui_url + "/",
                            "Spark master": self.master_url})

    def log_hint(self) -> str:
        return "/var/log/spark/*Master*.out and, on workers, /var/log/spark/*Worker*.out"
