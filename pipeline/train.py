"""Train: labeled headlines -> a fitted model, evaluated, tracked in MLflow and exported.

    python -m pipeline.train [--model tfidf] [--config configs/train.yaml]

Reads data/processed/labeled.csv (make label), splits it (seeded, stratified), fits the kind, sets its
abstain thresholds on the annotations' tune part, evaluates it on the held-out split, the tune part and
every gold slice (all gold, per file, per source) inside an MLflow run, and only then swaps it into
<models_dir>/<kind> (models_dir in the --config; layout: pipeline.store): a failure leaves the previous model.
`python -m pipeline.promote` decides the default.
"""

import argparse
import contextlib
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline import LABELS, OTHER, TOPICS
from pipeline.audit import ISSUE_COLUMNS
from pipeline.cli import UserError, run
from pipeline.config import CONFIG_DIR, DataConfig, LabelConfig, TrainConfig, load_config
from pipeline.evaluate import Evaluation, add_intervals, evaluate, format_report
from pipeline.gold import held_out_keys, read_annotations, read_gold, scored_topics, slices
from pipeline.io import failpoint, read_csv, sha256_lines, write_csv
from pipeline.label import LABELED_COLUMNS, rule_counts
from pipeline.models import model_class, new_model
from pipeline.models.base import EpochLog, FitInputs, TopicModel
from pipeline.names import (
    ABSTAIN_THRESHOLD,
    AUDIT,
    CALIBRATION,
    OTHER_THRESHOLD,
    REPORT,
    TIME,
    TRAIN_ROWS,
    TRAIN_SECONDS,
    TUNE,
    VAL,
    VAL_ROWS,
    is_slice,
    metric,
    speed,
)
from pipeline.predict import reference_for
from pipeline.store import current_link, install_champion, kind_dir, models_lock, swapped_dir


@dataclass
class TrainResult:
    model: TopicModel
    metrics: dict[str, float]
    configs: dict[str, dict]  # resolved configs by name: train, model, data, labels
    data_info: dict[str, str | int]  # training-data hash and size
    label_counts: dict[str, int]  # labels produced per rule, for the whole labeled table
    evaluations: dict[str, Evaluation] = field(default_factory=dict)  # "val", "tune", gold slices (pipeline.gold)
    label_issues: list[dict] = field(default_factory=list)  # audit suspects, ranked (pipeline.audit)
    rows: list[dict] = field(default_factory=list)  # the training table (train + validation split), no gold
    function_stats: list[dict] = field(default_factory=list)  # labeling-function analysis (pipeline.label)
    report_sources: list[str] = field(default_factory=list)  # gold source of each in-scope REPORT item, in order


def training_rows(labeled: list[dict], forbidden_keys: set[str], learn_other: bool = False) -> list[dict]:
    """Rows with a topic (and `other`, if learned); refuses to go on if any gold or tune-part headline
    slipped in."""
    classes = (*TOPICS, OTHER) if learn_other else TOPICS
    rows = [r for r in labeled if r["label"] in classes]
    leaked = [r["title"] for r in rows if r["key"] in forbidden_keys]
    if leaked:
        raise UserError(f"{len(leaked)} gold or tune-part headline(s) in the training table (e.g. {leaked[0]!r}); "
                        "rerun make label")
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


def evaluate_split(model: TopicModel, titles: list[str], labels: list[str], prefix: str,
                   topics: tuple[str, ...] = TOPICS) -> Evaluation:
    from pipeline.calibration import apply

    start = time.perf_counter()
    raw = model.predict_raw(titles)
    proba = apply(model.calibration, raw)
    seconds = time.perf_counter() - start
    result = evaluate(titles, labels, proba, model.labels, prefix, model.threshold, raw, model.other_threshold,
                      topics)
    result.metrics[speed(prefix)] = len(titles) / max(seconds, 1e-9)
    return result


