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
import time
from pathlib import Path
from typing import Callable, Iterable

from . import paths
from .dirs import cluster_dirs
from .errors import DeployError, SparkOpenstackError, ValidationError
from .executor import in_background, run_calls, run_per_node
from .model import FACTS_PATH_ON_MASTER, IMAGE_MARKER_PATH, ClusterFacts, Node, parse_facts
from .progress import PhaseTimer, ensure
from .render import image_hadoop_services, node_config_files, render_etc_hosts, uses_hadoop
from .services import HADOOP_SERVICES, SERVICE_CLASSES, START_ORDER, Health, Jupyter, Service
from .services.hdfs import HDFS
from .transport import SERVICE_USER, Runner, SSHRunner

REMOTE_ROOT = "/opt/spark-openstack"
REMOTE_LIB = f"{REMOTE_ROOT}/lib"
REMOTE_VENV = f"{REMOTE_ROOT}/venv"
REMOTE_WHEELS = f"{REMOTE_ROOT}/wheels"
FAB_WRAPPER = "/usr/local/bin/fab"
HDUSER_KEY = f"/home/{SERVICE_USER}/.ssh/id_ed25519"
#: sudo for the service user on the master, only when the cluster's login asked for it
LOGIN_SUDOERS = "/etc/sudoers.d/spark-openstack-login"


# ----------------------------------------------------------------------------- facts
def reconcile_facts(*, facts: ClusterFacts, image_marker: dict | None,
                    services: Iterable[str] | None = None,
                    previous: dict | None = None,
                    replace_conf: bool = False) -> tuple[ClusterFacts, list[str]]:
    """Facts adjusted to what the image really holds, plus messages for the user.

    An image without Hadoop means Spark only (said plainly); Java/Spark/Hadoop homes come
    from the image's marker. ``previous`` is the facts file of an earlier deploy (as
    JSON): its Spark secret, Jupyter token, login keys and removed workers' addresses carry
    over (else a secret and a token are generated), and so do the cluster's own settings
    (``spark_conf``/``hadoop_conf``) unless ``replace_conf`` (configure-cluster) or
    ``facts`` bring their own.
    """
    previous = previous or {}
    messages: list[str] = []
    if image_marker is None:
        raise DeployError(
            f"{facts.master.name} has no {IMAGE_MARKER_PATH}: its image was not made by "
            "`spark-openstack create-image`",
            hint="build an image with create-image and launch from it, or launch --no-deploy")
    wanted = tuple(services) if services else tuple(facts.services)
    unknown = [s for s in wanted if s not in START_ORDER]
    if unknown:
        raise ValidationError(f"--services: unknown service(s) {', '.join(unknown)}; "
                              f"choose among {', '.join(START_ORDER)}")
    wanted = tuple(s for s in START_ORDER if s in wanted)
    if "jupyter" in wanted and not image_marker.get("jupyter"):
        raise ValidationError(
            f"the image of {facts.master.name} has no Jupyter (its {IMAGE_MARKER_PATH} "
            "says so)", hint="bake one with `spark-openstack create-image --jupyter` and "
                             "launch from it, or deploy without --jupyter")
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
    if Jupyter.name in wanted and not set(Jupyter.needs_one_of) & set(wanted):
        raise ValidationError("Jupyter's PySpark kernel needs Spark standalone or YARN, and "
                              f"this deploy runs only {describe_services(wanted)}",
                              hint="add spark to --services")
    secret = facts.spark_secret or previous.get("spark_secret") or secrets.token_urlsafe(32)
    # removed workers' addresses stay excluded, unless a current node has the address now
    in_use = {n.private_ip for n in facts.nodes}
    retired = tuple(dict.fromkeys(a for a in (*(previous.get("retired") or ()), *facts.retired)
                                  if a not in in_use))

    def carried(key: str):
        mine = getattr(facts, key)
        if mine or replace_conf:
            return mine
        return tuple(tuple(item) for item in previous.get(key) or ())
    replaced = dataclasses.replace(
        facts,
        spark_conf=carried("spark_conf"),
        hadoop_conf=carried("hadoop_conf"),
        login_keys=facts.login_keys or tuple(previous.get("login_keys") or ()),
        login_sudo=facts.login_sudo or bool(previous.get("login_sudo")),
        python=str(image_marker.get("python") or facts.python),
        jupyter_token=(facts.jupyter_token or previous.get("jupyter_token")
                       or (secrets.token_hex(24) if "jupyter" in wanted else "")),
        services=wanted,
        java_home=image_marker.get("java_home") or facts.java_home,
        spark_home=image_marker.get("spark_home") or facts.spark_home,
        hadoop_home=image_marker.get("hadoop_home") or facts.hadoop_home,
        hadoop_version=str(image_marker.get("hadoop_version") or ""),
        java_version=str(image_marker.get("java_version") or ""),
        spark_secret=secret,
        retired=retired,
    )
    return replaced, messages


