"""MLflow tracking: the store and the training run's logging (docs/models.md: What a run logs).

Store: $MLFLOW_TRACKING_URI, else SQLite `mlflow.db` at the repo root with artifacts in `mlartifacts/`
beside it; `make ui` opens the UI on it. A run spans the training; every kind logs the same metric
names (pipeline.names). One of the three modules importing mlflow: pipeline.serving holds the pyfunc the run
logs, pipeline.registry the registered versions and every read of runs back.
"""

import contextlib
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

# no "Downloading artifacts" progress bars in training logs
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import REPO_ROOT, TOPICS  # noqa: E402
from pipeline.cli import UserError  # noqa: E402
from pipeline.names import (  # noqa: E402
    CHECKPOINT,
    EXPERIMENT,
    GOLD_FILE,
    GOLD_SOURCE,
    KIND,
    REPORT,
    RULE_COUNTS,
    TRAIN_DATA,
    TUNE,
    metric,
)

# HeadlineTopicPyfunc: a version logged before pipeline.serving existed pickled its pyfunc as this module's
from pipeline.serving import HeadlineTopicPyfunc, log_pyfunc  # noqa: E402, F401

DEFAULT_DB = REPO_ROOT / "mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_DB}"


def artifact_root(uri: str) -> str | None:
    """Artifacts beside a SQLite store (mlartifacts/); None lets a tracking server decide."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


# --- the store: created once, under a lock ------------------------------------------------------------------
# MLflow creates a new SQLite store's tables (and runs its ~60 migrations) on first open, with no lock: two
# processes opening a new mlflow.db at once both migrate, one dies on `duplicate column name`, and an
# interrupted migration leaves `_alembic_tmp_*` tables that wedge the store for every later command.

REPAIR_COMMAND = ".venv/bin/python -m pipeline.tracking repair-store"


def use_store() -> str:
    """The tracking URI, made mlflow's, with its SQLite store complete (created here, once, if new); every
    function below that opens the store comes through here."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        ensure_sqlite_store(Path(uri.removeprefix("sqlite:///")), uri)
    mlflow.set_tracking_uri(uri)
    return uri


@contextlib.contextmanager
def _store_lock(db: Path) -> Iterator[None]:
    """An OS lock on `<db>.lock` beside the store, freed by the OS however its holder ends (kill -9 too)."""
    import fcntl

    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(f"{db.name}.lock"), "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # blocks: a creator holds it for a second or two
        yield


def store_problem(db: Path) -> str | None:
    """None for a complete store; "new" for none yet (no file, or no tables); else why it is half-created."""
    if not db.is_file() or db.stat().st_size == 0:
        return "new"
    import sqlite3

    try:
        with _read_only(db) as conn:
            names = _table_names(conn)
            if not names:
                return "new"
            leftovers = sorted(n for n in names if n.startswith("_alembic_tmp_"))
            if leftovers:
                return f"leftover table {leftovers[0]} from an interrupted migration"
            versions = conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] \
                if "alembic_version" in names else 0
            if versions != 1:
                return "no alembic_version: its creation never finished"
    except sqlite3.DatabaseError as err:  # not SQLite at all, or a hot journal a reader cannot roll back
        return f"not readable as SQLite: {err}"
    return None


def _read_only(db: Path):
    """A read-only connection (closed when done): looking at a store never changes it."""
    import sqlite3

    return contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True))


def _table_names(conn) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def ensure_sqlite_store(db: Path, uri: str) -> None:
    """Create a new store in one step under the lock (a second process waits, then finds it complete); refuse a
    half-created one in one line naming what is wrong and the command that repairs it."""
    if store_problem(db) is None:  # the common case: no lock taken
        return
    with _store_lock(db):
        problem = store_problem(db)
        if problem == "new":
            _create_store(uri)
            problem = store_problem(db)
        if problem is not None:
            raise UserError(f"{db} is a half-created MLflow store ({problem}); repair it with `{REPAIR_COMMAND}` "
                            "(make repair-store)")


def _create_store(uri: str) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(uri, artifact_root(uri)).engine.dispose()  # creates every table, runs every migration


def _store_rows(db: Path) -> int:
    """Runs and registered models in a (half-created) store: what moving it aside would lose."""
    import sqlite3

    try:
        with _read_only(db) as conn:
            names = _table_names(conn)
            return sum(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                       for table in ("runs", "registered_models") if table in names)
    except sqlite3.DatabaseError as err:
        raise UserError(f"{db}: cannot tell what it holds ({err}): not moved; look at it, or move it aside "
                        "yourself") from None


