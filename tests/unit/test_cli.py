"""The CLI: help that teaches, exit codes (2 usage, 1 failure, 130), tracebacks only with -v."""
from __future__ import annotations

import subprocess
import sys

import pytest

from spark_openstack import cli, errors
from support.cli import invoke, run_main
from support.cloud import FakeCloud

pytestmark = pytest.mark.usefixtures("no_user_config")


@pytest.mark.parametrize("command", ["launch", "destroy", "describe", "login", "configure",
                                     "create-image"])
def test_every_command_help_has_examples(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and f"spark-openstack {command}" in result.output


def test_top_level_help_lists_commands_and_cloud_selection():
    result = invoke("--help")
    for word in ("launch", "destroy", "describe", "list", "login", "configure", "OS_CLOUD"):
        assert word in result.output


def test_bad_cluster_name_is_a_usage_error_before_any_cloud_call(capsys, monkeypatch):
    monkeypatch.setattr(cli.AppContext, "provider",
                        property(lambda self: pytest.fail("must not touch the cloud")))
    code, out, err = run_main(["launch", "-c", "Bad_Name", "-k", "k", "-i", "img",
                               "--allowed-cidr", "10.0.0.0/8"], capsys)
    assert code == 2
    assert "cluster name 'Bad_Name'" in err and "hint:" in err
    assert "Traceback" not in err


def test_missing_allowed_cidr_refused_with_what_to_do(capsys):
    code, _, err = run_main(["launch", "-c", "demo", "-k", "k", "-i", "img"], capsys)
    assert code == 2 and "--allowed-cidr" in err and "0.0.0.0/0" in err


def test_click_usage_errors_exit_2(capsys):
    code, _, err = run_main(["launch", "-s", "2"], capsys)  # no -c
    assert code == 2 and "Missing option" in err
    code, _, err = run_main(["launch", "-c", "demo", "-s", "two"], capsys)
    assert code == 2 and "not a valid integer" in err
    code, _, _ = run_main(["frobnicate"], capsys)
    assert code == 2


@pytest.mark.parametrize("exc,code", [
    (errors.QuotaError("short on cores", hint="ask for more"), 2),
    (errors.NotFoundError("no such image"), 2),
    (errors.CloudError("nova exploded"), 1),
    (errors.NodeErrors({"c-worker-1": "ssh refused"}, what="wait for SSH"), 1),
    (errors.Interrupted("interrupted; cleaned up"), 130),
    (KeyboardInterrupt(), 130),
    (RuntimeError("a bug"), 1),
])
def test_main_maps_errors_to_exit_codes_and_one_message(exc, code, capsys, monkeypatch):
    def boom(**kwargs):
        raise exc
    monkeypatch.setattr("spark_openstack.inventory.list_clusters", boom)
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: object()))
    got, _, err = run_main(["list"], capsys)
    assert got == code
    assert "Traceback" not in err
    if isinstance(exc, errors.SparkOpenstackError):
        assert err.count("error:") == 1 and exc.message.splitlines()[0] in err
        if exc.hint:
            assert f"hint: {exc.hint}" in err
    got, _, err = run_main(["-v", "list"], capsys)
    assert got == code
    if not isinstance(exc, KeyboardInterrupt):
        assert "Traceback" in err


def test_configure_writes_and_flags_beat_it(tmp_path, capsys, monkeypatch):
    path = tmp_path / "cfg.yaml"
    code, _, err = run_main(["--config", str(path), "configure", "-k", "filekey", "-i", "img",
                             "--allowed-cidr", "10.1.2.3/8", "-s", "3"], capsys)
    assert code == 0 and path.exists()
    text = path.read_text()
    assert "keypair: filekey" in text and "10.0.0.0/8" in text
    seen = {}

    def fake_launch(*, provider, spec, progress):
        seen["spec"] = spec
        raise errors.CloudError("stop here")
    monkeypatch.setattr("spark_openstack.launch.launch", fake_launch)
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: object()))
    code, _, _ = run_main(["--config", str(path), "launch", "-c", "demo", "-s", "5"], capsys)
    assert code == 1
    spec = seen["spec"]
    assert (spec.workers, spec.keypair, spec.image, spec.allowed_cidrs) == \
        (5, "filekey", "img", ("10.0.0.0/8",))
    code, out, _ = run_main(["--config", str(path), "configure", "--show"], capsys)
    assert "filekey" in out


def _help(*argv) -> str:
    """The help text on one line (click wraps after hyphens: "yarn-" / "resourcemanager")."""
    return " ".join(invoke(*argv, "--help").output.split()) \
        .replace("- ", "-")


def test_open_ui_help_separates_spark_uis_from_unsafe_ones():
    text = _help("launch")
    safe = text.split("--open-ui-cidr CIDR", 1)[1].split("--open-unsafe-ui-cidr", 1)[0]
    unsafe = text.split("--open-unsafe-ui-cidr CIDR", 1)[1].split("--anti-affinity", 1)[0]
    assert "spark-master 8080, spark-app 4040" in safe and "never the unsafe ones" in safe
    assert "8088" not in safe and "9870" not in safe
    assert "hdfs-namenode 9870, yarn-resourcemanager 8088" in unsafe
    assert "8888" not in text
    login = _help("login")
    assert all(p in login for p in ("8080", "4040", "8088", "9870"))


def test_help_defaults_are_the_ones_used():
    from spark_openstack import config
    assert f"Limit for boot + SSH (default {config.BUILTIN_DEFAULTS['timeout']})" in \
        _help("launch")
    image_help = _help("create-image")
    assert f"Limit for the whole bake (default {config.IMAGE_TIMEOUT})" in image_help
    assert f"default {config.DEFAULT_MIRROR}" in image_help


