"""The one fake cloud of the unit tests: ``FakeCloud`` sits behind the provider's verbs
(every public method of ``spark_openstack.provider.OpenStackProvider``, same parameters;
tests/unit/test_fake_cloud.py checks it) and holds a small project in memory.

What it does, as the cloud would: look-ups find what was seeded (``images``, ``flavors``,
``keypairs``) or raise ``NotFoundError``; creates make servers (Nova's ``NAME-1..N`` for a
multi-create), groups and floating IPs with predictable ids (``id-NAME``, ``sg1``,
``grp1``, ``fip1``); ``stop_server``/``start_server`` refuse a server in the wrong state and
take effect at the next wait, as Nova's do; deletes remove and are recorded in
``deleted`` (kind -> ids, in order).

What a test scripts or reads: ``fail`` (verb -> exception raised when it is called);
``lose`` (create verbs whose answer is lost: the thing is made, then the call is cut off by
Ctrl-C, ``KeyboardInterrupt``); ``late`` (create verbs cut off before the cloud made the
thing, which then appears at the next listing: a request in flight, kept in ``landing``);
``calls`` (the verbs called, in order; with ``events`` a list every state change is
logged to as well), ``need`` (the last quota need checked), ``quota_checks`` (the state
each check was given), ``associations`` (``(fip_id, port_id)``), ``kwargs`` (verb ->
keyword arguments of its last call).
"""
from __future__ import annotations

import itertools
import types
from collections import defaultdict

from spark_openstack import errors
from spark_openstack.model import META_CLUSTER, META_ROLE
from spark_openstack.provider import naming

#: ``name -> (vcpus, ram MB, disk GB)``: the sandbox cloud's flavors
FLAVORS = {"m1.tiny": (1, 512, 1), "m1.small": (1, 2048, 20), "m1.medium": (2, 4096, 40),
           "m1.large": (4, 8192, 80)}


#: verbs that change the cloud (``FakeCloud.changes``)
CHANGING = ("create_", "allocate_", "associate_", "attach_", "delete_", "stop_", "start_",
            "rename_", "set_", "snapshot_")


def server(name, *, cluster="demo", role=None, status="ACTIVE", metadata=None,
           sid=None, ip=None, floating_ip=None, **attrs):
    """A server as the compute API lists it (metadata names its cluster and role)."""
    role = role or ("master" if name.endswith("master") else "worker")
    meta = {META_CLUSTER: cluster, META_ROLE: role} if cluster else {}
    meta.update(metadata or {})
    addresses = []
    if ip:
        addresses.append({"addr": ip, "version": 4, "OS-EXT-IPS:type": "fixed"})
    if floating_ip:
        addresses.append({"addr": floating_ip, "version": 4, "OS-EXT-IPS:type": "floating"})
    fields = dict(id=sid or f"id-{name}", name=name, status=status, task_state=None,
                  key_name="kp", metadata=meta, addresses={"private": addresses} if ip else {},
                  flavor=None, created_at="", launch_index=0, attached_volumes=[], tags=[],
                  fault=None)
    fields.update(attrs)
    return types.SimpleNamespace(**fields)


