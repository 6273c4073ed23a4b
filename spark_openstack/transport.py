"""How commands and files reach a cluster node: the runners the services are given.

Services never open connections themselves; they get a ``Runner``. The same service code
runs from the user's machine at launch (``SSHRunner``: SSH as the image's login user, then
``sudo -u hduser``) and from the master under ``fab`` (``MasterRunner``: the master's own
shell, and ``ssh`` with the cluster's hduser key to the workers). Tests substitute a runner
whose commands run locally against the real Hadoop release on loopback.

A module beside ``ssh`` rather than inside it: ``ssh`` opens one hardened Fabric
connection and imports Fabric and paramiko to do so; this one imports them only when an
``SSHRunner`` really connects, so ``MasterRunner`` and the tests' runners never need them.
"""
from __future__ import annotations

import io
import shlex
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from .errors import DeployError, SparkOpenstackError, SSHError, TimeoutError_
from .executor import run_per_node
from .model import ClusterFacts, Node

#: The account the services run as on every node.
SERVICE_USER = "hduser"


@dataclass
class CommandResult:
    stdout: str
    stderr: str
    exited: int


class Runner(Protocol):
    """Runs shell commands as the service account on a node, and writes files there."""

    def run(self, node: Node, command: str, *, timeout: float | None = None,
            check: bool = True) -> CommandResult: ...

    def put_files(self, node: Node, files: dict[str, tuple[str | bytes, int]], *,
                  owner: str = SERVICE_USER) -> None: ...

    def close(self) -> None: ...


