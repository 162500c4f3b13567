"""MLflow tracking: the only module that imports mlflow.

Store: $MLFLOW_TRACKING_URI, else SQLite `mlflow.db` at the repo root with artifacts in
`mlartifacts/` beside it. `make ui` opens the UI on that store.

Each training run logs: resolved configs (params + config/*.json), training-data hash and size,
labels per rule, every metric from pipeline.evaluate (same names for every model kind), confusion
matrices as PNG, misclassified gold headlines as a table, and the model as a pyfunc wrapping the
exported model directory, registered as `headline-topic-<kind>`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

# no "Downloading artifacts" progress bars in training logs
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import REPO_ROOT, TOPICS

DEFAULT_DB = REPO_ROOT / "mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite store (mlartifacts/); None lets a tracking server decide."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db = Path(uri[len("sqlite:///"):])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def registered_name(kind: str) -> str:
    return f"headline-topic-{kind}"


def _experiment_id(name: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_root(tracking_uri()))


@contextlib.contextmanager
def training_run(experiment: str, kind: str) -> Iterator[str]:
    """Open a run (marked FAILED if the block raises) and yield its id."""
    mlflow.set_tracking_uri(tracking_uri())
    from datetime import datetime

    name = f"{kind}-{datetime.now():%Y%m%d-%H%M%S}"
    with mlflow.start_run(experiment_id=_experiment_id(experiment), run_name=name,
                          tags={"model_kind": kind}) as active:
        yield active.info.run_id


def _flatten(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value if isinstance(value, (int, float, str, bool, type(None))) else str(value)[:500]
    return out


def _metric_name(name: str) -> str:
    return re.sub(r"[^\w.\- /]", "_", name)


class HeadlineTopicPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: a DataFrame whose first column holds headlines -> label, confidence, per-topic scores."""

    def load_context(self, context):
        from pipeline.models import load_model

        self.model = load_model(context.artifacts["model_dir"])

    # a DataFrame hint: mlflow takes the explicit signature logged with the model instead of inferring one
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        titles = list(model_input.iloc[:, 0]) if isinstance(model_input, pd.DataFrame) else list(model_input)
        proba = self.model.predict_proba(titles)
        frame = pd.DataFrame(proba, columns=list(self.model.labels))
        frame.insert(0, "confidence", proba.max(axis=1))
        frame.insert(0, "label", [self.model.labels[i] for i in proba.argmax(axis=1)])
        return frame


def _confusion_figure(matrix: list[list[int]], title: str, normalise: bool = False):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if normalise:
        counts = np.asarray(matrix, dtype=float)
        matrix = np.round(counts / np.maximum(counts.sum(axis=1, keepdims=True), 1), 2).tolist()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(matrix, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(TOPICS)), TOPICS, rotation=30)
    ax.set_yticks(range(len(TOPICS)), TOPICS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > peak / 2 else "black")
    fig.tight_layout()
    return fig


