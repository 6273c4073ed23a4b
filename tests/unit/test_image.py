"""create-image's run ledger without a cloud: every exit deletes exactly what the run made,
found by its run id even when a create's answer was lost, and never another run's things."""
from __future__ import annotations

import types

import pytest

from spark_openstack import errors, image, ledger
from spark_openstack.image import builder_description
from spark_openstack.ledger import ImageLedger, run_in_text
from spark_openstack.model import BUILDER_METADATA_KEY, META_CLUSTER, META_RUN
from spark_openstack.progress import RecordingProgress
from support.cloud import FakeCloud

OTHER = "0the4run"       # another create-image run (same image name) or a launch


def _ns(**kw):
    return types.SimpleNamespace(**kw)


#: the base images the cloud offers (the project's own images come and go)
BASE_IMAGES = (_ns(id="base", name="debian-12", status="active"),
               _ns(id="base-fedora", name="fedora-41", os_distro="fedora", os_version="41",
                   status="active"),
               _ns(id="base-ubuntu", name="ubuntu-24.04", os_distro="ubuntu",
                   os_version="24.04", status="active"))
#: what each create verb makes, by the kind create-image's ledger records
VERB = {"secgroup": "create_security_group", "server": "create_server",
        "fip": "attach_floating_ip", "image": "snapshot_server"}


def _cloud(*, lose=(), late=(), existing_image=False):
    """The one fake cloud with the base images, flavor m1.small and keypair kp; ``lose``
    and ``late`` name kinds (``VERB``) whose create is cut off."""
    cloud = FakeCloud(keypairs={"kp": "ssh-ed25519 AAAA x"},
                      lose={VERB[k] for k in lose}, late={VERB[k] for k in late})
    cloud.images = list(BASE_IMAGES)
    if existing_image:
        cloud.images.append(_ns(id="old", name="img", status="active", properties={}))
    return cloud


def _others(cloud):
    """Things of another run of the same image name, and a cluster's server."""
    desc = builder_description("img", OTHER)
    srv = _ns(id="other-srv", name="img-builder", status="ACTIVE", addresses={},
              metadata={BUILDER_METADATA_KEY: "img", META_RUN: OTHER})
    cloud.servers += [srv, _ns(id="cluster-srv", name="c-master", status="ACTIVE",
                               addresses={}, metadata={META_CLUSTER: "c", META_RUN: OTHER})]
    cloud.security_groups.append(_ns(id="other-sg",
                                     name=f"spark-openstack-img-builder-{OTHER}",
                                     description=desc))
    cloud.floating_ips.append(_ns(id="other-fip", description=desc,
                                  port_details={"device_id": "other-srv"}))
    # the other run's snapshot (same name) is listed from the first listing on: it was not
    # there yet when this run checked the name was free
    cloud.landing.append(("images", _ns(id="other-img", name="img", status="active",
                                        properties={META_RUN: OTHER},
                                        instance_uuid="other-srv")))
    return {"other-srv", "cluster-srv", "other-sg", "other-fip", "other-img"}


def _left(cloud):
    cloud.list_images()                                   # anything in flight has landed
    return {x.id for coll in (cloud.servers, cloud.security_groups, cloud.floating_ips,
                              cloud.images) for x in coll} - {i.id for i in BASE_IMAGES}


def _create(cloud, **over):
    kw = dict(conn_provider=cloud, name="img", base_image="debian-12", flavor="m1.small",
              keypair="kp", key_filename=None, spark_version="4.3.0", hadoop_version=None,
              allowed_cidrs=["10.0.0.0/8"], floating_ip=True, progress=RecordingProgress())
    kw.update(over)
    return image.create_image(**kw)


@pytest.fixture()
def fast(monkeypatch):
    """SSH and the bake succeed at once; a cut-off create settles within a short wait."""
    monkeypatch.setattr(ledger, "SETTLE_SECONDS", 0.5)
    monkeypatch.setattr(image.ssh, "wait_for_ssh", lambda **kw: None)
    monkeypatch.setattr(image.ssh, "connect", lambda **kw: _ns(close=lambda: None))
    monkeypatch.setattr(image.ssh, "run", lambda *a, **kw: None)
    monkeypatch.setattr(image, "wait_for_bake", lambda conn, **kw: (
        '{"spark_version": "4.3.0", "java_version": "17"}'))


# --------------------------------------------------------------------------- discovery

def test_run_mark_round_trips_and_other_text_has_none():
    assert run_in_text(builder_description("img", "ab12cd34")) == "ab12cd34"
    assert run_in_text("spark-openstack:img-builder") is None
    assert run_in_text(None) is None


