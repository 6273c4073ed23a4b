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
from .probes import wait_for_probe
from .render import PORTS
from .transport import SERVICE_USER
from .services.yarn import FAIL_FAST

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
#: The note of a running job whose driver log last said it waits for executors.
WAITING_NOTE = "waiting for resources"
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
    """spark-submit's argv with every local path rewritten to its uploaded copy; on YARN
    with ``--num-executors`` filling every worker (``executor_request_count``): Spark's
    default of 2 leaves a third worker idle, or puts both on one worker."""
    argv = [f"{facts.spark_home}/bin/spark-submit", "--master", master]
    if master == "yarn":
        argv += ["--deploy-mode", "client"]
        count = executor_request_count(facts=facts, conf=sub.conf)
        if count is not None:
            argv += ["--num-executors", str(count)]
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


#: How long ``submit`` waits for a started runner to write its process group.
START_TIMEOUT = 10


def start_command(*, jobdir: str) -> str:
    """Start the runner in its own session, detached from this command (it returns at
    once; ``pgid_probe`` then tells when the runner has written its process group)."""
    d = shlex.quote(jobdir)
    # the subshell makes the runner an orphan at once: sudo's use_pty would otherwise wait
    # for it (and so would the SSH command)
    return f"cd {d} && (setsid nohup ./run.sh > /dev/null 2>&1 < /dev/null &)"


def pgid_probe(*, jobdir: str) -> str:
    """One-shot probe: prints the runner's process group and exits 0 once it is written."""
    pgid = shlex.quote(f"{jobdir}/pgid")
    return f"test -s {pgid} && cat {pgid}"


def wait_started(*, runner, node, job_id: str, jobdir: str,
                 timeout: float = START_TIMEOUT) -> int:
    """Start the job's runner on ``node`` and wait (a bounded poll of ``pgid_probe``) for
    its process group, which is returned; ``DeployError`` when it does not start."""
    def failed(why: str) -> errors.DeployError:
        why = why.strip()[-500:]
        return errors.DeployError(f"job {job_id} did not start on {node.name}"
                                  + (f": {why}" if why else ""),
                                  hint=f"see {jobdir} on the master")
    out = runner.run(node, start_command(jobdir=jobdir), timeout=COMMAND_TIMEOUT,
                     check=False)
    if out.exited != 0:
        raise failed(out.stderr or out.stdout)
    try:
        out = wait_for_probe(runner=runner, node=node, command=pgid_probe(jobdir=jobdir),
                             timeout=timeout, what=f"job {job_id}: its runner's pgid",
                             interval=0.1, max_interval=0.5)
    except errors.TimeoutError_ as exc:
        raise failed(f"no pgid after {timeout:.0f}s") from exc
    if not out.stdout.strip().isdigit():
        raise failed(out.stderr or out.stdout)
    return int(out.stdout.strip())


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
    wait_started(runner=runner, node=facts.master, job_id=job_id, jobdir=jobdir)
    return Job(id=job_id, app=sub.app, state=RUNNING, started=meta["submitted_at"],
               duration_s=0.0, args=sub.args, master_url=url)


# ----------------------------------------------------------------------------- on the master

#: Runs as hduser on the master (``python3 -c``): reads job directories, one answer as
#: JSON. ``list`` -> every job; ``poll ID OFFSET`` -> one job and its log from OFFSET
#: (base64); ``kill ID REASON`` -> leave the killed marker and SIGTERM the job's group;
#: ``sigkill PGID`` -> SIGKILL it. ``gone PGID`` is a probe: exits 0 once the group has
#: no process left. Every action is one shot: ``kill`` waits by polling ``gone``.
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
    return {"id": jid, "meta": meta, "waiting": waiting(d, size),
            "killed_reason": (read(os.path.join(d, "killed")) or "")[:300],
            "exit_code": int(code) if code and code.lstrip("-").isdigit() else None,
            "killed": os.path.exists(os.path.join(d, "killed")), "pgid": pgid,
            "alive": alive(pgid), "ended": ended, "now": time.time(), "log_size": size}
WAIT = ("Initial job has not accepted any resources", "(state: ACCEPTED)")
GOT = ("Registered executor ", "Granted executor ID ", "Executor added: ", "Starting task ",
       "(state: RUNNING)")
