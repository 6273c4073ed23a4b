"""The launch engine: validate every input against the cloud, boot a master and N workers
at once, reach them over SSH, deploy; all or nothing (the run's ``Ledger`` is deleted on
any failure or Ctrl-C).
"""
from __future__ import annotations

import contextlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import errors, hostkeys
from .config import LaunchSpec, unsafe_ui_warning, web_ui_rules
from .executor import in_background, run_calls, run_per_node
from .expiry import META_EXPIRES, deadline_after
from .inventory import cluster_facts, node_dict
from .keys import cluster_identity_file, resolve_identity_file
from .ledger import Ledger
from .model import (META_CLUSTER, META_DATA_DIRS, META_RUN, META_SERVICES, META_SSH_USER,
                    ROLE_MASTER, ROLE_WORKER, ClusterFacts, Node, master_name, worker_name)
from .polling import poll, shielded_cleanup
from .progress import PhaseTimer, Progress, ensure
from .provider import (OpenStackProvider, QuotaNeed, security_group_name,
                       security_group_rule_count)
from .render import check_memory_plan, image_hadoop_services
from .services import HADOOP_SERVICES


@dataclass
class LaunchPlan:
    """What validation found; nothing has been created when this exists."""

    spec: LaunchSpec
    image: Any
    flavor: Any
    master_flavor: Any
    keypair: Any
    network: Any
    floating_pool: Any | None
    identity_file: str
    server_group: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class LaunchResult:
    facts: ClusterFacts
    timings: dict[str, float]
    identity_file: str
    requests: int
    deploy: dict | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"cluster": self.facts.cluster_name, "timings": self.timings,
                "master": node_dict(self.facts.master),
                "workers": [node_dict(w) for w in self.facts.workers],
                "identity_file": self.identity_file, "api_requests": self.requests,
                "deploy": deploy_summary(self.deploy), "notes": self.notes}


def deploy_summary(result: dict | None) -> dict | None:
    """deploy_cluster's result without objects (and never the Spark secret)."""
    if not result:
        return None
    health = result.get("health") or {}
    return {"services": list(result.get("services") or []),
            "health": [h.line() if hasattr(h, "line") else str(h) for h in health.values()],
            "healthy": all(getattr(h, "ok", True) for h in health.values()),
            "urls": dict(result.get("urls") or {}),
            "timings": dict(result.get("timings") or {}),
            "messages": list(result.get("messages") or [])}



