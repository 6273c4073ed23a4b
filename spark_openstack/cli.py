"""The ``spark-openstack`` command line (click + rich).

Thin by design: every command parses options, layers them over the config file, calls one
library function (``launch.launch``, ``ledger.destroy`` ...) and prints its result. Only
``main()`` turns ``SparkOpenstackError`` into an exit code (2 usage, 1 failure, 130
interrupted) and one clear message; a traceback appears only with ``-v``.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from pathlib import Path

import click
from rich.text import Text

from . import __version__, errors, views
from .config import (BUILTIN_DEFAULTS, IMAGE_DEFAULTS, KNOWN_SERVICES, config_path,
                     image_spec_from, launch_spec_from, load_config_file, resolve,
                     validate_cluster_name, validate_ssh_user, web_ui_ports)
from .model import DEFAULT_DATA_DIR
from .ports import SAFE, UNSAFE
from .services import Jupyter
from .terminal import RichProgress, emit, show_node_output, stderr, stdout, write_output

_VERBOSE = 0

#: Jupyter's port on the master (its class declares it).
JUPYTER_PORT = Jupyter.port("jupyter")

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

#: ``-c NAME``: the cluster a day-2 command acts on (its name checked before the cloud
#: is contacted).
cluster_option = click.option("-c", "--cluster", metavar="NAME", required=True,
                              callback=lambda _ctx, _param, name: validate_cluster_name(name),
                              help="The cluster's name (see `spark-openstack list`).")


def _job_id(_ctx, _param, job_id: str) -> str:
    from .jobs import check_job_id
    return check_job_id(job_id)


#: ``JOB``: a job's id, checked before the cloud is contacted.
job_argument = click.argument("job_id", metavar="JOB", callback=_job_id)


def _prefix(_ctx, _param, prefix: str) -> str:
    from .batch import check_prefix
    return check_prefix(prefix)


#: ``--prefix P``: a batch's clusters are P-01 .. P-K (checked before the cloud).
prefix_option = click.option("--prefix", required=True, metavar="P", callback=_prefix,
                             help="Clusters are P-01 .. P-K.")


def _confirm(question: str, *, refused: str) -> None:
    """Ask on the terminal (abort on "no"); without one, refuse: scripts pass --yes."""
    if not sys.stdin.isatty():
        raise errors.UsageError(refused, hint="add --yes when running non-interactively")
    click.confirm(question, abort=True, err=True)


def json_option(what: str = "Print the result as JSON on stdout."):
    """``--json`` (into ``as_json``); ``what`` says what the JSON holds."""
    return click.option("--json", "as_json", is_flag=True, help=what)


yes_option = click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")


def _confirmer(yes: bool, *, question, refused):
    """The ``confirm(items)`` a library call asks before deleting: None with --yes, else
    ``_confirm`` with the words ``question(items)`` and ``refused(items)``."""
    if yes:
        return None
    return lambda items: _confirm(question(items), refused=refused(items))


def _ask_kill(job) -> bool:
    """Ctrl-C while attached to a job: kill it? (no, when the question is cut short)."""
    try:
        return click.confirm(f"\nkill job {job.id}?", default=False, err=True)
    except (click.exceptions.Abort, EOFError, KeyboardInterrupt):
        return False


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

def _ask(question: str, default: str | None) -> str:
    return click.prompt(question, default=default or "", show_default=bool(default))


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
    from .config import configure_settings
    if show:
        path = app.path
        stdout.print(path.read_text() if path.exists() else f"# {path} does not exist yet")
        return
    written = configure_settings(
        path=app.path, options=options, unset=unset, cloud=app.cloud_flag,
        current=lambda: app.file_values, ask=_ask if sys.stdin.isatty() else None)
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
@json_option()
@pass_app
def launch(app: AppContext, cluster, as_json, services, **flags):
    """Boot a master and N workers, wait until SSH works on all, then deploy."""
    from . import launch
    spec = _launch_spec(app, cluster_name=cluster, services=services, flags=flags)
    with RichProgress(title=f"launch {spec.cluster_name}") as progress:
        result = launch.launch(provider=app.provider, spec=spec, progress=progress)
    return emit(views.launch_view(result), as_json=as_json)






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
@json_option()
@pass_app
def deploy(app: AppContext, cluster, identity_file, services, start, jupyter, as_json):
    """(Re)deploy an existing cluster: configs, HDFS/YARN/Spark, health.

    Idempotent: never formats a NameNode that holds data, keeps the cluster's Spark
    secret, leaves running daemons running.
    """
    from . import launch
    with RichProgress(title=f"deploy {cluster}") as progress:
        result = launch.deploy_existing(
            provider=app.provider, cluster=cluster, identity_file=identity_file,
            services=_service_list(services), start=start, progress=progress,
            with_jupyter=jupyter)
    return emit(views.deploy_view(launch.deploy_summary(result), cluster=cluster),
                as_json=as_json)


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
@json_option()
@pass_app
def configure_cluster(app: AppContext, cluster, conf, hadoop_conf, unset, show,
                      restart_running, identity_file, as_json):
    """Change a running cluster's Spark/Hadoop settings and restart what reads them."""
    from . import clusterconf
    spark_conf, hadoop_settings = clusterconf.requested_change(
        conf=conf, hadoop_conf=hadoop_conf, unset=unset, show=show)
    if show:
        settings = clusterconf.show_settings(provider=app.provider, cluster=cluster,
                                             identity_file=identity_file)
        return emit(views.settings_view(settings, cluster=cluster), as_json=as_json)
    with RichProgress(title=f"configure-cluster {cluster}") as progress:
        result = clusterconf.configure_cluster(
            provider=app.provider, cluster=cluster, identity_file=identity_file,
            spark_conf=spark_conf, hadoop_conf=hadoop_settings, unset=unset,
            restart_running=restart_running, progress=progress)
    return emit(views.configure_cluster_view(result, cluster=cluster), as_json=as_json)


