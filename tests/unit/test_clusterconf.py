"""The cluster's own settings: parsing --conf/--hadoop-conf, rendering them into the
config files, carrying them over re-deploys, and which daemons a change restarts."""
from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from support.facts import make_facts
from spark_openstack import errors
from spark_openstack.clusterconf import plan_change, settings_dict
from spark_openstack.config import parse_hadoop_conf, parse_spark_conf
from spark_openstack.deploy import reconcile_facts
from spark_openstack.model import ClusterFacts
from spark_openstack.render import apply_hadoop_conf, render_node_configs

MARKER = {"spark_version": "4.3.0", "hadoop_version": "2.7.3", "hadoop_services": ["hdfs"],
          "java_home": "/usr/lib/jvm/java-17", "java_version": "17.0.15"}


def _properties(xml_text: str) -> dict[str, list[str]]:
    """Every <property> of a site file: name -> its values in file order."""
    out: dict[str, list[str]] = {}
    for prop in ET.fromstring(xml_text).iter("property"):
        out.setdefault(prop.findtext("name"), []).append(prop.findtext("value"))
    return out


# ----------------------------------------------------------------------------- parsing
def test_spark_conf_pairs_last_one_wins():
    assert parse_spark_conf(["spark.a=1", "spark.b = x=y", "spark.a=2"]) == \
        (("spark.a", "2"), ("spark.b", "x=y"))


@pytest.mark.parametrize("raw, says", [
    ("foo=1", "start with 'spark.'"),
    ("spark.authenticate=false", "not changeable"),
    ("spark.authenticate.secret=abc", "not changeable"),
    ("spark.network.crypto.enabled=false", "not changeable"),
    ("spark.master.rest.enabled=true", "not changeable"),
    ("spark.a", "not KEY=VALUE"),
    ("=1", "not KEY=VALUE"),
    ("spark.a b=1", "not KEY=VALUE"),
    ("spark.a=1\nspark.authenticate=false", "line break"),
])
def test_spark_conf_refused(raw, says):
    with pytest.raises(errors.UsageError) as info:
        parse_spark_conf([raw])
    assert says in info.value.message and "--conf" in info.value.message


def test_hadoop_conf_files_with_or_without_xml():
    assert parse_hadoop_conf(["hdfs-site:dfs.replication=1",
                              "core-site.xml:io.file.buffer.size=131072",
                              "hdfs-site.xml:dfs.replication=2"]) == (
        ("hdfs-site.xml", "dfs.replication", "2"),
        ("core-site.xml", "io.file.buffer.size", "131072"))


@pytest.mark.parametrize("raw", ["dfs.replication=1", "hadoop-env:x=1", "hdfs-site:=1",
                                 "hdfs-site:dfs.replication"])
def test_hadoop_conf_refused(raw):
    with pytest.raises(errors.UsageError) as info:
        parse_hadoop_conf([raw])
    assert "--hadoop-conf" in info.value.message


# ----------------------------------------------------------------------------- rendering
def test_settings_reach_the_rendered_files_once_each():
    facts = dataclasses.replace(
        make_facts(), spark_conf=(("spark.executor.cores", "1"), ("spark.driver.memory", "700m")),
        hadoop_conf=(("hdfs-site.xml", "dfs.replication", "1"),
                     ("core-site.xml", "io.file.buffer.size", "131072"),
                     ("yarn-site.xml", "x.odd", "a<b&c")))
    files = render_node_configs(facts=facts, node=facts.workers[0])
    hdfs = _properties(files["/opt/hadoop/etc/hadoop/hdfs-site.xml"])
    assert hdfs["dfs.replication"] == ["1"]           # the template's own, replaced in place
    core = _properties(files["/opt/hadoop/etc/hadoop/core-site.xml"])
    assert core["io.file.buffer.size"] == ["131072"]  # added
    assert _properties(files["/opt/hadoop/etc/hadoop/yarn-site.xml"])["x.odd"] == ["a<b&c"]
    defaults = files["/opt/spark/conf/spark-defaults.conf"]
    lines = [ln.split(None, 1) for ln in defaults.splitlines()
             if ln.strip() and not ln.startswith("#")]
    last = {}
    for key, value in lines:
        last[key] = value.strip()
    assert last["spark.executor.cores"] == "1"
    assert last["spark.driver.memory"] == "700m"      # later line wins over the sizing one
    assert last["spark.authenticate"] == "true"