def waiting(d, size):
    # the last word of the log's tail on resources: still waiting, or got something
    try:
        with open(os.path.join(d, "driver.log"), "rb") as f:
            f.seek(max(0, size - 65536))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    last_wait = max(tail.rfind(w) for w in WAIT)
    return last_wait >= 0 and last_wait > max(tail.rfind(g) for g in GOT)
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
    jid = sys.argv[3]
    reason = sys.argv[4] if len(sys.argv) > 4 else ""
    exists(jid)
    rec = raw(jid)
    if rec["exit_code"] is None and not rec["killed"] and rec["alive"]:
        with open(os.path.join(root, jid, "killed"), "w") as f:
            f.write(reason)
        try:
            os.killpg(rec["pgid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
        rec = raw(jid)
        rec["signalled"] = True
    print(json.dumps(rec))
elif action == "sigkill":
    try:
        os.killpg(int(sys.argv[3]), signal.SIGKILL)
    except ProcessLookupError:
        pass
    print(json.dumps({}))
elif action == "gone":
    sys.exit(1 if alive(int(sys.argv[3])) else 0)
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
    the runner died without writing its exit code (a reboot, the OOM killer): lost.
    A running job whose log last said it has no executor (or its YARN application is
    still ACCEPTED) is noted "waiting for resources"; a kill's reason is its note."""
    if rec.get("killed"):
        return KILLED, rec.get("killed_reason") or ""
    code = rec.get("exit_code")
    if code is not None:
        return (FINISHED, "") if code == 0 else (FAILED, "")
    if rec.get("alive"):
        return RUNNING, WAITING_NOTE if rec.get("waiting") else ""
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
           interval: float = 0.5, max_interval: float = 2.0,
           resource_timeout: float | None = None) -> Job:
    """Pass ``driver.log`` from ``offset`` to ``on_output`` as it grows; with
    ``until_end`` keep going until the job has ended and its log is read to the end,
    else stop at the end of what is written now. The final ``Job`` is returned.

    Every poll is one short command; SSH trouble is retried for ``FOLLOW_PATIENCE``
    seconds (the job runs on regardless). Ctrl-C ends the follow at once
    (``Interrupted``/``KeyboardInterrupt``): what to do with the job is the caller's.

    With ``resource_timeout`` (seconds) a job that waits that long for resources (see
    ``ResourceWatch``) is not waited on forever: ``starved`` asks the cluster what it
    offers, kills the job with that reason and raises ``NoResourcesError`` saying why.
    """
    check_job_id(job_id)
    watch = ResourceWatch(timeout=resource_timeout) if resource_timeout else None
    meta: dict = {}
    trouble_since: float | None = None
    got_output = False

    def read() -> Job | None:
        """Read the log up to what is written now (one short command per chunk); the
        final ``Job`` once done, None for "poll again"."""
        nonlocal offset, meta, trouble_since, got_output
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
                        hint=f"the job runs on: `spark-openstack logs -c "
                             f"{facts.cluster_name} {job_id} --follow` picks it up "
                             "again") from exc
                return None
            trouble_since = None
            _missing(answer, job_id=job_id, facts=facts)
            data = base64.b64decode(answer.get("data") or "")
            meta = answer.get("meta") or meta
            if data:
                offset += len(data)
                on_output(data)
                got_output = True
                if watch is not None:
                    watch.feed(data, now=time.monotonic())
            job = job_from_raw(answer)
            if watch is not None and job.state == RUNNING:
                verdict = watch.verdict(now=time.monotonic())
                if verdict is not None:
                    starved(runner=runner, facts=facts, job_id=job_id, meta=meta,
                            kind=verdict[0], waited=verdict[1], app_id=watch.app_id)
            if data and offset < int(answer.get("log_size") or 0):
                continue                   # more of the log is already there
            # the state was read before the log: an ended job's log is complete by now
            if not until_end or job.state != RUNNING:
                return job
            return None

    def had_output() -> bool:
        nonlocal got_output
        had, got_output = got_output, False
        return had

    # no deadline: a job runs as long as it runs; Ctrl-C (ABORT) or SSH trouble for
    # longer than FOLLOW_PATIENCE end the follow
    return polling.poll(read, timeout=None, what=f"job {job_id} to end", interval=interval,
                        max_interval=max_interval, backoff=1.5, reset=had_output)