# --------------------------------------------------------------------------- run-command / copy-file

def _open_access(app: AppContext, cluster: str, identity_file: str | None):
    from .inventory import open_cluster
    return open_cluster(provider=app.provider, cluster=cluster, identity_file=identity_file)




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
@json_option("Print [{node, exit, stdout, stderr}] as JSON on stdout.")
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
    remote.check_selection(nodes=node_names, master_only=master_only, command=text)
    run = remote.run_command_report(
        access=_open_access(app, cluster, identity_file), command=text, nodes=node_names,
        master_only=master_only, timeout=timeout, on_output=None if as_json else (
            lambda name, result: show_node_output(name, result, exit_note=True)))
    emit(views.command_run_view(run), as_json=as_json)
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
@json_option("Print where it landed as JSON.")
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
    remote.check_selection(nodes=node_names, master_only=master_only)
    report = remote.copy_file(
        access=_open_access(app, cluster, identity_file), local=local, remote=remote_path,
        nodes=node_names, master_only=master_only, on_node=None if as_json else (
            lambda name, path: stdout.print(f"[{name}] {path}", markup=False)))
    return emit(views.copy_view(report), as_json=as_json)


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
    sub = jobs.prepare(app=application, args=app_args, conf=conf, py_files=py_files,
                       files=files, jars=jars, main_class=main_class, master=master_url)
    outcome = jobs.submit_job(
        provider=app.provider, cluster=cluster, identity_file=identity_file, sub=sub,
        detach=detach, resource_timeout=resource_timeout, on_output=write_output,
        on_started=lambda job, facts: stderr.print(
            f"job {job.id} started on {facts.master.name}; its driver output follows "
            "(Ctrl-C: detach or kill)", markup=False),
        ask_kill=_ask_kill if sys.stdin.isatty() else None)
    return emit(views.submit_view(outcome, cluster=cluster))


