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

COLUMNS = ("kind", "run", "checkpoint", "data", "report_macro_f1", "95% interval", *TOPICS, "coverage",
           "tune_macro_f1 (tuning)", "val_macro_f1", "train_s", "headlines/s")
SLICES = ("gold_file_", "gold_source_")
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
                    f"{m.get('gold_report_coverage', NAN):.1%}", f"{m.get('tune_macro_f1', NAN):.4f}",
                    f"{m.get('val_macro_f1', NAN):.4f}", f"{m.get('train_seconds', NAN):.0f}",
                    f"{m.get('val_headlines_per_second', NAN):.0f}"])
    return out


def slice_rows(runs: list[dict], champion_kind: str | None) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): each gold file's and source's macro-F1 [95% interval] per kind."""
    # a slice is what has an interval: <slice>_kept_macro_f1 is a figure of a slice, not a slice
    names = sorted({k.removesuffix("_macro_f1_lo") for r in runs for k in r["metrics"]
                    if k.startswith(SLICES) and k.endswith("_macro_f1_lo")})
    columns = ["kind", *(n.removeprefix("gold_") for n in names)]
    out = []
    for r in sorted(runs, key=lambda r: -r["metrics"].get("gold_report_macro_f1", 0.0)):
        m = r["metrics"]
        out.append([("*" if r["kind"] == champion_kind else "") + r["kind"],
                    *(f"{m.get(f'{n}_macro_f1', NAN):.3f} [{m.get(f'{n}_macro_f1_lo', NAN):.2f}-"
                      f"{m.get(f'{n}_macro_f1_hi', NAN):.2f}]" for n in names)])
    return columns, out


def format_table(table: list[list[str]], columns: tuple[str, ...] | list[str] = COLUMNS) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(columns, *table, strict=True)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) for row in [columns, *table])


def main() -> None:
    from pipeline import tracking

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="headline-topics")
    args = parser.parse_args()
    runs = tracking.latest_runs(args.experiment)
    if not runs:
        raise UserError(f"no finished runs in experiment {args.experiment!r}: run `make train` first")
    champion = next((v for v in tracking.registered_versions() if v["champion"]), None)
    kind = champion["tags"].get("model_kind") if champion else None
    print(format_table(rows(runs, kind)))
    columns, table = slice_rows(runs, kind)
    if len(columns) > 1:
        print("\nper gold file and source (macro-F1 over the topics each has >= 20 items of, 95% interval):")
        print(format_table(table, columns))


if __name__ == "__main__":
    run(main)
