"""The optional language-model reader (console/assist/llm.py) through the real call path
(backends.classify → the openai SDK → HTTP), against a local stand-in for an OpenAI-compatible
Chat Completions endpoint that answers in the shape OpenAI records (data/assist_llm/*.json).
Any answer that is not a usable reading, and any failure of the endpoint, leaves the built-in
reading standing."""

from __future__ import annotations

import copy
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from console.assist import backends, classifier, llm
from console.assist.classifier import INTENTS, Classification

DATA = Path(__file__).resolve().parent / "data" / "assist_llm"
KEY = "sk-test-paydesk-h3-0c1d9e"
MODEL = "paydesk-test-model"

# A reply above a quoted support message: only the first paragraph is the customer's.
REPLY = ("Hi, I cancelled my Coffee subscription on April 2 but you charged me again on May 3 (US$29.00). "
         "Please sort this out.\n\n"
         "On Tue, May 6, 2025 at 10:02 AM Kissa Roasters Support <support@example.com> wrote:\n"
         "> Thanks for reaching out! We are happy to help with your refund.\n"
         "> Best, Kenji\n")
REPLY_JA = ("解約したのに、また５月３日に２，９７０円が請求されていました。確認してください。\n\n"
            "2025年5月6日(火) 10:02 Kissa Roasters <support@example.jp>:\n"
            "> お問い合わせありがとうございます。返金の手続きをいたします。\n")