def test_discover_finds_only_this_runs_things():
    cloud = _cloud()
    _others(cloud)
    run = ImageLedger(run_id="0ur0run0")
    desc = builder_description("img", run.run_id)
    cloud.servers.append(_ns(id="s1", metadata={BUILDER_METADATA_KEY: "img",
                                                META_RUN: run.run_id}))
    cloud.servers.append(_ns(id="launch", metadata={META_CLUSTER: "c", META_RUN: run.run_id}))
    cloud.security_groups.append(_ns(id="g1", description=desc))
    cloud.floating_ips += [_ns(id="f1", description=desc, port_details=None),
                   _ns(id="f2", description="", port_details={"device_id": "s1"})]
    cloud.images += [_ns(id="i1", properties={META_RUN: run.run_id}),
                     _ns(id="i2", properties={}, instance_uuid="s1"),
                     # a snapshot of a builder of this run inherits nothing else's run
                     _ns(id="i3", properties={META_RUN: OTHER}, instance_uuid="elsewhere")]
    found, problems = run.discover(provider=cloud)
    assert found == {"server": {"s1"}, "secgroup": {"g1"}, "fip": {"f1", "f2"},
                     "image": {"i1", "i2"}}
    assert problems == []


def test_cleanup_deletes_recorded_and_discovered_in_order_and_nothing_else():
    cloud = _cloud()
    others = _others(cloud)
    run = ImageLedger(run_id="0ur0run0", started=True)
    desc = builder_description("img", run.run_id)
    cloud.servers.append(_ns(id="s1", metadata={BUILDER_METADATA_KEY: "img",
                                                META_RUN: run.run_id}))
    cloud.security_groups.append(_ns(id="g1", description=desc))          # lost answer: unrecorded
    cloud.floating_ips.append(_ns(id="f1", description=desc, port_details=None))
    cloud.images.append(_ns(id="i1", properties={META_RUN: run.run_id}))
    run.record("server", "s1")
    summary = run.delete(provider=cloud, progress=RecordingProgress())
    assert _left(cloud) == others
    assert [c for c in cloud.calls if c.startswith("delete_")] == [
        "delete_floating_ip", "delete_servers", "delete_security_group", "delete_image"]
    assert cloud.kwargs["delete_servers"]["wait"] is True
    assert "builder server" in summary and "security group" in summary


def test_cleanup_keeps_the_finished_image():
    cloud = _cloud()
    run = ImageLedger(run_id="0ur0run0", started=True)
    cloud.images.append(_ns(id="done", properties={META_RUN: run.run_id}))
    run.record("image", "done")
    run.delete(provider=cloud, keep_image="done", progress=RecordingProgress())
    assert _left(cloud) == {"done"} and cloud.deleted == {}


def test_cleanup_of_a_run_that_created_nothing_asks_the_cloud_nothing():
    cloud = _cloud()
    assert ImageLedger().delete(provider=cloud, progress=RecordingProgress()) == \
        "nothing had been created."
    assert cloud.calls == []


def test_cleanup_waits_for_a_cut_off_create_to_land():
    cloud = _cloud()
    run = ImageLedger(run_id="0ur0run0", started=True, pending={"server"})
    landing = _ns(id="late", metadata={BUILDER_METADATA_KEY: "img", META_RUN: run.run_id})
    rounds = iter([[], [], [landing]])
    original = cloud.list_servers

    def list_servers():
        cloud.servers += next(rounds, [])
        return original()
    cloud.list_servers = list_servers
    run.delete(provider=cloud, progress=RecordingProgress(), settle=5, interval=0.01)
    assert cloud.deleted == {"servers": ["late"]}


def test_cleanup_gives_up_waiting_for_a_create_that_never_landed():
    cloud = _cloud()
    run = ImageLedger(run_id="0ur0run0", started=True, pending={"image"})
    assert run.delete(provider=cloud, progress=RecordingProgress(), settle=0.05,
                    interval=0.01) == "nothing had been created."


def test_cleanup_reports_what_it_could_not_delete():
    cloud = _cloud()
    run = ImageLedger(run_id="0ur0run0", started=True)
    cloud.security_groups.append(_ns(id="g1", description=builder_description("img", run.run_id)))

    def stuck(gid):
        raise errors.TimeoutError_("delete security group g1: not done after 120s")
    cloud.delete_security_group = stuck
    progress = RecordingProgress()
    summary = run.delete(provider=cloud, progress=progress)
    assert "security group g1" in summary
    assert any("delete by hand" in e[1] for e in progress.events if e[0] == "message")


# --------------------------------------------------------------------------- create_image

