"""The sandbox cloud behaves like a real OpenStack cloud to a non-admin openstacksdk user.

Everything here goes through the public APIs (openstacksdk over HTTP) and real SSH to the
servers' addresses; the only look behind the curtain is checking that a deleted server's
network namespace and state are gone from the machine.
"""
from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from openstack import exceptions as sdk_exc

from support.sandbox_cloud import boot, fixed_ip, ssh, ssh_answers, wait_ssh

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
CLOUDS = ROOT / ".sandbox" / "clouds.yaml"
HOSTS_DIR = ROOT / ".sandbox" / "hosts"

USER_DATA = """#cloud-config
write_files:
  - path: /opt/from-user-data
    content: "written by cloud-init write_files\\n"
runcmd:
  - [sh, -c, 'sleep 2; echo "runcmd ran as $(id -un) on $(hostname)" > /opt/runcmd.done']
"""


def _netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_non_admin_user_authenticates(demo):
    demo.authorize()
    assert demo.identity.get_project(demo.current_project_id).name == "demo"
    roles = demo.session.auth.get_access(demo.session).role_names
    assert "member" in roles and "admin" not in roles
    # a member cannot do admin things: the cloud says 403, as a real one would
    with pytest.raises(sdk_exc.ForbiddenException):
        demo.compute.create_flavor(name="not-allowed", ram=64, vcpus=1, disk=1)


def test_cloud_offers_what_a_real_cloud_has(demo):
    flavors = {f.name for f in demo.compute.flavors()}
    assert {"m1.small", "m1.medium", "m1.large"} <= flavors
    assert demo.image.find_image("debian-12") is not None
    private = demo.network.find_network("private")
    public = demo.network.find_network("public")
    assert private is not None and public is not None and public.is_router_external
    assert [r.name for r in demo.network.routers()] == ["router1"]


@pytest.fixture(scope="module")
def server(demo, keypair, ssh_key, ssh_group):
    srv = boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair, user_data=USER_DATA,
               security_groups=[ssh_group.name])
    yield srv
    demo.compute.delete_server(srv, ignore_missing=True)
    demo.compute.wait_for_delete(srv, wait=120)


def test_server_is_reachable_and_user_data_ran(server, ssh_key):
    ip = fixed_ip(server)
    wait_ssh(ssh_key, ip)
    # sshd answers before user-data has finished, as on a real cloud: wait for cloud-init
    done = ssh(ssh_key, ip, "cloud-init status --wait >/dev/null; cloud-init status", timeout=120)
    assert "status: done" in done.stdout, done.stdout + done.stderr
    out = ssh(ssh_key, ip, "cat /opt/from-user-data /opt/runcmd.done; hostname").stdout
    assert "written by cloud-init write_files" in out
    assert f"runcmd ran as root on {server.name}" in out
    # the image's default login user, with passwordless sudo, has the keypair's key too
    sudo = ssh(ssh_key, ip, "sudo -n id -un", user="debian")
    assert sudo.returncode == 0 and sudo.stdout.strip() == "root", sudo.stderr


def test_host_cannot_change_the_machine(server, ssh_key):
    ip = fixed_ip(server)
    wait_ssh(ssh_key, ip)
    marker = f"sbt-probe-{uuid.uuid4().hex[:6]}"
    r = ssh(ssh_key, ip, f"touch /usr/local/bin/{marker} /etc/{marker} && echo ok")
    assert r.stdout.strip() == "ok"
    assert not Path(f"/usr/local/bin/{marker}").exists()
    assert not Path(f"/etc/{marker}").exists()
    # /srv and /home start empty like a fresh VM (cloud-init made the default user's
    # home), and the machine's own work tree is hidden
    listing = ssh(ssh_key, ip, f"ls -A /srv; echo --; ls -A /home; echo --; ls -A {ROOT.parent}")
    assert listing.stdout.split() == ["--", "debian", "--"]


