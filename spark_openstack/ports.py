"""What a network port of the cluster's services is (``Port``) and who may reach it.

Each service class declares its own ports (``HDFS.ports``, ``YARN.ports``, ...), once;
``spark_openstack.services`` collects them (``ALL_PORTS``, ``PORTS``): ``config`` decides
which the security group may open, ``render`` puts the numbers into the templates, and
``describe``, ``login -L`` and the ``--help`` texts list them.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Exposure: may ``--open-ui-cidr`` open it (SAFE: shows state to an anonymous visitor,
#: acts on nothing), only ``--open-unsafe-ui-cidr`` (UNSAFE: acts on anonymous requests),
#: or never (INTERNAL: only the cluster's own nodes talk to it).
SAFE, UNSAFE, INTERNAL = "safe", "unsafe", "internal"


@dataclass(frozen=True)
class Port:
    """One listening port. ``name`` is the key templates use (``{{ ports.namenode_http }}``);
    a web UI a user may reach from outside (``exposure`` SAFE or UNSAFE, on the master)
    also has a ``ui_name`` (the key in ``describe``'s ``web_uis``) and ``why``: what a
    visitor can do there."""

    name: str
    number: int
    web_ui: bool = False
    exposure: str = INTERNAL
    ui_name: str = ""
    why: str = ""

    def __post_init__(self):
        if self.exposure not in (SAFE, UNSAFE, INTERNAL):
            raise ValueError(f"port {self.name}: exposure {self.exposure!r}")
        if (self.exposure != INTERNAL) != bool(self.web_ui and self.ui_name and self.why):
            raise ValueError(f"port {self.name}: only a web UI with a ui_name and a why "
                             "can be opened outside the cluster")



def port_number(ports: tuple[Port, ...], name: str) -> int:
    """The number of the port called ``name`` among ``ports`` (``KeyError`` if none)."""
    for port in ports:
        if port.name == name:
            return port.number
    raise KeyError(name)
