"""Host keys pinned per cluster: trust on first use, verified on every later SSH.

A cluster's nodes are fresh servers whose keys nobody knows in advance, so the first
contact (``launch`` waiting for SSH) records each node's key; every later connection
(deploy, ``login``) must see the same key, or it stops: someone may be in the middle.

One OpenSSH-format file per cluster, named by the cluster and its master's server id
(``<cluster>-<first 8 chars of the id>``): a new cluster of the same name, on recycled
addresses, starts with a file of its own. Hosts are recorded by the address connected to
(workers behind the master by their private IP). Many threads connect at once, so every
write holds a lock per file (and an flock across processes), re-reads the file, merges,
and replaces it atomically: no entry is ever lost.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

from .errors import ConfigError, HostKeyChanged

try:                     # cross-process lock where the OS has it (not on Windows)
    import fcntl
except ImportError:      # pragma: no cover
    fcntl = None         # type: ignore[assignment]

_SAFE_CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ID_CHARS = re.compile(r"[^A-Za-z0-9]")
ID_PREFIX = 8

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


# ----------------------------------------------------------------------------- where

def state_dir() -> Path:
    """``$XDG_STATE_HOME/spark-openstack`` (``~/.local/state/...`` when unset or relative,
    as the XDG spec says)."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "spark-openstack"


def known_hosts_dir() -> Path:
    return state_dir() / "known_hosts"


def known_hosts_file(*, facts=None, cluster: str | None = None,
                     master_id: str | None = None) -> str:
    """The cluster's pinned-keys file: from ``facts`` (ClusterFacts), or ``cluster`` and
    ``master_id``. Keyed by the master's id so a same-named new cluster starts fresh."""
    if facts is not None:
        cluster, master_id = facts.cluster_name, facts.master.server_id
    if not cluster or not _SAFE_CLUSTER.match(cluster):
        raise ValueError(f"not a cluster name for a known_hosts file: {cluster!r}")
    suffix = _ID_CHARS.sub("", master_id or "")[:ID_PREFIX]
    if not suffix:
        raise ValueError(f"cluster {cluster!r}: the master has no server id to key its "
                         "known_hosts file by")
    return str(known_hosts_dir() / f"{cluster}-{suffix}")


def cluster_files(*, cluster: str) -> list[Path]:
    """Every known_hosts file of clusters named ``cluster`` (any master id), and none of a
    cluster whose name merely starts with it (``demo`` vs ``demo-2``)."""
    folder = known_hosts_dir()
    if not _SAFE_CLUSTER.match(cluster or "") or not folder.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(cluster)}-[A-Za-z0-9]{{1,{ID_PREFIX}}}$")
    return sorted(p for p in folder.glob(f"{cluster}-*") if pattern.match(p.name))


