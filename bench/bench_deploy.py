"""Benchmark: deploy (HDFS + YARN + Spark, or whatever the image runs) for 1, 2, 4 workers
next to its floor, the RSS of every daemon, and optionally a whole `launch -s 64`.

Runs on the sandbox (or any cloud: OS_CLOUD / clouds.yaml) as a plain script and prints
figures; it asserts nothing. Per N: the servers are booted with the provider and waited
on (not timed), then ``deploy.deploy_cluster`` is timed (workers reached through the
master as a gateway, as ``launch`` does) and its phase split printed. Then, on the same
hosts, the FLOOR of the same work without the tool: every daemon is stopped (and the
HDFS name/data dirs emptied), and the same start commands with the configs the tool left
are issued directly, ONE SSH command per node, all nodes at once (connections opened
before the clock starts): the master formats the NameNode, starts its daemons and waits
until the same health condition holds (every Spark worker ALIVE in the master's
/json/, every DataNode live in ``hdfs dfsadmin -report -live``, /user/hduser made, every
NodeManager RUNNING in ``yarn node -list``); each worker starts its DataNode and
NodeManager and, once the master's RPC port answers, its Spark worker.
It prints deploy s, floor s and deploy/floor (target <= 1.10), the peak memory the
machine used during the deploy and each daemon's RSS (VmRSS, VmHWM).

``--bake-from BASE`` first times ``create-image`` with ``--hadoop-version`` from
``--mirror`` and benchmarks that image (deleted at the end). ``--launch N`` then runs
``spark-openstack launch -s N`` (with deploy) from ``--launch-image`` (for N = 64 a
Spark-only image on ``--launch-flavor m1.small``, the smallest flavor the memory plan
accepts for a Spark worker: m1.tiny's 512 MB is below its 1152 MB), prints the servers
already in the project, its time, phase split, health lines, the machine's peak memory
and the master's daemons, and destroys it. Demo quotas are raised through
``sandbox-admin`` when a run needs more (``sandbox_quotas``, which also prints the
sandbox's own limits).

  python bench/bench_deploy.py --image IMAGE --keypair KP --identity-file KEY \
      --allowed-cidr 10.213.0.1/32 [--flavor m1.medium] [--workers 1 2 4]
  python bench/bench_deploy.py --workers --launch 64 --launch-image SPARK_ONLY_IMAGE \
      --keypair KP --identity-file KEY --allowed-cidr 10.213.0.1/32 --allowed-cidr 10.214.0.1/32
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # sandbox_quotas

from spark_openstack import ssh
from spark_openstack.deploy import deploy_cluster, stop_services
from spark_openstack.executor import run_per_node
from spark_openstack.model import ClusterFacts, master_name, worker_name
from spark_openstack.provider import OpenStackProvider
from spark_openstack.dirs import cluster_dirs
from spark_openstack.render import PORTS
from spark_openstack.transport import SSHRunner

DAEMON_RSS = (
    "for p in $(pgrep -f -- '-Dproc_[a-z]|org[.]apache[.]spark[.]deploy[.](master[.]Master|worker[.]Worker)'); do "
    "c=$(tr '\\0' ' ' < /proc/$p/cmdline | grep -o -E -- '-Dproc_[a-z]+|deploy\\.[a-z]+\\.[A-Za-z]+' | head -1); "
    "echo \"$c $(awk '/VmRSS/ {r=$2} /VmHWM/ {h=$2} END {print r, h}' /proc/$p/status)\"; done")


class MemoryPeak:
    """The machine's peak used memory (MemTotal - MemAvailable) while it runs, sampled."""

    def __init__(self, interval: float = 0.25):
        self.interval, self.peak_mb, self.start_mb = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def used_mb() -> int:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, val = line.split(":", 1)
            info[key] = int(val.split()[0])
        return (info["MemTotal"] - info["MemAvailable"]) // 1024

    def _run(self):
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.used_mb())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.start_mb = self.peak_mb = self.used_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def line(self) -> str:
        return (f"machine memory used: {self.start_mb} MiB before, peak {self.peak_mb} MiB "
                f"(+{self.peak_mb - self.start_mb} MiB)")


