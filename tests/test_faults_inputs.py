"""Strict inputs (#13): a malformed training file stops with one line naming file, line and reason before
anything trains; `predict --input` answers every input line, even one that is not UTF-8; a closed pipe ends
quietly. No data row is lost silently."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import REPO_ROOT
from pipeline.cli import UserError
from pipeline.config import DataConfig, TfidfConfig, load_config
from pipeline.gold import read_gold
from pipeline.ingest import HEADLINE_COLUMNS, read_listing_csv
from pipeline.io import read_csv, read_csv_numbered, write_csv
from pipeline.models.tfidf import TfidfModel
from pipeline.predict import rounded_scores
from tests.conftest import make_ynat_rows

HEADER = "title,section,listed_on,site\n"
TOPIC = {"정치": "politics", "경제": "business", "스포츠": "sports", "사회": "crime"}


def listing_row(i: int) -> str:
    return f"경찰 절도 피의자 {i}명 검거,Society,2026-06-05,news.example\n"


def cli(module: str, *args, env: dict | None = None, stdin: bytes | None = None,
        python: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *python, "-m", module, *map(str, args)], cwd=REPO_ROOT, input=stdin,
                          capture_output=True, timeout=120, env={**os.environ, **(env or {})})


def one_line_error(proc: subprocess.CompletedProcess, starts: str) -> str:
    """The command failed with exit 2 and exactly one stderr line (no traceback) that starts with `starts`."""
    err = proc.stderr.decode("utf-8")
    assert proc.returncode == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"error: {starts}"), err
    return err


# --- strict CSV/TSV --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail, ends", [
    # the quote closes nine rows later, where a quoted title begins: today's csv reader glued rows 3-12 into one
    (['"반도체 호황" 삼성전자 실적 기대,Economic,2026-06-05,news.example\n'], "line 12"),
    ([], "the end of the file"),  # never closed: everything after it became one title
])
def test_listing_with_an_unclosed_quote_names_the_line_it_opens_on(tmp_path, tail, ends):
    path = tmp_path / "naver.csv"
    rows = [listing_row(1), '"경찰, 사기 피의자 구속,Society,2026-06-05,news.example\n',
            *[listing_row(i) for i in range(2, 10)], *tail]
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{path}:3: a quote left open here runs on to {ends}"):
        read_listing_csv(path)


@pytest.mark.parametrize("line, message", [
    ("경찰, 절도 피의자 체포, 구속,Society,2026-06-05,news.example\n", "6 fields where the header has 4 (an unquoted"),
    ("경찰 절도 피의자 체포,Society\n", "2 fields where the header has 4"),
    ('"경찰 "절도" 피의자",Society,2026-06-05,news.example\n', "bad quoting"),
    ('"경찰 절도\n피의자 체포",Society,2026-06-05,news.example\n', "a quoted field opened here runs on to line 4"),
])
def test_a_bad_row_is_one_error_naming_file_line_and_reason(tmp_path, line, message):
    path = tmp_path / "listing.csv"
    path.write_text(HEADER + listing_row(1) + line + listing_row(2), encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{path}:3: ") as err:
        read_csv(path, required=("title",))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_well_formed_files_keep_every_row_and_their_line_numbers(tmp_path):
    path = tmp_path / "ok.csv"
    text = ('\ufefftitle,section\r\n"경찰, 체포",Society\r\n\r\n"""반도체 호황"" 기대",Economic\r\n'
            '경찰 "절도" 피의자,Society\r\n,\r\n')
    path.write_text(text, encoding="utf-8", newline="")
    rows = read_csv_numbered(path, required=("title", "section"))
    assert rows == [(2, {"title": "경찰, 체포", "section": "Society"}),
                    (4, {"title": '"반도체 호황" 기대', "section": "Economic"}),
                    (5, {"title": '경찰 "절도" 피의자', "section": "Society"}),
                    (6, {"title": "", "section": ""})]
    assert read_csv(path) == [row for _, row in rows]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "cp949.csv"
    path.write_bytes(HEADER.encode() + listing_row(1).encode() + listing_row(2).encode("cp949"))
    with pytest.raises(UserError, match=rf"^{path}:3: not UTF-8 \(byte 0x"):
        read_csv(path)


