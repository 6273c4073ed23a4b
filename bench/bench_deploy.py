"""Benchmark: the deploy phase for 1, 2 and 4 workers, and each Spark daemon's peak RSS.

Runs on the sandbox (or any cloud: OS_CLOUD / clouds.yaml) as a plain script and prints
figures; it asserts nothing. Servers are booted with the provider (not timed), then
``deploy.deploy_cluster`` is timed; peak RSS is VmHWM of each Master/Worker JVM.
Target from the issue: deploy with 4 workers within 1.3x of 1 worker.

  python bench/bench_deploy.py --image IMAGE --keypair KP --identity-file KEY \
      --allowed-cidr 10.213.0.1/32 [--flavor m1.small] [--workers 1 2 4]
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid

from spark_openstack import ssh
from spark_openstack.deploy import deploy_cluster
from spark_openstack.model import ClusterFacts, master_name, worker_name
from spark_openstack.provider import OpenStackProvider

PEAK_RSS = ("for p in $(pgrep -f 'org.apache.spark.deploy.(master.Master|worker.Worker)'); do "
            "c=$(tr '\\0' ' ' < /proc/$p/cmdline | grep -o 'deploy\\.[a-z]*\\.[A-Za-z]*'); "
            "echo \"$c $(awk '/VmHWM/ {print $2}' /proc/$p/status)\"; done")


def boot(provider, *, cluster, workers, image, flavor, network, keypair, cidrs):
    group = provider.create_security_group(cluster=cluster, ssh_cidrs=cidrs, ui_cidrs=[],
                                           ui_ports=[])
    ids = []
    for name in [master_name(cluster)] + [worker_name(cluster, i) for i in range(1, workers + 1)]:
        role = "master" if name.endswith("-master") else "worker"
        ids.append(provider.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id, network_id=network.id,
            keypair=keypair, security_groups=[group.name],
            metadata=provider.cluster_metadata(cluster, role)))
    return group, ids


def run_one(provider, args, workers: int) -> tuple[float, dict, list[str]]:
    cluster = f"bench{uuid.uuid4().hex[:5]}"
    image = provider.find_image(args.image)
    flavor = provider.find_flavor(args.flavor)
    network = provider.find_network(args.network)
    group, ids = boot(provider, cluster=cluster, workers=workers, image=image, flavor=flavor,
                      network=network, keypair=args.keypair, cidrs=args.allowed_cidr)
    try:
        servers = provider.wait_for_servers(server_ids=ids, timeout=600)
        nodes = [provider.node_from_server(servers[i], flavor=flavor) for i in ids]
        for node in nodes:   # boot + cloud-init are launch's business, not deploy's
            ssh.wait_until_booted(host=node.private_ip, user=args.ssh_user,
                                  key_filename=args.identity_file, timeout=600)
        facts = ClusterFacts(cluster_name=cluster, master=nodes[0], workers=tuple(nodes[1:]),
                             ssh_user=args.ssh_user)
        started = time.monotonic()
        result = deploy_cluster(facts=facts, key_filename=args.identity_file)
        seconds = time.monotonic() - started
        rss = []
        for node in nodes:
            conn = ssh.connect(host=node.private_ip, user=args.ssh_user,
                               key_filename=args.identity_file)
            out = ssh.run(conn, PEAK_RSS, warn=True).stdout
            conn.close()
            for line in out.splitlines():
                daemon, kib = line.rsplit(" ", 1)
                rss.append(f"{node.name:>22} {daemon:<24} peak RSS {int(kib) / 1024:7.1f} MiB")
        return seconds, result["timings"], rss
    finally:
        provider.delete_servers(server_ids=ids, wait=True)
        provider.delete_security_group(group.id)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloud", default=None)
    parser.add_argument("--image", required=True)
    parser.add_argument("--keypair", required=True)
    parser.add_argument("--identity-file", required=True)
    parser.add_argument("--allowed-cidr", action="append", required=True)
    parser.add_argument("--flavor", default="m1.small")
    parser.add_argument("--network", default=None)
    parser.add_argument("--ssh-user", default="debian")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    provider = OpenStackProvider.connect(cloud=args.cloud)
    totals = {}
    for workers in args.workers:
        seconds, timings, rss = run_one(provider, args, workers)
        totals[workers] = seconds
        print(f"\n== {workers} worker(s): deploy {seconds:.1f} s")
        for phase, value in timings.items():
            print(f"   {phase:<36} {value:6.1f} s")
        for line in rss:
            print("  ", line)
        sys.stdout.flush()
    if 1 in totals:
        for workers, seconds in totals.items():
            print(f"deploy({workers}) / deploy(1) = {seconds / totals[1]:.2f}"
                  + ("   (target <= 1.30)" if workers == 4 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