def test_floating_ip_reaches_server_until_disassociated(demo, server, ssh_key):
    port = next(demo.network.ports(device_id=server.id))
    public = demo.network.find_network("public")
    fip = demo.network.create_ip(floating_network_id=public.id)
    try:
        address = fip.floating_ip_address
        assert not ssh_answers(ssh_key, address)   # not associated yet
        demo.network.update_ip(fip, port_id=port.id)
        wait_ssh(ssh_key, address, limit=30)
        assert ssh(ssh_key, address, "hostname").stdout.strip() == server.name
        demo.network.update_ip(fip, port_id=None)
        deadline = time.time() + 30
        while ssh_answers(ssh_key, address):
            assert time.time() < deadline, "floating IP still answers after disassociation"
            time.sleep(0.5)
        assert not ssh_answers(ssh_key, address)   # and stays closed
    finally:
        demo.network.delete_ip(fip, ignore_missing=True)


def test_stop_start_keeps_disk(demo, server, ssh_key):
    ip = fixed_ip(server)
    wait_ssh(ssh_key, ip)
    ssh(ssh_key, ip, "cloud-init status --wait >/dev/null; echo kept > /root/before-stop; "
                     "nohup sleep 1000 >/dev/null 2>&1 & echo $! > /root/sleeper.pid", timeout=120)
    demo.compute.stop_server(server)
    demo.compute.wait_for_server(server, status="SHUTOFF", wait=60, interval=0.5)
    assert not ssh_answers(ssh_key, ip), "a stopped server still answers"
    demo.compute.start_server(server)
    demo.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.5)
    wait_ssh(ssh_key, ip)
    out = ssh(ssh_key, ip, "cat /root/before-stop; kill -0 $(cat /root/sleeper.pid) 2>/dev/null "
                           "&& echo still-running || echo process-gone").stdout.split()
    assert out == ["kept", "process-gone"]
    log = demo.compute.get_server_console_output(server)["output"]
    assert "Cloud-init v." in log   # the console log is the host's boot output
    # a reboot, too, ends the processes and keeps the disk
    ssh(ssh_key, ip, "nohup sleep 1000 >/dev/null 2>&1 & echo $! > /root/sleeper.pid")
    boot_id = ssh(ssh_key, ip, "cat /proc/1/stat | cut -d' ' -f22").stdout.strip()
    demo.compute.reboot_server(server, "SOFT")
    deadline = time.time() + 60
    while True:   # until the host answers again with a new PID 1 (a new boot)
        assert time.time() < deadline, "the server did not come back from its reboot"
        now = ssh(ssh_key, ip, "cat /proc/1/stat | cut -d' ' -f22")
        if now.returncode == 0 and now.stdout.strip() != boot_id:
            break
        time.sleep(0.5)
    demo.compute.wait_for_server(server, status="ACTIVE", wait=60, interval=0.5)
    out = ssh(ssh_key, ip, "cat /root/before-stop; kill -0 $(cat /root/sleeper.pid) 2>/dev/null "
                           "&& echo still-running || echo process-gone").stdout.split()
    assert out == ["kept", "process-gone"]


def test_snapshot_carries_files_to_a_new_server(demo, server, keypair, ssh_key, ssh_group):
    ip = fixed_ip(server)
    wait_ssh(ssh_key, ip)
    ssh(ssh_key, ip, "mkdir -p /opt/baked && echo from-snapshot > /opt/baked/file && sync")
    image = demo.compute.create_server_image(server, name=f"sbt-snap-{uuid.uuid4().hex[:6]}",
                                             wait=True, timeout=180)
    try:
        image = demo.image.wait_for_status(demo.image.get_image(image.id), status="active",
                                           wait=180)
        second = boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair,
                      image=image.id, security_groups=[ssh_group.name])
        try:
            ip2 = fixed_ip(second)
            assert ip2 != ip
            wait_ssh(ssh_key, ip2)
            out = ssh(ssh_key, ip2, "cat /opt/baked/file /opt/from-user-data; hostname").stdout
            assert out.split("\n")[0] == "from-snapshot"
            assert "written by cloud-init write_files" in out
            assert second.name in out
        finally:
            demo.compute.delete_server(second)
            demo.compute.wait_for_delete(second, wait=120)
    finally:
        demo.image.delete_image(image, ignore_missing=True)