def _migrated_to_head(uri: str) -> bool:
    """Every table there and the schema at MLflow's latest revision: the migration a leftover belonged to ended."""
    import sqlalchemy
    from mlflow.store.db import utils

    engine = sqlalchemy.create_engine(uri)
    try:
        head = utils._get_latest_schema_revision()
        return utils._all_tables_exist(engine) and utils._get_schema_version(engine) == head
    finally:
        engine.dispose()


def _drop_leftovers(db: Path) -> str:
    """Drop the `_alembic_tmp_*` copies of a finished migration (their tables exist; nothing else is touched)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        leftovers = sorted(n for n in _table_names(conn) if n.startswith("_alembic_tmp_"))
        for name in leftovers:
            conn.execute(f'DROP TABLE "{name}"')
        conn.commit()
    return f"dropped {', '.join(leftovers)} from {db} (a finished migration's leftovers; runs and models kept)"


def repair_store() -> str:
    """Repair a half-created store: the `_alembic_tmp_*` leftovers of a migration that did finish are dropped; a
    store holding no run and no model is moved aside (`<db>.half-created-<time>`) and a new one created; one
    that holds any is left alone (its data is worth a person's look), with the way to do it."""
    from datetime import datetime

    uri = tracking_uri()
    if not uri.startswith("sqlite:///"):
        raise UserError(f"{uri} is not a local SQLite store: its server repairs it")
    db = Path(uri.removeprefix("sqlite:///"))
    with _store_lock(db):
        problem = store_problem(db)
        if problem is None:
            return f"{db} is complete: nothing to repair"
        if problem.startswith("leftover") and _migrated_to_head(uri):
            return _drop_leftovers(db)
        if problem != "new":
            if (rows := _store_rows(db)):
                raise UserError(f"{db} is half-created ({problem}) but holds {rows} runs and models: not moved. "
                                f"Back it up, then run `mlflow db upgrade {uri}` (drop any _alembic_tmp_* table "
                                "whose original table still exists first)")
            aside = db.with_name(f"{db.name}.half-created-{datetime.now():%Y%m%d-%H%M%S}")
            os.replace(db, aside)
            for suffix in ("-journal", "-wal", "-shm"):  # SQLite's side files belong to the old store
                if db.with_name(db.name + suffix).exists():
                    os.replace(db.with_name(db.name + suffix), aside.with_name(aside.name + suffix))
        _create_store(uri)
    return f"created a new store at {db}" + (f" (the half-created one is now {aside})" if problem != "new" else "")


# MLflow 3's UI opens an experiment on the page its kind names; without this tag it may guess "GenAI apps" and
# open on a traces overview: this one is "Machine learning", opening on its training runs
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _experiment_id(name: str) -> str:
    """The experiment's id (created if new), tagged as a model-training experiment (older ones too)."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        return mlflow.create_experiment(name, artifact_location=artifact_root(tracking_uri()), tags=EXPERIMENT_KIND)
    for key, value in EXPERIMENT_KIND.items():
        if experiment.tags.get(key) != value:
            mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


UI = "http://127.0.0.1:5000"  # where `make ui` serves


def runs_url(experiment_id: str, base: str = UI) -> str:
    """The UI's link to the experiment's training runs. MLflow 3.17 opens an experiment on the page of the
    browser's GenAI / Model training switch (GenAI, a traces overview, until a person switches), whatever the
    experiment's kind tag says: the link names the workflow."""
    return f"{base}/#/experiments/{experiment_id}?workflowType=machine_learning"


def log_epoch(metrics: dict[str, float], step: int) -> None:
    """The per-epoch logger handed to model code (EpochLog): the UI draws these against step."""
    mlflow.log_metrics(metrics, step=step)


@contextlib.contextmanager
def training_run(experiment: str, kind: str) -> Iterator[str]:
    """Open a run around the whole training (its duration is the real one); MLflow marks it FAILED if
    the block raises and KILLED on Ctrl-C. A run that was killed outright (kill -9, power loss) stays
    RUNNING in the store; the next training run marks it FAILED."""
    import os
    import socket
    from datetime import datetime

    use_store()
    experiment_id = _experiment_id(experiment)
    fail_dead_runs(experiment_id)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{kind}-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}",
                          tags={KIND: kind, "host": socket.gethostname(), "pid": str(os.getpid())}) as active:
        yield active.info.run_id