def kill(*, runner, facts: ClusterFacts, job_id: str,
         grace: float = KILL_GRACE, reason: str = "") -> tuple[Job, bool]:
    """Stop a running job: SIGTERM to its process group, SIGKILL after ``grace`` seconds,
    a ``killed`` marker left (holding ``reason``, which ``jobs`` shows). ``(job, True)``
    when it was stopped now, ``(job, False)`` when it had already ended (nothing is done
    then). On YARN the job's application is killed first (``yarn application -kill``),
    so YARN ends it KILLED and frees its containers even when the driver runs there
    (cluster deploy mode) or ignores the signal."""
    if "yarn" in facts.services:
        kill_yarn_application(runner=runner, facts=facts, job_id=job_id)
    answer = _master_call(runner=runner, facts=facts,
                          args=["kill", check_job_id(job_id),
                                " ".join(reason.split())[:300]])
    _missing(answer, job_id=job_id, facts=facts)
    if not answer.get("signalled"):
        return job_from_raw(answer), False
    pgid = int(answer["pgid"])
    try:
        _wait_group_gone(runner=runner, facts=facts, pgid=pgid, timeout=grace,
                         interval=0.2)
    except errors.TimeoutError_:
        _master_call(runner=runner, facts=facts, args=["sigkill", str(pgid)])
        try:
            _wait_group_gone(runner=runner, facts=facts, pgid=pgid, timeout=KILL_SETTLE,
                             interval=0.1)
        except errors.TimeoutError_:
            pass                           # as before: the state read next tells
    answer = _master_call(runner=runner, facts=facts, args=["poll", job_id, "0", "0"])
    _missing(answer, job_id=job_id, facts=facts)
    return job_from_raw(answer), True


#: How long ``kill`` waits for the group to go after its SIGKILL.
KILL_SETTLE = 5


def _wait_group_gone(*, runner, facts: ClusterFacts, pgid: int, timeout: float,
                     interval: float) -> None:
    """A bounded poll of the master's one-shot ``gone`` probe for process group ``pgid``;
    ``TimeoutError_`` if it still has a process after ``timeout`` seconds."""
    probe = shlex.join(["python3", "-c", _MASTER_PY, JOBS_ROOT, "gone", str(pgid)])
    wait_for_probe(runner=runner, node=facts.master, command=probe, timeout=timeout,
                   what=f"process group {pgid} on {facts.master.name} to end",
                   interval=interval, max_interval=1.0)


def kill_yarn_application(*, runner, facts: ClusterFacts, job_id: str) -> str:
    """Kill the YARN application a running job submitted (its id is the last one its
    driver log names); returns that id ("" when the job has ended or submitted none)."""
    answer = _master_call(runner=runner, facts=facts,
                          args=["poll", check_job_id(job_id), "0", str(YARN_LOG_SCAN)])
    _missing(answer, job_id=job_id, facts=facts)
    if job_from_raw(answer).state != RUNNING:
        return ""
    found = _APP_ID.findall(base64.b64decode(answer.get("data") or "").decode("utf-8",
                                                                             "replace"))
    if not found:
        return ""
    yarn = shlex.quote(f"{facts.hadoop_home}/bin/yarn")
    runner.run(facts.master, f"{yarn} application {FAIL_FAST} -kill {found[-1]}",
               timeout=COMMAND_TIMEOUT + 60, check=False)
    return found[-1]


#: How much of a driver log ``kill_yarn_application`` reads for the application id
#: (spark-submit names it in its first lines).
YARN_LOG_SCAN = 4 * 1024 * 1024


# ----------------------------------------------------------------------------- resources

#: Default of ``submit --resource-timeout``: how long an attached job may go without an
#: executor (or stay ACCEPTED in YARN) before ``follow`` says why and kills it.
RESOURCE_TIMEOUT = 180
#: Spark repeats its starvation warning every 15 s; older than this, the streak is over.
_STREAK_GAP = 45.0
_STARVED = re.compile(r"Initial job has not accepted any resources")
_ACCEPTED = re.compile(r"Application report for application_\d+_\d+ \(state: ACCEPTED\)")
_APP_RUNNING = re.compile(r"Application report for application_\d+_\d+ \(state: RUNNING\)")
_PROGRESS = re.compile(r"Registered executor |Granted executor ID |Executor added: |"
                       r"Starting task \d")
_APP_ID = re.compile(r"\b(application_\d+_\d+)\b")


class NoResourcesError(errors.SparkOpenstackError):
    """An attached job got no executor in time; the message says what it asked for and
    what each node offers. Exit code 3 (the job was killed)."""

    exit_code = 3


