"""TF-IDF baseline: character n-grams + n-grams of word pieces (learned BPE subwords, or Kiwi morphemes)
-> logistic regression.

Hyper-parameters: TfidfConfig (pipeline/config.py), where the choice of word pieces is measured. scikit-learn
fits it; what is saved and what predicts is the fitted model as plain arrays (vocabularies, idf, coefficients,
the subword tokenizer's JSON) applied with numpy (`NumpyTfidfScorer`): the same probabilities without importing
scikit-learn, and no pickle, so loading a model runs no code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.calibration import softmax
from pipeline.config import TfidfConfig
from pipeline.models.base import NO_INPUTS, FitInputs, TopicModel

WEIGHTS_FILE = "tfidf.npz"
# Content morphemes only: nouns, verbs, adjectives, adverbs, foreign words, hanja, numbers.
_KEEP_TAGS = ("NN", "VV", "VA", "MAG", "SL", "SH", "SN", "XR")
_kiwi = None  # one analyser per process, built on first use (loading it takes ~1 s)

Tokenize = Callable[[Sequence[str]], list[list[str]]]


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


def train_subwords(texts: Sequence[str], vocab_size: int) -> str:
    """A byte-pair vocabulary learned from `texts`, as the tokenizers library's JSON."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
    tokenizer.train_from_iterator(list(texts), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>"],
                                                                    show_progress=False))
    return tokenizer.to_str()


def word_pieces(config: TfidfConfig, subwords: str | None) -> Tokenize | None:
    """The tokenizer of the second feature block: headlines -> their pieces, or None when it is off."""
    if config.words == "kiwi":
        return lambda texts: [m.split() for m in morphemes(texts)]
    if config.words == "subwords":
        return Subwords(subwords)
    return None


class Subwords:
    """Headlines -> BPE pieces, word by word through a cache: pieces never cross a space (the tokenizer splits
    there first), and headline words repeat, so most words are looked up, not encoded (3x faster)."""

    CACHE = 500_000  # words; cleared when full, so a long stream of new words cannot grow it without bound

    def __init__(self, tokenizer_json: str):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.names = {i: piece for piece, i in self.tokenizer.get_vocab().items()}  # the fast encoder gives ids
        self.cache: dict[str, list[str]] = {}

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        words = [t.split() for t in texts]
        new = list({w for row in words for w in row if w not in self.cache})
        if len(self.cache) + len(new) > self.CACHE:
            self.cache.clear()
            new = list({w for row in words for w in row})
        for word, encoding in zip(new, self.tokenizer.encode_batch_fast(new), strict=True):
            self.cache[word] = [self.names[i] for i in encoding.ids]
        return [[piece for w in row for piece in self.cache[w]] for row in words]


