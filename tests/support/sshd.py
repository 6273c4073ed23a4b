"""A real sshd on 127.0.0.1 for the SSH tests (root only, OpenSSH server installed); the
``sshd`` fixture (tests/unit/conftest.py) starts one per test and stops it by its PID."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from spark_openstack import ssh
from support.keys import keygen

SSHD = "/usr/sbin/sshd"


def sshd_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "sshd can log users in only when started as root"
    if not os.access(SSHD, os.X_OK):
        return f"no {SSHD} (OpenSSH server not installed)"
    if shutil.which("ssh-keygen") is None:
        return "no ssh-keygen"
    return None


class Sshd:
    """One sshd -D on 127.0.0.1:PORT; ``restart(new_host_key=True)`` keeps the port."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = self._free_port()
        self.client_key = keygen(folder / "client")
        (folder / "authorized_keys").write_text((folder / "client.pub").read_text())
        self.generation = 0
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    @property
    def host_key_pub(self) -> str:
        return (self.folder / f"host{self.generation}.pub").read_text().split()[1]

    def start(self) -> None:
        # Debian's sshd refuses to start without its privilege separation folder
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        host_key = self.folder / f"host{self.generation}"
        if not host_key.exists():
            keygen(host_key)
        config = self.folder / "sshd_config"
        config.write_text("\n".join([
            "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {self.folder / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}",
            "StrictModes no", "UsePAM no", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password", "AllowTcpForwarding yes",
            "MaxStartups 100:30:200", "MaxSessions 100", "LogLevel ERROR", ""]))
        with open(self.folder / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config), "-p", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: "
                                   f"{(self.folder / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.settimeout(2)
                    if sock.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("sshd did not answer within 15 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()            # by its PID: only the sshd this test started
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, *, new_host_key: bool) -> None:
        self.stop()
        if new_host_key:
            self.generation += 1
        self.start()

    def connect(self, *, known_hosts: str | None, host: str = "127.0.0.1", gateway=None):
        return ssh.connect(host=f"{host}:{self.port}", user="root",
                           key_filename=str(self.client_key), gateway=gateway,
                           known_hosts=known_hosts, timeout=10)
