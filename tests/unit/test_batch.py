"""Batch launch's pure parts: the students file, the seats, the combined quota, the
per-student keys and the roster files (the sandbox test launches a real batch)."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import stat
import subprocess
import time

import pytest

from support.cloud import FakeCloud
from support.facts import make_facts
from spark_openstack import errors
from spark_openstack.batch import check_prefix, generate_key, plan_seats, read_students, times
from spark_openstack.deploy import _node_files
from spark_openstack.provider import QuotaNeed
from spark_openstack.roster import FIELDS, roster_row, write_roster


def test_students_file(tmp_path):
    path = tmp_path / "class.csv"
    path.write_text("# the November class\nAda Lovelace,ada@example.org\n\n"
                    '"Hopper, Grace",grace@example.org\nAlan Turing\n')
    assert read_students(path) == [("Ada Lovelace", "ada@example.org"),
                                   ("Hopper, Grace", "grace@example.org"),
                                   ("Alan Turing", "")]


@pytest.mark.parametrize("text, says", [
    ("Ada,ada@example.org\nAda\n", "listed twice"),
    ("Ada,not-an-address\n", "not name[,email]"),
    ("Ada,a@b.c,extra\n", "not name[,email]"),
    ("# nobody\n\n", "lists nobody"),
])
def test_bad_students_files(tmp_path, text, says):
    path = tmp_path / "class.csv"
    path.write_text(text)
    with pytest.raises(errors.UsageError) as info:
        read_students(path)
    assert says in info.value.message and "--students" in info.value.message


def test_seats_are_numbered_clusters():
    seats = plan_seats(prefix="nov", students=[("Ada", "a@x.org"), ("Alan", "")])
    assert [(s.cluster, s.student, s.email) for s in seats] == [
        ("nov-01", "Ada", "a@x.org"), ("nov-02", "Alan", "")]
    assert [s.cluster for s in plan_seats(prefix="nov", count=3)] == \
        ["nov-01", "nov-02", "nov-03"]
    for bad in ({"count": 0}, {"count": 100}, {}):
        with pytest.raises(errors.UsageError):
            plan_seats(prefix="nov", **bad)
    with pytest.raises(errors.UsageError) as info:
        plan_seats(prefix="nov", count=3, students=[("Ada", "")])
    assert "students file lists 1" in info.value.message


@pytest.mark.parametrize("prefix", ["", "Nov", "9nov", "a" * 31, "nov_1"])
def test_bad_prefixes(prefix):
    with pytest.raises(errors.UsageError):
        check_prefix(prefix)


def test_quota_need_times_k():
    one = QuotaNeed(servers=2, vcpus=2, ram_mb=4096, security_groups=1,
                    security_group_rules=3, floating_ips=1, ports=2, server_groups=1,
                    server_group_members=2)
    assert times(one, 3) == QuotaNeed(servers=6, vcpus=6, ram_mb=12288, security_groups=3,
                                      security_group_rules=9, floating_ips=3, ports=6,
                                      server_groups=3, server_group_members=2)


def test_generated_keys_are_distinct_and_ssh_keygen_reads_them(tmp_path):
    pairs = [generate_key(comment=f"c{i}") for i in range(2)]
    assert pairs[0][0] != pairs[1][0]
    private, public = pairs[0]
    path = tmp_path / "k"
    path.write_text(private)
    os.chmod(path, 0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True,
                             text=True, check=True).stdout.split()
    assert public.split()[:2] == derived[:2] and public.endswith(" c0")


def test_the_students_key_goes_to_the_masters_hduser_only():
    facts = dataclasses.replace(make_facts(), login_keys=("ssh-ed25519 AAAAstudent s",))
    _, master_files, master_root = _node_files(facts=facts, node=facts.master,
                                               hduser_public_key="ssh-ed25519 AAAAcluster c")
    keys = master_files["/home/hduser/.ssh/authorized_keys"][0].splitlines()
    assert keys == ['from="10.213.0.10,127.0.0.1" ssh-ed25519 AAAAcluster c',
                    "ssh-ed25519 AAAAstudent s"]
    setup, worker_files, _ = _node_files(facts=facts, node=facts.workers[0],
                                         hduser_public_key="ssh-ed25519 AAAAcluster c")
    assert "AAAAstudent" not in worker_files["/home/hduser/.ssh/authorized_keys"][0]
    assert not any("sudoers" in path for path in master_root)
    sudo = dataclasses.replace(facts, login_sudo=True)
    _, _, root = _node_files(facts=sudo, node=sudo.master, hduser_public_key="ssh-ed25519 A c")
    assert root["/etc/sudoers.d/spark-openstack-login"] == (
        "# spark-openstack: the cluster's login may sudo\nhduser ALL=(ALL) NOPASSWD:ALL\n",
        0o440)


def _row(**changes):
    facts = dataclasses.replace(make_facts(services=("hdfs", "spark", "jupyter")),
                                cluster_name="nov-01", jupyter_token="tok123")
    facts = dataclasses.replace(facts, **changes)
    return roster_row(student="Ada <Lovelace>", email="ada@example.org", facts=facts,
                      key_file="keys/nov-01.key", health="spark: 2/2 [ok]",
                      expires="never", login_user="hduser")


def test_roster_row_has_the_commands():
    row = _row()
    assert set(row) == set(FIELDS)
    assert row["ssh"] == ("ssh -i keys/nov-01.key -o IdentitiesOnly=yes "
                          "hduser@10.214.0.5")
    assert "-L 8080:10.213.0.10:8080" in row["tunnel"]
    assert "-L 9870:10.213.0.10:9870" in row["tunnel"]
    assert "-L 8888:10.213.0.10:8888" in row["tunnel"]
    assert row["jupyter_url"] == "http://localhost:8888/lab?token=tok123"
    plain = _row(services=("spark",))
    assert plain["hdfs_ui"] == "" and plain["jupyter_url"] == "" and \
        "9870" not in plain["tunnel"]


def test_roster_files(tmp_path):
    rows = [_row()]
    missing = [{"student": "Alan", "email": "", "cluster": "nov-02", "reason": "quota <x>"}]
    files = write_roster(folder=tmp_path, rows=rows, missing=missing, title="Spark class",
                         batch={"prefix": "nov"})
    assert sorted(files) == ["roster.csv", "roster.html", "roster.json"]
    for path in files.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    parsed = list(csv.DictReader(io.StringIO((tmp_path / "roster.csv").read_text())))
    assert [r["student"] for r in parsed] == ["Ada <Lovelace>"]
    data = json.loads((tmp_path / "roster.json").read_text())
    assert data["prefix"] == "nov" and data["students"] == rows
    assert data["without_cluster"] == missing
    page = (tmp_path / "roster.html").read_text()
    assert "Ada &lt;Lovelace&gt;" in page and "<Lovelace>" not in page
    assert "quota &lt;x&gt;" in page and page.count('class="card"') == 1


# ----------------------------------------------------------------------------- retry / report
class _Result:
    def __init__(self, facts):
        self.facts = facts
        self.deploy = {"health": {"spark": "spark: 1/1 workers ALIVE [ok]"}}


def _healthy(cluster):
    """What ``launch.launch`` returns for a healthy spark cluster named ``cluster``."""
    return _Result(dataclasses.replace(make_facts(services=("spark",)), cluster_name=cluster))


def _batch_of_three(monkeypatch, tmp_path, *, cloud, launch, stagger):
    """``batch_launch`` of three seats (Ada, Alan, Grace: nov-01..03) on ``cloud``, with
    validation and the quota need stubbed (two servers a cluster) and ``launch.launch``
    replaced by ``launch``; the roster goes to ``tmp_path/roster``."""
    from spark_openstack import batch as batch_mod
    from spark_openstack import launch as launch_mod
    from spark_openstack.config import LaunchSpec

    class Plan:
        flavor = master_flavor = object()
        floating_pool = None
    monkeypatch.setattr(launch_mod, "validate_launch", lambda **kw: Plan())
    monkeypatch.setattr(launch_mod, "quota_need",
                        lambda **kw: QuotaNeed(servers=2, vcpus=2, ram_mb=2048))
    monkeypatch.setattr(launch_mod, "launch", launch)
    seats = plan_seats(prefix="nov", students=[("Ada", ""), ("Alan", ""), ("Grace", "")])
    spec = LaunchSpec(cluster_name="nov-01", workers=1, keypair="k", image="i", flavor="f")
    return batch_mod.batch_launch(provider=cloud, spec=spec, seats=seats,
                                  roster_dir=tmp_path / "roster", stagger=stagger)


def test_a_failed_cluster_is_retried_once_then_reported(tmp_path, monkeypatch):
    """nov-02 fails twice (reported, no roster row, its key removed); nov-01 fails once
    and is retried; every launch carries its seat's own public key."""
    attempts: dict[str, int] = {}
    keys: dict[str, tuple] = {}

    def launch(*, provider, spec, progress):
        attempts[spec.cluster_name] = attempts.get(spec.cluster_name, 0) + 1
        keys[spec.cluster_name] = spec.login_keys
        if spec.cluster_name == "nov-02" or attempts[spec.cluster_name] == 1 \
                and spec.cluster_name == "nov-01":
            raise errors.DeployError(f"{spec.cluster_name}: spark not ready")
        return _healthy(spec.cluster_name)
    cloud = FakeCloud()
    result = _batch_of_three(monkeypatch, tmp_path, cloud=cloud, launch=launch, stagger=0)
    assert attempts == {"nov-01": 2, "nov-02": 2, "nov-03": 1}
    assert cloud.need.servers == 6                        # one check for all three
    assert cloud.calls.count("check_quotas") == 1
    assert len({k for k in keys.values()}) == 3 and all(len(k) == 1 for k in keys.values())
    assert not result["ok"] and [r["student"] for r in result["students"]] == ["Ada", "Grace"]
    assert result["without_cluster"] == [{"student": "Alan", "email": "", "cluster": "nov-02",
                                          "reason": "nov-02: spark not ready"}]
    assert [r["health"] for r in result["students"]] == ["spark: 1/1 workers ALIVE [ok]"] * 2
    assert sorted(p.name for p in (tmp_path / "roster" / "keys").iterdir()) == [
        "nov-01.key", "nov-01.key.pub", "nov-03.key", "nov-03.key.pub"]


def test_an_abort_ends_the_stagger_wait_at_once(tmp_path, monkeypatch):
    """The first wave's stagger is a polling.sleep: an abort (Ctrl-C) while seats wait
    for their turn ends those waits at once, and they are reported "not started"."""
    from spark_openstack import polling
    launched: list[str] = []

    def launch(*, provider, spec, progress):
        launched.append(spec.cluster_name)
        polling.ABORT.set()                      # Ctrl-C while the first one launches
        return _healthy(spec.cluster_name)
    polling.ABORT.clear()
    t0 = time.monotonic()
    try:
        result = _batch_of_three(monkeypatch, tmp_path, cloud=FakeCloud(), launch=launch,
                                 stagger=60)
    finally:
        polling.ABORT.clear()
    assert time.monotonic() - t0 < 10, "the stagger slept through the abort"
    assert launched == ["nov-01"]
    assert [m["reason"] for m in result["without_cluster"]] == [
        "nov-02: not started (interrupted)", "nov-03: not started (interrupted)"]
