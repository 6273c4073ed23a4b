"""The sandbox mirror's Hadoop 3 tarball (sandbox/build_hadoop.py) on this machine, loopback
only: unpacking it, writing site files, and starting/stopping its real daemons by pid.

Shared by tests/sandbox/test_sandbox_hadoop.py, tests/unit/test_services.py and
tests/unit/test_scale.py. Tests using it
are skipped when the tarball has not been built (sudo sandbox/up builds it), unless
SANDBOX_REQUIRED=1, then they fail.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import tarfile
import time
from pathlib import Path

import pytest

from spark_openstack.render import JAVA_MODULE_OPENS

ROOT = Path(__file__).resolve().parents[2]
VERSION = "3.4.2"
TARBALL = Path(os.environ.get(
    "SANDBOX_HADOOP_TARBALL",
    ROOT / f".sandbox/mirror/hadoop/common/hadoop-{VERSION}/hadoop-{VERSION}.tar.gz"))
#: JVM flags that make the daemons and clients start faster on a small CI machine
FAST_JVM = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


def need(cond: bool, reason: str) -> None:
    if cond:
        return
    if os.environ.get("SANDBOX_REQUIRED") == "1":
        pytest.fail(f"SANDBOX_REQUIRED=1 but {reason}")
    pytest.skip(reason)


def require_tarball() -> Path:
    need(TARBALL.is_file(), f"{TARBALL} is not built (sudo sandbox/up builds it with "
                            "sandbox/build_hadoop.py)")
    need(shutil.which("java") is not None or bool(os.environ.get("JAVA_HOME")),
         "no java on PATH and no JAVA_HOME")
    return TARBALL


def unpack(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tf:
        tf.extractall(dest, filter="tar")
    return dest / f"hadoop-{VERSION}"


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free on ``host`` right now, below the kernel's ephemeral range:
    a port from that range (bind to 0) may be taken by some client connection's source port
    before the daemon that is to listen on it starts. Never a fixed port."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    low = low if low > 12000 else 65536
    rng = random.Random()
    found: list[int] = []
    while len(found) < n:
        port = rng.randrange(10000, low - 1)
        if port in found:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        found.append(port)
    return found


def site(props: dict[str, str]) -> str:
    body = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n"
                   for k, v in props.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


def hadoop_env(*, logs: Path, pids: Path, ident: str, opens: bool = True,
               extra: str = "") -> str:
    """etc/hadoop/hadoop-env.sh as config_files/hadoop/hadoop-env.sh.j2 renders it (pid and
    log dirs, one ident, a heap cap, the Java 17 --add-opens list)."""
    return (f"export HADOOP_LOG_DIR={logs}\nexport HADOOP_PID_DIR={pids}\n"
            f"export HADOOP_IDENT_STRING={ident}\nexport HADOOP_HEAPSIZE_MAX=256m\n"
            f'export HADOOP_OPTS="${{HADOOP_OPTS:-}} {FAST_JVM}'
            + (f" {JAVA_MODULE_OPENS}" if opens else "") + '"\n' + extra)


def clean_env(home: Path) -> dict[str, str]:
    """This process's environment without any Hadoop setting, the release's bin/ first."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HADOOP_", "HDFS_", "YARN_", "MAPRED_"))}
    env["PATH"] = f"{home}/bin:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def kill_all(pids) -> None:
    """SIGKILL every pid that is still one of our daemons' JVMs (by pid, nothing broader)."""
    for pid in set(pids):
        try:
            if alive(pid) and any(a.startswith("-Dproc_") for a in cmdline(pid)):
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            pass


def pids_in(*dirs: Path) -> list[int]:
    out = []
    for d in dirs:
        for f in Path(d).glob("*.pid"):
            text = f.read_text().strip()
            if text.isdigit():
                out.append(int(text))
    return out


def wait_for(check, *, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout:.0f}s")
        time.sleep(interval)
