"""A small stand-in for a Ray dashboard that misbehaves on demand, and a
proxy that makes a real one misbehave.

FakeRay serves the few endpoints of Ray's Jobs API that pg_ray uses, with
just enough state to follow a job; FaultProxy forwards every request to a
real Ray head.  Both let a test make any request fail the ways a real Ray
cannot be made to fail on demand: server errors, resets, timeouts, HTML
error pages, truncated or malformed JSON, oversized bodies, either one by
one (fail) or on a schedule (a function of each request).  They are for
error paths only; every feature is also tested against real Ray.
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

# what a handler answers: status, body, content type
Answer = tuple[int, bytes, str]
JSON = "application/json"
TEXT = "text/plain"


@dataclass
class Fault:
    """How to answer a request.  Before any work is done: reset (close the
    connection), status (answer that HTTP status).  After the work is done
    (for a POST, Ray took it): drop_answer (close without answering),
    status_after (answer that status instead), html, truncated, not_json,
    huge (20 MB), slow (wait delay seconds, then answer).  times limits how
    often a fault given to fail() is used (None: always)."""
    kind: str
    status: int = 500
    delay: float = 0.0
    times: int | None = None


KINDS = ("reset", "status", "drop_answer", "status_after", "html", "truncated", "not_json", "huge", "slow")


def endpoint(method: str, path: str) -> str:
    """A request's endpoint, with the submission id left out."""
    path = re.sub(r"^/api/jobs/[^/]+", "/api/jobs/{id}", path) if path != "/api/jobs/" else path
    return f"{method} {path}"


