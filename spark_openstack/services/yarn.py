"""YARN: a ResourceManager on the master, a NodeManager on every worker."""
from __future__ import annotations

import re

from ..ports import UNSAFE, Port, port_number
from ..dirs import cluster_dirs
from .base import HadoopService

# `yarn node -list` rows: "<host>:<port>  RUNNING  <host>:<http port>  <containers>"
_NODE_ROW = re.compile(r"^\s*(?P<host>[^\s:]+):\d+\s+RUNNING\b", re.M)


#: Client options that make a ``yarn`` command fail within seconds when no ResourceManager
#: answers: by default the client retries for 15 minutes (yarn.resourcemanager.connect.
#: max-wait.ms), each try itself retried 10 times (ipc.client.connect.max.retries).
FAIL_FAST = ("-D yarn.resourcemanager.connect.max-wait.ms=3000 "
             "-D yarn.resourcemanager.connect.retry-interval.ms=1000 "
             "-D ipc.client.connect.max.retries=0 -D ipc.client.connect.max.retries.on.timeouts=0")

_ANY_ROW = re.compile(r"^\s*(?P<host>[^\s:]+):\d+\s+(?:RUNNING|DECOMMISSIONING)\b", re.M)


def running_nodemanagers(listing: str) -> set[str]:
    """Host names of the RUNNING NodeManagers in ``yarn node -list`` output."""
    return {m["host"] for m in _NODE_ROW.finditer(listing)}


class YARN(HadoopService):
    name = "yarn"
    title = "YARN"
    master_daemons = ("resourcemanager",)
    worker_daemons = ("nodemanager",)
    jvms = {"master": ("ResourceManager",), "worker": ("NodeManager",)}
    site_files = ("core-site.xml", "yarn-site.xml", "mapred-site.xml",
                  "capacity-scheduler.xml")
    restart_on = site_files
    #: With HDFS alone the ResourceManager's files stay Apache's.
    config_files = dict.fromkeys((*site_files, "yarn.exclude", "hadoop-env.sh", "workers"),
                                 "hadoop_conf")
    ports = (
        Port("resourcemanager_http", 8088, web_ui=True, exposure=UNSAFE,
             ui_name="yarn-resourcemanager",
             why="YARN's REST API accepts new applications from anyone there: they can run "
                 "code on the cluster"),
        Port("nodemanager_http", 8042, web_ui=True),
        # MapReduce's shuffle handler (a NodeManager aux-service) has no bind-address
        # setting: it listens on every address, so only the security group keeps it in the
        # cluster (each request must also carry the job's token).
        Port("mapreduce_shuffle", 13562),
    )
    members_command = f"yarn node {FAIL_FAST} -list -states RUNNING"
    health_detail = "NodeManagers running"
    ui_label, ui_port = "ResourceManager UI", port_number(ports, "resourcemanager_http")

    def parse_members(self, text: str) -> set[str]:
        return running_nodemanagers(text)

    def log_hint(self) -> str:
        logs = cluster_dirs(self.facts).hadoop_logs
        return f"{logs}/*resourcemanager*.log and, on workers, {logs}/*nodemanager*.log"

    # -- decommission (remove-workers, `fab decommission`)
    def refresh_nodes(self, *, graceful_seconds: int = 0) -> None:
        """Make the ResourceManager re-read its exclude list; listed NodeManagers are
        decommissioned gracefully (running containers get ``graceful_seconds`` to end,
        tracked by the ResourceManager itself: ``-server``), others recommissioned."""
        graceful = f" -g {int(graceful_seconds)} -server" if graceful_seconds else ""
        self.on_master(f"yarn rmadmin -refreshNodes{graceful}", timeout=120)

    def running_nodes(self) -> set[str]:
        """Host names of the NodeManagers still RUNNING or DECOMMISSIONING."""
        out = self.on_master(f"yarn node {FAIL_FAST} -list -states RUNNING,DECOMMISSIONING",
                             timeout=60).stdout
        return {m["host"] for m in _ANY_ROW.finditer(out)}
