"""A stand-in for the LINE Messaging API's push and profile endpoints on localhost, shared by the demo and
the tests: it checks the bearer token, answers as LINE does (sent message ids, or the error it
was told to give next), records every call, and can write each push to a log. So the demo's
LINE replies are delivered to a file instead of failing against LINE or reaching a real user,
and the tests see exactly what line-bot-sdk sent."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


# The display names the stand-in's profiles have (one per user, chosen by the user id), so
# `make demo` shows LINE customers as LINE would: by the name they chose, in Japanese.
DISPLAY_NAMES = ("さくら", "田中 ゆうき", "はると🌸", "佐藤 美咲", "けんた", "高橋 陽菜", "ゆい", "伊藤 蓮")


class LineApiStandIn:
    PUSH_PATH = "/v2/bot/message/push"
    PROFILE_PATH = "/v2/bot/profile/"

    def __init__(self, access_token: str = "", log: Path | None = None, first_id: int = 500_000_000_000_000_001):
        self.access_token, self.log = access_token, log
        self.calls: list[dict] = []  # path, headers (lower-cased names), json
        self.profile_calls: list[str] = []  # the user ids whose profile was asked
        # user id -> the profile to answer, or None for 404 (blocked the account); others get
        # a display name from DISPLAY_NAMES and no picture (the demo runs without LINE's CDN).
        self.profiles: dict[str, dict | None] = {}
        self._profile_failures: list[tuple[int, dict]] = []
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

    def fail_profile_next(self, status: int, message: str = "error", times: int = 1) -> None:
        """The next `times` profile requests get LINE's error answer `status`."""
        with self._lock:
            self._profile_failures.extend([(status, {"message": message})] * times)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._failures.clear()
            self.profile_calls.clear()
            self.profiles.clear()
            self._profile_failures.clear()
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

    def _profile(self, path: str, headers) -> tuple[int, dict]:
        """GET /v2/bot/profile/{userId}, as LINE answers it."""
        user_id = path[len(self.PROFILE_PATH):].split("?", 1)[0]
        with self._lock:
            self.profile_calls.append(user_id)
            if self.access_token and headers.get("Authorization", "") != f"Bearer {self.access_token}":
                return 401, {"message": "Authentication failed."}
            if self._profile_failures:
                return self._profile_failures.pop(0)
            if user_id in self.profiles:
                profile = self.profiles[user_id]
                if profile is None:
                    return 404, {"message": "Not found"}
                return 200, {"userId": user_id, **profile}
        name = DISPLAY_NAMES[int(hashlib.sha256(user_id.encode()).hexdigest(), 16) % len(DISPLAY_NAMES)]
        # No language: the demo's customers' languages come from what they write (as for a
        # LINE user who has not agreed to share it).
        return 200, {"userId": user_id, "displayName": name}

    def _handler(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith(stand_in.PROFILE_PATH):
                    status, payload = stand_in._profile(self.path, self.headers)
                else:
                    status, payload = 404, {"message": "Not found"}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
