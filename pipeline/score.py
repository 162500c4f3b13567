"""Score: label a file of headlines on Spark with the registered champion (mlflow.pyfunc.spark_udf).

    python -m pipeline.score INPUT OUTPUT [--model URI] [--master local[*]] [--format auto] [--title-column title]
                             [--key COL] [--overwrite]
    make score INPUT=headlines.txt OUTPUT=labels.parquet [MASTER=local[2]]

INPUT is CSV (with a header row), Parquet, JSON Lines or text (one headline per line), told by its extension
(.csv, .parquet/.pq or a folder, .jsonl/.ndjson/.json, anything else: text) or by --format. OUTPUT is a Parquet
folder with one row per input row, in input order: the order key (--key COL, else `row_id`, increasing in input
order), title, label, confidence, scores (a struct of the four topics' probabilities) and error. Every row is
answered by the registered pyfunc, which calls pipeline.predict.predict_titles like the CLI and the server: a
bad row (missing, empty, no Hangul, too long) gets an `error` and null label/scores; no row is dropped.

The model is `models:/headline-topic@champion` from $MLFLOW_TRACKING_URI (default: the repo's mlflow.db) unless
--model names another MLflow model URI. Only the driver reads the registry; spark_udf ships the model to the
executors. On a cluster, run it with spark-submit (or --master spark://HOST:7077, yarn, k8s://...) and change
three things: every executor needs this project's Python environment (the same requirements.txt:
`--archives venv.tar.gz#env --conf spark.pyspark.python=./env/bin/python`, or a venv on a shared path); INPUT and
OUTPUT must be on shared storage (hdfs://, s3a://, a shared mount); and with `--deploy-mode cluster` the driver
runs on the cluster, so MLFLOW_TRACKING_URI must name a tracking server (not the local mlflow.db). For example:

    spark-submit --master yarn --conf spark.pyspark.python=./env/bin/python --archives venv.tar.gz#env \\
        pipeline/score.py hdfs:///news/headlines.parquet hdfs:///news/labels.parquet

Spark needs Java 17+ (`.ci/run` installs a headless JRE where it is missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: make `pipeline` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import TOPICS  # noqa: E402
from pipeline.cli import UserError, run  # noqa: E402

INPUT_FORMATS = ("auto", "csv", "parquet", "json", "text")
SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".ndjson": "json",
            ".json": "json"}
ROW_KEY = "row_id"
PARTITION_BYTES = 8 * 1024 * 1024  # input splits: a 1M-headline text file (~70 MB) gives every core work


def input_format(path: str, requested: str = "auto") -> str:
    """csv, parquet, json or text: --format if given, else by the path's extension (a folder: Parquet)."""
    if requested != "auto":
        return requested
    if "://" not in path and Path(path).is_dir():
        return "parquet"
    return SUFFIXES.get(Path(path).suffix.lower(), "text")


def default_model_uri() -> str:
    from pipeline.names import CHAMPION_URI

    return CHAMPION_URI


def check_paths(source: str, dest: str, overwrite: bool) -> None:
    """Local input must exist and local output must not (unless --overwrite), before Spark starts."""
    if "://" not in source and not Path(source).exists():
        raise UserError(f"input not found: {source}")
    if "://" not in dest and Path(dest).exists() and not overwrite:
        raise UserError(f"output already exists: {dest} (pass --overwrite to replace it)")


def check_parquet(source: str) -> None:
    """A local Parquet input's footers are read before Spark starts: an empty, truncated or foreign file is one
    line naming it, where Spark would print pages of Java stack trace. (Remote inputs are Spark's to read.)"""
    import pyarrow.parquet as pq

    path = Path(source)
    files = [path] if path.is_file() else sorted(
        f for f in path.rglob("*") if f.is_file() and not f.name.startswith(("_", ".")))  # _SUCCESS, .crc
    if not files:
        raise UserError(f"{source}: a Parquet folder with no data files in it")
    for file in files:
        try:
            pq.ParquetFile(file).close()
        except Exception as err:  # pyarrow's own errors (ArrowInvalid, OSError): all mean the same to the user
            size = file.stat().st_size
            reason = "an empty file" if size == 0 else f"{size:,} bytes, {str(err).splitlines()[0]}"
            raise UserError(f"{file}: not a readable Parquet file ({reason}); is it truncated, or another "
                            "format? (--format names the format)") from None


def check_java() -> None:
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise UserError("Spark needs Java 17+ and no `java` was found: install a JRE "
                        "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME")


