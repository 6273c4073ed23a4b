"""remove-workers' decisions before anything changes, and the decommission's revert.

The real decommission (Apache's NameNode draining real DataNodes, files read back) is
proven on the sandbox in tests/integration/test_day2.py; here each function's own logic
runs against a runner that answers like the master would.
"""
from __future__ import annotations

import dataclasses
import http.server
import json
import shlex
import subprocess
import sys
import threading

import paramiko
import pytest

from support.facts import make_facts
from spark_openstack import errors, hostkeys, scale
from spark_openstack.inventory import ClusterAccess
from spark_openstack.render import render_node_configs
from spark_openstack.transport import CommandResult


def _access(workers=3):
    return ClusterAccess(provider=None, facts=make_facts(workers=workers,
                                                         services=("hdfs", "spark")))


def test_n_removes_the_highest_numbered_workers():
    victims = scale.choose_victims(access=_access(3), count=2)
    assert [v.name for v in victims] == ["demo-worker-2", "demo-worker-3"]


def test_nodes_are_named_or_numbered_and_listed_once():
    victims = scale.choose_victims(access=_access(3), count=None,
                                   nodes=["2", "demo-worker-2", "demo-worker-1"])
    assert [v.name for v in victims] == ["demo-worker-2", "demo-worker-1"]


@pytest.mark.parametrize("count, nodes, error, words", [
    (0, (), errors.ValidationError, "at least 1"),
    (5, (), errors.ValidationError, "only 3 worker"),
    (3, (), errors.ValidationError, "no worker"),
    (None, ("demo-master",), errors.ValidationError, "is the master"),
    (None, ("demo-worker-9",), errors.ValidationError, "no worker named 'demo-worker-9'"),
    (None, ("1", "2", "3"), errors.ValidationError, "no worker"),
    (1, ("1",), errors.UsageError, "one of them"),
    (None, (), errors.UsageError, "-n COUNT or --node"),
])
def test_bad_choices_are_refused_with_the_reason(count, nodes, error, words):
    with pytest.raises(error) as info:
        scale.choose_victims(access=_access(3), count=count, nodes=nodes)
    assert words in info.value.message


