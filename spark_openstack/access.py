"""From a cluster's name to its facts and an SSH runner: where every day-2 command starts.

The cloud says which servers the cluster has (and their addresses); the master's facts
file (written by the last deploy) says what was deployed there (services, the Spark
secret, the image's Java/Spark/Hadoop homes). ``deployed_facts`` merges the two, the
cloud's node list winning: configs re-rendered from it describe the servers that exist.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from . import errors, hostkeys
from .model import FACTS_PATH_ON_MASTER, ClusterFacts
from .services.base import SSHRunner


@dataclass
class ClusterAccess:
    """One cluster as the cloud lists it now, and how to reach its nodes over SSH."""

    provider: Any
    facts: ClusterFacts            # from the cloud alone (no secret, no image homes)
    servers: list = field(default_factory=list)
    key_filename: str | None = None
    known_hosts: str | None = None

    @property
    def name(self) -> str:
        return self.facts.cluster_name

    def runner(self) -> SSHRunner:
        """A new SSH runner: the master at its address, workers through the master."""
        return SSHRunner(ssh_user=self.facts.ssh_user, key_filename=self.key_filename,
                         gateway_host=self.facts.master.address,
                         known_hosts=self.known_hosts)

    def not_active(self) -> list[str]:
        return [n.name for n in self.facts.nodes if n.status != "ACTIVE"]

    def require_active(self, *, what: str) -> None:
        """Refuse (before changing anything) when a server is not ACTIVE."""
        down = self.not_active()
        if down:
            states = ", ".join(f"{n.name} {n.status}" for n in self.facts.nodes
                               if n.name in down)
            raise errors.ValidationError(
                f"cannot {what} cluster {self.name!r}: not every server is ACTIVE ({states})",
                hint=f"`spark-openstack start -c {self.name}` starts a stopped cluster; "
                     "`spark-openstack describe` shows the servers")

    def worker(self, name: str):
        """The worker called ``name`` (or its index: ``2`` means NAME-worker-2)."""
        wanted = f"{self.name}-worker-{name}" if name.isdigit() else name
        for node in self.facts.workers:
            if node.name == wanted:
                return node
        if wanted == self.facts.master.name:
            raise errors.ValidationError(
                f"{wanted} is the master of cluster {self.name!r}, not a worker",
                hint="only workers can be removed; destroy removes the whole cluster")
        raise errors.ValidationError(
            f"cluster {self.name!r} has no worker named {wanted!r} (its workers: "
            f"{', '.join(w.name for w in self.facts.workers) or 'none'})",
            hint=f"`spark-openstack status -c {self.name}` lists the nodes")

    def node(self, name: str):
        """Any node by name (the master too); ``ValidationError`` naming the real ones."""
        for node in self.facts.nodes:
            if node.name == name:
                return node
        raise errors.ValidationError(
            f"cluster {self.name!r} has no node named {name!r} (its nodes: "
            f"{', '.join(n.name for n in self.facts.nodes)})",
            hint=f"`spark-openstack describe -c {self.name}` lists the nodes")


def open_cluster(*, provider, cluster: str, identity_file: str | None = None,
                 ssh_user: str | None = None, servers: list | None = None) -> ClusterAccess:
    """Look the cluster up in the cloud (``NotFoundError`` when it has no servers) and
    find the private key for it; nothing is contacted over SSH yet. ``servers``: the
    cluster's servers from a listing the caller already made (batch status: one list
    for every cluster)."""
    from .cluster import cluster_facts, cluster_identity_file
    servers = provider.cluster_servers(cluster) if servers is None else servers
    facts = cluster_facts(provider=provider, cluster=cluster, servers=servers,
                          ssh_user=ssh_user)
    key = cluster_identity_file(provider=provider, facts=facts, servers=servers,
                                identity_file=identity_file)
    return ClusterAccess(provider=provider, facts=facts, servers=servers, key_filename=key,
                         known_hosts=hostkeys.known_hosts_file(facts=facts))


def read_master_facts(*, runner, facts: ClusterFacts) -> ClusterFacts | None:
    """The facts the last deploy wrote on the master (None when it never deployed)."""
    out = runner.run(facts.master, f"cat {FACTS_PATH_ON_MASTER} 2>/dev/null || true",
                     timeout=60).stdout.strip()
    if not out:
        return None
    try:
        return ClusterFacts.from_json(out)
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.DeployError(
            f"{facts.master.name}: {FACTS_PATH_ON_MASTER} is not readable facts: {exc}",
            hint=f"re-deploy with `spark-openstack deploy -c {facts.cluster_name}`") from exc


def deployed_facts(*, runner, facts: ClusterFacts) -> ClusterFacts:
    """The deployed facts with the cloud's current nodes (``DeployError`` when the cluster
    was never deployed: day-2 commands need a deployed cluster)."""
    on_master = read_master_facts(runner=runner, facts=facts)
    if on_master is None:
        raise errors.DeployError(
            f"cluster {facts.cluster_name!r} was never deployed ({facts.master.name} has no "
            f"{FACTS_PATH_ON_MASTER})",
            hint=f"deploy it first: `spark-openstack deploy -c {facts.cluster_name}`")
    return dataclasses.replace(on_master, master=facts.master, workers=facts.workers,
                               ssh_user=facts.ssh_user)

