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
"""

from __future__ import annotations

import argparse
import logging
import pickle
import re
import signal
import socket
import sys


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
