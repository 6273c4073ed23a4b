"""The launch engine, its ledger, key matching and the inventory without a cloud:
validation order, all-or-nothing."""
from __future__ import annotations

import dataclasses

import subprocess
import threading
import types

import pytest

from spark_openstack import errors, inventory, keys, ledger
from spark_openstack import launch as launch_mod
from spark_openstack.executor import run_calls
from spark_openstack.config import LaunchSpec
from spark_openstack.model import ClusterFacts, Node


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture()
def key(tmp_path):
    return _keygen(tmp_path / "id_a")


def _keypair(pub_path, name="kp"):
    return types.SimpleNamespace(name=name, public_key=pub_path.read_text(),
                                 fingerprint="aa:bb")


def test_identity_file_matching_keypair_is_accepted(key):
    kp = _keypair(key.with_name("id_a.pub"))
    assert keys.resolve_identity_file(identity_file=str(key), keypair=kp) == str(key)


def test_identity_file_of_another_key_is_refused(key, tmp_path):
    other = _keygen(tmp_path / "id_b")
    kp = _keypair(key.with_name("id_a.pub"))
    with pytest.raises(errors.ValidationError) as err:
        keys.resolve_identity_file(identity_file=str(other), keypair=kp)
    assert "does not match keypair 'kp'" in str(err.value)


def test_missing_and_garbage_identity_files(tmp_path, key):
    kp = _keypair(key.with_name("id_a.pub"))
    with pytest.raises(errors.ValidationError, match="does not exist"):
        keys.resolve_identity_file(identity_file=str(tmp_path / "nope"), keypair=kp)
    junk = tmp_path / "junk"
    junk.write_text("not a key")
    with pytest.raises(errors.ValidationError, match="not a usable SSH private key"):
        keys.resolve_identity_file(identity_file=str(junk), keypair=kp)


def test_identity_file_found_in_home_when_not_given(tmp_path, monkeypatch, key):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    found = _keygen(home / ".ssh" / "id_ed25519")
    monkeypatch.setenv("HOME", str(home))
    kp = _keypair(found.with_name("id_ed25519.pub"))
    assert keys.resolve_identity_file(identity_file=None, keypair=kp) == str(found)
    with pytest.raises(errors.UsageError, match="--identity-file"):
        keys.resolve_identity_file(identity_file=None,
                                      keypair=_keypair(key.with_name("id_a.pub")))


def test_login_command_forwards_web_uis_to_the_master_private_ip():
    master = Node(name="c-master", role="master", private_ip="10.0.0.5",
                  public_ip="198.51.100.7", server_id="0f1e2d3c-aaaa")
    facts = ClusterFacts(cluster_name="c", master=master, workers=(), ssh_user="ubuntu")
    argv = inventory.login_command(facts=facts, key_filename="/k", forward_ui=True)
    assert argv[-4:] == ["-l", "ubuntu", "--", "198.51.100.7"]
    forwards = {argv[i + 1] for i, a in enumerate(argv) if a == "-L"}
    # through SSH every UI is forwarded, the unsafe ones too: only this user reaches them
    assert forwards == {f"{p}:10.0.0.5:{p}" for p in (8080, 4040, 9870, 8088)}
    assert "-i" in argv and "/k" in argv


def _server(name, role, **meta):
    return types.SimpleNamespace(name=name, id=f"id-{name}", key_name="kp", metadata={
        "spark_openstack_cluster": "c", "spark_openstack_role": role, **meta})


class _FactsProvider:
    """Just what ``cluster_facts`` reads: servers with metadata and their addresses."""

    def __init__(self, servers):
        self.servers = servers

    def cluster_servers(self, cluster):
        return self.servers

    def cluster_floating_ips(self, **kw):
        return []

    @staticmethod
    def node_from_server(srv, floating_ips=()):
        return Node(name=srv.name, role=srv.metadata["spark_openstack_role"],
                    server_id=srv.id, private_ip="10.0.0.5", status="ACTIVE")


def test_a_login_user_from_metadata_that_is_an_ssh_option_is_refused():
    evil = "-oProxyCommand=touch /tmp/x"
    provider = _FactsProvider([_server("c-master", "master", spark_openstack_ssh_user=evil)])
    with pytest.raises(errors.ValidationError) as err:
        inventory.cluster_facts(provider=provider, cluster="c")
    message = str(err.value)
    assert "'c-master'" in message and repr(evil) in message
    assert "--ssh-user" in err.value.hint and "openstack server set" in err.value.hint
    # an explicit --ssh-user replaces the recorded one; it is checked the same way
    facts = inventory.cluster_facts(provider=provider, cluster="c", ssh_user="ubuntu")
    assert facts.ssh_user == "ubuntu"
    with pytest.raises(errors.UsageError):
        inventory.cluster_facts(provider=provider, cluster="c", ssh_user=evil)