class NGrams:
    """One block's vocabulary as sorted integers: an n-gram of units (characters, or word pieces) is the
    base-B number of its units' ranks, so a whole batch is matched with one numpy `searchsorted` per n.
    Written by hand because scikit-learn's analyzers are a Python loop per term (~6,000 headlines/s, and
    scikit-learn's import); this gives the same terms at ~50,000/s. Rank 0 marks a unit outside the vocabulary
    and the breaks between words and headlines, so no n-gram spans one."""

    def __init__(self, units: list[str], keys: np.ndarray, cols: np.ndarray, lo: int, hi: int):
        self.units, self.keys, self.cols, self.lo, self.hi = units, keys, cols, lo, hi  # keys sorted
        self.rank = {u: r for r, u in enumerate(units, start=1)}
        self.base = len(units) + 1
        if float(self.base) ** hi >= 2.0 ** 63:
            raise ValueError(f"{len(units)} distinct units are too many for {hi}-grams as 64-bit keys")

    @classmethod
    def build(cls, terms: Sequence[Sequence[str]], lo: int, hi: int) -> NGrams:
        """From the vocabulary's terms in column order (at training; prediction loads the arrays)."""
        usable = [k for k, t in enumerate(terms) if "\0" not in "".join(t)]  # NUL breaks words: never matched
        units = sorted({u for k in usable for u in terms[k]})
        rank, base = {u: r for r, u in enumerate(units, start=1)}, len(units) + 1
        keys = np.zeros(len(usable), dtype=np.int64)
        for i, k in enumerate(usable):
            for unit in terms[k]:
                keys[i] = keys[i] * base + rank[unit]
        order = np.argsort(keys)
        return cls(units, keys[order], np.array(usable, dtype=np.int64)[order], lo, hi)

    def hits(self, ranks: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of every vocabulary n-gram in a stream of unit ranks whose headline is `rows`."""
        found_rows, found_cols = [], []
        key, known = np.zeros(len(ranks), dtype=np.int64), np.ones(len(ranks), dtype=bool)
        if not len(self.keys):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        for n in range(1, self.hi + 1):  # key and completeness of the n-gram that starts at each position
            cut = max(len(ranks) - n + 1, 0)
            key, known = key[:cut] * self.base + ranks[n - 1:], known[:cut] & (ranks[n - 1:] > 0)
            if n < self.lo:
                continue
            at = np.flatnonzero(known)
            pos = np.minimum(np.searchsorted(self.keys, key[at]), len(self.keys) - 1)
            hit = self.keys[pos] == key[at]
            found_rows.append(rows[at[hit]])
            found_cols.append(self.cols[pos[hit]])
        return np.concatenate(found_rows), np.concatenate(found_cols)


class CharUnits:
    """Characters as scikit-learn's `char_wb` sees them: lowercased, each word padded with one space."""

    def __init__(self, ngrams: NGrams):
        self.ngrams = ngrams
        self.codes = np.array([ord(u) for u in ngrams.units], dtype=np.uint32)  # sorted, as the ranks

    def hits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        streams = [" " + " \0 ".join(t.lower().split()) + " " if t.split() else "" for t in texts]
        codes = np.frombuffer("\0".join(streams).encode("utf-32-le"), dtype=np.uint32)
        rows = np.repeat(np.arange(len(texts)), [len(s) + 1 for s in streams])[:len(codes)]
        at = np.minimum(np.searchsorted(self.codes, codes), max(len(self.codes) - 1, 0))
        ranks = np.where(self.codes[at] == codes, at + 1, 0) if len(self.codes) else np.zeros(len(codes), np.int64)
        ranks[codes == 0] = 0  # NUL is the break between words: a headline's own NUL matches nothing
        return self.ngrams.hits(ranks.astype(np.int64), rows)


class PieceUnits:
    """Word pieces (subwords or morphemes) as scikit-learn's `word` analyzer sees their space-joined string."""

    def __init__(self, ngrams: NGrams, tokenize: Tokenize):
        self.ngrams, self.tokenize = ngrams, tokenize

    def hits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        pieces = self.tokenize(texts)
        rank = self.ngrams.rank
        ranks = np.fromiter((rank.get(p, 0) for row in pieces for p in (*row, None)), dtype=np.int64)
        rows = np.repeat(np.arange(len(texts)), [len(row) + 1 for row in pieces])
        return self.ngrams.hits(ranks, rows)


class NumpyTfidfScorer:
    """A fitted TF-IDF + logistic-regression model as arrays: one vocabulary and idf per feature block,
    sublinear tf, l2 norm per block, then softmax(X W^T + b)."""

    def __init__(self, blocks: list[tuple[NGrams, np.ndarray]], coef: np.ndarray, intercept: np.ndarray,
                 config: TfidfConfig, subwords: str | None = None):
        self.blocks, self.coef, self.intercept, self.config, self.subwords = blocks, coef, intercept, config, subwords
        self.offsets = np.cumsum([0] + [len(idf) for _, idf in blocks])
        self.by_term = np.ascontiguousarray(coef.T)  # a term's class weights side by side: one gather per term
        self.units = [CharUnits(blocks[0][0])]
        if len(blocks) > 1:
            self.units.append(PieceUnits(blocks[1][0], word_pieces(config, subwords)))

    @classmethod
    def from_pipeline(cls, pipeline, config: TfidfConfig, subwords: str | None) -> NumpyTfidfScorer:
        c = config
        vectorizers = [t if hasattr(t, "idf_") else t.steps[-1][1] for _, t in pipeline.named_steps["features"]
                       .transformer_list]
        terms = [sorted(v.vocabulary_, key=v.vocabulary_.get) for v in vectorizers]  # column order
        blocks = [(NGrams.build(terms[0], c.char_ngram_min, c.char_ngram_max), vectorizers[0].idf_)]
        if len(terms) > 1:
            blocks.append((NGrams.build([t.split(" ") for t in terms[1]], 1, c.word_ngram_max), vectorizers[1].idf_))
        coef, intercept = pipeline.named_steps["clf"].coef_, pipeline.named_steps["clf"].intercept_
        if len(coef) == 1:  # two classes: scikit-learn's sigmoid is the softmax of (-z/2, z/2)
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.hstack([-intercept / 2, intercept / 2])
        blocks = [(ngrams, idf.astype(np.float64)) for ngrams, idf in blocks]
        return cls(blocks, coef.astype(np.float64), intercept.astype(np.float64), config, subwords)

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Sparse TF-IDF rows times the coefficients, one numpy pass per block over the whole batch."""
        out = np.tile(self.intercept, (len(texts), 1))
        for (_, idf), offset, units in zip(self.blocks, self.offsets, self.units, strict=False):
            rows, cols = units.hits(texts)
            if not len(rows):
                continue
            keys, counts = np.unique(rows * len(idf) + cols, return_counts=True)  # sorted by row
            row, col = np.divmod(keys, len(idf))
            weight = (1 + np.log(counts) if self.config.sublinear_tf else counts) * idf[col]
            weight /= np.sqrt(np.bincount(row, weight * weight))[row]  # l2 norm per headline and block
            starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
            out[row[starts]] += np.add.reduceat(self.by_term[offset + col] * weight[:, None], starts)
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.logits(texts))

    def save(self, path: Path) -> None:
        """Per block the units, the sorted n-gram keys and their columns, and the idf: what prediction needs,
        ready to use (building the keys from terms takes a second; loading these takes milliseconds)."""
        arrays = {"coef": self.coef, "intercept": self.intercept}
        for k, (ngrams, idf) in enumerate(self.blocks):
            arrays.update({f"units{k}": _joined(ngrams.units), f"keys{k}": ngrams.keys, f"cols{k}": ngrams.cols,
                           f"idf{k}": idf})
        if self.subwords is not None:
            arrays["subwords"] = _joined([self.subwords])
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path, config: TfidfConfig) -> NumpyTfidfScorer:
        c = config
        ranges = [(c.char_ngram_min, c.char_ngram_max), (1, c.word_ngram_max)]
        with np.load(path, allow_pickle=False) as npz:  # plain arrays: nothing in the file can run code
            if "units0" not in npz.files:
                raise ValueError("saved by an older version (no n-gram keys): retrain it (make train-tfidf)")
            blocks = [(NGrams(_split(npz[f"units{k}"]), npz[f"keys{k}"], npz[f"cols{k}"], *ranges[k]), npz[f"idf{k}"])
                      for k in range(sum(name.startswith("units") for name in npz.files))]
            subwords = _split(npz["subwords"])[0] if "subwords" in npz.files else None
            return cls(blocks, npz["coef"], npz["intercept"], config, subwords)


def _joined(strings: list[str]) -> np.ndarray:
    """Strings as one NUL-separated UTF-8 byte array: loads without pickle, splits in milliseconds."""
    return np.frombuffer("\0".join(strings).encode("utf-8"), dtype=np.uint8)


def _split(array: np.ndarray) -> list[str]:
    return array.tobytes().decode("utf-8").split("\0") if len(array) else []


class TfidfModel(TopicModel):
    kind = "tfidf"
    fork_safe = True
    files_read = (WEIGHTS_FILE,)

    @classmethod
    def config_class(cls) -> type:
        return TfidfConfig

    def __init__(self, config: TfidfConfig, labels: Sequence[str] = ()):
        super().__init__(config, labels)
        self.pipeline = None  # the fitted scikit-learn pipeline, in the training process only
        self.scorer: NumpyTfidfScorer | None = None

    def _build(self, seed: int, pieces: Tokenize | None):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, Pipeline
        from sklearn.preprocessing import FunctionTransformer

        c = self.config
        blocks = [("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(c.char_ngram_min, c.char_ngram_max),
                                           min_df=c.min_df, max_features=c.max_features,
                                           sublinear_tf=c.sublinear_tf, dtype=np.float32))]
        if pieces is not None:
            words = TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False,
                                    ngram_range=(1, c.word_ngram_max), min_df=c.min_df,
                                    max_features=c.max_features, sublinear_tf=c.sublinear_tf, dtype=np.float32)
            joined = FunctionTransformer(lambda texts: [" ".join(row) for row in pieces(texts)])
            blocks.append(("words", Pipeline([("pieces", joined), ("tfidf", words)])))
        classifier = LogisticRegression(C=c.C, class_weight=c.class_weight, max_iter=c.max_iter, random_state=seed)
        return Pipeline([("features", FeatureUnion(blocks)), ("clf", classifier)])

    def fit(self, titles: Sequence[str], labels: Sequence[str], seed: int = 0,
            sample_weight: Sequence[float] | None = None, inputs: FitInputs = NO_INPUTS) -> TfidfModel:
        weights = {} if sample_weight is None else {"clf__sample_weight": np.asarray(sample_weight, dtype=float)}
        texts = self.texts(titles)
        subwords = train_subwords(texts, self.config.subword_vocab) if self.config.words == "subwords" else None
        self.pipeline = self._build(seed, word_pieces(self.config, subwords)).fit(texts, list(labels), **weights)
        self.labels = tuple(self.pipeline.classes_)
        self.scorer = NumpyTfidfScorer.from_pipeline(self.pipeline, self.config, subwords)
        return self

    def predict_raw(self, titles: Sequence[str]) -> np.ndarray:
        if self.scorer is None:
            raise RuntimeError("model is not fitted")
        return self.scorer.predict_proba(self.texts(titles))

    def _save_weights(self, model_dir: Path) -> None:
        self.scorer.save(model_dir / WEIGHTS_FILE)

    def _load_weights(self, model_dir: Path) -> None:
        if not (model_dir / WEIGHTS_FILE).is_file() and (model_dir / "sklearn_pipeline.pkl").is_file():
            raise ValueError("saved as a pickle by an older version, which is no longer loaded: retrain it "
                             "(make train-tfidf)")
        self.scorer = NumpyTfidfScorer.load(model_dir / WEIGHTS_FILE, self.config)
        if self.scorer.coef.shape[0] != len(self.labels):
            raise ValueError(f"{self.scorer.coef.shape[0]} coefficient rows for {len(self.labels)} labels")
