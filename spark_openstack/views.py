"""What a command's result says to a person, in one place.

Every command's library function returns a result; its view here is the table and the
lines a person reads, and ``data`` is what ``--json`` prints instead. The CLI only prints
views (``terminal.emit``), so the words and the exit code of a result are written once,
where a test (or the fabfile) can reach them too. No printing and no rich here: a cell
is text, or ``(text, style)`` for the terminal to colour.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .services import Jupyter

#: The style of a warning cell ("NO", an expired deadline).
ALERT = "bold red"

#: What launch/deploy say when the cluster runs Jupyter.
NOTEBOOK_NEXT = ("Jupyter: `spark-openstack notebook -c {name}` opens a tunnel and prints "
                 f"the URL with its token (port {Jupyter.port('jupyter')} is not open to "
                 "the network)")


@dataclass
class View:
    """One result as a person reads it: a table (optional), stdout lines, stderr notes."""

    data: object = None                  # what --json prints
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    title: str = ""
    columns: tuple[str, ...] = ()
    rows: list[tuple] = field(default_factory=list)
    header: bool = True
    wrap_column: str = ""                # a listing: only this column wraps, light frame
    exit_code: int = 0

    def to_dict(self):
        return self.data


def _ui_lines(urls: dict, cluster: str) -> list[str]:
    return [f"{label}: {url}  (reach it with `spark-openstack login -c {cluster} -L`)"
            for label, url in (urls or {}).items()]


def deployed_lines(deployed: dict, *, cluster: str) -> list[str]:
    """A deploy summary's health lines, UI URLs, messages and the notebook hint."""
    lines = [*deployed.get("health", []), *_ui_lines(deployed.get("urls"), cluster),
             *deployed.get("messages", [])]
    if "jupyter" in (deployed.get("services") or ()):
        lines.append(NOTEBOOK_NEXT.format(name=cluster))
    return lines


def launch_view(result) -> View:
    facts = result.facts
    name = facts.cluster_name
    master = f"{facts.master.name}  {facts.master.address}" + (
        f"  (private {facts.master.private_ip})" if facts.master.public_ip else "")
    timings = ("  ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
               + f"  (total {sum(result.timings.values()):.1f}s)")
    data = result.to_dict()
    return View(
        data=data, title=f"cluster {name} is up", columns=("", ""), header=False,
        rows=[("master", master),
              ("workers", ", ".join(f"{w.name} {w.private_ip}" for w in facts.workers)),
              ("timings", timings), ("api requests", str(result.requests)),
              ("next", f"spark-openstack login -c {name}\n"
                       f"spark-openstack login -c {name} -L   # web UIs on localhost\n"
                       f"spark-openstack describe -c {name}\n"
                       f"spark-openstack destroy -c {name}")],
        lines=deployed_lines(data.get("deploy") or {}, cluster=name))


def deploy_view(summary: dict, *, cluster: str) -> View:
    return View(data=summary, lines=deployed_lines(summary, cluster=cluster))


def settings_view(settings: dict, *, cluster: str) -> View:
    lines = [f"{k} = {v}" for k, v in settings["spark"].items()]
    lines += [f"{f}: {k} = {v}" for f, kv in settings["hadoop"].items()
              for k, v in kv.items()]
    return View(data=settings, lines=["\n".join(lines)] if lines else
                [f"cluster {cluster!r} has no settings of its own"])


def configure_cluster_view(result: dict, *, cluster: str) -> View:
    code = 0 if result.get("healthy", True) else 1
    if not result["changed"]:
        return View(data=result, exit_code=code,
                    lines=[f"cluster {cluster!r} already has these settings; nothing to do"])
    restarted = ", ".join(result["restarted"]) or "nothing (no service reads them)"
    return View(data=result, exit_code=code, lines=[
        *result["health"],
        f"settings of {cluster!r} changed on every node; restarted: {restarted}"])


def command_run_view(run) -> View:
    """run-command: the rows for --json; the nodes it never reached, on stderr."""
    return View(data=run.to_rows(),
                notes=[f"[{name}] not run: {msg}" for name, msg in run.unreachable.items()])


def copy_view(report) -> View:
    return View(
        data={"local": report.local, "remote": report.remote, "directory": report.is_dir,
              "archive_bytes": report.archive_bytes, "seconds": round(report.seconds, 2),
              "nodes": [{"node": n, "path": p} for n, p in report.landed.items()]},
        notes=[f"copied {'directory' if report.is_dir else 'file'} {report.local} to "
               f"{len(report.landed)} node(s) in {report.seconds:.1f}s "
               f"({report.archive_bytes} bytes sent once, to the master)"])


def job_hints(cluster: str, job_id: str) -> str:
    return (f"job {job_id} runs on. Later:\n"
            f"  spark-openstack jobs -c {cluster}\n"
            f"  spark-openstack logs -c {cluster} {job_id} --follow\n"
            f"  spark-openstack kill -c {cluster} {job_id}")


