"""A shell command or a file on every node of a cluster (``run-command``, ``copy-file``).

Both work as the image's login user, as the user would by hand with ``ssh`` (sudo is theirs
to add), on every node at once. A command that exits non-zero is a result, reported per
node; the CLI turns it into the exit code. A node that cannot be reached is a ``NodeErrors``
line naming it.

copy-file sends the bytes over the user's (often slow) uplink ONCE, to the master; the
master forwards them to the workers over the cluster's network as hduser (its key is
trusted by every worker's hduser), and each node unpacks its copy as the login user.
"""
from __future__ import annotations

import mmap
import os
import secrets
import shlex
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from . import errors
from .executor import run_per_node
from .model import Node, node_sort_key
from .transport import SERVICE_USER, CommandResult, MasterRunner

#: A run-command command's limit on each node unless the caller gives another.
DEFAULT_COMMAND_TIMEOUT = 3600
#: Forwards from the master running at once: each is a session on the one connection to the
#: master, and OpenSSH allows 10 per connection (``MaxSessions``).
MAX_FORWARDS = 6
#: The name of the copied file or directory inside the archive.
_PAYLOAD = "payload"


class NodesUnreachable(errors.NodeErrors):
    """The command could not run on some nodes; ``results`` holds the nodes where it ran."""

    def __init__(self, failures: dict[str, str], *, results: dict[str, CommandResult],
                 what: str, hint: str | None = None):
        super().__init__(failures, what=what, hint=hint)
        self.results = results


class CommandFailed(errors.SparkOpenstackError):
    """The command exited non-zero (or could not run) on some nodes; names each of them."""

    def __init__(self, *, exits: dict[str, int], unreachable: dict[str, str], total: int):
        self.exits = dict(exits)
        self.unreachable = dict(unreachable)
        parts = [f"{name} (exit {code})" for name, code in sorted(exits.items())]
        parts += [f"{name} (not run: {msg.splitlines()[0] if msg else 'unreachable'})"
                  for name, msg in sorted(unreachable.items())]
        count = len(exits) + len(unreachable)
        super().__init__(f"the command failed on {count} of {total} node(s): "
                         + ", ".join(parts))


@dataclass
class CopyReport:
    """What ``copy_file`` did: the archive it sent once, and where it landed on each node."""

    local: str
    remote: str
    is_dir: bool
    archive_bytes: int
    landed: dict[str, str] = field(default_factory=dict)   # node name -> path there
    seconds: float = 0.0


# ----------------------------------------------------------------------------- targets

def check_selection(*, nodes: Iterable[str] | None = None, master_only: bool = False,
                    command: str | None = None) -> None:
    """The choice of nodes (and the command, when one is given), checked before the cloud
    is contacted: --master-only with --node, or no command, is a ``UsageError``."""
    if master_only and list(nodes or ()):
        raise errors.UsageError("--master-only and --node exclude each other",
                                hint="give either --master-only or the --node names")
    if command is not None and not command.strip():
        raise errors.UsageError("no command given",
                                hint="put it after `--`: run-command -c NAME -- uname -a")


def select_nodes(*, access, nodes: Iterable[str] | None = None,
                 master_only: bool = False) -> list[Node]:
    """The nodes a command reaches: every node, the master, or the named ones (a name or a
    worker's number). Refused before anything runs: --master-only with --node, an unknown
    name, a target (or the master, the way in) that is not ACTIVE."""
    names = list(nodes or ())
    check_selection(nodes=names, master_only=master_only)
    if master_only:
        targets = [access.facts.master]
    elif names:
        targets = []
        for name in names:
            wanted = f"{access.name}-worker-{name}" if name.isdigit() else name
            node = access.node(wanted)
            if node not in targets:
                targets.append(node)
    else:
        targets = list(access.facts.nodes)
    need = [access.facts.master, *(n for n in targets if n is not access.facts.master)]
    down = [n for n in need if n.status and n.status != "ACTIVE"]
    if down:
        raise errors.ValidationError(
            f"cluster {access.name!r}: not ACTIVE: "
            + ", ".join(f"{n.name} {n.status}" for n in down),
            hint=f"`spark-openstack start -c {access.name}` starts a stopped cluster")
    return targets


