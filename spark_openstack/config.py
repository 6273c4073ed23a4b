"""Settings: built-in defaults < the YAML config file < command-line flags.

The config file (default ``~/.config/spark-openstack/config.yaml``, or ``--config FILE``)
is a flat YAML mapping whose keys are the long option names (``identity-file`` or
``identity_file``). ``spark-openstack configure`` writes it. Every resolved value remembers
where it came from so an error can say which input was wrong.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from .errors import ConfigError, UsageError, ValidationError
from .expiry import parse_duration
from .model import DEFAULT_DATA_DIR
from .ports import SAFE, UNSAFE, Port
from .services import DEFAULT_SERVICES, HADOOP_SITE_FILES, SERVICES, START_ORDER, Jupyter

DEFAULT_CONFIG_PATH = Path("~/.config/spark-openstack/config.yaml")
CONFIG_ENV = "SPARK_OPENSTACK_CONFIG"

#: The services ``--services`` may name (``spark_openstack.services.SERVICES``, in start
#: order); DEFAULT_SERVICES is what a cluster runs unless told otherwise ("jupyter", on the
#: master, only when asked: launch/deploy --jupyter, or --services ...,jupyter).
KNOWN_SERVICES = START_ORDER
#: What ``create-image --jupyter`` installs into the image's Python environment, pinned
#: (sandbox/pypi-requirements.txt serves the same pins to the sandbox's hosts).
JUPYTER_PACKAGES = ("jupyterlab==4.6.6", "ipykernel==7.4.0", "nbconvert==7.17.2",
                    "supervisor==4.3.0")
CLUSTER_NAME_MAX = 40
_CLUSTER_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
# A POSIX login name: it ends up on an ssh command line, so it must never look like an option.
_SSH_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
SSH_USER_HINT = ("a POSIX user name: a lowercase letter or '_', then up to 31 of a-z, 0-9, "
                 "'_' and '-' (e.g. debian, ubuntu)")

#: Built-in defaults, the bottom layer. ``None`` means "no default: must come from the
#: user or is optional".
BUILTIN_DEFAULTS: dict[str, Any] = {
    # global
    "cloud": None,
    # launch
    "slaves": 1,
    "keypair": None,
    "identity_file": None,
    "image": None,
    "flavor": "m1.small",
    "master_flavor": None,
    "network": None,
    "floating_ip_pool": None,
    "floating_ip": True,
    "allowed_cidr": (),
    "open_ui_cidr": (),
    "open_unsafe_ui_cidr": (),
    "anti_affinity": True,
    "data_dir": (),
    "ssh_user": "debian",
    "deploy": True,
    "keep_on_failure": False,
    "timeout": 900,
    "services": DEFAULT_SERVICES,
    "jupyter": False,
    # create-image (DEPLOY's command; same layering)
    "base_image": None,
    "spark_version": "4.3.0",      # the Spark release the image gets unless told
    "hadoop_version": "3.5.0",     # the Hadoop client line that Spark 4.3 is built against
    "no_hadoop": False,
    "mirror": None,
    "java_package": None,
    "apt_proxy": None,
    "python_packages": (),
    "python_constraints": None,
    "pip_index_url": None,
    "pip_find_links": None,
    "conf": (),
    "hadoop_conf": (),
    "expires_in": None,
}
# create-image's own defaults where they differ from launch's (a bake downloads and unpacks
# Spark and Hadoop: it gets longer than a launch's boot + SSH).
DEFAULT_MIRROR = "https://archive.apache.org/dist"
#: ``--java-package auto``: the bake picks the OpenJDK package of the builder's release
#: (``JAVA_BY_RELEASE``; for a release not listed, the first of ``JAVA_FALLBACKS`` that
#: its apt knows). Spark 4 needs Java 17 or 21.
DEFAULT_JAVA_PACKAGE = "auto"
JAVA_BY_RELEASE: dict[str, str] = {
    "debian 12": "openjdk-17-jre-headless",     # bookworm has 17 only
    "debian 13": "openjdk-21-jre-headless",     # trixie has 21, no 17
    "ubuntu 22.04": "openjdk-17-jre-headless",
    "ubuntu 24.04": "openjdk-17-jre-headless",
}
JAVA_FALLBACKS = ("openjdk-17-jre-headless", "openjdk-21-jre-headless",
                  "openjdk-25-jre-headless")
#: The base images a bake can install on: apt-based distributions (Glance ``os_distro``).
SUPPORTED_BASE_DISTROS = ("debian", "ubuntu")
IMAGE_TIMEOUT = 1800
IMAGE_DEFAULTS: dict[str, Any] = {**BUILTIN_DEFAULTS, "timeout": IMAGE_TIMEOUT,
                                  "mirror": DEFAULT_MIRROR, "java_package": DEFAULT_JAVA_PACKAGE,
                                  "floating_ip": False}   # the builder: its fixed IP
_LIST_KEYS = {"allowed_cidr", "open_ui_cidr", "open_unsafe_ui_cidr", "services",
              "python_packages", "data_dir", "conf", "hadoop_conf"}
_BOOL_KEYS = {"floating_ip", "anti_affinity", "deploy", "keep_on_failure", "no_hadoop",
              "jupyter"}
_INT_KEYS = {"slaves", "timeout"}
#: Keys earlier versions accepted, with why they went and what to use instead.
REMOVED_KEYS = {
    "volume_size": "--volume-size is gone: its Cinder volumes were never formatted or "
                   "mounted, so HDFS never used them; put HDFS on a disk the flavor gives "
                   "(--data-dir DIR)",
}


def config_path(explicit: str | os.PathLike | None) -> Path:
    """``--config FILE`` beats ``$SPARK_OPENSTACK_CONFIG`` beats the default path."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    return DEFAULT_CONFIG_PATH.expanduser()