def test_security_groups_are_enforced(demo, keypair, ssh_key):
    """Only the default group: SSH from the machine is refused until a rule allows it."""
    group = demo.network.create_security_group(name=f"sbt-sg-{uuid.uuid4().hex[:6]}")
    srv = boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair,
               security_groups=[group.name])
    try:
        ip = fixed_ip(srv)
        time.sleep(3)   # the agent has had time to apply the group
        assert not ssh_answers(ssh_key, ip)
        rule = demo.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4",
            protocol="tcp", port_range_min=22, port_range_max=22,
            remote_ip_prefix="10.213.0.1/32")
        wait_ssh(ssh_key, ip, limit=30)
        demo.network.delete_security_group_rule(rule)
        deadline = time.time() + 30
        while ssh_answers(ssh_key, ip):
            assert time.time() < deadline, "SSH still allowed after the rule was deleted"
            time.sleep(0.5)
    finally:
        demo.compute.delete_server(srv)
        demo.compute.wait_for_delete(srv, wait=120)
        demo.network.delete_security_group(group, ignore_missing=True)


def test_delete_removes_the_host(demo, keypair, ssh_key, ssh_group):
    srv = boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair,
               security_groups=[ssh_group.name])
    ip = fixed_ip(srv)
    wait_ssh(ssh_key, ip)
    ns = f"sbx-{srv.id[:8]}"
    assert ns in _netns_names() and (HOSTS_DIR / srv.id).is_dir()
    demo.compute.delete_server(srv)
    demo.compute.wait_for_delete(srv, wait=120)
    assert ns not in _netns_names()
    assert not (HOSTS_DIR / srv.id).exists()
    assert not ssh_answers(ssh_key, ip)
    assert not list(demo.network.ports(device_id=srv.id))


def test_quota_is_enforced_like_a_real_cloud(demo, admin, keypair):
    huge = admin.compute.create_flavor(name=f"sbt-huge-{uuid.uuid4().hex[:6]}",
                                       ram=1024 * 1024, vcpus=2, disk=1)
    try:
        with pytest.raises(sdk_exc.ForbiddenException) as err:
            boot(demo, name="sbt-too-big", keypair=keypair, flavor=huge.id)
        assert "Quota exceeded for ram" in str(err.value)
        assert not [s for s in demo.compute.servers() if s.name == "sbt-too-big"]
    finally:
        admin.compute.delete_flavor(huge, ignore_missing=True)


def test_credentials_are_fresh_and_root_only(demo):
    """Anyone holding the sandbox's credentials can run code as root on this machine, so
    they are random for every `up` and readable by root only; the old fixed ones fail."""
    import openstack
    import yaml
    from keystoneauth1 import exceptions as ks
    sandbox_dir = CLOUDS.parent
    assert sandbox_dir.stat().st_mode & 0o777 == 0o700
    assert CLOUDS.stat().st_mode & 0o777 == 0o600
    clouds = yaml.safe_load(CLOUDS.read_text())["clouds"]
    password = clouds["sandbox"]["auth"]["password"]
    assert password != "secret" and len(password) >= 32
    assert clouds["sandbox-admin"]["auth"]["password"] == password
    for config in (sandbox_dir / "etc").rglob("*.conf"):
        assert "password = secret" not in config.read_text(), config
    assert "guest:guest" not in (sandbox_dir / "etc" / "nova" / "nova.conf").read_text()
    stale = openstack.connect(auth_url="http://127.0.0.1:5000/v3", username="demo",
                              password="secret", project_name="demo", user_domain_id="default",
                              project_domain_id="default", region_name="RegionOne")
    with pytest.raises((ks.Unauthorized, sdk_exc.SDKException), match="401"):
        stale.authorize()
    assert demo.authorize()


