"""Unit-test wiring: no test writes the user's real state (pinned host keys); the real-sshd
fixture shared by the SSH tests."""
from __future__ import annotations

import pytest

from support.sshd import Sshd, sshd_skip_reason


@pytest.fixture(autouse=True)
def _private_state_home(tmp_path_factory, monkeypatch):
    """``$XDG_STATE_HOME`` in a temp folder: ``login_command`` and SSH pin host keys there."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture()
def no_user_config(tmp_path, monkeypatch):
    """No settings file of the user's and no cloud from the environment: a CLI test sees
    only its own flags (the settings file is ``tmp_path/config.yaml``, not written)."""
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("SPARK_OPENSTACK_CONFIG", str(path))
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_CLIENT_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture()
def sshd(tmp_path):
    """A real sshd on 127.0.0.1 (support.sshd.Sshd), stopped by its PID after the test;
    skipped unless root with OpenSSH's server installed."""
    reason = sshd_skip_reason()
    if reason:
        pytest.skip(reason)
    folder = tmp_path / "sshd"
    folder.mkdir()
    server = Sshd(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
