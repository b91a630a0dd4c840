"""Does the embedded Prefect server hold its own load? (issue #10, item 5)

    python -m benchmarks.prefect_load [--runs 60] [--workers 12] [--loggers 4]

With several projects, a window and the demos running at once on 2 cores, resumes pressed in
the Prefect UI answered 503 "database is locked". This drives what that load is made of —
resumes of paused runs, state changes (pause, complete), and runs shipping their logs —
through Prefect's HTTP API, with the credential, as the UI and the runners do:

- quiet: one request at a time (the baseline: what a person pressing Resume alone sees);
- loaded: ``--workers`` threads doing the same at once while ``--loggers`` threads post log
  batches without pause.

Both against the embedded stack as ``siteflow up`` starts it (``siteflow.prefect_server``)
and against bare ``prefect server start`` (Prefect's own SQLite settings), each under a
temporary home, so the run shows what siteflow's settings change. Prints, for each server,
errors by status (503 = "database is locked"), p50/p95 latency and the loaded/quiet ratios.
Not part of the test suite; no thresholds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r = send()
        except httpx.HTTPError as exc:
            with self.lock:
                self.errors[type(exc).__name__] += 1
            return None
        with self.lock:
            self.latencies.append(time.perf_counter() - t0)
            if r.status_code >= 400:
                self.errors[str(r.status_code)] += 1
        return r

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(v for k, v in self.errors.items() if not k.isdigit())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def state(kind: str) -> dict[str, object]:
    return {"state": {"type": kind, "name": kind.title()}, "force": True}


def cycle(http: httpx.Client, api: str, run_id: str, tally: Tally) -> None:
    """One gate's life on Prefect's side: paused, resumed (as the UI's button), completed."""
    tally.call(lambda: http.post(f"{api}/flow_runs/{run_id}/set_state", json=state("PAUSED")))
    tally.call(lambda: http.post(f"{api}/flow_runs/{run_id}/resume", json={}))
    tally.call(lambda: http.post(f"{api}/flow_runs/{run_id}/set_state", json=state("COMPLETED")))


def make_runs(http: httpx.Client, api: str, n: int) -> list[str]:
    flow = ""
    while not flow:
        r = http.post(f"{api}/flows/", json={"name": "load-probe"})
        flow = r.json()["id"] if r.status_code < 300 else ""
    ids: list[str] = []
    while len(ids) < n:  # setup, not measured: a refused create (bare Prefect's 503) is tried again
        try:
            r = http.post(f"{api}/flow_runs/", json={"flow_id": flow, "state": {"type": "RUNNING"}})
        except httpx.HTTPError:
            continue
        if r.status_code < 300:
            ids.append(r.json()["id"])
    return ids


def ship_logs(http: httpx.Client, api: str, run_ids: list[str], stop: threading.Event, tally: Tally) -> None:
    """What running flows do every half second: post a batch of log lines."""
    i = 0
    while not stop.is_set():
        run = run_ids[i % len(run_ids)]
        now = datetime.now(UTC).isoformat()
        batch = [
            {"name": "load", "level": 20, "message": f"line {i}-{k}", "timestamp": now, "flow_run_id": run}
            for k in range(20)
        ]
        tally.call(lambda batch=batch: http.post(f"{api}/logs/", json=batch))  # type: ignore[misc]
        i += 1


def drive(api: str, auth: tuple[str, str], runs: int, workers: int, loggers: int) -> tuple[Tally, Tally]:
    limits = httpx.Limits(max_connections=workers + loggers + 4)
    with httpx.Client(auth=auth, timeout=90, limits=limits) as http:
        quiet_runs = make_runs(http, api, runs)
        loaded_runs = make_runs(http, api, runs)
        quiet = Tally()
        for run_id in quiet_runs:
            cycle(http, api, run_id, quiet)
        loaded, background = Tally(), Tally()
        stop = threading.Event()
        shippers = [
            threading.Thread(target=ship_logs, args=(http, api, quiet_runs, stop, background))
            for _ in range(loggers)
        ]
        for t in shippers:
            t.start()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda run_id: cycle(http, api, run_id, loaded), loaded_runs))
        stop.set()
        for t in shippers:
            t.join()
        loaded.errors.update({f"logs {k}": v for k, v in background.errors.items()})
    return quiet, loaded


def wait_healthy(api: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server not healthy")


def serve(variant: str, home: Path, port: int) -> tuple[subprocess.Popen[bytes], str, tuple[str, str]]:
    """Start one Prefect server under `home`: siteflow's (as the stack starts it) or bare."""
    from siteflow.prefect_credential import prefect_auth_string
    from siteflow.prefect_env import prefect_environment
    from siteflow.settings import Settings

    settings = Settings(home=home, prefect_port=port)
    env = dict(os.environ) | prefect_environment(settings) | {"PYTHONPATH": str(ROOT)}
    if variant == "siteflow":
        cmd = [sys.executable, "-m", "siteflow.prefect_server", "--host", "127.0.0.1", "--port", str(port)]
    else:
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    log = open(home / f"{variant}.log", "ab")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = settings.resolved_prefect_api_url
    wait_healthy(api, proc)
    auth = prefect_auth_string(settings)
    assert auth is not None
    user, _, password = auth.partition(":")
    return proc, api, (user, password)


def report(variant: str, quiet: Tally, loaded: Tally) -> None:
    q50, q95 = pct(quiet.latencies, 0.5), pct(quiet.latencies, 0.95)
    l50, l95 = pct(loaded.latencies, 0.5), pct(loaded.latencies, 0.95)
    print(f"\n{variant}:")
    print(
        f"  quiet : {quiet.requests} requests, errors {dict(quiet.errors) or 'none'}, "
        f"p50 {q50 * 1000:.0f} ms, p95 {q95 * 1000:.0f} ms"
    )
    print(
        f"  loaded: {loaded.requests} requests, errors {dict(loaded.errors) or 'none'}, "
        f"p50 {l50 * 1000:.0f} ms, p95 {l95 * 1000:.0f} ms"
    )
    failed = sum(v for k, v in loaded.errors.items() if not k.startswith("logs"))
    print(
        f"  loaded/quiet: p50 x{l50 / q50:.1f}, p95 x{l95 / q95:.1f}; "
        f"resume/state requests failed under load: {failed} of {len(loaded.latencies)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=60, help="runs cycled (pause, resume, complete) per phase"
    )
    parser.add_argument("--workers", type=int, default=12, help="concurrent cycles under load")
    parser.add_argument("--loggers", type=int, default=4, help="threads posting log batches under load")
    parser.add_argument("--port", type=int, default=4471)
    parser.add_argument("--variants", default="siteflow,bare", help="siteflow, bare or both")
    args = parser.parse_args()
    for k in [k for k in os.environ if k.startswith("PREFECT_")]:
        del os.environ[k]
    print(
        f"{args.runs} runs per phase, {args.workers} workers, {args.loggers} log shippers, "
        f"{os.cpu_count()} cores"
    )
    for offset, variant in enumerate(args.variants.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"sf-load-{variant}-") as tmp:
            proc, api, auth = serve(variant, Path(tmp), args.port + offset)
            try:
                quiet, loaded = drive(api, auth, args.runs, args.workers, args.loggers)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            report(variant, quiet, loaded)


if __name__ == "__main__":
    main()
