"""Grow and shrink a running cluster: add-workers, and remove-workers with decommission.

Growing: new workers are booted from the cluster's own image, flavor, network, security
group, server group and keypair (read from the cloud), reached over SSH, and then every
node's files that name the members are rewritten and the new daemons started (the same
idempotent deploy ``launch`` runs). A failure or Ctrl-C deletes only the servers this run
made and puts the old nodes' files back.

Shrinking never loses data: the victims are listed in ``dfs.hosts.exclude`` (configured
from launch on, so the NameNode only re-reads it), HDFS copies their blocks elsewhere, and
only when the NameNode reports every victim "Decommissioned" are their daemons stopped and
their servers deleted. An interrupted or failed decommission is reverted (the exclude
lists emptied again); once the servers are being deleted the removal is finished instead.
``decommission`` needs only facts and a runner, so ``fab decommission`` on the master runs
the same code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Callable, Iterable

from . import errors, hostkeys
from .executor import run_per_node
from .inventory import ClusterAccess, deployed_facts, open_cluster
from .ledger import Ledger
from .model import META_RUN, ROLE_WORKER, ClusterFacts, Node, worker_name
from .polling import poll, shielded_cleanup
from .progress import PhaseTimer, Progress, ensure
from .provider import QuotaNeed, security_group_name
from .render import check_memory_plan, node_config_files
from .transport import Runner
from .services.hdfs import HDFS

DECOMMISSIONED = "Decommissioned"
#: How long YARN lets running containers finish on a node being decommissioned.
YARN_GRACEFUL_SECONDS = 600


def _worker_index(node_name: str) -> int:
    tail = node_name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _sorted_workers(nodes: Iterable[Node]) -> tuple[Node, ...]:
    return tuple(sorted(nodes, key=lambda n: (_worker_index(n.name), n.name)))


# ============================================================================ decommission
def _write_exclude_lists(*, facts: ClusterFacts, runner: Runner) -> None:
    """The master's dfs.exclude / yarn.exclude as ``facts.decommissioning`` says."""
    files = {path: entry for path, entry in
             node_config_files(facts=facts, node=facts.master).items()
             if path.endswith((".exclude",))}
    runner.put_files(facts.master, files)


def _refresh(*, facts: ClusterFacts, runner: Runner) -> None:
    """Make the NameNode (and ResourceManager) re-read their exclude lists."""
    if "hdfs" in facts.services:
        HDFS(facts=facts, runner=runner).refresh_nodes()
    if "yarn" in facts.services:
        from .services.yarn import YARN
        YARN(facts=facts, runner=runner).refresh_nodes(graceful_seconds=YARN_GRACEFUL_SECONDS)


def revert_decommission(*, facts: ClusterFacts, runner: Runner) -> None:
    """Take the workers being decommissioned out of the exclude lists (removed workers'
    addresses stay) and refresh: they are back in service."""
    clean = dataclasses.replace(facts, decommissioning=())
    _write_exclude_lists(facts=clean, runner=runner)
    _refresh(facts=clean, runner=runner)


def check_replication(*, facts: ClusterFacts, runner: Runner, remaining: int,
                      lower_replication: bool = False, progress=None) -> str:
    """Refuse a shrink that HDFS cannot finish: a block counts as safe once it has its
    file's replication or the NameNode's default (``dfs.replication``) in live replicas,
    so ``remaining`` workers must reach min(highest file replication, default). With
    ``lower_replication`` every file's replication is set to ``remaining`` first (and
    waited for). Returns a note ("" when nothing had to be said)."""
    if "hdfs" not in facts.services:
        return ""
    hdfs = HDFS(facts=facts, runner=runner)
    default = hdfs.default_replication()
    highest = hdfs.max_file_replication()
    needed = min(default, highest) if highest else 0
    if remaining >= needed:
        return ""
    if not lower_replication:
        raise errors.ValidationError(
            f"removing these workers would leave {remaining} DataNode(s), fewer than the "
            f"{needed} replicas HDFS keeps of some files (dfs.replication {default}, highest "
            f"file replication {highest}): the decommission could never finish",
            hint=f"remove fewer workers, or pass --lower-replication to set every file's "
                 f"replication to {remaining} first")
    ensure(progress).message(f"lowering every file's replication to {remaining} "
                             "(hdfs dfs -setrep, then waiting until HDFS has done it) "
                             "before the decommission")
    hdfs.set_replication(remaining)
    return f"replication of every file set to {remaining} (--lower-replication)"