ROOTFS_DIR = ROOT / ".sandbox" / "rootfs"


def test_a_bare_image_boots_on_its_own_tree_and_its_snapshot_too(demo, keypair, ssh_key,
                                                                  ssh_group):
    """debian-13-bare: the server runs the Debian 13 tree (not the machine's Debian 12),
    has no Java, writes never reach the tree, and a snapshot boots on the same tree."""
    base = demo.image.find_image("debian-13-bare", ignore_missing=False)
    assert base.properties.get("sandbox_rootfs") == "debian-13-bare"
    assert (base.os_distro, base.os_version) == ("debian", "13")
    tree = ROOTFS_DIR / "debian-13-bare"
    marker = f"sbt-bare-{uuid.uuid4().hex[:6]}"
    srv = boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair,
               image="debian-13-bare", user_data=USER_DATA, security_groups=[ssh_group.name])
    try:
        ip = fixed_ip(srv)
        wait_ssh(ssh_key, ip)
        ssh(ssh_key, ip, "cloud-init status --wait >/dev/null", timeout=120)
        out = ssh(ssh_key, ip, ". /etc/os-release; echo $VERSION_ID; python3 -V; "
                  "command -v java || echo no-java; cat /opt/runcmd.done; "
                  f"ls -A {ROOT.parent} 2>&1 | head -1; touch /usr/local/bin/{marker} && "
                  "echo wrote").stdout.split("\n")
        assert out[0] == "13" and out[1].startswith("Python 3.13"), out
        assert out[2] == "no-java" and out[3].startswith("runcmd ran as root"), out
        assert "No such file" in out[4], out        # the machine's tree is not there at all
        assert out[5] == "wrote" and not (tree / "usr/local/bin" / marker).exists()
        sudo = ssh(ssh_key, ip, "sudo -n id -un", user="debian")
        assert sudo.stdout.strip() == "root", sudo.stderr
        image = demo.compute.create_server_image(srv, name=f"sbt-snap-{uuid.uuid4().hex[:6]}",
                                                 wait=True, timeout=180)
        try:
            image = demo.image.wait_for_status(demo.image.get_image(image.id),
                                               status="active", wait=180)
            assert image.properties.get("sandbox_rootfs") == "debian-13-bare"
            second = boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair,
                          image=image.id, security_groups=[ssh_group.name])
            try:
                wait_ssh(ssh_key, fixed_ip(second))
                again = ssh(ssh_key, fixed_ip(second), ". /etc/os-release; echo $VERSION_ID; "
                            f"ls /usr/local/bin/{marker}").stdout.split("\n")
                assert again[0] == "13" and again[1].endswith(marker), again
            finally:
                demo.compute.delete_server(second)
                demo.compute.wait_for_delete(second, wait=120)
        finally:
            demo.image.delete_image(image, ignore_missing=True)
    finally:
        demo.compute.delete_server(srv, ignore_missing=True)
        demo.compute.wait_for_delete(srv, wait=120)


def test_an_image_naming_no_known_tree_does_not_boot(demo, keypair):
    """A user's own image may carry any property: a sandbox_rootfs that is a path or names
    no built tree makes the server ERROR, never a host on some other folder."""
    image = demo.image.create_image(
        name=f"sbt-badroot-{uuid.uuid4().hex[:6]}", disk_format="raw", container_format="bare",
        data=b"x", sandbox_rootfs="../../../etc", allow_duplicates=True)
    try:
        demo.image.wait_for_status(image, status="active", wait=60)
        with pytest.raises(sdk_exc.ResourceFailure):
            boot(demo, name=f"sbt-{uuid.uuid4().hex[:6]}", keypair=keypair, image=image.id)
    finally:
        for s in demo.compute.servers(name="sbt-"):
            if s.image and s.image.get("id") == image.id:
                demo.compute.delete_server(s, ignore_missing=True)
                demo.compute.wait_for_delete(s, wait=120)
        demo.image.delete_image(image, ignore_missing=True)
