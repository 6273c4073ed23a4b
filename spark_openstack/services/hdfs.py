"""HDFS: a NameNode on the master, a DataNode on every worker."""
from __future__ import annotations

import re
import shlex

from ..errors import DeployError
from ..ports import HDFS_PORTS
from ..render import PORTS, cluster_dirs
from .base import SERVICE_USER, HadoopService

_REPORT_NAME = re.compile(r"^Name:\s*(?P<ip>[^:\s]+):\d+(?:\s*\((?P<host>[^)]+)\))?", re.M)
_REPORT_HOSTNAME = re.compile(r"^Hostname:\s*(?P<host>\S+)", re.M)


def live_datanodes(report: str) -> set[str]:
    """Names and addresses of the DataNodes in ``hdfs dfsadmin -report -live`` output.

    Each DataNode block has ``Name: <ip>:<port> (<host>)`` and ``Hostname: <host>``; the
    host is the one it registered with (``dfs.datanode.hostname``, its node name here).
    """
    found: set[str] = set()
    for match in _REPORT_NAME.finditer(report):
        found.add(match["ip"])
        if match["host"]:
            found.add(match["host"])
    found.update(m["host"] for m in _REPORT_HOSTNAME.finditer(report))
    return found


class HDFS(HadoopService):
    name = "hdfs"
    master_daemons = ("namenode", "secondarynamenode")
    worker_daemons = ("datanode",)
    config_names = ("core-site.xml", "hdfs-site.xml", "hadoop-env.sh", "workers",
                    "dfs.exclude")
    ports = HDFS_PORTS
    members_command = "hdfs dfsadmin -report -live"
    health_detail = "DataNodes live"
    ui_label, ui_port = "NameNode UI", PORTS["namenode_http"]

    def parse_members(self, text: str) -> set[str]:
        return live_datanodes(text)

    @property
    def _version_file(self) -> str:
        return f"{cluster_dirs(self.facts).namenode[0]}/current/VERSION"

    def is_formatted(self) -> bool:
        """A formatted NameNode has ``current/VERSION`` in its first name dir."""
        result = self.on_master(f"test -f {shlex.quote(self._version_file)}", check=False)
        return result.exited == 0

    def format(self, *, force: bool = False) -> bool:
        """Format the NameNode once. Reformatting erases HDFS, so it needs ``force``.

        Returns True when it formatted, and raises ``DeployError`` when the NameNode is
        already formatted and ``force`` is not set.
        """
        if self.is_formatted() and not force:
            raise DeployError(
                f"HDFS on {self.master.name} is already formatted ({self._version_file}); "
                "formatting again erases every file stored in HDFS",
                hint="to really start over: `fab format_hdfs --force` on the master "
                     "(stop HDFS first)")
        command = (f"hdfs namenode -format -nonInteractive "
                   f"-clusterid {shlex.quote('spark-openstack-' + self.facts.cluster_name)}")
        if force:
            command += " -force"
        self.on_master(command, timeout=300)
        return True

    def create_user_dir(self, *, user: str = SERVICE_USER) -> None:
        """``/user/<user>`` owned by that user, once the NameNode has left safe mode."""
        home = shlex.quote(f"/user/{user}")
        self.on_master("hdfs dfsadmin -safemode wait", timeout=300)
        self.on_master(f"hdfs dfs -mkdir -p {home} && "
                       f"hdfs dfs -chown {shlex.quote(user)}:{shlex.quote(user)} {home}")

    def log_hint(self) -> str:
        logs = cluster_dirs(self.facts).hadoop_logs
        return f"{logs}/*namenode*.log and, on workers, {logs}/*datanode*.log"
