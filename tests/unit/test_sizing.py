"""YARN's arithmetic against the rendered numbers, for every flavor of the sandbox cloud
(issue 23: a 4 GB worker's NodeManager held the application master but no executor).

The CapacityScheduler is simulated here, independently of ``render``: every request is
rounded up to yarn.scheduler.minimum-allocation-mb and refused above maximum-allocation;
the application master lands on any worker; executors go to whichever NodeManager
heartbeats first, as many as fit (multiple assignments per heartbeat). Every AM placement
and every heartbeat order must leave at least one executor on every worker.
"""
from __future__ import annotations

import ast
import dataclasses
import itertools
from pathlib import Path

import pytest

from support.parse import hadoop_props as _props
from support.parse import spark_conf as _spark_conf
from spark_openstack import jobs, render
from spark_openstack.errors import ValidationError
from spark_openstack.model import ClusterFacts, Node

SERVICES = ("hdfs", "yarn", "spark")


def _sandbox_flavors() -> list[tuple[str, int, int]]:
    """``(name, vcpus, ram MB)`` from sandbox/bootstrap.py's FLAVORS (read, not imported)."""
    source = (Path(__file__).resolve().parents[2] / "sandbox" / "bootstrap.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "FLAVORS":
            return [(n, v, r) for n, v, r, _disk in ast.literal_eval(node.value)]
    raise AssertionError("sandbox/bootstrap.py has no FLAVORS")


FLAVORS = _sandbox_flavors()


def _facts(*, vcpus: int, ram: int, workers: int, master_ram: int | None = None,
           master_vcpus: int | None = None) -> ClusterFacts:
    master = Node(name="c-master", role="master", private_ip="10.0.0.10",
                  vcpus=master_vcpus or vcpus, ram_mb=master_ram or ram)
    nodes = tuple(Node(name=f"c-worker-{i}", role="worker", private_ip=f"10.0.0.{20 + i}",
                       vcpus=vcpus, ram_mb=ram) for i in range(1, workers + 1))
    return ClusterFacts(cluster_name="c", master=master, workers=nodes, services=SERVICES,
                        spark_secret="s" * 32)


def _mb(value: str) -> int:
    assert value.endswith("m"), value
    return int(value[:-1])


def _round_up(mb: int, step: int) -> int:
    return -(-mb // step) * step


def _overhead(heap: int) -> int:
    return max(384, heap // 10)     # spark.{executor,yarn.am,driver}.memoryOverhead default


def _rendered(facts: ClusterFacts) -> dict:
    """The numbers YARN and Spark read, from the files a deploy writes."""
    conf = _spark_conf(render.render_node_configs(facts=facts, node=facts.master)
                       ["/opt/spark/conf/spark-defaults.conf"])
    nodes = {}
    for worker in facts.workers:
        yarn = _props(render.render_node_configs(facts=facts, node=worker)
                      ["/opt/hadoop/etc/hadoop/yarn-site.xml"])
        nodes[worker.name] = (int(yarn["yarn.nodemanager.resource.memory-mb"]),
                              int(yarn["yarn.nodemanager.resource.cpu-vcores"]))
    return {"min": int(yarn["yarn.scheduler.minimum-allocation-mb"]),
            "max": int(yarn["yarn.scheduler.maximum-allocation-mb"]),
            "max_vcores": int(yarn["yarn.scheduler.maximum-allocation-vcores"]),
            "nodes": nodes,
            "executor": _mb(conf["spark.executor.memory"]),
            "executor_cores": int(conf["spark.executor.cores"]),
            "am": _mb(conf["spark.yarn.am.memory"]),
            "driver": _mb(conf["spark.driver.memory"])}


def _num_executors(facts: ClusterFacts) -> int:
    sub = jobs.Submission(app="hdfs:///app.py")
    argv = jobs.submit_argv(sub=sub, facts=facts, jobdir="/j/x", master="yarn")
    return int(argv[argv.index("--num-executors") + 1])


def _place(*, nodes: dict[str, int], am_node: str, am_mb: int, executor_mb: int,
           wanted: int, order: tuple[str, ...]) -> dict[str, int]:
    """Executors per node after the AM took ``am_mb`` on ``am_node`` and NodeManagers
    heartbeat in ``order`` (round after round) until nothing more fits or all are placed."""
    free = dict(nodes)
    assert free[am_node] >= am_mb, "the AM itself does not fit"
    free[am_node] -= am_mb
    got = dict.fromkeys(nodes, 0)
    pending = wanted
    while pending:
        placed = 0
        for name in order:
            while pending and free[name] >= executor_mb:
                free[name] -= executor_mb
                got[name] += 1
                pending -= 1
                placed += 1
        if not placed:
            break
    return got


def _check_first_job(facts: ClusterFacts) -> dict:
    numbers = _rendered(facts)
    step, nodes = numbers["min"], {n: mem for n, (mem, _) in numbers["nodes"].items()}
    executor = _round_up(numbers["executor"] + _overhead(numbers["executor"]), step)
    assert executor <= numbers["max"], "YARN would refuse the executor request"
    assert numbers["executor_cores"] <= min(v for _, v in numbers["nodes"].values())
    assert numbers["executor_cores"] <= numbers["max_vcores"]
    wanted = _num_executors(facts)
    for mode, heap in (("client", numbers["am"]), ("cluster", numbers["driver"])):
        am = _round_up(heap + _overhead(heap), step)
        assert am <= numbers["max"]
        for am_node in nodes:
            for order in itertools.permutations(nodes):
                got = _place(nodes=nodes, am_node=am_node, am_mb=am, executor_mb=executor,
                             wanted=wanted, order=order)
                assert all(got.values()), (mode, am_node, order, got, numbers)
    return numbers


ACCEPTED = [f for f in FLAVORS
            if not render.memory_plan_problems(
                master=_facts(vcpus=f[1], ram=f[2], workers=1).master,
                worker=_facts(vcpus=f[1], ram=f[2], workers=1).workers[0],
                services=SERVICES, worker_count=2)]
REFUSED = [f for f in FLAVORS if f not in ACCEPTED]


def test_the_sandbox_flavors_split_as_the_issue_needs():
    """m1.medium must hold HDFS + YARN + Spark (the Hadoop 3 issue); m1.tiny/small cannot."""
    assert [f[0] for f in ACCEPTED] == ["m1.medium", "m1.large"]
    assert [f[0] for f in REFUSED] == ["m1.tiny", "m1.small"]


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("flavor", ACCEPTED, ids=[f[0] for f in ACCEPTED])
def test_the_first_job_gets_an_executor_on_every_worker(flavor, workers):
    _, vcpus, ram = flavor
    _check_first_job(_facts(vcpus=vcpus, ram=ram, workers=workers))


def test_a_small_master_beside_medium_workers_is_fine():
    facts = _facts(vcpus=2, ram=4096, workers=2, master_ram=2048, master_vcpus=1)
    render.check_memory_plan(master=facts.master, worker=facts.workers[0],
                             services=SERVICES, worker_count=2)
    _check_first_job(facts)


@pytest.mark.parametrize("flavor", REFUSED, ids=[f[0] for f in REFUSED])
def test_a_refused_flavor_names_the_numbers(flavor):
    name, vcpus, ram = flavor
    facts = _facts(vcpus=vcpus, ram=ram, workers=2)
    with pytest.raises(ValidationError) as info:
        render.check_memory_plan(master=facts.master, worker=facts.workers[0],
                                 services=SERVICES, worker_count=2,
                                 flavor_names=(name, name))
    message = str(info.value)
    plan = render.node_sizing(node=facts.workers[0], services=SERVICES, worker_count=2)
    assert f"= {plan.needed_mb} MB; its flavor has {ram} MB" in message
    assert "YARN containers >= 1792" in message and "512+384" in message
    assert name in message


def test_the_numbers_pinned_per_sandbox_flavor():
    """What deploy writes for two workers (master of the same flavor): NodeManager MB,
    min-allocation, executor heap (+384 overhead, rounded), AM, driver, executors asked."""
    pinned = {"m1.medium": dict(nm=1920, step=128, executor=576, executor_container=1024,
                                am=512, am_container=896, driver=512, cores=2, asked=2),
              "m1.large": dict(nm=3328, step=128, executor=1664, executor_container=2048,
                               am=512, am_container=896, driver=896, cores=4, asked=2)}
    for name, vcpus, ram in ACCEPTED:
        facts = _facts(vcpus=vcpus, ram=ram, workers=2)
        numbers = _rendered(facts)
        got = dict(nm=numbers["nodes"]["c-worker-1"][0], step=numbers["min"],
                   executor=numbers["executor"],
                   executor_container=render.yarn_container_mb(heap_mb=numbers["executor"]),
                   am=numbers["am"],
                   am_container=render.yarn_container_mb(heap_mb=numbers["am"]),
                   driver=numbers["driver"], cores=numbers["executor_cores"],
                   asked=_num_executors(facts))
        assert got == pinned[name], name
        # the AM's worker is full with the AM and one executor; no worker holds two
        assert got["am_container"] + got["executor_container"] <= got["nm"] \
            < 2 * got["executor_container"]


def test_the_issue_23_numbers_would_be_refused():
    """The plan the issue saw (NM 1216, min-allocation 512, executor 832m) cannot hold the
    AM (896 -> 1024) and an executor (1216) at once: yarn_plan_problems says so."""
    sizing = render.ClusterSizing(spark_executor_mb=832, spark_driver_mb=832,
                                  yarn_min_allocation_mb=512, yarn_max_allocation_mb=1216,
                                  yarn_max_allocation_vcores=2, mapreduce_task_mb=512,
                                  mapreduce_task_heap_mb=409)
    problems = render.yarn_plan_problems(sizing=sizing, nodemanager_mb=1216)
    assert problems and "512+384 -> 1024 MB" in problems[0]
    assert "832+384 -> 1536 MB" in problems[0] and "offers 1216 MB" in problems[0]


@pytest.mark.parametrize("heap, step, container", [
    (512, 128, 896), (576, 128, 1024), (512, 512, 1024), (832, 512, 1536),
    (4096, 128, 4096 + 512), (1664, 128, 2048)])
def test_yarn_rounds_heap_plus_overhead_up(heap, step, container):
    assert render.yarn_container_mb(heap_mb=heap, min_allocation_mb=step) == container


def test_two_applications_fit_the_am_limit_on_two_workers():
    """A notebook's AM beside a job's: maximum-am-resource-percent admits both."""
    for _, vcpus, ram in ACCEPTED:
        facts = _facts(vcpus=vcpus, ram=ram, workers=2)
        cap = _props(render.render_node_configs(facts=facts, node=facts.master)
                     ["/opt/hadoop/etc/hadoop/capacity-scheduler.xml"])
        percent = float(cap["yarn.scheduler.capacity.maximum-am-resource-percent"])
        numbers = _rendered(facts)
        total = sum(mem for mem, _ in numbers["nodes"].values())
        am = _round_up(numbers["am"] + _overhead(numbers["am"]), numbers["min"])
        assert 2 * am <= _round_up(int(total * percent), numbers["min"])


def test_user_settings_change_what_submit_asks_for():
    facts = _facts(vcpus=2, ram=4096, workers=3)
    assert _num_executors(facts) == 3
    sub = jobs.Submission(app="hdfs:///a.py", conf=(("spark.executor.instances", "5"),))
    argv = jobs.submit_argv(sub=sub, facts=facts, jobdir="/j/x", master="yarn")
    assert "--num-executors" not in argv
    dyn = dataclasses.replace(facts, spark_conf=(("spark.dynamicAllocation.enabled", "true"),))
    assert "--num-executors" not in jobs.submit_argv(
        sub=jobs.Submission(app="hdfs:///a.py"), facts=dyn, jobdir="/j/x", master="yarn")
    # a smaller executor (896 MB): two fit a 1920 MB worker, one beside the AM: three
    small = jobs.Submission(app="hdfs:///a.py", conf=(("spark.executor.memory", "512m"),))
    argv = jobs.submit_argv(sub=small, facts=dataclasses.replace(facts, workers=facts.workers[:2]),
                            jobdir="/j/x", master="yarn")
    assert argv[argv.index("--num-executors") + 1] == "3"
