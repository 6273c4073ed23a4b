"""The network ports of the cluster's services, each declared once.

Each service class names its own (``HDFS.ports``, ``YARN.ports``, ``Spark.ports``). They
are declared here, in a module that imports nothing of the project, because the layers
above the services read them too: ``config`` decides which ports the security group may
open, ``render`` puts the numbers into the templates, and ``describe``, ``login -L`` and
the ``--help`` texts list them. Everything else derives from these tuples.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Exposure: may ``--open-ui-cidr`` open it (SAFE: shows state to an anonymous visitor,
#: acts on nothing), only ``--open-unsafe-ui-cidr`` (UNSAFE: acts on anonymous requests),
#: or never (INTERNAL: only the cluster's own nodes talk to it).
SAFE, UNSAFE, INTERNAL = "safe", "unsafe", "internal"


@dataclass(frozen=True)
class Port:
    """One listening port. ``name`` is the key templates use (``{{ ports.namenode_http }}``);
    a web UI a user may reach from outside (``exposure`` SAFE or UNSAFE, on the master)
    also has a ``ui_name`` (the key in ``describe``'s ``web_uis``) and ``why``: what a
    visitor can do there."""

    name: str
    number: int
    web_ui: bool = False
    exposure: str = INTERNAL
    ui_name: str = ""
    why: str = ""

    def __post_init__(self):
        if self.exposure not in (SAFE, UNSAFE, INTERNAL):
            raise ValueError(f"port {self.name}: exposure {self.exposure!r}")
        if (self.exposure != INTERNAL) != bool(self.web_ui and self.ui_name and self.why):
            raise ValueError(f"port {self.name}: only a web UI with a ui_name and a why "
                             "can be opened outside the cluster")


HDFS_PORTS = (
    Port("namenode_rpc", 9000),
    Port("namenode_http", 9870, web_ui=True, exposure=UNSAFE, ui_name="hdfs-namenode",
         why="HDFS trusts ?user.name=, so anyone there can read, change and delete all "
             "HDFS data as the HDFS superuser"),
    Port("secondary_http", 9868, web_ui=True),
    Port("datanode_data", 9866),
    Port("datanode_http", 9864, web_ui=True),
    Port("datanode_ipc", 9867),
)
YARN_PORTS = (
    Port("resourcemanager_http", 8088, web_ui=True, exposure=UNSAFE,
         ui_name="yarn-resourcemanager",
         why="YARN's REST API accepts new applications from anyone there: they can run "
             "code on the cluster"),
    Port("nodemanager_http", 8042, web_ui=True),
    # MapReduce's shuffle handler (a NodeManager aux-service) has no bind-address setting:
    # it listens on every address, so only the security group keeps it in the cluster
    # (each request must also carry the job's token).
    Port("mapreduce_shuffle", 13562),
)
SPARK_PORTS = (
    Port("spark_master", 7077),
    Port("spark_master_ui", 8080, web_ui=True, exposure=SAFE, ui_name="spark-master",
         why="read-only to an anonymous visitor (kill buttons and REST submission are off)"),
    Port("spark_app_ui", 4040, web_ui=True, exposure=SAFE, ui_name="spark-app",
         why="read-only view of a running application (Spark's default spark.ui.port)"),
    Port("spark_worker_ui", 8081, web_ui=True),
)

#: Jupyter on the master runs code for whoever has its token: never opened in the
#: security group (INTERNAL), reached through ``spark-openstack notebook``'s SSH tunnel.
JUPYTER_PORTS = (
    Port("jupyter", 8888, web_ui=True),
)

#: Per service, in start order (the keys are config.KNOWN_SERVICES).
PORTS_BY_SERVICE: dict[str, tuple[Port, ...]] = {
    "hdfs": HDFS_PORTS, "yarn": YARN_PORTS, "spark": SPARK_PORTS, "jupyter": JUPYTER_PORTS}