@cli.command(name="jobs", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack jobs -c demo
  spark-openstack jobs -c demo --json | jq -r '.[] | select(.state=="running") | .id'""")
@cluster_option
@identity_option()
@json_option("Print [{id, app, state, exit_code, started, duration_s}] as JSON.")
@pass_app
def jobs_(app: AppContext, cluster, identity_file, as_json):
    """List the cluster's jobs (as the master keeps them): running, finished, failed,
    killed."""
    from . import jobs
    found = jobs.cluster_jobs(provider=app.provider, cluster=cluster,
                              identity_file=identity_file)
    return emit(views.jobs_view(found, cluster=cluster), as_json=as_json)


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack logs -c demo 20261124-231501-ab12
  spark-openstack logs -c demo 20261124-231501-ab12 --follow   # until the job ends""")
@cluster_option
@identity_option()
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@job_argument
@pass_app
def logs(app: AppContext, cluster, identity_file, follow, job_id):
    """Print a job's driver log (spark-submit's stdout and stderr)."""
    from . import jobs
    job = jobs.job_log(provider=app.provider, cluster=cluster, identity_file=identity_file,
                       job_id=job_id, on_output=write_output, until_end=follow)
    if follow:
        stderr.print(views.job_end(job)[0], markup=False)


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack kill -c demo 20261124-231501-ab12""")
@cluster_option
@identity_option()
@job_argument
@pass_app
def kill(app: AppContext, cluster, identity_file, job_id):
    """Stop a running job (SIGTERM to its driver, SIGKILL after a grace period)."""
    from . import jobs
    job, now = jobs.kill_job(provider=app.provider, cluster=cluster,
                             identity_file=identity_file, job_id=job_id)
    return emit(views.kill_view(job, killed_now=now))


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
@json_option("Print the result as JSON on stdout (the driver output goes to stderr).")
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
    with RichProgress(title=f"run {cluster}") as progress:
        result = oneshot.run_job(
            provider=app.provider, spec=spec, sub=sub, output_dir=output, keep=keep,
            progress=progress, on_output=lambda data: write_output(
                data, stream=sys.stderr if as_json else sys.stdout),
            on_event=lambda text: stderr.print(text, markup=False),
            on_launched=lambda launched: progress.end_live())
    return emit(views.run_view(result), as_json=as_json)


# --------------------------------------------------------------------------- destroy

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack destroy -c demo          # asks first
  spark-openstack destroy -c demo --yes    # for scripts; fine to run twice""")
@cluster_option
@yes_option
@json_option("Print what was deleted as JSON.")
@pass_app
def destroy(app: AppContext, cluster, yes, as_json):
    """Delete every server, IP, group and volume of a cluster (found in the cloud)."""
    from . import ledger
    with RichProgress(title=f"destroy {cluster}") as progress:
        result = ledger.destroy(
            provider=app.provider, cluster=cluster, progress=progress,
            confirm=_confirmer(yes, question=lambda names: (
                f"Destroy cluster {cluster!r}: "
                f"{', '.join(names) or 'no servers (leftovers only)'}?"),
                refused=lambda names: f"refusing to destroy {cluster!r} without confirmation"))
    return emit(views.destroy_view(result, cluster=cluster), as_json=as_json)


# --------------------------------------------------------------------------- scale



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
@json_option()
@pass_app
def add_workers(app: AppContext, cluster, count, flavor, identity_file, timeout, as_json):
    """Grow a running cluster by K workers."""
    from . import scale
    with RichProgress(title=f"add-workers {cluster}") as progress:
        result = scale.add_workers(provider=app.provider, cluster=cluster, count=count,
                                   flavor=flavor, identity_file=identity_file,
                                   timeout=timeout, progress=progress)
    return emit(views.add_workers_view(result, cluster=cluster), as_json=as_json)


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
@yes_option
@json_option()
@pass_app
def remove_workers(app: AppContext, cluster, count, nodes, lower_replication, timeout,
                   identity_file, yes, as_json):
    """Shrink a running cluster, without losing HDFS data."""
    from . import scale
    with RichProgress(title=f"remove-workers {cluster}") as progress:
        result = scale.remove_workers(
            provider=app.provider, cluster=cluster, count=count, nodes=nodes,
            identity_file=identity_file, lower_replication=lower_replication,
            timeout=timeout, progress=progress,
            confirm=_confirmer(yes, question=lambda victims: (
                f"Decommission and delete {', '.join(v.name for v in victims)}?"),
                refused=lambda victims: (
                    f"refusing to remove workers of {cluster!r} without confirmation")))
    return emit(views.remove_workers_view(result, cluster=cluster), as_json=as_json)


