"""Every config template rendered for 1 and several workers, checked for what it must say."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import jinja2
import pytest

from support.facts import make_facts
from support.parse import hadoop_props as _props
from support.parse import spark_conf as _conf
from spark_openstack import render
from spark_openstack.errors import ValidationError
from spark_openstack.services import Jupyter


def _env(text: str) -> dict[str, str]:
    return {line[len("export "):].split("=", 1)[0]: line.split("=", 1)[1]
            for line in text.splitlines() if line.startswith("export ")}


@pytest.mark.parametrize("workers", [1, 3])
def test_every_template_renders_for_every_node(workers):
    facts = make_facts(workers=workers)
    names = render.template_names()
    expected = {f"/opt/hadoop/etc/hadoop/{n[:-3]}" for n in names["hadoop"]}
    expected |= {f"/opt/spark/conf/{n[:-3]}" for n in names["spark"]}
    assert {"core-site.xml.j2", "hdfs-site.xml.j2", "yarn-site.xml.j2", "mapred-site.xml.j2",
            "workers.j2", "hadoop-env.sh.j2"} <= set(names["hadoop"])
    assert "capacity-scheduler.xml.j2" in names["hadoop"]
    assert {"spark-env.sh.j2", "spark-defaults.conf.j2", "workers.j2"} <= set(names["spark"])
    for node in facts.nodes:
        files = render.render_node_configs(facts=facts, node=node)
        assert set(files) == expected
        for path, text in files.items():
            assert "{{" not in text and "{%" not in text, path
            if path.endswith(".xml"):
                ET.fromstring(text)  # well-formed
    hosts = render.render_etc_hosts(facts=facts)
    for node in facts.nodes:
        assert f"{node.private_ip}\t{node.name}" in hosts.splitlines()
    assert "127.0.1.1" not in hosts


@pytest.mark.parametrize("workers", [1, 3])
def test_the_jupyter_group_renders_on_the_master_when_jupyter_runs(workers):
    import dataclasses
    facts = dataclasses.replace(make_facts(workers=workers,
                                           services=("hdfs", "yarn", "spark", "jupyter")),
                                jupyter_token="a" * 48)
    names = render.template_names()["jupyter"]
    assert names, "config_files/jupyter has no templates"
    files = render.render_node_configs(facts=facts, node=facts.master)
    jupyter = {p for p in files if p.rsplit("/", 1)[-1] in Jupyter.config_files}
    assert {p.rsplit("/", 1)[-1] + ".j2" for p in jupyter} == set(names)
    for path in jupyter:
        assert "{{" not in files[path] and "{%" not in files[path], path
    for worker in facts.workers:
        assert not set(render.render_node_configs(facts=facts, node=worker)) & jupyter


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_hadoop_files_name_the_master_and_bind_private_addresses(workers):
    facts = make_facts(workers=workers)
    worker = facts.workers[-1]
    files = render.render_node_configs(facts=facts, node=worker)
    core = _props(files["/opt/hadoop/etc/hadoop/core-site.xml"])
    hdfs = _props(files["/opt/hadoop/etc/hadoop/hdfs-site.xml"])
    yarn = _props(files["/opt/hadoop/etc/hadoop/yarn-site.xml"])
    assert core["fs.defaultFS"] == "hdfs://demo-master:9000"
    # anonymous web callers are the unprivileged dr.who, never the HDFS superuser
    assert core["hadoop.http.staticuser.user"] == "dr.who"
    assert facts.hadoop_user not in core.values()
    assert hdfs["dfs.replication"] == str(min(3, workers))
    assert hdfs["dfs.datanode.address"] == f"{worker.private_ip}:9866"
    assert hdfs["dfs.namenode.http-address"] == "10.213.0.10:9870"
    assert hdfs["dfs.namenode.name.dir"] == "file:///var/lib/hadoop/hdfs/namenode"
    assert hdfs["dfs.datanode.hostname"] == worker.name
    assert hdfs["dfs.hosts.exclude"] == "/opt/hadoop/etc/hadoop/dfs.exclude"
    assert "/opt/hadoop/etc/hadoop/dfs.exclude" in files
    assert hdfs["dfs.namenode.secondary.http-address"] == "10.213.0.10:9868"
    assert yarn["yarn.resourcemanager.hostname"] == "demo-master"
    assert yarn["yarn.resourcemanager.bind-host"] == "10.213.0.10"
    assert yarn["yarn.nodemanager.bind-host"] == worker.private_ip
    assert files["/opt/hadoop/etc/hadoop/workers"].split() == [w.name for w in facts.workers]
    assert files["/opt/spark/conf/workers"].split() == [w.private_ip for w in facts.workers]
    assert ("dfs.client.block.write.replace-datanode-on-failure.policy" in hdfs) == (workers < 3)


def test_several_data_dirs_are_listed():
    facts = make_facts(data_dirs=("/data/a", "/data/b"))
    hdfs = _props(render.render_node_configs(facts=facts, node=facts.workers[0])
                  ["/opt/hadoop/etc/hadoop/hdfs-site.xml"])
    assert hdfs["dfs.datanode.data.dir"] == "file:///data/a/datanode,file:///data/b/datanode"


def test_spark_binds_private_addresses_and_authenticates():
    facts = make_facts(workers=2)
    for node in facts.nodes:
        files = render.render_node_configs(facts=facts, node=node)
        env = _env(files["/opt/spark/conf/spark-env.sh"])
        assert env["SPARK_LOCAL_IP"] == node.private_ip
        assert env["SPARK_MASTER_HOST"] == facts.master.private_ip
        assert env["SPARK_PID_DIR"] == "/var/lib/spark/pids"       # per host, not /tmp
        assert env["JAVA_HOME"] == facts.java_home
        defaults = _conf(files["/opt/spark/conf/spark-defaults.conf"])
        assert defaults["spark.authenticate"] == "true"
        assert defaults["spark.authenticate.secret"] == "test-secret-value"
        assert defaults["spark.master"] == "spark://10.213.0.10:7077"
        assert defaults["spark.master.rest.enabled"] == "false"
    assert render.config_file_mode("/opt/spark/conf/spark-defaults.conf") == 0o600
    assert render.config_file_mode("/opt/spark/conf/spark-env.sh") == 0o755
    assert render.config_file_mode("/opt/hadoop/etc/hadoop/core-site.xml") == 0o644


def test_memory_and_cores_come_from_the_flavor():
    small = make_facts(worker_ram_mb=4096, worker_vcpus=1)
    large = make_facts(worker_ram_mb=16384, worker_vcpus=8)
    env_small = _env(render.render_node_configs(facts=small, node=small.workers[0])
                     ["/opt/spark/conf/spark-env.sh"])
    env_large = _env(render.render_node_configs(facts=large, node=large.workers[0])
                     ["/opt/spark/conf/spark-env.sh"])
    assert env_small["SPARK_WORKER_CORES"] == "1" and env_large["SPARK_WORKER_CORES"] == "8"
    mem_small = int(env_small["SPARK_WORKER_MEMORY"].rstrip("m"))
    mem_large = int(env_large["SPARK_WORKER_MEMORY"].rstrip("m"))
    assert 512 <= mem_small < 4096 and mem_small < mem_large < 16384
    assert env_small["SPARK_DAEMON_MEMORY"] == "256m"     # small hosts keep daemons small
    yarn = _props(render.render_node_configs(facts=large, node=large.workers[0])
                  ["/opt/hadoop/etc/hadoop/yarn-site.xml"])
    sizing = render.node_sizing(node=large.workers[0], services=large.services,
                                worker_count=2)
    assert int(yarn["yarn.nodemanager.resource.memory-mb"]) == sizing.yarn_nodemanager_mb
    assert yarn["yarn.nodemanager.resource.cpu-vcores"] == "8"
    # OS + daemon heaps + Spark + YARN never exceed the flavor's RAM
    total = (sizing.os_reserve_mb + 3 * sizing.daemon_heap_mb + sizing.spark_worker_mb
             + sizing.yarn_nodemanager_mb)
    assert total <= 16384


def test_spark_alone_gets_the_whole_container_share_and_no_hadoop_files():
    facts = make_facts(services=("spark",))
    files = render.render_node_configs(facts=facts, node=facts.workers[0])
    assert not any(p.startswith("/opt/hadoop") for p in files)
    assert "HADOOP_CONF_DIR" not in files["/opt/spark/conf/spark-env.sh"]
    both = render.node_sizing(node=facts.workers[0], services=("spark", "yarn"), worker_count=2)
    alone = render.node_sizing(node=facts.workers[0], services=("spark",), worker_count=2)
    assert alone.spark_worker_mb > both.spark_worker_mb


def test_missing_secret_or_foreign_node_is_refused():
    facts = make_facts(secret="")
    with pytest.raises(ValidationError, match="secret"):
        render.render_node_configs(facts=facts, node=facts.master)
    other = make_facts(workers=1)
    stranger = make_facts(workers=3).workers[2]
    with pytest.raises(ValidationError, match="not part of cluster"):
        render.render_node_configs(facts=other, node=stranger)


def test_templates_use_strict_undefined(tmp_path):
    env = render._environment(tmp_path)
    (tmp_path / "t.j2").write_text("{{ nothing_here }}")
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("t.j2").render()


@pytest.mark.parametrize("ram", [2048, 3072, 4096, 6144, 8192, 16384, 65536])
@pytest.mark.parametrize("services", [("hdfs", "spark"), ("hdfs", "yarn", "spark"),
                                      ("spark",), ("hdfs", "yarn")])
def test_a_plan_that_is_accepted_fits_the_flavor(ram, services):
    """OS + daemon heaps + Spark + YARN never exceed a node's RAM when launch accepts it;
    when it refuses, the message carries the numbers."""
    facts = make_facts(worker_ram_mb=ram, master_ram_mb=ram, services=services)
    problems = render.memory_plan_problems(master=facts.master, worker=facts.workers[0],
                                           services=services, worker_count=2)
    if problems:
        with pytest.raises(ValidationError, match=r"= \d+ MB; its flavor has \d+ MB"):
            render.check_memory_plan(master=facts.master, worker=facts.workers[0],
                                     services=services, worker_count=2,
                                     flavor_names=("", "m1.x"))
        return
    for node in facts.nodes:
        plan = render.node_sizing(node=node, services=services, worker_count=2)
        total = (plan.os_reserve_mb + plan.daemon_heap_mb * len(plan.daemons)
                 + plan.spark_worker_mb + plan.yarn_nodemanager_mb)
        assert total <= ram, (node.name, plan)
    sizing = render.cluster_sizing(facts=facts)
    worker = render.node_sizing(node=facts.workers[0], services=services, worker_count=2)
    if "spark" in services:
        assert sizing.spark_executor_mb <= worker.spark_worker_mb
    if "yarn" in services:
        # Spark on YARN: executor + overhead must fit the largest container YARN grants
        overhead = max(384, sizing.spark_executor_mb // 10)
        assert sizing.spark_executor_mb + overhead <= sizing.yarn_max_allocation_mb
        assert sizing.spark_driver_mb + max(384, sizing.spark_driver_mb // 10) \
            <= sizing.yarn_max_allocation_mb
        assert sizing.yarn_max_allocation_mb <= worker.yarn_nodemanager_mb


def test_two_gb_workers_cannot_hold_yarn_and_spark_and_say_why():
    facts = make_facts(worker_ram_mb=2048, master_ram_mb=2048)
    with pytest.raises(ValidationError) as info:
        render.check_memory_plan(master=facts.master, worker=facts.workers[0],
                                 services=facts.services, worker_count=2,
                                 flavor_names=("", "m1.small"))
    message = str(info.value)
    # 409 OS + 3 x 256 heaps + 512 Spark + 1792 YARN (the AM's 896 MB container beside one
    # 896 MB executor: issue 23; it was 1024, which held an executor but not the AM too)
    assert "m1.small" in message and "3481 MB" in message and "2048 MB" in message
    assert "YARN containers >= 1792" in message
    assert "DataNode, NodeManager, Spark Worker" in message
    # the same flavor is fine for HDFS + Spark standalone (what an HDFS-only image runs)
    render.check_memory_plan(master=facts.master, worker=facts.workers[0],
                             services=("hdfs", "spark"), worker_count=2)


def test_spark_defaults_point_at_hdfs_and_size_executors_for_yarn():
    facts = make_facts(worker_ram_mb=4096)
    conf = _conf(render.render_node_configs(facts=facts, node=facts.master)
                 ["/opt/spark/conf/spark-defaults.conf"])
    assert conf["spark.hadoop.fs.defaultFS"] == "hdfs://demo-master:9000"
    yarn = _props(render.render_node_configs(facts=facts, node=facts.workers[0])
                  ["/opt/hadoop/etc/hadoop/yarn-site.xml"])
    executor = int(conf["spark.executor.memory"].rstrip("m"))
    assert executor + max(384, executor // 10) <= \
        int(yarn["yarn.scheduler.maximum-allocation-mb"])
    # MapReduce's reducers fetch from the shuffle handler, on the port the group keeps inside
    assert yarn["yarn.nodemanager.aux-services"] == "mapreduce_shuffle"
    no_hdfs = make_facts(services=("spark",))
    assert "fs.defaultFS" not in render.render_node_configs(
        facts=no_hdfs, node=no_hdfs.master)["/opt/spark/conf/spark-defaults.conf"]


@pytest.mark.parametrize("java, flagged", [("17.0.15", True), ("21.0.2", True),
                                           ("11.0.22", False), ("1.8.0_392", False)])
def test_hadoop_env_opens_java_base_on_java_17(java, flagged):
    import dataclasses
    facts = dataclasses.replace(make_facts(), java_version=java, hadoop_version="3.4.1")
    env = render.render_node_configs(facts=facts, node=facts.master)[
        "/opt/hadoop/etc/hadoop/hadoop-env.sh"]
    assert ("--add-opens=java.base/java.lang=ALL-UNNAMED" in env) == flagged
    assert "export HADOOP_IDENT_STRING=hduser" in env
    assert "export HADOOP_PID_DIR=/var/lib/hadoop/pids" in env


def test_template_ports_are_the_services_declared_ones():
    from spark_openstack.services import SERVICES
    declared = [p for cls in SERVICES for p in cls.ports]
    assert render.PORTS == {p.name: p.number for p in declared}
    assert len(render.PORTS) == len(declared), "two services declare the same port name"


def test_templates_bind_the_port_numbers_they_are_given(monkeypatch):
    """No port number is written into a template: change a declaration and the daemons
    listen elsewhere (so the security group, which reads the same declarations, follows)."""
    moved = {name: number + 10000 for name, number in render.PORTS.items()}
    monkeypatch.setattr(render, "PORTS", moved)
    facts = make_facts()
    files = render.render_node_configs(facts=facts, node=facts.master)
    hdfs = files["/opt/hadoop/etc/hadoop/hdfs-site.xml"]
    env = files["/opt/spark/conf/spark-env.sh"]
    assert f"{facts.master.private_ip}:{moved['namenode_http']}" in hdfs
    assert f"SPARK_MASTER_WEBUI_PORT={moved['spark_master_ui']}" in env
    assert f"SPARK_MASTER_PORT={moved['spark_master']}" in env
    core = files["/opt/hadoop/etc/hadoop/core-site.xml"]
    assert f":{moved['namenode_rpc']}<" in core


def test_capacity_scheduler_admits_a_second_application_when_yarn_runs():
    """Apache's maximum-am-resource-percent 0.1 keeps a second concurrent application (a
    notebook beside a job) ACCEPTED on a small cluster; ours holds two AMs."""
    facts = make_facts(workers=2)
    for node in facts.nodes:
        files = render.render_node_configs(facts=facts, node=node)
        cap = _props(files["/opt/hadoop/etc/hadoop/capacity-scheduler.xml"])
        assert cap["yarn.scheduler.capacity.root.queues"] == "default"
        assert cap["yarn.scheduler.capacity.root.default.capacity"] == "100"
        assert cap["yarn.scheduler.capacity.resource-calculator"].endswith(
            "DefaultResourceCalculator")
        percent = float(cap["yarn.scheduler.capacity.maximum-am-resource-percent"])
    sizing = render.cluster_sizing(facts=facts)
    workers = render.node_sizing(node=facts.workers[0], services=facts.services,
                                 worker_count=2)
    am = render.yarn_container_mb(heap_mb=sizing.yarn_am_mb)
    assert 2 * am <= percent * 2 * workers.yarn_nodemanager_mb < 2 * workers.yarn_nodemanager_mb
    hdfs_only = make_facts(services=("hdfs", "spark"))
    assert not any(p.endswith("capacity-scheduler.xml") for p in
                   render.render_node_configs(facts=hdfs_only, node=hdfs_only.master))
    # and `--hadoop-conf capacity-scheduler:KEY=VALUE` reaches it
    import dataclasses
    tuned = dataclasses.replace(facts, hadoop_conf=(
        ("capacity-scheduler.xml", "yarn.scheduler.capacity.maximum-am-resource-percent",
         "0.3"),))
    cap = _props(render.render_node_configs(facts=tuned, node=tuned.master)
                 ["/opt/hadoop/etc/hadoop/capacity-scheduler.xml"])
    assert cap["yarn.scheduler.capacity.maximum-am-resource-percent"] == "0.3"


def test_spark_defaults_name_the_yarn_am_and_executor_cores_only_with_yarn():
    facts = make_facts(worker_ram_mb=4096, worker_vcpus=2)
    conf = _conf(render.render_node_configs(facts=facts, node=facts.master)
                 ["/opt/spark/conf/spark-defaults.conf"])
    assert conf["spark.yarn.am.memory"] == "512m"
    assert conf["spark.executor.cores"] == "2"
    standalone = make_facts(services=("hdfs", "spark"))
    conf = _conf(render.render_node_configs(facts=standalone, node=standalone.master)
                 ["/opt/spark/conf/spark-defaults.conf"])
    assert "spark.yarn.am.memory" not in conf and "spark.executor.cores" not in conf


def test_every_template_is_a_service_s_declared_file():
    """A template no service declares would never be rendered (Service.config_files)."""
    from spark_openstack import paths
    from spark_openstack.services import SERVICES
    root = paths.config_files_dir()
    declared = {f"{cls.template_dir}/{name}.j2" for cls in SERVICES
                for name in cls.config_files}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.j2")
               if p.parent.name != "system"}      # system/: /etc/hosts, deploy's own
    assert declared == on_disk


@pytest.mark.parametrize("services, present, absent", [
    (("hdfs", "spark"), {"core-site.xml", "hdfs-site.xml", "dfs.exclude", "spark-defaults.conf"},
     {"yarn-site.xml", "mapred-site.xml", "capacity-scheduler.xml", "yarn.exclude"}),
    (("hdfs", "yarn"), {"yarn-site.xml", "capacity-scheduler.xml", "spark-defaults.conf"}, set()),
    (("spark",), {"spark-defaults.conf", "spark-env.sh"}, {"core-site.xml", "hdfs-site.xml"}),
])
def test_a_node_gets_the_files_of_the_services_its_cluster_runs(services, present, absent):
    facts = make_facts(services=services)
    names = {p.rsplit("/", 1)[-1] for p in
             render.render_node_configs(facts=facts, node=facts.workers[0])}
    assert present <= names and not names & absent