def remove_cluster_files(*, cluster: str) -> list[Path]:
    """Forget a destroyed cluster's keys (its servers are gone); returns what was removed."""
    removed = []
    for path in cluster_files(cluster=cluster):
        with _locked(str(path)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def remove_file(path: str) -> None:
    """Forget one file (a rolled-back launch's): missing is fine."""
    with _locked(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _private_dir(folder: Path) -> None:
    """Create ``folder``; the tool's own folders (not a caller's) are made owner-only."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (state_dir(), known_hosts_dir()):
        if path.is_dir() and path.stat().st_mode & 0o077:
            path.chmod(0o700)


def ensure_file(path: str) -> None:
    """The file exists, 0600, in a 0700 folder: ``ssh`` may add to it (login)."""
    _private_dir(Path(path).parent)
    with _locked(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)


# ----------------------------------------------------------------------------- locking

def _thread_lock(path: str) -> threading.Lock:
    key = os.path.abspath(path)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """One writer per file in this process, and one per folder across processes."""
    with _thread_lock(path):
        folder = os.path.dirname(os.path.abspath(path))
        if fcntl is None or not os.path.isdir(folder):
            yield
            return
        fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)        # releases the flock


# ----------------------------------------------------------------------------- read / write

def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def load(path: str, *, into: paramiko.HostKeys | None = None) -> paramiko.HostKeys:
    """The file's keys (added to ``into`` when given); lines paramiko cannot read (markers,
    odd key types, bad base64) are skipped, never an error. A missing file is empty."""
    keys = paramiko.HostKeys() if into is None else into
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = HostKeyEntry.from_line(line, number)
        except (paramiko.SSHException, InvalidHostKey, ValueError):
            continue
        if entry is not None:
            for name in entry.hostnames:
                keys.add(name, entry.key.get_name(), entry.key)
    return keys


def has_host(path: str, host: str) -> bool:
    """Whether ``host`` (as ssh names it: ``HOST`` on port 22, ``[HOST]:PORT`` else) has a
    pinned key in ``path`` (hashed entries too)."""
    return bool(load(path).lookup(host))


def record(path: str, *, host: str, key: paramiko.PKey) -> None:
    """Pin ``key`` for ``host`` unless pinned already; paramiko's ``BadHostKeyException``
    when another key was pinned for it meanwhile (another thread or process got there
    first), which ``ssh.connect`` reports as ``HostKeyChanged``.

    Under the lock the file is re-read and the new line appended to what is there, then
    written to a temp file and renamed over it: concurrent writers never lose entries.
    """
    _private_dir(Path(path).parent)
    with _locked(path):
        text = _read_text(path)
        pinned = load(path).lookup(host)
        if pinned:
            expected = pinned.get(key.get_name())
            if expected == key:
                return
            raise paramiko.BadHostKeyException(host, key, expected or next(iter(pinned.values())))
        if text and not text.endswith("\n"):
            text += "\n"
        _replace(path, text + f"{host} {key.get_name()} {key.get_base64()}\n")


def _replace(path: str, text: str) -> None:
    """Write ``text`` to a 0600 temp file beside ``path`` and rename it over ``path``: a
    reader never sees half a file (callers hold the file's lock)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def forget(path: str, *, hosts) -> int:
    """Drop the pinned keys of ``hosts`` (servers that were deleted: their addresses will
    be reused by other servers with other keys); returns how many lines went."""
    hosts = {h for h in hosts if h}
    if not hosts or not os.path.exists(path):
        return 0
    with _locked(path):
        lines = _read_text(path).splitlines(keepends=True)
        kept = [line for line in lines
                if not {n.split("]", 1)[0].lstrip("[")
                        for n in line.split(" ", 1)[0].split(",")} & hosts]
        if len(kept) == len(lines):
            return 0
        _replace(path, "".join(kept))
    return len(lines) - len(kept)


# ----------------------------------------------------------------------------- policy

class PinOnFirstUse(paramiko.MissingHostKeyPolicy):
    """paramiko asks this only for a host with no pinned key: record it (first use)."""

    def __init__(self, path: str):
        self.path = path

    def missing_host_key(self, client, hostname, key):
        try:
            record(self.path, host=hostname, key=key)
        except OSError as exc:      # not an SSH failure to retry: the local file is the trouble
            raise unwritable(self.path, exc) from exc
        client.get_host_keys().add(hostname, key.get_name(), key)


def pin(client: paramiko.SSHClient, *, known_hosts: str) -> None:
    """Make ``client`` (before it connects) verify against ``known_hosts``: a pinned host
    must show the same key (paramiko raises ``BadHostKeyException``), an unknown one is
    recorded. Replaces fabric's empty store and ``AutoAddPolicy``."""
    store = client.get_host_keys()
    store.clear()
    load(known_hosts, into=store)
    client.set_missing_host_key_policy(PinOnFirstUse(known_hosts))


def unwritable(path: str, exc: OSError) -> ConfigError:
    return ConfigError(f"cannot write the pinned host keys {path}: "
                       f"{exc.strerror or exc}",
                       hint="make it writable, or point XDG_STATE_HOME at a writable folder")


def ssh_option_path(path: str) -> str:
    """``path`` as an ssh_config value: ``%`` is a token there and blanks split a list."""
    value = path.replace("%", "%%")
    if any(c.isspace() or c in "\"\\'" for c in value):
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _plain_host(name: str) -> str:
    match = re.match(r"^\[(.+)\]:(\d+)$", name or "")
    return f"{match.group(1)} (port {match.group(2)})" if match else name


def changed_error(exc: paramiko.BadHostKeyException, *, known_hosts: str) -> HostKeyChanged:
    """The error for a key that is not the pinned one, with how to start over."""
    host = _plain_host(exc.hostname)
    got = exc.key.get_name() if exc.key is not None else "?"
    try:
        fingerprint = exc.key.fingerprint if exc.key is not None else ""
    except Exception:  # noqa: BLE001 - only decoration
        fingerprint = ""
    return HostKeyChanged(
        f"the host key of {host} changed: it now shows a {got} key {fingerprint} that is "
        f"not the one pinned in {known_hosts} at first contact (possible "
        "man-in-the-middle, or the server was rebuilt); not connecting",
        hint=f"if the server was really rebuilt, delete {known_hosts} to pin its keys anew "
             "(`spark-openstack destroy` removes the file with the cluster)")


__all__ = ["known_hosts_file", "state_dir", "known_hosts_dir", "cluster_files",
           "remove_cluster_files", "remove_file", "ensure_file", "load", "has_host", "record",
           "pin", "PinOnFirstUse", "changed_error", "unwritable", "ssh_option_path"]