def _normalise_key(key: Any) -> str:
    return str(key).strip().replace("-", "_")


def _coerce(key: str, value: Any, source: str) -> Any:
    """Type-check one config-file value; errors name the key and the file."""
    def bad(why: str) -> ConfigError:
        return ConfigError(f"{key.replace('_', '-')} = {value!r} in {source}: {why}",
                           hint=f"fix or delete that line in {source}")
    if value is None:
        return None
    if key in _LIST_KEYS:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad("expected a list of strings")
        return tuple(value)
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise bad("expected true or false")
        return value
    if key in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("expected a whole number")
        return value
    if not isinstance(value, (str, int, float)):
        raise bad("expected a single value")
    return str(value)


def load_config_file(path: Path, *, required: bool = False) -> dict[str, Any]:
    """Read the YAML config. A missing default file is fine; a missing ``--config`` is not."""
    if not path.exists():
        if required:
            raise ConfigError(f"config file {path} does not exist",
                              hint="create it with `spark-openstack configure`, "
                                   "or drop --config to use the default location")
        return {}
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}",
                          hint="fix the syntax or rewrite it with `spark-openstack configure`")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}")
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of option: value",
                          hint="e.g.\n    keypair: mykey\n    image: debian-12")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        norm = _normalise_key(key)
        if norm in REMOVED_KEYS:
            raise ConfigError(f"key {key!r} in config file {path}: {REMOVED_KEYS[norm]}",
                              hint=f"remove it from {path}")
        if norm not in BUILTIN_DEFAULTS:
            known = ", ".join(sorted(k.replace("_", "-") for k in BUILTIN_DEFAULTS))
            raise ConfigError(f"unknown key {key!r} in config file {path}",
                              hint=f"known keys: {known}")
        values[norm] = _coerce(norm, value, str(path))
    return values


def write_config_file(path: Path, values: dict[str, Any]) -> Path:
    """Merge ``values`` into the YAML file at ``path`` (created with mode 0600)."""
    current = load_config_file(path) if path.exists() else {}
    for key, value in values.items():
        norm = _normalise_key(key)
        if norm not in BUILTIN_DEFAULTS:
            raise ConfigError(f"unknown setting {key!r}")
        if value is None or value == ():
            current.pop(norm, None)
        else:
            current[norm] = list(value) if isinstance(value, tuple) else value
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump({k.replace("_", "-"): (list(v) if isinstance(v, tuple) else v)
                           for k, v in sorted(current.items())}, default_flow_style=False)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# spark-openstack settings; flags on the command line override these.\n")
        fh.write(text)
    os.replace(tmp, path)
    return path


@dataclass
class Resolved:
    """Values after layering, each with the input it came from (flag / file / default)."""

    values: dict[str, Any]
    sources: dict[str, str]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def source(self, key: str) -> str:
        return self.sources.get(key, "built-in default")


