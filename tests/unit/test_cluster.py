"""The launch engine, its ledger, key matching and the inventory without a cloud:
validation order, all-or-nothing."""
from __future__ import annotations

import dataclasses
import threading
import types

import pytest

from spark_openstack import errors, inventory, keys, ledger
from spark_openstack import launch as launch_mod
from spark_openstack.executor import run_calls
from spark_openstack.config import LaunchSpec
from spark_openstack.model import ClusterFacts, Node
from support.cloud import FakeCloud
from support.cloud import server as cloud_server
from support.keys import keygen


def _keygen(path):
    return keygen(path)


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
    return cloud_server(name, cluster="c", role=role, metadata=meta, ip="10.0.0.5")


def _FactsProvider(servers):
    """Just what ``cluster_facts`` reads: servers with metadata and their addresses."""
    return FakeCloud(servers=servers)


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


def _cloud(key, *, image_props=None, ram=512, vcpus=1, disk=1, **kw):
    """The one fake cloud holding keypair ``kp`` (``key``'s public half), image debian-12
    (``image_props``: what create-image wrote) and flavor m1.small (``ram`` MB)."""
    return FakeCloud(keypairs={"kp": key.with_name("id_a.pub").read_text()},
                     images={"debian-12": image_props or {}},
                     flavors={"m1.small": (vcpus, ram, disk)}, **kw)


def _stop_at_boot(message="stop"):
    """The servers' boot fails: a launch's rollback runs."""
    return {"wait_for_servers": errors.CloudError(message)}


def _spec(key, **over):
    base = dict(cluster_name="demo", workers=2, keypair="kp", image="debian-12",
                flavor="m1.small", identity_file=str(key), allowed_cidrs=("10.0.0.0/8",),
                deploy=False)
    base.update(over)
    return LaunchSpec(**base)


def test_existing_cluster_refused_before_creating(key):
    provider = _cloud(key, servers=[cloud_server("demo-master")])
    with pytest.raises(errors.ClusterExistsError, match="destroy -c demo"):
        launch_mod.launch(provider=provider, spec=_spec(key))
    assert "cluster_servers" in provider.calls and provider.changes == []   # nothing made


def _opened(provider):
    return set(provider.kwargs["create_security_group"].get("ui_rules", ()))


def test_open_ui_cidr_opens_the_spark_uis_only(key):
    from spark_openstack.progress import RecordingProgress
    provider = _cloud(key, fail=_stop_at_boot())
    progress = RecordingProgress()
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=_spec(key, open_ui_cidrs=("192.0.2.0/24",)),
                       progress=progress)
    assert _opened(provider) == {("192.0.2.0/24", 8080), ("192.0.2.0/24", 4040)}
    assert provider.need.security_group_rules == 2 + 2 + 1 + 2
    assert not [e for e in progress.events if e[0] == "message" and "WARNING" in e[1]]


def test_open_unsafe_ui_cidr_opens_yarn_and_hdfs_and_warns(key):
    from spark_openstack.progress import RecordingProgress
    provider = _cloud(key, fail=_stop_at_boot())
    progress = RecordingProgress()
    spec = _spec(key, open_ui_cidrs=("192.0.2.0/24", "198.51.100.7/32"),
                 unsafe_ui_cidrs=("198.51.100.7/32",))
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=spec, progress=progress)
    opened = _opened(provider)
    assert {p for c, p in opened if c == "192.0.2.0/24"} == {8080, 4040}
    assert {p for c, p in opened if c == "198.51.100.7/32"} == {8080, 4040, 8088, 9870}
    rules = provider.kwargs["create_security_group"]["ui_rules"]
    assert len(rules) == len(opened) == 6   # no duplicate rules
    assert provider.need.security_group_rules == 2 + 2 + 1 + 6
    warnings = [e[1] for e in progress.events if e[0] == "message" and "WARNING" in e[1]]
    assert len(warnings) == 1
    assert all(w in warnings[0] for w in ("8088", "9870", "198.51.100.7/32", "login -L"))


def test_quota_need_counts_master_flavor_and_group_members(key):
    provider = _cloud(key)
    launch_mod.validate_launch(provider=provider, spec=_spec(key, workers=4))
    # the quotas are read beside the look-ups and checked against that reading, once
    assert provider.calls.count("read_quotas") == 1
    assert provider.quota_checks == [provider.quota_state]
    need = provider.need
    assert (need.servers, need.vcpus, need.ram_mb, need.floating_ips, need.ports,
            need.server_group_members) == (5, 5, 2560, 1, 5, 5)


