"""Spark jobs on a running cluster: submit, list, logs, kill (``submit``/``jobs``/``logs``/
``kill``).

Why the job always starts detached: a driver tied to the SSH session dies with the
user's Wi-Fi (flintrock #137). So every submit uploads the app into a per-job directory
on the master and starts a small runner script there with ``setsid nohup`` as hduser,
stdin from /dev/null; "attached" is only the client following ``driver.log`` by offset
with short, bounded commands until the runner writes ``exit_code``. Everything about a
job lives in its directory on the master (``JOBS_ROOT/<id>/``), so any client with the
cluster's key sees the same jobs::

    job.json    what was submitted (id, app, args, master URL, conf, submitted_at)
    run.sh      the runner: cds here, exports SPARK_OPENSTACK_OUTPUT_DIR, runs spark-submit
    pgid        the runner's process group (written by the runner as it starts)
    driver.log  spark-submit's stdout and stderr
    exit_code   spark-submit's exit status, written when it ends
    killed      marker left by ``kill``
    app/, deps/ the uploaded application and its --py-files/--files/--jars
    output/     the job's output folder (``$SPARK_OPENSTACK_OUTPUT_DIR``): ``run`` brings it home

A job's state follows from those files (``derive_state``): running, finished (exit 0),
failed (non-zero, or the runner vanished without an exit code: "lost"), killed.
"""
from __future__ import annotations

import base64
import io
import json
import re
import secrets
import shlex
import tarfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import errors, polling
from .config import parse_spark_conf
from .model import ClusterFacts
from .render import PORTS
from .services.base import SERVICE_USER

#: Where every job's directory lives on the master (hduser's, 0700).
JOBS_ROOT = "/var/lib/spark-openstack/jobs"
#: States a job can be in (``derive_state``).
RUNNING, FINISHED, FAILED, KILLED = "running", "finished", "failed", "killed"
#: Limit of each short remote command (start, poll, list, kill).
COMMAND_TIMEOUT = 60
#: How long a follow keeps trying through SSH trouble before it gives up (the job runs on).
FOLLOW_PATIENCE = 120
#: Most log bytes one poll brings back.
CHUNK = 256 * 1024
#: Seconds ``kill`` waits after SIGTERM before SIGKILL.
KILL_GRACE = 10
#: What a master URL may be asked as.
MASTER_CHOICES = ("standalone", "yarn")

_JOB_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Job:
    """One job as its directory on the master describes it."""

    id: str
    app: str
    state: str
    exit_code: int | None = None
    started: str = ""              # ISO 8601 UTC
    duration_s: float | None = None
    note: str = ""
    args: tuple[str, ...] = ()
    master_url: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "app": self.app, "state": self.state,
                "exit_code": self.exit_code, "started": self.started,
                "duration_s": None if self.duration_s is None else round(self.duration_s, 1),
                "note": self.note, "args": list(self.args), "master_url": self.master_url}


@dataclass
class Submission:
    """What the user asked to run, checked locally before anything is uploaded."""

    app: str
    args: tuple[str, ...] = ()
    conf: tuple[tuple[str, str], ...] = ()
    py_files: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    jars: tuple[str, ...] = ()
    main_class: str | None = None
    master: str | None = None          # "standalone", "yarn" or None (the cluster's default)
    uploads: dict[str, Path] = field(default_factory=dict)   # job-dir relative -> local


# ----------------------------------------------------------------------------- ids, paths

def new_job_id(*, now: datetime | None = None) -> str:
    """``20261124-231501-ab12``: sorts by submit time (UTC), short enough to type."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def check_job_id(job_id: str) -> str:
    """A job id as ``new_job_id`` makes them (so it never names a path outside JOBS_ROOT)."""
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise errors.UsageError(f"{job_id!r} is not a job id (like 20261124-231501-ab12)",
                                hint="`spark-openstack jobs -c NAME` lists the cluster's jobs")
    return job_id


def job_dir(job_id: str) -> str:
    return f"{JOBS_ROOT}/{check_job_id(job_id)}"


def is_remote_uri(path: str) -> bool:
    """``hdfs://x``, ``s3a://b/k``, ``local:/opt/x.jar``: Spark fetches those itself."""
    return bool(_SCHEME.match(path)) and not re.match(r"^[A-Za-z]:[\\/]", path)


