"""Build hook: ship the repo-root templates and the fabfile inside the package.

``cloud-init/``, ``config_files/``, ``fabfile.py`` and ``fabric.yaml`` stay at the repo root
(that is where the seed's layout, the docs and ``fab`` on a checkout expect them). A plain
``pip install .`` / wheel would leave them behind, so ``build_py`` copies them into the
BUILD directory as ``spark_openstack/_data/...`` (never into the source tree);
``spark_openstack.paths`` looks there first and falls back to the repo root, which is what
an editable install (``pip install -e .``) uses. MANIFEST.in puts them in the sdist.
All metadata lives in setup.cfg.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_DIRS = ("cloud-init", "config_files")
DATA_FILES = ("fabfile.py", "fabric.yaml")


class build_py_with_data(build_py):
    """``build_py`` + copies of the root templates/fabfile under ``spark_openstack/_data``."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return          # editable: the package reads the source tree's root folders
        target = Path(self.build_lib) / "spark_openstack" / "_data"
        for name in DATA_DIRS:
            for src in sorted((ROOT / name).rglob("*")):
                if src.is_file() and "__pycache__" not in src.parts and src.suffix != ".pyc":
                    self._copy(src, target / src.relative_to(ROOT))
        for name in DATA_FILES:
            self._copy(ROOT / name, target / name)

    def _copy(self, src: Path, dest: Path) -> None:
        if not src.is_file():
            raise FileNotFoundError(f"{src} is missing: it must ship in the package")
        self.mkpath(str(dest.parent))
        self.copy_file(str(src), str(dest), preserve_mode=False)


setup(cmdclass={"build_py": build_py_with_data})
