"""Spark standalone: a Master on the master, a Worker on every worker, bound to private IPs."""
from __future__ import annotations

import json
import shlex

from ..errors import DeployError, TimeoutError_
from ..ports import SAFE, Port
from ..probes import wait_for_probe
from .base import Health, Service

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: Where the cluster's own Spark settings (``--conf``, configure-cluster) are written.
SETTINGS_FILE = "spark-defaults.conf"


class Spark(Service):
    name = "spark"
    title = "Spark standalone"
    jvms = {"master": ("Spark Master",), "worker": ("Spark Worker",)}
    restart_on = (SETTINGS_FILE,)     # the daemons read it at start
    template_dir = "spark"
    config_files = dict.fromkeys(("spark-defaults.conf", "spark-env.sh", "workers"),
                                 "spark_conf")
    files_without_it = True           # spark-submit on YARN reads them as well
    ports = (
        Port("spark_master", 7077),
        Port("spark_master_ui", 8080, web_ui=True, exposure=SAFE, ui_name="spark-master",
             why="read-only to an anonymous visitor (kill buttons and REST submission are "
                 "off)"),
        Port("spark_app_ui", 4040, web_ui=True, exposure=SAFE, ui_name="spark-app",
             why="read-only view of a running application (Spark's default spark.ui.port)"),
        Port("spark_worker_ui", 8081, web_ui=True),
    )

    @property
    def master_url(self) -> str:
        return f"spark://{self.master.private_ip}:{self.port('spark_master')}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.master.private_ip}:{self.port('spark_master_ui')}"

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

    def stop_on_worker(self, node) -> None:
        self.runner.run(node, self.stop_worker_command(), timeout=120, check=False)

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
