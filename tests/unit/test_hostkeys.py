"""Host keys pinned per cluster (trust on first use), against a real sshd on 127.0.0.1.

The sshd tests run only as root with OpenSSH's server installed (sshd must run as root
to log anyone in); the path, permission and merge logic is tested everywhere.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest

from spark_openstack import errors, hostkeys, inventory, ledger, ssh
from spark_openstack.model import ClusterFacts, Node

from support.keys import keygen as _keygen
from support.cloud import FakeCloud


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ----------------------------------------------------------------------------- paths

def test_the_file_is_under_xdg_state_home_named_by_cluster_and_master_id(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = hostkeys.known_hosts_file(cluster="demo",
                                     master_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    assert path == str(tmp_path / "state/spark-openstack/known_hosts/demo-0f1e2d3c")
    master = Node(name="demo-master", role="master", server_id="0f1e2d3c-4b5a")
    facts = ClusterFacts(cluster_name="demo", master=master, workers=())
    assert hostkeys.known_hosts_file(facts=facts) == path


@pytest.mark.parametrize("value", [None, "", "relative/state"])
def test_without_an_absolute_xdg_state_home_the_file_is_in_local_state(tmp_path, monkeypatch,
                                                                       value):
    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", value)
    assert hostkeys.known_hosts_file(cluster="c", master_id="abcdef0123") == \
        str(tmp_path / ".local/state/spark-openstack/known_hosts/c-abcdef01")


@pytest.mark.parametrize("cluster_name,master_id", [
    ("", "abc"), ("../x", "abc"), ("a/b", "abc"), (".hidden", "abc"), ("demo", ""),
    ("demo", "---"), ("demo", None)])
def test_no_file_name_from_a_bad_cluster_name_or_a_missing_id(cluster_name, master_id):
    with pytest.raises(ValueError):
        hostkeys.known_hosts_file(cluster=cluster_name, master_id=master_id)


def test_an_odd_server_id_cannot_leave_the_folder():
    path = hostkeys.known_hosts_file(cluster="demo", master_id="../../etc/passwd")
    assert Path(path).parent == hostkeys.known_hosts_dir()
    assert Path(path).name == "demo-etcpassw"


def test_files_are_0600_in_a_0700_folder_and_loose_modes_are_tightened(tmp_path):
    path = hostkeys.known_hosts_file(cluster="demo", master_id="12345678")
    hostkeys.ensure_file(path)
    assert _mode(path) == 0o600
    assert _mode(hostkeys.known_hosts_dir()) == 0o700
    assert _mode(hostkeys.state_dir()) == 0o700
    os.chmod(path, 0o644)
    os.chmod(hostkeys.known_hosts_dir(), 0o755)
    hostkeys.ensure_file(path)
    assert _mode(path) == 0o600 and _mode(hostkeys.known_hosts_dir()) == 0o700
    key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "hk")))
    os.chmod(path, 0o644)
    hostkeys.record(path, host="10.0.0.1", key=key)
    assert _mode(path) == 0o600


def test_destroy_forgets_only_that_clusters_files(tmp_path):
    for name in ("demo-12345678", "demo-abcdef01", "demo-2-12345678", "demox-12345678"):
        hostkeys.ensure_file(str(hostkeys.known_hosts_dir() / name))
    left = {"demo-2-12345678", "demox-12345678"}
    provider = FakeCloud()                  # no cluster "demo" in it
    ledger.destroy(provider=provider, cluster="demo")
    assert {p.name for p in hostkeys.known_hosts_dir().iterdir()} == left
    ledger.destroy(provider=provider, cluster="demo")        # fine to run twice
    assert {p.name for p in hostkeys.known_hosts_dir().iterdir()} == left


def test_parallel_writers_never_lose_an_entry(tmp_path):
    path = hostkeys.known_hosts_file(cluster="demo", master_id="12345678")
    keys = [paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / f"k{i}")))
            for i in range(4)]
    hosts = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(60)]
    start = threading.Barrier(len(hosts))

    def write(i: int) -> None:
        start.wait()
        hostkeys.record(path, host=hosts[i], key=keys[i % len(keys)])
    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(hosts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pinned = hostkeys.load(path)
    for i, host in enumerate(hosts):
        assert pinned.lookup(host) == {"ssh-ed25519": keys[i % len(keys)]}
    assert len(Path(path).read_text().splitlines()) == len(hosts)
    assert sorted(os.listdir(Path(path).parent)) == [Path(path).name]   # no temp files
    # the same key again is no change; another key for a pinned host is refused
    hostkeys.record(path, host=hosts[0], key=keys[0])
    with pytest.raises(paramiko.BadHostKeyException):
        hostkeys.record(path, host=hosts[0], key=keys[1])
    assert len(Path(path).read_text().splitlines()) == len(hosts)


def test_lines_paramiko_cannot_read_are_kept_and_skipped(tmp_path):
    path = hostkeys.known_hosts_file(cluster="demo", master_id="12345678")
    hostkeys.ensure_file(path)
    odd = ("# a comment\n@cert-authority *.example ssh-ed25519 AAAA\n"
           "10.0.0.9 ssh-ed25519 !!not-base64!!\n10.0.0.8 ssh-unknown AAAA")
    Path(path).write_text(odd)
    key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "hk")))
    assert not hostkeys.has_host(path, "10.0.0.9")
    hostkeys.record(path, host="10.0.0.1", key=key)
    text = Path(path).read_text()
    assert text.startswith(odd + "\n") and hostkeys.has_host(path, "10.0.0.1")


@pytest.mark.parametrize("path,option", [
    ("/home/u/.local/state/x", "/home/u/.local/state/x"),
    ("/home/a b/x", '"/home/a b/x"'),
    ("/home/100%/x", "/home/100%%/x"),
    ('/home/q"/x', '"/home/q\\"/x"')])
def test_the_path_is_quoted_for_ssh(path, option):
    assert hostkeys.ssh_option_path(path) == option


# ----------------------------------------------------------------------------- login_command

def _facts(address: str = "198.51.100.7") -> ClusterFacts:
    master = Node(name="demo-master", role="master", private_ip="10.0.0.5",
                  public_ip=address, server_id="0f1e2d3c-4b5a-6978")
    return ClusterFacts(cluster_name="demo", master=master, workers=(), ssh_user="debian")


def _options(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")


def test_login_pins_the_masters_key_then_insists_on_it(tmp_path):
    facts = _facts()
    path = hostkeys.known_hosts_file(facts=facts)
    options = _options(inventory.login_command(facts=facts, key_filename=None))
    assert options["UserKnownHostsFile"] == path
    assert options["StrictHostKeyChecking"] == "accept-new"
    assert "/dev/null" not in options.values()
    assert _mode(path) == 0o600              # made before ssh writes to it
    key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "hk")))
    hostkeys.record(path, host="10.0.0.5", key=key)       # a worker's, not the master's
    options = _options(inventory.login_command(facts=facts, key_filename=None))
    assert options["StrictHostKeyChecking"] == "accept-new"
    hostkeys.record(path, host="198.51.100.7", key=key)
    options = _options(inventory.login_command(facts=facts, key_filename=None))
    assert options["StrictHostKeyChecking"] == "yes"


def test_login_knows_a_key_ssh_pinned_under_a_hashed_name(tmp_path):
    facts = _facts()
    path = hostkeys.known_hosts_file(facts=facts)
    hostkeys.ensure_file(path)
    key = paramiko.Ed25519Key.from_private_key_file(str(_keygen(tmp_path / "hk")))
    hashed = paramiko.HostKeys.hash_host("198.51.100.7")
    Path(path).write_text(f"{hashed} ssh-ed25519 {key.get_base64()}\n")
    options = _options(inventory.login_command(facts=facts, key_filename=None))
    assert options["StrictHostKeyChecking"] == "yes"


# ----------------------------------------------------------------------------- a real sshd

@pytest.fixture()
def known_hosts():
    return hostkeys.known_hosts_file(cluster="demo", master_id="0f1e2d3c-4b5a")


def test_first_contact_pins_the_key_and_later_ones_check_it(sshd, known_hosts, monkeypatch):
    conn = sshd.connect(known_hosts=known_hosts)
    try:
        assert ssh.run(conn, "echo ok").stdout.strip() == "ok"
    finally:
        conn.close()
    assert _mode(known_hosts) == 0o600 and _mode(Path(known_hosts).parent) == 0o700
    name = f"[127.0.0.1]:{sshd.port}"
    assert Path(known_hosts).read_text().split() == [name, "ssh-ed25519", sshd.host_key_pub]

    def no_second_first_use(*args, **kwargs):
        raise AssertionError("a pinned host was treated as unknown")
    monkeypatch.setattr(hostkeys, "record", no_second_first_use)
    sshd.restart(new_host_key=False)
    conn = sshd.connect(known_hosts=known_hosts)
    conn.close()


def test_a_changed_host_key_is_refused_at_once(sshd, known_hosts):
    sshd.connect(known_hosts=known_hosts).close()
    before = Path(known_hosts).read_text()
    sshd.restart(new_host_key=True)
    with pytest.raises(errors.HostKeyChanged) as err:
        sshd.connect(known_hosts=known_hosts)
    assert isinstance(err.value, errors.SSHError)
    assert "host key of 127.0.0.1" in err.value.message and "changed" in err.value.message
    assert "man-in-the-middle" in err.value.message
    assert known_hosts in err.value.hint and "spark-openstack destroy" in err.value.hint
    assert Path(known_hosts).read_text() == before           # the pin is not replaced
    # the boot wait does not retry it until its deadline: waiting cannot fix it
    began = time.monotonic()
    with pytest.raises(errors.HostKeyChanged):
        ssh.wait_until_booted(host=f"127.0.0.1:{sshd.port}", user="root",
                              key_filename=str(sshd.client_key), timeout=60,
                              known_hosts=known_hosts)
    assert time.monotonic() - began < 20
    # unpinned (create-image's builder, benchmarks) connects as before and writes nothing
    sshd.connect(known_hosts=None).close()
    assert Path(known_hosts).read_text() == before


def test_parallel_first_contacts_pin_one_entry_per_host(sshd, known_hosts):
    failures: list[BaseException] = []
    start = threading.Barrier(12)

    def one(host: str) -> None:
        start.wait()
        try:
            sshd.connect(known_hosts=known_hosts, host=host).close()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            failures.append(exc)
    threads = [threading.Thread(target=one, args=(("127.0.0.1", "localhost")[i % 2],))
               for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    lines = sorted(Path(known_hosts).read_text().splitlines())
    assert lines == sorted(f"[{h}]:{sshd.port} ssh-ed25519 {sshd.host_key_pub}"
                           for h in ("127.0.0.1", "localhost"))


def test_a_node_behind_the_gateway_is_pinned_by_the_address_connected_to(sshd, known_hosts):
    gateway = sshd.connect(known_hosts=known_hosts)
    try:
        worker = sshd.connect(known_hosts=known_hosts, host="localhost", gateway=gateway)
        try:
            assert ssh.run(worker, "echo hop").stdout.strip() == "hop"
        finally:
            worker.close()
    finally:
        gateway.close()
    names = {line.split()[0] for line in Path(known_hosts).read_text().splitlines()}
    assert names == {f"[127.0.0.1]:{sshd.port}", f"[localhost]:{sshd.port}"}
    # the worker's pin is checked too, through a gateway whose own pin still holds
    (hostkeys.known_hosts_dir() / "other").write_text(
        Path(known_hosts).read_text().replace(f"[127.0.0.1]:{sshd.port} ", "unused "))
    os.chmod(hostkeys.known_hosts_dir() / "other", 0o600)
    sshd.restart(new_host_key=True)
    other = str(hostkeys.known_hosts_dir() / "other")
    gateway = sshd.connect(known_hosts=other)          # the gateway is new to this file
    try:
        with pytest.raises(errors.HostKeyChanged, match="host key of localhost"):
            sshd.connect(known_hosts=other, host="localhost", gateway=gateway)
    finally:
        gateway.close()


def test_the_runner_checks_pinned_keys(sshd, known_hosts):
    from spark_openstack.transport import SSHRunner
    node = Node(name="demo-master", role="master", private_ip=f"127.0.0.1:{sshd.port}")
    runner = SSHRunner(ssh_user="root", key_filename=str(sshd.client_key),
                       known_hosts=known_hosts)
    try:
        runner.run_as_root(node, "true")
    finally:
        runner.close()
    assert hostkeys.has_host(known_hosts, f"[127.0.0.1]:{sshd.port}")
    sshd.restart(new_host_key=True)
    runner = SSHRunner(ssh_user="root", key_filename=str(sshd.client_key),
                       known_hosts=known_hosts)
    try:
        with pytest.raises(errors.HostKeyChanged):
            runner.run_as_root(node, "true")
    finally:
        runner.close()


@pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client")
def test_openssh_reads_the_pins_and_refuses_a_changed_key(sshd, known_hosts):
    sshd.connect(known_hosts=known_hosts).close()          # pinned by paramiko
    facts = ClusterFacts(cluster_name="demo", workers=(), ssh_user="root", master=Node(
        name="demo-master", role="master", private_ip="127.0.0.1",
        server_id="0f1e2d3c-4b5a"))
    argv = inventory.login_command(facts=facts, key_filename=str(sshd.client_key))
    assert _options(argv)["UserKnownHostsFile"] == known_hosts
    at = argv.index("-l")
    argv[at:at] = ["-F", "/dev/null", "-p", str(sshd.port), "-o", "BatchMode=yes",
                   "-o", "ConnectTimeout=10"]
    ok = subprocess.run([*argv, "echo", "in"], capture_output=True, text=True, timeout=60,
                        stdin=subprocess.DEVNULL)
    assert (ok.returncode, ok.stdout.strip()) == (0, "in"), ok.stderr
    sshd.restart(new_host_key=True)
    refused = subprocess.run([*argv, "echo", "in"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL)
    assert refused.returncode != 0 and "in" not in refused.stdout.split()
    assert "host key" in refused.stderr.lower() or "identification" in refused.stderr.lower()


def test_the_login_that_succeeds_is_the_one_that_waits_for_cloud_init(sshd, known_hosts,
                                                                       monkeypatch):
    """sshd not up yet: attempts are refused and retried; once it answers, ONE connection
    logs in, runs the cloud-init wait and (keep_open) is handed back open."""
    opened = []
    real_connect = ssh.connect

    def counting_connect(**kwargs):
        conn = real_connect(**kwargs)
        opened.append(conn)
        return conn
    monkeypatch.setattr(ssh, "connect", counting_connect)
    waited_on = []

    def cloud_init_done(conn, *, timeout):       # this test machine's own cloud-init never
        waited_on.append(conn)                   # finishes: a real command stands for it
        return ssh.run(conn, "echo status: done", timeout=timeout).stdout
    monkeypatch.setattr(ssh, "wait_for_cloud_init", cloud_init_done)
    sshd.stop()
    threading.Timer(1.5, sshd.start).start()
    steps: list[str] = []
    conn = ssh.wait_until_booted(host=f"127.0.0.1:{sshd.port}", user="root",
                                 key_filename=str(sshd.client_key), timeout=60,
                                 known_hosts=known_hosts, on_step=steps.append,
                                 keep_open=True)
    try:
        assert len(opened) == 1 and conn is opened[0] and waited_on == [conn]
        assert ssh.run(conn, "echo still-open").stdout.strip() == "still-open"
        assert steps[-1] == "waiting for cloud-init" and "waiting for ssh" in steps
    finally:
        conn.close()


def test_handshakes_are_bounded_while_many_nodes_wait(sshd, monkeypatch):
    """Twelve nodes at once through a semaphore of 2: never more than 2 connects run."""
    running = [0, 0]            # now, most ever
    lock = threading.Lock()
    real_connect = ssh.connect

    def slow_connect(**kwargs):
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        try:
            time.sleep(0.2)
            return real_connect(**kwargs)
        finally:
            with lock:
                running[0] -= 1
    monkeypatch.setattr(ssh, "connect", slow_connect)
    monkeypatch.setattr(ssh, "wait_for_cloud_init",
                        lambda conn, *, timeout: ssh.run(conn, "sleep 1").stdout)
    slots = threading.Semaphore(2)
    failures: list[BaseException] = []

    def one():
        try:
            ssh.wait_until_booted(host=f"127.0.0.1:{sshd.port}", user="root",
                                  key_filename=str(sshd.client_key), timeout=60,
                                  handshakes=slots)
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            failures.append(exc)
    threads = [threading.Thread(target=one) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and running == [0, 2]
