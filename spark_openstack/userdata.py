"""Cloud-init user-data for the image builder (and, optionally, for cluster nodes).

The bake user-data is the only thing that runs on the builder: it must say clearly when it
fails (cloud-init then reports an error, which ``image.create_image`` shows) and must never
carry a secret, since everything it writes ends up in the image.
"""
from __future__ import annotations

import re
import shlex
from urllib.parse import urlparse

import jinja2

from . import __version__, paths
from .errors import ValidationError

DEFAULT_MIRROR = "https://archive.apache.org/dist"
DEFAULT_JAVA_PACKAGE = "openjdk-17-jre-headless"
SERVICE_USER = "hduser"

_VERSION = re.compile(r"^[0-9]+(\.[0-9]+){1,3}([-.][0-9A-Za-z]+)*$")
_DEBIAN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
# pip requirement specifiers without shell or option syntax: name[extras]==1.2, name>=1
_PIP_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9_,.-]+\])?"
                              r"([<>=!~]=?[0-9A-Za-z.*+-]+(,[<>=!~]=?[0-9A-Za-z.*+-]+)*)?$")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.cloud_init_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["shquote"] = lambda value: shlex.quote(str(value))
    return env


def validate_bake_inputs(*, spark_version: str, hadoop_version: str | None, mirror: str,
                         java_package: str, python_packages: list[str] | tuple[str, ...]) -> None:
    """Refuse inputs that would make a broken or unsafe builder script, naming the input."""
    if not _VERSION.match(spark_version or ""):
        raise ValidationError(f"--spark-version {spark_version!r} is not a version like 4.0.1")
    if hadoop_version is not None and not _VERSION.match(hadoop_version):
        raise ValidationError(f"--hadoop-version {hadoop_version!r} is not a version like 3.4.1",
                              hint="or pass --no-hadoop for a Spark-only image")
    parsed = urlparse(mirror or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError(f"--mirror {mirror!r} is not an http(s) URL",
                              hint=f"Apache's layout is expected, e.g. {DEFAULT_MIRROR}")
    if not _DEBIAN_PACKAGE.match(java_package or ""):
        raise ValidationError(f"--java-package {java_package!r} is not a Debian package name")
    for package in python_packages:
        if not _PIP_REQUIREMENT.match(package):
            raise ValidationError(f"--python-packages entry {package!r} is not a plain "
                                  "requirement like numpy or pandas==2.2.3")


def spark_tarball_url(*, mirror: str, spark_version: str) -> str:
    return (f"{mirror.rstrip('/')}/spark/spark-{spark_version}/"
            f"spark-{spark_version}-bin-hadoop3.tgz")


def hadoop_tarball_url(*, mirror: str, hadoop_version: str) -> str:
    return (f"{mirror.rstrip('/')}/hadoop/common/hadoop-{hadoop_version}/"
            f"hadoop-{hadoop_version}.tar.gz")


def render_bake_userdata(*, spark_version: str, hadoop_version: str | None,
                         mirror: str = DEFAULT_MIRROR,
                         java_package: str = DEFAULT_JAVA_PACKAGE,
                         python_packages: list[str] | tuple[str, ...] = (),
                         built_by: str | None = None) -> str:
    """The builder's ``#cloud-config``: hduser, Java if missing, verified Spark/Hadoop."""
    python_packages = list(python_packages or ())
    validate_bake_inputs(spark_version=spark_version, hadoop_version=hadoop_version,
                         mirror=mirror, java_package=java_package,
                         python_packages=python_packages)
    env = _environment()
    values = dict(
        spark_version=spark_version,
        hadoop_version=hadoop_version,
        mirror=mirror.rstrip("/"),
        java_package=java_package,
        python_packages=python_packages,
        service_user=SERVICE_USER,
        built_by=built_by or f"spark-openstack {__version__}",
    )
    bake_sh = env.get_template("bake.sh.j2").render(**values)
    fetch_py = (paths.cloud_init_dir() / "fetch_verified.py").read_text()
    return env.get_template("bake.yaml.j2").render(
        service_user=SERVICE_USER, bake_sh=bake_sh, fetch_verified_py=fetch_py)


def render_node_userdata(*, node_name: str) -> str:
    """Optional boot user-data for cluster nodes: the hostname, and hands off /etc/hosts."""
    return _environment().get_template("node.yaml.j2").render(node_name=node_name)