# --------------------------------------------------------------------------- describe / list

@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack describe -c demo
  spark-openstack describe -c demo --json | jq -r .master.public_ip""")
@cluster_option
@json_option("Machine-readable output.")
@pass_app
def describe(app: AppContext, cluster, as_json):
    """Show a cluster's nodes, addresses and state, read from the cloud."""
    from . import inventory
    info = inventory.describe(provider=app.provider, cluster=cluster)
    return emit(views.describe_view(info, cluster=cluster), as_json=as_json)


@cli.command(name="list", context_settings=CONTEXT_SETTINGS)
@json_option("Machine-readable output.")
@pass_app
def list_(app: AppContext, as_json):
    """List the project's clusters (from server metadata)."""
    from . import inventory
    return emit(views.list_view(inventory.list_clusters(provider=app.provider)),
                as_json=as_json)


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
@json_option()
@pass_app
def reap(app: AppContext, dry_run, as_json):
    """Destroy every cluster of the project whose --expires-in deadline has passed."""
    from . import reap as reap_mod
    with RichProgress(title="reap") as progress:
        result = reap_mod.reap(provider=app.provider, dry_run=dry_run, progress=progress)
    return emit(views.reap_view(result, dry_run=dry_run), as_json=as_json)


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
@json_option("Machine-readable output.")
@pass_app
def status(app: AppContext, cluster, identity_file, as_json):
    """Show each server's state and each service's health (exit 1 if unhealthy)."""
    from . import power
    report = power.cluster_status(provider=app.provider, cluster=cluster,
                                  identity_file=identity_file)
    return emit(views.status_view(report, cluster=cluster), as_json=as_json)


def power_options(*, timeout_help: str):
    """The options ``stop`` and ``start`` share (declared once)."""
    def decorate(f):
        for option in reversed((
                cluster_option, identity_option(),
                click.option("--timeout", type=int, metavar="SECONDS", default=600,
                             show_default=True, help=timeout_help),
                json_option(),
                pass_app)):
            f = option(f)
        return f
    return decorate


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack stop -c demo
  spark-openstack stop -c demo --json

Spark, YARN and then HDFS are stopped on the nodes (so HDFS closes cleanly), then every
server is stopped (Nova stop) and waited for until SHUTOFF. Disks, addresses and HDFS
data stay (what a stopped server still costs depends on the cloud); `start` brings the
cluster back. Stopping a stopped cluster does nothing.""")
@power_options(timeout_help="Limit for the servers to stop.")
def stop(app: AppContext, cluster, identity_file, timeout, as_json):
    """Stop the services in order, then every server; HDFS data is kept."""
    return _power(app, "stop", cluster=cluster, identity_file=identity_file,
                  timeout=timeout, as_json=as_json)


@cli.command(context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack start -c demo
  spark-openstack start -c demo --json | jq .healthy

Boots every stopped server, waits for SSH and cloud-init, re-writes every node's configs
from the cloud's current facts (addresses may have changed), then starts HDFS (waiting
for safe mode to end), YARN and Spark and checks their health. HDFS is never formatted
again and the cluster's Spark secret is kept. On a running, healthy cluster it does
nothing; a running one with a service down is deployed again.""")
@power_options(timeout_help="Limit for the servers to start, and then for SSH on all "
                            "of them.")
def start(app: AppContext, cluster, identity_file, timeout, as_json):
    """Start a stopped cluster's servers and services, and check health."""
    return _power(app, "start", cluster=cluster, identity_file=identity_file,
                  timeout=timeout, as_json=as_json)


def _power(app: AppContext, verb: str, *, cluster, identity_file, timeout, as_json):
    """``stop``/``start``: one call of power's function, printed by its view."""
    from . import power
    action = {"stop": power.stop_cluster, "start": power.start_cluster}[verb]
    view = {"stop": views.stop_view, "start": views.start_view}[verb]
    with RichProgress(title=f"{verb} {cluster}") as progress:
        result = action(provider=app.provider, cluster=cluster, identity_file=identity_file,
                        progress=progress, timeout=timeout)
    return emit(view(result, cluster=cluster), as_json=as_json)