def _f1_figure(metrics: dict[str, float], split: str, title: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [metrics.get(f"{split}_f1_{t}", 0.0) for t in TOPICS]
    bars = ax.bar(TOPICS, values, color="#4c72b0")
    ax.bar_label(bars, fmt="%.3f")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.set_title(f"{title} (macro {metrics.get(f'{split}_macro_f1', 0.0):.3f})")
    fig.tight_layout()
    return fig


def _reliability_figure(curves: dict[str, list], title: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, points in curves.items():
        if points:
            confidence, accuracy, _ = zip(*points, strict=True)
            ax.plot(confidence, accuracy, marker="o", label=name)
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def _pip_requirements(kind: str) -> list[str]:
    from importlib.metadata import version

    packages = ["scikit-learn", "numpy", "kiwipiepy", "kiwipiepy-model", "joblib", "pandas"]
    if kind != "tfidf":
        packages += ["torch", "transformers", "sentencepiece"]
    return [f"{p}=={version(p)}" for p in packages]


def log_result(result, model_dir: Path) -> None:
    """Log a pipeline.train.TrainResult into the active run, with the exported model directory."""
    import matplotlib.pyplot as plt

    kind = result.model.kind
    params = _flatten("", {k: v for k, v in result.configs.items() if k != "labels"}, {})
    mlflow.log_params({k: v for k, v in params.items() if len(k) <= 250})
    for name, cfg in result.configs.items():
        mlflow.log_dict(cfg, f"config/{name}.json")
    mlflow.set_tags({"train_data_sha256": result.data_info["train_data_sha256"],
                     "checkpoint": str(result.model.info.get("checkpoint", "none"))})
    mlflow.log_metrics(result.metrics)
    mlflow.log_metrics({_metric_name(f"label_count_{rule}"): float(n) for rule, n in result.label_counts.items()})
    mlflow.log_dict(result.label_counts, "labels/rule_counts.json")
    if result.function_stats:
        mlflow.log_table(pd.DataFrame(result.function_stats), "labels/labeling_functions.json")
    if result.label_issues:
        mlflow.log_table(pd.DataFrame(result.label_issues), "labels/label_issues.json")
    for split, evaluation in result.evaluations.items():
        figures = (
            (_confusion_figure(evaluation.confusion, f"{kind}: {split} confusion"), "confusion_matrix"),
            (_confusion_figure(evaluation.confusion, f"{kind}: {split} confusion (row-normalised)", normalise=True),
             "confusion_matrix_normalised"),
            (_f1_figure(result.metrics, split, f"{kind}: {split} F1 per class"), "f1_per_class"),
            (_reliability_figure(evaluation.reliability, f"{kind}: {split} reliability"), "reliability"),
        )
        for fig, name in figures:
            mlflow.log_figure(fig, f"plots/{split}_{name}.png")
            plt.close(fig)
    mlflow.log_dict({"calibration": result.model.calibration, "abstain_threshold": result.model.threshold,
                     "other_threshold": result.model.other_threshold},
                    "calibration.json")
    mlflow.set_tag("calibration_method", result.model.calibration["method"] if result.model.calibration else "none")
    for split in ("gold_tune", "gold_report"):
        if split in result.evaluations:
            errors = result.evaluations[split].errors
            mlflow.log_table(pd.DataFrame(errors, columns=["title", "label", "predicted", "confidence"]),
                             f"{split}_misclassified.json")
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "title")]),
        outputs=Schema([ColSpec("string", "label"), ColSpec("double", "confidence"),
                        *(ColSpec("double", t) for t in result.model.labels)]),
    )
    # The wrapper is a small class of ours (cloudpickled by reference, code shipped via code_paths);
    # mlflow's generic warning about pickled python_model objects would only add noise to every run.
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_logger.level
    pyfunc_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=HeadlineTopicPyfunc(),
                artifacts={"model_dir": str(model_dir)},
                code_paths=[str(REPO_ROOT / "pipeline")],
                pip_requirements=_pip_requirements(kind),
                signature=signature,
                registered_model_name=registered_name(kind),
            )
    finally:
        pyfunc_logger.setLevel(level)
    _tag_version(registered_name(kind), info.registered_model_version, result, model_dir)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _tag_version(name: str, version, result, model_dir: Path) -> None:
    """Gold report metrics, size and speed on the registered version: what champion selection reads, with
    the report part's answers (one letter per item) so promote can pair two versions on the same items."""
    from pipeline.gold import encode, items_digest

    client = mlflow.MlflowClient()
    tags = {k: f"{v:.6f}" for k, v in result.metrics.items()
            if k.startswith("gold_report_") and "other_as" not in k}
    tags.update({k: f"{result.metrics[k]:.6f}" for k in ("gold_tune_macro_f1", "gold_tune_f1_crime")
                 if k in result.metrics})
    report = result.evaluations.get("gold_report")
    if report is not None:
        tags.update({"gold_report_items": items_digest(report.scope_titles), "gold_report_truth": encode(report.truth),
                     "gold_report_answers": encode(report.forced)})
    tags.update({"model_kind": result.model.kind, "model_bytes": str(_dir_bytes(model_dir)),
                 "headlines_per_second": f"{result.metrics.get('val_headlines_per_second', 0.0):.1f}",
                 "checkpoint": str(result.model.info.get("checkpoint", "none"))})
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)


# --- registry: champion and comparison (used by pipeline.promote and pipeline.compare) -----------------

CHAMPION = "champion"
NAME_PREFIX = "headline-topic-"


def registered_versions() -> list[dict]:
    """Every registered version of every model kind, with its tags and whether it is the champion."""
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    out = []
    for model in client.search_registered_models(f"name LIKE '{NAME_PREFIX}%'"):
        champion = model.aliases.get(CHAMPION) if model.aliases else None
        for version in client.search_model_versions(f"name='{model.name}'"):
            tags = dict(version.tags)
            tags.setdefault("model_kind", model.name.removeprefix(NAME_PREFIX))
            out.append({"name": model.name, "version": str(version.version), "run_id": version.run_id,
                        "tags": tags, "champion": str(version.version) == str(champion)})
    return out


def set_champion(name: str, version: str) -> None:
    """Point the `champion` alias at one version; no other model kind keeps it."""
    mlflow.set_tracking_uri(tracking_uri())
    client = mlflow.MlflowClient()
    for model in client.search_registered_models(f"name LIKE '{NAME_PREFIX}%'"):
        if model.name != name and model.aliases and CHAMPION in model.aliases:
            client.delete_registered_model_alias(model.name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, version)


def download_model_dir(run_id: str, dest: Path) -> Path:
    """The exported model directory logged with a run (the pyfunc's `model_dir` artifact)."""
    mlflow.set_tracking_uri(tracking_uri())
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model/artifacts",
                                                     dst_path=str(dest)))
    found = [p.parent for p in local.rglob("model.json")]
    if not found:
        raise FileNotFoundError(f"run {run_id} has no logged model directory")
    return found[0]


def latest_runs(experiment: str) -> list[dict]:
    """The newest finished run of each model kind: name, tags and metrics."""
    mlflow.set_tracking_uri(tracking_uri())
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = mlflow.MlflowClient().search_runs([found.experiment_id], "attributes.status = 'FINISHED'",
                                             order_by=["attributes.start_time DESC"], max_results=500)
    latest: dict[str, dict] = {}
    for run in runs:
        kind = run.data.tags.get("model_kind", "?")
        if kind not in latest:
            latest[kind] = {"kind": kind, "run_id": run.info.run_id, "run_name": run.info.run_name,
                            "tags": dict(run.data.tags), "metrics": dict(run.data.metrics)}
    return list(latest.values())
