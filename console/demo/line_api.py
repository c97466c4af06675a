"""A stand-in for the LINE Messaging API's push endpoint on localhost, shared by the demo and
the tests: it checks the bearer token, answers as LINE does (sent message ids, or the error it
was told to give next), records every call, and can write each push to a log. So the demo's
LINE replies are delivered to a file instead of failing against LINE or reaching a real user,
and the tests see exactly what line-bot-sdk sent."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class LineApiStandIn:
    PUSH_PATH = "/v2/bot/message/push"

    def __init__(self, access_token: str = "", log: Path | None = None, first_id: int = 500_000_000_000_000_001):
        self.access_token, self.log = access_token, log
        self.calls: list[dict] = []  # path, headers (lower-cased names), json
        self._failures: list[tuple[int, dict]] = []
        self._first_id = first_id
        self._ids = itertools.count(first_id)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="line-api-stand-in", daemon=True)

    def start(self) -> LineApiStandIn:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, status: int, message: str = "error", times: int = 1) -> None:
        """The next `times` pushes get LINE's error answer `status` with `message`."""
        with self._lock:
            self._failures.extend([(status, {"message": message})] * times)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self._ids = itertools.count(self._first_id)

    def _answer(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        try:
            push = json.loads(body or b"{}")
        except ValueError:
            push = None
        with self._lock:
            self.calls.append({"path": path, "headers": {k.lower(): v for k, v in headers.items()}, "json": push})
            if path != self.PUSH_PATH:
                return 404, {"message": "Not found"}
            if self.access_token and headers.get("Authorization", "") != f"Bearer {self.access_token}":
                return 401, {"message": "Authentication failed. Confirm that the access token in the authorization "
                                        "header is valid."}
            if self._failures:
                return self._failures.pop(0)
            try:
                texts = [m.get("text", f"[{m.get('type')}]") for m in push["messages"]]
                to = push["to"]
            except (KeyError, TypeError, AttributeError):
                return 400, {"message": "The request body has 1 error(s)"}
            sent = [{"id": str(next(self._ids)), "quoteToken": secrets.token_urlsafe(16)} for _ in texts]
            if self.log is not None:
                with open(self.log, "a", encoding="utf-8") as out:
                    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
                    out.writelines(f"{stamp} LINE push to {to}: {' '.join(text.split())}\n" for text in texts)
        return 200, {"sentMessages": sent}

    def _handler(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = 0
                status, payload = stand_in._answer(self.path, self.headers, self.rfile.read(length))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass  # the push log is the record; request lines would only repeat it

        return Handler
