"""Settings: name validation, file parsing, flag > file > default, LaunchSpec checks."""
from __future__ import annotations

import os
import stat

import pytest

from spark_openstack import config
from spark_openstack.errors import ConfigError, UsageError


@pytest.mark.parametrize("name", ["demo", "a", "spark-1", "x" * 40, "a1-b2-c3"])
def test_good_cluster_names(name):
    assert config.validate_cluster_name(name) == name


@pytest.mark.parametrize("name,why", [
    ("Demo", "start with a lowercase letter"),
    ("1demo", "start with a lowercase letter"),
    ("-demo", "start with a lowercase letter"),
    ("de_mo", "'_'"),
    ("de.mo", "'.'"),
    ("demo-", "end with '-'"),
    ("de--mo", "contain '--'"),
    ("x" * 41, "41 characters"),
    ("", "no cluster name"),
])
def test_bad_cluster_names_say_why(name, why):
    with pytest.raises(UsageError) as err:
        config.validate_cluster_name(name)
    assert why in str(err.value)
    assert err.value.exit_code == 2


def test_bad_name_hint_suggests_a_usable_name():
    with pytest.raises(UsageError) as err:
        config.validate_cluster_name("My_Cluster")
    assert "-c my-cluster" in err.value.hint


def _write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_precedence_flag_beats_file_beats_default(tmp_path):
    path = _write(tmp_path, "flavor: m1.large\nkeypair: filekey\nallowed-cidr: [10.0.0.0/8]\n")
    values = config.load_config_file(path)
    resolved = config.resolve(flags={"flavor": "m1.tiny", "keypair": None, "timeout": None,
                                     "allowed_cidr": ()},
                              file_values=values, file_path=path)
    assert resolved["flavor"] == "m1.tiny" and resolved.source("flavor") == "--flavor"
    assert resolved["keypair"] == "filekey" and str(path) in resolved.source("keypair")
    assert resolved["allowed_cidr"] == ("10.0.0.0/8",)
    assert resolved["timeout"] == 900 and resolved.source("timeout") == "built-in default"


def test_false_flag_still_beats_file(tmp_path):
    path = _write(tmp_path, "floating-ip: true\nanti-affinity: true\n")
    resolved = config.resolve(flags={"floating_ip": False, "anti_affinity": None},
                              file_values=config.load_config_file(path), file_path=path)
    assert resolved["floating_ip"] is False
    assert resolved["anti_affinity"] is True


def test_missing_default_file_is_fine_but_missing_explicit_file_is_not(tmp_path):
    assert config.load_config_file(tmp_path / "nope.yaml") == {}
    with pytest.raises(ConfigError, match="does not exist"):
        config.load_config_file(tmp_path / "nope.yaml", required=True)


