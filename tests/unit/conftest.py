"""Unit-test wiring: no test writes the user's real state (pinned host keys)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_state_home(tmp_path_factory, monkeypatch):
    """``$XDG_STATE_HOME`` in a temp folder: ``login_command`` and SSH pin host keys there."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
