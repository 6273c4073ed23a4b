"""Pure functions of the provider: names, metadata, tags, nodes and quota arithmetic.

No connection needed: what a cluster's resources are called, how a server says which
cluster and role it belongs to, how a server record becomes a ``Node``, and the
quota arithmetic. Unit tests call these directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ..model import (META_CLUSTER, META_ROLE, ROLE_MASTER, ROLE_WORKER, TAG_PREFIX_CLUSTER,
                     TAG_PREFIX_ROLE, Node)

SECURITY_GROUP_PREFIX = "spark-openstack-"
SERVER_GROUP_PREFIX = "spark-openstack-"
FIP_DESCRIPTION_PREFIX = "spark-openstack:"


def security_group_name(cluster: str) -> str:
    return f"{SECURITY_GROUP_PREFIX}{cluster}"


def server_group_name(cluster: str) -> str:
    return f"{SERVER_GROUP_PREFIX}{cluster}"


def fip_description(cluster: str) -> str:
    return f"{FIP_DESCRIPTION_PREFIX}{cluster}"



def server_role(server) -> str:
    return (server.metadata or {}).get(META_ROLE, "")


def cluster_metadata(cluster: str, role: str) -> dict[str, str]:
    return {META_CLUSTER: cluster, META_ROLE: role}


def cluster_tags(cluster: str, role: str) -> list[str]:
    return [f"{TAG_PREFIX_CLUSTER}{cluster}", f"{TAG_PREFIX_ROLE}{role}"]


def node_from_server(server, *, floating_ips: Iterable[Any] = (), flavor=None) -> Node:
    """A ``Node`` from what the cloud reports (fixed IPv4, floating IP, flavor size)."""
    private = public = ""
    for addrs in (server.addresses or {}).values():
        for a in addrs:
            if a.get("version", 4) != 4:
                continue
            if a.get("OS-EXT-IPS:type", "fixed") == "floating":
                public = public or a["addr"]
            else:
                private = private or a["addr"]
    for fip in floating_ips:
        details = fip.port_details or {}
        if details.get("device_id") == server.id or (
                fip.fixed_ip_address and fip.fixed_ip_address == private):
            public = fip.floating_ip_address
    flav = flavor or server.flavor
    vcpus = getattr(flav, "vcpus", None) or 0
    ram = getattr(flav, "ram", None) or 0
    role = server_role(server) or (ROLE_MASTER if server.name.endswith("-master")
                                   else ROLE_WORKER)
    return Node(name=server.name, role=role, server_id=server.id, private_ip=private,
                public_ip=public or None, status=server.status, vcpus=int(vcpus),
                ram_mb=int(ram))


def resource_names(resources: Iterable[Any], limit: int = 15) -> str:
    names = sorted({getattr(r, "name", None) or getattr(r, "id", "?") for r in resources})
    if not names:
        return "(none)"
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def version_tuple(text: str | None) -> tuple[int, int]:
    if not text:
        return (2, 1)
    major, _, minor = str(text).partition(".")
    try:
        return (int(major), int(minor or 0))
    except ValueError:
        return (2, 1)


@dataclass(frozen=True)
class QuotaNeed:
    """What a launch will consume; compared with the project's limits."""

    servers: int
    vcpus: int
    ram_mb: int
    security_groups: int = 1
    security_group_rules: int = 0
    floating_ips: int = 0
    ports: int = 0
    server_group_members: int = 0
    server_groups: int = 0


def quota_shortfall(name: str, *, limit: int | None, used: int | None, need: int,
               unit: str = "") -> str | None:
    if limit is None or limit < 0 or need <= 0:
        return None
    free = limit - (used or 0)
    if free >= need:
        return None
    return (f"{name}: need {need}{unit}, {max(free, 0)}{unit} free "
            f"(limit {limit}{unit}, used {used or 0}{unit}); short by {need - max(free, 0)}{unit}")
