"""MLflow tracking: the only module that imports mlflow (docs/models.md: What a run logs).

Store: $MLFLOW_TRACKING_URI, else SQLite `mlflow.db` at the repo root with artifacts in `mlartifacts/`
beside it; `make ui` opens the UI on it. A run spans the training; every kind logs the same metric
names, and the model is registered under one name, `headline-topic`, the kind as a version tag.
"""

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

# no "Downloading artifacts" progress bars in training logs
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import REPO_ROOT, TOPICS
from pipeline.cli import UserError

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


MODEL_NAME = "headline-topic"  # one registered model: every kind's versions, told apart by the model_kind tag
CHAMPION = "champion"  # an alias of that one model, so exactly one version holds it


def _experiment_id(name: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_root(tracking_uri()))


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
                          tags={"model_kind": kind, "host": socket.gethostname(), "pid": str(os.getpid())}) as active:
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


OUTPUT_COLUMNS = ("title", "label", "confidence", *TOPICS, "error")  # one row per input title, in order
EXAMPLE_TITLES = ["[속보] 경찰, 강도 살인 피의자 구속영장 신청", "코스피 2700선 회복…외국인 순매수"]


def model_signature() -> "mlflow.models.ModelSignature":
    """Input: one string column `title`; output: the answer's columns (null where a row has an error)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("string", "title")]),
        outputs=Schema([ColSpec("string", "title", required=False), ColSpec("string", "label", required=False),
                        ColSpec("double", "confidence", required=False),
                        *(ColSpec("double", t, required=False) for t in TOPICS),
                        ColSpec("string", "error", required=False)]),
    )


def _input_cells(model_input) -> list:
    """The title cells of any input the server, Spark or a caller hands over: a DataFrame (its `title`
    column, else its first), a dict of columns, a Series, an array (first column if 2-D), a list or one string."""
    import numpy as np

    if isinstance(model_input, pd.DataFrame):
        if "title" in model_input.columns:
            cells = model_input["title"].tolist()
        else:
            cells = model_input.iloc[:, 0].tolist() if model_input.shape[1] else []
        # MLflow's signature check turns a dict of lists ({"title": [a, b]}) into ONE row holding the list
        if len(cells) == 1 and isinstance(cells[0], (list, tuple, np.ndarray)):
            return list(cells[0])
        return cells
    if isinstance(model_input, dict):
        return _input_cells(model_input["title"] if "title" in model_input else next(iter(model_input.values()), []))
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, np.ndarray):
        return (model_input[:, 0] if model_input.ndim == 2 else model_input.ravel()).tolist()
    return list(model_input)


# A cell MLflow's request parsing would mangle (a number becomes its digits) or refuse with the whole request
# (a lone surrogate: pandas' Arrow strings cannot hold one) is sent by pipeline.serve as this marker and its
# problem; the pyfunc answers it as that row's error. NUL never starts a headline.
PROBLEM_MARK = "\x00row-problem: "


def problem_cell(problem: str) -> str:
    return PROBLEM_MARK + problem


def wire_cell(cell):
    """A title cell as pipeline.serve hands it to MLflow: a valid string or null as it is, else its problem."""
    from pipeline.text import title_problem

    if cell is None or (isinstance(cell, float) and cell != cell):
        return None
    if not isinstance(cell, str):
        return problem_cell(_cell_problem(cell))
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        return problem_cell(title_problem(cell) or "title is not valid UTF-8 text")
    return cell


def _cell_problem(cell) -> str | None:
    """Why a cell is not a title string at all (None, NaN, a number), or None for a string."""
    if isinstance(cell, str):
        return cell.removeprefix(PROBLEM_MARK) if cell.startswith(PROBLEM_MARK) else None
    if cell is None or (isinstance(cell, float) and cell != cell) or cell is pd.NA:
        return "missing title"
    return f"title is not text (got {type(cell).__name__})"


ANSWER_SLICE = 2048  # titles handed to the model at once


def answer_frame(model, model_input, abstain: bool = True) -> pd.DataFrame:
    """pipeline.predict.predict_titles (the one function that decides, as for the CLI) over the input's title
    cells, flattened to OUTPUT_COLUMNS. Object columns, so a null is None (JSON null from the server)."""
    from pipeline.predict import predict_titles

    cells = _input_cells(model_input)
    problems = [_cell_problem(c) for c in cells]
    titles = [c for c, p in zip(cells, problems, strict=True) if p is None]
    # in slices, as predict --input reads its batches: a model's working memory grows with the rows it is given
    # at once (TF-IDF: ~200 MB for 10,000 rows), and the server answers requests of up to 10,000
    answers = (answer for start in range(0, len(titles), ANSWER_SLICE)
               for answer in predict_titles(model, titles[start:start + ANSWER_SLICE], abstain))
    rows = []
    for problem in problems:
        answer = next(answers) if problem is None else {"title": None, "error": problem}
        scores = answer.get("scores") or {}
        confidence = answer.get("confidence")
        rows.append([answer["title"], answer.get("label"), None if confidence is None else float(confidence),
                     *(float(scores[t]) if t in scores else None for t in TOPICS), answer.get("error")])
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS), dtype=object)


class HeadlineTopicPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: titles -> title, label, confidence, the four topics' scores, error (see answer_frame).

    The same answer as `python -m pipeline.predict` for the same headline: both call predict_titles, which
    abstains (`other`) and rejects bad titles; a bad row gets an `error`, never an exception."""

    def load_context(self, context):
        from pipeline.models import load_model

        self.model = load_model(context.artifacts["model_dir"])

    # a DataFrame hint: mlflow takes the explicit signature logged with the model instead of inferring one
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return answer_frame(self.model, model_input)


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


