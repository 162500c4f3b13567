"""The serving pyfunc: what `mlflow models serve`, pipeline.serve and Spark (pipeline.score) answer with.

`HeadlineTopicPyfunc` wraps a model directory; `answer_frame` is the function behind it (title cells of any
shape in, OUTPUT_COLUMNS out, one row per cell, a bad cell an error row). `log_pyfunc` logs a model directory
as this pyfunc with its code (`code_paths`: the pipeline package), pinned requirements, signature and example;
`scoring_app` and `spark_predictor` load a logged one for the server and for Spark. One of the three modules
importing mlflow, with pipeline.tracking (store, run logging) and pipeline.registry (registered versions).
"""

import logging
import os
import warnings

# no "Downloading artifacts" progress bars in logs
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import REPO_ROOT, TOPICS  # noqa: E402

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



def _pip_requirements(kind: str) -> list[str]:
    from importlib.metadata import version

    packages = ["numpy", "pandas", "pydantic", "kiwipiepy", "kiwipiepy-model"]  # what loading a model imports
    if kind != "tfidf":
        packages += ["onnxruntime", "tokenizers"]
    return [f"{p}=={version(p)}" for p in packages]


def log_pyfunc(model_dir, kind: str) -> str:
    """Log `model_dir` into the active run as this pyfunc (not registered); returns the logged model's URI."""
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


def scoring_app(model_path: str):
    """MLflow's scoring server app (/ping, /health, /version, /invocations) on a downloaded pyfunc."""
    from mlflow.pyfunc import scoring_server

    return scoring_server.init(scoring_server.load_model_with_mlflow_config(model_path))


def spark_predictor(spark, model_uri: str):
    """The model as a Spark UDF (the executors load it; this environment, no new one)."""
    return mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local")
