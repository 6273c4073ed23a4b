"""Render the Hadoop and Spark configuration files of one node from the cluster's facts.

Templates live in ``config_files/`` (Jinja2, ``StrictUndefined``: a missing fact is an
error, never an empty string in a config file). Memory and cores come from the node's
flavor (``Node.ram_mb``, ``Node.vcpus``), never from constants in the templates. This
module only produces text; ``deploy`` and the services decide where and when it is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2

from . import paths
from .errors import ValidationError
from .model import ClusterFacts, Node

HADOOP_SERVICES = ("hdfs", "yarn")
ALL_SERVICES = ("hdfs", "yarn", "spark")

# Ports (Hadoop 3 / Spark defaults, named once so templates, services and health agree).
PORTS = {
    "namenode_rpc": 9000,
    "namenode_http": 9870,
    "secondary_http": 9868,
    "datanode_data": 9866,
    "datanode_http": 9864,
    "datanode_ipc": 9867,
    "resourcemanager_http": 8088,
    "spark_master": 7077,
    "spark_master_ui": 8080,
    "spark_worker_ui": 8081,
}

# Files that hold the cluster's secret: only the service account may read them.
SECRET_FILE_NAMES = ("spark-defaults.conf",)

# Flavor-derived sizing (MB). A node needs room for the OS and for each daemon's heap.
MIN_RAM_MB = 1024            # below this, the numbers are clamped to the minimums
MIN_SPARK_WORKER_MB = 512    # Spark refuses executors below ~450 MB
MIN_YARN_NODEMANAGER_MB = 1024


@dataclass(frozen=True)
class Dirs:
    """Every path a node's daemons use, so deploy can create exactly these."""

    hadoop_conf: str
    spark_conf: str
    hadoop_tmp: str
    namenode: tuple[str, ...]
    datanode: tuple[str, ...]
    yarn_local: tuple[str, ...]
    yarn_logs: str
    hadoop_logs: str
    hadoop_pids: str
    spark_logs: str
    spark_pids: str
    spark_work: str
    spark_local: str

    def for_node(self, *, is_master: bool, hadoop: bool) -> list[str]:
        """The directories ``deploy`` creates (owned by the service account) on a node."""
        wanted = [self.spark_logs, self.spark_pids, self.spark_work, self.spark_local]
        if hadoop:
            wanted += [self.hadoop_tmp, self.hadoop_logs, self.hadoop_pids, self.yarn_logs,
                       *self.yarn_local]
            wanted += list(self.namenode if is_master else self.datanode)
        return wanted


def cluster_dirs(facts: ClusterFacts) -> Dirs:
    data = facts.data_dirs or ("/data/hdfs",)
    return Dirs(
        hadoop_conf=f"{facts.hadoop_home}/etc/hadoop",
        spark_conf=f"{facts.spark_home}/conf",
        hadoop_tmp=f"{data[0]}/tmp",
        namenode=tuple(f"{d}/namenode" for d in data),
        datanode=tuple(f"{d}/datanode" for d in data),
        yarn_local=tuple(f"{d}/yarn-local" for d in data),
        yarn_logs="/var/log/hadoop/userlogs",
        hadoop_logs="/var/log/hadoop",
        hadoop_pids="/var/lib/hadoop/pids",
        spark_logs="/var/log/spark",
        spark_pids="/var/lib/spark/pids",
        spark_work="/var/lib/spark/work",
        spark_local="/var/lib/spark/local",
    )


@dataclass(frozen=True)
class NodeSizing:
    """What one node can give its daemons and containers, from its flavor."""

    ram_mb: int
    vcores: int
    os_reserve_mb: int
    daemon_heap_mb: int
    spark_worker_mb: int
    yarn_nodemanager_mb: int
    dfs_replication: int


def daemon_heap_mb(ram_mb: int) -> int:
    """Heap for each long-running daemon: small flavors (and shared sandbox hosts) stay small."""
    if ram_mb <= 4096:
        return 256
    if ram_mb <= 16384:
        return 512
    return 1024


