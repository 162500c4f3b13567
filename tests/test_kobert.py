"""KoBERT kind: the tokenizer, and a tiny offline end-to-end run through the Trainer (small enough for CI)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from pipeline import REPO_ROOT, TOPICS  # noqa: E402
from pipeline.cli import UserError  # noqa: E402
from pipeline.config import CONFIG_DIR, KobertConfig, TfidfConfig, TrainConfig, load_config  # noqa: E402
from pipeline.models import load_model  # noqa: E402
from pipeline.models.base import NO_INPUTS  # noqa: E402
from pipeline.models.kobert import (  # noqa: E402
    CLS,
    MASK,
    PAD,
    SEP,
    SPECIALS,
    UNK,
    KobertModel,
    _hub_snapshot,
    kobert_tokenizer,
    train_spiece,
)
from pipeline.models.tfidf import TfidfModel  # noqa: E402
from pipeline.train import run_training, train  # noqa: E402
from tests.conftest import TINY_KOBERT, label_data_folder, make_ynat_rows, offline_env, tune_rows  # noqa: E402


@pytest.fixture(scope="module")
def spiece(tmp_path_factory):
    corpus = [r["title"] for r in make_ynat_rows()] * 3
    return train_spiece(corpus, tmp_path_factory.mktemp("spm"), vocab_size=400)


@pytest.fixture(scope="module")
def tokenizer(spiece):
    return kobert_tokenizer(spiece, max_length=32)


def test_special_tokens_have_kobert_ids(tokenizer):
    assert tokenizer.convert_tokens_to_ids(list(SPECIALS)) == [UNK, PAD, CLS, SEP, MASK] == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_token_id, tokenizer.mask_token_id) == (PAD, MASK)


def test_pieces_match_sentencepiece(tokenizer, spiece):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spiece))
    for title in ["경찰, 절도범 체포", "코스피 2800선 회복", "[속보] 여야, 예산안 합의"]:
        assert tokenizer(title)["input_ids"] == [CLS, *sp.encode(title), SEP]


def test_cls_text_sep_right_padding(tokenizer):
    batch = tokenizer(["경찰, 절도범 체포 소식에 시민들 안도", "코스피 상승"], padding=True, return_tensors="np")
    ids = batch["input_ids"]
    assert ids[0, 0] == CLS and ids[1, 0] == CLS
    short = int(batch["attention_mask"][1].sum())
    assert ids[1, short - 1] == SEP and (ids[1, short:] == PAD).all()  # padding on the right
    assert ids[0, -1] == SEP  # the longest row is not padded
    assert (batch["attention_mask"] == (ids != PAD)).all()


def test_truncation_keeps_sep(tokenizer):
    ids = tokenizer("경찰 " * 100, truncation=True)["input_ids"]
    assert len(ids) == 32 and ids[0] == CLS and ids[-1] == SEP


def test_nfkc_before_pieces(tokenizer):
    assert tokenizer("ＫＯＳＰＩ　상승")["input_ids"] == tokenizer("KOSPI 상승")["input_ids"]
    assert tokenizer("\uffa1")["input_ids"] == tokenizer("\u3131")["input_ids"]  # halfwidth -> compatibility jamo


def test_round_trip_through_save_and_load_offline(tokenizer, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    text = "[속보] 여야, 예산안 합의"
    assert again(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_foreign_vocabulary_layout_is_refused(tmp_path):
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(sentence_iterator=iter(["가나다 라마바"] * 50), model_prefix=str(tmp_path / "x"),
                                   vocab_size=20, hard_vocab_limit=False, minloglevel=2)
    with pytest.raises(UserError, match="KoBERT-layout"):
        kobert_tokenizer(tmp_path / "x.model", 32)


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


class Recording(KobertModel):
    """The kobert kind, noting what its training step was handed."""

    def fit(self, titles, labels, seed=0, sample_weight=None, inputs=NO_INPUTS):
        self.seen = inputs
        return super().fit(titles, labels, seed, sample_weight, inputs)


@pytest.fixture(scope="module")
def tiny_run(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kobert")
    mp = offline_env(data_dir, tmp)
    labeling, gold = label_data_folder()
    # int8 on: the quantised graph is exported and weighed too (the registry fixture covers the fp32 default)
    # finetune_rows below the fixture's training rows: fine-tuning takes a sample (bounded time on real data)
    cfg = load_config(KobertConfig, overrides={**TINY, "pretrained_dir": str(tmp / "pretrained"), "int8": True,
                                               "finetune_rows": 150})
    model = Recording(cfg)
    train_cfg = load_config(TrainConfig, overrides={"audit_folds": 0, "models_dir": str(tmp / "models")})
    teacher = TfidfModel(load_config(TfidfConfig, CONFIG_DIR / "tfidf.yaml"))
    result, _ = run_training(model, labeling.rows, gold, train_cfg, tune_rows(gold), teacher=teacher)
    model.save(tmp / "model")
    yield {"tmp": tmp, "result": result, "model": model}
    mp.undo()


def test_offline_build_records_the_checkpoint_actually_used(tiny_run):
    info = tiny_run["model"].info
    assert info["checkpoint"].startswith("local:kobert-local-")
    assert list((tiny_run["tmp"] / "pretrained").glob("kobert-local-*/tokenizer.json"))


def test_tiny_model_learns_and_reports_shared_metric_names(tiny_run):
    metrics = tiny_run["result"].metrics
    assert {"val/macro_f1", "report/macro_f1", "tune/f1_crime", "val/ece"} <= set(metrics)
    assert metrics["val/macro_f1"] > 0.5  # four-class chance is ~0.25
    assert tiny_run["model"].info["finetune_rows"] == 150 < metrics["data/train_rows"]


def test_run_draws_per_epoch_curves_for_pretraining_and_fine_tuning(tiny_run):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_run['tmp']}/mlflow.db")
    run_id = tiny_run["model"].info["mlflow_run_id"]
    assert client.get_run(run_id).info.status == "FINISHED"
    for name in ("epochs/pretrain_loss", "epochs/pretrain_eval_loss", "epochs/finetune_loss", "epochs/finetune_eval_loss",
                 "epochs/finetune_eval_macro_f1"):
        steps = [m.step for m in client.get_metric_history(run_id, name)]
        assert steps and steps == sorted(steps) and steps[0] == 1, name
    assert len(client.get_metric_history(run_id, "epochs/finetune_eval_macro_f1")) >= 2


def test_saved_kobert_predicts_through_the_cli_without_torch(tiny_run):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline.predict", "--model",
                           str(tiny_run["tmp"] / "model"), "--json", "--no-abstain", "프로야구 LG, 두산에 역전승"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["label"] in TOPICS and set(out["scores"]) == set(TOPICS)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
    assert "onnxruntime" in imported and not imported & {"torch", "transformers", "sklearn", "mlflow"}


def test_forked_workers_answer_exactly_as_one_process(tiny_run, monkeypatch):
    """--input in two forked workers, each with an ONNX Runtime session of its own, writes the same bytes."""
    import io

    from pipeline import predict

    monkeypatch.setattr(predict, "BATCH", 7)  # several batches in flight
    lines = "".join(f"{t}\n" for t in ["프로야구 LG, 두산에 역전승", "코스피 상승 마감", "", "경찰, 살인 피의자 구속"] * 9)
    outputs = []
    for workers in (1, 2):
        model, out = load_model(tiny_run["tmp"] / "model"), io.StringIO()
        assert predict.predict_stream(model, io.BytesIO(lines.encode()), out, workers=workers) == (36, 9)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 36


def test_a_loaded_transformer_saves_again_as_an_ensemble_member_does(tiny_run, tmp_path):
    titles = ["경찰, 절도범 체포", "코스피 2800선 회복"]
    loaded = load_model(tiny_run["tmp"] / "model")
    loaded.save(tmp_path / "copy")
    assert np.allclose(load_model(tmp_path / "copy").predict_proba(titles), loaded.predict_proba(titles), atol=1e-6)


def test_onnx_graph_gives_the_trained_networks_probabilities(tiny_run):
    from pipeline.models.onnx import OnnxKobert

    model = tiny_run["model"]
    titles = [r["title"] for r in make_ynat_rows(per_template=20)][:300]
    assert len(titles) == 300
    exported = model.info["onnx"]
    assert {"fp32", "int8"} <= set(exported) and exported["fp32"]["max_abs_diff_vs_torch"] <= 1e-3
    loaded = load_model(tiny_run["tmp"] / "model")
    assert isinstance(loaded, OnnxKobert)
    diff = np.abs(loaded.predict_raw(titles) - model.torch_proba(model.texts(titles))).max()
    assert diff <= (1e-3 if exported["graph"] == "fp32" else 0.05), exported


def test_transformer_answer_ignores_style_edits(tiny_run):
    """Metamorphic (tests/test_metamorphic.py): the ONNX model reads model_text, so quotes, tags, ellipsis glyphs,
    hanja and spacing leave its scores as they were."""
    from tests.test_metamorphic import EDITS, assert_same_answers, fixture_headlines

    loaded = load_model(tiny_run["tmp"] / "model")
    for edit in EDITS:
        assert_same_answers(loaded, fixture_headlines()[::4], edit)


def test_local_tokenizer_learned_no_style_marks(tiny_run):
    """The offline build's SentencePiece vocabulary and MLM learn from model_text too: no piece for a quote, a
    bracket, an ellipsis or a middle dot, which the fixture's listing headlines and templates are full of."""
    from transformers import AutoTokenizer

    built = next((tiny_run["tmp"] / "pretrained").glob("kobert-local-*"))
    pieces = AutoTokenizer.from_pretrained(str(built)).get_vocab()
    marked = [p for p in pieces if p not in SPECIALS and set(p) & set("“”‘’\"'[]()…·,")]
    assert not marked, marked


