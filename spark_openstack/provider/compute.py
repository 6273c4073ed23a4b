"""Nova: servers (create without waiting, one list request per poll for all of them,
idempotent deletes), server groups and keypair-free state changes.
"""
from __future__ import annotations

import base64
from typing import Any, Callable, Iterable

from .. import errors
from ..model import META_CLUSTER
from ..polling import poll
from .naming import server_group_name
from .sdk_errors import translate_errors, translating

class ComputeMixin:
    """Servers and server groups (part of ``OpenStackProvider``)."""

    conn: Any

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

    @translate_errors
    def start_server(self, server_id: str) -> None:
        self.conn.compute.start_server(server_id)

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

