"""HDFS/YARN start, stop and format: the exact commands and their order.

Hadoop cannot run here (no distribution is reachable from these machines), so the
commands run against clearly named stand-in ``hdfs``/``yarn`` executables
(tests/unit/standins/) that log their argv per node and keep a little state. Spark's
commands run for real in tests/integration/test_e2e.py.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deploy_facts import make_facts
from spark_openstack import deploy
from spark_openstack.errors import DeployError, NodeErrors
from spark_openstack.services import HDFS, YARN, MasterRunner
from spark_openstack.services.base import CommandResult, tar_bytes

STANDINS = Path(__file__).parent / "standins"


class StandInRunner:
    """Runs each node's command in a local bash with the stand-ins first on PATH."""

    def __init__(self, tmp_path: Path, facts):
        self.log = tmp_path / "argv.log"
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.name_dir = f"{facts.data_dirs[0]}/namenode"
        self.fail_on: dict[str, str] = {}

    def run(self, node, command, *, timeout=None, check=True):
        env = dict(os.environ, PATH=f"{STANDINS}:{os.environ['PATH']}", NODE=node.name,
                   STANDIN_LOG=str(self.log), STANDIN_STATE=str(self.state),
                   HDFS_NAME_DIR=self.name_dir)
        if node.name in self.fail_on and self.fail_on[node.name] in command:
            command = "echo 'disk full' >&2; exit 3"
        proc = subprocess.run(["bash", "-c", command], env=env, capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise DeployError(f"{node.name}: `{command}` exited {proc.returncode}: "
                              f"{proc.stderr.strip()}")
        return CommandResult(proc.stdout, proc.stderr, proc.returncode)

    def put_files(self, node, files, *, owner="hduser"):
        pass

    def close(self):
        pass

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def cluster(tmp_path):
    facts = make_facts(workers=2, data_dirs=(str(tmp_path / "data"),))
    return facts, StandInRunner(tmp_path, facts)


def _without_status(calls):
    return [c for c in calls if "--daemon status" not in c]


def test_first_start_formats_then_starts_namenode_then_datanodes(cluster):
    facts, runner = cluster
    health = deploy.start_services(facts=facts, runner=runner, names=["hdfs", "yarn"],
                                   health_timeout=10)
    calls = _without_status(runner.calls())
    assert calls[:2] == [
        "demo-master hdfs namenode -format -nonInteractive -clusterid spark-openstack-demo",
        "demo-master hdfs --daemon start namenode",
    ]
    assert sorted(calls[2:4]) == ["demo-worker-1 hdfs --daemon start datanode",
                                  "demo-worker-2 hdfs --daemon start datanode"]
    assert calls[4:8] == [
        "demo-master hdfs dfsadmin -report -live",
        "demo-master hdfs dfsadmin -safemode wait",
        "demo-master hdfs dfs -mkdir -p /user/hduser",
        "demo-master hdfs dfs -chown hduser:hduser /user/hduser",
    ]
    assert calls[8] == "demo-master yarn --daemon start resourcemanager"
    assert sorted(calls[9:11]) == ["demo-worker-1 yarn --daemon start nodemanager",
                                   "demo-worker-2 yarn --daemon start nodemanager"]
    assert calls[11:] == ["demo-master yarn node -list -states RUNNING"]
    assert health["hdfs"].ok and health["hdfs"].actual == 2
    assert health["yarn"].ok and health["yarn"].actual == 2


def test_second_start_neither_reformats_nor_restarts(cluster):
    facts, runner = cluster
    deploy.start_services(facts=facts, runner=runner, names=["hdfs", "yarn"], health_timeout=10)
    before = len(runner.calls())
    deploy.start_services(facts=facts, runner=runner, names=["hdfs", "yarn"], health_timeout=10)
    again = runner.calls()[before:]
    assert not any("-format" in c or "--daemon start" in c for c in again)


def test_format_refuses_a_formatted_namenode_unless_forced(cluster):
    facts, runner = cluster
    assert deploy.format_hdfs(facts=facts, runner=runner) is True
    with pytest.raises(DeployError, match="already formatted"):
        deploy.format_hdfs(facts=facts, runner=runner)
    assert sum("-format" in c for c in runner.calls()) == 1   # refused before running hdfs
    deploy.format_hdfs(facts=facts, runner=runner, force=True)
    assert runner.calls()[-1].endswith("-format -nonInteractive "
                                       "-clusterid spark-openstack-demo -force")


def test_stop_goes_in_reverse_order(cluster):
    facts, runner = cluster
    deploy.start_services(facts=facts, runner=runner, names=["hdfs", "yarn"], health_timeout=10)
    before = len(runner.calls())
    deploy.stop_services(facts=facts, runner=runner, names=["hdfs", "yarn"])
    calls = runner.calls()[before:]
    assert sorted(calls[0:2]) == ["demo-worker-1 yarn --daemon stop nodemanager",
                                  "demo-worker-2 yarn --daemon stop nodemanager"]
    assert calls[2] == "demo-master yarn --daemon stop resourcemanager"
    assert sorted(calls[3:5]) == ["demo-worker-1 hdfs --daemon stop datanode",
                                  "demo-worker-2 hdfs --daemon stop datanode"]
    assert calls[5] == "demo-master hdfs --daemon stop namenode"
    health = deploy.cluster_health(facts=facts, runner=runner, names=["hdfs", "yarn"])
    assert health["hdfs"].actual == 0 and health["yarn"].actual == 0
    assert not health["hdfs"].ok


def test_every_failing_worker_is_named(cluster):
    facts, runner = cluster
    HDFS(facts=facts, runner=runner).format()
    runner.fail_on = {"demo-worker-1": "datanode", "demo-worker-2": "datanode"}
    with pytest.raises(NodeErrors) as info:
        HDFS(facts=facts, runner=runner).start()
    assert set(info.value.failures) == {"demo-worker-1", "demo-worker-2"}
    assert "[demo-worker-1]" in str(info.value) and "disk full" in str(info.value)


def test_health_timeout_says_what_is_missing(cluster):
    facts, runner = cluster
    yarn = YARN(facts=facts, runner=runner)
    runner.run(facts.master, "yarn --daemon start resourcemanager")
    runner.run(facts.workers[0], "yarn --daemon start nodemanager")
    with pytest.raises(DeployError, match=r"yarn not ready .*1/2 NodeManagers"):
        yarn.wait_healthy(timeout=1, interval=0.2)


def test_services_option_rejects_services_not_deployed(cluster):
    facts, runner = cluster
    spark_only = deploy.reconcile_facts(facts=facts, image_marker={"hadoop_version": None},
                                        services=["hdfs", "spark"])[0]
    with pytest.raises(Exception, match="not deployed"):
        deploy.services_for(facts=spark_only, runner=runner, names=["hdfs"])


def test_image_without_hadoop_means_spark_only_with_a_message(cluster):
    facts, _ = cluster
    marker = {"hadoop_version": None, "java_home": "/usr/lib/jvm/java-17-openjdk-amd64",
              "spark_home": "/opt/spark"}
    new, messages = deploy.reconcile_facts(facts=facts, image_marker=marker)
    assert new.services == ("spark",)
    assert messages and "no Hadoop" in messages[0]
    with pytest.raises(Exception, match="no Hadoop"):
        deploy.reconcile_facts(facts=facts, image_marker=marker, services=["hdfs"])
    with pytest.raises(DeployError, match="create-image"):
        deploy.reconcile_facts(facts=facts, image_marker=None)


def test_secret_is_kept_across_deploys_or_generated():
    facts = make_facts(secret="")
    marker = {"hadoop_version": "3.4.1"}
    kept, _ = deploy.reconcile_facts(facts=facts, image_marker=marker, existing_secret="old")
    assert kept.spark_secret == "old"
    fresh, _ = deploy.reconcile_facts(facts=facts, image_marker=marker)
    other, _ = deploy.reconcile_facts(facts=facts, image_marker=marker)
    assert len(fresh.spark_secret) >= 32 and fresh.spark_secret != other.spark_secret


def test_master_runner_runs_the_master_locally_and_unpacks_files(tmp_path):
    facts = make_facts()
    runner = MasterRunner(facts=facts)
    assert runner.run(facts.master, "echo $((6 * 7))").stdout.strip() == "42"
    assert runner.run(facts.master, "exit 4", check=False).exited == 4
    with pytest.raises(Exception, match="exited 4"):
        runner.run(facts.master, "exit 4")
    # the archive put_files sends unpacks with the given modes
    target = tmp_path / "root"
    target.mkdir()
    (tmp_path / "a.tgz").write_bytes(tar_bytes({"/conf/secret.conf": ("s", 0o600),
                                                "/conf/env.sh": ("e", 0o755)}))
    subprocess.run(["tar", "-xzf", str(tmp_path / "a.tgz"), "-C", str(target),
                    "--no-same-owner"], check=True)
    assert (target / "conf/secret.conf").stat().st_mode & 0o777 == 0o600
    assert (target / "conf/env.sh").stat().st_mode & 0o777 == 0o755
