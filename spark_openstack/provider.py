"""The one door to OpenStack: a thin, typed layer over openstacksdk.

``OpenStackProvider`` wraps an ``openstack.connection.Connection``. Every public method
runs inside ``translate_errors`` so no openstacksdk/keystoneauth exception escapes: callers
(cluster.py, image.py, tests) only ever see ``spark_openstack.errors`` classes.

Method names other modules may rely on (DEPLOY's image.py included):

* lookups: ``find_image``, ``find_flavor``, ``find_keypair``, ``find_network``,
  ``find_floating_pool`` -> one SDK resource, or ``NotFoundError``/``AmbiguousError``
  listing the candidates; ``has_volume_service()``; ``check_quotas(...)``.
* servers: ``create_server(...) -> id`` (never waits), ``wait_for_servers(server_ids=...,
  timeout=...)`` (one list request per poll for all of them), ``delete_servers(...)``,
  ``stop_server``, ``wait_for_server_status``, ``node_from_server``.
* images: ``snapshot_server``, ``wait_for_image``, ``set_image_properties``, ``delete_image``,
  ``list_images`` (the project's own).
* listings for a run's cleanup: ``list_servers``, ``list_security_groups``,
  ``list_floating_ips``.
* cluster resources: ``create_security_group``, ``create_server_group``,
  ``attach_floating_ip``, ``cluster_servers``, ``all_cluster_servers``,
  ``cluster_floating_ips``, ``find_security_group``, ``find_server_group``, deletes.
* ``request_count``: HTTP requests this provider has sent (for the benchmarks).
"""
from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from . import errors
from .polling import poll
from .model import (META_CLUSTER, META_ROLE, ROLE_MASTER, ROLE_WORKER, TAG_PREFIX_CLUSTER,
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


# --------------------------------------------------------------------------- errors

def _http_detail(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    message = getattr(exc, "message", None) or str(exc)
    if details and str(details) not in message:
        message = f"{message}: {details}"
    return re.sub(r"\s+", " ", message).strip()


def translate_exception(exc: BaseException, *, action: str = "") -> errors.SparkOpenstackError:
    """Map one openstacksdk / keystoneauth exception to the project's error tree."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk

    where = f"{action}: " if action else ""
    if isinstance(exc, errors.SparkOpenstackError):
        return exc
    if isinstance(exc, sdk.ConfigException):
        return errors.ConfigError(
            f"{where}cannot select a cloud: {exc}",
            hint="pass --cloud NAME (a cloud in clouds.yaml), set OS_CLOUD, or source an "
                 "openrc file with the OS_* variables, exactly as for the `openstack` CLI")
    if isinstance(exc, (ks.MissingRequiredOptions, ks.MissingAuthPlugin, ks.NoMatchingPlugin)):
        return errors.ConfigError(
            f"{where}no usable OpenStack credentials: {exc}",
            hint="pass --cloud NAME, set OS_CLOUD, or source your project's openrc file")
    if isinstance(exc, ks.Unauthorized) or (
            isinstance(exc, sdk.HttpException) and exc.status_code == 401):
        return errors.ConfigError(
            f"{where}the cloud rejected the credentials ({_http_detail(exc)})",
            hint="check the username/password/application credential in clouds.yaml or OS_*")
    if isinstance(exc, (ks.ConnectFailure, ks.ConnectTimeout, ks.SSLError,
                        ks.DiscoveryFailure, ks.EndpointNotFound, ks.CatalogException)):
        return errors.CloudError(f"{where}cannot reach the cloud: {exc}",
                                 hint="check auth_url in clouds.yaml / OS_AUTH_URL and the network")
    if isinstance(exc, sdk.ResourceTimeout):
        return errors.TimeoutError_(f"{where}{exc}")
    if isinstance(exc, sdk.DuplicateResource):
        return errors.AmbiguousError(f"{where}{exc}")
    if isinstance(exc, sdk.HttpException):
        detail = _http_detail(exc)
        status = exc.status_code
        if status in (403, 413) and re.search(r"quota|limit|exceed", detail, re.I):
            return errors.QuotaError(f"{where}the cloud refused for quota: {detail}",
                                     hint="free resources or ask for a bigger quota")
        if status == 404 or isinstance(exc, sdk.NotFoundException):
            return errors.NotFoundError(f"{where}not found: {detail}")
        if status == 403:
            return errors.CloudError(f"{where}forbidden by the cloud's policy: {detail}",
                                     hint="your role may not allow this; ask the cloud admin")
        return errors.CloudError(f"{where}the cloud answered HTTP {status}: {detail}")
    if isinstance(exc, sdk.ResourceFailure):
        return errors.CloudError(f"{where}{exc}")
    if isinstance(exc, (sdk.SDKException, ks.ClientException)):
        return errors.CloudError(f"{where}{exc}")
    return errors.CloudError(f"{where}{type(exc).__name__}: {exc}")


def _is_translatable(exc: BaseException) -> bool:
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk
    return isinstance(exc, (sdk.SDKException, ks.ClientException))


@contextlib.contextmanager
def translating(action: str = ""):
    """``with translating("create server x"):`` -> SDK errors become project errors."""
    try:
        yield
    except errors.SparkOpenstackError:
        raise
    except Exception as exc:  # noqa: BLE001 - filtered just below
        if _is_translatable(exc):
            raise translate_exception(exc, action=action) from exc
        raise


def translate_errors(fn: Callable) -> Callable:
    """Decorator form of ``translating`` for provider methods."""
    action = fn.__name__.replace("_", " ")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with translating(action):
            return fn(*args, **kwargs)
    return wrapper


# --------------------------------------------------------------------------- helpers

def _names(resources: Iterable[Any], limit: int = 15) -> str:
    names = sorted({getattr(r, "name", None) or getattr(r, "id", "?") for r in resources})
    if not names:
        return "(none)"
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _version_tuple(text: str | None) -> tuple[int, int]:
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


def _shortfall(name: str, *, limit: int | None, used: int | None, need: int,
               unit: str = "") -> str | None:
    if limit is None or limit < 0 or need <= 0:
        return None
    free = limit - (used or 0)
    if free >= need:
        return None
    return (f"{name}: need {need}{unit}, {max(free, 0)}{unit} free "
            f"(limit {limit}{unit}, used {used or 0}{unit}); short by {need - max(free, 0)}{unit}")


#: openstacksdk's own retries (keystoneauth): a refused/reset connection and a 429 or
#: 5xx-from-a-proxy answer are retried with backoff, honouring ``Retry-After``; one flaky
#: answer must not roll back a nearly finished launch or stop a cleanup half way.
RETRY_SETTINGS = {"connect_retries": 4, "status_code_retries": 5,
                  "retriable_status_codes": [429, 502, 503, 504]}


class OpenStackProvider:
    """openstacksdk behind project-level methods; see the module docstring for names."""

    def __init__(self, conn):
        self.conn = conn
        self._counter = itertools.count()
        self._count_lock = threading.Lock()
        self._requests = 0
        self._compute_max: tuple[int, int] | None = None
        self._install_request_counter()

    # ---------------------------------------------------------------- construction
    @classmethod
    def connect(cls, *, cloud: str | None = None) -> "OpenStackProvider":
        """Build from clouds.yaml / OS_CLOUD / OS_* exactly like the ``openstack`` CLI.

        ``cloud=None`` lets openstacksdk resolve OS_CLOUD and then the OS_* variables.
        """
        import openstack
        with translating("connect to the cloud"):
            conn = openstack.connect(cloud=cloud, **RETRY_SETTINGS)
        return cls(conn)

    def _install_request_counter(self) -> None:
        session = self.conn.session
        original = session.request

        @functools.wraps(original)
        def counting_request(*args, **kwargs):
            with self._count_lock:
                self._requests += 1
            return original(*args, **kwargs)
        session.request = counting_request

    @property
    def request_count(self) -> int:
        """HTTP requests sent through this provider's session (auth and discovery included)."""
        return self._requests

    @translate_errors
    def authenticate(self) -> str:
        """Force authentication now (clear early errors); returns the project id."""
        return self.conn.current_project_id

    @property
    def project_id(self) -> str:
        with translating("read the project id"):
            return self.conn.current_project_id

    # ---------------------------------------------------------------- microversions
    @translate_errors
    def compute_max_microversion(self) -> tuple[int, int]:
        """Highest compute API microversion the cloud offers (2.1 when it has none)."""
        if self._compute_max is None:
            from openstack import utils
            best = utils.maximum_supported_microversion(self.conn.compute, "2.100")
            self._compute_max = _version_tuple(best)
        return self._compute_max

    def supports_tags_at_create(self) -> bool:
        return self.compute_max_microversion() >= (2, 52)

    def supports_tags(self) -> bool:
        return self.compute_max_microversion() >= (2, 26)

    # ---------------------------------------------------------------- lookups
    @translate_errors
    def find_image(self, name_or_id: str):
        """One ACTIVE image by name or id; errors list the images the project can use."""
        from openstack import exceptions as sdk
        try:
            image = self.conn.image.find_image(name_or_id, ignore_missing=True)
        except sdk.DuplicateResource:
            same = list(self.conn.image.images(name=name_or_id))
            raise errors.AmbiguousError(
                f"image {name_or_id!r} (-i/--image) matches {len(same)} images: "
                + ", ".join(f"{i.id} (created {i.created_at})" for i in same),
                hint="pass the image's id instead of its name")
        if image is None:
            available = [i for i in self.conn.image.images() if i.status == "active"]
            raise errors.NotFoundError(
                f"image {name_or_id!r} (-i/--image) not found",
                hint=f"images you can use: {_names(available)}")
        if image.status != "active":
            raise errors.ValidationError(
                f"image {name_or_id!r} (-i/--image) is {image.status}, not active",
                hint="wait for it to finish uploading, or choose another image")
        return image

    @translate_errors
    def find_flavor(self, name_or_id: str, *, option: str = "--flavor"):
        """One flavor by name or id (its vCPUs/RAM feed the quota check and templates)."""
        from openstack import exceptions as sdk
        try:
            flavor = self.conn.compute.find_flavor(name_or_id, ignore_missing=True)
        except sdk.DuplicateResource:
            same = [f for f in self.conn.compute.flavors() if f.name == name_or_id]
            raise errors.AmbiguousError(
                f"flavor {name_or_id!r} ({option}) matches several flavors: "
                + ", ".join(f"{f.id} ({f.vcpus} vCPU, {f.ram} MB)" for f in same),
                hint="pass the flavor's id instead")
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
                hint=f"keypairs you have: {_names(keypairs)}; create one with "
                     "`openstack keypair create --public-key ~/.ssh/id_ed25519.pub NAME`")
        if not getattr(keypair, "public_key", None):
            keypair = self.conn.compute.get_keypair(keypair.name)
        return keypair

    @translate_errors
    def find_network(self, name_or_id: str | None):
        """The tenant network to boot on; when not given, the project's only one."""
        from openstack import exceptions as sdk
        if name_or_id:
            try:
                net = self.conn.network.find_network(name_or_id, ignore_missing=True)
            except sdk.DuplicateResource:
                same = list(self.conn.network.networks(name=name_or_id))
                raise errors.AmbiguousError(
                    f"network {name_or_id!r} (--network) matches {len(same)} networks: "
                    + ", ".join(n.id for n in same), hint="pass the network's id instead")
            if net is None:
                nets = [n for n in self.conn.network.networks() if not n.is_router_external]
                raise errors.NotFoundError(f"network {name_or_id!r} (--network) not found",
                                           hint=f"networks you can use: {_names(nets)}")
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
            f"several networks could hold the cluster: {_names(own)}",
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
                hint=f"external networks: {_names(externals)}; or use --no-floating-ip")
        if len(externals) == 1:
            return externals[0]
        if not externals:
            raise errors.NotFoundError(
                "this cloud has no external network to take a floating IP from",
                hint="pass --no-floating-ip to reach the master at its private address")
        raise errors.AmbiguousError(
            f"several floating IP pools: {_names(externals)}",
            hint="choose one with --floating-ip-pool NAME")

    @translate_errors
    def has_volume_service(self) -> bool:
        """True when the catalog has a block-storage (Cinder) endpoint."""
        return bool(self.conn.has_service("block-storage"))

    # ---------------------------------------------------------------- quotas
    @translate_errors
    def check_quotas(self, need: QuotaNeed) -> list[str]:
        """Raise ``QuotaError`` naming every short quota; return notes on unchecked ones."""
        from openstack import exceptions as sdk
        short: list[str] = []
        notes: list[str] = []
        absolute = self.conn.compute.get_limits().absolute
        short += filter(None, [
            _shortfall("instances", limit=absolute.instances, used=absolute.instances_used,
                       need=need.servers),
            _shortfall("vCPUs (cores)", limit=absolute.total_cores,
                       used=absolute.total_cores_used, need=need.vcpus),
            _shortfall("RAM", limit=absolute.total_ram, used=absolute.total_ram_used,
                       need=need.ram_mb, unit=" MB"),
            _shortfall("server groups", limit=absolute.server_groups,
                       used=absolute.server_groups_used, need=need.server_groups),
        ])
        members = absolute.server_group_members
        if need.server_group_members and members is not None and 0 <= members < \
                need.server_group_members:
            short.append(f"server group members: need {need.server_group_members}, "
                         f"limit {members} per group; short by "
                         f"{need.server_group_members - members} (or use --no-anti-affinity)")
        try:
            quota = self.conn.network.get_quota(self.conn.current_project_id, details=True)
        except (sdk.ForbiddenException, sdk.NotFoundException) as exc:
            notes.append(f"network quotas not readable ({_http_detail(exc)}); not checked")
        else:
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
                msg = _shortfall(label, limit=limit, used=used, need=amount)
                if msg:
                    short.append(msg)
        if short:
            raise errors.QuotaError(
                "the project's quota is too small for this cluster:\n  " + "\n  ".join(short),
                hint="launch fewer/smaller workers (-s, --flavor), destroy unused servers, "
                     "or ask the cloud admin to raise the quota")
        return notes

    # ---------------------------------------------------------------- security/server groups
    @translate_errors
    def find_security_group(self, name: str):
        groups = [g for g in self.conn.network.security_groups(name=name) if g.name == name]
        return groups[0] if groups else None

    @translate_errors
    def create_security_group(self, *, cluster: str, ssh_cidrs: Iterable[str],
                              ui_cidrs: Iterable[str] = (), ui_ports: Iterable[int] = (),
                              ui_rules: Iterable[tuple[str, int]] = (),
                              name: str | None = None, description: str | None = None):
        """The cluster's group: all traffic between members, SSH from ``ssh_cidrs`` only,
        web UI ports only from ``ui_cidrs`` x ``ui_ports`` and the ``(cidr, port)`` pairs
        of ``ui_rules`` (``config.web_ui_rules``: which UI may be opened is policy decided
        there). Empty by default: nothing opened. ``name``/``description`` replace the
        cluster's (create-image names its builder's group per run and marks the run)."""
        import ipaddress
        group = self.conn.network.create_security_group(
            name=name or security_group_name(cluster),
            description=description or (
                f"spark-openstack cluster {cluster}: members talk freely; "
                "SSH and web UIs only from the CIDRs the user gave"))
        rules: list[dict[str, Any]] = []
        for ethertype in ("IPv4", "IPv6"):
            rules.append(dict(security_group_id=group.id, direction="ingress",
                              ethertype=ethertype, remote_group_id=group.id))

        def cidr_rule(cidr, port):
            eth = "IPv6" if ipaddress.ip_network(cidr).version == 6 else "IPv4"
            return dict(security_group_id=group.id, direction="ingress", ethertype=eth,
                        protocol="tcp", port_range_min=port, port_range_max=port,
                        remote_ip_prefix=cidr)
        rules += [cidr_rule(c, 22) for c in ssh_cidrs]
        ui_ports = list(ui_ports)
        pairs = dict.fromkeys([(c, p) for c in ui_cidrs for p in ui_ports] + list(ui_rules))
        rules += [cidr_rule(c, p) for c, p in pairs]
        try:
            list(self.conn.network.create_security_group_rules(rules))
        except Exception:
            self.conn.network.delete_security_group(group, ignore_missing=True)
            raise
        return group

    @staticmethod
    def security_group_rule_count(*, ssh_cidrs: int, ui_cidrs: int = 0, ui_ports: int = 0,
                                  ui_rules: int = 0) -> int:
        """Rules ``create_security_group`` makes, default egress pair included (for the
        quota check; ``ui_rules`` pairs are counted as given, already without duplicates)."""
        return 2 + 2 + ssh_cidrs + ui_cidrs * ui_ports + ui_rules

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

    @translate_errors
    def create_server_group(self, *, cluster: str, policy: str = "soft-anti-affinity"):
        """Spread nodes over hosts. Soft anti-affinity needs compute microversion 2.15."""
        if policy.startswith("soft") and self.compute_max_microversion() < (2, 15):
            return None
        return self.conn.compute.create_server_group(name=server_group_name(cluster),
                                                     policy=policy)

    @translate_errors
    def find_server_groups(self, cluster: str) -> list:
        name = server_group_name(cluster)
        return [g for g in self.conn.compute.server_groups() if g.name == name]

    @translate_errors
    def delete_server_group(self, group_id: str) -> None:
        self.conn.compute.delete_server_group(group_id, ignore_missing=True)

    # ---------------------------------------------------------------- servers
    @translate_errors
    def create_server(self, *, name: str, image_id: str, flavor_id: str, network_id: str,
                      keypair: str | None = None, security_groups: Iterable[str] = (),
                      server_group_id: str | None = None, metadata: dict | None = None,
                      tags: Iterable[str] = (), user_data: str | None = None,
                      count: int = 1) -> str:
        """POST one server and return its id at once (no waiting: see ``wait_for_servers``).

        ``count > 1`` makes Nova create that many identical servers in ONE request (one
        scheduling pass); Nova names them ``NAME-1`` .. ``NAME-count`` with its default
        template and only the first id comes back: find the rest with ``list_servers``.

        Tags go in the create request on microversion >= 2.52, else are added right after
        (>= 2.26), else only metadata identifies the server.
        """
        attrs: dict[str, Any] = dict(name=name, image_id=image_id, flavor_id=flavor_id,
                                     networks=[{"uuid": network_id}],
                                     metadata=dict(metadata or {}))
        if keypair:
            attrs["key_name"] = keypair
        if security_groups:
            attrs["security_groups"] = [{"name": g} for g in security_groups]
        if server_group_id:
            attrs["scheduler_hints"] = {"group": server_group_id}
        if user_data:
            raw = user_data.encode() if isinstance(user_data, str) else user_data
            attrs["user_data"] = base64.b64encode(raw).decode()
        if count > 1:
            attrs["min_count"] = attrs["max_count"] = int(count)
        tags = list(tags)
        if tags and self.supports_tags_at_create():
            attrs["tags"] = tags
        server = self.conn.compute.create_server(**attrs)
        if tags and "tags" not in attrs and self.supports_tags() and count == 1:
            for tag in tags:
                self.conn.compute.add_tag_to_server(server, tag)
        return server.id

    @translate_errors
    def rename_server(self, server_id: str, name: str) -> None:
        self.conn.compute.update_server(server_id, name=name)

    @translate_errors
    def set_server_metadata(self, server_id: str, metadata: dict[str, str]) -> None:
        """Add or replace these metadata keys (others stay)."""
        self.conn.compute.set_server_metadata(server_id, **metadata)

    @translate_errors
    def list_servers(self, *, name_regex: str | None = None) -> list:
        """One (paginated) detailed listing; ``name_regex`` is Nova's server-side filter."""
        query = {"name": name_regex} if name_regex else {}
        return list(self.conn.compute.servers(details=True, **query))

    def wait_for_servers(self, *, server_ids: Iterable[str], timeout: float,
                         name_regex: str | None = None, status: str = "ACTIVE",
                         on_status: Callable[[Any], None] | None = None,
                         interval: float = 1.0) -> dict[str, Any]:
        """Poll ONE list request per round until every server is ``status``.

        A server in ERROR raises ``CloudError`` naming it and Nova's fault message;
        ``on_status(server)`` is called whenever a server's status changes.
        """
        pending = set(server_ids)
        seen: dict[str, str] = {}
        names: dict[str, str] = {}
        done: dict[str, Any] = {}

        def one_round():
            servers = {s.id: s for s in self.list_servers(name_regex=name_regex)
                       if s.id in pending or s.id in done}
            failed = []
            for sid in list(pending):
                srv = servers.get(sid)
                if srv is None:
                    continue
                names[sid] = srv.name
                state = f"{srv.status}" + (f"/{srv.task_state}" if srv.task_state else "")
                if seen.get(sid) != state:
                    seen[sid] = state
                    if on_status:
                        on_status(srv)
                if srv.status == status:
                    pending.discard(sid)
                    done[sid] = srv
                elif srv.status == "ERROR":
                    fault = (srv.fault or {}).get("message") if isinstance(srv.fault, dict) \
                        else srv.fault
                    failed.append(f"[{srv.name}] server went to ERROR: {fault or 'no fault given'}")
            if failed:
                raise errors.CloudError("; ".join(sorted(failed)),
                                        hint="the cloud could not build these servers "
                                             "(look at the fault; a flavor too big for any "
                                             "host shows 'No valid host was found')")
            return done if not pending else None

        return poll(one_round, timeout=timeout, what=f"servers {status}", interval=interval,
                    max_interval=5, backoff=1.2,
                    describe=lambda: f"{len(pending)} server(s) not {status}: " + ", ".join(
                        sorted(f"[{names.get(s, s)}] {seen.get(s, 'not listed')}"
                               for s in pending)),
                    hint="raise --timeout, or check the cloud's health")

    @translate_errors
    def delete_servers(self, *, server_ids: Iterable[str], wait: bool = True,
                       timeout: float = 300) -> None:
        """Delete (idempotent) and, with ``wait``, poll one listing until all are gone."""
        ids = set(server_ids)
        for sid in ids:
            self.conn.compute.delete_server(sid, ignore_missing=True)
        if not (wait and ids):
            return
        present: dict[str, Any] = {}

        def all_gone():
            present.clear()
            present.update({s.id: s for s in self.conn.compute.servers(details=True)
                            if s.id in ids})
            stuck = [s for s in present.values() if s.status == "ERROR" and not s.task_state]
            for srv in stuck:  # a failed delete leaves ERROR; ask again
                self.conn.compute.delete_server(srv.id, ignore_missing=True)
            return True if not present else None

        poll(all_gone, timeout=timeout, what="server deletion", interval=1, max_interval=3,
             describe=lambda: "still present: " + ", ".join(
                 f"{s.name} ({s.status})" for s in present.values()),
             hint="run destroy again, or ask the cloud admin")

    @translate_errors
    def stop_server(self, server_id: str) -> None:
        self.conn.compute.stop_server(server_id)

    def wait_for_server_status(self, *, server_id: str, status: str, timeout: float):
        def reached():
            with translating(f"wait for server {server_id} to be {status}"):
                server = self.conn.compute.get_server(server_id)
            if server.status == "ERROR" and status != "ERROR":
                raise errors.CloudError(f"server {server.name} went to ERROR while waiting "
                                        f"for {status}: {server.fault or 'no fault given'}")
            return server if server.status == status else None
        return poll(reached, timeout=timeout, what=f"server {server_id} {status}",
                    interval=1, max_interval=5)

    @translate_errors
    def get_server(self, server_id: str):
        return self.conn.compute.get_server(server_id)

    # ---------------------------------------------------------------- floating IPs
    @translate_errors
    def attach_floating_ip(self, *, server_id: str, pool_network_id: str,
                           cluster: str, description: str | None = None) -> tuple[str, str]:
        """Allocate a floating IP on the server's port; returns ``(fip_id, address)``.
        Its description is the cluster's (``fip_description``) unless given."""
        ports = list(self.conn.network.ports(device_id=server_id))
        if not ports:
            raise errors.CloudError(f"server {server_id} has no network port for a floating IP")
        fip = self.conn.network.create_ip(floating_network_id=pool_network_id,
                                          port_id=ports[0].id,
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

    # ---------------------------------------------------------------- volumes
    @translate_errors
    def delete_volumes(self, volume_ids: Iterable[str], *, timeout: float = 300) -> None:
        """Volumes of clusters made by earlier versions (``--volume-size``). Nova deletes
        them itself (delete_on_termination), so wait for that instead of racing it: a
        volume still attached or being deleted is left to Nova, and 404 means done."""
        from openstack import exceptions as sdk
        pending = set(volume_ids)

        def gone():
            for vid in list(pending):
                try:
                    volume = self.conn.block_storage.get_volume(vid)
                except sdk.NotFoundException:
                    pending.discard(vid)
                    continue
                if volume.status in ("available", "error"):
                    self.conn.block_storage.delete_volume(vid, ignore_missing=True)
            return True if not pending else None
        poll(gone, timeout=timeout, what="volume deletion", interval=2, max_interval=5,
             describe=lambda: f"{len(pending)} volume(s) left: {', '.join(sorted(pending))}")

    # ---------------------------------------------------------------- clusters
    def all_cluster_servers(self) -> dict[str, list]:
        """``{cluster: [servers]}`` for every spark-openstack server in the project."""
        out: dict[str, list] = {}
        for srv in self.list_servers():
            name = (srv.metadata or {}).get(META_CLUSTER)
            if name:
                out.setdefault(name, []).append(srv)
        return out

    def cluster_servers(self, cluster: str) -> list:
        """The cluster's servers, identified by metadata (the source of truth)."""
        return [s for s in self.list_servers()
                if (s.metadata or {}).get(META_CLUSTER) == cluster]

    @staticmethod
    def server_role(server) -> str:
        return (server.metadata or {}).get(META_ROLE, "")

    @staticmethod
    def cluster_metadata(cluster: str, role: str) -> dict[str, str]:
        return {META_CLUSTER: cluster, META_ROLE: role}

    @staticmethod
    def cluster_tags(cluster: str, role: str) -> list[str]:
        return [f"{TAG_PREFIX_CLUSTER}{cluster}", f"{TAG_PREFIX_ROLE}{role}"]

    def node_from_server(self, server, *, floating_ips: Iterable[Any] = (),
                         flavor=None) -> Node:
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
        role = self.server_role(server) or (ROLE_MASTER if server.name.endswith("-master")
                                            else ROLE_WORKER)
        return Node(name=server.name, role=role, server_id=server.id, private_ip=private,
                    public_ip=public or None, status=server.status, vcpus=int(vcpus),
                    ram_mb=int(ram))

    # ---------------------------------------------------------------- images (create-image)
    @translate_errors
    def snapshot_server(self, *, server_id: str, name: str,
                        metadata: dict[str, str] | None = None) -> str:
        """Snapshot a (stopped) server into an image; returns the image id."""
        image = self.conn.compute.create_server_image(server_id, name, metadata=metadata,
                                                      wait=False)
        return image.id

    @translate_errors
    def wait_for_image(self, *, image_id: str, timeout: float):
        """Poll until the image is active; a killed/deleted image raises ``CloudError``."""
        last = {"status": "unknown"}

        def active():
            image = self.conn.image.get_image(image_id)
            last["status"] = image.status
            if image.status in ("killed", "deleted", "deactivated"):
                raise errors.CloudError(f"image {image_id} became {image.status}")
            return image if image.status == "active" else None
        return poll(active, timeout=timeout, what=f"image {image_id} active", interval=2,
                    max_interval=5, describe=lambda: f"status {last['status']}")

    @translate_errors
    def set_image_properties(self, *, image_id: str, properties: dict[str, str]) -> None:
        self.conn.image.update_image(image_id, **properties)

    @translate_errors
    def list_images(self) -> list:
        """The images the project owns, whatever their status (snapshots being saved too)."""
        return list(self.conn.image.images(owner=self.conn.current_project_id))

    @translate_errors
    def delete_image(self, image_id: str) -> None:
        self.conn.image.delete_image(image_id, ignore_missing=True)