def validate_launch(*, provider: OpenStackProvider, spec: LaunchSpec,
                    progress: Progress | None = None) -> LaunchPlan:
    """Check every input against the cloud; raise before anything is created.

    The look-ups are independent, so they run at once: validation costs about one round
    trip of the slowest, not the sum (it runs in series with the boot).
    """
    progress = ensure(progress)
    name = spec.cluster_name
    calls: dict[str, Any] = {
        "existing": lambda: provider.cluster_servers(name),
        "group": lambda: provider.find_security_group(security_group_name(name)),
        "image": lambda: provider.find_image(spec.image),
        "flavor": lambda: provider.find_flavor(spec.flavor, option="--flavor"),
        "keypair": lambda: provider.find_keypair(spec.keypair),
        "network": lambda: provider.find_network(spec.network),
        "quotas": provider.read_quotas,
        "microversion": provider.compute_max_microversion,   # cached for the creates
    }
    if spec.master_flavor:
        calls["master_flavor"] = lambda: provider.find_flavor(spec.master_flavor,
                                                              option="--master-flavor")
    if spec.floating_ip:
        calls["pool"] = lambda: provider.find_floating_pool(spec.floating_ip_pool)
    found = run_calls(calls, what="validate the launch")
    existing = found["existing"]
    if existing:
        raise errors.ClusterExistsError(
            f"cluster {name!r} already exists ({len(existing)} server(s): "
            f"{', '.join(sorted(s.name for s in existing))})",
            hint=f"pick another -c NAME, or remove it with `spark-openstack destroy -c {name}`")
    if found["group"] is not None:
        raise errors.ClusterExistsError(
            f"security group {security_group_name(name)!r} of a cluster named {name!r} "
            "exists (left over from an earlier cluster)",
            hint=f"clean it up with `spark-openstack destroy -c {name}`, or pick another name")
    image, flavor, keypair = found["image"], found["flavor"], found["keypair"]
    master_flavor = found.get("master_flavor", flavor)
    network, pool = found["network"], found.get("pool")
    identity = resolve_identity_file(identity_file=spec.identity_file, keypair=keypair)
    if "jupyter" in spec.services and spec.deploy:
        check_image_has_jupyter(image)
    for flav, option in ((flavor, "--flavor"), (master_flavor, "--master-flavor")):
        min_disk = getattr(image, "min_disk", 0) or 0
        min_ram = getattr(image, "min_ram", 0) or 0
        if (flav.disk and min_disk > flav.disk) or (min_ram and min_ram > flav.ram):
            raise errors.ValidationError(
                f"flavor {flav.name!r} ({option}) is too small for image {image.name!r} "
                f"(image needs {min_disk} GB disk / {min_ram} MB RAM; flavor has "
                f"{flav.disk} GB / {flav.ram} MB)", hint="choose a bigger flavor")
    if spec.deploy:
        check_image_was_baked(image)
        _check_memory_plan(spec=spec, image=image, flavor=flavor, master_flavor=master_flavor)
    server_group = spec.anti_affinity
    need = quota_need(spec=spec, flavor=flavor, master_flavor=master_flavor,
                      floating_ip=pool is not None)
    notes = provider.check_quotas(need, state=found["quotas"])
    for note in notes:
        progress.message(note)
    if spec.unsafe_ui_cidrs:
        progress.message(unsafe_ui_warning(spec.unsafe_ui_cidrs))
    return LaunchPlan(spec=spec, image=image, flavor=flavor, master_flavor=master_flavor,
                      keypair=keypair, network=network, floating_pool=pool,
                      identity_file=identity, server_group=server_group, notes=notes)


def check_image_was_baked(image) -> None:
    """The deploy needs what ``create-image`` installs (its Glance properties say so): an
    image without them is refused before anything is created, not after the boot."""
    props = dict(getattr(image, "properties", None) or {})
    if not (props.get("spark_version") or getattr(image, "spark_version", None)):
        raise errors.ValidationError(
            f"image {image.name!r} was not made by `spark-openstack create-image` (it has no "
            "spark_version property), so there is no Spark or Hadoop on it to deploy",
            hint="bake one with `spark-openstack create-image ...` and pass it as -i, or "
                 "launch --no-deploy to get bare servers")


def check_image_has_jupyter(image) -> None:
    """``launch --jupyter`` needs an image baked with ``create-image --jupyter`` (its
    ``jupyter`` property says so): refused before anything is created."""
    props = dict(getattr(image, "properties", None) or {})
    value = props.get("jupyter", getattr(image, "jupyter", None))
    if str(value).lower() != "true":
        raise errors.ValidationError(
            f"image {image.name!r} has no Jupyter (launch --jupyter needs one baked with it)",
            hint="bake one with `spark-openstack create-image --jupyter ...` and pass it as "
                 "-i, or launch without --jupyter")


def quota_need(*, spec: LaunchSpec, flavor, master_flavor, floating_ip: bool) -> QuotaNeed:
    """What one launch of ``spec`` takes from the project's quotas (batch launch adds up
    K of them before creating anything)."""
    servers = spec.workers + 1
    group = spec.anti_affinity
    return QuotaNeed(
        servers=servers,
        vcpus=master_flavor.vcpus + spec.workers * flavor.vcpus,
        ram_mb=master_flavor.ram + spec.workers * flavor.ram,
        security_groups=1,
        security_group_rules=security_group_rule_count(ssh_cidrs=spec.allowed_cidrs,
                                                       ui_rules=_ui_rules(spec)),
        floating_ips=1 if floating_ip else 0, ports=servers,
        server_groups=1 if group else 0, server_group_members=servers if group else 0)