def split_list(values) -> tuple[str, ...]:
    """``--py-files a.py,b.zip --py-files c.py`` -> ("a.py", "b.zip", "c.py")."""
    out: list[str] = []
    for value in values or ():
        out += [part.strip() for part in str(value).split(",") if part.strip()]
    return tuple(out)


# ----------------------------------------------------------------------------- submission

def prepare(*, app: str, args=(), conf=(), py_files=(), files=(), jars=(),
            main_class: str | None = None, master: str | None = None) -> Submission:
    """Check what the user gave (local files exist, names do not collide, ``--conf``
    is ``spark.*``) and plan where each local file lands in the job directory."""
    if master is not None and master not in MASTER_CHOICES:
        raise errors.UsageError(f"--master-url {master!r}: expected one of "
                                f"{', '.join(MASTER_CHOICES)}")
    sub = Submission(app=app, args=tuple(args), conf=parse_spark_conf(conf, option="--conf"),
                     py_files=split_list(py_files), files=split_list(files),
                     jars=split_list(jars), main_class=main_class, master=master)
    taken: dict[str, str] = {}

    def plan(path: str, folder: str, option: str) -> None:
        if is_remote_uri(path):
            return
        local = Path(path).expanduser()
        if not local.is_file():
            raise errors.UsageError(f"{option} {path}: no such file",
                                    hint="give a local file, or a URI Spark can fetch "
                                         "(hdfs://..., local:/...)")
        name = local.name
        if "," in name:
            raise errors.UsageError(f"{option} {path}: a file name with a comma cannot be "
                                    "passed to spark-submit", hint="rename the file")
        if folder == "deps" and name in taken:
            raise errors.UsageError(f"{option} {path}: another file is also called {name!r} "
                                    f"({taken[name]})",
                                    hint="Spark puts these files side by side by name: "
                                         "rename one")
        if folder == "deps":
            taken[name] = path
        sub.uploads[f"{folder}/{name}"] = local
    plan(app, "app", "APP")
    for option, values in (("--py-files", sub.py_files), ("--files", sub.files),
                           ("--jars", sub.jars)):
        for path in values:
            plan(path, "deps", option)
    return sub


def master_url(*, facts: ClusterFacts, wanted: str | None) -> tuple[str, str]:
    """``(the --master argument, "standalone"|"yarn")`` for this cluster: YARN when it runs
    YARN (or was asked for and runs it), Spark standalone otherwise."""
    services = set(facts.services)
    if wanted is None:
        wanted = "yarn" if "yarn" in services else "standalone"
    if wanted == "yarn" and "yarn" not in services:
        raise errors.ValidationError(
            f"cluster {facts.cluster_name!r} does not run YARN (its services: "
            f"{', '.join(facts.services) or 'none'})",
            hint="leave out --master-url (Spark standalone), or launch with --services "
                 "including yarn on an image with Hadoop")
    if wanted == "standalone" and "spark" not in services:
        raise errors.ValidationError(
            f"cluster {facts.cluster_name!r} does not run Spark standalone (its services: "
            f"{', '.join(facts.services) or 'none'})",
            hint="use --master-url yarn, or deploy with --services including spark")
    if wanted == "yarn":
        return "yarn", "yarn"
    return f"spark://{facts.master.private_ip}:{PORTS['spark_master']}", "standalone"


def _remote(path: str, *, jobdir: str, folder: str) -> str:
    """Where a path given to submit is on the master: uploaded files in the job dir."""
    if is_remote_uri(path):
        return path
    return f"{jobdir}/{folder}/{Path(path).expanduser().name}"


