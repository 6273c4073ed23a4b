"""Benchmark: how many OpenStack API requests `status`, `add-workers` and `destroy` make.

Issue 19 asks that a command read its cluster once and pass the handle down instead of
listing the project again; this counts what each command really sends. Every HTTP request
openstacksdk makes goes through ``keystoneauth1.session.Session.request``; each measured
command runs in a child process of its own (``python bench/bench_api_requests.py --count
-- ARGS...``) with that method wrapped, so the figure is the whole command, token requests
included, and nothing else.

It compares two trees of the project: ``--before`` (a commit, checked out with ``git
worktree add --detach`` into a temporary directory and put first on PYTHONPATH) and the
working tree. For each tree: ``launch -s 1`` (counted, for reference), ``status``,
``add-workers -n 1``, ``status`` again and ``destroy``. It prints a table (requests per
command, before and after, and the after tree's requests by method and path kind) and
asserts nothing.

    OS_CLIENT_CONFIG_FILE=.sandbox/clouds.yaml OS_CLOUD=sandbox \\
        python bench/bench_api_requests.py --image IMAGE -k KEYPAIR --identity-file KEY \\
        [--before e323b3f] [--flavor m1.medium] [--allowed-cidr 10.213.0.1/32 ...]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNT_FILE_ENV = "BENCH_API_COUNT_FILE"


def counted_main(argv: list[str]) -> int:
    """Run the CLI in this process with every keystoneauth request counted into the file
    ``$BENCH_API_COUNT_FILE`` names (one JSON line per request: method, path)."""
    import atexit

    from keystoneauth1 import session

    seen: list[dict] = []
    original = session.Session.request

    def request(self, url, method, *args, **kwargs):
        seen.append({"method": method, "path": _path_kind(url)})
        return original(self, url, method, *args, **kwargs)

    session.Session.request = request

    def write() -> None:
        with open(os.environ[COUNT_FILE_ENV], "w") as out:
            for row in seen:
                out.write(json.dumps(row) + "\n")
    atexit.register(write)
    from spark_openstack import cli
    return cli.main(argv)


def _path_kind(url: str) -> str:
    """``/v2.1/servers/<id>/action`` style: ids and query strings dropped, so requests
    of one kind add up."""
    path = re.sub(r"^[a-z]+://[^/]+", "", str(url)).split("?", 1)[0]
    path = re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27,}", "/<id>", path)
    path = re.sub(r"/[0-9a-f]{32}", "/<id>", path)
    return path


def run_counted(*, tree: Path, args: list[str]) -> tuple[int, list[dict], float]:
    """One CLI command in a child process of ``tree``'s code: (exit code, requests, s)."""
    import time

    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as counts:
        env = dict(os.environ, PYTHONPATH=str(tree), **{COUNT_FILE_ENV: counts.name})
        began = time.monotonic()
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--count", "--",
                               *args], env=env, cwd=str(tree), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        took = time.monotonic() - began
        rows = [json.loads(line) for line in counts.read().splitlines() if line.strip()]
    if done.returncode != 0:
        print(f"  {' '.join(args[:3])}: exit {done.returncode}\n{done.stderr[-2000:]}",
              file=sys.stderr)
    return done.returncode, rows, took


def measure(*, tree: Path, label: str, options: argparse.Namespace) -> dict[str, list[dict]]:
    cluster = f"apireq-{label}-{secrets.token_hex(2)}"
    key = ["--identity-file", os.path.abspath(options.identity_file)] \
        if options.identity_file else []
    cidrs = [x for cidr in options.allowed_cidr for x in ("--allowed-cidr", cidr)]
    steps = [
        ("launch -s 1", ["launch", "-c", cluster, "-s", "1", "-k", options.keypair,
                         "-i", options.image, "--flavor", options.flavor, *cidrs, *key,
                         "--json"]),
        ("status", ["status", "-c", cluster, *key, "--json"]),
        ("add-workers -n 1", ["add-workers", "-c", cluster, "-n", "1", *key, "--json"]),
        ("status (2 workers)", ["status", "-c", cluster, *key, "--json"]),
        ("destroy", ["destroy", "-c", cluster, "--yes", "--json"]),
    ]
    found: dict[str, list[dict]] = {}
    try:
        for name, args in steps:
            code, rows, took = run_counted(tree=tree, args=args)
            print(f"  [{label}] {name}: {len(rows)} requests, {took:.1f}s, exit {code}",
                  flush=True)
            found[name] = rows if code == 0 else []
            if code != 0 and name.startswith("launch"):
                break
    finally:
        if "destroy" not in found or not found["destroy"]:
            run_counted(tree=tree, args=["destroy", "-c", cluster, "--yes"])
    return found


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--count":
        return counted_main(sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("-k", "--keypair", required=True)
    parser.add_argument("--identity-file")
    parser.add_argument("--flavor", default="m1.medium")
    parser.add_argument("--allowed-cidr", action="append", default=[])
    parser.add_argument("--before", default="e323b3f",
                        help="the commit to compare with (default: e323b3f, before issue 19's "
                             "inventory handle)")
    options = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the finally clauses destroy what the bench launched
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    results: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                        str(before), options.before], check=True)
        try:
            print(f"before: {options.before}", flush=True)
            results["before"] = measure(tree=before, label="before", options=options)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(before)], check=False)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    print(f"after: {head} (working tree)", flush=True)
    results["after"] = measure(tree=ROOT, label="after", options=options)

    print(f"\n{'command':<22} {'before':>7} {'after':>7}")
    for name in results["after"]:
        b, a = results["before"].get(name), results["after"].get(name)
        print(f"{name:<22} {len(b) if b else '-':>7} {len(a) if a else '-':>7}")
    for name, rows in results["after"].items():
        kinds = collections.Counter(f"{r['method']} {r['path']}" for r in rows)
        print(f"\nafter, {name}:")
        for kind, n in kinds.most_common():
            print(f"  {n:>4}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