def weights(rows: list[dict], cfg: TrainConfig) -> list[float] | None:
    """Each row's say: the label model's confidence (if weighted so) times its (source, label) balance."""
    if cfg.sample_weighting == "none" and not cfg.source_balance:
        return None
    confidence = [float(r.get("confidence") or 1.0) if cfg.sample_weighting == "confidence" else 1.0 for r in rows]
    return [c * b for c, b in zip(confidence, source_balance(rows, cfg.source_balance), strict=True)]


def source_balance(rows: list[dict], power: float) -> list[float]:
    """Per row, (n_label / (sources_label * n_source_label)) ** power, scaled so each label keeps its total
    weight: a label's sources move towards an equal say, and class balance stays the model's business.
    Today every sports label but a few comes from YNAT; without this a model learns YNAT's style as sports."""
    pairs = Counter((r.get("source", ""), r["label"]) for r in rows)
    per_label = Counter(r["label"] for r in rows)
    sources = Counter(label for _, label in pairs)
    raw = {(s, lab): (per_label[lab] / (sources[lab] * n)) ** power for (s, lab), n in pairs.items()}
    scale = {lab: per_label[lab] / sum(raw[(s, lb)] * n for (s, lb), n in pairs.items() if lb == lab)
             for lab in per_label}
    return [raw[(r.get("source", ""), r["label"])] * scale[r["label"]] for r in rows]


def audit(model: TopicModel, rows: list[dict], cfg: TrainConfig) -> tuple[list[dict], dict[str, float]]:
    """Confident-learning suspects over all training rows, and their count per given label."""
    from pipeline.audit import find_issues, out_of_fold_proba

    proba = out_of_fold_proba(lambda: type(model)(model.config), [r["title"] for r in rows],
                              [r["label"] for r in rows], weights(rows, cfg), cfg.audit_folds, cfg.seed)
    issues = find_issues(rows, proba)
    counts = {metric(AUDIT, f"issues_{t}"): float(sum(i["label"] == t for i in issues)) for t in LABELS}
    return issues, {**counts, metric(AUDIT, "issues_total"): float(len(issues))}


def calibrate(model: TopicModel, titles: list[str], labels: list[str], cfg: TrainConfig,
              tune: list[dict] | None = None) -> dict[str, float]:
    """Fit the calibration (method picked by held-out ECE) on validation rows, and the abstain threshold
    on the annotations' tune part when there is one (validation rows share the training distribution, so a
    threshold set there promises more coverage than new outlets get), else on validation rows."""
    import numpy as np

    from pipeline.calibration import apply, choose_calibration, choose_thresholds

    raw = model.predict_raw(titles)
    y = np.array([model.labels.index(label) for label in labels])
    model.calibration, ece = choose_calibration(raw, y, cfg.seed)
    on = "tune" if tune and cfg.abstain_on == "tune" else "val"
    if on == "tune":
        proba, targets = model.predict_proba([g["title"] for g in tune]), [g["label"] for g in tune]
    else:
        proba, targets = apply(model.calibration, raw), labels
    model.threshold, model.other_threshold = choose_thresholds(proba, model.labels, targets, cfg.abstain_coverage)
    model.info["abstain_threshold_on"] = on
    return {**{metric(CALIBRATION, f"ece_{method}"): value for method, value in ece.items()},
            ABSTAIN_THRESHOLD: model.threshold, OTHER_THRESHOLD: model.other_threshold}


def distill(teacher: TopicModel, rows: list[dict], unlabeled: list[str], cfg: TrainConfig,
            inputs: FitInputs) -> FitInputs:
    """The distillation step: `teacher` (another kind) is fit on the student's training rows and labels,
    softly, the headlines the rules left out. The label model abstains on a third of them (mixed sections,
    the newest listings); a teacher that reads characters and morphemes lets the student learn that part
    of the distribution too. Soft targets come in sorted label order, the students' own."""
    start = time.perf_counter()
    # a saved model carries the metrics of its training, a new one none: one trained on these very rows
    # (models/<kind>, picked by trained_on_this) is used as it is
    if not getattr(teacher, "metrics", None):
        teacher.fit([r["title"] for r in rows], [r["label"] for r in rows], seed=cfg.seed,
                    sample_weight=weights(rows, cfg))
    soft = teacher.predict_raw(unlabeled)[:, [teacher.labels.index(label) for label in sorted(teacher.labels)]]
    teacher.info.update({"unlabeled_rows": len(unlabeled), "teacher_seconds": round(time.perf_counter() - start, 1)})
    print(f"  teacher {teacher.kind}: soft labels for {len(unlabeled)} unlabeled headlines "
          f"in {teacher.info['teacher_seconds']} s", flush=True)
    return replace(inputs, soft_titles=unlabeled, soft_targets=soft)


