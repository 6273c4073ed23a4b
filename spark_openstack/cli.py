"""The ``spark-openstack`` command line (click + rich).

Thin by design: every command parses options, layers them over the config file, calls one
library function (``launch.launch``, ``ledger.destroy`` ...) and prints its result. Only
``main()`` turns ``SparkOpenstackError`` into an exit code (2 usage, 1 failure, 130
interrupted) and one clear message; a traceback appears only with ``-v``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

import click
from rich import box
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import __version__, errors
from .config import (BUILTIN_DEFAULTS, IMAGE_DEFAULTS, KNOWN_SERVICES, parse_cidrs,
                     config_path, image_spec_from, launch_spec_from, load_config_file, resolve,
                     validate_cluster_name, validate_ssh_user, web_ui_ports, write_config_file)
from .model import DEFAULT_DATA_DIR, node_sort_key
from .ports import SAFE, UNSAFE
from .progress import Progress

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)
_VERBOSE = 0

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# --------------------------------------------------------------------------- context

class AppContext:
    """Global options, the config file (read once) and a lazily made provider."""

    def __init__(self, *, cloud: str | None, config_file: str | None, verbose: int):
        self.cloud_flag = cloud
        self.config_file = config_file
        self.verbose = verbose
        self._file_values: dict | None = None
        self._provider = None

    @property
    def path(self) -> Path:
        return config_path(self.config_file)

    @property
    def file_values(self) -> dict:
        if self._file_values is None:
            self._file_values = load_config_file(self.path, required=bool(self.config_file))
        return self._file_values

    def resolve(self, flags: dict, *, defaults: dict | None = None):
        """``flags`` over the config file over ``defaults`` (launch's built-in ones unless
        a command has its own, as create-image does)."""
        return resolve(flags=flags, file_values=self.file_values, file_path=self.path,
                       defaults=defaults)

    @property
    def cloud(self) -> str | None:
        """--cloud, else OS_CLOUD, else the config file's ``cloud:``, else OS_* (SDK)."""
        return self.cloud_flag or os.environ.get("OS_CLOUD") or self.file_values.get("cloud")

    @property
    def provider(self):
        if self._provider is None:
            from .provider import OpenStackProvider
            self._provider = OpenStackProvider.connect(cloud=self.cloud)
        return self._provider


pass_app = click.make_pass_decorator(AppContext)

#: ``-c NAME``: the cluster a day-2 command acts on.
cluster_option = click.option("-c", "--cluster", metavar="NAME", required=True,
                              help="The cluster's name (see `spark-openstack list`).")


def identity_option(*, whose: str = "the cluster's keypair"):
    """``--identity-file``, declared once: when not given, the config file's
    ``identity_file`` (then ``~/.ssh``, looked up by the library)."""
    def config_default(ctx, _param, value):
        return value or ctx.find_object(AppContext).file_values.get("identity_file")
    return click.option("--identity-file", metavar="PATH", callback=config_default,
                        help=f"Private key of {whose} (default: config/~/.ssh).")


def _ui_list(ports) -> str:
    """``spark-master 8080, spark-app 4040``: web UIs as the help texts name them."""
    return ", ".join(f"{p.ui_name} {p.number}" for p in ports)


# --------------------------------------------------------------------------- progress

class RichProgress(Progress):
    """A live line per node plus phase lines; plain log lines when not on a terminal."""

    def __init__(self, console: Console = stderr, *, title: str = ""):
        self.console = console
        self.title = title
        self.nodes: dict[str, tuple[str, float]] = {}
        self.phase = ""
        self.t0 = time.monotonic()
        self.live: Live | None = None
        self.phase_times: dict[str, float] = {}

    def __enter__(self):
        if self.console.is_terminal:
            self.live = Live(self._render(), console=self.console, refresh_per_second=8,
                             transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(*exc)
        return False

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.t0:6.1f}s"

    def _render(self):
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_column(justify="right", style="dim")
        head = f"{self.title}  " if self.title else ""
        table.add_row(Text(f"{head}{self.phase or 'starting'}", style="cyan"), "",
                      self._elapsed())
        for name in sorted(self.nodes, key=node_sort_key):
            status, since = self.nodes[name]
            style = "green" if status in ("ready", "active", "deleted") else (
                "red" if "error" in status.lower() else "")
            table.add_row(name, Text(status, style=style),
                          f"{time.monotonic() - since:5.1f}s")
        return table

    def _refresh(self):
        if self.live is not None:
            self.live.update(self._render())

    def phase_started(self, phase):
        self.phase = phase
        if self.live is None:
            self.console.print(f"[{self._elapsed()}] {phase} ...")
        self._refresh()

    def phase_done(self, phase, seconds):
        self.phase_times[phase] = seconds
        if self.live is None:
            self.console.print(f"[{self._elapsed()}] {phase} done in {seconds:.1f}s")
        self._refresh()

    def node_status(self, node, status):
        self.nodes[node] = (status, time.monotonic())
        if self.live is None:
            self.console.print(f"[{self._elapsed()}] {node}: {status}")
        self._refresh()

    def message(self, text):
        if self.live is not None:
            self.live.console.print(f"[yellow]{escape(text)}[/yellow]")
        else:
            self.console.print(text, markup=False)


# --------------------------------------------------------------------------- group

