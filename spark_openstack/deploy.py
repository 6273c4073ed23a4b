"""Turn booted servers into a working cluster: configs, HDFS, YARN, Spark, health.

``deploy_cluster`` runs from the user's machine right after ``launch`` boots the nodes.
The step functions below it (``push_configs``, ``format_hdfs``, ``start_services``,
``stop_services``, ``cluster_health``) are what ``fabfile.py`` calls on the master too,
with a ``MasterRunner`` instead of an ``SSHRunner`` — one implementation, two entry points.

What goes onto the master so ``fab`` works there (hosts have no internet): the facts file
(``FACTS_PATH_ON_MASTER``, hduser-only: it holds the Spark secret), this package and the
templates under ``/opt/spark-openstack/lib``, and a venv with Fabric installed from a
wheelhouse the tool downloads once (PyPI, cached under ``~/.cache/spark-openstack``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterable

from . import paths
from .errors import DeployError, SparkOpenstackError, ValidationError
from .executor import run_per_node
from .model import FACTS_PATH_ON_MASTER, ClusterFacts, Node
from .progress import PhaseTimer, ensure
from .render import (ALL_SERVICES, HADOOP_SERVICES, cluster_dirs, image_hadoop_services,
                     node_config_files, render_etc_hosts, uses_hadoop)
from .services import SERVICE_CLASSES, START_ORDER, Health, Service, SSHRunner
from .services.base import SERVICE_USER, Runner
from .services.hdfs import HDFS

IMAGE_MARKER_PATH = "/etc/spark-openstack/image.json"
REMOTE_ROOT = "/opt/spark-openstack"
REMOTE_LIB = f"{REMOTE_ROOT}/lib"
REMOTE_VENV = f"{REMOTE_ROOT}/venv"
REMOTE_WHEELS = f"{REMOTE_ROOT}/wheels"
FAB_WRAPPER = "/usr/local/bin/fab"
HDUSER_KEY = f"/home/{SERVICE_USER}/.ssh/id_ed25519"


# ----------------------------------------------------------------------------- facts
def reconcile_facts(*, facts: ClusterFacts, image_marker: dict | None,
                    services: Iterable[str] | None = None,
                    existing_secret: str = "") -> tuple[ClusterFacts, list[str]]:
    """Facts adjusted to what the image really holds, plus messages for the user.

    An image without Hadoop means Spark only (said plainly); Java/Spark/Hadoop homes come
    from the image's marker; the Spark secret is kept across re-deploys, else generated.
    """
    messages: list[str] = []
    if image_marker is None:
        raise DeployError(
            f"{facts.master.name} has no {IMAGE_MARKER_PATH}: its image was not made by "
            "`spark-openstack create-image`",
            hint="build an image with create-image and launch from it, or launch --no-deploy")
    wanted = tuple(services) if services else tuple(facts.services)
    unknown = [s for s in wanted if s not in ALL_SERVICES]
    if unknown:
        raise ValidationError(f"--services: unknown service(s) {', '.join(unknown)}; "
                              f"choose among {', '.join(ALL_SERVICES)}")
    wanted = tuple(s for s in START_ORDER if s in wanted)
    can_run = image_hadoop_services(image_marker)
    dropped = tuple(s for s in wanted if s in HADOOP_SERVICES and s not in can_run)
    if dropped:
        wanted = tuple(s for s in wanted if s not in dropped)
        if not wanted:
            raise ValidationError(
                f"the image cannot run {', '.join(dropped)} ("
                + ("it has no Hadoop" if not can_run else
                   f"its Hadoop {image_marker.get('hadoop_version')} has only "
                   f"{', '.join(can_run)}") + ")",
                hint="rebuild the image with --hadoop-version, or deploy --services spark")
        if not can_run:
            messages.append(f"the image has no Hadoop (built with --no-hadoop): deploying "
                            f"{', '.join(wanted)} only, not {', '.join(dropped)}")
        else:
            messages.append(
                f"the image's Hadoop {image_marker.get('hadoop_version')} has no "
                f"{'/'.join(d.upper() for d in dropped)} daemons: deploying "
                f"{describe_services(wanted)}")
    else:
        messages.append(f"deploying {describe_services(wanted)}")
    secret = facts.spark_secret or existing_secret or secrets.token_urlsafe(32)
    replaced = dataclasses.replace(
        facts,
        services=wanted,
        java_home=image_marker.get("java_home") or facts.java_home,
        spark_home=image_marker.get("spark_home") or facts.spark_home,
        hadoop_home=image_marker.get("hadoop_home") or facts.hadoop_home,
        hadoop_version=str(image_marker.get("hadoop_version") or ""),
        java_version=str(image_marker.get("java_version") or ""),
        spark_secret=secret,
    )
    return replaced, messages


def describe_services(services: Iterable[str]) -> str:
    """"HDFS + YARN + Spark (standalone)": what a cluster runs, in one phrase."""
    names = {"hdfs": "HDFS", "yarn": "YARN", "spark": "Spark standalone"}
    return " + ".join(names[s] for s in START_ORDER if s in services)


def not_deployed_note(*, facts: ClusterFacts, names: Iterable[str]) -> str:
    """A plain sentence when none of ``names`` runs on this cluster ("" otherwise)."""
    names = list(names)
    if any(name in facts.services for name in names):
        return ""
    why = ("its image has no YARN daemons" if "yarn" in names and facts.hadoop_version
           else "its image has no Hadoop" if not facts.hadoop_version
           and any(n in HADOOP_SERVICES for n in names)
           else "it was deployed without it")
    return (f"{'/'.join(n.upper() if n != 'spark' else 'Spark' for n in names)} is not part "
            f"of cluster {facts.cluster_name} ({why}; it runs {describe_services(facts.services)}): "
            "nothing to do")


def services_for(*, facts: ClusterFacts, runner: Runner, names: Iterable[str] | None = None,
                 on_node_done=None) -> list[Service]:
    """Service objects in start order, for ``names`` (default: the cluster's services)."""
    chosen = set(names) if names else set(facts.services)
    missing = chosen - set(facts.services)
    if missing:
        raise ValidationError(f"service(s) {', '.join(sorted(missing))} are not deployed on "
                              f"cluster {facts.cluster_name} (it runs "
                              f"{', '.join(facts.services)})")
    return [SERVICE_CLASSES[name](facts=facts, runner=runner, on_node_done=on_node_done)
            for name in START_ORDER if name in chosen]


# ----------------------------------------------------------------------------- steps
def push_configs(*, facts: ClusterFacts, runner: Runner, on_node_done=None) -> None:
    """Every node's Hadoop/Spark config files, all nodes in parallel (``fab init_cluster``)."""
    def write(node: Node) -> None:
        runner.put_files(node, node_config_files(facts=facts, node=node))
    run_per_node(write, facts.nodes, what="write configs", on_done=on_node_done)


def format_hdfs(*, facts: ClusterFacts, runner: Runner, force: bool = False) -> bool:
    """Format the NameNode; refuses to reformat unless ``force`` (it erases HDFS)."""
    return HDFS(facts=facts, runner=runner).format(force=force)


def start_services(*, facts: ClusterFacts, runner: Runner, names: Iterable[str] | None = None,
                   progress=None, timings: dict | None = None,
                   health_timeout: float = 240) -> dict[str, Health]:
    """Start services in order (HDFS format on first start, /user/hduser), each checked
    healthy before the next starts."""
    progress = ensure(progress)
    timings = timings if timings is not None else {}
    health: dict[str, Health] = {}
    for service in services_for(facts=facts, runner=runner, names=names):
        with PhaseTimer(progress, f"start {service.name}", timings):
            if isinstance(service, HDFS) and not service.is_formatted():
                progress.message(f"formatting HDFS on {facts.master.name}")
                service.format()
            service.start()
            health[service.name] = service.wait_healthy(timeout=health_timeout)
            if isinstance(service, HDFS):
                service.create_user_dir()
        progress.message(health[service.name].line())
    return health


def stop_services(*, facts: ClusterFacts, runner: Runner,
                  names: Iterable[str] | None = None) -> None:
    """Stop in reverse start order (Spark, YARN, then HDFS)."""
    for service in reversed(services_for(facts=facts, runner=runner, names=names)):
        service.stop()


def cluster_health(*, facts: ClusterFacts, runner: Runner,
                   names: Iterable[str] | None = None) -> dict[str, Health]:
    """One health reading per service (no waiting), errors reported as 0 members up."""
    out: dict[str, Health] = {}
    for service in services_for(facts=facts, runner=runner, names=names):
        try:
            out[service.name] = service.health()
        except SparkOpenstackError as exc:
            out[service.name] = Health(service=service.name, expected=len(facts.workers),
                                       actual=0, detail=f"unreachable: {exc.message}",
                                       missing=tuple(w.name for w in facts.workers))
    return out


# ----------------------------------------------------------------------------- node prep
def _prepare_node(*, facts: ClusterFacts, runner: SSHRunner, node: Node,
                  hduser_public_key: str) -> None:
    """As root: data/log/pid dirs for hduser, /etc/hosts; as hduser: SSH trust + configs."""
    dirs = cluster_dirs(facts).for_node(is_master=node.name == facts.master.name,
                                        hadoop=uses_hadoop(facts.services))
    quoted = " ".join(shlex.quote(d) for d in dirs)
    runner.run_as_root(node, f"install -d -m 0755 -o {SERVICE_USER} -g {SERVICE_USER} {quoted}")
    runner.put_files(node, {"/etc/hosts": (render_etc_hosts(facts=facts), 0o644)}, owner="root")
    # Only the master (its private address) may log in as hduser with the cluster key.
    restriction = f'from="{facts.master.private_ip},127.0.0.1"'
    files = {
        f"/home/{SERVICE_USER}/.ssh/authorized_keys":
            (f"{restriction} {hduser_public_key.strip()}\n", 0o600),
        f"/home/{SERVICE_USER}/.ssh/config": (
            "# spark-openstack: cluster nodes are reached by private address or name.\n"
            "Host *\n  BatchMode yes\n  StrictHostKeyChecking accept-new\n"
            "  ConnectTimeout 10\n", 0o600),
    }
    files.update(node_config_files(facts=facts, node=node))
    runner.put_files(node, files)


def _read_remote_json(runner: SSHRunner, node: Node, path: str, *, as_root: bool) -> dict | None:
    command = f"cat {shlex.quote(path)} 2>/dev/null || true"
    result = (runner.run_as_root(node, command) if as_root else runner.run(node, command))
    text = result.stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DeployError(f"{node.name}: {path} is not valid JSON") from exc


def _hduser_key(runner: SSHRunner, master: Node, cluster: str) -> str:
    """The cluster's hduser key, made on the master (the private half never leaves it)."""
    key = shlex.quote(HDUSER_KEY)
    out = runner.run(master, f"test -f {key} || ssh-keygen -q -t ed25519 -N '' "
                             f"-C {shlex.quote('hduser@' + cluster)} -f {key}; "
                             f"cat {key}.pub").stdout.strip()
    if not out.startswith("ssh-"):
        raise DeployError(f"{master.name}: could not read hduser's public key: {out[:100]!r}")
    return out.splitlines()[-1]


# ----------------------------------------------------------------------------- fab on master
def wheelhouse_dir(*, python_version: str, machine: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "spark-openstack" / f"wheelhouse-cp{python_version.replace('.', '')}-{machine}"


def build_wheelhouse(*, python_version: str, machine: str) -> Path:
    """Fabric and its dependencies as wheels for the master's Python (cached).

    The master usually has no route to PyPI; this machine does. An override for offline
    use: ``SPARK_OPENSTACK_WHEELHOUSE=/dir/with/wheels``.
    """
    override = os.environ.get("SPARK_OPENSTACK_WHEELHOUSE")
    if override:
        return Path(override)
    target = wheelhouse_dir(python_version=python_version, machine=machine)
    if any(target.glob("fabric-*.whl")):
        return target
    from importlib.metadata import version
    target.mkdir(parents=True, exist_ok=True)
    tag = python_version.replace(".", "")
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in (17, 24, 28, 31, 34)]
    platforms += [f"manylinux2014_{machine}"]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--dest", str(target), "--only-binary=:all:", "--python-version", python_version,
               "--implementation", "cp", "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
               *[arg for p in platforms for arg in ("--platform", p)],
               f"fabric=={version('fabric')}"]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0 or not any(target.glob("fabric-*.whl")):
        raise DeployError("could not download Fabric wheels for the master's Python "
                          f"{python_version}: {proc.stderr.strip()[-400:]}",
                          hint="set SPARK_OPENSTACK_WHEELHOUSE to a folder of wheels")
    return target