@pytest.mark.parametrize("failure,expected", [
    (errors.CloudError("[demo-worker-2] server went to ERROR: No valid host was found."),
     errors.CloudError),
    (KeyboardInterrupt(), errors.Interrupted),
])
def test_failure_after_create_deletes_exactly_what_was_made(key, failure, expected):
    provider = _cloud(key, fail={"wait_for_servers": failure})
    with pytest.raises(expected) as err:
        launch_mod.launch(provider=provider, spec=_spec(key))
    assert provider.deleted["servers"] == ["id-demo-master", "id-demo-worker-1",
                                           "id-demo-worker-2"]
    assert provider.deleted["security_groups"] == ["sg1"]
    assert provider.deleted["server_groups"] == ["grp1"]
    # the floating IP was allocated before the boot: it is this run's, and deleted too
    assert provider.deleted["floating_ips"] == ["fip1"]
    assert provider.servers == [] and provider.floating_ips == []
    assert "deleted everything this launch created" in str(err.value)
    assert "boot phase" in str(err.value)
    if expected is errors.CloudError:
        assert "[demo-worker-2]" in str(err.value)


def test_workers_are_created_in_one_multi_create_request(key):
    provider = _cloud(key, fail=_stop_at_boot())
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=_spec(key, workers=5))
    assert provider.calls.count("create_server") == 2  # master + one request for 5 workers
    assert len(provider.deleted["servers"]) == 6


def test_groups_and_floating_ip_are_made_before_the_servers_and_the_ip_goes_to_the_master(
        key):
    provider = _cloud(key, fail=_stop_at_boot())
    with pytest.raises(errors.CloudError):
        launch_mod.launch(provider=provider, spec=_spec(key, workers=3))
    first = provider.calls.index("create_server")
    assert {"create_security_group", "create_server_group",
            "allocate_floating_ip"} <= set(provider.calls[:first])
    # associated while the servers were still being waited for (the wait then failed)
    assert provider.associations == [("fip1", "port-of-id-demo-master")]


def test_keep_on_failure_keeps_and_says_how_to_clean_up(key):
    provider = _cloud(key, fail=_stop_at_boot("boom"))
    with pytest.raises(errors.CloudError) as err:
        launch_mod.launch(provider=provider, spec=_spec(key, keep_on_failure=True))
    assert provider.deleted == {}
    assert "destroy -c demo" in str(err.value)


def test_a_flavor_too_small_for_the_images_daemons_is_refused_before_creating(key):
    yarn_image = {"spark_version": "4.3.0", "hadoop_version": "3.4.1",
                  "hadoop_services": "hdfs,yarn"}
    provider = _cloud(key, image_props=yarn_image, ram=2048, vcpus=2, disk=20)
    with pytest.raises(errors.ValidationError) as info:
        launch_mod.launch(provider=provider, spec=_spec(key, deploy=True))
    # 3481 MB: YARN must hold the AM (896) and one executor (896) together (issue 23)
    assert "--flavor m1.small" in str(info.value) and "3481 MB" in str(info.value)
    assert not [c for c in provider.calls if c.startswith("create")]


def test_an_hdfs_only_image_fits_two_gb_workers(key):
    """The plan follows what the image can run: no YARN daemons, no YARN memory."""
    hdfs_image = {"spark_version": "4.3.0", "hadoop_version": "3.4.2",
                  "hadoop_services": "hdfs"}
    provider = _cloud(key, image_props=hdfs_image, ram=2048, vcpus=2, disk=20)
    plan = launch_mod.validate_launch(provider=provider, spec=_spec(key, deploy=True))
    assert plan.flavor.ram == 2048


