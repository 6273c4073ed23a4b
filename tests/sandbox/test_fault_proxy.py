"""sandbox/fault_proxy.py: forwards requests unchanged, injects the configured share of
faults, delays, counts. Against a tiny upstream HTTP server on 127.0.0.1; no sandbox."""
from __future__ import annotations

import http.client
import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fault_proxy", ROOT / "sandbox" / "fault_proxy.py")
fp = importlib.util.module_from_spec(_spec)
sys.modules["fault_proxy"] = fp          # dataclasses look their module up by name
_spec.loader.exec_module(fp)


class _Upstream(BaseHTTPRequestHandler):
    """Echoes what it got as JSON; a few paths answer specially."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._echo
        raise AttributeError(name)

    def _echo(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        if self.path.startswith("/empty"):
            self.send_response(204)
            self.send_header("X-Upstream", "yes")
            self.end_headers()
            return
        doc = {"method": self.command, "path": self.path, "headers": dict(self.headers),
               "body": body.decode("latin-1"), "links": [
                   {"rel": "self", "href": f"http://{self.headers['Host']}/v2.1/"}]}
        data = json.dumps(doc).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(data)))
        if self.path.startswith("/close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


@pytest.fixture
def upstream():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    srv.daemon_threads = True
    srv.seen = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _proxy(upstream, tmp_path, *, status=503, share=0.0, latency=0.0, seed=42, name="compute"):
    svc = fp.Service(name=name, upstream=f"http://127.0.0.1:{upstream.server_address[1]}",
                     status=status, share=share)
    return fp.FaultProxy([svc], latency=latency, seed=seed,
                         counters=str(tmp_path / "faults.json")).start()


def _conn(proxy, name="compute"):
    port = int(proxy.url(name).rsplit(":", 1)[1])
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def test_forwards_method_path_query_headers_and_body(upstream, tmp_path):
    proxy = _proxy(upstream, tmp_path)
    try:
        c = _conn(proxy)
        payload = bytes(range(256)) * 40
        c.request("POST", "/v2.1/servers?limit=2&marker=x%20y", body=payload,
                  headers={"X-Auth-Token": "tok", "OpenStack-API-Version": "compute 2.79",
                           "Content-Type": "application/octet-stream"})
        r = c.getresponse()
        doc = json.loads(r.read())
        assert r.status == 201
        assert r.getheader("X-Upstream") == "yes"
        assert r.getheader("Content-Type") == "application/json"
        assert [v for k, v in r.getheaders() if k == "Set-Cookie"] == ["a=1", "b=2"]
        assert doc["method"] == "POST"
        assert doc["path"] == "/v2.1/servers?limit=2&marker=x%20y"
        assert doc["headers"]["X-Auth-Token"] == "tok"
        assert doc["headers"]["OpenStack-API-Version"] == "compute 2.79"
        assert doc["body"].encode("latin-1") == payload
        # the Host header passes unchanged: the service's links name the proxy
        assert doc["headers"]["Host"] == f"127.0.0.1:{proxy.url('compute').rsplit(':', 1)[1]}"
        assert doc["links"][0]["href"].startswith(proxy.url("compute"))
        # the same connection is kept alive for the next requests, any method
        for method in ("GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            c.request(method, "/v2.1/x", body=b"{}" if method in ("PUT", "PATCH") else None)
            r = c.getresponse()
            data = r.read()
            assert r.status == 200, method
            if method == "HEAD":
                assert data == b""
                assert int(r.getheader("Content-Length")) > 0
            else:
                assert json.loads(data)["method"] == method
        c.request("GET", "/empty")
        r = c.getresponse()
        assert (r.status, r.read(), r.getheader("X-Upstream")) == (204, b"", "yes")
        c.close()
    finally:
        proxy.stop()
    assert [s[0] for s in upstream.seen] == ["POST", "GET", "PUT", "PATCH", "DELETE", "HEAD",
                                             "OPTIONS", "GET"]


def test_chunked_request_body_is_forwarded_whole(upstream, tmp_path):
    proxy = _proxy(upstream, tmp_path)
    try:
        c = _conn(proxy)
        c.request("PUT", "/v2/images/x/file", body=iter([b"abc", b"", b"defgh", b"i" * 5000]),
                  encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["body"] == "abcdefgh" + "i" * 5000
        _, _, headers, _ = upstream.seen[-1]
        assert "Transfer-Encoding" not in headers
        assert headers["Content-Length"] == str(8 + 5000)
    finally:
        proxy.stop()


def test_connection_close_from_either_side_closes(upstream, tmp_path):
    proxy = _proxy(upstream, tmp_path)
    try:
        for path, headers in (("/close", {}), ("/x", {"Connection": "close"})):
            c = _conn(proxy)
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()
            assert r.status == 200
            assert r.getheader("Connection") == "close"
            assert r.will_close
            c.close()
        # the client's hop-by-hop header is not passed on
        assert "Connection" not in upstream.seen[-1][2]
    finally:
        proxy.stop()


def test_share_of_faults_within_tolerance_and_counted(upstream, tmp_path):
    proxy = _proxy(upstream, tmp_path, status=503, share=0.2, name="network")
    try:
        c = _conn(proxy, "network")
        statuses = []
        for i in range(400):
            c.request("GET", f"/v2.0/networks?i={i}")
            r = c.getresponse()
            body = r.read()
            statuses.append(r.status)
            if r.status == 503:
                assert json.loads(body)["NeutronError"]["message"]
                assert r.getheader("Content-Type") == "application/json"
                assert r.getheader("Retry-After") is None
        faults = statuses.count(503)
        assert 0.2 * 400 - 28 <= faults <= 0.2 * 400 + 28, faults
        assert statuses.count(200) == 400 - faults
        assert len(upstream.seen) == 400 - faults      # faults never reach the service
        counters = json.loads((tmp_path / "faults.json").read_text())
        net = counters["services"]["network"]
        assert net["requests"] == 400
        assert net["faults"] == {"503": faults}
        assert net["forwarded"] == 400 - faults
        assert net["responses"] == {"200": 400 - faults, "503": faults}
        assert counters["seed"] == 42 and counters["totals"]["faults"] == faults
    finally:
        proxy.stop()


def test_same_seed_same_faults(upstream, tmp_path):
    def run(seed):
        proxy = _proxy(upstream, tmp_path, share=0.3, seed=seed)
        try:
            c = _conn(proxy)
            out = []
            for _ in range(60):
                c.request("GET", "/")
                r = c.getresponse()
                r.read()
                out.append(r.status)
            return out
        finally:
            proxy.stop()
    assert run(5) == run(5)
    assert run(5) != run(6)


def test_429_carries_retry_after(upstream, tmp_path):
    proxy = _proxy(upstream, tmp_path, status=429, share=1.0)
    try:
        c = _conn(proxy)
        c.request("POST", "/v2.1/servers", body=b'{"server": {}}')
        r = c.getresponse()
        doc = json.loads(r.read())
        assert r.status == 429
        assert r.getheader("Retry-After") == "1"
        assert doc["overLimit"]["code"] == 429
        assert r.getheader("X-Openstack-Request-Id").startswith("req-")
        # the request body was consumed: the connection still works
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        assert r.status == 429
        assert upstream.seen == []
    finally:
        proxy.stop()


def test_5xx_bodies_look_like_the_services():
    assert json.loads(fp.fault_body("compute", 503))["computeFault"]["code"] == 503
    assert json.loads(fp.fault_body("image", 500))["error"]["code"] == 500
    assert json.loads(fp.fault_body("network", 503))["NeutronError"]["type"] == \
        "HTTPServiceUnavailable"


def test_latency_delays_every_request(upstream, tmp_path):
    proxy = _proxy(upstream, tmp_path, status=503, share=0.5, latency=0.2)
    try:
        c = _conn(proxy)
        for _ in range(6):
            t0 = time.monotonic()
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            assert time.monotonic() - t0 >= 0.2, r.status
        assert json.loads((tmp_path / "faults.json").read_text())["latency_ms"] == 200
    finally:
        proxy.stop()
    fast = _proxy(upstream, tmp_path)
    try:
        c = _conn(fast)
        t0 = time.monotonic()
        c.request("GET", "/")
        c.getresponse().read()
        assert time.monotonic() - t0 < 0.15
    finally:
        fast.stop()


def test_unreachable_upstream_is_502(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    svc = fp.Service(name="image", upstream=f"http://127.0.0.1:{dead}")
    proxy = fp.FaultProxy([svc], counters=str(tmp_path / "faults.json")).start()
    try:
        c = _conn(proxy, "image")
        c.request("GET", "/v2/images")
        r = c.getresponse()
        r.read()
        assert r.status == 502
        assert json.loads((tmp_path / "faults.json").read_text())[
            "services"]["image"]["upstream_errors"] == 1
    finally:
        proxy.stop()


def test_bad_specs_are_refused():
    with pytest.raises(ValueError):
        fp.Service(name="compute", upstream="http://127.0.0.1:1", share=1.5)
    with pytest.raises(ValueError):
        fp.Service(name="compute", upstream="http://127.0.0.1:1", status=42)
    with pytest.raises(ValueError):
        fp.Service(name="compute", upstream="ftp://x")


def test_runs_as_a_process_and_writes_counters_until_terminated(upstream, tmp_path):
    counters = tmp_path / "faults.json"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({
        "seed": 3, "latency": 0, "counters": str(counters),
        "services": {"compute": {"upstream": f"http://127.0.0.1:{upstream.server_address[1]}",
                                 "status": 503, "share": 0.5},
                     "image": {"upstream": f"http://127.0.0.1:{upstream.server_address[1]}",
                               "status": 500, "share": 0.0}}}))
    proc = subprocess.Popen([sys.executable, str(ROOT / "sandbox" / "fault_proxy.py"),
                             "--config", str(cfg)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if counters.exists():
                doc = json.loads(counters.read_text())
                if doc["pid"] == proc.pid and doc["ready"]:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the proxy did not write its counters")
        port = int(doc["services"]["compute"]["listen"].rsplit(":", 1)[1])
        for _ in range(20):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/v2.1/servers")
            c.getresponse().read()
            c.close()
        iport = int(doc["services"]["image"]["listen"].rsplit(":", 1)[1])
        c = http.client.HTTPConnection("127.0.0.1", iport, timeout=5)
        c.request("GET", "/v2/images")
        assert c.getresponse().status == 200
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    doc = json.loads(counters.read_text())
    assert doc["ready"] is False
    assert doc["services"]["compute"]["requests"] == 20
    assert 0 < doc["services"]["compute"]["faults"]["503"] < 20
    assert doc["services"]["image"]["requests"] == 1
    assert "compute GET /v2.1/servers -> 503 injected" in out
    assert "stopped" in out


def test_faults_cli_specs():
    from importlib.machinery import SourceFileLoader
    loader = SourceFileLoader("sandbox_faults", str(ROOT / "sandbox" / "faults"))
    spec = importlib.util.spec_from_loader("sandbox_faults", loader)
    faults = importlib.util.module_from_spec(spec)
    loader.exec_module(faults)
    assert faults.fault_spec("503:0.2") == (503, 0.2)
    assert faults.fault_spec("429:10%") == (429, 0.1)
    assert faults.duration("200ms") == 0.2 and faults.duration("1.5s") == 1.5
    assert faults.duration("50") == 0.05
    args = faults.parse(["--compute", "503:0.3", "--network", "429:0.1", "--latency", "1s"])
    assert args.faults == {"compute": (503, 0.3), "network": (429, 0.1)}
    assert set(faults.parse(["--latency", "200ms"]).faults) == set(faults.SERVICES)
    for bad in (["--compute", "503"], ["--compute", "200:0.1"], ["--clear", "--compute",
                                                                  "503:0.1"], []):
        with pytest.raises(SystemExit):
            faults.parse(bad)
