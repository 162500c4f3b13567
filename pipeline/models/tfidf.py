"""TF-IDF baseline: character n-grams (+ Kiwi morpheme n-grams, when configured) -> logistic regression.

Hyper-parameters: TfidfConfig (pipeline/config.py). scikit-learn fits it; what is saved and what predicts
is the fitted model as plain arrays (vocabularies, idf, coefficients) applied with numpy (`Lean`): the
same probabilities without importing scikit-learn, and no pickle, so loading a model runs no code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from pipeline.calibration import softmax
from pipeline.config import TfidfConfig
from pipeline.models.base import NO_INPUTS, FitInputs, TopicModel

WEIGHTS_FILE = "tfidf.npz"
# Content morphemes only: nouns, verbs, adjectives, adverbs, foreign words, hanja, numbers.
_KEEP_TAGS = ("NN", "VV", "VA", "MAG", "SL", "SH", "SN", "XR")
_SPACES = re.compile(r"\s\s+")  # scikit-learn's char_wb whitespace rule
_kiwi = None  # one analyser per process, built on first use (loading it takes ~1 s)


def kiwi():
    global _kiwi
    if _kiwi is None:
        from kiwipiepy import Kiwi

        # typo/multi-word dictionaries add load time and nothing for edited headlines
        _kiwi = Kiwi(load_typo_dict=False, load_multi_dict=False)
    return _kiwi


def morphemes(texts: Sequence[str]) -> list[str]:
    """Headlines -> space-joined content morphemes ("경찰 구속 영장 신청"), batched through Kiwi."""
    return [" ".join(t.form for t in tokens if t.tag.startswith(_KEEP_TAGS)) for tokens in kiwi().tokenize(list(texts))]


def char_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's `char_wb` analyzer (lowercased, n-grams inside space-padded words), reimplemented so
    prediction needs no scikit-learn; tests check both give the same features."""
    out = []
    for word in _SPACES.sub(" ", text.lower()).split():
        word = f" {word} "
        for n in range(lo, hi + 1):
            out += [word[i:i + n] for i in range(max(len(word) - n + 1, 1))]
            if len(word) <= n:  # a short word counts once, as scikit-learn does
                break
    return out


def word_ngrams(text: str, hi: int) -> list[str]:
    """scikit-learn's `word` analyzer with token_pattern \\S+, no lowercasing, n-grams 1..hi."""
    tokens = text.split()
    return [" ".join(tokens[i:i + n]) for n in range(1, hi + 1) for i in range(len(tokens) - n + 1)]