def resolve(*, flags: dict[str, Any], file_values: dict[str, Any], file_path: Path | None,
            defaults: dict[str, Any] | None = None) -> Resolved:
    """Layer flags over file over defaults. A flag of ``None`` or ``()`` means "not given"."""
    defaults = BUILTIN_DEFAULTS if defaults is None else defaults
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in set(defaults) | set(flags):
        flag = flags.get(key)
        if flag is not None and flag != ():
            values[key] = tuple(flag) if isinstance(flag, list) else flag
            sources[key] = f"--{key.replace('_', '-')}"
        elif key in file_values and file_values[key] is not None:
            values[key] = file_values[key]
            sources[key] = f"{key.replace('_', '-')} in {file_path}"
        else:
            values[key] = defaults.get(key)
            sources[key] = "built-in default"
    return Resolved(values=values, sources=sources)


def validate_cluster_name(name: str | None, *, source: str = "--cluster/-c") -> str:
    """A cluster name becomes part of hostnames (``NAME-worker-12``), so it must be one."""
    if not name:
        raise UsageError(f"no cluster name given ({source})",
                         hint="pass -c NAME, e.g. `-c demo`")
    why = None
    if len(name) > CLUSTER_NAME_MAX:
        why = f"it is {len(name)} characters long; the limit is {CLUSTER_NAME_MAX}"
    elif not name[0].isalpha() or not name[0].islower():
        why = "it must start with a lowercase letter"
    elif not _CLUSTER_NAME_RE.match(name):
        bad = sorted({c for c in name if not (c.islower() or c.isdigit() or c == "-")})
        why = f"it contains {', '.join(repr(c) for c in bad)}; only a-z, 0-9 and '-' are allowed"
    elif name.endswith("-") or "--" in name:
        why = "it must not end with '-' or contain '--'"
    if why:
        suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:CLUSTER_NAME_MAX]
        suggestion = re.sub(r"-{2,}", "-", suggestion)
        if suggestion and not suggestion[0].isalpha():
            suggestion = "c-" + suggestion
        hint = "cluster names are used in hostnames: lowercase letters, digits and hyphens"
        if suggestion and _CLUSTER_NAME_RE.match(suggestion):
            hint += f"; try `-c {suggestion[:CLUSTER_NAME_MAX].rstrip('-')}`"
        raise UsageError(f"cluster name {name!r} ({source}) is not usable: {why}", hint=hint)
    return name


def is_ssh_user(user) -> bool:
    """True for a POSIX user name (never an ssh option such as ``-oProxyCommand=...``)."""
    return isinstance(user, str) and _SSH_USER_RE.fullmatch(user) is not None


def validate_ssh_user(user, *, source: str = "--ssh-user") -> str:
    """Refuse a login user that is not a plain user name: it goes into ssh's argv."""
    if not is_ssh_user(user):
        raise UsageError(f"ssh user {user!r} ({source}) is not a user name",
                         hint=SSH_USER_HINT)
    return user


def web_ui_ports(*, services=KNOWN_SERVICES, exposures=(SAFE, UNSAFE)) -> tuple[Port, ...]:
    """The master's web UIs of ``services`` whose exposure is one of ``exposures``: what
    the security group may open, ``describe`` lists and ``login -L`` forwards (through SSH
    even the unsafe ones are only the user's own). Declared by the service classes
    (``Service.ports``)."""
    return tuple(p for cls in SERVICES if cls.name in services
                 for p in cls.ports if p.web_ui and p.exposure in exposures)


def web_ui_rules(*, open_ui_cidrs, unsafe_ui_cidrs) -> list[tuple[str, int]]:
    """The (CIDR, port) pairs the security group opens for web UIs, without duplicates:
    ``open_ui_cidrs`` get the safe UIs only; ``unsafe_ui_cidrs`` get every UI."""
    rules = [(c, p.number) for c in open_ui_cidrs for p in web_ui_ports(exposures=(SAFE,))]
    rules += [(c, p.number) for c in unsafe_ui_cidrs for p in web_ui_ports()]
    return list(dict.fromkeys(rules))


def unsafe_ui_warning(cidrs) -> str:
    """What --open-unsafe-ui-cidr exposes, said plainly at launch."""
    exposed = "; ".join(f"{p.ui_name} (port {p.number}): {p.why}"
                        for p in web_ui_ports(exposures=(UNSAFE,)))
    return (f"WARNING: --open-unsafe-ui-cidr opens to {', '.join(cidrs)}: {exposed}; "
            f"`spark-openstack login -L` reaches them safely instead")


