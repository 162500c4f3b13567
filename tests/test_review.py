import io

import pytest

from pipeline.audit import ISSUE_COLUMNS
from pipeline.config import DataConfig
from pipeline.io import read_csv, write_csv
from pipeline.manual import read_manual
from pipeline.review import review


@pytest.fixture
def cfg(tmp_path):
    issues = [{"rank": i + 1, "key": f"k{i}", "title": title, "label": "politics", "rule": "section:Politics",
               "suggested": "crime", "suggested_p": 0.9, "label_p": 0.1}
              for i, title in enumerate(["경찰, 의원 체포", "검찰, 시장 기소", "여야 합의"])]
    write_csv(tmp_path / "issues.csv", ISSUE_COLUMNS, issues)
    return DataConfig(label_issues_csv=str(tmp_path / "issues.csv"), manual_labels_csv=str(tmp_path / "manual.csv"),
                      labeled_csv=str(tmp_path / "none.csv"))


def run_review(cfg, answers, tmp_path):
    out = io.StringIO()
    review(cfg, 10, io.StringIO(answers), out, model_dir=tmp_path / "no-model")
    return out.getvalue()


def test_answers_are_saved_in_order_and_bad_keys_reprompt(cfg, tmp_path):
    text = run_review(cfg, "c\nx\nk\n", tmp_path)  # input ends after two valid answers
    assert "please answer" in text and "2 decision(s) saved" in text
    rows = read_csv(tmp_path / "manual.csv")
    assert [(r["key"], r["label"]) for r in rows] == [("k0", "crime"), ("k1", "skip")]
    assert read_manual(tmp_path / "manual.csv") == {"k0": "crime"}


def test_decided_headlines_are_not_asked_again(cfg, tmp_path):
    run_review(cfg, "c\nq\n", tmp_path)
    text = run_review(cfg, "o\n", tmp_path)
    assert "경찰, 의원 체포" not in text and "[1/2] 검찰, 시장 기소" in text
    assert read_manual(tmp_path / "manual.csv") == {"k0": "crime", "k1": "other"}


def test_interrupt_keeps_what_was_answered(cfg, tmp_path):
    class Interrupting(io.StringIO):
        calls = 0

        def readline(self, *args):
            Interrupting.calls += 1
            if Interrupting.calls == 2:
                raise KeyboardInterrupt
            return "b\n"

    out = io.StringIO()
    review(cfg, 10, Interrupting(), out, model_dir=tmp_path / "no-model")
    assert read_manual(tmp_path / "manual.csv") == {"k0": "business"}
    assert "1 decision(s) saved" in out.getvalue()


def test_nothing_to_review_says_what_to_run(tmp_path):
    cfg = DataConfig(label_issues_csv=str(tmp_path / "x.csv"), manual_labels_csv=str(tmp_path / "m.csv"),
                     labeled_csv=str(tmp_path / "none.csv"))
    assert "make train" in run_review(cfg, "", tmp_path)
