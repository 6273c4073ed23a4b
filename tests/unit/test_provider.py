"""Provider boundary: SDK errors become project errors; quotas; the one-list poll."""
from __future__ import annotations

import types
import warnings

import pytest
import requests
from keystoneauth1 import exceptions as ks
from openstack import exceptions as sdk

from spark_openstack import errors
from spark_openstack.provider import (OpenStackProvider, QuotaNeed, naming, network,
                                      translate_errors,
                                      translate_exception, translating)


def _http(status, message="boom", details=None, cls=sdk.HttpException):
    response = requests.Response()
    response.status_code = status
    response.url = "http://cloud/x"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(message=message, response=response, details=details)


@pytest.mark.parametrize("exc,expected,needle", [
    (sdk.ConfigException("Cloud nope was not found."), errors.ConfigError, "--cloud NAME"),
    (ks.MissingRequiredOptions([]), errors.ConfigError, "openrc"),
    (ks.Unauthorized("bad creds"), errors.ConfigError, "credentials"),
    (ks.ConnectFailure("refused"), errors.CloudError, "auth_url"),
    (sdk.ResourceTimeout("slow"), errors.TimeoutError_, "slow"),
    (sdk.DuplicateResource("two of them"), errors.AmbiguousError, "two of them"),
    (_http(401), errors.ConfigError, "credentials"),
    (_http(403, "Quota exceeded for cores"), errors.QuotaError, "quota"),
    (_http(413, "OverLimit", "limit exceeded"), errors.QuotaError, "quota"),
    (_http(403, "Policy does not allow"), errors.CloudError, "policy"),
    (_http(404, "no such server", cls=sdk.NotFoundException), errors.NotFoundError, "not found"),
    (_http(409, "in use", cls=sdk.ConflictException), errors.CloudError, "409"),
    (_http(500, "kaboom"), errors.CloudError, "HTTP 500"),
    (sdk.ResourceFailure("went to ERROR"), errors.CloudError, "ERROR"),
    (sdk.SDKException("odd"), errors.CloudError, "odd"),
])
def test_translate_exception(exc, expected, needle):
    out = translate_exception(exc, action="create server")
    assert type(out) is expected
    assert needle in str(out)
    assert str(out).startswith("create server: ")


def test_quota_403_is_quota_error_not_permission():
    out = translate_exception(_http(403, "Quota exceeded for instances: Requested 3, "
                                         "but already used 9 of 10 instances"))
    assert isinstance(out, errors.QuotaError) and out.exit_code == 2


def test_decorator_and_context_manager_translate_and_pass_others_through():
    @translate_errors
    def fails():
        raise sdk.ResourceTimeout("too slow")

    with pytest.raises(errors.TimeoutError_) as err:
        fails()
    assert "fails: too slow" in str(err.value)
    assert isinstance(err.value.__cause__, sdk.ResourceTimeout)
    with pytest.raises(ValueError):  # programming errors are not disguised as cloud errors
        with translating("x"):
            raise ValueError("bug")
    with pytest.raises(errors.QuotaError):  # project errors pass untouched
        with translating("x"):
            raise errors.QuotaError("short")


class _FakeSession:
    def __init__(self):
        self.calls = 0

    def request(self, *args, **kwargs):
        self.calls += 1
        return "response"


def _provider_with(**services):
    conn = types.SimpleNamespace(session=_FakeSession(), current_project_id="p1", **services)
    return OpenStackProvider(conn)


def test_request_counter_counts_every_session_request():
    provider = _provider_with()
    assert provider.request_count == 0
    provider.conn.session.request("GET", "/servers")
    provider.conn.session.request("POST", "/servers")
    assert provider.request_count == 2


def _limits(**over):
    base = dict(instances=10, instances_used=8, total_cores=20, total_cores_used=19,
                total_ram=51200, total_ram_used=0, server_groups=10, server_groups_used=0,
                server_group_members=10)
    base.update(over)
    return types.SimpleNamespace(absolute=types.SimpleNamespace(**base))


class _Net:
    def __init__(self, quota=None, exc=None):
        self.quota, self.exc = quota, exc

    def get_quota(self, project, details=False):
        assert details is True and project == "p1"
        if self.exc:
            raise self.exc
        return self.quota


