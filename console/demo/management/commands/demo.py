"""`manage.py demo` (`make demo`): the console, seeded through the real webhook path.

Steps: reset and migrate the embedded SQLite database; start localstripe (a
Stripe-compatible server), a stand-in for the LINE API and the web server; point
localstripe's webhook at the console; seed a shop's Stripe account through localstripe and
post the events it cannot send; wait for the mirror to apply everything; create one user per
role; seed support tickets through the inbound email and LINE webhooks (console.demo.tickets);
serve until Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests
import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from console.demo import seed as demo_seed
from console.demo import tickets as demo_tickets
from console.demo import workflows as demo_workflows
from console.demo.line_api import LineApiStandIn

WEBHOOK_ID = "paydesk-demo"
# Who to log in as, as the summary line says it: one user per role, and the agent who works in Japanese.
LOGINS = "agent / finance / admin (English) or agent_ja (support, 日本語)"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Run in the child before exec: if the demo dies without cleaning up, so does the child."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: Ctrl-C still stops the children through the demo's own cleanup


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _tasks_in_process() -> None:
    """The demo has no broker: tasks run where they are queued, in its server and here (the
    seeded agents' replies are delivered by this process). Set explicitly, so a broker URL in
    the shell can't send them elsewhere, and without Celery's chatter about each task."""
    from console.celery import app as celery_app

    celery_app.conf.update(task_always_eager=True, broker_url="memory://localhost/")
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # a line per successful task


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Command(BaseCommand):
    help = (
        "Serve the console with a demo Stripe account: localstripe runs in the background, a "
        "shop's customers, payments, refunds, disputes and subscriptions are seeded through it "
        "and through signed webhook events, and the mirror fills from the webhook; then some "
        "shoppers write in by email and LINE through the console's inbound webhooks. Each run "
        "starts afresh: it deletes the embedded SQLite database and the localstripe state "
        "(.demo/localstripe.pickle) and seeds again, which takes seconds. --keep reuses both "
        "instead (nothing is seeded; the users get the new password). Ctrl-C stops the web "
        "server and localstripe. The API key, webhook and channel secrets are generated per run and "
        "never printed; the users' password is printed once, at the end. Replies never leave the "
        "machine: email goes to the server log, LINE pushes to a local stand-in (line.log)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=None,
                            help="port to serve on (default 8000, or the next free one after it)")
        parser.add_argument("--no-serve", action="store_true", help="seed, then stop (no web server left running)")
        parser.add_argument("--keep", action="store_true",
                            help="reuse the database and localstripe state of the last run instead of reseeding")
        parser.add_argument("--size", type=int, default=40, help="number of customers to seed (default 40)")
        parser.add_argument("--seed", type=int, default=7, help="seed for names, baskets and outcomes (default 7)")
        parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", ""),
                            help="password of the demo users (default: $DEMO_PASSWORD, else generated)")
        parser.add_argument("--state-dir", default=str(Path(settings.BASE_DIR) / ".demo"),
                            help="where localstripe's state and the server log go (default .demo/)")

    # -- processes ---------------------------------------------------------------------

    def _spawn(self, args: list[str], env: dict, stdout) -> subprocess.Popen:
        proc = subprocess.Popen(
            args, cwd=settings.BASE_DIR, env=env, stdout=stdout, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True,
            # Own session: Ctrl-C reaches the demo only, which then stops the children in order.
            start_new_session=True, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.procs.append(proc)
        return proc

    def _stop_all(self) -> None:
        if self.line_api is not None:
            self.line_api.close()
            self.line_api = None
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()  # localstripe writes its state on SIGTERM
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.procs.clear()

    def _start_localstripe(self, state: Path) -> str:
        proc = self._spawn([sys.executable, "-m", "console.demo.localstripe_server", "--port", "0", "--state", str(state)],
                           dict(os.environ), subprocess.PIPE)
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline and not line.startswith("PORT "):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        if not line.startswith("PORT "):
            raise CommandError("localstripe did not start (is the dev install complete? try `make install`)")
        proc.stdout.close()  # it prints nothing else we need
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        self._wait_http(f"{url}/v1/customers", "localstripe", headers={"Authorization": f"Bearer {self.api_key}"})
        return url

    def _start_server(self, host: str, port: int, env: dict, log: Path) -> str:
        with open(log, "w") as out:
            proc = self._spawn([sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"], env, out)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        try:
            self._wait_http(f"{url}/healthz", "the web server", proc=proc)
        except CommandError as exc:
            raise CommandError(f"{exc}\n{_tail(log)}") from None
        return url

    def _wait_http(self, url: str, what: str, headers=None, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise CommandError(f"{what} exited early")
            try:
                if requests.get(url, headers=headers, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise CommandError(f"{what} did not answer within 30 s")

    # -- the run -------------------------------------------------------------------------

    def handle(self, *args, **options):
        self.procs: list[subprocess.Popen] = []
        self.line_api: LineApiStandIn | None = None
        self.api_key = f"sk_test_demo_{secrets.token_hex(12)}"
        # Ctrl-C, kill and a closed terminal all stop the children cleanly, even when the shell
        # started us with SIGINT ignored (a background job).
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, _interrupt) for sig in stops}
        try:
            self._run(options)
        except KeyboardInterrupt:
            self.stdout.write("")
        finally:
            started = bool(self.procs)
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if started:
                self.stdout.write("Stopped the web server and localstripe.")

    def _run(self, options) -> None:
        started = self.lap = time.monotonic()
        self.verbosity = options["verbosity"]
        db = connections["default"].settings_dict
        if db["ENGINE"] != "django.db.backends.sqlite3" or str(db["NAME"]).startswith((":memory:", "file:")):
            raise CommandError(
                "The demo runs on the embedded SQLite database, which it resets on every run: unset "
                "DATABASE_URL (or point it at a sqlite:/// file) to run it."
            )
        if options["size"] < 2:
            raise CommandError("--size must be at least 2")
        _tasks_in_process()
        db_path = Path(db["NAME"])
        state_dir = Path(options["state_dir"])
        state_dir.mkdir(parents=True, exist_ok=True)
        state = state_dir / "localstripe.pickle"
        log = self.log = state_dir / "server.log"
        line_log = state_dir / "line.log"
        media = state_dir / "media"  # customers' attachments: with the run's other state, not in the checkout

        keep = options["keep"] and db_path.exists() and state.exists()
        if options["keep"] and not keep:
            self.stdout.write("Nothing to keep from a previous run: seeding afresh.")
        if not keep:
            connections.close_all()
            for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm"), state, line_log):
                path.unlink(missing_ok=True)
            if media.exists():
                shutil.rmtree(media)
        self.stdout.write(f"Migrating the demo database ({db_path.name}) …")
        call_command("migrate", interactive=False, verbosity=0)
        self._lap("migrate")
        from payments.models import Customer

        if keep and not Customer.objects.exists():
            keep = False
            self.stdout.write("The kept database has no customers: seeding afresh.")

        host = options["host"]
        port = options["port"]
        if options["no_serve"]:
            port = _free_port(host)
        elif port is None:
            port = next((p for p in range(8000, 8021) if _port_free(host, p)), None)
            if port is None:
                raise CommandError("Ports 8000-8020 are all taken: pass --port")
        elif not _port_free(host, port):
            raise CommandError(f"Port {port} on {host} is taken: pass another --port")

        ls_url = self._start_localstripe(state)
        secret = f"whsec_{secrets.token_urlsafe(24)}"
        channel_secrets = demo_tickets.ChannelSecrets.generate()
        self.line_api = LineApiStandIn(channel_secrets.line_access_token, line_log).start()
        env = {**os.environ, "DEBUG": "1", "STRIPE_API_KEY": self.api_key, "STRIPE_API_BASE": ls_url,
               "STRIPE_WEBHOOK_SECRETS": secret, "PYTHONUNBUFFERED": "1", "MEDIA_ROOT": str(media),
               **channel_secrets.server_env(self.line_api.url)}
        # The demo applies events in-process (no broker, no worker to run).
        env.pop("CELERY_BROKER_URL", None)
        url = self._start_server(host, port, env, log)
        webhook_url = f"{url}/stripe/webhook/"
        self.stdout.write(f"localstripe and the web server are up (server log: {self._rel(log)}).")
        self._lap("localstripe and web server start")

        client = stripe.StripeClient(self.api_key, base_addresses={"api": ls_url},
                                     stripe_version=demo_seed.LOCALSTRIPE_API_VERSION, max_network_retries=0)
        password = options["password"] or secrets.token_urlsafe(9)
        # People, teams and the auto-ticket workflows first: the shop's first events already
        # route disputes and failed payments to them.
        demo_seed.ensure_demo_users(password)
        users = {u.username: u for u in get_user_model().objects.filter(username__in=["agent", "finance", "admin"])}
        teams = demo_tickets.ensure_teams(users)
        demo_tickets.ensure_macros(users["admin"], teams)  # the canned replies, in English and Japanese
        demo_workflows.install_auto_ticket_rules(users["admin"])
        try:
            if keep:
                demo_seed.register_webhook(ls_url, WEBHOOK_ID, webhook_url, secret)
                self.stdout.write("Kept the previous run's data (--keep): nothing seeded.")
                statuses = Counter()
            else:
                self.stdout.write(f"Seeding {options['size']} customers through localstripe and the webhook …")
                report = demo_seed.seed(client, ls_url, webhook_url, secret, webhook_id=WEBHOOK_ID,
                                        size=options["size"], seed=options["seed"])
                statuses = report.statuses
                if self.verbosity >= 2:
                    self.stdout.write("  " + ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items()))
                self._lap("seeding")
        except demo_seed.DemoError as exc:
            raise CommandError(f"{exc}\n{_tail(log)}") from None

        if not keep:
            self._seed_tickets(url, channel_secrets, {"STRIPE_API_KEY": self.api_key, "STRIPE_API_BASE": ls_url})
        self._summary(demo_seed.mirror_counts(), statuses)
        self._inbox_summary(demo_tickets.inbox_counts(), line_log)
        seconds = time.monotonic() - started
        if options["no_serve"]:
            self.stdout.write(self.style.SUCCESS(
                f"Ready in {seconds:.1f} s. `make demo DEMO_ARGS=--keep` serves this data; "
                f"log in as {LOGINS}, password: {password}"))
            return
        self.stdout.write(self.style.SUCCESS(
            f"Paydesk is running at {url} — log in as {LOGINS}, password: {password}"))
        self.stdout.write(f"Ready in {seconds:.1f} s. Press Ctrl-C to stop.")
        while True:
            for proc, what in zip(self.procs, ("localstripe", "the web server")):
                if proc.poll() is not None:
                    raise CommandError(f"{what} stopped (exit {proc.returncode}); see {self._rel(log)}")
            time.sleep(0.5)

    def _seed_tickets(self, url: str, channel_secrets: demo_tickets.ChannelSecrets, stripe_settings: dict) -> None:
        self.stdout.write("Seeding support tickets by email and LINE through the console's webhooks …")
        try:
            report = demo_tickets.seed(url, channel_secrets, self.line_api.url, stripe_settings)
        except demo_seed.DemoError as exc:
            raise CommandError(f"{exc}\n{_tail(self.log)}") from None
        if self.verbosity >= 2:
            self.stdout.write("  " + "; ".join(report.stories))
        self._lap("tickets")

    def _lap(self, what: str) -> None:
        now = time.monotonic()
        if self.verbosity >= 2:
            self.stdout.write(f"  {what}: {now - self.lap:.1f} s")
        self.lap = now

    def _rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(Path(settings.BASE_DIR).resolve()))
        except ValueError:
            return str(path)

    def _summary(self, counts: dict[str, int], statuses: Counter) -> None:
        labels = [("customer", "customers"), ("product", "products"), ("price", "prices"),
                  ("payment_intent", "payment intents"), ("charge", "payments"), ("refund", "refunds"),
                  ("dispute", "disputes"), ("radar.early_fraud_warning", "early fraud warnings"),
                  ("subscription", "subscriptions"), ("invoice", "invoices")]
        total = sum(counts.values())
        parts = ", ".join(f"{counts.get(kind, 0)} {label}" for kind, label in labels)
        self.stdout.write(f"Mirror: {total} objects — {parts}.")
        if statuses:
            events = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()) if n)
            self.stdout.write(f"Webhook events: {events}.")
            trouble = statuses.get("failed", 0) + statuses.get("pending", 0) + statuses.get("missing", 0)
            if trouble:
                self.stdout.write(self.style.WARNING(
                    f"{trouble} events did not apply: see /sync/ in the console and {self._rel(self.log)}"))

    def _inbox_summary(self, counts: dict, line_log: Path) -> None:
        channels, statuses = counts["channels"], counts["statuses"]
        labels = {"email": "email", "line": "LINE", "web": "web", "phone": "phone"}
        by_channel = ", ".join(f"{n} {labels.get(c, c)}" for c, n in sorted(channels.items()))
        by_status = ", ".join(f"{statuses[s]} {s}" for s in ("open", "pending", "solved", "closed") if statuses[s])
        total = sum(channels.values())
        self.stdout.write(f"Tickets: {total} ({by_channel}): {by_status}." if total else "Tickets: none.")
        if counts["undelivered"]:
            self.stdout.write(self.style.WARNING(
                f"{counts['undelivered']} replies were not delivered: see the ticket pages, "
                f"{self._rel(self.log)} and {self._rel(line_log)}"))