@pytest.mark.parametrize("user", ["debian", "_svc", "a-b_9", "u" * 32])
def test_plain_login_users_from_metadata_are_used(user):
    provider = _FactsProvider([_server("c-master", "master", spark_openstack_ssh_user=user)])
    facts = inventory.cluster_facts(provider=provider, cluster="c")
    assert inventory.login_command(facts=facts, key_filename=None)[-4:] == \
        ["-l", user, "--", "10.0.0.5"]


@pytest.mark.parametrize("user", ["-oProxyCommand=x", "Root", "a b", "9user", "u" * 33,
                                  "debian\n", "a@b"])
def test_login_command_never_passes_a_user_that_is_not_a_user_name(user):
    master = Node(name="c-master", role="master", private_ip="10.0.0.5")
    for facts_user, given in ((user, None), ("debian", user)):
        facts = ClusterFacts(cluster_name="c", workers=(), ssh_user=facts_user, master=master)
        with pytest.raises(errors.UsageError, match="is not a user name"):
            inventory.login_command(facts=facts, key_filename=None, user=given)


def test_login_command_needs_an_ip_address_for_the_host():
    facts = ClusterFacts(cluster_name="c", workers=(), ssh_user="debian",
                         master=Node(name="c-master", role="master",
                                     private_ip="-oProxyCommand=x"))
    with pytest.raises(errors.ValidationError, match="no usable IP address"):
        inventory.login_command(facts=facts, key_filename=None)


class FakeProvider:
    """Records calls; behaves like a small healthy cloud unless told otherwise."""

    def __init__(self, *, key_pub, volume_service=False, fail_wait=None, existing=()):
        self.calls = []
        self.key_pub = key_pub
        self.volume_service = volume_service
        self.fail_wait = fail_wait
        self.existing = list(existing)
        self.request_count = 0
        self.deleted = {}
        self.created = []

    def __getattr__(self, name):
        raise AssertionError(f"unexpected provider call {name}")

    def _rec(self, name, **kw):
        self.calls.append(name)

    def cluster_servers(self, name):
        self._rec("cluster_servers")
        return self.existing

    def find_security_group(self, name):
        return None

    def has_volume_service(self):
        return self.volume_service

    def find_image(self, name):
        return types.SimpleNamespace(id="img", name=name, min_disk=0, min_ram=0)

    def find_flavor(self, name, option="--flavor"):
        return types.SimpleNamespace(id=f"fl-{name}", name=name, vcpus=1, ram=512, disk=1)

    def find_keypair(self, name):
        return types.SimpleNamespace(name=name, public_key=self.key_pub, fingerprint="x")

    def find_network(self, name):
        return types.SimpleNamespace(id="net", name="private")

    def find_floating_pool(self, name):
        return types.SimpleNamespace(id="pub", name="public")

    def read_quotas(self):
        return "quota-state"

    def compute_max_microversion(self):
        return (2, 90)

    def check_quotas(self, need, *, state=None):
        assert state == "quota-state"      # read beside the look-ups, not again
        self.need = need
        return []

    def allocate_floating_ip(self, *, pool_network_id, cluster):
        self._rec("allocate_floating_ip")
        return "fip1", "198.51.100.9"

    def server_port_id(self, server_id):
        return f"port-of-{server_id}"

    def associate_floating_ip(self, *, fip_id, port_id):
        self.associated = (fip_id, port_id)

    def create_security_group(self, **kw):
        self._rec("create_security_group")
        return types.SimpleNamespace(id="sg1", name="spark-openstack-demo")

    def create_server_group(self, **kw):
        self._rec("create_server_group")
        return types.SimpleNamespace(id="grp1")

    @staticmethod
    def cluster_metadata(c, r):
        return {"spark_openstack_cluster": c, "spark_openstack_role": r}

    @staticmethod
    def cluster_tags(c, r):
        return []

    def create_server(self, *, name, count=1, metadata=None, **kw):
        self._rec("create_server")
        names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
        self.created += [types.SimpleNamespace(id=f"id-{n}", name=n, metadata=metadata,
                                               launch_index=i, created_at="")
                         for i, n in enumerate(names)]
        return f"id-{names[0]}"

    def list_servers(self, name_regex=None):
        return list(self.created)

    @staticmethod
    def server_role(server):
        return server.metadata["spark_openstack_role"]

    def wait_for_servers(self, **kw):
        if self.fail_wait:
            raise self.fail_wait
        raise AssertionError("not scripted")

    def cluster_floating_ips(self, **kw):
        return []

    def delete_floating_ip(self, fid):
        self.deleted.setdefault("fips", []).append(fid)

    def delete_servers(self, *, server_ids, wait, timeout):
        self.deleted["servers"] = sorted(server_ids)

    def delete_security_group(self, gid):
        self.deleted["sg"] = gid

    def find_server_groups(self, c):
        return []

    def delete_server_group(self, gid):
        self.deleted["server_group"] = gid


