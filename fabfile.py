"""The cluster's tasks, run on the master as ``fab TASK`` (``fab -l`` lists them).

Installed by ``spark-openstack launch`` under /opt/spark-openstack/lib; the ``fab`` wrapper
runs as hduser. Every task is a thin wrapper over ``spark_openstack.deploy`` — the same
functions ``launch`` uses — with a ``MasterRunner``: this machine's shell for the master,
``ssh`` with the cluster's hduser key for the workers. The cluster's facts come from the
file ``launch`` wrote (``/etc/spark-openstack/cluster.json``).
"""
from __future__ import annotations

import os
import sys

from fabric import task

from spark_openstack import deploy
from spark_openstack.errors import SparkOpenstackError
from spark_openstack.model import FACTS_PATH_ON_MASTER, ClusterFacts, parse_facts
from spark_openstack.services import HDFS
from spark_openstack.transport import MasterRunner


def _facts() -> ClusterFacts:
    path = os.environ.get("SPARK_OPENSTACK_FACTS", FACTS_PATH_ON_MASTER)
    try:
        with open(path) as fh:
            facts = parse_facts(fh.read(), where=path)
    except OSError as exc:
        sys.exit(f"cannot read the cluster facts {path}: {exc.strerror} "
                 "(run fab on the master as hduser; `fab` does that for you)")
    except SparkOpenstackError as exc:
        sys.exit(f"error: {exc}")
    if facts is None:
        sys.exit(f"the cluster facts {path} are empty (re-deploy the cluster)")
    return facts


def _run(step):
    """Run one library step; a tool error ends the task with its message, exit 1."""
    facts = _facts()
    runner = MasterRunner(facts=facts)
    try:
        return step(facts, runner)
    except SparkOpenstackError as exc:
        sys.exit(f"error: {exc}")


def _print_health(health) -> bool:
    for item in health.values():
        print(item.line())
        for label, url in item.urls.items():
            print(f"  {label}: {url}")
    return all(item.ok for item in health.values())


def _absent(names) -> bool:
    """Say so plainly (and succeed) when the cluster does not run these services."""
    note = deploy.not_deployed_note(facts=_facts(), names=names) if names else ""
    if note:
        print(note)
    return bool(note)


def _start(names):
    """Start the named services (all deployed ones when None) and print their health."""
    if _absent(names):
        return
    if not _run(lambda facts, runner: _print_health(
            deploy.start_services(facts=facts, runner=runner, names=names))):
        sys.exit(1)


def _stop(names):
    """Stop the named services (all deployed ones when None)."""
    if _absent(names):
        return
    _run(lambda facts, runner: deploy.stop_services(facts=facts, runner=runner, names=names))
    print(f"stopped: {', '.join(names) if names else 'all services'}")


@task
def test_conn(c):
    """Check the master reaches every node over SSH as hduser."""
    def step(facts, runner):
        for node in facts.nodes:
            out = runner.run(node, "hostname", timeout=30).stdout.strip()
            print(f"{node.name} ({node.private_ip}): ok, hostname {out}")
    _run(step)


@task
def init_cluster(c):
    """Write every node's Hadoop/Spark config files from the cluster facts."""
    _run(lambda facts, runner: deploy.push_configs(facts=facts, runner=runner))
    print("configs written on all nodes")


@task(help={"force": "reformat an already formatted NameNode (ERASES all HDFS data)"})
def format_hdfs(c, force=False):
    """Format the HDFS NameNode; refuses to reformat unless --force."""
    _run(lambda facts, runner: deploy.format_hdfs(facts=facts, runner=runner, force=force))
    print("HDFS formatted")


@task
def start_hadoop(c):
    """Start HDFS (NameNode, then DataNodes) and wait for every DataNode."""
    _start(["hdfs"])


@task
def stop_hadoop(c):
    """Stop HDFS (DataNodes, then the NameNode)."""
    _stop(["hdfs"])


@task
def create_hdfs_user(c):
    """Create /user/hduser in HDFS, owned by hduser."""
    _run(lambda facts, runner: HDFS(facts=facts, runner=runner).create_user_dir())


@task
def start_yarn(c):
    """Start YARN (ResourceManager, then NodeManagers) and wait for every NodeManager."""
    _start(["yarn"])


@task
def stop_yarn(c):
    """Stop YARN (NodeManagers, then the ResourceManager)."""
    _stop(["yarn"])


@task
def start_spark(c):
    """Start the Spark standalone master, then the workers; wait until all are ALIVE."""
    _start(["spark"])