class Lean:
    """A fitted TF-IDF + logistic-regression model as arrays: one vocabulary and idf per feature block,
    sublinear tf, l2 norm per block, then softmax(X W^T + b)."""

    def __init__(self, blocks: list[tuple[dict[str, int], np.ndarray]], coef: np.ndarray, intercept: np.ndarray,
                 config: TfidfConfig):
        self.blocks, self.coef, self.intercept, self.config = blocks, coef, intercept, config
        self.offsets = np.cumsum([0] + [len(idf) for _, idf in blocks])

    @classmethod
    def from_pipeline(cls, pipeline, config: TfidfConfig) -> Lean:
        vectorizers = [t if hasattr(t, "idf_") else t.steps[-1][1] for _, t in pipeline.named_steps["features"]
                       .transformer_list]
        blocks = [({term: int(i) for term, i in v.vocabulary_.items()}, v.idf_.astype(np.float64)) for v in vectorizers]
        coef, intercept = pipeline.named_steps["clf"].coef_, pipeline.named_steps["clf"].intercept_
        if len(coef) == 1:  # two classes: scikit-learn's sigmoid is the softmax of (-z/2, z/2)
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.hstack([-intercept / 2, intercept / 2])
        return cls(blocks, coef.astype(np.float64), intercept.astype(np.float64), config)

    def features(self, texts: Sequence[str]) -> list[list[list[str]]]:
        """Per block, the terms of each headline."""
        c = self.config
        blocks = [[char_ngrams(t, c.char_ngram_min, c.char_ngram_max) for t in texts]]
        if len(self.blocks) > 1:
            blocks.append([word_ngrams(m, c.morph_ngram_max) for m in morphemes(texts)])
        return blocks

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Sparse TF-IDF rows times the coefficients, one numpy pass per block over the whole batch."""
        out = np.tile(self.intercept, (len(texts), 1))
        for (vocab, idf), offset, terms in zip(self.blocks, self.offsets, self.features(texts), strict=False):
            ids = [[i for i in map(vocab.get, row) if i is not None] for row in terms]
            rows = np.repeat(np.arange(len(ids)), [len(i) for i in ids])
            if not len(rows):
                continue
            cols = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=len(rows))
            keys, counts = np.unique(rows * len(idf) + cols, return_counts=True)  # sorted by row
            row, col = np.divmod(keys, len(idf))
            weight = (1 + np.log(counts) if self.config.sublinear_tf else counts) * idf[col]
            weight /= np.sqrt(np.bincount(row, weight * weight))[row]  # l2 norm per headline and block
            starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
            out[row[starts]] += np.add.reduceat(self.coef[:, offset + col].T * weight[:, None], starts)
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts))

    def save(self, path: Path) -> None:
        arrays = {"coef": self.coef, "intercept": self.intercept}
        for k, (vocab, idf) in enumerate(self.blocks):
            terms = sorted(vocab, key=vocab.get)  # the column order
            arrays[f"terms{k}"] = _joined(terms)
            arrays[f"idf{k}"] = idf
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path, config: TfidfConfig) -> Lean:
        with np.load(path, allow_pickle=False) as npz:  # plain arrays: nothing in the file can run code
            blocks = []
            for k in range(sum(name.startswith("terms") for name in npz.files)):
                terms = _split(npz[f"terms{k}"])
                blocks.append((dict(zip(terms, range(len(terms)), strict=True)), npz[f"idf{k}"]))
            return cls(blocks, npz["coef"], npz["intercept"], config)


def _joined(strings: list[str]) -> np.ndarray:
    """Strings as one NUL-separated UTF-8 byte array: loads without pickle, splits in milliseconds."""
    return np.frombuffer("\0".join(strings).encode("utf-8"), dtype=np.uint8)


def _split(array: np.ndarray) -> list[str]:
    return array.tobytes().decode("utf-8").split("\0")


class TfidfModel(TopicModel):
    kind = "tfidf"

    @classmethod
    def config_class(cls) -> type:
        return TfidfConfig

    def __init__(self, config: TfidfConfig, labels: Sequence[str] = ()):
        super().__init__(config, labels)
        self.pipeline = None  # the fitted scikit-learn pipeline, in the training process only
        self.lean: Lean | None = None

    def _build(self, seed: int):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline
        from sklearn.preprocessing import FunctionTransformer

        c = self.config
        blocks = [("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(c.char_ngram_min, c.char_ngram_max),
                                           min_df=c.min_df, max_features=c.max_features,
                                           sublinear_tf=c.sublinear_tf, dtype=np.float32))]
        if c.use_morphemes:
            words = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False,
                                    ngram_range=(1, c.morph_ngram_max), min_df=c.min_df,
                                    max_features=c.max_features, sublinear_tf=c.sublinear_tf, dtype=np.float32)
            blocks.append(("morph", Pipeline([("kiwi", FunctionTransformer(morphemes)), ("tfidf", words)])))
        classifier = LogisticRegression(C=c.C, class_weight=c.class_weight, max_iter=c.max_iter, random_state=seed)
        return Pipeline([("features", FeatureUnion(blocks)), ("clf", classifier)])

    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None, inputs: FitInputs = NO_INPUTS) -> TfidfModel:
        weights = {} if sample_weight is None else {"clf__sample_weight": np.asarray(sample_weight, dtype=float)}
        self.pipeline = self._build(seed).fit(self.texts(titles), list(labels), **weights)
        self.labels = tuple(self.pipeline.classes_)
        self.lean = Lean.from_pipeline(self.pipeline, self.config)
        return self

    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        if self.lean is None:
            raise RuntimeError("model is not fitted")
        return self.lean.predict_proba(self.texts(titles))

    def _save_weights(self, model_dir: Path) -> None:
        self.lean.save(model_dir / WEIGHTS_FILE)

    def _load_weights(self, model_dir: Path) -> None:
        if not (model_dir / WEIGHTS_FILE).is_file() and (model_dir / "sklearn_pipeline.pkl").is_file():
            raise ValueError("saved as a pickle by an older version, which is no longer loaded: retrain it "
                             "(make train-tfidf)")
        self.lean = Lean.load(model_dir / WEIGHTS_FILE, self.config)
        if self.lean.coef.shape[0] != len(self.labels):
            raise ValueError(f"{self.lean.coef.shape[0]} coefficient rows for {len(self.labels)} labels")