def _spec(key, **over):
    base = dict(cluster_name="demo", workers=2, keypair="kp", image="debian-12",
                flavor="m1.small", identity_file=str(key), allowed_cidrs=("10.0.0.0/8",),
                deploy=False)
    base.update(over)
    return LaunchSpec(**base)


def test_existing_cluster_refused_before_creating(key):
    provider = FakeProvider(key_pub=key.with_name("id_a.pub").read_text(),
                            existing=[types.SimpleNamespace(name="demo-master")])
    with pytest.raises(errors.ClusterExistsError, match="destroy -c demo"):
        launch_mod.launch(provider=provider, spec=_spec(key))
    assert provider.calls == ["cluster_servers"]


class _SecurityGroupProvider(FakeProvider):
    """Keeps what the launch asked the security group to open; boot then fails."""

    def create_security_group(self, **kw):
        self.group_kw = kw
        return super().create_security_group(**kw)


def _opened(provider):
    return set(provider.group_kw.get("ui_rules", ()))


def test_open_ui_cidr_opens_the_spark_uis_only(key):
    from spark_openstack.progress import RecordingProgress
    provider = _SecurityGroupProvider(key_pub=key.with_name("id_a.pub").read_text(),
                                      fail_wait=errors.CloudError("stop"))
    progress = RecordingProgress()
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=_spec(key, open_ui_cidrs=("192.0.2.0/24",)),
                       progress=progress)
    assert _opened(provider) == {("192.0.2.0/24", 8080), ("192.0.2.0/24", 4040)}
    assert provider.need.security_group_rules == 2 + 2 + 1 + 2
    assert not [e for e in progress.events if e[0] == "message" and "WARNING" in e[1]]


def test_open_unsafe_ui_cidr_opens_yarn_and_hdfs_and_warns(key):
    from spark_openstack.progress import RecordingProgress
    provider = _SecurityGroupProvider(key_pub=key.with_name("id_a.pub").read_text(),
                                      fail_wait=errors.CloudError("stop"))
    progress = RecordingProgress()
    spec = _spec(key, open_ui_cidrs=("192.0.2.0/24", "198.51.100.7/32"),
                 unsafe_ui_cidrs=("198.51.100.7/32",))
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=spec, progress=progress)
    opened = _opened(provider)
    assert {p for c, p in opened if c == "192.0.2.0/24"} == {8080, 4040}
    assert {p for c, p in opened if c == "198.51.100.7/32"} == {8080, 4040, 8088, 9870}
    assert len(provider.group_kw["ui_rules"]) == len(opened) == 6   # no duplicate rules
    assert provider.need.security_group_rules == 2 + 2 + 1 + 6
    warnings = [e[1] for e in progress.events if e[0] == "message" and "WARNING" in e[1]]
    assert len(warnings) == 1
    assert all(w in warnings[0] for w in ("8088", "9870", "198.51.100.7/32", "login -L"))


def test_quota_need_counts_master_flavor_and_group_members(key):
    provider = FakeProvider(key_pub=key.with_name("id_a.pub").read_text())
    launch_mod.validate_launch(provider=provider, spec=_spec(key, workers=4))
    need = provider.need
    assert (need.servers, need.vcpus, need.ram_mb, need.floating_ips, need.ports,
            need.server_group_members) == (5, 5, 2560, 1, 5, 5)


