"""KoBERT kind: the tokenizer adapter and a tiny offline end-to-end run (small enough for CI)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline import REPO_ROOT, TOPICS
from pipeline.cli import UserError
from pipeline.config import KobertConfig, TrainConfig, load_config
from pipeline.models import load_model
from pipeline.models.kobert import (
    CLS,
    MASK,
    PAD,
    SEP,
    SPECIALS,
    UNK,
    KobertModel,
    KoBertTokenizer,
    _hub_snapshot,
    _length_batches,
)
from pipeline.train import train
from tests.conftest import TINY_KOBERT, label_data_folder, make_ynat_rows, offline_env

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    corpus = [r["title"] for r in make_ynat_rows()] * 3
    return KoBertTokenizer.train(corpus, tmp_path_factory.mktemp("spm"), vocab_size=400)


def test_special_tokens_have_kobert_ids(tokenizer):
    assert [tokenizer.sp.id_to_piece(i) for i in (UNK, PAD, CLS, SEP, MASK)] == list(SPECIALS)
    assert (UNK, PAD, CLS, SEP, MASK) == (0, 1, 2, 3, 4)


def test_cls_text_sep_right_padding_zero_token_types(tokenizer):
    batch = tokenizer(["경찰, 절도범 체포", "코스피 상승"], max_length=32)
    ids = batch["input_ids"]
    assert ids[0, 0] == CLS and ids[1, 0] == CLS
    short = int(batch["attention_mask"][1].sum())
    assert ids[1, short - 1] == SEP and (ids[1, short:] == PAD).all()  # padding on the right
    assert ids[0, -1] == SEP  # the longest row is not padded
    assert not batch["token_type_ids"].any()
    assert (batch["attention_mask"] == (ids != PAD)).all()


def test_truncation_keeps_sep(tokenizer):
    ids = tokenizer.ids("경찰 " * 100, max_length=10)
    assert len(ids) == 10 and ids[0] == CLS and ids[-1] == SEP


def test_nfkc_before_pieces(tokenizer):
    assert tokenizer.ids("ＫＯＳＰＩ　상승", 32) == tokenizer.ids("KOSPI 상승", 32)
    assert tokenizer.ids("\uffa1", 8) == tokenizer.ids("\u3131", 8)  # halfwidth jamo -> compatibility jamo


def test_round_trip_through_save_and_load_offline(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer.save(tmp_path)
    again = KoBertTokenizer(tmp_path / "spiece.model")
    text = "[속보] 여야, 예산안 합의"
    assert again.ids(text, 32) == tokenizer.ids(text, 32)
    assert again.unk_share([text]) < 0.5


def test_foreign_vocabulary_layout_is_refused(tmp_path):
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(sentence_iterator=iter(["가나다 라마바"] * 50), model_prefix=str(tmp_path / "x"),
                                   vocab_size=20, hard_vocab_limit=False, minloglevel=2)
    with pytest.raises(UserError, match="KoBERT-layout"):
        KoBertTokenizer(tmp_path / "x.model")


def test_length_batches_cover_every_row_once_with_less_padding():
    import random

    rng = random.Random(0)
    rows = [[CLS] * rng.randint(5, 40) for _ in range(1000)]
    batches = _length_batches(rows, 32, random.Random(1), window=10)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(1 <= len(b) <= 32 for b in batches)

    def mean_width(groups):
        return np.mean([max(len(rows[i]) for i in g) for g in groups])

    shuffled = list(range(1000))
    random.Random(1).shuffle(shuffled)
    plain = [shuffled[i:i + 32] for i in range(0, 1000, 32)]
    assert mean_width(batches) < 0.8 * mean_width(plain)
    assert batches != _length_batches(rows, 32, random.Random(2), window=10)  # still shuffled per seed


def test_unreachable_hub_fails_fast(monkeypatch, tmp_path):
    import time

    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    with pytest.raises(OSError, match="unreachable"):
        _hub_snapshot("skt/kobert-base-v1")
    assert time.perf_counter() - start < 5


TINY = TINY_KOBERT


def test_unreachable_checkpoint_without_fallback_is_one_line_error(data_env, tmp_path):
    cfg = load_config(KobertConfig, overrides={**TINY, "offline_fallback": False, "pretrained_dir": str(tmp_path)})
    with pytest.raises(UserError, match="cannot load checkpoint"):
        KobertModel(cfg).fit(["경찰 체포", "코스피 상승"], ["crime", "business"])


@pytest.fixture(scope="module")
def tiny_run(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kobert")
    mp = offline_env(data_dir, tmp)
    labeling, gold = label_data_folder()
    cfg = load_config(KobertConfig, overrides={**TINY, "pretrained_dir": str(tmp / "pretrained")})
    model = KobertModel(cfg)
    result = train(model, labeling.rows, gold, load_config(TrainConfig, overrides={"audit_folds": 0}))
    model.save(tmp / "model")
    yield {"tmp": tmp, "result": result, "model": model}
    mp.undo()


def test_offline_build_records_the_checkpoint_actually_used(tiny_run):
    info = tiny_run["model"].info
    assert info["checkpoint"].startswith("local:kobert-local-")
    assert list((tiny_run["tmp"] / "pretrained").glob("kobert-local-*/spiece.model"))


def test_tiny_model_learns_and_reports_shared_metric_names(tiny_run):
    metrics = tiny_run["result"].metrics
    assert {"val_macro_f1", "gold_report_macro_f1", "gold_tune_f1_crime", "val_ece"} <= set(metrics)
    assert metrics["val_macro_f1"] > 0.5  # four-class chance is ~0.25


def test_saved_kobert_predicts_through_the_cli(tiny_run):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", str(tiny_run["tmp"] / "model"),
                           "--json", "--no-abstain", "프로야구 LG, 두산에 역전승"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["label"] in TOPICS and set(out["scores"]) == set(TOPICS)


def test_round_trip_gives_same_probabilities(tiny_run):
    titles = ["경찰, 절도범 체포", "코스피 2800선 회복"]
    again = load_model(tiny_run["tmp"] / "model")
    assert np.allclose(again.predict_proba(titles), tiny_run["model"].predict_proba(titles), atol=1e-5)


def test_training_gives_pretraining_every_headline_and_the_teacher_only_unlabeled_ones(tiny_run):
    from pipeline.text import normalize_title

    model, (labeling, gold) = tiny_run["model"], label_data_folder()
    gold_keys = {normalize_title(g["title"]).key for g in gold}
    labeled = {r["title"] for r in labeling.rows if r["label"]}
    assert model.unlabeled and not set(model.unlabeled) & labeled  # no training or validation row
    assert set(model.unlabeled) <= set(model.corpus)
    assert not {normalize_title(t).key for t in model.corpus} & gold_keys
    assert model.info["teacher"]["kind"] == "tfidf"
    assert model.info["teacher"]["unlabeled_rows"] == len(model.unlabeled)


class _FixedTeacher:
    """Stands in for a fitted teacher whose labels come in another order than the student's."""

    kind, labels = "fixed", ("sports", "crime", "business")

    def __init__(self):
        from pipeline.config import TfidfConfig

        self.config = TfidfConfig()

    def fit(self, titles, labels, seed=0, sample_weight=None):
        return self

    def predict_raw(self, titles):
        return np.tile([0.7, 0.2, 0.1], (len(titles), 1))


def test_soft_targets_follow_the_students_label_order():
    model = KobertModel(load_config(KobertConfig, overrides=TINY))
    model.labels = ("business", "crime", "sports")
    model.unlabeled, model.teacher = ["야구 경기 결과", "주가 하락"], _FixedTeacher()
    texts, soft = model._distill(["a", "b", "c"], ["sports", "crime", "business"], 0, None)
    assert len(texts) == 2 and np.allclose(soft, [[0.1, 0.2, 0.7]] * 2)


def test_teacher_of_its_own_kind_is_refused():
    model = KobertModel(load_config(KobertConfig, overrides={**TINY, "teacher": "kobert"}))
    model.unlabeled = ["야구 경기 결과"]
    with pytest.raises(UserError, match="another model kind"):
        model.fit(["경찰 체포", "코스피 상승"], ["crime", "business"])
