"""API load benchmark: gunicorn with the project's WSGI app, concurrent client processes over HTTP.

(a) FlexOffer POST p50/p95 beside the `/api/v1/me/` floor (authentication, permission, one small JSON answer) at
    the same concurrency, 8 and 32 clients; each ESP client offers on its own asset into a continuous session.
(b) Aggressor FlexRequests per second through `POST /api/v1/flex-requests/` against 1,000 resting offers.

For each setting it prints requests/s, p50 and p95 latency, and CPU time per request of the gunicorn processes
(master and workers) and of the client processes. The server runs with DEBUG=0 on DATABASE_URL (unset: a
throwaway SQLite file) and REDIS_URL if set (then the API throttle counters live in Redis, as in production).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fm_bench python bench/api_load.py
    python bench/matching.py --api            # the same, after the service benchmarks

Environment: BENCH_GUNICORN_WORKERS (default 2 x CPUs + 1), BENCH_API_CLIENTS (default 8,32),
BENCH_API_REQUESTS (requests per setting, default 640). Target (issue 10): offer POST p95 within 2x of the
floor at 32 clients.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import ean18, median, percentile, setup_django  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the server -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(workers: int) -> tuple[subprocess.Popen, int]:
    """gunicorn on 127.0.0.1 with production-like settings (DEBUG off, no HTTPS redirect behind the bench)."""
    port = _free_port()
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-" + uuid.uuid4().hex * 2),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        API_THROTTLE_USER="100000000/minute",
        PYTHONPATH=str(ROOT),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "flexmarket.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            status, _ = request(port, "GET", "/healthz")
            if status < 500:
                return process, port
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop_gunicorn(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def server_cpu(process: subprocess.Popen) -> float:
    """CPU seconds used so far by the gunicorn master and its live workers."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return _cpu_seconds(process.pid) + sum(_cpu_seconds(int(child)) for child in children)


# --- the clients ------------------------------------------------------------------------------------------