# --------------------------------------------------------------------------- notebook

@cli.command(context_settings=CONTEXT_SETTINGS, epilog=f"""\b
Examples:
  spark-openstack notebook -c demo                  # tunnel on localhost:8888; Ctrl-C ends it
  spark-openstack notebook -c demo --local-port 9999
  spark-openstack notebook -c demo --print-url      # only the URL (with its token)
  spark-openstack notebook -c demo --print-url --json

\b
Jupyter listens on the master's private address and wants its token; port {JUPYTER_PORT} is
never opened in the security group. This command runs
`ssh -N -L PORT:MASTER:{JUPYTER_PORT}` to the master (the user, key and pinned host keys of
`login`) and prints the URL to open. Pick
the kernel "PySpark (cluster NAME)": `spark` and `sc` are ready in it, on YARN when the
cluster runs it, else on Spark standalone; each notebook takes at most half the workers'
cores, so several share the cluster. A cluster without Jupyter gets it with
`spark-openstack deploy -c NAME --jupyter`.""")
@cluster_option
@identity_option()
@click.option("--local-port", type=int, default=8888, show_default=True, metavar="N",
              help="Port on this machine the tunnel listens on (127.0.0.1 only).")
@click.option("--print-url", is_flag=True, help="Print the URL and exit (no tunnel).")
@json_option("Print {cluster, url, local_port, remote, token} as JSON.")
@pass_app
def notebook(app: AppContext, cluster, identity_file, local_port, print_url, as_json):
    """Open the cluster's Jupyter: an SSH tunnel and the URL with its token."""
    from . import notebook as notebook_mod
    access = _open_access(app, cluster, identity_file)
    nb = notebook_mod.read_notebook(access=access, local_port=local_port)
    if print_url:
        return emit(views.notebook_view(nb), as_json=as_json)

    def opened(nb):
        emit(views.notebook_view(nb, master=access.facts.master.name), as_json=as_json)
        sys.stdout.flush()
    notebook_mod.serve_notebook(access=access, notebook=nb, on_open=opened)
    stderr.print("tunnel closed")


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
@click.option("--ssh-user", metavar="USER", help="Override the user recorded at launch.",
              callback=lambda _ctx, _param, user: user and validate_ssh_user(user))
@click.option("--print", "print_only", is_flag=True, help="Print the ssh command instead.")
@click.argument("command", nargs=-1)
@pass_app
def login(app: AppContext, cluster, forward_ui, identity_file, ssh_user, print_only, command):
    """SSH to the master with the right user and key."""
    from . import inventory
    plan = inventory.login_plan(provider=app.provider, cluster=cluster,
                                identity_file=identity_file, ssh_user=ssh_user,
                                forward_ui=forward_ui, command=command,
                                need_ssh=not print_only)
    emit(views.login_view(plan, print_only=print_only))
    if not print_only:
        sys.stdout.flush()
        os.execvp("ssh", plan.argv)


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
    from . import image
    if python_packages is not None:
        flags["python_packages"] = tuple(p.strip() for p in python_packages.split(",")
                                         if p.strip())
    spec = image_spec_from(app.resolve(flags, defaults=IMAGE_DEFAULTS), name=name)
    with RichProgress(title=f"create-image {name}") as progress:
        image_id = image.bake_image(provider=app.provider, spec=spec, progress=progress)
    return emit(views.image_view(image_id, name=name))


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
@prefix_option
@click.option("--count", type=int, metavar="K", help="How many clusters (or --students).")
@click.option("--students", metavar="FILE", type=click.Path(dir_okay=False),
              help="One student per line: name[,email] (CSV); one cluster each.")
@click.option("--roster", "roster_dir", required=True, metavar="DIR",
              type=click.Path(file_okay=False), help="Folder for the roster and the keys.")