class FakeCloud:
    """A small in-memory project behind the provider's verbs (see the module docstring)."""

    server_role = staticmethod(naming.server_role)
    cluster_metadata = staticmethod(naming.cluster_metadata)
    cluster_tags = staticmethod(naming.cluster_tags)
    node_from_server = staticmethod(naming.node_from_server)
    #: HTTP requests sent (the real provider counts them for the benchmarks): none here
    request_count = 0

    def __init__(self, *, servers=(), images=None, flavors=None, keypairs=None,
                 volume_service=False, microversion=(2, 90), quota_problems=(), fail=None,
                 lose=(), late=(), events=None):
        self.servers = list(servers)
        self.images = [types.SimpleNamespace(id=f"img-{name}", name=name, min_disk=0,
                                             min_ram=0, properties=dict(props),
                                             status="active")
                       for name, props in (images if images is not None
                                           else {"debian-12": {}}).items()]
        self.flavors = dict(FLAVORS if flavors is None else flavors)
        self.keypairs = dict(keypairs or {})
        self.volume_service = volume_service
        self.microversion = microversion
        self.quota_problems = list(quota_problems)
        self.fail = dict(fail or {})
        self.lose, self.late = set(lose), set(late)
        self.landing: list[tuple[str, object]] = []
        self.events = events if events is not None else []
        self.security_groups: list = []
        self.server_groups: list = []
        self.floating_ips: list = []
        self.calls: list[str] = []
        self.deleted: dict[str, list] = defaultdict(list)
        self.kwargs: dict[str, dict] = {}
        self.associations: list[tuple[str, str]] = []
        self.quota_checks: list = []
        self.quota_state = object()
        self.need = None
        self.pending: dict[str, str] = {}
        self._counters: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))

    def __getattr__(self, name):
        raise AssertionError(f"unexpected provider call {name}")

    @property
    def changes(self) -> list[str]:
        """The verbs called that change the cloud (creates, deletes, power, metadata)."""
        return [c for c in self.calls if c.startswith(CHANGING)]

    # ------------------------------------------------------------------ bookkeeping
    def _call(self, verb, **kwargs):
        self.calls.append(verb)
        self.kwargs[verb] = kwargs
        if verb in self.fail:
            raise self.fail[verb]

    def _made(self, verb, collection: str, *things):
        """``things`` join ``collection`` now, or at the next listing when ``verb`` is
        ``late``; a ``late`` or ``lose`` verb is then cut off by Ctrl-C."""
        if verb in self.late:
            self.landing += [(collection, thing) for thing in things]
            raise KeyboardInterrupt
        getattr(self, collection).extend(things)
        if verb in self.lose:
            raise KeyboardInterrupt
        return things[0]

    def _land(self):
        for collection, thing in self.landing:
            getattr(self, collection).append(thing)
        self.landing.clear()

    def _listed(self, verb, collection: str, **kwargs) -> list:
        """A listing: what was in flight lands first, as the cloud shows it by then."""
        self._land()
        self._call(verb, **kwargs)
        return list(getattr(self, collection))

    def _removed(self, collection: str, ids) -> None:
        """``ids`` leave ``collection`` and are recorded in ``deleted[collection]``."""
        gone = set(ids)
        setattr(self, collection, [t for t in getattr(self, collection) if t.id not in gone])
        self.deleted[collection].extend(ids)

    def _next(self, kind):
        return next(self._counters[kind])

    def _server(self, server_id):
        found = [s for s in self.servers if s.id == server_id]
        if not found:
            raise errors.NotFoundError(f"server {server_id!r} not found")
        return found[0]

    # ------------------------------------------------------------------ catalog
    def compute_max_microversion(self):
        return self.microversion

    def supports_tags_at_create(self):
        return self.microversion >= (2, 52)

    def supports_tags(self):
        return self.microversion >= (2, 26)

    def find_image(self, name_or_id):
        self._call("find_image", name_or_id=name_or_id)
        for image in self.images:
            if name_or_id in (image.id, image.name):
                return image
        raise errors.NotFoundError(f"image {name_or_id!r} not found")

    def find_flavor(self, name_or_id, *, option="--flavor"):
        self._call("find_flavor", name_or_id=name_or_id, option=option)
        if name_or_id not in self.flavors:
            raise errors.NotFoundError(f"flavor {name_or_id!r} ({option}) not found")
        vcpus, ram, disk = self.flavors[name_or_id]
        return types.SimpleNamespace(id=f"fl-{name_or_id}", name=name_or_id, vcpus=vcpus,
                                     ram=ram, disk=disk)

    def find_keypair(self, name):
        self._call("find_keypair", name=name)
        if name not in self.keypairs:
            raise errors.NotFoundError(f"keypair {name!r} not found")
        return types.SimpleNamespace(name=name, public_key=self.keypairs[name],
                                     fingerprint="x")

    def find_network(self, name_or_id):
        self._call("find_network", name_or_id=name_or_id)
        return types.SimpleNamespace(id="net", name="private")

    def find_floating_pool(self, name_or_id):
        self._call("find_floating_pool", name_or_id=name_or_id)
        return types.SimpleNamespace(id="pub", name="public")

    def has_volume_service(self):
        return self.volume_service

    def read_quotas(self):
        self._call("read_quotas")
        return self.quota_state

    def check_quotas(self, need, *, state=None):
        self._call("check_quotas", need=need, state=state)
        self.need = need
        self.quota_checks.append(state)
        return list(self.quota_problems)

    # ------------------------------------------------------------------ compute
    def create_server_group(self, *, cluster, policy="soft-anti-affinity"):
        self._call("create_server_group", cluster=cluster, policy=policy)
        group = types.SimpleNamespace(id=f"grp{self._next('grp')}",
                                      name=naming.server_group_name(cluster), policy=policy)
        return self._made("create_server_group", "server_groups", group)

    def find_server_groups(self, cluster):
        self._call("find_server_groups", cluster=cluster)
        return [g for g in self.server_groups if g.name == naming.server_group_name(cluster)]

    def delete_server_group(self, group_id):
        self._call("delete_server_group", group_id=group_id)
        self._removed("server_groups", [group_id])

    def create_server(self, *, name, image_id, flavor_id, network_id, keypair=None,
                      security_groups=(), server_group_id=None, metadata=None, tags=(),
                      user_data=None, count=1):
        self._call("create_server", name=name, image_id=image_id, flavor_id=flavor_id,
                   network_id=network_id, keypair=keypair, security_groups=security_groups,
                   server_group_id=server_group_id, metadata=metadata, tags=tags,
                   user_data=user_data, count=count)
        names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
        made = []
        for index, each in enumerate(names):
            address = {"addr": f"10.0.0.{4 + self._next('ip')}", "version": 4,
                       "OS-EXT-IPS:type": "fixed"}
            made.append(types.SimpleNamespace(
                id=f"id-{each}", name=each, status="ACTIVE", task_state=None,
                key_name=keypair, metadata=dict(metadata or {}),
                addresses={"private": [address]}, flavor=None, created_at="",
                launch_index=index, attached_volumes=[], tags=list(tags), fault=None))
        return self._made("create_server", "servers", *made).id

    def rename_server(self, server_id, name):
        self._call("rename_server", server_id=server_id, name=name)
        self._server(server_id).name = name

    def set_server_metadata(self, server_id, metadata):
        self._call("set_server_metadata", server_id=server_id, metadata=metadata)
        self._server(server_id).metadata.update(metadata)

    def list_servers(self, *, name_regex=None):
        return self._listed("list_servers", "servers", name_regex=name_regex)

    def wait_for_servers(self, *, server_ids, timeout, name_regex=None, status="ACTIVE",
                         on_status=None, interval=1.0):
        server_ids = list(server_ids)
        self._call("wait_for_servers", server_ids=server_ids, timeout=timeout, status=status)
        self.events.append(f"wait {status} " + ",".join(
            sorted(self._server(i).name for i in server_ids)))
        done, failed = {}, []
        for sid in server_ids:
            srv = self._server(sid)
            srv.status = self.pending.pop(sid, srv.status)
            if on_status:
                on_status(srv)
            if srv.status == "ERROR":
                failed.append(f"[{srv.name}] server went to ERROR: {srv.fault or 'no fault given'}")
            elif srv.status != status:
                raise errors.CloudError(f"[{srv.name}] is {srv.status}, not {status}")
            done[sid] = srv
        if failed:
            raise errors.CloudError("; ".join(sorted(failed)))
        return done

    def delete_servers(self, *, server_ids, wait=True, timeout=300):
        ids = sorted(server_ids)
        self._call("delete_servers", server_ids=ids, wait=wait, timeout=timeout)
        self._removed("servers", ids)

    def _power(self, verb, server_id, *, from_status, to_status):
        """Nova's stop/start: refused unless the server is ``from_status``; it is
        ``to_status`` from the next wait on."""
        self._call(verb, server_id=server_id)
        srv = self._server(server_id)
        assert srv.status == from_status, \
            f"Nova refuses to {verb.removesuffix('_server')} a {srv.status} server"
        self.events.append(f"{verb} {srv.name}")
        self.pending[server_id] = to_status

    def stop_server(self, server_id):
        self._power("stop_server", server_id, from_status="ACTIVE", to_status="SHUTOFF")

    def start_server(self, server_id):
        self._power("start_server", server_id, from_status="SHUTOFF", to_status="ACTIVE")

    def wait_for_server_status(self, *, server_id, status, timeout):
        self._call("wait_for_server_status", server_id=server_id, status=status)
        srv = self._server(server_id)
        srv.status = self.pending.pop(server_id, srv.status)
        if srv.status != status:
            raise errors.CloudError(f"server {srv.name} is {srv.status}, not {status}")
        return srv

    def all_cluster_servers(self):
        self._call("all_cluster_servers")
        out: dict[str, list] = {}
        for srv in self.servers:
            name = (srv.metadata or {}).get(META_CLUSTER)
            if name:
                out.setdefault(name, []).append(srv)
        return out

    def cluster_servers(self, cluster):
        self._call("cluster_servers", cluster=cluster)
        return [s for s in self.servers if (s.metadata or {}).get(META_CLUSTER) == cluster]

    # ------------------------------------------------------------------ network
    def find_security_group(self, name):
        self._call("find_security_group", name=name)
        return next((g for g in self.security_groups if g.name == name), None)

    def create_security_group(self, *, cluster, ssh_cidrs, ui_rules=(), name=None,
                              description=None):
        self._call("create_security_group", cluster=cluster, ssh_cidrs=list(ssh_cidrs),
                   ui_rules=list(ui_rules), name=name, description=description)
        group = types.SimpleNamespace(id=f"sg{self._next('sg')}",
                                      name=name or naming.security_group_name(cluster),
                                      description=description)
        return self._made("create_security_group", "security_groups", group)

    def delete_security_group(self, group_id, *, timeout=120):
        self._call("delete_security_group", group_id=group_id)
        self._removed("security_groups", [group_id])

    def list_security_groups(self):
        return self._listed("list_security_groups", "security_groups")

    def allocate_floating_ip(self, *, pool_network_id, cluster, description=None):
        self._call("allocate_floating_ip", pool_network_id=pool_network_id, cluster=cluster,
                   description=description)
        n = self._next("fip")
        fip = types.SimpleNamespace(id=f"fip{n}", floating_ip_address=f"198.51.100.{8 + n}",
                                    description=description or naming.fip_description(cluster),
                                    port_id=None, port_details=None, fixed_ip_address=None)
        self._made("allocate_floating_ip", "floating_ips", fip)
        return fip.id, fip.floating_ip_address

    def server_port_id(self, server_id):
        return f"port-of-{server_id}"

    def associate_floating_ip(self, *, fip_id, port_id):
        self._call("associate_floating_ip", fip_id=fip_id, port_id=port_id)
        self.associations.append((fip_id, port_id))
        fip = next(f for f in self.floating_ips if f.id == fip_id)
        fip.port_id = port_id
        fip.port_details = {"device_id": port_id.removeprefix("port-of-")}

    def attach_floating_ip(self, *, server_id, pool_network_id, cluster, description=None):
        self._call("attach_floating_ip", server_id=server_id, pool_network_id=pool_network_id,
                   cluster=cluster, description=description)
        n = self._next("fip")
        fip = types.SimpleNamespace(id=f"fip{n}", floating_ip_address=f"198.51.100.{8 + n}",
                                    description=description or naming.fip_description(cluster),
                                    port_id=self.server_port_id(server_id),
                                    port_details={"device_id": server_id},
                                    fixed_ip_address=None)
        self._made("attach_floating_ip", "floating_ips", fip)
        return fip.id, fip.floating_ip_address

    def cluster_floating_ips(self, *, cluster, servers=()):
        self._call("cluster_floating_ips", cluster=cluster)
        server_ids = {s.id for s in servers}
        return [f for f in self.floating_ips
                if f.description == naming.fip_description(cluster)
                or (f.port_details or {}).get("device_id") in server_ids]

    def list_floating_ips(self):
        return self._listed("list_floating_ips", "floating_ips")

    def delete_floating_ip(self, fip_id):
        self._call("delete_floating_ip", fip_id=fip_id)
        self._removed("floating_ips", [fip_id])

    # ------------------------------------------------------------------ images
    def snapshot_server(self, *, server_id, name, metadata=None):
        self._call("snapshot_server", server_id=server_id, name=name, metadata=metadata)
        image = types.SimpleNamespace(id=f"img{self._next('img')}", name=name, min_disk=0,
                                      min_ram=0, properties=dict(metadata or {}),
                                      status="active", instance_uuid=server_id)
        return self._made("snapshot_server", "images", image).id

    def wait_for_image(self, *, image_id, timeout):
        self._call("wait_for_image", image_id=image_id)
        return next(i for i in self.images if i.id == image_id)

    def set_image_properties(self, *, image_id, properties):
        self._call("set_image_properties", image_id=image_id, properties=properties)
        next(i for i in self.images if i.id == image_id).properties.update(properties)

    def list_images(self):
        return self._listed("list_images", "images")

    def delete_image(self, image_id):
        self._call("delete_image", image_id=image_id)
        self._removed("images", [image_id])

    def delete_volumes(self, volume_ids, *, timeout=300):
        self._call("delete_volumes", volume_ids=list(volume_ids))
        self.deleted["volumes"].extend(volume_ids)
