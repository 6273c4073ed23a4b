"""Benchmark: a class's batch of clusters against the same clusters launched one by one.

On the sandbox (or any cloud: OS_CLOUD / clouds.yaml) as a plain script; it asserts
nothing. For each K in ``--counts`` (default 1 2 4): ``spark-openstack batch launch
--count K -s 1`` (deployed, health-checked, roster written) timed and its API request
count read from its ``--json``; ``batch destroy``; then K plain ``launch -s 1 --json``
one after another (their seconds and requests summed), each destroyed after the run.
Printed per K: batch seconds, sequential seconds, the ratio, the batch's API requests
and the sequential ones. Everything it made is destroyed at the end, also on Ctrl-C.

    OS_CLIENT_CONFIG_FILE=.sandbox/clouds.yaml OS_CLOUD=sandbox \\
        python bench/bench_batch.py --image IMAGE --keypair KP --identity-file KEY \\
        [--flavor m1.small] [--allowed-cidr 10.213.0.1/32] [--services spark] \\
        [--counts 1 2 4] [--parallel 4]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_day2 import _cli, _json  # noqa: E402 - the CLI as a user runs it, timed


def _fail(what: str, proc) -> None:
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    sys.exit(f"{what} failed (exit {proc.returncode}):\n{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--keypair", required=True)
    parser.add_argument("--identity-file", required=True)
    parser.add_argument("--flavor", default="m1.small")
    parser.add_argument("--allowed-cidr", default="10.213.0.1/32")
    parser.add_argument("--services", default="spark")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    common = ["-s", "1", "-k", args.keypair, "-i", args.image, "--identity-file",
              args.identity_file, "--flavor", args.flavor, "--allowed-cidr", args.allowed_cidr,
              "--no-floating-ip", "--services", args.services]
    made: list[str] = []          # prefixes and cluster names to destroy at the end
    rows = []
    try:
        for k in args.counts:
            prefix = f"bb{uuid.uuid4().hex[:4]}"
            made.append(f"batch:{prefix}")
            with tempfile.TemporaryDirectory() as roster:
                proc, batch_s = _cli("batch", "launch", "--prefix", prefix, "--count", str(k),
                                     "--roster", roster, "--parallel", str(args.parallel),
                                     *common, "--json")
            if proc.returncode != 0:
                _fail(f"batch launch --count {k}", proc)
            batch_requests = _json(proc).get("api_requests")
            print(f"K={k}: batch launch {batch_s:.1f}s, {batch_requests} API requests",
                  flush=True)
            proc, _ = _cli("batch", "destroy", "--prefix", prefix, "--yes")
            if proc.returncode != 0:
                _fail(f"batch destroy --prefix {prefix}", proc)
            seq_s, seq_requests = 0.0, 0
            for i in range(1, k + 1):
                name = f"bs{uuid.uuid4().hex[:4]}"
                made.append(name)
                proc, took = _cli("launch", "-c", name, *common, "--json")
                if proc.returncode != 0:
                    _fail(f"launch -c {name}", proc)
                seq_s += took
                seq_requests += _json(proc).get("api_requests") or 0
                _cli("destroy", "-c", name, "--yes")
            print(f"K={k}: {k} sequential launches {seq_s:.1f}s, {seq_requests} API "
                  "requests", flush=True)
            rows.append((k, batch_s, seq_s, batch_requests, seq_requests))
    finally:
        for item in made:
            if item.startswith("batch:"):
                _cli("batch", "destroy", "--prefix", item[6:], "--yes")
            else:
                _cli("destroy", "-c", item, "--yes")
    print()
    print("| K | batch launch s | K sequential launches s | sequential / batch | "
          "batch API requests | sequential API requests |")
    print("|---|---|---|---|---|---|")
    for k, batch_s, seq_s, batch_requests, seq_requests in rows:
        print(f"| {k} | {batch_s:.1f} | {seq_s:.1f} | {seq_s / batch_s:.2f} | "
              f"{batch_requests} | {seq_requests} |")


if __name__ == "__main__":
    main()
