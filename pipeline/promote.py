"""Promote: crown the champion by evidence on all gold (every file), not by whichever trained last.

    python -m pipeline.promote [--force] [--dry-run] [--config configs/train.yaml]

Every registered version (tag model_kind) carries its macro-F1 and answers (one letter per item) on all
gold, and each item's gold source. A gain counts only beyond the noise: a paired bootstrap over the same
items (95% interval of the macro-F1 difference) must exclude zero; a tie goes to the faster model, then
the smaller. The candidate is the best version, or the fastest one tied with it; it replaces the champion
only if better, or tied and faster, and worse beyond the noise on no gold source (paired on that source's
items, over the topics it has enough of) (--force: always). The alias `champion` then moves to it and its model
directory becomes <models_dir>/champion, with <models_dir>/current pointing there (prediction never needs MLflow;
models_dir is the --config's, as for train: pipeline.store).
A version without answers on the same items is never the candidate, and as champion it is replaced.
"""

import argparse
import math
import tempfile
from pathlib import Path

from pipeline import TOPICS
from pipeline.cli import UserError, run
from pipeline.config import CONFIG_DIR
from pipeline.gold import Interval, decode, decode_sources, paired_difference, scored_topics
from pipeline.names import (
    HEADLINES_PER_SECOND,
    KIND,
    MODEL_BYTES,
    REPORT,
    REPORT_ANSWERS,
    REPORT_ITEMS,
    REPORT_TRUTH,
    SCORE,
    metric,
    slice_label,
    slices_in,
)
from pipeline.store import configured_models_dir, install_champion, kind_dir, models_lock
from pipeline.table import format_table


def _f(tags: dict, key: str, missing: float = float("nan")) -> float:
    try:
        value = float(tags.get(key, "nan"))
    except ValueError:
        return missing
    return missing if math.isnan(value) else value


def speed_key(version: dict) -> tuple[float, float]:
    """Faster first, then smaller."""
    tags = version["tags"]
    return _f(tags, HEADLINES_PER_SECOND, 0.0), -_f(tags, MODEL_BYTES, math.inf)


def comparable(version: dict) -> bool:
    """Scored, with its answers on all gold: a version tagged before the metric names had sections (its tags
    say gold_report_*) is not, like one without answers."""
    tags = version["tags"]
    return SCORE in tags and all(k in tags for k in (REPORT_ITEMS, REPORT_TRUTH, REPORT_ANSWERS))


def paired(a: dict, b: dict) -> Interval | None:
    """Paired bootstrap of b's report macro-F1 minus a's on the same items (b better beyond noise when lo > 0);
    None when they were not scored on the same items."""
    same = (REPORT_ITEMS, REPORT_TRUTH)  # the same items with the same gold labels
    if not (comparable(a) and comparable(b)) or any(a["tags"][k] != b["tags"][k] for k in same):
        return None
    truth = decode(a["tags"][REPORT_TRUTH])
    return paired_difference(truth, decode(a["tags"][REPORT_ANSWERS]), decode(b["tags"][REPORT_ANSWERS]))


def worse_sources(champion: dict, candidate: dict) -> list[str]:
    """Gold sources on which the candidate is worse than the champion beyond the noise, each with its paired
    interval: a gain on the whole must not hide an outlet that fails."""
    sources = decode_sources(candidate["tags"])
    if sources is None or paired(champion, candidate) is None or decode_sources(champion["tags"]) != sources:
        return []
    truth = decode(champion["tags"][REPORT_TRUTH])
    old, new = decode(champion["tags"][REPORT_ANSWERS]), decode(candidate["tags"][REPORT_ANSWERS])
    worse = []
    for source in dict.fromkeys(sources):
        idx = [i for i, s in enumerate(sources) if s == source]
        t = [truth[i] for i in idx]
        verdict = paired_difference(t, [old[i] for i in idx], [new[i] for i in idx], scored_topics(t))
        if verdict.hi < 0:
            worse.append(f"{source} {verdict}")
    return worse


def best_scored(versions: list[dict]) -> dict | None:
    """The version with the best report macro-F1 (point estimate; ties: faster, smaller)."""
    scored = [v for v in versions if comparable(v)]
    return max(scored, key=lambda v: (_f(v["tags"], SCORE, -1.0), speed_key(v))) if scored else None


def pick_candidate(versions: list[dict]) -> tuple[dict | None, dict | None]:
    """(candidate, current champion): the best by report macro-F1, or the fastest version tied with it."""
    champion = next((v for v in versions if v["champion"]), None)
    best = best_scored(versions)
    if best is None:
        return None, champion
    scored = [v for v in versions if comparable(v)]
    tied = [v for v in scored if v is best or ((verdict := paired(best, v)) is not None and verdict.hi >= 0)]
    return max(tied, key=speed_key), champion


