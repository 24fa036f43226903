"""Server time of every page on the demo data (issue 14 item 4: "no page over 1 s server time with the demo data").

Loads the demo (`manage.py demo --no-serve`) into the database it runs on (DATABASE_URL; unset: a throwaway SQLite
file), then, as each demo user in turn, crawls the portal from the dashboard: every same-site link on a page
(GET only; no sign-out, exports, downloads, admin or API pages) is opened once per user, up to `--per-user` pages.
Each page is timed in process through Django's full stack (middleware, views, templates; no network), three
times, and the median wall and CPU time kept. It prints the slowest pages, every page over the limit, and the
number of queries each made, and exits 1 if any page is over the limit.

    python bench/page_times.py [--per-user 60] [--limit 1.0]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import deque
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import median, setup_django  # noqa: E402

USERS = [
    "operator@fmo.demo",
    "planner@noordnet.demo",
    "planner@zuidnet.demo",
    "operator@tso.demo",
    "trader@flexy.demo",
    "analyst@balans.demo",
]
SKIP = re.compile(
    r"^/(admin|api|accounts/logout|static|media|shapeshifter)|_export=|/download|\.pdf|\.csv|\.xlsx"
)
LINK = re.compile(r'href="(/[^"#]*)"')


def links(html: str) -> list[str]:
    return [href.replace("&amp;", "&") for href in LINK.findall(html) if not SKIP.search(href)]


def timed(client, path: str) -> tuple:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    walls, cpus = [], []
    for _ in range(3):
        reset_queries()  # the query log keeps 9,000 entries: counts are exact only from an empty log
        with CaptureQueriesContext(connection) as captured:
            wall, cpu = time.perf_counter(), time.process_time()
            response = client.get(path)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return response.status_code, median(walls), median(cpus), len(captured.captured_queries), response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-user", type=int, default=60)
    parser.add_argument("--limit", type=float, default=1.0, help="seconds of server time a page may take")
    args = parser.parse_args()
    where = setup_django()
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User

    call_command("demo", "--no-serve", stdout=StringIO())
    print(f"Page server time on the demo data; {where}")
    results = []
    for email in USERS:
        client = Client()
        client.force_login(User.objects.get(email=email), backend="django.contrib.auth.backends.ModelBackend")
        seen, queue = set(), deque(["/"])
        while queue and len(seen) < args.per_user:
            path = queue.popleft()
            if path in seen:
                continue
            seen.add(path)
            status, wall, cpu, queries, response = timed(client, path)
            results.append((wall, cpu, queries, status, email, path))
            if status == 200 and "text/html" in response.get("Content-Type", ""):
                queue.extend(link for link in links(response.content.decode()) if link not in seen)
    results.sort(reverse=True)
    print(
        f"{len(results)} page visits; slowest 15 (median of 3; wall ms, CPU ms, queries, status, user, page):"
    )
    for wall, cpu, queries, status, email, path in results[:15]:
        print(f"  {wall * 1000:8.1f} {cpu * 1000:8.1f} {queries:5d} {status} {email:24s} {path}")
    over = [r for r in results if r[0] > args.limit]
    errors = [r for r in results if r[3] >= 500]
    print(f"over {args.limit:g} s: {len(over)}; 5xx: {len(errors)}")
    for wall, _cpu, _queries, status, email, path in over + errors:
        print(f"  {wall * 1000:8.1f} ms {status} {email} {path}")
    sys.exit(1 if over or errors else 0)


if __name__ == "__main__":
    main()