# ----------------------------------------------------------------------------- run-command

def run_command(*, access, command: str, nodes: Iterable[str] | None = None,
                master_only: bool = False, timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
                on_output: Callable[[str, CommandResult], None] | None = None,
                runner=None) -> dict[str, CommandResult]:
    """``command`` on the chosen nodes at once, as the login user; ``{node: result}``.

    A non-zero exit is a result (``failure`` judges them). Nodes where the command
    could not run raise ``NodesUnreachable`` after every other node finished, carrying
    their results. ``on_output(node, result)`` hears each node as it finishes.
    """
    check_selection(command=command or "")
    targets = select_nodes(access=access, nodes=nodes, master_only=master_only)
    own = runner is None
    runner = access.runner() if own else runner
    results: dict[str, CommandResult] = {}

    def done(node, result, exc):
        if result is not None:
            results[node.name] = result
            if on_output is not None:
                on_output(node.name, result)
    try:
        run_per_node(lambda node: runner.run_as_login_user(node, command, timeout=timeout,
                                                           check=False),
                     targets, what="run-command", on_done=done)
    except errors.NodeErrors as exc:
        raise NodesUnreachable(exc.failures, results=results, what="run-command",
                               hint=exc.hint) from exc
    finally:
        if own:
            runner.close()
    return {n.name: results[n.name] for n in targets}


@dataclass
class CommandRun:
    """What ``run_command_report`` saw: each reached node's result, and why the others
    were not reached; ``to_rows`` is run-command's ``--json``."""

    results: dict[str, CommandResult]
    unreachable: dict[str, str] = field(default_factory=dict)

    def to_rows(self) -> list[dict]:
        rows = [{"node": n, "exit": r.exited, "stdout": r.stdout, "stderr": r.stderr}
                for n, r in sorted(self.results.items(), key=lambda kv: node_sort_key(kv[0]))]
        return rows + [{"node": n, "exit": None, "stdout": "", "stderr": "", "error": msg}
                       for n, msg in self.unreachable.items()]

    def failure(self) -> "CommandFailed | None":
        return failure(results=self.results, unreachable=self.unreachable)


def run_command_report(*, access, command: str, nodes: Iterable[str] | None = None,
                       master_only: bool = False,
                       timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
                       on_output: Callable[[str, CommandResult], None] | None = None
                       ) -> CommandRun:
    """``run_command`` where unreached nodes are part of the answer, not an exception:
    run-command reports every node, reached or not, and then fails naming them."""
    try:
        results = run_command(access=access, command=command, nodes=nodes,
                              master_only=master_only, timeout=timeout, on_output=on_output)
        return CommandRun(results=results)
    except NodesUnreachable as exc:
        return CommandRun(results=exc.results, unreachable=dict(
            sorted(exc.failures.items(), key=lambda kv: node_sort_key(kv[0]))))


def failure(*, results: dict[str, CommandResult], unreachable: dict[str, str] | None = None
            ) -> CommandFailed | None:
    """The error to report when any node exited non-zero or was not reached, else None."""
    unreachable = unreachable or {}
    exits = {name: r.exited for name, r in results.items() if r.exited != 0}
    if not exits and not unreachable:
        return None
    return CommandFailed(exits=exits, unreachable=unreachable,
                         total=len(results) + len(unreachable))


# ----------------------------------------------------------------------------- copy-file

def make_archive(local: Path, out) -> bool:
    """Write a gzip tar of ``local`` (a file or a directory, recursively) to the open
    binary file ``out`` under one name; True when it is a directory. A symlink given as
    LOCAL is followed (its target is copied); links inside a directory stay links."""
    real = Path(local).resolve()
    try:
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            tar.add(str(real), arcname=_PAYLOAD, recursive=True)
    except OSError as exc:
        raise errors.UsageError(f"cannot read {exc.filename or local}: "
                                f"{exc.strerror or exc}") from exc
    return real.is_dir()


