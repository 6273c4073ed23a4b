"""Where every daemon of a cluster keeps its files on a node, from the cluster's facts.

Below the services and the templates, which both need these paths (pid files, logs,
config dirs), so neither has to import the other for them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import DEFAULT_DATA_DIR, ClusterFacts

#: The PySpark kernel's name (``--ExecutePreprocessor.kernel_name=pyspark``).
KERNEL_NAME = "pyspark"


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
    jupyter_config: str = ""      # Jupyter's config and supervisord's (master, hduser's)
    jupyter_kernel: str = ""      # the PySpark kernel spec
    jupyter_notebooks: str = ""   # Jupyter's root folder
    jupyter_logs: str = ""

    def jupyter_dirs(self) -> list[str]:
        """What the master needs for Jupyter, parents first (each made hduser's: Jupyter
        writes its runtime files under ~/.local/share/jupyter)."""
        share = self.jupyter_kernel.rsplit("/kernels/", 1)[0]
        local = share.rsplit("/", 2)[0]
        return [self.jupyter_config, local, f"{local}/share", share, f"{share}/kernels",
                self.jupyter_kernel, self.jupyter_notebooks, self.jupyter_logs]

    def for_node(self, *, is_master: bool, hadoop: bool) -> list[str]:
        """The directories ``deploy`` creates (owned by the service account) on a node."""
        wanted = [self.spark_logs, self.spark_pids, self.spark_work, self.spark_local]
        if hadoop:
            wanted += [self.hadoop_tmp, self.hadoop_logs, self.hadoop_pids, self.yarn_logs,
                       *self.yarn_local]
            wanted += list(self.namenode if is_master else self.datanode)
        return wanted


def cluster_dirs(facts: ClusterFacts) -> Dirs:
    data = facts.data_dirs or (DEFAULT_DATA_DIR,)
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
        jupyter_config=f"/home/{facts.hadoop_user}/.jupyter",
        jupyter_kernel=f"/home/{facts.hadoop_user}/.local/share/jupyter/kernels/{KERNEL_NAME}",
        jupyter_notebooks=f"/home/{facts.hadoop_user}/notebooks",
        jupyter_logs="/var/log/jupyter",
    )
