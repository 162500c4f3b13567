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
from pipeline.models.kobert import CLS, MASK, PAD, SEP, SPECIALS, UNK, KobertModel, KoBertTokenizer
from pipeline.train import train
from tests.conftest import TINY_KOBERT, label_data_folder, make_ynat_rows

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


TINY = TINY_KOBERT


def test_unreachable_checkpoint_without_fallback_is_one_line_error(data_env, tmp_path):
    cfg = load_config(KobertConfig, overrides={**TINY, "offline_fallback": False, "pretrained_dir": str(tmp_path)})
    with pytest.raises(UserError, match="cannot load checkpoint"):
        KobertModel(cfg).fit(["경찰 체포", "코스피 상승"], ["crime", "business"])


@pytest.fixture(scope="module")
def tiny_run(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kobert")
    mp = pytest.MonkeyPatch()
    mp.setenv("HEADLINE_DATA_DIR", str(data_dir))
    mp.setenv("HF_HUB_OFFLINE", "1")
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
    assert {"val_macro_f1", "gold_macro_f1", "gold_f1_crime", "val_ece"} <= set(metrics)
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
