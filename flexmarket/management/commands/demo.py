"""`python manage.py demo`: migrate, load demo data, and run the portal with a worker and beat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib import import_module

from django.conf import settings
from django.core.management import BaseCommand, call_command
from django.db import transaction
from django.test.utils import override_settings

# Each app's demo module has `seed(cast)`; accounts.demo.seed() makes the cast. Order matters.
APP_DEMOS = ["grid.demo", "trading.demo", "settlement.demo"]


class Command(BaseCommand):
    help = "Migrate, create demo organisations, users and market data, then serve on the embedded default."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="Only migrate and load the data.")
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete every row in the database first and load the demo afresh.",
        )
        parser.add_argument("--addrport", default="127.0.0.1:8000")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        from accounts import demo as accounts_demo
        from trading.models import Market

        if options["reset"]:
            call_command("flush", interactive=False, verbosity=0)
            call_command("migrate", interactive=False, verbosity=0)  # data migrations (beat schedules) again
            self.stdout.write("Database emptied (--reset).")
        if Market.objects.filter(code="nl-local").exists():
            cast = accounts_demo.seed()
            self.stdout.write(
                self.style.WARNING("Demo data already loaded; nothing changed (use --reset to start afresh).")
            )
        else:
            # Notifications of the seeded history are not mailed (the console backend would print hundreds).
            with (
                override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
                transaction.atomic(),
            ):
                cast = accounts_demo.seed()
                for module_name in APP_DEMOS:
                    module = import_module(module_name)
                    if hasattr(module, "seed"):
                        module.seed(cast)
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write("Sign in with:")
        for key, email, password in cast.credentials():
            self.stdout.write(f"  {key:<10} {email:<28} {password}")
        self.stdout.write("FMO staff must set up TOTP (any authenticator app) at first sign-in.")
        if options["no_serve"]:
            return
        self._serve(options["addrport"])

    def _serve(self, addrport: str) -> None:
        python = sys.executable
        # Compressed copies with hashed names, so the browser fetches Plotly (4.8 MB, 1.5 MB gzipped) once a year.
        call_command("collectstatic", interactive=False, verbosity=0)
        # Each child in its own session: Ctrl-C reaches this command only, which then stops every child once and
        # waits for it (a second signal is what made the worker print pages of tracebacks on a cold shutdown).
        detached = {"start_new_session": True}
        processes = [
            subprocess.Popen(
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "flexmarket",
                    "--quiet",
                    "worker",
                    "--pool=solo",
                    "--loglevel=WARNING",
                ],
                **detached,
            ),
            subprocess.Popen(
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "flexmarket",
                    "--quiet",
                    "beat",
                    "--loglevel=WARNING",
                    "--schedule",
                    str(settings.VAR_DIR / "celerybeat-schedule"),
                ],
                **detached,
            ),
        ]
        self.stdout.write(
            self.style.SUCCESS(f"Portal on http://{addrport}/ (worker and beat running; Ctrl-C stops all)")
        )
        web = subprocess.Popen(
            [python, "manage.py", "runserver", addrport, "--noreload"],
            # Hashed static URLs as in production; no development-server banner on every start.
            env={**os.environ, "FLEXMARKET_STATIC_HASHED_URLS": "1", "DJANGO_RUNSERVER_HIDE_WARNING": "true"},
            **detached,
        )
        processes.append(web)
        try:
            while all(process.poll() is None for process in processes):
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("Stopping the portal, the worker and beat ...")
        finally:
            _stop(processes)


def _stop(processes, *, timeout: float = 10) -> None:
    """Stop each child once, as it shuts down cleanly (Celery: SIGTERM, a warm shutdown; runserver: SIGINT), then
    wait; kill what is still running after `timeout` seconds."""
    for process in processes:
        if process.poll() is None:
            celery = "celery" in process.args
            process.send_signal(signal.SIGTERM if celery else signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
