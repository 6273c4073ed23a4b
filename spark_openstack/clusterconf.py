"""A cluster's own Spark and Hadoop settings after launch: ``configure-cluster``.

Why settings live in the facts: every deploy re-renders every config file from the
facts (``deploy``, ``add-workers``, ``start`` after a stop that changed addresses), so a
setting written into a file by hand would be lost at the next re-render. Kept in the
master's facts file, it is re-applied every time, and the daemons that read the changed
file are restarted here so the change takes effect now (each service class says which
files restart it: ``Service.restart_on``):

- ``spark-defaults.conf``: read by every spark-submit; the Spark daemons read it at start.
- ``core-site.xml``: HDFS and YARN; ``hdfs-site.xml``: HDFS; ``yarn-site.xml``,
  ``mapred-site.xml`` and ``capacity-scheduler.xml`` (the scheduler's queues): YARN.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from . import errors
from .inventory import deployed_facts, open_cluster
from .deploy import reconfigure_nodes, start_services, stop_services
from .model import ClusterFacts
from .progress import PhaseTimer, Progress, ensure
from .services import HADOOP_SITE_FILES, restarted_by
from .services.spark import SETTINGS_FILE, Spark

# Which services restart when a file changes is each service's own ``restart_on``.


@dataclasses.dataclass(frozen=True)
class ConfChange:
    """Old and new settings, and which of the cluster's services read what changed."""

    old_spark: tuple[tuple[str, str], ...]
    new_spark: tuple[tuple[str, str], ...]
    old_hadoop: tuple[tuple[str, str, str], ...]
    new_hadoop: tuple[tuple[str, str, str], ...]
    affected: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.old_spark != self.new_spark or self.old_hadoop != self.new_hadoop


def plan_change(*, facts: ClusterFacts, spark_conf: Iterable[tuple[str, str]] = (),
                hadoop_conf: Iterable[tuple[str, str, str]] = (),
                unset: Iterable[str] = ()) -> ConfChange:
    """The settings after setting ``spark_conf``/``hadoop_conf`` and removing ``unset``
    (a Spark key, or ``FILE:KEY`` for Hadoop); a key to unset that is not set is an error
    (a typo must not pass silently)."""
    spark = dict(facts.spark_conf)
    hadoop = {(f, k): v for f, k, v in facts.hadoop_conf}
    for item in unset:
        item = item.strip()
        file, sep, key = item.partition(":")
        if sep:
            file = file if file.endswith(".xml") else file + ".xml"
            if (file, key) not in hadoop:
                raise errors.UsageError(
                    f"--unset {item}: cluster {facts.cluster_name!r} has no such Hadoop "
                    "setting", hint=_show_hint(facts))
            del hadoop[(file, key)]
        else:
            if item not in spark:
                raise errors.UsageError(
                    f"--unset {item}: cluster {facts.cluster_name!r} has no such Spark "
                    "setting", hint=_show_hint(facts))
            del spark[item]
    spark.update(dict(spark_conf))
    for file, key, value in hadoop_conf:
        hadoop[(file, key)] = value
    new_spark = tuple(spark.items())
    new_hadoop = tuple((f, k, v) for (f, k), v in hadoop.items())
    changed: set[str] = set()
    if dict(new_spark) != dict(facts.spark_conf):
        changed.add(SETTINGS_FILE)
    old_h = {(f, k): v for f, k, v in facts.hadoop_conf}
    for file in HADOOP_SITE_FILES:
        before = {k: v for (f, k), v in old_h.items() if f == file}
        after = {k: v for (f, k), v in hadoop.items() if f == file}
        if before != after:
            changed.add(file)
    affected = restarted_by(changed, facts.services)
    return ConfChange(old_spark=facts.spark_conf, new_spark=new_spark,
                      old_hadoop=facts.hadoop_conf, new_hadoop=new_hadoop, affected=affected)


def _show_hint(facts: ClusterFacts) -> str:
    return f"`spark-openstack configure-cluster -c {facts.cluster_name} --show` lists them"


def settings_dict(facts: ClusterFacts) -> dict:
    """The cluster's own settings as JSON: ``{"spark": {k: v}, "hadoop": {file: {k: v}}}``."""
    hadoop: dict[str, dict[str, str]] = {}
    for file, key, value in facts.hadoop_conf:
        hadoop.setdefault(file, {})[key] = value
    return {"spark": dict(facts.spark_conf), "hadoop": hadoop}