def _library_files() -> dict[str, tuple[bytes, int]]:
    """This package, the config templates and fabfile.py, as they sit on this machine."""
    package = Path(__file__).resolve().parent
    root = paths.templates_root()
    files: dict[str, tuple[bytes, int]] = {}
    for path in sorted(package.rglob("*.py")):
        if paths.PACKAGE_DATA_DIR in path.parents:
            continue    # a wheel's copies of the templates/fabfile: they go below, once
        files[f"{REMOTE_LIB}/spark_openstack/{path.relative_to(package)}"] = \
            (path.read_bytes(), 0o644)
    for path in sorted((root / "config_files").rglob("*.j2")):
        files[f"{REMOTE_LIB}/config_files/{path.relative_to(root / 'config_files')}"] = \
            (path.read_bytes(), 0o644)
    for name in ("fabfile.py", "fabric.yaml"):   # fabric.yaml: task names as documented
        if (root / name).is_file():
            files[f"{REMOTE_LIB}/{name}"] = ((root / name).read_bytes(), 0o644)
    return files


FAB_WRAPPER_TEXT = f"""#!/bin/sh
# spark-openstack: the cluster's Fabric tasks (fab -l), always run as {SERVICE_USER}.
if [ "$(id -un)" != "{SERVICE_USER}" ]; then
  exec sudo -n -u {SERVICE_USER} -H "$0" "$@"
fi
cd "$HOME" && exec {REMOTE_VENV}/bin/fab --search-root {REMOTE_LIB} "$@"
"""


