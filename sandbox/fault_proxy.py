"""A fault-injecting HTTP proxy for the sandbox cloud's APIs (stdlib only, threaded).

One listener on 127.0.0.1 per faulted service. Every request is forwarded as it came
(method, path, query, headers, body) to that service's real endpoint, except that a given
share of requests is answered at once with a given status (``429`` with ``Retry-After: 1``;
5xx with a small JSON error body like the services' own), and an optional latency delays
every request. The ``Host`` header is passed through unchanged, so the services build the
links in their answers (version discovery, pagination) with the proxy's address and a
client that follows them stays behind the proxy. Request and response bodies are buffered
(a chunked request body is forwarded with a ``Content-Length``); ``Connection: close`` from
either side closes the client's connection after the answer.

The fault decisions come from one seeded random generator per service (the seed is
recorded in the counters), so a run can be replayed; every request is logged to stdout.
Counters (requests, forwarded, faults by status, responses by status, per service) are
written to a JSON file (atomically) before each answer is sent.

Run by ``sandbox/faults`` as ``fault_proxy.py --config CONFIG.json``; CONFIG::

    {"seed": 7, "latency": 0.2, "counters": "/path/faults.json",
     "services": {"compute": {"upstream": "http://127.0.0.1:8774", "status": 503,
                              "share": 0.2, "port": 0}}}

Tests use :class:`FaultProxy` in-process.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: headers that belong to one connection, not to the message (RFC 9110 7.6.1)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade", "expect", "proxy-authenticate",
              "proxy-authorization"}
REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}
UPSTREAM_TIMEOUT = 600.0


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Service:
    """One faulted service: where it really is and what to do to its requests."""
    name: str
    upstream: str                 # scheme://host:port of the real endpoint
    status: int = 503             # status of an injected fault
    share: float = 0.0            # share of requests answered with ``status``
    port: int = 0                 # 0: any free port
    rng: random.Random = field(default_factory=random.Random, repr=False)
    requests: int = 0
    forwarded: int = 0
    upstream_errors: int = 0
    faults: dict = field(default_factory=dict)
    responses: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"{self.name}: share {self.share} is not within 0..1")
        if not 100 <= self.status <= 599:
            raise ValueError(f"{self.name}: status {self.status} is not an HTTP status")
        u = urllib.parse.urlsplit(self.upstream)
        if u.scheme != "http" or not u.hostname:
            raise ValueError(f"{self.name}: upstream {self.upstream!r} is not http://host:port")

    def counters(self) -> dict:
        return {"upstream": self.upstream, "fault_status": self.status,
                "fault_share": self.share, "requests": self.requests,
                "forwarded": self.forwarded, "upstream_errors": self.upstream_errors,
                "faults": dict(self.faults), "responses": dict(self.responses)}


def fault_body(service: str, status: int) -> bytes:
    """A small error document shaped like the service's own."""
    reason = REASONS.get(status, "Error")
    message = f"{reason} (fault injected by sandbox/faults)"
    if service == "compute":
        key = "overLimit" if status == 429 else "computeFault"
        doc = {key: {"code": status, "message": message}}
    elif service == "network":
        doc = {"NeutronError": {"type": "HTTP" + reason.replace(" ", ""),
                                "message": message, "detail": ""}}
    else:
        doc = {"error": {"code": status, "title": reason, "message": message}}
    return json.dumps(doc).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, proxy: "FaultProxy", service: Service):
        self.proxy, self.service = proxy, service
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox-fault-proxy"
    disable_nagle_algorithm = True   # headers and body go out in two writes
    server: _Server

    def __getattr__(self, name):   # every method (GET, PUT, PATCH, COPY, ...) alike
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    def log_message(self, fmt, *args):   # the default writes to stderr; one stream is enough
        pass

    # ------------------------------------------------------------------ request
    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass          # trailers: dropped
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        return self.rfile.read(int(length))

    def _proxy(self):
        proxy, svc = self.server.proxy, self.server.service
        t0 = time.monotonic()
        body = self._read_body()
        if proxy.latency > 0:
            time.sleep(proxy.latency)
        with proxy.lock:
            svc.requests += 1
            fault = svc.share > 0 and svc.rng.random() < svc.share
            if fault:
                svc.faults[str(svc.status)] = svc.faults.get(str(svc.status), 0) + 1
                svc.responses[str(svc.status)] = svc.responses.get(str(svc.status), 0) + 1
                proxy.write_counters()
        if fault:
            self._answer_fault(svc)
            outcome = f"{svc.status} injected"
        else:
            outcome = self._forward(svc, body)
        proxy.log(f"{svc.name} {self.command} {self.path} -> {outcome} "
                  f"({(time.monotonic() - t0) * 1000:.0f} ms)")

    def _answer_fault(self, svc: Service):
        data = fault_body(svc.name, svc.status)
        self.send_response(svc.status, REASONS.get(svc.status))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Openstack-Request-Id", f"req-{uuid.uuid4()}")
        self.send_header("X-Sandbox-Fault", "injected")
        if svc.status == 429:
            self.send_header("Retry-After", "1")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _forward(self, svc: Service, body: bytes | None) -> str:
        proxy = self.server.proxy
        up = urllib.parse.urlsplit(svc.upstream)
        drop = HOP_BY_HOP | {h.strip().lower()
                             for h in self.headers.get("Connection", "").split(",")}
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=UPSTREAM_TIMEOUT)
        try:
            conn.putrequest(self.command, self.path, skip_host=True,
                            skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in drop and k.lower() != "content-length":
                    conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            with proxy.lock:
                svc.upstream_errors += 1
                svc.responses["502"] = svc.responses.get("502", 0) + 1
                proxy.write_counters()
            data = json.dumps({"error": {"code": 502, "title": "Bad Gateway",
                                         "message": f"sandbox fault proxy: {exc}"}}).encode()
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            return f"502 upstream error: {exc}"
        conn.close()
        with proxy.lock:
            svc.forwarded += 1
            svc.responses[str(resp.status)] = svc.responses.get(str(resp.status), 0) + 1
            proxy.write_counters()
        up_drop = HOP_BY_HOP | {h.strip().lower()
                                for h in (resp.getheader("Connection") or "").split(",")}
        close = self.close_connection or "close" in up_drop
        self.send_response_only(resp.status, resp.reason)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        for k, v in resp.getheaders():
            kl = k.lower()
            if kl in up_drop or (kl == "content-length" and not no_body):
                continue
            self.send_header(k, v)
        if not no_body:
            self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not no_body:
            self.wfile.write(data)
        return f"{resp.status} forwarded"


class FaultProxy:
    """The listeners of all faulted services, their counters and the counters file."""

    def __init__(self, services: list[Service], *, latency: float = 0.0, seed: int = 0,
                 counters: str | None = None, host: str = "127.0.0.1", log=None):
        self.services = services
        self.latency = latency
        self.seed = seed
        self.counters_path = counters
        self.host = host
        self.lock = threading.RLock()
        self._log = log
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self.started = _now()
        self.ready = False

    def log(self, line: str):
        if self._log:
            self._log(line)

    def url(self, name: str) -> str:
        for srv in self._servers:
            if srv.service.name == name:
                return f"http://{self.host}:{srv.server_address[1]}"
        raise KeyError(name)

    def snapshot(self) -> dict:
        with self.lock:
            services = {}
            for srv in self._servers:
                c = srv.service.counters()
                c["listen"] = f"http://{self.host}:{srv.server_address[1]}"
                services[srv.service.name] = c
            return {"pid": os.getpid(), "ready": self.ready, "started": self.started,
                    "updated": _now(), "seed": self.seed,
                    "latency_ms": round(self.latency * 1000),
                    "totals": {"requests": sum(s.requests for s in self.services),
                               "faults": sum(sum(s.faults.values()) for s in self.services),
                               "upstream_errors": sum(s.upstream_errors
                                                      for s in self.services)},
                    "services": services}

    def write_counters(self):
        if not self.counters_path:
            return
        with self.lock:
            doc = self.snapshot()
            tmp = f"{self.counters_path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(doc, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp, self.counters_path)

    def start(self) -> "FaultProxy":
        for svc in self.services:   # one stream of decisions per service, from the seed
            svc.rng = random.Random(f"{self.seed}:{svc.name}")
            self._servers.append(_Server((self.host, svc.port), self, svc))
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                                 name=f"fault-proxy-{srv.service.name}", daemon=True)
            t.start()
            self._threads.append(t)
        self.ready = True
        self.write_counters()
        return self

    def stop(self):
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self.ready = False
        self.write_counters()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def from_config(cfg: dict, log=None) -> FaultProxy:
    services = [Service(name=name, upstream=s["upstream"], status=int(s.get("status", 503)),
                        share=float(s.get("share", 0.0)), port=int(s.get("port", 0)))
                for name, s in sorted(cfg["services"].items())]
    return FaultProxy(services, latency=float(cfg.get("latency", 0.0)),
                      seed=int(cfg.get("seed", 0)), counters=cfg.get("counters"), log=log)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="JSON configuration (see the module doc)")
    args = ap.parse_args(argv)
    with open(args.config) as f:
        cfg = json.load(f)

    def log(line):
        print(f"{_now()} {line}", flush=True)

    proxy = from_config(cfg, log=log)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    proxy.start()
    for s in proxy.services:
        log(f"{s.name}: {proxy.url(s.name)} -> {s.upstream}; {s.share:.0%} answered "
            f"{s.status}; latency {proxy.latency * 1000:.0f} ms; seed {proxy.seed}")
    while not stop.wait(5):
        proxy.write_counters()
    proxy.stop()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
