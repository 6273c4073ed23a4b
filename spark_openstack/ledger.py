"""What one run created, and the one way it is deleted again.

A launch, an add-workers, a create-image, a one-shot run and a destroy all end here:
``Ledger`` records what a cluster run makes (stamped with its run id so a server whose
create answer was lost is still found as the run's), ``delete_resources`` deletes in
dependency order and waits, and ``destroy`` is the same teardown with everything the
cloud knows of the cluster. ``ImageLedger`` is create-image's record (builder, its
group and floating IP, the unfinished snapshot), found again by the same run id.
"""
from __future__ import annotations

import contextlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from . import errors, hostkeys, polling
from .errors import SparkOpenstackError, UsageError
from .model import BUILDER_METADATA_KEY, META_RUN, image_property
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

    def undo(self, *, provider: OpenStackProvider, progress: Progress,
             doing: str) -> tuple[dict | None, str | None]:
        """A failed run's rollback: ``delete`` shielded from Ctrl-C, never raising, so
        the run's first error stays its error. Returns (counts, None) or (None, why)."""
        with shielded_cleanup():
            progress.message(doing)
            try:
                return self.delete(provider=provider), None
            except Exception as exc:  # noqa: BLE001 - reported, never hides the first error
                return None, errors.one_line(exc)


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


# --------------------------------------------------------------------------- create-image's ledger

#: What a create-image run makes, in the order its cleanup deletes them.
KINDS = ("fip", "server", "secgroup", "image")
KIND_NAMES = {"fip": "floating IP", "server": "builder server", "secgroup": "security group",
              "image": "unfinished image"}
#: How long a cleanup waits for something whose create call was cut off (Ctrl-C between
#: the request and its answer) to appear in the cloud's listings.
SETTLE_SECONDS = 8.0
#: Discover-and-delete rounds at most: a create cut off mid-request may land after the first.
CLEANUP_ROUNDS = 3

_RUN_MARK = re.compile(r"spark-openstack-run=([\w-]+)")


def run_mark(run_id: str) -> str:
    """The run id as written into descriptions (security group, floating IP)."""
    return f"spark-openstack-run={run_id}"


def run_in_text(text: str | None) -> str | None:
    """The run id a description carries (``run_mark``), or None."""
    match = _RUN_MARK.search(text or "")
    return match.group(1) if match else None


@dataclass
class ImageLedger:
    """The ledger of one create-image run: what it made, so every exit deletes exactly that.

    ``run_id`` is stamped into everything the run creates (builder metadata ``META_RUN``,
    the descriptions of its security group and floating IP, the snapshot's properties),
    so what a run made is found by it even when the create's answer never arrived, and
    another run's things (same image name included) are never taken for it.
    """

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    made: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    pending: set[str] = field(default_factory=set)   # a create started, no id recorded yet
    started: bool = False                            # any create was ever started

    @contextlib.contextmanager
    def creating(self, kind: str):
        """Around one create call: until ``record`` it may have made something unseen."""
        self.started = True
        self.pending.add(kind)
        try:
            yield
        except UsageError:           # refused outright (quota, bad input): nothing was made
            self.pending.discard(kind)
            raise

    def record(self, kind: str, ident: str) -> None:
        self.made[kind].add(ident)
        self.pending.discard(kind)

    def discover(self, *, provider) -> tuple[dict[str, set[str]], list[str]]:
        return _discover_image_run(provider, self)

    def delete(self, *, provider, keep_image: str | None = None, progress,
               settle: float | None = None, interval: float = 1.0,
               rounds: int = CLEANUP_ROUNDS) -> str:
        """Delete what this run made (``_delete_image_run``); one-line summary."""
        return _delete_image_run(provider, self, keep_image=keep_image, progress=progress,
                                 settle=settle, interval=interval, rounds=rounds)