@pytest.mark.parametrize("text,needle", [
    ("flavour: m1.tiny\n", "unknown key 'flavour'"),
    ("slaves: two\n", "expected a whole number"),
    ("floating-ip: maybe\n", "expected true or false"),
    ("- just\n- a list\n", "must be a mapping"),
    ("keypair: [unclosed\n", "not valid YAML"),
])
def test_bad_config_files_name_the_key_and_file(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load_config_file(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_write_merges_and_is_private(tmp_path):
    path = tmp_path / "sub" / "config.yaml"
    config.write_config_file(path, {"keypair": "k1", "allowed_cidr": ("10.0.0.0/8",)})
    config.write_config_file(path, {"flavor": "m1.medium", "keypair": None})
    values = config.load_config_file(path)
    assert values == {"flavor": "m1.medium", "allowed_cidr": ("10.0.0.0/8",)}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_config_path_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(config.CONFIG_ENV, str(tmp_path / "env.yaml"))
    assert config.config_path(tmp_path / "flag.yaml") == tmp_path / "flag.yaml"
    assert config.config_path(None) == tmp_path / "env.yaml"
    monkeypatch.delenv(config.CONFIG_ENV)
    assert config.config_path(None).name == "config.yaml"


def _spec(**flags):
    base = {"keypair": "k", "image": "img", "allowed_cidr": ("203.0.113.7/32",)}
    base.update(flags)
    name = base.pop("name", "demo")
    resolved = config.resolve(flags=base, file_values={}, file_path=None)
    return config.launch_spec_from(resolved, cluster_name=name)


def test_launch_spec_defaults():
    spec = _spec()
    assert spec.workers == 1 and spec.flavor == "m1.small"
    assert spec.effective_master_flavor == "m1.small"
    assert spec.open_ui_cidrs == () and spec.floating_ip and spec.anti_affinity
    assert spec.services == ("hdfs", "yarn", "spark")


@pytest.mark.parametrize("flags,needle", [
    ({"slaves": 0}, "must be >= 1"),
    ({"keypair": None}, "no keypair given"),
    ({"image": None}, "no image given"),
    ({"allowed_cidr": ()}, "no --allowed-cidr"),
    ({"allowed_cidr": ("not-a-cidr",)}, "is not an IP network"),
    ({"open_ui_cidr": ("300.1.1.1/8",)}, "is not an IP network"),
    ({"open_unsafe_ui_cidr": ("nope",)}, "is not an IP network"),
    ({"ssh_user": "-oProxyCommand=touch /tmp/x"}, "is not a user name"),
    ({"ssh_user": "Debian"}, "is not a user name"),
    ({"timeout": 5}, "--timeout"),
    ({"services": ("spark", "mesos")}, "mesos"),
    ({"floating_ip": False, "floating_ip_pool": "public"}, "contradict"),
    ({"name": "Bad"}, "not usable"),
    ({"data_dir": ("relative/dir",)}, "--data-dir 'relative/dir'"),
    ({"data_dir": ("/srv/a b",)}, "not usable for HDFS data"),
    ({"data_dir": ("/etc",)}, "not usable for HDFS data"),
    ({"data_dir": ("/srv/../etc",)}, "not usable for HDFS data"),
])
def test_launch_spec_refuses_bad_input(flags, needle):
    with pytest.raises(UsageError) as err:
        _spec(**flags)
    assert needle in str(err.value)


def test_cidrs_are_normalised_and_deduplicated():
    spec = _spec(allowed_cidr=("10.1.2.3/8", "10.0.0.0/8"), open_ui_cidr=("192.0.2.1",))
    assert spec.allowed_cidrs == ("10.0.0.0/8",)
    assert spec.open_ui_cidrs == ("192.0.2.1/32",)


def test_data_dirs_default_under_var_lib_and_repeat_for_disks():
    assert _spec().data_dirs == ("/var/lib/hadoop/hdfs",)
    assert _spec(data_dir=("/srv/d1/", "/srv/d2", "/srv/d1")).data_dirs == ("/srv/d1", "/srv/d2")


def test_unsafe_ui_cidrs_are_their_own_setting():
    spec = _spec(open_ui_cidr=("192.0.2.1",), open_unsafe_ui_cidr=("198.51.100.7",))
    assert spec.open_ui_cidrs == ("192.0.2.1/32",)
    assert spec.unsafe_ui_cidrs == ("198.51.100.7/32",)
    assert _spec().unsafe_ui_cidrs == ()
    assert "open_unsafe_ui_cidr" in config.BUILTIN_DEFAULTS


def test_ui_port_lists_name_each_port_once_and_keep_yarn_and_hdfs_unsafe():
    assert set(config.SAFE_UI_PORTS.values()) == {8080, 4040}
    assert set(config.UNSAFE_UI_PORTS.values()) == {8088, 9870}
    assert config.WEB_UI_PORTS == {**config.SAFE_UI_PORTS, **config.UNSAFE_UI_PORTS}
    assert len(set(config.WEB_UI_PORTS.values())) == len(config.WEB_UI_PORTS)


def test_web_ui_rules_never_open_yarn_or_hdfs_to_open_ui_cidr():
    rules = config.web_ui_rules(open_ui_cidrs=("10.0.0.0/8", "192.0.2.0/24"),
                                unsafe_ui_cidrs=())
    assert {p for _, p in rules} == {8080, 4040} and len(rules) == 4
    rules = config.web_ui_rules(open_ui_cidrs=("10.0.0.0/8",),
                                unsafe_ui_cidrs=("10.0.0.0/8", "203.0.113.7/32"))
    assert sorted(rules) == sorted((c, p) for c in ("10.0.0.0/8", "203.0.113.7/32")
                                   for p in (8080, 4040, 8088, 9870))
    assert config.web_ui_rules(open_ui_cidrs=(), unsafe_ui_cidrs=()) == []


def test_unsafe_ui_warning_says_what_it_exposes():
    text = config.unsafe_ui_warning(("203.0.113.7/32",))
    for word in ("WARNING", "8088", "9870", "run code", "superuser", "203.0.113.7/32",
                 "login -L"):
        assert word in text


@pytest.mark.parametrize("user", ["debian", "ubuntu", "_x", "cloud-user", "a" * 32])
def test_posix_ssh_users_are_accepted(user):
    assert config.validate_ssh_user(user) == user and config.is_ssh_user(user)


@pytest.mark.parametrize("user", ["", "-oProxyCommand=x", "Root", "1abc", "a b", "a" * 33,
                                  "deb@ian", "debian\n", None])
def test_other_ssh_users_are_refused_naming_the_input(user):
    assert not config.is_ssh_user(user)
    with pytest.raises(UsageError) as err:
        config.validate_ssh_user(user, source="ssh-user in x.yaml")
    assert "ssh-user in x.yaml" in str(err.value) and "POSIX" in err.value.hint


def test_a_config_file_with_the_removed_volume_size_says_why(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("volume-size: 20\n")
    with pytest.raises(ConfigError, match="never formatted or mounted") as err:
        config.load_config_file(path)
    assert "--data-dir" in str(err.value)
