"""HDFS: a NameNode on the master, a DataNode on every worker."""
from __future__ import annotations

import json
import re
import shlex

from ..errors import DeployError
from ..ports import UNSAFE, Port, port_number
from ..dirs import cluster_dirs
from ..probes import wait_for_probe
from ..transport import SERVICE_USER
from .base import HadoopService

_REPORT_NAME = re.compile(r"^Name:\s*(?P<ip>[^:\s]+):\d+(?:\s*\((?P<host>[^)]+)\))?", re.M)
_REPORT_HOSTNAME = re.compile(r"^Hostname:\s*(?P<host>\S+)", re.M)
_REPORT_DECOMMISSION = re.compile(r"^Decommission Status\s*:\s*(?P<status>.+)$", re.M)


def live_datanodes(report: str) -> set[str]:
    """Names and addresses of the in-service DataNodes in ``hdfs dfsadmin -report -live``.

    Each DataNode block has ``Name: <ip>:<port> (<host>)`` and ``Hostname: <host>``; the
    host is the one it registered with (``dfs.datanode.hostname``, its node name here).
    A block whose ``Decommission Status`` is not Normal is left out: a decommissioned
    DataNode stays in the live list for minutes after it stopped, but serves nothing.
    """
    found: set[str] = set()
    starts = [m.start() for m in _REPORT_NAME.finditer(report)] + [len(report)]
    for begin, end in zip(starts, starts[1:]):
        block = report[begin:end]
        status = _REPORT_DECOMMISSION.search(block)
        if status and status["status"].strip().lower() != "normal":
            continue
        match = _REPORT_NAME.match(block)
        found.add(match["ip"])
        if match["host"]:
            found.add(match["host"])
        found.update(m["host"] for m in _REPORT_HOSTNAME.finditer(block))
    return found