@dataclass
class ResourceWatch:
    """Reads a driver log as it arrives and tells when the job has waited too long for
    resources: stuck ACCEPTED in YARN (no application master), or running with Spark's
    "Initial job has not accepted any resources" repeating and no executor since."""

    timeout: float
    app_id: str = ""
    accepted_since: float | None = None
    starved_since: float | None = None
    last_seen: float | None = None
    _partial: str = ""

    def feed(self, data: bytes, *, now: float) -> None:
        text = self._partial + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            if not self.app_id and (m := _APP_ID.search(line)):
                self.app_id = m.group(1)
            if _ACCEPTED.search(line):
                if self.accepted_since is None:
                    self.accepted_since = now
                self.last_seen = now
            elif _APP_RUNNING.search(line):
                self.accepted_since = None
            elif _STARVED.search(line):
                if self.last_seen is None or now - self.last_seen > _STREAK_GAP:
                    self.starved_since = None
                if self.starved_since is None:
                    self.starved_since = now
                self.last_seen = now
            elif _PROGRESS.search(line):
                self.starved_since = None

    def verdict(self, *, now: float) -> tuple[str, float] | None:
        """``("accepted"|"no executors", seconds waited)`` once past the timeout."""
        if not self.timeout or self.last_seen is None or now - self.last_seen > _STREAK_GAP:
            return None
        for kind, since in (("accepted", self.accepted_since),
                            ("no executors", self.starved_since)):
            if since is not None and now - since >= self.timeout:
                return kind, now - since
        return None


def parse_memory_mb(value: str, *, default_unit: str = "m") -> int | None:
    """Spark's memory strings (``512m``, ``2g``, ``1024``) in MB; None if unreadable."""
    m = re.match(r"^\s*(\d+)\s*([kmgt]?)b?\s*$", str(value).lower())
    if not m:
        return None
    unit = m.group(2) or default_unit
    return int(int(m.group(1)) * {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 ** 2}[unit])


def effective_conf(*, facts: ClusterFacts, conf=()) -> dict[str, str]:
    """The job's Spark settings as spark-submit sees them: the rendered defaults, then the
    cluster's own (``configure-cluster``), then the job's ``--conf``."""
    from .render import cluster_sizing
    out = {}
    if "yarn" in facts.services:
        sizing = cluster_sizing(facts=facts)
        out = {"spark.executor.memory": f"{sizing.spark_executor_mb}m",
               "spark.driver.memory": f"{sizing.spark_driver_mb}m",
               "spark.yarn.am.memory": f"{sizing.yarn_am_mb}m",
               "spark.executor.cores": str(sizing.spark_executor_cores)}
    out.update(dict(facts.spark_conf))
    out.update({k: v for k, v in conf})
    return out


def _min_allocation_mb(facts: ClusterFacts) -> int:
    from .render import cluster_sizing
    for file, key, value in facts.hadoop_conf:
        if file == "yarn-site.xml" and key == "yarn.scheduler.minimum-allocation-mb":
            if str(value).strip().isdigit():
                return int(value)
    return cluster_sizing(facts=facts).yarn_min_allocation_mb


def yarn_request(*, facts: ClusterFacts, conf=()) -> dict:
    """What a client-mode job asks YARN for, as YARN counts it: executor and application
    master heap + overhead, rounded up to yarn.scheduler.minimum-allocation-mb."""
    from .render import executor_overhead_mb, yarn_container_mb
    settings = effective_conf(facts=facts, conf=conf)
    step = _min_allocation_mb(facts)
    out = {"manager": "yarn", "min_allocation_mb": step}
    for role, key, overhead_key in (
            ("executor", "spark.executor.memory", "spark.executor.memoryOverhead"),
            ("am", "spark.yarn.am.memory", "spark.yarn.am.memoryOverhead")):
        heap = parse_memory_mb(settings.get(key, "1g" if role == "executor" else "512m"))
        heap = heap or 1024
        overhead = parse_memory_mb(settings.get(overhead_key, "")) \
            or executor_overhead_mb(heap)
        out[role] = {"heap_mb": heap, "overhead_mb": overhead,
                     "container_mb": yarn_container_mb(heap_mb=heap, min_allocation_mb=step,
                                                       overhead_mb=overhead)}
    cores = settings.get("spark.executor.cores", "1")
    out["executor"]["cores"] = int(cores) if str(cores).isdigit() else 1
    out["am"]["cores"] = 1
    return out