def test_success_stamps_the_run_everywhere_and_leaves_only_the_image(fast):
    cloud = _cloud()
    others = _others(cloud)
    image_id = _create(cloud)
    assert _left(cloud) == others | {image_id}
    run_id = cloud.kwargs["create_server"]["metadata"][META_RUN]
    assert cloud.kwargs["create_server"]["metadata"][BUILDER_METADATA_KEY] == "img"
    group = cloud.kwargs["create_security_group"]
    assert group["name"] == f"spark-openstack-img-builder-{run_id}"
    assert run_in_text(group["description"]) == run_id
    assert run_in_text(cloud.kwargs["attach_floating_ip"]["description"]) == run_id
    assert cloud.kwargs["snapshot_server"]["metadata"] == {META_RUN: run_id}
    [sg_id] = cloud.deleted["security_groups"]
    assert cloud.kwargs["create_server"]["security_groups"] == [sg_id]      # by id, not name
    assert run_id != OTHER


@pytest.mark.parametrize("kind", ["secgroup", "server", "fip", "image"])
def test_a_lost_create_answer_is_found_and_deleted(fast, kind):
    cloud = _cloud(lose={kind})
    others = _others(cloud)
    with pytest.raises(errors.Interrupted) as err:
        _create(cloud)
    assert err.value.exit_code == 130
    assert _left(cloud) == others
    phase = "snapshot" if kind == "image" else "boot builder"
    assert f"in the {phase} phase" in err.value.message
    assert "deleted what this run made" in err.value.message


@pytest.mark.parametrize("kind", ["server", "image"])
def test_a_create_still_in_flight_is_waited_for_and_deleted(fast, kind):
    cloud = _cloud(late={kind})
    others = _others(cloud)
    with pytest.raises(errors.Interrupted):
        _create(cloud)
    assert not cloud.landing           # the cleanup waited for it to land (and deleted it)
    assert _left(cloud) == others


def test_the_spec_decides_what_is_baked_and_bad_input_touches_no_cloud(fast):
    from spark_openstack.config import ImageSpec
    cloud = _cloud()
    spec = ImageSpec(name="img", base_image="debian-12", flavor="m1.small", keypair="kp",
                     allowed_cidrs=("10.0.0.0/8",), hadoop_version=None,
                     mirror="http://10.213.0.1:8099")
    image.create_image(conn_provider=cloud, spec=spec, key_filename=None,
                       progress=RecordingProgress())
    user_data = cloud.kwargs["create_server"]["user_data"]
    assert "SPARK_URL=http://10.213.0.1:8099/spark/spark-4.3.0/" in user_data
    assert "HADOOP_URL=''" in user_data
    with pytest.raises(TypeError, match="not both"):
        image.create_image(conn_provider=cloud, spec=spec, key_filename=None, name="x")
    cloud = _cloud()
    with pytest.raises(errors.UsageError, match="--allowed-cidr"):
        _create(cloud, allowed_cidrs=[])
    assert cloud.calls == []                # not even a look-up


def test_a_base_image_that_says_it_is_not_debian_or_ubuntu_is_refused_first(fast):
    cloud = _cloud()
    with pytest.raises(errors.ValidationError, match="fedora 41 by its os_distro") as err:
        _create(cloud, base_image="fedora-41")
    assert "Debian 12/13 or Ubuntu" in err.value.hint
    assert cloud.changes == [] and "list_servers" not in cloud.calls    # nothing made
    _create(cloud, base_image="ubuntu-24.04", apt_proxy="http://10.0.0.5:3142")
    assert cloud.kwargs["create_server"]["image_id"] == "base-ubuntu"
    assert "APT_PROXY=http://10.0.0.5:3142\n" in cloud.kwargs["create_server"]["user_data"]


def test_the_image_records_the_java_package_release_and_apt_proxy():
    marker = {"spark_version": "4.3.0", "java_version": "21.0.9", "os_release": "debian 13",
              "java_package": "openjdk-21-jre-headless", "apt_proxy": "http://10.0.0.5:3142"}
    props = image.image_properties(marker)
    assert (props["java_package"], props["os_release"], props["apt_proxy"]) == (
        "openjdk-21-jre-headless", "debian 13", "http://10.0.0.5:3142")
    props = image.image_properties({"spark_version": "4.3.0", "java_version": "17"})
    assert (props["java_package"], props["apt_proxy"]) == ("none", "none")


def test_an_existing_image_name_is_refused_before_anything_is_made(fast):
    cloud = _cloud(existing_image=True)
    with pytest.raises(errors.ValidationError, match="already exists"):
        _create(cloud)
    assert cloud.changes == [] and "list_servers" not in cloud.calls    # nothing made


def test_a_failed_bake_deletes_the_run_and_keeps_the_error(fast, monkeypatch):
    cloud = _cloud()
    others = _others(cloud)

    def failed(conn, **kw):
        raise errors.DeployError("the image bake failed")
    monkeypatch.setattr(image, "wait_for_bake", failed)
    with pytest.raises(errors.DeployError, match="bake failed"):
        _create(cloud)
    assert _left(cloud) == others