def train(model: TopicModel, labeled: list[dict], gold: list[dict], cfg: TrainConfig,
          tune: list[dict] = (), teacher: TopicModel | None = None, log: EpochLog | None = None) -> TrainResult:
    """Pure core: fit `model` on the labeled rows, evaluate it, audit the labels; writes nothing.

    `tune` (the annotations' tune part, pipeline.gold) never trains a kind that learns from text: it sets
    the abstain thresholds (and an ensemble's weights) and is reported as tune/*. Gold is only scored:
    report/* on all of it, gold_file/* and gold_source/* per slice, each with bootstrap intervals.
    `teacher`, when given, distills soft labels for the unlabeled headlines; `log` receives per-epoch curves."""
    tune = [t for t in tune if t.get("part", TUNE) == TUNE]
    forbidden = held_out_keys(gold, tune)
    rows = training_rows(labeled, forbidden, cfg.learn_other)
    train_rows, val_rows = split(rows, cfg.val_fraction, cfg.seed)
    headlines = [r for r in labeled if r["key"] not in forbidden]
    inputs = FitInputs(corpus=[r["title"] for r in headlines], log=log)  # every headline but gold and tune
    if model.fit_on == "tune" and not tune:
        raise UserError(f"{model.kind} fits its weights on the annotations' tune part: none configured "
                        "(annotations_tsv in configs/data.yaml)")
    fit_rows = tune if model.fit_on == "tune" else train_rows  # an ensemble weighs fitted members off-source
    start = time.perf_counter()
    if teacher is not None:
        if teacher.kind == model.kind:
            raise UserError(f"teacher must be another model kind than {model.kind}")
        # neither training nor validation rows: the headlines the labels left out (a seeded sample, to bound time)
        unlabeled = [r["title"] for r in headlines if not r["label"]]
        limit = getattr(model.config, "teacher_rows", len(unlabeled))
        if len(unlabeled) > limit:
            unlabeled = random.Random(cfg.seed).sample(unlabeled, limit)
        inputs = distill(teacher, fit_rows, unlabeled, cfg, inputs)
        model.info["teacher"] = {"kind": teacher.kind, "config": teacher.config.model_dump(mode="json"),
                                 "unlabeled_rows": teacher.info["unlabeled_rows"]}
        model.info["teacher_seconds"] = teacher.info["teacher_seconds"]
    model.fit([r["title"] for r in fit_rows], [r["label"] for r in fit_rows], seed=cfg.seed,
              sample_weight=weights(fit_rows, cfg), inputs=inputs)
    metrics = {TRAIN_SECONDS: time.perf_counter() - start, TRAIN_ROWS: float(len(fit_rows)),
               VAL_ROWS: float(len(val_rows))}
    metrics.update(calibrate(model, [r["title"] for r in val_rows], [r["label"] for r in val_rows], cfg, tune))
    # what `predict --summary` holds a batch against: the final answers' figures on all gold (report only)
    model.info["batch_reference"] = reference_for(model, [g["title"] for g in gold])
    # phase timings a kind reports about itself (tokenizer, pretraining, fine-tuning)
    metrics.update({metric(TIME, k): float(v) for k, v in model.info.items() if k.endswith("_seconds")})
    evaluations = {VAL: evaluate_split(model, [r["title"] for r in val_rows], [r["label"] for r in val_rows], VAL)}
    if tune:
        labels = [t["label"] for t in tune]
        evaluations[TUNE] = evaluate_split(model, [t["title"] for t in tune], labels, TUNE, scored_topics(labels))
    evaluations.update(score_gold(model, gold))
    for evaluation in evaluations.values():
        metrics.update(evaluation.metrics)
    issues: list[dict] = []
    if cfg.audit_folds and model.audit_refits:
        issues, audit_metrics = audit(model, rows, cfg)
        metrics.update(audit_metrics)
    model.metrics = metrics
    fingerprint = data_fingerprint(rows)
    model.info.update({**fingerprint, "train_config": cfg.model_dump(mode="json"),
                       "calibration_method": model.calibration["method"]})
    return TrainResult(model=model, metrics=metrics, configs={}, data_info=fingerprint, rows=rows,
                       label_counts=dict(rule_counts(labeled)), evaluations=evaluations, label_issues=issues,
                       report_sources=[g["source"] for g in gold if g["label"] != OTHER])