def executor_request_count(*, facts: ClusterFacts, conf=()) -> int | None:
    """How many executors ``submit`` asks YARN for (``--num-executors``): enough to fill
    every worker beside the application master, so every worker gets one whatever order
    the NodeManagers' heartbeats come in. None when the job or cluster chooses itself
    (``spark.executor.instances``, dynamic allocation) or YARN is not run."""
    from .render import node_sizing, yarn_executor_slots
    if "yarn" not in facts.services:
        return None
    settings = effective_conf(facts=facts, conf=conf)
    if "spark.executor.instances" in settings or \
            settings.get("spark.dynamicAllocation.enabled", "").lower() == "true":
        return None
    request = yarn_request(facts=facts, conf=conf)
    workers = facts.workers or (facts.master,)
    nms = [node_sizing(node=w, services=facts.services,
                       worker_count=len(workers)).yarn_nodemanager_mb for w in workers]
    slots = yarn_executor_slots(nodemanager_mbs=nms, executor_mb=request["executor"]["heap_mb"],
                                am_mb=request["am"]["heap_mb"],
                                min_allocation_mb=request["min_allocation_mb"])
    return max(1, slots)


#: Runs on the master (``python3 -c``): the ResourceManager's nodes and the app, as JSON.
_RM_PY = r'''
import json, sys, urllib.request
base, app = sys.argv[1], sys.argv[2]
def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return json.loads(r.read().decode())
    except Exception as exc:
        return {"error": str(exc)}
out = {"nodes": get("/ws/v1/cluster/nodes"),
       "apps": get("/ws/v1/cluster/apps?states=NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING")}
if app:
    out["app"] = get("/ws/v1/cluster/apps/" + app)
print(json.dumps(out))
'''


def resource_offers(*, runner, facts: ClusterFacts, app_id: str = "") -> dict:
    """What YARN's ResourceManager says (asked on the master: its REST API listens on
    the private address only): ``{"nodes": [...], "apps": [...], "app": {...}}``, or
    ``{"error": why}``."""
    base = f"http://{facts.master.private_ip}:{PORTS['resourcemanager_http']}"
    command = shlex.join(["python3", "-c", _RM_PY, base, app_id])
    try:
        out = runner.run(facts.master, command, timeout=COMMAND_TIMEOUT, check=False)
        raw = json.loads(out.stdout.strip().splitlines()[-1])
    except (errors.SparkOpenstackError, ValueError, IndexError) as exc:
        return {"error": f"could not ask the ResourceManager: {exc}"}
    nodes = ((raw.get("nodes") or {}).get("nodes") or {}).get("node") or []
    apps = ((raw.get("apps") or {}).get("apps") or {}).get("app") or []
    result = {"nodes": nodes, "apps": apps, "app": (raw.get("app") or {}).get("app") or {}}
    if not nodes and (raw.get("nodes") or {}).get("error"):
        result["error"] = f"the ResourceManager did not answer: {raw['nodes']['error']}"
    return result


def _node_line(node: dict) -> str:
    used, free = int(node.get("usedMemoryMB") or 0), int(node.get("availMemoryMB") or 0)
    ucores = int(node.get("usedVirtualCores") or 0)
    fcores = int(node.get("availableVirtualCores") or 0)
    return (f"{node.get('nodeHostName') or node.get('id', '?')} ({node.get('state', '?')}): "
            f"{used + free} MB / {ucores + fcores} vcores, free {free} MB / {fcores} vcores, "
            f"{int(node.get('numContainers') or 0)} container(s)")