def _ui_rules(spec: LaunchSpec) -> list[tuple[str, int]]:
    return web_ui_rules(open_ui_cidrs=spec.open_ui_cidrs, unsafe_ui_cidrs=spec.unsafe_ui_cidrs)


def _check_memory_plan(*, spec: LaunchSpec, image, flavor, master_flavor) -> None:
    """Refuse flavors whose RAM cannot hold the daemons the image will really run."""
    props = dict(getattr(image, "properties", None) or {})
    services = spec.services
    if props.get("hadoop_version"):      # an image create-image made says what it holds
        can_run = image_hadoop_services(props)
        lacking = [s for s in services if s in HADOOP_SERVICES and s not in can_run]
        if lacking and spec.services_asked:
            held = (f"its Hadoop {props['hadoop_version']} has only {', '.join(can_run)}"
                    if can_run else "it has no Hadoop")
            raise errors.ValidationError(
                f"--services asks for {', '.join(lacking)}, which image {image.name!r} "
                f"cannot run ({held})",
                hint="bake an image with Hadoop 3 (`spark-openstack create-image "
                     "--hadoop-version 3.4.2 ...`), or drop "
                     f"{', '.join(lacking)} from --services")
        services = tuple(s for s in services if s not in lacking)
    if not services:
        return
    check_memory_plan(
        master=Node(name=master_name(spec.cluster_name), role=ROLE_MASTER,
                    ram_mb=master_flavor.ram, vcpus=master_flavor.vcpus),
        worker=Node(name=worker_name(spec.cluster_name, 1), role=ROLE_WORKER,
                    ram_mb=flavor.ram, vcpus=flavor.vcpus),
        services=services, worker_count=spec.workers,
        flavor_names=(spec.master_flavor or "", flavor.name))


def launch(*, provider: OpenStackProvider, spec: LaunchSpec,
           progress: Progress | None = None) -> LaunchResult:
    """Validate, boot master + N workers in parallel, reach them over SSH, deploy.

    All or nothing: on any failure or Ctrl-C everything this call created is deleted
    (unless ``spec.keep_on_failure``) and the error says which node failed and why.
    """
    progress = ensure(progress)
    timings: dict[str, float] = {}
    requests_before = provider.request_count
    with PhaseTimer(progress, "validate", timings):
        plan = validate_launch(provider=provider, spec=spec, progress=progress)
    created = Ledger(cluster=spec.cluster_name)
    phase = ["boot"]
    try:
        facts = _create_and_reach(provider=provider, plan=plan, created=created,
                                  timings=timings, progress=progress, phase=phase)
        deploy_result = None
        if spec.deploy:
            phase[0] = "deploy"
            deploy_result = _run_deploy(facts=facts, plan=plan, timings=timings,
                                        progress=progress)
            if deploy_result and isinstance(deploy_result.get("facts"), ClusterFacts):
                facts = deploy_result["facts"]
            if facts.services != tuple(spec.services):
                # the image decided (e.g. no Hadoop): the cloud records what really runs
                services = ",".join(facts.services)
                run_per_node(lambda n: provider.set_server_metadata(
                    n.server_id, {META_SERVICES: services}), facts.nodes,
                    what="record deployed services")
    except BaseException as exc:
        summary = _fail_cleanup(provider=provider, spec=spec, created=created,
                                progress=progress)
        errors.raise_after_undo(exc, during=f"the {phase[0]} phase",
                                failed=f"launch of {spec.cluster_name!r} failed in the "
                                       f"{phase[0]} phase: ", said=summary)
    return LaunchResult(facts=facts, timings=timings, identity_file=plan.identity_file,
                        requests=provider.request_count - requests_before,
                        deploy=deploy_result, notes=plan.notes)