@click.option("--parallel", type=int, default=4, show_default=True, metavar="M",
              help="Clusters launched at once.")
@click.option("--student-sudo", is_flag=True, help="Let the student's login use sudo.")
@launch_options
@json_option()
@pass_app
def batch_launch_command(app: AppContext, prefix, count, students, roster_dir, parallel,
                         student_sudo, as_json, services, **flags):
    """Launch one cluster per student and write the roster."""
    import dataclasses
    from . import batch as batch_mod
    seats = batch_mod.plan_seats(prefix=prefix, count=count, students=batch_mod.read_students(
        students) if students else None)
    spec = _launch_spec(app, cluster_name=seats[0].cluster, services=services, flags=flags)
    spec = dataclasses.replace(spec, login_sudo=student_sudo)
    with RichProgress(title=f"batch launch {prefix} ({len(seats)} clusters)") as progress:
        result = batch_mod.batch_launch(provider=app.provider, spec=spec, seats=seats,
                                        roster_dir=Path(roster_dir), parallel=parallel,
                                        progress=progress)
    return emit(views.batch_launch_view(result), as_json=as_json)


@batch.command(name="status", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch status --prefix spark-nov
  spark-openstack batch status --prefix spark-nov --json | jq '.clusters[] | .healthy'

One server listing finds the clusters; their health is checked at once (as `status`
does, on each master). Exit 1 when any cluster is not healthy.""")
@prefix_option
@identity_option(whose="the trainer's keypair")
@json_option("Machine-readable output.")
@pass_app
def batch_status_command(app: AppContext, prefix, identity_file, as_json):
    """Every cluster of the batch: servers, services, expiry, in one table."""
    from . import batch as batch_mod
    report = batch_mod.batch_status(provider=app.provider, prefix=prefix,
                                    identity_file=identity_file)
    return emit(views.batch_status_view(report, prefix=prefix), as_json=as_json)


@batch.command(name="destroy", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch destroy --prefix spark-nov --yes

Every cluster named PREFIX-NN is destroyed at once, as `destroy` does it; running it
again is harmless (nothing left: exit 0).""")
@prefix_option
@yes_option
@json_option("Print what was destroyed as JSON.")
@pass_app
def batch_destroy_command(app: AppContext, prefix, yes, as_json):
    """Destroy every cluster of the batch (idempotent)."""
    from . import batch as batch_mod
    with RichProgress(title=f"batch destroy {prefix}") as progress:
        result = batch_mod.batch_destroy(
            provider=app.provider, prefix=prefix, progress=progress,
            confirm=_confirmer(yes, question=lambda names: (
                f"destroy {len(names)} clusters ({', '.join(names)})?"),
                refused=lambda names: (
                    f"would destroy {len(names)} clusters; no terminal to confirm")))
    return emit(views.batch_destroy_view(result), as_json=as_json)


@batch.command(name="run-command", context_settings=CONTEXT_SETTINGS, epilog="""\b
Examples:
  spark-openstack batch run-command --prefix spark-nov -- hostname
  spark-openstack batch run-command --prefix spark-nov -- \\
      'sudo -n -u hduser -H bash -lc "hdfs dfs -put -f /tmp/data.csv data.csv"'

The command runs on every cluster's master at once, as the login user; output lines are
prefixed [cluster]. Exit 1 names the clusters where it failed.""")
@prefix_option
@identity_option(whose="the trainer's keypair")
@click.option("--timeout", type=click.IntRange(min=1), default=3600, show_default=True,
              metavar="SECONDS", help="Limit for the command on each master.")
@json_option("Print every master's result as JSON.")
@click.argument("command", nargs=-1, required=True)
@pass_app
def batch_run_command_command(app: AppContext, prefix, identity_file, timeout, as_json,
                              command):
    """Run a command on every master of the batch."""
    from . import batch as batch_mod
    results = batch_mod.batch_run_command(
        provider=app.provider, prefix=prefix, command=" ".join(command), timeout=timeout,
        identity_file=identity_file, on_output=None if as_json else show_node_output)
    return emit(views.batch_run_view(results), as_json=as_json)


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
