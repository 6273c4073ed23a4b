"""Jupyter on the master and Python packages in the image (issue 11, parts 4 and 5):
what the bake installs, what the master's Jupyter files say, how health is read, what
launch/deploy/notebook refuse. The running service is proven on the sandbox
(tests/integration/test_notebook_e2e.py)."""
from __future__ import annotations

import configparser
import dataclasses
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from support.facts import make_facts
from spark_openstack import config, deploy, notebook, render
from spark_openstack.cli import cli
from spark_openstack.launch import check_image_has_jupyter
from spark_openstack.config import (BUILTIN_DEFAULTS, JUPYTER_PACKAGES, ImageSpec, Resolved,
                                    launch_spec_from, web_ui_rules)
from spark_openstack.errors import UsageError, ValidationError
from spark_openstack.ports import INTERNAL
from spark_openstack.services import SERVICE_CLASSES, START_ORDER
from spark_openstack.services.jupyter import Jupyter, parse_probe
from spark_openstack.userdata import IMAGE_PYTHON_ENV, render_bake_userdata

ROOT = Path(__file__).resolve().parents[2]
KERNEL_DIR = "/home/hduser/.local/share/jupyter/kernels/pyspark"
VENV_PYTHON = f"{IMAGE_PYTHON_ENV}/bin/python"


def _facts(**kw):
    services = kw.pop("services", ("hdfs", "spark", "jupyter"))
    facts = make_facts(services=services, **kw)
    return dataclasses.replace(facts, python=VENV_PYTHON, jupyter_token="t0ken" * 8)


def _jupyter_files(facts):
    files = render.render_node_configs(facts=facts, node=facts.master)
    return {path: text for path, text in files.items()
            if path.startswith("/home/hduser/")}


# ----------------------------------------------------------------------------- templates
def test_every_jupyter_template_is_rendered_on_the_master_only():
    facts = _facts()
    names = render.template_names()["jupyter"]
    assert set(names) == {f"{n}.j2" for n in Jupyter.config_files}
    files = _jupyter_files(facts)
    assert set(files) == {"/home/hduser/.jupyter/jupyter_server_config.py",
                          "/home/hduser/.jupyter/supervisord.conf",
                          f"{KERNEL_DIR}/kernel.json", f"{KERNEL_DIR}/pyspark_startup.py"}
    for path, text in files.items():
        assert "{{" not in text and "{%" not in text, path
    for worker in facts.workers:
        assert not any(p.startswith("/home/") for p in
                       render.render_node_configs(facts=facts, node=worker))
    without = dataclasses.replace(facts, services=("hdfs", "spark"))
    assert _jupyter_files(without) == {}


def test_token_files_are_hduser_only_and_the_kernel_readable():
    files = render.node_config_files(facts=_facts(), node=_facts().master)
    assert files["/home/hduser/.jupyter/jupyter_server_config.py"][1] == 0o600
    assert files["/home/hduser/.jupyter/supervisord.conf"][1] == 0o600
    assert files[f"{KERNEL_DIR}/kernel.json"][1] == 0o644


def test_server_config_binds_the_private_address_and_wants_the_token():
    facts = _facts()
    text = _jupyter_files(facts)["/home/hduser/.jupyter/jupyter_server_config.py"]

    class Section(dict):
        def __getattr__(self, key):
            return self.setdefault(key, Section())

        def __setattr__(self, key, value):
            self[key] = value
    c = Section()
    exec(compile(text, "jupyter_server_config.py", "exec"), {"get_config": lambda: c})
    assert c["ServerApp"]["ip"] == facts.master.private_ip != "0.0.0.0"
    assert c["ServerApp"]["port"] == 8888 and c["ServerApp"]["port_retries"] == 0
    assert c["ServerApp"]["open_browser"] is False
    assert c["IdentityProvider"]["token"] == facts.jupyter_token
    assert c["ServerApp"]["root_dir"] == "/home/hduser/notebooks"


