"""The cluster's services, one small class each: ``SERVICES`` is the one list of them, in
start order. Everything that names the services (``--services`` choices, the deploy
order, health, the security group's ports, the Hadoop files ``--hadoop-conf`` may set,
what ``configure-cluster`` restarts) derives from it."""
from __future__ import annotations

from ..ports import Port
from .base import Health, HadoopService, Service
from .hdfs import HDFS
from .jupyter import Jupyter
from .spark import Spark
from .yarn import YARN

#: Every service, in start order.
SERVICES: tuple[type[Service], ...] = (HDFS, YARN, Spark, Jupyter)

SERVICE_CLASSES: dict[str, type[Service]] = {cls.name: cls for cls in SERVICES}
START_ORDER: tuple[str, ...] = tuple(SERVICE_CLASSES)
#: What a cluster runs unless told otherwise (Jupyter only when asked).
DEFAULT_SERVICES: tuple[str, ...] = tuple(cls.name for cls in SERVICES if cls.default)
#: The services an image's Hadoop provides.
HADOOP_SERVICES: tuple[str, ...] = tuple(cls.name for cls in SERVICES
                                         if issubclass(cls, HadoopService))
#: The Hadoop XML files the cluster's own settings (``--hadoop-conf FILE:KEY=VALUE``,
#: configure-cluster) may change: those the Hadoop services read.
HADOOP_SITE_FILES: tuple[str, ...] = tuple(dict.fromkeys(
    f for cls in SERVICES if issubclass(cls, HadoopService) for f in cls.site_files))
#: Every service's ports, in start order, and their numbers by name (the templates').
ALL_PORTS: tuple[Port, ...] = tuple(p for cls in SERVICES for p in cls.ports)
PORTS: dict[str, int] = {p.name: p.number for p in ALL_PORTS}


def restarted_by(changed_files, services) -> tuple[str, ...]:
    """Which of ``services`` (names) restart when ``changed_files`` change, in start
    order."""
    changed = set(changed_files)
    return tuple(cls.name for cls in SERVICES
                 if cls.name in services and changed & set(cls.restart_on))


__all__ = ["HDFS", "YARN", "Spark", "Jupyter", "Health", "HadoopService", "Service",
           "SERVICES", "SERVICE_CLASSES", "START_ORDER", "DEFAULT_SERVICES",
           "HADOOP_SERVICES", "HADOOP_SITE_FILES", "ALL_PORTS", "PORTS", "restarted_by"]
