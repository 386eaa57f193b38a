"""A small stand-in for a Ray dashboard that misbehaves on demand.

It serves the few endpoints of Ray's Jobs API that pg_ray uses, with just
enough state to follow a job, and lets a test make any request fail the
ways a real Ray cannot be made to fail on demand: server errors, resets,
timeouts, HTML error pages, truncated or malformed JSON, oversized bodies.
It is for error paths only; every feature is also tested against real Ray.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    """How to answer matching requests: kind is one of reset (close before
    doing anything), drop_answer (do the work, then close without answering),
    html, status, truncated, not_json, huge, slow (delay, then answer);
    times limits how often (None: always)."""
    kind: str
    status: int = 500
    delay: float = 0.0
    times: int | None = None


@dataclass
class FakeRay:
    """The dashboard's state and the faults to inject."""
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: dict[tuple[str, str], Fault] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    spans: list[list[Any]] = field(default_factory=list)  # [method, path, start, end or None]
    status_after_submit: str = "PENDING"
    # recorded behaviour: (seconds after its submission, status) a job moves
    # through by itself, as a real Ray's jobs do; empty: it stays put
    lifecycle: list[tuple[float, str]] = field(default_factory=list)
    posts: dict[str, int] = field(default_factory=dict)  # POSTs per submission id
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

    def count(self, method: str, path_regex: str) -> int:
        with self.lock:
            return sum(1 for m, p, _ in self.requests if m == method and re.fullmatch(path_regex, p))

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

    def start(self) -> "FakeRay":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                self.handle_any("GET")

            def do_POST(self) -> None:
                self.handle_any("POST")

            muted = False

            def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                if self.muted:
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                span = [method, path, time.time(), None]
                with fake.lock:
                    fake.requests.append((method, path, dict(self.headers)))
                    fake.spans.append(span)
                try:
                    self.handle_request(method, path, payload)
                finally:
                    span[3] = time.time()

            def handle_request(self, method: str, path: str, payload: bytes) -> None:
                with fake.lock:
                    fault = None
                    for (m, regex), f in list(fake.faults.items()):
                        if m == method and re.fullmatch(regex, path):
                            fault = f
                            if f.times is not None:
                                f.times -= 1
                                if f.times <= 0:
                                    del fake.faults[(m, regex)]
                            break
                if fault is not None and fault.kind == "drop_answer":
                    self.muted = True
                    self.route(method, path, payload)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault is not None and self.inject(fault):
                    return
                self.route(method, path, payload)

            def inject(self, fault: Fault) -> bool:
                if fault.kind == "slow":
                    time.sleep(fault.delay)
                    return False
                if fault.kind == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return True
                if fault.kind == "status":
                    self.send(fault.status, b"Internal Server Error", "text/plain")
                elif fault.kind == "html":
                    self.send(200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html")
                elif fault.kind == "truncated":
                    self.send(200, b'{"ray_version": "2.6')
                elif fault.kind == "not_json":
                    self.send(200, b"ok")
                elif fault.kind == "huge":
                    self.send(200, b'{"pad": "' + b"x" * (20 * 1024 * 1024) + b'"}')
                else:
                    raise ValueError(fault.kind)
                return True

            def route(self, method: str, path: str, payload: bytes) -> None:
                if method == "GET" and path == "/api/version":
                    return self.send(200, json.dumps({"version": "4", "ray_version": "2.60.0-fake"}).encode())
                if method == "GET" and path == "/api/jobs/":
                    with fake.lock:
                        body = json.dumps([fake._public(j) for j in fake.jobs.values()]).encode()
                    return self.send(200, body)
                if method == "POST" and path == "/api/jobs/":
                    request = json.loads(payload)
                    sid = request["submission_id"]
                    with fake.lock:
                        fake.posts[sid] = fake.posts.get(sid, 0) + 1
                        if sid in fake.jobs:
                            return self.send(500, f"ValueError: Job with submission_id {sid} already exists.".encode(),
                                             "text/plain")
                        fake.jobs[sid] = {"type": "SUBMISSION", "submission_id": sid, "job_id": None,
                                          "status": fake.status_after_submit, "message": "fake",
                                          "error_type": None, "start_time": None, "end_time": None,
                                          "driver_exit_code": None, "metadata": request.get("metadata", {}),
                                          "entrypoint": request["entrypoint"], "logs": "fake log\n",
                                          "_submitted": time.monotonic()}
                    return self.send(200, json.dumps({"job_id": sid, "submission_id": sid}).encode())
                match = re.fullmatch(r"/api/jobs/([^/]+)(/logs|/stop)?", path)
                if match:
                    sid, tail = match.group(1), match.group(2)
                    with fake.lock:
                        job = fake.jobs.get(sid)
                        if job is None:
                            return self.send(404, f"Job {sid} does not exist".encode(), "text/plain")
                        if tail == "/logs" and method == "GET":
                            return self.send(200, json.dumps({"logs": job["logs"]}).encode())
                        if tail == "/stop" and method == "POST":
                            running = fake._public(job)["status"] in ("PENDING", "RUNNING")
                            if running:
                                job["status"] = "STOPPED"
                                job["end_time"] = int(time.time() * 1000)
                            return self.send(200, json.dumps({"stopped": running}).encode())
                        if tail is None and method == "GET":
                            shown = fake._public(job)
                            shown.pop("logs")
                            return self.send(200, json.dumps(shown).encode())
                self.send(404, b"Not Found", "text/plain")

        class Server(ThreadingHTTPServer):
            # a dashboard's backlog, not socketserver's 5: under load, dropped
            # SYNs would make the stand-in, not pg_ray, the bottleneck
            request_queue_size = 128
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