def test_check_quotas_names_each_short_quota_and_the_shortfall():
    quota = types.SimpleNamespace(
        security_groups={"limit": 10, "used": 10, "reserved": 0},
        security_group_rules={"limit": 100, "used": 0, "reserved": 0},
        floating_ips={"limit": 50, "used": 0, "reserved": 0},
        ports={"limit": -1, "used": 7, "reserved": 0})
    provider = _provider_with(compute=types.SimpleNamespace(get_limits=lambda: _limits()),
                              network=_Net(quota))
    with pytest.raises(errors.QuotaError) as err:
        provider.check_quotas(QuotaNeed(servers=3, vcpus=3, ram_mb=1024, security_groups=1,
                                        security_group_rules=6, floating_ips=1, ports=3,
                                        server_group_members=3, server_groups=1))
    text = str(err.value)
    assert "instances: need 3, 2 free (limit 10, used 8); short by 1" in text
    assert "vCPUs (cores): need 3, 1 free" in text and "short by 2" in text
    assert "security groups: need 1, 0 free" in text
    assert "RAM" not in text and "ports" not in text  # enough / unlimited


def test_check_quotas_passes_and_notes_unreadable_network_quota():
    provider = _provider_with(
        compute=types.SimpleNamespace(get_limits=lambda: _limits(instances_used=0,
                                                                 total_cores_used=0)),
        network=_Net(exc=_http(403, "forbidden", cls=sdk.ForbiddenException)))
    notes = provider.check_quotas(QuotaNeed(servers=3, vcpus=3, ram_mb=1024))
    assert notes and "not checked" in notes[0]


def test_server_group_member_limit_suggests_no_anti_affinity():
    provider = _provider_with(
        compute=types.SimpleNamespace(get_limits=lambda: _limits(instances=-1, total_cores=-1)),
        network=_Net(exc=_http(404, "x", cls=sdk.NotFoundException)))
    with pytest.raises(errors.QuotaError, match="--no-anti-affinity"):
        provider.check_quotas(QuotaNeed(servers=17, vcpus=17, ram_mb=1, server_groups=1,
                                        server_group_members=17))


def _server(sid, name, status, fault=None):
    return types.SimpleNamespace(id=sid, name=name, status=status, task_state=None,
                                 fault=fault, metadata={}, addresses={})


class _Compute:
    """Serves a scripted sequence of server listings, one per ``servers()`` call."""

    def __init__(self, rounds):
        self.rounds = list(rounds)
        self.list_calls = 0

    def servers(self, details=True, **query):
        self.list_calls += 1
        return iter(self.rounds[min(self.list_calls - 1, len(self.rounds) - 1)])


def test_wait_for_servers_uses_one_listing_per_round_for_all_nodes():
    rounds = [[_server("a", "c-master", "BUILD"), _server("b", "c-worker-1", "BUILD")],
              [_server("a", "c-master", "ACTIVE"), _server("b", "c-worker-1", "BUILD")],
              [_server("a", "c-master", "ACTIVE"), _server("b", "c-worker-1", "ACTIVE")]]
    compute = _Compute(rounds)
    provider = _provider_with(compute=compute)
    seen = []
    done = provider.wait_for_servers(server_ids=["a", "b"], timeout=30, interval=0.01,
                                     on_status=lambda s: seen.append((s.name, s.status)))
    assert set(done) == {"a", "b"}
    assert compute.list_calls == 3
    assert sorted(seen) == [("c-master", "ACTIVE"), ("c-master", "BUILD"),
                            ("c-worker-1", "ACTIVE"), ("c-worker-1", "BUILD")]


def test_wait_for_servers_names_the_failed_node_and_nova_fault():
    rounds = [[_server("a", "c-master", "ACTIVE"),
               _server("b", "c-worker-1", "ERROR", {"message": "No valid host was found."})]]
    provider = _provider_with(compute=_Compute(rounds))
    with pytest.raises(errors.CloudError) as err:
        provider.wait_for_servers(server_ids=["a", "b"], timeout=30, interval=0.01)
    assert "[c-worker-1]" in str(err.value) and "No valid host" in str(err.value)


def test_wait_for_servers_times_out_listing_the_stragglers():
    provider = _provider_with(compute=_Compute([[_server("a", "c-master", "BUILD")]]))
    with pytest.raises(errors.TimeoutError_, match="1 server"):
        provider.wait_for_servers(server_ids=["a"], timeout=0.05, interval=0.01)


