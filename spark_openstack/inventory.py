"""A cluster read back from the cloud: its facts, its state, describe and list, the one
reader of the master's facts file, and how to reach it over SSH.

The cloud says which servers the cluster has (and their addresses); the master's facts
file (written by the last deploy) says what was deployed there (services, the Spark
secret, the image's Java/Spark/Hadoop homes). ``deployed_facts`` merges the two, the
cloud's node list winning: configs re-rendered from it describe the servers that exist.
Every day-2 command starts from ``open_cluster``.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import errors, hostkeys
from .config import (SSH_USER_HINT, is_ssh_user, validate_cluster_name, validate_ssh_user,
                     web_ui_ports)
from .expiry import cluster_deadline, expiry_dict
from .keys import cluster_identity_file
from .model import (DEFAULT_DATA_DIR, FACTS_PATH_ON_MASTER, META_DATA_DIRS, META_SERVICES, parse_facts,
                    META_SSH_USER, ROLE_MASTER, ROLE_WORKER, ClusterFacts, Node)
from .provider import OpenStackProvider, security_group_name
from .services import DEFAULT_SERVICES
from .transport import SSHRunner


def cluster_state(statuses: Iterable[str]) -> str:
    """``ACTIVE``, ``SHUTOFF``, or the mix (``ACTIVE/SHUTOFF``): a cluster's state in one
    word, as describe, list and status all say it."""
    return "/".join(sorted(set(statuses)))


def node_dict(node: Node) -> dict:
    return {"name": node.name, "role": node.role, "server_id": node.server_id,
            "status": node.status, "private_ip": node.private_ip, "public_ip": node.public_ip,
            "vcpus": node.vcpus, "ram_mb": node.ram_mb}


def cluster_facts(*, provider: OpenStackProvider, cluster: str,
                  servers: list | None = None, ssh_user: str | None = None) -> ClusterFacts:
    """Rebuild a cluster's facts from the cloud (no local state).

    ``ssh_user`` (``login --ssh-user``) replaces the user recorded in the servers'
    metadata. Any project member can write that metadata and the user goes into an ssh
    command line, so a recorded value that is not a plain user name is refused.
    """
    servers = provider.cluster_servers(cluster) if servers is None else servers
    if not servers:
        raise errors.NotFoundError(f"no cluster named {cluster!r} in this project",
                                   hint="`spark-openstack list` shows the clusters there are")
    fips = provider.cluster_floating_ips(cluster=cluster, servers=servers)
    nodes = [provider.node_from_server(s, floating_ips=fips) for s in servers]
    masters = [n for n in nodes if n.role == ROLE_MASTER]
    if not masters:
        raise errors.ValidationError(
            f"cluster {cluster!r} has no master server (only "
            f"{', '.join(sorted(n.name for n in nodes))})",
            hint=f"it is broken; remove it with `spark-openstack destroy -c {cluster}`")
    meta = servers[0].metadata or {}
    workers = tuple(sorted((n for n in nodes if n.role == ROLE_WORKER),
                           key=lambda n: (len(n.name), n.name)))
    listed = meta.get(META_SERVICES)
    services = tuple(s for s in listed.split(",") if s) if listed else DEFAULT_SERVICES
    data_dirs = tuple(d for d in (meta.get(META_DATA_DIRS) or "").split(",") if d)
    if ssh_user is not None:
        ssh_user = validate_ssh_user(ssh_user)
    else:
        ssh_user = meta.get(META_SSH_USER) or "debian"
        if not is_ssh_user(ssh_user):
            raise errors.ValidationError(
                f"server {servers[0].name!r} of cluster {cluster!r} records the login user "
                f"{META_SSH_USER}={ssh_user!r}, which is not a user name; refusing to put it "
                "on an ssh command line (anyone in the project can set server metadata)",
                hint=f"pass --ssh-user USER ({SSH_USER_HINT}), or reset it with `openstack "
                     f"server set --property {META_SSH_USER}=debian {servers[0].name}`")
    return ClusterFacts(cluster_name=cluster, master=masters[0], workers=workers,
                        services=services, ssh_user=ssh_user,
                        data_dirs=data_dirs or (DEFAULT_DATA_DIR,))



def describe(*, provider: OpenStackProvider, cluster: str) -> dict:
    """JSON-able description of a cluster, from the cloud only."""
    servers = provider.cluster_servers(cluster)
    facts = cluster_facts(provider=provider, cluster=cluster, servers=servers)
    group = provider.find_security_group(security_group_name(cluster))
    server_groups = provider.find_server_groups(cluster)
    return {
        "cluster": cluster,
        "state": cluster_state(n.status for n in facts.nodes),
        "master": node_dict(facts.master),
        "workers": [node_dict(w) for w in facts.workers],
        "worker_count": len(facts.workers),
        "ssh_user": facts.ssh_user,
        "keypair": next((s.key_name for s in servers if s.id == facts.master.server_id), None),
        "services": list(facts.services),
        "security_group": group.name if group is not None else None,
        "server_group": server_groups[0].name if server_groups else None,
        "web_uis": {p.ui_name: f"http://{facts.master.address}:{p.number}"
                    for p in web_ui_ports(services=facts.services)},
        "expires": expiry_dict(cluster_deadline(servers)),
    }


def list_clusters(*, provider: OpenStackProvider) -> list[dict]:
    """Every spark-openstack cluster in the project, from server metadata."""
    out = []
    for name, servers in sorted(provider.all_cluster_servers().items()):
        master = next((s for s in servers if provider.server_role(s) == ROLE_MASTER), None)
        out.append({"cluster": name, "servers": len(servers),
                    "workers": sum(provider.server_role(s) == ROLE_WORKER for s in servers),
                    "master": master.name if master else None,
                    "state": cluster_state(s.status for s in servers),
                    "expires": expiry_dict(cluster_deadline(servers))})
    return out


@dataclass(frozen=True)
class LoginPlan:
    """How ``login`` reaches the master: the ssh argv, a note when no key was found
    (ssh then picks one), and the localhost URLs the ``-L`` forwards serve."""

    argv: list[str]
    note: str = ""
    ui_urls: dict[str, str] = field(default_factory=dict)


def require_ssh_client() -> None:
    """``login`` and ``notebook`` run OpenSSH's ``ssh``: say so when it is missing."""
    import shutil
    if shutil.which("ssh") is None:
        raise errors.UsageError("no `ssh` program on PATH", hint="install OpenSSH's client")


