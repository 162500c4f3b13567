"""The TF-IDF kind's numpy form (NumpyTfidfScorer): arrays that give scikit-learn's probabilities without scikit-learn."""

import numpy as np
import pytest

from pipeline.config import TfidfConfig
from pipeline.models import load_model
from pipeline.models.tfidf import WEIGHTS_FILE, CharUnits, NGrams, TfidfModel
from tests.conftest import make_ynat_rows

ODD = ["", "  ", "ＫＯＳＰＩ　2800선", "a", "ab", "[속보] 檢, 전 장관 구속영장", "x" * 300, "🙂 이모지 제목", "한"]


@pytest.fixture(scope="module", params=["subwords", "kiwi", "off"])
def fitted(request):
    rows = make_ynat_rows()
    labels = [{"정치": "politics", "경제": "business", "스포츠": "sports"}.get(r["label"], "other") for r in rows]
    config = TfidfConfig(words=request.param, min_df=1, subword_vocab=300)
    return TfidfModel(config).fit([r["title"] for r in rows], labels, seed=3), [r["title"] for r in rows]


def test_character_terms_are_scikit_learns(fitted):
    from sklearn.feature_extraction.text import CountVectorizer

    texts = [*fitted[1][:80], *ODD, "a  b\tc", "단어 하나", "A\x00B", "ab ab ab"]
    counter = CountVectorizer(analyzer="char_wb", ngram_range=(1, 4)).fit(fitted[1][80:])
    terms = sorted(counter.vocabulary_, key=counter.vocabulary_.get)
    rows, cols = CharUnits(NGrams.build(terms, 1, 4)).hits(texts)
    counts = np.zeros((len(texts), len(terms)), dtype=int)
    np.add.at(counts, (rows, cols), 1)
    assert counts.sum() > 1000
    assert (counts == counter.transform(texts).toarray()).all()


def test_numpy_scorer_probabilities_equal_the_fitted_pipelines(fitted):
    model, titles = fitted
    texts = model.texts([*titles, *ODD])
    assert len(texts) > 200
    expected = model.pipeline.predict_proba(texts)
    assert np.abs(model.predict_raw([*titles, *ODD]) - expected).max() <= 1e-5


def test_saved_model_is_arrays_that_load_without_pickle(fitted, tmp_path):
    model, titles = fitted
    model.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"model.json", WEIGHTS_FILE}
    with np.load(tmp_path / WEIGHTS_FILE, allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)
    again = load_model(tmp_path)
    assert again.pipeline is None
    assert np.allclose(again.predict_raw(titles), model.predict_raw(titles), atol=1e-12)