_DATA_DIR_RE = re.compile(r"^/[A-Za-z0-9._/-]*$")


def _parse_data_dirs(values: tuple[str, ...], *, source: str) -> tuple[str, ...]:
    """HDFS data directories: absolute, plain characters (they go into XML, shell and
    server metadata), never the root or a system directory."""
    dirs = []
    for raw in values:
        path = raw.rstrip("/") or raw
        if not _DATA_DIR_RE.match(path) or "/.." in path or path.count("/") < 2 and \
                path in ("/", "/etc", "/usr", "/bin", "/sbin", "/lib", "/proc", "/sys", "/dev",
                         "/boot", "/run", "/tmp"):
            raise UsageError(
                f"--data-dir {raw!r} ({source}) is not usable for HDFS data",
                hint="give an absolute directory of letters, digits, '.', '_', '-' and '/', "
                     f"e.g. {DEFAULT_DATA_DIR} or /srv/hdfs (repeatable for several disks)")
        if path not in dirs:
            dirs.append(path)
    if len(",".join(dirs)) > 255:
        raise UsageError(f"--data-dir ({source}): the directories add up to more than 255 "
                         "characters, more than a server's metadata value holds",
                         hint="use shorter paths")
    return tuple(dirs) or (DEFAULT_DATA_DIR,)


def parse_cidrs(values: tuple[str, ...], *, source: str) -> tuple[str, ...]:
    out = []
    for value in values:
        try:
            net = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise UsageError(f"{value!r} ({source}) is not an IP network",
                             hint="use CIDR notation, e.g. 203.0.113.7/32 or 10.0.0.0/8")
        out.append(str(net))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class LaunchSpec:
    """Everything ``cluster.launch`` needs, already type-checked (cloud names unchecked)."""

    cluster_name: str
    workers: int
    keypair: str
    image: str
    flavor: str
    identity_file: str | None = None
    master_flavor: str | None = None
    network: str | None = None
    floating_ip_pool: str | None = None
    floating_ip: bool = True
    allowed_cidrs: tuple[str, ...] = ()
    open_ui_cidrs: tuple[str, ...] = ()
    unsafe_ui_cidrs: tuple[str, ...] = ()
    anti_affinity: bool = True
    data_dirs: tuple[str, ...] = (DEFAULT_DATA_DIR,)
    ssh_user: str = "debian"
    deploy: bool = True
    keep_on_failure: bool = False
    timeout: int = 900
    services: tuple[str, ...] = DEFAULT_SERVICES
    # --services given (flag or config file): the image must run every one of them, while
    # the default list quietly drops the Hadoop services an image lacks
    services_asked: bool = False
    spark_conf: tuple[tuple[str, str], ...] = ()
    hadoop_conf: tuple[tuple[str, str, str], ...] = ()
    expires_in: int | None = None      # seconds from boot; None: the cluster never expires
    login_keys: tuple[str, ...] = ()   # batch launch: the student's public key (master only)
    login_sudo: bool = False


