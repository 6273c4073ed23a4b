"""Benchmark: the day-2 commands on a 2-worker cluster, timed as a user runs them.

On the sandbox (or any cloud: OS_CLOUD / clouds.yaml) as a plain script; it asserts
nothing. ``spark-openstack launch -s 2`` (with deploy, not timed as a figure) from a Hadoop
image, then ``--data-mib`` MiB of random bytes written to HDFS (1 MiB blocks, replication
2, so worker-1 holds a replica of every block), then, each through the CLI with ``--json``:

- ``stop`` then ``start`` of the 2-worker cluster (start waits for HDFS out of safe mode
  and every service healthy)
- ``add-workers -n 1``                       (boot + ssh + deploy of one worker: 3 workers)
- ``remove-workers --node 1``                (the worker holding the data: decommission,
  blocks moved, delete, update the others; back to 2 workers; blocks moved printed)
- ``add-workers -n 4``                       (when the machine can hold 4 more workers:
  its available memory against what the first worker cost it, plus a margin; otherwise
  the table says why it was skipped)

Each row: wall seconds, the command's own phase split, and a detail (workers after,
blocks moved, health). Then ``status`` must say healthy and the data reads back
byte-identical (printed, not asserted). The cluster (and the keypair, when the bench made
it) is destroyed at the end, also on Ctrl-C or a failure.

    OS_CLIENT_CONFIG_FILE=.sandbox/clouds.yaml OS_CLOUD=sandbox \\
        python bench/bench_day2.py --image HADOOP_IMAGE [--keypair KP --identity-file KEY] \\
        [--flavor m1.small] [--allowed-cidr 10.213.0.1/32] [--data-mib 64]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))   # sandbox_quotas, bench_deploy

from bench_deploy import MemoryPeak  # noqa: E402 - after the path above

#: What each extra worker is assumed to cost the machine when the first add-workers did
#: not tell (DataNode + Spark worker JVMs, sshd, the namespace's processes).
DEFAULT_WORKER_MB = 900
#: Memory the machine keeps free besides the new workers (other clusters, the sandbox).
MARGIN_MB = 2048


def _cli(*argv: str, timeout: float = 3600) -> tuple[subprocess.CompletedProcess, float]:
    exe = Path(sys.executable).with_name("spark-openstack")
    started = time.monotonic()
    proc = subprocess.run([str(exe), *argv], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ), stdin=subprocess.DEVNULL)
    return proc, time.monotonic() - started


def _json(proc) -> dict:
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {}


def _tail(proc, n: int = 12) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return "\n".join("     " + line for line in lines[-n:])


def _ssh(host: str, key: str, command: str, stdin: bytes | None = None,
         timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", f"debian@{host}", command],
        capture_output=True, timeout=timeout,
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}))


def _hduser(command: str) -> str:
    return f"sudo -n -u hduser -H bash -lc {shlex.quote(command)}"


def _master_ip(conn, cluster: str) -> str:
    master = next(s for s in conn.compute.servers(details=True)
                  if s.name == f"{cluster}-master")
    return next(a["addr"] for addrs in master.addresses.values() for a in addrs
                if a.get("OS-EXT-IPS:type", "fixed") == "fixed" and a.get("version") == 4)


def _available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


class Bench:
    def __init__(self, args, conn):
        self.args, self.conn = args, conn
        self.cluster = f"b2d{uuid.uuid4().hex[:5]}"
        self.rows: list[dict] = []
        self.key = args.identity_file

    def ident(self) -> list[str]:
        return ["--identity-file", self.key]

    def timed(self, label: str, *argv: str, detail=None) -> dict | None:
        """Run one CLI command (``--json``), record its wall time and phase split."""
        print(f"{label} ...", file=sys.stderr, flush=True)
        with MemoryPeak() as memory:
            proc, seconds = _cli(*argv, "-c", self.cluster, *self.ident(), "--json")
        result = _json(proc)
        row = {"label": label, "seconds": seconds, "exit": proc.returncode,
               "timings": result.get("timings") or {}, "memory": memory,
               "detail": detail(result) if (detail and proc.returncode == 0) else ""}
        if proc.returncode != 0:
            row["detail"] = f"FAILED (exit {proc.returncode})"
            print(f"{label} failed:\n{_tail(proc, 30)}", file=sys.stderr, flush=True)
        self.rows.append(row)
        return result if proc.returncode == 0 else None

    def skipped(self, label: str, why: str) -> None:
        self.rows.append({"label": label, "seconds": None, "exit": None, "timings": {},
                          "memory": None, "detail": f"skipped: {why}"})

    # -- data
    def write_data(self, host: str) -> tuple[str, int]:
        blob = secrets.token_bytes(self.args.data_mib * 1024 * 1024)
        digest = hashlib.sha256(blob).hexdigest()
        put = _ssh(host, self.key, _hduser(
            "hdfs dfs -mkdir -p /user/hduser/bench && hdfs dfs -Ddfs.blocksize=1048576 "
            "-Ddfs.replication=2 -put - /user/hduser/bench/data.bin"), stdin=blob)
        if put.returncode != 0:
            raise RuntimeError(f"writing the data failed: {put.stderr.decode()[-1000:]}")
        return digest, self.args.data_mib

    def read_back(self, host: str) -> str:
        got = _ssh(host, self.key, _hduser(
            "hdfs dfs -cat /user/hduser/bench/data.bin | sha256sum"))
        return got.stdout.decode().split()[0] if got.returncode == 0 else \
            f"read failed: {got.stderr.decode()[-300:]}"


def _fmt_timings(timings: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in timings.items() if isinstance(v, (int, float)))


def run(args, conn) -> int:
    bench = Bench(args, conn)
    cluster = bench.cluster
    cidrs = [a for c in args.allowed_cidr for a in ("--allowed-cidr", c)]
    print(f"machine: {os.cpu_count()} CPUs, {_available_mb()} MiB available; "
          f"{len(list(conn.compute.servers()))} server(s) already in the project")
    try:
        print(f"launch -s 2 ({cluster}) ...", file=sys.stderr, flush=True)
        proc, launch_s = _cli("launch", "-c", cluster, "-s", "2", "-k", args.keypair,
                              "-i", args.image, *bench.ident(), "--flavor", args.flavor,
                              *cidrs, "--no-floating-ip")
        if proc.returncode != 0:
            print(f"launch failed (exit {proc.returncode}):\n{_tail(proc, 40)}")
            return 1
        print(f"launch -s 2 with deploy: {launch_s:.1f} s (setup, not a figure)")
        host = _master_ip(conn, cluster)
        t = time.monotonic()
        digest, mib = bench.write_data(host)
        print(f"wrote {mib} MiB to HDFS (1 MiB blocks, replication 2) in "
              f"{time.monotonic() - t:.1f} s")

        def grown(result):
            return (f"{len(result.get('workers', []))} workers, "
                    f"healthy {result.get('healthy')}")

        def shrunk(result):
            moved = sum(int(v) for v in (result.get("blocks_moved") or {}).values())
            return (f"{len(result.get('workers', []))} workers left, {moved} blocks moved "
                    f"({mib} MiB written, replication 2)")
        # The 2-worker cluster first: stop and start it, grow it to 3, shrink it back to
        # 2 moving worker-1's data, and only then the 4-worker growth.
        bench.timed("stop", "stop", detail=lambda r: "servers SHUTOFF (2 workers)")
        bench.timed("start", "start",
                    detail=lambda r: "healthy" if r.get("healthy", True) else "NOT healthy")
        before = _available_mb()
        added = bench.timed("add-workers -n 1", "add-workers", "-n", "1", detail=grown)
        per_worker = max(before - _available_mb(), 0) if added else 0
        per_worker = per_worker if per_worker >= 200 else DEFAULT_WORKER_MB
        bench.timed("remove-workers --node 1", "remove-workers", "--node", "1", "--yes",
                    detail=shrunk)
        need = 4 * per_worker + MARGIN_MB
        if added is None:
            bench.skipped("add-workers -n 4", "add-workers -n 1 failed")
        elif _available_mb() < need:
            bench.skipped("add-workers -n 4", f"the machine cannot hold 4 more workers: "
                          f"{_available_mb()} MiB available, ~{per_worker} MiB per worker "
                          f"+ {MARGIN_MB} MiB margin needed ({need} MiB)")
        else:
            if (args.cloud or os.environ.get("OS_CLOUD", "")).startswith("sandbox"):
                try:
                    from sandbox_quotas import ensure_demo_quotas
                    flavor = conn.compute.find_flavor(args.flavor, ignore_missing=False)
                    ensure_demo_quotas(servers=4, cores=4 * flavor.vcpus,
                                       ram_mb=4 * flavor.ram, ports=4,
                                       server_group_members=8, quiet=True)
                except Exception as exc:  # noqa: BLE001 - the add then says what is short
                    print(f"(quotas not raised: {exc})", file=sys.stderr)
            print(f"  (memory check: {_available_mb()} MiB available, ~{per_worker} MiB "
                  "per worker)", file=sys.stderr)
            bench.timed("add-workers -n 4", "add-workers", "-n", "4", detail=grown)

        status, _ = _cli("status", "-c", cluster, *bench.ident(), "--json")
        report = _json(status)
        host = _master_ip(conn, cluster)
        back = bench.read_back(host)
        print(f"after the run: status {'healthy' if status.returncode == 0 else 'NOT healthy'}"
              f" ({', '.join(s.get('line', '') for s in (report.get('services') or {}).values())})"
              f"; data {'byte-identical' if back == digest else 'DIFFERS: ' + back}")
    finally:
        print(f"destroy {cluster} ...", file=sys.stderr, flush=True)
        gone, gone_s = _cli("destroy", "-c", cluster, "--yes", timeout=1200)
        left = [s.name for s in conn.compute.servers() if s.name.startswith(f"{cluster}-")]
        print(f"destroy: exit {gone.returncode} in {gone_s:.1f} s"
              + (f"; LEFT BEHIND: {left}" if left else ""))
        _print_table(bench.rows)
    return 0 if all(r["exit"] in (0, None) for r in bench.rows) else 1


def _print_table(rows: list[dict]) -> None:
    if not rows:
        return
    print("\n| operation (2-worker cluster) | wall s | detail | machine memory | phase split (s) |")
    print("|---|---|---|---|---|")
    for row in rows:
        secs = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
        mem = (f"peak +{row['memory'].peak_mb - row['memory'].start_mb} MiB"
               if row["memory"] is not None else "-")
        print(f"| {row['label']} | {secs} | {row['detail']} | {mem} | "
              f"{_fmt_timings(row['timings']) or '-'} |")
    sys.stdout.flush()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloud", default=None, help="cloud in clouds.yaml (default OS_CLOUD)")
    parser.add_argument("--image", required=True, help="an image with Hadoop (create-image)")
    parser.add_argument("--keypair", help="keypair name (default: one made for the run)")
    parser.add_argument("--identity-file", help="its private key (with --keypair)")
    parser.add_argument("--flavor", default="m1.small")
    parser.add_argument("--allowed-cidr", action="append", default=None,
                        help="SSH source CIDR (repeatable; default 10.213.0.1/32)")
    parser.add_argument("--data-mib", type=int, default=64,
                        help="MiB written to HDFS before the remove (default 64)")
    args = parser.parse_args(argv)
    args.allowed_cidr = args.allowed_cidr or ["10.213.0.1/32"]
    if bool(args.keypair) != bool(args.identity_file):
        parser.error("--keypair and --identity-file go together")
    if args.cloud:
        os.environ["OS_CLOUD"] = args.cloud
    import openstack
    conn = openstack.connect(cloud=os.environ.get("OS_CLOUD"))
    made = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if not args.keypair:
                key = Path(tmp) / "id_ed25519"
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                               check=True)
                made = f"bench2d-{secrets.token_hex(3)}"
                conn.compute.create_keypair(name=made,
                                            public_key=key.with_suffix(".pub").read_text())
                args.keypair, args.identity_file = made, str(key)
            return run(args, conn)
    finally:
        if made:
            conn.compute.delete_keypair(made, ignore_missing=True)
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
