"""Cluster expiry on the sandbox, through the CLI as the non-admin user (issue 12, part 5):
``launch --expires-in`` stamps a deadline into every server's metadata, ``list`` and
``describe`` show it, bad durations are refused before anything is created, and ``reap``
destroys exactly the clusters past their deadline (``--dry-run`` only names them), leaving
nothing of them in the cloud and the others untouched.

A deadline passes by the clock; rather than wait, the test moves one cluster's deadline
into the past the way any project member can: by writing the servers' metadata.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from spark_openstack.expiry import META_EXPIRES
from spark_openstack.model import META_CLUSTER
from support.e2e import cli, fresh_name, launch_args, leftovers

pytestmark = pytest.mark.sandbox


def _servers(cloud, cluster):
    return [s for s in cloud.compute.servers() if (s.metadata or {}).get(META_CLUSTER) == cluster]


def _listed(env) -> dict:
    proc = cli(env, "list", "--json", check=0)
    return {c["cluster"]: c for c in json.loads(proc.stdout)}


@pytest.mark.parametrize("bad", ["8", "0m", "4m", "400d", "eight hours", "8h-1m"])
def test_bad_durations_are_refused_before_anything_exists(sandbox_env, cloud, keypair, bad):
    cluster = fresh_name("ex")
    proc = cli(sandbox_env, *launch_args(cluster, keypair, "-s", "1", "--expires-in", bad),
               check=False)
    assert proc.returncode == 2, proc.stderr
    assert "--expires-in" in proc.stderr
    assert not leftovers(cloud, cluster)


def test_reap_destroys_only_the_expired_cluster(sandbox_env, cloud, keypair):
    doomed, living, forever = fresh_name("exd"), fresh_name("exl"), fresh_name("exf")
    try:
        for cluster, extra in ((doomed, ["--expires-in", "2h"]),
                               (living, ["--expires-in", "1d2h"]), (forever, [])):
            cli(sandbox_env, *launch_args(cluster, keypair, "-s", "1", *extra), check=0)
        now = datetime.now(timezone.utc)
        for server in _servers(cloud, living):     # every server carries the deadline
            at = datetime.strptime(server.metadata[META_EXPIRES], "%Y-%m-%dT%H:%M:%SZ")
            at = at.replace(tzinfo=timezone.utc)
            assert timedelta(hours=25, minutes=55) < at - now <= timedelta(hours=26)
        listed = _listed(sandbox_env)
        assert listed[living]["expires"]["expired"] is False
        assert listed[forever]["expires"] == {"expires_at": None, "expired": False,
                                              "remaining_s": None, "text": "never"}
        described = json.loads(cli(sandbox_env, "describe", "-c", doomed, "--json",
                                       check=0).stdout)
        assert described["expires"]["text"].endswith("(in 1h59m)") or \
            described["expires"]["text"].endswith("(in 2h00m)")
        table = cli(sandbox_env, "list", check=0).stdout
        assert "never" in table and "UTC (in " in table

        past = (now - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        doomed_ids = [s.id for s in _servers(cloud, doomed)]
        cloud.compute.set_server_metadata(doomed_ids[0], **{META_EXPIRES: past})
        assert _listed(sandbox_env)[doomed]["expires"]["expired"] is True

        dry = json.loads(cli(sandbox_env, "reap", "--dry-run", "--json", check=0).stdout)
        assert [e["cluster"] for e in dry["expired"]] == [doomed]
        assert dry["destroyed"] == [] and len(_servers(cloud, doomed)) == 2

        done = json.loads(cli(sandbox_env, "reap", "--json", check=0).stdout)
        assert done["destroyed"] == [doomed] and done["failed"] == {}
        left = leftovers(cloud, doomed, doomed_ids)    # before anything else cleans up
        assert not {k: v for k, v in left.items() if k != "ports"}, left
        for cluster in (living, forever):
            assert {s.status for s in _servers(cloud, cluster)} == {"ACTIVE"}

        again = cli(sandbox_env, "reap", check=0)
        assert "no expired cluster" in again.stdout
    finally:
        for cluster in (doomed, living, forever):
            cli(sandbox_env, "destroy", "-c", cluster, "--yes", check=False)
