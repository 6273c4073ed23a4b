"""One way to wait, one way to fan out (issue 19), checked on the sources.

Every wait, local or remote, goes through ``spark_openstack/polling.py`` (``poll``,
``sleep``: a deadline, backoff, Ctrl-C); a remote wait is a bounded poll of a one-shot
probe (``probes.wait_for_probe``), never a loop shipped to a node; every fan-out goes
through ``spark_openstack/executor.py``. So outside those two files the product's code
(the package, fabfile.py, config_files/) holds none of the markers below.
``cloud-init/fetch_verified.py`` runs standalone on the image during a bake and is not
scanned. ``threading.Semaphore``/``Event``/``Lock`` are fine: they do not wait by time.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {ROOT / "spark_openstack" / "polling.py", ROOT / "spark_openstack" / "executor.py"}

#: (what it is, the pattern that finds it)
MARKERS = (
    ("a bare sleep (use polling.sleep / polling.poll)", re.compile(r"\btime\.sleep\(")),
    ("a bare sleep (use polling.sleep / polling.poll)",
     re.compile(r"\bfrom\s+time\s+import\b[^\n]*\bsleep\b")),
    ("a thread of its own (use executor.py)", re.compile(r"\bthreading\.Thread\(")),
    ("a thread pool of its own (use executor.py)", re.compile(r"ThreadPoolExecutor")),
    ("a counted shell loop (use probes.wait_for_probe)", re.compile(r"\$\(seq\b")),
    ("a shell sleep in a shipped command (use probes.wait_for_probe)",
     re.compile(r"(;|&&|\bdo)\s*sleep\s+[0-9]")),
    ("a wait on ABORT (use polling.sleep)", re.compile(r"\bABORT\.wait\b")),
    ("a remote command that blocks until done (poll its state instead)",
     re.compile(r"cloud-init status --wait|-setrep\b.*\s-w\b")),
)


def _sources() -> list[Path]:
    files = sorted((ROOT / "spark_openstack").rglob("*.py"))
    files.append(ROOT / "fabfile.py")
    files += sorted(p for p in (ROOT / "config_files").rglob("*") if p.is_file())
    return [p for p in files if "__pycache__" not in p.parts and p not in ALLOWED]


def offenders(paths) -> list[str]:
    found = []
    for path in paths:
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            for what, pattern in MARKERS:
                if pattern.search(line):
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    found.append(f"{where}:{lineno}: {what}: {line.strip()}")
    return found


def test_the_scan_covers_the_product():
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {"spark_openstack/jobs.py", "spark_openstack/batch.py", "fabfile.py",
            "spark_openstack/services/base.py"} <= names
    assert any(n.startswith("config_files/") for n in names)
    assert not names & {"spark_openstack/polling.py", "spark_openstack/executor.py"}


@pytest.mark.parametrize("line", [
    "        time.sleep(0.1)",
    "from time import monotonic, sleep",
    "    t = threading.Thread(target=run)",
    "    with concurrent.futures.ThreadPoolExecutor(4) as pool:",
    'f"for i in $(seq 1 100); do [ -s {d}/pgid ] && break; sleep 0.1; done"',
    '"until test -s pid; do sleep 1; done"',
    "        if polling.ABORT.wait(3):",
    'conn.run("cloud-init status --wait --long", hide=True)',
    'self.on_master(f"hdfs dfs -setrep -R -w {n} /", timeout=3600)',
])
def test_the_scan_finds_each_marker(tmp_path, line):
    planted = tmp_path / "planted.py"
    planted.write_text(line + "\n")
    assert offenders([planted])


def test_fine_lines_pass(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("lock = threading.Lock()\nsem = threading.Semaphore(2)\n"
                       "polling.sleep(interval)\nstarted = time.monotonic()\n"
                       "# sleeps and waits go through polling.poll\n")
    assert offenders([planted]) == []


def test_every_wait_goes_through_polling_and_every_fan_out_through_executor():
    found = offenders(_sources())
    assert not found, ("waits outside polling.py / fan-outs outside executor.py "
                       "(issue 19: one way to wait):\n" + "\n".join(found))