def fail_dead_runs(experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs started on this host by a process that no longer exists."""
    import os
    import socket

    client, dead = mlflow.MlflowClient(), []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get("host") != socket.gethostname() or not tags.get("pid", "").isdigit():
            continue
        try:
            os.kill(int(tags["pid"]), 0)
        except ProcessLookupError:
            client.set_terminated(run.info.run_id, "FAILED")
            dead.append(run.info.run_id)
        except PermissionError:  # alive, someone else's
            pass
    return dead


def _confusion_figure(matrix: list[list[int]], title: str, normalise: bool = False):
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay

    counts = np.asarray(matrix, dtype=float)
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalise else counts.astype(int)
    display = ConfusionMatrixDisplay(shown, display_labels=TOPICS).plot(
        cmap="Blues", colorbar=False, xticks_rotation=30, values_format=".2f" if normalise else "d")
    display.ax_.set_title(title)
    display.figure_.tight_layout()
    return display.figure_


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


def log_result(result, model_dir: Path) -> str:
    """Log a pipeline.train.TrainResult into the active run, with the model directory as a pyfunc
    (not registered: `register` does that); returns the logged model's URI."""
    import matplotlib.pyplot as plt

    kind = result.model.kind
    params = pd.json_normalize({k: v for k, v in result.configs.items() if k != "labels"}).iloc[0]
    mlflow.log_params({k: str(v)[:500] for k, v in params.items() if len(k) <= 250})
    for name, cfg in result.configs.items():
        mlflow.log_dict(cfg, f"config/{name}.json")
    _log_datasets(result)
    mlflow.set_tags({TRAIN_DATA: result.data_info["train_data_sha256"],
                     CHECKPOINT: str(result.model.info.get("checkpoint", "none"))})
    mlflow.log_metrics(result.metrics)
    mlflow.log_metrics({metric(RULE_COUNTS, re.sub(r"[^\w.\- ]", "_", rule)): float(n)
                        for rule, n in result.label_counts.items()})
    mlflow.log_dict(result.label_counts, "labels/rule_counts.json")
    if result.function_stats:
        mlflow.log_table(pd.DataFrame(result.function_stats), "labels/labeling_functions.json")
    if result.label_issues:
        mlflow.log_table(pd.DataFrame(result.label_issues), "labels/label_issues.json")
    for split, evaluation in result.evaluations.items():
        if split.startswith(f"{GOLD_SOURCE}/"):  # figures for the whole and each file; sources are in the metrics
            continue
        figures = (
            (_confusion_figure(evaluation.confusion, f"{kind}: {split} confusion"), "confusion_matrix"),
            (_confusion_figure(evaluation.confusion, f"{kind}: {split} confusion (row-normalised)", normalise=True),
             "confusion_matrix_normalised"),
            (_reliability_figure(evaluation.reliability, f"{kind}: {split} reliability"), "reliability"),
        )
        for fig, name in figures:
            mlflow.log_figure(fig, f"plots/{split.replace('/', '_')}_{name}.png")
            plt.close(fig)
    mlflow.log_dict({"calibration": result.model.calibration, "abstain_threshold": result.model.threshold,
                     "other_threshold": result.model.other_threshold},
                    "calibration.json")
    mlflow.set_tag("calibration_method", result.model.calibration["method"] if result.model.calibration else "none")
    for split in (TUNE, REPORT):
        if split in result.evaluations:
            errors = result.evaluations[split].errors
            mlflow.log_table(pd.DataFrame(errors, columns=["title", "label", "predicted", "confidence"]),
                             f"{split}_misclassified.json")
    return log_pyfunc(model_dir, kind)


def _log_datasets(result) -> None:
    """The training table (train + validation rows) and each gold part as MLflow dataset inputs, with
    digests, so the UI's Dataset column says what a run learned from and was scored on."""
    import mlflow.data

    warnings.filterwarnings("ignore", "The specified dataset source can be interpreted", UserWarning)
    data = result.configs.get("data", {})
    table = pd.DataFrame(result.rows, columns=["key", "title", "label", "confidence"])
    mlflow.log_input(mlflow.data.from_pandas(table, source=data.get("labeled_csv", "labeled.csv"), name="labeled",
                                             targets="label"), context="training")
    for split, evaluation in result.evaluations.items():
        if split in (TUNE, REPORT) or split.startswith(f"{GOLD_FILE}/"):
            gold = pd.DataFrame({"title": evaluation.scope_titles, "label": evaluation.truth})
            source = data.get("annotations_tsv") if split == TUNE else ",".join(data.get("gold_tsvs") or ["gold"])
            mlflow.log_input(mlflow.data.from_pandas(gold, source=str(source), name=split, targets="label"),
                             context="tuning" if split == TUNE else "evaluation")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.tracking", description="the project's MLflow store")
    parser.add_argument("command", choices=["repair-store", "runs-url"],
                        help="repair-store: move a half-created store (no runs, no models in it) aside and create a "
                             "new one; runs-url: the UI's link to the experiment's training runs")
    parser.add_argument("--experiment", default=EXPERIMENT, help="runs-url: the experiment")
    args = parser.parse_args()
    if args.command == "runs-url":
        use_store()
        print(runs_url(_experiment_id(args.experiment)))
    else:
        print(repair_store())


if __name__ == "__main__":
    from pipeline.cli import run

    run(main)
