"""The cluster's services, one small class each, started in this order."""
from __future__ import annotations

from .base import Health, Service
from .hdfs import HDFS
from .jupyter import Jupyter
from .spark import Spark
from .yarn import YARN

SERVICE_CLASSES: dict[str, type[Service]] = {"hdfs": HDFS, "yarn": YARN, "spark": Spark,
                                             "jupyter": Jupyter}
START_ORDER = ("hdfs", "yarn", "spark", "jupyter")

__all__ = ["HDFS", "YARN", "Spark", "Jupyter", "Health", "Service", "SERVICE_CLASSES",
           "START_ORDER"]
