"""SSH to cluster nodes (Fabric 3 over paramiko).

Nodes are fresh servers whose host keys nobody knows yet and whose addresses clouds
recycle. With ``known_hosts=`` (the cluster's file, see ``hostkeys``) a key is pinned at
first contact and must be the same on every later connection; without it (benchmarks,
create-image's throwaway builder) any key is accepted and nothing is written (fabric's
``Connection`` starts with an empty host-key store and ``AutoAddPolicy``).
Workers without a floating IP are reached through the master (``gateway=``).
"""
from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Callable

import fabric
import paramiko

from . import hostkeys
from .errors import DeployError, HostKeyChanged, SparkOpenstackError, SSHError
from .polling import poll

#: paramiko logs every refused hop ("Secsh channel 3 open FAILED") at ERROR; with no
#: handler configured Python prints those to stderr. Probing workers that do not listen
#: yet is normal here and reported through progress, so paramiko stays quiet unless the
#: application configures logging itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

#: Every remote command has a limit; callers that need longer (installs) pass their own.
DEFAULT_COMMAND_TIMEOUT = 600
#: A dead peer is noticed within a few keepalive intervals instead of TCP's hours.
KEEPALIVE_SECONDS = 10
#: Opening a channel (a session, SFTP, or a hop through the master) answers or fails within
#: this; paramiko's own default is an hour.
CHANNEL_TIMEOUT = 20


def _harden(conn: fabric.Connection, *, timeout: float) -> None:
    """Keepalive and bounded channel opens on an opened connection's transport."""
    transport = conn.client.get_transport() if conn.client else None
    if transport is not None:
        transport.set_keepalive(KEEPALIVE_SECONDS)
        transport.channel_timeout = max(CHANNEL_TIMEOUT, timeout)


def connect(*, host: str, user: str, key_filename: str | None,
            gateway: "fabric.Connection | None" = None, timeout: float = 10,
            known_hosts: str | None = None) -> fabric.Connection:
    """An opened ``fabric.Connection`` using exactly this key (no agent, no key search).

    Every step is bounded: TCP connect, banner and auth by ``timeout``; the hop through
    ``gateway`` (a direct-tcpip channel on the master's transport) by the gateway's
    channel timeout; the connection keeps itself alive so a dead node is noticed.

    ``known_hosts`` pins host keys (trust on first use): a host in that file must show
    the key recorded there (else ``HostKeyChanged``), an unknown one is recorded under
    the address connected to. The gateway verifies its own key (it was made by
    ``connect`` with the same file); this connection's client verifies the worker's.
    """
    connect_kwargs = {"banner_timeout": timeout, "auth_timeout": timeout,
                      "allow_agent": key_filename is None, "look_for_keys": False}
    if key_filename:
        connect_kwargs["key_filename"] = [key_filename]
    if gateway is not None:
        if not gateway.is_connected:
            try:
                gateway.open()
            except paramiko.BadHostKeyException as exc:
                raise _changed(exc, known_hosts=known_hosts) from exc
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise SSHError(f"ssh gateway {gateway.user}@{gateway.host}: "
                               f"{_describe(exc)}") from exc
        _harden(gateway, timeout=timeout)
    conn = fabric.Connection(host=host, user=user, connect_kwargs=connect_kwargs,
                             gateway=gateway, connect_timeout=int(max(timeout, 1)))
    if known_hosts is not None:
        hostkeys.pin(conn.client, known_hosts=known_hosts)
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        conn.close()
        raise _changed(exc, known_hosts=known_hosts) from exc
    except SparkOpenstackError:          # the pinning policy's own (an unwritable file)
        conn.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        conn.close()
        via = f" via {gateway.host}" if gateway is not None else ""
        raise SSHError(f"ssh {user}@{host}{via}: {_describe(exc)}") from exc
    _harden(conn, timeout=timeout)
    return conn


