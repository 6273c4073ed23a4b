"""Pause a cluster without losing its data, bring it back, and say how it is: the day-2
``status``, ``stop`` and ``start`` commands.

Why the order: services stop before their servers, Spark first, then YARN, then HDFS
(nothing writes into an HDFS that is closing, and the NameNode shuts down cleanly), so
that a Nova stop only ever powers off idle machines. Disks stay, so HDFS data survives.
A start cannot trust anything rendered before the stop (a cloud may hand out new fixed
addresses), so it re-deploys from the cloud's current facts: ``deploy_existing`` never
formats a NameNode that holds data and keeps the cluster's Spark secret.

Everything here waits through ``polling.poll`` (Ctrl-C ends any phase within seconds)
and refuses bad input (an unknown cluster, a server in a state Nova cannot start) before
it changes anything.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

from . import errors
from .executor import run_per_node
from .inventory import (ClusterAccess, cluster_state, deployed_facts, node_dict, open_cluster,
                        read_master_facts)
from .model import ClusterFacts, Node
from .progress import PhaseTimer, Progress, ensure
from .services import SERVICE_CLASSES, START_ORDER

ACTIVE = "ACTIVE"
STOPPED = "SHUTOFF"

#: Bound on each wait for Nova (all servers stopped / all ACTIVE) and on SSH after a
#: start. A real cloud's graceful shutdown alone may take its ``shutdown_timeout`` (60 s).
POWER_TIMEOUT = 600


# ----------------------------------------------------------------------------- status
def _one_line(health):
    """A reading that failed carries the whole failed command and its stderr (a remote
    Python traceback when the Spark master is down): its last line says why."""
    if "\n" not in health.detail:
        return health
    lines = [ln.strip() for ln in health.detail.splitlines() if ln.strip()]
    head = "unreachable: " if health.detail.startswith("unreachable:") else ""
    return dataclasses.replace(health, detail=head + lines[-1])


def health_dict(health) -> dict:
    """One ``Health`` as JSON: its numbers, the missing workers, and its one-line text."""
    health = _one_line(health)
    return {"expected": health.expected, "actual": health.actual,
            "missing": list(health.missing), "ok": health.ok, "line": health.line(),
            "checked": True}


def not_checked(service: str, *, facts: ClusterFacts, why: str) -> dict:
    """A service that was not asked (the cluster is stopped, the master unreachable):
    ``actual`` is unknown (None), never reported as healthy."""
    # a master-only service (Jupyter) has the master as its one member
    master_only = service in SERVICE_CLASSES and SERVICE_CLASSES[service].master_only
    expected = 1 if master_only else len(facts.workers)
    return {"expected": expected, "actual": None, "missing": [], "ok": False,
            "line": f"{service}: not checked: {why}", "checked": False}


def _why_not_active(facts: ClusterFacts) -> str:
    if all(n.status == STOPPED for n in facts.nodes):
        return "cluster is stopped"
    return "not every server is ACTIVE (" + ", ".join(
        f"{n.name} {n.status}" for n in facts.nodes if n.status != ACTIVE) + ")"


def _service_report(access: ClusterAccess) -> tuple[dict, str, str]:
    """({service: health dict}, why, kind) read on the master. ``kind`` says why nothing
    was checked: "" (every service was), "not active", "not deployed" or "unreachable"."""
    from .deploy import cluster_health
    facts = access.facts
    if access.not_active():
        why = _why_not_active(facts)
        return ({s: not_checked(s, facts=facts, why=why) for s in facts.services}, why,
                "not active")
    runner = access.runner()
    try:
        try:
            deployed = deployed_facts(runner=runner, facts=facts)
        except errors.DeployError as exc:       # never deployed, or unreadable facts
            why = exc.message + (f" ({exc.hint})" if exc.hint else "")
            kind = ("not deployed" if read_master_facts(runner=runner, facts=facts) is None
                    else "unreadable")
            return ({s: not_checked(s, facts=facts, why=kind) for s in facts.services},
                    why, kind)
        except (errors.SSHError, errors.TimeoutError_) as exc:
            why = f"{facts.master.name} unreachable: {exc.message}"
            return ({s: not_checked(s, facts=facts, why=why) for s in facts.services}, why,
                    "unreachable")
        health = cluster_health(facts=deployed, runner=runner)
    finally:
        runner.close()
    return {name: health_dict(h) for name, h in health.items()}, "", ""


def cluster_status(*, provider, cluster: str, identity_file: str | None = None,
                   servers: list | None = None) -> dict:
    """Each server's state (from the cloud) and each service's members against the
    expected workers (from the master, only when every server is ACTIVE: a stopped
    cluster is reported as such without an SSH attempt). ``healthy`` is True only when
    every server is ACTIVE and every service has all its workers."""
    access = open_cluster(provider=provider, cluster=cluster, identity_file=identity_file,
                          servers=servers)
    services, note, _ = _service_report(access)
    healthy = not access.not_active() and bool(services) and all(
        s["ok"] for s in services.values())
    report = {"cluster": cluster, "state": cluster_state(n.status for n in access.facts.nodes),
              "nodes": [node_dict(n) for n in access.facts.nodes],
              "services": services, "healthy": healthy}
    if note:
        report["note"] = note + (f"; `spark-openstack start -c {cluster}` starts it"
                                 if note == "cluster is stopped" else "")
    return report


# ----------------------------------------------------------------------------- stop
def _stop_services(access: ClusterAccess, *, progress: Progress, timings: dict,
                   messages: list[str]) -> list[str]:
    """Spark, YARN, then HDFS on the deployed facts (workers that are not ACTIVE left
    out: nothing runs there); returns the services stopped, in that order."""
    from .deploy import stop_services
    runner = access.runner()
    try:
        try:
            deployed = deployed_facts(runner=runner, facts=access.facts)
        except errors.DeployError:
            if read_master_facts(runner=runner, facts=access.facts) is not None:
                raise                       # facts there but unreadable: say so
            messages.append(f"cluster {access.name!r} was never deployed: no services "
                            "to stop")
            return []
        down = [w.name for w in deployed.workers if w.status != ACTIVE]
        if down:
            messages.append(f"not ACTIVE, nothing to stop there: {', '.join(down)}")
            deployed = dataclasses.replace(deployed, workers=tuple(
                w for w in deployed.workers if w.status == ACTIVE))
        order = [s for s in reversed(START_ORDER) if s in deployed.services]
        for name in order:
            with PhaseTimer(progress, f"stop {name}", timings):
                stop_services(facts=deployed, runner=runner, names=[name])
        return order
    finally:
        runner.close()


@dataclasses.dataclass
class _PowerRun:
    """What a stop or a start begins with: the cluster read once, its clock and notes."""
    progress: Progress
    access: ClusterAccess
    began: float
    timings: dict[str, float]
    messages: list[str]

    @classmethod
    def begin(cls, *, provider, cluster: str, identity_file: str | None,
              progress: Progress | None) -> "_PowerRun":
        began = time.monotonic()
        return cls(progress=ensure(progress), began=began, timings={}, messages=[],
                   access=open_cluster(provider=provider, cluster=cluster,
                                       identity_file=identity_file))


def _switch_servers(provider, nodes: list[Node], *, to: str, run: _PowerRun,
                    timeout: float) -> None:
    """Nova stop (``to`` SHUTOFF) or start (``to`` ACTIVE) of every node at once, then
    one server listing per round until every node is ``to``."""
    act, doing, phase = ((provider.stop_server, "stopping", "stop servers") if to == STOPPED
                         else (provider.start_server, "starting", "start servers"))

    def switch(node: Node) -> None:
        act(node.server_id)
        run.progress.node_status(node.name, doing)

    def on_status(server: Any) -> None:
        task = getattr(server, "task_state", None)
        run.progress.node_status(server.name, server.status.lower()
                                 + (f" ({task})" if task else ""))

    with PhaseTimer(run.progress, phase, run.timings):
        run_per_node(switch, nodes, what=phase)
        provider.wait_for_servers(server_ids=[n.server_id for n in nodes], status=to,
                                  timeout=timeout, on_status=on_status)


def stop_cluster(*, provider, cluster: str, identity_file: str | None = None,
                 progress: Progress | None = None, timeout: float = POWER_TIMEOUT) -> dict:
    """Stop the services in order (Spark, YARN, HDFS), then every server (Nova stop, all
    at once), until all are SHUTOFF. HDFS data stays on the servers' disks. A stopped
    cluster is left as it is (``already_stopped``)."""
    run = _PowerRun.begin(provider=provider, cluster=cluster, identity_file=identity_file,
                          progress=progress)
    progress, began, timings, messages, access = (run.progress, run.began, run.timings,
                                                  run.messages, run.access)
    running = [n for n in access.facts.nodes if n.status != STOPPED]
    result = {"cluster": cluster, "already_stopped": not running, "services_stopped": [],
              "servers_stopped": [n.name for n in running], "timings": timings,
              "messages": messages}
    if not running:
        return result
    if access.facts.master.status == ACTIVE:
        result["services_stopped"] = _stop_services(access, progress=progress,
                                                    timings=timings, messages=messages)
    else:
        messages.append(f"{access.facts.master.name} is {access.facts.master.status}: "
                        "services not stopped one by one, only the servers")
    _switch_servers(provider, running, to=STOPPED, run=run, timeout=timeout)
    timings["total"] = time.monotonic() - began
    return result


# ----------------------------------------------------------------------------- start
def start_cluster(*, provider, cluster: str, identity_file: str | None = None,
                  progress: Progress | None = None, timeout: float = POWER_TIMEOUT) -> dict:
    """Boot every stopped server, wait for SSH and cloud-init, then re-deploy from the
    cloud's current facts (configs re-rendered, HDFS started without a format and waited
    out of safe mode, YARN, Spark, health). On a running, healthy cluster nothing is
    done (``already_running``); a running one with a service down is re-deployed."""
    from .launch import deploy_existing, deploy_summary, wait_until_reachable
    run = _PowerRun.begin(provider=provider, cluster=cluster, identity_file=identity_file,
                          progress=progress)
    progress, began, timings, messages, access = (run.progress, run.began, run.timings,
                                                  run.messages, run.access)
    to_start = [n for n in access.facts.nodes if n.status != ACTIVE]
    odd = [n for n in to_start if n.status != STOPPED]
    if odd:
        raise errors.ValidationError(
            f"cannot start cluster {cluster!r}: " + ", ".join(
                f"{n.name} is {n.status}" for n in odd)
            + f" (only {STOPPED} servers can be started)",
            hint="wait for them to settle (`spark-openstack status`), or destroy the "
                 "cluster if a server is in ERROR")
    result: dict[str, Any] = {"cluster": cluster, "already_running": False,
                              "servers_started": [n.name for n in to_start],
                              "deploy": None, "healthy": False, "timings": timings,
                              "messages": messages}
    if not to_start:
        services, note, kind = _service_report(access)
        if services and not kind and all(s["ok"] for s in services.values()):
            result.update(already_running=True, healthy=True,
                          health=[s["line"] for s in services.values()])
            return result
        if kind == "not deployed":
            messages.append(note)
            return result
        messages.append("every server is ACTIVE but not every service is healthy ("
                        + "; ".join(s["line"] for s in services.values() if not s["ok"])
                        + "): deploying again")
        progress.message(messages[-1])
    else:
        _switch_servers(provider, to_start, to=ACTIVE, run=run, timeout=timeout)
        # the addresses a deploy renders are the ones the cloud gives now
        access = open_cluster(provider=provider, cluster=cluster, identity_file=identity_file)
        with PhaseTimer(progress, "wait for ssh", timings):
            wait_until_reachable(facts=access.facts, key_filename=access.key_filename,
                                 timeout=timeout, progress=progress,
                                 known_hosts=access.known_hosts)
        deployed_before = access.with_runner(
            lambda runner: read_master_facts(runner=runner, facts=access.facts))
        if deployed_before is None:
            messages.append(f"servers started; cluster {cluster!r} was never deployed, so "
                            f"nothing else was started (`spark-openstack deploy -c "
                            f"{cluster}` deploys it)")
            return result
    deployed = deploy_existing(provider=provider, cluster=cluster,
                               identity_file=identity_file, progress=progress)
    summary = deploy_summary(deployed)
    timings.update(summary["timings"])
    result.update(deploy=summary, healthy=summary["healthy"], health=summary["health"])
    timings["total"] = time.monotonic() - began
    return result
