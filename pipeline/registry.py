"""The model registry: one registered model, `headline-topic`, every kind's versions told apart by the model_kind
tag; the `champion` alias names one of them. Writes a version and its tags (`register`, after training), reads
versions and runs back (promote, compare, card), moves the alias (promote), fetches a logged model (serve,
score, promote). Opens the store through pipeline.tracking.use_store.
"""

import warnings
from pathlib import Path

import mlflow

from pipeline.cli import UserError
from pipeline.names import (
    CHAMPION,
    CHECKPOINT,
    HEADLINES_PER_SECOND,
    KIND,
    MODEL_BYTES,
    MODEL_NAME,
    REPORT,
    REPORT_ANSWERS,
    REPORT_ITEMS,
    REPORT_TRUTH,
    TUNE,
    VAL,
    is_slice,
    metric,
    speed,
)
from pipeline.tracking import tracking_uri, use_store


def register(result, model_uri: str, model_dir: Path) -> None:
    """A new version of the registered model, tagged for `promote`: called once the model is in place."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        version = mlflow.register_model(model_uri, MODEL_NAME)
    _tag_version(version.version, result, model_dir)


def _tag_version(version, result, model_dir: Path) -> None:
    """Gold report metrics, size and speed on the registered version: what champion selection reads, with
    the report part's answers (one letter per item) so promote can pair two versions on the same items."""
    from pipeline.gold import encode, encode_sources, items_digest

    client = mlflow.MlflowClient()
    tags = {k: f"{v:.6f}" for k, v in result.metrics.items()
            if k.startswith(f"{REPORT}/") and "other_as" not in k}
    tags.update({k: f"{v:.6f}" for k, v in result.metrics.items()
                 if is_slice(k) and k.endswith(("_macro_f1", "_macro_f1_lo", "_macro_f1_hi"))})
    tags.update({k: f"{result.metrics[k]:.6f}" for k in (metric(TUNE, "macro_f1"), metric(TUNE, "f1_crime"))
                 if k in result.metrics})
    report = result.evaluations.get(REPORT)
    if report is not None:
        tags.update({REPORT_ITEMS: items_digest(report.scope_titles), REPORT_TRUTH: encode(report.truth),
                     REPORT_ANSWERS: encode(report.forced), **encode_sources(result.report_sources)})
    size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    tags.update({KIND: result.model.kind, MODEL_BYTES: str(size),
                 HEADLINES_PER_SECOND: f"{result.metrics.get(speed(VAL), 0.0):.1f}",
                 CHECKPOINT: str(result.model.info.get("checkpoint", "none"))})
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, str(version), key, value)


def registered_versions() -> list[dict]:
    """Every registered version (all kinds), with its tags and whether it is the champion."""
    use_store()
    client = mlflow.MlflowClient()
    try:
        champion = client.get_registered_model(MODEL_NAME).aliases.get(CHAMPION)
    except mlflow.exceptions.MlflowException:  # nothing registered yet
        return []
    return [{"name": MODEL_NAME, "version": str(v.version), "run_id": v.run_id, "tags": dict(v.tags),
             "champion": str(v.version) == str(champion)} for v in client.search_model_versions(f"name='{MODEL_NAME}'")]


def set_champion(version: str) -> None:
    """Point the `champion` alias at one version (an alias names one version: unique by construction)."""
    use_store()
    mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def download_model_dir(run_id: str, dest: Path) -> Path:
    """The exported model directory logged with a run (the pyfunc's `model_dir` artifact)."""
    use_store()
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model/artifacts",
                                                     dst_path=str(dest)))
    found = [p.parent for p in local.rglob("model.json")]
    if not found:
        raise FileNotFoundError(f"run {run_id} has no logged model directory")
    return min(found, key=lambda p: len(p.parts))  # the model itself, not an ensemble member inside it


def latest_runs(experiment: str) -> list[dict]:
    """The newest finished run of each model kind: name, tags and metrics."""
    use_store()
    if mlflow.get_experiment_by_name(experiment) is None:
        return []
    latest: dict[str, dict] = {}
    for run in mlflow.search_runs(experiment_names=[experiment], filter_string="attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], max_results=500, output_format="list"):
        latest.setdefault(run.data.tags.get(KIND, "?"), _run_record(run))
    return list(latest.values())


def run_record(run_id: str) -> dict:
    """One run (e.g. the champion's, when a later run of its kind exists), as latest_runs gives each."""
    use_store()
    return _run_record(mlflow.MlflowClient().get_run(run_id))


def _run_record(run) -> dict:
    """kind, run id and name, start time (ms since the epoch, UTC), tags and metrics of an MLflow run."""
    return {"kind": run.data.tags.get(KIND, "?"), "run_id": run.info.run_id, "run_name": run.info.run_name,
            "start_time": run.info.start_time, "tags": dict(run.data.tags), "metrics": dict(run.data.metrics)}


def require_model(uri: str) -> str:
    """The model URI, checked against the store first so a missing champion is one line, not a trace."""
    from mlflow.exceptions import MlflowException

    use_store()
    try:
        mlflow.models.get_model_info(uri)
    except (MlflowException, OSError) as err:
        raise _cannot_load(uri, err) from None
    return uri


def download_model(uri: str, dest: str) -> Path:
    """A logged model (any MLflow model URI) downloaded into `dest`."""
    from mlflow.exceptions import MlflowException

    use_store()
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dest)).resolve()
    except (MlflowException, OSError) as err:
        raise _cannot_load(uri, err) from None


def _cannot_load(uri: str, err: Exception) -> UserError:
    return UserError(f"cannot load model {uri} from {tracking_uri()}: {str(err).splitlines()[0]} "
                     "(run `make train`, or pass --model)")
