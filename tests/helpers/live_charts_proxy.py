"""A tiny reverse proxy the Live-charts tests control: the router of a blue/green pair, in miniature.

It forwards every request to the current target (a real API process) and `switch(url)` moves the
traffic to another one at once, as `mlci deploy`'s router switch does; `refuse` lists paths it answers
404 itself (an API whose /metrics is missing). Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

PASSED_HEADERS = ("content-type", "x-model-version", "x-request-id")


class SwitchProxy:
    def __init__(self, target: str, port: int):
        self.target = target
        self.refuse: set[str] = set()
        self._client = httpx.Client(timeout=10)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: the test's output is the test's
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path.split("?")[0] in proxy.refuse:
                    status, headers, content = 404, {"content-type": "application/json"}, b'{"message": "not here"}'
                else:
                    answer = proxy._client.request(
                        self.command,
                        proxy.target + self.path,
                        content=body,
                        headers={"content-type": self.headers.get("content-type", "application/json")},
                    )
                    status, content = answer.status_code, answer.content
                    headers = {k: answer.headers[k] for k in PASSED_HEADERS if k in answer.headers}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> SwitchProxy:
        self.thread.start()
        return self

    def switch(self, target: str) -> None:
        self.target = target

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._client.close()
