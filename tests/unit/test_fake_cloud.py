"""support.cloud.FakeCloud, the unit tests' one fake cloud, sits behind the provider's
verbs: every public method of OpenStackProvider, with the same parameters."""
from __future__ import annotations

import inspect

import pytest

from spark_openstack import errors
from spark_openstack.provider import OpenStackProvider
from support.cloud import FakeCloud, server

NOT_VERBS = {"connect"}          # builds a provider; no fake needs it


def _verbs():
    return sorted(n for n in dir(OpenStackProvider)
                  if not n.startswith("_") and n not in NOT_VERBS)


def _shape(function):
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("verb", _verbs())
def test_every_verb_of_the_provider_has_the_same_parameters(verb):
    real = inspect.getattr_static(OpenStackProvider, verb)
    fake = inspect.getattr_static(FakeCloud, verb, None)
    assert fake is not None, f"FakeCloud lacks {verb}"
    if isinstance(real, property):
        assert FakeCloud().request_count == 0
        return
    assert _shape(getattr(FakeCloud, verb)) == _shape(getattr(OpenStackProvider, verb))


def test_a_verb_the_provider_lacks_is_refused():
    with pytest.raises(AssertionError, match="unexpected provider call frobnicate"):
        FakeCloud().frobnicate()


def test_the_cloud_keeps_what_was_made_and_records_deletes():
    cloud = FakeCloud(servers=[server("old-master", cluster="old")])
    first = cloud.create_server(name="demo-worker", image_id="i", flavor_id="f",
                                network_id="n", metadata={"spark_openstack_cluster": "demo"},
                                count=2)
    assert first == "id-demo-worker-1"
    assert sorted(cloud.all_cluster_servers()) == ["demo", "old"]
    assert [s.name for s in cloud.cluster_servers("demo")] == ["demo-worker-1", "demo-worker-2"]
    group = cloud.create_security_group(cluster="demo", ssh_cidrs=["10.0.0.0/8"])
    assert cloud.find_security_group("spark-openstack-demo") is group
    fip, _ = cloud.attach_floating_ip(server_id=first, pool_network_id="pub", cluster="demo")
    assert [f.id for f in cloud.cluster_floating_ips(cluster="demo")] == [fip]
    cloud.delete_servers(server_ids=[first])
    cloud.delete_floating_ip(fip)
    assert cloud.deleted == {"servers": [first], "floating_ips": [fip]}
    assert cloud.changes == ["create_server", "create_security_group", "attach_floating_ip",
                             "delete_servers", "delete_floating_ip"]
    with pytest.raises(errors.NotFoundError):
        cloud.find_image("nope")


def test_scripted_failures_and_nova_like_power_states():
    cloud = FakeCloud(servers=[server("demo-master")],
                      fail={"delete_servers": errors.CloudError("boom")})
    with pytest.raises(errors.CloudError, match="boom"):
        cloud.delete_servers(server_ids=["id-demo-master"])
    cloud.stop_server("id-demo-master")
    assert cloud.cluster_servers("demo")[0].status == "ACTIVE"   # until the wait sees it
    done = cloud.wait_for_servers(server_ids=["id-demo-master"], timeout=1, status="SHUTOFF")
    assert done["id-demo-master"].status == "SHUTOFF"
    with pytest.raises(AssertionError, match="refuses to stop a SHUTOFF server"):
        cloud.stop_server("id-demo-master")
    cloud.start_server("id-demo-master")
    cloud.wait_for_servers(server_ids=["id-demo-master"], timeout=1)
    assert cloud.events == ["stop_server demo-master", "wait SHUTOFF demo-master",
                            "start_server demo-master", "wait ACTIVE demo-master"]


def test_a_lost_answer_and_a_create_in_flight():
    cloud = FakeCloud(lose={"create_security_group"}, late={"snapshot_server"})
    with pytest.raises(KeyboardInterrupt):
        cloud.create_security_group(cluster="demo", ssh_cidrs=[])
    assert [g.name for g in cloud.security_groups] == ["spark-openstack-demo"]   # made
    with pytest.raises(KeyboardInterrupt):
        cloud.snapshot_server(server_id="s", name="img")
    assert "img" not in [i.name for i in cloud.images] and cloud.landing
    assert "img" in [i.name for i in cloud.list_images()] and not cloud.landing
