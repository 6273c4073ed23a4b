"""Benchmark: launch (to every node SSH-ready, cloud-init done) for N = 1, 4, 16, 32, 64
workers, next to the cloud's own floor, with the phase split and the API requests.

Per N: the time from `launch` start to every node ready; the phase split (validate, boot =
groups + floating IP + creates + ACTIVE, ssh); the HTTP requests the launch sent (counted
at the keystoneauth session); and the cloud's floor, measured in the same run: the same
N+1 servers created bare and waited on in parallel (one list-poll, then SSH + cloud-init on
every host at once over its private address), no validation, no tool logic. Targets:
launch/floor <= 1.10 and requests <= 3N + 40. `--sequential` adds the naive baseline (one
blocking create per server, then SSH to each in turn; slow at large N).

On the sandbox the demo project's quotas are raised first for the largest N through
`sandbox-admin` (bench/sandbox_quotas.py), which prints the sandbox's own limits.

    OS_CLIENT_CONFIG_FILE=.sandbox/clouds.yaml python bench/bench_launch.py --cloud sandbox
"""
from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spark_openstack import ledger, ssh
from spark_openstack import launch as launch_mod
from spark_openstack.config import LaunchSpec
from spark_openstack.progress import RecordingProgress
from spark_openstack.provider import OpenStackProvider


def make_keypair(provider: OpenStackProvider, folder: Path) -> tuple[str, str]:
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    name = f"bench-{secrets.token_hex(3)}"
    provider.conn.compute.create_keypair(name=name, public_key=(folder / "id_ed25519.pub")
                                         .read_text())
    return name, str(key)


def bench_launch(*, cloud, n, keypair, key, image, flavor, allowed) -> dict:
    provider = OpenStackProvider.connect(cloud=cloud)
    name = f"bench{n}-{secrets.token_hex(2)}"
    spec = LaunchSpec(cluster_name=name, workers=n, keypair=keypair, image=image, flavor=flavor,
                      identity_file=key, allowed_cidrs=(allowed,), deploy=False,
                      anti_affinity=n + 1 <= 10, timeout=900)
    progress = RecordingProgress()
    t0 = time.monotonic()
    try:
        result = launch_mod.launch(provider=provider, spec=spec, progress=progress)
        ready = time.monotonic() - t0
    finally:
        before = provider.request_count
        t1 = time.monotonic()
        ledger.destroy(provider=provider, cluster=name)
        destroy_s = time.monotonic() - t1
        destroy_requests = provider.request_count - before
    return {"n": n, "ready": ready, "requests": result.requests, "timings": result.timings,
            "destroy_s": destroy_s, "destroy_requests": destroy_requests}


def host_ready(ip: str, key: str) -> None:
    """SSH answers and cloud-init has finished: what 'ready' means in every column."""
    ssh.wait_until_booted(host=ip, user="debian", key_filename=key, timeout=600)


def bench_sequential(*, cloud, n, keypair, key, image, flavor, allowed) -> dict:
    """The naive way: one blocking create per server, then SSH to each in turn."""
    provider = OpenStackProvider.connect(cloud=cloud)
    name = f"seq{n}-{secrets.token_hex(2)}"
    group = provider.create_security_group(cluster=name, ssh_cidrs=[allowed])
    servers = []
    t0 = time.monotonic()
    try:
        for i in range(n + 1):
            servers.append(provider.conn.create_server(
                f"{name}-{i}", image=image, flavor=flavor, network=None, key_name=keypair,
                security_groups=[group.name], wait=True, timeout=600, auto_ip=False))
        for srv in servers:
            host_ready(srv.private_v4 or next(a["addr"] for addrs in srv.addresses.values()
                                              for a in addrs if a.get("version") == 4), key)
        ready = time.monotonic() - t0
        requests = provider.request_count
    finally:
        provider.delete_servers(server_ids=[s.id for s in servers], wait=True)
        provider.delete_security_group(group.id)
    return {"n": n, "ready": ready, "requests": requests}