def _create_and_reach(*, provider, plan: LaunchPlan, created: Ledger, timings, progress,
                      phase) -> ClusterFacts:
    """Boot everything, with the fixed costs beside the boot rather than after it: the
    security group, server group and floating IP are made at once, the floating IP is
    associated as soon as the master's port exists (while Nova still builds), and SSH
    then finds every node through the master as soon as the master answers."""
    spec = plan.spec
    name = spec.cluster_name
    deadline = time.monotonic() + spec.timeout
    # the cluster's end (launch --expires-in), counted from its boot, on every server
    expires_at = deadline_after(spec.expires_in) if spec.expires_in else None
    with PhaseTimer(progress, "boot", timings):
        def make_security_group():
            group = provider.create_security_group(cluster=name, ssh_cidrs=spec.allowed_cidrs,
                                                   ui_rules=_ui_rules(spec))
            created.security_group_id = group.id
            return group

        def make_server_group():
            if not plan.server_group:
                return None
            sg = provider.create_server_group(cluster=name)
            if sg is None:
                progress.message("the cloud's compute API is older than 2.15: no soft "
                                 "anti-affinity server group; nodes may share a host")
                return None
            created.server_group_id = sg.id
            return sg.id

        def allocate_floating_ip():
            if plan.floating_pool is None:
                return None
            fip_id, address = provider.allocate_floating_ip(
                pool_network_id=plan.floating_pool.id, cluster=name)
            created.add_floating_ip(fip_id)
            return fip_id, address

        first = run_calls({"security group": make_security_group,
                           "server group": make_server_group,
                           "floating IP": allocate_floating_ip},
                          what="create the cluster's network resources",
                          finish_on_interrupt=True)
        group, server_group_id = first["security group"], first["server group"]
        floating_ip = first["floating IP"]

        def create(node_name, role, flavor, count=1):
            metadata = {**provider.cluster_metadata(name, role),
                        META_SSH_USER: spec.ssh_user, META_SERVICES: ",".join(spec.services),
                        META_DATA_DIRS: ",".join(spec.data_dirs), META_RUN: created.run_id,
                        **({META_EXPIRES: expires_at} if expires_at else {})}
            return provider.create_server(
                name=node_name, image_id=plan.image.id, flavor_id=flavor.id,
                network_id=plan.network.id, keypair=plan.keypair.name,
                # by id: a concurrent launch of the same name has a group of the same name
                security_groups=[group.id], server_group_id=server_group_id,
                metadata=metadata, tags=provider.cluster_tags(name, role),
                count=count)

        def create_master():
            progress.node_status(master_name(name), "creating")
            sid = create(master_name(name), ROLE_MASTER, plan.master_flavor)
            created.add_server(master_name(name), sid)
            progress.node_status(master_name(name), "requested")

        def create_workers():
            """All workers in ONE request (Nova multi-create): one scheduling pass."""
            if spec.workers == 1:
                sid = create(worker_name(name, 1), ROLE_WORKER, plan.flavor)
                created.add_server(worker_name(name, 1), sid)
                progress.node_status(worker_name(name, 1), "requested")
                return
            create(f"{name}-worker", ROLE_WORKER, plan.flavor, count=spec.workers)
            ids = _find_multi_created(provider=provider, cluster=name, count=spec.workers,
                                      run_id=created.run_id)
            created.add_servers(ids)
            for node_name in ids:
                progress.node_status(node_name, "requested")

        stop_associating = threading.Event()
        associated = None
        try:
            run_calls({"master": create_master, "workers": create_workers},
                      what="create the servers", finish_on_interrupt=True)
            if floating_ip:
                master_id = created.server_ids[master_name(name)]
                associated = in_background(lambda: _associate_when_port_exists(
                    provider=provider, fip=floating_ip, server_id=master_id,
                    deadline=deadline, stop=stop_associating, progress=progress,
                    node=master_name(name)), name="fip")
            _ensure_sole_launch(provider=provider, cluster=name, run_id=created.run_id)

            def on_status(server):
                task = f" ({server.task_state})" if server.task_state else ""
                progress.node_status(server.name, f"{server.status.lower()}{task}")
            servers = provider.wait_for_servers(
                server_ids=list(created.server_ids.values()),
                timeout=max(10, deadline - time.monotonic()),
                # a plain prefix: Nova's regex filter is SQL REGEXP, no alternation
                name_regex=f"^{name}-", on_status=on_status)
            if associated is not None:
                associated.result()
        finally:
            stop_associating.set()
            if associated is not None:   # the pool's exit used to wait for it: so do we
                with contextlib.suppress(BaseException):
                    associated.result(timeout=30)
    phase[0] = "ssh"
    master_id = created.server_ids[master_name(name)]
    by_flavor = {ROLE_MASTER: plan.master_flavor, ROLE_WORKER: plan.flavor}
    built = []
    for srv in servers.values():
        node = provider.node_from_server(srv, flavor=by_flavor[provider.server_role(srv)])
        if srv.id == master_id and floating_ip:
            node = Node(**{**node.__dict__, "public_ip": floating_ip[1]})
        built.append(node)
    master = next(n for n in built if n.role == ROLE_MASTER)
    workers = tuple(sorted((n for n in built if n.role == ROLE_WORKER),
                           key=lambda n: int(n.name.rsplit("-", 1)[1])))
    facts = ClusterFacts(cluster_name=name, master=master, workers=workers,
                         services=spec.services, ssh_user=spec.ssh_user,
                         data_dirs=spec.data_dirs, spark_secret=secrets.token_urlsafe(32),
                         spark_conf=spec.spark_conf, hadoop_conf=spec.hadoop_conf,
                         login_keys=spec.login_keys, login_sudo=spec.login_sudo)
    with PhaseTimer(progress, "ssh", timings):
        wait_until_reachable(facts=facts, key_filename=plan.identity_file,
                             timeout=max(30, deadline - time.monotonic()), progress=progress,
                             known_hosts=hostkeys.known_hosts_file(facts=facts))
    return facts


