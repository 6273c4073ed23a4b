"""Hand-made cluster facts for the deploy helper's unit tests (no cloud involved)."""
from __future__ import annotations

from spark_openstack.model import DEFAULT_DATA_DIR, ClusterFacts, Node


def make_facts(*, workers: int = 2, worker_ram_mb: int = 4096, worker_vcpus: int = 2,
               master_ram_mb: int = 2048, services=("hdfs", "yarn", "spark"),
               data_dirs=(DEFAULT_DATA_DIR,), secret: str = "test-secret-value") -> ClusterFacts:
    master = Node(name="demo-master", role="master", server_id="m", private_ip="10.213.0.10",
                  public_ip="10.214.0.5", vcpus=1, ram_mb=master_ram_mb)
    nodes = tuple(Node(name=f"demo-worker-{i}", role="worker", server_id=f"w{i}",
                       private_ip=f"10.213.0.{20 + i}", vcpus=worker_vcpus,
                       ram_mb=worker_ram_mb) for i in range(1, workers + 1))
    return ClusterFacts(cluster_name="demo", master=master, workers=nodes,
                        services=tuple(services), data_dirs=tuple(data_dirs),
                        java_home="/usr/lib/jvm/java-17-openjdk-amd64", spark_secret=secret)
