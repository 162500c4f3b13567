"""Promote: crown the champion model by evidence (dev-gold macro-F1), not by whichever trained last.

    python -m pipeline.promote [--force] [--dry-run]

Reads every registered version of headline-topic-<kind> (their gold metrics are tags set at
training), proposes the best by gold macro-F1 (ties: the faster model, then the smaller one), shows
it beside the current champion, and, only when it is better (or with --force), moves the MLflow
alias `champion` to it and makes its exported model the default: models/champion (a copy of the
version's model directory) with models/current pointing at it. Prediction then never needs MLflow.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from pipeline import REPO_ROOT, TOPICS
from pipeline.cli import UserError, run
from pipeline.io import point_link, replace_dir

MODELS_DIR = REPO_ROOT / "models"


def _f(tags: dict, key: str) -> float:
    try:
        return float(tags.get(key, "nan"))
    except ValueError:
        return float("nan")


def rank_key(version: dict) -> tuple:
    """Best first: gold macro-F1 (4 decimals, so noise-level differences tie), then speed, then size."""
    import math

    tags = version["tags"]

    def number(key: str, missing: float) -> float:
        value = _f(tags, key)
        return missing if math.isnan(value) else value

    return (round(number("gold_macro_f1", -1.0), 4), number("gold_headlines_per_second", 0.0),
            -number("model_bytes", math.inf))


def propose(versions: list[dict]) -> tuple[dict | None, dict | None]:
    """(best candidate, current champion) among registered versions."""
    scored = [v for v in versions if "gold_macro_f1" in v["tags"]]
    best = max(scored, key=rank_key) if scored else None
    champion = next((v for v in versions if v["champion"]), None)
    return best, champion


def describe(version: dict | None) -> list[str]:
    if version is None:
        return ["(none)"] + [""] * (len(TOPICS) + 3)
    tags = version["tags"]
    return [f"{version['name'].removeprefix('headline-topic-')} v{version['version']}",
            f"{_f(tags, 'gold_macro_f1'):.4f}", *(f"{_f(tags, f'gold_f1_{t}'):.3f}" for t in TOPICS),
            f"{_f(tags, 'gold_headlines_per_second'):.0f}", f"{_f(tags, 'model_bytes') / 1e6:.1f}"]


def comparison_table(candidate: dict | None, champion: dict | None) -> str:
    rows = ["model", "gold macro-F1", *(f"gold F1 {t}" for t in TOPICS), "headlines/s (gold)", "size MB"]
    left, right = describe(candidate), describe(champion)
    lines = [f"{'':<20} {'candidate':>18} {'champion':>18}"]
    lines += [f"{name:<20} {a:>18} {b:>18}" for name, a, b in zip(rows, left, right, strict=True)]
    return "\n".join(lines)


def install_default(run_id: str, kind: str, models_dir: Path = MODELS_DIR) -> Path:
    """Copy the version's model directory to models/champion (atomically) and point models/current at it."""
    from pipeline import tracking
    from pipeline.models import read_meta

    staging = models_dir / ".staging-champion"
    shutil.rmtree(staging, ignore_errors=True)
    local = models_dir / kind
    try:
        same = local.is_dir() and read_meta(local).get("info", {}).get("mlflow_run_id") == run_id
    except UserError:
        same = False
    if same:
        shutil.copytree(local, staging)
    else:
        shutil.copytree(tracking.download_model_dir(run_id, models_dir / ".download"), staging)
        shutil.rmtree(models_dir / ".download", ignore_errors=True)
    replace_dir(staging, models_dir / "champion")
    point_link(models_dir / "current", "champion")
    return models_dir / "champion"


def promote(force: bool = False, dry_run: bool = False, models_dir: Path = MODELS_DIR) -> str:
    from pipeline import tracking

    candidate, champion = propose(tracking.registered_versions())
    if candidate is None:
        raise UserError("no registered model with gold metrics yet: run `make train` first")
    report = comparison_table(candidate, champion)
    same = champion is not None and (candidate["name"], candidate["version"]) == (champion["name"], champion["version"])
    better = champion is None or rank_key(candidate) > rank_key(champion)
    if same and not force:
        return f"{report}\nthe candidate is already the champion"
    if not (better or force):
        return f"{report}\nkept the champion: the candidate is not better (use --force to promote anyway)"
    if dry_run:
        return f"{report}\nwould promote {candidate['name']} v{candidate['version']} (dry run)"
    tracking.set_champion(candidate["name"], candidate["version"])
    kind = candidate["tags"].get("model_kind") or candidate["name"].removeprefix("headline-topic-")
    path = install_default(candidate["run_id"], kind, models_dir)
    return f"{report}\npromoted {candidate['name']} v{candidate['version']} to champion; default model -> {path}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="promote the best candidate even if not better")
    parser.add_argument("--dry-run", action="store_true", help="show the comparison, change nothing")
    args = parser.parse_args()
    print(promote(args.force, args.dry_run))


if __name__ == "__main__":
    run(main)
