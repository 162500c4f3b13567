"""TF-IDF baseline: character n-grams + Kiwi morpheme n-grams -> logistic regression.

Hyper-parameters: configs/tfidf.yaml (defaults: pipeline.config.TfidfConfig). The fitted scikit-learn
pipeline is pickled into the model directory (plain pickle: joblib.load of the same object is ~1 s
slower, which a one-headline `predict` would pay on every call).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from pipeline.config import TfidfConfig
from pipeline.models.base import NO_INPUTS, FitInputs, TopicModel

WEIGHTS_FILE = "sklearn_pipeline.pkl"
# Content morphemes only: nouns, verbs, adjectives, adverbs, foreign words, hanja, numbers.
_KEEP_TAGS = ("NN", "VV", "VA", "MAG", "SL", "SH", "SN", "XR")


class KiwiMorphemes(BaseEstimator, TransformerMixin):
    """Headlines -> space-joined content morphemes ("경찰 구속 영장 신청"), batched through Kiwi."""

    _kiwi = None  # one analyser per process, built on first use (loading it takes ~1 s)

    def fit(self, texts, y=None):
        return self

    def transform(self, texts) -> list[str]:
        kiwi = KiwiMorphemes._analyser()
        return [" ".join(t.form for t in tokens if t.tag.startswith(_KEEP_TAGS))
                for tokens in kiwi.tokenize(list(texts))]

    @staticmethod
    def _analyser():
        if KiwiMorphemes._kiwi is None:
            from kiwipiepy import Kiwi

            # typo/multi-word dictionaries add load time and nothing for edited headlines
            KiwiMorphemes._kiwi = Kiwi(load_typo_dict=False, load_multi_dict=False)
        return KiwiMorphemes._kiwi


class TfidfModel(TopicModel):
    kind = "tfidf"

    @classmethod
    def config_class(cls) -> type:
        return TfidfConfig

    def __init__(self, config: TfidfConfig, labels: Sequence[str] = ()):
        super().__init__(config, labels)
        self.pipeline = None

    def _build(self, seed: int):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline

        c = self.config
        blocks = [("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(c.char_ngram_min, c.char_ngram_max),
                                           min_df=c.min_df, max_features=c.max_features,
                                           sublinear_tf=c.sublinear_tf, dtype=np.float32))]
        if c.use_morphemes:
            words = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False,
                                    ngram_range=(1, c.morph_ngram_max), min_df=c.min_df,
                                    max_features=c.max_features, sublinear_tf=c.sublinear_tf, dtype=np.float32)
            blocks.append(("morph", Pipeline([("kiwi", KiwiMorphemes()), ("tfidf", words)])))
        classifier = LogisticRegression(C=c.C, class_weight=c.class_weight, max_iter=c.max_iter, random_state=seed)
        return Pipeline([("features", FeatureUnion(blocks)), ("clf", classifier)])

    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None, inputs: FitInputs = NO_INPUTS) -> TfidfModel:
        weights = {} if sample_weight is None else {"clf__sample_weight": np.asarray(sample_weight, dtype=float)}
        self.pipeline = self._build(seed).fit(self.texts(titles), list(labels), **weights)
        self.labels = tuple(self.pipeline.classes_)
        return self

    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError("model is not fitted")
        return self.pipeline.predict_proba(self.texts(titles))

    def _save_weights(self, model_dir: Path) -> None:
        with (model_dir / WEIGHTS_FILE).open("wb") as fh:
            pickle.dump(self.pipeline, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def _load_weights(self, model_dir: Path) -> None:
        with (model_dir / WEIGHTS_FILE).open("rb") as fh:
            self.pipeline = pickle.load(fh)
        self.labels = tuple(self.pipeline.classes_)