def score_gold(model: TopicModel, gold: list[dict]) -> dict[str, Evaluation]:
    """Every gold slice scored (nothing is chosen here): all gold, each file, each source, with intervals."""
    out = {}
    for name, items in slices(gold).items():
        labels = [g["label"] for g in items]
        out[name] = evaluate_split(model, [g["title"] for g in items], labels, name, scored_topics(labels))
        add_intervals(out[name], name)
    return out


def load_members(kinds: tuple[str, ...], labeled: list[dict], gold: list[dict], cfg: TrainConfig) -> list[TopicModel]:
    """The trained models an ensemble combines, from <models_dir>/<kind>; each must have been trained on
    this labeled table with this split, or the rows the weights are fitted on could be its training rows."""
    members = []
    for kind in kinds:
        path = kind_dir(cfg.models_dir, kind)
        if not path.is_dir():
            raise UserError(f"ensemble member {kind} is not trained yet ({path}): run `make train-{kind}` first")
        member = trained_on_this(kind, labeled, gold, cfg)
        if member is None:
            raise UserError(f"ensemble member {path} was trained on other data or another split: "
                            f"retrain it (`make train-{kind}`) before the ensemble")
        members.append(member)
    return members


def trained_on_this(kind: str, labeled: list[dict], gold: list[dict], cfg: TrainConfig,
                    config: object | None = None) -> TopicModel | None:
    """The model at <models_dir>/<kind> if it was trained on this labeled table with this split (and, when
    given, this model config), else None."""
    from pipeline.models import load_model

    path = kind_dir(cfg.models_dir, kind)
    if not path.is_dir():
        return None
    try:
        member = load_model(path)
    except UserError:  # unreadable, or made by an older version of the code: not this training's model
        return None
    split_cfg = member.info.get("train_config", {})
    expected = data_fingerprint(training_rows(labeled, held_out_keys(gold), cfg.learn_other))["train_data_sha256"]
    same = member.info.get("train_data_sha256") == expected and all(
        split_cfg.get(k) == getattr(cfg, k) for k in ("seed", "val_fraction", "learn_other", "source_balance",
                                                        "sample_weighting"))
    if config is not None and member.config != config:
        return None
    return member if same else None


def export(result: TrainResult, cfg: TrainConfig, run_id: str | None = None) -> Path:
    """Save into a fresh directory and log it to the MLflow run (if any), swap models/<kind> to it atomically,
    then register it: a failure before the swap keeps the previous model, and a version is registered only
    once its model is in place."""
    final = kind_dir(cfg.models_dir, result.model.kind)
    if run_id is not None:
        result.model.info["mlflow_run_id"] = run_id
    with swapped_dir(final) as staged:
        result.model.save(staged)
        model_uri = None
        if run_id is not None:
            from pipeline import registry, tracking

            model_uri = tracking.log_result(result, staged)  # a failure here keeps the previous model
        failpoint("staged")
    failpoint("swapped")
    if model_uri is not None:
        registry.register(result, model_uri, final.resolve())
    if not current_link(cfg.models_dir).exists():  # no default yet: this model is the champion until `promote` decides
        install_champion(cfg.models_dir, final)
    return final