def launch_spec_from(resolved: Resolved, *, cluster_name: str | None) -> LaunchSpec:
    """Turn layered values into a ``LaunchSpec``; every error names its input."""
    v, src = resolved.values, resolved.source
    name = validate_cluster_name(cluster_name)
    workers = v["slaves"]
    if not isinstance(workers, int) or workers < 1:
        raise UsageError(f"the number of workers ({src('slaves')}) is {workers}; it must be >= 1",
                         hint="pass -s N with N >= 1 (the master is extra)")
    for key, flag in (("keypair", "-k/--keypair"), ("image", "-i/--image"),
                      ("flavor", "--flavor")):
        if not v.get(key):
            raise UsageError(f"no {key} given ({flag})",
                             hint=f"pass {flag.split('/')[-1]} NAME or set `{key}:` with "
                                  "`spark-openstack configure`")
    allowed = parse_cidrs(tuple(v.get("allowed_cidr") or ()), source=src("allowed_cidr"))
    if not allowed:
        raise UsageError(
            "no --allowed-cidr given: SSH to the cluster would be closed to everyone",
            hint="pass the address you connect from, e.g. `--allowed-cidr 203.0.113.7/32` "
                 "(repeatable), or set `allowed-cidr:` with `spark-openstack configure`; "
                 "0.0.0.0/0 is accepted only when you write it yourself")
    open_ui = parse_cidrs(tuple(v.get("open_ui_cidr") or ()), source=src("open_ui_cidr"))
    unsafe_ui = parse_cidrs(tuple(v.get("open_unsafe_ui_cidr") or ()),
                             source=src("open_unsafe_ui_cidr"))
    ssh_user = validate_ssh_user(v.get("ssh_user") or "debian", source=src("ssh_user"))
    timeout = v.get("timeout")
    if not isinstance(timeout, int) or timeout < 30:
        raise UsageError(f"--timeout ({src('timeout')}) is {timeout}; it must be >= 30 seconds")
    services = tuple(s.strip().lower() for s in (v.get("services") or ()) if s.strip())
    if v.get("jupyter") and "jupyter" not in services:
        services += ("jupyter",)     # launch --jupyter: on top of the other services
    unknown = [s for s in services if s not in KNOWN_SERVICES]
    if unknown or not services:
        raise UsageError(f"--services ({src('services')}) has {', '.join(unknown) or 'nothing'}",
                         hint=f"choose among {', '.join(KNOWN_SERVICES)}, comma-separated")
    if Jupyter.name in services and not set(Jupyter.needs_one_of) & set(services):
        raise UsageError("Jupyter's PySpark kernel needs Spark standalone or YARN to run on",
                         hint="add spark (or yarn) to --services, or drop jupyter")
    data_dirs = _parse_data_dirs(tuple(v.get("data_dir") or ()), source=src("data_dir"))
    spark_conf = parse_spark_conf(v.get("conf") or ())
    hadoop_conf = parse_hadoop_conf(v.get("hadoop_conf") or ())
    if (spark_conf or hadoop_conf) and not v.get("deploy", True):
        raise UsageError("--conf/--hadoop-conf are applied by the deploy, and --no-deploy "
                         "skips it",
                         hint="drop --no-deploy, or pass them later to `spark-openstack "
                              "configure-cluster`")
    identity = v.get("identity_file")
    if identity:
        identity = str(Path(identity).expanduser())
    if v.get("floating_ip") is False and v.get("floating_ip_pool"):
        raise UsageError("--no-floating-ip and --floating-ip-pool contradict each other",
                         hint="drop one of them")
    return LaunchSpec(
        cluster_name=name, workers=workers, keypair=v["keypair"], image=v["image"],
        flavor=v["flavor"], identity_file=identity, master_flavor=v.get("master_flavor"),
        network=v.get("network"), floating_ip_pool=v.get("floating_ip_pool"),
        floating_ip=bool(v.get("floating_ip", True)), allowed_cidrs=allowed,
        open_ui_cidrs=open_ui, unsafe_ui_cidrs=unsafe_ui,
        anti_affinity=bool(v.get("anti_affinity", True)),
        data_dirs=data_dirs, ssh_user=ssh_user,
        deploy=bool(v.get("deploy", True)), keep_on_failure=bool(v.get("keep_on_failure")),
        timeout=timeout, services=tuple(dict.fromkeys(services)),
        services_asked=resolved.source("services") != "built-in default",
        spark_conf=spark_conf, hadoop_conf=hadoop_conf,
        expires_in=(parse_duration(str(v["expires_in"]),
                                   option=f"--expires-in ({src('expires_in')})")
                    if v.get("expires_in") else None))


# --------------------------------------------------------------------------- --conf / --hadoop-conf

#: Spark settings the cluster's security rests on: never changed by --conf.
PROTECTED_SPARK_CONF = ("spark.authenticate", "spark.authenticate.secret",
                        "spark.network.crypto.enabled", "spark.master.rest.enabled")
#: The Hadoop files ``--hadoop-conf`` may set: those the Hadoop services read.
HADOOP_CONF_FILES = HADOOP_SITE_FILES
_CONF_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\]:]*$")


