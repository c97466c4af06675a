"""Run localstripe (a Stripe-compatible server, for tests and the demo) the way we need it.

localstripe rewrites one pickle in /tmp on every write (seeding 300 customers took ~100 s)
and always listens on 8420. This launcher keeps its state in memory, writes it to the
given file only at exit, and listens on the given port, or a free one (printed on stdout as
`PORT <n>`), so several runs and CI never collide.

    python -m console.demo.localstripe_server --port 0 --state /tmp/x.pickle

It also accepts two parameters localstripe 1.15 refuses ("Unexpected ...") although Stripe
takes them, so refunds and cancellations from the console work against it: a refund's
`reason`, and a subscription's `cancellation_details` when it is updated or canceled
(see `accept_stripe_parameters` and `keep_cancellation_details_on_delete`).

Beside localstripe, it answers what localstripe lacks, Stripe-shaped from payments/samples.json
(`stripe_extras`): disputes (retrieve, list, update evidence, submit, close), files (multipart
upload, retrieve), early fraud warnings and billing-portal sessions. Disputes and warnings are
made by posted webhook events, not by an API: whoever makes one tells the stand-in its object
with `POST /_paydesk/objects` (a JSON object or list), as the demo's seed does. A change to a
dispute is announced to localstripe's registered webhooks as Stripe does
(`charge.dispute.updated` with its previous attributes, `charge.dispute.closed`).
"""

from __future__ import annotations

import argparse
import copy
import logging
import pickle
import re
import signal
import socket
import sys
import time


def accept_stripe_parameters(resources) -> None:
    """Let localstripe take (and return) what Stripe accepts but 1.15 rejects. Idempotent."""
    if getattr(resources, "_paydesk_patched", False):
        return
    resources._paydesk_patched = True

    refund_init = resources.Refund.__init__

    def refund_with_reason(self, *args, reason=None, **kwargs):
        if reason is not None and reason not in ("duplicate", "fraudulent", "requested_by_customer"):
            raise resources.UserError(400, "Bad request")
        refund_init(self, *args, **kwargs)
        self.reason = reason  # Stripe returns it on the refund (null when not given)

    resources.Refund.__init__ = refund_with_reason

    subscription_update = resources.Subscription._update

    def update_with_cancellation_details(self, *args, cancellation_details=None, **kwargs):
        subscription_update(self, *args, **kwargs)
        if cancellation_details is not None:
            # Stripe keeps comment/feedback/reason; what the console sends is comment and feedback.
            self.cancellation_details = {"comment": None, "feedback": None, "reason": "cancellation_requested",
                                         **cancellation_details}

    resources.Subscription._update = update_with_cancellation_details

    def customer_currency(self):
        # Stripe's customer.currency is the currency of their recurring billing, null until they
        # have some; localstripe 1.15 answers "eur" for every card customer (a yen shopper shown in
        # euros). The currency of their newest subscription, else none.
        try:
            subscriptions = sorted(self.subscriptions._list, key=lambda s: s.created, reverse=True)
            for subscription in subscriptions:
                for item in subscription.items._list:
                    if getattr(item.plan, "currency", None):
                        return item.plan.currency
        except (AttributeError, TypeError):
            pass
        return None

    resources.Customer.currency = property(customer_currency)


def keep_cancellation_details_on_delete(app, resources, server) -> None:
    """DELETE /v1/subscriptions/<id> (cancel now) takes `cancellation_details` in its query;
    localstripe ignores a DELETE's parameters, so set them on the subscription before it is
    canceled and returned (the timeline shows the customer's feedback)."""
    from aiohttp import web

    path = re.compile(r"^/v1/subscriptions/(sub_[A-Za-z0-9]+)$")

    @web.middleware
    async def cancellation_details(request, handler):
        match = path.match(request.path) if request.method == "DELETE" else None
        if match and request.query:
            details = server.unflatten_data(request.query).get("cancellation_details")
            if isinstance(details, dict):
                sub = resources.Subscription._api_retrieve(match.group(1))  # 404 if unknown, as Stripe
                sub.cancellation_details = {"comment": None, "feedback": None, "reason": "cancellation_requested",
                                            **details}
        return await handler(request)

    app.middlewares.append(cancellation_details)  # innermost: after localstripe's auth check


