"""Where the tool's templates live at run time.

The package is installed editable (``pip install -e .``), so ``cloud-init/`` and
``config_files/`` are found next to the package in the source tree. An installed copy
may instead carry them under ``<prefix>/share/spark-openstack/``; both are tried.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import ConfigError

_TEMPLATE_DIRS = ("cloud-init", "config_files")


def _candidates() -> list[Path]:
    return [Path(__file__).resolve().parent.parent,
            Path(sys.prefix) / "share" / "spark-openstack"]


def templates_root() -> Path:
    """The directory holding ``cloud-init/`` and ``config_files/``."""
    for root in _candidates():
        if any((root / name).is_dir() for name in _TEMPLATE_DIRS):
            return root
    raise ConfigError(
        "cannot find the template folders cloud-init/ and config_files/ "
        f"(looked in: {', '.join(str(p) for p in _candidates())})",
        hint="install the project from its source tree: pip install -e /path/to/spark-openstack")


def cloud_init_dir() -> Path:
    return templates_root() / "cloud-init"


def config_files_dir() -> Path:
    return templates_root() / "config_files"