def test_csv_written_by_the_pipeline_reads_back_row_for_row(tmp_path):
    rows = [{"title": t, "section": s} for t, s in [('"따옴표" 제목, 쉼표', "a"), ("", ""), ("탭\t제목", "b")]]
    write_csv(tmp_path / "t.csv", ("title", "section"), rows)
    assert read_csv(tmp_path / "t.csv") == rows


def data_folder(root: Path, ynat_rows: list[str] | None = None, listing: str | None = None) -> Path:
    """A data folder with a YNAT CSV (fixture rows, then `ynat_rows` as raw lines) and maybe one listing CSV."""
    (root / "ynat").mkdir(parents=True)
    rows = make_ynat_rows(per_template=2)
    with (root / "ynat" / "ynat_train.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        fh.writelines(ynat_rows or [])
    if listing is not None:
        (root / "listings").mkdir()
        (root / "listings" / "naver.csv").write_text(listing, encoding="utf-8")
    return root


def ingest_cli(data: Path, tmp_path: Path, python: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    config = tmp_path / "data.yaml"
    config.write_text(f"headlines_csv: {tmp_path / 'out' / 'headlines.csv'}\n", encoding="utf-8")
    return cli("pipeline.ingest", "--config", config, env={"HEADLINE_DATA_DIR": str(data)}, python=python)


def test_ingest_of_a_listing_with_an_unclosed_quote_stops_naming_the_line(tmp_path):
    listing = HEADER + listing_row(1) + '"경찰, 사기 피의자 구속,Society,2026-06-05,news.example\n' + "".join(
        listing_row(i) for i in range(2, 11))
    data = data_folder(tmp_path / "data", listing=listing)
    proc = ingest_cli(data, tmp_path)
    one_line_error(proc, f"{data / 'listings' / 'naver.csv'}:3: a quote left open here runs on to")
    assert not (tmp_path / "out" / "headlines.csv").exists()


def test_ingest_of_a_ynat_csv_with_a_bad_row_is_one_line_before_datasets_loads(tmp_path):
    n = len(make_ynat_rows(per_template=2))
    data = data_folder(tmp_path / "data", ynat_rows=["fx-bad,경찰, 절도범 검거,사회,사회,,\n"])
    proc = ingest_cli(data, tmp_path, python=("-X", "importtime"))
    stderr = proc.stderr.decode("utf-8").splitlines()
    imported = {line.split("|")[-1].strip().split(".")[0] for line in stderr if line.startswith("import time:")}
    messages = [line for line in stderr if not line.startswith("import time:")]
    assert proc.returncode == 2 and "datasets" not in imported
    assert messages == [f"error: {data / 'ynat' / 'ynat_train.csv'}:{n + 2}: 7 fields where the header has 6 "
                        "(an unquoted delimiter inside a field?)"]
    assert not (tmp_path / "out" / "headlines.csv").exists()


def test_a_valid_ynat_csv_still_ingests_every_row(tmp_path):
    data = data_folder(tmp_path / "data")
    proc = ingest_cli(data, tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    table = read_csv(tmp_path / "out" / "headlines.csv", required=HEADLINE_COLUMNS)
    assert sum(int(r["n_seen"]) for r in table) == len(make_ynat_rows(per_template=2))


# --- gold --------------------------------------------------------------------------------------------------


def gold_folder(root: Path, text: str) -> Path:
    (root / "gold").mkdir(parents=True)
    (root / "gold" / "dev.tsv").write_text(text, encoding="utf-8")
    return root


def test_unknown_gold_label_names_its_real_line_after_a_blank_one(tmp_path, monkeypatch):
    root = gold_folder(tmp_path, "title\tlabel\n국회 통과\tpolitics\n\n경찰 체포\tcrimes\n")
    monkeypatch.setenv("HEADLINE_DATA_DIR", str(root))
    with pytest.raises(UserError, match=r"dev.tsv:4: unknown label 'crimes'"):
        read_gold(load_config(DataConfig))


def test_gold_row_with_a_missing_field_names_its_line(tmp_path, monkeypatch):
    root = gold_folder(tmp_path, "title\tlabel\n국회 통과\tpolitics\n경찰 체포 crime\n")
    monkeypatch.setenv("HEADLINE_DATA_DIR", str(root))
    with pytest.raises(UserError, match=r"dev.tsv:3: 1 fields where the header has 2"):
        read_gold(load_config(DataConfig))


def test_label_stage_stops_on_an_unknown_gold_label_before_labeling(tmp_path):
    """The scenario of #13: the label stage used to pass and training failed later with a KeyError."""
    root = gold_folder(tmp_path / "data", "title\tlabel\tsource\n국회 통과\tpolitics\tx\n경찰 체포\tcrimes\tx\n")
    headlines = tmp_path / "headlines.csv"
    write_csv(headlines, HEADLINE_COLUMNS, [{"title": "코스피 회복", "text": "코스피 회복", "tags": "", "key": "코스피회복",
                                    "source": "ynat", "source_file": "y.csv", "section": "경제", "n_seen": 1}])
    config = tmp_path / "data.yaml"
    config.write_text(f"headlines_csv: {headlines}\nlabeled_csv: {tmp_path / 'labeled.csv'}\n"
                      f"manual_labels_csv: {tmp_path / 'manual.csv'}\n", encoding="utf-8")
    proc = cli("pipeline.label", "--data", config, env={"HEADLINE_DATA_DIR": str(root)})
    one_line_error(proc, f"{root / 'gold' / 'dev.tsv'}:3: unknown label 'crimes'")
    assert not (tmp_path / "labeled.csv").exists()


# --- predict --input -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small TF-IDF model saved the way training saves one."""
    rows = make_ynat_rows()
    model = TfidfModel(TfidfConfig(min_df=1, subword_vocab=300))
    model.fit([r["title"] for r in rows], [TOPIC.get(r["label"], "other") for r in rows], seed=3)
    path = tmp_path_factory.mktemp("model") / "tfidf"
    model.save(path)
    return path


def headlines(n: int) -> list[str]:
    titles = [r["title"] for r in make_ynat_rows()]
    return [titles[i % len(titles)] for i in range(n)]


def test_a_bad_byte_on_line_1000_of_1500_costs_that_line_only(model_dir, tmp_path):
    lines = [t.encode("utf-8") for t in headlines(1500)]
    lines[999] = "경찰, 절도 피의자 ".encode() + b"\xff\xfe" + "체포".encode()
    source = tmp_path / "in.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")
    proc = cli("pipeline.predict", "--model", model_dir, "--input", source)
    assert proc.returncode == 0, proc.stderr.decode()
    out = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert len(out) == 1500
    assert out[999]["error"] == "line 1000: not valid UTF-8 (byte 0xff at column 26)" and out[999]["label"] is None
    assert all(o["label"] is not None for i, o in enumerate(out) if i != 999)
    assert [o["title"] for o in out[:999] + out[1000:]] == headlines(1500)[:999] + headlines(1500)[1000:]
    assert "1 of 1500 lines could not be classified" in proc.stderr.decode()


def test_stdin_lines_are_counted_one_to_one(model_dir):
    data = "코스피 2800선 회복\r\n\n".encode() + b"\xc3\n" + "\ufeff프로야구 LG 역전승".encode()  # no final newline
    proc = cli("pipeline.predict", "--model", model_dir, "--input", "-", stdin="\ufeff".encode() + data)
    out = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert [o["title"] for o in out] == ["코스피 2800선 회복", "", None, "\ufeff프로야구 LG 역전승"]
    assert out[0]["label"] == "business" and "empty" in out[1]["error"] and out[2]["error"].startswith("line 3:")


def test_rounded_scores_never_sum_over_one():
    scores = np.array([[0.20006, 0.20006, 0.20006, 0.39977], [0.5, 0.25, 0.125, 0.0625]])  # `other` 0.00005
    assert np.round(scores, 4)[0].sum() > 1.00005  # what plain rounding gave
    rounded = rounded_scores(scores)
    assert (rounded.sum(axis=1) <= 1 + 1e-12).all() and np.abs(rounded - scores).max() <= 2.5e-4
    assert rounded[1].tolist() == [0.5, 0.25, 0.125, 0.0625]


def test_an_empty_input_writes_nothing(model_dir, tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    proc = cli("pipeline.predict", "--model", model_dir, "--input", tmp_path / "empty.txt")
    assert proc.returncode == 0 and proc.stdout == b""


def test_a_reader_that_stops_early_ends_predict_quietly(model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(headlines(20_000)) + "\n", encoding="utf-8")
    command = (f"set -o pipefail; {sys.executable} -m pipeline.predict --model {model_dir} --input {source} "
               "| head -1")
    proc = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert len(proc.stdout.splitlines()) == 1 and json.loads(proc.stdout)["label"]
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
    assert proc.returncode == 141  # the shell's code for a writer ended by a closed pipe, as for `yes | head -1`


# --- one line, exit 2, wherever the command's own input or output fails (#21) ---------------------------------

def shell(command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """A command line run by bash, for redirections Python's subprocess cannot express (`0<&-`, `> /dev/full`)."""
    return subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, capture_output=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("args", [["--json", "코스피 2800선 회복"], ["--input", "{source}"]])
def test_predict_to_a_full_disk_is_one_line(model_dir, tmp_path, args):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(headlines(20_000)) + "\n", encoding="utf-8")  # more than one write buffer
    line = " ".join(a.format(source=source) if a.startswith("{") else f"'{a}'" for a in args)
    proc = shell(f"{sys.executable} -m pipeline.predict --model {model_dir} {line} > /dev/full")
    one_line_error(proc, "cannot write the output: No space left on device")


def test_predict_from_a_closed_stdin_is_one_line(model_dir):
    proc = shell(f"{sys.executable} -m pipeline.predict --model {model_dir} --input - 0<&-")
    one_line_error(proc, "standard input is closed: pipe the headlines in")


def test_review_with_a_closed_stdin_is_one_line(tmp_path):
    from pipeline.audit import ISSUE_COLUMNS

    write_csv(tmp_path / "issues.csv", ISSUE_COLUMNS, [{"rank": 1, "key": "k0", "title": "경찰, 의원 체포",
                                                       "label": "politics", "rule": "section:Politics",
                                                       "suggested": "crime", "suggested_p": 0.9, "label_p": 0.1}])
    config = tmp_path / "data.yaml"
    config.write_text(f"label_issues_csv: {tmp_path / 'issues.csv'}\nmanual_labels_csv: {tmp_path / 'manual.csv'}\n"
                      f"labeled_csv: {tmp_path / 'none.csv'}\n", encoding="utf-8")
    proc = shell(f"{sys.executable} -m pipeline.review --data {config} 0<&-")
    one_line_error(proc, "standard input is closed: review reads its answers from it")
    assert not (tmp_path / "manual.csv").exists()


@pytest.mark.parametrize("damage, reason", [(lambda data: b"", "an empty file"),
                                            (lambda data: data[: len(data) // 2], "Parquet magic bytes not found")])
def test_score_on_an_empty_or_truncated_parquet_is_one_line_before_spark(tmp_path, damage, reason):
    import pandas as pd

    pd.DataFrame({"title": headlines(200)}).to_parquet(tmp_path / "good.parquet")
    bad = tmp_path / "in.parquet"
    bad.write_bytes(damage((tmp_path / "good.parquet").read_bytes()))
    proc = cli("pipeline.score", bad, tmp_path / "out", env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/m.db"})
    err = one_line_error(proc, f"{bad}: not a readable Parquet file (")
    assert reason in err and not (tmp_path / "out").exists()


def test_a_listing_with_a_one_megabyte_title_names_the_field_as_long_and_its_line(tmp_path):
    listing = HEADER + listing_row(1) + f"{'가' * 1_000_000},Society,2026-06-05,news.example\n" + listing_row(2)
    path = tmp_path / "naver.csv"
    path.write_text(listing, encoding="utf-8")
    with pytest.raises(UserError, match=rf"^{path}:3: a field longer than 131,072 characters \(a headline has at "
                                        "most 500\\)") as err:
        read_listing_csv(path)
    assert "quoting" not in str(err.value)
    data = data_folder(tmp_path / "data", listing=listing)
    proc = ingest_cli(data, tmp_path)
    one_line_error(proc, f"{data / 'listings' / 'naver.csv'}:3: a field longer than 131,072 characters")
    assert not (tmp_path / "out" / "headlines.csv").exists()