def login_plan(*, provider, cluster: str, identity_file: str | None = None,
               ssh_user: str | None = None, forward_ui: bool = False,
               command: Iterable[str] = (), need_ssh: bool = False) -> LoginPlan:
    """The cluster read once, its key looked up as every day-2 command does; a key that
    cannot be found is not fatal here (ssh has agents and its own defaults), it is said.
    ``need_ssh``: the plan is for running, so no ``ssh`` program is a ``UsageError``."""
    if ssh_user is not None:
        validate_ssh_user(ssh_user)
    if need_ssh:
        require_ssh_client()
    servers = provider.cluster_servers(cluster)
    facts = cluster_facts(provider=provider, cluster=cluster, servers=servers,
                          ssh_user=ssh_user)
    note = ""
    try:
        key = cluster_identity_file(provider=provider, facts=facts, servers=servers,
                                    identity_file=identity_file)
    except errors.SparkOpenstackError as exc:
        note = f"{exc.message}; letting ssh pick a key (pass --identity-file PATH)"
        key = None
    argv = login_command(facts=facts, key_filename=key, forward_ui=forward_ui) + list(command)
    urls = ({p.ui_name: f"http://localhost:{p.number}"
             for p in web_ui_ports(services=facts.services)} if forward_ui else {})
    return LoginPlan(argv=argv, note=note, ui_urls=urls)


def login_command(*, facts: ClusterFacts, key_filename: str | None,
                  forward_ui: bool = False, user: str | None = None,
                  known_hosts: str | None = None) -> list[str]:
    """The ``ssh`` argv that logs in to the master (with ``-L`` forwards for the web UI of
    every service the cluster runs: through SSH even the unsafe ones are only yours).

    The user goes in as ``-l USER`` and the host after ``--``, both checked first, so no
    value read from the cloud can become an ssh option (``-oProxyCommand=...``).
    ``ssh`` checks the cluster's pinned host keys (``known_hosts``, default the cluster's
    file): strictly once the master's key is in it, else it pins the key it first sees.
    """
    login_user = validate_ssh_user(user or facts.ssh_user,
                                   source="--ssh-user" if user else "the recorded login user")
    host = facts.master.address
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        raise errors.ValidationError(
            f"the master {facts.master.name!r} has no usable IP address ({host!r})",
            hint="`spark-openstack describe` shows its addresses") from None
    known_hosts = known_hosts or hostkeys.known_hosts_file(facts=facts)
    try:
        hostkeys.ensure_file(known_hosts)  # 0600 in a 0700 folder, before ssh adds to it
    except OSError as exc:
        raise hostkeys.unwritable(known_hosts, exc) from exc
    checking = "yes" if hostkeys.has_host(known_hosts, host) else "accept-new"
    argv = ["ssh", "-o", f"UserKnownHostsFile={hostkeys.ssh_option_path(known_hosts)}",
            "-o", f"StrictHostKeyChecking={checking}", "-o", "LogLevel=ERROR"]
    if key_filename:
        argv += ["-i", key_filename, "-o", "IdentitiesOnly=yes"]
    if forward_ui:
        for port in sorted({p.number for p in web_ui_ports(services=facts.services)}):
            argv += ["-L", f"{port}:{facts.master.private_ip}:{port}"]
    argv += ["-l", login_user, "--", host]
    return argv



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

    def read_deployed(self, *, what: str) -> ClusterFacts:
        """The deployed facts (``deployed_facts``) over one SSH connection, the cluster's
        servers first required ACTIVE for ``what``."""
        self.require_active(what=what)
        return self.with_runner(lambda runner: deployed_facts(runner=runner, facts=self.facts))

    def with_runner(self, work):
        """``work(runner)`` over one SSH runner, closed however it ends."""
        runner = self.runner()
        try:
            return work(runner)
        finally:
            runner.close()

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
    validate_cluster_name(cluster)
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
                     timeout=60).stdout
    return parse_facts(out, where=facts.master.name)


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


__all__ = ["ClusterAccess", "open_cluster", "cluster_facts", "cluster_state", "node_dict",
           "describe", "list_clusters", "login_command", "read_master_facts",
           "deployed_facts"]
