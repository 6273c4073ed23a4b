"""YARN: a ResourceManager on the master, a NodeManager on every worker."""
from __future__ import annotations

import re

from ..errors import DeployError
from .base import Health, Service

_TOTAL = re.compile(r"Total Nodes:\s*(\d+)")


class YARN(Service):
    name = "yarn"
    daemons = ("resourcemanager", "nodemanager")
    config_names = ("yarn-site.xml", "mapred-site.xml", "core-site.xml", "hadoop-env.sh",
                    "workers")

    def start(self) -> None:
        """ResourceManager first, then all NodeManagers at once."""
        self.on_master("yarn --daemon status resourcemanager >/dev/null 2>&1 "
                       "|| yarn --daemon start resourcemanager")
        self.on_workers("yarn --daemon status nodemanager >/dev/null 2>&1 "
                        "|| yarn --daemon start nodemanager", what="start nodemanager")

    def stop(self) -> None:
        self.on_workers("yarn --daemon stop nodemanager || true", what="stop nodemanager")
        self.on_master("yarn --daemon stop resourcemanager || true")

    def health(self) -> Health:
        out = self.on_master("yarn node -list -states RUNNING", timeout=60).stdout
        match = _TOTAL.search(out)
        if not match:
            raise DeployError(f"yarn: cannot read the running NodeManager count from "
                              f"`yarn node -list`: {out.strip()[:200]!r}")
        return Health(service=self.name, expected=len(self.workers), actual=int(match[1]),
                      detail="NodeManagers running",
                      urls={"ResourceManager UI": f"http://{self.master.private_ip}:8088/"})

    def log_hint(self) -> str:
        return "/var/log/hadoop/*resourcemanager*.log and, on workers, *nodemanager*.log"