def install_fab_tooling(*, runner: SSHRunner, facts: ClusterFacts) -> str:
    """Library + templates + fabfile + a venv with Fabric on the master; returns a note."""
    master = facts.master
    files = dict(_library_files())
    files[FAB_WRAPPER] = (FAB_WRAPPER_TEXT, 0o755)
    pyinfo = runner.run_as_root(master, "python3 -c 'import sys,platform;"
                                "print(\"%d.%d\" % sys.version_info[:2], platform.machine())'")
    python_version, machine = pyinfo.stdout.split()
    have = runner.run_as_root(master, f"{REMOTE_VENV}/bin/python -c 'import fabric' "
                              "2>/dev/null && echo yes || true").stdout.strip() == "yes"
    if not have:
        wheels = build_wheelhouse(python_version=python_version, machine=machine)
        for wheel in sorted(wheels.glob("*.whl")):
            files[f"{REMOTE_WHEELS}/{wheel.name}"] = (wheel.read_bytes(), 0o644)
    runner.run_as_root(master, f"rm -rf {REMOTE_LIB}")
    runner.put_files(master, files, owner="root")
    if not have:
        runner.run_as_root(master, (
            f"python3 -m venv --system-site-packages {REMOTE_VENV} && "
            f"{REMOTE_VENV}/bin/pip install --quiet --no-index --disable-pip-version-check "
            f"--find-links {REMOTE_WHEELS} fabric"), timeout=600)
    site = runner.run_as_root(master, f"{REMOTE_VENV}/bin/python -c "
                              "'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'"
                              ).stdout.strip()
    runner.put_files(master, {f"{site}/spark_openstack_lib.pth": (REMOTE_LIB + "\n", 0o644)},
                     owner="root")
    return f"fab installed on {master.name}: `fab -l` lists the cluster's tasks"