def _conf_value(raw: str, *, option: str, example: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    key = key.strip()
    if not sep or not _CONF_KEY.match(key):
        raise UsageError(f"{option} {raw!r} is not KEY=VALUE",
                         hint=f"e.g. {option} {example}")
    if "\n" in value or "\r" in value:
        raise UsageError(f"{option} {raw!r}: the value has a line break",
                         hint="give the value on one line")
    return key, value.strip()


def parse_spark_conf(values, *, option: str = "--conf") -> tuple[tuple[str, str], ...]:
    """``spark.x=y`` pairs (last one of a key wins); the security settings are refused."""
    out: dict[str, str] = {}
    for raw in values or ():
        key, value = _conf_value(raw, option=option, example="spark.executor.cores=2")
        if not key.startswith("spark."):
            raise UsageError(f"{option} {raw!r}: Spark only reads properties that start "
                             "with 'spark.'",
                             hint="for Hadoop's files use --hadoop-conf FILE:KEY=VALUE; "
                                  "spark.hadoop.KEY=VALUE passes a Hadoop setting to jobs")
        if key in PROTECTED_SPARK_CONF:
            raise UsageError(f"{option} {key}: the cluster's authentication and encryption "
                             "are not changeable",
                             hint="every cluster runs with its own secret and encrypted RPC")
        out[key] = value
    return tuple(out.items())


def parse_hadoop_conf(values, *, option: str = "--hadoop-conf"
                      ) -> tuple[tuple[str, str, str], ...]:
    """``hdfs-site.xml:dfs.replication=2`` triples (file name with or without .xml)."""
    out: dict[tuple[str, str], str] = {}
    for raw in values or ():
        file, sep, rest = raw.partition(":")
        file = file.strip()
        if file and not file.endswith(".xml"):
            file += ".xml"
        if not sep or file not in HADOOP_CONF_FILES:
            raise UsageError(f"{option} {raw!r}: expected FILE:KEY=VALUE with FILE one of "
                             f"{', '.join(HADOOP_CONF_FILES)}",
                             hint=f"e.g. {option} hdfs-site:dfs.replication=2")
        key, value = _conf_value(rest, option=option, example="hdfs-site:dfs.replication=2")
        out[(file, key)] = value
    return tuple((file, key, value) for (file, key), value in out.items())


# --------------------------------------------------------------------------- create-image

_VERSION = re.compile(r"^[0-9]+(\.[0-9]+){1,3}([-.][0-9A-Za-z]+)*$")
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
# pip requirement specifiers without shell or option syntax: name[extras]==1.2, name>=1
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+$")
_PIP_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?"
                              r"([<>=!~]=?[0-9A-Za-z.*+-]+(,[<>=!~]=?[0-9A-Za-z.*+-]+)*)?$")


