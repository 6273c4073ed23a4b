"""Benchmark: a fault matrix on the sandbox cloud: what `launch` does when things break.

Each fault is one `spark-openstack launch` run as a user runs it (a subprocess, as the
sandbox's non-admin user) of a small cluster (-s 2, m1.tiny, debian-12, --no-deploy
unless the fault needs a deploy), with the fault injected by `sandbox/faults` or a
signal at a moment read from launch's own stderr. Per fault it prints:

- the exit code and a one-line reason (the error line, and the first ``[node]`` line);
- the seconds from the fault to the exit (signals, host kill/freeze), or the whole run
  (API faults, the race), and the whole run;
- the cluster's resources still in the cloud: servers, ports, floating IPs, security
  groups, server groups (srv/port/fip/sg/sgrp), counted BEFORE any cleanup command runs
  (given up to 60 s to settle: ports go a moment after their server). For the API faults,
  where launch must succeed, they are counted after the `destroy` that follows (run under
  the same faults); for the race, the winner's cluster is counted (expected 3/3/1/1/1),
  then destroyed by the bench;
- whether that is the expected outcome. It asserts nothing.

Faults: sigint-boot, sigint-ssh, sigterm-boot, sigint-cleanup (a second SIGINT while the
rollback runs), compute-503 (20 %), network-429 (10 %), kill-worker (a worker's host
SIGKILLed mid-deploy; bakes a Spark-only image first, m1.small), freeze-worker (a worker's
host SIGSTOPped when the servers are ACTIVE, --timeout 120), race (two launches of one
name at once). `sandbox/faults --clear` always runs at the end; a frozen host is thawed.

`--n28`: launch -s 28 --no-deploy (m1.tiny, --timeout 600) three times, destroy after
each, outcome and time per run; a run still going at timeout + 120 s is killed: HANG.

Root (sandbox/faults signals the sandbox's processes and edits its catalog). API faults
change the sandbox's public endpoints for every user of the sandbox while they last.

    python bench/bench_faults.py
    python bench/bench_faults.py --only sigint-boot,freeze-worker --repeat 3
    python bench/bench_faults.py --n28
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import openstack

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ROOT / "sandbox" / "faults"
COUNTERS = ROOT / ".sandbox" / "run" / "faults.json"
META_CLUSTER = "spark_openstack_cluster"
META_RUN = "spark_openstack_run"
KINDS = ("servers", "ports", "floating_ips", "security_groups", "server_groups")
PROGRESS_LINE = re.compile(r"^\[\s*[\d.]+s\]")

ALL_FAULTS = ("sigint-validate", "sigint-boot", "sigint-floating-ip", "sigint-ssh",
              "sigint-deploy", "sigterm-validate", "sigterm-boot", "sigterm-floating-ip",
              "sigterm-ssh", "sigterm-deploy", "sigint-cleanup",
              "compute-503", "network-429", "kill-worker", "freeze-worker", "race")


def say(msg: str) -> None:
    print(f"[bench_faults {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes

class Run:
    """One `spark-openstack` subprocess; stdout and stderr read line by line in threads."""

    def __init__(self, env: dict, args: list[str]):
        self.args = args
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "spark_openstack.cli", *args],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self.out: list[str] = []
        self.cond = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=(s, b), daemon=True)
                        for s, b in ((self.proc.stderr, self.err), (self.proc.stdout, self.out))]
        for reader in self.readers:
            reader.start()
        self.code: int | None = None
        self.ended: float | None = None
        self.hung = False

    def _read(self, stream, into: list[str]) -> None:
        for line in stream:
            with self.cond:
                into.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern: str, timeout: float, start: int = 0) -> tuple[int, str] | None:
        """The first stderr line from index ``start`` matching ``pattern`` (a regex), or
        None when the process ended or ``timeout`` passed without one."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        i = start
        with self.cond:
            while True:
                while i < len(self.err):
                    if rx.search(self.err[i]):
                        return i, self.err[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None
                                 and not self.readers[0].is_alive()):
                    return None
                self.cond.wait(min(left, 0.5))

    def signal(self, signum: int) -> float:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return time.monotonic()

    def wait(self, limit: float) -> int | None:
        """Exit code; None (and the process killed: HANG) when it runs past ``limit`` s
        after its start."""
        try:
            self.code = self.proc.wait(timeout=max(1.0, self.t0 + limit - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.hung = True
            self.proc.kill()
            self.proc.wait()
            self.code = None
        self.ended = time.monotonic()
        for reader in self.readers:
            reader.join(timeout=10)
        return self.code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.t0


def sandbox_faults(*args: str) -> str:
    proc = subprocess.run([str(FAULTS), *args], capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        raise RuntimeError(f"sandbox/faults {' '.join(args)} exited {proc.returncode}: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def fault_counters() -> dict:
    try:
        return json.loads(COUNTERS.read_text()).get("services", {})
    except (OSError, ValueError):
        return {}


def one_line(stderr: str, width: int = 120) -> str:
    """The error line (phase prefix shortened) and the first ``[node] ...`` line after it."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    at = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    if at is None:
        text = lines[-1] if lines else "(no output)"
    else:
        text = lines[at][len("error:"):].strip()
        text = re.sub(r"^launch of '[^']+' failed in the (\w+) phase: ", r"\1 phase: ", text)
        node = next((line for line in lines[at + 1:]
                     if line.startswith("[") and not PROGRESS_LINE.match(line)), None)
        if node:
            text = f"{text} {node}"
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[:width - 3] + "..."


# --------------------------------------------------------------------------- the cloud

class ServerWatch:
    """Remembers the id of every server named CLUSTER-* while a launch runs, so the ports
    and floating IPs of servers the launch has deleted again can still be looked for."""

    def __init__(self, cloud: str, cluster: str):
        self.conn = openstack.connect(cloud=cloud)
        self.conn.authorize()        # before any API fault: this catalog stays unfaulted
        self.cluster = cluster
        self.ids: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)
        self.conn.close()
        return False

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                for srv in self.conn.compute.servers(name=f"^{self.cluster}-"):
                    self.ids.add(srv.id)
            except Exception:  # noqa: BLE001 - a missed poll is retried
                pass
            self.stop.wait(2)


def leftovers(conn, cluster: str, server_ids=()) -> dict[str, int]:
    """What of ``cluster`` the cloud still holds, by kind (the same test as the
    integration tests' ``leftovers``, counted)."""
    ids = set(server_ids)
    servers = [s for s in conn.compute.servers()
               if (s.metadata or {}).get(META_CLUSTER) == cluster
               or (s.name or "").startswith(f"{cluster}-") or s.id in ids]
    ids |= {s.id for s in servers}
    return {
        "servers": len(servers),
        "ports": sum(1 for p in conn.network.ports() if p.device_id in ids),
        "floating_ips": sum(1 for f in conn.network.ips()
                            if f.description == f"spark-openstack:{cluster}"
                            or (f.port_details or {}).get("device_id") in ids),
        "security_groups": sum(1 for g in conn.network.security_groups()
                               if g.name == f"spark-openstack-{cluster}"),
        "server_groups": sum(1 for g in conn.compute.server_groups()
                             if g.name == f"spark-openstack-{cluster}"),
    }


def settled_leftovers(conn, cluster: str, server_ids=(), timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(conn, cluster, server_ids)
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(3)


def fmt_left(left: dict | None) -> str:
    if left is None:
        return "?"
    return "/".join(str(left.get(k, 0)) for k in KINDS)


# --------------------------------------------------------------------------- the matrix

@dataclass
class Row:
    fault: str
    code: str = "?"
    reason: str = ""
    to_exit: float | None = None
    run_s: float | None = None
    left: dict | None = None
    expected: bool = False
    notes: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, args, keypair: str, key: str):
        self.args = args
        self.keypair, self.key = keypair, key
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env.update(OS_CLIENT_CONFIG_FILE=args.clouds_yaml, OS_CLOUD=args.cloud,
                        SPARK_OPENSTACK_CONFIG="/nonexistent/bench-faults-config.yaml",
                        PYTHONUNBUFFERED="1")
        self.conn = openstack.connect(cloud=args.cloud)
        self.conn.authorize()
        self.image: str | None = None
        self.image_seconds: float | None = None

    # ---- helpers
    def name(self, tag: str) -> str:
        return f"fb-{tag}-{secrets.token_hex(2)}"

    def launch_args(self, cluster: str, *extra: str, workers: int = 2, timeout: int = 300,
                    deploy: bool = False, flavor: str | None = None,
                    image: str | None = None) -> list[str]:
        return ["launch", "-c", cluster, "-s", str(workers), "-k", self.keypair,
                "--identity-file", self.key, "-i", image or self.args.image,
                "--flavor", flavor or self.args.flavor,
                "--allowed-cidr", self.args.allowed_cidr,
                "--deploy" if deploy else "--no-deploy", "--timeout", str(timeout), *extra]

    def destroy(self, cluster: str) -> Run:
        run = Run(self.env, ["destroy", "-c", cluster, "--yes", "--json"])
        run.wait(600)
        return run

    def safety_net(self, cluster: str) -> None:
        """After counting: whatever is left goes (never before the count)."""
        run = self.destroy(cluster)
        if run.code != 0:
            say(f"safety-net destroy of {cluster} exited {run.code}: {one_line(run.stderr)}")

    # ---- signals
    def signal_case(self, fault: str, first: int, *, at: str, phase: str | None,
                    second: int | None = None, deploy: bool = False) -> Row:
        """``phase=None``: a signal before anything exists (validation) must still exit
        130 and leave nothing; ``deploy``: the cluster deploys from the bench's image."""
        row = Row(fault)
        cluster = self.name(fault.split("-")[0])
        extra = dict(deploy=True, flavor=self.args.deploy_flavor,
                     image=self.ensure_image()) if deploy else {}
        with ServerWatch(self.args.cloud, cluster) as watch:
            run = Run(self.env, self.launch_args(cluster, **extra))
            try:
                seen = run.wait_line(at, timeout=300)
                if seen is None:
                    run.wait(30)
                    row.code, row.reason = str(run.code), "never reached: " + one_line(run.stderr)
                    return row
                signalled = run.signal(first)
                if second is not None:
                    if run.wait_line(r"cleaning up", timeout=120, start=seen[0]) is not None:
                        run.signal(second)
                        row.notes.append("second signal sent while cleaning up")
                    else:
                        row.notes.append("no 'cleaning up' line: second signal NOT sent")
                run.wait(300 + 120)
                row.to_exit = run.ended - signalled
            finally:
                run.kill()
            row.run_s = run.seconds
            row.code = "HANG" if run.hung else str(run.code)
            row.reason = one_line(run.stderr)
            try:
                row.left = settled_leftovers(self.conn, cluster, watch.ids)
                row.notes.append(f"{len(watch.ids)} server id(s) seen while it ran")
            finally:
                self.safety_net(cluster)
        said = (f"interrupted during the {phase} phase" if phase else "interrupted")
        row.expected = (run.code == 130 and said in run.stderr
                        and not any(row.left.values()))
        return row

    def sigint_validate(self) -> Row:
        return self.signal_case("sigint-validate", signal.SIGINT, at=r"\] validate \.\.\.",
                                phase=None)

    def sigint_floating_ip(self) -> Row:
        """The floating IP was just put on the master's port (the boot phase goes on)."""
        return self.signal_case("sigint-floating-ip", signal.SIGINT, at=r"master: floating IP",
                                phase="boot")

    def sigterm_validate(self) -> Row:
        return self.signal_case("sigterm-validate", signal.SIGTERM,
                                at=r"\] validate \.\.\.", phase=None)

    def sigterm_floating_ip(self) -> Row:
        """The floating IP was just put on the master's port (the boot phase goes on)."""
        return self.signal_case("sigterm-floating-ip", signal.SIGTERM, at=r"master: floating IP",
                                phase="boot")

    def sigterm_ssh(self) -> Row:
        return self.signal_case("sigterm-ssh", signal.SIGTERM, at=r"\] ssh \.\.\.", phase="ssh")

    def sigint_deploy(self) -> Row:
        return self.signal_case("sigint-deploy", signal.SIGINT, at=r"\] start spark \.\.\.",
                                phase="deploy", deploy=True)

    def sigterm_deploy(self) -> Row:
        return self.signal_case("sigterm-deploy", signal.SIGTERM,
                                at=r"\] deploy: configure nodes \.\.\.", phase="deploy",
                                deploy=True)

    def sigint_boot(self) -> Row:
        return self.signal_case("sigint-boot", signal.SIGINT, at=r": build", phase="boot")

    def sigint_ssh(self) -> Row:
        return self.signal_case("sigint-ssh", signal.SIGINT, at=r"\] ssh \.\.\.", phase="ssh")

    def sigterm_boot(self) -> Row:
        return self.signal_case("sigterm-boot", signal.SIGTERM, at=r": build", phase="boot")

    def sigint_cleanup(self) -> Row:
        return self.signal_case("sigint-cleanup", signal.SIGINT, at=r": build", phase="boot",
                                second=signal.SIGINT)

    # ---- API faults
    def api_case(self, fault: str, service: str, spec: str) -> Row:
        row = Row(fault)
        cluster = self.name(service[:4])
        before = fault_counters().get(service, {})
        with ServerWatch(self.args.cloud, cluster) as watch:
            try:
                sandbox_faults(f"--{service}", spec)
                run = Run(self.env, self.launch_args(cluster))
                try:
                    run.wait(300 + 120)
                finally:
                    run.kill()
                gone = self.destroy(cluster)          # under the same faults
            finally:
                counters = fault_counters().get(service, {})
                sandbox_faults("--clear")
            row.run_s = run.seconds
            row.to_exit = run.seconds
            row.code = "HANG" if run.hung else str(run.code)
            row.reason = (f"launch ok; destroy exit {gone.code}" if run.code == 0
                          else one_line(run.stderr))
            try:
                row.left = settled_leftovers(self.conn, cluster, watch.ids)
                row.notes.append(f"{len(watch.ids)} server id(s) seen while it ran")
            finally:
                self.safety_net(cluster)
        injected = sum(counters.get("faults", {}).values())
        requests = counters.get("requests", 0)
        if before.get("requests", 0) <= requests:   # the counters were not reset meanwhile
            injected -= sum(before.get("faults", {}).values())
            requests -= before.get("requests", 0)
        row.notes.append(f"proxy: {requests} {service} requests, {injected} answered {spec} "
                         f"(all users of the sandbox); destroy {gone.seconds:.1f}s exit "
                         f"{gone.code}")
        row.reason += f"; {injected}/{requests} {service} requests faulted"
        row.expected = run.code == 0 and gone.code == 0 and injected > 0 \
            and not any(row.left.values())
        return row

    def compute_503(self) -> Row:
        return self.api_case("compute-503", "compute", "503:0.2")

    def network_429(self) -> Row:
        return self.api_case("network-429", "network", "429:0.1")

    # ---- host faults
    def ensure_image(self) -> str:
        if self.image:
            return self.image
        name = f"fb-img-{secrets.token_hex(3)}"
        say(f"create-image {name} (Spark only, {self.args.image_flavor}) ...")
        run = Run(self.env, ["create-image", "-n", name, "--base-image", self.args.image,
                             "--flavor", self.args.image_flavor, "-k", self.keypair,
                             "--identity-file", self.key, "--no-hadoop",
                             "--mirror", self.args.mirror, "--allowed-cidr",
                             self.args.image_cidr])
        self.image = name        # deleted at the end even if the bake failed half-way
        run.wait(1800)
        self.image_seconds = run.seconds
        if run.code != 0:
            raise RuntimeError(f"create-image exited {run.code}: {one_line(run.stderr)}")
        say(f"image {name} baked in {run.seconds:.0f}s")
        return name

    def kill_worker(self) -> Row:
        row = Row("kill-worker")
        try:
            image = self.ensure_image()
        except RuntimeError as exc:
            row.reason = f"no image: {exc}"
            return row
        row.notes.append(f"image baked in {self.image_seconds:.0f}s (once)")
        cluster = self.name("kill")
        victim = f"{cluster}-worker-1"
        with ServerWatch(self.args.cloud, cluster) as watch:
            run = Run(self.env, self.launch_args(cluster, deploy=True, image=image,
                                                 flavor=self.args.deploy_flavor))
            killed = None
            try:
                seen = run.wait_line(r"\] deploy \.\.\.", timeout=420)
                if seen is not None:
                    time.sleep(self.args.kill_after)   # mid-deploy, not at its first line
                    if run.proc.poll() is None:
                        sandbox_faults("--kill-host", victim)
                        killed = time.monotonic()
                        row.notes.append(f"{victim} killed {self.args.kill_after:.0f}s "
                                         "after deploy started")
                run.wait(420 + 900)
            finally:
                run.kill()
            row.run_s = run.seconds
            row.to_exit = run.ended - killed if killed else None
            row.code = "HANG" if run.hung else str(run.code)
            row.reason = one_line(run.stderr)
            if killed is None:
                row.reason = "deploy never started / ended before the kill: " + row.reason
            try:
                row.left = settled_leftovers(self.conn, cluster, watch.ids)
                row.notes.append(f"{len(watch.ids)} server id(s) seen while it ran")
            finally:
                self.safety_net(cluster)
        named = victim in run.stderr
        row.notes.append(f"error names {victim}: {'yes' if named else 'NO'}")
        row.expected = (killed is not None and run.code == 1 and named
                        and row.to_exit is not None and row.to_exit < 600
                        and not any(row.left.values()))
        return row

    def freeze_worker(self) -> Row:
        row = Row("freeze-worker")
        cluster = self.name("frz")
        victim = f"{cluster}-worker-2"
        timeout = 120
        frozen = thawed = False
        with ServerWatch(self.args.cloud, cluster) as watch:
            run = Run(self.env, self.launch_args(cluster, timeout=timeout))
            froze_at = None
            try:
                # the victim is ACTIVE: frozen before SSH can reach it
                seen = run.wait_line(rf"{victim}: active", timeout=300)
                if seen is not None and run.proc.poll() is None:
                    sandbox_faults("--freeze-host", victim)
                    froze_at, frozen = time.monotonic(), True
                    cleaning = run.wait_line(r"cleaning up", timeout=timeout + 120,
                                             start=seen[0])
                    if cleaning is not None:
                        sandbox_faults("--thaw-host", victim)   # so its delete works
                        thawed = True
                        cleanup_from = time.monotonic()
                run.wait(timeout + 240)
                if thawed:
                    row.notes.append(f"cleanup (from 'cleaning up' to exit) "
                                     f"{run.ended - cleanup_from:.1f}s")
            finally:
                run.kill()
                if frozen and not thawed:
                    try:
                        sandbox_faults("--thaw-host", victim)
                    except RuntimeError as exc:    # deleted already: nothing to thaw
                        say(f"thaw {victim}: {exc}")
            row.run_s = run.seconds
            row.to_exit = run.ended - froze_at if froze_at else None
            row.code = "HANG" if run.hung else str(run.code)
            row.reason = one_line(run.stderr)
            if froze_at is None:
                row.reason = "servers never ACTIVE / launch ended first: " + row.reason
            try:
                row.left = settled_leftovers(self.conn, cluster, watch.ids)
                row.notes.append(f"{len(watch.ids)} server id(s) seen while it ran")
            finally:
                self.safety_net(cluster)
        named = f"[{victim}]" in run.stderr or victim in one_line(run.stderr, 10_000)
        row.notes.append(f"error names {victim}: {'yes' if named else 'NO'}; launch "
                         f"--timeout {timeout}, whole run {row.run_s:.1f}s")
        row.expected = (froze_at is not None and run.code == 1 and named
                        and row.run_s < timeout + 120 and not any(row.left.values()))
        return row

    # ---- two launches of one name
    def race(self) -> Row:
        row = Row("race")
        cluster = self.name("race")
        with ServerWatch(self.args.cloud, cluster) as watch:
            runs = [Run(self.env, self.launch_args(cluster)) for _ in range(2)]
            try:
                for run in runs:
                    run.wait(300 + 120)
            finally:
                for run in runs:
                    run.kill()
            row.run_s = max(r.seconds for r in runs)
            row.to_exit = row.run_s
            codes = ["HANG" if r.hung else str(r.code) for r in runs]
            row.code = "+".join(codes)
            time.sleep(3)
            try:
                row.left = leftovers(self.conn, cluster, watch.ids)   # the winner's cluster
                servers = [s for s in self.conn.compute.servers()
                           if (s.metadata or {}).get(META_CLUSTER) == cluster]
                runs_left = {(s.metadata or {}).get(META_RUN) for s in servers}
            finally:
                gone = self.destroy(cluster)
            after = settled_leftovers(self.conn, cluster, watch.ids)
            if any(after.values()):
                self.safety_net(cluster)
        loser = next((r for r in runs if r.code != 0), None)
        row.reason = (f"one exit 0; loser: {one_line(loser.stderr, 90)}" if loser is not None
                      and sorted(codes) == ["0", "2"] else
                      "; ".join(one_line(r.stderr, 60) for r in runs))
        row.notes.append(f"counted = the winner's cluster ({len(runs_left)} run id(s) on its "
                         f"servers); after the bench's destroy (exit {gone.code}): "
                         f"{fmt_left(after)}")
        row.expected = (sorted(codes) == ["0", "2"] and fmt_left(row.left) == "3/3/1/1/1"
                        and len(runs_left) == 1 and not any(after.values()))
        return row

    # ---- N = 28
    def n28(self, index: int) -> Row:
        row = Row(f"n28 #{index}")
        cluster = self.name("n28")
        timeout = 600
        with ServerWatch(self.args.cloud, cluster) as watch:
            run = Run(self.env, self.launch_args(cluster, workers=28, timeout=timeout,
                                                 flavor="m1.tiny"))
            try:
                run.wait(timeout + 120)
            finally:
                run.kill()
            row.run_s = row.to_exit = run.seconds
            row.code = "HANG" if run.hung else str(run.code)
            row.reason = ("killed after timeout + 120 s" if run.hung else
                          "launch ok" if run.code == 0 else one_line(run.stderr))
            gone = self.destroy(cluster)
            row.left = settled_leftovers(self.conn, cluster, watch.ids)
            if any(row.left.values()):
                self.safety_net(cluster)
        row.reason += f"; destroy {gone.seconds:.0f}s exit {gone.code}"
        row.notes.append("leftovers counted after destroy")
        row.expected = run.code == 0 and gone.code == 0 and not any(row.left.values())
        return row


def print_table(rows: list[Row], title: str) -> None:
    print(title)
    head = (f"{'fault':<16} {'exit':>5}  {'reason':<120} {'to exit s':>9} {'run s':>7}  "
            f"{'left srv/port/fip/sg/sgrp':>25}  expected")
    print(head)
    print("-" * len(head))
    for r in rows:
        to_exit = f"{r.to_exit:9.1f}" if r.to_exit is not None else f"{'-':>9}"
        run_s = f"{r.run_s:7.1f}" if r.run_s is not None else f"{'-':>7}"
        print(f"{r.fault:<16} {r.code:>5}  {r.reason:<120} {to_exit} {run_s}  "
              f"{fmt_left(r.left):>25}  {'yes' if r.expected else 'NO'}")
    notes = [(r.fault, n) for r in rows for n in r.notes]
    if notes:
        print("notes:")
        for fault, note in notes:
            print(f"  {fault}: {note}")


def make_keypair(conn, folder: Path) -> tuple[str, str]:
    key = folder / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    name = f"fb-key-{secrets.token_hex(3)}"
    conn.compute.create_keypair(name=name, public_key=(folder / "id_ed25519.pub").read_text())
    return name, str(key)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cloud", default=os.environ.get("OS_CLOUD") or "sandbox")
    parser.add_argument("--clouds-yaml", default=os.environ.get("OS_CLIENT_CONFIG_FILE")
                        or str(ROOT / ".sandbox" / "clouds.yaml"))
    parser.add_argument("--only", metavar="NAME[,NAME]",
                        help=f"faults to run (default all): {','.join(ALL_FAULTS)}")
    parser.add_argument("--repeat", type=int, default=1, metavar="N")
    parser.add_argument("--n28", action="store_true",
                        help="instead of the matrix: launch -s 28 three times")
    parser.add_argument("--image", default="debian-12")
    parser.add_argument("--flavor", default="m1.tiny")
    parser.add_argument("--deploy-flavor", default="m1.small",
                        help="flavor of the kill-worker cluster (it deploys Spark)")
    parser.add_argument("--image-flavor", default="m1.small")
    parser.add_argument("--mirror", default="http://10.213.0.1:8099")
    parser.add_argument("--image-cidr", default="10.213.0.1/32")
    parser.add_argument("--allowed-cidr", default="10.0.0.0/8")
    parser.add_argument("--kill-after", type=float, default=3.0,
                        help="seconds after deploy starts that the worker's host is killed")
    args = parser.parse_args(argv)
    os.environ["OS_CLIENT_CONFIG_FILE"] = args.clouds_yaml
    faults = ALL_FAULTS if not args.only else tuple(f.strip() for f in args.only.split(","))
    unknown = [f for f in faults if f not in ALL_FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(ALL_FAULTS)}")
    if os.geteuid() != 0:
        parser.error("run as root: sandbox/faults needs it")

    conn = openstack.connect(cloud=args.cloud)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        keypair, key = make_keypair(conn, Path(tmp))
        bench = Bench(args, keypair, key)
        started = time.monotonic()
        try:
            if args.n28:
                for i in range(1, 4):
                    say(f"n28 run {i} ...")
                    rows.append(bench.n28(i))
                    say(f"  -> exit {rows[-1].code} in {rows[-1].run_s:.0f}s")
            else:
                for rep in range(1, args.repeat + 1):
                    for fault in faults:
                        say(f"{fault} (round {rep}) ...")
                        try:
                            row = getattr(bench, fault.replace("-", "_"))()
                        except Exception as exc:  # noqa: BLE001 - a broken case is a row
                            row = Row(fault, code="ERR", reason=f"bench error: "
                                      f"{type(exc).__name__}: {exc}"[:120])
                        if args.repeat > 1:
                            row.fault = f"{fault} #{rep}"
                        rows.append(row)
                        say(f"  -> exit {row.code}, leftovers {fmt_left(row.left)}, "
                            f"expected: {'yes' if row.expected else 'NO'}")
        finally:
            try:
                sandbox_faults("--clear")
            except Exception as exc:  # noqa: BLE001
                say(f"sandbox/faults --clear failed: {exc}")
            if bench.image:
                img = conn.image.find_image(bench.image)
                if img is not None:
                    conn.image.delete_image(img.id, ignore_missing=True)
            conn.compute.delete_keypair(keypair, ignore_missing=True)
    title = ("launch -s 28 --no-deploy, three runs" if args.n28 else
             f"fault matrix: launch -s 2 ({args.flavor}, {args.image}), "
             f"{args.repeat} round(s)")
    print_table(rows, f"{title}; {time.monotonic() - started:.0f}s in all")
    print("to exit s: from the fault (signal, kill, freeze) to launch's exit; API faults, "
          "race and n28: the whole run. left: counted before any cleanup command (API "
          "faults and n28: after their destroy; race: the winner's cluster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
