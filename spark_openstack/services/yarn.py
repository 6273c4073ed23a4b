"""YARN: a ResourceManager on the master, a NodeManager on every worker."""
from __future__ import annotations

import re

from ..ports import YARN_PORTS
from ..render import PORTS, cluster_dirs
from .base import HadoopService

# `yarn node -list` rows: "<host>:<port>  RUNNING  <host>:<http port>  <containers>"
_NODE_ROW = re.compile(r"^\s*(?P<host>[^\s:]+):\d+\s+RUNNING\b", re.M)


def running_nodemanagers(listing: str) -> set[str]:
    """Host names of the RUNNING NodeManagers in ``yarn node -list`` output."""
    return {m["host"] for m in _NODE_ROW.finditer(listing)}


class YARN(HadoopService):
    name = "yarn"
    master_daemons = ("resourcemanager",)
    worker_daemons = ("nodemanager",)
    config_names = ("yarn-site.xml", "mapred-site.xml", "core-site.xml", "hadoop-env.sh",
                    "workers", "yarn.exclude")
    ports = YARN_PORTS
    members_command = "yarn node -list -states RUNNING"
    health_detail = "NodeManagers running"
    ui_label, ui_port = "ResourceManager UI", PORTS["resourcemanager_http"]

    def parse_members(self, text: str) -> set[str]:
        return running_nodemanagers(text)

    def log_hint(self) -> str:
        logs = cluster_dirs(self.facts).hadoop_logs
        return f"{logs}/*resourcemanager*.log and, on workers, {logs}/*nodemanager*.log"