def validate_bake_inputs(*, spark_version, hadoop_version, mirror, java_package,
                         python_packages, python_constraints: str | None = None,
                         pip_index_url: str | None = None,
                         pip_find_links: str | None = None,
                         apt_proxy: str | None = None) -> None:
    """Refuse inputs that would make a broken or unsafe builder script (they go into a
    shell script run as root), naming the option and what to pass instead."""
    if not isinstance(spark_version, str) or not _VERSION.match(spark_version):
        raise ValidationError(f"--spark-version {spark_version!r} is not a release number",
                              hint=f"pass a version like {BUILTIN_DEFAULTS['spark_version']}")
    if hadoop_version is not None and (not isinstance(hadoop_version, str)
                                       or not _VERSION.match(hadoop_version)):
        raise ValidationError(f"--hadoop-version {hadoop_version!r} is not a release number",
                              hint=f"pass a version like {BUILTIN_DEFAULTS['hadoop_version']}, "
                                   "or --no-hadoop for a Spark-only image")
    parsed = urlparse(mirror if isinstance(mirror, str) else "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError(f"--mirror {mirror!r} is not an http(s) URL",
                              hint=f"pass a mirror with Apache's layout, e.g. {DEFAULT_MIRROR}")
    if not isinstance(java_package, str) or not _DEBIAN_PACKAGE.match(java_package):
        raise ValidationError(f"--java-package {java_package!r} is not a Debian package name",
                              hint="e.g. openjdk-21-jre-headless, or auto (the default: "
                                   "the OpenJDK of the base image's release)")
    if apt_proxy is not None:
        parsed = urlparse(apt_proxy if isinstance(apt_proxy, str) else "")
        if parsed.scheme not in ("http", "https") or not parsed.netloc \
                or not _URL_SAFE.match(apt_proxy) or "@" in parsed.netloc \
                or parsed.path not in ("", "/") or parsed.query or parsed.fragment:
            raise ValidationError(
                f"--apt-proxy {apt_proxy!r} is not a plain http(s) proxy URL",
                hint="e.g. http://10.0.0.5:3142 (scheme, host and port only; no user:password, "
                     "since it stays in the image's apt configuration)")
    for package in python_packages:
        if not isinstance(package, str) or not _PIP_REQUIREMENT.match(package):
            raise ValidationError(f"--python-packages entry {package!r} is not a plain "
                                  "requirement", hint="e.g. numpy or pandas==2.2.3, "
                                                      "comma-separated")
    for number, line in enumerate((python_constraints or "").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line and not _PIP_REQUIREMENT.match(line):
            raise ValidationError(f"--python-constraints line {number} {line!r} is not a "
                                  "plain requirement",
                                  hint="one NAME==VERSION per line (comments allowed; no pip "
                                       "options, URLs or markers: it goes into the image)")
    for option, url in (("--pip-index-url", pip_index_url),
                        ("--pip-find-links", pip_find_links)):
        parsed = urlparse(url if isinstance(url, str) else "")
        if url is not None and (parsed.scheme not in ("http", "https") or not parsed.netloc
                                or not _URL_SAFE.match(url)):
            raise ValidationError(f"{option} {url!r} is not a plain http(s) URL",
                                  hint="e.g. https://pypi.example.org/simple/ (no spaces or "
                                       "quotes)")


def read_constraints_file(path: str | None) -> str | None:
    """The text of ``--python-constraints FILE`` (it is carried in the bake's user-data)."""
    if not path:
        return None
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:
        raise UsageError(f"--python-constraints {path}: {exc.strerror or exc}",
                         hint="give a readable pip constraints file (NAME==VERSION lines)")
    if len(text.encode()) > 32 * 1024:
        raise UsageError(f"--python-constraints {path} is over 32 KiB",
                         hint="user-data is small: keep only the pins of what is installed")
    return text


@dataclass(frozen=True)
class ImageSpec:
    """Everything ``image.create_image`` needs, checked when made (cloud names unchecked):
    a bad value fails here, naming its option, before anything is created."""

    name: str
    base_image: str
    flavor: str
    keypair: str
    identity_file: str | None = None
    spark_version: str = BUILTIN_DEFAULTS["spark_version"]
    hadoop_version: str | None = BUILTIN_DEFAULTS["hadoop_version"]   # None: Spark only
    mirror: str = DEFAULT_MIRROR
    java_package: str = DEFAULT_JAVA_PACKAGE  # "auto": chosen for the builder's release
    apt_proxy: str | None = None              # apt's HTTP proxy on the builder (and image)
    python_packages: tuple[str, ...] = ()
    python_constraints: str | None = None     # a constraints file's text (pins)
    pip_index_url: str | None = None
    pip_find_links: str | None = None
    jupyter: bool = False                     # JupyterLab + ipykernel + supervisor
    network: str | None = None
    allowed_cidrs: tuple[str, ...] = ()
    floating_ip: bool = False
    floating_ip_pool: str | None = None
    ssh_user: str = "debian"
    timeout: int = IMAGE_TIMEOUT

    def __post_init__(self):
        for key, flag in (("name", "-n/--name"), ("base_image", "--base-image"),
                          ("flavor", "--flavor"), ("keypair", "-k/--keypair")):
            if not getattr(self, key):
                raise UsageError(f"no {key.replace('_', ' ')} given ({flag})",
                                 hint=f"pass {flag.split('/')[-1]} NAME, or set "
                                      f"`{key.replace('_', '-')}:` in the config file")
        object.__setattr__(self, "python_packages", tuple(self.python_packages or ()))
        validate_bake_inputs(spark_version=self.spark_version,
                             hadoop_version=self.hadoop_version, mirror=self.mirror,
                             java_package=self.java_package,
                             python_packages=self.python_packages,
                             python_constraints=self.python_constraints,
                             pip_index_url=self.pip_index_url,
                             pip_find_links=self.pip_find_links, apt_proxy=self.apt_proxy)
        cidrs = parse_cidrs(tuple(self.allowed_cidrs or ()), source="--allowed-cidr")
        if not cidrs:
            raise UsageError(
                "no --allowed-cidr given: SSH to the image builder would be closed to everyone",
                hint="pass the address you connect from, e.g. --allowed-cidr 203.0.113.7/32")
        object.__setattr__(self, "allowed_cidrs", cidrs)
        validate_ssh_user(self.ssh_user)
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int) \
                or self.timeout < 60:
            raise UsageError(f"--timeout is {self.timeout!r}; the bake needs at least 60 "
                             "seconds", hint=f"pass --timeout SECONDS (default {IMAGE_TIMEOUT})")