@pytest.mark.parametrize("failure,expected", [
    (errors.CloudError("[demo-worker-2] server went to ERROR: No valid host was found."),
     errors.CloudError),
    (KeyboardInterrupt(), errors.Interrupted),
])
def test_failure_after_create_deletes_exactly_what_was_made(key, failure, expected):
    provider = FakeProvider(key_pub=key.with_name("id_a.pub").read_text(), fail_wait=failure)
    with pytest.raises(expected) as err:
        launch_mod.launch(provider=provider, spec=_spec(key))
    assert provider.deleted["servers"] == ["id-demo-master", "id-demo-worker-1",
                                           "id-demo-worker-2"]
    assert provider.deleted["sg"] == "sg1" and provider.deleted["server_group"] == "grp1"
    # the floating IP was allocated before the boot: it is this run's, and deleted too
    assert provider.deleted["fips"] == ["fip1"]
    assert "deleted everything this launch created" in str(err.value)
    assert "boot phase" in str(err.value)
    if expected is errors.CloudError:
        assert "[demo-worker-2]" in str(err.value)


def test_workers_are_created_in_one_multi_create_request(key):
    provider = FakeProvider(key_pub=key.with_name("id_a.pub").read_text(),
                            fail_wait=errors.CloudError("stop"))
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=_spec(key, workers=5))
    assert provider.calls.count("create_server") == 2  # master + one request for 5 workers
    assert len(provider.deleted["servers"]) == 6


def test_groups_and_floating_ip_are_made_before_the_servers_and_the_ip_goes_to_the_master(
        key):
    provider = FakeProvider(key_pub=key.with_name("id_a.pub").read_text(),
                            fail_wait=errors.CloudError("stop"))
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=_spec(key, workers=3))
    first = provider.calls.index("create_server")
    assert {"create_security_group", "create_server_group",
            "allocate_floating_ip"} <= set(provider.calls[:first])
    # associated while the servers were still being waited for (the wait then failed)
    assert provider.associated == ("fip1", "port-of-id-demo-master")


def test_keep_on_failure_keeps_and_says_how_to_clean_up(key):
    provider = FakeProvider(key_pub=key.with_name("id_a.pub").read_text(),
                            fail_wait=errors.CloudError("boom"))
    with pytest.raises(errors.CloudError) as err:
        launch_mod.launch(provider=provider, spec=_spec(key, keep_on_failure=True))
    assert provider.deleted == {}
    assert "destroy -c demo" in str(err.value)


class _ImageFlavorProvider(FakeProvider):
    """An image baked by create-image (its properties) and flavors of a given RAM."""

    def __init__(self, *, image_props, ram, **kw):
        super().__init__(**kw)
        self.image_props, self.ram = image_props, ram

    def find_image(self, name):
        return types.SimpleNamespace(id="img", name=name, min_disk=0, min_ram=0,
                                     properties=self.image_props)

    def find_flavor(self, name, option="--flavor"):
        return types.SimpleNamespace(id=f"fl-{name}", name=name, vcpus=2, ram=self.ram,
                                     disk=20)


def test_a_flavor_too_small_for_the_images_daemons_is_refused_before_creating(key):
    yarn_image = {"spark_version": "4.3.0", "hadoop_version": "3.4.1",
                  "hadoop_services": "hdfs,yarn"}
    provider = _ImageFlavorProvider(key_pub=key.with_name("id_a.pub").read_text(),
                                    image_props=yarn_image, ram=2048)
    with pytest.raises(errors.ValidationError) as info:
        launch_mod.launch(provider=provider, spec=_spec(key, deploy=True))
    # 3481 MB: YARN must hold the AM (896) and one executor (896) together (issue 23)
    assert "--flavor m1.small" in str(info.value) and "3481 MB" in str(info.value)
    assert not [c for c in provider.calls if c.startswith("create")]


def test_an_hdfs_only_image_fits_two_gb_workers(key):
    """The plan follows what the image can run: no YARN daemons, no YARN memory."""
    hdfs_image = {"spark_version": "4.3.0", "hadoop_version": "3.4.2",
                  "hadoop_services": "hdfs"}
    provider = _ImageFlavorProvider(key_pub=key.with_name("id_a.pub").read_text(),
                                    image_props=hdfs_image, ram=2048)
    plan = launch_mod.validate_launch(provider=provider, spec=_spec(key, deploy=True))
    assert plan.flavor.ram == 2048