def write_facts_file(*, runner: Runner, facts: ClusterFacts) -> None:
    """The facts ``fab`` reads; it holds the Spark secret, so hduser-only (0600)."""
    runner.put_files(facts.master, {FACTS_PATH_ON_MASTER: (facts.to_json() + "\n", 0o600)})


# ----------------------------------------------------------------------------- entry point
def deploy_cluster(*, facts: ClusterFacts, key_filename: str | None,
                   gateway_host: str | None = None, progress=None,
                   services: Iterable[str] | None = None, install_fab: bool = True,
                   health_timeout: float = 240, start: bool = True,
                   known_hosts: str | None = None) -> dict:
    """Configure every node and start the services; returns what was deployed.

    ``start=False`` stops after the configs, the facts file and ``fab``: the Fabric tasks
    on the master (``fab format_hdfs``, ``fab start_hadoop`` ...) start the services.
    ``known_hosts`` (the cluster's pinned host keys) is checked on every SSH connection.

    Result keys: ``facts`` (as deployed), ``services``, ``health`` ({name: Health}),
    ``urls`` ({label: url} on private addresses), ``timings`` ({phase: seconds}),
    ``messages`` (things the user should read).
    """
    progress = ensure(progress)
    timings: dict[str, float] = {}
    messages: list[str] = []
    runner = SSHRunner(ssh_user=facts.ssh_user, key_filename=key_filename,
                       gateway_host=gateway_host, known_hosts=known_hosts)
    started = time.monotonic()
    try:
        with PhaseTimer(progress, "deploy: inspect image", timings):
            marker = _read_remote_json(runner, facts.master, IMAGE_MARKER_PATH, as_root=False)
            previous = _read_remote_json(runner, facts.master, FACTS_PATH_ON_MASTER,
                                         as_root=True) or {}
            facts, notes = reconcile_facts(facts=facts, image_marker=marker, services=services,
                                           existing_secret=previous.get("spark_secret", ""))
        for note in notes:
            progress.message(note)
        messages += notes
        with PhaseTimer(progress, "deploy: configure nodes", timings):
            public_key = _hduser_key(runner, facts.master, facts.cluster_name)

            def prepare(node: Node) -> None:
                _prepare_node(facts=facts, runner=runner, node=node,
                              hduser_public_key=public_key)

            def done(node, _result, error):
                progress.node_status(node.name, "configured" if error is None else "FAILED")
            run_per_node(prepare, facts.nodes, what="configure nodes", on_done=done)
            write_facts_file(runner=runner, facts=facts)
        fab_thread = None
        if install_fab:
            # Its own SSH connection, so installing fab overlaps starting the services.
            fab_note: list[str] = []

            def install() -> None:
                fab_runner = SSHRunner(ssh_user=facts.ssh_user, key_filename=key_filename,
                                       gateway_host=gateway_host, known_hosts=known_hosts)
                began = time.monotonic()
                try:
                    fab_note.append(install_fab_tooling(runner=fab_runner, facts=facts))
                except SparkOpenstackError as exc:
                    fab_note.append(f"fab is NOT available on the master: {exc.message}")
                except Exception as exc:  # noqa: BLE001 - reported, deploy goes on
                    fab_note.append(f"fab is NOT available on the master: {exc}")
                finally:
                    fab_runner.close()
                    timings["deploy: install fab on master (parallel)"] = \
                        time.monotonic() - began

            fab_thread = threading.Thread(target=install, name="install-fab", daemon=True)
            fab_thread.start()
        health: dict[str, Health] = {}
        try:
            if start:
                health = start_services(facts=facts, runner=runner, progress=progress,
                                        timings=timings, health_timeout=health_timeout)
            else:
                note = ("nothing started (--no-start): on the master, `fab format_hdfs`, "
                        "`fab start_hadoop`, `fab start_spark` ... start the services")
                progress.message(note)
                messages.append(note)
        finally:
            if fab_thread is not None:
                fab_thread.join()
                for note in fab_note:
                    progress.message(note)
                    messages.append(note)
    finally:
        runner.close()
    timings["deploy: total"] = time.monotonic() - started
    urls: dict[str, str] = {}
    for item in health.values():
        urls.update(item.urls)
    return {"facts": facts, "services": list(facts.services), "health": health,
            "urls": urls, "timings": timings, "messages": messages}