def submit_argv(*, sub: Submission, facts: ClusterFacts, jobdir: str,
                master: str) -> list[str]:
    """spark-submit's argv with every local path rewritten to its uploaded copy."""
    argv = [f"{facts.spark_home}/bin/spark-submit", "--master", master]
    if master == "yarn":
        argv += ["--deploy-mode", "client"]
    for key, value in sub.conf:
        argv += ["--conf", f"{key}={value}"]
    for option, values in (("--py-files", sub.py_files), ("--files", sub.files),
                           ("--jars", sub.jars)):
        if values:
            argv += [option, ",".join(_remote(v, jobdir=jobdir, folder="deps")
                                      for v in values)]
    if sub.main_class:
        argv += ["--class", sub.main_class]
    argv.append(_remote(sub.app, jobdir=jobdir, folder="app"))
    return argv + list(sub.args)


def runner_script(*, job_id: str, jobdir: str, argv: list[str]) -> str:
    """The script that runs on the master, detached: it outlives every SSH session."""
    return "\n".join([
        "#!/bin/bash",
        f"# spark-openstack job {job_id}: started detached by `spark-openstack submit`.",
        f"cd {shlex.quote(jobdir)} || exit 1",
        "umask 022",                       # the job dir (0700) keeps it private
        "read -r -a stat < /proc/$$/stat",
        'echo "${stat[4]}" > pgid.tmp && mv -f pgid.tmp pgid',
        f"export SPARK_OPENSTACK_JOB_ID={shlex.quote(job_id)}",
        f"export SPARK_OPENSTACK_JOB_DIR={shlex.quote(jobdir)}",
        f"export SPARK_OPENSTACK_OUTPUT_DIR={shlex.quote(jobdir + '/output')}",
        f"{shlex.join(argv)} > driver.log 2>&1 < /dev/null",
        "code=$?",
        'echo "$code" > exit_code.tmp && mv -f exit_code.tmp exit_code',
        ""])


def start_command(*, jobdir: str) -> str:
    """Start the runner in its own session, detached from this command, and print its
    process group (waits <= 10 s for the runner to write it)."""
    d = shlex.quote(jobdir)
    # the subshell makes the runner an orphan at once: sudo's use_pty would otherwise wait
    # for it (and so would the SSH command)
    return (f"cd {d} && (setsid nohup ./run.sh > /dev/null 2>&1 < /dev/null &); "
            f"for i in $(seq 1 100); do [ -s {d}/pgid ] && break; sleep 0.1; done; "
            f"cat {d}/pgid")


def submit(*, runner, facts: ClusterFacts, sub: Submission,
           job_id: str | None = None) -> Job:
    """Upload the app and its files in one archive, start it detached; the ``Job``."""
    url, kind = master_url(facts=facts, wanted=sub.master)
    job_id = check_job_id(job_id or new_job_id())
    jobdir = job_dir(job_id)
    argv = submit_argv(sub=sub, facts=facts, jobdir=jobdir, master=url)
    now = datetime.now(timezone.utc)
    meta = {"id": job_id, "app": sub.app, "args": list(sub.args), "master": kind,
            "master_url": url, "conf": [list(kv) for kv in sub.conf],
            "py_files": list(sub.py_files), "files": list(sub.files), "jars": list(sub.jars),
            "class": sub.main_class, "argv": argv,
            "submitted_at": now.isoformat(timespec="seconds"),
            "submitted_epoch": now.timestamp()}
    payload = {f"{jobdir}/job.json": (json.dumps(meta, indent=2) + "\n", 0o600),
               f"{jobdir}/run.sh": (runner_script(job_id=job_id, jobdir=jobdir, argv=argv),
                                    0o700)}
    for rel, local in sub.uploads.items():
        try:
            payload[f"{jobdir}/{rel}"] = (local.read_bytes(), 0o600)
        except OSError as exc:
            raise errors.UsageError(f"cannot read {local}: {exc.strerror or exc}") from exc
    dirs = " ".join(shlex.quote(f"{jobdir}/{d}") for d in ("", "app", "deps", "output"))
    user = SERVICE_USER
    setup = (f"mkdir -p {shlex.quote(str(Path(JOBS_ROOT).parent))} && "
             f"install -d -m 0700 -o {user} -g {user} {shlex.quote(JOBS_ROOT)} {dirs}")
    runner.put_files(facts.master, payload, owner=user, setup=setup, timeout=600)
    out = runner.run(facts.master, start_command(jobdir=jobdir), timeout=COMMAND_TIMEOUT,
                     check=False)
    if out.exited != 0 or not out.stdout.strip().isdigit():
        why = (out.stderr or out.stdout).strip()[-500:]
        raise errors.DeployError(f"job {job_id} did not start on {facts.master.name}"
                                 + (f": {why}" if why else ""),
                                 hint=f"see {jobdir} on the master")
    return Job(id=job_id, app=sub.app, state=RUNNING, started=meta["submitted_at"],
               duration_s=0.0, args=sub.args, master_url=url)


