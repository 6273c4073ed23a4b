"""Ports are declared once, by the services; the security group policy, the templates,
``describe`` and ``login -L`` all derive from those declarations."""
from __future__ import annotations

import pytest

from spark_openstack import clusterconf, config, deploy, inventory, render, roster
from spark_openstack.cli import cli
from spark_openstack.model import ClusterFacts, Node
from spark_openstack.ports import INTERNAL, SAFE, UNSAFE, Port
from spark_openstack.services import (ALL_PORTS, HADOOP_SERVICES, HADOOP_SITE_FILES, PORTS,
                                      SERVICE_CLASSES, SERVICES, START_ORDER, HadoopService)


def test_each_service_class_names_its_own_ports():
    assert tuple(SERVICE_CLASSES) == START_ORDER == config.KNOWN_SERVICES
    for name, cls in SERVICE_CLASSES.items():
        assert cls.name == name and cls.ports and all(isinstance(p, Port) for p in cls.ports)
    every = [p for cls in SERVICES for p in cls.ports]
    assert list(ALL_PORTS) == every
    assert len({p.number for p in every}) == len(every), "a port number is declared twice"
    assert len({p.name for p in every}) == len(every), "a port name is declared twice"
    assert render.PORTS is PORTS == {p.name: p.number for p in every}


def test_the_hadoop_services_health_urls_use_their_declared_ui_port():
    for name in HADOOP_SERVICES:
        cls = SERVICE_CLASSES[name]
        (ui,) = [p for p in cls.ports if p.exposure != INTERNAL]
        assert cls.ui_port == ui.number


# ------------------------------------------------------------ the services list, one source
def _choices(command: str) -> str:
    return next(p for p in cli.commands[command].params if p.name == "services").help


def test_everything_that_names_the_services_derives_from_the_one_list():
    names = tuple(cls.name for cls in SERVICES)
    assert START_ORDER == names == config.KNOWN_SERVICES
    assert config.DEFAULT_SERVICES == tuple(cls.name for cls in SERVICES if cls.default)
    # model imports nothing of the project, so its default is spelled there, and agrees
    assert ClusterFacts.__dataclass_fields__["services"].default == config.DEFAULT_SERVICES
    for command in ("launch", "deploy"):
        assert f"subset of {','.join(names)} " in _choices(command)
    assert HADOOP_SERVICES == tuple(cls.name for cls in SERVICES
                                    if issubclass(cls, HadoopService))
    assert deploy.describe_services(reversed(names)) == " + ".join(c.title for c in SERVICES)
    services = deploy.services_for(facts=_facts(names), runner=None)
    assert [type(s) for s in services] == list(SERVICES)


def test_the_security_group_opens_exactly_the_services_declared_ui_ports():
    """The rules come from the union of the classes' ports: the safe UIs for
    --open-ui-cidr, every exposed UI for --open-unsafe-ui-cidr, never an INTERNAL one."""
    exposed = {p.number for cls in SERVICES for p in cls.ports if p.exposure != INTERNAL}
    safe = {p.number for cls in SERVICES for p in cls.ports if p.exposure == SAFE}
    assert {p.number for p in config.web_ui_ports()} == exposed
    assert {p.number for p in config.web_ui_ports(exposures=(UNSAFE,))} == exposed - safe
    rules = config.web_ui_rules(open_ui_cidrs=("192.0.2.0/24",),
                                unsafe_ui_cidrs=("198.51.100.0/24",))
    assert {n for c, n in rules if c == "192.0.2.0/24"} == safe
    assert {n for c, n in rules if c == "198.51.100.0/24"} == exposed


def test_the_hadoop_site_files_are_the_hadoop_services_own():
    """One list: what --hadoop-conf accepts, what render applies the settings to, and what
    configure-cluster compares, is the union of the Hadoop classes' ``site_files``; each
    file's change restarts exactly the services that read it."""
    union = tuple(dict.fromkeys(f for cls in SERVICES if issubclass(cls, HadoopService)
                                for f in cls.site_files))
    assert HADOOP_SITE_FILES == union == config.HADOOP_CONF_FILES
    assert render.HADOOP_SITE_FILES is HADOOP_SITE_FILES
    facts = _facts(START_ORDER)
    for file in HADOOP_SITE_FILES:
        change = clusterconf.plan_change(facts=facts, hadoop_conf=((file, "k", "v"),))
        assert change.affected == tuple(c.name for c in SERVICES if file in c.restart_on)
    assert clusterconf.plan_change(facts=facts, spark_conf=(("spark.x", "1"),)).affected \
        == ("spark",)


def test_the_roster_tunnels_to_the_declared_ports():
    assert roster._port("spark", "spark_master_ui") == SERVICE_CLASSES["spark"].port(
        "spark_master_ui")
    assert roster._port("nothing", "x") is None


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