def run_training(model: TopicModel, labeled: list[dict], gold: list[dict], cfg: TrainConfig,
                 tune: list[dict] = (), teacher: TopicModel | None = None,
                 configs: dict | None = None, function_stats: list[dict] | None = None,
                 track: bool = True) -> tuple[TrainResult, Path | None]:
    """train() inside an MLflow run that spans it (a failure marks the run FAILED), then export().
    Under `accelerate launch`/torchrun every process trains (the Trainer syncs them); rank 0 alone
    tracks and exports, the others get (result, None)."""
    main_process = int(os.environ.get("RANK", "0")) == 0
    # one run per models directory (checked before anything trains); other ranks of this run do not lock
    locked = models_lock(cfg.models_dir) if main_process else contextlib.nullcontext()
    tracked, log = contextlib.nullcontext(None), None
    if track and main_process:
        from pipeline import tracking

        tracked, log = tracking.training_run(cfg.experiment, model.kind), tracking.log_epoch
    with locked, tracked as run_id:
        result = train(model, labeled, gold, cfg, tune, teacher, log)
        failpoint("trained")
        if not main_process:
            return result, None
        result.configs = configs or {"train": cfg.model_dump(mode="json")}
        result.function_stats = function_stats or []
        return result, export(result, cfg, run_id)


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
    labeled_path = data_cfg.labeled_csv
    if not labeled_path.is_file():
        raise UserError(f"no labeled data at {labeled_path}; run `make label` first")
    labeled = read_csv(labeled_path, required=LABELED_COLUMNS)

    print(f"training {cfg.model} on {labeled_path} ...", flush=True)
    gold = read_gold(data_cfg)
    tune = [a for a in read_annotations(data_cfg, gold) if a["part"] == TUNE]
    if cfg.model == "ensemble":  # combines trained models: they are its parts, passed in
        model = cls(model_cfg, members=load_members(model_cfg.members, labeled, gold, cfg))
    else:
        model = cls(model_cfg)
    teacher_kind = getattr(model_cfg, "teacher", "none")
    teacher = new_model(teacher_kind, CONFIG_DIR / f"{teacher_kind}.yaml") if teacher_kind != "none" else None
    if teacher is not None:  # `make train` has just trained it on these rows: no need to fit it twice
        teacher = trained_on_this(teacher_kind, labeled, gold, cfg, teacher.config) or teacher
    functions_csv = labeled_path.with_name("labeling_functions.csv")
    configs = {name: c.model_dump(mode="json") for name, c in
               (("train", cfg), ("model", model_cfg), ("data", data_cfg), ("labels", label_cfg))}
    result, final = run_training(model, labeled, gold, cfg, tune, teacher, configs,
                                 read_csv(functions_csv) if functions_csv.is_file() else [], not args.no_mlflow)
    if final is None:  # a worker process of a multi-GPU launch: rank 0 reports
        return
    if result.label_issues:
        write_csv(data_cfg.label_issues_csv, ISSUE_COLUMNS, result.label_issues)
        print(f"audit: {len(result.label_issues)} suspected label errors -> {data_cfg.label_issues_csv} "
              "(review them with `python -m pipeline.review`)")
    notes = {TUNE: "annotations' tune part (tuning: label weights and thresholds were set on it; not honest):",
             REPORT: "gold, all files (report only: nothing was chosen on it; it crowns the champion):"}
    for name, evaluation in result.evaluations.items():
        if name in notes:
            print(notes[name])
        report = format_report(evaluation, name)
        # a slice of gold in one line each (macro-F1 with its interval); the whole report for the rest
        print(report.splitlines()[0] if is_slice(name) else report)
    print(f"trained in {result.metrics[TRAIN_SECONDS]:.1f} s on {int(result.metrics[TRAIN_ROWS])} headlines "
          f"-> {final}" + (f" (MLflow run {result.model.info['mlflow_run_id']})" if not args.no_mlflow else ""))


if __name__ == "__main__":
    run(main)
