"""The words of start's result come from the same deploy lines as launch's and deploy's."""
from __future__ import annotations

from spark_openstack import views

SUMMARY = {"health": ["hdfs: ok", "spark: ok"], "urls": {"Spark master": "http://m:8080"},
           "messages": ["deploy said this"], "services": ["hdfs", "spark", "jupyter"]}


def test_start_after_a_deploy_says_health_uis_messages_and_the_notebook_hint_in_order():
    result = {"already_running": False, "deploy": SUMMARY, "health": SUMMARY["health"],
              "messages": ["servers started"], "timings": {"total": 12.0}}
    lines = views.start_view(result, cluster="demo").lines
    assert lines[:2] == ["hdfs: ok", "spark: ok"]
    assert lines[2].startswith("Spark master: http://m:8080")
    assert lines[3:5] == ["servers started", "deploy said this"]
    assert lines[5] == views.NOTEBOOK_NEXT.format(name="demo")
    assert lines[6] == "started cluster 'demo' in 12.0s"
    assert views.deploy_view(SUMMARY, cluster="demo").lines == \
        views.deployed_lines(SUMMARY, cluster="demo")


def test_start_of_a_healthy_cluster_says_so_and_deploys_nothing():
    result = {"already_running": True, "deploy": None, "health": ["hdfs: ok"],
              "messages": [], "timings": {}}
    lines = views.start_view(result, cluster="demo").lines
    assert lines == ["cluster 'demo' is already running and healthy; nothing to do",
                     "hdfs: ok"]
