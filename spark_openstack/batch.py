"""Training sessions: a batch of clusters for a class (``spark-openstack batch ...``).

Why it is more than a loop over ``launch`` (what amplab's training scripts did):

- one combined quota check for all K clusters before anything is created (Sahara checked
  each cluster while the others were still being built, and ran out half-way);
- every cluster is a whole ``launch`` (all or nothing), K at most ``parallel`` at once and
  staggered so the cloud's API is not hit by K identical bursts; a failed one is retried
  once, then reported;
- every student gets a key pair of their own, made here and installed only on their
  cluster's master (amplab mailed one shared root key to the whole class); the trainer's
  keypair still works on every cluster;
- the roster (``roster.py``) lists only clusters that passed their health check.

Clusters are ``PREFIX-01`` .. ``PREFIX-K``: ``status``, ``destroy`` and ``run-command``
find them again by that name in one server listing (the cloud is the only state).
"""
from __future__ import annotations

import csv
import dataclasses
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import errors, polling
from .config import LaunchSpec, validate_cluster_name
from .executor import run_per_node
from .expiry import cluster_deadline, expiry_dict
from .progress import Progress, ensure
from .provider import QuotaNeed
from .transport import SERVICE_USER

#: The longest prefix that still leaves room for "-NN" and the node suffixes.
PREFIX_MAX = 30
#: Clusters launched at once unless told (each launch is itself parallel inside).
DEFAULT_PARALLEL = 4
#: Seconds between the starts of two launches (the first K run at once otherwise).
STAGGER = 2.0
MAX_COUNT = 99


@dataclass(frozen=True)
class Seat:
    """One student's place in the batch: the cluster made for them."""

    cluster: str
    student: str
    email: str = ""

    @property
    def name(self) -> str:          # what the executor reports failures under
        return self.cluster


def cluster_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:02d}"


def check_prefix(prefix: str) -> str:
    """A prefix that makes valid cluster names (``PREFIX-01``)."""
    if not prefix or len(prefix) > PREFIX_MAX:
        raise errors.UsageError(f"--prefix {prefix!r}: 1 to {PREFIX_MAX} characters",
                                hint="e.g. --prefix spark-class")
    validate_cluster_name(cluster_name(prefix, 1))
    return prefix


