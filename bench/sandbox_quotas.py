"""Make room in the sandbox's demo project for a bench, and say what the sandbox's own limits are.

    from sandbox_quotas import ensure_demo_quotas
    ensure_demo_quotas(servers=64, cores=64, ram_mb=64 * 512, floating_ips=64, ports=64)

Every figure is the room the caller needs *beyond what the project already uses* (other
people launch clusters in the same project meanwhile); only a quota that is short of
usage + need is raised, through the admin cloud ``sandbox-admin``, never lowered.
``server_group_members`` is per server group in Nova, so it is a plain minimum.
Prints the machine's own limits (CPU, RAM), the floating-IP pool, placement's inventory
and the quotas before/after, since a quota above them buys nothing.
Needs ``OS_CLIENT_CONFIG_FILE`` pointing at ``.sandbox/clouds.yaml`` (set here if unset).
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# our keyword -> (service, quota name, counted against usage?)
_QUOTAS = {
    "servers": ("compute", "instances", True),
    "cores": ("compute", "cores", True),
    "ram_mb": ("compute", "ram", True),
    "key_pairs": ("compute", "key_pairs", True),
    "server_groups": ("compute", "server_groups", True),
    "server_group_members": ("compute", "server_group_members", False),
    "floating_ips": ("network", "floating_ips", True),
    "ports": ("network", "ports", True),
    "security_groups": ("network", "security_groups", True),
    "security_group_rules": ("network", "security_group_rules", True),
}


def _admin():
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(ROOT / ".sandbox" / "clouds.yaml"))
    import openstack
    # operator set-up, not the code under test: the internal endpoints, which sandbox/faults
    # never puts behind its proxy
    return openstack.connect(cloud="sandbox-admin", interface="internal")


def _state(admin, project_id):
    """{quota name: (limit, used)} for compute and network."""
    out = {}
    qs = admin.compute.get_quota_set(project_id, usage=True)
    usage = qs.usage or {}
    for _, (svc, name, _) in _QUOTAS.items():
        if svc == "compute":
            out[name] = (getattr(qs, name), usage.get(name, 0) + (qs.reservation or {}).get(name, 0))
    nq = admin.network.get_quota(project_id, details=True)
    for _, (svc, name, _) in _QUOTAS.items():
        if svc == "network":
            d = getattr(nq, name) or {}
            out[name] = (d.get("limit", -1), d.get("used", 0) + d.get("reserved", 0))
    return out


def machine_limits(admin=None) -> dict:
    """The sandbox's physical limits: this machine's CPUs and RAM, the floating-IP pool,
    and what placement offers (a flavor's RAM/vCPUs are bookkeeping, not limits)."""
    admin = admin or _admin()
    mem = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, val = line.split(":", 1)
        mem[key] = int(val.split()[0]) // 1024
    pool = 0
    for net in admin.network.networks(is_router_external=True):
        for sub in admin.network.subnets(network_id=net.id):
            for rng in sub.allocation_pools or []:
                pool += int(ipaddress.ip_address(rng["end"])) - \
                    int(ipaddress.ip_address(rng["start"])) + 1
    fips_used = sum(1 for _ in admin.network.ips())
    inventory = {}
    try:
        for rp in admin.placement.resource_providers():
            for inv in admin.placement.resource_provider_inventories(rp):
                inventory[inv.resource_class] = int(
                    (inv.total - (inv.reserved or 0)) * (inv.allocation_ratio or 1))
    except Exception:  # noqa: BLE001 - the inventory is informative only
        pass
    return {"cpus": os.cpu_count(), "mem_total_mb": mem.get("MemTotal"),
            "mem_available_mb": mem.get("MemAvailable"), "fip_pool": pool,
            "fips_allocated": fips_used, "placement": inventory}


def ensure_demo_quotas(*, servers: int = 0, cores: int = 0, ram_mb: int = 0,
                       floating_ips: int = 0, ports: int = 0, security_groups: int = 0,
                       security_group_rules: int = 0, server_group_members: int = 0,
                       server_groups: int = 0, key_pairs: int = 0, project: str = "demo",
                       admin=None, quiet: bool = False) -> dict:
    """Raise the demo project's quotas that are short of usage + the given room.

    Returns ``{quota name: (before, after)}`` for every quota it raised."""
    need = dict(servers=servers, cores=cores, ram_mb=ram_mb, floating_ips=floating_ips,
                ports=ports, security_groups=security_groups,
                security_group_rules=security_group_rules,
                server_group_members=server_group_members, server_groups=server_groups,
                key_pairs=key_pairs)
    admin = admin or _admin()
    say = (lambda *_: None) if quiet else print
    project_id = admin.identity.find_project(project, ignore_missing=False).id
    before = _state(admin, project_id)
    raise_ = {"compute": {}, "network": {}}
    for key, room in need.items():
        svc, name, counted = _QUOTAS[key]
        limit, used = before[name]
        if room <= 0 or limit is None or limit < 0:   # -1: unlimited
            continue
        want = used + room if counted else room
        if limit < want:
            raise_[svc][name] = want
    if raise_["compute"]:
        admin.compute.update_quota_set(project_id, **raise_["compute"])
    if raise_["network"]:
        admin.network.update_quota(project_id, **raise_["network"])
    after = _state(admin, project_id) if any(raise_.values()) else before
    lim = machine_limits(admin)
    say(f"sandbox limits: {lim['cpus']} CPUs, {lim['mem_total_mb']} MiB RAM "
        f"({lim['mem_available_mb']} MiB available), floating-IP pool {lim['fip_pool']} "
        f"({lim['fips_allocated']} allocated), placement "
        + (", ".join(f"{k}={v}" for k, v in sorted(lim["placement"].items())) or "n/a"))
    changed = {}
    for key in need:
        name = _QUOTAS[key][1]
        (b, used), (a, _) = before[name], after[name]
        if a != b:
            changed[name] = (b, a)
    say(f"{project} quotas (limit/used): " + ", ".join(
        f"{name} {after[name][0]}/{after[name][1]}"
        + (f" (was {changed[name][0]})" if name in changed else "")
        for name in sorted({_QUOTAS[k][1] for k in need})))
    return changed


if __name__ == "__main__":   # show the limits and quotas, raise nothing
    ensure_demo_quotas()
