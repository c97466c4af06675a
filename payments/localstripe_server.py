"""Run localstripe (a Stripe-compatible server, for tests and the demo) the way we need it.

localstripe rewrites one pickle in /tmp on every write (seeding 300 customers took ~100 s)
and always listens on 8420. This launcher keeps its state in memory, writes it to the
given file only at exit, and listens on the given port, or a free one (printed on stdout as
`PORT <n>`), so several runs and CI never collide.

    python -m payments.localstripe_server --port 0 --state /tmp/x.pickle
"""

from __future__ import annotations

import argparse
import logging
import pickle
import signal
import socket
import sys


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