def _associate_when_port_exists(*, provider, fip: tuple[str, str], server_id: str,
                                deadline: float, stop: threading.Event, progress,
                                node: str) -> None:
    """Put the floating IP on the master's port as soon as Nova has made the port (while
    the server is still building), so its NAT is ready when SSH first knocks."""
    fip_id, address = fip
    port_id = poll(lambda: provider.server_port_id(server_id),
                   timeout=max(5, deadline - time.monotonic()), abort=stop,
                   what=f"the network port of {node}", interval=0.3, max_interval=2,
                   backoff=1.3)
    provider.associate_floating_ip(fip_id=fip_id, port_id=port_id)
    progress.node_status(node, f"floating IP {address}")


def _ensure_sole_launch(*, provider, cluster: str, run_id: str) -> None:
    """Two launches of one name that both passed validation: exactly one goes on.

    Every run checks after all its servers exist. The run whose first server was created
    earliest (ties: the smaller run id) wins; the others raise ``ClusterExistsError`` and
    their rollback deletes only what carries their own run id.
    """
    runs: dict[str, str] = {}
    for server in provider.cluster_servers(cluster):
        other = (server.metadata or {}).get(META_RUN, "")
        first = runs.get(other)
        created_at = server.created_at or ""
        runs[other] = created_at if first is None else min(first, created_at)
    if set(runs) <= {run_id}:
        return
    winner = min(runs, key=lambda run: (runs[run], run))
    if winner != run_id:
        raise errors.ClusterExistsError(
            f"another launch of cluster {cluster!r} (run {winner or 'unknown'}) started "
            "first; this one stops and removes only what it created",
            hint=f"pick another -c NAME, or wait and use `spark-openstack describe -c {cluster}`")