def starvation_message(*, job_id: str, kind: str, waited: float, request: dict,
                       offers: dict) -> str:
    """Why a job got nothing: what it asked for (after YARN's rounding) against what each
    NodeManager offers, and the ResourceManager's own word on the application."""
    ex = request["executor"]
    if kind == "accepted":
        what = "its application stayed ACCEPTED (YARN started no application master)"
    else:
        what = "it got no executor"
    lines = [f"job {job_id}: {what} in {waited:.0f}s."]
    if request.get("manager") == "yarn":
        am, step = request["am"], request["min_allocation_mb"]
        lines += [f"  it asks YARN for executors of {ex['heap_mb']}m + {ex['overhead_mb']}m "
                  f"overhead -> {ex['container_mb']} MB (rounded up to "
                  f"yarn.scheduler.minimum-allocation-mb {step}), {ex['cores']} vcore(s) "
                  f"each, and an application master of {am['heap_mb']}m + "
                  f"{am['overhead_mb']}m -> {am['container_mb']} MB, 1 vcore;",
                  f"  the worker that holds the application master needs "
                  f"{am['container_mb'] + ex['container_mb']} MB for it and one executor."]
    else:
        lines.append(f"  it asks the Spark master for executors of {ex['heap_mb']} MB, "
                     f"{ex['cores']} core(s) each.")
    nodes = offers.get("nodes") or []
    if nodes:
        lines.append("  the NodeManagers offer:" if request.get("manager") == "yarn"
                     else "  the Spark workers offer:")
        lines += [f"    {_node_line(n)}" for n in nodes]
        fits = [n for n in nodes if n.get("state") == "RUNNING"
                and int(n.get("usedMemoryMB") or 0) + int(n.get("availMemoryMB") or 0)
                >= ex["container_mb"]]
        if not fits:
            lines.append(f"  no running node can ever hold a {ex['container_mb']} MB "
                         "executor: ask for less (--conf spark.executor.memory=...)")
    elif offers.get("error"):
        lines.append(f"  ({offers['error']})")
    app = offers.get("app") or {}
    if app.get("diagnostics"):
        lines.append(f"  YARN says: {str(app['diagnostics']).strip()[:400]}")
    others = [a for a in offers.get("apps") or [] if a.get("id") != app.get("id")]
    if others:
        lines.append("  other applications hold: " + "; ".join(
            f"{a.get('id')} {a.get('name', '')!s:.40} ({a.get('state')}, "
            f"{int(a.get('allocatedMB') or 0)} MB)" for a in others))
    return "\n".join(lines)


def standalone_offers(*, runner, facts: ClusterFacts) -> dict:
    """The Spark standalone workers as YARN-like node records (for the same message)."""
    from .services.spark import Spark
    try:
        state = Spark(facts=facts, runner=runner).master_state()
    except errors.SparkOpenstackError as exc:
        return {"error": f"could not ask the Spark master: {exc.message}"}
    nodes = [{"nodeHostName": w.get("host", "?"), "state":
              "RUNNING" if w.get("state") == "ALIVE" else w.get("state", "?"),
              "usedMemoryMB": w.get("memoryused", 0),
              "availMemoryMB": int(w.get("memory", 0)) - int(w.get("memoryused", 0)),
              "usedVirtualCores": w.get("coresused", 0),
              "availableVirtualCores": int(w.get("cores", 0)) - int(w.get("coresused", 0)),
              "numContainers": 0} for w in state.get("workers", [])]
    apps = [{"id": a.get("id"), "name": a.get("name", ""), "state": a.get("state"),
             "allocatedMB": a.get("memoryperslave", 0)} for a in state.get("activeapps", [])]
    return {"nodes": nodes, "apps": apps}


def job_request(*, facts: ClusterFacts, meta: dict) -> dict:
    """What a submitted job asks for, from its ``job.json`` (master and ``--conf``)."""
    conf = tuple(tuple(kv) for kv in meta.get("conf") or ())
    if meta.get("master") == "yarn":
        return yarn_request(facts=facts, conf=conf)
    from .render import cluster_sizing
    settings = dict(facts.spark_conf)
    settings.update(dict(conf))
    heap = parse_memory_mb(settings.get("spark.executor.memory", "")) \
        or cluster_sizing(facts=facts).spark_executor_mb
    cores = str(settings.get("spark.executor.cores", "all of a worker's"))
    return {"manager": "standalone",
            "executor": {"heap_mb": heap, "overhead_mb": 0, "container_mb": heap,
                         "cores": cores}}


def starved(*, runner, facts: ClusterFacts, job_id: str, meta: dict, kind: str,
            waited: float, app_id: str = "") -> None:
    """A job waited too long for resources: ask the cluster what it offers, kill the job
    (it would hold its application master and wait forever) and raise
    ``NoResourcesError`` with what it asked for against what each node offers."""
    request = job_request(facts=facts, meta=meta)
    if request["manager"] == "yarn":
        offers = resource_offers(runner=runner, facts=facts, app_id=app_id)
    else:
        offers = standalone_offers(runner=runner, facts=facts)
    message = starvation_message(job_id=job_id, kind=kind, waited=waited, request=request,
                                 offers=offers)
    reason = (f"no resources after {waited:.0f}s: asked for "
              f"{request['executor']['container_mb']} MB executors")
    try:
        kill(runner=runner, facts=facts, job_id=job_id, reason=reason)
        done = "it was killed"
    except errors.SparkOpenstackError as exc:
        done = (f"killing it failed ({exc.message}): `spark-openstack kill -c "
                f"{facts.cluster_name} {job_id}`")
    raise NoResourcesError(
        f"{message}\n  {done}.",
        hint="ask for less (--conf spark.executor.memory=..., spark.executor.cores=...), "
             "wait for the other applications, or give more time (submit "
             "--resource-timeout SECONDS; 0 waits forever)")


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