def job_end(job) -> tuple[str, int]:
    """How the job ended (a line for stderr), and its exit code for ours."""
    took = f" after {job.duration_s:.0f}s" if job.duration_s is not None else ""
    if job.state == "killed":
        return f"job {job.id} was killed{took}", 143
    if job.exit_code is None:
        return f"job {job.id} failed{took}: {job.note or 'no exit code'}", 1
    return f"job {job.id} {job.state} (exit {job.exit_code}){took}", job.exit_code


def submit_view(outcome, *, cluster: str) -> View:
    """submit: a detached job's id (stdout) and how to reach it later; else how it
    ended, with its exit code (130 after Ctrl-C)."""
    job = outcome.job
    if outcome.final is not None:
        line, code = job_end(outcome.final)
        return View(data=outcome.final.to_dict(), notes=[line], exit_code=code)
    if not outcome.interrupted:
        return View(data=job.to_dict(), lines=[job.id], notes=[job_hints(cluster, job.id)])
    if outcome.killed_now is None:
        note = job_hints(cluster, job.id)
    elif outcome.killed_now:
        note = f"job {job.id} killed"
    else:
        note = f"job {job.id} had already ended ({job.state})"
    return View(data=job.to_dict(), notes=[note], exit_code=130)


def notebook_view(nb, *, master: str = "") -> View:
    """The notebook's URL; with ``master``, the tunnel that now serves it."""
    notes = [f"tunnel open: localhost:{nb.local_port} -> {nb.master_private_ip}:"
             f"{nb.remote_port} on {master}; Ctrl-C closes it"] if master else []
    return View(data=nb.to_dict(), lines=[nb.url], notes=notes)


_JOB_COLORS = {"running": "cyan", "finished": "green", "failed": "red", "killed": "yellow"}


def jobs_view(found: list, *, cluster: str) -> View:
    data = [j.to_dict() for j in found]
    if not found:
        return View(data=data, lines=[f"no jobs on cluster {cluster!r} yet"])
    return View(data=data, title=f"jobs on {cluster}", wrap_column="app",
                columns=("id", "app", "state", "exit", "started", "duration"),
                rows=[(job.id, Path(job.app).name or job.app,
                       (job.state + (f" ({job.note})" if job.note else ""),
                        _JOB_COLORS.get(job.state, "")),
                       "" if job.exit_code is None else str(job.exit_code),
                       job.started.replace("T", " ")[:16],
                       "" if job.duration_s is None else f"{job.duration_s:.0f}s")
                      for job in found])


def kill_view(job, *, killed_now: bool) -> View:
    if killed_now:
        return View(data=job.to_dict(), lines=[f"killed job {job.id}"])
    exit_text = f", exit {job.exit_code}" if job.exit_code is not None else ""
    return View(data=job.to_dict(), lines=[
        f"job {job.id} had already ended ({job.state}{exit_text}); nothing to do"])


def run_view(result) -> View:
    """The one-shot run: its output folder; the job's exit code is ours."""
    notes, code = [], result.exit_code
    if result.job is not None:
        line, code = job_end(result.job)
        notes.append(line)
    if result.fetched:
        notes.append(f"output in {result.output_dir}: " + ", ".join(result.fetched))
    return View(data=result.to_dict(), notes=notes, exit_code=code)


def destroy_view(result: dict, *, cluster: str) -> View:
    if not any(result.values()):
        return View(data=result, lines=[f"nothing left of cluster {cluster!r}; nothing to do"])
    return View(data=result, lines=[f"destroyed cluster {cluster!r}: " + ", ".join(
        f"{v} {k.replace('_', ' ')}" for k, v in result.items() if v)])


def add_workers_view(result: dict, *, cluster: str) -> View:
    return View(data=result, lines=[
        f"added {', '.join(result['added'])} to {cluster}: "
        f"{len(result['workers'])} worker(s) now", *result["health"]])


def remove_workers_view(result: dict, *, cluster: str) -> View:
    return View(data=result, lines=[
        f"removed {', '.join(result['removed'])} from {cluster}: "
        f"{len(result['workers'])} worker(s) left", *result["notes"]])


def describe_view(info: dict, *, cluster: str) -> View:
    return View(
        data=info, title=f"cluster {cluster}: {info['state']}",
        columns=("node", "role", "status", "private ip", "public ip", "vCPU", "RAM MB"),
        rows=[(n["name"], n["role"], n["status"], n["private_ip"], n["public_ip"] or "",
               str(n["vcpus"]), str(n["ram_mb"])) for n in [info["master"], *info["workers"]]],
        lines=[f"ssh user {info['ssh_user']}; services {','.join(info['services'])}; "
               f"security group {info['security_group']}; expires "
               f"{info['expires']['text']}"])


def list_view(clusters: list) -> View:
    if not clusters:
        return View(data=clusters, lines=["no clusters in this project"])
    return View(data=clusters, columns=("cluster", "workers", "state", "master", "expires"),
                rows=[(c["cluster"], str(c["workers"]), c["state"], c["master"] or "",
                       (c["expires"]["text"], ALERT if c["expires"]["expired"] else ""))
                      for c in clusters])


