"""Compare: the latest run of each model kind side by side, on the same metrics.

    python -m pipeline.compare [--experiment headline-topics]     (make compare)

`*` marks the champion's kind. The gold *tune* part's macro-F1 is labelled (tuning): choices were made
by looking at it, so it is not an honest estimate; the *report* part's is.
"""

import argparse

from pipeline import TOPICS
from pipeline.cli import UserError, run

COLUMNS = ("kind", "run", "checkpoint", "data", "report_macro_f1", "95% interval", *TOPICS, "coverage",
           "tune_macro_f1 (tuning)", "val_macro_f1", "train_s", "headlines/s")
NAN = float("nan")


def rows(runs: list[dict], champion_kind: str | None) -> list[list[str]]:
    out = []
    for r in sorted(runs, key=lambda r: -r["metrics"].get("gold_report_macro_f1", 0.0)):
        m = r["metrics"]
        out.append([("*" if r["kind"] == champion_kind else "") + r["kind"], r["run_name"],
                    r["tags"].get("checkpoint", "none")[:28], r["tags"].get("train_data_sha256", "")[:10],
                    f"{m.get('gold_report_macro_f1', NAN):.4f}",
                    f"{m.get('gold_report_macro_f1_lo', NAN):.3f}-{m.get('gold_report_macro_f1_hi', NAN):.3f}",
                    *(f"{m.get(f'gold_report_f1_{t}', NAN):.3f}" for t in TOPICS),
                    f"{m.get('gold_report_coverage', NAN):.1%}", f"{m.get('gold_tune_macro_f1', NAN):.4f}",
                    f"{m.get('val_macro_f1', NAN):.4f}", f"{m.get('train_seconds', NAN):.0f}",
                    f"{m.get('val_headlines_per_second', NAN):.0f}"])
    return out


def format_table(table: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(COLUMNS, *table, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) for row in [COLUMNS, *table])


def main() -> None:
    from pipeline import tracking

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="headline-topics")
    args = parser.parse_args()
    runs = tracking.latest_runs(args.experiment)
    if not runs:
        raise UserError(f"no finished runs in experiment {args.experiment!r}: run `make train` first")
    champion = next((v for v in tracking.registered_versions() if v["champion"]), None)
    print(format_table(rows(runs, champion["tags"].get("model_kind") if champion else None)))


if __name__ == "__main__":
    run(main)
