"""Cluster lifecycle: launch (all or nothing), destroy, describe, list.

The cloud is the only state: servers carry ``META_CLUSTER``/``META_ROLE`` metadata (and
tags where the API allows), the cluster owns the security group ``spark-openstack-NAME``
and the server group of the same name, and its floating IP carries the description
``spark-openstack:NAME``. ``destroy`` and ``describe`` rebuild everything from those.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from . import errors, hostkeys
from .config import (SSH_USER_HINT, LaunchSpec, is_ssh_user, unsafe_ui_warning,
                     validate_ssh_user, web_ui_ports, web_ui_rules)
from .executor import run_per_node
from .expiry import META_EXPIRES, cluster_deadline, deadline_after, expiry_dict
from .model import (DEFAULT_DATA_DIR, META_CLUSTER, META_RUN, ROLE_MASTER, ROLE_WORKER,
                    ClusterFacts, Node, master_name, worker_name)
from .polling import poll, shielded_cleanup
from .progress import PhaseTimer, Progress, ensure
from .provider import (OpenStackProvider, QuotaNeed, security_group_name,
                       security_group_rule_count, server_group_name)
from .render import HADOOP_SERVICES, check_memory_plan, image_hadoop_services

META_SSH_USER = "spark_openstack_ssh_user"
META_SERVICES = "spark_openstack_services"
META_DATA_DIRS = "spark_openstack_data_dirs"
DEFAULT_IDENTITY_FILES = ("~/.ssh/id_ed25519", "~/.ssh/id_rsa", "~/.ssh/id_ecdsa")


# --------------------------------------------------------------------------- keys

def public_key_blob(identity_file: str | os.PathLike) -> tuple[str, str]:
    """``(key type, base64 blob)`` of a private key file (or its ``.pub`` when encrypted)."""
    path = Path(identity_file).expanduser()
    if not path.is_file():
        raise errors.ValidationError(f"identity file {path} (--identity-file) does not exist",
                                     hint="pass the private key of the keypair given with -k")
    try:
        key = paramiko.PKey.from_path(str(path))
        return key.get_name(), key.get_base64()
    except paramiko.PasswordRequiredException:
        pub = path.with_name(path.name + ".pub")
        if pub.is_file():
            parts = pub.read_text().split()
            if len(parts) >= 2:
                return parts[0], parts[1]
        raise errors.ValidationError(
            f"identity file {path} is passphrase-protected and has no {pub.name} next to it",
            hint=f"write its public key with `ssh-keygen -y -f {path} > {pub}`")
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise errors.ValidationError(f"identity file {path} is not a usable SSH private key: "
                                     f"{exc}", hint="pass the keypair's private key file")


def keypair_blob(keypair) -> tuple[str, str]:
    parts = (getattr(keypair, "public_key", "") or "").split()
    if len(parts) < 2:
        return "", ""
    return parts[0], parts[1]


def resolve_identity_file(*, identity_file: str | None, keypair) -> str:
    """The private key that matches the cloud keypair; searched in ~/.ssh when not given."""
    want = keypair_blob(keypair)
    if identity_file:
        have = public_key_blob(identity_file)
        if want[1] and have[1] != want[1]:
            raise errors.ValidationError(
                f"identity file {identity_file} does not match keypair {keypair.name!r}: "
                f"the file holds a {have[0]} key, the keypair "
                f"{want[0]} {want[1][:16]}... (fingerprint {keypair.fingerprint})",
                hint="pass -i/--identity-file with the private key of that keypair, or -k "
                     "with the keypair made from this key")
        return str(Path(identity_file).expanduser())
    for candidate in DEFAULT_IDENTITY_FILES:
        path = Path(candidate).expanduser()
        if path.is_file():
            try:
                if public_key_blob(path)[1] == want[1]:
                    return str(path)
            except errors.ValidationError:
                continue
    raise errors.UsageError(
        f"no --identity-file given and none of {', '.join(DEFAULT_IDENTITY_FILES)} matches "
        f"keypair {keypair.name!r}",
        hint="pass --identity-file PATH (the private key of that keypair)")


# --------------------------------------------------------------------------- launch

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
                "master": _node_dict(self.facts.master),
                "workers": [_node_dict(w) for w in self.facts.workers],
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


@dataclass
class _Created:
    """The ledger of one launch: what this run made, so a failure deletes exactly that.

    ``run_id`` is stamped into every server's metadata (``META_RUN``): a server whose
    create response was lost is still found as this run's, and a concurrent launch of the
    same name is never mistaken for it.
    """

    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    security_group_id: str | None = None
    server_group_id: str | None = None
    server_ids: dict[str, str] = field(default_factory=dict)   # name -> id
    floating_ip_ids: list[str] = field(default_factory=list)

    def anything(self) -> bool:
        return bool(self.security_group_id or self.server_group_id or self.server_ids
                    or self.floating_ip_ids)


def _all_at_once(calls: dict[str, Any], *, creates: bool) -> dict[str, Any]:
    """Run independent cloud calls at once; the first failure in ``calls``'s own order is
    raised, the same error whatever thread finished first.

    Creates are waited for even on Ctrl-C (each request is bounded by the provider's
    ``api_timeout``), so what they made is in the ledger before the rollback reads it;
    read-only look-ups are abandoned at once.
    """
    import concurrent.futures
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(calls),
                                                 thread_name_prefix="cloud-call")
    try:
        futures = {label: pool.submit(fn) for label, fn in calls.items()}
        concurrent.futures.wait(futures.values())
    except BaseException:
        pool.shutdown(wait=creates, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return {label: future.result() for label, future in futures.items()}


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
    found = _all_at_once(calls, creates=False)
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
    created = _Created()
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
    except KeyboardInterrupt:
        summary = _fail_cleanup(provider=provider, spec=spec, created=created,
                                progress=progress)
        raise errors.Interrupted(f"interrupted during the {phase[0]} phase; {summary}")
    except errors.SparkOpenstackError as exc:
        summary = _fail_cleanup(provider=provider, spec=spec, created=created,
                                progress=progress)
        exc.message = f"launch of {spec.cluster_name!r} failed in the {phase[0]} phase: " \
                      f"{exc.message}\n{summary}"
        raise
    except Exception as exc:
        summary = _fail_cleanup(provider=provider, spec=spec, created=created,
                                progress=progress)
        raise errors.CloudError(
            f"launch of {spec.cluster_name!r} failed in the {phase[0]} phase: "
            f"{type(exc).__name__}: {exc}\n{summary}") from exc
    return LaunchResult(facts=facts, timings=timings, identity_file=plan.identity_file,
                        requests=provider.request_count - requests_before,
                        deploy=deploy_result, notes=plan.notes)


def _create_and_reach(*, provider, plan: LaunchPlan, created: _Created, timings, progress,
                      phase) -> ClusterFacts:
    """Boot everything, with the fixed costs beside the boot rather than after it: the
    security group, server group and floating IP are made at once, the floating IP is
    associated as soon as the master's port exists (while Nova still builds), and SSH
    then finds every node through the master as soon as the master answers."""
    import concurrent.futures
    spec = plan.spec
    name = spec.cluster_name
    deadline = time.monotonic() + spec.timeout
    lock = threading.Lock()
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
            with lock:
                created.floating_ip_ids.append(fip_id)
            return fip_id, address

        first = _all_at_once({"security group": make_security_group,
                              "server group": make_server_group,
                              "floating IP": allocate_floating_ip}, creates=True)
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
            with lock:
                created.server_ids[master_name(name)] = sid
            progress.node_status(master_name(name), "requested")

        def create_workers():
            """All workers in ONE request (Nova multi-create): one scheduling pass."""
            if spec.workers == 1:
                sid = create(worker_name(name, 1), ROLE_WORKER, plan.flavor)
                with lock:
                    created.server_ids[worker_name(name, 1)] = sid
                progress.node_status(worker_name(name, 1), "requested")
                return
            create(f"{name}-worker", ROLE_WORKER, plan.flavor, count=spec.workers)
            ids = _find_multi_created(provider=provider, cluster=name, count=spec.workers,
                                      run_id=created.run_id)
            with lock:
                created.server_ids.update(ids)
            for node_name in ids:
                progress.node_status(node_name, "requested")

        stop_associating = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                   thread_name_prefix="fip") as pool:
            try:
                _all_at_once({"master": create_master, "workers": create_workers}, creates=True)
                associated = pool.submit(
                    _associate_when_port_exists, provider=provider, fip=floating_ip,
                    server_id=created.server_ids[master_name(name)],
                    deadline=deadline, stop=stop_associating, progress=progress,
                    node=master_name(name)) if floating_ip else None
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


def _fail_cleanup(*, provider, spec: LaunchSpec, created: _Created, progress) -> str:
    name = spec.cluster_name
    if spec.keep_on_failure:
        kept = ", ".join(sorted(created.server_ids)) or "no servers"
        return (f"--keep-on-failure: kept what was made ({kept}); remove it with "
                f"`spark-openstack destroy -c {name}`")
    if not created.anything():
        return "nothing had been created."
    with shielded_cleanup():
        progress.message(f"cleaning up what this launch created for {name!r} ...")
        try:
            _delete_resources(provider=provider, cluster=name,
                              server_ids=set(created.server_ids.values()),
                              floating_ip_ids=set(created.floating_ip_ids),
                              security_group_id=created.security_group_id,
                              server_group_ids={created.server_group_id} - {None},
                              discover=True, run_id=created.run_id)
        except Exception as exc:  # noqa: BLE001 - reported, never hides the first error
            why = exc.message if isinstance(exc, errors.SparkOpenstackError) else exc
            return (f"cleanup failed too ({why}); run `spark-openstack destroy -c {name}` "
                    "to remove what is left")
        master_id = created.server_ids.get(master_name(name))
        if master_id:       # this run's servers are gone: so are the keys pinned for them
            with contextlib.suppress(OSError, ValueError):
                hostkeys.remove_file(hostkeys.known_hosts_file(cluster=name,
                                                               master_id=master_id))
    made = [f"{len(created.server_ids)} server(s)"] if created.server_ids else []
    made += ["security group"] if created.security_group_id else []
    made += ["server group"] if created.server_group_id else []
    made += ["floating IP"] if created.floating_ip_ids else []
    return f"deleted everything this launch created ({', '.join(made)})."


def _delete_resources(*, provider, cluster, server_ids: set[str], floating_ip_ids: set[str],
                      security_group_id: str | None, server_group_ids: set[str],
                      discover: bool, run_id: str | None = None,
                      timeout: float = 300) -> dict:
    """Delete in dependency order and wait; ``discover`` adds what the cloud knows of.

    With ``run_id`` (a launch's rollback) discovery is limited to that run's servers and
    the floating IPs on them: groups are deleted by the ids the run recorded, never by
    name, so a concurrent launch of the same name keeps everything of its own.
    """
    servers = []
    if discover:
        servers = provider.cluster_servers(cluster)
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

def _what_is_left(*, provider: OpenStackProvider, cluster: str) -> str:
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


def destroy(*, provider: OpenStackProvider, cluster: str,
            progress: Progress | None = None) -> dict:
    """Delete every resource of ``cluster`` found in the cloud; fine to run twice.

    Returns counts of what was deleted (all zero when nothing was left). The cluster's
    pinned host keys go too, once its servers are gone: their addresses will be reused.
    """
    progress = ensure(progress)
    servers = provider.cluster_servers(cluster)
    for srv in servers:
        progress.node_status(srv.name, "deleting")
    try:
        result = _delete_resources(provider=provider, cluster=cluster,
                                   server_ids={s.id for s in servers}, floating_ip_ids=set(),
                                   security_group_id=None, server_group_ids=set(),
                                   discover=True)
    except (KeyboardInterrupt, errors.Interrupted):
        raise errors.Interrupted(
            f"destroy of {cluster!r} interrupted before it finished; "
            + _what_is_left(provider=provider, cluster=cluster),
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


# --------------------------------------------------------------------------- describe / list

def _node_dict(node: Node) -> dict:
    return {"name": node.name, "role": node.role, "server_id": node.server_id,
            "status": node.status, "private_ip": node.private_ip, "public_ip": node.public_ip,
            "vcpus": node.vcpus, "ram_mb": node.ram_mb}


def cluster_facts(*, provider: OpenStackProvider, cluster: str,
                  servers: list | None = None, ssh_user: str | None = None) -> ClusterFacts:
    """Rebuild a cluster's facts from the cloud (no local state).

    ``ssh_user`` (``login --ssh-user``) replaces the user recorded in the servers'
    metadata. Any project member can write that metadata and the user goes into an ssh
    command line, so a recorded value that is not a plain user name is refused.
    """
    servers = provider.cluster_servers(cluster) if servers is None else servers
    if not servers:
        raise errors.NotFoundError(f"no cluster named {cluster!r} in this project",
                                   hint="`spark-openstack list` shows the clusters there are")
    fips = provider.cluster_floating_ips(cluster=cluster, servers=servers)
    nodes = [provider.node_from_server(s, floating_ips=fips) for s in servers]
    masters = [n for n in nodes if n.role == ROLE_MASTER]
    if not masters:
        raise errors.ValidationError(
            f"cluster {cluster!r} has no master server (only "
            f"{', '.join(sorted(n.name for n in nodes))})",
            hint=f"it is broken; remove it with `spark-openstack destroy -c {cluster}`")
    meta = servers[0].metadata or {}
    workers = tuple(sorted((n for n in nodes if n.role == ROLE_WORKER),
                           key=lambda n: (len(n.name), n.name)))
    services = tuple(s for s in (meta.get(META_SERVICES) or "hdfs,yarn,spark").split(",") if s)
    data_dirs = tuple(d for d in (meta.get(META_DATA_DIRS) or "").split(",") if d)
    if ssh_user is not None:
        ssh_user = validate_ssh_user(ssh_user)
    else:
        ssh_user = meta.get(META_SSH_USER) or "debian"
        if not is_ssh_user(ssh_user):
            raise errors.ValidationError(
                f"server {servers[0].name!r} of cluster {cluster!r} records the login user "
                f"{META_SSH_USER}={ssh_user!r}, which is not a user name; refusing to put it "
                "on an ssh command line (anyone in the project can set server metadata)",
                hint=f"pass --ssh-user USER ({SSH_USER_HINT}), or reset it with `openstack "
                     f"server set --property {META_SSH_USER}=debian {servers[0].name}`")
    return ClusterFacts(cluster_name=cluster, master=masters[0], workers=workers,
                        services=services, ssh_user=ssh_user,
                        data_dirs=data_dirs or (DEFAULT_DATA_DIR,))


def cluster_identity_file(*, provider: OpenStackProvider, facts: ClusterFacts, servers,
                          identity_file: str | None) -> str | None:
    """The private key for a cluster: the one given, else the one matching the master's
    keypair in ~/.ssh (``resolve_identity_file``); None lets ssh choose."""
    if identity_file:
        return str(Path(identity_file).expanduser())
    master = next((s for s in servers if s.id == facts.master.server_id), None)
    if master is None or not master.key_name:
        return None
    return resolve_identity_file(identity_file=None,
                                 keypair=provider.find_keypair(master.key_name))


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


def describe(*, provider: OpenStackProvider, cluster: str) -> dict:
    """JSON-able description of a cluster, from the cloud only."""
    servers = provider.cluster_servers(cluster)
    facts = cluster_facts(provider=provider, cluster=cluster, servers=servers)
    group = provider.find_security_group(security_group_name(cluster))
    server_groups = provider.find_server_groups(cluster)
    statuses = sorted({n.status for n in facts.nodes})
    return {
        "cluster": cluster,
        "state": "ACTIVE" if statuses == ["ACTIVE"] else "/".join(statuses),
        "master": _node_dict(facts.master),
        "workers": [_node_dict(w) for w in facts.workers],
        "worker_count": len(facts.workers),
        "ssh_user": facts.ssh_user,
        "keypair": next((s.key_name for s in servers if s.id == facts.master.server_id), None),
        "services": list(facts.services),
        "security_group": group.name if group is not None else None,
        "server_group": server_groups[0].name if server_groups else None,
        "web_uis": {p.ui_name: f"http://{facts.master.address}:{p.number}"
                    for p in web_ui_ports(services=facts.services)},
        "expires": expiry_dict(cluster_deadline(servers)),
    }


def list_clusters(*, provider: OpenStackProvider) -> list[dict]:
    """Every spark-openstack cluster in the project, from server metadata."""
    out = []
    for name, servers in sorted(provider.all_cluster_servers().items()):
        master = next((s for s in servers if provider.server_role(s) == ROLE_MASTER), None)
        statuses = sorted({s.status for s in servers})
        out.append({"cluster": name, "servers": len(servers),
                    "workers": sum(provider.server_role(s) == ROLE_WORKER for s in servers),
                    "master": master.name if master else None,
                    "state": "/".join(statuses),
                    "expires": expiry_dict(cluster_deadline(servers))})
    return out


def login_command(*, facts: ClusterFacts, key_filename: str | None,
                  forward_ui: bool = False, user: str | None = None,
                  known_hosts: str | None = None) -> list[str]:
    """The ``ssh`` argv that logs in to the master (with ``-L`` forwards for the web UI of
    every service the cluster runs: through SSH even the unsafe ones are only yours).

    The user goes in as ``-l USER`` and the host after ``--``, both checked first, so no
    value read from the cloud can become an ssh option (``-oProxyCommand=...``).
    ``ssh`` checks the cluster's pinned host keys (``known_hosts``, default the cluster's
    file): strictly once the master's key is in it, else it pins the key it first sees.
    """
    import ipaddress
    login_user = validate_ssh_user(user or facts.ssh_user,
                                   source="--ssh-user" if user else "the recorded login user")
    host = facts.master.address
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        raise errors.ValidationError(
            f"the master {facts.master.name!r} has no usable IP address ({host!r})",
            hint="`spark-openstack describe` shows its addresses") from None
    known_hosts = known_hosts or hostkeys.known_hosts_file(facts=facts)
    try:
        hostkeys.ensure_file(known_hosts)  # 0600 in a 0700 folder, before ssh adds to it
    except OSError as exc:
        raise hostkeys.unwritable(known_hosts, exc) from exc
    checking = "yes" if hostkeys.has_host(known_hosts, host) else "accept-new"
    argv = ["ssh", "-o", f"UserKnownHostsFile={hostkeys.ssh_option_path(known_hosts)}",
            "-o", f"StrictHostKeyChecking={checking}", "-o", "LogLevel=ERROR"]
    if key_filename:
        argv += ["-i", key_filename, "-o", "IdentitiesOnly=yes"]
    if forward_ui:
        for port in sorted({p.number for p in web_ui_ports(services=facts.services)}):
            argv += ["-L", f"{port}:{facts.master.private_ip}:{port}"]
    argv += ["-l", login_user, "--", host]
    return argv


__all__ = ["launch", "validate_launch", "destroy", "describe", "list_clusters",
           "cluster_facts", "login_command", "deploy_existing", "cluster_identity_file", "wait_until_reachable", "LaunchResult",
           "LaunchPlan", "public_key_blob", "resolve_identity_file", "META_CLUSTER",
           "server_group_name"]
