"""Ports are declared once, by the services; the security group policy, the templates,
``describe`` and ``login -L`` all derive from those declarations."""
from __future__ import annotations

import pytest

from spark_openstack import config, inventory
from spark_openstack.model import ClusterFacts, Node
from spark_openstack.ports import INTERNAL, PORTS_BY_SERVICE, Port
from spark_openstack.services import SERVICE_CLASSES


def test_each_service_class_names_its_own_ports():
    assert set(SERVICE_CLASSES) == set(PORTS_BY_SERVICE) == set(config.KNOWN_SERVICES)
    for name, cls in SERVICE_CLASSES.items():
        assert cls.ports is PORTS_BY_SERVICE[name] and cls.ports
    every = [p for ports in PORTS_BY_SERVICE.values() for p in ports]
    assert len({p.number for p in every}) == len(every), "a port number is declared twice"
    assert len({p.name for p in every}) == len(every), "a port name is declared twice"


def test_the_hadoop_services_health_urls_use_their_declared_ui_port():
    for name in ("hdfs", "yarn"):
        cls = SERVICE_CLASSES[name]
        (ui,) = [p for p in cls.ports if p.exposure != INTERNAL]
        assert cls.ui_port == ui.number


@pytest.mark.parametrize("kwargs", [
    dict(exposure="public"),
    dict(exposure="safe"),                                   # no ui_name / why
    dict(exposure="unsafe", ui_name="x", why="y"),           # not a web UI
])
def test_only_a_described_web_ui_can_be_exposed(kwargs):
    with pytest.raises(ValueError):
        Port("p", 1, **kwargs)


def _facts(services):
    master = Node(name="c-master", role="master", private_ip="10.0.0.5",
                  public_ip="198.51.100.7", server_id="0f1e2d3c-aaaa", status="ACTIVE")
    return ClusterFacts(cluster_name="c", master=master, workers=(), services=services)


@pytest.mark.parametrize("services,uis", [
    (("hdfs", "yarn", "spark"), {"hdfs-namenode": 9870, "yarn-resourcemanager": 8088,
                                 "spark-master": 8080, "spark-app": 4040}),
    (("spark",), {"spark-master": 8080, "spark-app": 4040}),
    (("hdfs", "spark"), {"hdfs-namenode": 9870, "spark-master": 8080, "spark-app": 4040}),
])
def test_describe_and_login_list_only_the_uis_of_the_services_the_cluster_runs(
        services, uis, monkeypatch, tmp_path):
    facts = _facts(services)
    monkeypatch.setattr(inventory, "cluster_facts", lambda **kw: facts)
    provider = type("P", (), {"cluster_servers": lambda self, name: [],
                              "find_security_group": lambda self, name: None,
                              "find_server_groups": lambda self, name: []})()
    described = inventory.describe(provider=provider, cluster="c")
    assert described["web_uis"] == {k: f"http://198.51.100.7:{p}" for k, p in uis.items()}
    argv = inventory.login_command(facts=facts, key_filename=None, forward_ui=True,
                                 known_hosts=str(tmp_path / "known_hosts"))
    forwards = {argv[i + 1] for i, a in enumerate(argv) if a == "-L"}
    assert forwards == {f"{p}:10.0.0.5:{p}" for p in uis.values()}
