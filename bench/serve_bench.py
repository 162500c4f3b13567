"""Benchmark the served model and Spark batch scoring: headlines/s, whole requests and whole jobs.

    python bench/serve_bench.py [--model-dir models/current] [--lines 1000000] [--requests 400] [--clients 2]
    make bench-serve

1. Logs MODEL_DIR as a pyfunc with this checkout's wrapper into a temporary MLflow store (the way `make train`
   registers it), crowns it, and starts `mlflow models serve` on it, bound to 127.0.0.1 on a free port.
2. A bounded closed-loop load generator (CLIENTS connections, REQUESTS requests per size, 127.0.0.1 only) sends
   1-row and 100-row `inputs` requests: headlines/s and p50/p99 latency per request. The server is then stopped.
3. LINES headlines (data/interim/headlines.csv, cycled) go through `python -m pipeline.score` on local[2] and
   through `python -m pipeline.predict --input` (whole processes, start-up included): headlines/s and the ratio.
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
    import pandas as pd

    from pipeline import tracking
    from pipeline.models.base import read_meta

    uri = f"sqlite:///{store}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(store / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(name="model", python_model=tracking.HeadlineTopicPyfunc(),
                                       artifacts={"model_dir": str(model_dir)},
                                       code_paths=[str(REPO / "pipeline")],
                                       pip_requirements=tracking._pip_requirements(read_meta(model_dir)["kind"]),
                                       signature=tracking.model_signature(),
                                       input_example=pd.DataFrame({"title": tracking.EXAMPLE_TITLES}))
    version = mlflow.register_model(info.model_uri, tracking.MODEL_NAME)
    tracking.set_champion(version.version)
    return uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(uri: str, port: int, workers: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                                 "models:/headline-topic@champion", "--env-manager", "local", "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", str(workers)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
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


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(REPO / "models" / "current"))
    parser.add_argument("--lines", type=int, default=1_000_000, help="headlines for Spark vs predict --input")
    parser.add_argument("--requests", type=int, default=400, help="requests per request size")
    parser.add_argument("--clients", type=int, default=2, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the server")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    model_dir = Path(args.model_dir).resolve()
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