@click.group(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack configure -k mykey --identity-file ~/.ssh/id_ed25519 -i debian-12 \\
      --allowed-cidr 203.0.113.7/32
  spark-openstack launch -c demo -s 2
  spark-openstack describe -c demo
  spark-openstack login -c demo -L
  spark-openstack destroy -c demo --yes

The cloud is chosen like the `openstack` CLI does: --cloud NAME (clouds.yaml), else
OS_CLOUD, else `cloud:` in the config file, else the OS_* variables of an openrc file.
Run `spark-openstack COMMAND --help` for each command's options.""")
@click.option("--cloud", metavar="NAME",
              help="Cloud from clouds.yaml (default: $OS_CLOUD, the config file, or OS_*).")
@click.option("--config", "config_file", metavar="FILE",
              type=click.Path(dir_okay=False),
              help="Settings file (default ~/.config/spark-openstack/config.yaml).")
@click.option("-v", "--verbose", count=True,
              help="Show tracebacks and log progress details; -vv logs every API call.")
@click.version_option(__version__, prog_name="spark-openstack")
@click.pass_context
def cli(ctx, cloud, config_file, verbose):
    """Launch, inspect and destroy Spark (+ HDFS/YARN) clusters on OpenStack."""
    global _VERBOSE
    _VERBOSE = verbose
    if verbose:
        logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        if verbose > 1:
            import openstack
            openstack.enable_logging(debug=True, http_debug=True)
    ctx.obj = AppContext(cloud=cloud, config_file=config_file, verbose=verbose)


# --------------------------------------------------------------------------- configure

_CONFIGURE_PROMPTS = (
    ("keypair", "Keypair name (openstack keypair list)"),
    ("identity_file", "Private key file of that keypair"),
    ("image", "Image to boot (name or id)"),
    ("flavor", "Flavor for workers"),
    ("network", "Network (empty: the project's only one)"),
    ("allowed_cidr", "CIDR allowed to SSH in (e.g. your-ip/32)"),
    ("ssh_user", "Login user of the image"),
)


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack configure                      # asks for the common settings
  spark-openstack --cloud mycloud configure -k mykey -i debian-12 --flavor m1.medium
  spark-openstack configure --allowed-cidr 203.0.113.7/32 --allowed-cidr 10.0.0.0/8
  spark-openstack configure --unset master-flavor
  spark-openstack configure --show""")
@click.option("-k", "--keypair", metavar="NAME")
@click.option("--identity-file", metavar="PATH")
@click.option("-i", "--image", metavar="IMAGE")
@click.option("--flavor", metavar="FLAVOR")
@click.option("--master-flavor", metavar="FLAVOR")
@click.option("--network", metavar="NET")
@click.option("--floating-ip-pool", metavar="NET")
@click.option("--allowed-cidr", multiple=True, metavar="CIDR")
@click.option("--open-ui-cidr", multiple=True, metavar="CIDR")
@click.option("--open-unsafe-ui-cidr", multiple=True, metavar="CIDR",
              help="See `launch --help`: exposes YARN and HDFS to that CIDR on every launch.")
@click.option("--ssh-user", metavar="USER")
@click.option("-s", "--slaves", type=int, metavar="N")
@click.option("--timeout", type=int, metavar="SECONDS")
@click.option("--services", metavar="LIST")
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a setting.")
@click.option("--show", is_flag=True, help="Print the settings file and exit.")
@pass_app
def configure(app: AppContext, show, unset, **options):
    """Write default settings to the config file (flags given later still win)."""
    path = app.path
    if show:
        stdout.print(path.read_text() if path.exists() else f"# {path} does not exist yet")
        return
    values = {k: v for k, v in options.items() if v not in (None, ())}
    if "services" in values:
        values["services"] = tuple(s.strip() for s in values["services"].split(","))
    if app.cloud_flag:
        values["cloud"] = app.cloud_flag
    for key in unset:
        norm = key.replace("-", "_")
        if norm not in BUILTIN_DEFAULTS:
            raise errors.UsageError(f"--unset {key}: no such setting",
                                    hint="settings: " + ", ".join(
                                        sorted(k.replace("_", "-") for k in BUILTIN_DEFAULTS)))
        values[norm] = None
    if not values and not unset:
        if not sys.stdin.isatty():
            raise errors.UsageError("nothing to configure",
                                    hint="pass settings as options (see --help), or run it "
                                         "in a terminal to be asked")
        current = app.file_values
        for key, question in _CONFIGURE_PROMPTS:
            default = current.get(key, BUILTIN_DEFAULTS.get(key))
            if isinstance(default, tuple):
                default = ",".join(default)
            answer = click.prompt(question, default=default or "", show_default=bool(default))
            if answer:
                values[key] = tuple(a.strip() for a in answer.split(",")) \
                    if key == "allowed_cidr" else answer
    for key in ("allowed_cidr", "open_ui_cidr", "open_unsafe_ui_cidr"):
        if values.get(key):
            values[key] = parse_cidrs(tuple(values[key]), source=f"--{key.replace('_', '-')}")
    if values.get("ssh_user"):
        validate_ssh_user(values["ssh_user"])
    written = write_config_file(path, values)
    stderr.print(f"wrote {written}")


# --------------------------------------------------------------------------- launch

#: launch's options, shared with `run` (which launches a cluster for one job).
_LAUNCH_OPTIONS = [
    click.option("-s", "--slaves", "--workers", "slaves", type=int, metavar="N",
                 help=f"Number of workers (default {BUILTIN_DEFAULTS['slaves']}); "
                      "the master is extra."),
    click.option("-k", "--keypair", metavar="NAME", help="Nova keypair to put on the servers."),
    click.option("-i", "--image", metavar="IMAGE", help="Image name or id."),
    click.option("--identity-file", metavar="PATH",
                 help="Private key of the keypair (default: the matching one in ~/.ssh)."),
    click.option("--flavor", metavar="FLAVOR",
                 help=f"Flavor of the workers (default {BUILTIN_DEFAULTS['flavor']})."),
    click.option("--master-flavor", metavar="FLAVOR", help="Flavor of the master (default: --flavor)."),
    click.option("--network", metavar="NET", help="Network (default: the project's only one)."),
    click.option("--floating-ip-pool", metavar="NET",
                 help="External network for the master's floating IP (default: the only one)."),
    click.option("--floating-ip/--no-floating-ip", default=None,
                 help="Give the master a floating IP (default) or reach it at its private IP."),
    click.option("--allowed-cidr", multiple=True, metavar="CIDR",
                 help="Who may SSH in (repeatable). Required; never opened to all unless given."),
    click.option("--open-ui-cidr", multiple=True, metavar="CIDR",
                 help=f"Open the safe web UIs ({_ui_list(web_ui_ports(exposures=(SAFE,)))}) "
                      "to this CIDR (repeatable); never the unsafe ones. Closed by default: "
                      "use `login -L` instead."),
    click.option("--open-unsafe-ui-cidr", multiple=True, metavar="CIDR",
                 help="UNSAFE: also open the web UIs that act on anonymous requests ("
                      f"{_ui_list(web_ui_ports(exposures=(UNSAFE,)))}) to this CIDR (repeatable)."
                      " Anyone there can run code on the cluster (YARN REST) and act as the HDFS "
                      "superuser (?user.name=). Prefer `login -L`."),
    click.option("--anti-affinity/--no-anti-affinity", default=None,
                 help="Soft anti-affinity server group (default on)."),
    click.option("--data-dir", multiple=True, metavar="DIR",
                 help="Where HDFS keeps its data on every node (repeatable, one per disk; "
                      f"default {DEFAULT_DATA_DIR})."),
    click.option("--ssh-user", metavar="USER",
                 help=f"Login user of the image (default {BUILTIN_DEFAULTS['ssh_user']})."),
    click.option("--services", metavar="LIST",
                 help=f"Comma-separated subset of {','.join(KNOWN_SERVICES)} (default all that "
                      "the image can run, jupyter excepted)."),
    click.option("--jupyter", is_flag=True, default=None,
                 help="Also run JupyterLab on the master (image from `create-image --jupyter`)"
                      ": private address only, token required, its port never opened; "
                      "`spark-openstack notebook -c NAME` reaches it."),
    click.option("--deploy/--no-deploy", default=None,
                 help="Deploy Hadoop/Spark after boot (default) or stop at SSH-ready servers."),
    click.option("--keep-on-failure", is_flag=True, default=None,
                 help="On failure leave what was created, for debugging."),
    click.option("--timeout", type=int, metavar="SECONDS",
                 help=f"Limit for boot + SSH (default {BUILTIN_DEFAULTS['timeout']})."),
    click.option("--conf", "conf", multiple=True, metavar="KEY=VALUE",
                 help="A Spark property for every job on the cluster (repeatable), kept "
                     "with the cluster and re-applied on every deploy, e.g. "
                     "--conf spark.executor.cores=2. The secret and encryption settings "
                     "cannot be changed."),
    click.option("--hadoop-conf", "hadoop_conf", multiple=True, metavar="FILE:KEY=VALUE",
                 help="A Hadoop property (repeatable) for core-site, hdfs-site, yarn-site, "
                     "mapred-site or capacity-scheduler, kept like --conf, e.g. "
                     "--hadoop-conf hdfs-site:dfs.replication=2."),
    click.option("--expires-in", "expires_in", metavar="DURATION",
                 help="Give the cluster an end, e.g. 8h, 90m, 2d, 1h30m from its boot: kept "
                      "in the servers' metadata, shown by list/describe; `spark-openstack "
                      "reap` (e.g. from cron) destroys it once past. Default: never."),
]


def launch_options(func):
    """Decorate ``func`` with every launch option (in --help order)."""
    for option in reversed(_LAUNCH_OPTIONS):
        func = option(func)
    return func


def _service_list(text: str | None) -> tuple[str, ...] | None:
    """``--services hdfs, spark`` -> ("hdfs", "spark"); None when not given."""
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else None


def _launch_spec(app: AppContext, *, cluster_name: str, services: str | None,
                 flags: dict):
    """launch's options (flags over the config file over the defaults) as a LaunchSpec:
    what launch, run and batch launch each start from."""
    if services is not None:
        flags["services"] = _service_list(services) or ()
    return launch_spec_from(app.resolve(flags), cluster_name=cluster_name)


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack launch -c demo -s 2 -k mykey -i debian-12 \\
      --identity-file ~/.ssh/id_ed25519 --allowed-cidr 203.0.113.7/32
  spark-openstack launch -c big -s 8 --flavor m1.large --master-flavor m1.medium
  spark-openstack launch -c lab -s 1 --no-floating-ip --no-deploy
  spark-openstack launch -c ui -s 2 --open-ui-cidr 203.0.113.7/32   # Spark UIs to you
  spark-openstack launch -c disks -s 4 --data-dir /srv/disk1 --data-dir /srv/disk2

Nothing is created until every input checks out against the cloud (names, keypair vs
identity file, quotas, and flavors with room for the daemons the image runs). If anything fails afterwards, or you press Ctrl-C, everything
this launch made is deleted again (unless --keep-on-failure).

SSH is open to --allowed-cidr only. --open-ui-cidr opens the Spark UIs only; YARN's and
HDFS's web ports act on anonymous requests and open only with --open-unsafe-ui-cidr.
`spark-openstack login -c NAME -L` reaches every UI through SSH instead.""")
@click.option("-c", "--cluster", "cluster", metavar="NAME", required=True,
              help="Cluster name (a-z, 0-9, '-'; starts with a letter; <= 40 chars).")
@launch_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def launch(app: AppContext, cluster, as_json, services, **flags):
    """Boot a master and N workers, wait until SSH works on all, then deploy."""
    from . import launch
    spec = _launch_spec(app, cluster_name=cluster, services=services, flags=flags)
    provider = app.provider
    with RichProgress(title=f"launch {spec.cluster_name}") as progress:
        result = launch.launch(provider=provider, spec=spec, progress=progress)
    if as_json:
        stdout.print_json(json.dumps(result.to_dict()))
        return
    _print_launch_summary(result)