class MasterAnswers:
    """Answers the master's commands from a table; records every command and file."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.commands: list[str] = []
        self.files: list[dict] = []

    def run(self, node, command, *, timeout=None, check=True):
        self.commands.append(command)
        for needle, out in self.answers.items():
            if needle in command:
                return CommandResult(out, "", 0)
        return CommandResult("", "", 0)

    def put_files(self, node, files, *, owner="hduser"):
        self.files.append({path.rsplit("/", 1)[-1]: content for path, (content, _) in
                           files.items()})

    def close(self):
        pass


@pytest.mark.parametrize("remaining, default, highest, refused", [
    (1, 2, 2, True),    # one DataNode cannot hold 2 replicas
    (2, 2, 2, False),
    (1, 3, 1, False),   # every file asks for 1: one DataNode is enough
    (1, 2, 0, False),   # an empty HDFS can shrink to one
    (2, 3, 3, True),
])
def test_a_shrink_hdfs_could_never_finish_is_refused(remaining, default, highest, refused):
    runner = MasterAnswers({"dfs.replication": f"{default}\n",
                            "hdfs dfs -ls -R /": f"{highest}\n"})
    facts = make_facts(workers=3, services=("hdfs", "spark"))
    if refused:
        with pytest.raises(errors.ValidationError) as info:
            scale.check_replication(facts=facts, runner=runner, remaining=remaining)
        assert "--lower-replication" in info.value.hint
        assert not any("setrep" in c for c in runner.commands)
    else:
        assert scale.check_replication(facts=facts, runner=runner,
                                       remaining=remaining) == ""


def test_lower_replication_sets_every_file_to_what_remains_and_waits():
    runner = MasterAnswers({"dfs.replication": "2\n",
                            "hdfs dfs -ls -R /": "2\n"})
    note = scale.check_replication(facts=make_facts(workers=2, services=("hdfs",)),
                                   runner=runner, remaining=1, lower_replication=True)
    assert "set to 1" in note
    assert any("hdfs dfs -setrep -R 1 /" in c for c in runner.commands)
    assert not any(" -w " in c for c in runner.commands if "setrep" in c)   # never blocks
    assert any("name=FSNamesystem" in c for c in runner.commands)         # polled instead


class _JmxCounters(MasterAnswers):
    """The master's commands answered from a table, except the replication probe: it is
    run here for real (its Python), against a local HTTP server with the JMX counters."""

    def __init__(self, answers, *, url):
        super().__init__(answers)
        self.url = url

    def run(self, node, command, *, timeout=None, check=True):
        if "name=FSNamesystem" not in command:
            return super().run(node, command, timeout=timeout, check=check)
        self.commands.append(command)
        argv = shlex.split(command)
        assert argv[:2] == ["python3", "-c"] and "name=FSNamesystem" in argv[3]
        done = subprocess.run([sys.executable, "-c", argv[2], self.url], capture_output=True,
                              text=True, timeout=30)
        return CommandResult(done.stdout, done.stderr, done.returncode)


def test_lower_replication_waits_until_the_namenode_has_no_block_to_fix():
    rounds = [{"UnderReplicatedBlocks": 0, "ExcessBlocks": 3, "PendingDeletionBlocks": 3,
               "PendingReplicationBlocks": 0},
              {"UnderReplicatedBlocks": 0, "ExcessBlocks": 0, "PendingDeletionBlocks": 1},
              {"UnderReplicatedBlocks": 0, "ExcessBlocks": 0, "PendingDeletionBlocks": 0,
               "PendingReplicationBlocks": 0}]
    served = []

    class Jmx(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            bean = rounds[min(len(served), len(rounds) - 1)]
            served.append(self.path)
            body = json.dumps({"beans": [bean]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Jmx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runner = _JmxCounters({"dfs.replication": "2\n", "hdfs dfs -ls -R /": "2\n"},
                              url=f"http://127.0.0.1:{server.server_port}/jmx")
        scale.check_replication(facts=make_facts(workers=2, services=("hdfs",)),
                                runner=runner, remaining=1, lower_replication=True)
    finally:
        server.shutdown()
    assert len(served) == 3       # asked until every counter was 0, then no more
    # (the second answer lacks a counter: that is "not yet", never "done")
    setrep = [i for i, c in enumerate(runner.commands) if "-setrep" in c]
    probes = [i for i, c in enumerate(runner.commands) if "name=FSNamesystem" in c]
    assert setrep and probes and setrep[0] < probes[0]


def _jmx(state: str, left: int) -> str:
    return json.dumps({"demo-worker-2": {"state": state, "left": left, "live": True},
                       "demo-worker-1": {"state": "In Service", "left": 0, "live": True}})


def test_a_decommission_that_does_not_finish_is_reverted(monkeypatch):
    runner = MasterAnswers({"NameNodeInfo": _jmx("Decommission In Progress", 7)})
    facts = make_facts(workers=2, services=("hdfs",))
    with pytest.raises(errors.TimeoutError_) as info:
        scale.decommission(facts=facts, runner=runner, victims=[facts.workers[1]],
                           timeout=1.5)
    assert "reverted" in info.value.message
    # first the victim listed and refreshed, then the list emptied and refreshed again
    excludes = [[ln.split("#", 1)[0].strip() for ln in f["dfs.exclude"].splitlines()]
                for f in runner.files]
    assert "10.213.0.22" in excludes[0]          # demo-worker-2's address
    assert "10.213.0.22" not in excludes[-1]
    refreshes = [c for c in runner.commands if "dfsadmin -refreshNodes" in c]
    assert len(refreshes) == 2
    assert not any("--daemon stop datanode" in c for c in runner.commands)


def test_a_finished_decommission_checks_fsck_then_stops_the_daemons():
    runner = MasterAnswers({
        "NameNodeInfo": _jmx("Decommissioned", 0),
        "hdfs fsck /": "Status: HEALTHY\n Missing blocks:\t0\n Corrupt blocks:\t0\n"
                       "The filesystem under path '/' is HEALTHY\n"})
    facts = make_facts(workers=2, services=("hdfs", "spark"))
    scale.decommission(facts=facts, runner=runner, victims=[facts.workers[1]], timeout=30)
    stops = [c for c in runner.commands if "--daemon stop datanode" in c or "stop-worker" in c]
    assert len(stops) == 2
    assert runner.commands.index(next(c for c in runner.commands if "fsck" in c)) < \
        runner.commands.index(stops[0])


def test_missing_blocks_stop_the_removal_and_revert():
    runner = MasterAnswers({
        "NameNodeInfo": _jmx("Decommissioned", 0),
        "hdfs fsck /": "Status: CORRUPT\n MISSING BLOCKS:\t2\n Missing blocks:\t2\n"
                       "The filesystem under path '/' is CORRUPT\n"})
    facts = make_facts(workers=2, services=("hdfs",))
    with pytest.raises(errors.DeployError) as info:
        scale.decommission(facts=facts, runner=runner, victims=[facts.workers[1]],
                           timeout=30)
    assert "NOT removed" in info.value.message and "reverted" in info.value.message
    assert not any("--daemon stop datanode" in c for c in runner.commands)


def test_exclude_lists_hold_the_draining_and_the_removed_workers_addresses():
    import dataclasses
    facts = make_facts(workers=3)
    draining = dataclasses.replace(facts, decommissioning=("demo-worker-3",),
                                   retired=("10.213.0.99",))
    for current, expected in ((facts, []), (draining, ["10.213.0.23", "10.213.0.99"])):
        files = render_node_configs(facts=current, node=current.master)
        for name in ("dfs.exclude", "yarn.exclude"):
            text = next(v for k, v in files.items() if k.endswith("/" + name))
            # Hadoop's HostsFileReader: whitespace-separated entries, "#" to end of line
            hosts = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
            assert [h for h in hosts if h] == expected


def test_removed_addresses_stay_excluded_until_a_node_has_the_address_again():
    from spark_openstack import deploy
    facts = make_facts(workers=2)      # demo-worker-1 is 10.213.0.21
    marker = {"hadoop_version": "3.4.1", "java_home": "/usr/lib/jvm/x", "spark_home": "/opt/spark"}
    kept, _ = deploy.reconcile_facts(facts=facts, image_marker=marker,
                                     previous={"retired": ["10.213.0.77", "10.213.0.21"]})
    assert kept.retired == ("10.213.0.77",)


def test_facts_round_trip_keeps_decommissioning():
    import dataclasses
    facts = dataclasses.replace(make_facts(workers=2), decommissioning=("demo-worker-1",),
                                retired=("10.213.0.5",))
    assert type(facts).from_json(facts.to_json()) == facts


def test_forgotten_hosts_lose_their_pinned_keys_and_only_they(tmp_path):
    path = str(tmp_path / "known_hosts")
    keys = [paramiko.RSAKey.generate(1024) for _ in range(3)]
    for host, key in zip(("10.0.0.5", "10.0.0.6", "[10.0.0.7]:2222"), keys):
        hostkeys.record(path, host=host, key=key)
    assert hostkeys.forget(path, hosts={"10.0.0.5", "10.0.0.7"}) == 2
    assert not hostkeys.has_host(path, "10.0.0.5")
    assert hostkeys.has_host(path, "10.0.0.6")
    assert hostkeys.forget(path, hosts={"10.9.9.9"}) == 0


def test_yarn_nodemanagers_leave_through_the_exclude_list(tmp_path):
    """YARN's part on real daemons (support.yarn.YarnRunner: the sandbox mirror's Hadoop 3
    on loopback): the victim's address goes into yarn.exclude, the ResourceManager is
    refreshed, the victim's NodeManager leaves, the other one keeps running."""
    from support.hadoop import require_tarball, unpack
    from support.yarn import YarnRunner, loopback_facts

    from spark_openstack import deploy
    from spark_openstack.services import YARN

    home = unpack(require_tarball(), tmp_path / "release")

    class Runner(YarnRunner):
        def put_files(self, node, files, *, owner="hduser"):
            # the exclude lists only: the rendered site files name the cloud's addresses
            for path, (content, _mode) in files.items():
                if path.endswith(".exclude"):
                    (self.conf(node) / path.rsplit("/", 1)[-1]).write_text(content)

    facts = dataclasses.replace(loopback_facts(), services=("yarn",))
    runner = Runner(tmp_path, home, facts)
    try:
        deploy.start_services(facts=facts, runner=runner, health_timeout=90)
        scale.decommission(facts=facts, runner=runner, victims=[facts.workers[1]],
                           timeout=60)
        yarn = YARN(facts=facts, runner=runner)
        assert yarn.running_nodes() == {facts.workers[0].private_ip}
        assert facts.workers[1].private_ip in \
            (runner.conf(facts.master) / "yarn.exclude").read_text()
        assert any("rmadmin -refreshNodes -g" in c for c in runner.calls())
        assert not yarn.running(facts.workers[1], "nodemanager")
        assert yarn.running(facts.workers[0], "nodemanager")
    finally:
        runner.kill_all()


def test_stopping_a_removed_worker_skips_the_masters_own_services():
    """remove-workers on a cluster with Jupyter: the worker's Spark worker, NodeManager
    and DataNode stop (in that order); Jupyter, on the master alone, has nothing there."""
    facts = make_facts(workers=2, services=("hdfs", "yarn", "spark", "jupyter"))

    class Recorder:
        def __init__(self):
            self.commands = []

        def run(self, node, command, *, timeout=None, check=True):
            self.commands.append((node.name, command))
            return CommandResult("", "", 0)

    runner = Recorder()
    scale.stop_daemons(facts=facts, runner=runner, nodes=[facts.workers[1]])
    assert {node for node, _ in runner.commands} == {"demo-worker-2"}
    said = [command for _, command in runner.commands]
    order = [next(d for d in ("stop-worker", "nodemanager", "datanode") if d in c)
             for c in said]
    assert order == ["stop-worker", "nodemanager", "datanode"], said
    assert not any("jupyter" in c or "supervisor" in c for c in said), said
