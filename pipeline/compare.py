"""Compare: the latest run of each model kind side by side, on the same metrics.

    python -m pipeline.compare [--experiment headline-topics]     (make compare)

`*` marks the champion's kind. The first table is on all gold (report only: nothing was chosen on it);
the tune part of the annotations is labelled (tuning): choices were made by looking at it, so it is not an
honest estimate. The second table gives each gold file's and source's macro-F1 with its interval: a mean
over sources hides the one that fails.
"""

import argparse

from pipeline import TOPICS
from pipeline.cli import UserError, run
from pipeline.names import (
    CHECKPOINT,
    EXPERIMENT,
    KIND,
    REPORT,
    SCORE,
    TRAIN_DATA,
    TRAIN_SECONDS,
    TUNE,
    VAL,
    metric,
    slice_label,
    slices_in,
    speed,
)
from pipeline.table import format_table

RUN_COLUMNS = ("kind", "run", "checkpoint", "data", "report macro-F1", "95% interval", *TOPICS, "coverage",
               "tune macro-F1 (tuning)", "val macro-F1", "train s", "headlines/s")
NAN = float("nan")


def by_score(runs: list[dict]) -> list[dict]:
    """Best report macro-F1 first (a run logged before the metric names had sections has none: last)."""
    return sorted(runs, key=lambda r: -r["metrics"].get(SCORE, 0.0))


def rows(runs: list[dict], champion_kind: str | None) -> list[list[str]]:
    out = []
    for r in by_score(runs):
        m = r["metrics"]
        out.append([("*" if r["kind"] == champion_kind else "") + r["kind"], r["run_name"],
                    r["tags"].get(CHECKPOINT, "none")[:28], r["tags"].get(TRAIN_DATA, "")[:10],
                    f"{m.get(SCORE, NAN):.4f}", f"{m.get(f'{SCORE}_lo', NAN):.3f}-{m.get(f'{SCORE}_hi', NAN):.3f}",
                    *(f"{m.get(metric(REPORT, f'f1_{t}'), NAN):.3f}" for t in TOPICS),
                    f"{m.get(metric(REPORT, 'coverage'), NAN):.1%}", f"{m.get(metric(TUNE, 'macro_f1'), NAN):.4f}",
                    f"{m.get(metric(VAL, 'macro_f1'), NAN):.4f}", f"{m.get(TRAIN_SECONDS, NAN):.0f}",
                    f"{m.get(speed(VAL), NAN):.0f}"])
    return out


def slice_rows(runs: list[dict], champion_kind: str | None) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): each gold file's and source's macro-F1 [95% interval] per kind."""
    names = slices_in({k for r in runs for k in r["metrics"]})
    columns = ["kind", *(slice_label(n) for n in names)]
    out = []
    for r in by_score(runs):
        m = r["metrics"]
        out.append([("*" if r["kind"] == champion_kind else "") + r["kind"],
                    *(f"{m.get(metric(n, 'macro_f1'), NAN):.3f} [{m.get(metric(n, 'macro_f1_lo'), NAN):.2f}-"
                      f"{m.get(metric(n, 'macro_f1_hi'), NAN):.2f}]" for n in names)])
    return columns, out


def main() -> None:
    from pipeline import registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default=EXPERIMENT)
    args = parser.parse_args()
    runs = registry.latest_runs(args.experiment)
    if not runs:
        raise UserError(f"no finished runs in experiment {args.experiment!r}: run `make train` first")
    champion = next((v for v in registry.registered_versions() if v["champion"]), None)
    kind = champion["tags"].get(KIND) if champion else None
    print(format_table(RUN_COLUMNS, rows(runs, kind)))
    columns, table = slice_rows(runs, kind)
    if len(columns) > 1:
        print("\nper gold file and source (macro-F1 over the topics each has >= 20 items of, 95% interval):")
        print(format_table(columns, table))


if __name__ == "__main__":
    run(main)
