"""Where the tool's templates (and the fabfile it installs on masters) live at run time.

``cloud-init/``, ``config_files/``, ``fabfile.py`` and ``fabric.yaml`` sit at the repo root.
A built wheel (``pip install .``, ``pipx install``) carries copies of them inside the
package as ``spark_openstack/_data/`` (setup.py's ``build_py`` puts them there); an
editable install (``pip install -e .``) and the library copy on a cluster's master have no
``_data`` and find them next to the package instead. ``_data`` is tried first.
"""
from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

_TEMPLATE_DIRS = ("cloud-init", "config_files")
PACKAGE_DIR = Path(__file__).resolve().parent
#: Where a wheel's build puts the root templates (see setup.py); absent in a source tree.
PACKAGE_DATA_DIR = PACKAGE_DIR / "_data"


def _candidates() -> list[Path]:
    return [PACKAGE_DATA_DIR, PACKAGE_DIR.parent]


def templates_root() -> Path:
    """The directory holding ``cloud-init/``, ``config_files/`` and ``fabfile.py``."""
    for root in _candidates():
        if any((root / name).is_dir() for name in _TEMPLATE_DIRS):
            return root
    raise ConfigError(
        "cannot find the template folders cloud-init/ and config_files/ "
        f"(looked in: {', '.join(str(p) for p in _candidates())})",
        hint="reinstall: pip install /path/to/spark-openstack (a wheel carries them in "
             "spark_openstack/_data), or pip install -e /path/to/spark-openstack")


def cloud_init_dir() -> Path:
    return templates_root() / "cloud-init"


def config_files_dir() -> Path:
    return templates_root() / "config_files"
