"""Jupyter on the master: JupyterLab from the image's Python environment, run by
supervisord as hduser, bound to the master's private address, token required.

supervisord is started detached (``setsid``, no terminal, no inherited descriptors), so
it outlives the SSH session that started it, and restarts Jupyter whenever it exits.
The token lives in a hduser-only config file (never on a command line ``ps`` shows).
Port 8888 is INTERNAL (``spark_openstack.ports``): the security group never opens it;
``spark-openstack notebook`` reaches it through an SSH tunnel.
"""
from __future__ import annotations

import shlex

from ..errors import DeployError, TimeoutError_
from ..ports import Port
from ..dirs import cluster_dirs
from ..probes import wait_for_probe
from .base import STOP_TIMEOUT, Health, Service

#: HTTP answers that mean "refused without the token" (401/403, or a redirect to /login).
REFUSED = (401, 403, 302)


def parse_probe(text: str) -> tuple[int | None, int | None]:
    """The two status codes ``Jupyter.probe_command`` prints ("with without"); None for
    a request that got no HTTP answer at all (nothing listening)."""
    parts = text.strip().split()
    if len(parts) < 2:
        return None, None

    def code(word: str) -> int | None:
        return int(word) if word.isdigit() and word != "0" else None
    return code(parts[-2]), code(parts[-1])