def show_settings(*, provider, cluster: str, identity_file: str | None = None) -> dict:
    """What ``configure-cluster --show`` prints: the settings in the master's facts file."""
    access = open_cluster(provider=provider, cluster=cluster, identity_file=identity_file)
    facts = access.read_deployed(what="read the settings of")
    return {"cluster": cluster, **settings_dict(facts)}


def _running_apps(*, facts: ClusterFacts, runner) -> list[str]:
    """Names of the applications the Spark master runs (a restart would end them)."""
    try:
        state = Spark(facts=facts, runner=runner).master_state()
    except errors.SparkOpenstackError:
        return []          # the master is down: nothing of it runs
    return [f"{app.get('name', '?')} ({app.get('id', '?')})"
            for app in state.get("activeapps", [])]


def configure_cluster(*, provider, cluster: str, identity_file: str | None = None,
                      spark_conf: Iterable[tuple[str, str]] = (),
                      hadoop_conf: Iterable[tuple[str, str, str]] = (),
                      unset: Iterable[str] = (), restart_running: bool = False,
                      progress: Progress | None = None, health_timeout: float = 300) -> dict:
    """Change the cluster's own settings, rewrite every node's files, restart what reads
    them, and check health. Refused before any change: an unknown cluster, a server not
    ACTIVE, a key to unset that is not set, and (unless ``restart_running``) a Spark
    restart while applications run on the cluster."""
    progress = ensure(progress)
    timings: dict[str, float] = {}
    access = open_cluster(provider=provider, cluster=cluster, identity_file=identity_file)
    access.require_active(what="configure")
    runner = access.runner()
    try:
        facts = deployed_facts(runner=runner, facts=access.facts)
        change = plan_change(facts=facts, spark_conf=spark_conf, hadoop_conf=hadoop_conf,
                             unset=unset)
        result = {"cluster": cluster, "changed": change.changed,
                  "restarted": list(change.affected), "health": [],
                  "before": settings_dict(facts), "timings": timings}
        if not change.changed:
            result["after"] = result["before"]
            return result
        if "spark" in change.affected and not restart_running:
            apps = _running_apps(facts=facts, runner=runner)
            if apps:
                raise errors.ValidationError(
                    f"Spark must restart for the new settings, and it runs "
                    f"{len(apps)} application(s): {', '.join(apps)}",
                    hint="wait for them (`spark-openstack jobs`), or pass "
                         "--restart-running to end them")
        new_facts = dataclasses.replace(facts, spark_conf=change.new_spark,
                                        hadoop_conf=change.new_hadoop)
        with PhaseTimer(progress, "rewrite configs on every node", timings):
            reconfigure_nodes(facts=new_facts, runner=runner)
        if change.affected:
            with PhaseTimer(progress, f"restart {', '.join(change.affected)}", timings):
                stop_services(facts=new_facts, runner=runner, names=change.affected)
                health = start_services(facts=new_facts, runner=runner,
                                        names=change.affected, progress=progress,
                                        health_timeout=health_timeout)
            result["health"] = [h.line() for h in health.values()]
            result["healthy"] = all(h.ok for h in health.values())
        result["after"] = settings_dict(new_facts)
        return result
    finally:
        runner.close()


def requested_change(*, conf=(), hadoop_conf=(), unset=(), show: bool = False):
    """configure-cluster's flags checked before the cloud is contacted: the Spark and
    Hadoop settings to make (parsed ``KEY=VALUE`` / ``FILE:KEY=VALUE``)."""
    from .config import parse_hadoop_conf, parse_spark_conf
    if show:
        if conf or hadoop_conf or unset:
            raise errors.UsageError("--show prints the settings; it cannot change them",
                                    hint="drop --show, or the --conf/--hadoop-conf/--unset")
        return (), ()
    spark_conf, hadoop_settings = parse_spark_conf(conf), parse_hadoop_conf(hadoop_conf)
    if not (spark_conf or hadoop_settings or unset):
        raise errors.UsageError("nothing to change",
                                hint="pass --conf, --hadoop-conf or --unset (or --show)")
    return spark_conf, hadoop_settings
