"""Fixtures for the tickets tests: settings for the channels, eager Celery, and a local
HTTP server standing in for the LINE Messaging API that records every call."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import helpers

EML = Path(__file__).resolve().parent / "eml"
LINE_SECRET = "line-channel-secret-for-tests-5c1e"
API_TOKEN = "tickets-api-token-for-tests-90ab"
ATTACHMENT_LIMIT = 20_000


@pytest.fixture(autouse=True)
def tickets_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.TICKETS_EMAIL_FROM = "Paydesk Support <support@paydesk.test>"
    settings.TICKETS_EMAIL_DOMAIN = "paydesk.test"
    settings.TICKETS_ATTACHMENT_MAX_BYTES = ATTACHMENT_LIMIT
    settings.TICKETS_API_TOKEN = API_TOKEN
    settings.LINE_CHANNEL_SECRET = LINE_SECRET
    settings.LINE_CHANNEL_ACCESS_TOKEN = "line-access-token-for-tests"
    settings.TICKETS_DELIVERY_MAX_RETRIES = 2
    # The role fixtures hash a password per user; the real hasher costs ~0.5 s each on CI.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture
def eager():
    """Tasks run in the test process when their on_commit fires (with capture_on_commit)."""
    with helpers.eager_tasks():
        yield


class RecordingLineApi:
    """Records pushes; answers 200 with sent message ids unless told to fail."""

    def __init__(self):
        self.calls: list[dict] = []
        self.failures: list[tuple[int, dict]] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with api.lock:
                    api.calls.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "json": json.loads(body or b"{}"),
                    })
                    status, payload = api.failures.pop(0) if api.failures else (200, None)
                if payload is None:
                    payload = {"sentMessages": [{"id": str(500000000000000000 + len(api.calls)),
                                                 "quoteToken": secrets.token_urlsafe(16)}]}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fail_next(self, status: int, message: str = "error", times: int = 1):
        with self.lock:
            self.failures.extend([(status, {"message": message})] * times)

    def reset(self):
        with self.lock:
            self.calls.clear()
            self.failures.clear()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def line_api_server():
    server = RecordingLineApi()
    yield server
    server.close()


@pytest.fixture
def line_api(line_api_server, settings):
    line_api_server.reset()
    settings.LINE_API_BASE = line_api_server.url
    yield line_api_server
    line_api_server.reset()


def eml(name: str) -> bytes:
    return (EML / name).read_bytes()