def _discover_image_run(provider, run: ImageLedger) -> tuple[dict[str, set[str]], list[str]]:
    """Ids of what the cloud holds of this run, by run id only: builder servers by
    metadata, floating IPs by description (or on this run's builders), security groups by
    description, images by property (or snapshots of this run's builders). Also returns
    the listings that failed (what they would have found is unknown)."""
    rid = run.run_id
    found: dict[str, set[str]] = {k: set() for k in KINDS}
    problems = []

    def listing(kind, fn):
        try:
            found[kind] = set(fn())
        except SparkOpenstackError as exc:
            problems.append(f"could not list {KIND_NAMES[kind]}s: {exc.message}")

    listing("server", lambda: (
        s.id for s in provider.list_servers()
        if (s.metadata or {}).get(META_RUN) == rid
        and BUILDER_METADATA_KEY in (s.metadata or {})))
    servers = found["server"] | run.made["server"]
    listing("fip", lambda: (
        f.id for f in provider.list_floating_ips()
        if run_in_text(f.description) == rid
        or (servers and (f.port_details or {}).get("device_id") in servers)))
    listing("secgroup", lambda: (g.id for g in provider.list_security_groups()
                                 if run_in_text(g.description) == rid))
    listing("image", lambda: (
        i.id for i in provider.list_images()
        if image_property(i, META_RUN) == rid
        or (servers and image_property(i, "instance_uuid") in servers)))
    return found, problems


def _delete_image_run(provider, run: ImageLedger, *, keep_image: str | None = None, progress,
             settle: float | None = None, interval: float = 1.0,
             rounds: int = CLEANUP_ROUNDS) -> str:
    """Delete what this run made: what it recorded AND what the cloud holds with its run
    id (``discover``), never another run's. Rounds repeat until a listing finds nothing
    new; a create whose answer never came is waited for up to ``settle`` seconds.
    Returns a one-line summary; what could not be deleted is also told to ``progress``."""
    if not run.started:
        return "nothing had been created."
    done: dict[str, set[str]] = {k: set() for k in KINDS}
    failed: list[str] = []
    seen: set[str] = set()
    settle_end = time.monotonic() + (SETTLE_SECONDS if settle is None else settle)
    used = 0
    while True:
        found, listing_problems = _discover_image_run(provider, run)
        seen |= {k for k in KINDS if found[k] or run.made[k]}
        todo = {k: (run.made[k] | found[k]) - done[k] for k in KINDS}
        todo["image"].discard(keep_image)
        if not any(todo.values()):
            if run.pending - seen and time.monotonic() < settle_end:
                polling.sleep(interval)    # a cut-off create may still be landing
                continue
            failed += listing_problems
            break
        if used >= rounds:
            failed += [f"{KIND_NAMES[k]} {i}: still there" for k in KINDS for i in todo[k]]
            break
        used += 1
        _delete_image_round(provider, todo, done, failed)
    deleted = [KIND_NAMES[k] for k in KINDS if done[k]]
    if failed:
        progress.message("could not delete everything create-image made; delete by hand: "
                         + "; ".join(failed))
        return (f"could not delete everything this run made: {'; '.join(failed)}")
    if not deleted:
        return "nothing had been created."
    return f"deleted what this run made ({', '.join(deleted)})."


def _delete_image_round(provider, todo: dict[str, set[str]], done: dict[str, set[str]],
                  failed: list[str]) -> None:
    """One pass in dependency order: floating IPs, builders (waited for), groups
    (confirmed gone), images. A failed delete is reported once, not retried."""
    def attempt(kind, ident, delete):
        done[kind].add(ident)
        try:
            delete()
        except SparkOpenstackError as exc:
            failed.append(f"{KIND_NAMES[kind]} {ident}: {exc.message}")

    for fip in sorted(todo["fip"]):
        attempt("fip", fip, lambda fip=fip: provider.delete_floating_ip(fip))
    if todo["server"]:
        servers = sorted(todo["server"])
        try:
            provider.delete_servers(server_ids=servers, wait=True)
        except SparkOpenstackError as exc:
            failed.append(f"{KIND_NAMES['server']} {', '.join(servers)}: {exc.message}")
        done["server"] |= set(servers)
    for group in sorted(todo["secgroup"]):
        attempt("secgroup", group, lambda group=group: provider.delete_security_group(group))
    for image in sorted(todo["image"]):
        attempt("image", image, lambda image=image: provider.delete_image(image))



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



__all__ = ["Ledger", "ImageLedger", "delete_resources", "what_is_left", "destroy", "run_mark",
           "run_in_text"]
