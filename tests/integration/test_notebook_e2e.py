"""Jupyter on the master and Python packages in the image (issue 11, parts 4 and 5) end to
end on the sandbox, through the CLI as a user runs it.

The image is baked with ``create-image --jupyter --python-packages six`` from the sandbox
mirror's ``pypi/`` folder (wheels for the hosts' Python, pinned by its constraints.txt,
made by sandbox/build_pypi_mirror.sh); ONE cluster (``launch -s 1 --jupyter``, m1.medium:
two cores on the worker, so two notebooks each get one). The tests run in file order:

1. ``launch --jupyter`` from an image without Jupyter is refused before anything exists;
2. ``status`` reports Jupyter healthy (token opens it, its absence is refused);
3. the cluster's security group has no rule for 8888;
4. from the master: /api/status without the token is refused (403), with it 200;
5. a notebook executed on the master as hduser by nbconvert through the PySpark kernel
   computes a Spark sum, counts lines of an HDFS file, and driver and executors run the
   image's Python (with the baked package);
6. two notebooks executed at the same time both finish (each capped at one core);
7. ``notebook --print-url`` prints the URL with the token;
8. ``notebook`` (the tunnel): GET through localhost answers 200 with the token and 403
   without; SIGINT closes it cleanly (exit 0, port free again);
9. supervisord restarts Jupyter after its process is killed;
10. ``destroy`` leaves nothing (checked before any other cleanup).
"""
from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from support.e2e import ALLOWED, BASE_IMAGE, CLI, MIRROR, REAL_CLOUD, ROOT, baked_image, cli
from support.e2e import fixed_ip as _fixed_ip
from support.e2e import notebook_json as _notebook_json
from support.e2e import notebook_outputs as _outputs
from support.e2e import as_hduser as _as_hduser
from support.e2e import leftovers as _leftovers
from support.e2e import ok as _ok
from support.e2e import said as _said
from support.e2e import ssh as _ssh

pytestmark = [pytest.mark.sandbox, pytest.mark.e2e]

FLAVOR = "m1.medium"          # 2 vCPUs on the worker: two notebooks, one core each
VENV_PYTHON = "/opt/spark-openstack/python/bin/python"
JUPYTER = "/opt/spark-openstack/python/bin/jupyter"
SANDBOX_MIRROR_DIR = ROOT / ".sandbox" / "mirror"


# ============================================================================ helpers
def _execute_command(names: list[str]) -> str:
    """Run notebooks at once on the master as hduser with nbconvert through the PySpark
    kernel; each result lands as NAME.out.ipynb."""
    runs = " ".join(
        f"( timeout 600 {JUPYTER} nbconvert --to notebook --execute "
        f"--ExecutePreprocessor.kernel_name=pyspark --ExecutePreprocessor.timeout=500 "
        f"--output {n}.out.ipynb {n}.ipynb > {n}.log 2>&1; echo \"{n} exit $?\" ) &"
        for n in names)
    return f"cd ~/notebooks || exit 1; {runs} wait"


