"""Benchmark prediction: wall time of one `python -m pipeline.predict "..."` (median of 5) and
headlines/second of `--input` on 10,000 lines.

    python bench/predict_bench.py [--model models/current] [--lines 10000]

Input lines are the ingested headlines (data/interim/headlines.csv, gold titles excluded by the
labeling stage are not needed here: prediction does not train), cycled to the requested count.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TITLE = "[속보] 경찰, '은평 일본도 살인' 가해자 구속영장 신청"


def timed(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models" / "current"))
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    predict = [sys.executable, "-m", "pipeline.predict", "--model", args.model]

    singles = [timed([*predict, TITLE]) for _ in range(5)]
    print(f"single headline: median {statistics.median(singles):.2f} s over 5 runs "
          f"(min {min(singles):.2f}, max {max(singles):.2f})")

    with (REPO / "data" / "interim" / "headlines.csv").open(encoding="utf-8") as fh:
        titles = [row["title"] for row in csv.DictReader(fh)]
    lines = [titles[i % len(titles)] for i in range(args.lines)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as fh:
        fh.write("\n".join(lines) + "\n")
    seconds = timed([*predict, "--input", fh.name], stderr=subprocess.DEVNULL)
    Path(fh.name).unlink()
    print(f"--input {args.lines} lines: {seconds:.2f} s wall (process start and model load included) "
          f"= {args.lines / seconds:.0f} headlines/s")


if __name__ == "__main__":
    main()
