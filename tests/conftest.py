"""Shared pytest wiring: the ``sandbox`` marker, the sandbox cloud's environment, and tests/
on sys.path so every module imports the shared helpers as ``support.*`` (tests/support)."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
SANDBOX_CLOUDS = ROOT / ".sandbox" / "clouds.yaml"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "destroys_sandbox: takes the sandbox down (and up again); runs last")
    config.addinivalue_line(
        "markers", "sandbox: needs the local sandbox cloud (sudo sandbox/up writes "
                   ".sandbox/clouds.yaml)")
    config.addinivalue_line(
        "markers", "e2e: the end-to-end flow; runs on a real cloud instead of the sandbox "
                   "when SPARK_OPENSTACK_E2E_CLOUD names one (the devstack workflow)")


def _sandbox_down_reason() -> str | None:
    if not SANDBOX_CLOUDS.exists():
        return (f"sandbox cloud not up: {SANDBOX_CLOUDS} is missing "
                "(run `sudo sandbox/up` first)")
    try:
        with socket.create_connection(("127.0.0.1", 5000), timeout=2):
            pass
    except OSError as exc:
        return f"sandbox cloud not answering on 127.0.0.1:5000 (keystone): {exc}"
    return None


def pytest_collection_modifyitems(config, items):
    # tests that take the sandbox down run after every other test
    items.sort(key=lambda item: "destroys_sandbox" in item.keywords)
    reason = None
    checked = False
    real_cloud = bool(os.environ.get("SPARK_OPENSTACK_E2E_CLOUD"))
    for item in items:
        if real_cloud and "e2e" in item.keywords:
            continue          # runs against that cloud; no sandbox needed
        if "sandbox" in item.keywords:
            if not checked:
                reason, checked = _sandbox_down_reason(), True
            if reason and os.environ.get("SANDBOX_REQUIRED") == "1":
                # CI brought the sandbox up: a missing sandbox is a failure, not a skip
                raise pytest.UsageError(f"SANDBOX_REQUIRED=1 but {reason}")
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def sandbox_env() -> dict[str, str]:
    """Environment for running the CLI as the sandbox's non-admin user (cloud ``sandbox``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(SANDBOX_CLOUDS)
    env["OS_CLOUD"] = "sandbox"
    env["SPARK_OPENSTACK_CONFIG"] = "/nonexistent/spark-openstack-test-config.yaml"
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env
