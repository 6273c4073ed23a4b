"""Every Hadoop property the templates set must exist in Hadoop's own defaults.

core/yarn/mapred names are checked against ``core-default.xml``, ``yarn-default.xml`` and
``mapred-default.xml`` read from the ``hadoop-client-api`` jar inside the PyPI ``pyspark``
package (a real Hadoop 3.x artifact). HDFS's ``hdfs-default.xml`` is not in that jar, so
hdfs-site names are checked against the list below, taken from Hadoop's documentation:
hdfs-default.xml, apache/hadoop ``hadoop-hdfs-project/hadoop-hdfs/src/main/resources/
hdfs-default.xml`` (commit 0011136e66e154fbe2ebb0a21204195fcfd4d231), published as
https://hadoop.apache.org/docs/stable/hadoop-project-dist/hadoop-hdfs/hdfs-default.xml
"""
from __future__ import annotations

import glob
import importlib.util
import os
import re
import xml.etree.ElementTree as ET
import zipfile

import pytest

from support.facts import make_facts
from spark_openstack import render

# Names copied from hdfs-default.xml (see the module docstring), each verified there.
HDFS_DEFAULT_NAMES = frozenset({
    "dfs.namenode.rpc-address",
    "dfs.namenode.rpc-bind-host",
    "dfs.namenode.servicerpc-bind-host",
    "dfs.namenode.secondary.http-address",
    "dfs.namenode.http-address",
    "dfs.namenode.http-bind-host",
    "dfs.namenode.name.dir",
    "dfs.namenode.checkpoint.dir",
    "dfs.namenode.safemode.min.datanodes",
    "dfs.namenode.decommission.interval",
    "dfs.namenode.datanode.registration.ip-hostname-check",
    "dfs.datanode.address",
    "dfs.datanode.http.address",
    "dfs.datanode.ipc.address",
    "dfs.datanode.data.dir",
    "dfs.datanode.data.dir.perm",
    "dfs.datanode.hostname",
    "dfs.hosts.exclude",
    "dfs.replication",
    "dfs.blocksize",
    "dfs.permissions.enabled",
    "dfs.permissions.superusergroup",
    "dfs.heartbeat.interval",
    "dfs.client.block.write.replace-datanode-on-failure.enable",
    "dfs.client.block.write.replace-datanode-on-failure.policy",
})


def _hadoop_client_api_jar() -> str:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pyspark is not installed in this venv (pip install pyspark==4.3.0): "
                    "its hadoop-client-api jar holds Hadoop's *-default.xml files")
    jars = glob.glob(os.path.join(spec.submodule_search_locations[0], "jars",
                                  "hadoop-client-api-*.jar"))
    assert jars, "pyspark has no jars/hadoop-client-api-*.jar"
    return sorted(jars)[-1]


def _names(xml_text: str | bytes) -> set[str]:
    return {p.findtext("name").strip() for p in ET.fromstring(xml_text).iter("property")}


def _documented_names(xml_text: bytes) -> set[str]:
    """Live properties plus those Hadoop documents inside comments: mapred-default.xml
    comments out mapreduce.{map,reduce}.{java.opts,env} "so that it won't override
    mapred.child.*" — they are real, documented properties all the same."""
    text = xml_text.decode()
    commented = set()
    for comment in re.findall(r"<!--(.*?)-->", text, flags=re.S):
        commented |= {m.strip() for m in re.findall(r"<name>([^<]+)</name>", comment)}
    return _names(xml_text) | commented


@pytest.fixture(scope="module")
def hadoop_defaults() -> dict[str, set[str]]:
    with zipfile.ZipFile(_hadoop_client_api_jar()) as jar:
        return {kind: _documented_names(jar.read(f"{kind}-default.xml"))
                for kind in ("core", "yarn", "mapred")}


def _rendered_names(file_name: str) -> set[str]:
    names: set[str] = set()
    for workers in (1, 3):
        facts = make_facts(workers=workers)
        for node in facts.nodes:
            files = render.render_node_configs(facts=facts, node=node)
            names |= _names(files[f"/opt/hadoop/etc/hadoop/{file_name}"])
    assert names, file_name
    return names


def test_defaults_were_really_read(hadoop_defaults):
    assert "fs.defaultFS" in hadoop_defaults["core"]
    assert "yarn.resourcemanager.hostname" in hadoop_defaults["yarn"]
    assert "mapreduce.framework.name" in hadoop_defaults["mapred"]
    assert len(hadoop_defaults["core"]) > 100


def test_core_site_names_exist(hadoop_defaults):
    assert _rendered_names("core-site.xml") - hadoop_defaults["core"] == set()


def test_yarn_site_names_exist(hadoop_defaults):
    assert _rendered_names("yarn-site.xml") - hadoop_defaults["yarn"] == set()


def test_mapred_site_names_exist(hadoop_defaults):
    assert _rendered_names("mapred-site.xml") - hadoop_defaults["mapred"] == set()


def test_hdfs_site_names_are_documented():
    assert _rendered_names("hdfs-site.xml") - HDFS_DEFAULT_NAMES == set()
