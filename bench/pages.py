"""Page speed in headless Chromium (issue 14: "Lighthouse-style measurement ... first contentful paint ... before and
after; plotly served compressed and cached").

Loads the demo into a scratch SQLite database, then serves it twice with runserver on loopback:
- **before**: no collected static files, plain URLs (what a checkout served before static files were collected:
  Plotly's 4.8 MB uncompressed, revalidated on every view);
- **after**: `collectstatic` run (gzip copies under hashed names) and hashed URLs, as `manage.py demo` serves.
For each page it opens a fresh browser context (cold cache) and then the same page again (warm cache), five
times each, and prints medians of first contentful paint, the load event, the bytes transferred and Plotly's own
transfer, over an emulated 20 Mbit/s link with 20 ms latency (Chromium's network emulation; `--mbit 0`: loopback).

    python bench/pages.py [--runs 5] [--mbit 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import median  # noqa: E402

MEASURE = """() => {
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const plotly = resources.filter(r => r.name.includes('plotly'));
  return {
    fcp: paint ? paint.startTime : null,
    load: nav ? nav.loadEventEnd : null,
    bytes: (nav ? nav.transferSize : 0) + resources.reduce((sum, r) => sum + r.transferSize, 0),
    plotly: plotly.reduce((sum, r) => sum + r.transferSize, 0),
  };
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env | {"DJANGO_RUNSERVER_HIDE_WARNING": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(120):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("runserver did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--mbit", type=float, default=20, help="emulated link (Mbit/s down, 20 ms latency); 0: plain loopback"
    )
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="fm-pages-"))
    before_var, after_var = scratch / "before", scratch / "after"
    base = {**os.environ, "DATABASE_URL": f"sqlite:///{scratch / 'db.sqlite3'}", "DEBUG": "1"}
    base.pop("REDIS_URL", None)
    env_before = base | {"FLEXMARKET_VAR_DIR": str(before_var), "FLEXMARKET_STATIC_HASHED_URLS": "0"}
    env_after = base | {"FLEXMARKET_VAR_DIR": str(after_var), "FLEXMARKET_STATIC_HASHED_URLS": "1"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "demo", "--no-serve"], cwd=ROOT, env=env_after, check=True, capture_output=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env_after, check=True)

    os.environ.update(env_after)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexmarket.settings")
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts.models import User
    from trading.models import MarketSession

    client = Client()
    client.force_login(
        User.objects.get(email="planner@zuidnet.demo"), backend="django.contrib.auth.backends.ModelBackend"
    )
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    cleared = MarketSession.objects.filter(state=MarketSession.State.CLEARED).order_by("pk").first()
    pages = {"dashboard": "/", "session with charts": f"/trading/sessions/{cleared.pk}/"}

    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    servers = {}
    try:
        for name, env in (("before", env_before), ("after", env_after)):
            port = free_port()
            servers[name] = (serve(env, port), f"http://127.0.0.1:{port}")
        link = f"{args.mbit:g} Mbit/s, 20 ms latency (emulated)" if args.mbit else "loopback"
        print(
            f"Page speed, headless Chromium, demo data, {link}, median of {args.runs} (ms; KiB transferred)"
        )
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, headless=True, args=["--no-sandbox"]
            )
            for page_name, path in pages.items():
                for name, (_, url) in servers.items():
                    cold, warm = [], []
                    for _ in range(args.runs):
                        context = browser.new_context(base_url=url, viewport={"width": 1440, "height": 900})
                        context.add_cookies(
                            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": url}]
                        )
                        page = context.new_page()
                        if args.mbit:
                            link = context.new_cdp_session(page)
                            link.send("Network.enable")
                            link.send(
                                "Network.emulateNetworkConditions",
                                {
                                    "offline": False,
                                    "latency": 20,
                                    "downloadThroughput": args.mbit * 125_000,
                                    "uploadThroughput": args.mbit * 125_000 / 4,
                                },
                            )
                        page.goto(path, wait_until="load")
                        page.wait_for_timeout(300)  # paint entries are queued after the load event
                        cold.append(page.evaluate(MEASURE))
                        page.goto("/trading/contracts/", wait_until="load")  # leave, then come back
                        page.goto(path, wait_until="load")
                        page.wait_for_timeout(300)
                        warm.append(page.evaluate(MEASURE))
                        context.close()
                    for label, runs in (("cold", cold), ("warm", warm)):
                        print(
                            f"  {page_name:<20} {name:<6} {label}: FCP {median([r['fcp'] for r in runs]):7.0f}  "
                            f"load {median([r['load'] for r in runs]):7.0f}  "
                            f"transferred {median([r['bytes'] for r in runs]) / 1024:8.0f} KiB  "
                            f"plotly {median([r['plotly'] for r in runs]) / 1024:7.0f} KiB"
                        )
            browser.close()
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