def ensure_quotas(servers: int, ram_mb: int, cores: int) -> None:
    """Room in the demo project (through sandbox-admin) for ``servers`` more servers."""
    try:
        from sandbox_quotas import ensure_demo_quotas
    except ImportError:
        print("(bench/sandbox_quotas.py not found: quotas left as they are)")
        return
    ensure_demo_quotas(servers=servers, cores=cores, ram_mb=ram_mb, ports=servers,
                       server_group_members=servers)


def boot(provider, *, cluster, workers, image, flavor, network, keypair, cidrs):
    group = provider.create_security_group(cluster=cluster, ssh_cidrs=cidrs)
    names = [master_name(cluster)] + [worker_name(cluster, i) for i in range(1, workers + 1)]

    def create(name: str) -> str:
        role = "master" if name.endswith("-master") else "worker"
        return provider.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id, network_id=network.id,
            keypair=keypair, security_groups=[group.name],
            metadata=provider.cluster_metadata(cluster, role))
    ids = run_per_node(create, names, what="create servers")
    return group, [ids[name] for name in names]


def _hduser(command: str) -> str:
    return f"sudo -n -u hduser -H bash -lc {shlex.quote(command)}"


def floor_commands(facts: ClusterFacts) -> dict[str, str]:
    """{node name: the one command that starts its daemons} (the master's also waits for
    the health condition): the tool's start scripts and configs, none of its logic."""
    spark = shlex.quote(f"{facts.spark_home}/sbin")
    master_ip, workers = facts.master.private_ip, len(facts.workers)
    url = shlex.quote(f"spark://{master_ip}:{PORTS['spark_master']}")
    state = shlex.quote(f"http://{master_ip}:{PORTS['spark_master_ui']}/json/")
    hdfs = "hdfs" in facts.services
    alive = ("python3 -c \"import json,sys,urllib.request as u; print(sum(w.get('state')=="
             "'ALIVE' for w in json.load(u.urlopen(sys.argv[1], timeout=2))['workers']))\" "
             f"{state} 2>/dev/null")
    jmx = shlex.quote(f"http://{master_ip}:{PORTS['namenode_http']}/jmx?"
                      "qry=Hadoop:service=NameNode,name=NameNodeInfo")
    live = ("python3 -c \"import json,sys,urllib.request as u; print(len(json.loads(json.load("
            "u.urlopen(sys.argv[1], timeout=2))['beans'][0]['LiveNodes'])))\" "
            f"{jmx} 2>/dev/null")
    master = [f"{spark}/start-master.sh >/dev/null &"]
    if hdfs:
        master += [
            f"hdfs namenode -format -nonInteractive -clusterid "
            f"{shlex.quote('spark-openstack-' + facts.cluster_name)} >/dev/null 2>&1 && "
            "{ hdfs --daemon start namenode & hdfs --daemon start secondarynamenode & wait; }",
            "echo \"namenode started $(date +%s.%N)\"",
            f"{{ until (exec 3<>/dev/tcp/{master_ip}/{PORTS['namenode_rpc']}) 2>/dev/null; do "
            "sleep 0.2; done; hdfs dfsadmin -safemode wait >/dev/null && "
            "hdfs dfs -mkdir -p /user/hduser && hdfs dfs -chown hduser:hduser /user/hduser && "
            "echo \"user dir $(date +%s.%N)\"; } &",
            # the NameNode's live DataNodes, read cheaply (JMX) until all are there, then
            # confirmed once by the tool's own health command
            f"{{ until [ \"$({live})\" = {workers} ]; do sleep 0.2; done; "
            f"until [ \"$(hdfs dfsadmin -report -live 2>/dev/null | grep -c '^Name:')\" -ge "
            f"{workers} ]; do sleep 0.2; done; echo \"datanodes live $(date +%s.%N)\"; }} &"]
    if "yarn" in facts.services:
        # the ResourceManager, then until the tool's own health command counts every
        # NodeManager RUNNING
        master += [
            "yarn --daemon start resourcemanager &",
            f"{{ until [ \"$(yarn node -list -states RUNNING 2>/dev/null | grep -c RUNNING)\" "
            f"-ge {workers} ]; do sleep 0.5; done; echo \"nodemanagers running $(date +%s.%N)\"; }} &"]
    master += [f"until [ \"$({alive})\" = {workers} ]; do sleep 0.1; done",
               "echo \"spark ALIVE $(date +%s.%N)\"", "wait"]
    worker = ["hdfs --daemon start datanode &"] if hdfs else []
    if "yarn" in facts.services:
        worker += ["yarn --daemon start nodemanager &"]
    worker += [f"until (exec 3<>/dev/tcp/{master_ip}/{PORTS['spark_master']}) 2>/dev/null; "
               "do sleep 0.1; done",
               f"{spark}/start-worker.sh {url} >/dev/null", "wait"]
    out = {facts.master.name: "\n".join(master)}
    out.update({w.name: "\n".join(worker) for w in facts.workers})
    return out


