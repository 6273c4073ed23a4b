"""status / stop / start (``spark_openstack.power``): what is asked of the cloud and of the
nodes, in which order, and what the user is told — against a small in-memory cloud and a
runner that answers the master's health commands as Hadoop and Spark print them."""
from __future__ import annotations

import dataclasses
import json
import types

import pytest

from support.cli import invoke
from support.cloud import FakeCloud
from support.cloud import server as cloud_server
from support.facts import make_facts
from spark_openstack import cli, errors, inventory, power
from spark_openstack.model import FACTS_PATH_ON_MASTER
from spark_openstack.transport import CommandResult

NAMES = ("demo-master", "demo-worker-1", "demo-worker-2")
IPS = {"demo-master": "10.213.0.10", "demo-worker-1": "10.213.0.21",
       "demo-worker-2": "10.213.0.22"}


def _cloud(statuses=None, *, events):
    """The cluster's servers in the one fake cloud; they change state as Nova's would."""
    statuses = statuses or dict.fromkeys(NAMES, "ACTIVE")
    return FakeCloud(events=events, servers=[
        cloud_server(n, status=s, ip=IPS[n],
                     floating_ip="10.214.0.5" if n.endswith("master") else None)
        for n, s in statuses.items()])


class Master:
    """A runner whose master answers like a deployed cluster (the facts file, `hdfs
    dfsadmin -report`, `yarn node -list`, the Spark master's JSON); ``down`` names
    workers whose daemons are not up. Every command is logged in ``events``."""

    def __init__(self, *, events, down=(), deployed=True):
        self.events = events
        self.down = set(down)
        self.deployed = deployed
        self.closed = 0

    def run(self, node, command, *, timeout=None, check=True):
        self.events.append(f"{node.name}: {command}")
        up = [w for w in NAMES[1:] if w not in self.down]
        if command.startswith(f"cat {FACTS_PATH_ON_MASTER}"):
            out = dataclasses.replace(make_facts(), spark_home="/opt/spark-4.3.0",
                                      hadoop_version="3.4.1").to_json() \
                if self.deployed else ""
        elif command.startswith("hdfs dfsadmin -report"):
            out = "".join(f"Name: {IPS[w]}:9866 ({w})\nHostname: {w}\n\n" for w in up)
        elif command.startswith("yarn node "):
            out = "".join(f"{w}:40123\tRUNNING\t{w}:8042\t0\n" for w in up)
        elif "urlopen" in command:
            out = json.dumps({"workers": [{"host": IPS[w], "state": "ALIVE"} for w in up]})
        else:
            out = ""
        return CommandResult(out, "", 0)

    def put_files(self, *a, **kw):
        raise AssertionError("status/stop write nothing")

    def close(self):
        self.closed += 1


@pytest.fixture
def world(monkeypatch):
    """(cloud, master runner, events): one event log for the cloud's calls and the
    master's commands, so their order can be checked."""
    events: list[str] = []

    def make(statuses=None, **runner_kw):
        cloud = _cloud(statuses, events=events)
        runner = Master(events=events, **runner_kw)
        monkeypatch.setattr(inventory.ClusterAccess, "runner", lambda self: runner)
        return cloud, runner, events
    return make


def _no_ssh(monkeypatch):
    monkeypatch.setattr(inventory.ClusterAccess, "runner",
                        lambda self: pytest.fail("a stopped cluster must not be contacted"))


# ----------------------------------------------------------------------------- status
def test_status_reports_each_service_against_the_workers_and_names_the_missing(world):
    cloud, runner, _ = world(down={"demo-worker-2"})
    report = power.cluster_status(provider=cloud, cluster="demo", identity_file="/k")
    assert set(report) == {"cluster", "state", "nodes", "services", "healthy"}
    assert report["state"] == "ACTIVE" and report["healthy"] is False
    assert report["nodes"][0] == {"name": "demo-master", "role": "master",
                                  "status": "ACTIVE", "private_ip": "10.213.0.10",
                                  "public_ip": "10.214.0.5", "server_id": "id-demo-master",
                                  "vcpus": 0, "ram_mb": 0}    # describe's node dict
    assert [n["name"] for n in report["nodes"]] == list(NAMES)
    assert list(report["services"]) == ["hdfs", "yarn", "spark"]
    for name, service in report["services"].items():
        assert service["expected"] == 2 and service["actual"] == 1
        assert service["missing"] == ["demo-worker-2"] and service["ok"] is False
        assert service["line"].startswith(f"{name}: 1/2") and "missing: demo-worker-2" \
            in service["line"]
    json.dumps(report)                      # plain JSON, no objects
    assert runner.closed == 1