def _pip_requirements(kind: str) -> list[str]:
    from importlib.metadata import version

    packages = ["numpy", "pandas", "pydantic", "kiwipiepy", "kiwipiepy-model"]  # what loading a model imports
    if kind != "tfidf":
        packages += ["onnxruntime", "tokenizers"]
    return [f"{p}=={version(p)}" for p in packages]


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
    mlflow.set_tags({"train_data_sha256": result.data_info["train_data_sha256"],
                     "checkpoint": str(result.model.info.get("checkpoint", "none"))})
    mlflow.log_metrics(result.metrics)
    mlflow.log_metrics({re.sub(r"[^\w.\- /]", "_", f"label_count_{rule}"): float(n)
                        for rule, n in result.label_counts.items()})
    mlflow.log_dict(result.label_counts, "labels/rule_counts.json")
    if result.function_stats:
        mlflow.log_table(pd.DataFrame(result.function_stats), "labels/labeling_functions.json")
    if result.label_issues:
        mlflow.log_table(pd.DataFrame(result.label_issues), "labels/label_issues.json")
    for split, evaluation in result.evaluations.items():
        if split.startswith("gold_source_"):  # figures for the whole and each file; sources are in the metrics
            continue
        figures = (
            (_confusion_figure(evaluation.confusion, f"{kind}: {split} confusion"), "confusion_matrix"),
            (_confusion_figure(evaluation.confusion, f"{kind}: {split} confusion (row-normalised)", normalise=True),
             "confusion_matrix_normalised"),
            (_reliability_figure(evaluation.reliability, f"{kind}: {split} reliability"), "reliability"),
        )
        for fig, name in figures:
            mlflow.log_figure(fig, f"plots/{split}_{name}.png")
            plt.close(fig)
    mlflow.log_dict({"calibration": result.model.calibration, "abstain_threshold": result.model.threshold,
                     "other_threshold": result.model.other_threshold},
                    "calibration.json")
    mlflow.set_tag("calibration_method", result.model.calibration["method"] if result.model.calibration else "none")
    for split in ("tune", "gold_report"):
        if split in result.evaluations:
            errors = result.evaluations[split].errors
            mlflow.log_table(pd.DataFrame(errors, columns=["title", "label", "predicted", "confidence"]),
                             f"{split}_misclassified.json")
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
                signature=model_signature(),
                input_example=pd.DataFrame({"title": EXAMPLE_TITLES}),
            )
    finally:
        pyfunc_logger.setLevel(level)
    return info.model_uri


def register(result, model_uri: str, model_dir: Path) -> None:
    """A new version of the registered model, tagged for `promote`: called once the model is in place."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        version = mlflow.register_model(model_uri, MODEL_NAME)
    _tag_version(version.version, result, model_dir)


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
        if split == "tune" or split == "gold_report" or split.startswith("gold_file_"):
            gold = pd.DataFrame({"title": evaluation.scope_titles, "label": evaluation.truth})
            source = data.get("annotations_tsv") if split == "tune" else ",".join(data.get("gold_tsvs") or ["gold"])
            mlflow.log_input(mlflow.data.from_pandas(gold, source=str(source), name=split, targets="label"),
                             context="tuning" if split == "tune" else "evaluation")


def _tag_version(version, result, model_dir: Path) -> None:
    """Gold report metrics, size and speed on the registered version: what champion selection reads, with
    the report part's answers (one letter per item) so promote can pair two versions on the same items."""
    from pipeline.gold import encode, encode_sources, items_digest

    client = mlflow.MlflowClient()
    tags = {k: f"{v:.6f}" for k, v in result.metrics.items()
            if k.startswith("gold_report_") and "other_as" not in k}
    tags.update({k: f"{v:.6f}" for k, v in result.metrics.items()
                 if k.startswith(("gold_file_", "gold_source_"))
                 and k.endswith(("macro_f1", "macro_f1_lo", "macro_f1_hi"))})
    tags.update({k: f"{result.metrics[k]:.6f}" for k in ("tune_macro_f1", "tune_f1_crime") if k in result.metrics})
    report = result.evaluations.get("gold_report")
    if report is not None:
        tags.update({"gold_report_items": items_digest(report.scope_titles), "gold_report_truth": encode(report.truth),
                     "gold_report_answers": encode(report.forced), **encode_sources(result.report_sources)})
    size = sum(f.stat().st_size for f in model_dir.rglob("*") if f.is_file())
    tags.update({"model_kind": result.model.kind, "model_bytes": str(size),
                 "headlines_per_second": f"{result.metrics.get('val_headlines_per_second', 0.0):.1f}",
                 "checkpoint": str(result.model.info.get("checkpoint", "none"))})
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, str(version), key, value)


# --- registry: champion and comparison (used by pipeline.promote and pipeline.compare) -----------------

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
        latest.setdefault(run.data.tags.get("model_kind", "?"), _run_record(run))
    return list(latest.values())


def run_record(run_id: str) -> dict:
    """One run (e.g. the champion's, when a later run of its kind exists), as latest_runs gives each."""
    use_store()
    return _run_record(mlflow.MlflowClient().get_run(run_id))


def _run_record(run) -> dict:
    """kind, run id and name, start time (ms since the epoch, UTC), tags and metrics of an MLflow run."""
    return {"kind": run.data.tags.get("model_kind", "?"), "run_id": run.info.run_id, "run_name": run.info.run_name,
            "start_time": run.info.start_time, "tags": dict(run.data.tags), "metrics": dict(run.data.metrics)}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.tracking", description="the project's MLflow store")
    parser.add_argument("command", choices=["repair-store"],
                        help="move a half-created store (no runs, no models in it) aside and create a new one")
    parser.parse_args()
    print(repair_store())


if __name__ == "__main__":
    from pipeline.cli import run

    run(main)
