"""Neutron: the cluster's security group (built here and only here: its rules are
``security_group_rules``), ports and floating IPs.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from .. import errors
from ..polling import poll
from .naming import fip_description, security_group_name
from .sdk_errors import translate_errors

SSH_PORT = 22


def security_group_rules(*, group_id: str, ssh_cidrs: Iterable[str],
                         ui_rules: Iterable[tuple[str, int]] = ()) -> list[dict[str, Any]]:
    """The one definition of a cluster's ingress rules: members talk freely (IPv4 and
    IPv6), SSH from ``ssh_cidrs``, and the ``(cidr, port)`` pairs of ``ui_rules`` (which
    UI may be opened to whom is policy decided in ``config.web_ui_rules``)."""
    rules: list[dict[str, Any]] = [
        dict(security_group_id=group_id, direction="ingress", ethertype=ethertype,
             remote_group_id=group_id) for ethertype in ("IPv4", "IPv6")]

    def cidr_rule(cidr, port):
        eth = "IPv6" if ipaddress.ip_network(cidr).version == 6 else "IPv4"
        return dict(security_group_id=group_id, direction="ingress", ethertype=eth,
                    protocol="tcp", port_range_min=port, port_range_max=port,
                    remote_ip_prefix=cidr)
    pairs = dict.fromkeys([(c, SSH_PORT) for c in ssh_cidrs] + list(ui_rules))
    return rules + [cidr_rule(c, p) for c, p in pairs]


#: Neutron adds an egress rule per ethertype to every new group.
DEFAULT_EGRESS_RULES = 2


def security_group_rule_count(*, ssh_cidrs: Iterable[str],
                              ui_rules: Iterable[tuple[str, int]] = ()) -> int:
    """Rules a cluster's group holds, Neutron's default egress pair included (quota)."""
    return DEFAULT_EGRESS_RULES + len(security_group_rules(
        group_id="count", ssh_cidrs=ssh_cidrs, ui_rules=ui_rules))


class NetworkMixin:
    """Security groups, ports and floating IPs (part of ``OpenStackProvider``)."""

    conn: Any

    @translate_errors
    def find_security_group(self, name: str):
        groups = [g for g in self.conn.network.security_groups(name=name) if g.name == name]
        return groups[0] if groups else None

    @translate_errors
    def create_security_group(self, *, cluster: str, ssh_cidrs: Iterable[str],
                              ui_rules: Iterable[tuple[str, int]] = (),
                              name: str | None = None, description: str | None = None):
        """The cluster's group with ``security_group_rules`` in one bulk request.
        ``name``/``description`` replace the cluster's (create-image names its builder's
        group per run and marks the run). A group whose rules fail is deleted again."""
        group = self.conn.network.create_security_group(
            name=name or security_group_name(cluster),
            description=description or (
                f"spark-openstack cluster {cluster}: members talk freely; "
                "SSH and web UIs only from the CIDRs the user gave"))
        try:
            list(self.conn.network.create_security_group_rules(security_group_rules(
                group_id=group.id, ssh_cidrs=ssh_cidrs, ui_rules=ui_rules)))
        except Exception:
            self.conn.network.delete_security_group(group, ignore_missing=True)
            raise
        return group

    @translate_errors
    def delete_security_group(self, group_id: str, *, timeout: float = 120) -> None:
        """Delete and confirm: the group must really be gone (404) before this returns.

        Retried while ports of deleted servers still hold it (409), and while it is still
        there after a delete that answered success (a timed-out or proxied request): a
        group left behind would block the next run that wants it.
        """
        from openstack import exceptions as sdk
        state = {"last": "not deleted yet"}

        def gone():
            self.conn.network.delete_security_group(group_id, ignore_missing=True)
            try:
                self.conn.network.get_security_group(group_id)
            except sdk.NotFoundException:
                return True
            state["last"] = "still there after the delete was accepted"
            return None
        poll(gone, timeout=timeout, what=f"delete security group {group_id}", interval=2,
             max_interval=5, transient=(sdk.ConflictException,),
             describe=lambda: state["last"],
             hint="ports of deleted servers still hold it; run destroy again")

    @translate_errors
    def list_security_groups(self) -> list:
        """Every security group of the project (one listing)."""
        return list(self.conn.network.security_groups(
            project_id=self.conn.current_project_id))

    # ---------------------------------------------------------------- floating IPs
    @translate_errors
    def allocate_floating_ip(self, *, pool_network_id: str, cluster: str,
                             description: str | None = None) -> tuple[str, str]:
        """A floating IP on no port yet (allocated while the servers boot);
        returns ``(fip_id, address)``."""
        fip = self.conn.network.create_ip(floating_network_id=pool_network_id,
                                          description=description or fip_description(cluster))
        return fip.id, fip.floating_ip_address

    @translate_errors
    def server_port_id(self, server_id: str) -> str | None:
        """The id of the server's first network port, or None while Nova has not made it."""
        ports = list(self.conn.network.ports(device_id=server_id))
        return ports[0].id if ports else None

    @translate_errors
    def associate_floating_ip(self, *, fip_id: str, port_id: str) -> None:
        self.conn.network.update_ip(fip_id, port_id=port_id)

    @translate_errors
    def attach_floating_ip(self, *, server_id: str, pool_network_id: str,
                           cluster: str, description: str | None = None) -> tuple[str, str]:
        """Allocate a floating IP on the server's port; returns ``(fip_id, address)``.
        Its description is the cluster's (``fip_description``) unless given."""
        port_id = self.server_port_id(server_id)
        if port_id is None:
            raise errors.CloudError(f"server {server_id} has no network port for a floating IP")
        fip = self.conn.network.create_ip(floating_network_id=pool_network_id,
                                          port_id=port_id,
                                          description=description or fip_description(cluster))
        return fip.id, fip.floating_ip_address

    @translate_errors
    def cluster_floating_ips(self, *, cluster: str, servers: Iterable[Any] = ()) -> list:
        """Floating IPs of the cluster: on its servers' ports, or made for it (description)."""
        server_ids = {s.id for s in servers}
        fixed = {a["addr"] for s in servers for addrs in (s.addresses or {}).values()
                 for a in addrs if a.get("OS-EXT-IPS:type", "fixed") == "fixed"}
        out = []
        for fip in self.conn.network.ips(project_id=self.conn.current_project_id):
            details = fip.port_details or {}
            if fip.description == fip_description(cluster) \
                    or (details.get("device_id") in server_ids and server_ids) \
                    or (not details and fip.port_id and fip.fixed_ip_address in fixed):
                out.append(fip)
        return out

    @translate_errors
    def list_floating_ips(self) -> list:
        """Every floating IP of the project (one listing)."""
        return list(self.conn.network.ips(project_id=self.conn.current_project_id))

    @translate_errors
    def delete_floating_ip(self, fip_id: str) -> None:
        self.conn.network.delete_ip(fip_id, ignore_missing=True)