def reap_view(result: dict, *, dry_run: bool) -> View:
    code = 1 if result["failed"] else 0
    if not result["expired"]:
        return View(data=result, exit_code=code, lines=[
            f"no expired cluster ({result['kept']} other cluster(s) left alone)"])
    lines = []
    for item in result["expired"]:
        if dry_run:
            verdict = "would be destroyed"
        elif item["cluster"] in result["failed"]:
            verdict = f"NOT destroyed: {result['failed'][item['cluster']]}"
        else:
            verdict = "destroyed"
        lines.append(f"{item['cluster']}: {item['text']}: {verdict}")
    return View(data=result, exit_code=code, lines=lines)


def status_view(report: dict, *, cluster: str) -> View:
    verdict = "healthy" if report["healthy"] else "NOT healthy"
    return View(
        data=report, exit_code=0 if report["healthy"] else 1,
        title=f"cluster {cluster}: {report['state']}, {verdict}",
        columns=("node", "role", "status", "private ip", "public ip"),
        rows=[(n["name"], n["role"], n["status"], n["private_ip"], n["public_ip"] or "")
              for n in report["nodes"]],
        lines=[*(s["line"] for s in report["services"].values()),
               *([f"note: {report['note']}"] if report.get("note") else [])])


def stop_view(result: dict, *, cluster: str) -> View:
    lines = list(result["messages"])
    if result["already_stopped"]:
        lines.append(f"cluster {cluster!r} is already stopped; nothing to do")
    else:
        lines.append(f"stopped cluster {cluster!r} in {result['timings']['total']:.1f}s: "
                     f"services {', '.join(result['services_stopped']) or 'none'}; servers "
                     f"{', '.join(result['servers_stopped'])}. "
                     f"`spark-openstack start -c {cluster}` brings it back.")
    return View(data=result, lines=lines)


def start_view(result: dict, *, cluster: str) -> View:
    deployed = result.get("deploy") or {}
    lines = [f"cluster {cluster!r} is already running and healthy; nothing to do"] \
        if result["already_running"] else []
    lines += deployed_lines({**deployed, "health": result.get("health", []),
                             "messages": [*result["messages"],
                                          *(deployed.get("messages") or [])]},
                            cluster=cluster)
    if "total" in result["timings"]:
        lines.append(f"started cluster {cluster!r} in {result['timings']['total']:.1f}s")
    return View(data=result, lines=lines)


def image_view(image_id: str, *, name: str) -> View:
    return View(data={"name": name, "id": image_id}, lines=[f"image {name} ready: {image_id}"])


def batch_launch_view(result: dict) -> View:
    return View(data=result, exit_code=0 if result["ok"] else 1, lines=[
        f"{result['healthy']}/{result['clusters']} clusters healthy in "
        f"{result['seconds']:.0f}s ({result['api_requests']} API requests); roster: "
        f"{result['roster']['roster.html']}",
        *(f"NO CLUSTER for {item['student']} ({item['cluster']}): {item['reason']}"
          for item in result["without_cluster"])])


def batch_status_view(report: dict, *, prefix: str) -> View:
    rows = []
    for name, item in report["clusters"].items():
        if "error" in item:
            rows.append((name, "?", ("NO", ALERT), item["error"], ""))
            continue
        services = "; ".join(s["line"] for s in item["services"].values()) or \
            item.get("note", "")
        rows.append((name, item["state"], "yes" if item["healthy"] else ("NO", ALERT),
                     services, item["expires"]["text"]))
    return View(data=report, exit_code=0 if report["all_healthy"] else 1,
                title=f"batch {prefix}: {report['healthy']}/{report['total']} healthy",
                columns=("cluster", "state", "healthy", "services", "expires"), rows=rows)


def batch_destroy_view(result: dict) -> View:
    destroyed = result["destroyed"]
    return View(data=result, exit_code=1 if result["failed"] else 0, lines=[
        f"destroyed {len(destroyed)} cluster(s)" + (f": {', '.join(destroyed)}"
                                                   if destroyed else ""),
        *(f"[{name}] NOT destroyed: {why}" for name, why in result["failed"].items())])


def batch_run_view(results: dict) -> View:
    failed = {n: r for n, r in results.items() if r.get("error") or r.get("exit_code")}
    return View(data=results, exit_code=1 if failed else 0, notes=[
        f"[{name}] " + (item["error"] if item.get("error") else f"exited {item['exit_code']}")
        for name, item in failed.items()])


def login_view(plan, *, print_only: bool) -> View:
    """login: the ssh command itself with ``--print``; else what the session forwards."""
    import shlex
    notes = [f"note: {plan.note}"] if plan.note else []
    if print_only:
        return View(data={"argv": plan.argv}, lines=[shlex.join(plan.argv)], notes=notes)
    if plan.ui_urls:
        notes.append("web UIs: " + "  ".join(f"{n} {u}" for n, u in plan.ui_urls.items()))
    return View(data={"argv": plan.argv}, notes=notes)