# ----------------------------------------------------------------------------- on the master

#: Runs as hduser on the master (``python3 -c``): reads job directories, one answer as
#: JSON. ``list`` -> every job; ``poll ID OFFSET`` -> one job and its log from OFFSET
#: (base64); ``kill ID GRACE`` -> SIGTERM the job's group, SIGKILL after GRACE seconds.
_MASTER_PY = r'''
import base64, json, os, signal, sys, time
root, action = sys.argv[1], sys.argv[2]
def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None
def alive(pgid):
    if not pgid:
        return False
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
def raw(jid):
    d = os.path.join(root, jid)
    meta = read(os.path.join(d, "job.json"))
    try:
        meta = json.loads(meta) if meta else None
    except ValueError:
        meta = None
    code = read(os.path.join(d, "exit_code"))
    pgid = read(os.path.join(d, "pgid"))
    pgid = int(pgid) if pgid and pgid.isdigit() else None
    ended = None
    for marker in ("exit_code", "killed"):
        try:
            ended = os.stat(os.path.join(d, marker)).st_mtime
            break
        except OSError:
            pass
    try:
        size = os.stat(os.path.join(d, "driver.log")).st_size
    except OSError:
        size = 0
    return {"id": jid, "meta": meta,
            "exit_code": int(code) if code and code.lstrip("-").isdigit() else None,
            "killed": os.path.exists(os.path.join(d, "killed")), "pgid": pgid,
            "alive": alive(pgid), "ended": ended, "now": time.time(), "log_size": size}
def exists(jid):
    if not os.path.isdir(os.path.join(root, jid)):
        print(json.dumps({"missing": jid}))
        sys.exit(0)
if action == "list":
    jids = sorted(os.listdir(root)) if os.path.isdir(root) else []
    print(json.dumps([raw(j) for j in jids if os.path.isdir(os.path.join(root, j))]))
elif action == "poll":
    jid, offset = sys.argv[3], int(sys.argv[4])
    exists(jid)
    rec = raw(jid)
    data = b""
    try:
        with open(os.path.join(root, jid, "driver.log"), "rb") as f:
            f.seek(offset)
            data = f.read(int(sys.argv[5]))
    except OSError:
        pass
    rec["data"] = base64.b64encode(data).decode()
    print(json.dumps(rec))
elif action == "kill":
    jid, grace = sys.argv[3], float(sys.argv[4])
    exists(jid)
    rec = raw(jid)
    if rec["exit_code"] is None and not rec["killed"] and rec["alive"]:
        open(os.path.join(root, jid, "killed"), "w").close()
        try:
            os.killpg(rec["pgid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        end = time.time() + grace
        while alive(rec["pgid"]) and time.time() < end:
            time.sleep(0.2)
        if alive(rec["pgid"]):
            try:
                os.killpg(rec["pgid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(50):
                if not alive(rec["pgid"]):
                    break
                time.sleep(0.1)
        rec = raw(jid)
        rec["signalled"] = True
    print(json.dumps(rec))
'''


