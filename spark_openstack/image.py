"""create-image: bake a reference image once (Java, Spark, optionally Hadoop) with cloud-init.

A builder server boots with the bake user-data (``userdata.render_bake_userdata``). We wait
for SSH, then for cloud-init itself (a bounded poll of ``cloud-init status``: sshd answers
long before user-data is done), show cloud-init's own error output when the bake failed, scrub what
must not be in an image (login keys, cloud-init's instance state), stop the builder,
snapshot it, wait for the image to be active and record what it holds as image
properties. The builder and everything made for it are deleted on success, failure and
Ctrl-C/SIGTERM: each run has a run id stamped into all it creates and its cleanup deletes
what it recorded and what the cloud holds with that id (``ledger.ImageLedger``).
"""
from __future__ import annotations

import json
import shlex
import time

from . import __version__, ssh
from .config import SUPPORTED_BASE_DISTROS, ImageSpec
from .errors import DeployError, Interrupted, NotFoundError, ValidationError
from .ledger import ImageLedger, run_mark
from .model import BUILDER_METADATA_KEY, IMAGE_MARKER_PATH, META_RUN, image_property
from .polling import shielded_cleanup
from .progress import PhaseTimer, ensure
from .provider import security_group_name
from .userdata import render_bake_userdata


# Run on the builder after a successful bake, just before the snapshot: the image must
# not carry the builder keypair's access, this instance's cloud-init state and logs, the
# bake's work directories, nor the builder's identity: /etc/machine-id is emptied (not
# removed) so each node generates its own at first boot, and D-Bus's copy goes unless it
# is the usual symlink to it. SSH host keys stay: the sandbox makes per-host keys at boot
# and cloud-init's ssh module regenerates them on a real cloud. Safe to run twice.
SCRUB_COMMAND = (
    "rm -f /root/.ssh/authorized_keys /home/*/.ssh/authorized_keys "
    "/etc/spark-openstack/cluster.json"
    " && rm -rf /var/tmp/spark-openstack-bake.* /var/log/spark-openstack* /root/.cache/pip"
    " && truncate -s 0 /etc/machine-id"
    " && if [ -f /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ];"
    " then rm -f /var/lib/dbus/machine-id; fi"
    " && cloud-init clean --logs && sync")


def builder_name(image_name: str) -> str:
    return f"{image_name}-builder"


def _bake_failure(conn, host: str, status_text: str) -> DeployError:
    """cloud-init's own account of the failure: ``status --long`` + the output log tail."""
    tail = conn.run("sudo -n tail -n 40 /var/log/cloud-init-output.log", hide=True,
                    warn=True, in_stream=False, timeout=ssh.CLOUD_INIT_PROBE_TIMEOUT)
    return DeployError(
        f"the image bake failed on the builder ({host}); cloud-init says:\n"
        f"{status_text.strip()}\n--- tail of /var/log/cloud-init-output.log ---\n"
        f"{(tail.stdout or tail.stderr or '').strip()}",
        hint="fix the cause (mirror URL, versions, Java package) and run create-image again; "
             "the builder has been deleted")


def wait_for_bake(conn, *, host: str, timeout: float) -> str:
    """Until cloud-init finished (``ssh.cloud_init_status``); raise with its output if
    it failed."""
    result = ssh.cloud_init_status(conn, timeout=timeout)
    text = (result.stdout or "") + (result.stderr or "")
    # exit 0 = done; 2 = done with recoverable warnings (cloud-init >= 23.4); 1 = error
    if result.exited not in (0, 2) or "status: error" in text:
        raise _bake_failure(conn, host, text)
    marker = conn.run(f"cat {IMAGE_MARKER_PATH}", hide=True, warn=True, in_stream=False,
                      timeout=ssh.CLOUD_INIT_PROBE_TIMEOUT)
    if marker.exited != 0:
        raise _bake_failure(conn, host, text + f"\n(no {IMAGE_MARKER_PATH} was written)")
    return marker.stdout


def _java_story(marker: dict) -> str:
    """Where the image's Java came from, e.g. "(installed openjdk-21-jre-headless, chosen
    for debian 13)" or "(the base image's, on ubuntu 24.04)"."""
    release = marker.get("os_release") or "an unknown release"
    if marker.get("java_package"):
        why = marker.get("java_choice") or ""
        where = "" if release in why else f", on {release}"
        return f"(installed {marker['java_package']}, {why}{where})"
    return f"(the base image's, on {release})"