def _changed(exc: paramiko.BadHostKeyException, *, known_hosts: str | None) -> HostKeyChanged:
    """A key that is not the pinned one (the gateway's pins come from the same file)."""
    return hostkeys.changed_error(exc, known_hosts=known_hosts or "the pinned host keys")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, paramiko.BadHostKeyException):   # a reconnect inside fabric
        return (f"the host key of {exc.hostname} changed since it was pinned (possible "
                "man-in-the-middle, or the server was rebuilt)")
    if isinstance(exc, paramiko.AuthenticationException):
        return f"authentication failed ({exc}); is the identity file the keypair's key?"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused (sshd not listening yet?)"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out connecting"
    if isinstance(exc, paramiko.SSHException):
        return f"ssh protocol error: {exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def wait_for_login(*, host: str, user: str, key_filename: str | None,
                   gateway: "fabric.Connection | None" = None, timeout: float,
                   known_hosts: str | None = None,
                   handshakes: "threading.Semaphore | None" = None) -> fabric.Connection:
    """Retry until sshd answers AND our key logs in; return that open connection (the
    caller closes it), so the first probe that succeeds is also the one that works.

    Authentication failures are retried: cloud-init installs the key after sshd may
    already accept connections. A changed host key (``known_hosts``) is not: waiting
    cannot make it right. ``handshakes`` bounds how many connects run at once (many
    workers through one master), the waits between attempts hold no slot.
    """
    deadline = time.monotonic() + timeout

    def attempt():
        remaining = max(1.0, deadline - time.monotonic())
        with handshakes if handshakes is not None else contextlib.nullcontext():
            return [connect(host=host, user=user, key_filename=key_filename,
                            gateway=gateway, timeout=min(10.0, remaining),
                            known_hosts=known_hosts)]

    return poll(attempt, timeout=timeout, what=f"SSH to {user}@{host}", interval=0.5,
                max_interval=2, transient=(SSHError,), fatal=(HostKeyChanged,),
                hint="check the security group (--allowed-cidr), the identity file and "
                     "--ssh-user for this image")[0]


def wait_for_ssh(*, host: str, user: str, key_filename: str | None,
                 gateway: "fabric.Connection | None" = None, timeout: float,
                 known_hosts: str | None = None) -> None:
    """``wait_for_login``, then a command must run (``true``); the connection is closed."""
    deadline = time.monotonic() + timeout

    def probe():
        conn = wait_for_login(host=host, user=user, key_filename=key_filename,
                              gateway=gateway, known_hosts=known_hosts,
                              timeout=max(1.0, deadline - time.monotonic()))
        try:
            result = conn.run("true", hide=True, warn=True, in_stream=False,
                              timeout=max(5, int(min(30, deadline - time.monotonic()))))
        except Exception as exc:  # noqa: BLE001 - a stalled or dropped probe: try again
            raise SSHError(_describe(exc)) from exc
        finally:
            conn.close()
        if result.exited != 0:
            raise SSHError(f"`true` exited {result.exited}")
        return True

    poll(probe, timeout=timeout, what=f"SSH to {user}@{host}", interval=1, max_interval=3,
         transient=(SSHError,), fatal=(HostKeyChanged,),
         hint="check the security group (--allowed-cidr), the identity file and "
              "--ssh-user for this image")


def run(conn: fabric.Connection, command: str, *, hide: bool = True, warn: bool = False,
        timeout: float | None = None):
    """Run ``command``; on a non-zero exit (unless ``warn``) raise ``SSHError`` with the
    command, the exit code and the tail of stderr."""
    timeout = DEFAULT_COMMAND_TIMEOUT if timeout is None else timeout
    try:
        result = conn.run(command, hide=hide, warn=True, timeout=timeout, in_stream=False)
    except Exception as exc:  # noqa: BLE001 - connection loss, command timeout
        raise SSHError(f"{conn.host}: `{command}` could not run: {_describe(exc)}") from exc
    if result.exited != 0 and not warn:
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-15:])
        raise SSHError(f"{conn.host}: `{command}` exited {result.exited}"
                       + (f":\n{tail}" if tail else ""))
    return result


