"""Settings: name validation, file parsing, flag > file > default, LaunchSpec and ImageSpec
checks, and which web UIs the security group may open."""
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
    assert spec.workers == 1 and spec.flavor == "m1.small" and spec.master_flavor is None
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


def test_web_ui_ports_keep_yarn_and_hdfs_unsafe_and_follow_the_services():
    numbers = lambda ports: {p.ui_name: p.number for p in ports}   # noqa: E731
    assert numbers(config.web_ui_ports(exposures=("safe",))) == \
        {"spark-master": 8080, "spark-app": 4040}
    assert numbers(config.web_ui_ports(exposures=("unsafe",))) == \
        {"hdfs-namenode": 9870, "yarn-resourcemanager": 8088}
    assert numbers(config.web_ui_ports()) == {"spark-master": 8080, "spark-app": 4040,
                                              "hdfs-namenode": 9870,
                                              "yarn-resourcemanager": 8088}
    assert numbers(config.web_ui_ports(services=("spark",))) == \
        {"spark-master": 8080, "spark-app": 4040}
    assert numbers(config.web_ui_ports(services=("hdfs", "spark"))) == \
        {"hdfs-namenode": 9870, "spark-master": 8080, "spark-app": 4040}
    # internal web UIs (DataNode, Spark worker, secondary NameNode) are never listed
    assert not {9864, 8081, 9868} & {p.number for p in config.web_ui_ports()}


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


# --------------------------------------------------------------------------- ImageSpec

def _image_spec(flags=None, file_values=None, name="img"):
    base = {"base_image": "debian-12", "keypair": "k", "allowed_cidr": ("203.0.113.7/32",)}
    base.update(flags or {})
    resolved = config.resolve(flags=base, file_values=file_values or {},
                              file_path="/cfg.yaml", defaults=config.IMAGE_DEFAULTS)
    return config.image_spec_from(resolved, name=name)


def test_image_spec_defaults_are_create_images_own():
    spec = _image_spec()
    assert spec.timeout == config.IMAGE_TIMEOUT == 1800     # not launch's 900
    assert spec.timeout != config.BUILTIN_DEFAULTS["timeout"]
    assert (spec.spark_version, spec.hadoop_version) == ("4.3.0", "3.5.0")
    assert spec.mirror == config.DEFAULT_MIRROR and spec.java_package == config.DEFAULT_JAVA_PACKAGE
    assert spec.flavor == "m1.small" and spec.ssh_user == "debian" and not spec.floating_ip
    assert spec.allowed_cidrs == ("203.0.113.7/32",) and spec.python_packages == ()


def test_image_spec_layers_flags_over_the_file():
    spec = _image_spec({"timeout": 2400, "python_packages": ["numpy"], "identity_file": "~/k"},
                       file_values={"timeout": 600, "mirror": "http://10.213.0.1:8099"})
    assert spec.timeout == 2400 and spec.mirror == "http://10.213.0.1:8099"
    assert spec.python_packages == ("numpy",) and not spec.identity_file.startswith("~")
    assert _image_spec(file_values={"timeout": 600}).timeout == 600


def test_no_hadoop_makes_a_spark_only_spec_and_contradicts_an_explicit_version():
    assert _image_spec({"no_hadoop": True}).hadoop_version is None
    # a version from the config file is only a default: --no-hadoop wins over it
    assert _image_spec({"no_hadoop": True},
                       file_values={"hadoop_version": "3.4.1"}).hadoop_version is None
    with pytest.raises(UsageError, match="contradict"):
        _image_spec({"no_hadoop": True, "hadoop_version": "3.4.1"})


@pytest.mark.parametrize("flags,option,hint", [
    ({"base_image": None}, "--base-image", "base-image:"),
    ({"keypair": None}, "-k/--keypair", "--keypair NAME"),
    ({"allowed_cidr": ()}, "--allowed-cidr", "--allowed-cidr 203.0.113.7/32"),
    ({"allowed_cidr": ("10.0.0.300/8",)}, "--allowed-cidr", "CIDR notation"),
    ({"spark_version": "4.3; rm -rf /"}, "--spark-version", "like 4.3.0"),
    ({"hadoop_version": "latest"}, "--hadoop-version", "--no-hadoop"),
    ({"mirror": "ftp://mirror"}, "--mirror", "Apache's layout"),
    ({"java_package": "openjdk 17"}, "--java-package", "openjdk-21"),
    ({"apt_proxy": "squid:3128"}, "--apt-proxy", "http://10.0.0.5:3142"),
    ({"apt_proxy": "http://user:pw@proxy:3128"}, "--apt-proxy", "no user:password"),
    ({"apt_proxy": "http://proxy:3128/x y"}, "--apt-proxy", "scheme, host and port"),
    ({"python_packages": ("numpy; curl evil",)}, "--python-packages", "pandas==2.2.3"),
    ({"ssh_user": "-oProxyCommand=x"}, "--ssh-user", "POSIX user name"),
    ({"timeout": 5}, "--timeout", "default 1800"),
])
def test_bad_image_inputs_name_the_option_why_and_what_to_do(flags, option, hint):
    with pytest.raises(UsageError) as err:
        _image_spec(flags)
    assert option in err.value.message and hint in (err.value.hint or "")
    assert err.value.exit_code == 2


def test_no_image_name_is_refused():
    with pytest.raises(UsageError, match="-n/--name"):
        _image_spec(name=None)


def test_image_spec_made_directly_is_checked_too():
    with pytest.raises(UsageError, match="--mirror"):
        config.ImageSpec(name="i", base_image="b", flavor="f", keypair="k",
                         allowed_cidrs=("10.0.0.0/8",), mirror="file:///etc")
    spec = config.ImageSpec(name="i", base_image="b", flavor="f", keypair="k",
                            allowed_cidrs=["10.1.2.3/8"], python_packages=["numpy"])
    assert spec.allowed_cidrs == ("10.0.0.0/8",) and spec.python_packages == ("numpy",)


def test_capacity_scheduler_is_a_hadoop_conf_file_that_restarts_yarn():
    """The scheduler's queues (maximum-am-resource-percent) are the cluster's to tune."""
    from spark_openstack import clusterconf, config
    from support.facts import make_facts
    got = config.parse_hadoop_conf(
        ["capacity-scheduler:yarn.scheduler.capacity.maximum-am-resource-percent=0.3"])
    assert got == (("capacity-scheduler.xml",
                    "yarn.scheduler.capacity.maximum-am-resource-percent", "0.3"),)
    change = clusterconf.plan_change(facts=make_facts(), hadoop_conf=got)
    assert change.affected == ("yarn",)