def recorded(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def completion(content: str | None, **message) -> dict:
    """The recorded chat.completion with the model's content replaced."""
    answer = copy.deepcopy(recorded("chat_completion.json"))
    answer["choices"][0]["message"].update(content=content, **message)
    return answer


def reading(**fields) -> str:
    answer = {"intent": "charged_after_cancel", "confidence": 0.91, "runner_up": "refund_request",
              "runner_up_confidence": 0.06}
    answer.update(fields)
    return json.dumps({k: v for k, v in answer.items() if v is not ...})


class StandIn:
    """POST /v1/chat/completions answers `self.answer` (status, body), every time; every request
    it receives is kept."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answer: tuple[int, dict] = (200, recorded("chat_completion.json"))
        self.hold: threading.Event | None = None  # set: requests wait for it before answering
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                stand_in.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                                       daemon=True)  # a quick shutdown
        self.thread.start()

    def handle(self, h: BaseHTTPRequestHandler):
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self.lock:
            self.requests.append({"path": h.path, "headers": {k.lower(): v for k, v in h.headers.items()},
                                  "body": json.loads(raw or b"null")})
            status, body = self.answer if h.path == "/v1/chat/completions" else (404, {"error": {"message": "no route"}})
        if self.hold is not None:
            self.hold.wait(10)
        data = json.dumps(body).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("x-request-id", "req_paydesk_stand_in")
            if status >= 400:
                h.send_header("retry-after-ms", "1")  # as OpenAI does; keeps the SDK's one retry quick
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # a held request whose client gave up
            pass

    def close(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.close()
    llm._client.cache_clear()  # its pool points at a port that is gone


@pytest.fixture
def model(settings, stand_in):
    """The language model configured, at the stand-in."""
    settings.ASSIST_LLM_API_KEY = KEY
    settings.ASSIST_LLM_BASE_URL = f"{stand_in.url}/v1"
    settings.ASSIST_LLM_MODEL = MODEL
    settings.ASSIST_LLM_TIMEOUT = 5
    settings.ASSIST_CONFIDENCE_THRESHOLD = 0.25
    return stand_in


def test_a_good_answer_is_the_reading_marked_as_the_models(model):
    assert backends.classify(REPLY) == Classification("charged_after_cancel", 0.91, "refund_request", 0.06,
                                                      below_threshold=False, source="llm")
    assert len(model.requests) == 1


@pytest.mark.parametrize("text, said, quoted", [
    (REPLY, "you charged me again on may 3", "happy to help"),
    (REPLY_JA, "解約したのに、また5月3日に2,970円が請求されていました", "返金の手続き"),
], ids=["en", "ja"])
def test_the_request_carries_the_model_the_prompt_and_only_the_customers_new_words(model, text, said, quoted):
    backends.classify(text)

    (request,) = model.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == MODEL
    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert user["content"] == classifier.customer_words(text)
    assert said in user["content"] and quoted not in user["content"] and quoted not in system["content"]
    for slug in INTENTS:
        assert f"- {slug}: {llm.MEANINGS[slug]}" in system["content"]
    assert "Japanese" in system["content"] and "JSON" in system["content"]


def test_the_model_defaults_to_gpt_4o_mini(model, settings):
    del settings.ASSIST_LLM_MODEL
    backends.classify(REPLY)
    assert model.requests[0]["body"]["model"] == "gpt-4o-mini"


def test_the_prompt_means_the_ten_intents_and_nothing_else():
    assert set(llm.MEANINGS) == set(INTENTS) and len(INTENTS) == 10


MALFORMED = {
    "not JSON": "The customer was charged after cancelling.",
    "a JSON list": json.dumps(["charged_after_cancel", 0.91]),
    "an unknown intent": reading(intent="shipping_question"),
    "an unknown runner-up": reading(runner_up="Refund Request"),
    "confidence 1.7": reading(confidence=1.7),
    "a negative runner-up confidence": reading(runner_up_confidence=-0.1),
    "confidence as text": reading(confidence="0.91"),
    "confidence true": reading(confidence=True),
    "NaN": '{"intent": "charged_after_cancel", "confidence": NaN, "runner_up": "other", "runner_up_confidence": 0.1}',
    "no runner-up confidence": reading(runner_up_confidence=...),
    "no intent": reading(intent=...),
}


@pytest.mark.parametrize("content", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_leaves_the_built_in_reading(model, content):
    model.answer = (200, completion(content))

    with pytest.raises(llm.UnusableAnswer):
        llm.classify(REPLY)
    got = backends.classify(REPLY)
    assert got == classifier.classify(REPLY) and got.source == "builtin"
    assert len(model.requests) == 2  # asked each time, and never again for the same answer


def test_a_refusal_or_an_empty_answer_leaves_the_built_in_reading(model):
    model.answer = (200, completion(None, refusal="I can't help with that."))
    with pytest.raises(llm.UnusableAnswer, match="refused"):
        llm.classify(REPLY)

    model.answer = (200, {**completion(None), "choices": []})
    with pytest.raises(llm.UnusableAnswer, match="no choices"):
        llm.classify(REPLY)
    assert backends.classify(REPLY).source == "builtin"


def test_json_in_a_code_fence_is_read():
    """Some compatible servers ignore response_format and fence the JSON anyway."""
    assert llm.read_answer(f"```json\n{reading()}\n```") == Classification(
        "charged_after_cancel", 0.91, "refund_request", 0.06, source="llm")


@pytest.mark.parametrize("status, body", [
    (500, {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                     "type": "server_error", "param": None, "code": None}}),
    (429, recorded("rate_limit_error.json")),
], ids=["500", "429"])
def test_an_error_from_the_endpoint_leaves_the_built_in_reading_after_one_retry(model, status, body):
    model.answer = (status, body)

    got = backends.classify(REPLY)

    assert got == classifier.classify(REPLY) and got.source == "builtin"
    assert len(model.requests) == 2  # max_retries=1: the first try and one more


def test_an_endpoint_that_does_not_answer_in_time_leaves_the_built_in_reading(model, settings):
    settings.ASSIST_LLM_TIMEOUT = 0.2
    model.hold = threading.Event()  # released when the stand-in closes

    got = backends.classify(REPLY)

    assert got.source == "builtin" and len(model.requests) == 2


def test_an_answer_under_the_threshold_is_other_with_the_models_guess_as_runner_up(model):
    model.answer = (200, completion(reading(intent="double_charge", confidence=0.18, runner_up_confidence=0.15)))

    assert backends.classify(REPLY) == Classification("other", 0.18, "double_charge", 0.18,
                                                      below_threshold=True, source="llm")


def test_without_a_key_the_model_is_never_asked(model, settings):
    settings.ASSIST_LLM_API_KEY = ""

    got = backends.classify(REPLY)

    assert got.source == "builtin" and model.requests == []
    with pytest.raises(llm.NotConfigured):
        llm.classify(REPLY)
    assert model.requests == []


def test_a_message_with_no_words_is_not_sent(model):
    got = backends.classify(" \n\u3000\n")  # an ideographic space folds to a blank one
    assert got == Classification("other", 1.0, "other", 0.0) and model.requests == []


def test_neither_the_key_nor_the_message_is_logged(model, caplog):
    model.answer = (500, {"error": {"message": "upstream failed", "type": "server_error", "param": None, "code": None}})
    with caplog.at_level(logging.DEBUG):
        backends.classify(REPLY)
        model.answer = (200, completion(reading(intent="shipping_question")))
        backends.classify(REPLY)

    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert any(r.name == "console.assist.backends" and r.levelno == logging.WARNING for r in shown)
    formatter = logging.Formatter()
    for record in shown:
        line = formatter.format(record)  # with its traceback, as a handler would write it
        assert KEY not in line and "charged me again" not in line and "shipping_question" not in line