def read_students(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(name, email)`` per line of a students file: ``name[,email]`` (CSV; blank lines
    and ``#`` comments skipped). Duplicate names are refused: the roster is by name."""
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise errors.UsageError(f"--students {path}: {exc.strerror or exc}",
                                hint="a text file with one student per line: name[,email]")
    out: list[tuple[str, str]] = []
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for number, row in enumerate(csv.reader(lines), 1):
        name = (row[0] if row else "").strip()
        email = (row[1] if len(row) > 1 else "").strip()
        if not name or len(row) > 2 or any(c in name for c in "\r\n\t") or \
                (email and not re.fullmatch(r"[^@\s]+@[^@\s]+", email)):
            raise errors.UsageError(f"--students {path}: line {number} ({','.join(row)!r}) "
                                    "is not name[,email]",
                                    hint="one student per line, e.g. Ada Lovelace,ada@example.org")
        out.append((name, email))
    names = [n for n, _ in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise errors.UsageError(f"--students {path}: {', '.join(dupes)} listed twice",
                                hint="give each student one line")
    if not out:
        raise errors.UsageError(f"--students {path} lists nobody",
                                hint="one student per line: name[,email]")
    return out


def plan_seats(*, prefix: str, count: int | None = None,
               students: list[tuple[str, str]] | None = None) -> list[Seat]:
    """``PREFIX-01`` .. : one per student when a list is given (its order), else ``count``."""
    check_prefix(prefix)
    if students is not None and count is not None and count != len(students):
        raise errors.UsageError(f"--count {count} but the students file lists "
                                f"{len(students)}", hint="drop --count: the file decides")
    if students is None:
        if count is None or not 1 <= count <= MAX_COUNT:
            raise errors.UsageError(f"--count must be 1 to {MAX_COUNT} (got {count})",
                                    hint="or give --students FILE (one line per student)")
        students = [(f"student-{i:02d}", "") for i in range(1, count + 1)]
    if len(students) > MAX_COUNT:
        raise errors.UsageError(f"{len(students)} students: a batch holds at most {MAX_COUNT}")
    return [Seat(cluster=cluster_name(prefix, i), student=name, email=email)
            for i, (name, email) in enumerate(students, 1)]


def times(need: QuotaNeed, k: int) -> QuotaNeed:
    """K clusters' worth of one cluster's quota need (the members of a server group are
    limited per group, and each cluster has its own group: not multiplied)."""
    return QuotaNeed(**{f.name: getattr(need, f.name) * (1 if f.name == "server_group_members"
                                                         else k)
                        for f in dataclasses.fields(need)})


def generate_key(*, comment: str) -> tuple[str, str]:
    """A fresh ed25519 key pair: (OpenSSH private key text, ``ssh-ed25519 ... comment``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"


class _ClusterProgress(Progress):
    """One cluster's launch inside the batch's progress: phases and messages prefixed."""

    def __init__(self, outer: Progress, cluster: str):
        self.outer, self.cluster = outer, cluster

    def phase_started(self, phase):
        self.outer.message(f"[{self.cluster}] {phase} ...")

    def phase_done(self, phase, seconds):
        self.outer.message(f"[{self.cluster}] {phase} done in {seconds:.1f}s")

    def node_status(self, node, status):
        self.outer.node_status(node, status)

    def message(self, text):
        self.outer.message(f"[{self.cluster}] {text}")


def _first_line(message: str) -> str:
    return next((ln.strip() for ln in message.splitlines() if ln.strip()), message)


def batch_launch(*, provider, spec: LaunchSpec, seats: list[Seat], roster_dir: Path,
                 parallel: int = DEFAULT_PARALLEL, stagger: float = STAGGER,
                 progress: Progress | None = None) -> dict:
    """Validate once, check the quota for all seats at once, then launch every seat's
    cluster (at most ``parallel`` at once, retried once on failure) with a key pair of
    its own, and write the roster of the healthy ones. Returns the roster's content and
    ``ok`` (every student has a healthy cluster). Ctrl-C: launches still running delete
    what they made (each is all or nothing); finished clusters stay, and are named."""
    from . import launch as launch_mod
    from .roster import roster_row, write_roster
    progress = ensure(progress)
    if not spec.deploy:
        raise errors.UsageError("a class needs deployed clusters: batch launch cannot "
                                "--no-deploy")
    if not 1 <= parallel <= 32:
        raise errors.UsageError(f"--parallel {parallel}: must be 1 to 32")
    started = time.monotonic()
    requests_before = provider.request_count
    wanted = {s.cluster for s in seats}
    taken = sorted(wanted & set(provider.all_cluster_servers()))
    if taken:
        raise errors.ClusterExistsError(
            f"cluster(s) {', '.join(taken)} already exist",
            hint="pick another --prefix, or `spark-openstack batch destroy --prefix ...`")
    first = dataclasses.replace(spec, cluster_name=seats[0].cluster)
    progress.phase_started("validate")
    plan = launch_mod.validate_launch(provider=provider, spec=first, progress=progress)
    need = times(launch_mod.quota_need(spec=first, flavor=plan.flavor,
                                        master_flavor=plan.master_flavor,
                                        floating_ip=plan.floating_pool is not None),
                 len(seats))
    try:
        provider.check_quotas(need)
    except errors.QuotaError as exc:
        exc.message = (f"a batch of {len(seats)} clusters does not fit: "
                       + exc.message.replace(" for this cluster", " for the batch"))
        exc.hint = "ask for more quota, or a smaller --count / fewer workers / a smaller flavor"
        raise
    progress.phase_done("validate", time.monotonic() - started)

    keys_dir = roster_dir / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(roster_dir, 0o700)
    public: dict[str, str] = {}
    for seat in seats:
        private, public[seat.cluster] = generate_key(comment=f"{seat.cluster}-student")
        path = keys_dir / f"{seat.cluster}.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(private)
        os.chmod(path, 0o600)
        (keys_dir / f"{seat.cluster}.key.pub").write_text(public[seat.cluster] + "\n")

    results: dict[str, object] = {}
    failures: dict[str, str] = {}
    order = {s.cluster: i for i, s in enumerate(seats)}

    def launch(seat: Seat):
        # the first wave starts staggered, seat i after i*stagger s; later seats start as
        # a slot frees (Ctrl-C ends the wait at once)
        index = order[seat.cluster]
        try:
            polling.sleep(index * stagger if index < parallel else 0)
        except errors.Interrupted:
            raise errors.Interrupted(f"{seat.cluster}: not started (interrupted)") from None
        seat_spec = dataclasses.replace(spec, cluster_name=seat.cluster,
                                        login_keys=(public[seat.cluster],))
        sub = _ClusterProgress(progress, seat.cluster)
        for attempt in (1, 2):
            try:
                return launch_mod.launch(provider=provider, spec=seat_spec, progress=sub)
            except errors.SparkOpenstackError as exc:
                if polling.ABORT.is_set() or isinstance(exc, errors.Interrupted) \
                        or attempt == 2:
                    raise
                sub.message(f"failed ({_first_line(exc.message)}); retrying once")

    def done(seat, result, error):
        if error is None:
            results[seat.cluster] = result
            progress.message(f"[{seat.cluster}] ready for {seat.student}")
        else:
            message = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
            failures[seat.cluster] = message
            progress.message(f"[{seat.cluster}] FAILED for {seat.student}: "
                             f"{_first_line(message)}")
    progress.phase_started(f"launch {len(seats)} clusters, {min(parallel, len(seats))} "
                           "at once")
    interrupted = False
    try:
        run_per_node(launch, seats, what="batch launch", max_workers=parallel, on_done=done)
    except errors.NodeErrors:
        pass                         # each failure is in ``failures``, reported per seat
    except KeyboardInterrupt:
        interrupted = True           # the running launches finished their own cleanup
    rows, missing = [], []
    # the deadlines as the cloud recorded them, every cluster from one listing
    listed = provider.all_cluster_servers() if results else {}
    for seat in seats:
        result = results.get(seat.cluster)
        if result is None:
            reason = failures.get(seat.cluster) or "not launched (interrupted)"
            missing.append({"student": seat.student, "email": seat.email,
                            "cluster": seat.cluster, "reason": _first_line(reason)})
            for suffix in (".key", ".key.pub"):
                (keys_dir / f"{seat.cluster}{suffix}").unlink(missing_ok=True)
            continue
        health = "; ".join((launch_mod.deploy_summary(result.deploy) or {}).get("health")
                           or [])
        rows.append(roster_row(
            student=seat.student, email=seat.email, facts=result.facts,
            key_file=f"keys/{seat.cluster}.key", health=health,
            expires=expiry_dict(cluster_deadline(listed.get(seat.cluster, ())))["text"],
            login_user=SERVICE_USER))
    summary = {"prefix": seats[0].cluster.rsplit("-", 1)[0], "clusters": len(seats),
               "healthy": len(rows), "seconds": round(time.monotonic() - started, 1),
               "api_requests": provider.request_count - requests_before,
               "interrupted": interrupted}
    files = write_roster(folder=roster_dir, rows=rows, missing=missing,
                         title=f"Spark class {summary['prefix']}", batch=summary)
    if interrupted:
        kept = ", ".join(r["cluster"] for r in rows)
        raise errors.Interrupted(
            "batch launch interrupted: every unfinished launch deleted what it had made"
            + (f"; finished and kept: {kept} (roster in {roster_dir})" if kept else
               "; no cluster was finished, nothing is left"),
            hint=(f"`spark-openstack batch destroy --prefix {summary['prefix']}` removes "
                  "the finished ones" if kept else None))
    return {**summary, "ok": not missing, "students": rows, "without_cluster": missing,
            "roster": files}


# ----------------------------------------------------------------------------- day 2
def batch_clusters(*, provider, prefix: str) -> dict[str, list]:
    """``{cluster: servers}`` of the batch (``PREFIX-NN``), from ONE server listing."""
    check_prefix(prefix)
    member = re.compile(rf"^{re.escape(prefix)}-\d{{2,}}$")
    return {name: servers for name, servers in sorted(provider.all_cluster_servers().items())
            if member.match(name)}


def _each_cluster(*, provider, prefix: str, work: Callable[[str, list], dict],
                  what: str, parallel: int = 8,
                  confirm: Callable[[list[str]], None] | None = None) -> dict[str, dict]:
    """``work(cluster, servers)`` for every cluster of the batch at once; a cluster that
    fails is reported as ``{"error": message}`` in its place, never dropped. ``confirm``
    is shown the clusters' names first (it raises to refuse)."""
    clusters = batch_clusters(provider=provider, prefix=prefix)
    if not clusters:
        raise errors.NotFoundError(f"no cluster named {prefix}-NN in this project",
                                   hint="`spark-openstack list` shows the clusters")
    if confirm is not None:
        confirm(list(clusters))
    out: dict[str, dict] = {}

    def done(name, result, error):
        out[name] = result if error is None else {
            "error": getattr(error, "message", None) or f"{type(error).__name__}: {error}"}
    try:
        run_per_node(lambda name: work(name, clusters[name]), list(clusters), what=what,
                     max_workers=parallel, on_done=done)
    except errors.NodeErrors:
        pass
    return dict(sorted(out.items()))


def batch_status(*, provider, prefix: str, identity_file: str | None = None) -> dict:
    """Every cluster's health (the ``status`` report) and deadline, checked at once."""
    from .power import cluster_status

    def one(name: str, servers: list) -> dict:
        report = cluster_status(provider=provider, cluster=name, identity_file=identity_file,
                                servers=servers)
        report["expires"] = expiry_dict(cluster_deadline(servers))
        return report
    reports = _each_cluster(provider=provider, prefix=prefix, work=one, what="batch status")
    healthy = [n for n, r in reports.items() if r.get("healthy")]
    return {"prefix": prefix, "clusters": reports, "healthy": len(healthy),
            "total": len(reports), "all_healthy": len(healthy) == len(reports)}


def batch_destroy(*, provider, prefix: str, progress: Progress | None = None,
                  confirm: Callable[[list[str]], None] | None = None) -> dict:
    """Destroy every cluster of the batch at once (idempotent: none left is fine);
    ``confirm`` is shown their names first, from the same one listing."""
    from .ledger import destroy
    progress = ensure(progress)
    try:
        results = _each_cluster(provider=provider, prefix=prefix, what="batch destroy",
                                confirm=confirm,
                                work=lambda name, servers: destroy(provider=provider,
                                                                   cluster=name,
                                                                   servers=servers))
    except errors.NotFoundError:
        return {"prefix": prefix, "destroyed": [], "failed": {}}
    failed = {n: r["error"] for n, r in results.items() if "error" in r}
    return {"prefix": prefix, "destroyed": [n for n in results if n not in failed],
            "failed": failed}


def batch_run_command(*, provider, prefix: str, command: str,
                      identity_file: str | None = None, timeout: float = 3600,
                      on_output: Callable | None = None) -> dict:
    """``command`` on every cluster's master at once, as the login user."""
    from .inventory import open_cluster
    from .remote import run_command

    def one(name: str, servers: list) -> dict:
        access = open_cluster(provider=provider, cluster=name, identity_file=identity_file,
                              servers=servers)
        result = run_command(access=access, command=command, master_only=True,
                             timeout=timeout)
        master = result[access.facts.master.name]
        if on_output is not None:
            on_output(name, master)
        return {"exit_code": master.exited, "stdout": master.stdout, "stderr": master.stderr}
    return _each_cluster(provider=provider, prefix=prefix, work=one, what="batch run-command")
