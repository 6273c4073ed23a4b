"""YARN: a ResourceManager on the master, a NodeManager on every worker."""
from __future__ import annotations

import re

from .base import HadoopService


class YARN(HadoopService):
    name = "yarn"
    daemons = ("resourcemanager", "nodemanager")
    config_names = ("yarn-site.xml", "mapred-site.xml", "core-site.xml", "hadoop-env.sh",
                    "workers")
    count_command = "yarn node -list -states RUNNING"
    count_source = "yarn node -list"
    count_pattern = re.compile(r"Total Nodes:\s*(\d+)")
    count_noun = "running NodeManager"
    health_detail = "NodeManagers running"
    ui_label, ui_port = "ResourceManager UI", 8088

    def log_hint(self) -> str:
        return "/var/log/hadoop/*resourcemanager*.log and, on workers, *nodemanager*.log"