def wait_until_booted(*, host: str, user: str, key_filename: str | None,
                      gateway: "fabric.Connection | None" = None, timeout: float,
                      on_step: Callable[[str], None] | None = None,
                      known_hosts: str | None = None,
                      handshakes: "threading.Semaphore | None" = None,
                      keep_open: bool = False) -> "fabric.Connection | None":
    """A node is booted when SSH logs in AND cloud-init has finished there: the one
    definition of "ready" that launch and the benchmarks share. ``on_step`` hears
    "waiting for ssh" and "waiting for cloud-init" as each wait begins.

    One connection per try: the login that succeeds runs the cloud-init wait. A try
    whose connection drops or whose channel cannot open (a busy gateway at large N) is
    one more try, not a failed launch. With ``known_hosts`` the node's key is pinned at
    the first login (see ``connect``). With ``keep_open`` the connection is returned
    open (the master becomes the workers' gateway), else closed and None returned.
    """
    deadline = time.monotonic() + timeout

    def one_try():
        if on_step:
            on_step("waiting for ssh")
        conn = wait_for_login(host=host, user=user, key_filename=key_filename,
                              gateway=gateway, known_hosts=known_hosts,
                              timeout=max(5, deadline - time.monotonic()),
                              handshakes=handshakes)
        try:
            if on_step:
                on_step("waiting for cloud-init")
            wait_for_cloud_init(conn, timeout=max(5, deadline - time.monotonic()))
        except SSHError as exc:
            conn.close()
            if "cloud-init failed" in exc.message:
                raise CloudInitFailed(exc.message, hint=exc.hint) from exc
            raise
        except BaseException:
            conn.close()
            raise
        if keep_open:
            return [conn]
        conn.close()
        return [None]
    return poll(one_try, timeout=max(5, deadline - time.monotonic()),
                what=f"cloud-init on {host}", interval=1, max_interval=3,
                transient=(SSHError,), fatal=(HostKeyChanged,))[0]


class CloudInitFailed(DeployError):
    """cloud-init ran and failed: final, never retried."""


#: cloud-init's states that mean "not finished yet" (what its own ``--wait`` waits out).
CLOUD_INIT_UNFINISHED = ("not run", "not started", "running")
#: Bound on one ``cloud-init status`` probe (it only reads cloud-init's status files).
CLOUD_INIT_PROBE_TIMEOUT = 30


def cloud_init_status(conn: fabric.Connection, *, timeout: float):
    """Poll ``cloud-init status --long`` (one bounded probe a round, through
    ``polling.poll``) until cloud-init has finished, and return fabric's result of the
    last probe, whatever its exit code; ``TimeoutError_`` when cloud-init did not finish
    in time, ``SSHError`` when the command could not be run. Callers judge the exit code
    and text."""
    last: list = []

    def probe():
        try:
            result = conn.run("cloud-init status --long", hide=True, warn=True,
                              timeout=CLOUD_INIT_PROBE_TIMEOUT, in_stream=False)
        except Exception as exc:  # noqa: BLE001
            if "timed out" in str(exc).lower() or "CommandTimedOut" in type(exc).__name__:
                return None     # a probe cut off by its bound: ask again
            raise SSHError(f"{conn.host}: cannot ask cloud-init its status: "
                           f"{_describe(exc)}") from exc
        last[:] = [result]
        return None if cloud_init_state(result.stdout) in CLOUD_INIT_UNFINISHED else result

    def describe() -> str:
        return f"status {cloud_init_state(last[0].stdout) or '?'}" if last else "no answer"

    return poll(probe, timeout=timeout, what=f"cloud-init on {conn.host}", interval=1,
                max_interval=5, describe=describe,
                hint="raise --timeout; look at /var/log/cloud-init-output.log")


def cloud_init_state(text: str | None) -> str:
    """The ``status:`` of ``cloud-init status`` output ("running", "done", ...)."""
    for line in (text or "").splitlines():
        if line.strip().startswith("status:"):
            return line.split(":", 1)[1].strip()
    return ""


def wait_for_cloud_init(conn: fabric.Connection, *, timeout: float) -> str:
    """Block until cloud-init finished on the node (sshd starts before user-data ends).

    Returns cloud-init's status text; raises ``SSHError`` with its own error output when
    cloud-init failed, ``TimeoutError_`` when it did not finish in time.
    """
    result = cloud_init_status(conn, timeout=timeout)
    text = (result.stdout or "").strip()
    if result.exited == 127 or "command not found" in (result.stderr or ""):
        return "cloud-init not installed"
    # exit 0 = done; 2 = done with recoverable errors (cloud-init >= 23.4); 1 = error
    if result.exited not in (0, 2):
        log = conn.run("tail -n 20 /var/log/cloud-init-output.log", hide=True, warn=True,
                       in_stream=False, timeout=CLOUD_INIT_PROBE_TIMEOUT)
        raise SSHError(f"{conn.host}: cloud-init failed (exit {result.exited}):\n{text}\n"
                       f"{(log.stdout or '').strip()}",
                       hint="the image's user-data failed; see /var/log/cloud-init*.log")
    return text