def test_round_trip_gives_same_probabilities(tiny_run):
    titles = ["경찰, 절도범 체포", "코스피 2800선 회복"]
    again = load_model(tiny_run["tmp"] / "model")
    assert np.allclose(again.predict_proba(titles), tiny_run["model"].predict_proba(titles), atol=1e-5)


def test_a_model_saved_with_the_retired_kobert_seed_still_loads(tiny_run, tmp_path):
    import shutil

    model_dir = tmp_path / "old"
    shutil.copytree(tiny_run["tmp"] / "model", model_dir)
    meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    meta["config"]["seed"] = 13  # as saved before #22
    (model_dir / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    titles = ["경찰, 절도범 체포", "코스피 2800선 회복"]
    assert np.allclose(load_model(model_dir).predict_proba(titles), tiny_run["model"].predict_proba(titles),
                       atol=1e-5)


def test_training_gives_pretraining_every_headline_and_the_teacher_only_unlabeled_ones(tiny_run):
    from pipeline.text import normalize_title

    model, (labeling, gold) = tiny_run["model"], label_data_folder()
    seen = model.seen
    gold_keys = {normalize_title(g["title"]).key for g in gold}
    labeled = {r["title"] for r in labeling.rows if r["label"]}
    assert seen.soft_titles and not set(seen.soft_titles) & labeled  # no training or validation row
    assert set(seen.soft_titles) <= set(seen.corpus)
    assert not {normalize_title(t).key for t in seen.corpus} & gold_keys
    assert seen.soft_targets.shape == (len(seen.soft_titles), len(model.labels))
    assert np.allclose(seen.soft_targets.sum(axis=1), 1)
    assert model.info["teacher"]["kind"] == "tfidf"
    assert model.info["teacher"]["unlabeled_rows"] == len(seen.soft_titles)


class _FixedTeacher:
    """Stands in for a teacher whose labels come in another order than the student's (sorted)."""

    kind, labels, info = "fixed", ("sports", "crime", "business"), {}

    def fit(self, titles, labels, seed=0, sample_weight=None, inputs=NO_INPUTS):
        return self

    def predict_raw(self, titles):
        return np.tile([0.7, 0.2, 0.1], (len(titles), 1))


def test_soft_targets_follow_the_students_label_order():
    from pipeline.train import distill

    rows = [{"title": t, "label": label, "confidence": "1"} for t, label in (("a", "sports"), ("b", "crime"))]
    inputs = distill(_FixedTeacher(), rows, ["야구 경기 결과", "주가 하락"], load_config(TrainConfig), NO_INPUTS)
    assert len(inputs.soft_titles) == 2 and np.allclose(inputs.soft_targets, [[0.1, 0.2, 0.7]] * 2)


def test_teacher_of_its_own_kind_is_refused(data_dir, tmp_path):
    mp = offline_env(data_dir, tmp_path)
    try:
        labeling, gold = label_data_folder()
        cfg = load_config(KobertConfig, overrides=TINY)
        with pytest.raises(UserError, match="another model kind"):
            train(KobertModel(cfg), labeling.rows, gold, load_config(TrainConfig, overrides={"audit_folds": 0}),
                  teacher=KobertModel(cfg))
    finally:
        mp.undo()