def decommission(*, facts: ClusterFacts, runner: Runner, victims: Iterable[Node],
                 timeout: float = 3600, progress: Progress | None = None) -> dict:
    """Drain ``victims`` out of HDFS (and YARN), then stop their daemons.

    Waits until the NameNode reports every victim "Decommissioned" (all at once), showing
    the blocks left to copy; then stops their DataNode, NodeManager and Spark worker. On
    any failure or Ctrl-C before that point the decommission is reverted and the error
    raised: the victims keep serving. Returns ``{"seconds": ..., "blocks": {name: n}}``.
    """
    progress = ensure(progress)
    victims = list(victims)
    names = tuple(v.name for v in victims)
    started = time.monotonic()
    draining = dataclasses.replace(facts, decommissioning=names)
    hdfs = HDFS(facts=draining, runner=runner) if "hdfs" in facts.services else None
    yarn = None
    if "yarn" in facts.services:
        from .services.yarn import YARN
        yarn = YARN(facts=draining, runner=runner)
    most_left: dict[str, int] = {}
    try:
        if hdfs is not None or yarn is not None:
            _write_exclude_lists(facts=draining, runner=runner)
            _refresh(facts=draining, runner=runner)

            def drained():
                pending = []
                if hdfs is not None:
                    states = hdfs.datanode_states()
                    for name in names:
                        state = states.get(name, {"state": "not registered", "left": 0})
                        most_left[name] = max(most_left.get(name, 0),
                                              int(state.get("left") or 0))
                        if state["state"] == DECOMMISSIONED:
                            progress.node_status(name, "HDFS: decommissioned")
                        elif state["state"] == "not registered":
                            # a DataNode the NameNode does not know holds no block
                            progress.node_status(name, "HDFS: not registered (no blocks)")
                        else:
                            pending.append(name)
                            progress.node_status(
                                name, f"HDFS: {state['state'].lower()}, "
                                      f"{state.get('left', 0)} block(s) left to copy")
                if yarn is not None:
                    running = yarn.running_nodes()
                    for name in names:
                        if name in running:
                            pending.append(name)
                            progress.node_status(name, "YARN: decommissioning "
                                                       "(containers finishing)")
                return True if not pending else None
            poll(drained, timeout=timeout, what=f"decommission of {', '.join(names)}",
                 interval=1.0, max_interval=5, backoff=1.3,
                 transient=(errors.SSHError, errors.TimeoutError_),
                 hint="`hdfs dfsadmin -report` on the master shows each DataNode's state")
            if hdfs is not None:
                problems = hdfs.fsck_problems()
                if problems:
                    raise errors.DeployError(
                        "HDFS reports missing or corrupt blocks; the workers were NOT "
                        f"removed:\n{problems}",
                        hint="`hdfs fsck / -list-corruptfileblocks` on the master")
    except BaseException as exc:
        with shielded_cleanup():
            try:
                revert_decommission(facts=facts, runner=runner)
                reverted = "the decommission was reverted: the workers keep serving"
            except Exception as undo:  # noqa: BLE001 - reported with the first error
                why = errors.one_line(undo)
                reverted = (f"reverting the decommission failed too ({why}); empty "
                            "dfs.exclude on the master and run `hdfs dfsadmin -refreshNodes`")
        errors.raise_after_undo(exc, during=f"the decommission of {', '.join(names)}",
                          failed="", said=reverted)
    stop_daemons(facts=facts, runner=runner, nodes=victims)
    return {"seconds": time.monotonic() - started, "blocks": most_left}


