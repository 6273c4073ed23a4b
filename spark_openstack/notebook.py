"""``spark-openstack notebook``: the cluster's Jupyter through an SSH tunnel, with its URL.

Jupyter listens on the master's private address only (port 8888 is never opened in the
security group), so the way in is ``ssh -N -L PORT:MASTER_PRIVATE_IP:8888`` to the
master, with the same user, key and pinned host keys as ``login``. The token is read from
the facts file the last deploy wrote on the master (hduser-only); it is printed in the
URL, for the user's browser, and never put on a command line.
"""
from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass

from . import errors, polling
from .inventory import ClusterAccess
from .model import ClusterFacts
from .polling import poll
from .render import PORTS

DEFAULT_LOCAL_PORT = 8888
#: How long the tunnel may take to accept connections on the local port.
TUNNEL_TIMEOUT = 30


@dataclass(frozen=True)
class Notebook:
    """Where a cluster's Jupyter is and what opens it."""

    cluster: str
    token: str
    master_private_ip: str
    remote_port: int
    local_port: int

    @property
    def url(self) -> str:
        """What the browser opens once the tunnel runs."""
        return f"http://localhost:{self.local_port}/lab?token={self.token}"

    def to_dict(self) -> dict:
        return {"cluster": self.cluster, "url": self.url, "local_port": self.local_port,
                "remote": f"{self.master_private_ip}:{self.remote_port}",
                "token": self.token}


def notebook_for(*, facts: ClusterFacts, local_port: int = DEFAULT_LOCAL_PORT) -> Notebook:
    """The cluster's notebook from its deployed facts; ``ValidationError`` with the way
    to add Jupyter when the cluster runs none."""
    if not 1 <= local_port <= 65535:
        raise errors.UsageError(f"--local-port {local_port} is not a port number",
                                hint="pick one between 1024 and 65535, e.g. 8888")
    if "jupyter" not in facts.services or not facts.jupyter_token:
        raise errors.ValidationError(
            f"cluster {facts.cluster_name!r} runs no Jupyter (it runs "
            f"{', '.join(facts.services) or 'nothing'})",
            hint=f"add it with `spark-openstack deploy -c {facts.cluster_name} --jupyter` "
                 "(its image must be baked with `create-image --jupyter`)")
    return Notebook(cluster=facts.cluster_name, token=facts.jupyter_token,
                    master_private_ip=facts.master.private_ip,
                    remote_port=PORTS["jupyter"], local_port=local_port)


def read_notebook(*, access: ClusterAccess, local_port: int = DEFAULT_LOCAL_PORT) -> Notebook:
    """One SSH command on the master: its facts file, which holds the token."""
    facts = access.read_deployed(what="open the notebook of")
    return notebook_for(facts=facts, local_port=local_port)


def check_port_free(port: int) -> None:
    """``UsageError`` when something already listens on localhost:``port`` (connections
    of an earlier tunnel in TIME_WAIT do not count: ssh binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError as exc:
            raise errors.UsageError(
                f"local port {port} is busy ({exc.strerror or exc})",
                hint="pass another one with --local-port N (or stop what uses it, e.g. "
                     "another `spark-openstack notebook`)") from None


def tunnel_command(*, login_argv: list[str], notebook: Notebook) -> list[str]:
    """``login``'s ssh argv turned into a tunnel: no shell (-N), the local port forwarded
    to Jupyter on the master's private address, failing when the forward cannot be set up."""
    if "-l" not in login_argv:
        raise errors.ValidationError("the login command has no -l USER; cannot tunnel")
    at = login_argv.index("-l")
    forward = f"127.0.0.1:{notebook.local_port}:{notebook.master_private_ip}:{notebook.remote_port}"
    return [*login_argv[:at], "-N", "-L", forward, "-o", "ExitOnForwardFailure=yes",
            "-o", "ServerAliveInterval=30", *login_argv[at:]]


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def open_tunnel(*, argv: list[str], notebook: Notebook,
                timeout: float = TUNNEL_TIMEOUT) -> subprocess.Popen:
    """Start ssh and wait until the local port accepts connections; ``SSHError`` with
    ssh's own words when it exits first. The caller ends it (``close_tunnel``)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)

    def ready():
        if proc.poll() is not None:
            raise errors.SSHError(
                f"the tunnel to {notebook.master_private_ip} ended (ssh exited "
                f"{proc.returncode}): {(proc.stderr.read() or '').strip()[-400:]}",
                hint="`spark-openstack login -c NAME` shows whether SSH to the master works")
        return True if _accepts(notebook.local_port) else None
    try:
        poll(ready, timeout=timeout, what=f"the tunnel on localhost:{notebook.local_port}",
             interval=0.2, max_interval=1)
    except BaseException:
        close_tunnel(proc)
        raise
    return proc


def close_tunnel(proc: subprocess.Popen, *, timeout: float = 10) -> int:
    """End ssh (SIGTERM, then SIGKILL after ``timeout``); returns its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


def wait_tunnel(proc: subprocess.Popen, *, check_every: float = 1.0) -> None:
    """Block while ssh runs (until Ctrl-C, which the caller turns into ``close_tunnel``);
    ``SSHError`` when the tunnel drops by itself."""
    while proc.poll() is None:
        polling.sleep(check_every)
    err = (proc.stderr.read() if proc.stderr else "") or ""
    raise errors.SSHError(f"the tunnel ended (ssh exited {proc.returncode})"
                          + (f": {err.strip()[-400:]}" if err.strip() else ""),
                          hint="run `spark-openstack notebook` again")


def serve_notebook(*, access: ClusterAccess, notebook: Notebook, on_open=None) -> None:
    """The ``notebook`` command's tunnel to the master's Jupyter (``read_notebook``),
    open until Ctrl-C (then closed, and this returns) or until it drops (``SSHError``).
    ``on_open(notebook)`` is called once the local port answers."""
    from .inventory import login_command, require_ssh_client
    require_ssh_client()
    check_port_free(notebook.local_port)
    argv = tunnel_command(login_argv=login_command(facts=access.facts,
                                                   key_filename=access.key_filename,
                                                   known_hosts=access.known_hosts),
                          notebook=notebook)
    proc = open_tunnel(argv=argv, notebook=notebook)
    try:
        if on_open is not None:
            on_open(notebook)
        wait_tunnel(proc)
    except KeyboardInterrupt:
        return
    finally:
        close_tunnel(proc)