def stripe_extras(app, resources) -> None:
    """The routes localstripe lacks, answered before localstripe's own middlewares read the body
    (a multipart upload is not form data to them). `DELETE /_config/data` empties them too."""
    from aiohttp import web

    from payments import samples

    objects: dict[str, dict] = {}  # id → Stripe object (dispute, file, early fraud warning, portal session)
    answers: dict[str, tuple[str, int, dict]] = {}  # Idempotency-Key → (request, status, answer)
    files: dict[str, bytes] = {}
    dispute_path = re.compile(r"^/v1/disputes/([A-Za-z0-9_]+)(/close)?$")
    file_path = re.compile(r"^/v1/files/([A-Za-z0-9_]+)(/contents)?$")
    warning_path = re.compile(r"^/v1/radar/early_fraud_warnings/([A-Za-z0-9_]+)$")
    answerable = ("needs_response", "warning_needs_response")

    def error(status: int, message: str, *, param: str | None = None, code: str | None = None,
              kind: str = "invalid_request_error"):
        body = {"error": {"type": kind, "message": message, **({"param": param} if param else {}),
                          **({"code": code} if code else {})}}
        return status, body

    def missing(kind: str, id_: str):
        return error(404, f"No such {kind}: '{id_}'", param="id", code="resource_missing")

    def listing(url: str, items: list[dict], query) -> dict:
        items = sorted(items, key=lambda o: (o.get("created") or 0, o["id"]), reverse=True)
        after = query.get("starting_after")
        if after:
            ids = [o["id"] for o in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        limit = max(1, min(100, int(query.get("limit") or 10)))
        return {"object": "list", "url": url, "has_more": len(items) > limit, "data": items[:limit]}

    def of(kind: str) -> list[dict]:
        return [o for o in objects.values() if o.get("object") == kind]

    class Announcement:
        """A Stripe event, in the shape localstripe's webhook sender signs and posts."""

        def __init__(self, type_: str, obj: dict, previous: dict | None = None):
            import stripe

            self.type, self.created = type_, int(time.time())
            self.payload = {**samples.sample("event"), "id": samples.new_id("evt"), "type": type_,
                            "created": self.created, "api_version": stripe.api_version, "livemode": False,
                            "pending_webhooks": 1, "request": {"id": samples.new_id("req"), "idempotency_key": None},
                            "data": {"object": copy.deepcopy(obj),
                                     **({"previous_attributes": previous} if previous else {})}}

        def _export(self) -> dict:
            return self.payload

    def announce(type_: str, obj: dict, previous: dict | None = None) -> None:
        """Tell the registered webhooks what changed, as Stripe does after a write."""
        from localstripe.webhooks import schedule_webhook

        schedule_webhook(Announcement(type_, obj, previous))

    def update_dispute(dispute: dict, form) -> tuple[int, dict]:
        evidence = {k[len("evidence["):-1]: v for k, v in form.items() if k.startswith("evidence[")}
        unknown = [k for k in evidence if k not in dispute["evidence"] or isinstance(dispute["evidence"][k], dict)]
        if unknown:
            return error(400, f"Received unknown parameter: evidence[{unknown[0]}]", param=f"evidence[{unknown[0]}]")
        details = dispute["evidence_details"]
        submit = form.get("submit") == "true"
        if dispute["status"] not in answerable or details.get("submission_count"):
            return error(400, "This dispute is already closed or its evidence was submitted; it can no longer be "
                              "updated.")
        if details.get("due_by") and details["due_by"] < time.time():
            return error(400, "The deadline to respond to this dispute has passed.")
        before = copy.deepcopy({"evidence": dispute["evidence"], "evidence_details": details,
                                "status": dispute["status"], "metadata": dispute.get("metadata") or {}})
        for key, value in evidence.items():
            dispute["evidence"][key] = value or None
        for key, value in form.items():
            if key.startswith("metadata["):
                dispute.setdefault("metadata", {})[key[len("metadata["):-1]] = value
        details["has_evidence"] = any(v for v in dispute["evidence"].values() if not isinstance(v, dict))
        if submit:
            details["submission_count"] = 1
            dispute["status"] = "warning_under_review" if dispute["status"].startswith("warning") else "under_review"
        previous = {key: value for key, value in before.items() if dispute.get(key) != value}
        if previous:
            announce("charge.dispute.updated", dispute, previous)
        return 200, dispute

    def close_dispute(dispute: dict) -> tuple[int, dict]:
        if dispute["status"] not in answerable:
            return error(400, "This dispute is already closed or under review, and can't be closed.")
        dispute["status"] = "warning_closed" if dispute["status"].startswith("warning") else "lost"
        dispute["is_charge_refundable"] = False
        announce("charge.dispute.closed", dispute)
        return 200, dispute

    def upload(fields: dict, content: bytes, filename: str) -> tuple[int, dict]:
        purpose = fields.get("purpose")
        if not purpose:
            return error(400, "Missing required param: purpose.", param="purpose")
        if not content:
            return error(400, "Missing required param: file.", param="file")
        kind = ("pdf" if content.startswith(b"%PDF-") else "png" if content.startswith(b"\x89PNG")
                else "jpg" if content.startswith(b"\xff\xd8\xff") else (filename.rsplit(".", 1)[-1].lower() or None))
        obj = samples.sample("file")
        id_ = samples.new_id("file")
        now = int(time.time())
        obj.update(id=id_, created=now, expires_at=now + 365 * 86400, filename=filename, purpose=purpose,
                   size=len(content), type=kind, title=None, url=f"https://files.stripe.com/v1/files/{id_}/contents",
                   links={"object": "list", "data": [], "has_more": False, "url": f"/v1/file_links?file={id_}"})
        objects[id_] = obj
        files[id_] = content
        return 200, obj

    def portal(form) -> tuple[int, dict]:
        customer = form.get("customer")
        if not customer:
            return error(400, "Missing required param: customer.", param="customer")
        try:
            resources.Customer._api_retrieve(customer)
        except resources.UserError:
            return missing("customer", customer)
        session = samples.sample("billing_portal.session")
        flow = None
        kind = form.get("flow_data[type]")
        if kind:
            after = form.get("flow_data[after_completion][type]", "portal_homepage")
            flow = {"type": kind, "after_completion": {
                "type": after, "hosted_confirmation": None,
                "redirect": {"return_url": form.get("flow_data[after_completion][redirect][return_url]")}
                if after == "redirect" else None},
                "subscription_cancel": None, "subscription_update": None, "subscription_update_confirm": None}
            for step in ("subscription_cancel", "subscription_update"):
                if kind == step:
                    flow[step] = {"subscription": form.get(f"flow_data[{step}][subscription]")}
            coupon = form.get("flow_data[subscription_cancel][retention][coupon_offer][coupon]")
            if kind == "subscription_cancel":
                flow["subscription_cancel"]["retention"] = (
                    {"type": "coupon_offer", "coupon_offer": {"coupon": coupon}} if coupon else None)
        secret = samples.new_id("test")
        session.update(id=samples.new_id("bps"), customer=customer, created=int(time.time()), livemode=False,
                       flow=flow, locale=form.get("locale"), return_url=form.get("return_url"),
                       url=f"https://billing.stripe.com/p/session/{secret}")
        return 200, session

    async def answer(request) -> tuple[int, dict] | None:
        path, method = request.path, request.method
        form: dict = {}
        content, filename = b"", ""
        if method == "POST" and (request.content_type or "").startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.filename is not None:
                    filename, content = part.filename, await part.read()
                else:
                    form[part.name] = await part.text()
        elif method == "POST":
            form = {k: v for k, v in (await request.post()).items()}
        query = request.query
        if method == "GET" and path == "/v1/disputes":
            items = [d for d in of("dispute") if all(d.get(k) == query[k] for k in ("charge", "payment_intent")
                                                     if k in query)]
            return 200, listing(path, items, query)
        if method == "GET" and path == "/v1/radar/early_fraud_warnings":
            items = [w for w in of("radar.early_fraud_warning") if "charge" not in query or w.get("charge") == query["charge"]]
            return 200, listing(path, items, query)
        if match := dispute_path.match(path):
            dispute = objects.get(match.group(1))
            if not dispute or dispute.get("object") != "dispute":
                return missing("dispute", match.group(1))
            if method == "GET" and not match.group(2):
                return 200, dispute
            if method == "POST":
                return close_dispute(dispute) if match.group(2) else update_dispute(dispute, form)
        if match := file_path.match(path):
            obj = objects.get(match.group(1))
            if not obj or obj.get("object") != "file":
                return missing("file", match.group(1))
            return 200, obj
        if method == "POST" and path == "/v1/files":
            return upload(form, content, filename)
        if match := warning_path.match(path):
            warning = objects.get(match.group(1))
            if not warning or warning.get("object") != "radar.early_fraud_warning":
                return missing("early fraud warning", match.group(1))
            return 200, warning
        if method == "POST" and path == "/v1/billing_portal/sessions":
            return portal(form)
        return None

    handled = re.compile(r"^/v1/(disputes|files|radar/early_fraud_warnings|billing_portal/sessions)(/|$)")

    @web.middleware
    async def extras(request, handler):
        if request.path == "/_config/data" and request.method == "DELETE":
            objects.clear(), answers.clear(), files.clear()
            return await handler(request)
        if request.path == "/_paydesk/objects" and request.method == "POST":
            told = await request.json()
            for obj in told if isinstance(told, list) else [told]:
                objects[obj["id"]] = obj
            return web.json_response({"known": len(objects)})
        if not handled.match(request.path):
            return await handler(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith(("Bearer sk_", "Basic ")):
            status, body = error(401, "Invalid API Key provided.", kind="invalid_request_error")
            return web.json_response(body, status=status)
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        if key:
            raw = await request.read() if not (request.content_type or "").startswith("multipart/") else b""
            said = f"{request.path}?{raw.decode(errors='replace')}"
            if key in answers:
                first, status, body = answers[key]
                if first != said:
                    status, body = error(400, "Keys for idempotent requests can only be used with the same "
                                              "parameters they were first used with.", kind="idempotency_error")
                return web.json_response(body, status=status, headers={"Idempotent-Replayed": "true"})
        answered = await answer(request)
        if answered is None:
            status, body = error(404, f"Unrecognized request URL ({request.method}: {request.path}).")
        else:
            status, body = answered
        if key and status < 500:
            answers[key] = (said, status, copy.deepcopy(body))
        return web.json_response(body, status=status)

    app.middlewares.insert(0, extras)  # outermost: before localstripe's auth reads the body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state", default="", help="pickle to load at start and write at exit")
    args = parser.parse_args(argv)

    from aiohttp import web
    from localstripe import resources, server

    store = resources.store

    def load():
        if args.state:
            try:
                with open(args.state, "rb") as f:
                    dict.update(store, pickle.load(f))
            except FileNotFoundError:
                pass

    def dump():
        if args.state:
            with open(args.state, "wb") as f:
                pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)

    # In memory while running: writes no longer rewrite the whole state.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None
    accept_stripe_parameters(resources)
    keep_cancellation_details_on_delete(server.app, resources, server)
    stripe_extras(server.app, resources)
    load()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"PORT {sock.getsockname()[1]}", flush=True)

    def stop(signum, frame):
        dump()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=False)
    finally:
        dump()


if __name__ == "__main__":
    main()