def reset(facts: ClusterFacts, args, *, fab: bool = False) -> None:
    """(Untimed) every daemon stopped, HDFS's name/data dirs emptied, and with ``fab`` the
    master's fab tooling removed: the hosts as a first deploy finds them."""
    runner = SSHRunner(ssh_user=args.ssh_user, key_filename=args.identity_file)
    try:
        stop_services(facts=facts, runner=runner)
        dirs = cluster_dirs(facts)

        def one(node):
            master = node.name == facts.master.name
            wipe = dirs.namenode if master else dirs.datanode
            leftovers = "pgrep -u hduser java >/dev/null && exit 1 || true"
            runner.run_as_root(node, (
                (f"rm -rf {' '.join(shlex.quote(d + '/') + '*' for d in wipe)}; "
                 if "hdfs" in facts.services else "")
                + ("rm -rf /opt/spark-openstack; " if fab and master else "") + leftovers))
        run_per_node(one, facts.nodes, what="reset", max_workers=64)
    finally:
        runner.close()


def measure_floor(facts: ClusterFacts, args) -> float:
    """Stop everything (untimed), then time the floor's one command per node in parallel."""
    reset(facts, args)
    commands = floor_commands(facts)
    conns = run_per_node(lambda n: ssh.connect(host=n.private_ip, user=args.ssh_user,
                                               key_filename=args.identity_file),
                         facts.nodes, what="connect", max_workers=64)
    try:
        started, wall = time.monotonic(), time.time()
        outs = run_per_node(lambda n: (ssh.run(conns[n.name], _hduser(commands[n.name]),
                                               timeout=600).stdout, time.monotonic() - started),
                            facts.nodes, what="floor", max_workers=len(facts.nodes))
        seconds = time.monotonic() - started
        slowest = max(outs.items(), key=lambda kv: kv[1][1])
        marks = ", ".join(f"{m.group(1)} {float(m.group(2)) - wall:.1f}"
                          for m in re.finditer(r"^(.*) (\d+\.\d+)$", outs[facts.master.name][0], re.M))
        print(f"   floor: slowest node {slowest[0]} {slowest[1][1]:.1f} s; master: {marks}")
        return seconds
    finally:
        for conn in conns.values():
            conn.close()


def run_one(provider, args, workers: int) -> dict:
    cluster = f"dep-{uuid.uuid4().hex[:5]}"
    image = provider.find_image(args.image)
    flavor = provider.find_flavor(args.flavor)
    network = provider.find_network(args.network)
    group, ids = boot(provider, cluster=cluster, workers=workers, image=image, flavor=flavor,
                      network=network, keypair=args.keypair, cidrs=args.allowed_cidr)
    try:
        servers = provider.wait_for_servers(server_ids=ids, timeout=600)
        nodes = [provider.node_from_server(servers[i], flavor=flavor) for i in ids]
        # boot + cloud-init are launch's business, not deploy's
        run_per_node(lambda n: ssh.wait_until_booted(
            host=n.private_ip, user=args.ssh_user, key_filename=args.identity_file,
            timeout=600), nodes, what="wait for SSH", max_workers=64)
        facts = ClusterFacts(cluster_name=cluster, master=nodes[0], workers=tuple(nodes[1:]),
                             ssh_user=args.ssh_user)
        gateway = None if args.direct else nodes[0].private_ip
        deploys, floors, first = [], [], None
        for attempt in range(args.repeat):
            if first is not None:      # the same hosts as a first deploy finds them
                reset(first["facts"], args, fab=True)
            with MemoryPeak() as memory:
                started = time.monotonic()
                result = deploy_cluster(facts=facts, key_filename=args.identity_file,
                                        gateway_host=gateway)
                deploys.append(time.monotonic() - started)
            if not attempt:
                rss = daemon_rss(nodes, args)
                first = result
            floors.append(measure_floor(result["facts"], args))
            print(f"   [{workers} worker(s) try {attempt + 1}] deploy {deploys[-1]:.1f} s, "
                  f"floor {floors[-1]:.1f} s, ratio {deploys[-1] / floors[-1]:.2f}")
            sys.stdout.flush()
        return {"deploy": statistics.median(deploys), "floor": statistics.median(floors),
                "timings": first["timings"], "rss": rss,
                "services": list(first["services"]), "memory": memory.line(),
                "health": [h.line() for h in first["health"].values()],
                "pairs": list(zip(deploys, floors))}
    finally:
        provider.delete_servers(server_ids=ids, wait=True)
        provider.delete_security_group(group.id)


