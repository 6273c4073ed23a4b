"""Benchmark: the image bake with Hadoop, the deploy (HDFS + Spark, or whatever the image
runs) for 1, 2 and 4 workers, and the RSS of every daemon.

Runs on the sandbox (or any cloud: OS_CLOUD / clouds.yaml) as a plain script and prints
figures; it asserts nothing. ``--bake-from BASE`` first times ``create-image`` with
``--hadoop-version`` from ``--mirror`` and benchmarks that image (deleted at the end).
Servers are booted with the provider (not timed), then ``deploy.deploy_cluster`` is timed;
per daemon (Hadoop's carry ``-Dproc_<name>``, Spark's are its Master/Worker classes) it
prints the current and peak RSS (VmRSS, VmHWM).

  python bench/bench_deploy.py --bake-from debian-12 --mirror http://10.213.0.1:8099 \
      --hadoop-version 2.7.3 --keypair KP --identity-file KEY --allowed-cidr 10.213.0.1/32
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

DAEMON_RSS = (
    "for p in $(pgrep -f -- '-Dproc_[a-z]|org[.]apache[.]spark[.]deploy[.](master[.]Master|worker[.]Worker)'); do "
    "c=$(tr '\\0' ' ' < /proc/$p/cmdline | grep -o -E -- '-Dproc_[a-z]+|deploy\\.[a-z]+\\.[A-Za-z]+' | head -1); "
    "echo \"$c $(awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {print r, h}' /proc/$p/status)\"; done")


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
            out = ssh.run(conn, DAEMON_RSS, warn=True).stdout
            conn.close()
            for line in out.splitlines():
                daemon, now, peak = line.rsplit(" ", 2)
                daemon = daemon.replace("-Dproc_", "hadoop ").replace("deploy.", "spark ")
                rss.append(f"{node.name:>22} {daemon:<28} RSS {int(now) / 1024:7.1f} MiB"
                           f"   peak {int(peak) / 1024:7.1f} MiB")
        return seconds, result["timings"], rss, list(result["services"])
    finally:
        provider.delete_servers(server_ids=ids, wait=True)
        provider.delete_security_group(group.id)


def bake(provider, args) -> str:
    """Time create-image with Hadoop; returns the new image's name."""
    from spark_openstack.image import create_image
    name = f"bench-hadoop-{uuid.uuid4().hex[:5]}"
    started = time.monotonic()
    create_image(conn_provider=provider, name=name, base_image=args.bake_from,
                 flavor=args.flavor, keypair=args.keypair, key_filename=args.identity_file,
                 spark_version=args.spark_version, hadoop_version=args.hadoop_version,
                 mirror=args.mirror, network=args.network, ssh_user=args.ssh_user,
                 allowed_cidrs=args.allowed_cidr)
    print(f"== bake with Hadoop {args.hadoop_version}: create-image {time.monotonic() - started:.1f} s"
          f" (image {name})")
    sys.stdout.flush()
    return name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloud", default=None)
    parser.add_argument("--image", help="image to deploy from (or --bake-from)")
    parser.add_argument("--bake-from", metavar="BASE_IMAGE",
                        help="bake a Hadoop image from this base first, time it, use it")
    parser.add_argument("--mirror", default="http://10.213.0.1:8099")
    parser.add_argument("--spark-version", default="4.3.0")
    parser.add_argument("--hadoop-version", default="2.7.3")
    parser.add_argument("--keypair", required=True)
    parser.add_argument("--identity-file", required=True)
    parser.add_argument("--allowed-cidr", action="append", required=True)
    parser.add_argument("--flavor", default="m1.small")
    parser.add_argument("--network", default=None)
    parser.add_argument("--ssh-user", default="debian")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    if not (args.image or args.bake_from):
        parser.error("give --image IMAGE or --bake-from BASE_IMAGE")
    provider = OpenStackProvider.connect(cloud=args.cloud)
    baked = None
    if args.bake_from:
        baked = args.image = bake(provider, args)
    try:
        return _deploys(provider, args)
    finally:
        if baked:
            image = provider.find_image(baked)
            provider.conn.image.delete_image(image.id, ignore_missing=True)


def _deploys(provider, args) -> int:
    totals = {}
    for workers in args.workers:
        seconds, timings, rss, services = run_one(provider, args, workers)
        totals[workers] = seconds
        print(f"\n== {workers} worker(s): deploy {seconds:.1f} s ({' + '.join(services)})")
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
