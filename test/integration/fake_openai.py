"""A small OpenAI-compatible chat completions server for tests.

It answers POST /v1/chat/completions with "re: <the user message>", and can
be told to be slow, to fail the next requests with given statuses (429 with
a Retry-After, 500, ...), to fail always, or to want an API key.  It counts
requests and the most it had in flight at once.

    server = FakeOpenAI().start()      # in a thread, on a free port
    server.base_url                    # http://127.0.0.1:PORT/v1
    server.stop()

Run alone, `python fake_openai.py [--port N]` serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeOpenAI:
    host: str = "127.0.0.1"
    port: int = 0
    delay_s: float = 0.0
    api_key: str | None = None
    fail_next: list[int] = field(default_factory=list)
    fail_always: int | None = None
    retry_after: str | None = None
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the server is not started"
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _enter(self) -> int | None:
        """Count a request in; the status it must fail with, if any."""
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.fail_next:
                return self.fail_next.pop(0)
            return self.fail_always

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._reply(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._reply(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._reply(404, {"error": {"message": "not found"}})
                return
            failure = fake._enter()
            try:
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fake.api_key is not None and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._reply(401, {"error": {"message": "invalid API key"}})
                    return
                if failure is not None:
                    headers = {"Retry-After": fake.retry_after} if failure == 429 and fake.retry_after else {}
                    self._reply(failure, {"error": {"message": f"fake failure {failure}"}}, headers)
                    return
                body = json.loads(raw)
                with fake._lock:
                    fake.bodies.append(body)
                user = [m["content"] for m in body["messages"] if m["role"] == "user"][-1]
                self._reply(200, {
                    "id": f"chatcmpl-{fake.requests}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", ""),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"re: {user}"}}],
                    "usage": {"prompt_tokens": len(user.split()), "completion_tokens": 1 + len(user.split()),
                              "total_tokens": 1 + 2 * len(user.split())},
                })
            finally:
                fake._leave()

    return Handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--api-key")
    args = parser.parse_args()
    server = FakeOpenAI(host=args.host, port=args.port, delay_s=args.delay, api_key=args.api_key).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
