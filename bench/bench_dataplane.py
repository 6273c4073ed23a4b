"""Benchmark the sandbox's dataplane lag (sandbox/agent.py); prints figures, asserts nothing.

Run as root with the project's virtualenv while the sandbox is up (other people may use it
meanwhile; everything made here is named ``dp-<run>-...`` and deleted at the end):
    .venv/bin/python bench/bench_dataplane.py [--sizes 1 16 64]

Budget (issue #9, item 3): a new port's security-group rules and a floating IP's NAT are
in place within 2 s at N=64, so a launch's SSH phase never waits on the sandbox itself.

For each N it boots N m1.tiny servers of ``debian-12`` at once, in one security group
shaped like the tool's (TCP 22, a probe port from the machine, everything from the
group itself, so every new member changes every member's rules), and measures per server:
  * rules in place: the first TCP connect from the machine to a port the group allows but
    nothing listens on that is *refused* (RST from the host's kernel) instead of dropped,
    counted from the host's network namespace appearing (the driver's default-deny is in
    place from then) and from the moment the API shows the server ACTIVE (negative: in
    place before a client could see ACTIVE);
  * TCP 22 answers after ACTIVE (sshd's start in the host included; for reference);
  * a rule added to the group later until every member refuses instead of dropping, and
    the rule deleted until the port drops again;
  * a floating IP associated until TCP 22 answers through it, and disassociated until it
    stops answering.
A probe is a connect with a 0.25 s timeout (the resolution of the "dropped" figures).
"""
from __future__ import annotations

import argparse
import errno
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sandbox_quotas import ensure_demo_quotas  # noqa: E402

PREFIX = os.environ.get("SANDBOX_PREFIX", "sbx")
PROBE_PORT, ADDED_PORT = 9, 7          # allowed by the group / by the rule added later
PROBE_TIMEOUT = 0.25
GATEWAY = "10.213.0.1/32"              # the machine's leg on the private network
LIMIT = 180.0                          # give up on one figure after this long
BOOT_LIMIT = 900.0                     # and on a server's boot (N=64 on 2 cores: minutes)


