"""Typed facts passed between layers (spec -> provider -> nodes -> services -> health).

Plain frozen dataclasses: the provider builds ``Node`` objects from what the cloud says,
the cluster lifecycle turns them into ``ClusterFacts``, and services/templates read only
``ClusterFacts`` (never the cloud). ``ClusterFacts`` round-trips through JSON because the
tool writes it on the master for ``fabfile.py``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

# Server metadata keys (the cloud is the source of truth: no local state file).
META_CLUSTER = "spark_openstack_cluster"
META_ROLE = "spark_openstack_role"
# One run of launch or create-image: stamped into everything the run creates, so a failed
# or interrupted run finds and deletes exactly its own things (even one whose create
# response was lost) and never another run's.
META_RUN = "spark_openstack_run"
#: Metadata key of a create-image builder server (its value: the image name).
BUILDER_METADATA_KEY = "spark_openstack_image_builder"
# What a launch records on every server for the commands after it.
META_SSH_USER = "spark_openstack_ssh_user"
META_SERVICES = "spark_openstack_services"
META_DATA_DIRS = "spark_openstack_data_dirs"
# Server tags (set where the compute API microversion allows, >= 2.26).
TAG_PREFIX_CLUSTER = "spark-openstack-cluster:"
TAG_PREFIX_ROLE = "spark-openstack-role:"

ROLE_MASTER = "master"
ROLE_WORKER = "worker"

# Where the facts file lives on the master (read by fabfile.py).
FACTS_PATH_ON_MASTER = "/etc/spark-openstack/cluster.json"
#: What create-image writes into every image it bakes (versions, homes, services), read by
#: deploy to know what the image can run.
IMAGE_MARKER_PATH = "/etc/spark-openstack/image.json"

# Where HDFS keeps its blocks and metadata unless --data-dir says otherwise: under /var/lib,
# which hosts with a read-only root (and the sandbox) still let the service user write.
DEFAULT_DATA_DIR = "/var/lib/hadoop/hdfs"


def master_name(cluster: str) -> str:
    return f"{cluster}-master"


def worker_name(cluster: str, index: int) -> str:
    """Workers are numbered from 1: ``demo-worker-1``, ``demo-worker-2`` ..."""
    return f"{cluster}-worker-{index}"


@dataclass(frozen=True)
class Node:
    """One server of a cluster, as the cloud reports it."""

    name: str
    role: str                      # ROLE_MASTER | ROLE_WORKER
    server_id: str = ""
    private_ip: str = ""
    public_ip: str | None = None   # floating IP (master only, unless the user asked)
    status: str = ""
    vcpus: int = 0
    ram_mb: int = 0

    @property
    def address(self) -> str:
        """The address a client outside the cluster uses to reach this node."""
        return self.public_ip or self.private_ip


@dataclass(frozen=True)
class ClusterFacts:
    """Everything a config template or a service needs to know about a cluster."""

    cluster_name: str
    master: Node
    workers: tuple[Node, ...]
    # services.DEFAULT_SERVICES (this module imports nothing of the project; a test
    # checks the two agree)
    services: tuple[str, ...] = ("hdfs", "yarn", "spark")
    ssh_user: str = "debian"
    hadoop_user: str = "hduser"
    spark_home: str = "/opt/spark"
    hadoop_home: str = "/opt/hadoop"
    java_home: str = "/usr/lib/jvm/default-java"
    data_dirs: tuple[str, ...] = (DEFAULT_DATA_DIR,)
    spark_secret: str = ""         # per-cluster spark.authenticate secret
    hadoop_version: str = ""       # from the image marker ("" = unknown / no Hadoop)
    java_version: str = ""         # from the image marker, e.g. "17.0.15"
    # workers being decommissioned (rendered into dfs.exclude / yarn.exclude): never
    # recorded in the cloud, only while remove-workers (or `fab decommission`) runs
    decommissioning: tuple[str, ...] = ()
    # private addresses of removed workers, kept in the exclude lists: a removed DataNode
    # would otherwise count as live (and be handed to readers) for 10 minutes, and a
    # dead one not excluded comes back "In Service" when its address is reused
    retired: tuple[str, ...] = ()
    # the user's own settings, re-applied on every re-render (launch --conf/--hadoop-conf,
    # configure-cluster): Spark properties as (key, value), Hadoop ones as (file, key, value)
    # with file one of services.HADOOP_SITE_FILES
    spark_conf: tuple[tuple[str, str], ...] = ()
    hadoop_conf: tuple[tuple[str, str, str], ...] = ()
    # the Python that drivers, executors and notebook kernels run (same on every node):
    # the image's environment when it has one (create-image --python-packages/--jupyter)
    python: str = "/usr/bin/python3"
    # the token a Jupyter server on the master asks for (kept across re-deploys)
    jupyter_token: str = ""
    # more public keys that may log in as the service user on the master (batch launch's
    # per-student key), and whether that login may sudo (batch launch --student-sudo)
    login_keys: tuple[str, ...] = ()
    login_sudo: bool = False

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.master, *self.workers)

    @property
    def hadoop_major(self) -> int:
        """2 or 3 (0 when unknown): Hadoop 2 and 3 differ in ports, scripts and env names."""
        head = self.hadoop_version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0

    @property
    def java_major(self) -> int:
        """8, 11, 17, ... (0 when unknown); "1.8.0_392" is Java 8."""
        parts = self.java_version.split(".")
        if parts and parts[0] == "1" and len(parts) > 1:
            parts = parts[1:]
        return int(parts[0]) if parts and parts[0].isdigit() else 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ClusterFacts":
        raw = json.loads(text)
        raw["master"] = Node(**raw["master"])
        raw["workers"] = tuple(Node(**w) for w in raw["workers"])
        known = {f.name for f in dataclasses.fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}   # facts from an older tool
        for key in ("services", "data_dirs", "decommissioning", "retired", "login_keys"):
            if key in raw:
                raw[key] = tuple(raw[key])
        for key in ("spark_conf", "hadoop_conf"):
            if key in raw:
                raw[key] = tuple(tuple(item) for item in raw[key])
        return cls(**raw)


def node_sort_key(name: str) -> tuple:
    """Master first, then workers by number (worker-2 before worker-10): how every node
    list is shown."""
    tail = name.rsplit("-", 1)[-1]
    return (0 if name.endswith("-master") else 1, int(tail) if tail.isdigit() else 0, name)


def parse_facts(text: str, *, where: str) -> ClusterFacts | None:
    """The one reader of a facts file (the master's, or one given to fab): its text as
    ``ClusterFacts``, None when empty, ``DeployError`` naming ``where`` when it is not
    facts (then a re-deploy writes it again)."""
    from .errors import DeployError
    if not text.strip():
        return None
    try:
        return ClusterFacts.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise DeployError(f"{where}: {FACTS_PATH_ON_MASTER} is not readable facts: {exc}",
                          hint="re-deploy with `spark-openstack deploy -c CLUSTER`") from exc


def image_property(image, key: str):
    """A Glance image's property ``key`` (SDK images keep unknown ones in ``properties``)."""
    props = getattr(image, "properties", None) or {}
    return props.get(key) or getattr(image, key, None)
