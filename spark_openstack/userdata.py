"""Cloud-init user-data for the image builder.

The bake user-data is the only thing that runs on the builder: it must say clearly when it
fails (cloud-init then reports an error, which ``image.create_image`` shows) and must never
carry a secret, since everything it writes ends up in the image.
"""
from __future__ import annotations

import shlex
from urllib.parse import urlparse

import jinja2

from . import __version__, paths
from .config import (DEFAULT_JAVA_PACKAGE, DEFAULT_MIRROR, JAVA_BY_RELEASE, JAVA_FALLBACKS,
                     JUPYTER_PACKAGES, validate_bake_inputs)

SERVICE_USER = "hduser"
#: The image's own Python environment (a venv), made when packages are asked for: the
#: Python of drivers, executors and notebook kernels alike (``ClusterFacts.python``).
IMAGE_PYTHON_ENV = "/opt/spark-openstack/python"
SYSTEM_PYTHON = "/usr/bin/python3"
CONSTRAINTS_PATH = "/usr/local/lib/spark-openstack/python-constraints.txt"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.cloud_init_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["shquote"] = lambda value: shlex.quote(str(value))
    return env


def spark_tarball_url(*, mirror: str, spark_version: str) -> str:
    """Where Apache's layout keeps a Spark release (the bake verifies it by its .sha512)."""
    return (f"{mirror.rstrip('/')}/spark/spark-{spark_version}/"
            f"spark-{spark_version}-bin-hadoop3.tgz")


def hadoop_tarball_url(*, mirror: str, hadoop_version: str) -> str:
    """Where Apache's layout keeps a Hadoop release."""
    return (f"{mirror.rstrip('/')}/hadoop/common/hadoop-{hadoop_version}/"
            f"hadoop-{hadoop_version}.tar.gz")


def java_choice_values() -> dict[str, str]:
    """``JAVA_BY_RELEASE`` and ``JAVA_FALLBACKS`` as the bake's shell reads them."""
    return {"java_by_release": " ".join(f"{release.replace(' ', ':')}={package}"
                                        for release, package in JAVA_BY_RELEASE.items()),
            "java_fallbacks": " ".join(JAVA_FALLBACKS)}


def render_java_choice() -> str:
    """The bake's ``choose_java_package`` shell function alone (the bake includes the
    same template), so tests can run it against a given os-release."""
    return _environment().get_template("java_choice.sh.j2").render(**java_choice_values())


def render_bake_userdata(*, spark_version: str, hadoop_version: str | None,
                         mirror: str = DEFAULT_MIRROR,
                         java_package: str = DEFAULT_JAVA_PACKAGE,
                         apt_proxy: str | None = None,
                         python_packages: list[str] | tuple[str, ...] = (),
                         python_constraints: str | None = None,
                         pip_index_url: str | None = None,
                         pip_find_links: str | None = None,
                         jupyter: bool = False,
                         built_by: str | None = None) -> str:
    """The builder's ``#cloud-config``: hduser, Java if missing (the release's OpenJDK
    when ``java_package`` is "auto"), verified Spark/Hadoop; apt through ``apt_proxy``.

    The inputs are checked again here (``ImageSpec`` checked them first): they become a
    script that runs as root on the builder, whoever calls this. Python packages (and
    Jupyter's, with ``jupyter``) go into a venv at ``IMAGE_PYTHON_ENV``, never into the
    system's Python; a constraints file's text is written next to the bake script.
    """
    python_packages = list(python_packages or ())
    validate_bake_inputs(spark_version=spark_version, hadoop_version=hadoop_version,
                         mirror=mirror, java_package=java_package, apt_proxy=apt_proxy,
                         python_packages=python_packages,
                         python_constraints=python_constraints,
                         pip_index_url=pip_index_url, pip_find_links=pip_find_links)
    constraints = (python_constraints or "").strip()
    env = _environment()
    values = dict(
        spark_version=spark_version,
        hadoop_version=hadoop_version,
        spark_url=spark_tarball_url(mirror=mirror, spark_version=spark_version),
        hadoop_url=(hadoop_tarball_url(mirror=mirror, hadoop_version=hadoop_version)
                    if hadoop_version else ""),
        java_package=java_package,
        apt_proxy=apt_proxy or "",
        **java_choice_values(),
        python_packages=python_packages,
        jupyter=bool(jupyter),
        jupyter_packages=list(JUPYTER_PACKAGES) if jupyter else [],
        python_env=IMAGE_PYTHON_ENV if (python_packages or jupyter) else "",
        system_python=SYSTEM_PYTHON,
        constraints_path=CONSTRAINTS_PATH if constraints else "",
        pip_index_url=pip_index_url or "",
        pip_find_links=pip_find_links or "",
        # pip ignores a plain-http source unless told to trust it: one the user named is
        trusted_hosts=list(dict.fromkeys(
            urlparse(url).netloc for url in (pip_index_url, pip_find_links)
            if url and urlparse(url).scheme == "http")),
        service_user=SERVICE_USER,
        built_by=built_by or f"spark-openstack {__version__}",
    )
    bake_sh = env.get_template("bake.sh.j2").render(**values)
    fetch_py = (paths.cloud_init_dir() / "fetch_verified.py").read_text()
    return env.get_template("bake.yaml.j2").render(
        service_user=SERVICE_USER, bake_sh=bake_sh, fetch_verified_py=fetch_py,
        constraints_path=CONSTRAINTS_PATH, constraints=constraints)

