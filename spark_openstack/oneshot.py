"""``run``: a cluster for one job (Choreographer's "easy button").

Launch, submit attached, bring the job's output folder and driver log home, destroy. The
destroy is the point: a one-shot cluster must not outlive its job, whether the job
succeeds, fails, the client is interrupted (Ctrl-C, SIGTERM) or something breaks in
between; only ``keep`` leaves it up. A launch that fails cleans up after itself
(``cluster.launch``), so the destroy here covers everything after a successful launch.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import launch as launch_mod, ledger
from . import errors, jobs
from .inventory import deployed_facts, open_cluster
from .config import LaunchSpec
from .polling import shielded_cleanup
from .progress import Progress, ensure

#: How long bringing the output home may take after the job ended (after an interrupt:
#: ``INTERRUPTED_FETCH_TIMEOUT``, the user asked to stop).
FETCH_TIMEOUT = 1800
INTERRUPTED_FETCH_TIMEOUT = 60


@dataclass
class RunResult:
    """What a one-shot run did: the job, where its output landed, what was destroyed."""

    cluster: str
    job: jobs.Job | None = None
    output_dir: str = ""
    fetched: list[str] = field(default_factory=list)
    destroyed: dict | None = None
    kept: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The app's exit code (143 when killed, 1 when it never reported one)."""
        if self.job is None:
            return 1
        if self.job.exit_code is not None:
            return self.job.exit_code
        return 143 if self.job.state == jobs.KILLED else 1

    def to_dict(self) -> dict:
        return {"cluster": self.cluster, "job": self.job.to_dict() if self.job else None,
                "exit_code": self.exit_code, "output_dir": self.output_dir,
                "fetched": self.fetched, "destroyed": self.destroyed, "kept": self.kept,
                "notes": self.notes}


def check_output_dir(path: Path | str) -> Path:
    """Refuse, before anything is launched, an output folder that already has files: a
    run must not mix its results into an older run's."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise errors.UsageError(f"--output {path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        raise errors.UsageError(f"--output {path}: already holds files",
                                hint="give a new or empty folder")
    return path


def run_job(*, provider, spec: LaunchSpec, sub: jobs.Submission, output_dir: Path | str,
            keep: bool = False, progress: Progress | None = None,
            on_output: Callable[[bytes], None] = lambda data: None,
            on_event: Callable[[str], None] = lambda text: None,
            on_launched: Callable[[object], None] = lambda result: None,
            resource_timeout: float | None = jobs.RESOURCE_TIMEOUT) -> RunResult:
    """Launch ``spec``, run ``sub`` on it attached (its driver output to ``on_output``),
    fetch its output into ``output_dir``, destroy the cluster unless ``keep``.

    Returns a ``RunResult`` whose ``exit_code`` is the app's. Ctrl-C/SIGTERM during the
    job: the output so far is fetched (briefly), the cluster destroyed, then
    ``Interrupted`` is raised. The cleanup is shielded from a second Ctrl-C. A job that
    gets no resources for ``resource_timeout`` seconds is killed with the numbers
    (``NoResourcesError``), and the cluster destroyed all the same.
    """
    progress = ensure(progress)
    if not spec.deploy:
        raise errors.UsageError("run needs a deployed cluster: --no-deploy does not fit",
                                hint="leave out --no-deploy")
    output = check_output_dir(output_dir)
    name = spec.cluster_name
    result = RunResult(cluster=name, output_dir=str(output), kept=keep)
    launched = launch_mod.launch(provider=provider, spec=spec, progress=progress)
    runner = None
    facts = None
    interrupted = False
    failed = True
    try:
        try:
            on_launched(launched)
            access = open_cluster(provider=provider, cluster=name,
                                  identity_file=launched.identity_file)
            runner = access.runner()
            facts = deployed_facts(runner=runner, facts=access.facts)
            job = jobs.submit(runner=runner, facts=facts, sub=sub)
            result.job = job
            on_event(f"job {job.id} started on {facts.master.name}; its driver output "
                     "follows")
            result.job = jobs.follow(runner=runner, facts=facts, job_id=job.id,
                                     on_output=on_output, resource_timeout=resource_timeout)
            failed = False
        except (KeyboardInterrupt, errors.Interrupted):
            interrupted = True
    finally:
        # the output first: a Ctrl-C during a long download skips it (not the destroy)
        try:
            _fetch(result=result, runner=runner, facts=facts, output=output,
                   interrupted=interrupted, on_event=on_event)
        except (KeyboardInterrupt, errors.Interrupted):
            interrupted = True
        with shielded_cleanup():
            if runner is not None:
                runner.close()
            _destroy(provider=provider, result=result, keep=keep,
                     raise_on_failure=not (interrupted or failed), progress=progress,
                     on_event=on_event)
    if interrupted:
        raise errors.Interrupted(
            f"run interrupted; {_fate(result)}"
            + (f"; what the job wrote so far is in {output}" if result.fetched else ""))
    return result


def _fate(result: RunResult) -> str:
    if result.kept:
        return f"cluster {result.cluster!r} kept (--keep)"
    if result.destroyed is not None:
        return f"cluster {result.cluster!r} destroyed"
    return f"cluster {result.cluster!r} may be left: `spark-openstack destroy -c " \
           f"{result.cluster}` removes it"


def _fetch(*, result: RunResult, runner, facts, output: Path, interrupted: bool,
           on_event) -> None:
    """Bring home what the job left, if it started; a failure here is a note."""
    if result.job is None or runner is None or facts is None:
        return
    try:
        if interrupted:     # the refreshed state says whether it still ran
            with contextlib.suppress(errors.SparkOpenstackError):
                result.job = jobs.get_job(runner=runner, facts=facts, job_id=result.job.id)
        fetched = jobs.fetch_output(
            runner=runner, facts=facts, job_id=result.job.id, dest=output,
            timeout=INTERRUPTED_FETCH_TIMEOUT if interrupted else FETCH_TIMEOUT)
        result.fetched = [str(p) for p in fetched]
        on_event(f"output of job {result.job.id}: {len(fetched)} file(s) in {output}")
    except errors.SparkOpenstackError as exc:
        result.notes.append(f"the job's output could not be fetched: {exc.message}")
        on_event(result.notes[-1])


def _destroy(*, provider, result: RunResult, keep: bool, raise_on_failure: bool,
             progress: Progress, on_event) -> None:
    """Destroy the run's cluster unless ``keep``. A destroy that fails after a good run
    is the run's error; after a failed or interrupted one it is a note."""
    if keep:
        on_event(f"cluster {result.cluster!r} kept (--keep): `spark-openstack destroy -c "
                 f"{result.cluster}` removes it")
        return
    on_event(f"destroying cluster {result.cluster!r} ...")
    try:
        result.destroyed = ledger.destroy(provider=provider, cluster=result.cluster,
                                               progress=progress)
    except errors.SparkOpenstackError as exc:
        note = (f"destroying cluster {result.cluster!r} failed: {exc.message}; run "
                f"`spark-openstack destroy -c {result.cluster}`")
        result.notes.append(note)
        on_event(note)
        if raise_on_failure:
            raise errors.CloudError(note, hint="deleting twice is harmless") from exc
        return
    on_event(f"cluster {result.cluster!r} destroyed")