class HDFS(HadoopService):
    name = "hdfs"
    title = "HDFS"
    master_daemons = ("namenode", "secondarynamenode")
    worker_daemons = ("datanode",)
    jvms = {"master": ("NameNode", "SecondaryNameNode"), "worker": ("DataNode",)}
    site_files = ("core-site.xml", "hdfs-site.xml")
    restart_on = site_files
    config_files = dict.fromkeys((*site_files, "dfs.exclude", "hadoop-env.sh", "workers"),
                                 "hadoop_conf")
    ports = (
        Port("namenode_rpc", 9000),
        Port("namenode_http", 9870, web_ui=True, exposure=UNSAFE, ui_name="hdfs-namenode",
             why="HDFS trusts ?user.name=, so anyone there can read, change and delete all "
                 "HDFS data as the HDFS superuser"),
        Port("secondary_http", 9868, web_ui=True),
        Port("datanode_data", 9866),
        Port("datanode_http", 9864, web_ui=True),
        Port("datanode_ipc", 9867),
    )
    members_command = "hdfs dfsadmin -report -live"
    health_detail = "DataNodes live"
    ui_label, ui_port = "NameNode UI", port_number(ports, "namenode_http")

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

    # -- first start: format; then the NameNode's port and /user/hduser
    def setup_needed(self) -> str:
        return "" if self.is_formatted() else f"formatting HDFS on {self.master.name}"

    def setup(self) -> None:
        self.format()

    def ready_steps(self, *, timeout: float) -> dict:
        """A NameNode that was running is up, out of safe mode and has /user/hduser. Else
        its clients are JVMs that fail while it is not up yet: a cheap probe of its port
        first, then /user/hduser (beside the health wait)."""
        if self.was_running:
            return {}
        self.wait_for_port(self.port("namenode_rpc"), timeout=timeout)
        return {"user dir": self.create_user_dir}

    def create_user_dir(self, *, user: str = SERVICE_USER) -> None:
        """``/user/<user>`` owned by that user, once the NameNode has left safe mode."""
        home = shlex.quote(f"/user/{user}")
        self.on_master("hdfs dfsadmin -safemode wait", timeout=300)
        self.on_master(f"hdfs dfs -mkdir -p {home} && "
                       f"hdfs dfs -chown {shlex.quote(user)}:{shlex.quote(user)} {home}")

    def log_hint(self) -> str:
        logs = cluster_dirs(self.facts).hadoop_logs
        return f"{logs}/*namenode*.log and, on workers, {logs}/*datanode*.log"

    # -- decommission (remove-workers, `fab decommission`)
    def refresh_nodes(self) -> None:
        """Make the NameNode re-read ``dfs.hosts.exclude`` (no restart needed)."""
        self.on_master("hdfs dfsadmin -refreshNodes", timeout=120)

    def default_replication(self) -> int:
        """The replication factor the RUNNING NameNode uses (its /conf servlet): the
        rendered hdfs-site may say more since workers were added, but the NameNode reads
        it only when it starts."""
        url = f"http://{self.master.private_ip}:{self.port('namenode_http')}/conf"
        script = ("import sys,urllib.request,xml.etree.ElementTree as E\n"
                  "r=E.fromstring(urllib.request.urlopen(sys.argv[1],timeout=20).read())\n"
                  "print(next(p.findtext('value') for p in r.iter('property') "
                  "if p.findtext('name')=='dfs.replication'))\n")
        out = self.on_master(f"python3 -c {shlex.quote(script)} {shlex.quote(url)}",
                             timeout=60, check=False).stdout.strip()
        value = out.splitlines()[-1].strip() if out else ""
        if not value.isdigit():
            raise DeployError(f"hdfs: could not read the NameNode's dfs.replication from "
                              f"{url}: {out[-200:]!r}",
                              hint="is HDFS running? `spark-openstack status` says")
        return int(value)

    def max_file_replication(self) -> int:
        """The highest replication any file in HDFS asks for (0 when HDFS is empty)."""
        out = self.on_master("hdfs dfs -ls -R / 2>/dev/null | awk '$1 !~ /^d/ && $2 ~ /^[0-9]+$/ "
                             "{ if ($2 > m) m = $2 } END { print m + 0 }'",
                             timeout=600).stdout.strip()
        return int(out.splitlines()[-1]) if out and out.splitlines()[-1].isdigit() else 0

    def set_replication(self, replication: int, *, timeout: float = 3600) -> None:
        """Lower (or raise) every file's replication and wait until HDFS has done it: no
        block short of replicas, none with replicas to spare, none left to delete (the
        NameNode's FSNamesystem counters, one JMX read a round, no JVM)."""
        self.on_master(f"hdfs dfs -setrep -R {int(replication)} /", timeout=600)
        url = (f"http://{self.master.private_ip}:{self.port('namenode_http')}/jmx?"
               "qry=Hadoop:service=NameNode,name=FSNamesystem")
        probe = ("import json,sys,urllib.request\n"
                 "b=json.load(urllib.request.urlopen(sys.argv[1],timeout=20))['beans'][0]\n"
                 "left={k:b[k] for k in ('UnderReplicatedBlocks','ExcessBlocks',"
                 "'PendingDeletionBlocks','PendingReplicationBlocks')}\n"
                 "print(left)\n"
                 "sys.exit(1 if any(left.values()) else 0)\n")
        wait_for_probe(runner=self.runner, node=self.master,
                       command=f"python3 -c {shlex.quote(probe)} {shlex.quote(url)}",
                       timeout=timeout, what=f"hdfs: every file at replication {replication}",
                       interval=1.0, max_interval=5.0,
                       hint="look at the NameNode's web UI: which blocks wait for replicas")

    def datanode_states(self) -> dict[str, dict]:
        """``{host name: {"state": admin state, "left": blocks still to re-replicate,
        "live": bool}}`` from the NameNode's JMX (one HTTP request on the master, no JVM).

        The admin state is "In Service", "Decommission In Progress" or "Decommissioned";
        ``left`` counts the blocks of a decommissioning node that still lack replicas
        elsewhere (NameNodeInfo's DecomNodes).
        """
        url = (f"http://{self.master.private_ip}:{self.port('namenode_http')}/jmx?"
               "qry=Hadoop:service=NameNode,name=NameNodeInfo")
        script = (
            "import json,sys,urllib.request\n"
            "b=json.load(urllib.request.urlopen(sys.argv[1],timeout=20))['beans'][0]\n"
            "out={}\n"
            "for k,v in json.loads(b.get('LiveNodes') or '{}').items():\n"
            "  out[k.rsplit(':',1)[0]]={'state':v.get('adminState',''),'left':0,'live':True}\n"
            "for k,v in json.loads(b.get('DeadNodes') or '{}').items():\n"
            "  h=k.rsplit(':',1)[0]\n"
            "  out.setdefault(h,{'state':'Decommissioned' if v.get('decommissioned') "
            "else 'Dead','left':0,'live':False})\n"
            "for k,v in json.loads(b.get('DecomNodes') or '{}').items():\n"
            "  h=k.rsplit(':',1)[0]\n"
            "  out.setdefault(h,{'state':'Decommission In Progress','live':True})\n"
            "  out[h]['left']=int(v.get('underReplicatedBlocks',0))\n"
            "print(json.dumps(out))\n")
        result = self.on_master(f"python3 -c {shlex.quote(script)} {shlex.quote(url)}",
                                timeout=60)
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError) as exc:
            raise DeployError(f"hdfs: the NameNode's JMX ({url}) gave no node states: "
                              f"{result.stdout.strip()[:200]!r}") from exc

    def fsck_problems(self) -> str:
        """"" when ``hdfs fsck /`` finds every block with a live replica, else its summary."""
        result = self.on_master("hdfs fsck / 2>&1 | tail -n 40", timeout=1800, check=False)
        text = result.stdout
        healthy = re.search(r"The filesystem under path '/' is HEALTHY", text)
        missing = re.search(r"Missing blocks:\s*(\d+)", text)
        corrupt = re.search(r"Corrupt blocks:\s*(\d+)", text)
        if healthy and not (missing and int(missing[1])) and not (corrupt and int(corrupt[1])):
            return ""
        return "\n".join(line for line in text.splitlines() if line.strip())[-1500:] \
            or "hdfs fsck / gave no answer"