def check_base_image(image, *, option: str) -> None:
    """Refuse, before anything is created, a base image its own properties say is not an
    apt-based distribution (the bake installs Java and Python's venv with apt). An image
    that says nothing is tried: the bake then fails in one line if it lacks apt."""
    distro = str(image_property(image, "os_distro") or "").strip().lower()
    if distro and distro not in SUPPORTED_BASE_DISTROS:
        raise ValidationError(
            f"base image {option!r} (--base-image) is {distro} "
            f"{image_property(image, 'os_version') or ''}".rstrip()
            + f" by its os_distro property; create-image bakes on "
              f"{' or '.join(d.capitalize() for d in SUPPORTED_BASE_DISTROS)} only",
            hint="pass a Debian 12/13 or Ubuntu 22.04/24.04 cloud image "
                 "(`openstack image list --property os_distro=debian`)")


def image_properties(marker: dict) -> dict[str, str]:
    """What the image holds, as Glance properties (strings)."""
    return {
        "spark_version": str(marker.get("spark_version") or ""),
        "hadoop_version": str(marker.get("hadoop_version") or "none"),
        "hadoop_services": ",".join(marker.get("hadoop_services") or ()) or "none",
        "java_version": str(marker.get("java_version") or ""),
        # the OpenJDK package the bake installed ("none": the base image had Java)
        "java_package": str(marker.get("java_package") or "none"),
        "os_release": str(marker.get("os_release") or ""),
        # apt's proxy, kept in /etc/apt/apt.conf.d/80spark-openstack-proxy ("none": direct)
        "apt_proxy": str(marker.get("apt_proxy") or "none"),
        # launch --jupyter refuses, before creating anything, an image without Jupyter
        "jupyter": "true" if marker.get("jupyter") else "false",
        "python": str(marker.get("python") or "/usr/bin/python3"),
        "built_by": str(marker.get("built_by") or f"spark-openstack {__version__}"),
    }


# --------------------------------------------------------------------------- names of a run

def builder_group_name(name: str, run_id: str) -> str:
    """One group per run: a group a failed delete left behind never blocks a later run
    (nor a cluster named ``NAME-builder``); the builder gets it by id anyway."""
    return f"{security_group_name(builder_name(name))}-{run_id}"


def builder_description(name: str, run_id: str) -> str:
    return f"spark-openstack image builder for {name} ({run_mark(run_id)})"


# --------------------------------------------------------------------------- create-image

def create_image(*, conn_provider, key_filename: str | None, spec: ImageSpec | None = None,
                 progress=None, **fields) -> str:
    """Bake and snapshot the image ``spec`` describes; returns its id. Deletes the builder
    in every case. Scripts may pass ``ImageSpec``'s fields as keywords instead of ``spec``.

    A security group letting ``spec.allowed_cidrs`` SSH in is made for the builder and
    deleted with it; with ``spec.floating_ip`` the builder is reached through a floating IP
    (from ``spec.floating_ip_pool``) instead of its fixed address.

    Every exit (success, failure, Ctrl-C/SIGTERM as ``Interrupted``) deletes what this
    run made, found by its run id (``ImageLedger``), the finished image excepted.
    """
    if spec is None:
        spec = ImageSpec(**fields)
    elif fields:
        raise TypeError(f"create_image: pass spec= or its fields, not both ({sorted(fields)})")
    progress = ensure(progress)
    name = spec.name
    run = ImageLedger()
    phase = ["validate"]
    try:
        image_id = _build(provider=conn_provider, run=run, phase=phase, progress=progress,
                          spec=spec, key_filename=key_filename)
    except (KeyboardInterrupt, Interrupted):
        with shielded_cleanup():
            summary = run.delete(provider=conn_provider, progress=progress)
        raise Interrupted(f"create-image {name!r} interrupted in the {phase[0]} phase; "
                          f"{summary}") from None
    except BaseException:
        with shielded_cleanup():
            run.delete(provider=conn_provider, progress=progress)
        raise
    with shielded_cleanup():
        run.delete(provider=conn_provider, keep_image=image_id, progress=progress)
    return image_id