def _print_launch_summary(result) -> None:
    facts = result.facts
    table = Table(title=f"cluster {facts.cluster_name} is up", show_header=False,
                  title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("master", f"{facts.master.name}  {facts.master.address}"
                  + (f"  (private {facts.master.private_ip})" if facts.master.public_ip else ""))
    table.add_row("workers", ", ".join(f"{w.name} {w.private_ip}" for w in facts.workers))
    table.add_row("timings", "  ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
                  + f"  (total {sum(result.timings.values()):.1f}s)")
    table.add_row("api requests", str(result.requests))
    name = facts.cluster_name
    table.add_row("next", f"spark-openstack login -c {name}\n"
                          f"spark-openstack login -c {name} -L   # web UIs on localhost\n"
                          f"spark-openstack describe -c {name}\n"
                          f"spark-openstack destroy -c {name}")
    stdout.print(table)
    deployed = result.to_dict().get("deploy") or {}
    for line in deployed.get("health", []):
        stdout.print(line, markup=False)     # "[ok]" is no markup tag
    for label, url in (deployed.get("urls") or {}).items():
        stdout.print(f"{label}: {url}  (reach it with `spark-openstack login -c {name} -L`)")
    for message in deployed.get("messages", []):
        stdout.print(message, markup=False)
    if "jupyter" in (deployed.get("services") or ()):
        stdout.print(_NOTEBOOK_NEXT.format(name=name), markup=False)


#: What launch/deploy say when the cluster runs Jupyter.
_NOTEBOOK_NEXT = ("Jupyter: `spark-openstack notebook -c {name}` opens a tunnel and prints "
                  "the URL with its token (port 8888 is not open to the network)")


# --------------------------------------------------------------------------- deploy

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack deploy -c demo                 # re-deploy: configs, start, health
  spark-openstack launch -c lab -s 2 --no-deploy && spark-openstack deploy -c lab
  spark-openstack deploy -c lab --no-start       # prepare nodes + fab; start with fab
  spark-openstack deploy -c lab --jupyter        # add JupyterLab on the master
""")
@cluster_option
@identity_option()
@click.option("--services", metavar="LIST",
              help=f"Comma-separated subset of {','.join(KNOWN_SERVICES)} (default: the "
                   "cluster's).")
@click.option("--start/--no-start", default=True,
              help="Start the services and check health (default), or only configure the "
                   "nodes and install `fab` on the master.")
@click.option("--jupyter", is_flag=True,
              help="Add JupyterLab on the master to what the cluster runs (its image must "
                   "come from `create-image --jupyter`).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def deploy(app: AppContext, cluster, identity_file, services, start, jupyter, as_json):
    """(Re)deploy an existing cluster: configs, HDFS/YARN/Spark, health.

    Idempotent: never formats a NameNode that holds data, keeps the cluster's Spark
    secret, leaves running daemons running.
    """
    from . import launch
    validate_cluster_name(cluster)
    wanted = _service_list(services)
    with RichProgress(title=f"deploy {cluster}") as progress:
        result = launch.deploy_existing(
            provider=app.provider, cluster=cluster,
            identity_file=identity_file,
            services=wanted, start=start, progress=progress, with_jupyter=jupyter)
    summary = launch.deploy_summary(result)
    if as_json:
        stdout.print_json(json.dumps(summary))
        return
    for line in summary["health"]:
        stdout.print(line, markup=False)
    for label, url in summary["urls"].items():
        stdout.print(f"{label}: {url}  (reach it with `spark-openstack login -c {cluster} -L`)")
    for message in summary["messages"]:
        stdout.print(message, markup=False)
    if "jupyter" in summary["services"]:
        stdout.print(_NOTEBOOK_NEXT.format(name=cluster), markup=False)


# --------------------------------------------------------------------------- configure-cluster

@cli.command(name="configure-cluster", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack configure-cluster -c demo --conf spark.executor.cores=1 \\
      --conf spark.sql.shuffle.partitions=16
  spark-openstack configure-cluster -c demo --hadoop-conf hdfs-site:dfs.replication=1
  spark-openstack configure-cluster -c demo --unset spark.sql.shuffle.partitions \\
      --unset hdfs-site:dfs.replication
  spark-openstack configure-cluster -c demo --show [--json]

The settings are kept with the cluster (in the master's facts file) and re-applied on
every re-render: deploy, add-workers, start. What reads a changed file is restarted now:
Spark for --conf, HDFS for hdfs-site, YARN for yarn-site/mapred-site, both for
core-site. Restarting Spark ends running applications, so it is refused while some run
unless --restart-running. The same settings can be given at launch (--conf,
--hadoop-conf).""")
@cluster_option
@click.option("--conf", "conf", multiple=True, metavar="KEY=VALUE",
              help="Set a Spark property (repeatable); spark.* only, the secret and "
                   "encryption settings cannot be changed.")
@click.option("--hadoop-conf", "hadoop_conf", multiple=True, metavar="FILE:KEY=VALUE",
              help="Set a Hadoop property in core-site, hdfs-site, yarn-site, "
                   "mapred-site or capacity-scheduler (repeatable).")
@click.option("--unset", multiple=True, metavar="KEY|FILE:KEY",
              help="Remove a setting made earlier (repeatable): a Spark key, or FILE:KEY.")
@click.option("--show", is_flag=True, help="Print the cluster's own settings and exit.")
@click.option("--restart-running", is_flag=True,
              help="Restart Spark even while applications run (they end).")
@identity_option()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def configure_cluster(app: AppContext, cluster, conf, hadoop_conf, unset, show,
                      restart_running, identity_file, as_json):
    """Change a running cluster's Spark/Hadoop settings and restart what reads them."""
    from . import clusterconf
    from .config import parse_hadoop_conf, parse_spark_conf
    validate_cluster_name(cluster)
    if show:
        if conf or hadoop_conf or unset:
            raise errors.UsageError("--show prints the settings; it cannot change them",
                                    hint="drop --show, or the --conf/--hadoop-conf/--unset")
        settings = clusterconf.show_settings(provider=app.provider, cluster=cluster,
                                             identity_file=identity_file)
        if as_json:
            stdout.print_json(json.dumps(settings))
            return
        lines = [f"{k} = {v}" for k, v in settings["spark"].items()]
        lines += [f"{f}: {k} = {v}" for f, kv in settings["hadoop"].items()
                  for k, v in kv.items()]
        stdout.print("\n".join(lines) if lines else
                     f"cluster {cluster!r} has no settings of its own", markup=False)
        return
    spark_conf = parse_spark_conf(conf)
    hadoop_settings = parse_hadoop_conf(hadoop_conf)
    if not (spark_conf or hadoop_settings or unset):
        raise errors.UsageError("nothing to change",
                                hint="pass --conf, --hadoop-conf or --unset (or --show)")
    with RichProgress(title=f"configure-cluster {cluster}") as progress:
        result = clusterconf.configure_cluster(
            provider=app.provider, cluster=cluster, identity_file=identity_file,
            spark_conf=spark_conf, hadoop_conf=hadoop_settings, unset=unset,
            restart_running=restart_running, progress=progress)
    if as_json:
        stdout.print_json(json.dumps(result))
        return 0 if result.get("healthy", True) else 1
    if not result["changed"]:
        stdout.print(f"cluster {cluster!r} already has these settings; nothing to do")
        return 0
    for line in result["health"]:
        stdout.print(line, markup=False)
    restarted = ", ".join(result["restarted"]) or "nothing (no service reads them)"
    stdout.print(f"settings of {cluster!r} changed on every node; restarted: {restarted}",
                 markup=False)
    return 0 if result.get("healthy", True) else 1


# --------------------------------------------------------------------------- run-command / copy-file

def _open_access(app: AppContext, cluster: str, identity_file: str | None):
    from .inventory import open_cluster
    validate_cluster_name(cluster)
    return open_cluster(provider=app.provider, cluster=cluster,
                        identity_file=identity_file)


def _print_prefixed(name: str, text: str, *, console: Console) -> None:
    for line in text.splitlines():
        console.print(f"[{name}] {line}", markup=False, highlight=False)


@cli.command(name="run-command", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack run-command -c demo -- uname -a
  spark-openstack run-command -c demo --master-only -- 'hdfs dfs -ls / 2>&1'
  spark-openstack run-command -c demo --node 1 --node demo-worker-2 -- df -h /
  spark-openstack run-command -c demo -- sudo apt-get install -y htop
  spark-openstack run-command -c demo --json -- nproc | jq -r '.[] | .node + " " + .stdout'
""")
@cluster_option
@click.option("--master-only", is_flag=True, help="Only on the master.")
@click.option("--node", "node_names", multiple=True, metavar="NODE",
              help="Only on this node (a name, or a worker's number); repeatable.")
@identity_option()
@click.option("--timeout", type=click.IntRange(min=1), default=3600, show_default=True,
              metavar="SECONDS",
              help="Limit of the command on each node.")
@click.option("--json", "as_json", is_flag=True,
              help="Print [{node, exit, stdout, stderr}] as JSON on stdout.")
@click.argument("command", nargs=-1, required=True)
@pass_app
def run_command(app: AppContext, cluster, master_only, node_names, identity_file, timeout,
                as_json, command):
    """Run a shell command on every node (or some) at once, as the image's login user.

    Each node's output is printed as it finishes, every line prefixed with [node]
    (its stderr on stderr). The words after `--` are joined with spaces, as ssh does.
    Exits 1 naming the nodes where the command exited non-zero or could not run.
    """
    from . import remote
    text = " ".join(command)
    if not text.strip():
        raise errors.UsageError("no command given", hint="put it after `--`")
    if master_only and node_names:
        raise errors.UsageError("--master-only and --node exclude each other")
    access = _open_access(app, cluster, identity_file)

    def show(name, result):
        if as_json:
            return
        _print_prefixed(name, result.stdout, console=stdout)
        _print_prefixed(name, result.stderr, console=stderr)
        if result.exited != 0:
            stderr.print(f"[{name}] exited {result.exited}", markup=False, highlight=False)
    run = remote.run_command_report(access=access, command=text, nodes=node_names,
                                    master_only=master_only, timeout=timeout,
                                    on_output=show)
    if as_json:
        stdout.print_json(json.dumps(run.to_rows()))
    else:
        for name, msg in run.unreachable.items():
            stderr.print(f"[{name}] not run: {msg}", markup=False, highlight=False)
    if run.failure() is not None:
        raise run.failure()


@cli.command(name="copy-file", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack copy-file -c demo ./job.jar /tmp/job.jar
  spark-openstack copy-file -c demo ./conf-dir conf        # a directory: lands as ~/conf
  spark-openstack copy-file -c demo data.csv /tmp/in/      # ends in /: /tmp/in/data.csv
  spark-openstack copy-file -c demo --master-only notebook.ipynb ./    # into the home
""")
@cluster_option
@click.option("--master-only", is_flag=True, help="Only to the master.")
@click.option("--node", "node_names", multiple=True, metavar="NODE",
              help="Only to this node (a name, or a worker's number); repeatable.")
@identity_option()
@click.option("--json", "as_json", is_flag=True, help="Print where it landed as JSON.")
@click.argument("local", type=click.Path(exists=True, file_okay=True, dir_okay=True,
                                         path_type=Path))