def daemon_rss(nodes, args) -> list[str]:
    def read(node):
        conn = ssh.connect(host=node.private_ip, user=args.ssh_user,
                           key_filename=args.identity_file)
        try:
            return ssh.run(conn, DAEMON_RSS, warn=True).stdout
        finally:
            conn.close()
    outs = run_per_node(read, nodes, what="daemon RSS", max_workers=64)
    rss = []
    for node in nodes:
        for line in outs[node.name].splitlines():
            daemon, now, peak = line.rsplit(" ", 2)
            daemon = daemon.replace("-Dproc_", "hadoop ").replace("deploy.", "spark ")
            rss.append(f"{node.name:>22} {daemon:<28} RSS {int(now) / 1024:7.1f} MiB"
                       f"   peak {int(peak) / 1024:7.1f} MiB")
    return rss


def workers_rss(gateway_ip: str, workers: list[dict], args) -> str:
    """Min / median / max RSS and peak of the workers' Spark daemons (through the master)."""
    gateway = ssh.connect(host=gateway_ip, user=args.ssh_user, key_filename=args.identity_file)
    try:
        def read(worker) -> str:        # a named record: run_per_node reports its name
            conn = ssh.connect(host=worker.private_ip, user=args.ssh_user,
                               key_filename=args.identity_file, gateway=gateway)
            try:
                return ssh.run(conn, DAEMON_RSS, warn=True).stdout
            finally:
                conn.close()
        outs = run_per_node(read, [type("W", (), w)() for w in workers],
                            what="worker RSS", max_workers=16)
    finally:
        gateway.close()
    now, peak = [], []
    for out in outs.values():
        for line in out.splitlines():
            if "Worker" in line:
                _, r, h = line.rsplit(" ", 2)
                now.append(int(r) / 1024)
                peak.append(int(h) / 1024)
    if not now:
        return "workers: no Spark worker daemon found"
    now.sort()
    peak.sort()
    return (f"{len(now)} Spark worker daemons: RSS min {now[0]:.0f} / median "
            f"{now[len(now) // 2]:.0f} / max {now[-1]:.0f} MiB, peak max {peak[-1]:.0f} MiB, "
            f"sum {sum(now):.0f} MiB")


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
    parser.add_argument("--hadoop-version", default="3.4.2")
    parser.add_argument("--keypair", required=True)
    parser.add_argument("--identity-file", required=True)
    parser.add_argument("--allowed-cidr", action="append", required=True)
    parser.add_argument("--flavor", default="m1.medium")
    parser.add_argument("--network", default=None)
    parser.add_argument("--ssh-user", default="debian")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=1,
                        help="deploy + floor this many times per N on the same hosts "
                             "(reset in between); medians are printed")
    parser.add_argument("--direct", action="store_true",
                        help="deploy to every node directly (default: workers through the "
                             "master, as launch does)")
    parser.add_argument("--launch", type=int, metavar="N",
                        help="also time `spark-openstack launch -s N` (with deploy), then "
                             "destroy it")
    parser.add_argument("--launch-image", help="image for --launch (default --image)")
    parser.add_argument("--launch-flavor", default="m1.small")
    args = parser.parse_args(argv)
    if args.workers and not (args.image or args.bake_from):
        parser.error("give --image IMAGE or --bake-from BASE_IMAGE")
    provider = OpenStackProvider.connect(cloud=args.cloud)
    baked = None
    if args.bake_from:
        baked = args.image = bake(provider, args)
    try:
        if args.workers:
            _deploys(provider, args)
        if args.launch:
            _launch(provider, args)
        return 0
    finally:
        if baked:
            image = provider.find_image(baked)
            provider.conn.image.delete_image(image.id, ignore_missing=True)