def _build(*, provider, run: ImageLedger, phase: list[str], progress, spec: ImageSpec,
           key_filename) -> str:
    """The steps of ``create_image``; each create is recorded in ``run`` as it happens."""
    name, base_image, flavor, keypair = spec.name, spec.base_image, spec.flavor, spec.keypair
    network, ssh_user, allowed_cidrs = spec.network, spec.ssh_user, spec.allowed_cidrs
    timings: dict[str, float] = {}
    deadline = time.monotonic() + spec.timeout
    builder = builder_name(name)

    def step(label):
        phase[0] = label
        return PhaseTimer(progress, label, timings)

    with step("validate"):
        try:
            provider.find_image(name)
        except NotFoundError:
            pass
        else:
            raise ValidationError(f"an image named {name!r} (-n/--name) already exists",
                                  hint="choose another name or delete the old image")
        base = provider.find_image(base_image)
        check_base_image(base, option=base_image)
        flav = provider.find_flavor(flavor)
        provider.find_keypair(keypair)
        net = provider.find_network(network)
        pool = provider.find_floating_pool(spec.floating_ip_pool) if spec.floating_ip else None
        user_data = render_bake_userdata(
            spark_version=spec.spark_version, hadoop_version=spec.hadoop_version,
            mirror=spec.mirror, java_package=spec.java_package, apt_proxy=spec.apt_proxy,
            python_packages=spec.python_packages, python_constraints=spec.python_constraints,
            pip_index_url=spec.pip_index_url, pip_find_links=spec.pip_find_links,
            jupyter=spec.jupyter, built_by=f"spark-openstack {__version__}")
    with step("boot builder"):
        with run.creating("secgroup"):
            group = provider.create_security_group(
                cluster=builder, ssh_cidrs=list(allowed_cidrs),
                name=builder_group_name(name, run.run_id),
                description=builder_description(name, run.run_id))
            run.record("secgroup", group.id)
        with run.creating("server"):
            server_id = provider.create_server(
                name=builder, image_id=base.id, flavor_id=flav.id, network_id=net.id,
                keypair=keypair, security_groups=[group.id],       # by id, never by name
                metadata={BUILDER_METADATA_KEY: name, META_RUN: run.run_id},
                user_data=user_data)
            run.record("server", server_id)
        servers = provider.wait_for_servers(
            server_ids=[server_id], timeout=max(60, deadline - time.monotonic()),
            on_status=lambda s: progress.node_status(s.name, s.status))
        host = provider.node_from_server(servers[server_id]).private_ip
        if pool is not None:
            with run.creating("fip"):
                fip_id, host = provider.attach_floating_ip(
                    server_id=server_id, pool_network_id=pool.id, cluster=builder,
                    description=builder_description(name, run.run_id))
                run.record("fip", fip_id)
    with step("wait for ssh"):
        ssh.wait_for_ssh(host=host, user=ssh_user, key_filename=key_filename,
                         timeout=max(60, min(600, deadline - time.monotonic())))
    conn = ssh.connect(host=host, user=ssh_user, key_filename=key_filename)
    try:
        with step("bake (cloud-init)"):
            progress.node_status(builder, "cloud-init running")
            marker_text = wait_for_bake(conn, host=host,
                                        timeout=max(60, deadline - time.monotonic()))
            try:
                marker = json.loads(marker_text)
            except ValueError as exc:
                raise DeployError(f"the builder's {IMAGE_MARKER_PATH} is not JSON: "
                                  f"{marker_text[:200]!r}") from exc
            progress.message(
                f"baked: Spark {marker.get('spark_version')}, Hadoop "
                f"{marker.get('hadoop_version') or 'none'}"
                + (f" ({' + '.join(x.upper() for x in marker.get('hadoop_services') or ())})"
                   if marker.get("hadoop_version") else "")
                + f", Java {marker.get('java_version')} " + _java_story(marker)
                + (f", Python {marker.get('python')}" if marker.get("python") else "")
                + (" + Jupyter" if marker.get("jupyter") else ""))
        ssh.run(conn, f"sudo -n sh -c {shlex.quote(SCRUB_COMMAND)}", timeout=120)
    finally:
        conn.close()
    with step("snapshot"):
        provider.stop_server(server_id)
        provider.wait_for_server_status(server_id=server_id, status="SHUTOFF",
                                        timeout=max(60, deadline - time.monotonic()))
        with run.creating("image"):
            image_id = provider.snapshot_server(server_id=server_id, name=name,
                                                metadata={META_RUN: run.run_id})
            run.record("image", image_id)
        provider.wait_for_image(image_id=image_id,
                                timeout=max(120, deadline - time.monotonic()))
        provider.set_image_properties(image_id=image_id, properties=image_properties(marker))
    return image_id


def bake_image(*, provider, spec: ImageSpec, progress=None) -> str:
    """``create-image``: the keypair looked up and its private key found (the one given,
    else the matching one in ~/.ssh), then ``create_image``; returns the image's id."""
    from .keys import resolve_identity_file
    keypair = provider.find_keypair(spec.keypair)
    key_filename = resolve_identity_file(identity_file=spec.identity_file, keypair=keypair)
    return create_image(conn_provider=provider, spec=spec, key_filename=key_filename,
                        progress=progress)