def _find_multi_created(*, provider, cluster: str, count: int, run_id: str,
                        timeout: float = 30) -> dict[str, str]:
    """Ids of the workers one multi-create made, named ``CLUSTER-worker-i`` (renamed if the
    cloud's ``multi_instance_display_name_template`` is not Nova's default)."""
    import re as _re
    workers: list = []

    def listed():
        workers[:] = [s for s in provider.list_servers(name_regex=f"^{cluster}-worker")
                      if (s.metadata or {}).get(META_CLUSTER) == cluster
                      and (s.metadata or {}).get(META_RUN) == run_id
                      and provider.server_role(s) == ROLE_WORKER]
        return True if len(workers) >= count else None
    try:
        poll(listed, timeout=timeout, what="workers listed", interval=1, max_interval=2)
    except errors.TimeoutError_:
        pass                      # judged below with what was listed
    if len(workers) != count:
        raise errors.CloudError(f"asked Nova for {count} workers in one request, found "
                                f"{len(workers)}", hint="retry; or check the cloud's health")
    wanted = {worker_name(cluster, i) for i in range(1, count + 1)}
    if {s.name for s in workers} == wanted:
        return {s.name: s.id for s in workers}
    pattern = _re.compile(rf"^{cluster}-worker-(\d+)$")
    ordered = sorted(workers, key=lambda s: (s.launch_index if s.launch_index is not None
                                             else 10**6, s.created_at or "", s.id))
    out = {}
    for index, srv in enumerate(ordered, start=1):
        target = worker_name(cluster, index)
        if srv.name != target and not (pattern.match(srv.name or "") and srv.name == target):
            provider.rename_server(srv.id, target)
        out[target] = srv.id
    return out


#: Concurrent SSH handshakes through one master: enough to keep every worker's wait
#: going, few enough that a 2-vCPU master (and its sshd) is not swamped at N=64.
SSH_HANDSHAKES = 8
#: Workers per gateway connection to the master (each is one more handshake there).
WORKERS_PER_GATEWAY = 16


