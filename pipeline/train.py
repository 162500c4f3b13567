"""Train: labeled headlines -> a fitted model, evaluated, tracked in MLflow and exported.

    python -m pipeline.train [--model tfidf] [--config configs/train.yaml]

Reads data/processed/labeled.csv (make label), splits it deterministically (seeded, stratified),
fits the model kind's config (configs/<kind>.yaml), evaluates on the held-out split and on the gold
set, logs the run (pipeline.tracking) and only then swaps the model into models/<kind>. Any failure
before the swap leaves the previous model in place. Which model is the default (models/current) is
decided by `python -m pipeline.promote` (make train runs it last); the very first export becomes the
default until then.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import LABELS, OTHER, TOPICS
from pipeline.audit import ISSUE_COLUMNS
from pipeline.cli import UserError, run
from pipeline.config import (
    CONFIG_DIR,
    DataConfig,
    LabelConfig,
    TrainConfig,
    config_dict,
    load_config,
    repo_path,
)
from pipeline.evaluate import Evaluation, add_intervals, evaluate, format_report
from pipeline.gold import REPORT, TUNE, read_gold, split_gold
from pipeline.io import point_link, read_csv, replace_dir, sha256_lines, write_csv
from pipeline.label import COLUMNS as LABELED_COLUMNS
from pipeline.label import rule_counts
from pipeline.models import model_class, new_model
from pipeline.models.base import TopicModel
from pipeline.text import normalize_title


@dataclass
class TrainResult:
    model: TopicModel
    metrics: dict[str, float]
    configs: dict[str, dict]  # resolved configs by name: train, model, data, labels
    data_info: dict[str, str | int]  # training-data hash and size
    label_counts: dict[str, int]  # labels produced per rule, for the whole labeled table
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # "val", "gold_tune", "gold_report"
    label_issues: list[dict] = field(default_factory=list)  # audit suspects, ranked (pipeline.audit)
    function_stats: list[dict] = field(default_factory=list)  # labeling-function analysis (pipeline.label)


def training_rows(labeled: list[dict], forbidden_keys: set[str], learn_other: bool = False) -> list[dict]:
    """Rows with a topic (and `other`, if learned); refuses to go on if any gold headline slipped in."""
    classes = (*TOPICS, OTHER) if learn_other else TOPICS
    rows = [r for r in labeled if r["label"] in classes]
    leaked = [r["title"] for r in rows if r["key"] in forbidden_keys]
    if leaked:
        raise UserError(f"{len(leaked)} gold headline(s) in the training table (e.g. {leaked[0]!r}); rerun make label")
    return rows


def split(rows: list[dict], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    from sklearn.model_selection import train_test_split

    counts = {t: sum(r["label"] == t for r in rows) for t in TOPICS}
    missing = [t for t, n in counts.items() if n < 2]
    if missing:
        raise UserError(f"too few labeled headlines for {', '.join(missing)} (need at least 2 each)")
    return train_test_split(rows, test_size=val_fraction, random_state=seed, stratify=[r["label"] for r in rows])


def data_fingerprint(rows: list[dict]) -> dict[str, str | int]:
    lines = sorted(f"{r['key']}\t{r['label']}" for r in rows)
    return {"train_data_sha256": sha256_lines(lines), "train_data_rows": len(rows)}


def score(model: TopicModel, titles: list[str], labels: list[str], prefix: str) -> Evaluation:
    from pipeline.calibration import apply

    start = time.perf_counter()
    raw = model.predict_raw(titles)
    proba = apply(model.calibration, raw)
    seconds = time.perf_counter() - start
    result = evaluate(titles, labels, proba, model.labels, prefix, model.threshold, raw, model.other_threshold)
    result.metrics[f"{prefix}_headlines_per_second"] = len(titles) / max(seconds, 1e-9)
    return result


def weights(rows: list[dict], cfg: TrainConfig) -> list[float] | None:
    return [float(r["confidence"]) for r in rows] if cfg.sample_weighting == "confidence" else None


def audit(model: TopicModel, rows: list[dict], cfg: TrainConfig) -> tuple[list[dict], dict[str, float]]:
    """Confident-learning suspects over all training rows, and their count per given label."""
    from pipeline.audit import find_issues, out_of_fold_proba

    def fresh() -> TopicModel:
        twin = type(model)(model.config)
        twin.corpus, twin.unlabeled, twin.teacher = model.corpus, model.unlabeled, model.teacher
        return twin

    proba = out_of_fold_proba(fresh, [r["title"] for r in rows],
                              [r["label"] for r in rows], weights(rows, cfg), cfg.audit_folds, cfg.seed)
    issues = find_issues(rows, proba)
    counts = {f"audit_issues_{t}": float(sum(i["label"] == t for i in issues)) for t in LABELS}
    return issues, {**counts, "audit_issues_total": float(len(issues))}


def calibrate(model: TopicModel, titles: list[str], labels: list[str], cfg: TrainConfig,
              tune: list[dict] | None = None) -> dict[str, float]:
    """Fit the calibration (method picked by held-out ECE) on validation rows, and the abstain threshold
    on the gold tune part when there is one (validation rows share the training distribution, so a
    threshold set there promises more coverage than new listings get), else on validation rows."""
    import numpy as np

    from pipeline.calibration import apply, choose_calibration, choose_thresholds

    raw = model.predict_raw(titles)
    y = np.array([model.labels.index(label) for label in labels])
    model.calibration, ece = choose_calibration(raw, y, cfg.seed)
    on = "gold_tune" if tune and cfg.abstain_on == "gold_tune" else "val"
    if on == "gold_tune":
        proba, targets = model.predict_proba([g["title"] for g in tune]), [g["label"] for g in tune]
    else:
        proba, targets = apply(model.calibration, raw), labels
    model.threshold, model.other_threshold = choose_thresholds(proba, model.labels, targets, cfg.abstain_coverage)
    model.info["abstain_threshold_on"] = on
    return {**{f"calibration_ece_{method}": value for method, value in ece.items()},
            "abstain_threshold": model.threshold, "other_threshold": model.other_threshold}


def train(model: TopicModel, labeled: list[dict], gold: list[dict], cfg: TrainConfig,
          report_share: float = DataConfig.gold_report_share) -> TrainResult:
    """Pure core: fit `model` on the labeled rows, evaluate it, audit the labels; writes nothing.

    Gold is split (pipeline.gold): the tune part sets the abstain threshold and is reported as
    gold_tune_*; the report part is only scored (gold_report_*, with bootstrap intervals)."""
    gold_keys = {normalize_title(g["title"]).key for g in gold}
    parts = split_gold(gold, report_share)
    rows = training_rows(labeled, gold_keys, cfg.learn_other)
    train_rows, val_rows = split(rows, cfg.val_fraction, cfg.seed)
    headlines = [r for r in labeled if r["key"] not in gold_keys]
    model.corpus = [r["title"] for r in headlines]  # every headline, no gold: for pretraining
    model.unlabeled = [r["title"] for r in headlines if not r["label"]]  # neither training nor validation rows
    fit_rows = val_rows if model.fit_on == "val" else train_rows  # an ensemble weighs fitted members on val
    start = time.perf_counter()
    model.fit([r["title"] for r in fit_rows], [r["label"] for r in fit_rows], seed=cfg.seed,
              sample_weight=weights(fit_rows, cfg))
    metrics = {"train_seconds": time.perf_counter() - start, "train_rows": float(len(fit_rows)),
               "val_rows": float(len(val_rows))}
    metrics.update(calibrate(model, [r["title"] for r in val_rows], [r["label"] for r in val_rows], cfg, parts[TUNE]))
    # phase timings a kind reports about itself (tokenizer, pretraining, fine-tuning)
    metrics.update({k: float(v) for k, v in model.info.items() if k.endswith("_seconds")})
    evaluations = {"val": score(model, [r["title"] for r in val_rows], [r["label"] for r in val_rows], "val")}
    for part in (TUNE, REPORT):
        if parts[part]:
            prefix = f"gold_{part}"
            evaluations[prefix] = score(model, [g["title"] for g in parts[part]], [g["label"] for g in parts[part]],
                                        prefix)
            if part == REPORT:
                add_intervals(evaluations[prefix], prefix)
    for evaluation in evaluations.values():
        metrics.update(evaluation.metrics)
    issues: list[dict] = []
    if cfg.audit_folds and model.audit_refits:
        issues, audit_metrics = audit(model, rows, cfg)
        metrics.update(audit_metrics)
    model.metrics = metrics
    fingerprint = data_fingerprint(rows)
    model.info.update({**fingerprint, "train_config": config_dict(cfg),
                       "calibration_method": model.calibration["method"]})
    return TrainResult(model=model, metrics=metrics, configs={}, data_info=fingerprint,
                       label_counts=dict(rule_counts(labeled)), evaluations=evaluations, label_issues=issues)


def load_members(kinds: tuple[str, ...], labeled: list[dict], gold: list[dict], cfg: TrainConfig) -> list[TopicModel]:
    """The trained models an ensemble combines, from <models_dir>/<kind>; each must have been trained on
    this labeled table with this split, or the validation rows the weights are fitted on were its training rows."""
    from pipeline.models import load_model

    rows = training_rows(labeled, {normalize_title(g["title"]).key for g in gold}, cfg.learn_other)
    expected = data_fingerprint(rows)["train_data_sha256"]
    members = []
    for kind in kinds:
        path = repo_path(cfg.models_dir) / kind
        if not path.is_dir():
            raise UserError(f"ensemble member {kind} is not trained yet ({path}): run `make train-{kind}` first")
        member = load_model(path)
        split_cfg = member.info.get("train_config", {})
        if member.info.get("train_data_sha256") != expected or any(
                split_cfg.get(k) != getattr(cfg, k) for k in ("seed", "val_fraction", "learn_other")):
            raise UserError(f"ensemble member {path} was trained on other data or another split: "
                            f"retrain it (`make train-{kind}`) before the ensemble")
        members.append(member)
    return members


def export(result: TrainResult, cfg: TrainConfig, log: bool = True) -> Path:
    """Save to a staging dir, log to MLflow, then swap into models/<kind> and point models/current."""
    models_dir = repo_path(cfg.models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    kind = result.model.kind
    staging = models_dir / f".staging-{kind}"
    shutil.rmtree(staging, ignore_errors=True)
    final = models_dir / kind
    try:
        if log:
            from pipeline import tracking

            with tracking.training_run(cfg.experiment, kind) as run_id:
                result.model.info["mlflow_run_id"] = run_id
                result.model.save(staging)
                tracking.log_result(result, staging)
        else:
            result.model.save(staging)
        replace_dir(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not (models_dir / "current").exists():  # the first model is the default until `promote` decides
        point_link(models_dir / "current", kind)
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=CONFIG_DIR / "train.yaml", type=Path)
    parser.add_argument("--model", help="model kind (overrides train.yaml)")
    parser.add_argument("--model-config", type=Path, help="model hyper-parameters (default configs/<kind>.yaml)")
    parser.add_argument("--data", default=CONFIG_DIR / "data.yaml", type=Path)
    parser.add_argument("--labels", default=CONFIG_DIR / "labels.yaml", type=Path)
    parser.add_argument("--no-mlflow", action="store_true", help="export without logging a run")
    args = parser.parse_args()

    cfg = load_config(TrainConfig, args.config, {"model": args.model} if args.model else None)
    cls = model_class(cfg.model)
    model_cfg = load_config(cls.config_class(), args.model_config or CONFIG_DIR / f"{cfg.model}.yaml")
    data_cfg = load_config(DataConfig, args.data)
    label_cfg = load_config(LabelConfig, args.labels)
    labeled_path = repo_path(data_cfg.labeled_csv)
    if not labeled_path.is_file():
        raise UserError(f"no labeled data at {labeled_path}; run `make label` first")
    labeled = read_csv(labeled_path, required=LABELED_COLUMNS)

    print(f"training {cfg.model} on {labeled_path} ...", flush=True)
    gold = read_gold(data_cfg)
    if cfg.model == "ensemble":  # combines trained models: they are its parts, passed in
        model = cls(model_cfg, members=load_members(model_cfg.members, labeled, gold, cfg))
    else:
        model = cls(model_cfg)
    teacher = getattr(model_cfg, "teacher", "none")
    if teacher != "none":
        model.teacher = new_model(teacher, CONFIG_DIR / f"{teacher}.yaml")
    result = train(model, labeled, gold, cfg, data_cfg.gold_report_share)
    result.configs = {"train": config_dict(cfg), "model": config_dict(model_cfg),
                      "data": config_dict(data_cfg), "labels": config_dict(label_cfg)}
    functions_csv = labeled_path.with_name("labeling_functions.csv")
    result.function_stats = read_csv(functions_csv) if functions_csv.is_file() else []
    final = export(result, cfg, log=not args.no_mlflow)
    if result.label_issues:
        write_csv(repo_path(data_cfg.label_issues_csv), ISSUE_COLUMNS, result.label_issues)
        print(f"audit: {len(result.label_issues)} suspected label errors -> {data_cfg.label_issues_csv} "
              "(review them with `python -m pipeline.label review`)")
    notes = {"gold_tune": "gold tune part (tuning: label weights and thresholds were set on it; not honest):",
             "gold_report": "gold report part (nothing was tuned on it):"}
    for name, evaluation in result.evaluations.items():
        if name in notes:
            print(notes[name])
        print(format_report(evaluation, name))
    print(f"trained in {result.metrics['train_seconds']:.1f} s on {int(result.metrics['train_rows'])} headlines "
          f"-> {final}" + (f" (MLflow run {result.model.info['mlflow_run_id']})" if not args.no_mlflow else ""))


if __name__ == "__main__":
    run(main)
