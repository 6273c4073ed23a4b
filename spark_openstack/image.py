"""create-image: bake a reference image once (Java, Spark, optionally Hadoop) with cloud-init.

A builder server boots with the bake user-data (``userdata.render_bake_userdata``). We wait
for SSH, then for cloud-init itself (``cloud-init status --wait``: sshd answers long before
user-data is done), show cloud-init's own error output when the bake failed, scrub what
must not be in an image (login keys, cloud-init's instance state), stop the builder,
snapshot it, wait for the image to be active and record what it holds as image
properties. The builder and everything made for it are deleted on success and failure.
"""
from __future__ import annotations

import json
import shlex
import time

from . import __version__, ssh
from .errors import (DeployError, Interrupted, NotFoundError, SparkOpenstackError,
                     ValidationError)
from .polling import shielded_cleanup
from .progress import PhaseTimer, ensure
from .userdata import (DEFAULT_JAVA_PACKAGE, DEFAULT_MIRROR, render_bake_userdata,
                       validate_bake_inputs)

IMAGE_MARKER_PATH = "/etc/spark-openstack/image.json"
BUILDER_METADATA_KEY = "spark_openstack_image_builder"

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
                    warn=True, in_stream=False)
    return DeployError(
        f"the image bake failed on the builder ({host}); cloud-init says:\n"
        f"{status_text.strip()}\n--- tail of /var/log/cloud-init-output.log ---\n"
        f"{(tail.stdout or tail.stderr or '').strip()}",
        hint="fix the cause (mirror URL, versions, Java package) and run create-image again; "
             "the builder has been deleted")


def wait_for_bake(conn, *, host: str, timeout: float) -> str:
    """Block on ``cloud-init status --wait``; raise with cloud-init's output if it failed."""
    result = ssh.cloud_init_status(conn, timeout=timeout)
    text = (result.stdout or "") + (result.stderr or "")
    # exit 0 = done; 2 = done with recoverable warnings (cloud-init >= 23.4); 1 = error
    if result.exited not in (0, 2) or "status: error" in text:
        raise _bake_failure(conn, host, text)
    marker = conn.run(f"cat {IMAGE_MARKER_PATH}", hide=True, warn=True, in_stream=False)
    if marker.exited != 0:
        raise _bake_failure(conn, host, text + f"\n(no {IMAGE_MARKER_PATH} was written)")
    return marker.stdout


def image_properties(marker: dict) -> dict[str, str]:
    """What the image holds, as Glance properties (strings)."""
    return {
        "spark_version": str(marker.get("spark_version") or ""),
        "hadoop_version": str(marker.get("hadoop_version") or "none"),
        "hadoop_services": ",".join(marker.get("hadoop_services") or ()) or "none",
        "java_version": str(marker.get("java_version") or ""),
        "built_by": str(marker.get("built_by") or f"spark-openstack {__version__}"),
    }