def tar_bytes(files: dict[str, tuple[str | bytes, int]]) -> bytes:
    """A gzip tar of ``{absolute path: (content, mode)}`` (paths stored relative to /)."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, (content, mode) in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, now
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def extract_command(*, archive: str, files, owner: str) -> str:
    """Unpack over existing directories (following /opt/spark -> /opt/spark-x symlinks),
    then give the files to ``owner`` (``archive`` "-" is stdin)."""
    quoted = " ".join(shlex.quote(p) for p in sorted(files))
    return (f"tar -xzf {shlex.quote(archive)} -C / --no-same-owner --no-overwrite-dir"
            + (f" && chown {shlex.quote(owner)}:{shlex.quote(owner)} {quoted}" if files else ""))


def run_with_input(*, conn, command: str, data: bytes, timeout: float,
                   where: str) -> CommandResult:
    """``command`` on one new channel of an open connection, ``data`` on its stdin (then
    EOF): a whole upload-and-unpack in one round trip, no SFTP, no temp file."""
    import socket

    import paramiko
    shown = command if len(command) < 200 else command[:200] + "..."
    try:
        if not conn.is_connected:
            conn.open()
        chan = conn.client.get_transport().open_session(timeout=30)
    except Exception as exc:  # noqa: BLE001 - a dropped connection, a refused channel
        raise SSHError(f"{where}: `{shown}` could not run: {exc}") from exc
    try:
        chan.settimeout(timeout)
        chan.exec_command(command)
        send_error = None
        try:
            chan.sendall(data)
            chan.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            send_error = exc   # the command ended early: its exit status says why
        stdout = chan.makefile("rb").read().decode(errors="replace")
        stderr = chan.makefile_stderr("rb").read().decode(errors="replace")
        if not chan.status_event.wait(timeout):
            raise socket.timeout()
        exited = chan.recv_exit_status()
    except socket.timeout as exc:
        raise TimeoutError_(f"{where}: `{shown}` did not finish in {timeout:.0f}s") from exc
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise SSHError(f"{where}: `{shown}` could not run: {exc}") from exc
    finally:
        chan.close()
    if exited == 0 and send_error is not None:
        raise SSHError(f"{where}: upload to `{shown}` failed: {send_error}")
    return CommandResult(stdout, stderr, exited)


# ----------------------------------------------------------------------------- SSH runner
class SSHRunner:
    """From the user's machine: SSH as the image's login user, commands via sudo -u hduser.

    Workers without a floating IP are reached through ``gateway_host`` (the master's
    address) when one is given. One connection per node, reused and closed by ``close``.
    ``known_hosts`` (the cluster's pinned keys) is checked on every connection, the
    gateway's included; None accepts any key.
    """

    def __init__(self, *, ssh_user: str, key_filename: str | None,
                 gateway_host: str | None = None, connect_timeout: float = 15,
                 known_hosts: str | None = None):
        self.ssh_user = ssh_user
        self.key_filename = key_filename
        self.gateway_host = gateway_host
        self.connect_timeout = connect_timeout
        self.known_hosts = known_hosts
        self._conns: dict[str, object] = {}
        self._gateway = None
        self._lock = threading.Lock()
        self._node_locks: dict[str, threading.Lock] = {}
        self._closed = False

    def _connection(self, node: Node):
        from . import ssh  # Fabric/paramiko only where SSH is really used
        with self._lock:
            conn = self._conns.get(node.name)
            if conn is not None:
                return conn
            gateway = None
            host = node.address
            if self.gateway_host and not node.public_ip and host != self.gateway_host:
                if self._gateway is None:
                    self._gateway = ssh.connect(host=self.gateway_host, user=self.ssh_user,
                                                key_filename=self.key_filename,
                                                timeout=self.connect_timeout,
                                                known_hosts=self.known_hosts)
                gateway = self._gateway
                host = node.private_ip
            # one connection per node, even when several threads ask for it at once
            node_lock = self._node_locks.setdefault(node.name, threading.Lock())
        with node_lock:
            with self._lock:
                conn = self._conns.get(node.name)
            if conn is None:
                conn = ssh.connect(host=host, user=self.ssh_user,
                                   key_filename=self.key_filename, gateway=gateway,
                                   timeout=self.connect_timeout, known_hosts=self.known_hosts)
                with self._lock:
                    closed = self._closed
                    if not closed:
                        self._conns[node.name] = conn
                if closed:     # closed meanwhile (a failed deploy): leave nothing open
                    conn.close()
                    raise SSHError(f"{node.name}: the deploy's connections are closed")
        return conn

    def connect(self, nodes) -> None:
        """Open the connections to ``nodes`` now, all at once (ahead of their first use);
        a node that cannot be reached fails when it is used, with its own error."""
        nodes = list(nodes)

        def one(node: Node) -> None:
            try:
                self._connection(node)
            except SparkOpenstackError:
                pass
        run_per_node(one, nodes, what="connect", max_workers=max(1, len(nodes)))

    def _as_service_user(self, command: str) -> str:
        inner = f"bash -lc {shlex.quote(command)}"
        if self.ssh_user == SERVICE_USER:
            return inner
        return f"cd / && sudo -n -u {SERVICE_USER} -H {inner}"

    def _as_root(self, command: str) -> str:
        return command if self.ssh_user == "root" else f"sudo -n bash -c {shlex.quote(command)}"

    def run_as_root(self, node: Node, command: str, *, timeout: float | None = None,
                    check: bool = True) -> CommandResult:
        return self._raw(node, self._as_root(command), timeout=timeout, check=check)

    def run(self, node: Node, command: str, *, timeout: float | None = None,
            check: bool = True) -> CommandResult:
        return self._raw(node, self._as_service_user(command), timeout=timeout, check=check)

    def run_as_login_user(self, node: Node, command: str, *, timeout: float | None = None,
                          check: bool = True, stdin: bytes | None = None) -> CommandResult:
        """``command`` as the image's login user, neither sudo nor a login shell: what the
        user would get from ``ssh`` (run-command, copy-file). ``stdin`` is sent, then EOF."""
        return self._raw(node, command, timeout=timeout, check=check, stdin=stdin)

    def _raw(self, node: Node, command: str, *, timeout, check,
             stdin: bytes | None = None) -> CommandResult:
        """One command on its own channel: commands on one node may run side by side."""
        from . import ssh
        conn = self._connection(node)
        if stdin is None:
            result = ssh.run(conn, command, warn=not check, timeout=timeout)
            return CommandResult(result.stdout or "", result.stderr or "", result.exited)
        timeout = ssh.DEFAULT_COMMAND_TIMEOUT if timeout is None else timeout
        result = run_with_input(conn=conn, command=command, data=stdin, timeout=timeout,
                                where=node.name)
        if check and result.exited != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise SSHError(f"{node.name}: `{command[:200]}` exited {result.exited}"
                           + (f":\n{tail}" if tail else ""))
        return result

    def put_files(self, node: Node, files: dict[str, tuple[str | bytes, int]], *,
                  owner: str = SERVICE_USER,
                  root_files: dict[str, tuple[str | bytes, int]] | None = None,
                  setup: str = "", timeout: float = 300) -> None:
        """Push once: ONE command as root gets a gzip tar of ``files`` and ``root_files``
        on its stdin, runs ``setup`` (a shell command, e.g. making directories), unpacks,
        and hands ``files`` to ``owner`` (``root_files`` stay root's)."""
        if not files and not root_files and not setup:
            return
        command = " && ".join(part for part in (
            setup, (extract_command(archive="-", files=files, owner=owner)
                    if files or root_files else "")) if part)
        self._raw(node, self._as_root(command), timeout=timeout, check=True,
                  stdin=tar_bytes({**(root_files or {}), **files}) if files or root_files
                  else b"")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._conns = list(self._conns.values()), {}
            gateway, self._gateway = self._gateway, None
        for conn in conns:
            conn.close()
        if gateway is not None:
            gateway.close()


# ----------------------------------------------------------------------------- on the master
class MasterRunner:
    """On the master itself (``fab``, run as hduser): a local shell for the master, and
    ``ssh`` with the cluster's hduser key to every other node."""

    SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                   "-o", "ConnectTimeout=10")

    def __init__(self, *, facts: ClusterFacts):
        self.facts = facts

    def _argv(self, node: Node, command: str) -> list[str]:
        if node.name == self.facts.master.name:
            return ["bash", "-lc", command]
        return ["ssh", *self.SSH_OPTIONS, f"{SERVICE_USER}@{node.private_ip}",
                f"bash -lc {shlex.quote(command)}"]

    def _exec(self, node: Node, argv: list[str], *, stdin: bytes | None, timeout,
              check: bool, shown: str) -> CommandResult:
        try:
            # Never the caller's stdin: `fab` run from a piped script must not eat the rest.
            proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout,
                                  **({} if stdin is not None else {"stdin": subprocess.DEVNULL}))
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError_(f"{node.name}: `{shown}` did not finish in {timeout}s") from exc
        result = CommandResult(proc.stdout.decode(errors="replace"),
                               proc.stderr.decode(errors="replace"), proc.returncode)
        if check and result.exited != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
            raise SSHError(f"{node.name}: `{shown}` exited {result.exited}"
                           + (f":\n{tail}" if tail else ""))
        return result

    def run(self, node: Node, command: str, *, timeout: float | None = None,
            check: bool = True) -> CommandResult:
        return self._exec(node, self._argv(node, command), stdin=None, timeout=timeout,
                          check=check, shown=command)

    def put_files(self, node: Node, files: dict[str, tuple[str | bytes, int]], *,
                  owner: str = SERVICE_USER) -> None:
        if not files:
            return
        if owner != SERVICE_USER:
            raise DeployError(f"{node.name}: fab runs as {SERVICE_USER} and cannot write "
                              f"files owned by {owner}",
                              hint="re-run `spark-openstack launch`'s deploy from your machine")
        command = "tar -xzf - -C / --no-same-owner --no-overwrite-dir"
        self._exec(node, self._argv(node, command), stdin=tar_bytes(files), timeout=120,
                   check=True, shown=command)

    def close(self) -> None:
        pass