# ----------------------------------------------------------------------------- per command
# What submit/jobs/logs/kill do, from the cluster's name: its inputs checked first, then
# the cluster read back (``inventory.open_cluster``) and one SSH connection to the
# master, closed however the command ends.

@dataclass
class SubmitOutcome:
    """How an attached or detached submit ended."""

    job: Job                        # as started (detached, left running) or as killed
    final: Job | None = None        # the ended job, when followed to its end
    interrupted: bool = False       # Ctrl-C while attached
    killed_now: bool | None = None  # after Ctrl-C: killed (True), had ended (False)


def _on_master(*, provider, cluster: str, identity_file: str | None, work: Callable,
               active_for: str = ""):
    from .inventory import open_cluster
    access = open_cluster(provider=provider, cluster=cluster, identity_file=identity_file)
    if active_for:
        access.require_active(what=active_for)
    return access.with_runner(lambda runner: work(access, runner))


def submit_job(*, provider, cluster: str, identity_file: str | None = None,
               sub: Submission, detach: bool = False, resource_timeout: float | None = None,
               on_output: Callable[[bytes], None], on_started=None,
               ask_kill=None) -> SubmitOutcome:
    """Submit ``sub`` and, unless ``detach``, follow its driver output to the end.

    ``on_started(job, facts)`` is called before the output follows; on Ctrl-C
    ``ask_kill(job)`` decides whether the job is killed (no ``ask_kill``: it runs on).
    """
    from .inventory import deployed_facts

    def work(access, runner) -> SubmitOutcome:
        facts = deployed_facts(runner=runner, facts=access.facts)
        job = submit(runner=runner, facts=facts, sub=sub)
        if detach:
            return SubmitOutcome(job=job)
        if on_started is not None:
            on_started(job, facts)
        try:
            final = follow(runner=runner, facts=facts, job_id=job.id, on_output=on_output,
                           resource_timeout=resource_timeout or None)
        except (KeyboardInterrupt, errors.Interrupted):
            if ask_kill is None or not ask_kill(job):
                return SubmitOutcome(job=job, interrupted=True)
            with polling.shielded_cleanup():
                killer = access.runner()      # the interrupted call may hold the old one
                try:
                    ended, now = kill(runner=killer, facts=facts, job_id=job.id)
                finally:
                    killer.close()
            return SubmitOutcome(job=ended, interrupted=True, killed_now=now)
        return SubmitOutcome(job=job, final=final)
    return _on_master(provider=provider, cluster=cluster, identity_file=identity_file,
                      work=work, active_for="submit to")


def cluster_jobs(*, provider, cluster: str, identity_file: str | None = None) -> list[Job]:
    """Every job the master keeps."""
    return _on_master(provider=provider, cluster=cluster, identity_file=identity_file,
                      work=lambda access, runner: list_jobs(runner=runner,
                                                            facts=access.facts))


def job_log(*, provider, cluster: str, identity_file: str | None = None, job_id: str,
            on_output: Callable[[bytes], None], until_end: bool = False) -> Job:
    """A job's driver log to ``on_output`` (to its end with ``until_end``)."""
    check_job_id(job_id)
    return _on_master(provider=provider, cluster=cluster, identity_file=identity_file,
                      work=lambda access, runner: follow(
                          runner=runner, facts=access.facts, job_id=job_id,
                          on_output=on_output, until_end=until_end))


def kill_job(*, provider, cluster: str, identity_file: str | None = None,
             job_id: str) -> tuple[Job, bool]:
    """Stop a job (``kill``) given the cluster's name."""
    check_job_id(job_id)
    return _on_master(provider=provider, cluster=cluster, identity_file=identity_file,
                      work=lambda access, runner: kill(runner=runner, facts=access.facts,
                                                       job_id=job_id))