def create_image(*, conn_provider, name: str, base_image: str, flavor: str, keypair: str,
                 key_filename: str | None, spark_version: str, hadoop_version: str | None,
                 mirror: str = DEFAULT_MIRROR, java_package: str = DEFAULT_JAVA_PACKAGE,
                 python_packages=(), network: str | None = None, ssh_user: str = "debian",
                 timeout: float = 1800, allowed_cidrs=(), floating_ip: bool = False,
                 floating_pool: str | None = None, progress=None) -> str:
    """Bake and snapshot an image; returns its id. Deletes the builder in every case.

    ``allowed_cidrs``: who may SSH to the builder (required; a security group is made for
    the builder and deleted with it). ``floating_ip``: reach the builder through a floating IP from
    ``floating_pool`` instead of its fixed address.
    """
    progress = ensure(progress)
    provider = conn_provider
    timings: dict[str, float] = {}
    validate_bake_inputs(spark_version=spark_version, hadoop_version=hadoop_version,
                         mirror=mirror, java_package=java_package,
                         python_packages=list(python_packages or ()))
    if not allowed_cidrs:
        raise ValidationError(
            "no --allowed-cidr given: SSH to the image builder would be closed to everyone",
            hint="pass the address you connect from, e.g. --allowed-cidr 203.0.113.7/32")
    deadline = time.monotonic() + timeout
    made = {"server": None, "secgroup": None, "fip": None, "image": None}
    image_id = None
    try:
        with PhaseTimer(progress, "validate", timings):
            try:
                provider.find_image(name)
            except NotFoundError:
                pass
            else:
                raise ValidationError(f"an image named {name!r} (-n/--name) already exists",
                                      hint="choose another name or delete the old image")
            base = provider.find_image(base_image)
            flav = provider.find_flavor(flavor)
            provider.find_keypair(keypair)
            net = provider.find_network(network)
            pool = provider.find_floating_pool(floating_pool) if floating_ip else None
            user_data = render_bake_userdata(
                spark_version=spark_version, hadoop_version=hadoop_version, mirror=mirror,
                java_package=java_package, python_packages=list(python_packages or ()),
                built_by=f"spark-openstack {__version__}")
        with PhaseTimer(progress, "boot builder", timings):
            group = provider.create_security_group(
                cluster=builder_name(name), ssh_cidrs=list(allowed_cidrs), ui_cidrs=[],
                ui_ports=[])
            made["secgroup"] = group.id
            groups = [group.name]
            made["server"] = provider.create_server(
                name=builder_name(name), image_id=base.id, flavor_id=flav.id,
                network_id=net.id, keypair=keypair, security_groups=groups,
                metadata={BUILDER_METADATA_KEY: name}, user_data=user_data)
            servers = provider.wait_for_servers(
                server_ids=[made["server"]], timeout=max(60, deadline - time.monotonic()),
                on_status=lambda s: progress.node_status(s.name, s.status))
            node = provider.node_from_server(servers[made["server"]])
            host = node.private_ip
            if pool is not None:
                made["fip"], host = provider.attach_floating_ip(
                    server_id=made["server"], pool_network_id=pool.id,
                    cluster=builder_name(name))
        with PhaseTimer(progress, "wait for ssh", timings):
            ssh.wait_for_ssh(host=host, user=ssh_user, key_filename=key_filename,
                             timeout=max(60, min(600, deadline - time.monotonic())))
        conn = ssh.connect(host=host, user=ssh_user, key_filename=key_filename)
        try:
            with PhaseTimer(progress, "bake (cloud-init)", timings):
                progress.node_status(builder_name(name), "cloud-init running")
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
                    + f", Java {marker.get('java_version')}")
            ssh.run(conn, f"sudo -n sh -c {shlex.quote(SCRUB_COMMAND)}", timeout=120)
        finally:
            conn.close()
        with PhaseTimer(progress, "snapshot", timings):
            provider.stop_server(made["server"])
            provider.wait_for_server_status(server_id=made["server"], status="SHUTOFF",
                                            timeout=max(60, deadline - time.monotonic()))
            made["image"] = provider.snapshot_server(server_id=made["server"], name=name)
            provider.wait_for_image(image_id=made["image"],
                                    timeout=max(120, deadline - time.monotonic()))
            provider.set_image_properties(image_id=made["image"],
                                          properties=image_properties(marker))
        image_id = made["image"]
        return image_id
    except KeyboardInterrupt:
        raise Interrupted("create-image interrupted; the builder and what it made are "
                          "being deleted") from None
    finally:
        with shielded_cleanup():
            _cleanup(provider, made, keep_image=image_id is not None, progress=progress)


def _cleanup(provider, made: dict, *, keep_image: bool, progress) -> None:
    """Delete the builder, its floating IP and security group (and a half-made image)."""
    problems = []
    steps = [
        ("builder server", made["server"],
         lambda: provider.delete_servers(server_ids=[made["server"]], wait=True)),
        ("floating IP", made["fip"], lambda: provider.delete_floating_ip(made["fip"])),
        ("security group", made["secgroup"],
         lambda: provider.delete_security_group(made["secgroup"])),
        ("unfinished image", None if keep_image else made["image"],
         lambda: provider.delete_image(made["image"])),
    ]
    for what, ident, delete in steps:
        if not ident:
            continue
        try:
            delete()
        except SparkOpenstackError as exc:
            problems.append(f"{what} {ident}: {exc.message}")
    if problems:
        progress.message("could not delete everything create-image made; delete by hand: "
                         + "; ".join(problems))