def stop_daemons(*, facts: ClusterFacts, runner: Runner, nodes: Iterable[Node]) -> None:
    """Stop the Spark worker, NodeManager and DataNode on ``nodes`` (all at once), in the
    reverse of the start order (services of the master alone, Jupyter, have none there)."""
    from .deploy import services_for
    services = list(reversed(services_for(facts=facts, runner=runner)))

    def stop(node: Node) -> None:
        for service in services:
            service.stop_on_worker(node)
    run_per_node(stop, list(nodes), what="stop the removed workers' daemons")


# ============================================================================ remove
def choose_victims(*, access: ClusterAccess, count: int | None,
                   nodes: Iterable[str] = ()) -> list[Node]:
    """The workers to remove: the ``count`` highest-numbered, or the named ones."""
    nodes = list(nodes)
    if (count is None) == (not nodes):
        raise errors.UsageError("say which workers to remove: -n COUNT or --node NAME "
                                "(one of them)")
    workers = _sorted_workers(access.facts.workers)
    if nodes:
        victims = []
        for name in nodes:
            node = access.worker(name)
            if node not in victims:
                victims.append(node)
    else:
        if count < 1:
            raise errors.ValidationError(f"-n {count}: remove at least 1 worker")
        if count > len(workers):
            raise errors.ValidationError(
                f"-n {count}: cluster {access.name!r} has only {len(workers)} worker(s)")
        victims = list(workers[-count:])
    if len(victims) >= len(workers):
        raise errors.ValidationError(
            f"removing {', '.join(v.name for v in victims)} would leave cluster "
            f"{access.name!r} with no worker",
            hint=f"keep at least one, or `spark-openstack destroy -c {access.name}`")
    return victims


def remove_workers(*, provider, cluster: str, count: int | None = None,
                   nodes: Iterable[str] = (), identity_file: str | None = None,
                   lower_replication: bool = False, timeout: float = 3600,
                   progress: Progress | None = None,
                   confirm: Callable[[list[Node]], None] | None = None) -> dict:
    """Decommission, stop and delete workers; every remaining node's files updated.

    ``confirm`` is shown the chosen workers before anything changes (it raises to refuse).

    Refused before anything changes: an unknown cluster or node, the master, -n 0, no
    worker left, or fewer DataNodes left than HDFS needs for its replicas.
    """
    progress = ensure(progress)
    timings: dict[str, float] = {}
    access = open_cluster(provider=provider, cluster=cluster, identity_file=identity_file)
    victims = choose_victims(access=access, count=count, nodes=nodes)
    if confirm is not None:
        confirm(victims)
    access.require_active(what="remove workers from")
    runner = access.runner()
    notes: list[str] = []
    try:
        with PhaseTimer(progress, "check", timings):
            facts = deployed_facts(runner=runner, facts=access.facts)
            remaining = [w for w in facts.workers if w not in victims]
            note = check_replication(facts=facts, runner=runner, remaining=len(remaining),
                                     lower_replication=lower_replication, progress=progress)
            notes += [note] if note else []
        with PhaseTimer(progress, "decommission", timings):
            drained = decommission(facts=facts, runner=runner, victims=victims,
                                   timeout=timeout, progress=progress)
        # From here on the removal is finished, not reverted: the victims hold no data
        # any more and their daemons are stopped.
        with shielded_cleanup():
            with PhaseTimer(progress, "delete servers", timings):
                for node in victims:
                    progress.node_status(node.name, "deleting")
                provider.delete_servers(server_ids={v.server_id for v in victims}, wait=True)
                for node in victims:
                    progress.node_status(node.name, "deleted")
                hostkeys.forget(access.known_hosts, hosts={v.private_ip for v in victims})
            with PhaseTimer(progress, "update remaining nodes", timings):
                shrunk = dataclasses.replace(
                    facts, workers=tuple(remaining), decommissioning=(),
                    retired=tuple(dict.fromkeys((*facts.retired,
                                                 *(v.private_ip for v in victims)))))
                from .deploy import reconfigure_nodes
                reconfigure_nodes(facts=shrunk, runner=runner)
                _refresh(facts=shrunk, runner=runner)
    finally:
        runner.close()
    return {"cluster": cluster, "removed": [v.name for v in victims],
            "workers": [w.name for w in remaining], "timings": timings,
            "blocks_moved": drained["blocks"], "notes": notes}