@click.argument("remote_path", metavar="REMOTE")
@pass_app
def copy_file(app: AppContext, cluster, master_only, node_names, identity_file, as_json,
              local, remote_path):
    """Copy a local file or directory to every node (or some), as the login user.

    It is uploaded once, to the master, and forwarded from there inside the cluster.
    A file lands as REMOTE (inside it when REMOTE is a directory or ends in /); a
    directory lands as REMOTE with its contents (merged into an existing one), or
    inside it when REMOTE ends in /. A relative REMOTE (or a quoted '~/...') is in the
    login user's home.
    """
    from . import remote
    if master_only and node_names:
        raise errors.UsageError("--master-only and --node exclude each other")
    access = _open_access(app, cluster, identity_file)
    report = remote.copy_file(
        access=access, local=local, remote=remote_path, nodes=node_names,
        master_only=master_only,
        on_node=None if as_json else (
            lambda name, path: stdout.print(f"[{name}] {path}", markup=False,
                                            highlight=False)))
    if as_json:
        stdout.print_json(json.dumps({
            "local": report.local, "remote": report.remote, "directory": report.is_dir,
            "archive_bytes": report.archive_bytes, "seconds": round(report.seconds, 2),
            "nodes": [{"node": n, "path": p} for n, p in report.landed.items()]}))
        return
    stderr.print(f"copied {'directory' if report.is_dir else 'file'} {report.local} to "
                 f"{len(report.landed)} node(s) in {report.seconds:.1f}s "
                 f"({report.archive_bytes} bytes sent once, to the master)")


# --------------------------------------------------------------------------- jobs

#: submit/run: options stop at APP; every word after it is the app's (``--input x`` too).
_JOB_CONTEXT = {**CONTEXT_SETTINGS, "allow_interspersed_args": False}

_SUBMIT_FILE_OPTIONS = [
    click.option("--py-files", "py_files", multiple=True, metavar="F,...",
                 help="Python files/zips for the app (uploaded with it; repeatable)."),
    click.option("--files", "files", multiple=True, metavar="F,...",
                 help="Files put in every executor's (and the driver's) working directory."),
    click.option("--jars", "jars", multiple=True, metavar="F,...",
                 help="Jars for the driver and executor classpaths."),
    click.option("--class", "main_class", metavar="CLASS", help="Main class of a jar app."),
    click.option("--master-url", type=click.Choice(["standalone", "yarn"]), default=None,
                 help="Where the app runs (default: YARN when the cluster runs it, else "
                      "Spark standalone)."),
]


def _submit_file_options(func):
    for option in reversed(_SUBMIT_FILE_OPTIONS):
        func = option(func)
    return func


def _write_output(data: bytes) -> None:
    """The driver's bytes as they come, unchanged (never through rich)."""
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _end_live(progress: RichProgress) -> None:
    """From here on plain lines: the driver's output is about to share the terminal."""
    if progress.live is not None:
        progress.live.update(progress._render())
        progress.live.__exit__(None, None, None)
        progress.live = None


def _job_hints(cluster: str, job_id: str) -> None:
    stderr.print(f"job {job_id} runs on. Later:\n"
                 f"  spark-openstack jobs -c {cluster}\n"
                 f"  spark-openstack logs -c {cluster} {job_id} --follow\n"
                 f"  spark-openstack kill -c {cluster} {job_id}", markup=False)


def _job_ended(job) -> int:
    """Say how the job ended (stderr); its exit code for ours."""
    took = f" after {job.duration_s:.0f}s" if job.duration_s is not None else ""
    if job.state == "killed":
        stderr.print(f"job {job.id} was killed{took}", markup=False)
        return 143
    if job.exit_code is None:
        stderr.print(f"job {job.id} failed{took}: {job.note or 'no exit code'}", markup=False)
        return 1
    stderr.print(f"job {job.id} {job.state} (exit {job.exit_code}){took}", markup=False)
    return job.exit_code


@cli.command(context_settings=_JOB_CONTEXT, epilog="""\b
Examples:
  spark-openstack submit -c demo job.py                        # attached: output, exit code
  spark-openstack submit -c demo --conf spark.executor.memory=2g \\
      --py-files lib.zip --files lookup.csv job.py --day 2026-11-24
  JOB=$(spark-openstack submit -c demo --detach job.py)       # returns at once
  spark-openstack submit -c demo --class org.example.Main app.jar in out

The app and its files go to a per-job directory on the master
(/var/lib/spark-openstack/jobs/ID/), and spark-submit runs there as hduser, detached
from your SSH session: a dropped connection or Ctrl-C does not stop it. The app
finds $SPARK_OPENSTACK_OUTPUT_DIR (the job's output folder) in its environment.""")
@cluster_option
@identity_option()
@click.option("--conf", "conf", multiple=True, metavar="KEY=VALUE",
              help="A Spark property for this job (repeatable), e.g. "
                   "--conf spark.myapp.input=hdfs:///in.")
@_submit_file_options
@click.option("--detach", is_flag=True,
              help="Print the job id and return; the job runs on.")
@click.option("--resource-timeout", type=click.FloatRange(min=0), default=180,
              show_default=True, metavar="SECONDS",
              help="Attached: a job that gets no executor (or stays ACCEPTED in YARN) this "
                   "long is killed, and what it asked for is shown against what each "
                   "node offers (exit 3). 0 waits forever.")
@click.argument("application", metavar="APP")
@click.argument("app_args", metavar="[ARGS]...", nargs=-1, type=click.UNPROCESSED)
@pass_app
def submit(app: AppContext, cluster, identity_file, conf, py_files, files, jars, main_class,
           master_url, detach, resource_timeout, application, app_args):
    """Run a Spark app on the cluster: attached (its output, its exit code) or --detach.

    Ctrl-C while attached asks whether to kill the job (on a terminal); without a
    terminal the job is left running. An attached job that waits --resource-timeout
    seconds for resources is killed and the numbers are shown (`jobs` shows a waiting
    job as "running (waiting for resources)").
    """
    from . import jobs
    from .inventory import deployed_facts
    from .polling import shielded_cleanup
    sub = jobs.prepare(app=application, args=app_args, conf=conf, py_files=py_files,
                       files=files, jars=jars, main_class=main_class, master=master_url)
    access = _open_access(app, cluster, identity_file)
    access.require_active(what="submit to")
    runner = access.runner()
    try:
        facts = deployed_facts(runner=runner, facts=access.facts)
        job = jobs.submit(runner=runner, facts=facts, sub=sub)
        if detach:
            stdout.print(job.id, markup=False, highlight=False)
            _job_hints(cluster, job.id)
            return 0
        stderr.print(f"job {job.id} started on {facts.master.name}; its driver output "
                     "follows (Ctrl-C: detach or kill)", markup=False)
        try:
            final = jobs.follow(runner=runner, facts=facts, job_id=job.id,
                                on_output=_write_output,
                                resource_timeout=resource_timeout or None)
        except (KeyboardInterrupt, errors.Interrupted):
            kill_it = False
            if sys.stdin.isatty():
                try:
                    kill_it = click.confirm(f"\nkill job {job.id}?", default=False,
                                            err=True)
                except (click.exceptions.Abort, EOFError, KeyboardInterrupt):
                    kill_it = False
            if not kill_it:
                _job_hints(cluster, job.id)
                return 130
            with shielded_cleanup():
                killer = access.runner()      # the interrupted call may hold the old one
                try:
                    ended, now = jobs.kill(runner=killer, facts=facts, job_id=job.id)
                finally:
                    killer.close()
            stderr.print(f"job {job.id} killed" if now else
                         f"job {job.id} had already ended ({ended.state})", markup=False)
            return 130
        return _job_ended(final)
    finally:
        runner.close()


@cli.command(name="jobs", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack jobs -c demo
  spark-openstack jobs -c demo --json | jq -r '.[] | select(.state=="running") | .id'""")
@cluster_option
@identity_option()
@click.option("--json", "as_json", is_flag=True,
              help="Print [{id, app, state, exit_code, started, duration_s}] as JSON.")
@pass_app
def jobs_(app: AppContext, cluster, identity_file, as_json):
    """List the cluster's jobs (as the master keeps them): running, finished, failed,
    killed."""
    from . import jobs
    access = _open_access(app, cluster, identity_file)
    runner = access.runner()
    try:
        found = jobs.list_jobs(runner=runner, facts=access.facts)
    finally:
        runner.close()
    if as_json:
        stdout.print_json(json.dumps([j.to_dict() for j in found]))
        return
    if not found:
        stdout.print(f"no jobs on cluster {cluster!r} yet")
        return
    table = Table(title=f"jobs on {cluster}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "app", "state", "exit", "started", "duration"):
        table.add_column(column, no_wrap=column != "app", min_width=8 if column == "app" else None)
    colors = {"running": "cyan", "finished": "green", "failed": "red", "killed": "yellow"}
    for job in found:
        table.add_row(job.id, Path(job.app).name or job.app,
                      Text(job.state + (f" ({job.note})" if job.note else ""),
                           style=colors.get(job.state, "")),
                      "" if job.exit_code is None else str(job.exit_code),
                      job.started.replace("T", " ")[:16],
                      "" if job.duration_s is None else f"{job.duration_s:.0f}s")
    stdout.print(table)


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack logs -c demo 20261124-231501-ab12
  spark-openstack logs -c demo 20261124-231501-ab12 --follow   # until the job ends""")