def _remote_path_expr(remote: str) -> str:
    """REMOTE as a shell word: ``~`` and ``~/x`` are the login user's home, other paths
    quoted as given (relative ones are relative to that home, where ssh starts)."""
    if remote == "~":
        return '"$HOME"'
    if remote.startswith("~/"):
        return '"$HOME"/' + (shlex.quote(remote[2:]) if remote[2:] else "")
    return shlex.quote(remote)


def unpack_command(*, archive: str, remote: str, name: str, is_dir: bool) -> str:
    """The shell command that lands the archive's payload at REMOTE and prints where.

    A file lands AS REMOTE, or inside it as NAME when REMOTE ends in ``/`` or is a
    directory; it replaces an older copy atomically (unpacked beside it, then renamed).
    A directory lands AS REMOTE, merged into it when it exists (copying again is the same
    result), or inside it as NAME when REMOTE ends in ``/``.
    """
    arch = shlex.quote(archive)
    quoted_name = shlex.quote(name)
    head = f"set -e; r={_remote_path_expr(remote)}; "
    if is_dir:
        return head + (
            f'case "$r" in */) r="${{r%/}}"/{quoted_name};; esac; '
            'mkdir -p -- "$r"; '
            f'tar -xzf {arch} -C "$r" --no-same-owner -p --strip-components=1; '
            'cd -- "$r" && pwd')
    return head + (
        f'if [ "${{r%/}}" != "$r" ] || [ -d "$r" ]; then d="${{r%/}}"; n={quoted_name}; '
        'else d=$(dirname -- "$r"); n=$(basename -- "$r"); fi; d="${d:-/}"; '
        'mkdir -p -- "$d"; t=$(mktemp -d "$d/.spark-openstack-copy.XXXXXX"); '
        "trap 'rm -rf -- \"$t\"' EXIT; "
        f'tar -xzf {arch} -C "$t" --no-same-owner -p; '
        f'mv -fT -- "$t/{_PAYLOAD}" "$d/$n"; '
        'p=$(cd -- "$d" && pwd); echo "${p%/}/$n"')


def forward_command(*, archive: str, to: Node) -> str:
    """Run as hduser on the master: stream its copy of the archive to ``to``'s hduser,
    into the same path (created fresh there, readable by the login user)."""
    ssh = " ".join(shlex.quote(a) for a in ("ssh", *MasterRunner.SSH_OPTIONS,
                                            f"{SERVICE_USER}@{to.private_ip}"))
    write = f"umask 022 && set -C && cat > {shlex.quote(archive)}"
    return f"{ssh} {shlex.quote(write)} < {shlex.quote(archive)}"