def node_sizing(*, node: Node, services: tuple[str, ...], worker_count: int) -> NodeSizing:
    """Split a node's RAM between the OS, the daemons and Spark/YARN containers.

    The OS keeps a fifth of RAM (384 MB .. 4 GB); each daemon on the node gets
    ``daemon_heap_mb``; what remains goes to Spark workers and YARN NodeManagers, shared
    evenly when both run. Results never go below the minimums Spark/YARN need to start.
    """
    ram = max(node.ram_mb or 0, MIN_RAM_MB)
    vcores = max(node.vcpus or 0, 1)
    os_reserve = min(4096, max(384, ram // 5))
    heap = daemon_heap_mb(ram)
    # Daemons a worker runs: Spark Worker, DataNode, NodeManager (per service present).
    daemons = sum(1 for s in ("spark", "hdfs", "yarn") if s in services)
    usable = max(0, ram - os_reserve - heap * daemons)
    both = "spark" in services and "yarn" in services
    spark_share = usable // 2 if both else usable
    yarn_share = usable - spark_share if both else usable
    return NodeSizing(
        ram_mb=ram,
        vcores=vcores,
        os_reserve_mb=os_reserve,
        daemon_heap_mb=heap,
        spark_worker_mb=max(MIN_SPARK_WORKER_MB, spark_share // 64 * 64),
        yarn_nodemanager_mb=max(MIN_YARN_NODEMANAGER_MB, yarn_share // 64 * 64),
        dfs_replication=max(1, min(3, worker_count)),
    )


@dataclass(frozen=True)
class ClusterSizing:
    """Cluster-wide values (same on every node) taken from the smallest worker/master."""

    spark_executor_mb: int
    spark_driver_mb: int
    yarn_min_allocation_mb: int
    yarn_max_allocation_mb: int
    yarn_max_allocation_vcores: int
    mapreduce_task_mb: int
    mapreduce_task_heap_mb: int


def cluster_sizing(*, facts: ClusterFacts) -> ClusterSizing:
    workers = facts.workers or (facts.master,)
    per_worker = [node_sizing(node=w, services=facts.services, worker_count=len(workers))
                  for w in workers]
    smallest_spark = min(s.spark_worker_mb for s in per_worker)
    smallest_nm = min(s.yarn_nodemanager_mb for s in per_worker)
    fewest_cores = min(s.vcores for s in per_worker)
    master = node_sizing(node=facts.master, services=facts.services,
                         worker_count=len(workers))
    # The driver runs on the master next to the master daemons: half of what is left there.
    driver = max(512, min(4096, master.spark_worker_mb // 2 // 64 * 64))
    task = max(512, min(2048, smallest_nm // 2 // 64 * 64))
    return ClusterSizing(
        spark_executor_mb=smallest_spark,
        spark_driver_mb=driver,
        yarn_min_allocation_mb=min(512, smallest_nm),
        yarn_max_allocation_mb=smallest_nm,
        yarn_max_allocation_vcores=fewest_cores,
        mapreduce_task_mb=task,
        mapreduce_task_heap_mb=task * 4 // 5,
    )


def _file_url(path: str) -> str:
    return f"file://{path}"


def _environment(template_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["file_url"] = _file_url
    return env


def template_names() -> dict[str, list[str]]:
    """Template files per group (``hadoop``, ``spark``, ``system``), for tests and docs."""
    root = paths.config_files_dir()
    return {group: sorted(p.name for p in (root / group).glob("*.j2"))
            for group in ("hadoop", "spark", "system")}


def uses_hadoop(services) -> bool:
    return any(s in HADOOP_SERVICES for s in services)


def _context(*, facts: ClusterFacts, node: Node) -> dict:
    if node.name not in {n.name for n in facts.nodes}:
        raise ValidationError(f"node {node.name!r} is not part of cluster {facts.cluster_name!r}")
    if "spark" in facts.services and not facts.spark_secret:
        raise ValidationError(
            f"cluster {facts.cluster_name!r} has no Spark secret; spark.authenticate needs one",
            hint="deploy_cluster generates one; pass facts from the cluster, not hand-made")
    return {
        "facts": facts,
        "node": node,
        "master": facts.master,
        "workers": facts.workers,
        "is_master": node.name == facts.master.name,
        "hadoop": uses_hadoop(facts.services),
        "sizing": node_sizing(node=node, services=facts.services,
                              worker_count=len(facts.workers)),
        "cluster_sizing": cluster_sizing(facts=facts),
        "dirs": cluster_dirs(facts),
        "ports": PORTS,
    }


def render_node_configs(*, facts: ClusterFacts, node: Node) -> dict[str, str]:
    """``{absolute path on the node: file content}`` for one node's Hadoop/Spark configs.

    Hadoop files are rendered only when HDFS or YARN is among ``facts.services`` (an image
    without Hadoop has no ``/opt/hadoop`` to put them in).
    """
    context = _context(facts=facts, node=node)
    root = paths.config_files_dir()
    dirs = context["dirs"]
    groups = [("spark", dirs.spark_conf)]
    if context["hadoop"]:
        groups.insert(0, ("hadoop", dirs.hadoop_conf))
    rendered: dict[str, str] = {}
    for group, dest_dir in groups:
        env = _environment(root / group)
        for name in sorted(p.name for p in (root / group).glob("*.j2")):
            rendered[f"{dest_dir}/{name[:-3]}"] = env.get_template(name).render(**context)
    return rendered


def render_etc_hosts(*, facts: ClusterFacts) -> str:
    """The /etc/hosts every node gets: real private addresses, never 127.0.1.1."""
    env = _environment(paths.config_files_dir() / "system")
    return env.get_template("hosts.j2").render(facts=facts)


def node_config_files(*, facts: ClusterFacts, node: Node) -> dict[str, tuple[str, int]]:
    """``render_node_configs`` with each file's mode: what a runner's ``put_files`` takes."""
    return {path: (text, config_file_mode(path))
            for path, text in render_node_configs(facts=facts, node=node).items()}


def config_file_mode(path: str) -> int:
    """0600 for files holding the cluster secret, 0755 for scripts, 0644 otherwise."""
    name = path.rsplit("/", 1)[-1]
    if name in SECRET_FILE_NAMES:
        return 0o600
    if name.endswith(".sh"):
        return 0o755
    return 0o644