def test_services_asked_of_an_image_without_them_are_refused_before_creating(key):
    """--services yarn on an HDFS-only image: refused with both named; the default list
    quietly drops what the image lacks (test above)."""
    hdfs_image = {"spark_version": "4.3.0", "hadoop_version": "3.4.2",
                  "hadoop_services": "hdfs"}
    provider = _ImageFlavorProvider(key_pub=key.with_name("id_a.pub").read_text(),
                                    image_props=hdfs_image, ram=8192)
    spec = dataclasses.replace(_spec(key, deploy=True), services=("hdfs", "yarn", "spark"),
                               services_asked=True)
    with pytest.raises(errors.ValidationError) as info:
        launch_mod.launch(provider=provider, spec=spec)
    assert "yarn" in str(info.value) and "has only hdfs" in str(info.value)
    assert "create-image" in info.value.hint
    assert not [c for c in provider.calls if c.startswith("create")]


def test_an_image_not_baked_by_create_image_is_refused_before_creating(key):
    provider = _ImageFlavorProvider(key_pub=key.with_name("id_a.pub").read_text(),
                                    image_props={}, ram=8192)
    with pytest.raises(errors.ValidationError) as info:
        launch_mod.launch(provider=provider, spec=_spec(key, deploy=True))
    assert "was not made by `spark-openstack create-image`" in str(info.value)
    assert "--no-deploy" in info.value.hint
    assert not [c for c in provider.calls if c.startswith("create")]
    # --no-deploy gets bare servers from it
    plan = launch_mod.validate_launch(provider=provider, spec=_spec(key, deploy=False))
    assert plan.image.properties == {}


def _srv(run, created_at, name="demo-master"):
    return types.SimpleNamespace(id=f"{run}-{name}", name=name, created_at=created_at,
                                 attached_volumes=[],
                                 metadata={"spark_openstack_cluster": "demo",
                                           "spark_openstack_run": run})


class _Listing:
    def __init__(self, servers):
        self.servers = servers

    def cluster_servers(self, name):
        return list(self.servers)


@pytest.mark.parametrize("mine, theirs, i_win", [
    ("aaaa", "bbbb", True),       # same second: the smaller run id goes on
    ("bbbb", "aaaa", False),
])
def test_of_two_same_name_launches_exactly_one_goes_on(mine, theirs, i_win):
    stamp = "2026-11-24T13:00:01Z"
    listing = _Listing([_srv(mine, stamp), _srv(theirs, stamp),
                        _srv(theirs, stamp, "demo-worker-1")])
    if i_win:
        launch_mod._ensure_sole_launch(provider=listing, cluster="demo", run_id=mine)
    else:
        with pytest.raises(errors.ClusterExistsError, match="started first"):
            launch_mod._ensure_sole_launch(provider=listing, cluster="demo", run_id=mine)
    # the earlier run wins whatever its id
    early = _Listing([_srv("zzzz", "2026-11-24T13:00:01Z"), _srv("aaaa", "2026-11-24T13:00:02Z")])
    launch_mod._ensure_sole_launch(provider=early, cluster="demo", run_id="zzzz")
    with pytest.raises(errors.ClusterExistsError):
        launch_mod._ensure_sole_launch(provider=early, cluster="demo", run_id="aaaa")


def test_a_rollback_deletes_only_its_own_runs_servers():
    class Cloud(_Listing):
        deleted = None

        def cluster_floating_ips(self, *, cluster, servers):
            return []

        def delete_servers(self, *, server_ids, wait, timeout):
            self.deleted = set(server_ids)

        def delete_security_group(self, gid):
            self.group = gid

        def delete_server_group(self, gid):
            raise AssertionError("no server group was recorded")

        def has_volume_service(self):
            return False

        def find_security_group(self, name):
            raise AssertionError("a rollback never looks groups up by name")

        def find_server_groups(self, name):
            raise AssertionError("a rollback never looks groups up by name")
    cloud = Cloud([_srv("mine", "t1"), _srv("mine", "t1", "demo-worker-1"),
                   _srv("theirs", "t0")])
    ledger.delete_resources(provider=cloud, cluster="demo", server_ids=set(),
                              floating_ip_ids=set(), security_group_id="sg-mine",
                              server_group_ids=set(), discover=True, run_id="mine")
    assert cloud.deleted == {"mine-demo-master", "mine-demo-worker-1"}
    assert cloud.group == "sg-mine"