@cluster_option
@identity_option()
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@click.argument("job_id", metavar="JOB")
@pass_app
def logs(app: AppContext, cluster, identity_file, follow, job_id):
    """Print a job's driver log (spark-submit's stdout and stderr)."""
    from . import jobs
    jobs.check_job_id(job_id)
    access = _open_access(app, cluster, identity_file)
    runner = access.runner()
    try:
        job = jobs.follow(runner=runner, facts=access.facts, job_id=job_id,
                          on_output=_write_output, until_end=follow)
    finally:
        runner.close()
    if follow:
        _job_ended(job)


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack kill -c demo 20261124-231501-ab12""")
@cluster_option
@identity_option()
@click.argument("job_id", metavar="JOB")
@pass_app
def kill(app: AppContext, cluster, identity_file, job_id):
    """Stop a running job (SIGTERM to its driver, SIGKILL after a grace period)."""
    from . import jobs
    jobs.check_job_id(job_id)
    access = _open_access(app, cluster, identity_file)
    runner = access.runner()
    try:
        job, now = jobs.kill(runner=runner, facts=access.facts, job_id=job_id)
    finally:
        runner.close()
    if now:
        stdout.print(f"killed job {job_id}", markup=False)
    else:
        stdout.print(f"job {job_id} had already ended ({job.state}"
                     + (f", exit {job.exit_code}" if job.exit_code is not None else "")
                     + "); nothing to do", markup=False)


@cli.command(name="run", context_settings=_JOB_CONTEXT, epilog="""\b
Examples:
  spark-openstack run -s 2 -k mykey -i spark-img --allowed-cidr 203.0.113.7/32 \\
      --output ./results job.py --day 2026-11-24
  spark-openstack run -c nightly -s 4 --conf spark.executor.memory=2g --keep job.py

