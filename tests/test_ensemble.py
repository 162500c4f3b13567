"""Ensemble kind: weights fitted on the annotations' tune part over trained members, saved and loaded as one model."""

import numpy as np
import pytest

from pipeline.cli import UserError
from pipeline.config import CONFIG_DIR, EnsembleConfig, TfidfConfig, TrainConfig, load_config
from pipeline.models import load_model
from pipeline.models.ensemble import EnsembleModel
from pipeline.models.tfidf import TfidfModel
from pipeline.train import export, load_members, train
from tests.conftest import label_data_folder, offline_env, tune_rows


@pytest.fixture(scope="module")
def members(data_dir, tmp_path_factory):
    """Two different TF-IDF models trained on the fixture table with the same split, and the run config."""
    tmp = tmp_path_factory.mktemp("ensemble")
    mp = offline_env(data_dir, tmp)
    labeling, gold = label_data_folder()
    cfg = load_config(TrainConfig, overrides={"models_dir": str(tmp / "models"), "audit_folds": 0})
    base = load_config(TfidfConfig, CONFIG_DIR / "tfidf.yaml")
    chars_only = load_config(TfidfConfig, overrides={"words": "off", "char_ngram_max": 2, "C": 0.05})
    results = [train(TfidfModel(c), labeling.rows, gold, cfg) for c in (base, chars_only)]
    export(results[0], cfg)  # no run id: not logged  # models/tfidf, for load_members
    yield {"models": [r.model for r in results], "rows": labeling.rows, "gold": gold, "cfg": cfg, "tmp": tmp,
           "tune": tune_rows(gold)}
    mp.undo()


@pytest.fixture(scope="module")
def ensemble(members):
    model = EnsembleModel(EnsembleConfig(), members=members["models"])
    return train(model, members["rows"], members["gold"], members["cfg"], members["tune"])


def test_weights_are_a_pooling_fitted_on_the_tune_part(ensemble, members):
    model = ensemble.model
    assert len(model.weights) == 2 and sum(model.weights) == pytest.approx(1) and min(model.weights) >= 0
    titles = ["경찰, 절도 피의자 체포", "코스피 2800선 회복", "프로야구 LG 역전승"]
    pooled = sum(w * m.predict_proba(titles)[:, [m.labels.index(label) for label in model.labels]]
                 for w, m in zip(model.weights, members["models"], strict=True))
    assert np.allclose(model.predict_raw(titles), pooled)
    # fitted on the tune part (off the training sources), with its own calibration and thresholds and every
    # kind's metric names
    assert ensemble.metrics["data/train_rows"] == len(members["tune"]) > 0
    assert ensemble.metrics["val/macro_f1"] > 0.8
    assert model.calibration is not None and "report/macro_f1" in ensemble.metrics
    assert model.info["members"][0]["kind"] == "tfidf"


def test_weights_favour_the_better_member(members):
    """A member that knows nothing (uniform scores) gets almost no weight next to a trained one."""

    class Uniform(TfidfModel):
        def predict_proba(self, titles):
            return np.full((len(titles), len(self.labels)), 1 / len(self.labels))

    trained = members["models"][0]
    uniform = Uniform(trained.config, trained.labels)
    model = EnsembleModel(EnsembleConfig(), members=[trained, uniform])
    val_titles = ["경찰, 절도 피의자 체포", "코스피 2800선 회복", "프로야구 LG 역전승", "여야 원내대표 회동"]
    model.fit(val_titles, ["crime", "business", "sports", "politics"])
    assert model.weights[0] > 0.9


def test_save_and_load_give_the_same_answers(ensemble, tmp_path):
    ensemble.model.save(tmp_path / "ensemble")
    loaded = load_model(tmp_path / "ensemble")
    titles = ["경찰, 절도 피의자 체포", "부산 내일 비 소식"]
    assert loaded.kind == "ensemble" and [m.kind for m in loaded.members] == ["tfidf", "tfidf"]
    assert np.allclose(loaded.predict_proba(titles), ensemble.model.predict_proba(titles))
    assert loaded.threshold == ensemble.model.threshold


def test_members_must_come_from_the_same_data_and_split(members):
    cfg, rows, gold = members["cfg"], members["rows"], members["gold"]
    assert [m.kind for m in load_members(("tfidf",), rows, gold, cfg)] == ["tfidf"]
    with pytest.raises(UserError, match="other data or another split"):
        load_members(("tfidf",), rows[:-5], gold, cfg)
    with pytest.raises(UserError, match="other data or another split"):
        load_members(("tfidf",), rows, gold, load_config(TrainConfig, overrides={**cfg.model_dump(), "seed": 99}))
    with pytest.raises(UserError, match="make train-kobert"):
        load_members(("kobert",), rows, gold, cfg)