def test_status_of_a_healthy_cluster(world):
    cloud, _, _ = world()
    report = power.cluster_status(provider=cloud, cluster="demo", identity_file="/k")
    assert report["healthy"] is True
    assert all(s["ok"] and s["actual"] == 2 and s["missing"] == []
               for s in report["services"].values())


def test_a_service_that_does_not_answer_is_one_line_naming_why(world):
    """The Spark master down: its JSON fetch fails with a Python traceback on stderr;
    status shows the traceback's last line, not 15 lines of it."""
    cloud, runner, _ = world()
    answer = runner.run

    def spark_master_down(node, command, **kw):
        if "urlopen" in command:
            raise errors.DeployError(
                f"{node.name}: `{command}` exited 1:\nTraceback (most recent call last):\n"
                '  File "request.py", line 1351, in do_open\n    raise URLError(err)\n'
                "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>")
        return answer(node, command, **kw)
    runner.run = spark_master_down
    report = power.cluster_status(provider=cloud, cluster="demo", identity_file="/k")
    assert report["services"]["spark"]["line"] == (
        "spark: 0/2 unreachable: urllib.error.URLError: <urlopen error [Errno 111] "
        "Connection refused>; missing: demo-worker-1, demo-worker-2 [NOT READY]")
    assert report["services"]["hdfs"]["ok"] and not report["healthy"]


def test_status_of_a_stopped_cluster_says_so_without_ssh(world, monkeypatch):
    cloud, _, _ = world(dict.fromkeys(NAMES, "SHUTOFF"))
    _no_ssh(monkeypatch)
    report = power.cluster_status(provider=cloud, cluster="demo", identity_file="/k")
    assert report["state"] == "SHUTOFF" and report["healthy"] is False
    assert {n["status"] for n in report["nodes"]} == {"SHUTOFF"}
    assert report["services"]["hdfs"] == {
        "expected": 2, "actual": None, "missing": [], "ok": False, "checked": False,
        "line": "hdfs: not checked: cluster is stopped"}
    assert report["note"] == ("cluster is stopped; `spark-openstack start -c demo` "
                              "starts it")


def test_status_of_a_never_deployed_cluster(world):
    cloud, _, _ = world(deployed=False)
    report = power.cluster_status(provider=cloud, cluster="demo", identity_file="/k")
    assert report["healthy"] is False and "never deployed" in report["note"]
    assert report["services"]["spark"]["line"] == "spark: not checked: not deployed"


def test_status_cli_exit_code_says_healthy_or_not(world, monkeypatch, capsys):
    cloud, runner, _ = world()
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: cloud))
    argv = ["status", "-c", "demo", "--identity-file", "/k"]
    assert cli.main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["healthy"] is True
    runner.down = {"demo-worker-1"}
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "NOT healthy" in out and "missing: demo-worker-1" in out
    for server in cloud.servers:
        server.status = "SHUTOFF"
    assert cli.main(argv) == 1
    assert "hdfs: not checked: cluster is stopped" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["status", "stop", "start"])
def test_an_unknown_cluster_is_refused_before_anything_changes(command, world, monkeypatch,
                                                               capsys):
    cloud, _, events = world()
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: cloud))
    assert cli.main([command, "-c", "nope", "--identity-file", "/k"]) == 2
    err = capsys.readouterr().err
    assert "no cluster named 'nope'" in err and "spark-openstack list" in err
    assert events == []


@pytest.mark.parametrize("command", ["status", "stop", "start"])
def test_help_has_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0 and f"spark-openstack {command} -c demo" in result.output
    if command == "status":
        assert "Exit status: 0 when every server is ACTIVE" in result.output


# ----------------------------------------------------------------------------- stop
def test_stop_goes_spark_yarn_hdfs_then_every_server(world):
    cloud, _, events = world()
    result = power.stop_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert result["services_stopped"] == ["spark", "yarn", "hdfs"]
    assert result["servers_stopped"] == list(NAMES) and not result["already_stopped"]
    stops = [e for e in events if "stop" in e and not e.startswith("wait")]

    def first(word):
        return next(i for i, e in enumerate(stops) if word in e)

    def last(word):
        return max(i for i, e in enumerate(stops) if word in e)
    assert last("stop-master.sh") < first("yarn --daemon stop nodemanager")
    assert last("yarn --daemon stop resourcemanager") < first("hdfs --daemon stop datanode")
    assert last("hdfs --daemon stop namenode") < first("stop_server")
    assert sorted(stops[first("stop_server"):]) == [f"stop_server {n}" for n in NAMES]
    assert events[-1] == "wait SHUTOFF " + ",".join(NAMES)
    assert {s.status for s in cloud.servers} == {"SHUTOFF"}
    # the facts read were the deployed ones: Spark's scripts under the image's home
    assert "demo-worker-1: /opt/spark-4.3.0/sbin/stop-worker.sh || true" in events