def copy_file(*, access, local: Path | str, remote: str, nodes: Iterable[str] | None = None,
              master_only: bool = False, timeout: float = 1800, runner=None,
              on_node: Callable[[str, str], None] | None = None) -> CopyReport:
    """Copy a local file or directory to REMOTE on the chosen nodes (see
    ``unpack_command`` for where it lands); ``CopyReport``, or ``NodeErrors`` naming the
    nodes it did not reach. The temp archives are removed on every node, also on failure.
    ``on_node(node, path)`` hears each node as its copy lands."""
    local = Path(local).expanduser()
    if not local.exists():
        raise errors.UsageError(f"{local}: no such file or directory")
    if not (local.is_file() or local.is_dir()):
        raise errors.UsageError(f"{local}: neither a file nor a directory")
    if not remote or not remote.strip():
        raise errors.UsageError("no REMOTE path given")
    targets = select_nodes(access=access, nodes=nodes, master_only=master_only)
    master = access.facts.master
    name = Path(os.path.abspath(local)).name or "payload"
    archive = f"/tmp/spark-openstack-copy-{secrets.token_hex(8)}.tar.gz"
    t0 = time.monotonic()
    own = runner is None
    runner = access.runner() if own else runner
    report = CopyReport(local=str(local), remote=remote, is_dir=False, archive_bytes=0)
    with tempfile.TemporaryFile(prefix="spark-openstack-copy-") as tmp:
        report.is_dir = make_archive(local, tmp)
        tmp.flush()
        report.archive_bytes = tmp.tell()
        # the archive is sent from a mapping of the temp file: no copy of it in memory
        data = mmap.mmap(tmp.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            try:
                # 0644 so the master's hduser can read it to forward it
                runner.run_as_login_user(
                    master, f"umask 022 && set -C && cat > {shlex.quote(archive)}",
                    stdin=memoryview(data), timeout=timeout)
                _fan_out(runner=runner, master=master, targets=targets, archive=archive,
                         remote=remote, name=name, is_dir=report.is_dir, timeout=timeout,
                         report=report, on_node=on_node)
            finally:
                try:
                    runner.run_as_login_user(master, f"rm -f {shlex.quote(archive)}",
                                             timeout=60, check=False)
                except errors.SparkOpenstackError:
                    pass     # unreachable master: the per-node errors already say so
                if own:
                    runner.close()
        finally:
            try:
                data.close()
            except BufferError:
                pass         # a traceback still holds a slice of it: the GC unmaps it
    report.landed = {n.name: report.landed[n.name] for n in targets}
    report.seconds = time.monotonic() - t0
    return report


def _fan_out(*, runner, master: Node, targets: list[Node], archive: str, remote: str,
             name: str, is_dir: bool, timeout: float, report: CopyReport,
             on_node) -> None:
    """Per target: forward from the master (workers), unpack, remove the temp archive.
    Each worker unpacks as soon as its own copy arrived."""
    slots = threading.Semaphore(MAX_FORWARDS)
    unpack = unpack_command(archive=archive, remote=remote, name=name, is_dir=is_dir)

    def one(node: Node) -> str:
        on_master = node.name == master.name
        try:
            if not on_master:
                with slots:
                    result = runner.run(master, forward_command(archive=archive, to=node),
                                        timeout=timeout, check=False)
                if result.exited != 0:
                    why = (result.stderr or result.stdout).strip().splitlines()[-3:]
                    raise errors.SSHError(
                        f"forward from {master.name} as {SERVICE_USER} failed (exit "
                        f"{result.exited})" + (f": {' '.join(why)}" if why else ""),
                        hint=f"the master's {SERVICE_USER} reaches the workers with the key "
                             "a deploy installs: deploy the cluster first, or copy with "
                             "--master-only")
            result = runner.run_as_login_user(node, unpack, timeout=timeout, check=False)
            if result.exited != 0:
                why = (result.stderr or result.stdout).strip().splitlines()[-3:]
                denied = "Permission denied" in result.stderr
                raise errors.SSHError(
                    f"unpacking at {remote} failed (exit {result.exited})"
                    + (f": {' '.join(why)}" if why else ""),
                    hint="copy-file writes as the login user: for a place only root may "
                         "write, copy to /tmp and move it with `spark-openstack run-command "
                         "-- sudo mv ...`" if denied else None)
            landed = result.stdout.strip().splitlines()[-1] if result.stdout.strip() \
                else remote
        finally:
            if not on_master:   # the worker's copy is hduser's: hduser removes it
                try:
                    runner.run(node, f"rm -f {shlex.quote(archive)}", timeout=60, check=False)
                except errors.SparkOpenstackError:
                    pass
        return landed

    def done(node, landed, exc):      # in the calling thread, as each node finishes
        if landed is not None:
            report.landed[node.name] = landed
            if on_node is not None:
                on_node(node.name, landed)
    run_per_node(one, targets, what="copy-file", on_done=done)