Launches a cluster, submits APP attached, copies the job's output folder
($SPARK_OPENSTACK_OUTPUT_DIR on the master) and driver.log into --output, and
destroys the cluster: on success, on failure, on Ctrl-C and SIGTERM, unless --keep.
Exits with the app's exit code (130 when interrupted). --conf here is the cluster's
(and so the job's) Spark setting.""")
@click.option("-c", "--cluster", "cluster", metavar="NAME", default=None,
              help="Cluster name (default: run-XXXXXX).")
@launch_options
@_submit_file_options
@click.option("--output", "output", metavar="DIR", type=click.Path(path_type=Path),
              help="Where the job's output and driver.log land (default "
                   "./run-output/CLUSTER); must be new or empty.")
@click.option("--keep", is_flag=True, help="Leave the cluster up afterwards.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON on stdout (the driver output goes to stderr).")
@click.argument("application", metavar="APP")
@click.argument("app_args", metavar="[ARGS]...", nargs=-1, type=click.UNPROCESSED)
@pass_app
def run(app: AppContext, cluster, services, py_files, files, jars, main_class, master_url,
        output, keep, as_json, application, app_args, **flags):
    """One job on a cluster of its own: launch, submit, fetch the output, destroy."""
    import secrets
    from . import jobs, oneshot
    cluster = cluster or f"run-{secrets.token_hex(3)}"
    sub = jobs.prepare(app=application, args=app_args, py_files=py_files, files=files,
                       jars=jars, main_class=main_class, master=master_url)
    spec = _launch_spec(app, cluster_name=cluster, services=services, flags=flags)
    output = oneshot.check_output_dir(output or Path("run-output") / cluster)
    provider = app.provider

    def write(data: bytes) -> None:
        if as_json:
            sys.stderr.buffer.write(data)
            sys.stderr.buffer.flush()
        else:
            _write_output(data)
    with RichProgress(title=f"run {cluster}") as progress:
        result = oneshot.run_job(
            provider=provider, spec=spec, sub=sub, output_dir=output, keep=keep,
            progress=progress, on_output=write,
            on_event=lambda text: stderr.print(text, markup=False, highlight=False),
            on_launched=lambda launched: _end_live(progress))
    code = _job_ended(result.job) if result.job is not None else result.exit_code
    if as_json:
        stdout.print_json(json.dumps(result.to_dict()))
    elif result.fetched:
        stderr.print(f"output in {result.output_dir}: " + ", ".join(result.fetched),
                     markup=False)
    return code


# --------------------------------------------------------------------------- destroy

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack destroy -c demo          # asks first
  spark-openstack destroy -c demo --yes    # for scripts; fine to run twice""")
@cluster_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print what was deleted as JSON.")
@pass_app
def destroy(app: AppContext, cluster, yes, as_json):
    """Delete every server, IP, group and volume of a cluster (found in the cloud)."""
    from . import ledger
    validate_cluster_name(cluster)
    provider = app.provider
    servers = provider.cluster_servers(cluster)
    if not yes:
        what = ", ".join(sorted(s.name for s in servers)) or "no servers (leftovers only)"
        if not sys.stdin.isatty():
            raise errors.UsageError(f"refusing to destroy {cluster!r} without confirmation",
                                    hint="add --yes when running non-interactively")
        click.confirm(f"Destroy cluster {cluster!r}: {what}?", abort=True, err=True)
    with RichProgress(title=f"destroy {cluster}") as progress:
        progress.phase_started("delete")
        t0 = time.monotonic()
        result = ledger.destroy(provider=provider, cluster=cluster, servers=servers,
                                progress=progress)
        progress.phase_done("delete", time.monotonic() - t0)
    if as_json:
        stdout.print_json(json.dumps(result))
    elif not any(result.values()):
        stdout.print(f"nothing left of cluster {cluster!r}; nothing to do")
    else:
        stdout.print(f"destroyed cluster {cluster!r}: " + ", ".join(
            f"{v} {k.replace('_', ' ')}" for k, v in result.items() if v))


# --------------------------------------------------------------------------- scale

def _print_health_lines(health: dict) -> None:
    for item in health.values():
        stdout.print(item.line() if hasattr(item, "line") else str(item), markup=False)


@cli.command(name="add-workers", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack add-workers -c demo -n 2                 # like the cluster's workers
  spark-openstack add-workers -c demo -n 1 --flavor m1.large

New workers boot from the cluster's own image, network, security group, server group
and keypair; every node's /etc/hosts, workers files and configs are rewritten and the
new DataNodes/NodeManagers/Spark workers started and health-checked. On a failure or
Ctrl-C only the new servers are deleted; the cluster keeps serving throughout.""")
@cluster_option
@click.option("-n", "--count", type=int, required=True, metavar="K",
              help="How many workers to add (>= 1).")
@click.option("--flavor", metavar="FLAVOR",
              help="Flavor of the new workers (default: that of the existing workers).")
@identity_option()
@click.option("--timeout", type=float, default=900, show_default=True, metavar="SECONDS",
              help="Deadline for the new servers to boot and answer SSH.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def add_workers(app: AppContext, cluster, count, flavor, identity_file, timeout, as_json):
    """Grow a running cluster by K workers."""
    from . import scale
    validate_cluster_name(cluster)
    with RichProgress(title=f"add-workers {cluster}") as progress:
        result = scale.add_workers(
            provider=app.provider, cluster=cluster, count=count, flavor=flavor,
            identity_file=identity_file,
            timeout=timeout, progress=progress)
    health = result.pop("health", {})
    if as_json:
        result["health"] = [h.line() for h in health.values()]
        result["healthy"] = all(h.ok for h in health.values())
        stdout.print_json(json.dumps(result))
        return
    stdout.print(f"added {', '.join(result['added'])} to {cluster}: "
                 f"{len(result['workers'])} worker(s) now")
    _print_health_lines(health)


@cli.command(name="remove-workers", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack remove-workers -c demo -n 1 --yes            # the highest-numbered one
  spark-openstack remove-workers -c demo --node demo-worker-2  # asks first
  spark-openstack remove-workers -c demo --node 2 --node 3 --yes

HDFS first copies the workers' blocks elsewhere (decommission through dfs.hosts.exclude,
progress in blocks); only when the NameNode reports them Decommissioned are their
daemons stopped and the servers deleted. Ctrl-C during the decommission reverts it.
Refused: the master, unknown names, no worker left, fewer workers left than HDFS needs
for its replicas (unless --lower-replication).""")
@cluster_option
@click.option("-n", "--count", type=int, metavar="K",
              help="Remove the K highest-numbered workers.")
@click.option("--node", "nodes", multiple=True, metavar="NODE",
              help="A worker to remove, by name or number (repeatable).")
@click.option("--lower-replication", is_flag=True,
              help="When fewer workers would remain than files' replication, set every "
                   "file's replication to the number left first.")
@click.option("--timeout", type=float, default=3600, show_default=True, metavar="SECONDS",
              help="Deadline for the decommission (copying the blocks).")
@identity_option()
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def remove_workers(app: AppContext, cluster, count, nodes, lower_replication, timeout,
                   identity_file, yes, as_json):
    """Shrink a running cluster, without losing HDFS data."""
    from . import inventory, scale
    validate_cluster_name(cluster)
    identity = identity_file
    if not yes:
        found = inventory.open_cluster(provider=app.provider, cluster=cluster,
                                        identity_file=identity)
        victims = scale.choose_victims(access=found, count=count, nodes=nodes)
        if not sys.stdin.isatty():
            raise errors.UsageError(f"refusing to remove workers of {cluster!r} without "
                                    "confirmation", hint="add --yes when running "
                                                         "non-interactively")
        click.confirm(f"Decommission and delete {', '.join(v.name for v in victims)}?",
                      abort=True, err=True)
    with RichProgress(title=f"remove-workers {cluster}") as progress:
        result = scale.remove_workers(
            provider=app.provider, cluster=cluster, count=count, nodes=nodes,
            identity_file=identity, lower_replication=lower_replication, timeout=timeout,
            progress=progress)
    if as_json:
        stdout.print_json(json.dumps(result))
        return
    stdout.print(f"removed {', '.join(result['removed'])} from {cluster}: "
                 f"{len(result['workers'])} worker(s) left")
    for note in result["notes"]:
        stdout.print(note, markup=False)


# --------------------------------------------------------------------------- describe / list

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack describe -c demo
  spark-openstack describe -c demo --json | jq -r .master.public_ip""")
@cluster_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def describe(app: AppContext, cluster, as_json):
    """Show a cluster's nodes, addresses and state, read from the cloud."""
    from . import inventory
    validate_cluster_name(cluster)
    info = inventory.describe(provider=app.provider, cluster=cluster)
    if as_json:
        stdout.print_json(json.dumps(info))
        return
    table = Table(title=f"cluster {cluster}: {info['state']}", title_justify="left")
    for col in ("node", "role", "status", "private ip", "public ip", "vCPU", "RAM MB"):
        table.add_column(col)
    for node in [info["master"], *info["workers"]]:
        table.add_row(node["name"], node["role"], node["status"], node["private_ip"],
                      node["public_ip"] or "", str(node["vcpus"]), str(node["ram_mb"]))
    stdout.print(table)
    stdout.print(f"ssh user {info['ssh_user']}; services {','.join(info['services'])}; "
                 f"security group {info['security_group']}; expires "
                 f"{info['expires']['text']}")


@cli.command(name="list", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def list_(app: AppContext, as_json):
    """List the project's clusters (from server metadata)."""
    from . import inventory
    clusters = inventory.list_clusters(provider=app.provider)
    if as_json:
        stdout.print_json(json.dumps(clusters))
        return
    if not clusters:
        stdout.print("no clusters in this project")
        return
    table = Table()
    for col in ("cluster", "workers", "state", "master", "expires"):
        table.add_column(col)
    for c in clusters:
        expires = c["expires"]["text"]
        table.add_row(c["cluster"], str(c["workers"]), c["state"], c["master"] or "",
                      Text(expires, style="bold red") if c["expires"]["expired"] else expires)
    stdout.print(table)


# --------------------------------------------------------------------------- reap

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack reap --dry-run          # which clusters are past their deadline
  spark-openstack reap                    # destroy them
  */10 * * * * OS_CLOUD=mycloud spark-openstack reap --json >> ~/reap.log 2>&1   # cron

Only clusters launched with --expires-in have a deadline (in their servers' metadata,
see `list`); the others are never touched. Each expired cluster is destroyed as
`destroy` does it, a few at once; running it again finishes an interrupted reap.
Exit status: 0 when every expired cluster is gone (or none was found), 1 when one could
not be destroyed (named with the reason).""")
@click.option("--dry-run", is_flag=True, help="Only list the expired clusters.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def reap(app: AppContext, dry_run, as_json):
    """Destroy every cluster of the project whose --expires-in deadline has passed."""
    from . import reap as reap_mod
    with RichProgress(title="reap") as progress:
        result = reap_mod.reap(provider=app.provider, dry_run=dry_run, progress=progress)
    code = 1 if result["failed"] else 0
    if as_json:
        stdout.print_json(json.dumps(result))
        return code
    if not result["expired"]:
        stdout.print(f"no expired cluster ({result['kept']} other cluster(s) left alone)")
        return code
    for item in result["expired"]:
        if dry_run:
            verdict = "would be destroyed"
        elif item["cluster"] in result["failed"]:
            verdict = f"NOT destroyed: {result['failed'][item['cluster']]}"
        else:
            verdict = "destroyed"
        stdout.print(f"{item['cluster']}: {item['text']}: {verdict}", markup=False)
    return code


# --------------------------------------------------------------------------- status / stop / start

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack status -c demo
  spark-openstack status -c demo --json | jq .services.hdfs.missing
  spark-openstack status -c demo > /dev/null && echo healthy

Servers' states come from the cloud; HDFS live DataNodes, YARN running NodeManagers and
Spark ALIVE workers are read on the master and compared with the cluster's workers,
naming the missing ones. A stopped cluster is reported without contacting it.

Exit status: 0 when every server is ACTIVE and every service has all its workers;
1 otherwise (the report is printed all the same); 2 for bad input (unknown cluster).""")
@cluster_option
@identity_option()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def status(app: AppContext, cluster, identity_file, as_json):
    """Show each server's state and each service's health (exit 1 if unhealthy)."""
    from . import power
    validate_cluster_name(cluster)
    report = power.cluster_status(
        provider=app.provider, cluster=cluster,
        identity_file=identity_file)
    if as_json:
        stdout.print_json(json.dumps(report))
        return 0 if report["healthy"] else 1
    verdict = "healthy" if report["healthy"] else "NOT healthy"
    table = Table(title=f"cluster {cluster}: {report['state']}, {verdict}",
                  title_justify="left")
    for col in ("node", "role", "status", "private ip", "public ip"):
        table.add_column(col)
    for node in report["nodes"]:
        table.add_row(node["name"], node["role"], node["status"], node["private_ip"],
                      node["public_ip"] or "")
    stdout.print(table)
    for service in report["services"].values():
        stdout.print(service["line"], markup=False)
    if report.get("note"):
        stdout.print(f"note: {report['note']}", markup=False)
    return 0 if report["healthy"] else 1


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack stop -c demo
  spark-openstack stop -c demo --json

Spark, YARN and then HDFS are stopped on the nodes (so HDFS closes cleanly), then every
server is stopped (Nova stop) and waited for until SHUTOFF. Disks, addresses and HDFS
data stay (what a stopped server still costs depends on the cloud); `start` brings the
cluster back. Stopping a stopped cluster does nothing.""")
@cluster_option
@identity_option()
@click.option("--timeout", type=int, metavar="SECONDS", default=600, show_default=True,
              help="Limit for the servers to stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def stop(app: AppContext, cluster, identity_file, timeout, as_json):
    """Stop the services in order, then every server; HDFS data is kept."""
    from . import power
    validate_cluster_name(cluster)
    with RichProgress(title=f"stop {cluster}") as progress:
        result = power.stop_cluster(
            provider=app.provider, cluster=cluster,
            identity_file=identity_file,
            progress=progress, timeout=timeout)
    if as_json:
        stdout.print_json(json.dumps(result))
        return
    for message in result["messages"]:
        stdout.print(message, markup=False)
    if result["already_stopped"]:
        stdout.print(f"cluster {cluster!r} is already stopped; nothing to do")
        return
    took = result["timings"]["total"]
    stdout.print(f"stopped cluster {cluster!r} in {took:.1f}s: services "
                 f"{', '.join(result['services_stopped']) or 'none'}; servers "
                 f"{', '.join(result['servers_stopped'])}. "
                 f"`spark-openstack start -c {cluster}` brings it back.")


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack start -c demo
  spark-openstack start -c demo --json | jq .healthy

Boots every stopped server, waits for SSH and cloud-init, re-writes every node's configs
from the cloud's current facts (addresses may have changed), then starts HDFS (waiting
for safe mode to end), YARN and Spark and checks their health. HDFS is never formatted
again and the cluster's Spark secret is kept. On a running, healthy cluster it does
nothing; a running one with a service down is deployed again.""")
@cluster_option
@identity_option()
@click.option("--timeout", type=int, metavar="SECONDS", default=600, show_default=True,
              help="Limit for the servers to start, and then for SSH on all of them.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def start(app: AppContext, cluster, identity_file, timeout, as_json):
    """Start a stopped cluster's servers and services, and check health."""
    from . import power
    validate_cluster_name(cluster)
    with RichProgress(title=f"start {cluster}") as progress:
        result = power.start_cluster(
            provider=app.provider, cluster=cluster,
            identity_file=identity_file,
            progress=progress, timeout=timeout)
    if as_json:
        stdout.print_json(json.dumps(result))
        return
    if result["already_running"]:
        stdout.print(f"cluster {cluster!r} is already running and healthy; nothing to do")
    for line in result.get("health", []):
        stdout.print(line, markup=False)
    deployed = result.get("deploy") or {}
    for label, url in (deployed.get("urls") or {}).items():
        stdout.print(f"{label}: {url}  (reach it with `spark-openstack login -c {cluster} -L`)")
    for message in [*result["messages"], *(deployed.get("messages") or [])]:
        stdout.print(message, markup=False)
    if "total" in result["timings"]:
        stdout.print(f"started cluster {cluster!r} in {result['timings']['total']:.1f}s")


# --------------------------------------------------------------------------- notebook

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack notebook -c demo                  # tunnel on localhost:8888; Ctrl-C ends it
  spark-openstack notebook -c demo --local-port 9999
  spark-openstack notebook -c demo --print-url      # only the URL (with its token)
  spark-openstack notebook -c demo --print-url --json

\b
Jupyter listens on the master's private address and wants its token; port 8888 is never
opened in the security group. This command runs `ssh -N -L PORT:MASTER:8888` to the
master (the user, key and pinned host keys of `login`) and prints the URL to open. Pick
the kernel "PySpark (cluster NAME)": `spark` and `sc` are ready in it, on YARN when the
cluster runs it, else on Spark standalone; each notebook takes at most half the workers'
cores, so several share the cluster. A cluster without Jupyter gets it with
`spark-openstack deploy -c NAME --jupyter`.""")
@cluster_option
@identity_option()
@click.option("--local-port", type=int, default=8888, show_default=True, metavar="N",
              help="Port on this machine the tunnel listens on (127.0.0.1 only).")
@click.option("--print-url", is_flag=True, help="Print the URL and exit (no tunnel).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {cluster, url, local_port, remote, token} as JSON.")
@pass_app
def notebook(app: AppContext, cluster, identity_file, local_port, print_url, as_json):
    """Open the cluster's Jupyter: an SSH tunnel and the URL with its token."""
    from . import inventory
    from . import notebook as notebook_mod
    access = _open_access(app, cluster, identity_file)
    access.require_active(what="open the notebook of")
    nb = notebook_mod.read_notebook(access=access, local_port=local_port)
    if print_url:
        if as_json:
            stdout.print_json(json.dumps(nb.to_dict()))
        else:
            stdout.print(nb.url, markup=False, soft_wrap=True)
        return
    if shutil.which("ssh") is None:
        raise errors.UsageError("no `ssh` program on PATH", hint="install OpenSSH's client")
    notebook_mod.check_port_free(local_port)
    argv = notebook_mod.tunnel_command(
        login_argv=inventory.login_command(facts=access.facts,
                                             key_filename=access.key_filename,
                                             known_hosts=access.known_hosts),
        notebook=nb)
    proc = notebook_mod.open_tunnel(argv=argv, notebook=nb)
    try:
        if as_json:
            stdout.print_json(json.dumps(nb.to_dict()))
        else:
            stdout.print(nb.url, markup=False, soft_wrap=True)
        sys.stdout.flush()
        stderr.print(f"tunnel open: localhost:{local_port} -> {nb.master_private_ip}:"
                     f"{nb.remote_port} on {access.facts.master.name}; Ctrl-C closes it")
        notebook_mod.wait_tunnel(proc)
    except KeyboardInterrupt:
        notebook_mod.close_tunnel(proc)
        stderr.print("tunnel closed")
        return
    finally:
        notebook_mod.close_tunnel(proc)


# --------------------------------------------------------------------------- login

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack login -c demo
  spark-openstack login -c demo -L            # then open http://localhost:8080
  spark-openstack login -c demo -- spark-submit --version
  spark-openstack login -c demo --print       # just show the ssh command""")
@cluster_option
@click.option("-L", "--forward-ui", is_flag=True,
              help=f"Forward the web UIs ({_ui_list(web_ui_ports())}; those of the services "
                   "the cluster runs) to localhost, through SSH.")
@identity_option()
@click.option("--ssh-user", metavar="USER", help="Override the user recorded at launch.")
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command instead.")
@click.argument("command", nargs=-1)
@pass_app
def login(app: AppContext, cluster, forward_ui, identity_file, ssh_user, print_only, command):
    """SSH to the master with the right user and key."""
    import shlex
    from . import inventory
    validate_cluster_name(cluster)
    if ssh_user is not None:
        validate_ssh_user(ssh_user)       # before the cloud is contacted
    plan = inventory.login_plan(provider=app.provider, cluster=cluster,
                                identity_file=identity_file, ssh_user=ssh_user,
                                forward_ui=forward_ui, command=command)
    if plan.note:
        stderr.print(f"note: {plan.note}", markup=False)
    if print_only:
        stdout.print(shlex.join(plan.argv), soft_wrap=True)
        return
    if shutil.which("ssh") is None:
        raise errors.UsageError("no `ssh` program on PATH", hint="install OpenSSH's client")
    if plan.ui_urls:
        stderr.print("web UIs: " + "  ".join(f"{n} {u}" for n, u in plan.ui_urls.items()))
    sys.stdout.flush()
    argv = plan.argv
    os.execvp("ssh", argv)


# --------------------------------------------------------------------------- create-image

@cli.command(name="create-image", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack create-image -n spark-4 --base-image debian-12 --flavor m1.small \\
      -k mykey --identity-file ~/.ssh/id_ed25519 --allowed-cidr 203.0.113.7/32
  spark-openstack create-image -n spark-only --base-image debian-12 --flavor m1.small \\
      -k mykey --allowed-cidr 10.213.0.1/32 --no-hadoop --mirror http://10.213.0.1:8099
      # the second one is the sandbox cloud: its mirror serves Spark only
  spark-openstack create-image -n spark-nb --base-image debian-12 -k mykey \\
      --allowed-cidr 203.0.113.7/32 --jupyter --python-packages numpy,pandas \\
      --python-constraints constraints.txt
      # Jupyter for `launch --jupyter`; numpy and pandas pinned by constraints.txt
  spark-openstack create-image -n spark-d13 --base-image debian-13-bare -k mykey \\
      --allowed-cidr 10.213.0.1/32 --mirror http://10.213.0.1:8099 \\
      --apt-proxy http://10.213.0.1:3142
      # a bare cloud image (no Java) on a cloud whose VMs have no internet: apt goes
      # through the proxy; Java is the release's OpenJDK (21 on Debian 13)

\b
Base images: Debian 12 and 13 (tested), Ubuntu 22.04 and 24.04 (expected to work):
any apt-based image with cloud-init. Java is kept when the image has it; otherwise the
release's OpenJDK is installed (Debian 12, Ubuntu: 17; Debian 13: 21).

\b
Python packages go into a venv at /opt/spark-openstack/python (never the system's
Python). Add packages later on a running cluster with run-command, e.g.
  spark-openstack run-command -c demo -- \\
      sudo /opt/spark-openstack/python/bin/pip install pyarrow""")
@click.option("-n", "--name", metavar="NAME", required=True, help="Name of the new image.")
@click.option("--base-image", metavar="IMAGE", help="Image to start the builder from.")
@click.option("--flavor", metavar="FLAVOR",
              help=f"Flavor of the builder server (default {IMAGE_DEFAULTS['flavor']}).")
@click.option("-k", "--keypair", metavar="NAME", help="Nova keypair for SSH to the builder.")
@click.option("--identity-file", metavar="PATH",
              help="Private key of the keypair (default: the matching one in ~/.ssh).")
@click.option("--spark-version", metavar="V",
              help=f"Spark release to install (default {IMAGE_DEFAULTS['spark_version']}).")
@click.option("--hadoop-version", metavar="V",
              help=f"Hadoop release to install (default {IMAGE_DEFAULTS['hadoop_version']}).")
@click.option("--no-hadoop", is_flag=True, default=None,
              help="Spark only, no Hadoop (the cluster then runs Spark standalone only).")
@click.option("--mirror", metavar="URL",
              help=f"Apache-layout download mirror (default {IMAGE_DEFAULTS['mirror']}); "
                   "every download is checked against its published .sha512.")
@click.option("--java-package", metavar="PKG",
              help="Debian package providing Java (default auto: none if the base image has "
                   "Java, else the OpenJDK of its release: 17 on Debian 12 and Ubuntu, 21 on "
                   "Debian 13). A package named here is installed in any case.")
@click.option("--apt-proxy", metavar="URL",
              help="HTTP proxy for apt on the builder, e.g. http://10.0.0.5:3142 "
                   "(apt-cacher-ng, squid): for clouds whose VMs have no internet. It stays in "
                   "the image as /etc/apt/apt.conf.d/80spark-openstack-proxy.")
@click.option("--python-packages", metavar="LIST",
              help="Comma-separated pip requirements (e.g. numpy==2.4.6,pandas), installed "
                   "into the image's Python environment /opt/spark-openstack/python: the "
                   "Python of drivers, executors and notebooks alike.")
@click.option("--python-constraints", metavar="FILE",
              help="A pip constraints file (NAME==VERSION lines) pinning what is installed, "
                   "dependencies included.")
@click.option("--pip-index-url", metavar="URL",
              help="Package index for pip on the builder (default PyPI), e.g. a mirror.")
@click.option("--pip-find-links", metavar="URL",
              help="A page or folder of wheels for pip; without --pip-index-url pip looks "
                   "only there (for builders without internet).")
@click.option("--jupyter", is_flag=True, default=None,
              help="Also install JupyterLab, ipykernel, nbconvert and supervisor (pinned), "
                   "for `launch --jupyter`.")
@click.option("--network", metavar="NET",
              help="Network of the builder (default: the project's only one).")
@click.option("--allowed-cidr", multiple=True, metavar="CIDR",
              help="Who may SSH to the builder (repeatable; required).")
@click.option("--floating-ip/--no-floating-ip", default=False,
              help="Reach the builder through a floating IP (default: its fixed IP).")
@click.option("--floating-ip-pool", metavar="NET",
              help="External network for the builder's floating IP (with --floating-ip).")
@click.option("--ssh-user", metavar="USER",
              help=f"Login user of the base image (default {IMAGE_DEFAULTS['ssh_user']}).")
@click.option("--timeout", type=int, metavar="SECONDS",
              help=f"Limit for the whole bake (default {IMAGE_DEFAULTS['timeout']}).")
@pass_app
def create_image(app: AppContext, name, python_packages, **flags):
    """Bake an image with Java, Spark (and Hadoop) installed by cloud-init."""
    from .keys import resolve_identity_file
    try:
        from . import image as image_mod
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.image":
            raise
        raise errors.UsageError("create-image is not available in this build",
                                hint="the image module is missing from the installation")
    if python_packages is not None:
        flags["python_packages"] = tuple(p.strip() for p in python_packages.split(",")
                                         if p.strip())
    spec = image_spec_from(app.resolve(flags, defaults=IMAGE_DEFAULTS), name=name)
    provider = app.provider
    keypair = provider.find_keypair(spec.keypair)
    key_filename = resolve_identity_file(identity_file=spec.identity_file, keypair=keypair)
    with RichProgress(title=f"create-image {name}") as progress:
        image_id = image_mod.create_image(conn_provider=provider, spec=spec,
                                          key_filename=key_filename, progress=progress)
    stdout.print(f"image {name} ready: {image_id}")


# --------------------------------------------------------------------------- batch

@cli.group(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch launch --prefix spark-nov --students class.csv --roster ./roster \\
      -s 1 -k trainer -i spark-img --allowed-cidr 192.0.2.0/24 --expires-in 8h
  spark-openstack batch status --prefix spark-nov
  spark-openstack batch run-command --prefix spark-nov -- 'hdfs dfs -put /data/set.csv .'
  spark-openstack batch destroy --prefix spark-nov --yes""")
def batch():
    """A batch of clusters for a class: one per student, a roster, bulk operations."""


@batch.command(name="launch", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch launch --prefix spark-nov --count 12 --roster ./roster \\
      -s 1 -k trainer -i spark-img --allowed-cidr 192.0.2.0/24 --expires-in 8h
  spark-openstack batch launch --prefix spark-nov --students class.csv --roster ./roster \\
      -s 2 --jupyter --parallel 6 ...

Clusters are PREFIX-01 .. PREFIX-K (K = --count, or one per line of --students FILE:
"name[,email]"). Nothing is created until every input checks out and ONE quota check for
all K clusters passes (the shortfall is named). Each cluster is a whole launch (all or
nothing), at most --parallel at once, staggered; a failed one is retried once.

Every student gets a fresh SSH key pair (ROSTER/keys/PREFIX-NN.key, mode 0600) that logs
in to their own cluster's master only, as the service user (hduser: spark-submit,
pyspark, hdfs work as they are; sudo only with --student-sudo). Your keypair (-k) still
logs in everywhere. Students connect from --allowed-cidr (repeatable: classroom networks).

The roster (roster.csv, roster.json, printable roster.html) lists every student whose
cluster passed its health check, with the commands to log in and to tunnel to the UIs
(and the Jupyter URL with its token, with --jupyter). Exit 1 when a student has no
healthy cluster: the roster names them.""")
@click.option("--prefix", required=True, metavar="P", help="Clusters are P-01 .. P-K.")
@click.option("--count", type=int, metavar="K", help="How many clusters (or --students).")
@click.option("--students", metavar="FILE", type=click.Path(dir_okay=False),
              help="One student per line: name[,email] (CSV); one cluster each.")
@click.option("--roster", "roster_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder for the roster and the keys.")
@click.option("--parallel", type=int, default=4, show_default=True, metavar="M",
              help="Clusters launched at once.")
@click.option("--student-sudo", is_flag=True, help="Let the student's login use sudo.")
@launch_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@pass_app
def batch_launch_command(app: AppContext, prefix, count, students, roster_dir, parallel,
                         student_sudo, as_json, services, **flags):
    """Launch one cluster per student and write the roster."""
    import dataclasses
    from . import batch as batch_mod
    seats = batch_mod.plan_seats(prefix=prefix, count=count,
                                 students=batch_mod.read_students(students) if students
                                 else None)
    spec = _launch_spec(app, cluster_name=seats[0].cluster, services=services, flags=flags)
    spec = dataclasses.replace(spec, login_sudo=student_sudo)
    with RichProgress(title=f"batch launch {prefix} ({len(seats)} clusters)") as progress:
        result = batch_mod.batch_launch(provider=app.provider, spec=spec, seats=seats,
                                        roster_dir=Path(roster_dir), parallel=parallel,
                                        progress=progress)
    if as_json:
        stdout.print_json(json.dumps(result))
        return 0 if result["ok"] else 1
    stdout.print(f"{result['healthy']}/{result['clusters']} clusters healthy in "
                 f"{result['seconds']:.0f}s ({result['api_requests']} API requests); roster: "
                 f"{result['roster']['roster.html']}", markup=False)
    for item in result["without_cluster"]:
        stdout.print(f"NO CLUSTER for {item['student']} ({item['cluster']}): "
                     f"{item['reason']}", markup=False)
    return 0 if result["ok"] else 1


@batch.command(name="status", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch status --prefix spark-nov
  spark-openstack batch status --prefix spark-nov --json | jq '.clusters[] | .healthy'

One server listing finds the clusters; their health is checked at once (as `status`
does, on each master). Exit 1 when any cluster is not healthy.""")
@click.option("--prefix", required=True, metavar="P")
@identity_option(whose="the trainer's keypair")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def batch_status_command(app: AppContext, prefix, identity_file, as_json):
    """Every cluster of the batch: servers, services, expiry, in one table."""
    from . import batch as batch_mod
    report = batch_mod.batch_status(
        provider=app.provider, prefix=prefix,
        identity_file=identity_file)
    code = 0 if report["all_healthy"] else 1
    if as_json:
        stdout.print_json(json.dumps(report))
        return code
    table = Table(title=f"batch {prefix}: {report['healthy']}/{report['total']} healthy",
                  title_justify="left")
    for col in ("cluster", "state", "healthy", "services", "expires"):
        table.add_column(col)
    for name, item in report["clusters"].items():
        if "error" in item:
            table.add_row(name, "?", Text("NO", style="bold red"), item["error"], "")
            continue
        services = "; ".join(s["line"] for s in item["services"].values()) or \
            item.get("note", "")
        table.add_row(name, item["state"], "yes" if item["healthy"] else
                      Text("NO", style="bold red"), services, item["expires"]["text"])
    stdout.print(table)
    return code