def test_without_settings_the_files_are_unchanged():
    facts = make_facts()
    text = render_node_configs(facts=facts, node=facts.master)[
        "/opt/hadoop/etc/hadoop/hdfs-site.xml"]
    assert apply_hadoop_conf(text=text, file_name="hdfs-site.xml", hadoop_conf=()) == text
    assert "own settings" not in text


# ----------------------------------------------------------------------------- carry-over
def test_settings_round_trip_through_the_facts_file():
    facts = dataclasses.replace(make_facts(), spark_conf=(("spark.a", "1"),),
                                hadoop_conf=(("hdfs-site.xml", "dfs.replication", "1"),))
    back = ClusterFacts.from_json(facts.to_json())
    assert back == facts


def test_redeploy_keeps_the_previous_settings_and_launch_brings_its_own():
    previous = dataclasses.replace(make_facts(), spark_conf=(("spark.a", "1"),),
                                   hadoop_conf=(("core-site.xml", "k", "v"),))
    from_cloud = dataclasses.replace(make_facts(), spark_secret="")   # what the cloud knows
    kept, _ = reconcile_facts(facts=from_cloud, image_marker=MARKER,
                              services=("hdfs", "spark"),
                              previous=json_of(previous))
    assert kept.spark_conf == (("spark.a", "1"),)
    assert kept.hadoop_conf == (("core-site.xml", "k", "v"),)
    own = dataclasses.replace(from_cloud, spark_conf=(("spark.b", "2"),))
    mine, _ = reconcile_facts(facts=own, image_marker=MARKER, services=("hdfs", "spark"),
                              previous=json_of(previous))
    assert mine.spark_conf == (("spark.b", "2"),)
    # configure-cluster removing the last setting: replaced by nothing, not carried over
    cleared, _ = reconcile_facts(facts=from_cloud, image_marker=MARKER,
                                 services=("hdfs", "spark"), previous=json_of(previous),
                                 replace_conf=True)
    assert cleared.spark_conf == () and cleared.hadoop_conf == ()


def json_of(facts: ClusterFacts) -> dict:
    import json
    return json.loads(facts.to_json())


# ----------------------------------------------------------------------------- plan
def test_plan_names_the_services_that_read_what_changed():
    facts = dataclasses.replace(make_facts(), spark_conf=(("spark.a", "1"),),
                                hadoop_conf=(("hdfs-site.xml", "dfs.replication", "2"),))
    same = plan_change(facts=facts, spark_conf=(("spark.a", "1"),))
    assert not same.changed and same.affected == ()
    spark = plan_change(facts=facts, spark_conf=(("spark.a", "2"),))
    assert spark.changed and spark.affected == ("spark",)
    core = plan_change(facts=facts, hadoop_conf=(("core-site.xml", "k", "v"),))
    assert core.affected == ("hdfs", "yarn")
    yarn = plan_change(facts=facts, hadoop_conf=(("mapred-site.xml", "k", "v"),))
    assert yarn.affected == ("yarn",)
    gone = plan_change(facts=facts, unset=("hdfs-site:dfs.replication", "spark.a"))
    assert gone.new_spark == () and gone.new_hadoop == ()
    assert gone.affected == ("hdfs", "spark")


def test_plan_only_restarts_services_the_cluster_runs():
    facts = make_facts(services=("hdfs", "spark"))
    assert plan_change(facts=facts, hadoop_conf=(("core-site.xml", "k", "v"),)).affected \
        == ("hdfs",)
    assert plan_change(facts=facts, hadoop_conf=(("yarn-site.xml", "k", "v"),)).affected == ()


def test_unsetting_what_is_not_set_is_refused():
    facts = dataclasses.replace(make_facts(), spark_conf=(("spark.a", "1"),))
    for item in ("spark.b", "hdfs-site:dfs.replication"):
        with pytest.raises(errors.UsageError) as info:
            plan_change(facts=facts, unset=(item,))
        assert item in info.value.message and "--show" in info.value.hint


def test_settings_dict_groups_hadoop_by_file():
    facts = dataclasses.replace(make_facts(), spark_conf=(("spark.a", "1"),),
                                hadoop_conf=(("hdfs-site.xml", "x", "1"),
                                             ("hdfs-site.xml", "y", "2"),
                                             ("core-site.xml", "z", "3")))
    assert settings_dict(facts) == {"spark": {"spark.a": "1"},
                                    "hadoop": {"hdfs-site.xml": {"x": "1", "y": "2"},
                                               "core-site.xml": {"z": "3"}}}
