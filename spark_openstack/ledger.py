"""What one run created, and the one way it is deleted again.

A launch, an add-workers and a destroy all end here: ``Ledger`` records what a run makes
(stamped with its run id so a server whose create answer was lost is still found as the
run's), ``delete_resources`` deletes in dependency order and waits, and ``destroy`` is
the same teardown with everything the cloud knows of the cluster.
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Callable

from . import errors, hostkeys
from .model import META_RUN
from .polling import shielded_cleanup
from .progress import PhaseTimer, Progress, ensure
from .provider import OpenStackProvider, security_group_name


@dataclass
class Ledger:
    """What one run made, so a failure deletes exactly that.

    ``run_id`` is stamped into every server's metadata (``META_RUN``): a server whose
    create response was lost is still found as this run's, and a concurrent launch of the
    same name is never mistaken for it. Safe to record into from several threads.
    """

    cluster: str
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    security_group_id: str | None = None
    server_group_id: str | None = None
    server_ids: dict[str, str] = field(default_factory=dict)   # name -> id
    floating_ip_ids: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_server(self, name: str, server_id: str) -> None:
        with self._lock:
            self.server_ids[name] = server_id

    def add_servers(self, ids: dict[str, str]) -> None:
        with self._lock:
            self.server_ids.update(ids)

    def add_floating_ip(self, fip_id: str) -> None:
        with self._lock:
            self.floating_ip_ids.append(fip_id)

    def anything(self) -> bool:
        return bool(self.security_group_id or self.server_group_id or self.server_ids
                    or self.floating_ip_ids)

    def made(self) -> list[str]:
        """What was recorded, in words (``["2 server(s)", "security group"]``)."""
        made = [f"{len(self.server_ids)} server(s)"] if self.server_ids else []
        made += ["security group"] if self.security_group_id else []
        made += ["server group"] if self.server_group_id else []
        made += ["floating IP"] if self.floating_ip_ids else []
        return made

    def delete(self, *, provider: OpenStackProvider, timeout: float = 300) -> dict:
        """Delete what this run recorded and what the cloud holds with its run id (never
        another run's); returns the counts ``delete_resources`` does."""
        return delete_resources(provider=provider, cluster=self.cluster,
                                server_ids=set(self.server_ids.values()),
                                floating_ip_ids=set(self.floating_ip_ids),
                                security_group_id=self.security_group_id,
                                server_group_ids={self.server_group_id} - {None},
                                discover=True, run_id=self.run_id, timeout=timeout)


def delete_resources(*, provider, cluster, server_ids: set[str], floating_ip_ids: set[str],
                      security_group_id: str | None, server_group_ids: set[str],
                      discover: bool, run_id: str | None = None,
                      servers: list | None = None, timeout: float = 300) -> dict:
    """Delete in dependency order and wait; ``discover`` adds what the cloud knows of.

    With ``run_id`` (a launch's rollback) discovery is limited to that run's servers and
    the floating IPs on them: groups are deleted by the ids the run recorded, never by
    name, so a concurrent launch of the same name keeps everything of its own.
    ``servers``: the cluster's servers as the caller just listed them (not listed again).
    """
    listed, servers = servers, []
    if discover:
        servers = provider.cluster_servers(cluster) if listed is None else list(listed)
        if run_id is not None:
            servers = [s for s in servers if (s.metadata or {}).get(META_RUN) == run_id]
        server_ids |= {s.id for s in servers}
        fips = provider.cluster_floating_ips(cluster=cluster, servers=servers)
        if run_id is not None:
            ours = {s.id for s in servers}
            fips = [f for f in fips if (f.port_details or {}).get("device_id") in ours]
        floating_ip_ids |= {f.id for f in fips}
        discover = run_id is None
    volume_ids = {v["id"] for s in servers for v in (s.attached_volumes or [])
                  if isinstance(v, dict) and v.get("id")}
    for fip_id in floating_ip_ids:
        provider.delete_floating_ip(fip_id)
    provider.delete_servers(server_ids=server_ids, wait=True, timeout=timeout)
    if security_group_id is None and discover:
        group = provider.find_security_group(security_group_name(cluster))
        security_group_id = group.id if group is not None else None
    if security_group_id:
        provider.delete_security_group(security_group_id)
    if discover:
        server_group_ids |= {g.id for g in provider.find_server_groups(cluster)}
    for gid in server_group_ids:
        provider.delete_server_group(gid)
    if volume_ids and provider.has_volume_service():
        provider.delete_volumes(volume_ids)
    return {"servers": len(server_ids), "floating_ips": len(floating_ip_ids),
            "security_groups": 1 if security_group_id else 0,
            "server_groups": len(server_group_ids),
            "volumes": len(volume_ids)}


# --------------------------------------------------------------------------- destroy

def what_is_left(*, provider: OpenStackProvider, cluster: str) -> str:
    """One sentence naming what of ``cluster`` the cloud still has (bounded, shielded)."""
    with shielded_cleanup():
        try:
            servers = sorted(s.name for s in provider.cluster_servers(cluster))
            group = provider.find_security_group(security_group_name(cluster))
        except errors.SparkOpenstackError as exc:
            return f"what is left could not be listed ({exc.message})"
    left = [f"server(s) {', '.join(servers)}"] if servers else []
    left += [f"security group {group.name}"] if group is not None else []
    return ("left: " + "; ".join(left)) if left else "nothing of it is left"


def destroy(*, provider: OpenStackProvider, cluster: str, servers: list | None = None,
            progress: Progress | None = None,
            confirm: Callable[[list[str]], None] | None = None) -> dict:
    """Delete every resource of ``cluster`` found in the cloud; fine to run twice.

    Returns counts of what was deleted (all zero when nothing was left); ``servers``: the
    caller's listing of the cluster, when it has one. ``confirm`` is shown the servers'
    names (from the same one listing) before anything is deleted; it raises to refuse.
    The cluster's pinned host keys go too, once its servers are gone: their addresses
    will be reused.
    """
    progress = ensure(progress)
    servers = provider.cluster_servers(cluster) if servers is None else servers
    if confirm is not None:
        confirm(sorted(s.name for s in servers))
    for srv in servers:
        progress.node_status(srv.name, "deleting")
    try:
        with PhaseTimer(progress, "delete", {}):
            result = delete_resources(provider=provider, cluster=cluster,
                                       server_ids={s.id for s in servers},
                                       floating_ip_ids=set(), security_group_id=None,
                                       server_group_ids=set(), discover=True,
                                       servers=servers)
    except (KeyboardInterrupt, errors.Interrupted):
        raise errors.Interrupted(
            f"destroy of {cluster!r} interrupted before it finished; "
            + what_is_left(provider=provider, cluster=cluster),
            hint=f"run `spark-openstack destroy -c {cluster}` again: it finishes the job "
                 "(deleting twice is harmless)") from None
    for srv in servers:
        progress.node_status(srv.name, "deleted")
    try:
        hostkeys.remove_cluster_files(cluster=cluster)
    except OSError as exc:
        progress.message(f"could not remove the pinned host keys of {cluster!r} under "
                         f"{hostkeys.known_hosts_dir()}: {exc}")
    return result



__all__ = ["Ledger", "delete_resources", "what_is_left", "destroy"]