def test_services_asked_of_an_image_without_them_are_refused_before_creating(key):
    """--services yarn on an HDFS-only image: refused with both named; the default list
    quietly drops what the image lacks (test above)."""
    hdfs_image = {"spark_version": "4.3.0", "hadoop_version": "3.4.2",
                  "hadoop_services": "hdfs"}
    provider = _cloud(key, image_props=hdfs_image, ram=8192, vcpus=2, disk=20)
    spec = dataclasses.replace(_spec(key, deploy=True), services=("hdfs", "yarn", "spark"),
                               services_asked=True)
    with pytest.raises(errors.ValidationError) as info:
        launch_mod.launch(provider=provider, spec=spec)
    assert "yarn" in str(info.value) and "has only hdfs" in str(info.value)
    assert "create-image" in info.value.hint
    assert not [c for c in provider.calls if c.startswith("create")]


def test_an_image_not_baked_by_create_image_is_refused_before_creating(key):
    provider = _cloud(key, image_props={}, ram=8192, vcpus=2, disk=20)
    with pytest.raises(errors.ValidationError) as info:
        launch_mod.launch(provider=provider, spec=_spec(key, deploy=True))
    assert "was not made by `spark-openstack create-image`" in str(info.value)
    assert "--no-deploy" in info.value.hint
    assert not [c for c in provider.calls if c.startswith("create")]
    # --no-deploy gets bare servers from it
    plan = launch_mod.validate_launch(provider=provider, spec=_spec(key, deploy=False))
    assert plan.image.properties == {}


def _srv(run, created_at, name="demo-master"):
    return cloud_server(name, sid=f"{run}-{name}", created_at=created_at,
                        metadata={"spark_openstack_run": run})


def _Listing(servers, **kw):
    """The one fake cloud listing these servers."""
    return FakeCloud(servers=servers, **kw)


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
    by_name = AssertionError("a rollback never looks groups up by name")
    cloud = _Listing([_srv("mine", "t1"), _srv("mine", "t1", "demo-worker-1"),
                      _srv("theirs", "t0")],
                     fail={"delete_server_group": AssertionError("no server group was recorded"),
                           "find_security_group": by_name, "find_server_groups": by_name})
    ledger.delete_resources(provider=cloud, cluster="demo", server_ids=set(),
                              floating_ip_ids=set(), security_group_id="sg-mine",
                              server_group_ids=set(), discover=True, run_id="mine")
    assert set(cloud.deleted["servers"]) == {"mine-demo-master", "mine-demo-worker-1"}
    assert cloud.deleted["security_groups"] == ["sg-mine"]


def test_an_interrupted_destroy_names_what_is_left_and_how_to_finish():
    cloud = _Listing([_srv("r1", "t0"), _srv("r1", "t0", "demo-worker-1")],
                     fail={"delete_servers": KeyboardInterrupt()})  # Ctrl-C in the deletes
    cloud.security_groups.append(types.SimpleNamespace(id="sg", name="spark-openstack-demo"))
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
    cloud = _Listing([_srv("r1", "t0"), _srv("r1", "t0", "demo-worker-1")])
    servers = cloud.cluster_servers("demo")
    result = ledger.destroy(provider=cloud, cluster="demo", servers=servers)
    assert cloud.calls.count("cluster_servers") == 1 and result["servers"] == 2
    assert "list_servers" not in cloud.calls and "all_cluster_servers" not in cloud.calls
    assert set(cloud.deleted["servers"]) == {"r1-demo-master", "r1-demo-worker-1"}
    cloud.servers = [_srv("r1", "t0"), _srv("r1", "t0", "demo-worker-1")]
    ledger.destroy(provider=cloud, cluster="demo")          # on its own: it lists itself
    assert cloud.calls.count("cluster_servers") == 2


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
    # the cloud has no keypair 'kp' (find_keypair: NotFoundError)
    provider = _FactsProvider([_server("c-master", "master", spark_openstack_ssh_user="debian")])
    plan = inventory.login_plan(provider=provider, cluster="c", forward_ui=True,
                                command=["hostname"])
    assert provider.calls.count("cluster_servers") == 1
    assert provider.kwargs["cluster_servers"] == {"cluster": "c"}
    assert "keypair 'kp' not found" in plan.note and "--identity-file" in plan.note
    assert "-i" not in plan.argv and plan.argv[-3:] == ["--", "10.0.0.5", "hostname"]
    assert plan.ui_urls and all(u.startswith("http://localhost:") for u in plan.ui_urls.values())
    # with a key given, it is used as given
    plan = inventory.login_plan(provider=provider, cluster="c", identity_file="/k/id")
    assert plan.note == "" and plan.argv[plan.argv.index("-i") + 1] == "/k/id"
