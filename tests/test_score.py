"""Batch scoring on Spark (`python -m pipeline.score`, `make score`) with the champion of a temporary store.

    .venv/bin/python -m pytest -q tests/test_score.py

Runs Spark on local[2], bound to 127.0.0.1 with no UI, over small fixture files (CSV, text, JSON Lines,
Parquet). Skipped only where no `java` is found (Spark needs Java 17+; `.ci/run` installs a headless JRE).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from pipeline import TOPICS
from pipeline.predict import predict_titles

pytestmark = pytest.mark.skipif(shutil.which("java") is None,
                                reason="Spark needs Java 17+ and no `java` is on PATH (.ci/run installs one)")

TITLES = ["[속보] 경찰, 강도 살인 피의자 구속영장 신청", "", "코스피 2700선 회복…외국인 순매수", "hello world",
          "프로야구 두산, 연장 끝에 LG에 역전승", "가" * 501, "여야 원내대표 민생 예산안 협상 결렬", "서울 벚꽃축제 주말 개막"]


@pytest.fixture(scope="module")
def champion(two_kind_store):
    from pipeline.models import load_model
    from pipeline.promote import promote

    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{two_kind_store['tmp']}/mlflow.db")
    promote(models_dir=two_kind_store["models_dir"])
    yield {"uri": os.environ["MLFLOW_TRACKING_URI"], "model": load_model(two_kind_store["models_dir"] / "current")}
    mp.undo()


@pytest.fixture(scope="module")
def spark(champion):
    from pipeline.score import spark_session

    session = spark_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


def check(output, model, titles: list[str | None], key: str = "row_id") -> pd.DataFrame:
    """The Parquet output: one row per input row, in input order, each the CLI's answer or an error."""
    frame = pd.read_parquet(output)
    assert list(frame.columns) == [key, "title", "label", "confidence", "scores", "error"]
    assert len(frame) == len(titles)
    assert frame[key].is_monotonic_increasing  # files and rows in input order, and the key says so
    assert [None if pd.isna(t) else t for t in frame["title"]] == titles
    valid = [t for t in titles if isinstance(t, str)]
    answers = iter(predict_titles(model, valid))
    for row, title in zip(frame.itertuples(), titles, strict=True):
        want = next(answers) if isinstance(title, str) else {"label": None, "error": "missing title"}
        if want.get("error"):
            assert row.error == want["error"] and pd.isna(row.label) and pd.isna(row.confidence)
            assert row.scores is None or all(pd.isna(row.scores[t]) for t in TOPICS)
        else:
            assert pd.isna(row.error) and row.label == want["label"]  # a null string reads back as NaN
            assert row.confidence == pytest.approx(want["confidence"])
            assert {t: row.scores[t] for t in TOPICS} == pytest.approx(want["scores"])
    return frame


def test_text_lines_keep_their_order_and_bad_lines_get_an_error(spark, champion, tmp_path):
    from pipeline.score import default_model_uri, score_files

    source = tmp_path / "headlines.txt"
    source.write_text("".join(f"{t}\n" for t in TITLES), encoding="utf-8")
    n, errors = score_files(spark, str(source), str(tmp_path / "out"), default_model_uri())
    assert (n, errors) == (len(TITLES), 3)
    check(tmp_path / "out", champion["model"], TITLES)


def test_json_lines_and_parquet_keep_an_existing_key(spark, champion, tmp_path):
    from pipeline.score import default_model_uri, score_files

    lines = [json.dumps({"id": i, "title": t}, ensure_ascii=False) for i, t in enumerate(TITLES)]
    lines.insert(2, json.dumps({"id": 100}))  # no title: an error row, not dropped
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    n, _ = score_files(spark, str(tmp_path / "in.jsonl"), str(tmp_path / "json_out"), default_model_uri(), key="id")
    assert n == len(TITLES) + 1
    frame = pd.read_parquet(tmp_path / "json_out")
    assert list(frame["id"]) == [0, 1, 100, *range(2, len(TITLES))]
    assert frame.loc[2, "error"] == "missing title"

    pd.DataFrame({"id": range(len(TITLES)), "title": TITLES}).to_parquet(tmp_path / "in.parquet")
    score_files(spark, str(tmp_path / "in.parquet"), str(tmp_path / "pq_out"), default_model_uri(), key="id")
    check(tmp_path / "pq_out", champion["model"], TITLES, key="id")


def test_the_command_scores_a_csv_on_local_2(champion, tmp_path):
    source = tmp_path / "headlines.csv"
    pd.DataFrame({"title": TITLES, "section": "x"}).to_csv(source, index=False)
    out = subprocess.run([sys.executable, "-m", "pipeline.score", str(source), str(tmp_path / "out"),
                          "--master", "local[2]"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"wrote {len(TITLES)} rows (3 with an error)" in out.stderr  # CSV: the empty title is a null
    check(tmp_path / "out", champion["model"], [None if t == "" else t for t in TITLES])


def test_the_command_says_what_is_wrong_in_one_line(champion, tmp_path):
    (tmp_path / "exists").mkdir()
    source = tmp_path / "in.txt"
    source.write_text(TITLES[0] + "\n", encoding="utf-8")
    cases = [([str(tmp_path / "missing.txt"), str(tmp_path / "o")], "input not found"),
             ([str(source), str(tmp_path / "exists")], "output already exists"),
             ([str(source), str(tmp_path / "o"), "--model", "models:/no-such-model@champion"], "cannot load model")]
    for args, message in cases:
        out = subprocess.run([sys.executable, "-m", "pipeline.score", *args], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
