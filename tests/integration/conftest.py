"""Fixtures of the end-to-end modules (module-scoped: each module gets its own)."""
from __future__ import annotations

import os

import pytest

from support.e2e import e2e_environment, new_keypair


@pytest.fixture(scope="module")
def e2e_env(sandbox_env):
    return e2e_environment(sandbox_env)


@pytest.fixture(scope="module")
def cloud(e2e_env):
    import openstack
    if e2e_env.get("OS_CLIENT_CONFIG_FILE"):
        os.environ.setdefault("OS_CLIENT_CONFIG_FILE", e2e_env["OS_CLIENT_CONFIG_FILE"])
    conn = openstack.connect(cloud=e2e_env["OS_CLOUD"])
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def keypair(cloud, tmp_path_factory, request):
    """A fresh keypair for the module, named after it (test_day2 -> day2-xxxxxx)."""
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    name, key = new_keypair(cloud, tmp_path_factory.mktemp(f"{prefix}-key"), prefix=prefix)
    yield name, key
    cloud.compute.delete_keypair(name, ignore_missing=True)