def test_stop_of_a_stopped_cluster_does_nothing(world, monkeypatch):
    cloud, _, events = world(dict.fromkeys(NAMES, "SHUTOFF"))
    _no_ssh(monkeypatch)
    result = power.stop_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert result["already_stopped"] and result["servers_stopped"] == []
    assert events == []


def test_stop_with_a_worker_already_off_leaves_it_out(world):
    cloud, _, events = world({"demo-master": "ACTIVE", "demo-worker-1": "ACTIVE",
                              "demo-worker-2": "SHUTOFF"})
    result = power.stop_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert not any(e.startswith("demo-worker-2:") for e in events)
    assert "stop_server demo-worker-2" not in events
    assert result["servers_stopped"] == ["demo-master", "demo-worker-1"]
    assert "not ACTIVE, nothing to stop there: demo-worker-2" in result["messages"]
    assert {s.status for s in cloud.servers} == {"SHUTOFF"}


def test_stop_of_a_never_deployed_cluster_stops_its_servers(world):
    cloud, _, events = world(deployed=False)
    result = power.stop_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert result["services_stopped"] == []
    assert any("never deployed" in m for m in result["messages"])
    assert not any("--daemon stop" in e for e in events)
    assert {s.status for s in cloud.servers} == {"SHUTOFF"}


# ----------------------------------------------------------------------------- start
@pytest.fixture
def redeploy(monkeypatch):
    """Stand-ins for the SSH wait and the deploy (both tested where they live)."""
    calls = []

    def reachable(*, facts, key_filename, timeout, progress=None, known_hosts=None):
        calls.append(("reachable", tuple(n.status for n in facts.nodes), key_filename))

    def deploy_existing(*, provider, cluster, identity_file=None, progress=None, **kw):
        calls.append(("deploy", cluster, identity_file))
        health = types.SimpleNamespace(ok=True, line=lambda: "hdfs: 2/2 DataNodes live [ok]")
        return {"services": ["hdfs"], "health": {"hdfs": health}, "urls": {},
                "timings": {"deploy: total": 1.0}, "messages": []}
    monkeypatch.setattr("spark_openstack.launch.wait_until_reachable", reachable)
    monkeypatch.setattr("spark_openstack.launch.deploy_existing", deploy_existing)
    return calls


def test_start_boots_every_server_waits_for_ssh_then_redeploys(world, redeploy):
    cloud, _, events = world(dict.fromkeys(NAMES, "SHUTOFF"))
    result = power.start_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert sorted(e for e in events if e.startswith("start_server")) == \
        [f"start_server {n}" for n in NAMES]
    assert "wait ACTIVE " + ",".join(NAMES) in events
    # SSH is awaited on the facts read after the start (all ACTIVE), then the deploy
    assert redeploy == [("reachable", ("ACTIVE",) * 3, "/k"), ("deploy", "demo", "/k")]
    assert result["servers_started"] == list(NAMES) and result["healthy"] is True
    assert result["health"] == ["hdfs: 2/2 DataNodes live [ok]"]
    assert set(result["timings"]) >= {"start servers", "wait for ssh", "deploy: total"}


def test_start_on_a_running_healthy_cluster_does_nothing(world, redeploy):
    cloud, _, events = world()
    result = power.start_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert result["already_running"] and result["healthy"]
    assert redeploy == [] and not any("start_server" in e for e in events)


def test_start_on_a_running_cluster_with_a_service_down_redeploys(world, redeploy):
    cloud, _, events = world(down={"demo-worker-2"})
    result = power.start_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert not result["already_running"] and redeploy == [("deploy", "demo", "/k")]
    assert not any("start_server" in e for e in events)


def test_start_refuses_a_server_nova_cannot_start_before_changing_anything(world,
                                                                         redeploy):
    cloud, _, events = world({"demo-master": "SHUTOFF", "demo-worker-1": "ERROR",
                              "demo-worker-2": "SHUTOFF"})
    with pytest.raises(errors.ValidationError, match="demo-worker-1 is ERROR"):
        power.start_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert events == [] and redeploy == []


def test_start_of_a_never_deployed_cluster_only_boots_it(world, redeploy):
    cloud, _, _ = world(dict.fromkeys(NAMES, "SHUTOFF"), deployed=False)
    result = power.start_cluster(provider=cloud, cluster="demo", identity_file="/k")
    assert [c[0] for c in redeploy] == ["reachable"]
    assert any("never deployed" in m for m in result["messages"])