@batch.command(name="destroy", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch destroy --prefix spark-nov --yes

Every cluster named PREFIX-NN is destroyed at once, as `destroy` does it; running it
again is harmless (nothing left: exit 0).""")
@click.option("--prefix", required=True, metavar="P")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print what was destroyed as JSON.")
@pass_app
def batch_destroy_command(app: AppContext, prefix, yes, as_json):
    """Destroy every cluster of the batch (idempotent)."""
    from . import batch as batch_mod
    names = list(batch_mod.batch_clusters(provider=app.provider, prefix=prefix))
    if names and not yes:
        if not sys.stdin.isatty():
            raise errors.UsageError(f"would destroy {len(names)} clusters; no terminal to "
                                    "confirm", hint="pass --yes")
        click.confirm(f"destroy {len(names)} clusters ({', '.join(names)})?", abort=True)
    with RichProgress(title=f"batch destroy {prefix}") as progress:
        result = batch_mod.batch_destroy(provider=app.provider, prefix=prefix,
                                         progress=progress)
    code = 1 if result["failed"] else 0
    if as_json:
        stdout.print_json(json.dumps(result))
        return code
    stdout.print(f"destroyed {len(result['destroyed'])} cluster(s)"
                 + (f": {', '.join(result['destroyed'])}" if result["destroyed"] else ""),
                 markup=False)
    for name, why in result["failed"].items():
        stdout.print(f"[{name}] NOT destroyed: {why}", markup=False)
    return code


@batch.command(name="run-command", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch run-command --prefix spark-nov -- hostname
  spark-openstack batch run-command --prefix spark-nov -- \\
      'sudo -n -u hduser -H bash -lc "hdfs dfs -put -f /tmp/data.csv data.csv"'

The command runs on every cluster's master at once, as the login user; output lines are
prefixed [cluster]. Exit 1 names the clusters where it failed.""")
@click.option("--prefix", required=True, metavar="P")
@identity_option(whose="the trainer's keypair")
@click.option("--timeout", type=click.IntRange(min=1), default=3600, show_default=True,
              metavar="SECONDS", help="Limit for the command on each master.")
