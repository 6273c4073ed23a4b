"""Helpers for the sandbox tests: boot a server, SSH to a host as a user would."""
from __future__ import annotations

import base64
import subprocess
import time


def ssh(key, address, command, *, user="root", timeout=30):
    """One SSH command as a user of the host would run it; returns CompletedProcess."""
    return subprocess.run(
        ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=3", f"{user}@{address}", command],
        capture_output=True, text=True, timeout=timeout)


def ssh_answers(key, address, *, user="root", timeout=15) -> bool:
    """True when a fresh SSH login runs a command; a refused, unreachable or stalled
    connection (an in-flight one cut by a dataplane change) is False."""
    try:
        return ssh(key, address, "true", user=user, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def wait_ssh(key, address, *, user="root", limit=90):
    deadline = time.time() + limit
    while True:
        result = ssh(key, address, "true", user=user)
        if result.returncode == 0:
            return
        if time.time() > deadline:
            raise AssertionError(f"no SSH to {user}@{address} after {limit}s: {result.stderr}")
        time.sleep(0.3)


def boot(conn, *, name, keypair, user_data=None, image="debian-12", flavor="m1.tiny",
         security_groups=("default",)):
    extra = {"user_data": base64.b64encode(user_data.encode()).decode()} if user_data else {}
    extra["security_groups"] = [{"name": g} for g in security_groups]
    server = conn.compute.create_server(
        name=name, image_id=conn.image.find_image(image, ignore_missing=False).id,
        flavor_id=conn.compute.find_flavor(flavor, ignore_missing=False).id,
        networks=[{"uuid": conn.network.find_network("private", ignore_missing=False).id}],
        key_name=keypair.name, **extra)
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=180, interval=0.5)


def fixed_ip(server):
    return [a["addr"] for a in server.addresses["private"] if a["version"] == 4][0]


def make_ssh_group(demo):
    """A security group that lets SSH in (the sandbox enforces security groups)."""
    import uuid
    group = demo.network.create_security_group(name=f"sbt-ssh-{uuid.uuid4().hex[:6]}")
    demo.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=22, port_range_max=22, remote_ip_prefix="0.0.0.0/0")
    return group