def probe(ip: str, port: int) -> str:
    """'open' (connected), 'refused' (RST: the filter let the SYN in) or 'dropped'."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(PROBE_TIMEOUT)
    try:
        s.connect((ip, port))
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        if exc.errno == errno.ECONNREFUSED:
            return "refused"
        return "dropped"
    finally:
        s.close()


def wait_probe(ip: str, port: int, want: set[str], since: float) -> float | None:
    """Seconds from ``since`` until a probe answers one of ``want``: for 'dropped' the
    moment the dropped SYN was sent, else the moment the answer came."""
    while True:
        t = time.monotonic()
        got = probe(ip, port)
        if got in want:
            return (t if got == "dropped" else time.monotonic()) - since
        if time.monotonic() - since > LIMIT:
            return None
        if got != "dropped":
            time.sleep(0.02)   # an answer comes at once: do not spin


def stats(values: list[float | None]) -> str:
    got = sorted(v for v in values if v is not None)
    missing = len(values) - len(got)
    if not got:
        return f"{'-':>7} {'-':>7} {'-':>7}  n=0" + (f" ({missing} never)" if missing else "")
    p95 = got[min(len(got) - 1, max(0, int(round(0.95 * len(got) + 0.5)) - 1))]
    tail = f" ({missing} never within {LIMIT:.0f} s)" if missing else ""
    return f"{statistics.median(got):7.2f} {p95:7.2f} {got[-1]:7.2f}  n={len(got)}{tail}"


class Run:
    def __init__(self, conn, tag: str, key_name: str, group, image, flavor, net):
        self.conn, self.tag, self.key_name = conn, tag, key_name
        self.group, self.image, self.flavor, self.net = group, image, flavor, net

    def boot(self, n: int) -> dict:
        conn = self.conn
        prefix = f"dp-{self.tag}-n{n}-"
        seen: dict[str, dict] = {}     # server id -> facts
        lock = threading.Lock()
        done = threading.Event()

        def create(i: int) -> None:
            srv = conn.compute.create_server(
                name=f"{prefix}{i}", image_id=self.image.id, flavor_id=self.flavor.id,
                networks=[{"uuid": self.net.id}], key_name=self.key_name,
                security_groups=[{"name": self.group.name}])
            with lock:
                seen.setdefault(srv.id, {"name": srv.name})
            t = threading.Thread(target=probe_one, args=(srv.id,), daemon=True)
            probers.append(t)   # probing starts at once, not after the last create
            t.start()

        def watch_netns() -> None:   # the host's network appears: default-deny in place
            while not done.is_set():
                with lock:
                    todo = [(sid, f) for sid, f in seen.items() if "t_netns" not in f]
                for sid, f in todo:
                    if os.path.exists(f"/run/netns/{PREFIX}-{sid[:8]}"):
                        f["t_netns"] = time.monotonic()
                time.sleep(0.05)

        def poll_api() -> None:      # what a client sees: ACTIVE and the fixed IP
            while not done.is_set():
                t = time.monotonic()
                for srv in conn.compute.servers(name=f"^{prefix}"):
                    with lock:
                        f = seen.setdefault(srv.id, {"name": srv.name})
                    if srv.status == "ERROR":
                        f["error"] = True
                    addrs = [a["addr"] for a in (srv.addresses or {}).get("private", [])
                             if a.get("version") == 4]
                    if addrs:
                        f.setdefault("ip", addrs[0])
                    if srv.status == "ACTIVE":
                        f.setdefault("t_active", t)
                time.sleep(0.5)

        def probe_one(sid: str) -> None:
            f = seen[sid]
            while not ("ip" in f and "t_netns" in f) and not f.get("error"):
                if time.monotonic() - t0 > BOOT_LIMIT:
                    return
                time.sleep(0.05)
            if f.get("error"):
                return
            lag = wait_probe(f["ip"], PROBE_PORT, {"refused", "open"}, f["t_netns"])
            if lag is not None:
                f["t_rules"] = f["t_netns"] + lag
            while "t_active" not in f and time.monotonic() - t0 < BOOT_LIMIT:
                time.sleep(0.05)
            lag = wait_probe(f["ip"], 22, {"open"}, f.get("t_active", t0))
            if lag is not None:
                f["t_ssh"] = f.get("t_active", t0) + lag

        t0, probers = time.monotonic(), []
        threads = [threading.Thread(target=watch_netns, daemon=True),
                   threading.Thread(target=poll_api, daemon=True)]
        for t in threads:
            t.start()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(n)))
        for t in probers:
            t.join()
        done.set()
        for t in threads:
            t.join()
        t_all = max((f.get("t_active", t0) for f in seen.values()), default=t0) - t0
        print(f"  N={n}: {n} servers ACTIVE {t_all:.1f} s after the first create; "
              f"{sum(1 for f in seen.values() if f.get('error'))} in ERROR")
        return seen

    def rule_change(self, servers: dict) -> tuple[list, list]:
        conn = self.conn
        live = [f for f in servers.values() if "t_rules" in f]
        t = time.monotonic()
        rule = conn.network.create_security_group_rule(
            security_group_id=self.group.id, direction="ingress", ethertype="IPv4",
            protocol="tcp", port_range_min=ADDED_PORT, port_range_max=ADDED_PORT,
            remote_ip_prefix=GATEWAY)
        t = time.monotonic()   # the API has answered: the rule exists
        with ThreadPoolExecutor(max(1, len(live))) as pool:
            added = list(pool.map(
                lambda f: wait_probe(f["ip"], ADDED_PORT, {"refused", "open"}, t), live))
        conn.network.delete_security_group_rule(rule)
        t = time.monotonic()
        with ThreadPoolExecutor(max(1, len(live))) as pool:
            deleted = list(pool.map(
                lambda f: wait_probe(f["ip"], ADDED_PORT, {"dropped"}, t), live))
        return added, deleted

    def floating_ips(self, servers: dict) -> tuple[list, list]:
        conn = self.conn
        live = [(sid, f) for sid, f in servers.items() if "t_ssh" in f]
        public = conn.network.find_network("public", ignore_missing=False)
        ports = {p.device_id: p for p in conn.network.ports(network_id=self.net.id)
                 if p.device_id in servers}
        with ThreadPoolExecutor(8) as pool:
            fips = list(pool.map(lambda _: conn.network.create_ip(
                floating_network_id=public.id, description=f"dp-{self.tag}"), live))
        self.fips.extend(fips)

        def assoc(pair):
            (sid, f), fip = pair
            conn.network.update_ip(fip, port_id=ports[sid].id)
            t = time.monotonic()
            return wait_probe(fip.floating_ip_address, 22, {"open"}, t)

        def disassoc(fip):
            conn.network.update_ip(fip, port_id=None)
            t = time.monotonic()
            return wait_probe(fip.floating_ip_address, 22, {"dropped"}, t)

        with ThreadPoolExecutor(8) as pool:   # 8 clients associating at once
            up = list(pool.map(assoc, zip(live, fips)))
        with ThreadPoolExecutor(8) as pool:
            down = list(pool.map(disassoc, fips))
        return up, down


def cleanup(conn, tag: str, fips: list) -> None:
    for fip in fips:
        try:
            conn.network.delete_ip(fip, ignore_missing=True)
        except Exception as exc:  # noqa: BLE001 - go on cleaning
            print(f"  cleanup: floating IP {fip.floating_ip_address}: {exc}")
    mine = [s for s in conn.compute.servers(name=f"^dp-{tag}-")]
    for srv in mine:
        conn.compute.delete_server(srv, ignore_missing=True)
    for srv in mine:
        try:
            conn.compute.wait_for_delete(srv, wait=300, interval=1)
        except Exception as exc:  # noqa: BLE001
            print(f"  cleanup: {srv.name}: {exc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--no-fip", action="store_true", help="skip the floating-IP figures")
    args = ap.parse_args()
    os.environ.setdefault("OS_CLIENT_CONFIG_FILE", str(ROOT / ".sandbox" / "clouds.yaml"))
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"):
        os.environ.pop(var, None)
    import openstack

    top = max(args.sizes)
    ensure_demo_quotas(servers=top, cores=top, ram_mb=top * 512, ports=top + 2,
                       floating_ips=0 if args.no_fip else top, security_groups=1,
                       security_group_rules=8)
    conn = openstack.connect(cloud="sandbox")
    tag = uuid.uuid4().hex[:6]
    tmp = tempfile.mkdtemp()
    key = os.path.join(tmp, "k")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    kp = conn.compute.create_keypair(name=f"dp-{tag}", public_key=open(key + ".pub").read())
    group = conn.network.create_security_group(name=f"dp-{tag}")
    # SSH from anywhere (a floating IP's traffic comes from the public network's gateway),
    # the probe port from the machine's leg on the private network only
    for port, source in ((22, "0.0.0.0/0"), (PROBE_PORT, GATEWAY)):
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4",
            protocol="tcp", port_range_min=port, port_range_max=port, remote_ip_prefix=source)
    conn.network.create_security_group_rule(   # as the tool's group: the cluster talks freely
        security_group_id=group.id, direction="ingress", ethertype="IPv4",
        remote_group_id=group.id)
    run = Run(conn, tag, kp.name, group, conn.image.find_image("debian-12", ignore_missing=False),
              conn.compute.find_flavor("m1.tiny", ignore_missing=False),
              conn.network.find_network("private", ignore_missing=False))
    run.fips = []
    results = []
    try:
        for n in args.sizes:
            servers = run.boot(n)
            fs = list(servers.values())
            rows = [
                ("rules in place after the host's network exists",
                 [f["t_rules"] - f["t_netns"] if "t_rules" in f else None for f in fs]),
                ("rules in place after ACTIVE (client's view)",
                 [f["t_rules"] - f["t_active"] if "t_rules" in f and "t_active" in f
                  else None for f in fs]),
                ("TCP 22 answers after ACTIVE (sshd start incl.)",
                 [f["t_ssh"] - f["t_active"] if "t_ssh" in f and "t_active" in f else None
                  for f in fs]),
            ]
            added, deleted = run.rule_change(servers)
            rows += [("rule added -> in effect on every member", added),
                     ("rule deleted -> new connections dropped", deleted)]
            if not args.no_fip:
                up, down = run.floating_ips(servers)
                rows += [("floating IP associated -> TCP 22 answers", up),
                         ("floating IP disassociated -> dropped", down)]
            results.append((n, rows))
            cleanup(conn, tag, run.fips)
            run.fips = []
    finally:
        cleanup(conn, tag, run.fips)
        try:
            conn.network.delete_security_group(group, ignore_missing=True)
        except Exception as exc:  # noqa: BLE001
            print(f"  cleanup: security group {group.name}: {exc}")
        conn.compute.delete_keypair(kp, ignore_missing=True)
        subprocess.run(["rm", "-rf", tmp])

    print("\nsandbox dataplane lag, seconds (budget: rules and NAT within 2 s at N=64)")
    print(f"{'N':>3}  {'figure':50} {'median':>7} {'p95':>7} {'max':>7}")
    for n, rows in results:
        for name, values in rows:
            print(f"{n:>3}  {name:50} {stats(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