@dataclass
class FaultyServer:
    """What both servers share: the faults to inject and what was asked."""
    faults: dict[tuple[str, str], Fault] = field(default_factory=dict)
    # a fault for each request that fail() has none for (None: no fault)
    schedule: Callable[[str, str], Fault | None] | None = None
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    spans: list[list[Any]] = field(default_factory=list)  # [method, path, start, end or None]
    injected: list[tuple[str, str]] = field(default_factory=list)  # (endpoint, fault kind)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, method: str, path_regex: str, fault: Fault) -> None:
        with self.lock:
            self.faults[(method, path_regex)] = fault

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()
            self.schedule = None

    def count(self, method: str, path_regex: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(path_regex, p))

    def fault_for(self, method: str, path: str) -> Fault | None:
        """The fault of one request, if any, and a note of it (the lock is held)."""
        fault = None
        for (m, regex), f in list(self.faults.items()):
            if m == method and re.fullmatch(regex, path):
                fault = f
                if f.times is not None:
                    f.times -= 1
                    if f.times <= 0:
                        del self.faults[(m, regex)]
                break
        if fault is None and self.schedule is not None:
            fault = self.schedule(method, path)
        if fault is not None:
            self.injected.append((endpoint(method, path), fault.kind))
        return fault

    def answer(self, method: str, path: str, query: str, payload: bytes, headers: dict[str, str]) -> Answer:
        """Do what the request asks and say what to answer."""
        raise NotImplementedError

    def start(self) -> "FaultyServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self.handle_any("GET")

            def do_POST(self) -> None:
                self.handle_any("POST")

            def send(self, status: int, body: bytes, content_type: str = JSON) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def hang_up(self) -> None:
                self.close_connection = True
                self.connection.shutdown(2)

            def handle_any(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                span = [method, path, time.time(), None]
                with owner.lock:
                    owner.requests.append((method, path, dict(self.headers)))
                    owner.spans.append(span)
                    fault = owner.fault_for(method, path)
                try:
                    self.handle_request(method, path, query, payload, fault)
                finally:
                    span[3] = time.time()

            def handle_request(self, method: str, path: str, query: str, payload: bytes,
                               fault: Fault | None) -> None:
                kind = fault.kind if fault is not None else None
                if kind == "reset":
                    return self.hang_up()
                if kind == "status":
                    return self.send(fault.status, b"Internal Server Error", TEXT)
                status, body, content_type = owner.answer(method, path, query, payload, dict(self.headers))
                if kind == "drop_answer":
                    return self.hang_up()
                if kind == "slow":
                    time.sleep(fault.delay)
                if kind is None or kind == "slow":
                    return self.send(status, body, content_type)
                if kind == "status_after":
                    return self.send(fault.status, b"Bad Gateway", TEXT)
                if kind == "html":
                    return self.send(200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
                if kind == "truncated":
                    return self.send(200, body[:max(1, len(body) // 2)] if body.startswith((b"{", b"["))
                                     else b'{"ray_version": "2.6')
                if kind == "not_json":
                    return self.send(200, b"ok")
                if kind == "huge":
                    return self.send(200, b'{"pad": "' + b"x" * (20 * 1024 * 1024) + b'"}')
                raise ValueError(kind)

        class Server(ThreadingHTTPServer):
            # a dashboard's backlog, not socketserver's 5: under load, dropped
            # SYNs would make the stand-in, not pg_ray, the bottleneck
            request_queue_size = 128
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # pg_ray hung up first (its timeout, or a fault that closed
                # the connection): expected here, not worth a traceback
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@dataclass
class FakeRay(FaultyServer):
    """A dashboard of its own: the state of its jobs."""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    status_after_submit: str = "PENDING"
    # recorded behaviour: (seconds after its submission, status) a job moves
    # through by itself, as a real Ray's jobs do; empty: it stays put
    lifecycle: list[tuple[float, str]] = field(default_factory=list)
    posts: dict[str, int] = field(default_factory=dict)  # POSTs per submission id
    # what GET /api/cluster_status?format=1 says (Ray's "ray status" text)
    cluster_status: str = "Pending Demands:\n (no resource demands)"

    def set_status(self, submission_id: str, status: str, **fields: Any) -> None:
        with self.lock:
            self._set_status(self.jobs[submission_id], status, **fields)

    @staticmethod
    def _set_status(job: dict[str, Any], status: str, **fields: Any) -> None:
        job["status"] = status
        now = int(time.time() * 1000)
        if status == "RUNNING" and not job.get("start_time"):
            job["start_time"] = now
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            if not job.get("start_time"):
                job["start_time"] = now
            job["end_time"] = now
        job.update(fields)

    def _public(self, job: dict[str, Any]) -> dict[str, Any]:
        """A job as Ray shows it, moved along its lifecycle first (the lock is held)."""
        if self.lifecycle and job["status"] in ("PENDING", "RUNNING"):
            elapsed = time.monotonic() - job["_submitted"]
            due = [status for after, status in self.lifecycle if elapsed >= after]
            if due and due[-1] != job["status"]:
                self._set_status(job, due[-1])
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def answer(self, method: str, path: str, query: str, payload: bytes, headers: dict[str, str]) -> Answer:
        if method == "GET" and path == "/api/version":
            return 200, json.dumps({"version": "4", "ray_version": "2.60.0-fake"}).encode(), JSON
        if method == "GET" and path == "/api/cluster_status":
            # as Ray's dashboard writes JSON: ASCII only, other characters as \\u escapes
            return 200, json.dumps({"result": True, "data": {"clusterStatus": self.cluster_status}}).encode(), JSON
        if method == "GET" and path == "/api/jobs/":
            with self.lock:
                return 200, json.dumps([self._public(j) for j in self.jobs.values()]).encode(), JSON
        if method == "POST" and path == "/api/jobs/":
            request = json.loads(payload)
            sid = request["submission_id"]
            with self.lock:
                self.posts[sid] = self.posts.get(sid, 0) + 1
                if sid in self.jobs:
                    return 500, f"ValueError: Job with submission_id {sid} already exists.".encode(), TEXT
                self.jobs[sid] = {"type": "SUBMISSION", "submission_id": sid, "job_id": None,
                                  "status": self.status_after_submit, "message": "fake",
                                  "error_type": None, "start_time": None, "end_time": None,
                                  "driver_exit_code": None, "metadata": request.get("metadata", {}),
                                  "entrypoint": request["entrypoint"], "logs": "fake log\n",
                                  "_submitted": time.monotonic()}
            return 200, json.dumps({"job_id": sid, "submission_id": sid}).encode(), JSON
        match = re.fullmatch(r"/api/jobs/([^/]+)(/logs|/stop)?", path)
        if match:
            sid, tail = match.group(1), match.group(2)
            with self.lock:
                job = self.jobs.get(sid)
                if job is None:
                    return 404, f"Job {sid} does not exist".encode(), TEXT
                if tail == "/logs" and method == "GET":
                    return 200, json.dumps({"logs": job["logs"]}).encode(), JSON
                if tail == "/stop" and method == "POST":
                    running = self._public(job)["status"] in ("PENDING", "RUNNING")
                    if running:
                        job["status"] = "STOPPED"
                        job["end_time"] = int(time.time() * 1000)
                    return 200, json.dumps({"stopped": running}).encode(), JSON
                if tail is None and method == "GET":
                    shown = self._public(job)
                    shown.pop("logs")
                    return 200, json.dumps(shown).encode(), JSON
        return 404, b"Not Found", TEXT


@dataclass
class FaultProxy(FaultyServer):
    """A proxy in front of a real Ray head; forwarded notes, for each request
    that reached the head, the endpoint, the head's status and, for a
    submission, its id."""
    upstream: str = ""
    forwarded: list[tuple[str, int, str | None]] = field(default_factory=list)

    def answer(self, method: str, path: str, query: str, payload: bytes, headers: dict[str, str]) -> Answer:
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        keep = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type", "accept")}
        try:
            connection.request(method, path + (f"?{query}" if query else ""), body=payload or None, headers=keep)
            response = connection.getresponse()
            status, body = response.status, response.read()
            content_type = response.getheader("Content-Type", TEXT)
        finally:
            connection.close()
        sid = json.loads(payload).get("submission_id") if method == "POST" and path == "/api/jobs/" else None
        with self.lock:
            self.forwarded.append((endpoint(method, path), status, sid))
        return status, body, content_type
