"""Benchmark the served model and Spark batch scoring: headlines/s, whole requests and whole jobs.

    python bench/serve_bench.py [--model-dir models/current] [--lines 1000000] [--requests 400] [--clients 2]
    python bench/serve_bench.py --memory [--clients 4] [--rounds 5]   (worker memory under the largest request)
    make bench-serve

1. Logs MODEL_DIR as a pyfunc with this checkout's wrapper into a temporary MLflow store (the way `make train`
   registers it), crowns it, and starts `mlflow models serve` on it, bound to 127.0.0.1 on a free port.
2. A bounded closed-loop load generator (CLIENTS connections, REQUESTS requests per size, 127.0.0.1 only) sends
   1-row and 100-row `inputs` requests: headlines/s and p50/p99 latency per request. The server is then stopped.
3. LINES headlines (data/interim/headlines.csv, cycled) go through `python -m pipeline.score` on local[2] and
   through `python -m pipeline.predict --input` (whole processes, start-up included): headlines/s and the ratio.
With --memory, only: the server's peak resident memory while CLIENTS send the largest request it takes (MAX_ROWS
rows, close to MAX_BYTES) ROUNDS times each, and how it answers a 200,000-row request (the issue's 23 MB one).
"""

from __future__ import annotations

import argparse
import csv
import http.client
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def headlines(n: int) -> list[str]:
    path = REPO / "data" / "interim" / "headlines.csv"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `make train` (or `make ingest`) first")
    with path.open(encoding="utf-8", newline="") as fh:
        titles = [row["title"] for row in csv.DictReader(fh)]
    return list(itertools.islice(itertools.cycle(titles), n))