def test_supervisord_restarts_jupyter_and_keeps_the_token_off_its_command_line():
    facts = _facts()
    text = _jupyter_files(facts)["/home/hduser/.jupyter/supervisord.conf"]
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    program = parser["program:jupyter"]
    assert program["autorestart"] == "true" and program["autostart"] == "true"
    assert program["command"].startswith(f"{IMAGE_PYTHON_ENV}/bin/jupyter lab --config=")
    assert facts.jupyter_token not in text
    assert parser["unix_http_server"]["chmod"] == "0700"


@pytest.mark.parametrize("services,master", [
    (("hdfs", "spark", "jupyter"), "spark://10.213.0.10:7077"),
    (("hdfs", "yarn", "spark", "jupyter"), "yarn"),
    (("hdfs", "yarn", "jupyter"), "yarn"),
])
def test_kernel_runs_the_image_python_against_yarn_or_standalone(services, master):
    facts = _facts(services=services, workers=3, worker_vcpus=2)
    files = _jupyter_files(facts)
    spec = json.loads(files[f"{KERNEL_DIR}/kernel.json"])
    assert spec["argv"][0] == VENV_PYTHON and "ipykernel_launcher" in spec["argv"]
    assert "{connection_file}" in spec["argv"]
    assert f"--IPKernelApp.exec_files={KERNEL_DIR}/pyspark_startup.py" in spec["argv"]
    assert spec["display_name"] == "PySpark (cluster demo)"
    assert spec["env"]["SPARK_HOME"] == "/opt/spark"
    assert spec["env"]["PYSPARK_PYTHON"] == VENV_PYTHON
    assert spec["env"]["HADOOP_CONF_DIR"] == "/opt/hadoop/etc/hadoop"
    startup = files[f"{KERNEL_DIR}/pyspark_startup.py"]
    compile(startup, "pyspark_startup.py", "exec")
    assert f'.master("{master}")' in startup
    # 3 workers x 2 cores: each notebook at most half of them, in 1-core executors
    assert '"spark.dynamicAllocation.maxExecutors", "3"' in startup
    assert '"spark.executor.cores", "1"' in startup
    assert ('"spark.cores.max", "3"' in startup) == (master != "yarn")
    # idle executors go back even when they hold shuffle files (shuffle tracking)
    assert '"spark.dynamicAllocation.shuffleTracking.timeout", "120s"' in startup
    limits = render.notebook_limits(facts=facts)
    executor = render.cluster_sizing(facts=facts).spark_executor_mb
    # YARN: a job's executor (one per worker beside an AM: they spread); standalone: half
    assert limits["executor_mb"] == (executor if master == "yarn"
                                     else max(512, executor // 2 // 64 * 64))
    assert facts.spark_secret not in startup      # the secret stays in spark-defaults.conf


def test_a_one_core_cluster_still_gives_a_notebook_one_core():
    limits = render.notebook_limits(facts=_facts(workers=1, worker_vcpus=1))
    assert limits["max_cores"] == 1 and limits["executor_mb"] >= render.MIN_SPARK_WORKER_MB


def test_the_master_gets_jupyters_folders_as_hduser_before_its_files():
    facts = _facts()
    setup, files, _root = deploy._node_files(facts=facts, node=facts.master,
                                             hduser_public_key="ssh-ed25519 AAAA k")
    for folder in ("/home/hduser/.jupyter", "/home/hduser/.local",
                   "/home/hduser/.local/share/jupyter", KERNEL_DIR, "/home/hduser/notebooks",
                   "/var/log/jupyter"):
        assert f" {folder}" in setup
    assert setup.index("/home/hduser/.local ") < setup.index(KERNEL_DIR)
    worker_setup, _, _ = deploy._node_files(facts=facts, node=facts.workers[0],
                                            hduser_public_key="ssh-ed25519 AAAA k")
    assert "jupyter" not in worker_setup


# ----------------------------------------------------------------------------- service
def test_jupyter_is_a_service_started_after_spark_on_an_internal_port():
    assert SERVICE_CLASSES["jupyter"] is Jupyter and START_ORDER[-1] == "jupyter"
    assert "jupyter" in config.KNOWN_SERVICES and "jupyter" not in config.DEFAULT_SERVICES
    assert "jupyter" not in BUILTIN_DEFAULTS["services"]
    (port,) = SERVICE_CLASSES["jupyter"].ports
    assert port.number == 8888 and port.exposure == INTERNAL
    rules = web_ui_rules(open_ui_cidrs=("0.0.0.0/0",), unsafe_ui_cidrs=("0.0.0.0/0",))
    assert 8888 not in {number for _cidr, number in rules}


@pytest.mark.parametrize("text,expected", [
    ("200 403\n", (200, 403)), ("200 401", (200, 401)), ("0 0\n", (None, None)),
    ("", (None, None)), ("200 200", (200, 200)), ("noise\n500 403", (500, 403)),
])
def test_probe_output_is_parsed(text, expected):
    assert parse_probe(text) == expected


class ProbeRunner:
    """Answers the health probe with fixed status codes (what the master would print)."""

    def __init__(self, answer: str):
        self.answer, self.commands = answer, []

    def run(self, node, command, *, timeout=None, check=True):
        from spark_openstack.transport import CommandResult
        self.commands.append(command)
        return CommandResult(self.answer, "", 0)


@pytest.mark.parametrize("answer,ok,says", [
    ("200 403", True, "refuses without it"),
    ("200 200", False, "UNSAFE"),           # a Jupyter open without its token is not up
    ("0 0", False, "nothing answers"),
    ("500 403", False, "answered 500"),
])
def test_health_needs_the_token_to_open_and_its_absence_to_refuse(answer, ok, says):
    facts = _facts()
    runner = ProbeRunner(answer)
    health = Jupyter(facts=facts, runner=runner).health()
    assert health.ok is ok and health.expected == 1 and says in health.detail
    assert health.missing == (() if ok else (facts.master.name,))
    assert facts.jupyter_token not in runner.commands[0]     # never on a command line


def test_the_probe_script_reads_the_token_from_the_config_file(tmp_path):
    """The probe's Python really parses the rendered config (run here, on nothing
    listening: both requests get no answer)."""
    facts = _facts()
    conf = tmp_path / "jupyter_server_config.py"
    conf.write_text(_jupyter_files(facts)["/home/hduser/.jupyter/jupyter_server_config.py"])
    command = Jupyter(facts=facts, runner=None).probe_command()
    script = command.split("python3 -c ", 1)[1]
    import shlex
    argv = shlex.split(script)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    out = subprocess.run([sys.executable, "-c", argv[0], str(conf), f"http://127.0.0.1:{free}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert parse_probe(out.stdout) == (None, None)


# ----------------------------------------------------------------------------- deploy/launch
def _resolved(**values):
    base = dict(BUILTIN_DEFAULTS, keypair="k", image="img", allowed_cidr=("10.0.0.1/32",))
    base.update(values)
    return Resolved(values=base, sources={})


def test_launch_jupyter_adds_the_service_to_the_others():
    spec = launch_spec_from(_resolved(jupyter=True), cluster_name="nb")
    assert spec.services == ("hdfs", "yarn", "spark", "jupyter")
    assert launch_spec_from(_resolved(), cluster_name="nb").services == ("hdfs", "yarn", "spark")
    spec = launch_spec_from(_resolved(services=("spark", "jupyter")), cluster_name="nb")
    assert spec.services == ("spark", "jupyter")
    with pytest.raises(UsageError, match="needs Spark standalone or YARN"):
        launch_spec_from(_resolved(services=("hdfs", "jupyter")), cluster_name="nb")


class _Image:
    def __init__(self, name, properties):
        self.name, self.properties = name, properties


def test_launch_jupyter_refuses_an_image_without_jupyter_naming_it():
    check_image_has_jupyter(_Image("nb", {"jupyter": "true"}))
    for props in ({"jupyter": "false"}, {}):
        with pytest.raises(ValidationError) as err:
            check_image_has_jupyter(_Image("plain-img", props))
        assert "plain-img" in err.value.message and "create-image --jupyter" in err.value.hint


MARKER = {"spark_version": "4.3.0", "hadoop_version": "2.7.3", "hadoop_services": ["hdfs"],
          "java_home": "/usr/lib/jvm/x", "spark_home": "/opt/spark",
          "hadoop_home": "/opt/hadoop", "python": VENV_PYTHON, "jupyter": True}


def test_deploy_takes_the_images_python_and_keeps_the_token():
    facts = make_facts(services=("hdfs", "spark"))
    got, notes = deploy.reconcile_facts(facts=facts, image_marker=MARKER,
                                        services=("hdfs", "spark", "jupyter"))
    assert got.python == VENV_PYTHON and got.services == ("hdfs", "spark", "jupyter")
    assert len(got.jupyter_token) == 48 and "Jupyter" in notes[-1]
    again, _ = deploy.reconcile_facts(facts=facts, image_marker=MARKER,
                                      services=("hdfs", "spark", "jupyter"),
                                      previous={"jupyter_token": got.jupyter_token})
    assert again.jupyter_token == got.jupyter_token


def test_deploy_jupyter_refuses_an_image_without_it():
    marker = {**MARKER, "jupyter": False, "python": "/usr/bin/python3"}
    with pytest.raises(ValidationError, match="has no Jupyter") as err:
        deploy.reconcile_facts(facts=make_facts(), image_marker=marker,
                               services=("hdfs", "spark", "jupyter"))
    assert "create-image --jupyter" in err.value.hint
    got, _ = deploy.reconcile_facts(facts=make_facts(), image_marker=dict(marker),
                                    services=("hdfs", "spark"))
    assert got.python == "/usr/bin/python3" and got.jupyter_token == ""


# ----------------------------------------------------------------------------- the image
def _bake(**kw):
    text = render_bake_userdata(spark_version="4.3.0", hadoop_version="3.5.0",
                                mirror="https://archive.apache.org/dist", **kw)
    doc = yaml.safe_load(text.split("\n", 1)[1])
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    return files["/usr/local/lib/spark-openstack/bake.sh"], files


def test_python_packages_go_into_the_image_venv_pinned_by_the_constraints():
    bake, files = _bake(python_packages=["numpy==2.4.6", "pandas"], jupyter=True,
                        python_constraints="numpy==2.4.6\n# a comment\npandas==2.3.3\n",
                        pip_find_links="http://10.213.0.1:8099/pypi/")
    assert "--break-system-packages" not in bake
    assert "python3 -m venv \"$PYTHON_ENV\"" in bake and f"PYTHON_ENV={IMAGE_PYTHON_ENV}" in bake
    install = next(line for line in bake.splitlines() if "bin/pip\" install" in line)
    for package in ("numpy==2.4.6", "pandas", *JUPYTER_PACKAGES):
        assert f" {package}" in install
    assert "PIP_ARGS+=(--find-links http://10.213.0.1:8099/pypi/)" in bake
    assert "PIP_ARGS+=(--no-index)" in bake                     # find-links alone
    assert "PIP_ARGS+=(--trusted-host 10.213.0.1:8099)" in bake  # the plain-http one named
    assert "PIP_ARGS+=(-c /usr/local/lib/spark-openstack/python-constraints.txt)" in bake
    assert files["/usr/local/lib/spark-openstack/python-constraints.txt"].startswith(
        "numpy==2.4.6\n")
    assert '"jupyter": True' in bake and '"python": os.environ["PYTHON_BIN"]' in bake
    subprocess.run(["bash", "-n"], input=bake, text=True, check=True)


def test_an_image_without_packages_keeps_the_system_python():
    bake, files = _bake()
    assert "python3 -m venv" not in bake and "PYTHON_BIN=/usr/bin/python3" in bake
    assert '"jupyter": False' in bake
    assert not any("constraints" in path for path in files)
    bake, _ = _bake(python_packages=["six"], pip_index_url="https://pypi.example.org/simple")
    assert "--index-url https://pypi.example.org/simple" in bake and "--no-index" not in bake
    assert "--trusted-host" not in bake


@pytest.mark.parametrize("field,value,says", [
    ("python_constraints", "numpy==1\n--index-url http://evil/\n", "line 2"),
    ("python_constraints", "numpy==1; rm -rf /\n", "line 1"),
    ("pip_index_url", "ftp://mirror/simple", "--pip-index-url"),
    ("pip_find_links", "http://x/'; reboot; '", "--pip-find-links"),
])
def test_bake_inputs_that_would_reach_the_root_script_are_refused(field, value, says):
    with pytest.raises(ValidationError, match=says):
        ImageSpec(name="n", base_image="b", flavor="f", keypair="k",
                  allowed_cidrs=("10.0.0.1/32",), **{field: value})


def test_constraints_file_is_read_by_image_spec_from(tmp_path):
    pins = tmp_path / "constraints.txt"
    pins.write_text("six==1.17.0\n")
    resolved = config.resolve(flags={"python_constraints": str(pins), "jupyter": True,
                                     "base_image": "b", "keypair": "k",
                                     "allowed_cidr": ("10.0.0.1/32",)},
                              file_values={}, file_path=None, defaults=config.IMAGE_DEFAULTS)
    spec = config.image_spec_from(resolved, name="img")
    assert spec.python_constraints == "six==1.17.0\n" and spec.jupyter is True
    resolved.values["python_constraints"] = str(tmp_path / "missing.txt")
    with pytest.raises(UsageError, match="--python-constraints"):
        config.image_spec_from(resolved, name="img")


def test_image_properties_say_whether_it_has_jupyter():
    from spark_openstack.image import image_properties
    assert image_properties(MARKER)["jupyter"] == "true"
    assert image_properties({**MARKER, "jupyter": False})["jupyter"] == "false"
    assert image_properties({})["python"] == "/usr/bin/python3"


def test_the_sandbox_mirror_serves_the_pins_the_tool_installs():
    lines = [line.strip() for line in
             (ROOT / "sandbox" / "pypi-requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert tuple(lines) == JUPYTER_PACKAGES
    assert all("==" in p for p in JUPYTER_PACKAGES)


# ----------------------------------------------------------------------------- notebook command
def test_notebook_url_and_tunnel():
    facts = _facts()
    nb = notebook.notebook_for(facts=facts, local_port=9999)
    assert nb.url == f"http://localhost:9999/lab?token={facts.jupyter_token}"
    login = ["ssh", "-o", "X=y", "-i", "key", "-l", "debian", "--", "10.214.0.5"]
    argv = notebook.tunnel_command(login_argv=login, notebook=nb)
    assert argv[-4:] == ["-l", "debian", "--", "10.214.0.5"]
    assert "-N" in argv and argv[argv.index("-L") + 1] == "127.0.0.1:9999:10.213.0.10:8888"
    assert "ExitOnForwardFailure=yes" in argv
    assert facts.jupyter_token not in " ".join(argv)


def test_notebook_on_a_cluster_without_jupyter_says_how_to_add_it():
    with pytest.raises(ValidationError) as err:
        notebook.notebook_for(facts=make_facts())
    assert "deploy -c demo --jupyter" in err.value.hint


def test_a_busy_local_port_is_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(UsageError, match="busy"):
            notebook.check_port_free(sock.getsockname()[1])


def test_cli_help_names_the_new_options():
    runner = CliRunner()
    for args, words in ((["notebook", "--help"], ["--print-url", "--local-port", "8888"]),
                        (["launch", "--help"], ["--jupyter"]),
                        (["deploy", "--help"], ["--jupyter"]),
                        (["create-image", "--help"], ["--jupyter", "--python-constraints",
                                                      "--pip-index-url", "--pip-find-links",
                                                      "run-command"])):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        for word in words:
            assert word in result.output, (args, word)


class _FakeSsh:
    def __init__(self, polls_running: int):
        self.left, self.returncode, self.stderr = polls_running, None, None

    def poll(self):
        if self.left:
            self.left -= 1
            return None
        self.returncode = 255
        return 255


def test_wait_tunnel_says_when_the_tunnel_drops():
    from spark_openstack import errors, notebook
    with pytest.raises(errors.SSHError, match=r"the tunnel ended \(ssh exited 255\)"):
        notebook.wait_tunnel(_FakeSsh(3), check_every=0.01)


def test_wait_tunnel_ends_on_an_abort():
    """Its sleep is polling.sleep: an abort (Ctrl-C in another thread) ends it at once."""
    from spark_openstack import errors, notebook, polling
    polling.ABORT.set()
    try:
        with pytest.raises(errors.Interrupted):
            notebook.wait_tunnel(_FakeSsh(10 ** 6), check_every=60)
    finally:
        polling.ABORT.clear()
