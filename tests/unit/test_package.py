"""A built package is the whole tool: the wheel carries the templates and the fabfile.

``cloud-init/``, ``config_files/``, ``fabfile.py`` and ``fabric.yaml`` live at the repo root;
setup.py's ``build_py`` copies them into the wheel as ``spark_openstack/_data/`` and
MANIFEST.in puts them in the sdist. This builds sdist -> wheel from a copy of the source
tree (the repo itself is never written to), installs the wheel into a bare directory and
uses it from a process that cannot see the repo. Offline: no build isolation, no index.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DATA = "spark_openstack/_data"
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", ".sandbox", "build", "dist", "*.egg-info",
                                    "__pycache__", "*.pyc", ".pytest_cache", "*.log")
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def _version(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in metadata.version(name).split(".")[:2] if p.isdigit())
    except metadata.PackageNotFoundError:
        return ()


def _can_build_offline() -> str | None:
    """Why a wheel cannot be built without build isolation here, or None."""
    if _version("setuptools") < (61,):
        return "setuptools>=61 is not installed (pip install -e '.[test]')"
    if _version("wheel") == () and _version("setuptools") < (70, 1):
        return "no bdist_wheel: install wheel or setuptools>=70.1 (pip install -e '.[test]')"
    return None


def _shipped_sources() -> dict[str, Path]:
    """``{path inside the package's _data: source file}`` for everything that must ship."""
    files = {}
    for folder in ("cloud-init", "config_files"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files[f"{DATA}/{path.relative_to(REPO).as_posix()}"] = path
    for name in ("fabfile.py", "fabric.yaml"):
        files[f"{DATA}/{name}"] = REPO / name
    return files


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(sdist, wheel, install dir)``: built from a copy of the tree, wheel from the sdist."""
    reason = _can_build_offline()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=NOT_SOURCE)
    (tmp / "sdist").mkdir()
    name = _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                 "print(b.build_sdist(sys.argv[1]))", str(tmp / "sdist")],
                cwd=src).stdout.strip().splitlines()[-1]
    sdist = tmp / "sdist" / name
    with tarfile.open(sdist) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp / "unpacked", **safe)
    (unpacked,) = (tmp / "unpacked").iterdir()
    _run(PIP + ["wheel", "--no-deps", "--no-index", "--no-build-isolation",
                "-w", str(tmp / "wheel"), str(unpacked)], cwd=tmp)
    (wheel,) = (tmp / "wheel").glob("spark_openstack-*.whl")
    target = tmp / "installed"
    _run(PIP + ["install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
         cwd=tmp)
    return sdist, wheel, target


def test_the_sdist_carries_the_root_templates_and_fabfile(built):
    sdist, _, _ = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    expected = {key[len(DATA) + 1:] for key in _shipped_sources()} | {"setup.py", "MANIFEST.in"}
    assert expected <= names, f"missing from the sdist: {sorted(expected - names)}"


def test_the_wheel_carries_the_templates_and_fabfile_unchanged(built):
    _, wheel, _ = built
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        missing = sorted(set(_shipped_sources()) - names)
        assert not missing, f"missing from the wheel: {missing}"
        for inside, source in _shipped_sources().items():
            assert whl.read(inside) == source.read_bytes(), f"{inside} differs from {source}"
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_the_installed_wheel_works_without_the_source_tree(built, tmp_path):
    """Import from the install dir only (repo not on sys.path, cwd elsewhere) and do what
    launch and create-image do with the templates."""
    _, _, target = built
    shutil.copy(HERE.parent / "support" / "facts.py", tmp_path / "deploy_facts.py")
    script = tmp_path / "use_installed.py"
    script.write_text(textwrap.dedent("""\
        import json, sys
        import yaml
        from deploy_facts import make_facts
        import spark_openstack
        from spark_openstack import deploy, paths, render, userdata

        facts = make_facts(workers=2, services=("hdfs", "yarn", "spark"))
        rendered = {}
        for node in facts.nodes:
            rendered.update(render.render_node_configs(facts=facts, node=node))
        hosts = render.render_etc_hosts(facts=facts)
        bake = userdata.render_bake_userdata(spark_version="4.3.0", hadoop_version="3.4.1",
                                             mirror="http://10.213.0.1:8099/")
        bake_files = {f["path"]: f["content"] for f in yaml.safe_load(bake)["write_files"]}
        print(json.dumps({
            "package_file": spark_openstack.__file__,
            "sys_path": sys.path,
            "templates_root": str(paths.templates_root()),
            "rendered": sorted(rendered),
            "conf_dirs": {"hadoop": render.cluster_dirs(facts).hadoop_conf,
                          "spark": render.cluster_dirs(facts).spark_conf},
            "empty": sorted(k for k, v in rendered.items() if not v.strip()),
            "hosts": hosts,
            "bake_starts": bake.splitlines()[0],
            "bake_files": sorted(bake_files),
            "fetch_verified": next(v for k, v in bake_files.items()
                                   if k.endswith("fetch_verified.py")),
            "library_files": sorted(deploy._library_files()),
            "remote_lib": deploy.REMOTE_LIB,
        }))
        """))
    deps = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = os.pathsep.join([str(target), *dict.fromkeys(deps)])
    # -S: no site-packages processing, so the editable install's .pth finder cannot map
    # spark_openstack back to the repo; only PYTHONPATH (install dir + dependencies) counts.
    out = json.loads(_run([sys.executable, "-S", str(script)], cwd=tmp_path, env=env).stdout)

    assert Path(out["package_file"]).is_relative_to(target)
    assert not any(Path(p or ".").resolve() == REPO for p in out["sys_path"])
    assert out["templates_root"] == str(target / "spark_openstack" / "_data")

    config_root = REPO / "config_files"
    for group, conf_dir in out["conf_dirs"].items():
        for template in sorted((config_root / group).glob("*.j2")):
            assert f"{conf_dir}/{template.name[:-3]}" in out["rendered"], \
                f"{group}/{template.name} was not rendered"
    assert not out["empty"], f"rendered empty: {out['empty']}"
    assert "10.213.0.21 demo-worker-1" in " ".join(out["hosts"].split())

    assert out["bake_starts"] == "#cloud-config"
    assert out["fetch_verified"] == (REPO / "cloud-init" / "fetch_verified.py").read_text()

    lib = out["remote_lib"]
    files = set(out["library_files"])
    assert {f"{lib}/fabfile.py", f"{lib}/fabric.yaml",
            f"{lib}/spark_openstack/__init__.py", f"{lib}/spark_openstack/deploy.py"} <= files
    templates = {f"{lib}/config_files/{p.relative_to(config_root).as_posix()}"
                 for p in config_root.rglob("*.j2")}
    assert templates <= files, f"not copied to the master: {sorted(templates - files)}"
    assert not any("/_data/" in f for f in files), "the wheel's _data must not be copied twice"