class Jupyter(Service):
    name = "jupyter"
    title = "Jupyter"
    default = False     # only when asked (launch/deploy --jupyter, or --services ...,jupyter)
    #: It runs code for whoever has its token: never opened in the security group
    #: (INTERNAL), reached through ``spark-openstack notebook``'s SSH tunnel.
    ports = (Port("jupyter", 8888, web_ui=True),)
    #: Its files (templates under config_files/jupyter), each with where it goes (a
    #: ``Dirs`` field), rendered on the master only.
    template_dir = "jupyter"
    config_files = {"jupyter_server_config.py": "jupyter_config",
                    "supervisord.conf": "jupyter_config",
                    "kernel.json": "jupyter_kernel", "pyspark_startup.py": "jupyter_kernel"}
    master_only = True
    #: Its PySpark kernel runs on one of these (Spark standalone or YARN).
    needs_one_of = ("spark", "yarn")

    # -- where things are
    @property
    def url(self) -> str:
        return f"http://{self.master.private_ip}:{self.port('jupyter')}"

    @property
    def _dirs(self):
        return cluster_dirs(self.facts)

    @property
    def _bin(self) -> str:
        return self.facts.python.rsplit("/", 1)[0]

    @property
    def _conf(self) -> str:
        return f"{self._dirs.jupyter_config}/supervisord.conf"

    def _ctl(self, *args: str) -> str:
        return " ".join([shlex.quote(f"{self._bin}/supervisorctl"), "-c",
                         shlex.quote(self._conf), *map(shlex.quote, args)])

    def _supervisord_running(self) -> str:
        """A shell test: supervisord of this config runs (its pid file names a live one)."""
        pid_file = shlex.quote(f"{self._dirs.jupyter_config}/supervisord.pid")
        return (f"{{ p=$(cat {pid_file} 2>/dev/null) && [ -n \"$p\" ] && "
                f"tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -q supervisord; }}")

    # -- lifecycle
    def start(self) -> None:
        """Start supervisord (detached) unless it runs; else ask it to start Jupyter,
        which is a no-op when Jupyter runs. Then wait until Jupyter answers."""
        supervisord = shlex.quote(f"{self._bin}/supervisord")
        missing = shlex.quote(f"{self._bin}/jupyter")
        check = (f"[ -x {missing} ] || {{ echo 'no Jupyter in {self._bin}: the image was "
                 f"baked without create-image --jupyter' >&2; exit 3; }}")
        launch = (f"cd {shlex.quote(self._dirs.jupyter_notebooks)} && "
                  f"setsid {supervisord} -c {shlex.quote(self._conf)} "
                  f"</dev/null >/dev/null 2>&1")
        result = self.on_master(
            f"{check} && if {self._supervisord_running()}; then "
            f"{self._ctl('start', 'jupyter')} >/dev/null 2>&1 || true; "
            f"else rm -f {shlex.quote(self._dirs.jupyter_config + '/supervisor.sock')}; "
            f"{launch}; fi", timeout=60, check=False)
        if result.exited != 0:
            raise DeployError(f"jupyter: could not start supervisord on {self.master.name}: "
                              f"{(result.stderr or result.stdout).strip()[-400:]}",
                              hint=self._hint())

    def stop(self) -> None:
        """Stop Jupyter and supervisord (nothing running is fine); waits until gone."""
        running = self._supervisord_running()
        asked = self.on_master(
            f"if {running}; then {self._ctl('shutdown')} >/dev/null 2>&1 || kill \"$p\"; fi; "
            f"! {running}", timeout=90, check=False)
        if asked.exited == 0:
            return
        try:
            wait_for_probe(runner=self.runner, node=self.master, command=f"! {running}",
                           timeout=STOP_TIMEOUT, what="jupyter: supervisord to stop")
        except TimeoutError_:
            self.on_master(f"{running} && kill -9 \"$p\" 2>/dev/null; exit 0", timeout=30)

    # -- health
    def probe_command(self) -> str:
        """On the master: GET /api/status with the token, then without it; prints the two
        status codes (0 when nothing answered). The token is read from hduser's config file
        by the probe itself, so it never appears on a command line."""
        config = f"{self._dirs.jupyter_config}/jupyter_server_config.py"
        script = (
            "import re, sys, urllib.request, urllib.error\n"
            "token = re.search(r'IdentityProvider\\.token = \"([^\"]*)\"', "
            "open(sys.argv[1]).read()).group(1)\n"
            "def get(headers):\n"
            "    req = urllib.request.Request(sys.argv[2] + '/api/status', headers=headers)\n"
            "    opener = urllib.request.build_opener(NoRedirect)\n"
            "    try:\n"
            "        return opener.open(req, timeout=5).status\n"
            "    except urllib.error.HTTPError as exc:\n"
            "        return exc.code\n"
            "    except Exception:\n"
            "        return 0\n"
            "class NoRedirect(urllib.request.HTTPRedirectHandler):\n"
            "    def redirect_request(self, *args, **kwargs):\n"
            "        return None\n"
            "print(get({'Authorization': 'token ' + token}), get({}))\n")
        return (f"python3 -c {shlex.quote(script)} {shlex.quote(config)} "
                f"{shlex.quote(self.url)}")

    def health(self) -> Health:
        """Up = the token opens /api/status (200) AND a request without it is refused."""
        out = self.on_master(self.probe_command(), timeout=30, check=False)
        with_token, without = parse_probe(out.stdout)
        ok = with_token == 200 and without in REFUSED
        if ok:
            detail = "JupyterLab answers with the token, refuses without it"
        elif with_token is None:
            detail = "nothing answers on port %d" % self.port("jupyter")
        elif with_token != 200:
            detail = f"/api/status with the token answered {with_token}"
        else:
            detail = f"UNSAFE: /api/status without the token answered {without}"
        return Health(service=self.name, expected=1, actual=1 if ok else 0, detail=detail,
                      missing=() if ok else (self.master.name,))

    def diagnose(self) -> str:
        result = self.on_master(
            f"{self._ctl('status')} 2>&1; tail -n 15 "
            f"{shlex.quote(self._dirs.jupyter_logs + '/jupyter.log')} 2>/dev/null",
            timeout=30, check=False)
        return result.stdout.strip()

    def log_hint(self) -> str:
        return f"{self._dirs.jupyter_logs}/jupyter.log and supervisord.log"

    def _hint(self) -> str:
        return (f"look at {self.log_hint()} on {self.master.name}; an image without "
                "Jupyter needs `spark-openstack create-image --jupyter`")
