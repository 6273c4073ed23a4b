"""openstacksdk / keystoneauth exceptions -> the project's error tree (the provider boundary).

Nothing above the provider sees an SDK exception: every provider method runs inside
``translating`` (or is decorated with ``translate_errors``).
"""
from __future__ import annotations

import contextlib
import functools
import re
from typing import Callable

from .. import errors


def http_detail(exc: Exception) -> str:
    details = getattr(exc, "details", None)
    message = getattr(exc, "message", None) or str(exc)
    if details and str(details) not in message:
        message = f"{message}: {details}"
    return re.sub(r"\s+", " ", message).strip()


def translate_exception(exc: BaseException, *, action: str = "") -> errors.SparkOpenstackError:
    """Map one openstacksdk / keystoneauth exception to the project's error tree."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk

    where = f"{action}: " if action else ""
    if isinstance(exc, errors.SparkOpenstackError):
        return exc
    if isinstance(exc, sdk.ConfigException):
        return errors.ConfigError(
            f"{where}cannot select a cloud: {exc}",
            hint="pass --cloud NAME (a cloud in clouds.yaml), set OS_CLOUD, or source an "
                 "openrc file with the OS_* variables, exactly as for the `openstack` CLI")
    if isinstance(exc, (ks.MissingRequiredOptions, ks.MissingAuthPlugin, ks.NoMatchingPlugin)):
        return errors.ConfigError(
            f"{where}no usable OpenStack credentials: {exc}",
            hint="pass --cloud NAME, set OS_CLOUD, or source your project's openrc file")
    if isinstance(exc, ks.Unauthorized) or (
            isinstance(exc, sdk.HttpException) and exc.status_code == 401):
        return errors.ConfigError(
            f"{where}the cloud rejected the credentials ({http_detail(exc)})",
            hint="check the username/password/application credential in clouds.yaml or OS_*")
    if isinstance(exc, (ks.ConnectFailure, ks.ConnectTimeout, ks.SSLError,
                        ks.DiscoveryFailure, ks.EndpointNotFound, ks.CatalogException)):
        return errors.CloudError(f"{where}cannot reach the cloud: {exc}",
                                 hint="check auth_url in clouds.yaml / OS_AUTH_URL and the network")
    if isinstance(exc, sdk.ResourceTimeout):
        return errors.TimeoutError_(f"{where}{exc}")
    if isinstance(exc, sdk.DuplicateResource):
        return errors.AmbiguousError(f"{where}{exc}")
    if isinstance(exc, sdk.HttpException):
        detail = http_detail(exc)
        status = exc.status_code
        if status in (403, 413) and re.search(r"quota|limit|exceed", detail, re.I):
            return errors.QuotaError(f"{where}the cloud refused for quota: {detail}",
                                     hint="free resources or ask for a bigger quota")
        if status == 404 or isinstance(exc, sdk.NotFoundException):
            return errors.NotFoundError(f"{where}not found: {detail}")
        if status == 403:
            return errors.CloudError(f"{where}forbidden by the cloud's policy: {detail}",
                                     hint="your role may not allow this; ask the cloud admin")
        return errors.CloudError(f"{where}the cloud answered HTTP {status}: {detail}")
    if isinstance(exc, sdk.ResourceFailure):
        return errors.CloudError(f"{where}{exc}")
    if isinstance(exc, (sdk.SDKException, ks.ClientException)):
        return errors.CloudError(f"{where}{exc}")
    return errors.CloudError(f"{where}{type(exc).__name__}: {exc}")


def _is_translatable(exc: BaseException) -> bool:
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk
    return isinstance(exc, (sdk.SDKException, ks.ClientException))


@contextlib.contextmanager
def translating(action: str = ""):
    """``with translating("create server x"):`` -> SDK errors become project errors."""
    try:
        yield
    except errors.SparkOpenstackError:
        raise
    except Exception as exc:  # noqa: BLE001 - filtered just below
        if _is_translatable(exc):
            raise translate_exception(exc, action=action) from exc
        raise


def translate_errors(fn: Callable) -> Callable:
    """Decorator form of ``translating`` for provider methods."""
    action = fn.__name__.replace("_", " ")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with translating(action):
            return fn(*args, **kwargs)
    return wrapper