def test_an_interrupted_destroy_names_what_is_left_and_how_to_finish():
    class Cloud(_Listing):
        def cluster_floating_ips(self, *, cluster, servers):
            return []

        def delete_floating_ip(self, fid):
            pass

        def delete_servers(self, *, server_ids, wait, timeout):
            raise KeyboardInterrupt          # Ctrl-C while waiting for the deletes

        def find_security_group(self, name):
            return types.SimpleNamespace(id="sg", name=name)
    cloud = Cloud([_srv("r1", "t0"), _srv("r1", "t0", "demo-worker-1")])
    with pytest.raises(errors.Interrupted) as info:
        ledger.destroy(provider=cloud, cluster="demo")
    message = str(info.value)
    assert "destroy of 'demo' interrupted" in message
    assert "demo-master, demo-worker-1" in message and "spark-openstack-demo" in message
    assert "destroy -c demo` again" in message and info.value.exit_code == 130


@pytest.mark.parametrize("creates", [False, True])
def test_ctrl_c_abandons_look_ups_at_once_but_waits_for_creates(creates):
    """A stalled look-up must not hold a Ctrl-C; a create in flight is waited for, so what
    it made reaches the ledger before the rollback reads it."""
    import os
    import signal
    import time
    finished = threading.Event()

    def slow_call():
        time.sleep(1.5)
        finished.set()
        return "made"
    # Python's own Ctrl-C (an earlier CLI test may have left its handler installed)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        began = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_calls({"slow": slow_call}, what="calls", finish_on_interrupt=creates)
        took = time.monotonic() - began
    finally:
        signal.signal(signal.SIGINT, previous)
    if creates:
        assert finished.is_set() and took >= 1.4
    else:
        assert not finished.is_set() and took < 1.0
    finished.wait(3)


def test_destroy_with_the_callers_listing_lists_the_project_no_more():
    """The CLI lists the cluster once (for the confirmation) and destroy reuses it."""
    class Cloud(_Listing):
        listings = 0
        deleted = None

        def cluster_servers(self, name):
            self.listings += 1
            return super().cluster_servers(name)

        def cluster_floating_ips(self, *, cluster, servers):
            return []

        def delete_servers(self, *, server_ids, wait, timeout):
            self.deleted = set(server_ids)

        def find_security_group(self, name):
            return None

        def find_server_groups(self, name):
            return []

        def has_volume_service(self):
            return False
    cloud = Cloud([_srv("r1", "t0"), _srv("r1", "t0", "demo-worker-1")])
    servers = cloud.cluster_servers("demo")
    result = ledger.destroy(provider=cloud, cluster="demo", servers=servers)
    assert cloud.listings == 1 and result["servers"] == 2
    assert cloud.deleted == {"r1-demo-master", "r1-demo-worker-1"}
    ledger.destroy(provider=cloud, cluster="demo")          # on its own: it lists itself
    assert cloud.listings == 2


def test_a_ledger_records_from_many_threads_and_says_what_it_made():
    made = ledger.Ledger(cluster="demo")
    assert not made.anything() and made.made() == []
    run_calls({f"w{i}": (lambda i=i: made.add_server(f"demo-worker-{i}", f"id{i}"))
               for i in range(8)}, what="record")
    made.add_floating_ip("fip")
    made.security_group_id = "sg"
    assert made.anything() and len(made.server_ids) == 8
    assert made.made() == ["8 server(s)", "security group", "floating IP"]
    assert len(made.run_id) == 8 and made.run_id != ledger.Ledger(cluster="demo").run_id


def test_login_plan_reads_the_cluster_once_and_lets_ssh_pick_a_key_it_cannot_find():
    listings = []

    class Counting(_FactsProvider):
        def cluster_servers(self, cluster):
            listings.append(cluster)
            return self.servers

        def find_keypair(self, name):
            raise errors.NotFoundError(f"keypair {name!r} not found")

    provider = Counting([_server("c-master", "master", spark_openstack_ssh_user="debian")])
    plan = inventory.login_plan(provider=provider, cluster="c", forward_ui=True,
                                command=["hostname"])
    assert listings == ["c"]
    assert "keypair 'kp' not found" in plan.note and "--identity-file" in plan.note
    assert "-i" not in plan.argv and plan.argv[-3:] == ["--", "10.0.0.5", "hostname"]
    assert plan.ui_urls and all(u.startswith("http://localhost:") for u in plan.ui_urls.values())
    # with a key given, it is used as given
    plan = inventory.login_plan(provider=provider, cluster="c", identity_file="/k/id")
    assert plan.note == "" and plan.argv[plan.argv.index("-i") + 1] == "/k/id"
