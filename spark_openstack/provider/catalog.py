"""Look-ups that validate a launch before anything exists: image, flavor, keypair,
network, floating-IP pool, the compute API's microversions, and the quota check.

Each look-up returns one SDK resource or raises ``NotFoundError``/``AmbiguousError`` that
names the option and lists what the project could use instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import errors
from .naming import QuotaNeed, resource_names, quota_shortfall, version_tuple
from .sdk_errors import http_detail, translate_errors

@dataclass(frozen=True)
class QuotaState:
    """What ``read_quotas`` found: Nova's absolute limits and Neutron's quota details
    (None when the policy hides them, with the note saying so)."""

    absolute: Any
    network: Any | None
    network_note: str = ""


def _find_unique(find, name_or_id: str, *, kind: str, option: str, same, describe):
    """``find(name_or_id)`` or None; a name several resources share is refused with
    each of them (``describe``) listed, so the user can pass an id."""
    from openstack import exceptions as sdk
    try:
        return find(name_or_id, ignore_missing=True)
    except sdk.DuplicateResource:
        matches = same()
        raise errors.AmbiguousError(
            f"{kind} {name_or_id!r} ({option}) matches {len(matches)} {kind}s: "
            + ", ".join(describe(m) for m in matches),
            hint=f"pass the {kind}'s id instead of its name")


class CatalogMixin:
    """Read-only questions to the cloud's catalog (part of ``OpenStackProvider``)."""

    conn: Any
    _compute_max: tuple[int, int] | None = None

    @translate_errors
    def compute_max_microversion(self) -> tuple[int, int]:
        """Highest compute API microversion the cloud offers (2.1 when it has none)."""
        if self._compute_max is None:
            from openstack import utils
            best = utils.maximum_supported_microversion(self.conn.compute, "2.100")
            self._compute_max = version_tuple(best)
        return self._compute_max

    def supports_tags_at_create(self) -> bool:
        return self.compute_max_microversion() >= (2, 52)

    def supports_tags(self) -> bool:
        return self.compute_max_microversion() >= (2, 26)

    # ---------------------------------------------------------------- lookups
    @translate_errors
    def find_image(self, name_or_id: str):
        """One ACTIVE image by name or id; errors list the images the project can use."""
        image = _find_unique(
            self.conn.image.find_image, name_or_id, kind="image", option="-i/--image",
            same=lambda: list(self.conn.image.images(name=name_or_id)),
            describe=lambda i: f"{i.id} (created {i.created_at})")
        if image is None:
            available = [i for i in self.conn.image.images() if i.status == "active"]
            raise errors.NotFoundError(
                f"image {name_or_id!r} (-i/--image) not found",
                hint=f"images you can use: {resource_names(available)}")
        if image.status != "active":
            raise errors.ValidationError(
                f"image {name_or_id!r} (-i/--image) is {image.status}, not active",
                hint="wait for it to finish uploading, or choose another image")
        return image

    @translate_errors
    def find_flavor(self, name_or_id: str, *, option: str = "--flavor"):
        """One flavor by name or id (its vCPUs/RAM feed the quota check and templates)."""
        flavor = _find_unique(
            self.conn.compute.find_flavor, name_or_id, kind="flavor", option=option,
            same=lambda: [f for f in self.conn.compute.flavors() if f.name == name_or_id],
            describe=lambda f: f"{f.id} ({f.vcpus} vCPU, {f.ram} MB)")
        if flavor is None:
            flavors = sorted(self.conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram))
            listing = ", ".join(f"{f.name} ({f.vcpus} vCPU, {f.ram} MB)" for f in flavors[:20])
            raise errors.NotFoundError(f"flavor {name_or_id!r} ({option}) not found",
                                       hint=f"flavors you can use: {listing or '(none)'}")
        if not getattr(flavor, "vcpus", None) and getattr(flavor, "id", None):
            flavor = self.conn.compute.get_flavor(flavor.id)
        return flavor

    @translate_errors
    def find_keypair(self, name: str):
        """The keypair (with its public key, to compare with the identity file)."""
        keypair = self.conn.compute.find_keypair(name, ignore_missing=True)
        if keypair is None:
            keypairs = list(self.conn.compute.keypairs())
            raise errors.NotFoundError(
                f"keypair {name!r} (-k/--keypair) not found in this project",
                hint=f"keypairs you have: {resource_names(keypairs)}; create one with "
                     "`openstack keypair create --public-key ~/.ssh/id_ed25519.pub NAME`")
        if not getattr(keypair, "public_key", None):
            keypair = self.conn.compute.get_keypair(keypair.name)
        return keypair

    @translate_errors
    def find_network(self, name_or_id: str | None):
        """The tenant network to boot on; when not given, the project's only one."""
        if name_or_id:
            net = _find_unique(
                self.conn.network.find_network, name_or_id, kind="network",
                option="--network", describe=lambda n: n.id,
                same=lambda: list(self.conn.network.networks(name=name_or_id)))
            if net is None:
                nets = [n for n in self.conn.network.networks() if not n.is_router_external]
                raise errors.NotFoundError(f"network {name_or_id!r} (--network) not found",
                                           hint=f"networks you can use: {resource_names(nets)}")
            return net
        project = self.conn.current_project_id
        nets = [n for n in self.conn.network.networks()
                if not n.is_router_external and (n.project_id == project or n.is_shared)]
        own = [n for n in nets if n.project_id == project] or nets
        if len(own) == 1:
            return own[0]
        if not own:
            raise errors.NotFoundError("no tenant network found for the servers (--network)",
                                       hint="create one, or pass --network NAME")
        raise errors.AmbiguousError(
            f"several networks could hold the cluster: {resource_names(own)}",
            hint="choose one with --network NAME")

    @translate_errors
    def find_floating_pool(self, name_or_id: str | None):
        """The external network floating IPs come from; the only one when not named."""
        externals = list(self.conn.network.networks(is_router_external=True))
        if name_or_id:
            match = [n for n in externals if name_or_id in (n.name, n.id)]
            if len(match) == 1:
                return match[0]
            if len(match) > 1:
                raise errors.AmbiguousError(
                    f"floating IP pool {name_or_id!r} (--floating-ip-pool) matches "
                    f"{len(match)} networks: " + ", ".join(n.id for n in match),
                    hint="pass the network's id instead")
            raise errors.NotFoundError(
                f"floating IP pool {name_or_id!r} (--floating-ip-pool) is not an external "
                "network of this cloud",
                hint=f"external networks: {resource_names(externals)}; or use --no-floating-ip")
        if len(externals) == 1:
            return externals[0]
        if not externals:
            raise errors.NotFoundError(
                "this cloud has no external network to take a floating IP from",
                hint="pass --no-floating-ip to reach the master at its private address")
        raise errors.AmbiguousError(
            f"several floating IP pools: {resource_names(externals)}",
            hint="choose one with --floating-ip-pool NAME")

    @translate_errors
    def has_volume_service(self) -> bool:
        """True when the catalog has a block-storage (Cinder) endpoint."""
        return bool(self.conn.has_service("block-storage"))

    # ---------------------------------------------------------------- quotas
    @translate_errors
    def read_quotas(self) -> "QuotaState":
        """The project's compute limits and network quota (two requests), read beside
        the other look-ups so the check itself costs no extra round trip."""
        from openstack import exceptions as sdk
        absolute = self.conn.compute.get_limits().absolute
        try:
            quota = self.conn.network.get_quota(self.conn.current_project_id, details=True)
        except (sdk.ForbiddenException, sdk.NotFoundException) as exc:
            return QuotaState(absolute=absolute, network=None,
                              network_note=f"network quotas not readable "
                                           f"({http_detail(exc)}); not checked")
        return QuotaState(absolute=absolute, network=quota)

    def check_quotas(self, need: QuotaNeed, *, state: "QuotaState | None" = None) -> list[str]:
        """Raise ``QuotaError`` naming every short quota; return notes on unchecked ones.
        ``state`` is a ``read_quotas()`` taken earlier (read now when not given)."""
        state = state if state is not None else self.read_quotas()
        short: list[str] = []
        notes: list[str] = [state.network_note] if state.network_note else []
        absolute = state.absolute
        short += filter(None, [
            quota_shortfall("instances", limit=absolute.instances, used=absolute.instances_used,
                       need=need.servers),
            quota_shortfall("vCPUs (cores)", limit=absolute.total_cores,
                       used=absolute.total_cores_used, need=need.vcpus),
            quota_shortfall("RAM", limit=absolute.total_ram, used=absolute.total_ram_used,
                       need=need.ram_mb, unit=" MB"),
            quota_shortfall("server groups", limit=absolute.server_groups,
                       used=absolute.server_groups_used, need=need.server_groups),
        ])
        members = absolute.server_group_members
        if need.server_group_members and members is not None and 0 <= members < \
                need.server_group_members:
            short.append(f"server group members: need {need.server_group_members}, "
                         f"limit {members} per group; short by "
                         f"{need.server_group_members - members} (or use --no-anti-affinity)")
        quota = state.network
        if quota is not None:
            def detail(attr):
                d = getattr(quota, attr, None) or {}
                used = (d.get("used") or 0) + (d.get("reserved") or 0)
                return d.get("limit"), used
            for label, attr, amount in (
                    ("security groups", "security_groups", need.security_groups),
                    ("security group rules", "security_group_rules",
                     need.security_group_rules),
                    ("floating IPs", "floating_ips", need.floating_ips),
                    ("ports", "ports", need.ports)):
                limit, used = detail(attr)
                msg = quota_shortfall(label, limit=limit, used=used, need=amount)
                if msg:
                    short.append(msg)
        if short:
            raise errors.QuotaError(
                "the project's quota is too small for this cluster:\n  " + "\n  ".join(short),
                hint="launch fewer/smaller workers (-s, --flavor), destroy unused servers, "
                     "or ask the cloud admin to raise the quota")
        return notes