def request(port: int, method: str, path: str, body: dict | None = None, key: str = "") -> tuple[int, bytes]:
    """One request on a new connection (gunicorn's sync workers close each connection after answering)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Api-Key {key}"
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _client(args) -> None:
    port, key, method, path, bodies, expected, barrier, queue = args
    barrier.wait()
    cpu0 = time.process_time()
    latencies, failures = [], []
    for body in bodies:
        started = time.perf_counter()
        status, content = request(port, method, path, body, key)
        latencies.append(time.perf_counter() - started)
        if status != expected:
            failures.append(f"{status} {content[:200]!r}")
    queue.put((latencies, failures, time.process_time() - cpu0))


def load(server, port: int, jobs: list[tuple[str, str, str, list]], expected: int) -> dict:
    """Run one client process per job [(key, method, path, bodies)] at once; timings of the whole setting."""
    context = multiprocessing.get_context("fork")
    queue, barrier = context.Queue(), context.Barrier(len(jobs) + 1)
    processes = [
        context.Process(target=_client, args=((port, key, method, path, bodies, expected, barrier, queue),))
        for key, method, path, bodies in jobs
    ]
    for process in processes:
        process.start()
    cpu0 = server_cpu(server)
    barrier.wait()
    started = time.perf_counter()
    results = [queue.get() for _ in processes]
    elapsed = time.perf_counter() - started
    cpu = server_cpu(server) - cpu0
    for process in processes:
        process.join()
    latencies = [latency for result in results for latency in result[0]]
    failures = [failure for result in results for failure in result[1]]
    if len(failures) == len(latencies):
        raise RuntimeError(f"every request failed, e.g. {failures[0]}")
    return {
        "failures": failures,
        "rate": len(latencies) / elapsed,
        "p50": median(latencies),
        "p95": percentile(latencies, 0.95),
        "server_cpu": cpu / len(latencies),
        "client_cpu": sum(result[2] for result in results) / len(latencies),
    }


def line(label: str, figures: dict) -> str:
    failed = figures["failures"]
    return (
        f"  {label:<34} {figures['rate']:7.1f} req/s  p50 {figures['p50'] * 1000:7.1f} ms  "
        f"p95 {figures['p95'] * 1000:7.1f} ms  server CPU {figures['server_cpu'] * 1000:5.1f} ms/req  "
        f"client CPU {figures['client_cpu'] * 1000:4.1f} ms/req"
        + (f"\n  {'':<34} {len(failed)} failed, e.g. {failed[0]}" if failed else "")
    )


# --- the market -------------------------------------------------------------------------------------------


def api_key_for(organisation_id: int, user_id: int) -> str:
    from accounts.context import Actor
    from accounts.models import Organisation, User
    from accounts.services import api_key_create

    actor = Actor(
        user=User.objects.get(pk=user_id), organisation=Organisation.objects.get(pk=organisation_id)
    )
    return api_key_create(actor=actor, name=f"bench {uuid.uuid4().hex[:6]}")[1]


def client_assets(market: dict, count: int) -> list[int]:
    """One approved asset per ESP client, as each trader offers its own assets."""
    from grid.models import FlexAsset

    serial = int(uuid.uuid4().int % 10**9)
    return [
        FlexAsset.objects.create(
            owner_id=market["esp_id"],
            name=f"Bench client asset {i}",
            asset_type="battery",
            connection_ean=ean18(serial * 100 + i),
            latitude=52.05,
            longitude=5.05,
            grid_location_id=market["zone_id"],
            max_up_kw=Decimal("1000000"),
            max_down_kw=Decimal("1000000"),
            prequalification="approved",
        ).pk
        for i in range(count)
    ]


def offer_bodies(market: dict, asset_id: int, count: int, seed: int) -> list[dict]:
    """Offers priced above every request, so they rest in the book (no fills: the POST itself is measured)."""
    import numpy as np

    from flexmarket import ptu

    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        length = int(rng.integers(1, 5))
        first = int(rng.integers(60, 88 - length))
        bodies.append(
            {
                "asset": asset_id,
                "product": market["product_id"],
                "ptu_start": (market["start"] + first * ptu.PTU).isoformat(),
                "quantities_kw": [1.0] * length,
                "price": "900",
            }
        )
    return bodies


def aggressor_bodies(market: dict, count: int, seed: int) -> list[dict]:
    """Aggressor FlexRequests as bench/matching.py submits them through the service."""
    import numpy as np

    from flexmarket import ptu

    rng = np.random.default_rng(seed)
    bodies = []
    for _ in range(count):
        length = int(rng.integers(1, 5))
        first = int(rng.integers(60, 88 - length))
        bodies.append(
            {
                "grid_location": market["zone_id"],
                "product": market["product_id"],
                "ptu_start": (market["start"] + first * ptu.PTU).isoformat(),
                "quantities_kw": [float(rng.choice([5, 10, 20]))] * length,
                "price": "250",
                "order_mode": "aggressor",
            }
        )
    return bodies


# --- the benchmark ----------------------------------------------------------------------------------------


def api_part() -> None:
    """Start gunicorn, build the markets, and measure (a) offer POST against the floor and (b) aggressors/s."""
    from django.apps import apps

    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured, also when piped
    if not apps.ready:
        print(f"Database: {setup_django()}")
    from django.db import connection, connections

    from bench.matching import build_market

    workers = int(os.environ.get("BENCH_GUNICORN_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))
    clients = [int(n) for n in os.environ.get("BENCH_API_CLIENTS", "8,32").split(",") if n]
    total = int(os.environ.get("BENCH_API_REQUESTS", "640"))
    settings = connection.settings_dict
    print(
        f"\nPart 3 (API): gunicorn, {workers} sync workers, on {connection.vendor} database {settings['NAME']} "
        f"(CONN_MAX_AGE {settings['CONN_MAX_AGE']}); REDIS_URL {'set' if os.environ.get('REDIS_URL') else 'unset'}; "
        f"{os.cpu_count()} CPU(s); {total} requests per setting"
    )
    offers_market = build_market(0, f"api-o-{uuid.uuid4().hex[:6]}")
    esp_key = api_key_for(offers_market["esp_id"], offers_market["esp_user_id"])
    assets = client_assets(offers_market, max(clients))
    connections.close_all()  # the forked clients must not share this connection
    server, port = start_gunicorn(workers)
    try:
        print("  (a) FlexOffer POST beside the /api/v1/me/ floor")
        warm = [(esp_key, "GET", "/api/v1/me/", [None] * 4) for _ in range(workers * 2)]
        load(server, port, warm, 200)
        for n in clients:
            per_client = max(1, total // n)
            floor = load(server, port, [(esp_key, "GET", "/api/v1/me/", [None] * per_client)] * n, 200)
            jobs = [
                (
                    esp_key,
                    "POST",
                    "/api/v1/flex-offers/",
                    offer_bodies(offers_market, assets[i], per_client, 100 + i),
                )
                for i in range(n)
            ]
            offers = load(server, port, jobs, 201)
            print(line(f"{n:>2} clients GET /api/v1/me/ (floor)", floor))
            print(line(f"{n:>2} clients POST /api/v1/flex-offers/", offers))
            print(f"  {'':<34} offer p95 / floor p95 = {offers['p95'] / floor['p95']:.2f} (target <= 2)")
        print("  (b) aggressor FlexRequests against 1,000 resting offers")
        for n in clients:
            market = build_market(1000, f"api-a{n}-{uuid.uuid4().hex[:6]}")
            dso_key = api_key_for(market["dso_id"], market["dso_user_id"])
            connections.close_all()
            per_client = max(1, total // 2 // n)
            jobs = [
                (dso_key, "POST", "/api/v1/flex-requests/", aggressor_bodies(market, per_client, 1000 + i))
                for i in range(n)
            ]
            figures = load(server, port, jobs, 201)
            print(line(f"{n:>2} clients POST aggressors", figures))
    finally:
        stop_gunicorn(server)


def main() -> None:
    print(f"Database: {setup_django()}")
    api_part()


if __name__ == "__main__":
    main()
