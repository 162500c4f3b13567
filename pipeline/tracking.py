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
    with mlflow.start_run(experiment_id=_experiment_id(experiment), tags={"model_kind": kind}) as active:
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


def _confusion_figure(matrix: list[list[int]], title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(matrix, cmap="Blues")
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
    mlflow.set_tags({"train_data_sha256": result.data_info["train_data_sha256"]})
    mlflow.log_metrics(result.metrics)
    mlflow.log_metrics({_metric_name(f"label_count_{rule}"): float(n) for rule, n in result.label_counts.items()})
    mlflow.log_dict(result.label_counts, "labels/rule_counts.json")
    if result.function_stats:
        mlflow.log_table(pd.DataFrame(result.function_stats), "labels/labeling_functions.json")
    if result.label_issues:
        mlflow.log_table(pd.DataFrame(result.label_issues), "labels/label_issues.json")
    for split, evaluation in result.evaluations.items():
        for fig, name in ((_confusion_figure(evaluation.confusion, f"{kind}: {split} confusion"), "confusion_matrix"),
                          (_reliability_figure(evaluation.reliability, f"{kind}: {split} reliability"), "reliability")):
            mlflow.log_figure(fig, f"plots/{split}_{name}.png")
            plt.close(fig)
    mlflow.log_dict({"calibration": result.model.calibration, "abstain_threshold": result.model.threshold},
                    "calibration.json")
    mlflow.set_tag("calibration_method", result.model.calibration["method"] if result.model.calibration else "none")
    if "gold" in result.evaluations:
        errors = result.evaluations["gold"].errors
        mlflow.log_table(pd.DataFrame(errors, columns=["title", "label", "predicted", "confidence"]),
                         "gold_misclassified.json")
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
            mlflow.pyfunc.log_model(
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