# ============================================================================ add
def _flavor_ref(flavor) -> str:
    """A server's embedded flavor as something ``find_flavor`` takes (id before compute
    2.47, the original name since)."""
    if flavor is None:
        return ""
    get = flavor.get if isinstance(flavor, dict) else (lambda k: getattr(flavor, k, None))
    return get("id") or get("original_name") or get("name") or ""


def _network_name(server) -> str:
    names = list((server.addresses or {}).keys())
    if not names:
        raise errors.CloudError(f"server {server.name} has no network address")
    return names[0]


def add_workers(*, provider, cluster: str, count: int, flavor: str | None = None,
                identity_file: str | None = None, timeout: float = 900,
                progress: Progress | None = None) -> dict:
    """Boot ``count`` workers like the cluster's own, reach them, and deploy onto them.

    All or nothing for the new servers: on a failure or Ctrl-C the servers this run made
    are deleted and the old nodes' files are put back; the old nodes never stop serving.
    """
    from . import deploy as deploy_module
    from .launch import wait_until_reachable
    progress = ensure(progress)
    timings: dict[str, float] = {}
    if count < 1:
        raise errors.ValidationError(f"-n {count}: add at least 1 worker")
    access = open_cluster(provider=provider, cluster=cluster, identity_file=identity_file)
    access.require_active(what="add workers to")
    facts_now = access.facts
    by_id = {s.id: s for s in access.servers}
    master_server = by_id[facts_now.master.server_id]
    template = by_id[facts_now.workers[0].server_id] if facts_now.workers else master_server
    created = Ledger(cluster=cluster)
    start = max((_worker_index(w.name) for w in facts_now.workers), default=0) + 1
    names = [worker_name(cluster, i) for i in range(start, start + count)]
    runner = access.runner()
    new_ips: list[str] = []
    phase = ["check"]
    try:
        with PhaseTimer(progress, "check", timings):
            deployed = deployed_facts(runner=runner, facts=facts_now)
            image_id = (master_server.image or {}).get("id") if isinstance(
                master_server.image, dict) else getattr(master_server.image, "id", None)
            if not image_id:
                raise errors.ValidationError(
                    f"cannot tell the image of {master_server.name} (booted from a volume?)")
            worker_flavor = provider.find_flavor(flavor or _flavor_ref(template.flavor),
                                                 option="--flavor")
            network = provider.find_network(_network_name(master_server))
            group = provider.find_security_group(security_group_name(cluster))
            if group is None:
                raise errors.ValidationError(
                    f"cluster {cluster!r} has no security group {security_group_name(cluster)}",
                    hint="it is broken; `spark-openstack destroy` it and launch again")
            server_groups = provider.find_server_groups(cluster)
            check_memory_plan(
                master=facts_now.master,
                worker=Node(name=names[0], role=ROLE_WORKER, ram_mb=worker_flavor.ram,
                            vcpus=worker_flavor.vcpus),
                services=deployed.services, worker_count=len(facts_now.workers) + count,
                flavor_names=("", worker_flavor.name))
            notes = provider.check_quotas(QuotaNeed(
                servers=count, vcpus=count * worker_flavor.vcpus,
                ram_mb=count * worker_flavor.ram, security_groups=0, ports=count,
                server_group_members=count if server_groups else 0))
            for note in notes:
                progress.message(note)
        phase[0] = "boot"
        with PhaseTimer(progress, "boot", timings):
            inherited = {k: v for k, v in (master_server.metadata or {}).items()
                         if k.startswith("spark_openstack_")}
            metadata = {**inherited, **provider.cluster_metadata(cluster, ROLE_WORKER),
                        META_RUN: created.run_id}

            def boot(name: str) -> None:
                progress.node_status(name, "creating")
                created.add_server(name, provider.create_server(
                    name=name, image_id=image_id, flavor_id=worker_flavor.id,
                    network_id=network.id, keypair=master_server.key_name,
                    security_groups=[group.id],
                    server_group_id=server_groups[0].id if server_groups else None,
                    metadata=metadata, tags=provider.cluster_tags(cluster, ROLE_WORKER)))
                progress.node_status(name, "requested")
            run_per_node(boot, names, what="create workers")

            def on_status(server):
                progress.node_status(server.name, server.status.lower())
            servers = provider.wait_for_servers(
                server_ids=list(created.server_ids.values()), timeout=timeout,
                name_regex=f"^{cluster}-", on_status=on_status)
        new_nodes = _sorted_workers(provider.node_from_server(s, flavor=worker_flavor)
                                    for s in servers.values())
        new_ips.extend(n.private_ip for n in new_nodes)
        phase[0] = "ssh"
        with PhaseTimer(progress, "ssh", timings):
            wait_until_reachable(
                facts=dataclasses.replace(facts_now, workers=new_nodes),
                key_filename=access.key_filename, timeout=timeout, progress=progress,
                known_hosts=access.known_hosts)
        phase[0] = "deploy"
        grown = dataclasses.replace(facts_now,
                                    workers=_sorted_workers((*facts_now.workers, *new_nodes)))
        with PhaseTimer(progress, "deploy", timings):
            result = deploy_module.deploy_cluster(
                facts=grown, key_filename=access.key_filename,
                gateway_host=grown.master.address, progress=progress,
                known_hosts=access.known_hosts)
    except BaseException as exc:
        summary = _undo_add(provider=provider, access=access, runner=runner,
                            deployed=locals().get("deployed"), created=created,
                            touched_old=phase[0] == "deploy", new_ips=new_ips,
                            progress=progress)
        runner.close()
        errors.raise_after_undo(exc, during=f"add-workers' {phase[0]} phase",
                          failed=f"add-workers failed in the {phase[0]} phase: ", said=summary)
    runner.close()
    health = result.get("health", {})
    return {"cluster": cluster, "added": [n.name for n in new_nodes],
            "workers": [w.name for w in grown.workers], "timings": timings,
            "health": [h.line() for h in health.values()],
            "healthy": all(h.ok for h in health.values()), "messages": result.get("messages", [])}