def bench_cloud_floor(*, cloud, n, keypair, key, image, flavor, allowed) -> dict:
    """The cloud's own floor: N+1 bare creates fired at once, one list-poll, then SSH and
    cloud-init waited on all hosts in parallel; no validation, no tool logic. What the
    cloud needs to make N+1 hosts ready at all, against which launch's time is judged."""
    from concurrent.futures import ThreadPoolExecutor
    provider = OpenStackProvider.connect(cloud=cloud)
    conn = provider.conn
    name = f"floor{n}-{secrets.token_hex(2)}"
    group = provider.create_security_group(cluster=name, ssh_cidrs=[allowed])
    image_id = conn.image.find_image(image, ignore_missing=False).id
    flavor_id = conn.compute.find_flavor(flavor, ignore_missing=False).id
    net_id = next(net.id for net in conn.network.networks() if not net.is_router_external)
    ids = []
    t0 = time.monotonic()
    try:
        # the cloud's fastest way: every server in ONE multi-create request
        conn.compute.create_server(
            name=f"{name}-x", image_id=image_id, flavor_id=flavor_id,
            networks=[{"uuid": net_id}], key_name=keypair, min_count=n + 1,
            max_count=n + 1, security_groups=[{"name": group.name}])
        while len(ids) < n + 1:
            ids[:] = [s.id for s in conn.compute.servers(name=f"^{name}-")]
            time.sleep(0.2)
        pending, ips = set(ids), {}
        while pending:
            for srv in conn.compute.servers(details=True, name=f"^{name}-"):
                if srv.id in pending and srv.status == "ACTIVE":
                    ips[srv.id] = next(a["addr"] for addrs in srv.addresses.values()
                                       for a in addrs if a.get("version") == 4)
                    pending.discard(srv.id)
                elif srv.id in pending and srv.status == "ERROR":
                    raise RuntimeError(f"{srv.name} went to ERROR")
            time.sleep(0.5)
        with ThreadPoolExecutor(max_workers=len(ips)) as pool:
            list(pool.map(lambda ip: host_ready(ip, key), ips.values()))
        return {"n": n, "ready": time.monotonic() - t0}
    finally:
        provider.delete_servers(server_ids=ids, wait=True)
        provider.delete_security_group(group.id)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloud", default=None, help="cloud in clouds.yaml (default OS_CLOUD)")
    parser.add_argument("--sizes", default="1,4,16,32,64")
    parser.add_argument("--image", default="debian-12")
    parser.add_argument("--flavor", default="m1.tiny")
    parser.add_argument("--allowed-cidr", default="10.0.0.0/8")
    parser.add_argument("--no-floor", action="store_true", help="skip the cloud's floor")
    parser.add_argument("--sequential", action="store_true",
                        help="also time the naive sequential baseline")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if (args.cloud or "").startswith("sandbox"):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from sandbox_quotas import ensure_demo_quotas
        big = max(sizes) + 1
        ensure_demo_quotas(servers=big, cores=big, ram_mb=big * 512, floating_ips=2,
                           ports=big, security_groups=2, security_group_rules=20,
                           server_group_members=big)
    admin = OpenStackProvider.connect(cloud=args.cloud)
    rows, base, floor = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        keypair, key = make_keypair(admin, Path(tmp))
        common = dict(cloud=args.cloud, keypair=keypair, key=key, image=args.image,
                      flavor=args.flavor, allowed=args.allowed_cidr)
        try:
            for n in sizes:
                print(f"launch N={n} ...", file=sys.stderr, flush=True)
                rows.append(bench_launch(n=n, **common))
                if not args.no_floor:
                    print(f"cloud floor N={n} ...", file=sys.stderr, flush=True)
                    floor[n] = bench_cloud_floor(n=n, **common)
                if args.sequential:
                    print(f"sequential baseline N={n} ...", file=sys.stderr, flush=True)
                    base[n] = bench_sequential(n=n, **common)
        finally:
            admin.conn.compute.delete_keypair(keypair, ignore_missing=True)
    print(f"{'N':>3} {'launch s':>8} {'floor s':>7} {'ratio':>5} {'requests':>8} "
          f"{'<=3N+40':>7} {'validate':>8} {'boot':>6} {'ssh':>6} {'seq s':>7} "
          f"{'destroy s':>9} {'destroy req':>11}")
    ok = True
    for row in rows:
        t = row["timings"]
        f = floor.get(row["n"], {}).get("ready")
        ratio = row["ready"] / f if f else float("nan")
        print(f"{row['n']:>3} {row['ready']:8.1f} {f or float('nan'):7.1f} {ratio:5.2f} "
              f"{row['requests']:8d} {3 * row['n'] + 40:7d} {t.get('validate', 0):8.1f} "
              f"{t.get('boot', 0):6.1f} {t.get('ssh', 0):6.1f} "
              f"{base.get(row['n'], {}).get('ready', float('nan')):7.1f} "
              f"{row['destroy_s']:9.1f} {row['destroy_requests']:11d}")
    for row in rows:
        f = floor.get(row["n"], {}).get("ready")
        if f:
            hit = row["ready"] / f <= 1.10
            ok &= hit
            print(f"target launch/floor(N={row['n']}) <= 1.10: {row['ready'] / f:.2f} "
                  f"{'PASS' if hit else 'MISS'}")
        hit = row["requests"] <= 3 * row["n"] + 40
        ok &= hit
        print(f"target requests(N={row['n']}) <= {3 * row['n'] + 40}: {row['requests']} "
              f"{'PASS' if hit else 'MISS'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