def test_node_from_server_reads_fixed_and_floating_addresses():
    server = types.SimpleNamespace(
        id="s1", name="c-master", status="ACTIVE", metadata={"spark_openstack_role": "master"},
        flavor=types.SimpleNamespace(vcpus=2, ram=4096),
        addresses={"private": [{"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
                               {"addr": "fd00::5", "version": 6,
                                "OS-EXT-IPS:type": "fixed"}]})
    fip = types.SimpleNamespace(port_details={"device_id": "s1"}, fixed_ip_address="10.0.0.5",
                                floating_ip_address="198.51.100.9")
    # a pure function: no connection needed to read a server record
    node = naming.node_from_server(server, floating_ips=[fip])
    assert (node.private_ip, node.public_ip, node.role, node.vcpus, node.ram_mb) == \
        ("10.0.0.5", "198.51.100.9", "master", 2, 4096)
    assert node.address == "198.51.100.9"


class _SecGroupNet:
    """Records the rules ``create_security_group`` asks Neutron for."""

    def create_security_group(self, **kw):
        return types.SimpleNamespace(id="sg", name=kw["name"])

    def create_security_group_rules(self, rules):
        self.rules = rules
        return rules


def test_security_group_opens_exactly_the_given_ui_rules_once_and_counts_them():
    from spark_openstack.config import web_ui_rules
    net = _SecGroupNet()
    provider = _provider_with(network=net)
    ui_rules = web_ui_rules(open_ui_cidrs=("192.0.2.0/24", "2001:db8::/32"),
                            unsafe_ui_cidrs=("192.0.2.0/24",))
    provider.create_security_group(cluster="c", ssh_cidrs=["203.0.113.7/32"],
                                   ui_rules=ui_rules + ui_rules[:1])
    opened = [(r["remote_ip_prefix"], r["port_range_min"], r["ethertype"])
              for r in net.rules if "remote_ip_prefix" in r]
    assert sorted(opened) == sorted(
        [("203.0.113.7/32", 22, "IPv4"), ("2001:db8::/32", 8080, "IPv6"),
         ("2001:db8::/32", 4040, "IPv6")]
        + [("192.0.2.0/24", p, "IPv4") for p in (8080, 4040, 8088, 9870)])
    assert network.security_group_rule_count(
        ssh_cidrs=["203.0.113.7/32"], ui_rules=ui_rules + ui_rules[:1]) == len(net.rules) + 2


class _GroupNet:
    """A group whose first delete answers success but leaves it there (a timed-out
    request), then one refused while a port still holds it (409), then really goes."""

    def __init__(self):
        self.deletes = 0
        self.present = True

    def delete_security_group(self, group_id, ignore_missing=True):
        self.deletes += 1
        if self.deletes == 2:
            raise _http(409, "in use", cls=sdk.ConflictException)
        if self.deletes >= 3:
            self.present = False

    def get_security_group(self, group_id):
        if self.present:
            return types.SimpleNamespace(id=group_id)
        raise _http(404, "gone", cls=sdk.NotFoundException)


def test_delete_security_group_returns_only_once_the_group_is_gone(monkeypatch):
    import spark_openstack.polling as polling
    monkeypatch.setattr(polling, "_SLICE", 0.01)
    net = _GroupNet()
    provider = _provider_with(network=net)
    monkeypatch.setattr("spark_openstack.provider.network.poll", lambda fn, **kw: polling.poll(
        fn, **{**kw, "interval": 0.01, "max_interval": 0.01}))
    provider.delete_security_group("sg1")
    assert net.deletes == 3 and not net.present


def test_delete_security_group_that_stays_is_a_timeout_not_success(monkeypatch):
    import spark_openstack.polling as polling
    net = _GroupNet()
    net.delete_security_group = lambda group_id, ignore_missing=True: None   # never goes
    provider = _provider_with(network=net)
    monkeypatch.setattr("spark_openstack.provider.network.poll", lambda fn, **kw: polling.poll(
        fn, **{**kw, "interval": 0.01, "max_interval": 0.01}))
    with pytest.raises(errors.TimeoutError_, match="still there"):
        provider.delete_security_group("sg1", timeout=0.05)