def spark_session(master: str | None):
    """A SparkSession; a local master binds to 127.0.0.1 with no UI; None: the master spark-submit was given."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run this environment's Python
    builder = (SparkSession.builder.appName("headline-topics-score")
               .config("spark.sql.files.maxPartitionBytes", str(PARTITION_BYTES))
               .config("spark.sql.execution.arrow.pyspark.enabled", "true"))
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        builder = (builder.config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
                   .config("spark.driver.bindAddress", "127.0.0.1"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_headlines(spark, path: str, fmt: str, title_column: str):
    """The input as a DataFrame with its columns; text lines become a `title` column."""
    if fmt == "text":
        return spark.read.text(path).withColumnRenamed("value", title_column)
    if fmt == "csv":
        return spark.read.options(header=True, mode="PERMISSIVE", encoding="UTF-8").csv(path)
    if fmt == "json":
        return spark.read.options(mode="PERMISSIVE").json(path)
    return spark.read.parquet(path)


def label_frame(spark, frame, model_uri: str, title_column: str = "title", key: str | None = None):
    """key, title, label, confidence, scores, error for every row of `frame`, in its order (no shuffle)."""
    from pyspark.sql import functions as F

    from pipeline.serving import spark_predictor

    if title_column not in frame.columns:
        raise UserError(f"input has no column {title_column!r} (columns: {', '.join(frame.columns)}); "
                        "pass --title-column")
    if key is not None and key not in frame.columns:
        raise UserError(f"input has no key column {key!r} (columns: {', '.join(frame.columns)})")
    if key is None:
        key = ROW_KEY
        frame = frame.withColumn(key, F.monotonically_increasing_id())
    predict = spark_predictor(spark, model_uri)
    title = F.col(title_column).cast("string")
    answered = frame.select(F.col(key), title.alias("title"), predict(title).alias("answer"))
    # spark_udf turns a null string of the model's answer into "None"; no label or error is ever that text
    return answered.select(
        key, "title", F.nullif(F.col("answer.label"), F.lit("None")).alias("label"),
        F.col("answer.confidence").alias("confidence"),
        F.struct(*(F.col(f"answer.{t}").alias(t) for t in TOPICS)).alias("scores"),
        F.nullif(F.col("answer.error"), F.lit("None")).alias("error"))


def score_files(spark, source: str, dest: str, model_uri: str, fmt: str = "auto", title_column: str = "title",
                key: str | None = None, overwrite: bool = False) -> tuple[int, int]:
    """Label `source` into the Parquet folder `dest`; returns (rows written, rows with an error)."""
    from pyspark.sql import functions as F

    frame = read_headlines(spark, source, input_format(source, fmt), title_column)
    labeled = label_frame(spark, frame, model_uri, title_column, key)
    labeled.write.mode("overwrite" if overwrite else "errorifexists").parquet(dest)
    counts = spark.read.parquet(dest).agg(F.count(F.lit(1)).alias("n"),
                                          F.count("error").alias("errors")).first()
    return counts["n"], counts["errors"]


def resolve_model(uri: str) -> str:
    """The model URI, checked against the registry first so a missing champion is one line, not a Spark trace."""
    from pipeline.registry import require_model

    return require_model(uri)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.score", description=__doc__.splitlines()[0])
    parser.add_argument("input", help="CSV, Parquet, JSON Lines or text file (or folder) of headlines")
    parser.add_argument("output", help="Parquet folder to write")
    parser.add_argument("--model", metavar="URI", help="MLflow model URI (default: the registered champion)")
    parser.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    parser.add_argument("--format", choices=INPUT_FORMATS, default="auto", help="input format (default: by extension)")
    parser.add_argument("--title-column", default="title", help="column holding the headline (default: title)")
    parser.add_argument("--key", metavar="COL", help=f"input column that orders the rows (default: new {ROW_KEY})")
    parser.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    args = parser.parse_args()
    if not args.input or not args.output:
        raise UserError("give INPUT and OUTPUT (make score INPUT=headlines.txt OUTPUT=labels.parquet)")
    check_paths(args.input, args.output, args.overwrite)
    if "://" not in args.input and input_format(args.input, args.format) == "parquet":
        check_parquet(args.input)
    model_uri = resolve_model(args.model or default_model_uri())
    check_java()
    started = time.perf_counter()
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit started this driver with its --master
    spark = spark_session(args.master or (None if under_submit else "local[*]"))
    try:
        n, errors = score_files(spark, args.input, args.output, model_uri, args.format, args.title_column,
                                args.key, args.overwrite)
    finally:
        spark.stop()
    print(f"wrote {n} rows ({errors} with an error) to {args.output} in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    run(main)