def _master_call(*, runner, facts: ClusterFacts, args: list[str],
                 timeout: float = COMMAND_TIMEOUT):
    command = shlex.join(["python3", "-c", _MASTER_PY, JOBS_ROOT, *args])
    out = runner.run(facts.master, command, timeout=timeout, check=False)
    # SSHError/TimeoutError_ above mean "not reached" (a follow retries those); an answer
    # that is wrong is final
    if out.exited != 0:
        why = (out.stderr or out.stdout).strip()[-800:]
        raise errors.DeployError(f"{facts.master.name}: reading the jobs failed (exit "
                                 f"{out.exited})" + (f": {why}" if why else ""),
                                 hint="the master needs python3 (every image has it)")
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise errors.DeployError(f"{facts.master.name}: unreadable answer about the jobs: "
                                 f"{out.stdout.strip()[:200]!r}") from exc


def _missing(answer, *, job_id: str, facts: ClusterFacts) -> None:
    if isinstance(answer, dict) and answer.get("missing"):
        raise errors.NotFoundError(
            f"cluster {facts.cluster_name!r} has no job {job_id}",
            hint=f"`spark-openstack jobs -c {facts.cluster_name}` lists its jobs")


def derive_state(rec: dict) -> tuple[str, str]:
    """``(state, note)`` from what the master's job directory holds: a ``killed`` marker
    wins, then the runner's exit code, then a live process group; none of those means
    the runner died without writing its exit code (a reboot, the OOM killer): lost."""
    if rec.get("killed"):
        return KILLED, ""
    code = rec.get("exit_code")
    if code is not None:
        return (FINISHED, "") if code == 0 else (FAILED, "")
    if rec.get("alive"):
        return RUNNING, ""
    if rec.get("pgid") is None:
        return FAILED, "lost: the runner never started"
    return FAILED, "lost: the driver ended without an exit code (master rebooted?)"


def job_from_raw(rec: dict) -> Job:
    """A ``Job`` from one record of the master script."""
    meta = rec.get("meta") or {}
    state, note = derive_state(rec)
    started_epoch = meta.get("submitted_epoch")
    duration = None
    if isinstance(started_epoch, (int, float)):
        end = rec.get("now") if state == RUNNING else rec.get("ended")
        if isinstance(end, (int, float)):
            duration = max(0.0, end - started_epoch)
    return Job(id=rec["id"], app=meta.get("app", "?"), state=state,
               exit_code=rec.get("exit_code"), started=meta.get("submitted_at", ""),
               duration_s=duration, note=note, args=tuple(meta.get("args") or ()),
               master_url=meta.get("master_url", ""))


def list_jobs(*, runner, facts: ClusterFacts) -> list[Job]:
    """Every job on the master, oldest first (one SSH command)."""
    return [job_from_raw(rec) for rec in _master_call(runner=runner, facts=facts,
                                                      args=["list"])]


def get_job(*, runner, facts: ClusterFacts, job_id: str) -> Job:
    answer = _master_call(runner=runner, facts=facts, args=["poll", check_job_id(job_id),
                                                             "0", "0"])
    _missing(answer, job_id=job_id, facts=facts)
    return job_from_raw(answer)