def test_create_image_passes_its_own_default_timeout(capsys, monkeypatch):
    """create-image --help promised 1800 s while the bake got launch's 900 s; the spec the
    command hands to image.create_image carries what the help says."""
    seen = {}

    def fake_create_image(*, conn_provider, spec, key_filename, progress):
        seen["spec"] = spec
        return "image-id"
    fake = FakeCloud(keypairs={"kp": "ssh-ed25519 AAAA x"})
    monkeypatch.setattr("spark_openstack.image.create_image", fake_create_image)
    monkeypatch.setattr("spark_openstack.keys.resolve_identity_file",
                        lambda **kw: "/key")
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: fake))
    code, out, _ = run_main(["create-image", "-n", "img", "--base-image", "debian-12",
                             "-k", "kp", "--allowed-cidr", "10.0.0.0/8", "--no-hadoop"], capsys)
    assert code == 0 and "image img ready: image-id" in out
    spec = seen["spec"]
    assert spec.timeout == 1800 and spec.hadoop_version is None and spec.name == "img"


@pytest.mark.parametrize("argv", [
    ["login", "-c", "demo", "--ssh-user", "-oProxyCommand=touch /tmp/x"],
    ["launch", "-c", "demo", "-k", "k", "-i", "img", "--allowed-cidr", "10.0.0.0/8",
     "--ssh-user", "-oProxyCommand=x"],
    ["create-image", "-n", "img", "--base-image", "b", "--flavor", "f", "-k", "k",
     "--allowed-cidr", "10.0.0.0/8", "--ssh-user", "Bad User"],
    ["configure", "--ssh-user", "-oProxyCommand=x"],
])
def test_bad_ssh_user_is_a_usage_error_before_any_cloud_call(argv, capsys, monkeypatch):
    monkeypatch.setattr(cli.AppContext, "provider",
                        property(lambda self: pytest.fail("must not touch the cloud")))
    code, _, err = run_main(argv, capsys)
    assert code == 2 and "is not a user name" in err and "hint:" in err


def test_configure_keeps_unsafe_ui_cidrs_apart(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    code, _, _ = run_main(["--config", str(path), "configure", "--open-ui-cidr", "10.1.2.3/8",
                           "--open-unsafe-ui-cidr", "192.0.2.9"], capsys)
    text = path.read_text()
    assert code == 0 and "open-unsafe-ui-cidr:\n- 192.0.2.9/32" in text
    assert "open-ui-cidr:\n- 10.0.0.0/8" in text


def test_explicit_missing_config_file_is_a_usage_error(tmp_path, capsys):
    code, _, err = run_main(["--config", str(tmp_path / "missing.yaml"), "launch", "-c", "d",
                             "-k", "k", "-i", "i", "--allowed-cidr", "10.0.0.0/8"], capsys)
    assert code == 2 and "does not exist" in err


def test_destroy_without_yes_refuses_when_not_interactive(capsys, monkeypatch):
    fake = FakeCloud()
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: fake))
    code, _, err = run_main(["destroy", "-c", "demo"], capsys)
    assert code == 2 and "--yes" in err


def test_unknown_cloud_is_a_config_error(tmp_path, capsys, monkeypatch):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  other:\n    auth: {auth_url: 'http://127.0.0.1:9/v3'}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    code, _, err = run_main(["--cloud", "nope", "list"], capsys)
    assert code == 2 and "nope" in err and "--cloud NAME" in err


def test_console_script_runs_as_a_subprocess(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "SPARK_OPENSTACK_CONFIG": str(tmp_path / "c.yaml")}
    proc = subprocess.run([sys.executable, "-m", "spark_openstack.cli", "launch", "-c", "9lives",
                           "-k", "k", "-i", "i", "--allowed-cidr", "10.0.0.0/8"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "cluster name '9lives'" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "spark_openstack.cli", "--version"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0 and "spark-openstack" in proc.stdout


def test_remove_workers_without_yes_names_the_victims_then_refuses_when_not_interactive(
        capsys, monkeypatch):
    """The confirmation is asked inside scale.remove_workers, from its one reading of the
    cluster and its choice of victims, and refused without a terminal before any change."""
    from types import SimpleNamespace

    from spark_openstack import scale
    opened = []
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: object()))
    access = SimpleNamespace(require_active=lambda **kw: pytest.fail("went on unconfirmed"))
    monkeypatch.setattr(scale, "open_cluster",
                        lambda **kw: opened.append(kw["cluster"]) or access)
    monkeypatch.setattr(scale, "choose_victims",
                        lambda **kw: [SimpleNamespace(name="demo-worker-2")])
    code, _, err = run_main(["remove-workers", "-c", "demo", "-n", "1"], capsys)
    assert opened == ["demo"]
    assert code == 2 and "--yes" in err and "refusing to remove workers" in err


@pytest.mark.parametrize("given, expected", [((), "/keys/from-config"),
                                             (("--identity-file", "/keys/flag"), "/keys/flag")])
def test_identity_file_defaults_to_the_config_files_for_every_command(
        given, expected, tmp_path, capsys, monkeypatch):
    """--identity-file is declared once; the config file's key is its default."""
    from spark_openstack import power
    (tmp_path / "config.yaml").write_text("identity_file: /keys/from-config\n")
    seen = []
    monkeypatch.setattr(cli.AppContext, "provider", property(lambda self: object()))

    def fake_status(**kw):
        seen.append(kw["identity_file"])
        return {"healthy": True, "state": "active", "nodes": [], "services": {}}
    monkeypatch.setattr(power, "cluster_status", fake_status)
    code, _, _ = run_main(["status", "-c", "demo", *given, "--json"], capsys)
    assert code == 0 and seen == [expected]