def wait_until_reachable(*, facts: ClusterFacts, key_filename: str, timeout: float,
                         progress: Progress | None = None,
                         known_hosts: str | None = None) -> None:
    """SSH answers on every node and cloud-init has finished there.

    The master is reached at its floating IP (or private IP); workers through the master
    when the master has a floating IP, else directly. Workers are probed as soon as the
    master logs in (its cloud-init wait runs beside theirs), through one gateway
    connection per ``WORKERS_PER_GATEWAY`` workers, at most ``SSH_HANDSHAKES`` handshakes
    at once; each probe's connection is the one that waits for cloud-init. This is a
    launch's first contact: with ``known_hosts`` every node's host key is pinned there
    (workers behind the master under their private IP) for every later SSH to check.
    """
    from . import ssh
    progress = ensure(progress)
    deadline = time.monotonic() + timeout
    user = facts.ssh_user
    master = facts.master
    handshakes = threading.Semaphore(SSH_HANDSHAKES)

    def node_ready(node: Node, gateway=None):
        host = node.address if node is master or gateway is None else node.private_ip
        ssh.wait_until_booted(host=host, user=user, key_filename=key_filename,
                              gateway=gateway, timeout=max(5, deadline - time.monotonic()),
                              on_step=lambda step: progress.node_status(node.name, step),
                              known_hosts=known_hosts, handshakes=handshakes)
        progress.node_status(node.name, "ready")

    fan_out = min(len(facts.nodes), 64)
    if master.public_ip is None or not facts.workers:
        run_per_node(node_ready, facts.nodes, what="wait for SSH", max_workers=fan_out)
        return
    progress.node_status(master.name, "waiting for ssh")
    first = ssh.wait_for_login(host=master.address, user=user, key_filename=key_filename,
                               timeout=max(5, deadline - time.monotonic()),
                               known_hosts=known_hosts)
    gateways = [first]
    opened = threading.Lock()

    def open_gateway(_):       # kept as it opens: one that fails must not leak the others
        conn = ssh.connect(host=master.address, user=user, key_filename=key_filename,
                           known_hosts=known_hosts)
        with opened:
            gateways.append(conn)
    try:
        extra = -(-len(facts.workers) // WORKERS_PER_GATEWAY) - 1
        if extra > 0:
            run_per_node(open_gateway, range(extra), what="open gateway connections")
        index = {w.name: i for i, w in enumerate(facts.workers)}

        def ready(node: Node):
            if node is master:
                node_ready(master)
            else:
                node_ready(node, gateways[index[node.name] % len(gateways)])
        run_per_node(ready, facts.nodes, what="wait for SSH", max_workers=fan_out)
    finally:
        for gateway in gateways:
            gateway.close()


def _run_deploy(*, facts, plan, timings, progress) -> dict | None:
    """Hand the booted cluster to ``spark_openstack.deploy`` (absent -> skipped)."""
    try:
        from . import deploy as deploy_module
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.deploy":
            raise
        progress.message("deploy step not available in this build; servers only")
        return None
    with PhaseTimer(progress, "deploy", timings):
        return deploy_module.deploy_cluster(facts=facts, key_filename=plan.identity_file,
                                            gateway_host=facts.master.address,
                                            progress=progress,
                                            known_hosts=hostkeys.known_hosts_file(facts=facts))


def _fail_cleanup(*, provider, spec: LaunchSpec, created: Ledger, progress) -> str:
    name = spec.cluster_name
    if spec.keep_on_failure:
        kept = ", ".join(sorted(created.server_ids)) or "no servers"
        return (f"--keep-on-failure: kept what was made ({kept}); remove it with "
                f"`spark-openstack destroy -c {name}`")
    if not created.anything():
        return "nothing had been created."
    _, failure = created.undo(provider=provider, progress=progress,
                              doing=f"cleaning up what this launch created for {name!r} ...")
    if failure:
        return (f"cleanup failed too ({failure}); run `spark-openstack destroy -c {name}` "
                "to remove what is left")
    with shielded_cleanup():
        master_id = created.server_ids.get(master_name(name))
        if master_id:       # this run's servers are gone: so are the keys pinned for them
            with contextlib.suppress(OSError, ValueError):
                hostkeys.remove_file(hostkeys.known_hosts_file(cluster=name,
                                                               master_id=master_id))
    made = created.made()
    return f"deleted everything this launch created ({', '.join(made)})."




def deploy_existing(*, provider: OpenStackProvider, cluster: str,
                    identity_file: str | None = None, services=None, start: bool = True,
                    progress: Progress | None = None, with_jupyter: bool = False) -> dict:
    """(Re)deploy a running cluster from the cloud's facts (``spark-openstack deploy``).

    Idempotent: configs are rewritten, running daemons are left running, a formatted
    NameNode is never formatted again and the cluster's Spark secret is kept. With
    ``start=False`` the nodes are prepared and ``fab`` installed, and nothing is started:
    the services are then started with the Fabric tasks on the master.
    """
    from . import deploy as deploy_module
    progress = ensure(progress)
    servers = provider.cluster_servers(cluster)
    facts = cluster_facts(provider=provider, cluster=cluster, servers=servers)
    not_active = [n.name for n in facts.nodes if n.status != "ACTIVE"]
    if not_active:
        raise errors.ValidationError(
            f"cluster {cluster!r} has servers that are not ACTIVE: {', '.join(not_active)}",
            hint="start them first; `spark-openstack describe` shows their state")
    key = cluster_identity_file(provider=provider, facts=facts, servers=servers,
                                identity_file=identity_file)
    if with_jupyter:   # deploy --jupyter: Jupyter on top of what the cluster runs
        services = tuple(dict.fromkeys((*(services or facts.services), "jupyter")))
    result = deploy_module.deploy_cluster(facts=facts, key_filename=key,
                                          gateway_host=facts.master.address,
                                          progress=progress, services=services, start=start,
                                          known_hosts=hostkeys.known_hosts_file(facts=facts))
    deployed = result["facts"]
    if deployed.services != facts.services:
        run_per_node(lambda n: provider.set_server_metadata(
            n.server_id, {META_SERVICES: ",".join(deployed.services)}), deployed.nodes,
            what="record deployed services")
    return result

__all__ = ["launch", "validate_launch", "quota_need", "LaunchPlan", "LaunchResult",
           "deploy_summary", "check_image_was_baked", "check_image_has_jupyter",
           "wait_until_reachable", "deploy_existing", "SSH_HANDSHAKES", "WORKERS_PER_GATEWAY"]