@task
def stop_spark(c):
    """Stop the Spark workers, then the master."""
    _stop(["spark"])


@task
def start_all(c):
    """Start every deployed service in order (HDFS, YARN, Spark) and check health."""
    _start(None)


@task
def stop_all(c):
    """Stop every deployed service (Spark, YARN, then HDFS)."""
    _stop(None)


@task
def status(c):
    """Show each service's health: Spark workers ALIVE, DataNodes, NodeManagers."""
    def step(facts, runner):
        print(f"cluster {facts.cluster_name}: master {facts.master.name} "
              f"({facts.master.private_ip}), {len(facts.workers)} worker(s), "
              f"services {', '.join(facts.services)}")
        if not _print_health(deploy.cluster_health(facts=facts, runner=runner)):
            sys.exit(1)
    _run(step)



def _workers_named(facts, nodes: str):
    """The workers named in ``--nodes a,b`` (names or numbers); exits naming a wrong one."""
    wanted = [n.strip() for n in (nodes or "").split(",") if n.strip()]
    if not wanted:
        sys.exit("error: say which workers: --nodes NAME[,NAME...]")
    by_name = {w.name: w for w in facts.workers}
    picked = []
    for name in wanted:
        full = f"{facts.cluster_name}-worker-{name}" if name.isdigit() else name
        if full not in by_name:
            sys.exit(f"error: {full} is not a worker of {facts.cluster_name} (workers: "
                     f"{', '.join(by_name) or 'none'})")
        picked.append(by_name[full])
    if len(set(w.name for w in picked)) >= len(facts.workers):
        sys.exit("error: that would decommission every worker")
    return picked


@task(help={"nodes": "comma-separated workers to drain (names or numbers)",
            "timeout": "seconds to wait for HDFS to copy their blocks (default 3600)"})
def decommission(c, nodes="", timeout=3600):
    """Drain workers out of HDFS/YARN (dfs.hosts.exclude), then stop their daemons.

    The servers stay: delete them with `spark-openstack remove-workers`, which does all
    of this and updates every node's files. Ctrl-C or a failure reverts the decommission.
    """
    from spark_openstack import scale

    def step(facts, runner):
        victims = _workers_named(facts, nodes)
        remaining = len(facts.workers) - len(victims)
        scale.check_replication(facts=facts, runner=runner, remaining=remaining)
        result = scale.decommission(facts=facts, runner=runner, victims=victims,
                                    timeout=float(timeout))
        print(f"decommissioned {', '.join(v.name for v in victims)} in "
              f"{result['seconds']:.0f}s; their daemons are stopped")
    _run(step)


@task(help={"nodes": "unused: every worker being decommissioned is put back in service"})
def recommission(c, nodes=""):
    """Take decommissioned workers out of the exclude lists and refresh: they serve
    again (their daemons are started by `fab start_all`)."""
    from spark_openstack import scale
    _run(lambda facts, runner: scale.revert_decommission(facts=facts, runner=runner))
    print("decommissioned workers are back in service; start their daemons with "
          "`fab start_all`")


@task
def jobs(c):
    """List the jobs `spark-openstack submit` started on this cluster (newest last)."""
    from spark_openstack import jobs as jobs_mod

    def step(facts, runner):
        found = jobs_mod.list_jobs(runner=runner, facts=facts)
        if not found:
            print("no jobs yet")
        for job in found:
            code = "" if job.exit_code is None else f" exit {job.exit_code}"
            took = "" if job.duration_s is None else f" {job.duration_s:.0f}s"
            print(f"{job.id}  {job.state}{code}{took}  {os.path.basename(job.app)}"
                  + (f"  ({job.note})" if job.note else ""))
    _run(step)


@task(help={"job": "the job's id (see `fab jobs`)",
            "follow": "keep printing until the job ends"})
def job_log(c, job="", follow=False):
    """Print a job's driver log (spark-submit's stdout and stderr)."""
    from spark_openstack import jobs as jobs_mod

    def out(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    _run(lambda facts, runner: jobs_mod.follow(runner=runner, facts=facts, job_id=job,
                                               on_output=out, until_end=bool(follow)))


@task(help={"job": "the job's id (see `fab jobs`)"})
def kill_job(c, job=""):
    """Stop a running job (SIGTERM to its driver, SIGKILL after a grace period)."""
    from spark_openstack import jobs as jobs_mod
    ended, now = _run(lambda facts, runner: jobs_mod.kill(runner=runner, facts=facts,
                                                          job_id=job))
    print(f"killed job {job}" if now else f"job {job} had already ended ({ended.state})")