def should_replace(candidate: dict, champion: dict | None) -> tuple[bool, str]:
    """Whether the candidate should take the champion's place, and why."""
    if champion is None:
        return True, "no champion yet"
    verdict = paired(champion, candidate)
    if verdict is None:
        return True, "the champion has no answers on the same gold items to pair with (scored on other gold)"
    if verdict.hi < 0:
        return False, f"worse: {verdict}"
    if verdict.lo <= 0 and speed_key(candidate) <= speed_key(champion):
        return False, f"tied within noise ({verdict}), not faster"
    if worse := worse_sources(champion, candidate):
        return False, f"{'better' if verdict.lo > 0 else 'tied'} on all gold ({verdict}) but worse beyond noise on " \
                      + "; ".join(worse)
    if verdict.lo > 0:
        return True, f"better beyond noise: {verdict}"
    return True, f"tied within noise ({verdict}) and faster"


def _name(version: dict) -> str:
    return f"{version['tags'].get(KIND, '?')} v{version['version']}"


def describe(version: dict | None) -> list[str]:
    if version is None:
        return ["(none)"] + [""] * (len(TOPICS) + 4)
    tags = version["tags"]
    return [_name(version), f"{_f(tags, SCORE):.4f}", f"{_f(tags, SCORE + '_lo'):.3f}-{_f(tags, SCORE + '_hi'):.3f}",
            *(f"{_f(tags, metric(REPORT, f'f1_{t}')):.3f}" for t in TOPICS),
            f"{_f(tags, HEADLINES_PER_SECOND):.0f}", f"{_f(tags, MODEL_BYTES) / 1e6:.1f}"]


def comparison_table(candidate: dict | None, champion: dict | None) -> str:
    rows = ["model", "report macro-F1", "  95% interval", *(f"report F1 {t}" for t in TOPICS), "headlines/s",
            "size MB"]
    left, right = describe(candidate), describe(champion)
    # every gold file and source either version was scored on: a mean over sources hides the one that fails
    for name in slices_in({k for v in (candidate, champion) if v for k in v["tags"]}):
        rows.append(slice_label(name))
        left.append(_slice(candidate, name))
        right.append(_slice(champion, name))
    return format_table(("", "candidate", "champion"), list(zip(rows, left, right, strict=True)),
                        right=(False, True, True), gap=" ", min_widths=(20, 24, 24))


def _slice(version: dict | None, name: str) -> str:
    """macro-F1 [interval] of one gold slice, from a version's tags."""
    name = metric(name, "macro_f1")
    if version is None or name not in version["tags"]:
        return ""
    tags = version["tags"]
    lo, hi = _f(tags, f"{name}_lo"), _f(tags, f"{name}_hi")
    return f"{_f(tags, name):.3f} [{lo:.2f}-{hi:.2f}]"


def install_default(run_id: str, kind: str, models_dir: Path) -> Path:
    """Install the version's model directory as <models_dir>/champion, with <models_dir>/current pointing at it
    (pipeline.store.install_champion): <models_dir>/<kind> when it is that run's export, else the run's logged copy."""
    from pipeline import registry
    from pipeline.models.base import read_meta

    local = kind_dir(models_dir, kind)
    try:
        same = local.is_dir() and read_meta(local).get("info", {}).get("mlflow_run_id") == run_id
    except UserError:
        same = False
    with tempfile.TemporaryDirectory(dir=models_dir) as download:
        return install_champion(models_dir, local if same else registry.download_model_dir(run_id, Path(download)))


def promote(force: bool = False, dry_run: bool = False, models_dir: Path | None = None) -> str:
    """Crown the candidate if it earns it (see the module docstring); models_dir: configs/train.yaml's by default."""
    from pipeline import registry

    models_dir = configured_models_dir() if models_dir is None else models_dir

    versions = registry.registered_versions()
    candidate, champion = pick_candidate(versions)
    if candidate is None:
        raise UserError("no registered model with gold report metrics yet: run `make train` first")
    report = comparison_table(candidate, champion)
    best = best_scored(versions)
    if best is not candidate:  # say why the point-estimate leader is not the candidate
        report += (f"\nbest report macro-F1: {_name(best)} {_f(best['tags'], SCORE):.4f}; {_name(candidate)} is tied "
                   f"with it within noise ({paired(best, candidate)}) and faster")
    same = champion is not None and candidate["version"] == champion["version"]
    if same and not force:
        return f"{report}\nthe candidate is already the champion"
    replace, why = should_replace(candidate, champion)
    if not (replace or force):
        return f"{report}\nkept the champion: {why} (use --force to promote anyway)"
    if dry_run:
        return f"{report}\nwould promote {_name(candidate)}: {why} (dry run)"
    with models_lock(models_dir):
        registry.set_champion(candidate["version"])
        path = install_default(candidate["run_id"], candidate["tags"][KIND], models_dir)
    return (f"{report}\npromoted {_name(candidate)} to champion ({why}); "
            f"default model -> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="promote the best candidate even if not better")
    parser.add_argument("--dry-run", action="store_true", help="show the comparison, change nothing")
    parser.add_argument("--config", default=CONFIG_DIR / "train.yaml", type=Path,
                        help="train config whose models_dir holds the champion (default: configs/train.yaml)")
    args = parser.parse_args()
    print(promote(args.force, args.dry_run, configured_models_dir(args.config)))


if __name__ == "__main__":
    run(main)