def describe_services(services: Iterable[str]) -> str:
    """"HDFS + YARN + Spark (standalone)": what a cluster runs, in one phrase."""
    services = set(services)
    return " + ".join(cls.title for cls in SERVICE_CLASSES.values() if cls.name in services)


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


#: First pause between health checks (then x1.3, at most 5 s): a daemon that joins is
#: seen within about a second, and a check costs one command on the master.
HEALTH_INTERVAL = 0.25


def start_services(*, facts: ClusterFacts, runner: Runner, names: Iterable[str] | None = None,
                   progress=None, timings: dict | None = None,
                   health_timeout: float = 240) -> dict[str, Health]:
    """Start the services side by side (none needs another to start: Spark standalone and
    YARN do not wait for HDFS), each until it is healthy. Each service says what it needs
    (``Service.setup_needed``: HDFS formatted on first start), starts itself, and says
    what to wait for beside its health (``Service.ready_steps``: HDFS's /user/hduser).
    """
    progress = ensure(progress)
    timings = timings if timings is not None else {}
    health: dict[str, Health] = {}

    def start(service: Service) -> None:
        with PhaseTimer(progress, f"start {service.name}", timings):
            setup = service.setup_needed()
            if setup:
                progress.message(setup)
                service.setup()
            service.start()
            waits: dict[str, Callable[[], object]] = {"health": lambda: service.wait_healthy(
                timeout=health_timeout, interval=HEALTH_INTERVAL)}
            waits.update(service.ready_steps(timeout=health_timeout))
            health[service.name] = run_calls(waits, what="start services")["health"]
        progress.message(health[service.name].line())

    chosen = services_for(facts=facts, runner=runner, names=names)
    run_calls({service.name: (lambda s=service: start(s)) for service in chosen},
              what="start services")
    return {service.name: health[service.name] for service in chosen}


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
            members = ((facts.master,) if service.master_only else facts.workers)
            out[service.name] = Health(service=service.name, expected=len(members),
                                       actual=0, detail=f"unreachable: {exc.message}",
                                       missing=tuple(m.name for m in members))
    return out