@click.option("--json", "as_json", is_flag=True, help="Print every master's result as JSON.")
@click.argument("command", nargs=-1, required=True)
@pass_app
def batch_run_command_command(app: AppContext, prefix, identity_file, timeout, as_json,
                              command):
    """Run a command on every master of the batch."""
    from . import batch as batch_mod
    text = " ".join(command)       # as run-command and ssh join the words after `--`

    def show(name, result):
        if not as_json:
            _print_prefixed(name, result.stdout, console=stdout)
            _print_prefixed(name, result.stderr, console=stderr)
    results = batch_mod.batch_run_command(
        provider=app.provider, prefix=prefix, command=text, timeout=timeout,
        identity_file=identity_file, on_output=show)
    failed = {n: r for n, r in results.items() if r.get("error") or r.get("exit_code")}
    if as_json:
        stdout.print_json(json.dumps(results))
    else:
        for name, item in failed.items():
            stderr.print(f"[{name}] " + (item["error"] if item.get("error")
                                         else f"exited {item['exit_code']}"), markup=False)
    return 1 if failed else 0


# --------------------------------------------------------------------------- main

def _raise_keyboard_interrupt(signum, frame):
    """Ctrl-C and SIGTERM: stop every wait in every thread (``polling.ABORT``) and unwind
    the main thread into the command's cleanup."""
    from .polling import ABORT
    if ABORT.is_set():
        return        # already stopping: a second signal must not cut the cleanup short
    ABORT.set()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes (2 usage, 1 failure, 130)."""
    if threading_is_main():
        from .polling import ABORT
        ABORT.clear()
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    try:
        rv = cli.main(args=argv, prog_name="spark-openstack", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C into Abort; a "no" at a confirmation prompt is Abort too
        interrupted = isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)
        stderr.print("interrupted" if interrupted else "aborted")
        code = 130 if interrupted else 1
    except click.exceptions.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except errors.SparkOpenstackError as exc:
        if _VERBOSE:
            traceback.print_exc()
        stderr.print(Text(f"error: {exc.message}", style="bold red"))
        if exc.hint:
            stderr.print(Text(f"  hint: {exc.hint}", style="yellow"))
        code = exc.exit_code
    except KeyboardInterrupt:
        stderr.print("interrupted")
        code = 130
    except Exception as exc:  # noqa: BLE001 - last resort, one clear line
        if _VERBOSE:
            traceback.print_exc()
        stderr.print(Text(f"internal error: {type(exc).__name__}: {exc}", style="bold red"))
        stderr.print("  hint: rerun with -v for the traceback and report it")
        code = 1
    return code


def threading_is_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