def image_spec_from(resolved: Resolved, *, name: str | None) -> ImageSpec:
    """Turn create-image's layered values (over ``IMAGE_DEFAULTS``) into an ``ImageSpec``."""
    v, src = resolved.values, resolved.source
    hadoop_version = v.get("hadoop_version")
    if v.get("no_hadoop"):
        if src("hadoop_version") == "--hadoop-version":
            raise UsageError("--no-hadoop and --hadoop-version contradict each other",
                             hint="drop one of them")
        hadoop_version = None
    identity = v.get("identity_file")
    return ImageSpec(
        name=name or "", base_image=v.get("base_image") or "", flavor=v.get("flavor") or "",
        keypair=v.get("keypair") or "",
        identity_file=str(Path(identity).expanduser()) if identity else None,
        spark_version=v.get("spark_version"), hadoop_version=hadoop_version,
        mirror=v.get("mirror"), java_package=v.get("java_package"),
        apt_proxy=v.get("apt_proxy") or None,
        python_packages=tuple(v.get("python_packages") or ()), network=v.get("network"),
        python_constraints=read_constraints_file(v.get("python_constraints")),
        pip_index_url=v.get("pip_index_url") or None,
        pip_find_links=v.get("pip_find_links") or None, jupyter=bool(v.get("jupyter")),
        allowed_cidrs=tuple(v.get("allowed_cidr") or ()),
        floating_ip=bool(v.get("floating_ip")), floating_ip_pool=v.get("floating_ip_pool"),
        ssh_user=v.get("ssh_user") or "debian", timeout=v.get("timeout"))


#: What ``configure`` asks for when run in a terminal without options.
CONFIGURE_QUESTIONS = (
    ("keypair", "Keypair name (openstack keypair list)"),
    ("identity_file", "Private key file of that keypair"),
    ("image", "Image to boot (name or id)"),
    ("flavor", "Flavor for workers"),
    ("network", "Network (empty: the project's only one)"),
    ("allowed_cidr", "CIDR allowed to SSH in (e.g. your-ip/32)"),
    ("ssh_user", "Login user of the image"),
)


def configure_settings(*, path: Path, options: dict, unset=(), cloud: str | None = None,
                       current=None, ask=None) -> Path:
    """``configure``: the given settings (None/empty: not given), ``unset`` keys removed,
    checked and written to the settings file at ``path``; returns where.

    With nothing given, ``ask(question, default) -> answer`` is asked the
    ``CONFIGURE_QUESTIONS`` (``current()``: the file's values, read only then, shown as
    defaults); without ``ask`` (no terminal) that is a ``UsageError``.
    """
    values = {k: v for k, v in options.items() if v not in (None, ())}
    if "services" in values:
        values["services"] = tuple(s.strip() for s in values["services"].split(","))
    if cloud:
        values["cloud"] = cloud
    for key in unset:
        norm = key.replace("-", "_")
        if norm not in BUILTIN_DEFAULTS:
            raise UsageError(f"--unset {key}: no such setting", hint="settings: " + ", ".join(
                sorted(k.replace("_", "-") for k in BUILTIN_DEFAULTS)))
        values[norm] = None
    if not values and not unset:
        if ask is None:
            raise UsageError("nothing to configure",
                             hint="pass settings as options (see --help), or run it in a "
                                  "terminal to be asked")
        known = current() if current is not None else {}
        for key, question in CONFIGURE_QUESTIONS:
            default = known.get(key, BUILTIN_DEFAULTS.get(key))
            answer = ask(question, ",".join(default) if isinstance(default, tuple)
                         else default)
            if answer:
                values[key] = tuple(a.strip() for a in answer.split(",")) \
                    if key == "allowed_cidr" else answer
    for key in ("allowed_cidr", "open_ui_cidr", "open_unsafe_ui_cidr"):
        if values.get(key):
            values[key] = parse_cidrs(tuple(values[key]), source=f"--{key.replace('_', '-')}")
    if values.get("ssh_user"):
        validate_ssh_user(values["ssh_user"])
    return write_config_file(path, values)