# ----------------------------------------------------------------------------- node prep
def _node_files(*, facts: ClusterFacts, node: Node, hduser_public_key: str
                ) -> tuple[str, dict, dict]:
    """Everything one node gets, for ONE push: (a root command making its data/log/pid
    dirs for hduser, hduser's files: SSH trust, configs and, on the master, the facts
    file; root's files: /etc/hosts)."""
    is_master = node.name == facts.master.name
    dirs = cluster_dirs(facts).for_node(is_master=is_master, hadoop=uses_hadoop(facts.services))
    if is_master and "jupyter" in facts.services:
        dirs += cluster_dirs(facts).jupyter_dirs()
    quoted = " ".join(shlex.quote(d) for d in dirs)
    setup = f"install -d -m 0755 -o {SERVICE_USER} -g {SERVICE_USER} {quoted}"
    # Only the master (its private address) may log in as hduser with the cluster key;
    # on the master, the cluster's login keys too (a student's, from anywhere the
    # security group lets SSH in).
    restriction = f'from="{facts.master.private_ip},127.0.0.1"'
    logins = "".join(f"{key.strip()}\n" for key in facts.login_keys) if is_master else ""
    root_files = {"/etc/hosts": (render_etc_hosts(facts=facts), 0o644)}
    if is_master and facts.login_sudo:
        root_files[LOGIN_SUDOERS] = (f"# spark-openstack: the cluster's login may sudo\n"
                                     f"{SERVICE_USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    elif is_master:
        setup = f"{setup} && rm -f {LOGIN_SUDOERS}"
    files = {
        f"/home/{SERVICE_USER}/.ssh/authorized_keys":
            (f"{restriction} {hduser_public_key.strip()}\n{logins}", 0o600),
        f"/home/{SERVICE_USER}/.ssh/config": (
            "# spark-openstack: cluster nodes are reached by private address or name.\n"
            "Host *\n  BatchMode yes\n  StrictHostKeyChecking accept-new\n"
            "  ConnectTimeout 10\n", 0o600),
    }
    files.update(node_config_files(facts=facts, node=node))
    if is_master:   # what `fab` reads; it holds the Spark secret, so hduser-only (0600)
        files[FACTS_PATH_ON_MASTER] = (facts.to_json() + "\n", 0o600)
    return setup, files, root_files


def _prepare_node(*, facts: ClusterFacts, runner: SSHRunner, node: Node,
                  hduser_public_key: str) -> None:
    """One push to the node (one SSH command): dirs, /etc/hosts, SSH trust, configs."""
    setup, files, root_files = _node_files(facts=facts, node=node,
                                           hduser_public_key=hduser_public_key)
    runner.put_files(node, files, root_files=root_files, setup=setup)


_SEPARATOR = "----- spark-openstack -----"


def _parse_json(text: str, node: Node, path: str) -> dict | None:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DeployError(f"{node.name}: {path} is not valid JSON") from exc


def _inspect_master(runner: SSHRunner, master: Node, cluster: str
                    ) -> tuple[dict | None, dict, str]:
    """ONE command on the master: the image marker, the facts of an earlier deploy, and
    the cluster's hduser key (made there once; the private half never leaves it)."""
    key = shlex.quote(HDUSER_KEY)
    keygen = (f"test -f {key} || ssh-keygen -q -t ed25519 -N '' "
              f"-C {shlex.quote('hduser@' + cluster)} -f {key}; cat {key}.pub")
    out = runner.run_as_root(master, (
        f"cat {shlex.quote(IMAGE_MARKER_PATH)} 2>/dev/null; echo; echo '{_SEPARATOR}'; "
        f"cat {shlex.quote(FACTS_PATH_ON_MASTER)} 2>/dev/null; echo; echo '{_SEPARATOR}'; "
        f"sudo -n -u {SERVICE_USER} -H bash -c {shlex.quote(keygen)} 2>&1 || true")).stdout
    parts = out.split(_SEPARATOR + "\n")
    if len(parts) != 3:
        raise DeployError(f"{master.name}: could not read {IMAGE_MARKER_PATH}: {out[:200]!r}")
    marker = _parse_json(parts[0], master, IMAGE_MARKER_PATH)
    earlier = parse_facts(parts[1], where=master.name)
    previous = json.loads(earlier.to_json()) if earlier is not None else {}
    return marker, previous, parts[2].strip()


def _checked_key(public_key: str, master: Node) -> str:
    last = public_key.strip().splitlines()[-1] if public_key.strip() else ""
    if not last.startswith("ssh-"):
        raise DeployError(f"{master.name}: could not read hduser's public key: "
                          f"{public_key[:100]!r}")
    return last


def reconfigure_nodes(*, facts: ClusterFacts, runner: SSHRunner,
                      nodes: Iterable[Node] | None = None, on_node_done=None) -> None:
    """Rewrite the files that name the cluster's members (/etc/hosts, workers files,
    exclude lists, every config, the facts file on the master) on ``nodes`` (default:
    all), without touching a running daemon: what add-workers and remove-workers need
    after the node list changed. One command reads hduser's key on the master, then one
    push per node, all at once."""
    _marker, _previous, public_key = _inspect_master(runner, facts.master, facts.cluster_name)
    public_key = _checked_key(public_key, facts.master)

    def push(node: Node) -> None:
        _prepare_node(facts=facts, runner=runner, node=node, hduser_public_key=public_key)
    targets = list(nodes) if nodes is not None else list(facts.nodes)
    run_per_node(push, targets, what="update node files", on_done=on_node_done,
                 max_workers=max(1, len(targets)))


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


#: ``fab`` in the venv (what pip would write for Fabric's console script).
FAB_SCRIPT_TEXT = f"""#!{REMOTE_VENV}/bin/python
import sys
from fabric.main import program
sys.exit(program.run())
"""


def install_fab_tooling(*, runner: SSHRunner, facts: ClusterFacts) -> str:
    """Library + templates + fabfile + a venv with Fabric on the master; returns a note.

    Three commands: one asks the master's Python version and whether the venv has
    Fabric, one gets everything in one archive on its stdin and unpacks it, one (the
    first time) makes the venv from the wheels in that archive and links the library."""
    master = facts.master
    files = dict(_library_files())
    files[FAB_WRAPPER] = (FAB_WRAPPER_TEXT, 0o755)
    pyinfo = runner.run_as_root(master, (
        "python3 -c 'import sys,platform;"
        "print(\"%d.%d\" % sys.version_info[:2], platform.machine())'; "
        f"{REMOTE_VENV}/bin/python -c 'import fabric' 2>/dev/null && echo yes || echo no"))
    python_version, machine, have = pyinfo.stdout.split()[-3:]
    have = have == "yes"
    if not have:
        wheels = build_wheelhouse(python_version=python_version, machine=machine)
        for wheel in sorted(wheels.glob("*.whl")):
            files[f"{REMOTE_WHEELS}/{wheel.name}"] = (wheel.read_bytes(), 0o644)
        files[f"{REMOTE_VENV}/bin/fab"] = (FAB_SCRIPT_TEXT, 0o755)
    site = (f"{REMOTE_VENV}/bin/python -c 'import sysconfig; "
            f"print(sysconfig.get_paths()[\"purelib\"])'")
    # Wheels are zip files of what goes into site-packages: unpacked and byte-compiled
    # they are what pip would install, in about a second instead of pip's 10-20 s of CPU
    # (which the daemons starting beside it need).
    venv = "" if have else (
        f"python3 -m venv --without-pip --system-site-packages {REMOTE_VENV} && "
        f"site=$({site}) && {REMOTE_VENV}/bin/python -c 'import sys, zipfile; "
        "[zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' "
        f"\"$site\" {REMOTE_WHEELS}/*.whl && "
        f"{{ {REMOTE_VENV}/bin/python -m compileall -q \"$site\" >/dev/null || true; }} && ")
    runner.put_files(master, {}, root_files=files, setup=f"rm -rf {REMOTE_LIB}", timeout=600)
    runner.run_as_root(master, (
        f"{venv}echo {shlex.quote(REMOTE_LIB)} > \"$({site})/spark_openstack_lib.pth\""),
        timeout=600)
    return f"fab installed on {master.name}: `fab -l` lists the cluster's tasks"


# ----------------------------------------------------------------------------- entry point
def deploy_cluster(*, facts: ClusterFacts, key_filename: str | None,
                   gateway_host: str | None = None, progress=None,
                   services: Iterable[str] | None = None, install_fab: bool = True,
                   health_timeout: float | None = None, start: bool = True,
                   known_hosts: str | None = None, replace_conf: bool = False) -> dict:
    """Configure every node and start the services; returns what was deployed.

    The cluster's own settings (``facts.spark_conf``/``hadoop_conf``) replace those of
    the earlier deploy when ``facts`` has some or ``replace_conf``; else they carry over.

    ``start=False`` stops after the configs, the facts file and ``fab``: the Fabric tasks
    on the master (``fab format_hdfs``, ``fab start_hadoop`` ...) start the services.
    ``known_hosts`` (the cluster's pinned host keys) is checked on every SSH connection.
    ``health_timeout`` (default 240 s + 4 s per worker: every worker registers with the
    one master) bounds each service's wait for all its members.

    Result keys: ``facts`` (as deployed), ``services``, ``health`` ({name: Health}),
    ``urls`` ({label: url} on private addresses), ``timings`` ({phase: seconds}),
    ``messages`` (things the user should read).
    """
    progress = ensure(progress)
    timings: dict[str, float] = {}
    messages: list[str] = []
    if health_timeout is None:
        health_timeout = 240 + 4 * len(facts.workers)
    runner = SSHRunner(ssh_user=facts.ssh_user, key_filename=key_filename,
                       gateway_host=gateway_host, known_hosts=known_hosts)
    started = time.monotonic()
    fab_install = None
    fab_note: list[str] = []
    try:
        # The workers' connections open while the master is inspected.
        connecting = in_background(lambda: runner.connect(facts.workers),
                                   name="connect-workers")
        with PhaseTimer(progress, "deploy: inspect image", timings):
            marker, previous, public_key = _inspect_master(runner, facts.master,
                                                           facts.cluster_name)
            facts, notes = reconcile_facts(facts=facts, image_marker=marker, services=services,
                                           previous=previous, replace_conf=replace_conf)
            public_key = _checked_key(public_key, facts.master)
        for note in notes:
            progress.message(note)
        messages += notes
        if install_fab:
            # Its own SSH connection and thread: fab is installed while the rest goes on.
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

            fab_install = in_background(install, name="install-fab")
        health: dict[str, Health] = {}
        try:
            with PhaseTimer(progress, "deploy: configure nodes", timings):
                def prepare(node: Node) -> None:
                    _prepare_node(facts=facts, runner=runner, node=node,
                                  hduser_public_key=public_key)

                def done(node, _result, error):
                    progress.node_status(node.name, "configured" if error is None else "FAILED")
                connecting.result()
                run_per_node(prepare, facts.nodes, what="configure nodes", on_done=done,
                             max_workers=len(facts.nodes))
            if start:
                health = start_services(facts=facts, runner=runner, progress=progress,
                                        timings=timings, health_timeout=health_timeout)
            else:
                note = ("nothing started (--no-start): on the master, `fab format_hdfs`, "
                        "`fab start_hadoop`, `fab start_spark` ... start the services")
                progress.message(note)
                messages.append(note)
        finally:
            if fab_install is not None:
                began = time.monotonic()
                fab_install.result()
                timings["deploy: wait for fab"] = time.monotonic() - began
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