def _status_code(url: str, headers: dict | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ============================================================================ fixtures
@pytest.fixture(scope="module")
def pypi_mirror():
    """The sandbox mirror's wheels (built once, cached); a real cloud brings its own."""
    if REAL_CLOUD:
        pytest.skip("the notebook test bakes from the sandbox mirror's pypi/ folder")
    proc = subprocess.run([str(ROOT / "sandbox" / "build_pypi_mirror.sh"),
                           str(SANDBOX_MIRROR_DIR), sys.executable],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"build_pypi_mirror.sh: {_said(proc)}"
    constraints = SANDBOX_MIRROR_DIR / "pypi" / "constraints.txt"
    assert constraints.is_file()
    return f"{MIRROR}/pypi/", constraints


@pytest.fixture(scope="module")
def jupyter_image(e2e_env, cloud, keypair, pypi_mirror):
    links, constraints = pypi_mirror
    with baked_image(e2e_env, cloud, keypair, prefix="nb-img", flavor="m1.small",
                     extra=("--jupyter", "--python-packages", "six", "--python-constraints",
                            str(constraints), "--pip-find-links", links)) as name:
        image = cloud.image.find_image(name)
        assert image.properties.get("jupyter") == "true"
        assert image.properties.get("python") == VENV_PYTHON
        yield name


class NB:
    """The module's one cluster."""

    def __init__(self, env, cloud, cluster, key):
        self.env, self.cloud, self.cluster, self.key = env, cloud, cluster, key
        self.host = ""
        self.destroyed = False

    def run(self, *args, check=True, timeout=900):
        command, rest = args[0], args[1:]
        extra = [] if command in ("destroy", "describe") else ["--identity-file", self.key]
        return cli(self.env, command, "-c", self.cluster, *extra, *rest, check=check,
                   timeout=timeout)

    def on_master(self, command: str, *, what: str, timeout=600, stdin=None) -> str:
        return _ok(_ssh(self.host, self.key, command, timeout=timeout, stdin=stdin), what)

    def token(self) -> str:
        url = self.run("notebook", "--print-url").stdout.strip()
        match = re.fullmatch(r"http://localhost:8888/lab\?token=([0-9a-f]{48})", url)
        assert match, url
        return match[1]


@pytest.fixture(scope="module")
def nb(e2e_env, cloud, keypair, jupyter_image):
    kp_name, key = keypair
    cluster = f"nb{uuid.uuid4().hex[:6]}"
    state = NB(e2e_env, cloud, cluster, key)
    try:
        proc = cli(e2e_env, "launch", "-c", cluster, "-s", "1", "-k", kp_name,
                   "-i", jupyter_image, "--identity-file", key, "--flavor", FLAVOR,
                   "--allowed-cidr", ALLOWED, "--no-floating-ip", "--jupyter",
                   "--services", "hdfs,spark")
        assert "jupyter: 1/1" in proc.stdout and "[ok]" in proc.stdout, _said(proc)
        assert f"spark-openstack notebook -c {cluster}" in proc.stdout
        master = next(s for s in cloud.compute.servers() if s.name == f"{cluster}-master")
        state.host = _fixed_ip(cloud.compute.get_server(master.id))
        yield state
    finally:
        if not state.destroyed:       # safety net; test_destroy checks leftovers itself
            cli(e2e_env, "destroy", "-c", cluster, "--yes", check=False, timeout=600)


# ============================================================================ tests
def test_launch_jupyter_refuses_an_image_without_it_before_creating_anything(
        e2e_env, cloud, keypair):
    kp_name, key = keypair
    cluster = f"nb{uuid.uuid4().hex[:6]}"
    proc = cli(e2e_env, "launch", "-c", cluster, "-s", "1", "-k", kp_name, "-i", BASE_IMAGE,
               "--identity-file", key, "--allowed-cidr", ALLOWED, "--no-floating-ip",
               "--jupyter", check=False, timeout=300)
    assert proc.returncode != 0, _said(proc)
    assert BASE_IMAGE in proc.stderr and "create-image --jupyter" in proc.stderr, _said(proc)
    assert not any(_leftovers(cloud, cluster).values())


def test_status_reports_jupyter_healthy(nb):
    proc = nb.run("status", "--json")
    report = json.loads(proc.stdout)
    jupyter = report["services"]["jupyter"]
    assert jupyter["ok"] and jupyter["expected"] == 1 and jupyter["actual"] == 1, report
    assert "refuses without it" in jupyter["line"]
    assert report["healthy"] is True


def test_the_security_group_has_no_rule_for_8888(nb):
    group = nb.cloud.network.find_security_group(f"spark-openstack-{nb.cluster}")
    assert group is not None
    rules = list(nb.cloud.network.security_group_rules(security_group_id=group.id))
    assert rules, "the group has no rules at all (SSH should be there)"
    outside = [r for r in rules if r.direction == "ingress" and r.remote_group_id != group.id]
    assert any(r.port_range_min == 22 for r in outside), "no SSH rule"
    for rule in rules:
        if rule.direction == "ingress" and rule.remote_group_id == group.id:
            continue      # the cluster's own servers reach each other on every port
        low, high = rule.port_range_min, rule.port_range_max
        covers = rule.direction == "ingress" and (
            low is None or high is None or low <= 8888 <= high)
        assert not covers, f"a rule lets 8888 in from outside the cluster: {rule.to_dict()}"


def test_jupyter_refuses_requests_without_the_token(nb):
    token = nb.token()
    url = f"http://{nb.host}:8888/api/status"
    probe = ("import sys, urllib.request, urllib.error\n"
             "def get(h):\n"
             "    try:\n"
             "        return urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=h), timeout=10).status\n"
             "    except urllib.error.HTTPError as e:\n"
             "        return e.code\n"
             "print(get({}), get({'Authorization': 'token ' + sys.stdin.read().strip()}))\n")
    out = nb.on_master(f"python3 -c {shlex.quote(probe)} {shlex.quote(url)}", what="probe",
                       stdin=token.encode())  # the token never on a command line
    without, with_token = out.split()
    assert without in ("401", "403"), out
    assert with_token == "200", out
    # and nothing answers on the master's other addresses (bound to the private one)
    out = nb.on_master("python3 -c 'import socket; s=socket.socket(); s.settimeout(3); "
                       "print(s.connect_ex((\"127.0.0.1\", 8888)))'", what="loopback")
    assert out.strip() != "0", "Jupyter answers on 127.0.0.1 too"


def test_a_notebook_computes_on_the_cluster(nb):
    lines = "\n".join(f"line {i}" for i in range(123)) + "\n"
    nb.on_master(_as_hduser("hdfs dfs -mkdir -p /user/hduser/nb && "
                            "hdfs dfs -put -f - /user/hduser/nb/lines.txt"),
                 what="hdfs put", stdin=lines.encode())
    cells = [
        "print('SUM', sc.parallelize(range(1, 100001), 4).sum())",
        "print('LINES', spark.read.text('/user/hduser/nb/lines.txt').count())",
        "import sys\nprint('DRIVER', sys.executable, sc.master)",
        "print('EXECUTOR', sc.parallelize([0], 1).map(lambda _: __import__('sys').executable"
        " + ' six=' + __import__('six').__version__).collect()[0])",
        "print('CAP', sc.getConf().get('spark.cores.max'), "
        "sc.getConf().get('spark.dynamicAllocation.enabled'))",
    ]
    nb.on_master(_as_hduser("cat > ~/notebooks/one.ipynb"), what="upload",
                 stdin=_notebook_json(cells).encode())
    began = time.monotonic()
    out = nb.on_master(_as_hduser(_execute_command(["one"])), what="nbconvert")
    log = nb.on_master(_as_hduser("cat ~/notebooks/one.log"), what="log")
    assert "one exit 0" in out, log[-3000:]
    text = _outputs(nb.on_master(_as_hduser("cat ~/notebooks/one.out.ipynb"),
                                 what="result"))
    assert "SUM 5000050000" in text, text
    assert "LINES 123" in text, text
    assert f"DRIVER {VENV_PYTHON} spark://{nb.host}:7077" in text, text
    assert f"EXECUTOR {VENV_PYTHON} six=1.17.0" in text, text   # pinned by constraints
    assert "CAP 1 true" in text, text
    print(f"notebook executed in {time.monotonic() - began:.1f}s")


def test_two_notebooks_at_once_both_finish(nb):
    cell = ("import time\nt = time.time()\n"
            "print('TOTAL', sc.parallelize(range(200), 2).map(lambda x: (time.sleep(0.05), x)[1])"
            ".sum(), round(time.time() - t, 1))")
    for name in ("two-a", "two-b"):
        nb.on_master(_as_hduser(f"cat > ~/notebooks/{name}.ipynb"), what="upload",
                     stdin=_notebook_json([cell]).encode())
    began = time.monotonic()
    out = nb.on_master(_as_hduser(_execute_command(["two-a", "two-b"])), what="nbconvert x2",
                       timeout=900)
    took = time.monotonic() - began
    for name in ("two-a", "two-b"):
        log = nb.on_master(_as_hduser(f"tail -c 3000 ~/notebooks/{name}.log"),
                           what="log")
        assert f"{name} exit 0" in out, log
        text = _outputs(nb.on_master(_as_hduser(f"cat ~/notebooks/{name}.out.ipynb"),
                                     what="result"))
        assert "TOTAL 19900" in text, text
    print(f"two notebooks at once: {took:.1f}s")


def test_notebook_print_url_prints_the_url_with_its_token(nb):
    token = nb.token()
    proc = nb.run("notebook", "--print-url", "--json")
    doc = json.loads(proc.stdout)
    assert doc["url"] == f"http://localhost:8888/lab?token={token}"
    assert doc["remote"] == f"{nb.host}:8888"


def test_notebook_tunnel_reaches_jupyter_and_closes_on_ctrl_c(nb):
    """Twice on the same local port: the second tunnel opens right after the first closed
    (its connections in TIME_WAIT do not make the port "busy")."""
    token = nb.token()
    port = _free_port()
    for attempt in (1, 2):
        proc = subprocess.Popen([CLI, "notebook", "-c", nb.cluster, "--identity-file", nb.key,
                                 "--local-port", str(port)], env=nb.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().strip()
            assert url == f"http://localhost:{port}/lab?token={token}", \
                f"{url!r} {proc.stderr.read() if proc.poll() is not None else ''}"
            base = f"http://127.0.0.1:{port}"
            assert _status_code(f"{base}/api/status",
                                {"Authorization": f"token {token}"}) == 200
            assert _status_code(f"{base}/api/status") in (401, 403)
            assert _status_code(f"{base}/api/kernelspecs?token={token}") == 200
            if attempt == 1:
                busy = nb.run("notebook", "--local-port", str(port), check=False)
                assert busy.returncode == 2 and "busy" in busy.stderr, _said(busy)
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=30)
            err = proc.stderr.read()
            assert rc == 0, err
            assert "tunnel closed" in err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        with socket.socket() as sock:      # nothing listens there any more: no ssh left
            sock.settimeout(2)
            assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_supervisord_restarts_jupyter_when_it_dies(nb):
    ctl = ("/opt/spark-openstack/python/bin/supervisorctl -c "
           "/home/hduser/.jupyter/supervisord.conf")
    pid = nb.on_master(_as_hduser(f"{ctl} pid jupyter"), what="pid").strip()
    assert pid.isdigit() and pid != "0", pid
    nb.on_master(_as_hduser(f"kill -9 {pid}"), what="kill jupyter")
    deadline = time.monotonic() + 120
    while True:
        proc = nb.run("status", "--json", check=False)
        report = json.loads(proc.stdout)
        new = nb.on_master(_as_hduser(f"{ctl} pid jupyter"), what="pid").strip()
        if report["services"]["jupyter"]["ok"] and new not in (pid, "0"):
            break
        assert time.monotonic() < deadline, f"Jupyter not back: {report}"
        time.sleep(2)


def test_destroy_leaves_nothing(nb):
    nb.run("destroy", "--yes", timeout=600)
    nb.destroyed = True
    assert not any(_leftovers(nb.cloud, nb.cluster).values()), _leftovers(nb.cloud, nb.cluster)