def register(model_dir: Path, store: Path) -> str:
    """Log and register MODEL_DIR in a temporary store as `make train` does; returns the tracking URI."""
    import mlflow

    from pipeline import registry, serving
    from pipeline.models.base import read_meta

    uri = f"sqlite:///{store}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(store / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        model_uri = serving.log_pyfunc(model_dir, read_meta(model_dir)["kind"])
    version = mlflow.register_model(model_uri, registry.MODEL_NAME)
    registry.set_champion(version.version)
    return uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(uri: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    """`make serve` on the temporary store: pipeline.serve (MLflow's scoring app behind the request guard)."""
    from pipeline.names import CHAMPION_URI

    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.serve", "--model", CHAMPION_URI,
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise SystemExit("server did not answer /ping in 180 s")


def stop_server(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=20)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def load(port: int, titles: list[str], rows: int, requests: int, clients: int) -> dict[str, float]:
    """Closed loop: CLIENTS keep-alive connections share REQUESTS requests of ROWS headlines each."""
    bodies = [json.dumps({"inputs": titles[i * rows:(i + 1) * rows]}).encode() for i in range(requests)]
    latencies: list[float] = []
    todo = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            start = time.perf_counter()
            conn.request("POST", "/invocations", bodies[i], {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status}")
            with lock:
                latencies.append(time.perf_counter() - start)

    for _ in range(3):  # warm-up
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request("POST", "/invocations", bodies[0], {"Content-Type": "application/json"})
        conn.getresponse().read()
    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"headlines/s": rows * requests / elapsed, "p50 ms": 1000 * statistics.median(latencies),
            "p99 ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def group_rss(proc: subprocess.Popen) -> int:
    """The largest resident set among the server's processes (with --workers 1 uvicorn answers in the first)."""
    import psutil

    parent = psutil.Process(proc.pid)
    sizes = []
    for p in [parent, *parent.children(recursive=True)]:
        try:
            sizes.append(p.memory_info().rss)
        except psutil.NoSuchProcess:
            pass
    return max(sizes)


def memory(proc: subprocess.Popen, port: int, titles: list[str], clients: int, rounds: int) -> None:
    """Worker memory under the largest request the server takes (MAX_ROWS rows, padded towards MAX_BYTES),
    CLIENTS at once for ROUNDS each, sampled every 20 ms; then a 200,000-row request, which must be refused."""
    from pipeline.serve import MAX_BYTES, MAX_ROWS

    width = max(10, min(500, (MAX_BYTES // MAX_ROWS - 12) // 6))  # \uXXXX escapes: 6 bytes a character
    padded = [(t + " " + t * 10)[:width] for t in itertools.islice(itertools.cycle(titles), MAX_ROWS)]
    body = json.dumps({"inputs": padded}).encode()
    assert len(body) <= MAX_BYTES, len(body)
    peak, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set() and proc.poll() is None:
            peak[0] = max(peak[0], group_rss(proc))
            time.sleep(0.02)

    def post(data: bytes) -> tuple[int, float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        start = time.perf_counter()
        conn.request("POST", "/invocations", data, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start

    assert post(json.dumps({"inputs": titles[:100]}).encode())[0] == 200
    idle = group_rss(proc)
    sampler = threading.Thread(target=sample)
    sampler.start()
    statuses: list[int] = []
    seconds: list[float] = []

    def client() -> None:
        for _ in range(rounds):
            status, took = post(body)
            statuses.append(status)
            seconds.append(took)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(1)
    after = group_rss(proc)
    huge = json.dumps({"inputs": list(itertools.islice(itertools.cycle(titles), 200_000))}).encode()
    refused, took = post(huge)
    stop.set()
    sampler.join()
    mib = 1 << 20
    print(f"largest allowed request: {MAX_ROWS:,} rows of {width} characters, {len(body) / mib:.1f} MiB; "
          f"{clients} clients x {rounds}: HTTP {sorted(set(statuses))}, median {statistics.median(seconds):.2f} s")
    print(f"worker RSS: idle {idle / mib:.0f} MiB, peak {peak[0] / mib:.0f} MiB, after {after / mib:.0f} MiB")
    print(f"200,000 rows ({len(huge) / mib:.0f} MiB) in one request: HTTP {refused} in {took:.2f} s; "
          f"RSS after {group_rss(proc) / mib:.0f} MiB")


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="model directory (default: <models_dir>/current, models_dir as "
                        "configs/train.yaml sets it)")
    parser.add_argument("--lines", type=int, default=1_000_000, help="headlines for Spark vs predict --input")
    parser.add_argument("--requests", type=int, default=400, help="requests per request size")
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the server")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--memory", action="store_true",
                        help="only measure worker memory under the largest allowed request (no throughput, no Spark)")
    parser.add_argument("--rounds", type=int, default=5, help="--memory: largest requests per client")
    args = parser.parse_args()
    from pipeline.store import default_model

    model_dir = Path(args.model_dir or default_model()).resolve()
    if args.memory:
        titles = headlines(200_000)
        with tempfile.TemporaryDirectory() as tmp:
            store = Path(tmp)
            proc = start_server(register(model_dir, store), free_port(), args.workers, store / "server.log")
            try:
                memory(proc, int(proc.args[proc.args.index("--port") + 1]), titles, args.clients, args.rounds)
            finally:
                stop_server(proc)
        return
    titles = headlines(max(args.lines, 100 * args.requests))
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        uri = register(model_dir, store)
        proc = start_server(uri, free_port(), args.workers, store / "server.log")
        try:
            port = int(proc.args[proc.args.index("--port") + 1])
            for rows in (1, 100):
                r = load(port, titles, rows, args.requests, args.clients)
                print(f"served, {rows:>3} row(s)/request: {r['headlines/s']:8,.0f} headlines/s  "
                      f"p50 {r['p50 ms']:7.1f} ms  p99 {r['p99 ms']:7.1f} ms  "
                      f"({args.requests} requests, {args.clients} clients, {args.workers} worker(s))", flush=True)
        finally:
            stop_server(proc)
        source = store / "headlines.txt"
        source.write_text("".join(t.replace("\n", " ") + "\n" for t in titles[:args.lines]), encoding="utf-8")
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        spark = timed([sys.executable, "-m", "pipeline.score", str(source), str(store / "out"), "--master",
                       args.master], env)
        import pyarrow.parquet as pq

        written = pq.ParquetDataset(str(store / "out")).read(columns=["error"]).num_rows
        cli = timed([sys.executable, "-m", "pipeline.predict", "--input", str(source), "--model", str(model_dir)], env)
    print(f"spark ({args.master}), {args.lines:,} lines: {args.lines / spark:8,.0f} headlines/s ({spark:.0f} s, "
          f"{written:,} rows written)")
    print(f"predict --input,  {args.lines:,} lines: {args.lines / cli:8,.0f} headlines/s ({cli:.0f} s)")
    print(f"spark / predict --input: {cli / spark:.2f}x")


if __name__ == "__main__":
    main()
