"""Benchmark the sandbox cloud against its budgets; prints figures, asserts nothing.

Run as root with the project's virtualenv (the sandbox is taken down and up again):
    .venv/bin/python bench/bench_sandbox.py [--cold] [--servers 5]
--cold also removes .sandbox/venv and the built mirror first, so `up` reinstalls them
(Debian packages stay installed; a fresh machine's first `up` is timed by .ci/run).

Budgets (issue #2): cold up <= 7 min; warm up <= 2 min; control plane <= 2.5 GiB RSS;
an idle host <= 20 MiB; SSH <= 5 s after ACTIVE; down <= 30 s.
"""
from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SB = ROOT / ".sandbox"


def timed(cmd: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def rss_of_sessions(pids: list[int]) -> int:
    """Summed RSS (KiB) of every process whose session is one of ``pids``."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) in pids:   # field 6 of stat: session id
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total


def rss_of_netns(ns: str) -> int:
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                          text=True).stdout.split()
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def ssh_ok(key: str, ip: str) -> bool:
    return subprocess.run(
        ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
         f"root@{ip}", "true"], capture_output=True).returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--servers", type=int, default=5)
    args = ap.parse_args()
    rows = []

    timed([str(ROOT / "sandbox" / "down"), "--quiet"])
    if args.cold:
        shutil.rmtree(SB / "venv", ignore_errors=True)
        shutil.rmtree(SB / "mirror", ignore_errors=True)
    t_up = timed([str(ROOT / "sandbox" / "up")])
    rows.append(("cold up (venv + mirror rebuilt)" if args.cold else "warm up", t_up,
                 420 if args.cold else 120, "s"))
    pids = [int(p.read_text()) for p in (SB / "run").glob("*.pid")]
    rows.append(("control plane RSS", rss_of_sessions(pids) / 1024, 2560, "MiB"))

    os.environ["OS_CLIENT_CONFIG_FILE"] = str(SB / "clouds.yaml")
    import openstack
    conn = openstack.connect(cloud="sandbox")
    tmp = tempfile.mkdtemp()
    key = os.path.join(tmp, "k")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    kp = conn.compute.create_keypair(name="bench-sandbox", public_key=open(key + ".pub").read())
    image = conn.image.find_image("debian-12")
    flavor = conn.compute.find_flavor("m1.tiny")
    net = conn.network.find_network("private")
    group = conn.network.create_security_group(name="bench-sandbox-ssh")   # groups are enforced
    conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=22, port_range_max=22, remote_ip_prefix="10.213.0.1/32")
    user_data = base64.b64encode(b"#cloud-config\nruncmd:\n  - [touch, /opt/ok]\n").decode()
    results: dict[str, tuple[float, float]] = {}

    def one(i: int) -> None:
        t0 = time.monotonic()
        srv = conn.compute.create_server(name=f"bench-{i}", image_id=image.id,
                                         flavor_id=flavor.id, networks=[{"uuid": net.id}],
                                         key_name=kp.name, user_data=user_data,
                                         security_groups=[{"name": group.name}])
        srv = conn.compute.wait_for_server(srv, wait=300, interval=0.25)
        t_active = time.monotonic()
        ip = srv.addresses["private"][0]["addr"]
        while not ssh_ok(key, ip):
            if time.monotonic() - t_active > 120:
                raise SystemExit(f"no SSH to {srv.name} ({ip}) 120 s after ACTIVE")
            time.sleep(0.1)
        results[srv.id] = (t_active - t0, time.monotonic() - t_active)

    one(99)   # a server booted alone first: the per-host figure without CPU contention
    (alone_active, alone_ssh), = results.values()
    rows.append(("create -> ACTIVE, one server alone", alone_active, None, "s"))
    rows.append(("ACTIVE -> SSH, one server alone", alone_ssh, 5, "s"))
    results.clear()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.servers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(8)   # let cloud-init finish: "idle" means booted and quiet
    idle = [rss_of_netns(f"sbx-{sid[:8]}") / 1024 for sid in results]
    worst_ssh = max(v[1] for v in results.values())
    rows.append((f"create -> ACTIVE, worst of {args.servers} in parallel",
                 max(v[0] for v in results.values()), None, "s"))
    rows.append((f"ACTIVE -> SSH, worst of {args.servers} in parallel (2 cores)", worst_ssh,
                 None, "s"))
    rows.append(("idle host RSS, worst", max(idle), 20, "MiB"))
    for srv in list(conn.compute.servers()):
        if srv.name.startswith("bench-"):
            conn.compute.delete_server(srv)
            conn.compute.wait_for_delete(srv, wait=120)
    conn.compute.delete_keypair(kp)
    conn.network.delete_security_group(group)
    shutil.rmtree(tmp)

    t_down = timed([str(ROOT / "sandbox" / "down")])
    rows.append(("down (with hosts just deleted)", t_down, 30, "s"))
    print("\nsandbox benchmark")
    print(f"{'figure':48} {'value':>9}  {'budget':>8}  verdict")
    for name, value, budget, unit in rows:
        verdict = "" if budget is None else ("ok" if value <= budget else "OVER")
        budget_s = "" if budget is None else f"{budget} {unit}"
        print(f"{name:48} {value:7.1f} {unit:3} {budget_s:>8}  {verdict}")
    print("\n(the sandbox is left down; run sandbox/up to use it again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
