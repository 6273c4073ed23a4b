"""Ctrl-C / SIGTERM in each phase of create-image, on the sandbox cloud, through the CLI.

Each case starts ``create-image --no-hadoop --floating-ip`` as a subprocess, waits for a
phase's progress line on stderr (``PhaseTimer``'s ``[  1.2s] PHASE ...``), signals it and
proves: exit 130 within seconds, and no server, security group, floating IP or image of
that run left in the cloud (checked before the test's own safety-net cleanup). A signal
that lands in the middle of a create request (boot builder) is what the run id is for:
the create's answer is lost, the cleanup finds the thing by the run id.
"""
from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openstack
import pytest

from spark_openstack.model import BUILDER_METADATA_KEY
from support.e2e import builder_of, leftovers, new_keypair

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
MIRROR = "http://10.213.0.1:8099"
ALLOWED = "10.0.0.0/8"
EXIT_WITHIN = 60          # seconds from the signal to the exit, cleanup included


@pytest.fixture(scope="module")
def conn(sandbox_env):
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", sandbox_env["OS_CLIENT_CONFIG_FILE"])
    connection = openstack.connect(cloud="sandbox")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def keypair(conn, tmp_path_factory):
    name, key = new_keypair(conn, tmp_path_factory.mktemp("keys"), prefix="it-imgkey")
    yield name, key
    conn.compute.delete_keypair(name, ignore_missing=True)


def wait_clean(conn, image_name: str, timeout: float = 30, stay: float = 5) -> dict[str, list]:
    """Deletes settle a moment after the CLI exits; once clean it must stay clean for
    ``stay`` seconds (a create the signal cut off in flight would land meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(conn, image=image_name)
        if not left:
            time.sleep(stay)
            return leftovers(conn, image=image_name)
        if time.monotonic() > deadline:
            return left
        time.sleep(2)


def remove_everything(conn, image_name: str) -> None:
    """Safety net after the assertions: nothing of a failed case stays in the sandbox."""
    for fip in conn.network.ips():
        if builder_of(fip.description, image_name):
            conn.network.delete_ip(fip, ignore_missing=True)
    servers = [s for s in conn.compute.servers()
               if (s.metadata or {}).get(BUILDER_METADATA_KEY) == image_name]
    for srv in servers:
        conn.compute.delete_server(srv, ignore_missing=True)
    for srv in servers:
        conn.compute.wait_for_delete(srv, wait=120)
    for group in conn.network.security_groups():
        if builder_of(group.description, image_name):
            for _ in range(30):
                try:
                    conn.network.delete_security_group(group, ignore_missing=True)
                    break
                except openstack.exceptions.ConflictException:
                    time.sleep(2)
    for img in conn.image.images():
        if img.name == image_name:
            conn.image.delete_image(img, ignore_missing=True)


class Run:
    """``create-image`` as a subprocess whose stderr lines are read as they come."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spark_openstack.cli", *args], env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_line(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None:
                pytest.fail(f"create-image exited {self.proc.wait()} before {text!r}:\n"
                            + "".join(self.stderr))
            if text in (line or ""):
                return line
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} on stderr after {timeout}s:\n" + "".join(self.stderr))

    def finish(self, timeout: float) -> int:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"create-image still running {timeout}s after the signal:\n"
                        + "".join(self.stderr))
        self.reader.join(timeout=10)        # stderr is read by the reader thread only
        self.stdout = self.proc.stdout.read()
        return self.proc.returncode


def _image_appears(conn, image_name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(i.name == image_name for i in conn.image.images()):
            return True
        time.sleep(0.2)
    return False


# (phase line, signal, wait for the snapshot image). The snapshot case signals once the
# snapshot exists in Glance, so the unfinished image is what its cleanup must delete; the
# others signal as soon as the phase begins (boot builder: mid-create, the answer lost).
CASES = [
    pytest.param("validate ...", signal.SIGINT, False, id="validate-SIGINT"),
    pytest.param("boot builder ...", signal.SIGINT, False, id="boot-SIGINT"),
    pytest.param("wait for ssh ...", signal.SIGTERM, False, id="ssh-SIGTERM"),
    pytest.param("bake (cloud-init) ...", signal.SIGINT, False, id="bake-SIGINT"),
    pytest.param("snapshot ...", signal.SIGINT, True, id="snapshot-SIGINT"),
]


@pytest.mark.parametrize("phase,signum,until_image", CASES)
def test_interrupt_leaves_nothing(sandbox_env, conn, keypair, phase, signum, until_image):
    image_name = f"it-intr-{secrets.token_hex(3)}"
    kp_name, key = keypair
    run = Run(sandbox_env, "create-image", "-n", image_name, "--base-image", "debian-12",
              "--flavor", "m1.small", "-k", kp_name, "--identity-file", key,
              "--allowed-cidr", ALLOWED, "--no-hadoop", "--mirror", MIRROR,
              "--spark-version", "4.3.0", "--floating-ip", "--timeout", "600")
    try:
        run.wait_for_line(phase, timeout=300)
        if until_image:
            assert _image_appears(conn, image_name, timeout=60), \
                "the snapshot never showed up:\n" + "".join(run.stderr)
        signalled = time.monotonic()
        run.proc.send_signal(signum)
        code = run.finish(timeout=EXIT_WITHIN + 30)
        took = time.monotonic() - signalled
        err = "".join(run.stderr)
        print(f"{signum!r} at {phase!r}: exit {code} {took:.1f}s later\n{err}")
        assert code == 130, f"exit {code} after {signum!r} in {phase!r}:\n{err}\n{run.stdout}"
        assert took < EXIT_WITHIN, f"took {took:.1f}s to exit:\n{err}"
        assert "interrupted" in err, err
        assert "could not delete" not in err, err
        left = wait_clean(conn, image_name)
        assert not left, f"left behind after {signum!r} in {phase!r}: {left}\n{err}"
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        remove_everything(conn, image_name)
