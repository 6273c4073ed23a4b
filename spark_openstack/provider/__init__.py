"""The one door to OpenStack: a thin, typed layer over openstacksdk.

``OpenStackProvider`` is a small facade over an ``openstack.connection.Connection``,
assembled from one class per seam of the cloud (read them in this order):

* ``naming``     pure functions, no connection: resource names, server metadata and
                 tags, ``node_from_server``, quota arithmetic;
* ``sdk_errors`` SDK/keystoneauth exceptions -> ``spark_openstack.errors`` (every public
                 method runs inside ``translating``: callers never see an SDK exception);
* ``catalog``    look-ups that validate input (image, flavor, keypair, network, pool),
                 microversions and the quota check;
* ``compute``    servers (create never waits; one list request per poll) and server groups;
* ``network``    the security group (its rules too), ports and floating IPs;
* ``images``     snapshots and image properties for create-image, old volumes.

``request_count`` counts the HTTP requests sent (for the benchmarks).
"""
from __future__ import annotations

import functools
import threading

from . import naming
from .catalog import CatalogMixin
from .compute import ComputeMixin
from .images import ImageMixin
from .naming import (FIP_DESCRIPTION_PREFIX, QuotaNeed, fip_description,
                     security_group_name, server_group_name)
from .network import NetworkMixin, security_group_rule_count, security_group_rules
from .sdk_errors import translate_errors, translate_exception, translating

#: openstacksdk's own retries (keystoneauth): a refused/reset connection and a 429 or
#: 5xx-from-a-proxy answer are retried with backoff, honouring ``Retry-After``; one flaky
#: answer must not roll back a nearly finished launch or stop a cleanup half way.
#: Every request is bounded too (keystoneauth's ``timeout``): a cloud that accepts the
#: connection and never answers fails that request instead of holding a launch, its
#: cleanup or a Ctrl-C forever.
RETRY_SETTINGS = {"connect_retries": 4, "status_code_retries": 5,
                  "retriable_status_codes": [429, 502, 503, 504], "api_timeout": 60}


class OpenStackProvider(CatalogMixin, ComputeMixin, NetworkMixin, ImageMixin):
    """openstacksdk behind project-level methods; see the module docstring for the seams."""

    # the pure helpers, also reachable without a connection in ``naming``
    server_role = staticmethod(naming.server_role)
    cluster_metadata = staticmethod(naming.cluster_metadata)
    cluster_tags = staticmethod(naming.cluster_tags)
    node_from_server = staticmethod(naming.node_from_server)

    def __init__(self, conn):
        self.conn = conn
        self._count_lock = threading.Lock()
        self._requests = 0
        self._compute_max: tuple[int, int] | None = None
        self._install_request_counter()

    @classmethod
    def connect(cls, *, cloud: str | None = None) -> "OpenStackProvider":
        """Build from clouds.yaml / OS_CLOUD / OS_* exactly like the ``openstack`` CLI.

        ``cloud=None`` lets openstacksdk resolve OS_CLOUD and then the OS_* variables.
        """
        import openstack
        with translating("connect to the cloud"):
            conn = openstack.connect(cloud=cloud, **RETRY_SETTINGS)
        return cls(conn)

    def _install_request_counter(self) -> None:
        session = self.conn.session
        original = session.request

        @functools.wraps(original)
        def counting_request(*args, **kwargs):
            with self._count_lock:
                self._requests += 1
            return original(*args, **kwargs)
        session.request = counting_request

    @property
    def request_count(self) -> int:
        """HTTP requests sent through this provider's session (auth and discovery included)."""
        return self._requests


__all__ = ["OpenStackProvider", "QuotaNeed", "RETRY_SETTINGS", "FIP_DESCRIPTION_PREFIX",
           "fip_description", "security_group_name", "server_group_name",
           "security_group_rule_count", "security_group_rules", "translate_errors", "translate_exception",
           "translating"]