def _undo_add(*, provider, access: ClusterAccess, runner, deployed, created: Ledger,
              touched_old: bool, new_ips, progress) -> str:
    """Delete this run's servers (also one whose create answer was lost: by run id) and,
    when the old nodes' files were already rewritten, write them back."""
    result, failure = created.undo(
        provider=provider, progress=progress,
        doing=f"removing the workers this run created for {access.name!r} ...")
    with shielded_cleanup():
        said = []
        if failure:
            said.append(f"deleting the new servers failed ({failure}); remove them with "
                        f"`spark-openstack remove-workers -c {access.name} --node NAME`")
        else:
            said.append(f"deleted the {result['servers']} new server(s)")
            with contextlib.suppress(OSError, ValueError):
                hostkeys.forget(access.known_hosts, hosts=new_ips)
        if touched_old and deployed is not None:
            try:
                from .deploy import reconfigure_nodes
                # a new DataNode may have registered before it was deleted: its address
                # is excluded like a removed worker's, or the NameNode would count it live
                restored = dataclasses.replace(deployed, retired=tuple(dict.fromkeys(
                    (*deployed.retired, *new_ips))))
                reconfigure_nodes(facts=restored, runner=runner)
                _refresh(facts=restored, runner=runner)
                said.append("the old nodes' files are as before")
            except Exception as exc:  # noqa: BLE001
                why = errors.one_line(exc)
                said.append(f"restoring the old nodes' files failed ({why}); run "
                            f"`spark-openstack deploy -c {access.name}`")
    return "; ".join(said) + "."


__all__ = ["add_workers", "remove_workers", "decommission", "revert_decommission",
           "check_replication", "choose_victims", "stop_daemons"]