def follow(*, runner, facts: ClusterFacts, job_id: str,
           on_output: Callable[[bytes], None], until_end: bool = True, offset: int = 0,
           interval: float = 0.5, max_interval: float = 2.0) -> Job:
    """Pass ``driver.log`` from ``offset`` to ``on_output`` as it grows; with
    ``until_end`` keep going until the job has ended and its log is read to the end,
    else stop at the end of what is written now. The final ``Job`` is returned.

    Every poll is one short command; SSH trouble is retried for ``FOLLOW_PATIENCE``
    seconds (the job runs on regardless). Ctrl-C ends the follow at once
    (``Interrupted``/``KeyboardInterrupt``): what to do with the job is the caller's.
    """
    check_job_id(job_id)
    delay = interval
    trouble_since: float | None = None
    while True:
        polling.sleep(0)
        try:
            answer = _master_call(runner=runner, facts=facts,
                                  args=["poll", job_id, str(offset), str(CHUNK)])
        except (errors.SSHError, errors.TimeoutError_) as exc:
            trouble_since = trouble_since or time.monotonic()
            if time.monotonic() - trouble_since > FOLLOW_PATIENCE:
                raise errors.SSHError(
                    f"lost the connection to {facts.master.name} while following job "
                    f"{job_id}: {exc.message}",
                    hint=f"the job runs on: `spark-openstack logs -c {facts.cluster_name} "
                         f"{job_id} --follow` picks it up again") from exc
            polling.sleep(min(5.0, max_interval * 2))
            continue
        trouble_since = None
        _missing(answer, job_id=job_id, facts=facts)
        data = base64.b64decode(answer.get("data") or "")
        if data:
            offset += len(data)
            on_output(data)
            delay = interval
        job = job_from_raw(answer)
        if data and offset < int(answer.get("log_size") or 0):
            continue                       # more of the log is already there
        # the state was read before the log: an ended job's log is complete by now
        if not until_end or job.state != RUNNING:
            return job
        polling.sleep(delay)
        delay = min(max_interval, delay * 1.5)


def kill(*, runner, facts: ClusterFacts, job_id: str,
         grace: float = KILL_GRACE) -> tuple[Job, bool]:
    """Stop a running job: SIGTERM to its process group, SIGKILL after ``grace`` seconds,
    a ``killed`` marker left. ``(job, True)`` when it was stopped now, ``(job, False)``
    when it had already ended (nothing is done then)."""
    answer = _master_call(runner=runner, facts=facts,
                          args=["kill", check_job_id(job_id), str(grace)],
                          timeout=grace + COMMAND_TIMEOUT)
    _missing(answer, job_id=job_id, facts=facts)
    return job_from_raw(answer), bool(answer.get("signalled"))


# ----------------------------------------------------------------------------- output

def fetch_output(*, runner, facts: ClusterFacts, job_id: str, dest: Path | str,
                 timeout: float = 1800) -> list[Path]:
    """Bring the job's ``output/`` folder and ``driver.log`` home into ``dest`` (one tar
    over the command's stdout); the files written, relative to ``dest``."""
    jobdir = job_dir(job_id)
    command = (f"cd {shlex.quote(jobdir)} && set -o pipefail && "
               "tar -czf - --ignore-failed-read output driver.log 2>/dev/null | base64 -w0")
    out = runner.run(facts.master, command, timeout=timeout, check=False)
    if out.exited != 0 or not out.stdout.strip():
        why = (out.stderr or "").strip()[-500:]
        raise errors.SSHError(f"{facts.master.name}: could not fetch the output of job "
                              f"{job_id} (exit {out.exited})" + (f": {why}" if why else ""))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    blob = base64.b64decode(out.stdout.strip())
    try:
        return _unpack_output(blob, dest)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise errors.SSHError(f"the output of job {job_id} could not be unpacked into "
                              f"{dest}: {exc}") from exc


def _unpack_output(blob: bytes, dest: Path) -> list[Path]:
    """``output/*`` into ``dest`` itself, ``driver.log`` beside it; nothing outside."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = []
        for member in tar.getmembers():
            name = member.name
            if name == "driver.log" and member.isfile():
                members.append(member)
                continue
            if not name.startswith("output/"):
                continue
            member.name = name[len("output/"):]
            members.append(member)
        tar.extractall(dest, members=members, filter="data")
        return sorted(Path(m.name) for m in members if m.isfile())