def _deploys(provider, args) -> None:
    biggest = max(args.workers) + 1
    flavor = provider.find_flavor(args.flavor)
    ensure_quotas(biggest, biggest * flavor.ram, biggest * flavor.vcpus)
    rows = []
    for workers in args.workers:
        out = run_one(provider, args, workers)
        rows.append((workers, out))
        ratio = out["deploy"] / out["floor"]
        median = f" (medians of {args.repeat})" if args.repeat > 1 else ""
        print(f"\n== {workers} worker(s) ({' + '.join(out['services'])}): deploy "
              f"{out['deploy']:.1f} s, floor {out['floor']:.1f} s, deploy/floor {ratio:.2f}"
              f" (target <= 1.10){median}; phase split of the first deploy:")
        for phase, value in out["timings"].items():
            print(f"   {phase:<44} {value:6.1f} s")
        for line in out["health"]:
            print("  ", line)
        print("  ", out["memory"])
        for line in out["rss"]:
            print("  ", line)
        sys.stdout.flush()
    print("\n| workers | deploy s | floor s | deploy/floor (target <= 1.10) |")
    print("|---|---|---|---|")
    for workers, out in rows:
        print(f"| {workers} | {out['deploy']:.1f} | {out['floor']:.1f} | "
              f"{out['deploy'] / out['floor']:.2f} |")
    sys.stdout.flush()


def _cli(*argv: str, cloud: str | None = None,
         timeout: float = 1800) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("spark-openstack")
    env = dict(os.environ, **({"OS_CLOUD": cloud} if cloud else {}))
    return subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=timeout,
                          env=env)


def _launch(provider, args) -> None:
    """`spark-openstack launch -s N` with deploy, as a user runs it; then destroy."""
    n, image = args.launch, args.launch_image or args.image
    flavor = provider.find_flavor(args.launch_flavor)
    existing = len(provider.list_servers())
    print(f"\n== launch -s {n} --flavor {args.launch_flavor} -i {image}: {existing} "
          f"server(s) already in the project")
    ensure_quotas(n + 1, (n + 1) * flavor.ram, (n + 1) * flavor.vcpus)
    name = f"dep-l{n}-{uuid.uuid4().hex[:4]}"
    cidrs = [arg for c in args.allowed_cidr for arg in ("--allowed-cidr", c)]
    with MemoryPeak() as memory:
        started = time.monotonic()
        try:
            proc = _cli("launch", "-c", name, "-s", str(n), "-k", args.keypair, "-i", image,
                        "--identity-file", args.identity_file, "--flavor", args.launch_flavor,
                        *cidrs, "--timeout", "1500", cloud=args.cloud)
        except subprocess.TimeoutExpired:
            proc = None
        seconds = time.monotonic() - started
    try:
        said = (proc.stdout + proc.stderr) if proc else "launch timed out"
        print(f"launch -s {n}: exit {proc.returncode if proc else 'timeout'} in {seconds:.1f} s")
        for line in said.splitlines():
            if re.search(r"done in|spark:|hdfs:|deploy|error|ALIVE|NOT READY", line):
                print("  ", line.strip())
        print("  ", memory.line())
        described = _cli("describe", "-c", name, "--json", cloud=args.cloud, timeout=300)
        if described.returncode == 0:
            info = json.loads(described.stdout)
            master = info["master"]
            print(f"   describe: {info['state']}, {info['worker_count']} worker(s), "
                  f"master {master.get('name')} {master.get('public_ip') or ''}")
            if master.get("public_ip"):
                nodes = [type("N", (), {"name": master["name"],
                                        "private_ip": master["public_ip"]})()]
                for line in daemon_rss(nodes, args):
                    print("  ", line)
                print("  ", workers_rss(master["public_ip"], info["workers"], args))
        sys.stdout.flush()
    finally:
        t = time.monotonic()
        gone = _cli("destroy", "-c", name, "--yes", cloud=args.cloud, timeout=1200)
        print(f"   destroy: exit {gone.returncode} in {time.monotonic() - t:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
