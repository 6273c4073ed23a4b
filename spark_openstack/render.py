"""Render the Hadoop and Spark configuration files of one node from the cluster's facts.

Templates live in ``config_files/`` (Jinja2, ``StrictUndefined``: a missing fact is an
error, never an empty string in a config file). Memory and cores come from the node's
flavor (``Node.ram_mb``, ``Node.vcpus``), never from constants in the templates. This
module only produces text; ``deploy`` and the services decide where and when it is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import jinja2

from . import paths
from .errors import ValidationError
from .dirs import cluster_dirs
from .model import ClusterFacts, Node
from .services import HADOOP_SERVICES, HADOOP_SITE_FILES, PORTS, SERVICES

# PORTS: the port numbers templates use (``{{ ports.namenode_rpc }}``), from the service
# classes' declarations, so daemons, services and security group agree.

# Files that hold the cluster's secret: only the service account may read them.
SECRET_FILE_NAMES = ("spark-defaults.conf", "jupyter_server_config.py", "supervisord.conf")

# Flavor-derived sizing (MB). A node needs room for the OS and for each daemon's heap.
MIN_RAM_MB = 1024            # a node reporting less (or nothing) is sized as this
MIN_SPARK_WORKER_MB = 512    # Spark refuses executors below ~450 MB
MIN_DRIVER_MB = 512
MIN_EXECUTOR_OVERHEAD_MB = 384   # Spark on YARN adds max(384 MB, 10%) to every executor

# YARN's arithmetic (CapacityScheduler, DefaultResourceCalculator: memory only). Every
# container request is rounded UP to a multiple of yarn.scheduler.minimum-allocation-mb,
# so a small increment wastes little: 512 turned the 896 MB application master into
# 1024 and left no room for an executor beside it on a 4 GB worker (issue 23).
YARN_MIN_ALLOCATION_MB = 128
#: spark.yarn.am.memory: the client-mode application master (ExecutorLauncher) only asks
#: YARN for executors; Spark's default, written out so the sizing below can rely on it.
YARN_AM_MB = 512
#: yarn.scheduler.capacity.maximum-am-resource-percent. Apache's 0.1 admits a second
#: concurrent application (a notebook kernel and a submitted job) only when 10% of the
#: cluster holds both AMs: on small clusters never, and the second one stays ACCEPTED.
#: Half leaves the other half for executors, so AMs alone cannot starve every job.
YARN_MAX_AM_RESOURCE_PERCENT = 0.5


def executor_overhead_mb(executor_mb: int) -> int:
    """What YARN adds to a Spark executor's heap (spark.executor.memoryOverhead default)."""
    return max(MIN_EXECUTOR_OVERHEAD_MB, executor_mb // 10)


def yarn_container_mb(*, heap_mb: int, min_allocation_mb: int = YARN_MIN_ALLOCATION_MB,
                      overhead_mb: int | None = None) -> int:
    """The container YARN grants a Spark JVM of ``heap_mb`` (executor, AM or cluster-mode
    driver): heap + overhead (``overhead_mb``, by default Spark's max(384, 10%)), rounded
    up to the allocation increment."""
    asked = heap_mb + (executor_overhead_mb(heap_mb) if overhead_mb is None else overhead_mb)
    step = max(1, min_allocation_mb)
    return -(-asked // step) * step


def largest_heap_within(*, container_mb: int,
                        min_allocation_mb: int = YARN_MIN_ALLOCATION_MB) -> int:
    """The largest heap (multiple of 64 MB) whose rounded container fits ``container_mb``
    (0 when not even a 64 MB heap does)."""
    mb = _round64(container_mb)
    while mb > 0 and yarn_container_mb(heap_mb=mb, min_allocation_mb=min_allocation_mb) \
            > container_mb:
        mb -= 64
    return mb


def largest_executor_within(container_mb: int) -> int:
    """The largest executor heap whose heap + overhead fits a container (no rounding)."""
    return largest_heap_within(container_mb=container_mb, min_allocation_mb=1)


#: The smallest YARN container of a Spark JVM Spark accepts (heap 512 MB): 896 MB.
MIN_YARN_CONTAINER_MB = yarn_container_mb(heap_mb=MIN_SPARK_WORKER_MB)
#: The client-mode application master's container: 512 + 384 = 896 MB.
YARN_AM_CONTAINER_MB = yarn_container_mb(heap_mb=YARN_AM_MB)
#: The first job on an empty cluster: the AM and one executor on the same NodeManager.
MIN_YARN_NODEMANAGER_MB = YARN_AM_CONTAINER_MB + MIN_YARN_CONTAINER_MB


def _floor(mb: int, step: int) -> int:
    return max(0, mb) // step * step


def yarn_am_room_mb(usable_mb: int) -> int:
    """What a worker's NodeManager keeps beside one executor for an application master:
    the client-mode AM, or in cluster mode the driver (a sixth of the node's container
    share as its heap, 512 MB .. 4 GB), so the AM's worker gets an executor too."""
    heap = max(MIN_DRIVER_MB, min(4096, _round64(usable_mb // 6)))
    return max(YARN_AM_CONTAINER_MB, yarn_container_mb(heap_mb=heap))


def _yarn_split(usable: int) -> tuple[int, int, int]:
    """``(NodeManager MB, Spark worker MB, AM room MB)`` for a worker running both: the
    largest executor heap X with X (Spark standalone) + container(X) + AM room <= usable."""
    for room in dict.fromkeys((yarn_am_room_mb(usable), YARN_AM_CONTAINER_MB)):
        heap = _round64(usable)
        while heap >= MIN_SPARK_WORKER_MB and heap + yarn_container_mb(heap_mb=heap) + room \
                > usable:
            heap -= 64
        if heap >= MIN_SPARK_WORKER_MB:
            yarn_mb = _floor(usable - heap, YARN_MIN_ALLOCATION_MB)
            return yarn_mb, _round64(usable - yarn_mb), room
    # too small: the minimums (needed_mb) say by how much
    yarn_mb = _floor(max(MIN_YARN_NODEMANAGER_MB, usable // 2), YARN_MIN_ALLOCATION_MB)
    return yarn_mb, _round64(usable - yarn_mb), YARN_AM_CONTAINER_MB


@dataclass(frozen=True)
class NodeSizing:
    """What one node can give its daemons and containers, from its flavor."""

    ram_mb: int
    vcores: int
    os_reserve_mb: int
    daemon_heap_mb: int
    daemons: tuple[str, ...]
    spark_worker_mb: int         # workers: SPARK_WORKER_MEMORY; master: room for the driver
    yarn_nodemanager_mb: int     # workers with YARN: yarn.nodemanager.resource.memory-mb
    dfs_replication: int
    yarn_am_room_mb: int = 0     # workers with YARN: what the NM keeps for an AM/driver

    @property
    def needed_mb(self) -> int:
        """The least RAM this node's plan works with (the minimums, not the shares)."""
        wants = self.os_reserve_mb + self.daemon_heap_mb * len(self.daemons)
        if "Spark Worker" in self.daemons:
            wants += MIN_SPARK_WORKER_MB
        if "NodeManager" in self.daemons:
            wants += MIN_YARN_NODEMANAGER_MB
        if "Spark Master" in self.daemons:
            wants += MIN_DRIVER_MB
        return wants

    def breakdown(self) -> str:
        parts = [f"OS {self.os_reserve_mb}",
                 f"{len(self.daemons)} daemon heap(s) x {self.daemon_heap_mb} "
                 f"({', '.join(self.daemons)})"]
        if "Spark Worker" in self.daemons:
            parts.append(f"Spark executors >= {MIN_SPARK_WORKER_MB}")
        if "NodeManager" in self.daemons:
            parts.append(f"YARN containers >= {MIN_YARN_NODEMANAGER_MB} (application master "
                         f"{YARN_AM_MB}+{executor_overhead_mb(YARN_AM_MB)} and one executor "
                         f"{MIN_SPARK_WORKER_MB}+{executor_overhead_mb(MIN_SPARK_WORKER_MB)},"
                         f" each rounded up to {YARN_MIN_ALLOCATION_MB})")
        if "Spark Master" in self.daemons:
            parts.append(f"Spark driver >= {MIN_DRIVER_MB}")
        return " + ".join(parts) + f" = {self.needed_mb} MB"


def daemon_heap_mb(ram_mb: int) -> int:
    """Heap for each long-running daemon: small flavors (and shared sandbox hosts) stay small."""
    if ram_mb <= 4096:
        return 256
    if ram_mb <= 16384:
        return 512
    return 1024


def _round64(mb: int) -> int:
    return max(0, mb) // 64 * 64


def node_sizing(*, node: Node, services: tuple[str, ...], worker_count: int) -> NodeSizing:
    """Split a node's RAM between the OS, its daemons and Spark/YARN containers.

    The OS keeps a fifth of RAM (384 MB .. 4 GB); each daemon the node runs gets
    ``daemon_heap_mb``. On the master the rest is room for drivers. On a worker with YARN
    the NodeManager gets room for an application master plus one executor (YARN's rounded
    containers, see ``yarn_container_mb``) and the Spark worker the same executor heap;
    what is left goes to YARN. Nothing is rounded up past the RAM: ``needed_mb`` says what
    the minimums need, and ``check_memory_plan`` refuses a flavor that is too small.
    """
    ram = max(node.ram_mb or 0, MIN_RAM_MB)
    vcores = max(node.vcpus or 0, 1)
    os_reserve = min(4096, max(384, ram // 5))
    heap = daemon_heap_mb(ram)
    role = "master" if node.role == "master" else "worker"
    # the long-running JVMs of the role (``Service.jvms``)
    daemons = tuple(d for cls in SERVICES if cls.name in services
                    for d in cls.jvms.get(role, ()))
    usable = max(0, ram - os_reserve - heap * len(daemons))
    spark_mb = yarn_mb = am_room = 0
    if role == "master":
        spark_mb = _round64(usable)
    elif "spark" in services and "yarn" in services:
        yarn_mb, spark_mb, am_room = _yarn_split(usable)
    elif "yarn" in services:
        yarn_mb = _floor(usable, YARN_MIN_ALLOCATION_MB)
        am_room = yarn_am_room_mb(usable)
        if yarn_mb - am_room < MIN_YARN_CONTAINER_MB:
            am_room = YARN_AM_CONTAINER_MB
    elif "spark" in services:
        spark_mb = _round64(usable)
    return NodeSizing(
        ram_mb=ram, vcores=vcores, os_reserve_mb=os_reserve, daemon_heap_mb=heap,
        daemons=daemons, spark_worker_mb=spark_mb, yarn_nodemanager_mb=yarn_mb,
        dfs_replication=max(1, min(3, worker_count)), yarn_am_room_mb=am_room,
    )


def memory_plan_problems(*, master: Node, worker: Node, services: tuple[str, ...],
                         worker_count: int) -> list[str]:
    """Why a flavor cannot hold its role's daemons, or (with YARN) why the first job on
    an empty cluster would not get an executor on every worker (empty when it fits)."""
    problems = []
    for node, role in ((master, "master"), (worker, "worker")):
        plan = node_sizing(node=node, services=services, worker_count=worker_count)
        if (node.ram_mb or 0) < plan.needed_mb:
            problems.append(f"the {role} needs {plan.breakdown()}; its flavor has "
                            f"{node.ram_mb} MB")
    if not problems and "yarn" in services:
        count = max(1, worker_count)
        workers = [node_sizing(node=worker, services=services, worker_count=count)] * count
        master_plan = node_sizing(node=master, services=services, worker_count=count)
        sizing = _sizing(workers=workers, master=master_plan, services=services)
        problems += yarn_plan_problems(sizing=sizing,
                                       nodemanager_mb=workers[0].yarn_nodemanager_mb)
    return problems


def yarn_plan_problems(*, sizing: "ClusterSizing", nodemanager_mb: int) -> list[str]:
    """What keeps the first Spark job off a NodeManager of ``nodemanager_mb``: its
    application master (client mode) or driver (cluster mode) and one executor must fit
    it together, each rounded up as YARN rounds (empty when they do)."""
    step = sizing.yarn_min_allocation_mb
    executor = yarn_container_mb(heap_mb=sizing.spark_executor_mb, min_allocation_mb=step)
    problems = []
    for what, heap in (("application master (spark.yarn.am.memory)", sizing.yarn_am_mb),
                       ("cluster-mode driver (spark.driver.memory)", sizing.spark_driver_mb)):
        am = yarn_container_mb(heap_mb=heap, min_allocation_mb=step)
        if am + executor > nodemanager_mb or executor > sizing.yarn_max_allocation_mb:
            problems.append(
                f"YARN: the worker that runs the {what} needs {heap}+"
                f"{executor_overhead_mb(heap)} -> {am} MB plus one executor "
                f"{sizing.spark_executor_mb}+{executor_overhead_mb(sizing.spark_executor_mb)}"
                f" -> {executor} MB (rounded up to yarn.scheduler.minimum-allocation-mb "
                f"{step}) = {am + executor} MB; its NodeManager offers {nodemanager_mb} MB")
    return problems


def check_memory_plan(*, master: Node, worker: Node, services: tuple[str, ...],
                      worker_count: int, flavor_names: tuple[str, str] = ("", "")) -> None:
    """``ValidationError`` with the numbers when a flavor cannot hold the services."""
    problems = memory_plan_problems(master=master, worker=worker, services=services,
                                    worker_count=worker_count)
    if problems:
        master_flavor, worker_flavor = flavor_names
        named = f" (--flavor {worker_flavor}" + (
            f", --master-flavor {master_flavor})" if master_flavor else ")") \
            if worker_flavor else ""
        raise ValidationError(
            f"the flavor is too small for {', '.join(services)}{named}: "
            + "; ".join(problems),
            hint="choose a flavor with more RAM (--flavor for workers, --master-flavor for "
                 "the master), or run fewer services (e.g. --services hdfs,spark)")


@dataclass(frozen=True)
class ClusterSizing:
    """Cluster-wide values (same on every node) taken from the smallest worker/master."""

    spark_executor_mb: int
    spark_driver_mb: int
    yarn_min_allocation_mb: int
    yarn_max_allocation_mb: int
    yarn_max_allocation_vcores: int
    mapreduce_task_mb: int
    mapreduce_task_heap_mb: int
    yarn_am_mb: int = YARN_AM_MB          # spark.yarn.am.memory
    spark_executor_cores: int = 1         # spark.executor.cores (rendered with YARN)
    #: executors that fill every worker once the AM has its container (``submit`` asks
    #: YARN for these, so no heartbeat order leaves a worker without one)
    yarn_executor_instances: int = 0


def yarn_executor_slots(*, nodemanager_mbs, executor_mb: int, am_mb: int,
                        min_allocation_mb: int = YARN_MIN_ALLOCATION_MB) -> int:
    """How many executors the NodeManagers hold beside one application master, counted
    for the AM on the worker where it costs the fewest (asking for this many fills every
    worker: a worker with room left would get the next one)."""
    nms = list(nodemanager_mbs)
    if not nms:
        return 0
    executor = yarn_container_mb(heap_mb=executor_mb, min_allocation_mb=min_allocation_mb)
    am = yarn_container_mb(heap_mb=am_mb, min_allocation_mb=min_allocation_mb)
    slots = [nm // executor for nm in nms]
    lost = min(s - max(0, nm - am) // executor for s, nm in zip(slots, nms))
    return max(0, sum(slots) - lost)


def _sizing(*, workers: list[NodeSizing], master: NodeSizing,
            services: tuple[str, ...]) -> ClusterSizing:
    fewest_cores = min(s.vcores for s in workers)
    yarn = "yarn" in services
    step = YARN_MIN_ALLOCATION_MB
    smallest_nm = min(s.yarn_nodemanager_mb for s in workers) if yarn else 0
    am_room = min(s.yarn_am_room_mb for s in workers) if yarn else 0
    # with YARN the executor fits beside the AM room on the smallest NodeManager
    yarn_executor = largest_heap_within(container_mb=smallest_nm - am_room) if yarn else 0
    if "spark" in services:
        executor = min(s.spark_worker_mb for s in workers)
        if yarn:
            executor = min(executor, yarn_executor)
    else:
        executor = yarn_executor
    executor = max(MIN_SPARK_WORKER_MB, executor)
    # The driver runs on the master next to its daemons (client mode): half of the room
    # there; with YARN its cluster-mode container must also fit beside one executor.
    driver = max(MIN_DRIVER_MB, min(4096, _round64(master.spark_worker_mb // 2)))
    if yarn:
        beside = smallest_nm - yarn_container_mb(heap_mb=executor)
        driver = max(MIN_DRIVER_MB, min(driver, largest_heap_within(container_mb=beside)))
    task = max(512, min(2048, _floor(smallest_nm // 2, step))) if yarn else 512
    instances = yarn_executor_slots(nodemanager_mbs=[s.yarn_nodemanager_mb for s in workers],
                                    executor_mb=executor, am_mb=YARN_AM_MB) if yarn else 0
    return ClusterSizing(
        spark_executor_mb=executor,
        spark_driver_mb=driver,
        yarn_min_allocation_mb=step,
        yarn_max_allocation_mb=smallest_nm if yarn else MIN_YARN_NODEMANAGER_MB,
        yarn_max_allocation_vcores=fewest_cores,
        mapreduce_task_mb=task,
        mapreduce_task_heap_mb=task * 4 // 5,
        yarn_am_mb=YARN_AM_MB,
        spark_executor_cores=fewest_cores,
        yarn_executor_instances=max(1, instances) if yarn else 0,
    )


def cluster_sizing(*, facts: ClusterFacts) -> ClusterSizing:
    """Executor, driver and container sizes every node agrees on.

    One ``spark.executor.memory`` serves both masters: it fits the smallest Spark worker
    (standalone) and, with YARN, its rounded container fits beside the application
    master (or cluster-mode driver) on the smallest NodeManager, so the first job gets
    an executor on every worker.
    """
    workers = facts.workers or (facts.master,)
    per_worker = [node_sizing(node=w, services=facts.services, worker_count=len(workers))
                  for w in workers]
    master = node_sizing(node=facts.master, services=facts.services,
                         worker_count=len(workers))
    return _sizing(workers=per_worker, master=master, services=facts.services)


#: ``--add-opens`` for Hadoop's daemons on Java >= 17 (the packages Spark's launcher opens).
JAVA_MODULE_OPENS = " ".join(
    f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in (
        "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net",
        "java.nio", "java.util", "java.util.concurrent", "java.util.concurrent.atomic",
        "sun.nio.ch", "sun.nio.cs", "sun.security.action", "sun.util.calendar"))


def _file_url(path: str) -> str:
    return f"file://{path}"


def _environment(template_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["file_url"] = _file_url
    return env


def template_names() -> dict[str, list[str]]:
    """Template files per group (``hadoop``, ``spark``, ``system``, ``jupyter``), for tests
    and docs."""
    root = paths.config_files_dir()
    return {group: sorted(p.name for p in (root / group).glob("*.j2"))
            for group in ("hadoop", "spark", "system", "jupyter")}


def uses_hadoop(services) -> bool:
    return any(s in HADOOP_SERVICES for s in services)


def image_hadoop_services(image_marker: dict) -> tuple[str, ...]:
    """The Hadoop services an image can run, from its marker (or its Glance properties).

    Images baked since ``hadoop_services`` exists say it (the bake looks for YARN's
    ResourceManager jar); older ones with a Hadoop are assumed to hold HDFS and YARN.
    """
    version = image_marker.get("hadoop_version")
    if not version or version == "none":
        return ()
    recorded = image_marker.get("hadoop_services")
    if recorded is None:
        return HADOOP_SERVICES
    if isinstance(recorded, str):
        recorded = recorded.split(",")
    return tuple(s for s in HADOOP_SERVICES if s in recorded)


def _context(*, facts: ClusterFacts, node: Node) -> dict:
    if node.name not in {n.name for n in facts.nodes}:
        raise ValidationError(f"node {node.name!r} is not part of cluster {facts.cluster_name!r}")
    if "spark" in facts.services and not facts.spark_secret:
        raise ValidationError(
            f"cluster {facts.cluster_name!r} has no Spark secret; spark.authenticate needs one",
            hint="deploy_cluster generates one; pass facts from the cluster, not hand-made")
    return {
        "facts": facts,
        "node": node,
        "master": facts.master,
        "workers": facts.workers,
        "is_master": node.name == facts.master.name,
        "hadoop": uses_hadoop(facts.services),
        "sizing": node_sizing(node=node, services=facts.services,
                              worker_count=len(facts.workers)),
        "cluster_sizing": cluster_sizing(facts=facts),
        "dirs": cluster_dirs(facts),
        "ports": PORTS,
        "java_module_opens": JAVA_MODULE_OPENS,
        "notebook": notebook_limits(facts=facts),
        "max_am_resource_percent": YARN_MAX_AM_RESOURCE_PERCENT,
        "python_bin_dir": facts.python.rsplit("/", 1)[0],
        "jupyter_bin": f"{facts.python.rsplit('/', 1)[0]}/jupyter",
    }


#: How long a notebook keeps an idle executor (then its cores go to the other notebooks).
NOTEBOOK_IDLE_TIMEOUT = "60s"
#: With shuffle tracking (no external shuffle service), an idle executor that holds shuffle
#: files is kept until this passes, not forever (Spark's default): a later cell that needs
#: those files recomputes them.
NOTEBOOK_SHUFFLE_TIMEOUT = "120s"


def notebook_limits(*, facts: ClusterFacts) -> dict:
    """What one notebook's Spark application may take, so several share the cluster:
    half the workers' cores (at least 1) in 1-core executors that are given back when
    idle, on YARN when the cluster runs it, else on the standalone master."""
    workers = facts.workers or (facts.master,)
    total = sum(max(w.vcpus or 0, 1) for w in workers)
    share = max(1, total // 2)
    sizing = cluster_sizing(facts=facts)
    yarn = "yarn" in facts.services
    master = "yarn" if yarn else f"spark://{facts.master.private_ip}:{PORTS['spark_master']}"
    return {
        "master": master,
        "master_label": "YARN" if yarn else f"Spark standalone {master}",
        "standalone": not yarn,
        "total_cores": total,
        "max_cores": share,
        # standalone: two notebooks' executors fit where one job's would (a worker's Spark
        # memory). YARN: a job's executor, of which a worker holds one beside an
        # application master, so a notebook's executors spread over the workers and
        # notebooks share YARN in time (idle executors are given back).
        "executor_mb": (sizing.spark_executor_mb if yarn else
                        max(MIN_SPARK_WORKER_MB, _round64(sizing.spark_executor_mb // 2))),
        "driver_mb": max(MIN_DRIVER_MB, _round64(sizing.spark_driver_mb // 2)),
        "idle_timeout": NOTEBOOK_IDLE_TIMEOUT,
        "shuffle_timeout": NOTEBOOK_SHUFFLE_TIMEOUT,
    }


def render_node_configs(*, facts: ClusterFacts, node: Node) -> dict[str, str]:
    """``{absolute path on the node: file content}`` for one node's Hadoop/Spark configs.

    Which files a node gets is each service's own declaration (``Service.config_files``,
    ``renders_files``): an image without Hadoop has no ``/opt/hadoop`` to put Hadoop's in.
    """
    context = _context(facts=facts, node=node)
    root = paths.config_files_dir()
    dirs = context["dirs"]
    rendered: dict[str, str] = {}
    for cls in SERVICES:
        if not cls.renders_files(services=facts.services, is_master=context["is_master"]):
            continue
        env = _environment(root / cls.template_dir)
        for name, field in cls.config_files.items():
            path = f"{getattr(dirs, field)}/{name}"
            if path in rendered:
                continue     # shared by two services (core-site.xml of HDFS and YARN)
            text = env.get_template(f"{name}.j2").render(**context)
            if name in HADOOP_SITE_FILES:
                text = apply_hadoop_conf(text=text, file_name=name,
                                         hadoop_conf=facts.hadoop_conf)
            rendered[path] = text
    return rendered


# HADOOP_SITE_FILES (the files ``--hadoop-conf FILE:KEY=VALUE`` may change) are those the
# Hadoop service classes read (``HadoopService.site_files``).

_PROPERTY_RE = re.compile(r"<property>\s*<name>(?P<name>[^<]*)</name>\s*"
                          r"<value>(?P<value>[^<]*)</value>", re.S)


def apply_hadoop_conf(*, text: str, file_name: str,
                      hadoop_conf: tuple[tuple[str, str, str], ...]) -> str:
    """A rendered ``*-site.xml`` with the cluster's own settings for that file: a property
    the template sets gets the user's value in place (one definition per name, as Hadoop
    expects); any other is added before ``</configuration>``."""
    wanted = {key: value for file, key, value in hadoop_conf if file == file_name}
    if not wanted:
        return text
    done: set[str] = set()

    def replace(match: re.Match) -> str:
        name = match.group("name").strip()
        if name not in wanted:
            return match.group(0)
        done.add(name)
        whole, offset = match.group(0), match.start()
        return (whole[:match.start("value") - offset] + xml_escape(wanted[name])
                + whole[match.end("value") - offset:])
    text = _PROPERTY_RE.sub(replace, text)
    added = "".join(
        f"  <property>\n    <name>{xml_escape(key)}</name>\n"
        f"    <value>{xml_escape(value)}</value>\n  </property>\n"
        for key, value in wanted.items() if key not in done)
    if added:
        marker = "</configuration>"
        head, sep, tail = text.rpartition(marker)
        if not sep:
            raise ValidationError(f"{file_name}: no </configuration> to add settings to")
        text = (head + "  <!-- The cluster's own settings (launch and configure-cluster: "
                "hadoop-conf). -->\n" + added + sep + tail)
    return text


def render_etc_hosts(*, facts: ClusterFacts) -> str:
    """The /etc/hosts every node gets: real private addresses, never 127.0.1.1."""
    env = _environment(paths.config_files_dir() / "system")
    return env.get_template("hosts.j2").render(facts=facts)


def node_config_files(*, facts: ClusterFacts, node: Node) -> dict[str, tuple[str, int]]:
    """``render_node_configs`` with each file's mode: what a runner's ``put_files`` takes."""
    return {path: (text, config_file_mode(path))
            for path, text in render_node_configs(facts=facts, node=node).items()}


def config_file_mode(path: str) -> int:
    """0600 for files holding the cluster secret, 0755 for scripts, 0644 otherwise."""
    name = path.rsplit("/", 1)[-1]
    if name in SECRET_FILE_NAMES:
        return 0o600
    if name.endswith(".sh"):
        return 0o755
    return 0o644
