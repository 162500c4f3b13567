"""Benchmark prediction, side by side for each saved model: what `python -m pipeline.predict` costs.

    python bench/predict_bench.py [--models models/tfidf models/kobert] [--lines 100000] [--out PATH]  (make bench)

Per model: one headline cold (whole process, median of 5), `--input` on LINES lines (whole process,
start-up included), in-process headlines/s of the loaded model, and peak memory (RSS) of the --input run.
Also the training-time path in process, as a ratio: torch (from the directory's hf/ weights) for the
transformer; for TF-IDF the scikit-learn pipeline, refit with the saved config on data/processed/labeled.csv
(the saved model keeps only arrays). Input lines: the ingested headlines (data/interim/headlines.csv), cycled.
One line per model on stdout; the same figures, with the date, the machine's cores and each model's MLflow run,
go to bench/results/predict.json (--out; not committed), which `make card` puts in MODEL_CARD.md.
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TITLE = "[속보] 경찰, '은평 일본도 살인' 가해자 구속영장 신청"
IN_PROCESS = 5000
RESULTS = REPO / "bench" / "results" / "predict.json"


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def in_process(model_dir: str, titles: list[str]) -> dict[str, float]:
    """Headlines/s of predict_proba once loaded (the numpy or ONNX path predict uses), and of the torch
    network where there is one."""
    sys.path.insert(0, str(REPO))
    from pipeline.models import load_model

    model = load_model(model_dir)
    model.predict_proba(titles[:64])  # warm-up: Kiwi's first call, ONNX Runtime's first run
    start = time.perf_counter()
    model.predict_proba(titles)
    rates = {"in-process /s": len(titles) / (time.perf_counter() - start)}
    if (Path(model_dir) / "hf").is_dir():
        from pipeline.models.kobert import KobertModel

        trained = KobertModel.load(Path(model_dir))
        texts = trained.texts(titles)
        trained.torch_proba(texts[:64])
        start = time.perf_counter()
        trained.torch_proba(texts)
        rates["torch in-process /s"] = len(titles) / (time.perf_counter() - start)
    if model.kind == "tfidf":
        rates["scikit-learn in-process /s"] = sklearn_rate(model, titles)
    return rates


def sklearn_rate(model, titles: list[str]) -> float:
    from pipeline.models.tfidf import TfidfModel

    with (REPO / "data" / "processed" / "labeled.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"]]
    refit = TfidfModel(model.config).fit([r["title"] for r in rows], [r["label"] for r in rows])
    texts = refit.texts(titles)
    refit.pipeline.predict_proba(texts[:64])
    start = time.perf_counter()
    refit.pipeline.predict_proba(texts)
    return len(titles) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", help="model directories (default: <models_dir>/tfidf and "
                        "<models_dir>/kobert, models_dir as configs/train.yaml sets it)")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results for `make card`")
    args = parser.parse_args()
    if args.models is None:
        sys.path.insert(0, str(REPO))
        from pipeline.store import configured_models_dir, kind_dir

        args.models = [str(kind_dir(configured_models_dir(), k)) for k in ("tfidf", "kobert")]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with (REPO / "data" / "interim" / "headlines.csv").open(encoding="utf-8") as fh:
        titles = [row["title"] for row in csv.DictReader(fh)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as fh:
        fh.write("\n".join(titles[i % len(titles)] for i in range(args.lines)) + "\n")
    try:
        results = [r for r in (bench(model_dir, fh.name, args.lines, titles) for model_dir in args.models) if r]
    finally:
        Path(fh.name).unlink()
    write_results(args.out, {"measured_at": started, "cores": len(os.sched_getaffinity(0)), "lines": args.lines,
                             "in_process_headlines": IN_PROCESS, "command": "make bench", "models": results})


def write_results(path: Path, results: dict) -> None:
    """The bench's figures as JSON, written atomically (pipeline.io), for pipeline.card."""
    sys.path.insert(0, str(REPO))
    from pipeline.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"-> {path}")


def bench(model_dir: str, lines_file: str, lines: int, titles: list[str]) -> dict | None:
    """One printed line for one saved model, and its figures (None when it is not trained)."""
    if not Path(model_dir).is_dir():
        print(f"{model_dir}: not trained, skipped")
        return None
    predict = [sys.executable, "-m", "pipeline.predict", "--model", model_dir]
    cold = statistics.median(timed([*predict, TITLE])[0] for _ in range(5))
    seconds, peak = timed([*predict, "--input", lines_file])
    rates = in_process(model_dir, titles[:IN_PROCESS])
    line = (f"{Path(model_dir).name:8s} cold {cold:.2f} s | --input {lines:,} lines {lines / seconds:,.0f}/s "
            f"(start-up included, peak RSS {peak:.0f} MiB) | " + " | ".join(f"{k} {v:,.0f}" for k, v in rates.items()))
    for path in ("torch", "scikit-learn"):
        if f"{path} in-process /s" in rates:
            line += f" (predict path {rates['in-process /s'] / rates[f'{path} in-process /s']:.1f}x {path})"
    print(line, flush=True)
    meta = json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8"))
    return {"model": Path(model_dir).name, "kind": meta.get("kind"),
            "mlflow_run_id": meta.get("info", {}).get("mlflow_run_id"), "cold_seconds": cold,
            "input_per_second": lines / seconds, "peak_rss_mib": peak, "in_process": rates}


if __name__ == "__main__":
    main()
